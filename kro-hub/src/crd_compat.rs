//! Whether a new version of a generated CRD would break existing
//! instances: a field removed, a type changed, a new required field without
//! a default, or enum values taken away. Such a change is refused unless the
//! RGD explicitly allows it, as upstream kro does.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};

/// Human-readable breaking changes from `old` to `new`; empty when none.
pub fn breaking_changes(
    old: &CustomResourceDefinition,
    new: &CustomResourceDefinition,
) -> Vec<String> {
    let mut out = Vec::new();
    for old_version in &old.spec.versions {
        let Some(new_version) = new
            .spec
            .versions
            .iter()
            .find(|v| v.name == old_version.name)
        else {
            out.push(format!("version {} removed", old_version.name));
            continue;
        };
        let old_schema = old_version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        let new_schema = new_version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        if let (Some(o), Some(n)) = (old_schema, new_schema)
            && let (Some(os), Some(ns)) = (prop(o, "spec"), prop(n, "spec"))
        {
            compare(os, ns, ".spec", &mut out);
        }
    }
    out
}

fn prop<'a>(schema: &'a JSONSchemaProps, name: &str) -> Option<&'a JSONSchemaProps> {
    schema.properties.as_ref().and_then(|p| p.get(name))
}

fn compare(old: &JSONSchemaProps, new: &JSONSchemaProps, path: &str, out: &mut Vec<String>) {
    if old.type_ != new.type_ && old.type_.is_some() {
        out.push(format!(
            "{path}: type changed from {} to {}",
            old.type_.as_deref().unwrap_or("any"),
            new.type_.as_deref().unwrap_or("any")
        ));
        return;
    }
    if let Some(old_props) = &old.properties {
        for (name, old_child) in old_props {
            let child_path = format!("{path}.{name}");
            match new.properties.as_ref().and_then(|p| p.get(name)) {
                Some(new_child) => compare(old_child, new_child, &child_path, out),
                None if new.x_kubernetes_preserve_unknown_fields == Some(true) => {}
                None => out.push(format!("{child_path}: field removed")),
            }
        }
    }
    let old_required = old.required.clone().unwrap_or_default();
    for name in new.required.iter().flatten() {
        let has_default = new
            .properties
            .as_ref()
            .and_then(|p| p.get(name))
            .is_some_and(|p| p.default.is_some());
        if !old_required.contains(name) && !has_default {
            out.push(format!(
                "{path}.{name}: new required field without a default"
            ));
        }
    }
    if let (Some(old_enum), Some(new_enum)) = (&old.enum_, &new.enum_) {
        let removed: Vec<String> = old_enum
            .iter()
            .filter(|v| !new_enum.contains(v))
            .map(|v| v.0.to_string())
            .collect();
        if !removed.is_empty() {
            out.push(format!(
                "{path}: enum values removed: {}",
                removed.join(", ")
            ));
        }
    } else if old.enum_.is_none() && new.enum_.is_some() {
        out.push(format!("{path}: enum restriction added"));
    }
    if let (Some(o), Some(n)) = (&old.items, &new.items) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray as Items;
        if let (Items::Schema(o), Items::Schema(n)) = (o, n) {
            compare(o, n, &format!("{path}[]"), out);
        }
    }
    if let (Some(o), Some(n)) = (&old.additional_properties, &new.additional_properties) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool as Extra;
        if let (Extra::Schema(o), Extra::Schema(n)) = (o, n) {
            compare(o, n, &format!("{path}[*]"), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(spec: serde_json::Value) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "apps.kro.run"},
            "spec": {
                "group": "kro.run",
                "names": {"kind": "App", "plural": "apps"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1alpha1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}}
                }]
            }
        }))
        .unwrap()
    }

    #[test]
    fn adding_an_optional_field_or_a_defaulted_required_one_is_compatible() {
        let old = crd(json!({"type": "object", "properties": {"name": {"type": "string"}}}));
        let new = crd(
            json!({"type": "object", "required": ["port"], "properties": {
                "name": {"type": "string"},
                "port": {"type": "integer", "default": 80},
                "extra": {"type": "string"}
            }}),
        );
        assert!(breaking_changes(&old, &new).is_empty());
    }

    #[test]
    fn removals_type_changes_new_required_and_narrowed_enums_are_breaking() {
        let old = crd(json!({"type": "object", "properties": {
            "name": {"type": "string"},
            "replicas": {"type": "integer"},
            "tier": {"type": "string", "enum": ["a", "b"]}
        }}));
        let new = crd(
            json!({"type": "object", "required": ["owner"], "properties": {
                "replicas": {"type": "string"},
                "tier": {"type": "string", "enum": ["a"]},
                "owner": {"type": "string"}
            }}),
        );
        let changes = breaking_changes(&old, &new);
        assert_eq!(changes.len(), 4, "{changes:?}");
        assert!(changes.iter().any(|c| c == ".spec.name: field removed"));
        assert!(
            changes
                .iter()
                .any(|c| c.contains(".spec.replicas: type changed from integer to string"))
        );
        assert!(
            changes
                .iter()
                .any(|c| c.contains(".spec.owner: new required field"))
        );
        assert!(
            changes
                .iter()
                .any(|c| c.contains(".spec.tier: enum values removed: \"b\""))
        );
    }
}

//! Self-contained schemas of built-in kinds from the OpenAPI v3 documents an
//! API server publishes (`/openapi/v3/apis/apps/v1`, ...). Those documents
//! spread one kind over many components joined by `$ref` (often wrapped in
//! a one-element `allOf`); the engine wants one inlined schema per kind to
//! check `deployment.status.availableReplicas` and to type status fields.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// Components nest this deeply at most in Kubernetes' own documents; deeper
/// (or recursive, like `JSONSchemaProps`) parts become open objects.
const MAX_DEPTH: usize = 32;

const REF_PREFIX: &str = "#/components/schemas/";

/// Every kind the document defines (components carrying
/// `x-kubernetes-group-version-kind`), keyed by `(apiVersion, kind)`, with
/// references inlined and descriptions dropped.
pub fn kind_schemas(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let Some(components) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return out;
    };
    for (name, component) in components {
        let Some(gvks) = component
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let mut resolved = None;
        for gvk in gvks {
            let (Some(version), Some(kind)) = (
                gvk.get("version").and_then(Value::as_str),
                gvk.get("kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            let group = gvk.get("group").and_then(Value::as_str).unwrap_or("");
            let api_version = if group.is_empty() {
                version.to_owned()
            } else {
                format!("{group}/{version}")
            };
            let schema = resolved
                .get_or_insert_with(|| resolve_component(doc, name).unwrap_or(Value::Null))
                .clone();
            out.insert((api_version, kind.to_owned()), schema);
        }
    }
    out
}

/// One component of the document with its references inlined.
pub fn resolve_component(doc: &Value, name: &str) -> Option<Value> {
    let components = doc.pointer("/components/schemas")?.as_object()?;
    let component = components.get(name)?;
    let mut stack = vec![name.to_owned()];
    Some(inline(component, components, &mut stack))
}

fn inline(node: &Value, components: &Map<String, Value>, stack: &mut Vec<String>) -> Value {
    let Value::Object(map) = node else {
        return node.clone();
    };
    if let Some(target) = map.get("$ref").and_then(Value::as_str) {
        return follow(target, map, components, stack);
    }
    // `allOf: [{$ref}]` is how the documents attach a default or a
    // description to a referenced type.
    if let Some(Value::Array(all)) = map.get("allOf")
        && let [only] = all.as_slice()
        && let Some(target) = only.get("$ref").and_then(Value::as_str)
    {
        return follow(target, map, components, stack);
    }
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "description" => {}
            "properties" => {
                let props = v
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(name, sub)| (name.clone(), inline(sub, components, stack)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" if v.is_object() => {
                out.insert(k.clone(), inline(v, components, stack));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn follow(
    target: &str,
    siblings: &Map<String, Value>,
    components: &Map<String, Value>,
    stack: &mut Vec<String>,
) -> Value {
    let name = target.strip_prefix(REF_PREFIX).unwrap_or(target);
    let resolved = match components.get(name) {
        Some(_) if stack.iter().any(|s| s == name) || stack.len() >= MAX_DEPTH => {
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
        }
        Some(component) => {
            stack.push(name.to_owned());
            let v = inline(component, components, stack);
            stack.pop();
            v
        }
        None => json!({"x-kubernetes-preserve-unknown-fields": true}),
    };
    let mut out = match resolved {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    // Keep what the referring site adds (a default, list semantics), except
    // the reference machinery itself.
    for (k, v) in siblings {
        if !matches!(k.as_str(), "$ref" | "allOf" | "description") {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "apps.Deployment": {
                "type": "object",
                "description": "dropped",
                "properties": {
                    "metadata": {"allOf": [{"$ref": "#/components/schemas/meta.ObjectMeta"}], "default": {}},
                    "status": {"$ref": "#/components/schemas/apps.DeploymentStatus"}
                },
                "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}]
            },
            "apps.DeploymentStatus": {
                "type": "object",
                "properties": {
                    "availableReplicas": {"type": "integer", "format": "int32"},
                    "conditions": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/apps.Condition"}]}}
                }
            },
            "apps.Condition": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
            "meta.ObjectMeta": {"type": "object", "properties": {"name": {"type": "string"}}},
            "core.ConfigMap": {
                "type": "object",
                "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}]
            },
            "Recursive": {
                "type": "object",
                "properties": {"child": {"$ref": "#/components/schemas/Recursive"}, "missing": {"$ref": "#/components/schemas/Nope"}},
                "x-kubernetes-group-version-kind": [{"group": "x.io", "kind": "R", "version": "v1"}]
            }
        }}})
    }

    #[test]
    fn kinds_are_keyed_by_api_version_and_kind() {
        let kinds = kind_schemas(&doc());
        let keys: Vec<_> = kinds.keys().cloned().collect();
        assert_eq!(
            keys,
            vec![
                ("apps/v1".to_owned(), "Deployment".to_owned()),
                ("v1".to_owned(), "ConfigMap".to_owned()),
                ("x.io/v1".to_owned(), "R".to_owned()),
            ]
        );
    }

    #[test]
    fn references_are_inlined() {
        let kinds = kind_schemas(&doc());
        let d = &kinds[&("apps/v1".to_owned(), "Deployment".to_owned())];
        assert!(d.get("description").is_none());
        assert_eq!(
            d["properties"]["metadata"],
            json!({"type": "object", "properties": {"name": {"type": "string"}}, "default": {}})
        );
        assert_eq!(
            d["properties"]["status"]["properties"]["conditions"]["items"],
            json!({"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}})
        );
        let node = crate::simpleschema::SchemaNode::new(d);
        assert_eq!(
            node.path("status.availableReplicas").unwrap().type_name(),
            Some("integer")
        );
    }

    #[test]
    fn recursion_and_dangling_refs_become_open() {
        let kinds = kind_schemas(&doc());
        let r = &kinds[&("x.io/v1".to_owned(), "R".to_owned())];
        assert_eq!(
            r["properties"]["child"],
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            r["properties"]["missing"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert!(resolve_component(&doc(), "nope").is_none());
        assert!(kind_schemas(&json!({})).is_empty());
    }
}

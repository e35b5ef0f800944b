//! CustomResourceDefinitions: validation, defaulting, and (un)registering the resources they define.

pub mod schema;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::catalog::{CustomVersion, ResourceDef};
use crate::error::Cause;
use crate::ids;
use crate::registry::fields;
use crate::state::Shared;
use crate::storage::{Data, EventType, ResourceKey};

/// Verbs of a custom resource, in the order the real server lists them.
const CR_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// The finalizer the server puts on a CRD being deleted until its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Applies the defaults the real server gives a CRD.
pub fn default_crd(root: &mut Map<String, Value>, creating: bool) {
    let Some(Value::Object(spec)) = root.get_mut("spec") else {
        return;
    };
    if !spec.contains_key("conversion") {
        spec.insert("conversion".into(), json!({"strategy": "None"}));
    }
    if let Some(Value::Object(names)) = spec.get_mut("names") {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !names.contains_key("singular") && !kind.is_empty() {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if !names.contains_key("listKind") && !kind.is_empty() {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let storage: Vec<Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    if creating {
        root.insert(
            "status".into(),
            json!({"acceptedNames": {"kind": "", "plural": ""}, "conditions": null, "storedVersions": storage}),
        );
    }
}

/// Validates a CRD like the apiextensions server.
pub fn validate_crd(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = obj
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let plural = obj
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name != format!("{plural}.{group}") {
        out.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        out.push(Cause::required("spec.group", ""));
    }
    if plural.is_empty() {
        out.push(Cause::required("spec.names.plural", ""));
    }
    if obj
        .pointer("/spec/names/kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        out.push(Cause::required("spec.names.kind", ""));
    }
    let scope = obj
        .pointer("/spec/scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if scope != "Namespaced" && scope != "Cluster" {
        out.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    let versions = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        out.push(Cause::invalid(
            "spec.versions",
            &json!(null),
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        if storage != 1 {
            out.push(Cause::invalid(
                "spec.versions",
                &json!(versions),
                "must have exactly one version marked as storage version",
            ));
        }
    }
    let schemas: Vec<Option<&Value>> = versions
        .iter()
        .map(|v| v.pointer("/schema/openAPIV3Schema"))
        .collect();
    // One schema for all versions is reported under the legacy top-level path, as the server
    // converts such CRDs internally.
    let same = schemas.windows(2).all(|w| w[0] == w[1]);
    for (i, s) in schemas.iter().enumerate() {
        let Some(s) = s else { continue };
        let base = if same {
            if i > 0 {
                continue;
            }
            "spec.validation.openAPIV3Schema".to_owned()
        } else {
            format!("spec.versions[{i}].schema.openAPIV3Schema")
        };
        out.extend(schema::structural_errors(s, &base));
    }
    out
}

/// The resources a CRD defines, one per served version.
pub fn resources_of(crd: &Value) -> Vec<ResourceDef> {
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let s = |p: &str| {
        spec.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let strings = |p: &str| -> Vec<String> {
        spec.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let group = s("/group");
    let kind = s("/names/kind");
    let plural = s("/names/plural");
    let singular = {
        let v = s("/names/singular");
        if v.is_empty() { kind.to_lowercase() } else { v }
    };
    let storage_version = spec
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(versions) = spec.get("versions").and_then(Value::as_array) else {
        return vec![];
    };
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .map(|v| {
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let subs = v.get("subresources").cloned().unwrap_or(Value::Null);
            ResourceDef {
                group: group.clone(),
                version: name.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                namespaced: s("/scope") == "Namespaced",
                short_names: strings("/names/shortNames"),
                categories: strings("/names/categories"),
                verbs: CR_VERBS.iter().map(|v| (*v).to_owned()).collect(),
                status: subs.get("status").is_some(),
                scale: subs.get("scale").is_some(),
                extra_sub: vec![],
                custom: Some(CustomVersion {
                    schema: Some(
                        v.pointer("/schema/openAPIV3Schema")
                            .cloned()
                            .unwrap_or_else(schema::permissive),
                    ),
                    printer_columns: v
                        .get("additionalPrinterColumns")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    storage: name == storage_version,
                    scale: subs.get("scale").cloned(),
                }),
                storage_version: storage_version.clone(),
            }
        })
        .collect()
}

/// A CRD was created or changed: (re)register its resources, mark it Established, and
/// finish its deletion once it is terminating.
pub fn on_write(sh: &Arc<Shared>, data: &mut Data, crd: &Value, _old: Option<&Value>) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if crate::meta::is_deleting(crd) {
        finish_deletion(sh, data, crd, &group, &plural);
        return;
    }
    {
        let mut cat = sh.catalog_mut();
        cat.remove(&group, &plural);
        for def in resources_of(crd) {
            cat.insert(def);
        }
    }
    let established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.get("type") == Some(&json!("Established")))
        });
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    if established && crd.pointer("/status/acceptedNames") == Some(&names) {
        return;
    }
    let mut new = crd.clone();
    let now = ids::now_rfc3339();
    new["status"]["acceptedNames"] = names;
    if !established {
        new["status"]["conditions"] = json!([
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ]);
    }
    if let Some(def) = sh
        .catalog()
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    {
        fields::record(
            &def,
            Some(crd),
            &mut new,
            "kube-apiserver",
            Some("status"),
            &now,
        );
    }
    let rv = data.next_rv();
    new["metadata"]["resourceVersion"] = json!(rv.to_string());
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let res: ResourceKey = (
        "apiextensions.k8s.io".into(),
        "customresourcedefinitions".into(),
    );
    data.put(
        &res,
        (String::new(), name),
        rv,
        Arc::from(serde_json::to_string(&new).unwrap_or_default()),
        EventType::Modified,
    );
}

fn finish_deletion(sh: &Arc<Shared>, data: &mut Data, crd: &Value, group: &str, plural: &str) {
    let res: ResourceKey = (group.to_owned(), plural.to_owned());
    let objs: Vec<(String, String, Arc<str>)> = data
        .list(&res, None)
        .map(|((ns, n), s)| (ns.clone(), n.clone(), s.json.clone()))
        .collect();
    for (ns, n, text) in objs {
        let rv = data.next_rv();
        let mut obj: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        data.remove(
            &res,
            &(ns, n),
            rv,
            Arc::from(serde_json::to_string(&obj).unwrap_or_default()),
        );
    }
    data.drop_resource(&res);
    sh.catalog_mut().remove(group, plural);
    let fins = crate::meta::finalizers(crd);
    let rest: Vec<&String> = fins.iter().filter(|f| *f != CLEANUP_FINALIZER).collect();
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let crd_res: ResourceKey = (
        "apiextensions.k8s.io".into(),
        "customresourcedefinitions".into(),
    );
    let rv = data.next_rv();
    let mut last = crd.clone();
    last["metadata"]["finalizers"] = json!(rest);
    last["metadata"]["resourceVersion"] = json!(rv.to_string());
    let text = Arc::from(serde_json::to_string(&last).unwrap_or_default());
    if rest.is_empty() {
        data.remove(&crd_res, &(String::new(), name), rv, text);
    } else {
        data.put(
            &crd_res,
            (String::new(), name),
            rv,
            text,
            EventType::Modified,
        );
    }
}

/// A CRD left storage: its resources are no longer served.
pub fn on_delete(sh: &Arc<Shared>, data: &mut Data, crd: &Value) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    data.drop_resource(&(group.to_owned(), plural.to_owned()));
    sh.catalog_mut().remove(group, plural);
}

/// The condition a CRD gets when its deletion starts.
pub fn terminating_condition() -> Value {
    json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionPending",
           "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
           "lastTransitionTime": ids::now_rfc3339()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_name_must_match_plural_and_group() {
        let crd = json!({"metadata": {"name": "wrong.x.io"}, "spec": {"group": "x.io", "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"}, "versions": [{"name": "v1", "served": true, "storage": true}]}});
        let causes = validate_crd(&crd, None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.name");
    }

    #[test]
    fn served_versions_become_resources() {
        let crd = json!({"spec": {"group": "x.io", "scope": "Cluster", "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                         {"name": "v2", "served": false, "storage": false}]}});
        let defs = resources_of(&crd);
        assert_eq!(defs.len(), 1);
        assert!(defs[0].status && !defs[0].namespaced);
        assert_eq!(defs[0].singular, "thing");
    }
}

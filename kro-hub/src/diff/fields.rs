//! The fields of an object that one field manager owns, as the API server
//! records them in `metadata.managedFields` (`fieldsV1`), and the unified
//! diff of two objects restricted to them. Pure.

use serde_json::{Map, Value};

/// Fields the API server sets on every write: never a change of content.
const VOLATILE_METADATA: [&str; 6] = [
    "resourceVersion",
    "managedFields",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

/// `obj` without what the server fills in on its own: the volatile
/// metadata and the status.
pub fn without_noise(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in VOLATILE_METADATA {
                meta.remove(key);
            }
        }
    }
    out
}

/// The union of the `fieldsV1` sets that `manager` applied to `obj`;
/// `None` when it has none.
pub fn owned_by(obj: &Value, manager: &str) -> Option<Value> {
    let entries = obj.pointer("/metadata/managedFields")?.as_array()?;
    let mut set: Option<Value> = None;
    for entry in entries {
        let ours = entry.get("manager").and_then(Value::as_str) == Some(manager)
            && entry.get("operation").and_then(Value::as_str) == Some("Apply");
        if !ours {
            continue;
        }
        let Some(fields) = entry.get("fieldsV1") else {
            continue;
        };
        set = Some(match set {
            Some(s) => union(&s, fields),
            None => fields.clone(),
        });
    }
    set
}

/// The union of two `fieldsV1` sets.
pub fn union(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = a.clone();
            for (k, bv) in b {
                let merged = match out.get(k) {
                    Some(av) => union(av, bv),
                    None => bv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (a, _) => a.clone(),
    }
}

/// The part of `value` that the `fieldsV1` set `set` names: `f:` keys of
/// maps, and list items named by key (`k:`), value (`v:`) or index (`i:`).
/// A member of the set with no children (or only `.`) takes the whole
/// value.
pub fn project(value: &Value, set: &Value) -> Value {
    let Some(set) = set.as_object() else {
        return value.clone();
    };
    if set.keys().all(|k| k == ".") {
        return value.clone();
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, sub) in set {
                let Some(name) = key.strip_prefix("f:") else {
                    continue;
                };
                if let Some(v) = map.get(name) {
                    out.insert(name.to_owned(), project(v, sub));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    set.iter()
                        .find(|(key, _)| names_item(key, index, item))
                        .map(|(_, sub)| project(item, sub))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether the `fieldsV1` key of a list item names `item` (at `index`).
fn names_item(key: &str, index: usize, item: &Value) -> bool {
    if let Some(fields) = key.strip_prefix("k:") {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) else {
            return false;
        };
        return fields.iter().all(|(k, v)| item.get(k) == Some(v));
    }
    if let Some(v) = key.strip_prefix("v:") {
        return serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item);
    }
    if let Some(i) = key.strip_prefix("i:") {
        return i.parse::<usize>().is_ok_and(|i| i == index);
    }
    false
}

/// `value` as YAML with sorted keys.
pub fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(&kro_core::json::sorted(value.clone()))
        .unwrap_or_else(|e| format!("# not printable: {e}\n"))
}

/// The unified diff, from `live` to `after` (what the server answered a
/// dry-run apply with), of the fields `manager` owns on either side;
/// empty when they are the same. Without managed fields on either side
/// (a server that does not record them), the whole objects less the
/// server's noise are compared.
pub fn owned_diff(live: &Value, after: &Value, manager: &str) -> String {
    let (before, after) = match (owned_by(live, manager), owned_by(after, manager)) {
        (None, None) => (without_noise(live), without_noise(after)),
        (a, b) => {
            let set = match (a, b) {
                (Some(a), Some(b)) => union(&a, &b),
                (Some(s), None) | (None, Some(s)) => s,
                (None, None) => Value::Null,
            };
            (
                project(&without_noise(live), &set),
                project(&without_noise(after), &set),
            )
        }
    };
    let (before, after) = (yaml(&before), yaml(&after));
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(2)
        .header("live", "after apply")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64, image: &str, by: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "7", "uid": "u",
                "labels": {"app": "web", "team": "other"},
                "managedFields": [
                    {"manager": by, "operation": "Apply", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}},
                    {"manager": "someone-else", "operation": "Update", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:team": {}}}}}
                ]},
            "spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate"},
                "template": {"spec": {"containers": [
                    {"name": "web", "image": image, "imagePullPolicy": "Always"}]}}},
            "status": {"replicas": replicas}
        })
    }

    #[test]
    fn only_the_managers_fields_are_compared() {
        let live = deployment(2, "nginx", "kro-hub");
        let after = deployment(3, "nginx", "kro-hub");
        let diff = owned_diff(&live, &after, "kro-hub");
        assert!(diff.contains("-  replicas: 2"), "{diff}");
        assert!(diff.contains("+  replicas: 3"), "{diff}");
        // Defaulted fields, other managers' fields, status and volatile
        // metadata are not the hub's.
        for noise in [
            "strategy",
            "imagePullPolicy",
            "team",
            "status",
            "resourceVersion",
        ] {
            assert!(!diff.contains(noise), "{noise} in {diff}");
        }
        assert_eq!(owned_diff(&live, &live, "kro-hub"), "");
    }

    #[test]
    fn list_items_are_matched_by_key() {
        let live = deployment(2, "nginx:1", "kro-hub");
        let after = deployment(2, "nginx:2", "kro-hub");
        let diff = owned_diff(&live, &after, "kro-hub");
        assert!(diff.contains("+      - image: nginx:2"), "{diff}");
        assert!(!diff.contains("imagePullPolicy"), "{diff}");
    }

    #[test]
    fn a_field_the_manager_gives_up_shows_as_removed() {
        let mut live = deployment(2, "nginx", "kro-hub");
        live["metadata"]["labels"]["tier"] = json!("front");
        live["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"]["f:tier"] =
            json!({});
        let after = deployment(2, "nginx", "kro-hub");
        let diff = owned_diff(&live, &after, "kro-hub");
        assert!(diff.contains("-    tier: front"), "{diff}");
    }

    #[test]
    fn without_managed_fields_whole_objects_less_noise_are_compared() {
        let live = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "1"}});
        let after = json!({"metadata": {"name": "a", "resourceVersion": "2"}, "data": {"k": "2"}});
        let diff = owned_diff(&live, &after, "kro-hub");
        assert!(
            diff.contains("+  k: '2'") || diff.contains("+  k: \"2\""),
            "{diff}"
        );
        assert!(!diff.contains("resourceVersion"), "{diff}");
    }
}

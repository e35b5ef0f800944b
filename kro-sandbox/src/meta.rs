//! Object metadata helpers: name rules and small JSON accessors.

use serde_json::{Map, Value};

use crate::error::Cause;
use crate::validation;

/// How a kind's names are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most kinds).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services).
    Dns1035,
    /// Path segment only (RBAC kinds: anything without `/` or `%`, not `.`/`..`).
    PathSegment,
}

/// The name rule of a resource.
pub fn name_rule(group: &str, plural: &str) -> NameRule {
    match (group, plural) {
        ("", "namespaces") => NameRule::Label,
        ("", "services") => NameRule::Dns1035,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// The messages of a kind's name function (apimachinery's `NameIsDNSSubdomain`,
/// `NameIsDNSLabel`, `NameIsDNS1035Label`, `ValidatePathSegmentName`). For a
/// `generateName` prefix (`prefix`), a trailing dash is masked first, as
/// `maskTrailingDash` in `pkg/api/validation/generic.go` does: it replaces the last two
/// characters by `a`.
pub fn name_messages(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = if prefix && rule != NameRule::PathSegment && name.len() > 1 && name.ends_with('-') {
        masked = format!("{}a", name.get(..name.len() - 2).unwrap_or_default());
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Subdomain => validation::dns1123_subdomain(name),
        NameRule::Label => validation::dns1123_label(name),
        NameRule::Dns1035 => validation::dns1035_label(name),
        NameRule::PathSegment if prefix => validation::path_segment_prefix(name),
        NameRule::PathSegment => validation::path_segment_name(name),
    }
}

/// Validates a name, returning the causes the real server reports.
pub fn validate_name(rule: NameRule, name: &str, field: &str) -> Vec<Cause> {
    let v = Value::String(name.to_owned());
    name_messages(rule, name, false)
        .iter()
        .map(|m| Cause::invalid(field, &v, m))
        .collect()
}

/// ObjectMeta's fields in Go struct order, which is how the real server
/// serializes them; also the set of fields ObjectMeta has (what pruning
/// keeps in `metadata`).
pub(crate) const META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Puts `apiVersion`, `kind`, `metadata` first and metadata's fields in the real server's
/// order, so stored objects serialize as the real server's do.
pub fn canonical_order(obj: &mut Value) {
    let Value::Object(root) = obj else { return };
    if let Some(Value::Object(m)) = root.get_mut("metadata") {
        let mut sorted = Map::new();
        for k in META_ORDER {
            if let Some(v) = m.shift_remove(*k) {
                sorted.insert((*k).to_owned(), v);
            }
        }
        sorted.append(m);
        *m = sorted;
    }
    let mut head = Map::new();
    for k in ["apiVersion", "kind", "metadata"] {
        if let Some(v) = root.shift_remove(k) {
            head.insert(k.to_owned(), v);
        }
    }
    head.append(root);
    *root = head;
}

/// `obj.metadata`, created if missing or not an object.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable!("made an object above")
    };
    let m = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    match m {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(key)?.as_str()
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the object carries a deletionTimestamp.
pub fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(validate_name(NameRule::Subdomain, "a.b-c", "metadata.name").is_empty());
        assert_eq!(
            validate_name(NameRule::Subdomain, "Bad_Name", "metadata.name").len(),
            1
        );
        assert!(!validate_name(NameRule::Dns1035, "1abc", "metadata.name").is_empty());
        assert!(validate_name(NameRule::PathSegment, "system:admin", "metadata.name").is_empty());
    }
}

//! Object metadata helpers: name rules and small JSON accessors.

use serde_json::{Map, Value};

use crate::error::Cause;

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

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Validates a name, returning the causes the real server reports.
pub fn validate_name(rule: NameRule, name: &str, field: &str) -> Vec<Cause> {
    let v = Value::String(name.to_owned());
    match rule {
        NameRule::Subdomain => {
            let mut out = Vec::new();
            if name.len() > 253 {
                out.push(Cause::invalid(
                    field,
                    &v,
                    "must be no more than 253 characters",
                ));
            }
            if !name.split('.').all(is_label) {
                out.push(Cause::invalid(field, &v, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
            }
            out
        }
        NameRule::Label => {
            if is_label(name) {
                vec![]
            } else {
                vec![Cause::invalid(
                    field,
                    &v,
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                )]
            }
        }
        NameRule::Dns1035 => {
            if is_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()) {
                vec![]
            } else {
                vec![Cause::invalid(
                    field,
                    &v,
                    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                )]
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                vec![Cause::invalid(field, &v, &format!("may not be '{name}'"))]
            } else if let Some(bad) = ["/", "%"].iter().find(|s| name.contains(**s)) {
                vec![Cause::invalid(
                    field,
                    &v,
                    &format!("may not contain '{bad}'"),
                )]
            } else {
                vec![]
            }
        }
    }
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

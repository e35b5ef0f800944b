//! The rules every kind's `metadata` obeys on create and update, whatever the kind.
//!
//! They follow apimachinery's `pkg/api/validation/objectmeta.go`
//! (`ValidateObjectMetaAccessor`, `ValidateObjectMetaAccessorUpdate`) and the callers that
//! decide how often each runs: on create the kind's own `Validate` checks `metadata` once
//! with the kind's name function (`rest.BeforeCreate` only runs the generic check when the
//! kind's passed, so it adds nothing); on update `rest.BeforeUpdate` runs the generic
//! create and update checks (`validateCommonFields`, names as path segments) and then the
//! kind's `ValidateUpdate`, which for built-in kinds checks the update again and, for some,
//! the whole object again. An invalid label on an update is therefore reported several
//! times, exactly as the real server reports it.

use serde_json::{Map, Value, json};

use crate::error::{Cause, go_quote};
use crate::meta::{self, NameRule, finalizers};
use crate::validation::{label_value, qualified_name};

/// Whose `ObjectMeta` validation a kind uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaFlavor {
    /// Built-in kinds (`pkg/apis/core/validation`): apimachinery's rules plus finalizer
    /// names that must be standard (`kubernetes`, `orphan`, `foregroundDeletion`) or
    /// domain-qualified.
    Builtin,
    /// Custom resources and CRDs: apimachinery's rules alone.
    Generic,
}

/// How a kind's `ValidateUpdate` revisits `metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateRecheck {
    /// `ValidateObjectMetaUpdate` only (workloads, custom resources).
    UpdateOnly,
    /// `ValidateObjectMetaUpdate` and then the kind's create validation of the new object
    /// (ConfigMaps, Secrets, Services, RBAC, ...).
    UpdateAndCreate,
}

/// The standard finalizer names a built-in kind accepts without a domain.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

fn meta_of(obj: &Value) -> Map<String, Value> {
    match obj.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `ValidateLabels`: every key a qualified name, every value a label value.
fn labels(m: &Map<String, Value>, causes: &mut Vec<Cause>) {
    let Some(Value::Object(labels)) = m.get("labels") else {
        return;
    };
    for (k, v) in labels {
        for msg in qualified_name(k) {
            causes.push(Cause::invalid("metadata.labels", &json!(k), &msg));
        }
        let v = v.as_str().unwrap_or_default();
        for msg in label_value(v) {
            causes.push(Cause::invalid("metadata.labels", &json!(v), &msg));
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names once lower-cased; all of them together
/// at most 256 KiB.
fn annotations(m: &Map<String, Value>, causes: &mut Vec<Cause>) {
    let Some(Value::Object(annotations)) = m.get("annotations") else {
        return;
    };
    let mut size = 0usize;
    for (k, v) in annotations {
        for msg in qualified_name(&k.to_lowercase()) {
            causes.push(Cause::invalid("metadata.annotations", &json!(k), &msg));
        }
        size += k.len() + v.as_str().map_or(0, str::len);
    }
    const LIMIT: usize = 256 * 1024;
    if size > LIMIT {
        causes.push(Cause::new(
            "FieldValueTooLong",
            "metadata.annotations",
            format!("Too long: may not be more than {LIMIT} bytes"),
        ));
    }
}

/// `validateOwnerReference` for each reference (the paths carry no index, as on the real
/// server).
fn owner_references(m: &Map<String, Value>, causes: &mut Vec<Cause>) {
    let Some(Value::Array(refs)) = m.get("ownerReferences") else {
        return;
    };
    for r in refs {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let api_version = field("apiVersion");
        // `schema.ParseGroupVersion`: `v1`, `group/version`; anything else has no version.
        let version = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => *v,
            [_, v] => *v,
            _ => "",
        };
        let path = "metadata.ownerReferences";
        if version.is_empty() {
            causes.push(Cause::invalid(
                format!("{path}.apiVersion"),
                &json!(api_version),
                "version must not be empty",
            ));
        }
        for k in ["kind", "name", "uid"] {
            if field(k).is_empty() {
                causes.push(Cause::invalid(
                    format!("{path}.{k}"),
                    &json!(field(k)),
                    "must not be empty",
                ));
            }
        }
    }
}

/// `ValidateFinalizers`: qualified names, and not both `orphan` and `foregroundDeletion`.
fn finalizer_names(obj: &Value, causes: &mut Vec<Cause>) {
    let fins = finalizers(obj);
    for f in &fins {
        for msg in qualified_name(f) {
            causes.push(Cause::invalid("metadata.finalizers", &json!(f), &msg));
        }
    }
    if fins.iter().any(|f| f == "orphan") && fins.iter().any(|f| f == "foregroundDeletion") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.finalizers",
            format!(
                "Invalid value: {}: finalizer orphan and foregroundDeletion cannot be both set",
                go_string_slice(&fins)
            ),
        ));
    }
}

/// `validateKubeFinalizerName` of `pkg/apis/core/validation`: a built-in kind's finalizer
/// without a domain must be a standard one.
fn kube_finalizer_names(obj: &Value, causes: &mut Vec<Cause>) {
    for (i, f) in finalizers(obj).iter().enumerate() {
        if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            causes.push(Cause::invalid(
                format!("metadata.finalizers[{i}]"),
                &json!(f),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// `ValidateObjectMetaAccessor`: the create checks, with the kind's name function.
fn accessor(obj: &Value, namespaced: bool, rule: NameRule, causes: &mut Vec<Cause>) {
    let m = meta_of(obj);
    let generate_name = str_of(&m, "generateName");
    if !generate_name.is_empty() {
        for msg in meta::name_messages(rule, generate_name, true) {
            causes.push(Cause::invalid(
                "metadata.generateName",
                &json!(generate_name),
                &msg,
            ));
        }
    }
    let name = str_of(&m, "name");
    if name.is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        causes.extend(meta::validate_name(rule, name, "metadata.name"));
    }
    let ns = str_of(&m, "namespace");
    if namespaced {
        if ns.is_empty() {
            causes.push(Cause::required("metadata.namespace", ""));
        } else {
            causes.extend(meta::validate_name(
                NameRule::Label,
                ns,
                "metadata.namespace",
            ));
        }
    } else if !ns.is_empty() {
        causes.push(Cause::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(g) = m.get("generation").and_then(Value::as_i64)
        && g < 0
    {
        causes.push(Cause::invalid(
            "metadata.generation",
            &json!(g),
            "must be greater than or equal to 0",
        ));
    }
    labels(&m, causes);
    annotations(&m, causes);
    owner_references(&m, causes);
    finalizer_names(obj, causes);
}

/// `ValidateImmutableField` of one metadata field. Times and integers print without
/// quotes (Go's `Stringer` and simple printers), strings quoted.
fn immutable(new: &Map<String, Value>, old: &Map<String, Value>, k: &str, causes: &mut Vec<Cause>) {
    let (n, o) = (new.get(k), old.get(k));
    let empty = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.as_str() == Some(""));
    if n == o || (empty(n) && empty(o)) {
        return;
    }
    let shown = match (k, n) {
        (_, None) | (_, Some(Value::Null)) => match k {
            "deletionTimestamp" | "deletionGracePeriodSeconds" => "null".to_owned(),
            _ => "\"\"".to_owned(),
        },
        ("deletionTimestamp" | "creationTimestamp", Some(Value::String(t))) => go_time(t),
        (_, Some(v)) => go_quote(v),
    };
    causes.push(Cause::new(
        "FieldValueInvalid",
        format!("metadata.{k}"),
        format!("Invalid value: {shown}: field is immutable"),
    ));
}

/// A metav1.Time as Go's `time.Time.String()` prints it (the server's zone is UTC).
fn go_time(rfc3339: &str) -> String {
    match crate::ids::parse_rfc3339(rfc3339) {
        Some(secs) => {
            let t = crate::ids::rfc3339(secs);
            format!(
                "{} +0000 UTC",
                t.trim_end_matches('Z').replacen('T', " ", 1)
            )
        }
        None => format!("{rfc3339:?}"),
    }
}

/// `ValidateObjectMetaAccessorUpdate`.
fn accessor_update(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let (n, o) = (meta_of(new), meta_of(old));
    if o.get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
        let before = finalizers(old);
        let mut added: Vec<String> = finalizers(new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        added.sort();
        added.dedup();
        if !added.is_empty() {
            causes.push(Cause::forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_string_slice(&added)
                ),
            ));
        }
    }
    let generation =
        |m: &Map<String, Value>| m.get("generation").and_then(Value::as_i64).unwrap_or(0);
    if generation(&n) < generation(&o) {
        causes.push(Cause::invalid(
            "metadata.generation",
            &json!(generation(&n)),
            "must not be decremented",
        ));
    }
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        immutable(&n, &o, k, causes);
    }
    labels(&n, causes);
    annotations(&n, causes);
    owner_references(&n, causes);
}

/// The metadata causes of a create: the kind's `ValidateObjectMeta`.
pub fn on_create(obj: &Value, namespaced: bool, rule: NameRule, flavor: MetaFlavor) -> Vec<Cause> {
    let mut causes = Vec::new();
    accessor(obj, namespaced, rule, &mut causes);
    if flavor == MetaFlavor::Builtin {
        kube_finalizer_names(obj, &mut causes);
    }
    causes
}

/// The metadata causes of an update, with each check repeated as often as the real
/// server runs it (see the module documentation).
pub fn on_update(
    new: &Value,
    old: &Value,
    namespaced: bool,
    rule: NameRule,
    flavor: MetaFlavor,
    recheck: UpdateRecheck,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    // rest.BeforeUpdate's validateCommonFields.
    accessor(new, namespaced, NameRule::PathSegment, &mut causes);
    accessor_update(new, old, &mut causes);
    // The kind's ValidateUpdate.
    accessor_update(new, old, &mut causes);
    if flavor == MetaFlavor::Builtin {
        kube_finalizer_names(new, &mut causes);
        if recheck == UpdateRecheck::UpdateAndCreate {
            causes.extend(on_create(new, namespaced, rule, flavor));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_checks_labels_annotations_owners_and_finalizers() {
        let obj = json!({"metadata": {"name": "a", "namespace": "default",
            "labels": {"bad key": "ok", "k": "-bad"},
            "annotations": {"Example.com/Fine": "", "/x": ""},
            "ownerReferences": [{"apiVersion": "apps/", "kind": "", "name": "o", "uid": "u"}],
            "finalizers": ["plain", "example.com/ok", "orphan", "foregroundDeletion"]}});
        let causes = on_create(&obj, true, NameRule::Subdomain, MetaFlavor::Builtin);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.labels",
                "metadata.labels",
                "metadata.annotations",
                "metadata.ownerReferences.apiVersion",
                "metadata.ownerReferences.kind",
                "metadata.finalizers",
                "metadata.finalizers[0]",
            ]
        );
        assert_eq!(
            causes[5].message,
            "Invalid value: []string{\"plain\", \"example.com/ok\", \"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"
        );
        // Custom resources accept any qualified finalizer name.
        let generic = on_create(&obj, true, NameRule::Subdomain, MetaFlavor::Generic);
        assert!(generic.iter().all(|c| c.field != "metadata.finalizers[0]"));
    }

    #[test]
    fn generate_name_prefixes_mask_their_dash() {
        let ok = json!({"metadata": {"name": "web-x1", "generateName": "web-"}});
        assert!(on_create(&ok, false, NameRule::Subdomain, MetaFlavor::Generic).is_empty());
        let bad = json!({"metadata": {"name": "x", "generateName": "Web-"}});
        let c = on_create(&bad, false, NameRule::Subdomain, MetaFlavor::Generic);
        assert_eq!(c[0].field, "metadata.generateName");
    }

    #[test]
    fn updates_repeat_what_the_server_repeats() {
        let old = json!({"metadata": {"name": "a", "uid": "u1", "resourceVersion": "3"}});
        let new = json!({"metadata": {"name": "a", "uid": "u2", "labels": {"k": "-"}}});
        let c = on_update(
            &new,
            &old,
            false,
            NameRule::Subdomain,
            MetaFlavor::Builtin,
            UpdateRecheck::UpdateAndCreate,
        );
        let uid = c.iter().filter(|c| c.field == "metadata.uid").count();
        let labels = c.iter().filter(|c| c.field == "metadata.labels").count();
        assert_eq!((uid, labels), (2, 4));
        assert_eq!(
            c.iter()
                .find(|c| c.field == "metadata.uid")
                .map(|c| c.message.as_str()),
            Some("Invalid value: \"u2\": field is immutable")
        );
        let t = json!({"metadata": {"name": "a", "deletionTimestamp": "2025-01-02T03:04:05Z"}});
        let c = on_update(
            &t,
            &json!({"metadata": {"name": "a"}}),
            false,
            NameRule::Subdomain,
            MetaFlavor::Generic,
            UpdateRecheck::UpdateOnly,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].message,
            "Invalid value: 2025-01-02 03:04:05 +0000 UTC: field is immutable"
        );
    }
}

//! What the real server does to an object between decoding and storage: field validation mode,
//! defaulting, kind-specific validation, generation rules and the side effects of writes
//! (CRD registration, namespace cleanup).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::api::Call;
use crate::builtin;
use crate::catalog::ResourceDef;
use crate::crd;
use crate::error::{ApiError, ApiResult, Cause};
use crate::state::Shared;
use crate::store::Data;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown or duplicate fields fail the request.
    Strict,
    /// They are dropped with a `Warning` header (the default).
    Warn,
    /// They are dropped silently.
    Ignore,
}

impl FieldValidation {
    /// Reads `fieldValidation`; `options_kind` words the error (`CreateOptions`, ...).
    pub fn from_call(call: &Call, options_kind: &str) -> ApiResult<Self> {
        match call.q("fieldValidation").unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Strict" => Ok(Self::Strict),
            "Ignore" => Ok(Self::Ignore),
            other => Err(ApiError::invalid(
                "meta.k8s.io",
                options_kind,
                "",
                vec![Cause::new(
                    "FieldValueNotSupported",
                    "fieldValidation",
                    format!(
                        "Unsupported value: {other:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                    ),
                )],
            )),
        }
    }
}

/// Kinds whose objects carry `metadata.generation`.
pub fn has_generation(def: &ResourceDef) -> bool {
    def.custom.is_some()
        || matches!(
            (def.group.as_str(), def.plural.as_str()),
            (
                "apps",
                "deployments" | "replicasets" | "statefulsets" | "daemonsets"
            ) | ("batch", "jobs" | "cronjobs")
                | (
                    "networking.k8s.io",
                    "ingresses" | "networkpolicies" | "ingressclasses"
                )
                | ("policy", "poddisruptionbudgets")
                | ("apiextensions.k8s.io", "customresourcedefinitions")
        )
}

/// Whether a write through the main endpoint may change `status` (kinds without `/status`).
pub fn status_writable_on_main(def: &ResourceDef) -> bool {
    !def.status
}

/// Whether the change bumps `generation`: spec (or, without a status subresource, anything
/// but metadata) differs.
pub fn spec_changed(def: &ResourceDef, old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            m.shift_remove("metadata");
            if def.status {
                m.shift_remove("status");
            }
        }
        v
    };
    strip(old) != strip(new)
}

/// Defaulting, pruning and schema checks before validation. Returns warnings.
pub fn admit(
    sh: &Shared,
    def: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    sub: Option<&str>,
    fv: FieldValidation,
) -> ApiResult<Vec<String>> {
    let mut warnings = Vec::new();
    let unknown = if let Some(custom) = &def.custom {
        crd::schema::admit(def, custom, obj, sub)?
    } else {
        builtin::take_unknown_fields(def, obj)
    };
    if !unknown.is_empty() {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or(&def.kind)
            .to_owned();
        let msgs: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match fv {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                    def.version,
                    msgs.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(msgs),
            FieldValidation::Ignore => {}
        }
    }
    if def.custom.is_none() {
        builtin::default(sh, def, obj, old);
    }
    if old.is_none() && def.status && def.custom.is_some() {
        // A custom resource's status is written only through /status.
        if let Value::Object(m) = obj {
            m.shift_remove("status");
        }
    }
    Ok(warnings)
}

/// Kind-specific validation after defaulting.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    if let Some(custom) = &def.custom {
        return crd::schema::validate(custom, obj);
    }
    if def.group == "apiextensions.k8s.io" {
        return crd::validate_crd(obj, old);
    }
    builtin::validate(def, obj, old)
}

/// Fields the server fills on create once identity and ownership are set.
pub fn server_fill(sh: &Shared, def: &ResourceDef, obj: &mut Value) {
    if def.custom.is_none() {
        builtin::server_fill(sh, def, obj);
    }
}

/// Side effects of a stored create or update.
pub fn after_write(
    sh: &Arc<Shared>,
    data: &mut Data,
    def: &ResourceDef,
    obj: &Value,
    old: Option<&Value>,
) {
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        crd::on_write(sh, data, obj, old);
    }
    if def.group.is_empty() && def.plural == "namespaces" && crate::meta::is_deleting(obj) {
        builtin::schedule_namespace_cleanup(sh, obj);
    }
}

/// Side effects of an object leaving storage.
pub fn after_delete(sh: &Arc<Shared>, data: &mut Data, def: &ResourceDef, obj: &Value) {
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        crd::on_delete(sh, data, obj);
    }
}

/// A finalizer the server itself adds when deletion starts.
pub fn deletion_finalizer(def: &ResourceDef, _obj: &Value) -> Option<&'static str> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            Some("customresourcecleanup.apiextensions.k8s.io")
        }
        _ => None,
    }
}

/// Whether deletion waits for something other than `metadata.finalizers` (a namespace's
/// `spec.finalizers`).
pub fn graceful_delete(def: &ResourceDef, obj: &Value) -> bool {
    def.group.is_empty()
        && def.plural == "namespaces"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

/// Whether a deletion records `deletionGracePeriodSeconds` (CRDs have their own delete).
pub fn deletion_grace(def: &ResourceDef) -> bool {
    !(def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions")
}

/// Changes an object gets when its deletion starts.
pub fn on_deleting(def: &ResourceDef, obj: &mut Value) {
    if def.group.is_empty() && def.plural == "namespaces" {
        obj["status"] = json!({"phase": "Terminating"});
    }
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        let cond = crd::terminating_condition();
        match obj.pointer_mut("/status/conditions") {
            Some(Value::Array(c)) => c.push(cond),
            _ => obj["status"]["conditions"] = json!([cond]),
        }
    }
}

/// Kinds whose immediate delete answers with the object rather than a `Status`.
pub fn delete_returns_object(def: &ResourceDef) -> bool {
    matches!(
        (def.group.as_str(), def.plural.as_str()),
        ("", "pods" | "namespaces") | ("apiextensions.k8s.io", "customresourcedefinitions")
    ) || def.custom.is_some()
}

/// Inserts `key: value` into an object when absent.
pub fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if !m.contains_key(key) {
        m.insert(key.to_owned(), value);
    }
}

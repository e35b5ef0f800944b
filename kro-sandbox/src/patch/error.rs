//! Patch failures, with the HTTP code, reason and message the real server uses.

use serde_json::{Map, Value, json};

use super::fieldpath::{Path, path_string};

/// One field another manager owns, found by an apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldConflict {
    /// The owning manager, already rendered (`"alice"`, `"carol" using v1`).
    pub manager: String,
    /// The conflicting path.
    pub path: Path,
}

/// Why a patch could not be applied.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not valid for its type (400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch operation failed (`test` mismatch, missing path): 422
    /// with the real server's generic message; the detail is for logs only.
    #[error("the server rejected our request due to an error in our request")]
    JsonPatchFailed(String),
    /// Server-side apply without `fieldManager` (422 on `PatchOptions`).
    #[error(
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    )]
    MissingFieldManager,
    /// Fields owned by other managers would change (409 Conflict).
    #[error("{}", conflict_message(.0))]
    Conflict(Vec<FieldConflict>),
    /// The applied configuration does not fit the schema (500, no reason).
    #[error("failed to create typed patch object ({object}; {gvk}): {detail}")]
    TypedPatch {
        /// `namespace/name` of the applied object.
        object: String,
        /// `group/version, Kind=Kind`.
        gvk: String,
        /// Path and reason, e.g. `.spec.x: field not declared in schema`.
        detail: String,
    },
    /// The patched object has a value of the wrong type (422 on the `patch` field).
    #[error(" \"\" is invalid: patch: Invalid value: {object}: {detail}")]
    WrongType {
        /// The patched object as a quoted JSON string.
        object: String,
        /// Go's unmarshal error text.
        detail: String,
    },
    /// The patch type is not accepted for this kind (415).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {}",
        .0.join(", ")
    )]
    UnsupportedMediaType(Vec<&'static str>),
}

fn conflict_message(conflicts: &[FieldConflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager,
            path_string(&one.path)
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", path_string(&c.path)));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

impl PatchError {
    /// The HTTP status code.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::JsonPatchFailed(_) | Self::MissingFieldManager | Self::WrongType { .. } => 422,
            Self::Conflict(_) => 409,
            Self::TypedPatch { .. } => 500,
            Self::UnsupportedMediaType(_) => 415,
        }
    }

    /// `Status.reason`; empty when the real server sends none.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::JsonPatchFailed(_) | Self::MissingFieldManager | Self::WrongType { .. } => {
                "Invalid"
            }
            Self::Conflict(_) => "Conflict",
            Self::TypedPatch { .. } => "",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
        }
    }

    /// `Status.message`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// `Status.details`, when the real server sends one.
    pub fn details(&self) -> Option<Value> {
        match self {
            Self::BadRequest(_) | Self::TypedPatch { .. } | Self::UnsupportedMediaType(_) => None,
            Self::JsonPatchFailed(_) => Some(json!({})),
            Self::MissingFieldManager => Some(json!({
                "causes": [{"reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager"}],
                "group": "meta.k8s.io",
                "kind": "PatchOptions",
            })),
            Self::Conflict(cs) => Some(json!({"causes": cs.iter().map(|c| json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", c.manager),
                "field": path_string(&c.path),
            })).collect::<Vec<_>>()})),
            Self::WrongType { object, detail } => Some(json!({"causes": [{
                "reason": "FieldValueInvalid",
                "message": format!("Invalid value: {object}: {detail}"),
                "field": "patch",
            }]})),
        }
    }

    /// The whole `Status` object.
    pub fn to_status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        m.insert("message".into(), json!(self.message()));
        if !self.reason().is_empty() {
            m.insert("reason".into(), json!(self.reason()));
        }
        if let Some(d) = self.details() {
            m.insert("details".into(), d);
        }
        m.insert("code".into(), json!(self.status_code()));
        Value::Object(m)
    }
}

//! Patch engine: JSON merge patch, JSON patch, strategic merge patch,
//! server-side apply and `managedFields`, as pure functions over
//! `serde_json::Value` (no I/O, no storage).
//!
//! # How the server uses it
//!
//! 1. Build a [`TypeInfo`] for the target kind: [`TypeInfo::builtin`] for
//!    built-in kinds (schemas come from the real server's OpenAPI, embedded),
//!    [`TypeInfo::custom`] for CRD kinds with the served version's
//!    `openAPIV3Schema` and whether the CRD enables `/status`.
//! 2. PATCH: map the `Content-Type` with [`PatchType::from_content_type`]
//!    (`None`: answer 415 yourself). [`PatchType::accepted_for`] lists what a
//!    kind accepts; [`apply_patch`] also rejects strategic merge patch on
//!    custom kinds with the real server's 415.
//! 3. Call [`apply_patch`] with the live object (`None` when it does not
//!    exist: only [`PatchType::Apply`] then creates; the others are a 404 the
//!    server answers before calling). The result keeps the live
//!    `managedFields`; for `Apply` they are already updated.
//! 4. Default and validate the result, then, for every write that is not an
//!    apply (create, update, merge/JSON/strategic patch), call
//!    [`record_update`] with the previous object (`None` on create) and the
//!    new one *after defaulting but before the server fills fields itself*
//!    (namespace `spec.finalizers`, `status` reset, `generation`,
//!    `resourceVersion`...): fields set by defaulting belong to the writer,
//!    as on the real server; fields the server fills later belong to no one.
//! 5. Errors: [`PatchError::status_code`], [`PatchError::reason`],
//!    [`PatchError::message`], [`PatchError::details`] or the whole
//!    [`PatchError::to_status`].
//!
//! The manager name is the `fieldManager` query parameter, else
//! [`manager_from_user_agent`]. Server-side apply requires `fieldManager`
//! ([`PatchError::MissingFieldManager`]).
//!
//! Subresources: pass `Some("status")` for `/status` writes; ownership is
//! then computed over `status` alone and the entry carries
//! `subresource: status`. Writes to the main resource of a kind with a
//! status subresource do not own `status`. For `/scale` writes, call
//! [`record_update`] with the parent objects (before and after the replica
//! change) and `Some("scale")`: the entry then owns `spec.replicas` with the
//! parent's apiVersion and `subresource: scale`, as on the real server.
//!
//! Other things the server should know:
//! - [`TypeInfo`] is cheap to clone (an `Arc`); build it once per resource
//!   and reuse it. [`TypeInfo::custom_shared`] avoids copying a CRD schema.
//! - Merge, JSON and strategic patches of built-in kinds are type-checked
//!   like the real server's Go decoding ([`PatchError::WrongType`], 422).
//!   For creates and updates, [`types::check_types`] gives Go's text for the
//!   real server's 400 (`{Kind} in version "v1" cannot be handled as a
//!   {Kind}: <text>`).
//! - [`types::unknown_fields`] and [`types::prune_unknown`] find and drop
//!   undeclared fields of built-in objects at any depth (strict decoding
//!   names them like `spec.template.spec.containers[0].foo`).
//! - An applied configuration is merged as sent: a `metadata.resourceVersion`
//!   in it ends up in the result and is the precondition to check; a
//!   `metadata.name` differing from the URL is left for the server to reject
//!   after conflicts were checked (the real server's order).
//! - Unknown fields in an applied configuration fail with the real server's
//!   500 `failed to create typed patch object`, whatever `fieldValidation`.
//! - A `null` in an applied configuration removes the field.
//! - An applied configuration must carry the request's `apiVersion` and no
//!   `managedFields` (400s worded like the real server's).
//! - The first apply to an object without `managedFields` attributes its
//!   current fields to `before-first-apply`, as the real server does.
//! - At most ten `Update` entries are kept; older ones merge into
//!   `ancient-changes`.
//! - A `kubectl` apply refreshes an existing
//!   `kubectl.kubernetes.io/last-applied-configuration` annotation.

mod error;
pub mod fieldpath;
pub mod json;
pub mod managed;
pub mod merge;
pub mod schema;
pub mod ssa;
pub mod strategic;
mod typed;
pub mod types;

use serde_json::Value;

pub use error::{FieldConflict, PatchError};
pub use schema::TypeInfo;

/// The four patch formats of `PATCH` requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

const JSON_CT: &str = "application/json-patch+json";
const MERGE_CT: &str = "application/merge-patch+json";
const STRATEGIC_CT: &str = "application/strategic-merge-patch+json";
const APPLY_CT: &str = "application/apply-patch+yaml";

impl PatchType {
    /// The patch type of a `Content-Type` header (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            MERGE_CT => Some(Self::Merge),
            JSON_CT => Some(Self::Json),
            STRATEGIC_CT => Some(Self::Strategic),
            APPLY_CT => Some(Self::Apply),
            _ => None,
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Merge => MERGE_CT,
            Self::Json => JSON_CT,
            Self::Strategic => STRATEGIC_CT,
            Self::Apply => APPLY_CT,
        }
    }

    /// Media types a kind accepts, in the order the real server lists them.
    pub fn accepted_for(kind: &TypeInfo) -> Vec<&'static str> {
        if kind.is_builtin() {
            vec![JSON_CT, MERGE_CT, STRATEGIC_CT, APPLY_CT]
        } else {
            vec![JSON_CT, MERGE_CT, APPLY_CT]
        }
    }
}

/// Request options that matter to a patch.
#[derive(Clone, Copy, Debug)]
pub struct PatchOptions<'a> {
    /// Field manager (`fieldManager` or derived from the User-Agent).
    pub manager: &'a str,
    /// `force=true` on server-side apply.
    pub force: bool,
    /// `Some("status")` for the status subresource.
    pub subresource: Option<&'a str>,
    /// Current time, RFC 3339 (`2024-01-02T03:04:05Z`), for `managedFields`.
    pub now: &'a str,
}

/// Applies a patch body to the live object (`None`: the object does not
/// exist, valid for `Apply` only, which then creates it).
pub fn apply_patch(
    kind: &TypeInfo,
    live: Option<&Value>,
    patch_body: &[u8],
    pt: PatchType,
    opts: &PatchOptions<'_>,
) -> Result<Value, PatchError> {
    if !PatchType::accepted_for(kind).contains(&pt.content_type()) {
        return Err(PatchError::UnsupportedMediaType(PatchType::accepted_for(
            kind,
        )));
    }
    let empty = Value::Object(serde_json::Map::new());
    let patched = match pt {
        PatchType::Apply => {
            if opts.manager.is_empty() {
                return Err(PatchError::MissingFieldManager);
            }
            let config = ssa::parse_body(patch_body)?;
            let w = managed::Write {
                manager: opts.manager,
                subresource: opts.subresource,
                now: opts.now,
            };
            return ssa::apply(kind, live, &config, w, opts.force);
        }
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(patch_body)
                .map_err(|_| PatchError::BadRequest("Invalid JSON Patch".into()))?;
            let mut out = live.cloned().unwrap_or(empty);
            merge::merge_patch(&mut out, &patch);
            out
        }
        PatchType::Json => {
            let ops = json::parse(patch_body)?;
            json::apply(live.unwrap_or(&empty), &ops)?
        }
        PatchType::Strategic => {
            let patch: Value = serde_json::from_slice(patch_body)
                .map_err(|e| PatchError::BadRequest(format!("invalid character in patch: {e}")))?;
            strategic::strategic_merge(kind.root(), live.unwrap_or(&empty), &patch)?
        }
    };
    if !patched.is_object() {
        return Err(PatchError::BadRequest(format!(
            "Object 'Kind' is missing in '{patched}'"
        )));
    }
    // The real server decodes the patched JSON into its Go type here.
    types::check_types(kind, &patched).map_err(|m| PatchError::WrongType {
        object: format!("{:?}", patched.to_string()),
        detail: m.message,
    })?;
    Ok(patched)
}

/// Records a create (`old` = `None`), update or non-apply patch by
/// `manager` in `new`'s `metadata.managedFields`.
pub fn record_update(
    kind: &TypeInfo,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    managed::record_update(
        kind,
        old,
        new,
        managed::Write {
            manager,
            subresource,
            now,
        },
    );
}

/// The default field manager of a request: the User-Agent up to its first
/// `/` (`kubectl/v1.32.0 (linux/amd64)` → `kubectl`), as the real server does.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    user_agent
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests;

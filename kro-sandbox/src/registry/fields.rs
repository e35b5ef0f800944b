//! The seam between the HTTP handlers and the patch engine's field management.
//!
//! Every write path that is not a server-side apply calls [`record`] so
//! `metadata.managedFields` follows the real server's rules; applies get theirs from the
//! engine directly.

use serde_json::Value;

use crate::catalog::ResourceDef;
use crate::patch::{self, TypeInfo};

/// Whether a write was an update (create, PUT, non-apply patch) or a server-side apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `operation: Update`.
    Update,
    /// `operation: Apply`.
    Apply,
}

/// The patch engine's view of a resource's type.
pub fn type_info(def: &ResourceDef) -> TypeInfo {
    match &def.custom {
        Some(c) => TypeInfo::custom(&def.api_version(), &def.kind, c.schema.as_ref(), def.status),
        None => TypeInfo::builtin(&def.api_version(), &def.kind)
            .unwrap_or_else(|| TypeInfo::custom(&def.api_version(), &def.kind, None, def.status)),
    }
}

/// Records `manager`'s update of `old` into `new` in `new`'s `metadata.managedFields`.
pub fn record(
    def: &ResourceDef,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let ti = type_info(def);
    patch::record_update(&ti, old, new, manager, subresource, now);
}

//! The registry: what happens to an object between a decoded request and storage.
//!
//! One generic store ([`store`]) runs every kind through the same steps as the real
//! server's generic registry: preconditions, the strategy's defaulting and validation,
//! generation, field management, dry run, graceful deletion and finalizers. What differs
//! between kinds lives in a small [`strategy::Strategy`] per kind. Nothing here knows about
//! HTTP: requests arrive as a [`Request`] with already-validated [`options`].

pub mod admission;
pub mod builtin;
pub mod crd;
pub mod delete;
pub mod events;
pub mod fields;
pub mod objectmeta;
pub mod options;
pub mod paging;
pub mod patching;
pub mod scale;
pub mod store;
pub mod strategy;
pub mod watch;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::catalog::ResourceDef;
use crate::error::{ApiError, ApiResult, Target};
use crate::state::Shared;
use crate::storage::{ObjectKey, ResourceKey};

pub use options::{DeleteOptions, FieldValidation, ListOptions, Propagation, WriteOptions};

/// What one registry operation addresses.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Sandbox state.
    pub sh: &'a Arc<Shared>,
    /// The resource, resolved against the catalog.
    pub def: Arc<ResourceDef>,
    /// Namespace ("" for cluster-scoped resources and all-namespace collections).
    pub ns: String,
    /// Object name ("" for collections).
    pub name: String,
    /// Subresource (`status`, `scale`).
    pub sub: Option<String>,
}

impl Request<'_> {
    /// Storage key of the resource.
    pub fn res_key(&self) -> ResourceKey {
        storage_key(&self.def)
    }

    /// Storage key of an object of this request's namespace.
    pub fn obj_key(&self, name: &str) -> ObjectKey {
        (self.ns.clone(), name.to_owned())
    }

    /// Who errors name.
    pub fn target<'b>(&'b self, name: &'b str) -> Target<'b> {
        Target {
            group: &self.def.group,
            plural: &self.def.plural,
            name,
        }
    }

    /// Whether the request addresses the scale subresource.
    pub fn is_scale(&self) -> bool {
        self.sub.as_deref() == Some("scale")
    }

    /// Whether the request addresses the status subresource.
    pub fn is_status(&self) -> bool {
        self.sub.as_deref() == Some("status")
    }
}

/// An object as the registry hands it out: the stored text when it can be served as is,
/// otherwise a value.
#[derive(Debug, Clone)]
pub enum Out {
    /// Stored JSON text, served without parsing.
    Stored(Arc<str>),
    /// A value built or changed for this answer.
    Value(Value),
}

impl Out {
    /// The object as a value.
    pub fn to_value(&self) -> ApiResult<Value> {
        match self {
            Out::Stored(t) => parse_stored(t),
            Out::Value(v) => Ok(v.clone()),
        }
    }
}

/// The result of a write.
#[derive(Debug)]
pub struct Outcome {
    /// The object (or, for a finished delete, the `Status` or the last state).
    pub object: Out,
    /// Whether the write created the object (a 201 on the wire).
    pub created: bool,
    /// Warnings for the client.
    pub warnings: Vec<String>,
}

/// Parses stored JSON; it was serialized by us, so failure means corruption.
pub fn parse_stored(text: &str) -> ApiResult<Value> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::internal(format!("stored object unreadable: {e}")))
}

/// Storage key of a resource: (group, plural), except that the events API group's Events
/// live in core storage.
pub fn storage_key(def: &ResourceDef) -> ResourceKey {
    if events::is_events_v1(def) {
        events::storage_key()
    } else {
        (def.group.clone(), def.plural.clone())
    }
}

/// The object as served at the requested version (custom resources store one version;
/// conversion `None` changes only `apiVersion`; Events are stored in the core form).
/// Presenting an object already in the served form changes nothing.
pub fn present(def: &ResourceDef, mut obj: Value) -> Value {
    if events::is_events_v1(def) {
        return events::to_events_v1(obj);
    }
    if converts(def) {
        obj["apiVersion"] = json!(def.api_version());
    }
    obj
}

/// Whether objects of this resource are stored at another version than served.
pub fn converts(def: &ResourceDef) -> bool {
    (def.custom.is_some() && def.version != def.storage_version) || events::is_events_v1(def)
}

/// Stored text presented at the requested version.
pub fn present_stored(def: &ResourceDef, text: &Arc<str>) -> ApiResult<Out> {
    if converts(def) {
        Ok(Out::Value(present(def, parse_stored(text)?)))
    } else {
        Ok(Out::Stored(text.clone()))
    }
}

/// Stored text parsed and presented at the requested version: the form every write
/// works on.
pub fn decode(def: &ResourceDef, text: &str) -> ApiResult<Value> {
    Ok(present(def, parse_stored(text)?))
}

/// An object in its stored form: custom resources at the CRD's storage version, Events
/// as core Events. Converting an object already in the stored form changes nothing.
pub fn to_storage(def: &ResourceDef, obj: &mut Value) {
    if events::is_events_v1(def) {
        *obj = events::to_core(std::mem::take(obj));
    } else if converts(def) {
        obj["apiVersion"] = json!(format!("{}/{}", def.group, def.storage_version));
    }
}

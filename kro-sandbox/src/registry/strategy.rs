//! Per-kind strategies: what differs between kinds on the generic store's path.
//!
//! The generic store asks the strategy of a resource to default, validate and prepare
//! objects, and whether a change bumps `metadata.generation`, the way each kind's
//! `strategy.go` answers on a real server. A new kind gets its rules here: a strategy value
//! and a line in [`of`].

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::catalog::ResourceDef;
use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::objectmeta::{MetaFlavor, UpdateRecheck};
use crate::registry::options::FieldValidation;
use crate::registry::{builtin, crd};
use crate::state::Shared;
use crate::storage::Data;

/// The garbage collection policy a kind applies when the client names none
/// (`rest.GarbageCollectionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcPolicy {
    /// Dependents are deleted in the background (the served versions of every kind).
    DeleteDependents,
    /// Dependents are orphaned unless the client asks otherwise (older API versions).
    OrphanDependents,
    /// The kind takes no part in garbage collection: deletes never add or keep the
    /// collector's finalizers (Events).
    Unsupported,
}

/// One kind's rules. Every method has the generic answer as its default.
pub trait Strategy: Sync + std::fmt::Debug {
    /// Whether objects carry `metadata.generation` (set to 1 on create).
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether an update from `old` to `new` bumps the generation. The generic rule: the
    /// spec changed.
    fn bumps_generation(&self, _def: &ResourceDef, old: &Value, new: &Value) -> bool {
        old.get("spec") != new.get("spec")
    }

    /// Whose `ObjectMeta` rules the kind's validation applies.
    fn meta_flavor(&self) -> MetaFlavor {
        MetaFlavor::Builtin
    }

    /// How the kind's `ValidateUpdate` revisits `metadata`. Most built-in kinds validate
    /// the whole new object again after the update rules.
    fn update_recheck(&self) -> UpdateRecheck {
        UpdateRecheck::UpdateAndCreate
    }

    /// `AllowUnconditionalUpdate`: whether an update without `resourceVersion` writes
    /// over whatever is stored (every built-in kind) or is refused (custom resources and
    /// CRDs).
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    /// `AllowCreateOnUpdate`: whether a PUT to a missing object creates it. The kinds
    /// whose strategies say so in the Kubernetes sources (`pkg/registry/*/strategy.go`).
    fn allow_create_on_update(&self, def: &ResourceDef) -> bool {
        matches!(
            (def.group.as_str(), def.plural.as_str()),
            ("", "services" | "endpoints" | "events" | "limitranges")
                | ("events.k8s.io", "events")
                | ("coordination.k8s.io", "leases")
                | (
                    "rbac.authorization.k8s.io",
                    "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings"
                )
        )
    }

    /// Drops fields the kind's schema does not know; returns their paths.
    fn prune(
        &self,
        def: &ResourceDef,
        obj: &mut Value,
        _sub: Option<&str>,
    ) -> ApiResult<Vec<String>> {
        Ok(builtin::take_unknown_fields(def, obj))
    }

    /// Defaulting (create when `old` is `None`, update otherwise).
    fn default(&self, sh: &Shared, def: &ResourceDef, obj: &mut Value, old: Option<&Value>) {
        builtin::default(sh, def, obj, old);
    }

    /// Validation after defaulting.
    fn validate(&self, def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        builtin::validate(def, obj, old)
    }

    /// Fields the server fills once identity is set (allocations).
    fn fill(&self, sh: &Shared, def: &ResourceDef, obj: &mut Value) {
        builtin::server_fill(sh, def, obj);
    }

    /// Whether the kind deletes its own way (a first delete only marks the object).
    fn own_deletion(&self) -> bool {
        false
    }

    /// Whether deletion waits for something besides `metadata.finalizers`.
    fn graceful_delete(&self, _obj: &Value) -> bool {
        false
    }

    /// `CheckGracefulDelete` of kinds with graceful deletion: the grace period a delete
    /// of `obj` gets, given the one requested (already made non-negative). `None` for
    /// kinds without graceful deletion, whose deletes ignore `gracePeriodSeconds`.
    fn graceful_period(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// A finalizer the server adds itself when deletion starts.
    fn deletion_finalizer(&self) -> Option<&'static str> {
        None
    }

    /// Changes an object gets when its deletion starts.
    fn on_deleting(&self, _obj: &mut Value) {}

    /// Whether an immediate delete answers with the object rather than a `Status`.
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// Default garbage collection policy.
    fn gc_policy(&self) -> GcPolicy {
        GcPolicy::DeleteDependents
    }

    /// Side effects of a stored create or update.
    fn after_write(&self, _sh: &Arc<Shared>, _data: &mut Data, _obj: &Value, _old: Option<&Value>) {
    }

    /// Side effects of an object leaving storage.
    fn after_delete(&self, _sh: &Arc<Shared>, _data: &mut Data, _obj: &Value) {}
}

/// Built-in kinds without generation (ConfigMap, Secret, Service, ...).
#[derive(Debug)]
pub struct Plain;
impl Strategy for Plain {}

/// Built-in kinds whose spec changes bump the generation (workloads, Ingress, ...).
#[derive(Debug)]
pub struct Generational;
impl Strategy for Generational {
    fn update_recheck(&self) -> UpdateRecheck {
        UpdateRecheck::UpdateOnly
    }
    fn tracks_generation(&self) -> bool {
        true
    }
}

/// Deployments: annotation changes bump the generation too, because the controller
/// copies them to the ReplicaSets.
#[derive(Debug)]
pub struct Deployments;
impl Strategy for Deployments {
    fn update_recheck(&self) -> UpdateRecheck {
        UpdateRecheck::UpdateOnly
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn bumps_generation(&self, _def: &ResourceDef, old: &Value, new: &Value) -> bool {
        old.get("spec") != new.get("spec")
            || old.pointer("/metadata/annotations") != new.pointer("/metadata/annotations")
    }
}

/// Pods: deleted gracefully (the kubelet finishes the deletion), except that a pod never
/// scheduled or already finished goes at once; the delete answers with the pod.
#[derive(Debug)]
pub struct Pods;
impl Strategy for Pods {
    fn update_recheck(&self) -> UpdateRecheck {
        UpdateRecheck::UpdateOnly
    }
    /// `pkg/registry/core/pod/strategy.go` `CheckGracefulDelete`: the requested period,
    /// else the pod's `terminationGracePeriodSeconds`; zero for a pod without a node or
    /// in a terminal phase, since no kubelet has anything to stop.
    fn graceful_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let mut period = requested
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(0);
        let unscheduled = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Failed" | "Succeeded")
        );
        if unscheduled || finished {
            period = 0;
        }
        Some(if period < 0 { 1 } else { period })
    }
    fn returns_deleted_object(&self) -> bool {
        true
    }
}

/// Events (core and `events.k8s.io`, one storage): no part in garbage collection.
#[derive(Debug)]
pub struct Events;
impl Strategy for Events {
    fn gc_policy(&self) -> GcPolicy {
        GcPolicy::Unsupported
    }
}

/// Namespaces: deletion waits for `spec.finalizers` (the namespace controller) and marks
/// the namespace Terminating.
#[derive(Debug)]
pub struct Namespaces;
impl Strategy for Namespaces {
    fn update_recheck(&self) -> UpdateRecheck {
        UpdateRecheck::UpdateOnly
    }
    fn own_deletion(&self) -> bool {
        true
    }
    fn graceful_delete(&self, obj: &Value) -> bool {
        obj.pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    }
    fn on_deleting(&self, obj: &mut Value) {
        obj["status"] = serde_json::json!({"phase": "Terminating"});
    }
    fn returns_deleted_object(&self) -> bool {
        true
    }
    fn after_write(&self, sh: &Arc<Shared>, _data: &mut Data, obj: &Value, _old: Option<&Value>) {
        if crate::meta::is_deleting(obj) {
            builtin::schedule_namespace_cleanup(sh, obj);
        }
    }
}

/// CustomResourceDefinitions: registration on write, the cleanup finalizer on delete.
#[derive(Debug)]
pub struct Crds;
impl Strategy for Crds {
    fn meta_flavor(&self) -> MetaFlavor {
        MetaFlavor::Generic
    }
    fn update_recheck(&self) -> UpdateRecheck {
        UpdateRecheck::UpdateOnly
    }
    fn allow_unconditional_update(&self) -> bool {
        false
    }
    fn own_deletion(&self) -> bool {
        true
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        crd::validate_crd(obj, old)
    }
    fn deletion_finalizer(&self) -> Option<&'static str> {
        Some("customresourcecleanup.apiextensions.k8s.io")
    }
    fn on_deleting(&self, obj: &mut Value) {
        let cond = crd::terminating_condition();
        match obj.pointer_mut("/status/conditions") {
            Some(Value::Array(c)) => c.push(cond),
            _ => obj["status"]["conditions"] = serde_json::json!([cond]),
        }
    }
    fn returns_deleted_object(&self) -> bool {
        true
    }
    fn after_write(&self, sh: &Arc<Shared>, data: &mut Data, obj: &Value, old: Option<&Value>) {
        crd::on_write(sh, data, obj, old);
    }
    fn after_delete(&self, sh: &Arc<Shared>, data: &mut Data, obj: &Value) {
        crd::on_delete(sh, data, obj);
    }
}

/// Custom resources: the CRD's schema prunes, defaults and validates; every change outside
/// metadata (and status, with a status subresource) bumps the generation.
#[derive(Debug)]
pub struct CustomResources;
impl Strategy for CustomResources {
    fn meta_flavor(&self) -> MetaFlavor {
        MetaFlavor::Generic
    }
    fn update_recheck(&self) -> UpdateRecheck {
        UpdateRecheck::UpdateOnly
    }
    fn allow_unconditional_update(&self) -> bool {
        false
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn bumps_generation(&self, def: &ResourceDef, old: &Value, new: &Value) -> bool {
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
    fn prune(
        &self,
        def: &ResourceDef,
        obj: &mut Value,
        sub: Option<&str>,
    ) -> ApiResult<Vec<String>> {
        match &def.custom {
            Some(custom) => crd::schema::admit(def, custom, obj, sub),
            None => Ok(Vec::new()),
        }
    }
    fn default(&self, _sh: &Shared, def: &ResourceDef, obj: &mut Value, old: Option<&Value>) {
        if old.is_none()
            && def.status
            && let Value::Object(m) = obj
        {
            // With a status subresource, status is written only through /status.
            m.shift_remove("status");
        }
    }
    fn validate(&self, def: &ResourceDef, obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
        def.custom
            .as_ref()
            .map(|c| crd::schema::validate(c, obj))
            .unwrap_or_default()
    }
    fn fill(&self, _sh: &Shared, _def: &ResourceDef, _obj: &mut Value) {}
    fn returns_deleted_object(&self) -> bool {
        true
    }
}

/// The strategy of a resource.
pub fn of(def: &ResourceDef) -> &'static dyn Strategy {
    if def.custom.is_some() {
        return &CustomResources;
    }
    match (def.group.as_str(), def.plural.as_str()) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => &Crds,
        ("", "namespaces") => &Namespaces,
        ("", "pods") => &Pods,
        ("", "events") | ("events.k8s.io", "events") => &Events,
        ("apps", "deployments") => &Deployments,
        ("apps", "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs" | "cronjobs")
        | ("networking.k8s.io", "ingresses" | "networkpolicies" | "ingressclasses")
        | ("policy", "poddisruptionbudgets") => &Generational,
        _ => &Plain,
    }
}

/// The object's key in the real server's etcd (`/registry` and the resource's prefix),
/// which storage errors quote. Most resources use their plural; a few keep historical
/// prefixes (`test/integration/etcd/data.go` in the Kubernetes sources lists them).
pub fn etcd_key(def: &ResourceDef, ns: &str, name: &str) -> String {
    let prefix = match (def.group.as_str(), def.plural.as_str()) {
        ("", "services") => "services/specs".to_owned(),
        ("", "endpoints") => "services/endpoints".to_owned(),
        ("", "nodes") => "minions".to_owned(),
        ("networking.k8s.io", "ingresses") => "ingress".to_owned(),
        ("events.k8s.io", "events") => "events".to_owned(),
        (g, p) if def.custom.is_some() || g == "apiextensions.k8s.io" => format!("{g}/{p}"),
        (_, p) => p.to_owned(),
    };
    if ns.is_empty() {
        format!("/registry/{prefix}/{name}")
    } else {
        format!("/registry/{prefix}/{ns}/{name}")
    }
}

/// Drops unknown fields and reports them per `fieldValidation`; returns the warnings.
pub fn prune_unknown(
    strategy: &dyn Strategy,
    def: &ResourceDef,
    obj: &mut Value,
    sub: Option<&str>,
    fv: FieldValidation,
) -> ApiResult<Vec<String>> {
    let unknown = strategy.prune(def, obj, sub)?;
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
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
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
            def.version,
            msgs.join(", ")
        ))),
        FieldValidation::Warn => Ok(msgs),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

/// Inserts `key: value` into an object when absent.
pub fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if !m.contains_key(key) {
        m.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use serde_json::json;

    fn def(group: &str, plural: &str) -> Arc<ResourceDef> {
        let cat = Catalog::builtin();
        cat.get(group, "v1", plural).expect("built-in resource")
    }

    #[test]
    fn deployments_bump_on_annotations_configmaps_never_track() {
        let d = def("apps", "deployments");
        let old = json!({"metadata": {"annotations": {"a": "1"}}, "spec": {"replicas": 1}});
        let new = json!({"metadata": {"annotations": {"a": "2"}}, "spec": {"replicas": 1}});
        assert!(of(&d).bumps_generation(&d, &old, &new));
        let rs = def("apps", "replicasets");
        assert!(!of(&rs).bumps_generation(&rs, &old, &new));
        assert!(!of(&def("", "configmaps")).tracks_generation());
    }
}

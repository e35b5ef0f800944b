//! Passes that would find nothing new are skipped.
//!
//! A placed instance is reconciled on every change the hub sees of it: its
//! own status write and the watch events of the children it just applied
//! come back as triggers, and each used to cost a whole pass (every
//! resource rendered and every expression evaluated for every member) to
//! conclude that nothing changed. After each pass the hub records what the
//! pass read: the instance's resourceVersion (after its own writes), the
//! members' version and the resourceVersion of every child it read or
//! applied on a member. A trigger that finds all of them as recorded, before
//! the pass asked to be looked at again, is answered from that record.
//!
//! Only graphs whose every input is in that record are eligible: placed,
//! nothing applied on the hub, no external reference (read from the API
//! server on each pass) and no `time` (whose value moves by itself).
//! A restarted hub has no record: its first pass of each instance is whole.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kro_core::CompiledGraph;
use kro_core::rgd::ResourceTarget;
use kube::api::ApiResource;
use serde_json::Value;

use crate::members::drift::DriftWatches;

/// One child a pass read or applied on a member, at the version it saw.
#[derive(Debug, Clone)]
pub(super) struct SeenChild {
    pub member: String,
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
    pub resource_version: String,
}

impl SeenChild {
    /// The child as `object` shows it.
    pub fn of(
        member: &str,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        object: &Value,
    ) -> Self {
        Self {
            member: member.to_owned(),
            resource: resource.clone(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            resource_version: resource_version(object).to_owned(),
        }
    }
}

fn resource_version(object: &Value) -> &str {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// What one pass read, and when it asked to be looked at again.
#[derive(Debug)]
pub(super) struct Record {
    /// The instance's resourceVersion once the pass's own writes landed.
    pub instance_version: String,
    /// The members' version (see [`crate::members::Members::subscribe`]).
    pub members_version: u64,
    pub children: Vec<SeenChild>,
    /// When the pass asked to run again.
    pub due: Instant,
}

/// The last pass's record of each instance, by uid.
#[derive(Debug, Default)]
pub(super) struct Records {
    inner: Mutex<HashMap<String, Record>>,
}

/// Whether every input of `graph`'s passes is in a [`Record`].
pub(super) fn eligible(graph: &CompiledGraph) -> bool {
    graph.is_placed()
        && !graph.uses_time()
        && graph
            .resources()
            .all(|n| !n.is_external() && n.target() != Some(ResourceTarget::Hub))
}

impl Records {
    /// How long until the instance asked to be looked at again, when
    /// nothing it read has changed since its last pass; `None` when a pass
    /// is needed.
    pub fn unchanged(
        &self,
        uid: &str,
        instance_version: &str,
        members_version: u64,
        drift: &DriftWatches,
    ) -> Option<Duration> {
        let records = self.inner.lock().ok()?;
        let record = records.get(uid)?;
        let remaining = record.due.checked_duration_since(Instant::now())?;
        if record.instance_version != instance_version || record.members_version != members_version
        {
            return None;
        }
        let same = record.children.iter().all(|c| {
            drift
                .cached(&c.member, &c.resource, c.namespace.as_deref(), &c.name)
                .flatten()
                .is_some_and(|live| resource_version(&live) == c.resource_version)
        });
        same.then_some(remaining)
    }

    /// Keeps `record` as the instance's last pass.
    pub fn record(&self, uid: &str, record: Record) {
        if let Ok(mut records) = self.inner.lock() {
            records.insert(uid.to_owned(), record);
        }
    }

    /// Forgets the instance: its next pass is whole.
    pub fn forget(&self, uid: &str) {
        if let Ok(mut records) = self.inner.lock() {
            records.remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph(placement: Option<Value>, extra: Value) -> CompiledGraph {
        let mut rgd = json!({
            "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
            "metadata": {"name": "webs"},
            "spec": {
                "schema": {"apiVersion": "v1alpha1", "kind": "Web", "spec": {"name": "string"}},
                "resources": [{"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.spec.name}"}, "data": {"a": "b"}}}]
            }
        });
        if let Some(p) = placement {
            rgd["spec"]["placement"] = p;
        }
        if let Some(items) = rgd["spec"]["resources"].as_array_mut() {
            items.push(extra);
        }
        let rgd = serde_json::from_value(rgd).unwrap_or_else(|e| panic!("{e}"));
        kro_core::compile(&rgd).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn only_graphs_whose_every_input_is_recorded_skip_passes() {
        let placed = Some(json!({"clusters": ["eu-1"]}));
        let secret = json!({"id": "other", "template": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "${schema.spec.name}-2"}, "data": {"c": "d"}}});
        assert!(eligible(&graph(placed.clone(), secret.clone())));
        assert!(!eligible(&graph(None, secret)), "not placed");
        let on_hub = json!({"id": "hubcm", "target": "Hub", "template": {"apiVersion": "v1",
            "kind": "ConfigMap", "metadata": {"name": "${schema.spec.name}-h"}, "data": {"c": "d"}}});
        assert!(
            !eligible(&graph(placed.clone(), on_hub)),
            "applied on the hub"
        );
        let external = json!({"id": "ext", "externalRef": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shared"}}});
        assert!(
            !eligible(&graph(placed.clone(), external)),
            "external reference"
        );
        let timed = json!({"id": "t", "template": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "${schema.spec.name}-t"},
            "data": {"at": "${string(time.now())}"}}});
        assert!(!eligible(&graph(placed, timed)), "reads time");
    }
}

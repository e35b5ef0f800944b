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
//!
//! **A restarted hub** has no record, and a whole pass per instance was
//! most of its start on a converged fleet. So a pass that finds an instance
//! ready everywhere also writes, with that status, a hash of everything it
//! read ([`INPUTS_HASH_STATUS_FIELD`]): this hub's version, the RGD (uid and
//! generation), the instance's spec and metadata, what it read of the
//! members (placement inputs of all, health of the selected) and the
//! resourceVersion of every child. A hub that finds no record computes the
//! same hash from the instance, the members and its member watches (whose
//! stores index children by instance uid) and, when it matches, takes it
//! as the record: nothing any of those inputs hold has changed since that
//! status was written, so a pass would write it again. The hash is only
//! written with a status write that happens anyway (a child whose status
//! moves without changing the instance's never costs a write), and every
//! other write removes it, so it never vouches for a status it did not
//! come with; a stale one only costs a whole pass. A resync (the record is
//! due) is always a whole pass, and an instance whose members are not
//! probed yet waits for the probe (at most [`FIRST_PROBE_WAIT`] after its
//! controller started) rather than take a member it cannot judge yet for
//! one that changed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kro_core::CompiledGraph;
use kro_core::rgd::ResourceTarget;
use kube::api::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::children::JsonDigest;
use super::reconcile::Reconciler;
use super::{aggregate, state};
use crate::members::drift::{DriftWatches, kind_of};
use crate::members::{Health, Member};

pub(super) use kro_core::crd::INPUTS_HASH_STATUS_FIELD;

/// One child a pass read or applied on a member, at the version it saw.
#[derive(Debug, Clone)]
pub(super) struct SeenChild {
    pub member: String,
    pub kind: GroupVersionKind,
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
            kind: kind_of(resource),
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
                .cached(&c.member, &c.kind, c.namespace.as_deref(), &c.name)
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

    /// Whether the instance's record asked for its next pass by now (a
    /// resync: that pass is whole, never answered from the status).
    pub fn due(&self, uid: &str) -> bool {
        self.inner
            .lock()
            .is_ok_and(|r| r.get(uid).is_some_and(|r| r.due <= Instant::now()))
    }

    /// Forgets the instance: its next pass is whole.
    pub fn forget(&self, uid: &str) {
        if let Ok(mut records) = self.inner.lock() {
            records.remove(uid);
        }
    }
}

/// How long after its controller started an instance waits for a
/// member's first probe (the probe's own timeout) before its pass runs
/// anyway.
const FIRST_PROBE_WAIT: Duration = Duration::from_secs(10);

/// The hash of what a pass of the instance `instance` read (see the
/// module's docs): the RGD's uid and generation, the members, `selected`
/// the members it ran on, `children` what it read or applied there.
pub(super) fn inputs_hash(
    rgd: (&str, Option<i64>),
    instance: &Value,
    members: &[Member],
    selected: &[&str],
    children: &[SeenChild],
) -> String {
    let mut digest = JsonDigest::default();
    digest.feed(&(env!("CARGO_PKG_VERSION"), rgd.0, rgd.1));
    let meta = instance.get("metadata");
    let field = |name: &str| meta.and_then(|m| m.get(name));
    digest.feed(&[
        field("name"),
        field("namespace"),
        field("uid"),
        field("labels"),
        field("annotations"),
        field("finalizers"),
        instance.get("spec"),
    ]);
    // What placement reads of every member; what a member pass reads of
    // the members it ran on.
    for m in members {
        digest.feed(&(&m.name, &m.labels, &m.annotations, m.deleting));
        if selected.contains(&m.name.as_str()) {
            digest.feed(&(m.paused, m.health.is_ready(), m.health.reason()));
        }
    }
    // Each child once, at the last version the pass saw, in one order.
    let mut seen = std::collections::BTreeMap::new();
    for c in children {
        seen.insert(
            (
                c.member.as_str(),
                super::reconcile::kind_key(&c.kind),
                c.namespace.as_deref().unwrap_or_default(),
                c.name.as_str(),
            ),
            c.resource_version.as_str(),
        );
    }
    for (child, version) in &seen {
        digest.feed(&(child, version));
    }
    digest.hex()
}

/// `status` with its inputs hash: `fresh` when the status is written
/// anyway, the current one when nothing else in it changed (so a new hash
/// alone never costs a write).
pub(super) fn with_inputs_hash(
    current: Option<&Value>,
    mut status: Value,
    fresh: Option<String>,
) -> Value {
    let kept = current.and_then(|c| c.get(INPUTS_HASH_STATUS_FIELD));
    if kept.is_none() && fresh.is_none() {
        // Nothing to keep nor to write: most passes of a new instance.
        return status;
    }
    let Some(fields) = status.as_object_mut() else {
        return status;
    };
    match kept {
        Some(kept) => fields.insert(INPUTS_HASH_STATUS_FIELD.to_owned(), kept.clone()),
        None => fields.remove(INPUTS_HASH_STATUS_FIELD),
    };
    if current == Some(&crate::status::merged(current, status.clone())) {
        return status;
    }
    if let Some(fields) = status.as_object_mut() {
        match fresh {
            Some(hash) => fields.insert(INPUTS_HASH_STATUS_FIELD.to_owned(), Value::String(hash)),
            None => fields.remove(INPUTS_HASH_STATUS_FIELD),
        };
    }
    status
}

impl Reconciler<'_> {
    /// The record of an instance the hub has none of (it just started, or
    /// the members changed), taken from its status when the inputs hash
    /// written there is what the instance, the members and the member
    /// watches show now; how long until the instance's next pass is due,
    /// `None` when a pass is needed.
    pub(super) async fn restored(&self, members_version: u64) -> Option<Duration> {
        let status = self.obj.json.get("status")?;
        if status.get("state").and_then(Value::as_str) != Some(state::ACTIVE) {
            return None;
        }
        let written = status.get(INPUTS_HASH_STATUS_FIELD)?.as_str()?;
        let uid = self.identity.uid.as_str();
        let members = self.ctx.env.members.snapshot();
        let entries = aggregate::read_entries(Some(status));
        // The member watches' first lists are waited for while the
        // controller starts (they start with it); later, a watch that has
        // not listed (a member refusing the list) means a whole pass, never
        // a wait on every record miss.
        let wait = (self.ctx.started + super::reconcile::STORE_SYNC_WAIT)
            .saturating_duration_since(Instant::now());
        let kinds = self.ctx.child_kinds(false);
        let mut children = Vec::new();
        for entry in &entries {
            let member = members.iter().find(|m| m.name == entry.name)?;
            if matches!(member.health, Health::Unknown)
                && let Some(wait) =
                    (self.ctx.started + FIRST_PROBE_WAIT).checked_duration_since(Instant::now())
            {
                // The hub just started: the probe's outcome re-queues the
                // instance, and until then a pass could only keep the
                // cluster's entry as it is.
                return Some(wait);
            }
            if !member.health.is_ready() {
                return None;
            }
            for kind in &kinds {
                let found = self
                    .ctx
                    .env
                    .drift
                    .children_of(&member.name, kind, uid, wait)
                    .await?;
                children.extend(found.into_iter().map(|(ns, name, version)| SeenChild {
                    member: member.name.clone(),
                    kind: kind.clone(),
                    namespace: (!ns.is_empty()).then_some(ns),
                    name,
                    resource_version: version,
                }));
            }
        }
        let selected: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        if inputs_hash(
            self.ctx.rgd(),
            &self.obj.json,
            &members,
            &selected,
            &children,
        ) != written
        {
            return None;
        }
        let due = self.ctx.resync_of(uid);
        self.ctx.records.record(
            uid,
            Record {
                instance_version: self.obj.metadata.resource_version.clone()?,
                members_version,
                children,
                due: Instant::now() + due,
            },
        );
        Some(due)
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

    fn member(name: &str, env: &str, ready: bool) -> Member {
        let mut m = Member::new(name);
        m.labels.insert("env".to_owned(), env.to_owned());
        m.health = if ready {
            Health::Reachable {
                version: "v1.32.0".to_owned(),
            }
        } else {
            Health::Unreachable("down".to_owned())
        };
        m
    }

    fn child(member: &str, name: &str, version: &str) -> SeenChild {
        SeenChild {
            member: member.to_owned(),
            kind: GroupVersionKind::gvk("apps", "v1", "Deployment"),
            namespace: Some("apps".to_owned()),
            name: name.to_owned(),
            resource_version: version.to_owned(),
        }
    }

    #[test]
    fn the_inputs_hash_moves_with_every_input_it_covers_and_nothing_else() {
        let instance = json!({"metadata": {"name": "shop", "namespace": "apps", "uid": "u1",
            "resourceVersion": "7", "labels": {"team": "a"}}, "spec": {"replicas": 2},
            "status": {"state": "ACTIVE"}});
        let members = vec![member("eu-1", "prod", true), member("dev-1", "dev", false)];
        let children = vec![child("eu-1", "shop", "10"), child("eu-1", "shop-b", "11")];
        let rgd = ("rgd-uid", Some(3));
        let hash = |rgd, instance: &Value, members: &[Member], children: &[SeenChild]| {
            inputs_hash(rgd, instance, members, &["eu-1"], children)
        };
        let base = hash(rgd, &instance, &members, &children);
        assert_eq!(base, hash(rgd, &instance, &members, &children));

        // The same children in another order, or one seen again at a later
        // version, are what the pass saw last.
        let reordered = vec![children[1].clone(), children[0].clone()];
        assert_eq!(base, hash(rgd, &instance, &members, &reordered));
        let twice = vec![
            child("eu-1", "shop", "9"),
            children[1].clone(),
            children[0].clone(),
        ];
        assert_eq!(base, hash(rgd, &instance, &members, &twice));

        // Neither the instance's own writes nor a member the instance is not
        // on, answering or not, are inputs.
        let mut written = instance.clone();
        written["status"]["state"] = json!("IN_PROGRESS");
        written["metadata"]["resourceVersion"] = json!("8");
        assert_eq!(base, hash(rgd, &written, &members, &children));
        let mut dev_back = members.clone();
        dev_back[1] = member("dev-1", "dev", true);
        assert_eq!(base, hash(rgd, &instance, &dev_back, &children));

        // Everything else is.
        let mut moved = Vec::new();
        moved.push(hash(("rgd-uid", Some(4)), &instance, &members, &children));
        moved.push(hash(("other", Some(3)), &instance, &members, &children));
        for (pointer, value) in [
            ("/spec/replicas", json!(3)),
            ("/metadata/labels/team", json!("b")),
            ("/metadata/uid", json!("u2")),
        ] {
            let mut changed = instance.clone();
            if let Some(v) = changed.pointer_mut(pointer) {
                *v = value;
            }
            moved.push(hash(rgd, &changed, &members, &children));
        }
        let mut annotated = instance.clone();
        annotated["metadata"]["annotations"] = json!({"kro.run/reconcile": "suspended"});
        moved.push(hash(rgd, &annotated, &members, &children));
        let mut relabelled = members.clone();
        relabelled[1]
            .labels
            .insert("env".to_owned(), "prod".to_owned());
        moved.push(hash(rgd, &instance, &relabelled, &children));
        let mut eu_down = members.clone();
        eu_down[0] = member("eu-1", "prod", false);
        moved.push(hash(rgd, &instance, &eu_down, &children));
        let mut paused = members.clone();
        paused[0].paused = true;
        moved.push(hash(rgd, &instance, &paused, &children));
        moved.push(hash(
            rgd,
            &instance,
            &members,
            &[child("eu-1", "shop", "12"), children[1].clone()],
        ));
        moved.push(hash(rgd, &instance, &members, &children[..1]));
        moved.push(hash(
            rgd,
            &instance,
            &members,
            &[child("us-1", "shop", "10"), children[1].clone()],
        ));
        for (i, h) in moved.iter().enumerate() {
            assert_ne!(&base, h, "change {i} is not seen");
        }
    }

    #[test]
    fn a_record_is_due_once_its_pass_asked_to_run_again() {
        let records = Records::default();
        let record = |due| Record {
            instance_version: "1".to_owned(),
            members_version: 0,
            children: Vec::new(),
            due,
        };
        assert!(!records.due("a"), "no record");
        records.record("a", record(Instant::now() + Duration::from_secs(60)));
        assert!(!records.due("a"));
        records.record("a", record(Instant::now()));
        assert!(records.due("a"));
        records.forget("a");
        assert!(!records.due("a"));
    }

    #[test]
    fn a_new_hash_alone_never_costs_a_write() {
        let current = json!({"state": "ACTIVE", "inputsHash": "old", "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "",
             "lastTransitionTime": "2020-01-01T00:00:00Z"}]});
        let same = json!({"state": "ACTIVE", "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "message": ""}]});
        let kept = with_inputs_hash(Some(&current), same.clone(), Some("new".to_owned()));
        assert_eq!(kept["inputsHash"], "old");
        assert_eq!(crate::status::merged(Some(&current), kept), current);

        // A status written anyway carries the fresh hash, or none.
        let mut moved = same.clone();
        moved["availableReplicas"] = json!(2);
        let fresh = with_inputs_hash(Some(&current), moved.clone(), Some("new".to_owned()));
        assert_eq!(fresh["inputsHash"], "new");
        let without = with_inputs_hash(Some(&current), moved, None);
        assert!(without.get("inputsHash").is_none(), "{without}");

        // No hash yet and nothing else to write: still no write.
        let mut bare = current.clone();
        if let Some(fields) = bare.as_object_mut() {
            fields.remove("inputsHash");
        }
        let unwritten = with_inputs_hash(Some(&bare), same, Some("new".to_owned()));
        assert_eq!(crate::status::merged(Some(&bare), unwritten), bare);
    }
}

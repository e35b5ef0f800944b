//! The instance reconcile of an RGD with a placement: resources with
//! `target: Hub` once on the hub, then every selected member in parallel,
//! each through its own client, each with its own entry in
//! `status.clusters`, folded into one status (see [`super::aggregate`]).
//!
//! What a member does never blocks another: a member that does not answer
//! keeps its last entry, marked stale and `Unreachable`, and the others go
//! on. Copies on a member that leaves the placement are deleted (or
//! released, with `onDeselect: Orphan`) once it answers; an unreachable
//! member is never taken for a gone one, unless `hub.kro.run/orphan-
//! unreachable: "true"` says to give up on it.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use kro_core::EvalContext;
use kro_core::rgd::{FINALIZER, OnDeselect, ResourceTarget};
use kube::Resource as _;
use kube::ResourceExt as _;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use serde_json::{Value, json};

use super::aggregate::{self, ClusterEntry};
use super::children::{self, ClusterTarget};
use super::reconcile::{InstanceError, Reconciler, Removal, Reported};
use super::rollout::{self, Step};
use super::state::{self, Phase, ResourceState};
use crate::conditions::Condition;
use crate::finalizer;
use crate::labels;
use crate::lean_object::LeanObject;
use crate::members::{CREATED_BY_LABEL, Health, Member, ORPHAN_UNREACHABLE};

/// What a member's pass produced.
struct MemberOutcome {
    entry: ClusterEntry,
}

/// This pass's part of a rollout: the policy, the status it goes on from,
/// what each selected cluster gets, and the transitions to report.
struct RolloutPlan<'p> {
    policy: &'p kro_core::rollout::RolloutPolicy,
    status: rollout::RolloutStatus,
    steps: std::collections::BTreeMap<String, Step>,
    transitions: Vec<rollout::Transition>,
}

/// Which revisions a member's pass renders: the rollout's (with
/// `spec.rollout`) and the RGD's graph revision.
#[derive(Debug, Clone, Copy)]
struct Revisions {
    rollout: Option<i64>,
    graph: i64,
}

fn is_hub_node(node: &kro_core::ResourceNode) -> bool {
    node.target() == Some(ResourceTarget::Hub)
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

fn target_of(member: &Member) -> Option<ClusterTarget> {
    Some(ClusterTarget {
        name: member.name.clone(),
        labels: member.labels.clone(),
        annotations: member.annotations.clone(),
        client: member.client.clone()?,
        discovery: member.discovery.clone(),
        member: true,
    })
}

/// Starts the member watches (see [`crate::members::drift`]) on the
/// members a static placement selects, as soon as each is ready and again
/// whenever the members change: a starting hub then lists the members'
/// children while it lists the instances, instead of once the first passes
/// ask for them. Member passes start the same watches (for a placement
/// computed per instance, only they do); starting a running one is a no-op.
pub(super) async fn warm_member_watches(
    ctx: std::sync::Arc<super::InstanceCtx>,
    placement: kro_core::ResolvedPlacement,
) {
    let mut changes = ctx.env.members.subscribe();
    loop {
        let members = ctx.env.members.snapshot();
        let selected = crate::placement::select(
            &placement,
            members.iter().map(|m| (m.name.as_str(), &m.labels)),
        )
        .unwrap_or_default();
        let ready = members.iter().filter(|m| {
            selected.contains(&m.name) && m.health.is_ready() && !m.paused && !m.deleting
        });
        for target in ready.filter_map(target_of) {
            watch_member_children(&ctx, &target).await;
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Starts the watches of the graph's member kinds on `target` (one shared
/// watch per member and kind, see [`crate::members::drift`]).
async fn watch_member_children(ctx: &super::InstanceCtx, target: &ClusterTarget) {
    for gvk in ctx.child_kinds(false) {
        if let Ok((ar, _)) = target.resolve(&gvk).await {
            ctx.env.drift.ensure(&target.name, &target.client, &ar);
        }
    }
}

impl Reconciler<'_> {
    fn orphans_unreachable(&self, member: Option<&Member>) -> bool {
        self.obj
            .annotations()
            .get(ORPHAN_UNREACHABLE)
            .is_some_and(|v| v == "true")
            || member.is_some_and(Member::orphans_unreachable)
    }

    /// The members `placement` (and `placement.when`) select for this
    /// instance, among those not being deleted.
    async fn select_members(
        &self,
        eval: &mut EvalContext,
        members: &[Member],
    ) -> Result<Vec<Member>, String> {
        let live: Vec<&Member> = members.iter().filter(|m| !m.deleting).collect();
        let candidates: Vec<crate::placement::Candidate> = live
            .iter()
            .map(|m| crate::placement::Candidate {
                name: m.name.clone(),
                labels: m.labels.clone(),
                annotations: m.annotations.clone(),
            })
            .collect();
        let names = self
            .evaluate(eval, move |graph, eval| {
                crate::placement::select_for_instance(graph, eval, &candidates)
            })
            .await?;
        Ok(live
            .into_iter()
            .filter(|m| names.contains(&m.name))
            .cloned()
            .collect())
    }

    /// `version` is the instance's resourceVersion after this pass's own
    /// writes so far, `members_version` the members' version this pass
    /// started from (both kept in the pass's record, see
    /// [`super::unchanged`]).
    pub(super) async fn run_placed(
        &self,
        version: Option<String>,
        members_version: u64,
    ) -> Result<Action, InstanceError> {
        let generation = self.obj.metadata.generation;
        let instance = self.obj.json.clone();
        let mut eval = EvalContext::new(instance)
            .for_graph(&self.graph)
            .with_now(std::time::SystemTime::now())
            .with_budget(kro_core::expr::meter::Budget::new(self.ctx.env.eval_budget));
        let previous = aggregate::read_entries(self.obj.json.get("status"));
        let members = self.ctx.env.members.snapshot();

        let selection = self.select_members(&mut eval, &members).await;
        // Resources that stay on the hub, once.
        let mut hub_states: Vec<ResourceState> = Vec::new();
        for node in self.graph.resources().filter(|n| is_hub_node(n)) {
            let id = node.id().to_owned();
            let phase = self.reconcile_resource(node, &mut eval, &hub_states).await;
            hub_states.push(ResourceState { id, phase });
        }

        let (selected, placement_error) = match selection {
            Ok(selected) => (selected, None),
            // A placement that cannot be evaluated moves nothing: the
            // clusters of the last pass are kept as they are.
            Err(message) => {
                let kept = members
                    .iter()
                    .filter(|m| !m.deleting)
                    .filter(|m| {
                        previous
                            .iter()
                            .any(|e| e.name == m.name && e.state != aggregate::DELETING)
                    })
                    .cloned()
                    .collect();
                (kept, Some(message))
            }
        };
        let selected_names: Vec<String> = selected.iter().map(|m| m.name.clone()).collect();

        // With `spec.rollout`, what each cluster gets this pass (see
        // `rollout`); without, every cluster gets the current render.
        let now_at = rollout::Now::current();
        let spec = self
            .obj
            .json
            .get("spec")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let paused = self.rollout_paused();
        let mut plan = self.graph.rollout().map(|policy| {
            let target = rollout::Target {
                graph_revision: self.ctx.revision,
                spec_hash: crate::revisions::hash(&spec),
            };
            let (status, steps, transitions) = rollout::begin(
                policy,
                rollout::read(self.obj.json.get("status")),
                &target,
                selected.iter().map(|m| (m.name.as_str(), &m.labels)),
                &rollout::Pass {
                    entries: &previous,
                    generation,
                    paused,
                    now: now_at,
                },
            );
            RolloutPlan {
                policy,
                status,
                steps,
                transitions,
            }
        });
        let rollout_revision = plan.as_ref().map(|p| p.status.revision);
        // A rollback renders the stable revision: its graph and its spec.
        let stable = match &plan {
            Some(p) if p.steps.values().any(|s| *s == Step::Rollback) => {
                Some(self.stable_render(&p.status).await)
            }
            _ => None,
        };
        let stable_rec = match &stable {
            Some(Ok((obj, graph, _))) => Some(self.with_graph(obj, graph.clone())),
            _ => None,
        };
        let stable_eval = stable_rec.as_ref().map(|rec| {
            EvalContext::new(serde_json::to_value(rec.obj).unwrap_or(Value::Null))
                .for_graph(&rec.graph)
                .with_now(std::time::SystemTime::now())
                .with_budget(kro_core::expr::meter::Budget::new(self.ctx.env.eval_budget))
        });
        let steps = plan.as_ref().map(|p| &p.steps);
        let passes = selected.iter().map(|member| {
            let prev = previous.iter().find(|e| e.name == member.name);
            let step = steps
                .and_then(|s| s.get(&member.name).cloned())
                .unwrap_or(Step::Apply);
            let (stable, stable_rec, stable_eval) = (&stable, &stable_rec, &stable_eval);
            let (eval, hub_states) = (&eval, &hub_states);
            async move {
                match step {
                    Step::Apply => {
                        self.member_pass(
                            member,
                            eval,
                            hub_states,
                            prev,
                            generation,
                            Revisions {
                                rollout: rollout_revision,
                                graph: self.ctx.revision,
                            },
                        )
                        .await
                    }
                    Step::Rollback => match (stable, stable_rec, stable_eval) {
                        (Some(Ok((_, _, stable))), Some(rec), Some(eval)) => {
                            rec.member_pass(
                                member,
                                eval,
                                hub_states,
                                prev,
                                generation,
                                Revisions {
                                    rollout: Some(stable.revision),
                                    graph: stable.graph_revision,
                                },
                            )
                            .await
                        }
                        (Some(Err(message)), _, _) => {
                            held(member, prev, aggregate::ERROR, message.clone())
                        }
                        _ => held(
                            member,
                            prev,
                            aggregate::ERROR,
                            "the stable revision is not available".to_owned(),
                        ),
                    },
                    Step::Hold(message) => held(member, prev, aggregate::PENDING, message),
                }
            }
        });
        let mut entries: Vec<ClusterEntry> = join_all(passes)
            .await
            .into_iter()
            .map(|o| o.entry)
            .collect();
        let mut rollout_wait = None;
        if let Some(RolloutPlan {
            policy,
            status,
            transitions,
            ..
        }) = &mut plan
        {
            let pass = rollout::Pass {
                entries: &entries,
                generation,
                paused,
                now: now_at,
            };
            let (more, wait) = rollout::advance(policy, status, &pass, &spec);
            transitions.extend(more);
            rollout_wait = wait;
        }

        // Members that left the placement.
        let leaving: Vec<&ClusterEntry> = previous
            .iter()
            .filter(|e| !selected_names.contains(&e.name))
            .collect();
        let departures = leaving.iter().map(|prev| {
            let member = members.iter().find(|m| m.name == prev.name);
            self.depart(member, prev)
        });
        let departed = !leaving.is_empty();
        entries.extend(join_all(departures).await.into_iter().flatten());
        entries.sort_by(|a, b| a.name.cmp(&b.name));

        let (hub_state, hub_conds) = state::summarize(&hub_states, &[], generation);
        let counts = aggregate::counts(&entries, &selected_names, generation);
        let not_ready: Vec<String> = selected_names
            .iter()
            .filter_map(|n| {
                let e = entries.iter().find(|e| &e.name == n)?;
                if e.ready_at(generation) {
                    return None;
                }
                let why = if e.message.is_empty() {
                    e.state.clone()
                } else {
                    format!("{}: {}", e.state, e.message)
                };
                Some(format!("cluster {n} ({why})"))
            })
            .collect();
        let failed: Vec<&ClusterEntry> = entries
            .iter()
            .filter(|e| e.state == aggregate::ERROR)
            .collect();
        let hub_ready = hub_state == state::ACTIVE;
        let hub_message = hub_conds
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let (state_name, reason, message) = if let Some(message) = &placement_error {
            (state::ERROR, "PlacementFailed", message.clone())
        } else if hub_state == state::ERROR {
            (
                state::ERROR,
                "HubResourcesFailed",
                format!("on the hub: {hub_message}"),
            )
        } else if let Some(r) = plan
            .as_ref()
            .map(|p| &p.status)
            .filter(|r| r.state != rollout::COMPLETE)
        {
            match r.state.as_str() {
                rollout::HALTED => (state::ERROR, "RolloutHalted", r.message.clone()),
                rollout::ROLLED_BACK => (state::ERROR, "RolledBack", r.message.clone()),
                rollout::PAUSED => (state::IN_PROGRESS, "RolloutPaused", r.message.clone()),
                _ => (state::IN_PROGRESS, "RollingOut", r.message.clone()),
            }
        } else if !failed.is_empty() {
            (state::ERROR, "ClusterFailed", not_ready.join("; "))
        } else if selected_names.is_empty() {
            (
                state::IN_PROGRESS,
                "NoClusterSelected",
                "the placement selects no cluster".to_owned(),
            )
        } else if not_ready.is_empty() && hub_ready {
            (state::ACTIVE, "Ready", String::new())
        } else if !hub_ready {
            (
                state::IN_PROGRESS,
                "HubResourcesNotReady",
                format!("on the hub: {hub_message}"),
            )
        } else {
            (
                state::IN_PROGRESS,
                "ClustersNotReady",
                format!("waiting for {}", not_ready.join("; ")),
            )
        };
        let ready = state_name == state::ACTIVE;
        let conds = vec![
            Condition::new(
                "InstanceManaged",
                true,
                "Managed",
                "instance is properly managed with finalizers and labels",
                generation,
            ),
            Condition::new(
                "GraphResolved",
                placement_error.is_none(),
                if placement_error.is_none() {
                    "Resolved"
                } else {
                    "PlacementFailed"
                },
                placement_error
                    .clone()
                    .unwrap_or_else(|| format!("placed on {} cluster(s)", selected_names.len())),
                generation,
            ),
            Condition::new(
                "ResourcesReady",
                ready,
                reason,
                if ready {
                    "every selected cluster is ready".to_owned()
                } else {
                    message.clone()
                },
                generation,
            ),
            Condition::new("Ready", ready, reason, message, generation),
        ];
        let mut conds = conds;
        if let Some(RolloutPlan { status: r, .. }) = &plan {
            let (status, reason, message) = rollout::progressing_condition(r);
            let mut c = Condition::new(
                "Progressing",
                status.unwrap_or(false),
                reason,
                message,
                generation,
            );
            if status.is_none() {
                c.status = "Unknown".to_owned();
            }
            conds.push(c);
        }
        let mut status = state::status_object(aggregate::fold(&entries), state_name, &conds);
        status[kro_core::crd::CLUSTERS_STATUS_FIELD] = json!(entries);
        status[kro_core::crd::PLACEMENT_STATUS_FIELD] = counts;
        if let Some(RolloutPlan { status: r, .. }) = &plan {
            status[kro_core::crd::ROLLOUT_STATUS_FIELD] = json!(r);
        }
        // Only a pass whose every cluster ran a member pass is recorded: a
        // cluster leaving the placement, held by a rollout or not answering
        // moves on inputs the record does not hold (its copies being
        // deleted, the waves, the member coming back).
        let settled = !departed
            && selected
                .iter()
                .all(|m| !matches!(m.health, Health::Unknown))
            && entries.iter().all(|e| {
                [aggregate::READY, aggregate::IN_PROGRESS, aggregate::ERROR]
                    .contains(&e.state.as_str())
            })
            && plan
                .as_ref()
                .is_none_or(|p| p.status.state == rollout::COMPLETE);
        // What the member passes read: the record's, and with the status
        // of an instance ready everywhere, for a restarted hub (see
        // `unchanged`).
        let seen = self
            .seen
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        let inputs = (self.ctx.skips_unchanged && settled && ready).then(|| {
            let selected: Vec<&str> = selected_names.iter().map(String::as_str).collect();
            super::unchanged::inputs_hash(
                self.ctx.rgd(),
                &self.obj.json,
                &members,
                &selected,
                &seen,
            )
        });
        let status =
            super::unchanged::with_inputs_hash(self.obj.json.get("status"), status, inputs);
        // A rollout's progress is its state machine's: never held.
        let ready_now = conds.iter().find(|c| c.type_ == "Ready");
        // A held report is recorded like a written one, due at the end of
        // the hold: the echoes of this pass's own applies are then answered
        // from the record instead of running a whole pass each.
        let (written, held) = match self
            .report(status, state_name, ready_now, plan.is_none())
            .await?
        {
            Reported::Written(version) => (version, None),
            Reported::Held(wait) => (None, Some(wait)),
        };
        if let Some(RolloutPlan { transitions, .. }) = &plan {
            for t in transitions {
                self.publish_event(t.warning, t.reason, "Rollout", &t.message)
                    .await;
            }
        }
        // Entries that wait on the member, not on the hub (unreachable or
        // paused): the pool re-queues the instance when the member changes.
        let unreachable = entries.iter().any(|e| {
            e.state == aggregate::UNREACHABLE
                || members.iter().any(|m| m.name == e.name && m.paused)
        });
        let again = match (rollout_wait, state_name) {
            _ if let Some(hold) = held => hold,
            // A wave waiting out minReadySeconds: come back when it is over.
            (Some(secs), _) => Duration::from_secs(secs.clamp(1, 3600)),
            (None, state::ACTIVE) => self.ctx.resync_of(&self.identity.uid),
            (None, state::ERROR) => Duration::from_secs(10),
            // The pool re-queues every placed instance when a member comes
            // back; this is only the safety net.
            (None, _) if unreachable => Duration::from_secs(30),
            (None, _) => Duration::from_secs(3),
        };
        if self.ctx.skips_unchanged
            && settled
            && let Some(instance_version) = written.or(version)
        {
            self.ctx.records.record(
                &self.identity.uid,
                super::unchanged::Record {
                    instance_version,
                    members_version,
                    children: seen,
                    due: std::time::Instant::now() + again,
                },
            );
        }
        Ok(Action::requeue(again))
    }

    /// One member's part of the reconcile.
    async fn member_pass(
        &self,
        member: &Member,
        base: &EvalContext,
        hub_states: &[ResourceState],
        previous: Option<&ClusterEntry>,
        generation: Option<i64>,
        revisions: Revisions,
    ) -> MemberOutcome {
        let kept = |state: &str, message: String| {
            let mut entry = previous.cloned().unwrap_or_else(|| ClusterEntry {
                name: member.name.clone(),
                ..ClusterEntry::default()
            });
            entry.state = state.to_owned();
            entry.message = crate::conditions::cap_message(message);
            entry.stale = entry.values.is_some();
            // `lastSeen` is when the instance's pass last reached the
            // member, not the member's last probe: copying the probe time
            // here would rewrite the status on every probe.
            MemberOutcome { entry }
        };
        // Not probed yet (the hub just started, or the Cluster is new): the
        // last entry stands until the probe tells; the probe's outcome
        // re-queues the instance. Calling the member unreachable meanwhile
        // would rewrite the status of every instance on it at each start
        // of the hub, and again once the probe answered.
        if matches!(member.health, Health::Unknown) {
            return match previous {
                Some(entry) => MemberOutcome {
                    entry: entry.clone(),
                },
                None => kept(aggregate::PENDING, member.health.message()),
            };
        }
        let target = match target_of(member) {
            Some(t) if member.health.is_ready() => t,
            _ => return kept(aggregate::UNREACHABLE, member.health.message()),
        };
        if member.paused {
            return kept(
                aggregate::PENDING,
                "the cluster is paused (spec.paused): nothing is applied there".to_owned(),
            );
        }
        let Ok(_permit) = member.permits.acquire().await else {
            return kept(
                aggregate::UNREACHABLE,
                "the member is shutting down".to_owned(),
            );
        };
        // The snapshot may predate the Cluster's deletion: a copy applied now
        // could land after its cleanup counted nothing left.
        if self
            .ctx
            .env
            .members
            .get(&member.name)
            .is_none_or(|m| m.deleting)
        {
            return kept(
                aggregate::DELETING,
                "the cluster is being removed from the hub".to_owned(),
            );
        }
        let rec = self.for_target(target);
        // Drift on this member re-queues the instance.
        watch_member_children(self.ctx, &rec.target).await;
        if let Some(ns) = &self.identity.namespace
            && let Err(message) = ensure_namespace(member, ns).await
        {
            return kept(aggregate::ERROR, message);
        }
        let mut eval = base.clone().with_cluster(rec.target.cel_value());
        let mut states: Vec<ResourceState> = hub_states.to_vec();
        let graph = self.graph.clone();
        for node in graph.resources().filter(|n| !is_hub_node(n)) {
            let id = node.id().to_owned();
            let phase = rec.reconcile_resource(node, &mut eval, &states).await;
            states.push(ResourceState { id, phase });
        }
        let mine = &states[hub_states.len()..];
        // The namespace was deleted on the member behind the hub's back:
        // forget it, so the next pass creates it again.
        if let Some(ns) = &self.identity.namespace
            && mine.iter().any(|s| {
                matches!(&s.phase, Phase::Failed(m) if m.contains(&format!("namespaces \"{ns}\" not found")))
            })
            && let Ok(mut known) = member.known_namespaces.lock()
        {
            known.remove(ns);
        }
        let (state_name, conds) = state::summarize(mine, &[], generation);
        let total = mine.iter().filter(|s| s.phase != Phase::Skipped).count();
        let ready = mine.iter().filter(|s| s.phase == Phase::Ready).count();
        let values = rec
            .evaluate(&mut eval, |graph, eval| {
                graph.status(eval).map_err(|e| e.to_string())
            })
            .await
            .ok();
        let message = conds
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let state = match state_name.as_str() {
            state::ACTIVE => aggregate::READY,
            state::ERROR => aggregate::ERROR,
            _ => aggregate::IN_PROGRESS,
        };
        let mut entry = ClusterEntry {
            name: member.name.clone(),
            state: state.to_owned(),
            message: crate::conditions::cap_message(message),
            resources_ready: Some(format!("{ready}/{total}")),
            observed_generation: generation,
            revision: revisions.rollout,
            graph_revision: Some(revisions.graph),
            values,
            last_seen: Some(now()),
            stale: false,
        };
        // `lastSeen` moves with the entry, not with every pass: a converged
        // instance writes nothing.
        if let Some(prev) = previous
            && (ClusterEntry {
                last_seen: prev.last_seen.clone(),
                ..entry.clone()
            }) == *prev
        {
            entry.last_seen = prev.last_seen.clone();
        }
        MemberOutcome { entry }
    }

    /// The entry of a member that left the placement, while its copies are
    /// removed; `None` once nothing of the instance is left there.
    async fn depart(&self, member: Option<&Member>, prev: &ClusterEntry) -> Option<ClusterEntry> {
        let still = |state: &str, message: String| {
            Some(ClusterEntry {
                state: state.to_owned(),
                message: crate::conditions::cap_message(message),
                stale: prev.values.is_some(),
                ..prev.clone()
            })
        };
        let Some(member) = member else {
            // Not in the pool: gone only if its Cluster object is gone; a
            // hub that just started may not have loaded it yet.
            return match self.cluster_exists(&prev.name).await {
                Ok(false) => None,
                Ok(true) => still(
                    aggregate::UNREACHABLE,
                    "the hub has not reached this cluster yet".to_owned(),
                ),
                Err(message) => still(aggregate::UNREACHABLE, message),
            };
        };
        let Some(target) = target_of(member).filter(|_| member.health.is_ready()) else {
            if self.orphans_unreachable(Some(member)) {
                self.abandoned(&member.name).await;
                return None;
            }
            return still(
                aggregate::UNREACHABLE,
                format!(
                    "left the placement; its copies are removed once it answers again ({}; \
                     annotate {ORPHAN_UNREACHABLE}: \"true\" to abandon them)",
                    member.health.message()
                ),
            );
        };
        if member.paused {
            return still(
                aggregate::DELETING,
                "left the placement; the cluster is paused (spec.paused): its copies are removed \
                 once it is resumed"
                    .to_owned(),
            );
        }
        let Ok(_permit) = member.permits.acquire().await else {
            return still(
                aggregate::DELETING,
                "the member is shutting down".to_owned(),
            );
        };
        let rec = self.for_target(target);
        let orphan = self.graph.on_deselect() == OnDeselect::Orphan && !member.deleting;
        let outcome = if orphan {
            rec.release_on_target().await
        } else {
            rec.delete_on_target().await
        };
        match outcome {
            Removal::Done => None,
            Removal::Pending(m) | Removal::Failed(m) => {
                still(aggregate::DELETING, format!("left the placement: {m}"))
            }
        }
    }

    /// Releases every child of this instance on the target: kro's labels
    /// and annotations removed, the objects left alone.
    pub(super) async fn release_on_target(&self) -> Removal {
        for gvk in &self.ctx.known_kinds {
            let (ar, caps) = match self.target.resolve(gvk).await {
                Ok(found) => found,
                Err(e) if super::reconcile::not_served_error(&e) => continue,
                Err(e) => return Removal::Failed(super::reconcile::api_message(&e)),
            };
            let api = Api::<DynamicObject>::all_with(self.target.client.clone(), &ar);
            let listed = match api
                .list_metadata(&ListParams::default().labels(&self.children_selector()))
                .await
            {
                Ok(l) => l,
                Err(e) => return Removal::Failed(super::reconcile::api_message(&e)),
            };
            for child in listed.items {
                let child_api = children::api_for(
                    &self.target.client,
                    &ar,
                    &caps,
                    child.metadata.namespace.as_deref(),
                );
                if let Err(e) = children::release(&child_api, &child.metadata).await {
                    return Removal::Failed(super::reconcile::api_message(&e));
                }
            }
        }
        Removal::Done
    }

    /// Whether the Cluster `name` exists on the hub; `Err` when the hub
    /// cannot tell.
    async fn cluster_exists(&self, name: &str) -> Result<bool, String> {
        let api = Api::<DynamicObject>::all_with(
            self.ctx.env.client.clone(),
            &crate::members::cluster::api_resource(),
        );
        api.get_opt(name).await.map(|c| c.is_some()).map_err(|e| {
            format!(
                "reading Cluster {name}: {}",
                super::reconcile::api_message(&e)
            )
        })
    }

    /// Records that the copies on an unreachable member were given up.
    async fn abandoned(&self, cluster: &str) {
        tracing::warn!(instance = %self.display, cluster, "copies on an unreachable member abandoned");
        self.publish_event(
            true,
            "CopiesAbandoned",
            "Orphan",
            &format!(
                "cluster {cluster} is unreachable and {ORPHAN_UNREACHABLE} is set: its copies of \
                 this instance are left there, unmanaged"
            ),
        )
        .await;
    }

    /// Publishes an Event on the instance; failing to publish never fails
    /// the reconcile.
    async fn publish_event(&self, warning: bool, reason: &str, action: &str, note: &str) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(crate::conditions::cap_event_note(note)),
            action: action.to_owned(),
            secondary: None,
        };
        let reference = self.obj.object_ref(&self.ctx.resource);
        if let Err(error) = self.ctx.env.recorder.publish(&event, &reference).await {
            tracing::debug!(instance = %self.display, %error, "event not published");
        }
    }

    /// Whether the rollout holds after its current wave: the RGD's
    /// `spec.rollout.paused` or the instance's annotation.
    fn rollout_paused(&self) -> bool {
        self.graph.rollout().is_some_and(|r| r.paused)
            || self
                .obj
                .annotations()
                .get(rollout::PAUSED_ANNOTATION)
                .is_some_and(|v| v == "true")
    }

    /// What a rollback renders: the instance with the stable revision's
    /// spec, that revision's graph, and the stable revision itself. `Err` says why
    /// it cannot be rendered (its graph revision is no longer kept).
    async fn stable_render(
        &self,
        rollout: &rollout::RolloutStatus,
    ) -> Result<
        (
            LeanObject,
            std::sync::Arc<kro_core::CompiledGraph>,
            rollout::Stable,
        ),
        String,
    > {
        let stable = rollout
            .stable
            .as_ref()
            .ok_or("no earlier revision completed")?;
        let mut obj = self.obj.clone();
        if let Some(data) = obj.json.as_object_mut() {
            data.insert("spec".to_owned(), stable.spec.clone());
        }
        let graph = self.graph_at(stable.graph_revision).await?;
        Ok((obj, graph, stable.clone()))
    }

    /// The RGD's graph at revision `number`: the current one, or an earlier
    /// one read from its GraphRevision and compiled once.
    async fn graph_at(
        &self,
        number: i64,
    ) -> Result<std::sync::Arc<kro_core::CompiledGraph>, String> {
        if number == self.ctx.revision {
            return Ok(self.ctx.graph.clone());
        }
        if let Some(g) = self
            .ctx
            .old_graphs
            .lock()
            .ok()
            .and_then(|m| m.get(&number).cloned())
        {
            return Ok(g);
        }
        let rgd = crate::revisions::load(
            &self.ctx.env.client,
            &self.ctx.rgd_name,
            &self.ctx.rgd_uid,
            number,
        )
        .await
        .map_err(|e| {
            format!(
                "reading graph revision {number}: {}",
                super::reconcile::api_message(&e)
            )
        })?
        .ok_or_else(|| {
            format!(
                "graph revision {number} of RGD {} is no longer kept (the last {} are)",
                self.ctx.rgd_name,
                crate::revisions::KEPT
            )
        })?;
        let options = kro_core::CompileOptions {
            trust_instance_namespaces: self.ctx.env.trust_instance_namespaces,
            ..kro_core::CompileOptions::default()
        };
        let graph = self
            .ctx
            .env
            .eval
            .run(move || kro_core::compile_with(&rgd, &options).map_err(|e| e.to_string()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("graph revision {number} no longer compiles: {e}"))?;
        let graph = std::sync::Arc::new(graph);
        if let Ok(mut m) = self.ctx.old_graphs.lock() {
            m.insert(number, graph.clone());
        }
        Ok(graph)
    }

    /// Deletion of a placed instance: its copies on every member (in
    /// parallel, each in reverse dependency order), then its hub resources.
    /// An unreachable member holds the finalizer, and the status says so,
    /// until it answers or the orphan annotation gives it up.
    pub(super) async fn delete_placed(
        &self,
        api: &Api<LeanObject>,
    ) -> Result<Action, InstanceError> {
        let previous = aggregate::read_entries(self.obj.json.get("status"));
        let members = self.ctx.env.members.snapshot();
        // Every member the instance may have reached: those it lists, and
        // any other (a restart may have come between an apply and the
        // status that records it).
        let names: BTreeSet<String> = previous
            .iter()
            .map(|e| e.name.clone())
            .chain(members.iter().map(|m| m.name.clone()))
            .collect();
        let (members, previous) = (&members, &previous);
        let work = names.iter().map(|name| async move {
            let listed = previous.iter().any(|e| &e.name == name);
            let Some(member) = members.iter().find(|m| &m.name == name) else {
                // Listed but not in the pool: held unless its Cluster is gone.
                return match self.cluster_exists(name).await {
                    Ok(false) => None,
                    Ok(true) => Some(format!("cluster {name}: the hub has not reached it yet")),
                    Err(message) => Some(format!("cluster {name}: {message}")),
                };
            };
            // A member the instance never reached holds nothing unless it
            // answers and says otherwise.
            if !listed && !member.health.is_ready() {
                return None;
            }
            if member.paused {
                return Some(format!(
                    "cluster {name} is paused (spec.paused): its copies are removed once it is resumed"
                ));
            }
            match target_of(member).filter(|_| member.health.is_ready()) {
                Some(target) => {
                    let Ok(_permit) = member.permits.acquire().await else {
                        return Some(format!("cluster {name}: the member is shutting down"));
                    };
                    match self.for_target(target).delete_on_target().await {
                        Removal::Done => None,
                        Removal::Pending(m) | Removal::Failed(m) => {
                            Some(format!("cluster {name}: {m}"))
                        }
                    }
                }
                None if self.orphans_unreachable(Some(member)) => {
                    if previous.iter().any(|e| &e.name == name) {
                        self.abandoned(name).await;
                    }
                    None
                }
                None => Some(format!(
                    "cluster {name} is unreachable ({}): its copies hold the deletion; annotate \
                     the instance with {ORPHAN_UNREACHABLE}: \"true\" to abandon them",
                    member.health.message()
                )),
            }
        });
        let mut waiting: Vec<String> = join_all(work).await.into_iter().flatten().collect();
        if waiting.is_empty() {
            match self.delete_on_target().await {
                Removal::Done => {}
                Removal::Pending(m) | Removal::Failed(m) => waiting.push(format!("hub: {m}")),
            }
        }
        if !waiting.is_empty() {
            self.write_deleting(&waiting.join("; ")).await?;
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
        finalizer::remove(api, self.obj, FINALIZER)
            .await
            .map_err(self.kube_err("removing finalizer"))?;
        Ok(Action::await_change())
    }
}

/// The entry of a cluster this pass leaves untouched: its last entry (its
/// revision and values kept), in `state`, saying why.
fn held(
    member: &Member,
    previous: Option<&ClusterEntry>,
    state: &str,
    message: String,
) -> MemberOutcome {
    let mut entry = previous.cloned().unwrap_or_else(|| ClusterEntry {
        name: member.name.clone(),
        ..ClusterEntry::default()
    });
    entry.state = state.to_owned();
    entry.message = crate::conditions::cap_message(message);
    MemberOutcome { entry }
}

/// Creates the instance's namespace on the member when missing, labelled as
/// created by the hub.
async fn ensure_namespace(member: &Member, namespace: &str) -> Result<(), String> {
    let known = || {
        member
            .known_namespaces
            .lock()
            .map(|k| k.contains(namespace))
            .unwrap_or(false)
    };
    if known() {
        return Ok(());
    }
    // One check at a time per member: the passes that waited find the
    // namespace known.
    let _checking = member.namespace_check.lock().await;
    if known() {
        return Ok(());
    }
    let Some(client) = &member.client else {
        return Err("no client for the member".to_owned());
    };
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let exists = api
        .get_opt(namespace)
        .await
        .map_err(|e| {
            format!(
                "reading namespace {namespace}: {}",
                super::reconcile::api_message(&e)
            )
        })?
        .is_some();
    if !exists {
        let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({
            "metadata": {"name": namespace, "labels": {CREATED_BY_LABEL: labels::label_value(crate::FIELD_MANAGER)}}
        }))
        .map_err(|e| e.to_string())?;
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                return Err(format!(
                    "creating namespace {namespace}: {}",
                    super::reconcile::api_message(&e)
                ));
            }
        }
    }
    if let Ok(mut k) = member.known_namespaces.lock() {
        k.insert(namespace.to_owned());
    }
    Ok(())
}

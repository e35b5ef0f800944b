//! One instance's reconciliation: walk the graph in topological order,
//! apply what is ready to be applied, read back, evaluate readiness, write
//! the status only when it changed, and clean up in reverse order on
//! deletion.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kro_core::rgd::FINALIZER;
use kro_core::{CompiledGraph, EvalContext, Inclusion, Readiness, RenderOutcome};
use kube::Resource as _;
use kube::ResourceExt as _;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};

use super::InstanceEnv;
use super::children::{self, ClusterTarget};
use super::report::Verdict;
use super::state::{self, Phase, ResourceState};
use crate::conditions;
use crate::finalizer;
use crate::labels::{self, InstanceIdentity};
use crate::lean_object::{LeanObject, WrittenVersion};
use crate::members::drift::Lookup;

/// What [`Reconciler::resolve`] finds of an object on its target.
struct Resolved {
    api: Api<LeanObject>,
    name: String,
    ar: ApiResource,
    namespaced: bool,
}

/// Name of the hub's own cluster as a target (`cluster.name` in CEL).
pub const HUB_CLUSTER: &str = "hub";

/// Annotation that pauses reconciliation of an instance, as upstream.
pub const RECONCILE_ANNOTATION: &str = "kro.run/reconcile";

/// Everything one instance controller shares across reconciles.
#[derive(Debug)]
pub struct InstanceCtx {
    /// Hub services.
    pub env: InstanceEnv,
    /// RGD name.
    pub rgd_name: String,
    /// RGD uid.
    pub rgd_uid: String,
    /// The RGD generation this controller serves.
    pub rgd_generation: Option<i64>,
    /// When this controller started.
    pub started: std::time::Instant,
    /// The compiled graph.
    pub graph: Arc<CompiledGraph>,
    /// Its number in the RGD's history (see [`crate::revisions`]).
    pub revision: i64,
    /// Earlier revisions compiled for a rollback, by number.
    pub old_graphs: std::sync::Mutex<std::collections::HashMap<i64, Arc<CompiledGraph>>>,
    /// The generated kind.
    pub resource: ApiResource,
    /// Whether the generated kind is namespaced.
    pub namespaced: bool,
    /// Every kind this RGD's templates ever used (recorded on the RGD), so
    /// children of resources that left the graph can still be found.
    pub known_kinds: Vec<GroupVersionKind>,
    /// Ids of resources with `deletionPolicy: Orphaned`: their objects are
    /// released (kro's labels and annotations removed), never deleted.
    pub orphaned: std::collections::HashSet<String>,
    /// `spec.defaultServiceAccounts` of the RGD: the account to act as for
    /// an instance, by its namespace (`"*"` for any).
    pub service_accounts: std::collections::BTreeMap<String, String>,
    /// Ids of resources whose namespace is computed from the instance: each
    /// rendered value must be the instance's own namespace unless the RGD
    /// names service accounts or the hub trusts instance creators (see
    /// `kro_core::namespaces`).
    pub instance_chosen_namespaces: std::collections::BTreeSet<String>,
    /// Instances already swept for such children since this controller
    /// started (or [`SWEPT_EVERY_INSTANCE`]): the sweep costs a list per
    /// kind, so it runs once per graph version, not on every resync.
    pub pruned: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Which instances read which external objects.
    pub externals: super::externals::ExternalIndex,
    /// What is being or will soon be reconciled.
    pub queue: WorkQueue,
    /// Kinds whose watch could not be set up (drift on them is only
    /// caught by resync), reported in the WatchesHealthy condition.
    pub watch_gaps: std::sync::Mutex<Vec<String>>,
    /// Whether a pass that would find nothing new is skipped (see
    /// [`super::unchanged`]).
    pub(super) skips_unchanged: bool,
    /// What each instance's last pass read.
    pub(super) records: super::unchanged::Records,
    /// Held progress reports and failures to recover from (see
    /// [`super::report`]).
    pub(super) reports: super::report::Reports,
}

/// What became of a pass's status (see [`Reconciler::report`]).
#[derive(Debug)]
pub(super) enum Reported {
    /// Written (the new resourceVersion), or already as it should be.
    Written(Option<String>),
    /// Held back: the pass looks again after this long.
    Held(Duration),
}

/// `period` plus a part of up to a tenth of it, the same for `key` on every
/// run (FNV-1a of the key).
fn spread(period: Duration, key: &str) -> Duration {
    let tenth = u64::try_from((period / 10).as_millis()).unwrap_or(u64::MAX);
    if tenth == 0 {
        return period;
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    period + Duration::from_millis(hash % tenth)
}

/// `group/version/Kind` of a GVK, the key of the external index.
pub fn kind_key(gvk: &GroupVersionKind) -> String {
    format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind)
}

impl InstanceCtx {
    /// The RGD served: its uid and generation.
    pub fn rgd(&self) -> (&str, Option<i64>) {
        (&self.rgd_uid, self.rgd_generation)
    }

    /// When the instance with `uid` is resynced: the hub's period plus up
    /// to a tenth more, fixed per instance. Instances that converged
    /// together, or that a restarted hub found converged together, would
    /// otherwise resync together: a burst of whole passes every period.
    pub fn resync_of(&self, uid: &str) -> Duration {
        spread(self.env.resync, uid)
    }

    /// The controller's name in metrics.
    pub fn controller_name(&self) -> String {
        format!("instance/{}", self.rgd_name)
    }

    /// The distinct kinds of the graph's external references.
    pub fn external_kinds(&self) -> Vec<GroupVersionKind> {
        let mut out: Vec<GroupVersionKind> = Vec::new();
        for node in self.graph.resources().filter(|n| n.is_external()) {
            if let Some(gvk) =
                children::gvk_of(&json!({"apiVersion": node.api_version(), "kind": node.kind()}))
                && !out.contains(&gvk)
            {
                out.push(gvk);
            }
        }
        out
    }

    /// The distinct kinds of the graph's templates applied on the hub
    /// (`on_hub`) or on the members.
    pub fn child_kinds(&self, on_hub: bool) -> Vec<GroupVersionKind> {
        let mut out: Vec<GroupVersionKind> = Vec::new();
        // With a placement, a resource lives either on the hub (`target:
        // Hub`) or on the members, never both: each side watches only its
        // own kinds.
        let here = |n: &&kro_core::ResourceNode| {
            let hub_node = n.target() == Some(kro_core::rgd::ResourceTarget::Hub);
            !self.graph.is_placed() || hub_node == on_hub
        };
        for node in self
            .graph
            .resources()
            .filter(|n| !n.is_external())
            .filter(here)
        {
            let Some(gvk) =
                children::gvk_of(&json!({"apiVersion": node.api_version(), "kind": node.kind()}))
            else {
                continue;
            };
            if !out.contains(&gvk) {
                out.push(gvk);
            }
        }
        out
    }

    /// The hub's own cluster as the target of the instance in `namespace`:
    /// with the hub's identity, or as the ServiceAccount the RGD names for
    /// that namespace (see [`crate::identity`]). `Err` says why no identity
    /// may act for it.
    pub fn target_for(&self, namespace: Option<&str>) -> Result<ClusterTarget, String> {
        let mut target = self.hub_target();
        if self.service_accounts.is_empty() {
            return Ok(target);
        }
        let Some(namespace) = namespace else {
            return Err(format!(
                "RGD {} names defaultServiceAccounts, which act for instances in a namespace; \
                 this instance is cluster-scoped",
                self.rgd_name
            ));
        };
        let account = self
            .service_accounts
            .get(namespace)
            .or_else(|| self.service_accounts.get("*"))
            .ok_or_else(|| {
                format!(
                    "RGD {} names no ServiceAccount for namespace {namespace} in \
                     spec.defaultServiceAccounts (nor \"*\"); kro-hub acts for its instances \
                     only as one of those",
                    self.rgd_name
                )
            })?;
        let user = crate::identity::service_account_user(namespace, account);
        target.client = self
            .env
            .identities
            .client_as(&user)
            .map_err(|e| format!("acting as {user}: {e}"))?;
        Ok(target)
    }

    /// The hub's own cluster as a target: where children go when the
    /// instance is not placed on members.
    pub fn hub_target(&self) -> ClusterTarget {
        ClusterTarget {
            name: HUB_CLUSTER.to_owned(),
            labels: Default::default(),
            annotations: Default::default(),
            client: self.env.client.clone(),
            discovery: self.env.discovery.clone(),
            member: false,
        }
    }

    fn instance_api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
    {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.env.client.clone(), ns, &self.resource),
            _ => Api::all_with(self.env.client.clone(), &self.resource),
        }
    }
}

/// The key in [`InstanceCtx::pruned`] saying that one sweep covered every
/// instance of the RGD (no instance uid is empty).
const SWEPT_EVERY_INSTANCE: &str = "";

/// Longest a member pass waits for the first list of a member's watch
/// before it GETs the children it needs instead.
pub(super) const STORE_SYNC_WAIT: Duration = Duration::from_secs(10);

/// Why the hub refuses to apply `desired` over an object that exists and is
/// not this instance's (`owner`: the instance uid label it carries).
fn takeover_refused(desired: &Value, owner: Option<&str>) -> String {
    // Taking it over would let an instance's creator overwrite (and, on
    // deletion, delete) an object they could not touch themselves, with
    // the hub's rights.
    format!(
        "{} already exists and is not this instance's ({}); kro-hub does not take over objects \
         it did not create: delete or rename it, or change the name the template gives it",
        describe(desired),
        match owner {
            Some(other) => format!("it belongs to the instance with uid {other}"),
            None => "it carries no kro instance label".to_owned(),
        }
    )
}

/// Longest one reconcile of one instance may take: API calls that hang and
/// evaluations queued behind costly ones give up and retry rather than
/// hold the instance (and a controller slot) forever.
pub const RECONCILE_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors that make a reconcile retry with backoff. Resource-level failures
/// are not errors here: they are reported on the instance's status.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The API server failed a request about the instance itself.
    #[error("instance {instance}: {action}: {source}")]
    Kube {
        /// namespace/name.
        instance: String,
        /// What we were doing.
        action: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// The reconcile took longer than [`RECONCILE_TIMEOUT`].
    #[error("instance {instance}: reconcile took longer than {RECONCILE_TIMEOUT:?}; retrying")]
    Timeout {
        /// namespace/name.
        instance: String,
    },
}

pub(super) fn error_policy(
    obj: Arc<LeanObject>,
    error: &InstanceError,
    _ctx: Arc<InstanceCtx>,
) -> Action {
    tracing::warn!(instance = %obj.name_any(), %error, "instance reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

pub(super) async fn reconcile(
    obj: Arc<LeanObject>,
    ctx: Arc<InstanceCtx>,
) -> Result<Action, InstanceError> {
    let start = Instant::now();
    let controller = ctx.controller_name();
    let key = obj.metadata.uid.clone().unwrap_or_default();
    ctx.queue.started(&key);
    ctx.env
        .metrics
        .set_queue_depth(&controller, ctx.queue.depth());
    let reconciler = Reconciler::new(&obj, &ctx);
    let result = match tokio::time::timeout(RECONCILE_TIMEOUT, reconciler.run()).await {
        Ok(result) => result,
        Err(_) => Err(InstanceError::Timeout {
            instance: match obj.namespace() {
                Some(ns) => format!("{ns}/{}", obj.name_any()),
                None => obj.name_any(),
            },
        }),
    };
    // An instance that will be looked at again soon (not converged, or an
    // error) counts as queued until that pass starts. A trigger answered
    // without a pass leaves the instance as its status says: an ACTIVE
    // one waits only for its resync.
    let converged_unchanged = reconciler
        .skipped
        .load(std::sync::atomic::Ordering::Relaxed)
        && obj.json.pointer("/status/state").and_then(Value::as_str) == Some(state::ACTIVE);
    let again_soon = match &result {
        Ok(action) => {
            *action != Action::requeue(ctx.resync_of(&key))
                && *action != Action::await_change()
                && !converged_unchanged
        }
        Err(_) => true,
    };
    ctx.queue.finished(&key, again_soon);
    ctx.env
        .metrics
        .set_queue_depth(&controller, ctx.queue.depth());
    ctx.env
        .metrics
        .reconciled(&controller, start.elapsed(), result.is_err());
    result
}

/// Where removing an instance's children from one cluster stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Removal {
    /// Nothing of the instance is left there.
    Done,
    /// Deletions are under way.
    Pending(String),
    /// A deletion failed.
    Failed(String),
}

/// Instances being reconciled or due for another pass soon: the
/// controller's queue depth as an operator reads it.
#[derive(Debug, Default)]
pub struct WorkQueue {
    state: std::sync::Mutex<(usize, std::collections::HashSet<String>)>,
}

impl WorkQueue {
    fn started(&self, key: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.0 += 1;
            s.1.remove(key);
        }
    }

    fn finished(&self, key: &str, again_soon: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = s.0.saturating_sub(1);
            if again_soon {
                s.1.insert(key.to_owned());
            }
        }
    }

    /// In-flight plus due-soon instances.
    pub fn depth(&self) -> i64 {
        self.state
            .lock()
            .map(|s| i64::try_from(s.0 + s.1.len()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

pub(super) struct Reconciler<'a> {
    pub(super) obj: &'a LeanObject,
    pub(super) ctx: &'a InstanceCtx,
    /// The graph this pass renders: the RGD's current one, or an earlier
    /// revision when a rollout rolls a cluster back.
    pub(super) graph: Arc<CompiledGraph>,
    pub(super) target: ClusterTarget,
    /// Why no identity may act for this instance, if so: then nothing is
    /// read or written on its behalf.
    target_problem: Option<String>,
    pub(super) identity: InstanceIdentity,
    pub(super) display: String,
    /// The children this pass read or applied on members (see
    /// [`super::unchanged`]), shared by its per-member copies.
    pub(super) seen: Arc<std::sync::Mutex<Vec<super::unchanged::SeenChild>>>,
    /// Set when the trigger was answered without a pass.
    skipped: std::sync::atomic::AtomicBool,
}

impl<'a> Reconciler<'a> {
    fn new(obj: &'a LeanObject, ctx: &'a InstanceCtx) -> Self {
        let identity = InstanceIdentity {
            rgd_name: ctx.rgd_name.clone(),
            rgd_uid: ctx.rgd_uid.clone(),
            group: ctx.resource.group.clone(),
            version: ctx.resource.version.clone(),
            kind: ctx.resource.kind.clone(),
            name: obj.name_any(),
            namespace: if ctx.namespaced {
                obj.namespace()
            } else {
                None
            },
            uid: obj.metadata.uid.clone().unwrap_or_default(),
        };
        let display = match &identity.namespace {
            Some(ns) => format!("{ns}/{}", identity.name),
            None => identity.name.clone(),
        };
        let (target, target_problem) = match ctx.target_for(identity.namespace.as_deref()) {
            Ok(target) => (target, None),
            Err(problem) => (ctx.hub_target(), Some(problem)),
        };
        Self {
            obj,
            ctx,
            graph: ctx.graph.clone(),
            target,
            target_problem,
            identity,
            display,
            seen: Arc::default(),
            skipped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A selector for this instance's children on the target: on a member,
    /// only the copies made for that member (two Clusters may name the same
    /// API server).
    pub(super) fn children_selector(&self) -> String {
        super::desired::children_selector(
            &self.identity,
            self.target.member.then_some(self.target.name.as_str()),
        )
    }

    /// The instance as `obj` (its spec at another revision), rendered
    /// with `graph`: a rollback.
    pub(super) fn with_graph<'b>(
        &self,
        obj: &'b LeanObject,
        graph: Arc<CompiledGraph>,
    ) -> Reconciler<'b>
    where
        'a: 'b,
    {
        Reconciler {
            obj,
            ctx: self.ctx,
            graph,
            target: self.target.clone(),
            target_problem: self.target_problem.clone(),
            identity: self.identity.clone(),
            display: self.display.clone(),
            seen: self.seen.clone(),
            skipped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The same instance, working on another cluster.
    pub(super) fn for_target(&self, target: ClusterTarget) -> Reconciler<'a> {
        Reconciler {
            obj: self.obj,
            ctx: self.ctx,
            graph: self.graph.clone(),
            target,
            target_problem: self.target_problem.clone(),
            identity: self.identity.clone(),
            display: self.display.clone(),
            seen: self.seen.clone(),
            skipped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn kube_err(
        &self,
        action: &str,
    ) -> impl FnOnce(kube::Error) -> InstanceError + use<'_> {
        let instance = self.display.clone();
        let action = action.to_owned();
        move |source| InstanceError::Kube {
            instance,
            action,
            source,
        }
    }

    /// Notes a trigger answered without a pass.
    fn skip(&self) {
        self.skipped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.ctx
            .env
            .metrics
            .pass_skipped(&self.ctx.controller_name());
    }

    async fn run(&self) -> Result<Action, InstanceError> {
        let api = self.ctx.instance_api(self.identity.namespace.as_deref());
        if let Some(problem) = &self.target_problem {
            let generation = self.obj.metadata.generation;
            let conds = vec![
                conditions::Condition::new(
                    "InstanceManaged",
                    false,
                    "NoServiceAccount",
                    problem.clone(),
                    generation,
                ),
                conditions::Condition::new(
                    "Ready",
                    false,
                    "NoServiceAccount",
                    problem.clone(),
                    generation,
                ),
            ];
            let mut status = self
                .obj
                .json
                .get("status")
                .cloned()
                .unwrap_or_else(|| json!({}));
            status["state"] = json!(state::ERROR);
            status["conditions"] = json!(conds);
            self.write_status(status).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
        if self.obj.metadata.deletion_timestamp.is_some() {
            // A record would outlive the instance.
            self.ctx.records.forget(&self.identity.uid);
            self.ctx.reports.forget(&self.identity.uid);
            return self.delete(&api).await;
        }
        if self
            .obj
            .annotations()
            .get(RECONCILE_ANNOTATION)
            .is_some_and(|v| {
                v.eq_ignore_ascii_case("suspended") || v.eq_ignore_ascii_case("disabled")
            })
        {
            tracing::debug!(instance = %self.display, "reconciliation suspended");
            return Ok(Action::await_change());
        }
        let uid = self.identity.uid.as_str();
        let members_version = self.ctx.env.members.version();
        if self.ctx.skips_unchanged
            && let Some(due) = self.ctx.records.unchanged(
                uid,
                self.obj
                    .metadata
                    .resource_version
                    .as_deref()
                    .unwrap_or_default(),
                members_version,
                &self.ctx.env.drift,
            )
        {
            self.skip();
            return Ok(Action::requeue(due));
        }
        // The one sweep of children the graph dropped (once per controller
        // run) comes before any pass, answered from the status or whole.
        self.sweep_retired_once().await;
        // Without a record that still holds (the hub just started, or the
        // members changed), the status may vouch for the inputs. A resync
        // (the record is due) is a whole pass.
        if self.ctx.skips_unchanged
            && !self.ctx.records.due(uid)
            && let Some(due) = self.restored(members_version).await
        {
            self.skip();
            return Ok(Action::requeue(due));
        }
        // A pass that fails part way has no record: the next one is whole.
        self.ctx.records.forget(uid);
        let patched = self.ensure_finalizer_and_labels(&api).await?;
        if self.ctx.graph.is_placed() {
            let version = patched.or_else(|| self.obj.metadata.resource_version.clone());
            return self.run_placed(version, members_version).await;
        }

        let instance = self.obj.json.clone();
        let mut eval = EvalContext::new(instance)
            .for_graph(&self.graph)
            .with_cluster(self.target.cel_value())
            .with_now(std::time::SystemTime::now())
            .with_budget(kro_core::expr::meter::Budget::new(self.ctx.env.eval_budget));
        let mut states: Vec<ResourceState> = Vec::new();
        for node in self.ctx.graph.resources() {
            let id = node.id().to_owned();
            let phase = self.reconcile_resource(node, &mut eval, &states).await;
            states.push(ResourceState { id, phase });
        }
        let generation = self.obj.metadata.generation;
        let watch_gaps = self
            .ctx
            .watch_gaps
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        let (state_name, conds) = state::summarize(&states, &watch_gaps, generation);
        let fields = match self
            .evaluate(&mut eval, |graph, eval| {
                graph.status(eval).map_err(|e| e.to_string())
            })
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::info!(instance = %self.display, error = %e, "status fields not computed");
                json!({})
            }
        };
        let ready_now = conds.iter().find(|c| c.type_ == "Ready");
        let status = state::status_object(fields, &state_name, &conds);
        if let Reported::Held(wait) = self.report(status, &state_name, ready_now, true).await? {
            return Ok(Action::requeue(wait));
        }
        Ok(match state_name.as_str() {
            state::ACTIVE => Action::requeue(self.ctx.resync_of(&self.identity.uid)),
            state::ERROR => Action::requeue(Duration::from_secs(10)),
            _ => Action::requeue(Duration::from_secs(3)),
        })
    }

    /// Why `node`'s rendered objects may not be touched for this instance
    /// (see [`super::desired::foreign_namespace`]). Service accounts limit
    /// what the hub does on the hub, by impersonation; on a member the hub
    /// acts with the member's own credentials, so there the instance's
    /// namespace is the limit.
    fn foreign_namespace(
        &self,
        node: &kro_core::ResourceNode,
        rendered: &[Value],
    ) -> Option<String> {
        super::desired::foreign_namespace(
            node,
            rendered,
            self.identity.namespace.as_deref(),
            self.ctx.instance_chosen_namespaces.contains(node.id()),
            self.ctx.env.trust_instance_namespaces
                || (!self.ctx.service_accounts.is_empty() && !self.target.member),
        )
    }

    /// Runs `f` over the graph and `eval` in the hub's evaluation pool, off
    /// the async workers (see [`crate::eval_pool`]). The context moves to
    /// the pool thread and back; if the evaluation never returns (a panic),
    /// the context starts over empty and the error is reported like any
    /// evaluation error.
    ///
    /// A graph whose every expression is cheap whatever its input (see
    /// [`CompiledGraph::is_quick`]) is evaluated in place: handing a
    /// microsecond's work to another thread cost more than the work (two
    /// thread wake-ups and the context moved twice, a dozen times a pass).
    pub(super) async fn evaluate<T: Send + 'static>(
        &self,
        eval: &mut EvalContext,
        f: impl FnOnce(&CompiledGraph, &EvalContext) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        if self.graph.is_quick() {
            let graph = &*self.graph;
            let ctx = &*eval;
            return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(graph, ctx)))
                .unwrap_or_else(|_| Err("evaluation did not complete: it panicked".to_owned()));
        }
        let graph = self.graph.clone();
        let ctx = std::mem::take(eval);
        let done = self
            .ctx
            .env
            .eval
            .run(move || {
                let out = f(&graph, &ctx);
                (ctx, out)
            })
            .await;
        match done {
            Ok((ctx, out)) => {
                *eval = ctx;
                out
            }
            Err(aborted) => Err(aborted.to_string()),
        }
    }

    /// Reports a pass's outcome: writes `status` unless it only reports
    /// progress and may wait (`holdable`, see [`super::report`]), then
    /// publishes the Event the change of its Ready condition (`ready_now`)
    /// calls for.
    pub(super) async fn report(
        &self,
        status: Value,
        state_name: &str,
        ready_now: Option<&conditions::Condition>,
        holdable: bool,
    ) -> Result<Reported, InstanceError> {
        let uid = self.identity.uid.as_str();
        let current = self.obj.json.get("status");
        if holdable
            && state_name == state::IN_PROGRESS
            && current != Some(&crate::status::merged(current, status.clone()))
            && let Verdict::Hold(wait) = self.ctx.reports.progress(uid, Instant::now())
        {
            return Ok(Reported::Held(wait));
        }
        let ready_before = conditions::read(current)
            .into_iter()
            .find(|c| c.type_ == "Ready");
        let failed_before =
            current.and_then(|s| s.get("state")).and_then(Value::as_str) == Some(state::ERROR);
        let written = self.write_status(status).await?;
        self.ctx.reports.written(uid);
        if let Some(now) = ready_now {
            self.publish_transition(ready_before.as_ref(), failed_before, now, state_name)
                .await;
        }
        Ok(Reported::Written(written))
    }

    /// One Event per change of the Ready condition that needs attention
    /// (see [`super::report`]): a Warning naming the failing resource, or
    /// Normal when an instance that failed (`failed_before`, its status
    /// said so, or the hub saw it fail) is ready again. Failing to publish
    /// never fails the reconcile.
    async fn publish_transition(
        &self,
        before: Option<&conditions::Condition>,
        failed_before: bool,
        now: &conditions::Condition,
        state_name: &str,
    ) {
        let changed = before.is_none_or(|b| b.status != now.status || b.message != now.message);
        if !changed || state_name == state::IN_PROGRESS {
            return;
        }
        let uid = self.identity.uid.as_str();
        let (type_, reason) = if now.is_true() {
            let recovered = self.ctx.reports.recovered(uid);
            if !recovered && !failed_before {
                return;
            }
            (EventType::Normal, "Ready")
        } else {
            self.ctx.reports.failed(uid);
            (EventType::Warning, now.reason.as_str())
        };
        // Events are capped below conditions: an Event note is at most 1 KiB.
        let note = conditions::cap_event_note(&now.message);
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(if note.is_empty() {
                "every resource is ready".to_owned()
            } else {
                note
            }),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        let reference = self.obj.object_ref(&self.ctx.resource);
        if let Err(error) = self.ctx.env.recorder.publish(&event, &reference).await {
            tracing::debug!(instance = %self.display, %error, "event not published");
        }
    }

    /// Adds kro's finalizer and labels the instance as upstream: owned, and
    /// reconciled by this RGD. The RGD-name label is only added when absent:
    /// when the instance is itself a child of another RGD, that RGD's value
    /// stays, so the two controllers never overwrite each other. A new
    /// instance gets both in one patch, and the pass goes on: the finalizer
    /// is stored before any child is written either way. Returns the
    /// instance's new resourceVersion when it wrote.
    async fn ensure_finalizer_and_labels(
        &self,
        api: &Api<LeanObject>,
    ) -> Result<Option<String>, InstanceError> {
        let current = self.obj.labels();
        let mut want: BTreeMap<&str, String> = BTreeMap::new();
        want.insert(labels::OWNED, "true".to_owned());
        want.insert(
            labels::RECONCILED_BY_RGD,
            labels::label_value(&self.ctx.rgd_name),
        );
        if !current.contains_key(labels::RGD_NAME) {
            want.insert(labels::RGD_NAME, labels::label_value(&self.ctx.rgd_name));
        }
        want.retain(|k, v| current.get(*k) != Some(v));
        let has_finalizer = self.obj.finalizers().iter().any(|f| f == FINALIZER);
        if has_finalizer && want.is_empty() {
            return Ok(None);
        }
        let version = |o: LeanObject| Some(o.metadata.resource_version.unwrap_or_default());
        if has_finalizer {
            return api
                .patch(
                    &self.identity.name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": want}})),
                )
                .await
                .map(version)
                .map_err(self.kube_err("labelling instance"));
        }
        let conditional = |obj: &LeanObject| {
            serde_json::from_value::<json_patch::Patch>(finalizer_and_labels_patch(
                obj, FINALIZER, &want,
            ))
            .map_err(kube::Error::SerdeError)
        };
        let patch = conditional(self.obj).map_err(self.kube_err("adding finalizer"))?;
        let params = PatchParams::default();
        match api
            .patch(&self.identity.name, &params, &Patch::<()>::Json(patch))
            .await
        {
            Ok(o) => Ok(version(o)),
            // The patch's resourceVersion test failed: the copy this pass
            // started from is older than the server's (in a burst of new
            // instances the watch lags). Read the instance and try once
            // more, rather than waiting out the error backoff.
            Err(kube::Error::Api(s)) if s.code == 422 => {
                let fresh = api
                    .get(&self.identity.name)
                    .await
                    .map_err(self.kube_err("reading instance"))?;
                if fresh.finalizers().iter().any(|f| f == FINALIZER) {
                    return Ok(version(fresh));
                }
                let patch = conditional(&fresh).map_err(self.kube_err("adding finalizer"))?;
                api.patch(&self.identity.name, &params, &Patch::<()>::Json(patch))
                    .await
                    .map(version)
                    .map_err(self.kube_err("adding finalizer"))
            }
            Err(e) => Err(self.kube_err("adding finalizer")(e)),
        }
    }

    pub(super) async fn reconcile_resource(
        &self,
        node: &kro_core::ResourceNode,
        eval: &mut EvalContext,
        done: &[ResourceState],
    ) -> Phase {
        let id = node.id();
        // A skipped dependency skips its dependents; an unready one blocks them.
        let mut blocked = Vec::new();
        for dep in node.dependencies() {
            match done.iter().find(|s| &s.id == dep).map(|s| &s.phase) {
                Some(Phase::Ready) => {}
                Some(Phase::Skipped) => {
                    eval.exclude(id);
                    self.prune(node).await;
                    return Phase::Skipped;
                }
                _ => blocked.push(dep.clone()),
            }
        }
        if !blocked.is_empty() {
            return Phase::Waiting(blocked);
        }
        let id_owned = id.to_owned();
        match self
            .evaluate(eval, move |graph, eval| {
                graph.include(&id_owned, eval).map_err(|e| e.to_string())
            })
            .await
        {
            Ok(Inclusion::Included) => {}
            Ok(Inclusion::Excluded(_)) => {
                eval.exclude(id);
                self.prune(node).await;
                return Phase::Skipped;
            }
            Ok(Inclusion::Pending(deps)) => return Phase::Waiting(deps),
            Err(e) => return Phase::Failed(e.to_string()),
        }
        let id_owned = id.to_owned();
        let rendered = match self
            .evaluate(eval, move |graph, eval| {
                // Only the message crosses back: the error type is large.
                graph
                    .render_resource(&id_owned, eval)
                    .map_err(|e| e.to_string())
            })
            .await
        {
            Ok(RenderOutcome::Rendered(objs)) => objs,
            Ok(RenderOutcome::Pending(deps)) => return Phase::Waiting(deps),
            Err(e) => return Phase::Failed(e.to_string()),
        };
        if let Some(message) = self.foreign_namespace(node, &rendered) {
            return Phase::Failed(message);
        }
        if node.is_external() {
            for reference in &rendered {
                self.record_external(reference);
            }
        }
        if node.is_external()
            && let Some(reference) = rendered.first()
            && reference.pointer("/metadata/selector").is_some()
        {
            // A selector reference is a collection: every matching object.
            match self.list_external(reference).await {
                Ok(items) => eval.observe(id, Value::Array(items)),
                Err(message) => return Phase::Failed(message),
            }
            let id_owned = id.to_owned();
            return match self
                .evaluate(eval, move |graph, eval| {
                    graph.ready(&id_owned, eval).map_err(|e| e.to_string())
                })
                .await
            {
                Ok(Readiness::Ready) => Phase::Ready,
                Ok(Readiness::NotReady(expr)) => Phase::NotReady(expr),
                Ok(Readiness::Pending) => Phase::Waiting(node.dependencies().to_vec()),
                Err(e) => Phase::Failed(e.to_string()),
            };
        }
        let mut observed = Vec::with_capacity(rendered.len());
        for (index, desired) in rendered.into_iter().enumerate() {
            let what = describe(&desired);
            let result = if node.is_external() {
                self.read_external(&desired).await
            } else {
                self.sync_child(node, desired, index).await
            };
            match result {
                Ok(Some(obj)) => observed.push(obj),
                Ok(None) => return Phase::ExternalMissing(what),
                Err(message) => return Phase::Failed(message),
            }
        }
        if node.is_collection() {
            // Items that left the collection's list are deleted.
            let current: std::collections::HashSet<(Option<String>, String)> = observed
                .iter()
                .map(|o| {
                    (
                        o.pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        o.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect();
            let keep = |m: &kube::api::ObjectMeta| {
                current.contains(&(m.namespace.clone(), m.name.clone().unwrap_or_default()))
            };
            if let Err(error) = self.delete_children_of_except(node, keep).await {
                return Phase::Failed(format!("deleting items that left the collection: {error}"));
            }
            eval.observe(
                id,
                Value::Array(observed.iter().map(|o| (**o).clone()).collect()),
            );
        } else if let Some(obj) = observed.into_iter().next() {
            eval.observe_shared(id, obj);
        }
        let id_owned = id.to_owned();
        match self
            .evaluate(eval, move |graph, eval| {
                graph.ready(&id_owned, eval).map_err(|e| e.to_string())
            })
            .await
        {
            Ok(Readiness::Ready) => Phase::Ready,
            Ok(Readiness::NotReady(expr)) => Phase::NotReady(expr),
            Ok(Readiness::Pending) => Phase::Waiting(node.dependencies().to_vec()),
            Err(e) => Phase::Failed(e.to_string()),
        }
    }

    /// Where `obj` lives on the target: an API handle scoped to its
    /// namespace, its name, and its kind's resource (with whether it is
    /// namespaced).
    async fn resolve(&self, obj: &Value) -> Result<Resolved, String> {
        let gvk = children::gvk_of(obj).ok_or("rendered object has no apiVersion/kind")?;
        let (ar, caps) = self
            .target
            .resolve(&gvk)
            .await
            .map_err(|e| not_served(&self.target.name, &gvk, &e))?;
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or("rendered object has no metadata.name")?
            .to_owned();
        let namespace = super::desired::target_namespace(obj, self.identity.namespace.as_deref());
        Ok(Resolved {
            api: children::api_for(&self.target.client, &ar, &caps, Some(&namespace)),
            name,
            namespaced: caps.scope == kube::discovery::Scope::Namespaced,
            ar,
        })
    }

    fn record_external(&self, reference: &Value) {
        let Some(gvk) = children::gvk_of(reference) else {
            return;
        };
        let selector = reference.pointer("/metadata/selector").is_some();
        let namespace = reference
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                if selector {
                    None
                } else {
                    self.identity.namespace.clone()
                }
            });
        let name = if selector {
            None
        } else {
            reference
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut instance = ObjectRef::new_with(&self.identity.name, self.ctx.resource.clone());
        if let Some(ns) = &self.identity.namespace {
            instance = instance.within(ns);
        }
        self.ctx.externals.record(
            super::externals::ExternalKey {
                kind: kind_key(&gvk),
                namespace,
                name,
            },
            instance,
        );
    }

    /// Lists the objects a selector reference matches: in its namespace, or
    /// in every namespace when it names none, as upstream.
    async fn list_external(&self, reference: &Value) -> Result<Vec<Value>, String> {
        let gvk = children::gvk_of(reference).ok_or("externalRef has no apiVersion/kind")?;
        let (ar, caps) = self
            .target
            .resolve(&gvk)
            .await
            .map_err(|e| not_served(&self.target.name, &gvk, &e))?;
        let selector = reference
            .pointer("/metadata/selector")
            .map(children::label_selector_string)
            .transpose()?
            .unwrap_or_default();
        let namespace = reference
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty());
        let api = match namespace {
            Some(ns) => children::api_for(&self.target.client, &ar, &caps, Some(ns)),
            None => Api::all_with(self.target.client.clone(), &ar),
        };
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_message(&e))?;
        Ok(list.items.into_iter().map(LeanObject::into_json).collect())
    }

    async fn read_external(&self, reference: &Value) -> Result<Option<Arc<Value>>, String> {
        let Resolved { api, name, .. } = self.resolve(reference).await?;
        match api.get_opt(&name).await {
            Ok(Some(obj)) => Ok(Some(Arc::new(obj.into_json()))),
            Ok(None) => Ok(None),
            Err(e) => Err(api_message(&e)),
        }
    }

    async fn sync_child(
        &self,
        node: &kro_core::ResourceNode,
        desired: Value,
        index: usize,
    ) -> Result<Option<Arc<Value>>, String> {
        let Resolved {
            api,
            name,
            ar,
            namespaced,
        } = self.resolve(&desired).await?;
        let at = super::desired::Placement {
            collection_index: node.is_collection().then_some(index),
            member: self.target.member.then_some(self.target.name.as_str()),
            namespace: api.namespace(),
        };
        let desired = super::desired::labelled(desired, &self.identity, node.id(), at)?;
        // On members, the watches answer: the drift store holds the hub's
        // children, the name index the other objects of the kind (no GET
        // per child, not even before creating one).
        let member_kind = self.target.member.then(|| {
            let ns = namespaced
                .then(|| api.namespace().map(str::to_owned))
                .flatten();
            (ar, ns)
        });
        let ours = labels::label_value(&self.identity.uid);
        let drift = &self.ctx.env.drift;
        let member = self.target.name.as_str();
        let found = match &member_kind {
            Some((ar, ns)) => {
                drift
                    .lookup(member, ar, ns.as_deref(), &name, STORE_SYNC_WAIT)
                    .await
            }
            None => None,
        };
        let live = match found {
            // The store keeps each child with its apiVersion and kind; one of
            // another instance is refused below.
            Some(Lookup::Child(child)) => Some(child),
            Some(Lookup::Free) => None,
            Some(Lookup::Other { instance }) if instance.as_deref() == Some(ours.as_str()) => {
                return Err(format!(
                    "{} already exists as this instance's copy for another Cluster: two Clusters \
                     name the same API server (remove one of them)",
                    describe(&desired)
                ));
            }
            Some(Lookup::Other { instance }) => {
                return Err(takeover_refused(&desired, instance.as_deref()));
            }
            None => api
                .get_opt(&name)
                .await
                .map_err(|e| api_message(&e))?
                .map(|o| Arc::new(o.into_json())),
        };
        if let Some(live) = &live {
            let owner = live
                .pointer("/metadata/labels")
                .and_then(|l| l.get(labels::INSTANCE_ID))
                .and_then(Value::as_str);
            if owner != Some(ours.as_str()) {
                return Err(takeover_refused(&desired, owner));
            }
            if children::is_subset(&desired, live) {
                self.saw(member_kind.as_ref(), &name, live);
                return Ok(Some(live.clone()));
            }
        }
        let applied = children::apply(&api, &name, &desired)
            .await
            .map_err(|e| api_message(&e))?;
        let applied = Arc::new(applied.into_json());
        if let Some((ar, ns)) = &member_kind {
            drift.applied(member, ar, ns.as_deref(), &name, &applied);
        }
        self.saw(member_kind.as_ref(), &name, &applied);
        Ok(Some(applied))
    }

    /// Notes a child of a member as this pass read it (see
    /// [`super::unchanged`]).
    fn saw(&self, member_kind: Option<&(ApiResource, Option<String>)>, name: &str, object: &Value) {
        if let (true, Some((ar, ns)), Ok(mut seen)) =
            (self.ctx.skips_unchanged, member_kind, self.seen.lock())
        {
            seen.push(super::unchanged::SeenChild::of(
                &self.target.name,
                ar,
                ns.as_deref(),
                name,
                object,
            ));
        }
    }

    /// Deletes children whose resource id is no longer in the graph (the RGD
    /// dropped or renamed it), once per controller run. With the hub's own
    /// identity one sweep covers every instance of the RGD: a list per kind
    /// per instance would cost a hub starting on thousands of instances
    /// thousands of cluster-wide lists. An instance acting as a
    /// ServiceAccount is swept alone, with that account's rights.
    async fn sweep_retired_once(&self) {
        let whole_rgd = self.ctx.service_accounts.is_empty();
        let key = if whole_rgd {
            SWEPT_EVERY_INSTANCE
        } else {
            self.identity.uid.as_str()
        };
        // Claimed before the sweep: passes that run meanwhile skip it, as
        // the sweep under way covers their children too.
        let claimed = self
            .ctx
            .pruned
            .lock()
            .map(|mut set| set.insert(key.to_owned()))
            .unwrap_or(false);
        if !claimed {
            return;
        }
        let ids: std::collections::HashSet<String> = self
            .ctx
            .graph
            .resources()
            .map(|n| labels::label_value(n.id()))
            .collect();
        let selector = if whole_rgd {
            labels::rgd_children_selector(&self.ctx.rgd_name)
        } else {
            self.children_selector()
        };
        if let Err(error) = self
            .delete_children_matching(&selector, |node| !ids.contains(node))
            .await
        {
            tracing::warn!(instance = %self.display, %error, "sweeping retired resources failed; will retry");
            if let Ok(mut set) = self.ctx.pruned.lock() {
                set.remove(key);
            }
        }
    }

    /// Deletes this instance's children, of every kind the RGD ever used,
    /// whose node-id label satisfies `doomed`. Returns how many still exist.
    pub(super) async fn delete_instance_children(
        &self,
        doomed: impl Fn(&str) -> bool,
    ) -> Result<usize, String> {
        self.delete_children_matching(&self.children_selector(), doomed)
            .await
    }

    /// Deletes the objects `selector` selects, of every kind the RGD ever
    /// used, whose node-id label satisfies `doomed`. Returns how many still
    /// exist.
    async fn delete_children_matching(
        &self,
        selector: &str,
        doomed: impl Fn(&str) -> bool,
    ) -> Result<usize, String> {
        let mut remaining = 0;
        for gvk in &self.ctx.known_kinds {
            let (ar, _) = match self.target.resolve(gvk).await {
                Ok(found) => found,
                // A kind nobody serves has no objects left to delete; any
                // other failure (a 503, a timeout) is not "nothing left".
                Err(e) if not_served_error(&e) => continue,
                Err(e) => return Err(not_served(&self.target.name, gvk, &e)),
            };
            let api = Api::<DynamicObject>::all_with(self.target.client.clone(), &ar);
            let params = ListParams::default().labels(selector);
            let existing = match (api.list_metadata(&params).await, &self.identity.namespace) {
                (Ok(list), _) => list,
                // An identity bound to the instance's namespace (an
                // impersonated ServiceAccount with a Role) may not list
                // across namespaces; it can only have written there.
                (Err(kube::Error::Api(s)), Some(ns)) if s.code == 403 => {
                    Api::<DynamicObject>::namespaced_with(self.target.client.clone(), ns, &ar)
                        .list_metadata(&params)
                        .await
                        .map_err(|e| api_message(&e))?
                }
                (Err(e), _) => return Err(api_message(&e)),
            };
            for child in existing.items {
                let node = child
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::NODE_ID))
                    .cloned()
                    .unwrap_or_default();
                if !doomed(&node) {
                    continue;
                }
                remaining += 1;
                if child.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let child_api = match child.metadata.namespace.as_deref() {
                    Some(ns) => {
                        Api::<DynamicObject>::namespaced_with(self.target.client.clone(), ns, &ar)
                    }
                    None => api.clone(),
                };
                tracing::info!(instance = %self.display, resource = %node, child = %child.name_any(), "deleting child of a resource no longer in the graph");
                match child_api
                    .delete(&child.name_any(), &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => remaining -= 1,
                    Err(e) => return Err(api_message(&e)),
                }
            }
        }
        Ok(remaining)
    }

    /// Deletes every child of `node` (includeWhen turned false or a skipped
    /// dependency). Errors are logged and retried by the next reconcile.
    async fn prune(&self, node: &kro_core::ResourceNode) {
        if node.is_external() {
            return;
        }
        if let Err(error) = self.delete_children_of(node).await {
            tracing::warn!(instance = %self.display, resource = node.id(), %error, "pruning failed");
        }
    }

    /// Deletes the children of `node`; returns how many still exist.
    pub(super) async fn delete_children_of(
        &self,
        node: &kro_core::ResourceNode,
    ) -> Result<usize, String> {
        self.delete_children_of_except(node, |_| false).await
    }

    /// Deletes the children of `node` that `keep` does not keep; returns
    /// how many of those still exist.
    async fn delete_children_of_except(
        &self,
        node: &kro_core::ResourceNode,
        keep: impl Fn(&kube::api::ObjectMeta) -> bool,
    ) -> Result<usize, String> {
        let Some(gvk) =
            children::gvk_of(&json!({"apiVersion": node.api_version(), "kind": node.kind()}))
        else {
            return Ok(0);
        };
        let (ar, _) = match self.target.resolve(&gvk).await {
            Ok(found) => found,
            // A kind nobody serves has no objects left to delete; any other
            // failure is not "nothing left".
            Err(e) if not_served_error(&e) => return Ok(0),
            Err(e) => return Err(not_served(&self.target.name, &gvk, &e)),
        };
        let api = Api::<DynamicObject>::all_with(self.target.client.clone(), &ar);
        let selector = format!(
            "{},{}={}",
            self.children_selector(),
            labels::NODE_ID,
            labels::label_value(node.id())
        );
        let existing = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_message(&e))?;
        let release = self.ctx.orphaned.contains(node.id());
        let mut remaining = 0;
        for child in existing.items {
            if keep(&child.metadata) {
                continue;
            }
            if release {
                let child_api = match child.metadata.namespace.as_deref() {
                    Some(ns) => {
                        Api::<DynamicObject>::namespaced_with(self.target.client.clone(), ns, &ar)
                    }
                    None => api.clone(),
                };
                children::release(&child_api, &child.metadata)
                    .await
                    .map_err(|e| api_message(&e))?;
                continue;
            }
            remaining += 1;
            if child.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let child_api = match child.metadata.namespace.as_deref() {
                Some(ns) => {
                    Api::<DynamicObject>::namespaced_with(self.target.client.clone(), ns, &ar)
                }
                None => api.clone(),
            };
            match child_api
                .delete(&child.name_any(), &DeleteParams::background())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => remaining -= 1,
                Err(e) => return Err(api_message(&e)),
            }
        }
        Ok(remaining)
    }

    async fn delete(&self, api: &Api<LeanObject>) -> Result<Action, InstanceError> {
        let has_finalizer = self.obj.finalizers().iter().any(|f| f == FINALIZER);
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        if self.ctx.graph.is_placed() {
            return self.delete_placed(api).await;
        }
        match self.delete_on_target().await {
            Removal::Done => {}
            Removal::Pending(message) => {
                self.write_deleting(&message).await?;
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            Removal::Failed(message) => {
                self.write_deleting(&message).await?;
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
        }
        finalizer::remove(api, self.obj, FINALIZER)
            .await
            .map_err(self.kube_err("removing finalizer"))?;
        Ok(Action::await_change())
    }

    /// One step of removing this instance's children from the target, in
    /// reverse dependency order, then any left from resources that left
    /// the graph.
    pub(super) async fn delete_on_target(&self) -> Removal {
        let order: Vec<&kro_core::ResourceNode> = self.ctx.graph.resources().collect();
        for node in order.iter().rev() {
            if node.is_external() {
                continue;
            }
            match self.delete_children_of(node).await {
                Ok(0) => {}
                Ok(n) => {
                    return Removal::Pending(format!(
                        "deleting resource {} ({n} object(s) left)",
                        node.id()
                    ));
                }
                Err(message) => {
                    return Removal::Failed(format!("deleting resource {}: {message}", node.id()));
                }
            }
        }
        match self.delete_instance_children(|_| true).await {
            Ok(0) => Removal::Done,
            Ok(n) => Removal::Pending(format!("deleting {n} leftover object(s)")),
            Err(message) => Removal::Failed(format!("deleting leftover objects: {message}")),
        }
    }

    pub(super) async fn write_deleting(&self, message: &str) -> Result<(), InstanceError> {
        let mut status = self
            .obj
            .json
            .get("status")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let generation = self.obj.metadata.generation;
        status["state"] = json!(state::DELETING);
        status["conditions"] = json!([conditions::Condition::new(
            "Ready", false, "Deleting", message, generation
        )]);
        self.write_status(status).await.map(|_| ())
    }

    /// Writes the instance's status unless it already is `desired`; the new
    /// resourceVersion when it wrote.
    pub(super) async fn write_status(
        &self,
        desired: Value,
    ) -> Result<Option<String>, InstanceError> {
        // The answer is read for its resourceVersion alone.
        let api: Api<WrittenVersion> = self.ctx.instance_api(self.identity.namespace.as_deref());
        crate::status::write(
            &api,
            &self.identity.name,
            self.obj.json.get("status"),
            desired,
        )
        .await
        .map_err(self.kube_err("writing status"))
    }
}

/// One JSON patch adding `finalizer` and the `labels` to `obj`, on the
/// condition that nobody changed it since it was read (so neither list is
/// overwritten with a stale copy).
fn finalizer_and_labels_patch(
    obj: &LeanObject,
    finalizer: &str,
    labels: &BTreeMap<&str, String>,
) -> Value {
    let mut ops = vec![json!({"op": "test", "path": "/metadata/resourceVersion",
        "value": obj.metadata.resource_version})];
    match obj.metadata.finalizers.as_deref() {
        Some(list) if !list.is_empty() => {
            ops.push(json!({"op": "add", "path": "/metadata/finalizers/-", "value": finalizer}));
        }
        _ => ops.push(json!({"op": "add", "path": "/metadata/finalizers", "value": [finalizer]})),
    }
    if !labels.is_empty() {
        match obj.metadata.labels.as_ref() {
            Some(_) => {
                for (k, v) in labels {
                    // JSON pointer escaping: `~` then `/`.
                    let key = k.replace('~', "~0").replace('/', "~1");
                    ops.push(
                        json!({"op": "add", "path": format!("/metadata/labels/{key}"), "value": v}),
                    );
                }
            }
            None => ops.push(json!({"op": "add", "path": "/metadata/labels", "value": labels})),
        }
    }
    Value::Array(ops)
}

/// `Kind namespace/name` of a rendered object or reference, for messages.
fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Whether discovery says the kind is not served (as opposed to failing).
pub(crate) fn not_served_error(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
        || matches!(error, kube::Error::Discovery(_))
}

/// Why a kind cannot be used on a cluster, in a user's words: an API
/// server answers discovery of an unknown group/version with a bare 404.
fn not_served(cluster: &str, gvk: &GroupVersionKind, error: &kube::Error) -> String {
    let kind = if gvk.group.is_empty() {
        format!("{}/{}", gvk.version, gvk.kind)
    } else {
        format!("{}/{} {}", gvk.group, gvk.version, gvk.kind)
    };
    match error {
        kube::Error::Api(s) if s.code == 404 => {
            format!("kind {kind} is not served by cluster {cluster} (is its CRD installed?)")
        }
        kube::Error::Discovery(_) => {
            format!("kind {kind} is not served by cluster {cluster} (is its CRD installed?)")
        }
        other => format!(
            "cannot discover kind {kind} on cluster {cluster}: {}",
            api_message(other)
        ),
    }
}

/// The API server's own words for a failed call: reason, code and message.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} ({}): {}", status.reason, status.code, status.message)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resyncs_are_spread_over_a_tenth_of_the_period_the_same_on_every_run() {
        let period = Duration::from_secs(600);
        let times: Vec<Duration> = (0..1000)
            .map(|i| spread(period, &format!("5f1c9a3e-0000-4000-8000-{i:012}")))
            .collect();
        assert!(
            times
                .iter()
                .all(|t| *t >= period && *t < period + period / 10)
        );
        // Over the whole tenth, not bunched: each of its ten 6 s slices is used.
        let mut slices: Vec<u64> = times.iter().map(|t| (*t - period).as_secs() / 6).collect();
        slices.sort_unstable();
        slices.dedup();
        assert_eq!(slices, (0..10).collect::<Vec<u64>>());
        assert_eq!(spread(period, "a"), spread(period, "a"));
        assert_eq!(
            spread(Duration::from_millis(5), "a"),
            Duration::from_millis(5)
        );
    }

    fn patched(obj: &Value, labels: &BTreeMap<&str, String>) -> Value {
        let dynamic: LeanObject = serde_json::from_value(obj.clone()).expect("object");
        let patch: json_patch::Patch = serde_json::from_value(finalizer_and_labels_patch(
            &dynamic,
            "kro.run/finalizer",
            labels,
        ))
        .expect("patch");
        let mut out = obj.clone();
        json_patch::patch(&mut out, &patch).expect("applies");
        out
    }

    #[test]
    fn one_patch_adds_the_finalizer_and_the_labels() {
        let want: BTreeMap<&str, String> = [
            ("kro.run/owned", "true".to_owned()),
            ("a~b/c", "x".to_owned()),
        ]
        .into();
        let bare = json!({"apiVersion": "kro.run/v1alpha1", "kind": "X",
            "metadata": {"name": "a", "resourceVersion": "7"}});
        let out = patched(&bare, &want);
        assert_eq!(out["metadata"]["finalizers"], json!(["kro.run/finalizer"]));
        assert_eq!(out["metadata"]["labels"]["a~b/c"], "x");
        let labelled = json!({"apiVersion": "kro.run/v1alpha1", "kind": "X",
            "metadata": {"name": "a", "resourceVersion": "7", "finalizers": ["other"],
                "labels": {"keep": "me", "kro.run/owned": "false"}}});
        let out = patched(&labelled, &want);
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["other", "kro.run/finalizer"])
        );
        assert_eq!(out["metadata"]["labels"]["keep"], "me");
        assert_eq!(out["metadata"]["labels"]["kro.run/owned"], "true");
        assert_eq!(out["metadata"]["labels"]["a~b/c"], "x");
    }

    #[test]
    fn the_patch_holds_only_on_the_version_it_was_made_from() {
        let obj = json!({"apiVersion": "kro.run/v1alpha1", "kind": "X",
            "metadata": {"name": "a", "resourceVersion": "7"}});
        let dynamic: LeanObject = serde_json::from_value(obj).expect("object");
        let patch: json_patch::Patch =
            serde_json::from_value(finalizer_and_labels_patch(&dynamic, "f", &BTreeMap::new()))
                .expect("patch");
        let mut newer = json!({"metadata": {"name": "a", "resourceVersion": "8"}});
        assert!(json_patch::patch(&mut newer, &patch).is_err());
    }
}

//! The RGD controller: checks each ResourceGraphDefinition with kro-core,
//! serves the generated CRD, and runs one instance controller per Active
//! RGD.
//!
//! Deleting an RGD never strands instances: the RGD keeps its finalizer, and
//! its instance controller keeps running, while instances of its kind exist,
//! and its status says which. Once the last instance (and so its children)
//! is gone, the instance controller stops and the finalizer is released. The
//! generated CRD is kept, like upstream kro, unless the hub runs with
//! `--delete-crds`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kro_core::rgd::{FINALIZER, ResourceGraphDefinition};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

use crate::conditions::Condition;
use crate::crd_compat;
use crate::finalizer;
use crate::instance::{Discovery, GraphVersion, InstanceControllers, InstanceEnv};
use crate::metrics::Metrics;
use crate::ownership;

/// The annotation that lets an RGD change its CRD incompatibly.
pub const ALLOW_BREAKING: &str = "kro.run/allow-breaking-changes";

/// How the hub runs.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Delete the generated CRD when its RGD is deleted (after its instances).
    pub delete_crds: bool,
    /// Period of the safety resync of converged instances.
    pub resync: Duration,
    /// CEL cost units one reconcile of one instance may spend, over all its
    /// expressions (see `kro_core::expr::meter`).
    pub instance_eval_budget: u64,
    /// Interval between probes of a reachable member (failing members are
    /// probed less often, backing off up to 10 intervals or 5 minutes).
    pub member_probe_interval: Duration,
    /// Accept RGDs whose resource namespaces are computed from the instance
    /// without `defaultServiceAccounts` (upstream kro's behaviour; unsafe
    /// where instance creators are not trusted with the hub's permissions).
    pub trust_instance_namespaces: bool,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            delete_crds: false,
            resync: Duration::from_secs(600),
            instance_eval_budget: kro_core::expr::meter::MAX_INSTANCE_COST,
            trust_instance_namespaces: false,
            member_probe_interval: Duration::from_secs(30),
        }
    }
}

/// Shared state of the hub's controllers.
pub struct HubContext {
    /// Client of the hub cluster.
    pub client: Client,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Options.
    pub options: HubOptions,
    /// Running instance controllers, one per Active RGD.
    pub instances: InstanceControllers,
    /// Shared API discovery cache.
    pub discovery: Arc<Discovery>,
    /// Publishes Kubernetes Events.
    pub recorder: kube::runtime::events::Recorder,
    /// Where CEL evaluations run.
    pub eval: crate::eval_pool::EvalPool,
    /// Clients acting as the ServiceAccounts RGDs name.
    pub identities: crate::identity::Identities,
    /// Member clusters.
    pub members: crate::members::Members,
    /// Watches of the children on members.
    pub drift: Arc<crate::members::drift::DriftWatches>,
    /// Schemas of the kinds RGDs use, as the hub cluster serves them.
    pub schemas: crate::schemas::SchemaCache,
}

impl std::fmt::Debug for HubContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubContext")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl HubContext {
    /// A context for the hub cluster behind `client`.
    pub fn new(
        client: Client,
        identities: crate::identity::Identities,
        metrics: Arc<Metrics>,
        options: HubOptions,
    ) -> Arc<Self> {
        let reporter = kube::runtime::events::Reporter {
            controller: crate::FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let instances = InstanceControllers::default();
        let drift = Arc::new(crate::members::drift::DriftWatches::new(instances.routes()));
        Arc::new(Self {
            drift,
            recorder: kube::runtime::events::Recorder::new(client.clone(), reporter),
            client,
            metrics,
            options,
            instances,
            discovery: Arc::new(Discovery::default()),
            eval: crate::eval_pool::EvalPool::default(),
            identities,
            members: crate::members::Members::default(),
            schemas: crate::schemas::SchemaCache::default(),
        })
    }

    /// How RGDs are compiled on this hub with no cluster schemas (to clean
    /// up after an RGD being deleted, which must not wait on its kinds).
    fn compile_options(&self) -> kro_core::CompileOptions {
        kro_core::CompileOptions {
            trust_instance_namespaces: self.options.trust_instance_namespaces,
            ..kro_core::CompileOptions::default()
        }
    }

    /// Compiles `rgd` in the evaluation pool: compilation is bounded, but can
    /// still take milliseconds that the async workers should not spend.
    async fn compile(
        &self,
        rgd: &ResourceGraphDefinition,
    ) -> Result<kro_core::CompiledGraph, String> {
        self.compile_with(rgd, self.compile_options()).await
    }

    /// [`Self::compile`] with explicit options.
    async fn compile_with(
        &self,
        rgd: &ResourceGraphDefinition,
        options: kro_core::CompileOptions,
    ) -> Result<kro_core::CompiledGraph, String> {
        let rgd = rgd.clone();
        self.eval
            .run(move || kro_core::compile_with(&rgd, &options).map_err(|e| e.to_string()))
            .await
            .map_err(|e| e.to_string())?
    }

    fn instance_env(&self) -> InstanceEnv {
        InstanceEnv {
            client: self.client.clone(),
            metrics: self.metrics.clone(),
            resync: self.options.resync,
            eval_budget: self.options.instance_eval_budget,
            trust_instance_namespaces: self.options.trust_instance_namespaces,
            discovery: self.discovery.clone(),
            recorder: self.recorder.clone(),
            eval: self.eval.clone(),
            identities: self.identities.clone(),
            members: self.members.clone(),
            drift: self.drift.clone(),
        }
    }
}

/// Errors of one RGD reconciliation. Graph errors are not here: they are a
/// normal outcome, reported on the RGD's status.
#[derive(Debug, thiserror::Error)]
pub enum RgdError {
    /// The API server failed a request.
    #[error("{action}: {source}")]
    Kube {
        /// What we were doing.
        action: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The schemas of the graph's kinds could not be read.
    #[error("reading resource schemas: {0}")]
    Schemas(#[from] crate::schemas::SchemaError),
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> RgdError {
    let action = action.into();
    move |source| RgdError::Kube { action, source }
}

/// The ApiResource of RGDs.
pub fn rgd_api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
        "resourcegraphdefinitions",
    )
}

/// Runs the RGD controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<HubContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ar = rgd_api_resource();
    let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
    Controller::new_with(api, watcher::Config::default(), ar)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(error) = res {
                tracing::debug!(%error, "rgd reconcile failed");
            }
        })
        .await;
    ctx.instances.stop_all().await;
}

fn error_policy(_obj: Arc<DynamicObject>, error: &RgdError, _ctx: Arc<HubContext>) -> Action {
    tracing::warn!(%error, "rgd reconcile error; retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<HubContext>) -> Result<Action, RgdError> {
    let start = Instant::now();
    let result = reconcile_inner(&obj, &ctx).await;
    ctx.metrics
        .reconciled("rgd", start.elapsed(), result.is_err());
    result
}

async fn reconcile_inner(obj: &DynamicObject, ctx: &HubContext) -> Result<Action, RgdError> {
    let name = obj.name_any();
    let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &rgd_api_resource());
    if obj.metadata.deletion_timestamp.is_some() {
        return finalize(obj, ctx, &api).await;
    }
    if finalizer::ensure(&api, obj, FINALIZER)
        .await
        .map_err(kube_err(format!("adding finalizer to RGD {name}")))?
    {
        // The patch triggers a new event with the finalizer present.
        return Ok(Action::await_change());
    }
    let generation = obj.metadata.generation;
    let rgd = match parse(obj) {
        Ok(rgd) => rgd,
        Err(message) => {
            let status = inactive_status(
                ctx.instances.serving(&name).await,
                generation,
                "InvalidResourceGraph",
                &message,
            );
            write_status(&api, obj, status).await?;
            return Ok(Action::await_change());
        }
    };
    // Every kind the graph applies to this cluster is type-checked against
    // the schema the cluster serves for it; a kind not served yet makes the
    // RGD wait. Kinds placed on members are for the members' resolution
    // (`schemas::member_kinds`).
    let mut resolved = ctx
        .schemas
        .resolve(&ctx.client, &crate::schemas::hub_kinds(&rgd))
        .await?;
    resolve_on_members(ctx, &rgd, &mut resolved).await?;
    if !resolved.missing.is_empty() {
        let message = resolved
            .missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        tracing::info!(rgd = %name, %message, "waiting for kinds");
        let status = inactive_status(
            ctx.instances.serving(&name).await,
            generation,
            "KindNotServed",
            &message,
        );
        write_status(&api, obj, status).await?;
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let options = resolved.compile_options(ctx.options.trust_instance_namespaces);
    let graph = match ctx.compile_with(&rgd, options).await {
        Ok(graph) => Arc::new(graph),
        Err(message) => {
            tracing::info!(rgd = %name, %message, "graph rejected");
            let status = inactive_status(
                ctx.instances.serving(&name).await,
                generation,
                "InvalidResourceGraph",
                &message,
            );
            write_status(&api, obj, status).await?;
            // A CRD's schema may change to fit the graph: its generation is
            // checked again on the next pass.
            return Ok(if resolved.uses_crds {
                Action::requeue(Duration::from_secs(30))
            } else {
                Action::await_change()
            });
        }
    };
    match crate::permissions::check(&ctx.client, &ctx.discovery, &rgd, &graph)
        .await
        .map_err(kube_err(format!(
            "checking the service accounts of RGD {name}"
        )))? {
        Ok(()) => {}
        Err(message) => {
            tracing::info!(rgd = %name, %message, "service account lacks permissions");
            let status = inactive_status(
                ctx.instances.serving(&name).await,
                generation,
                "ServiceAccountNotPermitted",
                &message,
            );
            write_status(&api, obj, status).await?;
            // Permissions granted later are noticed on the next pass (at
            // once when the RGD changes).
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
    }
    let mut conds = vec![Condition::new(
        "GraphAccepted",
        true,
        "Valid",
        "resource graph and schema are valid",
        generation,
    )];
    let crd: CustomResourceDefinition = match serde_json::from_value(graph.crd().clone()) {
        Ok(crd) => crd,
        Err(e) => {
            let message = format!("generated CRD is not a valid CustomResourceDefinition: {e}");
            let status = inactive_status(
                ctx.instances.serving(&name).await,
                generation,
                "InvalidCRD",
                &message,
            );
            write_status(&api, obj, status).await?;
            return Ok(Action::await_change());
        }
    };
    if let Err(problem) = ensure_crd(ctx, obj, &crd).await? {
        tracing::info!(rgd = %name, message = %problem.message, "kind not served");
        // The kind this RGD's controller serves now belongs to another
        // owner (its CRD was replaced): the controller stops, so it never
        // reconciles the new owner's instances.
        if problem.reason == "KindOwnedElsewhere"
            && ctx.instances.crd_of(&name).await.as_deref() == crd.metadata.name.as_deref()
        {
            ctx.instances.stop(&name).await;
        }
        conds.push(Condition::new(
            "KindReady",
            false,
            problem.reason,
            problem.message.clone(),
            generation,
        ));
        conds.push(Condition::new(
            "Ready",
            false,
            "KindNotReady",
            problem.message,
            generation,
        ));
        let serving = ctx.instances.serving(&name).await.map(|(r, _)| r);
        let status = rgd_status("Inactive", &graph, serving, conds);
        write_status(&api, obj, status).await?;
        return Ok(Action::await_change());
    }
    conds.push(Condition::new(
        "KindReady",
        true,
        "Established",
        format!(
            "CRD {} is established",
            crd.metadata.name.as_deref().unwrap_or_default()
        ),
        generation,
    ));
    let known_kinds = record_child_kinds(&api, obj, &graph).await?;
    let revision = crate::revisions::record(&ctx.client, obj, &rgd)
        .await
        .map_err(kube_err(format!(
            "recording the graph revision of RGD {name}"
        )))?;
    ctx.instances
        .ensure(
            &ctx.instance_env(),
            GraphVersion {
                rgd_name: name.clone(),
                rgd_uid: obj.metadata.uid.clone().unwrap_or_default(),
                generation,
                graph: graph.clone(),
                revision: revision.number,
                known_kinds,
                orphaned: orphaned_ids(&rgd),
                service_accounts: rgd.spec.default_service_accounts.clone(),
                instance_chosen_namespaces: kro_core::namespaces::instance_chosen(&rgd),
            },
        )
        .await;
    conds.push(Condition::new(
        "ControllerReady",
        true,
        "Running",
        "instance controller is running",
        generation,
    ));
    conds.push(Condition::new("Ready", true, "Ready", "", generation));
    write_status(
        &api,
        obj,
        rgd_status("Active", &graph, Some(revision.number), conds),
    )
    .await?;
    Ok(Action::requeue(ctx.options.resync))
}

/// The members a placement selects whatever the instance: its literal
/// `clusters` and a `clusterSelector` without expressions, over the ready
/// members. `None` when the placement depends on instances (then each
/// instance's pass reports a kind a member does not serve, naming it).
fn static_members(
    rgd: &ResourceGraphDefinition,
    members: &[crate::members::Member],
) -> Option<Vec<crate::members::Member>> {
    let placement = rgd.spec.placement.as_ref()?;
    let clusters = match &placement.clusters {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
        ),
        Some(_) => return None,
    };
    let cluster_selector = match &placement.cluster_selector {
        Some(sel) if sel.to_string().contains("${") => return None,
        other => other.clone(),
    };
    if placement.when.is_some() && clusters.is_none() && cluster_selector.is_none() {
        return None;
    }
    let resolved = kro_core::ResolvedPlacement {
        clusters,
        cluster_selector,
    };
    let ready: Vec<&crate::members::Member> = members
        .iter()
        .filter(|m| m.health.is_ready() && !m.deleting)
        .collect();
    let names = crate::placement::select(
        &resolved,
        ready.iter().map(|m| (m.name.as_str(), &m.labels)),
    )
    .ok()?;
    Some(
        ready
            .into_iter()
            .filter(|m| names.contains(&m.name))
            .cloned()
            .collect(),
    )
}

/// Adds the schemas of the kinds placed on members, as the members the
/// placement selects serve them, and the kinds one of them does not serve
/// (named with the member). Members that do not answer are left out.
async fn resolve_on_members(
    ctx: &HubContext,
    rgd: &ResourceGraphDefinition,
    resolved: &mut crate::schemas::Resolved,
) -> Result<(), RgdError> {
    let kinds = crate::schemas::member_kinds(rgd);
    if kinds.is_empty() {
        return Ok(());
    }
    let Some(members) = static_members(rgd, &ctx.members.snapshot()) else {
        return Ok(());
    };
    for member in members {
        let Some(client) = &member.client else {
            continue;
        };
        let found = match member
            .schemas
            .resolve_on(client, &kinds, crate::schemas::Target::Member(&member.name))
            .await
        {
            Ok(found) => found,
            // A member failing now is reported by the Cluster controller.
            Err(error) => {
                tracing::info!(cluster = %member.name, %error, "member schemas not read");
                continue;
            }
        };
        for (key, schema) in found.schemas {
            resolved.schemas.entry(key).or_insert(schema);
        }
        resolved.missing.extend(found.missing);
        resolved.uses_crds |= found.uses_crds;
    }
    Ok(())
}

pub(crate) fn parse(obj: &DynamicObject) -> Result<ResourceGraphDefinition, String> {
    let value = serde_json::to_value(obj).map_err(|e| e.to_string())?;
    let mut value = value;
    // The status is ours; an older hub's fields there must not block parsing.
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    serde_json::from_value(value)
        .map_err(|e| format!("ResourceGraphDefinition {}: {e}", obj.name_any()))
}

/// Why the generated CRD cannot be served.
#[derive(Debug)]
struct KindProblem {
    reason: &'static str,
    message: String,
}

fn claimant(rgd: &DynamicObject) -> ownership::Claimant<'_> {
    ownership::Claimant {
        name: rgd.metadata.name.as_deref().unwrap_or_default(),
        uid: rgd.metadata.uid.as_deref().unwrap_or_default(),
        adopt: rgd
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ownership::ADOPT_CRD))
            .map(String::as_str),
    }
}

/// Creates or updates the generated CRD, only when this RGD owns its kind.
/// `Ok(Err(problem))` reports a change the RGD is not allowed to make.
async fn ensure_crd(
    ctx: &HubContext,
    rgd: &DynamicObject,
    crd: &CustomResourceDefinition,
) -> Result<Result<(), KindProblem>, RgdError> {
    let api: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let crd_name = crd.metadata.name.clone().unwrap_or_default();
    let existing = api
        .get_opt(&crd_name)
        .await
        .map_err(kube_err(format!("reading CRD {crd_name}")))?;
    let claim = ownership::claim(&ctx.client, claimant(rgd), crd, existing.as_ref())
        .await
        .map_err(kube_err(format!("finding the owner of CRD {crd_name}")))?;
    let existing = match (claim, existing) {
        (ownership::Claim::Refused(message), _) => {
            return Ok(Err(KindProblem {
                reason: "KindOwnedElsewhere",
                message: format!(
                    "kind {} cannot be served by RGD {}: {message}",
                    crd.spec.names.kind,
                    rgd.name_any()
                ),
            }));
        }
        (ownership::Claim::Free, _) | (ownership::Claim::Owned, None) => {
            return match crate::install::create_crd(&ctx.client, crd, Duration::from_secs(30)).await
            {
                Ok(()) => Ok(Ok(())),
                // Created meanwhile (another RGD racing for the kind): the
                // retry judges the new owner.
                Err(crate::install::InstallError::Apply { source, name }) => Err(RgdError::Kube {
                    action: format!("creating CRD {name}"),
                    source,
                }),
                Err(other) => Ok(Err(KindProblem {
                    reason: "NotEstablished",
                    message: other.to_string(),
                })),
            };
        }
        (ownership::Claim::Owned, Some(existing)) => existing,
    };
    let allow = rgd
        .annotations()
        .get(ALLOW_BREAKING)
        .is_some_and(|v| v == "true");
    let breaking = crd_compat::breaking_changes(&existing, crd);
    if !breaking.is_empty() && !allow {
        return Ok(Err(KindProblem {
            reason: "BreakingChange",
            message: format!(
                "the change to CRD {crd_name} is incompatible with existing instances: {}; \
                 revert it or annotate the RGD with {ALLOW_BREAKING}: \"true\"",
                breaking.join("; ")
            ),
        }));
    }
    if crate::install::crd_is_current(&existing, crd) {
        return Ok(Ok(()));
    }
    // The owner was judged on this version of the CRD: the apply is refused
    // with a conflict if it changed meanwhile.
    let mut crd = crd.clone();
    crd.metadata.resource_version = existing.metadata.resource_version.clone();
    match crate::install::apply_crd(&ctx.client, &crd, Duration::from_secs(30)).await {
        Ok(()) => Ok(Ok(())),
        Err(crate::install::InstallError::Apply { source, name }) => Err(RgdError::Kube {
            action: format!("applying CRD {name}"),
            source,
        }),
        Err(other) => Ok(Err(KindProblem {
            reason: "NotEstablished",
            message: other.to_string(),
        })),
    }
}

/// Whether the CRD `crd_name` carries the uid `uid` as its owner.
async fn crd_owned_by(ctx: &HubContext, crd_name: &str, uid: &str) -> Result<bool, RgdError> {
    let api: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let Some(existing) = api
        .get_opt(crd_name)
        .await
        .map_err(kube_err(format!("reading CRD {crd_name}")))?
    else {
        return Ok(false);
    };
    Ok(existing
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(kro_core::crd::LABEL_RGD_ID))
        .is_some_and(|owner| *owner == kro_core::crd::label_value(uid)))
}

/// Whether this RGD owns the CRD of `graph`'s kind (so its deletion may
/// wait for, and clean up, that kind's instances).
async fn owns_kind(
    ctx: &HubContext,
    rgd: &DynamicObject,
    graph: &kro_core::CompiledGraph,
) -> Result<bool, RgdError> {
    let (_, _, crd_name) = crate::instance::instance_resource(graph);
    crd_owned_by(
        ctx,
        &crd_name,
        rgd.metadata.uid.as_deref().unwrap_or_default(),
    )
    .await
}

/// Ids of the resources whose objects outlive their instance.
pub(crate) fn orphaned_ids(rgd: &ResourceGraphDefinition) -> std::collections::HashSet<String> {
    rgd.spec
        .resources
        .iter()
        .filter(|r| r.deletion_policy == Some(kro_core::rgd::DeletionPolicy::Orphaned))
        .map(|r| r.id.clone())
        .collect()
}

/// Annotation on the RGD listing every kind its templates ever used.
pub const CHILD_KINDS: &str = "hub.kro.run/child-kinds";

fn gvk_string(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        format!("{}/{}", gvk.version, gvk.kind)
    } else {
        format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind)
    }
}

fn parse_gvk(s: &str) -> Option<GroupVersionKind> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [v, k] => Some(GroupVersionKind::gvk("", v, k)),
        [g, v, k] => Some(GroupVersionKind::gvk(g, v, k)),
        _ => None,
    }
}

/// The kinds recorded on an RGD (`hub.kro.run/child-kinds`), from its
/// annotations.
pub(crate) fn recorded_child_kinds(
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<GroupVersionKind> {
    annotations
        .get(CHILD_KINDS)
        .map(|v| v.split(',').filter_map(parse_gvk).collect())
        .unwrap_or_default()
}

/// The kinds recorded on the RGD plus those of the current graph.
pub(crate) fn known_kinds(
    obj: &DynamicObject,
    graph: &kro_core::CompiledGraph,
) -> Vec<GroupVersionKind> {
    let mut kinds = recorded_child_kinds(obj.annotations());
    for node in graph.resources().filter(|n| !n.is_external()) {
        let (group, version) = node
            .api_version()
            .split_once('/')
            .unwrap_or(("", node.api_version()));
        let gvk = GroupVersionKind::gvk(group, version, node.kind());
        if !kinds.contains(&gvk) {
            kinds.push(gvk);
        }
    }
    kinds
}

/// Records the graph's kinds on the RGD (once per new kind), so children of
/// a resource later removed from the RGD can still be found and deleted,
/// even after a hub restart.
async fn record_child_kinds(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    graph: &kro_core::CompiledGraph,
) -> Result<Vec<GroupVersionKind>, RgdError> {
    let kinds = known_kinds(obj, graph);
    let value: Vec<String> = kinds.iter().map(gvk_string).collect();
    let value = value.join(",");
    if obj.annotations().get(CHILD_KINDS) != Some(&value) {
        let name = obj.name_any();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {CHILD_KINDS: value}}})),
        )
        .await
        .map_err(kube_err(format!("recording child kinds on RGD {name}")))?;
    }
    Ok(kinds)
}

/// The status of an RGD whose current generation is refused. When an
/// earlier revision of it is still serving its instances, the status names
/// both: the refused generation in the message, the serving revision in
/// `revision`.
fn inactive_status(
    serving: Option<(i64, Option<i64>)>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
) -> Value {
    let message = match serving {
        Some((revision, served)) if served != generation => format!(
            "generation {} is refused: {message}; revision {revision} (generation {}) keeps \
             serving the instances",
            generation.unwrap_or_default(),
            served.unwrap_or_default()
        ),
        _ => message.to_owned(),
    };
    let conds = vec![
        Condition::new("GraphAccepted", false, reason, &message, generation),
        Condition::new("Ready", false, reason, &message, generation),
    ];
    let mut status = json!({"state": "Inactive", "conditions": conds});
    if let Some((revision, _)) = serving {
        status["revision"] = json!(revision);
    }
    status
}

fn rgd_status(
    state: &str,
    graph: &kro_core::CompiledGraph,
    revision: Option<i64>,
    conds: Vec<Condition>,
) -> Value {
    let resources: Vec<Value> = graph
        .resources()
        .map(|node| {
            let deps: Vec<Value> = node
                .dependencies()
                .iter()
                .map(|d| json!({"id": d}))
                .collect();
            if deps.is_empty() {
                json!({"id": node.id()})
            } else {
                json!({"id": node.id(), "dependencies": deps})
            }
        })
        .collect();
    let mut status = json!({
        "state": state,
        "topologicalOrder": graph.topological_order(),
        "conditions": conds,
        "resources": resources,
    });
    if let Some(revision) = revision {
        status["revision"] = json!(revision);
    }
    status
}

/// Writes an RGD's status through the hub's one status writer.
pub(crate) async fn write_status(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    desired: Value,
) -> Result<(), RgdError> {
    let name = obj.name_any();
    crate::status::write(api, &name, obj.data.get("status"), desired)
        .await
        .map_err(kube_err(format!("writing status of RGD {name}")))?;
    Ok(())
}

async fn finalize(
    obj: &DynamicObject,
    ctx: &HubContext,
    api: &Api<DynamicObject>,
) -> Result<Action, RgdError> {
    let name = obj.name_any();
    let generation = obj.metadata.generation;
    // After a hub restart nothing runs for this RGD yet: start its instance
    // controller so the remaining instances can still be cleaned up.
    let mut kind_api = ctx.instances.instance_api(&ctx.client, &name).await;
    if kind_api.is_none()
        && let Ok(rgd) = parse(obj)
        && let Ok(graph) = ctx.compile(&rgd).await
        // An RGD that never owned its kind (refused: another RGD's) must
        // not wait for, nor clean up, the owner's instances.
        && owns_kind(ctx, obj, &graph).await?
    {
        let graph = Arc::new(graph);
        let (resource, _, _) = crate::instance::instance_resource(&graph);
        let known_kinds = known_kinds(obj, &graph);
        ctx.instances
            .ensure(
                &ctx.instance_env(),
                GraphVersion {
                    rgd_name: name.clone(),
                    rgd_uid: obj.metadata.uid.clone().unwrap_or_default(),
                    generation,
                    graph,
                    // Deleting: no rollout runs any more.
                    revision: 0,
                    known_kinds,
                    orphaned: orphaned_ids(&rgd),
                    service_accounts: rgd.spec.default_service_accounts.clone(),
                    instance_chosen_namespaces: kro_core::namespaces::instance_chosen(&rgd),
                },
            )
            .await;
        kind_api = Some(Api::all_with(ctx.client.clone(), &resource));
    }
    if let Some(kind_api) = kind_api {
        let instances = kind_api.list_metadata(&ListParams::default()).await;
        let instances = match instances {
            Ok(list) => list.items,
            // The kind is gone (its CRD was deleted): no instance can remain.
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(source) => {
                return Err(RgdError::Kube {
                    action: format!("listing instances of RGD {name}"),
                    source,
                });
            }
        };
        if !instances.is_empty() {
            let names: Vec<String> = instances
                .iter()
                .take(5)
                .map(|i| match i.metadata.namespace.as_deref() {
                    Some(ns) => format!("{ns}/{}", i.name_any()),
                    None => i.name_any(),
                })
                .collect();
            let message = format!(
                "deletion waits for {} instance(s) to be deleted first: {}",
                instances.len(),
                names.join(", ")
            );
            let mut status = obj.data.get("status").cloned().unwrap_or_else(|| json!({}));
            status["state"] = json!("Inactive");
            status["conditions"] = json!([Condition::new(
                "Ready",
                false,
                "Deleting",
                message.clone(),
                generation
            ),]);
            write_status(api, obj, status).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
    }
    let crd_name = ctx.instances.stop(&name).await;
    if ctx.options.delete_crds
        && let Some(crd_name) = crd_name
        // Only a CRD this RGD owns: its kind may have passed to another RGD
        // since this one's controller started.
        && crd_owned_by(ctx, &crd_name, obj.metadata.uid.as_deref().unwrap_or_default()).await?
    {
        let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
        match crds.delete(&crd_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(RgdError::Kube {
                    action: format!("deleting CRD {crd_name}"),
                    source,
                });
            }
        }
    }
    crate::revisions::delete_all(&ctx.client, obj.metadata.uid.as_deref().unwrap_or_default())
        .await
        .map_err(kube_err(format!(
            "deleting the graph revisions of RGD {name}"
        )))?;
    finalizer::remove(api, obj, FINALIZER)
        .await
        .map_err(kube_err(format!("removing finalizer of RGD {name}")))?;
    Ok(Action::await_change())
}

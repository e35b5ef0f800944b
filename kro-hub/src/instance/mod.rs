//! Instance controllers: one per Active RGD, each watching the RGD's kind
//! and the children it created, and reconciling instances into resources.

pub mod aggregate;
pub(crate) mod children;
pub(crate) mod desired;
mod externals;
mod fanout;
pub(crate) mod reconcile;
mod report;
pub mod rollout;
mod state;
mod unchanged;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use kro_core::CompiledGraph;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

pub use children::{Discovery, is_subset};
pub use reconcile::{InstanceCtx, InstanceError};

use crate::labels;
use crate::lean_object::LeanObject;
use crate::metrics::Metrics;

/// What an instance controller needs from the hub.
#[derive(Clone)]
pub struct InstanceEnv {
    /// Client of the cluster the instances live on.
    pub client: Client,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Resync period of converged instances.
    pub resync: Duration,
    /// CEL cost units one reconcile of one instance may spend.
    pub eval_budget: u64,
    /// Let instances choose any namespace (upstream kro's behaviour).
    pub trust_instance_namespaces: bool,
    /// Shared API discovery cache.
    pub discovery: Arc<Discovery>,
    /// Publishes Kubernetes Events about instances.
    pub recorder: kube::runtime::events::Recorder,
    /// Where CEL evaluations run.
    pub eval: crate::eval_pool::EvalPool,
    /// Clients acting as the ServiceAccounts RGDs name.
    pub identities: crate::identity::Identities,
    /// Member clusters.
    pub members: crate::members::Members,
    /// Watches of the children on members.
    pub drift: Arc<crate::members::drift::DriftWatches>,
}

impl std::fmt::Debug for InstanceEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceEnv")
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Running {
    /// Child kinds, when the RGD places instances on members.
    member_kinds: Vec<GroupVersionKind>,
    generation: Option<i64>,
    revision: i64,
    crd_name: String,
    resource: ApiResource,
    namespaced: bool,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// One accepted version of an RGD, as its instance controller runs it.
#[derive(Debug)]
pub struct GraphVersion {
    /// RGD name.
    pub rgd_name: String,
    /// RGD uid.
    pub rgd_uid: String,
    /// RGD generation the graph was compiled from.
    pub generation: Option<i64>,
    /// The compiled graph.
    pub graph: Arc<CompiledGraph>,
    /// Its number in the RGD's history (see [`crate::revisions`]).
    pub revision: i64,
    /// Every kind the RGD's templates ever used.
    pub known_kinds: Vec<GroupVersionKind>,
    /// Ids of resources with `deletionPolicy: Orphaned`.
    pub orphaned: std::collections::HashSet<String>,
    /// `spec.defaultServiceAccounts`: whom to act as, per namespace.
    pub service_accounts: std::collections::BTreeMap<String, String>,
    /// Ids of resources whose namespace the instance chooses.
    pub instance_chosen_namespaces: std::collections::BTreeSet<String>,
}

/// The running instance controllers, by RGD name.
#[derive(Debug, Default)]
pub struct InstanceControllers {
    running: Mutex<HashMap<String, Running>>,
    /// Where member watches send the changes of each RGD's children.
    routes: crate::members::drift::Routes,
}

/// The group/version/kind of a resource of the graph.
pub fn gvk_of_node(node: &kro_core::ResourceNode) -> Option<GroupVersionKind> {
    children::gvk_of(&serde_json::json!({"apiVersion": node.api_version(), "kind": node.kind()}))
}

/// The ApiResource of a graph's generated kind, and whether it is namespaced.
pub fn instance_resource(graph: &CompiledGraph) -> (ApiResource, bool, String) {
    let crd = graph.crd();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let version = spec["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["storage"] == true).or(vs.first()))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default();
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let crd_name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
        namespaced,
        crd_name,
    )
}

impl InstanceControllers {
    /// Starts the controller of `version.rgd_name`, or restarts it when
    /// the RGD's generation changed since it was started.
    pub async fn ensure(&self, env: &InstanceEnv, version: GraphVersion) {
        let GraphVersion {
            rgd_name,
            rgd_uid,
            generation,
            graph,
            revision,
            known_kinds,
            orphaned,
            service_accounts,
            instance_chosen_namespaces,
        } = version;
        let rgd_name = rgd_name.as_str();
        let mut running = self.running.lock().await;
        if let Some(current) = running.get(rgd_name)
            && current.generation == generation
        {
            return;
        }
        if let Some(old) = running.remove(rgd_name) {
            stop_one(old).await;
        }
        let (resource, namespaced, crd_name) = instance_resource(&graph);
        let member_kinds = if graph.is_placed() {
            known_kinds.clone()
        } else {
            Vec::new()
        };
        let (tx, rx) = oneshot::channel();
        let (trigger, triggered) = tokio::sync::mpsc::unbounded_channel();
        self.routes.set(
            rgd_name,
            crate::members::drift::Route {
                trigger,
                resource: resource.clone(),
                namespaced,
            },
        );
        let skips_unchanged = unchanged::eligible(&graph);
        let ctx = Arc::new(InstanceCtx {
            env: env.clone(),
            rgd_name: rgd_name.to_owned(),
            rgd_uid,
            rgd_generation: generation,
            started: std::time::Instant::now(),
            graph,
            revision,
            old_graphs: std::sync::Mutex::new(std::collections::HashMap::new()),
            resource: resource.clone(),
            namespaced,
            known_kinds,
            orphaned,
            service_accounts,
            instance_chosen_namespaces,
            pruned: std::sync::Mutex::new(std::collections::HashSet::new()),
            externals: externals::ExternalIndex::default(),
            queue: reconcile::WorkQueue::default(),
            watch_gaps: std::sync::Mutex::new(Vec::new()),
            skips_unchanged,
            records: unchanged::Records::default(),
            reports: report::Reports::default(),
        });
        let task = tokio::spawn(run(ctx, rx, triggered));
        tracing::info!(rgd = rgd_name, kind = %resource.kind, "instance controller started");
        running.insert(
            rgd_name.to_owned(),
            Running {
                member_kinds,
                generation,
                revision,
                crd_name,
                resource,
                namespaced,
                shutdown: tx,
                task,
            },
        );
    }

    /// An API over all instances of `rgd_name`'s kind, when its controller runs.
    pub async fn instance_api(
        &self,
        client: &Client,
        rgd_name: &str,
    ) -> Option<Api<DynamicObject>> {
        let running = self.running.lock().await;
        running
            .get(rgd_name)
            .map(|r| Api::all_with(client.clone(), &r.resource))
    }

    /// The graph revision (and RGD generation) the running controller of
    /// `rgd_name` serves.
    pub async fn serving(&self, rgd_name: &str) -> Option<(i64, Option<i64>)> {
        self.running
            .lock()
            .await
            .get(rgd_name)
            .map(|r| (r.revision, r.generation))
    }

    /// The CRD the running controller of `rgd_name` serves.
    pub async fn crd_of(&self, rgd_name: &str) -> Option<String> {
        self.running
            .lock()
            .await
            .get(rgd_name)
            .map(|r| r.crd_name.clone())
    }

    /// Every kind the running RGDs with a placement apply to members.
    pub async fn member_child_kinds(&self) -> Vec<GroupVersionKind> {
        let running = self.running.lock().await;
        let mut out: Vec<GroupVersionKind> = Vec::new();
        for gvk in running.values().flat_map(|r| r.member_kinds.iter()) {
            if !out.contains(gvk) {
                out.push(gvk.clone());
            }
        }
        out
    }

    /// Whether the RGD's kind is namespaced, when its controller runs.
    pub async fn is_namespaced(&self, rgd_name: &str) -> Option<bool> {
        self.running
            .lock()
            .await
            .get(rgd_name)
            .map(|r| r.namespaced)
    }

    /// The routes member watches send children's changes by.
    pub fn routes(&self) -> crate::members::drift::Routes {
        self.routes.clone()
    }

    /// Stops the controller of `rgd_name`; returns its CRD name.
    pub async fn stop(&self, rgd_name: &str) -> Option<String> {
        self.routes.remove(rgd_name);
        let removed = self.running.lock().await.remove(rgd_name);
        match removed {
            Some(r) => {
                let crd = r.crd_name.clone();
                stop_one(r).await;
                Some(crd)
            }
            None => None,
        }
    }

    /// Stops every controller.
    pub async fn stop_all(&self) {
        let all: Vec<Running> = self.running.lock().await.drain().map(|(_, r)| r).collect();
        for r in all {
            stop_one(r).await;
        }
    }
}

async fn stop_one(r: Running) {
    let _ = r.shutdown.send(());
    if tokio::time::timeout(Duration::from_secs(10), r.task)
        .await
        .is_err()
    {
        tracing::warn!(kind = %r.resource.kind, "instance controller did not stop in time");
    }
}

/// A stream that yields each time the watched value changes, and ends
/// when its sender is gone.
fn changes_of(
    rx: tokio::sync::watch::Receiver<u64>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

/// Instances of one RGD reconciled at the same time. Unbounded, a burst of
/// a thousand new instances ran a thousand passes at once: each held its
/// rendered objects in memory while waiting for a member's permits, and
/// many ran into the reconcile timeout and started over.
const INSTANCE_CONCURRENCY: u16 = 64;

/// How long an instance's triggers are gathered before its pass runs. A
/// new placed instance sends a burst of them (its own writes coming back,
/// each child created on each member, each member's workload turning
/// ready): a short wait folds the burst into one pass instead of one pass
/// each, for a delay nobody watching an instance notices. Every trigger
/// waits it out, a hub's start included: 250 ms folded a little more
/// (2.0 passes per new instance against 2.1) but cost a restarted hub a
/// quarter of a second.
const TRIGGER_DEBOUNCE: Duration = Duration::from_millis(100);

async fn run(
    ctx: Arc<InstanceCtx>,
    shutdown: oneshot::Receiver<()>,
    triggered: tokio::sync::mpsc::UnboundedReceiver<ObjectRef<LeanObject>>,
) {
    let api = Api::<LeanObject>::all_with(ctx.env.client.clone(), &ctx.resource);
    // The controller's store of instances as `LeanObject`s: decoded in one
    // pass without their managedFields (the hub never reads them, and they
    // hold an entry per field for every manager that wrote the instance),
    // and already the JSON a pass evaluates.
    let writer = kube::runtime::reflector::store::Writer::new(ctx.resource.clone());
    let reader = writer.as_reader();
    let instances = kube::runtime::reflector(writer, watcher(api, watcher::Config::default()))
        .applied_objects();
    let mut controller = Controller::for_stream_with(instances, reader, ctx.resource.clone())
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(INSTANCE_CONCURRENCY)
                .debounce(TRIGGER_DEBOUNCE),
        );
    // Drift: any change to a child re-queues its instance.
    let selector = labels::rgd_children_selector(&ctx.rgd_name);
    let mut gaps: Vec<String> = Vec::new();
    for gvk in ctx.child_kinds(true) {
        match ctx.env.discovery.resolve(&ctx.env.client, &gvk).await {
            Ok((child_ar, _)) => {
                // Only the labels are read: a metadata-only watch.
                let child_api = Api::<PartialObjectMeta<DynamicObject>>::all_with(
                    ctx.env.client.clone(),
                    &child_ar,
                );
                let instance_ar = ctx.resource.clone();
                let namespaced = ctx.namespaced;
                controller = controller.watches_with(
                    child_api,
                    child_ar,
                    watcher::Config::default().labels(&selector),
                    move |child: PartialObjectMeta<DynamicObject>| {
                        let labels = child.metadata.labels.as_ref()?;
                        let name = labels.get(labels::INSTANCE_NAME)?;
                        let mut r = ObjectRef::new_with(name, instance_ar.clone());
                        if namespaced {
                            r = r.within(labels.get(labels::INSTANCE_NAMESPACE)?);
                        }
                        Some(r)
                    },
                );
            }
            Err(error) => {
                tracing::info!(rgd = %ctx.rgd_name, %error, "child kind not served yet; drift on it is caught by resync");
                gaps.push(format!("{}/{} {}", gvk.group, gvk.version, gvk.kind));
            }
        }
    }
    // External objects: a change re-queues the instances that read it.
    for gvk in ctx.external_kinds() {
        match ctx.env.discovery.resolve(&ctx.env.client, &gvk).await {
            Ok((ext_ar, _)) => {
                let ext_api = Api::<PartialObjectMeta<DynamicObject>>::all_with(
                    ctx.env.client.clone(),
                    &ext_ar,
                );
                let index_ctx = ctx.clone();
                let kind_key = reconcile::kind_key(&gvk);
                controller = controller.watches_with(
                    ext_api,
                    ext_ar,
                    watcher::Config::default(),
                    move |obj: PartialObjectMeta<DynamicObject>| {
                        index_ctx.externals.readers_of(
                            &kind_key,
                            obj.metadata.namespace.as_deref(),
                            obj.metadata.name.as_deref().unwrap_or_default(),
                        )
                    },
                );
            }
            Err(error) => {
                tracing::info!(rgd = %ctx.rgd_name, %error, "external kind not served yet; changes to it are caught by resync");
                gaps.push(format!("{}/{} {}", gvk.group, gvk.version, gvk.kind));
            }
        }
    }
    if let Ok(mut g) = ctx.watch_gaps.lock() {
        *g = gaps;
    }
    // Placed instances follow the members: one added, relabelled, paused,
    // gone or back re-queues every instance of the RGD.
    // A static placement says which members the passes will read before
    // any instance is listed.
    let warming = ctx
        .graph
        .static_placement()
        .map(|p| tokio::spawn(fanout::warm_member_watches(ctx.clone(), p)));
    if ctx.graph.is_placed() {
        let changes = changes_of(ctx.env.members.subscribe());
        controller = controller.reconcile_all_on(changes);
        // Children changed on members (see `members::drift`).
        let drifted = futures::stream::unfold(triggered, |mut rx| async move {
            let r = rx.recv().await?;
            Some((r, rx))
        });
        controller = controller.reconcile_on(drifted);
    }
    controller
        .graceful_shutdown_on(async move {
            let _ = shutdown.await;
        })
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(|_| async {})
        .await;
    if let Some(warming) = warming {
        warming.abort();
    }
    tracing::info!(rgd = %ctx.rgd_name, "instance controller stopped");
}

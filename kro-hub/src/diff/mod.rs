//! `kro-hub diff`: what the hub would do for one instance, on the hub and on
//! each member its placement selects, without doing it.
//!
//! The plan takes the hub's own code paths: placement by
//! [`crate::placement::select_for_instance`] over the members' live
//! labels, objects rendered by kro-core and labelled by
//! [`crate::instance::desired`] (the same labels, applied-hash and
//! namespace rules), and the hub's convergence check. Each object that
//! would change is sent to its cluster as a server-side apply with
//! `dryRun=All`, under the hub's field manager, so admission and
//! defaulting are the server's; the answer's fields owned by the hub are
//! compared with the live object's. Nothing is ever written: every write
//! made here carries `dryRun`.
//!
//! A resource that reads another one not observed yet (it does not exist
//! yet) is rendered as the hub's first pass would: from the live children
//! that exist, and reported as depending on what is missing.

pub mod fields;
pub mod report;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::join_all;
use kro_core::rgd::{OnDeselect, ResourceTarget};
use kro_core::{CompiledGraph, EvalContext, Inclusion, RenderOutcome, ResourceNode};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

pub use report::{
    Action, Change, ClusterPlan, EXIT_CHANGED, EXIT_ERROR, EXIT_UNCHANGED, Outcome, Plan,
};

use crate::instance::children::{self, Discovery};
use crate::instance::desired;
use crate::instance::reconcile::{HUB_CLUSTER, api_message};
use crate::labels::{self, InstanceIdentity};
use crate::members::cluster;

/// Field manager of the dry-run write of an instance file on the hub.
const DIFF_MANAGER: &str = "kro-hub-diff";

/// How long one request to a cluster may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no plan could be made at all.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The instance file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The instance file, or the KIND/NAME given, is not usable.
    #[error("{0}")]
    Invalid(String),
    /// No RGD on the hub serves the kind.
    #[error("no ResourceGraphDefinition on the hub serves {0}")]
    UnknownKind(String),
    /// The instance does not exist.
    #[error("{0} not found on the hub")]
    NotFound(String),
    /// The hub's API server refused the instance (a dry-run write).
    #[error("the hub rejects {what}: {message}")]
    Rejected {
        /// What was sent.
        what: String,
        /// The server's words.
        message: String,
    },
    /// The placement cannot be evaluated: the hub would move nothing.
    #[error("spec.placement cannot be evaluated for this instance: {0}")]
    Placement(String),
    /// No client for the hub.
    #[error("connecting to the hub cluster: {0}")]
    Hub(String),
    /// A request to the hub failed.
    #[error("{action}: {source}")]
    Kube {
        /// What we were doing.
        action: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> DiffError {
    let action = action.into();
    move |source| DiffError::Kube { action, source }
}

/// Which instance to plan for.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A YAML file holding the instance as it would be applied.
    File(PathBuf),
    /// The live instance, as `KIND/NAME` (kind, singular, plural or short
    /// name of an RGD's kind, alone or followed by `.group`).
    Live(String),
}

/// How to plan.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The instance's namespace (`-n`); default: the file's, else `default`.
    pub namespace: Option<String>,
    /// How long one request to one cluster may take; a member slower than
    /// that is reported unreachable.
    pub timeout: Duration,
    /// The hub runs with `--allow-instance-namespaces`: objects an instance
    /// puts in another namespace are planned instead of refused.
    pub trust_instance_namespaces: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            namespace: None,
            timeout: DEFAULT_TIMEOUT,
            trust_instance_namespaces: false,
        }
    }
}

/// `kro-hub diff`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The live instance, as KIND/NAME: the kind, singular, plural or short
    /// name of an RGD's kind, optionally followed by .GROUP (`web/shop`,
    /// `webs.kro.run/shop`).
    #[arg(value_name = "KIND/NAME", required_unless_present = "instance")]
    pub object: Option<String>,
    /// An instance YAML file (an edited copy of a live instance, or a new
    /// one): what would change if it were applied.
    #[arg(long, short = 'f', value_name = "FILE", conflicts_with = "object")]
    pub instance: Option<PathBuf>,
    /// The instance's namespace; default: the file's, else `default`.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Seconds one request to one cluster may take; a member that does not
    /// answer in time is reported unreachable.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
    /// Plan as a hub run with --allow-instance-namespaces does: objects an
    /// instance puts in other namespaces are applied there, not refused.
    #[arg(long)]
    pub allow_instance_namespaces: bool,
    /// The hub's kubeconfig; default: KUBECONFIG, ~/.kube/config, in-cluster.
    #[arg(long = "hub-kubeconfig", env = "KRO_HUB_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The hub's kubeconfig context; default: the current context.
    #[arg(long = "hub-context")]
    pub context: Option<String>,
}

/// The help of `kro-hub diff`, under its one-line summary.
pub const LONG_ABOUT: &str = "\
Shows what the hub would change for an instance, on the hub and on each \
member cluster its placement selects, without changing anything: objects \
to create (+), change (~, with a unified diff of the fields the hub \
owns), delete (-), and those that depend on values not known yet. Every \
object is checked by its cluster with a server-side dry-run apply.

Exit status, as kubectl diff: 0 nothing would change; 1 something would \
change; 2 an error, or a member that could not be reached (its part of \
the plan is unknown, so no script should take the output as complete).";

impl DiffArgs {
    /// Parses the arguments that follow `kro-hub diff`, as the command does.
    pub fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: DiffArgs,
        }
        let argv =
            std::iter::once(OsString::from("kro-hub diff")).chain(args.into_iter().map(Into::into));
        <Cli as clap::Parser>::try_parse_from(argv).map(|c| c.args)
    }

    /// What to plan for.
    pub fn subject(&self) -> Result<Subject, DiffError> {
        match (&self.instance, &self.object) {
            (Some(file), None) => Ok(Subject::File(file.clone())),
            (None, Some(object)) => Ok(Subject::Live(object.clone())),
            _ => Err(DiffError::Invalid(
                "name the instance either as KIND/NAME or with --instance FILE".to_owned(),
            )),
        }
    }

    /// The options these arguments give.
    pub fn options(&self) -> DiffOptions {
        DiffOptions {
            namespace: self.namespace.clone(),
            timeout: Duration::from_secs(self.timeout.max(1)),
            trust_instance_namespaces: self.allow_instance_namespaces,
        }
    }
}

/// Runs `kro-hub diff` with these arguments against the hub they name.
pub async fn run(args: &DiffArgs) -> Result<Plan, DiffError> {
    let subject = args.subject()?;
    let client = crate::kubeconfig::ClusterSource {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    }
    .client()
    .await
    .map_err(|e| DiffError::Hub(e.to_string()))?;
    plan(&client, &subject, &args.options()).await
}

/// An RGD of the hub, compiled as the hub runs it.
struct Served {
    obj: DynamicObject,
    rgd: kro_core::ResourceGraphDefinition,
    graph: CompiledGraph,
    resource: ApiResource,
    namespaced: bool,
    /// Every name a user may give its kind by, lowercase.
    names: Vec<String>,
}

impl Served {
    fn answers_to(&self, kind: &str) -> bool {
        let kind = kind.to_ascii_lowercase();
        self.names.contains(&kind)
    }

    fn instance_api(&self, hub: &Client, namespace: &str) -> Api<DynamicObject> {
        if self.namespaced {
            Api::namespaced_with(hub.clone(), namespace, &self.resource)
        } else {
            Api::all_with(hub.clone(), &self.resource)
        }
    }
}

/// The RGDs on the hub that compile, with their kinds' names.
async fn served_kinds(hub: &Client) -> Result<Vec<Served>, DiffError> {
    let api =
        Api::<DynamicObject>::all_with(hub.clone(), &crate::rgd_controller::rgd_api_resource());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing ResourceGraphDefinitions on the hub"))?;
    // The hub accepted these already: the diff does not judge them again,
    // so the namespace rule that depends on how the hub runs is relaxed.
    let options = kro_core::CompileOptions {
        trust_instance_namespaces: true,
        ..kro_core::CompileOptions::default()
    };
    let mut out = Vec::new();
    for obj in list.items {
        let rgd = match crate::rgd_controller::parse(&obj) {
            Ok(rgd) => rgd,
            Err(error) => {
                tracing::debug!(%error, "RGD skipped");
                continue;
            }
        };
        let graph = match kro_core::compile_with(&rgd, &options) {
            Ok(graph) => graph,
            Err(error) => {
                tracing::debug!(rgd = %obj.name_any(), %error, "RGD skipped: it does not compile");
                continue;
            }
        };
        let (resource, namespaced, _) = crate::instance::instance_resource(&graph);
        let crd_names = &graph.crd()["spec"]["names"];
        let mut short: Vec<String> = [
            &crd_names["kind"],
            &crd_names["plural"],
            &crd_names["singular"],
        ]
        .into_iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
        short.extend(
            crd_names["shortNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        );
        let mut names: Vec<String> = short
            .iter()
            .flat_map(|n| [n.clone(), format!("{n}.{}", resource.group)])
            .map(|n| n.to_ascii_lowercase())
            .collect();
        names.dedup();
        out.push(Served {
            obj,
            rgd,
            graph,
            resource,
            namespaced,
            names,
        });
    }
    Ok(out)
}

/// The instance to plan for, as the hub would hold it, and the live one.
struct Subjected {
    served: Served,
    /// The instance as the hub's API server stores (or would store) it.
    instance: Value,
    /// The live instance, when it exists.
    live: Option<Value>,
}

fn read_file(path: &Path) -> Result<Value, DiffError> {
    let text = std::fs::read_to_string(path).map_err(|source| DiffError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let invalid = |m: String| DiffError::Invalid(format!("{}: {m}", path.display()));
    kro_core::parse_yaml_documents(&text)
        .map_err(|e| invalid(e.to_string()))?
        .into_iter()
        .find(|d| !d.is_null())
        .ok_or_else(|| invalid("the file holds no instance".to_owned()))
}

async fn subject(
    hub: &Client,
    subject: &Subject,
    options: &DiffOptions,
) -> Result<Subjected, DiffError> {
    let served = served_kinds(hub).await?;
    match subject {
        Subject::Live(object) => {
            let Some((kind, name)) = object
                .split_once('/')
                .filter(|(k, n)| !k.is_empty() && !n.is_empty() && !n.contains('/'))
            else {
                return Err(DiffError::Invalid(format!(
                    "{object:?}: name the instance as KIND/NAME, e.g. web/shop"
                )));
            };
            let served = served
                .into_iter()
                .find(|s| s.answers_to(kind))
                .ok_or_else(|| DiffError::UnknownKind(kind.to_owned()))?;
            let namespace = options.namespace.as_deref().unwrap_or("default");
            let what = display(
                &served.resource.kind,
                served.namespaced.then_some(namespace),
                name,
            );
            let live = served
                .instance_api(hub, namespace)
                .get_opt(name)
                .await
                .map_err(kube_err(format!("reading {what}")))?
                .ok_or(DiffError::NotFound(what))?;
            let live = to_value(live);
            Ok(Subjected {
                served,
                instance: live.clone(),
                live: Some(live),
            })
        }
        Subject::File(path) => {
            let mut doc = read_file(path)?;
            let invalid = |m: &str| DiffError::Invalid(format!("{}: {m}", path.display()));
            let api_version = doc
                .get("apiVersion")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("no apiVersion"))?
                .to_owned();
            let kind = doc
                .get("kind")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("no kind"))?
                .to_owned();
            let group = api_version
                .split_once('/')
                .map_or("", |(g, _)| g)
                .to_owned();
            let served = served
                .into_iter()
                .find(|s| s.resource.kind == kind && s.resource.group == group)
                .ok_or_else(|| DiffError::UnknownKind(format!("{kind} ({api_version})")))?;
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("no metadata.name"))?
                .to_owned();
            let in_file = doc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let (Some(file_ns), Some(flag_ns)) = (&in_file, &options.namespace)
                && file_ns != flag_ns
            {
                return Err(invalid(&format!(
                    "the namespace of the file ({file_ns}) does not match -n {flag_ns}"
                )));
            }
            let namespace = in_file
                .or_else(|| options.namespace.clone())
                .unwrap_or_else(|| "default".to_owned());
            if served.namespaced {
                doc["metadata"]["namespace"] = json!(namespace);
            }
            let api = served.instance_api(hub, &namespace);
            let what = display(&kind, served.namespaced.then_some(&namespace), &name);
            let live = api
                .get_opt(&name)
                .await
                .map_err(kube_err(format!("reading {what}")))?
                .map(to_value);
            let instance = dry_run_instance(&api, doc, live.as_ref(), path).await?;
            Ok(Subjected {
                served,
                instance,
                live,
            })
        }
    }
}

/// The file's instance as the hub's API server would store it (defaults,
/// validation), by a dry-run write: a replace of the live one, keeping
/// its identity, labels and annotations not in the file, or a create.
async fn dry_run_instance(
    api: &Api<DynamicObject>,
    mut doc: Value,
    live: Option<&Value>,
    path: &Path,
) -> Result<Value, DiffError> {
    let params = PostParams {
        dry_run: true,
        field_manager: Some(DIFF_MANAGER.to_owned()),
    };
    let rejected = |e: kube::Error| DiffError::Rejected {
        what: path.display().to_string(),
        message: api_message(&e),
    };
    if let Some(live) = live {
        for key in ["labels", "annotations"] {
            let mut merged = live
                .pointer(&format!("/metadata/{key}"))
                .cloned()
                .unwrap_or_else(|| json!({}));
            if let (Some(m), Some(file)) = (
                merged.as_object_mut(),
                doc.pointer(&format!("/metadata/{key}"))
                    .and_then(Value::as_object),
            ) {
                m.extend(file.clone());
            }
            doc["metadata"][key] = merged;
        }
        for key in ["resourceVersion", "uid", "finalizers"] {
            if let Some(v) = live.pointer(&format!("/metadata/{key}")) {
                doc["metadata"][key] = v.clone();
            }
        }
    }
    let obj: DynamicObject = serde_json::from_value(doc).map_err(|e| {
        DiffError::Invalid(format!("{}: not a Kubernetes object: {e}", path.display()))
    })?;
    let stored = match live {
        Some(_) => api.replace(&obj.name_any(), &params, &obj).await,
        None => api.create(&params, &obj).await,
    };
    stored.map(to_value).map_err(rejected)
}

fn to_value(obj: impl serde::Serialize) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// `Kind namespace/name`, or `Kind name` when not namespaced.
fn display(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// A member as registered on the hub, with a client built the hub's way.
struct Remote {
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    deleting: bool,
    paused: bool,
    /// The client, or why there is none (as the Cluster's status says).
    client: Result<Client, String>,
}

/// Every registered member, with a client from its kubeconfig Secret read
/// and vetted as the hub does (no exec plugins, no files).
async fn members(hub: &Client, timeout: Duration) -> Result<Vec<Remote>, DiffError> {
    let api = Api::<DynamicObject>::all_with(hub.clone(), &cluster::api_resource());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing Clusters on the hub"))?;
    let mut out = Vec::new();
    for obj in list.items {
        let spec = cluster::spec_of(&obj);
        let client = match &spec {
            Err(message) => Err(message.clone()),
            Ok(spec) => match crate::members::controller::read_kubeconfig(hub, spec).await {
                Err(error) => Err(error.to_string()),
                Ok(Err(health)) => Err(health.message()),
                Ok(Ok((text, at))) => {
                    match crate::members::kubeconfig::config_from(&text, &at).await {
                        Err(health) => Err(health.message()),
                        Ok(mut config) => {
                            config.connect_timeout = Some(timeout);
                            config.read_timeout = Some(timeout);
                            config.write_timeout = Some(timeout);
                            Client::try_from(config).map_err(|_| {
                                format!("{at}: no client can be built from the kubeconfig")
                            })
                        }
                    }
                }
            },
        };
        out.push(Remote {
            name: obj.name_any(),
            labels: obj.labels().clone(),
            annotations: obj.annotations().clone(),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            paused: spec.as_ref().is_ok_and(|s| s.paused),
            client,
        });
    }
    Ok(out)
}

/// Computes the plan for `subject` against the hub behind `hub` and its
/// members. Writes nothing: every write it sends is a dry run.
pub async fn plan(
    hub: &Client,
    subject: &Subject,
    options: &DiffOptions,
) -> Result<Plan, DiffError> {
    let Subjected {
        served,
        instance,
        live,
    } = self::subject(hub, subject, options).await?;
    let name = instance
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let namespace = served
        .namespaced
        .then(|| {
            instance
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .flatten();
    let identity = InstanceIdentity {
        rgd_name: served.obj.name_any(),
        rgd_uid: served.obj.metadata.uid.clone().unwrap_or_default(),
        group: served.resource.group.clone(),
        version: served.resource.version.clone(),
        kind: served.resource.kind.clone(),
        name: name.clone(),
        namespace: namespace.clone(),
        uid: instance
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    };
    let planner = Planner {
        graph: &served.graph,
        identity,
        known_kinds: crate::rgd_controller::known_kinds(&served.obj, &served.graph),
        orphaned: crate::rgd_controller::orphaned_ids(&served.rgd),
        exists: live.is_some(),
        instance_chosen: kro_core::namespaces::instance_chosen(&served.rgd),
        service_accounts: !served.rgd.spec.default_service_accounts.is_empty(),
        trust_instance_namespaces: options.trust_instance_namespaces,
    };
    let mut eval = EvalContext::new(instance)
        .for_graph(&served.graph)
        .with_now(std::time::SystemTime::now())
        .with_budget(kro_core::expr::meter::Budget::new(
            kro_core::expr::meter::MAX_INSTANCE_COST,
        ));
    let hub_target = Target {
        name: HUB_CLUSTER.to_owned(),
        member: None,
        client: hub.clone(),
        discovery: Discovery::default(),
        missing_namespace: None,
    };
    let mut hub_notes = Vec::new();
    if !served.rgd.spec.default_service_accounts.is_empty() {
        hub_notes.push(
            "the hub acts here as the ServiceAccount the RGD names; this diff asked with your \
             own credentials"
                .to_owned(),
        );
    }
    let mut clusters = Vec::new();
    let instance_display = display(&served.resource.kind, namespace.as_deref(), &name);

    if !served.graph.is_placed() {
        let empty = BTreeMap::new();
        let mut eval = eval.with_cluster(children::cluster_value(HUB_CLUSTER, &empty, &empty));
        let nodes: Vec<&ResourceNode> = served.graph.resources().collect();
        let mut states = BTreeMap::new();
        let outcome = planner
            .on_target(
                &hub_target,
                &mut eval,
                &nodes,
                &mut states,
                true,
                Vec::new(),
            )
            .await;
        clusters.push(ClusterPlan {
            cluster: HUB_CLUSTER.to_owned(),
            member: false,
            notes: hub_notes,
            outcome,
        });
        return Ok(Plan {
            instance: instance_display,
            clusters,
        });
    }

    let remotes = members(hub, options.timeout).await?;
    let candidates: Vec<crate::placement::Candidate> = remotes
        .iter()
        .filter(|r| !r.deleting)
        .map(|r| crate::placement::Candidate {
            name: r.name.clone(),
            labels: r.labels.clone(),
            annotations: r.annotations.clone(),
        })
        .collect();
    let selected = crate::placement::select_for_instance(&served.graph, &eval, &candidates)
        .map_err(DiffError::Placement)?;

    // Resources that stay on the hub, once, with no `cluster` bound, as the
    // hub's pass renders them; their observations feed every member.
    let hub_nodes: Vec<&ResourceNode> = served
        .graph
        .resources()
        .filter(|n| is_hub_node(n))
        .collect();
    let mut hub_states = BTreeMap::new();
    let hub_outcome = planner
        .on_target(
            &hub_target,
            &mut eval,
            &hub_nodes,
            &mut hub_states,
            true,
            Vec::new(),
        )
        .await;
    if !hub_nodes.is_empty() || hub_outcome != Outcome::Reached(Vec::new()) {
        clusters.push(ClusterPlan {
            cluster: HUB_CLUSTER.to_owned(),
            member: false,
            notes: hub_notes,
            outcome: hub_outcome,
        });
    }

    let member_nodes: Vec<&ResourceNode> = served
        .graph
        .resources()
        .filter(|n| !is_hub_node(n))
        .collect();
    let passes = remotes
        .iter()
        .filter(|r| selected.contains(&r.name))
        .map(|remote| {
            let cluster =
                children::cluster_value(&remote.name, &remote.labels, &remote.annotations);
            let eval = eval.clone().with_cluster(cluster);
            let states = hub_states.clone();
            planner.member_pass(remote, eval, &member_nodes, states)
        });
    clusters.extend(join_all(passes).await);

    // Members that held copies and left the placement.
    let previous =
        crate::instance::aggregate::read_entries(live.as_ref().and_then(|l| l.get("status")));
    let orphan = served.graph.on_deselect() == OnDeselect::Orphan;
    let departures = previous
        .iter()
        .filter(|e| !selected.contains(&e.name))
        .filter_map(|e| remotes.iter().find(|r| r.name == e.name))
        .map(|remote| planner.departure(remote, orphan && !remote.deleting));
    clusters.extend(join_all(departures).await);
    Ok(Plan {
        instance: instance_display,
        clusters,
    })
}

fn is_hub_node(node: &ResourceNode) -> bool {
    node.target() == Some(ResourceTarget::Hub)
}

/// A cluster the plan asks.
struct Target {
    name: String,
    /// The member's name; `None` for the hub.
    member: Option<String>,
    client: Client,
    discovery: Discovery,
    /// The instance's namespace when the member lacks it: the hub would
    /// create it first, so objects in it are not sent for a dry run (the
    /// server would only say the namespace is missing).
    missing_namespace: Option<String>,
}

/// A cluster stopped answering: the rest of its plan is unknown.
struct Unreachable(String);

/// How a resource of the graph stands after its part of the plan, for its
/// dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    /// Observed (live, or as the dry run answered).
    Known,
    /// Excluded: its dependents are excluded too.
    Skipped,
    /// Not observable yet (to be created, pending or failing).
    Unknown,
}

/// A child of the instance found on a cluster.
struct Listed {
    object: String,
    node: String,
    namespace: Option<String>,
    name: String,
}

struct Planner<'a> {
    graph: &'a CompiledGraph,
    identity: InstanceIdentity,
    known_kinds: Vec<GroupVersionKind>,
    orphaned: HashSet<String>,
    /// Whether the instance exists: only then may it have children.
    exists: bool,
    /// Resources whose namespace the instance chooses (see
    /// [`desired::foreign_namespace`]).
    instance_chosen: BTreeSet<String>,
    /// Whether the RGD names service accounts the hub acts as on the hub.
    service_accounts: bool,
    /// Whether the hub trusts instance creators with other namespaces.
    trust_instance_namespaces: bool,
}

impl Planner<'_> {
    fn unreachable(&self, target: &Target, error: &kube::Error) -> Unreachable {
        Unreachable(match target.member {
            Some(_) => crate::members::controller::unreachable_message(error),
            None => error.to_string(),
        })
    }

    /// An API error as the object's failure, anything else (no connection,
    /// a timeout) as the cluster being unreachable.
    fn classify(&self, target: &Target, error: &kube::Error) -> Result<String, Unreachable> {
        match error {
            kube::Error::Api(_) => Ok(api_message(error)),
            other => Err(self.unreachable(target, other)),
        }
    }

    /// One member: probed as the hub probes it, then planned.
    async fn member_pass(
        &self,
        remote: &Remote,
        mut eval: EvalContext,
        nodes: &[&ResourceNode],
        mut states: BTreeMap<String, NodeState>,
    ) -> ClusterPlan {
        let plan = |notes: Vec<String>, outcome| ClusterPlan {
            cluster: remote.name.clone(),
            member: true,
            notes,
            outcome,
        };
        let client = match &remote.client {
            Ok(client) => client.clone(),
            Err(why) => return plan(Vec::new(), Outcome::Unreachable(why.clone())),
        };
        let mut probe = crate::members::Member::new(&remote.name);
        probe.client = Some(client.clone());
        let health = crate::members::controller::probe(&probe).await;
        if !health.is_ready() {
            return plan(Vec::new(), Outcome::Unreachable(health.message()));
        }
        let mut notes = Vec::new();
        if remote.paused {
            notes.push(
                "paused (spec.paused): the hub applies nothing here until it is resumed; shown \
                 is what it would do then"
                    .to_owned(),
            );
        }
        let mut target = Target {
            name: remote.name.clone(),
            member: Some(remote.name.clone()),
            client,
            discovery: Discovery::default(),
            missing_namespace: None,
        };
        let mut changes = Vec::new();
        if let Some(ns) = &self.identity.namespace {
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> =
                Api::all(target.client.clone());
            match namespaces.get_opt(ns).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    target.missing_namespace = Some(ns.clone());
                    changes.push(Change {
                        action: Action::Create,
                        object: format!("Namespace {ns}"),
                        resource: "(the instance's namespace)".to_owned(),
                    });
                }
                Err(e) => match self.classify(&target, &e) {
                    Ok(message) => changes.push(Change {
                        action: Action::Failed(format!("reading namespace {ns}: {message}")),
                        object: format!("Namespace {ns}"),
                        resource: "(the instance's namespace)".to_owned(),
                    }),
                    Err(Unreachable(why)) => return plan(notes, Outcome::Unreachable(why)),
                },
            }
        }
        let outcome = self
            .on_target(&target, &mut eval, nodes, &mut states, false, changes)
            .await;
        plan(notes, outcome)
    }

    /// A member that left the placement: every copy there goes (or is
    /// released, with `onDeselect: Orphan`).
    async fn departure(&self, remote: &Remote, release: bool) -> ClusterPlan {
        let plan = |outcome| ClusterPlan {
            cluster: remote.name.clone(),
            member: true,
            notes: vec!["left the placement".to_owned()],
            outcome,
        };
        let client = match &remote.client {
            Ok(client) => client.clone(),
            Err(why) => return plan(Outcome::Unreachable(why.clone())),
        };
        let target = Target {
            name: remote.name.clone(),
            member: Some(remote.name.clone()),
            client,
            discovery: Discovery::default(),
            missing_namespace: None,
        };
        let mut changes = Vec::new();
        let selector = desired::children_selector(&self.identity, target.member.as_deref());
        for gvk in &self.known_kinds {
            match self.list(&target, gvk, &selector, &mut changes).await {
                Ok(found) => changes.extend(found.into_iter().map(|l| Change {
                    action: if release {
                        Action::Release(
                            "the cluster left the placement (onDeselect: Orphan)".to_owned(),
                        )
                    } else {
                        Action::Delete("the cluster left the placement".to_owned())
                    },
                    object: l.object,
                    resource: l.node,
                })),
                Err(Unreachable(why)) => return plan(Outcome::Unreachable(why)),
            }
        }
        plan(Outcome::Reached(changes))
    }

    /// The plan of `nodes` on one cluster; with `sweep`, also the children
    /// of resources no longer in the RGD (the hub sweeps its own cluster).
    async fn on_target(
        &self,
        target: &Target,
        eval: &mut EvalContext,
        nodes: &[&ResourceNode],
        states: &mut BTreeMap<String, NodeState>,
        sweep: bool,
        mut changes: Vec<Change>,
    ) -> Outcome {
        for node in nodes {
            match self.node(target, node, eval, states, &mut changes).await {
                Ok(state) => {
                    states.insert(node.id().to_owned(), state);
                }
                Err(Unreachable(why)) => return Outcome::Unreachable(why),
            }
        }
        if sweep && let Err(Unreachable(why)) = self.sweep_retired(target, &mut changes).await {
            return Outcome::Unreachable(why);
        }
        Outcome::Reached(changes)
    }

    /// One resource of the graph on one cluster, as the hub's pass walks it.
    async fn node(
        &self,
        target: &Target,
        node: &ResourceNode,
        eval: &mut EvalContext,
        states: &BTreeMap<String, NodeState>,
        changes: &mut Vec<Change>,
    ) -> Result<NodeState, Unreachable> {
        let id = node.id();
        let resource_change = |action| Change {
            action,
            object: String::new(),
            resource: id.to_owned(),
        };
        if node
            .dependencies()
            .iter()
            .any(|d| states.get(d) == Some(&NodeState::Skipped))
        {
            eval.exclude(id);
            self.prune(
                target,
                node,
                "a resource it depends on is excluded",
                changes,
            )
            .await?;
            return Ok(NodeState::Skipped);
        }
        match self.graph.include(id, eval) {
            Ok(Inclusion::Included) => {}
            Ok(Inclusion::Excluded(why)) => {
                eval.exclude(id);
                self.prune(target, node, &format!("excluded ({why})"), changes)
                    .await?;
                return Ok(NodeState::Skipped);
            }
            Ok(Inclusion::Pending(deps)) => {
                changes.push(resource_change(Action::Pending(deps)));
                return Ok(NodeState::Unknown);
            }
            Err(e) => {
                changes.push(resource_change(Action::Failed(e.to_string())));
                return Ok(NodeState::Unknown);
            }
        }
        let rendered = match self.graph.render_resource(id, eval) {
            Ok(RenderOutcome::Rendered(objs)) => objs,
            Ok(RenderOutcome::Pending(deps)) => {
                changes.push(resource_change(Action::Pending(deps)));
                return Ok(NodeState::Unknown);
            }
            Err(e) => {
                changes.push(resource_change(Action::Failed(e.to_string())));
                return Ok(NodeState::Unknown);
            }
        };
        // The hub refuses what an instance puts in another namespace, as
        // its pass would (service accounts allow it on the hub only).
        if let Some(why) = desired::foreign_namespace(
            node,
            &rendered,
            self.identity.namespace.as_deref(),
            self.instance_chosen.contains(id),
            self.trust_instance_namespaces || (self.service_accounts && target.member.is_none()),
        ) {
            changes.push(resource_change(Action::Failed(why)));
            return Ok(NodeState::Unknown);
        }
        if node.is_external()
            && let Some(reference) = rendered.first()
            && reference.pointer("/metadata/selector").is_some()
        {
            return match self.list_external(target, reference).await? {
                Ok(items) => {
                    eval.observe(id, Value::Array(items));
                    Ok(NodeState::Known)
                }
                Err(message) => {
                    changes.push(resource_change(Action::Failed(message)));
                    Ok(NodeState::Unknown)
                }
            };
        }
        let mut observed = Vec::with_capacity(rendered.len());
        let mut complete = true;
        let mut failed = false;
        let mut current = BTreeSet::new();
        for (index, desired) in rendered.into_iter().enumerate() {
            let before = changes.len();
            let found = if node.is_external() {
                self.external(target, node, &desired, changes).await?
            } else {
                if let Some(name) = desired.pointer("/metadata/name").and_then(Value::as_str) {
                    // Where the item lands if its kind is namespaced, and
                    // its key if it is not.
                    let ns =
                        desired::target_namespace(&desired, self.identity.namespace.as_deref());
                    current.insert((Some(ns), name.to_owned()));
                    current.insert((None, name.to_owned()));
                }
                self.child(target, node, desired, index, changes).await?
            };
            failed |= changes[before..]
                .iter()
                .any(|c| matches!(c.action, Action::Failed(_)));
            match found {
                Some(obj) => observed.push(obj),
                None => complete = false,
            }
        }
        if node.is_collection() && !node.is_external() && !failed {
            self.left_collection(target, node, &current, changes)
                .await?;
        }
        if !complete {
            return Ok(NodeState::Unknown);
        }
        if node.is_collection() {
            eval.observe(id, Value::Array(observed));
        } else if let Some(obj) = observed.into_iter().next() {
            eval.observe(id, obj);
        }
        Ok(NodeState::Known)
    }

    /// One rendered object of a template: unchanged, to create or to
    /// change; the object the hub would observe after its apply, when it
    /// exists by then.
    async fn child(
        &self,
        target: &Target,
        node: &ResourceNode,
        desired: Value,
        index: usize,
        changes: &mut Vec<Change>,
    ) -> Result<Option<Value>, Unreachable> {
        let id = node.id();
        let mut push = |action, object: String| {
            changes.push(Change {
                action,
                object,
                resource: id.to_owned(),
            });
        };
        let kind = desired
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("object")
            .to_owned();
        let Some(gvk) = children::gvk_of(&desired) else {
            push(
                Action::Failed("rendered object has no apiVersion/kind".to_owned()),
                kind,
            );
            return Ok(None);
        };
        let Some(name) = desired
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            push(
                Action::Failed("rendered object has no metadata.name".to_owned()),
                kind,
            );
            return Ok(None);
        };
        let (ar, caps) = match target.discovery.resolve(&target.client, &gvk).await {
            Ok(found) => found,
            Err(e) if crate::instance::reconcile::not_served_error(&e) => {
                push(
                    Action::Failed(format!(
                        "kind {} {kind} is not served by cluster {} (is its CRD installed?)",
                        gvk.api_version(),
                        target.name
                    )),
                    format!("{kind} {name}"),
                );
                return Ok(None);
            }
            Err(e) => return Err(self.unreachable(target, &e)),
        };
        let namespace = desired::target_namespace(&desired, self.identity.namespace.as_deref());
        let namespaced = caps.scope == Scope::Namespaced;
        let object = display(&kind, namespaced.then_some(namespace.as_str()), &name);
        let at = desired::Placement {
            collection_index: node.is_collection().then_some(index),
            member: target.member.as_deref(),
            namespace: namespaced.then_some(namespace.as_str()),
        };
        let desired = match desired::labelled(desired, &self.identity, id, at) {
            Ok(d) => d,
            Err(message) => {
                push(Action::Failed(message), object);
                return Ok(None);
            }
        };
        if namespaced && target.missing_namespace.as_deref() == Some(namespace.as_str()) {
            push(Action::Create, object);
            return Ok(None);
        }
        let api = children::api_for::<DynamicObject>(&target.client, &ar, &caps, Some(&namespace));
        let live = match api.get_opt(&name).await {
            Ok(found) => found.map(to_value),
            Err(e) => {
                push(Action::Failed(self.classify(target, &e)?), object);
                return Ok(None);
            }
        };
        if let Some(live) = &live {
            let owner = live
                .pointer("/metadata/labels")
                .and_then(|l| l.get(labels::INSTANCE_ID))
                .and_then(Value::as_str);
            if owner != Some(labels::label_value(&self.identity.uid).as_str()) {
                push(
                    Action::Failed(
                        "it exists and is not this instance's: kro-hub does not take over \
                         objects it did not create"
                            .to_owned(),
                    ),
                    object,
                );
                return Ok(None);
            }
            // The hub's own test: a converged child is not applied at all.
            if children::is_subset(&desired, live) {
                return Ok(Some(live.clone()));
            }
        }
        // The hub's apply (its field manager, forced), as a dry run.
        let params = PatchParams::apply(crate::FIELD_MANAGER).force().dry_run();
        let after = match api.patch(&name, &params, &Patch::Apply(&desired)).await {
            Ok(obj) => to_value(obj),
            Err(e) => {
                push(Action::Failed(self.classify(target, &e)?), object);
                return Ok(None);
            }
        };
        let Some(live) = live else {
            push(Action::Create, object);
            return Ok(None);
        };
        if fields::without_noise(&live) != fields::without_noise(&after) {
            push(
                Action::Change(fields::owned_diff(&live, &after, crate::FIELD_MANAGER)),
                object,
            );
        }
        Ok(Some(after))
    }

    /// One external reference, read as the hub reads it.
    async fn external(
        &self,
        target: &Target,
        node: &ResourceNode,
        reference: &Value,
        changes: &mut Vec<Change>,
    ) -> Result<Option<Value>, Unreachable> {
        let kind = reference
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("object");
        let name = reference
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let namespace = desired::target_namespace(reference, self.identity.namespace.as_deref());
        let mut push = |action, object: String| {
            changes.push(Change {
                action,
                object,
                resource: node.id().to_owned(),
            });
        };
        let Some(gvk) = children::gvk_of(reference) else {
            push(
                Action::Failed("externalRef has no apiVersion/kind".to_owned()),
                kind.to_owned(),
            );
            return Ok(None);
        };
        let (ar, caps) = match target.discovery.resolve(&target.client, &gvk).await {
            Ok(found) => found,
            Err(e) => {
                push(Action::Failed(self.classify(target, &e)?), kind.to_owned());
                return Ok(None);
            }
        };
        let namespaced = caps.scope == Scope::Namespaced;
        let object = display(kind, namespaced.then_some(namespace.as_str()), name);
        let api = children::api_for::<DynamicObject>(&target.client, &ar, &caps, Some(&namespace));
        match api.get_opt(name).await {
            Ok(Some(found)) => Ok(Some(to_value(found))),
            Ok(None) => {
                push(
                    Action::Note("external reference not found: the hub waits for it".to_owned()),
                    object,
                );
                Ok(None)
            }
            Err(e) => {
                push(Action::Failed(self.classify(target, &e)?), object);
                Ok(None)
            }
        }
    }

    /// The objects a selector reference matches, or why not.
    async fn list_external(
        &self,
        target: &Target,
        reference: &Value,
    ) -> Result<Result<Vec<Value>, String>, Unreachable> {
        let Some(gvk) = children::gvk_of(reference) else {
            return Ok(Err("externalRef has no apiVersion/kind".to_owned()));
        };
        let (ar, caps) = match target.discovery.resolve(&target.client, &gvk).await {
            Ok(found) => found,
            Err(e) => return self.classify(target, &e).map(Err),
        };
        let selector = match reference
            .pointer("/metadata/selector")
            .map(children::label_selector_string)
            .transpose()
        {
            Ok(s) => s.unwrap_or_default(),
            Err(message) => return Ok(Err(message)),
        };
        let api = match reference
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
        {
            Some(ns) => children::api_for::<DynamicObject>(&target.client, &ar, &caps, Some(ns)),
            None => Api::all_with(target.client.clone(), &ar),
        };
        match api.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => Ok(Ok(list.items.into_iter().map(to_value).collect())),
            Err(e) => self.classify(target, &e).map(Err),
        }
    }

    /// This instance's children of kind `gvk` on the target matching
    /// `selector`, except those already being deleted. An API error is
    /// recorded as a failure and lists nothing.
    async fn list(
        &self,
        target: &Target,
        gvk: &GroupVersionKind,
        selector: &str,
        changes: &mut Vec<Change>,
    ) -> Result<Vec<Listed>, Unreachable> {
        if !self.exists {
            return Ok(Vec::new());
        }
        let (ar, _) = match target.discovery.resolve(&target.client, gvk).await {
            Ok(found) => found,
            Err(e) if crate::instance::reconcile::not_served_error(&e) => return Ok(Vec::new()),
            Err(e) => {
                let message = self.classify(target, &e)?;
                changes.push(Change {
                    action: Action::Failed(message),
                    object: gvk.kind.clone(),
                    resource: "(listing the instance's children)".to_owned(),
                });
                return Ok(Vec::new());
            }
        };
        let api = Api::<DynamicObject>::all_with(target.client.clone(), &ar);
        let items = match api
            .list_metadata(&ListParams::default().labels(selector))
            .await
        {
            Ok(list) => list.items,
            Err(e) => {
                let message = self.classify(target, &e)?;
                changes.push(Change {
                    action: Action::Failed(message),
                    object: gvk.kind.clone(),
                    resource: "(listing the instance's children)".to_owned(),
                });
                return Ok(Vec::new());
            }
        };
        Ok(items
            .into_iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
            .map(|o| {
                let name = o.name_any();
                let namespace = o.metadata.namespace.clone();
                Listed {
                    object: display(&gvk.kind, namespace.as_deref(), &name),
                    node: o.labels().get(labels::NODE_ID).cloned().unwrap_or_default(),
                    namespace,
                    name,
                }
            })
            .collect())
    }

    /// The children of `node` on the target: every kind it may have.
    async fn children_of(
        &self,
        target: &Target,
        node: &ResourceNode,
        changes: &mut Vec<Change>,
    ) -> Result<Vec<Listed>, Unreachable> {
        let Some(gvk) = crate::instance::gvk_of_node(node) else {
            return Ok(Vec::new());
        };
        let selector = format!(
            "{},{}={}",
            desired::children_selector(&self.identity, target.member.as_deref()),
            labels::NODE_ID,
            labels::label_value(node.id())
        );
        self.list(target, &gvk, &selector, changes).await
    }

    /// An excluded resource: its children go (or are released, with
    /// `deletionPolicy: Orphaned`).
    async fn prune(
        &self,
        target: &Target,
        node: &ResourceNode,
        why: &str,
        changes: &mut Vec<Change>,
    ) -> Result<(), Unreachable> {
        if node.is_external() {
            return Ok(());
        }
        let found = self.children_of(target, node, changes).await?;
        let release = self.orphaned.contains(node.id());
        changes.extend(found.into_iter().map(|l| Change {
            action: if release {
                Action::Release(format!("{why}; deletionPolicy: Orphaned"))
            } else {
                Action::Delete(why.to_owned())
            },
            object: l.object,
            resource: node.id().to_owned(),
        }));
        Ok(())
    }

    /// Items of a collection that left its list.
    async fn left_collection(
        &self,
        target: &Target,
        node: &ResourceNode,
        current: &BTreeSet<(Option<String>, String)>,
        changes: &mut Vec<Change>,
    ) -> Result<(), Unreachable> {
        let found = self.children_of(target, node, changes).await?;
        let release = self.orphaned.contains(node.id());
        for l in found {
            if current.contains(&(l.namespace.clone(), l.name.clone())) {
                continue;
            }
            let why = "no longer in the collection".to_owned();
            changes.push(Change {
                action: if release {
                    Action::Release(why)
                } else {
                    Action::Delete(why)
                },
                object: l.object,
                resource: node.id().to_owned(),
            });
        }
        Ok(())
    }

    /// Children of resources that left the RGD (the hub's sweep).
    async fn sweep_retired(
        &self,
        target: &Target,
        changes: &mut Vec<Change>,
    ) -> Result<(), Unreachable> {
        let ids: HashSet<String> = self
            .graph
            .resources()
            .map(|n| labels::label_value(n.id()))
            .collect();
        let selector = desired::children_selector(&self.identity, target.member.as_deref());
        for gvk in &self.known_kinds {
            for l in self.list(target, gvk, &selector, changes).await? {
                if ids.contains(&l.node) {
                    continue;
                }
                changes.push(Change {
                    action: Action::Delete(format!("resource {} is no longer in the RGD", l.node)),
                    object: l.object,
                    resource: l.node,
                });
            }
        }
        Ok(())
    }
}

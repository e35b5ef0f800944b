//! Member clusters: the pool of clients the hub keeps, one per `Cluster`
//! object, and the controller that builds them from kubeconfig Secrets,
//! probes them and reports on them.
//!
//! The pool is the only place instance controllers learn about members:
//! they read a snapshot of it when they reconcile, and are re-queued when
//! it changes (a member added, relabelled, paused, gone, reachable again).

pub mod cli;
pub mod cluster;
pub mod controller;
pub mod drift;
pub mod kubeconfig;
pub mod names;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use kube::Client;
use tokio::sync::watch;

use crate::instance::Discovery;

/// Label on every child the hub applies to a member: the Cluster's name.
pub const CLUSTER_LABEL: &str = "hub.kro.run/cluster";
/// Label on every child the hub applies to a member: the hub instance's uid.
pub const INSTANCE_UID_LABEL: &str = "hub.kro.run/instance-uid";
/// Label on a namespace the hub created on a member for an instance.
pub const CREATED_BY_LABEL: &str = "hub.kro.run/created-by";
/// Annotation (on an instance or a Cluster) abandoning the copies on
/// members that are unreachable, so deletion can finish without them.
pub const ORPHAN_UNREACHABLE: &str = "hub.kro.run/orphan-unreachable";

/// How a member answered its last probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet.
    Unknown,
    /// The version endpoint answered.
    Reachable {
        /// `gitVersion` of the member's API server.
        version: String,
    },
    /// No answer (connection refused, timeout, 5xx).
    Unreachable(String),
    /// The member refused the credentials.
    Unauthorized(String),
    /// The kubeconfig Secret does not exist.
    SecretNotFound(String),
    /// The Secret does not hold a usable kubeconfig.
    InvalidKubeconfig(String),
}

impl Health {
    /// The `Ready` condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Health::Unknown => "Probing",
            Health::Reachable { .. } => "Reachable",
            Health::Unreachable(_) => "Unreachable",
            Health::Unauthorized(_) => "Unauthorized",
            Health::SecretNotFound(_) => "SecretNotFound",
            Health::InvalidKubeconfig(_) => "InvalidKubeconfig",
        }
    }

    /// Whether the member can be worked on.
    pub fn is_ready(&self) -> bool {
        matches!(self, Health::Reachable { .. })
    }

    /// What to tell a user.
    pub fn message(&self) -> String {
        match self {
            Health::Unknown => "not probed yet".to_owned(),
            Health::Reachable { version } => format!("reachable, Kubernetes {version}"),
            Health::Unreachable(m)
            | Health::Unauthorized(m)
            | Health::SecretNotFound(m)
            | Health::InvalidKubeconfig(m) => m.clone(),
        }
    }
}

/// One member as instance controllers see it.
#[derive(Clone)]
pub struct Member {
    /// The Cluster's name (`cluster.name` in CEL).
    pub name: String,
    /// The Cluster's labels (`cluster.labels`, placement selectors).
    pub labels: BTreeMap<String, String>,
    /// The Cluster's annotations (`cluster.annotations`).
    pub annotations: BTreeMap<String, String>,
    /// `spec.paused`: no writes while true.
    pub paused: bool,
    /// The Cluster is being deleted: instances remove their copies and stop
    /// listing it.
    pub deleting: bool,
    /// Last probe.
    pub health: Health,
    /// Client with the member's own credentials, once built.
    pub client: Option<Client>,
    /// Discovery cache of this member.
    pub discovery: Arc<Discovery>,
    /// Instance passes running on this member at once: a burst of instances
    /// queues here instead of flooding one member's API server.
    pub permits: Arc<tokio::sync::Semaphore>,
    /// Namespaces known to exist on the member (created or seen).
    pub known_namespaces: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Held while a namespace is checked or created on the member, so the
    /// first passes of many instances in one namespace make one check, not
    /// one each.
    pub namespace_check: Arc<tokio::sync::Mutex<()>>,
    /// Schemas of the kinds RGDs place on this member.
    pub schemas: Arc<crate::schemas::SchemaCache>,
    /// Bumped each time the client is rebuilt (rotated credentials): the
    /// member's watches restart from the next instance pass, so instances
    /// are re-queued.
    pub epoch: u64,
}

/// Instance passes one member serves at once.
pub const PASSES_PER_MEMBER: usize = 16;

impl std::fmt::Debug for Member {
    // Never prints the client: its configuration holds credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("paused", &self.paused)
            .field("deleting", &self.deleting)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// A member not probed yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            paused: false,
            deleting: false,
            health: Health::Unknown,
            client: None,
            discovery: Arc::new(Discovery::default()),
            permits: Arc::new(tokio::sync::Semaphore::new(PASSES_PER_MEMBER)),
            known_namespaces: Arc::default(),
            namespace_check: Arc::default(),
            schemas: Arc::default(),
            epoch: 0,
        }
    }

    /// Whether the Cluster carries the orphan-unreachable annotation.
    pub fn orphans_unreachable(&self) -> bool {
        self.annotations
            .get(ORPHAN_UNREACHABLE)
            .is_some_and(|v| v == "true")
    }

    /// What instances see of this member, to decide whether to re-queue.
    fn view(&self) -> impl PartialEq + use<> {
        (
            self.labels.clone(),
            self.annotations.clone(),
            self.paused,
            self.deleting,
            self.health.is_ready(),
            self.health.reason(),
            self.epoch,
        )
    }
}

/// The members, shared by the Cluster controller (which writes) and the
/// instance controllers (which read).
#[derive(Clone, Debug)]
pub struct Members {
    inner: Arc<RwLock<BTreeMap<String, Member>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for Members {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        }
    }
}

impl Members {
    /// Every member, by name.
    pub fn snapshot(&self) -> Vec<Member> {
        self.inner
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One member.
    pub fn get(&self, name: &str) -> Option<Member> {
        self.inner.read().ok().and_then(|m| m.get(name).cloned())
    }

    /// Replaces (or adds) a member; instance controllers are told when what
    /// they see of it changed.
    pub fn put(&self, member: Member) {
        let changed = match self.inner.write() {
            Ok(mut map) => {
                let changed = map
                    .get(&member.name)
                    .is_none_or(|old| old.view() != member.view());
                map.insert(member.name.clone(), member);
                changed
            }
            Err(_) => false,
        };
        if changed {
            self.changed.send_modify(|g| *g += 1);
        }
    }

    /// Removes a member.
    pub fn remove(&self, name: &str) {
        let removed = self
            .inner
            .write()
            .map(|mut map| map.remove(name).is_some())
            .unwrap_or(false);
        if removed {
            self.changed.send_modify(|g| *g += 1);
        }
    }

    /// The version of what instances see of the members: bumped on every
    /// change of it.
    pub fn version(&self) -> u64 {
        *self.changed.borrow()
    }

    /// Bumped whenever what instances see of the members changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

//! The state one sandbox's HTTP handlers share.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::{TokenSubject, Tokens, UserInfo};
use crate::catalog::Catalog;
use crate::storage::Data;

/// How a sandbox behaves; see [`crate::SandboxBuilder`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Cluster name, used in kubeconfigs.
    pub name: String,
    /// Bearer token every request must carry, if any.
    pub token: Option<String>,
    /// Whether the workload simulator runs.
    pub simulator: bool,
    /// Delay before simulated workloads report ready.
    pub simulator_delay: Duration,
    /// Events kept for watches that resume from a resourceVersion.
    pub history: usize,
    /// Whether terminating namespaces are emptied and removed (the namespace controller's job).
    pub namespace_controller: bool,
    /// Static bearer tokens and the users they authenticate (a token file's lines).
    pub user_tokens: Vec<(String, UserInfo)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            name: "sandbox".to_owned(),
            token: None,
            simulator: true,
            simulator_delay: Duration::from_millis(200),
            history: crate::storage::DEFAULT_HISTORY,
            namespace_controller: true,
            user_tokens: Vec::new(),
        }
    }
}

/// Fault switches tests flip at run time.
#[derive(Debug)]
pub struct Faults {
    /// Refuse connections (close them as soon as they are accepted).
    pub refuse: AtomicBool,
    /// Answer every request with this HTTP code (0 = off).
    pub error_code: AtomicU32,
    /// Delay every answer by this many milliseconds.
    pub delay_ms: AtomicU64,
    /// Bumped to end every open watch.
    pub drop_watches: watch::Sender<u64>,
    /// Answer new watch requests with this HTTP code (0 = off).
    pub watch_error: AtomicU32,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            refuse: AtomicBool::new(false),
            error_code: AtomicU32::new(0),
            delay_ms: AtomicU64::new(0),
            drop_watches: watch::channel(0).0,
            watch_error: AtomicU32::new(0),
        }
    }
}

/// Everything behind one sandbox's HTTP server.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub opts: Options,
    /// Stored objects and the event log.
    data: RwLock<Data>,
    /// Served resources.
    catalog: RwLock<Catalog>,
    /// Fault switches.
    pub faults: Faults,
    /// Next ClusterIP host number.
    pub next_ip: AtomicU32,
    /// Next NodePort.
    pub next_port: AtomicU32,
    /// Bearer tokens besides the admin token.
    pub tokens: Tokens,
    /// Requests served, by user, verb and resource.
    pub requests: crate::counters::RequestCounters,
}

impl Shared {
    /// Fresh state with the built-in catalog.
    pub fn new(opts: Options) -> Self {
        let history = opts.history;
        let tokens = Tokens::default();
        for (token, user) in &opts.user_tokens {
            tokens.insert(token, TokenSubject::User(user.clone()));
        }
        Self {
            opts,
            data: RwLock::new(Data::new(history)),
            catalog: RwLock::new(Catalog::builtin()),
            faults: Faults::default(),
            next_ip: AtomicU32::new(10),
            next_port: AtomicU32::new(30_000),
            tokens,
            requests: crate::counters::RequestCounters::default(),
        }
    }

    /// Creates the namespaces and the default RBAC policy every cluster starts with.
    pub fn seed(&self) {
        let mut data = self.data();
        let rbac = |plural: &str| ("rbac.authorization.k8s.io".to_owned(), plural.to_owned());
        let policy = crate::authz::bootstrap::cluster_roles()
            .into_iter()
            .map(|o| (rbac("clusterroles"), o))
            .chain(
                crate::authz::bootstrap::cluster_role_bindings()
                    .into_iter()
                    .map(|o| (rbac("clusterrolebindings"), o)),
            );
        for (res, mut obj) in policy {
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let key = (String::new(), name);
            if data.get(&res, &key).is_some() {
                continue;
            }
            let rv = data.next_rv();
            let meta = crate::meta::meta_mut(&mut obj);
            meta.insert("uid".into(), serde_json::json!(crate::ids::new_uid()));
            meta.insert("resourceVersion".into(), serde_json::json!(rv.to_string()));
            meta.insert(
                "creationTimestamp".into(),
                serde_json::json!(crate::ids::now_rfc3339()),
            );
            crate::meta::canonical_order(&mut obj);
            let text = std::sync::Arc::from(obj.to_string());
            data.put(&res, key, rv, text, crate::storage::EventType::Added);
        }
        crate::authz::aggregation::reconcile(&mut data);
        let res = (String::new(), "namespaces".to_owned());
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if data.get(&res, &(String::new(), name.to_owned())).is_some() {
                continue;
            }
            let rv = data.next_rv();
            let obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": crate::ids::new_uid(), "resourceVersion": rv.to_string(),
                    "creationTimestamp": crate::ids::now_rfc3339(),
                    "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            let text = std::sync::Arc::from(obj.to_string());
            data.put(
                &res,
                (String::new(), name.to_owned()),
                rv,
                text,
                crate::storage::EventType::Added,
            );
        }
    }

    /// Locks the storage for a write. A panic while holding it cannot leave a
    /// half-written object (writes are single map inserts), so a poisoned lock is taken
    /// over.
    pub fn data(&self) -> RwLockWriteGuard<'_, Data> {
        self.data
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Locks the storage for reading: reads run side by side and only wait for writes.
    /// Readers take the stored texts (shared `Arc`s) and parse, filter and encode them
    /// after letting go, so a large list never holds up a write for its encoding.
    pub fn data_read(&self) -> RwLockReadGuard<'_, Data> {
        self.data
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the catalog.
    pub fn catalog(&self) -> RwLockReadGuard<'_, Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the catalog.
    pub fn catalog_mut(&self) -> RwLockWriteGuard<'_, Catalog> {
        self.catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Allocates a ClusterIP in 10.96.0.0/12.
    pub fn alloc_ip(&self) -> String {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }

    /// Allocates a NodePort in 30000-32767.
    pub fn alloc_port(&self) -> u32 {
        30_000 + (self.next_port.fetch_add(1, Ordering::Relaxed) - 30_000) % 2768
    }
}

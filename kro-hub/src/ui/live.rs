//! The live state behind the web page and the demo's table: reflectors of
//! Clusters, RGDs and the instances of every Active RGD, kept in memory by
//! watches. A page load or a pushed update reads these stores, so it costs
//! the API server nothing; only the watches do, once for all viewers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::view::{self, Snapshot};

/// The live state; clones share it. The watches stop when the last clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    clusters: Store<DynamicObject>,
    rgds: Store<DynamicObject>,
    instances: Arc<Mutex<Instances>>,
    /// Bumped on every change any watch sees.
    changes: watch::Sender<u64>,
    /// Set when the views stop: open event streams end on it.
    stopping: watch::Sender<bool>,
    /// Event streams opened so far.
    opened: AtomicUsize,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The instance watches, by `group/version/plural`.
type Instances = BTreeMap<String, InstanceWatch>;

#[derive(Debug)]
struct InstanceWatch {
    kind: String,
    store: Store<DynamicObject>,
    task: AbortHandle,
}

impl Drop for InstanceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bump(changes: &watch::Sender<u64>) {
    changes.send_modify(|n| *n = n.wrapping_add(1));
}

/// Runs a reflector of `ar` into `writer`, bumping `changes` on each event.
fn reflect(
    api: Api<DynamicObject>,
    writer: Writer<DynamicObject>,
    changes: watch::Sender<u64>,
    what: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => {}
                Ok(_) => bump(&changes),
                // The watcher backs off and retries by itself.
                Err(error) => tracing::debug!(watch = %what, %error, "live view watch error"),
            }
        }
    })
}

impl Live {
    /// Starts the watches through `client`. Only Clusters, RGDs and
    /// instances are watched; never a Secret.
    pub fn start(client: Client) -> Self {
        let (changes, _) = watch::channel(0u64);
        let (stopping, _) = watch::channel(false);
        let cluster_ar = crate::members::cluster::api_resource();
        let rgd_ar = crate::rgd_controller::rgd_api_resource();
        let clusters = Writer::new(cluster_ar.clone());
        let clusters_store = clusters.as_reader();
        let rgds = Writer::new(rgd_ar.clone());
        let rgds_store = rgds.as_reader();
        let instances = Arc::new(Mutex::new(Instances::new()));
        let mut tasks = vec![
            reflect(
                Api::all_with(client.clone(), &cluster_ar),
                clusters,
                changes.clone(),
                "Clusters".to_owned(),
            )
            .abort_handle(),
        ];
        // RGD events also tell the supervisor which instance kinds to watch.
        let (rgd_changes, rgd_seen) = watch::channel(0u64);
        let forward = {
            let changes = changes.clone();
            let mut rgd_seen = rgd_seen.clone();
            tokio::spawn(async move {
                while rgd_seen.changed().await.is_ok() {
                    bump(&changes);
                }
            })
        };
        tasks.push(forward.abort_handle());
        tasks.push(
            reflect(
                Api::all_with(client.clone(), &rgd_ar),
                rgds,
                rgd_changes,
                "ResourceGraphDefinitions".to_owned(),
            )
            .abort_handle(),
        );
        tasks.push(
            tokio::spawn(supervise(
                client,
                rgds_store.clone(),
                rgd_seen,
                instances.clone(),
                changes.clone(),
            ))
            .abort_handle(),
        );
        Self {
            inner: Arc::new(Inner {
                clusters: clusters_store,
                rgds: rgds_store,
                instances,
                changes,
                stopping,
                opened: AtomicUsize::new(0),
                tasks,
            }),
        }
    }

    /// Waits, at most `timeout`, until Clusters and RGDs have been listed
    /// once, so a first view is not empty just because it came early.
    pub async fn ready(&self, timeout: Duration) {
        let both = async {
            let _ = self.inner.clusters.wait_until_ready().await;
            let _ = self.inner.rgds.wait_until_ready().await;
        };
        let _ = tokio::time::timeout(timeout, both).await;
    }

    /// What the watches hold now.
    pub fn snapshot(&self) -> Snapshot {
        let mut members: Vec<_> = self
            .inner
            .clusters
            .state()
            .iter()
            .map(|c| view::member(c))
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let mut graphs: Vec<_> = self
            .inner
            .rgds
            .state()
            .iter()
            .map(|r| view::graph(r))
            .collect();
        graphs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut rows = Vec::new();
        if let Ok(instances) = self.inner.instances.lock() {
            for watch in instances.values() {
                rows.extend(
                    watch
                        .store
                        .state()
                        .iter()
                        .map(|i| view::row(&watch.kind, i)),
                );
            }
        }
        rows.sort_by(|a, b| a.instance.cmp(&b.instance));
        Snapshot {
            members,
            graphs,
            rows,
        }
    }

    /// A receiver that sees a change whenever any watch does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// A receiver that turns true when the views stop.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// Ends every open event stream (the server's graceful shutdown waits
    /// for them).
    pub fn stop(&self) {
        let _ = self.inner.stopping.send(true);
    }

    /// How many event streams pages have opened so far. A count of those
    /// open now would lag: a closed connection is noticed only at the next
    /// write to it.
    pub fn streams_opened(&self) -> usize {
        self.inner.opened.load(Ordering::Acquire)
    }

    /// Counts an event stream being opened.
    pub(crate) fn opened(&self) {
        self.inner.opened.fetch_add(1, Ordering::AcqRel);
    }
}

fn key(ar: &ApiResource) -> String {
    format!("{}/{}", ar.api_version, ar.plural)
}

/// Keeps one instance watch per kind an Active RGD serves: starts the new,
/// drops (and so stops) those no RGD serves any more.
async fn supervise(
    client: Client,
    rgds: Store<DynamicObject>,
    mut rgd_seen: watch::Receiver<u64>,
    instances: Arc<Mutex<Instances>>,
    changes: watch::Sender<u64>,
) {
    loop {
        let wanted: BTreeMap<String, view::InstanceKind> = rgds
            .state()
            .iter()
            .filter_map(|r| view::instance_kind(r))
            .map(|k| (key(&k.resource), k))
            .collect();
        let removed = {
            let Ok(mut running) = instances.lock() else {
                return;
            };
            let before = running.len();
            running.retain(|k, w| wanted.contains_key(k) && !w.task.is_finished());
            let removed = running.len() != before;
            for (k, kind) in wanted {
                if running.contains_key(&k) {
                    continue;
                }
                let writer = Writer::new(kind.resource.clone());
                let store = writer.as_reader();
                let task = reflect(
                    Api::all_with(client.clone(), &kind.resource),
                    writer,
                    changes.clone(),
                    format!("{} instances", kind.kind),
                );
                tracing::debug!(rgd = %kind.rgd, kind = %kind.kind, "live view watches instances");
                running.insert(
                    k,
                    InstanceWatch {
                        kind: kind.kind,
                        store,
                        task: task.abort_handle(),
                    },
                );
            }
            removed
        };
        if removed {
            bump(&changes);
        }
        if rgd_seen.changed().await.is_err() {
            return;
        }
    }
}

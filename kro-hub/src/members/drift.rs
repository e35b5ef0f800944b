//! Drift on members: one watch per (member, kind) in use, shared by every
//! RGD, selecting only the hub's children on that member (by the cluster
//! label), so a child edited or deleted there re-queues its instance at
//! once instead of waiting for a resync. A watch starts the first time an
//! instance pass uses the kind on the member and stops when the member's
//! client is rebuilt or the member is removed; watches never list objects
//! the hub did not create.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt as _;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::CLUSTER_LABEL;
use crate::labels;

/// Where a child's change is sent: the instance controller of its RGD.
#[derive(Debug, Clone)]
pub struct Route {
    /// Re-queues an instance.
    pub trigger: mpsc::UnboundedSender<ObjectRef<DynamicObject>>,
    /// The RGD's kind.
    pub resource: ApiResource,
    /// Whether instances are namespaced.
    pub namespaced: bool,
}

/// Instance controllers by the label value of their RGD's name (what a
/// child's `kro.run/defined-by-rgd` label holds).
#[derive(Debug, Clone, Default)]
pub struct Routes {
    inner: Arc<RwLock<HashMap<String, Route>>>,
}

impl Routes {
    /// Routes the children of `rgd_name` to `route`.
    pub fn set(&self, rgd_name: &str, route: Route) {
        if let Ok(mut m) = self.inner.write() {
            m.insert(labels::label_value(rgd_name), route);
        }
    }

    /// Stops routing the children of `rgd_name`.
    pub fn remove(&self, rgd_name: &str) {
        if let Ok(mut m) = self.inner.write() {
            m.remove(&labels::label_value(rgd_name));
        }
    }

    /// Re-queues the instance a child belongs to, if its RGD runs here.
    fn send(&self, child: &DynamicObject) {
        let Some(l) = child.metadata.labels.as_ref() else {
            return;
        };
        let (Some(rgd), Some(name)) = (l.get(labels::DEFINED_BY_RGD), l.get(labels::INSTANCE_NAME))
        else {
            return;
        };
        let Some(route) = self.inner.read().ok().and_then(|m| m.get(rgd).cloned()) else {
            return;
        };
        let mut r = ObjectRef::new_with(name, route.resource.clone());
        if route.namespaced {
            let Some(ns) = l.get(labels::INSTANCE_NAMESPACE) else {
                return;
            };
            r = r.within(ns);
        }
        let _ = route.trigger.send(r);
    }
}

/// The running member watches.
#[derive(Debug, Default)]
pub struct DriftWatches {
    routes: Routes,
    running: Mutex<HashMap<(String, String), JoinHandle<()>>>,
}

impl DriftWatches {
    /// Watches that send to `routes`.
    pub fn new(routes: Routes) -> Self {
        Self {
            routes,
            running: Mutex::default(),
        }
    }

    /// Starts the watch of `ar` on `member` unless it runs.
    pub fn ensure(&self, member: &str, client: &Client, ar: &ApiResource) {
        let key = (
            member.to_owned(),
            format!("{}/{}/{}", ar.group, ar.version, ar.kind),
        );
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if running.get(&key).is_some_and(|h| !h.is_finished()) {
            return;
        }
        let api = Api::<DynamicObject>::all_with(client.clone(), ar);
        let config = watcher::Config::default()
            .labels(&format!("{CLUSTER_LABEL}={}", labels::label_value(member)));
        let routes = self.routes.clone();
        let what = format!("{} on {member}", ar.kind);
        let handle = tokio::spawn(async move {
            let mut events = watcher(api, config)
                .default_backoff()
                .touched_objects()
                .boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(child) => routes.send(&child),
                    // The watcher backs off and retries by itself; a member
                    // that is down is the Cluster controller's to report.
                    Err(error) => tracing::debug!(watch = %what, %error, "member watch error"),
                }
            }
        });
        running.insert(key, handle);
    }

    /// Stops every watch on `member` (its client changed or it is gone).
    pub fn stop_member(&self, member: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.retain(|(m, _), handle| {
                if m == member {
                    handle.abort();
                    false
                } else {
                    true
                }
            });
        }
    }
}

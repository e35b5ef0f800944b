//! Who holds each name on a member: for every kind the hub applies there,
//! one metadata-only watch of the objects of the kind the hub did not make
//! there (its own children are in the drift store, see [`super::drift`]),
//! kept as a compact map from namespace and name to the instance uid label
//! the object carries.
//!
//! The no-takeover rule needs to know, before applying a child, whether an
//! object of that name exists and whose it is. The drift store holds only
//! the hub's children, so "not in the store" cannot tell "free" from
//! "someone else's", and the hub used to GET every child it was about to
//! create (a 404 almost always). The two together answer from memory: a
//! free name is applied at once, a foreign one is refused without a
//! request. Multi-cluster controllers do the same (Karmada's execution
//! controller checks conflicts against an informer of the member's
//! objects). The map holds names and one label only, so it costs about a
//! hundred bytes per object of the kind on the member.
//!
//! A name taken in the moment between the watch's last event and the
//! apply is not seen: the window is the watch's lag, and the object was
//! then made after the instance asked for that name.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt as _;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::task::JoinHandle;

use super::drift::Lookup;
use crate::labels;

/// Names by namespace ("" for cluster-scoped objects), then by name.
type Map = HashMap<String, HashMap<String, Option<Box<str>>>>;

/// One running name watch.
pub(super) struct NameWatch {
    task: JoinHandle<()>,
    names: Arc<RwLock<Map>>,
    ready: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for NameWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameWatch").finish_non_exhaustive()
    }
}

fn owner_of(meta: &kube::api::ObjectMeta) -> Option<Box<str>> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(labels::INSTANCE_ID))
        .map(|v| v.as_str().into())
}

fn insert(map: &mut Map, meta: &kube::api::ObjectMeta) {
    let Some(name) = meta.name.clone() else {
        return;
    };
    map.entry(meta.namespace.clone().unwrap_or_default())
        .or_default()
        .insert(name, owner_of(meta));
}

fn remove(map: &mut Map, meta: &kube::api::ObjectMeta) {
    let ns = meta.namespace.clone().unwrap_or_default();
    if let (Some(names), Some(name)) = (map.get_mut(&ns), meta.name.as_deref()) {
        names.remove(name);
        if names.is_empty() {
            map.remove(&ns);
        }
    }
}

impl NameWatch {
    /// Starts watching the names of `ar` on `member`, but for the hub's own
    /// children there; `what` names it in logs.
    pub(super) fn start(client: &Client, ar: &ApiResource, member: &str, what: String) -> Self {
        let api = Api::<PartialObjectMeta<DynamicObject>>::all_with(client.clone(), ar);
        // `!=` also selects objects without the label.
        let others = format!("{}!={}", super::CLUSTER_LABEL, labels::label_value(member));
        let names: Arc<RwLock<Map>> = Arc::default();
        let (synced, ready) = tokio::sync::watch::channel(false);
        let shared = names.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default().labels(&others))
                .default_backoff()
                .boxed();
            // A relist builds the map afresh and swaps it in whole, so names
            // deleted while the watch was broken do not linger.
            let mut relisting: Option<Map> = None;
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Init) => relisting = Some(Map::new()),
                    Ok(watcher::Event::InitApply(obj)) => {
                        if let Some(m) = relisting.as_mut() {
                            insert(m, &obj.metadata);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let (Some(fresh), Ok(mut m)) = (relisting.take(), shared.write()) {
                            *m = fresh;
                        }
                        synced.send_replace(true);
                    }
                    Ok(watcher::Event::Apply(obj)) => {
                        if let Ok(mut m) = shared.write() {
                            insert(&mut m, &obj.metadata);
                        }
                    }
                    Ok(watcher::Event::Delete(obj)) => {
                        if let Ok(mut m) = shared.write() {
                            remove(&mut m, &obj.metadata);
                        }
                    }
                    // The watcher backs off and retries by itself; a member
                    // that is down is the Cluster controller's to report.
                    Err(error) => tracing::debug!(watch = %what, %error, "member name watch error"),
                }
            }
        });
        Self { task, names, ready }
    }

    /// Whether the watch still runs.
    pub(super) fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops the watch.
    pub(super) fn abort(&self) {
        self.task.abort();
    }

    /// A handle to wait for the first list with.
    pub(super) fn ready(&self) -> tokio::sync::watch::Receiver<bool> {
        self.ready.clone()
    }

    /// Who holds `namespace/name` among the objects the hub did not make
    /// (`Free` or `Other`), once the first list is in.
    pub(super) fn holder(&self, namespace: Option<&str>, name: &str) -> Option<Lookup> {
        if !*self.ready.borrow() || !self.is_running() {
            return None;
        }
        let map = self.names.read().ok()?;
        Some(
            match map
                .get(namespace.unwrap_or_default())
                .and_then(|n| n.get(name))
            {
                None => Lookup::Free,
                Some(owner) => Lookup::Other {
                    instance: owner.as_deref().map(str::to_owned),
                },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ns: Option<&str>, name: &str, owner: Option<&str>) -> kube::api::ObjectMeta {
        kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: ns.map(str::to_owned),
            labels: owner.map(|o| [(labels::INSTANCE_ID.to_owned(), o.to_owned())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_kept_per_namespace_with_their_owner() {
        let mut m = Map::new();
        insert(&mut m, &meta(Some("a"), "web", Some("uid-1")));
        insert(&mut m, &meta(Some("b"), "web", None));
        insert(&mut m, &meta(None, "cluster-wide", None));
        assert_eq!(m["a"]["web"].as_deref(), Some("uid-1"));
        assert_eq!(m["b"]["web"], None);
        assert!(m[""].contains_key("cluster-wide"));
        remove(&mut m, &meta(Some("a"), "web", None));
        assert!(!m.contains_key("a"), "an emptied namespace is dropped");
        assert!(m["b"].contains_key("web"));
    }
}

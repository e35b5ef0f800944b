//! Drift on members: one watch per (member, kind) in use, shared by every
//! RGD, selecting only the hub's children on that member (by the cluster
//! label), so a child edited or deleted there re-queues its instance at
//! once instead of waiting for a resync. Each watch also fills a store,
//! which instance passes read instead of GETting every child from
//! the member on every pass. A watch starts the first time an
//! instance pass uses the kind on the member and stops when the member's
//! client is rebuilt or the member is removed. Beside each, a metadata-only
//! watch of the other objects of the kind keeps who holds which name (see
//! [`super::names`]); only names and the instance label are kept of objects
//! the hub did not create.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ApiResource, GroupVersionKind};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::CLUSTER_LABEL;
use super::names::NameWatch;
use crate::labels;
use crate::lean_object::LeanObject;

/// Where a child's change is sent: the instance controller of its RGD.
#[derive(Debug, Clone)]
pub struct Route {
    /// Re-queues an instance.
    pub trigger: mpsc::UnboundedSender<ObjectRef<LeanObject>>,
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
    fn send(&self, child: &ObjectMeta) {
        let Some(l) = child.labels.as_ref() else {
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

/// The hub's children of one kind on one member, by namespace ("" for
/// cluster-scoped objects) and name, as the JSON the instance passes
/// compare and evaluate. A reflector's store of `DynamicObject`s would have
/// each pass serialize every child again; these are converted once per
/// change and shared. They are also indexed by the instance uid label
/// they carry: a restarting hub finds an instance's children there without
/// rendering the instance (see `instance::unchanged`).
#[derive(Debug, Default)]
struct Objects {
    by_name: HashMap<(String, String), Arc<Value>>,
    by_instance: HashMap<String, HashSet<(String, String)>>,
}

/// The instance uid label of a stored child.
fn instance_of(child: &Value) -> Option<&str> {
    child
        .get("metadata")?
        .get("labels")?
        .get(super::INSTANCE_UID_LABEL)?
        .as_str()
}

impl Objects {
    fn get(&self, key: &(String, String)) -> Option<&Arc<Value>> {
        self.by_name.get(key)
    }

    fn insert(&mut self, key: (String, String), child: Arc<Value>) {
        if let Some(uid) = instance_of(&child) {
            self.by_instance
                .entry(uid.to_owned())
                .or_default()
                .insert(key.clone());
        }
        if let Some(old) = self.by_name.insert(key.clone(), child) {
            self.unindex(&key, &old);
        }
    }

    /// Inserts `child` unless the name is taken.
    fn insert_absent(&mut self, key: (String, String), child: &Arc<Value>) {
        if !self.by_name.contains_key(&key) {
            self.insert(key, child.clone());
        }
    }

    fn remove(&mut self, key: &(String, String)) {
        if let Some(old) = self.by_name.remove(key) {
            self.unindex(key, &old);
        }
    }

    /// Drops `key` from the index entry of `old`'s instance, unless the
    /// object now stored under `key` belongs to that instance too.
    fn unindex(&mut self, key: &(String, String), old: &Value) {
        let Some(uid) = instance_of(old) else {
            return;
        };
        if self.by_name.get(key).and_then(|c| instance_of(c)) == Some(uid) {
            return;
        }
        if let Some(keys) = self.by_instance.get_mut(uid) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_instance.remove(uid);
            }
        }
    }

    /// The children labelled with instance `uid`.
    fn of_instance(&self, uid: &str) -> impl Iterator<Item = (&(String, String), &Arc<Value>)> {
        self.by_instance
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| self.by_name.get_key_value(k))
    }
}

/// What the watches of a member know of a name.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// One of the hub's children on the member (of any instance).
    Child(Arc<Value>),
    /// An object the hub did not make there; `instance` is the instance
    /// uid label it carries, if any.
    Other {
        /// Its `kro.run/instance-id` label.
        instance: Option<String>,
    },
    /// Nothing has that name.
    Free,
}

/// One running watch and what it has seen, with the name watch of the
/// same kind on the same member.
struct Watch {
    task: JoinHandle<()>,
    store: Arc<RwLock<Objects>>,
    /// Whether the first full list has been stored.
    ready: tokio::sync::watch::Receiver<bool>,
    names: NameWatch,
}

/// A child as the store keeps it: without managedFields (the store answers
/// what a child holds, never who manages which field: about half the size;
/// [`LeanObject`] never decodes them), with its apiVersion and kind. The
/// items of a list answer for a built-in kind carry neither (as on a real
/// API server): without them a child from the initial list would never
/// match its rendered self, and every child would be re-applied after each
/// relist, a restart of the hub included.
fn stored(
    child: LeanObject,
    (api_version, kind): &(String, String),
) -> ((String, String), Arc<Value>) {
    let key = key_of(&child.metadata);
    let mut json = child.into_json();
    if let Some(obj) = json.as_object_mut() {
        obj.insert("apiVersion".to_owned(), Value::String(api_version.clone()));
        obj.insert("kind".to_owned(), Value::String(kind.clone()));
    }
    (key, Arc::new(json))
}

/// Where the store keeps `child`.
fn key_of(child: &ObjectMeta) -> (String, String) {
    (
        child.namespace.clone().unwrap_or_default(),
        child.name.clone().unwrap_or_default(),
    )
}

impl Watch {
    fn abort(&self) {
        self.task.abort();
        self.names.abort();
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// The running member watches.
#[derive(Debug, Default)]
pub struct DriftWatches {
    routes: Routes,
    running: Mutex<HashMap<(String, String), Watch>>,
}

/// A watch's key: the member, and the kind as `group/version/Kind`.
fn key(member: &str, kind: &GroupVersionKind) -> (String, String) {
    (
        member.to_owned(),
        format!("{}/{}/{}", kind.group, kind.version, kind.kind),
    )
}

/// The kind `ar` serves.
pub fn kind_of(ar: &ApiResource) -> GroupVersionKind {
    GroupVersionKind::gvk(&ar.group, &ar.version, &ar.kind)
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
        let key = key(member, &kind_of(ar));
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if running
            .get(&key)
            .is_some_and(|w| !w.task.is_finished() && w.names.is_running())
        {
            return;
        }
        if let Some(old) = running.remove(&key) {
            old.abort();
        }
        let api = Api::<LeanObject>::all_with(client.clone(), ar);
        let config = watcher::Config::default()
            .labels(&format!("{CLUSTER_LABEL}={}", labels::label_value(member)));
        let routes = self.routes.clone();
        let what = format!("{} on {member}", ar.kind);
        let names = NameWatch::start(client, ar, member, what.clone());
        let store: Arc<RwLock<Objects>> = Arc::default();
        let shared = store.clone();
        let type_meta = (ar.api_version.clone(), ar.kind.clone());
        let (synced, ready) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut events = watcher(api, config).default_backoff().boxed();
            // A relist builds the store afresh and swaps it in whole, so
            // children deleted while the watch was broken do not linger.
            let mut relisting: Option<Objects> = None;
            // The first list re-queues nobody: it was started by an
            // instance pass, and every instance gets one when its
            // controller starts or a member changes. A later list (the
            // watch broke) does: changes made meanwhile arrive only so.
            let mut listed_once = false;
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(child)) => {
                        routes.send(&child.metadata);
                        let (key, json) = stored(child, &type_meta);
                        if let Ok(mut m) = shared.write() {
                            m.insert(key, json);
                        }
                    }
                    Ok(watcher::Event::Delete(child)) => {
                        routes.send(&child.metadata);
                        if let Ok(mut m) = shared.write() {
                            m.remove(&key_of(&child.metadata));
                        }
                    }
                    Ok(watcher::Event::InitApply(child)) => {
                        if listed_once {
                            routes.send(&child.metadata);
                        }
                        let (key, json) = stored(child, &type_meta);
                        if let Some(m) = relisting.as_mut() {
                            m.insert(key, json);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let (Some(fresh), Ok(mut m)) = (relisting.take(), shared.write()) {
                            *m = fresh;
                        }
                        listed_once = true;
                        synced.send_replace(true);
                    }
                    Ok(watcher::Event::Init) => relisting = Some(Objects::default()),
                    // The watcher backs off and retries by itself; a member
                    // that is down is the Cluster controller's to report.
                    Err(error) => tracing::debug!(watch = %what, %error, "member watch error"),
                }
            }
        });
        running.insert(
            key,
            Watch {
                task,
                store,
                ready,
                names,
            },
        );
    }

    /// The child `namespace/name` of kind `ar` on `member` as the watch last
    /// saw it: `Some(None)` when it does not exist, `None` when no watch has
    /// listed that kind there yet (then the caller asks the member).
    pub fn cached(
        &self,
        member: &str,
        kind: &GroupVersionKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Option<Arc<Value>>> {
        let running = self.running.lock().ok()?;
        let watch = running.get(&key(member, kind))?;
        if watch.task.is_finished() || !*watch.ready.borrow() {
            return None;
        }
        let objects = watch.store.read().ok()?;
        Some(
            objects
                .get(&(namespace.unwrap_or_default().to_owned(), name.to_owned()))
                .cloned(),
        )
    }

    /// The children labelled with instance `uid` of `kind` on `member`, as
    /// (namespace, name, resourceVersion), once the watch has listed
    /// them: at most `wait` is spent waiting for its first list. `None`
    /// when no watch lists that kind there (or not in time).
    pub async fn children_of(
        &self,
        member: &str,
        kind: &GroupVersionKind,
        uid: &str,
        wait: Duration,
    ) -> Option<Vec<(String, String, String)>> {
        let (mut ready, store) = {
            let running = self.running.lock().ok()?;
            let watch = running.get(&key(member, kind))?;
            if watch.task.is_finished() {
                return None;
            }
            (watch.ready.clone(), watch.store.clone())
        };
        tokio::time::timeout(wait, ready.wait_for(|r| *r))
            .await
            .ok()?
            .ok()?;
        let objects = store.read().ok()?;
        Some(
            objects
                .of_instance(uid)
                .map(|((ns, name), child)| {
                    let version = child
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    (ns.clone(), name.clone(), version.to_owned())
                })
                .collect(),
        )
    }

    /// Who holds the name `namespace/name` of kind `ar` on `member`: one
    /// of the hub's children there (from the drift store), an object the
    /// hub did not make there (from the name index, see [`super::names`]),
    /// or nobody. When the watches are still listing, waits for their first
    /// lists (at most `wait`): a hub that starts on a fleet of converged
    /// instances then reads every child from one list per kind and member
    /// instead of asking for each one. `None` when it cannot tell (then the
    /// caller asks the member).
    pub async fn lookup(
        &self,
        member: &str,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        wait: Duration,
    ) -> Option<Lookup> {
        let (mut children, mut names) = {
            let running = self.running.lock().ok()?;
            let watch = running.get(&key(member, &kind_of(ar)))?;
            if watch.task.is_finished() || !watch.names.is_running() {
                return None;
            }
            (watch.ready.clone(), watch.names.ready())
        };
        // An error means a watch ended: then the caller asks the member.
        let synced = async {
            children.wait_for(|r| *r).await.ok()?;
            names.wait_for(|r| *r).await.ok()
        };
        tokio::time::timeout(wait, synced).await.ok()??;
        if let Some(child) = self.cached(member, &kind_of(ar), namespace, name)? {
            return Some(Lookup::Child(child));
        }
        let running = self.running.lock().ok()?;
        running
            .get(&key(member, &kind_of(ar)))?
            .names
            .holder(namespace, name)
    }

    /// Keeps a child the hub has just applied on `member` until its watch
    /// event arrives, so a pass that follows at once reads it instead of
    /// applying it again. An entry the watch already holds is left alone:
    /// it may be newer.
    pub fn applied(
        &self,
        member: &str,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        object: &Arc<Value>,
    ) {
        if let Ok(running) = self.running.lock()
            && let Some(watch) = running.get(&key(member, &kind_of(ar)))
            && let Ok(mut objects) = watch.store.write()
        {
            objects.insert_absent(
                (namespace.unwrap_or_default().to_owned(), name.to_owned()),
                object,
            );
        }
    }

    /// Stops every watch on `member` (its client changed or it is gone).
    pub fn stop_member(&self, member: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.retain(|(m, _), watch| {
                if m == member {
                    watch.abort();
                    false
                } else {
                    true
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_child_is_stored_with_its_type_and_without_managed_fields() {
        let listed: LeanObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "apps", "uid": "u",
                "managedFields": [{"manager": "kro-hub", "operation": "Apply"}]},
            "spec": {"ports": [{"port": 80}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let ((ns, name), json) = stored(listed, &("v1".to_owned(), "Service".to_owned()));
        assert_eq!((ns.as_str(), name.as_str()), ("apps", "a"));
        let desired = serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}});
        assert!(crate::instance::is_subset(&desired, &json), "{json}");
        assert_eq!(json.pointer("/metadata/managedFields"), None);
    }

    fn child(name: &str, uid: &str, version: &str) -> Arc<Value> {
        Arc::new(
            serde_json::json!({"metadata": {"name": name, "namespace": "apps",
            "resourceVersion": version, "labels": {super::super::INSTANCE_UID_LABEL: uid}}}),
        )
    }

    fn names_of(objects: &Objects, uid: &str) -> Vec<String> {
        let mut names: Vec<String> = objects
            .of_instance(uid)
            .map(|((_, name), _)| name.clone())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn children_are_found_by_their_instance_through_every_change() {
        let key = |name: &str| ("apps".to_owned(), name.to_owned());
        let mut objects = Objects::default();
        objects.insert(key("a"), child("a", "u1", "1"));
        objects.insert(key("b"), child("b", "u1", "2"));
        objects.insert(key("c"), child("c", "u2", "3"));
        assert_eq!(names_of(&objects, "u1"), ["a", "b"]);
        // A newer version stays indexed; a name taken over by another
        // instance moves.
        objects.insert(key("a"), child("a", "u1", "4"));
        objects.insert(key("b"), child("b", "u2", "5"));
        assert_eq!(names_of(&objects, "u1"), ["a"]);
        assert_eq!(names_of(&objects, "u2"), ["b", "c"]);
        // What a pass applied does not replace what the watch holds.
        objects.insert_absent(key("a"), &child("a", "u3", "0"));
        assert_eq!(names_of(&objects, "u1"), ["a"]);
        assert!(names_of(&objects, "u3").is_empty());
        objects.remove(&key("a"));
        objects.remove(&key("c"));
        assert!(names_of(&objects, "u1").is_empty());
        assert_eq!(names_of(&objects, "u2"), ["b"]);
        assert!(!objects.by_instance.contains_key("u1"), "no empty entries");
    }
}

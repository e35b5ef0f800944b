//! `Instances<T>`: a typed client for the instances of one resource graph.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::ResourceGraph;
use crate::error::Error;
use crate::placement::ClusterStatus;
use crate::ready::{not_ready, not_ready_on, ready_on, ready_status};

/// Field manager of the SDK's server-side applies.
pub const FIELD_MANAGER: &str = "kro-sdk";

/// How often the waits look at the instance: soon at first, then backing
/// off so a long wait costs about one GET a second.
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    pub(crate) fn new() -> Self {
        Self(Self::FIRST)
    }

    /// Sleeps for the next interval, never past `deadline`.
    pub(crate) async fn sleep(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(self.0.min(left)).await;
        self.0 = (self.0 * 2).min(Self::MAX);
    }
}

/// A change to an instance, from [`Instances::watch`].
#[derive(Debug, Clone)]
pub enum InstanceEvent<T> {
    /// The instance was created or changed (or listed when the watch (re)started).
    Applied(T),
    /// The instance was deleted.
    Deleted(T),
}

/// Create, read, update, delete, watch and wait for instances of `T`.
#[derive(Debug, Clone)]
pub struct Instances<T: ResourceGraph> {
    api: Api<T>,
}

impl<T: ResourceGraph<Scope = NamespaceResourceScope>> Instances<T> {
    /// Instances in namespace `namespace`.
    pub fn namespaced(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
        }
    }
}

impl<T: ResourceGraph> Instances<T> {
    /// Instances of a cluster-scoped kind, or of every namespace (to list
    /// and watch; creating needs a namespace).
    pub fn all(client: Client) -> Self {
        Self {
            api: Api::all(client),
        }
    }

    /// The underlying `kube::Api`.
    pub fn api(&self) -> &Api<T> {
        &self.api
    }

    /// Creates `instance`; fails if it exists.
    pub async fn create(&self, instance: &T) -> Result<T, Error> {
        self.api
            .create(&PostParams::default(), instance)
            .await
            .map_err(Error::kube(format!(
                "create {}",
                instance.meta().name.as_deref().unwrap_or("")
            )))
    }

    /// Creates or updates `instance` by server-side apply of its metadata
    /// (name, labels, annotations) and spec.
    pub async fn apply(&self, instance: &T) -> Result<T, Error> {
        let name = instance.meta().name.clone().unwrap_or_default();
        let mut metadata = json!({"name": name});
        if let Some(labels) = &instance.meta().labels {
            metadata["labels"] = json!(labels);
        }
        if let Some(annotations) = &instance.meta().annotations {
            metadata["annotations"] = json!(annotations);
        }
        let body = json!({
            "apiVersion": T::api_version(&()),
            "kind": T::kind(&()),
            "metadata": metadata,
            "spec": encode(instance.spec(), &name)?,
        });
        self.api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::kube(format!("apply {name}")))
    }

    /// The instance named `name`.
    pub async fn get(&self, name: &str) -> Result<T, Error> {
        self.api
            .get(name)
            .await
            .map_err(Error::kube(format!("get {name}")))
    }

    /// The instance named `name`, or `None` if there is none.
    pub async fn get_opt(&self, name: &str) -> Result<Option<T>, Error> {
        self.api
            .get_opt(name)
            .await
            .map_err(Error::kube(format!("get {name}")))
    }

    /// Every instance in scope.
    pub async fn list(&self) -> Result<Vec<T>, Error> {
        Ok(self
            .api
            .list(&ListParams::default())
            .await
            .map_err(Error::kube("list"))?
            .items)
    }

    /// Replaces the spec of `name` (a JSON merge patch of the whole spec:
    /// `None` fields are removed).
    pub async fn patch_spec(&self, name: &str, spec: &T::Spec) -> Result<T, Error> {
        let body = json!({"spec": encode(spec, name)?});
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(Error::kube(format!("patch spec of {name}")))
    }

    /// Deletes `name`; deleting an instance that does not exist succeeds.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::kube(format!("delete {name}"))(e)),
        }
    }

    /// Typed changes to the instances in scope; the stream restarts itself
    /// after watch errors, which it also yields.
    pub fn watch(&self) -> impl Stream<Item = Result<InstanceEvent<T>, Error>> + Send + 'static {
        watcher(self.api.clone(), watcher::Config::default()).filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    Some(Ok(InstanceEvent::Applied(o)))
                }
                Ok(watcher::Event::Delete(o)) => Some(Ok(InstanceEvent::Deleted(o))),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                Err(e) => Some(Err(Error::Watch(e))),
            }
        })
    }

    /// Waits until `name` is Ready for its current generation and returns
    /// its typed status (for a placed graph, the values folded over the
    /// clusters). A placed instance must also be Ready on every selected
    /// member cluster at that generation: a stale entry (a cluster that
    /// stopped answering) or one of an older generation never counts.
    /// On timeout, [`Error::NotReady`] carries what the hub says it waits
    /// for, with each member cluster that is not Ready and why;
    /// [`Error::Timeout`] means the hub never reported on it.
    pub async fn wait_ready(&self, name: &str, timeout: Duration) -> Result<T::Status, Error> {
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new();
        let mut last: Option<T> = None;
        loop {
            if let Some(obj) = self.get_opt(name).await? {
                if let Some(status) = ready_status(&obj) {
                    return Ok(status);
                }
                last = Some(obj);
            }
            if Instant::now() >= deadline {
                return Err(not_ready(name, last.as_ref(), timeout));
            }
            backoff.sleep(deadline).await;
        }
    }
}

impl<T: ResourceGraph> Instances<T> {
    /// Waits until the placed instance `name` is Ready on member cluster
    /// `cluster` at its current generation (never from a stale entry) and
    /// returns that cluster's entry, whose `values` are the RGD's status
    /// fields as evaluated there. On timeout, [`Error::NotReadyOn`] names
    /// the cluster, its state and the hub's message (or that the hub has no
    /// entry for it); [`Error::Timeout`] means the instance does not exist.
    pub async fn wait_ready_on(
        &self,
        name: &str,
        cluster: &str,
        timeout: Duration,
    ) -> Result<ClusterStatus<T::Status>, Error> {
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new();
        let mut last: Option<T> = None;
        loop {
            if let Some(obj) = self.get_opt(name).await? {
                if let Some(entry) = ready_on(&obj, cluster) {
                    return Ok(entry);
                }
                last = Some(obj);
            }
            if Instant::now() >= deadline {
                return Err(not_ready_on(name, cluster, last.as_ref(), timeout));
            }
            backoff.sleep(deadline).await;
        }
    }

    /// Waits until `name` exists and `done` holds for it, and returns it;
    /// for what readiness does not cover (a graph without `readyWhen` is
    /// Ready once its resources are applied, before they are available).
    pub async fn wait_until(
        &self,
        name: &str,
        timeout: Duration,
        done: impl Fn(&T) -> bool,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new();
        let mut last = "the instance does not exist".to_owned();
        loop {
            if let Some(obj) = self.get_opt(name).await? {
                if done(&obj) {
                    return Ok(obj);
                }
                last = format!("status {:?}, {:?}", obj.status(), obj.kro_status());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("instance {name} to reach the awaited condition"),
                    timeout,
                    last,
                });
            }
            backoff.sleep(deadline).await;
        }
    }
}

fn encode<S: serde::Serialize>(spec: &S, name: &str) -> Result<Value, Error> {
    serde_json::to_value(spec).map_err(|source| Error::Decode {
        what: format!("spec of {name}"),
        source,
    })
}

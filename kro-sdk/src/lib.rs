//! The Rust SDK of kro-hub: define a resource graph as typed structs with
//! `#[derive(ResourceGraph)]` (checked by the kro engine at compile time),
//! install its RGD, and create, watch and wait for its instances with types.
//!
//! ```
//! use kro_sdk::{ResourceGraph, ResourceStatus};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, Default)]
//! #[serde(rename_all = "camelCase")]
//! pub struct CacheStatus {
//!     #[kro(expr = "${deployment.status.availableReplicas}")]
//!     pub available_replicas: Option<i64>,
//! }
//!
//! /// A cache: one Deployment.
//! #[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
//! #[serde(rename_all = "camelCase")]
//! #[kro(status = CacheStatus, resource(id = "deployment", inline = r#"
//! apiVersion: apps/v1
//! kind: Deployment
//! metadata: {name: "${schema.spec.name}"}
//! spec:
//!   replicas: ${schema.spec.replicas}
//!   selector: {matchLabels: {app: "${schema.spec.name}"}}
//!   template:
//!     metadata: {labels: {app: "${schema.spec.name}"}}
//!     spec: {containers: [{name: cache, image: "redis:7"}]}
//! "#))]
//! pub struct CacheSpec {
//!     pub name: String,
//!     #[kro(default = 1, minimum = 1)]
//!     pub replicas: i64,
//! }
//!
//! // The kind type is `Cache`, usable with `kube::Api<Cache>` or `Instances<Cache>`.
//! let cache = Cache::new("c1", CacheSpec { name: "c1".into(), replicas: 2 });
//! let json = serde_json::to_value(&cache).unwrap();
//! assert_eq!(json["apiVersion"], "kro.run/v1alpha1");
//! assert_eq!(json["kind"], "Cache");
//! assert_eq!(Cache::rgd().name(), "cache");
//! ```
//!
//! With a cluster (see [`Instances`] and [`install_rgd`]):
//!
//! ```no_run
//! # use kro_sdk::{Instances, ResourceGraph};
//! # async fn run<T: ResourceGraph<Scope = kro_sdk::__private::NamespaceResourceScope>>(client: kube::Client, app: T) -> Result<(), kro_sdk::Error> {
//! use std::time::Duration;
//! kro_sdk::install_rgd::<T>(&client, Duration::from_secs(60)).await?;
//! let instances = Instances::<T>::namespaced(client, "default");
//! instances.apply(&app).await?;
//! let status: T::Status = instances.wait_ready("my-app", Duration::from_secs(120)).await?;
//! # let _ = status; Ok(()) }
//! ```

//!
//! # Placed instances
//!
//! A graph with `#[kro(placement(...))]` (see the derive's documentation)
//! is applied by the hub on member clusters. The kind type then exposes what
//! the hub reports per cluster, typed with the graph's status type:
//! [`ResourceGraph::clusters`], [`ResourceGraph::cluster`] (a
//! [`ClusterStatus`] with its [`ClusterState`], message, `n/m` resources
//! ready, generation, `values` and whether the entry is stale),
//! [`ResourceGraph::placement`] ([`PlacementCounts`]) and
//! [`ResourceGraph::is_ready_on`]. [`Instances::wait_ready`] waits until the
//! instance is Ready on every selected cluster at its current generation,
//! and [`Instances::wait_ready_on`] until it is Ready on one; a stale entry
//! (a member that stopped answering) or one of an older generation never
//! counts, and a timeout names each cluster that is not Ready and why.
//!
//! ```no_run
//! # use kro_sdk::{Instances, ResourceGraph};
//! # async fn run<T: ResourceGraph>(instances: Instances<T>) -> Result<(), kro_sdk::Error> {
//! use std::time::Duration;
//! let eu = instances.wait_ready_on("web", "eu-1", Duration::from_secs(120)).await?;
//! println!("{} on eu-1: {:?}", eu.state, eu.values);
//! let web = instances.get("web").await?;
//! for cluster in web.clusters() {
//!     println!("{}: {} ({})", cluster.name, cluster.state, cluster.message);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

// Lets this crate's own tests use the derives, whose output names `::kro_sdk`.
extern crate self as kro_sdk;

mod error;
mod install;
mod instance;
mod placement;
mod ready;
mod status;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ClusterNotReady, Error};
pub use install::install_rgd;
pub use instance::{InstanceEvent, Instances};
pub use kro_core::rgd::{Condition, ResourceGraphDefinition};
pub use kro_derive::{ResourceGraph, ResourceStatus, SimpleSchema};
pub use placement::{ClusterState, ClusterStatus, PlacementCounts};
pub use status::{InstanceStatus, NoStatus};

/// The kro engine, for callers that want to compile or render graphs.
pub use kro_core as core;

#[doc(hidden)]
pub use kro_derive::__check;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Implemented by `#[derive(SimpleSchema)]` and `#[derive(ResourceStatus)]`:
/// the types a resource graph may use besides the built-in ones.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is used in a resource graph but does not derive kro_sdk::SimpleSchema or kro_sdk::ResourceStatus",
    label = "add #[derive(SimpleSchema)] (spec types) or #[derive(ResourceStatus)] (status types) to `{Self}`, in the module this path names"
)]
pub trait GraphType {}

/// What `#[derive(ResourceGraph)]` implements on the kind type: its RGD and
/// typed access to spec and status.
pub trait ResourceGraph:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The spec struct the derive was put on.
    type Spec: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync;
    /// The status struct (`NoStatus` when the graph declares none).
    type Status: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync;

    /// The RGD as JSON, as checked at compile time.
    fn rgd_json() -> &'static str;

    /// The RGD as YAML.
    fn rgd_yaml() -> &'static str;

    /// The RGD object.
    fn rgd() -> ResourceGraphDefinition {
        // The derive only emits JSON that kro-core parsed and compiled while
        // the crate was built, so a failure here is a bug in the derive.
        #[allow(clippy::expect_used)]
        serde_json::from_str(Self::rgd_json()).expect("the derive emits a valid RGD")
    }

    /// A new instance named `name`.
    fn new(name: &str, spec: Self::Spec) -> Self;

    /// The instance spec.
    fn spec(&self) -> &Self::Spec;

    /// The RGD's status fields, once the hub wrote them.
    fn status(&self) -> Option<&Self::Status>;

    /// kro's `state` and conditions (and, for a placed graph, the
    /// per-cluster entries and counts), once the hub wrote them.
    fn kro_status(&self) -> Option<&InstanceStatus<Self::Status>>;

    /// The per-cluster entries of a placed instance, each with the RGD's
    /// status fields as evaluated on that cluster; empty otherwise.
    fn clusters(&self) -> &[ClusterStatus<Self::Status>] {
        self.kro_status().map_or(&[], |k| k.clusters())
    }

    /// The entry of member cluster `name`.
    fn cluster(&self, name: &str) -> Option<&ClusterStatus<Self::Status>> {
        self.kro_status().and_then(|k| k.cluster(name))
    }

    /// The counts over the selected clusters of a placed instance.
    fn placement(&self) -> Option<&PlacementCounts> {
        self.kro_status().and_then(InstanceStatus::placement)
    }

    /// Whether the instance is Ready on member cluster `name` at its current
    /// generation (never from a stale entry).
    fn is_ready_on(&self, name: &str) -> bool {
        self.cluster(name)
            .is_some_and(|c| c.is_ready_at(self.meta().generation))
    }
}

/// Not public API: what the generated code calls.
#[doc(hidden)]
pub mod __private {
    pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    pub use kube;
    pub use kube::core::{ClusterResourceScope, NamespaceResourceScope};
    pub use serde;

    use serde::de::Error as _;
    use serde::ser::{Error as _, SerializeMap};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use crate::{InstanceStatus, ResourceGraph};

    #[derive(Deserialize)]
    #[serde(bound = "S: serde::de::DeserializeOwned")]
    struct Raw<S> {
        #[serde(default)]
        metadata: ObjectMeta,
        spec: S,
        #[serde(default)]
        status: Option<Value>,
    }

    /// Serializes an instance with its apiVersion and kind.
    pub fn serialize_instance<T: ResourceGraph, S: Serializer>(
        serializer: S,
        metadata: &ObjectMeta,
        spec: &T::Spec,
        status: Option<&T::Status>,
    ) -> Result<S::Ok, S::Error> {
        let status = status
            .map(serde_json::to_value)
            .transpose()
            .map_err(S::Error::custom)?;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("apiVersion", &T::api_version(&()))?;
        map.serialize_entry("kind", &T::kind(&()))?;
        map.serialize_entry("metadata", metadata)?;
        map.serialize_entry("spec", spec)?;
        if let Some(status) = status.filter(|s| s.as_object().is_none_or(|m| !m.is_empty())) {
            map.serialize_entry("status", &status)?;
        }
        map.end()
    }

    /// The parts of an instance a kind type holds.
    pub type Parts<T> = (
        ObjectMeta,
        <T as ResourceGraph>::Spec,
        Option<<T as ResourceGraph>::Status>,
        Option<InstanceStatus<<T as ResourceGraph>::Status>>,
    );

    /// Deserializes an instance: the status object is read twice, as the
    /// RGD's typed status fields and as kro's state and conditions.
    pub fn deserialize_instance<'de, T: ResourceGraph, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Parts<T>, D::Error> {
        let raw = Raw::<T::Spec>::deserialize(deserializer)?;
        let (status, kro) = match raw.status {
            Some(v) if !v.is_null() => (
                Some(T::Status::deserialize(&v).map_err(D::Error::custom)?),
                Some(InstanceStatus::<T::Status>::deserialize(&v).map_err(D::Error::custom)?),
            ),
            _ => (None, None),
        };
        Ok((raw.metadata, raw.spec, status, kro))
    }

    impl Serialize for crate::NoStatus {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_map(Some(0))?.end()
        }
    }
}

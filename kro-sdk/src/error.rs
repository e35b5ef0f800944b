//! The one error type of the SDK.

use std::fmt;
use std::time::Duration;

use crate::ClusterState;

/// Why an instance is not Ready on one member cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNotReady {
    /// Member cluster name.
    pub cluster: String,
    /// Its state; `None` when the hub has no entry for the cluster.
    pub state: Option<ClusterState>,
    /// What the hub says it waits for there, and whether the entry is
    /// stale or of an older generation.
    pub message: String,
}

impl fmt::Display for ClusterNotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.as_ref().map_or("no entry", ClusterState::as_str);
        write!(f, "cluster {} ({state}): {}", self.cluster, self.message)
    }
}

/// Everything the SDK's cluster operations can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What the SDK was doing.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The watch on instances failed (it restarts by itself).
    #[error("watch: {0}")]
    Watch(#[source] kube::runtime::watcher::Error),
    /// An object from the cluster does not match the typed model.
    #[error("{what}: {source}")]
    Decode {
        /// What was decoded.
        what: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The instance was still not ready when the timeout passed; the reason is
    /// the hub's `Ready` condition (and per-cluster messages when placed).
    #[error(
        "instance {name} not ready after {timeout:?} (state {state}): {reason}{}",
        fmt_clusters(clusters)
    )]
    NotReady {
        /// Instance name.
        name: String,
        /// kro's state, `IN_PROGRESS` or `ERROR`.
        state: String,
        /// The `Ready` condition's message: what the hub waits for.
        reason: String,
        /// Member clusters where the instance is not ready yet.
        clusters: Vec<ClusterNotReady>,
        /// How long we waited.
        timeout: Duration,
    },
    /// The instance was still not Ready on one member cluster when the
    /// timeout passed.
    #[error("instance {name} not ready after {timeout:?} on {cluster}")]
    NotReadyOn {
        /// Instance name.
        name: String,
        /// The cluster, its state and what the hub says about it.
        cluster: ClusterNotReady,
        /// How long we waited.
        timeout: Duration,
    },
    /// The RGD was rejected by the hub (state Inactive).
    #[error("RGD {name} is not active after {timeout:?}: {reason}")]
    RgdInactive {
        /// RGD name.
        name: String,
        /// The hub's reason.
        reason: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// Nothing conclusive was observed before the timeout (the object is
    /// missing, or the hub has not reported on it yet).
    #[error("timed out after {timeout:?} waiting for {what}; last seen: {last}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long.
        timeout: Duration,
        /// The last observation.
        last: String,
    },
}

fn fmt_clusters(clusters: &[ClusterNotReady]) -> String {
    clusters.iter().map(|c| format!("; {c}")).collect()
}

impl Error {
    pub(crate) fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Self::Kube { what, source }
    }
}

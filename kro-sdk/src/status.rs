//! kro's part of an instance's status: what the hub writes next to the
//! RGD's own status fields.

use serde::{Deserialize, Deserializer};

use kro_core::rgd::Condition;

use crate::placement::{ClusterStatus, PlacementCounts};

/// `state`, `conditions` and, for placed instances, `clusters` and
/// `placement` of an instance's status. `S` is the graph's status type,
/// which types each cluster's `values`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct InstanceStatus<S = serde_json::Value> {
    /// `ACTIVE`, `IN_PROGRESS`, `ERROR` or `DELETING`.
    #[serde(default)]
    pub state: Option<String>,
    /// Standard conditions; `Ready` says what the hub waits for.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// One entry per member cluster when the RGD has a placement.
    #[serde(default = "Vec::new")]
    pub clusters: Vec<ClusterStatus<S>>,
    /// Counts over the selected clusters when the RGD has a placement.
    #[serde(default)]
    pub placement: Option<PlacementCounts>,
}

// Written by hand: the derive would ask for `S: Default`.
impl<S> Default for InstanceStatus<S> {
    fn default() -> Self {
        Self {
            state: None,
            conditions: Vec::new(),
            clusters: Vec::new(),
            placement: None,
        }
    }
}

impl<S> InstanceStatus<S> {
    /// The condition of type `type_`.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether the `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }

    /// The per-cluster entries (empty unless the RGD has a placement).
    pub fn clusters(&self) -> &[ClusterStatus<S>] {
        &self.clusters
    }

    /// The entry of member cluster `name`.
    pub fn cluster(&self, name: &str) -> Option<&ClusterStatus<S>> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The counts over the selected clusters, when the RGD has a placement.
    pub fn placement(&self) -> Option<&PlacementCounts> {
        self.placement.as_ref()
    }

    /// Whether the hub reported this instance as placed on member clusters.
    pub fn is_placed(&self) -> bool {
        self.placement.is_some() || !self.clusters.is_empty()
    }

    /// Entries of selected clusters: all but those being removed from a
    /// cluster that is no longer selected.
    pub fn selected_clusters(&self) -> impl Iterator<Item = &ClusterStatus<S>> {
        self.clusters
            .iter()
            .filter(|c| c.state != crate::ClusterState::Deleting)
    }
}

/// The status type of a graph that declares no status fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoStatus;

impl<'de> Deserialize<'de> for NoStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(NoStatus)
    }
}

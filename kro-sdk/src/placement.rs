//! What the hub reports for an instance placed on member clusters:
//! `status.clusters` (one entry per member) and `status.placement` (counts).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use kro_core::rgd::Condition;

/// The state of an instance on one member cluster (`status.clusters[].state`).
///
/// States this SDK does not know (a newer hub) are kept as [`Other`](Self::Other)
/// rather than failing to decode the whole instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum ClusterState {
    /// Waiting for the cluster's turn: nothing applied there yet.
    #[default]
    Pending,
    /// Resources are being applied or are not ready yet.
    InProgress,
    /// Every resource is ready on the cluster.
    Ready,
    /// A resource failed on the cluster.
    Error,
    /// The cluster does not answer; the entry keeps its last values.
    Unreachable,
    /// The instance's copies are being removed from the cluster.
    Deleting,
    /// A state this SDK does not know.
    Other(String),
}

impl ClusterState {
    /// The state as the hub writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::InProgress => "InProgress",
            Self::Ready => "Ready",
            Self::Error => "Error",
            Self::Unreachable => "Unreachable",
            Self::Deleting => "Deleting",
            Self::Other(s) => s,
        }
    }

    /// Parses the hub's text; unknown text becomes [`Other`](Self::Other).
    pub fn parse(s: &str) -> Self {
        match s {
            "Pending" => Self::Pending,
            "InProgress" => Self::InProgress,
            "Ready" => Self::Ready,
            "Error" => Self::Error,
            "Unreachable" => Self::Unreachable,
            "Deleting" => Self::Deleting,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ClusterState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ClusterState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Self::parse(&s))
    }
}

/// An instance's status on one member cluster (`status.clusters[]`).
///
/// `S` is the graph's status type: `values` holds the RGD's status fields
/// as evaluated on that cluster, while the top-level status holds them
/// folded over all clusters. Status types decode partial objects already
/// (their fields are `Option`s), which is what a cluster reports while its
/// resources come up.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "S: Deserialize<'de>", serialize = "S: Serialize"))]
pub struct ClusterStatus<S = serde_json::Value> {
    /// Member cluster name.
    pub name: String,
    /// The instance's state on that cluster.
    #[serde(default)]
    pub state: ClusterState,
    /// What holds the cluster back, or that all is well.
    #[serde(default)]
    pub message: String,
    /// `ready/total` resources on the cluster; see
    /// [`resources_ready_counts`](Self::resources_ready_counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_ready: Option<String>,
    /// The instance generation last applied on the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The rollout revision the cluster runs, when the RGD has
    /// `spec.rollout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// The RGD's graph revision the cluster's copy was rendered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_revision: Option<i64>,
    /// The RGD's status fields as evaluated on the cluster.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub values: Option<S>,
    /// RFC 3339 time the cluster last answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// The entry is from an earlier pass because the cluster did not answer
    /// this time: its state and values may be out of date.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// Conditions on that cluster, when the hub reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

// serde's `default` on a generic field would otherwise ask for `S: Default`.
fn none<S>() -> Option<S> {
    None
}

impl<S> ClusterStatus<S> {
    /// Whether the instance is Ready on this cluster for `generation` (the
    /// instance's `metadata.generation`): the state is Ready, the entry is
    /// not stale and the cluster applied exactly that generation. With no
    /// generation known (an object not read from a cluster) any observed
    /// generation counts.
    pub fn is_ready_at(&self, generation: Option<i64>) -> bool {
        let current = generation.is_none_or(|g| self.observed_generation == Some(g));
        self.state == ClusterState::Ready && !self.stale && current
    }

    /// `resources_ready` as `(ready, total)`, when it is well formed.
    pub fn resources_ready_counts(&self) -> Option<(u32, u32)> {
        let (ready, total) = self.resources_ready.as_deref()?.split_once('/')?;
        Some((ready.trim().parse().ok()?, total.trim().parse().ok()?))
    }

    /// Why the entry does not count as Ready for `generation`, in words;
    /// `None` when it does.
    pub fn not_ready_reason(&self, generation: Option<i64>) -> Option<String> {
        if self.is_ready_at(generation) {
            return None;
        }
        let mut parts = Vec::new();
        if !self.message.is_empty() {
            parts.push(self.message.clone());
        }
        if let Some(r) = &self.resources_ready {
            parts.push(format!("{r} resources ready"));
        }
        if self.stale {
            let since = self
                .last_seen
                .as_deref()
                .map(|t| format!(" since {t}"))
                .unwrap_or_default();
            parts.push(format!("stale: the cluster has not answered{since}"));
        }
        if let Some(g) = generation
            && self.observed_generation != Some(g)
        {
            let seen = self
                .observed_generation
                .map_or_else(|| "none".to_owned(), |o| o.to_string());
            parts.push(format!("applied generation {seen}, instance is at {g}"));
        }
        if parts.is_empty() {
            parts.push(format!("state {}", self.state));
        }
        Some(parts.join("; "))
    }
}

/// Counts over an instance's selected clusters (`status.placement`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementCounts {
    /// Clusters the placement selects for this instance.
    #[serde(default)]
    pub selected: u32,
    /// Selected clusters Ready at the current generation.
    #[serde(default)]
    pub ready: u32,
    /// Selected clusters that do not answer.
    #[serde(default)]
    pub unreachable: u32,
    /// Selected clusters where a resource failed.
    #[serde(default)]
    pub error: u32,
    /// `ready/selected`, as the printer column shows it.
    #[serde(default)]
    pub summary: String,
}

impl PlacementCounts {
    /// Whether every selected cluster is Ready (vacuously when none is).
    pub fn all_ready(&self) -> bool {
        self.ready >= self.selected
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct WebStatus {
        available_replicas: Option<i64>,
        url: Option<String>,
    }

    #[test]
    fn states_round_trip_and_unknown_ones_are_kept() {
        for s in [
            "Pending",
            "InProgress",
            "Ready",
            "Error",
            "Unreachable",
            "Deleting",
        ] {
            let state: ClusterState = serde_json::from_value(json!(s)).unwrap();
            assert!(!matches!(state, ClusterState::Other(_)), "{s}");
            assert_eq!(serde_json::to_value(&state).unwrap(), json!(s));
        }
        let odd: ClusterState = serde_json::from_value(json!("Draining")).unwrap();
        assert_eq!(odd, ClusterState::Other("Draining".into()));
        assert_eq!(odd.to_string(), "Draining");
    }

    #[test]
    fn an_entry_decodes_with_typed_values() {
        let entry: ClusterStatus<WebStatus> = serde_json::from_value(json!({
            "name": "eu-1",
            "state": "Ready",
            "message": "all resources ready",
            "resourcesReady": "3/3",
            "observedGeneration": 4,
            "values": {"availableReplicas": 2, "url": "https://eu-1.example"},
            "lastSeen": "2025-01-01T10:00:00Z",
        }))
        .unwrap();
        assert_eq!(entry.state, ClusterState::Ready);
        assert_eq!(entry.resources_ready_counts(), Some((3, 3)));
        assert_eq!(
            entry.values.as_ref().and_then(|v| v.available_replicas),
            Some(2)
        );
        assert!(!entry.stale);
        assert!(entry.is_ready_at(Some(4)));
        assert_eq!(entry.not_ready_reason(Some(4)), None);
    }

    #[test]
    fn stale_and_old_generation_entries_are_never_ready() {
        let mut entry: ClusterStatus = serde_json::from_value(json!({
            "name": "us-1", "state": "Ready", "observedGeneration": 4,
            "lastSeen": "2025-01-01T10:00:00Z", "stale": true,
        }))
        .unwrap();
        assert!(!entry.is_ready_at(Some(4)));
        assert!(
            entry
                .not_ready_reason(Some(4))
                .unwrap()
                .contains("stale: the cluster has not answered since 2025-01-01T10:00:00Z")
        );
        entry.stale = false;
        assert!(entry.is_ready_at(Some(4)));
        assert!(!entry.is_ready_at(Some(5)));
        assert!(
            entry
                .not_ready_reason(Some(5))
                .unwrap()
                .contains("applied generation 4, instance is at 5")
        );
        entry.state = ClusterState::InProgress;
        assert!(!entry.is_ready_at(Some(4)));
    }

    #[test]
    fn a_minimal_entry_decodes() {
        let entry: ClusterStatus<WebStatus> =
            serde_json::from_value(json!({"name": "eu-2"})).unwrap();
        assert_eq!(entry.state, ClusterState::Pending);
        assert_eq!(entry.values, None);
        assert_eq!(entry.resources_ready_counts(), None);
        assert_eq!(
            entry.not_ready_reason(Some(1)).unwrap(),
            "applied generation none, instance is at 1"
        );
    }

    #[test]
    fn counts_say_whether_all_selected_are_ready() {
        let c: PlacementCounts = serde_json::from_value(
            json!({"selected": 3, "ready": 2, "unreachable": 1, "error": 0, "summary": "2/3"}),
        )
        .unwrap();
        assert!(!c.all_ready());
        assert_eq!(c.summary, "2/3");
        assert!(PlacementCounts::default().all_ready());
    }
}

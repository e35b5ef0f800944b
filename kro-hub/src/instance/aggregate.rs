//! One instance's status over its member clusters: the per-cluster entries
//! and the one rule that folds their values into the RGD's status fields at
//! the top level. Pure, so every rule is tested here.
//!
//! The rule: integers are summed (the replicas available over all
//! clusters), booleans are true only when true everywhere, and any other
//! value (strings, floats, lists) is kept only when every cluster agrees;
//! objects are folded field by field. Entries that are stale (their
//! cluster did not answer this time) take no part: their values are from
//! an earlier generation or an unreachable member.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Per-cluster states, as `status.clusters[].state`.
pub const READY: &str = "Ready";
/// Work is under way on the cluster.
pub const IN_PROGRESS: &str = "InProgress";
/// Waiting for the cluster's turn (nothing applied yet).
pub const PENDING: &str = "Pending";
/// A resource failed on the cluster.
pub const ERROR: &str = "Error";
/// The cluster does not answer.
pub const UNREACHABLE: &str = "Unreachable";
/// The instance's copies are being removed from the cluster.
pub const DELETING: &str = "Deleting";

/// `status.clusters[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEntry {
    /// The Cluster's name.
    pub name: String,
    /// One of the states above.
    pub state: String,
    /// What holds the cluster back, or that all is well.
    #[serde(default)]
    pub message: String,
    /// `ready/total` resources on the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_ready: Option<String>,
    /// The instance generation last applied there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The rollout revision the cluster runs (RGDs with `spec.rollout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// The RGD's graph revision the cluster's copy was rendered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_revision: Option<i64>,
    /// The RGD's status fields as evaluated on the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Value>,
    /// When the cluster last answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// The values are from an earlier pass: the cluster did not answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl ClusterEntry {
    /// Whether this entry counts as Ready for `generation`: never a stale
    /// one, never one from an older generation.
    pub fn ready_at(&self, generation: Option<i64>) -> bool {
        self.state == READY && !self.stale && self.observed_generation == generation
    }
}

/// The entries of `status.clusters`, as last written.
pub fn read_entries(status: Option<&Value>) -> Vec<ClusterEntry> {
    status
        .and_then(|s| s.get(kro_core::crd::CLUSTERS_STATUS_FIELD))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| serde_json::from_value(i.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The RGD's status fields folded over the fresh entries (see the module
/// docs); `{}` when no entry has values.
pub fn fold(entries: &[ClusterEntry]) -> Value {
    let values: Vec<&Value> = entries
        .iter()
        .filter(|e| !e.stale)
        .filter_map(|e| e.values.as_ref())
        .collect();
    fold_values(&values).unwrap_or_else(|| Value::Object(Map::new()))
}

fn fold_values(values: &[&Value]) -> Option<Value> {
    let first = values.first()?;
    if values.iter().all(|v| v.is_i64() || v.is_u64()) {
        let sum = values
            .iter()
            .filter_map(|v| v.as_i64())
            .fold(0i64, i64::saturating_add);
        return Some(Value::from(sum));
    }
    if values.iter().all(|v| v.is_boolean()) {
        return Some(Value::Bool(
            values.iter().all(|v| v.as_bool() == Some(true)),
        ));
    }
    if values.iter().all(|v| v.is_object()) {
        let mut keys: Vec<&String> = values
            .iter()
            .filter_map(|v| v.as_object())
            .flat_map(|m| m.keys())
            .collect();
        keys.sort();
        keys.dedup();
        let mut out = Map::new();
        for key in keys {
            // A field only some clusters report is folded over those.
            let field: Vec<&Value> = values.iter().filter_map(|v| v.get(key)).collect();
            if let Some(v) = fold_values(&field) {
                out.insert(key.clone(), v);
            }
        }
        return Some(Value::Object(out));
    }
    values.iter().all(|v| v == first).then(|| (*first).clone())
}

/// `status.placement`: counts over the selected clusters' entries.
pub fn counts(entries: &[ClusterEntry], selected: &[String], generation: Option<i64>) -> Value {
    let of = |name: &String| entries.iter().find(|e| &e.name == name);
    let ready = selected
        .iter()
        .filter(|n| of(n).is_some_and(|e| e.ready_at(generation)))
        .count();
    let unreachable = selected
        .iter()
        .filter(|n| of(n).is_some_and(|e| e.state == UNREACHABLE))
        .count();
    let error = selected
        .iter()
        .filter(|n| of(n).is_some_and(|e| e.state == ERROR))
        .count();
    serde_json::json!({
        "selected": selected.len(),
        "ready": ready,
        "unreachable": unreachable,
        "error": error,
        "summary": format!("{ready}/{}", selected.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(name: &str, state: &str, values: Value) -> ClusterEntry {
        ClusterEntry {
            name: name.to_owned(),
            state: state.to_owned(),
            observed_generation: Some(2),
            values: Some(values),
            ..ClusterEntry::default()
        }
    }

    #[test]
    fn integers_sum_booleans_all_true_others_when_all_agree() {
        let entries = [
            entry(
                "a",
                READY,
                json!({"availableReplicas": 2, "ready": true, "image": "web:1", "url": "a.example"}),
            ),
            entry(
                "b",
                READY,
                json!({"availableReplicas": 3, "ready": false, "image": "web:1", "url": "b.example"}),
            ),
        ];
        assert_eq!(
            fold(&entries),
            json!({"availableReplicas": 5, "ready": false, "image": "web:1"})
        );
        let mut stale = entry("c", UNREACHABLE, json!({"availableReplicas": 7}));
        stale.stale = true;
        let with_stale = [entries[0].clone(), stale];
        assert_eq!(fold(&with_stale)["availableReplicas"], 2);
        assert_eq!(fold(&[]), json!({}));
    }

    #[test]
    fn ready_counts_only_fresh_entries_of_the_current_generation() {
        let fresh = entry("a", READY, json!({}));
        let mut old = entry("b", READY, json!({}));
        old.observed_generation = Some(1);
        let mut stale = entry("c", READY, json!({}));
        stale.stale = true;
        let down = entry("d", UNREACHABLE, json!({}));
        let entries = [fresh, old, stale, down];
        let selected: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            counts(&entries, &selected, Some(2)),
            json!({"selected": 4, "ready": 1, "unreachable": 1, "error": 0, "summary": "1/4"})
        );
    }
}

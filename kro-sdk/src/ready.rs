//! When an instance counts as Ready, on the hub and on member clusters, and
//! the errors that say why it is not. Pure, so the waits' rules are tested
//! against fake statuses.

use std::time::Duration;

use crate::error::{ClusterNotReady, Error};
use crate::placement::ClusterStatus;
use crate::{InstanceStatus, ResourceGraph};

/// The status, if the instance is Ready for the generation it has now and,
/// when placed, on every selected member cluster at that generation.
pub(crate) fn ready_status<T: ResourceGraph>(obj: &T) -> Option<T::Status> {
    let kro = obj.kro_status()?;
    let ready = kro.condition("Ready")?;
    let generation = obj.meta().generation;
    let current = match (ready.observed_generation, generation) {
        (Some(seen), Some(now)) => seen >= now,
        _ => true,
    };
    // The hub's Ready condition already folds the clusters in; checking the
    // entries too keeps a condition written before a cluster went stale
    // from passing for Ready.
    let everywhere = clusters_not_ready(kro, generation).is_empty()
        && kro.placement().is_none_or(|p| p.all_ready());
    (ready.status == "True" && current && everywhere)
        .then(|| obj.status().cloned())
        .flatten()
}

/// The selected clusters where the instance is not Ready at `generation`.
fn clusters_not_ready<S>(kro: &InstanceStatus<S>, generation: Option<i64>) -> Vec<ClusterNotReady> {
    kro.selected_clusters()
        .filter_map(|c| {
            c.not_ready_reason(generation)
                .map(|message| ClusterNotReady {
                    cluster: c.name.clone(),
                    state: Some(c.state.clone()),
                    message,
                })
        })
        .collect()
}

/// The instance's entry for `cluster`, if it is Ready there at the
/// instance's current generation.
pub(crate) fn ready_on<T: ResourceGraph>(
    obj: &T,
    cluster: &str,
) -> Option<ClusterStatus<T::Status>> {
    obj.cluster(cluster)
        .filter(|c| c.is_ready_at(obj.meta().generation))
        .cloned()
}

fn missing(name: &str, what: String, timeout: Duration) -> Error {
    Error::Timeout {
        what,
        timeout,
        last: format!("instance {name} does not exist"),
    }
}

/// The error of a wait for Ready that timed out, from the last observation.
pub(crate) fn not_ready<T: ResourceGraph>(
    name: &str,
    last: Option<&T>,
    timeout: Duration,
) -> Error {
    let what = format!("instance {name} to become ready");
    let Some(obj) = last else {
        return missing(name, what, timeout);
    };
    let kro = obj.kro_status();
    let Some(ready) = kro.and_then(|k| k.condition("Ready")) else {
        return Error::Timeout {
            what,
            timeout,
            last: "the hub has not reported a Ready condition yet".to_owned(),
        };
    };
    let reason = ready
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| ready.reason.clone())
        .unwrap_or_else(|| format!("Ready is {}", ready.status));
    let clusters = kro
        .map(|k| clusters_not_ready(k, obj.meta().generation))
        .unwrap_or_default();
    Error::NotReady {
        name: name.to_owned(),
        state: kro
            .and_then(|k| k.state.clone())
            .unwrap_or_else(|| "unknown".to_owned()),
        reason,
        clusters,
        timeout,
    }
}

/// The error of a wait for Ready on `cluster` that timed out.
pub(crate) fn not_ready_on<T: ResourceGraph>(
    name: &str,
    cluster: &str,
    last: Option<&T>,
    timeout: Duration,
) -> Error {
    let Some(obj) = last else {
        return missing(
            name,
            format!("instance {name} to become ready on {cluster}"),
            timeout,
        );
    };
    let generation = obj.meta().generation;
    let why = match obj.cluster(cluster) {
        Some(entry) => ClusterNotReady {
            cluster: cluster.to_owned(),
            state: Some(entry.state.clone()),
            message: entry
                .not_ready_reason(generation)
                .unwrap_or_else(|| "ready".to_owned()),
        },
        None => {
            let known: Vec<&str> = obj.clusters().iter().map(|c| c.name.as_str()).collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            ClusterNotReady {
                cluster: cluster.to_owned(),
                state: None,
                message: format!(
                    "the hub reports no entry for this cluster: it is not selected, or the hub \
                     has not reached it yet (entries: {known})"
                ),
            }
        }
    };
    Error::NotReadyOn {
        name: name.to_owned(),
        cluster: why,
        timeout,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    use super::*;
    use crate::{ClusterState, NoStatus, ResourceGraph, ResourceStatus};

    #[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct SpreadStatus {
        #[kro(expr = "${config.metadata.name}")]
        config_name: Option<String>,
    }

    /// A placed graph: its instances report per member cluster.
    #[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
    #[kro(
        status = SpreadStatus,
        placement(clusters = ["east", "west"]),
        resource(
            id = "config",
            inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: \"${schema.spec.name}\"}}"
        )
    )]
    struct SpreadSpec {
        name: String,
    }

    /// An unplaced graph without status fields.
    #[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
    #[kro(resource(
        id = "config",
        inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: \"${schema.spec.name}\"}}"
    ))]
    struct LocalSpec {
        name: String,
    }

    fn object(kind: &str, status: Value) -> Value {
        json!({
            "apiVersion": "kro.run/v1alpha1",
            "kind": kind,
            "metadata": {"name": "s", "generation": 2},
            "spec": {"name": "s"},
            "status": status,
        })
    }

    fn spread(status: Value) -> Spread {
        serde_json::from_value(object("Spread", status)).unwrap()
    }

    fn entry(name: &str, state: &str, generation: i64) -> Value {
        json!({"name": name, "state": state, "message": "", "resourcesReady": "1/1",
               "observedGeneration": generation, "values": {"configName": name},
               "lastSeen": "2025-01-01T10:00:00Z"})
    }

    fn ready_condition(status: &str) -> Value {
        json!([{"type": "Ready", "status": status, "observedGeneration": 2}])
    }

    #[test]
    fn placed_instance_is_ready_only_when_every_selected_cluster_is() {
        let all = spread(json!({
            "state": "ACTIVE", "conditions": ready_condition("True"), "configName": "s",
            "clusters": [entry("east", "Ready", 2), entry("west", "Ready", 2),
                         entry("old", "Deleting", 1)],
            "placement": {"selected": 2, "ready": 2, "unreachable": 0, "error": 0, "summary": "2/2"},
        }));
        assert_eq!(
            ready_status(&all),
            Some(SpreadStatus {
                config_name: Some("s".into())
            })
        );
        assert!(all.is_ready_on("east"));
        assert_eq!(all.placement().unwrap().summary, "2/2");
        assert_eq!(
            all.cluster("west")
                .and_then(|c| c.values.as_ref())
                .and_then(|v| v.config_name.as_deref()),
            Some("west")
        );

        // A Ready condition left over from before west went stale does not
        // make the instance ready.
        let mut west = entry("west", "Ready", 2);
        west["stale"] = json!(true);
        let stale = spread(json!({
            "conditions": ready_condition("True"),
            "clusters": [entry("east", "Ready", 2), west],
        }));
        assert!(ready_status(&stale).is_none());
        assert!(!stale.is_ready_on("west"));
        assert!(ready_on(&stale, "west").is_none());
        assert!(ready_on(&stale, "east").is_some());

        // Nor does an entry of the previous generation, or counts short of
        // the selection.
        let old = spread(json!({
            "conditions": ready_condition("True"),
            "clusters": [entry("east", "Ready", 2), entry("west", "Ready", 1)],
        }));
        assert!(ready_status(&old).is_none());
        let short = spread(json!({
            "conditions": ready_condition("True"),
            "clusters": [entry("east", "Ready", 2)],
            "placement": {"selected": 2, "ready": 1, "summary": "1/2"},
        }));
        assert!(ready_status(&short).is_none());
    }

    #[test]
    fn not_ready_names_each_member_that_is_not_ready() {
        let mut west = entry("west", "InProgress", 2);
        west["message"] = json!("waiting for config (readyWhen x is not true yet)");
        west["resourcesReady"] = json!("0/1");
        let s = spread(json!({
            "state": "IN_PROGRESS",
            "conditions": [{"type": "Ready", "status": "False", "observedGeneration": 2,
                            "message": "1 of 2 clusters ready"}],
            "clusters": [entry("east", "Ready", 2), west],
        }));
        assert!(ready_status(&s).is_none());
        let err = not_ready("s", Some(&s), Duration::from_secs(1));
        let Error::NotReady {
            clusters, reason, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(reason, "1 of 2 clusters ready");
        assert_eq!(
            clusters,
            &[ClusterNotReady {
                cluster: "west".into(),
                state: Some(ClusterState::InProgress),
                message: "waiting for config (readyWhen x is not true yet); 0/1 resources ready"
                    .into(),
            }]
        );
        assert!(
            err.to_string()
                .contains("cluster west (InProgress): waiting for config")
        );
    }

    #[test]
    fn waiting_on_one_cluster_names_it_and_its_message() {
        let mut west = entry("west", "Error", 2);
        west["message"] = json!("config: admission webhook denied the request");
        let s = spread(json!({"clusters": [entry("east", "Ready", 2), west]}));
        let err = not_ready_on("s", "west", Some(&s), Duration::from_secs(3));
        assert_eq!(
            err.to_string(),
            "instance s not ready after 3s on cluster west (Error): config: admission webhook \
             denied the request; 1/1 resources ready"
        );

        let err = not_ready_on("s", "north", Some(&s), Duration::from_secs(3));
        let Error::NotReadyOn { cluster, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(cluster.state, None);
        assert!(cluster.message.contains("entries: east, west"), "{err}");

        let err = not_ready_on::<Spread>("s", "west", None, Duration::from_secs(3));
        assert!(
            err.to_string().contains("instance s does not exist"),
            "{err}"
        );
    }

    #[test]
    fn ready_of_an_older_generation_is_not_ready() {
        let local =
            |status: Value| -> Local { serde_json::from_value(object("Local", status)).unwrap() };
        let stale = local(json!({"state": "ACTIVE", "conditions": [
            {"type": "Ready", "status": "True", "observedGeneration": 1}]}));
        assert!(ready_status(&stale).is_none());
        let current = local(json!({"state": "ACTIVE", "conditions": ready_condition("True")}));
        assert_eq!(ready_status(&current), Some(NoStatus));
        assert!(current.clusters().is_empty());
        assert!(current.placement().is_none());
    }
}

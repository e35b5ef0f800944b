//! A graph placed on member clusters: what `placement(...)` and
//! `target = "Hub"` emit, and the typed per-cluster status of its
//! instances.

#![allow(clippy::unwrap_used)]

use kro_sdk::{ClusterState, ResourceGraph, ResourceStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EdgeStatus {
    #[kro(expr = "${deployment.status.availableReplicas}")]
    pub available_replicas: Option<i64>,
    #[kro(expr = "${deployment.metadata.name}")]
    pub deployment: Option<String>,
}

/// One Deployment per selected member cluster, and a ConfigMap on the hub
/// recording the instance.
#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
#[kro(
    status = EdgeStatus,
    placement(
        cluster_selector = "env=prod, region in (eu, us), !legacy",
        when = "${cluster.labels.region in schema.spec.regions}",
        on_deselect = "Orphan",
    ),
    resource(id = "deployment", inline = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: "${schema.spec.name}-${cluster.name}"}
spec:
  replicas: ${schema.spec.replicas}
  selector: {matchLabels: {app: "${schema.spec.name}"}}
  template:
    metadata: {labels: {app: "${schema.spec.name}"}}
    spec: {containers: [{name: edge, image: "nginx:1"}]}
"#),
    resource(id = "record", target = "Hub", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}-record"}
data: {owner: "${schema.spec.name}"}
"#)
)]
pub struct EdgeSpec {
    pub name: String,
    pub regions: Vec<String>,
    #[kro(default = 1)]
    pub replicas: i64,
}

/// Placed on named clusters, then on a list the instance gives.
#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    placement(clusters = ["eu-1", "us-1"]),
    resource(id = "config", inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: \"${schema.spec.name}\"}}")
)]
pub struct PinnedSpec {
    pub name: String,
}

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    placement(clusters = "${schema.spec.targets}"),
    resource(
        id = "config",
        inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: \"${schema.spec.name}\"}}"
    )
)]
pub struct ChosenSpec {
    pub name: String,
    pub targets: Vec<String>,
}

/// A bare `placement`: every member cluster.
#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    placement,
    resource(
        id = "config",
        inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: \"${schema.spec.name}\"}}"
    )
)]
pub struct EverywhereSpec {
    pub name: String,
}

#[test]
fn placement_and_target_are_part_of_the_rgd() {
    let rgd = serde_json::to_value(Edge::rgd()).unwrap();
    assert_eq!(
        rgd["spec"]["placement"],
        json!({
            "clusterSelector": {
                "matchLabels": {"env": "prod"},
                "matchExpressions": [
                    {"key": "region", "operator": "In", "values": ["eu", "us"]},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            },
            "when": "${cluster.labels.region in schema.spec.regions}",
            "onDeselect": "Orphan",
        })
    );
    assert_eq!(rgd["spec"]["resources"][1]["target"], "Hub");
    assert!(rgd["spec"]["resources"][0].get("target").is_none());
    let yaml = Edge::rgd_yaml();
    assert!(yaml.contains("placement:"), "{yaml}");
    assert!(yaml.contains("target: Hub"), "{yaml}");
    assert_eq!(kro_sdk::core::parse_rgd_yaml(yaml).unwrap(), Edge::rgd());

    let pinned = serde_json::to_value(Pinned::rgd()).unwrap();
    assert_eq!(
        pinned["spec"]["placement"],
        json!({"clusters": ["eu-1", "us-1"]})
    );
    let chosen = serde_json::to_value(Chosen::rgd()).unwrap();
    assert_eq!(
        chosen["spec"]["placement"],
        json!({"clusters": "${schema.spec.targets}"})
    );
    let everywhere = serde_json::to_value(Everywhere::rgd()).unwrap();
    assert_eq!(everywhere["spec"]["placement"], json!({}));
}

#[test]
fn instances_expose_typed_per_cluster_status() {
    let edge: Edge = serde_json::from_value(json!({
        "apiVersion": "kro.run/v1alpha1",
        "kind": "Edge",
        "metadata": {"name": "web", "namespace": "default", "generation": 3},
        "spec": {"name": "web", "regions": ["eu", "us"], "replicas": 2},
        "status": {
            "state": "IN_PROGRESS",
            "availableReplicas": 2,
            "conditions": [{"type": "Ready", "status": "False", "observedGeneration": 3,
                            "reason": "ClustersNotReady", "message": "1/3 clusters ready"}],
            "clusters": [
                {"name": "eu-1", "state": "Ready", "message": "", "resourcesReady": "2/2",
                 "observedGeneration": 3, "lastSeen": "2025-01-01T10:00:00Z",
                 "values": {"availableReplicas": 2, "deployment": "web-eu-1"}},
                {"name": "eu-2", "state": "InProgress",
                 "message": "waiting for deployment", "resourcesReady": "1/2",
                 "observedGeneration": 3, "lastSeen": "2025-01-01T10:00:00Z",
                 "values": {"deployment": "web-eu-2"}},
                {"name": "us-1", "state": "Unreachable", "message": "connection refused",
                 "resourcesReady": "2/2", "observedGeneration": 2,
                 "lastSeen": "2025-01-01T09:00:00Z", "stale": true,
                 "values": {"availableReplicas": 5, "deployment": "web-us-1"}},
            ],
            "placement": {"selected": 3, "ready": 1, "unreachable": 1, "error": 0,
                          "summary": "1/3"},
        },
    }))
    .unwrap();

    assert_eq!(edge.status.as_ref().unwrap().available_replicas, Some(2));
    assert_eq!(edge.clusters().len(), 3);
    let eu1 = edge.cluster("eu-1").unwrap();
    assert_eq!(eu1.state, ClusterState::Ready);
    assert_eq!(
        eu1.values.as_ref().unwrap(),
        &EdgeStatus {
            available_replicas: Some(2),
            deployment: Some("web-eu-1".into()),
        }
    );
    assert_eq!(eu1.resources_ready_counts(), Some((2, 2)));
    assert!(edge.is_ready_on("eu-1"));
    assert!(!edge.is_ready_on("eu-2"));
    // Stale and of an older generation: never ready, whatever it says.
    let us1 = edge.cluster("us-1").unwrap();
    assert!(us1.stale);
    assert!(!edge.is_ready_on("us-1"));
    assert!(!edge.is_ready_on("nowhere"));
    let counts = edge.placement().unwrap();
    assert_eq!(
        (counts.selected, counts.ready, counts.unreachable),
        (3, 1, 1)
    );
    assert!(!counts.all_ready());
}

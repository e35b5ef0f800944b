//! The placed graph: its RGD carries the placement and the hub resource,
//! the engine accepts it, and the typed per-cluster status reads as the
//! hub writes it (the hub with real members is tested elsewhere).

#![allow(clippy::unwrap_used)]

use kro_sdk::{ClusterState, ResourceGraph};
use kro_sdk_examples::edge::{EdgeApp, EdgeAppSpec, report};
use serde_json::json;

#[test]
fn the_rgd_places_the_deployment_and_keeps_the_record_on_the_hub() {
    let rgd = EdgeApp::rgd();
    let placement = serde_json::to_value(rgd.spec.placement.as_ref().unwrap()).unwrap();
    assert_eq!(
        placement,
        json!({
            "clusterSelector": {
                "matchLabels": {"env": "prod"},
                "matchExpressions": [{"key": "region", "operator": "Exists"}],
            },
            "when": "${cluster.labels.region in schema.spec.regions}",
            "onDeselect": "Delete",
        })
    );
    let targets: Vec<_> = rgd.spec.resources.iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [None, Some(kro_sdk::core::rgd::ResourceTarget::Hub)]
    );
    // The generated CRD has the per-cluster status the hub writes.
    let graph = kro_sdk::core::compile(&rgd).unwrap();
    let status = &graph.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        ["properties"];
    assert!(status.get("clusters").is_some(), "{status}");
    assert!(status.get("placement").is_some(), "{status}");
    assert!(status.get("rollout").is_some(), "{status}");
    // `rollout = "..."` became spec.rollout, validated by the engine.
    let rollout = graph.rollout().expect("the RGD has a rollout");
    let names: Vec<&str> = rollout.waves.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["eu", "rest"]);
    assert_eq!(rollout.min_ready_seconds, 10);
}

#[test]
fn the_report_reads_typed_per_cluster_status() {
    let app = EdgeApp::new(
        "web",
        EdgeAppSpec {
            name: "web".into(),
            image: "nginx:1.27".into(),
            replicas: 2,
            regions: vec!["eu".into(), "us".into()],
        },
    );
    let mut obj = serde_json::to_value(&app).unwrap();
    obj["metadata"]["generation"] = json!(2);
    obj["status"] = json!({
        "state": "IN_PROGRESS",
        "availableReplicas": 2,
        "conditions": [{"type": "Ready", "status": "False", "observedGeneration": 2}],
        "clusters": [
            {"name": "eu-1", "state": "Ready", "message": "", "resourcesReady": "1/1",
             "observedGeneration": 2, "values": {"availableReplicas": 2}},
            {"name": "us-1", "state": "Unreachable", "message": "no answer within 10s",
             "resourcesReady": "1/1", "observedGeneration": 2, "stale": true,
             "values": {"availableReplicas": 2}},
            {"name": "future", "state": "Quarantined", "message": "new hub state"},
        ],
        "placement": {"selected": 3, "ready": 1, "unreachable": 1, "error": 0,
                      "summary": "1/3"},
    });
    let app: EdgeApp = serde_json::from_value(obj).unwrap();
    assert_eq!(
        app.cluster("future").unwrap().state,
        ClusterState::Other("Quarantined".into())
    );
    assert_eq!(
        report(&app),
        "1/3 clusters ready\n\
         eu-1: Ready (ready), resources 1/1, 2 replicas\n\
         us-1: Unreachable (not ready), resources 1/1, 2 replicas, stale: no answer within 10s\n\
         future: Quarantined (not ready), resources ?, 0 replicas: new hub state\n"
    );
}

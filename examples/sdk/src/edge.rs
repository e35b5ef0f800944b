//! A web application placed on member clusters of the hub: a Deployment on
//! each production cluster in the regions the instance asks for, and a
//! ConfigMap on the hub recording it. Shows `placement(...)`,
//! `rollout = "..."`, `target = "Hub"` and the typed per-cluster status.

use std::fmt::Write as _;

use kro_sdk::{ResourceGraph, ResourceStatus};
use serde::{Deserialize, Serialize};

/// What the hub reports, per cluster and folded over the clusters
/// (replicas are summed).
#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EdgeAppStatus {
    /// Replicas serving traffic.
    #[kro(expr = "${deployment.status.availableReplicas}")]
    pub available_replicas: Option<i64>,
}

/// A web application on every production member in `regions`.
#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[kro(
    rgd = "edge-app",
    status = EdgeAppStatus,
    placement(
        cluster_selector = "env=prod, region",
        when = "${cluster.labels.region in schema.spec.regions}",
        on_deselect = "Delete",
    ),
    // A change reaches European members first, the rest once those have
    // been Ready for ten seconds.
    rollout = r#"
waves:
- {name: eu, clusterSelector: {matchLabels: {region: eu}}}
- {name: rest}
minReadySeconds: 10
"#,
    resource(id = "deployment", template = "templates/edge/deployment.yaml"),
    resource(id = "record", target = "Hub", template = "templates/edge/record.yaml")
)]
pub struct EdgeAppSpec {
    /// Name of the Deployment on each member.
    pub name: String,
    /// Container image.
    #[kro(default = "nginx:1.27")]
    pub image: String,
    /// Replicas per member cluster.
    #[kro(default = 1, minimum = 1)]
    pub replicas: i64,
    /// Regions (the `region` label of members) to run in.
    #[kro(min_items = 1)]
    pub regions: Vec<String>,
}

/// One line per member cluster: its state, resources, replicas and what
/// holds it back, as a dashboard would show it.
pub fn report(app: &EdgeApp) -> String {
    let mut out = String::new();
    if let Some(p) = app.placement() {
        let _ = writeln!(out, "{} clusters ready", p.summary);
    }
    for c in app.clusters() {
        let replicas = c
            .values
            .as_ref()
            .and_then(|v| v.available_replicas)
            .unwrap_or(0);
        let ready = if app.is_ready_on(&c.name) {
            "ready"
        } else {
            "not ready"
        };
        let _ = write!(
            out,
            "{}: {} ({ready}), resources {}, {replicas} replicas",
            c.name,
            c.state,
            c.resources_ready.as_deref().unwrap_or("?")
        );
        if c.stale {
            out.push_str(", stale");
        }
        if !c.message.is_empty() {
            let _ = write!(out, ": {}", c.message);
        }
        out.push('\n');
    }
    out
}

//! What a person sees of the hub, the one model behind `kro-hub status`,
//! the demo's live table and the web page (`ui`): the instances of every
//! RGD by cluster (one row per instance, one column per member,
//! `ready/selected` per row and the reason for anything not Ready), the
//! members with their health, and each RGD's graph in dependency layers.
//! Built only from instances, RGDs and Clusters: no Secret is ever read
//! here.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt as _};
use serde::Serialize;
use serde_json::Value;

use crate::rgd_controller::rgd_api_resource;

/// Errors of the view.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct ViewError {
    action: String,
    #[source]
    source: kube::Error,
}

/// One instance as the table shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `Kind namespace/name`.
    pub instance: String,
    /// `state` of the instance.
    pub state: String,
    /// `ready/selected`, or `-` for an RGD without placement.
    pub summary: String,
    /// Per member: its state for this instance, when it has an entry.
    pub cells: Vec<(String, String)>,
    /// Why it is not Ready, when it is not.
    pub reason: String,
}

/// The kind an Active RGD serves, for listing or watching its instances.
#[derive(Debug, Clone)]
pub struct InstanceKind {
    /// The RGD's name.
    pub rgd: String,
    /// The kind of its instances.
    pub kind: String,
    /// Where its instances are served.
    pub resource: ApiResource,
}

/// The instances' kind of `rgd`, when it is Active (before that its CRD
/// may not be served).
pub fn instance_kind(rgd: &DynamicObject) -> Option<InstanceKind> {
    let schema = &rgd.data["spec"]["schema"];
    let (Some(kind), Some(version)) = (schema["kind"].as_str(), schema["apiVersion"].as_str())
    else {
        return None;
    };
    if rgd.data.pointer("/status/state").and_then(Value::as_str) != Some("Active") {
        return None;
    }
    let group = schema["group"].as_str().unwrap_or("kro.run");
    let plural = schema["plural"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| kro_core::crd::pluralize(&kind.to_lowercase()));
    Some(InstanceKind {
        rgd: rgd.name_any(),
        kind: kind.to_owned(),
        resource: ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &plural,
        ),
    })
}

/// The rows of every instance of every Active RGD, in `namespace` when
/// given.
pub async fn rows(client: &Client, namespace: Option<&str>) -> Result<Vec<Row>, ViewError> {
    let rgds = Api::<DynamicObject>::all_with(client.clone(), &rgd_api_resource())
        .list(&Default::default())
        .await
        .map_err(|source| ViewError {
            action: "listing ResourceGraphDefinitions".to_owned(),
            source,
        })?;
    let mut out = Vec::new();
    for rgd in rgds.items {
        let Some(InstanceKind { kind, resource, .. }) = instance_kind(&rgd) else {
            continue;
        };
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let instances = match api.list(&Default::default()).await {
            Ok(l) => l.items,
            // A kind whose CRD is not served (yet): nothing to show.
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(source) => {
                return Err(ViewError {
                    action: format!("listing {kind} instances"),
                    source,
                });
            }
        };
        for inst in instances {
            out.push(row(&kind, &inst));
        }
    }
    out.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(out)
}

/// One instance of `kind` as a row.
pub fn row(kind: &str, inst: &DynamicObject) -> Row {
    let status = inst.data.get("status");
    let name = match inst.namespace() {
        Some(ns) => format!("{kind} {ns}/{}", inst.name_any()),
        None => format!("{kind} {}", inst.name_any()),
    };
    let cells = status
        .and_then(|s| s.get("clusters"))
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let mut state = e["state"].as_str().unwrap_or("?").to_owned();
                    if e["stale"] == true {
                        state.push_str(" (stale)");
                    }
                    (e["name"].as_str().unwrap_or("?").to_owned(), state)
                })
                .collect()
        })
        .unwrap_or_default();
    let ready = crate::conditions::read(status)
        .into_iter()
        .find(|c| c.type_ == "Ready");
    let reason = match &ready {
        Some(c) if !c.is_true() => c.message.chars().take(100).collect(),
        _ => String::new(),
    };
    Row {
        instance: name,
        state: status
            .and_then(|s| s.get("state"))
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned(),
        summary: status
            .and_then(|s| s.pointer("/placement/summary"))
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned(),
        cells,
        reason,
    }
}

impl Row {
    /// This instance's state on `member`, when it has an entry there.
    pub fn cell(&self, member: &str) -> Option<&str> {
        self.cells
            .iter()
            .find(|(name, _)| name == member)
            .map(|(_, state)| state.as_str())
    }
}

/// The member columns of a table of `rows`: every member seen in any row,
/// in name order.
pub fn columns(rows: &[Row]) -> Vec<String> {
    let members: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|(m, _)| m.as_str()))
        .collect();
    members.into_iter().map(str::to_owned).collect()
}

/// The rows as a table with one column per member seen in any row.
pub fn table(rows: &[Row]) -> String {
    let members = columns(rows);
    let mut header = vec![
        "INSTANCE".to_owned(),
        "STATE".to_owned(),
        "CLUSTERS".to_owned(),
    ];
    header.extend(members.iter().map(|m| m.to_uppercase()));
    header.push("WAITING FOR".to_owned());
    let mut lines: Vec<Vec<String>> = vec![header];
    for r in rows {
        let mut line = vec![r.instance.clone(), r.state.clone(), r.summary.clone()];
        for m in &members {
            line.push(r.cell(m).unwrap_or("-").to_owned());
        }
        line.push(r.reason.clone());
        lines.push(line);
    }
    aligned(&lines)
}

/// `lines` (the first is the header) in aligned columns.
fn aligned(lines: &[Vec<String>]) -> String {
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            lines
                .iter()
                .map(|l| l.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// A member as the views show it, read from its Cluster object alone
/// (never from its kubeconfig Secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberHealth {
    /// The Cluster's name.
    pub name: String,
    /// Its labels, which placement selects on.
    pub labels: BTreeMap<String, String>,
    /// Status of its `Ready` condition: `True`, `False` or `Unknown`.
    pub ready: String,
    /// Reason of that condition (`Reachable`, `Unreachable`, ...).
    pub reason: String,
    /// Message of that condition.
    pub message: String,
    /// `status.kubernetesVersion`, empty until probed.
    pub version: String,
    /// `spec.paused`: the hub makes no writes there.
    pub paused: bool,
    /// The Cluster is being deleted.
    pub deleting: bool,
}

impl MemberHealth {
    /// Whether the hub last found the member reachable.
    pub fn is_ready(&self) -> bool {
        self.ready == "True"
    }
}

/// The health of the member `cluster` describes.
pub fn member(cluster: &DynamicObject) -> MemberHealth {
    let ready = crate::conditions::read(cluster.data.get("status"))
        .into_iter()
        .find(|c| c.type_ == "Ready");
    MemberHealth {
        name: cluster.name_any(),
        labels: cluster.labels().clone(),
        ready: ready
            .as_ref()
            .map_or_else(|| "Unknown".to_owned(), |c| c.status.clone()),
        reason: ready.as_ref().map(|c| c.reason.clone()).unwrap_or_default(),
        message: ready.map(|c| c.message).unwrap_or_default(),
        version: cluster
            .data
            .pointer("/status/kubernetesVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        paused: cluster.data.pointer("/spec/paused") == Some(&Value::Bool(true)),
        deleting: cluster.metadata.deletion_timestamp.is_some(),
    }
}

/// The members as a table: name, ready (reason), version, labels.
pub fn members_table(members: &[MemberHealth]) -> String {
    let mut lines = vec![
        ["MEMBER", "READY", "VERSION", "LABELS"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for m in members {
        let mut ready = format!("{} ({})", m.ready, m.reason);
        if m.paused {
            ready.push_str(", paused");
        }
        if m.deleting {
            ready.push_str(", deleting");
        }
        let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.push(vec![
            m.name.clone(),
            ready,
            m.version.clone(),
            labels.join(","),
        ]);
    }
    aligned(&lines)
}

/// An RGD's resources in dependency layers: a resource's layer is one more
/// than the deepest of its dependencies, so every edge points to a later
/// layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    /// The RGD's name.
    pub name: String,
    /// The kind it serves.
    pub kind: String,
    /// `status.state` (`Active`, `Inactive`, ...).
    pub state: String,
    /// Why it is not Active, when it is not.
    pub reason: String,
    /// Its resources, in topological order.
    pub nodes: Vec<GraphNode>,
}

/// One resource of a [`Graph`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphNode {
    /// The resource id.
    pub id: String,
    /// Its layer, from 0 (no dependencies).
    pub layer: usize,
    /// The ids it depends on.
    pub dependencies: Vec<String>,
}

/// The graph of `rgd` as its status reports it (`topologicalOrder` and
/// each resource's `dependencies`, written by the hub from kro-core's
/// compiled graph), so the views never recompile an RGD. An RGD not yet
/// compiled has no nodes.
pub fn graph(rgd: &DynamicObject) -> Graph {
    let status = rgd.data.get("status");
    let mut dependencies: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut declared: Vec<&str> = Vec::new();
    for resource in status
        .and_then(|s| s.get("resources"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = resource["id"].as_str() else {
            continue;
        };
        declared.push(id);
        let deps = resource["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_str().map(str::to_owned))
            .collect();
        dependencies.insert(id, deps);
    }
    // Topological order first, then anything it lacks: a layer is computed
    // from the layers already placed, so a status that is not a DAG still
    // draws (its back edges just point left) instead of looping.
    let mut order: Vec<&str> = status
        .and_then(|s| s.get("topologicalOrder"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for id in declared {
        if !order.contains(&id) {
            order.push(id);
        }
    }
    let mut layers: BTreeMap<&str, usize> = BTreeMap::new();
    let mut nodes = Vec::new();
    for id in order {
        if layers.contains_key(id) {
            continue;
        }
        let deps = dependencies.remove(id).unwrap_or_default();
        let layer = deps
            .iter()
            .filter_map(|d| layers.get(d.as_str()))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        layers.insert(id, layer);
        nodes.push(GraphNode {
            id: id.to_owned(),
            layer,
            dependencies: deps,
        });
    }
    let ready = crate::conditions::read(status)
        .into_iter()
        .find(|c| c.type_ == "Ready");
    Graph {
        name: rgd.name_any(),
        kind: rgd.data["spec"]["schema"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        state: status
            .and_then(|s| s.get("state"))
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned(),
        reason: match ready {
            Some(c) if !c.is_true() => c.message,
            _ => String::new(),
        },
        nodes,
    }
}

/// Everything the live views show at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// The members, by name.
    pub members: Vec<MemberHealth>,
    /// Every RGD's graph, by name.
    pub graphs: Vec<Graph>,
    /// Every instance of every Active RGD, by instance.
    pub rows: Vec<Row>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_column_per_member_and_the_reason_for_what_is_not_ready() {
        let rows = [
            Row {
                instance: "Web apps/shop".to_owned(),
                state: "IN_PROGRESS".to_owned(),
                summary: "1/2".to_owned(),
                cells: vec![
                    ("eu-1".to_owned(), "Ready".to_owned()),
                    ("us-1".to_owned(), "Unreachable (stale)".to_owned()),
                ],
                reason: "waiting for cluster us-1".to_owned(),
            },
            Row {
                instance: "Web apps/blog".to_owned(),
                state: "ACTIVE".to_owned(),
                summary: "1/1".to_owned(),
                cells: vec![("eu-1".to_owned(), "Ready".to_owned())],
                reason: String::new(),
            },
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("INSTANCE"));
        assert!(lines[0].contains("EU-1") && lines[0].contains("US-1"));
        assert!(
            lines[1].contains("Unreachable (stale)")
                && lines[1].ends_with("waiting for cluster us-1")
        );
        assert!(lines[2].contains("Ready   -"), "{text}");
    }

    fn object(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).expect("a valid object")
    }

    #[test]
    fn layers_follow_dependencies_from_the_rgd_status() {
        let rgd = object(serde_json::json!({
            "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
            "metadata": {"name": "web"},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Web"}},
            "status": {
                "state": "Active",
                "topologicalOrder": ["site", "deployment", "service", "ingress"],
                "resources": [
                    {"id": "deployment", "dependencies": [{"id": "site"}]},
                    {"id": "site"},
                    {"id": "service", "dependencies": [{"id": "deployment"}]},
                    {"id": "ingress", "dependencies": [{"id": "service"}, {"id": "site"}]},
                ],
            },
        }));
        let g = graph(&rgd);
        let layers: Vec<(&str, usize)> = g.nodes.iter().map(|n| (n.id.as_str(), n.layer)).collect();
        assert_eq!(
            layers,
            [
                ("site", 0),
                ("deployment", 1),
                ("service", 2),
                ("ingress", 3)
            ]
        );
        assert_eq!(g.nodes[3].dependencies, ["service", "site"]);
        assert_eq!((g.kind.as_str(), g.state.as_str()), ("Web", "Active"));
        let kind = instance_kind(&rgd).expect("an Active RGD serves its kind");
        assert_eq!(kind.resource.plural, "webs");
        assert_eq!(kind.resource.api_version, "kro.run/v1alpha1");
    }

    #[test]
    fn a_status_that_is_not_a_dag_still_draws() {
        let rgd = object(serde_json::json!({
            "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
            "metadata": {"name": "odd"},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Odd"}},
            "status": {"state": "Inactive", "resources": [
                {"id": "a", "dependencies": [{"id": "b"}]},
                {"id": "b", "dependencies": [{"id": "a"}]},
            ], "conditions": [{"type": "Ready", "status": "False", "reason": "Invalid", "message": "cycle"}]},
        }));
        let g = graph(&rgd);
        assert_eq!(g.nodes.len(), 2);
        assert_eq!(g.reason, "cycle");
        assert!(
            instance_kind(&rgd).is_none(),
            "only Active RGDs serve instances"
        );
    }

    #[test]
    fn member_health_comes_from_the_cluster_status() {
        let cluster = object(serde_json::json!({
            "apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "us-1", "labels": {"env": "prod"}},
            "spec": {"kubeconfigSecretRef": {"namespace": "kro-system", "name": "us-1-kubeconfig"}, "paused": true},
            "status": {"kubernetesVersion": "v1.31.0", "conditions": [
                {"type": "Ready", "status": "False", "reason": "Unreachable", "message": "connection refused"}]},
        }));
        let m = member(&cluster);
        assert!(!m.is_ready() && m.paused && !m.deleting);
        assert_eq!(
            (m.reason.as_str(), m.version.as_str()),
            ("Unreachable", "v1.31.0")
        );
        let table = members_table(&[m]);
        assert!(
            table.lines().nth(1).is_some_and(|l| l.starts_with("us-1")
                && l.contains("False (Unreachable), paused")
                && l.ends_with("env=prod")),
            "{table}"
        );
    }
}

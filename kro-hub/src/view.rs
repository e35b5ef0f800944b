//! `kro-hub status`: the instances of every RGD by cluster, as a table a
//! person reads at a glance (one row per instance, one column per member,
//! `ready/selected` per row and the reason for anything not Ready), and the
//! members with their health. Reads only instances, RGDs and Clusters: no
//! Secret is ever read here.

use std::collections::BTreeSet;

use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt as _};
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
#[derive(Debug, Clone, PartialEq)]
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
        let schema = &rgd.data["spec"]["schema"];
        let (Some(kind), Some(version)) = (schema["kind"].as_str(), schema["apiVersion"].as_str())
        else {
            continue;
        };
        if rgd.data.pointer("/status/state").and_then(Value::as_str) != Some("Active") {
            continue;
        }
        let group = schema["group"].as_str().unwrap_or("kro.run");
        let plural = schema["plural"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| kro_core::crd::pluralize(&kind.to_lowercase()));
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &plural,
        );
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
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
            out.push(row(kind, &inst));
        }
    }
    out.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(out)
}

fn row(kind: &str, inst: &DynamicObject) -> Row {
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

/// The rows as a table with one column per member seen in any row.
pub fn table(rows: &[Row]) -> String {
    let members: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|(m, _)| m.as_str()))
        .collect();
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
            line.push(
                r.cells
                    .iter()
                    .find(|(name, _)| name == m)
                    .map_or_else(|| "-".to_owned(), |(_, s)| s.clone()),
            );
        }
        line.push(r.reason.clone());
        lines.push(line);
    }
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
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
}

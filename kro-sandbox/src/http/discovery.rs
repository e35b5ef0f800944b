//! Discovery documents: `/version`, `/api`, `/apis`, group and group-version resource lists.

use serde_json::{Value, json};

use super::Call;
use crate::state::Shared;

/// `/version`: a v1.32 server, as the conformance recording.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.6-kro-sandbox", "gitCommit": "kro-sandbox",
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "rust",
        "compiler": "rustc", "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn api_versions(call: &Call) -> Value {
    let host = call.header("host").unwrap_or("127.0.0.1").to_owned();
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})
}

fn group_entry(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`.
pub fn api_groups(sh: &Shared) -> Value {
    let cat = sh.catalog();
    let groups: Vec<Value> = cat.groups().map(|(g, vs)| group_entry(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn api_group(sh: &Shared, group: &str) -> Option<Value> {
    let cat = sh.catalog();
    let (g, vs) = cat.groups().find(|(g, _)| g == group)?;
    let mut e = group_entry(g, vs);
    e["kind"] = json!("APIGroup");
    e["apiVersion"] = json!("v1");
    Some(e)
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(sh: &Shared, group: &str, version: &str) -> Option<Value> {
    let cat = sh.catalog();
    if !cat.has_group_version(group, version) {
        return None;
    }
    let resources: Vec<Value> = cat
        .resources(group, version)
        .iter()
        .flat_map(|d| d.discovery_entries())
        .collect();
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let mut out = json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources});
    if !group.is_empty() {
        out["apiVersion"] = json!("v1");
    }
    Some(out)
}

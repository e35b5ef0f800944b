//! Discovery documents: `/version`, `/api`, `/apis`, group and group-version resource lists.

use axum::response::Response;
use serde_json::{Value, json};

use super::{Call, text_response};
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

/// `/openapi/v3` and its group-version documents.
///
/// Kubectl reads them to learn that the server validates fields itself (the PATCH operation
/// of each kind lists `fieldValidation`), and then skips client-side schema validation. The
/// schemas are permissive: the server, not the document, is the validator.
pub fn openapi(sh: &Shared, rest: &str) -> Response {
    let rest = rest.trim_matches('/');
    if rest == "v3" {
        let cat = sh.catalog();
        let mut paths = serde_json::Map::new();
        let mut gvs: Vec<(String, String)> = cat
            .all()
            .map(|d| (d.group.clone(), d.version.clone()))
            .collect();
        gvs.sort();
        gvs.dedup();
        for (g, v) in gvs {
            let key = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            let url = format!("/openapi/v3/{key}?hash={}", sh.data().current_rv());
            paths.insert(key, json!({"serverRelativeURL": url}));
        }
        return super::json_response(200, &json!({"paths": paths}));
    }
    let Some(gv) = rest.strip_prefix("v3/") else {
        return text_response(404, "404 page not found");
    };
    let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), (*v).to_owned()),
        ["apis", g, v] => ((*g).to_owned(), (*v).to_owned()),
        _ => return text_response(404, "404 page not found"),
    };
    let cat = sh.catalog();
    if !cat.has_group_version(&group, &version) {
        return text_response(404, "404 page not found");
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for d in cat.resources(&group, &version) {
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let schema_name = format!(
            "{}.{}.{}",
            if d.group.is_empty() { "core" } else { &d.group },
            d.version,
            d.kind
        );
        let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let op = |action: &str| {
            json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}}}})
        };
        let item = if d.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
        } else {
            format!("{prefix}/{}/{{name}}", d.plural)
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
        schemas.insert(
            schema_name,
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-group-version-kind": [gvk]}),
        );
    }
    super::json_response(
        200,
        &json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.6"},
        "paths": paths, "components": {"schemas": schemas}}),
    )
}

//! The rules the real server applies to every request, whatever the kind: request options
//! validated before the body, deletion with finalizers and generation, apply bodies of the
//! wrong type, methods a route does not serve, selectors whose values spell keywords, the
//! terminating-namespace refusal, and Table rows on watches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::{Reply, request};
use kro_sandbox::SandboxBuilder;
use serde_json::{Value, json};

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const MERGE: (&str, &str) = ("Content-Type", "application/merge-patch+json");
const APPLY: (&str, &str) = ("Content-Type", "application/apply-patch+yaml");

fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    ct: (&str, &str),
    body: &Value,
) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    request(addr, method, path, &h(&[ct]), Some(&bytes))
}

#[test]
fn generic_rules_hold_for_every_kind() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(
            SandboxBuilder::new("rules")
                .simulator(false)
                .namespace_controller(false)
                .start(),
        )
        .unwrap();
    let addr = sb.addr();
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "labels": {"a": "in"}}});
    assert_eq!(send(addr, "POST", cms, JSON, &cm).code, 201);

    // Options are checked before the body: `force` on a merge patch, a bad dryRun.
    let forced = send(
        addr,
        "PATCH",
        &format!("{cms}/c1?force=true"),
        MERGE,
        &json!("not even an object"),
    );
    assert_eq!(forced.code, 422);
    assert_eq!(
        forced.json()["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    let dry = request(
        addr,
        "POST",
        &format!("{cms}?dryRun=yes"),
        &h(&[JSON]),
        Some(b"{"),
    );
    assert_eq!(dry.code, 422);
    assert_eq!(dry.json()["details"]["kind"], "CreateOptions");

    // Apply bodies of the wrong type are refused by the field manager first.
    let no_kind = request(
        addr,
        "PATCH",
        &format!("{cms}/c1?fieldManager=t"),
        &h(&[APPLY]),
        Some(b"apiVersion: v1\nmetadata: {name: c1}\n"),
    );
    assert_eq!(
        (no_kind.code, no_kind.json()["message"].clone()),
        (400, json!("invalid object type: /v1, Kind="))
    );
    let wrong_av = request(
        addr,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=t",
        &h(&[APPLY]),
        Some(b"apiVersion: apps/v2\nkind: Deployment\nmetadata: {name: d}\n"),
    );
    assert_eq!(
        wrong_av.json()["message"],
        "invalid object type: apps/v2, Kind=Deployment"
    );

    // Methods no route serves: the router's generic 405.
    for (method, path) in [
        ("PUT", cms.to_owned()),
        ("DELETE", "/api/v1/namespaces".to_owned()),
        ("POST", format!("{cms}/c1")),
    ] {
        let r = request(addr, method, &path, &h(&[JSON]), Some(b"{}"));
        assert_eq!(r.code, 405, "{method} {path}");
        assert_eq!(
            r.json()["message"],
            "the server does not allow this method on the requested resource"
        );
        assert_eq!(r.json()["details"], json!({}));
    }

    // A value spelling a keyword is still a value.
    let sel = request(
        addr,
        "GET",
        &format!("{cms}?labelSelector=a%3Din"),
        &[],
        None,
    );
    assert_eq!(sel.json()["items"].as_array().map(Vec::len), Some(1));

    // Deleting an object held by a finalizer: timestamp, zero grace period and one
    // generation bump; deleting again changes nothing.
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["example.com/hold"]},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    assert_eq!(send(addr, "POST", deps, JSON, &dep).code, 201);
    let first = request(addr, "DELETE", &format!("{deps}/web"), &[], None).json();
    assert_eq!(first["metadata"]["generation"], 2);
    assert_eq!(first["metadata"]["deletionGracePeriodSeconds"], 0);
    let again = request(addr, "DELETE", &format!("{deps}/web"), &[], None).json();
    assert_eq!(
        again["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );

    // Orphan propagation holds even an object without finalizers.
    let orphan = send(
        addr,
        "DELETE",
        &format!("{cms}/c1"),
        JSON,
        &json!({"propagationPolicy": "Orphan"}),
    );
    assert_eq!(orphan.json()["metadata"]["finalizers"], json!(["orphan"]));
    let bad = send(
        addr,
        "DELETE",
        &format!("{cms}/c1"),
        JSON,
        &json!({"propagationPolicy": "Sideways"}),
    );
    assert_eq!(
        (bad.code, bad.json()["details"]["kind"].clone()),
        (422, json!("DeleteOptions"))
    );

    // A terminating namespace refuses new objects with the lifecycle cause.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "going"}});
    assert_eq!(
        send(addr, "POST", "/api/v1/namespaces", JSON, &ns).code,
        201
    );
    assert_eq!(
        request(addr, "DELETE", "/api/v1/namespaces/going", &[], None).code,
        200
    );
    let refused = send(
        addr,
        "POST",
        "/api/v1/namespaces/going/configmaps",
        JSON,
        &cm,
    );
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.json()["message"],
        "configmaps \"c1\" is forbidden: unable to create new content in namespace going because it is being terminated"
    );
    assert_eq!(
        refused.json()["details"]["causes"][0]["reason"],
        "NamespaceTerminating"
    );
    let again = request(addr, "DELETE", "/api/v1/namespaces/going", &[], None);
    assert_eq!(again.code, 409);

    // Watches keep their Table columns: the first event defines them, later ones reuse them.
    let cm2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}});
    assert_eq!(send(addr, "POST", cms, JSON, &cm2).code, 201);
    let events = watch_events(
        addr,
        cms,
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    );
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["object"]["kind"], "Table");
    assert!(
        events[0]["object"]["columnDefinitions"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    assert_eq!(events[1]["object"]["columnDefinitions"], Value::Null);
    assert!(events[1]["object"]["rows"][0]["cells"].is_array());

    // A metadata-only watch sends PartialObjectMetadata, as a list does.
    let events = watch_events(
        addr,
        cms,
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
    );
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e["object"]["kind"], "PartialObjectMetadata", "{e}");
        assert_eq!(e["object"]["apiVersion"], "meta.k8s.io/v1", "{e}");
        assert!(e["object"]["metadata"]["name"].is_string(), "{e}");
        assert_eq!(e["object"].get("data"), None, "{e}");
    }
}

/// The events a one-second watch of `path` sends, asked for as `accept`.
fn watch_events(addr: std::net::SocketAddr, path: &str, accept: &str) -> Vec<Value> {
    let w = request(
        addr,
        "GET",
        &format!("{path}?watch=true&timeoutSeconds=1"),
        &h(&[("Accept", accept)]),
        None,
    );
    w.body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

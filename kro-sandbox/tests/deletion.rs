//! Deletion as the real server's generic store performs it, for every kind
//! (`staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go` `Delete`,
//! `DeleteCollection`, `finalizeDelete`; `pkg/registry/rest/delete.go` `BeforeDelete`;
//! `pkg/endpoints/handlers/delete.go`): graceful deletion of Pods
//! (`pkg/registry/core/pod/strategy.go` `CheckGracefulDelete`), a second delete of an
//! object being deleted, preconditions, dry runs, the answer of each kind, the garbage
//! collector's finalizers per kind, and deletecollection pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::http::{Reply, request};
use kro_sandbox::{Sandbox, SandboxBuilder};
use serde_json::{Value, json};

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn send(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    request(addr, method, path, &h(&[JSON]), Some(&bytes))
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], None)
}

fn del(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "DELETE", path, &[], None)
}

fn start() -> (tokio::runtime::Runtime, Sandbox) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new("deletion").simulator(false).start())
        .unwrap();
    (rt, sb)
}

fn pod(name: &str, node: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

fn secs(ts: &Value) -> i64 {
    // `YYYY-MM-DDTHH:MM:SSZ` to seconds within the day is enough for differences here.
    let s = ts.as_str().unwrap();
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    n(8..10) * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

#[test]
fn pods_are_deleted_gracefully_once_scheduled() {
    let (_rt, sb) = start();
    let addr = sb.addr();
    let pods = "/api/v1/namespaces/default/pods";

    // A scheduled pod gets its `terminationGracePeriodSeconds` (defaulted to 30): the
    // deadline is set, the pod stays, and the answer is the pod.
    assert_eq!(
        send(addr, "POST", pods, &pod("web", Some("node-1"))).code,
        201
    );
    let first = del(addr, &format!("{pods}/web"));
    assert_eq!(first.code, 200);
    let marked = first.json();
    assert_eq!(marked["kind"], "Pod");
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    let created = secs(&marked["metadata"]["creationTimestamp"]);
    let deadline = secs(&marked["metadata"]["deletionTimestamp"]);
    assert!((29..=31).contains(&(deadline - created)), "{marked}");
    assert_eq!(get(addr, &format!("{pods}/web")).code, 200);

    // A second delete without a shorter period changes nothing: same version, same pod.
    let again = send(
        addr,
        "DELETE",
        &format!("{pods}/web"),
        &json!({"gracePeriodSeconds": 60}),
    );
    assert_eq!(again.code, 200);
    assert_eq!(
        again.json()["metadata"]["resourceVersion"],
        marked["metadata"]["resourceVersion"]
    );
    // A shorter one moves the deadline back by the difference.
    let shorter = send(
        addr,
        "DELETE",
        &format!("{pods}/web"),
        &json!({"gracePeriodSeconds": 10}),
    )
    .json();
    assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 10);
    assert_eq!(
        secs(&shorter["metadata"]["deletionTimestamp"]),
        deadline - 20
    );
    // Zero removes it; the answer is its last state.
    let now = request(
        addr,
        "DELETE",
        &format!("{pods}/web?gracePeriodSeconds=0"),
        &[],
        None,
    );
    assert_eq!(now.code, 200);
    assert_eq!(now.json()["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(get(addr, &format!("{pods}/web")).code, 404);

    // A pod never scheduled goes at once: watchers see the deletion marked, then the
    // removal.
    let created = send(addr, "POST", pods, &pod("idle", None)).json();
    let rv = created["metadata"]["resourceVersion"].as_str().unwrap();
    let gone = del(addr, &format!("{pods}/idle"));
    assert_eq!(gone.code, 200);
    assert_eq!(gone.json()["kind"], "Pod");
    assert_eq!(gone.json()["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(get(addr, &format!("{pods}/idle")).code, 404);
    let w = get(
        addr,
        &format!("{pods}?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
    );
    let kinds: Vec<String> = w
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<Value>(l).unwrap()["type"].to_string())
        .collect();
    assert_eq!(kinds, ["\"MODIFIED\"", "\"DELETED\""]);

    // A dry run answers the pod and keeps it.
    assert_eq!(send(addr, "POST", pods, &pod("kept", None)).code, 201);
    let dry = request(
        addr,
        "DELETE",
        &format!("{pods}/kept?dryRun=All"),
        &[],
        None,
    );
    assert_eq!((dry.code, dry.json()["kind"].clone()), (200, json!("Pod")));
    assert_eq!(get(addr, &format!("{pods}/kept")).code, 200);
}

#[test]
fn deletes_answer_preconditions_dry_runs_and_policies_as_the_store_does() {
    let (_rt, sb) = start();
    let addr = sb.addr();
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = |name: &str, fins: &[&str]| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "finalizers": fins, "labels": {"set": "a"}}})
    };

    // Preconditions name the kind (not the resource) with its group, and say why.
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let created = send(addr, "POST", deps, &dep).json();
    let uid = created["metadata"]["uid"].as_str().unwrap();
    let wrong_uid = send(
        addr,
        "DELETE",
        &format!("{deps}/web"),
        &json!({"preconditions": {"uid": "not-it"}}),
    );
    assert_eq!(wrong_uid.code, 409);
    assert_eq!(
        wrong_uid.json()["message"],
        format!(
            "Operation cannot be fulfilled on Deployment.apps \"web\": the UID in the precondition (not-it) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
        )
    );
    assert_eq!(
        wrong_uid.json()["details"],
        json!({"name": "web", "group": "apps", "kind": "Deployment"})
    );

    // A dry run of a ConfigMap answers the success Status and keeps it.
    assert_eq!(send(addr, "POST", cms, &cm("plain", &[])).code, 201);
    let dry = request(
        addr,
        "DELETE",
        &format!("{cms}/plain?dryRun=All"),
        &[],
        None,
    );
    assert_eq!(dry.code, 200);
    assert_eq!(dry.json()["kind"], "Status");
    assert_eq!(dry.json()["details"]["kind"], "configmaps");
    assert_eq!(get(addr, &format!("{cms}/plain")).code, 200);
    // A grace period means nothing to a kind without graceful deletion.
    let graceful = send(
        addr,
        "DELETE",
        &format!("{cms}/plain"),
        &json!({"gracePeriodSeconds": 30}),
    );
    assert_eq!(graceful.json()["status"], "Success");
    assert_eq!(get(addr, &format!("{cms}/plain")).code, 404);

    // The deprecated `orphanDependents: false` on an object a finalizer keeps: 202.
    assert_eq!(
        send(addr, "POST", cms, &cm("held", &["example.com/hold"])).code,
        201
    );
    let accepted = send(
        addr,
        "DELETE",
        &format!("{cms}/held"),
        &json!({"orphanDependents": false}),
    );
    assert_eq!(accepted.code, 202);
    assert!(accepted.json()["metadata"]["deletionTimestamp"].is_string());
    // Both spellings of the policy at once are refused before anything is read.
    let both = send(
        addr,
        "DELETE",
        &format!("{cms}/missing"),
        &json!({"orphanDependents": true, "propagationPolicy": "Orphan"}),
    );
    assert_eq!(both.code, 422);
    assert_eq!(
        both.json()["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Orphan\": orphanDependents and deletionPropagation cannot be both set"
    );

    // Events take no part in garbage collection: `Orphan` adds no finalizer.
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "R", "message": "m", "type": "Normal"});
    assert_eq!(
        send(addr, "POST", "/api/v1/namespaces/default/events", &ev).code,
        201
    );
    let orphan = send(
        addr,
        "DELETE",
        "/api/v1/namespaces/default/events/e1",
        &json!({"propagationPolicy": "Orphan"}),
    );
    assert_eq!(orphan.json()["status"], "Success");
    assert_eq!(get(addr, "/api/v1/namespaces/default/events/e1").code, 404);
}

#[test]
fn deletecollection_deletes_one_page_and_lists_what_it_found() {
    let (_rt, sb) = start();
    let addr = sb.addr();
    let cms = "/api/v1/namespaces/default/configmaps";
    for (name, fins) in [
        ("a", vec!["example.com/hold"]),
        ("b", vec![]),
        ("c", vec![]),
    ] {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "finalizers": fins, "labels": {"set": "x"}}});
        assert_eq!(send(addr, "POST", cms, &body).code, 201);
    }
    // With a limit only the first page goes; the answer lists the objects as listed (the
    // held one without its deletion mark) with the page's continuation.
    let page = del(addr, &format!("{cms}?labelSelector=set%3Dx&limit=2"));
    assert_eq!(page.code, 200);
    let body = page.json();
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(
        body["items"][0]["metadata"]
            .get("deletionTimestamp")
            .is_none()
    );
    assert!(body["metadata"]["continue"].is_string());
    assert!(get(addr, &format!("{cms}/a")).json()["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(get(addr, &format!("{cms}/b")).code, 404);
    assert_eq!(get(addr, &format!("{cms}/c")).code, 200);

    // Each object goes through the single delete: a failed precondition ends the request.
    let refused = send(
        addr,
        "DELETE",
        cms,
        &json!({"preconditions": {"resourceVersion": "1"}}),
    );
    assert_eq!(refused.code, 409);
    assert!(refused.json()["message"].as_str().unwrap().contains(
        "the ResourceVersion in the precondition (1) does not match the ResourceVersion in record"
    ));
}

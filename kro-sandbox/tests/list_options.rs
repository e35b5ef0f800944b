//! List and watch options as the real server validates and serves them:
//! `staging/src/k8s.io/apimachinery/pkg/apis/meta/internalversion/validation/validation.go`
//! (`ValidateListOptions`), the storage's continue tokens and their refusals
//! (`staging/src/k8s.io/apiserver/pkg/storage/continue.go`, `etcd3/store.go` `GetList`,
//! `etcd3/errors.go`), which lists the watch cache serves and how it pages them
//! (`cacher/cacher.go` `GetList`, `shouldDelegateList`, `computeListLimit`), and field
//! labels per kind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::http::{Reply, request};
use kro_sandbox::{Sandbox, SandboxBuilder};
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], None)
}

fn create(addr: SocketAddr, name: &str, set: &str) {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"set": set}}});
    let r = request(
        addr,
        "POST",
        CMS,
        &[("Content-Type".into(), "application/json".into())],
        Some(&serde_json::to_vec(&body).unwrap()),
    );
    assert_eq!(r.code, 201);
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn start(history: usize) -> (tokio::runtime::Runtime, Sandbox) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(
            SandboxBuilder::new("lists")
                .simulator(false)
                .history(history)
                .start(),
        )
        .unwrap();
    (rt, sb)
}

fn token(rv: i64, start: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string())
}

#[test]
fn pages_follow_the_storage() {
    let (_rt, sb) = start(10_000);
    let addr = sb.addr();
    for (name, set) in [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")] {
        create(addr, name, set);
    }

    // The token is the storage's: base64url JSON with the list's version and the key
    // after which the next page starts.
    let page1 = get(addr, &format!("{CMS}?limit=2")).json();
    assert_eq!(names(&page1), ["a", "b"]);
    assert_eq!(page1["metadata"]["remainingItemCount"], 2);
    let tok = page1["metadata"]["continue"].as_str().unwrap();
    let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(tok).unwrap()).unwrap();
    assert_eq!(decoded["v"], "meta.k8s.io/v1");
    assert_eq!(decoded["start"], "b\u{0}");
    assert_eq!(
        decoded["rv"].to_string(),
        page1["metadata"]["resourceVersion"].as_str().unwrap()
    );
    let page2 = get(addr, &format!("{CMS}?limit=2&continue={tok}")).json();
    assert_eq!(names(&page2), ["c", "d"]);
    assert!(page2["metadata"].get("continue").is_none());

    // With a selector a page goes on while any object follows, matching or not, and
    // says nothing of how many.
    let sel = get(addr, &format!("{CMS}?limit=2&labelSelector=set%3Dx")).json();
    assert_eq!(names(&sel), ["a", "b"]);
    assert!(sel["metadata"]["continue"].is_string());
    assert!(sel["metadata"].get("remainingItemCount").is_none());

    // The watch cache ignores `limit` for `resourceVersion=0`.
    let cached = get(addr, &format!("{CMS}?limit=1&resourceVersion=0")).json();
    assert_eq!(names(&cached).len(), 4);
    assert!(cached["metadata"].get("continue").is_none());

    // Tokens the storage cannot read, and a version beside a token.
    for (tok, why) in [
        (
            "abc".to_owned(),
            "continue key is not valid: invalid character 'i' looking for beginning of value",
        ),
        (
            token(0, "a"),
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ),
        (
            token(5, ""),
            "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)",
        ),
        (token(5, "../x"), "continue key is not valid: ../x"),
    ] {
        let r = get(addr, &format!("{CMS}?limit=2&continue={tok}"));
        assert_eq!(r.code, 400, "{tok}");
        assert_eq!(r.json()["reason"], "BadRequest");
        assert_eq!(
            r.json()["message"],
            format!("invalid continue token: {why}")
        );
    }
    let both = get(
        addr,
        &format!("{CMS}?limit=2&continue={tok}&resourceVersion=3"),
    );
    assert_eq!(
        (both.code, both.json()["message"].clone()),
        (
            400,
            json!("specifying resource version is not allowed when using continue")
        )
    );

    // A version the server has not reached: the watch cache gives up with a 504.
    let future = get(addr, &format!("{CMS}?resourceVersion=999999"));
    assert_eq!(future.code, 504);
    let current = page1["metadata"]["resourceVersion"].as_str().unwrap();
    assert_eq!(
        future.json()["message"],
        format!("Timeout: Too large resource version: 999999, current: {current}")
    );
    assert_eq!(
        future.json()["details"],
        json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})
    );

    // Unknown field labels: the kind's conversion refuses them.
    let bad = get(
        addr,
        "/api/v1/namespaces/default/pods?fieldSelector=spec.foo%3Dx",
    );
    assert_eq!(
        (bad.code, bad.json()["message"].clone()),
        (400, json!("field label not supported: spec.foo"))
    );
    assert_eq!(
        get(
            addr,
            "/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DRunning,spec.nodeName%3Dn1"
        )
        .code,
        200
    );

    // Watch options: a match needs sendInitialEvents.
    let w = get(
        addr,
        &format!("{CMS}?watch=true&resourceVersionMatch=NotOlderThan"),
    );
    assert_eq!(w.code, 422);
    assert_eq!(
        w.json()["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
    );
}

#[test]
fn tokens_and_versions_older_than_the_history_expire() {
    // A history of 4 events: older versions are compacted away.
    let (_rt, sb) = start(4);
    let addr = sb.addr();
    for name in ["a", "b", "c"] {
        create(addr, name, "x");
    }
    let page1 = get(addr, &format!("{CMS}?limit=1")).json();
    let rv = page1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let tok = page1["metadata"]["continue"].as_str().unwrap().to_owned();
    for name in ["d", "e", "f", "g", "h", "i"] {
        create(addr, name, "y");
    }

    let expired = get(addr, &format!("{CMS}?limit=1&continue={tok}"));
    assert_eq!(expired.code, 410);
    let status = expired.json();
    assert_eq!(status["reason"], "Expired");
    assert_eq!(
        status["message"],
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
    );
    // The answer's token goes on at the latest version (`rv: -1`) from the same key.
    let fresh = status["metadata"]["continue"].as_str().unwrap();
    let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(fresh).unwrap()).unwrap();
    assert_eq!(decoded["rv"], -1);
    assert_eq!(decoded["start"], "a\u{0}");
    let rest = get(addr, &format!("{CMS}?limit=1&continue={fresh}")).json();
    assert_eq!(names(&rest), ["b"]);

    // A limited list at a compacted version (the legacy exact read) expires as well.
    let old = get(addr, &format!("{CMS}?limit=1&resourceVersion={rv}"));
    assert_eq!(
        (old.code, old.json()["message"].clone()),
        (
            410,
            json!("The resourceVersion for the provided list is too old.")
        )
    );
}

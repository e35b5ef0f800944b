//! Error answers at the HTTP level: every failure is a `Status` with the right code and
//! reason, and malformed input leaves the stored data intact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::request;
use kro_sandbox::SandboxBuilder;
use serde_json::json;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn failures_are_status_objects() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(
            SandboxBuilder::new("errors")
                .simulator(false)
                .token("t0k")
                .start(),
        )
        .unwrap();
    let addr = sb.addr();
    let auth = ("Authorization", "Bearer t0k");
    let json_ct = ("Content-Type", "application/json");

    // Health stays open; everything else needs the token.
    assert_eq!(request(addr, "GET", "/readyz", &[], None).code, 200);
    let denied = request(addr, "GET", "/api/v1/namespaces", &[], None);
    assert_eq!(
        (denied.code, denied.json()["reason"].clone()),
        (401, json!("Unauthorized"))
    );

    let cm =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep"},"data":{"a":"1"}}"#;
    let created = request(
        addr,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &h(&[auth, json_ct]),
        Some(cm),
    );
    assert_eq!(created.code, 201);

    let cbor = request(
        addr,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &h(&[auth, ("Content-Type", "application/cbor")]),
        Some(b"\xa0"),
    );
    assert_eq!(
        (cbor.code, cbor.json()["reason"].clone()),
        (415, json!("UnsupportedMediaType"))
    );
    assert_eq!(
        cbor.json()["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );
    let empty_proto = request(
        addr,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &h(&[
            auth,
            ("Content-Type", "application/vnd.kubernetes.protobuf"),
        ]),
        Some(b"k8s\0"),
    );
    assert_eq!(
        (empty_proto.code, empty_proto.json()["reason"].clone()),
        (400, json!("BadRequest"))
    );

    let garbage = request(
        addr,
        "PUT",
        "/api/v1/namespaces/default/configmaps/keep",
        &h(&[auth, json_ct]),
        Some(b"{\"x\":"),
    );
    assert_eq!(
        (garbage.code, garbage.json()["kind"].clone()),
        (400, json!("Status"))
    );
    let patch = request(
        addr,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/keep",
        &h(&[auth, ("Content-Type", "text/plain")]),
        Some(b"x"),
    );
    assert_eq!(patch.code, 415);
    let not_allowed = request(addr, "DELETE", "/api/v1/namespaces", &h(&[auth]), None);
    assert_eq!(
        (not_allowed.code, not_allowed.json()["reason"].clone()),
        (405, json!("MethodNotAllowed"))
    );
    let unknown = request(
        addr,
        "GET",
        "/api/v1/namespaces/default/widgets",
        &h(&[auth]),
        None,
    );
    assert_eq!(
        (unknown.code, unknown.json()["reason"].clone()),
        (404, json!("NotFound"))
    );

    // None of it touched the stored object.
    let got = request(
        addr,
        "GET",
        "/api/v1/namespaces/default/configmaps/keep",
        &h(&[auth]),
        None,
    );
    assert_eq!(got.json()["data"], json!({"a": "1"}));
    drop(sb);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}

//! The metadata rules every kind obeys on create and update, with the real server's
//! answers: label, annotation and finalizer names, `generateName`, a resourceVersion on
//! create, uid preconditions and immutable fields on update, unconditional updates only
//! where the strategy allows them, and PUT creating the kinds that allow it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::{Reply, request};
use kro_sandbox::SandboxBuilder;
use serde_json::{Value, json};

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

fn send(addr: std::net::SocketAddr, method: &str, path: &str, ct: &str, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = vec![("Content-Type".to_owned(), ct.to_owned())];
    request(addr, method, path, &headers, Some(&bytes))
}

fn cm(meta: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})
}

fn get(addr: std::net::SocketAddr, path: &str) -> Value {
    request(addr, "GET", path, &[], None).json()
}

const QUALIFIED: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn causes(r: &Reply) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = r.json()["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn metadata_rules_hold_for_every_kind() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(
            SandboxBuilder::new("meta")
                .simulator(false)
                .namespace_controller(false)
                .start(),
        )
        .unwrap();
    let addr = sb.addr();
    let cms = "/api/v1/namespaces/default/configmaps";

    // Labels: keys are qualified names (ValidateLabels), reported once on create.
    let bad_label = send(
        addr,
        "POST",
        cms,
        JSON,
        &cm(json!({"name": "l1", "labels": {"bad key": "v"}})),
    );
    assert_eq!(bad_label.code, 422);
    assert_eq!(
        bad_label.json()["message"],
        format!(
            "ConfigMap \"l1\" is invalid: metadata.labels: Invalid value: \"bad key\": {QUALIFIED}"
        )
    );
    assert_eq!(
        bad_label.json()["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );

    // A built-in kind's finalizer needs a domain unless it is a standard one.
    let fin = send(
        addr,
        "POST",
        cms,
        JSON,
        &cm(json!({"name": "f1", "finalizers": ["hold"]})),
    );
    assert_eq!(
        fin.json()["message"],
        "ConfigMap \"f1\" is invalid: metadata.finalizers[0]: Invalid value: \"hold\": name is neither a standard finalizer name nor is it fully qualified"
    );

    // generateName is checked as a prefix (its trailing dash masked), then the name.
    let gen_bad = send(
        addr,
        "POST",
        cms,
        JSON,
        &cm(json!({"generateName": "Web-"})),
    );
    assert_eq!(gen_bad.code, 422);
    let c = causes(&gen_bad);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].0, "metadata.generateName");
    assert_eq!(c[0].1, format!("Invalid value: \"Web-\": {SUBDOMAIN}"));
    assert_eq!(c[1].0, "metadata.name");

    // A resourceVersion on create is refused by the storage: a 500 without a reason.
    let with_rv = send(
        addr,
        "POST",
        cms,
        JSON,
        &cm(json!({"name": "rv1", "resourceVersion": "5"})),
    );
    assert_eq!(with_rv.code, 500);
    assert_eq!(
        with_rv.json()["message"],
        "resourceVersion should not be set on objects to be created"
    );
    assert!(with_rv.json().get("reason").is_none());

    // A kind without generation keeps the client's; a kind with one starts at 1.
    let g = send(
        addr,
        "POST",
        cms,
        JSON,
        &cm(json!({"name": "g1", "generation": 5})),
    );
    assert_eq!(g.code, 201);
    assert_eq!(g.json()["metadata"]["generation"], 5);
    let neg = send(
        addr,
        "POST",
        cms,
        JSON,
        &cm(json!({"name": "g2", "generation": -1})),
    );
    assert_eq!(
        neg.json()["message"],
        "ConfigMap \"g2\" is invalid: metadata.generation: Invalid value: -1: must be greater than or equal to 0"
    );

    // Update: a uid in a PUT body is a storage precondition.
    let c1 = send(addr, "POST", cms, JSON, &cm(json!({"name": "c1"}))).json();
    let mut put = c1.clone();
    put["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    let wrong_uid = send(addr, "PUT", &format!("{cms}/c1"), JSON, &put);
    assert_eq!(wrong_uid.code, 409);
    assert_eq!(
        wrong_uid.json()["message"],
        format!(
            "Operation cannot be fulfilled on configmaps \"c1\": StorageError: invalid object, Code: 4, Key: /registry/configmaps/default/c1, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: 00000000-0000-0000-0000-000000000000, UID in object meta: {}",
            c1["metadata"]["uid"].as_str().unwrap()
        )
    );
    // A PUT without uid nor resourceVersion of a built-in kind is unconditional and
    // keeps the uid and creation time.
    let bare = send(
        addr,
        "PUT",
        &format!("{cms}/c1"),
        JSON,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"k": "v"}}),
    );
    assert_eq!(bare.code, 200);
    assert_eq!(bare.json()["metadata"]["uid"], c1["metadata"]["uid"]);

    // A patch has no preconditions: changing the uid is an immutable-field error, which
    // the generic update checks and the kind's own report twice.
    let patched_uid = send(
        addr,
        "PATCH",
        &format!("{cms}/c1"),
        MERGE,
        &json!({"metadata": {"uid": "x"}}),
    );
    assert_eq!(patched_uid.code, 422);
    assert_eq!(
        causes(&patched_uid),
        vec![
            (
                "metadata.uid".to_owned(),
                "Invalid value: \"x\": field is immutable".to_owned()
            );
            2
        ]
    );
    // Setting a deletion timestamp by hand is refused the same way.
    let deleting = send(
        addr,
        "PATCH",
        &format!("{cms}/c1"),
        MERGE,
        &json!({"metadata": {"deletionTimestamp": "2030-01-02T03:04:05Z"}}),
    );
    assert_eq!(
        causes(&deleting),
        vec![
            (
                "metadata.deletionTimestamp".to_owned(),
                "Invalid value: 2030-01-02 03:04:05 +0000 UTC: field is immutable".to_owned()
            );
            2
        ]
    );
    // A bad label on a ConfigMap update: the generic create and update checks, then the
    // kind's update and create checks, four times in all.
    let label_update = send(
        addr,
        "PATCH",
        &format!("{cms}/c1"),
        MERGE,
        &json!({"metadata": {"labels": {"a": "-x"}}}),
    );
    assert_eq!(causes(&label_update).len(), 4);
    // A patch moving the object to another namespace.
    let moved = send(
        addr,
        "PATCH",
        &format!("{cms}/c1"),
        MERGE,
        &json!({"metadata": {"namespace": "kube-system"}}),
    );
    assert_eq!(
        (moved.code, moved.json()["message"].clone()),
        (
            400,
            json!(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        )
    );

    // PUT creates the kinds whose strategy allows it (Roles) and no others.
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "r1"}, "rules": []});
    let created = send(
        addr,
        "PUT",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/r1",
        JSON,
        &role,
    );
    assert_eq!(created.code, 201);
    assert_eq!(created.json()["metadata"]["name"], "r1");
    let missing = send(
        addr,
        "PUT",
        &format!("{cms}/nope"),
        JSON,
        &cm(json!({"name": "nope"})),
    );
    assert_eq!(missing.code, 404);

    // Custom resources refuse an update without resourceVersion, naming the resource.
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}});
    assert_eq!(
        send(
            addr,
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            JSON,
            &crd
        )
        .code,
        201
    );
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "finalizers": ["hold"]}});
    // Custom resources take any qualified finalizer name.
    assert_eq!(send(addr, "POST", widgets, JSON, &w).code, 201);
    let unconditional = send(addr, "PUT", &format!("{widgets}/w1"), JSON, &w);
    assert_eq!(unconditional.code, 422);
    assert_eq!(
        unconditional.json()["message"],
        "widgets.example.com \"w1\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );
    assert_eq!(unconditional.json()["details"]["kind"], "widgets");
    let stored = get(addr, &format!("{widgets}/w1"));
    let mut fine = w.clone();
    fine["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
    fine["metadata"]["finalizers"] = json!([]);
    assert_eq!(
        send(addr, "PUT", &format!("{widgets}/w1"), JSON, &fine).code,
        200
    );
}

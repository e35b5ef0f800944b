//! Core `v1` Events and `events.k8s.io/v1` Events are one storage, as on the real server:
//! an Event written through either API is read, listed, selected and watched through both,
//! with the fields converted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::{Reply, encode, request, watch};
use kro_sandbox::SandboxBuilder;
use serde_json::{Value, json};

const CORE: &str = "/api/v1/namespaces/default/events";
const V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn send(addr: std::net::SocketAddr, method: &str, path: &str, ct: &str, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = vec![("Content-Type".to_owned(), ct.to_owned())];
    request(addr, method, path, &headers, Some(&bytes))
}

fn get(addr: std::net::SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], None)
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn events_are_one_storage_read_through_both_apis() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new("events").simulator(false).start())
        .unwrap();
    let addr = sb.addr();

    // Written through events.k8s.io, as the hub writes them.
    let new_style = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "kro.run/hub", "reportingInstance": "hub-a",
        "action": "Apply", "reason": "Applied", "type": "Normal", "note": "resource applied",
        "regarding": {"kind": "Service", "name": "web", "namespace": "default", "apiVersion": "v1", "uid": "u-1"},
        "series": {"count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}
    });
    let created = send(addr, "POST", V1, "application/json", &new_style);
    assert_eq!(
        created.code,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let rv = created.json()["metadata"]["resourceVersion"].clone();

    let core = get(addr, &format!("{CORE}/web.1")).json();
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "resource applied");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["reportingComponent"], "kro.run/hub");
    assert_eq!(core["reportingInstance"], "hub-a");
    assert_eq!(core["series"]["count"], 3);
    assert_eq!(core["action"], "Apply");
    assert_eq!(core["source"], json!({}));
    assert_eq!(core["firstTimestamp"], Value::Null);
    assert_eq!(core["metadata"]["resourceVersion"], rv);
    assert!(core.get("note").is_none() && core.get("regarding").is_none());

    // Written through core, as older clients and kubectl's describers expect them.
    let old_style = json!({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.2"},
        "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default", "apiVersion": "apps/v1"},
        "reason": "ScalingReplicaSet", "message": "scaled up", "type": "Normal",
        "source": {"component": "deployment-controller"}, "count": 2,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:05Z"
    });
    assert_eq!(
        send(addr, "POST", CORE, "application/json", &old_style).code,
        201
    );
    let v1 = get(addr, &format!("{V1}/web.2")).json();
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["note"], "scaled up");
    assert_eq!(v1["regarding"]["kind"], "Deployment");
    assert_eq!(v1["deprecatedSource"]["component"], "deployment-controller");
    assert_eq!(v1["deprecatedCount"], 2);
    assert_eq!(v1["deprecatedLastTimestamp"], "2026-01-01T00:00:05Z");
    assert_eq!(v1["eventTime"], Value::Null);
    assert!(v1.get("reportingController").is_none());

    // Both lists hold both, each in its own form.
    let core_list = get(addr, CORE).json();
    assert_eq!(names(&core_list), ["web.1", "web.2"]);
    assert_eq!(core_list["items"][0]["message"], "resource applied");
    let v1_list = get(addr, V1).json();
    assert_eq!(names(&v1_list), ["web.1", "web.2"]);
    assert_eq!(v1_list["items"][1]["note"], "scaled up");
    assert_eq!(
        get(addr, "/apis/events.k8s.io/v1/events").json()["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The field selector `kubectl describe` sends, through core; and its events-group twin.
    let describe = format!(
        "{CORE}?fieldSelector={}",
        encode(
            "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Service,involvedObject.uid=u-1"
        )
    );
    assert_eq!(names(&get(addr, &describe).json()), ["web.1"]);
    let regarding = format!(
        "{V1}?fieldSelector={}",
        encode("regarding.kind=Deployment,regarding.name=web")
    );
    assert_eq!(names(&get(addr, &regarding).json()), ["web.2"]);
    let by_controller = format!(
        "{V1}?fieldSelector={}",
        encode("reportingController=kro.run/hub")
    );
    assert_eq!(names(&get(addr, &by_controller).json()), ["web.1"]);
    // `source` selects the source component, or else the reporting component.
    let by_source =
        |s: &str| names(&get(addr, &format!("{CORE}?fieldSelector={}", encode(s))).json());
    assert_eq!(by_source("source=kro.run/hub"), ["web.1"]);
    assert_eq!(by_source("source=deployment-controller"), ["web.2"]);
    // Labels of the other API are refused with the field label conversion's message.
    let bad = get(
        addr,
        &format!("{V1}?fieldSelector=involvedObject.name%3Dweb"),
    );
    assert_eq!(bad.code, 400);
    assert_eq!(
        bad.json()["message"],
        "field label not supported: involvedObject.name"
    );
    let bad = get(addr, &format!("{CORE}?fieldSelector=note%3Dx"));
    assert_eq!(bad.json()["message"], "field label not supported: note");

    // Updates through one API keep what the other wrote.
    let patched = send(
        addr,
        "PATCH",
        &format!("{CORE}/web.1"),
        "application/merge-patch+json",
        &json!({"message": "applied again"}),
    );
    assert_eq!(
        patched.code,
        200,
        "{}",
        String::from_utf8_lossy(&patched.body)
    );
    let v1 = get(addr, &format!("{V1}/web.1")).json();
    assert_eq!(v1["note"], "applied again");
    assert_eq!(v1["reportingController"], "kro.run/hub");
    assert_eq!(v1["series"]["count"], 3);
    let patched = send(
        addr,
        "PATCH",
        &format!("{V1}/web.2"),
        "application/merge-patch+json",
        &json!({"note": "scaled down"}),
    );
    assert_eq!(patched.code, 200);
    assert_eq!(patched.json()["note"], "scaled down");
    assert_eq!(
        get(addr, &format!("{CORE}/web.2")).json()["message"],
        "scaled down"
    );

    // Watches through either API see writes through the other, in their own form.
    let start = get(addr, CORE).json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let more = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "web.3"},
        "eventTime": "2026-01-01T00:02:00.000000Z", "reportingController": "kro.run/hub",
        "reportingInstance": "hub-a", "action": "Delete", "reason": "Deleted", "type": "Normal",
        "regarding": {"kind": "Service", "name": "web", "namespace": "default"}, "note": "gone"
    });
    assert_eq!(send(addr, "POST", V1, "application/json", &more).code, 201);
    assert_eq!(
        request(addr, "DELETE", &format!("{CORE}/web.3"), &[], None).code,
        200
    );
    let (code, core_events) = watch(
        addr,
        &format!(
            "{CORE}?watch=true&resourceVersion={start}&fieldSelector={}",
            encode("involvedObject.kind=Service")
        ),
        &[],
        2,
        2.0,
    );
    assert_eq!(code, 200);
    assert_eq!(core_events[0]["type"], "ADDED");
    assert_eq!(core_events[0]["object"]["message"], "gone");
    assert_eq!(core_events[1]["type"], "DELETED");
    assert_eq!(core_events[1]["object"]["apiVersion"], "v1");
    let (code, v1_events) = watch(
        addr,
        &format!("{V1}?watch=true&resourceVersion={start}"),
        &[],
        2,
        2.0,
    );
    assert_eq!(code, 200);
    assert_eq!(v1_events[0]["object"]["note"], "gone");
    assert_eq!(v1_events[1]["type"], "DELETED");
    assert_eq!(v1_events[1]["object"]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1_events[1]["object"]["note"], "gone");

    // Deleting through the events API removes the one stored Event.
    assert_eq!(
        request(addr, "DELETE", &format!("{V1}/web.2"), &[], None).code,
        200
    );
    assert_eq!(get(addr, &format!("{CORE}/web.2")).code, 404);
    rt.block_on(sb.stop());
}

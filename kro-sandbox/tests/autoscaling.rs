//! `autoscaling/v2` HorizontalPodAutoscalers are served as on a real server:
//! discovery with the `hpa` short name, the recorded OpenAPI document, and
//! the usual verbs with a status subresource.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::request;
use kro_sandbox::SandboxBuilder;
use serde_json::{Value, json};

#[test]
fn horizontal_pod_autoscalers_are_served() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new("hpa").simulator(false).start())
        .unwrap();
    let addr = sb.addr();

    let list = request(addr, "GET", "/apis/autoscaling/v2", &[], None).json();
    let hpa = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "horizontalpodautoscalers")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(hpa["kind"], "HorizontalPodAutoscaler", "{list}");
    assert_eq!(hpa["shortNames"], json!(["hpa"]));
    assert!(
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "horizontalpodautoscalers/status")
    );

    let index = request(addr, "GET", "/openapi/v3", &[], None).json();
    let url = index["paths"]["apis/autoscaling/v2"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc = request(addr, "GET", &url, &[], None).json();
    let spec = &doc["components"]["schemas"]["io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec"]
        ["properties"];
    assert_eq!(spec["maxReplicas"]["type"], "integer", "{spec}");

    let body = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 3}});
    let created = request(
        addr,
        "POST",
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
        &[("content-type".to_owned(), "application/json".to_owned())],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(created.code, 201, "{}", created.json());
    let got = request(
        addr,
        "GET",
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web",
        &[],
        None,
    )
    .json();
    assert_eq!(got["spec"]["maxReplicas"], 3);
}

//! The protobuf codec checked against the Kubernetes API's own typed messages (`k8s-pb`):
//! what a Go client encodes decodes to the JSON a JSON client would send, what the sandbox
//! encodes decodes to the right typed values, and a sandbox speaks protobuf over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::request;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use kro_sandbox::SandboxBuilder;
use kro_sandbox::http::protobuf;
use prost::Message;
use serde_json::json;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// Wraps a message as kube-apiserver and client-go do: magic, then `runtime.Unknown`.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn open(bytes: &[u8]) -> Unknown {
    let body = bytes.strip_prefix(b"k8s\0").expect("magic prefix");
    Unknown::decode(body).expect("runtime.Unknown")
}

/// A Deployment as Go's generated code writes it: non-pointer fields always present,
/// zero or not (empty strings, `minReadySeconds: 0`, the zero `creationTimestamp`).
fn go_deployment() -> apps::Deployment {
    apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: Some("web".into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            labels: [("app".to_owned(), "web".to_owned())].into(),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            min_ready_seconds: Some(0),
            paused: Some(false),
            selector: Some(meta::LabelSelector {
                match_labels: [("app".to_owned(), "web".to_owned())].into(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: [("app".to_owned(), "web".to_owned())].into(),
                    creation_timestamp: Some(meta::Time::default()),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: Some("nginx".into()),
                        image: Some("nginx".into()),
                        image_pull_policy: Some(String::new()),
                        resources: Some(core::ResourceRequirements {
                            limits: [(
                                "cpu".to_owned(),
                                Quantity {
                                    string: Some("500m".into()),
                                },
                            )]
                            .into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some("RollingUpdate".into()),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("25%".into()),
                    }),
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(1),
                        str_val: Some(String::new()),
                    }),
                }),
            }),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    }
}

#[test]
fn a_go_clients_deployment_decodes_to_the_json_a_json_client_sends() {
    let body = envelope("apps/v1", "Deployment", go_deployment().encode_to_vec());
    let decoded = protobuf::decode_object(&body).expect("decodes");
    assert_eq!(
        decoded,
        json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx",
                        "resources": {"limits": {"cpu": "500m"}}}]}
                },
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}}
            },
            "status": {}
        })
    );
}

#[test]
fn the_sandboxs_encoding_decodes_to_the_typed_messages() {
    let obj = json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "team", "uid": "u-1", "resourceVersion": "7",
            "generation": 2, "creationTimestamp": "2024-05-01T10:20:30Z"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx",
                "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}},
        "status": {"replicas": 3, "readyReplicas": 2}
    });
    let bytes = protobuf::encode_object(&obj).expect("encodes");
    let unknown = open(&bytes);
    let type_meta = unknown.type_meta.clone().unwrap();
    assert_eq!(type_meta.api_version.as_deref(), Some("apps/v1"));
    assert_eq!(type_meta.kind.as_deref(), Some("Deployment"));
    let d = apps::Deployment::decode(unknown.raw.unwrap_or_default().as_slice()).unwrap();
    let m = d.metadata.unwrap();
    assert_eq!(m.name.as_deref(), Some("web"));
    assert_eq!(m.generation, Some(2));
    assert_eq!(m.creation_timestamp.unwrap().seconds, Some(1_714_558_830));
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let c = &spec.template.unwrap().spec.unwrap().containers[0];
    assert_eq!(c.ports[0].container_port, Some(80));
    let ru = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(ru.max_surge.unwrap().str_val.as_deref(), Some("25%"));
    assert_eq!(ru.max_unavailable.unwrap().int_val, Some(1));
    assert_eq!(d.status.unwrap().ready_replicas, Some(2));
}

#[test]
fn a_sandbox_reads_and_answers_protobuf_for_built_in_kinds_only() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new("protobuf").simulator(false).start())
        .unwrap();
    let addr = sb.addr();
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: Some("c".into()),
            ..Default::default()
        }),
        data: [("a".to_owned(), "b".to_owned())].into(),
        binary_data: [("bin".to_owned(), vec![0u8, 159, 255])].into(),
        ..Default::default()
    };
    let body = envelope("v1", "ConfigMap", cm.encode_to_vec());
    let created = request(
        addr,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &h(&[
            ("Content-Type", PROTOBUF),
            ("Accept", "application/vnd.kubernetes.protobuf, */*"),
        ]),
        Some(&body),
    );
    assert_eq!(created.code, 201);
    assert_eq!(created.header("content-type"), [PROTOBUF]);
    let unknown = open(&created.body);
    let stored = core::ConfigMap::decode(unknown.raw.unwrap_or_default().as_slice()).unwrap();
    let meta = stored.metadata.unwrap();
    assert!(meta.uid.is_some_and(|u| !u.is_empty()));
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(stored.binary_data["bin"], vec![0u8, 159, 255]);

    // JSON clients see the same object.
    let got = request(
        addr,
        "GET",
        "/api/v1/namespaces/default/configmaps/c",
        &[],
        None,
    );
    assert_eq!(got.json()["data"], json!({"a": "b"}));
    assert_eq!(got.json()["binaryData"], json!({"bin": "AJ//"}));

    // Lists and errors in protobuf.
    let pb = h(&[("Accept", PROTOBUF)]);
    let list = request(
        addr,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        &pb,
        None,
    );
    let list =
        core::ConfigMapList::decode(open(&list.body).raw.unwrap_or_default().as_slice()).unwrap();
    assert_eq!(list.items.len(), 1);
    let missing = request(
        addr,
        "GET",
        "/api/v1/namespaces/default/configmaps/nope",
        &pb,
        None,
    );
    assert_eq!(missing.code, 404);
    let unknown = open(&missing.body);
    assert_eq!(unknown.type_meta.unwrap().kind.as_deref(), Some("Status"));
    let status = meta::Status::decode(unknown.raw.unwrap_or_default().as_slice()).unwrap();
    assert_eq!(status.reason.as_deref(), Some("NotFound"));
    assert_eq!(status.code, Some(404));

    // Custom kinds have no protobuf form: 406 when nothing else is accepted, 415 for a body.
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let json_ct = h(&[("Content-Type", "application/json")]);
    let made = request(
        addr,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &json_ct,
        Some(&serde_json::to_vec(&crd).unwrap()),
    );
    assert_eq!(made.code, 201);
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    let refused = request(addr, "GET", widgets, &pb, None);
    assert_eq!(refused.code, 406);
    assert_eq!(
        refused.json()["message"],
        "only the following media types are accepted: application/json, application/yaml"
    );
    let fallback = h(&[(
        "Accept",
        "application/vnd.kubernetes.protobuf, application/json",
    )]);
    let listed = request(addr, "GET", widgets, &fallback, None);
    assert_eq!(listed.code, 200);
    assert_eq!(listed.json()["kind"], "WidgetList");
    let proto_body = request(
        addr,
        "POST",
        widgets,
        &h(&[("Content-Type", PROTOBUF)]),
        Some(&envelope("example.com/v1", "Widget", Vec::new())),
    );
    assert_eq!(proto_body.code, 415);

    drop(sb);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}

//! What `#[derive(ResourceGraph)]` maps Rust types and attributes to, and
//! the kind type it generates.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use kro_sdk::{ResourceGraph, ResourceStatus, SimpleSchema};
use kube::Resource;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How traffic is handled.
#[derive(SimpleSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    FastPath,
    #[serde(rename = "careful")]
    Slow,
}

/// One port.
#[derive(SimpleSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Port {
    /// Port number.
    #[kro(minimum = 1, maximum = 65535)]
    pub number: u16,
    #[serde(rename = "proto")]
    pub protocol: Option<String>,
}

#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    #[kro(expr = "${config.metadata.name}")]
    pub config_name: Option<String>,
    pub nested: Option<NestedStatus>,
}

#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct NestedStatus {
    #[kro(expr = "${config.data.mode}")]
    pub mode: Option<String>,
}

/// A cluster-scoped gateway.
#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[kro(
    kind = "Gateway",
    group = "net.example.com",
    version = "v1beta1",
    scope = "Cluster",
    short_name = "gw",
    category = "example",
    status = GatewayStatus,
    validation(expression = "size(self.ports) > 0", message = "needs a port"),
    resource(id = "config", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}", namespace: default}
data:
  mode: ${schema.spec.mode}
"#)
)]
pub struct GatewaySpec {
    /// The gateway's name.
    /// Second line.
    #[kro(min_length = 1, immutable)]
    pub name: String,
    #[kro(min_items = 1)]
    pub ports: Vec<Port>,
    #[kro(unique_items, max_items = 3)]
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub weights: Option<HashMap<String, i32>>,
    #[kro(default = "FAST_PATH")]
    pub mode: Mode,
    #[kro(default = 0.5, minimum = 0, maximum = 1)]
    pub ratio: f64,
    pub extra: Option<serde_json::Value>,
    #[serde(rename = "enabled")]
    #[kro(default = true)]
    pub on: bool,
    #[kro(
        pattern = "^[a-z]+$",
        one_of = "a,b",
        optional,
        description = "Override"
    )]
    pub tag: Option<String>,
    #[kro(default = -3)]
    pub offset: i32,
    #[serde(skip)]
    pub ignored: u8,
}

#[test]
fn rust_types_map_to_simpleschema() {
    let rgd = serde_json::to_value(Gateway::rgd()).unwrap();
    let schema = &rgd["spec"]["schema"];
    assert_eq!(rgd["metadata"]["name"], "gateway");
    assert_eq!(schema["apiVersion"], "v1beta1");
    assert_eq!(schema["group"], "net.example.com");
    assert_eq!(schema["scope"], "Cluster");
    assert_eq!(schema["shortNames"], json!(["gw"]));
    assert_eq!(schema["categories"], json!(["example"]));
    assert_eq!(
        schema["spec"],
        json!({
            "name": "string | required=true description=\"The gateway's name. Second line.\" immutable=true minLength=1",
            "ports": "[]Port | required=true minItems=1",
            "aliases": "[]string | uniqueItems=true maxItems=3",
            "labels": "map[string]string",
            "weights": "map[string]integer",
            "mode": "string | default=\"FAST_PATH\" enum=\"FAST_PATH,careful\"",
            "ratio": "float | default=0.5 minimum=0 maximum=1",
            "extra": "object",
            "enabled": "boolean | default=true",
            "tag": "string | description=\"Override\" enum=\"a,b\" pattern=\"^[a-z]+$\"",
            "offset": "integer | default=-3",
        })
    );
    assert_eq!(
        schema["types"],
        json!({"Port": {
            "number": "integer | required=true description=\"Port number.\" minimum=1 maximum=65535",
            "proto": "string",
        }})
    );
    assert_eq!(
        schema["status"],
        json!({"configName": "${config.metadata.name}", "nested": {"mode": "${config.data.mode}"}})
    );
    assert_eq!(
        schema["validation"],
        json!([{"expression": "size(self.ports) > 0", "message": "needs a port"}])
    );
    // The YAML and the object agree.
    assert_eq!(
        kro_sdk::core::parse_rgd_yaml(Gateway::rgd_yaml()).unwrap(),
        Gateway::rgd()
    );
}

#[test]
fn kind_type_implements_kube_resource() {
    assert_eq!(Gateway::kind(&()), "Gateway");
    assert_eq!(Gateway::api_version(&()), "net.example.com/v1beta1");
    assert_eq!(Gateway::plural(&()), "gateways");
    assert_eq!(
        Gateway::url_path(&(), None),
        "/apis/net.example.com/v1beta1/gateways"
    );
}

fn spec() -> GatewaySpec {
    GatewaySpec {
        name: "edge".into(),
        ports: vec![Port {
            number: 443,
            protocol: None,
        }],
        aliases: vec![],
        labels: BTreeMap::new(),
        weights: None,
        mode: Mode::Slow,
        ratio: 0.5,
        extra: None,
        on: true,
        tag: None,
        offset: 0,
        ignored: 0,
    }
}

#[test]
fn instances_serialize_with_api_version_and_read_both_statuses() {
    let gw = Gateway::new("edge", spec());
    let json = serde_json::to_value(&gw).unwrap();
    assert_eq!(json["apiVersion"], "net.example.com/v1beta1");
    assert_eq!(json["kind"], "Gateway");
    assert_eq!(json["metadata"]["name"], "edge");
    assert_eq!(json["spec"]["mode"], "careful");
    assert!(json.get("status").is_none());

    let mut from_server = json.clone();
    from_server["status"] = json!({
        "configName": "edge",
        "nested": {"mode": "careful"},
        "state": "IN_PROGRESS",
        "conditions": [{"type": "Ready", "status": "False", "reason": "NotReady",
                        "message": "waiting for config (readyWhen x is not true yet)"}],
    });
    let back: Gateway = serde_json::from_value(from_server).unwrap();
    let status = back.status.clone().unwrap();
    assert_eq!(status.config_name.as_deref(), Some("edge"));
    assert_eq!(status.nested.unwrap().mode.as_deref(), Some("careful"));
    let kro = back.kro_status.clone().unwrap();
    assert_eq!(kro.state.as_deref(), Some("IN_PROGRESS"));
    assert!(!kro.is_ready());
    assert_eq!(back.spec, spec());
}

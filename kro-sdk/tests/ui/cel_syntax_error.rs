use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    resource(id = "config", inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: x}}"),
    resource(
        id = "other",
        inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: y}}",
        include_when = "${schema.spec.name == }"
    )
)]
pub struct ConfigSpec {
    pub name: String,
}

fn main() {}

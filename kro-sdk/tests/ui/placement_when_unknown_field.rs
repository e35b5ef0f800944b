use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    placement(when = "${cluster.labels.region in schema.spec.regionz}"),
    resource(id = "config", inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: \"${schema.spec.name}\"}}")
)]
pub struct SpreadSpec {
    pub name: String,
    pub regions: Vec<String>,
}

fn main() {}

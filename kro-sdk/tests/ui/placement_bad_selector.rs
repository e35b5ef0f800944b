use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    placement(cluster_selector = "env=prod, region in eu", on_deselect = "Orphan"),
    resource(id = "config", inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: \"${schema.spec.name}\"}}")
)]
pub struct SpreadSpec {
    pub name: String,
}

fn main() {}

use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    placement(clusters = ["eu-1"]),
    resource(id = "config", inline = "{apiVersion: v1, kind: ConfigMap, metadata: {name: \"${schema.spec.name}\"}}"),
    resource(id = "record", target = "Hub", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}-record"}
data: {config: "${config.metadata.name}"}
"#)
)]
pub struct SpreadSpec {
    pub name: String,
}

fn main() {}

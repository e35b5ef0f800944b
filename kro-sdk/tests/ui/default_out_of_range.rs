use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(resource(id = "config", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}"}
"#))]
pub struct ConfigSpec {
    pub name: String,
    /// Replicas, at most ten.
    #[kro(default = 20, minimum = 1, maximum = 10)]
    pub replicas: i64,
}

fn main() {}

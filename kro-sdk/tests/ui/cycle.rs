use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    resource(id = "first", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${second.metadata.name}-a"}
"#),
    resource(id = "second", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${first.metadata.name}-b"}
"#)
)]
pub struct PairSpec {
    pub name: String,
}

fn main() {}

use kro_sdk::{ResourceGraph, SimpleSchema};
use serde::{Deserialize, Serialize};

#[derive(SimpleSchema, Serialize, Deserialize, Clone, Debug)]
pub struct Limits {
    pub cpu: String,
}

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(resource(id = "config", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}"}
"#))]
pub struct AppSpec {
    pub name: String,
    #[kro(inline, required)]
    pub limits: Limits,
}

fn main() {}

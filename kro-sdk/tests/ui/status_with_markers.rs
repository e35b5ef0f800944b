use kro_sdk::{ResourceGraph, ResourceStatus};
use serde::{Deserialize, Serialize};

#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug)]
pub struct AppStatus {
    #[kro(expr = "${config.metadata.name}", default = "none")]
    pub name: Option<String>,
}

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(status = AppStatus, resource(id = "config", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}"}
"#))]
pub struct AppSpec {
    pub name: String,
}

fn main() {}

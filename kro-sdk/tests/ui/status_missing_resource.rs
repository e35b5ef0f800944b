use kro_sdk::{ResourceGraph, ResourceStatus};
use serde::{Deserialize, Serialize};

#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    #[kro(expr = "${config.metadata.name}")]
    pub config_name: Option<String>,
    #[kro(expr = "${database.status.ready}")]
    pub database_ready: Option<bool>,
}

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(status = ConfigStatus, resource(id = "config", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}"}
"#))]
pub struct ConfigSpec {
    pub name: String,
}

fn main() {}

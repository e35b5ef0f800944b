use kro_sdk::{ResourceGraph, ResourceStatus};
use serde::{Deserialize, Serialize};

#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    #[kro(expr = "${deployment.status.availableReplicaz}")]
    pub available_replicas: Option<i64>,
}

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(status = AppStatus, resource(id = "deployment", inline = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: "${schema.spec.name}"}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: x}]}
"#))]
pub struct AppSpec {
    pub name: String,
}

fn main() {}

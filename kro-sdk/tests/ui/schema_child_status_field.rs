// The same graph as e2e/data/schema-checks/child_status_field.yaml: the derive, the CLI
// and the hub must reject it with the same message.
use kro_sdk::{ResourceGraph, ResourceStatus};
use serde::{Deserialize, Serialize};

#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ChildStatusFieldStatus {
    #[kro(expr = "${deployment.status.availableReplica}")]
    pub available_replicas: Option<i64>,
}

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(status = ChildStatusFieldStatus,
      resource(id = "deployment", inline = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: "${schema.spec.name}"}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: nginx}]}
"#))]
pub struct ChildStatusFieldSpec {
    pub name: String,
}

fn main() {}

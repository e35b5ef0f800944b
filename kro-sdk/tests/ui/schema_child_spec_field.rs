// The same graph as e2e/data/schema-checks/child_spec_field.yaml: the derive, the CLI
// and the hub must reject it with the same message.
use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(resource(id = "deployment", inline = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: "${schema.spec.name}"}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: nginx}]}
"#),
      resource(id = "config", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}-replicas"}
data:
  replicas: "${string(deployment.spec.replica)}"
"#))]
pub struct ChildSpecFieldSpec {
    pub name: String,
}

fn main() {}

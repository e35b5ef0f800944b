// The same graph as e2e/data/schema-checks/string_in_integer_field.yaml: the derive, the CLI
// and the hub must reject it with the same message.
use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(resource(id = "deployment", inline = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: "${schema.spec.name}"}
spec:
  replicas: ${schema.spec.name}
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: nginx}]}
"#))]
pub struct StringInIntegerFieldSpec {
    pub name: String,
}

fn main() {}

// The same graph as e2e/data/schema-checks/external_ref_field.yaml: the derive, the CLI
// and the hub must reject it with the same message.
use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(resource(id = "platform", external_ref = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: platform, namespace: default}
"#),
      resource(id = "deployment", inline = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: "${schema.spec.name}"}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: "${platform.dat.image}"}]}
"#))]
pub struct ExternalRefFieldSpec {
    pub name: String,
}

fn main() {}

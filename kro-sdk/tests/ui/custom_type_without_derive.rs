use kro_sdk::ResourceGraph;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Database {
    pub name: String,
}

#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(resource(id = "config", inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.database.name}"}
"#))]
pub struct AppSpec {
    pub database: Database,
}

fn main() {
    let _ = App::rgd();
}

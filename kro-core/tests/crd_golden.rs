//! Golden tests: RGD YAML in `tests/data/` -> generated CRD, compared with
//! the checked-in `*.crd.yaml`. Run with `KRO_UPDATE_GOLDEN=1` to rewrite the
//! expected files after an intended change, then review the diff.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kro_core::crd::instance_crd;
use kro_core::rgd::ResourceGraphDefinition;
use kro_core::simpleschema::spec_schema;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load_rgd(name: &str) -> ResourceGraphDefinition {
    let text = std::fs::read_to_string(data(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn check_golden(actual: &Value, expected_file: &str) {
    let path = data(expected_file);
    if std::env::var_os("KRO_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_saphyr::to_string(actual).unwrap()).unwrap();
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with KRO_UPDATE_GOLDEN=1)", path.display()));
    let expected: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(&expected, actual, "{expected_file} differs");
}

/// The status schema the engine infers for the walkthrough's status fields.
fn webapp_status() -> Value {
    json!({
        "type": "object",
        "properties": {
            "availableReplicas": {"type": "integer", "format": "int32"},
            "deploymentConditions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["status", "type"],
                    "properties": {
                        "lastTransitionTime": {"type": "string", "format": "date-time"},
                        "lastUpdateTime": {"type": "string", "format": "date-time"},
                        "message": {"type": "string"},
                        "reason": {"type": "string"},
                        "status": {"type": "string"},
                        "type": {"type": "string"}
                    }
                }
            }
        }
    })
}

fn wordpress_status() -> Value {
    json!({
        "type": "object",
        "properties": {
            "availableReplicas": {"type": "integer", "format": "int32"},
            "databaseReady": {"type": "boolean"},
            "endpoint": {"type": "string"},
            "serviceName": {"type": "string"}
        }
    })
}

#[test]
fn webapp_crd() {
    let rgd = load_rgd("webapp-rgd.yaml");
    let spec = spec_schema(&rgd).unwrap();
    let crd = instance_crd(&rgd, &spec, &webapp_status()).unwrap();
    check_golden(&crd, "webapp.crd.yaml");

    // What the walkthrough promises kro users.
    assert_eq!(crd["metadata"]["name"], "applications.kro.run");
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(props["image"]["default"], "httpd:latest");
    assert_eq!(props["replicas"]["default"], 1);
    assert_eq!(props["svcType"]["default"], "ClusterIP");
}

#[test]
fn wordpress_crd() {
    let rgd = load_rgd("wordpress-rgd.yaml");
    let spec = spec_schema(&rgd).unwrap();
    let crd = instance_crd(&rgd, &spec, &wordpress_status()).unwrap();
    check_golden(&crd, "wordpress.crd.yaml");

    assert_eq!(crd["metadata"]["name"], "wordpresses.kro.run");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["wp"]));
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], json!(["database", "name"]));
    assert_eq!(
        spec["properties"]["database"]["properties"]["storage"]["pattern"],
        "^[0-9]+(Mi|Gi|Ti)$"
    );
}

/// A YAML round trip of the RGD must give the same CRD: nothing in the
/// generated schema depends on map order in the input.
#[test]
fn crd_is_independent_of_field_order() {
    let rgd = load_rgd("wordpress-rgd.yaml");
    let mut reversed = rgd.clone();
    if let Some(Value::Object(fields)) = &mut reversed.spec.schema.spec {
        let rev: serde_json::Map<String, Value> = fields
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        *fields = rev;
    }
    assert_eq!(spec_schema(&rgd).unwrap(), spec_schema(&reversed).unwrap());
}

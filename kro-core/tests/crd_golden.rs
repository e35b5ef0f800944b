//! Golden tests: RGD YAML in `tests/data/` -> generated CRD, compared with
//! the checked-in `*.crd.yaml`. Run with `KRO_UPDATE_GOLDEN=1` to rewrite the
//! expected files after an intended change, then review the diff.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

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

/// The CRD the engine generates for an RGD file: spec schema from
/// SimpleSchema, status schema inferred from the status expressions.
fn compiled_crd(name: &str) -> Value {
    let text = std::fs::read_to_string(data(name)).unwrap();
    let rgd = kro_core::parse_rgd_yaml(&text).unwrap();
    let graph = kro_core::compile(&rgd).unwrap_or_else(|e| panic!("{name}: {e}"));
    graph.crd().clone()
}

#[test]
fn webapp_crd() {
    let crd = compiled_crd("webapp-rgd.yaml");
    check_golden(&crd, "webapp.crd.yaml");

    // What the walkthrough promises kro users.
    assert_eq!(crd["metadata"]["name"], "applications.kro.run");
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(props["image"]["default"], "httpd:latest");
    assert_eq!(props["replicas"]["default"], 1);
    assert_eq!(props["svcType"]["default"], "ClusterIP");
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    // Both declared status fields are in the schema (typed as far as the
    // engine knows the Deployment's schema), next to kro's own.
    for field in [
        "availableReplicas",
        "deploymentConditions",
        "state",
        "conditions",
    ] {
        assert!(status[field].is_object(), "{field}");
    }
}

#[test]
fn wordpress_crd() {
    let crd = compiled_crd("wordpress-rgd.yaml");
    check_golden(&crd, "wordpress.crd.yaml");

    assert_eq!(crd["metadata"]["name"], "wordpresses.kro.run");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["wp"]));
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], json!(["database", "name"]));
    assert_eq!(
        spec["properties"]["database"]["properties"]["storage"]["pattern"],
        "^[0-9]+(Mi|Gi|Ti)$"
    );
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["databaseReady"]["type"], "boolean");
    assert_eq!(status["endpoint"]["type"], "string");
}

/// Duplicate fields never reach SimpleSchema: the YAML loader refuses them
/// with the line.
#[test]
fn duplicate_fields_are_rejected() {
    let text = "apiVersion: kro.run/v1alpha1\nkind: ResourceGraphDefinition\nmetadata: {name: d}\nspec:\n  schema:\n    apiVersion: v1alpha1\n    kind: D\n    spec:\n      name: string\n      name: integer\n";
    let err = kro_core::parse_rgd_yaml(text).unwrap_err().to_string();
    assert!(err.contains("duplicate"), "{err}");
    assert!(err.contains("name"), "{err}");
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

/// `expected` is contained in `actual`: every key of an expected object is
/// present with a contained value; arrays match element by element.
fn assert_contains(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k}: missing in {actual}"));
                assert_contains(av, ev, &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{at}: {actual} vs {expected}");
            for (i, (av, ev)) in a.iter().zip(e).enumerate() {
                assert_contains(av, ev, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(e)) => {
            assert_eq!(a.as_f64(), e.as_f64(), "{at}");
        }
        _ => assert_eq!(actual, expected, "{at}"),
    }
}

/// The required/default/custom-type interactions upstream kro's end-to-end
/// suite asserts on the generated CRD.
#[test]
fn required_and_default_interactions_match_upstream() {
    let crd = compiled_crd("required-defaults-rgd.yaml");
    let text = std::fs::read_to_string(data("required-defaults.expected.yaml")).unwrap();
    let expected: Value = serde_saphyr::from_str(&text).unwrap();
    assert_contains(&crd, &expected, "crd");
    // And the parts that must be absent.
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert!(
        spec.get("default").is_none(),
        "a required field forbids default: {{}}"
    );
    assert!(spec["properties"]["backend"].get("default").is_none());
    assert!(
        spec["properties"]["routes"]["items"]
            .get("default")
            .is_none()
    );
}

/// Schemas of Deployment, StatefulSet, Service, Secret, ConfigMap,
/// PersistentVolumeClaim and Ingress, extracted from the OpenAPI v3
/// documents of a kube-apiserver v1.32 (descriptions removed), the way the
/// hub reads them from a cluster.
fn cluster_schemas() -> kro_core::CompileOptions {
    let text = std::fs::read_to_string(data("openapi-subset.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut options = kro_core::CompileOptions::default();
    options.add_openapi_v3(&doc);
    options
}

fn typed_crd(name: &str) -> Value {
    let text = std::fs::read_to_string(data(name)).unwrap();
    let rgd = kro_core::parse_rgd_yaml(&text).unwrap();
    let graph =
        kro_core::compile_with(&rgd, &cluster_schemas()).unwrap_or_else(|e| panic!("{name}: {e}"));
    graph.crd().clone()
}

#[test]
fn cluster_schemas_cover_the_golden_kinds() {
    let kinds = cluster_schemas().resource_schemas;
    for (api_version, kind) in [
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("v1", "Service"),
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "PersistentVolumeClaim"),
        ("networking.k8s.io/v1", "Ingress"),
    ] {
        let schema = &kinds[&(api_version.to_owned(), kind.to_owned())];
        assert_eq!(
            schema["properties"]["metadata"]["properties"]["name"]["type"],
            "string"
        );
    }
}

/// With the cluster's schemas the status fields get precise types, as
/// upstream kro infers them.
#[test]
fn webapp_crd_with_cluster_schemas() {
    let crd = typed_crd("webapp-rgd.yaml");
    check_golden(&crd, "webapp.typed.crd.yaml");
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["availableReplicas"]["type"], "integer");
    assert_eq!(status["deploymentConditions"]["type"], "array");
    assert_eq!(
        status["deploymentConditions"]["items"]["properties"]["status"]["type"],
        "string"
    );
}

#[test]
fn wordpress_crd_with_cluster_schemas() {
    let crd = typed_crd("wordpress-rgd.yaml");
    check_golden(&crd, "wordpress.typed.crd.yaml");
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["availableReplicas"]["type"], "integer");
    assert_eq!(status["databaseReady"]["type"], "boolean");
}

/// Schema errors reach users through `compile` with the RGD's name and the
/// exact field path.
#[test]
fn compile_reports_schema_errors_with_rgd_and_path() {
    let text = std::fs::read_to_string(data("wordpress-rgd.yaml"))
        .unwrap()
        .replace(
            "replicas: integer | default=1",
            "replicas: integer | default=one",
        );
    let rgd = kro_core::parse_rgd_yaml(&text).unwrap();
    let err = kro_core::compile(&rgd).unwrap_err().to_string();
    assert!(err.contains("wordpress"), "{err}");
    assert!(err.contains("spec.schema.spec.replicas"), "{err}");
    assert!(err.contains("default=\"one\""), "{err}");
}

//! The manifests in `deploy/` are what GitOps users apply: they must parse,
//! and the Deployment's arguments must be ones the binary accepts.

// Helpers fail the test on any error.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn deploy(name: &str) -> Vec<serde_json::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    kro_core::parse_yaml_documents(&text).unwrap()
}

#[test]
fn manifests_parse_and_name_their_kinds() {
    let kinds: Vec<String> = [
        "namespace.yaml",
        "rbac.yaml",
        "deployment.yaml",
        "crds/resourcegraphdefinitions.kro.run.yaml",
        "crds/clusters.hub.kro.run.yaml",
    ]
    .iter()
    .flat_map(|f| deploy(f))
    .map(|d| d["kind"].as_str().unwrap().to_owned())
    .collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "CustomResourceDefinition",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "missing {kind} in {kinds:?}"
        );
    }
}

#[test]
fn the_deployment_arguments_are_accepted_by_the_binary() {
    let docs = deploy("deployment.yaml");
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_kro-hub"))
        .args(&args)
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Usage errors exit 2; this run gets past parsing and fails on the file.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/kubeconfig"), "{stderr}");
}

#[test]
fn the_cluster_crd_in_deploy_is_the_one_the_hub_installs() {
    let installed =
        kro_hub::install::parse_crd(kro_hub::members::cluster::CLUSTER_CRD_YAML).unwrap();
    let shipped = deploy("crds/clusters.hub.kro.run.yaml");
    assert_eq!(shipped.len(), 1);
    assert_eq!(serde_json::to_value(&installed).unwrap()["spec"], {
        let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
            serde_json::from_value(shipped[0].clone()).unwrap();
        serde_json::to_value(crd).unwrap()["spec"].clone()
    });
    assert_eq!(installed.spec.group, "hub.kro.run");
    assert_eq!(installed.spec.scope, "Cluster");
    let columns: Vec<String> = installed.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.to_uppercase())
        .collect();
    assert_eq!(columns, ["READY", "VERSION", "AGE"]);
}

#[test]
fn the_image_is_built_without_the_demo_and_its_test_api_server() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/Dockerfile");
    let dockerfile = std::fs::read_to_string(path).unwrap();
    let build = dockerfile
        .lines()
        .find(|l| l.starts_with("RUN cargo build"))
        .unwrap();
    assert!(build.contains("--no-default-features"), "{build}");
    assert!(build.contains("--features jemalloc"), "{build}");
    let manifest =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .unwrap();
    assert!(manifest.contains("kro-sandbox = { workspace = true, optional = true }"));
}

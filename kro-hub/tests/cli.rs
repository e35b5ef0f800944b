//! The offline commands, run as a user would run the binary.

// Helpers fail the test on any error.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn kro_hub(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kro-hub"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn validate_accepts_the_walkthrough_and_prints_its_order() {
    let out = kro_hub(&["validate".as_ref(), data("webapp-rgd.yaml").as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("web-app is valid: kind Application, order deployment -> service"),
        "{stdout}"
    );
}

#[test]
fn validate_rejects_a_cycle_naming_file_rgd_and_cycle() {
    let out = kro_hub(&[
        "validate".as_ref(),
        data("webapp-rgd.yaml").as_os_str(),
        data("cycle-rgd.yaml").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cycle-rgd.yaml"), "{stderr}");
    assert!(stderr.contains("cyclic"), "{stderr}");
    assert!(
        stderr.contains("first -> second -> first") || stderr.contains("second -> first -> second"),
        "{stderr}"
    );
}

#[test]
fn render_prints_the_instance_resources() {
    let out = kro_hub(&[
        "render".as_ref(),
        "--rgd".as_ref(),
        data("webapp-rgd.yaml").as_os_str(),
        "--instance".as_ref(),
        data("app1.yaml").as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let docs = kro_core::parse_yaml_documents(&stdout).unwrap();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["metadata"]["name"], "web-app-1");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "httpd:2.4"
    );
}

#[test]
fn validate_checks_the_rollout_and_names_the_field() {
    let ok = kro_hub(&["validate".as_ref(), data("rollout-rgd.yaml").as_os_str()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let text = std::fs::read_to_string(data("rollout-rgd.yaml")).unwrap();
    let dir = std::env::temp_dir().join(format!("kro-hub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad-rollout.yaml");
    std::fs::write(
        &bad,
        text.replace(
            "minReadySeconds: 30",
            "minReadySeconds: 30\n    progressDeadlineSeconds: 10",
        ),
    )
    .unwrap();
    let out = kro_hub(&["validate".as_ref(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.rollout.progressDeadlineSeconds")
            && stderr.contains("must be greater than minReadySeconds"),
        "{stderr}"
    );
}

#[test]
fn render_for_a_cluster_says_which_wave_it_is_in() {
    let out = kro_hub(&[
        "render".as_ref(),
        "--rgd".as_ref(),
        data("rollout-rgd.yaml").as_os_str(),
        "--instance".as_ref(),
        data("staged.yaml").as_os_str(),
        "--cluster".as_ref(),
        "eu-1".as_ref(),
        "--cluster-label".as_ref(),
        "wave=canary".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("# rollout: cluster eu-1 is in wave canary (1 of 2)"),
        "{stdout}"
    );
    let docs = kro_core::parse_yaml_documents(&stdout).unwrap();
    assert_eq!(docs[0]["data"]["cluster"], "eu-1");
    assert_eq!(docs[0]["data"]["version"], "v2");
}

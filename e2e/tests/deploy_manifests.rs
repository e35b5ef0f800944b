//! The manifests in `deploy/` and `kind-configs/` as a cluster operator
//! gets them: every file parses and names its objects, the kustomizations
//! list every manifest and render with `kubectl kustomize`, the Deployment
//! keeps its promises (leader election, probes, resources, a restrictive
//! security context), and the shell scripts pass shellcheck.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root")
}

/// Every file under `dir` whose name ends with one of `extensions`, sorted.
fn files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    files(&root().join(dir), &["yaml", "yml"])
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    kro_core::parse_yaml_documents(&text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

fn is_kustomization(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()) == Some("kustomization.yaml")
}

#[test]
fn every_manifest_parses_and_names_its_objects() {
    let mut checked = 0;
    for path in yaml_files("deploy")
        .into_iter()
        .chain(yaml_files("kind-configs"))
    {
        let docs = documents(&path);
        assert!(!docs.is_empty(), "{} holds no document", path.display());
        for doc in docs {
            let where_ = format!("{}: {doc:.200}", path.display());
            let api_version = doc["apiVersion"].as_str().unwrap_or_default();
            let kind = doc["kind"].as_str().unwrap_or_default();
            assert!(!api_version.is_empty(), "no apiVersion in {where_}");
            assert!(!kind.is_empty(), "no kind in {where_}");
            if api_version.starts_with("kind.x-k8s.io/") {
                // A kind cluster configuration, not a Kubernetes object.
                assert!(doc["name"].as_str().is_some(), "unnamed cluster: {where_}");
            } else if kind != "Kustomization" {
                let name = doc["metadata"]["name"].as_str().unwrap_or_default();
                assert!(!name.is_empty(), "no metadata.name in {where_}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} documents found");
}

#[test]
fn kind_clusters_have_distinct_pod_and_service_subnets() {
    let configs = yaml_files("kind-configs");
    let mut seen = BTreeSet::new();
    for path in &configs {
        let doc = &documents(path)[0];
        for key in ["podSubnet", "serviceSubnet"] {
            let subnet = doc["networking"][key]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no networking.{key}", path.display()));
            assert!(
                seen.insert(subnet.to_owned()),
                "{}: {subnet} is used twice",
                path.display()
            );
        }
    }
    assert_eq!(seen.len(), 2 * configs.len());
}

/// The kustomization that owns `file`: the one in its directory or the
/// nearest one above it, within `deploy/`.
fn owner(file: &Path, top: &Path) -> Option<PathBuf> {
    let mut dir = file.parent()?;
    loop {
        let k = dir.join("kustomization.yaml");
        if k.exists() {
            return Some(k);
        }
        if dir == top {
            return None;
        }
        dir = dir.parent()?;
    }
}

/// The files and directories a kustomization's `resources` name, resolved.
fn resources(kustomization: &Path) -> Vec<PathBuf> {
    let doc = &documents(kustomization)[0];
    let dir = kustomization.parent().unwrap();
    doc["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no resources", kustomization.display()))
        .iter()
        .map(|r| dir.join(r.as_str().expect("a resource path")))
        .collect()
}

#[test]
fn every_manifest_in_deploy_is_listed_by_its_kustomization() {
    let top = root().join("deploy");
    let manifests = yaml_files("deploy");
    let kustomizations: Vec<&PathBuf> = manifests.iter().filter(|p| is_kustomization(p)).collect();
    assert!(
        kustomizations.contains(&&top.join("kustomization.yaml")),
        "deploy/ is no kustomization"
    );
    assert!(
        kustomizations.contains(&&top.join("member/kustomization.yaml")),
        "deploy/member/ is no kustomization"
    );
    let mut listed = BTreeSet::new();
    for k in &kustomizations {
        for r in resources(k) {
            assert!(
                r.exists(),
                "{} lists {}, which does not exist",
                k.display(),
                r.display()
            );
            listed.insert(r.canonicalize().unwrap());
        }
    }
    for file in manifests.iter().filter(|p| !is_kustomization(p)) {
        let k = owner(file, &top)
            .unwrap_or_else(|| panic!("{} is in no kustomization", file.display()));
        assert!(
            resources(&k)
                .iter()
                .any(|r| r.canonicalize().ok().as_ref() == Some(file)),
            "{} is not listed in {}",
            file.display(),
            k.display()
        );
    }
}

fn kubectl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kubectl"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "\n!!!!!!!!\n!!! kubectl is not installed: `kubectl kustomize` NOT CHECKED \
             (only the files kustomization.yaml lists were checked)\n!!!!!!!!\n"
        );
    }
    found
}

/// `kubectl kustomize <dir>`'s objects, or `None` without kubectl.
fn kustomize(dir: &str) -> Option<Vec<Value>> {
    let kubectl = kubectl()?;
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(root().join(dir))
        .output()
        .expect("running kubectl kustomize");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl kustomize {dir}: {stderr}");
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    Some(kro_core::parse_yaml_documents(&text).expect("rendered YAML parses"))
}

fn ids(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| {
            format!(
                "{}/{}/{}",
                d["kind"].as_str().unwrap_or_default(),
                d["metadata"]["namespace"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn kustomize_renders_every_listed_object() {
    for dir in ["deploy", "deploy/member"] {
        let listed: Vec<Value> = resources(&root().join(dir).join("kustomization.yaml"))
            .iter()
            .flat_map(|r| documents(r))
            .collect();
        let Some(rendered) = kustomize(dir) else {
            return;
        };
        assert_eq!(ids(&rendered), ids(&listed), "kubectl kustomize {dir}");
        assert_eq!(rendered.len(), listed.len(), "kubectl kustomize {dir}");
    }
    let hub = ids(&kustomize("deploy").expect("kubectl was found above"));
    for id in [
        "Namespace//kro-system",
        "CustomResourceDefinition//resourcegraphdefinitions.kro.run",
        "CustomResourceDefinition//clusters.hub.kro.run",
        "ServiceAccount/kro-system/kro-hub",
        "ClusterRole//kro-hub",
        "Deployment/kro-system/kro-hub",
    ] {
        assert!(hub.contains(id), "{id} not rendered: {hub:?}");
    }
}

fn deployment() -> Value {
    documents(&root().join("deploy/deployment.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment in deploy/deployment.yaml")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn the_deployment_elects_a_leader_and_runs_locked_down() {
    let d = deployment();
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(d["spec"]["replicas"], 2);
    let args = strings(&c["args"]);
    assert_eq!(args.first(), Some(&"run"));
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    assert!(
        args.contains(&"--leader-elect-namespace=kro-system"),
        "{args:?}"
    );
    // The Lease names its holder by pod.
    let env = c["env"].as_array().unwrap();
    assert!(
        env.iter().any(|e| e["name"] == "POD_NAME"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"),
        "{env:?}"
    );
    // Probes on the port --probe-addr serves.
    let addr = args
        .iter()
        .find_map(|a| a.strip_prefix("--probe-addr="))
        .expect("--probe-addr");
    assert!(
        addr.starts_with("0.0.0.0:"),
        "probes must be reachable: {addr}"
    );
    let port = addr.rsplit(':').next().unwrap().parse::<u64>().unwrap();
    let port_name = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["containerPort"] == port)
        .expect("the probe port is declared")["name"]
        .clone();
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], port_name, "{probe}");
    }
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource}"
            );
        }
    }
    // The benchmark runs the hub with the runtime this limit gives it.
    assert_eq!(
        c["resources"]["limits"]["cpu"],
        kro_e2e::HUB_CPU_LIMIT.to_string(),
        "fanout-bench's HUB_CPU_LIMIT follows the deployed limit"
    );
    let malloc_conf = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "_RJEM_MALLOC_CONF")
        .expect("the allocator's settings are deployed");
    assert_eq!(
        malloc_conf["value"],
        kro_e2e::HUB_MALLOC_CONF,
        "fanout-bench's HUB_MALLOC_CONF follows the deployment"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    // A numeric user, or the kubelet cannot check runAsNonRoot against the
    // image's named one.
    assert!(
        pod["securityContext"]["runAsUser"]
            .as_u64()
            .is_some_and(|u| u > 0)
    );
    assert_eq!(pod["serviceAccountName"], "kro-hub");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
}

#[test]
fn the_service_account_may_hold_the_lease_the_deployment_elects_on() {
    let rbac = documents(&root().join("deploy/rbac.yaml"));
    let bound_roles: Vec<&Value> = rbac
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" && d["metadata"]["namespace"] == "kro-system")
        .filter(|b| {
            b["subjects"].as_array().is_some_and(|s| {
                s.iter().any(|s| {
                    s["kind"] == "ServiceAccount"
                        && s["name"] == "kro-hub"
                        && s["namespace"] == "kro-system"
                })
            })
        })
        .filter_map(|b| {
            rbac.iter().find(|r| {
                r["kind"] == "Role"
                    && r["metadata"]["name"] == b["roleRef"]["name"]
                    && r["metadata"]["namespace"] == "kro-system"
            })
        })
        .collect();
    let lease_verbs: BTreeSet<&str> = bound_roles
        .iter()
        .flat_map(|r| r["rules"].as_array().unwrap())
        .filter(|rule| {
            strings(&rule["apiGroups"]).contains(&"coordination.k8s.io")
                && strings(&rule["resources"]).contains(&"leases")
        })
        .flat_map(|rule| strings(&rule["verbs"]))
        .collect();
    for verb in ["get", "create", "update"] {
        assert!(lease_verbs.contains(verb), "leases {verb}: {lease_verbs:?}");
    }
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let scripts: Vec<PathBuf> = files(&root().join("deploy"), &["sh"])
        .into_iter()
        .chain(files(&root().join("kind-configs"), &["sh"]))
        .collect();
    assert!(scripts.len() >= 2, "{scripts:?}");
    for script in &scripts {
        let text = std::fs::read_to_string(script).unwrap();
        assert!(
            text.starts_with("#!/usr/bin/env bash\n"),
            "{}",
            script.display()
        );
        assert!(
            text.contains("\nset -euo pipefail\n"),
            "{}",
            script.display()
        );
    }
    let shellcheck = Command::new("shellcheck").arg("--version").output();
    if shellcheck.is_err() {
        eprintln!(
            "\n!!!!!!!!\n!!! shellcheck is not installed: {} scripts NOT LINTED\n!!!!!!!!\n",
            scripts.len()
        );
        return;
    }
    let out = Command::new("shellcheck")
        .args(&scripts)
        .output()
        .expect("running shellcheck");
    assert!(
        out.status.success(),
        "shellcheck:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

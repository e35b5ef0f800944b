//! Drives the installed `kubectl` against a sandbox: api-resources, server-side apply,
//! `get -o yaml`, a custom resource after its CRD, printer columns, and delete.
//! Skipped, with a message, when `kubectl` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kro_sandbox::SandboxBuilder;

fn kubectl_present() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "kubectl {args:?} failed:\n{text}");
        text
    }

    fn apply(&self, dir: &Path, name: &str, yaml: &str) -> String {
        let file = dir.join(name);
        std::fs::write(&file, yaml).unwrap();
        self.ok(&["apply", "--server-side", "-f", file.to_str().unwrap()])
    }
}

const CRD: &str = r"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string, default: blue}
";

#[test]
fn kubectl_works_against_a_sandbox() {
    if !kubectl_present() {
        println!("SKIPPED: kubectl is not installed; this test drives the real kubectl binary");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new("kubectl").simulator(false).start())
        .unwrap();
    let dir = std::env::temp_dir().join(format!("kro-sandbox-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    sb.write_kubeconfig(&kubeconfig).unwrap();
    let k = Kubectl { kubeconfig };

    let resources = k.ok(&["api-resources"]);
    for needle in [
        "deployments",
        "configmaps",
        "customresourcedefinitions",
        "leases",
    ] {
        assert!(
            resources.contains(needle),
            "api-resources lacks {needle}:\n{resources}"
        );
    }

    let applied = k.apply(
        &dir,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {mode: fast}\n",
    );
    assert!(applied.contains("serverside-applied"), "{applied}");
    let yaml = k.ok(&[
        "get",
        "configmap",
        "settings",
        "-n",
        "default",
        "-o",
        "yaml",
    ]);
    assert!(
        yaml.contains("mode: fast") && yaml.contains("uid:"),
        "{yaml}"
    );

    k.apply(&dir, "crd.yaml", CRD);
    let resources = k.ok(&["api-resources", "--api-group", "example.com"]);
    assert!(resources.contains("widgets"), "{resources}");
    k.apply(
        &dir,
        "widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 3}\n",
    );
    let table = k.ok(&["get", "wg", "-n", "default"]);
    assert!(
        table.contains("SIZE") && table.contains("w1") && table.contains('3'),
        "{table}"
    );
    let widget = k.ok(&["get", "widget", "w1", "-n", "default", "-o", "yaml"]);
    assert!(
        widget.contains("color: blue"),
        "defaults are applied:\n{widget}"
    );

    // `kubectl explain` reads the OpenAPI v3 documents: built-in kinds and the CRD's schema.
    let explained = k.ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        explained.contains("replicas") && explained.contains("<integer>"),
        "{explained}"
    );
    let explained = k.ok(&["explain", "widgets.spec"]);
    assert!(
        explained.contains("size") && explained.contains("color"),
        "{explained}"
    );

    // An Event the hub writes through events.k8s.io shows in `kubectl get events`.
    k.apply(
        &dir,
        "event.yaml",
        "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: w1.1, namespace: default}\neventTime: \"2026-01-01T00:00:00.000000Z\"\nreportingController: kro.run/hub\nreportingInstance: hub-a\naction: Apply\nreason: Applied\ntype: Normal\nnote: widget applied\nregarding: {apiVersion: example.com/v1, kind: Widget, name: w1, namespace: default}\n",
    );
    let table = k.ok(&["get", "events", "-n", "default"]);
    assert!(
        table.contains("LAST SEEN")
            && table.contains("widget/w1")
            && table.contains("widget applied"),
        "{table}"
    );
    let events = k.ok(&["get", "events", "-n", "default", "-o", "yaml"]);
    assert!(
        events.contains("message: widget applied") && events.contains("kind: Widget"),
        "{events}"
    );

    k.ok(&["delete", "configmap", "settings", "-n", "default"]);
    let (found, text) = k.run(&["get", "configmap", "settings", "-n", "default"]);
    assert!(!found && text.contains("NotFound"), "{text}");

    std::fs::remove_dir_all(&dir).unwrap();
    drop(sb);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}

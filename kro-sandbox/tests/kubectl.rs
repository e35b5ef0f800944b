//! Drives the installed `kubectl` against a sandbox: api-resources, server-side apply,
//! `get -o yaml`, a custom resource after its CRD, printer columns, and delete; and the
//! generator commands (`create namespace`, `create configmap`, `create deployment`), which
//! send protobuf bodies, with `get -o wide`, `get -w`, client-side `apply` and `explain`.
//! Skipped, with a loud message, when `kubectl` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        eprintln!("SKIPPED: kubectl is not installed; this test drives the real kubectl binary");
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

const WIDGET_CRD: &str = r"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Gadget, plural: gadgets}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the gadget should be.
            properties:
              size: {type: integer, description: How big the gadget is.}
";

/// Runs a sandbox and a kubeconfig for it; the runtime serves it until dropped.
fn sandbox(
    name: &str,
) -> (
    tokio::runtime::Runtime,
    kro_sandbox::Sandbox,
    PathBuf,
    Kubectl,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new(name).simulator(false).start())
        .unwrap();
    let dir = std::env::temp_dir().join(format!("kro-sandbox-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    sb.write_kubeconfig(&kubeconfig).unwrap();
    (rt, sb, dir, Kubectl { kubeconfig })
}

#[test]
fn kubectl_generators_send_protobuf_and_work() {
    if !kubectl_present() {
        eprintln!(
            "SKIPPED: kubectl is not installed; kubectl_generators_send_protobuf_and_work drives the real kubectl binary"
        );
        return;
    }
    let (rt, sb, dir, k) = sandbox("kubectl-pb");

    // The generators send protobuf bodies and read protobuf answers.
    let created = k.ok(&["create", "namespace", "x", "-v=8"]);
    assert!(
        created.contains("Content-Type: application/vnd.kubernetes.protobuf")
            && created.contains("namespace/x created"),
        "{created}"
    );
    assert!(k.ok(&["get", "namespace", "x"]).contains("Active"));
    let created = k.ok(&["create", "configmap", "c", "--from-literal=a=b", "-n", "x"]);
    assert!(created.contains("configmap/c created"), "{created}");
    let data = k.ok(&[
        "get",
        "configmap",
        "c",
        "-n",
        "x",
        "-o",
        "jsonpath={.data.a}",
    ]);
    assert_eq!(data, "b");
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=p=hunter2",
        "-n",
        "x",
    ]);
    let secret = k.ok(&["get", "secret", "s", "-n", "x", "-o", "jsonpath={.data.p}"]);
    assert_eq!(secret, "aHVudGVyMg==", "bytes travel as bytes");

    let created = k.ok(&["create", "deployment", "d", "--image=nginx", "-n", "x"]);
    assert!(created.contains("deployment.apps/d created"), "{created}");
    let yaml = k.ok(&["get", "deployment", "d", "-n", "x", "-o", "yaml"]);
    for needle in [
        "replicas: 1",
        "image: nginx",
        "imagePullPolicy: Always",
        "maxSurge: 25%",
        "app: d",
        "generation: 1",
    ] {
        assert!(yaml.contains(needle), "{needle} missing:\n{yaml}");
    }
    // Go's zero values of omitempty fields are not stored, as a JSON client would send them.
    for absent in ["generateName", "minReadySeconds", "paused", "selfLink"] {
        assert!(!yaml.contains(absent), "{absent} stored:\n{yaml}");
    }
    // An explicit zero of a pointer field is kept.
    k.ok(&[
        "create",
        "deployment",
        "z",
        "--image=nginx",
        "--replicas=0",
        "-n",
        "x",
    ]);
    let replicas = k.ok(&[
        "get",
        "deployment",
        "z",
        "-n",
        "x",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas, "0");

    let wide = k.ok(&["get", "deploy", "-n", "x", "-o", "wide"]);
    let header = wide.lines().next().unwrap_or_default();
    for column in [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ] {
        assert!(header.contains(column), "{column} missing:\n{wide}");
    }
    let row = wide
        .lines()
        .find(|l| l.starts_with("d "))
        .unwrap_or_default();
    assert!(
        row.contains("0/1") && row.contains("nginx") && row.contains("app=d"),
        "{wide}"
    );

    // `get -w` prints the list, then each change as it happens.
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .args(["get", "configmaps", "-n", "x", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut created_late = false;
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.starts_with("late ")) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
        if !created_late && seen.iter().any(|l| l.starts_with("c ")) {
            k.ok(&[
                "create",
                "configmap",
                "late",
                "--from-literal=x=y",
                "-n",
                "x",
            ]);
            created_late = true;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        seen.first().is_some_and(|h| h.contains("DATA"))
            && seen.iter().any(|l| l.starts_with("late ")),
        "{seen:?}"
    );

    // Client-side apply of a built-in and, after its CRD, a custom object.
    let manifests = dir.join("objects.yaml");
    std::fs::write(dir.join("crd.yaml"), WIDGET_CRD).unwrap();
    let applied = k.ok(&["apply", "-f", dir.join("crd.yaml").to_str().unwrap()]);
    assert!(applied.contains("created"), "{applied}");
    std::fs::write(
        &manifests,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: x}\ndata: {k: v}\n---\napiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1, namespace: x}\nspec: {size: 3}\n",
    )
    .unwrap();
    let file = manifests.to_str().unwrap();
    let applied = k.ok(&["apply", "-f", file]);
    assert!(
        applied.contains("configmap/applied created")
            && applied.contains("gadget.example.com/g1 created"),
        "{applied}"
    );
    let again = k.ok(&["apply", "-f", file]);
    assert!(again.contains("configmap/applied unchanged"), "{again}");

    let explained = k.ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        explained.contains("FIELD: replicas <integer>") && explained.contains("desired pods"),
        "{explained}"
    );
    let explained = k.ok(&["explain", "gadget.spec"]);
    assert!(
        explained.contains("What the gadget should be.")
            && explained.contains("How big the gadget is."),
        "{explained}"
    );

    let deleted = k.ok(&["delete", "-f", file]);
    assert!(
        deleted.contains("\"g1\" deleted") && deleted.contains("\"applied\" deleted"),
        "{deleted}"
    );
    let deleted = k.ok(&["delete", "deployment", "d", "-n", "x"]);
    assert!(
        deleted.contains("deployment.apps \"d\" deleted"),
        "{deleted}"
    );
    let (found, text) = k.run(&["get", "deployment", "d", "-n", "x"]);
    assert!(!found && text.contains("NotFound"), "{text}");

    std::fs::remove_dir_all(&dir).unwrap();
    drop(sb);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// The rest of a first session with kubectl: `label`, `scale`, `rollout
/// status` (with the workload simulator), `describe` listing Events written
/// through `events.k8s.io/v1` (as the hub writes them), server-side apply
/// refusing an unknown field as the real server does, `create
/// --validate=false` pruning it, and `delete --wait`.
#[test]
fn kubectl_label_scale_rollout_describe_validate_and_delete() {
    if !kubectl_present() {
        eprintln!("SKIPPED: kubectl is not installed; this test drives the real kubectl binary");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(
            SandboxBuilder::new("kubectl-verbs")
                .simulator_delay(Duration::from_millis(200))
                .start(),
        )
        .unwrap();
    let dir =
        std::env::temp_dir().join(format!("kro-sandbox-kubectl-verbs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    sb.write_kubeconfig(&kubeconfig).unwrap();
    let k = Kubectl { kubeconfig };

    k.ok(&["create", "namespace", "shop"]);
    k.ok(&["create", "deployment", "web", "--image=nginx", "-n", "shop"]);
    assert!(
        k.ok(&["label", "deployment", "web", "tier=front", "-n", "shop"])
            .contains("labeled")
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deployment",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.labels.tier}"
        ]),
        "front"
    );
    assert!(
        k.ok(&["scale", "deployment", "web", "--replicas=3", "-n", "shop"])
            .contains("scaled")
    );
    let status = k.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "shop",
        "--timeout=30s",
    ]);
    assert!(status.contains("successfully rolled out"), "{status}");

    // An Event written as the hub writes them (events.k8s.io/v1, regarding
    // with the uid) shows in `describe` and `get events` (core/v1).
    let uid = k.ok(&[
        "get",
        "deployment",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let event = format!(
        "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {{name: web.1, namespace: shop}}\n\
         eventTime: \"2026-01-01T00:00:00.000000Z\"\nreportingController: kro-hub\n\
         reportingInstance: kro-hub-0\naction: Apply\nreason: ResourcesReady\n\
         note: every resource is ready\ntype: Normal\n\
         regarding: {{apiVersion: apps/v1, kind: Deployment, name: web, namespace: shop, uid: {uid}}}\n"
    );
    let file = dir.join("event.yaml");
    std::fs::write(&file, event).unwrap();
    k.ok(&["create", "-f", file.to_str().unwrap()]);
    let described = k.ok(&["describe", "deployment", "web", "-n", "shop"]);
    let events = described.split("Events:").nth(1).unwrap_or_default();
    assert!(
        events.contains("ResourcesReady") && events.contains("every resource is ready"),
        "{described}"
    );
    assert!(
        k.ok(&["get", "events", "-n", "shop"])
            .contains("deployment/web")
    );

    // An unknown field: refused by server-side apply (strict), pruned by
    // a create without validation.
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad, namespace: shop}\ndata: {a: b}\nbogus: 1\n",
    )
    .unwrap();
    let (ok, text) = k.run(&["apply", "--server-side", "-f", bad.to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(".bogus: field not declared in schema"),
        "{text}"
    );
    k.ok(&["create", "--validate=false", "-f", bad.to_str().unwrap()]);
    let stored = k.ok(&["get", "configmap", "bad", "-n", "shop", "-o", "yaml"]);
    assert!(
        !stored.contains("bogus") && stored.contains("a: b"),
        "{stored}"
    );

    let started = Instant::now();
    assert!(
        k.ok(&["delete", "deployment", "web", "-n", "shop", "--wait"])
            .contains("deleted")
    );
    let (found, _) = k.run(&["get", "deployment", "web", "-n", "shop"]);
    assert!(!found, "gone once delete --wait returns");
    assert!(started.elapsed() < Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
}

//! The RBAC in `deploy/` is enough, and the fixed part is complete: the hub
//! runs as the deploy ServiceAccount on a sandbox that enforces exactly
//! `deploy/rbac.yaml`, and on a member as the member recipe's
//! ServiceAccount (registered with the kubeconfig
//! `deploy/member/make-kubeconfig.sh` writes). The broad role meant to be
//! narrowed (`kro-hub-resources`, `kro-hub-member-resources`) is narrowed in
//! these tests to the kinds the scenario uses, with its verbs kept, so
//! whatever else the hub calls must come from the fixed roles. Every
//! scenario converges and the API servers deny nothing.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kro_e2e::fleet::{Fleet, HUB_NAMESPACE};
use kro_e2e::{Env, HarnessError, condition, hub_options};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

const HUB_ACCOUNT: &str = "kro-hub";
const MEMBER_ACCOUNT: &str = "kro-hub";

/// Everything logged in this test process: the sandboxes log each request
/// they deny ("forbidden", with the user, verb and path).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "warn,kro_sandbox::http::filters=debug",
            ))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        logs
    })
}

/// Prints the captured logs when the test fails, for its diagnosis.
struct ShowLogsOnPanic;

impl Drop for ShowLogsOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = logs()
                .0
                .lock()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            eprintln!("captured logs:\n{text}");
        }
    }
}

/// The requests the sandboxes denied so far.
fn denied() -> Vec<String> {
    let text = logs()
        .0
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("kro_sandbox::http::filters: forbidden"))
        .map(str::to_owned)
        .collect()
}

fn deploy_file(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    kro_core::parse_yaml_documents(&text).unwrap()
}

/// `docs` with the ClusterRole `role` (shipped as every kind) narrowed to
/// `kinds` (API group, resources), keeping its verbs.
fn narrowed(mut docs: Vec<Value>, role: &str, kinds: &[(&str, &[&str])]) -> Vec<Value> {
    let doc = docs
        .iter_mut()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == role)
        .unwrap_or_else(|| panic!("no ClusterRole {role}"));
    let rules = doc["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{role}: one rule, over every kind");
    assert_eq!(rules[0]["apiGroups"], json!(["*"]), "{role}");
    assert_eq!(rules[0]["resources"], json!(["*"]), "{role}");
    let verbs = rules[0]["verbs"].clone();
    doc["rules"] = kinds
        .iter()
        .map(|(group, resources)| json!({"apiGroups": [group], "resources": resources, "verbs": verbs}))
        .collect();
    docs
}

/// Applies `doc` with server-side apply as `client` (an administrator).
async fn apply_as(client: &kube::Client, doc: &Value) {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap());
    let (ar, caps): (ApiResource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let name = doc["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = match (caps.scope, doc["metadata"]["namespace"].as_str()) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        name,
        &PatchParams::apply("e2e-admin").force(),
        &Patch::Apply(doc),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

/// A client configuration that authenticates with `token`.
async fn config_with_token(sandbox: &kro_sandbox::Sandbox, token: &str) -> kube::Config {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&sandbox.kubeconfig_yaml_with_token(token)).unwrap();
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap()
}

/// A hub sandbox with `deploy/namespace.yaml` and `deploy/rbac.yaml` (the
/// resources role narrowed to `kinds`) applied, and the hub running as the
/// deploy ServiceAccount. `None` on a real cluster.
async fn hub_as_deploy_account(
    kinds: &[(&str, &[&str])],
    options: kro_hub::HubOptions,
) -> Option<Env> {
    logs();
    let mut env = Env::cluster_only().await.unwrap();
    let Some(sandbox) = &env.sandbox else {
        eprintln!(
            "\n!!!!!!!!\n!!! on a real cluster: the deploy RBAC is checked on the sandbox only; NOT CHECKED\n!!!!!!!!\n"
        );
        return None;
    };
    for doc in deploy_file("namespace.yaml").into_iter().chain(narrowed(
        deploy_file("rbac.yaml"),
        "kro-hub-resources",
        kinds,
    )) {
        env.apply(&doc).await.unwrap();
    }
    let token = sandbox.service_account_token(HUB_NAMESPACE, HUB_ACCOUNT);
    env.config = config_with_token(sandbox, &token).await;
    // The CRDs are not applied here: the hub installs them itself.
    env.start_hub(options).await.unwrap();
    Some(env)
}

/// No request of kro-hub's own identity (on the hub or a member) was
/// denied. Requests the hub makes as an impersonated team ServiceAccount are
/// that account's business; they are shown, not counted.
fn assert_nothing_denied() {
    let hub = format!("user=system:serviceaccount:{HUB_NAMESPACE}:{HUB_ACCOUNT} ");
    let member = format!("user=system:serviceaccount:{HUB_NAMESPACE}:{MEMBER_ACCOUNT} ");
    let (ours, others): (Vec<String>, Vec<String>) = denied()
        .into_iter()
        .partition(|l| l.contains(&hub) || l.contains(&member));
    if !others.is_empty() {
        eprintln!("denied to other users:\n{}", others.join("\n"));
    }
    assert!(ours.is_empty(), "denied to kro-hub:\n{}", ours.join("\n"));
}

fn notes_rgd() -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "notes"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "Note",
                "spec": {"text": "string | default=hello"},
                "status": {"text": "${config.data.text}"}},
            "resources": [
                {"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-note"},
                    "data": {"text": "${schema.spec.text}"}}}
            ]
        }
    })
}

fn team_rgd() -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "team-notes"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "TeamNote",
                "spec": {"secret": "string | required=true"},
                "status": {"owner": "${secret.data.owner}"}},
            "defaultServiceAccounts": {"team-a": "app-runner"},
            "resources": [
                {"id": "secret", "externalRef": {"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "${schema.spec.secret}", "namespace": "team-a"}}},
                {"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-team"},
                    "data": {"from": "team-a"}}}
            ]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_needs_no_more_than_deploy_grants() {
    let options = kro_hub::HubOptions {
        delete_crds: true,
        ..hub_options()
    };
    // Secrets: the team RGD's externalRef, which the hub watches with its own
    // identity.
    let _show = ShowLogsOnPanic;
    let Some(env) = hub_as_deploy_account(&[("", &["configmaps", "secrets"])], options).await
    else {
        return;
    };
    let sandbox = env.sandbox.as_ref().unwrap();

    // Leader election on the Lease the Deployment names, as the account.
    let client = sandbox
        .service_account_client(HUB_NAMESPACE, HUB_ACCOUNT)
        .await
        .unwrap();
    let elector = kro_hub::leader::LeaderElector::new(
        client,
        kro_hub::leader::LeaseConfig {
            name: "kro-hub-leader".to_owned(),
            namespace: HUB_NAMESPACE.to_owned(),
            identity: "kro-hub-0".to_owned(),
            lease_duration: Duration::from_secs(15),
        },
    );
    for _ in 0..2 {
        assert_eq!(
            elector.try_acquire().await.unwrap(),
            kro_hub::leader::Attempt::Leader
        );
    }

    // An RGD acting with the hub's own identity: its CRD, an instance, a
    // child, status, an update, a deletion.
    env.apply(&notes_rgd()).await.unwrap();
    env.wait_rgd("notes", "Active").await.unwrap();
    let note = |text: &str| {
        json!({"apiVersion": "kro.run/v1alpha1", "kind": "Note",
            "metadata": {"name": "n1", "namespace": "default"}, "spec": {"text": text}})
    };
    env.apply(&note("one")).await.unwrap();
    env.wait_for("kro.run/v1alpha1", "Note", Some("default"), "n1", |n| {
        n["status"]["state"] == "ACTIVE" && n["status"]["text"] == "one"
    })
    .await
    .unwrap();
    env.apply(&note("two")).await.unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "n1-note", |c| {
        c["data"]["text"] == "two"
    })
    .await
    .unwrap();

    // An RGD acting as a team's ServiceAccount: checked with
    // SubjectAccessReview, then impersonated.
    for doc in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app-runner", "namespace": "team-a"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "app-runner", "namespace": "team-a"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "secrets"],
                "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "app-runner", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app-runner"},
            "subjects": [{"kind": "ServiceAccount", "name": "app-runner", "namespace": "team-a"}]}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "owner", "namespace": "team-a"},
            "stringData": {"owner": "team-a"}}),
    ] {
        env.apply(&doc).await.unwrap();
    }
    env.apply(&team_rgd()).await.unwrap();
    env.wait_rgd("team-notes", "Active").await.unwrap();
    env.apply(
        &json!({"apiVersion": "kro.run/v1alpha1", "kind": "TeamNote",
        "metadata": {"name": "t1", "namespace": "team-a"}, "spec": {"secret": "owner"}}),
    )
    .await
    .unwrap();
    env.wait_for("kro.run/v1alpha1", "TeamNote", Some("team-a"), "t1", |n| {
        n["status"]["state"] == "ACTIVE"
    })
    .await
    .unwrap();

    // Deletion: the instance and its child, then the RGD and (with
    // --delete-crds) its CRD.
    env.delete(&note("two")).await.unwrap();
    env.wait_gone("kro.run/v1alpha1", "Note", Some("default"), "n1")
        .await
        .unwrap();
    env.wait_gone("v1", "ConfigMap", Some("default"), "n1-note")
        .await
        .unwrap();
    env.delete(&notes_rgd()).await.unwrap();
    env.wait_gone(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "notes.kro.run",
    )
    .await
    .unwrap();
    env.wait_gone("kro.run/v1alpha1", "ResourceGraphDefinition", None, "notes")
        .await
        .unwrap();

    assert_nothing_denied();
}

/// Stands in for the member's token controller (which the sandbox does not
/// run): fills in every `kubernetes.io/service-account-token` Secret of the
/// member's kro-system with `token`.
fn token_controller(client: kube::Client, token: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let secrets: Api<Secret> = Api::namespaced(client, HUB_NAMESPACE);
        loop {
            if let Ok(list) = secrets.list(&ListParams::default()).await {
                for s in list.items {
                    let annotated = s
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("kubernetes.io/service-account.name"))
                        .is_some_and(|a| a == MEMBER_ACCOUNT);
                    let filled = s.data.as_ref().is_some_and(|d| d.contains_key("token"));
                    if s.type_.as_deref() == Some("kubernetes.io/service-account-token")
                        && annotated
                        && !filled
                    {
                        let data = BTreeMap::from([
                            ("token".to_owned(), ByteString(token.clone().into_bytes())),
                            (
                                "namespace".to_owned(),
                                ByteString(HUB_NAMESPACE.as_bytes().to_vec()),
                            ),
                        ]);
                        let name = s.metadata.name.clone().unwrap_or_default();
                        let _ = secrets
                            .patch(
                                &name,
                                &PatchParams::default(),
                                &Patch::Merge(json!({"data": data})),
                            )
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The member's kubeconfig for the hub, as `make-kubeconfig.sh` writes it
/// (or, without kubectl, as the sandbox writes one for the same token).
async fn member_kubeconfig(
    member: &kro_sandbox::Sandbox,
    token: &str,
    dir: &Path,
) -> Result<PathBuf, HarnessError> {
    let output = dir.join("member-1.hub.kubeconfig");
    let has_kubectl = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_kubectl {
        eprintln!(
            "\n!!!!!!!!\n!!! kubectl is not installed: deploy/member/make-kubeconfig.sh NOT RUN; \
             the member is registered with a kubeconfig the test writes\n!!!!!!!!\n"
        );
        std::fs::write(&output, member.kubeconfig_yaml_with_token(token))
            .map_err(|e| HarnessError::Fixture(e.to_string()))?;
        return Ok(output);
    }
    let admin = dir.join("member-1.admin.kubeconfig");
    std::fs::write(&admin, member.kubeconfig_yaml())
        .map_err(|e| HarnessError::Fixture(e.to_string()))?;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/member/make-kubeconfig.sh");
    let mut command = std::process::Command::new("bash");
    command
        .arg(script)
        .arg("--kubeconfig")
        .arg(&admin)
        .args(["--name", "member-1", "--timeout", "30"])
        .arg(&output);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| HarnessError::Fixture(e.to_string()))?
        .map_err(|e| HarnessError::Fixture(e.to_string()))?;
    assert!(
        out.status.success(),
        "make-kubeconfig.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(output)
}

const WIDGET_CRD: &str = r"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
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
            properties:
              size: {type: integer}
";

fn placed_rgd() -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "shops"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "Shop",
                "spec": {"replicas": "integer | default=1"},
                "status": {"available": "${deployment.status.?availableReplicas.orValue(0)}"}},
            "placement": {"clusters": ["member-1"]},
            "resources": [
                {"id": "record", "target": "Hub", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-record"},
                    "data": {"shop": "${schema.metadata.name}"}}},
                {"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-config"},
                    "data": {"cluster": "${cluster.name}"}}},
                {"id": "widget", "template": {"apiVersion": "example.com/v1", "kind": "Widget",
                    "metadata": {"name": "${schema.metadata.name}"},
                    "spec": {"size": "${schema.spec.replicas}"}}},
                {"id": "deployment", "template": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "${schema.metadata.name}"},
                    "spec": {"replicas": "${schema.spec.replicas}",
                        "selector": {"matchLabels": {"app": "${schema.metadata.name}"}},
                        "template": {"metadata": {"labels": {"app": "${schema.metadata.name}"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
                    "readyWhen": ["${deployment.status.?availableReplicas.orValue(0) == deployment.spec.replicas}"]}
            ]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_needs_no_more_than_the_recipe_grants() {
    let options = kro_hub::HubOptions {
        member_probe_interval: Duration::from_millis(300),
        ..hub_options()
    };
    let _show = ShowLogsOnPanic;
    // On the hub: the hub resource (a ConfigMap), and the kinds placed on
    // members that the hub serves too (Deployments), which the hub lists and
    // watches there as well.
    let hub_kinds: &[(&str, &[&str])] = &[("", &["configmaps"]), ("apps", &["deployments"])];
    let Some(env) = hub_as_deploy_account(hub_kinds, options).await else {
        return;
    };

    // The member: the recipe, with the resources role narrowed to the kinds
    // placed below. Requests without credentials are its administrator's
    // (kubectl sends no token over plain HTTP); the hub sends its token.
    let member = kro_sandbox::SandboxBuilder::new("member-1")
        .simulator_delay(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let admin = member.client().await.unwrap();
    let recipe = narrowed(
        deploy_file("member/rbac.yaml"),
        "kro-hub-member-resources",
        &[
            ("", &["configmaps"]),
            ("apps", &["deployments"]),
            ("example.com", &["widgets"]),
        ],
    );
    for doc in &recipe {
        apply_as(&admin, doc).await;
    }
    let crd = kro_core::parse_yaml_documents(WIDGET_CRD).unwrap();
    apply_as(&admin, &crd[0]).await;
    // The Widget kind is served once the CRD is established.
    kro_e2e::eventually("widgets served", Duration::from_secs(10), || async {
        let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
        Ok::<_, String>(
            kube::discovery::pinned_kind(&admin, &gvk)
                .await
                .ok()
                .map(|_| ()),
        )
    })
    .await
    .unwrap();

    // The token the member's token controller would mint for the account,
    // and the kubeconfig the script writes with it.
    let token = member.service_account_token(HUB_NAMESPACE, MEMBER_ACCOUNT);
    let controller = token_controller(admin.clone(), token.clone());
    let dir = std::env::temp_dir().join(format!("kro-deploy-rbac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = member_kubeconfig(&member, &token, &dir).await.unwrap();
    controller.abort();
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    let parsed = kube::config::Kubeconfig::from_yaml(&written).unwrap();
    assert!(written.contains(&token), "the token is inline: {written}");
    let user = parsed.auth_infos[0].auth_info.as_ref().unwrap();
    assert!(user.exec.is_none() && user.token_file.is_none());
    assert_eq!(
        parsed.clusters[0]
            .cluster
            .as_ref()
            .unwrap()
            .server
            .as_deref(),
        Some(member.url().as_str()),
        "the server of the kubeconfig used"
    );

    // Registered as `kro-hub cluster add` does, by the hub's administrator.
    kro_hub::members::cli::add(
        &env.client,
        &kro_hub::members::cli::AddRequest {
            name: "member-1",
            kubeconfig: &kubeconfig,
            context: None,
            labels: &["env=test".to_owned()],
            namespace: HUB_NAMESPACE,
        },
    )
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let fleet = Fleet {
        hub: env,
        members: vec![("member-1".to_owned(), member)],
    };
    let cluster = fleet.wait_cluster("member-1", "Reachable").await.unwrap();
    assert!(
        cluster["status"]["kubernetesVersion"].is_string(),
        "{cluster}"
    );

    // A placed instance converges there: the namespace created, the
    // resources applied, read back, watched and reported.
    fleet
        .hub
        .apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))
        .await
        .unwrap();
    fleet.hub.apply(&placed_rgd()).await.unwrap();
    fleet.hub.wait_rgd("shops", "Active").await.unwrap();
    let shop = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Shop",
        "metadata": {"name": "corner", "namespace": "apps"}, "spec": {"replicas": 2}});
    fleet.hub.apply(&shop).await.unwrap();
    let ready = fleet
        .hub
        .wait_for("kro.run/v1alpha1", "Shop", Some("apps"), "corner", |s| {
            s["status"]["state"] == "ACTIVE"
        })
        .await
        .unwrap();
    assert!(condition(&ready, "Ready").is_some_and(|c| c["status"] == "True"));
    assert_eq!(ready["status"]["placement"]["summary"], "1/1", "{ready}");
    let config = fleet
        .get_on("member-1", "v1", "ConfigMap", Some("apps"), "corner-config")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config["data"]["cluster"], "member-1");
    assert!(
        fleet
            .get_on(
                "member-1",
                "example.com/v1",
                "Widget",
                Some("apps"),
                "corner"
            )
            .await
            .unwrap()
            .is_some()
    );
    // Drift is repaired from the member's watch.
    let member_admin = fleet.member("member-1").client().await.unwrap();
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(member_admin, "apps")
        .patch(
            "corner-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"cluster": "tampered"}})),
        )
        .await
        .unwrap();
    fleet
        .wait_on(
            "member-1",
            "v1",
            "ConfigMap",
            Some("apps"),
            "corner-config",
            |c| c.is_some_and(|c| c["data"]["cluster"] == "member-1"),
        )
        .await
        .unwrap();

    // Deleting the instance deletes its copies; removing the Cluster waits
    // for the member to hold none.
    fleet.hub.delete(&shop).await.unwrap();
    fleet
        .hub
        .wait_gone("kro.run/v1alpha1", "Shop", Some("apps"), "corner")
        .await
        .unwrap();
    fleet
        .wait_on(
            "member-1",
            "v1",
            "ConfigMap",
            Some("apps"),
            "corner-config",
            |c| c.is_none(),
        )
        .await
        .unwrap();
    assert!(
        kro_hub::members::cli::remove(
            &fleet.hub.client,
            "member-1",
            HUB_NAMESPACE,
            Duration::from_secs(30)
        )
        .await
        .unwrap(),
        "the hub released the Cluster"
    );

    assert_nothing_denied();
}

//! `kro-hub diff` against a hub and two members: nothing to change on a
//! converged instance, exactly the changed fields per cluster after an
//! edit, creations and values not known yet for a new instance, members
//! that cannot be reached, and never a write anywhere.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kro_e2e::fleet::{Fleet, HUB_NAMESPACE};
use kro_hub::diff::{self, Action, Change, DiffArgs, DiffOptions, Outcome, Plan, Subject};
use serde_json::{Value, json};

const MEMBERS: [&str; 2] = ["eu-1", "us-1"];

fn web_rgd() -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "webs"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "Web",
                "spec": {"replicas": "integer | default=1", "extra": "boolean | default=true"}},
            "placement": {"clusterSelector": {"matchLabels": {"env": "prod"}}},
            "resources": [
                {"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-config"},
                    "data": {"region": "${cluster.labels.region}"}}},
                {"id": "deployment", "template": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "${schema.metadata.name}"},
                    "spec": {"replicas": "${schema.spec.replicas}",
                        "selector": {"matchLabels": {"app": "${schema.metadata.name}"}},
                        "template": {"metadata": {"labels": {"app": "${schema.metadata.name}"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
                    "readyWhen": ["${deployment.status.?availableReplicas.orValue(0) == deployment.spec.replicas}"]},
                {"id": "extra", "includeWhen": ["${schema.spec.extra}"],
                    "template": {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "${schema.metadata.name}-extra"}, "data": {"k": "v"}}},
                // Reads a value only the member knows once the Deployment exists.
                {"id": "pointer", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-pointer"},
                    "data": {"deployment": "${deployment.metadata.uid}"}}}
            ]
        }
    })
}

fn web(name: &str, replicas: i64, extra: bool) -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "Web",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"replicas": replicas, "extra": extra}})
}

/// A hub and two prod members, the RGD placed on both, and `shop`
/// converged there; the hub stopped, so any write seen later is the diff's.
async fn converged() -> Fleet {
    let mut fleet = Fleet::start(&[
        ("eu-1", json!({"env": "prod", "region": "eu"})),
        ("us-1", json!({"env": "prod", "region": "us"})),
    ])
    .await
    .unwrap();
    let hub = &fleet.hub;
    hub.apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))
        .await
        .unwrap();
    for name in MEMBERS {
        fleet.wait_cluster(name, "Reachable").await.unwrap();
    }
    hub.apply(&web_rgd()).await.unwrap();
    hub.wait_rgd("webs", "Active").await.unwrap();
    hub.apply(&web("shop", 2, true)).await.unwrap();
    hub.wait_for("kro.run/v1alpha1", "Web", Some("apps"), "shop", |w| {
        w["status"]["state"] == "ACTIVE" && w["status"]["placement"]["summary"] == "2/2"
    })
    .await
    .unwrap();
    fleet.hub.stop_hub().await;
    fleet
}

/// The last resourceVersion handed out by each cluster: any write, dry
/// runs excepted, moves it.
fn revisions(fleet: &Fleet) -> Vec<u64> {
    fleet
        .hub
        .sandbox
        .iter()
        .chain(fleet.members.iter().map(|(_, s)| s))
        .map(|s| s.shared().data().current_rv())
        .collect()
}

fn options() -> DiffOptions {
    DiffOptions {
        namespace: Some("apps".to_owned()),
        ..DiffOptions::default()
    }
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("kro-diff-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn instance_file(name: &str, instance: &Value) -> PathBuf {
    temp_file(name, &serde_json::to_string_pretty(instance).unwrap())
}

fn changes_on<'a>(plan: &'a Plan, cluster: &str) -> &'a [Change] {
    let entry = plan
        .clusters
        .iter()
        .find(|c| c.cluster == cluster)
        .unwrap_or_else(|| panic!("no cluster {cluster} in {plan:#?}"));
    match &entry.outcome {
        Outcome::Reached(changes) => changes,
        Outcome::Unreachable(why) => panic!("{cluster} unreachable: {why}"),
    }
}

/// `(what, object or resource)` of each change, sorted.
fn summary(changes: &[Change]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = changes
        .iter()
        .map(|c| {
            let what = match &c.action {
                Action::Create => "create",
                Action::Change(_) => "change",
                Action::Delete(_) => "delete",
                Action::Release(_) => "release",
                Action::Pending(_) => "pending",
                Action::Failed(_) => "failed",
                Action::Note(_) => "note",
            };
            let object = if c.object.is_empty() {
                format!("resource {}", c.resource)
            } else {
                c.object.clone()
            };
            (what.to_owned(), object)
        })
        .collect();
    out.sort();
    out
}

fn pair(what: &str, object: &str) -> (String, String) {
    (what.to_owned(), object.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_shows_exactly_what_would_change_per_cluster_and_writes_nothing() {
    let fleet = converged().await;
    let hub = fleet.hub.client.clone();
    let before = revisions(&fleet);

    // Converged: nothing to change on either member.
    let plan = diff::plan(&hub, &Subject::Live("web/shop".to_owned()), &options())
        .await
        .unwrap();
    let text = plan.render(false);
    for member in MEMBERS {
        assert_eq!(changes_on(&plan, member), &[], "{text}");
        assert!(
            text.contains(&format!("cluster {member}: no changes")),
            "{text}"
        );
    }
    assert_eq!(plan.exit_code(), diff::EXIT_UNCHANGED, "{text}");
    assert!(text.contains("Web apps/shop: nothing to change"), "{text}");

    // The same through the command's arguments: the plural with its group.
    let kubeconfig = temp_file(
        "hub-kubeconfig",
        &fleet.hub.sandbox.as_ref().unwrap().kubeconfig_yaml(),
    );
    let args = DiffArgs::parse_from([
        "webs.kro.run/shop",
        "-n",
        "apps",
        "--hub-kubeconfig",
        kubeconfig.to_str().unwrap(),
    ])
    .unwrap();
    let by_args = diff::run(&args).await.unwrap();
    assert_eq!(by_args.exit_code(), diff::EXIT_UNCHANGED);
    assert!(DiffArgs::parse_from(["web/shop", "--instance", "x.yaml"]).is_err());

    // An edit: more replicas, the optional ConfigMap dropped.
    let edited = instance_file("shop.json", &web("shop", 3, false));
    let plan = diff::plan(&hub, &Subject::File(edited), &options())
        .await
        .unwrap();
    let text = plan.render(false);
    assert_eq!(plan.exit_code(), diff::EXIT_CHANGED, "{text}");
    for member in MEMBERS {
        let changes = changes_on(&plan, member);
        assert_eq!(
            summary(changes),
            vec![
                pair("change", "Deployment apps/shop"),
                pair("delete", "ConfigMap apps/shop-extra"),
            ],
            "{text}"
        );
        let Some(Action::Change(unified)) = changes
            .iter()
            .map(|c| &c.action)
            .find(|a| matches!(a, Action::Change(_)))
        else {
            panic!("{text}");
        };
        // Exactly the fields the edit moves: the replicas and the hash of
        // what the hub applies; no server noise, nothing it does not own.
        let moved: Vec<&str> = unified
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .collect();
        assert_eq!(moved.len(), 4, "{unified}");
        assert!(moved.contains(&"-  replicas: 2"), "{unified}");
        assert!(moved.contains(&"+  replicas: 3"), "{unified}");
        assert_eq!(
            moved
                .iter()
                .filter(|l| l.contains("hub.kro.run/applied-hash"))
                .count(),
            2,
            "{unified}"
        );
        for noise in [
            "resourceVersion",
            "managedFields",
            "uid",
            "generation",
            "status",
        ] {
            assert!(!unified.contains(noise), "{noise} in {unified}");
        }
    }
    assert!(
        text.contains("~ changed Deployment apps/shop (resource deployment)"),
        "{text}"
    );
    assert!(
        text.contains("- deleted ConfigMap apps/shop-extra (resource extra): excluded"),
        "{text}"
    );

    // A new instance: everything is created, and what reads the member's
    // Deployment is not known yet.
    let fresh = instance_file("fresh.json", &web("fresh", 1, true));
    let plan = diff::plan(&hub, &Subject::File(fresh), &options())
        .await
        .unwrap();
    let text = plan.render(false);
    assert_eq!(plan.exit_code(), diff::EXIT_CHANGED, "{text}");
    for member in MEMBERS {
        assert_eq!(
            summary(changes_on(&plan, member)),
            vec![
                pair("create", "ConfigMap apps/fresh-config"),
                pair("create", "ConfigMap apps/fresh-extra"),
                pair("create", "Deployment apps/fresh"),
                pair("pending", "resource pointer"),
            ],
            "{text}"
        );
    }
    assert!(
        text.contains("resource pointer (depends on deployment, not yet known)"),
        "{text}"
    );

    // Nothing was written anywhere: no cluster handed out a new
    // resourceVersion, and the live instance is as it was.
    assert_eq!(revisions(&fleet), before);
    let shop = fleet
        .hub
        .get("kro.run/v1alpha1", "Web", Some("apps"), "shop")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shop["spec"]["replicas"], 2);
    assert!(
        fleet
            .hub
            .get("kro.run/v1alpha1", "Web", Some("apps"), "fresh")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_that_cannot_be_asked_are_named_and_the_plan_is_incomplete() {
    let fleet = converged().await;
    let hub = fleet.hub.client.clone();
    // A third prod member whose kubeconfig Secret was never written.
    fleet
        .hub
        .apply(&json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "eu-2", "labels": {"env": "prod", "region": "eu"}},
            "spec": {"kubeconfigSecretRef": {"namespace": HUB_NAMESPACE, "name": "eu-2-kubeconfig"}}}))
        .await
        .unwrap();
    fleet.member("us-1").faults().refuse_connections(true);

    let plan = diff::plan(&hub, &Subject::Live("Web/shop".to_owned()), &options())
        .await
        .unwrap();
    let text = plan.render(false);
    assert_eq!(changes_on(&plan, "eu-1"), &[], "{text}");
    assert!(
        text.contains("cluster us-1: unreachable: the member's API server cannot be reached"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cluster eu-2: unreachable: Secret {HUB_NAMESPACE}/eu-2-kubeconfig does not exist"
        )),
        "{text}"
    );
    assert!(text.contains("2 cluster(s) unreachable"), "{text}");
    assert_eq!(plan.exit_code(), diff::EXIT_ERROR, "{text}");

    // Once it answers again, the plan is whole for it.
    fleet.member("us-1").faults().refuse_connections(false);
    let plan = diff::plan(&hub, &Subject::Live("web/shop".to_owned()), &options())
        .await
        .unwrap();
    assert_eq!(changes_on(&plan, "us-1"), &[], "{}", plan.render(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_hub_would_refuse_in_another_namespace_is_shown_refused() {
    let mut fleet = converged().await;
    fleet.hub.start_hub(kro_e2e::hub_options()).await.unwrap();
    // The instance chooses its ConfigMap's namespace.
    fleet
        .hub
        .apply(&json!({
            "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
            "metadata": {"name": "spreads"},
            "spec": {
                "schema": {"apiVersion": "v1alpha1", "kind": "Spread",
                    "spec": {"target": "string"}},
                "placement": {"clusterSelector": {"matchLabels": {"env": "prod"}}},
                "resources": [{"id": "note", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-note",
                        "namespace": "${schema.spec.target}"},
                    "data": {"k": "v"}}}]
            }
        }))
        .await
        .unwrap();
    fleet.hub.wait_rgd("spreads", "Active").await.unwrap();
    fleet.hub.stop_hub().await;
    let hub = fleet.hub.client.clone();
    let spread = |target: &str| {
        json!({"apiVersion": "kro.run/v1alpha1", "kind": "Spread",
            "metadata": {"name": "s1", "namespace": "apps"}, "spec": {"target": target}})
    };

    // Elsewhere: refused on every member, as the hub's pass would.
    let file = instance_file("spread-other.json", &spread("kube-system"));
    let plan = diff::plan(&hub, &Subject::File(file.clone()), &options())
        .await
        .unwrap();
    let text = plan.render(false);
    for member in MEMBERS {
        let changes = changes_on(&plan, member);
        assert_eq!(
            summary(changes),
            [pair("failed", "resource note")],
            "{text}"
        );
        assert!(
            matches!(&changes[0].action, Action::Failed(why)
                if why.contains("in namespace kube-system, not in this instance's namespace apps")),
            "{text}"
        );
    }
    assert_eq!(plan.exit_code(), diff::EXIT_ERROR, "{text}");

    // Its own namespace, or a hub that trusts instance creators: planned.
    let own = instance_file("spread-own.json", &spread("apps"));
    let plan = diff::plan(&hub, &Subject::File(own), &options())
        .await
        .unwrap();
    for member in MEMBERS {
        assert_eq!(
            summary(changes_on(&plan, member)),
            [pair("create", "ConfigMap apps/s1-note")]
        );
    }
    let trusting = DiffOptions {
        trust_instance_namespaces: true,
        ..options()
    };
    let plan = diff::plan(&hub, &Subject::File(file), &trusting)
        .await
        .unwrap();
    for member in MEMBERS {
        assert_eq!(
            summary(changes_on(&plan, member)),
            [pair("create", "ConfigMap kube-system/s1-note")]
        );
    }
}

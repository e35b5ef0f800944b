//! The hub's lifecycle guarantees: no writes once converged, restart
//! without duplicates or orphans, RGD deletion that never strands
//! instances, schema validation by the API server, and refused breaking
//! changes.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kro_e2e::{Env, condition, hub_options, hub_writes};
use serde_json::{Value, json};

fn two_configmaps(name: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1",
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": name},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": kind,
                "spec": {"name": "string | required=true", "size": "integer | default=1 minimum=1 maximum=5"},
                "status": {"firstUid": "${first.metadata.uid}"}},
            "resources": [
                {"id": "first", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.spec.name}-first"}, "data": {"size": "${string(schema.spec.size)}"}}},
                {"id": "second", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${first.metadata.name}-second"}, "data": {}}}
            ]
        }
    })
}

fn instance(kind: &str, name: &str) -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": "default"}, "spec": {"name": name}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_instance_causes_no_writes_across_resyncs() {
    let mut options = hub_options();
    options.resync = Duration::from_millis(300);
    let env = Env::start_with(options).await.unwrap();
    env.apply(&two_configmaps("quiet", "Quiet")).await.unwrap();
    env.wait_rgd("quiet", "Active").await.unwrap();
    env.apply(&instance("Quiet", "q1")).await.unwrap();
    let converged = env
        .wait_for("kro.run/v1alpha1", "Quiet", Some("default"), "q1", |q| {
            q["status"]["state"] == "ACTIVE" && q["status"]["firstUid"].is_string()
        })
        .await
        .unwrap();
    // Let in-flight reconciles settle, then measure over several resyncs.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = hub_writes(&env.metrics);
    let reconciles_before = env.metrics.render();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = hub_writes(&env.metrics);
    assert_eq!(
        before,
        after,
        "writes during resyncs of a converged instance:\n{reconciles_before}\n{}",
        env.metrics.render()
    );
    assert_ne!(reconciles_before, env.metrics.render(), "resyncs did run");
    // Between resyncs nothing is queued (a resync may be in flight at any
    // one instant, so wait for an idle moment).
    kro_e2e::eventually("an idle queue", Duration::from_secs(10), || async {
        let text = env.metrics.render();
        Ok::<_, String>(
            text.contains("kro_hub_queue_depth{controller=\"instance/quiet\"} 0")
                .then_some(()),
        )
    })
    .await
    .unwrap();
    let now = env
        .get("kro.run/v1alpha1", "Quiet", Some("default"), "q1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        now["metadata"]["resourceVersion"],
        converged["metadata"]["resourceVersion"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_hub_creates_no_duplicates_and_leaves_no_orphans() {
    let mut env = Env::start().await.unwrap();
    env.apply(&two_configmaps("restart", "Restart"))
        .await
        .unwrap();
    env.wait_rgd("restart", "Active").await.unwrap();
    env.apply(&instance("Restart", "r1")).await.unwrap();
    // Stop the hub as soon as the first child exists: mid-reconcile.
    env.wait_for("v1", "ConfigMap", Some("default"), "r1-first", |_| true)
        .await
        .unwrap();
    env.stop_hub().await;
    let first = env
        .get("v1", "ConfigMap", Some("default"), "r1-first")
        .await
        .unwrap()
        .unwrap();
    env.start_hub(hub_options()).await.unwrap();
    env.wait_for("kro.run/v1alpha1", "Restart", Some("default"), "r1", |r| {
        r["status"]["state"] == "ACTIVE"
    })
    .await
    .unwrap();
    let again = env
        .get("v1", "ConfigMap", Some("default"), "r1-first")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first["metadata"]["uid"], again["metadata"]["uid"],
        "the child was adopted, not recreated"
    );
    // Delete while the hub is down: the finalizer holds the instance until the hub cleans up.
    env.stop_hub().await;
    env.delete(&instance("Restart", "r1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        env.get("kro.run/v1alpha1", "Restart", Some("default"), "r1")
            .await
            .unwrap()
            .is_some()
    );
    env.start_hub(hub_options()).await.unwrap();
    env.wait_gone("kro.run/v1alpha1", "Restart", Some("default"), "r1")
        .await
        .unwrap();
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "r1-first")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "r1-first-second")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_rgd_waits_for_its_instances() {
    let env = Env::start().await.unwrap();
    let rgd = two_configmaps("keeper", "Keeper");
    env.apply(&rgd).await.unwrap();
    env.wait_rgd("keeper", "Active").await.unwrap();
    env.apply(&instance("Keeper", "k1")).await.unwrap();
    env.wait_for("kro.run/v1alpha1", "Keeper", Some("default"), "k1", |k| {
        k["status"]["state"] == "ACTIVE"
    })
    .await
    .unwrap();
    env.delete(&rgd).await.unwrap();
    let held = env
        .wait_for(
            "kro.run/v1alpha1",
            "ResourceGraphDefinition",
            None,
            "keeper",
            |r| condition(r, "Ready").is_some_and(|c| c["reason"] == "Deleting"),
        )
        .await
        .unwrap();
    let message = condition(&held, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("default/k1"), "{message}");
    // The instance and its children are untouched while the RGD waits.
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "k1-first")
            .await
            .unwrap()
            .is_some()
    );

    env.delete(&instance("Keeper", "k1")).await.unwrap();
    env.wait_gone("v1", "ConfigMap", Some("default"), "k1-first-second")
        .await
        .unwrap();
    env.wait_gone("v1", "ConfigMap", Some("default"), "k1-first")
        .await
        .unwrap();
    env.wait_gone(
        "kro.run/v1alpha1",
        "ResourceGraphDefinition",
        None,
        "keeper",
    )
    .await
    .unwrap();
    // Like upstream kro, the CRD stays unless the hub runs with --delete-crds.
    assert!(
        env.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "keepers.kro.run"
        )
        .await
        .unwrap()
        .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_rejects_an_instance_that_fails_the_schema() {
    let env = Env::start().await.unwrap();
    env.apply(&two_configmaps("strict", "Strict"))
        .await
        .unwrap();
    env.wait_rgd("strict", "Active").await.unwrap();
    let mut bad = instance("Strict", "s1");
    bad["spec"]["size"] = json!(9);
    let err = env.apply(&bad).await.unwrap_err().to_string();
    assert!(err.contains("spec.size") && err.contains("422"), "{err}");
    let mut missing = instance("Strict", "s2");
    missing["spec"] = json!({});
    let err = env.apply(&missing).await.unwrap_err().to_string();
    assert!(err.contains("spec.name"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaking_schema_change_is_refused_unless_allowed() {
    let env = Env::start().await.unwrap();
    let mut rgd = two_configmaps("evolve", "Evolve");
    env.apply(&rgd).await.unwrap();
    env.wait_rgd("evolve", "Active").await.unwrap();
    // Changing `size` from integer to string would break stored instances.
    rgd["spec"]["schema"]["spec"]["size"] = json!("string | default=\"1\"");
    rgd["spec"]["resources"][0]["template"]["data"]["size"] = json!("${schema.spec.size}");
    env.apply(&rgd).await.unwrap();
    let refused = env
        .wait_for(
            "kro.run/v1alpha1",
            "ResourceGraphDefinition",
            None,
            "evolve",
            |r| condition(r, "KindReady").is_some_and(|c| c["status"] == "False"),
        )
        .await
        .unwrap();
    let msg = condition(&refused, "KindReady").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains(".spec.size: type changed from integer to string"),
        "{msg}"
    );
    assert!(msg.contains("kro.run/allow-breaking-changes"), "{msg}");

    rgd["metadata"]["annotations"] = json!({"kro.run/allow-breaking-changes": "true"});
    env.apply(&rgd).await.unwrap();
    env.wait_for("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "evolves.kro.run", |c| {
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"]["type"] == "string"
    })
    .await
    .unwrap();
    env.wait_rgd("evolve", "Active").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_child_puts_the_instance_in_error_with_the_servers_message_and_an_event() {
    let env = Env::start().await.unwrap();
    env.apply(&json!({
        "apiVersion": "kro.run/v1alpha1",
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": "broken"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "Broken", "spec": {"name": "string"}},
            "resources": [{"id": "badName", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "${schema.spec.name}"}, "data": {}}}]
        }
    }))
    .await
    .unwrap();
    env.wait_rgd("broken", "Active").await.unwrap();
    let mut inst = instance("Broken", "b1");
    inst["spec"]["name"] = json!("Not_A_Valid_Name");
    env.apply(&inst).await.unwrap();
    let failed = env
        .wait_for("kro.run/v1alpha1", "Broken", Some("default"), "b1", |b| {
            b["status"]["state"] == "ERROR"
        })
        .await
        .unwrap();
    let ready = condition(&failed, "Ready").unwrap();
    let message = ready["message"].as_str().unwrap();
    assert!(message.starts_with("resource badName: "), "{message}");
    assert!(
        message.contains("Invalid") && message.contains("Not_A_Valid_Name"),
        "{message}"
    );

    let events = kro_e2e::eventually("a Warning event on the instance", kro_e2e::WAIT, || async {
        let list = env
            .list("events.k8s.io/v1", "Event", Some("default"))
            .await
            .map_err(|e| e.to_string())?;
        let found: Vec<Value> = list
            .into_iter()
            .filter(|e| e["regarding"]["name"] == "b1" && e["type"] == "Warning")
            .collect();
        Ok((!found.is_empty()).then_some(found))
    })
    .await
    .unwrap();
    assert!(
        events[0]["note"].as_str().unwrap().contains("badName"),
        "{}",
        events[0]
    );

    // Fixed, it is ready again, and its recovery is an Event too.
    inst["spec"]["name"] = json!("valid-name");
    env.apply(&inst).await.unwrap();
    env.wait_for("kro.run/v1alpha1", "Broken", Some("default"), "b1", |b| {
        b["status"]["state"] == "ACTIVE"
    })
    .await
    .unwrap();
    kro_e2e::eventually("a Ready event on the instance", kro_e2e::WAIT, || async {
        Ok(events_of(&env, "b1")
            .await?
            .iter()
            .any(|e| e["type"] == "Normal" && e["reason"] == "Ready")
            .then_some(()))
    })
    .await
    .unwrap();
}

async fn events_of(env: &Env, instance: &str) -> Result<Vec<Value>, String> {
    let list = env
        .list("events.k8s.io/v1", "Event", Some("default"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .filter(|e| e["regarding"]["name"] == instance)
        .collect())
}

/// A ConfigMap that is ready once somebody else sets `data.open` to "yes".
fn gated(name: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1",
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": name},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": kind, "spec": {"name": "string"}},
            "resources": [{"id": "gate", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.spec.name}-gate"}, "data": {}},
                "readyWhen": ["${has(gate.data) && has(gate.data.open) && gate.data.open == 'yes'}"]}]
        }
    })
}

/// Opens the gate of `instance` (a `gated` instance) as somebody other
/// than the hub, and waits until the instance is ACTIVE.
async fn open_gate(env: &Env, instance: &str) {
    env.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{instance}-gate"), "namespace": "default"},
        "data": {"open": "yes"}}))
        .await
        .unwrap();
    env.wait_for(
        "kro.run/v1alpha1",
        "Gated",
        Some("default"),
        instance,
        |g| g["status"]["state"] == "ACTIVE",
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_reported_after_a_short_hold_and_the_outcome_at_once() {
    use futures::StreamExt as _;
    let env = Env::start().await.unwrap();
    env.apply(&gated("gated", "Gated")).await.unwrap();
    env.wait_rgd("gated", "Active").await.unwrap();
    // Every state the instances' statuses go through, in order.
    let gvk = kube::core::GroupVersionKind::gvk("kro.run", "v1alpha1", "Gated");
    let (ar, _) = kube::discovery::pinned_kind(&env.client, &gvk)
        .await
        .unwrap();
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(env.client.clone(), "default", &ar);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Value)>::new()));
    let watching = tokio::spawn({
        let seen = seen.clone();
        let mut events = api
            .watch(&kube::api::WatchParams::default(), "0")
            .await
            .unwrap()
            .boxed();
        async move {
            while let Some(Ok(event)) = events.next().await {
                if let kube::api::WatchEvent::Added(o) | kube::api::WatchEvent::Modified(o) = event
                {
                    let name = o.metadata.name.clone().unwrap_or_default();
                    let state = o.data["status"]["state"].clone();
                    seen.lock().unwrap().push((name, state));
                }
            }
        }
    });
    let states = |name: &str| -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for (n, state) in seen.lock().unwrap().iter() {
            if n == name && out.last() != Some(state) {
                out.push(state.clone());
            }
        }
        out
    };

    // Ready within the hold: the short-lived progress is never written,
    // the outcome is, and converging without failing makes no Event.
    env.apply(&instance("Gated", "quick")).await.unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "quick-gate", |_| true)
        .await
        .unwrap();
    open_gate(&env, "quick").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(states("quick"), vec![Value::Null, json!("ACTIVE")]);
    assert_eq!(events_of(&env, "quick").await.unwrap(), Vec::<Value>::new());

    // Still in progress after the hold: the progress is written then.
    env.apply(&instance("Gated", "slow")).await.unwrap();
    env.wait_for("kro.run/v1alpha1", "Gated", Some("default"), "slow", |g| {
        g["status"]["state"] == "IN_PROGRESS"
    })
    .await
    .unwrap();
    open_gate(&env, "slow").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        states("slow"),
        vec![Value::Null, json!("IN_PROGRESS"), json!("ACTIVE")]
    );
    watching.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_instance_is_left_alone_until_resumed() {
    let env = Env::start().await.unwrap();
    env.apply(&two_configmaps("pause", "Pause")).await.unwrap();
    env.wait_rgd("pause", "Active").await.unwrap();
    let mut inst = instance("Pause", "p1");
    env.apply(&inst).await.unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "p1-first", |c| {
        c["data"]["size"] == "1"
    })
    .await
    .unwrap();

    inst["metadata"]["annotations"] = json!({"kro.run/reconcile": "suspended"});
    inst["spec"]["size"] = json!(3);
    env.apply(&inst).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = env
        .get("v1", "ConfigMap", Some("default"), "p1-first")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        held["data"]["size"], "1",
        "a suspended instance is not reconciled"
    );

    inst["metadata"]["annotations"] = json!({});
    env.apply(&inst).await.unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "p1-first", |c| {
        c["data"]["size"] == "3"
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_cluster_does_not_serve_is_named_in_the_error() {
    let env = Env::start().await.unwrap();
    env.apply(&json!({
        "apiVersion": "kro.run/v1alpha1",
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": "widgets"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "WidgetSet", "spec": {"name": "string"}},
            "resources": [{"id": "widget", "template": {"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "${schema.spec.name}"}, "spec": {}}}]
        }
    }))
    .await
    .unwrap();
    // The graph cannot be type-checked, nor served, without the kind: the
    // RGD waits for it, saying which resource needs which kind.
    let waiting = env.wait_rgd("widgets", "Inactive").await.unwrap();
    let ready = condition(&waiting, "Ready").unwrap();
    assert_eq!(ready["reason"], "KindNotServed");
    assert_eq!(
        ready["message"],
        "resource \"widget\" uses kind Widget example.com/v1, which the cluster does not serve (is its CRD installed?)"
    );
}

//! RGDs and instances written to hurt the hub: they are refused with a
//! message naming what is wrong, and nothing that is not theirs changes.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use kro_e2e::{Env, condition};
use serde_json::{Value, json};

fn configmap_rgd(name: &str, kind: &str, data_key: &str) -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1",
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": name},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": kind,
                "spec": {"name": "string | required=true"}},
            "resources": [
                {"id": data_key, "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("${{schema.spec.name}}-{data_key}")},
                    "data": {"from": name}}}
            ]
        }
    })
}

fn ready_message(rgd: &Value) -> String {
    condition(rgd, "Ready")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rgd_cannot_take_over_kro_hub_s_own_kind() {
    let env = Env::start().await.unwrap();
    env.apply(&configmap_rgd("honest", "Honest", "cm"))
        .await
        .unwrap();
    env.wait_rgd("honest", "Active").await.unwrap();
    let mut hostile = configmap_rgd("hostile", "ResourceGraphDefinition", "cm");
    hostile["metadata"]["annotations"] = json!({"kro.run/allow-breaking-changes": "true"});
    hostile["spec"]["schema"]["scope"] = json!("Cluster");
    env.apply(&hostile).await.unwrap();
    let refused = env.wait_rgd("hostile", "Inactive").await.unwrap();
    let message = ready_message(&refused);
    assert!(
        message.contains("kind ResourceGraphDefinition in group kro.run cannot be served by an RGD: ResourceGraphDefinition is kro-hub's own API"),
        "{message}"
    );
    // Every RGD keeps its spec: the RGD CRD was not replaced.
    let honest = env
        .get(
            "kro.run/v1alpha1",
            "ResourceGraphDefinition",
            None,
            "honest",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(honest["spec"]["resources"][0]["id"], "cm", "{honest}");
    let hostile = env
        .get(
            "kro.run/v1alpha1",
            "ResourceGraphDefinition",
            None,
            "hostile",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(hostile["spec"]["schema"]["spec"].is_object(), "{hostile}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rgd_cannot_take_over_another_rgd_s_kind() {
    let env = Env::start().await.unwrap();
    env.apply(&configmap_rgd("first", "Application", "config"))
        .await
        .unwrap();
    env.wait_rgd("first", "Active").await.unwrap();
    env.apply(
        &json!({"apiVersion": "kro.run/v1alpha1", "kind": "Application",
        "metadata": {"name": "app", "namespace": "default"}, "spec": {"name": "app"}}),
    )
    .await
    .unwrap();
    let before = env
        .wait_for(
            "kro.run/v1alpha1",
            "Application",
            Some("default"),
            "app",
            |a| a["status"]["state"] == "ACTIVE",
        )
        .await
        .unwrap();
    let crd_before = env
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "applications.kro.run",
        )
        .await
        .unwrap()
        .unwrap();

    let mut second = configmap_rgd("second", "Application", "stolen");
    second["metadata"]["annotations"] = json!({"kro.run/allow-breaking-changes": "true"});
    second["spec"]["schema"]["spec"] =
        json!({"name": "string | required=true", "extra": "integer | required=true"});
    env.apply(&second).await.unwrap();
    let refused = env.wait_rgd("second", "Inactive").await.unwrap();
    let message = ready_message(&refused);
    assert_eq!(
        message,
        "kind Application cannot be served by RGD second: the kind is already served by CRD \
         applications.kro.run, owned by RGD first; one kind has one RGD: choose another kind \
         or group, or change RGD first",
    );
    assert_eq!(
        condition(&refused, "KindReady").unwrap()["reason"],
        "KindOwnedElsewhere"
    );
    // Nothing of the first RGD changed: its CRD, its instance, its children.
    let crd_after = env
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "applications.kro.run",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        crd_after["metadata"]["resourceVersion"],
        crd_before["metadata"]["resourceVersion"]
    );
    let configmaps = env.list("v1", "ConfigMap", Some("default")).await.unwrap();
    let names: Vec<&str> = configmaps
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("app-"))
        .collect();
    assert_eq!(names, ["app-config"]);

    // Deleting the refused RGD leaves the owner's kind and instances alone.
    env.delete(&second).await.unwrap();
    env.wait_gone(
        "kro.run/v1alpha1",
        "ResourceGraphDefinition",
        None,
        "second",
    )
    .await
    .unwrap();
    let after = env
        .get("kro.run/v1alpha1", "Application", Some("default"), "app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert!(after["metadata"]["deletionTimestamp"].is_null(), "{after}");
    assert!(
        env.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "applications.kro.run"
        )
        .await
        .unwrap()
        .is_some()
    );
}

/// One GET over a fresh connection; the time it took.
async fn get_healthz(addr: std::net::SocketAddr) -> std::time::Duration {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_evaluations_are_metered_and_never_stall_the_hub() {
    let mut options = kro_e2e::hub_options();
    options.instance_eval_budget = 5_000_000;
    let env = Env::start_with(options).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kro_hub::health::serve_on(listener, env.metrics.clone()));

    // Each item costs ~800,000 units (under the per-expression budget);
    // 100 items are far over the instance's budget, spent in seconds of
    // real work.
    env.apply(&json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "costly"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "Costly", "spec": {"size": "integer | default=200000"}},
            "resources": [{"id": "many",
                "forEach": [{"idx": "${lists.range(100)}"}],
                "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name + '-' + string(idx)}"},
                    "data": {"x": "${string(size(lists.range(schema.spec.size).filter(i, i % 7 == 0)))}"}}}]
        }
    }))
    .await
    .unwrap();
    env.wait_rgd("costly", "Active").await.unwrap();
    env.apply(&configmap_rgd("cheap", "Cheap", "cm"))
        .await
        .unwrap();
    env.wait_rgd("cheap", "Active").await.unwrap();
    for name in ["c1", "c2"] {
        env.apply(&json!({"apiVersion": "kro.run/v1alpha1", "kind": "Costly",
            "metadata": {"name": name, "namespace": "default"}, "spec": {}}))
            .await
            .unwrap();
    }
    env.apply(&json!({"apiVersion": "kro.run/v1alpha1", "kind": "Cheap",
        "metadata": {"name": "fine", "namespace": "default"}, "spec": {"name": "fine"}}))
        .await
        .unwrap();

    // While the costly instances evaluate, the hub answers its probes at
    // once and converges the cheap instance.
    let mut slowest = std::time::Duration::ZERO;
    let mut cheap_ready = false;
    let mut polls_while_costly_ran = 0;
    for _ in 0..100 {
        slowest = slowest.max(get_healthz(addr).await);
        let costly = env
            .get("kro.run/v1alpha1", "Costly", Some("default"), "c1")
            .await
            .unwrap()
            .unwrap();
        if costly["status"]["state"] != "ERROR" {
            polls_while_costly_ran += 1;
        }
        let cheap = env
            .get("kro.run/v1alpha1", "Cheap", Some("default"), "fine")
            .await
            .unwrap()
            .unwrap();
        cheap_ready |= cheap["status"]["state"] == "ACTIVE";
        if cheap_ready && costly["status"]["state"] == "ERROR" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(cheap_ready, "the cheap instance converged");
    assert!(
        polls_while_costly_ran >= 2,
        "the probes ran while the costly evaluation did"
    );
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "/healthz took {slowest:?}"
    );
    let costly = env
        .wait_for("kro.run/v1alpha1", "Costly", Some("default"), "c2", |c| {
            c["status"]["state"] == "ERROR"
        })
        .await
        .unwrap();
    let message = condition(&costly, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("evaluation cost exceeds the budget of 5000000 units per instance"),
        "{message}"
    );
    assert!(message.contains("resource \"many\""), "{message}");
}

fn secret_reader_rgd(name: &str, accounts: Value) -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": name},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": format!("{}{}Reader", name[..1].to_uppercase(), &name[1..]),
                "spec": {"ns": "string | required=true", "secret": "string | required=true"},
                "status": {"token": "${secret.data.token}"}},
            "defaultServiceAccounts": accounts,
            "resources": [
                {"id": "secret", "externalRef": {"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "${schema.spec.secret}", "namespace": "${schema.spec.ns}"}}},
                {"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-config"},
                    "data": {"read": "yes"}}}
            ]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_cannot_read_other_namespaces_through_the_hub() {
    let env = Env::start().await.unwrap();
    for doc in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app-runner", "namespace": "team-a"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "root-token", "namespace": "kube-system"},
            "stringData": {"token": "s3cr3t-cluster-admin"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-token", "namespace": "team-a"},
            "stringData": {"token": "team-a-value"}}),
    ] {
        env.apply(&doc).await.unwrap();
    }

    // Without a service account, the hub acts for an instance only in the
    // instance's own namespace: a namespace from the spec naming another is
    // refused, and nothing of that namespace is read.
    env.apply(&secret_reader_rgd("leaky", json!({})))
        .await
        .unwrap();
    env.wait_rgd("leaky", "Active").await.unwrap();
    env.apply(
        &json!({"apiVersion": "kro.run/v1alpha1", "kind": "LeakyReader",
        "metadata": {"name": "mine", "namespace": "team-a"},
        "spec": {"ns": "team-a", "secret": "app-token"}}),
    )
    .await
    .unwrap();
    env.wait_for(
        "kro.run/v1alpha1",
        "LeakyReader",
        Some("team-a"),
        "mine",
        |i| i["status"]["state"] == "ACTIVE",
    )
    .await
    .unwrap();
    env.apply(
        &json!({"apiVersion": "kro.run/v1alpha1", "kind": "LeakyReader",
        "metadata": {"name": "thief", "namespace": "team-a"},
        "spec": {"ns": "kube-system", "secret": "root-token"}}),
    )
    .await
    .unwrap();
    let thief = env
        .wait_for(
            "kro.run/v1alpha1",
            "LeakyReader",
            Some("team-a"),
            "thief",
            |i| i["status"]["state"] == "ERROR",
        )
        .await
        .unwrap();
    let message = ready_message(&thief);
    assert!(
        message.contains(
            "resource secret would be read in namespace kube-system, not in this instance's \
             namespace team-a: kro-hub acts for an instance only in the instance's own namespace \
             unless the RGD sets spec.defaultServiceAccounts"
        ),
        "{message}"
    );
    assert!(!thief.to_string().contains("czNjcjN0"), "{thief}");

    // With one, the RGD is accepted only once the account may do what the
    // graph needs, as SubjectAccessReview tells.
    let scoped = secret_reader_rgd("scoped", json!({"team-a": "app-runner"}));
    env.apply(&scoped).await.unwrap();
    let refused = env.wait_rgd("scoped", "Inactive").await.unwrap();
    assert_eq!(
        ready_message(&refused),
        "specified service account system:serviceaccount:team-a:app-runner does not have \
         permission to get \"secret\" (v1, Kind=Secret) in namespace team-a"
    );
    for doc in [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "app-runner", "namespace": "team-a"},
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "patch", "delete"]}
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "app-runner", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app-runner"},
            "subjects": [{"kind": "ServiceAccount", "name": "app-runner", "namespace": "team-a"}]}),
    ] {
        env.apply(&doc).await.unwrap();
    }
    env.wait_rgd("scoped", "Active").await.unwrap();

    // In its own namespace the instance reads what its account may read...
    env.apply(
        &json!({"apiVersion": "kro.run/v1alpha1", "kind": "ScopedReader",
        "metadata": {"name": "own", "namespace": "team-a"},
        "spec": {"ns": "team-a", "secret": "app-token"}}),
    )
    .await
    .unwrap();
    let own = env
        .wait_for(
            "kro.run/v1alpha1",
            "ScopedReader",
            Some("team-a"),
            "own",
            |i| i["status"]["state"] == "ACTIVE",
        )
        .await
        .unwrap();
    assert!(own["status"]["token"].is_string(), "{own}");
    // ...and another namespace's Secret is read as the account, which the
    // API server refuses: nothing of it reaches the status.
    env.apply(
        &json!({"apiVersion": "kro.run/v1alpha1", "kind": "ScopedReader",
        "metadata": {"name": "thief", "namespace": "team-a"},
        "spec": {"ns": "kube-system", "secret": "root-token"}}),
    )
    .await
    .unwrap();
    let thief = env
        .wait_for(
            "kro.run/v1alpha1",
            "ScopedReader",
            Some("team-a"),
            "thief",
            |i| i["status"]["state"] == "ERROR",
        )
        .await
        .unwrap();
    let message = ready_message(&thief);
    assert!(
        message.contains("User \"system:serviceaccount:team-a:app-runner\" cannot get resource \"secrets\" in API group \"\" in the namespace \"kube-system\""),
        "{message}"
    );
    let text = thief.to_string();
    assert!(
        !text.contains("s3cr3t") && !text.contains("czNjcjN0"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_cannot_take_over_an_object_it_did_not_create() {
    let env = Env::start().await.unwrap();
    env.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "victim", "namespace": "default"}, "data": {"owner": "platform"}}))
        .await
        .unwrap();
    env.apply(&json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "named"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "Named", "spec": {"target": "string | required=true"}},
            "resources": [{"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "${schema.spec.target}"}, "data": {"owner": "instance"}}}]
        }
    }))
    .await
    .unwrap();
    env.wait_rgd("named", "Active").await.unwrap();
    let thief = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Named",
        "metadata": {"name": "thief", "namespace": "default"}, "spec": {"target": "victim"}});
    env.apply(&thief).await.unwrap();
    let refused = env
        .wait_for("kro.run/v1alpha1", "Named", Some("default"), "thief", |i| {
            i["status"]["state"] == "ERROR"
        })
        .await
        .unwrap();
    let message = ready_message(&refused);
    assert!(
        message.contains("ConfigMap default/victim already exists and is not this instance's (it carries no kro instance label)"),
        "{message}"
    );
    // Deleting the instance leaves the object alone.
    env.delete(&thief).await.unwrap();
    env.wait_gone("kro.run/v1alpha1", "Named", Some("default"), "thief")
        .await
        .unwrap();
    let victim = env
        .get("v1", "ConfigMap", Some("default"), "victim")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(victim["data"]["owner"], "platform");
}

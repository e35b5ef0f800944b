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

//! The kro walk-through, step by step, as a kro user would run it.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use kro_e2e::{Env, WAIT, condition, eventually, example};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_create_status_update_delete() {
    let env = Env::start().await.unwrap();

    // 1. The RGD becomes Active and serves the Application kind with defaults.
    env.apply_yaml(&example("webapp/rgd.yaml")).await.unwrap();
    let rgd = env.wait_rgd("web-app", "Active").await.unwrap();
    assert_eq!(
        rgd["status"]["topologicalOrder"],
        serde_json::json!(["deployment", "service"])
    );
    let crd = env
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "applications.kro.run",
        )
        .await
        .unwrap()
        .expect("CRD applications.kro.run");
    assert_eq!(crd["spec"]["group"], "kro.run");
    assert_eq!(crd["spec"]["names"]["kind"], "Application");
    let spec_props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"];
    assert_eq!(spec_props["image"]["default"], "httpd:latest");
    assert_eq!(spec_props["replicas"]["default"], 1);
    assert_eq!(spec_props["svcType"]["default"], "ClusterIP");

    // 2. app1: Deployment with 3 replicas of httpd:2.4 and a NodePort Service.
    env.apply_yaml(&example("webapp/app1.yaml")).await.unwrap();
    let deployment = env
        .wait_for(
            "apps/v1",
            "Deployment",
            Some("default"),
            "web-app-1",
            |_| true,
        )
        .await
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"]["app"],
        "web-app-1"
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["app"],
        "web-app-1"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "httpd:2.4"
    );
    assert_eq!(deployment["metadata"]["labels"]["kro.run/owned"], "true");
    assert_eq!(
        deployment["metadata"]["labels"]["kro.run/node-id"],
        "deployment"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["kro.run/instance-name"],
        "web-app-1"
    );
    let service = env
        .wait_for(
            "v1",
            "Service",
            Some("default"),
            "web-app-1-service",
            |_| true,
        )
        .await
        .unwrap();
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["selector"]["app"], "web-app-1");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);

    // 3. app2: defaults fill in image... the file sets nginx and 1 replica, ClusterIP.
    env.apply_yaml(&example("webapp/app2.yaml")).await.unwrap();
    let deployment2 = env
        .wait_for(
            "apps/v1",
            "Deployment",
            Some("default"),
            "web-app-2",
            |_| true,
        )
        .await
        .unwrap();
    assert_eq!(deployment2["spec"]["replicas"], 1);
    assert_eq!(
        deployment2["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    let service2 = env
        .wait_for(
            "v1",
            "Service",
            Some("default"),
            "web-app-2-service",
            |_| true,
        )
        .await
        .unwrap();
    assert_eq!(service2["spec"]["type"], "ClusterIP");

    // 4. Status carries the Deployment's availability once it reports it.
    let app1 = env
        .wait_for(
            "kro.run/v1alpha1",
            "Application",
            Some("default"),
            "web-app-1",
            |a| {
                a.pointer("/status/availableReplicas") == Some(&Value::from(3))
                    && a.pointer("/status/state") == Some(&Value::from("ACTIVE"))
            },
        )
        .await
        .unwrap();
    assert!(
        app1["status"]["deploymentConditions"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    let ready = condition(&app1, "Ready").expect("Ready condition");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["observedGeneration"], app1["metadata"]["generation"]);
    assert!(
        app1["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "kro.run/finalizer")
    );

    // 5. Update: the Service becomes NodePort and the Deployment scales to 6.
    env.apply_yaml(&example("webapp/app2-update.yaml"))
        .await
        .unwrap();
    env.wait_for("apps/v1", "Deployment", Some("default"), "web-app-2", |d| {
        d["spec"]["replicas"] == 6
    })
    .await
    .unwrap();
    env.wait_for("v1", "Service", Some("default"), "web-app-2-service", |s| {
        s["spec"]["type"] == "NodePort"
    })
    .await
    .unwrap();

    // 6. Deleting an instance deletes its Service and Deployment, then the instance.
    let app1_doc: Value = kro_core::parse_yaml_documents(&example("webapp/app1.yaml"))
        .unwrap()
        .remove(0);
    env.delete(&app1_doc).await.unwrap();
    eventually("app1 and its children gone", WAIT, || async {
        let d = env
            .get("apps/v1", "Deployment", Some("default"), "web-app-1")
            .await
            .map_err(|e| e.to_string())?;
        let s = env
            .get("v1", "Service", Some("default"), "web-app-1-service")
            .await
            .map_err(|e| e.to_string())?;
        let a = env
            .get(
                "kro.run/v1alpha1",
                "Application",
                Some("default"),
                "web-app-1",
            )
            .await
            .map_err(|e| e.to_string())?;
        if d.is_none() && s.is_none() && a.is_none() {
            Ok(Some(()))
        } else {
            Err(format!(
                "deployment {} service {} instance {}",
                d.is_some(),
                s.is_some(),
                a.is_some()
            ))
        }
    })
    .await
    .unwrap();
    // app2 is untouched.
    assert!(
        env.get("apps/v1", "Deployment", Some("default"), "web-app-2")
            .await
            .unwrap()
            .is_some()
    );
}

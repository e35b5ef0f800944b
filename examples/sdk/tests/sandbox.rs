//! The example programs on an in-process sandbox with the hub, and the
//! typed client's operations on their instances.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use kro_sdk::{Error, InstanceEvent, Instances};
use kro_sdk_examples::webapp::{Application, ApplicationSpec};
use kro_sdk_examples::{run_on_sandbox, webapp, wordpress};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webapp_program_installs_creates_and_waits() {
    let status = run_on_sandbox("sdk-webapp-test", |client| async move {
        webapp::demo(client, "demo").await
    })
    .await
    .unwrap();
    assert_eq!(status.available_replicas, Some(1));
    assert!(
        status
            .deployment_conditions
            .iter()
            .any(|c| c.type_ == "Available"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wordpress_program_installs_creates_and_waits() {
    let status = run_on_sandbox("sdk-wordpress-test", |client| async move {
        wordpress::demo(client, "blog").await
    })
    .await
    .unwrap();
    assert_eq!(status.service_name.as_deref(), Some("blog"));
    assert_eq!(status.database_ready, Some(true));
    assert_eq!(
        status.endpoint.as_deref(),
        Some("http://blog.default.svc:80")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_client_lists_patches_watches_deletes_and_reports_not_ready() {
    run_on_sandbox("sdk-client-test", |client| async move {
        kro_sdk::install_rgd::<Application>(&client, Duration::from_secs(60)).await?;
        let apps = Instances::<Application>::namespaced(client, "default");
        let mut events = Box::pin(apps.watch());

        let created = apps
            .create(&Application::new("one", ApplicationSpec::named("one")))
            .await?;
        assert_eq!(created.spec.replicas, 1);
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await? {
            Some(Ok(InstanceEvent::Applied(app))) => assert_eq!(app.spec.name, "one"),
            other => panic!("unexpected event {other:?}"),
        }

        // A timeout too short for the workload simulator: the error names
        // what the hub waits for.
        match apps.wait_ready("one", Duration::from_millis(1)).await {
            Err(Error::NotReady { reason, state, .. }) => {
                assert_eq!(state, "IN_PROGRESS");
                assert!(reason.contains("deployment"), "{reason}");
            }
            Err(Error::Timeout { .. }) => {} // the hub may not have reported yet
            other => panic!("expected not ready, got {other:?}"),
        }
        apps.wait_ready("one", Duration::from_secs(60)).await?;

        let mut spec = ApplicationSpec::named("one");
        spec.replicas = 3;
        let patched = apps.patch_spec("one", &spec).await?;
        assert_eq!(patched.spec.replicas, 3);
        apps.wait_ready("one", Duration::from_secs(60)).await?;
        let app = apps
            .wait_until("one", Duration::from_secs(60), |a| {
                a.status.as_ref().and_then(|s| s.available_replicas) == Some(3)
            })
            .await?;
        assert_eq!(app.kro_status.unwrap().state.as_deref(), Some("ACTIVE"));

        assert_eq!(apps.list().await?.len(), 1);
        apps.delete("one").await?;
        apps.delete("one").await?;
        match apps.wait_ready("missing", Duration::from_millis(300)).await {
            Err(Error::Timeout { last, .. }) => assert!(last.contains("does not exist")),
            other => panic!("expected timeout, got {other:?}"),
        }
        Ok(())
    })
    .await
    .unwrap();
}

/// What another project's tests do with `kro-sdk`'s `testing` feature: a
/// hub with members, a placed graph, and its copies checked on a member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_hub_with_members_runs_a_placed_graph() {
    use kro_sdk::ResourceGraph as _;
    use kro_sdk_examples::edge::{EdgeApp, EdgeAppSpec};
    let hub = kro_sdk::testing::TestHub::builder()
        .member("eu-1", [("env", "prod"), ("region", "eu")])
        .member("us-1", [("env", "prod"), ("region", "us")])
        .start()
        .await
        .unwrap();
    kro_sdk::install_rgd::<EdgeApp>(&hub.client(), Duration::from_secs(60))
        .await
        .unwrap();
    let apps = Instances::<EdgeApp>::namespaced(hub.client(), "default");
    let spec = EdgeAppSpec {
        name: "edge".to_owned(),
        image: "nginx:1.27".to_owned(),
        replicas: 2,
        regions: vec!["eu".to_owned()],
    };
    apps.create(&EdgeApp::new("edge", spec)).await.unwrap();
    apps.wait_ready_on("edge", "eu-1", Duration::from_secs(60))
        .await
        .unwrap();
    // The graph has no readyWhen: Ready once applied; its replicas show
    // up in eu-1's values when the Deployment reports them.
    apps.wait_until("edge", Duration::from_secs(60), |a| {
        a.clusters().iter().any(|c| {
            c.name == "eu-1" && c.values.as_ref().and_then(|v| v.available_replicas) == Some(2)
        })
    })
    .await
    .unwrap();
    let eu = hub.member_client("eu-1").await.unwrap();
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(eu, "default");
    assert!(deployments.get_opt("edge").await.unwrap().is_some());
    let us = hub.member_client("us-1").await.unwrap();
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(us, "default");
    assert!(
        deployments.get_opt("edge").await.unwrap().is_none(),
        "us is not in the instance's regions"
    );
    hub.stop().await;
}

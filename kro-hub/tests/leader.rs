//! Leader election against a real API server protocol (kro-sandbox).

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kro_hub::leader::{Attempt, LeaderElector, LeaseConfig};
use kube::api::{Api, ObjectMeta, PostParams};

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: "kro-hub-leader".into(),
        namespace: "kro-system".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(1),
    }
}

/// A sandbox with the Lease's namespace, and a client of it.
async fn with_lease_namespace(name: &str) -> (kro_sandbox::Sandbox, kube::Client) {
    let sandbox = kro_sandbox::Sandbox::start(name).await.unwrap();
    let client = sandbox.client().await.unwrap();
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("kro-system".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    (sandbox, client)
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_only_after_expiry() {
    let (_sandbox, client) = with_lease_namespace("leader").await;

    let a = LeaderElector::new(client.clone(), config("replica-a"));
    let b = LeaderElector::new(client.clone(), config("replica-b"));
    assert_eq!(a.try_acquire().await.unwrap(), Attempt::Leader);
    assert_eq!(
        b.try_acquire().await.unwrap(),
        Attempt::Follower {
            holder: "replica-a".into()
        }
    );
    // Renewal keeps the lease.
    assert_eq!(a.try_acquire().await.unwrap(), Attempt::Leader);
    // A stops renewing; once the lease expires B takes it, and A is out.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(b.try_acquire().await.unwrap(), Attempt::Leader);
    assert_eq!(
        a.try_acquire().await.unwrap(),
        Attempt::Follower {
            holder: "replica-b".into()
        }
    );
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client, "kro-system")
        .get("kro-hub-leader")
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));
}

#[tokio::test]
async fn a_released_lease_is_taken_over_at_once_and_not_renewed() {
    let (_sandbox, client) = with_lease_namespace("release").await;
    // Renewed every second; it would stay valid for three.
    let lasting = |identity: &str| LeaseConfig {
        lease_duration: Duration::from_secs(3),
        ..config(identity)
    };
    let a = LeaderElector::new(client.clone(), lasting("replica-a"));
    let b = LeaderElector::new(client.clone(), lasting("replica-b"));
    let leadership = a.clone().lead().await;
    assert!(*leadership.held.borrow());
    assert!(leadership.release().await.unwrap());
    // The renewals stopped with the release: a renewal would take the
    // free lease back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client, "kro-system")
        .get("kro-hub-leader")
        .await
        .unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity, None);
    // Long before A's lease would have run out, B takes it.
    assert_eq!(b.try_acquire().await.unwrap(), Attempt::Leader);
    // Nobody releases a lease they do not hold.
    assert!(!a.release().await.unwrap());
    assert_eq!(
        a.try_acquire().await.unwrap(),
        Attempt::Follower {
            holder: "replica-b".into()
        }
    );
}

/// Kubernetes stops a pod with SIGTERM: the hub (leading, or waiting for
/// the Lease) stops cleanly and exits 0 rather than being killed at the end
/// of the grace period.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_hub_cleanly() {
    let (sandbox, client) = with_lease_namespace("sigterm").await;
    let dir = std::env::temp_dir().join(format!("kro-hub-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox.kubeconfig_yaml()).unwrap();
    let spawn = |identity: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kro-hub"))
            .args([
                "run",
                "--leader-elect",
                "--probe-addr",
                "127.0.0.1:0",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .env("POD_NAME", identity)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut leader = spawn("replica-a");
    // The leader has installed its CRDs: it runs.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while crds
        .get_opt("graphrevisions.hub.kro.run")
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the hub did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut standby = spawn("replica-b");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (name, child) in [("standby", &mut standby), ("leader", &mut leader)] {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the {name} ignored SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "the {name} exited with {status}");
    }
    // The leader gave the lease up on its way out: a new replica need not
    // wait for it to run out.
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client, "kro-system")
        .get("kro-hub-leader")
        .await
        .unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity, None);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Leader election against a real API server protocol (kro-sandbox).

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

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_only_after_expiry() {
    let sandbox = kro_sandbox::Sandbox::start("leader").await.unwrap();
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

//! The typed client against a sandbox cluster running the hub: a precise
//! not-ready error while a readyWhen is false, then readiness for the new
//! generation once the spec makes it true.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kro_sdk::{Error, Instances, ResourceGraph, ResourceStatus};
use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, Default)]
pub struct GateStatus {
    #[kro(expr = "${config.data.open}")]
    pub open: Option<String>,
}

/// A gate that is ready only when opened.
#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
#[kro(
    status = GateStatus,
    resource(
        id = "config",
        ready_when = "${config.data.open == \"yes\"}",
        inline = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: "${schema.spec.name}"}
data:
  open: ${schema.spec.open}
"#
    )
)]
pub struct GateSpec {
    pub name: String,
    #[kro(default = "no")]
    pub open: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ready_names_what_the_hub_waits_for() {
    let sandbox = kro_sandbox::Sandbox::start("sdk-gate").await.unwrap();
    let client = sandbox.client().await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let hub_config = sandbox.config().await.unwrap();
    let hub = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        let metrics = kro_hub::metrics::Metrics::new();
        kro_hub::run_hub(
            hub_config,
            kro_hub::HubOptions::default(),
            metrics,
            shutdown,
        )
        .await
        .unwrap();
    });
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
    namespaces
        .patch("default", &PatchParams::apply("test"), &Patch::Apply(&ns))
        .await
        .unwrap();

    let rgd = kro_sdk::install_rgd::<Gate>(&client, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rgd.name(), "gate");
    let gates = Instances::<Gate>::namespaced(client, "default");
    let closed = GateSpec {
        name: "front".into(),
        open: "no".into(),
    };
    gates.apply(&Gate::new("front", closed)).await.unwrap();

    match gates.wait_ready("front", Duration::from_secs(3)).await {
        Err(Error::NotReady {
            name,
            state,
            reason,
            clusters,
            ..
        }) => {
            assert_eq!(name, "front");
            assert_eq!(state, "IN_PROGRESS");
            assert!(
                reason.contains("config") && reason.contains("readyWhen"),
                "{reason}"
            );
            assert!(clusters.is_empty());
        }
        other => panic!("expected NotReady, got {other:?}"),
    }

    let open = GateSpec {
        name: "front".into(),
        open: "yes".into(),
    };
    gates.patch_spec("front", &open).await.unwrap();
    let status = gates
        .wait_ready("front", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(status.open.as_deref(), Some("yes"));
    assert_eq!(gates.get("front").await.unwrap().spec.open, "yes");

    let _ = stop.send(());
    hub.await.unwrap();
}

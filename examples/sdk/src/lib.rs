//! Resource graphs written with `#[derive(ResourceGraph)]`, and the
//! programs that install them on a hub and wait for typed instances.
//!
//! [`run_on_sandbox`] starts an in-process Kubernetes API server with the
//! hub running against it, which is how the example programs and their
//! tests run without a cluster.

pub mod edge;
pub mod webapp;
pub mod wordpress;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::oneshot;

/// Starts a sandbox cluster named `name`, runs the hub against it and gives
/// `body` a client; stops both afterwards.
pub async fn run_on_sandbox<F, Fut, T>(name: &str, body: F) -> anyhow::Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let sandbox = kro_sandbox::Sandbox::start(name).await?;
    let client = sandbox.client().await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = kro_hub::metrics::Metrics::new();
    let hub_config = sandbox.config().await?;
    let hub = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = kro_hub::run_hub(
            hub_config,
            kro_hub::HubOptions::default(),
            metrics,
            shutdown,
        )
        .await
        {
            tracing::error!(error = %e, "hub stopped");
        }
    });
    ensure_namespace(&client, "default").await?;
    let result = body(client).await;
    let _ = stop.send(());
    let _ = hub.await;
    result
}

/// Creates namespace `name` if it does not exist (a fresh sandbox may not
/// have `default` yet).
pub async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let body =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    api.patch(
        name,
        &PatchParams::apply("kro-sdk-examples"),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

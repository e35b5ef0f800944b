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

/// Starts a hub on in-process API servers ([`kro_sdk::testing::TestHub`]),
/// gives `body` a client of it, and stops it afterwards. `name` says which
/// test or program it is for, in the logs.
pub async fn run_on_sandbox<F, Fut, T>(name: &str, body: F) -> anyhow::Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    tracing::debug!(name, "starting a test hub");
    let hub = kro_sdk::testing::TestHub::start().await?;
    let result = body(hub.client()).await;
    hub.stop().await;
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

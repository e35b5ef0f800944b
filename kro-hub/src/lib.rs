//! kro-hub: the controller that turns ResourceGraphDefinitions into CRDs and
//! live instances, on its own cluster or fanned out to member clusters.

pub mod api_calls;
pub mod conditions;
pub mod crd_compat;
pub mod demo;
pub mod eval_pool;
pub mod finalizer;
pub mod health;
pub mod install;
pub mod instance;
pub mod kubeconfig;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod offline;
pub mod ownership;
pub mod rgd_controller;

/// The field manager of every server-side apply the hub makes.
pub const FIELD_MANAGER: &str = "kro-hub";

use std::future::Future;
use std::sync::Arc;

use kube::Client;

pub use rgd_controller::{HubContext, HubOptions};

/// Errors that stop the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// kro-hub's own CRDs could not be installed.
    #[error("installing kro-hub's CRDs: {0}")]
    Install(#[from] install::InstallError),
}

/// Runs the hub against `client`'s cluster until `shutdown` resolves:
/// installs the RGD CRD, then runs the RGD controller and, through it, one
/// instance controller per Active RGD.
pub async fn run_hub(
    client: Client,
    options: HubOptions,
    metrics: Arc<metrics::Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), HubError> {
    install::install_own_crds(&client).await?;
    metrics.set_ready(true);
    let ctx = HubContext::new(client, metrics, options);
    rgd_controller::run(ctx, shutdown).await;
    Ok(())
}

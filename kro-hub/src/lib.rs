//! kro-hub: the controller that turns ResourceGraphDefinitions into CRDs and
//! live instances, on its own cluster or fanned out to member clusters.

pub mod api_calls;
pub mod conditions;
pub mod crd_compat;
#[cfg(feature = "demo")]
pub mod demo;
pub mod diff;
pub mod eval_pool;
pub mod finalizer;
pub mod health;
pub mod identity;
pub mod install;
pub mod instance;
pub mod kubeconfig;
pub mod labels;
pub mod leader;
pub mod lean_object;
pub mod members;
pub mod metrics;
pub mod offline;
pub mod ownership;
pub mod permissions;
pub mod placement;
pub mod revisions;
pub mod rgd_controller;
pub mod schemas;
pub mod status;
pub mod ui;
pub mod view;

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
    /// No client can be built from the configuration.
    #[error("connecting to the hub cluster: {0}")]
    Client(#[from] kube::Error),
}

/// Runs the hub against `config`'s cluster until `shutdown` resolves:
/// installs the RGD CRD, then runs the RGD controller and, through it, one
/// instance controller per Active RGD. The configuration (not just a
/// client) is needed to act as the ServiceAccounts RGDs name.
pub async fn run_hub(
    config: kube::Config,
    options: HubOptions,
    metrics: Arc<metrics::Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), HubError> {
    let client: Client = api_calls::counted_client(config.clone(), metrics.clone(), "hub")?;
    install::install_own_crds(&client).await?;
    metrics.set_ready(true);
    let identities = identity::Identities::new(config, metrics.clone());
    let ctx = HubContext::new(client, identities, metrics, options);
    // Both controllers stop on the same signal.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let clusters = tokio::spawn(members::controller::run(
        ctx.clone(),
        stopped(stop_rx.clone()),
    ));
    let rgds = rgd_controller::run(ctx, stopped(stop_rx));
    tokio::pin!(rgds);
    tokio::select! {
        () = shutdown => {}
        () = &mut rgds => {}
    }
    let _ = stop_tx.send(true);
    rgds.await;
    let _ = clusters.await;
    Ok(())
}

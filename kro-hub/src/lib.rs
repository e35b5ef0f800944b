//! kro-hub: the controller that turns ResourceGraphDefinitions into CRDs and
//! live instances, on its own cluster or fanned out to member clusters.

pub mod conditions;
pub mod finalizer;
pub mod health;
pub mod install;
pub mod kubeconfig;
pub mod labels;
pub mod leader;
pub mod metrics;

/// The field manager of every server-side apply the hub makes.
pub const FIELD_MANAGER: &str = "kro-hub";

//! kro-sandbox: a Kubernetes API server that runs in-process on loopback.
//!
//! It speaks the Kubernetes REST and watch protocol closely enough that `kube` clients,
//! `kube::runtime` watchers and controllers and `kubectl` cannot tell it from a real
//! kube-apiserver for what they use. Several sandboxes ("clusters") run side by side, each
//! with its own port, storage and kubeconfig.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kro_sandbox::SandboxError> {
//! let hub = kro_sandbox::Sandbox::start("hub").await?;
//! let client = hub.client().await?;
//! # let _ = client; Ok(()) }
//! ```

// Three layers, data flowing down: `http` (transport) -> `registry` (kind rules, the
// generic store) -> `storage` (versioned objects, event log).
pub mod auth;
pub mod authz;
pub mod catalog;
pub mod counters;
pub mod error;
pub mod http;
pub mod ids;
pub mod meta;
pub mod patch;
pub mod persist;
pub mod registry;
pub mod sandbox;
pub mod selector;
pub mod simulator;
pub mod state;
pub mod storage;
pub mod validation;

pub use error::ApiError;
pub use sandbox::{Clusters, Faults, Sandbox, SandboxBuilder, SandboxError};
pub use state::Options;

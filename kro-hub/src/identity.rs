//! Who the hub is when it acts for an instance. By default the hub acts
//! with its own identity. An RGD with `spec.defaultServiceAccounts` (as in
//! upstream kro) makes it impersonate, for each instance, the ServiceAccount
//! named for the instance's namespace (or `"*"`), in that namespace: every
//! child and `externalRef` read and write of that instance then carries the
//! account's permissions, not the hub's. The hub's own identity still
//! reads and writes the instance itself (finalizer, status), runs
//! discovery, and watches the children it labelled.
//!
//! Impersonation needs the hub's identity to hold the `impersonate` verb on
//! `serviceaccounts` (see `deploy/rbac.yaml`); the API server then sends the
//! account's groups along, as for a token of that account.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;

use crate::metrics::Metrics;

/// The username Kubernetes gives the ServiceAccount `namespace/name`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Clients of the hub cluster acting as other users, built on demand and
/// kept (one per user).
#[derive(Clone)]
pub struct Identities {
    config: kube::Config,
    metrics: Arc<Metrics>,
    clients: Arc<Mutex<HashMap<String, Client>>>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities").finish_non_exhaustive()
    }
}

impl Identities {
    /// Identities derived from the hub's own configuration.
    pub fn new(config: kube::Config, metrics: Arc<Metrics>) -> Self {
        Self {
            config,
            metrics,
            clients: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A client that impersonates `user`.
    pub fn client_as(&self, user: &str) -> Result<Client, kube::Error> {
        if let Some(client) = self.clients.lock().ok().and_then(|c| c.get(user).cloned()) {
            return Ok(client);
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups = None;
        let client = crate::api_calls::counted_client(config, self.metrics.clone(), "hub")?;
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(user.to_owned(), client.clone());
        }
        Ok(client)
    }
}

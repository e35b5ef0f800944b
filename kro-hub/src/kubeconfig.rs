//! Finding the cluster the standard way: explicit flags first, then
//! `KUBECONFIG`, `~/.kube/config` and the in-cluster service account.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Where to find the hub cluster's credentials.
#[derive(Debug, Clone, Default)]
pub struct ClusterSource {
    /// Path of a kubeconfig file; overrides `KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// Context inside the kubeconfig; the current context when absent.
    pub context: Option<String>,
}

/// Errors while locating or reading cluster credentials.
#[derive(Debug, thiserror::Error)]
pub enum ClusterSourceError {
    /// The kubeconfig file could not be read or parsed.
    #[error("cannot read kubeconfig {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig was read but does not yield a usable configuration.
    #[error("invalid kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// No kubeconfig and not running in a cluster.
    #[error("no cluster configuration found: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

impl ClusterSource {
    /// Resolves the configuration without connecting.
    pub async fn config(&self) -> Result<Config, ClusterSourceError> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let kubeconfig =
                    Kubeconfig::read_from(path).map_err(|source| ClusterSourceError::Read {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Config::from_custom_kubeconfig(kubeconfig, &options).await?)
            }
            (None, Some(_)) => Ok(Config::from_kubeconfig(&options).await?),
            (None, None) => Ok(Config::infer().await?),
        }
    }

    /// Builds a client for the configured cluster.
    pub async fn client(&self) -> Result<Client, ClusterSourceError> {
        Ok(Client::try_from(self.config().await?)?)
    }
}

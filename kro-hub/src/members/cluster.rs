//! The `Cluster` kind (`hub.kro.run/v1alpha1`, cluster-scoped): one member.

use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use serde::Deserialize;

/// The CRD, the same file GitOps users apply from `deploy/crds/`.
pub const CLUSTER_CRD_YAML: &str = include_str!("../../../deploy/crds/clusters.hub.kro.run.yaml");

/// Finalizer the hub keeps on a Cluster until its copies are cleaned up.
pub const CLUSTER_FINALIZER: &str = "hub.kro.run/cluster-cleanup";

/// The ApiResource of Clusters.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("hub.kro.run", "v1alpha1", "Cluster"),
        "clusters",
    )
}

/// `spec.kubeconfigSecretRef`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SecretRef {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Key holding the kubeconfig.
    #[serde(default = "default_key")]
    pub key: String,
}

fn default_key() -> String {
    "kubeconfig".to_owned()
}

/// `spec` of a Cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Where the member's kubeconfig is.
    pub kubeconfig_secret_ref: SecretRef,
    /// No writes to the member while true.
    #[serde(default)]
    pub paused: bool,
}

/// The spec of a Cluster object, or why it has none usable.
pub fn spec_of(obj: &DynamicObject) -> Result<ClusterSpec, String> {
    let spec = obj
        .data
        .get("spec")
        .cloned()
        .ok_or("the Cluster has no spec")?;
    serde_json::from_value(spec).map_err(|e| format!("spec: {e}"))
}

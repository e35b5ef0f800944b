//! Installing kro-hub's own CRDs at start. Server-side apply with a fixed
//! field manager makes this idempotent and lets a newer hub upgrade them.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};

use crate::FIELD_MANAGER;

/// The RGD CRD, the same file GitOps users apply from `deploy/crds/`.
pub const RGD_CRD_YAML: &str =
    include_str!("../../deploy/crds/resourcegraphdefinitions.kro.run.yaml");

/// Errors while installing CRDs.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// An embedded manifest does not parse: a build defect.
    #[error("embedded CRD manifest is invalid: {0}")]
    Manifest(String),
    /// The API server refused the CRD.
    #[error("applying CRD {name}: {source}")]
    Apply {
        /// CRD name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The CRD was accepted but did not become Established in time.
    #[error("CRD {name} was not Established within {timeout:?}")]
    NotEstablished {
        /// CRD name.
        name: String,
        /// How long we waited.
        timeout: Duration,
    },
}

/// Parses one embedded CRD manifest.
pub fn parse_crd(yaml: &str) -> Result<CustomResourceDefinition, InstallError> {
    serde_saphyr::from_str(yaml).map_err(|e| InstallError::Manifest(e.to_string()))
}

/// Applies a CRD with server-side apply and waits until it is Established.
pub async fn apply_crd(
    client: &Client,
    crd: &CustomResourceDefinition,
    timeout: Duration,
) -> Result<(), InstallError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(crd))
        .await
        .map_err(|source| InstallError::Apply {
            name: name.clone(),
            source,
        })?;
    wait_established(api, name, timeout).await
}

/// Creates a CRD that must not exist yet (two RGDs racing for one kind: the
/// second gets a 409 rather than silently sharing it) and waits until it is
/// Established.
pub async fn create_crd(
    client: &Client,
    crd: &CustomResourceDefinition,
    timeout: Duration,
) -> Result<(), InstallError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    api.create(&params, crd)
        .await
        .map_err(|source| InstallError::Apply {
            name: name.clone(),
            source,
        })?;
    wait_established(api, name, timeout).await
}

async fn wait_established(
    api: Api<CustomResourceDefinition>,
    name: String,
    timeout: Duration,
) -> Result<(), InstallError> {
    let established = await_condition(api, &name, conditions::is_crd_established());
    match tokio::time::timeout(timeout, established).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(InstallError::NotEstablished { name, timeout }),
    }
}

/// Installs every CRD kro-hub serves: RGDs, member Clusters and the RGDs'
/// graph revisions. A CRD the server already holds as it would be applied
/// is left alone: a restart writes nothing.
pub async fn install_own_crds(client: &Client) -> Result<(), InstallError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for yaml in [
        RGD_CRD_YAML,
        crate::members::cluster::CLUSTER_CRD_YAML,
        crate::revisions::GRAPH_REVISION_CRD_YAML,
    ] {
        let crd = parse_crd(yaml)?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        let existing = api
            .get_opt(&name)
            .await
            .map_err(|source| InstallError::Apply {
                name: name.clone(),
                source,
            })?;
        if existing.is_some_and(|e| crd_is_current(&e, &crd)) {
            continue;
        }
        apply_crd(client, &crd, Duration::from_secs(30)).await?;
    }
    Ok(())
}

/// Whether the served CRD already holds everything we would apply and is
/// Established: then a resync makes no write.
pub(crate) fn crd_is_current(
    existing: &CustomResourceDefinition,
    desired: &CustomResourceDefinition,
) -> bool {
    let established = existing
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    let (Ok(existing), Ok(desired)) = (
        serde_json::to_value(existing),
        serde_json::to_value(desired),
    ) else {
        return false;
    };
    established
        && crate::instance::is_subset(&desired["spec"], &existing["spec"])
        && crate::instance::is_subset(
            &desired["metadata"]["labels"],
            &existing["metadata"]["labels"],
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_rgd_crd_parses_and_names_itself() {
        let crd = parse_crd(RGD_CRD_YAML).unwrap();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("resourcegraphdefinitions.kro.run")
        );
        assert_eq!(crd.spec.names.short_names, Some(vec!["rgd".to_owned()]));
        assert_eq!(crd.spec.scope, "Cluster");
        let version = &crd.spec.versions[0];
        assert!(version.subresources.as_ref().unwrap().status.is_some());
    }
}

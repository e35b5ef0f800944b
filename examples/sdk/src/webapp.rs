//! The walk-through web application (a Deployment and its Service) as a
//! typed resource graph. It emits the same RGD as the hand-written
//! `examples/webapp/rgd.yaml`.

use kro_sdk::{Condition, ResourceGraph, ResourceStatus};
use serde::{Deserialize, Serialize};

/// What the hub reports about an application.
#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// The Deployment's conditions.
    #[kro(expr = "${deployment.status.conditions}")]
    #[serde(default)]
    pub deployment_conditions: Vec<Condition>,
    /// Replicas serving traffic.
    #[kro(expr = "${deployment.status.availableReplicas}")]
    pub available_replicas: Option<i64>,
}

/// A web application: a Deployment of `image` behind a Service.
#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[kro(
    rgd = "web-app",
    kind = "Application",
    status = ApplicationStatus,
    resource(id = "deployment", template = "templates/webapp/deployment.yaml"),
    resource(id = "service", template = "templates/webapp/service.yaml")
)]
pub struct ApplicationSpec {
    // No doc comments on these fields: they would become CRD descriptions,
    // and this graph mirrors the hand-written RGD, which has none.
    #[serde(default)]
    pub name: String,
    #[kro(default = "httpd:latest")]
    pub image: String,
    #[kro(default = 1)]
    pub replicas: i64,
    #[kro(default = "ClusterIP")]
    pub svc_type: String,
}

impl ApplicationSpec {
    /// An application named `name` with the RGD's defaults.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            image: "httpd:latest".to_owned(),
            replicas: 1,
            svc_type: "ClusterIP".to_owned(),
        }
    }
}

/// The example program: installs the RGD, applies an instance named `name`
/// and waits until the hub reports it Ready, returning its typed status.
pub async fn demo(client: kube::Client, name: &str) -> anyhow::Result<ApplicationStatus> {
    use std::time::Duration;

    let rgd = kro_sdk::install_rgd::<Application>(&client, Duration::from_secs(60)).await?;
    tracing::info!(rgd = rgd.name(), "RGD active");
    let apps = kro_sdk::Instances::<Application>::namespaced(client, "default");
    let spec = ApplicationSpec::named(name);
    let replicas = spec.replicas;
    apps.apply(&Application::new(name, spec)).await?;
    apps.wait_ready(name, Duration::from_secs(120)).await?;
    // The graph has no readyWhen, so Ready means "applied"; wait for the
    // Deployment to serve too.
    let app = apps
        .wait_until(name, Duration::from_secs(120), |app| {
            app.status
                .as_ref()
                .is_some_and(|s| s.available_replicas == Some(replicas))
        })
        .await?;
    Ok(app.status.unwrap_or_default())
}

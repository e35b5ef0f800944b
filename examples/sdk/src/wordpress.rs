//! A WordPress site as a typed resource graph: MySQL (StatefulSet and
//! headless Service) with its credentials in a Secret, WordPress (Deployment
//! and Service) configured by a ConfigMap and storing uploads on a PVC, and
//! an Ingress included only when enabled.

use std::collections::BTreeMap;

use kro_sdk::{ResourceGraph, ResourceStatus, SimpleSchema};
use serde::{Deserialize, Serialize};

/// The service tier; premium turns the page cache on.
#[derive(SimpleSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// No page cache.
    #[default]
    Standard,
    /// WP_CACHE enabled.
    Premium,
}

/// The MySQL database behind the site.
#[derive(SimpleSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Database {
    /// MySQL image.
    #[kro(default = "mysql:8.4")]
    pub image: String,
    /// Database name.
    #[kro(default = "wordpress")]
    pub name: String,
    /// Database user.
    #[kro(default = "wordpress")]
    pub user: String,
    /// Password of the WordPress database user.
    #[kro(min_length = 8)]
    pub password: String,
    /// Size of the database volume.
    #[kro(default = "10Gi", pattern = "^[0-9]+(Mi|Gi|Ti)$")]
    pub storage: String,
}

/// How the site is exposed outside the cluster.
#[derive(SimpleSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    /// Whether to create the Ingress.
    #[kro(default = true)]
    pub enabled: bool,
    /// Host name.
    #[kro(default = "wordpress.local")]
    pub host: String,
    /// Ingress class.
    #[kro(default = "nginx")]
    pub class_name: String,
}

impl Default for Ingress {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "wordpress.local".to_owned(),
            class_name: "nginx".to_owned(),
        }
    }
}

/// What the hub reports about a site.
#[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WordPressStatus {
    /// WordPress replicas serving traffic.
    #[kro(expr = "${wordpress.status.availableReplicas}")]
    pub available_replicas: Option<i64>,
    /// Whether MySQL is up.
    #[kro(expr = "${mysql.status.readyReplicas == 1}")]
    pub database_ready: Option<bool>,
    /// The WordPress Service.
    #[kro(expr = "${service.metadata.name}")]
    pub service_name: Option<String>,
    /// In-cluster URL of the site.
    #[kro(expr = "http://${service.metadata.name}.${service.metadata.namespace}.svc:80")]
    pub endpoint: Option<String>,
}

/// A WordPress site.
#[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[kro(
    rgd = "wordpress",
    kind = "WordPress",
    short_name = "wp",
    status = WordPressStatus,
    printer_column(name = "Replicas", type = "integer", json_path = ".spec.replicas"),
    printer_column(name = "Available", type = "integer", json_path = ".status.availableReplicas"),
    printer_column(name = "State", type = "string", json_path = ".status.state"),
    printer_column(name = "Age", type = "date", json_path = ".metadata.creationTimestamp"),
    resource(id = "secret", template = "templates/wordpress/secret.yaml"),
    resource(id = "config", template = "templates/wordpress/config.yaml"),
    resource(id = "pvc", template = "templates/wordpress/pvc.yaml"),
    resource(id = "mysqlService", template = "templates/wordpress/mysqlService.yaml"),
    resource(
        id = "mysql",
        template = "templates/wordpress/mysql.yaml",
        ready_when = "${mysql.status.readyReplicas == 1}"
    ),
    resource(
        id = "wordpress",
        template = "templates/wordpress/wordpress.yaml",
        ready_when = "${wordpress.status.availableReplicas == wordpress.spec.replicas}"
    ),
    resource(id = "service", template = "templates/wordpress/service.yaml"),
    resource(
        id = "ingress",
        template = "templates/wordpress/ingress.yaml",
        include_when = "${schema.spec.ingress.enabled}"
    )
)]
pub struct WordPressSpec {
    /// Prefix of every resource name.
    #[kro(
        min_length = 1,
        max_length = 40,
        pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
    )]
    pub name: String,
    /// WordPress image.
    #[kro(default = "wordpress:6.5-apache")]
    pub image: String,
    /// WordPress replicas.
    #[kro(default = 1, minimum = 1, maximum = 10)]
    pub replicas: i64,
    /// Size of the uploads volume; cannot change once set.
    #[kro(default = "5Gi", immutable, pattern = "^[0-9]+(Mi|Gi|Ti)$")]
    pub storage: String,
    /// Service tier.
    #[kro(default = "standard")]
    pub tier: Tier,
    /// The database.
    pub database: Database,
    /// Extra environment of the WordPress container.
    #[serde(default)]
    pub extra_env: BTreeMap<String, String>,
    /// The Ingress, a nested object as in the hand-written RGD (kro
    /// defaults absent objects to `{}`, so the CRD does not require it).
    #[kro(inline)]
    #[serde(default)]
    pub ingress: Ingress,
}

impl WordPressSpec {
    /// A site named `name` with the RGD's defaults and database `password`.
    pub fn named(name: &str, password: &str) -> Self {
        Self {
            name: name.to_owned(),
            image: "wordpress:6.5-apache".to_owned(),
            replicas: 1,
            storage: "5Gi".to_owned(),
            tier: Tier::Standard,
            database: Database {
                image: "mysql:8.4".to_owned(),
                name: "wordpress".to_owned(),
                user: "wordpress".to_owned(),
                password: password.to_owned(),
                storage: "10Gi".to_owned(),
            },
            extra_env: BTreeMap::new(),
            ingress: Ingress {
                enabled: true,
                host: format!("{name}.local"),
                class_name: "nginx".to_owned(),
            },
        }
    }
}

/// The example program: installs the RGD, applies a site named `name` and
/// waits until the hub reports it Ready, returning its typed status.
pub async fn demo(client: kube::Client, name: &str) -> anyhow::Result<WordPressStatus> {
    use std::time::Duration;

    kro_sdk::install_rgd::<WordPress>(&client, Duration::from_secs(60)).await?;
    let sites = kro_sdk::Instances::<WordPress>::namespaced(client, "default");
    sites
        .apply(&WordPress::new(
            name,
            WordPressSpec::named(name, "s3cret-password"),
        ))
        .await?;
    Ok(sites.wait_ready(name, Duration::from_secs(180)).await?)
}

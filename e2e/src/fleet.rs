//! A hub and member clusters for the multi-cluster tests: every member is a
//! sandbox of its own that requires its own bearer token, registered on the
//! hub as a `Cluster` with a kubeconfig Secret, as `kro-hub cluster add`
//! does.

use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

use crate::{Env, HarnessError, eventually, hub_options};

/// The namespace of the members' kubeconfig Secrets on the hub.
pub const HUB_NAMESPACE: &str = "kro-system";

/// A hub with members.
pub struct Fleet {
    /// The hub, with kro-hub running.
    pub hub: Env,
    /// The members, by name.
    pub members: Vec<(String, kro_sandbox::Sandbox)>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field(
                "members",
                &self.members.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The token member `name` requires.
pub fn token_of(name: &str) -> String {
    format!("member-token-{name}-0123456789")
}

impl Fleet {
    /// A hub and one member per `(name, labels)`, each registered.
    pub async fn start(members: &[(&str, Value)]) -> Result<Self, HarnessError> {
        let mut options = hub_options();
        options.member_probe_interval = Duration::from_millis(300);
        let hub = Env::start_with(options).await?;
        hub.apply(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HUB_NAMESPACE}}),
        )
        .await?;
        let mut fleet = Self {
            hub,
            members: Vec::new(),
        };
        for (name, labels) in members {
            let sandbox = kro_sandbox::SandboxBuilder::new(name)
                .token(&token_of(name))
                .simulator_delay(Duration::from_millis(200))
                .start()
                .await?;
            let kubeconfig = sandbox.kubeconfig_yaml();
            fleet.members.push(((*name).to_owned(), sandbox));
            fleet.register(name, labels.clone(), &kubeconfig).await?;
        }
        Ok(fleet)
    }

    /// Writes member `name`'s Secret and Cluster on the hub.
    pub async fn register(
        &self,
        name: &str,
        labels: Value,
        kubeconfig: &str,
    ) -> Result<(), HarnessError> {
        self.hub
            .apply(&json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{name}-kubeconfig"), "namespace": HUB_NAMESPACE},
                "stringData": {"kubeconfig": kubeconfig}}))
            .await?;
        self.hub
            .apply(&json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster",
                "metadata": {"name": name, "labels": labels},
                "spec": {"kubeconfigSecretRef": {"namespace": HUB_NAMESPACE, "name": format!("{name}-kubeconfig")}}}))
            .await?;
        Ok(())
    }

    /// The sandbox of member `name`.
    pub fn member(&self, name: &str) -> &kro_sandbox::Sandbox {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// An object on member `name`, if it exists.
    pub async fn get_on(
        &self,
        name: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        object: &str,
    ) -> Result<Option<Value>, HarnessError> {
        let client = self.member(name).client().await?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(&client, &gvk)
            .await
            .map_err(|source| HarnessError::Kube {
                what: format!("discovering {kind} on {name}"),
                source,
            })?;
        let api: Api<DynamicObject> = match (caps.scope, namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client, ns, &ar),
            _ => Api::all_with(client, &ar),
        };
        let found = api
            .get_opt(object)
            .await
            .map_err(|source| HarnessError::Kube {
                what: format!("reading {kind} {object} on {name}"),
                source,
            })?;
        Ok(found.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    /// Waits until `check` holds for the object on member `name` (`None`:
    /// absent).
    pub async fn wait_on(
        &self,
        name: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        object: &str,
        check: impl Fn(Option<&Value>) -> bool,
    ) -> Result<Option<Value>, HarnessError> {
        eventually(
            &format!("{kind} {object} on {name}"),
            Duration::from_secs(30),
            || async {
                let found = self
                    .get_on(name, api_version, kind, namespace, object)
                    .await
                    .map_err(|e| e.to_string())?;
                if check(found.as_ref()) {
                    Ok(Some(found))
                } else {
                    Err(format!("{found:?}"))
                }
            },
        )
        .await
    }

    /// Waits until Cluster `name` has a Ready condition with `reason`.
    pub async fn wait_cluster(&self, name: &str, reason: &str) -> Result<Value, HarnessError> {
        self.hub
            .wait_for("hub.kro.run/v1alpha1", "Cluster", None, name, |c| {
                crate::condition(c, "Ready").is_some_and(|r| r["reason"] == reason)
            })
            .await
    }
}

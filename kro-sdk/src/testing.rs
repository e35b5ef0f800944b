//! A hub for your tests (feature `testing`): in-process Kubernetes API
//! servers (kro-sandbox, speaking the real REST and watch protocol, with
//! Deployments and the like made ready by a workload simulator) and the
//! kro-hub controller running against them, so a project that uses kro-sdk
//! tests its resource graphs end to end with `cargo test`, no cluster
//! needed.
//!
//! ```no_run
//! # async fn t() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = kro_sdk::testing::TestHub::builder()
//!     .member("eu-1", [("env", "prod")])
//!     .start()
//!     .await?;
//! let client = hub.client();        // the hub's API server, as `kube::Client`
//! // kro_sdk::install_rgd::<MyKind>(&client, ...), Instances::<MyKind>::namespaced(client, "default") ...
//! let eu = hub.member_client("eu-1").await?; // what landed on the member
//! hub.stop().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The hub namespace holding the members' kubeconfig Secrets.
const HUB_NAMESPACE: &str = "kro-system";
/// How long `start` waits for the hub and its members.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a test hub did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestHubError {
    /// An API server did not start.
    #[error("starting API server {name}: {message}")]
    Sandbox {
        /// The cluster's name.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// A call to an API server failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The hub or a member did not get ready in time.
    #[error("{0} was not ready within {START_TIMEOUT:?}")]
    NotReady(String),
    /// No member has this name.
    #[error("no member named {0}")]
    NoMember(String),
}

/// A hub API server with kro-hub running on it, and member API servers
/// registered as `Cluster`s. Everything stops when it is dropped (or
/// [`stop`](Self::stop)ped).
pub struct TestHub {
    hub: kro_sandbox::Sandbox,
    client: Client,
    members: Vec<(String, kro_sandbox::Sandbox)>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHub")
            .field(
                "members",
                &self.members.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// How a [`TestHub`] is made: its members and their labels.
#[derive(Debug, Default, Clone)]
pub struct TestHubBuilder {
    members: Vec<(String, BTreeMap<String, String>)>,
    simulator_delay: Option<Duration>,
}

impl TestHubBuilder {
    /// Adds a member cluster named `name` with these `Cluster` labels (what
    /// placements select on).
    pub fn member<'a>(
        mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let labels = labels
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.members.push((name.to_owned(), labels));
        self
    }

    /// How long the workload simulator takes to make a Deployment (and the
    /// like) ready; the sandbox's default when not set.
    pub fn simulator_delay(mut self, delay: Duration) -> Self {
        self.simulator_delay = Some(delay);
        self
    }

    fn sandbox(&self, name: &str) -> kro_sandbox::SandboxBuilder {
        let b = kro_sandbox::SandboxBuilder::new(name);
        match self.simulator_delay {
            Some(d) => b.simulator_delay(d),
            None => b,
        }
    }

    /// Starts the API servers and the hub, registers the members, and
    /// returns once the hub and every member are ready.
    pub async fn start(self) -> Result<TestHub, TestHubError> {
        let sandbox_err = |name: &str| {
            let name = name.to_owned();
            move |e: kro_sandbox::SandboxError| TestHubError::Sandbox {
                name,
                message: e.to_string(),
            }
        };
        let hub = self
            .sandbox("hub")
            .start()
            .await
            .map_err(sandbox_err("hub"))?;
        let client = hub.client().await.map_err(sandbox_err("hub"))?;
        let config = hub.config().await.map_err(sandbox_err("hub"))?;
        let metrics = kro_hub::metrics::Metrics::new();
        let ready = metrics.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let options = kro_hub::HubOptions {
            member_probe_interval: Duration::from_millis(300),
            ..kro_hub::HubOptions::default()
        };
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = kro_hub::run_hub(config, options, metrics, shutdown).await {
                tracing::error!(%error, "test hub stopped");
            }
        });
        let mut out = TestHub {
            hub,
            client,
            members: Vec::new(),
            stop: Some(stop),
            task: Some(task),
        };
        wait("the hub", || async { Ok(ready.is_ready()) }).await?;
        for ns in ["default", HUB_NAMESPACE] {
            out.apply(
                &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await?;
        }
        for (name, labels) in &self.members {
            let token = format!("kro-sdk-test-{name}-token");
            let member = self
                .sandbox(name)
                .token(&token)
                .start()
                .await
                .map_err(sandbox_err(name))?;
            let secret = format!("{name}-kubeconfig");
            out.apply(
                &ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
                json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": secret, "namespace": HUB_NAMESPACE},
                "stringData": {"kubeconfig": member.kubeconfig_yaml()}}),
            )
            .await?;
            out.apply(
                &kro_hub::members::cluster::api_resource(),
                json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster",
                "metadata": {"name": name, "labels": labels},
                "spec": {"kubeconfigSecretRef": {"namespace": HUB_NAMESPACE, "name": secret}}}),
            )
            .await?;
            out.members.push((name.clone(), member));
        }
        let clusters = Api::<DynamicObject>::all_with(
            out.client.clone(),
            &kro_hub::members::cluster::api_resource(),
        );
        for (name, _) in &self.members {
            wait(&format!("member {name}"), || async {
                let c = clusters
                    .get_opt(name)
                    .await
                    .map_err(|source| TestHubError::Kube {
                        what: format!("reading Cluster {name}"),
                        source,
                    })?;
                Ok(c.is_some_and(|c| {
                    c.data["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                }))
            })
            .await?;
        }
        Ok(out)
    }
}

async fn wait<F, Fut>(what: &str, mut probe: F) -> Result<(), TestHubError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, TestHubError>>,
{
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if probe().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(TestHubError::NotReady(what.to_owned()))
}

impl TestHub {
    /// A hub with no members: plain kro on one cluster.
    pub async fn start() -> Result<Self, TestHubError> {
        Self::builder().start().await
    }

    /// A hub with members: see [`TestHubBuilder`].
    pub fn builder() -> TestHubBuilder {
        TestHubBuilder::default()
    }

    /// A client of the hub's API server (where RGDs and instances live).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The hub's API server, e.g. for its kubeconfig.
    pub fn hub(&self) -> &kro_sandbox::Sandbox {
        &self.hub
    }

    /// The API server of member `name`, e.g. to take it down
    /// (`member.faults().refuse_connections(true)`).
    pub fn member(&self, name: &str) -> Result<&kro_sandbox::Sandbox, TestHubError> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| TestHubError::NoMember(name.to_owned()))
    }

    /// A client of member `name`'s API server, to see what the hub put there.
    pub async fn member_client(&self, name: &str) -> Result<Client, TestHubError> {
        self.member(name)?
            .client()
            .await
            .map_err(|e| TestHubError::Sandbox {
                name: name.to_owned(),
                message: e.to_string(),
            })
    }

    /// Server-side applies `doc`, an object of the kind `ar` names.
    async fn apply(&self, ar: &ApiResource, doc: serde_json::Value) -> Result<(), TestHubError> {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        };
        api.patch(
            &name,
            &PatchParams::apply("kro-sdk-testing").force(),
            &Patch::Apply(&doc),
        )
        .await
        .map_err(|source| TestHubError::Kube {
            what: format!("applying {} {name}", ar.kind),
            source,
        })?;
        Ok(())
    }

    /// Stops the hub and the API servers.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

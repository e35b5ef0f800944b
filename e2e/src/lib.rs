//! The end-to-end harness: a hub running in-process against either a fresh
//! kro-sandbox cluster (the default) or a real cluster named by
//! `KRO_E2E_KUBECONFIG` (for example a kind cluster made by
//! `kind-configs/create.sh`). Tests use only the Kubernetes API, so the same
//! test passes on both.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Environment variable naming a real cluster's kubeconfig.
pub mod fleet;

pub const KUBECONFIG_ENV: &str = "KRO_E2E_KUBECONFIG";

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The sandbox failed to start.
    #[error("sandbox: {0}")]
    Sandbox(#[from] kro_sandbox::SandboxError),
    /// The real cluster could not be reached.
    #[error("cluster: {0}")]
    Cluster(#[from] kro_hub::kubeconfig::ClusterSourceError),
    /// An API call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What the test was doing.
        what: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// A YAML fixture is malformed.
    #[error("fixture: {0}")]
    Fixture(String),
    /// A condition did not hold in time.
    #[error("timed out after {timeout:?} waiting for {what}; last seen: {last}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long.
        timeout: Duration,
        /// The last observation, for the failure message.
        last: String,
    },
}

/// One test's cluster and the hub running against it.
pub struct Env {
    /// Client of the cluster the hub manages (the test's own).
    pub client: Client,
    /// Configuration of that cluster, for the hub's own client.
    pub config: kube::Config,
    /// Metrics of the running hub (API calls it made, by verb).
    pub metrics: Arc<kro_hub::metrics::Metrics>,
    /// The sandbox, when not on a real cluster.
    pub sandbox: Option<kro_sandbox::Sandbox>,
    hub: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field(
                "sandbox",
                &self.sandbox.as_ref().map(|s| s.name().to_owned()),
            )
            .field("hub_running", &self.hub.is_some())
            .finish_non_exhaustive()
    }
}

impl Env {
    /// A cluster (sandbox unless `KRO_E2E_KUBECONFIG` is set) with a hub running.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with(hub_options()).await
    }

    /// Like [`Env::start`] with explicit hub options.
    pub async fn start_with(options: kro_hub::HubOptions) -> Result<Self, HarnessError> {
        let mut env = Self::cluster_only().await?;
        env.start_hub(options).await?;
        Ok(env)
    }

    /// A cluster with no hub, for tests that start it themselves.
    pub async fn cluster_only() -> Result<Self, HarnessError> {
        init_tracing();
        if let Some(path) = std::env::var_os(KUBECONFIG_ENV) {
            let source = kro_hub::kubeconfig::ClusterSource {
                kubeconfig: Some(PathBuf::from(path)),
                context: None,
            };
            let config = source.config().await?;
            return Ok(Self {
                client: Client::try_from(config.clone())
                    .map_err(kro_hub::kubeconfig::ClusterSourceError::from)?,
                config,
                metrics: kro_hub::metrics::Metrics::new(),
                sandbox: None,
                hub: None,
            });
        }
        let sandbox = kro_sandbox::SandboxBuilder::new("hub")
            .simulator_delay(Duration::from_millis(300))
            .start()
            .await?;
        let client = sandbox.client().await?;
        let config =
            kube::Config::from_custom_kubeconfig(sandbox.kubeconfig()?, &Default::default())
                .await
                .map_err(kro_hub::kubeconfig::ClusterSourceError::from)?;
        let env = Self {
            client: client.clone(),
            config: config.clone(),
            metrics: kro_hub::metrics::Metrics::new(),
            sandbox: None,
            hub: None,
        };
        env.apply(&serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}))
            .await?;
        drop(env);
        Ok(Self {
            client,
            config,
            metrics: kro_hub::metrics::Metrics::new(),
            sandbox: Some(sandbox),
            hub: None,
        })
    }

    /// Starts the hub in-process (fast resync so tests see drift repaired)
    /// and waits until it has installed its CRDs.
    pub async fn start_hub(&mut self, options: kro_hub::HubOptions) -> Result<(), HarnessError> {
        let (tx, rx) = oneshot::channel::<()>();
        let metrics = kro_hub::metrics::Metrics::new();
        self.metrics = metrics.clone();
        let config = self.config.clone();
        let ready = metrics.clone();
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = rx.await;
            };
            if let Err(error) = kro_hub::run_hub(config, options, metrics, stop).await {
                tracing::error!(%error, "hub stopped");
            }
        });
        self.hub = Some((tx, task));
        eventually("the hub to be ready", Duration::from_secs(30), || async {
            Ok::<_, String>(ready.is_ready().then_some(()))
        })
        .await
    }

    /// Stops the hub (as a crash or restart would), leaving the cluster.
    pub async fn stop_hub(&mut self) {
        if let Some((tx, task)) = self.hub.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }

    /// Applies every document of a YAML stream with server-side apply.
    pub async fn apply_yaml(&self, yaml: &str) -> Result<Vec<DynamicObject>, HarnessError> {
        let docs = kro_core::parse_yaml_documents(yaml)
            .map_err(|e| HarnessError::Fixture(e.to_string()))?;
        let mut out = Vec::new();
        for doc in docs {
            out.push(self.apply(&doc).await?);
        }
        Ok(out)
    }

    /// Applies one object with server-side apply as the test's own manager.
    pub async fn apply(&self, doc: &Value) -> Result<DynamicObject, HarnessError> {
        let (api, name) = self.api_for(doc).await?;
        api.patch(
            &name,
            &PatchParams::apply("e2e-test").force(),
            &Patch::Apply(doc),
        )
        .await
        .map_err(|source| HarnessError::Kube {
            what: format!("applying {name}"),
            source,
        })
    }

    /// Deletes one object (no error when it is already gone).
    pub async fn delete(&self, doc: &Value) -> Result<(), HarnessError> {
        let (api, name) = self.api_for(doc).await?;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(HarnessError::Kube {
                what: format!("deleting {name}"),
                source,
            }),
        }
    }

    /// Reads an object, `None` when absent.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, HarnessError> {
        let mut doc = serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        if let Some(ns) = namespace {
            doc["metadata"]["namespace"] = Value::String(ns.to_owned());
        }
        let (api, name) = self.api_for(&doc).await?;
        let found = api
            .get_opt(&name)
            .await
            .map_err(|source| HarnessError::Kube {
                what: format!("reading {kind} {name}"),
                source,
            })?;
        Ok(found.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    /// Lists objects of a kind, in one namespace or all.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, HarnessError> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|source| HarnessError::Kube {
                what: format!("discovering {api_version} {kind}"),
                source,
            })?;
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        let list = api
            .list(&Default::default())
            .await
            .map_err(|source| HarnessError::Kube {
                what: format!("listing {kind}"),
                source,
            })?;
        Ok(list
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
            .collect())
    }

    async fn api_for(&self, doc: &Value) -> Result<(Api<DynamicObject>, String), HarnessError> {
        let fixture = |m: &str| HarnessError::Fixture(format!("{m}: {doc}"));
        let api_version = doc["apiVersion"]
            .as_str()
            .ok_or_else(|| fixture("no apiVersion"))?;
        let kind = doc["kind"].as_str().ok_or_else(|| fixture("no kind"))?;
        let name = doc["metadata"]["name"]
            .as_str()
            .ok_or_else(|| fixture("no name"))?
            .to_owned();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps): (ApiResource, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|source| HarnessError::Kube {
            what: format!("discovering {api_version} {kind}"),
            source,
        })?;
        let api = match (caps.scope, doc["metadata"]["namespace"].as_str()) {
            (kube::discovery::Scope::Namespaced, ns) => {
                Api::namespaced_with(self.client.clone(), ns.unwrap_or("default"), &ar)
            }
            _ => Api::all_with(self.client.clone(), &ar),
        };
        Ok((api, name))
    }
}

/// The hub options tests use: a fast resync so repairs are quick.
pub fn hub_options() -> kro_hub::HubOptions {
    kro_hub::HubOptions {
        resync: Duration::from_secs(30),
        ..kro_hub::HubOptions::default()
    }
}

/// How many writes (create, update, apply, patch, delete) the hub made.
pub fn hub_writes(metrics: &kro_hub::metrics::Metrics) -> u64 {
    ["create", "update", "apply", "patch", "delete"]
        .iter()
        .map(|v| metrics.api_calls("hub", v))
        .sum()
}

/// The CPU limit `deploy/deployment.yaml` gives the hub's container. In a
/// pod so limited the standard library reports that many CPUs (it reads
/// the cgroup's quota), so the hub's runtime starts that many worker
/// threads: `fanout-bench` runs its hub with as many, as deployed (a test
/// keeps the two equal).
pub const HUB_CPU_LIMIT: usize = 1;

/// The allocator settings `deploy/deployment.yaml` gives the hub
/// (`_RJEM_MALLOC_CONF`): one arena for its one worker thread.
/// `fanout-bench` runs its hub with the same (a test keeps the two equal).
pub const HUB_MALLOC_CONF: &str = "narenas:1";

/// How long tests wait for the hub to converge.
pub const WAIT: Duration = Duration::from_secs(30);

/// The condition of `type_` in an object's status.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

impl Env {
    /// Waits until the RGD `name` reports `state` (`Active`/`Inactive`).
    pub async fn wait_rgd(&self, name: &str, state: &str) -> Result<Value, HarnessError> {
        self.wait_for(
            "kro.run/v1alpha1",
            "ResourceGraphDefinition",
            None,
            name,
            |r| r.pointer("/status/state") == Some(&Value::from(state)),
        )
        .await
    }

    /// Waits until the object exists and `check` holds for it.
    pub async fn wait_for(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value, HarnessError> {
        eventually(&format!("{kind} {name}"), WAIT, || async {
            match self
                .get(api_version, kind, namespace, name)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(obj) if check(&obj) => Ok(Some(obj)),
                Some(obj) => Err(format!(
                    "metadata {} spec {} status {}",
                    obj["metadata"], obj["spec"], obj["status"]
                )),
                None => Err("absent".to_owned()),
            }
        })
        .await
    }

    /// Waits until the object no longer exists.
    pub async fn wait_gone(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), HarnessError> {
        eventually(&format!("{kind} {name} to be gone"), WAIT, || async {
            match self
                .get(api_version, kind, namespace, name)
                .await
                .map_err(|e| e.to_string())?
            {
                None => Ok(Some(())),
                Some(obj) => Err(format!("still there: {}", obj["metadata"])),
            }
        })
        .await
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some((tx, task)) = self.hub.take() {
            let _ = tx.send(());
            task.abort();
        }
    }
}

/// Polls `probe` until it returns `Ok(Some(v))`, or fails with the last
/// observation after `timeout`.
pub async fn eventually<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("nothing yet");
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(seen) => last = seen,
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads an example file from the repository's `examples/` folder.
pub fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("example {}: {e}", path.display()))
}

/// Reads a fixture file from `e2e/data`.
pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

//! What the benchmark asks for: the web-app RGD (a Deployment and a
//! Service per member) placed on every member, N instances of it, and the
//! minimal controller-less client that writes the same converged state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use kro_hub::lean_object::LeanObject;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::clusters::{Clusters, Member};

/// The RGD's name.
pub const RGD: &str = "fanout-bench-web-app";
/// Label every member carries and the placement selects.
pub const MEMBER_LABEL: &str = "fanout-bench";
/// Namespace of the members' kubeconfig Secrets on the hub.
pub const SECRETS_NAMESPACE: &str = "fanout-bench-system";
/// How many creates the client has in flight.
const CLIENT_CONCURRENCY: usize = 64;
/// Field manager of the benchmark client's writes.
const MANAGER: &str = "fanout-bench";

/// The generated kind.
pub fn instance_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kro.run", "v1alpha1", "BenchWebApp"),
        "benchwebapps",
    )
}

/// The web-app RGD: a Deployment and a Service on every member labelled
/// [`MEMBER_LABEL`].
pub fn rgd() -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": RGD},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "BenchWebApp",
                "spec": {"image": "string | default=\"nginx\"", "replicas": "integer | default=1"},
                "status": {"availableReplicas": "${deployment.status.availableReplicas}"}},
            "placement": {"clusterSelector": {"matchLabels": {MEMBER_LABEL: "true"}}},
            "resources": [
                {"id": "deployment",
                 "readyWhen": ["${deployment.status.?availableReplicas.orValue(0) == deployment.spec.replicas}"],
                 "template": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "${schema.metadata.name}"},
                    "spec": {"replicas": "${schema.spec.replicas}",
                        "selector": {"matchLabels": {"app": "${schema.metadata.name}"}},
                        "template": {"metadata": {"labels": {"app": "${schema.metadata.name}"}},
                            "spec": {"containers": [{"name": "web", "image": "${schema.spec.image}",
                                "ports": [{"containerPort": 80}]}]}}}}},
                {"id": "service",
                 "template": {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "${schema.metadata.name}"},
                    "spec": {"selector": "${deployment.spec.selector.matchLabels}",
                        "ports": [{"port": 80, "targetPort": 80}]}}}
            ]
        }
    })
}

/// Instance `i`'s name.
pub fn name_of(i: usize) -> String {
    format!("app-{i:05}")
}

fn instance(i: usize, namespace: &str) -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "BenchWebApp",
        "metadata": {"name": name_of(i), "namespace": namespace},
        "spec": {"replicas": 1}})
}

/// Server-side applies `doc` (cluster-scoped when it has no namespace).
pub async fn apply(client: &Client, doc: &Value) -> anyhow::Result<()> {
    let api_version = doc["apiVersion"].as_str().context("apiVersion")?;
    let kind = doc["kind"].as_str().context("kind")?;
    let name = doc["metadata"]["name"].as_str().context("name")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (ar, caps) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind)).await?;
    let api: Api<DynamicObject> = match (caps.scope, doc["metadata"]["namespace"].as_str()) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(doc),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(())
}

/// Polls `probe` every 100 ms until it is `Some`, for at most `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers the members on the hub and installs the RGD, and waits until
/// both are usable.
pub async fn install(clusters: &Clusters, namespace: &str) -> anyhow::Result<()> {
    let hub = &clusters.hub;
    for ns in [SECRETS_NAMESPACE, namespace] {
        apply(
            hub,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    for m in &clusters.members {
        register(hub, m).await?;
    }
    apply(hub, &rgd()).await?;
    let rgds = Api::<DynamicObject>::all_with(
        hub.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
            "resourcegraphdefinitions",
        ),
    );
    wait_until("the RGD to be Active", Duration::from_secs(120), || async {
        let r = rgds.get_opt(RGD).await.ok()??;
        (r.data.pointer("/status/state") == Some(&json!("Active"))).then_some(())
    })
    .await?;
    let cluster_api =
        Api::<DynamicObject>::all_with(hub.clone(), &kro_hub::members::cluster::api_resource());
    for m in &clusters.members {
        wait_until(
            &format!("Cluster {} to be reachable", m.name),
            Duration::from_secs(120),
            || async {
                let c = cluster_api.get_opt(&m.name).await.ok()??;
                let ready = c
                    .data
                    .pointer("/status/conditions")?
                    .as_array()?
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["reason"] == "Reachable");
                ready.then_some(())
            },
        )
        .await?;
    }
    Ok(())
}

async fn register(hub: &Client, m: &Member) -> anyhow::Result<()> {
    let secret = format!("{}-kubeconfig", m.name);
    apply(
        hub,
        &json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret, "namespace": SECRETS_NAMESPACE},
        "stringData": {"kubeconfig": m.hub_kubeconfig}}),
    )
    .await?;
    apply(
        hub,
        &json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster",
        "metadata": {"name": m.name, "labels": {MEMBER_LABEL: "true"}},
        "spec": {"kubeconfigSecretRef": {"namespace": SECRETS_NAMESPACE, "name": secret}}}),
    )
    .await
}

/// Whether an instance reports Ready on every cluster.
fn is_ready(obj: &Value, members: usize) -> bool {
    let status = obj.get("status");
    let ready = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    let clusters = status
        .and_then(|s| s.get("clusters"))
        .and_then(Value::as_array)
        .map_or(0, |cs| cs.iter().filter(|c| c["state"] == "Ready").count());
    ready && clusters == members
}

/// Creates `n` instances as fast as the client can and waits until every
/// one is Ready on every member; the time from the first create.
pub async fn create_and_wait(
    clusters: &Clusters,
    namespace: &str,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let api = Api::<DynamicObject>::namespaced_with(
        clusters.hub.clone(),
        namespace,
        &instance_resource(),
    );
    let members = clusters.members.len();
    // The watch is open before the first create, so no transition is missed.
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    // Observers on both sides decode what they watch the way the hub
    // does (one pass, managedFields skipped): the measuring client's own
    // decoding shares the two cores with what it measures.
    let watch_api =
        Api::<LeanObject>::namespaced_with(clusters.hub.clone(), namespace, &instance_resource());
    let watching = tokio::spawn(async move {
        let mut ready = std::collections::HashSet::new();
        let mut events = watcher(watch_api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            let obj = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                _ => continue,
            };
            let name = obj.metadata.name.clone().unwrap_or_default();
            if is_ready(&obj.json, members) {
                ready.insert(name);
            } else {
                ready.remove(&name);
            }
            if ready.len() == n {
                let _ = ready_tx.send(());
                return;
            }
        }
    });
    // Give the watch its initial list before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let obj: DynamicObject = serde_json::from_value(instance(i, namespace))?;
                api.create(&PostParams::default(), &obj)
                    .await
                    .with_context(|| format!("creating {}", name_of(i)))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let outcome = tokio::time::timeout(timeout, ready_rx).await;
    watching.abort();
    match outcome {
        Ok(Ok(())) => Ok(start.elapsed()),
        _ => bail!("not every instance was Ready within {timeout:?}"),
    }
}

/// Every instance's status, by name.
pub async fn statuses(
    clusters: &Clusters,
    namespace: &str,
) -> anyhow::Result<HashMap<String, Value>> {
    let api = Api::<DynamicObject>::namespaced_with(
        clusters.hub.clone(),
        namespace,
        &instance_resource(),
    );
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|o| {
            let status = o.data.get("status").cloned().unwrap_or(Value::Null);
            (o.metadata.name.unwrap_or_default(), status)
        })
        .collect())
}

/// The time a minimal client takes to list and start watching what a
/// restarted hub must read: the instances on the hub and their children on
/// every member.
pub async fn list_and_watch(clusters: &Clusters, namespace: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut work = Vec::new();
    let hub_api = Api::<DynamicObject>::namespaced_with(
        clusters.hub.clone(),
        namespace,
        &instance_resource(),
    );
    work.push(first_page(hub_api, String::new()));
    let selector = format!("{}=", kro_hub::members::CLUSTER_LABEL);
    for m in &clusters.members {
        let sel = format!("{selector}{}", m.name);
        let deployments = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
        let services = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Service"));
        for ar in [deployments, services] {
            work.push(first_page(
                Api::all_with(m.client.clone(), &ar),
                sel.clone(),
            ));
        }
    }
    futures::future::try_join_all(work).await?;
    Ok(start.elapsed())
}

/// Lists (every page) and opens a watch from the list's version, as a
/// reflector does, and returns once the watch is open.
async fn first_page(api: Api<DynamicObject>, selector: String) -> anyhow::Result<usize> {
    let mut events = watcher(api, watcher::Config::default().labels(&selector)).boxed();
    let mut seen = 0;
    while let Some(event) = events.next().await {
        match event? {
            watcher::Event::InitApply(_) => seen += 1,
            watcher::Event::InitDone => return Ok(seen),
            _ => {}
        }
    }
    bail!("watch ended before its initial list")
}

/// The children the hub writes for instance `name` on member `cluster`,
/// as the minimal client renders them: the same kinds, names, specs and
/// labels.
fn children(name: &str, namespace: &str, cluster: &str, uid: &str) -> [Value; 2] {
    let mut labels = serde_json::Map::new();
    for (k, v) in [
        ("kro.run/owned", "true"),
        ("kro.run/kro-version", env!("CARGO_PKG_VERSION")),
        ("app.kubernetes.io/managed-by", "kro"),
        ("kro.run/instance-id", uid),
        ("kro.run/instance-name", name),
        ("kro.run/instance-namespace", namespace),
        ("kro.run/instance-group", "kro.run"),
        ("kro.run/instance-version", "v1alpha1"),
        ("kro.run/instance-kind", "BenchWebApp"),
        ("kro.run/resource-graph-definition-name", RGD),
        ("kro.run/defined-by-rgd", RGD),
        (kro_hub::members::CLUSTER_LABEL, cluster),
        (kro_hub::members::INSTANCE_UID_LABEL, uid),
    ] {
        labels.insert(k.to_owned(), json!(v));
    }
    let with = |node: &str| {
        let mut l = labels.clone();
        l.insert("kro.run/node-id".to_owned(), json!(node));
        Value::Object(l)
    };
    [
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": with("deployment"),
                "annotations": {"hub.kro.run/applied-hash": "000000000000000000000000"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": with("service"),
                "annotations": {"hub.kro.run/applied-hash": "000000000000000000000000"}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 80}]}}),
    ]
}

/// The minimal client: creates the `n` instances, applies exactly the
/// objects the converged state holds on every member (the namespace once,
/// then a Deployment and a Service per instance, with the hub's per-member
/// concurrency), waits for the Deployments to be available (through one
/// watch per member, as the hub does) and writes each instance's final
/// status once. The CRD of the instances must already be served.
pub async fn baseline(
    clusters: &Clusters,
    namespace: &str,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let api = Api::<DynamicObject>::namespaced_with(
        clusters.hub.clone(),
        namespace,
        &instance_resource(),
    );
    let members = clusters.members.len();
    // Ready Deployments, counted per instance by one task fed by the watches.
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<String>();
    let mut waiters: HashMap<String, oneshot::Sender<()>> = HashMap::new();
    let mut wait_for: Vec<Option<oneshot::Receiver<()>>> = Vec::new();
    for i in 0..n {
        let (tx, rx) = oneshot::channel();
        waiters.insert(name_of(i), tx);
        wait_for.push(Some(rx));
    }
    let counting = tokio::spawn(async move {
        let mut counts: HashMap<String, usize> = HashMap::new();
        while let Some(name) = ready_rx.recv().await {
            let c = counts.entry(name.clone()).or_default();
            *c += 1;
            if *c == members
                && let Some(tx) = waiters.remove(&name)
            {
                let _ = tx.send(());
            }
        }
    });
    let mut watches = Vec::new();
    for m in &clusters.members {
        let deployments = Api::<LeanObject>::namespaced_with(
            m.client.clone(),
            namespace,
            &ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment")),
        );
        let tx = ready_tx.clone();
        let config = watcher::Config::default().labels(&format!(
            "{}={}",
            kro_hub::members::CLUSTER_LABEL,
            m.name
        ));
        watches.push(tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            let mut events = watcher(deployments, config).boxed();
            while let Some(event) = events.next().await {
                let (Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d))) = event
                else {
                    continue;
                };
                let available = d
                    .json
                    .pointer("/status/availableReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let wanted = d
                    .json
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let name = d.metadata.name.clone().unwrap_or_default();
                if available == wanted && seen.insert(name.clone()) {
                    let _ = tx.send(name);
                }
            }
        }));
    }
    drop(ready_tx);
    let permits: Vec<Arc<Semaphore>> = clusters
        .members
        .iter()
        .map(|_| Arc::new(Semaphore::new(kro_hub::members::PASSES_PER_MEMBER)))
        .collect();
    let namespaces_done: Vec<tokio::sync::OnceCell<()>> = clusters
        .members
        .iter()
        .map(|_| tokio::sync::OnceCell::new())
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let one = |i: usize, ready: oneshot::Receiver<()>| {
        let api = api.clone();
        let permits = &permits;
        let namespaces_done = &namespaces_done;
        async move {
            let name = name_of(i);
            let obj: DynamicObject = serde_json::from_value(instance(i, namespace))?;
            let created = api.create(&PostParams::default(), &obj).await?;
            let uid = created.metadata.uid.clone().unwrap_or_default();
            let per_member = clusters.members.iter().enumerate().map(|(k, m)| {
                let name = name.clone();
                let uid = uid.clone();
                async move {
                    let _permit = permits[k].acquire().await?;
                    namespaces_done[k]
                        .get_or_try_init(|| async {
                            apply(
                                &m.client,
                                &json!({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": namespace}}),
                            )
                            .await
                        })
                        .await?;
                    for child in children(&name, namespace, &m.name, &uid) {
                        apply_child(&m.client, namespace, &child).await?;
                    }
                    anyhow::Ok(())
                }
            });
            futures::future::try_join_all(per_member).await?;
            ready.await.context("readiness watch ended")?;
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                "state": "ACTIVE",
                "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                    "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string()}]}})),
            )
            .await?;
            anyhow::Ok(())
        }
    };
    let work = futures::stream::iter(wait_for.iter_mut().enumerate())
        .map(|(i, rx)| {
            let rx = rx.take();
            async move { one(i, rx.context("receiver used twice")?).await }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<()>>();
    let outcome = tokio::time::timeout(timeout, work).await;
    let took = start.elapsed();
    for w in watches {
        w.abort();
    }
    counting.abort();
    match outcome {
        Ok(result) => result.map(|_| took),
        Err(_) => bail!("the baseline did not finish within {timeout:?}"),
    }
}

async fn apply_child(client: &Client, namespace: &str, child: &Value) -> anyhow::Result<()> {
    let name = child["metadata"]["name"].as_str().context("name")?;
    let ar = match child["kind"].as_str() {
        Some("Deployment") => {
            ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        }
        _ => ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Service")),
    };
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &ar);
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(child),
    )
    .await?;
    Ok(())
}

/// The generated CRD as the hub serves it, ready to be applied elsewhere.
pub async fn generated_crd(hub: &Client) -> anyhow::Result<Value> {
    let crds = Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(hub.clone());
    let crd = crds.get("benchwebapps.kro.run").await?;
    let mut v = serde_json::to_value(crd)?;
    v["apiVersion"] = json!("apiextensions.k8s.io/v1");
    v["kind"] = json!("CustomResourceDefinition");
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| k == "name" || k == "labels" || k == "annotations");
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
    }
    Ok(v)
}

/// Applies the CRD and waits until its kind is served.
pub async fn install_crd(hub: &Client, crd: &Value) -> anyhow::Result<()> {
    apply(hub, crd).await?;
    wait_until("the CRD to be served", Duration::from_secs(60), || async {
        let api = Api::<DynamicObject>::all_with(hub.clone(), &instance_resource());
        api.list(&ListParams::default().limit(1))
            .await
            .ok()
            .map(|_| ())
    })
    .await
}

/// Deletes everything the run left on existing clusters: the instances
/// (through the hub, which removes their copies), the RGD, the Clusters,
/// their Secrets and the namespaces.
pub async fn clean_up(clusters: &Clusters, namespaces: &[&str]) -> anyhow::Result<()> {
    let hub = &clusters.hub;
    let dp = kube::api::DeleteParams::default();
    for ns in namespaces {
        let api = Api::<DynamicObject>::namespaced_with(hub.clone(), ns, &instance_resource());
        let _ = api.delete_collection(&dp, &ListParams::default()).await;
    }
    for ns in namespaces {
        let api = Api::<DynamicObject>::namespaced_with(hub.clone(), ns, &instance_resource());
        wait_until(
            "the instances to be gone",
            Duration::from_secs(600),
            || async {
                api.list(&ListParams::default().limit(1))
                    .await
                    .ok()
                    .filter(|l| l.items.is_empty())
                    .map(|_| ())
            },
        )
        .await?;
    }
    let rgds = Api::<DynamicObject>::all_with(
        hub.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kro.run", "v1alpha1", "ResourceGraphDefinition"),
            "resourcegraphdefinitions",
        ),
    );
    let _ = rgds.delete(RGD, &dp).await;
    let cluster_api =
        Api::<DynamicObject>::all_with(hub.clone(), &kro_hub::members::cluster::api_resource());
    for m in &clusters.members {
        let _ = cluster_api.delete(&m.name, &dp).await;
    }
    for m in &clusters.members {
        wait_until(
            "the Clusters to be released",
            Duration::from_secs(120),
            || async {
                cluster_api
                    .get_opt(&m.name)
                    .await
                    .ok()
                    .and_then(|c| c.is_none().then_some(()))
            },
        )
        .await?;
    }
    // The hub keeps the generated CRD of a deleted RGD; this one is ours.
    let crds = Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(hub.clone());
    wait_until("the RGD to be gone", Duration::from_secs(120), || async {
        rgds.get_opt(RGD)
            .await
            .ok()
            .and_then(|r| r.is_none().then_some(()))
    })
    .await?;
    let _ = crds.delete("benchwebapps.kro.run", &dp).await;
    let namespaces_api = Api::<k8s_openapi::api::core::v1::Namespace>::all(hub.clone());
    for ns in namespaces.iter().chain([&SECRETS_NAMESPACE]) {
        let _ = namespaces_api.delete(ns, &dp).await;
    }
    for m in &clusters.members {
        let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(m.client.clone());
        for ns in namespaces {
            let _ = api.delete(ns, &dp).await;
        }
    }
    Ok(())
}

//! The Cluster controller: builds each member's client from its kubeconfig
//! Secret (again whenever the Secret's content changes, so rotated
//! credentials are picked up without a restart), probes the member's
//! version endpoint on an interval (backing off while it fails, so a dead
//! member gets no request storm), keeps the pool up to date and writes the
//! Cluster's status when, and only when, it changes.
//!
//! Deleting a Cluster: the member leaves every placement, instances delete
//! their copies there, and the finalizer is released once the member holds
//! no child of the hub, or at once if the member is unreachable and the
//! Cluster carries `hub.kro.run/orphan-unreachable: "true"`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::cluster::{self, CLUSTER_FINALIZER};
use super::{CLUSTER_LABEL, Health, Member};
use crate::conditions::Condition;
use crate::rgd_controller::HubContext;

/// Errors that make a Cluster reconcile retry.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The hub's API server failed a request.
    #[error("cluster {cluster}: {action}: {source}")]
    Kube {
        /// The Cluster.
        cluster: String,
        /// What we were doing.
        action: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

/// Per-member state the controller keeps between probes.
#[derive(Debug, Default)]
struct Probing {
    /// Hash of the kubeconfig the client was built from.
    secret_hash: String,
    /// Consecutive failed probes (for the backoff).
    failures: u32,
}

/// Shared state of the Cluster controller.
#[derive(Debug, Default)]
pub struct ClusterState {
    probing: Mutex<HashMap<String, Probing>>,
}

/// Runs the Cluster controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<HubContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ar = cluster::api_resource();
    let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
    let state = Arc::new((ctx, ClusterState::default()));
    Controller::new_with(api, watcher::Config::default(), ar)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, state)
        .for_each(|res| async move {
            if let Err(error) = res {
                tracing::debug!(%error, "cluster reconcile failed");
            }
        })
        .await;
}

fn error_policy(
    _obj: Arc<DynamicObject>,
    error: &ClusterError,
    _ctx: Arc<(Arc<HubContext>, ClusterState)>,
) -> Action {
    tracing::warn!(%error, "cluster reconcile error; retrying");
    Action::requeue(Duration::from_secs(5))
}

fn kube_err(cluster: &str, action: &str) -> impl FnOnce(kube::Error) -> ClusterError {
    let cluster = cluster.to_owned();
    let action = action.to_owned();
    move |source| ClusterError::Kube {
        cluster,
        action,
        source,
    }
}

async fn reconcile(
    obj: Arc<DynamicObject>,
    state: Arc<(Arc<HubContext>, ClusterState)>,
) -> Result<Action, ClusterError> {
    let (ctx, cs) = (&state.0, &state.1);
    let name = obj.name_any();
    let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &cluster::api_resource());
    if obj.metadata.deletion_timestamp.is_none()
        && crate::finalizer::ensure(&api, &obj, CLUSTER_FINALIZER)
            .await
            .map_err(kube_err(&name, "adding finalizer"))?
    {
        return Ok(Action::await_change());
    }

    let mut member = ctx.members.get(&name).unwrap_or_else(|| Member::new(&name));
    member.labels = obj.labels().clone();
    member.annotations = obj.annotations().clone();
    member.deleting = obj.metadata.deletion_timestamp.is_some();
    let spec = cluster::spec_of(&obj);
    member.paused = spec.as_ref().is_ok_and(|s| s.paused);
    // A Cluster the pool does not hold yet (the hub just started, or the
    // Cluster is new) joins it unprobed at once: instance passes keep its
    // entries as they are until the probe tells, instead of taking a
    // member whose first probe is slow for one that is gone.
    if ctx.members.get(&name).is_none() {
        ctx.members.put(member.clone());
    }

    // The client, rebuilt when the Secret's content changed.
    let health = match &spec {
        Err(message) => Health::InvalidKubeconfig(message.clone()),
        Ok(spec) => match read_kubeconfig(&ctx.client, spec).await? {
            Err(health) => health,
            Ok((text, at)) => {
                let hash = format!("{:x}", Sha256::digest(text.as_bytes()));
                let known = cs
                    .probing
                    .lock()
                    .ok()
                    .and_then(|p| p.get(&name).map(|p| p.secret_hash.clone()));
                if member.client.is_none() || known.as_deref() != Some(hash.as_str()) {
                    match super::kubeconfig::config_from(&text, &at).await {
                        Ok(config) => {
                            match crate::api_calls::counted_client(
                                config,
                                ctx.metrics.clone(),
                                &name,
                            ) {
                                Ok(client) => {
                                    // Watches on the old client stop; they
                                    // restart with the next instance pass.
                                    ctx.drift.stop_member(&name);
                                    member.client = Some(client);
                                    member.discovery = Arc::default();
                                    member.known_namespaces = Arc::default();
                                    member.schemas = Arc::default();
                                    member.epoch += 1;
                                    if let Ok(mut p) = cs.probing.lock() {
                                        p.entry(name.clone()).or_default().secret_hash = hash;
                                    }
                                    tracing::info!(cluster = %name, "member client built");
                                    probe(&member).await
                                }
                                Err(_) => Health::InvalidKubeconfig(format!(
                                    "{at}: no client can be built from the kubeconfig"
                                )),
                            }
                        }
                        Err(health) => {
                            member.client = None;
                            health
                        }
                    }
                } else {
                    probe(&member).await
                }
            }
        },
    };
    let failures = {
        let mut p = cs.probing.lock().ok();
        let entry = p.as_mut().map(|p| p.entry(name.clone()).or_default());
        match entry {
            Some(e) if health.is_ready() => {
                e.failures = 0;
                0
            }
            Some(e) => {
                e.failures = e.failures.saturating_add(1);
                e.failures
            }
            None => 0,
        }
    };
    if member.health != health {
        tracing::info!(cluster = %name, reason = health.reason(), message = %health.message(), "member health changed");
    }
    member.health = health.clone();
    ctx.members.put(member.clone());

    write_status(&api, &obj, &health).await?;

    if member.deleting {
        return finalize(ctx, &api, &obj, &member).await;
    }
    let interval = ctx.options.member_probe_interval;
    Ok(Action::requeue(if failures == 0 {
        interval
    } else {
        // 1x, 2x, 4x ... the interval, at most 5 minutes or 10 intervals.
        let factor = 1u32 << failures.min(6).saturating_sub(1);
        (interval * factor).min(Duration::from_secs(300).max(interval * 10))
    }))
}

/// The kubeconfig text and where it was read, or why it cannot be.
pub(crate) async fn read_kubeconfig(
    client: &kube::Client,
    spec: &cluster::ClusterSpec,
) -> Result<Result<(String, String), Health>, ClusterError> {
    let r = &spec.kubeconfig_secret_ref;
    let at = format!("Secret {}/{} key {}", r.namespace, r.name, r.key);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &r.namespace);
    let secret = match secrets.get_opt(&r.name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Ok(Err(Health::SecretNotFound(format!(
                "Secret {}/{} does not exist",
                r.namespace, r.name
            ))));
        }
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return Ok(Err(Health::SecretNotFound(format!(
                "kro-hub may not read Secret {}/{} ({})",
                r.namespace, r.name, s.message
            ))));
        }
        Err(source) => {
            return Err(ClusterError::Kube {
                cluster: r.name.clone(),
                action: format!("reading Secret {}/{}", r.namespace, r.name),
                source,
            });
        }
    };
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    match data {
        Some(text) => Ok(Ok((text, at))),
        None => Ok(Err(Health::InvalidKubeconfig(format!("{at} is missing")))),
    }
}

/// Asks the member for its version.
pub(crate) async fn probe(member: &Member) -> Health {
    let Some(client) = &member.client else {
        return Health::Unknown;
    };
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(info)) => Health::Reachable {
            version: info.git_version,
        },
        Ok(Err(kube::Error::Api(s))) if s.code == 401 || s.code == 403 => {
            Health::Unauthorized(format!(
                "the member refused the credentials of its kubeconfig ({} {})",
                s.code, s.reason
            ))
        }
        Ok(Err(error)) => Health::Unreachable(unreachable_message(&error)),
        Err(_) => Health::Unreachable("no answer within 10s".to_owned()),
    }
}

/// Why a member did not answer, without anything from its credentials.
pub fn unreachable_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(s) => format!("the member answered {} {}", s.code, s.reason),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            "the member's API server cannot be reached".to_owned()
        }
        _ => "the member's API server did not answer as expected".to_owned(),
    }
}

async fn write_status(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    health: &Health,
) -> Result<(), ClusterError> {
    let name = obj.name_any();
    let generation = obj.metadata.generation;
    let ready = Condition::new(
        "Ready",
        health.is_ready(),
        health.reason(),
        health.message(),
        generation,
    );
    let mut status = json!({"conditions": [ready]});
    let version = match health {
        Health::Reachable { version } => Some(version.clone()),
        // The last version seen stays while the member is away.
        _ => obj
            .data
            .pointer("/status/kubernetesVersion")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    };
    if let Some(version) = version {
        status["kubernetesVersion"] = json!(version);
    }
    crate::status::write(api, &name, obj.data.get("status"), status)
        .await
        .map_err(kube_err(&name, "writing status"))?;
    Ok(())
}

/// Releases a deleted Cluster once the member holds no child of the hub.
async fn finalize(
    ctx: &HubContext,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    member: &Member,
) -> Result<Action, ClusterError> {
    let name = obj.name_any();
    let release = if !member.health.is_ready() {
        member.orphans_unreachable()
    } else {
        match remaining_copies(ctx, member).await {
            Ok(0) => true,
            Ok(n) => {
                tracing::info!(cluster = %name, remaining = n, "waiting for instances to remove their copies");
                false
            }
            Err(error) => {
                tracing::info!(cluster = %name, %error, "cannot count the member's copies yet");
                false
            }
        }
    };
    if !release {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    if !member.health.is_ready() {
        tracing::warn!(cluster = %name, "releasing an unreachable member: its copies are abandoned ({})", super::ORPHAN_UNREACHABLE);
    }
    crate::finalizer::remove(api, obj, CLUSTER_FINALIZER)
        .await
        .map_err(kube_err(&name, "removing finalizer"))?;
    ctx.members.remove(&name);
    ctx.drift.stop_member(&name);
    Ok(Action::await_change())
}

/// How many children of the hub the member still holds, over every kind
/// any RGD ever recorded (not only the RGDs whose controllers run now: a
/// restarted hub may not have started them yet).
async fn remaining_copies(ctx: &HubContext, member: &Member) -> Result<usize, kube::Error> {
    let Some(client) = &member.client else {
        return Ok(0);
    };
    let selector = format!(
        "{CLUSTER_LABEL}={}",
        crate::labels::label_value(&member.name)
    );
    let mut kinds = ctx.instances.member_child_kinds().await;
    let rgds = Api::<DynamicObject>::all_with(
        ctx.client.clone(),
        &crate::rgd_controller::rgd_api_resource(),
    )
    .list_metadata(&ListParams::default())
    .await?;
    for rgd in &rgds.items {
        for gvk in crate::rgd_controller::recorded_child_kinds(rgd.annotations()) {
            if !kinds.contains(&gvk) {
                kinds.push(gvk);
            }
        }
    }
    let mut remaining = 0;
    for gvk in kinds {
        let (ar, _) = match member.discovery.resolve(client, &gvk).await {
            Ok(found) => found,
            // Not served there: nothing of that kind to wait for.
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(kube::Error::Discovery(_)) => continue,
            Err(other) => return Err(other),
        };
        let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
        remaining += api
            .list_metadata(&ListParams::default().labels(&selector))
            .await?
            .items
            .len();
    }
    Ok(remaining)
}

//! `kro-hub cluster add | list | remove`: registering members on a hub the
//! way the Cluster controller expects them (a kubeconfig Secret in the
//! hub's namespace and a `Cluster` naming it).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::config::Kubeconfig;
use kube::{Client, ResourceExt as _};
use serde_json::json;

use super::cluster;
use crate::FIELD_MANAGER;

/// Errors of the cluster commands.
#[derive(Debug, thiserror::Error)]
pub enum ClusterCliError {
    /// The kubeconfig file cannot be read or used.
    #[error("{0}")]
    Kubeconfig(String),
    /// A `--label` is not `key=value`.
    #[error("--label {0:?} must be key=value")]
    Label(String),
    /// The hub's API server failed a request.
    #[error("{action}: {source}")]
    Kube {
        /// What we were doing.
        action: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterCliError {
    let action = action.into();
    move |source| ClusterCliError::Kube { action, source }
}

/// What `cluster add` registers.
#[derive(Debug, Clone)]
pub struct AddRequest<'a> {
    /// The Cluster's name.
    pub name: &'a str,
    /// The member's kubeconfig file.
    pub kubeconfig: &'a Path,
    /// The context to use (default: the file's current context).
    pub context: Option<&'a str>,
    /// `key=value` labels for the Cluster.
    pub labels: &'a [String],
    /// The hub namespace holding the Secret.
    pub namespace: &'a str,
}

/// The kubeconfig reduced to one context, with its cluster and user, as
/// text (JSON, which every kubeconfig reader takes as YAML).
pub fn single_context(text: &str, context: Option<&str>) -> Result<String, ClusterCliError> {
    let mut kc = Kubeconfig::from_yaml(text)
        .map_err(|_| ClusterCliError::Kubeconfig("the kubeconfig does not parse".to_owned()))?;
    let wanted = context
        .map(str::to_owned)
        .or_else(|| kc.current_context.clone())
        .or_else(|| kc.contexts.first().map(|c| c.name.clone()))
        .ok_or_else(|| ClusterCliError::Kubeconfig("the kubeconfig has no context".to_owned()))?;
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == wanted)
        .cloned()
        .ok_or_else(|| {
            ClusterCliError::Kubeconfig(format!("no context {wanted:?} in the kubeconfig"))
        })?;
    let (cluster_name, user_name) = ctx
        .context
        .as_ref()
        .map(|c| (c.cluster.clone(), c.user.clone()))
        .unwrap_or_default();
    kc.contexts = vec![ctx];
    kc.clusters.retain(|c| c.name == cluster_name);
    kc.auth_infos
        .retain(|a| Some(&a.name) == user_name.as_ref());
    kc.current_context = Some(wanted);
    serde_json::to_string_pretty(&kc).map_err(|e| ClusterCliError::Kubeconfig(e.to_string()))
}

fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, ClusterCliError> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(ClusterCliError::Label(l.clone())),
        })
        .collect()
}

/// Creates or updates the member's Secret and Cluster (and the namespace).
pub async fn add(client: &Client, req: &AddRequest<'_>) -> Result<(), ClusterCliError> {
    let text = std::fs::read_to_string(req.kubeconfig).map_err(|e| {
        ClusterCliError::Kubeconfig(format!("reading {}: {e}", req.kubeconfig.display()))
    })?;
    let reduced = single_context(&text, req.context)?;
    // The hub would refuse it anyway; say so now.
    super::kubeconfig::config_from(&reduced, &req.kubeconfig.display().to_string())
        .await
        .map_err(|h| ClusterCliError::Kubeconfig(h.message()))?;
    let labels = parse_labels(req.labels)?;
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            req.namespace,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": req.namespace}})),
        )
        .await
        .map_err(kube_err(format!("creating namespace {}", req.namespace)))?;
    let secret_name = format!("{}-kubeconfig", req.name);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), req.namespace);
    secrets
        .patch(
            &secret_name,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": req.namespace,
                    "labels": {super::CLUSTER_LABEL: req.name}},
                "stringData": {"kubeconfig": reduced}})),
        )
        .await
        .map_err(kube_err(format!(
            "writing Secret {}/{secret_name}",
            req.namespace
        )))?;
    let clusters = Api::<DynamicObject>::all_with(client.clone(), &cluster::api_resource());
    clusters
        .patch(
            req.name,
            &apply,
            &Patch::Apply(json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster",
                "metadata": {"name": req.name, "labels": labels},
                "spec": {"kubeconfigSecretRef": {"namespace": req.namespace, "name": secret_name, "key": "kubeconfig"}}})),
        )
        .await
        .map_err(kube_err(format!("writing Cluster {}", req.name)))?;
    Ok(())
}

/// The members as a table: name, labels, ready, version.
pub async fn list(client: &Client) -> Result<String, ClusterCliError> {
    let clusters = Api::<DynamicObject>::all_with(client.clone(), &cluster::api_resource());
    let items = clusters
        .list(&Default::default())
        .await
        .map_err(kube_err("listing Clusters"))?
        .items;
    let rows: Vec<[String; 4]> = items
        .iter()
        .map(|c| {
            let labels = c
                .labels()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let ready = crate::conditions::read(c.data.get("status"))
                .into_iter()
                .find(|cond| cond.type_ == "Ready")
                .map(|cond| format!("{} ({})", cond.status, cond.reason))
                .unwrap_or_else(|| "Unknown".to_owned());
            let version = c
                .data
                .pointer("/status/kubernetesVersion")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned();
            [c.name_any(), labels, ready, version]
        })
        .collect();
    let header = ["NAME", "LABELS", "READY", "VERSION"].map(str::to_owned);
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String; 4]| {
        format!(
            "{:w0$}   {:w1$}   {:w2$}   {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
        .trim_end()
        .to_owned()
    };
    let mut out = line(&header);
    for r in &rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out.push('\n');
    Ok(out)
}

/// Deletes the Cluster (the hub removes the member's copies first) and,
/// once it is gone, the Secret `cluster add` wrote. Returns whether the
/// Cluster was gone within `wait`.
pub async fn remove(
    client: &Client,
    name: &str,
    namespace: &str,
    wait: Duration,
) -> Result<bool, ClusterCliError> {
    let clusters = Api::<DynamicObject>::all_with(client.clone(), &cluster::api_resource());
    match clusters.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(kube_err(format!("deleting Cluster {name}"))(e)),
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let present = clusters
            .get_opt(name)
            .await
            .map_err(kube_err(format!("reading Cluster {name}")))?
            .is_some();
        if !present {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret_name = format!("{name}-kubeconfig");
    if let Some(secret) = secrets
        .get_opt(&secret_name)
        .await
        .map_err(kube_err(format!(
            "reading Secret {namespace}/{secret_name}"
        )))?
        && secret
            .labels()
            .get(super::CLUSTER_LABEL)
            .map(String::as_str)
            == Some(name)
    {
        match secrets.delete(&secret_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(kube_err(format!(
                    "deleting Secret {namespace}/{secret_name}"
                ))(e));
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_context_is_kept_with_its_cluster_and_user() {
        let text = "apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: 'https://a:6443'}}
- {name: b, cluster: {server: 'https://b:6443'}}
users:
- {name: ua, user: {token: ta}}
- {name: ub, user: {token: tb}}
contexts:
- {name: ca, context: {cluster: a, user: ua}}
- {name: cb, context: {cluster: b, user: ub}}
current-context: ca
";
        let reduced = single_context(text, Some("cb")).unwrap();
        let kc = Kubeconfig::from_yaml(&reduced).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("cb"));
        assert_eq!(kc.clusters.len(), 1);
        assert_eq!(kc.clusters[0].name, "b");
        assert_eq!(kc.auth_infos.len(), 1);
        assert!(
            !reduced.contains("\"ta\""),
            "the other user's token is dropped"
        );
        let err = single_context(text, Some("nope")).unwrap_err();
        assert_eq!(err.to_string(), "no context \"nope\" in the kubeconfig");
        assert!(parse_labels(&["env=prod".to_owned()]).is_ok());
        assert!(parse_labels(&["env".to_owned()]).is_err());
    }
}

//! Numbered revisions of each RGD's graph, kept as `GraphRevision` objects
//! (`hub.kro.run/v1alpha1`, cluster-scoped) on the hub.
//!
//! Every accepted change of what an RGD renders becomes a new revision; the
//! last [`KEPT`] are kept, so that a rollout can render the previous one for
//! the clusters it rolls back, even after a hub restart. Objects rather than
//! the RGD's status: a graph can be large, ten copies in one status would
//! approach the API server's object size limit, and `kubectl get
//! graphrevisions` shows the history.
//!
//! What counts as a change is [`graph_hash`]: the RGD's spec without
//! `placement` and `rollout`, which choose where and how fast a graph goes,
//! not what it renders (pausing a rollout must not start a new one).

use std::collections::BTreeMap;

use kro_core::ResourceGraphDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

use crate::labels;

/// The CRD, the same file GitOps users apply from `deploy/crds/`.
pub const GRAPH_REVISION_CRD_YAML: &str =
    include_str!("../../deploy/crds/graphrevisions.hub.kro.run.yaml");

/// How many revisions of one RGD are kept.
pub const KEPT: usize = 10;

/// The ApiResource of GraphRevisions.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("hub.kro.run", "v1alpha1", "GraphRevision"),
        "graphrevisions",
    )
}

/// A short hex digest of `v` with its keys sorted (see
/// [`kro_core::json::sorted`]), so key order never changes it.
pub fn hash(v: &Value) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(kro_core::json::sorted(v.clone()).to_string().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The hash of what `rgd` renders: its spec without `placement` and
/// `rollout`.
pub fn graph_hash(rgd: &ResourceGraphDefinition) -> String {
    let mut spec = serde_json::to_value(&rgd.spec).unwrap_or(Value::Null);
    if let Some(m) = spec.as_object_mut() {
        m.remove("placement");
        m.remove("rollout");
    }
    hash(&spec)
}

/// The object name of revision `n` of RGD `rgd`: `<rgd>-r<n>`, shortened
/// with a digest when the RGD's name is too long for it.
pub fn object_name(rgd: &str, n: i64) -> String {
    let suffix = format!("-r{n}");
    if rgd.len() + suffix.len() <= 253 {
        return format!("{rgd}{suffix}");
    }
    let digest = hash(&Value::String(rgd.to_owned()));
    format!("{}-{digest}{suffix}", &rgd[..200])
}

/// One stored revision.
#[derive(Debug, Clone)]
pub struct Revision {
    /// Its number.
    pub number: i64,
    /// Its [`graph_hash`].
    pub graph_hash: String,
    /// The RGD's generation when accepted.
    pub generation: Option<i64>,
    /// The object's name.
    pub object: String,
}

fn revision_of(obj: &DynamicObject) -> Option<Revision> {
    let spec = obj.data.get("spec")?;
    Some(Revision {
        number: spec.get("revision")?.as_i64()?,
        graph_hash: spec.get("graphHash")?.as_str()?.to_owned(),
        generation: spec.get("generation").and_then(Value::as_i64),
        object: obj.name_any(),
    })
}

/// The stored revisions of the RGD with uid `rgd_uid`, oldest first.
pub async fn list(client: &Client, rgd_uid: &str) -> Result<Vec<Revision>, kube::Error> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &api_resource());
    let selector = format!("{}={}", labels::RGD_ID, labels::label_value(rgd_uid));
    let mut out: Vec<Revision> = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .iter()
        .filter_map(revision_of)
        .collect();
    out.sort_by_key(|r| r.number);
    Ok(out)
}

/// Records the graph `rgd` (the object `obj`) renders as its newest
/// revision, unless it already is; prunes all but the last [`KEPT`]. Returns
/// the newest revision.
pub async fn record(
    client: &Client,
    obj: &DynamicObject,
    rgd: &ResourceGraphDefinition,
) -> Result<Revision, kube::Error> {
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let name = obj.name_any();
    let hash = graph_hash(rgd);
    let api = Api::<DynamicObject>::all_with(client.clone(), &api_resource());
    // A create that loses a race with another hub replica (409) reads the
    // list again; a third loss is an error, retried by the RGD's requeue.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let existing = list(client, &uid).await?;
        if let Some(latest) = existing.last()
            && latest.graph_hash == hash
        {
            return Ok(latest.clone());
        }
        let number = existing.last().map_or(1, |r| r.number + 1);
        let object = object_name(&name, number);
        let mut labels_map = BTreeMap::new();
        labels_map.insert(labels::RGD_ID.to_owned(), labels::label_value(&uid));
        labels_map.insert(labels::RGD_NAME.to_owned(), labels::label_value(&name));
        let revision: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "hub.kro.run/v1alpha1",
            "kind": "GraphRevision",
            "metadata": {
                "name": object,
                "labels": labels_map,
                // Garbage collection removes the history with its RGD on
                // a real server; the RGD's finalizer does it too.
                "ownerReferences": [{
                    "apiVersion": format!("{}/{}", kro_core::rgd::KRO_GROUP, kro_core::rgd::RGD_VERSION),
                    "kind": kro_core::rgd::RGD_KIND,
                    "name": name,
                    "uid": uid,
                }],
            },
            "spec": {
                "resourceGraphDefinition": name,
                "revision": number,
                "generation": obj.metadata.generation,
                "graphHash": hash,
                "snapshot": serde_json::to_value(&rgd.spec).unwrap_or(Value::Null),
            }
        }))
        .map_err(kube::Error::SerdeError)?;
        match api.create(&PostParams::default(), &revision).await {
            Ok(_) => {
                tracing::info!(rgd = %name, revision = number, "graph revision recorded");
                let recorded = Revision {
                    number,
                    graph_hash: hash.clone(),
                    generation: obj.metadata.generation,
                    object: object.clone(),
                };
                let mut all = existing;
                all.push(recorded.clone());
                prune(&api, &all).await;
                return Ok(recorded);
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 3 => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Deletes all but the newest [`KEPT`] of `all` (oldest first). A failure
/// is logged: the next record tries again.
async fn prune(api: &Api<DynamicObject>, all: &[Revision]) {
    let excess = all.len().saturating_sub(KEPT);
    for old in &all[..excess] {
        if let Err(error) = api.delete(&old.object, &DeleteParams::default()).await {
            tracing::debug!(revision = %old.object, %error, "old graph revision not pruned");
        }
    }
}

/// Deletes every revision of the RGD with uid `rgd_uid` (its finalizer).
pub async fn delete_all(client: &Client, rgd_uid: &str) -> Result<(), kube::Error> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &api_resource());
    for r in list(client, rgd_uid).await? {
        match api.delete(&r.object, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The RGD as accepted at revision `number`, if still kept.
pub async fn load(
    client: &Client,
    rgd_name: &str,
    rgd_uid: &str,
    number: i64,
) -> Result<Option<ResourceGraphDefinition>, kube::Error> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &api_resource());
    let Some(obj) = api.get_opt(&object_name(rgd_name, number)).await? else {
        return Ok(None);
    };
    // Another RGD of the same name (deleted and created again) has its own
    // history.
    if obj.labels().get(labels::RGD_ID) != Some(&labels::label_value(rgd_uid)) {
        return Ok(None);
    }
    let Some(snapshot) = obj.data.get("spec").and_then(|s| s.get("snapshot")) else {
        return Ok(None);
    };
    let rgd = serde_json::from_value::<ResourceGraphDefinition>(json!({
        "metadata": {"name": rgd_name, "uid": rgd_uid},
        "spec": snapshot,
    }));
    Ok(rgd.ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_key_order_placement_and_rollout() {
        let a: ResourceGraphDefinition = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Web", "spec": {"a": "string", "b": "integer"}},
                     "placement": {"clusters": ["x"]}}
        }))
        .expect("rgd");
        let b: ResourceGraphDefinition = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"schema": {"kind": "Web", "apiVersion": "v1alpha1", "spec": {"b": "integer", "a": "string"}},
                     "placement": {"clusters": ["y"]}, "rollout": {"paused": true}}
        }))
        .expect("rgd");
        assert_eq!(graph_hash(&a), graph_hash(&b));
        let c: ResourceGraphDefinition = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Web", "spec": {"a": "string"}}}
        }))
        .expect("rgd");
        assert_ne!(graph_hash(&a), graph_hash(&c));
    }

    #[test]
    fn object_names_stay_valid_for_long_rgd_names() {
        assert_eq!(object_name("web", 3), "web-r3");
        let long = "a".repeat(253);
        let n = object_name(&long, 12);
        assert!(n.len() <= 253, "{}", n.len());
        assert!(n.ends_with("-r12"));
        assert_ne!(object_name(&long, 12), object_name(&"a".repeat(252), 12));
    }
}

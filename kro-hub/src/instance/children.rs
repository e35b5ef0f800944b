//! Reading and writing an instance's children: API discovery (cached), the
//! server-side apply of a rendered object, and the check that lets a
//! converged instance skip writes entirely.

use std::collections::HashMap;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::FIELD_MANAGER;
use crate::lean_object::LeanObject;

/// Annotation holding a hash of what the hub last applied, so a field the
/// template no longer sets is noticed (and removed by the next apply) even
/// though the live object still contains it.
pub const APPLIED_HASH: &str = "hub.kro.run/applied-hash";

/// A cluster the instance's resources are applied to: the hub itself when
/// no member is registered. Everything that touches children goes through
/// one of these, never through the hub's own client implicitly.
#[derive(Clone)]
pub struct ClusterTarget {
    /// Cluster name, bound to `cluster.name` in CEL.
    pub name: String,
    /// The cluster's labels, bound to `cluster.labels`.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The cluster's annotations, bound to `cluster.annotations`.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Client with this cluster's own credentials.
    pub client: Client,
    /// Discovery cache of this cluster.
    pub discovery: std::sync::Arc<Discovery>,
    /// A member cluster (its children carry the cluster and instance-uid
    /// labels), not the hub.
    pub member: bool,
}

impl std::fmt::Debug for ClusterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClusterTarget {
    /// The value of the `cluster` CEL variable.
    pub fn cel_value(&self) -> Value {
        cluster_value(&self.name, &self.labels, &self.annotations)
    }

    /// The ApiResource and scope serving `gvk` on this cluster.
    pub async fn resolve(
        &self,
        gvk: &GroupVersionKind,
    ) -> Result<(ApiResource, ApiCapabilities), kube::Error> {
        self.discovery.resolve(&self.client, gvk).await
    }
}

/// The value of the `cluster` CEL variable for a cluster with this name,
/// labels and annotations.
pub fn cluster_value(
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Value {
    serde_json::json!({"name": name, "labels": labels, "annotations": annotations})
}

/// What discovery found for one kind, filled once.
type Resolved = std::sync::Arc<tokio::sync::OnceCell<(ApiResource, ApiCapabilities)>>;

/// A cache of API discovery per group/version/kind.
#[derive(Debug, Default)]
pub struct Discovery {
    cache: Mutex<HashMap<GroupVersionKind, Resolved>>,
}

impl Discovery {
    /// The ApiResource and scope serving `gvk`. Concurrent callers of a
    /// kind not yet resolved share one discovery request: a hub starting
    /// on a fleet of instances would otherwise send one per pass in flight.
    /// A failure is not kept; the next caller asks again.
    pub async fn resolve(
        &self,
        client: &Client,
        gvk: &GroupVersionKind,
    ) -> Result<(ApiResource, ApiCapabilities), kube::Error> {
        let cell = self
            .cache
            .lock()
            .await
            .entry(gvk.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| kube::discovery::pinned_kind(client, gvk))
            .await
            .cloned()
    }
}

/// The group/version/kind an object declares.
pub fn gvk_of(obj: &Value) -> Option<GroupVersionKind> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    Some(GroupVersionKind::gvk(group, version, kind))
}

/// An API handle for `ar`, scoped to `namespace` when the kind is namespaced.
pub fn api_for<
    K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
>(
    client: &Client,
    ar: &ApiResource,
    caps: &ApiCapabilities,
    namespace: Option<&str>,
) -> Api<K> {
    match (caps.scope == Scope::Namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, ar),
        _ => Api::all_with(client.clone(), ar),
    }
}

/// A `metav1.LabelSelector` as a selector string for list calls.
pub fn label_selector_string(selector: &Value) -> Result<String, String> {
    let mut parts = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            let v = v
                .as_str()
                .ok_or_else(|| format!("matchLabels.{k} must be a string"))?;
            parts.push(format!("{k}={v}"));
        }
    }
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr
            .get("key")
            .and_then(Value::as_str)
            .ok_or("matchExpressions entry without key")?;
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match expr.get("operator").and_then(Value::as_str) {
            Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
            Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
            Some("Exists") => parts.push(key.to_owned()),
            Some("DoesNotExist") => parts.push(format!("!{key}")),
            other => {
                return Err(format!(
                    "matchExpressions operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                ));
            }
        }
    }
    Ok(parts.join(","))
}

/// A stable hash of a rendered object: the first 12 bytes, in hex, of the
/// SHA-256 of its compact JSON (what children's applied-hash annotations
/// hold, so it must never change). The JSON is hashed as it is written,
/// without building the text: this runs for every child on every pass.
pub fn content_hash(obj: &Value) -> String {
    let mut digest = JsonDigest::default();
    digest.feed(obj);
    digest.hex()
}

/// The SHA-256 of values' compact JSON, fed as serde_json writes it.
#[derive(Default)]
pub struct JsonDigest(sha2::Sha256);

impl std::io::Write for JsonDigest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl JsonDigest {
    /// Hashes `value`'s JSON.
    pub fn feed(&mut self, value: &impl serde::Serialize) {
        // Writing into a sink that never fails cannot fail.
        let _ = serde_json::to_writer(&mut *self, value);
    }

    /// The first 12 bytes of the hash, in hex.
    pub fn hex(self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(24);
        for b in sha2::Digest::finalize(self.0).iter().take(12) {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }
}

/// Whether every field of `desired` has the same value in `live`. Lists must
/// have the same length, item by item, because defaulting by the server adds
/// fields inside items but never items.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| is_subset(dv, lv))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_subset(dv, lv))
        }
        (Value::Number(d), Value::Number(l)) => d.as_f64() == l.as_f64(),
        (d, l) => d == l,
    }
}

/// Lets go of a child whose resource has `deletionPolicy: Orphaned`:
/// removes kro's labels and annotations so no instance claims it any more,
/// and leaves the object and its content alone.
pub async fn release(
    api: &Api<DynamicObject>,
    meta: &kube::api::ObjectMeta,
) -> Result<(), kube::Error> {
    let ours = |k: &String| {
        k.starts_with("kro.run/") || k.starts_with("hub.kro.run/") || k == crate::labels::MANAGED_BY
    };
    let labels: serde_json::Map<String, Value> = meta
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| ours(k))
        .map(|(k, _)| (k.clone(), Value::Null))
        .collect();
    let annotations: serde_json::Map<String, Value> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| ours(k))
        .map(|(k, _)| (k.clone(), Value::Null))
        .collect();
    let name = meta.name.clone().unwrap_or_default();
    let patch = serde_json::json!({"metadata": {"labels": labels, "annotations": annotations}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Applies `desired` with server-side apply (forced, one field manager, like
/// upstream) and returns what the server stored.
pub async fn apply(
    api: &Api<LeanObject>,
    name: &str,
    desired: &Value,
) -> Result<LeanObject, kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(desired)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_content_hash_is_the_sha256_of_the_compact_json() {
        // Children carry it in their applied-hash annotation: a different
        // value for the same object would re-apply every child of a fleet.
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
            "data": {"k": "v"}});
        // `printf '%s' '<the compact JSON>' | sha256sum`, first 24 digits.
        assert_eq!(content_hash(&obj), "970c7a3b7049f2d53d523ef4");
    }

    #[test]
    fn subset_ignores_server_added_fields_but_not_changed_ones() {
        let desired = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let live = json!({"spec": {"replicas": 3, "strategy": {}, "template": {"spec": {"containers": [
            {"name": "a", "image": "x", "imagePullPolicy": "Always"}
        ]}}}, "status": {}});
        assert!(is_subset(&desired, &live));
        let drifted = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        assert!(!is_subset(&desired, &drifted));
        let extra_item = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b"}
        ]}}}});
        assert!(!is_subset(&desired, &extra_item));
    }

    #[test]
    fn label_selectors_become_selector_strings() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "legacy", "operator": "DoesNotExist"}
        ]});
        assert_eq!(
            label_selector_string(&sel).unwrap(),
            "app=web,tier in (a,b),!legacy"
        );
        let bad = json!({"matchExpressions": [{"key": "x", "operator": "Near"}]});
        assert!(label_selector_string(&bad).unwrap_err().contains("Near"));
    }

    #[test]
    fn integers_and_floats_of_equal_value_match() {
        assert!(is_subset(&json!({"a": 1}), &json!({"a": 1.0})));
    }

    #[test]
    fn gvk_of_core_and_grouped_kinds() {
        let core = gvk_of(&json!({"apiVersion": "v1", "kind": "Service"})).unwrap();
        assert_eq!((core.group.as_str(), core.version.as_str()), ("", "v1"));
        let apps = gvk_of(&json!({"apiVersion": "apps/v1", "kind": "Deployment"})).unwrap();
        assert_eq!(
            (apps.group.as_str(), apps.kind.as_str()),
            ("apps", "Deployment")
        );
        assert!(gvk_of(&json!({"kind": "X"})).is_none());
    }
}

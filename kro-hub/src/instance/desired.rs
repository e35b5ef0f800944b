//! What the hub applies for one rendered object: the object with kro's
//! labels, the applied-hash annotation and its namespace filled in. Pure,
//! so the reconcile and `kro-hub diff` apply (or show) the very same
//! object.

use serde_json::{Value, json};

use super::children::{APPLIED_HASH, content_hash};
use crate::labels::{self, InstanceIdentity};

/// The namespace a rendered object goes to when its kind is namespaced:
/// its own, else the instance's, else `default`.
pub(crate) fn target_namespace(obj: &Value, instance_namespace: Option<&str>) -> String {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .or(instance_namespace)
        .unwrap_or("default")
        .to_owned()
}

/// Why `node`'s `rendered` objects may not be touched for an instance in
/// namespace `own`: their namespace is computed from the instance
/// (`chosen_by_instance`), it is another one, and nothing allows the hub
/// to act there for it (`allowed`: the hub trusts instance creators, or
/// acts on the hub as the RGD's service account). The hub's passes and
/// `kro-hub diff` both ask here.
pub(crate) fn foreign_namespace(
    node: &kro_core::ResourceNode,
    rendered: &[Value],
    own: Option<&str>,
    chosen_by_instance: bool,
    allowed: bool,
) -> Option<String> {
    let own = own?;
    if allowed || !chosen_by_instance {
        return None;
    }
    let foreign = rendered.iter().find_map(|obj| {
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty() && *ns != own)
    })?;
    Some(format!(
        "resource {} would be {} in namespace {foreign}, not in this instance's namespace \
         {own}: {}",
        node.id(),
        if node.is_external() {
            "read"
        } else {
            "written"
        },
        kro_core::namespaces::HOW_TO_ALLOW
    ))
}

/// Where a child is applied, as far as its labels are concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement<'a> {
    /// Position in a forEach collection, for collection resources.
    pub collection_index: Option<usize>,
    /// The member's name; `None` on the hub.
    pub member: Option<&'a str>,
    /// The namespace the object is applied in, when its kind is namespaced.
    pub namespace: Option<&'a str>,
}

/// `desired` as the hub applies it for resource `node_id` of the instance:
/// with its node labels (plus the member's cluster and instance-uid labels
/// on a member), the hash of the rendered content, and its namespace.
pub(crate) fn labelled(
    mut desired: Value,
    identity: &InstanceIdentity,
    node_id: &str,
    at: Placement<'_>,
) -> Result<Value, String> {
    let mut node_labels = identity.node_labels(node_id);
    if let Some(index) = at.collection_index {
        node_labels.insert(labels::COLLECTION_INDEX.to_owned(), index.to_string());
    }
    if let Some(member) = at.member {
        node_labels.insert(
            crate::members::CLUSTER_LABEL.to_owned(),
            labels::label_value(member),
        );
        node_labels.insert(
            crate::members::INSTANCE_UID_LABEL.to_owned(),
            labels::label_value(&identity.uid),
        );
    }
    // The hash is of the rendered content alone, before kro's metadata.
    let hash = content_hash(&desired);
    let meta = desired
        .as_object_mut()
        .ok_or("rendered object is not a JSON object")?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Err("metadata of the rendered object is not an object".to_owned());
    };
    let labels_entry = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(map) = labels_entry.as_object_mut() {
        for (k, v) in node_labels {
            map.insert(k, Value::String(v));
        }
    }
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(map) = annotations.as_object_mut() {
        map.insert(APPLIED_HASH.to_owned(), Value::String(hash));
    }
    if let Some(ns) = at.namespace
        && !meta.contains_key("namespace")
    {
        meta.insert("namespace".to_owned(), Value::String(ns.to_owned()));
    }
    Ok(desired)
}

/// A selector for the instance's children on one cluster: on a member,
/// only the copies made for that member (two Clusters may name the same
/// API server).
pub(crate) fn children_selector(identity: &InstanceIdentity, member: Option<&str>) -> String {
    match member {
        Some(member) => format!(
            "{},{}={}",
            identity.children_selector(),
            crate::members::CLUSTER_LABEL,
            labels::label_value(member)
        ),
        None => identity.children_selector(),
    }
}

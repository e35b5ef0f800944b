//! The labels kro puts on instances and their children. They are how the
//! hub finds, adopts and cleans up what it created, so the keys follow
//! upstream kro exactly; values longer than a label allows are hashed the
//! same way upstream does, so both can recognise each other's children.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Prefix of kro's own labels.
pub const PREFIX: &str = "kro.run/";
/// Marks an object as created by kro.
pub const OWNED: &str = "kro.run/owned";
/// Version of the controller that created the object.
pub const KRO_VERSION: &str = "kro.run/kro-version";
/// Standard managed-by label.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`]: upstream's, so kro tooling recognises the children.
pub const MANAGED_BY_VALUE: &str = "kro";
/// UID of the instance a child belongs to.
pub const INSTANCE_ID: &str = "kro.run/instance-id";
/// Name of the instance a child belongs to.
pub const INSTANCE_NAME: &str = "kro.run/instance-name";
/// Namespace of the instance a child belongs to (namespaced kinds only).
pub const INSTANCE_NAMESPACE: &str = "kro.run/instance-namespace";
/// Group of the instance's kind.
pub const INSTANCE_GROUP: &str = "kro.run/instance-group";
/// Version of the instance's kind.
pub const INSTANCE_VERSION: &str = "kro.run/instance-version";
/// Kind of the instance.
pub const INSTANCE_KIND: &str = "kro.run/instance-kind";
/// UID of the RGD.
pub const RGD_ID: &str = "kro.run/resource-graph-definition-id";
/// Name of the RGD.
pub const RGD_NAME: &str = "kro.run/resource-graph-definition-name";
/// Resource id inside the RGD.
pub const NODE_ID: &str = "kro.run/node-id";
/// Upstream's newer keys naming the instance that manages a child; both
/// generations of keys are written so either kind of tooling finds them.
pub const MANAGED_BY_INSTANCE_NAME: &str = "kro.run/managed-by-instance-name";
/// Namespace of the managing instance (newer key).
pub const MANAGED_BY_INSTANCE_NAMESPACE: &str = "kro.run/managed-by-instance-namespace";
/// Kind of the managing instance (newer key).
pub const MANAGED_BY_INSTANCE_KIND: &str = "kro.run/managed-by-instance-kind";
/// Version of the managing instance's kind (newer key).
pub const MANAGED_BY_INSTANCE_VERSION: &str = "kro.run/managed-by-instance-version";
/// Group of the managing instance's kind (newer key).
pub const MANAGED_BY_INSTANCE_GROUP: &str = "kro.run/managed-by-instance-group";
/// The RGD whose template defined a child (newer key).
pub const DEFINED_BY_RGD: &str = "kro.run/defined-by-rgd";
/// The RGD whose controller reconciles an instance. A separate key from
/// the child labels, so an instance that is itself the child of another
/// RGD is not fought over by two controllers.
pub const RECONCILED_BY_RGD: &str = "kro.run/reconciled-by-rgd";
/// Position of a child in a forEach collection.
pub const COLLECTION_INDEX: &str = "kro.run/collection-index";
/// Size of the forEach collection a child belongs to.
pub const COLLECTION_SIZE: &str = "kro.run/collection-size";

const MAX_LABEL_VALUE: usize = 63;

/// `v` itself when it fits in a label value, else `h-` and 40 hex digits of
/// its SHA-256: stable, and still a valid label value.
pub fn label_value(v: &str) -> String {
    if v.len() <= MAX_LABEL_VALUE {
        return v.to_owned();
    }
    let digest = Sha256::digest(v.as_bytes());
    let mut out = String::from("h-");
    for byte in digest.iter().take(20) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Who an instance is: enough to label its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceIdentity {
    /// RGD name.
    pub rgd_name: String,
    /// RGD uid.
    pub rgd_uid: String,
    /// Instance group.
    pub group: String,
    /// Instance version.
    pub version: String,
    /// Instance kind.
    pub kind: String,
    /// Instance name.
    pub name: String,
    /// Instance namespace; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// Instance uid.
    pub uid: String,
}

impl InstanceIdentity {
    /// Labels shared by every child of this instance.
    pub fn child_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            labels.insert(k.to_owned(), label_value(v));
        };
        put(OWNED, "true");
        put(KRO_VERSION, env!("CARGO_PKG_VERSION"));
        put(MANAGED_BY, MANAGED_BY_VALUE);
        put(INSTANCE_ID, &self.uid);
        put(INSTANCE_NAME, &self.name);
        if let Some(ns) = &self.namespace {
            put(INSTANCE_NAMESPACE, ns);
        }
        put(INSTANCE_GROUP, &self.group);
        put(INSTANCE_VERSION, &self.version);
        put(INSTANCE_KIND, &self.kind);
        put(RGD_ID, &self.rgd_uid);
        put(RGD_NAME, &self.rgd_name);
        put(MANAGED_BY_INSTANCE_NAME, &self.name);
        if let Some(ns) = &self.namespace {
            put(MANAGED_BY_INSTANCE_NAMESPACE, ns);
        }
        put(MANAGED_BY_INSTANCE_KIND, &self.kind);
        put(MANAGED_BY_INSTANCE_VERSION, &self.version);
        put(MANAGED_BY_INSTANCE_GROUP, &self.group);
        put(DEFINED_BY_RGD, &self.rgd_name);
        labels
    }

    /// Labels of the child created for resource `node_id`.
    pub fn node_labels(&self, node_id: &str) -> BTreeMap<String, String> {
        let mut labels = self.child_labels();
        labels.insert(NODE_ID.to_owned(), label_value(node_id));
        labels
    }

    /// A label selector matching every child of this instance.
    pub fn children_selector(&self) -> String {
        format!("{INSTANCE_ID}={}", label_value(&self.uid))
    }
}

/// Selector for every child of every instance of one RGD.
pub fn rgd_children_selector(rgd_name: &str) -> String {
    format!("{OWNED}=true,{RGD_NAME}={}", label_value(rgd_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> InstanceIdentity {
        InstanceIdentity {
            rgd_name: "web".into(),
            rgd_uid: "r-1".into(),
            group: "kro.run".into(),
            version: "v1alpha1".into(),
            kind: "Application".into(),
            name: "app1".into(),
            namespace: Some("default".into()),
            uid: "i-1".into(),
        }
    }

    #[test]
    fn short_values_are_kept_and_long_ones_hashed_to_a_valid_label() {
        assert_eq!(label_value("web-app"), "web-app");
        let long = "x".repeat(64);
        let hashed = label_value(&long);
        assert_eq!(hashed.len(), 42);
        assert!(hashed.starts_with("h-"));
        assert_eq!(hashed, label_value(&long), "hashing is stable");
        assert_ne!(hashed, label_value(&"y".repeat(64)));
    }

    #[test]
    fn node_labels_name_instance_rgd_and_resource() {
        let labels = identity().node_labels("deployment");
        assert_eq!(labels[OWNED], "true");
        assert_eq!(labels[INSTANCE_NAME], "app1");
        assert_eq!(labels[INSTANCE_NAMESPACE], "default");
        assert_eq!(labels[RGD_NAME], "web");
        assert_eq!(labels[NODE_ID], "deployment");
        assert_eq!(labels[MANAGED_BY], "kro");
        assert_eq!(labels[MANAGED_BY_INSTANCE_NAME], "app1");
        assert_eq!(labels[MANAGED_BY_INSTANCE_KIND], "Application");
        assert_eq!(labels[DEFINED_BY_RGD], "web");
    }

    #[test]
    fn cluster_scoped_instances_have_no_namespace_label() {
        let mut id = identity();
        id.namespace = None;
        assert!(!id.child_labels().contains_key(INSTANCE_NAMESPACE));
        assert_eq!(id.children_selector(), "kro.run/instance-id=i-1");
    }
}

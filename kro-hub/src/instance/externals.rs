//! Which instances read which external objects, so a change to an
//! external object re-queues exactly the instances that reference it
//! (externalRefs are watched, never owned).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kube::runtime::reflector::ObjectRef;

use crate::lean_object::LeanObject;

/// What an instance reads: a kind, a namespace (`None`: every namespace)
/// and a name (`None`: a selector, so any object of the kind there).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalKey {
    /// `group/version/Kind`.
    pub kind: String,
    /// Namespace, when the reference is limited to one.
    pub namespace: Option<String>,
    /// Name, for a single-object reference.
    pub name: Option<String>,
}

/// The index from external objects to the instances reading them.
#[derive(Debug, Default)]
pub struct ExternalIndex {
    readers: Mutex<HashMap<ExternalKey, HashSet<ObjectRef<LeanObject>>>>,
}

impl ExternalIndex {
    /// Records that `instance` reads `key`.
    pub fn record(&self, key: ExternalKey, instance: ObjectRef<LeanObject>) {
        if let Ok(mut map) = self.readers.lock() {
            map.entry(key).or_default().insert(instance);
        }
    }

    /// The instances to re-queue when the object `kind namespace/name`
    /// changes. A cluster-scoped object (no namespace) matches a reference
    /// by name whatever namespace the reference defaulted to.
    pub fn readers_of(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Vec<ObjectRef<LeanObject>> {
        let Ok(map) = self.readers.lock() else {
            return Vec::new();
        };
        let mut out: Vec<ObjectRef<LeanObject>> = Vec::new();
        for (key, readers) in map.iter() {
            let matches = key.kind == kind
                && key.name.as_deref().is_none_or(|n| n == name)
                && (namespace.is_none()
                    || key.namespace.is_none()
                    || key.namespace.as_deref() == namespace);
            if !matches {
                continue;
            }
            for r in readers {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;

    fn instance(name: &str) -> ObjectRef<LeanObject> {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("kro.run", "v1alpha1", "App"));
        ObjectRef::new_with(name, ar).within("default")
    }

    #[test]
    fn named_and_selector_readers_are_found() {
        let index = ExternalIndex::default();
        index.record(
            ExternalKey {
                kind: "v1/ConfigMap".into(),
                namespace: Some("default".into()),
                name: Some("shared".into()),
            },
            instance("a"),
        );
        index.record(
            ExternalKey {
                kind: "v1/ConfigMap".into(),
                namespace: None,
                name: None,
            },
            instance("b"),
        );
        let readers = index.readers_of("v1/ConfigMap", Some("default"), "shared");
        assert_eq!(readers.len(), 2);
        let others = index.readers_of("v1/ConfigMap", Some("default"), "other");
        assert_eq!(others, vec![instance("b")]);
        assert!(
            index
                .readers_of("v1/Secret", Some("default"), "shared")
                .is_empty()
        );
    }
}

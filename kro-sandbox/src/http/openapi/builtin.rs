//! The real server's OpenAPI v3 documents for the built-in group versions.
//!
//! They are the documents a kube-apiserver v1.32 published, recorded and embedded
//! compressed (about 370 KB for 4 MB of JSON): built-in schemas are large, stable and
//! carry the descriptions `kubectl explain` prints, so serving the recorded text is exact
//! where rebuilding it from Rust types would only approximate it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

use flate2::read::GzDecoder;
use serde_json::{Map, Value};

use super::Document;

/// (group, version, gzip-compressed document).
const DOCS: &[(&str, &str, &[u8])] = &[
    (
        "",
        "v1",
        include_bytes!("../../../openapi/v3/api_v1.json.gz"),
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        include_bytes!("../../../openapi/v3/apis_apiextensions.k8s.io_v1.json.gz"),
    ),
    (
        "apps",
        "v1",
        include_bytes!("../../../openapi/v3/apis_apps_v1.json.gz"),
    ),
    (
        "autoscaling",
        "v2",
        include_bytes!("../../../openapi/v3/apis_autoscaling_v2.json.gz"),
    ),
    (
        "batch",
        "v1",
        include_bytes!("../../../openapi/v3/apis_batch_v1.json.gz"),
    ),
    (
        "coordination.k8s.io",
        "v1",
        include_bytes!("../../../openapi/v3/apis_coordination.k8s.io_v1.json.gz"),
    ),
    (
        "events.k8s.io",
        "v1",
        include_bytes!("../../../openapi/v3/apis_events.k8s.io_v1.json.gz"),
    ),
    (
        "networking.k8s.io",
        "v1",
        include_bytes!("../../../openapi/v3/apis_networking.k8s.io_v1.json.gz"),
    ),
    (
        "policy",
        "v1",
        include_bytes!("../../../openapi/v3/apis_policy_v1.json.gz"),
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        include_bytes!("../../../openapi/v3/apis_rbac.authorization.k8s.io_v1.json.gz"),
    ),
];

type Cache = Mutex<HashMap<(&'static str, &'static str), Arc<Document>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

fn unpack(gz: &[u8]) -> Option<String> {
    let mut text = String::new();
    match GzDecoder::new(gz).read_to_string(&mut text) {
        Ok(_) => Some(text),
        Err(e) => {
            tracing::error!(error = %e, "embedded OpenAPI document unreadable");
            None
        }
    }
}

/// The recorded document of a built-in group version, unpacked once.
pub fn document(group: &str, version: &str) -> Option<Arc<Document>> {
    let (g, v, gz) = DOCS.iter().find(|(g, v, _)| *g == group && *v == version)?;
    let mut cache = cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(doc) = cache.get(&(*g, *v)) {
        return Some(doc.clone());
    }
    let doc = Arc::new(Document::new(unpack(gz)?));
    cache.insert((*g, *v), doc.clone());
    Some(doc)
}

/// Schemas every custom resource document refers to (object and list metadata, `Status`,
/// `DeleteOptions`, `Patch`, `WatchEvent`, `Scale`, ...), as the built-in documents have
/// them.
pub fn shared_schemas() -> &'static Map<String, Value> {
    static SHARED: OnceLock<Map<String, Value>> = OnceLock::new();
    SHARED.get_or_init(|| {
        let mut all = Map::new();
        // apiextensions has the meta schemas; apps adds autoscaling's Scale.
        for (g, v) in [("apiextensions.k8s.io", "v1"), ("apps", "v1")] {
            let Some(doc) = document(g, v) else { continue };
            let Ok(parsed) = serde_json::from_str::<Value>(&doc.text) else {
                continue;
            };
            if let Some(Value::Object(s)) = parsed.pointer("/components/schemas") {
                for (k, v) in s {
                    if k.starts_with("io.k8s.apimachinery.")
                        || k.starts_with("io.k8s.api.autoscaling.")
                    {
                        all.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        all
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_document_unpacks_with_its_kinds() {
        for (g, v, _) in DOCS {
            let doc = document(g, v).expect("embedded document");
            let parsed: Value = serde_json::from_str(&doc.text).expect("JSON");
            assert!(parsed.pointer("/components/schemas").is_some(), "{g}/{v}");
            assert_eq!(doc.hash.len(), 128, "sha512 in hex");
        }
        let core: Value = serde_json::from_str(&document("", "v1").unwrap().text).unwrap();
        assert!(
            core.pointer("/components/schemas/io.k8s.api.core.v1.ConfigMap/properties/data")
                .is_some()
        );
        assert!(shared_schemas().contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(shared_schemas().contains_key("io.k8s.api.autoscaling.v1.Scale"));
    }
}

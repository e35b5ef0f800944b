//! `/openapi/v3`: the index of group versions and one document per group version; and
//! `/openapi/v2`, the Swagger 2.0 document converted from them ([`v2`]).
//!
//! Built-in group versions serve the real server's recorded documents ([`builtin`]), so
//! `kubectl explain` and clients reading a kind's schema get its fields and descriptions;
//! custom resources get documents built from their CRDs ([`crd`]). The index names each
//! document with the hash of its text, as the real server does, so a client caching by
//! hash sees a CRD change as a new document. Group versions with neither (the review
//! kinds, storage) get a skeleton naming their kinds and operations.

mod builtin;
mod crd;
mod v2;

use std::sync::Arc;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use super::{raw_json_response, text_response};
use crate::catalog::ResourceDef;
use crate::state::Shared;

pub use crd::schema_name;

/// One served document and the hash the index names it by.
#[derive(Debug)]
pub struct Document {
    /// The JSON text.
    pub text: String,
    /// Upper-case hex SHA-512 of the text (the real server's ETag).
    pub hash: String,
}

impl Document {
    /// A document and its hash.
    pub fn new(text: String) -> Self {
        let hash = Sha512::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        Self { text, hash }
    }
}

/// The document of one group version, if it is served.
pub fn document(sh: &Shared, group: &str, version: &str) -> Option<Arc<Document>> {
    let defs = sh.catalog().resources(group, version);
    if defs.is_empty() {
        return None;
    }
    let custom: Vec<Arc<ResourceDef>> = defs
        .iter()
        .filter(|d| d.custom.is_some())
        .cloned()
        .collect();
    if !custom.is_empty() {
        let doc = crd::document(&custom);
        return Some(Arc::new(Document::new(
            serde_json::to_string(&doc).unwrap_or_default(),
        )));
    }
    if let Some(doc) = builtin::document(group, version) {
        return Some(doc);
    }
    Some(Arc::new(Document::new(
        serde_json::to_string(&skeleton(&defs, group, version)).unwrap_or_default(),
    )))
}

/// `/openapi/v2`, `/openapi/v3` (the index) and `/openapi/v3/{api/v1, apis/g/v}`.
pub fn serve(sh: &Shared, rest: &str, accept: Option<&str>) -> Response {
    let rest = rest.trim_matches('/');
    if rest == "v2" {
        // The protobuf form (gnostic's OpenAPI v2 message) is not produced: a client asking
        // only for it gets the real handler's 406, one taking JSON the document.
        if !v2::accepts_json(accept) {
            return text_response(406, "406 Not Acceptable");
        }
        let doc = Document::new(v2::document_v2(sh).to_string());
        let mut r = raw_json_response(200, doc.text, &[]);
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
            r.headers_mut().insert(header::ETAG, etag);
        }
        return r;
    }
    if rest == "v3" {
        return raw_json_response(200, index(sh).to_string(), &[]);
    }
    let Some(gv) = rest.strip_prefix("v3/") else {
        return text_response(404, "404 page not found");
    };
    let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), (*v).to_owned()),
        ["apis", g, v] => ((*g).to_owned(), (*v).to_owned()),
        _ => return text_response(404, "404 page not found"),
    };
    let Some(doc) = document(sh, &group, &version) else {
        return text_response(404, "404 page not found");
    };
    let mut r = raw_json_response(200, doc.text.clone(), &[]);
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
        r.headers_mut().insert(header::ETAG, etag);
    }
    r
}

fn index(sh: &Shared) -> Value {
    let mut gvs: Vec<(String, String)> = sh
        .catalog()
        .all()
        .map(|d| (d.group.clone(), d.version.clone()))
        .collect();
    gvs.sort();
    gvs.dedup();
    let mut paths = serde_json::Map::new();
    for (g, v) in gvs {
        let key = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        let Some(doc) = document(sh, &g, &v) else {
            continue;
        };
        let url = format!("/openapi/v3/{key}?hash={}", doc.hash);
        paths.insert(key, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// A document naming the kinds and their operations with permissive schemas, for group
/// versions without a recorded document. The PATCH operation lists `fieldValidation`, so
/// kubectl leaves validation to the server.
fn skeleton(defs: &[Arc<ResourceDef>], group: &str, version: &str) -> Value {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for d in defs {
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let schema_name = format!(
            "{}.{}.{}",
            if d.group.is_empty() { "core" } else { &d.group },
            d.version,
            d.kind
        );
        let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let op = |action: &str| {
            json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}}}})
        };
        let item = if d.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
        } else {
            format!("{prefix}/{}/{{name}}", d.plural)
        };
        paths.insert(
            item,
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
        schemas.insert(
            schema_name,
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-group-version-kind": [gvk]}),
        );
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.6"},
        "paths": paths, "components": {"schemas": schemas}})
}

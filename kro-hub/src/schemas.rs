//! The schemas of the kinds an RGD uses, read from the cluster it applies
//! to, so the graph is type-checked against what that cluster serves (as
//! upstream kro does) instead of leaving every reference dynamic.
//!
//! Where a schema comes from, for each `(apiVersion, kind)`:
//! - discovery (`/api/v1`, `/apis/<group>/<version>`) says whether the
//!   cluster serves the kind at all; a kind it does not serve is reported,
//!   and the RGD waits for it (a CRD installed later);
//! - a kind served by a CRD: that CRD's `openAPIV3Schema` for the version,
//!   which is what the server publishes for it under `/openapi/v3`; cached by
//!   CRD name and re-read when the CRD's generation changes;
//! - any other kind: the server's `/openapi/v3` document of the group
//!   version, cached with the hash the `/openapi/v3` index gives for it, so
//!   it is fetched again only when the server says it changed.
//!
//! A schemaless kind (`x-kubernetes-preserve-unknown-fields` and no
//! properties) stays dynamic. A built-in kind published without a schema
//! (some test servers publish placeholders) is checked against kro-core's
//! copy of the built-in schemas instead, as the offline check does.
//!
//! One cache serves one cluster. Multi-cluster placement resolves each
//! member with its own cache through [`SchemaCache::resolve_on`], naming the
//! member in what it reports.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kro_core::ResourceGraphDefinition;
use kube::Client;
use kube::api::Api;
use serde_json::Value;
use tokio::sync::Mutex;

/// `(apiVersion, kind)`.
pub type KindKey = (String, String);

/// The static kinds an RGD's resources use, each with the first resource id
/// using it (for messages).
pub fn rgd_kinds(rgd: &ResourceGraphDefinition) -> BTreeMap<KindKey, String> {
    kinds_where(rgd, |_| true)
}

/// The kinds of the resources the hub applies to its own cluster: all of
/// them for an RGD without placement, else those with `target: Hub`.
pub fn hub_kinds(rgd: &ResourceGraphDefinition) -> BTreeMap<KindKey, String> {
    let placed = rgd.spec.placement.is_some();
    kinds_where(rgd, |r| {
        !placed || r.target == Some(kro_core::rgd::ResourceTarget::Hub)
    })
}

/// The kinds of the resources placed on member clusters, for the member
/// clusters' resolution (each with its own [`SchemaCache`], through
/// [`SchemaCache::resolve_on`] with [`Target::Member`]). Until then they
/// are checked against the built-in kinds where known, and dynamic else.
pub fn member_kinds(rgd: &ResourceGraphDefinition) -> BTreeMap<KindKey, String> {
    if rgd.spec.placement.is_none() {
        return BTreeMap::new();
    }
    kinds_where(rgd, |r| {
        r.target != Some(kro_core::rgd::ResourceTarget::Hub)
    })
}

fn kinds_where(
    rgd: &ResourceGraphDefinition,
    keep: impl Fn(&kro_core::rgd::Resource) -> bool,
) -> BTreeMap<KindKey, String> {
    let mut out = BTreeMap::new();
    for r in rgd.spec.resources.iter().filter(|r| keep(r)) {
        let key = match (&r.template, &r.external_ref) {
            (Some(t), _) => {
                let get = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_owned);
                match (get("apiVersion"), get("kind")) {
                    (Some(a), Some(k)) if !a.contains("${") && !k.contains("${") => (a, k),
                    _ => continue,
                }
            }
            (None, Some(e)) => (e.api_version.clone(), e.kind.clone()),
            (None, None) => continue,
        };
        out.entry(key).or_insert_with(|| r.id.clone());
    }
    out
}

/// Which cluster a resolution is for, as messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The hub's own cluster.
    Hub,
    /// A member cluster, by name.
    Member(&'a str),
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Hub => f.write_str("the cluster"),
            Target::Member(name) => write!(f, "member cluster \"{name}\""),
        }
    }
}

/// A kind the cluster does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingKind {
    /// The first resource id using it.
    pub resource: String,
    /// Its apiVersion.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// The cluster, as messages name it (`the cluster`, `member cluster "x"`).
    pub target: String,
}

impl std::fmt::Display for MissingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "resource \"{}\" uses kind {} {}, which {} does not serve (is its CRD installed?)",
            self.resource, self.kind, self.api_version, self.target
        )
    }
}

/// What resolution found.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Schemas by `(apiVersion, kind)`, for `CompileOptions::resource_schemas`.
    pub schemas: BTreeMap<KindKey, Value>,
    /// Kinds the cluster does not serve.
    pub missing: Vec<MissingKind>,
    /// Whether any kind is served by a CRD (whose schema may change later).
    pub uses_crds: bool,
}

impl Resolved {
    /// Compile options checking against these schemas; built-in kinds the
    /// cluster publishes without a schema use kro-core's copy.
    pub fn compile_options(&self, trust_instance_namespaces: bool) -> kro_core::CompileOptions {
        kro_core::CompileOptions {
            resource_schemas: self.schemas.clone(),
            builtin_kinds: true,
            trust_instance_namespaces,
        }
    }
}

/// Errors talking to the API server (not a missing kind: that is a result).
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A request failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was asked.
        what: String,
        /// Why it failed.
        #[source]
        source: kube::Error,
    },
    /// A document could not be read.
    #[error("{url}: not an OpenAPI document: {message}")]
    Document {
        /// Which one.
        url: String,
        /// What the parser said.
        message: String,
    },
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> SchemaError {
    let what = what.into();
    move |source| SchemaError::Kube { what, source }
}

#[derive(Debug, Default)]
struct OpenApiEntry {
    /// The hash the index gave when the document was read.
    hash: String,
    /// Pruned schemas of the kinds asked for so far (`None`: not in the
    /// document).
    kinds: BTreeMap<String, Option<Value>>,
}

#[derive(Debug)]
struct CrdEntry {
    generation: Option<i64>,
    kinds: BTreeMap<KindKey, Value>,
}

/// Schemas of one cluster, cached.
#[derive(Debug, Default)]
pub struct SchemaCache {
    /// By group-version path (`api/v1`, `apis/apps/v1`).
    openapi: Mutex<HashMap<String, OpenApiEntry>>,
    /// By CRD name.
    crds: Mutex<HashMap<String, CrdEntry>>,
}

fn is_404(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether a schema declares no structure (so the kind is dynamic).
fn is_schemaless(schema: &Value) -> bool {
    schema.get("properties").is_none()
}

fn gv_path(api_version: &str) -> String {
    match api_version.split_once('/') {
        Some((group, version)) => format!("apis/{group}/{version}"),
        None => format!("api/{api_version}"),
    }
}

impl SchemaCache {
    /// Resolves `kinds` (from [`rgd_kinds`]) on the hub's cluster.
    pub async fn resolve(
        &self,
        client: &Client,
        kinds: &BTreeMap<KindKey, String>,
    ) -> Result<Resolved, SchemaError> {
        self.resolve_on(client, kinds, Target::Hub).await
    }

    /// Resolves `kinds` on the cluster behind `client`, named `target` in
    /// what is reported missing.
    pub async fn resolve_on(
        &self,
        client: &Client,
        kinds: &BTreeMap<KindKey, String>,
        target: Target<'_>,
    ) -> Result<Resolved, SchemaError> {
        let mut out = Resolved::default();
        let mut discovered: HashMap<String, Option<Vec<(String, String)>>> = HashMap::new();
        let mut index: Option<HashMap<String, String>> = None;
        for ((api_version, kind), resource) in kinds {
            if !discovered.contains_key(api_version) {
                let served = served_kinds(client, api_version).await?;
                discovered.insert(api_version.clone(), served);
            }
            let plural = discovered
                .get(api_version)
                .and_then(Option::as_ref)
                .and_then(|served| served.iter().find(|(k, _)| k == kind))
                .map(|(_, plural)| plural.clone());
            let Some(plural) = plural else {
                out.missing.push(MissingKind {
                    resource: resource.clone(),
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    target: target.to_string(),
                });
                continue;
            };
            let key = (api_version.clone(), kind.clone());
            // A built-in kind is never a CRD: no lookup (one per check would
            // be a request per kind on every RGD resync).
            let builtin = kro_core::CompileOptions::builtin_kind_names()
                .any(|(a, k)| a == api_version && k == kind);
            if let Some((group, _)) = api_version.split_once('/').filter(|_| !builtin) {
                let crd_name = format!("{plural}.{group}");
                if let Some(kinds) = self.crd_kinds(client, &crd_name).await? {
                    out.uses_crds = true;
                    match kinds.get(&key) {
                        Some(schema) => {
                            out.schemas.insert(key, schema.clone());
                        }
                        // Discovery and the CRD disagree only briefly, while
                        // a version is added or removed.
                        None => out.missing.push(MissingKind {
                            resource: resource.clone(),
                            api_version: api_version.clone(),
                            kind: kind.clone(),
                            target: target.to_string(),
                        }),
                    }
                    continue;
                }
            }
            if index.is_none() {
                index = Some(openapi_index(client).await?);
            }
            let hash = index
                .as_ref()
                .and_then(|i| i.get(&gv_path(api_version)))
                .cloned();
            // A group version the index lacks (an aggregated API without
            // OpenAPI) leaves the kind dynamic.
            let Some(url) = hash else { continue };
            if let Some(schema) = self.openapi_kind(client, api_version, kind, &url).await?
                && !is_schemaless(&schema)
            {
                out.schemas.insert(key, schema);
            }
        }
        Ok(out)
    }

    /// The kinds (per version) of CRD `name`, `None` when there is no such
    /// CRD; read again only when its generation changed.
    async fn crd_kinds(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<Option<BTreeMap<KindKey, Value>>, SchemaError> {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        let meta = match api.get_metadata(name).await {
            Ok(m) => m,
            Err(e) if is_404(&e) => {
                self.crds.lock().await.remove(name);
                return Ok(None);
            }
            Err(e) => return Err(kube_err(format!("reading CRD {name}"))(e)),
        };
        let generation = meta.metadata.generation;
        if let Some(entry) = self.crds.lock().await.get(name)
            && entry.generation == generation
        {
            return Ok(Some(entry.kinds.clone()));
        }
        let crd = match api.get(name).await {
            Ok(c) => c,
            Err(e) if is_404(&e) => return Ok(None),
            Err(e) => return Err(kube_err(format!("reading CRD {name}"))(e)),
        };
        let value = serde_json::to_value(&crd).unwrap_or_default();
        let kinds = kro_core::expr::openapi::kinds_from_crd(&value);
        self.crds.lock().await.insert(
            name.to_owned(),
            CrdEntry {
                generation: crd.metadata.generation,
                kinds: kinds.clone(),
            },
        );
        Ok(Some(kinds))
    }

    /// The pruned schema of `kind` from the `/openapi/v3` document at
    /// `url` (which carries the document's hash).
    async fn openapi_kind(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
        url: &str,
    ) -> Result<Option<Value>, SchemaError> {
        let path = gv_path(api_version);
        if let Some(entry) = self.openapi.lock().await.get(&path)
            && entry.hash == url
            && let Some(found) = entry.kinds.get(kind)
        {
            return Ok(found.clone());
        }
        let found = match shared::get(url, kind) {
            Some(found) => found,
            None => {
                let text = get_text(client, url).await?;
                let found =
                    kro_core::expr::openapi::kind_from_openapi_v3_text(&text, api_version, kind)
                        .map_err(|e| SchemaError::Document {
                            url: url.to_owned(),
                            message: e.to_string(),
                        })?;
                shared::put(url, kind, &found);
                found
            }
        };
        let mut cache = self.openapi.lock().await;
        let entry = cache.entry(path).or_default();
        if entry.hash != url {
            // The document changed: what was cached from it is stale.
            *entry = OpenApiEntry {
                hash: url.to_owned(),
                kinds: BTreeMap::new(),
            };
        }
        entry.kinds.insert(kind.to_owned(), found.clone());
        Ok(found)
    }
}

/// The kinds (with plurals) served in `api_version`; `None` when the group
/// version is not served.
async fn served_kinds(
    client: &Client,
    api_version: &str,
) -> Result<Option<Vec<(String, String)>>, SchemaError> {
    let list = match api_version.split_once('/') {
        Some(_) => client.list_api_group_resources(api_version).await,
        None => client.list_core_api_resources(api_version).await,
    };
    match list {
        Ok(list) => Ok(Some(
            list.resources
                .into_iter()
                // Subresources (`deployments/status`) share the kind.
                .filter(|r| !r.name.contains('/'))
                .map(|r| (r.kind, r.name))
                .collect(),
        )),
        Err(e) if is_404(&e) => Ok(None),
        Err(e) => Err(kube_err(format!("discovering {api_version}"))(e)),
    }
}

/// Group-version path to the document's URL (with its hash) from the
/// `/openapi/v3` index.
async fn openapi_index(client: &Client) -> Result<HashMap<String, String>, SchemaError> {
    let index: Value = get_json(client, "/openapi/v3").await?;
    Ok(index
        .get("paths")
        .and_then(Value::as_object)
        .map(|paths| {
            paths
                .iter()
                .filter_map(|(k, v)| {
                    let url = v.get("serverRelativeURL").and_then(Value::as_str)?;
                    Some((k.clone(), url.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A document's text, parsed by the caller (see
/// [`kro_core::expr::openapi::kind_from_openapi_v3_text`]).
async fn get_text(client: &Client, path: &str) -> Result<String, SchemaError> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| kube_err(format!("GET {path}"))(kube::Error::HttpError(e)))?;
    client
        .request_text(request)
        .await
        .map_err(kube_err(format!("GET {path}")))
}

/// Kinds read from `/openapi/v3` documents, shared by the caches of every
/// cluster. A document's URL carries the hash of its content (the
/// `/openapi/v3` index gives it), so members running the same Kubernetes
/// version serve the same URL and the document is read and parsed once
/// for the whole fleet instead of once per member. URLs without a hash are
/// not shared. Bounded: the oldest entries go first.
mod shared {
    use std::collections::VecDeque;
    use std::sync::{LazyLock, Mutex};

    use serde_json::Value;

    /// Kinds kept; a hub's RGDs use a few dozen at most.
    const CAPACITY: usize = 256;

    type Entries = VecDeque<((String, String), Option<Value>)>;

    static KINDS: LazyLock<Mutex<Entries>> = LazyLock::new(Mutex::default);

    fn content_addressed(url: &str) -> bool {
        url.split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("hash=")))
    }

    pub(super) fn get(url: &str, kind: &str) -> Option<Option<Value>> {
        if !content_addressed(url) {
            return None;
        }
        let entries = KINDS.lock().ok()?;
        entries
            .iter()
            .find(|((u, k), _)| u == url && k == kind)
            .map(|(_, found)| found.clone())
    }

    pub(super) fn put(url: &str, kind: &str, found: &Option<Value>) {
        if !content_addressed(url) {
            return;
        }
        let Ok(mut entries) = KINDS.lock() else {
            return;
        };
        if entries.iter().any(|((u, k), _)| u == url && k == kind) {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back(((url.to_owned(), kind.to_owned()), found.clone()));
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_documents_named_by_their_hash_are_shared() {
            let schema = Some(serde_json::json!({"type": "object"}));
            put("/openapi/v3/api/v1", "Shared", &schema);
            assert_eq!(get("/openapi/v3/api/v1", "Shared"), None);
            put("/openapi/v3/api/v1?hash=AB12", "Shared", &schema);
            assert_eq!(get("/openapi/v3/api/v1?hash=AB12", "Shared"), Some(schema));
            assert_eq!(get("/openapi/v3/api/v1?hash=CD34", "Shared"), None);
            put("/openapi/v3/api/v1?hash=AB12", "NotThere", &None);
            assert_eq!(get("/openapi/v3/api/v1?hash=AB12", "NotThere"), Some(None));
        }
    }
}

async fn get_json(client: &Client, path: &str) -> Result<Value, SchemaError> {
    let text = get_text(client, path).await?;
    serde_json::from_str(&text)
        .map_err(|e| kube_err(format!("GET {path}"))(kube::Error::SerdeError(e)))
}

/// Reads the schemas `kinds` need from the cluster behind `client` into
/// `options` (for the offline check against a live cluster); returns the
/// kinds the cluster does not serve.
pub async fn fetch_into(
    client: &Client,
    kinds: &BTreeMap<KindKey, String>,
    options: &mut kro_core::CompileOptions,
) -> Result<Vec<MissingKind>, SchemaError> {
    let resolved = SchemaCache::default().resolve(client, kinds).await?;
    options.resource_schemas.extend(resolved.schemas);
    Ok(resolved.missing)
}

/// Every `(apiVersion, kind)` used in `rgds`, for [`fetch_into`].
pub fn kinds_of<'a>(
    rgds: impl IntoIterator<Item = &'a ResourceGraphDefinition>,
) -> BTreeMap<KindKey, String> {
    let mut out = BTreeMap::new();
    for rgd in rgds {
        for (k, id) in rgd_kinds(rgd) {
            out.entry(k).or_insert(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_templates_and_external_refs() {
        let rgd = kro_core::parse_rgd_yaml(
            r#"
apiVersion: kro.run/v1alpha1
kind: ResourceGraphDefinition
metadata: {name: x}
spec:
  schema: {apiVersion: v1alpha1, kind: X, spec: {name: string}}
  resources:
  - id: a
    template: {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
  - id: b
    template: {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
  - id: c
    externalRef: {apiVersion: example.com/v1, kind: Widget, metadata: {name: c}}
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let kinds = rgd_kinds(&rgd);
        assert_eq!(kinds.len(), 2);
        assert_eq!(kinds[&("v1".to_owned(), "ConfigMap".to_owned())], "a");
        assert_eq!(
            kinds[&("example.com/v1".to_owned(), "Widget".to_owned())],
            "c"
        );
        assert_eq!(gv_path("v1"), "api/v1");
        assert_eq!(gv_path("apps/v1"), "apis/apps/v1");
        let missing = MissingKind {
            resource: "c".into(),
            api_version: "example.com/v1".into(),
            kind: "Widget".into(),
            target: Target::Member("eu-1").to_string(),
        };
        assert_eq!(
            missing.to_string(),
            "resource \"c\" uses kind Widget example.com/v1, which member cluster \"eu-1\" does not serve (is its CRD installed?)"
        );
    }
}

//! Compiling an RGD: every `${...}` parsed and type-checked, references
//! resolved to resources, the DAG built and ordered, status field types
//! inferred and the instance CRD generated.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use crate::error::{Error, Location};
use crate::expr::CompiledExpr;
use crate::expr::check::{ObjectTy, Ty, TypeEnv, infer};
use crate::expr::template::{Part, Scanned, scan};
use crate::graph::Dag;
use crate::rgd::{ResourceGraphDefinition, ResourceTarget};

/// The variable holding the instance.
pub const SCHEMA_VAR: &str = "schema";
/// kro-hub's variable holding the target cluster.
pub const CLUSTER_VAR: &str = "cluster";
/// The variable holding one item of a collection in its `readyWhen`.
pub const EACH_VAR: &str = "each";
/// Most objects one forEach resource may expand to (upstream's limit).
pub const MAX_COLLECTION_ITEMS: usize = 1000;

/// Ids and iterator names upstream kro reserves (its keywords and CEL's
/// reserved symbols), plus kro-hub's `cluster`.
#[rustfmt::skip]
pub const RESERVED_NAMES: &[&str] = &[
    "apiVersion", "cluster", "context", "dependency", "dependencies", "each", "externalRef",
    "externalReference", "externalRefs", "externalReferences", "graph", "graphengine", "instance",
    "item", "items", "kind", "kro", "metadata", "namespace", "object", "resource",
    "resourcegraphdefinition", "resourceGraphDefinition", "resources", "root", "runtime", "schema",
    "self", "serviceAccountName", "spec", "status", "this", "variables", "vars", "version",
    // CEL reserved symbols.
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function",
    "if", "import", "let", "loop", "package", "return", "var", "void", "while",
];

const OMIT: &str = "omit";
const OMIT_ONLY_IN_FIELDS: &str = "omit() may only be used as a whole template field value, not in conditions, forEach, string templates or status";

/// Label and annotation prefixes kro keeps for itself on every child.
pub const RESERVED_METADATA_PREFIXES: &[&str] = &["kro.run/", "internal.kro.run/"];

/// What compiling may use beyond the RGD itself.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// OpenAPI schemas of whole objects by `(apiVersion, kind)`, as the
    /// cluster publishes them. With one, references into that kind are
    /// checked and status fields reading it get precise types; without, they
    /// are `dyn` and checked at run time.
    pub resource_schemas: BTreeMap<(String, String), Value>,
    /// Also use the built-in Kubernetes kinds (Kubernetes 1.32: Deployment,
    /// Service, ConfigMap, StatefulSet, Job, Ingress, ...) for kinds not in
    /// `resource_schemas`. Meant for offline validation: a cluster of another
    /// version may have fields these schemas lack.
    pub builtin_kinds: bool,
    /// Let resource namespaces be computed from the instance even when the
    /// RGD names no `defaultServiceAccounts` (upstream kro's behaviour; see
    /// [`crate::namespaces`] for why that is refused by default).
    pub trust_instance_namespaces: bool,
}

/// The built-in kinds' schemas (an OpenAPI v3 document).
const BUILTIN_KINDS_DOC: &str = include_str!("expr/k8s-builtin-kinds.json");

/// Types of the built-in kinds, resolved once.
static BUILTIN_KINDS: LazyLock<BTreeMap<(String, String), Ty>> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(BUILTIN_KINDS_DOC).unwrap_or_default();
    crate::expr::openapi::kinds_from_openapi_v3(&doc)
        .into_iter()
        .map(|(k, schema)| (k, object_ty(&schema)))
        .collect()
});

/// The built-in kinds' names alone, without resolving their types (which
/// took the hub 30 ms of its start, to learn only which kinds are built in).
static BUILTIN_KIND_NAMES: LazyLock<BTreeSet<(String, String)>> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(BUILTIN_KINDS_DOC).unwrap_or_default();
    crate::expr::openapi::kind_names_from_openapi_v3(&doc)
});

impl CompileOptions {
    /// Options using the built-in Kubernetes kinds (see [`Self::builtin_kinds`]).
    pub fn with_builtin_kinds() -> Self {
        Self {
            builtin_kinds: true,
            ..Self::default()
        }
    }

    /// The `(apiVersion, kind)` pairs the built-in schemas cover.
    pub fn builtin_kind_names() -> impl Iterator<Item = &'static (String, String)> {
        BUILTIN_KIND_NAMES.iter()
    }

    /// Adds the kinds a Kubernetes OpenAPI v3 document declares (one
    /// `/openapi/v3/apis/<group>/<version>` answer); returns how many.
    pub fn add_openapi_v3(&mut self, doc: &Value) -> usize {
        let kinds = crate::expr::openapi::kinds_from_openapi_v3(doc);
        let n = kinds.len();
        self.resource_schemas.extend(kinds);
        n
    }

    /// Adds the kinds a CustomResourceDefinition serves (one per version,
    /// with that version's `openAPIV3Schema`, which is what the API server
    /// publishes for it); returns how many.
    pub fn add_crd(&mut self, crd: &Value) -> usize {
        let kinds = crate::expr::openapi::kinds_from_crd(crd);
        let n = kinds.len();
        self.resource_schemas.extend(kinds);
        n
    }
}

/// One step of a field path inside a template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A template string holding expressions, at a path.
#[derive(Debug)]
pub(crate) struct Field {
    pub path: Vec<Seg>,
    pub display: String,
    pub value: FieldValue,
}

#[derive(Debug)]
pub(crate) enum FieldValue {
    Standalone(CompiledExpr),
    Template(Vec<TemplatePart>),
}

#[derive(Debug)]
pub(crate) enum TemplatePart {
    Text(String),
    Expr(CompiledExpr),
}

impl Field {
    pub(crate) fn exprs(&self) -> Vec<&CompiledExpr> {
        match &self.value {
            FieldValue::Standalone(e) => vec![e],
            FieldValue::Template(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    TemplatePart::Expr(e) => Some(e),
                    TemplatePart::Text(_) => None,
                })
                .collect(),
        }
    }
}

/// A compiled `includeWhen`/`readyWhen`/`forEach` expression with its place.
#[derive(Debug)]
pub(crate) struct Condition {
    pub field: String,
    pub expr: CompiledExpr,
}

/// One resource of the graph.
#[derive(Debug)]
pub struct ResourceNode {
    pub(crate) id: String,
    pub(crate) index: usize,
    pub(crate) dependencies: Vec<String>,
    pub(crate) external: bool,
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) target: Option<ResourceTarget>,
    /// The template (or, for an externalRef, `{apiVersion, kind, metadata}`).
    pub(crate) template: Value,
    pub(crate) fields: Vec<Field>,
    pub(crate) include_when: Vec<Condition>,
    pub(crate) ready_when: Vec<Condition>,
    /// forEach dimensions: iterator name and list expression.
    pub(crate) iterators: Vec<(String, Condition)>,
}

impl ResourceNode {
    /// The resource id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Position in `spec.resources`.
    pub fn declaration_index(&self) -> usize {
        self.index
    }
    /// Ids of the resources this one reads, in declaration order.
    pub fn dependencies(&self) -> &[String] {
        &self.dependencies
    }
    /// Whether this is an `externalRef`: read, never created or deleted.
    pub fn is_external(&self) -> bool {
        self.external
    }
    /// Static apiVersion of the object(s).
    pub fn api_version(&self) -> &str {
        &self.api_version
    }
    /// Static kind of the object(s).
    pub fn kind(&self) -> &str {
        &self.kind
    }
    /// Whether this resource is a forEach collection (renders a list).
    pub fn is_collection(&self) -> bool {
        !self.iterators.is_empty()
    }
    /// forEach iterator names, in declaration order.
    pub fn iterator_names(&self) -> impl Iterator<Item = &str> {
        self.iterators.iter().map(|(n, _)| n.as_str())
    }
    /// kro-hub placement target (`None` means members, the default).
    pub fn target(&self) -> Option<ResourceTarget> {
        self.target
    }
    /// Whether the resource has `includeWhen` conditions.
    pub fn is_conditional(&self) -> bool {
        !self.include_when.is_empty()
    }
    /// The raw template (for an externalRef: apiVersion, kind and metadata).
    pub fn template(&self) -> &Value {
        &self.template
    }
    /// The `readyWhen` expressions, as written without `${}`.
    pub fn ready_when(&self) -> impl Iterator<Item = &str> {
        self.ready_when.iter().map(|c| c.expr.source())
    }
}

/// A validated, ordered RGD ready to render instances.
#[derive(Debug)]
pub struct CompiledGraph {
    pub(crate) name: String,
    pub(crate) crd: Value,
    pub(crate) spec_schema: Value,
    pub(crate) status_schema: Value,
    pub(crate) nodes: Vec<ResourceNode>,
    pub(crate) order: Vec<String>,
    pub(crate) order_idx: Vec<usize>,
    pub(crate) by_id: HashMap<String, usize>,
    pub(crate) status_fields: Vec<Field>,
    pub(crate) status_literals: Value,
    pub(crate) placement_clusters: Option<Condition>,
    pub(crate) placement_static_clusters: Option<Vec<String>>,
    /// `placement.clusterSelector` and the `${...}` fields inside it.
    pub(crate) placement_selector: Option<(Value, Vec<Field>)>,
    /// `placement.when`: over `schema` and `cluster`.
    pub(crate) placement_when: Option<Condition>,
    /// Whether the RGD has a `placement` at all.
    pub(crate) placed: bool,
    /// `placement.onDeselect`.
    pub(crate) on_deselect: crate::rgd::OnDeselect,
    /// `spec.rollout`, validated.
    pub(crate) rollout: Option<crate::rollout::RolloutPolicy>,
    pub(crate) uses_time: bool,
    /// See [`CompiledGraph::is_quick`].
    pub(crate) quick: bool,
    /// What each variable is read for (see [`crate::expr::needs`]).
    pub(crate) needs: std::sync::Arc<crate::expr::needs::Needs>,
}

impl CompiledGraph {
    /// Whether every evaluation of the graph is cheap whatever the instance
    /// (see [`CompiledExpr::is_quick`]) and no resource repeats with
    /// `forEach`: then a controller may evaluate it in place rather than
    /// hand it to threads set aside for costly evaluations.
    pub fn is_quick(&self) -> bool {
        self.quick
    }

    /// What each variable is read for by the graph's expressions; see
    /// [`EvalContext::for_graph`](crate::EvalContext::for_graph).
    pub fn needs(&self) -> &std::sync::Arc<crate::expr::needs::Needs> {
        &self.needs
    }

    /// The RGD's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The generated CustomResourceDefinition of the instance kind.
    pub fn crd(&self) -> &Value {
        &self.crd
    }
    /// OpenAPI schema of the instance `.spec`.
    pub fn spec_schema(&self) -> &Value {
        &self.spec_schema
    }
    /// Inferred OpenAPI schema of the RGD's own status fields.
    pub fn status_schema(&self) -> &Value {
        &self.status_schema
    }
    /// Whether any expression reads `time.now()`: such instances change with
    /// the clock alone, so the controller should re-reconcile them
    /// periodically (kro-core does not compute when a comparison will flip).
    pub fn uses_time(&self) -> bool {
        self.uses_time
    }

    /// The first place an expression reads `cluster` (the target cluster's
    /// name, labels and annotations), so a caller that has no cluster to
    /// bind can say which one needs it.
    pub fn cluster_reference(&self) -> Option<Location> {
        let reads = |e: &CompiledExpr| e.roots().any(|r| r == CLUSTER_VAR);
        let at = |resource: Option<&str>, field: &str, e: &CompiledExpr| Location {
            rgd: self.name.clone(),
            resource: resource.map(str::to_owned),
            field: field.to_owned(),
            expression: Some(e.source().to_owned()),
        };
        for n in &self.nodes {
            let conditions = n
                .iterators
                .iter()
                .map(|(_, c)| c)
                .chain(&n.include_when)
                .chain(&n.ready_when);
            for c in conditions {
                if reads(&c.expr) {
                    return Some(at(Some(&n.id), &c.field, &c.expr));
                }
            }
            for f in &n.fields {
                if let Some(e) = f.exprs().into_iter().find(|e| reads(e)) {
                    return Some(at(Some(&n.id), &f.display, e));
                }
            }
        }
        self.status_fields.iter().find_map(|f| {
            f.exprs()
                .into_iter()
                .find(|e| reads(e))
                .map(|e| at(None, &f.display, e))
        })
    }

    /// Resource ids in creation order.
    pub fn topological_order(&self) -> &[String] {
        &self.order
    }
    /// One resource by id.
    pub fn resource(&self, id: &str) -> Option<&ResourceNode> {
        self.by_id.get(id).map(|&i| &self.nodes[i])
    }
    /// Every resource, in topological order.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceNode> {
        self.order_idx.iter().map(move |&i| &self.nodes[i])
    }
    /// The RGD status `resources` entries (id and dependencies), in order.
    pub fn resource_information(&self) -> Vec<crate::rgd::ResourceInformation> {
        self.resources()
            .map(|n| crate::rgd::ResourceInformation {
                id: n.id.clone(),
                dependencies: n
                    .dependencies
                    .iter()
                    .map(|d| crate::rgd::Dependency { id: d.clone() })
                    .collect(),
            })
            .collect()
    }
    pub(crate) fn node(&self, id: &str) -> Result<&ResourceNode, Error> {
        self.resource(id).ok_or_else(|| Error::UnknownResource {
            rgd: self.name.clone(),
            id: id.to_owned(),
        })
    }
}

/// Compiles an RGD with no knowledge of the cluster's resource schemas.
pub fn compile(rgd: &ResourceGraphDefinition) -> Result<CompiledGraph, Error> {
    compile_with(rgd, &CompileOptions::default())
}

/// Compiles an RGD, checking references into kinds whose schema `options`
/// provides.
pub fn compile_with(
    rgd: &ResourceGraphDefinition,
    options: &CompileOptions,
) -> Result<CompiledGraph, Error> {
    Compiler::new(rgd, options).run()
}

struct Compiler<'a> {
    rgd: &'a ResourceGraphDefinition,
    options: &'a CompileOptions,
    name: String,
    /// Sources parsed so far: RGDs repeat `schema.spec.name` and friends.
    parsed: RefCell<HashMap<String, CompiledExpr>>,
}

fn is_lower_camel(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

fn is_upper_camel(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

fn is_kube_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    // Same shape as upstream's `^v\d+(?:(?:alpha|beta)\d+)?$`.
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let tail = &rest[digits..];
    if tail.is_empty() {
        return true;
    }
    let t = tail
        .strip_prefix("alpha")
        .or_else(|| tail.strip_prefix("beta"));
    matches!(t, Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

pub(crate) fn display_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Type of `metadata` on every Kubernetes object: ObjectMeta, closed, since
/// the API server stores no other field there whatever the kind's schema
/// says (so a misspelt metadata field is caught even for schemaless kinds).
fn object_meta_ty() -> Ty {
    let s = || Ty::String;
    let closed = |fields: Vec<(&str, Ty)>| {
        Ty::Object(Arc::new(ObjectTy {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            open: false,
        }))
    };
    let owner_reference = closed(vec![
        ("apiVersion", s()),
        ("kind", s()),
        ("name", s()),
        ("uid", s()),
        ("controller", Ty::Bool),
        ("blockOwnerDeletion", Ty::Bool),
    ]);
    closed(vec![
        ("name", s()),
        ("namespace", s()),
        ("generateName", s()),
        ("uid", s()),
        ("resourceVersion", s()),
        ("selfLink", s()),
        ("creationTimestamp", Ty::Timestamp),
        ("deletionTimestamp", Ty::Timestamp),
        ("deletionGracePeriodSeconds", Ty::Int),
        ("generation", Ty::Int),
        ("labels", Ty::Map(Box::new(Ty::String))),
        ("annotations", Ty::Map(Box::new(Ty::String))),
        ("finalizers", Ty::List(Box::new(Ty::String))),
        ("ownerReferences", Ty::List(Box::new(owner_reference))),
        ("managedFields", Ty::List(Box::new(Ty::Dyn))),
    ])
}

/// Type of an object whose only known part is the Kubernetes envelope.
fn envelope_ty() -> Ty {
    Ty::Object(Arc::new(ObjectTy {
        fields: [
            ("apiVersion".to_owned(), Ty::String),
            ("kind".to_owned(), Ty::String),
            ("metadata".to_owned(), object_meta_ty()),
        ]
        .into(),
        open: true,
    }))
}

/// Type of a whole object from its OpenAPI schema, with the envelope fields
/// filled in where the schema leaves them out.
fn object_ty(schema: &Value) -> Ty {
    match Ty::from_openapi(schema) {
        Ty::Object(o) => {
            let mut o = (*o).clone();
            o.fields.entry("apiVersion".into()).or_insert(Ty::String);
            o.fields.entry("kind".into()).or_insert(Ty::String);
            o.fields.insert("metadata".into(), object_meta_ty());
            Ty::Object(Arc::new(o))
        }
        _ => envelope_ty(),
    }
}

fn field_ty_at(ty: &Ty, path: &[Seg]) -> Option<Ty> {
    let mut cur = ty.clone();
    for seg in path {
        cur = match (seg, &cur) {
            (Seg::Key(k), Ty::Object(o)) => match o.fields.get(k) {
                Some(t) => t.clone(),
                None => return None,
            },
            (Seg::Key(_), Ty::Map(v)) => (**v).clone(),
            (Seg::Index(_), Ty::List(t)) => (**t).clone(),
            _ => return None,
        };
    }
    Some(cur)
}

impl<'a> Compiler<'a> {
    fn new(rgd: &'a ResourceGraphDefinition, options: &'a CompileOptions) -> Self {
        Self {
            rgd,
            options,
            name: rgd.name().to_owned(),
            parsed: RefCell::new(HashMap::new()),
        }
    }

    fn invalid(
        &self,
        resource: Option<&str>,
        field: impl Into<String>,
        expression: Option<&str>,
        message: impl Into<String>,
    ) -> Error {
        Error::Invalid {
            at: Location {
                rgd: self.name.clone(),
                resource: resource.map(str::to_owned),
                field: field.into(),
                expression: expression.map(str::to_owned),
            },
            message: message.into(),
        }
    }

    fn run(self) -> Result<CompiledGraph, Error> {
        // Before anything walks the RGD: see `limits` for why.
        crate::limits::check_rgd(self.rgd)?;
        let schema = &self.rgd.spec.schema;
        if !is_upper_camel(&schema.kind) {
            return Err(self.invalid(
                None,
                "spec.schema.kind",
                None,
                format!("kind \"{}\" must be UpperCamelCase", schema.kind),
            ));
        }
        if !is_kube_version(&schema.api_version) {
            return Err(self.invalid(
                None,
                "spec.schema.apiVersion",
                None,
                format!(
                    "apiVersion \"{}\" must look like v1, v1alpha1 or v2beta3",
                    schema.api_version
                ),
            ));
        }
        let (spec_schema, spec_nodes) = crate::simpleschema::spec_schema_counted(self.rgd)
            .map_err(|source| Error::Schema {
                rgd: self.name.clone(),
                source,
            })?;
        let schema_ty = Ty::Object(Arc::new(ObjectTy {
            fields: [
                ("apiVersion".to_owned(), Ty::String),
                ("kind".to_owned(), Ty::String),
                ("metadata".to_owned(), object_meta_ty()),
                ("spec".to_owned(), Ty::from_openapi(&spec_schema)),
            ]
            .into(),
            open: false,
        }));
        let cluster_ty = Ty::Object(Arc::new(ObjectTy {
            fields: [
                ("name".to_owned(), Ty::String),
                ("labels".to_owned(), Ty::Map(Box::new(Ty::String))),
                ("annotations".to_owned(), Ty::Map(Box::new(Ty::String))),
            ]
            .into(),
            open: true,
        }));

        // Ids first: every expression may name any of them.
        let resources = &self.rgd.spec.resources;
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for (i, r) in resources.iter().enumerate() {
            let field = format!("spec.resources[{i}].id");
            if !is_lower_camel(&r.id) {
                return Err(self.invalid(Some(&r.id), field, None, format!("id \"{}\" must be lowerCamelCase (letters and digits, starting with a lowercase letter)", r.id)));
            }
            if RESERVED_NAMES.contains(&r.id.as_str()) {
                return Err(self.invalid(
                    Some(&r.id),
                    field,
                    None,
                    format!("id \"{}\" is a reserved name", r.id),
                ));
            }
            if ids.insert(r.id.as_str(), i).is_some() {
                return Err(self.invalid(
                    Some(&r.id),
                    field,
                    None,
                    format!("duplicate resource id \"{}\"", r.id),
                ));
            }
        }

        // Types of each resource variable.
        let mut resource_tys: Vec<Ty> = Vec::with_capacity(resources.len());
        let mut static_gvk: Vec<(String, String)> = Vec::with_capacity(resources.len());
        for (i, r) in resources.iter().enumerate() {
            let (api_version, kind) = match (&r.template, &r.external_ref) {
                (Some(t), None) => {
                    let get = |k: &str| -> Result<String, Error> {
                        match t.get(k) {
                            Some(Value::String(s)) if !s.is_empty() && !s.contains("${") => {
                                Ok(s.clone())
                            }
                            Some(Value::String(s)) if s.contains("${") => Err(self.invalid(
                                Some(&r.id),
                                k,
                                Some(s),
                                format!("{k} must be a literal string, not an expression"),
                            )),
                            _ => Err(self.invalid(
                                Some(&r.id),
                                k,
                                None,
                                format!("template must have a non-empty string {k}"),
                            )),
                        }
                    };
                    if !t.is_object() {
                        return Err(self.invalid(
                            Some(&r.id),
                            format!("spec.resources[{i}].template"),
                            None,
                            "template must be an object",
                        ));
                    }
                    let gvk = (get("apiVersion")?, get("kind")?);
                    self.check_template_metadata(&r.id, t.get("metadata"))?;
                    gvk
                }
                (None, Some(e)) => {
                    if e.api_version.is_empty() || e.kind.is_empty() {
                        return Err(self.invalid(
                            Some(&r.id),
                            "externalRef",
                            None,
                            "externalRef needs apiVersion and kind",
                        ));
                    }
                    if e.metadata.name.is_none() && e.metadata.selector.is_none() {
                        return Err(self.invalid(
                            Some(&r.id),
                            "externalRef.metadata",
                            None,
                            "externalRef needs metadata.name or metadata.selector",
                        ));
                    }
                    if !r.for_each.is_empty() {
                        return Err(self.invalid(
                            Some(&r.id),
                            "forEach",
                            None,
                            "cannot use externalRef with forEach",
                        ));
                    }
                    match &e.metadata.selector {
                        None | Some(Value::Object(_)) => {}
                        Some(Value::String(s)) if matches!(scan(s), Ok(Scanned::Standalone(_))) => {}
                        Some(_) => return Err(self.invalid(Some(&r.id), "externalRef.metadata.selector", None, "selector must be a Kubernetes LabelSelector object or a ${...} expression that resolves to one")),
                    }
                    if e.metadata.name.is_some() && e.metadata.selector.is_some() {
                        return Err(self.invalid(
                            Some(&r.id),
                            "externalRef.metadata",
                            None,
                            "externalRef takes metadata.name or metadata.selector, not both",
                        ));
                    }
                    (e.api_version.clone(), e.kind.clone())
                }
                (Some(_), Some(_)) => {
                    return Err(self.invalid(
                        Some(&r.id),
                        format!("spec.resources[{i}]"),
                        None,
                        "a resource has either template or externalRef, not both",
                    ));
                }
                (None, None) => {
                    return Err(self.invalid(
                        Some(&r.id),
                        format!("spec.resources[{i}]"),
                        None,
                        "a resource needs a template or an externalRef",
                    ));
                }
            };
            let key = (api_version.clone(), kind.clone());
            let ty = match self.options.resource_schemas.get(&key) {
                Some(schema) => object_ty(schema),
                None if self.options.builtin_kinds => {
                    BUILTIN_KINDS.get(&key).cloned().unwrap_or_else(envelope_ty)
                }
                None => envelope_ty(),
            };
            let is_list = !r.for_each.is_empty()
                || r.external_ref
                    .as_ref()
                    .is_some_and(|e| e.metadata.selector.is_some());
            resource_tys.push(if is_list { Ty::List(Box::new(ty)) } else { ty });
            static_gvk.push((api_version, kind));
        }
        // Once every resource has a valid shape: who chooses namespaces.
        crate::namespaces::check(self.rgd, self.options.trust_instance_namespaces)?;

        let mut base_env = TypeEnv::new();
        base_env.declare(SCHEMA_VAR, schema_ty.clone());
        base_env.declare(CLUSTER_VAR, cluster_ty.clone());
        base_env.declare(
            crate::expr::time::TIME_VAR,
            Ty::Opaque(crate::expr::time::TIME_TYPE),
        );
        for (r, ty) in resources.iter().zip(&resource_tys) {
            base_env.declare(r.id.clone(), ty.clone());
        }

        let mut nodes = Vec::with_capacity(resources.len());
        let mut deps: Vec<BTreeSet<usize>> = Vec::with_capacity(resources.len());
        for (i, r) in resources.iter().enumerate() {
            let (api_version, kind) = static_gvk[i].clone();
            let mut env = base_env.clone();
            let mut node_deps = BTreeSet::new();

            // forEach dimensions.
            let mut iterators = Vec::new();
            for (d, dim) in r.for_each.iter().enumerate() {
                if dim.len() != 1 {
                    return Err(self.invalid(
                        Some(&r.id),
                        format!("forEach[{d}]"),
                        None,
                        "each forEach entry maps exactly one iterator name to a list expression",
                    ));
                }
                for (name, src) in dim {
                    let field = format!("forEach[{d}].{name}");
                    if !is_lower_camel(name)
                        || RESERVED_NAMES.contains(&name.as_str())
                        || ids.contains_key(name.as_str())
                    {
                        return Err(self.invalid(Some(&r.id), field, None, format!("iterator name \"{name}\" must be lowerCamelCase and not a reserved word or resource id")));
                    }
                    if iterators
                        .iter()
                        .any(|(n, _): &(String, Condition)| n == name)
                    {
                        return Err(self.invalid(
                            Some(&r.id),
                            field,
                            None,
                            format!("duplicate iterator \"{name}\""),
                        ));
                    }
                    let expr = self.standalone(&r.id, &field, src)?;
                    let ty = self.check(&r.id, &field, &expr, &base_env)?;
                    if !matches!(ty, Ty::List(_) | Ty::Dyn) {
                        return Err(self.invalid(
                            Some(&r.id),
                            field,
                            Some(expr.source()),
                            format!("forEach expression must return a list, got {ty}"),
                        ));
                    }
                    collect_deps(&expr, &ids, &mut node_deps);
                    let elem = match &ty {
                        Ty::List(t) => (**t).clone(),
                        _ => Ty::Dyn,
                    };
                    iterators.push((name.clone(), Condition { field, expr }));
                    env.declare(name.clone(), elem);
                }
            }

            // The template (or the externalRef's identifying fields).
            let template = match (&r.template, &r.external_ref) {
                (Some(t), _) => t.clone(),
                (None, Some(e)) => {
                    let mut meta = Map::new();
                    if let Some(n) = &e.metadata.name {
                        meta.insert("name".into(), Value::String(n.clone()));
                    }
                    if let Some(ns) = &e.metadata.namespace {
                        meta.insert("namespace".into(), Value::String(ns.clone()));
                    }
                    if let Some(sel) = &e.metadata.selector {
                        meta.insert("selector".into(), sel.clone());
                    }
                    json!({"apiVersion": e.api_version, "kind": e.kind, "metadata": meta})
                }
                (None, None) => Value::Null,
            };
            let mut fields = Vec::new();
            self.collect_fields(&r.id, &template, &mut Vec::new(), &mut fields)?;
            self.check_omit(&r.id, &fields, true)?;
            let own_ty = {
                let t = &resource_tys[i];
                match t {
                    Ty::List(inner) if !r.for_each.is_empty() => (**inner).clone(),
                    t => t.clone(),
                }
            };
            for f in &fields {
                let standalone = matches!(f.value, FieldValue::Standalone(_));
                for e in f.exprs() {
                    let ty = self.check(&r.id, &f.display, e, &env)?;
                    collect_deps(e, &ids, &mut node_deps);
                    if standalone {
                        if let Some(want) = field_ty_at(&own_ty, &f.path)
                            && !ty.fits(&want)
                        {
                            return Err(self.invalid(
                                Some(&r.id),
                                f.display.clone(),
                                Some(e.source()),
                                format!("expression returns {ty} but the field expects {want}"),
                            ));
                        }
                    } else if !ty.fits(&Ty::String) {
                        return Err(self.invalid(Some(&r.id), f.display.clone(), Some(e.source()), format!("an expression inside a string template must return a string, got {ty} (use string(...) to convert)")));
                    }
                }
                // A string template always makes a string: a field of
                // another scalar type would be refused by the API server.
                if !standalone
                    && let Some(want) = field_ty_at(&own_ty, &f.path)
                    && matches!(want, Ty::Int | Ty::Uint | Ty::Double | Ty::Bool)
                {
                    let source = f.exprs().first().map(|e| e.source().to_owned());
                    return Err(self.invalid(
                        Some(&r.id),
                        f.display.clone(),
                        source.as_deref(),
                        format!("a string template makes a string but the field expects {want} (write the field as one ${{...}} that returns {want})"),
                    ));
                }
            }

            // includeWhen: any resource or the schema; must be bool.
            let mut include_when = Vec::new();
            for (k, src) in r.include_when.iter().enumerate() {
                let field = format!("includeWhen[{k}]");
                let expr = self.standalone(&r.id, &field, src)?;
                let ty = self.check(&r.id, &field, &expr, &env)?;
                if !ty.fits(&Ty::Bool) {
                    return Err(self.invalid(
                        Some(&r.id),
                        field,
                        Some(expr.source()),
                        format!("includeWhen must return bool, got {ty}"),
                    ));
                }
                collect_deps(&expr, &ids, &mut node_deps);
                include_when.push(Condition { field, expr });
            }

            // readyWhen: only the resource itself (`each` for collections).
            let mut ready_when = Vec::new();
            for (k, src) in r.ready_when.iter().enumerate() {
                let field = format!("readyWhen[{k}]");
                let expr = self.standalone(&r.id, &field, src)?;
                let mut renv = TypeEnv::new();
                let allowed: &str = if r.for_each.is_empty() {
                    &r.id
                } else {
                    EACH_VAR
                };
                renv.declare(allowed, own_ty.clone());
                for root in expr.roots() {
                    if root != allowed {
                        return Err(self.invalid(
                            Some(&r.id),
                            field,
                            Some(expr.source()),
                            format!("readyWhen may only reference \"{allowed}\", not \"{root}\""),
                        ));
                    }
                }
                let ty = infer(expr.ast(), &renv).map_err(|e| {
                    self.invalid(Some(&r.id), field.clone(), Some(expr.source()), e.message)
                })?;
                if !ty.fits(&Ty::Bool) {
                    return Err(self.invalid(
                        Some(&r.id),
                        field,
                        Some(expr.source()),
                        format!("readyWhen must return bool, got {ty}"),
                    ));
                }
                ready_when.push(Condition { field, expr });
            }

            let mut dependencies: Vec<usize> = node_deps.iter().copied().collect();
            dependencies.sort_unstable();
            nodes.push(ResourceNode {
                id: r.id.clone(),
                index: i,
                dependencies: dependencies
                    .iter()
                    .map(|&d| resources[d].id.clone())
                    .collect(),
                external: r.external_ref.is_some(),
                api_version,
                kind,
                target: r.target,
                template,
                fields,
                include_when,
                ready_when,
                iterators,
            });
            deps.push(node_deps);
        }

        // kro-hub: a hub resource cannot read member resources.
        for n in &nodes {
            if n.target == Some(ResourceTarget::Hub) {
                for d in &n.dependencies {
                    if let Some(&j) = ids.get(d.as_str())
                        && nodes[j].target != Some(ResourceTarget::Hub)
                    {
                        return Err(self.invalid(Some(&n.id), "target", None, format!("a Hub resource cannot reference \"{d}\", which is placed on member clusters")));
                    }
                }
            }
        }

        let dag = Dag::new(&deps);
        let order_idx = dag.topological_order().map_err(|cycle| Error::Cycle {
            rgd: self.name.clone(),
            cycle: cycle.0.iter().map(|&i| resources[i].id.clone()).collect(),
        })?;

        // Whole-spec validation rules run in the API server with `self` (and
        // `oldSelf` for transition rules) bound to the spec.
        let spec_ty = Ty::from_openapi(&spec_schema);
        for (k, rule) in schema.validation.iter().enumerate() {
            let field = format!("spec.schema.validation[{k}]");
            let expr = self.parse(&rule.expression).map_err(|e| {
                self.invalid(None, field.clone(), Some(&rule.expression), e.to_string())
            })?;
            let mut venv = TypeEnv::new();
            venv.declare("self", spec_ty.clone());
            venv.declare("oldSelf", spec_ty.clone());
            let ty = infer(expr.ast(), &venv)
                .map_err(|e| self.invalid(None, field.clone(), Some(expr.source()), e.message))?;
            if !ty.fits(&Ty::Bool) {
                return Err(self.invalid(
                    None,
                    field,
                    Some(expr.source()),
                    format!("a validation rule must return bool, got {ty}"),
                ));
            }
        }

        // Status fields.
        let mut status_fields = Vec::new();
        let mut status_literals = Value::Object(Map::new());
        let mut status_props = Map::new();
        if let Some(status) = &schema.status {
            if !status.is_object() {
                return Err(self.invalid(
                    None,
                    "spec.schema.status",
                    None,
                    "status must be a map of fields",
                ));
            }
            self.collect_status(
                status,
                &mut Vec::new(),
                &mut status_fields,
                &mut status_literals,
            )?;
            self.check_omit("", &status_fields, false)?;
            let mut senv = base_env.clone();
            senv.declare(CLUSTER_VAR, Ty::Dyn);
            for f in &status_fields {
                let ty = match &f.value {
                    FieldValue::Standalone(e) => self.check_status(f, e, &senv)?,
                    FieldValue::Template(_) => {
                        for e in f.exprs() {
                            let ty = self.check_status(f, e, &senv)?;
                            if !ty.fits(&Ty::String) {
                                return Err(self.invalid(None, f.display.clone(), Some(e.source()), format!("an expression inside a string template must return a string, got {ty}")));
                            }
                        }
                        Ty::String
                    }
                };
                insert_schema(&mut status_props, &f.path, ty.to_openapi());
            }
            literal_schemas(&status_literals, &mut status_props, &mut Vec::new());
        }
        let status_schema = json!({"type": "object", "properties": status_props});
        crate::limits::check_status_schema(&self.name, &status_schema, spec_nodes)?;

        // kro-hub placement: `clusterSelector` values may hold `${...}` over
        // the instance.
        let mut penv = TypeEnv::new();
        penv.declare(SCHEMA_VAR, schema_ty.clone());
        let placement_selector = match self
            .rgd
            .spec
            .placement
            .as_ref()
            .and_then(|p| p.cluster_selector.as_ref())
        {
            Some(sel @ Value::Object(_)) => {
                let mut fields = Vec::new();
                self.collect_fields("", sel, &mut Vec::new(), &mut fields)?;
                for f in &mut fields {
                    f.display = format!("spec.placement.clusterSelector.{}", f.display);
                    for e in f.exprs() {
                        if let Some(root) = e.roots().find(|r| *r != SCHEMA_VAR) {
                            return Err(self.invalid(
                                None,
                                f.display.clone(),
                                Some(e.source()),
                                format!("placement may only read schema, not \"{root}\""),
                            ));
                        }
                        let ty = infer(e.ast(), &penv).map_err(|err| {
                            self.invalid(None, f.display.clone(), Some(e.source()), err.message)
                        })?;
                        if matches!(f.value, FieldValue::Template(_)) && !ty.fits(&Ty::String) {
                            return Err(self.invalid(None, f.display.clone(), Some(e.source()), format!("an expression inside a string template must return a string, got {ty}")));
                        }
                    }
                }
                Some((sel.clone(), fields))
            }
            Some(_) => {
                return Err(self.invalid(
                    None,
                    "spec.placement.clusterSelector",
                    None,
                    "clusterSelector must be a label selector object",
                ));
            }
            None => None,
        };
        let placement_static_clusters = match self
            .rgd
            .spec
            .placement
            .as_ref()
            .and_then(|p| p.clusters.as_ref())
        {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        };

        // kro-hub placement: `clusters` may be a standalone list expression.
        let placement_clusters = match self
            .rgd
            .spec
            .placement
            .as_ref()
            .and_then(|p| p.clusters.as_ref())
        {
            Some(Value::String(src)) => {
                let field = "spec.placement.clusters";
                let expr = self.standalone("", field, src)?;
                let ty = infer(expr.ast(), &penv)
                    .map_err(|e| self.invalid(None, field, Some(expr.source()), e.message))?;
                if !ty.fits(&Ty::List(Box::new(Ty::String))) {
                    return Err(self.invalid(
                        None,
                        field,
                        Some(expr.source()),
                        format!("clusters must be a list of strings, got {ty}"),
                    ));
                }
                Some(Condition {
                    field: field.to_owned(),
                    expr,
                })
            }
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => None,
            Some(_) => {
                return Err(self.invalid(
                    None,
                    "spec.placement.clusters",
                    None,
                    "clusters must be a list of names or a ${...} list expression",
                ));
            }
            None => None,
        };

        // kro-hub placement: `when` filters the selected clusters per
        // instance; it reads the instance and the cluster, nothing else.
        let placement_when = match self
            .rgd
            .spec
            .placement
            .as_ref()
            .and_then(|p| p.when.as_ref())
        {
            Some(src) => {
                let field = "spec.placement.when";
                let expr = self.standalone("", field, src)?;
                if let Some(root) = expr.roots().find(|r| *r != SCHEMA_VAR && *r != CLUSTER_VAR) {
                    return Err(self.invalid(
                        None,
                        field,
                        Some(expr.source()),
                        format!("placement.when may only read schema and cluster, not \"{root}\""),
                    ));
                }
                let mut wenv = TypeEnv::new();
                wenv.declare(SCHEMA_VAR, schema_ty.clone());
                wenv.declare(CLUSTER_VAR, cluster_ty.clone());
                let ty = infer(expr.ast(), &wenv)
                    .map_err(|e| self.invalid(None, field, Some(expr.source()), e.message))?;
                if !ty.fits(&Ty::Bool) {
                    return Err(self.invalid(
                        None,
                        field,
                        Some(expr.source()),
                        format!("placement.when must return bool, got {ty}"),
                    ));
                }
                Some(Condition {
                    field: field.to_owned(),
                    expr,
                })
            }
            None => None,
        };

        let rollout = self
            .rgd
            .spec
            .rollout
            .as_ref()
            .map(|r| crate::rollout::validate(&self.name, r, self.rgd.spec.placement.is_some()))
            .transpose()?;

        let crd = crate::crd::instance_crd(self.rgd, &spec_schema, &status_schema)?;

        let by_id = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let reads_time = |e: &CompiledExpr| e.roots().any(|r| r == crate::expr::time::TIME_VAR);
        let uses_time = nodes.iter().any(|n| {
            n.fields.iter().flat_map(Field::exprs).any(reads_time)
                || n.include_when.iter().any(|c| reads_time(&c.expr))
                || n.ready_when.iter().any(|c| reads_time(&c.expr))
                || n.iterators.iter().any(|(_, c)| reads_time(&c.expr))
        }) || status_fields.iter().flat_map(Field::exprs).any(reads_time);
        // Every expression the graph evaluates against a context: a variable
        // is converted for CEL only as far as these read it.
        let needs = {
            let mut exprs: Vec<&CompiledExpr> = Vec::new();
            for n in &nodes {
                exprs.extend(n.fields.iter().flat_map(Field::exprs));
                exprs.extend(n.include_when.iter().map(|c| &c.expr));
                exprs.extend(n.ready_when.iter().map(|c| &c.expr));
                exprs.extend(n.iterators.iter().map(|(_, c)| &c.expr));
            }
            exprs.extend(status_fields.iter().flat_map(Field::exprs));
            exprs.extend(placement_clusters.iter().map(|c| &c.expr));
            exprs.extend(placement_when.iter().map(|c| &c.expr));
            exprs.extend(
                placement_selector
                    .iter()
                    .flat_map(|(_, fields)| fields.iter().flat_map(Field::exprs)),
            );
            std::sync::Arc::new(crate::expr::needs::Needs::of(exprs))
        };
        let quick = nodes.iter().all(|n| {
            n.iterators.is_empty()
                && n.fields
                    .iter()
                    .flat_map(Field::exprs)
                    .all(CompiledExpr::is_quick)
                && n.include_when.iter().all(|c| c.expr.is_quick())
                && n.ready_when.iter().all(|c| c.expr.is_quick())
        }) && status_fields
            .iter()
            .flat_map(Field::exprs)
            .all(CompiledExpr::is_quick)
            && placement_clusters.iter().all(|c| c.expr.is_quick())
            && placement_when.iter().all(|c| c.expr.is_quick())
            && placement_selector
                .iter()
                .flat_map(|(_, fields)| fields.iter().flat_map(Field::exprs))
                .all(CompiledExpr::is_quick);
        Ok(CompiledGraph {
            name: self.name,
            crd,
            spec_schema,
            status_schema,
            order: order_idx.iter().map(|&i| nodes[i].id.clone()).collect(),
            order_idx,
            nodes,
            by_id,
            status_fields,
            status_literals,
            placement_clusters,
            placement_static_clusters,
            placement_selector,
            placement_when,
            placed: self.rgd.spec.placement.is_some(),
            on_deselect: self
                .rgd
                .spec
                .placement
                .as_ref()
                .and_then(|p| p.on_deselect)
                .unwrap_or_default(),
            rollout,
            uses_time,
            quick,
            needs,
        })
    }

    fn parse(&self, src: &str) -> Result<CompiledExpr, crate::expr::ExprError> {
        if let Some(e) = self.parsed.borrow().get(src) {
            return Ok(e.clone());
        }
        let e = CompiledExpr::parse(src)?;
        self.parsed.borrow_mut().insert(src.to_owned(), e.clone());
        Ok(e)
    }

    /// `omit()` only as a whole template field, and never for `metadata.name`.
    fn check_omit(&self, id: &str, fields: &[Field], template: bool) -> Result<(), Error> {
        let resource = (!id.is_empty()).then_some(id);
        for f in fields {
            let standalone = matches!(f.value, FieldValue::Standalone(_));
            for e in f.exprs() {
                if !e.calls(OMIT) {
                    continue;
                }
                if !template || !standalone {
                    return Err(self.invalid(
                        resource,
                        f.display.clone(),
                        Some(e.source()),
                        OMIT_ONLY_IN_FIELDS,
                    ));
                }
                if f.display == "metadata.name" {
                    return Err(self.invalid(
                        resource,
                        f.display.clone(),
                        Some(e.source()),
                        "omit() cannot be used for metadata.name: the field is required and must resolve to a concrete value",
                    ));
                }
            }
        }
        Ok(())
    }

    /// `metadata` must be a map, and must not set kro's own labels or annotations.
    fn check_template_metadata(&self, id: &str, meta: Option<&Value>) -> Result<(), Error> {
        let meta = match meta {
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(self.invalid(
                    Some(id),
                    "metadata",
                    None,
                    "template metadata must be a map",
                ));
            }
            None => {
                return Err(self.invalid(
                    Some(id),
                    "metadata",
                    None,
                    "template must have metadata",
                ));
            }
        };
        for key in ["labels", "annotations"] {
            if let Some(Value::Object(m)) = meta.get(key)
                && let Some(k) = m
                    .keys()
                    .find(|k| RESERVED_METADATA_PREFIXES.iter().any(|p| k.starts_with(p)))
            {
                return Err(self.invalid(
                    Some(id),
                    format!("metadata.{key}"),
                    None,
                    format!(
                        "\"{k}\": {key} with the prefixes {} are reserved for kro",
                        RESERVED_METADATA_PREFIXES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_status(&self, f: &Field, e: &CompiledExpr, env: &TypeEnv) -> Result<Ty, Error> {
        for root in e.roots() {
            if !env.has(root) {
                return Err(self.invalid(None, f.display.clone(), Some(e.source()), format!(
                        "unknown reference \"{root}\": status fields may use schema and resource ids{}",
                        env.suggest(root).map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default()
                    )));
            }
        }
        infer(e.ast(), env)
            .map_err(|err| self.invalid(None, f.display.clone(), Some(e.source()), err.message))
    }

    /// Parses a value that must be exactly one `${...}`.
    fn standalone(&self, id: &str, field: &str, src: &str) -> Result<CompiledExpr, Error> {
        let resource = (!id.is_empty()).then_some(id);
        match scan(src) {
            Ok(Scanned::Standalone(e)) => {
                let expr = self
                    .parse(&e)
                    .map_err(|err| self.invalid(resource, field, Some(&e), err.to_string()))?;
                if expr.calls(OMIT) {
                    return Err(self.invalid(resource, field, Some(&e), OMIT_ONLY_IN_FIELDS));
                }
                Ok(expr)
            }
            Ok(_) => Err(self.invalid(
                resource,
                field,
                None,
                format!("\"{src}\" must be a single ${{...}} expression"),
            )),
            Err(err) => Err(self.invalid(resource, field, None, format!("\"{src}\": {err}"))),
        }
    }

    fn check(
        &self,
        id: &str,
        field: &str,
        expr: &CompiledExpr,
        env: &TypeEnv,
    ) -> Result<Ty, Error> {
        for root in expr.roots() {
            if root == id {
                return Err(Error::Cycle {
                    rgd: self.name.clone(),
                    cycle: vec![id.to_owned(), id.to_owned()],
                });
            }
            if !env.has(root) {
                return Err(self.invalid(Some(id), field, Some(expr.source()), format!(
                        "unknown reference \"{root}\": not schema, cluster, an iterator or a resource id{}",
                        env.suggest(root).map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default()
                    )));
            }
        }
        infer(expr.ast(), env)
            .map_err(|e| self.invalid(Some(id), field, Some(expr.source()), e.message))
    }

    fn collect_fields(
        &self,
        id: &str,
        v: &Value,
        path: &mut Vec<Seg>,
        out: &mut Vec<Field>,
    ) -> Result<(), Error> {
        match v {
            Value::String(s) => {
                let display = display_path(path);
                let scanned = scan(s).map_err(|e| {
                    self.invalid(Some(id), display.clone(), None, format!("\"{s}\": {e}"))
                })?;
                let parse = |src: &str| {
                    self.parse(src).map_err(|e| {
                        self.invalid(Some(id), display.clone(), Some(src), e.to_string())
                    })
                };
                let value = match scanned {
                    Scanned::Literal => return Ok(()),
                    Scanned::Standalone(e) => FieldValue::Standalone(parse(&e)?),
                    Scanned::Template(parts) => FieldValue::Template(
                        parts
                            .into_iter()
                            .map(|p| match p {
                                Part::Text(t) => Ok(TemplatePart::Text(t)),
                                Part::Expr(e) => parse(&e).map(TemplatePart::Expr),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                };
                out.push(Field {
                    path: path.clone(),
                    display,
                    value,
                });
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    self.collect_fields(id, item, path, out)?;
                    path.pop();
                }
            }
            Value::Object(fields) => {
                for (k, item) in fields {
                    path.push(Seg::Key(k.clone()));
                    self.collect_fields(id, item, path, out)?;
                    path.pop();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn collect_status(
        &self,
        v: &Value,
        path: &mut Vec<Seg>,
        out: &mut Vec<Field>,
        literals: &mut Value,
    ) -> Result<(), Error> {
        match v {
            Value::Object(fields) => {
                for (k, item) in fields {
                    path.push(Seg::Key(k.clone()));
                    self.collect_status(item, path, out, literals)?;
                    path.pop();
                }
            }
            Value::Array(items) if items.iter().any(|i| i.to_string().contains("${")) => {
                return Err(self.invalid(
                    None,
                    format!("spec.schema.status.{}", display_path(path)),
                    None,
                    "a status list cannot hold expressions: write one ${...} that returns the list",
                ));
            }
            other => {
                let display = format!("spec.schema.status.{}", display_path(path));
                let before = out.len();
                if let Value::String(_) = other {
                    self.collect_fields("", other, &mut path.clone(), out)
                        .map_err(|e| match e {
                            Error::Invalid { at, message } => Error::Invalid {
                                at: Location {
                                    resource: None,
                                    field: display.clone(),
                                    ..at
                                },
                                message,
                            },
                            e => e,
                        })?;
                }
                if out.len() == before {
                    // A constant status field.
                    set_path(literals, path, other.clone());
                } else if let Some(f) = out.last_mut() {
                    f.display = display;
                }
            }
        }
        Ok(())
    }
}

/// Adds the resources `expr` reads to `out`.
fn collect_deps(expr: &CompiledExpr, ids: &HashMap<&str, usize>, out: &mut BTreeSet<usize>) {
    out.extend(expr.roots().filter_map(|root| ids.get(root).copied()));
}

/// Sets `value` at `path` inside `root`, creating objects on the way.
pub(crate) fn set_path(root: &mut Value, path: &[Seg], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *root = value;
        return;
    };
    let mut cur = root;
    for seg in parents {
        cur = match seg {
            Seg::Key(k) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                match cur.as_object_mut() {
                    Some(m) => m.entry(k.clone()).or_insert(Value::Object(Map::new())),
                    None => return,
                }
            }
            Seg::Index(i) => match cur.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
        };
    }
    match (last, cur) {
        (Seg::Key(k), Value::Object(m)) => {
            m.insert(k.clone(), value);
        }
        (Seg::Index(i), Value::Array(a)) => {
            if let Some(slot) = a.get_mut(*i) {
                *slot = value;
            }
        }
        _ => {}
    }
}

fn insert_schema(props: &mut Map<String, Value>, path: &[Seg], schema: Value) {
    let Some((Seg::Key(first), rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        props.insert(first.clone(), schema);
        return;
    }
    let entry = props
        .entry(first.clone())
        .or_insert_with(|| json!({"type": "object", "properties": {}}));
    if let Some(inner) = entry.get_mut("properties").and_then(Value::as_object_mut) {
        insert_schema(inner, rest, schema);
    }
}

fn literal_schemas(v: &Value, props: &mut Map<String, Value>, path: &mut Vec<Seg>) {
    if let Value::Object(m) = v {
        for (k, item) in m {
            path.push(Seg::Key(k.clone()));
            if item.is_object() {
                literal_schemas(item, props, path);
            } else {
                let ty = match item {
                    Value::Bool(_) => Ty::Bool,
                    Value::Number(n) if n.is_i64() || n.is_u64() => Ty::Int,
                    Value::Number(_) => Ty::Double,
                    Value::String(_) => Ty::String,
                    _ => Ty::Dyn,
                };
                insert_schema(props, path, ty.to_openapi());
            }
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_kind_names_are_the_kinds_with_types() {
        let names: Vec<_> = BUILTIN_KIND_NAMES.iter().collect();
        let typed: Vec<_> = BUILTIN_KINDS.keys().collect();
        assert_eq!(names, typed);
        assert!(names.len() > 30, "{names:?}");
    }
}

//! Rendering and evaluation for the controller and the `render` CLI: each
//! step takes the instance, the objects observed so far and the target
//! cluster, and either produces a result or says which dependencies it
//! waits for.
//!
//! Absent data is never an empty value: a template reading a field its
//! dependency has not reported yet is `Pending` on that dependency, and a
//! status field whose inputs are missing is left out of the status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use cel::Context;
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use serde_json::{Map, Value};

use crate::compile::{
    CLUSTER_VAR, CompiledGraph, Condition, EACH_VAR, Field, FieldValue, MAX_COLLECTION_ITEMS,
    ResourceNode, SCHEMA_VAR, Seg, TemplatePart, set_path,
};
use crate::error::{Error, Location};
use crate::expr::cost::InputBound;
use crate::expr::needs::{Need, Needs};
use crate::expr::time::{TIME_VAR, TimeHandle};
use crate::expr::value::{object_to_val, to_cel, to_json};
use crate::expr::{CompiledExpr, EvalError, library};

/// A variable's JSON with its CEL form and size bound, each computed once
/// and shared by every evaluation that reads it, and by every copy of the
/// context (a controller copies one context per cluster it renders for).
#[derive(Debug, Default)]
struct Var {
    json: Arc<Value>,
    val: OnceLock<Box<dyn Val>>,
    bound: OnceLock<InputBound>,
}

impl Var {
    fn new(json: Value) -> Self {
        Self::shared(Arc::new(json))
    }

    fn shared(json: Arc<Value>) -> Self {
        Self {
            json,
            val: OnceLock::new(),
            bound: OnceLock::new(),
        }
    }

    /// The CEL form, of what `need` says is read when the context knows
    /// its graph (see [`crate::expr::needs`]), else of all of it.
    fn val(&self, need: Option<&Need>) -> &dyn Val {
        self.val
            .get_or_init(|| match need {
                Some(need) => object_to_val(&need.prune(&self.json)),
                None => object_to_val(&self.json),
            })
            .as_ref()
    }

    fn bound(&self) -> InputBound {
        *self.bound.get_or_init(|| {
            let mut b = InputBound::default();
            b.include(&self.json);
            b
        })
    }
}

/// What an evaluation can see.
#[derive(Debug, Clone, Default)]
pub struct EvalContext {
    instance: Arc<Var>,
    observed: BTreeMap<String, Arc<Var>>,
    excluded: BTreeSet<String>,
    cluster: Option<Arc<Var>>,
    time: Option<Arc<Var>>,
    now: Option<std::time::SystemTime>,
    /// The evaluation budget shared by everything evaluated for this
    /// instance (see [`crate::expr::meter`]).
    budget: crate::expr::meter::Budget,
    /// What the graph's expressions read of each variable, once the
    /// context is for one graph ([`EvalContext::for_graph`]).
    needs: Option<Arc<Needs>>,
}

impl VariableResolver for EvalContext {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let var = match variable {
            SCHEMA_VAR => Some(&self.instance),
            CLUSTER_VAR => self.cluster.as_ref(),
            TIME_VAR => self.time.as_ref(),
            id => self.observed.get(id),
        }?;
        let need = self.needs.as_deref().and_then(|n| n.get(variable));
        Some(CowVal::Borrowed(var.val(need)))
    }
}

/// A resolver of one variable alone: `readyWhen` sees its own resource and
/// nothing else, as upstream.
struct OnlyVar<'a> {
    name: &'a str,
    var: &'a Var,
    need: Option<&'a Need>,
}

impl VariableResolver for OnlyVar<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        (variable == self.name).then(|| CowVal::Borrowed(self.var.val(self.need)))
    }
}

/// Finds an input variable's JSON by name, for size estimates.
type Lookup<'a> = crate::expr::size::Lookup<'a>;

impl EvalContext {
    fn observed_or_input(&self, root: &str) -> Option<&Value> {
        self.var(root).map(|v| &*v.json)
    }

    fn var(&self, root: &str) -> Option<&Var> {
        match root {
            SCHEMA_VAR => Some(&self.instance),
            CLUSTER_VAR => self.cluster.as_deref(),
            TIME_VAR => self.time.as_deref(),
            id => self.observed.get(id).map(|v| &**v),
        }
    }
}

impl EvalContext {
    /// A context for `instance` (the whole object: metadata, spec, ...).
    pub fn new(instance: Value) -> Self {
        Self {
            instance: Arc::new(Var::new(instance)),
            ..Self::default()
        }
    }
    /// Evaluates for `graph` alone: each variable is converted for CEL only
    /// as far as the graph's expressions read it (see
    /// [`crate::expr::needs`]). Set it before anything is evaluated: a
    /// variable is converted once, and its copies share the conversion.
    pub fn for_graph(mut self, graph: &CompiledGraph) -> Self {
        self.needs = Some(graph.needs().clone());
        self
    }
    /// Sets the target cluster (`cluster.name`, `cluster.labels`, ...).
    pub fn with_cluster(mut self, cluster: Value) -> Self {
        self.cluster = Some(Arc::new(Var::new(cluster)));
        self
    }
    /// Sets the instant `time.now()` returns (the reconcile's start). Without
    /// it, expressions reading `time` fail: kro-core reads no clock.
    pub fn with_now(mut self, now: std::time::SystemTime) -> Self {
        self.now = Some(now);
        let handle = TimeHandle::at(now);
        let val = OnceLock::new();
        let _ = val.set(handle.to_val());
        self.time = Some(Arc::new(Var {
            json: Arc::new(Value::Null),
            val,
            bound: OnceLock::new(),
        }));
        self
    }

    /// Adds an observed object; for a collection, pass the list of objects.
    pub fn with_observed(mut self, id: impl Into<String>, object: Value) -> Self {
        self.observe(id, object);
        self
    }
    /// Records an observed object (or list, for a collection).
    pub fn observe(&mut self, id: impl Into<String>, object: Value) {
        self.observed.insert(id.into(), Arc::new(Var::new(object)));
    }
    /// Records an observed object the caller keeps too (a controller's
    /// cache), without copying it.
    pub fn observe_shared(&mut self, id: impl Into<String>, object: Arc<Value>) {
        self.observed
            .insert(id.into(), Arc::new(Var::shared(object)));
    }
    /// Records that a resource was excluded by its `includeWhen`: its
    /// dependents are excluded too.
    pub fn exclude(&mut self, id: impl Into<String>) {
        self.excluded.insert(id.into());
    }
    /// Shares `budget` with other contexts of the same instance (by default
    /// each context has its own, of [`crate::expr::meter::MAX_INSTANCE_COST`]).
    pub fn with_budget(mut self, budget: crate::expr::meter::Budget) -> Self {
        self.budget = budget;
        self
    }
    /// The evaluation budget of this instance.
    pub fn budget(&self) -> &crate::expr::meter::Budget {
        &self.budget
    }
    /// The instance.
    pub fn instance(&self) -> &Value {
        &self.instance.json
    }
    /// The observed object(s) of a resource.
    pub fn observed(&self, id: &str) -> Option<&Value> {
        self.observed.get(id).map(|v| &*v.json)
    }
    /// Whether a resource was excluded.
    pub fn is_excluded(&self, id: &str) -> bool {
        self.excluded.contains(id)
    }
}

/// Outcome of `includeWhen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inclusion {
    /// Create it.
    Included,
    /// Skip it (and its dependents), with the reason.
    Excluded(String),
    /// The conditions read resources not observed yet.
    Pending(Vec<String>),
}

/// Outcome of rendering one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderOutcome {
    /// The final objects: one, or one per forEach combination.
    Rendered(Vec<Value>),
    /// Waiting for these dependencies (not observed, or missing a field read).
    Pending(Vec<String>),
}

/// Outcome of `readyWhen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every condition holds.
    Ready,
    /// This condition is false or cannot be evaluated yet (the reason).
    NotReady(String),
    /// The resource has not been observed.
    Pending,
}

/// One resource in a [`RenderReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedResource {
    /// Resource id.
    pub id: String,
    /// Rendered objects (empty when excluded or pending).
    pub objects: Vec<Value>,
    /// Whether it is an externalRef (the objects identify what to read).
    pub external: bool,
    /// Why it is excluded, when it is.
    pub excluded: Option<String>,
    /// Dependencies it waits for, when pending.
    pub pending_on: Vec<String>,
}

/// kro-hub placement of one instance, with its expressions evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPlacement {
    /// Explicit cluster names (`placement.clusters`), when given.
    pub clusters: Option<Vec<String>>,
    /// The label selector over `Cluster` objects, when given.
    pub cluster_selector: Option<Value>,
}

/// Everything one instance renders to, in topological order.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderReport {
    /// Resources in topological order.
    pub resources: Vec<RenderedResource>,
    /// The instance status fields that can be computed.
    pub status: Value,
}

/// Why a scope could not be built.
enum Blocked {
    Pending(Vec<String>),
    Excluded(String),
}

impl CompiledGraph {
    fn at(&self, resource: Option<&str>, field: &str, expr: Option<&CompiledExpr>) -> Location {
        Location {
            rgd: self.name.clone(),
            resource: resource.filter(|r| !r.is_empty()).map(str::to_owned),
            field: field.to_owned(),
            expression: expr.map(|e| e.source().to_owned()),
        }
    }

    fn eval_error(
        &self,
        resource: Option<&str>,
        field: &str,
        expr: &CompiledExpr,
        message: impl ToString,
    ) -> Error {
        Error::Eval {
            at: self.at(resource, field, Some(expr)),
            message: message.to_string(),
        }
    }

    /// `instance` with the spec schema's defaults filled in, as the API
    /// server stores it. Rendering expects a defaulted instance.
    pub fn defaulted(&self, instance: &Value) -> Value {
        let mut out = instance.clone();
        if let Value::Object(m) = &mut out {
            let spec = m.entry("spec").or_insert(Value::Object(Map::new()));
            apply_defaults(&self.spec_schema, spec);
        }
        out
    }

    /// Builds a CEL context holding `roots` (or says what blocks it).
    fn scope<'a>(
        &self,
        roots: &BTreeSet<&str>,
        ctx: &'a EvalContext,
        locals: &[&str],
    ) -> Result<Result<(Context<'a, 'a>, InputBound), Blocked>, Error> {
        let env = library::env().map_err(|e| Error::Eval {
            at: self.at(None, "", None),
            message: e,
        })?;
        let mut bound = InputBound::default();
        let mut pending = Vec::new();
        for &root in roots {
            if locals.contains(&root) {
                continue;
            }
            if root == CLUSTER_VAR && ctx.cluster.is_none() {
                return Err(Error::Eval {
                    at: self.at(None, "", None),
                    message: "`cluster` is only set when rendering for a member cluster (EvalContext::with_cluster)".to_owned(),
                });
            }
            if root == TIME_VAR && ctx.time.is_none() {
                return Err(Error::Eval {
                    at: self.at(None, "", None),
                    message: "time.now() needs the evaluation time (EvalContext::with_now)"
                        .to_owned(),
                });
            }
            if root != SCHEMA_VAR && root != CLUSTER_VAR && ctx.excluded.contains(root) {
                return Ok(Err(Blocked::Excluded(format!(
                    "dependency \"{root}\" is excluded"
                ))));
            }
            match ctx.var(root) {
                Some(v) => bound.merge(v.bound()),
                None => pending.push(root.to_owned()),
            }
        }
        if !pending.is_empty() {
            return Ok(Err(Blocked::Pending(pending)));
        }
        let mut cel_ctx = Context::with_env(env);
        cel_ctx.set_variable_resolver(ctx);
        Ok(Ok((cel_ctx, bound)))
    }

    /// Evaluates `includeWhen` of a resource.
    pub fn include(&self, id: &str, ctx: &EvalContext) -> Result<Inclusion, Error> {
        let _meter = crate::expr::meter::enter(&ctx.budget);
        let node = self.node(id)?;
        if let Some(d) = node.dependencies.iter().find(|d| ctx.excluded.contains(*d)) {
            return Ok(Inclusion::Excluded(format!(
                "dependency \"{d}\" is excluded"
            )));
        }
        if node.include_when.is_empty() {
            return Ok(Inclusion::Included);
        }
        let roots: BTreeSet<&str> = node
            .include_when
            .iter()
            .flat_map(|c| c.expr.roots())
            .collect();
        let (cel_ctx, bound) = match self.scope(&roots, ctx, &[])? {
            Ok(s) => s,
            Err(Blocked::Pending(p)) => return Ok(Inclusion::Pending(p)),
            Err(Blocked::Excluded(r)) => return Ok(Inclusion::Excluded(r)),
        };
        for c in &node.include_when {
            match c
                .expr
                .eval_with(&cel_ctx, &bound, &|n| ctx.observed_or_input(n))
                .map(unwrap_optional_bool)
            {
                Ok(cel::Value::Bool(true)) => {}
                Ok(cel::Value::Bool(false)) => {
                    return Ok(Inclusion::Excluded(format!(
                        "{} ${{{}}} is false",
                        c.field,
                        c.expr.source()
                    )));
                }
                Ok(other) => {
                    return Err(self.eval_error(
                        Some(id),
                        &c.field,
                        &c.expr,
                        format!("includeWhen must return bool, got {}", other.type_of()),
                    ));
                }
                Err(EvalError::NoSuchKey(k)) => {
                    let deps = resource_roots(&c.expr, node);
                    if deps.is_empty() {
                        return Err(self.eval_error(
                            Some(id),
                            &c.field,
                            &c.expr,
                            format!("no such key: {k}"),
                        ));
                    }
                    return Ok(Inclusion::Pending(deps));
                }
                Err(e) => return Err(self.eval_error(Some(id), &c.field, &c.expr, e)),
            }
        }
        Ok(Inclusion::Included)
    }

    /// Renders a resource's object(s), or says which dependencies it waits for.
    pub fn render_resource(&self, id: &str, ctx: &EvalContext) -> Result<RenderOutcome, Error> {
        let _meter = crate::expr::meter::enter(&ctx.budget);
        let node = self.node(id)?;
        let locals: Vec<&str> = node.iterator_names().collect();
        let mut roots: BTreeSet<&str> = node
            .fields
            .iter()
            .flat_map(|f| f.exprs())
            .flat_map(|e| e.roots())
            .collect();
        roots.extend(node.iterators.iter().flat_map(|(_, c)| c.expr.roots()));
        let (cel_ctx, mut bound) = match self.scope(&roots, ctx, &locals)? {
            Ok(s) => s,
            Err(Blocked::Pending(p)) => return Ok(RenderOutcome::Pending(p)),
            Err(Blocked::Excluded(r)) => {
                return Err(Error::Eval {
                    at: self.at(Some(id), "", None),
                    message: format!("cannot render an excluded resource: {r}"),
                });
            }
        };

        if node.iterators.is_empty() {
            let lookup = |n: &str| ctx.observed_or_input(n);
            return match self.render_one(node, &cel_ctx, &bound, &lookup)? {
                Ok(obj) => Ok(RenderOutcome::Rendered(vec![obj])),
                Err(p) => Ok(RenderOutcome::Pending(p)),
            };
        }

        // forEach: evaluate each dimension, then the cartesian product.
        let mut dims: Vec<(&str, Vec<Value>)> = Vec::with_capacity(node.iterators.len());
        for (name, c) in &node.iterators {
            match self.eval_value(node, c, &cel_ctx, &bound, &|n| ctx.observed_or_input(n))? {
                Ok(Some(Value::Array(items))) => dims.push((name.as_str(), items)),
                Ok(Some(other)) => {
                    return Err(self.eval_error(
                        Some(id),
                        &c.field,
                        &c.expr,
                        format!(
                            "forEach expression must return a list, got {}",
                            json_kind(&other)
                        ),
                    ));
                }
                Ok(None) => dims.push((name.as_str(), Vec::new())),
                Err(p) => return Ok(RenderOutcome::Pending(p)),
            }
        }
        let total = dims
            .iter()
            .try_fold(1usize, |acc, (_, items)| acc.checked_mul(items.len()));
        match total {
            Some(t) if t <= MAX_COLLECTION_ITEMS => {}
            _ => {
                return Err(Error::Eval {
                    at: self.at(Some(id), "forEach", None),
                    message: format!("forEach expands to more than {MAX_COLLECTION_ITEMS} objects"),
                });
            }
        }
        for (_, items) in &dims {
            for item in items {
                bound.include(item);
            }
        }
        let mut objects = Vec::new();
        let mut combo = vec![0usize; dims.len()];
        if dims.iter().any(|(_, items)| items.is_empty()) {
            return Ok(RenderOutcome::Rendered(objects));
        }
        loop {
            let mut inner = cel_ctx.new_inner_scope();
            for (d, (name, items)) in dims.iter().enumerate() {
                inner.add_variable_from_value(*name, to_cel(&items[combo[d]]));
            }
            let lookup = |n: &str| {
                dims.iter()
                    .position(|(name, _)| *name == n)
                    .map(|d| &dims[d].1[combo[d]])
                    .or_else(|| ctx.observed_or_input(n))
            };
            match self.render_one(node, &inner, &bound, &lookup)? {
                Ok(obj) => objects.push(obj),
                Err(p) => return Ok(RenderOutcome::Pending(p)),
            }
            // Odometer over the dimensions, last one fastest.
            let mut d = dims.len();
            loop {
                if d == 0 {
                    return Ok(RenderOutcome::Rendered(objects));
                }
                d -= 1;
                combo[d] += 1;
                if combo[d] < dims[d].1.len() {
                    break;
                }
                combo[d] = 0;
            }
        }
    }

    /// Evaluates every field of the template once.
    fn render_one(
        &self,
        node: &ResourceNode,
        cel_ctx: &Context<'_, '_>,
        bound: &InputBound,
        lookup: Lookup<'_>,
    ) -> Result<Result<Value, Vec<String>>, Error> {
        let mut obj = node.template.clone();
        let mut removals: Vec<&[Seg]> = Vec::new();
        for f in &node.fields {
            match self.eval_field(node, f, cel_ctx, bound, lookup)? {
                Ok(Some(v)) => set_path(&mut obj, &f.path, v),
                Ok(None) => removals.push(&f.path),
                Err(p) => return Ok(Err(p)),
            }
        }
        // Remove omitted fields deepest and last first, so indices stay valid.
        removals.sort_by(|a, b| b.cmp(a));
        for path in removals {
            remove_path(&mut obj, path);
        }
        Ok(Ok(obj))
    }

    fn eval_field(
        &self,
        node: &ResourceNode,
        f: &Field,
        cel_ctx: &Context<'_, '_>,
        bound: &InputBound,
        lookup: Lookup<'_>,
    ) -> Result<Result<Option<Value>, Vec<String>>, Error> {
        match &f.value {
            FieldValue::Standalone(e) => {
                self.eval_expr(node, &f.display, e, cel_ctx, bound, lookup)
            }
            FieldValue::Template(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        TemplatePart::Text(t) => s.push_str(t),
                        TemplatePart::Expr(e) => match self.eval_expr(node, &f.display, e, cel_ctx, bound, lookup)? {
                            Ok(Some(v)) => push_scalar(&mut s, v).map_err(|kind| {
                                self.eval_error(Some(&node.id), &f.display, e, format!("an expression inside a string template must return a string, got {kind}"))
                            })?,
                            Ok(None) => {}
                            Err(p) => return Ok(Err(p)),
                        },
                    }
                }
                Ok(Ok(Some(Value::String(s))))
            }
        }
    }

    fn eval_value(
        &self,
        node: &ResourceNode,
        c: &Condition,
        cel_ctx: &Context<'_, '_>,
        bound: &InputBound,
        lookup: Lookup<'_>,
    ) -> Result<Result<Option<Value>, Vec<String>>, Error> {
        self.eval_expr(node, &c.field, &c.expr, cel_ctx, bound, lookup)
    }

    /// One expression to JSON; `Ok(Err(deps))` when it reads data not there yet.
    fn eval_expr(
        &self,
        node: &ResourceNode,
        field: &str,
        e: &CompiledExpr,
        cel_ctx: &Context<'_, '_>,
        bound: &InputBound,
        lookup: Lookup<'_>,
    ) -> Result<Result<Option<Value>, Vec<String>>, Error> {
        match e.eval_with(cel_ctx, bound, lookup) {
            Ok(v) => to_json(&v)
                .map(Ok)
                .map_err(|err| self.eval_error(Some(&node.id), field, e, err)),
            Err(EvalError::NoSuchKey(k)) => {
                let deps = resource_roots(e, node);
                if deps.is_empty() {
                    Err(self.eval_error(
                        Some(&node.id),
                        field,
                        e,
                        format!(
                            "no such key: {k} (use has(), ?. or orValue() for optional fields)"
                        ),
                    ))
                } else {
                    Ok(Err(deps))
                }
            }
            Err(err) => Err(self.eval_error(Some(&node.id), field, e, err)),
        }
    }

    /// Evaluates `readyWhen` against the observed object(s).
    pub fn ready(&self, id: &str, ctx: &EvalContext) -> Result<Readiness, Error> {
        let _meter = crate::expr::meter::enter(&ctx.budget);
        let node = self.node(id)?;
        let Some(observed) = ctx.observed(id) else {
            return Ok(Readiness::Pending);
        };
        if node.ready_when.is_empty() {
            return Ok(Readiness::Ready);
        }
        let env = library::env().map_err(|e| Error::Eval {
            at: self.at(Some(id), "", None),
            message: e,
        })?;
        let items: Vec<&Value> = match (node.is_collection(), observed) {
            (true, Value::Array(items)) => items.iter().collect(),
            (true, other) => vec![other],
            (false, v) => vec![v],
        };
        let var = if node.is_collection() {
            EACH_VAR
        } else {
            node.id.as_str()
        };
        // A single object reads the context's converted copy (made once, and
        // shared with the status fields that read it); a collection's items
        // are converted one by one.
        let single = (!node.is_collection())
            .then(|| ctx.observed.get(id))
            .flatten()
            .map(|cached| OnlyVar {
                name: var,
                var: cached,
                need: ctx.needs.as_deref().and_then(|n| n.get(var)),
            });
        for item in items {
            let mut cel_ctx = Context::with_env(env.clone());
            let bound = match &single {
                Some(only) => {
                    cel_ctx.set_variable_resolver(only);
                    only.var.bound()
                }
                None => {
                    let mut bound = InputBound::default();
                    bound.include(item);
                    cel_ctx.add_variable_from_value(var, to_cel(item));
                    bound
                }
            };
            for c in &node.ready_when {
                match c
                    .expr
                    .eval_with(&cel_ctx, &bound, &|n| (n == var).then_some(item))
                    .map(unwrap_optional_bool)
                {
                    Ok(cel::Value::Bool(true)) => {}
                    Ok(cel::Value::Bool(false)) => {
                        return Ok(Readiness::NotReady(format!(
                            "${{{}}} is false",
                            c.expr.source()
                        )));
                    }
                    Ok(other) => {
                        return Err(self.eval_error(
                            Some(id),
                            &c.field,
                            &c.expr,
                            format!("readyWhen must return bool, got {}", other.type_of()),
                        ));
                    }
                    Err(EvalError::NoSuchKey(k)) => {
                        return Ok(Readiness::NotReady(format!(
                            "${{{}}}: {k} is not set yet",
                            c.expr.source()
                        )));
                    }
                    Err(e) => return Err(self.eval_error(Some(id), &c.field, &c.expr, e)),
                }
            }
        }
        Ok(Readiness::Ready)
    }

    /// The instance's status fields that can be computed now; fields whose
    /// inputs are not observed (or lack the field read) are left out.
    pub fn status(&self, ctx: &EvalContext) -> Result<Value, Error> {
        let _meter = crate::expr::meter::enter(&ctx.budget);
        let mut out = self.status_literals.clone();
        let env = library::env().map_err(|e| Error::Eval {
            at: self.at(None, "spec.schema.status", None),
            message: e,
        })?;
        // One context for every field: the union of what they read that exists.
        let all_roots: BTreeSet<&str> = self
            .status_fields
            .iter()
            .flat_map(|f| f.exprs())
            .flat_map(|e| e.roots())
            .collect();
        let mut cel_ctx = Context::with_env(env);
        cel_ctx.set_variable_resolver(ctx);
        let mut bound = InputBound::default();
        let mut available: BTreeSet<&str> = BTreeSet::new();
        for root in all_roots {
            let excluded = root != SCHEMA_VAR && root != CLUSTER_VAR && ctx.excluded.contains(root);
            if let Some(v) = ctx.var(root).filter(|_| !excluded) {
                bound.merge(v.bound());
                available.insert(root);
            }
        }
        for f in &self.status_fields {
            if !f
                .exprs()
                .into_iter()
                .flat_map(|e| e.roots())
                .all(|r| available.contains(r))
            {
                continue;
            }
            let mut value = None;
            let mut missing = false;
            match &f.value {
                FieldValue::Standalone(e) => {
                    match e.eval_with(&cel_ctx, &bound, &|n| ctx.observed_or_input(n)) {
                        Ok(v) => {
                            value = to_json(&v)
                                .map_err(|err| self.eval_error(None, &f.display, e, err))?
                        }
                        Err(EvalError::NoSuchKey(_)) => missing = true,
                        Err(err) => return Err(self.eval_error(None, &f.display, e, err)),
                    }
                }
                FieldValue::Template(ps) => {
                    let mut s = String::new();
                    for p in ps {
                        match p {
                            TemplatePart::Text(t) => s.push_str(t),
                            TemplatePart::Expr(e) => match e.eval_with(&cel_ctx, &bound, &|n| ctx.observed_or_input(n)) {
                                Ok(v) => match to_json(&v) {
                                    Ok(Some(j)) => push_scalar(&mut s, j).map_err(|kind| self.eval_error(None, &f.display, e, format!("an expression inside a string template must return a string, got {kind}")))?,
                                    Ok(None) => {}
                                    Err(err) => return Err(self.eval_error(None, &f.display, e, err)),
                                },
                                Err(EvalError::NoSuchKey(_)) => missing = true,
                                Err(err) => return Err(self.eval_error(None, &f.display, e, err)),
                            },
                        }
                    }
                    value = Some(Value::String(s));
                }
            }
            if missing {
                continue;
            }
            if let Some(v) = value {
                set_path(&mut out, &f.path, v);
            }
        }
        Ok(out)
    }

    /// The `placement.clusters` expression's value, when the RGD uses one.
    pub fn placement_clusters(&self, ctx: &EvalContext) -> Result<Option<Vec<String>>, Error> {
        let _meter = crate::expr::meter::enter(&ctx.budget);
        self.placement_clusters_value(ctx)
    }

    fn placement_clusters_value(&self, ctx: &EvalContext) -> Result<Option<Vec<String>>, Error> {
        let Some(c) = &self.placement_clusters else {
            return Ok(None);
        };
        let v = self
            .eval_placement(c, ctx)?
            .map_err(|e| self.eval_error(None, &c.field, &c.expr, e))?;
        match to_json(&v) {
            Ok(Some(Value::Array(items))) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    other => Err(self.eval_error(
                        None,
                        &c.field,
                        &c.expr,
                        format!("cluster names must be strings, got {}", json_kind(&other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Ok(_) => Err(self.eval_error(
                None,
                &c.field,
                &c.expr,
                "clusters must be a list of strings",
            )),
            Err(e) => Err(self.eval_error(None, &c.field, &c.expr, e)),
        }
    }

    /// Evaluates one of the placement's standalone expressions over the
    /// instance (and the cluster, when `ctx` binds one). The outer `Err` is
    /// an environment failure, the inner one the evaluation's.
    fn eval_placement(
        &self,
        c: &Condition,
        ctx: &EvalContext,
    ) -> Result<Result<cel::Value, EvalError>, Error> {
        let env = library::env().map_err(|e| Error::Eval {
            at: self.at(None, &c.field, Some(&c.expr)),
            message: e,
        })?;
        let mut cel_ctx = Context::with_env(env);
        cel_ctx.set_variable_resolver(ctx);
        let bound = ctx.instance.bound();
        Ok(c.expr
            .eval_with(&cel_ctx, &bound, &|n| ctx.observed_or_input(n)))
    }

    /// Whether the RGD has a `placement`: its instances go to member
    /// clusters rather than the hub.
    pub fn is_placed(&self) -> bool {
        self.placed
    }

    /// `placement.onDeselect`.
    pub fn on_deselect(&self) -> crate::rgd::OnDeselect {
        self.on_deselect
    }

    /// `spec.rollout`, validated; `None`: every cluster at once.
    pub fn rollout(&self) -> Option<&crate::rollout::RolloutPolicy> {
        self.rollout.as_ref()
    }

    /// Whether `placement.when` keeps the cluster bound in `ctx` (set with
    /// [`EvalContext::with_cluster`]) for this instance; `true` without one.
    pub fn placement_when(&self, ctx: &EvalContext) -> Result<bool, Error> {
        let _meter = crate::expr::meter::enter(&ctx.budget);
        let Some(c) = &self.placement_when else {
            return Ok(true);
        };
        match self.eval_placement(c, ctx)?.map(unwrap_optional_bool) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(self.eval_error(
                None,
                &c.field,
                &c.expr,
                format!("placement.when must return bool, got {}", other.type_of()),
            )),
            Err(e) => Err(self.eval_error(None, &c.field, &c.expr, e)),
        }
    }

    /// The next instant at which an expression reading `time.now()` may
    /// change its result (a time gate opening), so the controller can
    /// requeue exactly then; `None` when nothing will change by the clock
    /// alone. Needs [`EvalContext::with_now`].
    pub fn next_time_change(&self, ctx: &EvalContext) -> Option<std::time::SystemTime> {
        use crate::expr::flip::{seconds_until_flip, time_comparisons};
        if !self.uses_time {
            return None;
        }
        let now = ctx.now?;
        let later_ctx = ctx
            .clone()
            .with_now(now + std::time::Duration::from_secs(1));
        let env = library::env().ok()?;
        let mut at_now = Context::with_env(env.clone());
        at_now.set_variable_resolver(ctx);
        let mut at_later = Context::with_env(env);
        at_later.set_variable_resolver(&later_ctx);
        let exprs = self
            .nodes
            .iter()
            .flat_map(|n| {
                n.fields
                    .iter()
                    .flat_map(Field::exprs)
                    .chain(n.include_when.iter().map(|c| &c.expr))
                    .chain(n.ready_when.iter().map(|c| &c.expr))
                    .chain(n.iterators.iter().map(|(_, c)| &c.expr))
            })
            .chain(self.status_fields.iter().flat_map(Field::exprs));
        exprs
            .flat_map(|e| time_comparisons(e.ast()))
            .filter_map(|(l, r)| seconds_until_flip(l, r, &at_now, &at_later))
            .fold(None, |best: Option<f64>, d| {
                Some(best.map_or(d, |b| b.min(d)))
            })
            // Just past the crossing, so a strict comparison has flipped.
            .and_then(|secs| now.checked_add(std::time::Duration::from_secs_f64(secs + 0.001)))
    }

    /// The placement when it is the same for every instance: no `${...}`
    /// in `clusters` or `clusterSelector` (`placement.when` may still drop
    /// clusters per instance, so this selects a superset). What a
    /// controller can act on before it has read any instance; `None` when
    /// the RGD has no placement or computes it per instance.
    pub fn static_placement(&self) -> Option<ResolvedPlacement> {
        if !self.placed || self.placement_clusters.is_some() {
            return None;
        }
        let cluster_selector = match &self.placement_selector {
            None => None,
            Some((selector, fields)) if fields.is_empty() => Some(selector.clone()),
            Some(_) => return None,
        };
        Some(ResolvedPlacement {
            clusters: self.placement_static_clusters.clone(),
            cluster_selector,
        })
    }

    /// kro-hub placement with its `${...}` evaluated over the instance:
    /// `None` when the RGD has no placement (the hub's own cluster).
    pub fn placement(&self, ctx: &EvalContext) -> Result<Option<ResolvedPlacement>, Error> {
        let _meter = crate::expr::meter::enter(&ctx.budget);
        // No placement: the hub's own cluster. A placement naming neither
        // clusters nor a selector selects every member, as a propagation
        // policy without affinity does.
        if !self.placed {
            return Ok(None);
        }
        let clusters = match self.placement_clusters_value(ctx)? {
            Some(c) => Some(c),
            None => self.placement_static_clusters.clone(),
        };
        let cluster_selector = match &self.placement_selector {
            None => None,
            Some((template, fields)) => {
                let env = library::env().map_err(|e| Error::Eval {
                    at: self.at(None, "spec.placement.clusterSelector", None),
                    message: e,
                })?;
                let mut cel_ctx = Context::with_env(env);
                cel_ctx.set_variable_resolver(ctx);
                let bound = ctx.instance.bound();
                let lookup = |n: &str| ctx.observed_or_input(n);
                let mut sel = template.clone();
                for f in fields {
                    let whole = match &f.value {
                        FieldValue::Standalone(e) => {
                            let v = e
                                .eval_with(&cel_ctx, &bound, &lookup)
                                .map_err(|err| self.eval_error(None, &f.display, e, err))?;
                            to_json(&v).map_err(|err| self.eval_error(None, &f.display, e, err))?
                        }
                        FieldValue::Template(parts) => {
                            let mut text = String::new();
                            for p in parts {
                                match p {
                                    TemplatePart::Text(t) => text.push_str(t),
                                    TemplatePart::Expr(e) => {
                                        let v = e.eval_with(&cel_ctx, &bound, &lookup).map_err(
                                            |err| self.eval_error(None, &f.display, e, err),
                                        )?;
                                        if let Some(j) = to_json(&v).map_err(|err| {
                                            self.eval_error(None, &f.display, e, err)
                                        })? {
                                            push_scalar(&mut text, j).map_err(|kind| {
                                                self.eval_error(None, &f.display, e, format!("an expression inside a string template must return a string, got {kind}"))
                                            })?;
                                        }
                                    }
                                }
                            }
                            Some(Value::String(text))
                        }
                    };
                    match whole {
                        Some(v) => set_path(&mut sel, &f.path, v),
                        None => remove_path(&mut sel, &f.path),
                    }
                }
                Some(sel)
            }
        };
        Ok(Some(ResolvedPlacement {
            clusters,
            cluster_selector,
        }))
    }

    /// Renders every resource as a dry run: the defaulted instance, the
    /// observed objects in `ctx`, and for resources not observed, what they
    /// render to (so dependents can read their spec). Status fields reading
    /// what no object reports yet are left out.
    pub fn render_all(&self, ctx: &EvalContext) -> Result<RenderReport, Error> {
        let mut ctx = EvalContext {
            instance: Arc::new(Var::new(self.defaulted(&ctx.instance.json))),
            observed: ctx.observed.clone(),
            excluded: ctx.excluded.clone(),
            cluster: ctx.cluster.clone(),
            time: ctx.time.clone(),
            now: ctx.now,
            budget: ctx.budget.clone(),
            needs: Some(self.needs.clone()),
        };
        let mut resources = Vec::with_capacity(self.nodes.len());
        for node in self.resources() {
            let id = node.id.as_str();
            let mut entry = RenderedResource {
                id: id.to_owned(),
                objects: Vec::new(),
                external: node.external,
                excluded: None,
                pending_on: Vec::new(),
            };
            match self.include(id, &ctx)? {
                Inclusion::Included => {}
                Inclusion::Excluded(reason) => {
                    ctx.exclude(id);
                    entry.excluded = Some(reason);
                    resources.push(entry);
                    continue;
                }
                Inclusion::Pending(p) => {
                    entry.pending_on = p;
                    resources.push(entry);
                    continue;
                }
            }
            match self.render_resource(id, &ctx)? {
                RenderOutcome::Rendered(objs) => {
                    if !ctx.observed.contains_key(id) && !node.external {
                        let as_observed = if node.is_collection() {
                            Value::Array(objs.clone())
                        } else {
                            objs.first().cloned().unwrap_or(Value::Null)
                        };
                        ctx.observe(id, as_observed);
                    }
                    entry.objects = objs;
                }
                RenderOutcome::Pending(p) => entry.pending_on = p,
            }
            resources.push(entry);
        }
        let status = self.status(&ctx)?;
        Ok(RenderReport { resources, status })
    }
}

/// Conditions may return `optional(bool)`: an empty one counts as false.
fn unwrap_optional_bool(v: cel::Value) -> cel::Value {
    match crate::expr::value::optional_inner(&v) {
        Some(Some(inner)) => inner.clone(),
        Some(None) => cel::Value::Bool(false),
        None => v,
    }
}

/// The resource ids (not schema, cluster or iterators) an expression reads.
fn resource_roots(e: &CompiledExpr, node: &ResourceNode) -> Vec<String> {
    e.roots()
        .filter(|r| {
            *r != SCHEMA_VAR && *r != CLUSTER_VAR && !node.iterator_names().any(|n| n == *r)
        })
        .map(str::to_owned)
        .collect()
}

/// Appends a scalar to a string template; `dyn` values that turn out to be
/// numbers or booleans are written as CEL's `string()` would.
fn push_scalar(s: &mut String, v: Value) -> Result<(), &'static str> {
    match v {
        Value::String(x) => s.push_str(&x),
        Value::Number(n) => s.push_str(&n.to_string()),
        Value::Bool(b) => s.push_str(if b { "true" } else { "false" }),
        other => return Err(json_kind(&other)),
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "double",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn remove_path(root: &mut Value, path: &[Seg]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = root;
    for seg in parents {
        let next = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str()),
            Seg::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match (last, cur) {
        (Seg::Key(k), Value::Object(m)) => {
            m.shift_remove(k.as_str());
        }
        (Seg::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

/// Fills in defaults the way the API server does: a missing property with a
/// default gets it, then objects (present or defaulted) are descended into.
fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if !m.contains_key(k)
                        && let Some(d) = s.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(k) {
                        apply_defaults(s, child);
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    apply_defaults(ap, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for item in items {
                    apply_defaults(s, item);
                }
            }
        }
        _ => {}
    }
}

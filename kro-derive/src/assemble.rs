//! Assembling the RGD from the spec struct, its status struct, the custom
//! types they use and the resource attributes, remembering which tokens
//! produced which part so engine errors can point back at them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proc_macro2::Span;
use serde_json::{Map, Value, json};
use syn::{LitStr, Path};

use crate::attrs::{ClustersAttr, FieldDef, Item, Literal, PlacementAttr, PlacementFields, Shape};
use crate::types::{FieldTy, Ty, classify, custom_name};

/// Parts of the RGD by path (`spec.schema.spec.replicas`,
/// `resource:deployment`, ...) and the span that produced each.
#[derive(Default)]
pub(crate) struct SpanMap {
    entries: Vec<(String, Span)>,
}

impl SpanMap {
    fn add(&mut self, key: impl Into<String>, span: Span) {
        self.entries.push((key.into(), span));
    }

    /// The span of the longest key that `path` starts with (at a `.`, `[`
    /// or `:` boundary).
    pub fn find(&self, path: &str) -> Option<Span> {
        self.entries
            .iter()
            .filter(|(k, _)| {
                path == k
                    || path.strip_prefix(k.as_str()).is_some_and(|rest| {
                        k.ends_with(':') || rest.starts_with(['.', '[', ':', '#'])
                    })
            })
            .max_by_key(|(k, _)| k.len())
            .map(|(_, s)| *s)
    }
}

pub(crate) struct Assembled {
    pub rgd: Value,
    pub spans: SpanMap,
    /// Template files read, absolute, to be tracked for rebuilds.
    pub files: Vec<String>,
    pub kind: String,
}

struct Ctx<'a> {
    items: &'a BTreeMap<String, &'a Item>,
    spans: SpanMap,
    types: Map<String, Value>,
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn number(lit: &Literal) -> syn::Result<String> {
    match &lit.lit {
        syn::Lit::Int(_) | syn::Lit::Float(_) => lit.raw(),
        other => Err(syn::Error::new(other.span(), "expected a number")),
    }
}

/// Finds the first custom type reachable from the spec and status that the
/// payload lacks.
pub(crate) fn first_missing(spec: &Item, items: &BTreeMap<String, &Item>) -> Option<Path> {
    let mut stack: Vec<&Item> = vec![spec];
    if let Some(status) = &spec.graph.status {
        match items.get(&custom_name(status)) {
            Some(item) => stack.push(item),
            None => return Some(status.clone()),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(item) = stack.pop() {
        if !seen.insert(item.ident.to_string()) {
            continue;
        }
        let Shape::Struct(fields) = &item.shape else {
            continue;
        };
        // Status fields computed by an expression have free-form types.
        for f in fields.iter().filter(|f| f.attrs.expr.is_none()) {
            let Ok(FieldTy { ty, .. }) = classify(&f.ty) else {
                continue;
            };
            let mut ty = &ty;
            while let Ty::List(inner) | Ty::Map(inner) = ty {
                ty = inner;
            }
            if let Ty::Custom(path) = ty {
                match items.get(&custom_name(path)) {
                    Some(found) => stack.push(found),
                    None => return Some(path.clone()),
                }
            }
        }
    }
    None
}

impl<'a> Ctx<'a> {
    fn resolve(&self, path: &Path) -> syn::Result<&'a Item> {
        self.items.get(&custom_name(path)).copied().ok_or_else(|| {
            syn::Error::new_spanned(path, "type not found among the kro-derived types")
        })
    }

    /// The type text for a field type, collecting custom struct types.
    fn type_text(&mut self, ty: &Ty) -> syn::Result<(String, Option<Vec<String>>)> {
        Ok(match ty {
            Ty::Scalar(s) => ((*s).to_owned(), None),
            Ty::List(inner) => (format!("[]{}", self.type_text(inner)?.0), None),
            Ty::Map(inner) => (format!("map[string]{}", self.type_text(inner)?.0), None),
            Ty::Custom(path) => {
                let item = self.resolve(path)?;
                match &item.shape {
                    Shape::Enum(variants) => ("string".to_owned(), Some(variants.clone())),
                    Shape::Struct(fields) => {
                        let name = item.ident.to_string();
                        if !self.types.contains_key(&name) {
                            // Reserve the name first: recursive types terminate.
                            self.types.insert(name.clone(), Value::Null);
                            let schema =
                                self.struct_schema(fields, &format!("spec.schema.types.{name}"))?;
                            self.types.insert(name.clone(), schema);
                        }
                        (name, None)
                    }
                }
            }
        })
    }

    fn struct_schema(&mut self, fields: &[FieldDef], at: &str) -> syn::Result<Value> {
        let mut out = Map::new();
        for f in fields {
            let path = format!("{at}.{}", f.name);
            self.spans.add(path.clone(), f.ident.span());
            if let Some(d) = &f.attrs.default {
                self.spans.add(format!("{path}#default"), d.span());
            }
            if let Some(e) = &f.attrs.expr {
                return Err(syn::Error::new(
                    e.span(),
                    "expr is for status fields (a #[derive(ResourceStatus)] struct)",
                ));
            }
            if f.attrs.inline {
                out.insert(f.name.clone(), self.inline_object(f, &path)?);
                continue;
            }
            out.insert(f.name.clone(), Value::String(self.field_text(f)?));
        }
        Ok(Value::Object(out))
    }

    /// A struct field as a nested SimpleSchema object. Nested objects carry
    /// no markers, so only the bare attribute is allowed.
    fn inline_object(&mut self, f: &FieldDef, path: &str) -> syn::Result<Value> {
        let a = &f.attrs;
        let has_markers = a.has_markers();
        let span = a.span.unwrap_or_else(|| f.ident.span());
        if has_markers {
            return Err(syn::Error::new(
                span,
                "inline objects take no markers (SimpleSchema nested objects have none)",
            ));
        }
        let nested = match classify(&f.ty)?.ty {
            Ty::Custom(p) => self.resolve(&p)?,
            _ => return Err(syn::Error::new(span, "inline needs a struct type")),
        };
        match &nested.shape {
            Shape::Struct(fields) => self.struct_schema(fields, path),
            Shape::Enum(_) => Err(syn::Error::new(span, "inline needs a struct type")),
        }
    }

    fn field_text(&mut self, f: &FieldDef) -> syn::Result<String> {
        let FieldTy { ty, optional } = classify(&f.ty)?;
        let (type_text, enum_values) = self.type_text(&ty)?;
        let a = &f.attrs;
        let mut markers = Vec::new();
        let required = a
            .required
            .unwrap_or(!optional && a.default.is_none() && !f.serde_default);
        if required {
            markers.push("required=true".to_owned());
        }
        if let Some(d) = &a.default {
            check_default_literal(d, &type_text)?;
            let text = match (&d.lit, type_text.as_str()) {
                (syn::Lit::Str(s), "string") => quoted(&s.value()),
                (syn::Lit::Str(s), _) if s.value().starts_with(['[', '{']) => s.value(),
                (syn::Lit::Str(s), _) => quoted(&s.value()),
                _ => d.raw()?,
            };
            markers.push(format!("default={text}"));
        }
        let description = a
            .description
            .as_ref()
            .map(LitStr::value)
            .or_else(|| f.doc.clone());
        if let Some(d) = description {
            markers.push(format!("description={}", quoted(&d)));
        }
        if let Some(m) = &a.minimum {
            markers.push(format!("minimum={}", number(m)?));
        }
        if let Some(m) = &a.maximum {
            markers.push(format!("maximum={}", number(m)?));
        }
        match (&a.enum_values, enum_values) {
            (Some(e), _) => markers.push(format!("enum={}", quoted(&e.value()))),
            (None, Some(vs)) => markers.push(format!("enum={}", quoted(&vs.join(",")))),
            (None, None) => {}
        }
        if a.immutable {
            markers.push("immutable=true".to_owned());
        }
        if let Some(p) = &a.pattern {
            markers.push(format!("pattern={}", quoted(&p.value())));
        }
        if a.unique_items {
            markers.push("uniqueItems=true".to_owned());
        }
        for (name, v) in [
            ("minLength", &a.min_length),
            ("maxLength", &a.max_length),
            ("minItems", &a.min_items),
            ("maxItems", &a.max_items),
        ] {
            if let Some(v) = v {
                markers.push(format!("{name}={}", number(v)?));
            }
        }
        if let Some(v) = &a.validation {
            markers.push(format!("validation={}", quoted(&v.value())));
        }
        Ok(if markers.is_empty() {
            type_text
        } else {
            format!("{type_text} | {}", markers.join(" "))
        })
    }

    fn status_schema(&mut self, item: &Item, at: &str) -> syn::Result<Value> {
        let Shape::Struct(fields) = &item.shape else {
            return Err(syn::Error::new_spanned(
                &item.ident,
                "the status type must be a struct",
            ));
        };
        let mut out = Map::new();
        for f in fields {
            let path = format!("{at}.{}", f.name);
            if f.attrs.has_markers() || f.attrs.inline {
                return Err(syn::Error::new(
                    f.attrs.span.unwrap_or_else(|| f.ident.span()),
                    "status fields take only expr = \"${...}\"; SimpleSchema markers are for spec fields",
                ));
            }
            let value = match &f.attrs.expr {
                Some(e) => {
                    self.spans.add(path.clone(), e.span());
                    Value::String(e.value())
                }
                None => {
                    let nested = match classify(&f.ty)?.ty {
                        Ty::Custom(p) => self.resolve(&p)?,
                        _ => {
                            return Err(syn::Error::new(
                                f.ident.span(),
                                "status fields need #[kro(expr = \"${...}\")], or a struct type deriving ResourceStatus",
                            ));
                        }
                    };
                    self.spans.add(path.clone(), f.ident.span());
                    self.status_schema(nested, &path)?
                }
            };
            out.insert(f.name.clone(), value);
        }
        Ok(Value::Object(out))
    }
}

/// A default literal of the wrong kind for a scalar field, caught before
/// the engine so the message names the Rust literal.
fn check_default_literal(d: &Literal, type_text: &str) -> syn::Result<()> {
    let fits = match (type_text, &d.lit) {
        ("string", syn::Lit::Str(_)) => true,
        ("integer", syn::Lit::Int(_)) => true,
        ("float", syn::Lit::Int(_) | syn::Lit::Float(_)) => true,
        ("boolean", syn::Lit::Bool(_)) => true,
        ("string" | "integer" | "float" | "boolean", _) => false,
        // Lists, maps and objects take their default as JSON text.
        _ => true,
    };
    if fits {
        return Ok(());
    }
    let shown = d.raw().unwrap_or_default();
    Err(syn::Error::new(
        d.span(),
        format!("kro: default {shown:?} does not fit the field's type {type_text}"),
    ))
}

fn yaml(lit: &LitStr, what: &str, text: &str) -> syn::Result<Value> {
    let mut docs = kro_core::parse_yaml_documents(text)
        .map_err(|e| syn::Error::new(lit.span(), format!("{what}: {e}")))?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        n => Err(syn::Error::new(
            lit.span(),
            format!("{what}: expected one YAML document, found {n}"),
        )),
    }
}

/// `spec.placement` from the structured `placement(...)` form, noting
/// the span of each part so the engine's errors point at it.
fn placement(p: &PlacementFields, spans: &mut SpanMap) -> syn::Result<Value> {
    spans.add("spec.placement", p.span);
    let mut out = Map::new();
    if let Some(sel) = &p.cluster_selector {
        let parsed = crate::selector::parse(&sel.value())
            .map_err(|e| syn::Error::new(sel.span(), format!("cluster_selector: {e}")))?;
        spans.add("spec.placement.clusterSelector", sel.span());
        out.insert("clusterSelector".into(), parsed);
    }
    match &p.clusters {
        Some(ClustersAttr::Names(names, span)) => {
            spans.add("spec.placement.clusters", *span);
            out.insert(
                "clusters".into(),
                json!(names.iter().map(LitStr::value).collect::<Vec<_>>()),
            );
        }
        Some(ClustersAttr::Expr(e)) => {
            spans.add("spec.placement.clusters", e.span());
            out.insert("clusters".into(), json!(e.value()));
        }
        None => {}
    }
    if let Some(w) = &p.when {
        spans.add("spec.placement.when", w.span());
        out.insert("when".into(), json!(w.value()));
    }
    if let Some(d) = &p.on_deselect {
        let v = d.value();
        if v != "Delete" && v != "Orphan" {
            return Err(syn::Error::new(
                d.span(),
                "on_deselect is \"Delete\" (the default) or \"Orphan\"",
            ));
        }
        out.insert("onDeselect".into(), json!(v));
    }
    Ok(Value::Object(out))
}

/// Default kind: the spec struct's name without its `Spec` suffix.
fn kind_of(spec: &Item) -> String {
    spec.graph.kind.as_ref().map_or_else(
        || {
            let name = spec.ident.to_string();
            name.strip_suffix("Spec").unwrap_or(&name).to_owned()
        },
        LitStr::value,
    )
}

/// `WebApp` -> `web-app`.
fn kebab(kind: &str) -> String {
    let mut out = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Builds the RGD from the payload. `manifest_dir` is where template paths
/// are relative to.
pub(crate) fn assemble(
    spec: &Item,
    items: &BTreeMap<String, &Item>,
    manifest_dir: &std::path::Path,
) -> syn::Result<Assembled> {
    let g = &spec.graph;
    let Shape::Struct(fields) = &spec.shape else {
        return Err(syn::Error::new_spanned(
            &spec.ident,
            "#[derive(ResourceGraph)] goes on the spec struct",
        ));
    };
    if spec.has_generics {
        return Err(syn::Error::new_spanned(
            &spec.ident,
            "#[derive(ResourceGraph)] does not support generic spec structs",
        ));
    }
    let mut ctx = Ctx {
        items,
        spans: SpanMap::default(),
        types: Map::new(),
    };
    ctx.spans.add("", spec.ident.span());
    let kind = kind_of(spec);
    let name = g.rgd.as_ref().map_or_else(|| kebab(&kind), LitStr::value);

    let spec_schema = ctx.struct_schema(fields, "spec.schema.spec")?;
    let status_schema = match &g.status {
        Some(p) => {
            let item = ctx.resolve(p)?;
            ctx.spans
                .add("spec.schema.status", p.segments[0].ident.span());
            Some(ctx.status_schema(item, "spec.schema.status")?)
        }
        None => None,
    };

    let mut schema = Map::new();
    schema.insert(
        "apiVersion".into(),
        json!(
            g.version
                .as_ref()
                .map_or_else(|| "v1alpha1".to_owned(), LitStr::value)
        ),
    );
    schema.insert("kind".into(), json!(kind));
    if let Some(group) = &g.group {
        ctx.spans.add("spec.schema.group", group.span());
        schema.insert("group".into(), json!(group.value()));
    }
    if let Some(scope) = &g.scope {
        let v = scope.value();
        if v != "Namespaced" && v != "Cluster" {
            return Err(syn::Error::new(
                scope.span(),
                "scope is \"Namespaced\" or \"Cluster\"",
            ));
        }
        schema.insert("scope".into(), json!(v));
    }
    if let Some(plural) = &g.plural {
        schema.insert("plural".into(), json!(plural.value()));
    }
    if !g.short_names.is_empty() {
        schema.insert(
            "shortNames".into(),
            json!(g.short_names.iter().map(LitStr::value).collect::<Vec<_>>()),
        );
    }
    if !g.categories.is_empty() {
        schema.insert(
            "categories".into(),
            json!(g.categories.iter().map(LitStr::value).collect::<Vec<_>>()),
        );
    }
    if !ctx.types.is_empty() {
        schema.insert(
            "types".into(),
            Value::Object(std::mem::take(&mut ctx.types)),
        );
    }
    schema.insert("spec".into(), spec_schema);
    if let Some(status) = status_schema {
        schema.insert("status".into(), status);
    }
    if !g.validations.is_empty() {
        let mut rules = Vec::new();
        for (i, v) in g.validations.iter().enumerate() {
            ctx.spans
                .add(format!("spec.schema.validation[{i}]"), v.expression.span());
            let mut rule = json!({"expression": v.expression.value()});
            if let Some(m) = &v.message {
                rule["message"] = json!(m.value());
            }
            rules.push(rule);
        }
        schema.insert("validation".into(), Value::Array(rules));
    }
    if !g.printer_columns.is_empty() {
        let mut cols = Vec::new();
        for c in &g.printer_columns {
            let mut col = json!({
                "name": c.name.value(),
                "type": c.type_.value(),
                "jsonPath": c.json_path.value(),
            });
            if let Some(d) = &c.description {
                col["description"] = json!(d.value());
            }
            if let Some(p) = &c.priority {
                col["priority"] = serde_json::from_str(&number(p)?).unwrap_or(Value::Null);
            }
            cols.push(col);
        }
        schema.insert("additionalPrinterColumns".into(), Value::Array(cols));
    }

    let mut files = Vec::new();
    let mut resources = Vec::new();
    for r in &g.resources {
        let id = r.id.value();
        ctx.spans.add(format!("resource:{id}"), r.id.span());
        let mut res = Map::new();
        res.insert("id".into(), json!(id));
        for (k, w) in r.ready_when.iter().enumerate() {
            ctx.spans
                .add(format!("resource:{id}:readyWhen[{k}]"), w.span());
        }
        for (k, w) in r.include_when.iter().enumerate() {
            ctx.spans
                .add(format!("resource:{id}:includeWhen[{k}]"), w.span());
        }
        if !r.ready_when.is_empty() {
            res.insert(
                "readyWhen".into(),
                json!(r.ready_when.iter().map(LitStr::value).collect::<Vec<_>>()),
            );
        }
        if !r.include_when.is_empty() {
            res.insert(
                "includeWhen".into(),
                json!(r.include_when.iter().map(LitStr::value).collect::<Vec<_>>()),
            );
        }
        if !r.for_each.is_empty() {
            let mut dims = Vec::new();
            for (d, (name, expr)) in r.for_each.iter().enumerate() {
                ctx.spans
                    .add(format!("resource:{id}:forEach[{d}]"), expr.span());
                dims.push(json!({ name.to_string(): expr.value() }));
            }
            res.insert("forEach".into(), Value::Array(dims));
        }
        if let Some(t) = &r.target {
            let v = t.value();
            if v != "Hub" && v != "Members" {
                return Err(syn::Error::new(
                    t.span(),
                    "target is \"Hub\" (applied once, on the hub) or \"Members\" (on every selected member cluster, the default)",
                ));
            }
            // The engine reports a hub resource reading a member resource
            // at the resource's `target`.
            ctx.spans.add(format!("resource:{id}:target"), t.span());
            res.insert("target".into(), json!(v));
        }
        if let Some(file) = &r.template {
            let path: PathBuf = manifest_dir.join(file.value());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                syn::Error::new(
                    file.span(),
                    format!("cannot read template {}: {e}", path.display()),
                )
            })?;
            ctx.spans.add(format!("resource:{id}:"), file.span());
            res.insert("template".into(), yaml(file, "template", &text)?);
            files.push(path.display().to_string());
        } else if let Some(inline) = &r.inline {
            ctx.spans.add(format!("resource:{id}:"), inline.span());
            res.insert(
                "template".into(),
                yaml(inline, "inline template", &inline.value())?,
            );
        } else if let Some(ext) = &r.external_ref {
            ctx.spans.add(format!("resource:{id}:"), ext.span());
            res.insert(
                "externalRef".into(),
                yaml(ext, "external_ref", &ext.value())?,
            );
        }
        resources.push(Value::Object(res));
    }

    let mut rgd_spec = Map::new();
    rgd_spec.insert("schema".into(), Value::Object(schema));
    if !resources.is_empty() {
        rgd_spec.insert("resources".into(), Value::Array(resources));
    }
    match &g.placement {
        Some(PlacementAttr::Yaml(p)) => {
            ctx.spans.add("spec.placement", p.span());
            rgd_spec.insert("placement".into(), yaml(p, "placement", &p.value())?);
        }
        Some(PlacementAttr::Fields(p)) => {
            rgd_spec.insert("placement".into(), placement(p, &mut ctx.spans)?);
        }
        None => {}
    }
    if let Some(r) = &g.rollout {
        ctx.spans.add("spec.rollout", r.span());
        rgd_spec.insert("rollout".into(), yaml(r, "rollout", &r.value())?);
    }
    let rgd = json!({
        "apiVersion": "kro.run/v1alpha1",
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": name},
        "spec": rgd_spec,
    });
    Ok(Assembled {
        rgd,
        spans: ctx.spans,
        files,
        kind,
    })
}

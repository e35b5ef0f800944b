//! SimpleSchema maps -> structural OpenAPI v3 schemas.

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::{Map, Number, Value, json};

use super::error::{Reason, SchemaError};
use super::markers::{MarkerKind, parse_markers};
use super::types::{TypeExpr, is_reserved_name};
use super::validate;
use crate::limits::{
    Limit, MAX_CUSTOM_TYPES, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES, MAX_SCHEMA_TEXT_BYTES,
};

/// A custom type after it has been built.
#[derive(Debug, Clone)]
struct CustomType {
    schema: Value,
    /// An alias written `Name: string | required=true` makes every field of
    /// that type required, like upstream.
    required: bool,
    /// What each use costs, recorded once built so that a use over the
    /// limits is refused before the schema is cloned.
    size: Size,
}

/// Schema produced so far, or what one custom type adds each time it is used.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    /// Deepest level reached (the root of what is being built is level 1).
    depth: usize,
    /// Schema nodes.
    nodes: usize,
    /// SimpleSchema text the nodes come from.
    text: usize,
}

/// Turns SimpleSchema into OpenAPI, with the RGD's custom types loaded.
///
/// Custom types are inlined wherever they are used, so a few lines of
/// SimpleSchema can ask for an exponentially large schema (`A: {x: B, y: B}`,
/// `B: {x: C, y: C}`, ...). Everything produced is therefore counted against
/// the limits as it is composed, and a custom type is only cloned once its
/// recorded size is known to fit.
#[derive(Debug, Default)]
pub struct Builder {
    types: BTreeMap<String, CustomType>,
    /// Produced so far for the whole RGD; `depth` is the deepest level of
    /// the custom type (or spec) being built.
    used: Cell<Size>,
}

impl Builder {
    /// Loads `schema.types` (may be absent). `path` is where they live in the
    /// RGD, for error messages.
    pub fn with_types(types: Option<&Value>, path: &str) -> Result<Self, SchemaError> {
        let mut builder = Builder::default();
        let Some(types) = types else {
            return Ok(builder);
        };
        if types.is_null() {
            return Ok(builder);
        }
        let Some(types) = types.as_object() else {
            return Err(SchemaError::new(path, Reason::BadNode(describe(types))));
        };
        if types.len() > MAX_CUSTOM_TYPES {
            return Err(SchemaError::new(
                path,
                Reason::OverLimit {
                    limit: Limit::CustomTypes,
                    message: format!(
                        "{} custom types, more than the {MAX_CUSTOM_TYPES} allowed",
                        types.len()
                    ),
                },
            ));
        }

        let mut deps: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, node) in types {
            let at = join(path, name);
            if is_reserved_name(name) {
                return Err(SchemaError::new(at, Reason::ReservedTypeName(name.clone())));
            }
            let mut refs = Vec::new();
            collect_refs(node, &at, &mut refs)?;
            deps.insert(name, refs);
        }

        for name in build_order(types, &deps, path)? {
            let Some(node) = types.get(name.as_str()) else {
                continue;
            };
            let at = join(path, &name);
            let before = builder.start_unit();
            let (schema, required) = match node {
                Value::String(text) => {
                    builder
                        .spend(0, text.len(), None)
                        .map_err(|r| SchemaError::new(&at, r))?;
                    let mut required = Vec::new();
                    let schema = builder.field_from_string(&name, text, &at, &mut required, 1)?;
                    (schema, !required.is_empty())
                }
                Value::Object(fields) => (builder.object(fields, &at, 1)?, false),
                other => return Err(SchemaError::new(at, Reason::BadNode(describe(other)))),
            };
            let after = builder.used.get();
            let size = Size {
                depth: after.depth,
                nodes: after.nodes.saturating_sub(before.nodes),
                text: after.text.saturating_sub(before.text),
            };
            builder.types.insert(
                name,
                CustomType {
                    schema,
                    required,
                    size,
                },
            );
        }
        Ok(builder)
    }

    /// Schema nodes produced so far (custom types and what was built since).
    pub fn nodes(&self) -> usize {
        self.used.get().nodes
    }

    /// Starts measuring the depth of a new custom type (or the spec);
    /// returns what was produced before it.
    fn start_unit(&self) -> Size {
        let before = self.used.get();
        self.used.set(Size { depth: 0, ..before });
        before
    }

    /// Records a node at `level`, refused past [`MAX_SCHEMA_DEPTH`].
    fn reach(&self, level: usize, via: Option<&str>) -> Result<(), Reason> {
        if level > MAX_SCHEMA_DEPTH {
            let what = match via {
                Some(name) => format!("custom type {name:?} nests the schema"),
                None => "the schema nests".to_owned(),
            };
            return Err(Reason::OverLimit {
                limit: Limit::SchemaDepth,
                message: format!(
                    "{what} deeper than {MAX_SCHEMA_DEPTH} levels of objects, lists and maps"
                ),
            });
        }
        let mut used = self.used.get();
        used.depth = used.depth.max(level);
        self.used.set(used);
        Ok(())
    }

    /// Counts `nodes` more schema nodes made of `text` bytes of SimpleSchema,
    /// refused past [`MAX_SCHEMA_NODES`] or [`MAX_SCHEMA_TEXT_BYTES`].
    fn spend(&self, nodes: usize, text: usize, via: Option<&str>) -> Result<(), Reason> {
        let mut used = self.used.get();
        used.nodes = used.nodes.saturating_add(nodes);
        used.text = used.text.saturating_add(text);
        let what = match via {
            Some(name) => format!("custom type {name:?} would take the schema past"),
            None => "the schema grows past".to_owned(),
        };
        if used.nodes > MAX_SCHEMA_NODES {
            return Err(Reason::OverLimit {
                limit: Limit::SchemaNodes,
                message: format!("{what} {MAX_SCHEMA_NODES} nodes"),
            });
        }
        if used.text > MAX_SCHEMA_TEXT_BYTES {
            return Err(Reason::OverLimit {
                limit: Limit::SchemaTextBytes,
                message: format!("{what} {MAX_SCHEMA_TEXT_BYTES} bytes of SimpleSchema"),
            });
        }
        self.used.set(used);
        Ok(())
    }

    /// Builds the object schema of a whole spec from its map of fields.
    pub fn root(&self, fields: &Map<String, Value>, path: &str) -> Result<Value, SchemaError> {
        self.start_unit();
        self.object(fields, path, 1)
    }

    /// Builds an object schema from a map of fields; the object is at
    /// `level` (1 for the root of a spec or custom type).
    fn object(
        &self,
        fields: &Map<String, Value>,
        path: &str,
        level: usize,
    ) -> Result<Value, SchemaError> {
        if let Some(suggestion) = openapi_lookalike(fields) {
            return Err(SchemaError::new(path, Reason::OpenApiSchema(suggestion)));
        }
        // Checked before the fields: nested maps of fields are recursed on.
        self.node(level).map_err(|r| SchemaError::new(path, r))?;
        let mut names: Vec<&String> = fields.keys().collect();
        names.sort();
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut child_has_default = false;
        for name in names {
            let at = join(path, name);
            if name.is_empty() {
                return Err(SchemaError::new(
                    at,
                    Reason::BadFieldName(name.clone(), "field names must not be empty"),
                ));
            }
            let node = &fields[name.as_str()];
            let text = match node {
                Value::String(text) => text.len(),
                _ => 0,
            };
            self.spend(0, name.len().saturating_add(text), None)
                .map_err(|r| SchemaError::new(&at, r))?;
            let field = match node {
                Value::String(text) => {
                    self.field_from_string(name, text, &at, &mut required, level + 1)?
                }
                Value::Object(inner) => self.object(inner, &at, level + 1)?,
                other => return Err(SchemaError::new(at, Reason::BadNode(describe(other)))),
            };
            child_has_default |= field.get("default").is_some();
            properties.insert(name.clone(), field);
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        if !properties.is_empty() {
            schema.insert("properties".into(), Value::Object(properties));
        }
        // Defaults of children only apply when the parent exists; `{}` makes
        // the API server create it. It would violate `required`, so not then.
        if required.is_empty() && child_has_default {
            schema.insert("default".into(), json!({}));
        }
        if !required.is_empty() {
            schema.insert("required".into(), json!(required));
        }
        Ok(Value::Object(schema))
    }

    /// Builds one `type | markers` field at `level`. `required` collects the
    /// parent's required list.
    fn field_from_string(
        &self,
        name: &str,
        text: &str,
        path: &str,
        required: &mut Vec<String>,
        level: usize,
    ) -> Result<Value, SchemaError> {
        let err = |reason| SchemaError::new(path, reason);
        let (type_text, marker_text) = match text.split_once('|') {
            Some((t, m)) => (t, Some(m)),
            None => (text, None),
        };
        let ty = TypeExpr::parse(type_text).map_err(err)?;
        let mut schema = self.type_schema(&ty, level).map_err(err)?;
        if let TypeExpr::Custom(custom) = &ty
            && self.types.get(custom).is_some_and(|c| c.required)
        {
            push_unique(required, name);
        }
        if let Some(marker_text) = marker_text {
            let markers = parse_markers(marker_text).map_err(err)?;
            let Value::Object(map) = &mut schema else {
                return Ok(schema);
            };
            let mut default = None;
            for marker in markers {
                if marker.kind == MarkerKind::Default {
                    default = Some(marker.value);
                    continue;
                }
                if marker.kind == MarkerKind::Required {
                    if parse_bool(marker.kind, &marker.value).map_err(err)? {
                        push_unique(required, name);
                    }
                    continue;
                }
                apply_marker(map, marker.kind, &marker.value).map_err(err)?;
            }
            check_ranges(map).map_err(err)?;
            if let Some(raw) = default {
                let value = default_value(map, &raw).map_err(err)?;
                // Checked against the schema in place: a custom type's schema
                // can be large, and may have many defaulted uses.
                validate::check(&value, &schema).map_err(|message| {
                    err(Reason::BadDefault {
                        value: value.to_string(),
                        message,
                    })
                })?;
                if let Value::Object(map) = &mut schema {
                    map.insert("default".into(), value);
                }
            }
        }
        Ok(schema)
    }

    /// The schema of a type expression whose root is at `level`.
    fn type_schema(&self, ty: &TypeExpr, level: usize) -> Result<Value, Reason> {
        Ok(match ty {
            TypeExpr::Custom(name) => return self.custom_schema(name, level),
            TypeExpr::Scalar(s) => {
                self.node(level)?;
                json!({"type": s.openapi()})
            }
            TypeExpr::Object => {
                self.node(level)?;
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
            }
            TypeExpr::List(inner) => {
                self.node(level)?;
                let items = self.type_schema(inner, level + 1)?;
                // The API server refuses `oldSelf` under an unkeyed list: it
                // cannot tell which old item a new one corresponds to.
                if let Some(at) = transition_rule_at(&items, "items") {
                    return Err(Reason::TransitionRuleInList(at));
                }
                json!({"type": "array", "items": items})
            }
            TypeExpr::Map(inner) => {
                self.node(level)?;
                json!({"type": "object", "additionalProperties": self.type_schema(inner, level + 1)?})
            }
        })
    }

    /// A clone of a custom type's schema placed at `level`, refused before
    /// cloning when it would go over the limits.
    fn custom_schema(&self, name: &str, level: usize) -> Result<Value, Reason> {
        let custom = self
            .types
            .get(name)
            .ok_or_else(|| Reason::UnknownType(name.to_owned()))?;
        let size = custom.size;
        let deepest = level.saturating_add(size.depth.saturating_sub(1));
        self.reach(deepest, Some(name))?;
        self.spend(size.nodes, size.text, Some(name))?;
        Ok(custom.schema.clone())
    }

    /// Counts one node at `level`.
    fn node(&self, level: usize) -> Result<(), Reason> {
        self.reach(level, None)?;
        self.spend(1, 0, None)
    }
}

fn apply_marker(
    schema: &mut Map<String, Value>,
    kind: MarkerKind,
    value: &str,
) -> Result<(), Reason> {
    let bad = |message: String| Reason::BadMarker {
        marker: kind.key(),
        value: value.to_owned(),
        message,
    };
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let only = |wanted: &[&str]| {
        if wanted.contains(&ty.as_str()) {
            Ok(())
        } else {
            Err(bad(format!(
                "only valid on {} fields, this one is {ty}",
                wanted.join(" or ")
            )))
        }
    };
    match kind {
        MarkerKind::Description => {
            schema.insert("description".into(), json!(value));
        }
        MarkerKind::Minimum | MarkerKind::Maximum => {
            let n = parse_number(value).ok_or_else(|| bad("not a finite number".into()))?;
            schema.insert(kind.key().into(), Value::Number(n));
        }
        MarkerKind::Validation => {
            if value.trim().is_empty() {
                return Err(bad("the CEL rule is empty".into()));
            }
            // The API server compiles every rule when the CRD is applied;
            // a syntax error found now names the field instead.
            crate::expr::CompiledExpr::parse(value)
                .map_err(|e| bad(format!("not a valid CEL rule: {e}")))?;
            push_rule(schema, value, "validation failed");
        }
        MarkerKind::Immutable => {
            if parse_bool(kind, value)? {
                push_rule(schema, "self == oldSelf", "field is immutable");
            }
        }
        MarkerKind::Enum => {
            only(&["string", "integer"])?;
            let mut options = Vec::new();
            for item in value.split(',').map(str::trim) {
                if item.is_empty() {
                    return Err(bad("empty enum values are not allowed".into()));
                }
                options.push(if ty == "integer" {
                    let n: i64 = item
                        .parse()
                        .map_err(|_| bad(format!("{item:?} is not an integer")))?;
                    json!(n)
                } else {
                    json!(item)
                });
            }
            schema.insert("enum".into(), Value::Array(options));
        }
        MarkerKind::MinLength | MarkerKind::MaxLength => {
            only(&["string"])?;
            schema.insert(kind.key().into(), json!(parse_count(value).map_err(bad)?));
        }
        MarkerKind::MinItems | MarkerKind::MaxItems => {
            only(&["array"])?;
            schema.insert(kind.key().into(), json!(parse_count(value).map_err(bad)?));
        }
        MarkerKind::Pattern => {
            if value.is_empty() {
                return Err(bad("the pattern is empty".into()));
            }
            only(&["string"])?;
            regex::Regex::new(value).map_err(|e| bad(format!("invalid regex: {e}")))?;
            schema.insert("pattern".into(), json!(value));
        }
        MarkerKind::UniqueItems => {
            let unique = parse_bool(kind, value)?;
            only(&["array"])?;
            if unique {
                let item_type = schema
                    .get("items")
                    .and_then(|i| i.get("type"))
                    .and_then(Value::as_str);
                // The API server only accepts sets of scalars.
                if matches!(item_type, Some("object" | "array")) {
                    return Err(bad(format!(
                        "a set (x-kubernetes-list-type: set) needs scalar items, these are {}",
                        item_type.unwrap_or("untyped")
                    )));
                }
                schema.insert("x-kubernetes-list-type".into(), json!("set"));
            }
        }
        MarkerKind::PrintColumn => {
            let title = value.trim();
            if title.is_empty() {
                return Err(bad("printColumn needs a non-empty title".into()));
            }
            only(&["string", "integer", "number", "boolean"])?;
            // Read (and removed) by the CRD generator, which knows the
            // field's path: see `crd::take_print_columns`.
            schema.insert(crate::crd::PRINT_COLUMN_KEY.into(), json!(title));
        }
        // Handled by the caller: they need the parent and the final schema.
        MarkerKind::Required | MarkerKind::Default => {}
    }
    Ok(())
}

/// Where (relative to `schema`) a validation rule reads `oldSelf`, if anywhere.
fn transition_rule_at(schema: &Value, at: &str) -> Option<String> {
    let uses_old_self = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|rules| {
            rules.iter().any(|r| {
                r.get("rule")
                    .and_then(Value::as_str)
                    .is_some_and(mentions_old_self)
            })
        });
    if uses_old_self {
        return Some(at.to_owned());
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            if let Some(found) = transition_rule_at(sub, &format!("{at}.{name}")) {
                return Some(found);
            }
        }
    }
    if let Some(sub) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        return transition_rule_at(sub, &format!("{at}.*"));
    }
    None
}

fn mentions_old_self(rule: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    rule.match_indices("oldSelf").any(|(i, m)| {
        let before = rule[..i].chars().next_back();
        let after = rule[i + m.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

fn check_ranges(schema: &Map<String, Value>) -> Result<(), Reason> {
    for (lo, hi) in [
        ("minimum", "maximum"),
        ("minLength", "maxLength"),
        ("minItems", "maxItems"),
    ] {
        if let (Some(a), Some(b)) = (
            schema.get(lo).and_then(Value::as_f64),
            schema.get(hi).and_then(Value::as_f64),
        ) && a > b
        {
            return Err(Reason::BadMarker {
                marker: match lo {
                    "minimum" => MarkerKind::Minimum.key(),
                    "minLength" => MarkerKind::MinLength.key(),
                    _ => MarkerKind::MinItems.key(),
                },
                value: schema[lo].to_string(),
                message: format!("{lo} {a} must not exceed {hi} {b}"),
            });
        }
    }
    Ok(())
}

/// Strings take the raw text (upstream wraps it in quotes); everything else
/// is JSON.
fn default_value(schema: &Map<String, Value>, raw: &str) -> Result<Value, Reason> {
    if schema.get("type").and_then(Value::as_str) == Some("string") {
        return Ok(Value::String(raw.to_owned()));
    }
    serde_json::from_str(raw).map_err(|e| Reason::BadMarker {
        marker: MarkerKind::Default.key(),
        value: raw.to_owned(),
        message: format!("not valid JSON: {e}"),
    })
}

fn push_rule(schema: &mut Map<String, Value>, rule: &str, message: &str) {
    let rules = schema
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Value::Array(rules) = rules {
        rules.push(json!({"rule": rule, "message": message}));
    }
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

/// Go's `strconv.ParseBool`, which upstream uses.
fn parse_bool(kind: MarkerKind, value: &str) -> Result<bool, Reason> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Reason::BadMarker {
            marker: kind.key(),
            value: value.to_owned(),
            message: "expected true or false".into(),
        }),
    }
}

fn parse_count(value: &str) -> Result<i64, String> {
    let n: i64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not an integer"))?;
    if n < 0 {
        return Err("must not be negative".into());
    }
    Ok(n)
}

/// Integral values are kept as JSON integers so the CRD reads `minimum: 1`
/// like the API server prints it.
fn parse_number(value: &str) -> Option<Number> {
    let f: f64 = value.trim().parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Some(Number::from(f as i64));
    }
    Number::from_f64(f)
}

/// The custom types a type definition refers to, in field order. Iterative:
/// nested maps of fields are only bounded later, when the type is built.
fn collect_refs(node: &Value, path: &str, out: &mut Vec<String>) -> Result<(), SchemaError> {
    let mut stack = vec![(node, path.to_owned())];
    while let Some((node, path)) = stack.pop() {
        match node {
            Value::String(text) => {
                let type_text = text.split_once('|').map_or(text.as_str(), |(t, _)| t);
                let ty = TypeExpr::parse(type_text).map_err(|r| SchemaError::new(&path, r))?;
                let mut refs = Vec::new();
                ty.custom_refs(&mut refs);
                out.extend(refs.into_iter().map(str::to_owned));
            }
            Value::Object(fields) => {
                // Reversed so that fields pop off the stack in order.
                stack.extend(
                    fields
                        .iter()
                        .rev()
                        .map(|(name, field)| (field, join(&path, name))),
                );
            }
            other => return Err(SchemaError::new(path, Reason::BadNode(describe(other)))),
        }
    }
    Ok(())
}

/// Dependencies first; a cycle is reported as `A -> B -> A`. References to
/// undeclared names are left for the build step, which reports them with the
/// field's path. A depth-first walk with its own stack: chains of custom
/// types are as long as the user makes them.
fn build_order<'a>(
    types: &'a Map<String, Value>,
    deps: &'a BTreeMap<&'a str, Vec<String>>,
    path: &str,
) -> Result<Vec<String>, SchemaError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }

    let mut marks: BTreeMap<&str, Mark> = deps.keys().map(|k| (*k, Mark::New)).collect();
    let mut order = Vec::new();
    for root in types.keys() {
        if marks.get(root.as_str()) != Some(&Mark::New) {
            continue;
        }
        marks.insert(root, Mark::Active);
        // Each frame: a type being visited and how many of its references
        // have been followed.
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        while let Some((name, next)) = stack.last_mut() {
            let name = *name;
            let Some(dep) = deps.get(name).and_then(|d| d.get(*next)) else {
                stack.pop();
                marks.insert(name, Mark::Done);
                order.push(name.to_owned());
                continue;
            };
            *next += 1;
            match marks.get(dep.as_str()).copied() {
                Some(Mark::Done) | None => {}
                Some(Mark::Active) => {
                    let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].iter().map(|(n, _)| *n).collect();
                    cycle.push(dep);
                    return Err(SchemaError::new(
                        join(path, cycle[0]),
                        Reason::TypeCycle(cycle.join(" -> ")),
                    ));
                }
                Some(Mark::New) => {
                    marks.insert(dep, Mark::Active);
                    stack.push((dep, 0));
                }
            }
        }
    }
    Ok(order)
}

/// Upstream issue #1314: users paste `{type: object, additionalProperties:
/// ...}` where SimpleSchema expects a string; without this they get a
/// confusing "unknown type" from deep inside.
fn openapi_lookalike(fields: &Map<String, Value>) -> Option<String> {
    const OPENAPI_TYPES: [&str; 6] = ["object", "string", "integer", "number", "boolean", "array"];
    const KEYWORDS: [&str; 12] = [
        "properties",
        "additionalProperties",
        "items",
        "enum",
        "default",
        "required",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
    ];
    let ty = fields.get("type")?.as_str()?;
    if !OPENAPI_TYPES.contains(&ty) {
        return None;
    }
    let keyword_with_structure = fields
        .iter()
        .any(|(k, v)| KEYWORDS.contains(&k.as_str()) && !v.is_string());
    if !keyword_with_structure {
        return None;
    }
    let mut suggestion = match ty {
        "object" => match fields
            .get("additionalProperties")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
        {
            Some(inner) => format!("map[string]{inner}"),
            None => "object".to_owned(),
        },
        "array" => match fields
            .get("items")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
        {
            Some(inner) => format!("[]{inner}"),
            None => "[]string".to_owned(),
        },
        "number" => "float".to_owned(),
        other => other.to_owned(),
    };
    if let Some(default) = fields.get("default") {
        suggestion.push_str(&format!(" | default={default}"));
    }
    Some(suggestion)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null (a field needs a type, e.g. `name: string`)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

pub(super) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

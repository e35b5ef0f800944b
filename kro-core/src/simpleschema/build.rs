//! SimpleSchema maps -> structural OpenAPI v3 schemas.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value, json};

use super::error::{Reason, SchemaError};
use super::markers::{MarkerKind, parse_markers};
use super::types::{TypeExpr, is_reserved_name};
use super::validate;

/// A custom type after it has been built.
#[derive(Debug, Clone)]
struct CustomType {
    schema: Value,
    /// An alias written `Name: string | required=true` makes every field of
    /// that type required, like upstream.
    required: bool,
}

/// Turns SimpleSchema into OpenAPI, with the RGD's custom types loaded.
#[derive(Debug, Default)]
pub struct Builder {
    types: BTreeMap<String, CustomType>,
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
            let node = &types[name.as_str()];
            let at = join(path, &name);
            let built = match node {
                Value::String(text) => {
                    let mut required = Vec::new();
                    let schema = builder.field_from_string(&name, text, &at, &mut required)?;
                    CustomType {
                        schema,
                        required: !required.is_empty(),
                    }
                }
                Value::Object(fields) => CustomType {
                    schema: builder.object(fields, &at)?,
                    required: false,
                },
                other => return Err(SchemaError::new(at, Reason::BadNode(describe(other)))),
            };
            builder.types.insert(name, built);
        }
        Ok(builder)
    }

    /// Builds an object schema from a map of fields.
    pub fn object(&self, fields: &Map<String, Value>, path: &str) -> Result<Value, SchemaError> {
        if let Some(suggestion) = openapi_lookalike(fields) {
            return Err(SchemaError::new(path, Reason::OpenApiSchema(suggestion)));
        }
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
            let field = match &fields[name.as_str()] {
                Value::String(text) => self.field_from_string(name, text, &at, &mut required)?,
                Value::Object(inner) => self.object(inner, &at)?,
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

    /// Builds one `type | markers` field. `required` collects the parent's
    /// required list.
    fn field_from_string(
        &self,
        name: &str,
        text: &str,
        path: &str,
        required: &mut Vec<String>,
    ) -> Result<Value, SchemaError> {
        let err = |reason| SchemaError::new(path, reason);
        let (type_text, marker_text) = match text.split_once('|') {
            Some((t, m)) => (t, Some(m)),
            None => (text, None),
        };
        let ty = TypeExpr::parse(type_text).map_err(err)?;
        let mut schema = self.type_schema(&ty).map_err(err)?;
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
                validate::check(&value, &Value::Object(map.clone())).map_err(|message| {
                    err(Reason::BadDefault {
                        value: value.to_string(),
                        message,
                    })
                })?;
                map.insert("default".into(), value);
            }
        }
        Ok(schema)
    }

    fn type_schema(&self, ty: &TypeExpr) -> Result<Value, Reason> {
        Ok(match ty {
            TypeExpr::Scalar(s) => json!({"type": s.openapi()}),
            TypeExpr::Object => {
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
            }
            TypeExpr::List(inner) => {
                let items = self.type_schema(inner)?;
                // The API server refuses `oldSelf` under an unkeyed list: it
                // cannot tell which old item a new one corresponds to.
                if let Some(at) = transition_rule_at(&items, "items") {
                    return Err(Reason::TransitionRuleInList(at));
                }
                json!({"type": "array", "items": items})
            }
            TypeExpr::Map(inner) => {
                json!({"type": "object", "additionalProperties": self.type_schema(inner)?})
            }
            TypeExpr::Custom(name) => self
                .types
                .get(name)
                .map(|c| c.schema.clone())
                .ok_or_else(|| Reason::UnknownType(name.clone()))?,
        })
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

fn collect_refs(node: &Value, path: &str, out: &mut Vec<String>) -> Result<(), SchemaError> {
    match node {
        Value::String(text) => {
            let type_text = text.split_once('|').map_or(text.as_str(), |(t, _)| t);
            let ty = TypeExpr::parse(type_text).map_err(|r| SchemaError::new(path, r))?;
            let mut refs = Vec::new();
            ty.custom_refs(&mut refs);
            out.extend(refs.into_iter().map(str::to_owned));
            Ok(())
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                collect_refs(field, &join(path, name), out)?;
            }
            Ok(())
        }
        other => Err(SchemaError::new(path, Reason::BadNode(describe(other)))),
    }
}

/// Dependencies first; a cycle is reported as `A -> B -> A`. References to
/// undeclared names are left for the build step, which reports them with the
/// field's path.
fn build_order(
    types: &Map<String, Value>,
    deps: &BTreeMap<&str, Vec<String>>,
    path: &str,
) -> Result<Vec<String>, SchemaError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        deps: &'a BTreeMap<&str, Vec<String>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<(), Vec<&'a str>> {
        match marks.get(name).copied() {
            Some(Mark::Done) | None => return Ok(()),
            Some(Mark::Active) => {
                let start = stack.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(name);
                return Err(cycle);
            }
            Some(Mark::New) => {}
        }
        marks.insert(name, Mark::Active);
        stack.push(name);
        for dep in deps.get(name).into_iter().flatten() {
            visit(dep, deps, marks, stack, order)?;
        }
        stack.pop();
        marks.insert(name, Mark::Done);
        order.push(name.to_owned());
        Ok(())
    }

    let mut marks: BTreeMap<&str, Mark> = deps.keys().map(|k| (*k, Mark::New)).collect();
    let mut order = Vec::new();
    for name in types.keys() {
        let mut stack = Vec::new();
        visit(name, deps, &mut marks, &mut stack, &mut order).map_err(|cycle| {
            SchemaError::new(join(path, cycle[0]), Reason::TypeCycle(cycle.join(" -> ")))
        })?;
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

//! Structural schemas of custom resources: pruning, defaulting and validation, with the
//! apiextensions server's messages.

use serde_json::{Map, Value, json};

use crate::catalog::{CustomVersion, ResourceDef};
use crate::error::{ApiResult, Cause, go_quote};

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Prunes unknown fields (returning their paths) and applies defaults.
pub fn admit(
    _def: &ResourceDef,
    custom: &CustomVersion,
    obj: &mut Value,
    _sub: Option<&str>,
) -> ApiResult<Vec<String>> {
    let mut unknown = Vec::new();
    let Value::Object(root) = obj else {
        return Ok(unknown);
    };
    if let Some(Value::Object(m)) = root.get_mut("metadata") {
        let bad: Vec<String> = m
            .keys()
            .filter(|k| !crate::meta::META_ORDER.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in bad {
            m.shift_remove(&k);
            unknown.push(format!("metadata.{k}"));
        }
    }
    let Some(schema) = &custom.schema else {
        return Ok(unknown);
    };
    if !preserves(schema) {
        let props = schema.get("properties").and_then(Value::as_object);
        let bad: Vec<String> = root
            .keys()
            .filter(|k| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
            .filter(|k| !props.is_some_and(|p| p.contains_key(k.as_str())))
            .cloned()
            .collect();
        for k in bad {
            root.shift_remove(&k);
            unknown.push(k);
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(v) = root.get_mut(k) {
                prune(v, sub, k, &mut unknown);
            }
        }
    }
    default_object(root, schema, true);
    Ok(unknown)
}

fn prune(v: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true)
                && let Some(Value::Object(meta)) = m.get_mut("metadata")
            {
                meta.retain(|k, _| crate::meta::META_ORDER.contains(&k.as_str()));
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            if let Some(add) = additional.filter(|a| a.is_object()) {
                for (k, x) in m.iter_mut() {
                    prune(x, add, &join(path, k), unknown);
                }
                return;
            }
            let keep_all = preserves(schema) || additional == Some(&Value::Bool(true));
            if !keep_all {
                let bad: Vec<String> = m
                    .keys()
                    .filter(|k| !props.is_some_and(|p| p.contains_key(k.as_str())))
                    .cloned()
                    .collect();
                for k in bad {
                    m.shift_remove(&k);
                    unknown.push(join(path, &k));
                }
            }
            if let Some(props) = props {
                for (k, sub) in props {
                    if let Some(x) = m.get_mut(k) {
                        prune(x, sub, &join(path, k), unknown);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, x) in items.iter_mut().enumerate() {
                    prune(x, item_schema, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Applies `default`s of the properties of `schema` to the object `m`, recursively.
fn default_object(m: &mut Map<String, Value>, schema: &Value, root: bool) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        if let Some(add) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            for v in m.values_mut() {
                default_value(v, add);
            }
        }
        return;
    };
    for (k, sub) in props {
        if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if !m.contains_key(k)
            && let Some(d) = sub.get("default")
        {
            m.insert(k.clone(), d.clone());
        }
        if let Some(v) = m.get_mut(k) {
            default_value(v, sub);
        }
    }
}

fn default_value(v: &mut Value, schema: &Value) {
    match v {
        Value::Object(m) => default_object(m, schema, false),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for x in items {
                    default_value(x, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Validates an object against its version's schema.
pub fn validate(custom: &CustomVersion, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let Some(schema) = &custom.schema else {
        return out;
    };
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (k, sub) in props {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(v) = obj.get(k) {
            // The status of a resource with a status subresource is named relative to status.
            let name_root = if k == "status" {
                String::new()
            } else {
                k.clone()
            };
            check(v, sub, k, &name_root, &mut out);
        }
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if obj.get(r).is_none() {
                out.push(Cause::required(r, ""));
            }
        }
    }
    out
}

fn type_ok(v: &Value, ty: &str) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
    }
}

/// `field` is the cause's field path; `name` the path the message names ("in body").
fn check(v: &Value, schema: &Value, field: &str, name: &str, out: &mut Vec<Cause>) {
    let label = if name.is_empty() { field } else { name };
    if v.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        // Null for a typed field is a type error, except where anything is allowed.
        if schema.get("type").is_none() {
            return;
        }
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if int_or_string {
        if !(v.is_string() || v.as_i64().is_some()) {
            out.push(Cause::new(
                "FieldValueTypeInvalid",
                field,
                format!(
                    "Invalid value: \"{}\": {label} in body must be of type integer,string: \"{}\"",
                    json_type(v),
                    json_type(v)
                ),
            ));
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_ok(v, ty)
    {
        out.push(Cause::new(
            "FieldValueTypeInvalid",
            field,
            format!(
                "Invalid value: \"{}\": {label} in body must be of type {ty}: \"{}\"",
                json_type(v),
                json_type(v)
            ),
        ));
        return;
    }
    if let Some(en) = schema.get("enum").and_then(Value::as_array)
        && !en.contains(v)
    {
        let allowed = en.iter().map(go_quote).collect::<Vec<_>>().join(", ");
        out.push(Cause::new(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {allowed}",
                go_quote(v)
            ),
        ));
    }
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    if let Some(x) = v.as_f64() {
        let shown = go_quote(v);
        let excl_min = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
        let excl_max = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
        // Like go-openapi, only the first failing numeric check is reported.
        let mut failed = None;
        if let Some(m) = num("multipleOf")
            && m != 0.0
            && (x / m).fract() != 0.0
        {
            failed = Some(format!("should be a multiple of {}", fmt_num(m)));
        }
        if failed.is_none()
            && let Some(max) = num("maximum")
            && (x > max || (excl_max && x == max))
        {
            let rel = if excl_max {
                "less than"
            } else {
                "less than or equal to"
            };
            failed = Some(format!("should be {rel} {}", fmt_num(max)));
        }
        if failed.is_none()
            && let Some(min) = num("minimum")
            && (x < min || (excl_min && x == min))
        {
            let rel = if excl_min {
                "greater than"
            } else {
                "greater than or equal to"
            };
            failed = Some(format!("should be {rel} {}", fmt_num(min)));
        }
        if let Some(f) = failed {
            out.push(Cause::new(
                "FieldValueInvalid",
                field,
                format!("Invalid value: {shown}: {label} in body {f}"),
            ));
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as f64;
        // Like go-openapi, only the first failing string check is reported.
        if let Some(max) = num("maxLength")
            && len > max
        {
            out.push(Cause::new(
                "FieldValueTooLong",
                field,
                format!("Too long: may not be more than {} bytes", fmt_num(max)),
            ));
        } else if let Some(min) = num("minLength")
            && len < min
        {
            out.push(Cause::new(
                "FieldValueInvalid",
                field,
                format!(
                    "Invalid value: {s:?}: {label} in body should be at least {} chars long",
                    fmt_num(min)
                ),
            ));
        } else if let Some(p) = schema.get("pattern").and_then(Value::as_str)
            && let Ok(re) = regex::Regex::new(p)
            && !re.is_match(s)
        {
            out.push(Cause::new(
                "FieldValueInvalid",
                field,
                format!("Invalid value: {s:?}: {label} in body should match '{p}'"),
            ));
        }
    }
    if let Some(items) = v.as_array() {
        let n = items.len() as f64;
        if let Some(max) = num("maxItems")
            && n > max
        {
            out.push(Cause::new(
                "FieldValueTooMany",
                field,
                format!(
                    "Too many: {}: must have at most {} items",
                    items.len(),
                    fmt_num(max)
                ),
            ));
        }
        if let Some(min) = num("minItems")
            && n < min
        {
            out.push(Cause::new(
                "FieldValueInvalid",
                field,
                format!(
                    "Invalid value: {}: {label} in body should have at least {} items",
                    items.len(),
                    fmt_num(min)
                ),
            ));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, x) in items.iter().enumerate() {
                let f = format!("{field}[{i}]");
                let nm = if name.is_empty() {
                    format!("[{i}]")
                } else {
                    format!("{name}[{i}]")
                };
                check(x, item_schema, &f, &nm, out);
            }
        }
    }
    if let Some(m) = v.as_object() {
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !m.contains_key(r) {
                    out.push(Cause::required(join(field, r), ""));
                }
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, x) in m {
            let sub = props
                .and_then(|p| p.get(k))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
            if let Some(sub) = sub {
                check(x, sub, &join(field, k), &join(name, k), out);
            }
        }
        let len = m.len() as f64;
        if let Some(max) = num("maxProperties")
            && len > max
        {
            out.push(Cause::new(
                "FieldValueTooMany",
                field,
                format!(
                    "Too many: {}: must have at most {} items",
                    m.len(),
                    fmt_num(max)
                ),
            ));
        }
        if let Some(min) = num("minProperties")
            && len < min
        {
            out.push(Cause::new(
                "FieldValueInvalid",
                field,
                format!(
                    "Invalid value: {}: {label} in body should have at least {} properties",
                    m.len(),
                    fmt_num(min)
                ),
            ));
        }
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// Checks that a schema is structural; returns causes under `base` (the schema's field path).
pub fn structural_errors(schema: &Value, base: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    walk_structural(schema, base, true, &mut out);
    out
}

fn walk_structural(schema: &Value, path: &str, root: bool, out: &mut Vec<Cause>) {
    let Some(m) = schema.as_object() else { return };
    let has_type = m
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let exempt = m.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true)
        || (m
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true)
            && !m.contains_key("properties")
            && !m.contains_key("items"));
    if !has_type && !exempt {
        if root {
            out.push(Cause::required(
                format!("{path}.type"),
                "must not be empty at the root",
            ));
        } else {
            out.push(Cause::required(
                format!("{path}.type"),
                "must not be empty for specified object fields",
            ));
        }
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            walk_structural(sub, &format!("{path}.properties[{k}]"), false, out);
        }
    }
    if let Some(items) = m.get("items") {
        walk_structural(items, &format!("{path}.items"), false, out);
    }
    if let Some(add) = m.get("additionalProperties").filter(|a| a.is_object()) {
        walk_structural(add, &format!("{path}.additionalProperties"), false, out);
    }
}

/// A default `{}` schema that accepts anything (versions without a schema).
pub fn permissive() -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cv(schema: Value) -> CustomVersion {
        CustomVersion {
            schema: Some(schema),
            ..Default::default()
        }
    }

    #[test]
    fn prunes_defaults_and_reports_unknown_fields() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "size": {"type": "integer", "default": 7},
            "nested": {"type": "object", "default": {}, "properties": {"enabled": {"type": "boolean", "default": true}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        let c = cv(schema);
        let def = crate::catalog::Catalog::builtin()
            .get("", "v1", "configmaps")
            .unwrap();
        let mut obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
                             "spec": {"junk": 1, "free": {"a": 1}}});
        let unknown = admit(&def, &c, &mut obj, None).unwrap();
        assert_eq!(unknown, ["spec.junk"]);
        assert_eq!(
            obj["spec"],
            json!({"free": {"a": 1}, "size": 7, "nested": {"enabled": true}})
        );
    }

    #[test]
    fn validation_messages_match_the_server() {
        let c = cv(
            json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["color"], "properties": {
            "size": {"type": "integer", "minimum": 1}, "tags": {"type": "array", "maxItems": 1},
            "port": {"x-kubernetes-int-or-string": true}}}}}),
        );
        let causes = validate(
            &c,
            &json!({"spec": {"size": 0, "tags": [1, 2], "port": [1]}}),
        );
        let msgs: Vec<_> = causes.iter().map(Cause::render).collect();
        assert!(
            msgs.contains(&"spec.color: Required value".to_owned()),
            "{msgs:?}"
        );
        assert!(msgs.contains(&"spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1".to_owned()));
        assert!(msgs.contains(&"spec.tags: Too many: 2: must have at most 1 items".to_owned()));
        assert!(msgs.contains(&"spec.port: Invalid value: \"array\": spec.port in body must be of type integer,string: \"array\"".to_owned()));
    }

    #[test]
    fn non_structural_schemas_are_reported() {
        let errs = structural_errors(
            &json!({"type": "object", "properties": {"spec": {"properties": {}}}}),
            "spec.validation.openAPIV3Schema",
        );
        assert_eq!(
            errs[0].field,
            "spec.validation.openAPIV3Schema.properties[spec].type"
        );
    }
}

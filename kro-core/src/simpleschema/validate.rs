//! Checks a JSON value against a generated structural schema, the way the API
//! server checks a CRD's defaults: a default that would be pruned or that
//! fails its own type, enum, bounds or pattern makes the CRD invalid, so it
//! is rejected here, at RGD parse time, with the field path.

use serde_json::{Map, Value};

/// Returns the first violation, prefixed with the path inside `value`.
pub fn check(value: &Value, schema: &Value) -> Result<(), String> {
    check_at(value, schema, &mut String::new())
}

fn check_at(value: &Value, schema: &Value, at: &mut String) -> Result<(), String> {
    let fail = |at: &str, msg: String| {
        if at.is_empty() {
            Err(msg)
        } else {
            Err(format!("at {at}: {msg}"))
        }
    };
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_matches(value, ty)
    {
        return fail(at, format!("expected {ty}, got {}", kind_of(value)));
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.iter().any(|o| json_eq(o, value))
    {
        let list: Vec<String> = options.iter().map(Value::to_string).collect();
        return fail(at, format!("{value} is not one of [{}]", list.join(", ")));
    }
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                return fail(at, format!("{n} is less than the minimum {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                return fail(at, format!("{n} is greater than the maximum {max}"));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                return fail(at, format!("length {len} is less than minLength {min}"));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                return fail(at, format!("length {len} is greater than maxLength {max}"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                let re = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
                if !re.is_match(s) {
                    return fail(at, format!("{s:?} does not match pattern {pattern:?}"));
                }
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                return fail(at, format!("{n} items, fewer than minItems {min}"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                return fail(at, format!("{n} items, more than maxItems {max}"));
            }
            if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
                for (i, a) in items.iter().enumerate() {
                    if items[..i].iter().any(|b| json_eq(a, b)) {
                        return fail(at, format!("duplicate item {a} in a set"));
                    }
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("[{i}]"));
                    check_at(item, item_schema, at)?;
                    at.truncate(len);
                }
            }
        }
        Value::Object(fields) => check_object(fields, schema, at)?,
        Value::Null | Value::Bool(_) => {}
    }
    Ok(())
}

fn check_object(
    fields: &Map<String, Value>,
    schema: &Map<String, Value>,
    at: &mut String,
) -> Result<(), String> {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                let prefix = if at.is_empty() {
                    String::new()
                } else {
                    format!("at {at}: ")
                };
                return Err(format!("{prefix}missing required field {name:?}"));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let open = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for (name, field) in fields {
        let len = at.len();
        if !at.is_empty() {
            at.push('.');
        }
        at.push_str(name);
        if let Some(sub) = properties.and_then(|p| p.get(name)) {
            check_at(field, sub, at)?;
        } else if let Some(sub) = additional.filter(|a| a.is_object()) {
            check_at(field, sub, at)?;
        } else if !open {
            return Err(format!("unknown field {at} (it would be pruned)"));
        }
        at.truncate(len);
    }
    Ok(())
}

fn type_matches(value: &Value, ty: &str) -> bool {
    match ty {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        // The API server accepts 3.0 as an integer, like go-openapi does.
        "integer" => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Numeric equality across representations (`1` == `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars() {
        assert!(check(&json!(3), &json!({"type": "integer"})).is_ok());
        assert!(check(&json!(3.0), &json!({"type": "integer"})).is_ok());
        assert!(check(&json!(3.5), &json!({"type": "integer"})).is_err());
        assert!(check(&json!("x"), &json!({"type": "integer"})).is_err());
        assert!(check(&json!(1.5), &json!({"type": "number"})).is_ok());
        let e = check(&json!(0), &json!({"type": "integer", "minimum": 1})).unwrap_err();
        assert!(e.contains("minimum"), "{e}");
        let e = check(&json!(11), &json!({"type": "integer", "maximum": 10})).unwrap_err();
        assert!(e.contains("maximum"), "{e}");
    }

    #[test]
    fn strings() {
        let s = json!({"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-z]+$"});
        assert!(check(&json!("ab"), &s).is_ok());
        assert!(check(&json!("a"), &s).unwrap_err().contains("minLength"));
        assert!(check(&json!("abcd"), &s).unwrap_err().contains("maxLength"));
        assert!(check(&json!("AB"), &s).unwrap_err().contains("pattern"));
        let e = json!({"type": "string", "enum": ["a", "b"]});
        assert!(check(&json!("c"), &e).unwrap_err().contains("not one of"));
    }

    #[test]
    fn nested_paths_are_reported() {
        let s = json!({
            "type": "object",
            "properties": {"ports": {"type": "array", "items": {"type": "integer"}}}
        });
        let e = check(&json!({"ports": [1, "x"]}), &s).unwrap_err();
        assert!(e.contains("at ports[1]"), "{e}");
        let e = check(&json!({"other": 1}), &s).unwrap_err();
        assert!(e.contains("unknown field other"), "{e}");
    }

    #[test]
    fn objects_maps_and_sets() {
        let m = json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert!(check(&json!({"a": "b"}), &m).is_ok());
        assert!(check(&json!({"a": 1}), &m).is_err());
        let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        assert!(check(&json!({"a": {"b": 1}}), &open).is_ok());
        let req = json!({"type": "object", "required": ["host"], "properties": {"host": {"type": "string"}}});
        assert!(
            check(&json!({}), &req)
                .unwrap_err()
                .contains("missing required")
        );
        let set = json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2});
        assert!(
            check(&json!([1, 1]), &set)
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(check(&json!([]), &set).unwrap_err().contains("minItems"));
        assert!(
            check(&json!([1, 2, 3]), &set)
                .unwrap_err()
                .contains("maxItems")
        );
    }
}

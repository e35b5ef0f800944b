//! Conversions between JSON and CEL values.
//!
//! JSON integers become CEL `int` (as in Kubernetes), other numbers `double`.
//! Going back, map keys are sorted so rendered objects are deterministic, and
//! `optional.none()` / `omit()` mean "no value" to the caller.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::objects::{Key, Map};
use serde_json::Value as Json;

/// JSON to CEL.
pub fn to_cel(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Json::Object(fields) => {
            let map: HashMap<Key, Value> = fields
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// A Kubernetes object (or a list of them) to the interpreter's value form,
/// with `metadata.creationTimestamp` and `deletionTimestamp` as CEL
/// timestamps, as upstream types them.
pub fn object_to_val(json: &Json) -> Box<dyn Val> {
    match json {
        Json::Array(items) => Box::new(CelList::from(
            items.iter().map(object_to_val).collect::<Vec<_>>(),
        )),
        Json::Object(fields) => {
            let map: HashMap<CelMapKey<'static>, Box<dyn Val>> = fields
                .iter()
                .map(|(k, v)| {
                    let val = match (k.as_str(), v) {
                        ("metadata", Json::Object(meta)) => {
                            let meta: HashMap<CelMapKey<'static>, Box<dyn Val>> = meta
                                .iter()
                                .map(|(mk, mv)| {
                                    let converted = match mk.as_str() {
                                        "creationTimestamp" | "deletionTimestamp" => {
                                            super::time::object_timestamp(mv)
                                        }
                                        _ => None,
                                    };
                                    (
                                        CelMapKey::from(mk.clone()),
                                        converted.unwrap_or_else(|| to_val(mv)),
                                    )
                                })
                                .collect();
                            Box::new(CelMap::from(meta)) as Box<dyn Val>
                        }
                        _ => to_val(v),
                    };
                    (CelMapKey::from(k.clone()), val)
                })
                .collect();
            Box::new(CelMap::from(map))
        }
        other => to_val(other),
    }
}

/// JSON straight to the interpreter's value form, without an intermediate
/// [`Value`]: variables are converted once per evaluation context.
pub fn to_val(json: &Json) -> Box<dyn Val> {
    match json {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => Box::new(CelString::from(s.clone())),
        Json::Array(items) => Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>())),
        Json::Object(fields) => {
            let map: HashMap<CelMapKey<'static>, Box<dyn Val>> = fields
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.clone()), to_val(v)))
                .collect();
            Box::new(CelMap::from(map))
        }
    }
}

/// Why a CEL value has no JSON form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("a value of type {0} cannot be written to JSON")]
pub struct NotJson(pub String);

/// CEL to JSON; `Ok(None)` for an empty optional (the field is omitted).
pub fn to_json(value: &Value) -> Result<Option<Json>, NotJson> {
    if let Some(inner) = optional_inner(value) {
        return match inner {
            None => Ok(None),
            Some(v) => to_json(v),
        };
    }
    Ok(Some(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| NotJson(format!("double {f}")))?,
        Value::String(s) => Json::String(s.to_string()),
        Value::Bytes(b) => Json::String(base64(b)),
        Value::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                // An empty optional inside a list drops the element.
                if let Some(j) = to_json(item)? {
                    out.push(j);
                }
            }
            Json::Array(out)
        }
        Value::Map(map) => {
            let mut entries: Vec<(String, &Value)> = Vec::with_capacity(map.map.len());
            for (k, v) in map.map.iter() {
                let key = match k {
                    Key::String(s) => s.to_string(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                entries.push((key, v));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries {
                if let Some(j) = to_json(v)? {
                    out.insert(k, j);
                }
            }
            Json::Object(out)
        }
        Value::Timestamp(t) => Json::String(t.to_rfc3339()),
        Value::Duration(d) => Json::String(format!("{}s", d.num_seconds())),
        Value::Opaque(o) => o
            .json()
            .ok_or_else(|| NotJson(o.runtime_type_name().to_owned()))?,
        other => return Err(NotJson(other.type_of().to_string())),
    }))
}

/// `Some(inner)` when `value` is a CEL optional.
pub fn optional_inner(value: &Value) -> Option<Option<&Value>> {
    match value {
        Value::Opaque(o) => o
            .downcast_ref::<cel::objects::OptionalValue>()
            .map(|opt| opt.value()),
        _ => None,
    }
}

/// Standard padded base64, as Kubernetes writes `[]byte` fields.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip_keeps_ints_and_sorts_keys() {
        let j = json!({"b": 1, "a": [1.5, "x", null, true], "c": {"z": 1, "y": 2}});
        let back = to_json(&to_cel(&j)).unwrap().unwrap();
        assert_eq!(back, j);
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            r#"{"a":[1.5,"x",null,true],"b":1,"c":{"y":2,"z":1}}"#
        );
        assert_eq!(to_cel(&json!(3)), Value::Int(3));
    }

    #[test]
    fn direct_conversion_matches_the_value_route() {
        let j = json!({"a": [1, -2, 1.5, "x", null, true, {"b": 18446744073709551615u64}]});
        let direct = Value::try_from(to_val(&j).as_ref()).unwrap();
        assert_eq!(direct, to_cel(&j));
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"hello"), "aGVsbG8=");
    }
}

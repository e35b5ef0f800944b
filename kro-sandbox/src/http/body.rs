//! Request body decoding with the real server's error wording and strict-mode checks.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

use super::protobuf;
use crate::error::ApiError;

/// A decoded body and the duplicate fields found while decoding.
#[derive(Debug)]
pub struct Decoded {
    /// The value (last duplicate wins, as Go's decoder does).
    pub value: Value,
    /// Dotted paths of keys that appeared twice.
    pub duplicates: Vec<String>,
}

/// Decodes a JSON (or, for YAML media types, YAML; for protobuf, a built-in kind's protobuf
/// envelope) body.
///
/// `expected_kind` only words the error message.
pub fn decode(body: &[u8], content_type: &str, expected_kind: &str) -> Result<Decoded, ApiError> {
    if content_type.starts_with(protobuf::MEDIA_TYPE) {
        // Protobuf has no duplicate fields to report: the last occurrence wins on the wire.
        let value = protobuf::decode_object(body).map_err(|e| match e {
            protobuf::ProtoError::MissingKind(_) => ApiError::bad_request(e.to_string()),
            other => ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {expected_kind}): {other}"
            )),
        })?;
        return Ok(Decoded {
            value,
            duplicates: Vec::new(),
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {expected_kind}): invalid UTF-8"
        ))
    })?;
    if content_type.contains("yaml") {
        let value: Value = serde_saphyr::from_str(text).map_err(|e| {
            ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}"))
        })?;
        return Ok(Decoded {
            value,
            duplicates: Vec::new(),
        });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let tracked = Tracked::deserialize_at(&mut de, String::new());
    let tracked = match tracked.and_then(|t| de.end().map(|()| t)) {
        Ok(t) => t,
        Err(e) => return Err(json_error(text, expected_kind, &e)),
    };
    Ok(Decoded {
        value: tracked.value,
        duplicates: tracked.duplicates,
    })
}

fn json_error(text: &str, expected_kind: &str, e: &serde_json::Error) -> ApiError {
    let snippet: String = text.chars().take(30).collect();
    let reason = if e.is_eof() {
        "unexpected end of JSON input".to_owned()
    } else {
        format!("invalid character looking for beginning of value ({e})")
    };
    ApiError::bad_request(format!(
        "the object provided is unrecognized (must be of type {expected_kind}): couldn't get version/kind; json parse error: {reason} ({snippet} ...)"
    ))
}

struct Tracked {
    value: Value,
    duplicates: Vec<String>,
}

impl Tracked {
    fn deserialize_at<'de, D: Deserializer<'de>>(d: D, path: String) -> Result<Self, D::Error> {
        d.deserialize_any(TrackedVisitor { path })
    }
}

struct TrackedVisitor {
    path: String,
}

struct Seeded {
    path: String,
}

impl<'de> de::DeserializeSeed<'de> for Seeded {
    type Value = Tracked;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Tracked, D::Error> {
        Tracked::deserialize_at(d, self.path)
    }
}

impl<'de> Visitor<'de> for TrackedVisitor {
    type Value = Tracked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tracked, E> {
        Ok(plain(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tracked, E> {
        Ok(plain(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tracked, E> {
        Ok(plain(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tracked, E> {
        Ok(plain(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tracked, E> {
        Ok(plain(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Tracked, E> {
        Ok(plain(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Tracked, E> {
        Ok(plain(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Tracked, E> {
        Ok(plain(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tracked, A::Error> {
        let mut items = Vec::new();
        let mut duplicates = Vec::new();
        while let Some(t) = seq.next_element_seed(Seeded {
            path: self.path.clone(),
        })? {
            items.push(t.value);
            duplicates.extend(t.duplicates);
        }
        Ok(Tracked {
            value: Value::Array(items),
            duplicates,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tracked, A::Error> {
        let mut out = Map::new();
        let mut duplicates = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let t = map.next_value_seed(Seeded { path: path.clone() })?;
            if out.contains_key(&key) {
                duplicates.push(path);
                // Go's decoder keeps the first position but the last value.
                out.shift_remove(&key);
            }
            out.insert(key, t.value);
            duplicates.extend(t.duplicates);
        }
        Ok(Tracked {
            value: Value::Object(out),
            duplicates,
        })
    }
}

fn plain(value: Value) -> Tracked {
    Tracked {
        value,
        duplicates: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicate_keys() {
        let d = decode(br#"{"a":{"b":1,"b":2},"c":1}"#, "application/json", "X").unwrap();
        assert_eq!(d.duplicates, ["a.b"]);
        assert_eq!(d.value["a"]["b"], 2);
    }

    #[test]
    fn words_truncated_json_like_the_real_server() {
        let e = decode(
            br#"{"apiVersion": "v1", "kind": "ConfigMap""#,
            "application/json",
            "ConfigMap",
        )
        .unwrap_err();
        assert!(
            e.message.contains(
                "unexpected end of JSON input ({\"apiVersion\": \"v1\", \"kind\": \" ...)"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn decodes_yaml() {
        let d = decode(b"a: 1\nb: [x]\n", "application/apply-patch+yaml", "X").unwrap();
        assert_eq!(d.value, serde_json::json!({"a": 1, "b": ["x"]}));
    }
}

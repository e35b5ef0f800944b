//! Converts between protobuf messages and the JSON the registry stores, field by field
//! with the schema, and the few Kubernetes types whose protobuf and JSON forms differ
//! (times, quantities, int-or-string, embedded raw JSON).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use super::ProtoError;
use super::schema::{Field, FieldType, Message, messages};
use super::wire::{self, Raw, Reader, WireType};
use crate::ids;

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";

fn message(name: &str) -> Result<&'static Message, ProtoError> {
    messages()
        .get(name)
        .ok_or_else(|| ProtoError::NoSchema(name.to_owned()))
}

// ---- decoding ----

/// Decodes one message to its JSON form.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Value, ProtoError> {
    if let Some(v) = decode_special(name, bytes)? {
        return Ok(v);
    }
    let msg = message(name)?;
    let mut out = Map::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, raw)) = reader.next_field()? {
        // Unknown fields are skipped, as Go's generated unmarshalling does.
        let Some(field) = msg.field(number) else {
            continue;
        };
        if field.repeated {
            let items = out
                .entry(field.name.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = items {
                decode_repeated(field, raw, items)?;
            }
            continue;
        }
        match &field.ty {
            FieldType::Map(key, value) => {
                let entries = out
                    .entry(field.name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Raw::Bytes(entry) = raw else {
                    return Err(wrong_wire(field));
                };
                let (k, v) = decode_map_entry(key, value, entry)?;
                if let Value::Object(entries) = entries {
                    entries.insert(k, v);
                }
            }
            ty => {
                let v = decode_value(field, ty, raw)?;
                out.insert(field.name.clone(), v);
            }
        }
    }
    // A non-pointer `omitempty` scalar is written even when zero; its JSON omits it.
    for field in msg.fields.iter().filter(|f| f.zero_is_absent) {
        if out.get(&field.name).is_some_and(is_zero) {
            out.shift_remove(&field.name);
        }
    }
    if msg.list {
        return Ok(out.remove("items").unwrap_or(Value::Array(Vec::new())));
    }
    Ok(Value::Object(out))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn wrong_wire(field: &Field) -> ProtoError {
    ProtoError::Malformed(format!("field {} has the wrong wire type", field.name))
}

fn decode_repeated(field: &Field, raw: Raw<'_>, items: &mut Vec<Value>) -> Result<(), ProtoError> {
    // Scalars may come packed (one length-delimited run) or one per field.
    if let (FieldType::Scalar(s), Raw::Bytes(run)) = (&field.ty, raw)
        && !matches!(s.as_str(), "string" | "bytes")
    {
        let wire = if matches!(s.as_str(), "double" | "fixed64" | "sfixed64") {
            WireType::Fixed64
        } else if matches!(s.as_str(), "float" | "fixed32" | "sfixed32") {
            WireType::Fixed32
        } else {
            WireType::Varint
        };
        for one in split_packed(run, wire)? {
            items.push(decode_value(field, &field.ty, one)?);
        }
        return Ok(());
    }
    items.push(decode_value(field, &field.ty, raw)?);
    Ok(())
}

fn split_packed(run: &[u8], wire: WireType) -> Result<Vec<Raw<'_>>, ProtoError> {
    let mut out = Vec::new();
    let mut r = Reader::new(run);
    while !r.is_empty() {
        out.push(r.packed(wire)?);
    }
    Ok(out)
}

fn decode_map_entry(
    key: &str,
    value: &FieldType,
    entry: &[u8],
) -> Result<(String, Value), ProtoError> {
    let mut k = String::new();
    let mut v = None;
    let mut reader = Reader::new(entry);
    let key_field = Field {
        number: 1,
        name: "key".into(),
        ty: FieldType::Scalar(key.to_owned()),
        repeated: false,
        zero_is_absent: false,
    };
    let value_field = Field {
        number: 2,
        name: "value".into(),
        ty: value.clone(),
        repeated: false,
        zero_is_absent: false,
    };
    while let Some((number, raw)) = reader.next_field()? {
        match number {
            1 => {
                k = match decode_value(&key_field, &key_field.ty, raw)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                }
            }
            2 => v = Some(decode_value(&value_field, value, raw)?),
            _ => {}
        }
    }
    // A missing value is the value type's zero.
    let v = match v {
        Some(v) => v,
        None => match value {
            FieldType::Scalar(s) if s == "string" || s == "bytes" => Value::String(String::new()),
            FieldType::Scalar(s) if s == "bool" => Value::Bool(false),
            FieldType::Scalar(_) => Value::from(0),
            FieldType::Message(m) => decode(m, &[])?,
            FieldType::Map(..) => Value::Object(Map::new()),
        },
    };
    Ok((k, v))
}

fn decode_value(field: &Field, ty: &FieldType, raw: Raw<'_>) -> Result<Value, ProtoError> {
    match (ty, raw) {
        (FieldType::Message(m), Raw::Bytes(b)) => decode(m, b),
        (FieldType::Scalar(s), raw) => decode_scalar(s, raw).ok_or_else(|| wrong_wire(field)),
        _ => Err(wrong_wire(field)),
    }
}

fn decode_scalar(s: &str, raw: Raw<'_>) -> Option<Value> {
    Some(match (s, raw) {
        ("string", Raw::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        ("bytes", Raw::Bytes(b)) => Value::String(BASE64.encode(b)),
        ("bool", Raw::Varint(v)) => Value::Bool(v != 0),
        // int32 negatives arrive sign-extended to 64 bits.
        ("int32" | "int64", Raw::Varint(v)) => Value::from(v as i64),
        ("uint32" | "uint64", Raw::Varint(v)) => Value::from(v),
        ("sint32" | "sint64", Raw::Varint(v)) => Value::from(((v >> 1) as i64) ^ -((v & 1) as i64)),
        ("double" | "fixed64", Raw::Fixed64(v)) if s == "double" => {
            Number::from_f64(f64::from_bits(v)).map_or(Value::Null, Value::Number)
        }
        ("fixed64", Raw::Fixed64(v)) => Value::from(v),
        ("float", Raw::Fixed32(v)) => {
            Number::from_f64(f64::from(f32::from_bits(v))).map_or(Value::Null, Value::Number)
        }
        ("fixed32", Raw::Fixed32(v)) => Value::from(v),
        _ => return None,
    })
}

/// The Kubernetes types whose JSON is not the plain mapping of their message.
fn decode_special(name: &str, bytes: &[u8]) -> Result<Option<Value>, ProtoError> {
    if !name.starts_with(META) && !name.starts_with("k8s.io.apimachinery.pkg.")
        || !matches!(
            name,
            TIME | MICRO_TIME | DURATION | FIELDS_V1 | RAW_EXTENSION | QUANTITY | INT_OR_STRING
        )
    {
        return Ok(None);
    }
    let mut fields: Vec<(u32, Raw<'_>)> = Vec::new();
    let mut reader = Reader::new(bytes);
    while let Some(f) = reader.next_field()? {
        fields.push(f);
    }
    let varint = |n: u32| {
        fields.iter().rev().find_map(|(k, r)| match r {
            Raw::Varint(v) if *k == n => Some(*v),
            _ => None,
        })
    };
    let bytes_of = |n: u32| {
        fields.iter().rev().find_map(|(k, r)| match r {
            Raw::Bytes(b) if *k == n => Some(*b),
            _ => None,
        })
    };
    Ok(Some(match name {
        TIME | MICRO_TIME => {
            // An empty message is Go's zero time, which JSON writes as null.
            if bytes.is_empty() {
                return Ok(Some(Value::Null));
            }
            let secs = varint(1).unwrap_or(0) as i64;
            let Ok(secs) = u64::try_from(secs) else {
                return Ok(Some(Value::Null));
            };
            let base = ids::rfc3339(secs);
            if name == MICRO_TIME {
                let micros = varint(2).unwrap_or(0) / 1000;
                Value::String(format!("{}.{micros:06}Z", base.trim_end_matches('Z')))
            } else {
                Value::String(base)
            }
        }
        DURATION => Value::String(go_duration(varint(1).unwrap_or(0) as i64)),
        QUANTITY => {
            Value::String(String::from_utf8_lossy(bytes_of(1).unwrap_or_default()).into_owned())
        }
        INT_OR_STRING => {
            if varint(1).unwrap_or(0) == 1 {
                Value::String(String::from_utf8_lossy(bytes_of(3).unwrap_or_default()).into_owned())
            } else {
                Value::from(varint(2).unwrap_or(0) as i64 as i32)
            }
        }
        // FieldsV1 and RawExtension carry JSON text.
        _ => match bytes_of(1) {
            Some(raw) if !raw.is_empty() => serde_json::from_slice(raw)
                .map_err(|e| ProtoError::Malformed(format!("embedded JSON in {name}: {e}")))?,
            _ => Value::Null,
        },
    }))
}

/// Go's `time.Duration.String()` for whole and fractional seconds.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let (h, rem) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rem) = (rem / 60_000_000_000, rem % 60_000_000_000);
    let (s, frac) = (rem / 1_000_000_000, rem % 1_000_000_000);
    let mut out = sign.to_owned();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let f = format!("{frac:09}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    }
    out
}

fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    let total = total as i64;
    Some(if neg { -total } else { total })
}

// ---- encoding ----

/// Encodes a JSON value as the named message.
pub fn encode(name: &str, value: &Value) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::new();
    if encode_special(name, value, &mut out)? {
        return Ok(out);
    }
    let msg = message(name)?;
    if msg.list {
        let wrapped = Value::Object(Map::from_iter([("items".to_owned(), value.clone())]));
        return encode_fields(msg, &wrapped, &mut out).map(|()| out);
    }
    encode_fields(msg, value, &mut out)?;
    Ok(out)
}

fn encode_fields(msg: &Message, value: &Value, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    let Value::Object(obj) = value else {
        return Ok(());
    };
    for field in &msg.fields {
        let Some(v) = obj.get(&field.name) else {
            continue;
        };
        if v.is_null() {
            continue;
        }
        if field.repeated {
            for item in v.as_array().into_iter().flatten() {
                encode_value(field.number, &field.ty, item, out)?;
            }
            continue;
        }
        if let FieldType::Map(key, val_ty) = &field.ty {
            for (k, item) in v.as_object().into_iter().flatten() {
                let mut entry = Vec::new();
                encode_value(
                    1,
                    &FieldType::Scalar(key.clone()),
                    &Value::String(k.clone()),
                    &mut entry,
                )?;
                encode_value(2, val_ty, item, &mut entry)?;
                wire::put_bytes(out, field.number, &entry);
            }
            continue;
        }
        encode_value(field.number, &field.ty, v, out)?;
    }
    Ok(())
}

fn encode_value(
    number: u32,
    ty: &FieldType,
    v: &Value,
    out: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    match ty {
        FieldType::Message(m) => {
            let body = encode(m, v)?;
            wire::put_bytes(out, number, &body);
        }
        FieldType::Scalar(s) => encode_scalar(number, s, v, out)?,
        FieldType::Map(..) => {
            return Err(ProtoError::Malformed("nested map".into()));
        }
    }
    Ok(())
}

fn int_of(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().and_then(|u| i64::try_from(u).ok()))
        .or_else(|| v.as_f64().map(|f| f as i64))
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn encode_scalar(number: u32, s: &str, v: &Value, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    let bad = || ProtoError::Malformed(format!("a {s} field holds {v}"));
    match s {
        "string" => match v {
            Value::String(text) => wire::put_bytes(out, number, text.as_bytes()),
            other => wire::put_bytes(out, number, other.to_string().as_bytes()),
        },
        "bytes" => {
            let text = v.as_str().ok_or_else(bad)?;
            let raw = BASE64.decode(text).map_err(|_| bad())?;
            wire::put_bytes(out, number, &raw);
        }
        "bool" => {
            wire::put_key(out, number, WireType::Varint);
            wire::put_varint(out, u64::from(v.as_bool().ok_or_else(bad)?));
        }
        "double" => {
            wire::put_key(out, number, WireType::Fixed64);
            out.extend_from_slice(&v.as_f64().ok_or_else(bad)?.to_bits().to_le_bytes());
        }
        "float" => {
            wire::put_key(out, number, WireType::Fixed32);
            out.extend_from_slice(&(v.as_f64().ok_or_else(bad)? as f32).to_bits().to_le_bytes());
        }
        _ => {
            let n = int_of(v).ok_or_else(bad)?;
            wire::put_key(out, number, WireType::Varint);
            wire::put_varint(out, n as u64);
        }
    }
    Ok(())
}

fn encode_special(name: &str, v: &Value, out: &mut Vec<u8>) -> Result<bool, ProtoError> {
    match name {
        TIME | MICRO_TIME => {
            if let Some(secs) = v.as_str().and_then(ids::parse_rfc3339) {
                wire::put_key(out, 1, WireType::Varint);
                wire::put_varint(out, secs);
                if name == MICRO_TIME {
                    let micros = v
                        .as_str()
                        .and_then(|s| s.get(20..26))
                        .and_then(|f| f.parse::<u64>().ok())
                        .unwrap_or(0);
                    if micros > 0 {
                        wire::put_key(out, 2, WireType::Varint);
                        wire::put_varint(out, micros * 1000);
                    }
                }
            }
        }
        DURATION => {
            let nanos = v.as_str().and_then(parse_go_duration).unwrap_or(0);
            wire::put_key(out, 1, WireType::Varint);
            wire::put_varint(out, nanos as u64);
        }
        QUANTITY => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            wire::put_bytes(out, 1, text.as_bytes());
        }
        INT_OR_STRING => match v {
            Value::String(s) => {
                wire::put_key(out, 1, WireType::Varint);
                wire::put_varint(out, 1);
                wire::put_bytes(out, 3, s.as_bytes());
            }
            other => {
                let n = int_of(other).unwrap_or(0);
                wire::put_key(out, 1, WireType::Varint);
                wire::put_varint(out, 0);
                wire::put_key(out, 2, WireType::Varint);
                wire::put_varint(out, n as u64);
            }
        },
        FIELDS_V1 | RAW_EXTENSION => {
            let text = serde_json::to_vec(v).map_err(|e| ProtoError::Malformed(e.to_string()))?;
            wire::put_bytes(out, 1, &text);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_round_trips() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"},
                         "creationTimestamp": "2024-05-01T10:20:30Z", "generation": 3},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx",
                                           "ports": [{"containerPort": 80}],
                                           "resources": {"limits": {"cpu": "500m"}}}]}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}},
            "status": {}
        });
        let bytes = encode("k8s.io.api.apps.v1.Deployment", &d).expect("encode");
        let back = decode("k8s.io.api.apps.v1.Deployment", &bytes).expect("decode");
        assert_eq!(back, d);
    }

    #[test]
    fn go_zero_values_of_omitempty_fields_are_dropped_and_pointer_zeros_kept() {
        let mut spec = Vec::new();
        wire::put_key(&mut spec, 1, WireType::Varint); // replicas: 0 (a pointer)
        wire::put_varint(&mut spec, 0);
        wire::put_key(&mut spec, 5, WireType::Varint); // minReadySeconds: 0 (omitempty)
        wire::put_varint(&mut spec, 0);
        let v = decode("k8s.io.api.apps.v1.DeploymentSpec", &spec).expect("decode");
        assert_eq!(v, json!({"replicas": 0}));
        let mut meta = Vec::new();
        wire::put_bytes(&mut meta, 1, b"x");
        wire::put_bytes(&mut meta, 2, b""); // generateName: ""
        wire::put_bytes(&mut meta, 8, b""); // creationTimestamp: zero time
        let v = decode("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", &meta).expect("meta");
        assert_eq!(v, json!({"name": "x", "creationTimestamp": null}));
    }

    #[test]
    fn secrets_bytes_are_base64_and_durations_read_like_go() {
        let s = json!({"data": {"k": "aHVudGVyMg=="}, "type": "Opaque"});
        let bytes = encode("k8s.io.api.core.v1.Secret", &s).expect("encode");
        assert!(bytes.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            decode("k8s.io.api.core.v1.Secret", &bytes).expect("decode"),
            s
        );
        assert_eq!(go_duration(90_500_000_000), "1m30.5s");
        assert_eq!(parse_go_duration("1m30.5s"), Some(90_500_000_000));
    }

    #[test]
    fn named_slices_are_bare_arrays() {
        let u = json!({"username": "alice", "extra": {"scopes": ["a", "b"]}});
        let bytes = encode("k8s.io.api.authentication.v1.UserInfo", &u).expect("encode");
        assert_eq!(
            decode("k8s.io.api.authentication.v1.UserInfo", &bytes).expect("decode"),
            u
        );
    }
}

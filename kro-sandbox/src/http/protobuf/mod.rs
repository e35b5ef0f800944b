//! Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`) of built-in kinds,
//! as kube-apiserver reads and writes it: the 4-byte magic `k8s\0`, then a
//! `runtime.Unknown` whose `typeMeta` names the kind and whose `raw` is the kind's message.
//! Watch streams frame each `WatchEvent` with a 4-byte big-endian length.
//!
//! The registry works on JSON, so request bodies are decoded to the JSON object the same
//! Go value would have been sent as, and answers are encoded from the stored JSON. One
//! generic codec walks the messages with the embedded schema (`schema.rs`); custom kinds
//! have no protobuf form, as on the real server.

mod codec;
mod schema;
mod wire;

use serde_json::{Map, Value};

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The content type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

const MAGIC: &[u8; 4] = b"k8s\0";
const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Why a protobuf body could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The bytes are not a valid message.
    #[error("{0}")]
    Malformed(String),
    /// The body does not start with the `k8s\0` magic.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NotEnvelope,
    /// A message the schema does not know.
    #[error("no protobuf schema for {0}")]
    NoSchema(String),
    /// The object has no `kind` (`runtime.Unknown.typeMeta.kind` empty).
    #[error("Object 'Kind' is missing in '{0}'")]
    MissingKind(String),
}

/// The message of a kind, including the `meta.k8s.io` kinds every group serves
/// (`Status`, `DeleteOptions`), which travel under the group's own apiVersion.
fn message_for(api_version: &str, kind: &str) -> Option<String> {
    schema::message_of(api_version, kind).or_else(|| {
        let name = format!("{META_V1}.{kind}");
        matches!(kind, "Status" | "DeleteOptions" | "WatchEvent")
            .then_some(name)
            .filter(|n| schema::messages().contains_key(n))
    })
}

/// Whether objects of this kind have a protobuf form.
pub fn supports(api_version: &str, kind: &str) -> bool {
    message_for(api_version, kind).is_some()
}

/// Decodes a protobuf request body to the JSON object it stands for, `apiVersion` and
/// `kind` first, as a JSON client would have sent it.
pub fn decode_object(body: &[u8]) -> Result<Value, ProtoError> {
    let data = body.strip_prefix(MAGIC).ok_or(ProtoError::NotEnvelope)?;
    if data.is_empty() {
        return Err(ProtoError::Malformed("empty body".into()));
    }
    let unknown = Unknown::read(data)?;
    if unknown.kind.is_empty() {
        return Err(ProtoError::MissingKind(format!(
            "{{apiVersion:{} kind:}}",
            unknown.api_version
        )));
    }
    let name = message_for(&unknown.api_version, &unknown.kind)
        .ok_or_else(|| ProtoError::NoSchema(format!("{}/{}", unknown.api_version, unknown.kind)))?;
    let fields = codec::decode(&name, unknown.raw)?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(unknown.kind));
    out.insert("apiVersion".into(), Value::String(unknown.api_version));
    if let Value::Object(fields) = fields {
        out.extend(fields);
    }
    Ok(Value::Object(out))
}

/// Encodes an object (its `apiVersion` and `kind` name the message) with the magic prefix.
pub fn encode_object(obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = message_for(api_version, kind)
        .ok_or_else(|| ProtoError::NoSchema(format!("{api_version}/{kind}")))?;
    let raw = codec::encode(&name, obj)?;
    let mut out = MAGIC.to_vec();
    Unknown {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        raw: &raw,
    }
    .write(&mut out);
    Ok(out)
}

/// One watch event as a length-prefixed `WatchEvent` frame; the object is embedded as a
/// whole protobuf object (magic and envelope) in `object.raw`.
pub fn encode_watch_event(event_type: &str, obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let object = encode_object(obj)?;
    let mut raw_extension = Vec::new();
    wire::put_bytes(&mut raw_extension, 1, &object);
    let mut event = Vec::new();
    wire::put_bytes(&mut event, 1, event_type.as_bytes());
    wire::put_bytes(&mut event, 2, &raw_extension);
    let len = u32::try_from(event.len())
        .map_err(|_| ProtoError::Malformed("watch event too large".into()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&event);
    Ok(out)
}

/// `runtime.Unknown`: typeMeta (1: apiVersion, 2: kind), raw (2), contentEncoding (3),
/// contentType (4).
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
}

impl<'a> Unknown<'a> {
    fn read(data: &'a [u8]) -> Result<Self, ProtoError> {
        let mut out = Unknown {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
        };
        let mut r = wire::Reader::new(data);
        while let Some((number, value)) = r.next_field()? {
            match (number, value) {
                (1, wire::Raw::Bytes(type_meta)) => {
                    let mut t = wire::Reader::new(type_meta);
                    while let Some((n, v)) = t.next_field()? {
                        if let wire::Raw::Bytes(s) = v {
                            let s = String::from_utf8_lossy(s).into_owned();
                            match n {
                                1 => out.api_version = s,
                                2 => out.kind = s,
                                _ => {}
                            }
                        }
                    }
                }
                (2, wire::Raw::Bytes(raw)) => out.raw = raw,
                (3, wire::Raw::Bytes(enc)) if !enc.is_empty() => {
                    return Err(ProtoError::Malformed(format!(
                        "unsupported content encoding {}",
                        String::from_utf8_lossy(enc)
                    )));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn write(&self, out: &mut Vec<u8>) {
        let mut type_meta = Vec::new();
        wire::put_bytes(&mut type_meta, 1, self.api_version.as_bytes());
        wire::put_bytes(&mut type_meta, 2, self.kind.as_bytes());
        wire::put_bytes(out, 1, &type_meta);
        wire::put_bytes(out, 2, self.raw);
        // Go writes the empty contentEncoding and contentType too.
        wire::put_bytes(out, 3, b"");
        wire::put_bytes(out, 4, b"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_round_trip_through_the_envelope() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1",
                        "metadata": {"name": "c", "namespace": "default"},
                        "data": {"a": "b"}});
        let bytes = encode_object(&cm).expect("encode");
        assert!(bytes.starts_with(b"k8s\0"));
        assert_eq!(decode_object(&bytes).expect("decode"), cm);
    }

    #[test]
    fn status_and_custom_kinds() {
        assert!(supports("v1", "Status"));
        assert!(supports("apps/v1", "DeploymentList"));
        assert!(!supports("example.com/v1", "Widget"));
        assert_eq!(decode_object(b"{}"), Err(ProtoError::NotEnvelope));
    }

    #[test]
    fn watch_events_are_length_prefixed() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}});
        let frame = encode_watch_event("ADDED", &cm).expect("encode");
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len, frame.len() - 4);
    }
}

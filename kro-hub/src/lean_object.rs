//! An object of any kind as the JSON the hub compares and evaluates,
//! decoded in one pass and without `metadata.managedFields`.
//!
//! Why not `DynamicObject`: its derived decoder flattens the object, so
//! serde buffers the whole object before decoding it a second time, and it
//! decodes every managedFields entry (often the larger half of a child's
//! metadata) only for the hub to drop it; the hub then serialized the
//! object back into JSON. Watch events of member children, apply answers
//! and status-write answers went through that chain about twice per child
//! and pass: a quarter of the hub's CPU at a thousand instances.
//! [`LeanObject`] reads the object once into [`Value`], skips
//! managedFields unread, and parses the metadata (without managedFields)
//! for what the watcher and the routing need.

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use kube::core::DynamicResourceScope;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An object as its JSON (`json`, without managedFields) and its parsed
/// metadata (`metadata`, the same fields). `json` is what the server sent:
/// changes to `metadata` are not copied into it.
#[derive(Debug, Clone)]
pub struct LeanObject {
    /// The object's metadata, parsed from `json`'s.
    pub metadata: ObjectMeta,
    /// The whole object without `metadata.managedFields`.
    pub json: Value,
}

impl LeanObject {
    /// The object's JSON.
    pub fn into_json(self) -> Value {
        self.json
    }
}

/// `kube::Resource` for a type of any kind, as `DynamicObject` has it:
/// the kind comes with the `ApiResource` the `Api` is made with.
macro_rules! dynamic_resource {
    ($t:ty) => {
        impl kube::Resource for $t {
            type DynamicType = ApiResource;
            type Scope = DynamicResourceScope;

            fn group(dt: &ApiResource) -> Cow<'_, str> {
                dt.group.as_str().into()
            }

            fn version(dt: &ApiResource) -> Cow<'_, str> {
                dt.version.as_str().into()
            }

            fn kind(dt: &ApiResource) -> Cow<'_, str> {
                dt.kind.as_str().into()
            }

            fn api_version(dt: &ApiResource) -> Cow<'_, str> {
                dt.api_version.as_str().into()
            }

            fn plural(dt: &ApiResource) -> Cow<'_, str> {
                dt.plural.as_str().into()
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

dynamic_resource!(LeanObject);
dynamic_resource!(WrittenVersion);

/// What the answer to a write is read for when only its new
/// resourceVersion matters (status writes): everything else is skipped
/// unread, without building it.
#[derive(Debug, Clone, Default)]
pub struct WrittenVersion {
    /// Only `resourceVersion` is set.
    pub metadata: ObjectMeta,
}

impl<'de> Deserialize<'de> for WrittenVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(VersionVisitor { in_metadata: false })
    }
}

/// Finds `metadata.resourceVersion`; `in_metadata` once inside metadata.
struct VersionVisitor {
    in_metadata: bool,
}

impl<'de> DeserializeSeed<'de> for VersionVisitor {
    type Value = WrittenVersion;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for VersionVisitor {
    type Value = WrittenVersion;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WrittenVersion, A::Error> {
        let mut found = WrittenVersion::default();
        let wanted = if self.in_metadata {
            "resourceVersion"
        } else {
            "metadata"
        };
        while let Some(is_wanted) = map.next_key_seed(KeyIs(wanted))? {
            match (is_wanted, self.in_metadata) {
                (true, false) => {
                    found = map.next_value_seed(VersionVisitor { in_metadata: true })?;
                }
                (true, true) => {
                    found.metadata.resource_version = Some(map.next_value::<String>()?);
                }
                (false, _) => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Whether a map key is the one wanted, read without copying it.
struct KeyIs(&'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// Written as its JSON (for `create`/`replace` calls and tests).
impl Serialize for LeanObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<'de> Deserialize<'de> for LeanObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut json = Exact(Level::Object).deserialize(d)?;
        let Some(object) = json.as_object_mut() else {
            return Err(de::Error::invalid_type(
                de::Unexpected::Other("a JSON value other than an object"),
                &"a Kubernetes object",
            ));
        };
        let meta = object
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if meta.is_null() {
            *meta = Value::Object(Map::new());
        }
        let metadata = ObjectMeta::deserialize(&*meta).map_err(de::Error::custom)?;
        Ok(LeanObject { metadata, json })
    }
}

/// Where in an object a value is: its top (whose `metadata` is read
/// without managedFields), its metadata, or anywhere else.
#[derive(Debug, Clone, Copy)]
enum Level {
    Object,
    Metadata,
    Value,
}

/// Decodes a JSON value with every map and list at its exact size. What
/// `Value`'s own decoder builds grows by doubling and keeps the spare room
/// (a map's entries and its hash table): for the children the hub keeps in
/// its member stores that was an eighth of its memory. Entries are
/// collected first and the map built once, at its size. At the
/// [`Level::Metadata`] of an object, managedFields are skipped unread.
struct Exact(Level);

impl<'de> DeserializeSeed<'de> for Exact {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Exact {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Exact(Level::Value))? {
            items.push(item);
        }
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let level = match (self.0, key.as_str()) {
                (Level::Metadata, "managedFields") => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                (Level::Object, "metadata") => Level::Metadata,
                _ => Level::Value,
            };
            let value = map.next_value_seed(Exact(level))?;
            entries.push((key, value));
        }
        Ok(Value::Object(entries.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn managed_fields_are_skipped_and_everything_else_kept() {
        let text = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "7",
                "labels": {"app": "web"},
                "managedFields": [{"manager": "kro-hub", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 2}, "status": {"availableReplicas": 2}
        })
        .to_string();
        let obj: LeanObject = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            obj.json,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "7",
                    "labels": {"app": "web"}},
                "spec": {"replicas": 2}, "status": {"availableReplicas": 2}
            })
        );
        assert_eq!(obj.metadata.name.as_deref(), Some("web"));
        assert_eq!(obj.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(obj.metadata.managed_fields, None);
        assert_eq!(
            obj.metadata.labels.and_then(|l| l.get("app").cloned()),
            Some("web".to_owned())
        );
    }

    #[test]
    fn a_watch_event_decodes_into_it() {
        let text = json!({"type": "MODIFIED", "object": {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "resourceVersion": "9", "managedFields": []}}})
        .to_string();
        let event: kube::core::WatchEvent<LeanObject> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let kube::core::WatchEvent::Modified(obj) = event else {
            panic!("not a MODIFIED event: {event:?}");
        };
        assert_eq!(obj.json.pointer("/metadata/managedFields"), None);
        assert_eq!(obj.metadata.resource_version.as_deref(), Some("9"));
    }

    #[test]
    fn a_written_version_reads_the_resource_version_alone() {
        let text = json!({"apiVersion": "kro.run/v1alpha1", "kind": "WebApp",
            "metadata": {"name": "a", "labels": {"resourceVersion": "no"},
                "resourceVersion": "42", "managedFields": [{"manager": "m"}]},
            "status": {"metadata": {"resourceVersion": "no"}}})
        .to_string();
        let written: WrittenVersion = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(written.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(written.metadata.name, None);
    }

    #[test]
    fn values_decode_as_serde_json_decodes_them() {
        let text = r#"{"metadata": {"name": "x"}, "spec": {"a": [1, -2, 2.5, "s\u00e9", true, null,
            {"b": {}, "c": []}], "dup": 1, "dup": 2, "big": 18446744073709551615}}"#;
        let obj: LeanObject = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        let plain: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(obj.json, plain);
        let keys: Vec<&String> = obj.json["spec"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["a", "dup", "big"]);
    }

    #[test]
    fn malformed_metadata_is_an_error_not_a_panic() {
        let text = r#"{"metadata": {"name": 3}}"#;
        assert!(serde_json::from_str::<LeanObject>(text).is_err());
    }
}

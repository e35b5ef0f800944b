//! Resource schemas from Kubernetes OpenAPI v3 documents (what
//! `/openapi/v3/apis/<group>/<version>` serves): each kind's schema with its
//! `$ref`s inlined, keeping only what type checks need.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// How deep references are followed; recursive types (JSONSchemaProps) stop
/// there and become free-form.
const MAX_DEPTH: usize = 24;

/// Keys that matter to the checker; descriptions and the like are dropped.
const KEPT: &[&str] = &[
    "type",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "format",
];

/// Schemas of every kind a document declares (through
/// `x-kubernetes-group-version-kind`), keyed by `(apiVersion, kind)`.
pub fn kinds_from_openapi_v3(doc: &Value) -> BTreeMap<(String, String), Value> {
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return BTreeMap::new();
    };
    let mut resolver = Resolver {
        schemas: Source::Parsed(schemas),
        done: HashMap::new(),
        stack: Vec::new(),
    };
    declared_kinds(schemas)
        .map(|(name, key)| (key, resolver.named(name)))
        .collect()
}

/// The `(apiVersion, kind)` pairs an OpenAPI v3 document declares, as
/// [`kinds_from_openapi_v3`] finds them, without resolving their schemas.
pub fn kind_names_from_openapi_v3(doc: &Value) -> BTreeSet<(String, String)> {
    doc.pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| declared_kinds(schemas).map(|(_, key)| key).collect())
        .unwrap_or_default()
}

/// Each schema that declares a kind templates create (by its
/// `x-kubernetes-group-version-kind`), with that kind's `(apiVersion,
/// kind)`. List kinds and the shared meta types are left out.
fn declared_kinds(
    schemas: &Map<String, Value>,
) -> impl Iterator<Item = (&str, (String, String))> + '_ {
    schemas.iter().flat_map(|(name, schema)| {
        schema
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(move |gvk| {
                let (Some(group), Some(version), Some(kind)) = (
                    gvk.get("group").and_then(Value::as_str),
                    gvk.get("version").and_then(Value::as_str),
                    gvk.get("kind").and_then(Value::as_str),
                ) else {
                    return None;
                };
                if kind.ends_with("List") || group == "meta.k8s.io" || kind == "Status" {
                    return None;
                }
                let api_version = if group.is_empty() {
                    version.to_owned()
                } else {
                    format!("{group}/{version}")
                };
                Some((name.as_str(), (api_version, kind.to_owned())))
            })
    })
}

/// The schema of `kind` in `api_version` from the text of an OpenAPI v3
/// document, `None` when the document does not declare it. Only the
/// schemas the kind refers to are parsed: a group version's document
/// (1.4 MB for the core group) is never built whole in memory, and the
/// other kinds it declares are not resolved.
pub fn kind_from_openapi_v3_text(
    text: &str,
    api_version: &str,
    kind: &str,
) -> Result<Option<Value>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Doc<'a> {
        #[serde(borrow, default)]
        components: Components<'a>,
    }
    #[derive(Deserialize, Default)]
    struct Components<'a> {
        #[serde(borrow, default)]
        schemas: HashMap<Cow<'a, str>, &'a RawValue>,
    }
    /// What a schema says of the kinds it is, the rest skipped unread.
    #[derive(Deserialize)]
    struct Declared {
        #[serde(rename = "x-kubernetes-group-version-kind", default)]
        gvks: Vec<Gvk>,
    }
    #[derive(Deserialize)]
    struct Gvk {
        #[serde(default)]
        group: String,
        #[serde(default)]
        version: String,
        #[serde(default)]
        kind: String,
    }
    let doc: Doc<'_> = serde_json::from_str(text)?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let name = doc.components.schemas.iter().find_map(|(name, raw)| {
        let declared: Declared = serde_json::from_str(raw.get()).ok()?;
        declared
            .gvks
            .iter()
            .any(|g| g.group == group && g.version == version && g.kind == kind)
            .then(|| name.clone())
    });
    let Some(name) = name else {
        return Ok(None);
    };
    let mut resolver = Resolver {
        schemas: Source::Raw(&doc.components.schemas),
        done: HashMap::new(),
        stack: Vec::new(),
    };
    Ok(Some(resolver.named(&name)))
}

/// Schemas of every version a CustomResourceDefinition serves, keyed by
/// `(apiVersion, kind)`. A version without a schema is schemaless.
pub fn kinds_from_crd(crd: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let (Some(group), Some(kind), Some(versions)) = (
        crd.pointer("/spec/group").and_then(Value::as_str),
        crd.pointer("/spec/names/kind").and_then(Value::as_str),
        crd.pointer("/spec/versions").and_then(Value::as_array),
    ) else {
        return out;
    };
    for version in versions {
        let Some(name) = version.get("name").and_then(Value::as_str) else {
            continue;
        };
        if version.get("served") == Some(&Value::Bool(false)) {
            continue;
        }
        let schema = version
            .pointer("/schema/openAPIV3Schema")
            .map(prune)
            .unwrap_or_else(|| serde_json::json!({"x-kubernetes-preserve-unknown-fields": true}));
        out.insert((format!("{group}/{name}"), kind.to_owned()), schema);
    }
    out
}

/// `schema` keeping only what type checks need (no descriptions), so cached
/// schemas stay small.
pub fn prune(schema: &Value) -> Value {
    let empty = Map::new();
    let mut resolver = Resolver {
        schemas: Source::Parsed(&empty),
        done: HashMap::new(),
        stack: Vec::new(),
    };
    resolver.inline(schema)
}

/// Where named schemas are read: a parsed document, or the unparsed
/// schemas of one (each parsed when first referred to).
enum Source<'a> {
    Parsed(&'a Map<String, Value>),
    Raw(&'a HashMap<Cow<'a, str>, &'a RawValue>),
}

impl<'a> Source<'a> {
    /// Borrowed from a parsed document (which outlives the resolver),
    /// parsed afresh from an unparsed one.
    fn get(&self, name: &str) -> Option<Cow<'a, Value>> {
        match self {
            Source::Parsed(schemas) => schemas.get(name).map(Cow::Borrowed),
            Source::Raw(schemas) => schemas
                .get(name)
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
                .map(Cow::Owned),
        }
    }
}

struct Resolver<'a> {
    schemas: Source<'a>,
    done: HashMap<String, Value>,
    stack: Vec<String>,
}

impl Resolver<'_> {
    fn named(&mut self, name: &str) -> Value {
        if let Some(v) = self.done.get(name) {
            return v.clone();
        }
        if self.stack.iter().any(|s| s == name) || self.stack.len() >= MAX_DEPTH {
            return serde_json::json!({"x-kubernetes-preserve-unknown-fields": true});
        }
        let Some(schema) = self.schemas.get(name) else {
            return serde_json::json!({"x-kubernetes-preserve-unknown-fields": true});
        };
        self.stack.push(name.to_owned());
        let resolved = self.inline(&schema);
        self.stack.pop();
        self.done.insert(name.to_owned(), resolved.clone());
        resolved
    }

    fn inline(&mut self, schema: &Value) -> Value {
        let Some(obj) = schema.as_object() else {
            return schema.clone();
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            return self.named(r.rsplit('/').next().unwrap_or(r));
        }
        // `allOf: [{$ref}]` is how fields with a default point at their type.
        if let Some([only]) = obj
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            return self.inline(only);
        }
        let mut out = Map::new();
        for key in KEPT {
            let Some(v) = obj.get(*key) else { continue };
            let v = match *key {
                "properties" => Value::Object(
                    v.as_object()
                        .map(|props| {
                            props
                                .iter()
                                .map(|(k, p)| (k.clone(), self.inline(p)))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                "items" | "additionalProperties" if v.is_object() => self.inline(v),
                _ => v.clone(),
            };
            out.insert((*key).to_owned(), v);
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Two kinds, one refering to itself and one to a shared type.
    fn doc() -> Value {
        json!({"components": {"schemas": {
            "a.Thing": {"x-kubernetes-group-version-kind": [{"group": "x.io", "version": "v1", "kind": "Thing"}],
                        "type": "object", "description": "dropped",
                        "properties": {"spec": {"allOf": [{"$ref": "#/components/schemas/a.Spec"}], "default": {}},
                                       "self": {"$ref": "#/components/schemas/a.Thing"}}},
            "a.Spec": {"type": "object", "properties": {"n": {"type": "integer", "format": "int32"}}},
            "a.Core": {"x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Core"}],
                       "type": "object", "properties": {"s": {"$ref": "#/components/schemas/a.Spec"}}}
        }}})
    }

    #[test]
    fn refs_are_inlined_and_cycles_cut() {
        let kinds = kinds_from_openapi_v3(&doc());
        let thing = &kinds[&("x.io/v1".to_owned(), "Thing".to_owned())];
        assert_eq!(
            thing["properties"]["spec"]["properties"]["n"]["type"],
            "integer"
        );
        assert!(thing.get("description").is_none());
        assert_eq!(
            thing["properties"]["self"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert!(kinds.contains_key(&("v1".to_owned(), "Core".to_owned())));
    }

    #[test]
    fn one_kind_from_the_text_matches_the_whole_document_resolution() {
        let doc = doc();
        let whole = kinds_from_openapi_v3(&doc);
        let text = doc.to_string();
        for (api_version, kind) in [("x.io/v1", "Thing"), ("v1", "Core")] {
            let one = kind_from_openapi_v3_text(&text, api_version, kind)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                one.as_ref(),
                whole.get(&(api_version.to_owned(), kind.to_owned())),
                "{kind}"
            );
        }
        // Same kind name, other group: not declared.
        assert_eq!(
            kind_from_openapi_v3_text(&text, "y.io/v1", "Thing").unwrap_or_else(|e| panic!("{e}")),
            None
        );
        assert!(kind_from_openapi_v3_text("{not json", "v1", "Core").is_err());
    }

    #[test]
    fn crd_versions_are_kinds() {
        let crd = json!({"spec": {"group": "x.io", "names": {"kind": "Widget"}, "versions": [
            {"name": "v1", "served": true, "schema": {"openAPIV3Schema": {"type": "object",
                "description": "dropped", "properties": {"spec": {"type": "object",
                "properties": {"size": {"type": "integer"}}}}}}},
            {"name": "v2", "served": true},
            {"name": "v0", "served": false, "schema": {"openAPIV3Schema": {"type": "object"}}}
        ]}});
        let kinds = kinds_from_crd(&crd);
        let v1 = &kinds[&("x.io/v1".to_owned(), "Widget".to_owned())];
        assert_eq!(
            v1["properties"]["spec"]["properties"]["size"]["type"],
            "integer"
        );
        assert!(v1.get("description").is_none());
        assert_eq!(
            kinds[&("x.io/v2".to_owned(), "Widget".to_owned())]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(kinds.len(), 2);
    }
}

//! Resource schemas from Kubernetes OpenAPI v3 documents (what
//! `/openapi/v3/apis/<group>/<version>` serves): each kind's schema with its
//! `$ref`s inlined, keeping only what type checks need.

use std::collections::{BTreeMap, HashMap};

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
        schemas,
        done: HashMap::new(),
        stack: Vec::new(),
    };
    let mut out = BTreeMap::new();
    for (name, schema) in schemas {
        let Some(gvks) = schema
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for gvk in gvks {
            let (Some(group), Some(version), Some(kind)) = (
                gvk.get("group").and_then(Value::as_str),
                gvk.get("version").and_then(Value::as_str),
                gvk.get("kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            // List kinds and the shared meta types are not what templates create.
            if kind.ends_with("List") || group == "meta.k8s.io" || kind == "Status" {
                continue;
            }
            let api_version = if group.is_empty() {
                version.to_owned()
            } else {
                format!("{group}/{version}")
            };
            out.insert((api_version, kind.to_owned()), resolver.named(name));
        }
    }
    out
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
        schemas: &empty,
        done: HashMap::new(),
        stack: Vec::new(),
    };
    resolver.inline(schema)
}

struct Resolver<'a> {
    schemas: &'a Map<String, Value>,
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
        let resolved = self.inline(schema);
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

    #[test]
    fn refs_are_inlined_and_cycles_cut() {
        let doc = json!({"components": {"schemas": {
            "a.Thing": {"x-kubernetes-group-version-kind": [{"group": "x.io", "version": "v1", "kind": "Thing"}],
                        "type": "object", "description": "dropped",
                        "properties": {"spec": {"allOf": [{"$ref": "#/components/schemas/a.Spec"}], "default": {}},
                                       "self": {"$ref": "#/components/schemas/a.Thing"}}},
            "a.Spec": {"type": "object", "properties": {"n": {"type": "integer", "format": "int32"}}},
            "a.Core": {"x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Core"}], "type": "object"}
        }}});
        let kinds = kinds_from_openapi_v3(&doc);
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

//! OpenAPI v3 documents of custom resources, built from their CRDs as the real server's
//! CRD OpenAPI builder does: each served version's `openAPIV3Schema` becomes the kind's
//! schema with `metadata` referring to `ObjectMeta`, `apiVersion` and `kind` described, and
//! the group-version-kind extension; a `<Kind>List` schema; the resource's paths; and the
//! shared meta schemas those refer to.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value, json};

use super::builtin;
use crate::catalog::ResourceDef;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// A schema name as the server derives it: the group's labels reversed, then version and
/// kind (`stable.example.com/v1/CronTab` is `com.example.stable.v1.CronTab`).
pub fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let mut labels: Vec<&str> = group.split('.').collect();
    labels.reverse();
    format!("{}.{version}.{kind}", labels.join("."))
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A reference with siblings: OpenAPI v3 wraps it in `allOf`.
fn wrapped(name: &str, description: &str) -> Value {
    json!({"allOf": [reference(name)], "description": description})
}

fn type_meta(props: &mut Map<String, Value>) {
    props.insert(
        "apiVersion".into(),
        json!({"description": API_VERSION_DOC, "type": "string"}),
    );
    props.insert(
        "kind".into(),
        json!({"description": KIND_DOC, "type": "string"}),
    );
}

/// The kind's schema from its CRD version's `openAPIV3Schema`.
fn kind_schema(def: &ResourceDef) -> Value {
    let mut schema = def
        .custom
        .as_ref()
        .and_then(|c| c.schema.clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Value::Object(m) = &mut schema {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(props) = props {
            props.insert("metadata".into(), wrapped(OBJECT_META, METADATA_DOC));
            type_meta(props);
        }
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": def.group, "kind": def.kind, "version": def.version}]),
        );
    }
    schema
}

fn list_schema(def: &ResourceDef, item: &str) -> Value {
    let list_kind = format!("{}List", def.kind);
    let mut props = Map::new();
    props.insert(
        "items".into(),
        json!({"description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/api-conventions.md", def.plural),
            "items": reference(item), "type": "array"}),
    );
    props.insert(
        "metadata".into(),
        wrapped(LIST_META, "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
    );
    type_meta(&mut props);
    json!({
        "description": format!("{list_kind} is a list of {}", def.kind),
        "properties": props,
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": def.group, "kind": list_kind, "version": def.version}],
    })
}

/// Query and path parameters as the built-in documents describe them, by name.
fn parameters() -> &'static HashMap<String, Value> {
    static PARAMS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let mut out = HashMap::new();
        let Some(doc) = builtin::document("apps", "v1") else {
            return out;
        };
        let Ok(parsed) = serde_json::from_str::<Value>(&doc.text) else {
            return out;
        };
        let Some(Value::Object(paths)) = parsed.get("paths") else {
            return out;
        };
        for item in paths.values() {
            let ops = item.as_object().into_iter().flat_map(|m| m.values());
            for params in std::iter::once(item)
                .chain(ops)
                .filter_map(|o| o.get("parameters"))
            {
                for p in params.as_array().into_iter().flatten() {
                    if let Some(name) = p.get("name").and_then(Value::as_str) {
                        out.entry(name.to_owned()).or_insert_with(|| p.clone());
                    }
                }
            }
        }
        out
    })
}

fn param(name: &str) -> Value {
    parameters().get(name).cloned().unwrap_or_else(
        || json!({"in": "query", "name": name, "schema": {"type": "string", "uniqueItems": true}}),
    )
}

fn camel(s: &str) -> String {
    s.split(['.', '-'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The operations of one resource, as `x-kubernetes-action` tells kubectl.
struct Ops<'a> {
    def: &'a ResourceDef,
    name: String,
}

impl Ops<'_> {
    fn op(&self, action: &str, verb: &str, suffix: &str, body: Option<&str>, out: &str) -> Value {
        let scope = if self.def.namespaced {
            "Namespaced"
        } else {
            ""
        };
        let id = format!(
            "{verb}{}{}{scope}{}{suffix}",
            camel(&self.def.group),
            camel(&self.def.version),
            self.def.kind
        );
        let mut params = Vec::new();
        match action {
            "list" | "deletecollection" => {
                for p in [
                    "labelSelector",
                    "fieldSelector",
                    "limit",
                    "continue",
                    "resourceVersion",
                    "timeoutSeconds",
                ] {
                    params.push(param(p));
                }
                if action == "list" {
                    params.push(param("watch"));
                    params.push(param("allowWatchBookmarks"));
                    params.push(param("sendInitialEvents"));
                }
            }
            "post" | "put" => {
                params.extend(["dryRun", "fieldManager", "fieldValidation"].map(param));
            }
            "patch" => {
                params.extend(["dryRun", "fieldManager", "fieldValidation", "force"].map(param));
            }
            "delete" => {
                params.extend(["dryRun", "gracePeriodSeconds", "propagationPolicy"].map(param));
            }
            _ => {}
        }
        let content = |schema: Value| json!({"application/json": {"schema": schema.clone()}, "application/yaml": {"schema": schema}});
        let mut op = json!({
            "description": format!("{action} {}", self.def.kind),
            "operationId": id,
            "parameters": params,
            "responses": {"200": {"description": "OK", "content": content(reference(out))},
                "401": {"description": "Unauthorized"}},
            "tags": [format!("{}_{}", camel(&self.def.group), self.def.version)],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": self.def.group, "version": self.def.version, "kind": self.def.kind},
        });
        match (action, body) {
            ("patch", _) => {
                let patch = json!({"schema": reference(PATCH)});
                op["requestBody"] = json!({"content": {
                    "application/apply-patch+yaml": patch,
                    "application/json-patch+json": patch,
                    "application/merge-patch+json": patch,
                }, "required": true});
            }
            (_, Some(b)) => {
                op["requestBody"] =
                    json!({"content": {"*/*": {"schema": reference(b)}}, "required": true});
            }
            _ => {}
        }
        op
    }

    fn paths(&self, out: &mut Map<String, Value>) {
        let d = self.def;
        let base = if d.namespaced {
            format!(
                "/apis/{}/{}/namespaces/{{namespace}}/{}",
                d.group, d.version, d.plural
            )
        } else {
            format!("/apis/{}/{}/{}", d.group, d.version, d.plural)
        };
        let list = format!("{}List", schema_name(&d.group, &d.version, &d.kind));
        let mut common = vec![param("pretty")];
        if d.namespaced {
            common.insert(0, param("namespace"));
        }
        let mut named = common.clone();
        let mut name = param("name");
        name["description"] = json!(format!("name of the {}", d.kind));
        named.insert(0, name);
        out.insert(
            base.clone(),
            json!({
                "get": self.op("list", "list", "", None, &list),
                "post": self.op("post", "create", "", Some(&self.name), &self.name),
                "delete": self.op("deletecollection", "deletecollection", "", Some(DELETE_OPTIONS), STATUS),
                "parameters": common,
            }),
        );
        out.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": self.op("get", "read", "", None, &self.name),
                "put": self.op("put", "replace", "", Some(&self.name), &self.name),
                "patch": self.op("patch", "patch", "", None, &self.name),
                "delete": self.op("delete", "delete", "", Some(DELETE_OPTIONS), STATUS),
                "parameters": named,
            }),
        );
        for (sub, suffix, schema) in [
            ("status", "Status", self.name.as_str()),
            ("scale", "Scale", SCALE),
        ] {
            let enabled = if sub == "status" { d.status } else { d.scale };
            if enabled {
                out.insert(
                    format!("{base}/{{name}}/{sub}"),
                    json!({
                        "get": self.op("get", "read", suffix, None, schema),
                        "put": self.op("put", "replace", suffix, Some(schema), schema),
                        "patch": self.op("patch", "patch", suffix, None, schema),
                        "parameters": named,
                    }),
                );
            }
        }
    }
}

/// Adds `name` and every schema it refers to (transitively) from the shared schemas.
fn add_with_refs(name: &str, into: &mut BTreeMap<String, Value>) {
    if into.contains_key(name) {
        return;
    }
    let Some(schema) = builtin::shared_schemas().get(name) else {
        return;
    };
    into.insert(name.to_owned(), schema.clone());
    let mut refs = Vec::new();
    collect_refs(schema, &mut refs);
    for r in refs {
        add_with_refs(&r, into);
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(r.to_owned());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The document of a custom resources' group version: every resource of `defs` (all
/// served by CRDs) with its schemas and paths.
pub fn document(defs: &[Arc<ResourceDef>]) -> Value {
    let mut paths = Map::new();
    let mut schemas = BTreeMap::new();
    for def in defs {
        let name = schema_name(&def.group, &def.version, &def.kind);
        let ops = Ops {
            def,
            name: name.clone(),
        };
        ops.paths(&mut paths);
        schemas.insert(format!("{name}List"), list_schema(def, &name));
        schemas.insert(name, kind_schema(def));
    }
    let mut refs = Vec::new();
    for s in schemas.values() {
        collect_refs(s, &mut refs);
    }
    collect_refs(&Value::Object(paths.clone()), &mut refs);
    for r in [STATUS, DELETE_OPTIONS, PATCH, WATCH_EVENT]
        .map(str::to_owned)
        .into_iter()
        .chain(refs)
    {
        add_with_refs(&r, &mut schemas);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas.into_iter().collect::<Map<String, Value>>()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_reverse_the_group() {
        assert_eq!(
            schema_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
    }

    #[test]
    fn refs_pull_in_their_closure() {
        let mut s = BTreeMap::new();
        add_with_refs(OBJECT_META, &mut s);
        assert!(s.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"));
        assert!(s.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"));
    }
}

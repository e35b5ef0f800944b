//! `/openapi/v2`: the Swagger 2.0 document, built from the same per-group-version OpenAPI v3
//! documents `/openapi/v3` serves (the recorded built-in ones and the CRDs'), converted the
//! way the real server's documents differ: `#/definitions/` references, a single-reference
//! `allOf` as a plain `$ref`, v3-only keywords (`anyOf`, `oneOf`, `not`, `nullable`)
//! dropped, query parameters with their type inline, request bodies as `body` parameters
//! and responses with `schema` instead of `content`.

use serde_json::{Map, Value, json};

use super::document;
use crate::state::Shared;

const V3_REF: &str = "#/components/schemas/";
const V2_REF: &str = "#/definitions/";

/// Whether an `Accept` header takes the JSON document.
pub fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return true;
    };
    accept.split(',').any(|entry| {
        let t = entry.split(';').next().unwrap_or_default().trim();
        matches!(t, "application/json" | "application/*" | "*/*")
    })
}

/// The whole document: every served group version's paths and definitions.
pub fn document_v2(sh: &Shared) -> Value {
    let mut gvs: Vec<(String, String)> = sh
        .catalog()
        .all()
        .map(|d| (d.group.clone(), d.version.clone()))
        .collect();
    gvs.sort();
    gvs.dedup();
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for (g, v) in gvs {
        let Some(doc) = document(sh, &g, &v) else {
            continue;
        };
        let Ok(v3) = serde_json::from_str::<Value>(&doc.text) else {
            continue;
        };
        if let Some(schemas) = v3.pointer("/components/schemas").and_then(Value::as_object) {
            for (name, schema) in schemas {
                definitions
                    .entry(name.clone())
                    .or_insert_with(|| convert_schema(schema));
            }
        }
        if let Some(ps) = v3.get("paths").and_then(Value::as_object) {
            for (path, item) in ps {
                paths.insert(path.clone(), convert_path_item(item));
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.6"},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    })
}

fn convert_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                match k.as_str() {
                    "anyOf" | "oneOf" | "not" | "nullable" => {}
                    "$ref" => {
                        let r = val.as_str().unwrap_or_default();
                        out.insert(k.clone(), json!(r.replace(V3_REF, V2_REF)));
                    }
                    "allOf" => match val.as_array().map(Vec::as_slice) {
                        Some([single]) if single.get("$ref").is_some() => {
                            if let Value::Object(inner) = convert_schema(single) {
                                out.extend(inner);
                            }
                        }
                        _ => {
                            out.insert(k.clone(), convert_schema(val));
                        }
                    },
                    _ => {
                        out.insert(k.clone(), convert_schema(val));
                    }
                }
            }
            // A `$ref` stands alone in Swagger 2.0 except for its description.
            if out.contains_key("$ref") {
                out.retain(|k, _| k == "$ref" || k == "description");
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(convert_schema).collect()),
        other => other.clone(),
    }
}

fn convert_parameter(p: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in p.as_object().into_iter().flatten() {
        match k.as_str() {
            // A v3 parameter's schema holds what v2 writes on the parameter itself.
            "schema" => {
                if let Value::Object(s) = convert_schema(v) {
                    out.extend(s);
                }
            }
            "$ref" => {
                let r = v.as_str().unwrap_or_default();
                out.insert(
                    k.clone(),
                    json!(r.replace("#/components/parameters/", "#/parameters/")),
                );
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn convert_operation(op: &Value) -> Value {
    let Value::Object(m) = op else {
        return op.clone();
    };
    let mut out = Map::new();
    let mut parameters: Vec<Value> = m
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(convert_parameter).collect())
        .unwrap_or_default();
    let mut consumes = Vec::new();
    if let Some(content) = m
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
    {
        consumes.extend(content.keys().cloned().map(Value::String));
        if let Some(schema) = content.values().find_map(|c| c.get("schema")) {
            parameters.push(json!({"name": "body", "in": "body", "required": true,
                "schema": convert_schema(schema)}));
        }
    }
    let mut produces: Vec<Value> = Vec::new();
    let mut responses = Map::new();
    for (code, r) in m
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut resp = Map::new();
        resp.insert(
            "description".into(),
            r.get("description").cloned().unwrap_or(json!("")),
        );
        if let Some(content) = r.get("content").and_then(Value::as_object) {
            for t in content.keys() {
                if !produces.iter().any(|p| p == t) {
                    produces.push(json!(t));
                }
            }
            if let Some(schema) = content.values().find_map(|c| c.get("schema")) {
                resp.insert("schema".into(), convert_schema(schema));
            }
        }
        responses.insert(code.clone(), Value::Object(resp));
    }
    for (k, v) in m {
        match k.as_str() {
            "parameters" | "requestBody" | "responses" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if !consumes.is_empty() {
        out.insert("consumes".into(), Value::Array(consumes));
    }
    if !produces.is_empty() {
        out.insert("produces".into(), Value::Array(produces));
    }
    out.insert("schemes".into(), json!(["https"]));
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

fn convert_path_item(item: &Value) -> Value {
    let Value::Object(m) = item else {
        return item.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "parameters" => {
                let ps: Vec<Value> = v
                    .as_array()
                    .map(|ps| ps.iter().map(convert_parameter).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(ps));
            }
            "get" | "put" | "post" | "delete" | "patch" | "head" | "options" => {
                out.insert(k.clone(), convert_operation(v));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kubectl asks for: the protobuf form only.
    const PROTOBUF_MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

    #[test]
    fn schemas_use_definitions_and_plain_refs() {
        let v3 = json!({"properties": {
            "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
                         "default": {}, "description": "Standard object's metadata."},
            "port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true}}});
        let v2 = convert_schema(&v3);
        assert_eq!(
            v2["properties"]["metadata"],
            json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                   "description": "Standard object's metadata."})
        );
        assert_eq!(
            v2["properties"]["port"],
            json!({"x-kubernetes-int-or-string": true})
        );
    }

    #[test]
    fn json_unless_only_protobuf_is_accepted() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("application/json")));
        assert!(accepts_json(Some(&format!("{PROTOBUF_MEDIA_TYPE}, */*"))));
        assert!(!accepts_json(Some(PROTOBUF_MEDIA_TYPE)));
    }
}

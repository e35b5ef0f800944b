//! The scale subresource: a `Scale` view of an object's replica fields (the CRD's paths
//! for custom resources).

use serde_json::{Map, Value, json};

use crate::catalog::ResourceDef;
use crate::error::{ApiError, ApiResult, Cause};
use crate::meta::{meta_mut, meta_str};

/// JSON pointers of the scale subresource's replica fields: the CRD's paths, or the
/// built-in `.spec.replicas` / `.status.replicas`.
fn paths(def: &ResourceDef) -> (String, String) {
    let from = |key: &str, default: &str| {
        def.custom
            .as_ref()
            .and_then(|c| c.scale.as_ref())
            .and_then(|s| s.get(key))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .replace('.', "/")
    };
    (
        from("specReplicasPath", ".spec.replicas"),
        from("statusReplicasPath", ".status.replicas"),
    )
}

pub fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let (spec_path, status_path) = paths(def);
    let spec_path = spec_path.as_str();
    let status_path = status_path.as_str();
    let replicas = obj.pointer(spec_path).cloned().unwrap_or(json!(0));
    let mut status = json!({"replicas": obj.pointer(status_path).cloned().unwrap_or(json!(0))});
    if let Some(sel) = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
    {
        let s = sel
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",");
        status["selector"] = json!(s);
    }
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
           "spec": {"replicas": replicas}, "status": status})
}

pub fn apply_scale(def: &ResourceDef, old: &Value, scale: &Value) -> ApiResult<Value> {
    let mut obj = old.clone();
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    if replicas.as_i64().is_some_and(|r| r < 0) {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            meta_str(old, "name").unwrap_or_default(),
            vec![Cause::invalid(
                "spec.replicas",
                &replicas,
                "must be greater than or equal to 0",
            )],
        ));
    }
    let (spec_path, _) = paths(def);
    let mut cur = &mut obj;
    let segs: Vec<&str> = spec_path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == segs.len() {
            cur[*seg] = replicas.clone();
            break;
        }
        cur = &mut cur[*seg];
    }
    if let Some(rv) = meta_str(scale, "resourceVersion") {
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
    }
    Ok(obj)
}

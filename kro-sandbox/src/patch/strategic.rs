//! Strategic merge patch for built-in kinds: like a merge patch, but lists
//! whose schema says `x-kubernetes-patch-strategy: merge` merge items by
//! `x-kubernetes-patch-merge-key` (or as a set, for scalars), and the
//! `$patch`, `$retainKeys`, `$setElementOrder/` and `$deleteFromPrimitiveList/`
//! directives apply.

use serde_json::{Map, Value};

use super::error::PatchError;
use super::schema::{Shape, Ty};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original`.
pub fn strategic_merge(ty: Ty<'_>, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(pm) = patch else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            if patch.is_array() { "array" } else { "value" }
        )));
    };
    match original {
        Value::Object(om) => {
            Ok(merge_map(ty, om, pm)?.map_or(Value::Object(Map::new()), Value::Object))
        }
        _ => Ok(clean(patch).unwrap_or(Value::Object(Map::new()))),
    }
}

fn directive(m: &Map<String, Value>) -> Option<&str> {
    m.get(PATCH).and_then(Value::as_str)
}

fn bad(msg: String) -> PatchError {
    PatchError::BadRequest(msg)
}

/// Merges a patch map; `None` when the patch deletes the whole map.
fn merge_map(
    ty: Ty<'_>,
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match directive(patch) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            return Ok(match clean(&Value::Object(patch.clone())) {
                Some(Value::Object(m)) => Some(m),
                _ => Some(Map::new()),
            });
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(bad(format!(
                "Unknown patch type: {other} in map: {patch:?}"
            )));
        }
    }
    let mut out = original.clone();
    if let Some(keys) = patch.get(RETAIN_KEYS) {
        let Some(keys) = keys.as_array() else {
            return Err(bad(format!("invalid patch: {RETAIN_KEYS} must be a list")));
        };
        out.retain(|k, _| keys.iter().any(|r| r.as_str() == Some(k)));
    }
    for (k, pv) in patch {
        if k == PATCH || k == RETAIN_KEYS || k.starts_with(SET_ORDER) {
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let Some(drop) = pv.as_array() else {
                return Err(bad(format!("invalid patch: {k} must be a list")));
            };
            if let Some(Value::Array(items)) = out.get_mut(field) {
                items.retain(|i| !drop.contains(i));
            }
            continue;
        }
        let cty = ty.field(k).unwrap_or(Ty::DEDUCED);
        if pv.is_null() {
            out.remove(k);
            continue;
        }
        let replaces = cty.patch_strategies().contains(&"replace");
        let merged = match (out.get(k), pv) {
            (Some(Value::Object(_)), Value::Object(_)) if replaces => clean(pv),
            (Some(Value::Object(om)), Value::Object(sub)) => {
                merge_map(cty, om, sub)?.map(Value::Object)
            }
            (Some(Value::Array(ol)), Value::Array(pl)) => Some(merge_list(cty, ol, pl)?),
            (_, Value::Array(pl)) => Some(merge_list(cty, &[], pl)?),
            (_, Value::Object(sub)) if directive(sub) == Some("delete") => None,
            _ => clean(pv),
        };
        match merged {
            Some(v) => {
                out.insert(k.clone(), v);
            }
            None => {
                out.remove(k);
            }
        }
    }
    for (k, order) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER)
            && let (Some(Value::Array(items)), Some(order)) = (out.get_mut(field), order.as_array())
        {
            let key = ty.field(field).and_then(|t| t.patch_merge_key());
            let server = original
                .get(field)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            reorder(items, order, key, server);
        }
    }
    Ok(Some(out))
}

fn merge_list(ty: Ty<'_>, original: &[Value], patch: &[Value]) -> Result<Value, PatchError> {
    let merges = ty.patch_strategies().contains(&"merge");
    if !merges {
        return Ok(clean(&Value::Array(patch.to_vec())).unwrap_or(Value::Array(Vec::new())));
    }
    if let Some(rest) = replace_directive(patch) {
        return Ok(clean(&Value::Array(rest)).unwrap_or(Value::Array(Vec::new())));
    }
    let elem = match ty.shape() {
        Shape::List(elem, _) => elem,
        _ => Ty::DEDUCED,
    };
    let Some(key) = ty.patch_merge_key() else {
        // A set of scalars: union, keeping the original order.
        let mut out = original.to_vec();
        for v in patch {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        return Ok(Value::Array(out));
    };
    let mut out = original.to_vec();
    for item in patch {
        let Value::Object(pm) = item else {
            return Err(bad(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let Some(kv) = pm.get(key) else {
            return Err(bad(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let pos = out.iter().position(|o| o.get(key) == Some(kv));
        match (directive(pm), pos) {
            (Some("delete"), Some(i)) => {
                out.remove(i);
                out.retain(|o| o.get(key) != Some(kv));
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                let merged = match &out[i] {
                    Value::Object(om) => merge_map(elem, om, pm)?,
                    _ => match clean(item) {
                        Some(Value::Object(m)) => Some(m),
                        _ => None,
                    },
                };
                match merged {
                    Some(m) => out[i] = Value::Object(m),
                    None => {
                        out.remove(i);
                    }
                }
            }
            (_, None) => {
                if let Some(v) = clean(item) {
                    out.push(v);
                }
            }
        }
    }
    Ok(Value::Array(out))
}

/// A `{"$patch": "replace"}` item replaces the list by the other items.
fn replace_directive(patch: &[Value]) -> Option<Vec<Value>> {
    let has = patch.iter().any(|i| {
        i.as_object()
            .is_some_and(|m| m.len() == 1 && directive(m) == Some("replace"))
    });
    has.then(|| {
        patch
            .iter()
            .filter(|i| {
                !i.as_object()
                    .is_some_and(|m| m.len() == 1 && directive(m) == Some("replace"))
            })
            .cloned()
            .collect()
    })
}

/// Orders `items` as the real server does for `$setElementOrder`: the
/// listed items in that order, the others (server-only) kept in their
/// relative order and interleaved by their position in the live list.
fn reorder(items: &mut Vec<Value>, order: &[Value], key: Option<&str>, server: &[Value]) {
    let same = |a: &Value, b: &Value| match key {
        Some(k) => a.get(k).is_some() && a.get(k) == b.get(k),
        None => a == b,
    };
    let rank = |v: &Value| order.iter().position(|o| same(o, v));
    let mut listed: Vec<Value> = Vec::new();
    let mut server_only: Vec<Value> = Vec::new();
    for v in items.drain(..) {
        if rank(&v).is_some() {
            listed.push(v);
        } else {
            server_only.push(v);
        }
    }
    listed.sort_by_key(|v| rank(v));
    let live_index = |v: &Value| server.iter().position(|s| same(s, v));
    let (mut i, mut j) = (0, 0);
    while i < server_only.len() || j < listed.len() {
        let take_left = if i >= server_only.len() {
            false
        } else if j >= listed.len() {
            true
        } else {
            matches!((live_index(&server_only[i]), live_index(&listed[j])), (Some(l), Some(r)) if l < r)
        };
        if take_left {
            items.push(server_only[i].clone());
            i += 1;
        } else {
            items.push(listed[j].clone());
            j += 1;
        }
    }
}

/// A patch value with its directives removed, as stored when nothing
/// merges into it; `None` when it deletes itself.
fn clean(v: &Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if directive(m) == Some("delete") {
                return None;
            }
            let mut out = Map::new();
            for (k, val) in m {
                if k == PATCH
                    || k == RETAIN_KEYS
                    || k.starts_with(SET_ORDER)
                    || k.starts_with(DELETE_PRIMITIVE)
                {
                    continue;
                }
                if val.is_null() {
                    continue;
                }
                if let Some(c) = clean(val) {
                    out.insert(k.clone(), c);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => Some(Value::Array(items.iter().filter_map(clean).collect())),
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::schema::TypeInfo;
    use serde_json::json;

    fn deploy() -> TypeInfo {
        TypeInfo::builtin("apps/v1", "Deployment").unwrap()
    }

    fn pod_spec(containers: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn containers_merge_by_name_and_delete_directive_removes() {
        let t = deploy();
        let orig = pod_spec(json!([
            {"name": "main", "image": "nginx:1.25"},
            {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "3600"]},
        ]));
        let p = pod_spec(json!([{"name": "sidecar", "image": "busybox:1.37"}]));
        let got = strategic_merge(t.root(), &orig, &p).unwrap();
        assert_eq!(
            got,
            pod_spec(json!([
                {"name": "main", "image": "nginx:1.25"},
                {"name": "sidecar", "image": "busybox:1.37", "args": ["sleep", "3600"]},
            ]))
        );
        let p = pod_spec(json!([{"name": "sidecar", "$patch": "delete"}]));
        let got = strategic_merge(t.root(), &got, &p).unwrap();
        assert_eq!(
            got,
            pod_spec(json!([{"name": "main", "image": "nginx:1.25"}]))
        );
        let p = pod_spec(json!([{"name": "new", "image": "x"}]));
        let got = strategic_merge(t.root(), &got, &p).unwrap();
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"][1]["name"],
            "new"
        );
    }

    #[test]
    fn lists_without_strategy_replace_and_null_removes() {
        let t = deploy();
        let orig = pod_spec(json!([{"name": "main", "args": ["a", "b"], "image": "i"}]));
        let p = pod_spec(json!([{"name": "main", "args": ["c"], "image": null}]));
        let got = strategic_merge(t.root(), &orig, &p).unwrap();
        assert_eq!(got, pod_spec(json!([{"name": "main", "args": ["c"]}])));
    }

    #[test]
    fn replace_directives_and_retain_keys() {
        let t = deploy();
        let orig = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
                          "metadata": {"labels": {"a": "1", "b": "2"}}});
        let p = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}},
                       "metadata": {"labels": {"$patch": "replace", "c": "3"}}});
        let got = strategic_merge(t.root(), &orig, &p).unwrap();
        assert_eq!(
            got,
            json!({"spec": {"strategy": {"type": "Recreate"}}, "metadata": {"labels": {"c": "3"}}})
        );
        let orig = pod_spec(json!([{"name": "a"}, {"name": "b"}]));
        let p = pod_spec(json!([{"$patch": "replace"}, {"name": "z"}]));
        assert_eq!(
            strategic_merge(t.root(), &orig, &p).unwrap(),
            pod_spec(json!([{"name": "z"}]))
        );
    }

    #[test]
    fn primitive_sets_union_delete_and_order() {
        let t = TypeInfo::builtin("v1", "ConfigMap").unwrap();
        let orig = json!({"metadata": {"finalizers": ["a", "b"]}});
        let p = json!({"metadata": {"finalizers": ["c", "a"]}});
        let got = strategic_merge(t.root(), &orig, &p).unwrap();
        assert_eq!(got["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let p = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"],
                                    "$setElementOrder/finalizers": ["c", "b"]}});
        let got = strategic_merge(t.root(), &got, &p).unwrap();
        assert_eq!(got["metadata"]["finalizers"], json!(["c", "b"]));
    }

    #[test]
    fn set_element_order_reorders_keyed_items() {
        let t = deploy();
        let orig = pod_spec(json!([{"name": "a"}, {"name": "b"}]));
        let mut p = pod_spec(json!([{"name": "c"}]));
        p["spec"]["template"]["spec"]["$setElementOrder/containers"] =
            json!([{"name": "c"}, {"name": "b"}, {"name": "a"}]);
        let got = strategic_merge(t.root(), &orig, &p).unwrap();
        assert_eq!(
            got,
            pod_spec(json!([{"name": "c"}, {"name": "b"}, {"name": "a"}]))
        );
    }

    #[test]
    fn set_element_order_interleaves_server_only_items_by_live_position() {
        let t = deploy();
        // `injected` exists only on the server, between a and b.
        let orig = pod_spec(json!([{"name": "a"}, {"name": "injected"}, {"name": "b"}]));
        let mut p = pod_spec(json!([{"name": "c"}]));
        p["spec"]["template"]["spec"]["$setElementOrder/containers"] =
            json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]);
        let got = strategic_merge(t.root(), &orig, &p).unwrap();
        assert_eq!(
            got,
            pod_spec(json!([{"name": "a"}, {"name": "injected"}, {"name": "b"}, {"name": "c"}]))
        );
    }

    #[test]
    fn maps_with_the_replace_strategy_are_replaced() {
        let t = TypeInfo::builtin("policy/v1", "PodDisruptionBudget").unwrap();
        let orig = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}});
        let p = json!({"spec": {"selector": {"matchExpressions": []}}});
        let got = strategic_merge(t.root(), &orig, &p).unwrap();
        assert_eq!(
            got,
            json!({"spec": {"selector": {"matchExpressions": []}, "minAvailable": 1}})
        );
    }

    #[test]
    fn items_without_the_merge_key_are_bad_requests() {
        let t = deploy();
        let err = strategic_merge(
            t.root(),
            &pod_spec(json!([])),
            &pod_spec(json!([{"image": "x"}])),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            strategic_merge(t.root(), &json!({}), &json!([1]))
                .unwrap_err()
                .status_code(),
            400
        );
    }
}

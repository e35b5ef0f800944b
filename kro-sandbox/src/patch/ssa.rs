//! Server-side apply: merge an applied configuration into the live object by
//! the schema's list and map semantics, drop what the manager stopped
//! applying, and settle ownership (conflicts unless forced).

use serde_json::{Map, Value};

use super::error::PatchError;
use super::fieldpath::{FieldSet, PathElement, path_string};
use super::managed::{self, Write, item_element};
use super::schema::{ListKind, Shape, Ty, TypeInfo};

/// Decodes an `application/apply-patch+yaml` body (YAML or JSON).
pub fn parse_body(body: &[u8]) -> Result<Value, PatchError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| PatchError::BadRequest(format!("error decoding YAML: {e}")))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        PatchError::BadRequest(format!(
            "error decoding YAML: error converting YAML to JSON: yaml: {}",
            go_yaml_message(&e.to_string())
        ))
    })
}

/// Rewords a YAML parser error like go-yaml (`line N: <problem>`).
fn go_yaml_message(raw: &str) -> String {
    let line = raw
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| "1".to_owned());
    let lower = raw.to_ascii_lowercase();
    let problem = if lower.contains("flow mapping") || lower.contains('}') {
        "did not find expected ',' or '}'"
    } else if lower.contains("flow sequence") || lower.contains(']') {
        "did not find expected ',' or ']'"
    } else if lower.contains("indent") || lower.contains("mapping values") {
        "mapping values are not allowed in this context"
    } else {
        "did not find expected node content"
    };
    format!("line {line}: {problem}")
}

/// Server-side apply of `config` onto `live` (`None`: the object is created).
/// Returns the merged object with its new `managedFields`.
pub fn apply(
    ty: &TypeInfo,
    live: Option<&Value>,
    config: &Value,
    w: Write<'_>,
    force: bool,
) -> Result<Value, PatchError> {
    if w.manager.is_empty() {
        return Err(PatchError::MissingFieldManager);
    }
    let Value::Object(cfg_map) = config else {
        return Err(PatchError::BadRequest(format!(
            "error decoding YAML: applied configuration must be an object, got {config}"
        )));
    };
    let mut cfg = cfg_map.clone();
    if let Some(Value::Object(meta)) = cfg.get_mut("metadata") {
        meta.remove("managedFields");
    }
    let config = Value::Object(cfg);
    let scoped = managed::scope(ty, w.subresource, &config);
    let root = ty.root();
    let config_set = managed::to_field_set(root, &scoped).map_err(|(path, why)| {
        let meta = |k: &str| {
            config
                .pointer(&format!("/metadata/{k}"))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let api_version = config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or(ty.api_version());
        let kind = config
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or(ty.kind());
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        PatchError::TypedPatch {
            object: format!("{}/{}", meta("namespace"), meta("name")),
            gvk: format!("{group}/{version}, Kind={kind}"),
            detail: format!("{}: {why}", path_string(&path)),
        }
    })?;
    let (last, others) = managed::apply_sets(live, w.manager, w.subresource);

    let base = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    // Fields outside the subresource's scope are absent from `scoped`, so
    // the merge keeps them as they were.
    let mut merged = merge(root, Some(&base), &scoped);
    let config_set = config_set.difference(&managed::untracked());
    if !last.is_empty() {
        let remove = last.difference(&config_set).difference(&others);
        let owned = others.union(&config_set);
        prune(root, &mut merged, &remove, Some(&owned));
    }
    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or(ty.api_version());
    let entries = managed::record_apply(ty, live, &merged, config_set, api_version, w, force)
        .map_err(PatchError::Conflict)?;
    managed::encode_into(&mut merged, &entries);
    Ok(merged)
}

/// Merges `r` (the configuration) into `l` (the live value).
pub(crate) fn merge(ty: Ty<'_>, l: Option<&Value>, r: &Value) -> Value {
    match ty.shape() {
        Shape::Scalar => r.clone(),
        Shape::List(elem, kind) => match (l, r) {
            (Some(Value::Array(la)), Value::Array(ra)) if kind != ListKind::Atomic => {
                merge_list(elem, &kind, la, ra).unwrap_or_else(|| r.clone())
            }
            _ => r.clone(),
        },
        Shape::Deduced | Shape::Struct | Shape::Map(_) => match (l, r) {
            (Some(Value::Object(lm)), Value::Object(rm)) if !ty.is_atomic_map() => {
                let mut out = lm.clone();
                for (k, rv) in rm {
                    if rv.is_null() {
                        out.remove(k);
                        continue;
                    }
                    let cty = ty.field(k).unwrap_or(Ty::DEDUCED);
                    let merged = merge(cty, lm.get(k), rv);
                    out.insert(k.clone(), merged);
                }
                Value::Object(out)
            }
            _ => r.clone(),
        },
    }
}

fn merge_list(elem: Ty<'_>, kind: &ListKind<'_>, la: &[Value], ra: &[Value]) -> Option<Value> {
    let key = |items: &[Value]| -> Option<Vec<PathElement>> {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| item_element(kind, elem, v, i).ok())
            .collect()
    };
    let (lk, rk) = (key(la)?, key(ra)?);
    let mut out = Vec::with_capacity(la.len().max(ra.len()));
    let mut emitted: Vec<&PathElement> = Vec::new();
    let (mut li, mut ri) = (0, 0);
    while li < la.len() || ri < ra.len() {
        if li < la.len() && ri < ra.len() && lk[li] == rk[ri] {
            out.push(merge(elem, Some(&la[li]), &ra[ri]));
            emitted.push(&rk[ri]);
            li += 1;
            ri += 1;
        } else if li < la.len() && !rk.contains(&lk[li]) {
            out.push(la[li].clone());
            li += 1;
        } else if li < la.len() && emitted.contains(&&lk[li]) {
            li += 1;
        } else if ri < ra.len() {
            let lv = lk.iter().position(|p| *p == rk[ri]).map(|i| &la[i]);
            out.push(merge(elem, lv, &ra[ri]));
            emitted.push(&rk[ri]);
            ri += 1;
        } else {
            li += 1;
        }
    }
    Some(Value::Array(out))
}

/// Removes the paths of `remove` from `v`, keeping any node under which
/// `owned` still has fields.
pub(crate) fn prune(ty: Ty<'_>, v: &mut Value, remove: &FieldSet, owned: Option<&FieldSet>) {
    let keep = |pe: &PathElement| owned.is_some_and(|o| o.has_member(pe) || o.has_descendants(pe));
    match (ty.shape(), v) {
        (Shape::List(elem, kind), Value::Array(items)) => {
            let mut i = 0;
            let mut index = 0;
            while i < items.len() {
                let Ok(pe) = item_element(&kind, elem, &items[i], index) else {
                    return;
                };
                index += 1;
                if remove.has_member(&pe) && !keep(&pe) {
                    items.remove(i);
                    continue;
                }
                if let Some(sub) = remove.child(&pe) {
                    prune(elem, &mut items[i], sub, owned.and_then(|o| o.child(&pe)));
                }
                i += 1;
            }
        }
        (_, Value::Object(m)) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let pe = PathElement::Field(k.clone());
                if remove.has_member(&pe) && !keep(&pe) {
                    m.remove(&k);
                    continue;
                }
                let Some(sub) = remove.child(&pe) else {
                    continue;
                };
                let cty = ty.field(&k).unwrap_or(Ty::DEDUCED);
                let Some(child) = m.get_mut(&k) else { continue };
                let was_empty = is_empty_container(child);
                prune(cty, child, sub, owned.and_then(|o| o.child(&pe)));
                // Go drops the emptied map or list (omitempty) unless someone owns it.
                if !was_empty && is_empty_container(child) && !keep(&pe) {
                    m.remove(&k);
                }
            }
        }
        _ => {}
    }
}

fn is_empty_container(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty)
}

//! Server-side apply: merge an applied configuration into the live object by
//! the schema's list and map semantics, drop what the manager stopped
//! applying, and settle ownership (conflicts unless forced).

use serde_json::{Map, Value};

use super::error::PatchError;
use super::fieldpath::{FieldSet, PathElement, path_string};
use super::managed::{self, Write};
use super::schema::{ListKind, Shape, Ty, TypeInfo};
use super::typed::{self, item_element};

/// Decodes an `application/apply-patch+yaml` body (YAML or JSON) like the
/// real server's YAML 1.1 decoder: first document only, duplicate keys
/// allowed (last wins), `yes`/`on` booleans, legacy octals.
pub fn parse_body(body: &[u8]) -> Result<Value, PatchError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| PatchError::BadRequest(format!("error decoding YAML: {e}")))?;
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        legacy_octal_numbers: true,
        with_snippet: false,
    };
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple_with_options(text, options).map_err(|e| {
            PatchError::BadRequest(format!(
                "error decoding YAML: error converting YAML to JSON: yaml: {}",
                go_yaml_message(&e.to_string())
            ))
        })?;
    Ok(docs.into_iter().next().unwrap_or(Value::Null))
}

/// Rewords a YAML parser error like go-yaml (`line N: <problem>`); both
/// parsers word most problems like libyaml.
fn go_yaml_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw);
    let after_line = first.split_once("line ").map_or("", |(_, rest)| rest);
    let line: String = after_line
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let line = if line.is_empty() {
        "1".to_owned()
    } else {
        line
    };
    let problem = first
        .split_once("column ")
        .and_then(|(_, rest)| rest.split_once(": "))
        .map_or(first, |(_, msg)| msg)
        .trim();
    let problem = problem.strip_prefix("error: ").unwrap_or(problem);
    // libyaml's context ("while parsing a flow mapping, ") and position
    // suffix are not part of go-yaml's wording.
    let problem = match problem.strip_prefix("while parsing ") {
        Some(rest) => rest.split_once(", ").map_or(rest, |(_, p)| p),
        None => problem,
    };
    let problem = problem.split(" at line ").next().unwrap_or(problem);
    let problem = if problem.starts_with("unclosed brace") {
        "did not find expected ',' or '}'"
    } else if problem.starts_with("unclosed bracket") {
        "did not find expected ',' or ']'"
    } else {
        problem
    };
    format!("line {line}: {problem}")
}

/// The manager that owns an unmanaged object's fields at its first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Server-side apply of `config` onto `live` (`None`: the object is created).
/// Returns the merged object with its new `managedFields`.
pub fn apply(
    ty: &TypeInfo,
    live: Option<&Value>,
    config: &Value,
    w: Write<'_>,
    force: bool,
) -> Result<Value, PatchError> {
    match apply_once(ty, live, config, w, force) {
        Err(PatchError::Conflict(conflicts)) if w.manager == "kubectl" => {
            let Some((live, last, last_set)) = last_applied(ty, live) else {
                return Err(PatchError::Conflict(conflicts));
            };
            // Fields kubectl's client-side apply set to the value the object
            // still has are not conflicts: the real server lets
            // `kubectl apply --server-side` take them over, and reports only
            // the others.
            let rest: Vec<_> = conflicts
                .into_iter()
                .filter(|c| {
                    !(last_set.contains(&c.path)
                        && typed::lookup(&last, &c.path).is_some()
                        && typed::lookup(&last, &c.path) == typed::lookup(live, &c.path))
                })
                .collect();
            if rest.is_empty() {
                apply_once(ty, Some(live), config, w, true)
            } else {
                Err(PatchError::Conflict(rest))
            }
        }
        other => other,
    }
}

/// The live object with its parsed client-side apply annotation and the
/// fields that annotation sets.
fn last_applied<'v>(
    ty: &TypeInfo,
    live: Option<&'v Value>,
) -> Option<(&'v Value, Value, FieldSet)> {
    let live = live?;
    let raw = live.pointer("/metadata/annotations")?.get(LAST_APPLIED)?;
    let last: Value = serde_json::from_str(raw.as_str()?).ok()?;
    let set = typed::to_field_set(ty.root(), &last).ok()?;
    Some((live, last, set))
}

fn apply_once(
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
    let sent_version = cfg_map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if sent_version != ty.api_version() {
        return Err(PatchError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {sent_version}, expected: {}",
            ty.api_version()
        )));
    }
    if cfg_map
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|m| !m.is_null())
    {
        return Err(PatchError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let meta = |k: &str| {
        config
            .pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let kind = cfg_map.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = sent_version.rsplit_once('/').unwrap_or(("", sent_version));
    let typed_error = |detail: String| PatchError::TypedPatch {
        object: format!("{}/{}", meta("namespace"), meta("name")),
        gvk: format!("{group}/{version}, Kind={kind}"),
        detail,
    };
    // The real server picks the schema by the configuration's own kind.
    if kind != ty.kind() {
        return Err(typed_error(format!(
            "no corresponding type for {group}/{version}, Kind={kind}"
        )));
    }
    let scoped = typed::scope(ty, w.subresource, config);
    let root = ty.root();
    let config_set = typed::to_field_set(root, &scoped)
        .map_err(|(path, why)| typed_error(format!("{}: {why}", path_string(&path))))?;
    // An existing object nobody manages yet is adopted first: its fields go
    // to `before-first-apply`, as on the real server, so an apply that
    // changes them conflicts unless forced.
    let adopted;
    let live = match live {
        Some(l) if managed::decode(l).is_empty() => {
            let mut a = l.clone();
            if let Some(meta) = a.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
            let before = Write {
                manager: BEFORE_FIRST_APPLY,
                ..w
            };
            managed::record_update(ty, None, &mut a, before);
            adopted = a;
            Some(&adopted)
        }
        other => other,
    };
    let (last, others) = managed::apply_sets(live, w.manager, w.subresource);

    let base = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    // Fields outside the subresource's scope are absent from `scoped`, so
    // the merge keeps them as they were.
    let mut merged = merge(root, Some(&base), &scoped);
    let config_set = config_set.difference(typed::untracked());
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
    sync_last_applied(&mut merged, config, w.manager);
    Ok(merged)
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// kubectl's server-side apply keeps an existing client-side apply
/// annotation in step with what it applied, so switching back stays sane.
fn sync_last_applied(merged: &mut Value, config: &Value, manager: &str) {
    let has = merged
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .is_some();
    if manager != "kubectl" || !has {
        return;
    }
    let mut applied = config.clone();
    if let Some(Value::Object(a)) = applied.pointer_mut("/metadata/annotations") {
        a.remove(LAST_APPLIED);
        if a.is_empty()
            && let Some(Value::Object(meta)) = applied.get_mut("metadata")
        {
            meta.remove("annotations");
        }
    }
    if let Some(Value::Object(a)) = merged.pointer_mut("/metadata/annotations") {
        // Go encodes the unstructured object with sorted keys and a newline.
        a.insert(
            LAST_APPLIED.into(),
            Value::String(format!("{}\n", sorted_keys(&applied))),
        );
    }
}

fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_keys(&m[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// Merges `r` (the configuration) into `l` (the live value).
pub(crate) fn merge(ty: Ty<'_>, l: Option<&Value>, r: &Value) -> Value {
    let shape = ty.shape();
    match &shape {
        Shape::Scalar => r.clone(),
        Shape::List(elem, kind) => match (l, r) {
            (Some(Value::Array(la)), Value::Array(ra)) if *kind != ListKind::Atomic => {
                merge_list(*elem, kind, la, ra).unwrap_or_else(|| r.clone())
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
                    let cty = ty.field_of(&shape, k).unwrap_or(Ty::DEDUCED);
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
    // Shared items come out in the configuration's order; live-only items
    // stay where they were relative to them (structured-merge-diff's walk).
    let mut shared = rk.iter().filter(|pe| lk.contains(pe));
    let mut next_shared = shared.next();
    let mut out = Vec::with_capacity(la.len().max(ra.len()));
    let (mut li, mut ri) = (0, 0);
    while li < la.len() || ri < ra.len() {
        if li < la.len() && ri < ra.len() {
            if lk[li] == rk[ri] {
                out.push(merge(elem, Some(&la[li]), &ra[ri]));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if rk.contains(&lk[li]) && next_shared.is_some_and(|n| *n != lk[li]) {
                li += 1;
                continue;
            }
        }
        if li < la.len() && !rk.contains(&lk[li]) {
            out.push(la[li].clone());
            li += 1;
            continue;
        }
        if ri < ra.len() {
            let lv = lk.iter().position(|p| *p == rk[ri]).map(|i| &la[i]);
            out.push(merge(elem, lv, &ra[ri]));
            if next_shared.is_some_and(|n| *n == rk[ri]) {
                next_shared = shared.next();
            }
            ri += 1;
        } else {
            // Only shared live items remain, all already merged.
            li += 1;
        }
    }
    Some(Value::Array(out))
}

/// Removes the paths of `remove` from `v` unless someone still owns them.
/// As in structured-merge-diff, a declared struct field survives when
/// fields below it are owned, but a list item or map entry survives only
/// when the item or entry itself is owned.
pub(crate) fn prune(ty: Ty<'_>, v: &mut Value, remove: &FieldSet, owned: Option<&FieldSet>) {
    let member = |pe: &PathElement| owned.is_some_and(|o| o.has_member(pe));
    let below = |pe: &PathElement| owned.is_some_and(|o| o.has_descendants(pe));
    match (ty.shape(), v) {
        (Shape::List(elem, kind), Value::Array(items)) => {
            let mut i = 0;
            let mut index = 0;
            while i < items.len() {
                let Ok(pe) = item_element(&kind, elem, &items[i], index) else {
                    return;
                };
                index += 1;
                if remove.has_member(&pe) && !member(&pe) {
                    items.remove(i);
                    continue;
                }
                if let Some(sub) = remove.child(&pe) {
                    // A kept item keeps its key fields, or it could not be identified.
                    let mut keys = FieldSet::new();
                    if let ListKind::Map(names) = &kind {
                        for n in names {
                            keys.insert(&[PathElement::Field((*n).to_owned())]);
                        }
                    }
                    let sub = sub.difference(&keys);
                    prune(elem, &mut items[i], &sub, owned.and_then(|o| o.child(&pe)));
                }
                i += 1;
            }
        }
        (_, Value::Object(m)) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let pe = PathElement::Field(k.clone());
                let keep = member(&pe) || (ty.declares(&k) && below(&pe));
                if remove.has_member(&pe) && !keep {
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
                // A built-in's Go type drops an emptied map or slice (omitempty)
                // unless someone owns it; structs and custom objects stay `{}`.
                let omitempty =
                    cty.is_builtin() && matches!(cty.shape(), Shape::Map(_) | Shape::List(..));
                if omitempty && !was_empty && is_empty_container(child) && !member(&pe) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::managed::decode;
    use serde_json::json;

    fn w(manager: &str) -> Write<'_> {
        Write {
            manager,
            subresource: None,
            now: "t",
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    fn ty() -> TypeInfo {
        TypeInfo::builtin("v1", "ConfigMap").unwrap()
    }

    #[test]
    fn applying_the_same_configuration_twice_changes_nothing() {
        let t = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [
                {"name": "x", "image": "i", "env": [{"name": "E", "value": "1"}]},
                {"name": "y", "image": "j"}]}}}});
        let first = apply(&t, None, &cfg, w("m"), false).unwrap();
        let second = apply(&t, Some(&first), &cfg, w("m"), false).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn fields_dropped_from_a_configuration_go_unless_someone_else_owns_them() {
        let t = ty();
        let a = apply(
            &t,
            None,
            &cm(json!({"x": "1", "y": "2", "z": "3"})),
            w("alice"),
            false,
        )
        .unwrap();
        // bob shares `y` (same value: no conflict).
        let b = apply(&t, Some(&a), &cm(json!({"y": "2"})), w("bob"), false).unwrap();
        let a2 = apply(&t, Some(&b), &cm(json!({"x": "1"})), w("alice"), false).unwrap();
        assert_eq!(a2["data"], json!({"x": "1", "y": "2"}));
        // Once nobody applies anything into `data`, the emptied map goes too.
        let bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let b2 = apply(&t, Some(&a2), &bare, w("bob"), false).unwrap();
        assert_eq!(b2["data"], json!({"x": "1"}));
        let a3 = apply(&t, Some(&b2), &bare, w("alice"), false).unwrap();
        assert_eq!(a3.get("data"), None, "{a3}");
        assert!(decode(&a3).is_empty());
    }

    #[test]
    fn conflicts_list_every_field_and_owner_and_force_takes_them() {
        let t = ty();
        let a = apply(
            &t,
            None,
            &cm(json!({"x": "1", "y": "2"})),
            w("alice"),
            false,
        )
        .unwrap();
        let err = apply(
            &t,
            Some(&a),
            &cm(json!({"x": "9", "y": "9"})),
            w("bob"),
            false,
        )
        .unwrap_err();
        assert_eq!(err.status_code(), 409);
        assert_eq!(
            err.message(),
            "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .data.x\n- .data.y"
        );
        let causes = err.details().unwrap()["causes"].as_array().unwrap().len();
        assert_eq!(causes, 2);
        let forced = apply(
            &t,
            Some(&a),
            &cm(json!({"x": "9", "y": "9"})),
            w("bob"),
            true,
        )
        .unwrap();
        let entries = decode(&forced);
        assert_eq!(
            entries
                .iter()
                .map(|e| e.manager.as_str())
                .collect::<Vec<_>>(),
            vec!["bob"]
        );
    }

    #[test]
    fn conflicts_with_update_managers_name_their_api_version() {
        let t = ty();
        let mut created = cm(json!({"x": "1"}));
        managed::record_update(&t, None, &mut created, w("kubectl-edit"));
        let err = apply(&t, Some(&created), &cm(json!({"x": "2"})), w("hub"), false).unwrap_err();
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.x"
        );
    }

    #[test]
    fn status_apply_owns_status_only_and_keeps_spec() {
        let t = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                          "spec": {"replicas": 2}, "status": {"replicas": 1}});
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                         "spec": {"replicas": 5}, "status": {"readyReplicas": 1}});
        let sw = Write {
            manager: "ctrl",
            subresource: Some("status"),
            now: "t",
        };
        let out = apply(&t, Some(&live), &cfg, sw, false).unwrap();
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(out["status"], json!({"replicas": 1, "readyReplicas": 1}));
        let entries = decode(&out);
        let e = entries.iter().find(|e| e.manager == "ctrl").unwrap();
        assert_eq!(e.subresource.as_deref(), Some("status"));
        // The unmanaged object's status was adopted through the same subresource.
        let before = entries
            .iter()
            .find(|e| e.manager == "before-first-apply")
            .unwrap();
        assert_eq!(before.subresource.as_deref(), Some("status"));
        assert_eq!(
            before.set.to_fields_v1(),
            json!({"f:status": {"f:replicas": {}}})
        );
        assert_eq!(
            e.set.to_fields_v1(),
            json!({"f:status": {"f:readyReplicas": {}}})
        );
    }

    #[test]
    fn keyed_lists_merge_in_place_and_keep_other_items() {
        let t = TypeInfo::builtin("v1", "Pod").unwrap();
        let live = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}});
        let cfg = json!({"apiVersion": "v1", "kind": "Pod",
                         "spec": {"containers": [{"name": "c", "image": "3"}, {"name": "b", "image": "9"}]}});
        let out = apply(&t, Some(&live), &cfg, w("m"), true).unwrap();
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a", "c", "b"]);
        assert_eq!(out["spec"]["containers"][2]["image"], "9");
    }

    #[test]
    fn dropped_items_go_even_when_another_manager_changed_them() {
        let t = TypeInfo::builtin("v1", "Pod").unwrap();
        let cfg = |names: &[&str]| {
            let cs: Vec<Value> = names
                .iter()
                .map(|n| json!({"name": n, "image": "i"}))
                .collect();
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": cs}})
        };
        let applied = apply(&t, None, &cfg(&["a", "b"]), w("hub"), false).unwrap();
        let mut edited = applied.clone();
        edited["spec"]["containers"][1]["image"] = json!("j");
        managed::record_update(&t, Some(&applied), &mut edited, w("kubectl"));
        let out = apply(&t, Some(&edited), &cfg(&["a"]), w("hub"), false).unwrap();
        // structured-merge-diff keeps an item only for an owner of the item
        // itself; kubectl owned just `b.image`, which goes with it.
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "i"}])
        );
        let entries = decode(&out);
        assert!(
            entries.iter().all(|e| e.manager != "kubectl"),
            "{entries:?}"
        );
    }

    #[test]
    fn emptied_structs_stay_and_emptied_maps_go() {
        let t = TypeInfo::builtin("v1", "Pod").unwrap();
        let cfg = |c: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [c]}});
        let first = apply(
            &t,
            None,
            &cfg(json!({"name": "a", "resources": {"limits": {"cpu": "1"}}})),
            w("hub"),
            false,
        )
        .unwrap();
        let out = apply(
            &t,
            Some(&first),
            &cfg(json!({"name": "a"})),
            w("hub"),
            false,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["containers"][0],
            json!({"name": "a", "resources": {}})
        );
    }

    #[test]
    fn unmanaged_objects_are_adopted_by_before_first_apply() {
        let t = ty();
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                          "data": {"a": "1", "b": "2"}});
        let err = apply(&t, Some(&live), &cm(json!({"a": "9"})), w("hub"), false).unwrap_err();
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.a"
        );
        let out = apply(&t, Some(&live), &cm(json!({"a": "1"})), w("hub"), false).unwrap();
        let entries = decode(&out);
        assert_eq!(entries.len(), 2);
        // The real server lists Apply entries before Update ones.
        assert_eq!(entries[0].manager, "hub");
        assert_eq!(entries[1].manager, "before-first-apply");
        assert!(entries[1].set.contains(&[
            PathElement::Field("data".into()),
            PathElement::Field("b".into())
        ]));
    }

    #[test]
    fn kubectl_applies_refresh_an_existing_last_applied_annotation() {
        let t = ty();
        let mut live = cm(json!({"a": "1"}));
        live["metadata"]["annotations"] = json!({(LAST_APPLIED): "{}"});
        let out = apply(&t, Some(&live), &cm(json!({"a": "2"})), w("kubectl"), true).unwrap();
        let last = out["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(last).unwrap(),
            cm(json!({"a": "2"}))
        );
        let want = r#"{"apiVersion":"v1","data":{"a":"2"},"kind":"ConfigMap""#;
        assert!(last.starts_with(want) && last.ends_with('\n'), "{last}");
        let other = apply(&t, Some(&live), &cm(json!({"a": "3"})), w("hub"), true).unwrap();
        assert_eq!(other["metadata"]["annotations"][LAST_APPLIED], "{}");
    }

    #[test]
    fn kubectl_takes_over_fields_of_its_client_side_apply() {
        let t = ty();
        let last = cm(json!({"a": "1"}));
        let mut live = cm(json!({"a": "1"}));
        live["metadata"]["annotations"] = json!({(LAST_APPLIED): last.to_string()});
        managed::record_update(&t, None, &mut live, w("kubectl-client-side-apply"));
        // Same manager name as the server-side flow: conflicts are waived.
        let out = apply(&t, Some(&live), &cm(json!({"a": "2"})), w("kubectl"), false).unwrap();
        assert_eq!(out["data"]["a"], "2");
        // Anyone else still conflicts.
        assert!(apply(&t, Some(&live), &cm(json!({"a": "2"})), w("hub"), false).is_err());
        // A field changed since the last client-side apply still conflicts,
        // and only such fields are reported.
        let mut drifted = cm(json!({"a": "edited", "b": "1"}));
        let last = cm(json!({"a": "1", "b": "1"})).to_string();
        drifted["metadata"]["annotations"] = json!({(LAST_APPLIED): last});
        managed::record_update(&t, None, &mut drifted, w("kubectl-client-side-apply"));
        let config = cm(json!({"a": "2", "b": "2"}));
        let err = apply(&t, Some(&drifted), &config, w("kubectl"), false).unwrap_err();
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.a"
        );
    }

    #[test]
    fn crds_apply_with_their_whole_schema_language() {
        let t = TypeInfo::builtin("apiextensions.k8s.io/v1", "CustomResourceDefinition").unwrap();
        let crd = parse_body(
            br#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.x.io, labels: {app.kubernetes.io/managed-by: kro-hub}}
spec:
  group: x.io
  names: {kind: Thing, plural: things, shortNames: [th], categories: [kro]}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: READY, type: string, priority: 1, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-validations: [{rule: "self.spec.a > 0", message: positive}]
        properties:
          spec:
            type: object
            required: [a]
            properties:
              a: {type: integer, default: 1, minimum: 0, x-kubernetes-validations: [{rule: "self < 10"}]}
              b: {type: string, enum: [x, y], nullable: true, pattern: "^[a-z]+$"}
              free: {type: object, x-kubernetes-preserve-unknown-fields: true}
              list: {type: array, x-kubernetes-list-type: map, x-kubernetes-list-map-keys: [k],
                     items: {type: object, properties: {k: {type: string}}}}
              either: {x-kubernetes-int-or-string: true, anyOf: [{type: integer}, {type: string}]}
"#,
        )
        .unwrap();
        let w = Write {
            manager: "kro-hub",
            subresource: None,
            now: "t",
        };
        let first = apply(&t, None, &crd, w, true).unwrap();
        let again = apply(&t, Some(&first), &crd, w, true).unwrap();
        assert_eq!(first, again);
        let entries = decode(&first);
        assert_eq!(
            entries[0].set.to_fields_v1()["f:spec"]["f:versions"],
            json!({})
        );
    }

    #[test]
    fn merged_lists_keep_live_only_items_in_place() {
        let t = TypeInfo::builtin("v1", "Pod").unwrap();
        let names = |v: &Value| -> Vec<String> {
            v["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect()
        };
        let pod = |ns: &[&str]| {
            let cs: Vec<Value> = ns.iter().map(|n| json!({"name": n})).collect();
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": cs}})
        };
        let out = merge(t.root(), Some(&pod(&["a", "x", "b"])), &pod(&["b", "a"]));
        assert_eq!(names(&out), vec!["x", "b", "a"]);
        let out = merge(t.root(), Some(&pod(&["a", "b"])), &pod(&["c", "b"]));
        assert_eq!(names(&out), vec!["a", "c", "b"]);
    }

    #[test]
    fn yaml_bodies_and_their_errors() {
        let v = parse_body(b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: \"1\"\n").unwrap();
        assert_eq!(v["data"]["a"], "1");
        let err = parse_body(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg\ndata: [\n")
            .unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert!(
            err.message()
                .starts_with("error decoding YAML: error converting YAML to JSON: yaml: line ")
        );
        assert!(apply(&ty(), None, &json!([1]), w("m"), false).is_err());
        let wrong =
            json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(
            apply(&ty(), None, &wrong, w("m"), false)
                .unwrap_err()
                .to_status()["message"],
            "Incorrect version specified in apply patch. Specified patch version: apps/v1, expected: v1"
        );
        let no_kind = json!({"apiVersion": "v1", "metadata": {"name": "c"}});
        assert_eq!(
            apply(&ty(), None, &no_kind, w("m"), false)
                .unwrap_err()
                .message(),
            "failed to create typed patch object (/c; /v1, Kind=): no corresponding type for /v1, Kind="
        );
        let mut with_mf = cm(json!({}));
        with_mf["metadata"]["managedFields"] = json!([]);
        let err = apply(&ty(), None, &with_mf, w("m"), false).unwrap_err();
        assert_eq!(
            (err.status_code(), err.message()),
            (400, "metadata.managedFields must be nil".to_owned())
        );
        assert_eq!(
            apply(&ty(), None, &cm(json!({})), w(""), false).unwrap_err(),
            PatchError::MissingFieldManager
        );
    }
}

#[cfg(test)]
mod properties {
    //! Random apply/update sequences against invariants of field ownership.
    use super::*;
    use crate::patch::managed::{decode, record_update};
    use crate::patch::typed::lookup;
    use serde_json::json;

    /// A tiny deterministic generator: property tests without a new dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[usize::try_from(self.below(from.len() as u64)).unwrap()]
        }

        /// A Pod configuration with a few labels, containers and env vars.
        fn config(&mut self) -> Value {
            let mut labels = serde_json::Map::new();
            for _ in 0..self.below(3) {
                labels.insert(
                    self.pick(&["a", "b", "c"]).into(),
                    json!(self.pick(&["1", "2"])),
                );
            }
            let mut containers = Vec::new();
            for name in ["x", "y", "z"] {
                if self.below(2) == 0 {
                    continue;
                }
                let mut c = json!({"name": name});
                if self.below(2) == 0 {
                    c["image"] = json!(self.pick(&["i1", "i2"]));
                }
                let mut env = Vec::new();
                for e in ["E", "F"] {
                    if self.below(2) == 0 {
                        env.push(json!({"name": e, "value": self.pick(&["1", "2"])}));
                    }
                }
                if !env.is_empty() {
                    c["env"] = json!(env);
                }
                containers.push(c);
            }
            let mut cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
            if !labels.is_empty() {
                cfg["metadata"]["labels"] = Value::Object(labels);
            }
            if !containers.is_empty() {
                cfg["spec"] = json!({"containers": containers});
            }
            cfg
        }
    }

    #[test]
    fn random_applies_and_updates_keep_ownership_consistent() {
        let t = TypeInfo::builtin("v1", "Pod").unwrap();
        let managers = ["hub", "ctrl", "human"];
        for seed in 1..20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut live: Option<Value> = None;
            for _ in 0..10 {
                let manager = rng.pick(&managers);
                let w = Write {
                    manager,
                    subresource: None,
                    now: "t",
                };
                let cfg = rng.config();
                let next = if rng.below(4) == 0 && live.is_some() {
                    // A merge-patch style Update of one label.
                    let old = live.clone().unwrap();
                    let mut new = old.clone();
                    new["metadata"]["labels"]["u"] = json!(rng.pick(&["1", "2"]));
                    record_update(&t, Some(&old), &mut new, w);
                    new
                } else {
                    match apply(&t, live.as_ref(), &cfg, w, true) {
                        Ok(out) => {
                            // Everything applied has the applied value.
                            for path in typed::to_field_set(t.root(), &cfg).unwrap().paths() {
                                let (Some(want), Some(got)) =
                                    (lookup(&cfg, &path), lookup(&out, &path))
                                else {
                                    panic!("seed {seed}: applied {path:?} missing from {out}");
                                };
                                if !want.is_object() && !want.is_array() {
                                    assert_eq!(want, got, "seed {seed}: {path:?}");
                                }
                            }
                            // Re-applying is a no-op.
                            let again = apply(&t, Some(&out), &cfg, w, false).unwrap();
                            assert_eq!(again, out, "seed {seed}: re-apply changed the object");
                            out
                        }
                        Err(e) => panic!("seed {seed}: forced apply failed: {e}"),
                    }
                };
                // Every owned path exists, and no entry is empty.
                for e in decode(&next) {
                    assert!(!e.set.is_empty(), "seed {seed}: empty entry {}", e.manager);
                    for path in e.set.paths() {
                        assert!(
                            lookup(&next, &path).is_some(),
                            "seed {seed}: {} owns missing {path:?} in {next}",
                            e.manager
                        );
                    }
                }
                live = Some(next);
            }
        }
    }
}

//! Typed views of objects: the fields a value sets and what changed between
//! two values, following the schema's list and map semantics like the real
//! server's structured-merge-diff.

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, Path, PathElement};
use super::schema::{ListKind, Shape, Ty, TypeInfo};

pub(crate) fn field(name: &str) -> PathElement {
    PathElement::Field(name.to_owned())
}

/// Paths the server never tracks: identity and bookkeeping metadata.
fn strip_set() -> &'static FieldSet {
    static SET: std::sync::OnceLock<FieldSet> = std::sync::OnceLock::new();
    SET.get_or_init(build_strip_set)
}

fn build_strip_set() -> FieldSet {
    let mut s = FieldSet::new();
    s.insert(&[field("apiVersion")]);
    s.insert(&[field("kind")]);
    s.insert(&[field("metadata")]);
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[field("metadata"), field(f)]);
    }
    s
}

/// The part of an object a request on `subresource` may own: `status` alone
/// for the status subresource, everything but `status` for the main resource
/// of a kind with a status subresource.
pub(crate) fn scope(ty: &TypeInfo, subresource: Option<&str>, v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    match subresource {
        Some("status") => {
            if let Some(s) = m.get("status") {
                out.insert("status".into(), s.clone());
            }
        }
        _ => {
            for (k, val) in m {
                if k == "status" && ty.has_status_subresource() {
                    continue;
                }
                out.insert(k.clone(), val.clone());
            }
            if let Some(Value::Object(meta)) = out.get_mut("metadata") {
                meta.remove("managedFields");
            }
        }
    }
    Value::Object(out)
}

/// A failure to type a value: the path and the reason.
pub(crate) type TypeError = (Path, String);

/// The path element of a list item, by the list's kind.
pub(crate) fn item_element(
    kind: &ListKind<'_>,
    elem: Ty<'_>,
    item: &Value,
    index: usize,
) -> Result<PathElement, String> {
    match kind {
        ListKind::Atomic => Ok(PathElement::Index(index)),
        ListKind::Set => Ok(PathElement::Value(item.to_string())),
        ListKind::Map(keys) if keys.is_empty() => Ok(PathElement::Index(index)),
        ListKind::Map(keys) => {
            let Value::Object(m) = item else {
                return Err(format!("expected map list item, got {item}"));
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                let v = match m.get(*k) {
                    Some(v) => v,
                    None => elem.field(k).and_then(|t| t.default_value()).ok_or_else(|| {
                        format!(
                            "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                        )
                    })?,
                };
                fields.push(((*k).to_owned(), v));
            }
            Ok(PathElement::key(fields))
        }
    }
}

/// The fields a value sets, as an applied configuration owns them.
pub(crate) fn to_field_set(ty: Ty<'_>, v: &Value) -> Result<FieldSet, TypeError> {
    let mut out = FieldSet::new();
    walk_set(ty, v, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn walk_set(ty: Ty<'_>, v: &Value, path: &mut Path, out: &mut FieldSet) -> Result<(), TypeError> {
    let shape = ty.shape();
    match shape {
        Shape::Scalar => {
            scalar_fits(ty, v).map_err(|e| (path.clone(), e))?;
            out.insert(path);
        }
        Shape::List(elem, kind) => match v {
            Value::Array(items) if kind != ListKind::Atomic => {
                let mut seen = std::collections::HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let pe = item_element(&kind, elem, item, i).map_err(|e| (path.clone(), e))?;
                    if !seen.insert(pe.clone()) {
                        return Err((path.clone(), format!("duplicate entries for key {pe}")));
                    }
                    path.push(pe);
                    walk_set(elem, item, path, out)?;
                    out.insert(path);
                    path.pop();
                }
            }
            Value::Array(_) => out.insert(path),
            // A null granular list sets nothing; an atomic one is a value.
            Value::Null if kind == ListKind::Atomic => out.insert(path),
            Value::Null => {}
            other => return Err((path.clone(), format!("expected list, got {other}"))),
        },
        Shape::Deduced | Shape::Struct | Shape::Map(_) => {
            let Value::Object(m) = v else {
                if matches!(shape, Shape::Deduced) || (v.is_null() && ty.is_atomic_map()) {
                    out.insert(path);
                } else if !v.is_null() {
                    return Err((path.clone(), format!("expected map, got {v}")));
                }
                return Ok(());
            };
            if ty.is_atomic_map() {
                out.insert(path);
                return Ok(());
            }
            for (k, child) in m {
                path.push(field(k));
                let Some(cty) = ty.field_of(&shape, k) else {
                    return Err((path.clone(), "field not declared in schema".into()));
                };
                walk_set(cty, child, path, out)?;
                // Map entries are owned themselves; declared fields only
                // through what they set (an empty struct sets nothing).
                if !ty.declares(k) {
                    out.insert(path);
                }
                path.pop();
            }
        }
    }
    Ok(())
}

/// Go's name for the type of a decoded JSON value (`%T`).
fn go_dynamic_type(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "map[string]interface {}",
        Value::Array(_) => "[]interface {}",
        Value::String(_) => "string",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::Bool(_) => "bool",
        Value::Null => "<nil>",
    }
}

/// The real server's scalar validation of an applied configuration.
fn scalar_fits(ty: Ty<'_>, v: &Value) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    let fits = match ty.scalar_type() {
        (_, Some("int-or-string")) => v.is_string() || v.is_number(),
        (Some("integer" | "number"), _) => v.is_number(),
        (Some("boolean"), _) => v.is_boolean(),
        (Some("string"), _) => v.is_string(),
        _ => true,
    };
    if fits {
        return Ok(());
    }
    Err(match ty.scalar_type() {
        (Some("integer" | "number"), _) => {
            format!(
                "expected numeric (int or float), got {}",
                go_dynamic_type(v)
            )
        }
        (Some("boolean"), _) => format!("expected boolean, got {v}"),
        _ => format!("expected string, got {v}"),
    })
}

/// What changed between two versions of an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    fn without(self, strip: &FieldSet) -> Self {
        Self {
            added: self.added.difference(strip),
            modified: self.modified.difference(strip),
            removed: self.removed.difference(strip),
        }
    }
}

/// Compares what a request on `subresource` may own of two versions of an
/// object (see [`scope`]), without the untracked metadata.
pub(crate) fn compare_scoped(
    ty: &TypeInfo,
    subresource: Option<&str>,
    old: &Value,
    new: &Value,
) -> Comparison {
    let in_scope = |k: &str| match subresource {
        Some("status") => k == "status",
        _ => !(k == "status" && ty.has_status_subresource()),
    };
    let root = ty.root();
    let shape = root.shape();
    let (om, nm) = (old.as_object(), new.as_object());
    let mut out = Comparison::default();
    let mut path = Vec::new();
    let mut keys: Vec<&String> = om.map(|m| m.keys().collect()).unwrap_or_default();
    for k in nm.into_iter().flat_map(Map::keys) {
        if om.is_none_or(|m| !m.contains_key(k)) {
            keys.push(k);
        }
    }
    for k in keys.into_iter().filter(|k| in_scope(k)) {
        let cty = root.field_of(&shape, k).unwrap_or(Ty::DEDUCED);
        path.push(field(k));
        cmp(
            cty,
            om.and_then(|m| m.get(k)),
            nm.and_then(|m| m.get(k)),
            &mut path,
            &mut out,
        );
        path.pop();
    }
    out.without(strip_set())
}

fn leaf(l: Option<&Value>, r: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (l, r) {
        (None, None) => {}
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) => {
            if a != b {
                out.modified.insert(path);
            }
        }
    }
}

fn cmp(ty: Ty<'_>, l: Option<&Value>, r: Option<&Value>, path: &mut Path, out: &mut Comparison) {
    let shape = ty.shape();
    let is_obj_or_nothing = |v: Option<&Value>| v.is_none_or(|v| v.is_object() || v.is_null());
    let in_leaf = match &shape {
        Shape::Scalar => true,
        Shape::List(elem, kind) => {
            let (la, ra) = (l.and_then(Value::as_array), r.and_then(Value::as_array));
            let empty = la.is_none_or(Vec::is_empty) && ra.is_none_or(Vec::is_empty);
            if *kind == ListKind::Atomic || empty || !(la.is_some() || ra.is_some()) {
                true
            } else {
                !cmp_list(*elem, kind, la, ra, path, out)
            }
        }
        Shape::Deduced if !(is_obj_or_nothing(l) && is_obj_or_nothing(r)) => true,
        Shape::Deduced | Shape::Struct | Shape::Map(_) => {
            let (lm, rm) = (l.and_then(Value::as_object), r.and_then(Value::as_object));
            let empty = lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty);
            if ty.is_atomic_map() || empty {
                true
            } else {
                let mut keys: Vec<&String> = lm.map(|m| m.keys().collect()).unwrap_or_default();
                for k in rm.into_iter().flat_map(Map::keys) {
                    if lm.is_none_or(|m| !m.contains_key(k)) {
                        keys.push(k);
                    }
                }
                for k in keys {
                    let cty = ty.field_of(&shape, k).unwrap_or(Ty::DEDUCED);
                    path.push(field(k));
                    cmp(
                        cty,
                        lm.and_then(|m| m.get(k)),
                        rm.and_then(|m| m.get(k)),
                        path,
                        out,
                    );
                    path.pop();
                }
                false
            }
        }
    };
    if in_leaf {
        leaf(l, r, path, out);
    } else if l.is_none() {
        out.added.insert(path);
    } else if r.is_none() {
        out.removed.insert(path);
    }
}

/// Compares keyed list items; `false` when items cannot be keyed (the list
/// is then compared as a leaf).
fn cmp_list(
    elem: Ty<'_>,
    kind: &ListKind<'_>,
    la: Option<&Vec<Value>>,
    ra: Option<&Vec<Value>>,
    path: &mut Path,
    out: &mut Comparison,
) -> bool {
    let (Some(li), Some(ri)) = (index_items(kind, elem, la), index_items(kind, elem, ra)) else {
        return false;
    };
    let mut order: Vec<&PathElement> = li.iter().map(|(pe, _)| pe).collect();
    for (pe, _) in &ri {
        if !li.iter().any(|(l, _)| l == pe) {
            order.push(pe);
        }
    }
    for pe in order {
        let lv = li.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
        let rv = ri.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
        path.push(pe.clone());
        cmp(elem, lv, rv, path, out);
        path.pop();
    }
    true
}

fn index_items<'v>(
    kind: &ListKind<'_>,
    elem: Ty<'_>,
    items: Option<&'v Vec<Value>>,
) -> Option<Vec<(PathElement, &'v Value)>> {
    let mut v = Vec::new();
    for (i, item) in items.into_iter().flatten().enumerate() {
        v.push((item_element(kind, elem, item, i).ok()?, item));
    }
    Some(v)
}

/// Stripped paths, for callers that build sets themselves.
pub(crate) fn untracked() -> &'static FieldSet {
    strip_set()
}

/// The value at a path of an object, if it has one.
pub(crate) fn lookup<'v>(v: &'v Value, path: &[PathElement]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, pe| match pe {
        PathElement::Field(f) => cur.get(f),
        PathElement::Key(pairs) => cur.as_array()?.iter().find(|item| {
            pairs
                .iter()
                .all(|(k, want)| item.get(k) == serde_json::from_str::<Value>(want).ok().as_ref())
        }),
        PathElement::Value(want) => {
            let want: Value = serde_json::from_str(want).ok()?;
            cur.as_array()?.iter().find(|i| **i == want)
        }
        PathElement::Index(i) => cur.as_array()?.get(*i),
    })
}

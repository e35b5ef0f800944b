//! Go-style type checks of built-in objects: where the real server decodes
//! JSON into its Go structs and fails with `json: cannot unmarshal ...`.

use serde_json::Value;

use super::schema::{Shape, Ty, TypeInfo};

/// A value whose JSON type does not fit the Go field it decodes into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeMismatch {
    /// Go's error text, e.g. `json: cannot unmarshal string into Go struct
    /// field DeploymentSpec.spec.replicas of type int32`.
    pub message: String,
}

/// Checks the scalar, object and list types of a built-in object against its
/// schema; custom kinds are validated elsewhere and always pass.
pub fn check_types(kind: &TypeInfo, obj: &Value) -> Result<(), TypeMismatch> {
    if !kind.is_builtin() {
        return Ok(());
    }
    check(kind.root(), obj, kind.kind(), &mut Vec::new())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

/// The Go type of a node, as decoding errors name it.
fn go_type(ty: Ty<'_>) -> String {
    match ty.shape() {
        Shape::Scalar => match ty.scalar_type() {
            (Some("integer"), Some(f @ ("int32" | "int64"))) => f.to_owned(),
            (Some("integer"), _) => "int64".to_owned(),
            (Some("number"), _) => "float64".to_owned(),
            (Some("boolean"), _) => "bool".to_owned(),
            (_, Some("int-or-string")) => "intstr.IntOrString".to_owned(),
            _ => "string".to_owned(),
        },
        Shape::List(elem, _) => format!("[]{}", go_type(elem)),
        Shape::Map(elem) => format!("map[string]{}", go_type(elem)),
        Shape::Struct => ty.go_package_name().unwrap_or_else(|| "struct".to_owned()),
        Shape::Deduced => "interface {}".to_owned(),
    }
}

fn fits(ty: Ty<'_>, v: &Value) -> bool {
    if v.is_null() {
        return true;
    }
    match ty.shape() {
        Shape::Scalar => match ty.scalar_type() {
            (_, Some("int-or-string")) => v.is_string() || v.is_i64() || v.is_u64(),
            (Some("integer"), _) => v.is_i64() || v.is_u64(),
            (Some("number"), _) => v.is_number(),
            (Some("boolean"), _) => v.is_boolean(),
            (Some("string"), _) => v.is_string(),
            _ => true,
        },
        Shape::List(..) => v.is_array(),
        Shape::Map(_) | Shape::Struct => v.is_object(),
        Shape::Deduced => true,
    }
}

fn check(ty: Ty<'_>, v: &Value, parent: &str, path: &mut Vec<String>) -> Result<(), TypeMismatch> {
    if !fits(ty, v) {
        let field = if path.is_empty() {
            String::new()
        } else {
            format!(" field {parent}.{}", path.join("."))
        };
        let what = if path.is_empty() { "value" } else { "struct" };
        return Err(TypeMismatch {
            message: format!(
                "json: cannot unmarshal {} into Go {what}{field} of type {}",
                json_kind(v),
                go_type(ty)
            ),
        });
    }
    match (ty.shape(), v) {
        (Shape::Struct, Value::Object(m)) => {
            let name = ty.go_name().unwrap_or(parent);
            for (k, child) in m {
                // Bookkeeping the server writes itself; its shape is checked on decode.
                if k == "managedFields" && name == "ObjectMeta" {
                    continue;
                }
                if let Some(cty) = ty.field(k) {
                    path.push(k.clone());
                    check(cty, child, name, path)?;
                    path.pop();
                }
            }
        }
        (Shape::Map(elem), Value::Object(m)) => {
            for (k, child) in m {
                path.push(k.clone());
                check(elem, child, parent, path)?;
                path.pop();
            }
        }
        (Shape::List(elem, _), Value::Array(items)) => {
            for item in items {
                check(elem, item, parent, path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Fields of a built-in object its Go types do not declare, at any depth,
/// as the real server's strict decoder names them
/// (`spec.template.spec.containers[0].imagePullPolicyy`), in document order.
/// Custom kinds report nothing: CRD pruning is schema validation's job.
pub fn unknown_fields(kind: &TypeInfo, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if kind.is_builtin() {
        visit_unknown(kind.root(), obj, &mut String::new(), &mut |p| {
            out.push(p.to_owned())
        });
    }
    out
}

/// Removes what [`unknown_fields`] reports: the real server's decoder drops
/// undeclared fields of built-in objects at every depth.
pub fn prune_unknown(kind: &TypeInfo, obj: &mut Value) {
    if kind.is_builtin() {
        prune(kind.root(), obj);
    }
}

fn visit_unknown(ty: Ty<'_>, v: &Value, path: &mut String, found: &mut dyn FnMut(&str)) {
    let shape = ty.shape();
    match (&shape, v) {
        (Shape::Struct, Value::Object(m)) => {
            for (k, child) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match ty.field_of(&shape, k) {
                    Some(cty) => visit_unknown(cty, child, path, found),
                    None => found(path),
                }
                path.truncate(len);
            }
        }
        (Shape::Map(elem), Value::Object(m)) => {
            for (k, child) in m {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                visit_unknown(*elem, child, path, found);
                path.truncate(len);
            }
        }
        (Shape::List(elem, _), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                visit_unknown(*elem, item, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn prune(ty: Ty<'_>, v: &mut Value) {
    let shape = ty.shape();
    match (&shape, v) {
        (Shape::Struct, Value::Object(m)) => {
            m.retain(|k, _| ty.field_of(&shape, k).is_some());
            for (k, child) in m.iter_mut() {
                if let Some(cty) = ty.field_of(&shape, k) {
                    prune(cty, child);
                }
            }
        }
        (Shape::Map(elem), Value::Object(m)) => {
            for child in m.values_mut() {
                prune(*elem, child);
            }
        }
        (Shape::List(elem, _), Value::Array(items)) => {
            for item in items {
                prune(*elem, item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_scalar_types_are_named_like_go() {
        let t = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
        let err = check_types(&t, &json!({"spec": {"replicas": "three"}})).unwrap_err();
        assert_eq!(
            err.message,
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        let err = check_types(
            &t,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": 5}]}}}}),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string"
        );
        let err = check_types(&t, &json!({"metadata": {"labels": {"a": 1}}})).unwrap_err();
        assert!(
            err.message
                .contains("ObjectMeta.metadata.labels.a of type string"),
            "{}",
            err.message
        );
        let err = check_types(&t, &json!({"spec": {"template": "x"}})).unwrap_err();
        assert!(
            err.message.ends_with("of type v1.PodTemplateSpec"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_fields_at_any_depth_are_found_and_pruned() {
        let t = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "bogus": 1, "labels": {"free": "x"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "imagePullPolicyy": "Always"}]}},
                     "extra": true},
            "top": 1});
        assert_eq!(
            unknown_fields(&t, &obj),
            vec![
                "metadata.bogus",
                "spec.template.spec.containers[0].imagePullPolicyy",
                "spec.extra",
                "top"
            ]
        );
        prune_unknown(&t, &mut obj);
        assert_eq!(
            obj,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "d", "labels": {"free": "x"}},
                   "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}})
        );
        let custom = TypeInfo::custom("x.io/v1", "X", None, false);
        assert!(unknown_fields(&custom, &json!({"anything": 1})).is_empty());
    }

    #[test]
    fn valid_objects_and_int_or_string_pass() {
        let t = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
        let ok = json!({"spec": {"replicas": 2, "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                        "template": {"metadata": {"creationTimestamp": null}}}});
        assert_eq!(check_types(&t, &ok), Ok(()));
        let custom = TypeInfo::custom("x.io/v1", "X", None, false);
        assert_eq!(check_types(&custom, &json!({"spec": 1})), Ok(()));
    }
}

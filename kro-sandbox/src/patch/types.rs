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
    fn valid_objects_and_int_or_string_pass() {
        let t = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
        let ok = json!({"spec": {"replicas": 2, "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                        "template": {"metadata": {"creationTimestamp": null}}}});
        assert_eq!(check_types(&t, &ok), Ok(()));
        let custom = TypeInfo::custom("x.io/v1", "X", None, false);
        assert_eq!(check_types(&custom, &json!({"spec": 1})), Ok(()));
    }
}

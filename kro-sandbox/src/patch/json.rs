//! JSON patch (RFC 6902) with JSON pointers (RFC 6901).

use serde_json::Value;

use super::error::PatchError;

/// Decodes a JSON patch body; a body that is not a list of operations is a
/// 400 like the real server's decoder error.
pub fn parse(body: &[u8]) -> Result<Vec<Value>, PatchError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(ops)) => match ops.iter().find(|op| !op.is_object()) {
            Some(bad) => Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                go_kind(bad)
            ))),
            None => Ok(ops),
        },
        Ok(other) => Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            go_kind(&other)
        ))),
        Err(e) => Err(PatchError::BadRequest(format!("invalid JSON patch: {e}"))),
    }
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

/// Applies the operations in order; any failure leaves `doc` untouched.
pub fn apply(doc: &Value, ops: &[Value]) -> Result<Value, PatchError> {
    let mut out = doc.clone();
    for op in ops {
        apply_one(&mut out, op).map_err(PatchError::JsonPatchFailed)?;
    }
    Ok(out)
}

fn field<'a>(op: &'a Value, name: &str) -> Result<&'a Value, String> {
    op.get(name)
        .ok_or_else(|| format!("missing '{name}' in operation {op}"))
}

fn str_field<'a>(op: &'a Value, name: &str) -> Result<&'a str, String> {
    field(op, name)?
        .as_str()
        .ok_or_else(|| format!("'{name}' must be a string"))
}

fn apply_one(doc: &mut Value, op: &Value) -> Result<(), String> {
    let path = str_field(op, "path")?;
    match str_field(op, "op")? {
        "add" => add(doc, path, field(op, "value")?.clone()),
        "remove" => remove(doc, path).map(drop),
        "replace" => {
            let target = get_mut(doc, path)?;
            *target = field(op, "value")?.clone();
            Ok(())
        }
        "move" => {
            let from = str_field(op, "from")?;
            if path.starts_with(from) && path[from.len()..].starts_with('/') {
                return Err(format!("cannot move {from} into its own child {path}"));
            }
            let v = remove(doc, from)?;
            add(doc, path, v)
        }
        "copy" => {
            let v = get_mut(doc, str_field(op, "from")?)?.clone();
            add(doc, path, v)
        }
        "test" => {
            let want = field(op, "value")?;
            let got = get_mut(doc, path)?;
            if got == want {
                Ok(())
            } else {
                Err(format!("testing value {path} failed"))
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// Splits a pointer into unescaped tokens.
fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("JSON pointer must start with '/': {path}"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if token == "-" && allow_end {
        return Ok(len);
    }
    if token.len() > 1 && token.starts_with('0') {
        return Err(format!("invalid index {token}"));
    }
    let i: usize = token
        .parse()
        .map_err(|_| format!("invalid index {token}"))?;
    let max = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if i > max || (!allow_end && len == 0) {
        return Err(format!("index {i} out of bounds"));
    }
    Ok(i)
}

fn get_mut<'a>(doc: &'a mut Value, path: &str) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(&t)
                .ok_or_else(|| format!("missing value at {path}"))?,
            Value::Array(a) => {
                let i = index(&t, a.len(), false)?;
                &mut a[i]
            }
            _ => return Err(format!("missing value at {path}")),
        };
    }
    Ok(cur)
}

fn parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let mut toks = tokens(path)?;
    let Some(last) = toks.pop() else {
        return Err("cannot operate on the root".into());
    };
    let prefix: String = toks
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect();
    Ok((get_mut(doc, &prefix)?, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (target, last) = parent(doc, path)?;
    match target {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = index(&last, a.len(), true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("cannot add at {path}: parent is not a container")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (target, last) = parent(doc, path)?;
    match target {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("missing value at {path}")),
        Value::Array(a) => {
            let i = index(&last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err(format!("missing value at {path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, ops: Value) -> Result<Value, PatchError> {
        apply(&doc, ops.as_array().unwrap())
    }

    #[test]
    fn operations() {
        let doc = json!({"a": {"b~c": 1, "d/e": [1, 2]}, "x": "y"});
        assert_eq!(
            run(
                doc.clone(),
                json!([{"op": "add", "path": "/a/d~1e/-", "value": 3}])
            )
            .unwrap(),
            json!({"a": {"b~c": 1, "d/e": [1, 2, 3]}, "x": "y"})
        );
        assert_eq!(
            run(
                doc.clone(),
                json!([{"op": "add", "path": "/a/d~1e/0", "value": 0}])
            )
            .unwrap()["a"]["d/e"],
            json!([0, 1, 2])
        );
        assert_eq!(
            run(doc.clone(), json!([{"op": "remove", "path": "/a/b~0c"}])).unwrap()["a"],
            json!({"d/e": [1, 2]})
        );
        assert_eq!(
            run(
                doc.clone(),
                json!([{"op": "move", "from": "/x", "path": "/a/x"}])
            )
            .unwrap(),
            json!({"a": {"b~c": 1, "d/e": [1, 2], "x": "y"}})
        );
        assert_eq!(
            run(
                doc.clone(),
                json!([{"op": "copy", "from": "/a/d~1e/1", "path": "/z"}])
            )
            .unwrap()["z"],
            json!(2)
        );
        assert!(
            run(
                doc.clone(),
                json!([{"op": "test", "path": "/x", "value": "y"}])
            )
            .is_ok()
        );
    }

    #[test]
    fn failures_are_generic_422s_and_leave_the_document_alone() {
        let doc = json!({"spec": {"replicas": 2}});
        for ops in [
            json!([{"op": "test", "path": "/spec/replicas", "value": 99}, {"op": "replace", "path": "/spec/replicas", "value": 1}]),
            json!([{"op": "replace", "path": "/spec/nosuchfield/x", "value": 1}]),
            json!([{"op": "remove", "path": "/spec/none"}]),
            json!([{"op": "add", "path": "/spec/replicas/x/y", "value": 1}]),
            json!([{"op": "bogus", "path": "/spec"}]),
            json!([{"op": "move", "from": "/spec", "path": "/spec/inner"}]),
        ] {
            let err = run(doc.clone(), ops.clone()).unwrap_err();
            assert_eq!(err.status_code(), 422, "{ops}");
            assert_eq!(
                err.message(),
                "the server rejected our request due to an error in our request"
            );
            assert_eq!(err.details(), Some(json!({})));
        }
    }

    #[test]
    fn a_body_that_is_not_a_list_is_a_bad_request() {
        let err = parse(br#"{"op": "add"}"#).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            err.message(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        assert!(parse(b"[").is_err());
        let err = parse(b"[1]").unwrap_err();
        assert_eq!(
            (err.status_code(), err.message()),
            (
                400,
                "json: cannot unmarshal number into Go value of type jsonpatch.Operation"
                    .to_owned()
            )
        );
    }
}

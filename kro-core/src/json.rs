//! Small helpers over JSON values shared by the engine and the hub.

use serde_json::Value;

/// `v` with every object's keys sorted, recursively: equal values then
/// print (and hash) the same whatever order they were written in.
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let v = sorted(json!({"b": 1, "a": [{"d": 1, "c": 2}]}));
        assert_eq!(v.to_string(), r#"{"a":[{"c":2,"d":1}],"b":1}"#);
    }
}

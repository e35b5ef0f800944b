//! Label selectors written as Kubernetes selector strings
//! (`env=prod,region in (eu,us),!legacy`), turned into the
//! `metav1.LabelSelector` object the RGD holds. Values may be `${...}`
//! expressions, so commas inside `${...}` do not split terms.

use serde_json::{Map, Value, json};

/// Splits `text` at commas outside parentheses and `${...}`.
fn split_top(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let mut prev = '\0';
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            '{' if prev == '$' || depth > 0 => depth += 1,
            ')' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        prev = c;
    }
    parts.push(&text[start..]);
    parts
}

/// The value list of `in (...)` / `notin (...)`.
fn value_list(rest: &str, term: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("{term:?}: expected a parenthesized list of values"))?;
    let values: Vec<String> = split_top(inner)
        .into_iter()
        .map(|v| v.trim().to_owned())
        .collect();
    if values.iter().any(String::is_empty) {
        return Err(format!("{term:?}: empty value in the list"));
    }
    Ok(values)
}

fn expression(key: &str, operator: &str, values: Option<Vec<String>>) -> Value {
    let mut e = json!({"key": key, "operator": operator});
    if let Some(values) = values {
        e["values"] = json!(values);
    }
    e
}

/// Parses a selector string into `{matchLabels, matchExpressions}`.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    let mut labels = Map::new();
    let mut expressions = Vec::new();
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    for term in split_top(text) {
        let term = term.trim();
        if term.is_empty() {
            return Err("empty term (two commas in a row, or a trailing comma)".to_owned());
        }
        if let Some(key) = term.strip_prefix('!') {
            let key = key.trim();
            check_key(key, term)?;
            expressions.push(expression(key, "DoesNotExist", None));
            continue;
        }
        let end = term
            .find(|c: char| c.is_whitespace() || "=!(".contains(c))
            .unwrap_or(term.len());
        let (key, rest) = term.split_at(end);
        check_key(key, term)?;
        let rest = rest.trim_start();
        if rest.is_empty() {
            expressions.push(expression(key, "Exists", None));
        } else if let Some(v) = rest.strip_prefix("!=") {
            expressions.push(expression(key, "NotIn", Some(vec![v.trim().to_owned()])));
        } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
            let previous = labels.insert(key.to_owned(), json!(v.trim()));
            if previous.is_some() {
                return Err(format!("label {key:?} is matched twice"));
            }
        } else if let Some(list) = rest.strip_prefix("notin") {
            expressions.push(expression(key, "NotIn", Some(value_list(list, term)?)));
        } else if let Some(list) = rest.strip_prefix("in") {
            expressions.push(expression(key, "In", Some(value_list(list, term)?)));
        } else {
            return Err(format!(
                "{term:?}: expected key=value, key!=value, key in (...), key notin (...), key or !key"
            ));
        }
    }
    let mut out = Map::new();
    if !labels.is_empty() {
        out.insert("matchLabels".into(), Value::Object(labels));
    }
    if !expressions.is_empty() {
        out.insert("matchExpressions".into(), Value::Array(expressions));
    }
    Ok(Value::Object(out))
}

fn check_key(key: &str, term: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{term:?}: {key:?} is not a label key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_terms_are_match_labels_and_set_terms_are_expressions() {
        let sel = parse(
            "env=prod, tier==${schema.spec.tier}, region in (eu, us), zone notin (a),\
             gpu, !legacy, team!=ops",
        )
        .unwrap_or_default();
        assert_eq!(
            sel,
            json!({
                "matchLabels": {"env": "prod", "tier": "${schema.spec.tier}"},
                "matchExpressions": [
                    {"key": "region", "operator": "In", "values": ["eu", "us"]},
                    {"key": "zone", "operator": "NotIn", "values": ["a"]},
                    {"key": "gpu", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist"},
                    {"key": "team", "operator": "NotIn", "values": ["ops"]},
                ]
            })
        );
    }

    #[test]
    fn commas_inside_expressions_do_not_split() {
        let sel = parse("topology.kubernetes.io/region in (${schema.spec.a}, b), x=${f(1, 2)}")
            .unwrap_or_default();
        assert_eq!(
            sel["matchExpressions"][0]["values"],
            json!(["${schema.spec.a}", "b"])
        );
        assert_eq!(sel["matchLabels"]["x"], "${f(1, 2)}");
    }

    #[test]
    fn mistakes_are_named() {
        let err = |s: &str| parse(s).err().unwrap_or_default();
        assert!(err("env=prod,").contains("empty term"));
        assert!(err("region in eu").contains("parenthesized"));
        assert!(err("env=a, env=b").contains("matched twice"));
        assert!(err("env > 3").contains("expected key=value"));
        assert!(err("=x").contains("is not a label key"));
        assert_eq!(parse("").ok(), Some(json!({})));
    }
}

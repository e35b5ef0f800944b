//! `metav1.LabelSelector` matching, as the API server matches: used for
//! cluster selection (placement) and rollout waves, so both read a selector
//! the same way.

use std::collections::BTreeMap;

use serde_json::Value;

/// Whether `labels` match a `metav1.LabelSelector` (`matchLabels` and
/// `matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`), as the
/// API server matches them. `Err` names what is malformed.
pub fn matches(selector: &Value, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    if let Some(ml) = selector.get("matchLabels") {
        let Some(ml) = ml.as_object() else {
            return Err("matchLabels must be a map of strings".to_owned());
        };
        for (k, v) in ml {
            let v = v
                .as_str()
                .ok_or_else(|| format!("matchLabels.{k} must be a string"))?;
            if labels.get(k).map(String::as_str) != Some(v) {
                return Ok(false);
            }
        }
    }
    if let Some(exprs) = selector.get("matchExpressions") {
        let Some(exprs) = exprs.as_array() else {
            return Err("matchExpressions must be a list".to_owned());
        };
        for (i, e) in exprs.iter().enumerate() {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("matchExpressions[{i}].key must be a string"))?;
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("matchExpressions[{i}].operator must be a string"))?;
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let value = labels.get(key).map(String::as_str);
            let ok = match op {
                "In" if values.is_empty() => {
                    return Err(format!("matchExpressions[{i}]: In needs values"));
                }
                "NotIn" if values.is_empty() => {
                    return Err(format!("matchExpressions[{i}]: NotIn needs values"));
                }
                "In" => value.is_some_and(|v| values.contains(&v)),
                "NotIn" => value.is_none_or(|v| !values.contains(&v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                other => {
                    return Err(format!(
                        "matchExpressions[{i}].operator {other:?} must be In, NotIn, Exists or DoesNotExist"
                    ));
                }
            };
            if !ok {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_match_as_the_api_server_does() {
        let eu = labels(&[("env", "prod"), ("region", "eu")]);
        let sel = json!({"matchLabels": {"env": "prod"},
            "matchExpressions": [{"key": "region", "operator": "In", "values": ["eu", "us"]},
                                  {"key": "canary", "operator": "DoesNotExist"}]});
        assert_eq!(matches(&sel, &eu), Ok(true));
        let us_canary = labels(&[("env", "prod"), ("region", "us"), ("canary", "")]);
        assert_eq!(matches(&sel, &us_canary), Ok(false));
        let notin =
            json!({"matchExpressions": [{"key": "region", "operator": "NotIn", "values": ["eu"]}]});
        assert_eq!(matches(&notin, &eu), Ok(false));
        assert_eq!(matches(&notin, &labels(&[])), Ok(true));
        assert_eq!(matches(&json!({}), &eu), Ok(true));
        let bad =
            json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]});
        assert!(
            matches(&bad, &eu)
                .unwrap_err()
                .contains("must be In, NotIn, Exists or DoesNotExist")
        );
    }
}

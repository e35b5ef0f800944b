//! Which members an instance goes to: the RGD's placement (resolved for the
//! instance by kro-core) over the members' names and labels, then
//! `placement.when` per member. Pure: no I/O, so every rule here is tested
//! directly, and the hub and `kro-hub diff` select alike.

use std::collections::BTreeMap;

use kro_core::{CompiledGraph, EvalContext, ResolvedPlacement};
use serde_json::Value;

/// A member as placement sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The Cluster's name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations (`cluster.annotations` in `placement.when`).
    pub annotations: BTreeMap<String, String>,
}

/// The names of the `candidates` that the graph's placement, then its
/// `placement.when` (evaluated once per candidate, with `cluster` bound to
/// it), select for the instance in `eval`; none when the graph has no
/// placement. Evaluates CEL: the hub calls it in its evaluation pool.
pub fn select_for_instance(
    graph: &CompiledGraph,
    eval: &EvalContext,
    candidates: &[Candidate],
) -> Result<Vec<String>, String> {
    let Some(resolved) = graph.placement(eval).map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let names = select(
        &resolved,
        candidates.iter().map(|c| (c.name.as_str(), &c.labels)),
    )
    .map_err(|e| format!("spec.placement.{e}"))?;
    let mut out = Vec::new();
    for c in candidates.iter().filter(|c| names.contains(&c.name)) {
        let cluster = crate::instance::children::cluster_value(&c.name, &c.labels, &c.annotations);
        let ctx = eval.clone().with_cluster(cluster);
        if graph.placement_when(&ctx).map_err(|e| e.to_string())? {
            out.push(c.name.clone());
        }
    }
    Ok(out)
}

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

/// The names (of `members`, given as name and labels) that `placement`
/// selects: listed by name, or matching the selector (the two OR-ed); every
/// member when the placement names neither. Sorted, so the order is stable.
pub fn select<'m>(
    placement: &ResolvedPlacement,
    members: impl IntoIterator<Item = (&'m str, &'m BTreeMap<String, String>)>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (name, labels) in members {
        let by_name = placement
            .clusters
            .as_ref()
            .is_some_and(|c| c.iter().any(|n| n == name));
        let by_label = match &placement.cluster_selector {
            Some(sel) => matches(sel, labels).map_err(|e| format!("clusterSelector: {e}"))?,
            None => false,
        };
        let everything = placement.clusters.is_none() && placement.cluster_selector.is_none();
        if by_name || by_label || everything {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
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

    #[test]
    fn names_and_selector_are_or_ed_and_nothing_named_means_every_member() {
        let a = labels(&[("env", "prod")]);
        let b = labels(&[("env", "dev")]);
        let c = labels(&[]);
        let members = [("a", &a), ("b", &b), ("c", &c)];
        let placement = ResolvedPlacement {
            clusters: Some(vec!["c".to_owned()]),
            cluster_selector: Some(json!({"matchLabels": {"env": "prod"}})),
        };
        assert_eq!(
            select(&placement, members),
            Ok(vec!["a".to_owned(), "c".to_owned()])
        );
        let all = ResolvedPlacement {
            clusters: None,
            cluster_selector: None,
        };
        assert_eq!(select(&all, members).unwrap().len(), 3);
        let none = ResolvedPlacement {
            clusters: Some(Vec::new()),
            cluster_selector: None,
        };
        assert_eq!(select(&none, members), Ok(Vec::new()));
    }
}

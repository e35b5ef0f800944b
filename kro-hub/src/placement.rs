//! Which members an instance goes to: the RGD's placement (resolved for the
//! instance by kro-core) over the members' names and labels, then
//! `placement.when` per member. Pure: no I/O, so every rule here is tested
//! directly, and the hub and `kro-hub diff` select alike.

use std::collections::BTreeMap;

use kro_core::selector::matches;
use kro_core::{CompiledGraph, EvalContext, ResolvedPlacement};

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

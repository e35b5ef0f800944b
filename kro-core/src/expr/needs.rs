//! What of each variable a graph's expressions can read, so a variable is
//! converted to CEL only as far as that.
//!
//! Converting a variable's JSON to CEL values is a deep copy into hash
//! maps. A controller converts each observed object and the instance once
//! per pass, and most of it is never read: a `readyWhen` on
//! `deployment.status.availableReplicas` paid for the whole Deployment, pod
//! template included, and every template reading `schema.spec` paid for the
//! instance's status. [`Needs`] is the union, over every expression of a
//! graph, of the field paths each one reads ([`super::refs`]); a variable
//! is converted pruned to those paths, whole below where a path ends.
//!
//! The pruning cannot change a result: an expression reaches a variable
//! only through the references the walker reports (the same references
//! dependency inference and type checks rely on), each reference's path
//! is kept whole from where it ends (so `size()`, `has()`, indexing and
//! macros over it see everything), and keys that are not kept are keys no
//! expression names.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::CompiledExpr;

/// How much of one value is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// All of it.
    Whole,
    /// These fields, each as far as its own need says.
    Fields(BTreeMap<String, Need>),
}

impl Need {
    fn add(&mut self, path: &[String]) {
        let Need::Fields(fields) = self else {
            return;
        };
        let Some((first, rest)) = path.split_first() else {
            *self = Need::Whole;
            return;
        };
        fields
            .entry(first.clone())
            .or_insert_with(|| Need::Fields(BTreeMap::new()))
            .add(rest);
    }

    /// `value` without what is not needed. A value of another shape than
    /// the paths expect (a list where a field is selected) is kept whole:
    /// the expression's own error, if any, stays the same.
    pub fn prune(&self, value: &Value) -> Value {
        match (self, value) {
            (Need::Fields(fields), Value::Object(map)) => {
                let mut out = Map::new();
                for (key, need) in fields {
                    if let Some(v) = map.get(key) {
                        out.insert(key.clone(), need.prune(v));
                    }
                }
                Value::Object(out)
            }
            _ => value.clone(),
        }
    }
}

/// What each variable (`schema`, `cluster`, a resource id) is read for, by
/// every expression of one graph. Variables no expression reads are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    by_root: BTreeMap<String, Need>,
}

impl Needs {
    /// The needs of `exprs`: every expression the graph may evaluate.
    pub fn of<'a>(exprs: impl IntoIterator<Item = &'a CompiledExpr>) -> Self {
        let mut by_root: BTreeMap<String, Need> = BTreeMap::new();
        for expr in exprs {
            for reference in expr.references() {
                by_root
                    .entry(reference.root.clone())
                    .or_insert_with(|| Need::Fields(BTreeMap::new()))
                    .add(&reference.path);
            }
        }
        Self { by_root }
    }

    /// What of `root` is read; `None` when nothing reads it.
    pub fn get(&self, root: &str) -> Option<&Need> {
        self.by_root.get(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn needs(sources: &[&str]) -> Needs {
        let exprs: Vec<CompiledExpr> = sources
            .iter()
            .map(|s| CompiledExpr::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
            .collect();
        Needs::of(&exprs)
    }

    #[test]
    fn paths_are_merged_and_a_shorter_one_keeps_the_subtree_whole() {
        let n = needs(&[
            "deployment.status.?availableReplicas.orValue(0) == deployment.spec.replicas",
            "deployment.spec.selector.matchLabels",
            "size(deployment.metadata.labels) > 0",
            "schema.spec.name",
        ]);
        let deployment = json!({
            "metadata": {"name": "d", "labels": {"a": "1", "b": "2"}, "uid": "u"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                     "template": {"spec": {"containers": [{"name": "c"}]}}},
            "status": {"availableReplicas": 2, "conditions": []}
        });
        let pruned = n.get("deployment").map(|need| need.prune(&deployment));
        assert_eq!(
            pruned,
            Some(json!({
                "metadata": {"labels": {"a": "1", "b": "2"}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}},
                // `?.` selects a field like `.`: an absent field stays absent.
                "status": {"availableReplicas": 2}
            }))
        );
        assert!(n.get("cluster").is_none());
        assert_eq!(
            n.get("schema")
                .map(|need| need.prune(&json!({"spec": {"name": "x", "other": 1},
                "status": {"big": [1, 2, 3]}}))),
            Some(json!({"spec": {"name": "x"}}))
        );
    }

    #[test]
    fn a_variable_read_whole_is_kept_whole() {
        let n = needs(&["string(deployment)", "deployment.spec.replicas"]);
        let deployment = json!({"spec": {"replicas": 1}, "status": {"x": 1}});
        assert_eq!(
            n.get("deployment").map(|need| need.prune(&deployment)),
            Some(deployment)
        );
    }

    #[test]
    fn a_value_of_another_shape_is_kept_as_it_is() {
        let n = needs(&["deployment.spec.replicas"]);
        let odd = json!({"spec": [1, 2]});
        assert_eq!(n.get("deployment").map(|need| need.prune(&odd)), Some(odd));
    }
}

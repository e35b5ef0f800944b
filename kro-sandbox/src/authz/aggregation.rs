//! The ClusterRole aggregation controller: a ClusterRole with an `aggregationRule` gets
//! the rules of every other ClusterRole its selectors match (sources in name order,
//! each distinct rule once), written back into its `rules`.

use std::sync::{Arc, Weak};

use serde_json::{Value, json};

use super::rbac::GROUP;
use crate::selector::LabelSelector;
use crate::state::Shared;
use crate::storage::{Data, EventType};

fn selector_of(sel: &Value) -> Option<LabelSelector> {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e.get("operator").and_then(Value::as_str) {
            Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
            Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
            Some("Exists") => parts.push(key.to_owned()),
            Some("DoesNotExist") => parts.push(format!("!{key}")),
            _ => return None,
        }
    }
    LabelSelector::parse(&parts.join(",")).ok()
}

/// One pass over every aggregated ClusterRole; returns how many were rewritten.
fn pass(data: &mut Data) -> usize {
    let res = (GROUP.to_owned(), "clusterroles".to_owned());
    let roles: Vec<(String, Value)> = data
        .list(&res, None)
        .filter_map(|((_, name), s)| Some((name.clone(), serde_json::from_str(&s.json).ok()?)))
        .collect();
    let mut changed = 0;
    for (name, role) in &roles {
        let Some(selectors) = role
            .pointer("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let mut rules: Vec<Value> = Vec::new();
        for sel in selectors {
            let Some(selector) = selector_of(sel) else {
                continue;
            };
            // `roles` is in name order already (the store keeps keys sorted).
            for (other, source) in &roles {
                if other == name || !selector.matches(source.pointer("/metadata/labels")) {
                    continue;
                }
                for r in source
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if !rules.contains(r) {
                        rules.push(r.clone());
                    }
                }
            }
        }
        let current = role.get("rules").cloned().unwrap_or(Value::Null);
        let same = match &current {
            Value::Array(a) => *a == rules,
            Value::Null => rules.is_empty(),
            _ => false,
        };
        if same {
            continue;
        }
        let mut updated = role.clone();
        updated["rules"] = Value::Array(rules);
        let rv = data.next_rv();
        updated["metadata"]["resourceVersion"] = json!(rv.to_string());
        data.put(
            &res,
            (String::new(), name.clone()),
            rv,
            Arc::from(updated.to_string()),
            EventType::Modified,
        );
        changed += 1;
    }
    changed
}

/// Brings every aggregated ClusterRole up to date (aggregates of aggregates included).
pub fn reconcile(data: &mut Data) {
    for _ in 0..8 {
        if pass(data) == 0 {
            return;
        }
    }
}

/// Runs the controller until the sandbox goes away: reconciles after ClusterRole changes.
pub async fn run(sh: Weak<Shared>) {
    let mut events = match sh.upgrade() {
        Some(s) => s.data().subscribe(),
        None => return,
    };
    loop {
        let ev = match events.recv().await {
            Ok(ev) => Some(ev),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if ev.is_some_and(|e| e.resource.0 != GROUP || e.resource.1 != "clusterroles") {
            continue;
        }
        let Some(sh) = sh.upgrade() else { return };
        reconcile(&mut sh.data());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_roles_aggregate_view_into_edit_into_admin() {
        let mut data = Data::new(100);
        let res = (GROUP.to_owned(), "clusterroles".to_owned());
        for r in super::super::bootstrap::cluster_roles() {
            let name = r["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let rv = data.next_rv();
            data.put(
                &res,
                (String::new(), name),
                rv,
                Arc::from(r.to_string()),
                EventType::Added,
            );
        }
        reconcile(&mut data);
        let rules = |n: &str| -> Vec<Value> {
            let s = data
                .get(&res, &(String::new(), n.to_owned()))
                .map(|s| s.json.clone());
            let v: Value = s
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            v["rules"].as_array().cloned().unwrap_or_default()
        };
        let (admin, edit, view) = (rules("admin"), rules("edit"), rules("view"));
        assert_eq!(view.len(), 10);
        assert!(view.iter().all(|r| edit.contains(r)));
        assert!(edit.iter().all(|r| admin.contains(r)));
        assert!(admin.len() > edit.len() && edit.len() > view.len());
    }
}

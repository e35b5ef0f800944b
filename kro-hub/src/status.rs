//! The one status writer of every object the hub reports on (RGDs,
//! instances, Clusters): conditions keep their transition times, keys the
//! desired status no longer has are removed, and nothing is written when
//! the status already is what it should be, so a resync of a converged
//! object makes no request.

use kube::api::{Api, Patch, PatchParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::conditions;

/// The status to write: `desired` with its conditions merged into the
/// `current` ones (see [`conditions::merge`]).
pub fn merged(current: Option<&Value>, mut desired: Value) -> Value {
    let previous = conditions::read(current);
    if let Some(conds) = desired.get("conditions").cloned() {
        let conds: Vec<conditions::Condition> = serde_json::from_value(conds).unwrap_or_default();
        desired["conditions"] = json!(conditions::merge(&previous, conds));
    }
    desired
}

/// Writes `desired` as the status of `name` unless `current` already is it.
/// Returns the object's new resourceVersion when a write was made.
pub async fn write<K>(
    api: &Api<K>,
    name: &str,
    current: Option<&Value>,
    desired: Value,
) -> Result<Option<String>, kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let desired = merged(current, desired);
    if current == Some(&desired) {
        return Ok(None);
    }
    // A merge patch keeps every key it does not name, at any depth:
    // `null` for each stale one removes it.
    let mut patch = desired;
    if let Some(cur) = current {
        null_stale_keys(cur, &mut patch);
    }
    let written = api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": patch})),
        )
        .await?;
    Ok(Some(
        written.meta().resource_version.clone().unwrap_or_default(),
    ))
}

/// Sets to `null` in `patch` every key of `current` it lacks, recursing
/// into objects both hold (lists are replaced whole by a merge patch).
fn null_stale_keys(current: &Value, patch: &mut Value) {
    let (Some(cur), Some(p)) = (current.as_object(), patch.as_object_mut()) else {
        return;
    };
    for (key, old) in cur {
        match p.get_mut(key) {
            None => {
                p.insert(key.clone(), Value::Null);
            }
            Some(new) => null_stale_keys(old, new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_are_removed_at_any_depth() {
        let current = json!({"rollout": {"state": "Halted", "failures": [{"cluster": "a"}],
            "stable": {"revision": 1}}, "old": 1});
        let mut patch = json!({"rollout": {"state": "Progressing", "stable": {"revision": 1}}});
        null_stale_keys(&current, &mut patch);
        assert_eq!(
            patch,
            json!({"rollout": {"state": "Progressing", "failures": null,
                "stable": {"revision": 1}}, "old": null})
        );
    }

    #[test]
    fn merging_keeps_transition_times_of_unchanged_conditions() {
        let current = json!({"state": "Active", "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "",
             "lastTransitionTime": "2020-01-01T00:00:00Z"}]});
        let desired = json!({"state": "Active", "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "message": ""}]});
        assert_eq!(merged(Some(&current), desired), current);
    }
}

//! The one status writer of every object the hub reports on (RGDs,
//! instances, Clusters): conditions keep their transition times, keys the
//! desired status no longer has are removed, and nothing is written when
//! the status already is what it should be, so a resync of a converged
//! object makes no request.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
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
/// Returns whether a write was made.
pub async fn write(
    api: &Api<DynamicObject>,
    name: &str,
    current: Option<&Value>,
    desired: Value,
) -> Result<bool, kube::Error> {
    let desired = merged(current, desired);
    if current == Some(&desired) {
        return Ok(false);
    }
    // A merge patch cannot remove stale keys; `null` for each one does.
    let mut patch = desired;
    if let (Some(cur), Some(p)) = (current.and_then(Value::as_object), patch.as_object_mut()) {
        for key in cur.keys() {
            if !p.contains_key(key) {
                p.insert(key.clone(), Value::Null);
            }
        }
    }
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": patch})),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

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

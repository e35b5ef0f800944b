//! Adding and removing one finalizer with JSON patches guarded by `test`
//! operations, so a concurrent change to the list by another controller
//! makes the patch fail (and the reconcile retry) instead of being lost.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

/// Adds `finalizer` if missing. Returns whether a write was made.
pub async fn ensure(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    finalizer: &str,
) -> Result<bool, kube::Error> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let patch = match obj.metadata.finalizers.as_deref() {
        Some(list) if list.iter().any(|f| f == finalizer) => return Ok(false),
        Some(list) if !list.is_empty() => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": list},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
        ]),
        _ => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": obj.metadata.resource_version},
            {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]},
        ]),
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
    api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await?;
    Ok(true)
}

/// Removes `finalizer` if present. Returns whether a write was made.
pub async fn remove(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    finalizer: &str,
) -> Result<bool, kube::Error> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let Some(index) = obj
        .metadata
        .finalizers
        .as_deref()
        .and_then(|list| list.iter().position(|f| f == finalizer))
    else {
        return Ok(false);
    };
    let path = format!("/metadata/finalizers/{index}");
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": path, "value": finalizer},
        {"op": "remove", "path": path},
    ]))
    .map_err(kube::Error::SerdeError)?;
    api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await?;
    Ok(true)
}

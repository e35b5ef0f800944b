//! Adding and removing one finalizer with JSON patches guarded by `test`
//! operations, so a concurrent change to the list by another controller
//! makes the patch fail (and the reconcile retry) instead of being lost.

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::de::DeserializeOwned;
use serde_json::json;

/// Adds `finalizer` if missing. Returns whether a write was made.
pub async fn ensure<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let meta = obj.meta();
    let name = meta.name.clone().unwrap_or_default();
    let patch = match meta.finalizers.as_deref() {
        Some(list) if list.iter().any(|f| f == finalizer) => return Ok(false),
        Some(list) if !list.is_empty() => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": list},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
        ]),
        _ => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version},
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
pub async fn remove<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let meta = obj.meta();
    let name = meta.name.clone().unwrap_or_default();
    let Some(index) = meta
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

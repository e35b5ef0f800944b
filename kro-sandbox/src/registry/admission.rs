//! Admission the real server runs on every write: the namespace lifecycle rules.

use serde_json::json;

use crate::catalog::ResourceDef;
use crate::error::{ApiError, ApiResult, Target};
use crate::storage::{Data, ResourceKey};

/// A namespaced request needs its namespace; a create needs it not to be terminating.
pub fn namespace_lifecycle(
    def: &ResourceDef,
    data: &Data,
    ns: &str,
    name: &str,
    creating: bool,
) -> ApiResult<()> {
    if !def.namespaced {
        return Ok(());
    }
    let key: ResourceKey = (String::new(), "namespaces".into());
    let Some(stored) = data.get(&key, &(String::new(), ns.to_owned())) else {
        return Err(ApiError::not_found(Target {
            group: "",
            plural: "namespaces",
            name: ns,
        }));
    };
    if creating && stored.json.contains("\"deletionTimestamp\"") {
        let resource = if def.group.is_empty() {
            def.plural.clone()
        } else {
            format!("{}.{}", def.plural, def.group)
        };
        let mut details = serde_json::Map::new();
        details.insert("name".into(), json!(name));
        if !def.group.is_empty() {
            details.insert("group".into(), json!(def.group));
        }
        details.insert("kind".into(), json!(def.plural));
        // The lifecycle plugin adds a cause clients look for to tell this refusal apart.
        details.insert(
            "causes".into(),
            json!([{"reason": "NamespaceTerminating",
                    "message": format!("namespace {ns} is being terminated"),
                    "field": "metadata.namespace"}]),
        );
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "{resource} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated"
            ),
        )
        .with_details(serde_json::Value::Object(details)));
    }
    Ok(())
}

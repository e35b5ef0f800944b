//! Request options decoded from the query (or a `DeleteOptions` body), once per request,
//! and handed to the registry's validation.

use serde_json::{Map, Value, json};

use super::Call;
use super::body;
use crate::error::{ApiError, ApiResult};
use crate::registry::options::{RawWriteOptions, WriteVerb};
use crate::registry::{DeleteOptions, ListOptions, WriteOptions};

/// Parses a boolean query parameter the way the server's parameter codec does.
fn parse_bool(call: &Call, key: &str) -> ApiResult<Option<bool>> {
    match call.q(key) {
        None => Ok(None),
        Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(Some(true)),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False" | "") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

fn parse_int<T: std::str::FromStr>(call: &Call, key: &str) -> ApiResult<Option<T>> {
    match call.q(key) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
        }),
    }
}

/// The options of a create, update or patch.
pub fn write(call: &Call, verb: WriteVerb) -> ApiResult<WriteOptions> {
    let raw = RawWriteOptions {
        dry_run: call
            .q("dryRun")
            .map(|v| vec![v.to_owned()])
            .unwrap_or_default(),
        field_manager: call.q("fieldManager").map(str::to_owned),
        field_validation: call.q("fieldValidation").map(str::to_owned),
        force: parse_bool(call, "force")?,
    };
    raw.validate(verb, &call.default_manager())
}

/// The options of a delete: the body when there is one (the query is then ignored, as the
/// real server does), otherwise the query.
pub fn delete(call: &Call, content_type: &str) -> ApiResult<DeleteOptions> {
    if !call.body.is_empty() {
        let v = body::decode(&call.body, content_type, "DeleteOptions")?.value;
        return DeleteOptions::from_value(&v);
    }
    let mut m = Map::new();
    if let Some(p) = call.q("propagationPolicy") {
        m.insert("propagationPolicy".into(), json!(p));
    }
    if let Some(o) = parse_bool(call, "orphanDependents")? {
        m.insert("orphanDependents".into(), json!(o));
    }
    if let Some(d) = call.q("dryRun") {
        m.insert("dryRun".into(), json!([d]));
    }
    if let Some(g) = parse_int::<i64>(call, "gracePeriodSeconds")? {
        m.insert("gracePeriodSeconds".into(), json!(g));
    }
    DeleteOptions::from_value(&Value::Object(m))
}

/// The options of a list, watch or deletecollection.
pub fn list(call: &Call, watch: bool) -> ApiResult<ListOptions> {
    let opts = ListOptions {
        label_selector: call.q("labelSelector").map(str::to_owned),
        field_selector: call.q("fieldSelector").map(str::to_owned),
        limit: parse_int::<i64>(call, "limit")?
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(0),
        continue_token: call.q("continue").map(str::to_owned),
        resource_version: call.q("resourceVersion").map(str::to_owned),
        resource_version_match: call
            .q("resourceVersionMatch")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        watch,
        send_initial_events: parse_bool(call, "sendInitialEvents")?,
        allow_bookmarks: parse_bool(call, "allowWatchBookmarks")?.unwrap_or(false),
        timeout_seconds: parse_int::<u64>(call, "timeoutSeconds")?,
    };
    opts.validate()?;
    Ok(opts)
}

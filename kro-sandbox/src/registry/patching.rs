//! Patches: maps a request onto the patch engine and the engine's errors onto `Status`.

use serde_json::Value;

use super::Request;
use super::options::WriteOptions;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::patch::{self, PatchError, PatchOptions, PatchType};
use crate::registry::fields::type_info;

/// The four patch media types.
pub type PatchKind = PatchType;

fn to_api(e: &PatchError) -> ApiError {
    ApiError {
        code: e.status_code(),
        reason: e.reason().to_owned(),
        message: e.message(),
        details: e.details().map(Box::new),
        list_continue: None,
    }
}

/// Applies `body` (a patch of `kind`) to the live object, or to nothing for an apply that
/// creates.
pub fn apply(
    req: &Request<'_>,
    kind: PatchKind,
    live: Option<&Value>,
    body: &[u8],
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let ti = type_info(&req.def);
    if kind == PatchKind::Apply {
        check_apply_type(req, body)?;
    }
    let now = ids::now_rfc3339();
    let popts = PatchOptions {
        manager: &opts.field_manager,
        force: opts.force,
        subresource: req.sub.as_deref().filter(|s| *s == "status"),
        now: &now,
    };
    patch::apply_patch(&ti, live, body, kind, &popts).map_err(|e| to_api(&e))
}

/// The field manager's first check on an applied configuration: its group, version and
/// kind must be the endpoint's, whatever else is wrong with it.
fn check_apply_type(req: &Request<'_>, body: &[u8]) -> ApiResult<()> {
    let parsed = std::str::from_utf8(body)
        .ok()
        .and_then(|t| serde_saphyr::from_str::<Value>(t).ok());
    let Some(Value::Object(cfg)) = parsed else {
        // Undecodable bodies get the engine's own error.
        return Ok(());
    };
    let text = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (want_kind, want_group, want_version) = if req.is_scale() {
        ("Scale", "autoscaling", "v1")
    } else {
        (
            req.def.kind.as_str(),
            req.def.group.as_str(),
            req.def.version.as_str(),
        )
    };
    if (group, version, kind) == (want_group, want_version, want_kind) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "invalid object type: {group}/{version}, Kind={kind}"
    )))
}

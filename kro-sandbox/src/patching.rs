//! PATCH requests: maps the HTTP request onto the patch engine and its errors onto `Status`.

use serde_json::Value;

use crate::admission::FieldValidation;
use crate::api::objects::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::fields::type_info;
use crate::ids;
use crate::patch::{self, PatchError, PatchOptions, PatchType};

/// The four patch media types.
pub type PatchKind = PatchType;

fn to_api(e: &PatchError) -> ApiError {
    ApiError {
        code: e.status_code(),
        reason: e.reason().to_owned(),
        message: e.message(),
        details: e.details().map(Box::new),
    }
}

fn run(
    ctx: &Ctx<'_>,
    kind: PatchKind,
    live: Option<&Value>,
    manager: &str,
    force: bool,
) -> ApiResult<Value> {
    let ti = type_info(&ctx.def);
    let now = ids::now_rfc3339();
    let opts = PatchOptions {
        manager,
        force,
        subresource: ctx.sub.as_deref().filter(|s| *s == "status"),
        now: &now,
    };
    patch::apply_patch(&ti, live, &ctx.call.body, kind, &opts).map_err(|e| to_api(&e))
}

/// Applies the request's patch to the live object.
pub fn apply(
    ctx: &Ctx<'_>,
    kind: PatchKind,
    live: &Value,
    manager: &str,
    force: bool,
    fv: FieldValidation,
    _warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    let _ = fv;
    run(ctx, kind, Some(live), manager, force)
}

/// A server-side apply that creates the object.
pub fn apply_new(
    ctx: &Ctx<'_>,
    manager: &str,
    fv: FieldValidation,
    _warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    let _ = fv;
    run(ctx, PatchType::Apply, None, manager, false)
}

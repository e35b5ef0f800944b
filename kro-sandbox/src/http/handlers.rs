//! The resource handlers: one per verb, each decoding the request once (options first,
//! then the body), calling the registry, and rendering its answer in the negotiated
//! representation.

use std::sync::Arc;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::body::{self, Decoded};
use super::negotiate::Media;
use super::negotiate::{self, Representation};
use super::route::ResourcePath;
use super::{Call, options, protobuf, raw_json_response, status_response, table, watch};
use crate::catalog::ResourceDef;
use crate::error::{ApiError, ApiResult};
use crate::registry::options::WriteVerb;
use crate::registry::patching::PatchKind;
use crate::registry::{self, FieldValidation, Out, Outcome, Request, parse_stored, present, store};
use crate::state::Shared;

/// Routes a resource request to its verb.
pub async fn dispatch(sh: &Arc<Shared>, rp: ResourcePath, call: Call) -> Response {
    let Some(def) = sh.catalog().get(&rp.group, &rp.version, &rp.plural) else {
        return status_response(&ApiError::not_found_path());
    };
    if rp.namespace.is_some() && !def.namespaced {
        return status_response(&ApiError::not_found_path());
    }
    match rp.sub.as_deref() {
        None => {}
        Some("status") if def.status => {}
        Some("scale") if def.scale => {}
        Some(_) => return status_response(&ApiError::not_found_path()),
    }
    let req = Request {
        sh,
        def,
        ns: rp.namespace.unwrap_or_default(),
        name: rp.name.unwrap_or_default(),
        sub: rp.sub,
    };
    // The answer's media type is settled before anything runs, as the real handlers do:
    // a 406 changes nothing.
    let media = if negotiate::representation(&call) == Representation::Object {
        negotiate::media(&call, protobuf_capable(&req))
    } else {
        Ok(Media::Json)
    };
    let media = match media {
        Ok(m) => m,
        Err(e) => return status_response(&e),
    };
    let is_watch = call.q("watch").is_some_and(|w| w == "true" || w == "1");
    if is_watch && call.method == Method::GET && req.name.is_empty() {
        return watch::serve(&req, &call, media).await;
    }
    let collection = req.name.is_empty();
    let verb = match (&call.method, collection) {
        (&Method::GET, true) => "list",
        (&Method::GET, false) => "get",
        (&Method::POST, true) => "create",
        (&Method::PUT, false) => "update",
        (&Method::PATCH, false) => "patch",
        (&Method::DELETE, false) => "delete",
        (&Method::DELETE, true) => "deletecollection",
        _ => "",
    };
    // A verb the resource does not serve is a route the server never installed.
    let served = if req.sub.is_some() {
        matches!(verb, "get" | "update" | "patch")
    } else {
        req.def.has_verb(verb)
    };
    if !served {
        return status_response(&ApiError::method_not_allowed());
    }
    let result = match verb {
        "list" => list(&req, &call),
        "get" => get(&req, &call),
        "create" => create(&req, &call),
        "update" => update(&req, &call),
        "patch" => patch(&req, &call),
        "delete" => delete(&req, &call),
        _ => delete_collection(&req, &call),
    };
    match result {
        Ok(a) => respond(media, a.code, a.text, &a.warnings),
        Err(e) => match media {
            Media::Protobuf => respond(media, e.code, e.to_status().to_string(), &[]),
            Media::Json => status_response(&e),
        },
    }
}

/// Renders an answer's JSON text in the negotiated media type.
fn respond(media: Media, code: u16, text: String, warnings: &[String]) -> Response {
    if media == Media::Protobuf {
        let encoded = serde_json::from_str(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| protobuf::encode_object(&v).map_err(|e| e.to_string()));
        match encoded {
            Ok(bytes) => return super::bytes_response(code, bytes, protobuf::MEDIA_TYPE, warnings),
            // Not expected for a built-in kind; JSON is still an answer most clients read.
            Err(error) => tracing::warn!(%error, "answer has no protobuf form, sending JSON"),
        }
    }
    raw_json_response(code, text, warnings)
}

/// An answer: HTTP code, JSON text and warnings.
#[derive(Debug)]
struct Answer {
    code: u16,
    text: String,
    warnings: Vec<String>,
}

impl Answer {
    fn json(code: u16, v: &Value) -> Self {
        Self {
            code,
            text: serde_json::to_string(v).unwrap_or_default(),
            warnings: vec![],
        }
    }

    fn out(code: u16, o: Out) -> Self {
        match o {
            Out::Stored(t) => Self {
                code,
                text: t.to_string(),
                warnings: vec![],
            },
            Out::Value(v) => Self::json(code, &v),
        }
    }

    fn outcome(o: Outcome) -> Self {
        let code = if o.created { 201 } else { 200 };
        let mut a = Self::out(code, o.object);
        a.warnings = o.warnings;
        a
    }
}

fn content_type(call: &Call) -> &str {
    call.header("content-type").unwrap_or("application/json")
}

/// `PartialObjectMetadata` of an object.
pub(super) fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
           "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({}))})
}

fn get(req: &Request<'_>, call: &Call) -> ApiResult<Answer> {
    let out = store::get(req)?;
    if req.is_scale() {
        return Ok(Answer::out(200, out));
    }
    match negotiate::representation(call) {
        Representation::Object => Ok(Answer::out(200, out)),
        Representation::Metadata => Ok(Answer::json(200, &partial_metadata(&out.to_value()?))),
        Representation::Table => {
            let obj = out.to_value()?;
            let rv = store::current_rv(req);
            Ok(Answer::json(
                200,
                &table::render(
                    &req.def,
                    &[obj],
                    None,
                    rv,
                    negotiate::include_object(call),
                    true,
                ),
            ))
        }
    }
}

fn list(req: &Request<'_>, call: &Call) -> ApiResult<Answer> {
    let opts = options::list(call, false)?;
    let listed = store::list(req, &opts)?;
    let def = &req.def;
    let custom = def.custom.is_some();
    let representation = negotiate::representation(call);
    if representation != Representation::Object {
        let objs: Vec<Value> = listed
            .items
            .iter()
            .map(|t| parse_stored(t).map(|o| present(def, o)))
            .collect::<ApiResult<_>>()?;
        if representation == Representation::Table {
            return Ok(Answer::json(
                200,
                &table::render(
                    def,
                    &objs,
                    listed.continue_token.as_deref(),
                    listed.rv,
                    negotiate::include_object(call),
                    true,
                ),
            ));
        }
        let mut lm = Map::new();
        if let Some(c) = &listed.continue_token {
            lm.insert("continue".into(), json!(c));
        }
        lm.insert("resourceVersion".into(), json!(listed.rv.to_string()));
        let items: Vec<Value> = objs
            .iter()
            .map(|o| {
                let mut p = partial_metadata(o);
                if let Value::Object(m) = &mut p {
                    m.shift_remove("kind");
                    m.shift_remove("apiVersion");
                }
                p
            })
            .collect();
        return Ok(Answer::json(
            200,
            &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                    "metadata": lm, "items": items}),
        ));
    }
    let head = json!({
        "kind": format!("{}List", def.kind),
        "apiVersion": def.api_version(),
        "metadata": list_meta(&listed, custom),
    });
    let mut text = serde_json::to_string(&head).unwrap_or_default();
    text.pop();
    text.push_str(",\"items\":[");
    // Built-in list items are served without apiVersion/kind, as the real server does.
    let prefix = format!(
        "{{\"apiVersion\":\"{}\",\"kind\":\"{}\",",
        def.api_version(),
        def.kind
    );
    let converting = registry::converts(def);
    for (i, item) in listed.items.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        match item.strip_prefix(prefix.as_str()) {
            Some(rest) if !custom => {
                text.push('{');
                text.push_str(rest);
            }
            _ if !custom || converting => {
                let mut o = present(def, parse_stored(item)?);
                if !custom && let Value::Object(m) = &mut o {
                    m.shift_remove("apiVersion");
                    m.shift_remove("kind");
                }
                text.push_str(&serde_json::to_string(&o).unwrap_or_default());
            }
            _ => text.push_str(item),
        }
    }
    text.push_str("]}");
    Ok(Answer {
        code: 200,
        text,
        warnings: vec![],
    })
}

/// Refuses bodies the server cannot decode, before anything else is read.
fn check_media_type(req: &Request<'_>, call: &Call) -> ApiResult<()> {
    match negotiate::unsupported_body(content_type(call), protobuf_capable(req)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether the endpoint's objects have a protobuf form: built-in kinds do, custom ones not.
fn protobuf_capable(req: &Request<'_>) -> bool {
    if req.def.custom.is_some() {
        return false;
    }
    if req.is_scale() {
        return true;
    }
    protobuf::supports(&req.def.api_version(), &req.def.kind)
}

/// Decodes an object body and checks it is of the endpoint's kind and version.
fn decode_object(
    req: &Request<'_>,
    call: &Call,
    fv: FieldValidation,
) -> ApiResult<(Value, Vec<String>)> {
    let def = &req.def;
    let Decoded { value, duplicates } = body::decode(&call.body, content_type(call), &def.kind)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            def.kind,
            json_type_name(&value)
        )));
    }
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            String::from_utf8_lossy(&call.body)
        )));
    }
    let (want_kind, want_av) = if req.is_scale() {
        ("Scale", "autoscaling/v1".to_owned())
    } else {
        (def.kind.as_str(), def.api_version())
    };
    let (_, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if kind != want_kind || (api_version != want_av && !req.is_scale()) {
        let internal_group = if def.group.is_empty() {
            "core"
        } else {
            def.group.as_str()
        };
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {want_kind}: converting ({version}.{kind}) to ({internal_group}.{want_kind}): unknown conversion"
        )));
    }
    let mut warnings = Vec::new();
    if !duplicates.is_empty() {
        let msgs: Vec<String> = duplicates
            .iter()
            .map(|d| format!("duplicate field \"{d}\""))
            .collect();
        match fv {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                    msgs.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(msgs),
            FieldValidation::Ignore => {}
        }
    }
    Ok((value, warnings))
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "null",
    }
}

fn with_warnings(mut a: Answer, mut first: Vec<String>) -> Answer {
    first.append(&mut a.warnings);
    a.warnings = first;
    a
}

fn create(req: &Request<'_>, call: &Call) -> ApiResult<Answer> {
    check_media_type(req, call)?;
    let opts = options::write(call, WriteVerb::Create)?;
    let (obj, warnings) = decode_object(req, call, opts.field_validation)?;
    let outcome = registry::store::create(req, obj, &opts)?;
    Ok(with_warnings(Answer::outcome(outcome), warnings))
}

fn update(req: &Request<'_>, call: &Call) -> ApiResult<Answer> {
    check_media_type(req, call)?;
    let opts = options::write(call, WriteVerb::Update)?;
    let (obj, warnings) = decode_object(req, call, opts.field_validation)?;
    let outcome = registry::store::update(req, obj, &opts)?;
    Ok(with_warnings(Answer::outcome(outcome), warnings))
}

fn patch(req: &Request<'_>, call: &Call) -> ApiResult<Answer> {
    let ct = content_type(call)
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let kind = PatchKind::from_content_type(&ct).ok_or_else(ApiError::unsupported_media_type)?;
    let opts = options::write(
        call,
        WriteVerb::Patch {
            apply: kind == PatchKind::Apply,
        },
    )?;
    Ok(Answer::outcome(registry::store::patch(
        req, kind, &call.body, &opts,
    )?))
}

fn delete(req: &Request<'_>, call: &Call) -> ApiResult<Answer> {
    let opts = options::delete(call, content_type(call))?;
    let deletion = registry::store::delete(req, &opts)?;
    // handlers/delete.go: a delete that leaves the object in place with the deprecated
    // `orphanDependents: false` is answered 202 Accepted.
    let code = if !deletion.removed && opts.orphan_dependents == Some(false) {
        202
    } else {
        200
    };
    Ok(Answer::out(code, deletion.object))
}

fn delete_collection(req: &Request<'_>, call: &Call) -> ApiResult<Answer> {
    let list_opts = options::list(call, false)?;
    let opts = options::delete(call, content_type(call))?;
    let listed = registry::store::delete_collection(req, &list_opts, &opts)?;
    let def: &ResourceDef = &req.def;
    let custom = def.custom.is_some();
    let items: Vec<Value> = listed
        .items
        .iter()
        .map(|t| {
            let mut o = present(def, parse_stored(t)?);
            if !custom && let Value::Object(m) = &mut o {
                m.shift_remove("apiVersion");
                m.shift_remove("kind");
            }
            Ok(o)
        })
        .collect::<ApiResult<_>>()?;
    Ok(Answer::json(
        200,
        &json!({
            "kind": format!("{}List", def.kind),
            "apiVersion": def.api_version(),
            "metadata": list_meta(&listed, custom),
            "items": items,
        }),
    ))
}

/// A list's metadata: the continuation and the count of what follows when there is
/// more, the empty `continue` custom resources always carry, the version.
fn list_meta(listed: &store::Listed, custom: bool) -> Value {
    let mut lm = Map::new();
    if let Some(c) = &listed.continue_token {
        lm.insert("continue".into(), json!(c));
        if let Some(r) = listed.remaining {
            lm.insert("remainingItemCount".into(), json!(r));
        }
    } else if custom {
        lm.insert("continue".into(), json!(""));
    }
    lm.insert("resourceVersion".into(), json!(listed.rv.to_string()));
    Value::Object(lm)
}

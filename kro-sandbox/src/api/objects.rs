//! Object verbs: get, list, create, update, patch, delete, deletecollection and subresources.

use std::sync::Arc;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::body::{self, Decoded};
use super::route::ResourcePath;
use super::{Call, raw_json_response, status_response, table, watch};
use crate::admission::{self, FieldValidation};
use crate::catalog::ResourceDef;
use crate::error::{ApiError, ApiResult, Cause, Target};
use crate::fields::{self, Operation};
use crate::ids;
use crate::meta::{self, finalizers, is_deleting, meta_mut, meta_str};
use crate::selector::{FieldSelector, LabelSelector, allowed_fields};
use crate::state::Shared;
use crate::store::{Data, EventType, ObjectKey, ResourceKey};

/// A request on a resource, resolved against the catalog.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// Sandbox state.
    pub sh: &'a Arc<Shared>,
    /// The resource.
    pub def: Arc<ResourceDef>,
    /// Namespace from the path ("" when none).
    pub ns: String,
    /// Object name from the path ("" for collections).
    pub name: String,
    /// Subresource.
    pub sub: Option<String>,
    /// The request.
    pub call: Call,
}

/// An answer: HTTP code, JSON text and warnings.
#[derive(Debug)]
pub struct Answer {
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
    fn warn(mut self, w: Vec<String>) -> Self {
        self.warnings = w;
        self
    }
}

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
    let is_watch = call.q("watch").is_some_and(|w| w == "true" || w == "1");
    let ctx = Ctx {
        sh,
        def,
        ns: rp.namespace.unwrap_or_default(),
        name: rp.name.unwrap_or_default(),
        sub: rp.sub,
        call,
    };
    if is_watch && ctx.call.method == Method::GET && ctx.name.is_empty() {
        return watch::serve(ctx).await;
    }
    let result = match (&ctx.call.method, ctx.name.is_empty()) {
        (&Method::GET, true) => list(&ctx),
        (&Method::GET, false) => get(&ctx),
        (&Method::POST, true) => create(&ctx),
        (&Method::PUT, false) => update(&ctx),
        (&Method::PATCH, false) => patch(&ctx),
        (&Method::DELETE, false) => delete(&ctx),
        (&Method::DELETE, true) if ctx.def.has_verb("deletecollection") => delete_collection(&ctx),
        (m, _) => Err(ApiError::method_not_allowed(m.as_str(), &ctx.def.plural)),
    };
    match result {
        Ok(a) => {
            if a.code < 300 && ctx.call.method != Method::GET {
                ctx.sh.changed.notify_waiters();
            }
            raw_json_response(a.code, a.text, &a.warnings)
        }
        Err(e) => status_response(&e),
    }
}

impl Ctx<'_> {
    fn res_key(&self) -> ResourceKey {
        (self.def.group.clone(), self.def.plural.clone())
    }

    fn obj_key(&self, name: &str) -> ObjectKey {
        (self.ns.clone(), name.to_owned())
    }

    fn target<'b>(&'b self, name: &'b str) -> Target<'b> {
        Target {
            group: &self.def.group,
            plural: &self.def.plural,
            name,
        }
    }

    fn content_type(&self) -> &str {
        self.call
            .header("content-type")
            .unwrap_or("application/json")
    }
}

/// Parses stored JSON; it was serialized by us, so failure means corruption.
fn parse_stored(text: &str) -> ApiResult<Value> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::internal(format!("stored object unreadable: {e}")))
}

/// The object as served at the requested version (custom resources store one version).
fn present(def: &ResourceDef, mut obj: Value) -> Value {
    if def.custom.is_some() && def.version != def.storage_version {
        obj["apiVersion"] = json!(def.api_version());
    }
    obj
}

/// Custom resources are stored at the CRD's storage version (conversion strategy `None`:
/// only `apiVersion` changes).
fn to_storage(def: &ResourceDef, obj: &mut Value) {
    if def.custom.is_some() && def.version != def.storage_version {
        obj["apiVersion"] = json!(format!("{}/{}", def.group, def.storage_version));
    }
}

fn present_text(def: &ResourceDef, text: &Arc<str>) -> ApiResult<String> {
    if def.custom.is_some() && def.version != def.storage_version {
        Ok(serde_json::to_string(&present(def, parse_stored(text)?)).unwrap_or_default())
    } else {
        Ok(text.to_string())
    }
}

fn get(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let data = ctx.sh.data();
    let stored = data
        .get(&ctx.res_key(), &ctx.obj_key(&ctx.name))
        .ok_or_else(|| ApiError::not_found(ctx.target(&ctx.name)))?;
    if ctx.sub.as_deref() == Some("scale") {
        let obj = parse_stored(&stored.json)?;
        return Ok(Answer::json(200, &scale_of(&ctx.def, &obj)));
    }
    if wants_table(&ctx.call) {
        let obj = present(&ctx.def, parse_stored(&stored.json)?);
        return Ok(Answer::json(
            200,
            &table::render(&ctx.def, &[obj], None, data.current_rv()),
        ));
    }
    Ok(Answer {
        code: 200,
        text: present_text(&ctx.def, &stored.json)?,
        warnings: vec![],
    })
}

fn wants_table(call: &Call) -> bool {
    call.header("accept")
        .is_some_and(|a| a.contains("as=Table"))
}

/// Label and field selectors of a list or watch.
#[derive(Debug, Default)]
pub struct Filter {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Parses `labelSelector` / `fieldSelector`.
    pub fn from_call(ctx: &Ctx<'_>) -> ApiResult<Self> {
        let labels = match ctx.call.q("labelSelector") {
            Some(s) => LabelSelector::parse(s).map_err(ApiError::bad_request)?,
            None => LabelSelector::default(),
        };
        let fields = match ctx.call.q("fieldSelector") {
            Some(s) => FieldSelector::parse(s, &allowed_fields(&ctx.def.group, &ctx.def.plural))
                .map_err(ApiError::bad_request)?,
            None => FieldSelector::default(),
        };
        Ok(Self { labels, fields })
    }

    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether an object passes.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels
            .matches(obj.get("metadata").and_then(|m| m.get("labels")))
            && self.fields.matches(obj)
    }
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let raw = format!("{rv}\u{1}{ns}\u{1}{name}");
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Option<(u64, String, String)> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.split('\u{1}');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, parts.next()?.to_owned(), parts.next()?.to_owned()))
}

fn list(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let filter = Filter::from_call(ctx)?;
    let limit = ctx
        .call
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let after = match ctx.call.q("continue").filter(|c| !c.is_empty()) {
        Some(tok) => Some(decode_continue(tok).ok_or_else(|| {
            ApiError::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            )
        })?),
        None => None,
    };
    let data = ctx.sh.data();
    let ns = (!ctx.ns.is_empty()).then_some(ctx.ns.as_str());
    let custom = ctx.def.custom.is_some();
    // Texts are collected as stored; objects are parsed only when a selector needs them.
    let mut items: Vec<Arc<str>> = Vec::new();
    let mut remaining = 0usize;
    let mut next: Option<(String, String)> = None;
    for ((ons, oname), stored) in data.list(&ctx.res_key(), ns) {
        if let Some((_, ans, aname)) = &after
            && (ons.as_str(), oname.as_str()) <= (ans.as_str(), aname.as_str())
        {
            continue;
        }
        if !filter.is_empty() && !filter.matches(&parse_stored(&stored.json)?) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            remaining += 1;
            continue;
        }
        next = Some((ons.clone(), oname.clone()));
        items.push(stored.json.clone());
    }
    let rv = after.as_ref().map_or(data.current_rv(), |(rv, _, _)| *rv);
    drop(data);
    if wants_table(&ctx.call) {
        let objs: Vec<Value> = items
            .iter()
            .map(|t| parse_stored(t).map(|o| present(&ctx.def, o)))
            .collect::<ApiResult<_>>()?;
        return Ok(Answer::json(200, &table::render(&ctx.def, &objs, None, rv)));
    }
    let mut lm = Map::new();
    if remaining > 0
        && let Some((ns, name)) = &next
    {
        lm.insert("continue".into(), json!(encode_continue(rv, ns, name)));
        lm.insert("remainingItemCount".into(), json!(remaining));
    } else if custom {
        lm.insert("continue".into(), json!(""));
    }
    lm.insert("resourceVersion".into(), json!(rv.to_string()));
    let head = json!({
        "kind": format!("{}List", ctx.def.kind),
        "apiVersion": ctx.def.api_version(),
        "metadata": Value::Object(lm),
    });
    let mut text = serde_json::to_string(&head).unwrap_or_default();
    text.pop();
    text.push_str(",\"items\":[");
    // Built-in list items are served without apiVersion/kind, as the real server does.
    let prefix = format!(
        "{{\"apiVersion\":\"{}\",\"kind\":\"{}\",",
        ctx.def.api_version(),
        ctx.def.kind
    );
    let converting = custom && ctx.def.version != ctx.def.storage_version;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        match item.strip_prefix(prefix.as_str()) {
            Some(rest) if !custom => {
                text.push('{');
                text.push_str(rest);
            }
            _ if !custom || converting => {
                let mut o = present(&ctx.def, parse_stored(item)?);
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

/// Decodes and type-checks an object body for create/update.
fn decode_object(ctx: &Ctx<'_>, fv: FieldValidation) -> ApiResult<(Value, Vec<String>)> {
    let ct = ctx.content_type();
    if ct.contains("protobuf") || ct.contains("cbor") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got {ct}"),
        )
        .with_details(json!({})));
    }
    let Decoded { value, duplicates } =
        body::decode(&ctx.call.body, ctx.content_type(), &ctx.def.kind)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            ctx.def.kind,
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
            String::from_utf8_lossy(&ctx.call.body)
        )));
    }
    let scale_sub = ctx.sub.as_deref() == Some("scale");
    let want_kind = if scale_sub {
        "Scale"
    } else {
        ctx.def.kind.as_str()
    };
    let want_av = if scale_sub {
        "autoscaling/v1".to_owned()
    } else {
        ctx.def.api_version()
    };
    let (_, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if kind != want_kind || (api_version != want_av && !scale_sub) {
        let internal_group = if ctx.def.group.is_empty() {
            "core"
        } else {
            ctx.def.group.as_str()
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

/// Checks that the namespace of a namespaced request exists (and is not terminating, for creates).
fn check_namespace(ctx: &Ctx<'_>, data: &Data, creating: bool) -> ApiResult<()> {
    if !ctx.def.namespaced {
        return Ok(());
    }
    let key: ResourceKey = (String::new(), "namespaces".into());
    let Some(ns) = data.get(&key, &(String::new(), ctx.ns.clone())) else {
        return Err(ApiError::not_found(Target {
            group: "",
            plural: "namespaces",
            name: &ctx.ns,
        }));
    };
    if creating && ns.json.contains("\"deletionTimestamp\"") {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                ctx.def.plural, ctx.name, ctx.ns
            ),
        )
        .with_details(json!({"name": ctx.name, "kind": ctx.def.plural})));
    }
    Ok(())
}

fn create(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let fv = FieldValidation::from_call(&ctx.call, "CreateOptions")?;
    if ctx.def.namespaced && ctx.ns.is_empty() {
        return Err(ApiError::not_found_path());
    }
    let (mut obj, mut warnings) = decode_object(ctx, fv)?;
    let body_ns = meta_str(&obj, "namespace").unwrap_or_default().to_owned();
    if ctx.def.namespaced {
        if !body_ns.is_empty() && body_ns != ctx.ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta_mut(&mut obj).insert("namespace".into(), json!(ctx.ns));
    } else if !body_ns.is_empty() {
        meta_mut(&mut obj).shift_remove("namespace");
    }
    let manager = ctx.call.manager();
    let mut data = ctx.sh.data();
    let ctx_name = meta_str(&obj, "name").unwrap_or_default().to_owned();
    let named = Ctx {
        name: ctx_name,
        ..shallow(ctx)
    };
    check_namespace(&named, &data, true)?;
    let (answer, _) = create_locked(
        &named,
        &mut data,
        obj,
        &manager,
        Operation::Update,
        fv,
        &mut warnings,
    )?;
    Ok(answer.warn(warnings))
}

/// A copy of the context sharing the request (for a resolved name).
fn shallow<'a>(ctx: &Ctx<'a>) -> Ctx<'a> {
    Ctx {
        sh: ctx.sh,
        def: ctx.def.clone(),
        ns: ctx.ns.clone(),
        name: ctx.name.clone(),
        sub: ctx.sub.clone(),
        call: ctx.call.clone(),
    }
}

/// Creates an object under the storage lock; returns the answer and the stored object.
pub fn create_locked(
    ctx: &Ctx<'_>,
    data: &mut Data,
    mut obj: Value,
    manager: &str,
    op: Operation,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
) -> ApiResult<(Answer, Value)> {
    let def = &ctx.def;
    {
        let m = meta_mut(&mut obj);
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ] {
            m.shift_remove(k);
        }
    }
    if def.namespaced {
        meta_mut(&mut obj).insert("namespace".into(), json!(ctx.ns));
    }
    let mut name = meta_str(&obj, "name").unwrap_or_default().to_owned();
    let gen_name = meta_str(&obj, "generateName")
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() && !gen_name.is_empty() {
        name = format!("{gen_name}{}", ids::name_suffix());
        meta_mut(&mut obj).insert("name".into(), json!(name));
    }
    warnings.extend(admission::admit(
        ctx.sh,
        def,
        &mut obj,
        None,
        ctx.sub.as_deref(),
        fv,
    )?);
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        causes.extend(meta::validate_name(
            meta::name_rule(&def.group, &def.plural),
            &name,
            "metadata.name",
        ));
    }
    causes.extend(admission::validate(def, &obj, None));
    if !causes.is_empty() {
        return Err(ApiError::invalid(&def.group, &def.kind, &name, causes));
    }
    let key = (ctx.ns.clone(), name.clone());
    if data.get(&ctx_res(def), &key).is_some() {
        return Err(ApiError::already_exists(Target {
            group: &def.group,
            plural: &def.plural,
            name: &name,
        }));
    }
    let now = ids::now_rfc3339();
    {
        let m = meta_mut(&mut obj);
        m.insert("uid".into(), json!(ids::new_uid()));
        m.insert("creationTimestamp".into(), json!(now));
        if admission::has_generation(def) {
            m.insert("generation".into(), json!(1));
        }
    }
    if op == Operation::Update {
        fields::record(def, None, &mut obj, manager, ctx.sub.as_deref(), &now);
    }
    admission::server_fill(ctx.sh, def, &mut obj);
    if ctx.call.dry_run() {
        return Ok((Answer::json(201, &present(def, obj.clone())), obj));
    }
    let rv = data.next_rv();
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
    to_storage(def, &mut obj);
    meta::canonical_order(&mut obj);
    let text: Arc<str> = Arc::from(serde_json::to_string(&obj).unwrap_or_default());
    data.put(&ctx_res(def), key, rv, text.clone(), EventType::Added);
    admission::after_write(ctx.sh, data, def, &obj, None);
    // The stored text is the answer unless the request used another version.
    let answer = Answer {
        code: 201,
        text: present_text(def, &text)?,
        warnings: vec![],
    };
    Ok((answer, obj))
}

fn ctx_res(def: &ResourceDef) -> ResourceKey {
    (def.group.clone(), def.plural.clone())
}

fn update(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let fv = FieldValidation::from_call(&ctx.call, "UpdateOptions")?;
    let (mut obj, mut warnings) = decode_object(ctx, fv)?;
    let body_name = meta_str(&obj, "name").unwrap_or_default().to_owned();
    if body_name != ctx.name && ctx.sub.as_deref() != Some("scale") {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            ctx.name
        )));
    }
    if ctx.def.namespaced {
        let body_ns = meta_str(&obj, "namespace").unwrap_or_default();
        if !body_ns.is_empty() && body_ns != ctx.ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta_mut(&mut obj).insert("namespace".into(), json!(ctx.ns));
    }
    let manager = ctx.call.manager();
    let mut data = ctx.sh.data();
    check_namespace(ctx, &data, false)?;
    let Some(stored) = data.get(&ctx.res_key(), &ctx.obj_key(&ctx.name)) else {
        return Err(ApiError::not_found(ctx.target(&ctx.name)));
    };
    let old = parse_stored(&stored.json)?;
    if ctx.sub.as_deref() == Some("scale") {
        obj = apply_scale(&ctx.def, &old, &obj)?;
    }
    let a = update_locked(
        ctx,
        &mut data,
        &old,
        obj,
        &manager,
        Operation::Update,
        fv,
        &mut warnings,
    )?;
    Ok(a.warn(warnings))
}

/// Writes a new version of an existing object under the storage lock.
#[allow(clippy::too_many_arguments)]
pub fn update_locked(
    ctx: &Ctx<'_>,
    data: &mut Data,
    old: &Value,
    mut obj: Value,
    manager: &str,
    op: Operation,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
) -> ApiResult<Answer> {
    let def = &ctx.def;
    let old_rv = meta_str(old, "resourceVersion")
        .unwrap_or_default()
        .to_owned();
    if let Some(rv) = meta_str(&obj, "resourceVersion")
        && !rv.is_empty()
        && rv != old_rv
    {
        return Err(ApiError::conflict(ctx.target(&ctx.name)));
    }
    let status_sub = ctx.sub.as_deref() == Some("status");
    if status_sub {
        // Only status changes through /status; everything else stays as stored.
        let mut merged = old.clone();
        match obj.get("status") {
            Some(s) => merged["status"] = s.clone(),
            None => {
                if let Value::Object(m) = &mut merged {
                    m.shift_remove("status");
                }
            }
        }
        if let Some(mf) = obj.get("metadata").and_then(|m| m.get("managedFields")) {
            meta_mut(&mut merged).insert("managedFields".into(), mf.clone());
        }
        obj = merged;
    } else if def.status && !admission::status_writable_on_main(def) {
        match old.get("status") {
            Some(s) => obj["status"] = s.clone(),
            None => {
                if let Value::Object(m) = &mut obj {
                    m.shift_remove("status");
                }
            }
        }
    }
    // Server-owned metadata is kept from the stored object.
    {
        let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let m = meta_mut(&mut obj);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "name",
            "namespace",
            "generateName",
        ] {
            match old_meta.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.shift_remove(k);
                }
            }
        }
        m.insert("resourceVersion".into(), json!(old_rv));
    }
    warnings.extend(admission::admit(
        ctx.sh,
        def,
        &mut obj,
        Some(old),
        ctx.sub.as_deref(),
        fv,
    )?);
    let mut causes = admission::validate(def, &obj, Some(old));
    if is_deleting(old) {
        let before = finalizers(old);
        let added: Vec<String> = finalizers(&obj)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            let quoted = added
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let msg = format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{quoted}}}"
            );
            causes.push(Cause::forbidden("metadata.finalizers", &msg));
            causes.push(Cause::forbidden("metadata.finalizers", &msg));
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&def.group, &def.kind, &ctx.name, causes));
    }
    if admission::has_generation(def) && admission::spec_changed(def, old, &obj) {
        let g = old
            .get("metadata")
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut obj).insert("generation".into(), json!(g + 1));
    }
    let now = ids::now_rfc3339();
    if op == Operation::Update {
        fields::record(def, Some(old), &mut obj, manager, ctx.sub.as_deref(), &now);
    }
    let answer_obj = |o: &Value| {
        if ctx.sub.as_deref() == Some("scale") {
            scale_of(def, o)
        } else {
            present(def, o.clone())
        }
    };
    if without_volatile(&obj) == without_volatile(old) {
        // A no-op write changes nothing, not even the resourceVersion.
        return Ok(Answer::json(200, &answer_obj(old)));
    }
    if is_deleting(old) && finalizers(&obj).is_empty() {
        if ctx.call.dry_run() {
            return Ok(Answer::json(200, &answer_obj(&obj)));
        }
        let rv = data.next_rv();
        let mut last = old.clone();
        meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
        data.remove(
            &ctx_res(def),
            &ctx.obj_key(&ctx.name),
            rv,
            Arc::from(serde_json::to_string(&last).unwrap_or_default()),
        );
        admission::after_delete(ctx.sh, data, def, &last);
        return Ok(Answer::json(200, &answer_obj(&obj)));
    }
    if ctx.call.dry_run() {
        return Ok(Answer::json(200, &answer_obj(&obj)));
    }
    let rv = data.next_rv();
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
    to_storage(def, &mut obj);
    meta::canonical_order(&mut obj);
    let text: Arc<str> = Arc::from(serde_json::to_string(&obj).unwrap_or_default());
    data.put(
        &ctx_res(def),
        ctx.obj_key(&ctx.name),
        rv,
        text.clone(),
        EventType::Modified,
    );
    admission::after_write(ctx.sh, data, def, &obj, Some(old));
    if ctx.sub.as_deref() == Some("scale") {
        return Ok(Answer::json(200, &answer_obj(&obj)));
    }
    Ok(Answer {
        code: 200,
        text: present_text(def, &text)?,
        warnings: vec![],
    })
}

/// The object without fields that change on every write, for no-op detection.
fn without_volatile(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(Value::Object(m)) = o.get_mut("metadata") {
        m.shift_remove("resourceVersion");
        if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
            for e in mf {
                if let Value::Object(e) = e {
                    e.shift_remove("time");
                }
            }
        }
    }
    o
}

/// JSON pointers of the scale subresource's replica fields: the CRD's paths, or the
/// built-in `.spec.replicas` / `.status.replicas`.
fn scale_paths(def: &ResourceDef) -> (String, String) {
    let from = |key: &str, default: &str| {
        def.custom
            .as_ref()
            .and_then(|c| c.scale.as_ref())
            .and_then(|s| s.get(key))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .replace('.', "/")
    };
    (
        from("specReplicasPath", ".spec.replicas"),
        from("statusReplicasPath", ".status.replicas"),
    )
}

fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let (spec_path, status_path) = scale_paths(def);
    let spec_path = spec_path.as_str();
    let status_path = status_path.as_str();
    let replicas = obj.pointer(spec_path).cloned().unwrap_or(json!(0));
    let mut status = json!({"replicas": obj.pointer(status_path).cloned().unwrap_or(json!(0))});
    if let Some(sel) = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
    {
        let s = sel
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",");
        status["selector"] = json!(s);
    }
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
           "spec": {"replicas": replicas}, "status": status})
}

fn apply_scale(def: &ResourceDef, old: &Value, scale: &Value) -> ApiResult<Value> {
    let mut obj = old.clone();
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    if replicas.as_i64().is_some_and(|r| r < 0) {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            meta_str(old, "name").unwrap_or_default(),
            vec![Cause::invalid(
                "spec.replicas",
                &replicas,
                "must be greater than or equal to 0",
            )],
        ));
    }
    let (spec_path, _) = scale_paths(def);
    let mut cur = &mut obj;
    let segs: Vec<&str> = spec_path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == segs.len() {
            cur[*seg] = replicas.clone();
            break;
        }
        cur = &mut cur[*seg];
    }
    if let Some(rv) = meta_str(scale, "resourceVersion") {
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
    }
    Ok(obj)
}

fn patch(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let ct = ctx
        .content_type()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let kind = crate::patching::PatchKind::from_content_type(&ct)
        .ok_or_else(ApiError::unsupported_media_type)?;
    let fv = FieldValidation::from_call(&ctx.call, "PatchOptions")?;
    // Apply needs an explicit manager; the engine rejects an empty one like the real server.
    let manager = if kind == crate::patching::PatchKind::Apply {
        ctx.call.q("fieldManager").unwrap_or_default().to_owned()
    } else {
        ctx.call.manager()
    };
    let mut data = ctx.sh.data();
    check_namespace(ctx, &data, false)?;
    let stored = data
        .get(&ctx.res_key(), &ctx.obj_key(&ctx.name))
        .map(|s| s.json.clone());
    let mut warnings = Vec::new();
    let force = ctx.call.q("force").is_some_and(|f| f == "true");
    let op = if kind == crate::patching::PatchKind::Apply {
        Operation::Apply
    } else {
        Operation::Update
    };
    match stored {
        None if kind == crate::patching::PatchKind::Apply => {
            drop(data);
            let mut data = ctx.sh.data();
            check_namespace(ctx, &data, true)?;
            let applied = crate::patching::apply_new(ctx, &manager, fv, &mut warnings)?;
            if ctx.sub.is_some() {
                return Err(ApiError::not_found(ctx.target(&ctx.name)));
            }
            let (answer, _) =
                create_locked(ctx, &mut data, applied, &manager, op, fv, &mut warnings)?;
            Ok(answer.warn(warnings))
        }
        None => Err(ApiError::not_found(ctx.target(&ctx.name))),
        Some(text) => {
            let old = parse_stored(&text)?;
            let base = if ctx.sub.as_deref() == Some("scale") {
                scale_of(&ctx.def, &old)
            } else {
                old.clone()
            };
            let patched =
                crate::patching::apply(ctx, kind, &base, &manager, force, fv, &mut warnings)?;
            let patched = if ctx.sub.as_deref() == Some("scale") {
                apply_scale(&ctx.def, &old, &patched)?
            } else {
                patched
            };
            if meta_str(&patched, "name").is_some_and(|n| n != ctx.name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({})",
                    meta_str(&patched, "name").unwrap_or_default(),
                    ctx.name
                )));
            }
            let a = update_locked(
                ctx,
                &mut data,
                &old,
                patched,
                &manager,
                op,
                fv,
                &mut warnings,
            )?;
            Ok(a.warn(warnings))
        }
    }
}

/// Parsed `DeleteOptions` (body or query).
#[derive(Debug, Default)]
struct DeleteOpts {
    rv: Option<String>,
    uid: Option<String>,
    propagation: Option<String>,
}

fn delete_opts(ctx: &Ctx<'_>) -> ApiResult<DeleteOpts> {
    let mut o = DeleteOpts {
        propagation: ctx.call.q("propagationPolicy").map(str::to_owned),
        ..Default::default()
    };
    if !ctx.call.body.is_empty() {
        let d = body::decode(&ctx.call.body, ctx.content_type(), "DeleteOptions")?.value;
        o.rv = d
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        o.uid = d
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(p) = d.get("propagationPolicy").and_then(Value::as_str) {
            o.propagation = Some(p.to_owned());
        }
        if d.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            o.propagation = Some("Orphan".into());
        }
    }
    Ok(o)
}

fn delete(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let opts = delete_opts(ctx)?;
    let mut data = ctx.sh.data();
    let Some(stored) = data.get(&ctx.res_key(), &ctx.obj_key(&ctx.name)) else {
        return Err(ApiError::not_found(ctx.target(&ctx.name)));
    };
    let old = parse_stored(&stored.json)?;
    let old_rv = meta_str(&old, "resourceVersion")
        .unwrap_or_default()
        .to_owned();
    let precondition = |what: &str, want: &str, have: &str| {
        ApiError::conflict_msg(
            Target {
                group: &ctx.def.group,
                plural: &ctx.def.kind,
                name: &ctx.name,
            },
            &format!(
                "the {what} in the precondition ({want}) does not match the {what} in record ({have}). The object might have been modified"
            ),
        )
    };
    if let Some(rv) = &opts.rv
        && *rv != old_rv
    {
        return Err(precondition("ResourceVersion", rv, &old_rv));
    }
    let old_uid = meta_str(&old, "uid").unwrap_or_default().to_owned();
    if let Some(uid) = &opts.uid
        && *uid != old_uid
    {
        return Err(precondition("UID", uid, &old_uid));
    }
    let (answer, _) = delete_locked(ctx, &mut data, &ctx.name, old, opts.propagation.as_deref())?;
    Ok(answer)
}

/// Deletes (or starts deleting) one object under the storage lock.
fn delete_locked(
    ctx: &Ctx<'_>,
    data: &mut Data,
    name: &str,
    old: Value,
    propagation: Option<&str>,
) -> ApiResult<(Answer, Value)> {
    let def = &ctx.def;
    let mut fins = finalizers(&old);
    let extra_fin = admission::deletion_finalizer(def, &old);
    let foreground = propagation == Some("Foreground");
    if is_deleting(&old) {
        return Ok((Answer::json(200, &present(def, old.clone())), old));
    }
    if foreground && !fins.iter().any(|f| f == "foregroundDeletion") {
        fins.push("foregroundDeletion".into());
    }
    if propagation == Some("Orphan") && !fins.iter().any(|f| f == "orphan") && !fins.is_empty() {
        fins.push("orphan".into());
    }
    if let Some(f) = extra_fin
        && !fins.iter().any(|x| x == f)
    {
        fins.push(f.to_owned());
    }
    let key = (old_ns(&old), name.to_owned());
    if !fins.is_empty() || admission::graceful_delete(def, &old) {
        let mut obj = old.clone();
        {
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), json!(ids::now_rfc3339()));
            if admission::deletion_grace(def) {
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            m.insert("finalizers".into(), json!(fins));
        }
        admission::on_deleting(def, &mut obj);
        if ctx.call.dry_run() {
            return Ok((Answer::json(200, &present(def, obj.clone())), obj));
        }
        let rv = data.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        to_storage(def, &mut obj);
        meta::canonical_order(&mut obj);
        data.put(
            &ctx_res(def),
            key,
            rv,
            Arc::from(serde_json::to_string(&obj).unwrap_or_default()),
            EventType::Modified,
        );
        admission::after_write(ctx.sh, data, def, &obj, Some(&old));
        return Ok((Answer::json(200, &present(def, obj.clone())), obj));
    }
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !def.group.is_empty() {
        details.insert("group".into(), json!(def.group));
    }
    details.insert("kind".into(), json!(def.plural));
    details.insert(
        "uid".into(),
        json!(meta_str(&old, "uid").unwrap_or_default()),
    );
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
    if ctx.call.dry_run() {
        return Ok((Answer::json(200, &status), old));
    }
    let rv = data.next_rv();
    let mut last = old.clone();
    meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
    data.remove(
        &ctx_res(def),
        &key,
        rv,
        Arc::from(serde_json::to_string(&last).unwrap_or_default()),
    );
    admission::after_delete(ctx.sh, data, def, &last);
    let answer = if admission::delete_returns_object(def) {
        present(def, last.clone())
    } else {
        status
    };
    Ok((Answer::json(200, &answer), last))
}

fn old_ns(obj: &Value) -> String {
    meta_str(obj, "namespace").unwrap_or_default().to_owned()
}

fn delete_collection(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let filter = Filter::from_call(ctx)?;
    let opts = delete_opts(ctx)?;
    let mut data = ctx.sh.data();
    let ns = (!ctx.ns.is_empty()).then_some(ctx.ns.as_str());
    let mut victims = Vec::new();
    for ((_, name), stored) in data.list(&ctx.res_key(), ns) {
        let obj = parse_stored(&stored.json)?;
        if filter.matches(&obj) {
            victims.push((name.clone(), obj));
        }
    }
    let mut items = Vec::new();
    for (name, obj) in victims {
        let (_, last) = delete_locked(ctx, &mut data, &name, obj, opts.propagation.as_deref())?;
        let mut last = present(&ctx.def, last);
        if ctx.def.custom.is_none()
            && let Value::Object(m) = &mut last
        {
            m.shift_remove("apiVersion");
            m.shift_remove("kind");
        }
        items.push(last);
    }
    let rv = data.current_rv();
    let mut lm = Map::new();
    if ctx.def.custom.is_some() {
        lm.insert("continue".into(), json!(""));
    }
    lm.insert("resourceVersion".into(), json!(rv.to_string()));
    Ok(Answer::json(
        200,
        &json!({
            "kind": format!("{}List", ctx.def.kind),
            "apiVersion": ctx.def.api_version(),
            "metadata": Value::Object(lm),
            "items": items,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "ns", "c2");
        assert_eq!(decode_continue(&t), Some((42, "ns".into(), "c2".into())));
        assert_eq!(decode_continue("zz"), None);
    }
}

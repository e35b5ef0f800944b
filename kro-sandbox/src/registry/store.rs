//! The generic store: every kind's get, list, create, update, patch and delete go through
//! these steps, in the real generic registry's order, asking the kind's strategy where
//! kinds differ.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::delete::{self, Decision};
use super::options::{DeleteOptions, ListOptions, WriteOptions};
use super::paging;
use super::patching::{self, PatchKind};
use super::scale::{apply_scale, scale_of};
use super::strategy::{self, Strategy};
use super::{
    Out, Outcome, Request, admission, decode, fields, objectmeta, parse_stored, present,
    present_stored, to_storage,
};
use crate::error::{ApiError, ApiResult, Cause};
use crate::ids;
use crate::meta::{self, finalizers, is_deleting, meta_mut, meta_str};
use crate::registry::fields::Operation;
use crate::selector::{FieldSelector, LabelSelector};
use crate::storage::{Data, EventType};

/// Label and field selectors of a list or watch.
#[derive(Debug, Default)]
pub struct Filter {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Parses the selectors of the options for this resource.
    pub fn new(req: &Request<'_>, opts: &ListOptions) -> ApiResult<Self> {
        let labels = match opts.label_selector.as_deref() {
            Some(s) => LabelSelector::parse(s).map_err(ApiError::bad_request)?,
            None => LabelSelector::default(),
        };
        let fields = match opts.field_selector.as_deref() {
            Some(s) => FieldSelector::for_resource(s, &req.def.group, &req.def.plural)
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

/// One page of a list.
#[derive(Debug)]
pub struct Listed {
    /// The stored texts, in key order (not yet presented).
    pub items: Vec<Arc<str>>,
    /// The list's resourceVersion.
    pub rv: u64,
    /// The continue token when more objects follow.
    pub continue_token: Option<String>,
    /// How many objects follow the page (only for lists without selectors).
    pub remaining: Option<usize>,
}

/// An object's key below the listed collection, which pages and tokens follow: its name,
/// or `namespace/name` when the list spans namespaces.
fn list_key(req: &Request<'_>, ns: &str, name: &str) -> String {
    if req.ns.is_empty() && req.def.namespaced {
        format!("{ns}/{name}")
    } else {
        name.to_owned()
    }
}

/// Reads one object (or its `Scale`).
pub fn get(req: &Request<'_>) -> ApiResult<Out> {
    let stored = req
        .sh
        .data_read()
        .get(&req.res_key(), &req.obj_key(&req.name))
        .cloned()
        .ok_or_else(|| ApiError::not_found(req.target(&req.name)))?;
    if req.is_scale() {
        return Ok(Out::Value(scale_of(&req.def, &parse_stored(&stored.json)?)));
    }
    present_stored(&req.def, &stored.json)
}

/// The current resourceVersion of the storage.
pub fn current_rv(req: &Request<'_>) -> u64 {
    req.sh.data_read().current_rv()
}

/// Lists objects with selectors and paging.
pub fn list(req: &Request<'_>, opts: &ListOptions) -> ApiResult<Listed> {
    let filter = Filter::new(req, opts)?;
    // Only the texts' handles are taken under the lock; parsing for selectors happens
    // after, and writers wait for nothing but the copy of the handles.
    let (candidates, versions) = {
        let data = req.sh.data_read();
        (candidates(req, &data), versions(&data))
    };
    page(opts, &filter, candidates, versions)
}

fn versions(data: &Data) -> paging::Versions {
    paging::Versions {
        current: data.current_rv(),
        compacted: data.compacted_rv(),
    }
}

/// The collection's objects by list key, in the key order etcd ranges follow.
fn candidates(req: &Request<'_>, data: &Data) -> Vec<(String, Arc<str>)> {
    let ns = (!req.ns.is_empty()).then_some(req.ns.as_str());
    let mut all: Vec<(String, Arc<str>)> = data
        .list(&req.res_key(), ns)
        .map(|((ons, oname), stored)| (list_key(req, ons, oname), stored.json.clone()))
        .collect();
    if ns.is_none() && req.def.namespaced {
        // `namespace/name` keys do not sort like (namespace, name) pairs: `-` sorts
        // before `/`.
        all.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    }
    all
}

/// Cuts the page the options ask for from the collection.
fn page(
    opts: &ListOptions,
    filter: &Filter,
    candidates: Vec<(String, Arc<str>)>,
    versions: paging::Versions,
) -> ApiResult<Listed> {
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    let (token, rv, rv_match) = (
        nonempty(&opts.continue_token),
        nonempty(&opts.resource_version),
        nonempty(&opts.resource_version_match),
    );
    let preq = paging::PageRequest {
        limit: opts.limit,
        continue_token: token.as_deref(),
        resource_version: rv.as_deref(),
        resource_version_match: rv_match.as_deref(),
        filtered: !filter.is_empty(),
    };
    let start = paging::start(&preq, versions)?;
    let mut matched = Vec::new();
    for (key, text) in candidates {
        if !paging::after(&key, &start) {
            continue;
        }
        // Objects are parsed only when a selector needs them.
        let ok = filter.is_empty() || filter.matches(&parse_stored(&text)?);
        matched.push((key, text, ok));
    }
    let cut = paging::cut(matched.into_iter(), &preq, &start);
    Ok(Listed {
        items: cut.items,
        rv: start.rv,
        continue_token: cut.continue_token,
        remaining: cut.remaining,
    })
}

/// Creates an object.
pub fn create(req: &Request<'_>, mut obj: Value, opts: &WriteOptions) -> ApiResult<Outcome> {
    if req.def.namespaced && req.ns.is_empty() {
        return Err(ApiError::not_found_path());
    }
    let body_ns = meta_str(&obj, "namespace").unwrap_or_default().to_owned();
    if req.def.namespaced {
        if !body_ns.is_empty() && body_ns != req.ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    } else if !body_ns.is_empty() {
        meta_mut(&mut obj).shift_remove("namespace");
    }
    let mut data = req.sh.data();
    let mut warnings = Vec::new();
    let stored = create_locked(req, &mut data, obj, opts, CreateVia::Post, &mut warnings)?;
    Ok(Outcome {
        object: stored,
        created: true,
        warnings,
    })
}

/// `maxNameGenerationCreateAttempts` of the generic store.
const MAX_NAME_GENERATION_ATTEMPTS: usize = 8;

/// `SimpleNameGenerator`: the prefix, cut to leave room, and five random characters.
fn generate_name(prefix: &str) -> String {
    const MAX_PREFIX: usize = 63 - 5;
    let mut cut = prefix.len().min(MAX_PREFIX);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}{}",
        prefix.get(..cut).unwrap_or_default(),
        ids::name_suffix()
    )
}

/// How a create arrived: the storage layer refuses a resourceVersion only on a plain
/// create; PUT and apply create through an update, which ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateVia {
    /// POST to the collection.
    Post,
    /// PUT to a missing object of a kind that allows it.
    Put,
    /// Server-side apply to a missing object.
    Apply,
}

/// Whether the object names a resourceVersion the storage would have to honour: the
/// real server's versioner reads an unparseable or zero version as none.
fn names_resource_version(obj: &Value) -> bool {
    meta_str(obj, "resourceVersion")
        .and_then(|rv| rv.parse::<u64>().ok())
        .is_some_and(|rv| rv != 0)
}

/// Creates an object under the storage lock (create, and apply to a missing object).
fn create_locked(
    req: &Request<'_>,
    data: &mut Data,
    mut obj: Value,
    opts: &WriteOptions,
    via: CreateVia,
    warnings: &mut Vec<String>,
) -> ApiResult<Out> {
    let def = &req.def;
    let strat = strategy::of(def);
    let refuse_rv = via == CreateVia::Post && !opts.dry_run && names_resource_version(&obj);
    {
        // What a client may not choose on create: the create handler wipes the system
        // fields (`rest.WipeObjectMetaSystemFields`) and the storage the version. The
        // generation is the strategy's: kinds that track it start at 1
        // (`PrepareForCreate`), the others keep what the client sent.
        let m = meta_mut(&mut obj);
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.shift_remove(k);
        }
        if strat.tracks_generation() {
            m.insert("generation".into(), json!(1));
        }
        if def.namespaced {
            m.insert("namespace".into(), json!(req.ns));
        }
    }
    let mut name = meta_str(&obj, "name").unwrap_or_default().to_owned();
    let gen_name = meta_str(&obj, "generateName")
        .unwrap_or_default()
        .to_owned();
    let generated = name.is_empty() && !gen_name.is_empty();
    if generated {
        name = generate_name(&gen_name);
        meta_mut(&mut obj).insert("name".into(), json!(name));
    }
    admission::namespace_lifecycle(def, data, &req.ns, &name, true)?;
    warnings.extend(strategy::prune_unknown(
        strat,
        def,
        &mut obj,
        req.sub.as_deref(),
        opts.field_validation,
    )?);
    strat.default(req.sh, def, &mut obj, None);
    // The kind's validation checks its metadata (`ValidateObjectMeta` with its name
    // function) along with the rest.
    let mut causes = objectmeta::on_create(
        &obj,
        def.namespaced,
        meta::name_rule(&def.group, &def.plural),
        strat.meta_flavor(),
    );
    causes.extend(strat.validate(def, &obj, None));
    if !causes.is_empty() {
        return Err(ApiError::invalid(&def.group, &def.kind, &name, causes));
    }
    if refuse_rv {
        // etcd3's `store.Create`: a plain error, which the server answers as a 500
        // without a reason.
        return Err(ApiError::new(
            500,
            "",
            "resourceVersion should not be set on objects to be created",
        ));
    }
    // A generated name that is taken is drawn again, as `createWithGenerateNameRetry`
    // does (up to 8 attempts), since the names are random.
    let mut attempts = 1;
    while generated
        && attempts < MAX_NAME_GENERATION_ATTEMPTS
        && data.get(&req.res_key(), &req.obj_key(&name)).is_some()
    {
        name = generate_name(&gen_name);
        meta_mut(&mut obj).insert("name".into(), json!(name));
        attempts += 1;
    }
    let key = req.obj_key(&name);
    if let Some(existing) = data.get(&req.res_key(), &key) {
        let mut err = ApiError::already_exists(req.target(&name));
        // `Store.create` tells a client the name is held by an object on its way out.
        if is_deleting(&parse_stored(&existing.json)?) {
            err.message = format!("object is being deleted: {}", err.message);
        }
        return Err(err);
    }
    let now = ids::now_rfc3339();
    {
        let m = meta_mut(&mut obj);
        m.insert("uid".into(), json!(ids::new_uid()));
        m.insert("creationTimestamp".into(), json!(now));
    }
    if via != CreateVia::Apply {
        fields::record(
            def,
            None,
            &mut obj,
            &opts.field_manager,
            req.sub.as_deref(),
            &now,
        );
    }
    strat.fill(req.sh, def, &mut obj);
    if opts.dry_run {
        return Ok(Out::Value(present(def, obj)));
    }
    let rv = data.next_rv();
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
    to_storage(def, &mut obj);
    meta::canonical_order(&mut obj);
    let text: Arc<str> = Arc::from(serde_json::to_string(&obj).unwrap_or_default());
    data.put(&req.res_key(), key, rv, text.clone(), EventType::Added);
    strat.after_write(req.sh, data, &obj, None);
    present_stored(def, &text)
}

/// Replaces an object (PUT).
pub fn update(req: &Request<'_>, mut obj: Value, opts: &WriteOptions) -> ApiResult<Outcome> {
    // handlers/update.go: the namespace first (`EnsureObjectNamespaceMatchesRequestNamespace`),
    // then the name (`checkName`).
    ensure_namespace(req, &mut obj)?;
    let body_name = meta_str(&obj, "name").unwrap_or_default().to_owned();
    if body_name != req.name && !req.is_scale() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            req.name
        )));
    }
    let strat = strategy::of(&req.def);
    let mut data = req.sh.data();
    admission::namespace_lifecycle(&req.def, &data, &req.ns, &req.name, false)?;
    let Some(stored) = data.get(&req.res_key(), &req.obj_key(&req.name)) else {
        if strat.allow_create_on_update(&req.def) && req.sub.is_none() {
            let mut warnings = Vec::new();
            let object = create_locked(req, &mut data, obj, opts, CreateVia::Put, &mut warnings)?;
            return Ok(Outcome {
                object,
                created: true,
                warnings,
            });
        }
        return Err(ApiError::not_found(req.target(&req.name)));
    };
    let old = decode(&req.def, &stored.json)?;
    // A uid in the body is a precondition on the stored object (`defaultUpdatedObjectInfo`
    // `.Preconditions`), checked by the storage before anything else.
    if !req.is_scale()
        && let Some(uid) = meta_str(&obj, "uid").filter(|u| !u.is_empty())
    {
        let have = meta_str(&old, "uid").unwrap_or_default();
        if uid != have {
            return Err(storage_precondition_failed(
                req,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                ),
            ));
        }
    }
    if req.is_scale() {
        obj = apply_scale(&req.def, &old, &obj)?;
    }
    let mut warnings = Vec::new();
    let object = update_locked(
        req,
        &mut data,
        &old,
        obj,
        opts,
        Operation::Update,
        &mut warnings,
    )?;
    Ok(Outcome {
        object,
        created: false,
        warnings,
    })
}

/// `EnsureObjectNamespaceMatchesRequestNamespace`: an object without a namespace takes
/// the request's, a cluster-scoped one (and a Namespace) loses any it names, and any
/// other difference is refused.
fn ensure_namespace(req: &Request<'_>, obj: &mut Value) -> ApiResult<()> {
    let body_ns = meta_str(obj, "namespace").unwrap_or_default().to_owned();
    if !req.def.namespaced {
        if !body_ns.is_empty() {
            meta_mut(obj).shift_remove("namespace");
        }
        return Ok(());
    }
    if body_ns.is_empty() {
        meta_mut(obj).insert("namespace".into(), json!(req.ns));
    } else if body_ns != req.ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// A failed storage precondition, as `storeerr.InterpretUpdateError` words it: a
/// Conflict quoting the etcd3 `StorageError` (code 4, invalid object).
fn storage_precondition_failed(req: &Request<'_>, why: &str) -> ApiError {
    let key = strategy::etcd_key(&req.def, &req.ns, &req.name);
    ApiError::conflict_msg(
        req.target(&req.name),
        &format!(
            "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: {why}"
        ),
    )
}

/// `rest.BeforeUpdate`'s normalisation: what the client may not change is taken from the
/// stored object when the client left it out (uid, deletion grace period) or always
/// (generation, creation and deletion timestamps); what it did change is then refused by
/// validation.
fn before_update(old: &Value, obj: &mut Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let m = meta_mut(obj);
    let keep = |m: &mut Map<String, Value>, k: &str, only_if_unset: bool| {
        let unset = m
            .get(k)
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        match old_meta.get(k) {
            Some(v) if !v.is_null() && (unset || !only_if_unset) => {
                m.insert(k.into(), v.clone());
            }
            _ if k == "generation" => {
                m.shift_remove(k);
            }
            _ => {}
        }
    };
    keep(m, "generation", false);
    keep(m, "uid", true);
    keep(m, "creationTimestamp", false);
    keep(m, "deletionTimestamp", false);
    keep(m, "deletionGracePeriodSeconds", true);
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

/// Keeps what the endpoint may not change: through `/status` only status changes, through
/// the main endpoint of a kind with `/status` everything but status.
fn reset_for_endpoint(req: &Request<'_>, old: &Value, obj: Value) -> Value {
    if req.is_status() {
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
        return merged;
    }
    let mut obj = obj;
    if req.def.status {
        match old.get("status") {
            Some(s) => obj["status"] = s.clone(),
            None => {
                if let Value::Object(m) = &mut obj {
                    m.shift_remove("status");
                }
            }
        }
    }
    obj
}

/// Writes a new version of an existing object under the storage lock.
fn update_locked(
    req: &Request<'_>,
    data: &mut Data,
    old: &Value,
    obj: Value,
    opts: &WriteOptions,
    op: Operation,
    warnings: &mut Vec<String>,
) -> ApiResult<Out> {
    let def = &req.def;
    let strat = strategy::of(def);
    let old_rv = meta_str(old, "resourceVersion")
        .unwrap_or_default()
        .to_owned();
    // `Store.Update`: without a version the update is unconditional where the strategy
    // allows it and refused otherwise (naming the resource, not the kind); a stale one
    // is a conflict.
    match meta_str(&obj, "resourceVersion").filter(|rv| !rv.is_empty()) {
        None if !strat.allow_unconditional_update() => {
            return Err(ApiError::invalid(
                &def.group,
                &def.plural,
                &req.name,
                vec![Cause::new(
                    "FieldValueInvalid",
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                )],
            ));
        }
        Some(rv) if rv != old_rv => return Err(ApiError::conflict(req.target(&req.name))),
        _ => {}
    }
    let mut obj = reset_for_endpoint(req, old, obj);
    before_update(old, &mut obj);
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(old_rv));
    warnings.extend(strategy::prune_unknown(
        strat,
        def,
        &mut obj,
        req.sub.as_deref(),
        opts.field_validation,
    )?);
    strat.default(req.sh, def, &mut obj, Some(old));
    let mut causes = objectmeta::on_update(
        &obj,
        old,
        def.namespaced,
        meta::name_rule(&def.group, &def.plural),
        strat.meta_flavor(),
        strat.update_recheck(),
    );
    causes.extend(strat.validate(def, &obj, Some(old)));
    if !causes.is_empty() {
        return Err(ApiError::invalid(&def.group, &def.kind, &req.name, causes));
    }
    if strat.tracks_generation() && strat.bumps_generation(def, old, &obj) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut obj).insert("generation".into(), json!(g + 1));
    }
    let now = ids::now_rfc3339();
    if op == Operation::Update {
        fields::record(
            def,
            Some(old),
            &mut obj,
            &opts.field_manager,
            req.sub.as_deref(),
            &now,
        );
    }
    let answer = |o: &Value| {
        if req.is_scale() {
            Out::Value(scale_of(def, o))
        } else {
            Out::Value(present(def, o.clone()))
        }
    };
    if without_volatile(&obj) == without_volatile(old) {
        // A no-op write changes nothing, not even the resourceVersion.
        return Ok(answer(old));
    }
    // An object being deleted leaves storage once its last finalizer goes, unless a
    // graceful deletion still runs (`ShouldDeleteDuringUpdate`).
    let grace_left = old
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g != 0);
    if is_deleting(old)
        && finalizers(&obj).is_empty()
        && !grace_left
        && !strat.graceful_delete(&obj)
    {
        if !opts.dry_run {
            remove_locked(req, data, old, &req.name);
        }
        return Ok(answer(&obj));
    }
    if opts.dry_run {
        return Ok(answer(&obj));
    }
    let rv = data.next_rv();
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
    to_storage(def, &mut obj);
    meta::canonical_order(&mut obj);
    let text: Arc<str> = Arc::from(serde_json::to_string(&obj).unwrap_or_default());
    data.put(
        &req.res_key(),
        req.obj_key(&req.name),
        rv,
        text.clone(),
        EventType::Modified,
    );
    strat.after_write(req.sh, data, &obj, Some(old));
    if req.is_scale() {
        return Ok(answer(&obj));
    }
    present_stored(def, &text)
}

/// Applies a patch (any of the four types) to an object; an apply may create it.
pub fn patch(
    req: &Request<'_>,
    kind: PatchKind,
    body: &[u8],
    opts: &WriteOptions,
) -> ApiResult<Outcome> {
    let mut data = req.sh.data();
    admission::namespace_lifecycle(&req.def, &data, &req.ns, &req.name, false)?;
    let stored = data
        .get(&req.res_key(), &req.obj_key(&req.name))
        .map(|s| s.json.clone());
    let mut warnings = Vec::new();
    let op = if kind == PatchKind::Apply {
        Operation::Apply
    } else {
        Operation::Update
    };
    match stored {
        None if kind == PatchKind::Apply => {
            if req.sub.is_some() {
                return Err(ApiError::not_found(req.target(&req.name)));
            }
            let applied = patching::apply(req, kind, None, body, opts)?;
            let object = create_locked(
                req,
                &mut data,
                applied,
                opts,
                CreateVia::Apply,
                &mut warnings,
            )?;
            Ok(Outcome {
                object,
                created: true,
                warnings,
            })
        }
        None => Err(ApiError::not_found(req.target(&req.name))),
        Some(text) => {
            let old = decode(&req.def, &text)?;
            let base = if req.is_scale() {
                scale_of(&req.def, &old)
            } else {
                old.clone()
            };
            let patched = patching::apply(req, kind, Some(&base), body, opts)?;
            let patched = if req.is_scale() {
                apply_scale(&req.def, &old, &patched)?
            } else {
                patched
            };
            let mut patched = patched;
            if !req.is_scale() {
                // patch.go: the patched object's namespace, then its name.
                ensure_namespace(req, &mut patched)?;
            }
            if meta_str(&patched, "name").is_some_and(|n| n != req.name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({})",
                    meta_str(&patched, "name").unwrap_or_default(),
                    req.name
                )));
            }
            let object = update_locked(req, &mut data, &old, patched, opts, op, &mut warnings)?;
            Ok(Outcome {
                object,
                created: false,
                warnings,
            })
        }
    }
}

/// The result of a delete.
#[derive(Debug)]
pub struct Deletion {
    /// The answer: the object, or a `Status` for kinds that answer a finished delete so.
    pub object: Out,
    /// Whether the object left storage (a delete that only marked it may be a 202).
    pub removed: bool,
}

/// Deletes one object (or starts its deletion).
pub fn delete(req: &Request<'_>, opts: &DeleteOptions) -> ApiResult<Deletion> {
    let mut data = req.sh.data();
    let Some(stored) = data.get(&req.res_key(), &req.obj_key(&req.name)) else {
        return Err(ApiError::not_found(req.target(&req.name)));
    };
    let old = decode(&req.def, &stored.json)?;
    delete_locked(req, &mut data, &req.name, old, opts)
}

/// Removes an object from storage, stamping the DELETED event's object with the new
/// resourceVersion; returns that object in its stored form.
fn remove_locked(req: &Request<'_>, data: &mut Data, old: &Value, name: &str) -> Value {
    let rv = data.next_rv();
    let mut last = old.clone();
    meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
    to_storage(&req.def, &mut last);
    let ns = meta_str(old, "namespace").unwrap_or_default().to_owned();
    data.remove(
        &req.res_key(),
        &(ns, name.to_owned()),
        rv,
        Arc::from(serde_json::to_string(&last).unwrap_or_default()),
    );
    strategy::of(&req.def).after_delete(req.sh, data, &last);
    last
}

/// `finalizeDelete`: what a finished delete answers, the object for kinds that return it,
/// otherwise a success `Status` naming it (with the resource as `kind`).
fn finished(req: &Request<'_>, strat: &dyn Strategy, obj: Value, name: &str) -> Out {
    let def = &req.def;
    if strat.returns_deleted_object() {
        return Out::Value(present(def, obj));
    }
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !def.group.is_empty() {
        details.insert("group".into(), json!(def.group));
    }
    details.insert("kind".into(), json!(def.plural));
    details.insert(
        "uid".into(),
        json!(meta_str(&obj, "uid").unwrap_or_default()),
    );
    Out::Value(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Success", "details": details}))
}

/// Stores a new state of an object being deleted; returns it as stored.
fn write_deleting(
    req: &Request<'_>,
    data: &mut Data,
    name: &str,
    old: &Value,
    mut obj: Value,
) -> Value {
    let rv = data.next_rv();
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
    to_storage(&req.def, &mut obj);
    meta::canonical_order(&mut obj);
    let ns = meta_str(old, "namespace").unwrap_or_default().to_owned();
    data.put(
        &req.res_key(),
        (ns, name.to_owned()),
        rv,
        Arc::from(serde_json::to_string(&obj).unwrap_or_default()),
        EventType::Modified,
    );
    strategy::of(&req.def).after_write(req.sh, data, &obj, Some(old));
    obj
}

/// Deletes (or marks) one object under the storage lock, as `Store.Delete` does: the
/// preconditions, then the kind's deletion decision, then the writes it implies.
fn delete_locked(
    req: &Request<'_>,
    data: &mut Data,
    name: &str,
    old: Value,
    opts: &DeleteOptions,
) -> ApiResult<Deletion> {
    let def = &req.def;
    delete::check_preconditions(&def.group, &def.kind, &old, opts)?;
    let strat: &dyn Strategy = strategy::of(def);
    let now = ids::now_secs();
    let decision = if strat.own_deletion() {
        delete::decide_own(strat, &old, opts, now)?
    } else {
        delete::decide(strat, &old, opts, now)
    };
    let removed = decision.removes();
    let object = match decision {
        Decision::Unchanged => Out::Value(present(def, old)),
        Decision::Pending => finished(req, strat, old, name),
        Decision::Mark(obj) if opts.dry_run => Out::Value(present(def, obj)),
        Decision::Mark(obj) => Out::Value(present(def, write_deleting(req, data, name, &old, obj))),
        // A dry run answers the updated object as is, without the finishing step.
        Decision::MarkThenRemove(obj) if opts.dry_run => Out::Value(present(def, obj)),
        Decision::MarkThenRemove(obj) => {
            let written = write_deleting(req, data, name, &old, obj);
            remove_locked(req, data, &written, name);
            finished(req, strat, written, name)
        }
        // The storage's delete answers the object as it was stored before the removal.
        Decision::Remove if opts.dry_run => finished(req, strat, old, name),
        Decision::Remove => {
            remove_locked(req, data, &old, name);
            finished(req, strat, old, name)
        }
    };
    Ok(Deletion { object, removed })
}

/// Deletes what a list with these options returns (`Store.DeleteCollection`): with a
/// `limit`, only its first page. Each object goes through the single delete, whose
/// failures (a precondition) end the request; the answer lists the objects as they were
/// listed, with the list's metadata.
pub fn delete_collection(
    req: &Request<'_>,
    list_opts: &ListOptions,
    opts: &DeleteOptions,
) -> ApiResult<Listed> {
    let filter = Filter::new(req, list_opts)?;
    let mut data = req.sh.data();
    let listed = page(list_opts, &filter, candidates(req, &data), versions(&data))?;
    for text in &listed.items {
        let obj = decode(&req.def, text)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        delete_locked(req, &mut data, &name, obj, opts)?;
    }
    Ok(listed)
}

//! Watches: the snapshot, replay and live events one watch sees, filtered and presented
//! at the requested version. Streaming them is the transport's job.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::options::ListOptions;
use super::store::Filter;
use super::{Out, Request, converts, present};
use crate::catalog::ResourceDef;
use crate::error::{ApiError, ApiResult};
use crate::storage::{Event, EventType, ResourceKey, Since};

/// An open watch, before streaming.
#[derive(Debug)]
pub struct Watch {
    /// The resource watched.
    pub def: Arc<ResourceDef>,
    /// Objects to send as ADDED first.
    pub initial: Vec<Arc<str>>,
    /// Logged events after the requested version.
    pub replay: Vec<Arc<Event>>,
    /// The version the watch starts after.
    pub start_rv: u64,
    /// Events written from now on (taken by whoever streams them).
    pub live: Option<broadcast::Receiver<Arc<Event>>>,
    /// The requested version is older than the log (a 410 as the first event).
    pub expired: bool,
    /// Whether the initial events end with a bookmark (`sendInitialEvents=true`).
    pub initial_end_bookmark: bool,
    res: ResourceKey,
    ns: String,
    filter: Filter,
}

/// Opens a watch: snapshot and subscription happen under one lock so no event falls
/// between them.
pub fn start(req: &Request<'_>, opts: &ListOptions) -> ApiResult<Watch> {
    let filter = Filter::new(req, opts)?;
    let rv_param = opts.resource_version.clone().unwrap_or_default();
    let want_rv = if rv_param.is_empty() || rv_param == "0" {
        None
    } else {
        Some(rv_param.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {rv_param:?}: must be a valid resourceVersion"
            ))
        })?)
    };
    let res = req.res_key();
    let ns = req.ns.clone();
    // The subscription, the initial state and the replay are taken under one read lock,
    // so no write falls between them; selectors are applied after letting go.
    let data = req.sh.data_read();
    let live = data.subscribe();
    let initial_wanted = opts.send_initial_events.unwrap_or(want_rv.is_none());
    let mut initial: Vec<Arc<str>> = Vec::new();
    if initial_wanted {
        initial = data
            .list(&res, (!ns.is_empty()).then_some(ns.as_str()))
            .map(|(_, stored)| stored.json.clone())
            .collect();
    }
    let (replay, start_rv, expired) = match want_rv.filter(|_| !initial_wanted) {
        Some(rv) => match data.since(&res, rv) {
            Since::Events(replay) => (replay, rv, false),
            Since::Expired => (Vec::new(), rv, true),
        },
        None => (Vec::new(), data.current_rv(), false),
    };
    drop(data);
    if !filter.is_empty() {
        initial
            .retain(|text| serde_json::from_str::<Value>(text).is_ok_and(|o| filter.matches(&o)));
    }
    Ok(Watch {
        def: req.def.clone(),
        initial,
        replay,
        start_rv,
        live: Some(live),
        expired,
        initial_end_bookmark: opts.send_initial_events == Some(true),
        res,
        ns,
        filter,
    })
}

impl Watch {
    /// An initial object as this watch presents it.
    pub fn initial_object(&self, text: &Arc<str>) -> Option<Out> {
        if converts(&self.def) {
            let obj = serde_json::from_str::<Value>(text).ok()?;
            Some(Out::Value(present(&self.def, obj)))
        } else {
            Some(Out::Stored(text.clone()))
        }
    }

    /// What this watch sees of a storage event: an update moving an object into or out of
    /// the selector is an ADDED or DELETED here, as the real server's watch cache reports.
    pub fn translate(&self, ev: &Event) -> Option<(EventType, Out)> {
        if ev.resource != self.res || (!self.ns.is_empty() && ev.namespace != self.ns) {
            return None;
        }
        if self.filter.is_empty() && !converts(&self.def) {
            // The common case needs no parsing: the stored text is the event's object.
            return Some((ev.kind, Out::Stored(ev.json.clone())));
        }
        let obj: Value = serde_json::from_str(&ev.json).ok()?;
        let now = self.filter.matches(&obj);
        let kind = match (ev.kind, &ev.prev) {
            (EventType::Modified, Some(prev)) if !self.filter.is_empty() => {
                let before =
                    serde_json::from_str::<Value>(prev).is_ok_and(|p| self.filter.matches(&p));
                match (before, now) {
                    (true, true) => EventType::Modified,
                    (false, true) => EventType::Added,
                    (true, false) => EventType::Deleted,
                    (false, false) => return None,
                }
            }
            (k, _) if now => k,
            _ => return None,
        };
        Some((kind, Out::Value(present(&self.def, obj))))
    }
}

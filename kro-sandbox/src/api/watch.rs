//! Watch: a chunked stream of JSON events from a resourceVersion, with bookmarks, selectors,
//! timeouts and `410 Gone` when the history no longer reaches back.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::objects::{Ctx, Filter};
use super::status_response;
use crate::catalog::ResourceDef;
use crate::error::ApiError;
use crate::store::{Event, EventType, Since};

/// How often bookmarks are sent when asked for.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Longest watch when the client sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Plan {
    initial: Vec<Arc<str>>,
    replay: Vec<Arc<Event>>,
    start_rv: u64,
    live: broadcast::Receiver<Arc<Event>>,
    expired: bool,
}

/// Serves a watch request.
pub async fn serve(ctx: Ctx<'_>) -> Response {
    let forced = ctx
        .sh
        .faults
        .watch_error
        .load(std::sync::atomic::Ordering::Relaxed);
    if forced > 0 {
        let code = u16::try_from(forced).unwrap_or(503);
        return status_response(&ApiError::new(
            code,
            "ServiceUnavailable",
            "watches are failing (fault injected)",
        ));
    }
    let filter = match Filter::from_call(&ctx) {
        Ok(f) => f,
        Err(e) => return status_response(&e),
    };
    let rv_param = ctx.call.q("resourceVersion").unwrap_or("").to_owned();
    let send_initial = ctx.call.q("sendInitialEvents").map(|v| v == "true");
    let bookmarks = ctx
        .call
        .q("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = ctx
        .call
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let res = (ctx.def.group.clone(), ctx.def.plural.clone());
    let ns = ctx.ns.clone();
    let want_rv = if rv_param.is_empty() || rv_param == "0" {
        None
    } else {
        match rv_param.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                return status_response(&ApiError::bad_request(format!(
                    "resourceVersion: Invalid value: {rv_param:?}: must be a valid resourceVersion"
                )));
            }
        }
    };
    // Snapshot and subscription happen under one lock so no event falls between them.
    let plan = {
        let data = ctx.sh.data();
        let live = data.subscribe();
        let initial_wanted = send_initial.unwrap_or(want_rv.is_none());
        let mut initial = Vec::new();
        if initial_wanted {
            for (_, stored) in data.list(&res, (!ns.is_empty()).then_some(ns.as_str())) {
                let wanted = filter.is_empty()
                    || serde_json::from_str::<Value>(&stored.json)
                        .is_ok_and(|o| filter.matches(&o));
                if wanted {
                    initial.push(stored.json.clone());
                }
            }
        }
        match want_rv.filter(|_| !initial_wanted) {
            Some(rv) => match data.since(&res, rv) {
                Since::Events(replay) => Plan {
                    initial,
                    replay,
                    start_rv: rv,
                    live,
                    expired: false,
                },
                Since::Expired => Plan {
                    initial,
                    replay: vec![],
                    start_rv: rv,
                    live,
                    expired: true,
                },
            },
            None => Plan {
                initial,
                replay: vec![],
                start_rv: data.current_rv(),
                live,
                expired: false,
            },
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let def = ctx.def.clone();
    let mut drop_signal = ctx.sh.faults.drop_watches.subscribe();
    let initial_end_bookmark = send_initial == Some(true);
    tokio::spawn(async move {
        let send = |v: Value| {
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        };
        if plan.expired {
            let e = ApiError::gone(format!(
                "too old resource version: {} ({})",
                plan.start_rv,
                plan.start_rv + 1
            ));
            let _ = tx
                .send(send(json!({"type": "ERROR", "object": e.to_status()})))
                .await;
            return;
        }
        let mut last_rv = plan.start_rv;
        let converting = def.custom.is_some() && def.version != def.storage_version;
        for text in plan.initial {
            let line = if converting {
                let Ok(obj) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                Line::Json(json!({"type": "ADDED", "object": present(&def, obj)}))
            } else {
                Line::Raw(format!("{{\"type\":\"ADDED\",\"object\":{text}}}\n"))
            };
            if tx.send(line.bytes()).await.is_err() {
                return;
            }
        }
        if initial_end_bookmark {
            let bm = bookmark(&def, last_rv, true);
            if tx.send(send(bm)).await.is_err() {
                return;
            }
        }
        for ev in plan.replay {
            if let Some(line) = event_line(&def, &ns, &filter, &ev)
                && tx.send(line.bytes()).await.is_err()
            {
                return;
            }
            last_rv = ev.rv;
        }
        let mut live = plan.live;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut deadline => return,
                _ = drop_signal.changed() => return,
                () = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(send(bookmark(&def, last_rv, false))).await.is_err() {
                        return;
                    }
                }
                msg = live.recv() => match msg {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if ev.resource.0 != def.group || ev.resource.1 != def.plural {
                            continue;
                        }
                        if let Some(line) = event_line(&def, &ns, &filter, &ev)
                            && tx.send(line.bytes()).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Events were lost: make the client relist rather than miss them.
                        let e = ApiError::gone("too old resource version: watch fell behind");
                        let _ = tx.send(send(json!({"type": "ERROR", "object": e.to_status()}))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn present(def: &ResourceDef, mut obj: Value) -> Value {
    if def.custom.is_some() && def.version != def.storage_version {
        obj["apiVersion"] = json!(def.api_version());
    }
    obj
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}})
}

fn event_line(def: &ResourceDef, ns: &str, filter: &Filter, ev: &Event) -> Option<Line> {
    if !ns.is_empty() && ev.namespace != ns {
        return None;
    }
    let converting = def.custom.is_some() && def.version != def.storage_version;
    if filter.is_empty() && !converting {
        // The common case needs no parsing: the stored text is the event's object.
        return Some(Line::Raw(format!(
            "{{\"type\":\"{}\",\"object\":{}}}\n",
            ev.kind.as_str(),
            ev.json
        )));
    }
    let obj: Value = serde_json::from_str(&ev.json).ok()?;
    let now = filter.matches(&obj);
    let kind = match (ev.kind, &ev.prev) {
        // An update moving an object into or out of the selector is an ADDED or DELETED for
        // this watch, as the real server's watch cache reports it.
        (EventType::Modified, Some(prev)) if !filter.is_empty() => {
            let before = serde_json::from_str::<Value>(prev).is_ok_and(|p| filter.matches(&p));
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
    Some(Line::Json(
        json!({"type": kind.as_str(), "object": present(def, obj)}),
    ))
}

/// A watch line, already serialized or still a value.
enum Line {
    Raw(String),
    Json(Value),
}

impl Line {
    fn bytes(self) -> Bytes {
        match self {
            Line::Raw(s) => Bytes::from(s),
            Line::Json(v) => {
                let mut line = serde_json::to_vec(&v).unwrap_or_default();
                line.push(b'\n');
                Bytes::from(line)
            }
        }
    }
}

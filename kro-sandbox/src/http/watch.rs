//! Watch streaming: a chunked stream of JSON events (objects, or Table rows when the client
//! asked for `as=Table`), with bookmarks, timeouts and `410 Gone` as an `ERROR` event.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::negotiate::{self, IncludeObject, Media, Representation};
use super::{Call, options, protobuf, status_response, table};
use crate::catalog::ResourceDef;
use crate::error::ApiError;
use crate::registry::{Out, Request, watch};
use crate::storage::EventType;

/// How often bookmarks are sent when asked for.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Longest watch when the client sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// How each event's object is encoded.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Object,
    /// `PartialObjectMetadata` of each object, as a real server answers a
    /// metadata-only watch.
    Metadata,
    /// One-row Tables; only the first carries the column definitions, as on a real server
    /// (clients keep the last ones they saw).
    Table(IncludeObject),
}

struct Encoder {
    encoding: Encoding,
    media: Media,
    headers_sent: bool,
}

impl Encoder {
    /// An event that is not an object's (`ERROR`, `BOOKMARK`).
    fn event(&self, v: &Value) -> Bytes {
        if self.media == Media::Protobuf {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
            let obj = v.get("object").unwrap_or(&Value::Null);
            return protobuf_frame(kind, obj);
        }
        value_line(v)
    }

    fn line(&mut self, def: &ResourceDef, kind: EventType, out: Out, rv: u64) -> Bytes {
        if self.media == Media::Protobuf {
            let obj = out.to_value().unwrap_or(Value::Null);
            return protobuf_frame(kind.as_str(), &obj);
        }
        match self.encoding {
            Encoding::Object => match out {
                Out::Stored(text) => Bytes::from(format!(
                    "{{\"type\":\"{}\",\"object\":{text}}}\n",
                    kind.as_str()
                )),
                Out::Value(v) => value_line(&json!({"type": kind.as_str(), "object": v})),
            },
            Encoding::Metadata => {
                let obj = out.to_value().unwrap_or(Value::Null);
                value_line(
                    &json!({"type": kind.as_str(), "object": super::handlers::partial_metadata(&obj)}),
                )
            }
            Encoding::Table(include) => {
                let obj = out.to_value().unwrap_or(Value::Null);
                let t = table::render(def, &[obj], None, rv, include, !self.headers_sent);
                self.headers_sent = true;
                value_line(&json!({"type": kind.as_str(), "object": t}))
            }
        }
    }
}

/// One length-prefixed protobuf `WatchEvent`.
fn protobuf_frame(kind: &str, obj: &Value) -> Bytes {
    match protobuf::encode_watch_event(kind, obj) {
        Ok(frame) => Bytes::from(frame),
        Err(error) => {
            // Not expected for a built-in kind: end the event rather than send a torn frame.
            tracing::warn!(%error, "watch event has no protobuf form");
            Bytes::new()
        }
    }
}

fn value_line(v: &Value) -> Bytes {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Serves a watch request.
pub async fn serve(req: &Request<'_>, call: &Call, media: Media) -> Response {
    let forced = req
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
    let opts = match options::list(call, true) {
        Ok(o) => o,
        Err(e) => return status_response(&e),
    };
    let w = match watch::start(req, &opts) {
        Ok(w) => w,
        Err(e) => return status_response(&e),
    };
    let timeout = opts
        .timeout_seconds
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let bookmarks = opts.allow_bookmarks;
    let encoding = match negotiate::representation(call) {
        Representation::Table => Encoding::Table(negotiate::include_object(call)),
        Representation::Metadata => Encoding::Metadata,
        Representation::Object => Encoding::Object,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut drop_signal = req.sh.faults.drop_watches.subscribe();
    tokio::spawn(async move {
        let mut w = w;
        let Some(mut live) = w.live.take() else {
            return;
        };
        let mut enc = Encoder {
            encoding,
            media,
            headers_sent: false,
        };
        let def = w.def.clone();
        if w.expired {
            let e = ApiError::gone(format!(
                "too old resource version: {} ({})",
                w.start_rv,
                w.start_rv + 1
            ));
            let _ = tx
                .send(enc.event(&json!({"type": "ERROR", "object": e.to_status()})))
                .await;
            return;
        }
        let mut last_rv = w.start_rv;
        for text in &w.initial {
            let Some(out) = w.initial_object(text) else {
                continue;
            };
            if tx
                .send(enc.line(&def, EventType::Added, out, last_rv))
                .await
                .is_err()
            {
                return;
            }
        }
        if w.initial_end_bookmark
            && tx
                .send(enc.event(&bookmark(&def, last_rv, true)))
                .await
                .is_err()
        {
            return;
        }
        for ev in &w.replay {
            if let Some((kind, out)) = w.translate(ev)
                && tx.send(enc.line(&def, kind, out, ev.rv)).await.is_err()
            {
                return;
            }
            last_rv = ev.rv;
        }
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
                    if tx.send(enc.event(&bookmark(&def, last_rv, false))).await.is_err() {
                        return;
                    }
                }
                msg = live.recv() => match msg {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some((kind, out)) = w.translate(&ev)
                            && tx.send(enc.line(&def, kind, out, ev.rv)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Events were lost: make the client relist rather than miss them.
                        let e = ApiError::gone("too old resource version: watch fell behind");
                        let _ = tx.send(enc.event(&json!({"type": "ERROR", "object": e.to_status()}))).await;
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
    let content_type = match media {
        Media::Protobuf => protobuf::WATCH_MEDIA_TYPE,
        Media::Json => "application/json",
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}})
}

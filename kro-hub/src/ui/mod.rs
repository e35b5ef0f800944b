//! The live view: a read-only web page of the hub (members and their
//! health, each RGD's graph, instances by cluster) with live updates, and
//! the terminal table the demo redraws. Both read [`Live`], reflectors of
//! Clusters, RGDs and instances, through the view model of
//! [`crate::view`], so the terminal and the page agree.
//!
//! Routes: `/` the page (rendered on the server), `/events` server-sent
//! events carrying re-rendered sections after each change, `/api/state`
//! the same model as JSON, `/ui.css` and `/ui.js` (embedded in the
//! binary, no build step).

pub mod graph;
pub mod html;
mod live;
pub mod terminal;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use futures::Stream;

pub use live::Live;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

/// How long the first page waits for the watches' first lists.
const FIRST_LIST: Duration = Duration::from_secs(2);
/// Changes closer together than this go out as one update: an instance
/// pass writes several objects in a burst.
const COALESCE: Duration = Duration::from_millis(150);
/// How long a browser waits before reconnecting a dropped event stream.
const RETRY: Duration = Duration::from_secs(2);

/// Errors of the web server.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address could not be bound or the server failed.
    #[error("serving the live view on {addr}: {source}")]
    Serve {
        /// The address.
        addr: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The routes, separate from binding so tests can drive them directly.
pub fn router(live: Live) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/ui.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/ui.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .route("/api/state", get(state))
        .route("/events", get(events))
        .layer(axum::middleware::map_response(harden))
        .with_state(live)
}

/// Headers on every answer: only the page's own script and style run, the
/// page is never framed, and no answer is cached (it is live).
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

async fn page(State(live): State<Live>) -> Html<String> {
    live.ready(FIRST_LIST).await;
    Html(html::page(&live.snapshot()))
}

async fn state(State(live): State<Live>) -> Json<crate::view::Snapshot> {
    live.ready(FIRST_LIST).await;
    Json(live.snapshot())
}

/// The sections of the page, re-rendered, as one event's JSON data.
fn update(live: &Live) -> Event {
    let sections: serde_json::Map<String, serde_json::Value> = html::fragments(&live.snapshot())
        .into_iter()
        .map(|(id, html)| (id.to_owned(), serde_json::Value::String(html)))
        .collect();
    Event::default()
        .retry(RETRY)
        .data(serde_json::Value::Object(sections).to_string())
}

/// One event now, then one after each burst of changes, until the views
/// stop or the browser goes.
async fn events(State(live): State<Live>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Open {
        live: Live,
        changes: tokio::sync::watch::Receiver<u64>,
        stopping: tokio::sync::watch::Receiver<bool>,
        first: bool,
    }
    live.opened();
    let open = Open {
        changes: live.changes(),
        stopping: live.stopping(),
        live,
        first: true,
    };
    let stream = futures::stream::unfold(open, |mut open| async move {
        if *open.stopping.borrow() {
            return None;
        }
        if !open.first {
            tokio::select! {
                changed = open.changes.changed() => changed.ok()?,
                _ = open.stopping.wait_for(|s| *s) => return None,
            }
            tokio::time::sleep(COALESCE).await;
        }
        open.first = false;
        open.changes.borrow_and_update();
        let event = update(&open.live);
        Some((Ok(event), open))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Serves the view on `addr` until `shutdown` resolves, reading through
/// `client`.
pub async fn serve(
    addr: SocketAddr,
    client: kube::Client,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), UiError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| UiError::Serve {
            addr: addr.to_string(),
            source,
        })?;
    serve_on(listener, Live::start(client), shutdown).await
}

/// Serves the view on a bound listener (tests bind port 0) until
/// `shutdown` resolves; open event streams end then, so browsers see the
/// server go.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    live: Live,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), UiError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    tracing::info!(%addr, "serving the live view");
    let stopper = live.clone();
    axum::serve(listener, router(live))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopper.stop();
        })
        .await
        .map_err(|source| UiError::Serve { addr, source })
}

//! The HTTP layer: routing, the authentication / impersonation / authorization filters,
//! content negotiation, request options and `Status` error bodies. It decodes a request
//! once and hands the registry plain values; nothing below it knows about HTTP.

mod body;
mod discovery;
pub mod filters;
mod handlers;
pub mod negotiate;
pub mod openapi;
mod options;
pub mod protobuf;
mod reviews;
pub mod route;
mod table;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::state::Shared;
use route::Route;

/// Largest request body accepted (the real server's limit is 3 MiB for most objects).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The axum router serving one sandbox.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(entry).with_state(shared)
}

/// A request, decoded enough for every handler.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP method.
    pub method: Method,
    /// Decoded query parameters (last value wins).
    pub query: HashMap<String, String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// The user the request runs as (after authentication and impersonation).
    pub user: UserInfo,
}

impl Call {
    /// A query parameter.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The field manager of a write that names none: the user agent's program name.
    pub fn default_manager(&self) -> String {
        let ua = self.header("user-agent").unwrap_or("unknown");
        let prefix = ua.split('/').next().unwrap_or(ua);
        prefix.chars().take(128).collect()
    }
}

async fn entry(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let delay = sh.faults.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let forced = sh.faults.error_code.load(Ordering::Relaxed);
    if forced > 0 {
        let code = u16::try_from(forced).unwrap_or(500);
        let reason = if code == 503 {
            "ServiceUnavailable"
        } else {
            "InternalError"
        };
        return status_response(&ApiError::new(
            code,
            reason,
            "the sandbox is answering errors (fault injected)",
        ));
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let route = route::parse(&path);
    let request_uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let user = match filters::run(
        &sh,
        &parts.method,
        &path,
        parts.uri.query(),
        &parts.headers,
        &request_uri,
    ) {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    sh.requests.record(
        &user.name,
        &parts.method,
        &route,
        parts.uri.query(),
        &parts.headers,
    );
    let query = parts
        .uri
        .query()
        .map(|q| {
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                .map(|v| v.0.into_iter().collect())
                .unwrap_or_else(|_| {
                    tracing::debug!(query = q, "undecodable query");
                    HashMap::new()
                })
        })
        .unwrap_or_default();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return status_response(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                "the request body is too large",
            ));
        }
    };
    let call = Call {
        method: parts.method,
        query,
        headers: parts.headers,
        body,
        user,
    };
    tracing::debug!(method = %call.method, path, "request");
    match route {
        Route::Version => json_response(200, &discovery::version()),
        Route::Health => text_response(200, "ok"),
        Route::Api => json_response(200, &discovery::api_versions(&call)),
        Route::Apis => json_response(200, &discovery::api_groups(&sh)),
        Route::Group(g) => match discovery::api_group(&sh, &g) {
            Some(v) => json_response(200, &v),
            None => text_response(404, "404 page not found"),
        },
        Route::GroupVersion(g, v) => match discovery::resource_list(&sh, &g, &v) {
            Some(v) => json_response(200, &v),
            None => text_response(404, "404 page not found"),
        },
        Route::OpenApi(rest) => openapi::serve(&sh, &rest, call.header("accept")),
        Route::NotFound => text_response(404, "404 page not found"),
        Route::Resource(rp) => {
            if !sh.catalog().has_group_version(&rp.group, &rp.version) {
                return text_response(404, "404 page not found");
            }
            if let Some(kind) = reviews::Review::of(&rp) {
                return reviews::serve(&sh, kind, &rp, &call);
            }
            handlers::dispatch(&sh, rp, call).await
        }
    }
}

/// A JSON answer.
pub fn json_response(code: u16, v: &Value) -> Response {
    raw_json_response(code, serde_json::to_string(v).unwrap_or_default(), &[])
}

/// A JSON answer from text already serialized, with optional `Warning` headers.
pub fn raw_json_response(code: u16, text: String, warnings: &[String]) -> Response {
    bytes_response(code, text, "application/json", warnings)
}

/// An answer of the given media type, with optional `Warning` headers.
pub fn bytes_response(
    code: u16,
    body: impl Into<Body>,
    content_type: &'static str,
    warnings: &[String],
) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {}", quote_warning(w))) {
            r.headers_mut().append("warning", v);
        }
    }
    r
}

fn quote_warning(w: &str) -> String {
    format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A plain-text answer.
pub fn text_response(code: u16, text: &str) -> Response {
    let mut r = Response::new(Body::from(text.to_owned()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// An error as a `Status` answer.
pub fn status_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

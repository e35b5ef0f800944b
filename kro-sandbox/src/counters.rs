//! Requests served, by user, verb and resource: what a benchmark or a test
//! reads to know how many calls a client made, counted by the server so no
//! client-side layer can miss one.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, header};

use crate::http::route::Route;

/// One counter: requests of `verb` on `resource` made by `user`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    /// The authenticated user (after impersonation).
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `update`, `apply` (a server-side
    /// apply patch), `patch`, `delete`, `deletecollection`, or
    /// `discovery` for version, discovery and OpenAPI reads.
    pub verb: &'static str,
    /// `plural[.group]`, with `/subresource` when one is addressed; empty
    /// for discovery.
    pub resource: String,
}

/// The counters of one sandbox.
#[derive(Debug, Default)]
pub struct RequestCounters {
    counts: Mutex<HashMap<RequestKey, u64>>,
}

impl RequestCounters {
    /// Counts one request.
    pub fn record(
        &self,
        user: &str,
        method: &Method,
        route: &Route,
        query: Option<&str>,
        headers: &HeaderMap,
    ) {
        let (verb, resource) = classify(method, route, query, headers);
        let key = RequestKey {
            user: user.to_owned(),
            verb,
            resource,
        };
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(key).or_default() += 1;
    }

    /// Every counter so far, sorted.
    pub fn snapshot(&self) -> Vec<(RequestKey, u64)> {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(RequestKey, u64)> = counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        out.sort();
        out
    }
}

/// The verb and resource of a request, as RBAC names them.
fn classify(
    method: &Method,
    route: &Route,
    query: Option<&str>,
    headers: &HeaderMap,
) -> (&'static str, String) {
    let Route::Resource(rp) = route else {
        return ("discovery", String::new());
    };
    let mut resource = if rp.group.is_empty() {
        rp.plural.clone()
    } else {
        format!("{}.{}", rp.plural, rp.group)
    };
    if let Some(sub) = &rp.sub {
        resource.push('/');
        resource.push_str(sub);
    }
    let watch = query
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let apply = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/apply-patch"));
    let named = rp.name.is_some();
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH if apply => "apply",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_user_verb_and_resource() {
        let counters = RequestCounters::default();
        let route = crate::http::route::parse("/apis/apps/v1/namespaces/a/deployments/web");
        let list = crate::http::route::parse("/api/v1/namespaces/a/services");
        let mut apply = HeaderMap::new();
        apply.insert(
            header::CONTENT_TYPE,
            "application/apply-patch+yaml".parse().expect("header"),
        );
        counters.record("hub", &Method::PATCH, &route, None, &apply);
        counters.record("hub", &Method::PATCH, &route, None, &apply);
        counters.record(
            "hub",
            &Method::GET,
            &list,
            Some("watch=true"),
            &HeaderMap::new(),
        );
        counters.record("me", &Method::GET, &list, None, &HeaderMap::new());
        let snap = counters.snapshot();
        let count = |user: &str, verb: &str, res: &str| {
            snap.iter()
                .find(|(k, _)| k.user == user && k.verb == verb && k.resource == res)
                .map_or(0, |(_, n)| *n)
        };
        assert_eq!(count("hub", "apply", "deployments.apps"), 2);
        assert_eq!(count("hub", "watch", "services"), 1);
        assert_eq!(count("me", "list", "services"), 1);
    }
}

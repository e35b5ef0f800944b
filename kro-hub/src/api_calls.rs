//! Counting every request the hub makes, by cluster and verb, as a layer
//! under the kube client: the metric covers all calls (including ones made
//! deep inside kube-runtime), and tests can prove that a converged hub makes
//! no writes.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request};
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// The Kubernetes verb of a request, as RBAC names them.
pub fn verb<B>(req: &Request<B>) -> &'static str {
    let query = req.uri().query().unwrap_or_default();
    let is_watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match *req.method() {
        Method::GET if is_discovery(req.uri().path()) => "discovery",
        Method::GET if is_watch => "watch",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH if content_type.starts_with("application/apply-patch") => "apply",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    }
}

/// Whether `path` is a discovery or version read (`/version`, `/api`,
/// `/apis/{group}/{version}`, `/openapi/...`) rather than a resource.
fn is_discovery(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        segments.as_slice(),
        ["version" | "healthz" | "readyz" | "livez"]
            | ["openapi", ..]
            | ["api"]
            | ["api", _]
            | ["apis"]
            | ["apis", _]
            | ["apis", _, _]
    )
}

/// Whether a verb changes state on the server.
pub fn is_write(verb: &str) -> bool {
    matches!(verb, "create" | "update" | "apply" | "patch" | "delete")
}

/// A layer counting requests into [`Metrics`].
#[derive(Debug, Clone)]
pub struct CountLayer {
    metrics: Arc<Metrics>,
    cluster: Arc<str>,
}

impl CountLayer {
    /// Counts requests to `cluster`.
    pub fn new(metrics: Arc<Metrics>, cluster: &str) -> Self {
        Self {
            metrics,
            cluster: cluster.into(),
        }
    }
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Count {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`CountLayer`].
#[derive(Debug, Clone)]
pub struct Count<S> {
    inner: S,
    layer: CountLayer,
}

impl<S, B> Service<Request<B>> for Count<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.layer.metrics.api_call(&self.layer.cluster, verb(&req));
        self.inner.call(req)
    }
}

/// A client for `config` whose requests are counted as `cluster`.
pub fn counted_client(
    config: kube::Config,
    metrics: Arc<Metrics>,
    cluster: &str,
) -> Result<kube::Client, kube::Error> {
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder
        .with_layer(&CountLayer::new(metrics, cluster))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, uri: &str, ct: Option<&str>) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(ct) = ct {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn verbs_follow_rbac_names() {
        assert_eq!(
            verb(&req(
                Method::GET,
                "/api/v1/pods?watch=true&resourceVersion=1",
                None
            )),
            "watch"
        );
        assert_eq!(verb(&req(Method::GET, "/api/v1/pods", None)), "get");
        assert_eq!(verb(&req(Method::GET, "/version", None)), "discovery");
        assert_eq!(verb(&req(Method::GET, "/apis/apps/v1", None)), "discovery");
        assert_eq!(
            verb(&req(Method::GET, "/apis/apps/v1/deployments", None)),
            "get"
        );
        assert_eq!(verb(&req(Method::GET, "/api/v1/namespaces/a", None)), "get");
        assert_eq!(
            verb(&req(
                Method::PATCH,
                "/x",
                Some("application/apply-patch+yaml")
            )),
            "apply"
        );
        assert_eq!(
            verb(&req(
                Method::PATCH,
                "/x",
                Some("application/merge-patch+json")
            )),
            "patch"
        );
        assert_eq!(verb(&req(Method::DELETE, "/x", None)), "delete");
        assert!(is_write("apply") && !is_write("watch"));
    }
}

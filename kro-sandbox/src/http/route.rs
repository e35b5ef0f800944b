//! Maps a request path to what it addresses.

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez` (and their sub-checks).
    Health,
    /// `/api`.
    Api,
    /// `/apis`.
    Apis,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    GroupVersion(String, String),
    /// `/openapi/v2`, `/openapi/v3` and below.
    OpenApi(String),
    /// A resource, collection or object.
    Resource(ResourcePath),
    /// Unknown path: plain-text 404 like the real server's mux.
    NotFound,
}

/// The parts of a resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace segment, when the path has one.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub sub: Option<String>,
}

/// Parses a URL path (without query).
pub fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["openapi", rest @ ..] => Route::OpenApi(rest.join("/")),
        ["apis", g] => Route::Group((*g).to_owned()),
        ["api", v] => Route::GroupVersion(String::new(), (*v).to_owned()),
        ["apis", g, v] => Route::GroupVersion((*g).to_owned(), (*v).to_owned()),
        ["api", v, rest @ ..] => resource("", v, rest),
        ["apis", g, v, rest @ ..] => resource(g, v, rest),
        _ => Route::NotFound,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let owned = |s: &&str| (*s).to_owned();
    let (namespace, rest) = match rest {
        // `namespaces/{name}/status` and `/finalize` address the namespace itself.
        ["namespaces", _, "status" | "finalize"] if group.is_empty() => (None, rest),
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some((*ns).to_owned()), tail),
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (owned(p), None, None),
        [p, n] => (owned(p), Some(owned(n)), None),
        [p, n, s] => (owned(p), Some(owned(n)), Some(owned(s))),
        _ => return Route::NotFound,
    };
    Route::Resource(ResourcePath {
        group: group.to_owned(),
        version: version.to_owned(),
        plural,
        namespace,
        name,
        sub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_namespaced_and_cluster_paths() {
        let r = res("/apis/apps/v1/namespaces/ns/deployments/web/scale");
        assert_eq!(
            (r.group.as_str(), r.plural.as_str()),
            ("apps", "deployments")
        );
        assert_eq!(r.namespace.as_deref(), Some("ns"));
        assert_eq!(r.sub.as_deref(), Some("scale"));
        let n = res("/api/v1/namespaces/foo");
        assert_eq!(
            (n.plural.as_str(), n.name.as_deref(), n.namespace),
            ("namespaces", Some("foo"), None)
        );
        let s = res("/api/v1/namespaces/foo/status");
        assert_eq!(
            (s.name.as_deref(), s.sub.as_deref()),
            (Some("foo"), Some("status"))
        );
        let c = res("/api/v1/namespaces/foo/configmaps");
        assert_eq!((c.plural.as_str(), c.name), ("configmaps", None));
        assert_eq!(parse("/apis/x"), Route::Group("x".into()));
        assert_eq!(parse("/nope"), Route::NotFound);
    }
}

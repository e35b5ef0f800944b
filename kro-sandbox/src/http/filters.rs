//! The filters every request passes before any handler, in the server's order:
//! authentication, impersonation, authorization. Each either hands the next one the
//! user the request runs as, or answers the request itself.

use axum::http::{HeaderMap, Method, header};
use axum::response::Response;

use super::{status_response, text_response};

/// Why a filter answered the request itself.
#[derive(Debug)]
pub enum Rejection {
    /// A `Status` answer (401, 403).
    Status(ApiError),
    /// The plain-text 500 the server's filters write for malformed requests.
    Internal(String),
}

impl Rejection {
    /// The HTTP answer.
    pub fn into_response(self) -> Response {
        match self {
            Self::Status(e) => status_response(&e),
            Self::Internal(text) => text_response(500, &text),
        }
    }
}
use crate::auth::{
    ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS, TokenSubject, UserInfo,
    service_account_groups, service_account_username, split_service_account,
};
use crate::authz::{self, Attributes};
use crate::error::ApiError;
use crate::state::Shared;

const IMPERSONATE_USER: &str = "impersonate-user";
const IMPERSONATE_GROUP: &str = "impersonate-group";
const IMPERSONATE_UID: &str = "impersonate-uid";
const IMPERSONATE_EXTRA: &str = "impersonate-extra-";

/// Paths anonymous requests may reach when the sandbox requires a token (the server's
/// anonymous-authentication conditions for health checks).
fn anonymous_allowed(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next();
    matches!(first, Some("healthz" | "livez" | "readyz"))
}

/// Runs the three filters; `Ok` carries the user the request runs as.
pub fn run(
    sh: &Shared,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    request_uri: &str,
) -> Result<UserInfo, Rejection> {
    let requestor = authenticate(sh, path, headers).map_err(Rejection::Status)?;
    let user = impersonate(sh, headers, requestor, request_uri)?;
    let mut attrs = match request_attributes(method, path, raw_query) {
        Ok(a) => a,
        Err(e) => {
            return Err(internal_error(
                request_uri,
                &format!("failed to create RequestInfo: {e}"),
            ));
        }
    };
    attrs.user = user;
    if attrs.user.in_group(crate::auth::SYSTEM_MASTERS) {
        return Ok(attrs.user);
    }
    let verdict = authz::authorize(&*sh.data_read(), &attrs);
    if verdict.allowed() {
        return Ok(attrs.user);
    }
    tracing::debug!(user = %attrs.user.name, verb = %attrs.verb, path, reason = %verdict.reason, "forbidden");
    Err(Rejection::Status(authz::forbidden(&attrs, &verdict.reason)))
}

/// The bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Who sent the request: the admin token or a registered token (any other token is a
/// 401); no credentials are the admin when the sandbox has no admin token, else
/// anonymous on health paths only.
pub fn authenticate(sh: &Shared, path: &str, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let Some(token) = bearer(headers) else {
        if headers.contains_key(header::AUTHORIZATION) && sh.opts.token.is_some() {
            return Err(ApiError::unauthorized());
        }
        return match &sh.opts.token {
            None => Ok(UserInfo::admin()),
            Some(_) if anonymous_allowed(path) => Ok(UserInfo::anonymous()),
            Some(_) => Err(ApiError::unauthorized()),
        };
    };
    if sh.opts.token.as_deref() == Some(token) {
        return Ok(UserInfo::admin());
    }
    match sh.tokens.get(token) {
        Some(TokenSubject::User(u)) => Ok(u.authenticated()),
        Some(TokenSubject::ServiceAccount { namespace, name }) => {
            let data = sh.data_read();
            let key = (String::new(), "serviceaccounts".to_owned());
            let stored = data
                .get(&key, &(namespace.clone(), name.clone()))
                .ok_or_else(ApiError::unauthorized)?;
            let sa: serde_json::Value =
                serde_json::from_str(&stored.json).map_err(|_| ApiError::unauthorized())?;
            if sa.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::unauthorized());
            }
            let mut user = UserInfo::service_account(&namespace, &name);
            user.uid = sa
                .pointer("/metadata/uid")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Ok(user)
        }
        // An unknown token is rejected, as the server does, even when requests without
        // credentials are let in as the admin.
        None => Err(ApiError::unauthorized()),
    }
}

/// `Internal Server Error: "<uri>": <err>` as plain text, as the server's filters answer.
fn internal_error(request_uri: &str, err: &str) -> Rejection {
    let text = format!(
        "Internal Server Error: {}: {err}",
        crate::error::go_quote(&serde_json::Value::String(request_uri.to_owned()))
    )
    .replace('&', "&amp;")
    .replace('<', "&lt;")
    .replace('>', "&gt;");
    Rejection::Internal(format!("{text}\n"))
}

/// One thing a request asks to act as.
#[derive(Debug)]
enum Ask {
    User(String),
    ServiceAccount(String, String),
    Group(String),
    Extra(String, String),
    Uid(String),
}

impl Ask {
    /// How the server prints the object reference it builds for this ask.
    fn go_string(&self) -> String {
        let auth = "authentication.k8s.io/v1";
        // Kind, Namespace, Name, UID, APIVersion, ResourceVersion, FieldPath.
        let fields: [&str; 7] = match self {
            Ask::User(n) => ["User", "", n, "", "", "", ""],
            Ask::ServiceAccount(ns, n) => ["ServiceAccount", ns, n, "", "", "", ""],
            Ask::Group(n) => ["Group", "", n, "", "", "", ""],
            Ask::Extra(k, v) => ["UserExtra", "", v, "", auth, "", k],
            Ask::Uid(u) => ["UID", "", u, "", auth, "", ""],
        };
        format!("{{{}}}", fields.join(" "))
    }
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// Decodes `%`-escapes of an extra key; malformed keys are kept as they are.
fn unescape(key: &str) -> String {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => return key.to_owned(),
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| key.to_owned())
}

fn impersonation_asks(headers: &HeaderMap) -> Result<Vec<Ask>, String> {
    let mut asks = Vec::new();
    let user = headers
        .get(IMPERSONATE_USER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let has_user = !user.is_empty();
    if has_user {
        asks.push(match split_service_account(user) {
            Some((ns, name)) => Ask::ServiceAccount(ns.to_owned(), name.to_owned()),
            None => Ask::User(user.to_owned()),
        });
    }
    let groups = header_values(headers, IMPERSONATE_GROUP);
    let has_groups = !groups.is_empty();
    asks.extend(groups.into_iter().map(|g| Ask::Group(g.to_owned())));
    let mut has_extra = false;
    let mut names: Vec<&str> = headers
        .keys()
        .map(axum::http::HeaderName::as_str)
        .filter(|n| n.starts_with(IMPERSONATE_EXTRA))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        has_extra = true;
        let key = unescape(&name[IMPERSONATE_EXTRA.len()..].to_lowercase());
        for v in header_values(headers, name) {
            asks.push(Ask::Extra(key.clone(), v.to_owned()));
        }
    }
    let uid = headers
        .get(IMPERSONATE_UID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let has_uid = !uid.is_empty();
    if has_uid {
        asks.push(Ask::Uid(uid.to_owned()));
    }
    if (has_groups || has_extra || has_uid) && !has_user {
        let listed: Vec<String> = asks.iter().map(Ask::go_string).collect();
        return Err(format!(
            "requested [{}] without impersonating a user",
            listed.join(" ")
        ));
    }
    Ok(asks)
}

/// Switches the user when the request asks to impersonate, after checking the requestor
/// may `impersonate` every user, group, service account, uid and extra asked for.
pub fn impersonate(
    sh: &Shared,
    headers: &HeaderMap,
    requestor: UserInfo,
    request_uri: &str,
) -> Result<UserInfo, Rejection> {
    let asks = impersonation_asks(headers).map_err(|e| internal_error(request_uri, &e))?;
    if asks.is_empty() {
        return Ok(requestor);
    }
    let groups_specified = headers.contains_key(IMPERSONATE_GROUP);
    let mut user = UserInfo::default();
    for ask in &asks {
        let mut attrs = Attributes {
            user: requestor.clone(),
            verb: "impersonate".into(),
            resource_request: true,
            ..Attributes::default()
        };
        match ask {
            Ask::ServiceAccount(ns, name) => {
                attrs.api_version = "v1".into();
                attrs.resource = "serviceaccounts".into();
                attrs.namespace.clone_from(ns);
                attrs.name.clone_from(name);
                user.name = service_account_username(ns, name);
                if !groups_specified {
                    user.groups = service_account_groups(ns);
                }
            }
            Ask::User(name) => {
                attrs.api_version = "v1".into();
                attrs.resource = "users".into();
                attrs.name.clone_from(name);
                user.name.clone_from(name);
            }
            Ask::Group(g) => {
                attrs.api_version = "v1".into();
                attrs.resource = "groups".into();
                attrs.name.clone_from(g);
                user.groups.push(g.clone());
            }
            Ask::Extra(k, v) => {
                attrs.api_group = "authentication.k8s.io".into();
                attrs.api_version = "v1".into();
                attrs.resource = "userextras".into();
                attrs.subresource.clone_from(k);
                attrs.name.clone_from(v);
                user.extra.entry(k.clone()).or_default().push(v.clone());
            }
            Ask::Uid(u) => {
                attrs.api_group = "authentication.k8s.io".into();
                attrs.api_version = "v1".into();
                attrs.resource = "uids".into();
                attrs.name.clone_from(u);
                user.uid.clone_from(u);
            }
        }
        let verdict = authz::authorize(&*sh.data_read(), &attrs);
        if !verdict.allowed() {
            return Err(Rejection::Status(authz::forbidden(&attrs, &verdict.reason)));
        }
    }
    if user.name == ANONYMOUS {
        if !user.in_group(ALL_UNAUTHENTICATED) {
            user.groups.push(ALL_UNAUTHENTICATED.to_owned());
        }
    } else if !user.in_group(ALL_AUTHENTICATED) && !user.in_group(ALL_UNAUTHENTICATED) {
        user.groups.push(ALL_AUTHENTICATED.to_owned());
    }
    tracing::debug!(from = %requestor.name, to = %user.name, "impersonating");
    Ok(user)
}

/// The first value of a query parameter, decoded.
fn query_param(raw: Option<&str>, key: &str) -> Option<String> {
    let raw = raw?;
    raw.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    unescape(&s.replace('+', " "))
}

/// A query boolean as the server converts it: absent, empty, `0` and `false` are false.
fn query_bool(raw: Option<&str>, key: &str) -> bool {
    query_param(raw, key)
        .is_some_and(|v| !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")))
}

/// The object name a field selector pins with `metadata.name=` (or `==`), if any.
fn name_from_field_selector(sel: &str) -> Option<String> {
    sel.split(',').find_map(|term| {
        let term = term.trim();
        let rest = term.strip_prefix("metadata.name")?;
        let value = rest.strip_prefix("==").or_else(|| rest.strip_prefix('='))?;
        let valid = !matches!(value, "." | "..") && !value.contains(['/', '%']);
        valid.then(|| value.to_owned())
    })
}

/// What a request asks, derived from its method, path and query as the server's request
/// info does: resource requests under `/api` and `/apis` (verb from the method, `list`
/// and `watch` for collections, `deletecollection`, `/watch/` paths), everything else a
/// non-resource path with the lower-case method as verb.
pub fn request_attributes(
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
) -> Result<Attributes, String> {
    let mut a = Attributes {
        path: path.to_owned(),
        verb: method.as_str().to_lowercase(),
        ..Attributes::default()
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let parts: &[&str] = if parts == [""] { &[] } else { &parts };
    if parts.len() < 3 {
        return Ok(a);
    }
    let mut rest = match parts[0] {
        "api" => &parts[1..],
        "apis" => {
            if parts.len() < 4 {
                return Ok(a);
            }
            a.api_group = parts[1].to_owned();
            &parts[2..]
        }
        _ => return Ok(a),
    };
    a.resource_request = true;
    a.api_version = rest[0].to_owned();
    rest = &rest[1..];
    let special = rest
        .first()
        .copied()
        .filter(|p| matches!(*p, "proxy" | "watch"));
    if let Some(verb) = special {
        if rest.len() < 2 {
            return Err(format!(
                "unable to determine kind and namespace from url, {path}"
            ));
        }
        a.verb = verb.to_owned();
        rest = &rest[1..];
    } else {
        a.verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_owned();
    }
    if rest.first() == Some(&"namespaces")
        && let Some(ns) = rest.get(1)
    {
        a.namespace = (*ns).to_owned();
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    if let Some(r) = rest.first() {
        a.resource = (*r).to_owned();
    }
    if let Some(n) = rest.get(1) {
        a.name = (*n).to_owned();
    }
    if rest.len() >= 3 && a.verb != "proxy" {
        a.subresource = rest[2].to_owned();
    }
    if a.name.is_empty() && a.verb == "get" {
        a.verb = if query_bool(raw_query, "watch") {
            "watch"
        } else {
            "list"
        }
        .to_owned();
        if let Some(name) =
            query_param(raw_query, "fieldSelector").and_then(|s| name_from_field_selector(&s))
        {
            a.name = name;
        }
    }
    if a.name.is_empty() && a.verb == "delete" {
        a.verb = "deletecollection".to_owned();
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, path: &str, q: Option<&str>) -> Attributes {
        request_attributes(&method, path, q).unwrap_or_default()
    }

    #[test]
    fn request_info_like_the_server() {
        let a = info(
            Method::GET,
            "/apis/apps/v1/namespaces/ns/deployments/web/status",
            None,
        );
        assert_eq!(
            (
                a.verb.as_str(),
                a.api_group.as_str(),
                a.namespace.as_str(),
                a.resource.as_str(),
                a.name.as_str(),
                a.subresource.as_str()
            ),
            ("get", "apps", "ns", "deployments", "web", "status")
        );
        let l = info(
            Method::GET,
            "/api/v1/namespaces/ns/configmaps",
            Some("watch=true"),
        );
        assert_eq!(
            (l.verb.as_str(), l.resource.as_str()),
            ("watch", "configmaps")
        );
        let l = info(
            Method::GET,
            "/api/v1/configmaps",
            Some("fieldSelector=metadata.name%3Dx"),
        );
        assert_eq!((l.verb.as_str(), l.name.as_str()), ("list", "x"));
        let w = info(Method::GET, "/api/v1/watch/namespaces/ns/pods", None);
        assert_eq!(
            (w.verb.as_str(), w.namespace.as_str(), w.resource.as_str()),
            ("watch", "ns", "pods")
        );
        let d = info(Method::DELETE, "/api/v1/namespaces/ns/pods", None);
        assert_eq!(d.verb, "deletecollection");
        let n = info(Method::GET, "/api/v1/namespaces/foo", None);
        assert_eq!(
            (n.namespace.as_str(), n.resource.as_str(), n.name.as_str()),
            ("foo", "namespaces", "foo")
        );
        let s = info(Method::PUT, "/api/v1/namespaces/foo/finalize", None);
        assert_eq!(
            (s.resource.as_str(), s.subresource.as_str()),
            ("namespaces", "finalize")
        );
        for p in [
            "/version",
            "/apis",
            "/api/v1",
            "/apis/apps/v1",
            "/openapi/v3",
            "/healthz",
        ] {
            let x = info(Method::GET, p, None);
            assert!(!x.resource_request, "{p}");
            assert_eq!(x.verb, "get");
        }
    }

    #[test]
    fn impersonating_groups_without_a_user_is_refused_like_the_server() {
        let mut h = HeaderMap::new();
        h.insert(
            IMPERSONATE_GROUP,
            axum::http::HeaderValue::from_static("admins"),
        );
        let e = impersonation_asks(&h).err().unwrap_or_default();
        assert_eq!(
            e,
            "requested [{Group  admins    }] without impersonating a user"
        );
    }
}

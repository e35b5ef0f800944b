//! Kubernetes' CEL URL library: `url()`, `isURL()` and `getScheme`,
//! `getHost`, `getHostname`, `getPort`, `getEscapedPath`, `getQuery`. Like
//! Kubernetes, only absolute URLs (`scheme://...`) and absolute paths
//! (`/path`) are accepted.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map, Opaque};
use cel::{ExecutionError, Value};

/// CEL type name of URLs.
pub const URL_TYPE: &str = "kubernetes.URL";

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    text: String,
    scheme: String,
    host: String,
    path: String,
    query: String,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        URL_TYPE
    }
    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.text.clone()))
    }
}

fn parse(s: &str) -> Result<Url, String> {
    let bad = |why: &str| format!("URL {s:?} is not valid: {why}");
    if s.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad("contains spaces or control characters"));
    }
    let no_frag = s.split_once('#').map_or(s, |(a, _)| a);
    let (rest, query) = no_frag.split_once('?').unwrap_or((no_frag, ""));
    let (scheme, host, path) =
        if let Some(path) = rest.strip_prefix('/').filter(|_| !rest.starts_with("//")) {
            (String::new(), String::new(), format!("/{path}"))
        } else {
            let (scheme, after) = rest
                .split_once("://")
                .ok_or_else(|| bad("must be an absolute URL or an absolute path"))?;
            let mut chars = scheme.chars();
            if !matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
                || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            {
                return Err(bad("invalid scheme"));
            }
            let (authority, path) = match after.find('/') {
                Some(i) => (&after[..i], after[i..].to_owned()),
                None => (after, String::new()),
            };
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, h)| h)
                .to_owned();
            (scheme.to_owned(), host, path)
        };
    Ok(Url {
        text: s.to_owned(),
        scheme,
        host,
        path,
        query: query.to_owned(),
    })
}

impl Url {
    fn hostname(&self) -> &str {
        if let Some(rest) = self.host.strip_prefix('[') {
            return rest.split_once(']').map_or(rest, |(h, _)| h);
        }
        self.host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(h, _)| h)
    }

    fn port(&self) -> &str {
        if self.host.starts_with('[') {
            return self.host.rsplit_once("]:").map_or("", |(_, p)| p);
        }
        self.host.rsplit_once(':').map_or("", |(_, p)| p)
    }
}

fn err(f: &str, m: impl ToString) -> ExecutionError {
    ExecutionError::function_error(f, m)
}

fn string(s: &str) -> Value {
    Value::String(Arc::new(s.to_owned()))
}

/// `url(string)`.
pub fn url(a: &[Value]) -> Result<Value, ExecutionError> {
    match a {
        [Value::String(s)] => parse(s)
            .map(|u| Value::Opaque(Arc::new(u)))
            .map_err(|e| err("url", e)),
        _ => Err(err("url", "expected a string")),
    }
}

/// `isURL(string)`.
pub fn is_url(a: &[Value]) -> Result<Value, ExecutionError> {
    match a {
        [Value::String(s)] => Ok(Value::Bool(parse(s).is_ok())),
        _ => Err(err("isURL", "expected a string")),
    }
}

/// URL getters by name.
pub fn getter(name: &'static str) -> impl Fn(&[Value]) -> Result<Value, ExecutionError> {
    move |a| {
        let u = match a.first() {
            Some(Value::Opaque(o)) => o
                .downcast_ref::<Url>()
                .ok_or_else(|| err(name, "expected a URL"))?,
            _ => return Err(err(name, "expected a URL")),
        };
        Ok(match name {
            "getScheme" => string(&u.scheme),
            "getHost" => string(&u.host),
            "getHostname" => string(u.hostname()),
            "getPort" => string(u.port()),
            "getEscapedPath" => string(&u.path),
            _ => {
                let mut q: HashMap<Key, Vec<Value>> = HashMap::new();
                for pair in u.query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    q.entry(Key::String(Arc::new(k.to_owned())))
                        .or_default()
                        .push(string(v));
                }
                let map = q
                    .into_iter()
                    .map(|(k, v)| (k, Value::List(Arc::new(v))))
                    .collect();
                Value::Map(Map { map: Arc::new(map) })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let u = parse("https://user@example.com:8443/a/b?x=1&x=2&y#frag").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.path.as_str()),
            ("https", "example.com:8443", "/a/b")
        );
        assert_eq!((u.hostname(), u.port()), ("example.com", "8443"));
        let v6 = parse("http://[::1]:80/").unwrap();
        assert_eq!((v6.hostname(), v6.port()), ("::1", "80"));
        assert_eq!(parse("/just/a/path").unwrap().path, "/just/a/path");
        for bad in ["example.com", "relative/path", "1http://x", "http://a b"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

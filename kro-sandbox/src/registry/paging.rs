//! Cutting a list into pages, as the real server's storage does
//! (`staging/src/k8s.io/apiserver/pkg/storage/continue.go`, `etcd3/store.go` `GetList`,
//! `cacher/cacher.go` `GetList`): continue tokens in the storage's own format, their
//! refusals, a token or version older than the compacted history, and which lists honour
//! `limit`.
//!
//! Objects are identified by their key below the listed collection's prefix: `name` in
//! one namespace or for cluster-scoped kinds, `namespace/name` across namespaces. Pages
//! follow the byte order of those keys, as etcd's ranges do.

use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// Go's `base64.RawURLEncoding`: no padding, and (not being `Strict`) trailing bits that
/// are not zero are accepted.
const RAW_URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// The only token version the storage writes and reads.
const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// The storage's refusal of a token, before `invalid continue token: ` is prefixed.
const GENERIC_INVALID: &str = "continue key is not valid";

/// What a list asks of the storage, from its options.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    /// `limit` (0: none).
    pub limit: usize,
    /// `continue`, when not empty.
    pub continue_token: Option<&'a str>,
    /// `resourceVersion`, when not empty.
    pub resource_version: Option<&'a str>,
    /// `resourceVersionMatch`, when not empty.
    pub resource_version_match: Option<&'a str>,
    /// Whether a label or field selector filters the list.
    pub filtered: bool,
}

/// The storage's versions at the time of the list.
#[derive(Debug, Clone, Copy)]
pub struct Versions {
    /// The current resourceVersion.
    pub current: u64,
    /// The newest resourceVersion whose history is gone (etcd's compaction).
    pub compacted: u64,
}

/// Where a page starts and at which version it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// Keys strictly after this one (a token's key without its trailing NUL), if any.
    pub after: Option<String>,
    /// The list's resourceVersion.
    pub rv: u64,
    /// Whether `limit` applies (the watch cache ignores it for `resourceVersion=0`).
    pub limited: bool,
}

/// One page cut from the matching candidates.
#[derive(Debug)]
pub struct Page {
    /// The items, in key order.
    pub items: Vec<Arc<str>>,
    /// The token for the next page.
    pub continue_token: Option<String>,
    /// How many objects follow the page, when no selector filtered it.
    pub remaining: Option<usize>,
}

/// A continue token: the version of the first page and the key after which to go on
/// (the key with a NUL appended, the smallest key after it).
pub fn encode(rv: i64, after_key: &str) -> String {
    let token = json!({"v": TOKEN_VERSION, "rv": rv, "start": format!("{after_key}\u{0}")});
    RAW_URL.encode(token.to_string())
}

/// Reads a token as `DecodeContinue` does; the error is the storage's wording.
pub fn decode(token: &str) -> Result<(i64, String), String> {
    let data = RAW_URL.decode(token).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => at,
            base64::DecodeError::InvalidLength(len) => len.saturating_sub(1),
            base64::DecodeError::InvalidPadding => token.find('=').unwrap_or_default(),
        };
        format!("{GENERIC_INVALID}: illegal base64 data at input byte {at}")
    })?;
    let v: Value = serde_json::from_slice(&data)
        .map_err(|e| format!("{GENERIC_INVALID}: {}", go_json_error(&data, &e)))?;
    let field = |k: &str| v.get(k).filter(|x| !x.is_null());
    let version = match field("v") {
        None => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(type_error("v", "string")),
    };
    let rv = match field("rv") {
        None => 0,
        Some(x) => x.as_i64().ok_or_else(|| type_error("rv", "int64"))?,
    };
    let start = match field("start") {
        None => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(type_error("start", "string")),
    };
    if version != TOKEN_VERSION {
        return Err(format!(
            "{GENERIC_INVALID}: server does not recognize this encoded version {version}"
        ));
    }
    if rv == 0 {
        return Err(format!(
            "{GENERIC_INVALID}: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ));
    }
    if start.is_empty() {
        return Err(format!(
            "{GENERIC_INVALID}: encoded start key empty (version meta.k8s.io/v1)"
        ));
    }
    // A key that would climb out of the listed collection is refused (`path.Clean`).
    let key = if start.starts_with('/') {
        start.to_owned()
    } else {
        format!("/{start}")
    };
    if clean_path(&key) != key {
        return Err(format!("{GENERIC_INVALID}: {start}"));
    }
    Ok((rv, key[1..].to_owned()))
}

/// `encoding/json`'s wording for the errors a token's text can have.
fn go_json_error(data: &[u8], e: &serde_json::Error) -> String {
    let first = data.iter().copied().find(|b| !b.is_ascii_whitespace());
    match first {
        None => "unexpected end of JSON input".to_owned(),
        Some(b) if !b"{[\"-0123456789tfn".contains(&b) => format!(
            "invalid character {} looking for beginning of value",
            go_char(b)
        ),
        Some(_) if e.is_eof() => "unexpected end of JSON input".to_owned(),
        Some(_) => e.to_string(),
    }
}

/// Go's `%q`-style quoting of a byte in JSON syntax errors.
fn go_char(b: u8) -> String {
    match b {
        b'\'' => "'\\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        0x20..=0x7e => format!("'{}'", b as char),
        _ => format!("'\\x{b:02x}'"),
    }
}

fn type_error(field: &str, ty: &str) -> String {
    format!(
        "{GENERIC_INVALID}: json: cannot unmarshal value into Go struct field continueToken.{field} of type {ty}"
    )
}

/// `path.Clean` for the absolute paths tokens carry.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The storage's 400 for a token it cannot read.
fn invalid_token(why: &str) -> ApiError {
    ApiError::bad_request(format!("invalid continue token: {why}"))
}

/// `errors.NewResourceExpired`.
fn expired(message: &str) -> ApiError {
    ApiError::new(410, "Expired", message)
}

/// Decides where a page starts and at which version, or refuses the request as the
/// storage does.
pub fn start(req: &PageRequest<'_>, versions: Versions) -> ApiResult<Start> {
    let rv_text = req.resource_version.unwrap_or_default();
    if let Some(token) = req.continue_token {
        // Continuations are served by etcd at the first page's revision.
        let (token_rv, key) = decode(token).map_err(|why| invalid_token(&why))?;
        if !rv_text.is_empty() && rv_text != "0" {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let after = key.strip_suffix('\u{0}').unwrap_or(&key).to_owned();
        let token_rv = u64::try_from(token_rv).ok();
        if let Some(rv) = token_rv
            && rv < versions.compacted
        {
            // etcd3/errors.go: the history of that revision is gone; the answer carries a
            // token that goes on at the latest revision.
            let mut err = expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            );
            err.list_continue = Some(
                RAW_URL.encode(json!({"v": TOKEN_VERSION, "rv": -1, "start": key}).to_string()),
            );
            return Err(err);
        }
        return Ok(Start {
            after: Some(after),
            rv: token_rv.unwrap_or(versions.current),
            limited: true,
        });
    }
    let requested = if rv_text.is_empty() {
        None
    } else {
        // The versioner's refusal reaches the client uninterpreted: a 500 without reason.
        Some(rv_text.parse::<u64>().map_err(|_| {
            ApiError::new(
                500,
                "",
                format!(
                    "resourceVersion: Invalid value: {rv_text:?}: strconv.ParseUint: parsing {rv_text:?}: invalid syntax"
                ),
            )
        })?)
    };
    let exact = match req.resource_version_match {
        Some("Exact") => true,
        // A limited list at a version, without a match, is the legacy exact read.
        None => req.limit > 0 && requested.is_some_and(|rv| rv > 0),
        _ => false,
    };
    match requested {
        Some(rv) if exact => {
            // etcd at that revision.
            if rv < versions.compacted {
                return Err(expired(
                    "The resourceVersion for the provided list is too old.",
                ));
            }
            Ok(Start {
                after: None,
                rv,
                limited: true,
            })
        }
        Some(rv) if rv > versions.current => {
            // The watch cache waits for the version, then gives up.
            Err(too_large(rv, versions.current))
        }
        // The watch cache ignores `limit` for `resourceVersion=0`.
        Some(0) => Ok(Start {
            after: None,
            rv: versions.current,
            limited: false,
        }),
        _ => Ok(Start {
            after: None,
            rv: versions.current,
            limited: true,
        }),
    }
}

/// `storage.NewTooLargeResourceVersionError`: a 504 asking to retry after a second.
pub fn too_large(wanted: u64, current: u64) -> ApiError {
    ApiError::new(
        504,
        "Timeout",
        format!("Timeout: Too large resource version: {wanted}, current: {current}"),
    )
    .with_details(json!({
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    }))
}

/// Cuts a page from `candidates` (key, text, whether it matches), which follow the
/// start in key order. The page ends when `limit` matching objects are taken; it has a
/// continuation when any object, matching or not, follows the last one taken, as both
/// etcd and the watch cache decide.
pub fn cut(
    candidates: impl Iterator<Item = (String, Arc<str>, bool)>,
    req: &PageRequest<'_>,
    start: &Start,
) -> Page {
    let limit = if start.limited { req.limit } else { 0 };
    let mut items = Vec::new();
    let mut last: Option<String> = None;
    let mut remaining = 0usize;
    for (key, text, matches) in candidates {
        if limit > 0 && items.len() >= limit {
            remaining += 1;
            continue;
        }
        if matches {
            items.push(text);
            last = Some(key);
        }
    }
    let continue_token = match (&last, remaining) {
        (Some(k), r) if r > 0 => Some(encode(i64::try_from(start.rv).unwrap_or(i64::MAX), k)),
        _ => None,
    };
    Page {
        remaining: continue_token
            .as_ref()
            .filter(|_| !req.filtered)
            .map(|_| remaining),
        items,
        continue_token,
    }
}

/// Whether `key` comes after a page's start.
pub fn after(key: &str, start: &Start) -> bool {
    start
        .after
        .as_deref()
        .is_none_or(|a| key.as_bytes() > a.as_bytes())
}

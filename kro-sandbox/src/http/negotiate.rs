//! Content negotiation: which representation of objects the client asked for, and in which
//! media type (JSON, or protobuf for built-in kinds).

use super::Call;
use super::protobuf;
use crate::error::ApiError;

/// The media type of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json` (also what `application/yaml` and `*/*` get here).
    Json,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
}

/// The media types a resource's objects are served in, in the real server's words.
fn accepted(protobuf_capable: bool) -> &'static str {
    if protobuf_capable {
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
    } else {
        "application/json, application/yaml"
    }
}

/// The answer's media type from the `Accept` header, the client's first acceptable entry
/// winning. Protobuf is offered only for kinds that have a protobuf form (built-in kinds)
/// and for plain objects (Tables and metadata-only answers are JSON); an `Accept` with no
/// acceptable entry is the real server's 406.
pub fn media(call: &Call, protobuf_capable: bool) -> Result<Media, ApiError> {
    let Some(accept) = call.header("accept").filter(|a| !a.trim().is_empty()) else {
        return Ok(Media::Json);
    };
    for entry in accept.split(',') {
        let mut params = entry.split(';').map(str::trim);
        let media_type = params.next().unwrap_or_default().to_ascii_lowercase();
        let params: Vec<&str> = params.collect();
        if params.iter().any(|p| p.replace(' ', "") == "q=0") {
            continue;
        }
        let transformed = params.iter().any(|p| p.starts_with("as="));
        match media_type.as_str() {
            protobuf::MEDIA_TYPE if protobuf_capable && !transformed => {
                return Ok(Media::Protobuf);
            }
            protobuf::MEDIA_TYPE => {}
            "application/json" | "application/yaml" | "application/*" | "*/*" => {
                return Ok(Media::Json);
            }
            _ => {}
        }
    }
    Err(ApiError::new(
        406,
        "NotAcceptable",
        format!(
            "only the following media types are accepted: {}",
            accepted(protobuf_capable)
        ),
    ))
}

/// The `415` for a request body in a media type the resource does not read.
pub fn unsupported_body(content_type: &str, protobuf_capable: bool) -> Option<ApiError> {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let readable = base.is_empty()
        || base == "application/json"
        || base.contains("yaml")
        || (base == protobuf::MEDIA_TYPE && protobuf_capable);
    if readable {
        return None;
    }
    Some(
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted(protobuf_capable)
            ),
        )
        .with_details(serde_json::json!({})),
    )
}

/// How objects are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves (JSON).
    Object,
    /// A `meta.k8s.io` `Table` (`as=Table`), what `kubectl get` prints.
    Table,
    /// `PartialObjectMetadata` / `PartialObjectMetadataList`: only metadata.
    Metadata,
}

/// What the `Accept` header asks for. The first acceptable entry wins, as in the real
/// server's negotiation; unknown `as=` entries are skipped.
pub fn representation(call: &Call) -> Representation {
    let Some(accept) = call.header("accept") else {
        return Representation::Object;
    };
    for entry in accept.split(',') {
        let params: Vec<&str> = entry.split(';').map(str::trim).collect();
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        match as_ {
            Some("Table") => return Representation::Table,
            Some("PartialObjectMetadata" | "PartialObjectMetadataList") => {
                return Representation::Metadata;
            }
            Some(_) => {}
            None => return Representation::Object,
        }
    }
    Representation::Object
}

/// What a Table row carries as its object (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// Only metadata (the default).
    Metadata,
    /// The whole object.
    Object,
    /// Nothing.
    None,
}

/// The `includeObject` table option.
pub fn include_object(call: &Call) -> IncludeObject {
    match call.q("includeObject") {
        Some("Object") => IncludeObject::Object,
        Some("None") => IncludeObject::None,
        _ => IncludeObject::Metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, Method};

    fn call(accept: &str) -> Call {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_str(accept).expect("header"));
        Call {
            method: Method::GET,
            query: Default::default(),
            headers,
            body: Default::default(),
            user: crate::auth::UserInfo::default(),
        }
    }

    #[test]
    fn protobuf_only_for_kinds_that_have_it() {
        let pb = "application/vnd.kubernetes.protobuf, */*";
        assert_eq!(media(&call(pb), true), Ok(Media::Protobuf));
        assert_eq!(media(&call(pb), false), Ok(Media::Json));
        let only = "application/vnd.kubernetes.protobuf";
        assert_eq!(media(&call(only), false).map_err(|e| e.code), Err(406));
        let table =
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json";
        assert_eq!(media(&call(table), true), Ok(Media::Json));
        assert!(unsupported_body("application/vnd.kubernetes.protobuf", true).is_none());
        assert_eq!(
            unsupported_body("application/vnd.kubernetes.protobuf", false).map(|e| e.code),
            Some(415)
        );
    }

    #[test]
    fn kubectl_accept_headers() {
        let t = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(representation(&call(t)), Representation::Table);
        let m = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json";
        assert_eq!(representation(&call(m)), Representation::Metadata);
        assert_eq!(
            representation(&call("application/json")),
            Representation::Object
        );
    }
}

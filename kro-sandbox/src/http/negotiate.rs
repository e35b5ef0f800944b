//! Content negotiation: which representation of objects the client asked for.

use super::Call;

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

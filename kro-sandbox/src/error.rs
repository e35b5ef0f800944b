//! API errors rendered as `meta.k8s.io/v1` `Status` objects, worded like the real server.

use serde_json::{Map, Value, json};

/// One field error inside an `Invalid` status (`details.causes[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// Machine reason, e.g. `FieldValueInvalid`.
    pub reason: String,
    /// Human message without the field prefix, e.g. `Invalid value: "x": ...`.
    pub message: String,
    /// Dotted field path, e.g. `spec.replicas`.
    pub field: String,
}

impl Cause {
    /// A cause with the given reason, field and message.
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_owned(),
            message: message.into(),
            field: field.into(),
        }
    }

    /// `FieldValueRequired` with the conventional message.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Self::new("FieldValueRequired", field, message)
    }

    /// `FieldValueInvalid` quoting the rejected value like Go's `%#v`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        let message = format!("Invalid value: {}: {detail}", go_quote(value));
        Self::new("FieldValueInvalid", field, message)
    }

    /// `FieldValueForbidden`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self::new("FieldValueForbidden", field, format!("Forbidden: {detail}"))
    }

    fn to_json(&self) -> Value {
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }

    /// `field: message`, as the server joins them into a status message.
    pub fn render(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// Formats a JSON value the way Go's validation messages quote values.
pub fn go_quote(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        Value::Object(_) => "\"object\"".to_owned(),
        Value::Array(_) => "\"array\"".to_owned(),
        other => other.to_string(),
    }
}

/// A failed API call: becomes a `Status` body with the same HTTP code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`, empty when the real server sends none.
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the real server sends one (boxed to keep results small).
    pub details: Option<Box<Value>>,
    /// `Status.metadata.continue`: a token to go on with after an expired one.
    pub list_continue: Option<String>,
}

/// Identifies the resource an error is about, for `details`.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// API group ("" for core).
    pub group: &'a str,
    /// Plural resource name.
    pub plural: &'a str,
    /// Object name.
    pub name: &'a str,
}

impl Target<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn details(&self) -> Value {
        let mut d = Map::new();
        if !self.name.is_empty() {
            d.insert("name".into(), json!(self.name));
        }
        if !self.group.is_empty() {
            d.insert("group".into(), json!(self.group));
        }
        d.insert("kind".into(), json!(self.plural));
        Value::Object(d)
    }
}

impl ApiError {
    /// A bare error with code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
            list_continue: None,
        }
    }

    /// Attaches `details`.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// 404 for a named object.
    pub fn not_found(t: Target<'_>) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", t.qualified(), t.name),
        )
        .with_details(t.details())
    }

    /// 404 for a path the server does not serve.
    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(t: Target<'_>) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", t.qualified(), t.name),
        )
        .with_details(t.details())
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict(t: Target<'_>) -> Self {
        Self::conflict_msg(
            t,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a specific explanation.
    pub fn conflict_msg(t: Target<'_>, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {why}",
                t.qualified(),
                t.name
            ),
        )
        .with_details(t.details())
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422 Invalid with causes; `kind` is the object's kind.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let joined = match causes.as_slice() {
            [one] => one.render(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(Cause::render)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut d = Map::new();
        if !name.is_empty() {
            d.insert("name".into(), json!(name));
        }
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        d.insert(
            "causes".into(),
            Value::Array(causes.iter().map(Cause::to_json).collect()),
        );
        let kind_label = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        Self::new(
            422,
            "Invalid",
            format!("{kind_label} \"{name}\" is invalid: {joined}"),
        )
        .with_details(Value::Object(d))
    }

    /// 405 for a method no route of the path serves: the real server's router answers
    /// it generically, without naming the resource.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    /// 415 for a media type the server cannot decode at all.
    pub fn unsupported_media_type() -> Self {
        Self::new(415, "UnsupportedMediaType", "415: Unsupported Media Type")
            .with_details(json!({}))
    }

    /// 410 Gone for a resourceVersion older than the kept history.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 500 for anything that should not happen.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 401 when the bearer token is missing or wrong.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert(
            "metadata".into(),
            match &self.list_continue {
                Some(c) => json!({"continue": c}),
                None => json!({}),
            },
        );
        m.insert("status".into(), json!("Failure"));
        m.insert("message".into(), json!(self.message));
        if !self.reason.is_empty() {
            m.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), (**d).clone());
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }
}

/// Result alias for API handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_for_group_resources_qualifies_the_plural() {
        let e = ApiError::not_found(Target {
            group: "apps",
            plural: "deployments",
            name: "web",
        });
        let s = e.to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(
            s["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
    }

    #[test]
    fn invalid_with_several_causes_lists_them_in_brackets() {
        let e = ApiError::invalid(
            "",
            "ConfigMap",
            "x",
            vec![Cause::required("a", ""), Cause::required("b", "")],
        );
        assert_eq!(
            e.message,
            "ConfigMap \"x\" is invalid: [a: Required value, b: Required value]"
        );
    }
}

//! The create-only review kinds: SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectAccessReview, SelfSubjectRulesReview (`authorization.k8s.io/v1`) and
//! SelfSubjectReview, TokenReview (`authentication.k8s.io/v1`). Nothing is stored: each
//! answer is the request with its `status` filled in, as the server's registries do.

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::route::ResourcePath;
use super::{Call, body, json_response, status_response};
use crate::auth::{TokenSubject, UserInfo};
use crate::authz::{self, Attributes, Decision};
use crate::error::{ApiError, Cause};
use crate::state::Shared;

const AUTHZ: &str = "authorization.k8s.io";
const AUTHN: &str = "authentication.k8s.io";

/// A review kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// `subjectaccessreviews`.
    Subject,
    /// `localsubjectaccessreviews`.
    LocalSubject,
    /// `selfsubjectaccessreviews`.
    SelfSubject,
    /// `selfsubjectrulesreviews`.
    SelfRules,
    /// `selfsubjectreviews`.
    SelfUser,
    /// `tokenreviews`.
    Token,
}

impl Review {
    /// The review a resource path addresses, if any.
    pub fn of(rp: &ResourcePath) -> Option<Self> {
        match (rp.group.as_str(), rp.plural.as_str()) {
            (AUTHZ, "subjectaccessreviews") => Some(Self::Subject),
            (AUTHZ, "localsubjectaccessreviews") => Some(Self::LocalSubject),
            (AUTHZ, "selfsubjectaccessreviews") => Some(Self::SelfSubject),
            (AUTHZ, "selfsubjectrulesreviews") => Some(Self::SelfRules),
            (AUTHN, "selfsubjectreviews") => Some(Self::SelfUser),
            (AUTHN, "tokenreviews") => Some(Self::Token),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Subject => "SubjectAccessReview",
            Self::LocalSubject => "LocalSubjectAccessReview",
            Self::SelfSubject => "SelfSubjectAccessReview",
            Self::SelfRules => "SelfSubjectRulesReview",
            Self::SelfUser => "SelfSubjectReview",
            Self::Token => "TokenReview",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Self::SelfUser | Self::Token => AUTHN,
            _ => AUTHZ,
        }
    }
}

fn is_empty<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `spec.resourceAttributes`, fields in the server's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceAttributes {
    #[serde(default, skip_serializing_if = "is_empty")]
    namespace: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    verb: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    group: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    version: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    resource: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    subresource: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field_selector: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label_selector: Option<Value>,
}

/// `spec.nonResourceAttributes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct NonResourceAttributes {
    #[serde(default, skip_serializing_if = "is_empty")]
    path: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    verb: String,
}

impl NonResourceAttributes {
    /// How the server's validation prints the struct (`%#v` of the internal type).
    fn go_value(&self) -> String {
        format!(
            "authorization.NonResourceAttributes{{Path:{}, Verb:{}}}",
            quote(&self.path),
            quote(&self.verb)
        )
    }
}

/// The spec of the access reviews (self reviews use only the attributes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_attributes: Option<ResourceAttributes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    non_resource_attributes: Option<NonResourceAttributes>,
    #[serde(default, skip_serializing_if = "is_empty")]
    user: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    extra: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "is_empty")]
    uid: String,
}

fn quote(s: &str) -> String {
    crate::error::go_quote(&Value::String(s.to_owned()))
}

/// Serves a review request.
pub fn serve(sh: &Shared, review: Review, rp: &ResourcePath, call: &Call) -> Response {
    if rp.name.is_some() || rp.sub.is_some() {
        return status_response(&ApiError::not_found_path());
    }
    if call.method != Method::POST {
        return status_response(&ApiError::method_not_allowed());
    }
    match answer(sh, review, rp, call) {
        Ok(v) => json_response(201, &v),
        Err(e) => status_response(&e),
    }
}

fn answer(sh: &Shared, review: Review, rp: &ResourcePath, call: &Call) -> Result<Value, ApiError> {
    let content_type = call.header("content-type").unwrap_or("application/json");
    let obj = body::decode(&call.body, content_type, review.kind())?.value;
    let mut meta = obj
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if review == Review::LocalSubject {
        let url_ns = rp.namespace.clone().unwrap_or_default();
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), json!(url_ns));
            }
            Some(ns) if ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            Some(_) => {}
        }
    }
    meta.remove("managedFields");
    meta.insert("creationTimestamp".into(), Value::Null);
    let raw_spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let (spec, status) = match review {
        Review::Subject | Review::LocalSubject | Review::SelfSubject => {
            let spec: Spec = serde_json::from_value(raw_spec)
                .map_err(|e| ApiError::bad_request(format!("spec: {e}")))?;
            validate(review, &spec, &meta)?;
            if review == Review::LocalSubject {
                let url_ns = rp.namespace.clone().unwrap_or_default();
                if url_ns.is_empty() {
                    return Err(ApiError::bad_request(
                        "namespace is required on this type: ",
                    ));
                }
            }
            let user = if review == Review::SelfSubject {
                call.user.clone()
            } else {
                UserInfo {
                    name: spec.user.clone(),
                    uid: spec.uid.clone(),
                    groups: spec.groups.clone(),
                    extra: spec.extra.clone(),
                }
            };
            let attrs = attributes(user, &spec);
            let verdict = authz::authorize(&*sh.data_read(), &attrs);
            let mut status = Map::new();
            status.insert("allowed".into(), json!(verdict.decision == Decision::Allow));
            if verdict.decision == Decision::Deny {
                status.insert("denied".into(), json!(true));
            }
            if !verdict.reason.is_empty() {
                status.insert("reason".into(), json!(verdict.reason));
            }
            let spec = if review == Review::SelfSubject {
                let mut s = Map::new();
                if let Some(r) = &spec.resource_attributes {
                    s.insert("resourceAttributes".into(), json!(r));
                }
                if let Some(n) = &spec.non_resource_attributes {
                    s.insert("nonResourceAttributes".into(), json!(n));
                }
                Value::Object(s)
            } else {
                json!(spec)
            };
            (spec, Value::Object(status))
        }
        Review::SelfRules => {
            let namespace = raw_spec
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if namespace.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            let set = authz::rules_for(&*sh.data_read(), &call.user, &namespace);
            let mut resource_rules = Vec::new();
            let mut non_resource_rules = Vec::new();
            for r in &set.rules {
                if r.resources.as_ref().is_some_and(|v| !v.is_empty()) {
                    let mut m = Map::new();
                    m.insert("verbs".into(), json!(r.verbs));
                    for (k, v) in [
                        ("apiGroups", &r.api_groups),
                        ("resources", &r.resources),
                        ("resourceNames", &r.resource_names),
                    ] {
                        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                            m.insert(k.into(), json!(v));
                        }
                    }
                    resource_rules.push(Value::Object(m));
                }
                if let Some(urls) = r.non_resource_urls.as_ref().filter(|v| !v.is_empty()) {
                    non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": urls}));
                }
            }
            let mut status = Map::new();
            status.insert("resourceRules".into(), json!(resource_rules));
            status.insert("nonResourceRules".into(), json!(non_resource_rules));
            status.insert("incomplete".into(), json!(false));
            if !set.errors.is_empty() {
                status.insert(
                    "evaluationError".into(),
                    json!(authz::rbac::aggregate(&set.errors)),
                );
            }
            // The server answers a new object: the request's spec is not echoed.
            (json!({}), Value::Object(status))
        }
        Review::SelfUser => (Value::Null, json!({"userInfo": call.user.to_json()})),
        Review::Token => {
            let token = raw_spec
                .get("token")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let user = resolve_token(sh, token);
            let mut status = Map::new();
            match user {
                Some(u) => {
                    status.insert("authenticated".into(), json!(true));
                    status.insert("user".into(), u.to_json());
                }
                None => {
                    status.insert("user".into(), json!({}));
                    status.insert("error".into(), json!("[invalid bearer token]"));
                }
            }
            (raw_spec, Value::Object(status))
        }
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!(review.kind()));
    out.insert("apiVersion".into(), json!(format!("{}/v1", review.group())));
    out.insert(
        "metadata".into(),
        if review == Review::SelfRules || review == Review::SelfUser {
            json!({"creationTimestamp": null})
        } else {
            Value::Object(meta)
        },
    );
    if !spec.is_null() {
        out.insert("spec".into(), spec);
    }
    out.insert("status".into(), status);
    Ok(Value::Object(out))
}

fn resolve_token(sh: &Shared, token: &str) -> Option<UserInfo> {
    if token.is_empty() {
        return None;
    }
    if sh.opts.token.as_deref() == Some(token) {
        return Some(UserInfo::admin());
    }
    match sh.tokens.get(token)? {
        TokenSubject::User(u) => Some(u.authenticated()),
        TokenSubject::ServiceAccount { namespace, name } => {
            let key = (String::new(), "serviceaccounts".to_owned());
            sh.data_read()
                .get(&key, &(namespace.clone(), name.clone()))?;
            Some(UserInfo::service_account(&namespace, &name))
        }
    }
}

/// The authorizer attributes a review's spec asks about.
fn attributes(user: UserInfo, spec: &Spec) -> Attributes {
    if let Some(r) = &spec.resource_attributes {
        return Attributes {
            user,
            verb: r.verb.clone(),
            resource_request: true,
            namespace: r.namespace.clone(),
            api_group: r.group.clone(),
            api_version: if r.version.is_empty() {
                "*".to_owned()
            } else {
                r.version.clone()
            },
            resource: r.resource.clone(),
            subresource: r.subresource.clone(),
            name: r.name.clone(),
            path: String::new(),
        };
    }
    let n = spec.non_resource_attributes.clone().unwrap_or_default();
    Attributes {
        user,
        verb: n.verb,
        path: n.path,
        ..Attributes::default()
    }
}

/// The server's validation of access reviews.
fn validate(review: Review, spec: &Spec, meta: &Map<String, Value>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let invalid = |field: &str, value: String, detail: &str| {
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {value}: {detail}"),
        )
    };
    match (&spec.resource_attributes, &spec.non_resource_attributes) {
        (Some(_), Some(n)) => causes.push(invalid(
            "spec.nonResourceAttributes",
            n.go_value(),
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => causes.push(invalid(
            "spec.resourceAttributes",
            quote("null"),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
    if review != Review::SelfSubject && spec.user.is_empty() && spec.groups.is_empty() {
        causes.push(invalid(
            "spec.user",
            quote(&spec.user),
            "at least one of user or group must be specified",
        ));
    }
    if review == Review::LocalSubject {
        let ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(r) = &spec.resource_attributes
            && r.namespace != ns
        {
            causes.push(invalid(
                "spec.resourceAttributes.namespace",
                quote(&r.namespace),
                "must match metadata.namespace",
            ));
        }
        if let Some(n) = &spec.non_resource_attributes {
            causes.push(invalid(
                "spec.nonResourceAttributes",
                n.go_value(),
                "disallowed on this kind of request",
            ));
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    // The registry validates the internal object, whose type meta decoding left empty:
    // the status names the group only.
    let mut e = ApiError::invalid(review.group(), "", "", causes);
    if let Some(d) = e.details.as_mut().and_then(|d| d.as_object_mut()) {
        d.remove("kind");
    }
    Err(e)
}

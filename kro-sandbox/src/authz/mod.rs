//! Authorization: the attributes of a request, the server's default authorizer chain
//! (privileged groups, then RBAC) and the `Forbidden` answers worded like the real server.
//!
//! Nothing here knows about HTTP: the edge filters build [`Attributes`] from a request,
//! and the access-review endpoints build them from a review's spec.

pub mod aggregation;
pub mod bootstrap;
pub mod rbac;

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{Map, Value, json};

use crate::auth::{SYSTEM_MASTERS, UserInfo};
use crate::error::ApiError;
use rbac::PolicySource;

/// What a request asks to do, as the server's `authorizer.Attributes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// The verb: `get`, `list`, `watch`, `create`, ... or a lower-case HTTP method for
    /// non-resource paths.
    pub verb: String,
    /// Whether this is a resource request (else a non-resource path).
    pub resource_request: bool,
    /// Namespace, empty for cluster scope.
    pub namespace: String,
    /// API group.
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name.
    pub name: String,
    /// The URL path of a non-resource request.
    pub path: String,
}

/// An authorizer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Explicitly denied (RBAC never denies).
    Deny,
    /// No authorizer allowed it.
    NoOpinion,
}

/// A verdict with the authorizer's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// Why, in the authorizer's words (may be empty).
    pub reason: String,
}

impl Verdict {
    /// Whether the request may proceed.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }
}

/// The server's authorizer chain: `system:masters` is always allowed, then RBAC decides.
pub fn authorize(src: &impl PolicySource, attrs: &Attributes) -> Verdict {
    if attrs.user.in_group(SYSTEM_MASTERS) {
        return Verdict {
            decision: Decision::Allow,
            reason: String::new(),
        };
    }
    rbac::authorize(src, attrs)
}

/// The rules a user holds in a namespace, as a rules review reports them: the privileged
/// groups' catch-all rules, then every RBAC rule; with the resolution errors met.
pub fn rules_for(src: &impl PolicySource, user: &UserInfo, namespace: &str) -> RuleSet {
    let mut set = RuleSet::default();
    if user.in_group(SYSTEM_MASTERS) {
        set.rules.push(PolicyRule {
            verbs: vec!["*".into()],
            api_groups: Some(vec!["*".into()]),
            resources: Some(vec!["*".into()]),
            ..PolicyRule::default()
        });
        set.rules.push(PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: Some(vec!["*".into()]),
            ..PolicyRule::default()
        });
    }
    let (rules, errors) = rbac::rules_for(src, user, namespace);
    set.rules.extend(rules);
    set.errors = errors;
    set
}

/// Rules and resolution errors of [`rules_for`].
#[derive(Debug, Default)]
pub struct RuleSet {
    /// The rules.
    pub rules: Vec<PolicyRule>,
    /// Errors met resolving them (missing roles and the like).
    pub errors: Vec<String>,
}

/// Replaces what could read as HTML in an error message, as the server does.
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Go's `%q` for the plain strings of these messages.
fn q(s: &str) -> String {
    crate::error::go_quote(&Value::String(s.to_owned()))
}

/// The sentence of a denial: `User "u" cannot get resource "pods" in API group "" ...`.
pub fn forbidden_message(attrs: &Attributes) -> String {
    let user = q(&attrs.user.name);
    if !attrs.resource_request {
        return format!("User {user} cannot {} path {}", attrs.verb, q(&attrs.path));
    }
    let mut resource = attrs.resource.clone();
    if !attrs.subresource.is_empty() {
        resource = format!("{resource}/{}", attrs.subresource);
    }
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace {}", q(&attrs.namespace))
    };
    format!(
        "User {user} cannot {} resource {} in API group {} {scope}",
        attrs.verb,
        q(&resource),
        q(&attrs.api_group)
    )
}

/// The 403 `Forbidden` status the server answers a denied request with.
pub fn forbidden(attrs: &Attributes, reason: &str) -> ApiError {
    let msg = sanitize(&forbidden_message(attrs));
    let err = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    let (group, resource, name) = (&attrs.api_group, &attrs.resource, &attrs.name);
    let qualified = if group.is_empty() {
        resource.clone()
    } else {
        format!("{resource}.{group}")
    };
    let message = if group.is_empty() && resource.is_empty() {
        format!("forbidden: {err}")
    } else if name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {} is forbidden: {err}", q(name))
    };
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    if !resource.is_empty() {
        details.insert("kind".into(), json!(resource));
    }
    ApiError::new(403, "Forbidden", message).with_details(Value::Object(details))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa() -> UserInfo {
        UserInfo::service_account("team-a", "deployer")
    }

    #[test]
    fn forbidden_messages_follow_the_server() {
        let a = Attributes {
            user: sa(),
            verb: "get".into(),
            resource_request: true,
            namespace: "team-a".into(),
            api_group: "apps".into(),
            api_version: "v1".into(),
            resource: "deployments".into(),
            name: "web".into(),
            ..Attributes::default()
        };
        let e = forbidden(&a, "");
        assert_eq!(
            e.message,
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:team-a:deployer\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"team-a\""
        );
        assert_eq!(
            e.to_status()["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        let list = Attributes {
            verb: "list".into(),
            namespace: String::new(),
            api_group: String::new(),
            resource: "namespaces".into(),
            name: String::new(),
            ..a.clone()
        };
        assert_eq!(
            forbidden(&list, "").message,
            "namespaces is forbidden: User \"system:serviceaccount:team-a:deployer\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
        let status = Attributes {
            subresource: "status".into(),
            ..a.clone()
        };
        assert!(
            forbidden(&status, "")
                .message
                .contains("cannot get resource \"deployments/status\"")
        );
        let path = Attributes {
            user: UserInfo::new("x", &[]),
            verb: "get".into(),
            path: "/version".into(),
            ..Attributes::default()
        };
        let e = forbidden(&path, "");
        assert_eq!(
            e.message,
            "forbidden: User \"x\" cannot get path \"/version\""
        );
        assert_eq!(e.to_status()["details"], json!({}));
    }
}

//! The RBAC authorizer: which bindings apply to a user, the rules of the roles they
//! reference, and whether a rule covers a request, with the reasons the server gives.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use serde::de::DeserializeOwned;

use super::{Attributes, Decision, Verdict};
use crate::auth::{UserInfo, service_account_username};
use crate::storage::Data;

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// Where RBAC objects come from (the sandbox's storage, or fixtures in tests).
pub trait PolicySource {
    /// Every ClusterRoleBinding.
    fn cluster_role_bindings(&self) -> Vec<ClusterRoleBinding>;
    /// The RoleBindings of a namespace.
    fn role_bindings(&self, namespace: &str) -> Vec<RoleBinding>;
    /// One ClusterRole.
    fn cluster_role(&self, name: &str) -> Option<ClusterRole>;
    /// One Role.
    fn role(&self, namespace: &str, name: &str) -> Option<Role>;
}

fn parse<T: DeserializeOwned>(text: &str) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(error = %e, "stored RBAC object unreadable; ignored");
            None
        }
    }
}

fn res(plural: &str) -> (String, String) {
    (GROUP.to_owned(), plural.to_owned())
}

impl PolicySource for Data {
    fn cluster_role_bindings(&self) -> Vec<ClusterRoleBinding> {
        self.list(&res("clusterrolebindings"), None)
            .filter_map(|(_, s)| parse(&s.json))
            .collect()
    }

    fn role_bindings(&self, namespace: &str) -> Vec<RoleBinding> {
        self.list(&res("rolebindings"), Some(namespace))
            .filter_map(|(_, s)| parse(&s.json))
            .collect()
    }

    fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
        let s = self.get(&res("clusterroles"), &(String::new(), name.to_owned()))?;
        parse(&s.json)
    }

    fn role(&self, namespace: &str, name: &str) -> Option<Role> {
        let s = self.get(&res("roles"), &(namespace.to_owned(), name.to_owned()))?;
        parse(&s.json)
    }
}

/// Whether a rule's verbs cover a verb.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

/// Whether a rule's API groups cover a group.
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups
        .iter()
        .flatten()
        .any(|g| g == "*" || g == group)
}

/// Whether a rule's resources cover `resource[/subresource]` (also `*` and `*/sub`).
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().flatten().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// Whether a rule's resource names cover a name (no names means every name).
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    match &rule.resource_names {
        None => true,
        Some(names) if names.is_empty() => true,
        Some(names) => names.iter().any(|n| n == name),
    }
}

/// Whether a rule's non-resource URLs cover a path (`*` and trailing-`*` prefixes).
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().flatten().any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// Whether one rule allows the request.
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    if attrs.resource_request {
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        return verb_matches(rule, &attrs.verb)
            && api_group_matches(rule, &attrs.api_group)
            && resource_matches(rule, &combined, &attrs.subresource)
            && resource_name_matches(rule, &attrs.name);
    }
    verb_matches(rule, &attrs.verb) && non_resource_url_matches(rule, &attrs.path)
}

fn applies_to(user: &UserInfo, subject: &Subject, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let sa_ns = subject
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            !sa_ns.is_empty() && user.name == service_account_username(sa_ns, &subject.name)
        }
        _ => false,
    }
}

fn first_applying<'a>(
    user: &UserInfo,
    subjects: Option<&'a Vec<Subject>>,
    namespace: &str,
) -> Option<&'a Subject> {
    subjects
        .into_iter()
        .flatten()
        .find(|s| applies_to(user, s, namespace))
}

fn describe_subject(s: &Subject, binding_ns: &str) -> String {
    match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            format!("{} {}", s.kind, quote(&format!("{}/{ns}", s.name)))
        }
        _ => format!("{} {}", s.kind, quote(&s.name)),
    }
}

fn quote(s: &str) -> String {
    crate::error::go_quote(&serde_json::Value::String(s.to_owned()))
}

/// The rules a role reference names, or the error the server reports for it.
fn role_ref_rules(
    src: &impl PolicySource,
    role_ref: &RoleRef,
    binding_ns: &str,
) -> Result<Vec<PolicyRule>, String> {
    match role_ref.kind.as_str() {
        "Role" => src
            .role(binding_ns, &role_ref.name)
            .map(|r| r.rules.unwrap_or_default())
            .ok_or_else(|| format!("role.{GROUP} {} not found", quote(&role_ref.name))),
        "ClusterRole" => src
            .cluster_role(&role_ref.name)
            .map(|r| r.rules.unwrap_or_default())
            .ok_or_else(|| format!("clusterrole.{GROUP} {} not found", quote(&role_ref.name))),
        other => Err(format!("unsupported role reference kind: {}", quote(other))),
    }
}

/// Visits every rule that applies to a user in a namespace, with the description of the
/// binding it comes from; resolution errors go to `on_error`. Stops when `visit` says so.
fn visit_rules(
    src: &impl PolicySource,
    user: &UserInfo,
    namespace: &str,
    mut visit: impl FnMut(&dyn Fn() -> String, &PolicyRule) -> bool,
    mut on_error: impl FnMut(String),
) {
    for crb in src.cluster_role_bindings() {
        let Some(subject) = first_applying(user, crb.subjects.as_ref(), "") else {
            continue;
        };
        let rules = match role_ref_rules(src, &crb.role_ref, "") {
            Ok(r) => r,
            Err(e) => {
                on_error(e);
                continue;
            }
        };
        let describe = || {
            format!(
                "ClusterRoleBinding {} of {} {} to {}",
                quote(crb.metadata.name.as_deref().unwrap_or_default()),
                crb.role_ref.kind,
                quote(&crb.role_ref.name),
                describe_subject(subject, "")
            )
        };
        for rule in &rules {
            if !visit(&describe, rule) {
                return;
            }
        }
    }
    if namespace.is_empty() {
        return;
    }
    for rb in src.role_bindings(namespace) {
        let Some(subject) = first_applying(user, rb.subjects.as_ref(), namespace) else {
            continue;
        };
        let rules = match role_ref_rules(src, &rb.role_ref, namespace) {
            Ok(r) => r,
            Err(e) => {
                on_error(e);
                continue;
            }
        };
        let describe = || {
            let name = rb.metadata.name.as_deref().unwrap_or_default();
            format!(
                "RoleBinding {} of {} {} to {}",
                quote(&format!("{name}/{namespace}")),
                rb.role_ref.kind,
                quote(&rb.role_ref.name),
                describe_subject(subject, namespace)
            )
        };
        for rule in &rules {
            if !visit(&describe, rule) {
                return;
            }
        }
    }
}

/// Joins errors as the server's error aggregate prints them (duplicates once, brackets
/// around more than one).
pub fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// RBAC's decision: allowed with the binding that allows it, else no opinion with the
/// resolution errors met, if any.
pub fn authorize(src: &impl PolicySource, attrs: &Attributes) -> Verdict {
    let mut allowed_by: Option<String> = None;
    let mut errors = Vec::new();
    visit_rules(
        src,
        &attrs.user,
        &attrs.namespace,
        |describe, rule| {
            if rule_allows(attrs, rule) {
                allowed_by = Some(describe());
                return false;
            }
            true
        },
        |e| errors.push(e),
    );
    if let Some(source) = allowed_by {
        return Verdict {
            decision: Decision::Allow,
            reason: format!("RBAC: allowed by {source}"),
        };
    }
    let reason = if errors.is_empty() {
        String::new()
    } else {
        format!("RBAC: {}", aggregate(&errors))
    };
    Verdict {
        decision: Decision::NoOpinion,
        reason,
    }
}

/// Every rule that applies to a user in a namespace, and the resolution errors.
pub fn rules_for(
    src: &impl PolicySource,
    user: &UserInfo,
    namespace: &str,
) -> (Vec<PolicyRule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    visit_rules(
        src,
        user,
        namespace,
        |_, rule| {
            rules.push(rule.clone());
            true
        },
        |e| errors.push(e),
    );
    (rules, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Default)]
    struct Fixture {
        crbs: Vec<ClusterRoleBinding>,
        rbs: Vec<RoleBinding>,
        crs: Vec<ClusterRole>,
        roles: Vec<Role>,
    }

    impl PolicySource for Fixture {
        fn cluster_role_bindings(&self) -> Vec<ClusterRoleBinding> {
            self.crbs.clone()
        }
        fn role_bindings(&self, namespace: &str) -> Vec<RoleBinding> {
            self.rbs
                .iter()
                .filter(|b| b.metadata.namespace.as_deref() == Some(namespace))
                .cloned()
                .collect()
        }
        fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
            self.crs
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
                .cloned()
        }
        fn role(&self, namespace: &str, name: &str) -> Option<Role> {
            self.roles
                .iter()
                .find(|r| {
                    r.metadata.name.as_deref() == Some(name)
                        && r.metadata.namespace.as_deref() == Some(namespace)
                })
                .cloned()
        }
    }

    fn from<T: DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("fixture")
    }

    fn attrs(user: UserInfo, verb: &str, ns: &str, group: &str, res: &str) -> Attributes {
        Attributes {
            user,
            verb: verb.into(),
            resource_request: true,
            namespace: ns.into(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: res.into(),
            ..Attributes::default()
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_names_and_urls() {
        let rule: PolicyRule = from(json!({"verbs": ["get"], "apiGroups": ["apps"],
            "resources": ["deployments", "*/scale"], "resourceNames": ["web"]}));
        let mut a = attrs(UserInfo::default(), "get", "ns", "apps", "deployments");
        a.name = "web".into();
        assert!(rule_allows(&a, &rule));
        a.name = "other".into();
        assert!(!rule_allows(&a, &rule));
        a.name = "web".into();
        a.subresource = "status".into();
        assert!(!rule_allows(&a, &rule));
        a.subresource = "scale".into();
        assert!(rule_allows(&a, &rule));
        let urls: PolicyRule =
            from(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/version"]}));
        let p = |path: &str| Attributes {
            verb: "get".into(),
            path: path.into(),
            ..Attributes::default()
        };
        assert!(rule_allows(&p("/apis/apps/v1"), &urls));
        assert!(rule_allows(&p("/version"), &urls));
        assert!(!rule_allows(&p("/version/x"), &urls));
        assert!(!rule_allows(&p("/api"), &urls));
    }

    #[test]
    fn bindings_allow_with_the_server_reason_and_report_missing_roles() {
        let sa = UserInfo::service_account("team-a", "deployer");
        let fx = Fixture {
            rbs: vec![
                from(json!({"metadata": {"name": "b0", "namespace": "team-a"},
                    "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "missing"},
                    "subjects": [{"kind": "ServiceAccount", "name": "deployer"}]})),
                from(json!({"metadata": {"name": "b1", "namespace": "team-a"},
                    "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "edit"},
                    "subjects": [{"kind": "ServiceAccount", "name": "deployer"}]})),
            ],
            crs: vec![from(json!({"metadata": {"name": "edit"},
                "rules": [{"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]}]}))],
            ..Fixture::default()
        };
        let v = authorize(
            &fx,
            &attrs(sa.clone(), "get", "team-a", "apps", "deployments"),
        );
        assert_eq!(
            v.reason,
            "RBAC: allowed by RoleBinding \"b1/team-a\" of ClusterRole \"edit\" to ServiceAccount \"deployer/team-a\""
        );
        let v = authorize(
            &fx,
            &attrs(sa.clone(), "delete", "team-a", "apps", "deployments"),
        );
        assert_eq!(v.decision, Decision::NoOpinion);
        assert_eq!(
            v.reason,
            "RBAC: role.rbac.authorization.k8s.io \"missing\" not found"
        );
        // The service account's namespace defaults to the binding's only in that namespace.
        let v = authorize(&fx, &attrs(sa, "get", "other", "apps", "deployments"));
        assert_eq!(v.decision, Decision::NoOpinion);
    }
}

//! Where an RGD's resources live, and who chooses it. The controller acts
//! with its own identity unless the RGD names ServiceAccounts
//! (`spec.defaultServiceAccounts`, as upstream kro): then a user who may
//! only create an instance in their own namespace must not be able to
//! steer the controller into another namespace, for example to read a
//! Secret in `kube-system` through an `externalRef` and the instance's
//! status. So, without service accounts, a resource's namespace must be
//! chosen by the RGD's author: absent (the instance's own namespace),
//! written literally, `${schema.metadata.namespace}`, or the namespace of
//! another resource chosen that way. Anything computed from the instance's
//! spec (or from objects it reads) is refused when the RGD is parsed, with
//! the ways to allow it.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::{Error, Location};
use crate::rgd::ResourceGraphDefinition;

/// How a resource's namespace is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// By the RGD's author (absent, literal, the instance's own namespace).
    Author,
    /// Computed from data the instance's creator controls.
    Instance,
    /// Every namespace: a selector `externalRef` with no namespace.
    AllNamespaces,
}

/// Checks every resource's namespace against the rule in the module docs.
/// `trust_instances` is the hub-wide opt-out (upstream kro's behaviour);
/// an RGD with `defaultServiceAccounts` is always allowed, since the
/// controller then acts with that account's permissions.
pub fn check(rgd: &ResourceGraphDefinition, trust_instances: bool) -> Result<(), Error> {
    check_service_accounts(rgd)?;
    if trust_instances || !rgd.spec.default_service_accounts.is_empty() {
        return Ok(());
    }
    let resources = &rgd.spec.resources;
    let texts: HashMap<&str, (Option<&str>, bool)> = resources
        .iter()
        .map(|r| {
            let (ns, selector) = match (&r.template, &r.external_ref) {
                (Some(t), _) => (
                    t.pointer("/metadata/namespace").and_then(Value::as_str),
                    false,
                ),
                (None, Some(e)) => (
                    e.metadata.namespace.as_deref(),
                    e.metadata.selector.is_some(),
                ),
                (None, None) => (None, false),
            };
            (r.id.as_str(), (ns, selector))
        })
        .collect();
    for r in resources {
        let origin = origin_of(&r.id, &texts, 0);
        if origin == Origin::Author {
            continue;
        }
        let (text, _) = texts.get(r.id.as_str()).copied().unwrap_or((None, false));
        let external = r.external_ref.is_some();
        let field = match (external, origin) {
            (true, Origin::AllNamespaces) => "externalRef.metadata.selector",
            (true, _) => "externalRef.metadata.namespace",
            (false, _) => "metadata.namespace",
        };
        let what = match origin {
            Origin::AllNamespaces => {
                "a selector externalRef without a namespace reads every namespace"
            }
            _ if external => "the namespace of this externalRef is computed from the instance",
            _ => "the namespace of this resource is computed from the instance",
        };
        return Err(Error::Invalid {
            at: Location {
                rgd: rgd.name().to_owned(),
                resource: Some(r.id.clone()),
                field: field.to_owned(),
                expression: text
                    .and_then(|t| t.strip_prefix("${"))
                    .and_then(|t| t.strip_suffix('}'))
                    .map(str::to_owned),
            },
            message: format!(
                "{what}, so anyone who may create an instance could have kro-hub act in any \
                 namespace with kro-hub's own permissions; to allow it, set \
                 spec.defaultServiceAccounts (kro-hub then acts as that ServiceAccount, with \
                 only the permissions granted to it), or write the namespace literally in the \
                 RGD (or as ${{schema.metadata.namespace}})"
            ),
        });
    }
    Ok(())
}

/// How resource `id`'s namespace is chosen. `depth` stops a reference
/// cycle (reported elsewhere) from looping.
fn origin_of(id: &str, texts: &HashMap<&str, (Option<&str>, bool)>, depth: usize) -> Origin {
    let Some(&(text, selector)) = texts.get(id) else {
        return Origin::Instance;
    };
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return if selector {
            Origin::AllNamespaces
        } else {
            Origin::Author
        };
    };
    if !text.contains("${") {
        return Origin::Author;
    }
    let Some(expr) = text
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .map(str::trim)
    else {
        return Origin::Instance;
    };
    if expr == "schema.metadata.namespace" {
        return Origin::Author;
    }
    match expr.strip_suffix(".metadata.namespace") {
        Some(other) if other != id && texts.contains_key(other) && depth < texts.len() => {
            match origin_of(other, texts, depth + 1) {
                Origin::Author => Origin::Author,
                _ => Origin::Instance,
            }
        }
        _ => Origin::Instance,
    }
}

/// Keys are namespace names or `*`; values ServiceAccount names.
fn check_service_accounts(rgd: &ResourceGraphDefinition) -> Result<(), Error> {
    for (namespace, account) in &rgd.spec.default_service_accounts {
        let bad = if namespace != "*" && !is_dns_label(namespace) {
            Some(format!(
                "key {namespace:?} must be a namespace name or \"*\" (any namespace)"
            ))
        } else if !is_dns_subdomain(account) {
            Some(format!(
                "ServiceAccount name {account:?} for namespace {namespace:?} must be a lowercase \
                 DNS subdomain"
            ))
        } else {
            None
        };
        if let Some(message) = bad {
            return Err(Error::Invalid {
                at: Location {
                    rgd: rgd.name().to_owned(),
                    resource: None,
                    field: "spec.defaultServiceAccounts".to_owned(),
                    expression: None,
                },
                message,
            });
        }
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgd(resources: Value, accounts: Value) -> ResourceGraphDefinition {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "apps"},
            "spec": {
                "schema": {"apiVersion": "v1alpha1", "kind": "App", "spec": {"ns": "string"}},
                "resources": resources,
                "defaultServiceAccounts": accounts,
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn cm(id: &str, namespace: Option<&str>) -> Value {
        let mut meta = serde_json::json!({"name": id});
        if let Some(ns) = namespace {
            meta["namespace"] = Value::from(ns);
        }
        serde_json::json!({"id": id, "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}})
    }

    #[test]
    fn namespaces_chosen_by_the_author_pass() {
        let resources = serde_json::json!([
            cm("own", None),
            cm("literal", Some("shared")),
            cm("explicit", Some("${schema.metadata.namespace}")),
            cm("follows", Some("${literal.metadata.namespace}")),
            {"id": "secret", "externalRef": {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "platform"}}},
            {"id": "selected", "externalRef": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"selector": {"matchLabels": {"a": "b"}}}}},
        ]);
        // The selector reads every namespace: refused on its own...
        let e = check(&rgd(resources.clone(), serde_json::json!({})), false).unwrap_err();
        assert!(
            e.to_string()
                .contains("resource \"selected\", field \"externalRef.metadata.selector\""),
            "{e}"
        );
        // ...and fine with a namespace.
        let mut resources = resources;
        resources[5]["externalRef"]["metadata"]["namespace"] = Value::from("platform");
        assert_eq!(check(&rgd(resources, serde_json::json!({})), false), Ok(()));
    }

    #[test]
    fn namespaces_from_the_instance_are_refused_with_the_ways_out() {
        let resources = serde_json::json!([
            {"id": "secret", "externalRef": {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "${schema.spec.ns}"}}},
        ]);
        let e = check(&rgd(resources.clone(), serde_json::json!({})), false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "RGD \"apps\", resource \"secret\", field \"externalRef.metadata.namespace\", \
             expression \"${schema.spec.ns}\": the namespace of this externalRef is computed \
             from the instance, so anyone who may create an instance could have kro-hub act in \
             any namespace with kro-hub's own permissions; to allow it, set \
             spec.defaultServiceAccounts (kro-hub then acts as that ServiceAccount, with only \
             the permissions granted to it), or write the namespace literally in the RGD (or as \
             ${schema.metadata.namespace})"
        );
        // Laundering it through another resource does not help.
        let chained = serde_json::json!([
            cm("first", Some("${schema.spec.ns}")),
            cm("second", Some("${first.metadata.namespace}"))
        ]);
        assert!(check(&rgd(chained, serde_json::json!({})), false).is_err());
        // A service account, or the hub-wide opt-out, allows it.
        assert_eq!(
            check(
                &rgd(resources.clone(), serde_json::json!({"*": "kro-apps"})),
                false
            ),
            Ok(())
        );
        assert_eq!(check(&rgd(resources, serde_json::json!({})), true), Ok(()));
    }

    #[test]
    fn service_account_entries_are_checked() {
        let e = check(
            &rgd(serde_json::json!([]), serde_json::json!({"Team A": "x"})),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("spec.defaultServiceAccounts"), "{e}");
        let e = check(
            &rgd(
                serde_json::json!([]),
                serde_json::json!({"team-a": "Bad_Name"}),
            ),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ServiceAccount name \"Bad_Name\""), "{e}");
        let spec = rgd(
            serde_json::json!([]),
            serde_json::json!({"team-a": "a", "*": "any"}),
        )
        .spec;
        assert_eq!(spec.service_account_for("team-a"), Some("a"));
        assert_eq!(spec.service_account_for("team-b"), Some("any"));
    }
}

//! Where an RGD's resources live, and who chooses it. The controller acts
//! with its own identity unless the RGD names ServiceAccounts
//! (`spec.defaultServiceAccounts`, as upstream kro): then a user who may
//! only create an instance in their own namespace must not be able to
//! steer the controller into another namespace, for example to read a
//! Secret in `kube-system` through an `externalRef` and the instance's
//! status.
//!
//! A namespace is chosen by the RGD's author when it is absent (the
//! instance's own namespace), written literally, `${schema.metadata.namespace}`,
//! or the namespace of another resource chosen that way. Any other namespace
//! is computed from data the instance's creator controls
//! ([`instance_chosen`]): upstream kro's examples do this constantly
//! (`namespace: ${schema.spec.namespace}`), and it is safe as long as the
//! value is the instance's own namespace. The controller checks that on
//! every rendered object (a value naming another namespace puts the
//! instance in error, with the ways to allow it), and this module refuses,
//! when the RGD is parsed, what can never be safe: a selector `externalRef`
//! without a namespace, which reads every namespace.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::error::{Error, Location};
use crate::rgd::{ResourceGraphDefinition, Scope};

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

/// What to say when an instance would make the controller act outside its
/// own namespace, and how to allow it.
pub const HOW_TO_ALLOW: &str = "kro-hub acts for an instance only in the instance's own \
    namespace unless the RGD sets spec.defaultServiceAccounts (kro-hub then acts as that \
    ServiceAccount, with only the permissions granted to it) or writes the namespace literally; \
    a hub run with --allow-instance-namespaces trusts every instance creator instead";

type Texts<'a> = HashMap<&'a str, (Option<&'a str>, bool)>;

fn texts(rgd: &ResourceGraphDefinition) -> Texts<'_> {
    rgd.spec
        .resources
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
        .collect()
}

/// Ids of the resources whose namespace is computed from the instance: the
/// controller must check each rendered value against the instance's own
/// namespace (see the module docs).
pub fn instance_chosen(rgd: &ResourceGraphDefinition) -> BTreeSet<String> {
    let texts = texts(rgd);
    rgd.spec
        .resources
        .iter()
        .filter(|r| origin_of(&r.id, &texts, 0) == Origin::Instance)
        .map(|r| r.id.clone())
        .collect()
}

/// Checks `spec.defaultServiceAccounts` and refuses selector `externalRef`s
/// that read every namespace on behalf of namespaced instances.
/// `trust_instances` is the hub-wide opt-out (upstream kro's behaviour);
/// an RGD with `defaultServiceAccounts` is always allowed, since the
/// controller then acts with that account's permissions, and so are
/// cluster-scoped instances, whose creators hold cluster-wide rights.
pub fn check(rgd: &ResourceGraphDefinition, trust_instances: bool) -> Result<(), Error> {
    check_service_accounts(rgd)?;
    if trust_instances
        || !rgd.spec.default_service_accounts.is_empty()
        || rgd.spec.schema.scope == Scope::Cluster
    {
        return Ok(());
    }
    let texts = texts(rgd);
    for r in &rgd.spec.resources {
        if origin_of(&r.id, &texts, 0) != Origin::AllNamespaces {
            continue;
        }
        return Err(Error::Invalid {
            at: Location {
                rgd: rgd.name().to_owned(),
                resource: Some(r.id.clone()),
                field: "externalRef.metadata.selector".to_owned(),
                expression: None,
            },
            message: format!(
                "a selector externalRef without a namespace reads every namespace, so anyone \
                 who may create an instance could read any namespace with kro-hub's own \
                 permissions; name the namespace (literally, or ${{schema.metadata.namespace}}) \
                 or set spec.defaultServiceAccounts: {HOW_TO_ALLOW}"
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
    fn namespaces_chosen_by_the_author_or_the_instance() {
        let resources = serde_json::json!([
            cm("own", None),
            cm("literal", Some("shared")),
            cm("explicit", Some("${schema.metadata.namespace}")),
            cm("follows", Some("${literal.metadata.namespace}")),
            cm("spec", Some("${schema.spec.ns}")),
            cm("laundered", Some("${spec.metadata.namespace}")),
            {"id": "secret", "externalRef": {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "${schema.spec.ns}"}}},
        ]);
        let rgd = rgd(resources, serde_json::json!({}));
        assert_eq!(check(&rgd, false), Ok(()));
        let chosen: Vec<String> = instance_chosen(&rgd).into_iter().collect();
        assert_eq!(chosen, ["laundered", "secret", "spec"]);
    }

    #[test]
    fn selectors_over_every_namespace_are_refused_with_the_ways_out() {
        let resources = serde_json::json!([
            {"id": "selected", "externalRef": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"selector": {"matchLabels": {"a": "b"}}}}},
        ]);
        let e = check(&rgd(resources.clone(), serde_json::json!({})), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("RGD \"apps\", resource \"selected\", field \"externalRef.metadata.selector\": a selector externalRef without a namespace reads every namespace"),
            "{e}"
        );
        assert!(e.contains("set spec.defaultServiceAccounts"), "{e}");
        assert_eq!(
            check(
                &rgd(resources.clone(), serde_json::json!({"*": "reader"})),
                false
            ),
            Ok(())
        );
        assert_eq!(
            check(&rgd(resources.clone(), serde_json::json!({})), true),
            Ok(())
        );
        let mut with_ns = resources;
        with_ns[0]["externalRef"]["metadata"]["namespace"] = Value::from("platform");
        assert_eq!(check(&rgd(with_ns, serde_json::json!({})), false), Ok(()));
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

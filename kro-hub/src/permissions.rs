//! The check, when an RGD is accepted, that each ServiceAccount it names in
//! `spec.defaultServiceAccounts` may do what the graph needs, asked of the
//! API server with SubjectAccessReview (as upstream kro does): a missing
//! permission is reported on the RGD with the account, verb, resource and
//! namespace, instead of surfacing later as a 403 on every instance.
//!
//! The `"*"` entry names an account in each instance's namespace, which
//! cannot be listed in advance: its permissions are met (or not, with the
//! API server's 403 on the instance) when instances are reconciled.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kro_core::{CompiledGraph, ResourceGraphDefinition};
use kube::Client;
use kube::api::{Api, PostParams};
use kube::discovery::Scope;
use serde_json::Value;

use crate::identity::service_account_user;
use crate::instance::{Discovery, gvk_of_node};

/// What the hub does with a template's objects as the account.
const TEMPLATE_VERBS: &[&str] = &["get", "list", "create", "patch", "delete"];
/// What it does with an `externalRef`'s objects.
const EXTERNAL_VERBS: &[&str] = &["get", "list"];

/// `Ok(Err(message))` when an account lacks a permission the graph needs.
pub async fn check(
    client: &Client,
    discovery: &Discovery,
    rgd: &ResourceGraphDefinition,
    graph: &CompiledGraph,
) -> Result<Result<(), String>, kube::Error> {
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    for (namespace, account) in &rgd.spec.default_service_accounts {
        if namespace == "*" {
            continue;
        }
        let user = service_account_user(namespace, account);
        for node in graph.resources() {
            let Some(gvk) = gvk_of_node(node) else {
                continue;
            };
            // A kind not served yet is reported on the instances that use it.
            let Ok((ar, caps)) = discovery.resolve(client, &gvk).await else {
                continue;
            };
            let target_namespace = match caps.scope {
                Scope::Cluster => None,
                Scope::Namespaced => {
                    Some(literal_namespace(node.template()).unwrap_or_else(|| namespace.clone()))
                }
            };
            let verbs = if node.is_external() {
                EXTERNAL_VERBS
            } else {
                TEMPLATE_VERBS
            };
            for verb in verbs {
                let review = SubjectAccessReview {
                    spec: SubjectAccessReviewSpec {
                        user: Some(user.clone()),
                        groups: Some(vec![
                            "system:serviceaccounts".to_owned(),
                            format!("system:serviceaccounts:{namespace}"),
                            "system:authenticated".to_owned(),
                        ]),
                        resource_attributes: Some(ResourceAttributes {
                            group: Some(ar.group.clone()),
                            version: Some(ar.version.clone()),
                            resource: Some(ar.plural.clone()),
                            namespace: target_namespace.clone(),
                            verb: Some((*verb).to_owned()),
                            ..ResourceAttributes::default()
                        }),
                        ..SubjectAccessReviewSpec::default()
                    },
                    ..SubjectAccessReview::default()
                };
                let answer = reviews.create(&PostParams::default(), &review).await?;
                let allowed = answer.status.as_ref().is_some_and(|s| s.allowed);
                if !allowed {
                    let api_version = if gvk.group.is_empty() {
                        gvk.version.clone()
                    } else {
                        format!("{}/{}", gvk.group, gvk.version)
                    };
                    let place = match &target_namespace {
                        Some(ns) => format!("in namespace {ns}"),
                        None => "at cluster scope".to_owned(),
                    };
                    return Ok(Err(format!(
                        "specified service account {user} does not have permission to {verb} \
                         \"{}\" ({api_version}, Kind={}) {place}",
                        node.id(),
                        gvk.kind
                    )));
                }
            }
        }
    }
    Ok(Ok(()))
}

/// A namespace the RGD's author wrote literally in a template.
fn literal_namespace(template: &Value) -> Option<String> {
    template
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty() && !ns.contains("${"))
        .map(str::to_owned)
}

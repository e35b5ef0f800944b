//! Serde types for `kro.run/v1alpha1` ResourceGraphDefinition, as upstream kro
//! defines it. Unknown fields in `spec` are rejected rather than dropped: a
//! typo such as `readyWhenn` must never silently change what a graph does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// API group of the RGD itself and default group of generated kinds.
pub const KRO_GROUP: &str = "kro.run";
/// API version of the RGD.
pub const RGD_VERSION: &str = "v1alpha1";
/// Kind of the RGD.
pub const RGD_KIND: &str = "ResourceGraphDefinition";
/// Finalizer kro puts on RGDs and instances.
pub const FINALIZER: &str = "kro.run/finalizer";

/// A ResourceGraphDefinition object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceGraphDefinition {
    /// Always `kro.run/v1alpha1`.
    #[serde(default = "default_rgd_api_version")]
    pub api_version: String,
    /// Always `ResourceGraphDefinition`.
    #[serde(default = "default_rgd_kind")]
    pub kind: String,
    /// Standard object metadata, kept as JSON: the engine only reads the name.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the author declared.
    pub spec: ResourceGraphDefinitionSpec,
    /// What the controller observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResourceGraphDefinitionStatus>,
}

fn default_rgd_api_version() -> String {
    format!("{KRO_GROUP}/{RGD_VERSION}")
}

fn default_rgd_kind() -> String {
    RGD_KIND.to_owned()
}

impl ResourceGraphDefinition {
    /// The RGD's name, or `<unnamed>` for files that lack one.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("<unnamed>")
    }
}

/// The subset of Kubernetes `ObjectMeta` the engine reads; every other field
/// is kept verbatim in `rest` so a round trip loses nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Object namespace (RGDs are cluster-scoped; instances may be namespaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Generation set by the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Every other metadata field (uid, resourceVersion, managedFields, ...).
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// `spec` of a ResourceGraphDefinition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceGraphDefinitionSpec {
    /// The API the RGD declares.
    pub schema: Schema,
    /// The resources behind one instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    /// kro-hub extension: which member clusters an instance goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// kro-hub extension: how a change reaches the placed clusters, wave
    /// by wave (see [`crate::rollout`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::Rollout>,
    /// As upstream kro: instance namespace (`"*"` for any) to the name of a
    /// ServiceAccount in that namespace that the controller impersonates for
    /// every child and `externalRef` operation of the instances there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub default_service_accounts: BTreeMap<String, String>,
}

impl ResourceGraphDefinitionSpec {
    /// The ServiceAccount the controller acts as for an instance in
    /// `namespace`: its own entry, else the `"*"` entry.
    pub fn service_account_for(&self, namespace: &str) -> Option<&str> {
        self.default_service_accounts
            .get(namespace)
            .or_else(|| self.default_service_accounts.get("*"))
            .map(String::as_str)
    }
}

/// Scope of the generated kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Instances live in a namespace (the default).
    #[default]
    Namespaced,
    /// Instances are cluster-scoped.
    Cluster,
}

impl Scope {
    fn is_default(&self) -> bool {
        *self == Scope::Namespaced
    }
}

/// `spec.schema`: the new API in SimpleSchema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schema {
    /// Version of the generated CRD, e.g. `v1alpha1`.
    pub api_version: String,
    /// Kind of the generated CRD, UpperCamelCase.
    pub kind: String,
    /// Group of the generated CRD; `kro.run` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Scope of the generated kind.
    #[serde(default, skip_serializing_if = "Scope::is_default")]
    pub scope: Scope,
    /// SimpleSchema of the instance spec (nested maps of type strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
    /// Status fields: SimpleSchema-shaped maps whose leaves are `${...}` CEL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// Custom types usable in `spec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Value>,
    /// Whole-object validation rules (`x-kubernetes-validations` on spec).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<ValidationRule>,
    /// Printer columns; when given they replace kro's defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_printer_columns: Vec<PrinterColumn>,
    /// Short names of the generated CRD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short_names: Vec<String>,
    /// Categories of the generated CRD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Plural override of the generated CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plural: Option<String>,
    /// Labels and annotations put on the generated CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<CrdMetadata>,
}

impl Schema {
    /// The group of the generated kind.
    pub fn group(&self) -> &str {
        self.group
            .as_deref()
            .filter(|g| !g.is_empty())
            .unwrap_or(KRO_GROUP)
    }
}

/// A CEL rule over the instance spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidationRule {
    /// CEL over `self` (the spec).
    pub expression: String,
    /// Message shown when the rule fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A CRD printer column (apiextensions.k8s.io/v1 CustomResourceColumnDefinition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type of the column.
    #[serde(rename = "type")]
    pub type_: String,
    /// JSONPath into the object.
    pub json_path: String,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// OpenAPI format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// 0 shows in the default view; higher only in wide output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}

/// Labels and annotations for the generated CRD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrdMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One entry of `spec.resources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resource {
    /// lowerCamelCase id, unique in the RGD, usable as a CEL variable.
    pub id: String,
    /// The object to create, with `${...}` expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Value>,
    /// An existing object to read instead of creating one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<ExternalRef>,
    /// Standalone `${...}` expressions that must all be true for readiness.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ready_when: Vec<String>,
    /// Standalone `${...}` expressions that must all be true to create it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_when: Vec<String>,
    /// Collection dimensions: each entry maps one iterator name to a list expression.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub for_each: Vec<BTreeMap<String, String>>,
    /// What happens to the resource's objects when the instance is deleted
    /// or the resource is excluded: deleted (the default) or orphaned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// kro-hub extension: `Hub` keeps the resource on the hub cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ResourceTarget>,
}

/// `deletionPolicy` of a resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletionPolicy {
    /// Objects are deleted with the instance.
    #[default]
    Delete,
    /// Objects outlive the instance: kro's labels and annotations are
    /// removed and the object is left alone.
    Orphaned,
}

/// Where a resource is applied when the instance is placed on members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceTarget {
    /// Applied once, on the hub.
    Hub,
    /// Applied on every member the instance is placed on (the default).
    Members,
}

/// `externalRef` of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalRef {
    /// apiVersion of the referenced object.
    pub api_version: String,
    /// kind of the referenced object.
    pub kind: String,
    /// name/namespace/selector of the referenced object(s).
    pub metadata: ExternalRefMetadata,
}

/// Which object(s) an `externalRef` reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalRefMetadata {
    /// Name of one object (may hold `${...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace; the instance's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A label selector (object, or a standalone `${...}` string) for a collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Value>,
}

/// kro-hub extension: the member clusters an instance is placed on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    /// Label selector over `Cluster` objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<Value>,
    /// Explicit cluster names, or a standalone `${...}` list expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Value>,
    /// A `${...}` bool over `schema` and `cluster` that filters the selected
    /// clusters per instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// What happens to an instance's copies on a cluster that stops being
    /// selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_deselect: Option<OnDeselect>,
}

/// `placement.onDeselect`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnDeselect {
    /// The copies are deleted, in reverse dependency order (the default).
    #[default]
    Delete,
    /// The copies are left on the cluster, released from kro's labels.
    Orphan,
}

/// State of an RGD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RgdState {
    /// Graph accepted, CRD and controller serving.
    Active,
    /// Graph rejected or not serving.
    Inactive,
}

/// `status` of a ResourceGraphDefinition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGraphDefinitionStatus {
    /// Active or Inactive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RgdState>,
    /// Resource ids in creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topological_order: Vec<String>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Each resource with its dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceInformation>,
}

/// One resource of the graph and what it depends on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInformation {
    /// Resource id.
    pub id: String,
    /// Ids it depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

/// A dependency edge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// Id of the resource depended on.
    pub id: String,
}

/// A standard Kubernetes condition (metav1.Condition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// RFC 3339 time of the last status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_resource_field_is_rejected() {
        let err = serde_json::from_value::<ResourceGraphDefinition>(serde_json::json!({
            "apiVersion": "kro.run/v1alpha1",
            "kind": "ResourceGraphDefinition",
            "metadata": {"name": "x"},
            "spec": {
                "schema": {"apiVersion": "v1alpha1", "kind": "X"},
                "resources": [{"id": "a", "template": {}, "readyWhenn": []}]
            }
        }))
        .unwrap_err();
        assert!(err.to_string().contains("readyWhenn"), "{err}");
    }

    #[test]
    fn deletion_policy_parses_and_rejects_unknown_values() {
        let resources = |policy: &str| {
            serde_json::json!({
                "spec": {
                    "schema": {"apiVersion": "v1alpha1", "kind": "X"},
                    "resources": [{"id": "a", "template": {}, "deletionPolicy": policy}]
                }
            })
        };
        let rgd: ResourceGraphDefinition = serde_json::from_value(resources("Orphaned")).unwrap();
        assert_eq!(
            rgd.spec.resources[0].deletion_policy,
            Some(DeletionPolicy::Orphaned)
        );
        let err = serde_json::from_value::<ResourceGraphDefinition>(resources("Keep")).unwrap_err();
        assert!(err.to_string().contains("Keep"), "{err}");
    }

    #[test]
    fn group_defaults_to_kro_run_and_metadata_round_trips() {
        let rgd: ResourceGraphDefinition = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "uid": "u-1", "labels": {"a": "b"}},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Web", "scope": "Cluster"}}
        }))
        .unwrap();
        assert_eq!(rgd.spec.schema.group(), "kro.run");
        assert_eq!(rgd.spec.schema.scope, Scope::Cluster);
        assert_eq!(rgd.api_version, "kro.run/v1alpha1");
        let back = serde_json::to_value(&rgd).unwrap();
        assert_eq!(back["metadata"]["uid"], "u-1");
        assert_eq!(back["spec"]["schema"]["scope"], "Cluster");
    }
}

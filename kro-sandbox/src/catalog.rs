//! The resources a sandbox serves: built-in kinds and the ones CRDs register.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

/// The verbs a full resource supports, in the order discovery lists them.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Schema and presentation data a CRD version carries.
#[derive(Debug, Clone, Default)]
pub struct CustomVersion {
    /// The version's `openAPIV3Schema`.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns`.
    pub printer_columns: Vec<Value>,
    /// Whether the version is the storage version.
    pub storage: bool,
    /// The scale subresource's paths, when enabled.
    pub scale: Option<Value>,
}

/// One served resource (group, version, plural) and what it supports.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group, "" for core.
    pub group: String,
    /// Version served at this entry.
    pub version: String,
    /// Plural name used in paths.
    pub plural: String,
    /// Lower-case singular.
    pub singular: String,
    /// Kind of the objects.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names, as discovery lists them.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Verbs of the main resource.
    pub verbs: Vec<String>,
    /// Has a `/status` subresource.
    pub status: bool,
    /// Has a `/scale` subresource.
    pub scale: bool,
    /// Extra subresources listed in discovery only (name, kind, verbs, group/version).
    pub extra_sub: Vec<Value>,
    /// Set when a CRD defines this resource.
    pub custom: Option<CustomVersion>,
    /// The version objects are stored at (equal to `version` for built-ins).
    pub storage_version: String,
}

impl ResourceDef {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the verb is served.
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The discovery entries of this resource and its subresources.
    pub fn discovery_entries(&self) -> Vec<Value> {
        let mut main = Map::new();
        main.insert("name".into(), json!(self.plural));
        main.insert("singularName".into(), json!(self.singular));
        main.insert("namespaced".into(), json!(self.namespaced));
        main.insert("kind".into(), json!(self.kind));
        main.insert("verbs".into(), json!(self.verbs));
        if !self.short_names.is_empty() {
            main.insert("shortNames".into(), json!(self.short_names));
        }
        if !self.categories.is_empty() {
            main.insert("categories".into(), json!(self.categories));
        }
        // Create-only kinds (access and token reviews) are never stored, so have no hash.
        if self.has_verb("get") {
            main.insert(
                "storageVersionHash".into(),
                json!(hash_of(&self.api_version(), &self.plural)),
            );
        }
        let mut out = vec![Value::Object(main)];
        let sub = |name: &str, kind: &str, verbs: &[&str]| {
            json!({"name": format!("{}/{name}", self.plural), "singularName": "",
                   "namespaced": self.namespaced, "kind": kind, "verbs": verbs})
        };
        if self.scale {
            let mut s = sub("scale", "Scale", &["get", "patch", "update"]);
            s["group"] = json!("autoscaling");
            s["version"] = json!("v1");
            out.push(s);
        }
        if self.status {
            out.push(sub("status", &self.kind, &["get", "patch", "update"]));
        }
        out.extend(self.extra_sub.iter().cloned());
        out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        out
    }
}

fn hash_of(a: &str, b: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.bytes().chain(b.bytes()) {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:011x}", h & 0xfff_ffff_ffff)
}

/// Key of a served resource: (group, version, plural).
pub type GvrKey = (String, String, String);

/// All served resources, built-in and custom.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    by_gvr: BTreeMap<GvrKey, Arc<ResourceDef>>,
    /// Group order for `/apis`, and version order (preferred first) per group.
    groups: Vec<(String, Vec<String>)>,
}

impl Catalog {
    /// The catalog of built-in kinds.
    pub fn builtin() -> Self {
        let mut c = Self::default();
        for def in builtin_defs() {
            c.insert(def);
        }
        c
    }

    /// Adds or replaces one resource.
    pub fn insert(&mut self, def: ResourceDef) {
        match self.groups.iter_mut().find(|(g, _)| *g == def.group) {
            Some((_, versions)) => {
                if !versions.contains(&def.version) {
                    versions.push(def.version.clone());
                    versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
                }
            }
            None => self
                .groups
                .push((def.group.clone(), vec![def.version.clone()])),
        }
        self.by_gvr.insert(
            (def.group.clone(), def.version.clone(), def.plural.clone()),
            Arc::new(def),
        );
    }

    /// Removes every version of a (group, plural).
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.by_gvr
            .retain(|(g, _, p), _| !(g == group && p == plural));
        let still: Vec<(String, String)> = self
            .by_gvr
            .keys()
            .map(|(g, v, _)| (g.clone(), v.clone()))
            .collect();
        for (g, versions) in &mut self.groups {
            versions.retain(|v| still.iter().any(|(sg, sv)| sg == g && sv == v));
        }
        self.groups.retain(|(_, v)| !v.is_empty());
    }

    /// Looks a resource up.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.by_gvr
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .cloned()
    }

    /// Finds the resource of a kind in a group version.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        self.by_gvr
            .iter()
            .find(|((g, v, _), d)| g == group && v == version && d.kind == kind)
            .map(|(_, d)| d.clone())
    }

    /// Every served resource.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.by_gvr.values()
    }

    /// Whether a group version is served.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.groups
            .iter()
            .any(|(g, vs)| g == group && vs.iter().any(|v| v == version))
    }

    /// Resources of one group version, sorted by plural.
    pub fn resources(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.by_gvr
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Named groups (not core) with versions, preferred first, in registration order.
    pub fn groups(&self) -> impl Iterator<Item = &(String, Vec<String>)> {
        self.groups.iter().filter(|(g, _)| !g.is_empty())
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, n) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match n.parse::<u32>() {
        Ok(minor) => (level, major, minor),
        Err(_) => (0, 0, 0),
    }
}

struct B {
    gv: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
    create_only: bool,
}

const fn b(
    gv: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
) -> B {
    B {
        gv,
        plural,
        kind,
        namespaced,
        short,
        all: false,
        status: false,
        scale: false,
        create_only: false,
    }
}

impl B {
    const fn all(mut self) -> Self {
        self.all = true;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn create_only(mut self) -> Self {
        self.create_only = true;
        self
    }
}

const BUILTINS: &[B] = &[
    b("v1", "configmaps", "ConfigMap", true, &["cm"]),
    b("v1", "endpoints", "Endpoints", true, &["ep"]),
    b("v1", "events", "Event", true, &["ev"]),
    b("v1", "limitranges", "LimitRange", true, &["limits"]),
    b("v1", "namespaces", "Namespace", false, &["ns"]).status(),
    b("v1", "nodes", "Node", false, &["no"]).status(),
    b(
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
    )
    .status(),
    b(
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        false,
        &["pv"],
    )
    .status(),
    b("v1", "pods", "Pod", true, &["po"]).all().status(),
    b("v1", "podtemplates", "PodTemplate", true, &[]),
    b("v1", "resourcequotas", "ResourceQuota", true, &["quota"]).status(),
    b("v1", "secrets", "Secret", true, &[]),
    b("v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
    b("v1", "services", "Service", true, &["svc"])
        .all()
        .status(),
    b(
        "apps/v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
        &[],
    ),
    b("apps/v1", "daemonsets", "DaemonSet", true, &["ds"])
        .all()
        .status(),
    b("apps/v1", "deployments", "Deployment", true, &["deploy"])
        .all()
        .status()
        .scale(),
    b("apps/v1", "replicasets", "ReplicaSet", true, &["rs"])
        .all()
        .status()
        .scale(),
    b("apps/v1", "statefulsets", "StatefulSet", true, &["sts"])
        .all()
        .status()
        .scale(),
    b("events.k8s.io/v1", "events", "Event", true, &["ev"]),
    b(
        "authentication.k8s.io/v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
        &[],
    )
    .create_only(),
    b(
        "authentication.k8s.io/v1",
        "tokenreviews",
        "TokenReview",
        false,
        &[],
    )
    .create_only(),
    b(
        "authorization.k8s.io/v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
        &[],
    )
    .create_only(),
    b(
        "authorization.k8s.io/v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
        &[],
    )
    .create_only(),
    b(
        "authorization.k8s.io/v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
        &[],
    )
    .create_only(),
    b(
        "authorization.k8s.io/v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
        &[],
    )
    .create_only(),
    b(
        "autoscaling/v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
    )
    .all()
    .status(),
    b("batch/v1", "cronjobs", "CronJob", true, &["cj"])
        .all()
        .status(),
    b("batch/v1", "jobs", "Job", true, &[]).all().status(),
    b(
        "networking.k8s.io/v1",
        "ingressclasses",
        "IngressClass",
        false,
        &[],
    ),
    b(
        "networking.k8s.io/v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
    )
    .status(),
    b(
        "networking.k8s.io/v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
    ),
    b(
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
    )
    .status(),
    b(
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
    ),
    b(
        "rbac.authorization.k8s.io/v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
    ),
    b(
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
    ),
    b("rbac.authorization.k8s.io/v1", "roles", "Role", true, &[]),
    b(
        "storage.k8s.io/v1",
        "storageclasses",
        "StorageClass",
        false,
        &["sc"],
    ),
    b("coordination.k8s.io/v1", "leases", "Lease", true, &[]),
    b(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
    )
    .status(),
];

fn builtin_defs() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(|spec| {
            let (group, version) = match spec.gv.split_once('/') {
                Some((g, v)) => (g.to_owned(), v.to_owned()),
                None => (String::new(), spec.gv.to_owned()),
            };
            let mut verbs: Vec<String> = ALL_VERBS.iter().map(|v| (*v).to_owned()).collect();
            if spec.plural == "namespaces" {
                verbs.retain(|v| v != "deletecollection");
            }
            if spec.create_only {
                verbs.retain(|v| v == "create");
            }
            let mut categories = Vec::new();
            if spec.all {
                categories.push("all".to_owned());
            }
            if spec.plural == "customresourcedefinitions" {
                categories.push("api-extensions".to_owned());
            }
            let mut extra_sub = Vec::new();
            if spec.plural == "namespaces" {
                extra_sub.push(json!({"name": "namespaces/finalize", "singularName": "",
                    "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
            }
            let singular = spec.kind.to_lowercase();
            ResourceDef {
                storage_version: version.clone(),
                group,
                version,
                plural: spec.plural.to_owned(),
                singular,
                kind: spec.kind.to_owned(),
                namespaced: spec.namespaced,
                short_names: spec.short.iter().map(|s| (*s).to_owned()).collect(),
                categories,
                verbs,
                status: spec.status,
                scale: spec.scale,
                extra_sub,
                custom: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v2beta1", "v1", "v1beta2", "v2"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }

    #[test]
    fn builtin_deployments_have_scale_and_status() {
        let c = Catalog::builtin();
        let d = c.get("apps", "v1", "deployments").unwrap();
        let names: Vec<_> = d
            .discovery_entries()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            ["deployments", "deployments/scale", "deployments/status"]
        );
    }
}

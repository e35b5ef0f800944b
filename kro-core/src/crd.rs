//! The CustomResourceDefinition (apiextensions.k8s.io/v1) generated for an
//! RGD's kind, shaped like the one upstream kro creates: names from the kind
//! (plural pluralised like upstream), one served storage version with the
//! status subresource, printer columns State/Ready/Age merged with the RGD's own
//! (same name replaces), the instance status fields kro writes (`state`, `conditions`),
//! and kro's ownership labels.

mod plural;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::rgd::{PrinterColumn, ResourceGraphDefinition, Scope};

pub use plural::pluralize;

/// Label marking objects kro created.
pub const LABEL_OWNED: &str = "kro.run/owned";
/// Label with the version of the controller that generated the object.
pub const LABEL_KRO_VERSION: &str = "kro.run/kro-version";
/// Label with the RGD's name.
pub const LABEL_RGD_NAME: &str = "kro.run/resource-graph-definition-name";
/// Label with the RGD's uid.
pub const LABEL_RGD_ID: &str = "kro.run/resource-graph-definition-id";
/// Status field kro-hub writes per member cluster when the RGD has a
/// placement: a list keyed by `name`.
pub const CLUSTERS_STATUS_FIELD: &str = "clusters";
/// Status fields kro owns; an RGD status field of the same name is replaced.
pub const RESERVED_STATUS_FIELDS: [&str; 2] = ["state", "conditions"];

/// Why no CRD can be generated for an RGD.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CrdError {
    /// `spec.schema.kind` is not an UpperCamel kind.
    #[error("RGD {rgd}: spec.schema.kind {kind:?} must match ^[A-Z][a-zA-Z0-9]{{0,62}}$")]
    InvalidKind {
        /// RGD name.
        rgd: String,
        /// The kind.
        kind: String,
    },
    /// `spec.schema.apiVersion` is not a Kubernetes version name.
    #[error("RGD {rgd}: spec.schema.apiVersion {version:?} must look like v1, v1alpha1 or v2beta3")]
    InvalidVersion {
        /// RGD name.
        rgd: String,
        /// The version.
        version: String,
    },
    /// `spec.schema.group` is not a DNS subdomain with a dot.
    #[error(
        "RGD {rgd}: spec.schema.group {group:?} must be a lowercase DNS subdomain with at least one dot"
    )]
    InvalidGroup {
        /// RGD name.
        rgd: String,
        /// The group.
        group: String,
    },
    /// A plural, short name or category is not a lowercase DNS label.
    #[error(
        "RGD {rgd}: {field} {value:?} must be a lowercase DNS-1035 label ([a-z]([-a-z0-9]*[a-z0-9])?, at most 63 characters)"
    )]
    InvalidName {
        /// RGD name.
        rgd: String,
        /// Which field (`spec.schema.plural`, `spec.schema.shortNames[0]`...).
        field: String,
        /// The value.
        value: String,
    },
    /// A `printColumn` marker where no column can point (inside a list or
    /// a map).
    #[error(
        "RGD {rgd}: spec.schema.spec.{path}: printColumn is only for fields of objects, not inside a list or a map (a column shows one value per instance)"
    )]
    PrintColumnPlacement {
        /// RGD name.
        rgd: String,
        /// Where the marker is.
        path: String,
    },
    /// A printer column the API server would refuse.
    #[error("RGD {rgd}: spec.schema.additionalPrinterColumns[{index}] ({name:?}): {message}")]
    InvalidPrinterColumn {
        /// RGD name.
        rgd: String,
        /// Index in the list.
        index: usize,
        /// Column name.
        name: String,
        /// Why.
        message: String,
    },
    /// A label or annotation for the CRD the API server would refuse.
    #[error("RGD {rgd}: spec.schema.metadata.{field} {key:?}: {message}")]
    InvalidMetadata {
        /// RGD name.
        rgd: String,
        /// `labels` or `annotations`.
        field: &'static str,
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// The spec or status schema handed in is not an object schema.
    #[error("RGD {rgd}: the {part} schema must be an OpenAPI object schema, got {got}")]
    NotAnObjectSchema {
        /// RGD name.
        rgd: String,
        /// `spec` or `status`.
        part: &'static str,
        /// What was given.
        got: String,
    },
    /// The kind belongs to an API an RGD may never serve: kro-hub's own
    /// kinds, or a group Kubernetes reserves for its built-in APIs.
    #[error("RGD {rgd}: kind {kind} in group {group} cannot be served by an RGD: {why}")]
    ReservedApi {
        /// RGD name.
        rgd: String,
        /// The kind.
        kind: String,
        /// The group.
        group: String,
        /// Who owns it.
        why: &'static str,
    },
    /// An RGD status field clashes with one kro-hub writes itself.
    #[error(
        "RGD {rgd}: spec.schema.status.{field} is reserved: kro-hub writes per-cluster status there when the RGD has a placement"
    )]
    ReservedStatusField {
        /// RGD name.
        rgd: String,
        /// The field.
        field: String,
    },
}

/// The CRD for `rgd`'s kind. `spec` is the spec schema (from
/// [`crate::simpleschema::spec_schema`]); `status_fields` is the object
/// schema inferred from the RGD's status expressions (`Value::Null` or `{}`
/// when there are none).
pub fn instance_crd(
    rgd: &ResourceGraphDefinition,
    spec: &Value,
    status_fields: &Value,
) -> Result<Value, CrdError> {
    let schema = &rgd.spec.schema;
    let rgd_name = rgd.name().to_owned();
    let kind = &schema.kind;
    if !is_kind(kind) {
        return Err(CrdError::InvalidKind {
            rgd: rgd_name,
            kind: kind.clone(),
        });
    }
    if !is_version(&schema.api_version) {
        return Err(CrdError::InvalidVersion {
            rgd: rgd_name,
            version: schema.api_version.clone(),
        });
    }
    let group = schema.group();
    if !is_group(group) {
        return Err(CrdError::InvalidGroup {
            rgd: rgd_name,
            group: group.to_owned(),
        });
    }
    let singular = kind.to_lowercase();
    let plural = match &schema.plural {
        Some(p) if !p.is_empty() => p.clone(),
        _ => pluralize(&singular),
    };
    if let Some(why) = reserved_api(group, kind, &plural) {
        return Err(CrdError::ReservedApi {
            rgd: rgd_name,
            kind: kind.clone(),
            group: group.to_owned(),
            why,
        });
    }
    check_label(&rgd_name, "spec.schema.plural", &plural)?;
    for (i, short) in schema.short_names.iter().enumerate() {
        check_label(&rgd_name, &format!("spec.schema.shortNames[{i}]"), short)?;
    }
    for (i, category) in schema.categories.iter().enumerate() {
        check_label(&rgd_name, &format!("spec.schema.categories[{i}]"), category)?;
    }
    let mut columns = printer_columns(&rgd_name, &schema.additional_printer_columns)?;
    // `printColumn` markers add their columns after those, as upstream's
    // additionalPrinterColumns example shows.
    let (spec, marked) = take_print_columns(&rgd_name, spec)?;
    if let Value::Array(cols) = &mut columns {
        for c in marked {
            if !cols.iter().any(|e| e["name"] == c["name"]) {
                cols.push(c);
            }
        }
    }
    let spec = &spec;
    if rgd.spec.placement.is_some()
        && let Value::Array(cols) = &mut columns
        && !cols.iter().any(|c| c["name"] == "Clusters")
    {
        // After State and Ready: how many selected clusters are ready.
        let at = cols.len().min(2);
        cols.insert(
            at,
            json!({
                "name": "Clusters",
                "type": "string",
                "description": "Selected member clusters that are ready at the current generation",
                "jsonPath": ".status.placement.summary"
            }),
        );
    }
    if let Some(meta) = &schema.metadata {
        check_metadata(&rgd_name, meta)?;
    }

    let spec = object_schema(&rgd_name, "spec", spec)?;
    let status = status_schema(rgd, status_fields)?;

    let mut names = Map::new();
    names.insert("kind".into(), json!(kind));
    names.insert("listKind".into(), json!(format!("{kind}List")));
    names.insert("plural".into(), json!(plural));
    names.insert("singular".into(), json!(singular));
    if !schema.short_names.is_empty() {
        names.insert("shortNames".into(), json!(schema.short_names));
    }
    if !schema.categories.is_empty() {
        names.insert("categories".into(), json!(schema.categories));
    }

    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(format!("{plural}.{group}")));
    metadata.insert("labels".into(), json!(labels(rgd)));
    if let Some(annotations) = schema.metadata.as_ref().map(|m| &m.annotations)
        && !annotations.is_empty()
    {
        metadata.insert("annotations".into(), json!(annotations));
    }

    let scope = match schema.scope {
        Scope::Namespaced => "Namespaced",
        Scope::Cluster => "Cluster",
    };
    Ok(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": group,
            "names": names,
            "scope": scope,
            "versions": [{
                "name": schema.api_version,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status,
                    }
                }},
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
            }]
        }
    }))
}

/// The printer columns upstream kro gives every generated CRD.
pub fn default_printer_columns() -> Value {
    json!([
        {
            "name": "State",
            "type": "string",
            "description": "The state of a ResourceGraphDefinition instance",
            "jsonPath": ".status.state"
        },
        {
            "name": "Ready",
            "type": "string",
            "description": "Whether a ResourceGraphDefinition instance is ready",
            "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"
        },
        {
            "name": "Age",
            "type": "date",
            "description": "Age of the resource",
            "jsonPath": ".metadata.creationTimestamp"
        }
    ])
}

/// The key under which SimpleSchema's `printColumn` marker leaves its title
/// in a field's schema, for [`take_print_columns`].
pub const PRINT_COLUMN_KEY: &str = "x-kro-print-column";

/// `spec` without the `printColumn` titles, and the printer columns they
/// ask for (`.spec.<path>`, typed as the field), in field order.
pub fn take_print_columns(rgd: &str, spec: &Value) -> Result<(Value, Vec<Value>), CrdError> {
    fn walk(
        rgd: &str,
        node: &mut Value,
        path: &mut Vec<String>,
        in_collection: bool,
        out: &mut Vec<Value>,
    ) -> Result<(), CrdError> {
        let Value::Object(m) = node else {
            return Ok(());
        };
        if let Some(title) = m.remove(PRINT_COLUMN_KEY) {
            if in_collection || path.is_empty() {
                return Err(CrdError::PrintColumnPlacement {
                    rgd: rgd.to_owned(),
                    path: path.join("."),
                });
            }
            out.push(json!({
                "name": title,
                "type": m.get("type").cloned().unwrap_or_else(|| json!("string")),
                "jsonPath": format!(".spec.{}", path.join(".")),
            }));
        }
        if let Some(Value::Object(props)) = m.get_mut("properties") {
            for (name, sub) in props.iter_mut() {
                path.push(name.clone());
                walk(rgd, sub, path, in_collection, out)?;
                path.pop();
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = m.get_mut(key) {
                path.push(if key == "items" { "[]" } else { "{}" }.to_owned());
                walk(rgd, sub, path, true, out)?;
                path.pop();
            }
        }
        Ok(())
    }
    let mut spec = spec.clone();
    let mut columns = Vec::new();
    walk(rgd, &mut spec, &mut Vec::new(), false, &mut columns)?;
    Ok((spec, columns))
}

/// Status field kro-hub writes with the counts of an instance's placement.
pub const PLACEMENT_STATUS_FIELD: &str = "placement";

/// The schema of `status.placement`: how many clusters are selected, ready,
/// unreachable and in error, and `summary` (`ready/selected`) for the
/// printer column.
pub fn placement_status_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "selected": {"type": "integer"},
            "ready": {"type": "integer"},
            "unreachable": {"type": "integer"},
            "error": {"type": "integer"},
            "summary": {"type": "string"}
        }
    })
}

/// Status field kro-hub writes with the progress of a rollout.
pub const ROLLOUT_STATUS_FIELD: &str = "rollout";

/// Status field kro-hub writes, with the status of an instance that is
/// ready everywhere, holding a hash of everything the pass read: a
/// restarted hub that finds the same inputs skips that instance's pass.
pub const INPUTS_HASH_STATUS_FIELD: &str = "inputsHash";

/// The schema of `status.rollout`: the revision being rolled out, its state
/// and current wave, each wave's clusters and progress, the failures, and
/// the last revision that completed (kept to roll back to).
pub fn rollout_status_schema() -> Value {
    let names = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "type": "object",
        "properties": {
            "revision": {"type": "integer"},
            "graphRevision": {"type": "integer"},
            "specHash": {"type": "string"},
            "state": {"type": "string"},
            "currentWave": {"type": "string"},
            "message": {"type": "string"},
            "waves": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "state": {"type": "string"},
                        "clusters": names.clone(),
                        "updated": names,
                        "startedAt": {"type": "string"},
                        "readySince": {"type": "string"}
                    }
                }
            },
            "failures": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "cluster": {"type": "string"},
                        "wave": {"type": "string"},
                        "message": {"type": "string"}
                    }
                }
            },
            "stable": {
                "type": "object",
                "properties": {
                    "revision": {"type": "integer"},
                    "graphRevision": {"type": "integer"},
                    "specHash": {"type": "string"},
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            }
        }
    })
}

/// The schema of `status.conditions` (metav1.Condition).
pub fn conditions_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "status": {"type": "string"},
                "reason": {"type": "string"},
                "message": {"type": "string"},
                "lastTransitionTime": {"type": "string"},
                "observedGeneration": {"type": "integer"}
            }
        }
    })
}

/// The schema of one `status.clusters[]` entry kro-hub writes for a placed
/// instance: the member's name, its state and conditions, a message, and
/// the RGD's status fields evaluated on that member.
pub fn cluster_status_schema(status_fields: &Value) -> Value {
    let mut values = status_fields.clone();
    if values.get("type").is_none() {
        values = json!({"type": "object"});
    }
    json!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "state": {"type": "string"},
                "message": {"type": "string"},
                "resourcesReady": {"type": "string"},
                "observedGeneration": {"type": "integer"},
                "revision": {"type": "integer"},
                "graphRevision": {"type": "integer"},
                "lastSeen": {"type": "string"},
                "stale": {"type": "boolean"},
                "conditions": conditions_schema(),
                "values": values,
            }
        }
    })
}

fn status_schema(rgd: &ResourceGraphDefinition, status_fields: &Value) -> Result<Value, CrdError> {
    let rgd_name = rgd.name().to_owned();
    let mut status = match status_fields {
        Value::Null => Map::new(),
        Value::Object(m) if m.is_empty() => Map::new(),
        other => match structural(&object_schema(&rgd_name, "status", other)?) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    };
    status.insert("type".into(), json!("object"));
    let properties = status.entry("properties").or_insert_with(|| json!({}));
    let Value::Object(properties) = properties else {
        return Err(CrdError::NotAnObjectSchema {
            rgd: rgd_name,
            part: "status",
            got: "properties that are not a map".into(),
        });
    };
    if rgd.spec.placement.is_some() {
        if properties.contains_key(CLUSTERS_STATUS_FIELD) {
            return Err(CrdError::ReservedStatusField {
                rgd: rgd_name,
                field: CLUSTERS_STATUS_FIELD.into(),
            });
        }
        for field in [
            PLACEMENT_STATUS_FIELD,
            ROLLOUT_STATUS_FIELD,
            INPUTS_HASH_STATUS_FIELD,
        ] {
            if properties.contains_key(field) {
                return Err(CrdError::ReservedStatusField {
                    rgd: rgd_name,
                    field: field.into(),
                });
            }
        }
        properties.insert(
            CLUSTERS_STATUS_FIELD.into(),
            cluster_status_schema(status_fields),
        );
        properties.insert(PLACEMENT_STATUS_FIELD.into(), placement_status_schema());
        properties.insert(ROLLOUT_STATUS_FIELD.into(), rollout_status_schema());
        properties.insert(INPUTS_HASH_STATUS_FIELD.into(), json!({"type": "string"}));
    }
    // kro writes these itself; the docs say an RGD field of the same name
    // is overridden, so the schema must describe kro's values.
    properties.insert("state".into(), json!({"type": "string"}));
    properties.insert("conditions".into(), conditions_schema());
    Ok(crate::json::sorted(Value::Object(status)))
}

/// Keywords a CRD schema may carry. Schemas inferred from built-in kinds can
/// bring others (`$ref`, `allOf`, `x-kubernetes-patch-strategy`, ...), which
/// the API server would drop or refuse.
const CRD_SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "properties",
    "items",
    "additionalProperties",
    "required",
    "enum",
    "nullable",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
];

/// Makes an inferred schema structural, as the API server requires: only
/// CRD keywords (no defaults: kro writes status, nothing should invent it),
/// and every node typed or explicitly open.
pub fn structural(schema: &Value) -> Value {
    let Value::Object(m) = schema else {
        return json!({"x-kubernetes-preserve-unknown-fields": true});
    };
    let mut out = Map::new();
    for (k, v) in m {
        if !CRD_SCHEMA_KEYWORDS.contains(&k.as_str()) {
            continue;
        }
        let v = match (k.as_str(), v) {
            ("properties", Value::Object(props)) => Value::Object(
                props
                    .iter()
                    .map(|(name, sub)| (name.clone(), structural(sub)))
                    .collect(),
            ),
            ("items" | "additionalProperties", Value::Object(_)) => structural(v),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    let flag = |key: &str| out.get(key).and_then(Value::as_bool).unwrap_or(false);
    if !out.contains_key("type")
        && !flag("x-kubernetes-int-or-string")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        if out.contains_key("properties") || out.contains_key("additionalProperties") {
            out.insert("type".into(), json!("object"));
        } else if out.contains_key("items") {
            out.insert("type".into(), json!("array"));
        } else {
            out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
        }
    }
    Value::Object(out)
}

fn object_schema(rgd: &str, part: &'static str, schema: &Value) -> Result<Value, CrdError> {
    match schema {
        Value::Object(m)
            if m.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "object") =>
        {
            let mut m = m.clone();
            m.insert("type".into(), json!("object"));
            Ok(crate::json::sorted(Value::Object(m)))
        }
        other => Err(CrdError::NotAnObjectSchema {
            rgd: rgd.to_owned(),
            part,
            got: other.to_string(),
        }),
    }
}

fn printer_columns(rgd: &str, columns: &[PrinterColumn]) -> Result<Value, CrdError> {
    if columns.is_empty() {
        return Ok(default_printer_columns());
    }
    let mut out = Vec::with_capacity(columns.len());
    for (index, c) in columns.iter().enumerate() {
        let bad = |message: &str| CrdError::InvalidPrinterColumn {
            rgd: rgd.to_owned(),
            index,
            name: c.name.clone(),
            message: message.to_owned(),
        };
        if c.name.trim().is_empty() {
            return Err(bad("name must not be empty"));
        }
        if !["integer", "number", "string", "boolean", "date"].contains(&c.type_.as_str()) {
            return Err(bad(
                "type must be one of integer, number, string, boolean, date",
            ));
        }
        if !c.json_path.starts_with('.') {
            return Err(bad("jsonPath must start with '.' (e.g. .spec.replicas)"));
        }
        if c.priority.is_some_and(|p| p < 0) {
            return Err(bad("priority must not be negative"));
        }
        let mut col = Map::new();
        col.insert("name".into(), json!(c.name));
        col.insert("type".into(), json!(c.type_));
        col.insert("jsonPath".into(), json!(c.json_path));
        if let Some(d) = &c.description {
            col.insert("description".into(), json!(d));
        }
        if let Some(f) = &c.format {
            col.insert("format".into(), json!(f));
        }
        // The API server drops a zero priority (omitempty); so do we.
        if let Some(p) = c.priority.filter(|p| *p != 0) {
            col.insert("priority".into(), json!(p));
        }
        out.push(Value::Object(col));
    }
    // As upstream: the defaults stay, a custom column named like a default
    // replaces it in place, and the other custom columns follow.
    let mut merged: Vec<Value> = Vec::new();
    if let Value::Array(defaults) = default_printer_columns() {
        for default in defaults {
            let replacement = out
                .iter()
                .position(|c| c["name"] == default["name"])
                .map(|i| out.remove(i));
            merged.push(replacement.unwrap_or(default));
        }
    }
    merged.extend(out);
    Ok(Value::Array(merged))
}

/// The RGD's own labels for the CRD, then kro's, which win on conflict.
fn labels(rgd: &ResourceGraphDefinition) -> BTreeMap<String, String> {
    let mut labels = rgd
        .spec
        .schema
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(LABEL_OWNED.into(), "true".into());
    labels.insert(LABEL_KRO_VERSION.into(), env!("CARGO_PKG_VERSION").into());
    labels.insert(LABEL_RGD_NAME.into(), label_value(rgd.name()));
    if let Some(uid) = rgd.metadata.rest.get("uid").and_then(Value::as_str) {
        labels.insert(LABEL_RGD_ID.into(), label_value(uid));
    }
    labels
}

/// A label value: itself when it fits in 63 characters, else `h-` and 40
/// hex digits of its SHA-256 (the scheme kro-hub uses for all its labels).
pub fn label_value(v: &str) -> String {
    if v.len() <= 63 {
        return v.to_owned();
    }
    let digest = Sha256::digest(v.as_bytes());
    let mut out = String::from("h-");
    for byte in digest.iter().take(20) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Sorts object keys recursively so generated schemas print in a stable,
/// kubectl-like order.
fn check_metadata(rgd: &str, meta: &crate::rgd::CrdMetadata) -> Result<(), CrdError> {
    let bad = |field, key: &str, message: String| CrdError::InvalidMetadata {
        rgd: rgd.to_owned(),
        field,
        key: key.to_owned(),
        message,
    };
    for (key, value) in &meta.labels {
        qualified_name(key).map_err(|m| bad("labels", key, m))?;
        if !value.is_empty() && !is_label_name(value) {
            return Err(bad(
                "labels",
                key,
                format!(
                    "value {value:?} must be at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric"
                ),
            ));
        }
    }
    for key in meta.annotations.keys() {
        qualified_name(key).map_err(|m| bad("annotations", key, m))?;
    }
    Ok(())
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain.
fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.len() > 253 || !p.split('.').all(is_dns_label))
    {
        return Err(format!("prefix {p:?} must be a lowercase DNS subdomain"));
    }
    if !is_label_name(name) {
        return Err(format!(
            "name {name:?} must be 1-63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric"
        ));
    }
    Ok(())
}

fn is_label_name(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !s.is_empty()
        && s.len() <= 63
        && alnum(s.chars().next())
        && alnum(s.chars().next_back())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Group of kro-hub's own APIs (Cluster, ...): never an RGD's.
pub const HUB_GROUP: &str = "hub.kro.run";

/// Why no RGD may serve `kind` (with `plural`) in `group`, if so. An RGD
/// serving one of these would replace the CRD of an API others depend on:
/// applying a CRD for `resourcegraphdefinitions.kro.run` once pruned the
/// spec of every RGD in a cluster. Kubernetes keeps `*.k8s.io` and
/// `*.kubernetes.io` for its own APIs (it refuses CRDs there without an
/// API review approval).
pub fn reserved_api(group: &str, kind: &str, plural: &str) -> Option<&'static str> {
    let in_domain = |domain: &str| group == domain || group.ends_with(&format!(".{domain}"));
    if in_domain(HUB_GROUP) {
        return Some("the group is reserved for kro-hub's own APIs");
    }
    if group == "kro.run"
        && (kind == "ResourceGraphDefinition" || plural == "resourcegraphdefinitions")
    {
        return Some("ResourceGraphDefinition is kro-hub's own API");
    }
    if in_domain("k8s.io") || in_domain("kubernetes.io") {
        return Some("the group is reserved for Kubernetes' own APIs");
    }
    None
}

fn is_kind(kind: &str) -> bool {
    let mut chars = kind.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && kind.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric())
}

fn is_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let rest = &rest[digits..];
    if rest.is_empty() {
        return true;
    }
    let tail = rest
        .strip_prefix("alpha")
        .or_else(|| rest.strip_prefix("beta"));
    tail.is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_group(g: &str) -> bool {
    g.len() <= 253 && g.contains('.') && g.split('.').all(is_dns_label)
}

fn check_label(rgd: &str, field: &str, value: &str) -> Result<(), CrdError> {
    let starts_with_letter = value.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if is_dns_label(value) && starts_with_letter {
        Ok(())
    } else {
        Err(CrdError::InvalidName {
            rgd: rgd.to_owned(),
            field: field.to_owned(),
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests;

//! Bounds on what one RGD may ask of the compiler.
//!
//! Every RGD applied to a cluster is compiled by a long-running controller,
//! so a hostile one must be refused quickly and with little memory rather
//! than exhaust a thread's stack or the heap. Each limit is checked before
//! the work it bounds, is far above what real RGDs use, and is named in the
//! error that enforces it (`... (limit MAX_SCHEMA_DEPTH)`).
//!
//! Why these values: the CRD generated from an RGD, and the RGD itself, are
//! stored in etcd, whose objects are at most 1.5 MiB. The smallest schema
//! node (`{"type":"string"}` under a one-letter name) takes about 20 bytes,
//! so a CRD of more than about 75,000 nodes could never be stored; the node
//! limit sits well below that, where compiling still takes milliseconds and a
//! few MiB. For scale, the upstream example RGDs use at most 5 custom types,
//! 8 resources, spec schemas 9 levels deep of 50 nodes, templates 11 levels
//! deep, 44 expressions and 2 forEach dimensions; a status holding a whole
//! Deployment and a whole StatefulSet is 16 levels deep and 2,733 nodes.

use std::fmt;

use serde_json::Value;

use crate::compile::{Seg, display_path};
use crate::error::{Error, Location};
use crate::rgd::ResourceGraphDefinition;

pub use crate::compile::MAX_COLLECTION_ITEMS;
pub use crate::expr::MAX_EXPRESSION_LEN;
pub use crate::simpleschema::MAX_NESTING;

/// Most custom types in `spec.schema.types`.
pub const MAX_CUSTOM_TYPES: usize = 256;
/// Deepest nesting of objects, lists and maps in a generated schema, counted
/// through custom types (the schema's root is level 1).
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// Most schema nodes (objects, lists, maps and scalars) produced for one RGD:
/// its custom types, spec and status, each custom type counted once per use.
pub const MAX_SCHEMA_NODES: usize = 20_000;
/// Most SimpleSchema text (field names, types, markers) the schemas of one RGD
/// are made of, each custom type counted once per use. The OpenAPI it turns
/// into is larger still, so past this size the CRD could not be stored.
pub const MAX_SCHEMA_TEXT_BYTES: usize = 1536 * 1024;
/// Most entries in `spec.resources`.
pub const MAX_RESOURCES: usize = 256;
/// Deepest nesting of maps and lists in a template, an externalRef, the
/// status fields or the placement (the value itself is level 1).
pub const MAX_TEMPLATE_DEPTH: usize = 128;
/// Most `${...}` expressions (and validation rules) in one RGD.
pub const MAX_EXPRESSIONS: usize = 5_000;
/// Most `forEach` dimensions of one resource.
pub const MAX_FOREACH_DIMENSIONS: usize = 16;

/// A compile limit: what errors name so users can look it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`MAX_CUSTOM_TYPES`].
    CustomTypes,
    /// [`MAX_SCHEMA_DEPTH`].
    SchemaDepth,
    /// [`MAX_SCHEMA_NODES`].
    SchemaNodes,
    /// [`MAX_SCHEMA_TEXT_BYTES`].
    SchemaTextBytes,
    /// [`MAX_RESOURCES`].
    Resources,
    /// [`MAX_TEMPLATE_DEPTH`].
    TemplateDepth,
    /// [`MAX_EXPRESSIONS`].
    Expressions,
    /// [`MAX_FOREACH_DIMENSIONS`].
    ForEachDimensions,
}

impl Limit {
    /// Every limit, for documentation and tests.
    pub const ALL: [Limit; 8] = [
        Limit::CustomTypes,
        Limit::SchemaDepth,
        Limit::SchemaNodes,
        Limit::SchemaTextBytes,
        Limit::Resources,
        Limit::TemplateDepth,
        Limit::Expressions,
        Limit::ForEachDimensions,
    ];

    /// The bound itself.
    pub const fn value(self) -> usize {
        match self {
            Limit::CustomTypes => MAX_CUSTOM_TYPES,
            Limit::SchemaDepth => MAX_SCHEMA_DEPTH,
            Limit::SchemaNodes => MAX_SCHEMA_NODES,
            Limit::SchemaTextBytes => MAX_SCHEMA_TEXT_BYTES,
            Limit::Resources => MAX_RESOURCES,
            Limit::TemplateDepth => MAX_TEMPLATE_DEPTH,
            Limit::Expressions => MAX_EXPRESSIONS,
            Limit::ForEachDimensions => MAX_FOREACH_DIMENSIONS,
        }
    }

    /// The name of its constant, as error messages print it.
    pub const fn name(self) -> &'static str {
        match self {
            Limit::CustomTypes => "MAX_CUSTOM_TYPES",
            Limit::SchemaDepth => "MAX_SCHEMA_DEPTH",
            Limit::SchemaNodes => "MAX_SCHEMA_NODES",
            Limit::SchemaTextBytes => "MAX_SCHEMA_TEXT_BYTES",
            Limit::Resources => "MAX_RESOURCES",
            Limit::TemplateDepth => "MAX_TEMPLATE_DEPTH",
            Limit::Expressions => "MAX_EXPRESSIONS",
            Limit::ForEachDimensions => "MAX_FOREACH_DIMENSIONS",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.name(), self.value())
    }
}

/// How big a schema is, as the limits measure it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SchemaSize {
    /// Levels from the root to the deepest node (a lone scalar is 1).
    pub depth: usize,
    /// Nodes: the root, properties, items and additionalProperties.
    pub nodes: usize,
}

/// Measures a generated schema without recursion.
pub(crate) fn schema_size(schema: &Value) -> SchemaSize {
    let mut size = SchemaSize::default();
    let mut stack = vec![(schema, 1usize)];
    while let Some((node, level)) = stack.pop() {
        size.nodes = size.nodes.saturating_add(1);
        size.depth = size.depth.max(level);
        let children = node
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.values())
            .chain(node.get("items"))
            .chain(node.get("additionalProperties"))
            .filter(|c| c.is_object());
        stack.extend(children.map(|c| (c, level + 1)));
    }
    size
}

/// Checks the status schema, once inferred, against the schema limits
/// (`spec_nodes` is what the spec and custom types already produced).
pub(crate) fn check_status_schema(
    rgd: &str,
    status: &Value,
    spec_nodes: usize,
) -> Result<(), Error> {
    let size = schema_size(status);
    let at = || Location {
        rgd: rgd.to_owned(),
        field: "spec.schema.status".to_owned(),
        ..Location::default()
    };
    if size.depth > MAX_SCHEMA_DEPTH {
        return Err(over(
            at(),
            Limit::SchemaDepth,
            format!(
                "the status schema nests deeper than {MAX_SCHEMA_DEPTH} levels of objects, lists and maps"
            ),
        ));
    }
    if spec_nodes.saturating_add(size.nodes) > MAX_SCHEMA_NODES {
        return Err(over(
            at(),
            Limit::SchemaNodes,
            format!(
                "the spec ({spec_nodes} nodes) and status ({} nodes) schemas together have more than {MAX_SCHEMA_NODES} nodes",
                size.nodes
            ),
        ));
    }
    Ok(())
}

/// Checks the limits that can be checked on the RGD as written, before any
/// of it is compiled: how many resources, forEach dimensions and expressions
/// it has, and how deep the JSON the compiler walks nests.
pub(crate) fn check_rgd(rgd: &ResourceGraphDefinition) -> Result<(), Error> {
    let name = rgd.name();
    let at = |resource: Option<&str>, field: String| Location {
        rgd: name.to_owned(),
        resource: resource.map(str::to_owned),
        field,
        expression: None,
    };
    let resources = &rgd.spec.resources;
    if resources.len() > MAX_RESOURCES {
        return Err(over(
            at(None, "spec.resources".to_owned()),
            Limit::Resources,
            format!(
                "{} resources, more than the {MAX_RESOURCES} allowed",
                resources.len()
            ),
        ));
    }

    let mut expressions = 0usize;
    let mut count = |n: usize, at: Location| {
        expressions = expressions.saturating_add(n);
        if expressions > MAX_EXPRESSIONS {
            return Err(over(
                at,
                Limit::Expressions,
                format!("more than {MAX_EXPRESSIONS} ${{...}} expressions in the RGD"),
            ));
        }
        Ok(())
    };
    let too_deep = |at: Location| {
        over(
            at,
            Limit::TemplateDepth,
            format!("more than {MAX_TEMPLATE_DEPTH} levels of nested maps and lists"),
        )
    };

    for (i, r) in resources.iter().enumerate() {
        let id = Some(r.id.as_str());
        if r.for_each.len() > MAX_FOREACH_DIMENSIONS {
            return Err(over(
                at(id, "forEach".to_owned()),
                Limit::ForEachDimensions,
                format!(
                    "{} forEach dimensions, more than the {MAX_FOREACH_DIMENSIONS} allowed",
                    r.for_each.len()
                ),
            ));
        }
        let conditions = r.include_when.len() + r.ready_when.len() + r.for_each.len();
        count(conditions, at(id, format!("spec.resources[{i}]")))?;
        if let Some(template) = &r.template {
            let n = walk(template).map_err(|path| too_deep(at(id, display_path(&path))))?;
            count(n, at(id, format!("spec.resources[{i}].template")))?;
        }
        if let Some(e) = &r.external_ref {
            let n = [&e.metadata.name, &e.metadata.namespace]
                .into_iter()
                .flatten()
                .map(|s| expressions_in(s))
                .sum();
            count(n, at(id, "externalRef.metadata".to_owned()))?;
            if let Some(selector) = &e.metadata.selector {
                let field = "externalRef.metadata.selector";
                let n = walk(selector).map_err(|path| too_deep(at(id, join(field, &path))))?;
                count(n, at(id, field.to_owned()))?;
            }
        }
    }

    let schema = &rgd.spec.schema;
    count(
        schema.validation.len(),
        at(None, "spec.schema.validation".to_owned()),
    )?;
    let placement = rgd.spec.placement.as_ref();
    let roots = [
        ("spec.schema.status", schema.status.as_ref()),
        (
            "spec.placement.clusterSelector",
            placement.and_then(|p| p.cluster_selector.as_ref()),
        ),
        (
            "spec.placement.clusters",
            placement.and_then(|p| p.clusters.as_ref()),
        ),
    ];
    for (field, value) in roots {
        if let Some(value) = value {
            let n = walk(value).map_err(|path| too_deep(at(None, join(field, &path))))?;
            count(n, at(None, field.to_owned()))?;
        }
    }
    Ok(())
}

/// Counts the `${` in every string of `value`, or returns the path of the
/// first node deeper than [`MAX_TEMPLATE_DEPTH`]. Iterative: the depth is
/// what is being checked, so it must not be recursed on.
fn walk(value: &Value) -> Result<usize, Vec<Seg>> {
    let mut expressions = 0usize;
    // Each entry: a value, its level and the step that led to it from the
    // entry below it on the path.
    let mut stack: Vec<(&Value, usize, Option<Seg>)> = vec![(value, 1, None)];
    // The path to the node being visited, rebuilt as the walk unwinds.
    let mut path: Vec<Seg> = Vec::new();
    while let Some((node, level, seg)) = stack.pop() {
        path.truncate(level.saturating_sub(2));
        if let Some(seg) = seg {
            path.push(seg);
        }
        if level > MAX_TEMPLATE_DEPTH {
            return Err(path);
        }
        match node {
            Value::String(s) => expressions = expressions.saturating_add(expressions_in(s)),
            Value::Array(items) => stack.extend(
                items
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, v)| (v, level + 1, Some(Seg::Index(i)))),
            ),
            Value::Object(fields) => stack.extend(
                fields
                    .iter()
                    .rev()
                    .map(|(k, v)| (v, level + 1, Some(Seg::Key(k.clone())))),
            ),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(expressions)
}

/// How many `${` a string holds: an upper bound on its expressions (escaped
/// ones are counted too, which only makes the limit stricter for them).
fn expressions_in(s: &str) -> usize {
    s.matches("${").count()
}

fn join(field: &str, path: &[Seg]) -> String {
    match path.first() {
        None => field.to_owned(),
        Some(Seg::Index(_)) => format!("{field}{}", display_path(path)),
        Some(Seg::Key(_)) => format!("{field}.{}", display_path(path)),
    }
}

fn over(at: Location, limit: Limit, what: String) -> Error {
    Error::Invalid {
        at,
        message: format!("{what} (limit {})", limit.name()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn walk_counts_expressions_and_finds_the_deep_path() {
        let v = json!({"a": ["${x}", {"b": "${y}-${z}"}], "c": 1});
        assert_eq!(walk(&v), Ok(3));

        // The leaf is at level MAX_TEMPLATE_DEPTH: allowed.
        let deep = (1..MAX_TEMPLATE_DEPTH).fold(json!("leaf"), |v, _| Value::Array(vec![v]));
        let top = Value::Object(serde_json::Map::from_iter([(
            "top".to_owned(),
            deep.clone(),
        )]));
        let err = walk(&top).unwrap_err();
        assert_eq!(err.len(), MAX_TEMPLATE_DEPTH);
        assert_eq!(err[0], Seg::Key("top".into()));
        assert_eq!(walk(&deep), Ok(0));
    }

    #[test]
    fn schema_size_counts_nodes_and_levels() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "array", "items": {"type": "string"}},
            "b": {"type": "object", "additionalProperties": {"type": "integer"}},
            "c": {"type": "string"}
        }});
        assert_eq!(schema_size(&s), SchemaSize { depth: 3, nodes: 6 });
    }

    #[test]
    fn limits_print_their_names() {
        assert_eq!(Limit::SchemaDepth.to_string(), "MAX_SCHEMA_DEPTH = 32");
        for limit in Limit::ALL {
            assert!(limit.name().starts_with("MAX_"), "{limit}");
        }
    }
}

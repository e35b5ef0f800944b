//! kro-core: the resource-graph engine shared by the hub controller, the CLI
//! and the derive macro. It performs no I/O: everything here is a pure
//! function of the RGD, the instance and the objects observed so far.
//!
//! ```
//! let rgd = kro_core::parse_rgd_yaml(r#"
//! apiVersion: kro.run/v1alpha1
//! kind: ResourceGraphDefinition
//! metadata: {name: demo}
//! spec:
//!   schema:
//!     apiVersion: v1alpha1
//!     kind: Demo
//!     spec: {name: string}
//!   resources:
//!   - id: config
//!     template:
//!       apiVersion: v1
//!       kind: ConfigMap
//!       metadata: {name: "${schema.spec.name}-config"}
//! "#).unwrap();
//! let graph = kro_core::compile(&rgd).unwrap();
//! let ctx = kro_core::EvalContext::new(serde_json::json!({"spec": {"name": "x"}}));
//! let report = graph.render_all(&ctx).unwrap();
//! assert_eq!(report.resources[0].objects[0]["metadata"]["name"], "x-config");
//! ```

pub mod compile;
pub mod crd;
mod error;
pub mod expr;
pub mod graph;
pub mod json;
pub mod limits;
pub mod namespaces;
pub mod render;
pub mod rgd;
pub mod rollout;
pub mod selector;
pub mod simpleschema;

pub use compile::{CompileOptions, CompiledGraph, ResourceNode, compile, compile_with};
pub use error::{Error, Location};
pub use limits::Limit;
pub use render::{
    EvalContext, Inclusion, Readiness, RenderOutcome, RenderReport, RenderedResource,
    ResolvedPlacement,
};
pub use rgd::ResourceGraphDefinition;

/// Parses one RGD from YAML (or JSON). Unknown fields are errors.
pub fn parse_rgd_yaml(text: &str) -> Result<ResourceGraphDefinition, Error> {
    serde_saphyr::from_str(text).map_err(|e| Error::Parse(format!("RGD YAML: {e}")))
}

/// Parses every RGD of a multi-document YAML stream (`---` separated),
/// skipping empty documents.
pub fn parse_rgds_yaml(text: &str) -> Result<Vec<ResourceGraphDefinition>, Error> {
    let docs: Vec<serde_json::Value> = parse_yaml_documents(text)?;
    docs.into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v)
                .map_err(|e| Error::Parse(format!("RGD YAML document {}: {e}", i + 1)))
        })
        .collect()
}

/// Parses every document of a YAML stream as JSON values (instances, RGDs,
/// observed objects), skipping empty documents.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<serde_json::Value>, Error> {
    let docs: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| Error::Parse(format!("YAML: {e}")))?;
    Ok(docs
        .into_iter()
        .flatten()
        .filter(|v| !v.is_null())
        .collect())
}

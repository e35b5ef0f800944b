//! `#[derive(ResourceGraph)]`: a kro ResourceGraphDefinition written as
//! typed Rust structs and checked by the kro engine while the crate compiles.
//!
//! Use it through `kro-sdk`, which re-exports these derives and holds the
//! types the generated code names (`kro_sdk::...` paths, as kube-derive's
//! output names `kube::...`).
//!
//! ```
//! use kro_sdk::{ResourceGraph, ResourceStatus};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(ResourceStatus, Serialize, Deserialize, Clone, Debug)]
//! #[serde(rename_all = "camelCase")]
//! pub struct DemoStatus {
//!     #[kro(expr = "${config.metadata.name}")]
//!     pub config_name: Option<String>,
//! }
//!
//! /// A demo graph: one ConfigMap per instance.
//! #[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
//! #[kro(status = DemoStatus, resource(id = "config", inline = r#"
//! apiVersion: v1
//! kind: ConfigMap
//! metadata: {name: "${schema.spec.name}-config"}
//! "#))]
//! pub struct DemoSpec {
//!     /// Prefix of the ConfigMap's name.
//!     pub name: String,
//!     #[kro(default = 1, minimum = 1)]
//!     pub replicas: i64,
//! }
//!
//! let rgd = Demo::rgd();
//! assert_eq!(rgd.spec.schema.kind, "Demo");
//! assert!(Demo::rgd_yaml().contains("replicas: integer | default=1 minimum=1"));
//! ```
//!
//! # Attributes
//!
//! On the spec struct (`#[kro(...)]`, repeatable):
//! - `kind = "Application"` (default: the struct name without `Spec`),
//!   `rgd = "web-app"` (the RGD's name; default: the kind in kebab-case),
//!   `group`, `version` (default `v1alpha1`), `scope = "Namespaced" | "Cluster"`,
//!   `plural`, `short_name = "..."` and `category = "..."` (repeatable);
//! - `status = MyStatus`: a struct deriving [`ResourceStatus`];
//! - `resource(id = "...", template = "path/to.yaml")`: a resource whose
//!   template is read from a file relative to the crate's `Cargo.toml` when
//!   the crate compiles (and tracked, so editing it rebuilds). Instead of
//!   `template`: `inline = "<yaml>"` or `external_ref = "<yaml>"`. Optional:
//!   `ready_when = "${...}"`, `include_when = "${...}"` (repeatable),
//!   `for_each(name = "${...}")`, `target = "Hub" | "Members"` (with a
//!   placement: `Hub` applies the resource once, on the hub, instead of on
//!   every selected member; a hub resource may not read a member resource);
//! - `builtin_kinds = false`: do not check references into built-in
//!   Kubernetes kinds (Deployment, Service, ...) against their schemas
//!   (Kubernetes 1.32), for clusters of another version;
//! - `printer_column(name, type, json_path, description, priority)`,
//!   `validation(expression, message)`;
//! - `placement(...)`: place each instance on member clusters of the hub
//!   (see below); `placement = "<yaml>"` takes `spec.placement` as YAML.
//! - `rollout = "<yaml>"`: `spec.rollout`, how a change reaches the placed
//!   clusters wave by wave (`waves`, `maxConcurrency`, `minReadySeconds`,
//!   ...); checked by the engine, so a mistake is a compile error naming
//!   the field.
//!
//! ## Placement
//!
//! ```
//! # use kro_sdk::ResourceGraph;
//! # use serde::{Deserialize, Serialize};
//! #[derive(ResourceGraph, Serialize, Deserialize, Clone, Debug)]
//! #[kro(
//!     placement(
//!         cluster_selector = "env=prod, region in (eu, us), !legacy",
//!         when = "${cluster.labels.region in schema.spec.regions}",
//!         on_deselect = "Orphan",
//!     ),
//!     resource(id = "config", inline = r#"
//! apiVersion: v1
//! kind: ConfigMap
//! metadata: {name: "${schema.spec.name}-${cluster.name}"}
//! "#),
//!     resource(id = "record", target = "Hub", inline = r#"
//! apiVersion: v1
//! kind: ConfigMap
//! metadata: {name: "${schema.spec.name}-record"}
//! "#),
//! )]
//! pub struct EdgeSpec {
//!     pub name: String,
//!     pub regions: Vec<String>,
//! }
//!
//! let placement = serde_json::to_value(Edge::rgd().spec.placement).unwrap();
//! assert_eq!(placement["clusterSelector"]["matchLabels"]["env"], "prod");
//! assert_eq!(placement["onDeselect"], "Orphan");
//! ```
//!
//! - `cluster_selector = "..."`: a label selector over the hub's `Cluster`
//!   objects, in the `kubectl -l` syntax: `key=value` (or `==`) terms become
//!   `matchLabels`; `key!=value`, `key in (a, b)`, `key notin (a, b)`, `key`
//!   and `!key` become `matchExpressions`. Values may be `${...}` over
//!   `schema`.
//! - `clusters = ["eu-1", "us-1"]`: explicit member names, or
//!   `clusters = "${schema.spec.targets}"`: a list expression over `schema`.
//! - `when = "${...}"`: a bool over `schema` and `cluster` (`cluster.name`,
//!   `cluster.labels`, `cluster.annotations`) that filters the selected
//!   clusters per instance.
//! - `on_deselect = "Delete" | "Orphan"`: what happens to an instance's
//!   objects on a cluster that stops being selected (default `Delete`).
//! - A bare `placement` (or one naming neither selector nor clusters)
//!   selects every member.
//!
//! The engine checks the placement with the rest of the graph: a `when`
//! that is not a bool, an unknown field, a selector reading anything but
//! `schema`, or a `target = "Hub"` resource reading a member resource are
//! compile errors at the attribute that wrote them.
//!
//! On spec and custom-type fields: `default = <literal>`, `minimum`,
//! `maximum`, `min_length`, `max_length`, `min_items`, `max_items`,
//! `pattern`, `one_of = "a,b"`, `validation = "<CEL>"`, `immutable`,
//! `unique_items`, `inline` (a struct field as a nested object instead of a
//! custom type), `description` (default: the doc comment), `required` /
//! `optional` (default: required unless the type is `Option<T>`, the field
//! has a `default`, or `#[serde(default)]`). On status fields:
//! `expr = "${...}"`.
//!
//! Templates are YAML, from files (the usual form) or inline, rather than a
//! typed Rust builder: a template is a Kubernetes object holding `${...}`
//! strings where the typed Kubernetes structs expect numbers or objects, and
//! keeping them as YAML lets the same files serve the hand-written RGD.
//! Every template is still checked by the engine at compile time.
//!
//! Types: `String`, `bool`, integers, `f32`/`f64`, `Vec<T>`,
//! `BTreeMap`/`HashMap<String, T>`, `Option<T>`, `Box<T>`,
//! `serde_json::Value` (an `object`), structs deriving [`SimpleSchema`]
//! (custom types in `spec.schema.types`) and enums of unit variants deriving
//! it (string enums). serde's `rename` and `rename_all` are honoured.
//!
//! Custom and status types must be reachable by the path written in the
//! field type: define them in the same module as the spec struct, or write
//! the module path (`db::Database`), because the derive fetches their
//! definitions through a macro named after them in that module.

#![warn(missing_docs)]

mod assemble;
mod attrs;
mod check;
mod emit;
mod selector;
mod types;

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, parse_macro_input};

/// Declares a ResourceGraphDefinition from its spec struct and generates the
/// kind type. See the crate documentation for the attributes.
#[proc_macro_derive(ResourceGraph, attributes(kro))]
pub fn derive_resource_graph(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    if let Err(e) = attrs::parse_item(&input, true) {
        return e.to_compile_error().into();
    }
    quote! { ::kro_sdk::__check! { spec { #input } } }.into()
}

/// A custom type (struct) or string enum (unit-variant enum) usable in a
/// resource graph's spec.
#[proc_macro_derive(SimpleSchema, attributes(kro))]
pub fn derive_simple_schema(input: TokenStream) -> TokenStream {
    item_callback(parse_macro_input!(input as DeriveInput))
}

/// The status struct of a resource graph: each field carries its CEL
/// expression as `#[kro(expr = "${...}")]`, or is a nested status struct.
#[proc_macro_derive(ResourceStatus, attributes(kro))]
pub fn derive_resource_status(input: TokenStream) -> TokenStream {
    item_callback(parse_macro_input!(input as DeriveInput))
}

/// Not public API: the compile-time check `#[derive(ResourceGraph)]` expands to.
#[doc(hidden)]
#[proc_macro]
pub fn __check(input: TokenStream) -> TokenStream {
    check::check(input.into()).into()
}

fn item_callback(input: DeriveInput) -> TokenStream {
    if let Err(e) = attrs::parse_item(&input, false) {
        return e.to_compile_error().into();
    }
    let mac = check::item_macro(&input.ident);
    let ident = &input.ident;
    let marker = input
        .generics
        .params
        .is_empty()
        .then(|| quote! { impl ::kro_sdk::GraphType for #ident {} });
    quote! {
        #marker
        #[doc(hidden)]
        macro_rules! #mac {
            ($($payload:tt)*) => { ::kro_sdk::__check! { $($payload)* item { #input } } };
        }
        #[doc(hidden)]
        #[allow(unused_imports)]
        pub(crate) use #mac;
    }
    .into()
}

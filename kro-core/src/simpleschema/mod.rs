//! SimpleSchema, kro's compact schema language, turned into the structural
//! OpenAPI v3 schema of the generated CRD.
//!
//! ```yaml
//! spec:
//!   name: string | required=true description="App name"
//!   replicas: integer | default=1 minimum=1 maximum=100
//!   ports: "[]integer | uniqueItems=true"
//!   env: map[string]string
//!   database: Database          # a custom type from `types`
//! types:
//!   Database:
//!     host: string | required=true
//!     port: integer | default=5432
//! ```
//!
//! Every type and marker upstream kro accepts is accepted with the same
//! meaning; malformed markers, unknown types, bad defaults and cyclic custom
//! types are errors naming the exact field path.
//!
//! # Types
//! | SimpleSchema | OpenAPI |
//! |---|---|
//! | `string`, `integer`, `boolean` | the same `type` |
//! | `float`, `number` | `type: number` (upstream emits `float`, which the API server refuses) |
//! | `object` | `type: object` + `x-kubernetes-preserve-unknown-fields: true` |
//! | `[]T` | `type: array`, `items: T` |
//! | `map[string]T` | `type: object`, `additionalProperties: T` (other key types are errors) |
//! | a nested map of fields | `type: object` with `properties` (sorted) and `required` |
//! | a name from `types` | that type's schema, inlined; an alias declared `required=true` makes every field of its type required |
//!
//! An object whose fields have defaults and none is required gets
//! `default: {}`, so the API server fills the defaults in when it is absent.
//!
//! # Markers (`type | key=value key="quoted value"`)
//! | marker | effect | accepted on |
//! |---|---|---|
//! | `required=<bool>` | listed in the parent's `required` | any |
//! | `default=<v>` | raw text for strings, JSON otherwise; must satisfy the field's own schema | any |
//! | `description=<text>` | `description` | any |
//! | `minimum=`, `maximum=<number>` | bounds; `minimum <= maximum` | any (like upstream) |
//! | `enum="a,b"` | `enum` | `string`, `integer` |
//! | `pattern=<regex>` | `pattern` (must compile) | `string` |
//! | `minLength=`, `maxLength=<n>` | lengths, `n >= 0` | `string` |
//! | `minItems=`, `maxItems=<n>` | item counts, `n >= 0` | arrays |
//! | `uniqueItems=<bool>` | `x-kubernetes-list-type: set` | arrays of scalars |
//! | `immutable=<bool>` | rule `self == oldSelf`, message `field is immutable` | not inside list items |
//! | `printColumn="TITLE"` | a printer column of the generated CRD (`.spec.<path>`) | scalar fields, not inside lists or maps |
//! | `validation=<CEL>` | rule with message `validation failed` (must parse) | not with `oldSelf` inside list items |
//!
//! Booleans are Go's (`true`, `True`, `TRUE`, `t`, `1`, ...). In a quoted
//! value only `\"` and `\\` are escapes (so `pattern="^\d+$"` keeps its
//! backslash); `{...}` and `[...]` values may contain spaces. Any other
//! marker is an error.
//!
//! ```
//! use kro_core::simpleschema::{to_openapi, SchemaNode};
//! use serde_json::json;
//!
//! let spec = json!({
//!     "replicas": "integer | default=1 minimum=1",
//!     "database": "Database",
//! });
//! let types = json!({"Database": {"host": "string | required=true"}});
//! let schema = to_openapi(Some(&spec), Some(&types)).unwrap();
//! let root = SchemaNode::new(&schema);
//! assert_eq!(root.path("replicas").unwrap().default(), Some(&json!(1)));
//! assert!(root.property("database").unwrap().is_required("host"));
//!
//! let err = to_openapi(Some(&json!({"port": "integer | default=http"})), None).unwrap_err();
//! assert_eq!(err.path, "spec.schema.spec.port");
//! ```

mod build;
mod error;
mod markers;
mod navigate;
mod types;
mod validate;

use serde_json::{Value, json};

pub use error::{Reason, SchemaError};
pub use markers::{Marker, MarkerKind, parse_markers};
pub use navigate::SchemaNode;
pub use types::{MAX_NESTING, Scalar, TypeExpr};

use crate::rgd::ResourceGraphDefinition;

/// Where the spec's SimpleSchema lives in an RGD (for error paths).
pub const SPEC_PATH: &str = "spec.schema.spec";
/// Where custom types live in an RGD (for error paths).
pub const TYPES_PATH: &str = "spec.schema.types";

/// The OpenAPI schema of an instance's `.spec`: an object with one property
/// per declared field, the RGD's `validation` rules as
/// `x-kubernetes-validations`, and `default: {}` when some field has a
/// default and none is required (so that defaults apply to an empty spec).
pub fn spec_schema(rgd: &ResourceGraphDefinition) -> Result<Value, SchemaError> {
    spec_schema_counted(rgd).map(|(spec, _)| spec)
}

/// [`spec_schema`], with how many schema nodes the spec and custom types
/// produced (see [`crate::limits::MAX_SCHEMA_NODES`]).
pub(crate) fn spec_schema_counted(
    rgd: &ResourceGraphDefinition,
) -> Result<(Value, usize), SchemaError> {
    let schema = &rgd.spec.schema;
    let (mut spec, nodes) = to_openapi_counted(schema.spec.as_ref(), schema.types.as_ref())?;
    for (i, rule) in schema.validation.iter().enumerate() {
        crate::expr::CompiledExpr::parse(&rule.expression).map_err(|e| {
            SchemaError::new(
                format!("spec.schema.validation[{i}].expression"),
                Reason::InvalidRule {
                    rule: rule.expression.clone(),
                    message: e.to_string(),
                },
            )
        })?;
    }
    if !schema.validation.is_empty()
        && let Value::Object(map) = &mut spec
    {
        let rules: Vec<Value> = schema
            .validation
            .iter()
            .map(|v| match &v.message {
                Some(message) => json!({"rule": v.expression, "message": message}),
                None => json!({"rule": v.expression}),
            })
            .collect();
        map.insert("x-kubernetes-validations".into(), Value::Array(rules));
    }
    Ok((spec, nodes))
}

/// Converts a SimpleSchema map (`spec`) with its custom `types` into an
/// OpenAPI object schema. Error paths are relative to the RGD
/// (`spec.schema.spec.<field>`).
///
/// The result is bounded by [`crate::limits`]: at most
/// [`crate::limits::MAX_CUSTOM_TYPES`] custom types, nesting at most
/// [`crate::limits::MAX_SCHEMA_DEPTH`] levels and producing at most
/// [`crate::limits::MAX_SCHEMA_NODES`] nodes, all checked before the custom
/// types are inlined.
pub fn to_openapi(spec: Option<&Value>, types: Option<&Value>) -> Result<Value, SchemaError> {
    to_openapi_counted(spec, types).map(|(schema, _)| schema)
}

fn to_openapi_counted(
    spec: Option<&Value>,
    types: Option<&Value>,
) -> Result<(Value, usize), SchemaError> {
    let builder = build::Builder::with_types(types, TYPES_PATH)?;
    let schema = match spec {
        None | Some(Value::Null) => json!({"type": "object"}),
        Some(Value::Object(fields)) => builder.root(fields, SPEC_PATH)?,
        Some(other) => {
            return Err(SchemaError::new(
                SPEC_PATH,
                Reason::BadNode(format!("{other} (spec must be a map of fields)")),
            ));
        }
    };
    Ok((schema, builder.nodes()))
}

/// Parses one field string (`integer | default=1 minimum=0`) into its
/// OpenAPI schema, with custom types from `types`. `required` tells whether
/// the field marked itself (or its type) required.
pub fn field_schema(text: &str, types: Option<&Value>) -> Result<(Value, bool), SchemaError> {
    let builder = build::Builder::with_types(types, TYPES_PATH)?;
    let mut fields = serde_json::Map::new();
    fields.insert("field".into(), Value::String(text.to_owned()));
    let object = builder.root(&fields, "")?;
    let required = SchemaNode::new(&object).is_required("field");
    let field = object
        .get("properties")
        .and_then(|p| p.get("field"))
        .cloned()
        .unwrap_or(Value::Null);
    Ok((field, required))
}

/// Checks a value (an instance's `spec`, a default) against a generated
/// schema the way the API server validates a custom resource: types, enums,
/// bounds, lengths, patterns, item counts, sets, required and unknown
/// fields. The error names the first violation and its path inside `value`.
/// CEL rules (`x-kubernetes-validations`) are not evaluated here.
pub fn validate_value(value: &Value, schema: &Value) -> Result<(), String> {
    validate::check(value, schema)
}

#[cfg(test)]
mod tests;

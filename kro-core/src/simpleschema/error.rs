//! Errors of the SimpleSchema parser. Each names the exact field path in the
//! RGD (`spec.schema.spec.database.port`) and what is wrong there.

use thiserror::Error;

use crate::limits::Limit;

/// A SimpleSchema error at one field.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{path}: {reason}")]
pub struct SchemaError {
    /// Dotted path of the offending field inside the RGD, e.g.
    /// `spec.schema.spec.ports` or `spec.schema.types.Server.port`.
    pub path: String,
    /// What is wrong.
    pub reason: Reason,
}

impl SchemaError {
    pub(crate) fn new(path: impl Into<String>, reason: Reason) -> Self {
        Self {
            path: path.into(),
            reason,
        }
    }
}

/// Why a SimpleSchema field was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Reason {
    /// The type before `|` is empty.
    #[error("empty type")]
    EmptyType,
    /// A type name that is neither built in nor declared in `schema.types`.
    #[error(
        "unknown type {0:?} (built-in types: string, integer, boolean, float, number, object, []T, map[string]T; custom types come from spec.schema.types)"
    )]
    UnknownType(String),
    /// `map[K]V` with a key type other than `string`.
    #[error("map keys must be strings: {0:?}")]
    MapKey(String),
    /// A malformed `[]T` or `map[string]T`.
    #[error("malformed type {type_:?}: {message}")]
    MalformedType {
        /// The type text.
        type_: String,
        /// What is missing.
        message: String,
    },
    /// `[][][]...` or `map[string]map[string]...` nested too deeply.
    #[error("type nesting deeper than {0} levels")]
    TooDeep(usize),
    /// A marker key upstream does not know.
    #[error(
        "unknown marker {0:?} (valid markers: required, default, description, enum, minimum, maximum, pattern, minLength, maxLength, uniqueItems, minItems, maxItems, immutable, validation, printColumn)"
    )]
    UnknownMarker(String),
    /// The marker list after `|` cannot be tokenised.
    #[error("invalid marker syntax: {0}")]
    MarkerSyntax(String),
    /// A known marker with a value it cannot take or on a type it does not fit.
    #[error("marker {marker}={value:?}: {message}")]
    BadMarker {
        /// Marker key.
        marker: &'static str,
        /// The value as written (unquoted).
        value: String,
        /// Why it does not fit.
        message: String,
    },
    /// A default that does not validate against its own field schema.
    #[error("default {value} does not fit the field: {message}")]
    BadDefault {
        /// The default, as JSON.
        value: String,
        /// The first violation found.
        message: String,
    },
    /// Custom types that refer to each other in a loop.
    #[error("custom types form a cycle: {0}")]
    TypeCycle(String),
    /// A custom type whose name is a built-in type or type syntax.
    #[error("custom type name {0:?} is reserved (it is a built-in type or type syntax)")]
    ReservedTypeName(String),
    /// A node that is neither a type string nor a map of fields.
    #[error("expected a SimpleSchema type string or a map of fields, got {0}")]
    BadNode(String),
    /// A field written as a nested OpenAPI schema instead of SimpleSchema.
    #[error(
        "this looks like a nested OpenAPI schema; SimpleSchema writes a field inline as one string, e.g. {0:?}"
    )]
    OpenApiSchema(String),
    /// A `spec.schema.validation` rule that is not valid CEL.
    #[error("rule {rule:?} is not valid CEL: {message}")]
    InvalidRule {
        /// The rule.
        rule: String,
        /// The parser's message.
        message: String,
    },
    /// `immutable=true` or an `oldSelf` rule inside the items of a list.
    #[error(
        "{0} uses oldSelf (immutable=true or a transition rule) inside list items; the API server only allows that outside lists, or in lists keyed by x-kubernetes-list-type: map"
    )]
    TransitionRuleInList(String),
    /// The schema would go over one of the compile limits.
    #[error("{message} (limit {name})", name = limit.name())]
    OverLimit {
        /// Which limit.
        limit: Limit,
        /// What went over it.
        message: String,
    },
    /// A field name the API server would not accept.
    #[error("invalid field name {0:?}: {1}")]
    BadFieldName(String, &'static str),
}

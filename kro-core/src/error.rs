//! The one error type of kro-core. Every message names the RGD, and where it
//! applies the resource id, the field path and the expression.

use std::fmt;

use thiserror::Error;

use crate::simpleschema::SchemaError;

/// Where in an RGD something went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// RGD name.
    pub rgd: String,
    /// Resource id, when the problem is inside one resource.
    pub resource: Option<String>,
    /// Field path: inside the resource's template (`spec.replicas`), or in the
    /// RGD (`spec.schema.status.ready`, `includeWhen[0]`).
    pub field: String,
    /// The expression text (without `${}`), when one is involved.
    pub expression: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RGD \"{}\"", self.rgd)?;
        if let Some(r) = &self.resource {
            write!(f, ", resource \"{r}\"")?;
        }
        if !self.field.is_empty() {
            write!(f, ", field \"{}\"", self.field)?;
        }
        if let Some(e) = &self.expression {
            write!(
                f,
                ", expression \"${{{}}}\"",
                shorten(e, MAX_QUOTED_EXPRESSION)
            )?;
        }
        Ok(())
    }
}

/// Longest expression text quoted whole in a message; longer ones are cut
/// (messages end up in conditions and events, which must stay small).
pub const MAX_QUOTED_EXPRESSION: usize = 200;

/// `text`, or its first `max` bytes (on a character boundary) and how much
/// was left out.
pub fn shorten(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &text[..end], text.len() - end).into()
}

/// Everything that can go wrong in kro-core.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The YAML or JSON of an RGD (or instance) does not parse or does not
    /// match the RGD types.
    #[error("{0}")]
    Parse(String),
    /// A SimpleSchema error in the RGD's schema.
    #[error("RGD \"{rgd}\": {source}")]
    Schema {
        /// RGD name.
        rgd: String,
        /// The schema error, with its path.
        #[source]
        source: SchemaError,
    },
    /// The instance CRD cannot be generated (its message names the RGD).
    #[error(transparent)]
    Crd(#[from] crate::crd::CrdError),
    /// The RGD is invalid: a static check failed.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What.
        message: String,
    },
    /// The resources depend on each other in a cycle.
    #[error("RGD \"{rgd}\": dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// RGD name.
        rgd: String,
        /// Ids along the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// An expression failed at run time.
    #[error("{at}: evaluation failed: {message}")]
    Eval {
        /// Where.
        at: Location,
        /// What.
        message: String,
    },
    /// A resource id the graph does not have.
    #[error("RGD \"{rgd}\": no resource with id \"{id}\"")]
    UnknownResource {
        /// RGD name.
        rgd: String,
        /// The id asked for.
        id: String,
    },
}

impl Error {
    /// A CamelCase reason for status conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Parse(_) => "InvalidYAML",
            Error::Schema { .. } => "InvalidSchema",
            Error::Crd(_) => "InvalidCRD",
            Error::Invalid { .. } => "InvalidResourceGraph",
            Error::Cycle { .. } => "DependencyCycle",
            Error::Eval { .. } => "EvaluationError",
            Error::UnknownResource { .. } => "UnknownResource",
        }
    }

    /// Where the problem is, when it is inside the RGD.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Invalid { at, .. } | Error::Eval { at, .. } => Some(at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_expressions_are_quoted_shortened() {
        let at = Location {
            rgd: "web".into(),
            resource: None,
            field: String::new(),
            expression: Some(format!("{}é{}", "a".repeat(199), "b".repeat(1000))),
        };
        let text = at.to_string();
        assert!(text.ends_with("a... (1002 more bytes)}\""), "{text}");
        assert!(text.len() < 300);
    }

    #[test]
    fn messages_name_rgd_resource_field_and_expression() {
        let e = Error::Invalid {
            at: Location {
                rgd: "web".into(),
                resource: Some("svc".into()),
                field: "spec.type".into(),
                expression: Some("schema.spec.kind".into()),
            },
            message: "undefined field 'kind'".into(),
        };
        assert_eq!(
            e.to_string(),
            r#"RGD "web", resource "svc", field "spec.type", expression "${schema.spec.kind}": undefined field 'kind'"#
        );
        assert_eq!(e.reason(), "InvalidResourceGraph");
        assert_eq!(
            e.location().and_then(|l| l.resource.as_deref()),
            Some("svc")
        );
        let c = Error::Cycle {
            rgd: "web".into(),
            cycle: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(c.to_string(), r#"RGD "web": dependency cycle: a -> b -> a"#);
        assert_eq!(c.reason(), "DependencyCycle");
    }
}

//! The type part of a SimpleSchema field (before `|`): `string`,
//! `[]map[string]Server`, ...

use super::error::Reason;

/// Upstream bounds nesting so that `[][][]...string` cannot exhaust the stack.
pub const MAX_NESTING: usize = 16;

/// A scalar OpenAPI type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// `string`.
    String,
    /// `integer` (int64).
    Integer,
    /// `boolean`.
    Boolean,
    /// `float` or `number` (OpenAPI `number`).
    Number,
}

impl Scalar {
    /// The OpenAPI `type` value.
    pub fn openapi(self) -> &'static str {
        match self {
            Scalar::String => "string",
            Scalar::Integer => "integer",
            Scalar::Boolean => "boolean",
            Scalar::Number => "number",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "string" => Some(Scalar::String),
            "integer" => Some(Scalar::Integer),
            "boolean" => Some(Scalar::Boolean),
            // Upstream names it `float`; OpenAPI has only `number`.
            "float" | "number" => Some(Scalar::Number),
            _ => None,
        }
    }
}

/// A parsed SimpleSchema type expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeExpr {
    /// A scalar.
    Scalar(Scalar),
    /// `object`: any object, unknown fields kept.
    Object,
    /// `[]T`.
    List(Box<TypeExpr>),
    /// `map[string]T`.
    Map(Box<TypeExpr>),
    /// A name declared in `schema.types`.
    Custom(String),
}

impl TypeExpr {
    /// Parses a type expression.
    pub fn parse(s: &str) -> Result<Self, Reason> {
        parse_at(s, 0)
    }

    /// Custom type names this expression refers to.
    pub fn custom_refs<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            TypeExpr::Scalar(_) | TypeExpr::Object => {}
            TypeExpr::List(inner) | TypeExpr::Map(inner) => inner.custom_refs(out),
            TypeExpr::Custom(name) => out.push(name),
        }
    }
}

/// True when `name` cannot be a custom type because it reads as a built-in.
pub fn is_reserved_name(name: &str) -> bool {
    Scalar::parse(name).is_some()
        || name == "object"
        || name.starts_with("[]")
        || name.starts_with("map[")
}

fn parse_at(s: &str, depth: usize) -> Result<TypeExpr, Reason> {
    if depth > MAX_NESTING {
        return Err(Reason::TooDeep(MAX_NESTING));
    }
    let s = s.trim();
    if s.is_empty() {
        return Err(Reason::EmptyType);
    }
    if let Some(scalar) = Scalar::parse(s) {
        return Ok(TypeExpr::Scalar(scalar));
    }
    if s == "object" {
        return Ok(TypeExpr::Object);
    }
    if let Some(elem) = s.strip_prefix("[]") {
        if elem.trim().is_empty() {
            return Err(Reason::MalformedType {
                type_: s.to_owned(),
                message: "missing element type after []".into(),
            });
        }
        return Ok(TypeExpr::List(Box::new(parse_at(elem, depth + 1)?)));
    }
    if let Some(rest) = s.strip_prefix("map[") {
        let Some(value) = rest.strip_prefix("string]") else {
            let key = rest.split(']').next().unwrap_or(rest);
            return Err(Reason::MapKey(key.to_owned()));
        };
        if value.trim().is_empty() {
            return Err(Reason::MalformedType {
                type_: s.to_owned(),
                message: "missing value type after map[string]".into(),
            });
        }
        return Ok(TypeExpr::Map(Box::new(parse_at(value, depth + 1)?)));
    }
    // Any other name refers to `schema.types`; whether it exists is checked
    // when the schema is built, where the field path is known.
    Ok(TypeExpr::Custom(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_aliases() {
        assert_eq!(
            TypeExpr::parse("string").unwrap(),
            TypeExpr::Scalar(Scalar::String)
        );
        assert_eq!(
            TypeExpr::parse(" float ").unwrap(),
            TypeExpr::Scalar(Scalar::Number)
        );
        assert_eq!(
            TypeExpr::parse("number").unwrap(),
            TypeExpr::Scalar(Scalar::Number)
        );
        assert_eq!(TypeExpr::parse("object").unwrap(), TypeExpr::Object);
    }

    #[test]
    fn nested_collections() {
        let t = TypeExpr::parse("[]map[string][]Server").unwrap();
        assert_eq!(
            t,
            TypeExpr::List(Box::new(TypeExpr::Map(Box::new(TypeExpr::List(Box::new(
                TypeExpr::Custom("Server".into())
            ))))))
        );
        let mut refs = Vec::new();
        t.custom_refs(&mut refs);
        assert_eq!(refs, vec!["Server"]);
    }

    #[test]
    fn malformed() {
        assert_eq!(TypeExpr::parse("  "), Err(Reason::EmptyType));
        assert!(matches!(
            TypeExpr::parse("[]"),
            Err(Reason::MalformedType { .. })
        ));
        assert_eq!(
            TypeExpr::parse("map[int]string"),
            Err(Reason::MapKey("int".into()))
        );
        assert!(matches!(
            TypeExpr::parse("map[string]"),
            Err(Reason::MalformedType { .. })
        ));
        assert_eq!(
            TypeExpr::parse("[string"),
            Ok(TypeExpr::Custom("[string".into()))
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}string", "[]".repeat(MAX_NESTING + 1));
        assert_eq!(TypeExpr::parse(&deep), Err(Reason::TooDeep(MAX_NESTING)));
        let ok = format!("{}string", "[]".repeat(MAX_NESTING));
        assert!(TypeExpr::parse(&ok).is_ok());
    }

    #[test]
    fn reserved_names() {
        for name in ["string", "float", "object", "[]x", "map[string]x"] {
            assert!(is_reserved_name(name), "{name}");
        }
        assert!(!is_reserved_name("Server"));
    }
}

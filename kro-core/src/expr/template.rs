//! Scanning `${...}` expressions out of template strings.
//!
//! A string that is exactly one `${expr}` is *standalone*: its value keeps the
//! expression's type. Any other string holding expressions is a *string
//! template* whose parts are concatenated. Inside an expression, braces nest
//! and string literals are skipped, so `${{"a": "}"}["a"]}` and the escape
//! `${"${X}"}` (a literal `${X}`) scan as one expression each, as upstream kro
//! scans them.

use thiserror::Error;

/// One piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text, copied as is.
    Text(String),
    /// The source of one CEL expression (without `${` and `}`).
    Expr(String),
}

/// What a template string is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// No expression at all.
    Literal,
    /// Exactly one expression spanning the whole string.
    Standalone(String),
    /// Text and expressions mixed: the result is a string.
    Template(Vec<Part>),
}

/// Why a template string cannot be scanned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanError {
    /// `${` without its closing `}`.
    #[error("unterminated expression starting at byte {0}: missing closing '}}'")]
    Unterminated(usize),
    /// `${` inside an expression, outside of a string literal.
    #[error("nested expressions are not allowed (byte {0})")]
    Nested(usize),
    /// `${}` or `${   }`.
    #[error("empty expression at byte {0}")]
    Empty(usize),
}

/// Splits `text` into literal text and expressions.
pub fn scan(text: &str) -> Result<Scanned, ScanError> {
    if !text.contains("${") {
        return Ok(Scanned::Literal);
    }
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            let body_start = i + 2;
            let end = find_close(bytes, body_start).map_err(|e| match e {
                CloseError::Unterminated => ScanError::Unterminated(i),
                CloseError::Nested(at) => ScanError::Nested(at),
            })?;
            let body = &text[body_start..end];
            if body.trim().is_empty() {
                return Err(ScanError::Empty(i));
            }
            if literal_start < i {
                parts.push(Part::Text(text[literal_start..i].to_owned()));
            }
            parts.push(Part::Expr(body.to_owned()));
            i = end + 1;
            literal_start = i;
        } else {
            i += 1;
        }
    }
    if literal_start < text.len() {
        parts.push(Part::Text(text[literal_start..].to_owned()));
    }
    match parts.as_slice() {
        [Part::Expr(e)] => Ok(Scanned::Standalone(e.clone())),
        _ => Ok(Scanned::Template(parts)),
    }
}

enum CloseError {
    Unterminated,
    Nested(usize),
}

/// Index of the `}` closing an expression whose body starts at `start`.
fn find_close(bytes: &[u8], start: usize) -> Result<usize, CloseError> {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                i = skip_string(bytes, i, quote).ok_or(CloseError::Unterminated)?;
                continue;
            }
            b'$' if bytes.get(i + 1) == Some(&b'{') => return Err(CloseError::Nested(i)),
            b'{' => depth += 1,
            b'}' => {
                if depth == 0 {
                    return Ok(i);
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    Err(CloseError::Unterminated)
}

/// Index just past the string literal opening at `open`, honouring CEL's
/// triple quotes and backslash escapes.
fn skip_string(bytes: &[u8], open: usize, quote: u8) -> Option<usize> {
    let triple = bytes.get(open + 1) == Some(&quote) && bytes.get(open + 2) == Some(&quote);
    let mut i = if triple { open + 3 } else { open + 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => {
                if !triple {
                    return Some(i + 1);
                }
                if bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote) {
                    return Some(i + 3);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_literal() {
        assert_eq!(scan("hello $ {x}").unwrap(), Scanned::Literal);
    }

    #[test]
    fn whole_string_expression_is_standalone() {
        assert_eq!(
            scan("${schema.spec.replicas}").unwrap(),
            Scanned::Standalone("schema.spec.replicas".into())
        );
    }

    #[test]
    fn text_around_makes_a_template() {
        assert_eq!(
            scan("${schema.spec.name}-service").unwrap(),
            Scanned::Template(vec![
                Part::Expr("schema.spec.name".into()),
                Part::Text("-service".into())
            ])
        );
        assert_eq!(
            scan("${a}${b}").unwrap(),
            Scanned::Template(vec![Part::Expr("a".into()), Part::Expr("b".into())])
        );
    }

    #[test]
    fn braces_and_strings_inside_expressions() {
        assert_eq!(
            scan(r#"${{"a": "}"}["a"]}"#).unwrap(),
            Scanned::Standalone(r#"{"a": "}"}["a"]"#.into())
        );
        assert_eq!(
            scan(r#"${"${X}"}"#).unwrap(),
            Scanned::Standalone(r#""${X}""#.into())
        );
        assert_eq!(
            scan(r#"${'it\'s }'}"#).unwrap(),
            Scanned::Standalone(r#"'it\'s }'"#.into())
        );
        assert_eq!(
            scan(r#"${"""a " } b"""}"#).unwrap(),
            Scanned::Standalone(r#""""a " } b""""#.into())
        );
    }

    #[test]
    fn errors() {
        assert_eq!(scan("${a"), Err(ScanError::Unterminated(0)));
        assert_eq!(scan("x ${a ${b}}"), Err(ScanError::Nested(6)));
        assert_eq!(scan("${ }"), Err(ScanError::Empty(0)));
        assert_eq!(scan("${'abc}"), Err(ScanError::Unterminated(0)));
    }
}

//! The marker list after `|` in a SimpleSchema field: `required=true
//! default="a b" enum="x,y" validation="self > 0"`.
//!
//! Quoting follows upstream kro exactly so that RGDs written for it parse the
//! same way here: a value may be a bare word, a double-quoted string (where
//! `\"` and `\\` are escapes and any other `\x` is kept verbatim), or a JSON
//! object/array whose brackets may contain spaces.

use std::fmt;

use super::error::Reason;

/// Every marker upstream kro accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// `required=<bool>`: the field is listed in its parent's `required`.
    Required,
    /// `default=<value>`: a JSON value, or the raw text for strings.
    Default,
    /// `description=<text>`.
    Description,
    /// `minimum=<number>`.
    Minimum,
    /// `maximum=<number>`.
    Maximum,
    /// `validation=<CEL>`: an `x-kubernetes-validations` rule.
    Validation,
    /// `enum="a,b"`: strings or integers.
    Enum,
    /// `immutable=<bool>`: the rule `self == oldSelf`.
    Immutable,
    /// `pattern=<regex>`: strings only.
    Pattern,
    /// `uniqueItems=<bool>`: `x-kubernetes-list-type: set`; arrays only.
    UniqueItems,
    /// `minLength=<int>`: strings only.
    MinLength,
    /// `maxLength=<int>`: strings only.
    MaxLength,
    /// `minItems=<int>`: arrays only.
    MinItems,
    /// `maxItems=<int>`: arrays only.
    MaxItems,
    /// `printColumn="TITLE"`: a printer column of the generated CRD showing
    /// this field; scalar fields only.
    PrintColumn,
}

impl MarkerKind {
    /// All markers, in the order the documentation lists them.
    pub const ALL: [MarkerKind; 15] = [
        MarkerKind::Required,
        MarkerKind::Default,
        MarkerKind::Description,
        MarkerKind::Minimum,
        MarkerKind::Maximum,
        MarkerKind::Validation,
        MarkerKind::Enum,
        MarkerKind::Immutable,
        MarkerKind::Pattern,
        MarkerKind::UniqueItems,
        MarkerKind::MinLength,
        MarkerKind::MaxLength,
        MarkerKind::MinItems,
        MarkerKind::MaxItems,
        MarkerKind::PrintColumn,
    ];

    /// The marker's key as written in SimpleSchema.
    pub fn key(self) -> &'static str {
        match self {
            MarkerKind::Required => "required",
            MarkerKind::Default => "default",
            MarkerKind::Description => "description",
            MarkerKind::Minimum => "minimum",
            MarkerKind::Maximum => "maximum",
            MarkerKind::Validation => "validation",
            MarkerKind::Enum => "enum",
            MarkerKind::Immutable => "immutable",
            MarkerKind::Pattern => "pattern",
            MarkerKind::UniqueItems => "uniqueItems",
            MarkerKind::MinLength => "minLength",
            MarkerKind::MaxLength => "maxLength",
            MarkerKind::MinItems => "minItems",
            MarkerKind::MaxItems => "maxItems",
            MarkerKind::PrintColumn => "printColumn",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }
}

impl fmt::Display for MarkerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One parsed `key=value` marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Which marker.
    pub kind: MarkerKind,
    /// The value with surrounding quotes removed and escapes resolved.
    pub value: String,
}

/// Parses the text after `|`.
pub fn parse_markers(text: &str) -> Result<Vec<Marker>, Reason> {
    let mut markers = Vec::new();
    let mut current: Option<MarkerKind> = None;
    let mut buffer = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut depth: usize = 0;

    for c in text.chars() {
        match c {
            '=' if current.is_none() && !in_quotes && depth == 0 => {
                let key = buffer.trim();
                if key.is_empty() {
                    return Err(Reason::MarkerSyntax("a marker has an empty key".into()));
                }
                let kind = MarkerKind::from_key(key)
                    .ok_or_else(|| Reason::UnknownMarker(key.to_owned()))?;
                current = Some(kind);
                buffer.clear();
            }
            '"' if !escaped => {
                in_quotes = !in_quotes;
                buffer.push(c);
            }
            '\\' if in_quotes && !escaped => {
                escaped = true;
                buffer.push(c);
            }
            '{' | '[' if !in_quotes => {
                depth += 1;
                buffer.push(c);
            }
            '}' | ']' if !in_quotes => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| Reason::MarkerSyntax(format!("unmatched closing {c:?}")))?;
                buffer.push(c);
            }
            c if c.is_whitespace() && !in_quotes && depth == 0 => match current.take() {
                Some(kind) => {
                    markers.push(Marker {
                        kind,
                        value: process_value(&buffer),
                    });
                    buffer.clear();
                }
                // Upstream silently glues `required true=...` into one
                // unknown key; naming the value-less marker is clearer.
                None if !buffer.trim().is_empty() => {
                    return Err(Reason::MarkerSyntax(format!(
                        "marker {:?} has no value (expected {}=<value>)",
                        buffer.trim(),
                        buffer.trim()
                    )));
                }
                None => {}
            },
            c => {
                if escaped && in_quotes {
                    escaped = false;
                }
                buffer.push(c);
            }
        }
    }

    if in_quotes {
        return Err(Reason::MarkerSyntax("unclosed quote".into()));
    }
    if depth > 0 {
        return Err(Reason::MarkerSyntax("unclosed bracket or brace".into()));
    }
    match current {
        Some(kind) => markers.push(Marker {
            kind,
            value: process_value(&buffer),
        }),
        None if !buffer.trim().is_empty() => {
            return Err(Reason::MarkerSyntax(format!(
                "marker {:?} has no value (expected {}=<value>)",
                buffer.trim(),
                buffer.trim()
            )));
        }
        None if markers.is_empty() => {
            return Err(Reason::MarkerSyntax(
                "nothing after '|' (remove it or add markers)".into(),
            ));
        }
        None => {}
    }
    Ok(markers)
}

fn process_value(raw: &str) -> String {
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        unescape(&raw[1..raw.len() - 1])
    } else {
        raw.trim().to_owned()
    }
}

/// Only `\"` and `\\` are escapes; `\n` stays two characters, like upstream
/// (regex patterns such as `\d` must survive untouched).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if c != '"' && c != '\\' {
                out.push('\\');
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    if escaped {
        out.push('\\');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MarkerKind, value: &str) -> Marker {
        Marker {
            kind,
            value: value.to_owned(),
        }
    }

    #[test]
    fn bare_and_quoted_values() {
        let got =
            parse_markers(r#"required=true default=5 description="This has spaces""#).unwrap();
        assert_eq!(
            got,
            vec![
                m(MarkerKind::Required, "true"),
                m(MarkerKind::Default, "5"),
                m(MarkerKind::Description, "This has spaces"),
            ]
        );
    }

    #[test]
    fn json_values_keep_inner_spaces() {
        let got = parse_markers(r#"default={"key": "value b"} required=true"#).unwrap();
        assert_eq!(
            got,
            vec![
                m(MarkerKind::Default, r#"{"key": "value b"}"#),
                m(MarkerKind::Required, "true"),
            ]
        );
        let got = parse_markers(r#"default=["a", "b"]"#).unwrap();
        assert_eq!(got, vec![m(MarkerKind::Default, r#"["a", "b"]"#)]);
    }

    #[test]
    fn escapes_inside_quotes() {
        let got = parse_markers(
            r#"description="This has \"quotes\" and a \n newline" default="\"quoted\"""#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                m(
                    MarkerKind::Description,
                    r#"This has "quotes" and a \n newline"#
                ),
                m(MarkerKind::Default, r#""quoted""#),
            ]
        );
    }

    #[test]
    fn regex_backslashes_survive() {
        let got = parse_markers(r#"pattern="^\d+\.\w$""#).unwrap();
        assert_eq!(got, vec![m(MarkerKind::Pattern, r"^\d+\.\w$")]);
    }

    #[test]
    fn equals_inside_quoted_value() {
        let got = parse_markers(r#"validation="self == oldSelf" immutable=true"#).unwrap();
        assert_eq!(
            got,
            vec![
                m(MarkerKind::Validation, "self == oldSelf"),
                m(MarkerKind::Immutable, "true"),
            ]
        );
    }

    #[test]
    fn every_marker_key_is_recognised() {
        for kind in MarkerKind::ALL {
            let got = parse_markers(&format!("{kind}=x")).unwrap();
            assert_eq!(got, vec![m(kind, "x")]);
        }
    }

    #[test]
    fn syntax_errors() {
        let cases = [
            ("invalid=true", "unknown marker"),
            ("description=\"unclosed", "unclosed quote"),
            ("default={\"a\": 1", "unclosed bracket"),
            ("default=}", "unmatched"),
            ("=value", "empty key"),
            ("required", "has no value"),
            ("required default=1", "has no value"),
            ("   ", "nothing after"),
        ];
        for (input, want) in cases {
            let err = parse_markers(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err}");
        }
    }

    #[test]
    fn trailing_whitespace_is_fine() {
        assert_eq!(
            parse_markers("required=true  ").unwrap(),
            vec![m(MarkerKind::Required, "true")]
        );
    }
}

//! Label and field selectors, parsed with the real server's grammar and error messages.

use serde_json::Value;

/// A selector operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `=` or `==`.
    Eq,
    /// `!=`.
    NotEq,
    /// `in (...)`.
    In,
    /// `notin (...)`.
    NotIn,
    /// bare key.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `>`.
    Gt,
    /// `<`.
    Lt,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Values (one for Eq/NotEq/Gt/Lt).
    pub values: Vec<String>,
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Eq,
    DoubleEq,
    NotEq,
    Not,
    Gt,
    Lt,
    In,
    NotIn,
    Open,
    Close,
    Comma,
    End,
}

impl Tok {
    /// The token where a key or value is expected: `in` and `notin` are keywords only in
    /// operator position, as in the real parser's value context.
    fn as_value(&self) -> Option<String> {
        match self {
            Tok::Ident(s) => Some(s.clone()),
            Tok::In => Some("in".into()),
            Tok::NotIn => Some("notin".into()),
            _ => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::Eq => "=".into(),
            Tok::DoubleEq => "==".into(),
            Tok::NotEq => "!=".into(),
            Tok::Not => "!".into(),
            Tok::Gt => ">".into(),
            Tok::Lt => "<".into(),
            Tok::In => "in".into(),
            Tok::NotIn => "notin".into(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Comma => ",".into(),
            Tok::End => "EOS".into(),
        }
    }
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '=' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::DoubleEq);
                i += 2;
            }
            '=' => {
                out.push(Tok::Eq);
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::NotEq);
                i += 2;
            }
            '!' => {
                out.push(Tok::Not);
                i += 1;
            }
            '>' => {
                out.push(Tok::Gt);
                i += 1;
            }
            '<' => {
                out.push(Tok::Lt);
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !" \t\n\r(),=!<>".contains(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.as_str() {
                    "in" => Tok::In,
                    "notin" => Tok::NotIn,
                    _ => Tok::Ident(word),
                });
            }
        }
    }
    out.push(Tok::End);
    out
}

impl LabelSelector {
    /// Parses `labelSelector`; the error is the real server's message.
    pub fn parse(s: &str) -> Result<Self, String> {
        let toks = lex(s);
        let mut p = 0;
        let mut reqs = Vec::new();
        if toks[0] == Tok::End {
            return Ok(Self(reqs));
        }
        loop {
            reqs.push(parse_requirement(&toks, &mut p)?);
            match &toks[p] {
                Tok::End => break,
                Tok::Comma => {
                    p += 1;
                    if matches!(toks[p], Tok::End) {
                        return Err("found 'EOS', expected: identifier after ','".to_owned());
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        t.text()
                    ));
                }
            }
        }
        Ok(Self(reqs))
    }

    /// Whether the labels (a JSON object or absent) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| {
            let v = get(&r.key);
            match r.op {
                Op::Eq => v == Some(r.values[0].as_str()),
                Op::NotEq => v != Some(r.values[0].as_str()),
                Op::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotIn => v.is_none_or(|v| !r.values.iter().any(|x| x == v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Gt | Op::Lt => {
                    let (Some(v), Ok(bound)) = (
                        v.and_then(|v| v.parse::<i64>().ok()),
                        r.values[0].parse::<i64>(),
                    ) else {
                        return false;
                    };
                    if r.op == Op::Gt { v > bound } else { v < bound }
                }
            }
        })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_requirement(toks: &[Tok], p: &mut usize) -> Result<Requirement, String> {
    let unable = |m: String| format!("unable to parse requirement: {m}");
    let negate = toks[*p] == Tok::Not;
    if negate {
        *p += 1;
    }
    let key = match toks[*p].as_value() {
        Some(k) => k,
        None => {
            let t = &toks[*p];
            return Err(unable(format!(
                "found '{}', expected: identifier",
                t.text()
            )));
        }
    };
    validate_label_key(&key).map_err(unable)?;
    *p += 1;
    if negate {
        return Ok(Requirement {
            key,
            op: Op::DoesNotExist,
            values: vec![],
        });
    }
    let op = match &toks[*p] {
        Tok::End | Tok::Comma => {
            return Ok(Requirement {
                key,
                op: Op::Exists,
                values: vec![],
            });
        }
        Tok::Eq | Tok::DoubleEq => Op::Eq,
        Tok::NotEq => Op::NotEq,
        Tok::In => Op::In,
        Tok::NotIn => Op::NotIn,
        Tok::Gt => Op::Gt,
        Tok::Lt => Op::Lt,
        t => {
            return Err(unable(format!(
                "found '{}', expected: {}",
                t.text(),
                "'=', '!=', '==', 'in', notin'"
            )));
        }
    };
    *p += 1;
    let values = if matches!(op, Op::In | Op::NotIn) {
        if toks[*p] != Tok::Open {
            return Err(unable(format!("found '{}' expected: '('", toks[*p].text())));
        }
        *p += 1;
        let mut vals = Vec::new();
        loop {
            match &toks[*p] {
                t if t.as_value().is_some() => {
                    vals.extend(t.as_value());
                    *p += 1;
                }
                Tok::Close if vals.is_empty() => {
                    // `in ()` is allowed syntactically and means an empty value.
                    vals.push(String::new());
                }
                Tok::Comma => vals.push(String::new()),
                t => {
                    return Err(unable(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        t.text()
                    )));
                }
            }
            match &toks[*p] {
                Tok::Comma => *p += 1,
                Tok::Close => {
                    *p += 1;
                    break;
                }
                t => {
                    return Err(unable(format!(
                        "found '{}', expected: ',' or ')'",
                        t.text()
                    )));
                }
            }
        }
        vals
    } else {
        match toks[*p].as_value() {
            Some(v) => {
                *p += 1;
                vec![v]
            }
            None => match &toks[*p] {
                Tok::End | Tok::Comma => vec![String::new()],
                t => {
                    return Err(unable(format!(
                        "found '{}', expected: identifier",
                        t.text()
                    )));
                }
            },
        }
    };
    Ok(Requirement { key, op, values })
}

fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| !p.is_empty() && p.len() <= 253);
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "invalid label key \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ))
    }
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// Field path, e.g. `metadata.name`.
    pub field: String,
    /// `true` for `!=`.
    pub negate: bool,
    /// Compared value.
    pub value: String,
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldTerm>);

impl FieldSelector {
    /// Parses `fieldSelector`, accepting only `allowed` fields (message as the real server's).
    pub fn parse(s: &str, allowed: &[&str]) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (field, negate, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            if !allowed.contains(&field) {
                let list = allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(format!(
                    "\"{field}\" is not a known field selector: only {list}"
                ));
            }
            terms.push(FieldTerm {
                field: field.to_owned(),
                negate,
                value: value.to_owned(),
            });
        }
        Ok(Self(terms))
    }

    /// Parses `fieldSelector` for a resource: its field labels are converted as the real
    /// server converts them (the events API group's labels name core Event fields), and
    /// each term then reads the stored object's field that label selects.
    pub fn for_resource(s: &str, group: &str, plural: &str) -> Result<Self, String> {
        let allowed = allowed_fields(group, plural);
        let mut sel = Self::parse(s, &allowed).map_err(|e| {
            // Kinds with their own label conversion word the refusal their own way.
            match s.split(',').find_map(|p| {
                let f = p.split(['!', '=']).next().unwrap_or_default();
                (!p.is_empty() && !allowed.contains(&f)).then_some(f)
            }) {
                Some(f) if allowed.len() > 2 => format!("field label not supported: {f}"),
                _ => e,
            }
        })?;
        let (group, plural) = if (group, plural) == ("events.k8s.io", "events") {
            for t in &mut sel.0 {
                if let Some(core) = crate::registry::events::core_field_label(&t.field) {
                    t.field = core.to_owned();
                }
            }
            ("", "events")
        } else {
            (group, plural)
        };
        for t in &mut sel.0 {
            if let Some(path) = selectable_path(group, plural, &t.field) {
                t.field = path.to_owned();
            }
        }
        Ok(sel)
    }

    /// Whether the object satisfies every term. A term's field is a dotted path, or
    /// paths joined by `|` of which the first non-empty one counts.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|t| {
            let actual = t
                .field
                .split('|')
                .map(|path| field_text(obj, path))
                .find(|v| !v.is_empty())
                .unwrap_or_default();
            (actual == t.value) != t.negate
        })
    }

    /// Whether the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The text of the field at a dotted path ("" when absent).
fn field_text(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for seg in path.split('.') {
        cur = cur.get(seg).unwrap_or(&Value::Null);
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Selectable fields whose value is not the field of the same path: an Event's `source`
/// is its source component, or else its reporting component.
fn selectable_path(group: &str, plural: &str, label: &str) -> Option<&'static str> {
    match (group, plural, label) {
        ("", "events", "source") => Some("source.component|reportingComponent"),
        _ => None,
    }
}

/// Field selectors a resource supports beyond `metadata.name` / `metadata.namespace`.
pub fn allowed_fields(group: &str, plural: &str) -> Vec<&'static str> {
    let mut f = vec!["metadata.name", "metadata.namespace"];
    match (group, plural) {
        ("", "pods") => f.extend([
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]),
        ("", "secrets") => f.push("type"),
        ("", "events") => f.extend([
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]),
        ("events.k8s.io", "events") => f.extend([
            "reason",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reportingController",
            "source",
            "type",
        ]),
        ("", "namespaces") => f.push("status.phase"),
        ("", "nodes") => f.push("spec.unschedulable"),
        ("batch", "jobs") => f.push("status.successful"),
        ("apps", "replicasets") => f.push("status.replicas"),
        _ => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_values_and_keys_outside_operator_position() {
        let labels = serde_json::json!({"in": "notin", "a": "in"});
        for (sel, want) in [
            ("a=in", true),
            ("a in (in, notin)", true),
            ("in=notin", true),
            ("a notin (in)", false),
            ("in", true),
            ("!notin", true),
        ] {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(Some(&labels)), want, "{sel}");
        }
        assert!(LabelSelector::parse("a in in").is_err());
    }
    use serde_json::json;

    #[test]
    fn parses_every_operator() {
        let l = json!({"app": "web", "env": "prod"});
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&l));
        assert!(m("app=web") && m("app==web") && m("app!=db") && m("env in (prod,staging)"));
        assert!(m("env notin (dev)") && m("env") && m("!tier") && m("app=web,env!=dev"));
        assert!(!m("app=db") && !m("!env") && !m("tier"));
    }

    #[test]
    fn reports_the_real_servers_parse_error() {
        assert_eq!(
            LabelSelector::parse("app in web").unwrap_err(),
            "unable to parse requirement: found 'web' expected: '('"
        );
    }

    #[test]
    fn field_selector_rejects_unknown_fields() {
        let e =
            FieldSelector::parse("data.x=1", &["metadata.name", "metadata.namespace"]).unwrap_err();
        assert_eq!(
            e,
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        let f = FieldSelector::parse("metadata.name!=a", &["metadata.name"]).unwrap();
        assert!(f.matches(&json!({"metadata": {"name": "b"}})));
    }
}

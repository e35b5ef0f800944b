//! CEL in kro templates: scanning `${...}`, parsing with the `cel` crate,
//! reference extraction, the function library, static type checks and
//! bounded evaluation.

pub mod check;
pub mod comprehensions;
pub mod cost;
pub mod flip;
pub mod library;
pub mod net;
pub mod openapi;
pub mod quantity;
pub mod refs;
pub mod size;
pub mod template;
pub mod time;
pub mod url;
pub mod value;

use std::collections::BTreeSet;
use std::sync::Arc;

use cel::{Context, ExecutionError, Value};
use thiserror::Error;

pub use refs::Reference;

/// Longest expression source accepted.
pub const MAX_EXPRESSION_LEN: usize = 16 * 1024;

/// Why an expression cannot be compiled.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExprError {
    /// The `${...}` scan failed.
    #[error("{0}")]
    Scan(#[from] template::ScanError),
    /// CEL syntax error.
    #[error("syntax error: {0}")]
    Parse(String),
    /// Source too long.
    #[error("expression is {0} bytes long, more than the {MAX_EXPRESSION_LEN} allowed")]
    TooLong(usize),
    /// The function environment could not be built (a bug, reported not panicked).
    #[error("CEL environment: {0}")]
    Env(String),
}

/// CEL's reserved words, which cannot name a field or variable.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The AST of a plain field path (`schema.spec.name`), the most common
/// expression in templates, built without running the full parser: the
/// same `Select` chain the parser produces.
fn fast_chain(source: &str) -> Option<cel::IdedExpr> {
    use cel::common::ast::{Expr, SelectExpr};
    let src = source.trim();
    let mut segments = src.split('.');
    let is_ident = |s: &str| {
        let mut c = s.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && !RESERVED.contains(&s)
    };
    let first = segments.next().filter(|s| is_ident(s))?;
    let mut expr = cel::IdedExpr {
        id: 1,
        expr: Expr::Ident(first.to_owned()),
    };
    for (id, seg) in (2..).zip(segments) {
        if !is_ident(seg) {
            return None;
        }
        expr = cel::IdedExpr {
            id,
            expr: Expr::Select(SelectExpr {
                operand: Box::new(expr),
                field: seg.to_owned(),
                test: false,
            }),
        };
    }
    Some(expr)
}

/// One parsed CEL expression with what it reads. Cloning shares the AST.
#[derive(Debug, Clone)]
pub struct CompiledExpr {
    source: Arc<str>,
    expr: Arc<cel::IdedExpr>,
    references: Arc<BTreeSet<Reference>>,
}

impl CompiledExpr {
    /// Parses `source` (the text between `${` and `}`).
    pub fn parse(source: &str) -> Result<Self, ExprError> {
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(ExprError::TooLong(source.len()));
        }
        let expr = match fast_chain(source) {
            Some(e) => e,
            None => {
                let env = library::env().map_err(ExprError::Env)?;
                env.parser()
                    .parse(source)
                    .map_err(|e| ExprError::Parse(e.to_string()))?
            }
        };
        let references = refs::references(&expr, library::NAMESPACES);
        Ok(Self {
            source: source.into(),
            expr: Arc::new(expr),
            references: Arc::new(references),
        })
    }

    /// The expression text, without `${` and `}`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every variable path the expression reads.
    pub fn references(&self) -> &BTreeSet<Reference> {
        &self.references
    }

    /// The distinct variables the expression reads.
    pub fn roots(&self) -> impl Iterator<Item = &str> {
        let mut last: Option<&str> = None;
        self.references.iter().filter_map(move |r| {
            if last == Some(r.root.as_str()) {
                None
            } else {
                last = Some(r.root.as_str());
                last
            }
        })
    }

    /// Whether the expression calls the global function `name` anywhere.
    pub fn calls(&self, name: &str) -> bool {
        fn walk(e: &cel::IdedExpr, name: &str) -> bool {
            use cel::common::ast::{EntryExpr, Expr};
            match &e.expr {
                Expr::Call(c) => {
                    (c.target.is_none() && c.func_name == name)
                        || c.target.as_deref().is_some_and(|t| walk(t, name))
                        || c.args.iter().any(|a| walk(a, name))
                }
                Expr::Select(s) => walk(&s.operand, name),
                Expr::List(l) => l.elements.iter().any(|x| walk(x, name)),
                Expr::Map(m) => m.entries.iter().any(|en| match &en.expr {
                    EntryExpr::MapEntry(me) => walk(&me.key, name) || walk(&me.value, name),
                    EntryExpr::StructField(f) => walk(&f.value, name),
                }),
                Expr::Struct(st) => st.entries.iter().any(|en| match &en.expr {
                    EntryExpr::MapEntry(me) => walk(&me.key, name) || walk(&me.value, name),
                    EntryExpr::StructField(f) => walk(&f.value, name),
                }),
                Expr::Comprehension(c) => [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ]
                .into_iter()
                .any(|x| walk(x, name)),
                Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => false,
            }
        }
        walk(self.ast(), name)
    }

    /// The parsed AST.
    pub fn ast(&self) -> &cel::IdedExpr {
        &self.expr
    }

    /// Evaluates against `ctx`, refusing programs whose estimated cost over
    /// the actual inputs exceeds [`cost::MAX_COST`].
    pub fn eval(
        &self,
        ctx: &Context<'_, '_>,
        bound: &cost::InputBound,
    ) -> Result<Value, EvalError> {
        self.eval_with(ctx, bound, &|_| None)
    }

    /// [`eval`](Self::eval), also refusing programs that could build a value
    /// larger than [`size::MAX_ESTIMATED_BYTES`]; `lookup` gives the JSON of
    /// the input variables so reads of them are sized exactly.
    pub fn eval_with(
        &self,
        ctx: &Context<'_, '_>,
        bound: &cost::InputBound,
        lookup: size::Lookup<'_>,
    ) -> Result<Value, EvalError> {
        cost::check(self.ast(), bound)?;
        let estimated = size::estimate(self.ast(), bound, lookup);
        if estimated > size::MAX_ESTIMATED_BYTES {
            return Err(EvalError::SizeLimit {
                estimated,
                limit: size::MAX_ESTIMATED_BYTES,
            });
        }
        let value = Value::resolve(&self.expr, ctx).map_err(EvalError::from_execution)?;
        cost::check_output(&value)?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_take_the_fast_path_with_the_parser_s_shape() {
        let env = library::env().unwrap();
        for src in [
            "schema.spec.name",
            "a",
            " deployment.status.availableReplicas ",
            "x_1._y",
        ] {
            let fast = fast_chain(src).unwrap();
            let parsed = env.parser().parse(src).unwrap();
            assert_eq!(
                format!("{:?}", strip(&fast)),
                format!("{:?}", strip(&parsed)),
                "{src}"
            );
        }
        for src in [
            "a.in", "true", "a..b", "a.b()", "a[0]", "1a", "a.?b", "a-b", "",
        ] {
            assert!(fast_chain(src).is_none(), "{src}");
        }
    }

    /// The expression shape without node ids.
    fn strip(e: &cel::IdedExpr) -> String {
        use cel::common::ast::Expr;
        match &e.expr {
            Expr::Ident(n) => n.clone(),
            Expr::Select(s) => format!("{}.{}", strip(&s.operand), s.field),
            other => format!("{other:?}"),
        }
    }
}

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvalError {
    /// A field or key the expression reads is absent: the data may not be
    /// there yet (an object's status), or the instance lacks an optional field.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// Any other runtime error.
    #[error("{0}")]
    Execution(String),
    /// The estimated cost is over the limit.
    #[error("estimated evaluation cost {estimated} exceeds the limit of {limit}")]
    CostLimit {
        /// Estimated cost.
        estimated: u64,
        /// Limit.
        limit: u64,
    },
    /// The values it could build are estimated too large.
    #[error("estimated size of the values built, {estimated} bytes, exceeds the limit of {limit}")]
    SizeLimit {
        /// Estimated bytes.
        estimated: u64,
        /// Limit.
        limit: u64,
    },
    /// The result is too large.
    #[error("result of {0} bytes exceeds the limit of {limit} bytes", limit = cost::MAX_OUTPUT_BYTES)]
    OutputTooLarge(usize),
    /// The result has the wrong type for where it goes.
    #[error("{0}")]
    Type(String),
}

impl EvalError {
    fn from_execution(e: ExecutionError) -> Self {
        match e {
            ExecutionError::NoSuchKey(k) => EvalError::NoSuchKey(k.to_string()),
            other => EvalError::Execution(other.to_string()),
        }
    }
}

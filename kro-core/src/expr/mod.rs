//! CEL in kro templates: scanning `${...}`, parsing with the `cel` crate,
//! reference extraction, the function library, static type checks and
//! bounded evaluation.

pub mod check;
pub mod comprehensions;
pub mod cost;
pub mod flip;
pub mod library;
pub mod meter;
pub mod needs;
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

/// Deepest expression tree accepted. The parser bounds its own recursion,
/// but a long chain of binary operators (`a + a + ... + a`) parses
/// iteratively into a tree as deep as it is long, and every walk over the
/// tree (type checks, cost estimates, the interpreter) recurses on it.
pub const MAX_EXPRESSION_DEPTH: usize = 64;

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
    /// The expression tree is too deep.
    #[error(
        "expression nests deeper than {MAX_EXPRESSION_DEPTH} levels (a chain of operators counts one level each)"
    )]
    TooDeep,
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
    /// The tree evaluation runs: `expr` with the meter's charges (see
    /// [`meter`]); the same tree when there is nothing to meter.
    metered: Arc<cel::IdedExpr>,
    /// Whether evaluating `metered` recurses deep enough to need its own
    /// stack (see [`EVAL_STACK_BYTES`]).
    deep: bool,
    /// See [`CompiledExpr::is_quick`].
    quick: bool,
    references: Arc<BTreeSet<Reference>>,
}

/// Functions and operators whose cost is at most linear in the values they
/// are given: an expression made of these alone, without a comprehension,
/// costs about as much as reading its inputs.
const QUICK_FUNCTIONS: &[&str] = &[
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_+_",
    "_-_",
    "_*_",
    "_/_",
    "_%_",
    "_&&_",
    "_||_",
    "!_",
    "-_",
    "_?_:_",
    "_[_]",
    "_[?_]",
    "_?._",
    "@in",
    "@not_strictly_false",
    "size",
    "has",
    "string",
    "int",
    "uint",
    "double",
    "bool",
    "orValue",
    "hasValue",
    "value",
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "or",
    "startsWith",
    "endsWith",
    "contains",
    "lowerAscii",
    "upperAscii",
    "trim",
];

/// Whether `expr` is built of [`QUICK_FUNCTIONS`] alone, with no comprehension.
fn is_quick(expr: &cel::IdedExpr) -> bool {
    use cel::common::ast::Expr;
    match &expr.expr {
        Expr::Comprehension(_) => false,
        Expr::Call(c) if !QUICK_FUNCTIONS.contains(&c.func_name.as_str()) => false,
        _ => children(expr).into_iter().all(is_quick),
    }
}

impl CompiledExpr {
    /// Parses `source` (the text between `${` and `}`).
    pub fn parse(source: &str) -> Result<Self, ExprError> {
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(ExprError::TooLong(source.len()));
        }
        let expr = match fast_chain(source) {
            Some(e) if e.id as usize <= MAX_EXPRESSION_DEPTH => e,
            Some(_) => return Err(ExprError::TooDeep),
            // The parser recurses per operator with large frames: a long
            // chain of them is parsed (and, if too deep, dropped) on a
            // stack of its own.
            None if needs_own_stack(source) => on_own_stack(|| parse_bounded(source))
                .map_err(|e| ExprError::Env(e.to_string()))??,
            None => parse_bounded(source)?,
        };
        let references = refs::references(&expr, library::NAMESPACES);
        let expr = Arc::new(expr);
        let metered = if only_reads(&expr) {
            expr.clone()
        } else {
            Arc::new(meter::instrument(&expr))
        };
        let deep = depth(&metered) > SHALLOW_DEPTH;
        let quick = !deep && is_quick(&expr);
        Ok(Self {
            source: source.into(),
            expr,
            metered,
            deep,
            quick,
            references: Arc::new(references),
        })
    }

    /// Whether the expression is cheap whatever its inputs: no loop, no deep
    /// nesting, only operators and functions linear in their arguments.
    /// Such an expression can run where it is asked for instead of on a
    /// thread set aside for costly evaluations.
    pub fn is_quick(&self) -> bool {
        self.quick
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
        let resolve = || meter::run(|| Value::resolve(&self.metered, ctx));
        let value = if self.deep {
            on_own_stack(resolve)?
        } else {
            resolve()
        }
        .map_err(EvalError::budget)?
        .map_err(EvalError::from_execution)?;
        cost::check_output(&value)?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_expressions_are_the_loop_free_ones_of_linear_functions() {
        for quick in [
            "schema.spec.name",
            "schema.spec.a + '-' + string(schema.spec.b)",
            "deployment.status.?availableReplicas.orValue(0) == deployment.spec.replicas",
            "has(schema.spec.x) ? schema.spec.x : 'none'",
            "size(schema.spec.items) > 0 && 'a' in schema.spec.items",
        ] {
            assert!(CompiledExpr::parse(quick).unwrap().is_quick(), "{quick}");
        }
        for costly in [
            "schema.spec.items.map(x, x * 2)",
            "schema.spec.items.exists(x, x == 'a')",
            "lists.range(10)",
            "schema.spec.s.split(',')",
            "schema.spec.s.matches('^a+$')",
        ] {
            assert!(!CompiledExpr::parse(costly).unwrap().is_quick(), "{costly}");
        }
    }

    #[test]
    fn nested_brackets_and_long_chains_parse_on_their_own_stack() {
        let parens = format!("{}1{}", "(".repeat(60), ")".repeat(60));
        let chain = vec!["1"; 2000].join(" + ");
        let results = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                (
                    CompiledExpr::parse(&parens).map(|_| ()),
                    CompiledExpr::parse(&chain).map(|_| ()),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(results.0, Ok(()));
        assert_eq!(results.1, Err(ExprError::TooDeep));
        assert!(!needs_own_stack(
            "schema.spec.a + '-' + string(schema.spec.b)"
        ));
    }

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
    /// The evaluation did more work than its budget allows.
    #[error("{}", budget_message(*.0))]
    Budget(meter::Exhausted),
    /// The result is too large.
    #[error("result of {0} bytes exceeds the limit of {limit} bytes", limit = cost::MAX_OUTPUT_BYTES)]
    OutputTooLarge(usize),
    /// The result has the wrong type for where it goes.
    #[error("{0}")]
    Type(String),
}

fn budget_message(which: meter::Exhausted) -> String {
    match which {
        meter::Exhausted::Expression => format!(
            "evaluation cost exceeds the budget of {} units per expression \
             (one unit: a value passed, a list or map entry, or 8 bytes of string)",
            meter::MAX_EXPRESSION_COST
        ),
        meter::Exhausted::Instance(limit) => format!(
            "evaluation cost exceeds the budget of {limit} units per instance, shared by all of \
             its expressions and forEach items"
        ),
    }
}

/// Parses with the full parser, refusing trees deeper than
/// [`MAX_EXPRESSION_DEPTH`].
fn parse_bounded(source: &str) -> Result<cel::IdedExpr, ExprError> {
    let env = library::env().map_err(ExprError::Env)?;
    let expr = env
        .parser()
        .parse(source)
        .map_err(|e| ExprError::Parse(e.to_string()))?;
    if depth(&expr) > MAX_EXPRESSION_DEPTH {
        return Err(ExprError::TooDeep);
    }
    Ok(expr)
}

/// Whether parsing `source` may recurse deeper than a small stack allows,
/// judged without parsing: many operators (each can open a level of the
/// parse tree) or brackets nested more than a few deep (each level costs
/// the parser several frames). Quotes are ignored: overcounting only moves
/// a parse to its own thread.
fn needs_own_stack(source: &str) -> bool {
    let mut operators = 0usize;
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for b in source.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'<' | b'>' | b'=' | b'!' | b'?'
            | b'.' | b',' | b':' => operators += 1,
            _ => {}
        }
    }
    operators > SHALLOW_PARSE || deepest > SHALLOW_BRACKETS
}

/// Most operator characters in a source parsed on the caller's stack (the
/// parser handles about a hundred nested operators on a 2 MiB stack).
const SHALLOW_PARSE: usize = 48;

/// Deepest bracket nesting parsed on the caller's stack (twenty nested
/// parentheses overflow a 2 MiB stack in unoptimised builds).
const SHALLOW_BRACKETS: usize = 6;

/// Deepest expression tree evaluated on the caller's stack. The interpreter
/// recurses once or more per level with large frames (over 20 KiB a level in
/// unoptimised builds): a chain of 50 additions overflows a 2 MiB thread.
const SHALLOW_DEPTH: usize = 16;

/// Stack of the thread a deeper expression is evaluated on: enough for
/// [`MAX_EXPRESSION_DEPTH`] levels with their metering, in any build. It is
/// reserved address space; only the pages the evaluation touches are used.
pub const EVAL_STACK_BYTES: usize = 256 << 20;

/// Runs `f` on a scoped thread with an [`EVAL_STACK_BYTES`] stack, under the
/// caller's instance budget.
fn on_own_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, EvalError> {
    let budget = meter::current();
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("kro-cel-eval".to_owned())
            .stack_size(EVAL_STACK_BYTES)
            .spawn_scoped(scope, || {
                let _guard = budget.as_ref().map(meter::enter);
                f()
            });
        match spawned {
            Ok(handle) => match handle.join() {
                Ok(out) => Ok(out),
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(e) => Err(EvalError::Execution(format!(
                "no thread to evaluate a deep expression on: {e}"
            ))),
        }
    })
}

/// Depth of an expression tree, measured without recursion.
fn depth(expr: &cel::IdedExpr) -> usize {
    let mut max = 0;
    let mut stack = vec![(expr, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        if d > MAX_EXPRESSION_DEPTH {
            break;
        }
        for child in children(e) {
            stack.push((child, d + 1));
        }
    }
    max
}

/// Whether evaluating `expr` only reads variables (a field path): nothing to
/// meter.
fn only_reads(expr: &cel::IdedExpr) -> bool {
    use cel::common::ast::Expr;
    match &expr.expr {
        Expr::Ident(_) | Expr::Literal(_) => true,
        Expr::Select(s) => only_reads(&s.operand),
        _ => false,
    }
}

/// The direct subexpressions of `expr`.
fn children(expr: &cel::IdedExpr) -> Vec<&cel::IdedExpr> {
    use cel::common::ast::{EntryExpr, Expr};
    match &expr.expr {
        Expr::Call(c) => c.target.as_deref().into_iter().chain(&c.args).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|e| match &e.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|e| match &e.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Select(s) => vec![&*s.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

impl EvalError {
    fn budget(which: meter::Exhausted) -> Self {
        EvalError::Budget(which)
    }

    fn from_execution(e: ExecutionError) -> Self {
        match e {
            ExecutionError::NoSuchKey(k) => EvalError::NoSuchKey(k.to_string()),
            other => EvalError::Execution(other.to_string()),
        }
    }
}

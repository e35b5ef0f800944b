//! Bounded evaluation. The `cel` interpreter cannot be interrupted, so the
//! cost of a program is estimated before it runs, over the actual inputs:
//! every AST node costs one unit, multiplied by the iterations of each
//! enclosing comprehension (a literal list's length, `lists.range(n)`'s `n`,
//! else the largest list or map or integer found in the inputs). Results are
//! capped in size afterwards.

use cel::Value;
use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use serde_json::Value as Json;

use super::EvalError;

/// Largest estimated cost of one evaluation (a unit is one AST node visit).
pub const MAX_COST: u64 = 5_000_000;
/// Largest result, in bytes of JSON.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// What the inputs of an evaluation can make a comprehension iterate over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputBound {
    /// Largest list length or map size in the inputs.
    pub max_len: u64,
    /// Largest integer in the inputs (for `lists.range(n)`).
    pub max_int: u64,
}

impl Default for InputBound {
    fn default() -> Self {
        Self {
            max_len: 1,
            max_int: 0,
        }
    }
}

impl InputBound {
    /// Widens the bound to cover another one.
    pub fn merge(&mut self, other: InputBound) {
        self.max_len = self.max_len.max(other.max_len);
        self.max_int = self.max_int.max(other.max_int);
    }

    /// Widens the bound to cover `json`.
    pub fn include(&mut self, json: &Json) {
        match json {
            Json::Array(items) => {
                self.max_len = self.max_len.max(items.len() as u64);
                for i in items {
                    self.include(i);
                }
            }
            Json::Object(fields) => {
                self.max_len = self.max_len.max(fields.len() as u64);
                for v in fields.values() {
                    self.include(v);
                }
            }
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    self.max_int = self.max_int.max(i.unsigned_abs());
                }
            }
            Json::String(s) => {
                // A string can be split into as many parts as it has bytes.
                self.max_len = self.max_len.max(s.len() as u64);
            }
            _ => {}
        }
    }
}

/// Refuses `expr` when its estimated cost is over [`MAX_COST`].
pub fn check(expr: &IdedExpr, bound: &InputBound) -> Result<(), EvalError> {
    let estimated = estimate(expr, bound);
    if estimated > MAX_COST {
        return Err(EvalError::CostLimit {
            estimated,
            limit: MAX_COST,
        });
    }
    Ok(())
}

/// Estimated cost of evaluating `expr` once.
pub fn estimate(expr: &IdedExpr, bound: &InputBound) -> u64 {
    let children: u64 = match &expr.expr {
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => 0,
        Expr::Select(s) => estimate(&s.operand, bound),
        Expr::Call(c) => {
            let own = if c.func_name == "range" || c.func_name == "lists.range" {
                // Building the list is linear in its length.
                c.args.first().map_or(1, |a| range_len(a, bound))
            } else {
                0
            };
            own.saturating_add(c.target.as_ref().map_or(0, |t| estimate(t, bound)))
                .saturating_add(sum(c.args.iter().map(|a| estimate(a, bound))))
        }
        Expr::List(l) => sum(l.elements.iter().map(|e| estimate(e, bound))),
        Expr::Map(m) => sum(m.entries.iter().map(|e| entry(e, bound))),
        Expr::Struct(s) => sum(s.entries.iter().map(|e| entry(e, bound))),
        Expr::Comprehension(c) => {
            let iterations = iterations(&c.iter_range, bound);
            let body = estimate(&c.loop_cond, bound)
                .saturating_add(estimate(&c.loop_step, bound))
                .saturating_add(1);
            estimate(&c.iter_range, bound)
                .saturating_add(estimate(&c.accu_init, bound))
                .saturating_add(iterations.saturating_mul(body))
                .saturating_add(estimate(&c.result, bound))
        }
    };
    children.saturating_add(1)
}

fn entry(e: &cel::common::ast::IdedEntryExpr, bound: &InputBound) -> u64 {
    match &e.expr {
        EntryExpr::StructField(f) => estimate(&f.value, bound),
        EntryExpr::MapEntry(m) => estimate(&m.key, bound).saturating_add(estimate(&m.value, bound)),
    }
}

fn sum(it: impl Iterator<Item = u64>) -> u64 {
    it.fold(0, u64::saturating_add)
}

fn iterations(range: &IdedExpr, bound: &InputBound) -> u64 {
    match &range.expr {
        Expr::List(l) => l.elements.len() as u64,
        Expr::Map(m) => m.entries.len() as u64,
        Expr::Call(c) if c.func_name == "range" || c.func_name == "lists.range" => c
            .args
            .first()
            .map_or(bound.max_len, |a| range_len(a, bound)),
        _ => bound.max_len,
    }
}

fn range_len(arg: &IdedExpr, bound: &InputBound) -> u64 {
    match &arg.expr {
        Expr::Literal(LiteralValue::Int(i)) => (*i.inner()).max(0) as u64,
        _ => bound.max_int.max(bound.max_len),
    }
}

/// Refuses results larger than [`MAX_OUTPUT_BYTES`].
pub fn check_output(value: &Value) -> Result<(), EvalError> {
    let size = size_of(value, 0);
    if size > MAX_OUTPUT_BYTES {
        return Err(EvalError::OutputTooLarge(size));
    }
    Ok(())
}

/// Approximate JSON size, stopping early once over the limit.
fn size_of(value: &Value, acc: usize) -> usize {
    if acc > MAX_OUTPUT_BYTES {
        return acc;
    }
    match value {
        Value::String(s) => acc + s.len() + 2,
        Value::Bytes(b) => acc + b.len() * 4 / 3 + 2,
        Value::List(items) => items.iter().fold(acc + 2, |a, v| size_of(v, a + 1)),
        Value::Map(m) => m.map.iter().fold(acc + 2, |a, (k, v)| {
            size_of(v, a + super::library::key_string(k).len() + 4)
        }),
        _ => acc + 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(src: &str, bound: InputBound) -> u64 {
        let env = cel::Env::stdlib();
        let p = env.compile(src).unwrap();
        estimate(p.expression(), &bound)
    }

    #[test]
    fn nested_comprehensions_multiply() {
        let b = InputBound {
            max_len: 1000,
            max_int: 0,
        };
        let flat = est("xs.map(x, x + 1)", b);
        let nested = est("xs.map(x, ys.map(y, x + y))", b);
        assert!(flat < 10_000, "{flat}");
        assert!(nested > 1_000_000, "{nested}");
    }

    #[test]
    fn over_limit_is_refused() {
        let env = cel::Env::stdlib();
        let p = env
            .compile("xs.map(a, xs.map(b, xs.map(c, a + b + c)))")
            .unwrap();
        let b = InputBound {
            max_len: 1000,
            max_int: 0,
        };
        assert!(matches!(
            check(p.expression(), &b),
            Err(EvalError::CostLimit { .. })
        ));
        assert!(
            check(
                p.expression(),
                &InputBound {
                    max_len: 10,
                    max_int: 0
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn output_limit() {
        let big = Value::String(std::sync::Arc::new("x".repeat(MAX_OUTPUT_BYTES + 1)));
        assert!(matches!(
            check_output(&big),
            Err(EvalError::OutputTooLarge(_))
        ));
        assert!(check_output(&Value::Int(1)).is_ok());
    }
}

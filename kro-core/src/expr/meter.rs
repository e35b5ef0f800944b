//! Runtime metering: the work an evaluation actually does, counted as it
//! runs. The static estimate in [`super::cost`] cannot see a range computed
//! at run time (`lists.range(100 * 100)`) nor values that double through
//! `cel.bind`, and the `cel` interpreter cannot be interrupted, so each
//! parsed expression gets a metered twin of its AST: every value handed to a
//! function or operator, every element of a list or map literal, every
//! range a comprehension iterates over and the final result pass through
//! [`TICK`], which charges `1 +` the value's shallow size (list and map
//! entries, string and bytes length in 8-byte words) to the budget of the
//! running evaluation and fails the evaluation once it is spent.
//!
//! Two budgets apply: one per expression ([`MAX_EXPRESSION_COST`]) and one
//! per instance ([`MAX_INSTANCE_COST`], shared by every expression of one
//! instance's reconcile, `forEach` items included). The instance budget lives
//! in [`Budget`], held by the evaluation context; a guard from [`enter`]
//! makes it the current one on the evaluating thread.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cel::ExecutionError;
use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, operators};
use cel::common::types::{CelBytes, CelString};
use cel::common::value::CowVal;

/// Internal function every metered value passes through.
pub const TICK: &str = "@kroTick";

/// Internal function charging for a list about to be de-duplicated: the
/// library's `distinct` compares every pair.
pub const TICK_PAIRS: &str = "@kroTickPairs";

/// Internal function charging for a list about to be sorted (n log n).
pub const TICK_SORT: &str = "@kroTickSort";

/// Functions whose work grows faster than their input, and the charge
/// wrapped around their target.
const SUPERLINEAR: &[(&str, &str)] = &[("distinct", TICK_PAIRS), ("sort", TICK_SORT)];

/// Most work one expression may do, in cost units (one unit: a value
/// passed, a list or map entry, or 8 bytes of string).
pub const MAX_EXPRESSION_COST: u64 = 1_000_000;

/// Most work all the expressions of one instance's reconcile may do.
pub const MAX_INSTANCE_COST: u64 = 20_000_000;

/// Functions whose arguments are not charged: control flow (its operands are
/// charged where they are computed) and constant-time access, which would
/// otherwise charge a whole list for reading one element.
const FREE_ARGS: &[&str] = &[
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::CONDITIONAL,
    operators::LOGICAL_NOT,
    operators::NOT_STRICTLY_FALSE,
    operators::INDEX,
    operators::OPT_INDEX,
    operators::OPT_SELECT,
    "size",
    TICK,
    TICK_PAIRS,
    TICK_SORT,
];

/// What a budget ran out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// The expression's own budget.
    Expression,
    /// The instance's budget, shared by all its expressions, of this many
    /// units.
    Instance(u64),
}

/// The evaluation budget of one instance, shared by all its expressions.
/// Cloning shares it.
#[derive(Debug, Clone)]
pub struct Budget {
    remaining: Arc<AtomicU64>,
    limit: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(MAX_INSTANCE_COST)
    }
}

impl Budget {
    /// A budget of `limit` units.
    pub fn new(limit: u64) -> Self {
        Self {
            remaining: Arc::new(AtomicU64::new(limit)),
            limit,
        }
    }

    /// The budget's size.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Units spent so far.
    pub fn spent(&self) -> u64 {
        self.limit - self.remaining.load(Ordering::Relaxed).min(self.limit)
    }

    fn take(&self, units: u64) {
        let _ = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(units))
            });
    }

    fn remaining(&self) -> u64 {
        self.remaining.load(Ordering::Relaxed)
    }
}

thread_local! {
    /// The instance budget of the evaluation running on this thread.
    static INSTANCE: std::cell::RefCell<Option<Budget>> = const { std::cell::RefCell::new(None) };
    /// Units left for the expression being evaluated on this thread.
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    /// Set when the running expression ran out.
    static EXHAUSTED: Cell<Option<Exhausted>> = const { Cell::new(None) };
    /// Whether the current expression's allowance was capped by the
    /// instance budget rather than the per-expression one.
    static CAPPED_BY_INSTANCE: Cell<bool> = const { Cell::new(false) };
}

/// Makes `budget` the instance budget of evaluations on this thread until
/// the guard drops.
pub fn enter(budget: &Budget) -> EnterGuard {
    let previous = INSTANCE.with(|b| b.replace(Some(budget.clone())));
    EnterGuard { previous }
}

/// The instance budget of evaluations on this thread, if one was entered.
pub fn current() -> Option<Budget> {
    INSTANCE.with(|b| b.borrow().clone())
}

/// Restores the previous instance budget when dropped.
#[derive(Debug)]
pub struct EnterGuard {
    previous: Option<Budget>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        INSTANCE.with(|b| *b.borrow_mut() = previous);
    }
}

/// Runs one expression's evaluation under its budgets. On `Err` the
/// evaluation ran out of the budget named.
pub fn run<T>(eval: impl FnOnce() -> T) -> Result<T, Exhausted> {
    let instance = INSTANCE.with(|b| b.borrow().clone());
    let instance_left = instance.as_ref().map_or(u64::MAX, Budget::remaining);
    let allowance = MAX_EXPRESSION_COST.min(instance_left);
    let saved_left = LEFT.with(|l| l.replace(allowance));
    let saved_capped = CAPPED_BY_INSTANCE.with(|c| c.replace(instance_left < MAX_EXPRESSION_COST));
    let saved_exhausted = EXHAUSTED.with(|e| e.replace(None));
    let out = eval();
    let left = LEFT.with(|l| l.replace(saved_left));
    CAPPED_BY_INSTANCE.with(|c| c.set(saved_capped));
    let exhausted = EXHAUSTED.with(|e| e.replace(saved_exhausted));
    if let Some(budget) = &instance {
        budget.take(allowance.saturating_sub(left));
    }
    match exhausted {
        Some(Exhausted::Instance(_)) => Err(Exhausted::Instance(
            instance.as_ref().map_or(MAX_INSTANCE_COST, Budget::limit),
        )),
        Some(which) => Err(which),
        None => Ok(out),
    }
}

/// Charges `units` to the running evaluation; fails once its budget is
/// spent. Functions that build a value of a size chosen at run time call
/// it before building.
pub fn charge(units: u64) -> Result<(), ExecutionError> {
    let left = LEFT.with(Cell::get);
    if units > left {
        LEFT.with(|l| l.set(0));
        let which = if CAPPED_BY_INSTANCE.with(Cell::get) {
            Exhausted::Instance(0)
        } else {
            Exhausted::Expression
        };
        EXHAUSTED.with(|e| e.set(Some(which)));
        return Err(ExecutionError::function_error(
            "evaluation",
            "evaluation budget exhausted",
        ));
    }
    LEFT.with(|l| l.set(left - units));
    Ok(())
}

/// The [`TICK`] overload: charges for its argument and returns it unchanged.
pub fn tick<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let Some(value) = args.pop() else {
        return Err(ExecutionError::function_error(TICK, "expects one argument"));
    };
    charge(1 + shallow_size(&value))?;
    Ok(value)
}

/// The [`TICK_PAIRS`] overload: charges n² for a list of n.
pub fn tick_pairs<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let Some(value) = args.pop() else {
        return Err(ExecutionError::function_error(
            TICK_PAIRS,
            "expects one argument",
        ));
    };
    let n = shallow_size(&value);
    charge(n.saturating_mul(n).saturating_add(1))?;
    Ok(value)
}

/// The [`TICK_SORT`] overload: charges n log n for a list of n.
pub fn tick_sort<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let Some(value) = args.pop() else {
        return Err(ExecutionError::function_error(
            TICK_SORT,
            "expects one argument",
        ));
    };
    let n = shallow_size(&value);
    let log = u64::from(64 - n.leading_zeros()).max(1);
    charge(n.saturating_mul(log).saturating_add(1))?;
    Ok(value)
}

/// Entries of a list or map, or 8-byte words of a string or bytes.
fn shallow_size(value: &CowVal<'_, '_>) -> u64 {
    if let Some(s) = value.downcast_ref::<CelString>() {
        return (s.inner().len() as u64).div_ceil(8);
    }
    if let Some(b) = value.downcast_ref::<CelBytes>() {
        return (b.inner().len() as u64).div_ceil(8);
    }
    value
        .as_sizer()
        .map(|s| u64::try_from(*s.size().inner()).unwrap_or(0))
        .unwrap_or(0)
}

/// The metered twin of `expr` (see the module docs).
pub fn instrument(expr: &IdedExpr) -> IdedExpr {
    let mut next_id = max_id(expr) + 1;
    let body = rewrite(expr, None, &mut next_id);
    wrap(body, &mut next_id)
}

fn max_id(expr: &IdedExpr) -> u64 {
    let mut max = 0;
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        max = max.max(e.id);
        match &e.expr {
            Expr::Call(c) => {
                stack.extend(c.target.as_deref());
                stack.extend(&c.args);
            }
            Expr::Comprehension(c) => {
                stack.extend([
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ]);
            }
            Expr::List(l) => stack.extend(&l.elements),
            Expr::Map(m) => {
                for entry in &m.entries {
                    max = max.max(entry.id);
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        stack.push(&me.key);
                        stack.push(&me.value);
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    max = max.max(entry.id);
                    if let EntryExpr::StructField(f) = &entry.expr {
                        stack.push(&f.value);
                    }
                }
            }
            Expr::Select(s) => stack.push(&s.operand),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    max
}

fn wrap(expr: IdedExpr, next_id: &mut u64) -> IdedExpr {
    wrap_with(TICK, expr, next_id)
}

fn wrap_with(tick: &str, expr: IdedExpr, next_id: &mut u64) -> IdedExpr {
    let id = *next_id;
    *next_id += 1;
    IdedExpr {
        id,
        expr: Expr::Call(CallExpr {
            func_name: tick.to_owned(),
            target: None,
            args: vec![expr],
        }),
    }
}

/// Wraps `expr` unless it is a literal (a scalar, or a list, map or struct
/// literal whose elements are charged one by one: its own size is bounded
/// by the source) or, inside a loop step, the comprehension's accumulator
/// (the interpreter builds `map` and `filter` results in place only when it
/// sees the bare accumulator appended to a list literal; the appended
/// element is charged instead).
fn charged(expr: IdedExpr, accu: Option<&str>, next_id: &mut u64) -> IdedExpr {
    match &expr.expr {
        Expr::Literal(_) | Expr::List(_) | Expr::Map(_) | Expr::Struct(_) => expr,
        Expr::Ident(name) if Some(name.as_str()) == accu => expr,
        _ => wrap(expr, next_id),
    }
}

fn rewrite(expr: &IdedExpr, accu: Option<&str>, next_id: &mut u64) -> IdedExpr {
    let id = expr.id;
    let out = match &expr.expr {
        Expr::Call(call) => {
            let free = FREE_ARGS.contains(&call.func_name.as_str());
            // The accumulator stays bare only as an operand of the step's
            // append (possibly under the filter's conditional).
            let accu = accu.filter(|_| free || call.func_name == operators::ADD);
            let arg = |e: &IdedExpr, next_id: &mut u64| {
                let inner = rewrite(e, accu, next_id);
                if free {
                    inner
                } else {
                    charged(inner, accu, next_id)
                }
            };
            // `strings.quote(s)` parses as a call on the identifier
            // `strings`: a function namespace, not a value to charge.
            let target = call.target.as_deref().map(|t| match &t.expr {
                Expr::Ident(name) if super::library::NAMESPACES.contains(&name.as_str()) => {
                    Box::new(t.clone())
                }
                _ => Box::new(arg(t, next_id)),
            });
            // A superlinear function's input is charged for the work it
            // will do, before it runs.
            let target = match (
                target,
                SUPERLINEAR.iter().find(|(f, _)| *f == call.func_name),
            ) {
                (Some(t), Some((_, tick))) => Some(Box::new(wrap_with(tick, *t, next_id))),
                (t, _) => t,
            };
            let args = call.args.iter().map(|a| arg(a, next_id)).collect();
            Expr::Call(CallExpr {
                func_name: call.func_name.clone(),
                target,
                args,
            })
        }
        Expr::Comprehension(c) => {
            // Only the loop step may leave the accumulator bare: elsewhere
            // (`cel.bind`'s body reads its variable as the accumulator) a
            // doubling chain would escape the meter.
            let mut c = (**c).clone();
            let step_accu = Some(c.accu_var.clone());
            let range = rewrite(&c.iter_range, None, next_id);
            c.iter_range = wrap(range, next_id);
            let init = rewrite(&c.accu_init, None, next_id);
            c.accu_init = charged(init, None, next_id);
            c.loop_cond = rewrite(&c.loop_cond, None, next_id);
            c.loop_step = rewrite(&c.loop_step, step_accu.as_deref(), next_id);
            c.result = rewrite(&c.result, None, next_id);
            Expr::Comprehension(Box::new(c))
        }
        Expr::List(list) => {
            let mut list = list.clone();
            list.elements = list
                .elements
                .iter()
                .map(|e| {
                    let inner = rewrite(e, None, next_id);
                    charged(inner, None, next_id)
                })
                .collect();
            Expr::List(list)
        }
        Expr::Map(map) => {
            let mut map = map.clone();
            for entry in &mut map.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    let key = rewrite(&me.key, None, next_id);
                    me.key = charged(key, None, next_id);
                    let value = rewrite(&me.value, None, next_id);
                    me.value = charged(value, None, next_id);
                }
            }
            Expr::Map(map)
        }
        Expr::Struct(s) => {
            let mut s = s.clone();
            for entry in &mut s.entries {
                if let EntryExpr::StructField(f) = &mut entry.expr {
                    let value = rewrite(&f.value, None, next_id);
                    f.value = charged(value, None, next_id);
                }
            }
            Expr::Struct(s)
        }
        Expr::Select(sel) => {
            let mut sel = sel.clone();
            sel.operand = Box::new(rewrite(&sel.operand, None, next_id));
            Expr::Select(sel)
        }
        other @ (Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified) => other.clone(),
    };
    IdedExpr { id, expr: out }
}

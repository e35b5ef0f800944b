//! When does a time gate change? Comparisons that read `time.now()` are
//! affine in the clock (`time.now() - created > duration("5m")`), so
//! evaluating both sides at two instants a second apart gives the instant
//! their difference crosses zero: the controller can requeue exactly then
//! instead of polling.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, operators};
use cel::{Context, Value};

use super::time::TIME_VAR;

const COMPARISONS: &[&str] = &[
    operators::LESS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::GREATER_EQUALS,
    operators::EQUALS,
    operators::NOT_EQUALS,
];

fn reads_time(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Ident(n) => n == TIME_VAR,
        Expr::Select(s) => reads_time(&s.operand),
        Expr::Call(c) => {
            c.target.as_deref().is_some_and(reads_time) || c.args.iter().any(reads_time)
        }
        Expr::List(l) => l.elements.iter().any(reads_time),
        Expr::Map(m) => m.entries.iter().any(|en| match &en.expr {
            EntryExpr::MapEntry(me) => reads_time(&me.key) || reads_time(&me.value),
            EntryExpr::StructField(f) => reads_time(&f.value),
        }),
        Expr::Struct(s) => s.entries.iter().any(|en| match &en.expr {
            EntryExpr::MapEntry(me) => reads_time(&me.key) || reads_time(&me.value),
            EntryExpr::StructField(f) => reads_time(&f.value),
        }),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .any(reads_time),
        Expr::Literal(_) | Expr::Unspecified => false,
    }
}

/// The operand pairs of every comparison in `e` that reads the clock.
pub fn time_comparisons(e: &IdedExpr) -> Vec<(&IdedExpr, &IdedExpr)> {
    let mut out = Vec::new();
    collect(e, &mut out);
    out
}

fn collect<'a>(e: &'a IdedExpr, out: &mut Vec<(&'a IdedExpr, &'a IdedExpr)>) {
    match &e.expr {
        Expr::Call(c) => {
            if c.target.is_none()
                && COMPARISONS.contains(&c.func_name.as_str())
                && let [l, r] = c.args.as_slice()
                && (reads_time(l) || reads_time(r))
            {
                out.push((l, r));
            }
            if let Some(t) = &c.target {
                collect(t, out);
            }
            for a in &c.args {
                collect(a, out);
            }
        }
        Expr::Select(s) => collect(&s.operand, out),
        Expr::List(l) => l.elements.iter().for_each(|x| collect(x, out)),
        Expr::Map(m) => {
            for en in &m.entries {
                if let EntryExpr::MapEntry(me) = &en.expr {
                    collect(&me.key, out);
                    collect(&me.value, out);
                }
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                collect(x, out);
            }
        }
        _ => {}
    }
}

/// `a - b` in seconds, for timestamps, durations and numbers.
fn difference(a: &Value, b: &Value) -> Option<f64> {
    let secs = |d: chrono::Duration| d.num_milliseconds() as f64 / 1000.0;
    Some(match (a, b) {
        (Value::Timestamp(x), Value::Timestamp(y)) => secs(*x - *y),
        (Value::Duration(x), Value::Duration(y)) => secs(*x - *y),
        (Value::Int(x), Value::Int(y)) => (*x as f64) - (*y as f64),
        (Value::Float(x), Value::Float(y)) => x - y,
        _ => return None,
    })
}

/// Seconds from the first context's instant until the comparison `l ? r`
/// can change, given the same program evaluated one second later.
pub fn seconds_until_flip(
    l: &IdedExpr,
    r: &IdedExpr,
    now: &Context<'_, '_>,
    later: &Context<'_, '_>,
) -> Option<f64> {
    let at = |ctx: &Context<'_, '_>| -> Option<f64> {
        let lv = Value::resolve(l, ctx).ok()?;
        let rv = Value::resolve(r, ctx).ok()?;
        difference(&lv, &rv)
    };
    let a = at(now)?;
    let b = at(later)?;
    let slope = b - a;
    if slope.abs() < 1e-9 {
        return None;
    }
    let delta = -a / slope;
    // Far-future flips (beyond ~30 years) are not worth a requeue.
    (delta.is_finite() && (0.0..1e9).contains(&delta)).then_some(delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comparisons_that_read_the_clock() {
        let env = crate::expr::library::env().unwrap();
        let e = env
            .compile("time.now() > x && y < 3 || [1].exists(i, time.now() == z)")
            .unwrap();
        assert_eq!(time_comparisons(e.expression()).len(), 2);
    }
}

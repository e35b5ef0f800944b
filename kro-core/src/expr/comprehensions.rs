//! cel-go's two-variable comprehensions, which the `cel` interpreter lacks,
//! expanded at parse time into single-variable ones over an entry list:
//! `x.all(k, v, p)` becomes `@kroEntries(x).all(@e, cel.bind(k, @e[0],
//! cel.bind(v, @e[1], p)))`, where an entry is `[index, value]` for a list
//! and `[key, value]` for a map (keys in sorted order). Covered: `all`,
//! `exists`, `existsOne`/`exists_one`, `transformList`, `transformMap` and
//! `transformMapEntry`, each with its optional filter argument.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::{
    CallExpr, ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue, operators,
};
use cel::objects::{Key, Map};
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::{DeclarationError, Env, ExecutionError, Value};

/// Internal function: `[[key or index, value], ...]`.
pub const ENTRIES: &str = "@kroEntries";
/// Internal function: a map from `[[key, value], ...]`.
pub const FROM_ENTRIES: &str = "@kroFromEntries";
/// Internal function: the union of a list of maps (duplicate keys are errors).
pub const MERGE_ALL: &str = "@kroMergeAll";

const ENTRY: &str = "@e";
const RESULT: &str = "@result";

#[derive(Clone, Copy)]
enum Kind {
    All,
    Exists,
    ExistsOne,
    TransformList,
    TransformMap,
    TransformMapEntry,
}

/// Registers the macros on `env`.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let forms: [(&str, usize, Kind); 10] = [
        ("all", 3, Kind::All),
        ("exists", 3, Kind::Exists),
        ("existsOne", 3, Kind::ExistsOne),
        ("exists_one", 3, Kind::ExistsOne),
        ("transformList", 3, Kind::TransformList),
        ("transformList", 4, Kind::TransformList),
        ("transformMap", 3, Kind::TransformMap),
        ("transformMap", 4, Kind::TransformMap),
        ("transformMapEntry", 3, Kind::TransformMapEntry),
        ("transformMapEntry", 4, Kind::TransformMapEntry),
    ];
    for (name, arity, kind) in forms {
        env.add_macro(Macro::receiver(name, arity, move |h, target, args| {
            expand(h, target, args, kind)
        }))?;
    }
    Ok(())
}

fn ident(h: &mut MacroExprHelper<'_>, name: &str) -> IdedExpr {
    h.next_expr(Expr::Ident(name.to_owned()))
}

fn call(h: &mut MacroExprHelper<'_>, f: &str, args: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::Call(CallExpr {
        func_name: f.to_owned(),
        target: None,
        args,
    }))
}

fn int(h: &mut MacroExprHelper<'_>, i: i64) -> IdedExpr {
    h.next_expr(Expr::Literal(LiteralValue::Int(i.into())))
}

fn boolean(h: &mut MacroExprHelper<'_>, b: bool) -> IdedExpr {
    h.next_expr(Expr::Literal(LiteralValue::Boolean(b.into())))
}

fn list(h: &mut MacroExprHelper<'_>, items: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::List(ListExpr::new(items)))
}

#[allow(clippy::too_many_arguments)]
fn comprehension(
    h: &mut MacroExprHelper<'_>,
    range: IdedExpr,
    iter_var: &str,
    accu_var: &str,
    init: IdedExpr,
    cond: IdedExpr,
    step: IdedExpr,
    result: IdedExpr,
) -> IdedExpr {
    h.next_expr(Expr::Comprehension(Box::new(ComprehensionExpr {
        iter_range: range,
        iter_var: iter_var.to_owned(),
        iter_var2: None,
        accu_var: accu_var.to_owned(),
        accu_init: init,
        loop_cond: cond,
        loop_step: step,
        result,
    })))
}

/// `cel.bind(name, init, body)`.
fn bind(h: &mut MacroExprHelper<'_>, name: &str, init: IdedExpr, body: IdedExpr) -> IdedExpr {
    let range = list(h, Vec::new());
    let cond = boolean(h, false);
    let step = ident(h, name);
    comprehension(h, range, "#unused", name, init, cond, step, body)
}

/// `body` with `k` and `v` bound to the current entry's parts.
fn with_entry(h: &mut MacroExprHelper<'_>, k: &str, v: &str, body: IdedExpr) -> IdedExpr {
    let e = ident(h, ENTRY);
    let one = int(h, 1);
    let value = call(h, operators::INDEX, vec![e, one]);
    let inner = bind(h, v, value, body);
    let e = ident(h, ENTRY);
    let zero = int(h, 0);
    let key = call(h, operators::INDEX, vec![e, zero]);
    bind(h, k, key, inner)
}

fn var_name(h: &mut MacroExprHelper<'_>, e: &IdedExpr) -> Result<String, ParseError> {
    match &e.expr {
        Expr::Ident(n) => Ok(n.clone()),
        _ => Err(h.new_error(e.id, "argument must be a simple name")),
    }
}

fn expand(
    h: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
    kind: Kind,
) -> Result<Option<IdedExpr>, ParseError> {
    let Some(target) = target.take() else {
        return Ok(None);
    };
    let mut args = std::mem::take(args);
    let expr = args.pop();
    let filter = if args.len() == 3 { args.pop() } else { None };
    let (Some(expr), [k, v]) = (expr, args.as_slice()) else {
        return Ok(None);
    };
    let k = var_name(h, k)?;
    let v = var_name(h, v)?;
    if k == v {
        return Err(h.new_error(expr.id, "the two iteration variables must differ"));
    }
    let range = call(h, ENTRIES, vec![target]);
    let body = with_entry(h, &k, &v, expr);
    let acc = |h: &mut MacroExprHelper<'_>| ident(h, RESULT);
    let out = match kind {
        Kind::All | Kind::Exists => {
            let all = matches!(kind, Kind::All);
            let init = boolean(h, all);
            let a = acc(h);
            let cond_arg = if all {
                a
            } else {
                call(h, operators::LOGICAL_NOT, vec![a])
            };
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![cond_arg]);
            let a = acc(h);
            let op = if all {
                operators::LOGICAL_AND
            } else {
                operators::LOGICAL_OR
            };
            let step = call(h, op, vec![a, body]);
            let result = acc(h);
            comprehension(h, range, ENTRY, RESULT, init, cond, step, result)
        }
        Kind::ExistsOne => {
            let init = int(h, 0);
            let cond = boolean(h, true);
            let a = acc(h);
            let one = int(h, 1);
            let inc = call(h, operators::ADD, vec![a, one]);
            let a = acc(h);
            let step = call(h, operators::CONDITIONAL, vec![body, inc, a]);
            let a = acc(h);
            let one = int(h, 1);
            let result = call(h, operators::EQUALS, vec![a, one]);
            comprehension(h, range, ENTRY, RESULT, init, cond, step, result)
        }
        Kind::TransformList | Kind::TransformMap | Kind::TransformMapEntry => {
            let element = match kind {
                Kind::TransformMap => {
                    let e = ident(h, ENTRY);
                    let zero = int(h, 0);
                    let key = call(h, operators::INDEX, vec![e, zero]);
                    list(h, vec![key, body])
                }
                _ => body,
            };
            let a = acc(h);
            let single = list(h, vec![element]);
            let appended = call(h, operators::ADD, vec![a, single]);
            let step = match filter {
                Some(f) => {
                    let f = with_entry(h, &k, &v, f);
                    let a = acc(h);
                    call(h, operators::CONDITIONAL, vec![f, appended, a])
                }
                None => appended,
            };
            let init = list(h, Vec::new());
            let cond = boolean(h, true);
            let a = acc(h);
            let result = match kind {
                Kind::TransformMap => call(h, FROM_ENTRIES, vec![a]),
                Kind::TransformMapEntry => call(h, MERGE_ALL, vec![a]),
                _ => a,
            };
            comprehension(h, range, ENTRY, RESULT, init, cond, step, result)
        }
    };
    Ok(Some(out))
}

fn err(message: impl ToString) -> ExecutionError {
    ExecutionError::function_error("comprehension", message)
}

/// `[[index or key, value], ...]`; map keys sorted so results are stable.
pub fn entries(a: &[Value]) -> Result<Value, ExecutionError> {
    let pair = |k: Value, v: Value| Value::List(Arc::new(vec![k, v]));
    match a {
        [Value::List(items)] => Ok(Value::List(Arc::new(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| pair(Value::Int(i as i64), v.clone()))
                .collect(),
        ))),
        [Value::Map(m)] => {
            let mut kv: Vec<(&Key, &Value)> = m.map.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            Ok(Value::List(Arc::new(
                kv.into_iter()
                    .map(|(k, v)| pair(Value::from(k.clone()), v.clone()))
                    .collect(),
            )))
        }
        [other] => Err(err(format!(
            "two-variable comprehensions need a list or a map, got {}",
            other.type_of()
        ))),
        _ => Err(err("expected one argument")),
    }
}

fn key_of(v: &Value) -> Result<Key, ExecutionError> {
    match v {
        Value::String(s) => Ok(Key::String(s.clone())),
        Value::Int(i) => Ok(Key::Int(*i)),
        Value::UInt(u) => Ok(Key::Uint(*u)),
        Value::Bool(b) => Ok(Key::Bool(*b)),
        other => Err(err(format!("unsupported map key type {}", other.type_of()))),
    }
}

/// A map from `[[key, value], ...]`.
pub fn from_entries(a: &[Value]) -> Result<Value, ExecutionError> {
    let [Value::List(items)] = a else {
        return Err(err("expected a list of entries"));
    };
    let mut out = HashMap::with_capacity(items.len());
    for item in items.iter() {
        match item {
            Value::List(kv) if kv.len() == 2 => {
                if out.insert(key_of(&kv[0])?, kv[1].clone()).is_some() {
                    return Err(err(format!("duplicate key {:?}", kv[0])));
                }
            }
            _ => return Err(err("expected [key, value] entries")),
        }
    }
    Ok(Value::Map(Map { map: Arc::new(out) }))
}

/// The union of a list of maps; a key produced twice is an error.
pub fn merge_all(a: &[Value]) -> Result<Value, ExecutionError> {
    let [Value::List(items)] = a else {
        return Err(err("expected a list of maps"));
    };
    let mut out = HashMap::new();
    for item in items.iter() {
        let Value::Map(m) = item else {
            return Err(err(format!(
                "transformMapEntry must return a map, got {}",
                item.type_of()
            )));
        };
        for (k, v) in m.map.iter() {
            if out.insert(k.clone(), v.clone()).is_some() {
                return Err(err(format!(
                    "transformMapEntry produced the key {k:?} twice"
                )));
            }
        }
    }
    Ok(Value::Map(Map { map: Arc::new(out) }))
}

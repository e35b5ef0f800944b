//! The CEL environment kro expressions run in: the standard library, the
//! strings, lists, math and encoders extensions, `cel.bind`, and the
//! functions upstream kro adds (`random`, `json`, `hash`, `merge`, index
//! mutation on lists, `omit`) plus a few Kubernetes helpers (`find`,
//! `findAll`, list `sum`/`min`/`max`/`isSorted`).

use std::sync::{Arc, LazyLock};

use cel::common::ast::{ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue};
use cel::common::functions::Function;
use cel::common::types::{DYN_TYPE, LIST_TYPE, MAP_TYPE, STRING_TYPE};
use cel::common::value::CowVal;
use cel::objects::{Key, Map, OptionalValue};
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::{Env, ExecutionError, Value};
use md5::Md5;
use sha2::{Digest, Sha256};

use super::value::{to_cel, to_json};

/// Namespaces of global functions: an identifier with one of these names used
/// as a call target is a function namespace, not a variable.
pub const NAMESPACES: &[&str] = &[
    "math", "strings", "lists", "base64", "optional", "random", "json", "hash", "cel",
];

/// Wraps a `fn(&[Value]) -> Result<Value, ExecutionError>` as a cel overload.
macro_rules! op {
    ($f:ident) => {{
        fn wrapped<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
            let values = args
                .iter()
                .map(|a| Value::try_from(a.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            let out: Box<dyn cel::common::value::Val> = $f(&values)?.try_into()?;
            Ok(CowVal::from(out))
        }
        wrapped as Function
    }};
}

static ENV: LazyLock<Result<Arc<Env>, String>> =
    LazyLock::new(|| build().map(Arc::new).map_err(|e| e.to_string()));

/// The shared environment, built once.
pub fn env() -> Result<Arc<Env>, String> {
    ENV.clone()
}

fn build() -> Result<Env, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_extension(cel::extensions::lists)?;
    env.add_extension(cel::extensions::math)?;
    env.add_extension(cel::extensions::encoders)?;
    env.add_macro(Macro::receiver("bind", 3, bind_macro))?;

    let dyn1 = || vec![DYN_TYPE];
    env.add_overload(
        "random.seededString",
        "random_seeded_string",
        vec![DYN_TYPE, DYN_TYPE],
        op!(seeded_string),
    )?;
    env.add_overload(
        "random.seededInt",
        "random_seeded_int",
        vec![DYN_TYPE, DYN_TYPE, DYN_TYPE],
        op!(seeded_int),
    )?;
    env.add_overload("json.marshal", "json_marshal", dyn1(), op!(json_marshal))?;
    env.add_overload(
        "json.unmarshal",
        "json_unmarshal",
        dyn1(),
        op!(json_unmarshal),
    )?;
    env.add_overload("hash.fnv64a", "hash_fnv64a", dyn1(), op!(hash_fnv64a))?;
    env.add_overload("hash.sha256", "hash_sha256", dyn1(), op!(hash_sha256))?;
    env.add_overload("hash.md5", "hash_md5", dyn1(), op!(hash_md5))?;
    env.add_overload("omit", "omit", vec![], op!(omit))?;
    env.add_member_overload("merge", "map_merge", MAP_TYPE, vec![MAP_TYPE], op!(merge))?;
    env.add_overload(
        "lists.setAtIndex",
        "lists_set_at_index",
        vec![DYN_TYPE, DYN_TYPE, DYN_TYPE],
        op!(set_at_index),
    )?;
    env.add_overload(
        "lists.insertAtIndex",
        "lists_insert_at_index",
        vec![DYN_TYPE, DYN_TYPE, DYN_TYPE],
        op!(insert_at_index),
    )?;
    env.add_overload(
        "lists.removeAtIndex",
        "lists_remove_at_index",
        vec![DYN_TYPE, DYN_TYPE],
        op!(remove_at_index),
    )?;
    env.add_member_overload(
        "find",
        "string_find",
        STRING_TYPE,
        vec![STRING_TYPE],
        op!(regex_find),
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all",
        STRING_TYPE,
        vec![STRING_TYPE],
        op!(regex_find_all),
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_n",
        STRING_TYPE,
        vec![STRING_TYPE, DYN_TYPE],
        op!(regex_find_all_n),
    )?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], op!(list_sum))?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], op!(list_min))?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], op!(list_max))?;
    env.add_member_overload(
        "isSorted",
        "list_is_sorted",
        LIST_TYPE,
        vec![],
        op!(list_is_sorted),
    )?;
    Ok(env)
}

/// `cel.bind(name, init, body)`: `body` with `name` bound to `init`, as a
/// comprehension over an empty list whose accumulator is the binding.
fn bind_macro(
    helper: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<Option<IdedExpr>, ParseError> {
    if !matches!(target.as_ref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "cel") {
        return Ok(None);
    }
    let [var, init, body]: [IdedExpr; 3] = match std::mem::take(args).try_into() {
        Ok(a) => a,
        Err(_) => return Ok(None),
    };
    let Expr::Ident(name) = &var.expr else {
        return Err(helper.new_error(
            var.id,
            "cel.bind() variable name must be a simple identifier",
        ));
    };
    let name = name.clone();
    let step = helper.next_expr(Expr::Ident(name.clone()));
    let comprehension = ComprehensionExpr {
        iter_range: helper.next_expr(Expr::List(ListExpr::new(Vec::new()))),
        iter_var: "#unused".to_owned(),
        iter_var2: None,
        accu_var: name,
        accu_init: init,
        loop_cond: helper.next_expr(Expr::Literal(LiteralValue::Boolean(false.into()))),
        loop_step: step,
        result: body,
    };
    Ok(Some(
        helper.next_expr(Expr::Comprehension(Box::new(comprehension))),
    ))
}

fn err(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn int_arg(function: &str, v: &Value) -> Result<i64, ExecutionError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(err(
            function,
            format!("expected int, got {}", other.type_of()),
        )),
    }
}

fn str_arg<'a>(function: &str, v: &'a Value) -> Result<&'a str, ExecutionError> {
    match v {
        Value::String(s) => Ok(s.as_str()),
        other => Err(err(
            function,
            format!("expected string, got {}", other.type_of()),
        )),
    }
}

fn list_arg<'a>(function: &str, v: &'a Value) -> Result<&'a [Value], ExecutionError> {
    match v {
        Value::List(l) => Ok(l.as_slice()),
        other => Err(err(
            function,
            format!("expected list, got {}", other.type_of()),
        )),
    }
}

fn args<const N: usize>(function: &str, a: &[Value]) -> Result<[Value; N], ExecutionError> {
    a.to_vec()
        .try_into()
        .map_err(|_| err(function, format!("expected {N} arguments, got {}", a.len())))
}

const ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A deterministic lowercase alphanumeric string: characters are drawn from
/// SHA-256 of the seed, re-hashing with the output so far once a digest is
/// used up (same scheme as upstream kro, so the same seed names the same
/// objects).
fn seeded_string(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "random.seededString";
    let [len, seed] = args(F, a)?;
    let n = int_arg(F, &len)?;
    let seed = str_arg(F, &seed)?;
    if n <= 0 {
        return Err(err(F, "length must be positive"));
    }
    if n > 4096 {
        return Err(err(F, "length must be at most 4096"));
    }
    let n = n as usize;
    let mut digest: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut start = (i * 4) % digest.len();
        if start + 4 > digest.len() {
            let mut h = Sha256::new();
            h.update(digest);
            h.update(&out);
            digest = h.finalize().into();
            start = 0;
        }
        let idx = u32::from_be_bytes([
            digest[start],
            digest[start + 1],
            digest[start + 2],
            digest[start + 3],
        ]);
        out.push(ALPHANUMERIC[(idx % ALPHANUMERIC.len() as u32) as usize]);
    }
    Ok(Value::String(Arc::new(
        String::from_utf8_lossy(&out).into_owned(),
    )))
}

/// A deterministic integer in `[min, max)` from SHA-256 of the seed.
fn seeded_int(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "random.seededInt";
    let [min, max, seed] = args(F, a)?;
    let (min, max) = (int_arg(F, &min)?, int_arg(F, &max)?);
    let seed = str_arg(F, &seed)?;
    if min >= max {
        return Err(err(F, "min must be less than max"));
    }
    let digest = Sha256::digest(seed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let v = u64::from_be_bytes(first);
    let range = max.wrapping_sub(min) as u64;
    Ok(Value::Int(min.wrapping_add((v % range) as i64)))
}

fn json_marshal(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "json.marshal";
    let [v] = args(F, a)?;
    let j = to_json(&v)
        .map_err(|e| err(F, e))?
        .unwrap_or(serde_json::Value::Null);
    let s = serde_json::to_string(&j).map_err(|e| err(F, e))?;
    Ok(Value::String(Arc::new(s)))
}

fn json_unmarshal(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "json.unmarshal";
    let [v] = args(F, a)?;
    let j: serde_json::Value = serde_json::from_str(str_arg(F, &v)?).map_err(|e| err(F, e))?;
    Ok(to_cel(&j))
}

fn hash_input<'a>(function: &str, v: &'a Value) -> Result<&'a [u8], ExecutionError> {
    match v {
        Value::String(s) => Ok(s.as_bytes()),
        Value::Bytes(b) => Ok(b.as_slice()),
        other => Err(err(
            function,
            format!("expected string, got {}", other.type_of()),
        )),
    }
}

fn hash_fnv64a(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "hash.fnv64a";
    let [v] = args(F, a)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in hash_input(F, &v)? {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Ok(Value::Bytes(Arc::new(h.to_be_bytes().to_vec())))
}

fn hash_sha256(a: &[Value]) -> Result<Value, ExecutionError> {
    let [v] = args("hash.sha256", a)?;
    let d = Sha256::digest(hash_input("hash.sha256", &v)?);
    Ok(Value::Bytes(Arc::new(d.to_vec())))
}

fn hash_md5(a: &[Value]) -> Result<Value, ExecutionError> {
    let [v] = args("hash.md5", a)?;
    let d = Md5::digest(hash_input("hash.md5", &v)?);
    Ok(Value::Bytes(Arc::new(d.to_vec())))
}

/// `omit()`: an empty optional, which rendering turns into "no field".
fn omit(a: &[Value]) -> Result<Value, ExecutionError> {
    if !a.is_empty() {
        return Err(err("omit", "takes no arguments"));
    }
    Ok(Value::Opaque(Arc::new(OptionalValue::none())))
}

/// `a.merge(b)`: keys of `a` win over those of `b`.
fn merge(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "merge";
    let [left, right] = args(F, a)?;
    match (left, right) {
        (Value::Map(l), Value::Map(r)) => {
            let mut out = (*r.map).clone();
            for (k, v) in l.map.iter() {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::Map(Map { map: Arc::new(out) }))
        }
        (l, r) => Err(err(
            F,
            format!("no such overload: {}.merge({})", l.type_of(), r.type_of()),
        )),
    }
}

fn index_in(
    function: &str,
    idx: &Value,
    len: usize,
    inclusive: bool,
) -> Result<usize, ExecutionError> {
    let i = int_arg(function, idx)?;
    let upper = if inclusive {
        len
    } else {
        len.saturating_sub(1)
    };
    if i < 0 || (i as u64) > upper as u64 || (!inclusive && len == 0) {
        let bracket = if inclusive { ']' } else { ')' };
        return Err(err(
            function,
            format!("index {i} out of bounds [0, {len}{bracket}"),
        ));
    }
    Ok(i as usize)
}

fn set_at_index(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "lists.setAtIndex";
    let [list, idx, value] = args(F, a)?;
    let mut items = list_arg(F, &list)?.to_vec();
    let i = index_in(F, &idx, items.len(), false)?;
    items[i] = value;
    Ok(Value::List(Arc::new(items)))
}

fn insert_at_index(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "lists.insertAtIndex";
    let [list, idx, value] = args(F, a)?;
    let mut items = list_arg(F, &list)?.to_vec();
    let i = index_in(F, &idx, items.len(), true)?;
    items.insert(i, value);
    Ok(Value::List(Arc::new(items)))
}

fn remove_at_index(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "lists.removeAtIndex";
    let [list, idx] = args(F, a)?;
    let mut items = list_arg(F, &list)?.to_vec();
    let i = index_in(F, &idx, items.len(), false)?;
    items.remove(i);
    Ok(Value::List(Arc::new(items)))
}

fn compile_regex(function: &str, pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| err(function, e))
}

fn regex_find(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "find";
    let [s, p] = args(F, a)?;
    let re = compile_regex(F, str_arg(F, &p)?)?;
    let found = re.find(str_arg(F, &s)?).map(|m| m.as_str()).unwrap_or("");
    Ok(Value::String(Arc::new(found.to_owned())))
}

fn find_all(s: &Value, p: &Value, limit: Option<i64>) -> Result<Value, ExecutionError> {
    const F: &str = "findAll";
    let re = compile_regex(F, str_arg(F, p)?)?;
    let take = match limit {
        Some(n) if n >= 0 => n as usize,
        _ => usize::MAX,
    };
    let found = re
        .find_iter(str_arg(F, s)?)
        .take(take)
        .map(|m| Value::String(Arc::new(m.as_str().to_owned())))
        .collect();
    Ok(Value::List(Arc::new(found)))
}

fn regex_find_all(a: &[Value]) -> Result<Value, ExecutionError> {
    let [s, p] = args("findAll", a)?;
    find_all(&s, &p, None)
}

fn regex_find_all_n(a: &[Value]) -> Result<Value, ExecutionError> {
    let [s, p, n] = args("findAll", a)?;
    find_all(&s, &p, Some(int_arg("findAll", &n)?))
}

fn list_sum(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "sum";
    let [list] = args(F, a)?;
    let items = list_arg(F, &list)?;
    let mut int: i64 = 0;
    let mut float: Option<f64> = None;
    for v in items {
        match v {
            Value::Int(i) => {
                int = int
                    .checked_add(*i)
                    .ok_or_else(|| err(F, "integer overflow"))?;
            }
            Value::Float(f) => *float.get_or_insert(0.0) += f,
            other => return Err(err(F, format!("cannot sum {}", other.type_of()))),
        }
    }
    Ok(match float {
        Some(f) => Value::Float(f + int as f64),
        None => Value::Int(int),
    })
}

fn ordering(f: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, ExecutionError> {
    a.partial_cmp(b).ok_or_else(|| {
        err(
            f,
            format!("cannot compare {} and {}", a.type_of(), b.type_of()),
        )
    })
}

fn list_extreme(f: &str, a: &[Value], want: std::cmp::Ordering) -> Result<Value, ExecutionError> {
    let [list] = args(f, a)?;
    let items = list_arg(f, &list)?;
    let mut best = items.first().ok_or_else(|| err(f, "empty list"))?;
    for v in &items[1..] {
        if ordering(f, v, best)? == want {
            best = v;
        }
    }
    Ok(best.clone())
}

fn list_min(a: &[Value]) -> Result<Value, ExecutionError> {
    list_extreme("min", a, std::cmp::Ordering::Less)
}

fn list_max(a: &[Value]) -> Result<Value, ExecutionError> {
    list_extreme("max", a, std::cmp::Ordering::Greater)
}

fn list_is_sorted(a: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "isSorted";
    let [list] = args(F, a)?;
    let items = list_arg(F, &list)?;
    for w in items.windows(2) {
        if ordering(F, &w[0], &w[1])? == std::cmp::Ordering::Greater {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

/// Keys of a CEL map as strings, for error messages and checks.
pub fn key_string(k: &Key) -> String {
    match k {
        Key::String(s) => s.to_string(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
    }
}

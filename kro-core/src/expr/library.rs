//! The CEL environment kro expressions run in: the standard library, the
//! strings, lists, math and encoders extensions, `cel.bind`, and the
//! functions upstream kro adds (`random`, `json`, `hash`, `merge`, index
//! mutation on lists, `omit`) plus a few Kubernetes helpers (`find`,
//! `findAll`, list `sum`/`min`/`max`/`isSorted`).

use std::sync::{Arc, LazyLock};

use cel::common::ast::{ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue};
use cel::common::functions::Function;
use cel::common::types::{DYN_TYPE, LIST_TYPE, MAP_TYPE, STRING_TYPE, Type};
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
    "math", "strings", "lists", "base64", "optional", "random", "json", "hash", "cel", "ip",
];

/// Wraps a `fn(&[Value]) -> Result<Value, ExecutionError>` as a cel overload.
macro_rules! op {
    ($f:path) => {{
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
    super::comprehensions::register(&mut env)?;
    use super::comprehensions::{
        ENTRIES, FROM_ENTRIES, MERGE_ALL, entries, from_entries, merge_all,
    };
    env.add_overload(ENTRIES, "kro_entries", vec![DYN_TYPE], op!(entries))?;
    env.add_overload(
        FROM_ENTRIES,
        "kro_from_entries",
        vec![DYN_TYPE],
        op!(from_entries),
    )?;
    env.add_overload(MERGE_ALL, "kro_merge_all", vec![DYN_TYPE], op!(merge_all))?;
    env.add_overload(
        super::meter::TICK,
        "kro_tick",
        vec![DYN_TYPE],
        super::meter::tick,
    )?;
    env.add_overload(
        super::meter::TICK_PAIRS,
        "kro_tick_pairs",
        vec![DYN_TYPE],
        super::meter::tick_pairs,
    )?;
    env.add_overload(
        super::meter::TICK_SORT,
        "kro_tick_sort",
        vec![DYN_TYPE],
        super::meter::tick_sort,
    )?;

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
    {
        use super::net as n;
        let ipt = || Type::new_opaque_type(n::IP_TYPE);
        let cidrt = || Type::new_opaque_type(n::CIDR_TYPE);
        let svt = || Type::new_opaque_type(n::SEMVER_TYPE);
        env.add_type(ipt())?;
        env.add_type(cidrt())?;
        env.add_type(svt())?;
        env.add_overload("ip", "ip_string", vec![STRING_TYPE], op!(n::ip))?;
        env.add_overload("isIP", "is_ip_string", vec![STRING_TYPE], op!(n::is_ip))?;
        env.add_overload(
            "ip.isCanonical",
            "ip_is_canonical",
            vec![STRING_TYPE],
            op!(n::ip_is_canonical),
        )?;
        env.add_overload("cidr", "cidr_string", vec![STRING_TYPE], op!(n::cidr))?;
        env.add_overload(
            "isCIDR",
            "is_cidr_string",
            vec![STRING_TYPE],
            op!(n::is_cidr),
        )?;
        env.add_overload("semver", "semver_string", vec![STRING_TYPE], op!(n::semver))?;
        env.add_overload(
            "isSemver",
            "is_semver_string",
            vec![STRING_TYPE],
            op!(n::is_semver),
        )?;
        env.add_member_overload("family", "ip_family", ipt(), vec![], op!(ip_family))?;
        env.add_member_overload(
            "isUnspecified",
            "ip_is_unspecified",
            ipt(),
            vec![],
            op!(ip_is_unspecified),
        )?;
        env.add_member_overload(
            "isLoopback",
            "ip_is_loopback",
            ipt(),
            vec![],
            op!(ip_is_loopback),
        )?;
        env.add_member_overload(
            "isLinkLocalMulticast",
            "ip_is_llm",
            ipt(),
            vec![],
            op!(ip_is_link_local_multicast),
        )?;
        env.add_member_overload(
            "isLinkLocalUnicast",
            "ip_is_llu",
            ipt(),
            vec![],
            op!(ip_is_link_local_unicast),
        )?;
        env.add_member_overload(
            "isGlobalUnicast",
            "ip_is_gu",
            ipt(),
            vec![],
            op!(ip_is_global_unicast),
        )?;
        env.add_member_overload(
            "containsIP",
            "cidr_contains_ip",
            cidrt(),
            vec![DYN_TYPE],
            op!(n::cidr_contains_ip),
        )?;
        env.add_member_overload(
            "containsCIDR",
            "cidr_contains_cidr",
            cidrt(),
            vec![DYN_TYPE],
            op!(n::cidr_contains_cidr),
        )?;
        env.add_member_overload("ip", "cidr_ip", cidrt(), vec![], op!(cidr_ip))?;
        env.add_member_overload("masked", "cidr_masked", cidrt(), vec![], op!(cidr_masked))?;
        env.add_member_overload(
            "prefixLength",
            "cidr_prefix_length",
            cidrt(),
            vec![],
            op!(cidr_prefix_length),
        )?;
        env.add_member_overload("major", "semver_major", svt(), vec![], op!(semver_major))?;
        env.add_member_overload("minor", "semver_minor", svt(), vec![], op!(semver_minor))?;
        env.add_member_overload("patch", "semver_patch", svt(), vec![], op!(semver_patch))?;
        env.add_member_overload(
            "isGreaterThan",
            "semver_gt",
            svt(),
            vec![svt()],
            op!(semver_gt),
        )?;
        env.add_member_overload(
            "isLessThan",
            "semver_lt",
            svt(),
            vec![svt()],
            op!(semver_lt),
        )?;
        env.add_member_overload(
            "compareTo",
            "semver_compare_to",
            svt(),
            vec![svt()],
            op!(semver_compare_to),
        )?;
    }
    {
        use super::url as u;
        let ut = || Type::new_opaque_type(u::URL_TYPE);
        env.add_type(ut())?;
        env.add_overload("url", "url_string", vec![STRING_TYPE], op!(u::url))?;
        env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], op!(u::is_url))?;
        env.add_member_overload("getScheme", "url_scheme", ut(), vec![], op!(url_scheme))?;
        env.add_member_overload("getHost", "url_host", ut(), vec![], op!(url_host))?;
        env.add_member_overload(
            "getHostname",
            "url_hostname",
            ut(),
            vec![],
            op!(url_hostname),
        )?;
        env.add_member_overload("getPort", "url_port", ut(), vec![], op!(url_port))?;
        env.add_member_overload("getEscapedPath", "url_path", ut(), vec![], op!(url_path))?;
        env.add_member_overload("getQuery", "url_query", ut(), vec![], op!(url_query))?;
    }
    {
        use super::time as t;
        let tt = || Type::new_opaque_type(t::TIME_TYPE);
        env.add_type(tt())?;
        env.add_member_overload("now", "time_now", tt(), vec![], op!(t::now))?;
        env.add_overload(
            "sha256",
            "sha256_string_hex",
            vec![STRING_TYPE],
            op!(t::sha256_hex),
        )?;
    }
    {
        use super::quantity as q;
        let qt = || Type::new_opaque_type(q::QUANTITY_TYPE);
        env.add_type(qt())?;
        env.add_overload(
            "quantity",
            "quantity_string",
            vec![STRING_TYPE],
            op!(q::quantity),
        )?;
        env.add_overload(
            "isQuantity",
            "is_quantity_string",
            vec![STRING_TYPE],
            op!(q::is_quantity),
        )?;
        env.add_member_overload(
            "isInteger",
            "quantity_is_integer",
            qt(),
            vec![],
            op!(q::is_integer),
        )?;
        env.add_member_overload(
            "asInteger",
            "quantity_as_integer",
            qt(),
            vec![],
            op!(q::as_integer),
        )?;
        env.add_member_overload(
            "asApproximateFloat",
            "quantity_as_float",
            qt(),
            vec![],
            op!(q::as_approximate_float),
        )?;
        env.add_member_overload("sign", "quantity_sign", qt(), vec![], op!(q::sign))?;
        env.add_member_overload("add", "quantity_add", qt(), vec![DYN_TYPE], op!(q::add))?;
        env.add_member_overload("sub", "quantity_sub", qt(), vec![DYN_TYPE], op!(q::sub))?;
        env.add_member_overload(
            "compareTo",
            "quantity_compare_to",
            qt(),
            vec![DYN_TYPE],
            op!(q::compare_to),
        )?;
        env.add_member_overload(
            "isGreaterThan",
            "quantity_gt",
            qt(),
            vec![DYN_TYPE],
            op!(q::is_greater_than),
        )?;
        env.add_member_overload(
            "isLessThan",
            "quantity_lt",
            qt(),
            vec![DYN_TYPE],
            op!(q::is_less_than),
        )?;
    }
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        op!(list_index_of),
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        op!(list_last_index_of),
    )?;
    env.add_member_overload(
        "isSorted",
        "list_is_sorted",
        LIST_TYPE,
        vec![],
        op!(list_is_sorted),
    )?;
    Ok(env)
}

/// Defines a plain function for a library method chosen by name, since
/// overloads are function pointers and cannot capture the name.
macro_rules! method {
    ($($fname:ident => $imp:path, $name:literal;)*) => {
        $(fn $fname(a: &[Value]) -> Result<Value, ExecutionError> {
            $imp($name)(a)
        })*
    };
}

method! {
    ip_family => super::net::ip_method, "family";
    ip_is_unspecified => super::net::ip_method, "isUnspecified";
    ip_is_loopback => super::net::ip_method, "isLoopback";
    ip_is_link_local_multicast => super::net::ip_method, "isLinkLocalMulticast";
    ip_is_link_local_unicast => super::net::ip_method, "isLinkLocalUnicast";
    ip_is_global_unicast => super::net::ip_method, "isGlobalUnicast";
    cidr_ip => super::net::cidr_method, "ip";
    cidr_masked => super::net::cidr_method, "masked";
    cidr_prefix_length => super::net::cidr_method, "prefixLength";
    semver_major => super::net::semver_method, "major";
    semver_minor => super::net::semver_method, "minor";
    semver_patch => super::net::semver_method, "patch";
    semver_gt => super::net::semver_method, "isGreaterThan";
    semver_lt => super::net::semver_method, "isLessThan";
    semver_compare_to => super::net::semver_method, "compareTo";
    url_scheme => super::url::getter, "getScheme";
    url_host => super::url::getter, "getHost";
    url_hostname => super::url::getter, "getHostname";
    url_port => super::url::getter, "getPort";
    url_path => super::url::getter, "getEscapedPath";
    url_query => super::url::getter, "getQuery";
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

/// Kubernetes' list `indexOf`: the first index of an equal element, or -1.
fn list_index_of(a: &[Value]) -> Result<Value, ExecutionError> {
    let [list, needle] = args("indexOf", a)?;
    let items = list_arg("indexOf", &list)?;
    Ok(Value::Int(
        items
            .iter()
            .position(|v| *v == needle)
            .map_or(-1, |i| i as i64),
    ))
}

/// Kubernetes' list `lastIndexOf`: the last index of an equal element, or -1.
fn list_last_index_of(a: &[Value]) -> Result<Value, ExecutionError> {
    let [list, needle] = args("lastIndexOf", a)?;
    let items = list_arg("lastIndexOf", &list)?;
    Ok(Value::Int(
        items
            .iter()
            .rposition(|v| *v == needle)
            .map_or(-1, |i| i as i64),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::CompiledExpr;
    use crate::expr::cost::InputBound;
    use serde_json::json;

    fn eval(src: &str) -> Result<serde_json::Value, String> {
        let e = CompiledExpr::parse(src).map_err(|e| e.to_string())?;
        let mut ctx = cel::Context::with_env(env()?);
        let vars =
            json!({"spec": {"name": "web", "labels": {"a": "1"}, "n": 3, "items": [3, 1, 2]}});
        ctx.add_variable_from_value("schema", to_cel(&vars));
        let v = e
            .eval(&ctx, &InputBound::default())
            .map_err(|e| e.to_string())?;
        Ok(to_json(&v)
            .map_err(|e| e.to_string())?
            .unwrap_or(serde_json::Value::Null))
    }

    #[test]
    fn standard_library_and_macros() {
        assert_eq!(eval("size(schema.spec.items) + 1").unwrap(), json!(4));
        assert_eq!(
            eval("schema.spec.items.map(x, x * 2)").unwrap(),
            json!([6, 2, 4])
        );
        assert_eq!(
            eval("schema.spec.items.filter(x, x > 1)").unwrap(),
            json!([3, 2])
        );
        assert_eq!(
            eval("schema.spec.items.all(x, x > 0)").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("schema.spec.items.exists_one(x, x == 2)").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("has(schema.spec.name) && !has(schema.spec.other)").unwrap(),
            json!(true)
        );
        assert_eq!(eval("string(schema.spec.n) + 'x'").unwrap(), json!("3x"));
        assert_eq!(eval("int('42') + 1").unwrap(), json!(43));
        assert_eq!(eval("'abc'.matches('^a.c$')").unwrap(), json!(true));
    }

    #[test]
    fn strings_extension() {
        assert_eq!(
            eval("'Hello'.lowerAscii() + 'x'.upperAscii()").unwrap(),
            json!("helloX")
        );
        assert_eq!(eval("'a,b,c'.split(',')").unwrap(), json!(["a", "b", "c"]));
        assert_eq!(eval("['a', 'b'].join('-')").unwrap(), json!("a-b"));
        assert_eq!(eval("'  x '.trim()").unwrap(), json!("x"));
        assert_eq!(eval("'hello'.replace('l', 'L')").unwrap(), json!("heLLo"));
        assert_eq!(eval("'hello'.substring(1, 3)").unwrap(), json!("el"));
        assert_eq!(eval("'hello'.indexOf('l')").unwrap(), json!(2));
        assert_eq!(eval("'%s-%d'.format(['a', 1])").unwrap(), json!("a-1"));
        assert_eq!(eval("strings.quote('a\"b')").unwrap(), json!("\"a\\\"b\""));
    }

    #[test]
    fn lists_and_math_extensions() {
        assert_eq!(eval("schema.spec.items.sort()").unwrap(), json!([1, 2, 3]));
        assert_eq!(eval("[1, 1, 2].distinct()").unwrap(), json!([1, 2]));
        assert_eq!(eval("[[1], [2, 3]].flatten()").unwrap(), json!([1, 2, 3]));
        assert_eq!(eval("lists.range(3)").unwrap(), json!([0, 1, 2]));
        assert_eq!(eval("[1, 2, 3].slice(1, 2)").unwrap(), json!([2]));
        assert_eq!(eval("math.greatest(1, 5, 3)").unwrap(), json!(5));
        assert_eq!(eval("math.least([4, 2])").unwrap(), json!(2));
        assert_eq!(eval("math.abs(-3)").unwrap(), json!(3));
        assert_eq!(eval("math.ceil(1.2)").unwrap(), json!(2.0));
    }

    #[test]
    fn optionals() {
        assert_eq!(
            eval("schema.spec.?missing.orValue('d')").unwrap(),
            json!("d")
        );
        assert_eq!(
            eval("schema.spec.?name.orValue('d')").unwrap(),
            json!("web")
        );
        assert_eq!(
            eval("schema.spec.labels[?'a'].hasValue()").unwrap(),
            json!(true)
        );
        assert_eq!(eval("optional.of(1).value()").unwrap(), json!(1));
        // An empty optional is "no value": the caller omits the field.
        assert_eq!(eval("optional.none()").unwrap(), serde_json::Value::Null);
    }

    #[test]
    fn encoders_and_bind() {
        assert_eq!(eval("base64.encode(b'hello')").unwrap(), json!("aGVsbG8="));
        assert_eq!(
            eval("string(base64.decode('aGVsbG8='))").unwrap(),
            json!("hello")
        );
        assert_eq!(eval("cel.bind(x, schema.spec.n, x * x)").unwrap(), json!(9));
        assert_eq!(
            eval("cel.bind(x, 'a', cel.bind(y, x + 'b', y + x))").unwrap(),
            json!("aba")
        );
    }

    #[test]
    fn kro_random() {
        let a = eval("random.seededString(10, 'seed')").unwrap();
        assert_eq!(a, eval("random.seededString(10, 'seed')").unwrap());
        assert_ne!(a, eval("random.seededString(10, 'other')").unwrap());
        let s = a.as_str().unwrap();
        assert_eq!(s.len(), 10);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        // Longer than one digest: the generator re-hashes.
        assert_eq!(
            eval("size(random.seededString(40, 'seed'))").unwrap(),
            json!(40)
        );
        let n = eval("random.seededInt(30000, 32768, 'seed')")
            .unwrap()
            .as_i64()
            .unwrap();
        assert!((30000..32768).contains(&n));
        assert!(
            eval("random.seededInt(5, 5, 'x')")
                .unwrap_err()
                .contains("min must be less than max")
        );
        assert!(
            eval("random.seededString(0, 'x')")
                .unwrap_err()
                .contains("positive")
        );
    }

    #[test]
    fn kro_json_and_hash() {
        assert_eq!(
            eval("json.marshal({'b': 1, 'a': [true]})").unwrap(),
            json!(r#"{"a":[true],"b":1}"#)
        );
        assert_eq!(
            eval("json.unmarshal('{\"a\": [1, 2]}').a[1]").unwrap(),
            json!(2)
        );
        assert!(eval("json.unmarshal('{')").is_err());
        // Known vectors.
        assert_eq!(
            eval("'%x'.format([hash.fnv64a('')])").unwrap(),
            json!("cbf29ce484222325")
        );
        assert_eq!(
            eval("'%x'.format([hash.sha256('abc')])").unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            eval("'%x'.format([hash.md5('')])").unwrap(),
            json!("d41d8cd98f00b204e9800998ecf8427e")
        );
    }

    #[test]
    fn kro_maps_lists_and_omit() {
        assert_eq!(
            eval("{'a': 1}.merge({'a': 2, 'b': 2})").unwrap(),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(
            eval("lists.setAtIndex([1, 2, 3], 1, 99)").unwrap(),
            json!([1, 99, 3])
        );
        assert_eq!(
            eval("lists.insertAtIndex([1, 2, 3], 3, 99)").unwrap(),
            json!([1, 2, 3, 99])
        );
        assert_eq!(
            eval("lists.removeAtIndex([1, 2, 3], 0)").unwrap(),
            json!([2, 3])
        );
        assert!(
            eval("lists.setAtIndex([1], 1, 0)")
                .unwrap_err()
                .contains("out of bounds")
        );
        assert!(
            eval("lists.removeAtIndex([], 0)")
                .unwrap_err()
                .contains("out of bounds")
        );
        assert_eq!(eval("[1, omit(), 2]").unwrap(), json!([1, 2]));
        assert_eq!(eval("{'a': 1, 'b': omit()}").unwrap(), json!({"a": 1}));
    }

    #[test]
    fn kubernetes_regex_and_lists() {
        assert_eq!(eval("'abc 123'.find('[0-9]+')").unwrap(), json!("123"));
        assert_eq!(
            eval("'a1b22'.findAll('[0-9]+')").unwrap(),
            json!(["1", "22"])
        );
        assert_eq!(
            eval("'a1b22c3'.findAll('[0-9]+', 2)").unwrap(),
            json!(["1", "22"])
        );
        assert_eq!(eval("[1, 2, 3].sum()").unwrap(), json!(6));
        assert_eq!(eval("[3, 1, 2].min()").unwrap(), json!(1));
        assert_eq!(eval("['b', 'c', 'a'].max()").unwrap(), json!("c"));
        assert_eq!(eval("[1, 2, 2].isSorted()").unwrap(), json!(true));
        assert_eq!(eval("[2, 1].isSorted()").unwrap(), json!(false));
        assert!(eval("[].min()").unwrap_err().contains("empty list"));
        assert_eq!(eval("[1, 2, 1].indexOf(1)").unwrap(), json!(0));
        assert_eq!(
            eval("cidr('10.0.0.0/8').containsIP(ip('10.2.3.4'))").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("cidr('10.0.0.0/8').containsIP('11.0.0.1')").unwrap(),
            json!(false)
        );
        assert_eq!(
            eval("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("cidr('192.168.1.7/24').masked()").unwrap(),
            json!("192.168.1.0/24")
        );
        assert_eq!(
            eval("cidr('192.168.1.7/24').prefixLength()").unwrap(),
            json!(24)
        );
        assert_eq!(
            eval("cidr('192.168.1.7/24').ip().family()").unwrap(),
            json!(4)
        );
        assert_eq!(
            eval("ip('::1').isLoopback() && ip('::1').family() == 6").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("ip('8.8.8.8').isGlobalUnicast() && !ip('0.0.0.0').isGlobalUnicast()").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("isIP('1.2.3.4') && !isIP('1.2.3') && isCIDR('::/0')").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("ip('10.0.0.1') == ip('10.0.0.1')").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("semver('1.2.3').isLessThan(semver('1.10.0'))").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval(
                "semver('2.0.0-rc.1').major() + semver('2.1.3').minor() + semver('2.1.3').patch()"
            )
            .unwrap(),
            json!(6)
        );
        assert_eq!(
            eval("semver('1.0.0').compareTo(semver('1.0.0+b'))").unwrap(),
            json!(0)
        );
        assert_eq!(
            eval("isSemver('1.2.3') && !isSemver('1.2')").unwrap(),
            json!(true)
        );
        assert!(eval("ip('nope')").is_err());
        assert_eq!(
            eval("url('https://example.com:8443/a?x=1').getHostname()").unwrap(),
            json!("example.com")
        );
        assert_eq!(
            eval("url('https://example.com:8443/a?x=1').getPort()").unwrap(),
            json!("8443")
        );
        assert_eq!(
            eval("url('https://example.com/a?x=1&x=2').getQuery()").unwrap(),
            json!({"x": ["1", "2"]})
        );
        assert_eq!(eval("url('https://e.com/p').getScheme() + url('https://e.com/p').getHost() + url('https://e.com/p').getEscapedPath()").unwrap(), json!("httpse.com/p"));
        assert_eq!(eval("isURL('/abs') && !isURL('rel')").unwrap(), json!(true));
        assert_eq!(
            eval("quantity('1Gi') == quantity('1024Mi')").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("quantity('1.5Gi').isGreaterThan(quantity('1Gi'))").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("quantity('500m').isLessThan(quantity('1'))").unwrap(),
            json!(true)
        );
        assert_eq!(eval("quantity('2k').asInteger()").unwrap(), json!(2000));
        assert_eq!(eval("quantity('500m').isInteger()").unwrap(), json!(false));
        assert_eq!(
            eval("quantity('250m').asApproximateFloat()").unwrap(),
            json!(0.25)
        );
        assert_eq!(eval("quantity('-1').sign()").unwrap(), json!(-1));
        assert_eq!(
            eval("quantity('1').add(quantity('500m'))").unwrap(),
            json!("1500m")
        );
        assert_eq!(
            eval("quantity('2').sub(1).compareTo(quantity('1'))").unwrap(),
            json!(0)
        );
        assert_eq!(
            eval("isQuantity('1Gi') && !isQuantity('1Zi')").unwrap(),
            json!(true)
        );
        assert_eq!(eval("quantity('10Gi')").unwrap(), json!("10Gi"));
        assert!(
            eval("quantity('x')")
                .unwrap_err()
                .contains("regular expression")
        );
        assert!(
            eval("quantity('1.5').asInteger()")
                .unwrap_err()
                .contains("not an integer")
        );
        assert_eq!(eval("[1, 2, 1].lastIndexOf(1)").unwrap(), json!(2));
        assert_eq!(eval("['a'].indexOf('z')").unwrap(), json!(-1));
        assert_eq!(eval("'abca'.lastIndexOf('a')").unwrap(), json!(3));
        assert!(eval("'x'.find('(')").is_err());
    }

    #[test]
    fn two_variable_comprehensions() {
        assert_eq!(
            eval("schema.spec.items.all(i, v, v >= i)").unwrap(),
            json!(true)
        );
        assert_eq!(eval("[5, 1].all(i, v, v > i)").unwrap(), json!(false));
        assert_eq!(
            eval("schema.spec.labels.exists(k, v, k == 'a' && v == '1')").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("{'a': 1, 'b': 2}.existsOne(k, v, v > 1)").unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("[10, 20].transformList(i, v, i + v)").unwrap(),
            json!([10, 21])
        );
        assert_eq!(
            eval("[10, 20, 30].transformList(i, v, i > 0, v)").unwrap(),
            json!([20, 30])
        );
        assert_eq!(
            eval("{'a': 1, 'b': 2}.transformMap(k, v, v * 10)").unwrap(),
            json!({"a": 10, "b": 20})
        );
        assert_eq!(
            eval("{'a': 1, 'b': 2}.transformMap(k, v, v > 1, k + '!')").unwrap(),
            json!({"b": "b!"})
        );
        assert_eq!(
            eval("{'a': 'x', 'b': 'y'}.transformMapEntry(k, v, {v: k})").unwrap(),
            json!({"x": "a", "y": "b"})
        );
        assert!(
            eval("{'a': 'x', 'b': 'x'}.transformMapEntry(k, v, {v: k})")
                .unwrap_err()
                .contains("twice")
        );
        // Nested, and the one-variable forms still work.
        assert_eq!(
            eval("[[1, 2], [3]].transformList(i, row, row.all(j, v, v > i))").unwrap(),
            json!([true, true])
        );
        assert_eq!(eval("[1, 2].all(x, x > 0)").unwrap(), json!(true));
    }

    #[test]
    fn runtime_errors_are_reported() {
        assert!(eval("1 / 0").unwrap_err().contains("ivision by zero"));
        assert!(
            eval("schema.spec.nope")
                .unwrap_err()
                .contains("no such key")
        );
        assert!(eval("[1][5]").is_err());
    }
}

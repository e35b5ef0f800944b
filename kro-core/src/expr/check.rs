//! Static type checks over the `cel` AST, and type inference for status
//! fields. Variables are typed from OpenAPI schemas (the instance spec, and
//! any resource schema the caller knows); what is unknown is `dyn` and
//! checked at run time instead. The rules follow CEL's checker: unknown
//! variables, functions and fields of closed objects are errors, as are
//! operators applied to types that have no such overload.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use serde_json::{Value as Json, json};

use super::library::NAMESPACES;

/// Identifiers that name CEL types (`type(x) == string`).
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// A CEL type as far as the checker knows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// Unknown: anything goes, checked at run time.
    Dyn,
    /// `null`.
    Null,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `uint`.
    Uint,
    /// `double`.
    Double,
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `google.protobuf.Duration`.
    Duration,
    /// `google.protobuf.Timestamp`.
    Timestamp,
    /// `type`.
    Type,
    /// `list(T)`.
    List(Box<Ty>),
    /// `map(string, T)`.
    Map(Box<Ty>),
    /// An object with known fields.
    Object(Arc<ObjectTy>),
    /// `optional(T)`.
    Optional(Box<Ty>),
    /// An opaque library type, by name (`kubernetes.Quantity`).
    Opaque(&'static str),
}

/// Fields of an object type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectTy {
    /// Declared fields.
    pub fields: BTreeMap<String, Ty>,
    /// Whether undeclared fields may exist (`x-kubernetes-preserve-unknown-fields`).
    pub open: bool,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Dyn => f.write_str("dyn"),
            Ty::Null => f.write_str("null_type"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Uint => f.write_str("uint"),
            Ty::Double => f.write_str("double"),
            Ty::String => f.write_str("string"),
            Ty::Bytes => f.write_str("bytes"),
            Ty::Duration => f.write_str("google.protobuf.Duration"),
            Ty::Timestamp => f.write_str("google.protobuf.Timestamp"),
            Ty::Type => f.write_str("type"),
            Ty::List(t) => write!(f, "list({t})"),
            Ty::Map(t) => write!(f, "map(string, {t})"),
            Ty::Object(_) => f.write_str("object"),
            Ty::Optional(t) => write!(f, "optional_type({t})"),
            Ty::Opaque(name) => f.write_str(name),
        }
    }
}

impl Ty {
    /// The type of values matching an OpenAPI v3 schema.
    pub fn from_openapi(schema: &Json) -> Ty {
        if schema.get("x-kubernetes-int-or-string") == Some(&Json::Bool(true)) {
            return Ty::Dyn;
        }
        let open = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true));
        match schema.get("type").and_then(Json::as_str) {
            Some("string") => Ty::String,
            Some("integer") => Ty::Int,
            Some("number") => Ty::Double,
            Some("boolean") => Ty::Bool,
            Some("array") => Ty::List(Box::new(
                schema.get("items").map_or(Ty::Dyn, Ty::from_openapi),
            )),
            Some("object") => {
                if let Some(props) = schema.get("properties").and_then(Json::as_object) {
                    let fields = props
                        .iter()
                        .map(|(k, v)| (k.clone(), Ty::from_openapi(v)))
                        .collect();
                    Ty::Object(Arc::new(ObjectTy { fields, open }))
                } else if let Some(ap) = schema.get("additionalProperties") {
                    match ap {
                        Json::Object(_) => Ty::Map(Box::new(Ty::from_openapi(ap))),
                        _ => Ty::Map(Box::new(Ty::Dyn)),
                    }
                } else {
                    // Plain `object`: free-form.
                    Ty::Dyn
                }
            }
            _ => Ty::Dyn,
        }
    }

    /// The OpenAPI v3 schema of values of this type, for inferred status fields.
    pub fn to_openapi(&self) -> Json {
        match self {
            Ty::Bool => json!({"type": "boolean"}),
            Ty::Int | Ty::Uint => json!({"type": "integer"}),
            Ty::Double => json!({"type": "number"}),
            Ty::String | Ty::Bytes => json!({"type": "string"}),
            Ty::Duration => json!({"type": "string"}),
            Ty::Timestamp => json!({"type": "string", "format": "date-time"}),
            Ty::List(t) => json!({"type": "array", "items": t.to_openapi()}),
            Ty::Map(t) => json!({"type": "object", "additionalProperties": t.to_openapi()}),
            Ty::Object(o) => {
                let props: serde_json::Map<String, Json> = o
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_openapi()))
                    .collect();
                let mut s = json!({"type": "object", "properties": props});
                if o.open {
                    s["x-kubernetes-preserve-unknown-fields"] = Json::Bool(true);
                }
                s
            }
            Ty::Optional(t) => t.to_openapi(),
            // Quantities, IPs, CIDRs and versions are written as strings.
            Ty::Opaque(_) => json!({"type": "string"}),
            Ty::Dyn | Ty::Null | Ty::Type => json!({"x-kubernetes-preserve-unknown-fields": true}),
        }
    }

    fn is_dyn(&self) -> bool {
        matches!(self, Ty::Dyn)
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }

    /// Whether a value of this type may be used where `want` is expected.
    pub fn fits(&self, want: &Ty) -> bool {
        match (self, want) {
            (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) => true,
            (Ty::Optional(a), b) => a.fits(b),
            (Ty::List(a), Ty::List(b)) | (Ty::Map(a), Ty::Map(b)) => a.fits(b),
            (Ty::Object(_), Ty::Object(_) | Ty::Map(_)) | (Ty::Map(_), Ty::Object(_)) => true,
            (Ty::Int | Ty::Uint, Ty::Int | Ty::Uint) => true,
            (Ty::Opaque(a), Ty::Opaque(b)) => a == b,
            // Library values render as strings.
            (Ty::Opaque(_), Ty::String) => true,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }

    /// The least common type of two branches.
    pub fn join(a: &Ty, b: &Ty) -> Ty {
        match (a, b) {
            (x, y) if x == y => x.clone(),
            (Ty::Dyn | Ty::Null, y) => y.clone(),
            (x, Ty::Dyn | Ty::Null) => x.clone(),
            (Ty::List(x), Ty::List(y)) => Ty::List(Box::new(Ty::join(x, y))),
            (Ty::Map(x), Ty::Map(y)) => Ty::Map(Box::new(Ty::join(x, y))),
            (Ty::Optional(x), Ty::Optional(y)) => Ty::Optional(Box::new(Ty::join(x, y))),
            _ => Ty::Dyn,
        }
    }

    /// The type of field `name`; `at` is how the operand was written
    /// (`deployment.status`), for the message.
    fn field(&self, name: &str, at: Option<&str>) -> Result<Ty, String> {
        match self {
            Ty::Dyn => Ok(Ty::Dyn),
            Ty::Map(v) => Ok((**v).clone()),
            Ty::Object(o) => match o.fields.get(name) {
                Some(t) => Ok(t.clone()),
                None if o.open => Ok(Ty::Dyn),
                None => Err(undefined_field(name, o, at)),
            },
            Ty::Optional(inner) => Ok(Ty::Optional(Box::new(
                inner.field(name, at)?.unwrap_optional(),
            ))),
            other => Err(format!(
                "type '{other}' does not support field selection ('{name}')"
            )),
        }
    }

    fn unwrap_optional(self) -> Ty {
        match self {
            Ty::Optional(t) => *t,
            t => t,
        }
    }

    fn elem(&self) -> Ty {
        match self {
            Ty::List(t) => (**t).clone(),
            Ty::Map(_) | Ty::Object(_) => Ty::String,
            _ => Ty::Dyn,
        }
    }
}

/// Most known field names a message lists; the closest come first.
const MAX_LISTED_FIELDS: usize = 24;

/// The message for a field a closed object does not have: where it was
/// read, the closest known name, and the known names nearby.
fn undefined_field(name: &str, o: &ObjectTy, at: Option<&str>) -> String {
    let mut msg = format!("undefined field '{name}'");
    if let Some(at) = at {
        msg.push_str(&format!(" in {at}"));
    }
    let closest = o
        .fields
        .keys()
        .map(|k| {
            (
                edit_distance(&k.to_ascii_lowercase(), &name.to_ascii_lowercase()),
                k,
            )
        })
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(1))
        .min();
    if let Some((_, k)) = closest {
        msg.push_str(&format!(", did you mean '{k}'?"));
    }
    let known: Vec<&str> = o.fields.keys().map(String::as_str).collect();
    if known.len() <= MAX_LISTED_FIELDS {
        msg.push_str(&format!(" (known fields: {})", known.join(", ")));
    } else {
        msg.push_str(&format!(
            " (known fields: {}, and {} more)",
            known[..MAX_LISTED_FIELDS].join(", "),
            known.len() - MAX_LISTED_FIELDS
        ));
    }
    msg
}

/// How a chain of selections was written (`deployment.status`), when it is
/// one.
fn written_path(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Ident(name) => Some(name.clone()),
        Expr::Select(s) => Some(format!("{}.{}", written_path(&s.operand.expr)?, s.field)),
        _ => None,
    }
}

/// A type error, naming the offending sub-expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TypeError {
    /// What is wrong.
    pub message: String,
}

/// Variables in scope and their types.
#[derive(Debug, Clone, Default)]
pub struct TypeEnv {
    vars: BTreeMap<String, Ty>,
}

impl TypeEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `name` with type `ty`.
    pub fn declare(&mut self, name: impl Into<String>, ty: Ty) -> &mut Self {
        self.vars.insert(name.into(), ty);
        self
    }

    /// Whether `name` is declared.
    pub fn has(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// The declared name closest to a misspelt `name`, if one is close.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        self.vars
            .keys()
            .map(|k| (edit_distance(k, name), k))
            .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(1))
            .min()
            .map(|(_, k)| k.as_str())
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Infers the type of `expr` in `env`, or the first type error.
pub fn infer(expr: &IdedExpr, env: &TypeEnv) -> Result<Ty, TypeError> {
    let mut c = Checker {
        env,
        locals: Vec::new(),
    };
    c.infer(expr).map_err(|message| TypeError { message })
}

struct Checker<'a> {
    env: &'a TypeEnv,
    locals: Vec<(String, Ty)>,
}

fn literal(l: &LiteralValue) -> Ty {
    match l {
        LiteralValue::Boolean(_) => Ty::Bool,
        LiteralValue::Bytes(_) => Ty::Bytes,
        LiteralValue::Double(_) => Ty::Double,
        LiteralValue::Int(_) => Ty::Int,
        LiteralValue::Null => Ty::Null,
        LiteralValue::String(_) => Ty::String,
        LiteralValue::UInt(_) => Ty::Uint,
    }
}

fn no_overload(f: &str, args: &[&Ty]) -> String {
    let list = args
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!("found no matching overload for '{f}' applied to '({list})'")
}

impl Checker<'_> {
    fn lookup(&self, name: &str) -> Option<Ty> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .or_else(|| self.env.vars.get(name).cloned())
    }

    fn infer(&mut self, expr: &IdedExpr) -> Result<Ty, String> {
        match &expr.expr {
            Expr::Unspecified => Ok(Ty::Dyn),
            Expr::Literal(l) => Ok(literal(l)),
            Expr::Ident(name) => match self.lookup(name) {
                Some(t) => Ok(t),
                None if TYPE_NAMES.contains(&name.as_str()) => Ok(Ty::Type),
                None => Err(format!("undeclared reference to '{name}'")),
            },
            Expr::Select(s) => {
                let operand = self.infer(&s.operand)?;
                let field = operand.field(&s.field, written_path(&s.operand.expr).as_deref())?;
                Ok(if s.test { Ty::Bool } else { field })
            }
            Expr::List(l) => {
                let mut elem = Ty::Dyn;
                let mut first = true;
                for (i, e) in l.elements.iter().enumerate() {
                    let mut t = self.infer(e)?;
                    if l.optional_indices.contains(&i) {
                        t = t.unwrap_optional();
                    }
                    elem = if first {
                        t
                    } else if t == elem {
                        elem
                    } else {
                        Ty::join(&elem, &t)
                    };
                    first = false;
                }
                Ok(Ty::List(Box::new(elem)))
            }
            Expr::Map(m) => {
                let mut val = Ty::Dyn;
                let mut first = true;
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(e) = &entry.expr {
                        let k = self.infer(&e.key)?;
                        if !matches!(k, Ty::String | Ty::Int | Ty::Uint | Ty::Bool | Ty::Dyn) {
                            return Err(format!("unsupported map key type '{k}'"));
                        }
                        let mut v = self.infer(&e.value)?;
                        if e.optional {
                            v = v.unwrap_optional();
                        }
                        val = if first {
                            v
                        } else if v == val {
                            val
                        } else {
                            Ty::join(&val, &v)
                        };
                        first = false;
                    }
                }
                Ok(Ty::Map(Box::new(val)))
            }
            Expr::Struct(s) => Err(format!(
                "message construction '{}' is not supported",
                s.type_name
            )),
            Expr::Comprehension(c) => {
                let range = self.infer(&c.iter_range)?;
                if !matches!(range, Ty::List(_) | Ty::Map(_) | Ty::Object(_) | Ty::Dyn) {
                    return Err(format!(
                        "expression of type '{range}' cannot be the range of a comprehension"
                    ));
                }
                let init = self.infer(&c.accu_init)?;
                let base = self.locals.len();
                self.locals.push((c.iter_var.clone(), range.elem()));
                if let Some(v2) = &c.iter_var2 {
                    self.locals.push((v2.clone(), Ty::Dyn));
                }
                self.locals.push((c.accu_var.clone(), init.clone()));
                let result = (|| {
                    self.infer(&c.loop_cond)?;
                    let step = self.infer(&c.loop_step)?;
                    let accu = Ty::join(&init, &step);
                    if let Some(last) = self.locals.last_mut() {
                        last.1 = accu;
                    }
                    self.infer(&c.result)
                })();
                self.locals.truncate(base);
                result
            }
            Expr::Call(call) => self.call(call),
        }
    }

    fn call(&mut self, call: &cel::common::ast::CallExpr) -> Result<Ty, String> {
        let f = call.func_name.as_str();
        // `ns.fn(...)`: a namespaced global function, unless `ns` is a variable.
        if let Some(t) = &call.target
            && let Expr::Ident(ns) = &t.expr
            && NAMESPACES.contains(&ns.as_str())
            && self.lookup(ns).is_none()
        {
            let args = self.args(&call.args)?;
            return global(&format!("{ns}.{f}"), &args);
        }
        match f {
            operators::LOGICAL_AND | operators::LOGICAL_OR => {
                for a in &call.args {
                    let t = self.infer(a)?;
                    if !matches!(t, Ty::Bool | Ty::Dyn) {
                        return Err(no_overload(f, &[&t]));
                    }
                }
                return Ok(Ty::Bool);
            }
            operators::CONDITIONAL => {
                let args = self.args(&call.args)?;
                if let [cond, a, b] = args.as_slice() {
                    if !matches!(cond, Ty::Bool | Ty::Dyn) {
                        return Err(format!("conditional needs a bool condition, got '{cond}'"));
                    }
                    return Ok(Ty::join(a, b));
                }
            }
            operators::OPT_SELECT => {
                if let [operand, field] = call.args.as_slice() {
                    let t = self.infer(operand)?;
                    let name = match &field.expr {
                        Expr::Literal(LiteralValue::String(s)) => s.inner().to_string(),
                        _ => return Ok(Ty::Optional(Box::new(Ty::Dyn))),
                    };
                    let ft = t
                        .field(&name, written_path(&operand.expr).as_deref())?
                        .unwrap_optional();
                    return Ok(Ty::Optional(Box::new(ft)));
                }
            }
            _ => {}
        }
        let target = match &call.target {
            Some(t) => Some(self.infer(t)?),
            None => None,
        };
        let args = self.args(&call.args)?;
        match target {
            Some(recv) => member(f, &recv, &args),
            None => global(f, &args),
        }
    }

    fn args(&mut self, args: &[IdedExpr]) -> Result<Vec<Ty>, String> {
        args.iter().map(|a| self.infer(a)).collect()
    }
}

fn arith(f: &str, a: &Ty, b: &Ty) -> Result<Ty, String> {
    use Ty::*;
    Ok(match (f, a, b) {
        (_, Dyn, Dyn) => Dyn,
        (_, Dyn, x) | (_, x, Dyn) => {
            let addable = matches!(x, String | Bytes | List(_)) && f == operators::ADD;
            if addable || x.is_numeric() || matches!(x, Duration | Timestamp) {
                return Ok(if matches!(x, Timestamp | Duration) {
                    Dyn
                } else {
                    x.clone()
                });
            }
            return Err(no_overload(f, &[a, b]));
        }
        (_, Int, Int) => Int,
        (_, Uint, Uint) => Uint,
        (_, Double, Double) => Double,
        ("_+_", String, String) => String,
        ("_+_", Bytes, Bytes) => Bytes,
        ("_+_", List(x), List(y)) => List(Box::new(Ty::join(x, y))),
        ("_+_", Timestamp, Duration) | ("_+_", Duration, Timestamp) => Timestamp,
        ("_+_" | "_-_", Duration, Duration) => Duration,
        ("_-_", Timestamp, Timestamp) => Duration,
        ("_-_", Timestamp, Duration) => Timestamp,
        _ => return Err(no_overload(f, &[a, b])),
    })
}

fn comparable(a: &Ty, b: &Ty) -> bool {
    a.is_dyn()
        || b.is_dyn()
        || (a.is_numeric() && b.is_numeric())
        || std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn global(f: &str, args: &[Ty]) -> Result<Ty, String> {
    let refs: Vec<&Ty> = args.iter().collect();
    let first = args.first().cloned().unwrap_or(Ty::Dyn);
    Ok(match f {
        operators::ADD
        | operators::SUBSTRACT
        | operators::MULTIPLY
        | operators::DIVIDE
        | operators::MODULO => match args {
            [a, b] => arith(f, a, b)?,
            _ => return Err(no_overload(f, &refs)),
        },
        operators::NEGATE => match first {
            Ty::Int | Ty::Double | Ty::Dyn => first,
            _ => return Err(no_overload(f, &refs)),
        },
        operators::LOGICAL_NOT | operators::NOT_STRICTLY_FALSE => match first {
            Ty::Bool | Ty::Dyn => Ty::Bool,
            _ => return Err(no_overload(f, &refs)),
        },
        operators::EQUALS | operators::NOT_EQUALS => match args {
            [a, b]
                if comparable(a, b)
                    || matches!(a, Ty::Null)
                    || matches!(b, Ty::Null)
                    || matches!((a, b), (Ty::Optional(_), _) | (_, Ty::Optional(_))) =>
            {
                Ty::Bool
            }
            [Ty::Object(_) | Ty::Map(_), Ty::Object(_) | Ty::Map(_)] => Ty::Bool,
            _ => return Err(no_overload(f, &refs)),
        },
        operators::LESS
        | operators::LESS_EQUALS
        | operators::GREATER
        | operators::GREATER_EQUALS => match args {
            [a, b]
                if comparable(a, b)
                    && matches!(
                        a,
                        Ty::Int
                            | Ty::Uint
                            | Ty::Double
                            | Ty::String
                            | Ty::Bytes
                            | Ty::Bool
                            | Ty::Duration
                            | Ty::Timestamp
                            | Ty::Dyn
                    ) =>
            {
                Ty::Bool
            }
            _ => return Err(no_overload(f, &refs)),
        },
        operators::IN => match args {
            [_, Ty::List(_) | Ty::Map(_) | Ty::Object(_) | Ty::Dyn] => Ty::Bool,
            _ => return Err(no_overload(f, &refs)),
        },
        operators::INDEX => match args {
            [Ty::List(t), Ty::Int | Ty::Uint | Ty::Dyn] => (**t).clone(),
            [Ty::Map(t), _] => (**t).clone(),
            [Ty::Object(_), _] => Ty::Dyn,
            [Ty::Dyn, _] => Ty::Dyn,
            [Ty::Optional(t), _] => {
                Ty::Optional(Box::new(global(f, &[(**t).clone(), args[1].clone()])?))
            }
            _ => return Err(no_overload(f, &refs)),
        },
        operators::OPT_INDEX => match args {
            [Ty::List(t), _] | [Ty::Map(t), _] => Ty::Optional(t.clone()),
            [Ty::Optional(t), _] => Ty::Optional(Box::new(
                global(operators::INDEX, &[(**t).clone(), args[1].clone()])?.unwrap_optional(),
            )),
            [Ty::Dyn | Ty::Object(_), _] => Ty::Optional(Box::new(Ty::Dyn)),
            _ => return Err(no_overload(f, &refs)),
        },
        "size" => Ty::Int,
        "int" => Ty::Int,
        "uint" => Ty::Uint,
        "double" => Ty::Double,
        "string" => Ty::String,
        "bool" => Ty::Bool,
        "bytes" => Ty::Bytes,
        "type" => Ty::Type,
        "dyn" => Ty::Dyn,
        "duration" => Ty::Duration,
        "timestamp" => Ty::Timestamp,
        "sha256" => Ty::String,
        "matches" => Ty::Bool,
        "math.@max" | "math.@min" => {
            let mut t = first.clone();
            for a in args.iter().skip(1) {
                t = if *a == t {
                    t
                } else if a.is_numeric() && t.is_numeric() {
                    Ty::Dyn
                } else {
                    Ty::join(&t, a)
                };
            }
            match t {
                Ty::List(e) => *e,
                t => t,
            }
        }
        "math.abs" | "math.sign" => first,
        "math.ceil" | "math.floor" | "math.round" | "math.trunc" | "math.sqrt" => Ty::Double,
        "math.isInf" | "math.isNaN" | "math.isFinite" => Ty::Bool,
        "math.bitAnd" | "math.bitOr" | "math.bitXor" | "math.bitNot" | "math.bitShiftLeft"
        | "math.bitShiftRight" => first,
        "strings.quote" | "base64.encode" | "random.seededString" | "json.marshal" => Ty::String,
        "base64.decode" | "hash.fnv64a" | "hash.sha256" | "hash.md5" => Ty::Bytes,
        "random.seededInt" => Ty::Int,
        "quantity" => match first {
            Ty::String | Ty::Dyn => Ty::Opaque(super::quantity::QUANTITY_TYPE),
            _ => return Err(no_overload(f, &refs)),
        },
        "isQuantity" | "isIP" | "isCIDR" | "isSemver" | "ip.isCanonical" | "isURL" => Ty::Bool,
        "url" => Ty::Opaque(super::url::URL_TYPE),
        "ip" => Ty::Opaque(super::net::IP_TYPE),
        "cidr" => Ty::Opaque(super::net::CIDR_TYPE),
        "semver" => Ty::Opaque(super::net::SEMVER_TYPE),
        "json.unmarshal" | "omit" => Ty::Dyn,
        "lists.range" => Ty::List(Box::new(Ty::Int)),
        super::comprehensions::ENTRIES => Ty::List(Box::new(Ty::List(Box::new(Ty::Dyn)))),
        super::comprehensions::FROM_ENTRIES | super::comprehensions::MERGE_ALL => {
            Ty::Map(Box::new(Ty::Dyn))
        }
        "lists.setAtIndex" | "lists.insertAtIndex" | "lists.removeAtIndex" => first,
        "optional.of" | "optional.ofNonZeroValue" => Ty::Optional(Box::new(first)),
        "optional.none" => Ty::Optional(Box::new(Ty::Dyn)),
        _ => return Err(format!("undeclared reference to function '{f}'")),
    })
}

fn member(f: &str, recv: &Ty, args: &[Ty]) -> Result<Ty, String> {
    let first = args.first().cloned().unwrap_or(Ty::Dyn);
    let want_string = |t: &Ty| -> Result<(), String> {
        if matches!(t, Ty::String | Ty::Dyn) {
            Ok(())
        } else {
            let mut all = vec![recv];
            all.extend(args.iter());
            Err(no_overload(f, &all))
        }
    };
    let quantity = Ty::Opaque(super::quantity::QUANTITY_TYPE);
    let semver = Ty::Opaque(super::net::SEMVER_TYPE);
    let on = |types: &[&Ty], out: Ty| -> Result<Ty, String> {
        if types.contains(&recv) || recv.is_dyn() {
            Ok(out)
        } else {
            let mut all = vec![recv];
            all.extend(args.iter());
            Err(no_overload(f, &all))
        }
    };
    let ip = Ty::Opaque(super::net::IP_TYPE);
    let cidr = Ty::Opaque(super::net::CIDR_TYPE);
    let on_quantity = |out: Ty| -> Result<Ty, String> {
        if *recv == quantity || recv.is_dyn() {
            Ok(out)
        } else {
            let mut all = vec![recv];
            all.extend(args.iter());
            Err(no_overload(f, &all))
        }
    };
    Ok(match f {
        "now" if *recv == Ty::Opaque(super::time::TIME_TYPE) => Ty::Timestamp,
        "isGreaterThan" | "isLessThan" => on(&[&quantity, &semver], Ty::Bool)?,
        "compareTo" => on(&[&quantity, &semver], Ty::Int)?,
        "major" | "minor" | "patch" => on(&[&semver], Ty::Int)?,
        "family" => on(&[&ip], Ty::Int)?,
        "isUnspecified"
        | "isLoopback"
        | "isLinkLocalMulticast"
        | "isLinkLocalUnicast"
        | "isGlobalUnicast" => on(&[&ip], Ty::Bool)?,
        "containsIP" | "containsCIDR" => on(&[&cidr], Ty::Bool)?,
        "ip" => on(&[&cidr], ip.clone())?,
        "masked" => on(&[&cidr], cidr.clone())?,
        "prefixLength" => on(&[&cidr], Ty::Int)?,
        "getScheme" | "getHost" | "getHostname" | "getPort" | "getEscapedPath" => {
            on(&[&Ty::Opaque(super::url::URL_TYPE)], Ty::String)?
        }
        "getQuery" => on(
            &[&Ty::Opaque(super::url::URL_TYPE)],
            Ty::Map(Box::new(Ty::List(Box::new(Ty::String)))),
        )?,
        "isInteger" => on_quantity(Ty::Bool)?,
        "asInteger" | "sign" => on_quantity(Ty::Int)?,
        "asApproximateFloat" => on_quantity(Ty::Double)?,
        "add" | "sub" => on_quantity(quantity.clone())?,
        "contains" | "startsWith" | "endsWith" | "matches" => {
            want_string(recv)?;
            Ty::Bool
        }
        "size" => Ty::Int,
        "charAt" | "lowerAscii" | "upperAscii" | "trim" | "replace" | "substring" | "format"
        | "quote" | "find" => {
            want_string(recv)?;
            Ty::String
        }
        "join" => match recv {
            Ty::List(_) | Ty::Dyn => Ty::String,
            _ => return Err(no_overload(f, &[recv])),
        },
        "split" | "findAll" => {
            want_string(recv)?;
            Ty::List(Box::new(Ty::String))
        }
        "indexOf" | "lastIndexOf" => Ty::Int,
        "reverse" => recv.clone(),
        "hasValue" => Ty::Bool,
        "value" => recv.clone().unwrap_optional(),
        "orValue" => Ty::join(&recv.clone().unwrap_optional(), &first),
        "or" => recv.clone(),
        "merge" => match recv {
            Ty::Map(_) | Ty::Object(_) | Ty::Dyn => recv.clone(),
            _ => return Err(no_overload(f, &[recv])),
        },
        "distinct" | "slice" | "sort" | "@sortByAssociatedKeys" => recv.clone(),
        "flatten" => match recv {
            Ty::List(inner) => match &**inner {
                Ty::List(x) => Ty::List(x.clone()),
                _ => Ty::List(Box::new(Ty::Dyn)),
            },
            _ => Ty::List(Box::new(Ty::Dyn)),
        },
        "sum" | "min" | "max" => recv.elem(),
        "isSorted" => Ty::Bool,
        "getDate" | "getDayOfMonth" | "getDayOfWeek" | "getDayOfYear" | "getFullYear"
        | "getHours" | "getMilliseconds" | "getMinutes" | "getMonth" | "getSeconds" => Ty::Int,
        _ => return Err(format!("undeclared reference to function '{f}'")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> TypeEnv {
        let spec = json!({"type": "object", "properties": {
            "name": {"type": "string"},
            "replicas": {"type": "integer"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }});
        let mut e = TypeEnv::new();
        e.declare(
            "schema",
            Ty::Object(Arc::new(ObjectTy {
                fields: [("spec".to_owned(), Ty::from_openapi(&spec))].into(),
                open: false,
            })),
        );
        e.declare("deployment", Ty::Dyn);
        e
    }

    fn ty(src: &str) -> Result<Ty, String> {
        let p = crate::expr::CompiledExpr::parse(src).map_err(|e| e.to_string())?;
        infer(p.ast(), &env()).map_err(|e| e.message)
    }

    #[test]
    fn infers_schema_types() {
        assert_eq!(ty("schema.spec.replicas").unwrap(), Ty::Int);
        assert_eq!(ty("schema.spec.name + '-svc'").unwrap(), Ty::String);
        assert_eq!(
            ty("schema.spec.labels").unwrap(),
            Ty::Map(Box::new(Ty::String))
        );
        assert_eq!(
            ty("schema.spec.ports.map(p, p.port)").unwrap(),
            Ty::List(Box::new(Ty::Int))
        );
        assert_eq!(ty("schema.spec.extra.anything.goes").unwrap(), Ty::Dyn);
        assert_eq!(ty("deployment.status.availableReplicas").unwrap(), Ty::Dyn);
        assert_eq!(ty("has(schema.spec.name)").unwrap(), Ty::Bool);
        assert_eq!(ty("schema.spec.?name.orValue('x')").unwrap(), Ty::String);
        assert_eq!(
            ty("size(schema.spec.ports) > 0 ? 'a' : 'b'").unwrap(),
            Ty::String
        );
        assert_eq!(
            ty("cel.bind(x, schema.spec.replicas, x * 2)").unwrap(),
            Ty::Int
        );
    }

    #[test]
    fn rejects_unknown_fields_and_bad_operands() {
        let e = ty("schema.spec.replicaz").unwrap_err();
        assert!(e.contains("undefined field 'replicaz'"), "{e}");
        let e = ty("schema.spec.replicas + 'x'").unwrap_err();
        assert!(e.contains("_+_") && e.contains("(int, string)"), "{e}");
        let e = ty("schema.spec.name > 3").unwrap_err();
        assert!(e.contains("_>_"), "{e}");
        let e = ty("nope.field").unwrap_err();
        assert!(e.contains("undeclared reference to 'nope'"), "{e}");
        let e = ty("schema.spec.name.noSuchFn()").unwrap_err();
        assert!(e.contains("noSuchFn"), "{e}");
        let e = ty("schema.spec.replicas.field").unwrap_err();
        assert!(e.contains("does not support field selection"), "{e}");
        let e = ty("!schema.spec.name").unwrap_err();
        assert!(e.contains("!_"), "{e}");
    }

    #[test]
    fn openapi_round_trip_for_status_inference() {
        assert_eq!(Ty::Int.to_openapi(), json!({"type": "integer"}));
        assert_eq!(
            Ty::List(Box::new(Ty::String)).to_openapi(),
            json!({"type": "array", "items": {"type": "string"}})
        );
        assert_eq!(
            Ty::Dyn.to_openapi(),
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
    }
}

#[cfg(test)]
mod library_tests {
    use super::*;

    /// Every function the environment registers type-checks: an unknown
    /// function is a compile error, so the checker must know them all.
    #[test]
    fn every_library_function_type_checks() {
        let mut env = TypeEnv::new();
        env.declare("xs", Ty::List(Box::new(Ty::Int)));
        env.declare("s", Ty::String);
        env.declare("m", Ty::Map(Box::new(Ty::String)));
        let exprs = [
            "size(xs) + size(s) + s.size()",
            "xs.map(x, x * 2).filter(x, x > 1).exists(x, x == 2)",
            "xs.all(x, x > 0) || xs.exists_one(x, x == 1)",
            "int('1') + int(2.0) > 0 || uint(1) > 0u || double(1) > 0.5 || bool('true')",
            "(string(1) + string(b'x')).size() > 0 && type(1) == type(2)",
            "s.lowerAscii() + s.upperAscii() + s.trim() + s.replace('a', 'b') + s.charAt(0)",
            "s.substring(1) + s.substring(0, 1) + '%s'.format([s]) + ['a'].join() + ['a'].join(',')",
            "s.split(',').size() + s.indexOf('a') + s.lastIndexOf('a') + s.indexOf('a', 1)",
            "s.contains('a') && s.startsWith('a') && s.endsWith('a') && s.matches('a')",
            "strings.quote(s) + s.reverse()",
            "xs.distinct() + xs.flatten() + xs.reverse() + xs.slice(0, 1) + xs.sort() + lists.range(2)",
            "xs.sortBy(x, -x)",
            "math.greatest(1, 2) + math.least([1, 2]) + math.abs(-1) + math.sign(1)",
            "math.ceil(1.5) + math.floor(1.5) + math.round(1.5) + math.trunc(1.5) + math.sqrt(4.0)",
            "math.isInf(1.0) || math.isNaN(1.0) || math.isFinite(1.0)",
            "math.bitAnd(1, 2) + math.bitOr(1, 2) + math.bitXor(1, 2) + math.bitNot(1) + math.bitShiftLeft(1, 2) + math.bitShiftRight(4, 1)",
            "base64.encode(base64.decode('aGk='))",
            "cel.bind(y, xs, y.size())",
            "m.?a.orValue('') + m[?'a'].value() + optional.of(s).or(optional.none()).orValue('')",
            "optional.ofNonZeroValue(s).hasValue()",
            "random.seededString(5, s) + json.marshal(xs) + string(hash.sha256(s)) + string(hash.md5(s)) + string(hash.fnv64a(s))",
            "random.seededInt(1, 5, s) + size(json.unmarshal('[]'))",
            "m.merge({'b': 'c'})",
            "lists.setAtIndex(xs, 0, 1) + lists.insertAtIndex(xs, 0, 1) + lists.removeAtIndex(xs, 0)",
            "true ? omit() : 1",
            "s.find('a') + s.findAll('a').join() + s.findAll('a', 1).join()",
            "xs.sum() + xs.min() + xs.max() > 0 && xs.isSorted()",
            "duration('1s') + duration('2s') > duration('1s')",
            "timestamp('2024-01-01T00:00:00Z').getFullYear() + timestamp('2024-01-01T00:00:00Z').getMonth()",
            "1 in xs && 'a' in m && !(s == '')",
            "-1 < 2 && 1.0 <= 2.0 && 'a' >= 'b' && xs[0] != 1",
            "dyn(1) == 1",
            "url(s).getScheme() + url(s).getHost() + url(s).getHostname() + url(s).getPort() + url(s).getEscapedPath() + url(s).getQuery()['a'][0] != '' || isURL(s)",
            "cidr(s).containsIP(ip(s)) && cidr(s).containsCIDR(s) && cidr(s).masked().ip().family() + cidr(s).prefixLength() > 0",
            "ip(s).isLoopback() || ip(s).isUnspecified() || ip(s).isGlobalUnicast() || ip(s).isLinkLocalUnicast() || ip(s).isLinkLocalMulticast() || isIP(s) || isCIDR(s) || ip.isCanonical(s)",
            "semver(s).isGreaterThan(semver(s)) || semver(s).major() + semver(s).minor() + semver(s).patch() + semver(s).compareTo(semver(s)) > 0 || isSemver(s)",
            "quantity(s).isGreaterThan(quantity('1Gi')) && quantity(s).add(1).sub(quantity(s)).asInteger() == 1 && isQuantity(s)",
            "quantity(s).compareTo(quantity(s)) + quantity(s).sign() > 0 || quantity(s).isInteger() || quantity(s).asApproximateFloat() > 1.0",
            "xs.all(i, v, v > i) && m.exists(k, v, k == v) && xs.existsOne(i, v, v == 1)",
            "xs.transformList(i, v, v * i).size() + m.transformMap(k, v, v + k).size() + m.transformMapEntry(k, v, {v: k}).size()",
            "type(s) == string && type(xs) == list && type(1) != double",
        ];
        let failures: Vec<String> = exprs
            .iter()
            .filter_map(|src| {
                let p = match crate::expr::CompiledExpr::parse(src) {
                    Ok(p) => p,
                    Err(e) => return Some(format!("{src}: {e}")),
                };
                if let Err(e) = infer(p.ast(), &env) {
                    return Some(format!("{src}: {e}"));
                }
                // And the environment really has every function named.
                let mut ctx = cel::Context::with_env(crate::expr::library::env().ok()?);
                let vars = [
                    ("xs", serde_json::json!([1, 2])),
                    ("s", serde_json::json!("a,b")),
                    ("m", serde_json::json!({"a": "x"})),
                ];
                for (k, v) in vars {
                    ctx.add_variable_from_value(k, crate::expr::value::to_cel(&v));
                }
                match p.eval(&ctx, &crate::expr::cost::InputBound::default()) {
                    Err(e) if e.to_string().contains("ndeclared") => Some(format!("{src}: {e}")),
                    _ => None,
                }
            })
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}

//! Static estimate of the largest value an expression can build, over the
//! actual inputs, so a program that could exhaust memory (nested `cel.bind`
//! doubling a string, `replace` chains, comprehensions over large inputs) is
//! refused before it runs. Reads of inputs (`schema.spec.name`) are sized
//! from the real JSON; comprehensions grow by their per-iteration delta, with
//! the part that depends on the element bounded by the whole range (the
//! elements' sizes add up to at most the range's size).

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, operators,
};
use serde_json::Value as Json;

use super::cost::InputBound;

/// Largest estimated size, in bytes, of any value an evaluation builds.
pub const MAX_ESTIMATED_BYTES: u64 = 64 << 20;

/// Finds an input variable's JSON by name.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<&'a Json>;

/// Approximate JSON size of a value.
pub fn json_size(v: &Json) -> u64 {
    match v {
        Json::Null | Json::Bool(_) | Json::Number(_) => 8,
        Json::String(s) => s.len() as u64 + 2,
        Json::Array(items) => items
            .iter()
            .map(json_size)
            .fold(2, |a, b| a.saturating_add(b).saturating_add(1)),
        Json::Object(m) => m
            .iter()
            .map(|(k, v)| json_size(v).saturating_add(k.len() as u64 + 4))
            .fold(2, u64::saturating_add),
    }
}

/// Estimated size of the largest value `expr` builds.
pub fn estimate<'l>(expr: &IdedExpr, bound: &InputBound, lookup: Lookup<'l>) -> u64 {
    Estimator {
        bound,
        lookup,
        locals: Vec::new(),
    }
    .size(expr)
}

struct Estimator<'a, 'l> {
    bound: &'a InputBound,
    lookup: Lookup<'l>,
    locals: Vec<(String, u64)>,
}

/// Functions whose result is a scalar whatever their arguments.
const SCALAR: &[&str] = &[
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::LOGICAL_NOT,
    operators::NOT_STRICTLY_FALSE,
    operators::EQUALS,
    operators::NOT_EQUALS,
    operators::LESS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::GREATER_EQUALS,
    operators::IN,
    operators::SUBSTRACT,
    operators::MULTIPLY,
    operators::DIVIDE,
    operators::MODULO,
    operators::NEGATE,
    "size",
    "int",
    "uint",
    "double",
    "bool",
    "type",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "hasValue",
    "isSorted",
    "indexOf",
    "lastIndexOf",
    "isQuantity",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "sign",
    "compareTo",
    "isGreaterThan",
    "isLessThan",
    "random.seededInt",
    "duration",
    "timestamp",
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "hash.fnv64a",
    "hash.sha256",
    "hash.md5",
    "math.isInf",
    "math.isNaN",
    "math.isFinite",
];

/// Functions whose result is no larger than their receiver (or first argument).
const SHRINKING: &[&str] = &[
    "lowerAscii",
    "upperAscii",
    "trim",
    "substring",
    "charAt",
    "reverse",
    "distinct",
    "flatten",
    "sort",
    "slice",
    "find",
    "min",
    "max",
    "value",
    "omit",
    "base64.decode",
    "math.abs",
    "math.ceil",
    "math.floor",
    "math.round",
    "math.trunc",
    "math.sqrt",
    "math.bitAnd",
    "math.bitOr",
    "math.bitXor",
    "math.bitNot",
    "math.bitShiftLeft",
    "math.bitShiftRight",
    "lists.removeAtIndex",
    "@sortByAssociatedKeys",
];

impl Estimator<'_, '_> {
    fn local(&self, name: &str) -> Option<u64> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
    }

    /// Size of an input read: the real JSON at the path when the chain starts
    /// at an input variable, else `None`.
    fn input_at(&self, expr: &IdedExpr) -> Option<u64> {
        self.input_json(expr).map(|v| v.map_or(0, json_size))
    }

    /// The JSON an input read yields (`Some(None)` when the path is absent).
    fn input_json(&self, expr: &IdedExpr) -> Option<Option<&Json>> {
        let mut path = Vec::new();
        let mut cur = expr;
        loop {
            match &cur.expr {
                Expr::Ident(name) => {
                    if self.local(name).is_some() {
                        return None;
                    }
                    let mut v = (self.lookup)(name)?;
                    for field in path.iter().rev() {
                        v = match v.get(*field) {
                            Some(x) => x,
                            None => return Some(None),
                        };
                    }
                    return Some(Some(v));
                }
                Expr::Select(s) if !s.test => {
                    path.push(s.field.as_str());
                    cur = &s.operand;
                }
                _ => return None,
            }
        }
    }

    fn size(&mut self, expr: &IdedExpr) -> u64 {
        if let Some(s) = self.input_at(expr) {
            return s;
        }
        match &expr.expr {
            Expr::Unspecified => 0,
            Expr::Literal(l) => match l {
                LiteralValue::String(s) => s.inner().len() as u64 + 2,
                LiteralValue::Bytes(b) => b.inner().len() as u64 * 2 + 2,
                _ => 8,
            },
            Expr::Ident(name) => self.local(name).unwrap_or(8),
            Expr::Select(s) => {
                let inner = self.size(&s.operand);
                if s.test { 8 } else { inner }
            }
            Expr::List(l) => l.elements.iter().fold(2, |a, e| {
                let s = self.size(e);
                a.saturating_add(s).saturating_add(1)
            }),
            Expr::Map(m) => m.entries.iter().fold(2, |a, e| {
                let s = match &e.expr {
                    EntryExpr::MapEntry(me) => {
                        self.size(&me.key).saturating_add(self.size(&me.value))
                    }
                    EntryExpr::StructField(f) => self.size(&f.value),
                };
                a.saturating_add(s).saturating_add(2)
            }),
            Expr::Struct(s) => s.entries.iter().fold(2, |a, e| {
                let s = match &e.expr {
                    EntryExpr::MapEntry(me) => {
                        self.size(&me.key).saturating_add(self.size(&me.value))
                    }
                    EntryExpr::StructField(f) => self.size(&f.value),
                };
                a.saturating_add(s)
            }),
            Expr::Call(c) => self.call(c),
            Expr::Comprehension(c) => self.comprehension(c),
        }
    }

    fn int_literal(&self, e: &IdedExpr) -> u64 {
        match &e.expr {
            Expr::Literal(LiteralValue::Int(i)) => (*i.inner()).max(0) as u64,
            _ => self.bound.max_int.max(self.bound.max_len),
        }
    }

    fn call(&mut self, c: &CallExpr) -> u64 {
        let name = match &c.target {
            Some(t) => match &t.expr {
                Expr::Ident(ns)
                    if super::library::NAMESPACES.contains(&ns.as_str())
                        && self.local(ns).is_none() =>
                {
                    format!("{ns}.{}", c.func_name)
                }
                _ => c.func_name.clone(),
            },
            None => c.func_name.clone(),
        };
        let qualified = name != c.func_name;
        let target = match (&c.target, qualified) {
            (Some(t), false) => self.size(t),
            _ => 0,
        };
        let args: Vec<u64> = c.args.iter().map(|a| self.size(a)).collect();
        let arg = |i: usize| args.get(i).copied().unwrap_or(0);
        let all = args.iter().fold(target, |a, b| a.saturating_add(*b));
        let recv = if c.target.is_some() && !qualified {
            target
        } else {
            arg(0)
        };
        match name.as_str() {
            n if SCALAR.contains(&n) => 8,
            n if SHRINKING.contains(&n) => recv,
            operators::ADD => all,
            operators::CONDITIONAL => arg(1).max(arg(2)),
            operators::INDEX | operators::OPT_INDEX | operators::OPT_SELECT => arg(0),
            "replace" => target.saturating_mul(arg(1).max(1)),
            "join" => target.saturating_mul(arg(0).saturating_add(1)),
            "split" | "findAll" => target.saturating_mul(4),
            "format" => target
                .saturating_add(arg(0).saturating_mul(2))
                .saturating_add(16),
            "string" | "strings.quote" | "json.marshal" | "base64.encode" | "quote" => {
                recv.saturating_mul(2).saturating_add(24)
            }
            "lists.range" => c
                .args
                .first()
                .map_or(8, |a| self.int_literal(a))
                // Each element is a boxed value in memory, not 8 bytes.
                .saturating_mul(48),
            "random.seededString" => c.args.first().map_or(8, |a| self.int_literal(a)).min(4096),
            "orValue" | "or" => target.max(arg(0)),
            super::comprehensions::ENTRIES => recv.saturating_mul(2).saturating_add(16),
            _ => all.max(8),
        }
    }

    fn iterations(&self, range: &IdedExpr, range_size: u64) -> u64 {
        match self.input_json(range) {
            Some(Some(Json::Array(items))) => return items.len() as u64,
            Some(Some(Json::Object(m))) => return m.len() as u64,
            Some(_) => return 0,
            None => {}
        }
        match &range.expr {
            Expr::List(l) => l.elements.len() as u64,
            Expr::Map(m) => m.entries.len() as u64,
            Expr::Call(c) if c.func_name == "range" || c.func_name == "lists.range" => c
                .args
                .first()
                .map_or(self.bound.max_len, |a| self.int_literal(a)),
            // Every element takes at least a byte of the range.
            _ => range_size.min(self.bound.max_len.max(1)),
        }
    }

    fn comprehension(&mut self, c: &ComprehensionExpr) -> u64 {
        let range = self.size(&c.iter_range);
        let iterations = self.iterations(&c.iter_range, range);
        let init = self.size(&c.accu_init);
        let base = self.locals.len();
        // Per-iteration growth with an empty element, then with the element
        // as large as the whole range: elements add up to at most `range`.
        let step_with = |me: &mut Self, elem: u64| {
            me.locals.truncate(base);
            me.locals.push((c.iter_var.clone(), elem));
            if let Some(v2) = &c.iter_var2 {
                me.locals.push((v2.clone(), elem));
            }
            me.locals.push((c.accu_var.clone(), 0));
            me.size(&c.loop_step)
        };
        let d0 = step_with(self, 0);
        let d_range = step_with(self, range);
        let growth = iterations
            .saturating_mul(d0)
            .saturating_add(d_range.saturating_sub(d0));
        let accu = if iterations == 0 {
            init
        } else {
            init.saturating_add(growth)
        };
        self.locals.truncate(base);
        self.locals.push((c.accu_var.clone(), accu));
        let result = self.size(&c.result);
        self.locals.truncate(base);
        result.max(accu.min(result.max(8)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn est(src: &str) -> u64 {
        let env = crate::expr::library::env().unwrap();
        let p = env.compile(src).unwrap();
        let schema =
            json!({"spec": {"name": "web", "items": ["a", "b", "c"], "big": "x".repeat(1000)}});
        let mut bound = InputBound::default();
        bound.include(&schema);
        let lookup = |n: &str| if n == "schema" { Some(&schema) } else { None };
        estimate(p.expression(), &bound, &lookup)
    }

    #[test]
    fn input_reads_are_sized_from_the_real_json() {
        assert_eq!(est("schema.spec.name"), 5);
        assert!(est("schema.spec.name + '-x'") < 16);
        assert!(est("schema.spec.items.map(x, x + schema.spec.name)") < 64);
    }

    #[test]
    fn doubling_and_replace_chains_blow_the_estimate() {
        // Kept shallow: the parser recurses deeply in debug builds.
        let mut src = "schema.spec.big".to_owned();
        for i in 0..11 {
            src = format!("cel.bind(v{i}, {src}, v{i} + v{i} + v{i})");
        }
        assert!(est(&src) > MAX_ESTIMATED_BYTES, "{}", est(&src));
        let replaced = "schema.spec.big.replace('x', 'xxxxxxxxxx').replace('x', 'xxxxxxxxxx').replace('x', 'xxxxxxxxxx').replace('x', 'xxxxxxxxxx').replace('x', 'xxxxxxxxxx')";
        assert!(est(replaced) > MAX_ESTIMATED_BYTES);
        assert!(est("lists.range(100000000)") > MAX_ESTIMATED_BYTES);
        assert!(est("lists.range(2000000)") > MAX_ESTIMATED_BYTES);
        assert!(est("lists.range(1000)") < MAX_ESTIMATED_BYTES);
    }
}

//! Kubernetes' CEL quantity library: `quantity("1.5Gi")`, `isQuantity(s)`
//! and the methods `isInteger`, `asInteger`, `asApproximateFloat`, `sign`,
//! `add`, `sub`, `isGreaterThan`, `isLessThan`, `compareTo`. Values are kept
//! exactly, in nano-units, so `quantity("1Gi") == quantity("1024Mi")`.

use std::cmp::Ordering;
use std::sync::Arc;

use cel::objects::Opaque;
use cel::{ExecutionError, Value};

/// CEL type name of quantities.
pub const QUANTITY_TYPE: &str = "kubernetes.Quantity";

const NANO: i128 = 1_000_000_000;

/// A parsed quantity: its exact value in nano-units and how it was written.
#[derive(Debug, Clone)]
pub struct Quantity {
    nanos: i128,
    text: String,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &str {
        QUANTITY_TYPE
    }

    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.text.clone()))
    }
}

impl Quantity {
    /// Parses Kubernetes quantity syntax: a signed decimal number followed by
    /// a binary-SI (`Ki`..`Ei`), decimal-SI (`n`, `u`, `m`, `k`, `M`..`E`)
    /// or exponent (`e3`, `E-2`) suffix.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {s:?}"
            )
        };
        let num_end = s
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
            .map_or(s.len(), |(i, _)| i);
        let (number, suffix) = s.split_at(num_end);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(bad());
        }
        let mut mantissa: i128 = 0;
        for c in int_part.chars().chain(frac_part.chars()) {
            let d = i128::from(c.to_digit(10).ok_or_else(bad)? as u8);
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(d))
                .ok_or_else(|| format!("quantity too large: {s:?}"))?;
        }
        let frac_digits = i32::try_from(frac_part.len()).map_err(|_| bad())?;
        // value = mantissa * 2^binary * 10^(decimal - frac_digits)
        let (binary, decimal): (u32, i32) = match suffix {
            "" => (0, 0),
            "Ki" => (10, 0),
            "Mi" => (20, 0),
            "Gi" => (30, 0),
            "Ti" => (40, 0),
            "Pi" => (50, 0),
            "Ei" => (60, 0),
            "n" => (0, -9),
            "u" => (0, -6),
            "m" => (0, -3),
            "k" => (0, 3),
            "M" => (0, 6),
            "G" => (0, 9),
            "T" => (0, 12),
            "P" => (0, 15),
            "E" => (0, 18),
            exp if exp.starts_with(['e', 'E']) => {
                let e: i32 = exp[1..].parse().map_err(|_| bad())?;
                if !(-30..=30).contains(&e) {
                    return Err(format!("quantity exponent out of range: {s:?}"));
                }
                (0, e)
            }
            _ => return Err(bad()),
        };
        let too_large = || format!("quantity too large: {s:?}");
        let mut value = mantissa
            .checked_mul(1i128 << binary)
            .ok_or_else(too_large)?;
        let scale = 9 + decimal - frac_digits;
        if scale >= 0 {
            value = value
                .checked_mul(10i128.checked_pow(scale as u32).ok_or_else(too_large)?)
                .ok_or_else(too_large)?;
        } else {
            // Finer than a nano-unit: rounded up, as Kubernetes does.
            let div = 10i128.checked_pow((-scale) as u32).ok_or_else(too_large)?;
            value = value.checked_add(div - 1).ok_or_else(too_large)? / div;
        }
        Ok(Self {
            nanos: if negative { -value } else { value },
            text: s.to_owned(),
        })
    }

    fn from_nanos(nanos: i128) -> Self {
        let text = if nanos % NANO == 0 {
            (nanos / NANO).to_string()
        } else if nanos % 1_000_000 == 0 {
            format!("{}m", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            format!("{}u", nanos / 1_000)
        } else {
            format!("{nanos}n")
        };
        Self { nanos, text }
    }
}

fn err(f: &str, m: impl ToString) -> ExecutionError {
    ExecutionError::function_error(f, m)
}

fn quantity_arg<'a>(f: &str, v: &'a Value) -> Result<&'a Quantity, ExecutionError> {
    match v {
        Value::Opaque(o) => o
            .downcast_ref::<Quantity>()
            .ok_or_else(|| err(f, "expected a quantity")),
        other => Err(err(
            f,
            format!("expected a quantity, got {}", other.type_of()),
        )),
    }
}

fn wrap(q: Quantity) -> Value {
    Value::Opaque(Arc::new(q))
}

/// `quantity(string)`.
pub fn quantity(a: &[Value]) -> Result<Value, ExecutionError> {
    match a {
        [Value::String(s)] => Quantity::parse(s).map(wrap).map_err(|e| err("quantity", e)),
        _ => Err(err("quantity", "expected one string")),
    }
}

/// `isQuantity(string)`.
pub fn is_quantity(a: &[Value]) -> Result<Value, ExecutionError> {
    match a {
        [Value::String(s)] => Ok(Value::Bool(Quantity::parse(s).is_ok())),
        _ => Err(err("isQuantity", "expected one string")),
    }
}

/// `q.isInteger()`.
pub fn is_integer(a: &[Value]) -> Result<Value, ExecutionError> {
    let q = quantity_arg("isInteger", a.first().unwrap_or(&Value::Null))?;
    Ok(Value::Bool(
        q.nanos % NANO == 0 && i64::try_from(q.nanos / NANO).is_ok(),
    ))
}

/// `q.asInteger()`: an error when not an integer or out of range.
pub fn as_integer(a: &[Value]) -> Result<Value, ExecutionError> {
    let q = quantity_arg("asInteger", a.first().unwrap_or(&Value::Null))?;
    if q.nanos % NANO != 0 {
        return Err(err("asInteger", format!("{} is not an integer", q.text)));
    }
    i64::try_from(q.nanos / NANO)
        .map(Value::Int)
        .map_err(|_| err("asInteger", format!("{} does not fit an int", q.text)))
}

/// `q.asApproximateFloat()`.
pub fn as_approximate_float(a: &[Value]) -> Result<Value, ExecutionError> {
    let q = quantity_arg("asApproximateFloat", a.first().unwrap_or(&Value::Null))?;
    Ok(Value::Float(q.nanos as f64 / NANO as f64))
}

/// `q.sign()`: -1, 0 or 1.
pub fn sign(a: &[Value]) -> Result<Value, ExecutionError> {
    let q = quantity_arg("sign", a.first().unwrap_or(&Value::Null))?;
    Ok(Value::Int(q.nanos.signum() as i64))
}

fn operand(f: &str, v: &Value) -> Result<i128, ExecutionError> {
    match v {
        Value::Int(i) => i128::from(*i)
            .checked_mul(NANO)
            .ok_or_else(|| err(f, "overflow")),
        other => quantity_arg(f, other).map(|q| q.nanos),
    }
}

fn binary(f: &str, a: &[Value]) -> Result<(i128, i128), ExecutionError> {
    match a {
        [x, y] => Ok((quantity_arg(f, x)?.nanos, operand(f, y)?)),
        _ => Err(err(f, "expected one argument")),
    }
}

/// `q.add(quantity | int)`.
pub fn add(a: &[Value]) -> Result<Value, ExecutionError> {
    let (x, y) = binary("add", a)?;
    x.checked_add(y)
        .map(|n| wrap(Quantity::from_nanos(n)))
        .ok_or_else(|| err("add", "overflow"))
}

/// `q.sub(quantity | int)`.
pub fn sub(a: &[Value]) -> Result<Value, ExecutionError> {
    let (x, y) = binary("sub", a)?;
    x.checked_sub(y)
        .map(|n| wrap(Quantity::from_nanos(n)))
        .ok_or_else(|| err("sub", "overflow"))
}

/// `q.compareTo(other)`: -1, 0 or 1.
pub fn compare_to(a: &[Value]) -> Result<Value, ExecutionError> {
    let (x, y) = binary("compareTo", a)?;
    Ok(Value::Int(match x.cmp(&y) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }))
}

/// `q.isGreaterThan(other)`.
pub fn is_greater_than(a: &[Value]) -> Result<Value, ExecutionError> {
    let (x, y) = binary("isGreaterThan", a)?;
    Ok(Value::Bool(x > y))
}

/// `q.isLessThan(other)`.
pub fn is_less_than(a: &[Value]) -> Result<Value, ExecutionError> {
    let (x, y) = binary("isLessThan", a)?;
    Ok(Value::Bool(x < y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_suffix_exactly() {
        let n = |s: &str| Quantity::parse(s).unwrap().nanos;
        assert_eq!(n("1"), NANO);
        assert_eq!(n("1Ki"), 1024 * NANO);
        assert_eq!(n("1.5Gi"), 1_610_612_736 * NANO);
        assert_eq!(n("500m"), NANO / 2);
        assert_eq!(n("100u"), 100_000);
        assert_eq!(n("3n"), 3);
        assert_eq!(n("2k"), 2000 * NANO);
        assert_eq!(n("1e3"), 1000 * NANO);
        assert_eq!(n("1E-3"), NANO / 1000);
        assert_eq!(n("-0.5"), -NANO / 2);
        assert_eq!(n(".5M"), 500_000 * NANO);
        assert_eq!(n("1Gi"), n("1024Mi"));
        // Rounding up must not overflow next to the largest value.
        assert!(Quantity::parse(&format!("{}e-30", i128::MAX)).is_err());
        for bad in ["", "Gi", "1.2.3", "1Zi", "abc", "1e", "+"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_keeps_a_quantity_string() {
        assert_eq!(Quantity::from_nanos(1500 * 1_000_000).text, "1500m");
        assert_eq!(Quantity::from_nanos(2 * NANO).text, "2");
    }
}

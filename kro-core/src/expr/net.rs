//! Kubernetes' CEL IP, CIDR and semver libraries: `ip()`, `isIP()`,
//! `ip.isCanonical()`, `cidr()`, `isCIDR()`, `semver()`, `isSemver()` and
//! their methods, over std's address types.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

use cel::objects::Opaque;
use cel::{ExecutionError, Value};

/// CEL type name of IP addresses.
pub const IP_TYPE: &str = "net.IP";
/// CEL type name of CIDR prefixes.
pub const CIDR_TYPE: &str = "net.CIDR";
/// CEL type name of semantic versions.
pub const SEMVER_TYPE: &str = "kubernetes.Semver";

/// An IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip(pub IpAddr);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        IP_TYPE
    }
    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.to_string()))
    }
}

/// A CIDR prefix: an address and a prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        CIDR_TYPE
    }
    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(format!(
            "{}/{}",
            self.addr, self.prefix
        )))
    }
}

/// A semantic version (major.minor.patch, pre-release, build metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
    text: String,
}

impl Opaque for Semver {
    fn runtime_type_name(&self) -> &str {
        SEMVER_TYPE
    }
    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.text.clone()))
    }
}

fn err(f: &str, m: impl ToString) -> ExecutionError {
    ExecutionError::function_error(f, m)
}

fn string_arg<'a>(f: &str, a: &'a [Value], i: usize) -> Result<&'a str, ExecutionError> {
    match a.get(i) {
        Some(Value::String(s)) => Ok(s.as_str()),
        _ => Err(err(f, "expected a string")),
    }
}

fn opaque<'a, T: 'static>(f: &str, v: Option<&'a Value>) -> Result<&'a T, ExecutionError> {
    match v {
        Some(Value::Opaque(o)) => o
            .downcast_ref::<T>()
            .ok_or_else(|| err(f, "wrong receiver type")),
        _ => Err(err(f, "wrong receiver type")),
    }
}

/// Kubernetes accepts neither zones (`fe80::1%eth0`) nor IPv4-mapped IPv6.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = s
        .parse()
        .map_err(|_| format!("IP address {s:?} is not valid"))?;
    if let IpAddr::V6(v6) = ip
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!("IPv4-mapped IPv6 address {s:?} is not allowed"));
    }
    Ok(ip)
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("network address {s:?} is not valid CIDR notation"))?;
    let addr = parse_ip(addr)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= max && !prefix.starts_with('+'))
        .ok_or_else(|| format!("network address {s:?} has an invalid prefix length"))?;
    Ok(Cidr { addr, prefix })
}

fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((bits & mask).into())
        }
    }
}

fn contains(c: &Cidr, ip: IpAddr) -> bool {
    ip.is_ipv4() == c.addr.is_ipv4() && masked(ip, c.prefix) == masked(c.addr, c.prefix)
}

fn wrap<T: Opaque>(t: T) -> Value {
    Value::Opaque(Arc::new(t))
}

/// `ip(string)`.
pub fn ip(a: &[Value]) -> Result<Value, ExecutionError> {
    parse_ip(string_arg("ip", a, 0)?)
        .map(|i| wrap(Ip(i)))
        .map_err(|e| err("ip", e))
}

/// `isIP(string)`.
pub fn is_ip(a: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse_ip(string_arg("isIP", a, 0)?).is_ok()))
}

/// `ip.isCanonical(string)`: whether the text is the address's canonical form.
pub fn ip_is_canonical(a: &[Value]) -> Result<Value, ExecutionError> {
    let s = string_arg("ip.isCanonical", a, 0)?;
    let ip = parse_ip(s).map_err(|e| err("ip.isCanonical", e))?;
    Ok(Value::Bool(ip.to_string() == s))
}

/// IP methods by name: `family`, `isUnspecified`, `isLoopback`,
/// `isLinkLocalMulticast`, `isLinkLocalUnicast`, `isGlobalUnicast`.
pub fn ip_method(name: &'static str) -> impl Fn(&[Value]) -> Result<Value, ExecutionError> {
    move |a| {
        let Ip(ip) = opaque::<Ip>(name, a.first())?;
        Ok(match name {
            "family" => Value::Int(if ip.is_ipv4() { 4 } else { 6 }),
            "isUnspecified" => Value::Bool(ip.is_unspecified()),
            "isLoopback" => Value::Bool(ip.is_loopback()),
            "isLinkLocalMulticast" => Value::Bool(match ip {
                IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
                IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
            }),
            "isLinkLocalUnicast" => Value::Bool(match ip {
                IpAddr::V4(v4) => v4.is_link_local(),
                IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
            }),
            _ => Value::Bool(match ip {
                IpAddr::V4(v4) => {
                    !(v4.is_unspecified()
                        || v4.is_loopback()
                        || v4.is_multicast()
                        || v4.is_link_local()
                        || v4.is_broadcast())
                }
                IpAddr::V6(v6) => {
                    !(v6.is_unspecified()
                        || v6.is_loopback()
                        || v6.is_multicast()
                        || v6.segments()[0] & 0xffc0 == 0xfe80)
                }
            }),
        })
    }
}

/// `cidr(string)`.
pub fn cidr(a: &[Value]) -> Result<Value, ExecutionError> {
    parse_cidr(string_arg("cidr", a, 0)?)
        .map(wrap)
        .map_err(|e| err("cidr", e))
}

/// `isCIDR(string)`.
pub fn is_cidr(a: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse_cidr(string_arg("isCIDR", a, 0)?).is_ok()))
}

/// `cidr.containsIP(ip | string)`.
pub fn cidr_contains_ip(a: &[Value]) -> Result<Value, ExecutionError> {
    let c = opaque::<Cidr>("containsIP", a.first())?;
    let ip = match a.get(1) {
        Some(Value::String(s)) => parse_ip(s).map_err(|e| err("containsIP", e))?,
        other => opaque::<Ip>("containsIP", other)?.0,
    };
    Ok(Value::Bool(contains(c, ip)))
}

/// `cidr.containsCIDR(cidr | string)`.
pub fn cidr_contains_cidr(a: &[Value]) -> Result<Value, ExecutionError> {
    let c = opaque::<Cidr>("containsCIDR", a.first())?;
    let other = match a.get(1) {
        Some(Value::String(s)) => parse_cidr(s).map_err(|e| err("containsCIDR", e))?,
        other => opaque::<Cidr>("containsCIDR", other)?.clone(),
    };
    Ok(Value::Bool(
        other.prefix >= c.prefix && contains(c, other.addr),
    ))
}

/// `cidr.ip()`, `cidr.masked()`, `cidr.prefixLength()`.
pub fn cidr_method(name: &'static str) -> impl Fn(&[Value]) -> Result<Value, ExecutionError> {
    move |a| {
        let c = opaque::<Cidr>(name, a.first())?;
        Ok(match name {
            "ip" => wrap(Ip(c.addr)),
            "masked" => wrap(Cidr {
                addr: masked(c.addr, c.prefix),
                prefix: c.prefix,
            }),
            _ => Value::Int(i64::from(c.prefix)),
        })
    }
}

fn parse_semver(s: &str) -> Result<Semver, String> {
    let bad = || format!("invalid semver {s:?}");
    let core_pre = s.split_once('+').map_or(s, |(c, _)| c);
    let (core, pre) = match core_pre.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core_pre, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    let [major, minor, patch] = nums.as_slice() else {
        return Err(bad());
    };
    let num = |t: &str| -> Result<u64, String> {
        if t.is_empty()
            || (t.len() > 1 && t.starts_with('0'))
            || !t.chars().all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    let pre: Vec<String> = match pre {
        Some(p) => {
            let ids: Vec<String> = p.split('.').map(str::to_owned).collect();
            if ids
                .iter()
                .any(|i| i.is_empty() || !i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                return Err(bad());
            }
            ids
        }
        None => Vec::new(),
    };
    Ok(Semver {
        major: num(major)?,
        minor: num(minor)?,
        patch: num(patch)?,
        pre,
        text: s.to_owned(),
    })
}

fn semver_cmp(a: &Semver, b: &Semver) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (x, y) in a.pre.iter().zip(&b.pre) {
                    let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                        (Ok(p), Ok(q)) => p.cmp(&q),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => x.cmp(y),
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.pre.len().cmp(&b.pre.len())
            }
        })
}

/// `semver(string)`.
pub fn semver(a: &[Value]) -> Result<Value, ExecutionError> {
    parse_semver(string_arg("semver", a, 0)?)
        .map(wrap)
        .map_err(|e| err("semver", e))
}

/// `isSemver(string)`.
pub fn is_semver(a: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(
        parse_semver(string_arg("isSemver", a, 0)?).is_ok(),
    ))
}

/// Semver methods: `major`, `minor`, `patch`, `isGreaterThan`, `isLessThan`, `compareTo`.
pub fn semver_method(name: &'static str) -> impl Fn(&[Value]) -> Result<Value, ExecutionError> {
    move |a| {
        let v = opaque::<Semver>(name, a.first())?;
        let other = || opaque::<Semver>(name, a.get(1));
        Ok(match name {
            "major" => Value::Int(v.major as i64),
            "minor" => Value::Int(v.minor as i64),
            "patch" => Value::Int(v.patch as i64),
            "isGreaterThan" => Value::Bool(semver_cmp(v, other()?) == Ordering::Greater),
            "isLessThan" => Value::Bool(semver_cmp(v, other()?) == Ordering::Less),
            _ => Value::Int(match semver_cmp(v, other()?) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_containment_and_masking() {
        let c = parse_cidr("10.0.0.0/8").unwrap();
        assert!(contains(&c, "10.1.2.3".parse().unwrap()));
        assert!(!contains(&c, "11.0.0.1".parse().unwrap()));
        assert!(!contains(&c, "::1".parse().unwrap()));
        assert_eq!(
            masked("192.168.1.77".parse().unwrap(), 24).to_string(),
            "192.168.1.0"
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0.0").is_err());
        assert!(parse_ip("::ffff:1.2.3.4").is_err());
    }

    #[test]
    fn semver_ordering_follows_the_spec() {
        let v = |s: &str| parse_semver(s).unwrap();
        assert_eq!(semver_cmp(&v("1.2.3"), &v("1.10.0")), Ordering::Less);
        assert_eq!(semver_cmp(&v("1.0.0-alpha"), &v("1.0.0")), Ordering::Less);
        assert_eq!(
            semver_cmp(&v("1.0.0-alpha.1"), &v("1.0.0-alpha.beta")),
            Ordering::Less
        );
        assert_eq!(semver_cmp(&v("1.0.0+build"), &v("1.0.0")), Ordering::Equal);
        for bad in ["1.2", "01.2.3", "1.2.3-", "v1.2.3", "1.2.x"] {
            assert!(parse_semver(bad).is_err(), "{bad}");
        }
    }
}

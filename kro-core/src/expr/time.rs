//! kro's `time.now()`: the evaluation's fixed instant, given by the caller
//! (kro-core reads no clock), and Kubernetes object timestamps
//! (`metadata.creationTimestamp`, `deletionTimestamp`) as CEL timestamps so
//! `time.now() - schema.metadata.creationTimestamp > duration("5m")` works as
//! upstream. Unlike upstream, comparisons do not compute when they will flip:
//! a time gate is re-evaluated on the next reconcile.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cel::common::types::CelTimestamp;
use cel::common::value::Val;
use cel::objects::Opaque;
use cel::{ExecutionError, Value};
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde_json::Value as Json;

/// The variable holding the time library handle.
pub const TIME_VAR: &str = "time";
/// CEL type name of the `time` handle.
pub const TIME_TYPE: &str = "kro.Time";

/// The `time` handle: `time.now()` reads the instant it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeHandle {
    now: DateTime<FixedOffset>,
}

impl Opaque for TimeHandle {
    fn runtime_type_name(&self) -> &str {
        TIME_TYPE
    }
}

impl TimeHandle {
    /// A handle whose `now()` is `at`.
    pub fn at(at: SystemTime) -> Self {
        let (secs, nanos) = match at.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => (-(e.duration().as_secs() as i64), 0),
        };
        let now = Utc
            .timestamp_opt(secs, nanos)
            .single()
            .unwrap_or_default()
            .fixed_offset();
        Self { now }
    }

    /// The handle as an interpreter value.
    pub fn to_val(&self) -> Box<dyn Val> {
        Box::<dyn Val>::try_from(Value::Opaque(Arc::new(self.clone())))
            .unwrap_or_else(|_| Box::new(cel::common::types::CelNull))
    }
}

/// `time.now()`.
pub fn now(a: &[Value]) -> Result<Value, ExecutionError> {
    match a {
        [Value::Opaque(o)] => o
            .downcast_ref::<TimeHandle>()
            .map(|t| Value::Timestamp(t.now))
            .ok_or_else(|| ExecutionError::function_error("now", "expected the time handle")),
        _ => Err(ExecutionError::function_error(
            "now",
            "call it as time.now()",
        )),
    }
}

/// `sha256(string)`: the hex SHA-256 digest (kro's older unprefixed helper).
pub fn sha256_hex(a: &[Value]) -> Result<Value, ExecutionError> {
    use sha2::{Digest, Sha256};
    match a {
        [Value::String(s)] => {
            let digest = Sha256::digest(s.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            Ok(Value::String(Arc::new(hex)))
        }
        _ => Err(ExecutionError::function_error(
            "sha256",
            "expected a string",
        )),
    }
}

/// A Kubernetes object's timestamp field as a CEL timestamp, when it parses.
pub fn object_timestamp(v: &Json) -> Option<Box<dyn Val>> {
    let s = v.as_str()?;
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    Some(Box::new(CelTimestamp::from(t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn handle_reads_the_given_instant() {
        let h = TimeHandle::at(UNIX_EPOCH + Duration::from_secs(86_400));
        let v = now(&[Value::Opaque(Arc::new(h))]).unwrap();
        let Value::Timestamp(t) = v else {
            panic!("{v:?}")
        };
        assert_eq!(t.to_rfc3339(), "1970-01-02T00:00:00+00:00");
        assert!(object_timestamp(&Json::String("2024-05-01T10:00:00Z".into())).is_some());
        assert!(object_timestamp(&Json::String("yesterday".into())).is_none());
    }
}

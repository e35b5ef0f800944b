//! Core `v1` Events and `events.k8s.io/v1` Events are one resource.
//!
//! The real server stores every Event once, in the core form, and converts on the way in
//! and out (the events API group's conversion functions): `note` is `message`, `regarding`
//! is `involvedObject`, `reportingController` is `reportingComponent`, the `deprecated*`
//! fields are the core `source`, `firstTimestamp`, `lastTimestamp` and `count`; `eventTime`,
//! `series`, `action`, `reason`, `related`, `type` and `reportingInstance` keep their names.
//! The result is serialized as Go serializes the target version's struct, so zero values
//! the struct always writes (`null` times, `{}` structs, `""` strings) appear here too.

use serde_json::{Map, Value, json};

use crate::catalog::ResourceDef;
use crate::storage::ResourceKey;

/// `apiVersion` of the events API group's Events.
pub const EVENTS_V1: &str = "events.k8s.io/v1";

/// Where every Event is stored: the core resource.
pub fn storage_key() -> ResourceKey {
    (String::new(), "events".to_owned())
}

/// Whether `def` is the events API group's Event, served from core storage.
pub fn is_events_v1(def: &ResourceDef) -> bool {
    def.custom.is_none() && def.group == "events.k8s.io" && def.plural == "events"
}

/// How a field is written when Go serializes its zero value.
#[derive(Clone, Copy)]
enum Zero {
    /// `omitempty` on a string, number or pointer: left out.
    Omit,
    /// A time without `omitempty` effect: `null`.
    Null,
    /// A struct: `{}`.
    Empty,
    /// A string without `omitempty`: `""`.
    Blank,
}

/// Core `v1` Event fields in Go struct order, with their events-group names.
const CORE: &[(&str, &str, Zero)] = &[
    ("involvedObject", "regarding", Zero::Empty),
    ("reason", "reason", Zero::Omit),
    ("message", "note", Zero::Omit),
    ("source", "deprecatedSource", Zero::Empty),
    ("firstTimestamp", "deprecatedFirstTimestamp", Zero::Null),
    ("lastTimestamp", "deprecatedLastTimestamp", Zero::Null),
    ("count", "deprecatedCount", Zero::Omit),
    ("type", "type", Zero::Omit),
    ("eventTime", "eventTime", Zero::Null),
    ("series", "series", Zero::Omit),
    ("action", "action", Zero::Omit),
    ("related", "related", Zero::Omit),
    ("reportingComponent", "reportingController", Zero::Blank),
    ("reportingInstance", "reportingInstance", Zero::Blank),
];

/// `events.k8s.io/v1` Event fields in Go struct order, with their core names.
const EVENTS: &[(&str, &str, Zero)] = &[
    ("eventTime", "eventTime", Zero::Null),
    ("series", "series", Zero::Omit),
    ("reportingController", "reportingComponent", Zero::Omit),
    ("reportingInstance", "reportingInstance", Zero::Omit),
    ("action", "action", Zero::Omit),
    ("reason", "reason", Zero::Omit),
    ("regarding", "involvedObject", Zero::Empty),
    ("related", "related", Zero::Omit),
    ("note", "message", Zero::Omit),
    ("type", "type", Zero::Omit),
    ("deprecatedSource", "source", Zero::Empty),
    ("deprecatedFirstTimestamp", "firstTimestamp", Zero::Null),
    ("deprecatedLastTimestamp", "lastTimestamp", Zero::Null),
    ("deprecatedCount", "count", Zero::Omit),
];

/// Whether Go's `omitempty` leaves the value out.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// Rebuilds `obj` with `fields` (target name, source name, zero rule) taken from it.
fn convert(obj: Value, api_version: &str, fields: &[(&str, &str, Zero)]) -> Value {
    let Value::Object(mut src) = obj else {
        return obj;
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!("Event"));
    out.insert("apiVersion".into(), json!(api_version));
    if let Some(m) = src.shift_remove("metadata") {
        out.insert("metadata".into(), m);
    }
    src.shift_remove("kind");
    src.shift_remove("apiVersion");
    for (to, from, zero) in fields {
        let v = src.shift_remove(*from).unwrap_or(Value::Null);
        let v = match (zero, v) {
            (Zero::Omit, v) if is_empty(&v) => continue,
            (Zero::Empty, Value::Null) => json!({}),
            (Zero::Blank, Value::Null) => json!(""),
            (_, v) => v,
        };
        out.insert((*to).to_owned(), v);
    }
    // Nothing else survives pruning; anything left is kept rather than lost.
    out.append(&mut src);
    Value::Object(out)
}

/// A core Event as the events API group serves it (no change when it already is one).
pub fn to_events_v1(obj: Value) -> Value {
    if obj.get("apiVersion").and_then(Value::as_str) == Some(EVENTS_V1) {
        return obj;
    }
    convert(obj, EVENTS_V1, EVENTS)
}

/// An events API group Event in the core form it is stored in (no change for a core one).
pub fn to_core(obj: Value) -> Value {
    if obj.get("apiVersion").and_then(Value::as_str) != Some(EVENTS_V1) {
        return obj;
    }
    convert(obj, "v1", CORE)
}

/// The core selectable field an events API group field label stands for (its field label
/// conversion); `None` for labels the group does not support.
pub fn core_field_label(label: &str) -> Option<&'static str> {
    Some(match label {
        "metadata.name" => "metadata.name",
        "metadata.namespace" => "metadata.namespace",
        "reason" => "reason",
        "type" => "type",
        "source" => "source",
        "reportingController" => "reportingComponent",
        "regarding.kind" => "involvedObject.kind",
        "regarding.namespace" => "involvedObject.namespace",
        "regarding.name" => "involvedObject.name",
        "regarding.uid" => "involvedObject.uid",
        "regarding.apiVersion" => "involvedObject.apiVersion",
        "regarding.resourceVersion" => "involvedObject.resourceVersion",
        "regarding.fieldPath" => "involvedObject.fieldPath",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_style() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.2", "namespace": "ns"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "kro.run/hub", "reportingInstance": "hub-a",
            "action": "Apply", "reason": "Applied",
            "regarding": {"kind": "Service", "name": "web", "namespace": "ns", "apiVersion": "v1"},
            "note": "resource applied", "type": "Normal",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"}
        })
    }

    #[test]
    fn events_group_event_is_stored_as_a_core_event() {
        let core = to_core(new_style());
        assert_eq!(
            core,
            json!({
                "kind": "Event", "apiVersion": "v1",
                "metadata": {"name": "web.2", "namespace": "ns"},
                "involvedObject": {"kind": "Service", "name": "web", "namespace": "ns", "apiVersion": "v1"},
                "reason": "Applied", "message": "resource applied", "source": {},
                "firstTimestamp": null, "lastTimestamp": null, "type": "Normal",
                "eventTime": "2026-01-01T00:00:00.000000Z",
                "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
                "action": "Apply", "reportingComponent": "kro.run/hub",
                "reportingInstance": "hub-a"
            })
        );
        // And back, unchanged but for the zero values Go writes.
        let mut back = new_style();
        back["deprecatedSource"] = json!({});
        back["deprecatedFirstTimestamp"] = Value::Null;
        back["deprecatedLastTimestamp"] = Value::Null;
        assert_eq!(to_events_v1(core), back);
    }

    #[test]
    fn core_event_is_served_by_the_events_group() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"},
            "involvedObject": {"kind": "Service", "name": "web"}, "reason": "Applied",
            "message": "m", "source": {"component": "kro-hub", "host": "h"}, "count": 3,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:02Z",
            "eventTime": null, "reportingComponent": "", "reportingInstance": ""
        });
        let v1 = to_events_v1(core);
        assert_eq!(v1["note"], "m");
        assert_eq!(v1["regarding"]["name"], "web");
        assert_eq!(v1["deprecatedSource"]["component"], "kro-hub");
        assert_eq!(v1["deprecatedCount"], 3);
        assert_eq!(v1["deprecatedLastTimestamp"], "2026-01-01T00:00:02Z");
        assert!(
            v1.get("reportingController").is_none(),
            "empty strings are omitted"
        );
        assert_eq!(v1["eventTime"], Value::Null);
        assert!(v1.get("message").is_none() && v1.get("count").is_none());
    }

    #[test]
    fn conversions_are_idempotent() {
        let v1 = to_events_v1(to_core(new_style()));
        assert_eq!(to_events_v1(v1.clone()), v1);
        let core = to_core(v1);
        assert_eq!(to_core(core.clone()), core);
    }

    #[test]
    fn field_labels_map_to_core_fields() {
        assert_eq!(
            core_field_label("regarding.name"),
            Some("involvedObject.name")
        );
        assert_eq!(
            core_field_label("reportingController"),
            Some("reportingComponent")
        );
        assert_eq!(core_field_label("note"), None);
    }
}

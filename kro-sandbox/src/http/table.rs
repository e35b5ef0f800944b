//! `meta.k8s.io/v1` Table answers (what `kubectl get` asks for), with printer columns.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::negotiate::IncludeObject;
use crate::catalog::ResourceDef;
use crate::ids::parse_rfc3339;

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn age_column() -> Value {
    json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": AGE_DESCRIPTION})
}

/// A column computed from the object, as the built-in table printers do.
fn computed(name: &str, ty: &str, id: &str) -> Value {
    json!({"name": name, "type": ty, "x-computed": id, "description": name})
}

/// A wide column (`priority` 1: shown by `kubectl get -o wide`).
fn wide(name: &str, id: &str) -> Value {
    json!({"name": name, "type": "string", "x-computed": id, "description": name, "priority": 1})
}

/// The wide columns after Age: the workload printers' Containers, Images and Selector.
fn wide_columns(def: &ResourceDef) -> Vec<Value> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => vec![
            wide("Containers", "containers"),
            wide("Images", "images"),
            wide("Selector", "selector"),
        ],
        _ => vec![],
    }
}

/// A label selector as `kubectl` and the printers write it (`app=web,tier in (a,b)`).
fn format_selector(sel: &Value) -> String {
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match e.get("operator").and_then(Value::as_str) {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("DoesNotExist") => format!("!{key}"),
            _ => key.to_owned(),
        });
    }
    parts.sort();
    if parts.is_empty() {
        "<none>".to_owned()
    } else {
        parts.join(",")
    }
}

fn builtin_columns(def: &ResourceDef) -> Vec<Value> {
    let cols = match (def.group.as_str(), def.plural.as_str()) {
        ("apps", "deployments") => vec![
            computed("Ready", "string", "ready"),
            computed("Up-to-date", "integer", "updated"),
            computed("Available", "integer", "available"),
        ],
        ("apps", "statefulsets") => vec![computed("Ready", "string", "ready")],
        ("apps", "replicasets") => vec![
            computed("Desired", "integer", "desired"),
            computed("Current", "integer", "current"),
            computed("Ready", "integer", "readyCount"),
        ],
        ("", "pods") => vec![
            computed("Ready", "string", "podReady"),
            computed("Status", "string", "phase"),
            computed("Restarts", "string", "restarts"),
        ],
        ("", "services") => vec![
            computed("Type", "string", "svcType"),
            computed("Cluster-IP", "string", "clusterIP"),
            computed("External-IP", "string", "externalIP"),
            computed("Port(s)", "string", "ports"),
        ],
        ("", "configmaps") => vec![computed("Data", "integer", "dataCount")],
        ("", "secrets") => vec![
            computed("Type", "string", "secretType"),
            computed("Data", "integer", "dataCount"),
        ],
        ("", "namespaces") | ("", "persistentvolumeclaims") => {
            vec![computed("Status", "string", "phase")]
        }
        ("batch", "jobs") => vec![
            computed("Status", "string", "jobStatus"),
            computed("Completions", "string", "completions"),
        ],
        _ => vec![],
    };
    cols.into_iter()
        .chain(std::iter::once(age_column()))
        .chain(wide_columns(def))
        .collect()
}

fn compute(id: &str, o: &Value) -> Value {
    let n = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let s = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match id {
        "ready" => json!(format!(
            "{}/{}",
            n("/status/readyReplicas"),
            o.pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        )),
        "updated" => json!(n("/status/updatedReplicas")),
        "available" => json!(n("/status/availableReplicas")),
        "desired" => json!(n("/spec/replicas")),
        "current" => json!(n("/status/replicas")),
        "readyCount" => json!(n("/status/readyReplicas")),
        "podReady" => {
            let total = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = if s("/status/phase") == "Running" {
                total
            } else {
                0
            };
            json!(format!("{ready}/{total}"))
        }
        "containers" | "images" => {
            let key = if id == "containers" { "name" } else { "image" };
            let values: Vec<&str> = o
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c.get(key).and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            json!(values.join(","))
        }
        "selector" => json!(
            o.get("spec")
                .and_then(|s| s.get("selector"))
                .map_or_else(|| "<none>".to_owned(), format_selector)
        ),
        "phase" => json!(s("/status/phase")),
        "restarts" => json!("0"),
        "svcType" => json!(s("/spec/type")),
        "clusterIP" => json!(s("/spec/clusterIP")),
        "externalIP" => {
            let ips: Vec<String> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.get("ip").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            json!(if ips.is_empty() {
                "<none>".to_owned()
            } else {
                ips.join(",")
            })
        }
        "ports" => {
            let ports: Vec<String> = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                            match p.get("nodePort").and_then(Value::as_i64) {
                                Some(np) => format!("{port}:{np}/{proto}"),
                                None => format!("{port}/{proto}"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!(if ports.is_empty() {
                "<none>".to_owned()
            } else {
                ports.join(",")
            })
        }
        "dataCount" => {
            let count = |p: &str| {
                o.pointer(p)
                    .and_then(Value::as_object)
                    .map_or(0, serde_json::Map::len)
            };
            json!(count("/data") + count("/binaryData"))
        }
        "secretType" => json!(s("/type")),
        "jobStatus" => {
            let done = o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.get("type") == Some(&json!("Complete"))
                            && c.get("status") == Some(&json!("True"))
                    })
                });
            json!(if done { "Complete" } else { "Running" })
        }
        "completions" => json!(format!(
            "{}/{}",
            n("/status/succeeded"),
            o.pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        )),
        _ => Value::Null,
    }
}

fn columns(def: &ResourceDef) -> Vec<Value> {
    let printer = def
        .custom
        .as_ref()
        .map(|c| c.printer_columns.clone())
        .unwrap_or_default();
    if def.custom.is_none() {
        return builtin_columns(def);
    }
    if printer.is_empty() {
        return vec![age_column()];
    }
    printer
}

/// Renders objects as a Table with the resource's columns; `headers` false leaves out the
/// column definitions (watch events after the first).
pub fn render(
    def: &ResourceDef,
    objs: &[Value],
    cont: Option<&str>,
    rv: u64,
    include: IncludeObject,
    headers: bool,
) -> Value {
    let cols = columns(def);
    let event = is_event(def);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}),
    ];
    for c in &cols {
        let path = c
            .get("jsonPath")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let description = c.get("description").and_then(Value::as_str).map_or_else(
            || format!("Custom resource definition column (in JSONPath format): {path}"),
            str::to_owned,
        );
        defs.push(json!({
            "name": c.get("name").cloned().unwrap_or(json!("")),
            "type": c.get("type").cloned().unwrap_or(json!("string")),
            "format": c.get("format").cloned().unwrap_or(json!("")),
            "description": description,
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    if event {
        defs = event_column_defs();
    }
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut cells = if event {
                event_cells(o)
            } else {
                vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)]
            };
            for c in cols.iter().filter(|_| !event) {
                let path = c.get("jsonPath").and_then(Value::as_str).unwrap_or_default();
                let v = match c.get("x-computed").and_then(Value::as_str) {
                    Some(id) => compute(id, o),
                    None => eval_path(o, path).unwrap_or(Value::Null),
                };
                let ty = c.get("type").and_then(Value::as_str).unwrap_or("string");
                cells.push(if ty == "date" { age_cell(&v) } else { v });
            }
            let meta = o.get("metadata").cloned().unwrap_or_else(|| json!({}));
            match include {
                IncludeObject::Metadata => json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}}),
                IncludeObject::Object => json!({"cells": cells, "object": o}),
                IncludeObject::None => json!({"cells": cells}),
            }
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    let defs = if headers { json!(defs) } else { Value::Null };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows})
}

/// Both Event APIs print the same columns, from the stored core form, as the real
/// server's Event printer does (no leading Name: it is a wide column at the end).
fn is_event(def: &ResourceDef) -> bool {
    def.custom.is_none()
        && def.plural == "events"
        && matches!(def.group.as_str(), "" | "events.k8s.io")
}

fn event_column_defs() -> Vec<Value> {
    let col = |name: &str, priority: u8, description: &str| json!({"name": name, "type": "string", "format": "", "description": description, "priority": priority});
    let mut defs = vec![
        col(
            "Last Seen",
            0,
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        col(
            "Type",
            0,
            "Type of this event (Normal, Warning), new types could be added in the future",
        ),
        col(
            "Reason",
            0,
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        col("Object", 0, "The object that this event is about."),
        col(
            "Subobject",
            1,
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
        ),
        col(
            "Source",
            1,
            "The component reporting this event. Should be a short machine understandable string.",
        ),
        col(
            "Message",
            0,
            "A human-readable description of the status of this operation.",
        ),
        col(
            "First Seen",
            1,
            "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        ),
        col("Count", 1, "The number of times this event has occurred."),
    ];
    defs.push(json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 1}));
    defs
}

/// An Event's cells: times fall back from the deprecated timestamps to `eventTime`, and a
/// series gives the last time and count, as the Event printer does.
fn event_cells(o: &Value) -> Vec<Value> {
    let core = crate::registry::events::to_core(o.clone());
    let s = |p: &str| {
        core.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let since = |p: &str| {
        core.pointer(p)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(|t| age_cell(&json!(t)))
    };
    let first = since("/firstTimestamp")
        .or_else(|| since("/eventTime"))
        .unwrap_or_else(|| json!("<unknown>"));
    let mut last = since("/lastTimestamp").unwrap_or_else(|| first.clone());
    let mut count = core.get("count").and_then(Value::as_i64).unwrap_or(0);
    if core.get("series").is_some_and(Value::is_object) {
        last = since("/series/lastObservedTime").unwrap_or_else(|| json!("<unknown>"));
        count = core
            .pointer("/series/count")
            .and_then(Value::as_i64)
            .unwrap_or(0);
    } else if count == 0 {
        // Singleton events of the events API carry no count.
        count = 1;
    }
    let kind = s("/involvedObject/kind").to_lowercase();
    let name = s("/involvedObject/name");
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let (mut component, mut host) = (s("/source/component"), s("/source/host"));
    let source = if component.is_empty()
        && host.is_empty()
        && s("/reportingComponent").is_empty()
        && s("/reportingInstance").is_empty()
    {
        "<unknown>".to_owned()
    } else {
        if component.is_empty() {
            component = s("/reportingComponent");
        }
        if host.is_empty() {
            host = s("/reportingInstance");
        }
        if host.is_empty() {
            component
        } else {
            format!("{component}, {host}")
        }
    };
    vec![
        last,
        json!(s("/type")),
        json!(s("/reason")),
        json!(target),
        json!(s("/involvedObject/fieldPath")),
        json!(source),
        json!(s("/message").trim()),
        first,
        json!(count),
        json!(s("/metadata/name")),
    ]
}

fn age_cell(v: &Value) -> Value {
    let Some(t) = v.as_str().and_then(parse_rfc3339) else {
        return json!("<unknown>");
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(t);
    json!(human_duration(now.saturating_sub(t)))
}

/// Kubernetes' short human duration (`5s`, `3m20s`, `2d5h`).
pub fn human_duration(secs: u64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs.is_multiple_of(60) {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m.is_multiple_of(60) {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h.is_multiple_of(24) {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

/// Evaluates the simple JSONPath forms printer columns use: `.a.b`, `.a[0].b`,
/// `.a[?(@.type=="Ready")].status`.
pub fn eval_path(obj: &Value, path: &str) -> Option<Value> {
    let mut cur = obj.clone();
    let mut rest = path
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?.clone();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Ok(i) = inner.parse::<usize>() {
                cur = cur.get(i)?.clone();
            } else if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (k, v) = f.split_once("==")?;
                let want = v.trim().trim_matches(|c| c == '"' || c == '\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|e| e.get(k.trim()).and_then(Value::as_str) == Some(want))?
                    .clone();
            } else {
                return None;
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_of_printer_columns() {
        let o = json!({"spec": {"color": "red"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(eval_path(&o, ".spec.color"), Some(json!("red")));
        assert_eq!(
            eval_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(
            eval_path(&o, ".status.conditions[0].type"),
            Some(json!("Ready"))
        );
        assert_eq!(eval_path(&o, ".spec.missing"), None);
    }

    #[test]
    fn builtin_tables_have_kubectl_columns() {
        let def = crate::catalog::Catalog::builtin()
            .get("apps", "v1", "deployments")
            .unwrap();
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"replicas": 3}, "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let t = render(&def, &[d], None, 7, IncludeObject::Metadata, true);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(t["columnDefinitions"][5]["priority"], 1);
        assert_eq!(t["rows"][0]["cells"][1], "2/3");
    }

    #[test]
    fn events_print_the_event_columns_from_either_api() {
        let cat = crate::catalog::Catalog::builtin();
        let def = cat.get("events.k8s.io", "v1", "events").expect("events");
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "w.1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "kro.run/hub", "reportingInstance": "hub-a",
            "reason": "Applied", "type": "Normal", "note": " applied ",
            "regarding": {"kind": "Widget", "name": "w"}});
        let t = render(&def, &[ev], None, 1, IncludeObject::None, true);
        assert_eq!(t["columnDefinitions"][0]["name"], "Last Seen");
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[3], "widget/w");
        assert_eq!(cells[5], "kro.run/hub, hub-a");
        assert_eq!(cells[6], "applied");
        assert_eq!(cells[8], 1);
        assert_eq!(cells[9], "w.1");
    }

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(3 * 86_400 + 3600), "3d1h");
    }
}

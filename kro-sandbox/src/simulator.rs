//! The workload simulator (like kwok): workloads report ready after a delay, PVCs bind and
//! Jobs complete, so `readyWhen` conditions can be tested without a kubelet.
//!
//! It plays the controllers a bare API server lacks, writing `status` the way they do (as
//! `kube-controller-manager` through the status subresource).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::catalog::ResourceDef;
use crate::ids;
use crate::meta::{self, meta_mut};
use crate::registry::fields;
use crate::state::Shared;
use crate::storage::{EventType, ObjectKey, ResourceKey};

/// The resources the simulator drives.
const DRIVEN: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "replicasets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("", "persistentvolumeclaims"),
    ("", "services"),
    ("", "pods"),
];

type Pending = HashMap<(ResourceKey, ObjectKey), (String, Instant)>;

/// Runs until the sandbox goes away.
pub async fn run(sh: Weak<Shared>) {
    let mut pending: Pending = HashMap::new();
    loop {
        let Some(strong) = sh.upgrade() else { return };
        let delay = strong.opts.simulator_delay;
        let tick = (delay / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        pass(&strong, delay, &mut pending);
        // The sandbox aborts this task when it stops, so holding the state while waiting is fine.
        tokio::select! {
            () = strong.changed.notified() => {}
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// One scan: objects whose status lags their spec get it after `delay`.
fn pass(sh: &Arc<Shared>, delay: Duration, pending: &mut Pending) {
    let defs: Vec<Arc<ResourceDef>> = {
        let cat = sh.catalog();
        DRIVEN
            .iter()
            .filter_map(|(g, p)| cat.get(g, "v1", p))
            .collect()
    };
    let mut data = sh.data();
    let now = Instant::now();
    let mut seen = Vec::new();
    for def in &defs {
        let res: ResourceKey = (def.group.clone(), def.plural.clone());
        let objs: Vec<(ObjectKey, Arc<str>)> = data
            .list(&res, None)
            .map(|(k, s)| (k.clone(), s.json.clone()))
            .collect();
        for (key, text) in objs {
            let Ok(obj) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if meta::is_deleting(&obj) {
                continue;
            }
            let Some(status) = desired_status(def, &obj) else {
                continue;
            };
            if obj.get("status") == Some(&status) {
                continue;
            }
            // The clock starts when the object was first seen needing work, per generation.
            let generation = obj
                .pointer("/metadata/generation")
                .map(Value::to_string)
                .unwrap_or_default();
            let id = (res.clone(), key.clone());
            seen.push(id.clone());
            let entry = pending
                .entry(id)
                .or_insert_with(|| (generation.clone(), now));
            if entry.0 != generation {
                *entry = (generation, now);
            }
            if now.duration_since(entry.1) < delay {
                continue;
            }
            let mut new = obj.clone();
            new["status"] = status;
            let stamp = ids::now_rfc3339();
            fields::record(
                def,
                Some(&obj),
                &mut new,
                "kube-controller-manager",
                Some("status"),
                &stamp,
            );
            let rv = data.next_rv();
            meta_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
            meta::canonical_order(&mut new);
            data.put(
                &res,
                key,
                rv,
                Arc::from(serde_json::to_string(&new).unwrap_or_default()),
                EventType::Modified,
            );
        }
    }
    pending.retain(|k, _| seen.contains(k));
}

fn int(obj: &Value, ptr: &str, default: i64) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(default)
}

/// Keeps a condition's transition time when its status did not change.
fn condition(
    obj: &Value,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    with_update: bool,
) -> Value {
    let old = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c.get("type") == Some(&json!(ty))));
    let now = ids::now_rfc3339();
    let transition = match old {
        Some(c) if c.get("status") == Some(&json!(status)) => {
            c.get("lastTransitionTime").cloned().unwrap_or(json!(now))
        }
        _ => json!(now),
    };
    let mut c = json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": transition});
    if with_update {
        let update = match old {
            Some(o)
                if o.get("status") == Some(&json!(status))
                    && o.get("reason") == Some(&json!(reason)) =>
            {
                o.get("lastUpdateTime").cloned().unwrap_or(json!(now))
            }
            _ => json!(now),
        };
        c["lastUpdateTime"] = update;
    }
    c
}

/// The status a healthy controller would write, or `None` for objects it leaves alone.
fn desired_status(def: &ResourceDef, obj: &Value) -> Option<Value> {
    let generation = int(obj, "/metadata/generation", 1);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (def.group.as_str(), def.plural.as_str()) {
        ("apps", "deployments") => {
            let r = int(obj, "/spec/replicas", 1);
            let mut s = json!({"observedGeneration": generation, "replicas": r, "updatedReplicas": r,
            "readyReplicas": r, "availableReplicas": r,
            "conditions": [
                condition(obj, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", true),
                condition(obj, "Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet \"{name}\" has successfully progressed."), true),
            ]});
            if r == 0 {
                for k in [
                    "replicas",
                    "updatedReplicas",
                    "readyReplicas",
                    "availableReplicas",
                ] {
                    if let Value::Object(m) = &mut s {
                        m.shift_remove(k);
                    }
                }
            }
            Some(keep_times(obj, s))
        }
        ("apps", "statefulsets") => {
            let r = int(obj, "/spec/replicas", 1);
            Some(
                json!({"observedGeneration": generation, "replicas": r, "readyReplicas": r, "currentReplicas": r,
                "updatedReplicas": r, "availableReplicas": r, "collisionCount": 0,
                "currentRevision": format!("{name}-sim"), "updateRevision": format!("{name}-sim")}),
            )
        }
        ("apps", "replicasets") => {
            let r = int(obj, "/spec/replicas", 1);
            Some(
                json!({"observedGeneration": generation, "replicas": r, "fullyLabeledReplicas": r,
                "readyReplicas": r, "availableReplicas": r}),
            )
        }
        ("apps", "daemonsets") => Some(
            json!({"observedGeneration": generation, "currentNumberScheduled": 1,
            "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1, "numberAvailable": 1,
            "updatedNumberScheduled": 1}),
        ),
        ("batch", "jobs") => {
            if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                return None;
            }
            if obj.pointer("/status/completionTime").is_some() {
                return obj.get("status").cloned();
            }
            let completions = int(obj, "/spec/completions", 1);
            let now = ids::now_rfc3339();
            let start = obj
                .pointer("/status/startTime")
                .cloned()
                .unwrap_or(json!(now));
            Some(
                json!({"startTime": start, "completionTime": now, "succeeded": completions, "ready": 0,
                "terminating": 0, "uncountedTerminatedPods": {},
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                ]}),
            )
        }
        ("", "persistentvolumeclaims") => {
            let mut s = json!({"phase": "Bound"});
            if let Some(m) = obj.pointer("/spec/accessModes") {
                s["accessModes"] = m.clone();
            }
            if let Some(st) = obj.pointer("/spec/resources/requests/storage") {
                s["capacity"] = json!({"storage": st});
            }
            Some(s)
        }
        ("", "services") => {
            if obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") {
                Some(json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}}))
            } else {
                None
            }
        }
        ("", "pods") => {
            let conds: Vec<Value> = [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
            ]
            .iter()
            .map(|t| {
                let mut c = condition(obj, t, "True", "", "", false);
                if let Value::Object(m) = &mut c {
                    m.shift_remove("reason");
                    m.shift_remove("message");
                }
                c
            })
            .collect();
            Some(
                json!({"phase": "Running", "conditions": conds, "podIP": "10.244.0.10",
                "hostIP": "10.0.0.1", "qosClass": "BestEffort",
                "startTime": obj.pointer("/status/startTime").cloned().unwrap_or_else(|| json!(ids::now_rfc3339()))}),
            )
        }
        _ => None,
    }
}

/// Keeps the old condition timestamps when nothing else changed, so the status converges.
fn keep_times(obj: &Value, s: Value) -> Value {
    let Some(old) = obj.get("status") else {
        return s;
    };
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(Value::Array(cs)) = v.get_mut("conditions") {
            for c in cs {
                if let Value::Object(m) = c {
                    m.shift_remove("lastTransitionTime");
                    m.shift_remove("lastUpdateTime");
                }
            }
        }
        v
    };
    if strip(old) == strip(&s) {
        old.clone()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn deployments_become_available_with_their_replicas() {
        let def = Catalog::builtin().get("apps", "v1", "deployments").unwrap();
        let obj = json!({"metadata": {"name": "web", "generation": 3}, "spec": {"replicas": 2}});
        let s = desired_status(&def, &obj).unwrap();
        assert_eq!(s["readyReplicas"], 2);
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(s["conditions"][0]["type"], "Available");
        // Once written, the same status is desired again: the simulator converges.
        let mut done = obj.clone();
        done["status"] = s;
        assert_eq!(desired_status(&def, &done).as_ref(), done.get("status"));
    }
}

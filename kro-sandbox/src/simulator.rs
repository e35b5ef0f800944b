//! The workload simulator (like kwok): workloads report ready after a delay, PVCs bind and
//! Jobs complete, so `readyWhen` conditions can be tested without a kubelet.
//!
//! It plays the controllers a bare API server lacks, writing the way they do: `status`
//! through the registry's status subresource as `kube-controller-manager` (so versions,
//! `managedFields` and watch events are those of a real controller's writes), and the PVC
//! protection controller's release of deleted claims.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::catalog::ResourceDef;
use crate::ids;
use crate::meta::{self, meta_mut};
use crate::registry::{Request, WriteOptions, store};
use crate::state::Shared;
use crate::storage::{Event, EventType, ObjectKey, ResourceKey};
use tokio::sync::broadcast;

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

type Id = (ResourceKey, ObjectKey);
type Pending = HashMap<Id, (String, Instant)>;

/// What the simulator has left to look at. Like a controller fed by
/// informers, it looks at an object when a change to it arrives (or while
/// it waits out the delay), never at every object on every change: a burst
/// of N writes costs O(N), not O(N²).
#[derive(Debug, Default)]
struct Work {
    /// Objects changed since they were last looked at.
    dirty: HashSet<Id>,
    /// Objects waiting out the delay: the generation the clock started at,
    /// and when.
    pending: Pending,
    /// Claims being deleted: looked at on every pass until they are gone,
    /// since their release depends on the pods, not on their own changes.
    claims: HashSet<Id>,
    /// Every driven object is to be looked at: at the start, or after
    /// events were lost (the subscriber lagged).
    rescan: bool,
}

fn driven(res: &ResourceKey) -> bool {
    DRIVEN.iter().any(|(g, p)| res.0 == *g && res.1 == *p)
}

impl Work {
    fn note(&mut self, event: &Event) {
        if !driven(&event.resource) {
            return;
        }
        let id: Id = (
            event.resource.clone(),
            (event.namespace.clone(), event.name.clone()),
        );
        if event.kind == EventType::Deleted {
            self.dirty.remove(&id);
            self.pending.remove(&id);
            self.claims.remove(&id);
        } else {
            self.dirty.insert(id);
        }
    }

    /// Takes in every event that has arrived; `false` once the storage is gone.
    fn drain(&mut self, events: &mut broadcast::Receiver<Arc<Event>>) -> bool {
        loop {
            match events.try_recv() {
                Ok(e) => self.note(&e),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.rescan = true,
                Err(broadcast::error::TryRecvError::Empty) => return true,
                Err(broadcast::error::TryRecvError::Closed) => return false,
            }
        }
    }
}

/// Runs until the sandbox goes away.
pub async fn run(sh: Weak<Shared>) {
    // Subscribed before the first scan, so no change falls between the two.
    let Some(mut events) = sh.upgrade().map(|s| s.data_read().subscribe()) else {
        return;
    };
    let mut work = Work {
        rescan: true,
        ..Work::default()
    };
    loop {
        let Some(strong) = sh.upgrade() else { return };
        if !work.drain(&mut events) {
            return;
        }
        let delay = strong.opts.simulator_delay;
        pass(&strong, delay, &mut work);
        // Nothing waits out the delay: sleep until a change arrives.
        let tick = if work.pending.is_empty() && work.claims.is_empty() {
            Duration::from_secs(3600)
        } else {
            (delay / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
        };
        // The sandbox aborts this task when it stops, so holding the state while waiting is fine.
        tokio::select! {
            received = events.recv() => match received {
                Ok(e) => work.note(&e),
                Err(broadcast::error::RecvError::Lagged(_)) => work.rescan = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// The manager kube-controller-manager's writes are recorded under.
const MANAGER: &str = "kube-controller-manager";

/// The finalizer the `StorageObjectInUseProtection` admission puts on every claim.
const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

/// One pass over what changed: objects whose status lags their spec get it
/// after `delay`, written through the registry's status subresource as the
/// controllers write it; claims being deleted lose their protection once no
/// pod uses them.
fn pass(sh: &Arc<Shared>, delay: Duration, work: &mut Work) {
    let defs: Vec<Arc<ResourceDef>> = {
        let cat = sh.catalog();
        DRIVEN
            .iter()
            .filter_map(|(g, p)| cat.get(g, "v1", p))
            .collect()
    };
    if std::mem::take(&mut work.rescan) {
        let data = sh.data_read();
        for def in &defs {
            let res: ResourceKey = (def.group.clone(), def.plural.clone());
            work.dirty
                .extend(data.list(&res, None).map(|(k, _)| (res.clone(), k.clone())));
        }
    }
    // Waiting objects are looked at again until their delay is over.
    let mut ids: Vec<Id> = work.dirty.drain().collect();
    ids.extend(work.pending.keys().cloned());
    ids.extend(work.claims.iter().cloned());
    ids.sort();
    ids.dedup();
    // The objects are read first and written one by one after, each write a request of
    // its own that may lose to a concurrent one (its event brings it back).
    let snapshot: Vec<(Arc<ResourceDef>, Id, Arc<str>)> = {
        let data = sh.data_read();
        ids.into_iter()
            .filter_map(|id| {
                let def = defs
                    .iter()
                    .find(|d| d.group == id.0.0 && d.plural == id.0.1)?
                    .clone();
                let text = data.get(&id.0, &id.1)?.json.clone();
                Some((def, id, text))
            })
            .collect()
    };
    let now = Instant::now();
    let mut waiting = Pending::new();
    work.claims.clear();
    for (def, id, text) in snapshot {
        let key = &id.1;
        let Ok(obj) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if meta::is_deleting(&obj) {
            if def.group.is_empty() && def.plural == "persistentvolumeclaims" {
                release_claim(sh, &def, key, &obj);
                work.claims.insert(id);
            }
            continue;
        }
        let Some(status) = desired_status(&def, &obj) else {
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
        let started = match work.pending.remove(&id) {
            Some((g, at)) if g == generation => at,
            _ => now,
        };
        if now.duration_since(started) < delay {
            waiting.insert(id, (generation, started));
            continue;
        }
        let mut new = obj;
        new["status"] = status;
        write(sh, &def, key, Some("status"), new);
    }
    work.pending = waiting;
}

/// An update as the controller sends it: the object read, at its resourceVersion.
fn write(sh: &Arc<Shared>, def: &Arc<ResourceDef>, key: &ObjectKey, sub: Option<&str>, obj: Value) {
    let req = Request {
        sh,
        def: def.clone(),
        ns: key.0.clone(),
        name: key.1.clone(),
        sub: sub.map(str::to_owned),
    };
    let opts = WriteOptions {
        field_manager: MANAGER.to_owned(),
        explicit_manager: true,
        ..WriteOptions::default()
    };
    if let Err(e) = store::update(&req, obj, &opts) {
        // A conflict or a vanished object is the next pass's business.
        tracing::debug!(resource = %def.plural, name = %key.1, error = %e, "simulated controller write refused");
    }
}

/// The PVC protection controller: a claim being deleted keeps its finalizer while a pod
/// that runs uses it. The real controller counts scheduled pods; the simulator schedules
/// nothing but runs every pod, so a pod counts unless it has finished.
fn release_claim(sh: &Arc<Shared>, def: &Arc<ResourceDef>, key: &ObjectKey, claim: &Value) {
    let fins = meta::finalizers(claim);
    if !fins.iter().any(|f| f == PVC_PROTECTION) {
        return;
    }
    let pods: ResourceKey = (String::new(), "pods".to_owned());
    let texts: Vec<Arc<str>> = sh
        .data_read()
        .list(&pods, Some(&key.0))
        .map(|(_, s)| s.json.clone())
        .collect();
    let in_use = texts
        .iter()
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .any(|pod| pod_uses_claim(&pod, &key.1));
    if in_use {
        return;
    }
    let mut released = claim.clone();
    let rest: Vec<String> = fins.into_iter().filter(|f| f != PVC_PROTECTION).collect();
    meta_mut(&mut released).insert("finalizers".into(), json!(rest));
    write(sh, def, key, None, released);
}

/// Whether a pod that has not finished mounts the claim, directly or as the ephemeral
/// volume's claim (`<pod>-<volume>`).
fn pod_uses_claim(pod: &Value, claim: &str) -> bool {
    if matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    ) {
        return false;
    }
    let pod_name = meta::meta_str(pod, "name").unwrap_or_default();
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|v| {
            let direct = v
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
                == Some(claim);
            let ephemeral = v.get("ephemeral").is_some()
                && v.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| format!("{pod_name}-{n}") == claim);
            direct || ephemeral
        })
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

//! Behaviour of built-in kinds: the defaults, allocations and validations the real server applies.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::catalog::ResourceDef;
use crate::error::Cause;
use crate::ids;
use crate::registry::strategy::set_default;
use crate::state::Shared;
use crate::storage::ResourceKey;

fn top_level_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "configmaps") => &["data", "binaryData", "immutable"],
        ("", "secrets") => &["data", "stringData", "type", "immutable"],
        ("", "serviceaccounts") => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("", "endpoints") => &["subsets"],
        ("", "events") => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        ("events.k8s.io", "events") => &[
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ],
        ("rbac.authorization.k8s.io", "roles") => &["rules"],
        ("rbac.authorization.k8s.io", "clusterroles") => &["rules", "aggregationRule"],
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            &["subjects", "roleRef"]
        }
        ("apps", "controllerrevisions") => &["data", "revision"],
        ("storage.k8s.io", "storageclasses") => &[
            "provisioner",
            "parameters",
            "reclaimPolicy",
            "mountOptions",
            "allowVolumeExpansion",
            "volumeBindingMode",
            "allowedTopologies",
        ],
        _ => &["spec", "status"],
    }
}

/// Removes the fields a built-in object carries that its type does not declare, as the real
/// server's decoder drops them, and returns their dotted paths (metadata's first, then the
/// rest in document order, as Go reports them).
pub fn take_unknown_fields(def: &ResourceDef, obj: &mut Value) -> Vec<String> {
    let mut out = Vec::new();
    let ti = crate::registry::fields::type_info(def);
    let typed = ti.root();
    let Value::Object(root) = obj else { return out };
    if typed.is_deduced() {
        // No schema for this kind: check the top level and metadata only.
        let known = top_level_fields(&def.group, &def.plural);
        if let Some(Value::Object(m)) = root.get_mut("metadata") {
            let bad: Vec<String> = m
                .keys()
                .filter(|k| !crate::meta::META_ORDER.contains(&k.as_str()))
                .cloned()
                .collect();
            for k in bad {
                m.shift_remove(&k);
                out.push(format!("metadata.{k}"));
            }
        }
        let bad: Vec<String> = root
            .keys()
            .filter(|k| {
                !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                    && !known.contains(&k.as_str())
            })
            .cloned()
            .collect();
        for k in bad {
            root.shift_remove(&k);
            out.push(k);
        }
        return out;
    }
    if let (Some(meta), Some(ty)) = (root.get_mut("metadata"), typed.field("metadata")) {
        prune_typed(meta, ty, "metadata", &mut out);
    }
    let keys: Vec<String> = root
        .keys()
        .filter(|k| k.as_str() != "metadata")
        .cloned()
        .collect();
    for k in keys {
        match typed.field(&k) {
            Some(ty) => {
                if let Some(v) = root.get_mut(&k) {
                    prune_typed(v, ty, &k, &mut out);
                }
            }
            None if matches!(k.as_str(), "apiVersion" | "kind") => {}
            None => {
                root.shift_remove(&k);
                out.push(k);
            }
        }
    }
    out
}

fn prune_typed(v: &mut Value, ty: crate::patch::schema::Ty<'_>, path: &str, out: &mut Vec<String>) {
    use crate::patch::schema::Shape;
    let shape = ty.shape();
    match (v, &shape) {
        (Value::Object(m), Shape::Struct) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let child = format!("{path}.{k}");
                match ty.field_of(&shape, &k) {
                    Some(t) => {
                        if let Some(x) = m.get_mut(&k) {
                            prune_typed(x, t, &child, out);
                        }
                    }
                    None => {
                        m.shift_remove(&k);
                        out.push(child);
                    }
                }
            }
        }
        (Value::Object(m), Shape::Map(elem)) => {
            for (k, x) in m.iter_mut() {
                prune_typed(x, *elem, &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(items), Shape::List(elem, _)) => {
            for (i, x) in items.iter_mut().enumerate() {
                prune_typed(x, *elem, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn obj_mut<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = parent
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

/// Applies the real server's defaults for built-in kinds.
pub fn default(sh: &Shared, def: &ResourceDef, obj: &mut Value, old: Option<&Value>) {
    let Value::Object(root) = obj else { return };
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            let labels = obj_mut(obj_mut(root, "metadata"), "labels");
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            // The finalizers are the server's; an update cannot change them.
            if let Some(fins) = old.and_then(|o| o.pointer("/spec/finalizers")) {
                obj_mut(root, "spec").insert("finalizers".into(), fins.clone());
            }
        }
        ("", "secrets") => {
            if let Some(Value::Object(sd)) = root.shift_remove("stringData") {
                let data = obj_mut(root, "data");
                for (k, v) in sd {
                    data.insert(k, json!(base64(v.as_str().unwrap_or_default().as_bytes())));
                }
            }
            set_default(root, "type", json!("Opaque"));
        }
        ("", "services") => default_service(sh, root, old),
        ("", "persistentvolumeclaims") => {
            set_default(obj_mut(root, "spec"), "volumeMode", json!("Filesystem"));
        }
        ("", "pods") => {
            default_pod_spec(obj_mut(root, "spec"));
            if old.is_none() {
                set_default(obj_mut(root, "status"), "phase", json!("Pending"));
                root.insert(
                    "status".into(),
                    json!({"phase": "Pending", "qosClass": "BestEffort"}),
                );
            }
        }
        ("", "events") | ("events.k8s.io", "events") if old.is_some() => {
            event_zero_values(def, root)
        }
        ("apps", "deployments") => {
            let spec = obj_mut(root, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "strategy", json!({}));
            let strategy = obj_mut(spec, "strategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type") == Some(&json!("RollingUpdate")) {
                let ru = obj_mut(strategy, "rollingUpdate");
                set_default(ru, "maxSurge", json!("25%"));
                set_default(ru, "maxUnavailable", json!("25%"));
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            default_template(spec);
            default_status(root, old, json!({}));
            default_deployment_conditions(root);
        }
        ("apps", "replicasets") => {
            let spec = obj_mut(root, "spec");
            set_default(spec, "replicas", json!(1));
            default_template(spec);
            default_status(root, old, json!({"replicas": 0}));
        }
        ("apps", "statefulsets") => {
            let spec = obj_mut(root, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            set_default(spec, "updateStrategy", json!({}));
            let us = obj_mut(spec, "updateStrategy");
            set_default(us, "type", json!("RollingUpdate"));
            if us.get("type") == Some(&json!("RollingUpdate")) {
                set_default(obj_mut(us, "rollingUpdate"), "partition", json!(0));
            }
            if let Some(Value::Array(vcts)) = spec.get_mut("volumeClaimTemplates") {
                for t in vcts.iter_mut() {
                    if let Value::Object(t) = t {
                        set_default(t, "apiVersion", json!("v1"));
                        set_default(t, "kind", json!("PersistentVolumeClaim"));
                        set_default(obj_mut(t, "metadata"), "creationTimestamp", Value::Null);
                        set_default(obj_mut(t, "spec"), "volumeMode", json!("Filesystem"));
                        set_default(obj_mut(t, "status"), "phase", json!("Pending"));
                    }
                }
            }
            default_template(spec);
            default_status(root, old, json!({"availableReplicas": 0, "replicas": 0}));
        }
        ("apps", "daemonsets") => {
            let spec = obj_mut(root, "spec");
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "updateStrategy", json!({}));
            let us = obj_mut(spec, "updateStrategy");
            set_default(us, "type", json!("RollingUpdate"));
            if us.get("type") == Some(&json!("RollingUpdate")) {
                let ru = obj_mut(us, "rollingUpdate");
                set_default(ru, "maxSurge", json!(0));
                set_default(ru, "maxUnavailable", json!(1));
            }
            default_template(spec);
            default_status(
                root,
                old,
                json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0}),
            );
        }
        ("batch", "jobs") => {
            default_job_spec(obj_mut(root, "spec"));
            default_status(root, old, json!({}));
        }
        ("batch", "cronjobs") => {
            let spec = obj_mut(root, "spec");
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
            let jt = obj_mut(spec, "jobTemplate");
            set_default(obj_mut(jt, "metadata"), "creationTimestamp", Value::Null);
            let js = obj_mut(jt, "spec");
            set_default(js, "backoffLimit", json!(6));
            set_default(js, "completionMode", json!("NonIndexed"));
            set_default(js, "completions", json!(1));
            set_default(js, "parallelism", json!(1));
            set_default(js, "podReplacementPolicy", json!("TerminatingOrFailed"));
            set_default(js, "suspend", json!(false));
            default_template(js);
            default_status(root, old, json!({}));
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            crate::registry::crd::default_crd(root, old.is_none());
        }
        ("networking.k8s.io", "ingresses") => {
            default_status(root, old, json!({"loadBalancer": {}}));
        }
        ("networking.k8s.io", "networkpolicies") => {
            set_default(obj_mut(root, "spec"), "policyTypes", json!(["Ingress"]));
        }
        _ => {}
    }
}

/// Fields Go serializes from zero values (not defaults: nobody owns them).
fn event_zero_values(def: &ResourceDef, root: &mut Map<String, Value>) {
    if def.group.is_empty() {
        set_default(root, "involvedObject", json!({}));
        set_default(root, "source", json!({}));
        set_default(root, "firstTimestamp", Value::Null);
        set_default(root, "lastTimestamp", Value::Null);
        set_default(root, "eventTime", Value::Null);
        set_default(root, "reportingComponent", json!(""));
        set_default(root, "reportingInstance", json!(""));
    } else {
        set_default(root, "regarding", json!({}));
        set_default(root, "deprecatedFirstTimestamp", Value::Null);
        set_default(root, "deprecatedLastTimestamp", Value::Null);
        set_default(root, "deprecatedSource", json!({}));
    }
}

/// Status of a kind with a status subresource starts as the server's empty status.
fn default_status(root: &mut Map<String, Value>, old: Option<&Value>, empty: Value) {
    if old.is_none() {
        root.insert("status".into(), empty);
    }
}

/// Go serializes a Deployment condition's zero times as `null`.
fn default_deployment_conditions(root: &mut Map<String, Value>) {
    if let Some(Value::Array(conds)) = root.get_mut("status").and_then(|s| s.get_mut("conditions"))
    {
        for c in conds.iter_mut() {
            if let Value::Object(c) = c {
                set_default(c, "lastUpdateTime", Value::Null);
                set_default(c, "lastTransitionTime", Value::Null);
            }
        }
    }
}

fn default_job_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "completions", json!(1));
    set_default(spec, "manualSelector", json!(false));
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    set_default(spec, "suspend", json!(false));
    default_template(spec);
}

fn default_template(spec: &mut Map<String, Value>) {
    let t = obj_mut(spec, "template");
    set_default(obj_mut(t, "metadata"), "creationTimestamp", Value::Null);
    default_pod_spec(obj_mut(t, "spec"));
}

fn default_pod_spec(ps: &mut Map<String, Value>) {
    set_default(ps, "restartPolicy", json!("Always"));
    set_default(ps, "terminationGracePeriodSeconds", json!(30));
    set_default(ps, "dnsPolicy", json!("ClusterFirst"));
    set_default(ps, "securityContext", json!({}));
    set_default(ps, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = ps.get_mut(key) {
            for c in cs.iter_mut() {
                if let Value::Object(c) = c {
                    default_container(c);
                }
            }
        }
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = if image.contains('@') {
        Some("digest")
    } else {
        last.split_once(':').map(|(_, t)| t)
    };
    let policy = if tag.is_none() || tag == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default(c, "imagePullPolicy", json!(policy));
    set_default(c, "resources", json!({}));
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut() {
            if let Value::Object(p) = p {
                set_default(p, "protocol", json!("TCP"));
            }
        }
    }
}

fn default_service(sh: &Shared, root: &mut Map<String, Value>, old: Option<&Value>) {
    let old_spec = old
        .and_then(|o| o.get("spec"))
        .cloned()
        .unwrap_or(Value::Null);
    let spec = obj_mut(root, "spec");
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if ty != "ExternalName" {
        // The allocated address survives updates that leave it out.
        if !spec.contains_key("clusterIP")
            && let Some(ip) = old_spec.get("clusterIP")
        {
            spec.insert("clusterIP".into(), ip.clone());
            if let Some(ips) = old_spec.get("clusterIPs") {
                spec.insert("clusterIPs".into(), ips.clone());
            }
        }
        if old.is_some() {
            for k in ["ipFamilies", "ipFamilyPolicy"] {
                if !spec.contains_key(k)
                    && let Some(v) = old_spec.get(k)
                {
                    spec.insert(k.into(), v.clone());
                }
            }
        }
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    let node_ports = ty == "NodePort" || ty == "LoadBalancer";
    if node_ports {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    } else {
        spec.shift_remove("externalTrafficPolicy");
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for (i, p) in ports.iter_mut().enumerate() {
            if let Value::Object(p) = p {
                set_default(p, "protocol", json!("TCP"));
                if !p.contains_key("targetPort")
                    && let Some(port) = p.get("port").cloned()
                {
                    p.insert("targetPort".into(), port);
                }
                if node_ports && !p.contains_key("nodePort") {
                    // New ports get theirs in `server_fill`, after ownership is recorded.
                    if let Some(kept) = old_spec.pointer(&format!("/ports/{i}/nodePort")) {
                        p.insert("nodePort".into(), kept.clone());
                    } else if old.is_some() {
                        p.insert("nodePort".into(), json!(sh.alloc_port()));
                    }
                } else if !node_ports {
                    p.shift_remove("nodePort");
                }
            }
        }
    }
    if old.is_none() {
        root.insert("status".into(), json!({"loadBalancer": {}}));
    }
}

/// Fields the server fills on create after the writer's ownership is recorded: allocations,
/// admission-added finalizers, and what derives from the uid.
pub fn server_fill(sh: &Shared, def: &ResourceDef, obj: &mut Value) {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            if let Value::Object(root) = obj {
                set_default(obj_mut(root, "spec"), "finalizers", json!(["kubernetes"]));
                root.insert("status".into(), json!({"phase": "Active"}));
            }
        }
        ("", "persistentvolumeclaims") => {
            if let Value::Object(root) = obj {
                let fins = obj_mut(root, "metadata")
                    .entry("finalizers")
                    .or_insert_with(|| json!([]));
                if let Value::Array(a) = fins
                    && !a.iter().any(|f| f == "kubernetes.io/pvc-protection")
                {
                    a.push(json!("kubernetes.io/pvc-protection"));
                }
                root.insert("status".into(), json!({"phase": "Pending"}));
            }
        }
        ("", "events") | ("events.k8s.io", "events") => {
            if let Value::Object(root) = obj {
                event_zero_values(def, root);
            }
        }
        ("", "services") => {
            if let Some(Value::Object(spec)) = obj.get_mut("spec")
                && spec.get("type").and_then(Value::as_str) != Some("ExternalName")
            {
                if !spec.contains_key("clusterIP") {
                    spec.insert("clusterIP".into(), json!(sh.alloc_ip()));
                }
                if !spec.contains_key("clusterIPs") {
                    let ip = spec.get("clusterIP").cloned().unwrap_or(Value::Null);
                    spec.insert("clusterIPs".into(), json!([ip]));
                }
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                let node_ports = matches!(
                    spec.get("type").and_then(Value::as_str),
                    Some("NodePort" | "LoadBalancer")
                );
                if node_ports && let Some(Value::Array(ports)) = spec.get_mut("ports") {
                    for p in ports.iter_mut() {
                        if let Value::Object(p) = p {
                            set_default(p, "nodePort", json!(sh.alloc_port()));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    if def.group == "batch" && def.plural == "jobs" {
        let uid = obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
        let name = obj
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null);
        let manual = obj
            .pointer("/spec/manualSelector")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if manual {
            return;
        }
        let labels = json!({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                            "controller-uid": uid, "job-name": name});
        let Value::Object(root) = obj else { return };
        let add_labels = |target: &mut Map<String, Value>| {
            let l = obj_mut(target, "labels");
            if let Value::Object(add) = &labels {
                for (k, v) in add {
                    set_default(l, k, v.clone());
                }
            }
            sort_keys(l);
        };
        add_labels(obj_mut(root, "metadata"));
        add_labels(obj_mut(
            obj_mut(obj_mut(root, "spec"), "template"),
            "metadata",
        ));
        obj_mut(root, "spec").insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
}

fn sort_keys(m: &mut Map<String, Value>) {
    m.sort_keys();
}

/// Kind-specific validation.
pub fn validate(def: &ResourceDef, obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "services") => {
            if let Some(ports) = obj.pointer("/spec/ports").and_then(Value::as_array) {
                for (i, p) in ports.iter().enumerate() {
                    for key in ["port", "targetPort"] {
                        if let Some(n) = p.get(key).and_then(Value::as_i64)
                            && !(1..=65535).contains(&n)
                        {
                            out.push(Cause::invalid(
                                format!("spec.ports[{i}].{key}"),
                                &json!(n),
                                "must be between 1 and 65535, inclusive",
                            ));
                        }
                    }
                }
            }
        }
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            let sel = obj.pointer("/spec/selector");
            let labels = obj
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            if sel.is_none() || sel == Some(&Value::Null) {
                out.push(Cause::required("spec.selector", ""));
            }
            let matches = sel
                .and_then(|s| s.get("matchLabels"))
                .and_then(Value::as_object)
                .is_some_and(|ml| {
                    !ml.is_empty() && ml.iter().all(|(k, v)| labels.get(k) == Some(v))
                });
            if !matches {
                out.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.template.metadata.labels",
                    format!(
                        "Invalid value: {}: `selector` does not match template `labels`",
                        go_string_map(&labels)
                    ),
                ));
            }
            if let Some(r) = obj.pointer("/spec/replicas").and_then(Value::as_i64)
                && r < 0
            {
                out.push(Cause::invalid(
                    "spec.replicas",
                    &json!(r),
                    "must be greater than or equal to 0",
                ));
            }
        }
        _ => {}
    }
    out
}

/// Go's `%#v` of a `map[string]string`.
fn go_string_map(v: &Value) -> String {
    let mut entries: Vec<(String, String)> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let inner = entries
        .iter()
        .map(|(k, v)| format!("{k:?}:{v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("map[string]string{{{inner}}}")
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Plays the namespace controller: removes what a terminating namespace holds, then the
/// namespace itself once nothing with a finalizer is left in it.
pub fn schedule_namespace_cleanup(sh: &Arc<Shared>, ns_obj: &Value) {
    let Some(name) = ns_obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    if !sh.opts.namespace_controller {
        return;
    }
    let weak: Weak<Shared> = Arc::downgrade(sh);
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        for _ in 0..600 {
            let Some(sh) = weak.upgrade() else { return };
            if clean_namespace(&sh, &name) {
                return;
            }
            drop(sh);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// One cleanup pass; true when the namespace is gone.
fn clean_namespace(sh: &Arc<Shared>, ns: &str) -> bool {
    let namespaced: Vec<ResourceKey> = {
        let cat = sh.catalog();
        let mut v: Vec<ResourceKey> = cat
            .all()
            .filter(|d| d.namespaced)
            .map(|d| crate::registry::storage_key(d))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut data = sh.data();
    let mut left = 0usize;
    for res in &namespaced {
        let objs: Vec<(String, Arc<str>)> = data
            .list(res, Some(ns))
            .map(|((_, n), s)| (n.clone(), s.json.clone()))
            .collect();
        for (name, text) in objs {
            let Ok(mut obj) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let key = (ns.to_owned(), name);
            let fins = crate::meta::finalizers(&obj);
            if fins.is_empty() {
                let rv = data.next_rv();
                obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                data.remove(
                    res,
                    &key,
                    rv,
                    Arc::from(serde_json::to_string(&obj).unwrap_or_default()),
                );
            } else {
                left += 1;
                if !crate::meta::is_deleting(&obj) {
                    let rv = data.next_rv();
                    obj["metadata"]["deletionTimestamp"] = json!(ids::now_rfc3339());
                    obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                    data.put(
                        res,
                        key,
                        rv,
                        Arc::from(serde_json::to_string(&obj).unwrap_or_default()),
                        crate::storage::EventType::Modified,
                    );
                }
            }
        }
    }
    if left > 0 {
        return false;
    }
    let nskey: ResourceKey = (String::new(), "namespaces".into());
    let k = (String::new(), ns.to_owned());
    if let Some(stored) = data.get(&nskey, &k)
        && let Ok(mut obj) = serde_json::from_str::<Value>(&stored.json)
    {
        if !crate::meta::finalizers(&obj).is_empty() {
            return false;
        }
        let rv = data.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        obj["spec"]["finalizers"] = json!([]);
        data.remove(
            &nskey,
            &k,
            rv,
            Arc::from(serde_json::to_string(&obj).unwrap_or_default()),
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_unknown_fields_of_built_ins_are_reported_and_dropped() {
        let def = crate::catalog::Catalog::builtin()
            .get("apps", "v1", "deployments")
            .unwrap();
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
                    {"name": "c", "image": "nginx", "imagePullPolicyy": "Always", "resources": {"limits": {"cpu": "1"}}}]}}},
            "extra": true});
        let unknown = take_unknown_fields(&def, &mut d);
        assert_eq!(
            unknown,
            [
                "metadata.bogus",
                "spec.template.spec.containers[0].imagePullPolicyy",
                "extra"
            ]
        );
        assert!(
            d.pointer("/spec/template/spec/containers/0/imagePullPolicyy")
                .is_none()
        );
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0/resources/limits/cpu"),
            Some(&json!("1"))
        );
        assert_eq!(d.pointer("/metadata/labels/a"), Some(&json!("b")));
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b"hunter2"), "aHVudGVyMg==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        let mut c = Map::new();
        c.insert("image".into(), json!("nginx"));
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], "Always");
        let mut c = Map::new();
        c.insert("image".into(), json!("registry:5000/nginx:1.25"));
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    }
}

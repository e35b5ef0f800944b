//! `metadata.managedFields`: which manager owns which fields, computed like
//! the real server's field manager.
//!
//! An `Update` entry (create, update and non-apply patches) owns what its
//! request added or changed compared to the previous object; fields it
//! changes move away from their other owners. An `Apply` entry owns exactly
//! the fields of its last applied configuration. Entries are keyed by
//! (manager, operation, subresource, and apiVersion for `Update`).

use serde_json::{Map, Value, json};

use super::error::FieldConflict;
use super::fieldpath::FieldSet;
use super::schema::TypeInfo;
use super::typed::{Comparison, compare_scoped, untracked};

/// `Apply` or `Update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update and every other patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// Operation kind.
    pub operation: Operation,
    /// apiVersion the fields were written in.
    pub api_version: String,
    /// Subresource (`status`), when not the main resource.
    pub subresource: Option<String>,
    /// RFC 3339 time of the last change.
    pub time: Option<String>,
    /// Owned fields.
    pub set: FieldSet,
}

impl Entry {
    fn same_key(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// The manager as the real server names it in conflict messages.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s = format!("{s} with subresource {sub:?}");
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.set.to_fields_v1());
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), json!(sub));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let operation = match v.get("operation")?.as_str()? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        Some(Entry {
            manager: v
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            operation,
            api_version: v
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            subresource: v
                .get("subresource")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            time: v.get("time").and_then(Value::as_str).map(str::to_owned),
            set: v
                .get("fieldsV1")
                .and_then(FieldSet::from_fields_v1)
                .unwrap_or_default(),
        })
    }
}

/// The entries of an object's `metadata.managedFields` (malformed ones dropped).
pub fn decode(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// Writes entries into `metadata.managedFields`, removing the key when
/// empty, in the real server's order: operation (`Apply` first), time,
/// manager, apiVersion, subresource.
pub fn encode_into(obj: &mut Value, entries: &[Entry]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by(|p, q| {
            let key = |e: &Entry| {
                (
                    e.operation.as_str(),
                    e.time.clone(),
                    e.manager.clone(),
                    e.api_version.clone(),
                    e.subresource.clone(),
                )
            };
            key(p).cmp(&key(q))
        });
        meta.insert(
            "managedFields".into(),
            sorted.into_iter().map(Entry::to_json).collect(),
        );
    }
}

/// Removes from other managers what this request changed, collecting the
/// fields they owned as conflicts; fails on conflicts unless `force`.
fn take_ownership(
    entries: &mut Vec<Entry>,
    me: &Entry,
    changes: &Comparison,
    force: bool,
) -> Result<(), Vec<FieldConflict>> {
    let changed = changes.modified.union(&changes.added);
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !e.same_key(me)) {
        for path in e.set.intersection(&changed).paths() {
            conflicts.push(FieldConflict {
                manager: e.display(),
                path,
            });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(conflicts);
    }
    for e in entries.iter_mut().filter(|e| !e.same_key(me)) {
        e.set = e.set.difference(&changed).difference(&changes.removed);
    }
    entries.retain(|e| !e.set.is_empty());
    Ok(())
}

/// Options of one write, as the request carried them.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// `Some("status")` for the status subresource.
    pub subresource: Option<&'a str>,
    /// RFC 3339 time stamped on the writer's entry.
    pub now: &'a str,
}

/// Records an `Update` (create, update or non-apply patch) in `new`'s
/// `managedFields`; `old` is `None` on create.
pub(crate) fn record_update(ty: &TypeInfo, old: Option<&Value>, new: &mut Value, w: Write<'_>) {
    let old_entries = old.map(decode).unwrap_or_default();
    let sent = new.pointer("/metadata/managedFields").cloned();
    let mut entries = match &sent {
        // An explicit empty list resets ownership, as on the real server.
        Some(Value::Array(a)) if a.is_empty() => {
            encode_into(new, &[]);
            return;
        }
        Some(v) if old.and_then(|o| o.pointer("/metadata/managedFields")) != Some(v) => decode(new),
        _ => old_entries,
    };
    let zero;
    let old_v = match old {
        Some(o) => o,
        None => {
            zero = ty.root().zero_value();
            &zero
        }
    };
    let changes = compare_scoped(ty, w.subresource, old_v, new);
    let mut me = Entry {
        manager: w.manager.to_owned(),
        operation: Operation::Update,
        api_version: ty.api_version().to_owned(),
        subresource: w.subresource.map(str::to_owned),
        time: Some(w.now.to_owned()),
        set: FieldSet::new(),
    };
    // Updates always win: `force` cannot fail.
    let _ = take_ownership(&mut entries, &me, &changes, true);
    let previous = entries.iter().position(|e| e.same_key(&me));
    let prev_set = previous.map(|i| entries[i].set.clone()).unwrap_or_default();
    me.set = prev_set
        .difference(&changes.removed)
        .union(&changes.modified)
        .union(&changes.added);
    match previous {
        Some(i) if me.set.is_empty() => {
            entries.remove(i);
        }
        Some(i) => {
            // The time moves only when this write set or changed a field.
            if changes.added.is_empty() && changes.modified.is_empty() {
                me.time = entries[i].time.clone();
            }
            entries[i] = me;
        }
        None if me.set.is_empty() => {}
        None => entries.push(me),
    }
    cap_update_managers(&mut entries);
    encode_into(new, &entries);
}

/// The real server keeps at most this many `Update` entries.
const MAX_UPDATE_MANAGERS: usize = 10;
/// The entry the oldest `Update` entries are merged into.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Merges the oldest `Update` entries into `ancient-changes` (one per
/// apiVersion) until at most [`MAX_UPDATE_MANAGERS`] remain.
fn cap_update_managers(entries: &mut Vec<Entry>) {
    let mut updates: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation == Operation::Update)
        .collect();
    if updates.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updates.sort_by(|&a, &b| entries[a].time.cmp(&entries[b].time));
    let mut count = updates.len();
    let mut merged_away = Vec::new();
    let mut first_of_version: Vec<(String, usize)> = Vec::new();
    for &i in &updates {
        if count <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[i].api_version.clone();
        match first_of_version.iter().find(|(v, _)| *v == version) {
            Some(&(_, bucket)) => {
                let set = entries[i].set.union(&entries[bucket].set);
                let time = entries[i].time.clone();
                let b = &mut entries[bucket];
                b.manager = ANCIENT_CHANGES.to_owned();
                b.subresource = None;
                b.set = set;
                b.time = time;
                merged_away.push(i);
                count -= 1;
            }
            None => first_of_version.push((version, i)),
        }
    }
    merged_away.sort_unstable();
    for i in merged_away.into_iter().rev() {
        entries.remove(i);
    }
}

/// Applies ownership for a server-side apply whose merged result is
/// `merged`; `config_set` is what the configuration sets. Returns the
/// entries to store, or the conflicts.
pub(crate) fn record_apply(
    ty: &TypeInfo,
    live: Option<&Value>,
    merged: &Value,
    config_set: FieldSet,
    api_version: &str,
    w: Write<'_>,
    force: bool,
) -> Result<Vec<Entry>, Vec<FieldConflict>> {
    let mut entries = live.map(decode).unwrap_or_default();
    let zero;
    let old_v = match live {
        Some(o) => o,
        None => {
            zero = ty.root().zero_value();
            &zero
        }
    };
    let changes = compare_scoped(ty, w.subresource, old_v, merged);
    let me = Entry {
        manager: w.manager.to_owned(),
        operation: Operation::Apply,
        api_version: api_version.to_owned(),
        subresource: w.subresource.map(str::to_owned),
        time: Some(w.now.to_owned()),
        set: config_set.difference(untracked()),
    };
    take_ownership(&mut entries, &me, &changes, force)?;
    match entries.iter().position(|e| e.same_key(&me)) {
        Some(i) if me.set.is_empty() => {
            entries.remove(i);
        }
        Some(i) => {
            let unchanged = changes.is_empty() && entries[i].set == me.set;
            let time = if unchanged {
                entries[i].time.clone()
            } else {
                me.time.clone()
            };
            entries[i] = Entry { time, ..me };
        }
        None if me.set.is_empty() => {}
        None => entries.push(me),
    }
    Ok(entries)
}

/// The applying manager's previous set and the union of everyone else's.
pub(crate) fn apply_sets(
    live: Option<&Value>,
    manager: &str,
    subresource: Option<&str>,
) -> (FieldSet, FieldSet) {
    let mut mine = FieldSet::new();
    let mut others = FieldSet::new();
    for e in live.map(decode).unwrap_or_default() {
        if e.operation == Operation::Apply
            && e.manager == manager
            && e.subresource.as_deref() == subresource
        {
            mine = e.set;
        } else {
            others = others.union(&e.set);
        }
    }
    (mine, others)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::fieldpath::PathElement;
    use crate::patch::typed::{field, to_field_set};

    fn cm() -> TypeInfo {
        TypeInfo::builtin("v1", "ConfigMap").unwrap()
    }

    fn managers(obj: &Value) -> Vec<String> {
        decode(obj).into_iter().map(|e| e.manager).collect()
    }

    #[test]
    fn an_update_takes_changed_fields_from_other_managers_and_drops_empty_entries() {
        let t = cm();
        let w = |m| Write {
            manager: m,
            subresource: None,
            now: "t1",
        };
        let mut a = json!({"metadata": {"name": "x"}, "data": {"k": "1"}});
        record_update(&t, None, &mut a, w("alice"));
        let mut b = a.clone();
        b["data"]["k"] = json!("2");
        record_update(&t, Some(&a), &mut b, w("bob"));
        // alice created `data` itself and keeps it; `data.k` moved to bob.
        assert_eq!(managers(&b), vec!["alice", "bob"]);
        let alice = &decode(&b)[0];
        assert_eq!(alice.set.paths(), vec![vec![field("data")]]);
        let mut c = b.clone();
        c["data"]["j"] = json!("3");
        record_update(&t, Some(&b), &mut c, w("bob"));
        let e = decode(&c);
        assert_eq!(e.len(), 2);
        assert!(e[1].set.contains(&[field("data"), field("j")]));
        assert!(e[1].set.contains(&[field("data"), field("k")]));
        // A no-op write records nothing new and keeps the entry's time.
        let mut d = c.clone();
        record_update(
            &t,
            Some(&c),
            &mut d,
            Write {
                now: "t2",
                ..w("bob")
            },
        );
        assert_eq!(decode(&d)[1].time.as_deref(), Some("t1"));
        let mut e2 = c.clone();
        record_update(&t, Some(&c), &mut e2, w("carol"));
        assert_eq!(managers(&e2), vec!["alice", "bob"]);
    }

    #[test]
    fn a_scale_write_moves_replicas_to_a_scale_entry() {
        let t = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2, "paused": false}});
        record_update(
            &t,
            None,
            &mut d,
            Write {
                manager: "hub",
                subresource: None,
                now: "t",
            },
        );
        let mut scaled = d.clone();
        scaled["spec"]["replicas"] = json!(5);
        let w = Write {
            manager: "kubectl",
            subresource: Some("scale"),
            now: "t",
        };
        record_update(&t, Some(&d), &mut scaled, w);
        let entries = decode(&scaled);
        let scale = entries.iter().find(|e| e.manager == "kubectl").unwrap();
        assert_eq!(
            (scale.subresource.as_deref(), scale.api_version.as_str()),
            (Some("scale"), "apps/v1")
        );
        assert_eq!(
            scale.set.to_fields_v1(),
            json!({"f:spec": {"f:replicas": {}}})
        );
        let hub = entries.iter().find(|e| e.manager == "hub").unwrap();
        assert!(!hub.set.contains(&[field("spec"), field("replicas")]));
    }

    #[test]
    fn an_explicit_empty_list_resets_managed_fields() {
        let t = cm();
        let w = Write {
            manager: "alice",
            subresource: None,
            now: "t",
        };
        let mut a = json!({"metadata": {"name": "x"}, "data": {"k": "1"}});
        record_update(&t, None, &mut a, w);
        let mut b = a.clone();
        b["metadata"]["managedFields"] = json!([]);
        record_update(&t, Some(&a), &mut b, w);
        assert!(b["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn more_than_ten_update_managers_merge_into_ancient_changes() {
        let t = cm();
        let mut obj = json!({"metadata": {"name": "x"}, "data": {}});
        for i in 0..12 {
            let mut next = obj.clone();
            next["data"][format!("k{i}")] = json!("v");
            let now = format!("2026-01-01T00:00:{i:02}Z");
            let manager = format!("m{i}");
            record_update(
                &t,
                Some(&obj),
                &mut next,
                Write {
                    manager: &manager,
                    subresource: None,
                    now: &now,
                },
            );
            obj = next;
        }
        let e = decode(&obj);
        assert_eq!(e.len(), 10);
        let ancient = e.iter().find(|e| e.manager == ANCIENT_CHANGES).unwrap();
        for k in ["k0", "k1", "k2"] {
            assert!(ancient.set.contains(&[field("data"), field(k)]), "{k}");
        }
        assert_eq!(ancient.time.as_deref(), Some("2026-01-01T00:00:02Z"));
    }

    #[test]
    fn field_sets_follow_list_kinds() {
        let t = TypeInfo::builtin("v1", "Pod").unwrap();
        let pod = json!({"metadata": {"finalizers": ["a"], "labels": {}},
                         "spec": {"containers": [{"name": "c", "args": ["x"], "ports": [{"containerPort": 1}]}]}});
        let set = to_field_set(t.root(), &pod).unwrap();
        let fin = PathElement::Value("\"a\"".into());
        assert!(set.contains(&[field("metadata"), field("finalizers"), fin]));
        // An empty declared map sets nothing.
        assert!(!set.contains(&[field("metadata"), field("labels")]));
        let c = PathElement::key(vec![("name".into(), &json!("c"))]);
        let port = PathElement::key(vec![
            ("containerPort".into(), &json!(1)),
            ("protocol".into(), &json!("TCP")),
        ]);
        let base = [field("spec"), field("containers"), c.clone()];
        assert!(set.contains(&base));
        assert!(set.contains(&[base.as_slice(), &[field("args")]].concat()));
        assert!(set.contains(&[base.as_slice(), &[field("ports"), port]].concat()));
        let dup = json!({"spec": {"containers": [{"name": "c"}, {"name": "c"}]}});
        assert!(to_field_set(t.root(), &dup).is_err());
        // Built-in keys have schema defaults (`name: ""`); a CRD key may not.
        let schema = json!({"type": "object", "properties": {"items": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "string"}}}}}});
        let crd = TypeInfo::custom("x.io/v1", "X", Some(&schema), false);
        let keyless = json!({"items": [{"v": "x"}]});
        let (path, why) = to_field_set(crd.root(), &keyless).unwrap_err();
        assert_eq!(path, vec![field("items")]);
        assert!(why.contains("omits key field \"name\""), "{why}");
        let (path, why) =
            to_field_set(t.root(), &json!({"spec": {"activeDeadlineSeconds": "x"}})).unwrap_err();
        assert_eq!(path, vec![field("spec"), field("activeDeadlineSeconds")]);
        assert_eq!(why, "expected numeric (int or float), got string");
        let (_, why) = to_field_set(t.root(), &json!({"spec": "x"})).unwrap_err();
        assert_eq!(why, "expected map, got \"x\"");
        let (_, why) = to_field_set(t.root(), &json!({"spec": {"containers": 1}})).unwrap_err();
        assert_eq!(why, "expected list, got 1");
    }
}

//! Object storage: JSON text per object, one resourceVersion counter, and a bounded event log.
//!
//! Objects are kept as serialized JSON rather than parsed trees: a parsed `serde_json::Value`
//! costs several times the text's size, and most reads only copy the bytes to a response.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::broadcast;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// Storage key of a resource: (group, plural). Versions of one resource share storage.
pub type ResourceKey = (String, String);

/// Key of an object within a resource: (namespace or "", name).
pub type ObjectKey = (String, String);

/// A stored object.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its resourceVersion.
    pub rv: u64,
    /// Its JSON text, `metadata.resourceVersion` included.
    pub json: Arc<str>,
}

/// One entry of the event log.
#[derive(Debug)]
pub struct Event {
    /// resourceVersion the change produced.
    pub rv: u64,
    /// Change type.
    pub kind: EventType,
    /// Resource the object belongs to.
    pub resource: ResourceKey,
    /// Namespace ("" when cluster-scoped).
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The object after the change (before removal for `Deleted`).
    pub json: Arc<str>,
    /// For `Modified`: the object before the change, so filtered watches can tell objects
    /// entering or leaving their selector.
    pub prev: Option<Arc<str>>,
}

/// Outcome of asking for events after a resourceVersion.
#[derive(Debug)]
pub enum Since {
    /// The events after it, oldest first.
    Events(Vec<Arc<Event>>),
    /// The version is older than the log keeps.
    Expired,
}

/// The mutable state behind the store's lock.
#[derive(Debug)]
pub struct Data {
    rv: u64,
    objects: HashMap<ResourceKey, BTreeMap<ObjectKey, Stored>>,
    log: VecDeque<Arc<Event>>,
    log_cap: usize,
    /// Highest resourceVersion dropped from the log.
    compacted: u64,
    events: broadcast::Sender<Arc<Event>>,
}

/// Default number of events the log keeps for watches that resume.
pub const DEFAULT_HISTORY: usize = 10_000;

impl Data {
    /// Empty storage keeping `history` events.
    pub fn new(history: usize) -> Self {
        // Large enough that watchers keep up with write bursts instead of being told to relist.
        let (events, _) = broadcast::channel(65_536);
        Self {
            rv: 1,
            objects: HashMap::new(),
            log: VecDeque::new(),
            log_cap: history.max(1),
            compacted: 0,
            events,
        }
    }

    /// The current resourceVersion (of the last write).
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// The newest resourceVersion whose events are gone from the log (0 while the log
    /// still holds everything): reads at or before it cannot be served consistently.
    pub fn compacted_rv(&self) -> u64 {
        self.compacted
    }

    /// Reserves the next resourceVersion.
    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Reads one object.
    pub fn get(&self, res: &ResourceKey, key: &ObjectKey) -> Option<&Stored> {
        self.objects.get(res)?.get(key)
    }

    /// Objects of a resource, in key order, optionally within one namespace.
    pub fn list<'a>(
        &'a self,
        res: &ResourceKey,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Stored)> + 'a {
        // Keys sort by namespace first, so one namespace is one contiguous range.
        let start = (namespace.unwrap_or_default().to_owned(), String::new());
        self.objects.get(res).into_iter().flat_map(move |m| {
            m.range(start.clone()..)
                .take_while(move |((ns, _), _)| namespace.is_none_or(|want| ns == want))
        })
    }

    /// Number of objects of a resource.
    pub fn count(&self, res: &ResourceKey) -> usize {
        self.objects.get(res).map_or(0, BTreeMap::len)
    }

    /// Writes an object at `rv` (from [`Data::next_rv`]) and logs the event.
    pub fn put(
        &mut self,
        res: &ResourceKey,
        key: ObjectKey,
        rv: u64,
        json: Arc<str>,
        kind: EventType,
    ) {
        let prev = self
            .objects
            .entry(res.clone())
            .or_default()
            .insert(
                key.clone(),
                Stored {
                    rv,
                    json: json.clone(),
                },
            )
            .map(|old| old.json);
        let prev = if kind == EventType::Modified {
            prev
        } else {
            None
        };
        self.log_event(rv, kind, res, key, json, prev);
    }

    /// Removes an object; `final_json` is what the DELETED event carries (stamped at `rv`).
    pub fn remove(&mut self, res: &ResourceKey, key: &ObjectKey, rv: u64, final_json: Arc<str>) {
        if let Some(m) = self.objects.get_mut(res) {
            m.remove(key);
        }
        self.log_event(rv, EventType::Deleted, res, key.clone(), final_json, None);
    }

    /// Drops every object of a resource without events (used when a CRD goes away).
    pub fn drop_resource(&mut self, res: &ResourceKey) {
        self.objects.remove(res);
    }

    fn log_event(
        &mut self,
        rv: u64,
        kind: EventType,
        res: &ResourceKey,
        (namespace, name): ObjectKey,
        json: Arc<str>,
        prev: Option<Arc<str>>,
    ) {
        let ev = Arc::new(Event {
            rv,
            kind,
            resource: res.clone(),
            namespace,
            name,
            json,
            prev,
        });
        if self.log.len() >= self.log_cap
            && let Some(old) = self.log.pop_front()
        {
            self.compacted = old.rv;
        }
        self.log.push_back(ev.clone());
        // No receivers is normal: nobody watches.
        let _ = self.events.send(ev);
    }

    /// Events of a resource after `rv`, or `Expired` when the log no longer reaches back.
    pub fn since(&self, res: &ResourceKey, rv: u64) -> Since {
        if rv < self.compacted {
            return Since::Expired;
        }
        let start = self.log.partition_point(|e| e.rv <= rv);
        Since::Events(
            self.log
                .iter()
                .skip(start)
                .filter(|e| &e.resource == res)
                .cloned()
                .collect(),
        )
    }

    /// Subscribes to events written from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Every stored object, for persistence.
    pub fn snapshot(&self) -> Vec<(ResourceKey, ObjectKey, Stored)> {
        self.objects
            .iter()
            .flat_map(|(r, m)| {
                m.iter()
                    .map(move |(k, s)| (r.clone(), k.clone(), s.clone()))
            })
            .collect()
    }

    /// Restores objects from a snapshot without events, and moves the counter past them.
    pub fn restore(&mut self, rv: u64, items: Vec<(ResourceKey, ObjectKey, Stored)>) {
        for (r, k, s) in items {
            self.rv = self.rv.max(s.rv);
            self.objects.entry(r).or_default().insert(k, s);
        }
        self.rv = self.rv.max(rv);
        self.compacted = self.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> ObjectKey {
        ("ns".into(), n.into())
    }

    #[test]
    fn log_expires_old_versions() {
        let mut d = Data::new(2);
        let res: ResourceKey = (String::new(), "configmaps".into());
        for n in ["a", "b", "c"] {
            let rv = d.next_rv();
            d.put(&res, key(n), rv, Arc::from("{}"), EventType::Added);
        }
        // rvs 2,3,4 written; the log holds 3 and 4 only.
        assert!(matches!(d.since(&res, 1), Since::Expired));
        match d.since(&res, 2) {
            Since::Events(ev) => assert_eq!(ev.iter().map(|e| e.rv).collect::<Vec<_>>(), [3, 4]),
            Since::Expired => panic!("rv 2 is still covered"),
        }
    }

    #[test]
    fn list_filters_by_namespace_in_key_order() {
        let mut d = Data::new(10);
        let res: ResourceKey = (String::new(), "configmaps".into());
        for (ns, n) in [("b", "x"), ("a", "y"), ("a", "x")] {
            let rv = d.next_rv();
            d.put(
                &res,
                (ns.into(), n.into()),
                rv,
                Arc::from("{}"),
                EventType::Added,
            );
        }
        let all: Vec<_> = d.list(&res, None).map(|(k, _)| k.clone()).collect();
        assert_eq!(all[0], ("a".to_owned(), "x".to_owned()));
        assert_eq!(d.list(&res, Some("a")).count(), 2);
    }
}

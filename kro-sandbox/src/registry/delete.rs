//! The generic rules of deletion, for every kind, as the real server's generic store
//! applies them (`staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go`
//! `Delete`, and `pkg/registry/rest/delete.go` `BeforeDelete`): preconditions, graceful
//! deletion for kinds whose strategy supports it, the garbage collector's finalizers,
//! marking an object as being deleted (with its generation bump) and when an object
//! really leaves storage.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Target};
use crate::ids;
use crate::meta::{finalizers, is_deleting, meta_mut, meta_str};
use crate::registry::options::{DeleteOptions, Propagation};
use crate::registry::strategy::{GcPolicy, Strategy};

/// The finalizer that keeps an object until its dependents are orphaned.
pub const ORPHAN: &str = "orphan";
/// The finalizer that keeps an object until its dependents are gone.
pub const FOREGROUND: &str = "foregroundDeletion";

/// What a delete does to an existing object.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Remove it from storage now.
    Remove,
    /// Store this new state (deletion started or its finalizers changed) and keep it.
    Mark(Value),
    /// Store this state (a graceful deletion with no time left), then remove it: watchers
    /// see the update before the removal, as the real store writes both.
    MarkThenRemove(Value),
    /// Leave it as it is: the store's write would change nothing; answer with the object.
    Unchanged,
    /// A graceful deletion is already under way and the request does not shorten it:
    /// nothing is written and the answer is what a finished delete answers.
    Pending,
}

impl Decision {
    /// Whether the object leaves storage (the handler's `wasDeleted`).
    pub fn removes(&self) -> bool {
        matches!(self, Self::Remove | Self::MarkThenRemove(_))
    }
}
/// Checks `DeleteOptions.preconditions` against the stored object; the conflict names the
/// kind, as the real server's delete does.
pub fn check_preconditions(
    group: &str,
    kind: &str,
    obj: &Value,
    opts: &DeleteOptions,
) -> ApiResult<()> {
    let name = meta_str(obj, "name").unwrap_or_default();
    let target = Target {
        group,
        plural: kind,
        name,
    };
    let uid = meta_str(obj, "uid").unwrap_or_default();
    if let Some(want) = &opts.precondition_uid
        && want != uid
    {
        return Err(ApiError::conflict_msg(
            target,
            &format!(
                "the UID in the precondition ({want}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
            ),
        ));
    }
    let rv = meta_str(obj, "resourceVersion").unwrap_or_default();
    if let Some(want) = &opts.precondition_rv
        && want != rv
    {
        return Err(ApiError::conflict_msg(
            target,
            &format!(
                "the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({rv}). The object might have been modified"
            ),
        ));
    }
    Ok(())
}

/// The finalizers the garbage collector's policy asks for, or `None` when they would not
/// change (`deletionFinalizersForGarbageCollection`). The explicit option wins, then a
/// policy finalizer already on the object, then the kind's default; a kind without
/// garbage collection support keeps neither.
pub fn gc_finalizers(
    current: &[String],
    propagation: Option<Propagation>,
    policy: GcPolicy,
) -> Option<Vec<String>> {
    let has = |f: &str| current.iter().any(|x| x == f);
    let first_policy = current.iter().find(|f| *f == ORPHAN || *f == FOREGROUND);
    let (orphan, foreground) = if policy == GcPolicy::Unsupported {
        (false, false)
    } else {
        match propagation {
            Some(p) => (p == Propagation::Orphan, p == Propagation::Foreground),
            None => (
                first_policy.map_or(policy == GcPolicy::OrphanDependents, |f| f == ORPHAN),
                first_policy.is_some_and(|f| f == FOREGROUND),
            ),
        }
    };
    let mut next: Vec<String> = current
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        next.push(ORPHAN.to_owned());
    }
    if foreground {
        next.push(FOREGROUND.to_owned());
    }
    let same = next.len() == current.len() && next.iter().all(|f| has(f));
    (!same).then_some(next)
}

/// Marks an object as being deleted (`markAsDeleting`): one generation bump the first
/// time, the deletion timestamp set unless an earlier one is kept, a zero grace period.
pub fn mark_as_deleting(obj: &mut Value, now: u64) {
    let existing = meta_str(obj, "deletionTimestamp").and_then(ids::parse_rfc3339);
    let m = meta_mut(obj);
    if existing.is_none() {
        bump_generation(m);
    }
    if existing.is_none_or(|t| t > now) {
        m.insert("deletionTimestamp".into(), json!(ids::rfc3339(now)));
    }
    m.insert("deletionGracePeriodSeconds".into(), json!(0));
}

/// Deletion changes what controllers of the object may do, so a kind that tracks
/// generation gets a new one when deletion starts.
fn bump_generation(m: &mut serde_json::Map<String, Value>) {
    if let Some(g) = m
        .get("generation")
        .and_then(Value::as_i64)
        .filter(|g| *g > 0)
    {
        m.insert("generation".into(), json!(g + 1));
    }
}

/// `BeforeDelete`'s graceful part: `Ok(Some(period))` when the object is to be deleted
/// gracefully with this period (its metadata already updated), `Ok(None)` when it is not
/// graceful, `Err(())` when a graceful deletion is pending and the request changes
/// nothing.
fn before_delete(
    strategy: &dyn Strategy,
    obj: &mut Value,
    requested: Option<i64>,
    now: u64,
) -> Result<Option<i64>, ()> {
    // A negative period is read as one second on the delete path.
    let requested = requested.map(|g| if g < 0 { 1 } else { g });
    let Some(period) = strategy.graceful_period(obj, requested) else {
        return Ok(None);
    };
    let current = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    let timestamp = meta_str(obj, "deletionTimestamp").and_then(ids::parse_rfc3339);
    if let Some(ts) = timestamp {
        // Already being deleted: without a grace period left the deletion goes on as a
        // plain one; otherwise only a shorter period changes anything.
        let Some(current) = current.filter(|c| *c != 0) else {
            return Ok(None);
        };
        let Some(mut shorter) = requested.filter(|p| *p < current) else {
            return Err(());
        };
        // The deadline moves back by the difference, never into the past; a graceful
        // request whose whole period has already passed keeps the minimum of one second.
        let mut deadline = (ts.saturating_sub(u64::try_from(current).unwrap_or(0)))
            .saturating_add(u64::try_from(shorter).unwrap_or(0));
        if deadline < now {
            deadline = now;
            if shorter != 0 {
                shorter = 1;
            }
        }
        let m = meta_mut(obj);
        m.insert("deletionTimestamp".into(), json!(ids::rfc3339(deadline)));
        m.insert("deletionGracePeriodSeconds".into(), json!(shorter));
        return Ok(Some(shorter));
    }
    let m = meta_mut(obj);
    m.insert(
        "deletionTimestamp".into(),
        json!(ids::rfc3339(
            now.saturating_add(u64::try_from(period).unwrap_or(0))
        )),
    );
    m.insert("deletionGracePeriodSeconds".into(), json!(period));
    bump_generation(m);
    Ok(Some(period))
}

/// Decides what deleting `obj` does, for kinds that use the generic deletion; `now` is in
/// seconds since the epoch.
pub fn decide(strategy: &dyn Strategy, obj: &Value, opts: &DeleteOptions, now: u64) -> Decision {
    let mut next = obj.clone();
    let Ok(graceful) = before_delete(strategy, &mut next, opts.grace_period, now) else {
        return Decision::Pending;
    };
    // The options may add or drop the garbage collector's finalizers, even on an object
    // already being deleted (unless a graceful deletion is pending, above).
    if let Some(fins) = gc_finalizers(&finalizers(&next), opts.propagation, strategy.gc_policy()) {
        let m = meta_mut(&mut next);
        if fins.is_empty() {
            m.shift_remove("finalizers");
        } else {
            m.insert("finalizers".into(), json!(fins));
        }
    }
    let pending_finalizers = !finalizers(&next).is_empty();
    match graceful {
        None if !pending_finalizers => return Decision::Remove,
        None => mark_as_deleting(&mut next, now),
        Some(0) if !pending_finalizers => return Decision::MarkThenRemove(next),
        Some(_) => {}
    }
    strategy.on_deleting(&mut next);
    if next == *obj {
        Decision::Unchanged
    } else {
        Decision::Mark(next)
    }
}

/// Decides what deleting `obj` does for kinds with their own deletion (Namespaces, CRDs):
/// the first delete sets the timestamp, adds the kind's finalizer and its marks without a
/// grace period or generation bump; later ones take the generic path, except that a
/// namespace still being emptied refuses them.
pub fn decide_own(
    strategy: &dyn Strategy,
    obj: &Value,
    opts: &DeleteOptions,
    now: u64,
) -> ApiResult<Decision> {
    if is_deleting(obj) {
        if strategy.graceful_delete(obj) {
            let name = meta_str(obj, "name").unwrap_or_default();
            return Err(ApiError::conflict_msg(
                Target {
                    group: "",
                    plural: "namespaces",
                    name,
                },
                "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
            ));
        }
        return Ok(decide(strategy, obj, opts, now));
    }
    let mut fins = finalizers(obj);
    if let Some(gc) = gc_finalizers(&fins, opts.propagation, strategy.gc_policy()) {
        fins = gc;
    }
    if let Some(f) = strategy.deletion_finalizer()
        && !fins.iter().any(|x| x == f)
    {
        fins.push(f.to_owned());
    }
    let mut next = obj.clone();
    {
        let m = meta_mut(&mut next);
        m.insert("deletionTimestamp".into(), json!(ids::rfc3339(now)));
        if !fins.is_empty() {
            m.insert("finalizers".into(), json!(fins));
        }
    }
    strategy.on_deleting(&mut next);
    Ok(Decision::Mark(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Crds, Generational, Namespaces, Plain, Pods};

    /// 2025-01-01T00:00:00Z.
    const NOW: u64 = 1_735_689_600;
    const NOW_TEXT: &str = "2025-01-01T00:00:00Z";

    fn with(f: impl FnOnce(&mut DeleteOptions)) -> DeleteOptions {
        let mut o = DeleteOptions::default();
        f(&mut o);
        o
    }

    #[test]
    fn finalizers_keep_the_object_and_bump_generation_once() {
        let obj = json!({"metadata": {"name": "a", "generation": 3, "finalizers": ["x/y"]}});
        let Decision::Mark(marked) = decide(&Generational, &obj, &DeleteOptions::default(), NOW)
        else {
            panic!("kept with its finalizer")
        };
        assert_eq!(marked["metadata"]["generation"], 4);
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(marked["metadata"]["deletionTimestamp"], NOW_TEXT);
        // Deleting again changes nothing.
        assert_eq!(
            decide(&Generational, &marked, &DeleteOptions::default(), NOW + 60),
            Decision::Unchanged
        );
    }

    #[test]
    fn without_finalizers_objects_go_at_once_whatever_the_grace_period() {
        let obj = json!({"metadata": {"name": "a"}});
        assert_eq!(
            decide(&Plain, &obj, &with(|o| o.grace_period = Some(30)), NOW),
            Decision::Remove
        );
    }

    #[test]
    fn orphan_and_foreground_add_their_finalizer_even_alone() {
        let obj = json!({"metadata": {"name": "a"}});
        for (p, f) in [
            (Propagation::Orphan, ORPHAN),
            (Propagation::Foreground, FOREGROUND),
        ] {
            let Decision::Mark(m) = decide(&Plain, &obj, &with(|o| o.propagation = Some(p)), NOW)
            else {
                panic!("{f} keeps the object")
            };
            assert_eq!(m["metadata"]["finalizers"], json!([f]));
        }
        // Background on an object held only by `orphan` lets it go.
        let held = json!({"metadata": {"name": "a", "finalizers": [ORPHAN]}});
        let bg = with(|o| o.propagation = Some(Propagation::Background));
        assert_eq!(decide(&Plain, &held, &bg, NOW), Decision::Remove);
        // Kinds without garbage collection (Events) never get them.
        assert_eq!(
            gc_finalizers(&[], Some(Propagation::Orphan), GcPolicy::Unsupported),
            None
        );
    }

    #[test]
    fn scheduled_pods_go_gracefully_and_a_second_delete_only_shortens() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}});
        let Decision::Mark(first) = decide(&Pods, &pod, &DeleteOptions::default(), NOW) else {
            panic!("a scheduled pod waits for its kubelet")
        };
        assert_eq!(first["metadata"]["deletionGracePeriodSeconds"], 30);
        assert_eq!(
            first["metadata"]["deletionTimestamp"],
            "2025-01-01T00:00:30Z"
        );
        // Same or longer: pending, nothing written.
        let again = with(|o| o.grace_period = Some(45));
        assert_eq!(decide(&Pods, &first, &again, NOW + 1), Decision::Pending);
        // Shorter: the deadline moves back by the difference.
        let Decision::Mark(shorter) =
            decide(&Pods, &first, &with(|o| o.grace_period = Some(10)), NOW + 1)
        else {
            panic!("shortened")
        };
        assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 10);
        assert_eq!(
            shorter["metadata"]["deletionTimestamp"],
            "2025-01-01T00:00:10Z"
        );
        // Zero: written, then removed.
        let zero = decide(&Pods, &first, &with(|o| o.grace_period = Some(0)), NOW + 1);
        assert!(matches!(zero, Decision::MarkThenRemove(_)));
        // An unscheduled pod has no grace period at all.
        let unscheduled = json!({"metadata": {"name": "p"}, "spec": {}});
        let Decision::MarkThenRemove(gone) =
            decide(&Pods, &unscheduled, &DeleteOptions::default(), NOW)
        else {
            panic!("unscheduled pods go at once")
        };
        assert_eq!(gone["metadata"]["deletionGracePeriodSeconds"], 0);
    }

    #[test]
    fn preconditions_word_uid_and_version_differently() {
        let obj = json!({"metadata": {"name": "a", "uid": "u1", "resourceVersion": "5"}});
        let uid = with(|o| o.precondition_uid = Some("u2".into()));
        let e = check_preconditions("", "ConfigMap", &obj, &uid).unwrap_err();
        assert!(
            e.message
                .ends_with("The object might have been deleted and then recreated")
        );
        let rv = with(|o| o.precondition_rv = Some("4".into()));
        let e = check_preconditions("", "ConfigMap", &obj, &rv).unwrap_err();
        assert!(e.message.ends_with("The object might have been modified"));
    }

    #[test]
    fn crds_and_namespaces_have_their_own_deletion() {
        let crd = json!({"metadata": {"name": "c", "generation": 1}});
        let Ok(Decision::Mark(m)) = decide_own(&Crds, &crd, &DeleteOptions::default(), NOW) else {
            panic!("a CRD is kept for cleanup")
        };
        assert_eq!(m["metadata"]["generation"], 1);
        assert!(m["metadata"].get("deletionGracePeriodSeconds").is_none());
        let ns = json!({"metadata": {"name": "n", "deletionTimestamp": NOW_TEXT}, "spec": {"finalizers": ["kubernetes"]}});
        let e = decide_own(&Namespaces, &ns, &DeleteOptions::default(), NOW).unwrap_err();
        assert_eq!(e.code, 409);
    }
}

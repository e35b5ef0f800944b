//! The generic rules of deletion, for every kind: preconditions, the garbage collector's
//! finalizers, marking an object as being deleted (with its generation bump) and when an
//! object really leaves storage.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Target};
use crate::meta::{finalizers, is_deleting, meta_mut, meta_str};
use crate::registry::options::{DeleteOptions, Propagation};
use crate::registry::strategy::Strategy;

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
    /// Leave it as it is (its deletion is already under way).
    Unchanged,
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
/// change. The explicit option wins, then a policy finalizer already on the object.
pub fn gc_finalizers(current: &[String], propagation: Option<Propagation>) -> Option<Vec<String>> {
    let has = |f: &str| current.iter().any(|x| x == f);
    let orphan = match propagation {
        Some(p) => p == Propagation::Orphan,
        None => current
            .iter()
            .find(|f| *f == ORPHAN || *f == FOREGROUND)
            .is_some_and(|f| f == ORPHAN),
    };
    let foreground = match propagation {
        Some(p) => p == Propagation::Foreground,
        None => has(FOREGROUND),
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

/// Marks an object as being deleted: the deletion timestamp (kept when already set), a
/// zero grace period, and one generation bump the first time.
pub fn mark_as_deleting(obj: &mut Value, now: &str) {
    let first = !is_deleting(obj);
    let m = meta_mut(obj);
    if first {
        if let Some(g) = m
            .get("generation")
            .and_then(Value::as_i64)
            .filter(|g| *g > 0)
        {
            m.insert("generation".into(), json!(g + 1));
        }
        m.insert("deletionTimestamp".into(), json!(now));
    }
    m.insert("deletionGracePeriodSeconds".into(), json!(0));
}

/// Decides what deleting `obj` does, for kinds that use the generic deletion.
pub fn decide(strategy: &dyn Strategy, obj: &Value, opts: &DeleteOptions, now: &str) -> Decision {
    let current = finalizers(obj);
    let gc = gc_finalizers(&current, opts.propagation);
    let pending = !current.is_empty();
    if !pending && gc.is_none() {
        return Decision::Remove;
    }
    let mut next = obj.clone();
    let fins = gc.unwrap_or(current);
    if fins.is_empty() {
        return Decision::Remove;
    }
    meta_mut(&mut next).insert("finalizers".into(), json!(fins));
    mark_as_deleting(&mut next, now);
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
    now: &str,
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
    if let Some(gc) = gc_finalizers(&fins, opts.propagation) {
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
        m.insert("deletionTimestamp".into(), json!(now));
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
    use crate::registry::strategy::{Crds, Generational, Namespaces, Plain};

    const NOW: &str = "2025-01-01T00:00:00Z";

    #[test]
    fn finalizers_keep_the_object_and_bump_generation_once() {
        let obj = json!({"metadata": {"name": "a", "generation": 3, "finalizers": ["x/y"]}});
        let Decision::Mark(marked) = decide(&Generational, &obj, &DeleteOptions::default(), NOW)
        else {
            panic!("kept with its finalizer")
        };
        assert_eq!(marked["metadata"]["generation"], 4);
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(marked["metadata"]["deletionTimestamp"], NOW);
        // Deleting again changes nothing.
        assert_eq!(
            decide(
                &Generational,
                &marked,
                &DeleteOptions::default(),
                "2030-01-01T00:00:00Z"
            ),
            Decision::Unchanged
        );
    }

    #[test]
    fn without_finalizers_objects_go_at_once() {
        let obj = json!({"metadata": {"name": "a"}});
        assert_eq!(
            decide(&Plain, &obj, &DeleteOptions::default(), NOW),
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
            let opts = DeleteOptions {
                propagation: Some(p),
                ..Default::default()
            };
            let Decision::Mark(m) = decide(&Plain, &obj, &opts, NOW) else {
                panic!("{f} keeps the object")
            };
            assert_eq!(m["metadata"]["finalizers"], json!([f]));
        }
        // Background on an object held only by `orphan` lets it go.
        let held = json!({"metadata": {"name": "a", "finalizers": [ORPHAN]}});
        let bg = DeleteOptions {
            propagation: Some(Propagation::Background),
            ..Default::default()
        };
        assert_eq!(decide(&Plain, &held, &bg, NOW), Decision::Remove);
    }

    #[test]
    fn preconditions_word_uid_and_version_differently() {
        let obj = json!({"metadata": {"name": "a", "uid": "u1", "resourceVersion": "5"}});
        let uid = DeleteOptions {
            precondition_uid: Some("u2".into()),
            ..Default::default()
        };
        let e = check_preconditions("", "ConfigMap", &obj, &uid).unwrap_err();
        assert!(
            e.message
                .ends_with("The object might have been deleted and then recreated")
        );
        let rv = DeleteOptions {
            precondition_rv: Some("4".into()),
            ..Default::default()
        };
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
        let ns = json!({"metadata": {"name": "n", "deletionTimestamp": NOW}, "spec": {"finalizers": ["kubernetes"]}});
        let e = decide_own(&Namespaces, &ns, &DeleteOptions::default(), NOW).unwrap_err();
        assert_eq!(e.code, 409);
    }
}

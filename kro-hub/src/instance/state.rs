//! The instance's status: one phase per resource, folded into kro's
//! `state` and conditions. The rule is that status never lies: ACTIVE only
//! when every included resource is ready, IN_PROGRESS says what is awaited,
//! ERROR names the resource and the API server's message.

use serde_json::{Value, json};

use crate::conditions::Condition;

/// Where one resource of the graph stands in this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Applied (or read, for an external reference) and its readyWhen holds.
    Ready,
    /// Applied, but a readyWhen expression is not true yet.
    NotReady(String),
    /// Waiting on these resources, not yet ready or not yet observed.
    Waiting(Vec<String>),
    /// An external object that does not exist (yet).
    ExternalMissing(String),
    /// includeWhen is false, or a dependency was skipped.
    Skipped,
    /// Rendering, applying or evaluating failed.
    Failed(String),
}

/// One resource's outcome.
#[derive(Debug, Clone)]
pub struct ResourceState {
    /// Resource id.
    pub id: String,
    /// Its phase.
    pub phase: Phase,
}

/// kro's instance states.
pub const ACTIVE: &str = "ACTIVE";
/// Some resource is not ready yet.
pub const IN_PROGRESS: &str = "IN_PROGRESS";
/// Some resource failed.
pub const ERROR: &str = "ERROR";
/// The instance is being deleted.
pub const DELETING: &str = "DELETING";

/// The instance's `state` and conditions from its resources' phases.
pub fn summarize(
    states: &[ResourceState],
    watch_gaps: &[String],
    generation: Option<i64>,
) -> (String, Vec<Condition>) {
    let failed: Vec<String> = states
        .iter()
        .filter_map(|s| match &s.phase {
            Phase::Failed(m) => Some(format!("resource {}: {m}", s.id)),
            _ => None,
        })
        .collect();
    let waiting: Vec<String> = states
        .iter()
        .filter_map(|s| match &s.phase {
            Phase::NotReady(expr) => Some(format!("{} (readyWhen {expr} is not true yet)", s.id)),
            Phase::Waiting(deps) => Some(format!("{} (waiting for {})", s.id, deps.join(", "))),
            Phase::ExternalMissing(what) => {
                Some(format!("{} (external object {what} not found)", s.id))
            }
            _ => None,
        })
        .collect();
    let unresolved = states
        .iter()
        .any(|s| matches!(s.phase, Phase::Waiting(_) | Phase::ExternalMissing(_)));
    let managed = Condition::new(
        "InstanceManaged",
        true,
        "Managed",
        "instance is properly managed with finalizers and labels",
        generation,
    );
    let graph = if !failed.is_empty() {
        Condition::new(
            "GraphResolved",
            false,
            "ResolutionFailed",
            failed.join("; "),
            generation,
        )
    } else if unresolved {
        Condition::new(
            "GraphResolved",
            false,
            "Waiting",
            format!("waiting for {}", waiting.join(", ")),
            generation,
        )
    } else {
        Condition::new(
            "GraphResolved",
            true,
            "Resolved",
            "runtime graph created and all resources resolved",
            generation,
        )
    };
    let (state, resources, ready) = if !failed.is_empty() {
        let msg = failed.join("; ");
        (
            ERROR,
            Condition::new(
                "ResourcesReady",
                false,
                "ResourceError",
                msg.clone(),
                generation,
            ),
            Condition::new("Ready", false, "ResourceError", msg, generation),
        )
    } else if !waiting.is_empty() {
        let msg = format!("waiting for {}", waiting.join(", "));
        (
            IN_PROGRESS,
            Condition::new("ResourcesReady", false, "NotReady", msg.clone(), generation),
            Condition::new("Ready", false, "NotReady", msg, generation),
        )
    } else {
        (
            ACTIVE,
            Condition::new(
                "ResourcesReady",
                true,
                "AllResourcesReady",
                "all resources are created and ready",
                generation,
            ),
            Condition::new("Ready", true, "Ready", "", generation),
        )
    };
    let watches = if watch_gaps.is_empty() {
        Condition::new(
            "WatchesHealthy",
            true,
            "AllWatchesSynced",
            "changes to all watched kinds are detected",
            generation,
        )
    } else {
        Condition::new(
            "WatchesHealthy",
            false,
            "WatchNotStarted",
            format!(
                "kinds not watched (changes are seen only at resync): {}",
                watch_gaps.join(", ")
            ),
            generation,
        )
    };
    (
        state.to_owned(),
        vec![managed, graph, resources, watches, ready],
    )
}

/// The status object: the RGD's status fields, then `state` and `conditions`.
pub fn status_object(fields: Value, state: &str, conditions: &[Condition]) -> Value {
    let mut status = match fields {
        Value::Object(map) => Value::Object(map),
        _ => json!({}),
    };
    status["state"] = json!(state);
    status["conditions"] = json!(conditions);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: &str, phase: Phase) -> ResourceState {
        ResourceState {
            id: id.into(),
            phase,
        }
    }

    #[test]
    fn active_only_when_everything_included_is_ready() {
        let (state, conds) = summarize(
            &[st("a", Phase::Ready), st("b", Phase::Skipped)],
            &[],
            Some(2),
        );
        assert_eq!(state, ACTIVE);
        assert!(conds.iter().all(|c| c.is_true()));
        assert!(conds.iter().all(|c| c.observed_generation == Some(2)));
    }

    #[test]
    fn in_progress_names_what_is_awaited() {
        let (state, conds) = summarize(
            &[
                st(
                    "deployment",
                    Phase::NotReady("${deployment.status.availableReplicas == 3}".into()),
                ),
                st("service", Phase::Waiting(vec!["deployment".into()])),
            ],
            &[],
            None,
        );
        assert_eq!(state, IN_PROGRESS);
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert!(
            ready.message.contains("deployment (readyWhen"),
            "{}",
            ready.message
        );
        assert!(ready.message.contains("service (waiting for deployment)"));
    }

    #[test]
    fn error_names_the_resource_and_message() {
        let (state, conds) = summarize(
            &[
                st("a", Phase::Ready),
                st("cm", Phase::Failed("422 Invalid: bad name".into())),
            ],
            &["apps/v1 Deployment".to_owned()],
            None,
        );
        assert_eq!(state, ERROR);
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.message, "resource cm: 422 Invalid: bad name");
        let watches = conds.iter().find(|c| c.type_ == "WatchesHealthy").unwrap();
        assert!(!watches.is_true() && watches.message.contains("apps/v1 Deployment"));
    }
}

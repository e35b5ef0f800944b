//! The progressive rollout of one placed instance, as a state machine over
//! `status.rollout`. Pure: the instance pass calls [`begin`] to learn what
//! to do with each selected cluster, runs the member passes, then calls
//! [`advance`] with what they reported. Everything a rollout needs to go on
//! lives in the status, so it survives a hub restart at any point.
//!
//! What rolls out is a *target*: the RGD's graph revision and the hash of
//! the instance's spec. A new target starts a new rollout (its `revision`
//! counts up); the waves of `spec.rollout` are then taken in order. Inside
//! the current wave at most `maxConcurrency` clusters are in flight
//! (updated, not yet Ready at the target); a cluster not yet reached keeps
//! its copy untouched. A wave is done once every cluster in it is Ready at
//! the target (or failed, within `maxFailures`) and has stayed so for
//! `minReadySeconds`. A Ready from an earlier revision never counts: a
//! cluster is Ready at the target only when its entry's `revision` is the
//! rollout's.
//!
//! The last target that completed is kept in `stable` (its spec included),
//! so a rollback can render it again.

use std::collections::{BTreeMap, BTreeSet};

use kro_core::rollout::{OnFailure, RolloutPolicy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::aggregate::{self, ClusterEntry};

/// Annotation on an instance that holds its rollout after the current wave.
pub const PAUSED_ANNOTATION: &str = "hub.kro.run/rollout-paused";

/// Rollout states, as `status.rollout.state`.
pub const PROGRESSING: &str = "Progressing";
/// Every wave is done.
pub const COMPLETE: &str = "Complete";
/// Held after a wave (`spec.rollout.paused` or the annotation).
pub const PAUSED: &str = "Paused";
/// Stopped on failures; the updated clusters keep the new revision.
pub const HALTED: &str = "Halted";
/// Stopped on failures; the updated clusters run the previous revision.
pub const ROLLED_BACK: &str = "RolledBack";

/// Wave states, as `status.rollout.waves[].state`.
pub const WAVE_PENDING: &str = "Pending";
/// The wave has started.
pub const WAVE_PROGRESSING: &str = "Progressing";
/// Every cluster of the wave is done.
pub const WAVE_READY: &str = "Ready";
/// The wave's failures stopped the rollout.
pub const WAVE_FAILED: &str = "Failed";

/// `status.rollout`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Counts the targets this instance has rolled out, from 1.
    pub revision: i64,
    /// The RGD's graph revision of the target.
    pub graph_revision: i64,
    /// The hash of the instance spec of the target.
    pub spec_hash: String,
    /// One of the rollout states above.
    pub state: String,
    /// The first wave not done, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_wave: Option<String>,
    /// What the rollout is doing or why it stopped.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Every wave, in order.
    #[serde(default)]
    pub waves: Vec<WaveStatus>,
    /// Clusters that failed in this rollout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    /// The last target that completed, to roll back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<Stable>,
}

/// `status.rollout.waves[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveStatus {
    /// The wave's name.
    pub name: String,
    /// One of the wave states above.
    pub state: String,
    /// The selected clusters in this wave.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Those already given the target.
    #[serde(default)]
    pub updated: Vec<String>,
    /// When its first cluster was given the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Since when every cluster of it has been Ready at the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_since: Option<String>,
}

/// `status.rollout.failures[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// The failed cluster.
    pub cluster: String,
    /// Its wave.
    pub wave: String,
    /// Why.
    pub message: String,
}

/// `status.rollout.stable`: the last target that completed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stable {
    /// Its rollout revision.
    pub revision: i64,
    /// Its graph revision.
    pub graph_revision: i64,
    /// Its spec hash.
    pub spec_hash: String,
    /// The instance spec it was rendered from.
    pub spec: Value,
}

/// What this pass rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The RGD's graph revision.
    pub graph_revision: i64,
    /// The hash of the instance's spec.
    pub spec_hash: String,
}

/// What a pass does on one selected cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Apply the target (and correct drift to it).
    Apply,
    /// Apply the stable revision (a rollback).
    Rollback,
    /// Leave the cluster's copy untouched; the message says why.
    Hold(String),
}

/// A change worth an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Warning rather than Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// The note.
    pub message: String,
}

/// Time in milliseconds since the epoch, with its RFC 3339 form for the
/// status (to the millisecond, so a `minReadySeconds` window is never cut
/// short by rounding).
#[derive(Debug, Clone, Copy)]
pub struct Now(pub i64);

impl Now {
    /// The current time.
    pub fn current() -> Self {
        Self(k8s_openapi::jiff::Timestamp::now().as_millisecond())
    }

    /// `seconds` since the epoch (tests).
    #[cfg(test)]
    pub fn at_second(seconds: i64) -> Self {
        Self(seconds * 1000)
    }

    fn stamp(self) -> String {
        k8s_openapi::jiff::Timestamp::from_millisecond(self.0)
            .map(|t| format!("{t:.3}"))
            .unwrap_or_default()
    }

    /// Milliseconds since `stamp`.
    fn since(self, stamp: Option<&str>) -> Option<i64> {
        let t: k8s_openapi::jiff::Timestamp = stamp?.parse().ok()?;
        Some(self.0 - t.as_millisecond())
    }
}

/// What one pass knows of the instance and its clusters.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'e> {
    /// The clusters' entries: as last written for [`begin`], as this pass
    /// made them for [`advance`].
    pub entries: &'e [ClusterEntry],
    /// The instance's generation.
    pub generation: Option<i64>,
    /// Whether the rollout holds after its current wave.
    pub paused: bool,
    /// The time of the pass.
    pub now: Now,
}

/// The rollout status last written for the instance.
pub fn read(status: Option<&Value>) -> Option<RolloutStatus> {
    status
        .and_then(|s| s.get(kro_core::crd::ROLLOUT_STATUS_FIELD))
        .and_then(|r| serde_json::from_value(r.clone()).ok())
}

/// Whether the cluster of `entry` does not answer. A rollout skips it,
/// neither waiting for it nor counting it as failed (a dead member never
/// blocks the others); it gets the revision of its wave when it answers.
fn unreachable(entry: &ClusterEntry) -> bool {
    entry.state == aggregate::UNREACHABLE
}

/// Whether `entry` runs rollout revision `revision` and is Ready at
/// `generation`.
pub fn ready_at_revision(entry: &ClusterEntry, revision: i64, generation: Option<i64>) -> bool {
    entry.revision == Some(revision) && entry.ready_at(generation)
}

/// Starts or continues the rollout of `target`: the status to go on from
/// and what to do with each of `clusters` (name and labels, the selected
/// ones). `entries` are the clusters' entries as last written.
pub fn begin<'c>(
    policy: &RolloutPolicy,
    previous: Option<RolloutStatus>,
    target: &Target,
    clusters: impl IntoIterator<Item = (&'c str, &'c BTreeMap<String, String>)> + Clone,
    pass: &Pass<'_>,
) -> (RolloutStatus, BTreeMap<String, Step>, Vec<Transition>) {
    let Pass {
        entries,
        generation,
        paused,
        now,
    } = *pass;
    let mut transitions = Vec::new();
    let mut status = match previous {
        Some(p) if p.graph_revision == target.graph_revision && p.spec_hash == target.spec_hash => {
            p
        }
        previous => {
            let revision = previous.as_ref().map_or(1, |p| p.revision + 1);
            transitions.push(Transition {
                warning: false,
                reason: "RolloutStarted",
                message: format!(
                    "rolling out revision {revision} (graph revision {}) in {} wave(s)",
                    target.graph_revision,
                    policy.waves.len()
                ),
            });
            RolloutStatus {
                revision,
                graph_revision: target.graph_revision,
                spec_hash: target.spec_hash.clone(),
                state: PROGRESSING.to_owned(),
                stable: previous.and_then(|p| p.stable),
                ..RolloutStatus::default()
            }
        }
    };
    // Waves are assigned afresh each pass: the placement or a cluster's
    // labels may have changed. What a wave did is kept by its name.
    let assigned = policy.assign(clusters.clone());
    let mut waves = Vec::new();
    for (wave, names) in policy.waves.iter().zip(assigned) {
        let mut w = status
            .waves
            .iter()
            .find(|w| w.name == wave.name)
            .cloned()
            .unwrap_or_else(|| WaveStatus {
                name: wave.name.clone(),
                state: WAVE_PENDING.to_owned(),
                ..WaveStatus::default()
            });
        w.updated.retain(|c| names.contains(c));
        w.clusters = names;
        waves.push(w);
    }
    status.waves = waves;

    let entry = |name: &str| entries.iter().find(|e| e.name == name);
    let failed: BTreeSet<String> = status.failures.iter().map(|f| f.cluster.clone()).collect();
    let mut steps = BTreeMap::new();
    let halted_at = status
        .waves
        .iter()
        .find(|w| w.state == WAVE_FAILED)
        .map(|w| w.name.clone())
        .unwrap_or_default();
    match status.state.as_str() {
        HALTED | ROLLED_BACK => {
            let step = if status.state == HALTED {
                Step::Apply
            } else {
                Step::Rollback
            };
            for w in &status.waves {
                for c in &w.clusters {
                    let s = if w.updated.contains(c) {
                        step.clone()
                    } else {
                        Step::Hold(format!(
                            "the rollout of revision {} stopped at wave {halted_at}: not updated",
                            status.revision
                        ))
                    };
                    steps.insert(c.clone(), s);
                }
            }
        }
        COMPLETE => {
            // A cluster that joins after the rollout completed gets the
            // target at once: it is the stable revision now.
            for w in &mut status.waves {
                for c in &w.clusters {
                    steps.insert(c.clone(), Step::Apply);
                    if !w.updated.contains(c) {
                        w.updated.push(c.clone());
                    }
                }
            }
        }
        _ => {
            let mut reached = true;
            let mut waiting_for = String::new();
            let mut any_done = false;
            for w in &mut status.waves {
                if !reached {
                    for c in &w.clusters {
                        steps.insert(
                            c.clone(),
                            Step::Hold(format!(
                                "at an earlier revision; revision {} waits for wave {waiting_for}",
                                status.revision
                            )),
                        );
                    }
                    continue;
                }
                if w.state == WAVE_READY {
                    any_done |= !w.clusters.is_empty();
                    for c in &w.clusters {
                        steps.insert(c.clone(), Step::Apply);
                        if !w.updated.contains(c) {
                            w.updated.push(c.clone());
                        }
                    }
                    continue;
                }
                // The current wave.
                reached = false;
                waiting_for = w.name.clone();
                if w.started_at.is_none() {
                    // Pause holds the rollout after a wave: the first one
                    // always goes.
                    if paused && any_done {
                        status.state = PAUSED.to_owned();
                        for c in &w.clusters {
                            steps.insert(
                                c.clone(),
                                Step::Hold(format!(
                                    "the rollout of revision {} is paused before wave {}",
                                    status.revision, w.name
                                )),
                            );
                        }
                        continue;
                    }
                    w.started_at = Some(now.stamp());
                    w.state = WAVE_PROGRESSING.to_owned();
                    status.state = PROGRESSING.to_owned();
                    transitions.push(Transition {
                        warning: false,
                        reason: "WaveStarted",
                        message: format!(
                            "revision {}: wave {} started ({} cluster(s))",
                            status.revision,
                            w.name,
                            w.clusters.len()
                        ),
                    });
                }
                let in_flight = w
                    .updated
                    .iter()
                    .filter(|c| !failed.contains(*c))
                    .filter(|c| {
                        !entry(c).is_some_and(|e| {
                            ready_at_revision(e, status.revision, generation) || unreachable(e)
                        })
                    })
                    .count();
                let mut slots = policy
                    .in_flight_limit(w.clusters.len())
                    .saturating_sub(in_flight);
                for c in &w.clusters {
                    if w.updated.contains(c) {
                        steps.insert(c.clone(), Step::Apply);
                    } else if slots > 0 {
                        slots -= 1;
                        w.updated.push(c.clone());
                        steps.insert(c.clone(), Step::Apply);
                    } else {
                        steps.insert(
                            c.clone(),
                            Step::Hold(format!(
                                "waiting for a slot in wave {} (maxConcurrency)",
                                w.name
                            )),
                        );
                    }
                }
            }
        }
    }
    for w in &mut status.waves {
        w.updated.sort();
    }
    (status, steps, transitions)
}

/// Moves the rollout on with what this pass's entries say: failures,
/// wave completion after `minReadySeconds`, the end of the rollout. `spec`
/// is the instance's spec (kept as `stable` when the rollout completes).
/// Returns the transitions and, while a wave waits out `minReadySeconds`,
/// how many seconds remain.
pub fn advance(
    policy: &RolloutPolicy,
    status: &mut RolloutStatus,
    pass: &Pass<'_>,
    spec: &Value,
) -> (Vec<Transition>, Option<u64>) {
    let Pass {
        entries,
        generation,
        paused,
        now,
    } = *pass;
    let mut transitions = Vec::new();
    let mut wait = None;
    let revision = status.revision;
    let entry = |name: &str| entries.iter().find(|e| e.name == name);
    if matches!(status.state.as_str(), HALTED | ROLLED_BACK) {
        status.current_wave = status
            .waves
            .iter()
            .find(|w| w.state == WAVE_FAILED)
            .map(|w| w.name.clone());
        return (transitions, wait);
    }
    let mut i = 0;
    while i < status.waves.len() {
        if status.waves[i].state == WAVE_READY {
            i += 1;
            continue;
        }
        let w = &mut status.waves[i];
        if w.started_at.is_none() && !w.clusters.is_empty() {
            break;
        }
        // Failures: a cluster given the target that reports an error, and,
        // past the deadline, every cluster not Ready at the target.
        let past_deadline = now
            .since(w.started_at.as_deref())
            .is_some_and(|ms| ms >= policy.progress_deadline_seconds as i64 * 1000);
        for c in &w.clusters {
            if status.failures.iter().any(|f| &f.cluster == c) {
                continue;
            }
            let e = entry(c);
            if e.is_some_and(unreachable) {
                continue;
            }
            let ready = e.is_some_and(|e| ready_at_revision(e, revision, generation));
            let errored = w.updated.contains(c)
                && e.is_some_and(|e| e.revision == Some(revision) && e.state == aggregate::ERROR);
            let message = if errored {
                e.map(|e| e.message.clone()).unwrap_or_default()
            } else if past_deadline && !ready {
                format!(
                    "not Ready within progressDeadlineSeconds ({}s){}",
                    policy.progress_deadline_seconds,
                    e.filter(|e| !e.message.is_empty())
                        .map(|e| format!(": {}: {}", e.state, e.message))
                        .unwrap_or_default()
                )
            } else {
                continue;
            };
            transitions.push(Transition {
                warning: true,
                reason: "ClusterFailed",
                message: format!(
                    "revision {revision}, wave {}: cluster {c} failed: {message}",
                    w.name
                ),
            });
            status.failures.push(Failure {
                cluster: c.clone(),
                wave: w.name.clone(),
                message,
            });
        }
        if status.failures.len() > policy.max_failures as usize {
            w.state = WAVE_FAILED.to_owned();
            let first = status
                .failures
                .iter()
                .find(|f| f.wave == w.name)
                .or(status.failures.first())
                .cloned()
                .unwrap_or_default();
            let can_roll_back = status.stable.is_some();
            let (state, reason, what) = match policy.on_failure {
                OnFailure::Rollback if can_roll_back => (
                    ROLLED_BACK,
                    "RolledBack",
                    format!(
                        "the updated clusters are rolled back to revision {}",
                        status.stable.as_ref().map_or(0, |s| s.revision)
                    ),
                ),
                OnFailure::Rollback => (
                    HALTED,
                    "RolloutHalted",
                    "no earlier revision completed, so there is nothing to roll back to; the \
                     updated clusters keep this revision"
                        .to_owned(),
                ),
                OnFailure::Halt => (
                    HALTED,
                    "RolloutHalted",
                    "the updated clusters keep this revision".to_owned(),
                ),
            };
            status.state = state.to_owned();
            status.message = format!(
                "revision {revision} stopped at wave {}: cluster {} failed: {}; {what}",
                w.name, first.cluster, first.message
            );
            status.current_wave = Some(w.name.clone());
            transitions.push(Transition {
                warning: true,
                reason,
                message: status.message.clone(),
            });
            return (transitions, wait);
        }
        let done = w.clusters.iter().all(|c| {
            status.failures.iter().any(|f| &f.cluster == c)
                || entry(c)
                    .is_some_and(|e| ready_at_revision(e, revision, generation) || unreachable(e))
        });
        if !done {
            // Ready must hold for the whole window: it starts again.
            w.ready_since = None;
            break;
        }
        let since = match &w.ready_since {
            Some(s) => now.since(Some(s)).unwrap_or(0),
            None => {
                w.ready_since = Some(now.stamp());
                0
            }
        };
        let min = policy.min_ready_seconds as i64 * 1000;
        if since < min && !w.clusters.is_empty() {
            // Whole seconds, rounded up: the next pass finds the window over.
            wait = Some(((min - since) as u64).div_ceil(1000));
            break;
        }
        w.state = WAVE_READY.to_owned();
        if !w.clusters.is_empty() {
            transitions.push(Transition {
                warning: false,
                reason: "WaveReady",
                message: format!("revision {revision}: wave {} is Ready", w.name),
            });
        }
        i += 1;
        // The next wave starts on the next pass, unless held.
        if i < status.waves.len() && paused && !status.waves[i].clusters.is_empty() {
            break;
        }
    }
    let current = status.waves.iter().find(|w| w.state != WAVE_READY);
    status.current_wave = current.map(|w| w.name.clone());
    match current {
        None => {
            if status.state != COMPLETE {
                transitions.push(Transition {
                    warning: false,
                    reason: "RolloutComplete",
                    message: format!("revision {revision} is Ready on every cluster"),
                });
            }
            status.state = COMPLETE.to_owned();
            let skipped: Vec<&str> = entries
                .iter()
                .filter(|e| unreachable(e))
                .map(|e| e.name.as_str())
                .collect();
            status.message = if skipped.is_empty() {
                format!("revision {revision} is Ready on every cluster")
            } else {
                format!(
                    "revision {revision} is Ready on every cluster that answers; {} unreachable, \
                     updated when it answers",
                    skipped.join(", ")
                )
            };
            status.stable = Some(Stable {
                revision,
                graph_revision: status.graph_revision,
                spec_hash: status.spec_hash.clone(),
                spec: spec.clone(),
            });
        }
        Some(w) => {
            let ready = w
                .clusters
                .iter()
                .filter(|c| entry(c).is_some_and(|e| ready_at_revision(e, revision, generation)))
                .count();
            if paused && w.started_at.is_none() {
                if status.state != PAUSED {
                    transitions.push(Transition {
                        warning: false,
                        reason: "RolloutPaused",
                        message: format!("revision {revision}: paused before wave {}", w.name),
                    });
                }
                status.state = PAUSED.to_owned();
                status.message = format!("paused before wave {}", w.name);
            } else {
                status.state = PROGRESSING.to_owned();
                status.message = format!(
                    "wave {}: {ready}/{} cluster(s) Ready at revision {revision}",
                    w.name,
                    w.clusters.len()
                );
            }
        }
    }
    (transitions, wait)
}

/// The `Progressing` condition, as a Deployment's: True while rolling out
/// and once complete, False when stopped, Unknown when paused.
pub fn progressing_condition(status: &RolloutStatus) -> (Option<bool>, &'static str, String) {
    match status.state.as_str() {
        COMPLETE => (Some(true), "RolloutComplete", status.message.clone()),
        PAUSED => (None, "RolloutPaused", status.message.clone()),
        HALTED => {
            let deadline = status.failures.iter().any(|f| {
                f.message
                    .starts_with("not Ready within progressDeadlineSeconds")
            });
            let reason = if deadline {
                "ProgressDeadlineExceeded"
            } else {
                "RolloutHalted"
            };
            (Some(false), reason, status.message.clone())
        }
        ROLLED_BACK => (Some(false), "RolledBack", status.message.clone()),
        _ => (Some(true), "RolloutProgressing", status.message.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kro_core::rollout::{Rollout, validate};
    use serde_json::json;

    // The old positional form reads better in these tables of passes.
    #[allow(clippy::too_many_arguments)]
    fn begin<'c>(
        p: &RolloutPolicy,
        previous: Option<RolloutStatus>,
        target: &Target,
        clusters: impl IntoIterator<Item = (&'c str, &'c BTreeMap<String, String>)> + Clone,
        entries: &[ClusterEntry],
        generation: Option<i64>,
        paused: bool,
        now: Now,
    ) -> (RolloutStatus, BTreeMap<String, Step>, Vec<Transition>) {
        let pass = Pass {
            entries,
            generation,
            paused,
            now,
        };
        super::begin(p, previous, target, clusters, &pass)
    }

    fn advance(
        p: &RolloutPolicy,
        status: &mut RolloutStatus,
        entries: &[ClusterEntry],
        generation: Option<i64>,
        paused: bool,
        spec: &Value,
        now: Now,
    ) -> (Vec<Transition>, Option<u64>) {
        let pass = Pass {
            entries,
            generation,
            paused,
            now,
        };
        super::advance(p, status, &pass, spec)
    }

    fn policy(v: Value) -> RolloutPolicy {
        let r: Rollout = serde_json::from_value(v).expect("rollout");
        validate("web", &r, true).expect("valid")
    }

    fn labels(wave: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("wave".to_owned(), wave.to_owned())])
    }

    fn entry(name: &str, state: &str, revision: i64) -> ClusterEntry {
        ClusterEntry {
            name: name.to_owned(),
            state: state.to_owned(),
            observed_generation: Some(1),
            revision: Some(revision),
            ..ClusterEntry::default()
        }
    }

    fn two_waves() -> RolloutPolicy {
        policy(json!({
            "waves": [{"name": "one", "clusterSelector": {"matchLabels": {"wave": "1"}}}, {"name": "two"}],
            "minReadySeconds": 30, "progressDeadlineSeconds": 100
        }))
    }

    struct Fleet(Vec<(String, BTreeMap<String, String>)>);
    impl Fleet {
        fn new() -> Self {
            Fleet(vec![
                ("a".to_owned(), labels("1")),
                ("b".to_owned(), labels("1")),
                ("c".to_owned(), labels("2")),
                ("d".to_owned(), labels("2")),
            ])
        }
        fn iter(&self) -> impl Iterator<Item = (&str, &BTreeMap<String, String>)> + Clone {
            self.0.iter().map(|(n, l)| (n.as_str(), l))
        }
    }

    fn target(g: i64) -> Target {
        Target {
            graph_revision: g,
            spec_hash: "h".to_owned(),
        }
    }

    #[test]
    fn waves_go_in_order_and_wait_out_min_ready() {
        let p = two_waves();
        let fleet = Fleet::new();
        let (mut st, steps, tr) = begin(
            &p,
            None,
            &target(1),
            fleet.iter(),
            &[],
            Some(1),
            false,
            Now::at_second(1000),
        );
        assert_eq!(st.revision, 1);
        assert_eq!(steps["a"], Step::Apply);
        assert_eq!(steps["b"], Step::Apply);
        assert!(matches!(steps["c"], Step::Hold(_)), "{steps:?}");
        assert!(tr.iter().any(|t| t.reason == "WaveStarted"));
        // Wave one Ready at revision 1: the window starts.
        let ready = [entry("a", "Ready", 1), entry("b", "Ready", 1)];
        let (_, wait) = super::advance(
            &p,
            &mut st,
            &Pass {
                entries: &ready,
                generation: Some(1),
                paused: false,
                now: Now::at_second(1010),
            },
            &json!({}),
        );
        assert_eq!(wait, Some(30));
        assert_eq!(st.waves[0].state, WAVE_PROGRESSING);
        // Not long enough yet: wave two still held.
        let (mut st2, steps, _) = begin(
            &p,
            Some(st.clone()),
            &target(1),
            fleet.iter(),
            &ready,
            Some(1),
            false,
            Now::at_second(1020),
        );
        assert!(matches!(steps["c"], Step::Hold(_)));
        let (_, wait) = super::advance(
            &p,
            &mut st2,
            &Pass {
                entries: &ready,
                generation: Some(1),
                paused: false,
                now: Now::at_second(1020),
            },
            &json!({}),
        );
        assert_eq!(wait, Some(20));
        // Past the window: wave one Ready, wave two starts next pass.
        let (tr, _) = super::advance(
            &p,
            &mut st2,
            &Pass {
                entries: &ready,
                generation: Some(1),
                paused: false,
                now: Now::at_second(1040),
            },
            &json!({}),
        );
        assert!(tr.iter().any(|t| t.reason == "WaveReady"), "{tr:?}");
        assert_eq!(st2.current_wave.as_deref(), Some("two"));
        let (_, steps, _) = begin(
            &p,
            Some(st2),
            &target(1),
            fleet.iter(),
            &ready,
            Some(1),
            false,
            Now::at_second(1041),
        );
        assert_eq!(steps["c"], Step::Apply);
        assert_eq!(steps["d"], Step::Apply);
    }

    #[test]
    fn a_ready_from_an_earlier_revision_never_counts() {
        let p = two_waves();
        let fleet = Fleet::new();
        let (mut st, _, _) = begin(
            &p,
            None,
            &target(1),
            fleet.iter(),
            &[],
            Some(1),
            false,
            Now::at_second(0),
        );
        let old = [entry("a", "Ready", 0), entry("b", "Ready", 0)];
        super::advance(
            &p,
            &mut st,
            &Pass {
                entries: &old,
                generation: Some(1),
                paused: false,
                now: Now::at_second(50),
            },
            &json!({}),
        );
        assert_eq!(st.waves[0].state, WAVE_PROGRESSING);
        assert!(st.waves[0].ready_since.is_none());
    }

    #[test]
    fn max_concurrency_limits_clusters_in_flight() {
        let p = policy(json!({"maxConcurrency": 1}));
        let fleet = Fleet::new();
        let (st, steps, _) = begin(
            &p,
            None,
            &target(1),
            fleet.iter(),
            &[],
            Some(1),
            false,
            Now::at_second(0),
        );
        let applied: Vec<_> = steps.iter().filter(|(_, s)| **s == Step::Apply).collect();
        assert_eq!(applied.len(), 1, "{steps:?}");
        // Once "a" is Ready the next one moves.
        let (_, steps, _) = begin(
            &p,
            Some(st),
            &target(1),
            fleet.iter(),
            &[entry("a", "Ready", 1)],
            Some(1),
            false,
            Now::at_second(1),
        );
        assert_eq!(steps["b"], Step::Apply);
        assert!(matches!(steps["c"], Step::Hold(_)));
    }

    #[test]
    fn an_error_halts_and_rollback_needs_a_stable_revision() {
        let p = policy(json!({
            "waves": [{"name": "one", "clusterSelector": {"matchLabels": {"wave": "1"}}}, {"name": "two"}],
            "onFailure": "Rollback"
        }));
        let fleet = Fleet::new();
        // Revision 1 completes.
        let (mut st, _, _) = begin(
            &p,
            None,
            &target(1),
            fleet.iter(),
            &[],
            Some(1),
            false,
            Now::at_second(0),
        );
        let all: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| entry(n, "Ready", 1))
            .collect();
        advance(
            &p,
            &mut st,
            &all,
            Some(1),
            false,
            &json!({"image": "v1"}),
            Now::at_second(1),
        );
        let (mut st, _, _) = begin(
            &p,
            Some(st),
            &target(1),
            fleet.iter(),
            &all,
            Some(1),
            false,
            Now::at_second(2),
        );
        advance(
            &p,
            &mut st,
            &all,
            Some(1),
            false,
            &json!({"image": "v1"}),
            Now::at_second(2),
        );
        assert_eq!(st.state, COMPLETE);
        assert_eq!(
            st.stable.as_ref().map(|s| s.spec.clone()),
            Some(json!({"image": "v1"}))
        );
        // Revision 2 fails on "a".
        let (mut st, steps, _) = begin(
            &p,
            Some(st),
            &target(2),
            fleet.iter(),
            &all,
            Some(1),
            false,
            Now::at_second(3),
        );
        assert_eq!(st.revision, 2);
        assert!(matches!(steps["c"], Step::Hold(_)));
        let now = [
            entry("a", "Error", 2),
            entry("b", "Ready", 2),
            entry("c", "Ready", 1),
            entry("d", "Ready", 1),
        ];
        let (tr, _) = advance(
            &p,
            &mut st,
            &now,
            Some(1),
            false,
            &json!({"image": "v2"}),
            Now::at_second(4),
        );
        assert_eq!(st.state, ROLLED_BACK, "{st:?}");
        assert!(st.message.contains("cluster a failed"), "{}", st.message);
        assert!(tr.iter().any(|t| t.reason == "RolledBack"));
        let (_, steps, _) = begin(
            &p,
            Some(st.clone()),
            &target(2),
            fleet.iter(),
            &now,
            Some(1),
            false,
            Now::at_second(5),
        );
        assert_eq!(steps["a"], Step::Rollback);
        assert_eq!(steps["b"], Step::Rollback);
        assert!(matches!(steps["c"], Step::Hold(_)));
        // A new target starts over from the stable revision.
        let (st, _, _) = begin(
            &p,
            Some(st),
            &target(3),
            fleet.iter(),
            &now,
            Some(1),
            false,
            Now::at_second(6),
        );
        assert_eq!((st.revision, st.state.as_str()), (3, PROGRESSING));
        assert_eq!(st.stable.map(|s| s.revision), Some(1));
    }

    #[test]
    fn an_unreachable_cluster_is_skipped_not_failed() {
        let p = two_waves();
        let fleet = Fleet::new();
        let (mut st, _, _) = begin(
            &p,
            None,
            &target(1),
            fleet.iter(),
            &[],
            Some(1),
            false,
            Now::at_second(0),
        );
        let mut down = entry("b", aggregate::UNREACHABLE, 0);
        down.revision = None;
        let seen = [entry("a", "Ready", 1), down];
        // Past the deadline: b is not a failure, and the wave completes.
        advance(
            &p,
            &mut st,
            &seen,
            Some(1),
            false,
            &json!({}),
            Now::at_second(200),
        );
        assert!(st.failures.is_empty(), "{:?}", st.failures);
        advance(
            &p,
            &mut st,
            &seen,
            Some(1),
            false,
            &json!({}),
            Now::at_second(240),
        );
        assert_eq!(st.waves[0].state, WAVE_READY, "{st:?}");
        assert_eq!(st.state, PROGRESSING);
    }

    #[test]
    fn the_deadline_fails_clusters_that_are_not_ready() {
        let p = two_waves();
        let fleet = Fleet::new();
        let (mut st, _, _) = begin(
            &p,
            None,
            &target(1),
            fleet.iter(),
            &[],
            Some(1),
            false,
            Now::at_second(0),
        );
        let slow = [entry("a", "Ready", 1), entry("b", "InProgress", 1)];
        super::advance(
            &p,
            &mut st,
            &Pass {
                entries: &slow,
                generation: Some(1),
                paused: false,
                now: Now::at_second(50),
            },
            &json!({}),
        );
        assert_eq!(st.state, PROGRESSING);
        super::advance(
            &p,
            &mut st,
            &Pass {
                entries: &slow,
                generation: Some(1),
                paused: false,
                now: Now::at_second(100),
            },
            &json!({}),
        );
        assert_eq!(st.state, HALTED);
        assert_eq!(progressing_condition(&st).1, "ProgressDeadlineExceeded");
        assert_eq!(st.failures[0].cluster, "b");
    }

    #[test]
    fn pause_holds_after_the_current_wave() {
        let p = two_waves();
        let fleet = Fleet::new();
        // Paused from the start: the first wave still goes (pause holds
        // the rollout after a wave), then the rollout holds.
        let (mut st, steps, _) = begin(
            &p,
            None,
            &target(1),
            fleet.iter(),
            &[],
            Some(1),
            true,
            Now::at_second(1),
        );
        assert_eq!(steps["a"], Step::Apply);
        let ready = [entry("a", "Ready", 1), entry("b", "Ready", 1)];
        super::advance(
            &p,
            &mut st,
            &Pass {
                entries: &ready,
                generation: Some(1),
                paused: true,
                now: Now::at_second(2),
            },
            &json!({}),
        );
        super::advance(
            &p,
            &mut st,
            &Pass {
                entries: &ready,
                generation: Some(1),
                paused: true,
                now: Now::at_second(40),
            },
            &json!({}),
        );
        assert_eq!(st.waves[0].state, WAVE_READY);
        assert_eq!(st.state, PAUSED);
        let (_, steps, _) = begin(
            &p,
            Some(st),
            &target(1),
            fleet.iter(),
            &ready,
            Some(1),
            true,
            Now::at_second(41),
        );
        assert!(matches!(&steps["c"], Step::Hold(m) if m.contains("paused")));
    }
}

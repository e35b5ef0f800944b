//! When a pass's outcome is reported: its status, and its Events.
//!
//! **Progress is reported after a short hold, outcomes at once.** A new
//! instance's first pass finds its children just applied and not ready
//! yet; its next pass, a moment later, usually finds them ready. The hub
//! used to write both statuses: an `IN_PROGRESS` that lived for a fraction
//! of a second, then `ACTIVE`. Each write is a request to the API server,
//! a watch event for every client watching the kind (the hub included) and
//! an etcd revision; at a thousand instances the short-lived one was a
//! third of the hub's writes. So a status that only reports progress waits
//! up to [`HOLD`] from the first pass that held it: a later pass that finds
//! the instance ready, failed or deleting writes that at once (the held
//! report is never written), and one that finds it still in progress once
//! the hold is over writes the progress. The instance is re-queued for the
//! end of the hold, so a report is late by at most [`HOLD`], never lost.
//! Passes that also move a state machine kept in the status (a rollout)
//! are never held.
//!
//! **Events say what needs attention: failures, and the recovery from
//! one.** A Warning when an instance fails; a Normal `Ready` when an
//! instance that failed is ready again. An instance that converges without
//! failing gets no Event: its status says so, and an Event per instance
//! created would double the hub's writes for nothing a user acts on.
//!
//! Both live in memory: a restarted hub holds afresh (at worst one progress
//! report is late by one hold), and knows an instance failed before only if
//! its status still says so.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a progress report waits.
pub(super) const HOLD: Duration = Duration::from_secs(1);

/// What to do with a progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Write it now.
    Write,
    /// Keep it back; look at the instance again after this long.
    Hold(Duration),
}

/// Per instance (by uid): since when its progress report is held, and
/// whether it failed since it was last ready.
#[derive(Debug, Default)]
pub(super) struct Reports {
    held_since: Mutex<HashMap<String, Instant>>,
    failed: Mutex<HashSet<String>>,
}

impl Reports {
    /// Whether the progress report a pass of `uid` made at `now` waits.
    pub fn progress(&self, uid: &str, now: Instant) -> Verdict {
        let Ok(mut since) = self.held_since.lock() else {
            return Verdict::Write;
        };
        let first = *since.entry(uid.to_owned()).or_insert(now);
        let end = first + HOLD;
        if now < end {
            Verdict::Hold(end - now)
        } else {
            since.remove(uid);
            Verdict::Write
        }
    }

    /// `uid`'s status was written: no report is held any more.
    pub fn written(&self, uid: &str) {
        if let Ok(mut since) = self.held_since.lock() {
            since.remove(uid);
        }
    }

    /// `uid` failed (a Warning was published).
    pub fn failed(&self, uid: &str) {
        if let Ok(mut failed) = self.failed.lock() {
            failed.insert(uid.to_owned());
        }
    }

    /// `uid` is ready: whether it failed since it was last ready (then its
    /// recovery is worth an Event).
    pub fn recovered(&self, uid: &str) -> bool {
        self.failed
            .lock()
            .map(|mut failed| failed.remove(uid))
            .unwrap_or_default()
    }

    /// `uid`'s instance is gone.
    pub fn forget(&self, uid: &str) {
        self.written(uid);
        if let Ok(mut failed) = self.failed.lock() {
            failed.remove(uid);
        }
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.held_since.lock().map(|s| s.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_waits_out_the_hold_from_the_first_pass_that_held_it() {
        let reports = Reports::default();
        let t0 = Instant::now();
        assert_eq!(reports.progress("a", t0), Verdict::Hold(HOLD));
        // A later pass within the hold waits only for what is left of it.
        let later = t0 + HOLD / 4;
        assert_eq!(reports.progress("a", later), Verdict::Hold(HOLD - HOLD / 4));
        // Another instance has a hold of its own.
        assert_eq!(reports.progress("b", later), Verdict::Hold(HOLD));
        // Once the hold is over the report is written and the hold ends.
        assert_eq!(reports.progress("a", t0 + HOLD), Verdict::Write);
        assert_eq!(reports.held(), 1);
        // The next progress report of `a` is held afresh.
        let again = t0 + 3 * HOLD;
        assert_eq!(reports.progress("a", again), Verdict::Hold(HOLD));
    }

    #[test]
    fn a_written_status_ends_the_hold() {
        let reports = Reports::default();
        let t0 = Instant::now();
        assert_eq!(reports.progress("a", t0), Verdict::Hold(HOLD));
        reports.written("a");
        assert_eq!(reports.held(), 0);
        assert_eq!(
            reports.progress("a", t0 + HOLD / 2),
            Verdict::Hold(HOLD),
            "a new hold starts after a write"
        );
    }

    #[test]
    fn only_a_failed_instance_recovers_and_once() {
        let reports = Reports::default();
        assert!(!reports.recovered("a"), "never failed");
        reports.failed("a");
        reports.failed("a");
        assert!(reports.recovered("a"));
        assert!(!reports.recovered("a"), "recovered already");
        reports.failed("b");
        reports.forget("b");
        assert!(!reports.recovered("b"), "forgotten with its instance");
    }
}

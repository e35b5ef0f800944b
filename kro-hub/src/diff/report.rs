//! The plan `kro-hub diff` computes, and how it is printed. Pure.

use std::fmt::Write as _;

/// What would happen to one object (or one resource of the graph).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Created by the next pass.
    Create,
    /// Changed: the unified diff of the fields the hub owns.
    Change(String),
    /// Deleted, and why.
    Delete(String),
    /// Released (kro's labels removed, the object left), and why.
    Release(String),
    /// Not computable yet: the resource reads these resources, not yet
    /// observed (they do not exist yet, or lack the field read).
    Pending(Vec<String>),
    /// The hub would fail here, with the server's or the engine's words.
    Failed(String),
    /// Nothing changes, but the user should know (say, an external
    /// reference the hub waits for).
    Note(String),
}

/// One line of the plan, with what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What would happen.
    pub action: Action,
    /// `Kind namespace/name` of the object, or empty when not rendered.
    pub object: String,
    /// The graph's resource id.
    pub resource: String,
}

/// Where one cluster stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The cluster answered: these changes (empty: nothing to change).
    Reached(Vec<Change>),
    /// The cluster could not be asked: the plan for it is unknown.
    Unreachable(String),
}

/// The plan for one cluster: the hub (its own resources, or every
/// resource of an RGD without placement) or a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPlan {
    /// `hub`, or the member's Cluster name.
    pub cluster: String,
    /// Whether this is a member (printed as `cluster NAME`).
    pub member: bool,
    /// Said under the header, whatever the outcome (a paused member, a
    /// member leaving the placement).
    pub notes: Vec<String>,
    /// What would happen there.
    pub outcome: Outcome,
}

/// Everything `kro-hub diff` found for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `Kind namespace/name` of the instance.
    pub instance: String,
    /// One entry per cluster involved, the hub first, then by name.
    pub clusters: Vec<ClusterPlan>,
}

/// Exit code: nothing would change.
pub const EXIT_UNCHANGED: i32 = 0;
/// Exit code: something would change.
pub const EXIT_CHANGED: i32 = 1;
/// Exit code: the plan is incomplete (an error, or a cluster that did not
/// answer), as `kubectl diff` exits above 1 on errors.
pub const EXIT_ERROR: i32 = 2;

impl Plan {
    fn changes(&self) -> impl Iterator<Item = &Change> {
        self.clusters.iter().flat_map(|c| match &c.outcome {
            Outcome::Reached(changes) => changes.as_slice(),
            Outcome::Unreachable(_) => &[],
        })
    }

    /// How many clusters could not be asked.
    pub fn unreachable(&self) -> usize {
        self.clusters
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Unreachable(_)))
            .count()
    }

    /// Whether anything would be created, changed, deleted or released.
    pub fn has_changes(&self) -> bool {
        self.changes()
            .any(|c| !matches!(c.action, Action::Note(_) | Action::Failed(_)))
    }

    /// Whether the hub would fail somewhere.
    pub fn has_failures(&self) -> bool {
        self.changes()
            .any(|c| matches!(c.action, Action::Failed(_)))
    }

    /// The exit code: [`EXIT_ERROR`] when the plan is incomplete (a
    /// failure or an unreachable cluster, even with changes elsewhere: a
    /// script must not take a partial plan for the whole),
    /// [`EXIT_CHANGED`] when something would change, else
    /// [`EXIT_UNCHANGED`].
    pub fn exit_code(&self) -> i32 {
        if self.unreachable() > 0 || self.has_failures() {
            EXIT_ERROR
        } else if self.has_changes() {
            EXIT_CHANGED
        } else {
            EXIT_UNCHANGED
        }
    }

    /// The plan as text; with ANSI colours when `colour`.
    pub fn render(&self, colour: bool) -> String {
        let paint = |code: &str, text: &str| {
            if colour {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        let mut out = String::new();
        let (mut create, mut change, mut delete, mut pending) = (0, 0, 0, 0);
        for cluster in &self.clusters {
            let header = if cluster.member {
                format!("cluster {}", cluster.cluster)
            } else {
                cluster.cluster.clone()
            };
            let changes = match &cluster.outcome {
                Outcome::Unreachable(why) => {
                    let _ = writeln!(
                        out,
                        "{}",
                        paint("31", &format!("{header}: unreachable: {why}"))
                    );
                    for note in &cluster.notes {
                        let _ = writeln!(out, "  {note}");
                    }
                    continue;
                }
                Outcome::Reached(changes) => changes,
            };
            if changes.is_empty() {
                let _ = writeln!(out, "{header}: no changes");
            } else {
                let _ = writeln!(out, "{header}:");
            }
            for note in &cluster.notes {
                let _ = writeln!(out, "  {note}");
            }
            for c in changes {
                let what = describe(c);
                match &c.action {
                    Action::Create => {
                        create += 1;
                        let _ = writeln!(out, "  {}", paint("32", &format!("+ created {what}")));
                    }
                    Action::Change(diff) => {
                        change += 1;
                        let _ = writeln!(out, "  {}", paint("33", &format!("~ changed {what}")));
                        for line in diff.lines() {
                            let code = match line.chars().next() {
                                _ if line.starts_with("+++") || line.starts_with("---") => "1",
                                Some('+') => "32",
                                Some('-') => "31",
                                Some('@') => "36",
                                _ => "0",
                            };
                            let _ = writeln!(out, "      {}", paint(code, line));
                        }
                    }
                    Action::Delete(why) => {
                        delete += 1;
                        let _ = writeln!(
                            out,
                            "  {}",
                            paint("31", &format!("- deleted {what}: {why}"))
                        );
                    }
                    Action::Release(why) => {
                        delete += 1;
                        let _ = writeln!(
                            out,
                            "  {}",
                            paint("31", &format!("- released {what}: {why}"))
                        );
                    }
                    Action::Pending(deps) => {
                        pending += 1;
                        let _ = writeln!(
                            out,
                            "  {}",
                            paint(
                                "32",
                                &format!(
                                    "+ later {what} (depends on {}, not yet known)",
                                    deps.join(", ")
                                )
                            )
                        );
                    }
                    Action::Failed(why) => {
                        let _ =
                            writeln!(out, "  {}", paint("31", &format!("! error {what}: {why}")));
                    }
                    Action::Note(note) => {
                        let _ = writeln!(out, "  · {what}: {note}");
                    }
                }
            }
        }
        let reached = self.clusters.len() - self.unreachable();
        let mut summary = format!(
            "{}: {create} to create, {change} to change, {delete} to delete",
            self.instance
        );
        if pending > 0 {
            let _ = write!(summary, ", {pending} not yet known");
        }
        let _ = write!(summary, " on {reached} cluster(s)");
        if self.unreachable() > 0 {
            let _ = write!(
                summary,
                "; {} cluster(s) unreachable (the plan is incomplete)",
                self.unreachable()
            );
        }
        if self.has_failures() {
            summary.push_str("; the hub would fail on some resources");
        }
        if !self.has_changes() && self.unreachable() == 0 && !self.has_failures() {
            summary = format!("{}: nothing to change", self.instance);
        }
        let _ = writeln!(out, "{summary}");
        out
    }
}

/// `Kind ns/name (resource id)`, or `resource id` when not rendered.
fn describe(c: &Change) -> String {
    if c.object.is_empty() {
        format!("resource {}", c.resource)
    } else {
        format!("{} (resource {})", c.object, c.resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(outcomes: Vec<Outcome>) -> Plan {
        Plan {
            instance: "Web apps/shop".into(),
            clusters: outcomes
                .into_iter()
                .enumerate()
                .map(|(i, outcome)| ClusterPlan {
                    cluster: format!("m{i}"),
                    member: true,
                    notes: Vec::new(),
                    outcome,
                })
                .collect(),
        }
    }

    fn change(action: Action) -> Change {
        Change {
            action,
            object: "ConfigMap apps/c".into(),
            resource: "config".into(),
        }
    }

    #[test]
    fn exit_codes_follow_kubectl_diff() {
        let none = plan(vec![Outcome::Reached(Vec::new())]);
        assert_eq!(none.exit_code(), EXIT_UNCHANGED);
        assert!(none.render(false).contains("nothing to change"));
        let some = plan(vec![Outcome::Reached(vec![change(Action::Create)])]);
        assert_eq!(some.exit_code(), EXIT_CHANGED);
        let partial = plan(vec![
            Outcome::Reached(vec![change(Action::Create)]),
            Outcome::Unreachable("refused".into()),
        ]);
        assert_eq!(partial.exit_code(), EXIT_ERROR);
        let text = partial.render(false);
        assert!(text.contains("cluster m1: unreachable: refused"), "{text}");
        assert!(text.contains("+ created ConfigMap apps/c (resource config)"));
        assert!(text.contains("1 cluster(s) unreachable"), "{text}");
        let noted = plan(vec![Outcome::Reached(vec![change(Action::Note(
            "x".into(),
        ))])]);
        assert_eq!(noted.exit_code(), EXIT_UNCHANGED);
    }

    #[test]
    fn colour_only_when_asked() {
        let p = plan(vec![Outcome::Reached(vec![change(Action::Delete(
            "gone".into(),
        ))])]);
        assert!(!p.render(false).contains('\x1b'));
        assert!(p.render(true).contains("\x1b[31m- deleted"));
    }
}

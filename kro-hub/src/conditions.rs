//! Standard Kubernetes conditions, updated so that `lastTransitionTime`
//! moves only when a condition's status really changes: a status write that
//! only refreshes timestamps would be a write for nothing.

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    #[serde(default)]
    pub reason: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// Longest condition message or event note, in bytes. Messages can list
/// resources, clusters or an API server's words; a status is read by people
/// and stored in etcd with the object, so it stays small.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// `message`, cut to [`MAX_MESSAGE_BYTES`] on a character boundary, saying
/// how much was left out.
pub fn cap_message(message: String) -> String {
    cap(message, MAX_MESSAGE_BYTES)
}

/// An Event note from `message`: the API server refuses notes over 1 KiB.
pub fn cap_event_note(message: &str) -> String {
    cap(message.to_owned(), 1024)
}

fn cap(message: String, max: usize) -> String {
    if message.len() <= max {
        return message;
    }
    let mut end = max.saturating_sub(40);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}... and {} more bytes",
        &message[..end],
        message.len() - end
    )
}

impl Condition {
    /// A condition with status `True`/`False` from a bool.
    pub fn new(
        type_: &str,
        ok: bool,
        reason: &str,
        message: impl Into<String>,
        generation: Option<i64>,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status: if ok { "True" } else { "False" }.to_owned(),
            reason: reason.to_owned(),
            message: cap_message(message.into()),
            observed_generation: generation,
            last_transition_time: None,
        }
    }

    /// A condition with status `Unknown`.
    pub fn unknown(
        type_: &str,
        reason: &str,
        message: impl Into<String>,
        generation: Option<i64>,
    ) -> Self {
        Self {
            status: "Unknown".to_owned(),
            ..Self::new(type_, false, reason, message, generation)
        }
    }

    /// Whether the status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// Reads conditions from a status object; unparsable entries are dropped.
pub fn read(status: Option<&serde_json::Value>) -> Vec<Condition> {
    status
        .and_then(|s| s.get("conditions"))
        .and_then(|c| c.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|c| serde_json::from_value(c.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The new condition list: `desired` in order, each keeping the previous
/// `lastTransitionTime` when its status did not change. Conditions of other
/// types already present (set by someone else) are kept after ours.
pub fn merge(previous: &[Condition], desired: Vec<Condition>) -> Vec<Condition> {
    let now = Timestamp::now().to_string();
    let mut out: Vec<Condition> = desired
        .into_iter()
        .map(|mut c| {
            let old = previous.iter().find(|p| p.type_ == c.type_);
            c.last_transition_time = match old {
                Some(p) if p.status == c.status && p.last_transition_time.is_some() => {
                    p.last_transition_time.clone()
                }
                _ => Some(now.clone()),
            };
            c
        })
        .collect();
    for p in previous {
        if !out.iter().any(|c| c.type_ == p.type_) {
            out.push(p.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_capped_on_a_character_boundary() {
        let long = format!("{}é{}", "a".repeat(4055), "b".repeat(20_000));
        let c = Condition::new("Ready", false, "Error", long, None);
        assert!(c.message.len() <= MAX_MESSAGE_BYTES, "{}", c.message.len());
        assert!(
            c.message.ends_with("a... and 20002 more bytes"),
            "{}",
            &c.message[4000..]
        );
        let short = Condition::new("Ready", false, "Error", "fine", None);
        assert_eq!(short.message, "fine");
    }

    #[test]
    fn unchanged_status_keeps_its_transition_time() {
        let mut old = Condition::new("Ready", true, "Ok", "fine", Some(1));
        old.last_transition_time = Some("2020-01-01T00:00:00Z".into());
        let merged = merge(
            &[old],
            vec![Condition::new("Ready", true, "Ok", "fine", Some(2))],
        );
        assert_eq!(
            merged[0].last_transition_time.as_deref(),
            Some("2020-01-01T00:00:00Z")
        );
        assert_eq!(merged[0].observed_generation, Some(2));
    }

    #[test]
    fn changed_status_gets_a_new_transition_time_and_foreign_types_stay() {
        let mut old = Condition::new("Ready", true, "Ok", "fine", Some(1));
        old.last_transition_time = Some("2020-01-01T00:00:00Z".into());
        let foreign = Condition::new("Custom", true, "X", "", None);
        let merged = merge(
            &[old, foreign.clone()],
            vec![Condition::new("Ready", false, "Broken", "no", Some(1))],
        );
        assert_ne!(
            merged[0].last_transition_time.as_deref(),
            Some("2020-01-01T00:00:00Z")
        );
        assert!(merged[0].last_transition_time.is_some());
        assert_eq!(merged[1], foreign);
    }
}

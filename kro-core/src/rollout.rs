//! kro-hub extension: `spec.rollout`, how a change of what the hub renders
//! reaches the placed clusters. Clusters are split into ordered waves; a
//! wave starts once the previous one has been Ready for `minReadySeconds`;
//! inside a wave at most `maxConcurrency` clusters are updated at a time; a
//! wave not Ready within `progressDeadlineSeconds`, or a cluster in error,
//! counts as a failure, and more than `maxFailures` failures stop the
//! rollout (`onFailure`). The field names and their defaults follow a
//! Deployment's where the meaning is the same.
//!
//! This module holds the types, their parse-time validation (every message
//! names the field) and the pure parts of the policy (which cluster is in
//! which wave, how many may move at once); the state machine that drives a
//! rollout lives in the hub, which owns time and I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Location};

/// Seconds a wave may take to become Ready when the RGD does not say (a
/// Deployment's default `progressDeadlineSeconds`).
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;
/// The name of the one wave of a rollout that lists none.
pub const IMPLICIT_WAVE: &str = "all";
/// Most waves one rollout may declare.
pub const MAX_WAVES: usize = 32;

/// `spec.rollout` of an RGD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// Ordered waves; a cluster in no wave goes in the last one. None: one
    /// wave with every cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
    /// How many of a wave's clusters are updated at the same time: a count
    /// or a percentage of the wave (`"25%"`, rounded down, at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<IntOrPercent>,
    /// How long a wave must stay Ready before the next one starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i64>,
    /// A wave not Ready this long after it started has failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i64>,
    /// Failed clusters tolerated before the rollout stops (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<i64>,
    /// What a stopped rollout does to the clusters it already updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// Hold every rollout of this RGD after its current wave.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// One wave of a rollout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wave {
    /// Shown in status and events; unique in the rollout.
    pub name: String,
    /// Label selector over the selected clusters; absent: every cluster no
    /// earlier wave took (only the last wave may omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<Value>,
}

/// A count or a percentage, as `maxSurge` is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrPercent {
    /// A number of clusters.
    Int(i64),
    /// `"N%"` of a wave's clusters.
    String(String),
}

/// `spec.rollout.onFailure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnFailure {
    /// Stop; the clusters already updated keep the new revision.
    #[default]
    Halt,
    /// Stop, and re-apply the previous revision to the clusters already
    /// updated.
    Rollback,
}

/// How many clusters of a wave move at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// At most this many.
    Count(u32),
    /// At most this percentage of the wave, rounded down, at least one.
    Percent(u32),
}

/// One wave, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct WavePolicy {
    /// The wave's name.
    pub name: String,
    /// Its selector; `None` takes every cluster left.
    pub selector: Option<Value>,
}

/// `spec.rollout`, validated, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutPolicy {
    /// At least one wave.
    pub waves: Vec<WavePolicy>,
    /// Clusters of a wave updated at the same time.
    pub max_concurrency: Concurrency,
    /// Seconds a wave stays Ready before the next starts.
    pub min_ready_seconds: u64,
    /// Seconds a wave may take to become Ready.
    pub progress_deadline_seconds: u64,
    /// Failures tolerated.
    pub max_failures: u32,
    /// What a stop does.
    pub on_failure: OnFailure,
    /// Held after the current wave.
    pub paused: bool,
}

impl RolloutPolicy {
    /// The clusters of each wave, in wave order, each list sorted: a cluster
    /// goes to the first wave whose selector matches it (a wave without a
    /// selector takes all that are left), and one that no wave matches goes
    /// to the last wave.
    pub fn assign<'c>(
        &self,
        clusters: impl IntoIterator<Item = (&'c str, &'c BTreeMap<String, String>)>,
    ) -> Vec<Vec<String>> {
        let mut waves = vec![Vec::new(); self.waves.len()];
        for (name, labels) in clusters {
            let at = self
                .waves
                .iter()
                .position(|w| match &w.selector {
                    // Selectors were validated at parse time.
                    Some(sel) => crate::selector::matches(sel, labels).unwrap_or(false),
                    None => true,
                })
                .unwrap_or(self.waves.len() - 1);
            waves[at].push(name.to_owned());
        }
        for w in &mut waves {
            w.sort();
        }
        waves
    }

    /// How many of a wave of `size` clusters may be in progress at once.
    pub fn in_flight_limit(&self, size: usize) -> usize {
        match self.max_concurrency {
            Concurrency::Count(n) => (n as usize).max(1),
            Concurrency::Percent(p) => (size * p as usize / 100).max(1),
        }
    }
}

fn invalid(rgd: &str, field: String, message: impl Into<String>) -> Error {
    Error::Invalid {
        at: Location {
            rgd: rgd.to_owned(),
            resource: None,
            field,
            expression: None,
        },
        message: message.into(),
    }
}

/// Whether `name` is a DNS-1123 label, as the names of Kubernetes objects
/// and of waves shown next to them are.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Validates `spec.rollout` of RGD `rgd` and applies its defaults. `placed`
/// says whether the RGD has a `placement`: a rollout is across clusters, so
/// it needs one.
pub fn validate(rgd: &str, rollout: &Rollout, placed: bool) -> Result<RolloutPolicy, Error> {
    let at = |field: &str| format!("spec.rollout.{field}");
    if !placed {
        return Err(invalid(
            rgd,
            "spec.rollout".to_owned(),
            "a rollout moves a change across member clusters: it needs spec.placement",
        ));
    }
    if rollout.waves.len() > MAX_WAVES {
        return Err(invalid(
            rgd,
            at("waves"),
            format!(
                "{} waves; at most {MAX_WAVES} are allowed",
                rollout.waves.len()
            ),
        ));
    }
    let mut waves = Vec::new();
    for (i, wave) in rollout.waves.iter().enumerate() {
        if !is_dns_label(&wave.name) {
            return Err(invalid(
                rgd,
                at(&format!("waves[{i}].name")),
                format!(
                    "{:?} must be a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
                    wave.name
                ),
            ));
        }
        if let Some(j) = rollout.waves[..i].iter().position(|w| w.name == wave.name) {
            return Err(invalid(
                rgd,
                at(&format!("waves[{i}].name")),
                format!("{:?} is already the name of waves[{j}]", wave.name),
            ));
        }
        match &wave.cluster_selector {
            Some(sel @ Value::Object(_)) => {
                if serde_json::to_string(sel).is_ok_and(|s| s.contains("${")) {
                    return Err(invalid(
                        rgd,
                        at(&format!("waves[{i}].clusterSelector")),
                        "a wave's selector is the same for every instance: it may not hold ${...}",
                    ));
                }
                if let Some(key) = sel.as_object().and_then(|o| {
                    o.keys()
                        .find(|k| *k != "matchLabels" && *k != "matchExpressions")
                }) {
                    return Err(invalid(
                        rgd,
                        at(&format!("waves[{i}].clusterSelector")),
                        format!(
                            "unknown field {key:?}: a label selector has matchLabels and matchExpressions"
                        ),
                    ));
                }
                crate::selector::matches(sel, &BTreeMap::new())
                    .map_err(|e| invalid(rgd, at(&format!("waves[{i}].clusterSelector")), e))?;
            }
            Some(_) => {
                return Err(invalid(
                    rgd,
                    at(&format!("waves[{i}].clusterSelector")),
                    "must be a label selector (matchLabels, matchExpressions)",
                ));
            }
            None if i + 1 < rollout.waves.len() => {
                return Err(invalid(
                    rgd,
                    at(&format!("waves[{i}].clusterSelector")),
                    "only the last wave may omit clusterSelector (it takes every cluster left)",
                ));
            }
            None => {}
        }
        waves.push(WavePolicy {
            name: wave.name.clone(),
            selector: wave.cluster_selector.clone(),
        });
    }
    if waves.is_empty() {
        waves.push(WavePolicy {
            name: IMPLICIT_WAVE.to_owned(),
            selector: None,
        });
    }
    let max_concurrency = match &rollout.max_concurrency {
        None => Concurrency::Percent(100),
        Some(IntOrPercent::Int(n)) if *n >= 1 && *n <= i64::from(u32::MAX) => {
            Concurrency::Count(*n as u32)
        }
        Some(IntOrPercent::Int(n)) => {
            return Err(invalid(
                rgd,
                at("maxConcurrency"),
                format!("{n} must be at least 1"),
            ));
        }
        Some(IntOrPercent::String(s)) => {
            let pct = s
                .strip_suffix('%')
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    invalid(
                        rgd,
                        at("maxConcurrency"),
                        format!("{s:?} must be a count or a percentage from 1% to 100%"),
                    )
                })?;
            Concurrency::Percent(pct)
        }
    };
    let non_negative = |field: &str, v: Option<i64>, default: i64| -> Result<u64, Error> {
        let v = v.unwrap_or(default);
        u64::try_from(v).map_err(|_| invalid(rgd, at(field), format!("{v} must not be negative")))
    };
    let min_ready_seconds = non_negative("minReadySeconds", rollout.min_ready_seconds, 0)?;
    let progress_deadline_seconds = non_negative(
        "progressDeadlineSeconds",
        rollout.progress_deadline_seconds,
        DEFAULT_PROGRESS_DEADLINE_SECONDS,
    )?;
    // As a Deployment's: a deadline no longer than the Ready window would
    // fail every wave.
    if progress_deadline_seconds <= min_ready_seconds {
        return Err(invalid(
            rgd,
            at("progressDeadlineSeconds"),
            format!(
                "{progress_deadline_seconds} must be greater than minReadySeconds ({min_ready_seconds})"
            ),
        ));
    }
    let max_failures = non_negative("maxFailures", rollout.max_failures, 0)?;
    let max_failures =
        u32::try_from(max_failures).map_err(|_| invalid(rgd, at("maxFailures"), "is too large"))?;
    Ok(RolloutPolicy {
        waves,
        max_concurrency,
        min_ready_seconds,
        progress_deadline_seconds,
        max_failures,
        on_failure: rollout.on_failure.unwrap_or_default(),
        paused: rollout.paused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Rollout {
        serde_json::from_value(v).expect("rollout parses")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn waves_take_clusters_in_order_and_the_last_takes_the_rest() {
        let r = parse(json!({
            "waves": [
                {"name": "canary", "clusterSelector": {"matchLabels": {"wave": "canary"}}},
                {"name": "eu", "clusterSelector": {"matchLabels": {"region": "eu"}}},
                {"name": "rest"}
            ],
            "maxConcurrency": "50%"
        }));
        let p = validate("web", &r, true).expect("valid");
        let (a, b, c, d) = (
            labels(&[("wave", "canary"), ("region", "eu")]),
            labels(&[("region", "eu")]),
            labels(&[("region", "us")]),
            labels(&[]),
        );
        let waves = p.assign([("a", &a), ("b", &b), ("c", &c), ("d", &d)]);
        assert_eq!(
            waves,
            vec![
                vec!["a".to_owned()],
                vec!["b".to_owned()],
                vec!["c".to_owned(), "d".to_owned()]
            ]
        );
        assert_eq!(p.in_flight_limit(4), 2);
        assert_eq!(p.in_flight_limit(1), 1);
        assert_eq!(p.progress_deadline_seconds, 600);
        assert_eq!(p.on_failure, OnFailure::Halt);
    }

    #[test]
    fn clusters_no_wave_matches_go_to_the_last_wave() {
        let r = parse(json!({"waves": [
            {"name": "one", "clusterSelector": {"matchLabels": {"w": "1"}}},
            {"name": "two", "clusterSelector": {"matchLabels": {"w": "2"}}}
        ]}));
        let p = validate("web", &r, true).expect("valid");
        let none = labels(&[]);
        assert_eq!(
            p.assign([("x", &none)]),
            vec![Vec::<String>::new(), vec!["x".to_owned()]]
        );
    }

    #[test]
    fn no_waves_is_one_wave_of_every_cluster() {
        let p = validate("web", &Rollout::default(), true).expect("valid");
        assert_eq!(p.waves.len(), 1);
        assert_eq!(p.waves[0].name, IMPLICIT_WAVE);
        assert_eq!(p.in_flight_limit(7), 7);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"waves": [{"name": "A"}]}),
                "spec.rollout.waves[0].name",
            ),
            (
                json!({"waves": [{"name": "a", "clusterSelector": {"matchLabels": {"x": "1"}}}, {"name": "a"}]}),
                "already the name of waves[0]",
            ),
            (
                json!({"waves": [{"name": "a"}, {"name": "b"}]}),
                "only the last wave may omit clusterSelector",
            ),
            (
                json!({"waves": [{"name": "a", "clusterSelector": {"matchExpressions": [{"key": "k", "operator": "Is"}]}}]}),
                "spec.rollout.waves[0].clusterSelector",
            ),
            (
                json!({"waves": [{"name": "a", "clusterSelector": {"matchLabels": {"x": "${schema.spec.x}"}}}]}),
                "may not hold ${...}",
            ),
            (
                json!({"maxConcurrency": "0%"}),
                "spec.rollout.maxConcurrency",
            ),
            (json!({"maxConcurrency": 0}), "must be at least 1"),
            (
                json!({"minReadySeconds": -1}),
                "spec.rollout.minReadySeconds",
            ),
            (
                json!({"minReadySeconds": 60, "progressDeadlineSeconds": 30}),
                "must be greater than minReadySeconds",
            ),
        ];
        for (value, wanted) in cases {
            let err = validate("web", &parse(value.clone()), true)
                .expect_err(&format!("{value} must be refused"))
                .to_string();
            assert!(err.contains(wanted), "{value}: {err}");
            assert!(err.contains("web"), "{err}");
        }
        let err = validate("web", &Rollout::default(), false)
            .expect_err("needs placement")
            .to_string();
        assert!(err.contains("needs spec.placement"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_value::<Rollout>(json!({"wavez": []}))
            .expect_err("unknown field")
            .to_string();
        assert!(err.contains("wavez"), "{err}");
    }
}

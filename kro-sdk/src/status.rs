//! kro's part of an instance's status: what the hub writes next to the
//! RGD's own status fields.

use serde::{Deserialize, Deserializer};

use kro_core::rgd::Condition;

/// `state`, `conditions` and, for placed instances, `clusters` of an
/// instance's status.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// `ACTIVE`, `IN_PROGRESS`, `ERROR` or `DELETING`.
    #[serde(default)]
    pub state: Option<String>,
    /// Standard conditions; `Ready` says what the hub waits for.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// One entry per member cluster when the RGD has a placement.
    #[serde(default)]
    pub clusters: Vec<ClusterStatus>,
}

impl InstanceStatus {
    /// The condition of type `type_`.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether the `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }
}

/// An instance's status on one member cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Member cluster name.
    pub name: String,
    /// The instance's state on that member.
    #[serde(default)]
    pub state: Option<String>,
    /// What is awaited or failed there.
    #[serde(default)]
    pub message: Option<String>,
    /// Conditions on that member.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The status type of a graph that declares no status fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoStatus;

impl<'de> Deserialize<'de> for NoStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(NoStatus)
    }
}

//! Request options (`CreateOptions`, `UpdateOptions`, `PatchOptions`, `DeleteOptions`,
//! `ListOptions`) and the checks the real server runs on them before it looks at a body.
//!
//! The transport decodes them (query parameters or a `DeleteOptions` body); the rules here
//! are the API machinery's option validation, reported as an `Invalid` error of the
//! options kind in `meta.k8s.io`, the way the real server words it.

use serde_json::Value;

use crate::error::{ApiError, ApiResult, Cause, go_quote};

/// The longest `fieldManager` the server accepts.
const FIELD_MANAGER_MAX: usize = 128;

/// The `fieldValidation` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Unknown or duplicate fields fail the request.
    Strict,
    /// They are dropped with a `Warning` header (the default).
    #[default]
    Warn,
    /// They are dropped silently.
    Ignore,
}

/// Options every write shares, decoded and validated.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: everything but the storage write.
    pub dry_run: bool,
    /// The manager recorded in `managedFields` (explicit, or derived from the user agent).
    pub field_manager: String,
    /// Whether `fieldManager` was given explicitly (apply requires it).
    pub explicit_manager: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `force` (apply only).
    pub force: bool,
}

/// What the raw options said, before validation: each field as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct RawWriteOptions {
    /// `dryRun` values.
    pub dry_run: Vec<String>,
    /// `fieldManager`, if sent.
    pub field_manager: Option<String>,
    /// `fieldValidation`, if sent.
    pub field_validation: Option<String>,
    /// `force`, if sent (any value, even `false`, counts as set).
    pub force: Option<bool>,
}

/// Which write the options belong to; it names the options kind in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteVerb {
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH; `apply` for server-side apply.
    Patch {
        /// Whether the patch is an apply.
        apply: bool,
    },
}

impl WriteVerb {
    fn options_kind(self) -> &'static str {
        match self {
            Self::Create => "CreateOptions",
            Self::Update => "UpdateOptions",
            Self::Patch { .. } => "PatchOptions",
        }
    }
}

fn invalid_options(kind: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid("meta.k8s.io", kind, "", causes)
}

/// `dryRun` accepts only `All`.
fn dry_run_causes(values: &[String]) -> Vec<Cause> {
    if values.iter().all(|v| v == "All") {
        return Vec::new();
    }
    let listed = values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    vec![Cause::new(
        "FieldValueNotSupported",
        "dryRun",
        format!("Unsupported value: []string{{{listed}}}: supported values: \"All\""),
    )]
}

/// A manager name is at most 128 printable characters.
fn field_manager_causes(manager: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if manager.chars().count() > FIELD_MANAGER_MAX {
        causes.push(Cause::new(
            "FieldValueTooLong",
            "fieldManager",
            format!("Too long: may not be more than {FIELD_MANAGER_MAX} bytes"),
        ));
    }
    for (i, c) in manager.char_indices() {
        if c.is_control() {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "fieldManager",
                format!(
                    "Invalid value: {}: invalid character U+{:04X} (at position {i})",
                    go_quote(&Value::String(manager.to_owned())),
                    u32::from(c)
                ),
            ));
        }
    }
    causes
}

fn field_validation(value: Option<&str>) -> Result<FieldValidation, Cause> {
    match value.unwrap_or("") {
        "" | "Warn" => Ok(FieldValidation::Warn),
        "Strict" => Ok(FieldValidation::Strict),
        "Ignore" => Ok(FieldValidation::Ignore),
        other => Err(Cause::new(
            "FieldValueNotSupported",
            "fieldValidation",
            format!(
                "Unsupported value: {other:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
            ),
        )),
    }
}

impl RawWriteOptions {
    /// Validates the options of a write; `default_manager` is used when none was sent and
    /// the verb does not require one.
    pub fn validate(self, verb: WriteVerb, default_manager: &str) -> ApiResult<WriteOptions> {
        let mut causes = Vec::new();
        let manager = self.field_manager.clone().unwrap_or_default();
        if let WriteVerb::Patch { apply } = verb {
            if !apply && self.force.is_some() {
                causes.push(Cause::forbidden(
                    "force",
                    "may not be specified for non-apply patch",
                ));
            }
            if apply && manager.is_empty() {
                causes.push(Cause::required(
                    "fieldManager",
                    "is required for apply patch",
                ));
            }
        }
        causes.extend(field_manager_causes(&manager));
        causes.extend(dry_run_causes(&self.dry_run));
        let fv = match field_validation(self.field_validation.as_deref()) {
            Ok(fv) => fv,
            Err(c) => {
                causes.push(c);
                FieldValidation::Warn
            }
        };
        if !causes.is_empty() {
            return Err(invalid_options(verb.options_kind(), causes));
        }
        let explicit = !manager.is_empty();
        Ok(WriteOptions {
            dry_run: !self.dry_run.is_empty(),
            field_manager: if explicit {
                manager
            } else {
                default_manager.to_owned()
            },
            explicit_manager: explicit,
            field_validation: fv,
            force: self.force.unwrap_or(false),
        })
    }
}

/// `propagationPolicy` (or the older `orphanDependents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are left alone (the `orphan` finalizer).
    Orphan,
    /// Dependents go first (the `foregroundDeletion` finalizer).
    Foreground,
    /// Dependents are collected afterwards.
    Background,
}

/// Delete options, validated.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `preconditions.resourceVersion`.
    pub precondition_rv: Option<String>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// The propagation asked for, if any.
    pub propagation: Option<Propagation>,
    /// The deprecated `orphanDependents`, as sent: `false` makes a delete that leaves the
    /// object in place answer 202 Accepted.
    pub orphan_dependents: Option<bool>,
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Validates a `DeleteOptions` object (decoded from the body or the query).
    pub fn from_value(v: &Value) -> ApiResult<Self> {
        let mut causes = Vec::new();
        let orphan = v.get("orphanDependents").and_then(Value::as_bool);
        let policy = v.get("propagationPolicy").and_then(Value::as_str);
        if let (Some(_), Some(p)) = (orphan, policy) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "propagationPolicy",
                format!(
                    "Invalid value: {}: orphanDependents and deletionPropagation cannot be both set",
                    go_quote(&Value::String(p.to_owned()))
                ),
            ));
        }
        let propagation = match policy {
            None => orphan.map(|o| {
                if o {
                    Propagation::Orphan
                } else {
                    Propagation::Background
                }
            }),
            Some("Orphan") => Some(Propagation::Orphan),
            Some("Foreground") => Some(Propagation::Foreground),
            Some("Background") => Some(Propagation::Background),
            Some(other) => {
                causes.push(Cause::new(
                    "FieldValueNotSupported",
                    "propagationPolicy",
                    format!(
                        "Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                    ),
                ));
                None
            }
        };
        let dry_run: Vec<String> = match v.get("dryRun") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().unwrap_or_default().to_owned())
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        causes.extend(dry_run_causes(&dry_run));
        if !causes.is_empty() {
            return Err(invalid_options("DeleteOptions", causes));
        }
        let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Ok(Self {
            precondition_rv: text("/preconditions/resourceVersion"),
            precondition_uid: text("/preconditions/uid"),
            propagation,
            orphan_dependents: orphan,
            grace_period: v.get("gracePeriodSeconds").and_then(Value::as_i64),
            dry_run: !dry_run.is_empty(),
        })
    }
}

/// List and watch options, validated.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit` (0: no limit).
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// `watch`.
    pub watch: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
}

impl ListOptions {
    /// The API machinery's list-option rules (list and watch differ).
    pub fn validate(&self) -> ApiResult<()> {
        let mut causes = Vec::new();
        let forbidden = |m: &str| Cause::forbidden("resourceVersionMatch", m);
        let rv = self.resource_version.as_deref().unwrap_or("");
        let cont = self
            .continue_token
            .as_deref()
            .is_some_and(|c| !c.is_empty());
        let m = self.resource_version_match.as_deref().unwrap_or("");
        if self.watch {
            if self.send_initial_events.is_some() && m != "NotOlderThan" {
                causes.push(forbidden(
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !m.is_empty() {
                if self.send_initial_events.is_none() {
                    causes.push(forbidden(
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if m != "NotOlderThan" {
                    causes.push(Cause::new(
                        "FieldValueNotSupported",
                        "resourceVersionMatch",
                        format!("Unsupported value: {m:?}: supported values: \"NotOlderThan\""),
                    ));
                }
                if cont {
                    causes.push(forbidden(
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
            }
        } else {
            if !m.is_empty() {
                if rv.is_empty() {
                    causes.push(forbidden(
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                if cont {
                    causes.push(forbidden(
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
                if m != "Exact" && m != "NotOlderThan" {
                    causes.push(Cause::new(
                        "FieldValueNotSupported",
                        "resourceVersionMatch",
                        format!(
                            "Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""
                        ),
                    ));
                }
                if m == "Exact" && rv == "0" {
                    causes.push(forbidden(
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
            }
            if self.send_initial_events.is_some() {
                causes.push(Cause::forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for list",
                ));
            }
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(invalid_options("ListOptions", causes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawWriteOptions {
        RawWriteOptions::default()
    }

    #[test]
    fn force_is_forbidden_on_a_non_apply_patch() {
        let o = RawWriteOptions {
            force: Some(false),
            ..raw()
        };
        let e = o
            .validate(WriteVerb::Patch { apply: false }, "kubectl")
            .unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
        assert_eq!(
            e.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
        );
    }

    #[test]
    fn apply_needs_a_manager_and_dry_run_only_all() {
        let e = RawWriteOptions {
            dry_run: vec!["true".into()],
            ..raw()
        }
        .validate(WriteVerb::Patch { apply: true }, "kubectl")
        .unwrap_err();
        assert!(
            e.message
                .contains("fieldManager: Required value: is required for apply patch")
        );
        assert!(
            e.message.contains(
                "dryRun: Unsupported value: []string{\"true\"}: supported values: \"All\""
            )
        );
        let ok = RawWriteOptions {
            dry_run: vec!["All".into()],
            ..raw()
        }
        .validate(WriteVerb::Create, "kubectl")
        .unwrap();
        assert!(ok.dry_run);
        assert_eq!(ok.field_manager, "kubectl");
    }

    #[test]
    fn long_managers_are_refused() {
        let e = RawWriteOptions {
            field_manager: Some("m".repeat(129)),
            ..raw()
        }
        .validate(WriteVerb::Update, "x")
        .unwrap_err();
        assert!(
            e.message
                .starts_with("UpdateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long")
        );
    }

    #[test]
    fn delete_options_rules() {
        let e = DeleteOptions::from_value(&serde_json::json!({"propagationPolicy": "Sideways"}))
            .unwrap_err();
        assert!(
            e.message
                .contains("supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"")
        );
        let both = serde_json::json!({"propagationPolicy": "Orphan", "orphanDependents": true});
        assert!(DeleteOptions::from_value(&both).is_err());
        let o = DeleteOptions::from_value(&serde_json::json!({"orphanDependents": true})).unwrap();
        assert_eq!(o.propagation, Some(Propagation::Orphan));
    }

    #[test]
    fn list_and_watch_options_differ() {
        let list = ListOptions {
            send_initial_events: Some(true),
            ..Default::default()
        };
        assert!(
            list.validate()
                .unwrap_err()
                .message
                .contains("sendInitialEvents is forbidden for list")
        );
        let watch = ListOptions {
            watch: true,
            send_initial_events: Some(true),
            resource_version_match: Some("NotOlderThan".into()),
            ..Default::default()
        };
        assert!(watch.validate().is_ok());
        let no_rv = ListOptions {
            resource_version_match: Some("Exact".into()),
            ..Default::default()
        };
        assert!(no_rv.validate().is_err());
    }
}

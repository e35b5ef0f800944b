//! Who owns a generated kind. The hub creates or changes a CRD only for the
//! RGD that owns it: the CRD carries the RGD's name and uid in kro's labels
//! from the moment the hub creates it. A kind served by another live RGD, by
//! a CRD the hub did not create, or by a built-in or aggregated API is never
//! taken over (the static part of that rule, kro-hub's own kinds and
//! Kubernetes' reserved groups, is in `kro_core::crd::reserved_api`).
//!
//! A CRD left behind by a deleted RGD (CRDs outlive their RGD unless the hub
//! runs with `--delete-crds`) is taken over silently only by an RGD of the
//! same name, which is the same API re-created; any other RGD must say so
//! with the [`ADOPT_CRD`] annotation naming the CRD.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kro_core::crd::{LABEL_RGD_ID, LABEL_RGD_NAME, label_value};
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;

use crate::rgd_controller::rgd_api_resource;

/// Annotation on an RGD naming a CRD, left by a deleted RGD of another
/// name, that this RGD takes over.
pub const ADOPT_CRD: &str = "hub.kro.run/adopt-crd";

/// The RGD asking for a kind.
#[derive(Debug, Clone, Copy)]
pub struct Claimant<'a> {
    /// RGD name.
    pub name: &'a str,
    /// RGD uid.
    pub uid: &'a str,
    /// The RGD's `hub.kro.run/adopt-crd` annotation, if any.
    pub adopt: Option<&'a str>,
}

/// The answer to a claim on a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No CRD serves the kind yet: the claimant may create it.
    Free,
    /// The CRD is the claimant's (or is taken over, as the module says).
    Owned,
    /// Someone else owns the kind; the message says who and what to do.
    Refused(String),
}

/// Who owns the CRD `existing`, as seen by `claimant`. `owner_alive` says
/// whether the RGD named in its labels still exists with that uid.
pub fn judge(
    claimant: Claimant<'_>,
    existing: &CustomResourceDefinition,
    owner_alive: impl FnOnce(&str, &str) -> bool,
) -> Claim {
    let crd_name = existing.metadata.name.as_deref().unwrap_or_default();
    let labels = existing.metadata.labels.clone().unwrap_or_default();
    let (Some(owner_name), Some(owner_uid)) =
        (labels.get(LABEL_RGD_NAME), labels.get(LABEL_RGD_ID))
    else {
        return Claim::Refused(format!(
            "the kind is already served by CRD {crd_name}, which kro-hub did not create; \
             choose another kind or group"
        ));
    };
    if *owner_uid == label_value(claimant.uid) {
        return Claim::Owned;
    }
    if owner_alive(owner_name, owner_uid) {
        return Claim::Refused(format!(
            "the kind is already served by CRD {crd_name}, owned by RGD {owner_name}; \
             one kind has one RGD: choose another kind or group, or change RGD {owner_name}"
        ));
    }
    if *owner_name == label_value(claimant.name) || claimant.adopt == Some(crd_name) {
        return Claim::Owned;
    }
    Claim::Refused(format!(
        "CRD {crd_name} was created by RGD {owner_name}, which no longer exists; \
         to serve its kind and keep its instances, annotate this RGD with \
         {ADOPT_CRD}: \"{crd_name}\""
    ))
}

/// Whether the RGD `name` exists with the uid recorded (as a label value)
/// in a CRD's ownership labels.
pub async fn rgd_alive(client: &Client, name: &str, uid_label: &str) -> Result<bool, kube::Error> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &rgd_api_resource());
    // A name over 63 characters is stored hashed: look at every RGD then.
    let candidates = match api.get_opt(name).await? {
        Some(rgd) => vec![rgd],
        None if name.len() == 63 => api.list(&Default::default()).await?.items,
        None => Vec::new(),
    };
    Ok(candidates.iter().any(|rgd| {
        let rgd_name = rgd.metadata.name.as_deref().unwrap_or_default();
        let rgd_uid = rgd.metadata.uid.as_deref().unwrap_or_default();
        label_value(rgd_name) == name && label_value(rgd_uid) == uid_label
    }))
}

/// Decides a claim on the CRD `crd` against the cluster behind `client`.
/// `existing` is the CRD as read (absent: not found).
pub async fn claim(
    client: &Client,
    claimant: Claimant<'_>,
    crd: &CustomResourceDefinition,
    existing: Option<&CustomResourceDefinition>,
) -> Result<Claim, kube::Error> {
    let Some(existing) = existing else {
        return served_elsewhere(client, crd).await;
    };
    let owner = existing
        .metadata
        .labels
        .as_ref()
        .and_then(|l| Some((l.get(LABEL_RGD_NAME)?.clone(), l.get(LABEL_RGD_ID)?.clone())));
    let alive = match &owner {
        Some((name, uid)) if *uid != label_value(claimant.uid) => {
            rgd_alive(client, name, uid).await?
        }
        _ => false,
    };
    Ok(judge(claimant, existing, |_, _| alive))
}

/// With no CRD of that name, whether the group/version/kind is served all
/// the same: by a built-in or aggregated API, or by a CRD under another
/// plural.
async fn served_elsewhere(
    client: &Client,
    crd: &CustomResourceDefinition,
) -> Result<Claim, kube::Error> {
    let group = &crd.spec.group;
    let kind = &crd.spec.names.kind;
    for version in &crd.spec.versions {
        let gvk = GroupVersionKind::gvk(group, &version.name, kind);
        match kube::discovery::pinned_kind(client, &gvk).await {
            Ok((ar, _)) => {
                return Ok(Claim::Refused(format!(
                    "the kind is already served by the cluster as {}.{} (a built-in or \
                     aggregated API, or another CRD); choose another kind or group",
                    ar.plural, group
                )));
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(kube::Error::Discovery(_)) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(Claim::Free)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(labels: &[(&str, &str)]) -> CustomResourceDefinition {
        let mut crd = CustomResourceDefinition::default();
        crd.metadata.name = Some("applications.kro.run".to_owned());
        crd.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        crd
    }

    fn me(adopt: Option<&'static str>) -> Claimant<'static> {
        Claimant {
            name: "web",
            uid: "uid-web",
            adopt,
        }
    }

    #[test]
    fn a_crd_without_kro_s_labels_is_never_taken() {
        let claim = judge(me(None), &crd(&[]), |_, _| false);
        assert_eq!(
            claim,
            Claim::Refused(
                "the kind is already served by CRD applications.kro.run, which kro-hub did not \
                 create; choose another kind or group"
                    .to_owned()
            )
        );
        // A forged name label without the uid label is not ownership either.
        let forged = crd(&[(LABEL_RGD_NAME, "web")]);
        assert!(matches!(
            judge(me(None), &forged, |_, _| false),
            Claim::Refused(_)
        ));
    }

    #[test]
    fn the_owner_s_uid_decides() {
        let mine = crd(&[(LABEL_RGD_NAME, "web"), (LABEL_RGD_ID, "uid-web")]);
        assert_eq!(judge(me(None), &mine, |_, _| true), Claim::Owned);
        let theirs = crd(&[(LABEL_RGD_NAME, "other"), (LABEL_RGD_ID, "uid-other")]);
        let Claim::Refused(message) = judge(me(None), &theirs, |_, _| true) else {
            panic!("another live RGD's kind was taken");
        };
        assert!(message.contains("owned by RGD other"), "{message}");
        // The adoption annotation does not override a live owner.
        let adopt = me(Some("applications.kro.run"));
        assert!(matches!(
            judge(adopt, &theirs, |_, _| true),
            Claim::Refused(_)
        ));
    }

    #[test]
    fn a_crd_left_by_a_deleted_rgd_is_adopted_explicitly_or_by_the_same_name() {
        let left = crd(&[(LABEL_RGD_NAME, "other"), (LABEL_RGD_ID, "uid-gone")]);
        let Claim::Refused(message) = judge(me(None), &left, |_, _| false) else {
            panic!("an orphaned CRD was adopted silently");
        };
        assert!(
            message
                .contains("annotate this RGD with hub.kro.run/adopt-crd: \"applications.kro.run\""),
            "{message}"
        );
        assert_eq!(
            judge(me(Some("applications.kro.run")), &left, |_, _| false),
            Claim::Owned
        );
        assert!(matches!(
            judge(me(Some("other.kro.run")), &left, |_, _| false),
            Claim::Refused(_)
        ));
        let same_name = crd(&[(LABEL_RGD_NAME, "web"), (LABEL_RGD_ID, "uid-old")]);
        assert_eq!(judge(me(None), &same_name, |_, _| false), Claim::Owned);
    }
}

//! Progressive rollout across clusters: a hub and four members in two
//! waves. A change reaches the second wave only once the first has been
//! Ready for `minReadySeconds`; a change that never becomes Ready halts the
//! rollout (or rolls the updated clusters back); pause holds it after the
//! current wave; a hub restart mid-rollout goes on where it was.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kro_e2e::condition;
use kro_e2e::fleet::Fleet;
use serde_json::{Value, json};

const WAVE_ONE: [&str; 2] = ["c1", "c2"];
const WAVE_TWO: [&str; 2] = ["c3", "c4"];

/// An RGD whose ConfigMap carries the instance's `version`; it becomes
/// Ready on every cluster except the one `brokenOn` names.
fn rgd(rollout: Value) -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "staged"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "StagedConfig",
                "spec": {"version": "string", "brokenOn": "string | default=\"\""}},
            "placement": {"clusterSelector": {"matchLabels": {"env": "prod"}}},
            "rollout": rollout,
            "resources": [
                {"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}"},
                    "data": {"version": "${schema.spec.version}",
                             "healthy": "${schema.spec.brokenOn == cluster.name ? 'no' : 'yes'}"}},
                    "readyWhen": ["${config.data.healthy == 'yes'}"]}
            ]
        }
    })
}

fn instance(version: &str, broken_on: &str, annotations: Value) -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "StagedConfig",
        "metadata": {"name": "s1", "namespace": "apps", "annotations": annotations},
        "spec": {"version": version, "brokenOn": broken_on}})
}

fn waves(extra: Value) -> Value {
    let mut r = json!({
        "waves": [
            {"name": "canary", "clusterSelector": {"matchLabels": {"wave": "canary"}}},
            {"name": "rest"}
        ]
    });
    if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(extra.clone());
    }
    r
}

async fn fleet() -> Fleet {
    let fleet = Fleet::start(&[
        ("c1", json!({"env": "prod", "wave": "canary"})),
        ("c2", json!({"env": "prod", "wave": "canary"})),
        ("c3", json!({"env": "prod"})),
        ("c4", json!({"env": "prod"})),
    ])
    .await
    .unwrap();
    fleet
        .hub
        .apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))
        .await
        .unwrap();
    for name in WAVE_ONE.iter().chain(WAVE_TWO.iter()) {
        fleet.wait_cluster(name, "Reachable").await.unwrap();
    }
    fleet
}

/// The `version` of the ConfigMap on `cluster`, if it exists.
async fn version_on(fleet: &Fleet, cluster: &str) -> Option<String> {
    fleet
        .get_on(cluster, "v1", "ConfigMap", Some("apps"), "s1")
        .await
        .unwrap()
        .and_then(|cm| cm["data"]["version"].as_str().map(str::to_owned))
}

async fn wait_instance(fleet: &Fleet, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    fleet
        .hub
        .wait_for(
            "kro.run/v1alpha1",
            "StagedConfig",
            Some("apps"),
            "s1",
            check,
        )
        .await
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
}

fn rollout(i: &Value) -> &Value {
    &i["status"]["rollout"]
}

/// Creates the RGD and the instance at `v1` and waits until revision 1 has
/// rolled out everywhere.
async fn converged_at_v1(fleet: &Fleet, policy: Value) -> Value {
    fleet.hub.apply(&rgd(policy)).await.unwrap();
    fleet.hub.wait_rgd("staged", "Active").await.unwrap();
    fleet
        .hub
        .apply(&instance("v1", "", json!({})))
        .await
        .unwrap();
    let i = wait_instance(fleet, "revision 1 to complete", |i| {
        rollout(i)["state"] == "Complete" && i["status"]["state"] == "ACTIVE"
    })
    .await;
    assert_eq!(rollout(&i)["revision"], 1, "{}", i["status"]);
    assert_eq!(rollout(&i)["stable"]["spec"]["version"], "v1");
    for c in WAVE_ONE.iter().chain(WAVE_TWO.iter()) {
        assert_eq!(version_on(fleet, c).await.as_deref(), Some("v1"), "{c}");
    }
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_rolls_out_wave_by_wave_after_min_ready_seconds() {
    let fleet = fleet().await;
    converged_at_v1(&fleet, waves(json!({"minReadySeconds": 3}))).await;

    fleet
        .hub
        .apply(&instance("v2", "", json!({})))
        .await
        .unwrap();
    // Watch the members: the canaries move first, the rest only once the
    // canaries have been Ready for minReadySeconds.
    let started = Instant::now();
    let mut canaries_at = None;
    let mut rest_at = None;
    let mut saw_progress = false;
    while started.elapsed() < Duration::from_secs(40) && rest_at.is_none() {
        let one = [
            version_on(&fleet, "c1").await,
            version_on(&fleet, "c2").await,
        ];
        let two = [
            version_on(&fleet, "c3").await,
            version_on(&fleet, "c4").await,
        ];
        if canaries_at.is_none() && one.iter().all(|v| v.as_deref() == Some("v2")) {
            canaries_at = Some(Instant::now());
        }
        if two.iter().any(|v| v.as_deref() == Some("v2")) {
            rest_at = Some(Instant::now());
        } else if canaries_at.is_some() && !saw_progress {
            // While the second wave waits, the status says so.
            let i = fleet
                .hub
                .get("kro.run/v1alpha1", "StagedConfig", Some("apps"), "s1")
                .await
                .unwrap()
                .unwrap();
            let r = rollout(&i);
            if r["revision"] == 2 && r["currentWave"] == "canary" {
                assert_eq!(r["state"], "Progressing", "{r}");
                assert_eq!(i["status"]["state"], "IN_PROGRESS", "{}", i["status"]);
                let c3 = i["status"]["clusters"]
                    .as_array()
                    .and_then(|es| es.iter().find(|e| e["name"] == "c3"))
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(c3["revision"], 1, "c3 still runs revision 1: {c3}");
                assert!(
                    condition(&i, "Progressing").is_some_and(|c| c["status"] == "True"),
                    "{}",
                    i["status"]
                );
                saw_progress = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let canaries_at = canaries_at.expect("the canaries got v2");
    let rest_at = rest_at.expect("the second wave got v2");
    // The window starts when the hub sees the canaries Ready, a little
    // after this loop may have seen their new version.
    assert!(
        rest_at.duration_since(canaries_at) >= Duration::from_millis(2500),
        "the second wave started {:?} after the canaries",
        rest_at.duration_since(canaries_at)
    );
    assert!(saw_progress, "the status showed the first wave in progress");
    let i = wait_instance(&fleet, "revision 2 to complete", |i| {
        rollout(i)["state"] == "Complete" && rollout(i)["revision"] == 2
    })
    .await;
    for c in WAVE_TWO {
        assert_eq!(version_on(&fleet, c).await.as_deref(), Some("v2"));
    }
    assert_eq!(rollout(&i)["stable"]["spec"]["version"], "v2");
    let waves = rollout(&i)["waves"].as_array().cloned().unwrap_or_default();
    assert_eq!(waves.len(), 2);
    assert!(waves.iter().all(|w| w["state"] == "Ready"), "{waves:?}");
    assert_eq!(waves[0]["clusters"], json!(["c1", "c2"]));
    assert_eq!(waves[1]["clusters"], json!(["c3", "c4"]));
    assert!(condition(&i, "Ready").is_some_and(|c| c["status"] == "True"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_never_gets_ready_halts_the_rollout_in_its_wave() {
    let fleet = fleet().await;
    converged_at_v1(&fleet, waves(json!({"progressDeadlineSeconds": 3}))).await;

    fleet
        .hub
        .apply(&instance("v2", "c1", json!({})))
        .await
        .unwrap();
    let i = wait_instance(&fleet, "the rollout to halt", |i| {
        rollout(i)["state"] == "Halted"
    })
    .await;
    let r = rollout(&i);
    assert_eq!(r["failures"][0]["cluster"], "c1", "{r}");
    assert_eq!(r["currentWave"], "canary");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("cluster c1 failed")),
        "{r}"
    );
    assert_eq!(i["status"]["state"], "ERROR");
    assert!(
        condition(&i, "Progressing")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "ProgressDeadlineExceeded"),
        "{}",
        i["status"]
    );
    // The second wave was never touched; the canaries keep v2.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for c in WAVE_TWO {
        assert_eq!(version_on(&fleet, c).await.as_deref(), Some("v1"), "{c}");
    }
    for c in WAVE_ONE {
        assert_eq!(version_on(&fleet, c).await.as_deref(), Some("v2"), "{c}");
    }
    // A fix is a new revision, and it goes through.
    fleet
        .hub
        .apply(&instance("v3", "", json!({})))
        .await
        .unwrap();
    let i = wait_instance(&fleet, "revision 3 to complete", |i| {
        rollout(i)["state"] == "Complete" && rollout(i)["revision"] == 3
    })
    .await;
    assert!(rollout(&i).get("failures").is_none(), "{}", rollout(&i));
    for c in WAVE_TWO {
        assert_eq!(version_on(&fleet, c).await.as_deref(), Some("v3"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_returns_the_updated_clusters_to_the_previous_revision() {
    let fleet = fleet().await;
    converged_at_v1(
        &fleet,
        waves(json!({"progressDeadlineSeconds": 3, "onFailure": "Rollback"})),
    )
    .await;

    fleet
        .hub
        .apply(&instance("v2", "c1", json!({})))
        .await
        .unwrap();
    let i = wait_instance(&fleet, "the rollback", |i| {
        rollout(i)["state"] == "RolledBack"
    })
    .await;
    assert_eq!(i["status"]["state"], "ERROR");
    assert!(
        condition(&i, "Ready").is_some_and(|c| c["reason"] == "RolledBack"),
        "{}",
        i["status"]
    );
    for c in WAVE_ONE {
        fleet
            .wait_on(c, "v1", "ConfigMap", Some("apps"), "s1", |cm| {
                cm.is_some_and(|cm| cm["data"]["version"] == "v1")
            })
            .await
            .unwrap();
    }
    for c in WAVE_TWO {
        assert_eq!(version_on(&fleet, c).await.as_deref(), Some("v1"), "{c}");
    }
    let i = wait_instance(&fleet, "the clusters to report revision 1", |i| {
        i["status"]["clusters"].as_array().is_some_and(|es| {
            es.iter()
                .filter(|e| e["name"] == "c1" || e["name"] == "c2")
                .all(|e| e["revision"] == 1)
        })
    })
    .await;
    assert_eq!(rollout(&i)["revision"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_after_the_wave_and_a_restarted_hub_goes_on() {
    let mut fleet = fleet().await;
    converged_at_v1(&fleet, waves(json!({"minReadySeconds": 1}))).await;

    fleet
        .hub
        .apply(&instance(
            "v2",
            "",
            json!({"hub.kro.run/rollout-paused": "true"}),
        ))
        .await
        .unwrap();
    let i = wait_instance(&fleet, "the pause after the first wave", |i| {
        rollout(i)["state"] == "Paused" && rollout(i)["waves"][0]["state"] == "Ready"
    })
    .await;
    assert!(
        condition(&i, "Progressing").is_some_and(|c| c["status"] == "Unknown"),
        "{}",
        i["status"]
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for c in WAVE_TWO {
        assert_eq!(version_on(&fleet, c).await.as_deref(), Some("v1"), "{c}");
    }

    // A restart while paused: the rollout is where it was, not restarted.
    fleet.hub.stop_hub().await;
    fleet
        .hub
        .apply(&instance(
            "v2",
            "",
            json!({"hub.kro.run/rollout-paused": "false"}),
        ))
        .await
        .unwrap();
    fleet.hub.start_hub(kro_e2e::hub_options()).await.unwrap();
    let i = wait_instance(&fleet, "the resumed rollout to complete", |i| {
        rollout(i)["state"] == "Complete"
    })
    .await;
    assert_eq!(rollout(&i)["revision"], 2, "{}", rollout(&i));
    for c in WAVE_TWO {
        assert_eq!(version_on(&fleet, c).await.as_deref(), Some("v2"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgd_revisions_are_numbered_kept_and_named_when_an_update_is_refused() {
    let fleet = fleet().await;
    converged_at_v1(&fleet, waves(json!({}))).await;
    let rgd_obj = fleet.hub.wait_rgd("staged", "Active").await.unwrap();
    assert_eq!(rgd_obj["status"]["revision"], 1, "{}", rgd_obj["status"]);

    // Pausing the rollout is not a new revision.
    fleet
        .hub
        .apply(&rgd(waves(json!({"paused": true}))))
        .await
        .unwrap();
    // A refused update keeps revision 1 serving, and says so.
    let mut broken = rgd(waves(json!({})));
    broken["spec"]["resources"][0]["readyWhen"] = json!(["${config.data.nope.missing()}"]);
    fleet.hub.apply(&broken).await.unwrap();
    let refused = fleet
        .hub
        .wait_for(
            "kro.run/v1alpha1",
            "ResourceGraphDefinition",
            None,
            "staged",
            |r| r["status"]["state"] == "Inactive",
        )
        .await
        .unwrap();
    let message = condition(&refused, "Ready")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("revision 1") && message.contains("keeps serving"),
        "{message}"
    );
    assert_eq!(refused["status"]["revision"], 1);

    // A real change becomes revision 2, kept as a GraphRevision.
    let mut changed = rgd(waves(json!({})));
    changed["spec"]["resources"][0]["template"]["data"]["extra"] = json!("x");
    fleet.hub.apply(&changed).await.unwrap();
    fleet
        .hub
        .wait_for(
            "kro.run/v1alpha1",
            "ResourceGraphDefinition",
            None,
            "staged",
            |r| r["status"]["revision"] == 2 && r["status"]["state"] == "Active",
        )
        .await
        .unwrap();
    let revisions = fleet
        .hub
        .list("hub.kro.run/v1alpha1", "GraphRevision", None)
        .await
        .unwrap();
    let numbers: Vec<i64> = revisions
        .iter()
        .filter(|r| r["spec"]["resourceGraphDefinition"] == "staged")
        .filter_map(|r| r["spec"]["revision"].as_i64())
        .collect();
    assert_eq!(numbers.len(), 2, "{numbers:?}");
    assert!(numbers.contains(&1) && numbers.contains(&2));
    // The instance rolls the RGD change out as its revision 2.
    let i = wait_instance(&fleet, "the RGD change to roll out", |i| {
        rollout(i)["state"] == "Complete" && rollout(i)["graphRevision"] == 2
    })
    .await;
    assert_eq!(rollout(&i)["revision"], 2);
    // Each cluster records the graph revision its copy was rendered from.
    let i = wait_instance(&fleet, "every cluster at graph revision 2", |i| {
        i["status"]["clusters"]
            .as_array()
            .is_some_and(|es| es.len() == 4 && es.iter().all(|e| e["graphRevision"] == 2))
    })
    .await;
    assert_eq!(i["status"]["state"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rgd_change_is_rolled_back_to_the_previous_graph_revision() {
    let fleet = fleet().await;
    let policy = waves(json!({"progressDeadlineSeconds": 3, "onFailure": "Rollback"}));
    converged_at_v1(&fleet, policy.clone()).await;

    // Graph revision 2 adds a field and breaks the ConfigMap on c1.
    let mut changed = rgd(policy);
    changed["spec"]["resources"][0]["template"]["data"]["extra"] = json!("from-revision-2");
    changed["spec"]["resources"][0]["template"]["data"]["healthy"] =
        json!("${cluster.name == 'c1' ? 'no' : 'yes'}");
    fleet.hub.apply(&changed).await.unwrap();
    let i = wait_instance(&fleet, "the rollback of graph revision 2", |i| {
        rollout(i)["state"] == "RolledBack" && rollout(i)["graphRevision"] == 2
    })
    .await;
    assert_eq!(rollout(&i)["stable"]["graphRevision"], 1, "{}", rollout(&i));
    // The canaries are rendered from graph revision 1 again: no `extra`.
    for c in WAVE_ONE {
        fleet
            .wait_on(c, "v1", "ConfigMap", Some("apps"), "s1", |cm| {
                cm.is_some_and(|cm| {
                    cm["data"].get("extra").is_none() && cm["data"]["healthy"] == "yes"
                })
            })
            .await
            .unwrap();
    }
    let i = wait_instance(&fleet, "the canaries to report graph revision 1", |i| {
        i["status"]["clusters"].as_array().is_some_and(|es| {
            es.iter()
                .filter(|e| e["name"] == "c1" || e["name"] == "c2")
                .all(|e| e["graphRevision"] == 1 && e["state"] == "Ready")
        })
    })
    .await;
    assert_eq!(i["status"]["state"], "ERROR");
    for c in WAVE_TWO {
        let cm = fleet
            .get_on(c, "v1", "ConfigMap", Some("apps"), "s1")
            .await
            .unwrap()
            .unwrap();
        assert!(
            cm["data"].get("extra").is_none(),
            "{c} never got revision 2: {cm}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_member_never_blocks_the_rollout_and_catches_up_when_back() {
    let fleet = fleet().await;
    converged_at_v1(&fleet, waves(json!({"progressDeadlineSeconds": 5}))).await;

    fleet.member("c2").faults().refuse_connections(true);
    fleet.wait_cluster("c2", "Unreachable").await.unwrap();
    fleet
        .hub
        .apply(&instance("v2", "", json!({})))
        .await
        .unwrap();
    let i = wait_instance(&fleet, "the rollout to complete without c2", |i| {
        rollout(i)["state"] == "Complete" && rollout(i)["revision"] == 2
    })
    .await;
    assert!(rollout(&i).get("failures").is_none(), "{}", rollout(&i));
    assert!(
        rollout(&i)["message"]
            .as_str()
            .is_some_and(|m| m.contains("c2 unreachable")),
        "{}",
        rollout(&i)
    );
    for c in ["c1", "c3", "c4"] {
        assert_eq!(version_on(&fleet, c).await.as_deref(), Some("v2"), "{c}");
    }
    // Back: c2 gets the revision of its wave by itself.
    fleet.member("c2").faults().refuse_connections(false);
    fleet
        .wait_on("c2", "v1", "ConfigMap", Some("apps"), "s1", |cm| {
            cm.is_some_and(|cm| cm["data"]["version"] == "v2")
        })
        .await
        .unwrap();
    wait_instance(&fleet, "every cluster Ready at revision 2", |i| {
        i["status"]["state"] == "ACTIVE"
            && i["status"]["clusters"]
                .as_array()
                .is_some_and(|es| es.iter().all(|e| e["revision"] == 2))
    })
    .await;
}

//! Graph behaviour beyond the walk-through: rejected RGDs, includeWhen,
//! readyWhen ordering, external references, drift and deletion policy.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kro_e2e::{Env, condition};
use serde_json::{Value, json};

fn rgd(name: &str, kind: &str, spec: Value, resources: Value) -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1",
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": name},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": kind, "spec": spec}, "resources": resources}
    })
}

fn configmap(id: &str, name: &str, data: Value) -> Value {
    json!({"id": id, "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}})
}

async fn inactive_message(env: &Env, name: &str) -> String {
    let rgd = env.wait_rgd(name, "Inactive").await.unwrap();
    let ready = condition(&rgd, "Ready").expect("Ready condition");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["observedGeneration"], rgd["metadata"]["generation"]);
    ready["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_graphs_are_inactive_with_a_precise_message() {
    let env = Env::start().await.unwrap();
    env.apply(&rgd(
        "cycle",
        "Cycle",
        json!({"name": "string"}),
        json!([
            configmap("a", "${b.metadata.name}-a", json!({})),
            configmap("b", "${a.metadata.name}-b", json!({})),
        ]),
    ))
    .await
    .unwrap();
    env.apply(&rgd(
        "bad-cel",
        "BadCel",
        json!({"name": "string"}),
        json!([configmap("cm", "${schema.spec.name +}", json!({}))]),
    ))
    .await
    .unwrap();
    env.apply(&rgd(
        "unknown-field",
        "UnknownField",
        json!({"name": "string"}),
        json!([configmap("cm", "${schema.spec.nmae}", json!({}))]),
    ))
    .await
    .unwrap();
    let cycle = inactive_message(&env, "cycle").await;
    assert!(
        cycle.contains("a -> b -> a") || cycle.contains("b -> a -> b"),
        "{cycle}"
    );
    let bad = inactive_message(&env, "bad-cel").await;
    assert!(
        bad.contains("bad-cel") && bad.contains("cm") && bad.contains("schema.spec.name +"),
        "{bad}"
    );
    let unknown = inactive_message(&env, "unknown-field").await;
    assert!(unknown.contains("nmae"), "{unknown}");
    // No CRD is served for a rejected graph.
    assert!(
        env.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "cycles.kro.run"
        )
        .await
        .unwrap()
        .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_when_toggles_a_resource_and_its_dependents() {
    let env = Env::start().await.unwrap();
    env.apply(&rgd(
        "toggle",
        "Toggle",
        json!({"name": "string", "withExtra": "boolean | default=false"}),
        json!([
            configmap("base", "${schema.spec.name}-base", json!({"k": "v"})),
            {
                "id": "extra",
                "includeWhen": ["${schema.spec.withExtra}"],
                "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.spec.name}-extra"}, "data": {"from": "${base.metadata.name}"}}
            },
            configmap("dependent", "${extra.metadata.name}-dep", json!({})),
        ]),
    ))
    .await
    .unwrap();
    env.wait_rgd("toggle", "Active").await.unwrap();
    let instance = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Toggle",
        "metadata": {"name": "t1", "namespace": "default"}, "spec": {"name": "t1"}});
    env.apply(&instance).await.unwrap();
    env.wait_for("kro.run/v1alpha1", "Toggle", Some("default"), "t1", |t| {
        t["status"]["state"] == "ACTIVE"
    })
    .await
    .unwrap();
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "t1-base")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "t1-extra")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "t1-extra-dep")
            .await
            .unwrap()
            .is_none()
    );

    let mut on = instance.clone();
    on["spec"]["withExtra"] = json!(true);
    env.apply(&on).await.unwrap();
    let extra = env
        .wait_for("v1", "ConfigMap", Some("default"), "t1-extra", |_| true)
        .await
        .unwrap();
    assert_eq!(extra["data"]["from"], "t1-base");
    env.wait_for("v1", "ConfigMap", Some("default"), "t1-extra-dep", |_| true)
        .await
        .unwrap();

    env.apply(&instance).await.unwrap();
    env.wait_gone("v1", "ConfigMap", Some("default"), "t1-extra")
        .await
        .unwrap();
    env.wait_gone("v1", "ConfigMap", Some("default"), "t1-extra-dep")
        .await
        .unwrap();
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "t1-base")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_and_deleted_children_come_back() {
    let env = Env::start().await.unwrap();
    env.apply(&rgd(
        "drift",
        "Drift",
        json!({"name": "string"}),
        json!([configmap(
            "cm",
            "${schema.spec.name}",
            json!({"key": "wanted"})
        )]),
    ))
    .await
    .unwrap();
    env.wait_rgd("drift", "Active").await.unwrap();
    env.apply(&json!({"apiVersion": "kro.run/v1alpha1", "kind": "Drift",
        "metadata": {"name": "d1", "namespace": "default"}, "spec": {"name": "d1"}}))
        .await
        .unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "d1", |c| {
        c["data"]["key"] == "wanted"
    })
    .await
    .unwrap();

    // Someone edits the child: the hub restores its value but keeps fields it does not own.
    let mut edited = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "d1", "namespace": "default"}, "data": {"key": "tampered", "other": "kept"}});
    env.apply(&edited).await.unwrap();
    let restored = env
        .wait_for("v1", "ConfigMap", Some("default"), "d1", |c| {
            c["data"]["key"] == "wanted"
        })
        .await
        .unwrap();
    assert_eq!(restored["data"]["other"], "kept");

    // Someone deletes the child: it is recreated.
    let before = restored["metadata"]["uid"].clone();
    edited["data"] = json!({});
    env.delete(&edited).await.unwrap();
    let recreated = env
        .wait_for("v1", "ConfigMap", Some("default"), "d1", |c| {
            c["metadata"]["uid"] != before
        })
        .await
        .unwrap();
    assert_eq!(recreated["data"]["key"], "wanted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_when_blocks_dependents_until_true() {
    let env = Env::start().await.unwrap();
    env.apply(&rgd(
        "gate",
        "Gate",
        json!({"name": "string"}),
        json!([
            {
                "id": "gate",
                "readyWhen": ["${gate.data.open == 'yes'}"],
                "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.spec.name}-gate"}, "data": {"placeholder": "x"}}
            },
            configmap("after", "${gate.metadata.name}-after", json!({})),
        ]),
    ))
    .await
    .unwrap();
    env.wait_rgd("gate", "Active").await.unwrap();
    env.apply(&json!({"apiVersion": "kro.run/v1alpha1", "kind": "Gate",
        "metadata": {"name": "g1", "namespace": "default"}, "spec": {"name": "g1"}}))
        .await
        .unwrap();
    let waiting = env
        .wait_for("kro.run/v1alpha1", "Gate", Some("default"), "g1", |g| {
            g["status"]["state"] == "IN_PROGRESS"
        })
        .await
        .unwrap();
    let ready = condition(&waiting, "Ready").unwrap();
    assert!(
        ready["message"].as_str().unwrap().contains("gate"),
        "{ready}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "g1-gate-after")
            .await
            .unwrap()
            .is_none()
    );

    // Another actor opens the gate (a field the hub does not own).
    env.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "g1-gate", "namespace": "default"}, "data": {"open": "yes"}}))
        .await
        .unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "g1-gate-after", |_| {
        true
    })
    .await
    .unwrap();
    env.wait_for("kro.run/v1alpha1", "Gate", Some("default"), "g1", |g| {
        g["status"]["state"] == "ACTIVE"
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_refs_are_read_not_owned() {
    let mut options = kro_e2e::hub_options();
    options.resync = Duration::from_secs(600);
    let env = Env::start_with(options).await.unwrap();
    env.apply(&rgd(
        "ext",
        "Ext",
        json!({"name": "string"}),
        json!([
            {"id": "shared", "externalRef": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "shared-config"}}},
            configmap("copy", "${schema.spec.name}-copy", json!({"color": "${shared.data.color}"})),
        ]),
    ))
    .await
    .unwrap();
    env.wait_rgd("ext", "Active").await.unwrap();
    let instance = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Ext",
        "metadata": {"name": "e1", "namespace": "default"}, "spec": {"name": "e1"}});
    env.apply(&instance).await.unwrap();
    let waiting = env
        .wait_for("kro.run/v1alpha1", "Ext", Some("default"), "e1", |e| {
            e["status"]["state"] == "IN_PROGRESS"
        })
        .await
        .unwrap();
    let msg = condition(&waiting, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("shared-config"), "{msg}");

    let shared = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shared-config", "namespace": "default"}, "data": {"color": "blue"}});
    env.apply(&shared).await.unwrap();
    let copy = env
        .wait_for("v1", "ConfigMap", Some("default"), "e1-copy", |_| true)
        .await
        .unwrap();
    assert_eq!(copy["data"]["color"], "blue");

    // A change to the external object flows through its watch (the resync
    // period of this hub is far longer than the test waits).
    let mut changed = shared.clone();
    changed["data"]["color"] = json!("green");
    env.apply(&changed).await.unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "e1-copy", |c| {
        c["data"]["color"] == "green"
    })
    .await
    .unwrap();

    env.delete(&instance).await.unwrap();
    env.wait_gone("kro.run/v1alpha1", "Ext", Some("default"), "e1")
        .await
        .unwrap();
    env.wait_gone("v1", "ConfigMap", Some("default"), "e1-copy")
        .await
        .unwrap();
    let still = env
        .get("v1", "ConfigMap", Some("default"), "shared-config")
        .await
        .unwrap();
    assert!(still.is_some(), "external objects are never deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_values_are_explicit_never_silently_empty() {
    let env = Env::start().await.unwrap();
    env.apply(&rgd(
        "optional",
        "Optional",
        json!({"name": "string", "team": "string", "tags": "[]string"}),
        json!([
            configmap(
                "lenient",
                "${schema.spec.name}",
                json!({
                    "team": "${schema.spec.?team.orValue(\"none\")}",
                    "hasTeam": "${string(has(schema.spec.team))}",
                    "tagCount": "${string(size(schema.spec.?tags.orValue([])))}"
                })
            ),
            configmap(
                "strict",
                "${schema.spec.name}-strict",
                json!({"team": "${schema.spec.team}"})
            ),
        ]),
    ))
    .await
    .unwrap();
    env.wait_rgd("optional", "Active").await.unwrap();
    let mut inst = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Optional",
        "metadata": {"name": "o1", "namespace": "default"}, "spec": {"name": "o1"}});
    env.apply(&inst).await.unwrap();

    // `?`/orValue and has() give the author's fallback...
    let lenient = env
        .wait_for("v1", "ConfigMap", Some("default"), "o1", |_| true)
        .await
        .unwrap();
    assert_eq!(
        lenient["data"],
        json!({"team": "none", "hasTeam": "false", "tagCount": "0"})
    );
    // ...while a plain reference to an absent field is an error naming it, not "".
    let failed = env
        .wait_for("kro.run/v1alpha1", "Optional", Some("default"), "o1", |o| {
            o["status"]["state"] == "ERROR"
        })
        .await
        .unwrap();
    let msg = condition(&failed, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("strict") && msg.contains("schema.spec.team") && msg.contains("no such key"),
        "{msg}"
    );
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "o1-strict")
            .await
            .unwrap()
            .is_none()
    );

    inst["spec"]["team"] = json!("payments");
    inst["spec"]["tags"] = json!(["a", "b"]);
    env.apply(&inst).await.unwrap();
    let strict = env
        .wait_for("v1", "ConfigMap", Some("default"), "o1-strict", |_| true)
        .await
        .unwrap();
    assert_eq!(strict["data"]["team"], "payments");
    env.wait_for("v1", "ConfigMap", Some("default"), "o1", |c| {
        c["data"] == json!({"team": "payments", "hasTeam": "true", "tagCount": "2"})
    })
    .await
    .unwrap();
    env.wait_for("kro.run/v1alpha1", "Optional", Some("default"), "o1", |o| {
        o["status"]["state"] == "ACTIVE"
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_removed_from_the_rgd_is_deleted_from_every_instance() {
    let env = Env::start().await.unwrap();
    let mut def = rgd(
        "shrink",
        "Shrink",
        json!({"name": "string"}),
        json!([
            configmap("keep", "${schema.spec.name}-keep", json!({})),
            {"id": "secret", "template": {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "${schema.spec.name}-secret"}, "stringData": {"k": "v"}}},
        ]),
    );
    env.apply(&def).await.unwrap();
    env.wait_rgd("shrink", "Active").await.unwrap();
    env.apply(&json!({"apiVersion": "kro.run/v1alpha1", "kind": "Shrink",
        "metadata": {"name": "s1", "namespace": "default"}, "spec": {"name": "s1"}}))
        .await
        .unwrap();
    env.wait_for("v1", "Secret", Some("default"), "s1-secret", |_| true)
        .await
        .unwrap();

    // The Secret leaves the graph; no template uses its kind any more.
    def["spec"]["resources"] = json!([configmap("keep", "${schema.spec.name}-keep", json!({}))]);
    env.apply(&def).await.unwrap();
    env.wait_gone("v1", "Secret", Some("default"), "s1-secret")
        .await
        .unwrap();
    assert!(
        env.get("v1", "ConfigMap", Some("default"), "s1-keep")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_each_expands_a_collection_and_follows_the_list() {
    let env = Env::start().await.unwrap();
    env.apply(&rgd(
        "fanout",
        "Fanout",
        json!({"name": "string", "regions": "[]string"}),
        json!([
            {
                "id": "regional",
                "forEach": [{"region": "${schema.spec.regions}"}],
                "readyWhen": ["${each.data.region != ''}"],
                "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.spec.name}-${region}"}, "data": {"region": "${region}"}}
            },
            configmap("summary", "${schema.spec.name}-summary",
                json!({"count": "${string(size(regional))}"})),
        ]),
    ))
    .await
    .unwrap();
    env.wait_rgd("fanout", "Active").await.unwrap();
    let mut inst = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Fanout",
        "metadata": {"name": "f1", "namespace": "default"},
        "spec": {"name": "f1", "regions": ["eu", "us"]}});
    env.apply(&inst).await.unwrap();
    for region in ["eu", "us"] {
        let cm = env
            .wait_for(
                "v1",
                "ConfigMap",
                Some("default"),
                &format!("f1-{region}"),
                |_| true,
            )
            .await
            .unwrap();
        assert_eq!(cm["data"]["region"], region);
        assert_eq!(cm["metadata"]["labels"]["kro.run/node-id"], "regional");
    }
    env.wait_for("v1", "ConfigMap", Some("default"), "f1-summary", |c| {
        c["data"]["count"] == "2"
    })
    .await
    .unwrap();
    env.wait_for("kro.run/v1alpha1", "Fanout", Some("default"), "f1", |f| {
        f["status"]["state"] == "ACTIVE"
    })
    .await
    .unwrap();

    // A region leaves the list: its object goes, the summary follows.
    inst["spec"]["regions"] = json!(["eu"]);
    env.apply(&inst).await.unwrap();
    env.wait_gone("v1", "ConfigMap", Some("default"), "f1-us")
        .await
        .unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "f1-summary", |c| {
        c["data"]["count"] == "1"
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_selector_refs_read_every_matching_object() {
    let env = Env::start().await.unwrap();
    for (name, team) in [("team-a-1", "a"), ("team-a-2", "a"), ("team-b-1", "b")] {
        env.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": {"team": team}}, "data": {}}))
            .await
            .unwrap();
    }
    env.apply(&rgd(
        "teams",
        "Teams",
        json!({"name": "string", "team": "string"}),
        json!([
            {"id": "members", "externalRef": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"namespace": "default", "selector": {"matchLabels": {"team": "a"}}}}},
            configmap("roster", "${schema.spec.name}-roster",
                json!({"count": "${string(size(members))}"})),
        ]),
    ))
    .await
    .unwrap();
    env.wait_rgd("teams", "Active").await.unwrap();
    env.apply(&json!({"apiVersion": "kro.run/v1alpha1", "kind": "Teams",
        "metadata": {"name": "t1", "namespace": "default"}, "spec": {"name": "t1", "team": "a"}}))
        .await
        .unwrap();
    env.wait_for("v1", "ConfigMap", Some("default"), "t1-roster", |c| {
        c["data"]["count"] == "2"
    })
    .await
    .unwrap();
}

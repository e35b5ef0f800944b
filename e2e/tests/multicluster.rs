//! The hub fanning instances out to member clusters: placement, per-cluster
//! rendering and status, placement changes, members that fail, deletion.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use kro_e2e::condition;
use kro_e2e::fleet::{Fleet, token_of};
use serde_json::{Value, json};

fn web_rgd(placement: Value) -> Value {
    json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "webs"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "Web",
                "spec": {"replicas": "integer | default=1", "regions": "[]string | default=[]"},
                "status": {"availableReplicas": "${deployment.status.availableReplicas}",
                           "region": "${config.data.region}"}},
            "placement": placement,
            "resources": [
                {"id": "config", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-config"},
                    "data": {"region": "${cluster.labels.region}", "cluster": "${cluster.name}"}}},
                {"id": "deployment", "template": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "${schema.metadata.name}"},
                    "spec": {"replicas": "${schema.spec.replicas}",
                        "selector": {"matchLabels": {"app": "${schema.metadata.name}"}},
                        "template": {"metadata": {"labels": {"app": "${schema.metadata.name}"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
                    "readyWhen": ["${deployment.status.?availableReplicas.orValue(0) == deployment.spec.replicas}"]}
            ]
        }
    })
}

fn web(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "Web",
        "metadata": {"name": name, "namespace": "apps"}, "spec": {"replicas": replicas}})
}

async fn three_members() -> Fleet {
    let fleet = Fleet::start(&[
        ("eu-1", json!({"env": "prod", "region": "eu"})),
        ("us-1", json!({"env": "prod", "region": "us"})),
        ("dev-1", json!({"env": "dev", "region": "eu"})),
    ])
    .await
    .unwrap();
    fleet
        .hub
        .apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))
        .await
        .unwrap();
    for name in ["eu-1", "us-1", "dev-1"] {
        fleet.wait_cluster(name, "Reachable").await.unwrap();
    }
    fleet
}

/// Three members and the web RGD placed on the two `env=prod` ones
/// (eu-1 and us-1), Active.
async fn prod_webs() -> Fleet {
    let fleet = three_members().await;
    place_webs_on_prod(&fleet).await;
    fleet
}

/// Installs the web RGD placed on the `env=prod` members and waits until
/// it is Active.
async fn place_webs_on_prod(fleet: &Fleet) {
    fleet
        .hub
        .apply(&web_rgd(
            json!({"clusterSelector": {"matchLabels": {"env": "prod"}}}),
        ))
        .await
        .unwrap();
    fleet.hub.wait_rgd("webs", "Active").await.unwrap();
}

fn entry<'a>(instance: &'a Value, cluster: &str) -> &'a Value {
    instance["status"]["clusters"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["name"] == cluster))
        .unwrap_or(&Value::Null)
}

/// Edits the region of web `name`'s ConfigMap on `member`, as someone on
/// the member might.
async fn tamper_config(fleet: &Fleet, member: &str, name: &str) {
    let client = fleet.member(member).client().await.unwrap();
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, "apps");
    cms.patch(
        &format!("{name}-config"),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"data": {"region": "tampered"}})),
    )
    .await
    .unwrap();
}

/// Waits until web `name`'s ConfigMap on `member` holds `region`.
async fn wait_config_region(fleet: &Fleet, member: &str, name: &str, region: &str) {
    fleet
        .wait_on(
            member,
            "v1",
            "ConfigMap",
            Some("apps"),
            &format!("{name}-config"),
            |c| c.is_some_and(|c| c["data"]["region"] == region),
        )
        .await
        .unwrap();
}

async fn wait_web_gone(fleet: &Fleet, name: &str) {
    fleet
        .hub
        .wait_gone("kro.run/v1alpha1", "Web", Some("apps"), name)
        .await
        .unwrap();
}

async fn wait_web(fleet: &Fleet, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    fleet
        .hub
        .wait_for("kro.run/v1alpha1", "Web", Some("apps"), name, check)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_lands_exactly_on_the_selected_members_with_their_own_values() {
    let fleet = three_members().await;
    let cluster = fleet
        .hub
        .get("hub.kro.run/v1alpha1", "Cluster", None, "eu-1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        cluster["status"]["kubernetesVersion"].is_string(),
        "{cluster}"
    );

    place_webs_on_prod(&fleet).await;
    fleet.hub.apply(&web("shop", 2)).await.unwrap();
    let shop = wait_web(&fleet, "shop", |w| w["status"]["state"] == "ACTIVE").await;

    // Per-cluster values, aggregated by the documented rule.
    assert_eq!(shop["status"]["placement"]["summary"], "2/2", "{shop}");
    assert_eq!(entry(&shop, "eu-1")["state"], "Ready");
    assert_eq!(entry(&shop, "eu-1")["values"]["region"], "eu");
    assert_eq!(entry(&shop, "us-1")["values"]["region"], "us");
    assert_eq!(entry(&shop, "us-1")["resourcesReady"], "2/2");
    assert_eq!(
        entry(&shop, "eu-1")["observedGeneration"],
        shop["metadata"]["generation"]
    );
    assert_eq!(
        shop["status"]["availableReplicas"], 4,
        "summed over clusters"
    );
    assert!(
        shop["status"].get("region").is_none(),
        "clusters disagree: not aggregated"
    );
    assert!(entry(&shop, "dev-1").is_null());
    assert!(condition(&shop, "Ready").is_some_and(|c| c["status"] == "True"));

    // The copies exist exactly there, in the namespace created for them.
    for (member, region) in [("eu-1", "eu"), ("us-1", "us")] {
        let cm = fleet
            .get_on(member, "v1", "ConfigMap", Some("apps"), "shop-config")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cm["data"]["region"], region);
        assert_eq!(cm["data"]["cluster"], member);
        assert_eq!(cm["metadata"]["labels"]["hub.kro.run/cluster"], member);
        assert_eq!(
            cm["metadata"]["labels"]["hub.kro.run/instance-uid"],
            shop["metadata"]["uid"]
        );
        let ns = fleet
            .get_on(member, "v1", "Namespace", None, "apps")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ns["metadata"]["labels"]["hub.kro.run/created-by"],
            "kro-hub"
        );
    }
    assert!(
        fleet
            .get_on("dev-1", "v1", "ConfigMap", Some("apps"), "shop-config")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fleet
            .hub
            .get("v1", "ConfigMap", Some("apps"), "shop-config")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fleet
            .get_on("dev-1", "v1", "Namespace", None, "apps")
            .await
            .unwrap()
            .is_none()
    );

    // A spec change is Ready only once every cluster runs it.
    fleet.hub.apply(&web("shop", 3)).await.unwrap();
    let shop = wait_web(&fleet, "shop", |w| {
        w["status"]["state"] == "ACTIVE" && w["status"]["availableReplicas"] == 6
    })
    .await;
    assert_eq!(
        entry(&shop, "eu-1")["observedGeneration"],
        shop["metadata"]["generation"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_follows_cluster_labels_and_the_instance_spec() {
    let fleet = three_members().await;
    fleet
        .hub
        .apply(&web_rgd(json!({
            "clusterSelector": {"matchLabels": {"env": "prod"}},
            "when": "${cluster.labels.region in schema.spec.regions}"
        })))
        .await
        .unwrap();
    fleet.hub.wait_rgd("webs", "Active").await.unwrap();
    let mut shop = web("shop", 1);
    shop["spec"]["regions"] = json!(["eu"]);
    fleet.hub.apply(&shop).await.unwrap();
    wait_web(&fleet, "shop", |w| w["status"]["state"] == "ACTIVE").await;
    fleet
        .wait_on(
            "eu-1",
            "v1",
            "ConfigMap",
            Some("apps"),
            "shop-config",
            |c| c.is_some(),
        )
        .await
        .unwrap();
    assert!(
        fleet
            .get_on("us-1", "v1", "ConfigMap", Some("apps"), "shop-config")
            .await
            .unwrap()
            .is_none()
    );

    // `when` over the spec moves the instance from eu to us.
    shop["spec"]["regions"] = json!(["us"]);
    fleet.hub.apply(&shop).await.unwrap();
    fleet
        .wait_on(
            "us-1",
            "v1",
            "ConfigMap",
            Some("apps"),
            "shop-config",
            |c| c.is_some(),
        )
        .await
        .unwrap();
    fleet
        .wait_on(
            "eu-1",
            "v1",
            "ConfigMap",
            Some("apps"),
            "shop-config",
            |c| c.is_none(),
        )
        .await
        .unwrap();
    // Once its copies are gone, eu-1 leaves the status (the status is
    // written by the pass after the deletion, not with it).
    let moved = wait_web(&fleet, "shop", |w| {
        w["status"]["state"] == "ACTIVE" && entry(w, "eu-1").is_null()
    })
    .await;
    assert_eq!(entry(&moved, "us-1")["state"], "Ready", "{moved}");

    // Relabelling a Cluster brings it into the placement.
    fleet
        .hub
        .apply(&json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "dev-1", "labels": {"env": "prod", "region": "us"}},
            "spec": {"kubeconfigSecretRef": {"namespace": "kro-system", "name": "dev-1-kubeconfig"}}}))
        .await
        .unwrap();
    fleet
        .wait_on(
            "dev-1",
            "v1",
            "ConfigMap",
            Some("apps"),
            "shop-config",
            |c| c.is_some(),
        )
        .await
        .unwrap();
    let both = wait_web(&fleet, "shop", |w| {
        w["status"]["placement"]["summary"] == "2/2"
    })
    .await;
    assert_eq!(entry(&both, "dev-1")["values"]["region"], "us");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_deselect_orphan_leaves_the_copies() {
    let fleet = three_members().await;
    fleet
        .hub
        .apply(&web_rgd(
            json!({"clusters": ["eu-1"], "onDeselect": "Orphan"}),
        ))
        .await
        .unwrap();
    fleet.hub.wait_rgd("webs", "Active").await.unwrap();
    fleet.hub.apply(&web("shop", 1)).await.unwrap();
    wait_web(&fleet, "shop", |w| w["status"]["state"] == "ACTIVE").await;
    let mut rgd = web_rgd(json!({"clusters": ["us-1"], "onDeselect": "Orphan"}));
    rgd["metadata"]["annotations"] = json!({"kro.run/allow-breaking-changes": "true"});
    fleet.hub.apply(&rgd).await.unwrap();
    wait_web(&fleet, "shop", |w| {
        entry(w, "us-1")["state"] == "Ready" && entry(w, "eu-1").is_null()
    })
    .await;
    // Still on eu-1, released from the hub's labels.
    let left = fleet
        .get_on("eu-1", "v1", "ConfigMap", Some("apps"), "shop-config")
        .await
        .unwrap()
        .unwrap();
    assert!(
        left["metadata"]["labels"]
            .get("hub.kro.run/cluster")
            .is_none(),
        "{left}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_member_holds_back_only_its_own_entry_and_deletion() {
    let fleet = prod_webs().await;
    fleet.hub.apply(&web("shop", 1)).await.unwrap();
    wait_web(&fleet, "shop", |w| w["status"]["state"] == "ACTIVE").await;

    fleet.member("us-1").faults().refuse_connections(true);
    let degraded = wait_web(&fleet, "shop", |w| {
        entry(w, "us-1")["state"] == "Unreachable"
    })
    .await;
    assert_eq!(entry(&degraded, "eu-1")["state"], "Ready");
    assert_eq!(entry(&degraded, "us-1")["stale"], true);
    assert_eq!(degraded["status"]["placement"]["summary"], "1/2");
    let ready = condition(&degraded, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("cluster us-1 (Unreachable"),
        "{ready}"
    );

    // It comes back and converges with no user action.
    fleet.member("us-1").faults().refuse_connections(false);
    wait_web(&fleet, "shop", |w| w["status"]["state"] == "ACTIVE").await;

    // Deleting while it is down: the finalizer is held, the status says why.
    fleet.member("us-1").faults().refuse_connections(true);
    fleet.wait_cluster("us-1", "Unreachable").await.unwrap();
    fleet.hub.delete(&web("shop", 1)).await.unwrap();
    let held = wait_web(&fleet, "shop", |w| {
        condition(w, "Ready").is_some_and(|c| {
            c["message"]
                .as_str()
                .unwrap_or_default()
                .contains("cluster us-1 is unreachable")
        })
    })
    .await;
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    fleet
        .wait_on(
            "eu-1",
            "v1",
            "ConfigMap",
            Some("apps"),
            "shop-config",
            |c| c.is_none(),
        )
        .await
        .unwrap();
    // Released once the member answers; its copies go too.
    fleet.member("us-1").faults().refuse_connections(false);
    wait_web_gone(&fleet, "shop").await;
    assert!(
        fleet
            .get_on("us-1", "v1", "ConfigMap", Some("apps"), "shop-config")
            .await
            .unwrap()
            .is_none()
    );

    // The orphan annotation releases it without the member.
    fleet.hub.apply(&web("cart", 1)).await.unwrap();
    wait_web(&fleet, "cart", |w| w["status"]["state"] == "ACTIVE").await;
    fleet.member("us-1").faults().refuse_connections(true);
    fleet.wait_cluster("us-1", "Unreachable").await.unwrap();
    let mut cart = web("cart", 1);
    cart["metadata"]["annotations"] = json!({"hub.kro.run/orphan-unreachable": "true"});
    fleet.hub.apply(&cart).await.unwrap();
    fleet.hub.delete(&cart).await.unwrap();
    wait_web_gone(&fleet, "cart").await;
    fleet.member("us-1").faults().refuse_connections(false);
    assert!(
        fleet
            .get_on("us-1", "v1", "ConfigMap", Some("apps"), "cart-config")
            .await
            .unwrap()
            .is_some(),
        "abandoned copies stay on the member"
    );
}

/// Everything the hub logs in this test process (each test runs in its
/// own process), at every level.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_unauthorized_without_leaking_and_a_rotated_one_is_picked_up() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();
    let fleet = Fleet::start(&[]).await.unwrap();
    let member = kro_sandbox::SandboxBuilder::new("eu-2")
        .token(&token_of("eu-2"))
        .start()
        .await
        .unwrap();
    let wrong = member.kubeconfig_yaml_with_token("not-the-right-token-42");
    fleet
        .register("eu-2", json!({"env": "prod"}), &wrong)
        .await
        .unwrap();
    let cluster = fleet.wait_cluster("eu-2", "Unauthorized").await.unwrap();
    let text = cluster.to_string();
    assert!(!text.contains("not-the-right-token-42"), "{text}");
    assert!(!text.contains(&token_of("eu-2")), "{text}");
    // Rotation: the Secret now holds the right token; no restart.
    fleet
        .register("eu-2", json!({"env": "prod"}), &member.kubeconfig_yaml())
        .await
        .unwrap();
    let cluster = fleet.wait_cluster("eu-2", "Reachable").await.unwrap();
    assert_eq!(condition(&cluster, "Ready").unwrap()["status"], "True");
    // Neither token is in anything the hub logged, at any level.
    let logged = logs.text();
    assert!(
        logged.contains("member health changed"),
        "the hub's logs were captured"
    );
    assert!(!logged.contains("not-the-right-token-42"));
    assert!(!logged.contains(&token_of("eu-2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_on_a_member_is_corrected_from_its_watch() {
    let fleet = three_members().await;
    fleet
        .hub
        .apply(&web_rgd(json!({"clusters": ["eu-1"]})))
        .await
        .unwrap();
    fleet.hub.wait_rgd("webs", "Active").await.unwrap();
    fleet.hub.apply(&web("shop", 1)).await.unwrap();
    wait_web(&fleet, "shop", |w| w["status"]["state"] == "ACTIVE").await;
    // Edited on the member: put back (well before the 30 s resync).
    tamper_config(&fleet, "eu-1", "shop").await;
    let started = std::time::Instant::now();
    wait_config_region(&fleet, "eu-1", "shop", "eu").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // Deleted on the member: created again.
    let client = fleet.member("eu-1").client().await.unwrap();
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, "apps");
    cms.delete("shop-config", &Default::default())
        .await
        .unwrap();
    fleet
        .wait_on(
            "eu-1",
            "v1",
            "ConfigMap",
            Some("apps"),
            "shop-config",
            |c| c.is_some(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_on_a_member_the_instance_did_not_create_is_refused_there_only() {
    let fleet = three_members().await;
    fleet
        .hub
        .apply(&web_rgd(json!({"clusters": ["eu-1", "us-1", "dev-1"]})))
        .await
        .unwrap();
    fleet.hub.wait_rgd("webs", "Active").await.unwrap();
    // A first instance starts the hub's watches on every member: the objects
    // below are made after them and reach the hub only through them.
    fleet.hub.apply(&web("warm", 1)).await.unwrap();
    wait_web(&fleet, "warm", |w| w["status"]["state"] == "ACTIVE").await;
    let configmaps = |member: &str| {
        let member = member.to_owned();
        let fleet = &fleet;
        async move {
            let client = fleet.member(&member).client().await.unwrap();
            kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client, "apps")
        }
    };
    let foreign = [
        ("eu-1", json!({})),
        ("us-1", json!({"kro.run/instance-id": "someone-else"})),
    ];
    for (member, labels) in &foreign {
        let cm = serde_json::from_value(
            json!({"metadata": {"name": "shop-config", "labels": labels},
            "data": {"owner": "platform"}}),
        )
        .unwrap();
        configmaps(member)
            .await
            .create(&Default::default(), &cm)
            .await
            .unwrap();
    }
    fleet.hub.apply(&web("shop", 1)).await.unwrap();
    let shop = wait_web(&fleet, "shop", |w| {
        entry(w, "eu-1")["state"] == "Error"
            && entry(w, "us-1")["state"] == "Error"
            && entry(w, "dev-1")["state"] == "Ready"
    })
    .await;
    for (cluster, why) in [
        (
            "eu-1",
            "ConfigMap apps/shop-config already exists and is not this instance's (it carries no kro instance label)",
        ),
        ("us-1", "it belongs to the instance with uid someone-else"),
    ] {
        let message = &entry(&shop, cluster)["message"];
        assert!(
            message.as_str().is_some_and(|m| m.contains(why)),
            "{cluster}: {message}"
        );
    }
    // Deleting the instance leaves both objects as they were.
    fleet.hub.delete(&web("shop", 1)).await.unwrap();
    wait_web_gone(&fleet, "shop").await;
    for (member, _) in &foreign {
        let cm = configmaps(member).await.get("shop-config").await.unwrap();
        assert_eq!(cm.data.unwrap_or_default()["owner"], "platform", "{member}");
    }
}

fn writes(metrics: &kro_hub::metrics::Metrics, cluster: &str) -> u64 {
    ["create", "update", "apply", "patch", "delete"]
        .iter()
        .map(|v| metrics.api_calls(cluster, v))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_placed_instance_writes_nothing_anywhere() {
    let mut fleet = three_members().await;
    fleet.hub.stop_hub().await;
    let mut options = kro_e2e::hub_options();
    options.member_probe_interval = std::time::Duration::from_millis(300);
    options.resync = std::time::Duration::from_millis(500);
    fleet.hub.start_hub(options).await.unwrap();
    fleet
        .hub
        .apply(&web_rgd(json!({"clusterSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]}})))
        .await
        .unwrap();
    fleet.hub.wait_rgd("webs", "Active").await.unwrap();
    fleet.hub.apply(&web("shop", 1)).await.unwrap();
    wait_web(&fleet, "shop", |w| {
        w["status"]["placement"]["summary"] == "3/3"
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let clusters = ["hub", "eu-1", "us-1", "dev-1"];
    let before: Vec<u64> = clusters
        .iter()
        .map(|c| writes(&fleet.hub.metrics, c))
        .collect();
    assert!(before[1] > 0, "member writes are counted: {before:?}");
    let reconciles = fleet.hub.metrics.render();
    // Several resyncs and member probes.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let after: Vec<u64> = clusters
        .iter()
        .map(|c| writes(&fleet.hub.metrics, c))
        .collect();
    assert_eq!(
        before,
        after,
        "writes on {clusters:?}\n{}",
        fleet.hub.metrics.render()
    );
    assert_ne!(reconciles, fleet.hub.metrics.render(), "resyncs did run");
    // Members are read from the watches' stores, not GET per child.
    let gets = |m: &kro_hub::metrics::Metrics| -> u64 {
        ["eu-1", "us-1", "dev-1"]
            .iter()
            .map(|c| m.api_calls(c, "get"))
            .sum()
    };
    let gets_before = gets(&fleet.hub.metrics);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        gets(&fleet.hub.metrics),
        gets_before,
        "GETs on members while converged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restart_mid_fan_out_loses_and_duplicates_nothing() {
    let mut fleet = prod_webs().await;
    for i in 0..4 {
        fleet.hub.apply(&web(&format!("shop{i}"), 1)).await.unwrap();
    }
    // Stop the hub while the fan-out is under way, then start a new one.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    fleet.hub.stop_hub().await;
    let mut options = kro_e2e::hub_options();
    options.member_probe_interval = std::time::Duration::from_millis(300);
    fleet.hub.start_hub(options).await.unwrap();
    for i in 0..4 {
        let name = format!("shop{i}");
        wait_web(&fleet, &name, |w| w["status"]["state"] == "ACTIVE").await;
    }
    for member in ["eu-1", "us-1"] {
        let client = fleet.member(member).client().await.unwrap();
        let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client.clone(), "apps");
        let ours = cms
            .list(&kube::api::ListParams::default().labels("hub.kro.run/cluster"))
            .await
            .unwrap();
        assert_eq!(
            ours.items.len(),
            4,
            "one ConfigMap per instance on {member}"
        );
    }
    assert!(
        fleet
            .get_on("dev-1", "v1", "Namespace", None, "apps")
            .await
            .unwrap()
            .is_none()
    );
}

/// Whole passes (not answered from a record) of the web RGD's instances
/// since the hub started.
fn whole_passes(fleet: &Fleet) -> u64 {
    let m = &fleet.hub.metrics;
    m.reconciles("instance/webs") - m.passes_skipped("instance/webs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_hub_passes_over_unchanged_instances_and_repairs_the_rest() {
    let mut fleet = prod_webs().await;
    for name in ["calm", "edited"] {
        fleet.hub.apply(&web(name, 1)).await.unwrap();
    }
    for name in ["calm", "edited"] {
        // Ready everywhere: the status holds what the pass read.
        wait_web(&fleet, name, |w| {
            w["status"]["state"] == "ACTIVE" && w["status"]["inputsHash"].is_string()
        })
        .await;
    }
    // Converged instances waiting for their resync (30 s away) are not
    // queued work, though the echoes of their last writes were answered
    // from the record.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let text = fleet.hub.metrics.render();
    assert!(
        text.contains("kro_hub_queue_depth{controller=\"instance/webs\"} 0"),
        "{text}"
    );
    // No resync during the test: only a start-up pass can repair a copy.
    let mut options = kro_e2e::hub_options();
    options.resync = std::time::Duration::from_secs(600);

    // Nothing changed while the hub was down: no pass at all.
    fleet.hub.stop_hub().await;
    fleet.hub.start_hub(options.clone()).await.unwrap();
    kro_e2e::eventually(
        "both instances looked at",
        std::time::Duration::from_secs(30),
        || async {
            let n = fleet.hub.metrics.reconciles("instance/webs");
            Ok::<_, String>((n >= 2).then_some(()))
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(whole_passes(&fleet), 0, "{}", fleet.hub.metrics.render());
    assert_eq!(kro_e2e::hub_writes(&fleet.hub.metrics), 0);

    // A copy edited while the hub was down is repaired at once.
    fleet.hub.stop_hub().await;
    tamper_config(&fleet, "eu-1", "edited").await;
    fleet.hub.start_hub(options.clone()).await.unwrap();
    wait_config_region(&fleet, "eu-1", "edited", "eu").await;
    assert!(whole_passes(&fleet) >= 1);

    // The status never stands in for a resync: that pass is whole. (The
    // repaired instance's hash is stale, its status unchanged: only the
    // calm one stays.)
    fleet.hub.delete(&web("edited", 1)).await.unwrap();
    wait_web_gone(&fleet, "edited").await;
    fleet.hub.stop_hub().await;
    options.resync = std::time::Duration::from_secs(2);
    fleet.hub.start_hub(options).await.unwrap();
    kro_e2e::eventually(
        "the resync's whole pass",
        std::time::Duration::from_secs(20),
        || async { Ok::<_, String>((whole_passes(&fleet) >= 1).then_some(())) },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_not_probed_yet_is_not_called_unreachable_when_the_hub_restarts() {
    let mut fleet = prod_webs().await;
    fleet.hub.apply(&web("shop", 1)).await.unwrap();
    let before = wait_web(&fleet, "shop", |w| w["status"]["state"] == "ACTIVE").await;
    // While the hub is down, us-1's address becomes one that accepts
    // connections and never answers: its first probe takes 10 s.
    fleet.hub.stop_hub().await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let us = fleet.member("us-1");
    let kubeconfig = us
        .kubeconfig_yaml()
        .replace(&us.url(), &format!("http://{address}"));
    fleet
        .register("us-1", json!({"env": "prod", "region": "us"}), &kubeconfig)
        .await
        .unwrap();
    fleet.hub.start_hub(kro_e2e::hub_options()).await.unwrap();
    // Meanwhile the instance's status stands as it was.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let during = wait_web(&fleet, "shop", |_| true).await;
    assert_eq!(
        during["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "{during}"
    );
    // The probe's outcome, once there is one, is reported.
    let after = fleet
        .hub
        .wait_for("kro.run/v1alpha1", "Web", Some("apps"), "shop", |w| {
            entry(w, "us-1")["state"] == "Unreachable"
        })
        .await
        .unwrap();
    assert_eq!(entry(&after, "eu-1")["state"], "Ready", "{after}");
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_resources_stay_on_the_hub_and_member_resources_may_read_them() {
    let fleet = three_members().await;
    let rgd = json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": "summaries"},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "Summary", "spec": {"owner": "string | default=platform"}},
            "placement": {"clusters": ["eu-1", "us-1"]},
            "resources": [
                {"id": "record", "target": "Hub", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-record"},
                    "data": {"owner": "${schema.spec.owner}"}}},
                {"id": "copy", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "${schema.metadata.name}-copy"},
                    "data": {"owner": "${record.data.owner}", "cluster": "${cluster.name}"}}}
            ]
        }
    });
    fleet.hub.apply(&rgd).await.unwrap();
    fleet.hub.wait_rgd("summaries", "Active").await.unwrap();
    fleet
        .hub
        .apply(&json!({"apiVersion": "kro.run/v1alpha1", "kind": "Summary",
            "metadata": {"name": "s1", "namespace": "apps"}, "spec": {}}))
        .await
        .unwrap();
    fleet
        .hub
        .wait_for("kro.run/v1alpha1", "Summary", Some("apps"), "s1", |s| {
            s["status"]["state"] == "ACTIVE"
        })
        .await
        .unwrap();
    let record = fleet
        .hub
        .get("v1", "ConfigMap", Some("apps"), "s1-record")
        .await
        .unwrap();
    assert_eq!(record.unwrap()["data"]["owner"], "platform");
    assert!(
        fleet
            .hub
            .get("v1", "ConfigMap", Some("apps"), "s1-copy")
            .await
            .unwrap()
            .is_none()
    );
    for member in ["eu-1", "us-1"] {
        let copy = fleet
            .get_on(member, "v1", "ConfigMap", Some("apps"), "s1-copy")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(copy["data"]["owner"], "platform");
        assert_eq!(copy["data"]["cluster"], member);
        assert!(
            fleet
                .get_on(member, "v1", "ConfigMap", Some("apps"), "s1-record")
                .await
                .unwrap()
                .is_none()
        );
    }

    // A hub resource that reads a member resource is refused, both named.
    let mut bad = rgd.clone();
    bad["metadata"]["name"] = json!("backwards");
    bad["spec"]["schema"]["kind"] = json!("Backwards");
    bad["spec"]["resources"][0]["template"]["data"]["owner"] = json!("${copy.data.cluster}");
    bad["spec"]["resources"][1]["template"]["data"] = json!({"cluster": "${cluster.name}"});
    fleet.hub.apply(&bad).await.unwrap();
    let refused = fleet.hub.wait_rgd("backwards", "Inactive").await.unwrap();
    let message = condition(&refused, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("record") && message.contains("copy"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_add_list_and_remove() {
    use kro_hub::members::cli;
    let fleet = Fleet::start(&[]).await.unwrap();
    let member = kro_sandbox::SandboxBuilder::new("edge-1")
        .token(&token_of("edge-1"))
        .start()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("kro-hub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("edge-1.kubeconfig");
    member.write_kubeconfig(&file).unwrap();
    let labels = ["env=edge".to_owned(), "region=eu".to_owned()];
    cli::add(
        &fleet.hub.client,
        &cli::AddRequest {
            name: "edge-1",
            kubeconfig: &file,
            context: None,
            labels: &labels,
            namespace: "kro-system",
        },
    )
    .await
    .unwrap();
    fleet.wait_cluster("edge-1", "Reachable").await.unwrap();
    let table = cli::list(&fleet.hub.client).await.unwrap();
    let row = table.lines().find(|l| l.starts_with("edge-1")).unwrap();
    assert!(
        row.contains("env=edge,region=eu") && row.contains("True (Reachable)"),
        "{table}"
    );
    assert!(!table.contains(&token_of("edge-1")), "{table}");
    assert!(
        cli::remove(
            &fleet.hub.client,
            "edge-1",
            "kro-system",
            std::time::Duration::from_secs(30)
        )
        .await
        .unwrap()
    );
    assert!(
        fleet
            .hub
            .get("hub.kro.run/v1alpha1", "Cluster", None, "edge-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fleet
            .hub
            .get("v1", "Secret", Some("kro-system"), "edge-1-kubeconfig")
            .await
            .unwrap()
            .is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_cluster_removes_its_copies_first() {
    let fleet = prod_webs().await;
    fleet.hub.apply(&web("shop", 1)).await.unwrap();
    wait_web(&fleet, "shop", |w| {
        w["status"]["placement"]["summary"] == "2/2"
    })
    .await;

    let us = json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster", "metadata": {"name": "us-1"}});
    fleet.hub.delete(&us).await.unwrap();
    fleet
        .hub
        .wait_gone("hub.kro.run/v1alpha1", "Cluster", None, "us-1")
        .await
        .unwrap();
    assert!(
        fleet
            .get_on("us-1", "v1", "ConfigMap", Some("apps"), "shop-config")
            .await
            .unwrap()
            .is_none()
    );
    let shop = wait_web(&fleet, "shop", |w| entry(w, "us-1").is_null()).await;
    assert_eq!(shop["status"]["placement"]["summary"], "1/1");

    // An unreachable Cluster is held until the annotation gives it up.
    fleet.member("eu-1").faults().refuse_connections(true);
    fleet.wait_cluster("eu-1", "Unreachable").await.unwrap();
    let eu = json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster", "metadata": {"name": "eu-1"}});
    fleet.hub.delete(&eu).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        fleet
            .hub
            .get("hub.kro.run/v1alpha1", "Cluster", None, "eu-1")
            .await
            .unwrap()
            .is_some()
    );
    fleet
        .hub
        .apply(&json!({"apiVersion": "hub.kro.run/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "eu-1", "labels": {"env": "prod", "region": "eu"},
                "annotations": {"hub.kro.run/orphan-unreachable": "true"}},
            "spec": {"kubeconfigSecretRef": {"namespace": "kro-system", "name": "eu-1-kubeconfig"}}}))
        .await
        .unwrap();
    fleet
        .hub
        .wait_gone("hub.kro.run/v1alpha1", "Cluster", None, "eu-1")
        .await
        .unwrap();
    wait_web(&fleet, "shop", |w| entry(w, "eu-1").is_null()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_a_selected_member_does_not_serve_is_named_with_the_member() {
    let fleet = three_members().await;
    let mut rgd = web_rgd(json!({"clusters": ["eu-1"]}));
    rgd["spec"]["resources"][0] = json!({"id": "config", "template": {
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "${schema.metadata.name}-widget"}, "spec": {}}});
    rgd["spec"]["schema"]["status"] =
        json!({"availableReplicas": "${deployment.status.availableReplicas}"});
    fleet.hub.apply(&rgd).await.unwrap();
    let refused = fleet.hub.wait_rgd("webs", "Inactive").await.unwrap();
    let message = condition(&refused, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("resource \"config\" uses kind Widget example.com/v1, which member cluster \"eu-1\" does not serve"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_placement_watches_its_members_before_the_first_instance() {
    let fleet = prod_webs().await;
    // Both kinds on both selected members: the children's watch and the
    // name index's, listing while the instances are listed, not after.
    let watches = |cluster: &str| fleet.hub.metrics.api_calls(cluster, "watch");
    kro_e2e::eventually("watches on the selected members", kro_e2e::WAIT, || async {
        let counts = [watches("eu-1"), watches("us-1")];
        if counts.iter().all(|n| *n >= 4) {
            Ok(Some(()))
        } else {
            Err(format!("watches on eu-1 and us-1: {counts:?}"))
        }
    })
    .await
    .unwrap();
    assert_eq!(watches("dev-1"), 0, "a member the placement leaves out");
}

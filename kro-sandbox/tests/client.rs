//! The sandbox through a real `kube::Client` over HTTP: CRUD, server-side apply ownership,
//! watcher resume after 410, CRDs and custom objects, finalizers, auth, faults, simulator,
//! namespace deletion and persistence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kro_sandbox::{Sandbox, SandboxBuilder};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .unwrap();
}

fn cm(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "demo"}}, "data": data}),
    )
    .unwrap()
}

fn status_code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn crud_with_conflicts_and_selectors() {
    let sb = SandboxBuilder::new("crud")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "app");
    let created = api
        .create(&PostParams::default(), &cm("a", json!({"k": "v"})))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    let dup = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert_eq!(status_code(&dup), 409);

    let listed = api
        .list(&ListParams::default().labels("app=demo").limit(1))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let token = listed.metadata.continue_.clone().unwrap();
    let rest = api
        .list(
            &ListParams::default()
                .labels("app=demo")
                .limit(1)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(rest.items[0].metadata.name.as_deref(), Some("b"));

    let mut stale = created.clone();
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_owned(), "w".to_owned())].into());
    api.replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    stale.data = Some([("k".to_owned(), "x".to_owned())].into());
    let conflict = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(status_code(&conflict), 409);

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(status_code(&api.get("a").await.unwrap_err()), 404);
    let missing_ns: Api<ConfigMap> = Api::namespaced(client, "nope");
    assert_eq!(
        status_code(
            &missing_ns
                .create(&PostParams::default(), &cm("x", json!({})))
                .await
                .unwrap_err()
        ),
        404
    );
}

#[tokio::test]
async fn server_side_apply_tracks_ownership() {
    let sb = SandboxBuilder::new("ssa")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "app");
    let apply = |data: serde_json::Value| {
        Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data}),
        )
    };
    api.patch(
        "cfg",
        &PatchParams::apply("alice"),
        &apply(json!({"a": "1", "b": "2"})),
    )
    .await
    .unwrap();
    let err = api
        .patch("cfg", &PatchParams::apply("bob"), &apply(json!({"a": "9"})))
        .await
        .unwrap_err();
    match &err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("conflict with \"alice\""),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    api.patch(
        "cfg",
        &PatchParams::apply("bob").force(),
        &apply(json!({"a": "9"})),
    )
    .await
    .unwrap();
    // alice drops `b` from her configuration: the field goes away; `a` now belongs to bob.
    let after = api
        .patch(
            "cfg",
            &PatchParams::apply("alice").force(),
            &apply(json!({})),
        )
        .await
        .unwrap();
    let data = after.data.unwrap_or_default();
    assert_eq!(data.get("a").map(String::as_str), Some("9"));
    assert!(!data.contains_key("b"));
    let managers: Vec<String> = after
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"bob".to_owned()));
}

#[tokio::test]
async fn watcher_relists_after_410() {
    let sb = SandboxBuilder::new("watch")
        .simulator(false)
        .history(8)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "w").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "w");
    api.create(&PostParams::default(), &cm("first", json!({})))
        .await
        .unwrap();

    // A raw watch from a version older than the kept history is answered with 410 Gone.
    let old_rv = api
        .get("first")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("fill{i}"), json!({})))
            .await
            .unwrap();
    }
    let mut raw = api
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    match raw.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }

    // The runtime watcher survives an outage longer than the history by relisting.
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        if let Some(Ok(watcher::Event::InitDone)) = events.next().await {
            break;
        }
    }
    sb.faults().fail_watches_with(Some(503));
    sb.faults().drop_watches();
    for i in 0..12 {
        api.create(&PostParams::default(), &cm(&format!("late{i}"), json!({})))
            .await
            .unwrap();
    }
    sb.faults().fail_watches_with(None);
    let mut relisted = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("watcher stalled")
            .unwrap();
        // Errors (the outage, then 410 Gone) are reported and the watcher carries on.
        let Ok(ev) = ev else { continue };
        match ev {
            watcher::Event::Init => relisted.clear(),
            watcher::Event::InitApply(o) => relisted.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone if !relisted.is_empty() => break,
            _ => {}
        }
    }
    assert!(relisted.contains(&"late11".to_owned()), "{relisted:?}");
}

#[tokio::test]
async fn crd_registers_custom_objects() {
    let sb = SandboxBuilder::new("crd")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1}, "color": {"type": "string", "default": "red"}}},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let got = crds.get("widgets.example.com").await.unwrap();
    let conds = got.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    assert!(discovery.groups().any(|g| g.name() == "example.com"));

    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "app", &ar);
    let w: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 2, "junk": true}}))
        .unwrap();
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.data["spec"], json!({"size": 2, "color": "red"}));
    let bad: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w2"}, "spec": {"size": 0}}))
        .unwrap();
    let err = widgets
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), 422);

    let status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["ready"], true);
    assert_eq!(status.metadata.generation, Some(1));

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the CRD to go", || async {
        crds.get_opt("widgets.example.com").await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        status_code(&widgets.list(&ListParams::default()).await.unwrap_err()),
        404
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_released() {
    let sb = SandboxBuilder::new("fin")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "app");
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn namespace_deletion_removes_its_objects() {
    let sb = Sandbox::start("nsdel").await.unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "gone").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "gone");
    api.create(&PostParams::default(), &cm("c", json!({})))
        .await
        .unwrap();
    let nss: Api<Namespace> = Api::all(client);
    nss.delete("gone", &DeleteParams::default()).await.unwrap();
    eventually("the namespace to go", || async {
        nss.get_opt("gone").await.unwrap().is_none()
    })
    .await;
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn bearer_token_is_required_when_set() {
    let sb = SandboxBuilder::new("auth")
        .token("s3cret")
        .start()
        .await
        .unwrap();
    let ok = sb.client().await.unwrap();
    Api::<Namespace>::all(ok)
        .list(&ListParams::default())
        .await
        .unwrap();
    let config = kube::Config::new(sb.url().parse().unwrap());
    let anonymous = kube::Client::try_from(config).unwrap();
    let err = Api::<Namespace>::all(anonymous)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), 401);
}

#[tokio::test]
async fn faults_break_and_restore_a_cluster_keeping_its_data() {
    let sb = SandboxBuilder::new("faulty")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "keep").await;
    let nss: Api<Namespace> = Api::all(client.clone());

    // 500 rather than 503: kube's client retries 503 with a long backoff.
    sb.faults().fail_with(Some(500));
    assert_eq!(status_code(&nss.get("keep").await.unwrap_err()), 500);
    sb.faults().clear();

    sb.faults().refuse_connections(true);
    let fresh = sb.client().await.unwrap();
    assert!(Api::<Namespace>::all(fresh).get("keep").await.is_err());
    sb.faults().clear();

    sb.faults().delay(Duration::from_millis(200));
    let started = std::time::Instant::now();
    nss.get("keep").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    sb.faults().clear();
    assert!(nss.get_opt("keep").await.unwrap().is_some());
}

#[tokio::test]
async fn simulator_makes_workloads_ready() {
    let sb = SandboxBuilder::new("sim")
        .simulator_delay(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "app");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .unwrap();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    eventually("the deployment to be available", || async {
        let s = deploys.get("web").await.unwrap().status.unwrap_or_default();
        s.ready_replicas == Some(3)
            && s.observed_generation == Some(1)
            && s.conditions.unwrap_or_default().iter().any(|c| {
                c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
            })
    })
    .await;

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "app");
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    pvcs.create(&PostParams::default(), &pvc).await.unwrap();
    eventually("the claim to bind", || async {
        pvcs.get("data")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            .as_deref()
            == Some("Bound")
    })
    .await;

    let jobs: Api<Job> = Api::namespaced(client, "app");
    let job: Job = serde_json::from_value(
        json!({"metadata": {"name": "once"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    eventually("the job to complete", || async {
        jobs.get("once")
            .await
            .unwrap()
            .status
            .and_then(|s| s.succeeded)
            == Some(1)
    })
    .await;
}

#[tokio::test]
async fn persisted_objects_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("kro-sandbox-persist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("data.json");
    let _ = std::fs::remove_file(&file);
    let sb = SandboxBuilder::new("p")
        .simulator(false)
        .persist_to(&file)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "kept").await;
    sb.stop().await;
    let again = SandboxBuilder::new("p")
        .simulator(false)
        .persist_to(&file)
        .start()
        .await
        .unwrap();
    let client = again.client().await.unwrap();
    assert!(
        Api::<Namespace>::all(client)
            .get_opt("kept")
            .await
            .unwrap()
            .is_some()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn crd_versions_share_one_storage_version() {
    let sb = SandboxBuilder::new("versions")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let schema = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Gizmo", "plural": "gizmos"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema},
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema},
                {"name": "v1alpha1", "served": false, "storage": false, "schema": schema}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let api = |v: &str| {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", v, "Gizmo"),
            "gizmos",
        );
        Api::<DynamicObject>::all_with(client.clone(), &ar)
    };
    let g: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1beta1", "kind": "Gizmo",
        "metadata": {"name": "g"}, "spec": {"x": 1}}))
        .unwrap();
    let created = api("v1beta1")
        .create(&PostParams::default(), &g)
        .await
        .unwrap();
    assert_eq!(created.types.unwrap().api_version, "example.com/v1beta1");
    let via_v1 = api("v1").get("g").await.unwrap();
    assert_eq!(via_v1.types.unwrap().api_version, "example.com/v1");
    assert_eq!(via_v1.data["spec"]["x"], 1);
    assert!(
        api("v1alpha1").get("g").await.is_err(),
        "unserved versions are not served"
    );
}

#[tokio::test]
async fn filtered_watches_see_objects_leave_and_enter_their_selector() {
    let sb = SandboxBuilder::new("sel")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "app");
    let created = api
        .create(&PostParams::default(), &cm("c", json!({})))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let relabel = |v: &str| Patch::Merge(json!({"metadata": {"labels": {"app": v}}}));
    api.patch("c", &PatchParams::default(), &relabel("other"))
        .await
        .unwrap();
    api.patch("c", &PatchParams::default(), &relabel("demo"))
        .await
        .unwrap();
    let stream = api
        .watch(&WatchParams::default().labels("app=demo").timeout(2), &rv)
        .await
        .unwrap();
    let kinds: Vec<&str> = stream
        .take(2)
        .map(|e| match e.unwrap() {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            _ => "OTHER",
        })
        .collect()
        .await;
    assert_eq!(kinds, ["DELETED", "ADDED"]);
}

#[tokio::test]
async fn kube_runtime_controller_reconciles() {
    use kube::runtime::controller::{Action, Controller};
    use std::sync::Arc;

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    struct Failed(#[from] kube::Error);

    let sb = SandboxBuilder::new("ctrl")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "app");
    let reconcile = |cm: Arc<ConfigMap>, api: Arc<Api<ConfigMap>>| async move {
        let name = cm.metadata.name.clone().unwrap_or_default();
        if cm.data.as_ref().and_then(|d| d.get("seen")).is_none() {
            let p = Patch::Merge(json!({"data": {"seen": "yes"}}));
            api.patch(&name, &PatchParams::default(), &p).await?;
        }
        Ok::<_, Failed>(Action::await_change())
    };
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::await_change(),
            Arc::new(api.clone()),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);
    api.create(&PostParams::default(), &cm("one", json!({})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("two", json!({})))
        .await
        .unwrap();
    eventually("the controller to reconcile both", || async {
        let objs = api.list(&ListParams::default()).await.unwrap().items;
        objs.len() == 2
            && objs
                .iter()
                .all(|c| c.data.as_ref().is_some_and(|d| d.contains_key("seen")))
    })
    .await;
    handle.abort();
}

#[tokio::test]
async fn custom_scale_subresource_uses_the_crd_paths() {
    let sb = SandboxBuilder::new("scale")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "pools.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Pool", "plural": "pools"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Pool"),
        "pools",
    );
    let pools: Api<DynamicObject> = Api::namespaced_with(client, "app", &ar);
    let p: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Pool",
        "metadata": {"name": "p"}, "spec": {"size": 1}}))
        .unwrap();
    pools.create(&PostParams::default(), &p).await.unwrap();
    let scale = pools.get_scale("p").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    pools
        .patch_scale(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(pools.get("p").await.unwrap().data["spec"]["size"], 4);
}

#[tokio::test]
async fn streaming_list_watchers_get_initial_events_and_the_end_bookmark() {
    let sb = SandboxBuilder::new("stream")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    namespace(&client, "app").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "app");
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["a", "b"]);
    api.create(&PostParams::default(), &cm("c", json!({})))
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(next, watcher::Event::Apply(o) if o.metadata.name.as_deref() == Some("c")));
}

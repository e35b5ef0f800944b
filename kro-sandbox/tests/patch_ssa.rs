//! Patches and server-side apply through a real `kube::Client` over HTTP:
//! field ownership, conflicts, force, dropped fields, strategic merge of
//! containers, and strategic merge patches rejected for custom kinds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kro_sandbox::{Sandbox, SandboxBuilder};
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

async fn sandbox() -> (Sandbox, Client) {
    let sb = SandboxBuilder::new("patch")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    (sb, client)
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("", "v1", "Namespace", "namespaces"),
    );
    let ns: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

/// `manager → FieldsV1` of an object's `managedFields`.
fn owners(obj: &DynamicObject) -> Vec<(String, String, Value)> {
    let v = serde_json::to_value(obj).unwrap();
    let mut out: Vec<(String, String, Value)> = v["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_owned(),
                e["operation"].as_str().unwrap().to_owned(),
                e["fieldsV1"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason, s.message),
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn server_side_apply_ownership_conflicts_and_force() {
    let (sb, client) = sandbox().await;
    namespace(&client, "ssa").await;
    let cms: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "ssa",
        &resource("", "v1", "ConfigMap", "configmaps"),
    );
    let cfg = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data});

    let created = cms
        .patch(
            "cfg",
            &PatchParams::apply("alice"),
            &Patch::Apply(cfg(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        owners(&created),
        vec![(
            "alice".into(),
            "Apply".into(),
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        )]
    );

    // Dropping `b` from alice's configuration removes it from the object.
    let dropped = cms
        .patch(
            "cfg",
            &PatchParams::apply("alice"),
            &Patch::Apply(cfg(json!({"a": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&dropped).unwrap()["data"],
        json!({"a": "1"})
    );

    // bob changing alice's field conflicts, with the field and owner listed.
    let err = cms
        .patch(
            "cfg",
            &PatchParams::apply("bob"),
            &Patch::Apply(cfg(json!({"a": "bob"}))),
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err),
        (
            409,
            "Conflict".into(),
            "Apply failed with 1 conflict: conflict with \"alice\": .data.a".into()
        )
    );

    // Same value: shared ownership, no conflict.
    let shared = cms
        .patch(
            "cfg",
            &PatchParams::apply("bob"),
            &Patch::Apply(cfg(json!({"a": "1", "z": "bob"}))),
        )
        .await
        .unwrap();
    let o = owners(&shared);
    assert_eq!(o.len(), 2);
    assert_eq!(
        o[1],
        (
            "bob".into(),
            "Apply".into(),
            json!({"f:data": {"f:a": {}, "f:z": {}}})
        )
    );

    // Force takes the field away from alice.
    let forced = cms
        .patch(
            "cfg",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(cfg(json!({"a": "bob", "z": "bob"}))),
        )
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(&forced).unwrap()["data"]["a"], "bob");
    assert!(
        owners(&forced)
            .iter()
            .all(|(m, _, f)| m != "alice" || f.get("f:data").is_none())
    );

    // A merge patch records an Update entry for its manager.
    let pp = PatchParams {
        field_manager: Some("carol".into()),
        ..PatchParams::default()
    };
    let merged = cms
        .patch("cfg", &pp, &Patch::Merge(json!({"data": {"c": "carol"}})))
        .await
        .unwrap();
    let carol = owners(&merged)
        .into_iter()
        .find(|(m, _, _)| m == "carol")
        .unwrap();
    assert_eq!(
        carol,
        (
            "carol".into(),
            "Update".into(),
            json!({"f:data": {"f:c": {}}})
        )
    );
    sb.stop().await;
}

#[tokio::test]
async fn deployment_patches_merge_containers_by_name() {
    let (sb, client) = sandbox().await;
    namespace(&client, "pt").await;
    let deps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "pt",
        &resource("apps", "v1", "Deployment", "deployments"),
    );
    let apply = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "main", "image": "nginx:1.25"},
                {"name": "sidecar", "image": "busybox:1.36"}]}}}
    });
    deps.patch(
        "web",
        &PatchParams::apply("hub").force(),
        &Patch::Apply(&apply),
    )
    .await
    .unwrap();

    let patched = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "image": "busybox:1.37"}]}}}})),
        )
        .await
        .unwrap();
    let containers =
        serde_json::to_value(&patched).unwrap()["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers[0]["image"], "nginx:1.25");
    assert_eq!(containers[1]["image"], "busybox:1.37");

    let deleted = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "$patch": "delete"}]}}}})),
        )
        .await
        .unwrap();
    let containers =
        serde_json::to_value(&deleted).unwrap()["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers.as_array().unwrap().len(), 1);

    sb.stop().await;
}

#[tokio::test]
async fn custom_resources_apply_status_and_refuse_strategic_merge() {
    let (sb, client) = sandbox().await;
    namespace(&client, "cr").await;
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
    );
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "knobs.patch.example.com"},
        "spec": {"group": "patch.example.com", "scope": "Namespaced",
            "names": {"kind": "Knob", "plural": "knobs", "singular": "knob", "listKind": "KnobList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"level": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let knobs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "cr",
        &resource("patch.example.com", "v1", "Knob", "knobs"),
    );
    let knob = |body: Value| {
        let mut v = json!({"apiVersion": "patch.example.com/v1", "kind": "Knob", "metadata": {"name": "k"}});
        v.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        v
    };
    let mut created = None;
    for _ in 0..50 {
        match knobs
            .patch(
                "k",
                &PatchParams::apply("hub"),
                &Patch::Apply(knob(json!({"spec": {"level": 1}}))),
            )
            .await
        {
            Ok(o) => {
                created = Some(o);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let created = created.expect("the CRD's resource is served");
    assert_eq!(
        owners(&created),
        vec![(
            "hub".into(),
            "Apply".into(),
            json!({"f:spec": {"f:level": {}}})
        )]
    );

    let status = knobs
        .patch_status(
            "k",
            &PatchParams::apply("ctrl"),
            &Patch::Apply(knob(json!({"status": {"ready": true}}))),
        )
        .await
        .unwrap();
    let v = serde_json::to_value(&status).unwrap();
    assert_eq!(v["status"]["ready"], true);
    assert_eq!(v["spec"]["level"], 1);
    let ctrl = v["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "ctrl")
        .unwrap()
        .clone();
    assert_eq!(ctrl["subresource"], "status");
    assert_eq!(ctrl["fieldsV1"], json!({"f:status": {"f:ready": {}}}));

    let err = knobs
        .patch(
            "k",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"level": 2}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).0, 415);

    let err = knobs
        .patch(
            "k",
            &PatchParams::apply("hub"),
            &Patch::Apply(knob(json!({"spec": {"volume": 11}}))),
        )
        .await
        .unwrap_err();
    let (code, _, message) = api_error(err);
    assert_eq!(code, 500);
    assert_eq!(
        message,
        "failed to create typed patch object (/k; patch.example.com/v1, Kind=Knob): .spec.volume: field not declared in schema"
    );
    sb.stop().await;
}

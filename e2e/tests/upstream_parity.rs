//! Upstream kro's own end-to-end suite, replayed on kro-hub.
//!
//! kro checks itself with chainsaw tests (one directory per behaviour: an
//! RGD, instances, and YAML assertions matched as subsets of the live
//! objects). Each test here applies an equivalent RGD and instances from
//! `e2e/data/upstream/<test>/` and checks what the chainsaw assertions
//! check, with the same subset semantics (see [`mismatch`]). Where kro-hub
//! deliberately behaves differently the test says so and checks kro-hub's
//! documented behaviour instead. Where kro-hub does not yet do what
//! upstream does, the upstream expectation lives in its own test, marked
//! `#[ignore]` with the precise failure, so the rest stays green.
//!
//! Not replayed: `check-subjectaccess` and `check-subjectaccess-cluster-scoped`,
//! which check upstream's per-RGD service accounts through
//! SubjectAccessReviews; kro-hub acts with its own identity and the sandbox
//! has no authorization.
//!
//! Upstream's current RGD CRD only accepts `spec.schema.apiVersion` of the
//! form `v1alpha1` (older copies of some tests wrote `kro.run/v1alpha1`), so
//! every RGD here uses the bare version.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kro_e2e::{Env, HarnessError, WAIT, condition, eventually, fixture};
use serde_json::{Value, json};

const CRD: &str = "apiextensions.k8s.io/v1";
const RGD_API: &str = "kro.run/v1alpha1";

// ---------------------------------------------------------------------------
// Chainsaw-style assertions

/// Where `actual` fails to contain `expected`, chainsaw's way: every key of
/// an expected map must be present with a matching value, arrays must have
/// the same length and match element by element, scalars must be equal
/// (numbers by value, so `1` matches `1.0`).
fn mismatch(actual: &Value, expected: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want.iter().find_map(|(k, v)| {
            let here = format!("{path}.{k}");
            match have.get(k) {
                Some(a) => mismatch(a, v, &here),
                None => Some(format!("{here}: missing, want {v}")),
            }
        }),
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Some(format!(
                    "{path}: {} items, want {}: {actual}",
                    have.len(),
                    want.len()
                ));
            }
            want.iter()
                .zip(have)
                .enumerate()
                .find_map(|(i, (w, a))| mismatch(a, w, &format!("{path}[{i}]")))
        }
        (Value::Number(w), Value::Number(a)) if w.as_f64() == a.as_f64() => None,
        (w, a) if w == a => None,
        (w, a) => Some(format!("{path}: {a}, want {w}")),
    }
}

/// Every document of a fixture under `e2e/data/upstream/`.
fn docs(name: &str) -> Vec<Value> {
    kro_core::parse_yaml_documents(&fixture(&format!("upstream/{name}"))).unwrap()
}

/// The single document of a fixture.
fn doc(name: &str) -> Value {
    let mut all = docs(name);
    assert_eq!(all.len(), 1, "{name} holds one document");
    all.remove(0)
}

fn identity(obj: &Value) -> (String, String, Option<String>, String) {
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    (
        s(&obj["apiVersion"]),
        s(&obj["kind"]),
        obj["metadata"]["namespace"].as_str().map(str::to_owned),
        s(&obj["metadata"]["name"]),
    )
}

/// Waits until the object named by `expected` contains `expected`, like a
/// chainsaw `assert` step; returns the object.
async fn assert_eventually(env: &Env, expected: &Value) -> Value {
    let (api_version, kind, ns, name) = identity(expected);
    let found: Result<Value, HarnessError> =
        eventually(&format!("{kind} {name} to match"), WAIT, || async {
            let got = env
                .get(&api_version, &kind, ns.as_deref(), &name)
                .await
                .map_err(|e| e.to_string())?;
            match got {
                None => Err("absent".to_owned()),
                Some(obj) => match mismatch(&obj, expected, "") {
                    None => Ok(Some(obj)),
                    Some(why) => Err(format!("{why}; status: {}", obj["status"])),
                },
            }
        })
        .await;
    found.unwrap()
}

/// Asserts the object is absent and stays absent for `quiet`, like a
/// chainsaw `error` step after a sleep.
async fn assert_absent_for(
    env: &Env,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
    quiet: Duration,
) {
    let until = tokio::time::Instant::now() + quiet;
    loop {
        let got = env.get(api_version, kind, ns, name).await.unwrap();
        assert!(got.is_none(), "{kind} {name} exists: {}", got.unwrap());
        if tokio::time::Instant::now() >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get(env: &Env, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Value {
    env.get(api_version, kind, ns, name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{kind} {name} not found"))
}

async fn crd(env: &Env, name: &str) -> Value {
    get(env, CRD, "CustomResourceDefinition", None, name).await
}

/// The single `Ready` condition of `obj`, which must be `True`.
fn assert_ready_true(obj: &Value) -> &Value {
    let ready: Vec<&Value> = obj["status"]["conditions"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["type"] == "Ready").collect())
        .unwrap_or_default();
    assert_eq!(ready.len(), 1, "one Ready condition: {}", obj["status"]);
    assert_eq!(ready[0]["status"], "True", "{}", obj["status"]);
    ready[0]
}

/// Applies an RGD fixture and waits until it is Active with the upstream
/// RGD assertions: finalizer, and a Ready condition `True` for generation 1.
async fn install_rgd(env: &Env, file: &str) -> Value {
    let rgd = doc(file);
    env.apply(&rgd).await.unwrap();
    let name = rgd["metadata"]["name"].as_str().unwrap();
    let expected = json!({
        "apiVersion": RGD_API, "kind": "ResourceGraphDefinition",
        "metadata": {"name": name, "finalizers": ["kro.run/finalizer"], "generation": 1},
        "status": {"state": "Active"}
    });
    let live = assert_eventually(env, &expected).await;
    let ready = assert_ready_true(&live);
    assert_eq!(ready["observedGeneration"], 1, "{ready}");
    live
}

/// Applies an instance fixture and waits for `expected` and a `True` Ready
/// condition.
async fn instance_ready(env: &Env, instance: &str, expected: &str) -> Value {
    env.apply(&doc(instance)).await.unwrap();
    let live = assert_eventually(env, &doc(expected)).await;
    assert_ready_true(&live);
    live
}

fn label<'a>(obj: &'a Value, key: &str) -> &'a Value {
    &obj["metadata"]["labels"][key]
}

// ---------------------------------------------------------------------------
// check-rgd-creation

/// An RGD becomes Active, with kro's finalizer, a Ready condition for its
/// generation and its topological order, and serves its CRD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_rgd_creation() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "rgd-creation/rgd.yaml").await;
    assert_eventually(&env, &doc("rgd-creation/rgd-expected.yaml")).await;
    let crd = assert_eventually(&env, &doc("rgd-creation/crd-expected.yaml")).await;
    let established = condition(&crd, "Established").expect("Established condition");
    assert_eq!(established["status"], "True", "{}", crd["status"]);
    assert_eq!(
        crd["status"]["acceptedNames"]["kind"],
        "CheckRGDCreationSimpleDeployment"
    );
}

// ---------------------------------------------------------------------------
// check-instance-creation

/// An instance yields its Deployment with the rendered fields and kro's
/// labels; the instance gets kro's finalizer and labels and is ACTIVE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_instance_creation() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "instance-creation/rgd.yaml").await;
    assert_eventually(
        &env,
        &json!({"apiVersion": CRD, "kind": "CustomResourceDefinition",
            "metadata": {"name": "checkinstancecreationsimpledeployments.kro.run"},
            "spec": {"names": {"kind": "CheckInstanceCreationSimpleDeployment"}}}),
    )
    .await;
    let instance = instance_ready(
        &env,
        "instance-creation/instance.yaml",
        "instance-creation/instance-expected.yaml",
    )
    .await;
    let ready = condition(&instance, "Ready").unwrap();
    assert_eq!(ready["observedGeneration"], 1);
    let deployment =
        assert_eventually(&env, &doc("instance-creation/deployment-expected.yaml")).await;
    assert_eq!(
        label(&deployment, "kro.run/instance-id"),
        &instance["metadata"]["uid"]
    );
    // Server-side apply, no owner references (upstream does not set them).
    assert!(deployment["metadata"]["ownerReferences"].is_null());
}

/// Upstream (since v0.4) labels children with
/// `kro.run/managed-by-instance-{name,namespace,kind,version,group}` and
/// `kro.run/defined-by-rgd`, and the instance with
/// `kro.run/reconciled-by-rgd`; the chainsaw asserts of check-instance-creation,
/// check-instance-update, check-multi-resource-rgd and check-nested-rgd-labels
/// all match on these keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_instance_creation_upstream_label_keys() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "instance-creation/rgd.yaml").await;
    let instance = instance_ready(
        &env,
        "instance-creation/instance.yaml",
        "instance-creation/instance-expected.yaml",
    )
    .await;
    assert_eq!(
        label(&instance, "kro.run/reconciled-by-rgd"),
        "check-instance-creation"
    );
    assert_eventually(
        &env,
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "test-instance", "namespace": "default", "labels": {
            "kro.run/managed-by-instance-name": "test-instance",
            "kro.run/managed-by-instance-namespace": "default",
            "kro.run/managed-by-instance-version": "v1alpha1",
            "kro.run/managed-by-instance-kind": "CheckInstanceCreationSimpleDeployment",
            "kro.run/managed-by-instance-group": "kro.run",
            "kro.run/defined-by-rgd": "check-instance-creation",
            "kro.run/owned": "true"
        }}}),
    )
    .await;
}

// ---------------------------------------------------------------------------
// check-instance-update

/// Changing the instance's replicas changes the Deployment; the API
/// server's defaults on the Deployment are untouched by kro's apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_instance_update() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "instance-update/rgd.yaml").await;
    env.apply(&doc("instance-update/instance.yaml"))
        .await
        .unwrap();
    assert_eventually(&env, &doc("instance-update/deployment-expected.yaml")).await;
    env.apply(&doc("instance-update/instance-update.yaml"))
        .await
        .unwrap();
    assert_eventually(
        &env,
        &doc("instance-update/deployment-update-expected.yaml"),
    )
    .await;
    // The instance settles ACTIVE with a Ready condition for the new generation.
    env.wait_for(
        RGD_API,
        "CheckInstanceUpdateSimpleDeployment",
        Some("default"),
        "test-instance",
        |i| {
            i["metadata"]["generation"] == 2
                && i["status"]["state"] == "ACTIVE"
                && condition(i, "Ready")
                    .is_some_and(|c| c["status"] == "True" && c["observedGeneration"] == 2)
        },
    )
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------
// check-multi-resource-rgd

/// Applies `rgd` and the multi-resource instance, waits for the instance to
/// be ACTIVE and each of `expected` to match, and returns the instance.
async fn multi_resource(env: &Env, rgd: &Value, expected: &[Value]) -> Value {
    env.apply(rgd).await.unwrap();
    env.wait_rgd("check-multi-resource-rgd", "Active")
        .await
        .unwrap();
    env.apply(&doc("multi-resource/instance.yaml"))
        .await
        .unwrap();
    let instance = assert_eventually(
        env,
        &json!({"apiVersion": RGD_API, "kind": "CheckMultiResourceAutoscaledDeployment",
            "metadata": {"name": "test-app-instance", "namespace": "default",
                "finalizers": ["kro.run/finalizer"]},
            "status": {"state": "ACTIVE"}}),
    )
    .await;
    assert_ready_true(&instance);
    for child in expected {
        let live = assert_eventually(env, child).await;
        assert_eq!(
            label(&live, "kro.run/instance-id"),
            &instance["metadata"]["uid"]
        );
    }
    instance
}

/// A four-resource graph: every child rendered and labelled, and an update
/// of the instance reaches the Deployment and the HPA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_multi_resource_rgd() {
    let env = Env::start().await.unwrap();
    let rgd = install_rgd(&env, "multi-resource/rgd.yaml").await;
    let mut order: Vec<&str> = rgd["status"]["topologicalOrder"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    order.sort_unstable();
    assert_eq!(order, ["autoscaler", "configmap", "deployment", "service"]);
    multi_resource(
        &env,
        &doc("multi-resource/rgd.yaml"),
        &docs("multi-resource/children-expected.yaml"),
    )
    .await;
    env.apply(&doc("multi-resource/instance-update.yaml"))
        .await
        .unwrap();
    for child in docs("multi-resource/children-update-expected.yaml") {
        assert_eventually(&env, &child).await;
    }
}

/// The same graph and checks without the HPA, which the sandbox does not
/// serve: ConfigMap, Service and Deployment rendered and labelled, and the
/// image update rolled into the Deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_multi_resource_rgd_without_autoscaler() {
    let env = Env::start().await.unwrap();
    let without_hpa = |all: Vec<Value>| -> Vec<Value> {
        all.into_iter()
            .filter(|v| v["kind"] != "HorizontalPodAutoscaler")
            .collect()
    };
    let mut rgd = doc("multi-resource/rgd.yaml");
    rgd["spec"]["resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["id"] != "autoscaler");
    let expected = without_hpa(docs("multi-resource/children-expected.yaml"));
    assert_eq!(expected.len(), 3);
    multi_resource(&env, &rgd, &expected).await;
    env.apply(&doc("multi-resource/instance-update.yaml"))
        .await
        .unwrap();
    for child in without_hpa(docs("multi-resource/children-update-expected.yaml")) {
        assert_eventually(&env, &child).await;
    }
}

// ---------------------------------------------------------------------------
// check-external-references

async fn external_references_waiting(env: &Env) -> Value {
    install_rgd(env, "external-references/rgd.yaml").await;
    env.apply(&doc("external-references/instance.yaml"))
        .await
        .unwrap();
    assert_eventually(
        env,
        &doc("external-references/instance-in-progress-expected.yaml"),
    )
    .await
}

/// While the referenced object is missing the instance is IN_PROGRESS and
/// its dependent is not created; once someone creates it the instance turns
/// ACTIVE, the dependent carries its value, and the referenced object is
/// left unowned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_external_references() {
    let env = Env::start().await.unwrap();
    let waiting = external_references_waiting(&env).await;
    let ready = condition(&waiting, "Ready").expect("Ready condition");
    assert_eq!(ready["status"], "False", "{ready}");
    // Upstream sleeps 3s, then asserts neither ConfigMap exists.
    assert_absent_for(
        &env,
        "v1",
        "ConfigMap",
        Some("default"),
        "config",
        Duration::from_secs(3),
    )
    .await;
    assert!(
        env.get(
            "v1",
            "ConfigMap",
            Some("default"),
            "check-external-references"
        )
        .await
        .unwrap()
        .is_none(),
        "kro never creates a referenced object"
    );

    env.apply(&doc("external-references/configmap.yaml"))
        .await
        .unwrap();
    let active = assert_eventually(&env, &doc("external-references/instance-expected.yaml")).await;
    assert_ready_true(&active);
    assert_eventually(&env, &doc("external-references/owned-expected.yaml")).await;
    let external = get(
        &env,
        "v1",
        "ConfigMap",
        Some("default"),
        "check-external-references",
    )
    .await;
    assert!(
        label(&external, "kro.run/owned").is_null(),
        "referenced object not labelled as kro's: {}",
        external["metadata"]
    );
    assert!(external["metadata"]["finalizers"].is_null());
}

/// Upstream resolves status fields independently: while the external
/// object is missing, `tag` (from the instance alone) is set, `partialInfo`
/// holds only its resolvable field, and fields needing the external object
/// are absent rather than empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_external_references_partial_status() {
    let env = Env::start().await.unwrap();
    let waiting = external_references_waiting(&env).await;
    let status = &waiting["status"];
    assert_eq!(status["tag"], "v1", "{status}");
    assert_eq!(status["partialInfo"], json!({"tag": "v1"}), "{status}");
    for absent in ["extInfo", "nestedInfo"] {
        assert!(status.get(absent).is_none(), "{absent} absent: {status}");
    }
}

// ---------------------------------------------------------------------------
// check-arbitary-objects (sic, upstream's directory name)

/// A spec field typed `object` keeps arbitrary nested data; an RGD with no
/// resources still yields an ACTIVE instance with kro's conditions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_arbitrary_objects() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "arbitrary-objects/rgd.yaml").await;
    let crd = crd(&env, "checkarbitraryobjectsnoops.kro.run").await;
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], json!(["values"]), "{spec}");
    assert_eq!(spec["properties"]["values"]["type"], "object");
    assert_eq!(
        spec["properties"]["values"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    let instance = instance_ready(
        &env,
        "arbitrary-objects/instance.yaml",
        "arbitrary-objects/instance-expected.yaml",
    )
    .await;
    for (type_, reason) in [
        ("InstanceManaged", "Managed"),
        ("GraphResolved", "Resolved"),
        ("ResourcesReady", "AllResourcesReady"),
        ("Ready", "Ready"),
    ] {
        let c = condition(&instance, type_).unwrap_or_else(|| panic!("{type_} condition"));
        assert_eq!(c["status"], "True", "{c}");
        assert_eq!(c["reason"], reason, "{c}");
        assert_eq!(c["observedGeneration"], 1, "{c}");
    }
}

/// Upstream's instance carries exactly these five conditions, in this
/// order, with these messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_arbitrary_objects_upstream_conditions() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "arbitrary-objects/rgd.yaml").await;
    env.apply(&doc("arbitrary-objects/instance.yaml"))
        .await
        .unwrap();
    let cond = |t: &str, r: &str, m: &str| json!({"type": t, "status": "True", "reason": r, "message": m, "observedGeneration": 1});
    assert_eventually(
        &env,
        &json!({"apiVersion": RGD_API, "kind": "CheckArbitraryObjectsNoOp",
            "metadata": {"name": "test-instance", "namespace": "default"},
            "status": {"state": "ACTIVE", "conditions": [
                cond("InstanceManaged", "Managed", "instance is properly managed with finalizers and labels"),
                cond("GraphResolved", "Resolved", "runtime graph created and all resources resolved"),
                cond("ResourcesReady", "AllResourcesReady", "all resources are created and ready"),
                cond("WatchesHealthy", "AllWatchesSynced", "changes to all watched kinds are detected"),
                cond("Ready", "Ready", ""),
            ]}}),
    )
    .await;
}

// ---------------------------------------------------------------------------
// check-required-default-interactions

/// Required and default markers through custom types land in the CRD as
/// upstream writes them, and the API server fills every default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_required_default_interactions() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "required-defaults/rgd.yaml").await;
    let crd = assert_eventually(&env, &doc("required-defaults/crd-expected.yaml")).await;
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    // Objects with a required child get no `default: {}`.
    assert!(spec["properties"]["database"].get("default").is_none());
    assert!(
        spec["properties"]["endpoints"]["items"]
            .get("default")
            .is_none()
    );
    instance_ready(
        &env,
        "required-defaults/instance.yaml",
        "required-defaults/instance-expected.yaml",
    )
    .await;
    assert_eventually(&env, &doc("required-defaults/configmap-expected.yaml")).await;
}

// ---------------------------------------------------------------------------
// check-additional-printer-columns

/// Without additionalPrinterColumns the CRD gets exactly kro's State, Ready
/// and Age columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_additional_printer_columns_default() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "printer-columns/rgd-default.yaml").await;
    assert_eventually(&env, &doc("printer-columns/crd-default-expected.yaml")).await;
}

/// Upstream merges custom columns into the defaults: a column named like a
/// default replaces it in place, other columns are appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_additional_printer_columns_merge() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "printer-columns/rgd-add.yaml").await;
    assert_eventually(&env, &doc("printer-columns/crd-add-expected.yaml")).await;
}

// ---------------------------------------------------------------------------
// check-validation-markers

/// pattern, length, item-count, uniqueness and description markers reach the
/// CRD; a valid instance goes ACTIVE and every invalid one is refused by the
/// API server and never created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validation_markers() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "validation-markers/rgd.yaml").await;
    assert_eventually(&env, &doc("validation-markers/crd-expected.yaml")).await;
    env.apply(&doc("validation-markers/valid-instance.yaml"))
        .await
        .unwrap();
    let valid = assert_eventually(
        &env,
        &json!({"apiVersion": RGD_API, "kind": "ValidationTestApp",
            "metadata": {"name": "test-validation", "namespace": "default"},
            "spec": {"description": "Test application", "replicas": 1},
            "status": {"state": "ACTIVE"}}),
    )
    .await;
    assert_ready_true(&valid);
    assert_eventually(&env, &doc("validation-markers/configmap-expected.yaml")).await;

    for invalid in docs("validation-markers/invalid-instances.yaml") {
        let name = invalid["metadata"]["name"].as_str().unwrap().to_owned();
        match env.apply(&invalid).await {
            Err(HarnessError::Kube {
                source: kube::Error::Api(status),
                ..
            }) if name == "invalid-unique-items" => {
                // A set-typed list with duplicates cannot even be turned into
                // a typed apply patch: a real API server answers 500.
                assert_eq!(status.code, 500, "{name}: {status:?}");
                assert!(
                    status.message.contains(".spec.tags: duplicate entries"),
                    "{name}: {}",
                    status.message
                );
            }
            Err(HarnessError::Kube {
                source: kube::Error::Api(status),
                ..
            }) => {
                assert_eq!(status.code, 422, "{name}: {status:?}");
                assert!(
                    status.message.contains("spec."),
                    "{name}: {}",
                    status.message
                );
            }
            other => panic!("{name} must be refused, got {other:?}"),
        }
        assert!(
            env.get(RGD_API, "ValidationTestApp", Some("default"), &name)
                .await
                .unwrap()
                .is_none()
        );
    }
}

// ---------------------------------------------------------------------------
// check-unknown-fields

/// Expressions may read fields no schema declares: inside a third-party
/// CRD's preserve-unknown-fields object, and inside a plain `object` spec
/// field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_unknown_fields() {
    let env = Env::start().await.unwrap();
    env.apply(&doc("unknown-fields/allow-unknown-crd.yaml"))
        .await
        .unwrap();
    let established: Result<(), HarnessError> =
        eventually("AllowUnknown to be served", WAIT, || async {
            let crd = env
                .get(
                    CRD,
                    "CustomResourceDefinition",
                    None,
                    "allowunknowns.kro.run",
                )
                .await
                .map_err(|e| e.to_string())?;
            let ok = crd
                .as_ref()
                .and_then(|c| condition(c, "Established"))
                .is_some_and(|c| c["status"] == "True");
            Ok(ok.then_some(()))
        })
        .await;
    established.unwrap();
    install_rgd(&env, "unknown-fields/rgd.yaml").await;
    env.apply(&doc("unknown-fields/instance.yaml"))
        .await
        .unwrap();
    let instance = assert_eventually(&env, &doc("unknown-fields/instance-expected.yaml")).await;
    assert_ready_true(&instance);
    for owned in docs("unknown-fields/owned-expected.yaml") {
        assert_eventually(&env, &owned).await;
    }
}

// ---------------------------------------------------------------------------
// check-rgd-deletion

/// Deleting an RGD with no instances removes it. Like upstream's default,
/// the generated CRD is kept (the hub deletes it only with `--delete-crds`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_rgd_deletion() {
    let env = Env::start().await.unwrap();
    let rgd = install_rgd(&env, "rgd-deletion/rgd.yaml").await;
    crd(&env, "simpledeploymentfordeletions.kro.run").await;
    env.delete(&rgd).await.unwrap();
    env.wait_gone(
        RGD_API,
        "ResourceGraphDefinition",
        None,
        "simple-deployment-for-deletion-rgd",
    )
    .await
    .unwrap();
    crd(&env, "simpledeploymentfordeletions.kro.run").await;
}

/// Where kro-hub deliberately differs (see the module docs of
/// `kro-hub/src/rgd_controller.rs`): upstream removes an RGD at once and
/// leaves its instances unmanaged; kro-hub keeps the RGD, its finalizer and
/// its instance controller while instances exist, so deleting an instance
/// still cleans up its children, and only then lets the RGD go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_rgd_deletion_waits_for_instances() {
    let env = Env::start().await.unwrap();
    let rgd = install_rgd(&env, "rgd-deletion/rgd.yaml").await;
    let instance = json!({"apiVersion": RGD_API, "kind": "SimpleDeploymentForDeletion",
        "metadata": {"name": "doomed", "namespace": "default"}, "spec": {}});
    env.apply(&instance).await.unwrap();
    env.wait_for("apps/v1", "Deployment", Some("default"), "doomed", |_| true)
        .await
        .unwrap();
    env.delete(&rgd).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = get(
        &env,
        RGD_API,
        "ResourceGraphDefinition",
        None,
        "simple-deployment-for-deletion-rgd",
    )
    .await;
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(held["metadata"]["finalizers"], json!(["kro.run/finalizer"]));
    env.delete(&instance).await.unwrap();
    env.wait_gone("apps/v1", "Deployment", Some("default"), "doomed")
        .await
        .unwrap();
    env.wait_gone(
        RGD_API,
        "ResourceGraphDefinition",
        None,
        "simple-deployment-for-deletion-rgd",
    )
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------
// cel-random-namespaced-function

/// `random.seededString(10, schema.metadata.uid)` names the ConfigMap: the
/// name is the engine's value for this uid, stable across reconciles, in
/// the namespace the instance asked for; the kind lives in its own group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cel_random_namespaced_function() {
    // The namespace comes from the instance's spec; it is the instance's own
    // namespace, which kro-hub allows by default (any other is refused: see
    // `e2e/tests/hostile.rs`).
    let env = Env::start().await.unwrap();
    install_rgd(&env, "cel-random/rgd.yaml").await;
    let crd = crd(&env, "randomfnapps.test.kro.run").await;
    assert_eq!(crd["spec"]["group"], "test.kro.run");
    env.apply(&doc("cel-random/instance.yaml")).await.unwrap();
    let instance = env
        .wait_for(
            "test.kro.run/v1alpha1",
            "RandomFnApp",
            Some("default"),
            "random-fn-app",
            |i| condition(i, "Ready").is_some_and(|c| c["status"] == "True"),
        )
        .await
        .unwrap();
    let uid = instance["metadata"]["uid"].as_str().unwrap();

    // The same engine, offline, tells the name this uid must give.
    let rgd = kro_core::parse_rgd_yaml(&fixture("upstream/cel-random/rgd.yaml")).unwrap();
    let graph = kro_core::compile(&rgd).unwrap();
    let report = graph
        .render_all(&kro_core::EvalContext::new(json!({
            "metadata": {"name": "random-fn-app", "namespace": "default", "uid": uid},
            "spec": {"namespace": "default"}
        })))
        .unwrap();
    let name = report.resources[0].objects[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(name.len(), 10, "{name}");
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");

    let cm = assert_eventually(
        &env,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default",
                "labels": {"kro.run/node-id": "cm", "kro.run/instance-id": uid}},
            "data": {"uid": uid}}),
    )
    .await;
    // Stable: later reconciles neither rename nor duplicate it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(env.client.clone(), "default");
    let owned = api
        .list(&kube::api::ListParams::default().labels(&format!("kro.run/instance-id={uid}")))
        .await
        .unwrap();
    assert_eq!(owned.items.len(), 1);
    assert_eq!(
        get(&env, "v1", "ConfigMap", Some("default"), &name).await["metadata"]["uid"],
        cm["metadata"]["uid"]
    );
}

// ---------------------------------------------------------------------------
// check-nested-rgd-labels

async fn nested_ready(env: &Env) -> (Value, Value) {
    install_rgd(env, "nested-rgd/rgd2.yaml").await;
    install_rgd(env, "nested-rgd/rgd1.yaml").await;
    env.apply(&doc("nested-rgd/instance.yaml")).await.unwrap();
    let outer = assert_eventually(
        env,
        &json!({"apiVersion": RGD_API, "kind": "CheckNestedRGD1",
            "metadata": {"name": "check-nested-test-instance", "namespace": "default",
                "finalizers": ["kro.run/finalizer"], "generation": 1,
                "labels": {"kro.run/owned": "true"}},
            "spec": {"name": "rgd2-from-rgd1"},
            "status": {"state": "ACTIVE"}}),
    )
    .await;
    let inner = assert_eventually(
        env,
        &json!({"apiVersion": RGD_API, "kind": "CheckNestedRGD2",
            "metadata": {"name": "rgd2-from-rgd1", "namespace": "default",
                "finalizers": ["kro.run/finalizer"], "generation": 1,
                "labels": {"kro.run/owned": "true"}},
            "spec": {"name": "rgd2-from-rgd1-configmap"},
            "status": {"state": "ACTIVE"}}),
    )
    .await;
    (outer, inner)
}

/// An instance of one RGD that is itself a resource of another: both go
/// ACTIVE, the inner instance is labelled as the outer one's child and the
/// ConfigMap as the inner one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_nested_rgd_labels() {
    let env = Env::start().await.unwrap();
    let (outer, inner) = nested_ready(&env).await;
    assert_eq!(
        label(&inner, "kro.run/instance-name"),
        "check-nested-test-instance"
    );
    assert_eq!(
        label(&inner, "kro.run/instance-id"),
        &outer["metadata"]["uid"]
    );
    assert_eq!(label(&inner, "kro.run/node-id"), "rgd2Instance");
    let cm = assert_eventually(
        &env,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "rgd2-from-rgd1-configmap", "namespace": "default",
                "labels": {"kro.run/owned": "true",
                    "kro.run/instance-name": "rgd2-from-rgd1",
                    "kro.run/resource-graph-definition-name": "check-nested-rgd2"}},
            "data": {"key": "value"}}),
    )
    .await;
    assert_eq!(label(&cm, "kro.run/instance-id"), &inner["metadata"]["uid"]);
}

/// Converged means quiet: once both instances are ACTIVE nothing rewrites
/// the inner instance (upstream keeps the outer RGD's and the inner RGD's
/// labels under different keys for exactly this reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_nested_rgd_labels_converge() {
    let env = Env::start().await.unwrap();
    nested_ready(&env).await;
    let settled = get(
        &env,
        RGD_API,
        "CheckNestedRGD2",
        Some("default"),
        "rgd2-from-rgd1",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = get(
        &env,
        RGD_API,
        "CheckNestedRGD2",
        Some("default"),
        "rgd2-from-rgd1",
    )
    .await;
    assert_eq!(
        settled["metadata"]["resourceVersion"], later["metadata"]["resourceVersion"],
        "inner instance rewritten: {} then {}",
        settled["metadata"], later["metadata"]
    );
}

/// Upstream's separate keys: the inner instance says which RGD defined it
/// (`defined-by-rgd`: the outer one) and which reconciles it
/// (`reconciled-by-rgd`: the inner one), so neither overwrites the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_nested_rgd_labels_upstream_keys() {
    let env = Env::start().await.unwrap();
    nested_ready(&env).await;
    assert_eventually(
        &env,
        &json!({"apiVersion": RGD_API, "kind": "CheckNestedRGD1",
            "metadata": {"name": "check-nested-test-instance", "namespace": "default",
                "labels": {"kro.run/reconciled-by-rgd": "check-nested-rgd1"}}}),
    )
    .await;
    assert_eventually(
        &env,
        &json!({"apiVersion": RGD_API, "kind": "CheckNestedRGD2",
            "metadata": {"name": "rgd2-from-rgd1", "namespace": "default", "labels": {
                "kro.run/defined-by-rgd": "check-nested-rgd1",
                "kro.run/managed-by-instance-group": "kro.run",
                "kro.run/managed-by-instance-kind": "CheckNestedRGD1",
                "kro.run/managed-by-instance-name": "check-nested-test-instance",
                "kro.run/reconciled-by-rgd": "check-nested-rgd2"}}}),
    )
    .await;
    assert_eventually(
        &env,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "rgd2-from-rgd1-configmap", "namespace": "default", "labels": {
                "kro.run/defined-by-rgd": "check-nested-rgd2",
                "kro.run/managed-by-instance-group": "kro.run",
                "kro.run/managed-by-instance-kind": "CheckNestedRGD2",
                "kro.run/managed-by-instance-name": "rgd2-from-rgd1"}}}),
    )
    .await;
}

// ---------------------------------------------------------------------------
// check-deletion-policy

/// `deletionPolicy: Orphaned` keeps a resource when its instance is
/// deleted, released from kro (kro's labels and annotations removed, the
/// author's own labels kept); `Delete` removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_deletion_policy() {
    let env = Env::start().await.unwrap();
    install_rgd(&env, "deletion-policy/rgd.yaml").await;
    let instance = doc("deletion-policy/instance.yaml");
    env.apply(&instance).await.unwrap();
    let live = assert_eventually(
        &env,
        &json!({"apiVersion": RGD_API, "kind": "CheckDeletionPolicyApp",
            "metadata": {"name": "test-instance", "namespace": "default"},
            "status": {"state": "ACTIVE"}}),
    )
    .await;
    assert_ready_true(&live);
    for (name, extra) in [
        ("demo-retained", json!({"app": "demo"})),
        ("demo-removed", json!({})),
    ] {
        let mut labels = extra;
        labels["kro.run/owned"] = json!("true");
        assert_eventually(
            &env,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "default", "labels": labels}}),
        )
        .await;
    }
    env.delete(&instance).await.unwrap();
    env.wait_gone(
        RGD_API,
        "CheckDeletionPolicyApp",
        Some("default"),
        "test-instance",
    )
    .await
    .unwrap();
    env.wait_gone("v1", "ConfigMap", Some("default"), "demo-removed")
        .await
        .unwrap();
    let kept = assert_eventually(
        &env,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "demo-retained", "namespace": "default", "labels": {"app": "demo"}},
            "data": {"kind": "retained"}}),
    )
    .await;
    let kro_keys = |field: &str| -> Vec<String> {
        kept["metadata"][field]
            .as_object()
            .map(|m| {
                m.keys()
                    .filter(|k| {
                        k.contains("kro.run/") || k.as_str() == "app.kubernetes.io/managed-by"
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(kro_keys("labels").is_empty(), "{}", kept["metadata"]);
    assert!(kro_keys("annotations").is_empty(), "{}", kept["metadata"]);
}

// ---------------------------------------------------------------------------
// check-non-blocking-rgd

/// An RGD whose resources the hub cannot serve does not hold back healthy
/// RGDs created before or after it, nor their instances.
///
/// Upstream makes RGD two unhealthy by denying kro RBAC on its kind; it then
/// stays `Initializing` (ControllerReady False, reason Syncing) and its
/// instance is never reconciled. The sandbox has no RBAC, so here RGD two
/// uses a kind the cluster does not serve. kro-hub cannot type-check such a
/// graph, so RGD two waits `Inactive` for the kind (reason
/// `KindNotServed`, naming the resource and the kind), while RGDs one and
/// three and their instances go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_non_blocking_rgd() {
    let env = Env::start().await.unwrap();
    env.apply(&doc("non-blocking/rgd-one.yaml")).await.unwrap();
    env.apply(&doc("non-blocking/rgd-two.yaml")).await.unwrap();
    let two = env.wait_rgd("rgd-two", "Inactive").await.unwrap();
    let ready = condition(&two, "Ready").expect("Ready condition");
    assert_eq!(ready["reason"], "KindNotServed", "{ready}");
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"widget\"")
            && message.contains("Widget")
            && message.contains("does not serve"),
        "{message}"
    );
    env.apply(&doc("non-blocking/rgd-three.yaml"))
        .await
        .unwrap();
    for name in ["rgd-one", "rgd-three"] {
        env.wait_rgd(name, "Active").await.unwrap();
    }
    for n in ["one", "three"] {
        env.apply(&doc(&format!("non-blocking/instance-{n}.yaml")))
            .await
            .unwrap();
        assert_eventually(
            &env,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("test-{n}"), "namespace": "default"},
                "data": {"key": format!("hello-from-rgd-{n}")}}),
        )
        .await;
    }
    // RGD two is still waiting, and served no kind meanwhile.
    let two = env.wait_rgd("rgd-two", "Inactive").await.unwrap();
    assert_eq!(
        condition(&two, "Ready").expect("Ready condition")["reason"],
        "KindNotServed"
    );
    // The healthy instances stay ACTIVE alongside the failing one.
    for (kind, name) in [("YourAppOne", "test-one"), ("YourAppThree", "test-three")] {
        let live = get(&env, RGD_API, kind, Some("default"), name).await;
        assert_eq!(
            live["status"]["state"], "ACTIVE",
            "{kind}: {}",
            live["status"]
        );
    }
}

//! Expressions are checked against the schemas of the kinds they read, in
//! the three places an RGD is checked: the derive (at compile time, with the
//! built-in kinds), `kro-hub validate` and the hub (with the kinds its
//! cluster serves). The same broken graphs give the same message in all
//! three, and a kind served by a CRD is checked against that CRD.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kro_e2e::{Env, condition, fixture};
use serde_json::{Value, json};

/// The broken graphs: `e2e/data/schema-checks/<case>.yaml`, and the same
/// graph as a derive in `kro-sdk/tests/ui/schema_<case>.rs`.
const CASES: &[&str] = &[
    "child_status_field",
    "child_spec_field",
    "external_ref_field",
    "string_in_integer_field",
];

fn case_path(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/schema-checks")
        .join(format!("{case}.yaml"))
}

/// The derive's message, from the compile-fail snapshot.
fn derive_message(case: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../kro-sdk/tests/ui")
        .join(format!("schema_{case}.stderr"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("error: kro: "))
        .unwrap_or_else(|| panic!("{}: no kro error", path.display()))
        .to_owned()
}

/// `kro-hub validate`'s message, without the file name it starts with.
fn validate_message(case: &str) -> String {
    let path = case_path(case);
    let report = kro_hub::offline::validate_file(&path);
    assert!(report.valid.is_empty(), "{case}: {:?}", report.valid);
    assert_eq!(report.errors.len(), 1, "{case}");
    let text = report.errors[0].to_string();
    text.strip_prefix(&format!("{}: ", path.display()))
        .unwrap_or(&text)
        .to_owned()
}

fn graph_message(rgd: &Value) -> String {
    condition(rgd, "GraphAccepted")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derive_validate_and_hub_reject_the_same_graphs_with_the_same_message() {
    let env = Env::start().await.unwrap();
    for case in CASES {
        let expected = derive_message(case);
        assert_eq!(validate_message(case), expected, "{case}: validate");
        let yaml = fixture(&format!("schema-checks/{case}.yaml"));
        let applied = env.apply_yaml(&yaml).await.unwrap();
        let name = applied[0].metadata.name.clone().unwrap();
        let rgd = env.wait_rgd(&name, "Inactive").await.unwrap();
        assert_eq!(graph_message(&rgd), expected, "{case}: hub");
        assert_eq!(
            condition(&rgd, "GraphAccepted").unwrap()["reason"],
            "InvalidResourceGraph"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_change_leaves_the_last_accepted_graph_serving() {
    let env = Env::start().await.unwrap();
    let good_text = fixture("schema-checks/child_status_field.yaml").replace(
        "deployment.status.availableReplica}",
        "deployment.status.availableReplicas}",
    );
    let good = kro_core::parse_yaml_documents(&good_text)
        .unwrap()
        .remove(0);
    env.apply(&good).await.unwrap();
    env.wait_rgd("child-status-field", "Active").await.unwrap();
    let crd_name = "childstatusfields.kro.run";
    let crd_before = env
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            crd_name,
        )
        .await
        .unwrap()
        .unwrap();

    // The broken change also adds a spec field: the CRD must not get it.
    let mut broken =
        kro_core::parse_yaml_documents(&fixture("schema-checks/child_status_field.yaml"))
            .unwrap()
            .remove(0);
    broken["spec"]["schema"]["spec"]["extra"] = json!("string");
    env.apply(&broken).await.unwrap();
    let rgd = env
        .wait_rgd("child-status-field", "Inactive")
        .await
        .unwrap();
    assert!(
        graph_message(&rgd).contains("undefined field 'availableReplica' in deployment.status"),
        "{}",
        graph_message(&rgd)
    );
    let crd_after = env
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            crd_name,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(crd_after["spec"], crd_before["spec"]);

    // Instances are still served by the graph accepted last.
    env.apply(
        &json!({"apiVersion": "kro.run/v1alpha1", "kind": "ChildStatusField",
        "metadata": {"name": "still", "namespace": "default"}, "spec": {"name": "still"}}),
    )
    .await
    .unwrap();
    env.wait_for("apps/v1", "Deployment", Some("default"), "still", |_| true)
        .await
        .unwrap();
}

fn widget_crd(status_field: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {status_field: {"type": "boolean"}}}}}}}]}})
}

fn widget_rgd(name: &str, status_expr: &str) -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
        "metadata": {"name": name},
        "spec": {
            "schema": {"apiVersion": "v1alpha1", "kind": "WidgetApp",
                "spec": {"name": "string", "size": "integer | default=1"},
                "status": {"ready": status_expr}},
            "resources": [{"id": "widget", "template": {"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "${schema.spec.name}"},
                "spec": {"size": "${schema.spec.size}"}}}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rgd_over_a_crd_waits_for_it_and_is_checked_against_its_schema() {
    let env = Env::start().await.unwrap();
    env.apply(&widget_rgd("widgets", "${widget.status.ready}"))
        .await
        .unwrap();
    let waiting = env.wait_rgd("widgets", "Inactive").await.unwrap();
    let ready = condition(&waiting, "Ready").unwrap();
    assert_eq!(ready["reason"], "KindNotServed");
    assert_eq!(
        ready["message"],
        "resource \"widget\" uses kind Widget example.com/v1, which the cluster does not serve (is its CRD installed?)"
    );

    // The CRD appears: the RGD is retried and accepted.
    env.apply(&widget_crd("ready")).await.unwrap();
    env.wait_rgd("widgets", "Active").await.unwrap();
    // The status field read from the CRD's schema is typed from it.
    let crd = env
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "widgetapps.kro.run",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        crd.pointer(
            "/spec/versions/0/schema/openAPIV3Schema/properties/status/properties/ready/type"
        ),
        Some(&json!("boolean")),
        "{crd}"
    );

    // A misspelt field of the CRD's kind names the fields it has.
    let mut typo = widget_rgd("widgets-typo", "${widget.status.redy}");
    typo["spec"]["schema"]["kind"] = json!("WidgetTypo");
    env.apply(&typo).await.unwrap();
    let rejected = env.wait_rgd("widgets-typo", "Inactive").await.unwrap();
    assert_eq!(
        graph_message(&rejected),
        "RGD \"widgets-typo\", field \"spec.schema.status.ready\", expression \"${widget.status.redy}\": \
         undefined field 'redy' in widget.status, did you mean 'ready'? (known fields: ready)"
    );

    // The CRD changes so the field exists: the cached schema is refreshed
    // and the RGD accepted on its next pass.
    env.apply(&widget_crd("redy")).await.unwrap();
    kro_e2e::eventually(
        "the typo RGD accepted once the CRD has the field",
        std::time::Duration::from_secs(60),
        || async {
            let rgd = env
                .get(
                    "kro.run/v1alpha1",
                    "ResourceGraphDefinition",
                    None,
                    "widgets-typo",
                )
                .await
                .map_err(|e| e.to_string())?;
            let state = rgd
                .as_ref()
                .and_then(|r| r.pointer("/status/state").cloned());
            Ok((state == Some(json!("Active"))).then_some(()))
        },
    )
    .await
    .unwrap();
}

#[test]
fn validate_reads_crd_schemas_from_a_folder() {
    let dir = std::env::temp_dir().join(format!("kro-schemas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("widget-crd.yaml"),
        serde_json::to_string(&widget_crd("ready")).unwrap(),
    )
    .unwrap();
    let rgd = dir.join("rgd.yaml");
    std::fs::write(
        &rgd,
        serde_json::to_string(&widget_rgd("widgets", "${widget.status.redy}")).unwrap(),
    )
    .unwrap();
    let schemas = dir.join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::rename(dir.join("widget-crd.yaml"), schemas.join("widget-crd.yaml")).unwrap();

    // Without the schema, the kind's fields are not checked, and it says so.
    let report = kro_hub::offline::validate_file(&rgd);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        report.valid[0].contains("fields of Widget example.com/v1 not checked: no schema"),
        "{:?}",
        report.valid
    );

    let mut options = kro_core::CompileOptions::with_builtin_kinds();
    assert_eq!(
        kro_hub::offline::load_schemas(&schemas, &mut options).unwrap(),
        1
    );
    let report = kro_hub::offline::validate_file_with(&rgd, &options);
    let message = report.errors[0].to_string();
    assert!(
        message.contains("undefined field 'redy' in widget.status, did you mean 'ready'?"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_locates_structure_errors() {
    let dir = std::env::temp_dir().join(format!("kro-structure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rgd.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n---\n\
         apiVersion: kro.run/v1alpha1\nkind: ResourceGraphDefinition\nmetadata:\n  name: typo\n\
         spec:\n  schema:\n    apiVersion: v1alpha1\n    kind: Typo\n    spec:\n      name: string\n\
         \x20 resources:\n  - id: first\n    template: {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n\
         \x20 - id: second\n    templat:\n      apiVersion: v1\n",
    )
    .unwrap();
    let report = kro_hub::offline::validate_file(&path);
    assert_eq!(
        report.errors[0].to_string(),
        format!(
            "{}:19:5: RGD \"typo\", resource \"second\", unknown field `templat`, expected one of \
             id, template, externalRef, readyWhen, includeWhen, forEach, deletionPolicy, target",
            path.display()
        )
    );
    std::fs::write(&path, "a: [1,\nb: 2\n").unwrap();
    let report = kro_hub::offline::validate_file(&path);
    assert_eq!(
        report.errors[0].to_string(),
        format!("{}:1:4: unclosed bracket '['", path.display())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn render_says_which_flag_binds_the_cluster() {
    let dir = std::env::temp_dir().join(format!("kro-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rgd = dir.join("rgd.yaml");
    std::fs::write(
        &rgd,
        r#"apiVersion: kro.run/v1alpha1
kind: ResourceGraphDefinition
metadata: {name: per-cluster}
spec:
  schema: {apiVersion: v1alpha1, kind: PerCluster, spec: {name: string}}
  resources:
  - id: config
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${schema.spec.name}"}
      data: {region: "${cluster.labels.region}"}
"#,
    )
    .unwrap();
    let instance = dir.join("instance.yaml");
    std::fs::write(&instance, "spec: {name: x}\n").unwrap();
    let options = kro_core::CompileOptions::default();
    let e = kro_hub::offline::render(&rgd, &instance, None, None, &options)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: RGD \"per-cluster\", resource \"config\", field \"data.region\", expression \
             \"${{cluster.labels.region}}\": this graph reads the cluster it is placed on; pass \
             --cluster-label KEY=VALUE (once per label) to render it as for one cluster",
            rgd.display()
        )
    );
    let cluster = json!({"name": "eu-1", "labels": {"region": "eu"}, "annotations": {}});
    let yaml = kro_hub::offline::render(&rgd, &instance, None, Some(cluster), &options).unwrap();
    assert!(yaml.contains("region: eu"), "{yaml}");
    std::fs::remove_dir_all(&dir).unwrap();
}

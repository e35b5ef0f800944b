//! References into resources checked against their kinds' schemas: the
//! built-in kinds, CRDs, and ObjectMeta for every kind.
#![allow(clippy::unwrap_used)]

use kro_core::{CompileOptions, compile_with, parse_rgd_yaml};
use serde_json::json;

fn rgd(status: &str, resources: &str) -> String {
    format!(
        r#"apiVersion: kro.run/v1alpha1
kind: ResourceGraphDefinition
metadata: {{name: checks}}
spec:
  schema:
    apiVersion: v1alpha1
    kind: Checks
    spec:
      name: string
      size: integer
    status:
{status}
  resources:
{resources}"#
    )
}

const DEPLOYMENT: &str = r#"  - id: deployment
    template:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: "${schema.spec.name}"}
      spec:
        replicas: REPLICAS
        selector: {matchLabels: {app: x}}
        template:
          metadata: {labels: {app: x}}
          spec: {containers: [{name: x, image: nginx}]}
"#;

fn error(text: &str, options: &CompileOptions) -> String {
    compile_with(&parse_rgd_yaml(text).unwrap(), options)
        .unwrap_err()
        .to_string()
}

#[test]
fn misspelt_child_field_names_path_suggestion_and_known_fields() {
    let text = rgd(
        "      ready: ${deployment.status.availableReplica}",
        &DEPLOYMENT.replace("REPLICAS", "1"),
    );
    assert_eq!(
        error(&text, &CompileOptions::with_builtin_kinds()),
        "RGD \"checks\", field \"spec.schema.status.ready\", expression \
         \"${deployment.status.availableReplica}\": undefined field 'availableReplica' in \
         deployment.status, did you mean 'availableReplicas'? (known fields: availableReplicas, \
         collisionCount, conditions, observedGeneration, readyReplicas, replicas, \
         unavailableReplicas, updatedReplicas)"
    );
    // Without a schema for the kind, the reference is dynamic.
    compile_with(&parse_rgd_yaml(&text).unwrap(), &CompileOptions::default()).unwrap();
}

#[test]
fn metadata_is_object_meta_for_every_kind() {
    let text = rgd(
        "      uid: ${deployment.metadata.uuid}",
        &DEPLOYMENT.replace("REPLICAS", "1"),
    );
    // Checked even with no schema for the kind.
    let e = error(&text, &CompileOptions::default());
    assert!(
        e.contains("undefined field 'uuid' in deployment.metadata, did you mean 'uid'?"),
        "{e}"
    );
    let e = error(
        &text.replace("deployment.metadata.uuid", "schema.metadata.lables"),
        &CompileOptions::default(),
    );
    assert!(e.contains("did you mean 'labels'?"), "{e}");
    let fine = text.replace(
        "deployment.metadata.uuid",
        "deployment.metadata.ownerReferences[0].controller",
    );
    let graph = compile_with(&parse_rgd_yaml(&fine).unwrap(), &CompileOptions::default()).unwrap();
    assert_eq!(
        graph.status_schema()["properties"]["uid"]["type"],
        "boolean"
    );
}

#[test]
fn string_into_integer_field() {
    let text = rgd(
        "      ready: ${deployment.status.availableReplicas}",
        &DEPLOYMENT.replace("REPLICAS", "${schema.spec.name}"),
    );
    let e = error(&text, &CompileOptions::with_builtin_kinds());
    assert!(
        e.contains("resource \"deployment\", field \"spec.replicas\"")
            && e.ends_with("expression returns string but the field expects int"),
        "{e}"
    );
    // A string template is a string too.
    let text = rgd(
        "      ready: ${deployment.status.availableReplicas}",
        &DEPLOYMENT.replace("REPLICAS", "\"${string(schema.spec.size)}0\""),
    );
    let e = error(&text, &CompileOptions::with_builtin_kinds());
    assert!(
        e.contains("field \"spec.replicas\"")
            && e.contains("a string template makes a string but the field expects int"),
        "{e}"
    );
}

fn widget_crd(spec_schema: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": spec_schema,
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}]}})
}

const WIDGET: &str = r#"  - id: widget
    template:
      apiVersion: example.com/v1
      kind: Widget
      metadata: {name: "${schema.spec.name}"}
      spec: {size: "SIZE"}
"#;

#[test]
fn crd_schemas_check_references_and_fields() {
    let mut options = CompileOptions::default();
    assert_eq!(
        options.add_crd(&widget_crd(
            json!({"type": "object", "properties": {"size": {"type": "integer"}}})
        )),
        1
    );
    let text = rgd(
        "      ready: ${widget.status.redy}",
        &WIDGET.replace("SIZE", "${schema.spec.size}"),
    );
    let e = error(&text, &options);
    assert!(
        e.contains(
            "undefined field 'redy' in widget.status, did you mean 'ready'? (known fields: ready)"
        ),
        "{e}"
    );
    let text = rgd(
        "      ready: ${widget.status.ready}",
        &WIDGET.replace("SIZE", "${schema.spec.name}"),
    );
    let e = error(&text, &options);
    assert!(e.contains("expects int"), "{e}");

    // A schemaless kind stays dynamic, except for its metadata.
    let mut schemaless = CompileOptions::default();
    schemaless.add_crd(&widget_crd(
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    ));
    let text = rgd(
        "      ready: ${widget.spec.anything.goes}",
        &WIDGET.replace("SIZE", "${schema.spec.name}"),
    );
    compile_with(&parse_rgd_yaml(&text).unwrap(), &schemaless).unwrap();
}

#[test]
fn cluster_reference_is_located() {
    let text = rgd(
        "      ready: ${deployment.status.availableReplicas}",
        &DEPLOYMENT
            .replace("REPLICAS", "1")
            .replace("image: nginx", "image: \"nginx-${cluster.name}\""),
    );
    let graph = compile_with(&parse_rgd_yaml(&text).unwrap(), &CompileOptions::default()).unwrap();
    let at = graph.cluster_reference().unwrap();
    assert_eq!(at.resource.as_deref(), Some("deployment"));
    assert_eq!(at.field, "spec.template.spec.containers[0].image");
    assert_eq!(at.expression.as_deref(), Some("cluster.name"));
}

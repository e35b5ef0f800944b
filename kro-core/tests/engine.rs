//! Compile-time checks and rendering behaviour through the public API.
#![allow(clippy::unwrap_used)]

use kro_core::{
    CompiledGraph, Error, EvalContext, Inclusion, Readiness, RenderOutcome, ResolvedPlacement,
    compile, parse_rgd_yaml,
};
use serde_json::{Value, json};

fn rgd(resources: &str) -> String {
    rgd_with("", resources)
}

/// An RGD with a standard spec, extra `schema` keys and `resources`.
fn rgd_with(schema_extra: &str, resources: &str) -> String {
    format!(
        r#"apiVersion: kro.run/v1alpha1
kind: ResourceGraphDefinition
metadata:
  name: test
spec:
  schema:
    apiVersion: v1alpha1
    kind: Test
    spec:
      name: string | default="app"
      replicas: integer | default=2
      enabled: boolean | default=true
      regions: "[]string"
      labels: map[string]string
{schema_extra}
  resources:
{resources}"#
    )
}

fn compiled(text: &str) -> CompiledGraph {
    let rgd = parse_rgd_yaml(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    compile(&rgd).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn error(text: &str) -> String {
    let rgd = parse_rgd_yaml(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    match compile(&rgd) {
        Ok(_) => panic!("expected an error for\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn cm(id: &str, data: &str) -> String {
    format!(
        r#"  - id: {id}
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: {id}
      data:
        {data}
"#
    )
}

fn instance() -> Value {
    json!({"apiVersion": "kro.run/v1alpha1", "kind": "Test",
           "metadata": {"name": "i1", "namespace": "ns"},
           "spec": {"name": "app", "replicas": 2, "enabled": true, "regions": ["eu", "us"]}})
}

#[test]
fn topological_order_follows_references_then_declaration() {
    let g = compiled(&rgd(&[
        cm("c", "x: ${b.metadata.name}"),
        cm("a", "x: plain"),
        cm("b", "x: ${a.metadata.name}"),
    ]
    .concat()));
    assert_eq!(g.topological_order(), ["a", "b", "c"]);
    assert_eq!(g.resource("c").unwrap().dependencies(), ["b"]);
    assert_eq!(
        g.resources().map(|r| r.id()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    let info = g.resource_information();
    assert_eq!(info[1].dependencies[0].id, "a");
}

#[test]
fn cycles_print_the_cycle() {
    let e = error(&rgd(&[
        cm("a", "x: ${c.metadata.name}"),
        cm("b", "x: ${a.metadata.name}"),
        cm("c", "x: ${b.metadata.name}"),
    ]
    .concat()));
    assert!(e.contains("dependency cycle: a -> c -> b -> a"), "{e}");
    let e = error(&rgd(&cm("a", "x: ${a.metadata.name}")));
    assert!(e.contains("a -> a"), "{e}");
}

#[test]
fn unknown_references_and_fields_are_rejected_with_location() {
    let e = error(&rgd(&cm("a", "x: ${nope.metadata.name}")));
    assert!(
        e.contains(
            r#"RGD "test", resource "a", field "data.x", expression "${nope.metadata.name}""#
        ),
        "{e}"
    );
    assert!(e.contains("unknown reference \"nope\""), "{e}");
    let e = error(&rgd(&[
        cm("deployment", "x: y"),
        cm("b", "x: ${deploymnet.metadata.name}"),
    ]
    .concat()));
    assert!(e.contains("did you mean \"deployment\"?"), "{e}");
    let e = error(&rgd(&cm("a", "x: ${schema.spec.nmae}")));
    assert!(e.contains("undefined field 'nmae'"), "{e}");
    let e = error(&rgd(&cm("a", "x: ${schema.spec.replicas + 'x'}")));
    assert!(e.contains("no matching overload"), "{e}");
    let e = error(&rgd(&cm("a", "x: ${schema.spec.name +}")));
    assert!(e.contains("syntax error"), "{e}");
    let e = error(&rgd(&cm("a", "x: \"${schema.spec.name\"")));
    assert!(e.contains("unterminated"), "{e}");
}

#[test]
fn string_templates_need_strings() {
    let e = error(&rgd(&cm("a", "x: \"n-${schema.spec.replicas}\"")));
    assert!(e.contains("must return a string, got int"), "{e}");
    compiled(&rgd(&cm("a", "x: \"n-${string(schema.spec.replicas)}\"")));
}

#[test]
fn known_field_types_are_checked() {
    let e = error(&rgd(
        "  - id: a\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: ${schema.spec.replicas}\n",
    ));
    assert!(e.contains("expects string"), "{e}");
    let e = error(&rgd(
        "  - id: a\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: a\n        labels: ${schema.spec.regions}\n",
    ));
    assert!(e.contains("expects map(string, string)"), "{e}");
}

#[test]
fn ids_and_resource_shapes_are_validated() {
    assert!(error(&rgd(&cm("Bad", "x: y"))).contains("lowerCamelCase"));
    assert!(error(&rgd(&cm("schema", "x: y"))).contains("reserved"));
    assert!(
        error(&rgd(&[cm("a", "x: y"), cm("a", "x: y")].concat())).contains("duplicate resource id")
    );
    let e = error(&rgd("  - id: a\n    template:\n      kind: ConfigMap\n"));
    assert!(e.contains("apiVersion"), "{e}");
    let e = error(&rgd(
        "  - id: a\n    template:\n      apiVersion: v1\n      kind: ${schema.spec.name}\n",
    ));
    assert!(e.contains("literal string"), "{e}");
    let e = error(&rgd("  - id: a\n"));
    assert!(e.contains("template or an externalRef"), "{e}");
    let e = error(&rgd(
        "  - id: a\n    externalRef:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata: {}\n",
    ));
    assert!(e.contains("metadata.name or metadata.selector"), "{e}");
    let e = error(&rgd(&cm("a", "x: y")).replace("kind: Test", "kind: test"));
    assert!(e.contains("UpperCamelCase"), "{e}");
}

#[test]
fn upstream_shape_rules() {
    let e = error(&rgd(
        "  - id: a\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n",
    ));
    assert!(e.contains("must have metadata"), "{e}");
    let e = error(&rgd(
        "  - id: a\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: a\n        labels:\n          kro.run/owned: x\n",
    ));
    assert!(e.contains("reserved for kro"), "{e}");
    assert!(error(&rgd(&cm("in", "x: y"))).contains("reserved"));
    assert!(error(&rgd(&cm("graphengine", "x: y"))).contains("reserved"));
    let e = error(&rgd(
        "  - id: a\n    forEach:\n    - r: ${schema.spec.regions}\n    externalRef:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: x\n",
    ));
    assert!(e.contains("externalRef with forEach"), "{e}");
    let e = error(&rgd(
        "  - id: a\n    externalRef:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        selector: \"app=x\"\n",
    ));
    assert!(
        e.contains("LabelSelector object or a ${...} expression"),
        "{e}"
    );
    // Versions as upstream's regex allows them.
    compiled(&rgd(&cm("a", "x: y")).replace(
        "apiVersion: v1alpha1\n    kind: Test",
        "apiVersion: v0beta0\n    kind: Test",
    ));
    let e = error(&rgd(&cm("a", "x: y")).replace(
        "apiVersion: v1alpha1\n    kind: Test",
        "apiVersion: 1.0\n    kind: Test",
    ));
    assert!(e.contains("apiVersion"), "{e}");
    // `schema` has no status in expressions, like upstream.
    let e = error(&rgd(&cm("a", "x: ${schema.status.foo}")));
    assert!(e.contains("undefined field 'status'"), "{e}");
}

#[test]
fn omit_only_as_a_whole_field_and_never_for_the_name() {
    let e = error(&rgd(&cm("a", "x: \"a-${omit()}\"")));
    assert!(e.contains("omit() may only be used"), "{e}");
    let e = error(&rgd(
        "  - id: a\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: ${omit()}\n",
    ));
    assert!(e.contains("metadata.name"), "{e}");
    let e = error(&rgd(
        "  - id: a\n    includeWhen:\n    - ${omit() == 1}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: a\n",
    ));
    assert!(e.contains("omit() may only be used"), "{e}");
    compiled(&rgd(&cm(
        "a",
        "x: \"${schema.spec.enabled ? 'on' : omit()}\"",
    )));
}

#[test]
fn optional_bool_conditions() {
    let g = compiled(&rgd(
        "  - id: a\n    includeWhen:\n    - ${schema.spec.?labels.?on.optMap(v, v == 'yes')}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: a\n",
    ));
    let ctx = EvalContext::new(instance());
    assert!(matches!(
        g.include("a", &ctx).unwrap(),
        Inclusion::Excluded(_)
    ));
    let mut inst = instance();
    inst["spec"]["labels"] = json!({"on": "yes"});
    assert_eq!(
        g.include("a", &EvalContext::new(inst)).unwrap(),
        Inclusion::Included
    );
}

#[test]
fn conditions_are_standalone_bools_and_ready_when_reads_only_itself() {
    let base = "  - id: a\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: a\n";
    let e = error(&rgd(&format!(
        "{base}    includeWhen:\n    - ${{schema.spec.name}}\n"
    )));
    assert!(
        e.contains("includeWhen must return bool, got string"),
        "{e}"
    );
    let e = error(&rgd(&format!(
        "{base}    includeWhen:\n    - \"x ${{schema.spec.enabled}}\"\n"
    )));
    assert!(e.contains("single ${...} expression"), "{e}");
    let e = error(&rgd(&format!(
        "{base}    readyWhen:\n    - ${{schema.spec.enabled}}\n"
    )));
    assert!(e.contains("readyWhen may only reference \"a\""), "{e}");
    compiled(&rgd(&format!(
        "{base}    readyWhen:\n    - ${{a.metadata.name == 'a'}}\n"
    )));
}

#[test]
fn include_when_skips_the_resource_and_its_dependents() {
    let g = compiled(&rgd(&[
        "  - id: a\n    includeWhen:\n    - ${schema.spec.enabled}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: a\n".to_owned(),
        cm("b", "x: ${a.metadata.name}"),
        cm("c", "x: ${schema.spec.name}"),
    ]
    .concat()));
    let mut inst = instance();
    let ctx = EvalContext::new(inst.clone());
    assert_eq!(g.include("a", &ctx).unwrap(), Inclusion::Included);
    inst["spec"]["enabled"] = json!(false);
    let report = g.render_all(&EvalContext::new(inst.clone())).unwrap();
    assert!(
        report.resources[0]
            .excluded
            .as_deref()
            .unwrap()
            .contains("is false")
    );
    assert!(
        report.resources[1]
            .excluded
            .as_deref()
            .unwrap()
            .contains("dependency \"a\" is excluded")
    );
    assert!(report.resources[2].excluded.is_none());
    assert_eq!(report.resources[2].objects[0]["data"]["x"], "app");
    let mut ctx = EvalContext::new(inst);
    ctx.exclude("a");
    assert!(matches!(
        g.include("b", &ctx).unwrap(),
        Inclusion::Excluded(_)
    ));
}

#[test]
fn include_when_may_wait_for_other_resources() {
    let g = compiled(&rgd(&[
        cm("a", "x: y"),
        "  - id: b\n    includeWhen:\n    - ${a.data.x == 'y'}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: b\n".to_owned(),
    ]
    .concat()));
    let ctx = EvalContext::new(instance());
    assert_eq!(
        g.include("b", &ctx).unwrap(),
        Inclusion::Pending(vec!["a".into()])
    );
    let ctx = ctx.with_observed("a", json!({"data": {"x": "y"}}));
    assert_eq!(g.include("b", &ctx).unwrap(), Inclusion::Included);
}

#[test]
fn rendering_waits_for_dependencies_and_their_fields() {
    let g = compiled(&rgd(&cm("svc", "x: ${string(dep.status.ready)}")
        .replace("  - id: svc", &format!("{}  - id: svc", cm("dep", "x: y")))));
    let ctx = EvalContext::new(instance());
    assert_eq!(
        g.render_resource("svc", &ctx).unwrap(),
        RenderOutcome::Pending(vec!["dep".into()])
    );
    // Observed, but the field read is not reported yet: still pending.
    let ctx = ctx.with_observed("dep", json!({"metadata": {"name": "dep"}}));
    assert_eq!(
        g.render_resource("svc", &ctx).unwrap(),
        RenderOutcome::Pending(vec!["dep".into()])
    );
    let ctx = ctx.with_observed("dep", json!({"status": {"ready": 3}}));
    match g.render_resource("svc", &ctx).unwrap() {
        RenderOutcome::Rendered(objs) => assert_eq!(objs[0]["data"]["x"], "3"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_instance_fields_are_errors_not_empty_values() {
    let g = compiled(&rgd(&cm("a", "x: ${schema.spec.labels.team}")));
    let e = g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Eval { .. }));
    assert!(msg.contains("resource \"a\", field \"data.x\""), "{msg}");
    assert!(msg.contains("no such key"), "{msg}");
    // With an optional the field is simply left out.
    let g = compiled(&rgd(&cm("a", "x: ${schema.spec.?labels.team}")));
    match g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap()
    {
        RenderOutcome::Rendered(objs) => assert_eq!(objs[0]["data"], json!({})),
        other => panic!("{other:?}"),
    }
}

#[test]
fn whole_string_expressions_keep_their_type() {
    let g = compiled(&rgd(
        "  - id: a\n    template:\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata:\n        name: a\n      spec:\n        replicas: ${schema.spec.replicas}\n        paused: ${!schema.spec.enabled}\n        regions: ${schema.spec.regions}\n        escaped: ${\"${X}\"}\n        list:\n        - ${schema.spec.replicas * 2}\n        - ${omit()}\n        - last\n",
    ));
    match g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap()
    {
        RenderOutcome::Rendered(objs) => {
            let spec = &objs[0]["spec"];
            assert_eq!(spec["replicas"], json!(2));
            assert_eq!(spec["paused"], json!(false));
            assert_eq!(spec["regions"], json!(["eu", "us"]));
            assert_eq!(spec["escaped"], json!("${X}"));
            assert_eq!(spec["list"], json!([4, "last"]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn for_each_expands_the_cartesian_product() {
    let g = compiled(&rgd(
        "  - id: cms\n    forEach:\n    - region: ${schema.spec.regions}\n    - tier: ${['a', 'b']}\n    readyWhen:\n    - ${each.data.ok == 'yes'}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: ${schema.spec.name + '-' + region + '-' + tier}\n",
    ));
    assert!(g.resource("cms").unwrap().is_collection());
    let ctx = EvalContext::new(instance());
    let RenderOutcome::Rendered(objs) = g.render_resource("cms", &ctx).unwrap() else {
        panic!()
    };
    let names: Vec<&str> = objs
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app-eu-a", "app-eu-b", "app-us-a", "app-us-b"]);
    let ctx = ctx.with_observed(
        "cms",
        json!([{"data": {"ok": "yes"}}, {"data": {"ok": "no"}}]),
    );
    assert!(matches!(
        g.ready("cms", &ctx).unwrap(),
        Readiness::NotReady(_)
    ));
    let ctx = ctx.with_observed("cms", json!([{"data": {"ok": "yes"}}]));
    assert_eq!(g.ready("cms", &ctx).unwrap(), Readiness::Ready);
    // Other resources see the collection as a list.
    let g = compiled(&rgd(&[
        "  - id: cms\n    forEach:\n    - region: ${schema.spec.regions}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: ${region}\n".to_owned(),
        cm("summary", "n: ${string(size(cms))}"),
    ]
    .concat()));
    let report = g.render_all(&EvalContext::new(instance())).unwrap();
    assert_eq!(report.resources[1].objects[0]["data"]["n"], "2");
}

#[test]
fn for_each_is_checked() {
    let e = error(&rgd(
        "  - id: cms\n    forEach:\n    - region: ${schema.spec.name}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: x\n",
    ));
    assert!(e.contains("must return a list"), "{e}");
    let e = error(&rgd(
        "  - id: cms\n    forEach:\n    - schema: ${schema.spec.regions}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: x\n",
    ));
    assert!(e.contains("iterator name"), "{e}");
}

#[test]
fn readiness() {
    let g = compiled(&rgd(
        "  - id: d\n    readyWhen:\n    - ${d.status.ready == true}\n    template:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: d\n",
    ));
    let ctx = EvalContext::new(instance());
    assert_eq!(g.ready("d", &ctx).unwrap(), Readiness::Pending);
    let ctx = ctx.with_observed("d", json!({"metadata": {}}));
    let Readiness::NotReady(why) = g.ready("d", &ctx).unwrap() else {
        panic!()
    };
    assert!(why.contains("not set yet"), "{why}");
    let ctx = ctx.with_observed("d", json!({"status": {"ready": true}}));
    assert_eq!(g.ready("d", &ctx).unwrap(), Readiness::Ready);
}

#[test]
fn external_refs_render_their_identity_and_feed_dependents() {
    let g = compiled(&rgd(&[
        "  - id: shared\n    externalRef:\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: ${schema.spec.name}-shared\n".to_owned(),
        cm("user", "x: ${shared.data.value}"),
    ]
    .concat()));
    let node = g.resource("shared").unwrap();
    assert!(node.is_external());
    let ctx = EvalContext::new(instance());
    let RenderOutcome::Rendered(refs) = g.render_resource("shared", &ctx).unwrap() else {
        panic!()
    };
    assert_eq!(refs[0]["metadata"]["name"], "app-shared");
    assert_eq!(
        g.render_resource("user", &ctx).unwrap(),
        RenderOutcome::Pending(vec!["shared".into()])
    );
    let ctx = ctx.with_observed("shared", json!({"data": {"value": "v"}}));
    let RenderOutcome::Rendered(objs) = g.render_resource("user", &ctx).unwrap() else {
        panic!()
    };
    assert_eq!(objs[0]["data"]["x"], "v");
}

#[test]
fn status_is_partial_and_typed() {
    let g = compiled(&rgd_with(
        "    status:\n      name: ${a.metadata.name}\n      ready: ${b.status.ready}\n      summary: \"${a.metadata.name}/${string(schema.spec.replicas)}\"\n      nested:\n        count: ${schema.spec.replicas * 2}\n      constant: 5\n",
        &[cm("a", "x: y"), cm("b", "x: y")].concat(),
    ));
    assert_eq!(
        g.status_schema()["properties"],
        json!({
            "name": {"type": "string"},
            "ready": {"x-kubernetes-preserve-unknown-fields": true},
            "summary": {"type": "string"},
            "nested": {"type": "object", "properties": {"count": {"type": "integer"}}},
            "constant": {"type": "integer"}
        })
    );
    let ctx = EvalContext::new(instance()).with_observed("a", json!({"metadata": {"name": "a1"}}));
    let status = g.status(&ctx).unwrap();
    assert_eq!(
        status,
        json!({"name": "a1", "summary": "a1/2", "nested": {"count": 4}, "constant": 5})
    );
    // `b` observed without the field: still omitted, never null.
    let ctx = ctx.with_observed("b", json!({"status": {}}));
    assert!(g.status(&ctx).unwrap().get("ready").is_none());
    let e = error(&rgd_with(
        "    status:\n      x: ${nope.a}\n",
        &cm("a", "x: y"),
    ));
    assert!(e.contains("field \"spec.schema.status.x\""), "{e}");
}

#[test]
fn defaults_are_applied_before_rendering() {
    let g = compiled(&rgd(&cm(
        "a",
        "x: ${schema.spec.name + string(schema.spec.replicas)}",
    )));
    let report = g
        .render_all(&EvalContext::new(
            json!({"metadata": {"name": "i"}, "spec": {}}),
        ))
        .unwrap();
    assert_eq!(report.resources[0].objects[0]["data"]["x"], "app2");
}

#[test]
fn cluster_variable_and_placement() {
    let text = rgd_with(
        "",
        &cm("a", "x: ${cluster.name + '-' + cluster.labels.region}"),
    )
    .replace(
        "  resources:",
        "  placement:\n    clusters: ${schema.spec.regions.map(r, 'c-' + r)}\n  resources:",
    );
    let g = compiled(&text);
    let ctx = EvalContext::new(instance())
        .with_cluster(json!({"name": "m1", "labels": {"region": "eu"}}));
    let RenderOutcome::Rendered(objs) = g.render_resource("a", &ctx).unwrap() else {
        panic!()
    };
    assert_eq!(objs[0]["data"]["x"], "m1-eu");
    assert_eq!(
        g.placement_clusters(&ctx).unwrap(),
        Some(vec!["c-eu".into(), "c-us".into()])
    );
    let e = g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("with_cluster"), "{e}");
}

#[test]
fn hub_resources_cannot_read_member_resources() {
    let text = rgd(&[
        cm("a", "x: y"),
        cm("b", "x: ${a.data.x}").replace("  - id: b\n", "  - id: b\n    target: Hub\n"),
    ]
    .concat());
    let e = error(&text);
    assert!(e.contains("Hub resource cannot reference \"a\""), "{e}");
}

#[test]
fn evaluation_is_bounded() {
    let g = compiled(&rgd(&cm(
        "a",
        "x: ${string(size(schema.spec.regions.map(a, schema.spec.regions.map(b, schema.spec.regions.map(c, a + b + c)))))}",
    )));
    let mut inst = instance();
    inst["spec"]["regions"] = json!((0..300).map(|i| format!("r{i}")).collect::<Vec<_>>());
    let e = g
        .render_resource("a", &EvalContext::new(inst))
        .unwrap_err()
        .to_string();
    assert!(e.contains("estimated evaluation cost"), "{e}");
}

#[test]
fn unknown_resource_ids_are_errors() {
    let g = compiled(&rgd(&cm("a", "x: y")));
    let e = g
        .render_resource("zzz", &EvalContext::new(instance()))
        .unwrap_err();
    assert!(matches!(e, Error::UnknownResource { .. }));
}

#[test]
fn graph_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledGraph>();
    assert_send_sync::<EvalContext>();
}

#[test]
fn spec_validation_rules_are_checked() {
    let ok = rgd_with(
        "    validation:\n    - expression: self.replicas <= 10\n      message: too many\n",
        &cm("a", "x: y"),
    );
    compiled(&ok);
    let e = error(&rgd_with(
        "    validation:\n    - expression: self.replicaz <= 10\n",
        &cm("a", "x: y"),
    ));
    assert!(
        e.contains("spec.schema.validation[0]") && e.contains("undefined field 'replicaz'"),
        "{e}"
    );
    let e = error(&rgd_with(
        "    validation:\n    - expression: self.name\n",
        &cm("a", "x: y"),
    ));
    assert!(e.contains("must return bool"), "{e}");
}

fn with_k8s_schemas() -> kro_core::CompileOptions {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/k8s-openapi-apps-core-subset.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut opts = kro_core::CompileOptions::default();
    assert!(opts.add_openapi_v3(&doc) >= 2);
    opts
}

#[test]
fn resource_schemas_type_references_and_status() {
    let opts = with_k8s_schemas();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/webapp-rgd.yaml"
    ))
    .unwrap();
    let g = kro_core::compile_with(&parse_rgd_yaml(&text).unwrap(), &opts).unwrap();
    let status = &g.status_schema()["properties"];
    assert_eq!(status["availableReplicas"], json!({"type": "integer"}));
    assert_eq!(status["deploymentConditions"]["type"], "array");
    assert_eq!(
        status["deploymentConditions"]["items"]["properties"]["type"],
        json!({"type": "string"})
    );
    // A typo into the Deployment is now a compile error.
    let bad = text.replace(
        "deployment.status.availableReplicas",
        "deployment.status.availableReplica",
    );
    let e = kro_core::compile_with(&parse_rgd_yaml(&bad).unwrap(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("undefined field 'availableReplica'"), "{e}");
    // And a value of the wrong type for its field.
    let bad = text.replace(
        "replicas: ${schema.spec.replicas}",
        "replicas: ${schema.spec.name}",
    );
    let e = kro_core::compile_with(&parse_rgd_yaml(&bad).unwrap(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field \"spec.replicas\"") && e.contains("expects int"),
        "{e}"
    );
}

#[test]
fn values_that_could_exhaust_memory_are_refused() {
    let mut expr = "schema.spec.name".to_owned();
    for i in 0..10 {
        expr = format!("cel.bind(v{i}, {expr}, v{i} + v{i} + v{i} + v{i} + v{i} + v{i})");
    }
    let g = compiled(&rgd(&cm("a", &format!("x: \"${{{expr}}}\""))));
    let mut inst = instance();
    inst["spec"]["name"] = json!("x".repeat(2000));
    let e = g
        .render_resource("a", &EvalContext::new(inst))
        .unwrap_err()
        .to_string();
    assert!(e.contains("estimated size"), "{e}");
    // One doubling of a small input is fine.
    let g = compiled(&rgd(&cm("a", "x: ${cel.bind(v, schema.spec.name, v + v)}")));
    assert!(matches!(
        g.render_resource("a", &EvalContext::new(instance()))
            .unwrap(),
        RenderOutcome::Rendered(_)
    ));
}

#[test]
fn time_now_and_object_timestamps() {
    let g = compiled(&rgd(&cm(
        "a",
        "old: ${string(time.now() - schema.metadata.creationTimestamp > duration(\"5m\"))}\n        soon: ${string(timestamp(\"2030-01-01T00:00:00Z\") - time.now() < duration(\"1h\"))}\n        at: ${string(time.now())}",
    )));
    let mut inst = instance();
    inst["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_704_067_500); // 00:05:00
    let ctx = EvalContext::new(inst.clone()).with_now(now);
    let RenderOutcome::Rendered(objs) = g.render_resource("a", &ctx).unwrap() else {
        panic!()
    };
    assert_eq!(objs[0]["data"]["old"], "false");
    assert_eq!(objs[0]["data"]["soon"], "false");
    assert_eq!(objs[0]["data"]["at"], "2024-01-01T00:05:00Z");
    let later = now + std::time::Duration::from_secs(1);
    let RenderOutcome::Rendered(objs) = g
        .render_resource("a", &EvalContext::new(inst.clone()).with_now(later))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(objs[0]["data"]["old"], "true");
    assert!(g.uses_time());
    assert!(!compiled(&rgd(&cm("b", "x: y"))).uses_time());
    // The gate opens 5 minutes after creation: at that very instant the next
    // change is now; a minute before, it is a minute away.
    let next = g
        .next_time_change(&EvalContext::new(inst.clone()).with_now(now))
        .unwrap();
    let secs = next
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((secs - 1_704_067_500.0).abs() < 0.01, "{secs}");
    let soon = now - std::time::Duration::from_secs(60);
    let next = g
        .next_time_change(&EvalContext::new(inst.clone()).with_now(soon))
        .unwrap();
    assert!((next.duration_since(soon).unwrap().as_secs_f64() - 60.0).abs() < 0.01);
    assert_eq!(
        compiled(&rgd(&cm("b", "x: y")))
            .next_time_change(&EvalContext::new(inst.clone()).with_now(now)),
        None
    );
    // kro-core reads no clock: without an instant, time.now() is an error.
    let e = g
        .render_resource("a", &EvalContext::new(inst))
        .unwrap_err()
        .to_string();
    assert!(e.contains("with_now"), "{e}");
    // The hex sha256 helper.
    let g = compiled(&rgd(&cm("a", "h: ${sha256('abc')}")));
    let RenderOutcome::Rendered(objs) = g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        objs[0]["data"]["h"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn builtin_kinds_check_references_offline() {
    let opts = kro_core::CompileOptions::with_builtin_kinds();
    let names: Vec<_> = kro_core::CompileOptions::builtin_kind_names().collect();
    assert!(
        names
            .iter()
            .any(|(v, k)| v == "apps/v1" && k == "Deployment")
    );
    assert!(names.iter().any(|(v, k)| v == "v1" && k == "ConfigMap"));
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/wordpress-rgd.yaml"
    ))
    .unwrap();
    let g = kro_core::compile_with(&parse_rgd_yaml(&text).unwrap(), &opts).unwrap();
    assert_eq!(
        g.status_schema()["properties"]["availableReplicas"],
        json!({"type": "integer"})
    );
    assert_eq!(
        g.status_schema()["properties"]["databaseReady"],
        json!({"type": "boolean"})
    );
    let bad = text.replace(
        "${mysql.status.readyReplicas == 1}\n    template",
        "${mysql.status.readyReplica == 1}\n    template",
    );
    let e = kro_core::compile_with(&parse_rgd_yaml(&bad).unwrap(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("undefined field 'readyReplica'"), "{e}");
    // Without the option the same typo waits for run time.
    assert!(compile(&parse_rgd_yaml(&bad).unwrap()).is_ok());
}

#[test]
fn placement_resolves_static_lists_expressions_and_selectors() {
    let none = compiled(&rgd(&cm("a", "x: y")));
    assert_eq!(none.placement(&EvalContext::new(instance())).unwrap(), None);

    let text = rgd(&cm("a", "x: y")).replace(
        "  resources:",
        "  placement:\n    clusters: [east, west]\n    clusterSelector:\n      matchLabels:\n        env: ${schema.spec.name}\n        tier: \"t-${string(schema.spec.replicas)}\"\n  resources:",
    );
    let g = compiled(&text);
    let p = g.placement(&EvalContext::new(instance())).unwrap().unwrap();
    assert_eq!(p.clusters, Some(vec!["east".to_owned(), "west".to_owned()]));
    assert_eq!(
        p.cluster_selector,
        Some(json!({"matchLabels": {"env": "app", "tier": "t-2"}}))
    );
    // Computed per instance: nothing is known before an instance is read.
    assert_eq!(g.static_placement(), None);
    assert_eq!(none.static_placement(), None);
    let fixed = compiled(&rgd(&cm("a", "x: y")).replace(
        "  resources:",
        "  placement:\n    clusters: [east]\n    clusterSelector:\n      matchLabels:\n        env: prod\n    when: ${schema.spec.replicas > 1}\n  resources:",
    ));
    assert_eq!(
        fixed.static_placement(),
        Some(ResolvedPlacement {
            clusters: Some(vec!["east".to_owned()]),
            cluster_selector: Some(json!({"matchLabels": {"env": "prod"}})),
        })
    );
    let listed = compiled(&rgd(&cm("a", "x: y")).replace(
        "  resources:",
        "  placement:\n    clusters: ${[schema.spec.name]}\n  resources:",
    ));
    assert_eq!(listed.static_placement(), None);
    let everywhere =
        compiled(&rgd(&cm("a", "x: y")).replace("  resources:", "  placement: {}\n  resources:"));
    assert_eq!(
        everywhere.static_placement(),
        Some(ResolvedPlacement {
            clusters: None,
            cluster_selector: None
        })
    );

    let bad = rgd(&cm("a", "x: y")).replace(
        "  resources:",
        "  placement:\n    clusterSelector:\n      matchLabels:\n        env: ${a.metadata.name}\n  resources:",
    );
    let e = error(&bad);
    assert!(e.contains("placement may only read schema"), "{e}");
}

#[test]
fn status_lists_hold_no_expressions() {
    let e = error(&rgd_with(
        "    status:\n      urls:\n      - ${a.metadata.name}\n",
        &cm("a", "x: y"),
    ));
    assert!(
        e.contains("spec.schema.status.urls") && e.contains("status list"),
        "{e}"
    );
    compiled(&rgd_with(
        "    status:\n      urls: ${[a.metadata.name]}\n      fixed: [1, 2]\n",
        &cm("a", "x: y"),
    ));
}

/// Runs `f` on a thread with a small stack, so a test fails (rather than
/// passing by luck on a big main-thread stack) when something recurses on
/// input-controlled depth.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn computed_ranges_are_metered_as_they_run() {
    // The static estimate cannot see `100 * 100`: the meter stops it after
    // about a million units, long before the 10^8 products it asks for.
    let bomb =
        "${string(size(lists.range(100 * 100).map(x, lists.range(100 * 100).map(y, x * y))))}";
    let g = compiled(&rgd(&cm("a", &format!("x: \"{bomb}\""))));
    let started = std::time::Instant::now();
    let e = g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("evaluation cost exceeds the budget of 1000000 units per expression"),
        "{e}"
    );
    assert!(e.contains("resource \"a\""), "the resource is named: {e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The same shape at a sane size still runs.
    let fine = "${string(size(lists.range(10 * 10).map(x, lists.range(10).map(y, x * y))))}";
    let g = compiled(&rgd(&cm("a", &format!("x: \"{fine}\""))));
    match g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap()
    {
        RenderOutcome::Rendered(objs) => assert_eq!(objs[0]["data"]["x"], "100"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn quadratic_functions_are_charged_for_their_work() {
    // 20,000 entries are 20,000 units to build, but 4·10⁸ comparisons to
    // de-duplicate.
    let g = compiled(&rgd(&cm(
        "a",
        "x: \"${string(size(lists.range(20000).distinct()))}\"",
    )));
    let e = g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("units per expression"), "{e}");
    // A small list is fine.
    let g = compiled(&rgd(&cm(
        "a",
        "x: \"${string(size([1, 2, 2, 3].distinct()))}\"",
    )));
    match g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap()
    {
        RenderOutcome::Rendered(objs) => assert_eq!(objs[0]["data"]["x"], "3"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn values_doubled_through_bind_are_metered() {
    // Each level doubles the string; the estimate sees 8 bytes of input.
    let mut expr = "schema.spec.name + schema.spec.name".to_owned();
    for i in 0..20 {
        expr = format!("cel.bind(v{i}, {expr}, v{i} + v{i})");
    }
    let g = compiled(&rgd(&cm("a", &format!("x: \"${{size({expr}) > 0}}\""))));
    let e = g
        .render_resource("a", &EvalContext::new(instance()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("units per expression"), "{e}");
}

#[test]
fn the_instance_budget_is_shared_by_every_expression_and_for_each_item() {
    // Each item costs ~30,000 units, well under the per-expression budget;
    // 1,000 items together exceed the instance's.
    let text = rgd_with(
        "",
        r#"  - id: many
    forEach:
      - idx: ${lists.range(1000)}
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: ${'cm-' + string(idx)}
      data:
        x: ${string(size(lists.range(10000).filter(i, i % 2 == 0)))}
"#,
    );
    let g = compiled(&text);
    // A smaller instance budget than the default keeps the test quick; the
    // rule is the same.
    let ctx =
        EvalContext::new(instance()).with_budget(kro_core::expr::meter::Budget::new(2_000_000));
    let e = g.render_resource("many", &ctx).unwrap_err().to_string();
    assert!(e.contains("budget of 2000000 units per instance"), "{e}");
    assert!(ctx.budget().spent() >= ctx.budget().limit() - 1_000_000);
    // A fresh instance budget renders a smaller collection fine.
    let small = text.replace("lists.range(1000)}", "lists.range(10)}");
    let g = compiled(&small);
    let ctx = EvalContext::new(instance());
    match g.render_resource("many", &ctx).unwrap() {
        RenderOutcome::Rendered(objs) => assert_eq!(objs.len(), 10),
        other => panic!("{other:?}"),
    }
    assert!(ctx.budget().spent() > 10 * 10_000);
}

#[test]
fn operator_chains_deeper_than_the_limit_are_refused_without_recursing() {
    let chain = vec!["1"; 3000].join(" + ");
    let text = rgd(&cm("a", &format!("x: \"${{string({chain})}}\"")));
    let message = on_small_stack(move || {
        let rgd = parse_rgd_yaml(&text).unwrap();
        compile(&rgd).map(|_| ()).unwrap_err().to_string()
    });
    assert!(
        message.contains("expression nests deeper than 64 levels"),
        "{message}"
    );
    // A long but reasonable chain is fine.
    let chain = vec!["schema.spec.replicas"; 60].join(" + ");
    compiled(&rgd(&cm("a", &format!("x: \"${{string({chain})}}\""))));
}

/// A context for one graph converts only what the graph reads of each
/// variable: every outcome is the same as with everything converted.
#[test]
fn a_context_for_its_graph_evaluates_as_one_with_everything() {
    let g = compiled(&rgd_with(
        "    status:\n      labels: ${size(a.metadata.labels)}\n      has: ${has(a.status.ready)}\n      missing: ${has(a.status.gone)}\n      opt: ${a.status.?count.orValue(-1)}\n      keys: ${a.metadata.labels.all(k, k.startsWith('l'))}\n      idx: ${a.data['x']}\n      whole: ${size(b)}\n      spec: ${schema.spec.name + '-' + schema.metadata.name}\n",
        &[
            cm("a", "x: ${schema.spec.name}"),
            format!(
                "{}    readyWhen:\n    - ${{b.?status.?phase.orValue('') == 'Done' && size(b.data) > 0}}\n",
                cm("b", "y: ${a.data.x}")
            ),
        ]
        .concat(),
    ));
    let a = json!({"metadata": {"name": "a", "labels": {"l1": "x", "l2": "y"}, "uid": "u"},
        "data": {"x": "app", "other": "z"}, "status": {"ready": false, "count": 3}});
    let b = json!({"metadata": {"name": "b"}, "data": {"y": "app"}, "status": {"phase": "Done"}});
    let mut inst = instance();
    inst["status"] = json!({"big": [1, 2, 3], "conditions": []});
    let everything = EvalContext::new(inst.clone())
        .with_observed("a", a.clone())
        .with_observed("b", b.clone());
    let pruned = EvalContext::new(inst)
        .for_graph(&g)
        .with_observed("a", a)
        .with_observed("b", b);
    assert_eq!(g.status(&pruned).unwrap(), g.status(&everything).unwrap());
    assert_eq!(
        g.status(&pruned).unwrap()["whole"],
        g.status(&everything).unwrap()["whole"]
    );
    for id in ["a", "b"] {
        assert_eq!(
            g.render_resource(id, &pruned).unwrap(),
            g.render_resource(id, &everything).unwrap()
        );
        assert_eq!(
            g.ready(id, &pruned).unwrap(),
            g.ready(id, &everything).unwrap()
        );
    }
    assert_eq!(g.ready("b", &pruned).unwrap(), Readiness::Ready);
}

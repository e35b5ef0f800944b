//! Hostile RGDs are refused quickly, with little memory and on a small stack,
//! by an error naming the limit they go over and where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kro_core::limits::{
    MAX_CUSTOM_TYPES, MAX_EXPRESSIONS, MAX_FOREACH_DIMENSIONS, MAX_RESOURCES, MAX_SCHEMA_DEPTH,
    MAX_TEMPLATE_DEPTH,
};
use kro_core::{Error, EvalContext, ResourceGraphDefinition};
use serde_json::{Map, Value, json};

/// Well below the 2 MiB async runtimes give their worker threads: compiling
/// must not recurse on anything the RGD makes deep.
const SMALL_STACK: usize = 256 * 1024;

/// Hostile inputs must be refused in well under this, even in debug builds.
const FAST: Duration = Duration::from_secs(2);

/// Runs `f` on a thread with a small stack and returns its result and time.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let start = Instant::now();
            let out = f();
            (out, start.elapsed())
        })
        .expect("spawn")
        .join()
        .expect("the compiler must not overflow its stack")
}

fn rgd(schema: Value, resources: Value) -> ResourceGraphDefinition {
    let mut schema_obj = json!({"apiVersion": "v1alpha1", "kind": "Hostile"});
    if let (Some(dst), Value::Object(src)) = (schema_obj.as_object_mut(), schema) {
        dst.extend(src);
    }
    serde_json::from_value(json!({
        "metadata": {"name": "hostile"},
        "spec": {"schema": schema_obj, "resources": resources}
    }))
    .unwrap()
}

/// Compiles on a small stack; the error message, and how long it took.
fn refused(rgd: ResourceGraphDefinition) -> (String, Duration) {
    let (result, took) = on_small_stack(move || {
        kro_core::compile(&rgd)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    (result.expect_err("must be refused"), took)
}

/// `T0: {next: T1}`, `T1: {next: T2}`, ..., the last `{next: string}`.
fn chain(n: usize) -> Value {
    let mut types = Map::new();
    for i in 0..n {
        let next = if i + 1 == n {
            "string".to_owned()
        } else {
            format!("T{}", i + 1)
        };
        types.insert(format!("T{i}"), json!({ "next": next }));
    }
    Value::Object(types)
}

#[test]
fn a_long_chain_of_custom_types_is_refused_by_their_number() {
    let (message, took) = refused(rgd(
        json!({"spec": {"root": "T0"}, "types": chain(1100)}),
        json!([]),
    ));
    assert_eq!(
        message,
        format!(
            "RGD \"hostile\": spec.schema.types: 1100 custom types, more than the {MAX_CUSTOM_TYPES} allowed (limit MAX_CUSTOM_TYPES)"
        )
    );
    assert!(took < FAST, "{took:?}");
}

#[test]
fn a_chain_of_custom_types_nesting_too_deep_names_where() {
    // Built dependencies first: T199 is 2 levels deep, T(199-k) is k+2, so
    // T168 is the first to nest 33 levels.
    let (message, took) = refused(rgd(
        json!({"spec": {"root": "T0"}, "types": chain(200)}),
        json!([]),
    ));
    assert_eq!(
        message,
        format!(
            "RGD \"hostile\": spec.schema.types.T168.next: custom type \"T169\" nests the schema deeper than {MAX_SCHEMA_DEPTH} levels of objects, lists and maps (limit MAX_SCHEMA_DEPTH)"
        )
    );
    assert!(took < FAST, "{took:?}");
}

#[test]
fn the_depth_counts_where_a_custom_type_is_used() {
    // 30 types fit on their own (T0 is 31 levels deep), but not two levels
    // down in the spec.
    let types = chain(30);
    let deep = rgd(
        json!({"spec": {"a": {"b": "T0"}}, "types": types.clone()}),
        json!([]),
    );
    let (message, _) = refused(deep);
    assert!(
        message.starts_with(
            "RGD \"hostile\": spec.schema.spec.a.b: custom type \"T0\" nests the schema deeper than 32 levels"
        ),
        "{message}"
    );
    let ok = rgd(json!({"spec": {"a": "T0"}, "types": types}), json!([]));
    kro_core::compile(&ok).unwrap();
}

#[test]
fn custom_types_that_double_at_each_level_are_refused_before_they_expand() {
    // Fully expanded, T0 would have 2^21 - 1 nodes.
    let mut types = Map::new();
    for i in 0..20 {
        let next = if i == 19 {
            "string".to_owned()
        } else {
            format!("T{}", i + 1)
        };
        types.insert(format!("T{i}"), json!({"a": next, "b": next}));
    }
    let (message, took) = refused(rgd(
        json!({"spec": {"root": "T0"}, "types": types}),
        json!([]),
    ));
    assert!(
        message.contains("would take the schema past 20000 nodes (limit MAX_SCHEMA_NODES)"),
        "{message}"
    );
    assert!(message.contains("spec.schema.types.T"), "{message}");
    assert!(took < FAST, "{took:?}");
}

#[test]
fn large_descriptions_cannot_be_multiplied_through_custom_types() {
    let description = "x".repeat(100 * 1024);
    let mut spec = Map::new();
    for i in 0..20 {
        spec.insert(format!("f{i}"), json!("Big"));
    }
    let types = json!({"Big": {"a": format!("string | description=\"{description}\"")}});
    let (message, took) = refused(rgd(json!({"spec": spec, "types": types}), json!([])));
    assert!(
        message.contains(
            "custom type \"Big\" would take the schema past 1572864 bytes of SimpleSchema (limit MAX_SCHEMA_TEXT_BYTES)"
        ),
        "{message}"
    );
    assert!(took < FAST, "{took:?}");
}

#[test]
fn nested_maps_of_fields_are_bounded_too() {
    let mut spec = json!("string");
    for _ in 0..20_000 {
        spec = Value::Object(Map::from_iter([("a".to_owned(), spec)]));
    }
    let mut deep = rgd(json!({}), json!([]));
    deep.spec.schema.spec = Some(spec);
    let (result, took) = on_small_stack(move || {
        let result = kro_core::compile(&deep)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Some(spec) = deep.spec.schema.spec.take() {
            drop_deep(spec);
        }
        result
    });
    let message = result.unwrap_err();
    let path = vec!["a"; MAX_SCHEMA_DEPTH].join(".");
    assert_eq!(
        message,
        format!(
            "RGD \"hostile\": spec.schema.spec.{path}: the schema nests deeper than {MAX_SCHEMA_DEPTH} levels of objects, lists and maps (limit MAX_SCHEMA_DEPTH)"
        )
    );
    assert!(took < FAST, "{took:?}");
}

#[test]
fn too_many_resources_foreach_dimensions_and_expressions() {
    let config = |i: usize| {
        json!({"id": format!("r{i}"), "template": {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("r{i}")}
        }})
    };
    let resources: Vec<Value> = (0..=MAX_RESOURCES).map(config).collect();
    let (message, _) = refused(rgd(json!({}), Value::Array(resources)));
    assert_eq!(
        message,
        format!(
            "RGD \"hostile\", field \"spec.resources\": 257 resources, more than the {MAX_RESOURCES} allowed (limit MAX_RESOURCES)"
        )
    );

    let mut r = config(0);
    r["forEach"] = (0..=MAX_FOREACH_DIMENSIONS)
        .map(|d| json!({ format!("d{d}"): "${schema.spec.items}" }))
        .collect();
    let (message, _) = refused(rgd(json!({}), json!([r])));
    assert_eq!(
        message,
        format!(
            "RGD \"hostile\", resource \"r0\", field \"forEach\": 17 forEach dimensions, more than the {MAX_FOREACH_DIMENSIONS} allowed (limit MAX_FOREACH_DIMENSIONS)"
        )
    );

    let mut r = config(0);
    r["template"]["data"] = json!({ "x": "${schema.spec.name}".repeat(MAX_EXPRESSIONS + 1) });
    let (message, took) = refused(rgd(json!({"spec": {"name": "string"}}), json!([r])));
    assert_eq!(
        message,
        format!(
            "RGD \"hostile\", resource \"r0\", field \"spec.resources[0].template\": more than {MAX_EXPRESSIONS} ${{...}} expressions in the RGD (limit MAX_EXPRESSIONS)"
        )
    );
    assert!(took < FAST, "{took:?}");
}

/// `leaf` under `depth` alternating maps (`{"k": ...}`) and lists, built
/// without the `json!` macro, which would serialize (and so recurse on) it.
fn nest(leaf: Value, depth: usize) -> Value {
    (0..depth).fold(leaf, |v, i| {
        if i % 2 == 0 {
            Value::Array(vec![v])
        } else {
            Value::Object(Map::from_iter([("k".to_owned(), v)]))
        }
    })
}

/// Takes a deep value apart without recursing, as dropping it would.
fn drop_deep(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(fields) => stack.extend(fields.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

#[test]
fn deep_templates_status_and_selectors_are_refused_without_recursing() {
    // Far deeper than the small stack could recurse through.
    let deep = || nest(json!("${schema.spec.name}"), 20_000);
    let base = || {
        rgd(
            json!({"spec": {"name": "string"}}),
            json!([{"id": "cm", "template": {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}
            }}]),
        )
    };

    let mut template = base();
    template.spec.resources[0].template.as_mut().unwrap()["data"] = deep();
    let mut status = base();
    status.spec.schema.status = Some(Value::Object(Map::from_iter([("s".to_owned(), deep())])));
    for (rgd, prefix) in [
        (
            template,
            "RGD \"hostile\", resource \"cm\", field \"data.k[0]",
        ),
        (status, "RGD \"hostile\", field \"spec.schema.status.s.k[0]"),
    ] {
        let (result, took) = on_small_stack(move || {
            let result = kro_core::compile(&rgd)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let mut rgd = rgd;
            for r in &mut rgd.spec.resources {
                if let Some(template) = r.template.take() {
                    drop_deep(template);
                }
            }
            if let Some(status) = rgd.spec.schema.status.take() {
                drop_deep(status);
            }
            result
        });
        let message = result.unwrap_err();
        assert!(message.starts_with(prefix), "{message}");
        assert!(
            message.ends_with(&format!(
                "\": more than {MAX_TEMPLATE_DEPTH} levels of nested maps and lists (limit MAX_TEMPLATE_DEPTH)"
            )),
            "{message}"
        );
        assert!(took < FAST, "{took:?}");
    }
}

#[test]
fn limit_errors_are_invalid_rgds() {
    let err = kro_core::compile(&rgd(
        json!({"spec": {"root": "T0"}, "types": chain(MAX_CUSTOM_TYPES + 1)}),
        json!([]),
    ))
    .unwrap_err();
    assert_eq!(err.reason(), "InvalidSchema");
    let Error::Schema { source, .. } = err else {
        panic!("{err}")
    };
    assert!(matches!(
        source.reason,
        kro_core::simpleschema::Reason::OverLimit {
            limit: kro_core::Limit::CustomTypes,
            ..
        }
    ));
}

#[test]
fn a_realistic_rgd_with_custom_types_compiles_and_renders() {
    let rgd = kro_core::parse_rgd_yaml(
        r#"
metadata: {name: webapp}
spec:
  schema:
    apiVersion: v1alpha1
    kind: WebApp
    spec:
      name: string | required=true
      image: Image
      ports: "[]Port"
      database: Database
      replicas: integer | default=2 minimum=1
    types:
      Image:
        repository: string | default=nginx
        tag: string | default=latest
      Port:
        name: string
        port: integer | minimum=1 maximum=65535
      Credentials:
        user: string | default=admin
        secretRef: string
      Database:
        host: string | default=db
        credentials: Credentials
        replicas: "map[string]Credentials"
    status:
      available: ${deployment.status.availableReplicas}
  resources:
  - id: deployment
    template:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: "${schema.spec.name}"}
      spec:
        replicas: ${schema.spec.replicas}
        template:
          spec:
            containers:
            - name: app
              image: ${schema.spec.image.repository + ":" + schema.spec.image.tag}
              env:
              - {name: DB_HOST, value: "${schema.spec.database.host}"}
              - {name: DB_USER, value: "${schema.spec.database.credentials.user}"}
"#,
    )
    .unwrap();
    // Parsing CEL takes more stack than the refusals above, so this runs
    // on an ordinary thread.
    let graph = kro_core::compile(&rgd).unwrap();
    let instance = graph.defaulted(&json!({"spec": {"name": "shop"}}));
    let outcome = graph
        .render_resource("deployment", &EvalContext::new(instance))
        .unwrap();
    let rendered = format!("{outcome:?}");
    assert!(rendered.contains("nginx:latest"), "{rendered}");
    assert!(rendered.contains("admin"), "{rendered}");
}

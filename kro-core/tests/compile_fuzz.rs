//! Fuzzing the compiler with hostile-ish RGDs: random nested schemas and
//! custom type graphs (cycles, fan-out, undeclared names), random templates
//! full of `${...}`, forEach dimensions and conditions, random depths. Every
//! case must compile or be refused without panicking, and quickly; what
//! compiles must render an instance without panicking.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kro_core::{EvalContext, ResourceGraphDefinition};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Each case, in a debug build on a loaded machine.
const PER_CASE: Duration = Duration::from_secs(5);

/// CEL sources: valid references of every type, calls, macros, `omit()`,
/// run-time errors, undeclared names and syntax errors.
fn expression() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("schema.spec.s".to_owned()),
        Just("schema.spec.n".to_owned()),
        Just("schema.spec.flag".to_owned()),
        Just("schema.spec.items".to_owned()),
        Just("schema.spec.t0".to_owned()),
        Just("schema.metadata.name".to_owned()),
        Just("string(schema.spec.n)".to_owned()),
        Just("schema.spec.items.map(v, v + '-')".to_owned()),
        Just("size(schema.spec.items) > 0".to_owned()),
        Just("schema.spec.?t0.orValue('none')".to_owned()),
        Just("has(schema.spec.s) ? schema.spec.s : 'x'".to_owned()),
        Just("[1, 2, 3]".to_owned()),
        Just("{'a': schema.spec.n}".to_owned()),
        Just("omit()".to_owned()),
        Just("1 / 0".to_owned()),
        Just("x".to_owned()),
        Just("each".to_owned()),
        Just("time.now()".to_owned()),
        Just("((((schema.spec.n))))".to_owned()),
        Just("schema.".to_owned()),
        Just(")(".to_owned()),
        Just(String::new()),
        (0usize..5).prop_map(|i| format!("r{i}.metadata.name")),
        (0usize..5).prop_map(|i| format!("r{i}")),
        (0usize..5).prop_map(|i| format!("r{i}.status.ready == true")),
        "[a-z.()' +]{0,12}",
    ]
}

/// Expressions that type-check as strings in any of the generated RGDs.
fn string_expression() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("schema.spec.s".to_owned()),
        Just("string(schema.spec.n)".to_owned()),
        Just("schema.metadata.name".to_owned()),
        Just("schema.spec.items.join('-')".to_owned()),
        Just("schema.spec.?t0.orValue('none')".to_owned()),
    ]
}

/// A template or status leaf. Unless `hostile`, only literals and string
/// expressions, so that most such RGDs compile and render.
fn leaf(hostile: bool) -> BoxedStrategy<Value> {
    if !hostile {
        return prop_oneof![
            string_expression().prop_map(|e| json!(format!("${{{e}}}"))),
            (string_expression(), string_expression())
                .prop_map(|(a, b)| json!(format!("a-${{{a}}}-${{{b}}}"))),
            "[a-z]{0,6}".prop_map(Value::String),
            any::<i64>().prop_map(|n| json!(n)),
        ]
        .boxed();
    }
    prop_oneof![
        expression().prop_map(|e| json!(format!("${{{e}}}"))),
        (expression(), expression()).prop_map(|(a, b)| json!(format!("a-${{{a}}}-${{{b}}}"))),
        Just(json!("${")),
        Just(json!("}${")),
        Just(json!("$${escaped}")),
        "[a-z]{0,6}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Value::Null),
    ]
    .boxed()
}

/// Random JSON of bounded size, with `${...}` at the leaves.
fn json_tree(hostile: bool) -> impl Strategy<Value = Value> {
    leaf(hostile).prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Wraps `v` in `depth` single-key maps: shallow, deep, or past the limits.
fn nested(v: Value, depth: usize) -> Value {
    (0..depth).fold(v, |v, _| {
        Value::Object(Map::from_iter([("n".to_owned(), v)]))
    })
}

fn depth() -> impl Strategy<Value = usize> {
    prop_oneof![24 => Just(0usize), 1 => 1usize..40, 1 => 120usize..200]
}

/// A SimpleSchema field type of custom type `T<from>` (of `n`), referring to
/// the types after it. When `hostile`, also to any type (closing cycles),
/// to the undeclared `T<n>`, and with malformed types and markers.
fn field_type(from: usize, n: usize, hostile: bool) -> BoxedStrategy<String> {
    let mut options: Vec<(u32, BoxedStrategy<String>)> = vec![
        (3, Just("string".to_owned()).boxed()),
        (1, Just("integer | default=3 minimum=0".to_owned()).boxed()),
        (1, Just("boolean | description=\"d\"".to_owned()).boxed()),
        (1, Just("object".to_owned()).boxed()),
        (1, Just("[]string | default=[\"a\"]".to_owned()).boxed()),
    ];
    let later = from + 1..n;
    if !later.is_empty() {
        let later = later.prop_map(|i| format!("T{i}")).boxed();
        let name = if hostile {
            let any = (0..n + 1).prop_map(|i| format!("T{i}"));
            prop_oneof![8 => later, 1 => any].boxed()
        } else {
            later
        };
        options.extend([
            (4, name.clone().boxed()),
            (2, name.clone().prop_map(|t| format!("[]{t}")).boxed()),
            (2, name.prop_map(|t| format!("map[string]{t}")).boxed()),
        ]);
    }
    if hostile {
        options.extend([
            (
                1,
                Just("string | required=true immutable=true".to_owned()).boxed(),
            ),
            (1, "[a-zT0-9|=\\[\\] ]{0,10}".boxed()),
        ]);
    }
    proptest::strategy::Union::new_weighted(options).boxed()
}

/// A map of fields, possibly nesting maps of fields.
fn fields(from: usize, n: usize, hostile: bool) -> impl Strategy<Value = Value> {
    let leaf = field_type(from, n, hostile).prop_map(Value::String);
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::btree_map("[a-z]{1,3}", inner, 1..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    })
    .prop_map(|v| match v {
        Value::Object(_) => v,
        other => json!({ "f": other }),
    })
}

/// Custom types `T0..Tn` with random fan-out between them.
fn types(hostile: bool) -> impl Strategy<Value = Value> {
    (1usize..12).prop_flat_map(move |n| {
        (0..n)
            .map(|i| fields(i, n, hostile))
            .collect::<Vec<_>>()
            .prop_map(|defs| {
                Value::Object(
                    defs.into_iter()
                        .enumerate()
                        .map(|(i, d)| (format!("T{i}"), d))
                        .collect(),
                )
            })
    })
}

/// A template whose envelope is mostly valid, with random data.
fn resource(i: usize, hostile: bool) -> impl Strategy<Value = Value> {
    let for_each = if hostile {
        prop::collection::vec(
            prop_oneof![
                Just(json!({"x": "${schema.spec.items}"})),
                Just(json!({"y": "${[1, 2]}"})),
                expression().prop_map(|e| json!({ "x": format!("${{{e}}}") })),
            ],
            0..3,
        )
        .boxed()
    } else {
        prop_oneof![
            Just(vec![]),
            Just(vec![json!({"x": "${schema.spec.items}"})]),
            Just(vec![
                json!({"x": "${schema.spec.items}"}),
                json!({"y": "${['p', 'q']}"})
            ]),
        ]
        .boxed()
    };
    let (include, ready) = if hostile {
        let conditions =
            || prop::collection::vec(expression().prop_map(|e| format!("${{{e}}}")), 0..2);
        (conditions().boxed(), conditions().boxed())
    } else {
        (
            prop_oneof![Just(vec![]), Just(vec!["${schema.spec.flag}".to_owned()])].boxed(),
            Just(vec![]).boxed(),
        )
    };
    (
        leaf(hostile),
        json_tree(hostile),
        depth(),
        for_each,
        include,
        ready,
    )
        .prop_map(move |(name, data, depth, for_each, include, ready)| {
            json!({
                "id": format!("r{i}"),
                "template": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name},
                    "data": nested(data, depth),
                },
                "forEach": for_each,
                "includeWhen": include,
                "readyWhen": ready,
            })
        })
}

fn rgd() -> impl Strategy<Value = Value> {
    // Half the cases keep to well-formed schemas and expressions, so that
    // they compile and rendering gets exercised too.
    any::<bool>()
        .prop_flat_map(|hostile| {
            let resources = (0usize..5)
                .prop_flat_map(move |n| (0..n).map(|i| resource(i, hostile)).collect::<Vec<_>>());
            (
                types(hostile),
                fields(0, 1, hostile),
                depth(),
                resources,
                json_tree(hostile),
                json_tree(true),
            )
        })
        .prop_map(|(types, extra, depth, resources, status, instance)| {
            let mut spec = json!({
                "s": "string | default=x",
                "n": "integer | default=1",
                "flag": "boolean | default=true",
                "items": "[]string | default=[\"a\",\"b\"]",
                "t0": "T0",
            });
            spec["extra"] = nested(extra, depth);
            let doc = json!({
                "metadata": {"name": "fuzz"},
                "spec": {
                    "schema": {
                        "apiVersion": "v1alpha1",
                        "kind": "Fuzz",
                        "spec": spec,
                        "types": types,
                        "status": {"out": status},
                    },
                    "resources": resources,
                },
            });
            json!({"rgd": doc, "instance": {"spec": instance}})
        })
}

fn exercise(rgd: &ResourceGraphDefinition, instance: &Value) {
    let graph = match kro_core::compile(rgd) {
        Ok(g) => g,
        Err(e) => {
            eprintln!(
                "STAT err {}",
                e.to_string().chars().take(150).collect::<String>()
            );
            return;
        }
    };
    eprintln!("STAT ok {}", graph.topological_order().len());
    let instance = graph.defaulted(instance);
    let ctx = EvalContext::new(instance).with_now(std::time::SystemTime::UNIX_EPOCH);
    let _ = graph.render_all(&ctx);
    let _ = graph.status(&ctx);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn hostile_rgds_never_panic_and_finish_quickly(case in rgd()) {
        let Ok(rgd) = serde_json::from_value::<ResourceGraphDefinition>(case["rgd"].clone()) else {
            eprintln!("STAT parse"); return Ok(());
        };
        let start = Instant::now();
        exercise(&rgd, &case["instance"]);
        let took = start.elapsed();
        prop_assert!(took < PER_CASE, "took {took:?}");
    }
}

/// The shape of hostile custom type graphs the random ones rarely reach:
/// many types each using every later one.
#[test]
fn dense_custom_type_graphs_are_refused_quickly() {
    for n in [8usize, 32, 256] {
        let mut types = Map::new();
        for i in 0..n {
            let fields: Map<String, Value> = (i + 1..n)
                .map(|j| (format!("f{j}"), json!(format!("[]T{j}"))))
                .chain([("leaf".to_owned(), json!("string"))])
                .collect();
            types.insert(format!("T{i}"), Value::Object(fields));
        }
        let doc = json!({
            "metadata": {"name": "dense"},
            "spec": {"schema": {
                "apiVersion": "v1alpha1", "kind": "Dense",
                "spec": {"root": "T0"}, "types": types
            }}
        });
        let rgd: ResourceGraphDefinition = serde_json::from_value(doc).unwrap();
        let start = Instant::now();
        let result = kro_core::compile(&rgd);
        assert!(start.elapsed() < PER_CASE, "{n}: {:?}", start.elapsed());
        if n > 16 {
            let err = result.err().unwrap().to_string();
            assert!(err.contains("(limit MAX_SCHEMA_NODES)"), "{err}");
        }
    }
}

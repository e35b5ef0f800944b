//! Property tests: whatever SimpleSchema text or shape is fed in, the parser
//! returns a schema or an error naming a path; it never panics, and what it
//! returns is a well-formed object schema.
#![allow(clippy::unwrap_used)]

use kro_core::simpleschema::{field_schema, parse_markers, to_openapi};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Pieces that exercise the type grammar, markers, quoting and brackets.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("string".to_owned()),
        Just("integer".to_owned()),
        Just("boolean".to_owned()),
        Just("float".to_owned()),
        Just("object".to_owned()),
        Just("[]".to_owned()),
        Just("map[string]".to_owned()),
        Just("map[".to_owned()),
        Just("]".to_owned()),
        Just("T".to_owned()),
        Just(" | ".to_owned()),
        Just("|".to_owned()),
        Just(" ".to_owned()),
        Just("=".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just(",".to_owned()),
        Just("required=true".to_owned()),
        Just("default=".to_owned()),
        Just("enum=".to_owned()),
        Just("pattern=".to_owned()),
        Just("minimum=".to_owned()),
        Just("maxLength=".to_owned()),
        Just("uniqueItems=true".to_owned()),
        Just("minItems=".to_owned()),
        Just("immutable=true".to_owned()),
        Just("validation=".to_owned()),
        Just("description=".to_owned()),
        "-?[0-9]{1,3}(\\.[0-9])?",
        "[a-zA-Z_]{1,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

fn field_text() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..12).prop_map(|parts| parts.concat())
}

/// Random nested SimpleSchema maps with odd leaves (numbers, nulls, lists).
fn node() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        field_text().prop_map(Value::String),
        Just(Value::Null),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(["string"])),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop::collection::btree_map("[a-zA-Z]{1,4}", inner, 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
    })
}

fn assert_object_schema(v: &Value) {
    assert_eq!(v["type"], "object", "{v}");
    if let Some(props) = v.get("properties") {
        assert!(props.is_object(), "{v}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn markers_never_panic(text in field_text()) {
        let _ = parse_markers(&text);
    }

    #[test]
    fn fields_never_panic(text in field_text()) {
        if let Ok((schema, _)) = field_schema(&text, None) {
            prop_assert!(schema.get("type").is_some(), "{schema}");
        }
    }

    #[test]
    fn specs_never_panic(spec in node(), types in node()) {
        match to_openapi(Some(&spec), Some(&types)) {
            Ok(schema) => assert_object_schema(&schema),
            Err(e) => prop_assert!(e.path.starts_with("spec.schema."), "{e}"),
        }
    }

    /// Custom types referring to each other at random: cycles are errors,
    /// everything else builds.
    #[test]
    fn custom_type_graphs(edges in prop::collection::vec((0usize..5, 0usize..5), 0..8)) {
        let mut types = Map::new();
        for i in 0..5 {
            let mut fields = Map::new();
            fields.insert("leaf".into(), json!("string"));
            for (n, (from, to)) in edges.iter().enumerate() {
                if *from == i {
                    fields.insert(format!("f{n}"), json!(format!("[]T{to}")));
                }
            }
            types.insert(format!("T{i}"), Value::Object(fields));
        }
        let spec = json!({"root": "T0"});
        let result = to_openapi(Some(&spec), Some(&Value::Object(types)));
        let has_cycle = {
            // Floyd-Warshall style reachability on five nodes.
            let mut reach = [[false; 5]; 5];
            for (a, b) in &edges { reach[*a][*b] = true; }
            for k in 0..5 { for i in 0..5 { for j in 0..5 {
                if reach[i][k] && reach[k][j] { reach[i][j] = true; }
            }}}
            (0..5).any(|i| reach[i][i])
        };
        prop_assert_eq!(result.is_err(), has_cycle, "{:?}", result);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any kind, version, group or plural: a CRD whose name is plural.group,
    /// or an error naming the RGD; never a panic.
    #[test]
    fn crd_names_never_panic(
        kind in "[A-Za-z0-9_-]{0,12}",
        version in "v?[0-9a-z]{0,8}",
        group in prop::option::of("[a-z.A-Z-]{0,12}"),
        plural in prop::option::of("[a-zA-Z-]{0,10}"),
    ) {
        let mut schema = json!({"apiVersion": version, "kind": kind});
        if let Some(g) = &group { schema["group"] = json!(g); }
        if let Some(p) = &plural { schema["plural"] = json!(p); }
        let rgd: kro_core::rgd::ResourceGraphDefinition = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"schema": schema}
        })).unwrap();
        match kro_core::crd::instance_crd(&rgd, &json!({"type": "object"}), &Value::Null) {
            Ok(crd) => {
                let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
                let want = format!(
                    "{}.{}",
                    crd["spec"]["names"]["plural"].as_str().unwrap(),
                    crd["spec"]["group"].as_str().unwrap()
                );
                prop_assert_eq!(name, want);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("RGD p:"), "{}", e),
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Validating arbitrary values against arbitrary generated schemas
    /// returns a verdict, never a panic.
    #[test]
    fn validate_value_never_panics(spec in node(), value in json_value()) {
        if let Ok(schema) = to_openapi(Some(&spec), None) {
            let _ = kro_core::simpleschema::validate_value(&value, &schema);
        }
    }
}

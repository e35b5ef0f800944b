use serde_json::{Value, json};

use super::*;

fn spec(v: Value) -> Result<Value, SchemaError> {
    to_openapi(Some(&v), None)
}

fn spec_types(v: Value, types: Value) -> Result<Value, SchemaError> {
    to_openapi(Some(&v), Some(&types))
}

fn field(text: &str) -> Value {
    field_schema(text, None).unwrap().0
}

fn err(v: Value) -> SchemaError {
    spec(v).unwrap_err()
}

#[test]
fn scalar_types() {
    assert_eq!(field("string"), json!({"type": "string"}));
    assert_eq!(field("integer"), json!({"type": "integer"}));
    assert_eq!(field("boolean"), json!({"type": "boolean"}));
    assert_eq!(field("float"), json!({"type": "number"}));
    assert_eq!(field("number"), json!({"type": "number"}));
}

#[test]
fn object_keeps_unknown_fields() {
    assert_eq!(
        field("object"),
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
    );
}

#[test]
fn arrays_and_maps_nest() {
    assert_eq!(
        field("[]string"),
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert_eq!(
        field("map[string]integer"),
        json!({"type": "object", "additionalProperties": {"type": "integer"}})
    );
    assert_eq!(
        field("map[string][]map[string]object"),
        json!({"type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "object", "additionalProperties": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}})
    );
}

#[test]
fn nested_objects_sorted_with_required() {
    let s = spec(json!({
        "b": "string | required=true",
        "a": {"y": "integer", "x": "string | required=true"}
    }))
    .unwrap();
    assert_eq!(
        s,
        json!({
            "type": "object",
            "required": ["b"],
            "properties": {
                "a": {"type": "object", "required": ["x"], "properties": {
                    "x": {"type": "string"}, "y": {"type": "integer"}
                }},
                "b": {"type": "string"}
            }
        })
    );
    let keys: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn required_false_and_go_bools() {
    let s = spec(json!({"a": "string | required=false", "b": "string | required=True", "c": "string | required=1"})).unwrap();
    assert_eq!(s["required"], json!(["b", "c"]));
    assert!(
        err(json!({"a": "string | required=yes"}))
            .to_string()
            .contains("expected true or false")
    );
}

#[test]
fn defaults_by_type() {
    assert_eq!(
        field("string | default=httpd:latest")["default"],
        json!("httpd:latest")
    );
    assert_eq!(field(r#"string | default="a b""#)["default"], json!("a b"));
    assert_eq!(field(r#"string | default="""#)["default"], json!(""));
    assert_eq!(field("integer | default=3")["default"], json!(3));
    assert_eq!(field("float | default=0.5")["default"], json!(0.5));
    assert_eq!(field("boolean | default=true")["default"], json!(true));
    assert_eq!(
        field(r#"[]integer | default=[80, 443]"#)["default"],
        json!([80, 443])
    );
    assert_eq!(
        field(r#"map[string]string | default={"a": "b"}"#)["default"],
        json!({"a": "b"})
    );
    assert_eq!(
        field(r#"object | default={"x": {"y": 1}}"#)["default"],
        json!({"x": {"y": 1}})
    );
}

#[test]
fn parent_gets_empty_default_only_without_required() {
    let s = spec(json!({"a": {"x": "integer | default=1"}, "b": {"x": "integer | default=1", "y": "string | required=true"}})).unwrap();
    assert_eq!(s["default"], json!({}));
    assert_eq!(s["properties"]["a"]["default"], json!({}));
    assert!(s["properties"]["b"].get("default").is_none());
}

#[test]
fn bad_defaults_are_rejected_with_path() {
    let e = err(json!({"db": {"port": "integer | default=abc"}}));
    assert_eq!(e.path, "spec.schema.spec.db.port");
    assert!(e.to_string().contains("not valid JSON"), "{e}");

    let e = err(json!({"port": "integer | default=1.5"}));
    assert!(matches!(e.reason, Reason::BadDefault { .. }), "{e}");

    let e = err(json!({"mode": r#"string | enum="a,b" default=c"#}));
    assert!(e.to_string().contains("not one of"), "{e}");

    let e = err(json!({"n": "integer | minimum=1 default=0"}));
    assert!(e.to_string().contains("minimum"), "{e}");

    let e = err(json!({"s": r#"string | pattern="^[a-z]+$" default=ABC"#}));
    assert!(e.to_string().contains("pattern"), "{e}");

    let e = err(json!({"s": r#"[]string | default=["a", "a"] uniqueItems=true"#}));
    assert!(e.to_string().contains("duplicate"), "{e}");

    let e = err(json!({"m": r#"map[string]integer | default={"a": "x"}"#}));
    assert!(e.to_string().contains("at a"), "{e}");
}

#[test]
fn description_and_numeric_bounds() {
    let f = field(r#"integer | description="How many" minimum=1 maximum=100"#);
    assert_eq!(
        f,
        json!({"type": "integer", "description": "How many", "minimum": 1, "maximum": 100})
    );
    assert_eq!(field("float | minimum=0.01")["minimum"], json!(0.01));
    let e = err(json!({"n": "integer | minimum=abc"}));
    assert!(e.to_string().contains("not a finite number"), "{e}");
    let e = err(json!({"n": "integer | minimum=NaN"}));
    assert!(e.to_string().contains("not a finite number"), "{e}");
    let e = err(json!({"n": "integer | minimum=5 maximum=1"}));
    assert!(e.to_string().contains("must not exceed"), "{e}");
}

#[test]
fn enum_marker() {
    assert_eq!(
        field(r#"string | enum="debug, info,warn""#)["enum"],
        json!(["debug", "info", "warn"])
    );
    assert_eq!(field("integer | enum=1,2,3")["enum"], json!([1, 2, 3]));
    assert!(
        err(json!({"e": "integer | enum=1,x"}))
            .to_string()
            .contains("not an integer")
    );
    assert!(
        err(json!({"e": "boolean | enum=true"}))
            .to_string()
            .contains("only valid on string or integer")
    );
    assert!(
        err(json!({"e": r#"string | enum="a,,b""#}))
            .to_string()
            .contains("empty enum")
    );
}

#[test]
fn string_markers() {
    assert_eq!(
        field(r#"string | minLength=2 maxLength=10 pattern="^\w+$""#),
        json!({"type": "string", "minLength": 2, "maxLength": 10, "pattern": r"^\w+$"})
    );
    for (text, want) in [
        ("integer | minLength=1", "only valid on string"),
        ("string | maxLength=-1", "must not be negative"),
        ("string | minLength=x", "not an integer"),
        ("string | minLength=5 maxLength=2", "must not exceed"),
        (r#"string | pattern="[""#, "invalid regex"),
        (r#"string | pattern="""#, "pattern is empty"),
        (r#"integer | pattern="a""#, "only valid on string"),
    ] {
        let e = err(json!({"f": text})).to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn array_markers() {
    assert_eq!(
        field("[]string | uniqueItems=true minItems=1 maxItems=5"),
        json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "minItems": 1, "maxItems": 5})
    );
    assert!(
        field("[]string | uniqueItems=false")
            .get("x-kubernetes-list-type")
            .is_none()
    );
    for (text, want) in [
        ("string | uniqueItems=true", "only valid on array"),
        ("[]object | uniqueItems=true", "scalar items"),
        ("string | minItems=1", "only valid on array"),
        ("[]string | maxItems=-3", "must not be negative"),
        ("[]string | minItems=3 maxItems=1", "must not exceed"),
    ] {
        let e = err(json!({"f": text})).to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn immutable_and_validation_rules() {
    let f = field(r#"string | immutable=true validation="self.size() > 2""#);
    assert_eq!(
        f["x-kubernetes-validations"],
        json!([
            {"rule": "self == oldSelf", "message": "field is immutable"},
            {"rule": "self.size() > 2", "message": "validation failed"}
        ])
    );
    assert!(
        field("string | immutable=false")
            .get("x-kubernetes-validations")
            .is_none()
    );
    assert!(
        err(json!({"f": r#"string | validation="  ""#}))
            .to_string()
            .contains("empty")
    );
    let e = err(json!({"f": r#"integer | validation="self >""#}));
    assert_eq!(e.path, "spec.schema.spec.f");
    assert!(e.to_string().contains("not a valid CEL rule"), "{e}");
    // Kubernetes rule idioms parse.
    for rule in [
        "self.?a.orValue(1) > 0",
        "self.all(x, x.matches('^a'))",
        "has(self.a) || !has(self.b)",
    ] {
        let text = format!("object | validation=\"{rule}\"");
        assert!(field_schema(&text, None).is_ok(), "{rule}");
    }
}

#[test]
fn unknown_types_and_markers_name_the_path() {
    let e = err(json!({"a": {"b": "strin"}}));
    assert_eq!(e.path, "spec.schema.spec.a.b");
    assert_eq!(e.reason, Reason::UnknownType("strin".into()));

    let e = err(json!({"a": "string | requird=true"}));
    assert_eq!(e.path, "spec.schema.spec.a");
    assert_eq!(e.reason, Reason::UnknownMarker("requird".into()));

    let e = err(json!({"a": "map[int]string"}));
    assert_eq!(e.reason, Reason::MapKey("int".into()));

    let e = err(json!({"a": "[]Missing"}));
    assert_eq!(e.reason, Reason::UnknownType("Missing".into()));

    let e = err(json!({"a": 3}));
    assert!(matches!(e.reason, Reason::BadNode(_)), "{e}");
    let e = err(json!({"a": null}));
    assert!(e.to_string().contains("needs a type"), "{e}");
    let e = err(json!({"": "string"}));
    assert!(matches!(e.reason, Reason::BadFieldName(..)), "{e}");
}

#[test]
fn openapi_shaped_field_gets_a_hint() {
    let e = err(json!({"awsTags": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "default": {"auto-delete": "no"}
    }}));
    assert_eq!(e.path, "spec.schema.spec.awsTags");
    let msg = e.to_string();
    assert!(msg.contains("nested OpenAPI schema"), "{msg}");
    assert!(msg.contains("map[string]string | default="), "{msg}");
    // A genuine struct whose fields are called `type` and `name` is fine.
    let ok = spec(json!({"config": {"type": "string", "name": "string | required=true"}})).unwrap();
    assert_eq!(
        ok["properties"]["config"]["properties"]["type"],
        json!({"type": "string"})
    );
}

#[test]
fn custom_types_struct_alias_and_required_alias() {
    let s = spec_types(
        json!({
            "appName": "RequiredString",
            "database": "DatabaseConfig",
            "endpoints": "[]ServiceEndpoint | minItems=1",
            "byName": "map[string]ServiceEndpoint"
        }),
        json!({
            "RequiredString": "string | required=true",
            "Port": "integer | default=8080 minimum=1 maximum=65535",
            "DatabaseConfig": {"host": "string | required=true", "port": "Port"},
            "ServiceEndpoint": {"name": "RequiredString", "url": "string"}
        }),
    )
    .unwrap();
    assert_eq!(s["required"], json!(["appName"]));
    assert_eq!(s["properties"]["appName"], json!({"type": "string"}));
    let db = &s["properties"]["database"];
    assert_eq!(db["required"], json!(["host"]));
    assert_eq!(
        db["properties"]["port"],
        json!({"type": "integer", "default": 8080, "minimum": 1, "maximum": 65535})
    );
    assert!(db.get("default").is_none());
    let endpoints = &s["properties"]["endpoints"];
    assert_eq!(endpoints["minItems"], json!(1));
    assert_eq!(endpoints["items"]["required"], json!(["name"]));
    assert_eq!(
        s["properties"]["byName"]["additionalProperties"]["required"],
        json!(["name"])
    );
}

#[test]
fn custom_type_markers_apply_on_top() {
    let s = spec_types(
        json!({"a": "Port | default=80 description=\"The port\""}),
        json!({"Port": "integer | minimum=1"}),
    )
    .unwrap();
    assert_eq!(
        s["properties"]["a"],
        json!({"type": "integer", "minimum": 1, "default": 80, "description": "The port"})
    );
    // The alias's own minimum still binds the field's default.
    let e = spec_types(
        json!({"a": "Port | default=0"}),
        json!({"Port": "integer | minimum=1"}),
    )
    .unwrap_err();
    assert_eq!(e.path, "spec.schema.spec.a");
}

#[test]
fn custom_types_recursive_order_independent() {
    let s = spec_types(
        json!({"a": "A"}),
        json!({"A": {"b": "[]B"}, "B": {"c": "map[string]C"}, "C": "string | default=x"}),
    )
    .unwrap();
    assert_eq!(
        s["properties"]["a"]["properties"]["b"]["items"]["properties"]["c"]["additionalProperties"],
        json!({"type": "string", "default": "x"})
    );
}

#[test]
fn custom_type_cycles_are_reported() {
    let e = spec_types(
        json!({"a": "A"}),
        json!({"A": {"b": "B"}, "B": {"c": "[]C"}, "C": {"a": "map[string]A"}}),
    )
    .unwrap_err();
    assert_eq!(e.path, "spec.schema.types.A");
    assert_eq!(e.reason, Reason::TypeCycle("A -> B -> C -> A".into()));
    let e = spec_types(json!({}), json!({"Self": {"next": "Self"}})).unwrap_err();
    assert_eq!(e.reason, Reason::TypeCycle("Self -> Self".into()));
}

#[test]
fn custom_type_errors() {
    let e = spec_types(json!({}), json!({"string": {"a": "integer"}})).unwrap_err();
    assert_eq!(e.reason, Reason::ReservedTypeName("string".into()));
    let e = spec_types(json!({}), json!({"T": {"a": "Nope"}})).unwrap_err();
    assert_eq!(e.path, "spec.schema.types.T.a");
    assert_eq!(e.reason, Reason::UnknownType("Nope".into()));
    let e = spec_types(json!({}), json!({"T": 5})).unwrap_err();
    assert_eq!(e.path, "spec.schema.types.T");
    let e = to_openapi(None, Some(&json!(["x"]))).unwrap_err();
    assert_eq!(e.path, "spec.schema.types");
}

#[test]
fn spec_must_be_a_map_and_may_be_absent() {
    assert_eq!(to_openapi(None, None).unwrap(), json!({"type": "object"}));
    let e = to_openapi(Some(&json!("string")), None).unwrap_err();
    assert_eq!(e.path, "spec.schema.spec");
}

#[test]
fn spec_schema_adds_validation_rules() {
    let rgd: crate::rgd::ResourceGraphDefinition = serde_json::from_value(json!({
        "metadata": {"name": "x"},
        "spec": {"schema": {
            "apiVersion": "v1alpha1", "kind": "X",
            "spec": {"min": "integer", "max": "integer"},
            "validation": [{"expression": "self.min <= self.max", "message": "min above max"}]
        }}
    }))
    .unwrap();
    let s = spec_schema(&rgd).unwrap();
    assert_eq!(
        s["x-kubernetes-validations"],
        json!([{"rule": "self.min <= self.max", "message": "min above max"}])
    );
    let mut bad = rgd.clone();
    bad.spec.schema.validation[0].expression = "self.min <=".into();
    let e = spec_schema(&bad).unwrap_err();
    assert_eq!(e.path, "spec.schema.validation[0].expression");
    assert!(matches!(e.reason, Reason::InvalidRule { .. }), "{e}");
}

#[test]
fn field_schema_reports_required() {
    let (schema, required) = field_schema("string | required=true", None).unwrap();
    assert_eq!(schema, json!({"type": "string"}));
    assert!(required);
}

#[test]
fn typos_of_builtins_are_unknown_types() {
    let e = err(json!({"a": "[string"}));
    assert_eq!(e.reason, Reason::UnknownType("[string".into()));
    // Any declared name works, even one that is not an identifier.
    let s = spec_types(json!({"a": "2nd-Type"}), json!({"2nd-Type": "integer"})).unwrap();
    assert_eq!(s["properties"]["a"], json!({"type": "integer"}));
}

#[test]
fn instances_validate_against_the_generated_schema() {
    let schema = spec_types(
        json!({"name": "string | required=true", "replicas": "integer | minimum=1", "db": "Db"}),
        json!({"Db": {"host": "string | required=true"}}),
    )
    .unwrap();
    assert!(
        validate_value(
            &json!({"name": "a", "replicas": 2, "db": {"host": "h"}}),
            &schema
        )
        .is_ok()
    );
    let e = validate_value(&json!({"name": "a", "replicas": 0}), &schema).unwrap_err();
    assert!(e.contains("at replicas") && e.contains("minimum"), "{e}");
    let e = validate_value(&json!({"name": "a", "db": {}}), &schema).unwrap_err();
    assert!(e.contains("at db") && e.contains("host"), "{e}");
    let e = validate_value(&json!({"replicas": 1}), &schema).unwrap_err();
    assert!(e.contains("missing required field \"name\""), "{e}");
}

#[test]
fn old_self_rules_inside_list_items_are_rejected() {
    let e = spec_types(
        json!({"routes": "[]Route"}),
        json!({"Route": {"id": "string | immutable=true", "url": "string"}}),
    )
    .unwrap_err();
    assert_eq!(e.path, "spec.schema.spec.routes");
    assert_eq!(e.reason, Reason::TransitionRuleInList("items.id".into()));
    let e = spec_types(
        json!({"tags": "[]Tag"}),
        json!({"Tag": "string | validation=\"self == oldSelf || self != ''\""}),
    )
    .unwrap_err();
    assert_eq!(e.reason, Reason::TransitionRuleInList("items".into()));
    // Fine on the list itself, in maps, and for rules that merely contain the word.
    assert!(field_schema("[]string | immutable=true", None).is_ok());
    assert!(
        spec_types(
            json!({"m": "map[string]Route"}),
            json!({"Route": {"id": "string | immutable=true"}})
        )
        .is_ok()
    );
    assert!(
        spec_types(
            json!({"l": "[]T"}),
            json!({"T": "string | validation=\"self != 'oldSelfish'\""})
        )
        .is_ok()
    );
}

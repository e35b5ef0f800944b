use serde_json::{Value, json};

use super::*;
use crate::rgd::ResourceGraphDefinition;

fn rgd(schema: Value) -> ResourceGraphDefinition {
    serde_json::from_value(json!({
        "metadata": {"name": "web-app", "uid": "0b5e-uid"},
        "spec": {"schema": schema}
    }))
    .unwrap()
}

fn base() -> Value {
    json!({"apiVersion": "v1alpha1", "kind": "Application"})
}

fn crd_for(schema: Value) -> Result<Value, CrdError> {
    instance_crd(&rgd(schema), &json!({"type": "object"}), &Value::Null)
}

#[test]
fn names_scope_and_version() {
    let crd = crd_for(base()).unwrap();
    assert_eq!(crd["metadata"]["name"], "applications.kro.run");
    assert_eq!(
        crd["spec"]["names"],
        json!({"kind": "Application", "listKind": "ApplicationList", "plural": "applications", "singular": "application"})
    );
    assert_eq!(crd["spec"]["group"], "kro.run");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let v = &crd["spec"]["versions"][0];
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(v["served"], true);
    assert_eq!(v["storage"], true);
    assert_eq!(v["subresources"], json!({"status": {}}));
}

#[test]
fn overrides_group_plural_short_names_categories_scope() {
    let mut s = base();
    s["group"] = json!("apps.example.com");
    s["plural"] = json!("apps");
    s["shortNames"] = json!(["app"]);
    s["categories"] = json!(["all", "platform"]);
    s["scope"] = json!("Cluster");
    let crd = crd_for(s).unwrap();
    assert_eq!(crd["metadata"]["name"], "apps.apps.example.com");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["app"]));
    assert_eq!(
        crd["spec"]["names"]["categories"],
        json!(["all", "platform"])
    );
    assert_eq!(crd["spec"]["scope"], "Cluster");
}

#[test]
fn labels_and_annotations() {
    let mut s = base();
    s["metadata"] =
        json!({"labels": {"team": "web", "kro.run/owned": "false"}, "annotations": {"note": "x"}});
    let crd = crd_for(s).unwrap();
    assert_eq!(
        crd["metadata"]["labels"],
        json!({
            "kro.run/owned": "true",
            "kro.run/kro-version": env!("CARGO_PKG_VERSION"),
            "kro.run/resource-graph-definition-id": "0b5e-uid",
            "kro.run/resource-graph-definition-name": "web-app",
            "team": "web"
        })
    );
    assert_eq!(crd["metadata"]["annotations"], json!({"note": "x"}));
    assert!(
        crd_for(base()).unwrap()["metadata"]
            .get("annotations")
            .is_none()
    );
}

#[test]
fn long_label_values_are_hashed() {
    let long = "x".repeat(70);
    let v = label_value(&long);
    assert!(v.starts_with("h-") && v.len() == 42, "{v}");
    assert_eq!(v, label_value(&long));
    assert_eq!(label_value("short"), "short");
}

#[test]
fn default_printer_columns_and_replacement() {
    let crd = crd_for(base()).unwrap();
    let cols = &crd["spec"]["versions"][0]["additionalPrinterColumns"];
    assert_eq!(cols, &default_printer_columns());
    let names: Vec<&str> = cols
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["State", "Ready", "Age"]);
    assert_eq!(
        cols[1]["jsonPath"],
        ".status.conditions[?(@.type==\"Ready\")].status"
    );

    // Custom columns merge into the defaults: a same-named one replaces the
    // default in place, the others follow (upstream's check-additional-printer-columns).
    let mut s = base();
    s["additionalPrinterColumns"] = json!([
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "State", "type": "string", "jsonPath": ".spec.name"},
        {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1, "description": "d"}
    ]);
    let cols = crd_for(s).unwrap()["spec"]["versions"][0]["additionalPrinterColumns"].clone();
    let defaults = default_printer_columns();
    assert_eq!(
        cols,
        json!([
            {"name": "State", "type": "string", "jsonPath": ".spec.name"},
            defaults[1].clone(),
            defaults[2].clone(),
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1, "description": "d"}
        ])
    );
}

#[test]
fn bad_printer_columns() {
    for (col, want) in [
        (
            json!({"name": "X", "type": "list", "jsonPath": ".a"}),
            "type must be",
        ),
        (
            json!({"name": "X", "type": "string", "jsonPath": "a"}),
            "must start with",
        ),
        (
            json!({"name": " ", "type": "string", "jsonPath": ".a"}),
            "name must not",
        ),
        (
            json!({"name": "X", "type": "string", "jsonPath": ".a", "priority": -1}),
            "negative",
        ),
    ] {
        let mut s = base();
        s["additionalPrinterColumns"] = json!([col]);
        let e = crd_for(s).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        assert!(e.contains("additionalPrinterColumns[0]"), "{e}");
    }
}

#[test]
fn invalid_names_are_rejected() {
    let cases = [
        (
            json!({"apiVersion": "v1alpha1", "kind": "application"}),
            "kind",
        ),
        (json!({"apiVersion": "v1alpha1", "kind": "App-X"}), "kind"),
        (json!({"apiVersion": "1", "kind": "App"}), "apiVersion"),
        (
            json!({"apiVersion": "v1gamma1", "kind": "App"}),
            "apiVersion",
        ),
        (json!({"apiVersion": "v1beta", "kind": "App"}), "apiVersion"),
        (
            json!({"apiVersion": "v1", "kind": "App", "group": "nodot"}),
            "group",
        ),
        (
            json!({"apiVersion": "v1", "kind": "App", "group": "Upper.io"}),
            "group",
        ),
        (
            json!({"apiVersion": "v1", "kind": "App", "plural": "Apps"}),
            "plural",
        ),
        (
            json!({"apiVersion": "v1", "kind": "App", "shortNames": ["a_b"]}),
            "shortNames[0]",
        ),
        (
            json!({"apiVersion": "v1", "kind": "App", "categories": ["-x"]}),
            "categories[0]",
        ),
    ];
    for (schema, want) in cases {
        let e = crd_for(schema.clone()).unwrap_err().to_string();
        assert!(e.contains(want), "{schema}: {e}");
        assert!(e.contains("RGD web-app"), "{e}");
    }
    for ok in ["v1", "v2beta3", "v10alpha12"] {
        assert!(
            crd_for(json!({"apiVersion": ok, "kind": "App"})).is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn schema_wraps_spec_and_status() {
    let spec = json!({"type": "object", "properties": {"name": {"type": "string"}}});
    let status = json!({"type": "object", "properties": {
        "availableReplicas": {"type": "integer"},
        "state": {"type": "integer"}
    }});
    let crd = instance_crd(&rgd(base()), &spec, &status).unwrap();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(root["type"], "object");
    assert_eq!(root["properties"]["apiVersion"], json!({"type": "string"}));
    assert_eq!(root["properties"]["kind"], json!({"type": "string"}));
    assert_eq!(root["properties"]["metadata"], json!({"type": "object"}));
    assert_eq!(root["properties"]["spec"], spec);
    let st = &root["properties"]["status"];
    assert_eq!(
        st["properties"]["availableReplicas"],
        json!({"type": "integer"})
    );
    // Reserved: kro writes a string state, whatever the RGD says.
    assert_eq!(st["properties"]["state"], json!({"type": "string"}));
    assert_eq!(st["properties"]["conditions"], conditions_schema());
    let cond = &st["properties"]["conditions"]["items"]["properties"];
    for f in ["type", "status", "reason", "message", "lastTransitionTime"] {
        assert_eq!(cond[f], json!({"type": "string"}), "{f}");
    }
    assert_eq!(cond["observedGeneration"], json!({"type": "integer"}));
}

#[test]
fn empty_status_still_has_state_and_conditions() {
    for status in [Value::Null, json!({}), json!({"type": "object"})] {
        let crd = instance_crd(&rgd(base()), &json!({"type": "object"}), &status).unwrap();
        let st = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
        let keys: Vec<&String> = st["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["conditions", "state"]);
    }
}

#[test]
fn non_object_schemas_are_rejected() {
    let e = instance_crd(&rgd(base()), &json!({"type": "string"}), &Value::Null).unwrap_err();
    assert!(matches!(
        e,
        CrdError::NotAnObjectSchema { part: "spec", .. }
    ));
    let e = instance_crd(&rgd(base()), &json!({"type": "object"}), &json!([1])).unwrap_err();
    assert!(matches!(
        e,
        CrdError::NotAnObjectSchema { part: "status", .. }
    ));
}

#[test]
fn placement_adds_per_cluster_status() {
    let r: ResourceGraphDefinition = serde_json::from_value(json!({
        "metadata": {"name": "web-app"},
        "spec": {"schema": base(), "placement": {"clusterSelector": {"matchLabels": {"env": "prod"}}}}
    }))
    .unwrap();
    let fields = json!({"type": "object", "properties": {"url": {"type": "string"}}});
    let crd = instance_crd(&r, &json!({"type": "object"}), &fields).unwrap();
    let st = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
    let clusters = &st["properties"][CLUSTERS_STATUS_FIELD];
    assert_eq!(clusters["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(
        clusters["items"]["properties"]["values"]["properties"]["url"],
        json!({"type": "string"})
    );
    // No labels uid when the RGD has none.
    assert!(crd["metadata"]["labels"].get(LABEL_RGD_ID).is_none());

    let clash = json!({"type": "object", "properties": {"clusters": {"type": "integer"}}});
    let e = instance_crd(&r, &json!({"type": "object"}), &clash).unwrap_err();
    assert!(matches!(e, CrdError::ReservedStatusField { .. }), "{e}");
    // Without placement the name is free.
    assert!(instance_crd(&rgd(base()), &json!({"type": "object"}), &clash).is_ok());
}

#[test]
fn inferred_status_schemas_are_made_structural() {
    let status = json!({"type": "object", "properties": {
        "pod": {"allOf": [{"$ref": "#/x"}], "default": {}, "description": "d"},
        "ports": {"items": {"type": "integer", "x-kubernetes-patch-strategy": "merge"}},
        "labels": {"additionalProperties": {"type": "string"}},
        "anything": {},
        "port": {"x-kubernetes-int-or-string": true},
        "list": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}
    }});
    let crd = instance_crd(&rgd(base()), &json!({"type": "object"}), &status).unwrap();
    let p = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(
        p["pod"],
        json!({"description": "d", "x-kubernetes-preserve-unknown-fields": true})
    );
    assert_eq!(
        p["ports"],
        json!({"items": {"type": "integer"}, "type": "array"})
    );
    assert_eq!(
        p["labels"],
        json!({"additionalProperties": {"type": "string"}, "type": "object"})
    );
    assert_eq!(
        p["anything"],
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
    assert_eq!(p["port"], json!({"x-kubernetes-int-or-string": true}));
    assert_eq!(
        p["list"],
        json!({"items": {"type": "string"}, "type": "array"})
    );
}

#[test]
fn invalid_crd_labels_and_annotations_are_rejected() {
    for (meta, want) in [
        (json!({"labels": {"bad key": "x"}}), "labels \"bad key\""),
        (json!({"labels": {"team": "-x"}}), "value"),
        (json!({"labels": {"Example.com/a": "x"}}), "prefix"),
        (json!({"labels": {"a": "x".repeat(64)}}), "value"),
        (
            json!({"annotations": {"/x": "anything goes"}}),
            "annotations",
        ),
    ] {
        let mut s = base();
        s["metadata"] = meta.clone();
        let e = crd_for(s).unwrap_err().to_string();
        assert!(e.contains(want), "{meta}: {e}");
    }
    let mut s = base();
    s["metadata"] = json!({"labels": {"example.com/team": "web_1.a", "empty": ""}, "annotations": {"note": "free text: ok"}});
    assert!(crd_for(s).is_ok());
}

#[test]
fn kro_hub_s_own_apis_and_kubernetes_groups_are_refused() {
    let refused = |schema: Value| match crd_for(schema) {
        Err(CrdError::ReservedApi { why, .. }) => why,
        other => panic!("expected a reserved-API error, got {other:?}"),
    };
    let rgd_kind =
        json!({"apiVersion": "v1alpha1", "kind": "ResourceGraphDefinition", "scope": "Cluster"});
    assert_eq!(
        refused(rgd_kind),
        "ResourceGraphDefinition is kro-hub's own API"
    );
    // The kind's plural is what names the CRD: a different kind with the
    // same plural would still replace the RGD CRD.
    let same_plural =
        json!({"apiVersion": "v1alpha1", "kind": "Graph", "plural": "resourcegraphdefinitions"});
    assert_eq!(
        refused(same_plural),
        "ResourceGraphDefinition is kro-hub's own API"
    );
    let hub = json!({"apiVersion": "v1alpha1", "kind": "Cluster", "group": "hub.kro.run"});
    assert_eq!(refused(hub), "the group is reserved for kro-hub's own APIs");
    let sub = json!({"apiVersion": "v1alpha1", "kind": "Thing", "group": "x.hub.kro.run"});
    assert_eq!(refused(sub), "the group is reserved for kro-hub's own APIs");
    let k8s = json!({"apiVersion": "v1", "kind": "Deployment", "group": "apps.k8s.io"});
    assert_eq!(
        refused(k8s),
        "the group is reserved for Kubernetes' own APIs"
    );
    let message = crd_for(json!({"apiVersion": "v1alpha1", "kind": "ResourceGraphDefinition"}))
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "RGD web-app: kind ResourceGraphDefinition in group kro.run cannot be served by an RGD: \
         ResourceGraphDefinition is kro-hub's own API"
    );
    // Other kinds in kro.run (upstream's default group) stay allowed.
    assert!(crd_for(base()).is_ok());
    assert!(
        crd_for(json!({"apiVersion": "v1", "kind": "Cluster", "group": "fleet.example.com"}))
            .is_ok()
    );
}

#[test]
fn print_column_markers_become_printer_columns_and_leave_the_schema() {
    let r: ResourceGraphDefinition = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "App", "spec": {
            "image": "string | default=\"nginx\" printColumn=\"IMAGE\"",
            "ingress": {"enabled": "boolean | default=false printColumn=\"ENABLED\""}
        }}}
    }))
    .unwrap();
    let graph = crate::compile(&r).unwrap();
    let version = &graph.crd()["spec"]["versions"][0];
    let columns = version["additionalPrinterColumns"].as_array().unwrap();
    let image = columns.iter().find(|c| c["name"] == "IMAGE").unwrap();
    assert_eq!(image["jsonPath"], ".spec.image");
    assert_eq!(image["type"], "string");
    let enabled = columns.iter().find(|c| c["name"] == "ENABLED").unwrap();
    assert_eq!(enabled["jsonPath"], ".spec.ingress.enabled");
    assert_eq!(enabled["type"], "boolean");
    assert!(
        columns.iter().any(|c| c["name"] == "State"),
        "defaults kept"
    );
    let schema = version["schema"].to_string();
    assert!(!schema.contains(PRINT_COLUMN_KEY), "{schema}");
}

#[test]
fn print_column_is_refused_where_no_column_can_point() {
    let compile = |spec: Value, types: Value| {
        let r: ResourceGraphDefinition = serde_json::from_value(json!({
            "metadata": {"name": "app"},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "App", "spec": spec, "types": types}}
        }))
        .unwrap();
        crate::compile(&r).map(|_| ()).unwrap_err().to_string()
    };
    let e = compile(
        json!({"items": "[]Item"}),
        json!({"Item": {"name": "string | printColumn=\"N\""}}),
    );
    assert!(
        e.contains("spec.schema.spec.items.[].name") && e.contains("not inside a list or a map"),
        "{e}"
    );
    let e = compile(json!({"f": "object | printColumn=\"F\""}), json!({}));
    assert!(
        e.contains("printColumn") && e.contains("only valid on"),
        "{e}"
    );
    let e = compile(json!({"f": "string | printColumn=\"\""}), json!({}));
    assert!(e.contains("non-empty title"), "{e}");
}

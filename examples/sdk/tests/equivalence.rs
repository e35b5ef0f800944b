//! The derive's RGDs against the hand-written ones: same CRD (descriptions
//! aside, which come from doc comments), same resources, same status.

#![allow(clippy::unwrap_used)]

use kro_sdk_examples::webapp::Application;
use kro_sdk_examples::wordpress::WordPress;
use serde_json::Value;

fn strip_descriptions(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("description");
            m.values_mut().for_each(strip_descriptions);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

fn crd(rgd: &kro_core::ResourceGraphDefinition) -> Value {
    let mut crd = kro_core::compile(rgd).unwrap().crd().clone();
    strip_descriptions(&mut crd);
    crd
}

fn assert_equivalent(derived: kro_core::ResourceGraphDefinition, yaml: &str) {
    let written = kro_core::parse_rgd_yaml(yaml).unwrap();
    assert_eq!(derived.name(), written.name());
    assert_eq!(crd(&derived), crd(&written));
    let json = |v: &kro_core::ResourceGraphDefinition| serde_json::to_value(v).unwrap();
    assert_eq!(
        json(&derived)["spec"]["resources"],
        json(&written)["spec"]["resources"]
    );
    assert_eq!(
        json(&derived)["spec"]["schema"]["status"],
        json(&written)["spec"]["schema"]["status"]
    );
}

#[test]
fn webapp_rgd_matches_the_hand_written_one() {
    assert_equivalent(Application::rgd(), include_str!("data/webapp-rgd.yaml"));
}

#[test]
fn webapp_yaml_is_the_hand_written_file_verbatim() {
    assert_eq!(
        Application::rgd_yaml(),
        include_str!("data/webapp-rgd.yaml")
    );
}

#[test]
fn webapp_yaml_is_the_json() {
    let from_yaml = kro_core::parse_rgd_yaml(Application::rgd_yaml()).unwrap();
    assert_eq!(from_yaml, Application::rgd());
}

#[test]
fn wordpress_rgd_is_equivalent_to_the_hand_written_one() {
    assert_equivalent(WordPress::rgd(), include_str!("data/wordpress-rgd.yaml"));
}

#[test]
fn inline_struct_fields_are_nested_objects() {
    let rgd = serde_json::to_value(WordPress::rgd()).unwrap();
    let schema = &rgd["spec"]["schema"];
    assert_eq!(
        schema["spec"]["ingress"],
        serde_json::json!({
            "enabled": "boolean | default=true description=\"Whether to create the Ingress.\"",
            "host": "string | default=\"wordpress.local\" description=\"Host name.\"",
            "className": "string | default=\"nginx\" description=\"Ingress class.\"",
        })
    );
    assert!(schema["types"].get("Ingress").is_none());
    assert!(schema["types"].get("Database").is_some());
}

//! `/openapi/v3`: the real server's documents for built-in kinds, documents built from
//! CRDs, and an index whose hashes change when a CRD changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::request;
use kro_sandbox::SandboxBuilder;
use serde_json::{Value, json};

fn get(addr: std::net::SocketAddr, path: &str) -> Value {
    let r = request(addr, "GET", path, &[], None);
    assert_eq!(r.code, 200, "{path}");
    r.json()
}

fn index_url(addr: std::net::SocketAddr, key: &str) -> String {
    get(addr, "/openapi/v3")["paths"][key]["serverRelativeURL"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn crd(max: i64) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "description": "A widget.",
                    "properties": {"spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "maximum": max, "description": "How big."}}}}}}}]}
    })
}

#[test]
fn openapi_v3_serves_builtin_and_crd_schemas() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new("openapi").simulator(false).start())
        .unwrap();
    let addr = sb.addr();

    // Built-in group versions: the real documents, named by their SHA-512.
    let apps = index_url(addr, "apis/apps/v1");
    let hash = apps.split("?hash=").nth(1).unwrap().to_owned();
    assert_eq!(hash.len(), 128);
    let doc = get(addr, &apps);
    let replicas = &doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
        ["replicas"];
    assert_eq!(replicas["type"], "integer");
    assert!(
        replicas["description"]
            .as_str()
            .unwrap()
            .contains("desired pods")
    );
    let core = get(addr, &index_url(addr, "api/v1"));
    assert!(
        core["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"]["properties"]["data"]
            .is_object()
    );
    // Group versions without a recorded document still list their kinds.
    let storage = get(addr, &index_url(addr, "apis/storage.k8s.io/v1"));
    assert!(
        storage["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("storageclasses"))
    );
    assert_eq!(
        request(addr, "GET", "/openapi/v3/apis/nope/v1", &[], None).code,
        404
    );

    // A CRD's group version appears with the CRD's schema as the server publishes it.
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let ct = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    let body = serde_json::to_vec(&crd(10)).unwrap();
    assert_eq!(request(addr, "POST", crds, &ct, Some(&body)).code, 201);
    let first = index_url(addr, "apis/example.com/v1");
    assert!(
        first.starts_with("/openapi/v3/apis/example.com/v1?hash="),
        "{first}"
    );
    let doc = get(addr, &first);
    let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(widget["description"], "A widget.");
    assert_eq!(
        widget["properties"]["spec"]["properties"]["size"]["maximum"],
        10
    );
    assert_eq!(
        widget["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(widget["properties"]["kind"]["type"], "string");
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        doc["components"]["schemas"]["com.example.v1.WidgetList"]["required"],
        json!(["items"])
    );
    assert!(
        doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object()
    );
    assert!(
        doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"]
            .is_object()
    );
    let item = &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"];
    assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
    let params: Vec<&str> = item["patch"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(params.contains(&"fieldValidation"), "{params:?}");
    assert!(
        doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status"]
            .is_object()
    );

    // Changing the CRD's schema changes the document's hash; deleting it removes the entry.
    let path = format!("{crds}/widgets.example.com");
    let patch =
        serde_json::to_vec(&json!({"spec": {"versions": crd(20)["spec"]["versions"]}})).unwrap();
    let merge = vec![(
        "Content-Type".to_owned(),
        "application/merge-patch+json".to_owned(),
    )];
    assert_eq!(
        request(addr, "PATCH", &path, &merge, Some(&patch)).code,
        200
    );
    let second = index_url(addr, "apis/example.com/v1");
    assert_ne!(first, second);
    assert_eq!(
        get(addr, &second)["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"]
            ["properties"]["size"]["maximum"],
        20
    );
    assert_eq!(
        index_url(addr, "apis/apps/v1"),
        apps,
        "built-in hashes are stable"
    );
    assert_eq!(request(addr, "DELETE", &path, &[], None).code, 200);
    rt.block_on(sb.stop());
}

#[test]
fn openapi_v2_is_converted_from_the_v3_documents() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new("openapi-v2").simulator(false).start())
        .unwrap();
    let addr = sb.addr();
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let ct = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    let body = serde_json::to_vec(&crd(10)).unwrap();
    assert_eq!(request(addr, "POST", crds, &ct, Some(&body)).code, 201);

    let doc = get(addr, "/openapi/v2");
    assert_eq!(doc["swagger"], "2.0");
    let defs = doc["definitions"].as_object().unwrap();
    let replicas = &defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"];
    assert_eq!(replicas["type"], "integer");
    assert_eq!(
        defs["io.k8s.api.apps.v1.Deployment"]["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        defs["com.example.v1.Widget"]["properties"]["spec"]["properties"]["size"]["description"],
        "How big."
    );
    // Every reference resolves, and none is left in the v3 form.
    let text = doc.to_string();
    assert!(!text.contains("#/components/schemas/"));
    for r in text.split("\"$ref\":\"#/definitions/").skip(1) {
        let name = r.split('"').next().unwrap();
        assert!(defs.contains_key(name), "{name} unresolved");
    }
    // Request bodies are `body` parameters, query parameters carry their type.
    let put = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["put"];
    let params = put["parameters"].as_array().unwrap();
    assert!(params.iter().any(|p| p["in"] == "body"
        && p["schema"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.Deployment"));
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "dryRun" && p["type"] == "string")
    );
    assert!(
        doc["paths"]
            .get("/apis/example.com/v1/namespaces/{namespace}/widgets/{name}")
            .is_some()
    );

    // The protobuf form alone is not offered.
    let pb = vec![(
        "Accept".to_owned(),
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf".to_owned(),
    )];
    assert_eq!(request(addr, "GET", "/openapi/v2", &pb, None).code, 406);
    drop(sb);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}

//! The workload simulator writes as kube-controller-manager's controllers do: status
//! through the status subresource (a new resourceVersion, a `managedFields` entry of
//! `kube-controller-manager` for `status`, a MODIFIED event), and the PVC protection
//! controller (`pkg/controller/volume/pvcprotection`) releasing a deleted claim only once
//! no pod uses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{Reply, request};
use kro_sandbox::SandboxBuilder;
use serde_json::{Value, json};

fn send(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Reply {
    request(
        addr,
        method,
        path,
        &[("Content-Type".into(), "application/json".into())],
        Some(&serde_json::to_vec(body).unwrap()),
    )
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], None)
}

/// Polls until `done` holds for the answer to GET `path`.
fn wait_for(addr: SocketAddr, path: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(addr, path);
        if done(&r) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_simulator_writes_like_the_controllers() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(
            SandboxBuilder::new("sim")
                .simulator_delay(Duration::from_millis(50))
                .start(),
        )
        .unwrap();
    let addr = sb.addr();

    // Status through the status subresource, as kube-controller-manager.
    let pvcs = "/api/v1/namespaces/default/persistentvolumeclaims";
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let created = send(addr, "POST", pvcs, &claim).json();
    assert_eq!(
        created["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    let bound = wait_for(addr, &format!("{pvcs}/data"), |r| {
        r.json()["status"]["phase"] == "Bound"
    })
    .json();
    assert_eq!(bound["status"]["phase"], "Bound");
    assert_ne!(
        bound["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    let entry = bound["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kube-controller-manager")
        .cloned()
        .expect("the controller's entry");
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["subresource"], "status");

    // A claim in use by a pod stays while the pod exists.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}});
    assert_eq!(
        send(addr, "POST", "/api/v1/namespaces/default/pods", &pod).code,
        201
    );
    let deleting = request(addr, "DELETE", &format!("{pvcs}/data"), &[], None);
    assert_eq!(deleting.code, 200);
    assert!(deleting.json()["metadata"]["deletionTimestamp"].is_string());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get(addr, &format!("{pvcs}/data")).code, 200);

    // Once the pod is gone, the controller releases the claim and it goes.
    assert_eq!(
        request(
            addr,
            "DELETE",
            "/api/v1/namespaces/default/pods/user",
            &[],
            None
        )
        .code,
        200
    );
    let gone = wait_for(addr, &format!("{pvcs}/data"), |r| r.code == 404);
    assert_eq!(gone.code, 404);
}

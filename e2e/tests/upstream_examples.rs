//! Upstream kro's Kubernetes-only example RGDs (`examples/kubernetes` in
//! kro's repository), kept with equivalent content in
//! `e2e/data/upstream/examples/`.
//!
//! Every one must pass `kro-hub validate` (the same engine the hub runs);
//! a representative few also run on the sandbox to ACTIVE with an instance.
//! Left out: `dogsvscats/webstack-rgd/web-stack-rgd.yaml`, whose graph
//! creates and reads `ElastiCacheServerless` and `RDSPostgres`, kinds made by
//! kro's AWS examples, so it is not Kubernetes-only.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kro_e2e::{Env, condition, fixture};
use serde_json::{Value, json};

fn example_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/upstream/examples")
        .join(file)
}

/// The saas-multi-tenant example places each tenant's resources in the
/// tenant's own namespace (`${schema.spec.tenantId}`), not the instance's:
/// kro-hub refuses that by default (the hub would act in any namespace for
/// anyone who may create an instance) and does it, as upstream does, on a
/// hub run with `--allow-instance-namespaces`.
fn trusting_hub() -> kro_hub::HubOptions {
    kro_hub::HubOptions {
        trust_instance_namespaces: true,
        ..kro_e2e::hub_options()
    }
}

/// `kro-hub validate` on one example: exactly one valid RGD, no errors.
fn validates(file: &str) {
    let report = kro_hub::offline::validate_file(&example_path(file));
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{file}: {errors:#?}");
    assert_eq!(report.valid.len(), 1, "{file}: {:?}", report.valid);
}

macro_rules! validate_tests {
    ($($(#[$attr:meta])* $name:ident => $file:literal,)*) => {$(
        $(#[$attr])*
        #[test]
        fn $name() {
            validates($file);
        }
    )*};
}

validate_tests! {
    validates_simple_deployment => "simple-deployment.yaml",
    validates_webapp => "webapp.yaml",
    validates_additional_printer_columns => "additional-printer-columns.yaml",
    validates_cel_functions => "cel-functions.yaml",
    validates_configmap_checksum_restart => "configmap-checksum-restart.yaml",
    validates_core_dns => "core-dns.yaml",
    validates_defaults => "defaults.yaml",
    validates_job_example => "job-example.yaml",
    validates_recursive_custom_types => "recursive-custom-types.yaml",
    validates_time_gates => "time-gates.yaml",
    validates_dogsvscats_result_app => "result-app.yaml",
    validates_dogsvscats_vote_app => "vote-app.yaml",
    validates_dogsvscats_worker_app => "worker-app.yaml",
    validates_dogsvscats_result_webstack => "result-webstack.yaml",
    validates_dogsvscats_vote_webstack => "vote-webstack.yaml",
    validates_dogsvscats_worker_webstack => "worker-webstack.yaml",
    validates_saas_tenant_environment => "tenant-environment.yaml",
    validates_saas_tenant_application => "tenant-application.yaml",
    validates_saas_tenant => "tenant.yaml",
}

fn example(file: &str) -> Vec<Value> {
    kro_core::parse_yaml_documents(&fixture(&format!("upstream/examples/{file}"))).unwrap()
}

/// Applies the example RGDs in order, each waited Active.
async fn install(env: &Env, files: &[&str]) {
    for file in files {
        for rgd in example(file) {
            env.apply(&rgd).await.unwrap();
            env.wait_rgd(rgd["metadata"]["name"].as_str().unwrap(), "Active")
                .await
                .unwrap();
        }
    }
}

/// Applies an instance and waits for it to be ACTIVE with Ready `True`.
async fn run_instance(env: &Env, instance: &Value) -> Value {
    env.apply(instance).await.unwrap();
    let live = env
        .wait_for(
            instance["apiVersion"].as_str().unwrap(),
            instance["kind"].as_str().unwrap(),
            instance["metadata"]["namespace"].as_str(),
            instance["metadata"]["name"].as_str().unwrap(),
            |i| i["status"]["state"] == "ACTIVE",
        )
        .await
        .unwrap();
    let ready = condition(&live, "Ready").expect("Ready condition");
    assert_eq!(ready["status"], "True", "{ready}");
    live
}

async fn child(env: &Env, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Value {
    env.wait_for(api_version, kind, ns, name, |_| true)
        .await
        .unwrap()
}

/// cel-functions: string, list, random, JSON, quantity and hash functions,
/// each checked against the value it must produce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_cel_functions() {
    let env = Env::start().await.unwrap();
    install(&env, &["cel-functions.yaml"]).await;
    let instance = run_instance(&env, &example("cel-functions-instance.yaml")[0]).await;
    let deployment = child(&env, "apps/v1", "Deployment", Some("default"), "app").await;
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "app-deployment");
    let env_vars: std::collections::BTreeMap<String, String> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |k: &str, v: &str| assert_eq!(env_vars[k], v, "{k}");
    expect("FULL_DNS_NAME", "a.b.c.d.example.com");
    expect("DNS_FIRST_PART", "a");
    expect("DNS_PARTIALS", "a");
    expect("LISTS_SUM", "600");
    expect("JSON_UNMARSHAL_EXAMPLE", "exampleJSONValue");
    expect("JSON_MARSHAL_EXAMPLE", r#"{"name":"app"}"#);
    expect("QUANTITY_COMPARISON", "small");
    // SHA-256 of "app", in hex.
    expect(
        "HASH_SHA256",
        "a172cedcae47474b615c54d510a5d84a8dea3032e958587430b413538be3f333",
    );
    let random = &env_vars["RANDOM_SEEDED_STRING"];
    assert_eq!(random.len(), 10, "{random}");
    assert!(instance["metadata"]["uid"].is_string());
    let service = child(&env, "v1", "Service", Some("default"), "app").await;
    for (k, v) in [
        ("app", "deployment"),
        ("dns", "a.b.c.d.example.com"),
        ("partials", "a.b.c"),
        ("first_part", "a"),
    ] {
        assert_eq!(service["metadata"]["labels"][k], v, "label {k}");
    }
}

/// simple-deployment: a Deployment gated on its available replicas, and a
/// Service included by default; status copies the Deployment's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_simple_deployment() {
    let env = Env::start().await.unwrap();
    install(&env, &["simple-deployment.yaml"]).await;
    let instance = run_instance(&env, &example("simple-deployment-instance.yaml")[0]).await;
    assert_eq!(instance["status"]["availableReplicas"], 1);
    assert!(instance["status"]["deploymentConditions"].is_array());
    let deployment = child(&env, "apps/v1", "Deployment", Some("default"), "test-app").await;
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    let service = child(&env, "v1", "Service", Some("default"), "test-app").await;
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(service["spec"]["selector"], json!({"app": "test-app"}));
}

/// configmap-checksum-restart: the ConfigMap takes the spec's map as its
/// data, and the pod template carries the SHA-256 of that data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_configmap_checksum_restart() {
    let env = Env::start().await.unwrap();
    install(&env, &["configmap-checksum-restart.yaml"]).await;
    run_instance(
        &env,
        &example("configmap-checksum-restart-instance.yaml")[0],
    )
    .await;
    let config = child(&env, "v1", "ConfigMap", Some("default"), "test-app-config").await;
    assert_eq!(
        config["data"],
        json!({"LOG_LEVEL": "info", "FEATURE_FLAG_X": "false"})
    );
    let deployment = child(&env, "apps/v1", "Deployment", Some("default"), "test-app").await;
    let checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(checksum.len(), 64, "{checksum}");
    assert!(
        checksum.chars().all(|c| c.is_ascii_hexdigit()),
        "{checksum}"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"],
        "test-app-config"
    );
}

/// recursive-custom-types: custom types nested through lists, rendered
/// with macros over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_recursive_custom_types() {
    let env = Env::start().await.unwrap();
    install(&env, &["recursive-custom-types.yaml"]).await;
    run_instance(&env, &example("recursive-custom-types-instance.yaml")[0]).await;
    let cm = child(&env, "v1", "ConfigMap", Some("default"), "my-company-cm").await;
    assert_eq!(cm["data"]["management"], "Mario (CEO), Luigi (CFO)\n");
    assert_eq!(
        cm["data"]["divisions"],
        "Engineering: Peach, Toad\nMarketing: Yoshi, Donkey Kong\n"
    );
}

/// defaults: no resources; the API server fills every default, including
/// inside an object given empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_defaults() {
    let env = Env::start().await.unwrap();
    install(&env, &["defaults.yaml"]).await;
    let instance = run_instance(&env, &example("defaults-instance.yaml")[0]).await;
    assert_eq!(
        instance["spec"],
        json!({"name": "app3", "required": 15, "elements": ["a", "b", "c", "d"],
            "element": "e", "enabled": true, "number": 100,
            "config": {"field2": 200, "field3": 2002}})
    );
}

/// saas-multi-tenant: a Tenant whose resources are instances of two other
/// RGDs; the environment creates the tenant's Namespace, quota and network
/// policy, the application its Deployment and Service inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_saas_multi_tenant() {
    let env = Env::start_with(trusting_hub()).await.unwrap();
    install(
        &env,
        &[
            "tenant-environment.yaml",
            "tenant-application.yaml",
            "tenant.yaml",
        ],
    )
    .await;
    let tenant = json!({"apiVersion": "kro.run/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "tenant-a", "namespace": "default"},
        "spec": {"tenantId": "tenant-a"}});
    run_instance(&env, &tenant).await;
    let ns = child(&env, "v1", "Namespace", None, "tenant-a").await;
    assert_eq!(ns["metadata"]["labels"]["name"], "tenant-a");
    let quota = child(
        &env,
        "v1",
        "ResourceQuota",
        Some("tenant-a"),
        "tenant-a-quota",
    )
    .await;
    assert_eq!(quota["spec"]["hard"]["limits.memory"], "2Gi");
    child(
        &env,
        "networking.k8s.io/v1",
        "NetworkPolicy",
        Some("tenant-a"),
        "tenant-a-isolation",
    )
    .await;
    let deployment = child(
        &env,
        "apps/v1",
        "Deployment",
        Some("tenant-a"),
        "tenant-a-deployment",
    )
    .await;
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    child(&env, "v1", "Service", Some("tenant-a"), "tenant-a-service").await;
    for (kind, name) in [
        ("TenantEnvironment", "tenant-a"),
        ("TenantApplication", "tenant-a"),
    ] {
        env.wait_for("kro.run/v1alpha1", kind, Some("default"), name, |n| {
            n["status"]["state"] == "ACTIVE"
        })
        .await
        .unwrap();
    }
}

/// core-dns: cluster-scoped RBAC, a ServiceAccount referenced by the
/// binding and the Deployment, and whole maps and lists from the spec's
/// defaults passed straight into labels, annotations and fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_core_dns() {
    let env = Env::start().await.unwrap();
    install(&env, &["core-dns.yaml"]).await;
    let instance = json!({"apiVersion": "kro.run/v1alpha1", "kind": "CoreDNSDeployment",
        "metadata": {"name": "dns", "namespace": "default"}, "spec": {}});
    run_instance(&env, &instance).await;
    let role = child(
        &env,
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        None,
        "mycoredns",
    )
    .await;
    assert_eq!(role["metadata"]["labels"]["k8s-app"], "kube-dns");
    assert_eq!(role["rules"].as_array().unwrap().len(), 3);
    let binding = child(
        &env,
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        None,
        "mycoredns",
    )
    .await;
    assert_eq!(binding["roleRef"]["name"], "mycoredns");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "mycoredns", "namespace": "default"}])
    );
    assert_eq!(
        binding["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "\"true\""
    );
    let deployment = child(&env, "apps/v1", "Deployment", Some("default"), "mycoredns").await;
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"],
        json!({"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"})
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "coredns/coredns:1.11.3");
    assert_eq!(container["resources"]["limits"]["memory"], "128Mi");
    let service = child(&env, "v1", "Service", Some("default"), "mycoredns").await;
    assert_eq!(service["spec"]["clusterIP"], "10.100.123.45");
    assert_eq!(service["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(
        service["metadata"]["annotations"]["prometheus.io/port"],
        "9153"
    );
    let sa = child(&env, "v1", "ServiceAccount", Some("default"), "mycoredns").await;
    assert_eq!(sa["secrets"], json!([{"name": "coredns-token-pvcnf"}]));
}

/// job-example: the Deployment waits for the Job's readyWhen
/// (`completionTime != null`), which the sandbox's simulator completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_job_example() {
    let env = Env::start().await.unwrap();
    install(&env, &["job-example.yaml"]).await;
    let instance = json!({"apiVersion": "kro.run/v1alpha1", "kind": "JobDeployment",
        "metadata": {"name": "example-job-deployment", "namespace": "default"},
        "spec": {"replicas": 2, "delayInSeconds": 20}});
    run_instance(&env, &instance).await;
    let job = child(
        &env,
        "batch/v1",
        "Job",
        Some("default"),
        "example-job-deployment-job",
    )
    .await;
    assert!(
        job["status"]["completionTime"].is_string(),
        "{}",
        job["status"]
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["sleep", "20"])
    );
    let deployment = child(
        &env,
        "apps/v1",
        "Deployment",
        Some("default"),
        "example-job-deployment",
    )
    .await;
    assert_eq!(deployment["spec"]["replicas"], 2);
}

/// time-gates: `time.now()` against the spec's timestamps and the
/// instance's creationTimestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_time_gates() {
    let env = Env::start().await.unwrap();
    install(&env, &["time-gates.yaml"]).await;
    let instance = json!({"apiVersion": "kro.run/v1alpha1", "kind": "TimeGates",
        "metadata": {"name": "time-gates-demo", "namespace": "default"},
        "spec": {"openAt": "2026-01-01T00:00:00Z", "expiresAt": "2030-01-01T00:00:00Z"}});
    let live = run_instance(&env, &instance).await;
    assert_eq!(live["status"]["inWindow"], "true");
    let gates = child(
        &env,
        "v1",
        "ConfigMap",
        Some("default"),
        "time-gates-demo-gates",
    )
    .await;
    assert_eq!(
        gates["data"],
        json!({"afterAMin": "false", "opened": "true", "olderThanFiveMins": "false",
            "expiringWithinAnHour": "false", "inWindow": "true"})
    );
}

/// webapp: with the ingress switched on, the Ingress routes to the Service
/// named after the Deployment; the status url, which needs a load balancer
/// the sandbox does not provide, stays absent rather than empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_webapp_with_ingress() {
    let env = Env::start().await.unwrap();
    install(&env, &["webapp.yaml"]).await;
    let instance = json!({"apiVersion": "kro.run/v1alpha1", "kind": "WebApp",
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {"name": "shop", "ingress": {"enabled": true}, "s3bucketName": "bucket"}});
    let live = run_instance(&env, &instance).await;
    assert_eq!(live["status"]["availableReplicas"], 1);
    assert!(live["status"].get("url").is_none(), "{}", live["status"]);
    let deployment = child(&env, "apps/v1", "Deployment", Some("default"), "shop").await;
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "S3_BUCKET_NAME", "value": "bucket"}])
    );
    let service = child(&env, "v1", "Service", Some("default"), "shop").await;
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 8080);
    let ingress = child(
        &env,
        "networking.k8s.io/v1",
        "Ingress",
        Some("default"),
        "shop",
    )
    .await;
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"],
        json!({"name": "shop", "port": {"number": 80}})
    );
}

/// dogsvscats vote-app: two replicas gate readiness, the Service is named
/// from the Deployment, and no Ingress is created while it is switched off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_dogsvscats_vote_app() {
    let env = Env::start().await.unwrap();
    install(&env, &["vote-app.yaml"]).await;
    let instance = json!({"apiVersion": "kro.run/v1alpha1", "kind": "VoteApp",
        "metadata": {"name": "vote", "namespace": "default"},
        "spec": {"name": "dvc", "redisEndpoint": "redis:6379"}});
    let live = run_instance(&env, &instance).await;
    assert_eq!(live["status"]["availableReplicas"], 2);
    assert_eq!(live["status"]["serviceName"], "dvc-vote-service");
    let service = child(&env, "v1", "Service", Some("default"), "dvc-vote-service").await;
    assert_eq!(service["spec"]["selector"], json!({"app": "dvc-vote"}));
    assert!(
        env.get(
            "networking.k8s.io/v1",
            "Ingress",
            Some("default"),
            "dvc-vote-ingress"
        )
        .await
        .unwrap()
        .is_none()
    );
}

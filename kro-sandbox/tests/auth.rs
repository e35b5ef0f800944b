//! Authentication, impersonation, RBAC and access reviews, checked against the real
//! server's answers: static user tokens, ServiceAccount tokens, `Impersonate-*` headers,
//! the 403 `Status` wording and the `authorization.k8s.io` reviews.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::http::{Reply, request};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kro_sandbox::{Sandbox, SandboxBuilder};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends a JSON request with a bearer token (none for the admin of an open sandbox) and
/// extra headers.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut headers: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(t) = token {
        headers.push(("Authorization".into(), format!("Bearer {t}")));
    }
    let bytes = body.map(|b| {
        headers.push(("Content-Type".into(), "application/json".into()));
        serde_json::to_vec(&b).unwrap()
    });
    request(addr, method, path, &headers, bytes.as_deref())
}

fn created(r: &Reply) {
    assert!(
        r.code == 201 || r.code == 200,
        "{} {}",
        r.code,
        String::from_utf8_lossy(&r.body)
    );
}

fn forbidden(r: &Reply) -> String {
    let s = r.json();
    assert_eq!(r.code, 403, "{s}");
    assert_eq!(s["reason"], "Forbidden", "{s}");
    s["message"].as_str().unwrap().to_owned()
}

/// Namespace `team-a` with ServiceAccount `deployer`, as the admin.
fn team(addr: SocketAddr) {
    created(&call(
        addr,
        "POST",
        "/api/v1/namespaces",
        None,
        &[],
        Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})),
    ));
    created(&call(
        addr,
        "POST",
        "/api/v1/namespaces/team-a/serviceaccounts",
        None,
        &[],
        Some(
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}}),
        ),
    ));
}

fn bind(addr: SocketAddr, name: &str, cluster_role: &str, subject: Value) {
    created(&call(
        addr,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
        None,
        &[],
        Some(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [subject]}),
        ),
    ));
}

#[test]
fn a_user_is_forbidden_until_bound_and_sees_discovery() {
    let rt = runtime();
    let sb = rt
        .block_on(
            SandboxBuilder::new("auth-user")
                .simulator(false)
                .user_token("alice-token", "alice", &["devs"])
                .start(),
        )
        .unwrap();
    let addr = sb.addr();
    team(addr);
    let alice = Some("alice-token");

    // Discovery and health work for any authenticated user.
    for path in [
        "/version",
        "/api",
        "/apis",
        "/api/v1",
        "/apis/apps/v1",
        "/healthz",
    ] {
        assert_eq!(
            call(addr, "GET", path, alice, &[], None).code,
            200,
            "{path}"
        );
    }

    let list = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[],
        None,
    );
    assert_eq!(
        forbidden(&list),
        "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"team-a\""
    );
    assert_eq!(list.json()["details"], json!({"kind": "configmaps"}));
    let get = call(
        addr,
        "GET",
        "/apis/apps/v1/namespaces/team-a/deployments/web",
        alice,
        &[],
        None,
    );
    assert_eq!(
        forbidden(&get),
        "deployments.apps \"web\" is forbidden: User \"alice\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"team-a\""
    );
    assert_eq!(
        get.json()["details"],
        json!({"name": "web", "group": "apps", "kind": "deployments"})
    );
    let status = call(
        addr,
        "GET",
        "/apis/apps/v1/namespaces/team-a/deployments/web/status",
        alice,
        &[],
        None,
    );
    assert_eq!(
        forbidden(&status),
        "deployments.apps \"web\" is forbidden: User \"alice\" cannot get resource \"deployments/status\" in API group \"apps\" in the namespace \"team-a\""
    );
    let cluster = call(addr, "GET", "/api/v1/namespaces", alice, &[], None);
    assert_eq!(
        forbidden(&cluster),
        "namespaces is forbidden: User \"alice\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    let path = call(addr, "GET", "/metrics", alice, &[], None);
    assert_eq!(
        forbidden(&path),
        "forbidden: User \"alice\" cannot get path \"/metrics\""
    );
    assert_eq!(path.json()["details"], json!({}));
    let watch = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps?watch=true",
        alice,
        &[],
        None,
    );
    assert!(forbidden(&watch).contains("cannot watch resource \"configmaps\""));

    // A binding to a missing role is reported in the denial.
    created(&call(
        addr,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
        None,
        &[],
        Some(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "dangling"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "nope"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}]}),
        ),
    ));
    let again = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[],
        None,
    );
    assert_eq!(
        forbidden(&again),
        "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"team-a\": RBAC: role.rbac.authorization.k8s.io \"nope\" not found"
    );

    // A Role with resource names and a binding to the user's group.
    created(&call(
        addr,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles",
        None,
        &[],
        Some(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                      {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["update"], "resourceNames": ["settings"]}]}),
        ),
    ));
    created(&call(
        addr,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
        None,
        &[],
        Some(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "devs-read"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}]}),
        ),
    ));
    let ok = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[],
        None,
    );
    assert_eq!(ok.code, 200, "{}", ok.json());
    let create = call(
        addr,
        "POST",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[],
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}})),
    );
    assert!(forbidden(&create).contains("cannot create resource \"configmaps\""));
    // Other namespaces stay closed.
    let other = call(
        addr,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        alice,
        &[],
        None,
    );
    forbidden(&other);

    // A wrong token is a 401.
    let wrong = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        Some("nope"),
        &[],
        None,
    );
    assert_eq!(wrong.code, 401);
    drop(sb);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}

#[tokio::test]
async fn a_service_account_token_works_through_kube_client() {
    let sb = SandboxBuilder::new("auth-sa")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let addr = sb.addr();
    tokio::task::spawn_blocking(move || team(addr))
        .await
        .unwrap();
    let client = sb
        .service_account_client("team-a", "deployer")
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "team-a");
    let err = deployments.get("web").await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a Status, got {err:?}");
    };
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:team-a:deployer\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"team-a\""
    );

    // A RoleBinding to `edit` for the account (namespace defaulted from the binding).
    tokio::task::spawn_blocking(move || {
        bind(
            addr,
            "deployer-edit",
            "edit",
            json!({"kind": "ServiceAccount", "name": "deployer"}),
        );
    })
    .await
    .unwrap();
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    deployments.get_status("web").await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert!(cms.list(&Default::default()).await.is_err());

    // Discovery works for the account.
    client.apiserver_version().await.unwrap();
    kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();

    // A token of an account that does not exist does not authenticate.
    let ghost = sb.service_account_client("team-a", "ghost").await.unwrap();
    let err = Api::<ConfigMap>::namespaced(ghost, "team-a")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 401));
}

#[test]
fn impersonation_is_checked_like_the_server() {
    let rt = runtime();
    let sb: Sandbox = rt
        .block_on(
            SandboxBuilder::new("auth-imp")
                .simulator(false)
                .user_token("alice-token", "alice", &[])
                .start(),
        )
        .unwrap();
    let addr = sb.addr();
    team(addr);
    let sa = "system:serviceaccount:team-a:deployer";

    // The admin may impersonate anyone; the request then runs as the account.
    let as_sa = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        None,
        &[("Impersonate-User", sa)],
        None,
    );
    assert_eq!(
        forbidden(&as_sa),
        "configmaps is forbidden: User \"system:serviceaccount:team-a:deployer\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"team-a\""
    );
    let who = call(
        addr,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        None,
        &[("Impersonate-User", sa), ("Impersonate-Extra-Scopes", "a")],
        Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
    );
    assert_eq!(who.code, 201, "{}", who.json());
    assert_eq!(
        who.json()["status"]["userInfo"],
        json!({"username": sa, "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"],
            "extra": {"scopes": ["a"]}})
    );
    let grouped = call(
        addr,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        None,
        &[("Impersonate-User", "bob"), ("Impersonate-Group", "devs")],
        Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
    );
    assert_eq!(
        grouped.json()["status"]["userInfo"],
        json!({"username": "bob", "groups": ["devs", "system:authenticated"]})
    );

    // Alice may not.
    let alice = Some("alice-token");
    let user = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[("Impersonate-User", "bob")],
        None,
    );
    assert_eq!(
        forbidden(&user),
        "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    assert_eq!(
        user.json()["details"],
        json!({"name": "bob", "kind": "users"})
    );
    let account = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[("Impersonate-User", sa)],
        None,
    );
    assert_eq!(
        forbidden(&account),
        "serviceaccounts \"deployer\" is forbidden: User \"alice\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\""
    );
    let uid = call(
        addr,
        "GET",
        "/version",
        None,
        &[("Impersonate-Uid", "1234")],
        None,
    );
    assert_eq!(uid.code, 500);
    assert_eq!(
        String::from_utf8_lossy(&uid.body).trim(),
        "Internal Server Error: \"/version\": requested [{UID  1234  authentication.k8s.io/v1  }] without impersonating a user"
    );

    // `edit` in team-a lets alice impersonate the namespace's service accounts only.
    bind(
        addr,
        "alice-edit",
        "edit",
        json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}),
    );
    bind(
        addr,
        "deployer-view",
        "view",
        json!({"kind": "ServiceAccount", "name": "deployer", "namespace": "team-a"}),
    );
    let ok = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[("Impersonate-User", sa)],
        None,
    );
    assert_eq!(ok.code, 200, "{}", ok.json());
    let group = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[("Impersonate-User", sa), ("Impersonate-Group", "admins")],
        None,
    );
    assert_eq!(
        forbidden(&group),
        "groups \"admins\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
    );
    let extra = call(
        addr,
        "GET",
        "/api/v1/namespaces/team-a/configmaps",
        alice,
        &[("Impersonate-User", sa), ("Impersonate-Extra-Scopes", "x")],
        None,
    );
    assert_eq!(
        forbidden(&extra),
        "userextras.authentication.k8s.io \"x\" is forbidden: User \"alice\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
    drop(sb);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}

#[test]
fn access_reviews_answer_in_rbac_words() {
    let rt = runtime();
    let sb = rt
        .block_on(
            SandboxBuilder::new("auth-sar")
                .simulator(false)
                .user_token("alice-token", "alice", &[])
                .start(),
        )
        .unwrap();
    let addr = sb.addr();
    team(addr);
    bind(
        addr,
        "deployer-edit",
        "edit",
        json!({"kind": "ServiceAccount", "name": "deployer"}),
    );
    let sar = |spec: Value| {
        call(
            addr,
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            None,
            &[],
            Some(
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}),
            ),
        )
    };
    let attrs = json!({"namespace": "team-a", "verb": "create", "group": "apps", "resource": "deployments"});
    let allowed = sar(json!({"user": "system:serviceaccount:team-a:deployer",
        "groups": ["system:serviceaccounts"], "resourceAttributes": attrs}));
    assert_eq!(allowed.code, 201);
    let body = allowed.json();
    assert_eq!(
        body["status"],
        json!({"allowed": true,
            "reason": "RBAC: allowed by RoleBinding \"deployer-edit/team-a\" of ClusterRole \"edit\" to ServiceAccount \"deployer/team-a\""})
    );
    assert_eq!(body["spec"]["resourceAttributes"], attrs);
    assert_eq!(body["metadata"], json!({"creationTimestamp": null}));
    let denied = sar(json!({"user": "alice", "resourceAttributes": attrs}));
    assert_eq!(denied.json()["status"], json!({"allowed": false}));
    let masters =
        sar(json!({"user": "root", "groups": ["system:masters"], "resourceAttributes": attrs}));
    assert_eq!(masters.json()["status"], json!({"allowed": true}));
    let discovery = sar(json!({"groups": ["system:authenticated"],
        "nonResourceAttributes": {"path": "/apis/apps", "verb": "get"}}));
    assert_eq!(
        discovery.json()["status"],
        json!({"allowed": true,
            "reason": "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\""})
    );

    let empty = sar(json!({}));
    assert_eq!(empty.code, 422);
    assert_eq!(
        empty.json()["message"],
        ".authorization.k8s.io \"\" is invalid: [spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: \"\": at least one of user or group must be specified]"
    );

    // Local reviews must stay in their namespace.
    let local = call(
        addr,
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/team-a/localsubjectaccessreviews",
        None,
        &[],
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "spec": {"user": "alice", "resourceAttributes": {"namespace": "team-b", "verb": "get", "resource": "pods"}}}),
        ),
    );
    assert_eq!(local.code, 422);
    assert_eq!(
        local.json()["message"],
        ".authorization.k8s.io \"\" is invalid: spec.resourceAttributes.namespace: Invalid value: \"team-b\": must match metadata.namespace"
    );
    let local_meta = call(
        addr,
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/team-a/localsubjectaccessreviews",
        None,
        &[],
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": "team-b"},
            "spec": {"user": "alice", "resourceAttributes": {"namespace": "team-b", "verb": "get", "resource": "pods"}}}),
        ),
    );
    assert_eq!(local_meta.code, 400);

    // Self reviews answer for the caller; any authenticated user may ask.
    let alice = Some("alice-token");
    let ssar = call(
        addr,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        alice,
        &[],
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "team-a", "verb": "list", "resource": "pods"}}}),
        ),
    );
    assert_eq!(ssar.code, 201, "{}", ssar.json());
    assert_eq!(ssar.json()["status"], json!({"allowed": false}));
    let rules = call(
        addr,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        alice,
        &[],
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": "team-a"}}),
        ),
    );
    assert_eq!(rules.code, 201, "{}", rules.json());
    let status = &rules.json()["status"];
    assert!(
        status["resourceRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"]
                == json!(["selfsubjectaccessreviews", "selfsubjectrulesreviews"]))
    );
    assert!(
        status["nonResourceRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["nonResourceURLs"]
                .as_array()
                .unwrap()
                .contains(&json!("/version")))
    );
    // Alice may not ask about others.
    let other = call(
        addr,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        alice,
        &[],
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "bob", "nonResourceAttributes": {"path": "/", "verb": "get"}}}),
        ),
    );
    assert_eq!(
        forbidden(&other),
        "subjectaccessreviews.authorization.k8s.io is forbidden: User \"alice\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"
    );
    // Reviews are create-only and served in discovery like the real server.
    let get = call(
        addr,
        "GET",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        None,
        &[],
        None,
    );
    assert_eq!(get.code, 405);
    let disc = call(
        addr,
        "GET",
        "/apis/authorization.k8s.io/v1",
        None,
        &[],
        None,
    )
    .json();
    assert_eq!(
        disc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "subjectaccessreviews")
            .cloned()
            .unwrap(),
        json!({"name": "subjectaccessreviews", "singularName": "subjectaccessreview",
            "namespaced": false, "kind": "SubjectAccessReview", "verbs": ["create"]})
    );
    // The aggregated default roles carry their rules.
    let admin = call(
        addr,
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
        None,
        &[],
        None,
    )
    .json();
    assert!(admin["rules"].as_array().unwrap().len() > 10);
    drop(sb);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}

//! `kro-hub demo`: the kro walk-through on a sandbox hub cluster, then the
//! same hub fanning instances out to three member clusters, narrated step
//! by step. Nothing to install: the API servers, the hub and the workload
//! simulator all run in this process, and one kubeconfig per cluster is
//! written out so `kubectl` can look at the same clusters.
//!
//! On a terminal, a table of members and instances by cluster stays below
//! the narration and is redrawn as the hub changes them (from the live
//! view's reflectors); elsewhere the narration is plain lines. With
//! `serve`, the live web page runs too, and everything stays up until
//! Ctrl-C. Every run ends with a summary of the steps.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

use crate::metrics::Metrics;
use crate::ui::terminal::Screen;

const RGD: &str = include_str!("../../examples/webapp/rgd.yaml");
const APP1: &str = include_str!("../../examples/webapp/app1.yaml");
const APP2: &str = include_str!("../../examples/webapp/app2.yaml");
const APP2_UPDATE: &str = include_str!("../../examples/webapp/app2-update.yaml");
const GLOBAL_RGD: &str = include_str!("../../examples/multicluster/rgd.yaml");
const SHOP: &str = include_str!("../../examples/multicluster/shop.yaml");
const BLOG: &str = include_str!("../../examples/multicluster/blog.yaml");
const SHOP_UPDATE: &str = include_str!("../../examples/multicluster/shop-update.yaml");

/// The demo's members: name and labels (environment and region).
const MEMBERS: [(&str, &str, &str); 3] = [
    ("eu-1", "prod", "eu"),
    ("us-1", "prod", "us"),
    ("dev-1", "dev", "eu"),
];

/// Errors of the demo, each saying which step failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The sandbox could not start.
    #[error("starting the sandbox cluster: {0}")]
    Sandbox(#[from] kro_sandbox::SandboxError),
    /// Ctrl-C stopped the tour.
    #[error("interrupted")]
    Interrupted,
    /// The live view could not be served.
    #[error(transparent)]
    Ui(#[from] crate::ui::UiError),
    /// A step failed.
    #[error("{step}: {message}")]
    Step {
        /// The step.
        step: String,
        /// What went wrong.
        message: String,
    },
}

fn step_err(step: &str) -> impl Fn(String) -> DemoError + '_ {
    move |message| DemoError::Step {
        step: step.to_owned(),
        message,
    }
}

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where to write `hub.kubeconfig` and `<member>.kubeconfig`.
    pub dir: PathBuf,
    /// Serve the live view on `ui_addr` and keep the clusters and hub
    /// running after the tour, until Ctrl-C. Without it the demo runs
    /// once and exits.
    pub serve: bool,
    /// Where the live view is served with `serve`.
    pub ui_addr: SocketAddr,
}

/// The default address of the demo's live view.
pub const DEFAULT_UI_ADDR: &str = "127.0.0.1:8081";

/// The narration: lines above the live table, and the steps for the
/// summary.
#[derive(Debug)]
struct Story {
    screen: Screen,
    steps: Mutex<Vec<Step>>,
}

#[derive(Debug)]
struct Step {
    title: String,
    started: Instant,
    took: Option<Duration>,
}

impl Story {
    fn say(&self, line: &str) {
        self.screen.say(line);
    }

    /// Starts the next step: the previous one succeeded.
    fn step(&self, title: &str) {
        if let Ok(mut steps) = self.steps.lock() {
            if let Some(last) = steps.last_mut() {
                last.took.get_or_insert(last.started.elapsed());
            }
            steps.push(Step {
                title: title.to_owned(),
                started: Instant::now(),
                took: None,
            });
        }
        self.say(&format!("\n{title}"));
    }

    /// Ends the last step's clock, however the tour ended.
    fn end(&self) {
        if let Ok(mut steps) = self.steps.lock()
            && let Some(last) = steps.last_mut()
        {
            last.took.get_or_insert(last.started.elapsed());
        }
    }

    /// One line per step, the last one marked by how the tour ended.
    fn summary(&self, outcome: &Result<(), DemoError>) -> String {
        let Ok(steps) = self.steps.lock() else {
            return String::new();
        };
        let mut out = String::from("\nsummary:\n");
        let count = steps.len();
        for (i, step) in steps.iter().enumerate() {
            let took = step.took.unwrap_or_else(|| step.started.elapsed());
            let mark = match outcome {
                Err(DemoError::Interrupted) if i + 1 == count => "STOPPED",
                Err(_) if i + 1 == count => "FAILED",
                _ => "ok",
            };
            out.push_str(&format!(
                "  {mark:7} {:5.1}s  {}\n",
                took.as_secs_f64(),
                step.title
            ));
        }
        match outcome {
            Ok(()) => out.push_str(&format!("all {count} steps passed\n")),
            Err(DemoError::Interrupted) => out.push_str("interrupted by Ctrl-C\n"),
            Err(e) => out.push_str(&format!("failed: {e}\n")),
        }
        out
    }
}

/// Keeps the terminal's live table in step with the hub: members, then
/// instances by cluster, redrawn after each burst of changes.
fn redraw(live: crate::ui::Live, screen: Screen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = live.changes();
        loop {
            let snapshot = live.snapshot();
            let mut text = String::new();
            if !snapshot.members.is_empty() {
                text.push_str(&crate::view::members_table(&snapshot.members));
                text.push('\n');
            }
            if !snapshot.rows.is_empty() {
                text.push_str(&crate::view::table(&snapshot.rows));
            }
            let framed: String = text.lines().map(|l| format!("   | {l}\n")).collect();
            screen.show(&framed);
            if changes.changed().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            changes.borrow_and_update();
        }
    })
}

/// Runs the tour, prints its summary, and tears everything down; with
/// `serve`, keeps everything up until Ctrl-C first.
pub async fn run(options: DemoOptions) -> Result<(), DemoError> {
    let story = Story {
        screen: Screen::stdout(),
        steps: Mutex::default(),
    };
    story.say("kro-hub demo: the kro walk-through on an in-process Kubernetes API server");
    let sandbox = kro_sandbox::SandboxBuilder::new("hub")
        .simulator_delay(Duration::from_secs(1))
        .start()
        .await?;
    std::fs::create_dir_all(&options.dir)
        .map_err(|e| step_err("creating the output folder")(e.to_string()))?;
    let kubeconfig = options.dir.join("hub.kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig)?;
    story.say(&format!(
        "  cluster 'hub' serving at {} (kubeconfig: {})",
        sandbox.url(),
        kubeconfig.display()
    ));
    let client = sandbox.client().await?;
    apply(
        &client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
    )
    .await
    .map_err(step_err("creating namespace default"))?;

    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = sandbox.config().await?;
    // Probing members every second (not every 30) lets a member that
    // goes down or comes back show within the story's pace.
    let hub_options = crate::HubOptions {
        member_probe_interval: Duration::from_secs(1),
        ..crate::HubOptions::default()
    };
    let hub = tokio::spawn(crate::run_hub(
        config,
        hub_options,
        metrics.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    wait("the hub to install its CRDs", || async {
        Ok(metrics.is_ready().then_some(()))
    })
    .await?;
    story.say("  kro-hub is running");

    // The terminal table and the web page read the same reflectors.
    let live = crate::ui::Live::start(client.clone());
    let table = redraw(live.clone(), story.screen.clone());
    let (ui_stop, ui_stopped) = tokio::sync::oneshot::channel::<()>();
    let ui = if options.serve {
        let listener = tokio::net::TcpListener::bind(options.ui_addr)
            .await
            .map_err(|source| crate::ui::UiError::Serve {
                addr: options.ui_addr.to_string(),
                source,
            })?;
        story.say(&format!("  live view: http://{}/", options.ui_addr));
        Some(tokio::spawn(crate::ui::serve_on(
            listener,
            live.clone(),
            async move {
                let _ = ui_stopped.await;
            },
        )))
    } else {
        None
    };

    let mut members = Vec::new();
    let outcome = tokio::select! {
        outcome = tour(&client, &options, &story, &mut members) => outcome,
        _ = tokio::signal::ctrl_c() => Err(DemoError::Interrupted),
    };
    story.end();
    if outcome.is_ok() && options.serve {
        story.say(&format!(
            "\nEverything stays up. Try:\n  open http://{}/\n  KUBECONFIG={} kubectl get clusters,globalapplications -A\n  KUBECONFIG={} kro-hub status --watch\n  KUBECONFIG={} kubectl get deployments -n web\nPress Ctrl-C to stop.",
            options.ui_addr,
            kubeconfig.display(),
            kubeconfig.display(),
            options.dir.join("eu-1.kubeconfig").display()
        ));
        let _ = tokio::signal::ctrl_c().await;
    }
    // The table stays as last drawn; what follows prints below it.
    table.abort();
    story.screen.release();
    let _ = ui_stop.send(());
    if let Some(ui) = ui {
        let _ = tokio::time::timeout(Duration::from_secs(5), ui).await;
    }
    drop(live);
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), hub).await;
    for member in members {
        member.stop().await;
    }
    sandbox.stop().await;
    story.say(&story.summary(&outcome));
    outcome
}

/// The story: kro on one cluster, then many.
async fn tour(
    client: &Client,
    options: &DemoOptions,
    story: &Story,
    members: &mut Vec<kro_sandbox::Sandbox>,
) -> Result<(), DemoError> {
    story.step("1. kubectl apply -f examples/webapp/rgd.yaml");
    apply_all(client, RGD).await?;
    let rgd = wait_for(
        client,
        "kro.run/v1alpha1",
        "ResourceGraphDefinition",
        None,
        "web-app",
        |r| r["status"]["state"] == "Active",
    )
    .await?;
    story.say(&format!(
        "   RGD web-app is {} with order {}; CRD applications.kro.run serves kind Application",
        rgd["status"]["state"].as_str().unwrap_or("?"),
        rgd["status"]["topologicalOrder"]
    ));

    story.step("2. kubectl apply -f examples/webapp/app1.yaml -f examples/webapp/app2.yaml");
    apply_all(client, APP1).await?;
    apply_all(client, APP2).await?;
    for (app, replicas) in [("web-app-1", 3), ("web-app-2", 1)] {
        let inst = wait_for(
            client,
            "kro.run/v1alpha1",
            "Application",
            Some("default"),
            app,
            |a| a["status"]["state"] == "ACTIVE" && a["status"]["availableReplicas"] == replicas,
        )
        .await?;
        let svc = get(
            client,
            "v1",
            "Service",
            Some("default"),
            &format!("{app}-service"),
        )
        .await?;
        story.say(&format!(
            "   {app}: state {}, availableReplicas {}, Deployment {app} + Service {}-service ({})",
            inst["status"]["state"].as_str().unwrap_or("?"),
            inst["status"]["availableReplicas"],
            app,
            svc.as_ref()
                .and_then(|s| s["spec"]["type"].as_str())
                .unwrap_or("?")
        ));
    }

    story.step("3. kubectl apply -f examples/webapp/app2-update.yaml  (replicas 6, NodePort)");
    apply_all(client, APP2_UPDATE).await?;
    wait_for(
        client,
        "apps/v1",
        "Deployment",
        Some("default"),
        "web-app-2",
        |d| d["spec"]["replicas"] == 6,
    )
    .await?;
    wait_for(
        client,
        "v1",
        "Service",
        Some("default"),
        "web-app-2-service",
        |s| s["spec"]["type"] == "NodePort",
    )
    .await?;
    story.say("   web-app-2 scaled to 6 replicas, its Service is now NodePort");

    story.step("4. kubectl delete application web-app-1");
    delete(client, "kro.run/v1alpha1", "Application", "web-app-1").await?;
    wait("web-app-1 and its resources to be deleted", || async {
        let d = get(
            client,
            "apps/v1",
            "Deployment",
            Some("default"),
            "web-app-1",
        )
        .await?;
        let s = get(
            client,
            "v1",
            "Service",
            Some("default"),
            "web-app-1-service",
        )
        .await?;
        Ok((d.is_none() && s.is_none()).then_some(()))
    })
    .await?;
    story.say("   Service and Deployment of web-app-1 deleted (reverse order), instance gone");

    many_clusters(client, options, story, members).await
}

/// The second part of the tour: members, placement, per-cluster values, a
/// member going down and coming back, and a deletion that cleans every
/// member. The member sandboxes go into `members`, for the caller to stop
/// however the tour ends.
async fn many_clusters(
    client: &Client,
    options: &DemoOptions,
    story: &Story,
    members: &mut Vec<kro_sandbox::Sandbox>,
) -> Result<(), DemoError> {
    story.step(
        "5. kro-hub cluster add  (three member clusters, each with its own API server and token)",
    );
    for (name, env, region) in MEMBERS {
        let member = kro_sandbox::SandboxBuilder::new(name)
            .token(&format!("demo-token-{name}"))
            .simulator_delay(Duration::from_millis(500))
            .start()
            .await?;
        let file = options.dir.join(format!("{name}.kubeconfig"));
        member.write_kubeconfig(&file)?;
        let labels = [format!("env={env}"), format!("region={region}")];
        crate::members::cli::add(
            client,
            &crate::members::cli::AddRequest {
                name,
                kubeconfig: &file,
                context: None,
                labels: &labels,
                namespace: "kro-system",
            },
        )
        .await
        .map_err(|e| step_err("registering a member")(e.to_string()))?;
        members.push(member);
    }
    for (name, _, _) in MEMBERS {
        wait_for(client, "hub.kro.run/v1alpha1", "Cluster", None, name, |c| {
            crate::conditions::read(c.get("status"))
                .iter()
                .any(|r| r.type_ == "Ready" && r.is_true())
        })
        .await?;
    }
    let table = crate::members::cli::list(client)
        .await
        .map_err(|e| step_err("listing members")(e.to_string()))?;
    story.screen.print_table(&table);

    story.step("6. kubectl apply -f examples/multicluster/  (placed on env=prod: eu-1 and us-1)");
    apply(
        client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
    )
    .await
    .map_err(step_err("creating namespace web"))?;
    apply_all(client, GLOBAL_RGD).await?;
    wait_for(
        client,
        "kro.run/v1alpha1",
        "ResourceGraphDefinition",
        None,
        "global-web-app",
        |r| r["status"]["state"] == "Active",
    )
    .await?;
    apply_all(client, SHOP).await?;
    apply_all(client, BLOG).await?;
    for (app, replicas) in [("shop", 4), ("blog", 2)] {
        wait_for(
            client,
            "kro.run/v1alpha1",
            "GlobalApplication",
            Some("web"),
            app,
            |a| a["status"]["state"] == "ACTIVE" && a["status"]["availableReplicas"] == replicas,
        )
        .await?;
    }
    show_table(client, story).await?;
    let eu = &members[0];
    let eu_client = eu.client().await?;
    let site = get(&eu_client, "v1", "ConfigMap", Some("web"), "shop-site").await?;
    story.say(&format!(
        "   on eu-1, ConfigMap shop-site says region {}; shop's availableReplicas is the sum over members",
        site.as_ref()
            .map_or(Value::Null, |s| s["data"]["region"].clone())
    ));

    story.step(
        "7. kubectl apply -f examples/multicluster/shop-update.yaml  (new image, wave by wave: eu, then the rest)",
    );
    apply_all(client, SHOP_UPDATE).await?;
    let us_client = members[1].client().await?;
    let image_on = |c: Option<Value>| {
        c.and_then(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .map(str::to_owned)
        })
    };
    wait("eu-1 to get the new image", || async {
        let eu = image_on(get(&eu_client, "apps/v1", "Deployment", Some("web"), "shop").await?);
        let us = image_on(get(&us_client, "apps/v1", "Deployment", Some("web"), "shop").await?);
        Ok((eu.as_deref() == Some("httpd:2.4")).then_some(us))
    })
    .await
    .map(|us| {
        story.say(&format!(
            "   wave eu: eu-1 runs httpd:2.4; us-1 still runs {} until eu has been Ready 3s",
            us.unwrap_or_else(|| "its old image".to_owned())
        ));
    })?;
    show_table(client, story).await?;
    let shop = wait_for(
        client,
        "kro.run/v1alpha1",
        "GlobalApplication",
        Some("web"),
        "shop",
        |a| {
            a["status"]["rollout"]["state"] == "Complete" && a["status"]["rollout"]["revision"] == 2
        },
    )
    .await?;
    story.say(&format!(
        "   wave rest: us-1 runs {}; revision 2 is Ready on every cluster",
        image_on(get(&us_client, "apps/v1", "Deployment", Some("web"), "shop").await?)
            .unwrap_or_default()
    ));
    let waves: Vec<String> = shop["status"]["rollout"]["waves"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| {
                    format!(
                        "{} {}",
                        w["name"].as_str().unwrap_or(""),
                        w["state"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    story.say(&format!("   status.rollout.waves: {}", waves.join(", ")));

    story.step("8. member us-1 goes down: only its entry turns Unreachable, eu-1 stays Ready");
    members[1].faults().refuse_connections(true);
    wait_for(
        client,
        "kro.run/v1alpha1",
        "GlobalApplication",
        Some("web"),
        "shop",
        |a| {
            a["status"]["clusters"].as_array().is_some_and(|es| {
                es.iter()
                    .any(|e| e["name"] == "us-1" && e["state"] == "Unreachable")
            })
        },
    )
    .await?;
    show_table(client, story).await?;

    story.step("9. us-1 comes back: its copies converge with no action");
    members[1].faults().refuse_connections(false);
    wait_for(
        client,
        "kro.run/v1alpha1",
        "GlobalApplication",
        Some("web"),
        "shop",
        |a| a["status"]["state"] == "ACTIVE",
    )
    .await?;
    show_table(client, story).await?;

    story.step(
        "10. kubectl delete globalapplication blog -n web  (its copies go from every member)",
    );
    delete_in(
        client,
        "kro.run/v1alpha1",
        "GlobalApplication",
        "web",
        "blog",
    )
    .await?;
    wait("blog to be gone from every member", || async {
        for member in &members[..2] {
            let c = member.client().await?;
            if get(&c, "apps/v1", "Deployment", Some("web"), "blog")
                .await?
                .is_some()
            {
                return Ok(None);
            }
        }
        let gone = get(
            client,
            "kro.run/v1alpha1",
            "GlobalApplication",
            Some("web"),
            "blog",
        )
        .await?
        .is_none();
        Ok(gone.then_some(()))
    })
    .await?;
    story
        .say("   blog's Service, Deployment and ConfigMap deleted on eu-1 and us-1, instance gone");
    Ok(())
}

/// Prints `kro-hub status`'s table of instances by cluster, when no live
/// table shows it already.
async fn show_table(client: &Client, story: &Story) -> Result<(), DemoError> {
    if story.screen.is_terminal() {
        return Ok(());
    }
    let rows = crate::view::rows(client, Some("web"))
        .await
        .map_err(|e| step_err("reading instances")(e.to_string()))?;
    story.screen.print_table(&crate::view::table(&rows));
    Ok(())
}

async fn wait<T, F, Fut>(what: &str, mut probe: F) -> Result<T, DemoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, DemoError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(step_err(what)("timed out after 60s".to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for(
    client: &Client,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value, DemoError> {
    wait(&format!("waiting for {kind} {name}"), || async {
        Ok(get(client, api_version, kind, ns, name)
            .await?
            .filter(|v| check(v)))
    })
    .await
}

async fn api(
    client: &Client,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
) -> Result<Api<DynamicObject>, String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, caps): (ApiResource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| e.to_string())?;
    Ok(match (caps.scope, ns) {
        (kube::discovery::Scope::Namespaced, ns) => {
            Api::namespaced_with(client.clone(), ns.unwrap_or("default"), &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    })
}

async fn get(
    client: &Client,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
) -> Result<Option<Value>, DemoError> {
    let step = format!("reading {kind} {name}");
    let api = api(client, api_version, kind, ns)
        .await
        .map_err(step_err(&step))?;
    let obj = api
        .get_opt(name)
        .await
        .map_err(|e| step_err(&step)(e.to_string()))?;
    Ok(obj.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
}

async fn apply(client: &Client, doc: &Value) -> Result<(), String> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let api = api(
        client,
        api_version,
        kind,
        doc["metadata"]["namespace"].as_str(),
    )
    .await?;
    api.patch(
        name,
        &PatchParams::apply("kro-hub-demo").force(),
        &Patch::Apply(doc),
    )
    .await
    .map_err(|e| format!("applying {kind} {name}: {e}"))?;
    Ok(())
}

async fn apply_all(client: &Client, yaml: &str) -> Result<(), DemoError> {
    let docs = kro_core::parse_yaml_documents(yaml)
        .map_err(|e| step_err("reading an example")(e.to_string()))?;
    for doc in docs {
        apply(client, &doc)
            .await
            .map_err(step_err("applying an example"))?;
    }
    Ok(())
}

async fn delete_in(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), DemoError> {
    let step = format!("deleting {kind} {namespace}/{name}");
    let api = api(client, api_version, kind, Some(namespace))
        .await
        .map_err(step_err(&step))?;
    api.delete(name, &DeleteParams::default())
        .await
        .map_err(|e| step_err(&step)(e.to_string()))?;
    Ok(())
}

async fn delete(
    client: &Client,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<(), DemoError> {
    delete_in(client, api_version, kind, "default", name).await
}

/// Default output folder of the demo.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join("kro-hub-demo")
}

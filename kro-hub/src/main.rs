//! The `kro-hub` command: run the controller, or check and render RGDs
//! offline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kro_hub::kubeconfig::ClusterSource;
use kro_hub::leader::{LeaderElector, LeaseConfig};
use kro_hub::metrics::Metrics;

/// See the `jemalloc` feature: the allocator the hub is benchmarked with.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(name = "kro-hub", version, about = "kro on one hub, many clusters")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller against a cluster.
    Run(RunArgs),
    /// Instances by cluster, and the members' health, at a glance.
    Status {
        /// Only instances in this namespace.
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Redraw every two seconds until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// The hub's kubeconfig; default: KUBECONFIG, ~/.kube/config, in-cluster.
        #[arg(long, env = "KRO_HUB_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// The hub's kubeconfig context; default: the current context.
        #[arg(long)]
        context: Option<String>,
    },
    /// Register, list and remove member clusters on the hub.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Run the walk-through on in-process sandbox clusters: a hub and
    /// three members.
    #[cfg(feature = "demo")]
    Demo {
        /// Folder for the clusters' kubeconfigs (`hub.kubeconfig`,
        /// `<member>.kubeconfig`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Serve the live view on --ui-addr and keep the clusters and the
        /// hub running after the tour, until Ctrl-C.
        #[arg(long, conflicts_with = "once")]
        serve: bool,
        /// Run the tour once and exit (the default): a summary of the
        /// steps, and a non-zero exit code if one failed.
        #[arg(long)]
        once: bool,
        /// Address of the live view with --serve.
        #[arg(long, value_name = "ADDR", default_value = kro_hub::demo::DEFAULT_UI_ADDR)]
        ui_addr: SocketAddr,
    },
    /// Check RGD files offline with the engine the hub runs.
    Validate {
        /// YAML files holding ResourceGraphDefinitions.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check as a hub run with --allow-instance-namespaces would.
        #[arg(long)]
        allow_instance_namespaces: bool,
        /// A folder of OpenAPI v3 documents or CustomResourceDefinition
        /// YAMLs: references into those kinds are checked against them
        /// (built-in Kubernetes kinds are checked without it).
        #[arg(long, value_name = "DIR")]
        schemas: Vec<PathBuf>,
        /// Check against the kinds a live cluster serves, read from its API
        /// server (a kind it does not serve is an error).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context for --kubeconfig; default: the current one.
        #[arg(long, requires = "kubeconfig")]
        context: Option<String>,
    },
    /// What the hub would change for an instance, on the hub and each
    /// member, without changing anything (exit 0: nothing, 1: changes,
    /// 2: error or unreachable member).
    #[command(long_about = kro_hub::diff::LONG_ABOUT)]
    Diff(kro_hub::diff::DiffArgs),
    /// Render one instance of an RGD offline, as YAML.
    Render {
        /// The RGD file.
        #[arg(long)]
        rgd: PathBuf,
        /// The instance file.
        #[arg(long)]
        instance: PathBuf,
        /// A YAML map from resource id to the object a cluster reports, to
        /// render what depends on observed state.
        #[arg(long)]
        observed: Option<PathBuf>,
        /// Name of the target cluster, bound to `cluster.name`.
        #[arg(long = "cluster", alias = "cluster-name", value_name = "NAME")]
        cluster_name: Option<String>,
        /// A label of the target cluster (`cluster.labels`), KEY=VALUE;
        /// repeatable.
        #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
        cluster_label: Vec<(String, String)>,
        /// An annotation of the target cluster (`cluster.annotations`),
        /// KEY=VALUE; repeatable.
        #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
        cluster_annotation: Vec<(String, String)>,
        /// Render as a hub run with --allow-instance-namespaces would.
        #[arg(long)]
        allow_instance_namespaces: bool,
    },
}

/// Where the hub is, for the cluster commands (as `run` finds it).
#[derive(Debug, Args)]
struct HubArgs {
    /// The hub's kubeconfig; default: KUBECONFIG, ~/.kube/config, in-cluster.
    #[arg(long = "hub-kubeconfig", env = "KRO_HUB_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The hub's kubeconfig context; default: the current context.
    #[arg(long = "hub-context")]
    context: Option<String>,
    /// The hub namespace holding the members' kubeconfig Secrets.
    #[arg(long, default_value = "kro-system")]
    namespace: String,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Create or update a member: its kubeconfig Secret and its Cluster.
    Add {
        /// The Cluster's name.
        name: String,
        /// The member's kubeconfig file (bearer token or client certificate).
        #[arg(long)]
        kubeconfig: PathBuf,
        /// The context of that file to use; default: its current context.
        #[arg(long)]
        context: Option<String>,
        /// Labels for placement, as key=value (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// List the members: name, labels, ready, version.
    List {
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Remove a member: the hub deletes its copies there first.
    Remove {
        /// The Cluster's name.
        name: String,
        /// Seconds to wait for the hub to release the Cluster.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        #[command(flatten)]
        hub: HubArgs,
    },
}

async fn status_command(
    client: &kube::Client,
    namespace: Option<&str>,
    watch: bool,
) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let terminal = std::io::stdout().is_terminal();
    loop {
        let members = kro_hub::members::cli::list(client).await?;
        let rows = kro_hub::view::rows(client, namespace).await?;
        let text = format!("{members}\n{}", kro_hub::view::table(&rows));
        if watch && terminal {
            // Clear the screen and redraw in place.
            print!("\x1b[2J\x1b[H{text}");
        } else {
            println!("{text}");
        }
        if !watch {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

async fn hub_client(hub: &HubArgs) -> anyhow::Result<kube::Client> {
    let source = ClusterSource {
        kubeconfig: hub.kubeconfig.clone(),
        context: hub.context.clone(),
    };
    source
        .client()
        .await
        .context("connecting to the hub cluster")
}

async fn cluster_command(command: ClusterCommand) -> anyhow::Result<()> {
    use kro_hub::members::cli;
    match command {
        ClusterCommand::Add {
            name,
            kubeconfig,
            context,
            labels,
            hub,
        } => {
            let client = hub_client(&hub).await?;
            cli::add(
                &client,
                &cli::AddRequest {
                    name: &name,
                    kubeconfig: &kubeconfig,
                    context: context.as_deref(),
                    labels: &labels,
                    namespace: &hub.namespace,
                },
            )
            .await?;
            println!(
                "cluster {name} registered (Secret {}/{name}-kubeconfig); `kro-hub cluster list` shows when it is ready",
                hub.namespace
            );
        }
        ClusterCommand::List { hub } => {
            let client = hub_client(&hub).await?;
            print!("{}", cli::list(&client).await?);
        }
        ClusterCommand::Remove { name, timeout, hub } => {
            let client = hub_client(&hub).await?;
            if cli::remove(&client, &name, &hub.namespace, Duration::from_secs(timeout)).await? {
                println!("cluster {name} removed");
            } else {
                anyhow::bail!(
                    "cluster {name} is being removed but the hub has not released it within {timeout}s: \
                     its copies are still being deleted, or the member is unreachable (see `kubectl get \
                     cluster {name}`; annotate it hub.kro.run/orphan-unreachable=true to give up on them)"
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Kubeconfig file; default: KUBECONFIG, ~/.kube/config, in-cluster.
    #[arg(long, env = "KRO_HUB_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; default: the current context.
    #[arg(long)]
    context: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:8080")]
    probe_addr: SocketAddr,
    /// Serve the read-only live view (members, RGD graphs, instances by
    /// cluster) on this address; off by default.
    #[arg(long, value_name = "ADDR")]
    ui_addr: Option<SocketAddr>,
    /// Take a Lease before acting, so only one replica works at a time.
    #[arg(long)]
    leader_elect: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, default_value = "kro-system")]
    leader_elect_namespace: String,
    /// Delete an RGD's generated CRD when the RGD is deleted (after its
    /// instances). Off by default, like upstream kro.
    #[arg(long)]
    delete_crds: bool,
    /// Seconds between safety resyncs of converged instances.
    #[arg(long, default_value_t = 600)]
    resync_seconds: u64,
    /// CEL cost units one reconcile of one instance may spend over all its
    /// expressions and forEach items (one unit: a value passed, a list or
    /// map entry, or 8 bytes of string); over it the instance is ERROR.
    #[arg(long, default_value_t = kro_core::expr::meter::MAX_INSTANCE_COST)]
    instance_eval_budget: u64,
    /// Accept RGDs whose resource namespaces are computed from the instance
    /// (for example `${schema.spec.namespace}`) without
    /// `spec.defaultServiceAccounts`, as upstream kro does: any user who may
    /// create an instance can then have the hub act, with its own
    /// permissions, in any namespace. Only for clusters whose instance
    /// creators are trusted with that.
    #[arg(long)]
    allow_instance_namespaces: bool,
    /// Seconds between probes of a reachable member cluster (a failing one
    /// is probed less often, backing off).
    #[arg(long, default_value_t = 30)]
    member_probe_seconds: u64,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got \"{s}\""))
}

/// `kro-hub validate`: exit code 1 when any file has a problem.
async fn validate(
    files: &[PathBuf],
    options: kro_core::CompileOptions,
    schemas: &[PathBuf],
    cluster: Option<ClusterSource>,
) -> anyhow::Result<bool> {
    let mut options = options;
    for dir in schemas {
        kro_hub::offline::load_schemas(dir, &mut options)?;
    }
    // Against a live cluster: first learn which kinds the files use, then
    // read just those schemas.
    let mut missing = Vec::new();
    if let Some(source) = cluster {
        let config = source
            .config()
            .await
            .context("reading the cluster's configuration")?;
        let client = kube::Client::try_from(config).context("connecting to the cluster")?;
        let parsed: Vec<_> = files
            .iter()
            .map(|f| kro_hub::offline::validate_file_with(f, &options))
            .collect();
        let kinds = kro_hub::schemas::kinds_of(parsed.iter().flat_map(|v| &v.rgds));
        missing = kro_hub::schemas::fetch_into(&client, &kinds, &mut options)
            .await
            .context("reading resource schemas from the cluster")?;
    }
    let mut failed = false;
    for file in files {
        let result = kro_hub::offline::validate_file_with(file, &options);
        for rgd in &result.rgds {
            let used = kro_hub::schemas::rgd_kinds(rgd);
            for m in &missing {
                if used.contains_key(&(m.api_version.clone(), m.kind.clone())) {
                    failed = true;
                    eprintln!("error: {}: RGD \"{}\": {m}", file.display(), rgd.name());
                }
            }
        }
        for line in result.valid {
            println!("{line}");
        }
        for error in result.errors {
            failed = true;
            eprintln!("error: {error}");
        }
    }
    Ok(failed)
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let source = ClusterSource {
        kubeconfig: args.kubeconfig,
        context: args.context,
    };
    let config = source
        .config()
        .await
        .context("reading the hub cluster's configuration")?;
    let client = kube::Client::try_from(config.clone()).context("connecting to the hub cluster")?;
    let metrics = Metrics::new();
    let probes = tokio::spawn(kro_hub::health::serve(args.probe_addr, metrics.clone()));
    // The view only reads, so every replica serves it, leader or not.
    let (ui_stop, ui_stopped) = tokio::sync::oneshot::channel::<()>();
    let ui = match args.ui_addr {
        Some(addr) => {
            let client = kro_hub::api_calls::counted_client(config.clone(), metrics.clone(), "hub")
                .context("connecting to the hub cluster")?;
            let stopped = async move {
                let _ = ui_stopped.await;
            };
            Some(tokio::spawn(kro_hub::ui::serve(addr, client, stopped)))
        }
        None => None,
    };
    let ui_failed = async {
        match ui {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    let mut leadership = None;
    if args.leader_elect {
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
            format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "kro-hub".to_owned()),
                std::process::id()
            )
        });
        let elector = LeaderElector::new(
            client.clone(),
            LeaseConfig {
                name: "kro-hub-leader".to_owned(),
                namespace: args.leader_elect_namespace,
                identity,
                lease_duration: Duration::from_secs(15),
            },
        );
        // A standby waiting for the Lease stops at once when asked to.
        tokio::select! {
            l = elector.lead() => leadership = Some(l),
            () = shutdown_signal() => return Ok(()),
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = kro_hub::HubOptions {
        delete_crds: args.delete_crds,
        resync: Duration::from_secs(args.resync_seconds),
        instance_eval_budget: args.instance_eval_budget,
        trust_instance_namespaces: args.allow_instance_namespaces,
        member_probe_interval: Duration::from_secs(args.member_probe_seconds.max(1)),
    };
    let mut hub = tokio::spawn(kro_hub::run_hub(
        config,
        options,
        metrics.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    tracing::info!("kro-hub is running");
    let lost = async {
        match leadership.as_mut() {
            Some(l) => {
                while *l.held.borrow() {
                    if l.held.changed().await.is_err() {
                        break;
                    }
                }
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down"),
        _ = lost => anyhow::bail!("leadership lost; exiting so a new leader can take over"),
        res = probes => res.context("probe server task")?.context("probe server")?,
        res = ui_failed => res.context("live view task")?.context("live view")?,
        res = &mut hub => {
            res.context("hub task")?.context("hub")?;
            anyhow::bail!("the hub stopped unexpectedly");
        }
    }
    let _ = stop_tx.send(());
    let _ = ui_stop.send(());
    hub.await.context("hub task")?.context("hub")?;
    // Stopped acting: a standby may take over now, not when the lease runs
    // out (a rolling update of the hub would otherwise stand still for it).
    if let Some(leadership) = leadership {
        match leadership.release().await {
            Ok(true) => tracing::info!("leadership released"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "the lease could not be released; a standby takes over when it runs out")
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo narrates on stdout; logs would drown it unless asked for
    // (a member it takes down makes the clients log every failed call).
    #[cfg(feature = "demo")]
    let demo = matches!(cli.command, Command::Demo { .. });
    #[cfg(not(feature = "demo"))]
    let demo = false;
    // The diff's plan is its output: no log lines among it.
    let quiet = demo || matches!(cli.command, Command::Diff(_));
    init_tracing(if quiet {
        "warn,kube_client=off,kube_runtime=off"
    } else {
        "info"
    });
    match cli.command {
        Command::Run(args) => run(args).await,
        Command::Cluster { command } => cluster_command(command).await,
        Command::Diff(args) => {
            use std::io::IsTerminal as _;
            let code = match kro_hub::diff::run(&args).await {
                Ok(plan) => {
                    print!("{}", plan.render(std::io::stdout().is_terminal()));
                    plan.exit_code()
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    kro_hub::diff::EXIT_ERROR
                }
            };
            std::process::exit(code)
        }
        Command::Status {
            namespace,
            watch,
            kubeconfig,
            context,
        } => {
            let client = ClusterSource {
                kubeconfig,
                context,
            }
            .client()
            .await
            .context("connecting to the hub cluster")?;
            status_command(&client, namespace.as_deref(), watch).await
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            dir,
            serve,
            once: _,
            ui_addr,
        } => {
            let dir = dir.unwrap_or_else(kro_hub::demo::default_dir);
            match kro_hub::demo::run(kro_hub::demo::DemoOptions {
                dir,
                serve,
                ui_addr,
            })
            .await
            {
                // The summary said so; 130 is the shell's code for Ctrl-C.
                Err(kro_hub::demo::DemoError::Interrupted) => std::process::exit(130),
                other => Ok(other?),
            }
        }
        Command::Validate {
            files,
            allow_instance_namespaces,
            schemas,
            kubeconfig,
            context,
        } => {
            let options = kro_core::CompileOptions {
                trust_instance_namespaces: allow_instance_namespaces,
                ..kro_core::CompileOptions::with_builtin_kinds()
            };
            let cluster = kubeconfig.map(|path| ClusterSource {
                kubeconfig: Some(path),
                context,
            });
            if validate(&files, options, &schemas, cluster).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Render {
            rgd,
            instance,
            observed,
            cluster_name,
            cluster_label,
            cluster_annotation,
            allow_instance_namespaces,
        } => {
            let options = kro_core::CompileOptions {
                trust_instance_namespaces: allow_instance_namespaces,
                ..kro_core::CompileOptions::default()
            };
            let given = cluster_name.is_some()
                || !cluster_label.is_empty()
                || !cluster_annotation.is_empty();
            let to_map =
                |pairs: Vec<(String, String)>| -> serde_json::Map<String, serde_json::Value> {
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::String(v)))
                        .collect()
                };
            let cluster = given.then(|| {
                serde_json::json!({
                    "name": cluster_name.unwrap_or_default(),
                    "labels": to_map(cluster_label),
                    "annotations": to_map(cluster_annotation),
                })
            });
            let yaml =
                kro_hub::offline::render(&rgd, &instance, observed.as_deref(), cluster, &options)?;
            print!("{yaml}");
            Ok(())
        }
    }
}

/// Ctrl-C, or SIGTERM: how Kubernetes stops a pod. On either the hub stops
/// its controllers and returns, rather than being killed mid-write at the
/// end of the grace period.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "SIGTERM cannot be handled; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

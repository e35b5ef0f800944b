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
    /// Take a Lease before acting, so only one replica works at a time.
    #[arg(long)]
    leader_elect: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, default_value = "kro-system")]
    leader_elect_namespace: String,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let source = ClusterSource {
        kubeconfig: args.kubeconfig,
        context: args.context,
    };
    let client = source
        .client()
        .await
        .context("connecting to the hub cluster")?;
    let metrics = Metrics::new();
    let probes = tokio::spawn(kro_hub::health::serve(args.probe_addr, metrics.clone()));
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
        leadership = Some(elector.lead().await);
    }
    kro_hub::install::install_own_crds(&client)
        .await
        .context("installing kro-hub's CRDs")?;
    metrics.set_ready(true);
    tracing::info!("kro-hub is running");
    let lost = async {
        match leadership.as_mut() {
            Some(rx) => {
                while *rx.borrow() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
        _ = lost => anyhow::bail!("leadership lost; exiting so a new leader can take over"),
        res = probes => res.context("probe server task")?.context("probe server")?,
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
    }
}

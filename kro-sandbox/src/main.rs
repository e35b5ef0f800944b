//! `kro-sandbox --clusters hub,a,b --dir DIR`: runs one API server per cluster and writes
//! their kubeconfigs.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kro_sandbox::{Clusters, SandboxBuilder};

#[derive(Debug, Parser)]
#[command(
    name = "kro-sandbox",
    about = "In-process Kubernetes API servers for tests and demos"
)]
struct Args {
    /// Cluster names, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "hub")]
    clusters: Vec<String>,
    /// Directory for the kubeconfigs (`DIR/<cluster>.kubeconfig`).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Switch the workload simulator off.
    #[arg(long)]
    no_simulator: bool,
    /// Milliseconds before simulated workloads report ready.
    #[arg(long, default_value_t = 500)]
    ready_after_ms: u64,
    /// Require this bearer token on every cluster.
    #[arg(long, env = "KRO_SANDBOX_TOKEN")]
    token: Option<String>,
    /// Also accept the tokens of this file, in kube-apiserver's `--token-auth-file` format
    /// (`token,user,uid,"group1,group2"` per line); RBAC decides what those users may do.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Keep each cluster's objects in `DIR/<cluster>.data.json` across restarts.
    #[arg(long)]
    persist: bool,
    /// First port to listen on (then consecutive); 0 picks free ports.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let names: Vec<&str> = args
        .clusters
        .iter()
        .map(String::as_str)
        .filter(|n| !n.is_empty())
        .collect();
    let token_file = match &args.token_auth_file {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => String::new(),
    };
    // Check the file once, before any cluster starts.
    kro_sandbox::auth::parse_token_file(&token_file).map_err(|e| anyhow::anyhow!(e))?;
    let index = |name: &str| names.iter().position(|n| *n == name).unwrap_or(0);
    let clusters = Clusters::start(&names, |b: SandboxBuilder| {
        let name = b.cluster_name().to_owned();
        let mut b = b
            .simulator(!args.no_simulator)
            .simulator_delay(Duration::from_millis(args.ready_after_ms));
        if let Some(t) = &args.token {
            b = b.token(t);
        }
        if let Ok(with_tokens) = b.clone().token_file(&token_file) {
            b = with_tokens;
        }
        if args.port != 0 {
            let offset = u16::try_from(index(&name)).unwrap_or(0);
            b = b.port(args.port.saturating_add(offset));
        }
        if args.persist {
            b = b.persist_to(args.dir.join(format!("{name}.data.json")));
        }
        b
    })
    .await?;
    let paths = clusters.write_kubeconfigs(&args.dir)?;
    for ((name, sb), path) in clusters.iter().zip(&paths) {
        println!("{name}: {} kubeconfig {}", sb.url(), path.display());
    }
    println!("ready; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    clusters.stop().await;
    Ok(())
}

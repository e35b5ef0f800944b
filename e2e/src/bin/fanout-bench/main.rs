//! `fanout-bench`: how close the hub gets to the API servers' own limit
//! when it fans instances out to member clusters.
//!
//! For each instance count it starts a hub and member API servers
//! (kro-sandbox, the workload simulator making Deployments available at
//! once), runs kro-hub in a child process against them, installs the
//! web-app RGD placed on every member, creates the instances as fast as a
//! client can and measures the time until every instance is Ready on every
//! member. It then measures, on fresh API servers, a minimal client with no
//! controller logic that performs exactly the writes the converged state
//! needs, and reports the ratio, the requests each side made (counted by
//! the API servers), the writes made while idle, and the hub process's CPU
//! time and peak RSS.

mod clusters;
mod hub_process;
mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use clusters::{Clusters, Counts, by_verb, delta, is_write, sum};
use hub_process::{HubProcess, HubReport};

/// The hub under test allocates as the `kro-hub` binary does (its
/// `jemalloc` feature). The sandboxes and the client share the binary, so
/// they do too, on both sides of the comparison.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Pause between the last instance turning Ready and the start of the
/// idle window.
const SETTLE: Duration = Duration::from_secs(1);

/// Namespace of the hub run's instances.
const NAMESPACE: &str = "fanout-bench";
/// Namespace of the baseline's instances (on existing clusters, where
/// both share the clusters).
const BASELINE_NAMESPACE: &str = "fanout-bench-baseline";

#[derive(Debug, Parser)]
#[command(
    name = "fanout-bench",
    about = "Fan-out benchmark: the hub against a controller-less client"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Instance counts, one run each (default 100, 1000, 5000).
    #[arg(long, value_delimiter = ',')]
    instances: Vec<usize>,
    /// Member clusters.
    #[arg(long, default_value_t = 3)]
    clusters: usize,
    /// The smoke test: 20 instances, a short resync.
    #[arg(long)]
    quick: bool,
    /// Also measure a restart of the hub on the converged fleet.
    #[arg(long)]
    restart: bool,
    /// The hub's resync period; writes are counted over two of them after
    /// convergence.
    #[arg(long, default_value_t = 10.0)]
    resync_seconds: f64,
    /// Skip the baseline (then no ratio is reported).
    #[arg(long)]
    no_baseline: bool,
    /// Longest wait for convergence, per run.
    #[arg(long, default_value_t = 1800)]
    timeout_seconds: u64,
    /// Write the results as a JSON list to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run against this existing hub cluster instead of sandboxes.
    #[arg(long, requires = "member_kubeconfig")]
    hub_kubeconfig: Option<PathBuf>,
    /// An existing member cluster (repeat for each).
    #[arg(long)]
    member_kubeconfig: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Internal: the hub process under test.
    #[command(hide = true)]
    Hub {
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long)]
        resync_seconds: f64,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.command {
        Some(Command::Hub {
            ref kubeconfig,
            resync_seconds,
        }) => runtime.block_on(hub_process::serve(
            kubeconfig.clone(),
            Duration::from_secs_f64(resync_seconds),
        )),
        None => runtime.block_on(bench(args)),
    }
}

async fn bench(mut args: Args) -> anyhow::Result<()> {
    if args.quick {
        args.instances = vec![20];
        args.resync_seconds = args.resync_seconds.min(3.0);
        args.restart = true;
    }
    if args.instances.is_empty() {
        args.instances = vec![100, 1000, 5000];
    }
    if args.member_kubeconfig.is_empty() && args.hub_kubeconfig.is_none() && args.clusters == 0 {
        anyhow::bail!("--clusters must be at least 1");
    }
    let mut results = Vec::new();
    for &n in &args.instances {
        eprintln!(
            "fanout-bench: {n} instances on {} cluster(s)...",
            members_of(&args)
        );
        let result = run(&args, n)
            .await
            .with_context(|| format!("run with {n} instances"))?;
        print_details(&result);
        results.push(result);
    }
    print_table(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Array(results))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn members_of(args: &Args) -> usize {
    if args.hub_kubeconfig.is_some() {
        args.member_kubeconfig.len()
    } else {
        args.clusters
    }
}

async fn clusters_for(args: &Args, tag: &str) -> anyhow::Result<Clusters> {
    match &args.hub_kubeconfig {
        Some(hub) => Clusters::existing(hub, &args.member_kubeconfig).await,
        None => Clusters::sandboxes(args.clusters, tag).await,
    }
}

/// Counts as JSON: `{cluster: {verb: n}}` for `who`.
fn verbs_json(counts: &Counts, clusters: &[String], who: &str) -> Value {
    let mut out = serde_json::Map::new();
    for c in clusters {
        out.insert(c.clone(), json!(by_verb(counts, c, who)));
    }
    Value::Object(out)
}

/// The hub's own count of its calls as `Counts` (for existing clusters,
/// whose API servers we cannot ask).
fn hub_counts(report: &HubReport) -> Counts {
    report
        .api_calls()
        .into_iter()
        .map(|(cluster, verb, n)| ((cluster, "hub".to_owned(), verb, String::new()), n))
        .collect()
}

/// Requests by the hub, from the API servers when they count, else from
/// the hub's own client-side counter.
fn hub_requests(cl: &Clusters, report: &HubReport) -> Counts {
    if cl.counts_requests() {
        cl.counts()
    } else {
        hub_counts(report)
    }
}

/// Waits (at most 10 s) until the hub has made no request for 300 ms: the
/// Clusters report Reachable a moment before the hub has started its
/// member watches, and work of the hub's start that spills into the
/// creation would be measured as the creation's.
async fn settle(cl: &Clusters, hub: &mut HubProcess) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = hub_requests(cl, &hub.report().await?);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = hub_requests(cl, &hub.report().await?);
        if now == last {
            break;
        }
        last = now;
    }
    Ok(())
}

/// This process's CPU seconds since it read `start` (none without procfs).
fn cpu_since(start: Option<f64>) -> Option<f64> {
    hub_process::cpu_seconds()
        .zip(start)
        .map(|(now, then)| now - then)
}

fn f2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[allow(clippy::cast_precision_loss)]
async fn run(args: &Args, n: usize) -> anyhow::Result<Value> {
    let timeout = Duration::from_secs(args.timeout_seconds);
    let resync = Duration::from_secs_f64(args.resync_seconds);
    let cl = clusters_for(args, &format!("hub-{n}")).await?;
    let m = cl.members.len();
    let cluster_names: Vec<String> = std::iter::once("hub".to_owned())
        .chain(cl.members.iter().map(|m| m.name.clone()))
        .collect();
    let mut hub = HubProcess::start(&cl.hub_kubeconfig, resync).await?;
    workload::install(&cl, NAMESPACE).await?;
    settle(&cl, &mut hub).await?;
    let rep0 = hub.report().await?;
    let c0 = hub_requests(&cl, &rep0);

    // Creation until every instance is Ready everywhere. This process holds
    // the sandboxes and the creating client: its CPU is the servers' load.
    let servers_cpu0 = hub_process::cpu_seconds();
    let hub_time = workload::create_and_wait(&cl, NAMESPACE, n, timeout).await?;
    let servers_cpu = cpu_since(servers_cpu0);
    // The Event announcing the last Ready is published just after the
    // status write that made it Ready: it belongs to the creation, not to
    // the idle window.
    tokio::time::sleep(SETTLE).await;
    let rep1 = hub.report().await?;
    let c1 = hub_requests(&cl, &rep1);
    let creation = delta(&c0, &c1);

    // Two resync periods of a converged fleet.
    let converged = workload::statuses(&cl, NAMESPACE).await?;
    tokio::time::sleep(resync * 2 + Duration::from_millis(500)).await;
    let later = workload::statuses(&cl, NAMESPACE).await?;
    // What changed, for whoever has to find out why.
    let changed: Vec<Value> = converged
        .iter()
        .filter(|(name, status)| later.get(*name) != Some(status))
        .take(2)
        .map(|(name, status)| json!({"instance": name, "at_convergence": status, "later": later.get(name)}))
        .collect();
    let rep2 = hub.report().await?;
    let c2 = hub_requests(&cl, &rep2);
    let idle = delta(&c1, &c2);
    let idle_writes = sum(&idle, None, None, is_write, |_| true);
    let idle_requests = sum(&idle, None, Some("hub"), |_| true, |_| true);
    let last = hub.stop().await?;
    // The peak of the run that created the instances; a restart's is
    // reported with the restart.
    let peak_rss_mib = last.peak_rss_mib;

    // A cold start on the converged fleet.
    let restart = if args.restart {
        let list_watch = workload::list_and_watch(&cl, NAMESPACE).await?;
        let (took, report, counts) = restart(&cl, n, resync, timeout).await?;
        let writes = sum(&counts, None, Some("hub"), is_write, |_| true);
        json!({"seconds": f2(took.as_secs_f64()), "list_watch_seconds": f2(list_watch.as_secs_f64()),
            "ratio": f2(took.as_secs_f64() / list_watch.as_secs_f64().max(1e-3)),
            "writes": writes, "cpu_seconds": f2(report.cpu_seconds),
            "peak_rss_mib": f2(report.peak_rss_mib),
            "hub_requests": verbs_json(&counts, &cluster_names, "hub")})
    } else {
        Value::Null
    };

    // The baseline: on fresh sandboxes, or in a namespace of its own on
    // existing clusters.
    let mut baseline_servers_cpu = None;
    let baseline = if args.no_baseline {
        None
    } else {
        let crd = workload::generated_crd(&cl.hub).await?;
        Some(if cl.counts_requests() {
            let fresh = Clusters::sandboxes(m, &format!("base-{n}")).await?;
            let cpu0 = hub_process::cpu_seconds();
            let out = baseline(&fresh, &crd, NAMESPACE, n, timeout).await;
            baseline_servers_cpu = cpu_since(cpu0);
            fresh.stop().await;
            out?
        } else {
            baseline(&cl, &crd, BASELINE_NAMESPACE, n, timeout).await?
        })
    };
    if !cl.counts_requests() {
        // Existing clusters: the hub removes what it made.
        let hub = HubProcess::start(&cl.hub_kubeconfig, resync).await?;
        workload::clean_up(&cl, &[NAMESPACE, BASELINE_NAMESPACE]).await?;
        hub.stop().await?;
    }
    cl.stop().await;

    let per = (n * m).max(1) as f64;
    let by_servers = cl_counts_label(args);
    let member_requests = sum(&creation, None, Some("hub"), |_| true, |_| true)
        - sum(&creation, Some("hub"), Some("hub"), |_| true, |_| true);
    let member_writes = sum(&creation, None, Some("hub"), is_write, |_| true)
        - sum(&creation, Some("hub"), Some("hub"), is_write, |_| true);
    let status_writes = sum(&creation, Some("hub"), Some("hub"), is_write, |r| {
        r.ends_with("/status")
    });
    let instance_patches = sum(&creation, Some("hub"), Some("hub"), is_write, |r| {
        r == "benchwebapps.kro.run"
    });
    let hub_seconds = hub_time.as_secs_f64();
    let controller = format!("instance/{}", workload::RGD);
    let per_instance = |metric: &str| {
        (rep1.counter(metric, &[("controller", &controller)])
            - rep0.counter(metric, &[("controller", &controller)]))
            / n.max(1) as f64
    };
    let (baseline_seconds, baseline_requests) = match &baseline {
        Some((t, counts)) => (
            Some(t.as_secs_f64()),
            by_servers.then(|| verbs_json(counts, &cluster_names, "client")),
        ),
        None => (None, None),
    };
    Ok(json!({
        "instances": n,
        "clusters": m,
        "hub_seconds": f2(hub_seconds),
        "baseline_seconds": baseline_seconds.map(f2),
        "ratio": baseline_seconds.map(|b| f2(hub_seconds / b.max(1e-3))),
        "writes_after_convergence": idle_writes,
        "idle_writes_by_resource": by_resource(&idle.iter().filter(|((_, _, v, _), _)| is_write(v)).map(|(k, n)| (k.clone(), *n)).collect(), "hub"),
        "requests_after_convergence": idle_requests,
        "statuses_changed_after_convergence": changed,
        "idle_seconds": f2((resync * 2).as_secs_f64()),
        "hub_peak_rss_mib": f2(peak_rss_mib),
        "hub_cpu_seconds": f2(rep1.cpu_seconds - rep0.cpu_seconds),
        // Every whole pass renders the instance for every member: how many
        // a converging instance costs says as much as the CPU seconds.
        // Reconciles whose inputs had not changed are answered without one.
        "reconciles_per_instance": f2(per_instance("kro_hub_reconciles_total")),
        "unchanged_reconciles_per_instance": f2(per_instance("kro_hub_reconciles_unchanged_total")),
        "whole_passes_per_instance": f2(
            per_instance("kro_hub_reconciles_total") - per_instance("kro_hub_reconciles_unchanged_total")
        ),
        // Sandboxes only: this process's CPU while the hub converged and
        // while the baseline ran (servers plus the client, on both sides).
        "servers_cpu_seconds": by_servers.then_some(servers_cpu).flatten().map(f2),
        "baseline_servers_cpu_seconds": baseline_servers_cpu.map(f2),
        "hub_cpu_seconds_idle": f2(rep2.cpu_seconds - rep1.cpu_seconds),
        "hub_cpu_seconds_total": f2(last.cpu_seconds),
        "requests_per_instance_cluster": f2(member_requests as f64 / per),
        "member_writes_per_instance_cluster": f2(member_writes as f64 / per),
        // The hub's own counter knows verbs, not resources.
        "status_writes_per_instance": by_servers.then(|| f2(status_writes as f64 / n.max(1) as f64)),
        "instance_patches_per_instance": by_servers.then(|| f2(instance_patches as f64 / n.max(1) as f64)),
        "hub_requests": verbs_json(&creation, &cluster_names, "hub"),
        "hub_requests_by_resource": by_resource(&creation, "hub"),
        "baseline_requests": baseline_requests,
        "restart": restart,
        "requests_counted_by": if by_servers { "api-servers" } else { "hub-client" },
        "cpu_and_rss_of": "the hub's own process (this binary's `hub` subcommand), from /proc/self",
    }))
}

fn cl_counts_label(args: &Args) -> bool {
    args.hub_kubeconfig.is_none()
}

/// `{cluster: {"verb resource": n}}` for `who`.
fn by_resource(counts: &Counts, who: &str) -> Value {
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> =
        std::collections::BTreeMap::new();
    for ((c, w, v, r), n) in counts {
        if w == who {
            *out.entry(c.clone())
                .or_default()
                .entry(format!("{v} {r}"))
                .or_default() += n;
        }
    }
    json!(out)
}

/// Starts a hub on the converged fleet and waits until it has reconciled
/// every instance and gone quiet; the time from the process start, its
/// report, and the requests it made.
async fn restart(
    cl: &Clusters,
    n: usize,
    resync: Duration,
    timeout: Duration,
) -> anyhow::Result<(Duration, HubReport, Counts)> {
    let controller = format!("instance/{}", workload::RGD);
    let before = cl.counts();
    let start = Instant::now();
    let mut hub = HubProcess::start(&cl.hub_kubeconfig, resync).await?;
    let mut last_change = start.elapsed();
    let mut last_count = 0.0;
    // Quiet: no reconcile for this long after every instance was seen once.
    let quiet = Duration::from_secs(2).min(resync / 2);
    loop {
        let report = hub.report().await?;
        let count = report.counter("kro_hub_reconciles_total", &[("controller", &controller)]);
        if count > last_count {
            last_count = count;
            last_change = start.elapsed();
        }
        #[allow(clippy::cast_precision_loss)]
        let all_seen = count >= n as f64;
        if all_seen && start.elapsed() > last_change + quiet {
            break;
        }
        if start.elapsed() > timeout {
            anyhow::bail!("the restarted hub did not settle within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = hub.stop().await?;
    let counts = if cl.counts_requests() {
        delta(&before, &cl.counts())
    } else {
        hub_counts(&report)
    };
    Ok((last_change, report, counts))
}

/// Runs the minimal client on `cl`; its time and the requests it made.
async fn baseline(
    cl: &Clusters,
    crd: &Value,
    namespace: &str,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<(Duration, Counts)> {
    workload::apply(
        &cl.hub,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    )
    .await?;
    workload::install_crd(&cl.hub, crd).await?;
    let before = cl.counts();
    let took = workload::baseline(cl, namespace, n, timeout).await?;
    Ok((took, delta(&before, &cl.counts())))
}

fn print_details(r: &Value) {
    eprintln!(
        "  hub requests during creation, by cluster and verb: {}",
        r["hub_requests"]
    );
    eprintln!(
        "  hub requests by resource: {}",
        r["hub_requests_by_resource"]
    );
    if !r["baseline_requests"].is_null() {
        eprintln!("  baseline requests: {}", r["baseline_requests"]);
    }
    eprintln!(
        "  servers' CPU seconds (sandboxes and client): hub run {}, baseline {}",
        cell(&r["servers_cpu_seconds"]),
        cell(&r["baseline_servers_cpu_seconds"])
    );
    if !r["restart"].is_null() {
        eprintln!("  restart: {}", r["restart"]);
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn print_table(results: &[Value]) {
    println!(
        "{:>9} {:>8} {:>9} {:>10} {:>6} {:>10} {:>11} {:>12} {:>11} {:>9} {:>8} {:>10} {:>10} {:>9}",
        "instances",
        "clusters",
        "hub_s",
        "baseline_s",
        "ratio",
        "req/inst/c",
        "writes/i/c",
        "status_w/inst",
        "idle_writes",
        "rss_MiB",
        "cpu_s",
        "restart_s",
        "listwatch_s",
        "passes/i"
    );
    for r in results {
        println!(
            "{:>9} {:>8} {:>9} {:>10} {:>6} {:>10} {:>11} {:>12} {:>11} {:>9} {:>8} {:>10} {:>10} {:>9}",
            cell(&r["instances"]),
            cell(&r["clusters"]),
            cell(&r["hub_seconds"]),
            cell(&r["baseline_seconds"]),
            cell(&r["ratio"]),
            cell(&r["requests_per_instance_cluster"]),
            cell(&r["member_writes_per_instance_cluster"]),
            cell(&r["status_writes_per_instance"]),
            cell(&r["writes_after_convergence"]),
            cell(&r["hub_peak_rss_mib"]),
            cell(&r["hub_cpu_seconds"]),
            cell(&r["restart"]["seconds"]),
            cell(&r["restart"]["list_watch_seconds"]),
            cell(&r["whole_passes_per_instance"]),
        );
    }
    println!(
        "hub_s: first create until every instance is Ready on every member; cpu_s: the hub \
         process's CPU seconds over that time; rss_MiB: its peak RSS (VmHWM); requests counted \
         by the API servers (sandboxes) or by the hub's client (existing clusters)."
    );
}

//! The hub under test runs in a child process of its own (this binary,
//! `hub` subcommand), so its CPU time and peak RSS are the hub's alone and
//! not the API servers' or the benchmark client's. The parent talks to it
//! over stdin/stdout: `report` answers one JSON line, `stop` stops the hub
//! gracefully and answers a last report.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Linux's user-visible clock tick (`USER_HZ`) is 100 on every
/// architecture: it is part of the ABI of `/proc/<pid>/stat`.
const USER_HZ: f64 = 100.0;

/// User plus system CPU seconds of this process, all threads, from
/// `/proc/self/stat`; `None` where there is no procfs.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; fields are counted after its ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// A `/proc/self/status` size field (`VmHWM`, `VmRSS`) in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// What the hub process says about itself.
#[derive(Debug, Clone, Default)]
pub struct HubReport {
    /// CPU seconds (user + system) since the process started.
    pub cpu_seconds: f64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_mib: f64,
    /// Current resident set size.
    pub rss_mib: f64,
    /// The hub's Prometheus exposition.
    pub metrics: String,
}

impl HubReport {
    fn to_json(&self) -> Value {
        json!({"cpu_seconds": self.cpu_seconds, "peak_rss_mib": self.peak_rss_mib,
            "rss_mib": self.rss_mib, "metrics": self.metrics})
    }

    fn from_json(v: &Value) -> Self {
        Self {
            cpu_seconds: v["cpu_seconds"].as_f64().unwrap_or_default(),
            peak_rss_mib: v["peak_rss_mib"].as_f64().unwrap_or_default(),
            rss_mib: v["rss_mib"].as_f64().unwrap_or_default(),
            metrics: v["metrics"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Sum of the counter samples named `metric` whose labels contain
    /// every `key="value"` of `labels`.
    pub fn counter(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.metrics
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (name, rest) = series.split_once('{').unwrap_or((series, ""));
                if name != metric {
                    return None;
                }
                labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                    .then(|| value.parse::<f64>().ok())
                    .flatten()
            })
            .sum()
    }

    /// The hub's own count of API calls, by (cluster, verb).
    pub fn api_calls(&self) -> Vec<(String, String, u64)> {
        let mut out = Vec::new();
        for line in self.metrics.lines() {
            let Some(rest) = line.strip_prefix("kro_hub_api_calls_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let label = |key: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
            };
            if let (Some(cluster), Some(verb), Ok(n)) =
                (label("cluster"), label("verb"), value.parse::<f64>())
            {
                // Counters are integers printed as such.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                out.push((cluster, verb, n as u64));
            }
        }
        out
    }
}

fn own_report(metrics: &kro_hub::metrics::Metrics) -> HubReport {
    HubReport {
        cpu_seconds: cpu_seconds().unwrap_or_default(),
        peak_rss_mib: status_mib("VmHWM:").unwrap_or_default(),
        rss_mib: status_mib("VmRSS:").unwrap_or_default(),
        metrics: metrics.render(),
    }
}

/// The `hub` subcommand: runs kro-hub against `kubeconfig` until told to
/// stop on stdin.
pub async fn serve(kubeconfig: PathBuf, resync: Duration) -> anyhow::Result<()> {
    let source = kro_hub::kubeconfig::ClusterSource {
        kubeconfig: Some(kubeconfig),
        context: None,
    };
    let config = source.config().await.context("hub kubeconfig")?;
    let options = kro_hub::HubOptions {
        resync,
        ..kro_hub::HubOptions::default()
    };
    let metrics = kro_hub::metrics::Metrics::new();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let hub_metrics = metrics.clone();
    let hub = tokio::spawn(async move {
        let stop = async move {
            let _ = stop_rx.await;
        };
        if let Err(error) = kro_hub::run_hub(config, options, hub_metrics, stop).await {
            tracing::error!(%error, "hub stopped");
        }
    });
    let mut out = tokio::io::stdout();
    while !metrics.is_ready() {
        if hub.is_finished() {
            bail!("the hub stopped before it was ready");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    out.write_all(b"ready\n").await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "report" => {
                let text = format!("{}\n", own_report(&metrics).to_json());
                out.write_all(text.as_bytes()).await?;
                out.flush().await?;
            }
            "stop" => break,
            _ => {}
        }
    }
    let _ = stop_tx.send(());
    if tokio::time::timeout(Duration::from_secs(30), hub)
        .await
        .is_err()
    {
        tracing::warn!("the hub did not stop within 30 s");
    }
    let text = format!("{}\n", own_report(&metrics).to_json());
    out.write_all(text.as_bytes()).await?;
    out.flush().await?;
    Ok(())
}

/// The parent's handle on a running hub process.
#[derive(Debug)]
pub struct HubProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl HubProcess {
    /// Starts this binary as a hub against `kubeconfig` and waits until it
    /// has installed its CRDs.
    pub async fn start(kubeconfig: &Path, resync: Duration) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating this binary")?;
        // A profiler to run the hub under (`FANOUT_BENCH_HUB_WRAPPER=heaptrack`,
        // or `perf record -g --`): the hub's own costs, without the servers'.
        let wrapper = std::env::var("FANOUT_BENCH_HUB_WRAPPER").unwrap_or_default();
        let mut command = match wrapper.split_whitespace().collect::<Vec<_>>().split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        // The runtime the hub has as deployed (see `HUB_CPU_LIMIT`), unless
        // the caller chose one.
        if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
            command.env("TOKIO_WORKER_THREADS", kro_e2e::HUB_CPU_LIMIT.to_string());
        }
        // And its allocator's settings, for the hub alone: the servers and
        // the baseline client in this process keep theirs.
        if std::env::var_os("_RJEM_MALLOC_CONF").is_none() {
            command.env("_RJEM_MALLOC_CONF", kro_e2e::HUB_MALLOC_CONF);
        }
        let mut child = command
            .arg("hub")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--resync-seconds")
            .arg(resync.as_secs_f64().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the hub process")?;
        let stdin = child.stdin.take().context("hub stdin")?;
        let stdout = child.stdout.take().context("hub stdout")?;
        let mut stdout = BufReader::new(stdout).lines();
        // A wrapper may print a line of its own first.
        let ready = async {
            while let Some(line) = stdout.next_line().await? {
                if line.trim() == "ready" {
                    return Ok(true);
                }
            }
            anyhow::Ok(false)
        };
        match tokio::time::timeout(Duration::from_secs(60), ready).await {
            Ok(Ok(true)) => {}
            other => bail!("the hub process did not become ready: {other:?}"),
        }
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    async fn ask(&mut self, command: &str) -> anyhow::Result<HubReport> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        let line = self
            .stdout
            .next_line()
            .await?
            .context("the hub process closed its output")?;
        let v: Value = serde_json::from_str(&line).with_context(|| {
            format!("hub report: {}", line.chars().take(200).collect::<String>())
        })?;
        Ok(HubReport::from_json(&v))
    }

    /// The hub's current report.
    pub async fn report(&mut self) -> anyhow::Result<HubReport> {
        self.ask("report").await
    }

    /// Stops the hub; its last report.
    pub async fn stop(mut self) -> anyhow::Result<HubReport> {
        let report = self.ask("stop").await?;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        Ok(report)
    }
}

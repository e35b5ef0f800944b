//! The clusters a run uses: fresh sandboxes (a hub and members, the
//! workload simulator on with no delay), or existing clusters named by
//! kubeconfig files. The hub authenticates as its own user on sandboxes, so
//! their request counters tell its requests from the benchmark client's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;

/// The user the hub authenticates as on sandboxes.
pub const HUB_USER: &str = "kro-hub";

/// One member cluster.
pub struct Member {
    /// Name of its `Cluster` object on the hub.
    pub name: String,
    /// The benchmark client's own client of it.
    pub client: Client,
    /// The kubeconfig the hub uses for it (stored in a Secret on the hub).
    pub hub_kubeconfig: String,
}

/// A hub and its members.
pub struct Clusters {
    /// The benchmark client's client of the hub.
    pub hub: Client,
    /// The kubeconfig file the hub process uses.
    pub hub_kubeconfig: PathBuf,
    /// The members.
    pub members: Vec<Member>,
    /// The sandboxes, hub first, when the clusters are sandboxes.
    sandboxes: Vec<(String, kro_sandbox::Sandbox)>,
    /// A directory of our own, removed at the end.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clusters")
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// Requests counted by the API servers: (cluster, who, verb, resource) to
/// count, `who` being `hub` or `client`.
pub type Counts = BTreeMap<(String, String, String, String), u64>;

/// A directory for this process's files.
fn scratch_dir(tag: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("fanout-bench-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

impl Clusters {
    /// A fresh hub sandbox and `members` member sandboxes.
    pub async fn sandboxes(members: usize, tag: &str) -> anyhow::Result<Self> {
        let dir = scratch_dir(tag)?;
        let start = |name: &str| {
            kro_sandbox::SandboxBuilder::new(name)
                .simulator(true)
                .simulator_delay(Duration::ZERO)
                .start()
        };
        let hub_sandbox = start("hub").await?;
        let hub_token = hub_sandbox.user_token(HUB_USER, &["system:masters"]);
        let hub_kubeconfig = dir.join("hub.kubeconfig");
        std::fs::write(
            &hub_kubeconfig,
            hub_sandbox.kubeconfig_yaml_with_token(&hub_token),
        )?;
        let hub = hub_sandbox.client().await?;
        let mut sandboxes = vec![("hub".to_owned(), hub_sandbox)];
        let mut out = Vec::new();
        for i in 1..=members {
            let name = format!("member-{i}");
            let sandbox = start(&name).await?;
            let token = sandbox.user_token(HUB_USER, &["system:masters"]);
            out.push(Member {
                name: name.clone(),
                client: sandbox.client().await?,
                hub_kubeconfig: sandbox.kubeconfig_yaml_with_token(&token),
            });
            sandboxes.push((name, sandbox));
        }
        Ok(Self {
            hub,
            hub_kubeconfig,
            members: out,
            sandboxes,
            dir: Some(dir),
        })
    }

    /// Existing clusters: the hub's kubeconfig, and one per member (the
    /// hub and the benchmark client use the same credentials).
    pub async fn existing(hub: &Path, members: &[PathBuf]) -> anyhow::Result<Self> {
        let client_of = |path: &Path| {
            let path = path.to_owned();
            async move {
                let source = kro_hub::kubeconfig::ClusterSource {
                    kubeconfig: Some(path.clone()),
                    context: None,
                };
                let config = source
                    .config()
                    .await
                    .with_context(|| format!("kubeconfig {}", path.display()))?;
                anyhow::Ok(Client::try_from(config)?)
            }
        };
        let mut out = Vec::new();
        for (i, path) in members.iter().enumerate() {
            out.push(Member {
                name: format!("member-{}", i + 1),
                client: client_of(path).await?,
                hub_kubeconfig: std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            });
        }
        Ok(Self {
            hub: client_of(hub).await?,
            hub_kubeconfig: hub.to_owned(),
            members: out,
            sandboxes: Vec::new(),
            dir: None,
        })
    }

    /// Whether the API servers count requests (sandboxes do).
    pub fn counts_requests(&self) -> bool {
        !self.sandboxes.is_empty()
    }

    /// Every request the sandboxes served so far.
    pub fn counts(&self) -> Counts {
        let mut out = Counts::new();
        for (cluster, sandbox) in &self.sandboxes {
            for (key, n) in sandbox.shared().requests.snapshot() {
                let who = if key.user == HUB_USER {
                    "hub"
                } else {
                    "client"
                };
                *out.entry((
                    cluster.clone(),
                    who.to_owned(),
                    key.verb.to_owned(),
                    key.resource,
                ))
                .or_default() += n;
            }
        }
        out
    }

    /// Stops the sandboxes and removes our files.
    pub async fn stop(self) {
        for (_, sandbox) in self.sandboxes {
            sandbox.stop().await;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `after - before`, per key, without the keys that did not move.
pub fn delta(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Whether `verb` changes state.
pub fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "apply" | "patch" | "delete" | "deletecollection"
    )
}

/// Sum of the counts matching the filters (`None`: any).
pub fn sum(
    counts: &Counts,
    cluster: Option<&str>,
    who: Option<&str>,
    verb: impl Fn(&str) -> bool,
    resource: impl Fn(&str) -> bool,
) -> u64 {
    counts
        .iter()
        .filter(|((c, w, v, r), _)| {
            cluster.is_none_or(|x| x == c) && who.is_none_or(|x| x == w) && verb(v) && resource(r)
        })
        .map(|(_, n)| n)
        .sum()
}

/// `verb=count` pairs of the hub's requests to `cluster`, by verb.
pub fn by_verb(counts: &Counts, cluster: &str, who: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((c, w, v, _), n) in counts {
        if c == cluster && w == who {
            *out.entry(v.clone()).or_default() += n;
        }
    }
    out
}

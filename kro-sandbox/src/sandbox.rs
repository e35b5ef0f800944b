//! Starting sandboxes: one API server per named cluster, with kubeconfigs, clients and faults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::{TokenSubject, UserInfo};
use crate::state::{Options, Shared};

/// Errors starting or talking to a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address tried.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The persisted data could not be read.
    #[error("cannot load {path}: {message}")]
    Load {
        /// File.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Building a kube client failed.
    #[error("kube client: {0}")]
    Kube(String),
    /// A token file could not be read.
    #[error("token file: {0}")]
    TokenFile(String),
}

/// Configures a sandbox before it starts.
#[derive(Debug, Clone, Default)]
pub struct SandboxBuilder {
    opts: Options,
    port: u16,
    persist: Option<PathBuf>,
}

impl SandboxBuilder {
    /// A builder for a cluster called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            opts: Options {
                name: name.to_owned(),
                ..Options::default()
            },
            ..Self::default()
        }
    }

    /// The cluster name being configured.
    pub fn cluster_name(&self) -> &str {
        &self.opts.name
    }

    /// Requires `Authorization: Bearer <token>` on every request but health checks.
    #[must_use]
    pub fn token(mut self, token: &str) -> Self {
        self.opts.token = Some(token.to_owned());
        self
    }

    /// Accepts `Authorization: Bearer <token>` as `user` in `groups` (plus
    /// `system:authenticated`), like a line of kube-apiserver's `--token-auth-file`.
    /// Such users are not admins: RBAC decides what they may do.
    #[must_use]
    pub fn user_token(mut self, token: &str, user: &str, groups: &[&str]) -> Self {
        self.opts
            .user_tokens
            .push((token.to_owned(), UserInfo::new(user, groups)));
        self
    }

    /// Accepts every token of a kube-apiserver token file's text
    /// (`token,user,uid[,"group1,group2"]` lines).
    pub fn token_file(mut self, text: &str) -> Result<Self, SandboxError> {
        let users = crate::auth::parse_token_file(text).map_err(SandboxError::TokenFile)?;
        self.opts.user_tokens.extend(users);
        Ok(self)
    }

    /// Switches the workload simulator on (default) or off.
    #[must_use]
    pub fn simulator(mut self, on: bool) -> Self {
        self.opts.simulator = on;
        self
    }

    /// How long simulated workloads take to become ready.
    #[must_use]
    pub fn simulator_delay(mut self, d: Duration) -> Self {
        self.opts.simulator_delay = d;
        self
    }

    /// How many events are kept for watches resuming from a resourceVersion.
    #[must_use]
    pub fn history(mut self, events: usize) -> Self {
        self.opts.history = events;
        self
    }

    /// Whether terminating namespaces are emptied and removed (default on).
    #[must_use]
    pub fn namespace_controller(mut self, on: bool) -> Self {
        self.opts.namespace_controller = on;
        self
    }

    /// Listens on this port instead of a free one.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Keeps the sandbox's objects in this file across restarts.
    #[must_use]
    pub fn persist_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.persist = Some(path.into());
        self
    }

    /// Starts serving on 127.0.0.1.
    pub async fn start(self) -> Result<Sandbox, SandboxError> {
        let addr = format!("127.0.0.1:{}", self.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let shared = Arc::new(Shared::new(self.opts));
        if let Some(path) = &self.persist {
            crate::persist::load(&shared, path)?;
        }
        shared.seed();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = crate::http::router(shared.clone());
        let gate = Gate {
            inner: listener,
            shared: shared.clone(),
        };
        let server = tokio::spawn(async move {
            let serve = axum::serve(gate, app).with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "sandbox server stopped with an error");
            }
        });
        let mut background = vec![tokio::spawn(crate::authz::aggregation::run(
            Arc::downgrade(&shared),
        ))];
        if shared.opts.simulator {
            background.push(tokio::spawn(crate::simulator::run(Arc::downgrade(&shared))));
        }
        if let Some(path) = &self.persist {
            background.push(tokio::spawn(crate::persist::run(
                Arc::downgrade(&shared),
                path.clone(),
            )));
        }
        tracing::info!(cluster = %shared.opts.name, %local, "sandbox listening");
        Ok(Sandbox {
            shared,
            addr: local,
            stop: Some(stop_tx),
            server: Some(server),
            background,
            persist: self.persist,
        })
    }
}

/// The accept loop, which drops connections while the sandbox refuses them.
struct Gate {
    inner: TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for Gate {
    type Io = GatedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.shared.faults.refuse.load(Ordering::Relaxed) {
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let stream = GatedStream {
                        inner: stream,
                        shared: self.shared.clone(),
                    };
                    return (stream, addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that breaks, like one to a server that went away, once the
/// sandbox refuses connections: clients holding keep-alive connections see
/// the outage too, not only new ones.
struct GatedStream {
    inner: TcpStream,
    shared: Arc<Shared>,
}

impl GatedStream {
    fn broken(&self) -> Option<std::io::Error> {
        self.shared
            .faults
            .refuse
            .load(Ordering::Relaxed)
            .then(|| std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    }
}

impl tokio::io::AsyncRead for GatedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Some(e) = self.broken() {
            return std::task::Poll::Ready(Err(e));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for GatedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Some(e) = self.broken() {
            return std::task::Poll::Ready(Err(e));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A running sandbox API server.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    persist: Option<PathBuf>,
}

impl Sandbox {
    /// Starts a sandbox with default options (simulator on, no auth).
    pub async fn start(name: &str) -> Result<Self, SandboxError> {
        SandboxBuilder::new(name).start().await
    }

    /// The cluster name.
    pub fn name(&self) -> &str {
        &self.shared.opts.name
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (YAML) for this sandbox, with its token if it has one.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_for(self.shared.opts.token.as_deref())
    }

    /// A kubeconfig (YAML) for this sandbox that authenticates with `token`.
    pub fn kubeconfig_yaml_with_token(&self, token: &str) -> String {
        self.kubeconfig_yaml_for(Some(token))
    }

    fn kubeconfig_yaml_for(&self, token: Option<&str>) -> String {
        let name = self.name();
        let user = match token {
            Some(t) => format!("    token: {t}\n"),
            None => "    {}\n".to_owned(),
        };
        let user = if user.trim() == "{}" {
            "  user: {}\n".to_owned()
        } else {
            format!("  user:\n{user}")
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    namespace: default\ncurrent-context: {name}\nusers:\n- name: {name}\n{user}preferences: {{}}\n",
            self.url()
        )
    }

    /// The kubeconfig as `kube` reads it.
    pub fn kubeconfig(&self) -> Result<kube::config::Kubeconfig, SandboxError> {
        kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml())
            .map_err(|e| SandboxError::Kube(e.to_string()))
    }

    /// Writes the kubeconfig to a file.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SandboxError> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| SandboxError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// The `kube::Config` of this sandbox's admin kubeconfig.
    pub async fn config(&self) -> Result<kube::Config, SandboxError> {
        kube::Config::from_custom_kubeconfig(self.kubeconfig()?, &Default::default())
            .await
            .map_err(|e| SandboxError::Kube(e.to_string()))
    }

    /// A `kube::Client` for this sandbox.
    pub async fn client(&self) -> Result<kube::Client, SandboxError> {
        Self::client_from(self.kubeconfig()?).await
    }

    /// A `kube::Client` for this sandbox that authenticates with `token`.
    pub async fn client_with_token(&self, token: &str) -> Result<kube::Client, SandboxError> {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml_with_token(token))
            .map_err(|e| SandboxError::Kube(e.to_string()))?;
        Self::client_from(kc).await
    }

    /// A new bearer token for `user` in `groups` (plus `system:authenticated`), valid from
    /// now on, as [`SandboxBuilder::user_token`] registers one before start.
    pub fn user_token(&self, user: &str, groups: &[&str]) -> String {
        let token = crate::auth::new_token();
        self.shared
            .tokens
            .insert(&token, TokenSubject::User(UserInfo::new(user, groups)));
        token
    }

    /// A new bearer token for the ServiceAccount `namespace/name`: it authenticates as
    /// `system:serviceaccount:<namespace>:<name>` in `system:serviceaccounts`,
    /// `system:serviceaccounts:<namespace>` and `system:authenticated`, while that
    /// ServiceAccount exists (like the server, a token of a missing account is a 401).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let token = crate::auth::new_token();
        self.shared.tokens.insert(
            &token,
            TokenSubject::ServiceAccount {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
        );
        token
    }

    /// A `kube::Client` acting as the ServiceAccount `namespace/name` (see
    /// [`Sandbox::service_account_token`]).
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::Client, SandboxError> {
        self.client_with_token(&self.service_account_token(namespace, name))
            .await
    }

    async fn client_from(kc: kube::config::Kubeconfig) -> Result<kube::Client, SandboxError> {
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| SandboxError::Kube(e.to_string()))?;
        kube::Client::try_from(cfg).map_err(|e| SandboxError::Kube(e.to_string()))
    }

    /// Fault switches of this sandbox.
    pub fn faults(&self) -> Faults<'_> {
        Faults {
            shared: &self.shared,
        }
    }

    /// The shared state (for in-process inspection).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving (and saves, when persistent).
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        self.shared.faults.drop_watches.send_modify(|g| *g += 1);
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        for h in self.background.drain(..) {
            h.abort();
        }
        if let Some(p) = &self.persist
            && let Err(e) = crate::persist::save(&self.shared, p)
        {
            tracing::warn!(error = %e, "could not save sandbox data");
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shared.faults.drop_watches.send_modify(|g| *g += 1);
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        for h in self.background.drain(..) {
            h.abort();
        }
    }
}

/// Fault switches; every switch keeps the stored data.
#[derive(Debug)]
pub struct Faults<'a> {
    shared: &'a Shared,
}

impl Faults<'_> {
    /// Closes every new connection at once (the cluster looks down) while `on`.
    pub fn refuse_connections(&self, on: bool) {
        self.shared.faults.refuse.store(on, Ordering::Relaxed);
    }

    /// Answers every request with this HTTP code (`None` restores normal answers).
    pub fn fail_with(&self, code: Option<u16>) {
        self.shared
            .faults
            .error_code
            .store(code.map_or(0, u32::from), Ordering::Relaxed);
    }

    /// Delays every answer (zero restores).
    pub fn delay(&self, d: Duration) {
        self.shared.faults.delay_ms.store(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Ends every open watch now.
    pub fn drop_watches(&self) {
        self.shared.faults.drop_watches.send_modify(|g| *g += 1);
    }

    /// Answers new watch requests with this HTTP code (`None` restores), so watchers must
    /// retry; with [`Faults::drop_watches`] this makes a watch outage.
    pub fn fail_watches_with(&self, code: Option<u16>) {
        self.shared
            .faults
            .watch_error
            .store(code.map_or(0, u32::from), Ordering::Relaxed);
    }

    /// Restores every switch.
    pub fn clear(&self) {
        self.fail_watches_with(None);
        self.refuse_connections(false);
        self.fail_with(None);
        self.delay(Duration::ZERO);
    }
}

/// Several named sandboxes, e.g. a hub and its members.
#[derive(Debug, Default)]
pub struct Clusters {
    map: BTreeMap<String, Sandbox>,
}

impl Clusters {
    /// Starts one sandbox per name, each configured by `configure`.
    pub async fn start(
        names: &[&str],
        configure: impl Fn(SandboxBuilder) -> SandboxBuilder,
    ) -> Result<Self, SandboxError> {
        let mut map = BTreeMap::new();
        for n in names {
            let sb = configure(SandboxBuilder::new(n)).start().await?;
            map.insert((*n).to_owned(), sb);
        }
        Ok(Self { map })
    }

    /// One sandbox by name.
    pub fn get(&self, name: &str) -> Option<&Sandbox> {
        self.map.get(name)
    }

    /// All sandboxes by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Sandbox)> {
        self.map.iter()
    }

    /// Writes `DIR/<name>.kubeconfig` for every sandbox and returns the paths.
    pub fn write_kubeconfigs(&self, dir: &Path) -> Result<Vec<PathBuf>, SandboxError> {
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
            path: dir.to_owned(),
            source,
        })?;
        self.map
            .iter()
            .map(|(n, s)| {
                let p = dir.join(format!("{n}.kubeconfig"));
                s.write_kubeconfig(&p).map(|()| p)
            })
            .collect()
    }

    /// Stops every sandbox.
    pub async fn stop(self) {
        for (_, s) in self.map {
            s.stop().await;
        }
    }
}

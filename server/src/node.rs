//! A running node: the QUIC endpoint, the accept loops and the background jobs.
//!
//! Cap'n Proto RPC objects are single-threaded (`Rc`), so a node runs on one thread inside a
//! `tokio::task::LocalSet`; the database drivers do their blocking work on their own threads.
//! [`spawn`] runs a node on a thread of its own, which is what `main` and the tests use.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use qpq_quic::{CertificateBundle, ALPN_NODE};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::log_key::LogKey;
use crate::metrics::{NodeMetrics, NodeProbe};
use crate::push::{self, Vapid};
use crate::rate::NodeRates;
use crate::rpc::{self, Ctx, WakeHub};
use crate::storage::{self, Storage};

/// How often expired envelopes, blobs and old idempotency records are removed.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);
/// How long idempotency records are kept (a client retrying later than this may duplicate).
const IDEMPOTENCY_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;
/// How long the hash of a claimed key package is kept: longer than a key package lives
/// (openmls gives it 12 weeks), after which clients refuse the package whoever offers it.
const CLAIMED_RETENTION_MS: u64 = 90 * 24 * 3600 * 1000;

/// A node bound to its address, ready to [`Node::run`].
pub struct Node {
    endpoint: quinn::Endpoint,
    ctx: Rc<Ctx>,
    fingerprint: String,
    /// Open connections per remote IP address.
    connections: Rc<RefCell<HashMap<IpAddr, usize>>>,
    /// The operator's listener (`--metrics-listen`), bound.
    metrics_listener: Option<tokio::net::TcpListener>,
}

/// Counts one open connection of an address for as long as it lives.
struct ConnectionSlot {
    ip: IpAddr,
    counts: Rc<RefCell<HashMap<IpAddr, usize>>>,
    _open: qpq_metrics::GaugeGuard,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut c = self.counts.borrow_mut();
        if let Some(n) = c.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
    }
}

impl Node {
    /// Opens the storage, loads or creates the certificate and binds the endpoint. Must be
    /// called inside a `LocalSet`.
    pub async fn bind(config: Config) -> anyhow::Result<Node> {
        let bundle = match (&config.cert, &config.key) {
            (Some(c), Some(k)) => CertificateBundle::from_pem_files(c, k)?,
            _ => {
                let names = vec![config.domain.clone(), "localhost".into(), config.listen.ip().to_string()];
                CertificateBundle::load_or_generate(&config.data_dir, &names, Duration::from_secs(365 * 86400))?
            }
        };
        let storage: Arc<dyn Storage> = storage::open(&config.database_url(), config.nats_url.as_deref())
            .await
            .with_context(|| "opening the database")?;
        let mut server_config = qpq_quic::server_config(&bundle, &[ALPN_NODE], config.idle_timeout())?;
        server_config.transport_config(Arc::new(qpq_quic::transport_with_streams(
            config.idle_timeout(),
            config.max_streams_per_connection.clamp(1, FIRST_STREAMS),
        )));
        let endpoint = qpq_quic::server_endpoint(server_config, config.listen)
            .with_context(|| format!("listening on {}", config.listen))?;
        let hub = WakeHub::start(&storage);
        let log_key = LogKey::load_or_create(&config.data_dir)?;
        let rates = NodeRates::new(&config.rates);
        // The first node of a cluster stores its candidate; every node then uses that one.
        let candidate = Vapid::generate(&mut rand::rngs::OsRng);
        let row = storage.vapid_key(&candidate, rpc::now_ms()).await.with_context(|| "loading the VAPID key")?;
        let vapid = Rc::new(Vapid::new(&row, &config.push_settings().subject).with_context(|| "the push contact")?);
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listening for metrics on {addr}"))?,
            ),
            None => None,
        };
        let metrics = NodeMetrics::new();
        Ok(Node {
            endpoint,
            ctx: Rc::new(Ctx { storage, config, hub, log_key, rates, vapid, metrics }),
            fingerprint: bundle.fingerprint(),
            connections: Rc::default(),
            metrics_listener,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("bound endpoint")
    }

    /// SHA-256 of its certificate (hex), for clients to pin.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Where `/metrics`, `/livez` and `/readyz` are served, if `--metrics-listen` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then closes every connection.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let operator = self.metrics_listener.take().map(|listener| {
            let probe = NodeProbe { metrics: self.ctx.metrics.clone(), storage: self.ctx.storage.clone() };
            tokio::spawn(qpq_metrics::http::serve(listener, Arc::new(probe)))
        });
        let storage = self.ctx.storage.clone();
        let expiry = tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
            loop {
                tick.tick().await;
                let now = rpc::now_ms();
                let (records, claims) =
                    (now.saturating_sub(IDEMPOTENCY_RETENTION_MS), now.saturating_sub(CLAIMED_RETENTION_MS));
                match storage.expire(now, records, claims).await {
                    Ok(s) if s != Default::default() => {
                        tracing::info!(
                            envelopes = s.envelopes,
                            blobs = s.blobs,
                            records = s.records,
                            channels = s.channels,
                            claimed = s.claimed,
                            links = s.links,
                            "expired"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "expiry failed"),
                }
            }
        });
        let pusher = tokio::task::spawn_local(push::run(
            self.ctx.storage.clone(),
            self.ctx.vapid.clone(),
            self.ctx.config.push_settings(),
            self.ctx.metrics.clone(),
        ));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let ip = incoming.remote_address().ip();
                    let slot = {
                        let mut counts = self.connections.borrow_mut();
                        let n = counts.entry(ip).or_insert(0);
                        if *n >= self.ctx.config.max_connections_per_address {
                            drop(counts);
                            self.ctx.metrics.connections_refused.inc();
                            tracing::debug!("connection refused: too many from one address");
                            incoming.refuse();
                            continue;
                        }
                        *n += 1;
                        ConnectionSlot { ip, counts: self.connections.clone(), _open: self.ctx.metrics.connections.track() }
                    };
                    let ctx = self.ctx.clone();
                    tokio::task::spawn_local(async move {
                        let _slot = slot;
                        match incoming.await {
                            Ok(conn) => serve_connection(ctx, conn).await,
                            Err(e) => tracing::debug!(error = %e, "handshake failed"),
                        }
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        expiry.abort();
        pusher.abort();
        if let Some(task) = operator {
            task.abort();
        }
        self.endpoint.close(0u32.into(), b"server shutting down");
        // Give peers a moment to learn of the close.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

async fn serve_connection(ctx: Rc<Ctx>, conn: quinn::Connection) {
    tracing::debug!(peer = %conn.remote_address(), "connection");
    // The channel binding of logins on this connection (the client computes the same value).
    let mut binding = [0u8; qpq_proto::LOGIN_BINDING_LEN];
    if conn.export_keying_material(&mut binding, qpq_proto::LOGIN_EXPORTER_LABEL, b"").is_err() {
        tracing::warn!("no TLS exporter on this connection; its logins cannot be bound to it");
        conn.close(0u32.into(), b"no TLS exporter");
        return;
    }
    let allowance = Rc::new(StreamAllowance::new(conn.clone(), ctx.config.max_streams_per_connection.max(1)));
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let open = allowance.opened();
                let ctx = ctx.clone();
                tokio::task::spawn_local(async move {
                    let _open = open;
                    rpc::serve_stream(ctx, send, recv, binding).await;
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, "connection closed");
                return;
            }
        }
    }
}

/// Streams a connection may have open at first. quinn keeps the state of every stream a peer
/// may open, made up front (about 70 bytes each): with the whole `max_streams_per_connection`
/// (10,000 by default, for a gateway carrying its browser sessions) allowed from the start,
/// every connection cost about 700 KiB of memory, idle or not. So a connection starts with
/// this many, and is allowed twice as many whenever three quarters of them are open, up to the
/// cap.
const FIRST_STREAMS: u32 = 32;

/// How many streams one connection may have open, raised as it uses them (see
/// [`FIRST_STREAMS`]).
struct StreamAllowance {
    conn: quinn::Connection,
    open: Cell<u32>,
    allowed: Cell<u32>,
    cap: u32,
}

impl StreamAllowance {
    fn new(conn: quinn::Connection, cap: u32) -> StreamAllowance {
        StreamAllowance { conn, open: 0.into(), allowed: cap.min(FIRST_STREAMS).into(), cap }
    }

    /// A stream was accepted; the returned guard says when it ends.
    fn opened(self: &Rc<Self>) -> OpenStream {
        let open = self.open.get() + 1;
        self.open.set(open);
        let allowed = self.allowed.get();
        if allowed < self.cap && u64::from(open) * 4 >= u64::from(allowed) * 3 {
            let more = allowed.saturating_mul(2).min(self.cap);
            self.allowed.set(more);
            self.conn.set_max_concurrent_bi_streams(more.into());
        }
        OpenStream(self.clone())
    }
}

/// One open stream of a connection, counted until dropped.
struct OpenStream(Rc<StreamAllowance>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}

/// A node running on its own thread.
pub struct RunningNode {
    addr: SocketAddr,
    fingerprint: String,
    metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningNode {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// SHA-256 of its certificate (hex).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Where its operator's listener (`/metrics`, `/livez`, `/readyz`) is, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// SHA-256 of its certificate.
    pub fn fingerprint_bytes(&self) -> [u8; 32] {
        hex::decode(&self.fingerprint).expect("hex").try_into().expect("32 bytes")
    }

    /// Stops gracefully (closes connections) and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a node on a new thread and returns once it is listening.
pub fn spawn(config: Config) -> anyhow::Result<RunningNode> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("qpq-node".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(anyhow::anyhow!(e)));
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            match Node::bind(config).await {
                Ok(node) => {
                    let _ = ready_tx.send(Ok((node.local_addr(), node.fingerprint().to_string(), node.metrics_addr())));
                    node.run(async {
                        let _ = stop_rx.await;
                    })
                    .await;
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        });
    })?;
    let (addr, fingerprint, metrics_addr) = ready_rx.recv().context("the node thread died while starting")??;
    Ok(RunningNode { addr, fingerprint, metrics_addr, stop: Some(stop_tx), thread: Some(thread) })
}

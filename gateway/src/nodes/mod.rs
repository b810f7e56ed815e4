//! The server nodes behind the gateway: one pooled QUIC connection per node, kept up in the
//! background, and the choice of a node for each new session.
//!
//! Every node has a supervisor task. It connects (trusting the node's certificate by its
//! SHA-256), marks the node up, and waits for the connection to close; then it marks the node
//! down and reconnects at once, and after failed attempts with a doubling wait (from 200 ms up
//! to `--node-retry-max-ms`). Sessions hold a clone of the connection they were opened on and
//! end when it closes, so clients reconnect and land on a node that is up. A session is never
//! moved: its RPC state lives on its node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qpq_quic::{Trust, ALPN_NODE};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, NODE_RETRY_MIN};
use crate::error::GatewayError;

mod trust;

use trust::{parse_node, NodeTrust};

/// Idle timeout of the pooled connections, kept alive by QUIC pings at a third of it: a node
/// that vanishes without closing (power loss, partition) is marked down within this time.
const NODE_IDLE: Duration = Duration::from_secs(10);

/// How a node is doing, as `/healthz` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeStatus {
    /// The node as given with `--node`.
    pub addr: String,
    /// Whether the gateway holds a live connection to it.
    pub up: bool,
    /// Sessions open on it through this gateway.
    pub sessions: usize,
}

/// No node could take a new session.
#[derive(Debug, thiserror::Error)]
#[error("no server node is available; try again shortly")]
pub struct NoNodeAvailable;

/// A new session's stream to a node. Dropping it ends the session on the node.
pub struct NodeStream {
    /// Bytes to the node.
    pub send: quinn::SendStream,
    /// Bytes from the node.
    pub recv: quinn::RecvStream,
    /// The connection the stream belongs to; the session ends when it closes.
    pub conn: quinn::Connection,
    /// The node, as given with `--node`.
    pub node: String,
    _count: SessionCount,
}

/// Counts a session against its node while alive.
struct SessionCount(Arc<Node>);

impl Drop for SessionCount {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Node {
    name: String,
    host: String,
    conn: Mutex<Option<quinn::Connection>>,
    sessions: AtomicUsize,
}

impl Node {
    fn live(&self) -> Option<quinn::Connection> {
        lock(&self.conn).clone().filter(|c| c.close_reason().is_none())
    }
}

/// The pool of node connections.
pub struct NodePool {
    nodes: Vec<Arc<Node>>,
    trust: NodeTrust,
    connect_timeout: Duration,
    retry_max: Duration,
    endpoints: Mutex<HashMap<bool, quinn::Endpoint>>,
    pick: Mutex<()>,
    up: watch::Sender<usize>,
    stop: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NodePool {
    /// A pool for the configured nodes; nothing connects until [`NodePool::start`].
    pub fn new(config: &Config) -> Result<Arc<Self>, GatewayError> {
        if config.nodes.is_empty() {
            return Err(GatewayError::NoNode);
        }
        let nodes = config
            .nodes
            .iter()
            .map(|n| {
                let host = parse_node(n)?;
                Ok(Arc::new(Node { name: n.clone(), host, conn: Mutex::new(None), sessions: AtomicUsize::new(0) }))
            })
            .collect::<Result<Vec<_>, GatewayError>>()?;
        Ok(Arc::new(NodePool {
            nodes,
            trust: NodeTrust::from_config(config)?,
            connect_timeout: config.node_connect_timeout(),
            retry_max: config.node_retry_max(),
            endpoints: Mutex::new(HashMap::new()),
            pick: Mutex::new(()),
            up: watch::channel(0).0,
            stop: CancellationToken::new(),
        }))
    }

    /// Starts a supervisor task per node (on the current tokio runtime).
    pub fn start(self: &Arc<Self>) {
        for node in &self.nodes {
            tokio::spawn(self.clone().supervise(node.clone()));
        }
    }

    /// The status of every node, in the order given.
    pub fn status(&self) -> Vec<NodeStatus> {
        self.nodes
            .iter()
            .map(|n| NodeStatus {
                addr: n.name.clone(),
                up: n.live().is_some(),
                sessions: n.sessions.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Waits until at least `n` nodes are up.
    pub async fn wait_up(&self, n: usize) {
        let mut rx = self.up.subscribe();
        let _ = rx.wait_for(|&up| up >= n).await;
    }

    /// Opens a stream for a new session on the node that is up and has the fewest sessions,
    /// trying the others if that fails.
    pub async fn open_session(&self) -> Result<NodeStream, NoNodeAvailable> {
        let mut tried: Vec<usize> = Vec::new();
        loop {
            let (i, node, conn) = {
                let _g = lock(&self.pick);
                let best = self
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !tried.contains(i))
                    .filter_map(|(i, n)| n.live().map(|c| (i, n, c)))
                    .min_by_key(|(_, n, _)| n.sessions.load(Ordering::Relaxed));
                let Some((i, node, conn)) = best else { return Err(NoNodeAvailable) };
                node.sessions.fetch_add(1, Ordering::Relaxed);
                (i, node.clone(), conn)
            };
            tried.push(i);
            let count = SessionCount(node.clone());
            match tokio::time::timeout(self.connect_timeout, conn.open_bi()).await {
                Ok(Ok((send, recv))) => {
                    return Ok(NodeStream { send, recv, conn, node: node.name.clone(), _count: count });
                }
                Ok(Err(e)) => tracing::debug!(node = %node.name, error = %e, "could not open a stream"),
                Err(_) => tracing::warn!(node = %node.name, "node has no room for another stream"),
            }
        }
    }

    /// Stops reconnecting, closes every connection and waits (up to `grace`) for the nodes to
    /// learn of it.
    pub async fn close(&self, grace: Duration) {
        self.stop.cancel();
        for n in &self.nodes {
            if let Some(c) = lock(&n.conn).take() {
                c.close(0u32.into(), b"gateway shutting down");
            }
        }
        self.publish_up();
        let endpoints: Vec<quinn::Endpoint> = lock(&self.endpoints).values().cloned().collect();
        for e in endpoints {
            let _ = tokio::time::timeout(grace, e.wait_idle()).await;
        }
    }

    fn publish_up(&self) {
        let up = self.nodes.iter().filter(|n| n.live().is_some()).count();
        self.up.send_replace(up);
    }

    async fn supervise(self: Arc<Self>, node: Arc<Node>) {
        let mut wait = NODE_RETRY_MIN;
        let mut failures = 0u32;
        loop {
            let attempt = tokio::select! {
                r = self.connect(&node) => r,
                _ = self.stop.cancelled() => return,
            };
            match attempt {
                Ok(conn) => {
                    *lock(&node.conn) = Some(conn.clone());
                    if self.stop.is_cancelled() {
                        conn.close(0u32.into(), b"gateway shutting down");
                        return;
                    }
                    self.publish_up();
                    tracing::info!(node = %node.name, "node up");
                    wait = NODE_RETRY_MIN;
                    failures = 0;
                    let reason = tokio::select! {
                        biased;
                        _ = self.stop.cancelled() => return,
                        r = conn.closed() => r,
                    };
                    if self.stop.is_cancelled() {
                        return;
                    }
                    lock(&node.conn).take();
                    self.publish_up();
                    tracing::warn!(node = %node.name, reason = %reason, "node down; its sessions are closed, new ones go to other nodes");
                    // Reconnect at once: a node that restarted is back quickly.
                    continue;
                }
                Err(e) => {
                    if failures == 0 {
                        tracing::warn!(node = %node.name, error = %e, "cannot connect to node; retrying in the background");
                    } else {
                        tracing::debug!(node = %node.name, error = %e, attempt = failures + 1, "cannot connect to node");
                    }
                    failures += 1;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.cancelled() => return,
            }
            wait = (wait * 2).min(self.retry_max);
        }
    }

    async fn connect(&self, node: &Node) -> Result<quinn::Connection, String> {
        let addr: SocketAddr = tokio::net::lookup_host(&node.name)
            .await
            .map_err(|e| format!("cannot resolve: {e}"))?
            .next()
            .ok_or("the name has no address")?;
        let pins = self.trust.current()?;
        let config = qpq_quic::client_config(&Trust::Pinned(pins), ALPN_NODE, NODE_IDLE).map_err(|e| e.to_string())?;
        let endpoint = self.endpoint(addr).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        let connecting = endpoint.connect_with(config, addr, &node.host).map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.connect_timeout)),
        }
    }

    /// The client endpoint for `addr`'s address family.
    fn endpoint(&self, addr: SocketAddr) -> std::io::Result<quinn::Endpoint> {
        let mut eps = lock(&self.endpoints);
        if let Some(e) = eps.get(&addr.is_ipv6()) {
            return Ok(e.clone());
        }
        let e = qpq_quic::client_endpoint(addr)?;
        eps.insert(addr.is_ipv6(), e.clone());
        Ok(e)
    }
}

//! The node's metrics (served on `--metrics-listen` as `/metrics`, beside `/livez` and
//! `/readyz`). Series are labelled by method, outcome, kind or transport only — never by user,
//! device, channel or address.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qpq_metrics::http::{BoxFuture, Probe};
use qpq_metrics::{Counter, Family, Gauge, Histogram, Registry, LATENCY_BUCKETS};
use qpq_proto::RemoteError;

use crate::storage::Storage;

/// Every series a node exports.
pub struct NodeMetrics {
    registry: Registry,
    calls: Arc<Family<Counter>>,
    latency: Arc<Family<Histogram>>,
    /// Messages accepted (first attempts, not retries), by kind.
    pub accepted: Arc<Family<Counter>>,
    /// Envelopes handed to devices, by fetch or through a subscription.
    pub envelopes_out: Arc<Counter>,
    /// Envelopes waiting in every queue, read from the database at each scrape.
    queued: Arc<Gauge>,
    /// QUIC connections open.
    pub connections: Arc<Gauge>,
    /// Connections refused because their address had too many.
    pub connections_refused: Arc<Counter>,
    /// RPC streams open (each is one client session, logged in or not).
    pub streams: Arc<Gauge>,
    /// Logged-in sessions alive.
    pub sessions: Arc<Gauge>,
    /// Subscriptions running.
    pub subscriptions: Arc<Gauge>,
    /// Web Push requests, by outcome.
    pub pushes: Arc<Family<Counter>>,
}

impl NodeMetrics {
    /// Every series, at zero.
    pub fn new() -> Arc<Self> {
        let r = Registry::new();
        Arc::new(NodeMetrics {
            calls: r.counters(
                "qpq_node_rpc_calls_total",
                "RPC calls answered, by method and outcome (ok, or the error code: rate_limited, quota_exceeded, ...).",
                &["method", "outcome"],
            ),
            latency: r.histograms(
                "qpq_node_rpc_duration_seconds",
                "Time from a call's arrival to its answer, by method.",
                &["method"],
                LATENCY_BUCKETS,
            ),
            accepted: r.counters(
                "qpq_node_messages_accepted_total",
                "Messages accepted for fan-out (retries not counted), by kind: application or commit.",
                &["kind"],
            ),
            envelopes_out: r.counter(
                "qpq_node_envelopes_out_total",
                "Envelopes handed to devices, by fetch or through a subscription.",
            ),
            queued: r.gauge(
                "qpq_node_queued_envelopes",
                "Envelopes waiting in every device queue (the cluster's database, read at scrape).",
            ),
            connections: r.gauge("qpq_node_connections", "QUIC connections open on this node."),
            connections_refused: r.counter(
                "qpq_node_connections_refused_total",
                "Connections refused because their address already had the most allowed.",
            ),
            streams: r.gauge("qpq_node_streams", "RPC streams open (one per client session, logged in or not)."),
            sessions: r.gauge("qpq_node_sessions", "Logged-in sessions alive on this node."),
            subscriptions: r.gauge("qpq_node_subscriptions", "Delivery subscriptions running on this node."),
            pushes: r.counters(
                "qpq_node_push_sends_total",
                "Web Push requests sent by this node, by outcome: sent, retry, gone or dropped.",
                &["outcome"],
            ),
            registry: r,
        })
    }

    /// Records one call: its time and its outcome.
    fn finish(&self, method: &'static str, took: Duration, result: &Result<(), capnp::Error>) {
        self.latency.with(&[method]).observe_duration(took);
        let outcome = match result {
            Ok(()) => "ok",
            Err(e) => RemoteError::from_description(&e.extra).code.map_or("failed", |c| c.as_str()),
        };
        self.calls.with(&[method, outcome]).inc();
    }
}

/// Runs an RPC method's body and records it under `method`.
pub(crate) async fn track<F>(metrics: Arc<NodeMetrics>, method: &'static str, call: F) -> Result<(), capnp::Error>
where
    F: Future<Output = Result<(), capnp::Error>> + 'static,
{
    let start = Instant::now();
    let result = call.await;
    metrics.finish(method, start.elapsed(), &result);
    result
}

/// What the operator's listener asks of a node.
pub(crate) struct NodeProbe {
    pub metrics: Arc<NodeMetrics>,
    pub storage: Arc<dyn Storage>,
}

impl Probe for NodeProbe {
    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(async move {
            match self.storage.queued_envelopes().await {
                Ok(n) => self.metrics.queued.set(i64::try_from(n).unwrap_or(i64::MAX)),
                Err(e) => tracing::warn!(error = %e, "metrics: could not count the queues"),
            }
            self.metrics.registry.render()
        })
    }

    /// Ready when the database answers.
    fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.storage.queued_envelopes().await.map(|_| ()).map_err(|e| format!("the database does not answer ({e})"))
        })
    }
}

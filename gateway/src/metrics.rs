//! The gateway's metrics (served on `--metrics-listen` as `/metrics`, beside `/livez` and
//! `/readyz`). Labels are transports, directions and reasons only — never an address, origin
//! or node name.

use std::sync::Arc;

use qpq_metrics::{Counter, Family, Gauge, Histogram, Registry, LATENCY_BUCKETS};

/// Every series a gateway exports.
pub struct GatewayMetrics {
    registry: Registry,
    /// Browser sessions alive, by transport (websocket, webtransport).
    pub sessions: Arc<Family<Gauge>>,
    /// Browser sessions admitted, by transport.
    pub opened: Arc<Family<Counter>>,
    /// Sessions refused before they began, by reason.
    pub refused: Arc<Family<Counter>>,
    /// Time to open a session's stream to a node, by transport.
    pub setup: Arc<Family<Histogram>>,
    /// Sessions ended, by reason (client_closed, idle, node_lost, ...).
    pub ended: Arc<Family<Counter>>,
    /// Frames (browser messages, node reads) piped, by direction.
    pub frames: Arc<Family<Counter>>,
    /// Bytes piped, by direction.
    pub bytes: Arc<Family<Counter>>,
    /// Nodes the gateway holds a live connection to (set at scrape).
    pub nodes_up: Arc<Gauge>,
    /// Nodes configured.
    pub nodes: Arc<Gauge>,
}

impl GatewayMetrics {
    /// Every series, at zero.
    pub fn new() -> Arc<Self> {
        let r = Registry::new();
        Arc::new(GatewayMetrics {
            sessions: r.gauges("qpq_gateway_sessions", "Browser sessions alive, by transport.", &["transport"]),
            opened: r.counters("qpq_gateway_sessions_opened_total", "Browser sessions admitted, by transport.", &["transport"]),
            refused: r.counters(
                "qpq_gateway_sessions_refused_total",
                "Sessions refused before they began, by reason: origin, full, per_address, rate_limited, no_node.",
                &["reason"],
            ),
            setup: r.histograms(
                "qpq_gateway_session_setup_seconds",
                "Time to open a session's stream to a node, by transport.",
                &["transport"],
                LATENCY_BUCKETS,
            ),
            ended: r.counters("qpq_gateway_sessions_ended_total", "Sessions ended, by reason.", &["reason"]),
            frames: r.counters(
                "qpq_gateway_frames_total",
                "Frames piped, by direction: to_node (browser messages) or to_client (node reads).",
                &["direction"],
            ),
            bytes: r.counters("qpq_gateway_bytes_total", "Bytes piped, by direction: to_node or to_client.", &["direction"]),
            nodes_up: r.gauge("qpq_gateway_nodes_up", "Server nodes this gateway holds a live connection to."),
            nodes: r.gauge("qpq_gateway_nodes", "Server nodes configured."),
            registry: r,
        })
    }

    /// The label of a transport as the session code names it ("WebSocket", "WebTransport").
    pub fn transport(name: &str) -> &'static str {
        match name {
            "WebSocket" => "websocket",
            "WebTransport" => "webtransport",
            _ => "other",
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

impl std::fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayMetrics").finish_non_exhaustive()
    }
}

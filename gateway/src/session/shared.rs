//! [`Sessions`]: what every browser session shares, whichever transport and route carries
//! it — the node pool, the session limits, the origin policy, the idle timeout and shutdown
//! signal, the message-size limit, and the security headers answers outside the router
//! carry.

use std::sync::{Arc, RwLock};

use axum::http::{HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::GatewayError;
use crate::metrics::GatewayMetrics;
use crate::nodes::NodePool;
use crate::security::OriginPolicy;
use crate::session::limits::SessionLimiter;
use crate::session::SessionControl;

/// What every session shares. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    nodes: Arc<NodePool>,
    limiter: SessionLimiter,
    origins: OriginPolicy,
    control: SessionControl,
    max_message_bytes: usize,
    headers: Vec<(HeaderName, HeaderValue)>,
    own_ports: RwLock<Vec<u16>>,
}

impl Sessions {
    /// Builds the session side from the configuration, the node pool and the security
    /// headers (checked by the caller).
    pub(crate) fn new(
        config: &Config,
        nodes: Arc<NodePool>,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Self, GatewayError> {
        Ok(Sessions {
            inner: Arc::new(Inner {
                nodes,
                limiter: SessionLimiter::new(config.max_sessions, config.max_sessions_per_ip)
                    .with_rate(config.sessions_per_min_per_ip),
                origins: OriginPolicy::new(&config.allow_origins)?,
                control: SessionControl {
                    idle_timeout: config.idle_timeout(),
                    shutdown: CancellationToken::new(),
                    metrics: GatewayMetrics::new(),
                },
                max_message_bytes: config.max_message_bytes,
                headers,
                own_ports: RwLock::new(Vec::new()),
            }),
        })
    }

    /// The server nodes.
    pub fn nodes(&self) -> &Arc<NodePool> {
        &self.inner.nodes
    }

    /// The session counter.
    pub fn limiter(&self) -> &SessionLimiter {
        &self.inner.limiter
    }

    /// The idle timeout and the shutdown signal.
    pub fn control(&self) -> &SessionControl {
        &self.inner.control
    }

    /// What `/metrics` reports.
    pub fn metrics(&self) -> &Arc<GatewayMetrics> {
        &self.inner.control.metrics
    }

    /// The largest message a browser may send (`--max-message-bytes`).
    pub fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes
    }

    pub(crate) fn origins(&self) -> &OriginPolicy {
        &self.inner.origins
    }

    /// The security headers, for answers given outside the router (WebTransport `CONNECT`).
    pub(crate) fn security_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.inner.headers
    }

    /// The ports of the gateway's own listeners: pages served from any of them are its own.
    pub(crate) fn own_ports(&self) -> Vec<u16> {
        self.inner.own_ports.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_own_ports(&self, ports: Vec<u16>) {
        *self.inner.own_ports.write().unwrap_or_else(|e| e.into_inner()) = ports;
    }
}

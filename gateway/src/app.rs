//! The HTTP application: shared state and the router, built from small route functions.

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use axum::middleware;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::GatewayError;
use crate::limits::SessionLimiter;
use crate::nodes::NodePool;
use crate::security::{self, OriginPolicy};
use crate::session::SessionControl;
use crate::{assets, health, websocket};

/// What every handler shares. Cheap to clone (a handle).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    nodes: Arc<NodePool>,
    limiter: SessionLimiter,
    origins: OriginPolicy,
    control: SessionControl,
    max_message_bytes: usize,
    www: PathBuf,
    pkg: PathBuf,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl AppState {
    /// Checks the configuration and builds the state. The node pool does not connect until
    /// [`NodePool::start`] (which [`crate::Gateway::bind`] calls).
    pub fn new(config: &Config) -> Result<Self, GatewayError> {
        Ok(AppState {
            inner: Arc::new(Shared {
                nodes: NodePool::new(config)?,
                limiter: SessionLimiter::new(config.max_sessions, config.max_sessions_per_ip),
                origins: OriginPolicy::new(&config.allow_origins)?,
                control: SessionControl { idle_timeout: config.idle_timeout(), shutdown: CancellationToken::new() },
                max_message_bytes: config.max_message_bytes,
                www: config.www.clone(),
                pkg: config.pkg.clone(),
                headers: security::headers(&config.frame_ancestors)?,
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

    /// Cancelling it closes every session with 1001 "going away".
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.control.shutdown
    }

    pub(crate) fn origins(&self) -> &OriginPolicy {
        &self.inner.origins
    }

    pub(crate) fn session_control(&self) -> &SessionControl {
        &self.inner.control
    }

    pub(crate) fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes
    }
}

/// The gateway's HTTP application: `/ws`, `/healthz` and the static files, with the security
/// headers and `Cache-Control` on every response (404s included).
pub fn app(state: AppState) -> Router {
    let headers = state.inner.headers.clone();
    let mut router = Router::new()
        .merge(websocket::routes())
        .merge(health::routes())
        .merge(assets::routes(&state.inner.www, &state.inner.pkg))
        .with_state(state)
        .layer(middleware::from_fn(assets::cache_control));
    for layer in security::header_layers(headers) {
        router = router.layer(layer);
    }
    router
}

//! The HTTP application: shared state and the router, built from small route functions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;
use crate::error::GatewayError;
use crate::limits::SessionLimiter;
use crate::nodes::NodePool;
use crate::security::{self, OriginPolicy};
use crate::session::SessionControl;
use crate::tls::Certificates;
use crate::{assets, echo, health, transport_info, websocket};

/// What every handler shares. Cheap to clone (a handle).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

/// The addresses the gateway serves on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listeners {
    /// Plain HTTP (`--listen`).
    pub http: SocketAddr,
    /// HTTPS on TCP (`--https-listen`), unless `--no-https`.
    pub https: Option<SocketAddr>,
    /// Whether HTTP/3 and WebTransport are served on the HTTPS port (UDP).
    pub http3: bool,
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
    certificates: Option<Certificates>,
    listeners: RwLock<Listeners>,
    webtransport_url: Option<String>,
    bench_echo: bool,
}

impl AppState {
    /// Checks the configuration and builds the state (generating a development certificate
    /// unless one is configured or HTTPS is off). The node pool does not connect until
    /// [`NodePool::start`] (which [`crate::Gateway::bind`] calls).
    pub fn new(config: &Config) -> Result<Self, GatewayError> {
        if let Some(u) = &config.webtransport_url {
            if !u.starts_with("https://") || u.contains(char::is_whitespace) {
                return Err(GatewayError::BadWebTransportUrl(u.clone()));
            }
        }
        let certificates = if config.no_https { None } else { Some(Certificates::from_config(config)?) };
        let listeners = Listeners {
            http: config.listen,
            https: (!config.no_https).then_some(config.https_listen),
            http3: config.serves_http3(),
        };
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
                certificates,
                listeners: RwLock::new(listeners),
                webtransport_url: config.webtransport_url.clone(),
                bench_echo: config.bench_echo,
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

    /// The HTTPS/HTTP3 certificates (none with `--no-https`).
    pub fn certificates(&self) -> Option<&Certificates> {
        self.inner.certificates.as_ref()
    }

    /// Where the gateway listens (the configured addresses until it is bound).
    pub fn listeners(&self) -> Listeners {
        *self.inner.listeners.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_listeners(&self, l: Listeners) {
        *self.inner.listeners.write().unwrap_or_else(|e| e.into_inner()) = l;
    }

    /// The ports of the gateway's own listeners: pages served from any of them are its own.
    pub(crate) fn own_ports(&self) -> Vec<u16> {
        let l = self.listeners();
        std::iter::once(l.http.port()).chain(l.https.map(|a| a.port())).filter(|&p| p != 0).collect()
    }

    pub(crate) fn webtransport_url(&self) -> Option<&str> {
        self.inner.webtransport_url.as_deref()
    }

    /// Whether `/echo` is served (`--bench-echo`).
    pub(crate) fn bench_echo(&self) -> bool {
        self.inner.bench_echo
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

    pub(crate) fn security_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.inner.headers
    }
}

/// The gateway's HTTP application: `/ws`, `/healthz`, `/transport.json`, the static
/// files and, with `--bench-echo` only, `/echo`, with the security headers and `Cache-Control` on every response (404s included).
pub fn app(state: AppState) -> Router {
    let headers = state.inner.headers.clone();
    let mut router = Router::new().merge(websocket::routes());
    if state.bench_echo() {
        router = router.merge(echo::routes());
    }
    let mut router = router
        .merge(health::routes())
        .merge(transport_info::routes())
        .merge(assets::routes(&state.inner.www, &state.inner.pkg))
        .with_state(state)
        .layer(middleware::from_fn(assets::cache_control));
    for layer in security::header_layers(headers) {
        router = router.layer(layer);
    }
    router
}

/// The application on the HTTPS listeners (TCP and HTTP/3): the same as [`app`], plus
/// `Alt-Svc: h3=":PORT"; ma=86400` announcing HTTP/3 when it is served.
pub fn https_app(state: AppState) -> Router {
    let l = state.listeners();
    let router = app(state);
    match l.https.filter(|_| l.http3) {
        Some(addr) => {
            let value = HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", addr.port())).expect("header value");
            router.layer(SetResponseHeaderLayer::overriding(header::ALT_SVC, value))
        }
        None => router,
    }
}

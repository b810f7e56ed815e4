//! [`AppState`]: what the gateway's routes and listeners share, built once from the
//! configuration. Route sets take it as an argument ([`crate::routes`]); the session side
//! of it is [`Sessions`], which the session adapters get without the rest.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::GatewayError;
use crate::listen::tls::Certificates;
use crate::nodes::NodePool;
use crate::security;
use crate::session::limits::SessionLimiter;
use crate::session::Sessions;

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

impl Listeners {
    /// The ports of the TCP listeners (pages come from these), bound ones only.
    fn page_ports(&self) -> Vec<u16> {
        std::iter::once(self.http.port()).chain(self.https.map(|a| a.port())).filter(|&p| p != 0).collect()
    }
}

struct Shared {
    sessions: Sessions,
    www: PathBuf,
    pkg: PathBuf,
    certificates: Option<Certificates>,
    listeners: RwLock<Listeners>,
    webtransport_url: Option<String>,
    bench_echo: bool,
    /// The Content-Security-Policy of the widget's page (`--frame-ancestors`).
    embed_page_csp: HeaderValue,
    healthz_details: bool,
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
        let embed_page_csp = security::embed_page_csp(&config.frame_ancestors)?;
        let sessions = Sessions::new(config, NodePool::new(config)?, security::headers())?;
        sessions.set_own_ports(listeners.page_ports());
        Ok(AppState {
            inner: Arc::new(Shared {
                sessions,
                www: config.www.clone(),
                pkg: config.pkg.clone(),
                certificates,
                listeners: RwLock::new(listeners),
                webtransport_url: config.webtransport_url.clone(),
                bench_echo: config.bench_echo,
                embed_page_csp,
                healthz_details: config.healthz_details,
            }),
        })
    }

    /// Whether `/healthz` lists the nodes.
    pub fn healthz_details(&self) -> bool {
        self.inner.healthz_details
    }

    /// The server nodes.
    pub fn nodes(&self) -> &Arc<NodePool> {
        self.inner.sessions.nodes()
    }

    /// The session counter.
    pub fn limiter(&self) -> &SessionLimiter {
        self.inner.sessions.limiter()
    }

    /// Cancelling it closes every session with 1001 "going away".
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.sessions.control().shutdown
    }

    /// What every session shares.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The HTTPS/HTTP3 certificates (none with `--no-https`).
    pub fn certificates(&self) -> Option<&Certificates> {
        self.inner.certificates.as_ref()
    }

    /// Where the gateway listens (the configured addresses until it is bound).
    pub fn listeners(&self) -> Listeners {
        *self.inner.listeners.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the bound addresses (an ephemeral port is known only then); pages from any
    /// of them are the gateway's own for the origin check.
    pub(crate) fn set_listeners(&self, l: Listeners) {
        *self.inner.listeners.write().unwrap_or_else(|e| e.into_inner()) = l;
        self.inner.sessions.set_own_ports(l.page_ports());
    }

    pub(crate) fn webtransport_url(&self) -> Option<&str> {
        self.inner.webtransport_url.as_deref()
    }

    /// Whether `/echo` is served (`--bench-echo`).
    pub(crate) fn bench_echo(&self) -> bool {
        self.inner.bench_echo
    }

    /// The web app directory (`--www`) and the wasm-bindgen output (`--pkg`).
    pub(crate) fn asset_dirs(&self) -> (&Path, &Path) {
        (&self.inner.www, &self.inner.pkg)
    }

    /// The Content-Security-Policy of the widget's page, framed by `--frame-ancestors`.
    pub(crate) fn embed_page_csp(&self) -> &HeaderValue {
        &self.inner.embed_page_csp
    }

    pub(crate) fn security_headers(&self) -> &[(HeaderName, HeaderValue)] {
        self.inner.sessions.security_headers()
    }
}

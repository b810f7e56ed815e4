//! Running the gateway: bind every listener, serve until told to stop, shut down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use qpq_metrics::http::{BoxFuture, Probe};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{app, https_app};
use crate::config::Config;
use crate::error::GatewayError;
use crate::listen::{http3, https, plain};
use crate::routes;
use crate::state::{AppState, Listeners};

/// A gateway bound to its addresses, ready to [`Gateway::run`].
pub struct Gateway {
    listener: tokio::net::TcpListener,
    /// The operator's listener (`--metrics-listen`).
    metrics: Option<tokio::net::TcpListener>,
    https: Option<tokio::net::TcpListener>,
    quic: Option<quinn::Endpoint>,
    state: AppState,
    grace: Duration,
}

impl Gateway {
    /// Checks the configuration, binds the listeners (plain HTTP; HTTPS on TCP and HTTP/3 on
    /// the same UDP port unless turned off) and starts connecting to the nodes.
    pub async fn bind(config: Config) -> Result<Gateway, GatewayError> {
        let state = AppState::new(&config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| GatewayError::Listen { addr: config.listen, source })?;
        let https = if config.no_https {
            None
        } else {
            Some(
                tokio::net::TcpListener::bind(config.https_listen)
                    .await
                    .map_err(|source| GatewayError::Listen { addr: config.https_listen, source })?,
            )
        };
        let metrics = match config.metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr).await.map_err(|source| GatewayError::Listen { addr, source })?,
            ),
            None => None,
        };
        let https_addr = https.as_ref().map(|l| l.local_addr().expect("bound listener"));
        let quic = match (https_addr, state.certificates()) {
            // The same port number on UDP (it matters when the TCP port was ephemeral).
            (Some(addr), Some(certs)) if config.serves_http3() => Some(http3::endpoint(addr, certs, state.sessions())?),
            _ => None,
        };
        state.set_listeners(Listeners {
            http: listener.local_addr().expect("bound listener"),
            https: https_addr,
            http3: quic.is_some(),
        });
        state.nodes().start();
        if !config.www.join("index.html").is_file() {
            tracing::warn!(www = %config.www.display(), "no index.html in the web app directory: / will be 404");
        }
        Ok(Gateway { listener, metrics, https, quic, state, grace: config.shutdown_grace() })
    }

    /// The plain-HTTP address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Every address it serves on.
    pub fn listeners(&self) -> Listeners {
        self.state.listeners()
    }

    /// Where `/metrics`, `/livez` and `/readyz` are served, if `--metrics-listen` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (nodes, sessions, certificates).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves. Then it stops accepting, closes every session
    /// (WebSocket 1001 "going away", WebTransport code 1001), waits (up to the grace period)
    /// for them to end, and closes the node connections.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let token = self.state.shutdown_token().clone();
        let operator = self
            .metrics
            .map(|listener| tokio::spawn(qpq_metrics::http::serve(listener, Arc::new(GatewayProbe(self.state.clone())))));
        let mut servers: Vec<(&'static str, JoinHandle<()>)> = Vec::new();
        servers.push(("HTTP", plain::serve(self.listener, app(self.state.clone()), token.clone())));
        if let (Some(tcp), Some(certs)) = (self.https, self.state.certificates()) {
            match certs.tcp_config().map(|tls| https::serve(tcp, tls, https_app(self.state.clone()), token.clone())) {
                Ok(Ok(server)) => servers.push(("HTTPS", server)),
                Ok(Err(e)) => tracing::error!(error = %e, "HTTPS listener failed; serving without it"),
                Err(e) => tracing::error!(error = %e, "HTTPS configuration failed; serving without it"),
            }
            tokio::spawn(certs.clone().renew(token.clone()));
        }
        if let Some(endpoint) = self.quic {
            let server = http3::serve(endpoint, https_app(self.state.clone()), routes::webtransport(&self.state));
            servers.push(("HTTP/3", tokio::spawn(server)));
        }
        let stopped_by_itself = futures::future::select_all(servers.iter_mut().map(|(_, h)| h));
        tokio::select! {
            () = shutdown => {}
            (r, i, _) = stopped_by_itself => {
                tracing::error!(server = servers[i].0, result = ?r, "a server stopped by itself");
            }
        }
        tracing::info!(sessions = self.state.limiter().active(), "shutting down");
        token.cancel();
        let limiter = self.state.limiter().clone();
        let drained = async {
            for (_, h) in &mut servers {
                let _ = h.await;
            }
            limiter.drained().await;
        };
        if tokio::time::timeout(self.grace, drained).await.is_err() {
            tracing::warn!(sessions = limiter.active(), "sessions still open after the grace period; dropping them");
            for (_, h) in &servers {
                h.abort();
            }
        }
        tracing::debug!("sessions closed; closing node connections");
        self.state.nodes().close(self.grace).await;
        if let Some(task) = operator {
            task.abort();
        }
        tracing::info!("stopped");
    }
}

/// What the operator's listener asks of a gateway.
struct GatewayProbe(AppState);

impl Probe for GatewayProbe {
    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(async move {
            let nodes = self.0.nodes().status();
            let metrics = self.0.sessions().metrics();
            metrics.nodes.set(nodes.len() as i64);
            metrics.nodes_up.set(nodes.iter().filter(|n| n.up).count() as i64);
            metrics.render()
        })
    }

    /// Ready while at least one node is up (what `/healthz` says publicly).
    fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if self.0.nodes().status().iter().any(|n| n.up) {
                Ok(())
            } else {
                Err("no server node is up".into())
            }
        })
    }
}

/// A gateway running on a thread of its own (for tests and benchmarks).
pub struct RunningGateway {
    listeners: Listeners,
    metrics_addr: Option<SocketAddr>,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningGateway {
    /// The plain-HTTP address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listeners.http
    }

    /// The HTTPS (TCP) and HTTP/3 (UDP) address, unless HTTPS is off.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.listeners.https
    }

    /// Every address it serves on.
    pub fn listeners(&self) -> Listeners {
        self.listeners
    }

    /// Where its operator's listener (`/metrics`, `/livez`, `/readyz`) is, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The shared state (nodes, sessions, certificates).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Shuts down gracefully and waits for the thread.
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

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a gateway on a new thread (with its own two-worker runtime) and returns once it
/// listens.
pub fn spawn(config: Config) -> Result<RunningGateway, GatewayError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("qpq-gateway".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(GatewayError::Startup(e.to_string())));
                    return;
                }
            };
            rt.block_on(async move {
                match Gateway::bind(config).await {
                    Ok(gw) => {
                        let _ = ready_tx.send(Ok((gw.listeners(), gw.metrics_addr(), gw.state().clone())));
                        gw.run(async {
                            let _ = stop_rx.await;
                        })
                        .await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| GatewayError::Startup(e.to_string()))?;
    let (listeners, metrics_addr, state) =
        ready_rx.recv().map_err(|_| GatewayError::Startup("the gateway thread died while starting".into()))??;
    Ok(RunningGateway { listeners, metrics_addr, state, stop: Some(stop_tx), thread: Some(thread) })
}

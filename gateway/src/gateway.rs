//! Running the gateway: bind, serve until told to stop, shut down gracefully.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::app::{app, AppState};
use crate::config::Config;
use crate::error::GatewayError;

/// A gateway bound to its address, ready to [`Gateway::run`].
pub struct Gateway {
    listener: tokio::net::TcpListener,
    state: AppState,
    grace: Duration,
}

impl Gateway {
    /// Checks the configuration, binds the listener and starts connecting to the nodes.
    pub async fn bind(config: Config) -> Result<Gateway, GatewayError> {
        let state = AppState::new(&config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| GatewayError::Listen { addr: config.listen, source })?;
        state.nodes().start();
        if !config.www.join("index.html").is_file() {
            tracing::warn!(www = %config.www.display(), "no index.html in the web app directory: / will be 404");
        }
        Ok(Gateway { listener, state, grace: config.shutdown_grace() })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// The shared state (nodes, sessions).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves. Then it stops accepting, closes every session with
    /// 1001 "going away", waits (up to the grace period) for them to end, and closes the node
    /// connections.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let token = self.state.shutdown_token().clone();
        let service = app(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, service).with_graceful_shutdown(token.clone().cancelled_owned());
        let mut server = tokio::spawn(server.into_future());
        tokio::select! {
            () = shutdown => {}
            r = &mut server => {
                tracing::error!(result = ?r, "the HTTP server stopped by itself");
            }
        }
        tracing::info!(sessions = self.state.limiter().active(), "shutting down");
        token.cancel();
        let limiter = self.state.limiter().clone();
        let drained = async {
            let _ = (&mut server).await;
            limiter.drained().await;
        };
        if tokio::time::timeout(self.grace, drained).await.is_err() {
            tracing::warn!(sessions = limiter.active(), "sessions still open after the grace period; dropping them");
            server.abort();
        }
        tracing::debug!("sessions closed; closing node connections");
        self.state.nodes().close(self.grace).await;
        tracing::info!("stopped");
    }
}

/// A gateway running on a thread of its own (for tests and benchmarks).
pub struct RunningGateway {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningGateway {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (nodes, sessions).
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
                        let _ = ready_tx.send(Ok((gw.local_addr(), gw.state().clone())));
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
    let (addr, state) =
        ready_rx.recv().map_err(|_| GatewayError::Startup("the gateway thread died while starting".into()))??;
    Ok(RunningGateway { addr, state, stop: Some(stop_tx), thread: Some(thread) })
}

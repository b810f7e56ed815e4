//! HTTPS on TCP: a listener that completes TLS handshakes (HTTP/2 or HTTP/1.1 by ALPN) in
//! the background and hands axum the finished connections.
//!
//! Handshakes run concurrently, each within [`HANDSHAKE_TIMEOUT`], so a slow or silent
//! client never holds up the others; failed handshakes are logged at debug level.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Longest time a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` over TLS on `tcp` on a task of its own until `stop`.
pub(crate) fn serve(
    tcp: TcpListener,
    tls: rustls::ServerConfig,
    router: Router,
    stop: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TlsListener::new(tcp, tls, stop.clone())?;
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener.tap_io(|_| {}), service).with_graceful_shutdown(stop.cancelled_owned());
    Ok(tokio::spawn(async move {
        let _ = server.into_future().await;
    }))
}

/// Accepted, handshaken TLS connections for `axum::serve`.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` until `stop`.
    fn new(tcp: TcpListener, tls: rustls::ServerConfig, stop: CancellationToken) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    () = stop.cancelled() => return,
                };
                let (mut socket, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment, as axum does.
                        tracing::warn!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                super::no_delay(&mut socket);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, remote)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // Stopped: the server is shutting down and will not ask again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

//! QUIC streams to a server node.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{FutureExt, LocalBoxFuture};
use qpq_client::{BoundStream, Stream};
use qpq_proto::{LOGIN_BINDING_LEN, LOGIN_EXPORTER_LABEL};
use qpq_quic::{Trust, ALPN_NODE};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// Opens one QUIC connection to a node and a bidirectional stream per session on it,
/// reconnecting when the connection has closed.
#[derive(Clone)]
pub struct QuicConnector {
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    server_name: String,
    conn: Rc<RefCell<Option<quinn::Connection>>>,
}

impl QuicConnector {
    /// A connector to `addr` (whose certificate is checked as `trust` says, for name
    /// `server_name`). Must be created inside a tokio runtime.
    pub fn new(addr: SocketAddr, server_name: &str, trust: &Trust) -> anyhow::Result<Self> {
        let mut endpoint = qpq_quic::client_endpoint(addr)?;
        endpoint.set_default_client_config(qpq_quic::client_config(trust, ALPN_NODE, Duration::from_secs(30))?);
        Ok(QuicConnector { endpoint, addr, server_name: server_name.to_string(), conn: Rc::new(RefCell::new(None)) })
    }

    /// A connector trusting the certificate with this SHA-256 fingerprint (hex).
    pub fn pinned(addr: SocketAddr, fingerprint: &str) -> anyhow::Result<Self> {
        let pin: [u8; 32] = hex::decode(fingerprint.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("a certificate fingerprint is 64 hex digits"))?;
        Self::new(addr, "localhost", &Trust::Pinned(vec![pin]))
    }

    /// Closes the connection (every session on it ends), as if the network dropped.
    pub fn drop_connection(&self) {
        if let Some(c) = self.conn.borrow_mut().take() {
            c.close(0u32.into(), b"client closed");
        }
    }

    async fn open(self) -> Result<BoundStream, String> {
        let existing = self.conn.borrow().clone().filter(|c| c.close_reason().is_none());
        let conn = match existing {
            Some(c) => c,
            None => {
                let connecting = self
                    .endpoint
                    .connect(self.addr, &self.server_name)
                    .map_err(|e| format!("cannot connect to {}: {e}", self.addr))?;
                let c = connecting.await.map_err(|e| format!("cannot connect to {}: {e}", self.addr))?;
                *self.conn.borrow_mut() = Some(c.clone());
                c
            }
        };
        let (send, recv) = conn.open_bi().await.map_err(|e| format!("the connection to {} failed: {e}", self.addr))?;
        let mut binding = [0u8; LOGIN_BINDING_LEN];
        conn.export_keying_material(&mut binding, LOGIN_EXPORTER_LABEL, b"")
            .map_err(|_| format!("the connection to {} has no TLS exporter", self.addr))?;
        Ok(((Box::new(recv.compat()), Box::new(send.compat_write())), Some(binding)))
    }
}

impl qpq_client::Connector for QuicConnector {
    fn connect(&self) -> LocalBoxFuture<'static, Result<Stream, String>> {
        self.clone().open().map(|r| r.map(|(s, _)| s)).boxed_local()
    }

    fn connect_bound(&self) -> LocalBoxFuture<'static, Result<BoundStream, String>> {
        self.clone().open().boxed_local()
    }

    fn transport_name(&self) -> String {
        "QUIC".into()
    }
}

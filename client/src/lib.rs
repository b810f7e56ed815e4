//! The quicproquo client: everything between the engine and a byte stream to a server.
//!
//! [`Client`] owns one device's [`qpq_core::Engine`], persists every step through a
//! [`StateStore`] before acting on it, and speaks the NodeService Cap'n Proto API over any
//! `AsyncRead + AsyncWrite` pair a [`Connector`] provides: a QUIC stream natively, a
//! WebSocket or WebTransport stream in the browser. It reconnects by itself, keeps the
//! outbox moving, takes deliveries through a subscription and acknowledges them only after
//! they are stored.
//!
//! It deliberately knows no sockets, clocks or storage engines: those come from the shell
//! through [`Connector`], [`Platform`] and [`StateStore`]. It compiles natively and to
//! `wasm32-unknown-unknown`.

#![allow(async_fn_in_trait)]

mod api;
pub mod backup;
mod client;
mod coalesce;
pub mod device_label;
mod error;
pub mod files;
pub mod link;
pub mod passphrase;
mod transfer;

pub use api::{Connection, IceServer, Session};
pub use client::{BackupProgress, Client, ClientEvent, ConnState, LinkProgress, LinkedDevice, OwnDevice, Restored};
pub use error::ClientError;
pub use transfer::{clean_file_name, clean_mime};

use futures::future::{FutureExt, LocalBoxFuture};
use futures::io::{AsyncRead, AsyncWrite};
use qpq_core::Changeset;
use qpq_proto::LOGIN_BINDING_LEN;

/// A byte stream to a server node, split in its two directions.
pub type Stream = (Box<dyn AsyncRead + Unpin>, Box<dyn AsyncWrite + Unpin>);

/// A stream and, when the transport gives one, the TLS exporter value of its connection (the
/// login's channel binding).
pub type BoundStream = (Stream, Option<[u8; LOGIN_BINDING_LEN]>);

/// Opens byte streams to a server (one per session).
pub trait Connector: 'static {
    /// Opens a new stream. The error text is shown to people, so say what failed.
    fn connect(&self) -> LocalBoxFuture<'static, Result<Stream, String>>;
    /// Opens a new stream, with the TLS exporter value of the connection it runs on when the
    /// transport reaches the node itself: a login signs it, so the signature is worthless on any
    /// other connection (`qpq_types::login_bytes`). The default binds nothing, which is all a
    /// browser can do (no web API reads a connection's exporter).
    fn connect_bound(&self) -> LocalBoxFuture<'static, Result<BoundStream, String>> {
        self.connect().map(|r| r.map(|s| (s, None))).boxed_local()
    }
    /// A short name of the transport for the connection indicator ("QUIC", "WebSocket"…).
    fn transport_name(&self) -> String;
}

/// What the client needs from the platform it runs on.
pub trait Platform: 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()>;
    /// Runs a task in the background on the current thread.
    fn spawn(&self, fut: LocalBoxFuture<'static, ()>);
}

/// Durable storage of the engine's key–value state.
pub trait StateStore: 'static {
    /// Every stored entry.
    async fn load(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String>;
    /// Applies one changeset atomically (all of it or none of it).
    async fn apply(&self, changes: Changeset) -> Result<(), String>;
}

/// A [`StateStore`] in memory: for tests, benchmarks and throwaway sessions.
#[derive(Default)]
pub struct MemoryStore {
    map: std::cell::RefCell<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl StateStore for MemoryStore {
    async fn load(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        Ok(self.map.borrow().iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    async fn apply(&self, changes: Changeset) -> Result<(), String> {
        let mut m = self.map.borrow_mut();
        for (k, v) in changes.puts {
            m.insert(k, v);
        }
        for k in changes.deletes {
            m.remove(&k);
        }
        Ok(())
    }
}

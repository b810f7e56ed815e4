//! The quicproquo gateway: the edge between browsers and server nodes.
//!
//! It serves the browser app (`--www` at `/`) and the wasm-bindgen output (`--pkg` at
//! `/pkg/`) with the right types, compression, caching and a strict Content-Security-Policy
//! ([`assets`], [`security`]) on three listeners with one router: plain HTTP, HTTPS on TCP
//! (HTTP/1.1 and HTTP/2, announcing HTTP/3 with `Alt-Svc`) and HTTP/3 on the same UDP port
//! ([`tls`] holds the certificate and renews the development one). It turns every browser
//! session — a WebTransport session on `/wt` ([`webtransport`]) or a WebSocket on `/ws` —
//! into one Cap'n Proto RPC session with a server node: a new bidirectional stream on a
//! pooled QUIC connection ([`nodes`]), bytes copied both ways by the one transport-neutral
//! [`session::pipe`] within limits ([`limits`], [`stream_limit`]). When a node goes away its
//! sessions are closed with 1012 so browsers reconnect at once and land on a node that is up;
//! `/healthz` reports the nodes, `/transport.json` ([`transport_info`]) tells pages where
//! WebTransport is and which certificate hashes to trust.
//!
//! What it deliberately does **not** do:
//! - speak the API: it never interprets, logs or changes the bytes it pipes (on a
//!   WebTransport stream it follows only the Cap'n Proto framing lengths, to apply the message
//!   size limit), and adds no endpoints of its own beyond static files, health and transport
//!   discovery. The browser and the node talk `NodeService` directly; authentication is the
//!   node's login capability, not the gateway's business;
//! - move a session: RPC state lives on its node, so when a node goes the session ends and
//!   the client logs in again (that is how a session "moves");
//! - store anything or hold user state (the development certificate lives in memory; a
//!   restart makes a new one).
//!
//! For benchmarks only, `--bench-echo` adds `/echo` ([`echo`]): a WebSocket and a WebTransport
//! session that send back what they receive, with no node behind them.
//!
//! [`app`] builds the router (testable with `tower::ServiceExt::oneshot`), [`Gateway`] runs
//! it, [`spawn`] runs it on a thread of its own for tests and benchmarks.

mod admission;
mod app;
pub mod assets;
mod config;
pub mod echo;
mod error;
mod gateway;
mod health;
mod http3;
mod https;
pub mod limits;
pub mod nodes;
pub mod security;
pub mod session;
pub mod stream_limit;
pub mod tls;
pub mod transport_info;
pub mod webtransport;
mod websocket;

pub use app::{app, https_app, AppState, Listeners};
pub use config::{Config, DEFAULT_NODE_CERT};
pub use error::GatewayError;
pub use gateway::{spawn, Gateway, RunningGateway};
pub use health::Health;

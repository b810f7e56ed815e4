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
//! For benchmarks only, `--bench-echo` adds `/echo` ([`echo`]): WebSocket and WebTransport
//! sessions through the same admission, adapters and [`session::pipe`], with an in-process
//! echo instead of a node behind them.
//!
//! The source is in wings, each depending only on those listed before it:
//! - `config.rs`, `error.rs`, [`security`] (headers, CSP, origin policy): the ground floor;
//! - `nodes/`: the node pool;
//! - `session/`: sessions whichever transport carries them — [`session::pipe`], admission,
//!   [`limits`], [`stream_limit`], and the [`websocket`](session::websocket) and
//!   [`webtransport`] adapters with the WebTransport wire details;
//! - `listen/`: plain HTTP, HTTPS, HTTP/3 and the TLS certificate ([`tls`]);
//! - `state.rs`: [`AppState`], built from the configuration;
//! - `routes/`: the route sets ([`assets`], [`health`](routes::health), [`transport_info`],
//!   [`echo`], `/ws`), each taking the state as an argument;
//! - `app.rs`: [`app`] merges the route sets into the router (testable with
//!   `tower::ServiceExt::oneshot`); `gateway.rs`: [`Gateway`] binds and runs the listeners,
//!   [`spawn`] runs it on a thread of its own for tests and benchmarks.
//!
//! `scripts/import-cycles.py gateway/src` checks that no wing imports one after it.

mod app;
mod config;
mod error;
mod gateway;
pub mod listen;
pub mod metrics;
pub mod nodes;
pub mod routes;
pub mod security;
pub mod session;
mod state;

pub use app::{app, https_app};
pub use config::{Config, DEFAULT_NODE_CERT};
pub use error::GatewayError;
pub use gateway::{spawn, Gateway, RunningGateway};
pub use listen::tls;
pub use routes::health::Health;
pub use routes::{assets, echo, transport_info};
pub use session::{limits, stream_limit, webtransport};
pub use state::{AppState, Listeners};

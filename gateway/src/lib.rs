//! The quicproquo gateway: the edge between browsers and server nodes.
//!
//! It serves the browser app (`--www` at `/`) and the wasm-bindgen output (`--pkg` at
//! `/pkg/`) with the right types, compression, caching and a strict Content-Security-Policy
//! ([`assets`], [`security`]); and it turns every WebSocket on `/ws` into one Cap'n Proto
//! RPC session with a server node: a new bidirectional stream on a pooled QUIC connection
//! ([`nodes`]), bytes copied both ways ([`session`]) within limits ([`limits`]). When a node
//! goes away its sessions are closed with 1012 so browsers reconnect at once and land on a
//! node that is up; `/healthz` reports the nodes.
//!
//! What it deliberately does **not** do:
//! - speak the API: it never parses, logs or changes the bytes it pipes, and adds no
//!   endpoints of its own beyond static files and health. The browser and the node talk
//!   `NodeService` directly; authentication is the node's login capability, not the
//!   gateway's business;
//! - move a session: RPC state lives on its node, so when a node goes the session ends and
//!   the client logs in again (that is how a session "moves");
//! - store anything or hold user state;
//! - terminate TLS or serve HTTP/3 yet (put it behind a TLS proxy for now); the WebTransport
//!   adapter will plug into [`session::pipe`] next to the WebSocket one.
//!
//! [`app`] builds the router (testable with `tower::ServiceExt::oneshot`), [`Gateway`] runs
//! it, [`spawn`] runs it on a thread of its own for tests and benchmarks.

mod app;
pub mod assets;
mod config;
mod error;
mod gateway;
mod health;
pub mod limits;
pub mod nodes;
pub mod security;
pub mod session;
mod websocket;

pub use app::{app, AppState};
pub use config::{Config, DEFAULT_NODE_CERT};
pub use error::GatewayError;
pub use gateway::{spawn, Gateway, RunningGateway};
pub use health::Health;

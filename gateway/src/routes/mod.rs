//! The gateway's routes, as small route sets that each take what they serve from
//! ([`AppState`] or a part of it) and return a ready `Router`; [`crate::app`] merges them.
//!
//! - `/ws` and `/wt`: the session routes, the WebSocket and WebTransport adapters of
//!   [`crate::session`] piped to a server node ([`websocket`], [`webtransport`]);
//! - [`echo`]: `/echo`, the transport benchmark's sessions with an in-process echo
//!   (`--bench-echo` only);
//! - [`health`]: `/healthz`; [`transport_info`]: `/transport.json`;
//! - [`assets`]: the web app and `pkg/`, and `Cache-Control` on every response.

use axum::Router;

use crate::session::webtransport::{self, Endpoints};
use crate::session::{websocket, Target};
use crate::state::AppState;

pub mod assets;
pub mod echo;
pub mod health;
pub mod transport_info;

/// `GET /ws`: a WebSocket session with a server node.
pub(crate) fn websocket(state: &AppState) -> Router {
    Router::new().route(websocket::PATH, websocket::route(state.sessions().clone(), Target::Nodes))
}

/// The WebTransport `CONNECT` endpoints (served by the HTTP/3 listener, outside the
/// router): `/wt` to a server node and, with `--bench-echo`, `/echo` to the echo.
pub(crate) fn webtransport(state: &AppState) -> Endpoints {
    let endpoints = Endpoints::new(state.sessions().clone()).at(webtransport::PATH, Target::Nodes);
    if state.bench_echo() {
        endpoints.at(echo::PATH, echo::TARGET)
    } else {
        endpoints
    }
}

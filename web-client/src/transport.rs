//! Transports to the gateway, each a byte stream that `qpq-client` speaks Cap'n Proto over:
//! WebTransport (one bidirectional stream of an HTTP/3 session on `/wt`), WebSocket (`/ws`),
//! and [`AutoConnector`], which prefers the first and falls back to the second.

mod auto;
mod websocket;
mod webtransport;

pub use auto::{AutoConnector, TransportMode, WT_TIMEOUT_MS};
pub use webtransport::WtEndpoint;

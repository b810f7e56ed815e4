//! Why the gateway could not start.

use std::net::SocketAddr;

/// Why the gateway could not start. Problems at run time (a node down, a bad session) are
/// logged and handled, never returned.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A `--node` is not HOST:PORT.
    #[error("--node {0:?} is not HOST:PORT")]
    BadNode(String),
    /// No node was given.
    #[error("no --node given")]
    NoNode,
    /// A `--node-fingerprint` is not 64 hex digits.
    #[error("--node-fingerprint {0:?} is not a SHA-256 fingerprint (64 hex digits)")]
    BadFingerprint(String),
    /// A `--allow-origin` is not scheme://host[:port].
    #[error("--allow-origin {0:?} is not an origin like https://chat.example or http://localhost:8080")]
    BadOrigin(String),
    /// The `--frame-ancestors` value cannot be put in a header.
    #[error("--frame-ancestors {0:?} cannot be used in a Content-Security-Policy header")]
    BadFrameAncestors(String),
    /// The HTTPS/HTTP3 listener's UDP socket could not be bound.
    #[error("cannot listen for HTTP/3 on UDP {addr}: {source}")]
    ListenUdp {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The TLS certificate could not be loaded or generated.
    #[error("TLS certificate: {0}")]
    Certificate(String),
    /// `--webtransport-url` is not an https:// URL.
    #[error("--webtransport-url {0:?} is not an https:// URL")]
    BadWebTransportUrl(String),
    /// Another start-up failure (the runtime or thread could not be created).
    #[error("{0}")]
    Startup(String),
}

//! The gateway's listeners, all serving the one router of [`crate::app`]:
//!
//! - `plain.rs`: plain HTTP on TCP (`--listen`);
//! - `https.rs`: HTTPS on TCP (`--https-listen`; HTTP/2 or HTTP/1.1 by ALPN), handshakes
//!   in the background;
//! - `http3.rs`: HTTP/3 on the same port over UDP (h3 over quinn), requests handed to the
//!   router and WebTransport `CONNECT`s to [`crate::webtransport`];
//! - [`tls`]: the certificate HTTPS and HTTP/3 present — configured, or a generated
//!   development one renewed while running.
//!
//! Each serves until the shutdown token is cancelled; [`crate::Gateway`] binds and runs them.

pub(crate) mod http3;
pub(crate) mod https;
pub(crate) mod plain;
pub mod tls;

/// Turns off Nagle's algorithm on a browser's TCP connection. A session's bytes are small
/// Cap'n Proto messages, each written as soon as the node sends it; with Nagle, a message
/// written while the previous one is still unacknowledged waits for that acknowledgement,
/// which the browser may delay by tens of milliseconds.
fn no_delay(socket: &mut tokio::net::TcpStream) {
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}

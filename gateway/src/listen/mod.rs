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

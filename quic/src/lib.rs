//! QUIC plumbing shared by every native quicproquo program: the server node, the gateway and
//! the native client.
//!
//! It makes and loads TLS certificates (a self-signed one is generated on first start and kept
//! on disk; real deployments pass their own), builds quinn server and client configurations,
//! and lets a client trust a server by pinning the SHA-256 of its certificate. It knows
//! nothing about RPC or messaging.

mod cert;
mod config;
mod error;
mod pin;
mod validity;

pub use cert::{write_private, CertificateBundle};
pub use config::{
    client_config, client_endpoint, server_config, server_endpoint, shared_client_endpoint, transport_with_streams, Trust,
    ALPN_NODE,
};
pub use error::CertError;
pub use pin::PinnedVerifier;
pub use validity::validity;

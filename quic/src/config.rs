//! quinn endpoint configuration for server nodes and their clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::CertificateDer;

use crate::cert::CertificateBundle;
use crate::error::CertError;
use crate::pin::PinnedVerifier;

/// ALPN of the node protocol: Cap'n Proto RPC, one session per bidirectional stream.
pub const ALPN_NODE: &[u8] = b"qpq/1";

/// How a client decides to trust a server.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Accept only certificates with one of these SHA-256 fingerprints.
    Pinned(Vec<[u8; 32]>),
    /// Verify against these root certificates (DER).
    Roots(Vec<CertificateDer<'static>>),
}

fn transport(idle: Duration) -> quinn::TransportConfig {
    // A gateway multiplexes every browser session to a node over one connection.
    transport_with_streams(idle, 1 << 16)
}

/// The transport settings of [`server_config`] with at most `max_bidi` concurrent
/// bidirectional streams per connection (a node sets its own cap with this).
///
/// A server sends no keep-alives of its own: its clients send theirs ([`client_config`]), and
/// a client that falls silent for `idle` is gone. An idle connection then costs the server
/// one PING and its acknowledgement every third of the timeout, not two of each.
pub fn transport_with_streams(idle: Duration, max_bidi: u32) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(idle.try_into().expect("idle timeout fits")));
    t.max_concurrent_bidi_streams(max_bidi.into());
    t.max_concurrent_uni_streams(0u32.into());
    t
}

/// A server configuration speaking `alpn`, closing connections idle for `idle`.
pub fn server_config(bundle: &CertificateBundle, alpn: &[&[u8]], idle: Duration) -> Result<quinn::ServerConfig, CertError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| CertError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(bundle.chain.clone(), bundle.key.clone_key())
        .map_err(|e| CertError::Invalid(e.to_string()))?;
    tls.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| CertError::Invalid(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport(idle)));
    Ok(cfg)
}

/// A client configuration speaking `alpn` that trusts servers as `trust` says.
pub fn client_config(trust: &Trust, alpn: &[u8], idle: Duration) -> Result<quinn::ClientConfig, CertError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| CertError::Invalid(e.to_string()))?;
    let mut tls = match trust {
        Trust::Pinned(pins) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier::new(pins.clone())))
            .with_no_client_auth(),
        Trust::Roots(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store.add(r.clone()).map_err(|e| CertError::Invalid(e.to_string()))?;
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
    };
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| CertError::Invalid(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    // Servers here never open streams toward their clients; quinn would otherwise keep state,
    // made up front, for every stream the server may open (about 4.5 MiB per connection at
    // the 65,536 a server allows itself).
    let mut t = transport_with_streams(idle, 0);
    // The client keeps the connection alive: a PING every third of its idle timeout (a
    // server's timeout must not be shorter than that; a node's default is the same 30 s).
    t.keep_alive_interval(Some(idle / 3));
    cfg.transport_config(Arc::new(t));
    Ok(cfg)
}

/// A client endpoint bound to an ephemeral port of the right address family.
pub fn client_endpoint(server: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    quinn::Endpoint::client(any_port_toward(server))
}

/// An ephemeral port on every address of `server`'s family.
fn any_port_toward(server: SocketAddr) -> SocketAddr {
    if server.is_ipv6() { "[::]:0".parse().expect("addr") } else { "0.0.0.0:0".parse().expect("addr") }
}

/// What a server asks for each of its UDP socket's kernel buffers. A receive buffer of the
/// kernel's default (about 200 KiB here) holds some 170 full-size datagrams: when hundreds of
/// clients connect at once, their handshakes overflow it, the kernel drops the rest, and each
/// dropped client waits out QUIC's growing retransmission timers (measured: 512 devices
/// connecting together, several hundred datagrams dropped a second and some connections timing
/// out). The kernel caps the request at `net.core.rmem_max`/`wmem_max`.
const SERVER_SOCKET_BUFFER_BYTES: usize = 8 << 20;

/// A server's UDP socket bound to `addr`, with [`SERVER_SOCKET_BUFFER_BYTES`] asked for its
/// receive and send buffers.
fn server_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_recv_buffer_size(SERVER_SOCKET_BUFFER_BYTES)?;
    socket.set_send_buffer_size(SERVER_SOCKET_BUFFER_BYTES)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A client endpoint for many connections at once (a load generator's devices): one socket
/// of the right address family with a server's buffers ([`server_socket`]), since every
/// connection's datagrams arrive on it.
pub fn shared_client_endpoint(server: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    endpoint_on(server_socket(any_port_toward(server))?, None)
}

/// A server endpoint on [`server_socket`], run on the current tokio runtime.
pub fn server_endpoint(config: quinn::ServerConfig, addr: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    endpoint_on(server_socket(addr)?, Some(config))
}

/// An endpoint on `socket`, run on the current tokio runtime.
fn endpoint_on(socket: std::net::UdpSocket, config: Option<quinn::ServerConfig>) -> std::io::Result<quinn::Endpoint> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("a QUIC endpoint needs a tokio runtime to run on"))?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), config, socket, runtime)
}

#[cfg(test)]
mod socket_tests {
    use super::*;

    #[test]
    fn a_server_socket_has_larger_buffers_than_the_default() {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let plain = std::net::UdpSocket::bind(any).expect("bind");
        let ours = server_socket(any).expect("bind");
        let size = |s: &std::net::UdpSocket| socket2::SockRef::from(s).recv_buffer_size().expect("read the size");
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max").ok().and_then(|v| v.trim().parse::<usize>().ok());
        // Linux doubles what it grants (for its bookkeeping); it grants at most rmem_max.
        match cap {
            Some(max) if max * 2 > size(&plain) => assert_eq!(size(&ours), (max.min(SERVER_SOCKET_BUFFER_BYTES)) * 2),
            _ => assert!(size(&ours) >= size(&plain)),
        }
        assert_ne!(ours.local_addr().expect("bound").port(), 0);
    }
}


//! The HTTP/3 and WebTransport client of the tests: connections, `CONNECT` and the
//! session's stream, and `WtConnector` (a `Connector` that runs `qpq-client` over a
//! WebTransport stream) are `qpq_load::wt_client`'s, shared with `qpq-idle-sessions`; here
//! are what only tests need — GET requests, the presented certificate, and reading the
//! gateway's close capsule — and the test forms (failing at once) of `CONNECT` and opening
//! the stream.

use std::net::SocketAddr;

use bytes::Buf;
use http::{Request, Response, StatusCode};
pub use qpq_load::wt_client::{read_body, H3Stream, H3};
use qpq_load::wt_client::{open_stream, request_session};
// For the tests that use them (each test binary includes this module; not all of them do).
#[allow(unused_imports)]
pub use qpq_load::wt_client::{connect, WtConnector};
use rustls::pki_types::CertificateDer;

/// The certificate the server presented.
pub fn peer_certificate(quic: &quinn::Connection) -> CertificateDer<'static> {
    let certs = quic.peer_identity().unwrap().downcast::<Vec<CertificateDer<'static>>>().unwrap();
    certs[0].clone()
}

/// `GET path` over HTTP/3: the response head and body.
pub async fn get(h3: &mut H3, authority: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (Response<()>, Vec<u8>) {
    let mut req = Request::get(format!("https://{authority}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut stream = h3.send.send_request(req.body(()).unwrap()).await.expect("request sent");
    stream.finish().await.unwrap();
    let resp = stream.recv_response().await.expect("a response");
    (resp, read_body(&mut stream).await)
}

/// A WebTransport `CONNECT` to `path` with an optional `Origin`: the accepted session's
/// `CONNECT` stream, or the refusal's status and body.
pub async fn connect_wt(
    h3: &mut H3,
    authority: SocketAddr,
    path: &str,
    origin: Option<&str>,
) -> Result<H3Stream, (StatusCode, String)> {
    request_session(h3, authority, path, origin).await.expect("a CONNECT response")
}

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let first = *b.first()?;
    let len = 1usize << (first >> 6);
    if b.len() < len {
        return None;
    }
    let v = b[1..len].iter().fold((first & 0x3f) as u64, |v, &x| (v << 8) | x as u64);
    *b = &b[len..];
    Some(v)
}

/// Opens the session's bidirectional stream: the WebTransport stream header (signal 0x41,
/// session id), as a browser writes it.
pub async fn open_wt_stream(quic: &quinn::Connection, connect: &H3Stream) -> (quinn::SendStream, quinn::RecvStream) {
    open_stream(quic, connect).await.expect("a stream opens")
}

/// Reads the `CONNECT` stream until the gateway's close capsule: its code and reason.
pub async fn close_info(connect: &mut H3Stream) -> (u32, String) {
    let read = async {
        let mut buf = Vec::new();
        loop {
            let mut rest = &buf[..];
            if let (Some(t), Some(len)) = (get_varint(&mut rest), get_varint(&mut rest)) {
                if rest.len() >= len as usize {
                    assert_eq!(t, 0x2843, "a CLOSE_WEBTRANSPORT_SESSION capsule");
                    let code = u32::from_be_bytes(rest[..4].try_into().unwrap());
                    return (code, String::from_utf8(rest[4..len as usize].to_vec()).unwrap());
                }
            }
            match connect.recv_data().await {
                Ok(Some(mut chunk)) => {
                    while chunk.has_remaining() {
                        let c = chunk.chunk();
                        buf.extend_from_slice(c);
                        let n = c.len();
                        chunk.advance(n);
                    }
                }
                other => panic!("the CONNECT stream ended without a close capsule: {:?}", other.map(|o| o.is_some())),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("a close capsule arrives")
}

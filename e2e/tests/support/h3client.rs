//! An HTTP/3 and WebTransport client for the tests, built from h3 and quinn: GET requests,
//! extended `CONNECT` for WebTransport sessions, the session's bidirectional stream (its
//! header written by hand, as a browser does), the close capsule, and a `Connector` that
//! runs `qpq-client` over a WebTransport stream.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::future::{FutureExt, LocalBoxFuture};
use h3::client::{RequestStream, SendRequest};
use http::{Method, Request, Response, StatusCode};
use qpq_client::Connector;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;

pub type H3Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// One HTTP/3 connection to the gateway.
pub struct H3 {
    pub quic: quinn::Connection,
    pub send: SendRequest<h3_quinn::OpenStreams, Bytes>,
    driver: tokio::task::JoinHandle<()>,
    _endpoint: quinn::Endpoint,
}

impl Drop for H3 {
    fn drop(&mut self) {
        self.driver.abort();
        self.quic.close(0u32.into(), b"test done");
    }
}

/// Connects from the local address `from` to `addr`, trusting certificates by `pins`.
pub async fn connect(addr: SocketAddr, from: IpAddr, pins: Vec<[u8; 32]>) -> Result<H3, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(qpq_quic::PinnedVerifier::new(pins)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let endpoint = quinn::Endpoint::client(SocketAddr::new(from, 0)).map_err(|e| e.to_string())?;
    let quic = endpoint
        .connect_with(config, addr, "localhost")
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (mut driver, send) = h3::client::builder()
        .enable_extended_connect(true)
        .enable_datagram(true)
        .build::<_, _, Bytes>(h3_quinn::Connection::new(quic.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::task::spawn_local(async move {
        let _ = futures::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    Ok(H3 { quic, send, driver, _endpoint: endpoint })
}

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

async fn read_body(stream: &mut H3Stream) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(mut chunk)) = stream.recv_data().await {
        while chunk.has_remaining() {
            let c = chunk.chunk();
            body.extend_from_slice(c);
            let n = c.len();
            chunk.advance(n);
        }
    }
    body
}

/// A WebTransport `CONNECT` to `path` with an optional `Origin`: the accepted session's
/// `CONNECT` stream, or the refusal's status and body.
pub async fn connect_wt(
    h3: &mut H3,
    authority: SocketAddr,
    path: &str,
    origin: Option<&str>,
) -> Result<H3Stream, (StatusCode, String)> {
    let mut req = Request::builder().method(Method::CONNECT).uri(format!("https://{authority}{path}"));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let mut req = req.body(()).unwrap();
    req.extensions_mut().insert(h3::ext::Protocol::WEB_TRANSPORT);
    let mut stream = h3.send.send_request(req).await.expect("CONNECT sent");
    let resp = stream.recv_response().await.expect("a CONNECT response");
    if resp.status() == StatusCode::OK {
        return Ok(stream);
    }
    let body = String::from_utf8_lossy(&read_body(&mut stream).await).to_string();
    Err((resp.status(), body))
}

fn put_varint(b: &mut BytesMut, v: u64) {
    match v {
        0..=0x3f => b.put_u8(v as u8),
        0x40..=0x3fff => b.put_u16(0x4000 | v as u16),
        0x4000..=0x3fff_ffff => b.put_u32(0x8000_0000 | v as u32),
        _ => b.put_u64(0xc000_0000_0000_0000 | v),
    }
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
    let (mut send, recv) = quic.open_bi().await.expect("a stream opens");
    let mut header = BytesMut::new();
    put_varint(&mut header, 0x41);
    put_varint(&mut header, connect.id().into_inner());
    send.write_all(&header).await.unwrap();
    (send, recv)
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

// --- a qpq-client connector over WebTransport ----------------------------------------------

/// Opens a WebTransport session per connection to the gateway's `/wt`, as the browser does,
/// and hands `qpq-client` its bidirectional stream.
#[derive(Clone)]
pub struct WtConnector {
    pub addr: SocketAddr,
    pub pins: Vec<[u8; 32]>,
    pub origin: Option<String>,
}

/// Keeps a session open while either half of its stream is alive.
struct Session {
    _h3: H3,
    _connect: H3Stream,
}

struct Reader(quinn::RecvStream, Rc<Session>);
struct Writer(quinn::SendStream, Rc<Session>);

impl futures::io::AsyncRead for Reader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.0.poll_read(cx, buf).map(|r| r.map_err(io::Error::other))
    }
}

impl futures::io::AsyncWrite for Writer {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf).map(|r| r.map_err(io::Error::other))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.0.finish();
        Poll::Ready(Ok(()))
    }
}

impl Connector for WtConnector {
    fn connect(&self) -> LocalBoxFuture<'static, Result<qpq_client::Stream, String>> {
        let me = self.clone();
        async move {
            let mut h3 = connect(me.addr, IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), me.pins.clone()).await?;
            let connect = connect_wt(&mut h3, me.addr, "/wt", me.origin.as_deref())
                .await
                .map_err(|(s, b)| format!("WebTransport refused: {s} {b}"))?;
            let (send, recv) = open_wt_stream(&h3.quic, &connect).await;
            let session = Rc::new(Session { _h3: h3, _connect: connect });
            let r: Box<dyn futures::io::AsyncRead + Unpin> = Box::new(Reader(recv, session.clone()));
            let w: Box<dyn futures::io::AsyncWrite + Unpin> = Box::new(Writer(send, session));
            Ok((r, w))
        }
        .boxed_local()
    }

    fn transport_name(&self) -> String {
        "WebTransport".into()
    }
}

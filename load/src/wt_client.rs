//! An HTTP/3 and WebTransport client of the gateway, built from h3 and quinn: a connection
//! (its own UDP socket, or one endpoint shared by many), extended `CONNECT` for a
//! WebTransport session, the session's bidirectional stream (its header written by hand, as a
//! browser does), and [`WtConnector`], which runs `qpq-client` over that stream as the
//! browser's WebTransport does. `qpq-idle-sessions` holds its sessions through it; the
//! end-to-end tests (`e2e/`) use it for native clients through the gateway and for the
//! WebTransport cases they send by hand.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::future::{FutureExt, LocalBoxFuture};
use h3::client::{RequestStream, SendRequest};
use http::{Method, Request, StatusCode};
use qpq_client::Connector;
use quinn::crypto::rustls::QuicClientConfig;

/// A request stream (a `CONNECT` stream, for a WebTransport session).
pub type H3Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// One HTTP/3 connection to the gateway; dropping it closes the connection.
pub struct H3 {
    /// The QUIC connection.
    pub quic: quinn::Connection,
    /// Sends requests on it.
    pub send: SendRequest<h3_quinn::OpenStreams, Bytes>,
    driver: tokio::task::JoinHandle<()>,
    _endpoint: quinn::Endpoint,
}

impl Drop for H3 {
    fn drop(&mut self) {
        self.driver.abort();
        self.quic.close(0u32.into(), b"done");
    }
}

/// The QUIC client configuration for HTTP/3 (ALPN `h3`, TLS 1.3) with a server whose
/// certificate has one of the SHA-256 `pins`. The transport settings are quinn's defaults.
pub fn client_config(pins: Vec<[u8; 32]>) -> quinn::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(qpq_quic::PinnedVerifier::new(pins)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).expect("a TLS 1.3 configuration suits QUIC")))
}

/// A client endpoint (one UDP socket) on the local address `from`, any port.
pub fn client_endpoint(from: IpAddr) -> Result<quinn::Endpoint, String> {
    quinn::Endpoint::client(SocketAddr::new(from, 0)).map_err(|e| e.to_string())
}

/// Connects from the local address `from` to `addr`, trusting certificates by `pins`, on a
/// UDP socket of its own.
pub async fn connect(addr: SocketAddr, from: IpAddr, pins: Vec<[u8; 32]>) -> Result<H3, String> {
    connect_on(&client_endpoint(from)?, &client_config(pins), addr).await
}

/// Connects to `addr` on `endpoint` (which may carry many connections) with `config`.
pub async fn connect_on(endpoint: &quinn::Endpoint, config: &quinn::ClientConfig, addr: SocketAddr) -> Result<H3, String> {
    let quic = endpoint
        .connect_with(config.clone(), addr, "localhost")
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
    Ok(H3 { quic, send, driver, _endpoint: endpoint.clone() })
}

/// Reads a response body to its end (or to the first error).
pub async fn read_body(stream: &mut H3Stream) -> Vec<u8> {
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

/// A WebTransport `CONNECT` to `path` with an optional `Origin`: the server's answer — the
/// accepted session's `CONNECT` stream, or the refusal's status and body — or, when the
/// request got no answer, why.
pub async fn request_session(
    h3: &mut H3,
    authority: SocketAddr,
    path: &str,
    origin: Option<&str>,
) -> Result<Result<H3Stream, (StatusCode, String)>, String> {
    let mut req = Request::builder().method(Method::CONNECT).uri(format!("https://{authority}{path}"));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let mut req = req.body(()).map_err(|e| e.to_string())?;
    req.extensions_mut().insert(h3::ext::Protocol::WEB_TRANSPORT);
    let mut stream = h3.send.send_request(req).await.map_err(|e| format!("CONNECT not sent: {e}"))?;
    let resp = stream.recv_response().await.map_err(|e| format!("no CONNECT response: {e}"))?;
    if resp.status() == StatusCode::OK {
        return Ok(Ok(stream));
    }
    let body = String::from_utf8_lossy(&read_body(&mut stream).await).to_string();
    Ok(Err((resp.status(), body)))
}

fn put_varint(b: &mut BytesMut, v: u64) {
    match v {
        0..=0x3f => b.put_u8(v as u8),
        0x40..=0x3fff => b.put_u16(0x4000 | v as u16),
        0x4000..=0x3fff_ffff => b.put_u32(0x8000_0000 | v as u32),
        _ => b.put_u64(0xc000_0000_0000_0000 | v),
    }
}

/// Opens the session's bidirectional stream: the WebTransport stream header (signal 0x41,
/// session id), as a browser writes it.
pub async fn open_stream(
    quic: &quinn::Connection,
    connect: &H3Stream,
) -> Result<(quinn::SendStream, quinn::RecvStream), String> {
    let (mut send, recv) = quic.open_bi().await.map_err(|e| format!("no stream opens: {e}"))?;
    let mut header = BytesMut::new();
    put_varint(&mut header, 0x41);
    put_varint(&mut header, connect.id().into_inner());
    send.write_all(&header).await.map_err(|e| format!("the stream header is not sent: {e}"))?;
    Ok((send, recv))
}

// --- a qpq-client connector over WebTransport ----------------------------------------------

/// Opens a WebTransport session per connection to the gateway's `/wt`, as the browser does,
/// and hands `qpq-client` its bidirectional stream.
#[derive(Clone)]
pub struct WtConnector {
    /// The gateway's HTTPS (HTTP/3) address.
    pub addr: SocketAddr,
    /// SHA-256 of the certificates it may present.
    pub pins: Vec<[u8; 32]>,
    /// The `Origin` sent, if any.
    pub origin: Option<String>,
}

impl WtConnector {
    /// Opens a session on a connection of its own made on `endpoint` with `config` (see
    /// [`client_config`]): the session's byte stream, which keeps the session and its
    /// connection open while either half is alive.
    pub async fn open_on(&self, endpoint: &quinn::Endpoint, config: &quinn::ClientConfig) -> Result<qpq_client::Stream, String> {
        let mut h3 = connect_on(endpoint, config, self.addr).await?;
        let connect = request_session(&mut h3, self.addr, "/wt", self.origin.as_deref())
            .await?
            .map_err(|(s, b)| format!("WebTransport refused: {s} {b}"))?;
        let (send, recv) = open_stream(&h3.quic, &connect).await?;
        let session = Rc::new(Session { _h3: h3, _connect: connect });
        let r: Box<dyn futures::io::AsyncRead + Unpin> = Box::new(Reader { recv, _session: session.clone() });
        let w: Box<dyn futures::io::AsyncWrite + Unpin> = Box::new(Writer { send, _session: session });
        Ok((r, w))
    }
}

/// Keeps a session open while either half of its stream is alive.
struct Session {
    _h3: H3,
    _connect: H3Stream,
}

/// The session's stream, read.
struct Reader {
    recv: quinn::RecvStream,
    _session: Rc<Session>,
}

/// The session's stream, written.
struct Writer {
    send: quinn::SendStream,
    _session: Rc<Session>,
}

impl futures::io::AsyncRead for Reader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.recv.poll_read(cx, buf).map(|r| r.map_err(io::Error::other))
    }
}

impl futures::io::AsyncWrite for Writer {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf).map(|r| r.map_err(io::Error::other))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.send.finish();
        Poll::Ready(Ok(()))
    }
}

impl Connector for WtConnector {
    fn connect(&self) -> LocalBoxFuture<'static, Result<qpq_client::Stream, String>> {
        let me = self.clone();
        async move {
            let endpoint = client_endpoint(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
            me.open_on(&endpoint, &client_config(me.pins.clone())).await
        }
        .boxed_local()
    }

    fn transport_name(&self) -> String {
        "WebTransport".into()
    }
}

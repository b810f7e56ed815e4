//! HTTP/3 on the HTTPS port (UDP): the same router as every other listener, and WebTransport.
//!
//! Each QUIC connection runs an h3 accept loop. A request is handed to the axum router (the
//! very one HTTPS on TCP uses: same routes, headers, static files and limits) on a task of
//! its own, with the client's address as `ConnectInfo`; its response is sent back as HTTP/3
//! frames. A `CONNECT` goes to [`crate::webtransport`] with the endpoints it was given
//! (`/wt`, and `/echo` with `--bench-echo`): refused, the loop goes on; accepted, the
//! connection is the session's from then on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use bytes::{Buf, Bytes, BytesMut};
use h3::server::RequestStream;
use http::{header, HeaderName, Request, Response, StatusCode};
use http_body_util::BodyExt;
use quinn::crypto::rustls::QuicServerConfig;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::error::GatewayError;
use crate::listen::tls::Certificates;
use crate::session::webtransport::{self, Endpoints};
use crate::session::Sessions;

/// Request streams a connection may have open at first. quinn keeps the state of every stream
/// a peer may open, made up front (about 70 bytes each): with the 100 a page load may use
/// allowed from the start, every connection cost about 7 KiB more — a WebTransport session's
/// too, which needs two. So a connection starts with these and is allowed twice as many
/// whenever three quarters of them are being served, up to [`MAX_REQUEST_STREAMS`]
/// ([`RequestStreams`]; a node allows a gateway its streams the same way).
const FIRST_REQUEST_STREAMS: u32 = 16;
/// Most request streams a connection may have open at once.
const MAX_REQUEST_STREAMS: u32 = 100;
/// Largest request body taken over HTTP/3 (the gateway's routes take none).
const MAX_REQUEST_BODY: usize = 64 << 10;
/// Longest wait for a request's headers once its stream is open.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the QUIC endpoint for HTTP/3 on `addr`.
pub(crate) fn endpoint(addr: SocketAddr, certs: &Certificates, sessions: &Sessions) -> Result<quinn::Endpoint, GatewayError> {
    let crypto = QuicServerConfig::try_from(certs.quic_config()?).map_err(|e| GatewayError::Certificate(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut t = quinn::TransportConfig::default();
    // Longer than a session's idle timeout, so the session closes it with a reason first.
    let idle = sessions.control().idle_timeout + Duration::from_secs(10);
    t.max_idle_timeout(Some(idle.max(Duration::from_secs(30)).try_into().expect("idle timeout fits")));
    // A session's browser may get ahead of its node by at most the message limit.
    let window = (sessions.max_message_bytes() as u64).clamp(64 << 10, 16 << 20);
    t.stream_receive_window(quinn::VarInt::from_u64(window).expect("fits"));
    t.receive_window(quinn::VarInt::from_u64(window * 2).expect("fits"));
    t.max_concurrent_bidi_streams(FIRST_REQUEST_STREAMS.into());
    t.max_concurrent_uni_streams(16u32.into());
    server.transport_config(Arc::new(t));
    qpq_quic::server_endpoint(server, addr).map_err(|source| GatewayError::ListenUdp { addr, source })
}

/// Accepts connections until the gateway shuts down, then waits for them (the caller
/// bounds the wait) and closes the endpoint.
pub(crate) async fn serve(endpoint: quinn::Endpoint, router: Router, endpoints: Endpoints) {
    let stop = endpoints.sessions().control().shutdown.clone();
    let connections = TaskTracker::new();
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => i,
            () = stop.cancelled() => break,
        };
        let Some(incoming) = incoming else { break };
        connections.spawn(connection(incoming, router.clone(), endpoints.clone()));
    }
    connections.close();
    connections.wait().await;
    endpoint.close(0u32.into(), b"gateway shutting down");
}

/// One QUIC connection: its requests until a WebTransport session takes it over, then that
/// session.
async fn connection(incoming: quinn::Incoming, router: Router, endpoints: Endpoints) {
    // The requests' part is boxed, so that a session's task keeps only what the session needs:
    // inline, the requests' state (the HTTP/3 connection, a request and its stream, the
    // answered `CONNECT`) stayed in the task's memory beside the session's as long as the
    // session lived, about 6 KiB of every idle WebTransport session.
    let Some((accepted, quic, h3)) = Box::pin(requests(incoming, router, &endpoints)).await else {
        return;
    };
    webtransport::run(accepted, quic, h3, endpoints.sessions().clone()).await;
}

/// Serves a connection's requests until it ends (none) or a WebTransport `CONNECT` is
/// accepted: that session, for [`webtransport::run`], with the connection.
async fn requests(
    incoming: quinn::Incoming,
    router: Router,
    endpoints: &Endpoints,
) -> Option<(webtransport::Accepted, quinn::Connection, H3Connection)> {
    let remote = incoming.remote_address();
    let quic = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "QUIC handshake failed");
            return None;
        }
    };
    let built = h3::server::builder()
        .enable_extended_connect(true)
        .enable_webtransport(true)
        .enable_datagram(true)
        .max_webtransport_sessions(1)
        .send_grease(true)
        .build(h3_quinn::Connection::new(quic.clone()))
        .await;
    let mut h3 = match built {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(error = %e, "HTTP/3 connection setup failed");
            return None;
        }
    };
    let stop = endpoints.sessions().control().shutdown.clone();
    let mut streams = RequestStreams::new(quic.clone());
    loop {
        let next = tokio::select! {
            n = h3.accept() => n,
            () = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), h3.shutdown(0)).await;
                return None;
            }
        };
        let resolver = match next {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "HTTP/3 connection ended");
                return None;
            }
        };
        let (req, stream) = match tokio::time::timeout(REQUEST_HEAD_TIMEOUT, resolver.resolve_request()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "bad HTTP/3 request");
                continue;
            }
            Err(_) => {
                tracing::debug!("HTTP/3 request headers timed out");
                continue;
            }
        };
        if webtransport::is_connect(&req) {
            if let Some(accepted) = webtransport::accept(req, stream, remote, endpoints).await {
                return Some((accepted, quic, h3));
            }
            continue;
        }
        let (open, router) = (streams.opened(), router.clone());
        tokio::spawn(async move {
            request(router, req, stream, remote).await;
            drop(open);
        });
    }
}

/// How many request streams one connection may have open, raised as it uses them (see
/// [`FIRST_REQUEST_STREAMS`]). Counted are the requests being served; a `CONNECT` is answered
/// in the connection's loop, and once accepted the connection is its session's.
struct RequestStreams {
    conn: quinn::Connection,
    open: Arc<AtomicU32>,
    allowed: u32,
}

/// A request being served, counted until dropped.
struct OpenRequest(Arc<AtomicU32>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RequestStreams {
    fn new(conn: quinn::Connection) -> Self {
        RequestStreams { conn, open: Arc::default(), allowed: FIRST_REQUEST_STREAMS }
    }

    /// A request was accepted; the returned guard says when it is served.
    fn opened(&mut self) -> OpenRequest {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        if self.allowed < MAX_REQUEST_STREAMS && open * 4 >= self.allowed * 3 {
            self.allowed = (self.allowed * 2).min(MAX_REQUEST_STREAMS);
            self.conn.set_max_concurrent_bi_streams(self.allowed.into());
        }
        OpenRequest(self.open.clone())
    }
}

type Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;
/// The server side of an HTTP/3 connection.
type H3Connection = h3::server::Connection<h3_quinn::Connection, Bytes>;

/// Serves one request through the router.
async fn request(router: Router, req: Request<()>, mut stream: Stream, remote: SocketAddr) {
    let (parts, ()) = req.into_parts();
    let mut body = BytesMut::new();
    loop {
        match stream.recv_data().await {
            Ok(Some(mut chunk)) => {
                if body.len() + chunk.remaining() > MAX_REQUEST_BODY {
                    let resp = Response::builder().status(StatusCode::PAYLOAD_TOO_LARGE).body(Body::from("request body too large")).expect("response");
                    // Through the router's layers would be nicer, but the body is the problem.
                    send(&mut stream, resp).await;
                    return;
                }
                while chunk.has_remaining() {
                    let c = chunk.chunk();
                    body.extend_from_slice(c);
                    let n = c.len();
                    chunk.advance(n);
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "HTTP/3 request body failed");
                return;
            }
        }
    }
    let mut req = Request::from_parts(parts, Body::from(body.freeze()));
    req.extensions_mut().insert(ConnectInfo(remote));
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    send(&mut stream, resp).await;
}

/// Sends a response as HTTP/3 frames.
async fn send(stream: &mut Stream, resp: Response<Body>) {
    let (mut parts, mut body) = resp.into_parts();
    // Connection-specific fields do not exist in HTTP/3.
    for h in [header::CONNECTION, header::TRANSFER_ENCODING, header::UPGRADE, HeaderName::from_static("keep-alive")] {
        parts.headers.remove(h);
    }
    let sent = async {
        stream.send_response(Response::from_parts(parts, ())).await?;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            match frame.into_data() {
                Ok(data) => stream.send_data(data).await?,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        stream.send_trailers(trailers).await?;
                    }
                }
            }
        }
        stream.finish().await
    };
    if let Err(e) = sent.await {
        tracing::debug!(error = %e, "HTTP/3 response not delivered");
    }
}

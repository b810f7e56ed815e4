//! HTTP/3 on the HTTPS port (UDP): the same router as every other listener, and WebTransport.
//!
//! Each QUIC connection runs an h3 accept loop. A request is handed to the axum router (the
//! very one HTTPS on TCP uses: same routes, headers, static files and limits) on a task of
//! its own, with the client's address as `ConnectInfo`; its response is sent back as HTTP/3
//! frames. A `CONNECT` goes to [`crate::webtransport`] with the endpoints it was given
//! (`/wt`, and `/echo` with `--bench-echo`): refused, the loop goes on; accepted, the
//! connection is the session's from then on.

use std::net::SocketAddr;
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
    t.max_concurrent_bidi_streams(100u32.into());
    t.max_concurrent_uni_streams(16u32.into());
    server.transport_config(Arc::new(t));
    quinn::Endpoint::server(server, addr).map_err(|source| GatewayError::ListenUdp { addr, source })
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

async fn connection(incoming: quinn::Incoming, router: Router, endpoints: Endpoints) {
    let remote = incoming.remote_address();
    let quic = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "QUIC handshake failed");
            return;
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
            return;
        }
    };
    let stop = endpoints.sessions().control().shutdown.clone();
    loop {
        let next = tokio::select! {
            n = h3.accept() => n,
            () = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), h3.shutdown(0)).await;
                return;
            }
        };
        let resolver = match next {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "HTTP/3 connection ended");
                return;
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
            if let Some(accepted) = webtransport::accept(req, stream, remote, &endpoints).await {
                webtransport::run(accepted, quic, h3, endpoints.sessions().clone()).await;
                return;
            }
            continue;
        }
        tokio::spawn(request(router.clone(), req, stream, remote));
    }
}

type Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

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

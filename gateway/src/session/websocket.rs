//! `GET /ws`: a WebSocket is one session with a peer (a server node; the benchmark's echo
//! on `/echo`).
//!
//! Before the upgrade the request must pass the origin check (403), the session limits
//! (503 when the gateway is full, 429 when the address has too many) and find a node that is
//! up (503) — `admission.rs`, the same steps as a WebTransport `CONNECT`. After it,
//! [`WsClient`] adapts the socket to the transport-neutral [`session::pipe`] (binary
//! messages are data, pings and pongs activity, text and oversize messages refusals) and
//! [`close`] sends the close code [`SessionEnd::close_code`] gives for the session's end.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};

use super::admission;
use crate::session::limits::SessionPermit;
use crate::session::{self, Inbound, Peer, SessionEnd, Sessions, Target};

/// How long a closing session waits for the browser's close reply.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a session refused for a too-big message keeps its socket open after the close
/// frame, so the browser reads the close before the connection is dropped.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// Bytes read from a browser's socket at once, and the read buffer a socket starts with.
/// tungstenite's default, 128 KiB, is zeroed by the first read and kept: it was 128 of the
/// 139 KiB an idle WebSocket session cost the gateway (`qpq-idle-sessions --via websocket`,
/// BENCHMARKS.md). A bigger message still arrives whole: its frame's full length is reserved
/// as its header is read, and it is read this many bytes at a time.
const READ_BUFFER: usize = 4 << 10;

/// The path of WebSocket sessions with a node.
pub const PATH: &str = "/ws";

/// A `GET` route that upgrades to a WebSocket session piped to `target`.
pub fn route(sessions: Sessions, target: Target) -> MethodRouter {
    get(
        move |ClientIp(ip): ClientIp,
              headers: HeaderMap,
              uri: Uri,
              ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>| {
            upgrade(sessions.clone(), target, ip, headers, uri, ws)
        },
    )
}

/// The client's IP address (unspecified when the server did not record it, as in tests
/// that call the router directly). IPv4-mapped IPv6 addresses count as IPv4.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(ip))
    }
}

async fn upgrade(
    sessions: Sessions,
    target: Target,
    ip: IpAddr,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(refusal) = admission::check_origin(&sessions, &headers, &uri, ip, "WebSocket") {
        return refusal.into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let (permit, peer) = match admission::admit(&sessions, ip, "WebSocket", target).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let max = sessions.max_message_bytes();
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| run(socket, peer, permit, sessions, ip))
}

async fn run(socket: WebSocket, mut peer: Box<dyn Peer>, _permit: SessionPermit, sessions: Sessions, ip: IpAddr) {
    tracing::debug!(node = %peer.name(), %ip, transport = "WebSocket", "session opened");
    let started = tokio::time::Instant::now();
    let mut client = WsClient { socket };
    let ctl = sessions.control();
    let lost = peer.lost();
    let (from_peer, to_peer) = peer.halves();
    let end = session::pipe(&mut client, from_peer, to_peer, lost, ctl).await;
    tracing::info!(node = %peer.name(), transport = "WebSocket", end = end.as_str(), secs = started.elapsed().as_secs(), "session ended");
    close(&mut client.socket, end, &sessions).await;
}

/// Closes the socket as `end` says (see the module docs for the codes).
async fn close(socket: &mut WebSocket, end: SessionEnd, sessions: &Sessions) {
    let Some((code, reason)) = end.close_code(sessions.max_message_bytes(), sessions.control().idle_timeout) else {
        if end == SessionEnd::ClientClosed {
            // The close reply is queued; flush it.
            let _ = tokio::time::timeout(CLOSE_WAIT, socket.close()).await;
        }
        return;
    };
    let frame = CloseFrame { code, reason: reason.into() };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let wait_reply = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_))) | None => return,
                Some(Ok(_)) => continue,
                // After a too-big message the socket cannot read on; hold it open a moment
                // so the browser gets the close frame before the connection drops.
                Some(Err(_)) => {
                    if end == SessionEnd::TooBig {
                        tokio::time::sleep(CLOSE_LINGER).await;
                    }
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, wait_reply).await;
}

/// The WebSocket as a session transport: binary messages are data, pings and pongs are
/// activity, text and oversize messages are refusals.
struct WsClient {
    socket: WebSocket,
}

/// Whether an error from the socket means the browser sent a message over the limit.
fn is_too_big(e: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(e.source().and_then(|s| s.downcast_ref::<tungstenite::Error>()), Some(tungstenite::Error::Capacity(_)))
}

impl Stream for WsClient {
    type Item = Result<Inbound, SessionEnd>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = match futures::ready!(self.socket.poll_next_unpin(cx)) {
            None | Some(Ok(Message::Close(_))) => return Poll::Ready(None),
            Some(Ok(Message::Binary(b))) => Ok(Inbound::Data(b)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Inbound::Activity),
            Some(Ok(Message::Text(_))) => Err(SessionEnd::TextRefused),
            Some(Err(e)) if is_too_big(&e) => Err(SessionEnd::TooBig),
            Some(Err(_)) => Err(SessionEnd::ClientFailed),
        };
        Poll::Ready(Some(item))
    }
}

impl Sink<Bytes> for WsClient {
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.socket.poll_ready_unpin(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Bytes) -> Result<(), Self::Error> {
        self.socket.start_send_unpin(Message::Binary(item))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.socket.poll_flush_unpin(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.socket.poll_close_unpin(cx)
    }
}

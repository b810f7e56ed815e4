//! `GET /ws`: a WebSocket is one session with a server node.
//!
//! Before the upgrade the request must pass the origin check (403), the session limits
//! (503 when the gateway is full, 429 when the address has too many) and find a node that is
//! up (503). After it, [`WsClient`] adapts the socket to the transport-neutral
//! [`session::pipe`] and [`close`] turns the session's end into a close code:
//!
//! | end | code | meaning for the browser |
//! |---|---|---|
//! | text message | 1003 | the protocol is binary Cap'n Proto |
//! | message too big | 1009 | bigger than `--max-message-bytes` |
//! | node ended the stream | 1011 | the node refused what it was sent; reconnect |
//! | node connection lost | 1012 | service restart: reconnect at once (another node) |
//! | idle | 1000 | nothing moved for `--idle-timeout-secs` |
//! | gateway shutting down | 1001 | going away: reconnect |

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};

use crate::admission;
use crate::app::AppState;
use crate::limits::SessionPermit;
use crate::nodes::NodeStream;
use crate::session::{self, Inbound, SessionEnd};

/// How long a closing session waits for the browser's close reply.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a session refused for a too-big message keeps its socket open after the close
/// frame, so the browser reads the close before the connection is dropped.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// The `/ws` route.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

/// The client's IP address (unspecified when the server did not record it, as in tests
/// that call the router directly). IPv4-mapped IPv6 addresses count as IPv4.
pub(crate) struct ClientIp(pub IpAddr);

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
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(refusal) = admission::check_origin(&state, &headers, &uri, ip, "WebSocket") {
        return refusal.into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let (permit, stream) = match admission::admit(&state, ip, "WebSocket").await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let max = state.max_message_bytes();
    ws.max_message_size(max).max_frame_size(max).on_upgrade(move |socket| run(socket, stream, permit, state, ip))
}

async fn run(socket: WebSocket, mut stream: NodeStream, _permit: SessionPermit, state: AppState, ip: IpAddr) {
    tracing::debug!(node = %stream.node, %ip, transport = "WebSocket", "session opened");
    let started = tokio::time::Instant::now();
    let mut client = WsClient { socket };
    let ctl = state.session_control();
    let end =
        session::pipe(&mut client, &mut stream.recv, &mut stream.send, stream.conn.closed().map(|_| ()), ctl).await;
    tracing::info!(node = %stream.node, transport = "WebSocket", end = end.as_str(), secs = started.elapsed().as_secs(), "session ended");
    close(&mut client.socket, end, state.max_message_bytes(), ctl.idle_timeout).await;
}

/// Closes the socket as `end` says (see the module docs for the codes).
async fn close(socket: &mut WebSocket, end: SessionEnd, max: usize, idle: Duration) {
    let (code, reason): (u16, String) = match end {
        SessionEnd::ClientClosed => {
            // The close reply is queued; flush it.
            let _ = tokio::time::timeout(CLOSE_WAIT, socket.close()).await;
            return;
        }
        SessionEnd::ClientFailed => return,
        SessionEnd::TextRefused => (1003, "text messages are not accepted: the session is binary Cap'n Proto".into()),
        SessionEnd::TooBig => (1009, format!("message too big: at most {max} bytes")),
        SessionEnd::NodeEnded => (1011, "the server node ended this session".into()),
        SessionEnd::NodeLost => (1012, "the server node went away; reconnect".into()),
        SessionEnd::Idle => (1000, format!("idle for {} s", idle.as_secs())),
        SessionEnd::ShuttingDown => (1001, "the gateway is shutting down".into()),
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

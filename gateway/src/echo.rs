//! `/echo` (only with `--bench-echo`): a transport with nothing behind it, for benchmarks.
//!
//! A WebSocket on `/echo` gets every binary message back as it is; a WebTransport session on
//! `/echo` (HTTP/3 `CONNECT`) gets every byte of its first bidirectional stream back on the
//! same stream. No node is involved, so a browser measuring a round trip here measures the
//! transport and the gateway alone, next to the same browser's round trip through a real
//! session. The origin check, the session limits, `--max-message-bytes`, the idle timeout and
//! shutdown apply as on `/ws` and `/wt`; without the flag the route does not exist (404).

use std::net::SocketAddr;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::{Buf, Bytes};
use futures::StreamExt;
use h3::server::RequestStream;
use http::{Request, StatusCode};

use crate::admission::{self, Refusal};
use crate::app::AppState;
use crate::limits::SessionPermit;
use crate::webtransport::{self, ConnectStream};
use crate::websocket::ClientIp;

/// The path of the echo endpoint.
pub const PATH: &str = "/echo";

/// The `/echo` WebSocket route.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(refusal) = admission::check_origin(&state, &headers, &uri, ip, "WebSocket echo") {
        return refusal.into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let permit = match admission::take_slot(&state, ip, "WebSocket echo") {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    let max = state.max_message_bytes();
    ws.max_message_size(max).max_frame_size(max).on_upgrade(move |socket| echo_ws(socket, permit, state))
}

/// Sends every binary message back until the browser closes, goes idle, sends text or the
/// gateway shuts down.
async fn echo_ws(mut socket: WebSocket, _permit: SessionPermit, state: AppState) {
    let ctl = state.session_control().clone();
    let close = loop {
        let next = tokio::select! {
            n = tokio::time::timeout(ctl.idle_timeout, socket.next()) => n,
            () = ctl.shutdown.cancelled() => break Some((1001, "the gateway is shutting down")),
        };
        match next {
            Err(_) => break Some((1000, "idle")),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => break None,
            Ok(Some(Ok(Message::Binary(b)))) => {
                if socket.send(Message::Binary(b)).await.is_err() {
                    break None;
                }
            }
            Ok(Some(Ok(Message::Text(_)))) => break Some((1003, "only binary messages are echoed")),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
        }
    };
    if let Some((code, reason)) = close {
        let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
    }
}

/// Answers a WebTransport `CONNECT` on `/echo`: a refusal (the connection goes on serving
/// requests) or `200` and a slot, after which the caller hands the connection to
/// [`run_webtransport`].
pub(crate) async fn accept_webtransport(
    req: Request<()>,
    mut stream: ConnectStream,
    remote: SocketAddr,
    state: &AppState,
) -> Option<(SessionPermit, ConnectStream)> {
    let ip = remote.ip().to_canonical();
    let refusal = if req.extensions().get::<h3::ext::Protocol>() != Some(&h3::ext::Protocol::WEB_TRANSPORT) {
        Err(Refusal { status: StatusCode::BAD_REQUEST, text: "only WebTransport is served on /echo" })
    } else {
        admission::check_origin(state, req.headers(), req.uri(), ip, "WebTransport echo")
    };
    let permit = match refusal.and_then(|()| admission::take_slot(state, ip, "WebTransport echo")) {
        Ok(p) => p,
        Err(r) => {
            webtransport::refuse(&mut stream, r, state).await;
            return None;
        }
    };
    webtransport::answer_ok(&mut stream, state).await.then_some((permit, stream))
}

/// Echoes the session's first bidirectional stream until either side ends it, it idles out
/// or the gateway shuts down; then closes the session.
pub(crate) async fn run_webtransport(
    permit: SessionPermit,
    connect: ConnectStream,
    quic: quinn::Connection,
    h3: h3::server::Connection<h3_quinn::Connection, Bytes>,
    state: AppState,
) {
    let session_id = connect.id().into_inner();
    let (mut connect_send, mut connect_recv) = connect.split();
    let ctl = state.session_control().clone();
    let opened = tokio::select! {
        s = webtransport::data_stream(&quic, session_id) => s,
        () = tokio::time::sleep(webtransport::STREAM_WAIT) => None,
        () = ctl.shutdown.cancelled() => None,
    };
    let (code, reason) = match opened {
        None => (1002, "no bidirectional stream was opened"),
        Some((mut send, mut recv)) => {
            let mut buf = vec![0u8; webtransport::READ_CHUNK];
            let end = loop {
                let read = tokio::select! {
                    r = tokio::time::timeout(ctl.idle_timeout, recv.read(&mut buf)) => r,
                    () = session_closed(&mut connect_recv) => break None,
                    () = ctl.shutdown.cancelled() => break Some((1001, "the gateway is shutting down")),
                };
                match read {
                    Err(_) => break Some((1000, "idle")),
                    Ok(Ok(Some(n))) => {
                        if send.write_all(&buf[..n]).await.is_err() {
                            break None;
                        }
                    }
                    Ok(Ok(None) | Err(_)) => break None,
                }
            };
            let _ = send.finish();
            match end {
                Some(e) => e,
                None => {
                    let _ = connect_send.finish().await;
                    (0, "")
                }
            }
        }
    };
    drop(permit);
    if code != 0 {
        webtransport::send_close(&mut connect_send, code, reason).await;
    }
    webtransport::linger(&quic, &mut connect_recv).await;
    drop((connect_recv, h3));
}

/// Resolves when the browser ends the `CONNECT` stream (its close capsule and FIN, or a
/// reset); capsules before that are read and dropped.
async fn session_closed(connect_recv: &mut RequestStream<h3_quinn::RecvStream, Bytes>) {
    loop {
        match futures::future::poll_fn(|cx| connect_recv.poll_recv_data(cx)).await {
            Ok(Some(mut capsule)) => capsule.advance(capsule.remaining()),
            Ok(None) | Err(_) => return,
        }
    }
}

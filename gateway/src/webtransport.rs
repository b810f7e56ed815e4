//! `CONNECT /wt` (`:protocol webtransport`, HTTP/3): a WebTransport session is one session
//! with a server node, carried on the session's first bidirectional stream.
//!
//! Before the `200` the request passes the same checks as a WebSocket upgrade
//! ([`crate::admission`]: origin 403, full 503, too many from the address 429, no node 503);
//! a `CONNECT` elsewhere gets 404. After it, the browser opens one bidirectional stream;
//! [`WtClient`] adapts it to the transport-neutral [`session::pipe`] — reads become
//! [`Inbound::Data`] (at most [`READ_CHUNK`] at a time, each Cap'n Proto message at most
//! `--max-message-bytes`, see [`crate::stream_limit`]), `Bytes` are written to it — and the
//! end of the `CONNECT` stream means the browser closed the session. [`close`] ends the
//! session with a `CLOSE_WEBTRANSPORT_SESSION` capsule whose code is the WebSocket close
//! code for the same end, so a browser sees the same numbers on either transport:
//!
//! | end | code | reason (`WebTransportCloseInfo.reason`) |
//! |---|---|---|
//! | message too big | 1009 | message too big: at most N bytes |
//! | node ended the stream (e.g. garbage) | 1011 | the server node ended this session |
//! | node connection lost | 1012 | the server node went away; reconnect |
//! | idle | 1000 | idle for N s |
//! | gateway shutting down | 1001 | the gateway is shutting down |
//! | no stream opened in time | 1002 | no bidirectional stream was opened |
//!
//! The session is read and closed with h3 and quinn directly (h3-webtransport 0.1 keeps the
//! `CONNECT` stream private and cannot send the close capsule): once a `CONNECT` is
//! accepted, the HTTP/3 connection belongs to that session, its first bidirectional stream
//! is taken from quinn after checking the WebTransport stream header (signal `0x41`, then
//! the session id), and any other stream on it is refused (`H3_REQUEST_REJECTED`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{FutureExt, Sink, Stream};
use h3::server::RequestStream;
use http::{HeaderValue, Method, Request, Response, StatusCode};

use crate::admission::{self, Refusal};
use crate::app::AppState;
use crate::limits::SessionPermit;
use crate::nodes::NodeStream;
use crate::session::{self, Inbound, SessionEnd};
use crate::stream_limit::MessageSizeGuard;

/// The path of WebTransport sessions.
pub const PATH: &str = "/wt";
/// Most bytes read from the browser at once.
pub const READ_CHUNK: usize = 64 << 10;
/// How long after the `200` the browser has to open its stream.
pub(crate) const STREAM_WAIT: Duration = Duration::from_secs(10);
/// How long a closed session waits for the browser to close its side.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// WebTransport bidirectional stream signal (draft-ietf-webtrans-http3).
const WT_BIDI_SIGNAL: u64 = 0x41;
/// Capsule type of `CLOSE_WEBTRANSPORT_SESSION`.
const CLOSE_SESSION_CAPSULE: u64 = 0x2843;
/// `H3_REQUEST_REJECTED`: for streams on a connection that carries a session.
const H3_REQUEST_REJECTED: u32 = 0x10b;
/// Longest close reason a capsule may carry.
const MAX_REASON: usize = 1024;

pub(crate) type ConnectStream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// A `CONNECT` that passed the checks: the session's slot, its node stream, and the
/// answered `CONNECT` stream.
pub(crate) struct Accepted {
    permit: SessionPermit,
    node: NodeStream,
    connect: ConnectStream,
    ip: std::net::IpAddr,
}

/// Whether an HTTP/3 request is an (extended) `CONNECT`.
pub(crate) fn is_connect(req: &Request<()>) -> bool {
    req.method() == Method::CONNECT
}

/// Answers a `CONNECT`: a refusal (the connection goes on serving requests) or `200`, after
/// which the caller hands the connection to [`run`].
pub(crate) async fn accept(
    req: Request<()>,
    mut stream: ConnectStream,
    remote: SocketAddr,
    state: &AppState,
) -> Option<Accepted> {
    let ip = remote.ip().to_canonical();
    let is_wt = req.extensions().get::<h3::ext::Protocol>() == Some(&h3::ext::Protocol::WEB_TRANSPORT);
    let refusal = if req.uri().path() != PATH {
        Some(Refusal { status: StatusCode::NOT_FOUND, text: "no WebTransport endpoint here; sessions are on /wt" })
    } else if !is_wt {
        Some(Refusal { status: StatusCode::BAD_REQUEST, text: "only WebTransport (CONNECT with :protocol webtransport) is served on /wt" })
    } else {
        admission::check_origin(state, req.headers(), req.uri(), ip, "WebTransport").err()
    };
    if let Some(r) = refusal {
        refuse(&mut stream, r, state).await;
        return None;
    }
    let (permit, node) = match admission::admit(state, ip, "WebTransport").await {
        Ok(a) => a,
        Err(r) => {
            refuse(&mut stream, r, state).await;
            return None;
        }
    };
    answer_ok(&mut stream, state).await.then_some(Accepted { permit, node, connect: stream, ip })
}

/// Accepts a `CONNECT` with `200`; false when the browser went away before it.
pub(crate) async fn answer_ok(stream: &mut ConnectStream, state: &AppState) -> bool {
    let mut resp = Response::builder().status(StatusCode::OK).body(()).expect("response");
    for (name, value) in state.security_headers() {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    // Chrome checks this header for the draft it speaks.
    resp.headers_mut().insert("sec-webtransport-http3-draft", HeaderValue::from_static("draft02"));
    match stream.send_response(resp).await {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "WebTransport CONNECT: the browser went away before the answer");
            false
        }
    }
}

pub(crate) async fn refuse(stream: &mut ConnectStream, r: Refusal, state: &AppState) {
    let mut resp = Response::builder().status(r.status).body(()).expect("response");
    let headers = resp.headers_mut();
    for (name, value) in state.security_headers() {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(crate::assets::NO_CACHE));
    if let Some(v) = r.retry_after() {
        headers.insert(http::header::RETRY_AFTER, v);
    }
    let sent = async {
        stream.send_response(resp).await?;
        stream.send_data(Bytes::from_static(r.text.as_bytes())).await?;
        stream.finish().await
    };
    if let Err(e) = sent.await {
        tracing::debug!(error = %e, "WebTransport refusal not delivered");
    }
}

/// Runs an accepted session on `quic` until it ends, then closes it. `h3` is the HTTP/3
/// connection: held (dropping it closes the connection) but no longer polled, so every
/// stream the browser opens now reaches this session.
pub(crate) async fn run(
    acc: Accepted,
    quic: quinn::Connection,
    h3: h3::server::Connection<h3_quinn::Connection, Bytes>,
    state: AppState,
) {
    let Accepted { permit, mut node, connect, ip } = acc;
    let session_id = connect.id().into_inner();
    let (mut connect_send, mut connect_recv) = connect.split();
    tracing::debug!(node = %node.node, %ip, transport = "WebTransport", "session opened");
    let started = tokio::time::Instant::now();
    let ctl = state.session_control();

    let opened = tokio::select! {
        s = data_stream(&quic, session_id) => s,
        () = tokio::time::sleep(STREAM_WAIT) => None,
        () = ctl.shutdown.cancelled() => None,
    };
    let Some((send, recv)) = opened else {
        let end = if ctl.shutdown.is_cancelled() { Some(SessionEnd::ShuttingDown) } else { None };
        let (code, reason) = match end {
            Some(e) => close_reason(e, &state).unwrap_or((1001, String::new())),
            None => (1002, "no bidirectional stream was opened".into()),
        };
        drop(permit);
        send_close(&mut connect_send, code, &reason).await;
        linger(&quic, &mut connect_recv).await;
        drop((connect_recv, h3));
        return;
    };
    // Streams opened later are not part of the session.
    let refuse_others = tokio::spawn(refuse_streams(quic.clone()));
    let mut client = WtClient::new(recv, send, connect_recv, state.max_message_bytes());
    let end = session::pipe(&mut client, &mut node.recv, &mut node.send, node.conn.closed().map(|_| ()), ctl).await;
    tracing::info!(node = %node.node, transport = "WebTransport", end = end.as_str(), secs = started.elapsed().as_secs(), "session ended");
    refuse_others.abort();
    drop((node, permit));
    close(&mut connect_send, &mut client, end, &state).await;
    // The browser's half of the CONNECT stream stays open (dropped, it would be stopped,
    // which browsers take as the session's connection lost) until it closes its side.
    linger(&quic, &mut client.connect).await;
    drop((client, h3));
}

/// Waits for the session's bidirectional stream; refuses streams that are not it.
pub(crate) async fn data_stream(quic: &quinn::Connection, session_id: u64) -> Option<(quinn::SendStream, quinn::RecvStream)> {
    loop {
        let (mut send, mut recv) = quic.accept_bi().await.ok()?;
        match (read_varint(&mut recv).await, read_varint(&mut recv).await) {
            (Some(WT_BIDI_SIGNAL), Some(id)) if id == session_id => return Some((send, recv)),
            _ => {
                let _ = send.reset(H3_REQUEST_REJECTED.into());
                let _ = recv.stop(H3_REQUEST_REJECTED.into());
            }
        }
    }
}

/// Refuses every further bidirectional stream on a connection that carries a session.
async fn refuse_streams(quic: quinn::Connection) {
    while let Ok((mut send, mut recv)) = quic.accept_bi().await {
        let _ = send.reset(H3_REQUEST_REJECTED.into());
        let _ = recv.stop(H3_REQUEST_REJECTED.into());
    }
}

/// Reads one QUIC variable-length integer (RFC 9000 §16).
async fn read_varint(recv: &mut quinn::RecvStream) -> Option<u64> {
    let mut first = [0u8; 1];
    recv.read_exact(&mut first).await.ok()?;
    let len = 1usize << (first[0] >> 6);
    let mut rest = [0u8; 7];
    recv.read_exact(&mut rest[..len - 1]).await.ok()?;
    Some(rest[..len - 1].iter().fold((first[0] & 0x3f) as u64, |v, &b| (v << 8) | b as u64))
}

/// Appends a QUIC variable-length integer.
fn put_varint(buf: &mut BytesMut, v: u64) {
    match v {
        0..=0x3f => buf.put_u8(v as u8),
        0x40..=0x3fff => buf.put_u16(0x4000 | v as u16),
        0x4000..=0x3fff_ffff => buf.put_u32(0x8000_0000 | v as u32),
        _ => buf.put_u64(0xc000_0000_0000_0000 | v),
    }
}

/// A `CLOSE_WEBTRANSPORT_SESSION` capsule: code (32 bits) and a UTF-8 reason (≤ 1024 bytes).
pub fn close_capsule(code: u32, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut b = BytesMut::new();
    put_varint(&mut b, CLOSE_SESSION_CAPSULE);
    put_varint(&mut b, 4 + reason.len() as u64);
    b.put_u32(code);
    b.put_slice(reason);
    b.freeze()
}

/// The close code and reason for `end`, or none when the browser ended the session itself.
fn close_reason(end: SessionEnd, state: &AppState) -> Option<(u32, String)> {
    Some(match end {
        SessionEnd::ClientClosed | SessionEnd::ClientFailed => return None,
        SessionEnd::TextRefused => (1003, "only binary data is accepted".into()),
        SessionEnd::TooBig => (1009, format!("message too big: at most {} bytes", state.max_message_bytes())),
        SessionEnd::NodeEnded => (1011, "the server node ended this session".into()),
        SessionEnd::NodeLost => (1012, "the server node went away; reconnect".into()),
        SessionEnd::Idle => (1000, format!("idle for {} s", state.session_control().idle_timeout.as_secs())),
        SessionEnd::ShuttingDown => (1001, "the gateway is shutting down".into()),
    })
}

/// Ends the session as `end` says: finishes the data stream and sends the close capsule
/// (or, when the browser closed, just finishes the `CONNECT` stream).
async fn close(
    connect_send: &mut RequestStream<h3_quinn::SendStream<Bytes>, Bytes>,
    client: &mut WtClient,
    end: SessionEnd,
    state: &AppState,
) {
    let _ = client.send.finish();
    match close_reason(end, state) {
        Some((code, reason)) => send_close(connect_send, code, &reason).await,
        None => {
            let _ = connect_send.finish().await;
        }
    }
}

pub(crate) async fn send_close(connect_send: &mut RequestStream<h3_quinn::SendStream<Bytes>, Bytes>, code: u32, reason: &str) {
    let sent = async {
        connect_send.send_data(close_capsule(code, reason)).await?;
        connect_send.finish().await
    };
    if let Err(e) = sent.await {
        tracing::debug!(error = %e, "WebTransport close capsule not sent");
    }
}

/// Gives the browser a moment to receive the close and close the connection itself; the
/// caller then drops the connection.
pub(crate) async fn linger(quic: &quinn::Connection, connect_recv: &mut RequestStream<h3_quinn::RecvStream, Bytes>) {
    let their_side_closed = async {
        loop {
            match futures::future::poll_fn(|cx| connect_recv.poll_recv_data(cx)).await {
                Ok(Some(mut capsule)) => capsule.advance(capsule.remaining()),
                Ok(None) | Err(_) => return,
            }
        }
    };
    let closed = async {
        tokio::select! {
            () = their_side_closed => {}
            _ = quic.closed() => {}
        }
    };
    if tokio::time::timeout(CLOSE_WAIT, closed).await.is_err() {
        tracing::debug!("the browser did not close its side of the WebTransport session; closing the connection");
    }
}

/// The session's bidirectional stream as a session transport; the end of the `CONNECT`
/// stream (the browser's close capsule and FIN, or a reset) ends it too.
struct WtClient {
    recv: quinn::RecvStream,
    send: quinn::SendStream,
    connect: RequestStream<h3_quinn::RecvStream, Bytes>,
    guard: MessageSizeGuard,
    buf: BytesMut,
    pending: Bytes,
    done: bool,
}

impl WtClient {
    fn new(
        recv: quinn::RecvStream,
        send: quinn::SendStream,
        connect: RequestStream<h3_quinn::RecvStream, Bytes>,
        max: usize,
    ) -> Self {
        WtClient {
            recv,
            send,
            connect,
            guard: MessageSizeGuard::new(max),
            buf: BytesMut::new(),
            pending: Bytes::new(),
            done: false,
        }
    }
}

impl Stream for WtClient {
    type Item = Result<Inbound, SessionEnd>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        // The browser closes a session with a capsule and FIN on the CONNECT stream.
        loop {
            match this.connect.poll_recv_data(cx) {
                Poll::Ready(Ok(Some(mut capsule))) => capsule.advance(capsule.remaining()),
                Poll::Ready(Ok(None)) | Poll::Ready(Err(_)) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        this.buf.resize(READ_CHUNK, 0);
        let item = match futures::ready!(this.recv.poll_read(cx, &mut this.buf)) {
            Ok(0) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Ok(n) => {
                let data = this.buf.split_to(n).freeze();
                match this.guard.feed(&data) {
                    Ok(()) => Ok(Inbound::Data(data)),
                    Err(_) => Err(SessionEnd::TooBig),
                }
            }
            Err(_) => Err(SessionEnd::ClientFailed),
        };
        if item.is_err() {
            this.done = true;
        }
        Poll::Ready(Some(item))
    }
}

impl WtClient {
    fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), quinn::WriteError>> {
        while !self.pending.is_empty() {
            let n = futures::ready!(Pin::new(&mut self.send).poll_write(cx, &self.pending))?;
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl Sink<Bytes> for WtClient {
    type Error = quinn::WriteError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_write_pending(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Bytes) -> Result<(), Self::Error> {
        self.pending = item;
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_write_pending(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        futures::ready!(self.poll_write_pending(cx))?;
        let _ = self.send.finish();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_capsules_carry_code_and_a_bounded_reason() {
        let c = close_capsule(1011, "the server node ended this session");
        // Type 0x2843 as a 2-byte varint, length 4 + 34, code big-endian, reason.
        assert_eq!(&c[..2], &[0x68, 0x43]);
        assert_eq!(c[2] as usize, 4 + 34);
        assert_eq!(&c[3..7], &1011u32.to_be_bytes());
        assert_eq!(&c[7..], b"the server node ended this session");
        let long = "é".repeat(600);
        let c = close_capsule(1, &long);
        // Length 4 + 1024 takes a 2-byte varint: the reason starts at 2 + 2 + 4.
        let reason = std::str::from_utf8(&c[8..]).expect("cut on a character boundary");
        assert_eq!(reason.len(), 1024);
    }

    #[test]
    fn varints_use_the_shortest_form() {
        for (v, want) in [(0x25u64, vec![0x25]), (0x41, vec![0x40, 0x41]), (0x2843, vec![0x68, 0x43]), (494_878_333, vec![0x9d, 0x7f, 0x3e, 0x7d])] {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            assert_eq!(b.to_vec(), want, "{v:#x}");
        }
    }
}

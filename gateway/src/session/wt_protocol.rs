//! The WebTransport wire details both WebTransport routes share (draft-ietf-webtrans-http3
//! as Chrome speaks it, `draft02`), kept apart from the session logic:
//!
//! - answering an extended `CONNECT`: `200` with the security headers and
//!   `sec-webtransport-http3-draft`, or a refusal with its status and a sentence;
//! - taking the session's bidirectional stream from quinn after checking its stream header
//!   (signal `0x41`, then the session id) and refusing every other stream
//!   (`H3_REQUEST_REJECTED`);
//! - closing: a `CLOSE_WEBTRANSPORT_SESSION` capsule (code and reason) on the `CONNECT`
//!   stream, then a moment for the browser to close its side.
//!
//! The session is read and closed with h3 and quinn directly because h3-webtransport 0.1
//! keeps the `CONNECT` stream private and cannot send the close capsule.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h3::server::RequestStream;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};

use crate::security::NO_CACHE;
use crate::session::Refusal;

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

/// The `CONNECT` request's stream: the answer goes out on it, capsules travel on it.
pub(crate) type ConnectStream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;
/// The browser's half of the `CONNECT` stream.
pub(crate) type ConnectRecv = RequestStream<h3_quinn::RecvStream, Bytes>;
/// The gateway's half of the `CONNECT` stream.
pub(crate) type ConnectSend = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// Whether an HTTP/3 request is an (extended) `CONNECT`.
pub(crate) fn is_connect(req: &Request<()>) -> bool {
    req.method() == Method::CONNECT
}

/// Whether a `CONNECT` asks for WebTransport (`:protocol webtransport`).
pub(crate) fn is_webtransport(req: &Request<()>) -> bool {
    req.extensions().get::<h3::ext::Protocol>() == Some(&h3::ext::Protocol::WEB_TRANSPORT)
}

/// Accepts a `CONNECT` with `200`; false when the browser went away before it.
pub(crate) async fn answer_ok(stream: &mut ConnectStream, security: &[(HeaderName, HeaderValue)]) -> bool {
    let mut resp = Response::builder().status(StatusCode::OK).body(()).expect("response");
    for (name, value) in security {
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

/// Refuses a `CONNECT` with the refusal's status and sentence.
pub(crate) async fn refuse(stream: &mut ConnectStream, r: Refusal, security: &[(HeaderName, HeaderValue)]) {
    let mut resp = Response::builder().status(r.status).body(()).expect("response");
    let headers = resp.headers_mut();
    for (name, value) in security {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
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
pub(crate) async fn refuse_streams(quic: quinn::Connection) {
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

/// Sends the close capsule and finishes the `CONNECT` stream.
pub(crate) async fn send_close(connect_send: &mut ConnectSend, code: u32, reason: &str) {
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
pub(crate) async fn linger(quic: &quinn::Connection, connect_recv: &mut ConnectRecv) {
    let closed = async {
        tokio::select! {
            () = connect_closed(connect_recv) => {}
            _ = quic.closed() => {}
        }
    };
    if tokio::time::timeout(CLOSE_WAIT, closed).await.is_err() {
        tracing::debug!("the browser did not close its side of the WebTransport session; closing the connection");
    }
}

/// Resolves when the browser ends its half of the `CONNECT` stream (its close capsule and
/// FIN, or a reset); capsules before that are read and dropped.
pub(crate) async fn connect_closed(connect_recv: &mut ConnectRecv) {
    loop {
        match futures::future::poll_fn(|cx| connect_recv.poll_recv_data(cx)).await {
            Ok(Some(mut capsule)) => capsule.advance(capsule.remaining()),
            Ok(None) | Err(_) => return,
        }
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

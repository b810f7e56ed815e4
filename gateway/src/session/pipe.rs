//! One browser session: bytes between a browser transport and a peer, both ways, until
//! either side ends, nothing moves for the idle timeout, or the gateway shuts down.
//!
//! This is the seam between transports. [`pipe`] knows neither WebSockets nor WebTransport:
//! the browser side is any `Stream` of [`Inbound`] plus `Sink` of `Bytes`, and the peer any
//! `AsyncRead + AsyncWrite` pair with a future that resolves when the peer is lost (a node's
//! connection closing). The adapters ([`crate::session::websocket`],
//! [`crate::session::webtransport`]) map their frames to [`Inbound`] and their refusals
//! (text, too big) to a [`SessionEnd`], and afterwards close the session with the code
//! [`SessionEnd::close_code`] gives, the same number on either transport:
//!
//! | end | code | meaning for the browser |
//! |---|---|---|
//! | text message | 1003 | the protocol is binary Cap'n Proto |
//! | message too big | 1009 | bigger than `--max-message-bytes` |
//! | node ended the stream | 1011 | the node refused what it was sent; reconnect |
//! | node connection lost | 1012 | service restart: reconnect at once (another node) |
//! | idle | 1000 | nothing moved for `--idle-timeout-secs` |
//! | gateway shutting down | 1001 | going away: reconnect |
//!
//! The gateway never looks inside the bytes: they are a Cap'n Proto RPC stream between the
//! browser and its node, and they are never logged.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::GatewayMetrics;

/// Most bytes read from a peer at once (one message to the browser).
const READ_CHUNK: usize = 64 << 10;
/// Bytes read from a peer at first, into a buffer on the stack: a session waiting for its peer
/// holds no read buffer ([`read_available`]). A buffer of [`READ_CHUNK`] reserved by every
/// idle session cost the gateway about 9 KiB each (the pages of it that had been touched).
const FIRST_READ: usize = 16 << 10;

/// What a browser transport hands to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Bytes for the node.
    Data(Bytes),
    /// A frame that carries nothing for the node (a ping or pong) but shows the browser is
    /// there: it keeps the session from idling out.
    Activity,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The browser closed the session.
    ClientClosed,
    /// The browser's transport failed (reset, protocol violation).
    ClientFailed,
    /// The browser sent text; the protocol is binary.
    TextRefused,
    /// The browser sent a message bigger than allowed.
    TooBig,
    /// The node ended the stream (it does so on bytes it cannot parse).
    NodeEnded,
    /// The connection to the node was lost; the node is marked down.
    NodeLost,
    /// Nothing moved in either direction for the idle timeout.
    Idle,
    /// The gateway is shutting down.
    ShuttingDown,
}

impl SessionEnd {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::ClientClosed => "client_closed",
            SessionEnd::ClientFailed => "client_failed",
            SessionEnd::TextRefused => "text_refused",
            SessionEnd::TooBig => "too_big",
            SessionEnd::NodeEnded => "node_ended",
            SessionEnd::NodeLost => "node_lost",
            SessionEnd::Idle => "idle",
            SessionEnd::ShuttingDown => "shutting_down",
        }
    }

    /// The close code and reason for this end (see the module docs), or none when the
    /// browser ended the session itself. `max` is the message-size limit, `idle` the idle
    /// timeout, both named in the reason.
    pub fn close_code(self, max: usize, idle: Duration) -> Option<(u16, String)> {
        Some(match self {
            SessionEnd::ClientClosed | SessionEnd::ClientFailed => return None,
            SessionEnd::TextRefused => (1003, "text messages are not accepted: the session is binary".into()),
            SessionEnd::TooBig => (1009, format!("message too big: at most {max} bytes")),
            SessionEnd::NodeEnded => (1011, "the server node ended this session".into()),
            SessionEnd::NodeLost => (1012, "the server node went away; reconnect".into()),
            SessionEnd::Idle => (1000, format!("idle for {} s", idle.as_secs())),
            SessionEnd::ShuttingDown => (1001, "the gateway is shutting down".into()),
        })
    }
}

/// What every session shares: its idle timeout and the gateway's shutdown signal.
#[derive(Clone, Debug)]
pub struct SessionControl {
    /// A session with no frame in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Cancelled when the gateway shuts down.
    pub shutdown: CancellationToken,
    /// Where frames, bytes and session ends are counted.
    pub metrics: Arc<GatewayMetrics>,
}

/// Pipes bytes between `client` and a peer (`node_read`, `node_write`) until the session
/// ends, and says why.
///
/// Every `Data` payload is written to `node_write` as is; every read from `node_read` is sent
/// to the client as one `Bytes`. When the client ends, the node stream is finished (the node
/// sees end of stream). The caller closes the client transport afterwards, as the returned
/// [`SessionEnd`] says.
pub async fn pipe<C, R, W, L>(
    client: &mut C,
    mut node_read: R,
    mut node_write: W,
    node_lost: L,
    ctl: &SessionControl,
) -> SessionEnd
where
    C: Stream<Item = Result<Inbound, SessionEnd>> + Sink<Bytes> + Unpin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    L: Future<Output = ()>,
{
    let start = Instant::now();
    // Milliseconds after `start` of the last frame in either direction.
    let last = AtomicU64::new(0);
    let touch = || last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    let (mut to_client, mut from_client) = client.split();
    let (frames_up, bytes_up) = (ctl.metrics.frames.with(&["to_node"]), ctl.metrics.bytes.with(&["to_node"]));
    let (frames_down, bytes_down) = (ctl.metrics.frames.with(&["to_client"]), ctl.metrics.bytes.with(&["to_client"]));

    let up = async {
        loop {
            match from_client.next().await {
                None => {
                    let _ = node_write.shutdown().await;
                    return SessionEnd::ClientClosed;
                }
                Some(Err(end)) => return end,
                Some(Ok(Inbound::Activity)) => touch(),
                Some(Ok(Inbound::Data(bytes))) => {
                    touch();
                    frames_up.inc();
                    bytes_up.add(bytes.len() as u64);
                    if node_write.write_all(&bytes).await.is_err() || node_write.flush().await.is_err() {
                        return SessionEnd::NodeEnded;
                    }
                }
            }
        }
    };
    let down = async {
        loop {
            match read_available(&mut node_read).await {
                Ok(bytes) if bytes.is_empty() => return SessionEnd::NodeEnded,
                Err(_) => return SessionEnd::NodeEnded,
                Ok(bytes) => {
                    touch();
                    frames_down.inc();
                    bytes_down.add(bytes.len() as u64);
                    if to_client.send(bytes).await.is_err() {
                        return SessionEnd::ClientFailed;
                    }
                }
            }
        }
    };
    let idle = async {
        loop {
            let deadline = start + Duration::from_millis(last.load(Ordering::Relaxed)) + ctl.idle_timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    let node_lost = node_lost.fuse();
    futures::pin_mut!(node_lost);
    let end = tokio::select! {
        e = up => e,
        e = down => e,
        () = idle => SessionEnd::Idle,
        () = &mut node_lost => SessionEnd::NodeLost,
        () = ctl.shutdown.cancelled() => SessionEnd::ShuttingDown,
    };
    // A stream error because the whole connection went is a lost node, not a refusal.
    let end = if end == SessionEnd::NodeEnded && node_lost.now_or_never().is_some() { SessionEnd::NodeLost } else { end };
    ctl.metrics.ended.with(&[end.as_str()]).inc();
    end
}

/// Waits for bytes from `r` without holding a buffer: each poll reads into one on the stack,
/// of [`FIRST_READ`], and copies out only what came. When that fills it, what else is already
/// there is read behind it, up to [`READ_CHUNK`] in all, without waiting. Empty at the end of
/// the stream. (An error or the end met after some bytes comes with the next call.)
async fn read_available<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Bytes> {
    std::future::poll_fn(|cx| {
        let mut first = [MaybeUninit::<u8>::uninit(); FIRST_READ];
        let mut read = ReadBuf::uninit(&mut first);
        futures::ready!(Pin::new(&mut *r).poll_read(cx, &mut read))?;
        if read.filled().len() < FIRST_READ {
            return Poll::Ready(Ok(Bytes::copy_from_slice(read.filled())));
        }
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        buf.extend_from_slice(read.filled());
        while buf.len() < READ_CHUNK {
            match std::pin::pin!(r.read_buf(&mut buf)).poll(cx) {
                Poll::Ready(Ok(n)) if n > 0 => {}
                _ => break,
            }
        }
        Poll::Ready(Ok(buf.freeze()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::channel::mpsc;
    use tokio::io::{duplex, DuplexStream};

    use super::*;

    /// A browser transport made of channels, as tests of the axum example feed sockets.
    struct ChannelClient {
        inbound: mpsc::UnboundedReceiver<Result<Inbound, SessionEnd>>,
        outbound: mpsc::UnboundedSender<Bytes>,
    }

    impl Stream for ChannelClient {
        type Item = Result<Inbound, SessionEnd>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.inbound.poll_next_unpin(cx)
        }
    }

    impl Sink<Bytes> for ChannelClient {
        type Error = mpsc::SendError;
        fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.outbound.poll_ready(cx)
        }
        fn start_send(mut self: Pin<&mut Self>, item: Bytes) -> Result<(), Self::Error> {
            self.outbound.start_send(item)
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.outbound.close_channel();
            Poll::Ready(Ok(()))
        }
    }

    struct Harness {
        to_session: mpsc::UnboundedSender<Result<Inbound, SessionEnd>>,
        from_session: mpsc::UnboundedReceiver<Bytes>,
        client: ChannelClient,
        node: DuplexStream,
        session_side: DuplexStream,
        ctl: SessionControl,
    }

    fn harness(idle: Duration) -> Harness {
        let (to_session, inbound) = mpsc::unbounded();
        let (outbound, from_session) = mpsc::unbounded();
        let (node, session_side) = duplex(1 << 16);
        Harness {
            to_session,
            from_session,
            client: ChannelClient { inbound, outbound },
            node,
            session_side,
            ctl: SessionControl { idle_timeout: idle, shutdown: CancellationToken::new(), metrics: GatewayMetrics::new() },
        }
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_and_a_client_close_finishes_the_node_stream() {
        let mut h = harness(Duration::from_secs(60));
        let (r, w) = tokio::io::split(h.session_side);
        let session = tokio::spawn(async move {
            let mut c = h.client;
            pipe(&mut c, r, w, futures::future::pending(), &h.ctl).await
        });
        h.to_session.unbounded_send(Ok(Inbound::Data(Bytes::from_static(b"hello ")))).unwrap();
        h.to_session.unbounded_send(Ok(Inbound::Data(Bytes::from_static(b"node")))).unwrap();
        let mut got = [0u8; 10];
        h.node.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello node");
        h.node.write_all(b"hi browser").await.unwrap();
        assert_eq!(h.from_session.next().await.unwrap(), Bytes::from_static(b"hi browser"));
        drop(h.to_session);
        assert_eq!(session.await.unwrap(), SessionEnd::ClientClosed);
        let mut rest = Vec::new();
        h.node.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "the node sees the end of the stream");
    }

    #[tokio::test]
    async fn a_read_takes_what_has_arrived_up_to_a_chunk() {
        let (mut peer, mut session_side) = duplex(256 << 10);
        peer.write_all(&[7; 10]).await.unwrap();
        assert_eq!(read_available(&mut session_side).await.unwrap().len(), 10);
        // More than fits at once: as much as a read takes, then the rest.
        peer.write_all(&[1; 100 << 10]).await.unwrap();
        assert_eq!(read_available(&mut session_side).await.unwrap().len(), READ_CHUNK);
        assert_eq!(read_available(&mut session_side).await.unwrap().len(), (100 << 10) - READ_CHUNK);
        drop(peer);
        assert!(read_available(&mut session_side).await.unwrap().is_empty(), "the end of the stream");
    }

    #[tokio::test(start_paused = true)]
    async fn pings_keep_a_session_alive_and_silence_ends_it() {
        let h = harness(Duration::from_secs(120));
        let (r, w) = tokio::io::split(h.session_side);
        let to_session = h.to_session.clone();
        let started = Instant::now();
        let session = tokio::spawn(async move {
            let mut c = h.client;
            pipe(&mut c, r, w, futures::future::pending(), &h.ctl).await
        });
        // A ping every 60 s for ten minutes: never idle.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(60)).await;
            to_session.unbounded_send(Ok(Inbound::Activity)).unwrap();
        }
        assert!(!session.is_finished());
        assert_eq!(session.await.unwrap(), SessionEnd::Idle);
        let lived = started.elapsed();
        assert!(lived >= Duration::from_secs(720) && lived < Duration::from_secs(722), "{lived:?}");
        drop(h.node);
    }

    #[test]
    fn every_end_but_the_browsers_own_has_one_close_code_for_both_transports() {
        let code = |e: SessionEnd| e.close_code(1000, Duration::from_secs(60)).map(|(c, _)| c);
        assert_eq!(code(SessionEnd::ClientClosed), None);
        assert_eq!(code(SessionEnd::ClientFailed), None);
        assert_eq!(code(SessionEnd::TextRefused), Some(1003));
        assert_eq!(code(SessionEnd::TooBig), Some(1009));
        assert_eq!(code(SessionEnd::NodeEnded), Some(1011));
        assert_eq!(code(SessionEnd::NodeLost), Some(1012));
        assert_eq!(code(SessionEnd::Idle), Some(1000));
        assert_eq!(code(SessionEnd::ShuttingDown), Some(1001));
        let (_, reason) = SessionEnd::TooBig.close_code(1000, Duration::from_secs(60)).unwrap();
        assert_eq!(reason, "message too big: at most 1000 bytes");
        let (_, reason) = SessionEnd::Idle.close_code(1000, Duration::from_secs(60)).unwrap();
        assert_eq!(reason, "idle for 60 s");
    }

    #[tokio::test]
    async fn refusals_node_ends_losses_and_shutdown_are_reported() {
        // The transport refuses a text frame.
        let h = harness(Duration::from_secs(60));
        let (r, w) = tokio::io::split(h.session_side);
        h.to_session.unbounded_send(Err(SessionEnd::TextRefused)).unwrap();
        let mut c = h.client;
        assert_eq!(pipe(&mut c, r, w, futures::future::pending(), &h.ctl).await, SessionEnd::TextRefused);

        // The node closes the stream.
        let h = harness(Duration::from_secs(60));
        let (r, w) = tokio::io::split(h.session_side);
        drop(h.node);
        let mut c = h.client;
        assert_eq!(pipe(&mut c, r, w, futures::future::pending(), &h.ctl).await, SessionEnd::NodeEnded);

        // The node's connection is lost: the stream fails and the loss is already known.
        let h = harness(Duration::from_secs(60));
        let (r, w) = tokio::io::split(h.session_side);
        drop(h.node);
        let mut c = h.client;
        assert_eq!(pipe(&mut c, r, w, futures::future::ready(()), &h.ctl).await, SessionEnd::NodeLost);

        // The gateway shuts down.
        let h = harness(Duration::from_secs(60));
        let (r, w) = tokio::io::split(h.session_side);
        h.ctl.shutdown.cancel();
        let mut c = h.client;
        assert_eq!(pipe(&mut c, r, w, futures::future::pending(), &h.ctl).await, SessionEnd::ShuttingDown);
        drop(h.node);
    }
}

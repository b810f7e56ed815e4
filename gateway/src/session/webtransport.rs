//! `CONNECT /wt` (`:protocol webtransport`, HTTP/3): a WebTransport session is one session
//! with a peer, carried on the session's first bidirectional stream.
//!
//! [`Endpoints`] says which `CONNECT` path pipes to which [`Target`]: `/wt` to a server
//! node, and with `--bench-echo` `/echo` to the in-process echo; a `CONNECT` elsewhere gets
//! 404. Before the `200` the request passes the same checks as a WebSocket upgrade
//! (`admission.rs`: origin 403, full 503, too many from the address 429, no node 503). After
//! it, the browser opens one bidirectional stream; [`WtClient`] adapts it to the
//! transport-neutral [`session::pipe`] — reads become [`Inbound::Data`] (at most
//! [`READ_CHUNK`] at a time; towards a node each Cap'n Proto message at most
//! `--max-message-bytes`, see [`crate::stream_limit`]), `Bytes` are written to it — and the
//! end of the `CONNECT` stream means the browser closed the session. The session ends with
//! a `CLOSE_WEBTRANSPORT_SESSION` capsule carrying [`SessionEnd::close_code`], the
//! WebSocket close code for the same end, so a browser sees the same numbers on either
//! transport; one more is WebTransport's own: 1002, no stream opened in time.
//!
//! Once a `CONNECT` is accepted, the HTTP/3 connection belongs to that session: any other
//! stream on it is refused. The wire details are in `wt_protocol.rs`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::{Sink, Stream};
use http::{Request, StatusCode};

use super::admission::{self, Refusal};
use super::wt_protocol::{self as wt, ConnectRecv, ConnectSend, ConnectStream};
use crate::session::limits::SessionPermit;
use crate::session::stream_limit::MessageSizeGuard;
use crate::session::{self, Inbound, Peer, SessionEnd, Sessions, Target};

pub use super::wt_protocol::close_capsule;

/// The path of WebTransport sessions with a node.
pub const PATH: &str = "/wt";
/// Most bytes read from the browser at once.
pub const READ_CHUNK: usize = 64 << 10;

/// The WebTransport endpoints: which `CONNECT` path pipes to which target.
#[derive(Clone)]
pub struct Endpoints {
    sessions: Sessions,
    paths: Vec<(&'static str, Target)>,
}

impl Endpoints {
    /// No endpoint yet: every `CONNECT` gets 404.
    pub fn new(sessions: Sessions) -> Self {
        Endpoints { sessions, paths: Vec::new() }
    }

    /// Serves WebTransport sessions on `path`, piped to `target`.
    pub fn at(mut self, path: &'static str, target: Target) -> Self {
        self.paths.push((path, target));
        self
    }

    /// What sessions share (the shutdown signal, the limits).
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    fn target(&self, path: &str) -> Option<Target> {
        self.paths.iter().find(|(p, _)| *p == path).map(|&(_, t)| t)
    }
}

/// A `CONNECT` that passed the checks: the session's slot, its peer, and the answered
/// `CONNECT` stream.
pub(crate) struct Accepted {
    permit: SessionPermit,
    peer: Box<dyn Peer>,
    connect: ConnectStream,
    ip: IpAddr,
}

/// Whether an HTTP/3 request is an (extended) `CONNECT`, for [`accept`].
pub(crate) fn is_connect(req: &Request<()>) -> bool {
    wt::is_connect(req)
}

/// Answers a `CONNECT`: a refusal (the connection goes on serving requests) or `200`, after
/// which the caller hands the connection to [`run`].
pub(crate) async fn accept(
    req: Request<()>,
    mut stream: ConnectStream,
    remote: SocketAddr,
    endpoints: &Endpoints,
) -> Option<Accepted> {
    let sessions = &endpoints.sessions;
    let ip = remote.ip().to_canonical();
    let checked = match endpoints.target(req.uri().path()) {
        None => Err(Refusal {
            status: StatusCode::NOT_FOUND,
            text: "no WebTransport endpoint here; sessions are on /wt",
            retry_after_ms: 0,
        }),
        Some(_) if !wt::is_webtransport(&req) => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            text: "only WebTransport (CONNECT with :protocol webtransport) is served here",
            retry_after_ms: 0,
        }),
        Some(target) => admission::check_origin(sessions, req.headers(), req.uri(), ip, "WebTransport").map(|()| target),
    };
    let admitted = match checked {
        Ok(target) => admission::admit(sessions, ip, "WebTransport", target).await,
        Err(r) => Err(r),
    };
    let (permit, peer) = match admitted {
        Ok(a) => a,
        Err(r) => {
            wt::refuse(&mut stream, r, sessions.security_headers()).await;
            return None;
        }
    };
    wt::answer_ok(&mut stream, sessions.security_headers()).await.then_some(Accepted { permit, peer, connect: stream, ip })
}

/// Runs an accepted session on `quic` until it ends, then closes it. `h3` is the HTTP/3
/// connection: held (dropping it closes the connection) but no longer polled, so every
/// stream the browser opens now reaches this session.
pub(crate) async fn run(
    acc: Accepted,
    quic: quinn::Connection,
    h3: h3::server::Connection<h3_quinn::Connection, Bytes>,
    sessions: Sessions,
) {
    let Accepted { permit, mut peer, connect, ip } = acc;
    let session_id = connect.id().into_inner();
    let (mut connect_send, mut connect_recv) = connect.split();
    tracing::debug!(node = %peer.name(), %ip, transport = "WebTransport", "session opened");
    let started = tokio::time::Instant::now();
    let ctl = sessions.control();

    let opened = tokio::select! {
        s = wt::data_stream(&quic, session_id) => s,
        () = tokio::time::sleep(wt::STREAM_WAIT) => None,
        () = ctl.shutdown.cancelled() => None,
    };
    let Some((send, recv)) = opened else {
        let (code, reason) = if ctl.shutdown.is_cancelled() {
            close_code(SessionEnd::ShuttingDown, &sessions).unwrap_or((1001, String::new()))
        } else {
            (1002, "no bidirectional stream was opened".into())
        };
        drop((peer, permit));
        wt::send_close(&mut connect_send, code, &reason).await;
        wt::linger(&quic, &mut connect_recv).await;
        drop((connect_recv, h3));
        return;
    };
    // Streams opened later are not part of the session.
    let refuse_others = tokio::spawn(wt::refuse_streams(quic.clone()));
    let max = peer.framed().then_some(sessions.max_message_bytes());
    let mut client = WtClient::new(recv, send, connect_recv, max);
    let lost = peer.lost();
    let (from_peer, to_peer) = peer.halves();
    let end = session::pipe(&mut client, from_peer, to_peer, lost, ctl).await;
    tracing::info!(node = %peer.name(), transport = "WebTransport", end = end.as_str(), secs = started.elapsed().as_secs(), "session ended");
    refuse_others.abort();
    drop((peer, permit));
    close(&mut connect_send, &mut client, end, &sessions).await;
    // The browser's half of the CONNECT stream stays open (dropped, it would be stopped,
    // which browsers take as the session's connection lost) until it closes its side.
    wt::linger(&quic, &mut client.connect).await;
    drop((client, h3));
}

/// The close code and reason for `end` (as a capsule carries it), or none when the browser
/// ended the session itself.
fn close_code(end: SessionEnd, sessions: &Sessions) -> Option<(u32, String)> {
    end.close_code(sessions.max_message_bytes(), sessions.control().idle_timeout).map(|(c, r)| (c.into(), r))
}

/// Ends the session as `end` says: finishes the data stream and sends the close capsule
/// (or, when the browser closed, just finishes the `CONNECT` stream).
async fn close(connect_send: &mut ConnectSend, client: &mut WtClient, end: SessionEnd, sessions: &Sessions) {
    let _ = client.send.finish();
    match close_code(end, sessions) {
        Some((code, reason)) => wt::send_close(connect_send, code, &reason).await,
        None => {
            let _ = connect_send.finish().await;
        }
    }
}

/// The session's bidirectional stream as a session transport; the end of the `CONNECT`
/// stream (the browser's close capsule and FIN, or a reset) ends it too.
struct WtClient {
    recv: quinn::RecvStream,
    send: quinn::SendStream,
    connect: ConnectRecv,
    /// The message-size limit, when the peer takes Cap'n Proto messages.
    guard: Option<MessageSizeGuard>,
    /// A failure a read met after the data it returned, for the next read.
    failed: Option<quinn::ReadError>,
    pending: Bytes,
    done: bool,
}

impl WtClient {
    fn new(
        recv: quinn::RecvStream,
        send: quinn::SendStream,
        connect: ConnectRecv,
        max: Option<usize>,
    ) -> Self {
        WtClient {
            recv,
            send,
            connect,
            guard: max.map(MessageSizeGuard::new),
            failed: None,
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
        let item = match futures::ready!(this.poll_read_gathered(cx)) {
            Ok(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Ok(Some(data)) => {
                match this.guard.as_mut().map(|g| g.feed(&data)) {
                    None | Some(Ok(())) => Ok(Inbound::Data(data)),
                    Some(Err(_)) => Err(SessionEnd::TooBig),
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
    /// Reads what the browser sent: the first chunk quinn holds, as it is, and behind it what
    /// else has already arrived, up to [`READ_CHUNK`] (copied into one buffer then). Nothing
    /// is buffered while the browser sends nothing: an idle session holds no read buffer.
    fn poll_read_gathered(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, quinn::ReadError>> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Err(e));
        }
        let Some(first) = futures::ready!(poll_chunk(&mut self.recv, cx, READ_CHUNK))? else {
            return Poll::Ready(Ok(None));
        };
        let (mut gathered, mut len) = (None::<BytesMut>, first.len());
        while len < READ_CHUNK {
            match poll_chunk(&mut self.recv, cx, READ_CHUNK - len) {
                Poll::Ready(Ok(Some(next))) => {
                    let buf = gathered.get_or_insert_with(|| {
                        let mut b = BytesMut::with_capacity(READ_CHUNK);
                        b.extend_from_slice(&first);
                        b
                    });
                    buf.extend_from_slice(&next);
                    len += next.len();
                }
                // The end of the stream: quinn says so again on the next read.
                Poll::Ready(Ok(None)) | Poll::Pending => break,
                Poll::Ready(Err(e)) => {
                    self.failed = Some(e);
                    break;
                }
            }
        }
        Poll::Ready(Ok(Some(gathered.map_or(first, BytesMut::freeze))))
    }

    fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), quinn::WriteError>> {
        while !self.pending.is_empty() {
            let n = futures::ready!(Pin::new(&mut self.send).poll_write(cx, &self.pending))?;
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

/// Polls for the next chunk of at most `max` bytes of `recv` (quinn's read, made for this one
/// poll: reading a chunk is cancel-safe, and a pending read leaves the waker with the
/// connection).
fn poll_chunk(recv: &mut quinn::RecvStream, cx: &mut Context<'_>, max: usize) -> Poll<Result<Option<Bytes>, quinn::ReadError>> {
    let read = recv.read_chunk(max, true);
    futures::pin_mut!(read);
    read.poll(cx).map(|r| r.map(|chunk| chunk.map(|c| c.bytes)))
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

//! `/echo` (only with `--bench-echo`): sessions with an in-process echo instead of a node,
//! for the transport benchmark.
//!
//! A WebSocket on `/echo` gets every binary message back; a WebTransport session on `/echo`
//! (HTTP/3 `CONNECT`) gets every byte of its bidirectional stream back on the same stream.
//! Both run the very path `/ws` and `/wt` run — the same admission (origin check, session
//! limits), the same adapter, the same [`crate::session::pipe`] with its idle timeout,
//! shutdown and close codes — with [`TARGET`] as the peer: a byte pipe inside the gateway
//! that writes back what it reads. So a browser measuring a round trip here measures the
//! transport and the gateway alone, next to the same browser's round trip through a real
//! session. The echo carries any bytes, not only Cap'n Proto messages, so a WebTransport
//! stream's message-size limit (which follows the framing) does not apply; a WebSocket
//! message is still at most `--max-message-bytes`. Without the flag the route does not
//! exist (404).

use axum::Router;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadHalf, WriteHalf};

use crate::session::{websocket, Peer, Target};
use crate::state::AppState;

/// The path of the echo endpoint (WebSocket and WebTransport).
pub const PATH: &str = "/echo";
/// Bytes in flight inside the echo before it pushes back (one read of the pipe).
const BUFFER: usize = 64 << 10;

/// The echo as a session target: a new echo for every session.
pub const TARGET: Target = Target::Local(open);

/// `GET /echo`: a WebSocket session with the echo.
pub(crate) fn routes(state: &AppState) -> Router {
    Router::new().route(PATH, websocket::route(state.sessions().clone(), TARGET))
}

/// The session's end of an in-process echo: what is written to it comes back to be read.
struct Echo {
    read: ReadHalf<DuplexStream>,
    write: WriteHalf<DuplexStream>,
}

/// Makes an echo: a task copies everything from the far end of an in-memory pipe back into
/// it, until the session shuts its writer (or drops the echo).
fn open() -> Box<dyn Peer> {
    let (ours, theirs) = tokio::io::duplex(BUFFER);
    tokio::spawn(async move {
        let (mut r, mut w) = tokio::io::split(theirs);
        let _ = tokio::io::copy(&mut r, &mut w).await;
    });
    let (read, write) = tokio::io::split(ours);
    Box::new(Echo { read, write })
}

impl Peer for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    fn framed(&self) -> bool {
        false
    }

    fn lost(&self) -> BoxFuture<'static, ()> {
        futures::future::pending().boxed()
    }

    fn halves(&mut self) -> (&mut (dyn AsyncRead + Send + Unpin), &mut (dyn AsyncWrite + Send + Unpin)) {
        (&mut self.read, &mut self.write)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn an_echo_sends_back_what_it_is_sent_and_ends_when_its_writer_does() {
        let mut echo = open();
        let (from, to) = echo.halves();
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let writing = async {
            to.write_all(&payload).await.unwrap();
            to.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let reading = from.read_to_end(&mut back);
        let ((), read) = tokio::join!(writing, reading);
        read.unwrap();
        assert!(back == payload, "the bytes come back unchanged, then the end of the stream");
    }
}

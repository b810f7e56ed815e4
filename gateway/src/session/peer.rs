//! The far end of a session: what [`crate::session::pipe`] copies a browser's bytes to.
//!
//! In service that is always a new stream to a server node ([`NodeStream`]). For the
//! transport benchmark (`--bench-echo`) it is an in-process peer that sends the bytes back
//! ([`crate::echo`]), so `/echo` runs the very same admission, adapter and pipe as `/ws` and
//! `/wt` and differs only in what sits behind the pipe.

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::nodes::NodeStream;

/// A session's far end: a byte stream each way and a signal that it is lost as a whole.
pub trait Peer: Send {
    /// What it is, for logs (the node as given with `--node`).
    fn name(&self) -> &str;
    /// Whether the bytes are Cap'n Proto messages, so a WebTransport session may apply the
    /// message-size limit by their framing (see [`crate::stream_limit`]). An echo carries
    /// any bytes.
    fn framed(&self) -> bool;
    /// Resolves when the peer is gone as a whole (a node's connection closed); the session
    /// then ends as [`crate::session::SessionEnd::NodeLost`].
    fn lost(&self) -> BoxFuture<'static, ()>;
    /// Bytes from the peer, and bytes to it. Shutting the writer down ends the stream.
    #[allow(clippy::type_complexity)]
    fn halves(&mut self) -> (&mut (dyn AsyncRead + Send + Unpin), &mut (dyn AsyncWrite + Send + Unpin));
}

/// Where an admitted session's bytes go.
#[derive(Clone, Copy)]
pub enum Target {
    /// A new stream on the pooled connection of a node that is up (`/ws`, `/wt`).
    Nodes,
    /// A peer made in-process for each session (the benchmark's `/echo`).
    Local(fn() -> Box<dyn Peer>),
}

impl Peer for NodeStream {
    fn name(&self) -> &str {
        &self.node
    }

    fn framed(&self) -> bool {
        true
    }

    fn lost(&self) -> BoxFuture<'static, ()> {
        let conn = self.conn.clone();
        async move {
            conn.closed().await;
        }
        .boxed()
    }

    fn halves(&mut self) -> (&mut (dyn AsyncRead + Send + Unpin), &mut (dyn AsyncWrite + Send + Unpin)) {
        (&mut self.recv, &mut self.send)
    }
}

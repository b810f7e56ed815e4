//! One write per Cap'n Proto message.
//!
//! The RPC system writes a message as its segment table and then each segment, and flushes
//! after each message. On a WebSocket every write is a message of its own, and on a
//! WebTransport stream the browser's writes go one after another, each waiting for the one
//! before; so a message would travel as two or more pieces. [`Coalesce`] gathers what is
//! written until the flush and hands it over in one write. Its buffer is allocated only
//! while something waits in it, and given back when a large message made it grow, so an idle
//! session holds none of it (the load generator keeps thousands of sessions).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::AsyncWrite;
use futures::ready;

/// A write at least this large is not copied when nothing is gathered before it.
const DIRECT_BYTES: usize = 64 << 10;
/// Buffer capacity kept between messages; a larger one is given back after the flush.
const KEEP_BYTES: usize = 4 << 10;

/// Gathers writes until a flush (see the module documentation).
pub(crate) struct Coalesce<W> {
    inner: W,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed to `inner`.
    sent: usize,
}

impl<W: AsyncWrite + Unpin> Coalesce<W> {
    pub(crate) fn new(inner: W) -> Self {
        Coalesce { inner, buf: Vec::new(), sent: 0 }
    }

    /// Hands everything gathered to the stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        if self.buf.capacity() > KEEP_BYTES {
            self.buf = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Coalesce<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buf.is_empty() && buf.len() >= DIRECT_BYTES {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        if this.buf.len() + buf.len() > DIRECT_BYTES {
            // A large segment after the table: the table goes first, then the segment as it is.
            ready!(this.poll_drain(cx))?;
            if buf.len() >= DIRECT_BYTES {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
        }
        this.buf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::AsyncWriteExt;

    /// Records each write it is given.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.0.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_message_is_one_write_and_a_grown_buffer_is_given_back() {
        block_on(async {
            let mut w = Coalesce::new(Writes::default());
            w.write_all(&[1; 8]).await.unwrap();
            w.write_all(&[2; 100]).await.unwrap();
            assert!(w.inner.0.is_empty(), "nothing leaves before the flush");
            w.flush().await.unwrap();
            assert_eq!(w.inner.0, vec![[vec![1; 8], vec![2; 100]].concat()]);
            // Larger than what is kept: still one write, and the buffer is freed afterwards.
            w.write_all(&[3; 8]).await.unwrap();
            w.write_all(&vec![4; 4 * KEEP_BYTES]).await.unwrap();
            w.flush().await.unwrap();
            assert_eq!(w.inner.0.len(), 2);
            assert_eq!(w.inner.0[1].len(), 8 + 4 * KEEP_BYTES);
            assert_eq!(w.buf.capacity(), 0);
            // Too large to copy: the table, then the segment as it is.
            w.write_all(&[5; 8]).await.unwrap();
            w.write_all(&vec![6; DIRECT_BYTES]).await.unwrap();
            w.flush().await.unwrap();
            assert_eq!(w.inner.0[2], vec![5; 8]);
            assert_eq!(w.inner.0[3].len(), DIRECT_BYTES);
            assert_eq!(w.inner.0.len(), 4);
        });
    }
}

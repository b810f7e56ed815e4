//! A WebSocket client of the gateway's `/ws`, as the browser is one: [`WsConnector`] opens a
//! socket and adapts its binary messages to the byte stream `qpq-client` speaks Cap'n Proto
//! over. `qpq-idle-sessions` holds its sessions through it; the end-to-end tests (`e2e/`) run
//! native clients through the gateway with it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{FutureExt, LocalBoxFuture};
use futures::io::{AsyncRead, AsyncWrite};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use qpq_client::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket, over plain TCP or TLS.
pub type Ws = WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens WebSockets to a gateway's `/ws`, as the browser does, and adapts binary messages
/// to the byte stream `qpq-client` speaks Cap'n Proto over.
#[derive(Clone)]
pub struct WsConnector {
    /// The socket's URL (`ws://HOST:PORT/ws`).
    pub url: String,
    /// The `Origin` sent, if any.
    pub origin: Option<String>,
}

impl WsConnector {
    /// A connector to the gateway at `addr`, sending its own origin like a page it served.
    pub fn new(addr: SocketAddr) -> Self {
        WsConnector { url: format!("ws://{addr}/ws"), origin: Some(format!("http://{addr}")) }
    }

    /// Opens a socket: its byte stream.
    pub async fn open(&self) -> Result<qpq_client::Stream, String> {
        let mut req = self.url.as_str().into_client_request().map_err(|e| e.to_string())?;
        if let Some(o) = &self.origin {
            req.headers_mut().insert("origin", o.parse().map_err(|_| "bad origin".to_string())?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| format!("cannot open {}: {e}", self.url))?;
        let (sink, stream) = ws.split();
        let r: Box<dyn AsyncRead + Unpin> = Box::new(WsReader { stream, buf: Bytes::new() });
        let w: Box<dyn AsyncWrite + Unpin> = Box::new(WsWriter { sink, buf: Vec::new() });
        Ok((r, w))
    }
}

impl Connector for WsConnector {
    fn connect(&self) -> LocalBoxFuture<'static, Result<qpq_client::Stream, String>> {
        let me = self.clone();
        async move { me.open().await }.boxed_local()
    }

    fn transport_name(&self) -> String {
        "WebSocket".into()
    }
}

/// Reads the payloads of binary messages as one byte stream.
struct WsReader {
    stream: SplitStream<Ws>,
    buf: Bytes,
}

impl AsyncRead for WsReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if !self.buf.is_empty() {
                let n = out.len().min(self.buf.len());
                out[..n].copy_from_slice(&self.buf.split_to(n));
                return Poll::Ready(Ok(n));
            }
            match futures::ready!(self.stream.poll_next_unpin(cx)) {
                Some(Ok(Message::Binary(b))) => self.buf = b,
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(0)),
                Some(Ok(Message::Text(_))) => return Poll::Ready(Err(io::Error::other("unexpected text message"))),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

/// Collects written bytes and sends them as one binary message per flush (Cap'n Proto
/// flushes after each batch of messages).
struct WsWriter {
    sink: SplitSink<Ws, Message>,
    buf: Vec<u8>,
}

impl AsyncWrite for WsWriter {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.buf.is_empty() {
            futures::ready!(self.sink.poll_ready_unpin(cx)).map_err(io::Error::other)?;
            let msg = Message::Binary(Bytes::from(std::mem::take(&mut self.buf)));
            self.sink.start_send_unpin(msg).map_err(io::Error::other)?;
        }
        self.sink.poll_flush_unpin(cx).map_err(io::Error::other)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::ready!(self.as_mut().poll_flush(cx))?;
        self.sink.poll_close_unpin(cx).map_err(io::Error::other)
    }
}

//! A WebSocket to the gateway (`/ws`) as the byte stream `qpq-client` speaks Cap'n Proto
//! over: the fallback transport, and the only one where WebTransport is missing.
//!
//! Binary messages in are appended to a read buffer; every write is sent as one binary
//! message. Closing either half closes the socket.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::channel::oneshot;
use futures::io::{AsyncRead, AsyncWrite};
use qpq_client::Stream;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

#[derive(Default)]
struct Shared {
    incoming: VecDeque<u8>,
    closed: Option<String>,
    reader: Option<Waker>,
}

struct Socket {
    ws: WebSocket,
    shared: Rc<RefCell<Shared>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Every handler goes, `onopen` too: a connection attempt abandoned while connecting
        // drops its open callback right after this, and an open event already queued must
        // not reach a dropped closure.
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
    }
}

struct Reader(Rc<Socket>);
struct Writer(Rc<Socket>);

impl AsyncRead for Reader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut s = self.0.shared.borrow_mut();
        if !s.incoming.is_empty() {
            let n = buf.len().min(s.incoming.len());
            for (i, b) in s.incoming.drain(..n).enumerate() {
                buf[i] = b;
            }
            return Poll::Ready(Ok(n));
        }
        if s.closed.is_some() {
            return Poll::Ready(Ok(0));
        }
        s.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Writer {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(why) = &self.0.shared.borrow().closed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, why.clone())));
        }
        match self.0.ws.send_with_u8_array(buf) {
            Ok(()) => Poll::Ready(Ok(buf.len())),
            Err(_) => Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket refused to send"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.0.ws.close();
        Poll::Ready(Ok(()))
    }
}

/// Opens one WebSocket session to `url`.
pub(crate) async fn open(url: String) -> Result<Stream, String> {
    let ws = WebSocket::new(&url).map_err(|_| format!("cannot open a WebSocket to {url}"))?;
    ws.set_binary_type(BinaryType::Arraybuffer);
    let shared = Rc::new(RefCell::new(Shared::default()));
    let (open_tx, open_rx) = oneshot::channel::<Result<(), String>>();
    let open_tx = Rc::new(RefCell::new(Some(open_tx)));

    let sh = shared.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        if let Ok(buf) = e.data().dyn_into::<js_sys::ArrayBuffer>() {
            let bytes = js_sys::Uint8Array::new(&buf).to_vec();
            let mut s = sh.borrow_mut();
            s.incoming.extend(bytes);
            if let Some(w) = s.reader.take() {
                w.wake();
            }
        }
    });
    let sh = shared.clone();
    let tx = open_tx.clone();
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
        let why = if e.reason().is_empty() {
            format!("the connection closed (code {})", e.code())
        } else {
            format!("the connection closed: {} (code {})", e.reason(), e.code())
        };
        if let Some(t) = tx.borrow_mut().take() {
            let _ = t.send(Err(why.clone()));
        }
        let mut s = sh.borrow_mut();
        s.closed = Some(why);
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    });
    let tx = open_tx.clone();
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(t) = tx.borrow_mut().take() {
            let _ = t.send(Err("the gateway cannot be reached".into()));
        }
    });
    let tx = open_tx.clone();
    let on_open = Closure::<dyn FnMut()>::once(move || {
        if let Some(t) = tx.borrow_mut().take() {
            let _ = t.send(Ok(()));
        }
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    let socket = Rc::new(Socket { ws, shared, _on_message: on_message, _on_close: on_close, _on_error: on_error });
    let r = open_rx.await.unwrap_or_else(|_| Err("the connection attempt was abandoned".into()));
    socket.ws.set_onopen(None);
    drop(on_open);
    r?;
    Ok((Box::new(Reader(socket.clone())), Box::new(Writer(socket))))
}

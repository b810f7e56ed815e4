//! A WebTransport session to the gateway (`https://HOST:PORT/wt`, HTTP/3) whose first
//! bidirectional stream is the byte stream `qpq-client` speaks Cap'n Proto over.
//!
//! The endpoint and the SHA-256 hashes of the certificates to trust come from the page
//! (`QpqOptions`) or, by default, from `/transport.json` of the page's origin, fetched again
//! before every attempt: the gateway's development certificate changes when it restarts and
//! every 11 days or so while it runs.
//!
//! **Bindings.** web-sys has WebTransport only behind `--cfg=web_sys_unstable_apis`, a flag
//! every build of the crate (and of anything depending on it) would need. The six members
//! used here are declared by hand instead; the stream readers and writers are web-sys's
//! stable `ReadableStream`/`WritableStream` types.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use base64::Engine as _;
use futures::io::{AsyncRead, AsyncWrite};
use futures::FutureExt;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use qpq_client::Stream;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader, WritableStream, WritableStreamDefaultWriter};

#[wasm_bindgen]
extern "C" {
    /// `WebTransport` (W3C WebTransport).
    #[wasm_bindgen(js_name = WebTransport)]
    type JsWebTransport;

    #[wasm_bindgen(constructor, catch, js_class = "WebTransport")]
    fn new(url: &str, options: &JsValue) -> Result<JsWebTransport, JsValue>;

    #[wasm_bindgen(method, getter)]
    fn ready(this: &JsWebTransport) -> Promise;

    #[wasm_bindgen(method, getter)]
    fn closed(this: &JsWebTransport) -> Promise;

    #[wasm_bindgen(method, js_name = createBidirectionalStream)]
    fn create_bidirectional_stream(this: &JsWebTransport) -> Promise;

    #[wasm_bindgen(method, catch)]
    fn close(this: &JsWebTransport, info: &JsValue) -> Result<(), JsValue>;

    /// `WebTransportBidirectionalStream`.
    type BidirectionalStream;

    #[wasm_bindgen(method, getter)]
    fn readable(this: &BidirectionalStream) -> ReadableStream;

    #[wasm_bindgen(method, getter)]
    fn writable(this: &BidirectionalStream) -> WritableStream;

    #[wasm_bindgen(js_name = fetch)]
    fn fetch_url(url: &str) -> Promise;
}

/// Where WebTransport sessions go and which certificates to trust.
#[derive(Clone, Debug)]
pub enum WtEndpoint {
    /// Given by the page.
    Fixed {
        /// `https://HOST:PORT/wt`.
        url: String,
        /// SHA-256 of each certificate to trust by hash (none: the usual CA checks).
        cert_hashes: Vec<Vec<u8>>,
    },
    /// Read from this `/transport.json` before every attempt.
    Discover {
        /// Its URL.
        info_url: String,
    },
}

impl WtEndpoint {
    /// An endpoint given as a URL and base64 SHA-256 hashes.
    pub fn fixed(url: String, base64_hashes: &[String]) -> Result<Self, String> {
        let cert_hashes = base64_hashes
            .iter()
            .map(|h| decode_hash(h).ok_or_else(|| format!("{h:?} is not a base64 SHA-256 hash")))
            .collect::<Result<_, _>>()?;
        Ok(WtEndpoint::Fixed { url, cert_hashes })
    }
}

fn decode_hash(h: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(h.trim()).ok().filter(|b| b.len() == 32)
}

/// Why no WebTransport session was opened.
#[derive(Clone, Debug)]
pub(crate) enum WtError {
    /// Not on offer: the browser lacks it or the gateway serves no HTTP/3.
    Unavailable(String),
    /// It was tried and failed.
    Failed(String),
}

impl std::fmt::Display for WtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WtError::Unavailable(why) => write!(f, "WebTransport is not available: {why}"),
            WtError::Failed(why) => write!(f, "WebTransport failed: {why}"),
        }
    }
}

/// Whether this browser has `WebTransport`.
pub(crate) fn supported() -> bool {
    Reflect::get(&js_sys::global(), &"WebTransport".into()).is_ok_and(|v| v.is_function())
}

/// `/transport.json`, as far as it matters here.
#[derive(serde::Deserialize)]
struct TransportInfo {
    webtransport: Option<WebTransportInfo>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebTransportInfo {
    url: String,
    #[serde(default)]
    cert_hashes: Vec<String>,
}

async fn discover(info_url: &str) -> Result<(String, Vec<Vec<u8>>), WtError> {
    let failed = |what: &str| WtError::Failed(format!("{info_url}: {what}"));
    let resp: web_sys::Response = JsFuture::from(fetch_url(info_url))
        .await
        .map_err(|_| failed("cannot be fetched"))?
        .unchecked_into();
    if !resp.ok() {
        return Err(failed(&format!("HTTP {}", resp.status())));
    }
    let json = JsFuture::from(resp.json().map_err(|_| failed("not JSON"))?).await.map_err(|_| failed("not JSON"))?;
    let info: TransportInfo = serde_wasm_bindgen::from_value(json).map_err(|e| failed(&e.to_string()))?;
    let wt = info.webtransport.ok_or_else(|| WtError::Unavailable("the gateway offers none".into()))?;
    let hashes = wt.cert_hashes.iter().filter_map(|h| decode_hash(h)).collect();
    Ok((wt.url, hashes))
}

/// Opens a session and its stream.
pub(crate) async fn open(endpoint: &WtEndpoint) -> Result<Stream, WtError> {
    if !supported() {
        return Err(WtError::Unavailable("this browser has no WebTransport".into()));
    }
    let (url, hashes) = match endpoint {
        WtEndpoint::Fixed { url, cert_hashes } => (url.clone(), cert_hashes.clone()),
        WtEndpoint::Discover { info_url } => discover(info_url).await?,
    };
    let options = Object::new();
    if !hashes.is_empty() {
        let list = Array::new();
        for h in &hashes {
            let entry = Object::new();
            let _ = Reflect::set(&entry, &"algorithm".into(), &"sha-256".into());
            let _ = Reflect::set(&entry, &"value".into(), &Uint8Array::from(h.as_slice()));
            list.push(&entry);
        }
        let _ = Reflect::set(&options, &"serverCertificateHashes".into(), &list);
    }
    let wt = JsWebTransport::new(&url, &options).map_err(|e| WtError::Failed(describe(&e, &url)))?;
    let session = Rc::new(Session::new(wt));
    JsFuture::from(session.wt.ready()).await.map_err(|e| WtError::Failed(describe(&e, &url)))?;
    let bidi: BidirectionalStream = JsFuture::from(session.wt.create_bidirectional_stream())
        .await
        .map_err(|e| WtError::Failed(describe(&e, &url)))?
        .unchecked_into();
    let reader: ReadableStreamDefaultReader = bidi.readable().get_reader().unchecked_into();
    let writer = bidi.writable().get_writer().map_err(|e| WtError::Failed(describe(&e, &url)))?;
    let r = Reader { session: session.clone(), reader, pending: None, buf: Vec::new(), pos: 0, done: false };
    let w = Writer { session, writer, pending: None, closing: None };
    Ok((Box::new(r), Box::new(w)))
}

/// A JavaScript error as a sentence.
fn describe(e: &JsValue, url: &str) -> String {
    let msg = Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_default();
    if msg.is_empty() {
        format!("cannot open a session to {url}")
    } else {
        format!("cannot open a session to {url}: {msg}")
    }
}

/// The session, closed when both halves of its stream are gone. Its `closed` promise is
/// always handled, and what it says is kept for error messages.
struct Session {
    wt: JsWebTransport,
    closed: Rc<RefCell<Option<String>>>,
}

impl Session {
    fn new(wt: JsWebTransport) -> Self {
        let closed = Rc::new(RefCell::new(None));
        let record = closed.clone();
        let watch = JsFuture::from(wt.closed());
        wasm_bindgen_futures::spawn_local(async move {
            let why = match watch.await {
                Ok(info) => {
                    let code = Reflect::get(&info, &"closeCode".into()).ok().and_then(|c| c.as_f64()).unwrap_or(0.0);
                    let reason = Reflect::get(&info, &"reason".into()).ok().and_then(|r| r.as_string()).unwrap_or_default();
                    if reason.is_empty() {
                        format!("the connection closed (code {code})")
                    } else {
                        format!("the connection closed: {reason} (code {code})")
                    }
                }
                Err(e) => match Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()) {
                    Some(m) if !m.is_empty() => format!("the connection was lost: {m}"),
                    _ => "the connection was lost".into(),
                },
            };
            *record.borrow_mut() = Some(why);
        });
        Session { wt, closed }
    }

    fn error(&self) -> io::Error {
        let why = self.closed.borrow().clone().unwrap_or_else(|| "the WebTransport stream failed".into());
        io::Error::new(io::ErrorKind::BrokenPipe, why)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let info = Object::new();
        let _ = Reflect::set(&info, &"closeCode".into(), &0.into());
        let _ = Reflect::set(&info, &"reason".into(), &"".into());
        let _ = self.wt.close(&info);
    }
}

struct Reader {
    session: Rc<Session>,
    reader: ReadableStreamDefaultReader,
    pending: Option<JsFuture>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl AsyncRead for Reader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if this.pos < this.buf.len() {
                let n = out.len().min(this.buf.len() - this.pos);
                out[..n].copy_from_slice(&this.buf[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(n));
            }
            if this.done {
                return Poll::Ready(Ok(0));
            }
            let pending = this.pending.get_or_insert_with(|| JsFuture::from(this.reader.read()));
            let result = futures::ready!(pending.poll_unpin(cx));
            this.pending = None;
            match result {
                Ok(chunk) => {
                    if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
                        this.done = true;
                        continue;
                    }
                    let value = Reflect::get(&chunk, &"value".into()).unwrap_or(JsValue::UNDEFINED);
                    this.buf = value.dyn_into::<Uint8Array>().map(|a| a.to_vec()).unwrap_or_default();
                    this.pos = 0;
                }
                Err(_) => {
                    this.done = true;
                    return Poll::Ready(Err(this.session.error()));
                }
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = JsFuture::from(self.reader.cancel());
    }
}

struct Writer {
    session: Rc<Session>,
    writer: WritableStreamDefaultWriter,
    /// The write in flight: one at a time, so the stream's backpressure reaches the client.
    pending: Option<JsFuture>,
    closing: Option<JsFuture>,
}

impl Writer {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(p) = &mut self.pending {
            let r = futures::ready!(p.poll_unpin(cx));
            self.pending = None;
            r.map_err(|_| self.session.error())?;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Writer {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        futures::ready!(self.poll_pending(cx))?;
        // A copy: a view into WebAssembly memory could move while the write is queued.
        let chunk = Uint8Array::from(buf);
        self.pending = Some(JsFuture::from(self.writer.write_with_chunk(&chunk)));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_pending(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::ready!(self.poll_pending(cx))?;
        let this = &mut *self;
        let closing = this.closing.get_or_insert_with(|| JsFuture::from(this.writer.close()));
        let _ = futures::ready!(closing.poll_unpin(cx));
        Poll::Ready(Ok(()))
    }
}

//! The browser's transport choice: WebTransport first, WebSocket when it is missing or fails.
//!
//! In [`TransportMode::Auto`] every connection attempt goes like this:
//!
//! 1. WebTransport is skipped when the browser has no `WebTransport`, when the gateway offers
//!    none (`/transport.json` says `null`), or when it failed less than
//!    [`WT_RETRY_AFTER_MS`] ago while WebSocket worked (remembered in `localStorage`, so a
//!    reload does not pay for it again).
//! 2. Otherwise a WebTransport session is tried for at most the time bound (default
//!    [`WT_TIMEOUT_MS`]): fetching the endpoint and certificate hashes, the QUIC and TLS
//!    handshake, the `CONNECT` and the stream. A refused certificate, a closed UDP port or
//!    an error fail within milliseconds; a network that silently drops UDP costs the bound.
//! 3. Then WebSocket. If it works while WebTransport did not, WebTransport is remembered as
//!    failing; if both fail, the gateway is simply unreachable and nothing is remembered
//!    (the next attempt tries WebTransport again).
//!
//! So a browser that cannot use WebTransport is on WebSocket within the bound plus the
//! WebSocket's own connection time, and tries WebTransport again on a reconnection after
//! [`WT_RETRY_AFTER_MS`]. [`TransportMode::WebTransport`] and
//! [`TransportMode::WebSocket`] use one transport only.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::future::{self, Either, FutureExt, LocalBoxFuture};
use qpq_client::{Connector, Stream};
use wasm_bindgen::JsValue;

use super::webtransport::{self, WtEndpoint, WtError};
use super::websocket;

/// How long a WebTransport attempt may take before the WebSocket is tried.
pub const WT_TIMEOUT_MS: u32 = 2_000;
/// How long after a WebTransport failure (with WebSocket working) it is tried again.
pub const WT_RETRY_AFTER_MS: f64 = 5.0 * 60.0 * 1000.0;
/// Where the time of the last WebTransport failure is kept.
const FAILED_AT_KEY: &str = "qpq.webtransport.failedAt";

/// Which transport to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportMode {
    /// WebTransport, falling back to WebSocket.
    Auto,
    /// WebTransport only.
    WebTransport,
    /// WebSocket only.
    WebSocket,
}

impl TransportMode {
    /// Parses `"auto"`, `"webtransport"` or `"websocket"` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Some(TransportMode::Auto),
            "webtransport" => Some(TransportMode::WebTransport),
            "websocket" => Some(TransportMode::WebSocket),
            _ => None,
        }
    }
}

/// Opens sessions over WebTransport or WebSocket as [`TransportMode`] says.
pub struct AutoConnector {
    mode: TransportMode,
    websocket_url: String,
    webtransport: WtEndpoint,
    timeout_ms: u32,
    /// The transport of the last successful connection (for the indicator).
    last: Rc<Cell<&'static str>>,
    /// When WebTransport last failed while WebSocket worked (ms since the epoch).
    failed_at: Rc<RefCell<Option<f64>>>,
}

impl AutoConnector {
    /// A connector in `mode` to the gateway's WebSocket at `websocket_url` and WebTransport
    /// at `webtransport`, giving WebTransport `timeout_ms` before falling back.
    pub fn new(mode: TransportMode, websocket_url: String, webtransport: WtEndpoint, timeout_ms: u32) -> Self {
        let first = if mode == TransportMode::WebSocket { "WebSocket" } else { "WebTransport" };
        AutoConnector {
            mode,
            websocket_url,
            webtransport,
            timeout_ms,
            last: Rc::new(Cell::new(first)),
            failed_at: Rc::new(RefCell::new(load_failed_at())),
        }
    }
}

impl Connector for AutoConnector {
    fn connect(&self) -> LocalBoxFuture<'static, Result<Stream, String>> {
        let (mode, ws_url, wt, timeout) = (self.mode, self.websocket_url.clone(), self.webtransport.clone(), self.timeout_ms);
        let (last, failed_at) = (self.last.clone(), self.failed_at.clone());
        async move {
            match mode {
                TransportMode::WebSocket => {
                    let s = websocket::open(ws_url).await?;
                    last.set("WebSocket");
                    Ok(s)
                }
                TransportMode::WebTransport => {
                    let s = webtransport::open(&wt).await.map_err(|e| e.to_string())?;
                    last.set("WebTransport");
                    Ok(s)
                }
                TransportMode::Auto => {
                    let now = js_sys::Date::now();
                    let recently_failed = failed_at.borrow().is_some_and(|t| now - t < WT_RETRY_AFTER_MS);
                    let mut wt_failure = None;
                    if webtransport::supported() && !recently_failed {
                        let attempt = webtransport::open(&wt).boxed_local();
                        let bound = gloo_timers::future::TimeoutFuture::new(timeout);
                        match future::select(attempt, bound).await {
                            Either::Left((Ok(s), _)) => {
                                last.set("WebTransport");
                                return Ok(s);
                            }
                            Either::Left((Err(WtError::Unavailable(why)), _)) => {
                                web_sys::console::info_1(&JsValue::from_str(&format!("WebTransport not offered: {why}")));
                            }
                            Either::Left((Err(WtError::Failed(why)), _)) => wt_failure = Some(why),
                            // Dropping the attempt closes its WebTransport.
                            Either::Right(_) => wt_failure = Some(format!("no session within {timeout} ms")),
                        }
                    }
                    let s = websocket::open(ws_url).await.map_err(|ws| match &wt_failure {
                        Some(wt) => format!("{ws} (WebTransport: {wt})"),
                        None => ws,
                    })?;
                    if let Some(why) = wt_failure {
                        web_sys::console::info_1(&JsValue::from_str(&format!(
                            "WebTransport failed ({why}); using WebSocket, WebTransport again in {} min",
                            WT_RETRY_AFTER_MS / 60_000.0
                        )));
                        *failed_at.borrow_mut() = Some(now);
                        store_failed_at(now);
                    }
                    last.set("WebSocket");
                    Ok(s)
                }
            }
        }
        .boxed_local()
    }

    fn transport_name(&self) -> String {
        self.last.get().into()
    }
}

fn local_storage() -> Option<JsValue> {
    js_sys::Reflect::get(&js_sys::global(), &"localStorage".into()).ok().filter(|s| !s.is_undefined() && !s.is_null())
}

fn load_failed_at() -> Option<f64> {
    let storage = local_storage()?;
    let get = js_sys::Reflect::get(&storage, &"getItem".into()).ok()?;
    let get: js_sys::Function = wasm_bindgen::JsCast::dyn_into(get).ok()?;
    get.call1(&storage, &FAILED_AT_KEY.into()).ok()?.as_string()?.parse().ok()
}

fn store_failed_at(t: f64) {
    let Some(storage) = local_storage() else { return };
    let Ok(set) = js_sys::Reflect::get(&storage, &"setItem".into()) else { return };
    if let Ok(set) = wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(set) {
        let _ = set.call2(&storage, &FAILED_AT_KEY.into(), &t.to_string().into());
    }
}

//! Clock, timers and tasks from the JavaScript event loop (windows and workers alike).

use futures::future::{FutureExt, LocalBoxFuture};

/// The browser [`qpq_client::Platform`].
#[derive(Clone, Copy, Debug, Default)]
pub struct WebPlatform;

impl qpq_client::Platform for WebPlatform {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        gloo_timers::future::TimeoutFuture::new(ms.min(u32::MAX as u64) as u32).boxed_local()
    }

    fn spawn(&self, fut: LocalBoxFuture<'static, ()>) {
        wasm_bindgen_futures::spawn_local(fut);
    }
}

//! Clock, timers and task spawning on a tokio `LocalSet`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::{FutureExt, LocalBoxFuture};

/// The native [`qpq_client::Platform`]: must be used inside a `tokio::task::LocalSet`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioPlatform;

impl qpq_client::Platform for TokioPlatform {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        tokio::time::sleep(Duration::from_millis(ms)).boxed_local()
    }

    fn spawn(&self, fut: LocalBoxFuture<'static, ()>) {
        tokio::task::spawn_local(fut);
    }
}

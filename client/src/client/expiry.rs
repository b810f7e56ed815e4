//! The disappearing-message timer: removes messages whose time ran out and stores that.
//!
//! It does not poll. It sleeps until the engine's [`qpq_core::Engine::next_expiry`] and looks
//! again whenever a step is stored (a message arrived or was sent, a timer changed, something
//! expired), the connection changes or the client stops, since any of those can move the next
//! expiry.

use futures::future;

use super::Client;
use crate::error::ClientError;
use crate::{Platform, StateStore};

/// The longest single wait. Timers may not count the time a machine was suspended, and a
/// browser's `setTimeout` cannot wait more than about 24 days; a minute bounds both.
const LONGEST_WAIT_MS: u64 = 60_000;

impl<S: StateStore, P: Platform> Client<S, P> {
    /// Removes messages whose disappearing timer ran out; returns how many.
    pub async fn expire(&self) -> Result<usize, ClientError> {
        let now = self.inner.platform.now_ms();
        let n = self.inner.engine.borrow_mut().expire(now);
        if n > 0 {
            self.persist().await?;
        }
        Ok(n)
    }

    /// Removes expired messages as their time comes.
    pub(super) async fn expiry_loop(self) {
        while !self.inner.stopped.get() {
            let now = self.inner.platform.now_ms();
            let next = self.inner.engine.borrow().next_expiry();
            let wait = match next {
                Some(t) if t <= now => {
                    let _ = self.expire().await;
                    continue;
                }
                Some(t) => (t - now).min(LONGEST_WAIT_MS),
                None => LONGEST_WAIT_MS,
            };
            // Registered before waiting, with no await in between: no step can slip past.
            let change = self.next_change();
            let timer = self.inner.platform.sleep(wait);
            let _ = future::select(change, timer).await;
        }
    }
}

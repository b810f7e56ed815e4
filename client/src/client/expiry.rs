//! The disappearing-message timer: removes messages whose time ran out and stores that.

use super::Client;
use crate::error::ClientError;
use crate::{Platform, StateStore};

/// How often expired messages are looked for.
const EXPIRY_TICK_MS: u64 = 500;

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

    /// Removes expired messages as their time comes (checked twice a second).
    pub(super) async fn expiry_loop(self) {
        while !self.inner.stopped.get() {
            let now = self.inner.platform.now_ms();
            let due = self.inner.engine.borrow().next_expiry().is_some_and(|t| t <= now);
            if due {
                let _ = self.expire().await;
            }
            self.inner.platform.sleep(EXPIRY_TICK_MS).await;
        }
    }
}

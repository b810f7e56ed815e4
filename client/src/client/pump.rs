//! The outbox pump: sends what the engine queued, one item at a time, whenever a step or a
//! new connection kicks it, and stores each result before the next item.

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};

use super::Client;
use crate::error::ClientError;
use crate::{Platform, StateStore};

impl<S: StateStore, P: Platform> Client<S, P> {
    /// After a step a person started: store it, tell the UI, move the outbox.
    pub(crate) async fn step_done(&self) -> Result<(), ClientError> {
        self.persist().await?;
        self.kick();
        Ok(())
    }

    pub(super) fn kick(&self) {
        let _ = self.inner.kick.unbounded_send(());
    }

    /// Kicks the pump after `ms` milliseconds.
    fn kick_after(&self, ms: u64) {
        let me = self.clone();
        let sleep = self.inner.platform.sleep(ms);
        self.inner.platform.spawn(
            async move {
                sleep.await;
                me.kick();
            }
            .boxed_local(),
        );
    }

    pub(super) async fn pump_loop(self, mut kicks: mpsc::UnboundedReceiver<()>) {
        while kicks.next().await.is_some() {
            while kicks.try_recv().is_ok() {}
            if self.inner.stopped.get() {
                return;
            }
            self.pump().await;
        }
    }

    /// Sends outbox items until it is empty, waiting, or the connection fails.
    async fn pump(&self) {
        loop {
            let Some(session) = self.inner.session.borrow().clone() else { return };
            let now = self.inner.platform.now_ms();
            let out = self.inner.engine.borrow_mut().next_outbound(now);
            let Some(out) = out else {
                let _ = self.persist().await;
                return;
            };
            if self.persist().await.is_err() {
                return;
            }
            match session.send_outbound(&out).await {
                Ok(result) => {
                    let now = self.inner.platform.now_ms();
                    self.inner.engine.borrow_mut().outbound_result(out.id, result, now);
                    if self.persist().await.is_err() {
                        return;
                    }
                }
                // "Later" from the server, or a call lost mid-way: the same item again after a
                // while (the pump keeps each conversation's order, so it waits first).
                Err(e) if e.retry_after_ms().is_some() => {
                    self.kick_after(e.retry_after_ms().unwrap_or_default());
                    return;
                }
                // The connection loop notices, reconnects and kicks again.
                Err(_) => return,
            }
        }
    }
}

//! The outbox pump: sends what the engine queued, one item at a time, whenever a step or a
//! new connection kicks it; each item's result is stored with the next item's preparation,
//! before that item is sent.

use std::task::Poll;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};

use super::Client;
use crate::error::ClientError;
use crate::{Platform, StateStore};

/// How long receipts may wait for the pump to run anyway (see `kick_for_receipts`): well
/// under what a person notices, well over the time an application takes to answer a message.
const RECEIPT_DELAY_MS: u64 = 100;

impl<S: StateStore, P: Platform> Client<S, P> {
    /// After a step a person started: store it, tell the UI, move the outbox.
    ///
    /// The pump goes first: when it is idle it prepares what the step queued (encrypts the
    /// message) and stores that together with the step in one write before sending, so a
    /// message leaves after one write to the store rather than two. Either way the step is
    /// stored when this returns: `persist` waits for the pump's write and stores whatever
    /// is left.
    pub(crate) async fn step_done(&self) -> Result<(), ClientError> {
        self.kick();
        yield_now().await;
        self.persist().await
    }

    pub(super) fn kick(&self) {
        let _ = self.inner.kick.unbounded_send(());
    }

    /// Kicks the pump soon, for receipts (delivery and read) the engine holds: unless something
    /// else kicks it first. A reply written meanwhile then goes ahead of them rather than
    /// behind (the engine turns held receipts into outbox items, after everything queued,
    /// whenever the pump runs), and receipts for messages that arrive together leave as one.
    pub(super) fn kick_for_receipts(&self) {
        if self.inner.receipts_kick.replace(true) {
            return;
        }
        let me = self.clone();
        let sleep = self.inner.platform.sleep(RECEIPT_DELAY_MS);
        self.inner.platform.spawn(
            async move {
                sleep.await;
                me.inner.receipts_kick.set(false);
                me.kick();
            }
            .boxed_local(),
        );
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
    ///
    /// Each round stores, in one write, what the previous answer changed (the item settled,
    /// its message "Sent") together with what preparing the next item changed (its
    /// encryption), and only then sends that item: nothing is sent before it is stored, and
    /// an answer not stored yet when the page goes away only means the item is sent again
    /// under the same id, which the server deduplicates.
    async fn pump(&self) {
        loop {
            let session = self.inner.session.borrow().clone();
            let out = match &session {
                Some(_) => {
                    let now = self.inner.platform.now_ms();
                    self.inner.engine.borrow_mut().next_outbound(now)
                }
                None => None,
            };
            if self.persist().await.is_err() {
                return;
            }
            let (Some(session), Some(out)) = (session, out) else { return };
            match session.send_outbound(&out).await {
                // Stored at the start of the next round.
                Ok(result) => {
                    let now = self.inner.platform.now_ms();
                    self.inner.engine.borrow_mut().outbound_result(out.id, result, now);
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

/// Lets every task woken before this one run first (the pump, after a kick), then goes on.
async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

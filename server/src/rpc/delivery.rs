//! Pushing a device's queue to its subscribed listener.
//!
//! One task per subscription: fetch after the cursor, call `listener.deliver`, wait for the
//! reply, repeat; when the queue is empty, sleep until the [`WakeHub`] says the device has
//! something new (woken by storage: in-process for SQLite, LISTEN/NOTIFY across nodes for
//! PostgreSQL). There is no polling.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use qpq_proto::node_capnp::{listener, subscription};
use qpq_proto::{wire, DeviceAddress, Envelope};
use tokio::sync::{broadcast, oneshot, Notify};

use super::session::MAX_FETCH;
use super::{now_ms, store_err, Ctx};
use crate::storage::Storage;

/// Most payload bytes pushed in one `deliver` call (at least one envelope is always sent).
const BATCH_BYTES: usize = 4 << 20;

/// Routes storage wake-ups to the subscriptions of this node.
#[derive(Default)]
pub(crate) struct WakeHub {
    waiters: RefCell<HashMap<DeviceAddress, Vec<Weak<Notify>>>>,
}

impl WakeHub {
    /// Starts forwarding `storage`'s wake-ups; runs until the storage is dropped.
    pub fn start(storage: &Arc<dyn Storage>) -> Rc<WakeHub> {
        let hub = Rc::new(WakeHub::default());
        let mut rx = storage.wakeups();
        let weak = Rc::downgrade(&hub);
        tokio::task::spawn_local(async move {
            loop {
                let r = rx.recv().await;
                let Some(hub) = weak.upgrade() else { return };
                match r {
                    Ok(device) => hub.wake(&device),
                    // Missed some: wake everybody; they fetch and find what is there.
                    Err(broadcast::error::RecvError::Lagged(_)) => hub.wake_all(),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        hub
    }

    fn register(&self, device: &DeviceAddress) -> Rc<Notify> {
        let n = Rc::new(Notify::new());
        let mut w = self.waiters.borrow_mut();
        let list = w.entry(device.clone()).or_default();
        list.retain(|x| x.strong_count() > 0);
        list.push(Rc::downgrade(&n));
        n
    }

    fn wake(&self, device: &DeviceAddress) {
        let mut w = self.waiters.borrow_mut();
        if let Some(list) = w.get_mut(device) {
            list.retain(|x| x.strong_count() > 0);
            for n in list.iter().filter_map(Weak::upgrade) {
                n.notify_one();
            }
            if list.is_empty() {
                w.remove(device);
            }
        }
    }

    fn wake_all(&self) {
        for n in self.waiters.borrow().values().flatten().filter_map(Weak::upgrade) {
            n.notify_one();
        }
    }
}

/// Up to `limit` envelopes after `after`, cut to [`BATCH_BYTES`] of payload.
pub(crate) async fn fetch_batch(
    ctx: &Ctx,
    device: &DeviceAddress,
    after: u64,
    limit: u32,
) -> Result<Vec<Envelope>, capnp::Error> {
    let mut envs = ctx.storage.fetch(device, after, limit, now_ms()).await.map_err(|e| store_err("fetch", e))?;
    let mut total = 0;
    let keep = envs
        .iter()
        .position(|e| {
            total += e.payload.len();
            total > BATCH_BYTES
        })
        .map(|p| p.max(1))
        .unwrap_or(envs.len());
    envs.truncate(keep);
    Ok(envs)
}

/// Ends its subscription when dropped (the client released the handle or disconnected).
struct SubscriptionImpl {
    _cancel: oneshot::Sender<()>,
}

impl subscription::Server for SubscriptionImpl {}

/// Starts pushing `device`'s queue after `after` to `listener`.
pub(crate) fn start(ctx: Rc<Ctx>, device: DeviceAddress, listener: listener::Client, after: u64) -> subscription::Client {
    let (tx, rx) = oneshot::channel();
    tokio::task::spawn_local(run(ctx, device, listener, after, rx));
    capnp_rpc::new_client(SubscriptionImpl { _cancel: tx })
}

async fn run(ctx: Rc<Ctx>, device: DeviceAddress, listener: listener::Client, mut cursor: u64, mut cancel: oneshot::Receiver<()>) {
    let wake = ctx.hub.register(&device);
    loop {
        // A wake-up that arrives while fetching is kept as a Notify permit, so the wait below
        // returns at once and nothing is missed.
        let envs = match fetch_batch(&ctx, &device, cursor, MAX_FETCH).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e.extra, "delivery fetch failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    _ = &mut cancel => return,
                }
            }
        };
        if envs.is_empty() {
            tokio::select! {
                _ = wake.notified() => continue,
                _ = &mut cancel => return,
            }
        }
        let last = envs.last().map(|e| e.seq).unwrap_or(cursor);
        let mut req = listener.deliver_request();
        {
            let mut list = req.get().init_envelopes(envs.len() as u32);
            for (i, e) in envs.iter().enumerate() {
                wire::write_envelope(list.reborrow().get(i as u32), e);
            }
        }
        tokio::select! {
            r = req.send().promise => match r {
                Ok(_) => cursor = last,
                Err(e) => {
                    tracing::debug!(error = %e.extra, "listener gone; subscription ends");
                    return;
                }
            },
            _ = &mut cancel => return,
        }
    }
}

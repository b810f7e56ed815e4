//! Pushing a device's queue to its subscribed listener.
//!
//! One task per subscription: fetch after the cursor, call `listener.deliver`, wait for the
//! reply, acknowledge what it says the listener stored (in the background, through the
//! session's acknowledgements, so that it costs no call of the listener's own), repeat; when
//! the queue is empty, sleep until the [`WakeHub`] says the device has
//! something new (woken by storage: in-process for SQLite, LISTEN/NOTIFY across nodes for
//! PostgreSQL). There is no polling.
//!
//! The hub also ends the streams of devices that are gone: a [`Wake::Gone`] (a revocation
//! or an account deletion, on this node or another) makes it look the device up, and when
//! storage no longer has it, every stream logged in as that device is closed at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use qpq_proto::node_capnp::{listener, subscription};
use qpq_proto::{wire, DeviceAddress, DeviceId, Envelope};
use tokio::sync::{broadcast, oneshot, Notify};

use super::session::{Acks, MAX_FETCH};
use super::{now_ms, store_err, Ctx};
use crate::storage::{Storage, StoreError, Wake};

/// Most payload bytes pushed in one `deliver` call (at least one envelope is always sent).
pub(crate) const BATCH_BYTES: u64 = 4 << 20;

/// Closes one stream when fired (see [`WakeHub::watch_session`]).
#[derive(Default)]
pub(crate) struct StreamKill(Notify);

impl StreamKill {
    /// Ends the stream.
    pub fn fire(&self) {
        self.0.notify_one();
    }

    /// Resolves once fired (also when fired before this was awaited).
    pub async fn fired(&self) {
        self.0.notified().await;
    }
}

/// The logged-in streams of this node, by device id: each with the full address to look up.
type LoggedIn = HashMap<DeviceId, Vec<(DeviceAddress, Weak<StreamKill>)>>;

/// Routes storage wake-ups to the subscriptions and logged-in streams of this node.
pub(crate) struct WakeHub {
    storage: Arc<dyn Storage>,
    waiters: RefCell<HashMap<DeviceId, Vec<Weak<Notify>>>>,
    sessions: RefCell<LoggedIn>,
}

impl WakeHub {
    /// Starts forwarding `storage`'s wake-ups; runs until the storage is dropped.
    pub fn start(storage: &Arc<dyn Storage>) -> Rc<WakeHub> {
        let hub = Rc::new(WakeHub {
            storage: storage.clone(),
            waiters: RefCell::default(),
            sessions: RefCell::default(),
        });
        let mut rx = storage.wakeups();
        let weak = Rc::downgrade(&hub);
        tokio::task::spawn_local(async move {
            loop {
                let r = rx.recv().await;
                let Some(hub) = weak.upgrade() else { return };
                match r {
                    Ok(Wake::Queue(device)) => hub.wake(&device),
                    Ok(Wake::Gone(device)) => hub.check_sessions(Some(device)),
                    // Missed some: wake everybody (they fetch and find what is there) and
                    // look up every logged-in device.
                    Ok(Wake::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        hub.wake_all();
                        hub.check_sessions(None);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        hub
    }

    /// Closes `kill`'s stream once `device` is gone from storage.
    pub fn watch_session(&self, device: &DeviceAddress, kill: &Rc<StreamKill>) {
        let mut s = self.sessions.borrow_mut();
        let list = s.entry(device.device).or_default();
        list.retain(|(_, k)| k.strong_count() > 0);
        list.push((device.clone(), Rc::downgrade(kill)));
    }

    /// Looks up the logged-in devices with id `device` (every one for `None`) and closes the
    /// streams of those storage no longer has. A wake-up names only a device id, so it is a
    /// hint: nothing is closed on its word alone.
    fn check_sessions(&self, device: Option<DeviceId>) {
        let candidates: Vec<(DeviceAddress, Weak<StreamKill>)> = {
            let mut s = self.sessions.borrow_mut();
            for list in s.values_mut() {
                list.retain(|(_, k)| k.strong_count() > 0);
            }
            s.retain(|_, list| !list.is_empty());
            match device {
                Some(d) => s.get(&d).cloned().unwrap_or_default(),
                None => s.values().flatten().cloned().collect(),
            }
        };
        if candidates.is_empty() {
            return;
        }
        let storage = self.storage.clone();
        tokio::task::spawn_local(async move {
            for (address, kill) in candidates {
                if let Err(StoreError::Revoked) = storage.caller_alive(&address).await {
                    if let Some(kill) = kill.upgrade() {
                        kill.fire();
                    }
                }
            }
        });
    }

    fn register(&self, device: &DeviceAddress) -> Rc<Notify> {
        let n = Rc::new(Notify::new());
        let mut w = self.waiters.borrow_mut();
        let list = w.entry(device.device).or_default();
        list.retain(|x| x.strong_count() > 0);
        list.push(Rc::downgrade(&n));
        n
    }

    fn wake(&self, device: &DeviceId) {
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

/// Up to `limit` envelopes after `after`, at most `max_bytes` of payload (but at least one
/// envelope); the bound is applied by the storage query.
pub(crate) async fn fetch_batch(
    ctx: &Ctx,
    device: &DeviceAddress,
    after: u64,
    limit: u32,
    max_bytes: u64,
) -> Result<Vec<Envelope>, capnp::Error> {
    let envs = ctx.storage.fetch(device, after, limit, max_bytes, now_ms()).await.map_err(|e| store_err("fetch", e))?;
    ctx.metrics.envelopes_out.add(envs.len() as u64);
    Ok(envs)
}

/// Ends its subscription when dropped (the client released the handle or disconnected).
struct SubscriptionImpl {
    _cancel: oneshot::Sender<()>,
}

impl subscription::Server for SubscriptionImpl {}

/// Clears a session's "subscribed" mark when its subscription task ends (and counts the
/// subscription as running until then).
struct Subscribed {
    active: Rc<Cell<bool>>,
    _running: qpq_metrics::GaugeGuard,
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.active.set(false);
    }
}

/// Starts pushing `device`'s queue after `after` to `listener`; `active` is set until the
/// subscription ends.
pub(crate) fn start(
    ctx: Rc<Ctx>,
    device: DeviceAddress,
    listener: listener::Client,
    after: u64,
    active: Rc<Cell<bool>>,
    acks: Rc<Acks>,
) -> subscription::Client {
    let (tx, rx) = oneshot::channel();
    active.set(true);
    let running = Subscribed { active, _running: ctx.metrics.subscriptions.track() };
    tokio::task::spawn_local(run(ctx, device, listener, after, acks, rx, running));
    capnp_rpc::new_client(SubscriptionImpl { _cancel: tx })
}

async fn run(
    ctx: Rc<Ctx>,
    device: DeviceAddress,
    listener: listener::Client,
    mut cursor: u64,
    acks: Rc<Acks>,
    mut cancel: oneshot::Receiver<()>,
    _active: Subscribed,
) {
    let wake = ctx.hub.register(&device);
    loop {
        // A wake-up that arrives while fetching is kept as a Notify permit, so the wait below
        // returns at once and nothing is missed.
        let envs = match fetch_batch(&ctx, &device, cursor, MAX_FETCH, BATCH_BYTES).await {
            Ok(e) => e,
            Err(e) if e.extra.starts_with(qpq_proto::ErrorCode::DeviceRevoked.as_str()) => {
                tracing::debug!("subscription ends: the device is gone");
                return;
            }
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
                Ok(reply) => {
                    cursor = last;
                    // An answer settles at most what it answers.
                    let stored = reply.get().map(|r| r.get_stored()).unwrap_or(0).min(last);
                    if stored > 0 {
                        tokio::task::spawn_local(acknowledge(ctx.clone(), device.clone(), acks.clone(), stored));
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e.extra, "listener gone; subscription ends");
                    return;
                }
            },
            _ = &mut cancel => return,
        }
    }
}

/// Acknowledges `device`'s queue up to `up_to`, as the session's `ack` would (and coalesced
/// with its calls); a failure is left to the next acknowledgement, which covers this one.
async fn acknowledge(ctx: Rc<Ctx>, device: DeviceAddress, acks: Rc<Acks>, up_to: u64) {
    if let Err(e) = acks.ack(&*ctx.storage, &device, up_to).await {
        tracing::debug!(error = %e.extra, "a delivery's acknowledgement was not written");
    }
}

//! The transaction scripts, written once over [`Backend`]: every storage operation's checks,
//! refusals and writes, in order. Each script begins its own transaction, so a failed
//! attempt is rolled back and can be run again; [`retrying`] applies the backend's rule for
//! that. Any type implementing [`Backend`] is a [`Storage`].

mod accounts;
mod blobs;
mod blocks;
mod expiry;
mod links;
mod messaging;
mod push;

use std::future::Future;

use async_trait::async_trait;
use qpq_proto::{ChannelId, DeviceAddress, DeviceId, DeviceRecord, Envelope, UserId};
use tokio::sync::broadcast;

use super::backend::{AccountSql, Backend};
use super::rows::{describe, describe_sqlite, TxError};
use super::{
    BlobRow, ChannelRow, Claimed, CommitInput, CommitOutcome, DeviceAbout, EnqueueInput, EnqueueOutcome, ExpiryStats,
    KeyPackageRow, Leadership, Millis, PushJob, PushOutcome, PushSubscription, Storage, StoreError, VapidKeyRow, Wake,
};

/// The advisory lock whose holder is the cluster's push sender.
const PUSH_SENDER_LOCK: i64 = 0x7170_7100_7075_7368;

/// How often a transaction the backend may retry is tried again.
const RETRIES: u32 = 8;

/// Runs `attempt` until it succeeds, is refused, or fails in a way `backend` does not retry
/// (each attempt is its own transaction, rolled back on failure). On a backend that groups
/// its writes (SQLite, `super::group`) it then waits for the batch it wrote in to be
/// committed: no call is answered, whatever the answer, before what it wrote or read in a
/// write transaction is durable.
async fn retrying<B, T, F, Fut>(backend: &B, attempt: F) -> Result<T, StoreError>
where
    B: Backend,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TxError>>,
{
    let (answer, batch) = super::group::tracked(attempts(backend, attempt)).await;
    match batch {
        Some(batch) => backend.settle(batch).await.and(answer),
        None => answer,
    }
}

async fn attempts<B, T, F, Fut>(backend: &B, mut attempt: F) -> Result<T, StoreError>
where
    B: Backend,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TxError>>,
{
    let mut left = RETRIES;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(TxError::Refused(e)) => return Err(e),
            Err(TxError::Db(op, e)) => {
                if left > 0 && backend.retryable(&e) {
                    left -= 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                return Err(describe(op, &e));
            }
            Err(TxError::Sqlite(op, e)) => return Err(describe_sqlite(op, &e)),
        }
    }
}

/// Wakes local subscribers and sessions (called after the commit that changed them; other
/// nodes, if any, hear of it through the backend's `announce` in the transaction or its
/// `announce_committed` now).
fn wake_all<B: Backend>(backend: &B, wakes: Vec<Wake>) {
    backend.announce_committed(&wakes);
    for w in wakes {
        // No subscriber is not an error: envelopes wait in the queue.
        let _ = backend.wake().send(w);
    }
}

/// The first statement of every script a session calls: its device still exists
/// (`Revoked` once it was revoked or its account deleted). `None` for calls made by the node
/// itself.
async fn check_caller<T: AccountSql>(tx: &mut T, caller: Option<&DeviceAddress>) -> Result<(), TxError> {
    match caller {
        Some(c) if tx.device_key(c).await?.is_none() => Err(StoreError::Revoked.into()),
        _ => Ok(()),
    }
}

#[async_trait]
impl<B: Backend> Storage for B {
    async fn create_user(
        &self,
        user: &UserId,
        identity_key: &[u8; 32],
        first_device: &DeviceRecord,
        now: Millis,
    ) -> Result<(), StoreError> {
        retrying(self, || accounts::create_user(self, user, identity_key, first_device, now)).await
    }

    async fn identity_key(&self, user: &UserId) -> Result<Option<[u8; 32]>, StoreError> {
        retrying(self, || accounts::identity_key(self, user)).await
    }

    async fn devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        retrying(self, || accounts::devices(self, user)).await
    }

    async fn device(&self, device: &DeviceAddress) -> Result<Option<DeviceRecord>, StoreError> {
        retrying(self, || accounts::device(self, device)).await
    }

    async fn devices_about(&self, user: &UserId) -> Result<Vec<(DeviceRecord, DeviceAbout)>, StoreError> {
        retrying(self, || accounts::devices_about(self, user)).await
    }

    async fn set_device_label(&self, device: &DeviceAddress, label: Option<&[u8]>) -> Result<(), StoreError> {
        retrying(self, || accounts::set_device_label(self, device, label)).await
    }

    async fn touch_login(&self, device: &DeviceAddress, now: Millis) -> Result<(), StoreError> {
        retrying(self, || accounts::touch_login(self, device, now)).await
    }

    async fn add_device(&self, record: &DeviceRecord, max: usize, by: Option<&DeviceAddress>, now: Millis) -> Result<(), StoreError> {
        retrying(self, || accounts::add_device(self, record, max, by, now)).await
    }

    async fn revoke_device(&self, device: &DeviceAddress, by: Option<&DeviceAddress>) -> Result<(), StoreError> {
        let gone = retrying(self, || accounts::revoke_device(self, device, by)).await?;
        wake_all(self, gone);
        Ok(())
    }

    async fn delete_user(&self, user: &UserId, reserved_until: Millis, by: Option<&DeviceAddress>) -> Result<(), StoreError> {
        let gone = retrying(self, || accounts::delete_user(self, user, reserved_until, by)).await?;
        wake_all(self, gone);
        Ok(())
    }

    async fn restore_device(&self, record: &DeviceRecord, now: Millis, expires_at: Millis) -> Result<(), StoreError> {
        let wakes = retrying(self, || accounts::restore_device(self, record, now, expires_at)).await?;
        wake_all(self, wakes);
        Ok(())
    }

    async fn caller_alive(&self, caller: &DeviceAddress) -> Result<(), StoreError> {
        retrying(self, || accounts::caller_alive(self, caller)).await
    }

    async fn add_key_packages(
        &self,
        device: &DeviceAddress,
        packages: &[KeyPackageRow],
        last_resort: Option<&KeyPackageRow>,
        max_held: u32,
    ) -> Result<u32, StoreError> {
        retrying(self, || accounts::add_key_packages(self, device, packages, last_resort, max_held)).await
    }

    async fn claim_key_packages(
        &self,
        user: &UserId,
        except: Option<&DeviceAddress>,
        only: &[DeviceId],
        now: Millis,
    ) -> Result<Vec<Claimed>, StoreError> {
        retrying(self, || accounts::claim_key_packages(self, user, except, only, now)).await
    }

    async fn key_package_count(&self, device: &DeviceAddress) -> Result<u32, StoreError> {
        retrying(self, || accounts::key_package_count(self, device)).await
    }

    async fn create_channel(
        &self,
        channel: &ChannelId,
        creator: &DeviceAddress,
        group: Option<&[u8]>,
        now: Millis,
    ) -> Result<ChannelRow, StoreError> {
        retrying(self, || messaging::create_channel(self, channel, creator, group, now)).await
    }

    async fn channel(&self, channel: &ChannelId) -> Result<Option<ChannelRow>, StoreError> {
        retrying(self, || messaging::channel(self, channel)).await
    }

    async fn group_state(&self, channel: &ChannelId) -> Result<Option<Vec<u8>>, StoreError> {
        retrying(self, || messaging::group_state(self, channel)).await
    }

    async fn put_group_info(&self, channel: &ChannelId, caller: &DeviceAddress, epoch: u64, info: &[u8]) -> Result<(), StoreError> {
        retrying(self, || messaging::put_group_info(self, channel, caller, epoch, info)).await
    }

    async fn group_info(&self, channel: &ChannelId) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, StoreError> {
        retrying(self, || messaging::group_info(self, channel)).await
    }

    async fn commit(&self, input: &CommitInput) -> Result<CommitOutcome, StoreError> {
        let (outcome, woken) = retrying(self, || messaging::commit(self, input)).await?;
        wake_all(self, woken);
        Ok(outcome)
    }

    async fn enqueue(&self, input: &EnqueueInput) -> Result<EnqueueOutcome, StoreError> {
        let (outcome, woken) = retrying(self, || messaging::enqueue(self, input)).await?;
        wake_all(self, woken);
        Ok(outcome)
    }

    async fn fetch(
        &self,
        device: &DeviceAddress,
        after: u64,
        limit: u32,
        max_bytes: u64,
        now: Millis,
    ) -> Result<Vec<Envelope>, StoreError> {
        retrying(self, || messaging::fetch(self, device, after, limit, max_bytes, now)).await
    }

    async fn ack(&self, device: &DeviceAddress, up_to: u64) -> Result<(), StoreError> {
        retrying(self, || messaging::ack(self, device, up_to)).await
    }

    async fn create_blob(&self, blob: &BlobRow, owner: &DeviceAddress, max_owned: u64, now: Millis) -> Result<(), StoreError> {
        retrying(self, || blobs::create_blob(self, blob, owner, max_owned, now)).await
    }

    async fn blob(&self, id: &[u8; 16], now: Millis) -> Result<Option<BlobRow>, StoreError> {
        retrying(self, || blobs::blob(self, id, now)).await
    }

    async fn put_chunk(&self, id: &[u8; 16], index: u32, data: &[u8], by: Option<&DeviceAddress>, now: Millis) -> Result<BlobRow, StoreError> {
        retrying(self, || blobs::put_chunk(self, id, index, data, by, now)).await
    }

    async fn get_chunk(&self, id: &[u8; 16], index: u32, now: Millis) -> Result<Option<Vec<u8>>, StoreError> {
        retrying(self, || blobs::get_chunk(self, id, index, now)).await
    }

    async fn queued_envelopes(&self) -> Result<u64, StoreError> {
        retrying(self, || expiry::queued_envelopes(self)).await
    }

    async fn expire(&self, now: Millis, records_before: Millis, claims_before: Millis) -> Result<ExpiryStats, StoreError> {
        retrying(self, || expiry::expire(self, now, records_before, claims_before)).await
    }

    async fn set_push_subscription(
        &self,
        device: &DeviceAddress,
        subscription: &PushSubscription,
        now: Millis,
    ) -> Result<(), StoreError> {
        retrying(self, || push::set_subscription(self, device, subscription, now)).await
    }

    async fn remove_push_subscription(&self, device: &DeviceAddress) -> Result<(), StoreError> {
        retrying(self, || push::remove_subscription(self, device)).await
    }

    async fn push_subscription(&self, device: &DeviceAddress) -> Result<Option<PushSubscription>, StoreError> {
        retrying(self, || push::subscription(self, device)).await
    }

    async fn vapid_key(&self, candidate: &VapidKeyRow, now: Millis) -> Result<VapidKeyRow, StoreError> {
        retrying(self, || push::vapid_key(self, candidate, now)).await
    }

    async fn claim_pushes(&self, now: Millis, lease_until: Millis, limit: u32) -> Result<Vec<PushJob>, StoreError> {
        retrying(self, || push::claim(self, now, lease_until, limit)).await
    }

    async fn finish_push(&self, job: &PushJob, outcome: PushOutcome) -> Result<(), StoreError> {
        retrying(self, || push::finish(self, job, outcome)).await
    }

    async fn next_push_due(&self) -> Result<Option<Millis>, StoreError> {
        retrying(self, || push::next_due(self)).await
    }

    async fn lead_pushes(&self) -> Result<Option<Leadership>, StoreError> {
        retrying(self, || self.lead(PUSH_SENDER_LOCK)).await
    }

    async fn open_link(
        &self,
        slot: &[u8; 32],
        owner: &DeviceAddress,
        max_open: u32,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        retrying(self, || links::open(self, slot, owner, max_open, now, expires_at)).await
    }

    async fn put_link_request(&self, slot: &[u8; 32], request: &[u8], now: Millis) -> Result<(), StoreError> {
        retrying(self, || links::put_request(self, slot, request, now)).await
    }

    async fn link_request(&self, slot: &[u8; 32], owner: &UserId, now: Millis) -> Result<Option<Vec<u8>>, StoreError> {
        retrying(self, || links::request(self, slot, owner, now)).await
    }

    async fn answer_link(
        &self,
        slot: &[u8; 32],
        answer: &[u8],
        by: &DeviceAddress,
        now: Millis,
    ) -> Result<(), StoreError> {
        retrying(self, || links::answer(self, slot, answer, by, now)).await
    }

    async fn take_link_answer(&self, slot: &[u8; 32], now: Millis) -> Result<Option<Vec<u8>>, StoreError> {
        retrying(self, || links::take_answer(self, slot, now)).await
    }

    async fn close_link(&self, slot: &[u8; 32], by: &DeviceAddress) -> Result<(), StoreError> {
        retrying(self, || links::close(self, slot, by)).await
    }

    async fn set_blocked(
        &self,
        by: &DeviceAddress,
        user: &UserId,
        blocked: bool,
        max: usize,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        let woken = retrying(self, || blocks::set_blocked(self, by, user, blocked, max, now, expires_at)).await?;
        wake_all(self, woken);
        Ok(())
    }

    async fn blocked_users(&self, by: &DeviceAddress) -> Result<Vec<UserId>, StoreError> {
        retrying(self, || blocks::blocked_users(self, by)).await
    }

    fn wakeups(&self) -> broadcast::Receiver<Wake> {
        self.wake().subscribe()
    }
}

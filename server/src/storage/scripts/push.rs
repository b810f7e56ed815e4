//! Web Push: subscriptions, claiming due pushes under a lease, how a push ends, and the one
//! VAPID key of the cluster. Waiting pushes are added by the fan-out scripts
//! (`messaging.rs`) in the transaction that queues the message, and dropped by `ack`.

use qpq_proto::DeviceAddress;

use crate::storage::backend::{AccountSql, Backend, PushSql, Tx};
use crate::storage::rows::{self, TxError};
use crate::storage::{Millis, PushJob, PushOutcome, PushSubscription, StoreError, VapidKeyRow};

pub(super) async fn set_subscription<B: Backend>(
    b: &B,
    device: &DeviceAddress,
    sub: &PushSubscription,
    now: Millis,
) -> Result<(), TxError> {
    let mut tx = b.write("store push subscription").await?;
    let key = tx.lock_device(device).await?.ok_or(StoreError::NoSuchDevice)?;
    tx.upsert_push_subscription(key, sub, now).await?;
    tx.commit().await
}

pub(super) async fn remove_subscription<B: Backend>(b: &B, device: &DeviceAddress) -> Result<(), TxError> {
    let mut tx = b.write("remove push subscription").await?;
    tx.delete_push_subscription(device).await?;
    tx.commit().await
}

pub(super) async fn subscription<B: Backend>(
    b: &B,
    device: &DeviceAddress,
) -> Result<Option<PushSubscription>, TxError> {
    const OP: &str = "read push subscription";
    let found = b.read(OP).await?.push_subscription_of(device).await?;
    Ok(found.map(|cols| rows::push_subscription(cols, OP)).transpose()?)
}

pub(super) async fn vapid_key<B: Backend>(b: &B, candidate: &VapidKeyRow, now: Millis) -> Result<VapidKeyRow, TxError> {
    const OP: &str = "read VAPID key";
    let mut tx = b.write(OP).await?;
    tx.insert_vapid_key(candidate, now).await?;
    let (private_key, public_key) = tx.vapid_key().await?.ok_or_else(|| rows::corrupt(OP))?;
    tx.commit().await?;
    Ok(VapidKeyRow {
        private_key: private_key.try_into().map_err(|_| rows::corrupt(OP))?,
        public_key: public_key.try_into().map_err(|_| rows::corrupt(OP))?,
    })
}

pub(super) async fn claim<B: Backend>(
    b: &B,
    now: Millis,
    lease_until: Millis,
    limit: u32,
) -> Result<Vec<PushJob>, TxError> {
    const OP: &str = "claim pushes";
    let mut tx = b.write(OP).await?;
    let due = tx.due_pushes(now, limit).await?;
    let mut jobs = Vec::with_capacity(due.len());
    for cols in due {
        let job = rows::push_job(cols, OP)?;
        tx.set_push_due(job.id, lease_until, i64::from(job.attempts)).await?;
        jobs.push(job);
    }
    tx.commit().await?;
    Ok(jobs)
}

pub(super) async fn finish<B: Backend>(b: &B, job: &PushJob, outcome: PushOutcome) -> Result<(), TxError> {
    let mut tx = b.write("finish push").await?;
    match outcome {
        PushOutcome::Sent => {
            tx.delete_pending_push(job.id).await?;
            tx.mark_notified(job.id).await?;
        }
        PushOutcome::Gone => {
            // A subscription registered since the claim stays; this push is over either way.
            tx.delete_push_subscription_at(job.id, &job.subscription.endpoint).await?;
            tx.delete_pending_push(job.id).await?;
        }
        PushOutcome::RetryAt(at) => tx.set_push_due(job.id, at, i64::from(job.attempts) + 1).await?,
        PushOutcome::GiveUp => tx.delete_pending_push(job.id).await?,
    }
    tx.commit().await
}

pub(super) async fn next_due<B: Backend>(b: &B) -> Result<Option<Millis>, TxError> {
    const OP: &str = "read next push";
    let next = b.read(OP).await?.next_push_due().await?;
    Ok(next.map(|t| rows::uint(t, OP)).transpose()?)
}

/// Queues a push for the recipients `keys` of a message (inside its transaction).
pub(super) async fn schedule<T: PushSql>(tx: &mut T, keys: &[i64], due: Millis) -> Result<(), TxError> {
    if keys.is_empty() {
        return Ok(());
    }
    tx.schedule_pushes(keys, due).await
}

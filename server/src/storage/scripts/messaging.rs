//! Channels, commits with epoch fencing, fan-out with idempotency, and the per-device
//! delivery queues.
//!
//! A commit holds its channel (`lock_channel`), an enqueue shares it (`share_channel`), so
//! membership cannot change under a fan-out and exactly one commit per epoch wins. Every
//! fan-out then holds the recipients' device rows in ascending key and bumps their sequence
//! numbers: the next writer to a device waits for this transaction to end, so sequence
//! numbers become visible in order and a reader never sees N+1 before N. The idempotency
//! key is claimed before anything is queued, so a concurrent retry waits for the first
//! attempt and then finds it. Blocks (`blocks`) are read inside the same transactions.

use qpq_proto::{ChannelId, DeviceAddress, Envelope, EnvelopeKind};

use super::check_caller;
use crate::storage::backend::{AccountSql, Backend, ChannelSql, Outgoing, PushSql, Tx};
use crate::storage::rows::{self, AddressCols, TxError, SENT_APPLICATION, SENT_COMMIT};
use crate::storage::{ChannelRow, CommitInput, CommitOutcome, EnqueueInput, EnqueueOutcome, Millis, StoreError, Wake};

pub(super) async fn create_channel<B: Backend>(
    b: &B,
    channel: &ChannelId,
    creator: &DeviceAddress,
    group: Option<&[u8]>,
    now: Millis,
) -> Result<ChannelRow, TxError> {
    const OP: &str = "create channel";
    let mut tx = b.write(OP).await?;
    let creator_key = tx.device_key(creator).await?.ok_or(StoreError::Revoked)?;
    if !tx.insert_channel(channel, creator, now).await? {
        let (user, device) = tx.channel_creator(channel).await?.ok_or_else(|| rows::corrupt(OP))?;
        if user != creator.user.as_str() || device != creator.device.0 {
            return Err(StoreError::ChannelExists.into());
        }
        // A retry by the creator: the channel as it is now.
        let row = read_channel(&mut tx, channel).await?.ok_or_else(|| rows::corrupt(OP))?;
        tx.commit().await?;
        return Ok(row);
    }
    tx.add_members(channel, &[creator_key]).await?;
    if let Some(state) = group {
        tx.put_group_state(channel, state).await?;
    }
    tx.commit().await?;
    Ok(ChannelRow { id: channel.clone(), epoch: 0, created_at: now, members: vec![creator.clone()] })
}

pub(super) async fn channel<B: Backend>(b: &B, channel: &ChannelId) -> Result<Option<ChannelRow>, TxError> {
    let mut conn = b.read("read channel").await?;
    read_channel(&mut conn, channel).await
}

pub(super) async fn group_state<B: Backend>(b: &B, channel: &ChannelId) -> Result<Option<Vec<u8>>, TxError> {
    let mut conn = b.read("read group state").await?;
    conn.group_state(channel).await
}

pub(super) async fn put_group_info<B: Backend>(
    b: &B,
    channel: &ChannelId,
    caller: &DeviceAddress,
    epoch: u64,
    info: &[u8],
) -> Result<(), TxError> {
    const OP: &str = "put group info";
    let mut tx = b.write(OP).await?;
    check_caller(&mut tx, Some(caller)).await?;
    let current = rows::uint(tx.lock_channel(channel).await?.ok_or(StoreError::NoSuchChannel)?, OP)?;
    tx.member_key(channel, caller).await?.ok_or(StoreError::NotMember)?;
    if current != epoch || !tx.put_group_info(channel, epoch, info).await? {
        return Err(StoreError::StaleEpoch { current }.into());
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn group_info<B: Backend>(
    b: &B,
    channel: &ChannelId,
) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, TxError> {
    let mut conn = b.read("read group info").await?;
    conn.group_info(channel).await
}

/// Applies a commit; returns the outcome and the devices to wake locally once committed.
pub(super) async fn commit<B: Backend>(
    b: &B,
    input: &CommitInput,
) -> Result<(CommitOutcome, Vec<Wake>), TxError> {
    const OP: &str = "commit";
    let mut tx = b.write(OP).await?;
    let held = tx.lock_channel(&input.channel).await?;
    let (epoch, sender) = held_sender(&mut tx, held, &input.channel, &input.sender).await?;
    let current = rows::uint(epoch, OP)?;
    let next = current.checked_add(1).ok_or(StoreError::StaleEpoch { current })?;
    let commit = Outgoing {
        channel: &input.channel,
        sender: &input.sender,
        kind: EnvelopeKind::Commit,
        payload: &input.commit,
        expires_at: input.expires_at,
        now: input.now,
    };
    if let Some((epoch, server_time)) = claim_sent(&mut tx, &commit, &input.client_msg_id.0, SENT_COMMIT, next).await? {
        return Ok((CommitOutcome { epoch, server_time, duplicate: true }, Vec::new()));
    }
    if input.epoch != current {
        // Dropping the transaction releases the idempotency key again.
        return Err(StoreError::StaleEpoch { current }.into());
    }
    let mut added = Vec::with_capacity(input.add.len());
    for device in &input.add {
        added.push(tx.device_key(device).await?.ok_or(StoreError::NoSuchDevice)?);
    }
    added.sort_unstable();
    added.dedup();
    // Nobody is added by someone their account blocks.
    super::blocks::check_adds(&mut tx, &added, &input.sender.user).await?;
    let mut removed = Vec::with_capacity(input.remove.len());
    for device in &input.remove {
        // Removing a device that is gone already changes nothing.
        if let Some(key) = tx.device_key(device).await? {
            removed.push(key);
        }
    }
    removed.sort_unstable();
    removed.dedup();

    let members = tx.other_members(&input.channel, sender).await?;
    let mut to_lock = members.clone();
    to_lock.extend_from_slice(&added);
    let locked = lock_devices(&mut tx, to_lock).await?;
    if added.iter().any(|key| !locked.contains(key)) {
        // Revoked while this commit was being applied.
        return Err(StoreError::NoSuchDevice.into());
    }
    // Current members (removed ones included) get the commit before membership changes.
    let recipients: Vec<i64> = members.into_iter().filter(|key| locked.contains(key)).collect();
    // A device being removed takes the commit whatever its queue holds, so an abandoned
    // device can always be removed.
    let must_fit: Vec<i64> = locked.iter().copied().filter(|key| !removed.contains(key)).collect();
    check_room(&mut tx, &must_fit, input.max_queue).await?;
    push(&mut tx, &recipients, &commit).await?;
    let welcome = Outgoing { kind: EnvelopeKind::Welcome, payload: &input.welcome, ..commit };
    push(&mut tx, &added, &welcome).await?;
    super::push::schedule(&mut tx, &added, input.push_at).await?;
    if !removed.is_empty() {
        tx.remove_members(&input.channel, &removed).await?;
    }
    if !added.is_empty() {
        tx.add_members(&input.channel, &added).await?;
    }
    tx.set_epoch(&input.channel, next, input.joined_at).await?;
    if let Some(state) = &input.group {
        tx.put_group_state(&input.channel, state).await?;
    }

    let mut woken_keys = recipients;
    woken_keys.extend_from_slice(&added);
    let woken = queue_wakes(addresses(&mut tx, woken_keys, OP).await?);
    tx.announce(&woken).await?;
    tx.commit().await?;
    Ok((CommitOutcome { epoch: next, server_time: input.now, duplicate: false }, woken))
}

/// Queues an application message; returns the outcome and the devices to wake locally.
pub(super) async fn enqueue<B: Backend>(
    b: &B,
    input: &EnqueueInput,
) -> Result<(EnqueueOutcome, Vec<Wake>), TxError> {
    const OP: &str = "enqueue";
    let mut tx = b.write(OP).await?;
    let held = tx.share_channel(&input.channel).await?;
    let ((epoch, joined_at), sender) = held_sender(&mut tx, held, &input.channel, &input.sender).await?;
    let (current, joined_at) = (rows::uint(epoch, OP)?, rows::uint(joined_at, OP)?);
    let message = Outgoing {
        channel: &input.channel,
        sender: &input.sender,
        kind: EnvelopeKind::Application,
        payload: &input.payload,
        expires_at: input.expires_at,
        now: input.now,
    };
    if let Some((_, server_time)) = claim_sent(&mut tx, &message, &input.client_msg_id.0, SENT_APPLICATION, 0).await? {
        return Ok((EnqueueOutcome { server_time, duplicate: true }, Vec::new()));
    }
    // A message made before the latest devices joined is one they cannot read (the sender
    // encrypts it again once it has the commit that added them); one made in an epoch that
    // does not exist yet, nobody can. Other earlier epochs are fine: members keep a few past
    // epochs' secrets, and members that refused a commit (see `CommitInput::joined_at`) count
    // epochs behind the node. A retry of an accepted message was answered above, whatever
    // the epochs are now.
    if input.epoch < joined_at {
        return Err(StoreError::StaleEpoch { current }.into());
    }
    if input.epoch > current {
        return Err(StoreError::FutureEpoch { sent: input.epoch, current }.into());
    }
    // In a conversation of two accounts, one that blocks the sender gets nothing (the sender
    // is answered as usual).
    let members = super::blocks::recipients(&mut tx, &input.channel, sender, &input.sender.user).await?;
    let recipients = lock_devices(&mut tx, members).await?;
    let woken = queue_wakes(fan_out(&mut tx, &recipients, &message, input.max_queue, input.push_at).await?);
    tx.announce(&woken).await?;
    tx.commit().await?;
    Ok((EnqueueOutcome { server_time: input.now, duplicate: false }, woken))
}

pub(super) async fn fetch<B: Backend>(
    b: &B,
    device: &DeviceAddress,
    after: u64,
    limit: u32,
    max_bytes: u64,
    now: Millis,
) -> Result<Vec<Envelope>, TxError> {
    const OP: &str = "fetch";
    let mut conn = b.read(OP).await?;
    // The caller check and the read, in one statement where the backend can.
    let found = conn.caller_envelopes(device, after, limit, max_bytes, now).await?.ok_or(StoreError::Revoked)?;
    Ok(found.into_iter().map(|cols| rows::envelope(cols, OP)).collect::<Result<_, _>>()?)
}

/// An acknowledgement: the caller check and both writes are one statement where the backend
/// can, so it runs as a write of one statement ([`Backend::write_one`]).
pub(super) async fn ack<B: Backend>(b: &B, device: &DeviceAddress, up_to: u64) -> Result<(), TxError> {
    let mut tx = b.write_one("acknowledge").await?;
    if !tx.acknowledge(device, up_to).await? {
        return Err(StoreError::Revoked.into());
    }
    tx.commit().await
}

/// The sender's member key once `channel` is held (`held`: what holding it read, `None` when
/// there is no such channel). A member's device exists, so enqueue and commit skip the caller
/// check every other script begins with, one statement fewer per message, and make it only
/// when the channel or the membership is missing: a caller that is gone gets `Revoked`
/// first, as it would there.
async fn held_sender<T: ChannelSql + AccountSql, H>(
    tx: &mut T,
    held: Option<H>,
    channel: &ChannelId,
    sender: &DeviceAddress,
) -> Result<(H, i64), TxError> {
    let Some(held) = held else {
        check_caller(tx, Some(sender)).await?;
        return Err(StoreError::NoSuchChannel.into());
    };
    match tx.member_key(channel, sender).await? {
        Some(key) => Ok((held, key)),
        None => {
            check_caller(tx, Some(sender)).await?;
            Err(StoreError::NotMember.into())
        }
    }
}

/// `QuotaExceeded` when a queue of the held devices `keys` is full.
async fn check_room<T: ChannelSql>(tx: &mut T, keys: &[i64], max: u64) -> Result<(), TxError> {
    if keys.is_empty() {
        return Ok(());
    }
    let full = tx.full_queues(keys, max).await?;
    if full > 0 {
        return Err(queues_full(full, max));
    }
    Ok(())
}

/// The refusal when `full` of the recipients' queues hold `max` envelopes already.
fn queues_full(full: i64, max: u64) -> TxError {
    StoreError::QuotaExceeded(format!(
        "{full} recipient device(s) already have {max} undelivered messages waiting; try again once they catch up"
    ))
    .into()
}

/// Queues `message` for the held devices `keys` and schedules their pushes due at `push_at`
/// (`QuotaExceeded`, writing nothing, when a queue is full); returns their addresses, sorted.
async fn fan_out<T: ChannelSql + PushSql>(
    tx: &mut T,
    keys: &[i64],
    message: &Outgoing<'_>,
    max: u64,
    push_at: Millis,
) -> Result<Vec<DeviceAddress>, TxError> {
    const OP: &str = "enqueue";
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let found = tx.fan_out(keys, message, max, push_at).await?.map_err(|full| queues_full(full, max))?;
    sorted_addresses(found, OP)
}

/// "New envelopes" for each device.
pub(super) fn queue_wakes(devices: Vec<DeviceAddress>) -> Vec<Wake> {
    devices.into_iter().map(|d| Wake::Queue(d.device)).collect()
}

/// The channel with its members, from one statement (one snapshot).
async fn read_channel<T: ChannelSql>(tx: &mut T, channel: &ChannelId) -> Result<Option<ChannelRow>, TxError> {
    const OP: &str = "read channel";
    let found = tx.channel_rows(channel).await?;
    let Some(&(epoch, created_at, _, _)) = found.first() else {
        return Ok(None);
    };
    let mut members = Vec::with_capacity(found.len());
    for (_, _, user, device) in found {
        if let (Some(user), Some(device)) = (user, device) {
            members.push(rows::address((user, device), OP)?);
        }
    }
    members.sort();
    Ok(Some(ChannelRow {
        id: channel.clone(),
        epoch: rows::uint(epoch, OP)?,
        created_at: rows::uint(created_at, OP)?,
        members,
    }))
}

/// Records an enqueue or commit under its idempotency key. When the key was taken, returns
/// the recorded (epoch, server time) instead and records nothing.
async fn claim_sent<T: ChannelSql>(
    tx: &mut T,
    message: &Outgoing<'_>,
    client_msg_id: &[u8; 16],
    kind: i16,
    epoch: u64,
) -> Result<Option<(u64, u64)>, TxError> {
    const OP: &str = "read idempotency record";
    if tx.claim_sent(message, client_msg_id, kind, epoch).await? {
        return Ok(None);
    }
    let (epoch, time) = tx.sent(message.sender, client_msg_id, kind).await?.ok_or_else(|| rows::corrupt(OP))?;
    Ok(Some((rows::uint(epoch, OP)?, rows::uint(time, OP)?)))
}

/// Holds the device rows of `keys` in ascending order; returns those that still exist.
pub(super) async fn lock_devices<T: ChannelSql>(tx: &mut T, mut keys: Vec<i64>) -> Result<Vec<i64>, TxError> {
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(keys);
    }
    tx.lock_devices(&keys).await
}

/// Queues a message for the held devices `keys`, each under its next sequence number.
pub(super) async fn push<T: ChannelSql>(tx: &mut T, keys: &[i64], message: &Outgoing<'_>) -> Result<(), TxError> {
    if keys.is_empty() {
        return Ok(());
    }
    tx.push(keys, message).await
}

/// The addresses of the devices `keys`, sorted and without repeats.
pub(super) async fn addresses<T: ChannelSql>(
    tx: &mut T,
    mut keys: Vec<i64>,
    op: &'static str,
) -> Result<Vec<DeviceAddress>, TxError> {
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    sorted_addresses(tx.addresses(&keys).await?, op)
}

/// Device addresses read back from storage, sorted.
fn sorted_addresses(found: Vec<AddressCols>, op: &'static str) -> Result<Vec<DeviceAddress>, TxError> {
    let mut woken = found.into_iter().map(|cols| rows::address(cols, op)).collect::<Result<Vec<_>, _>>()?;
    woken.sort();
    Ok(woken)
}

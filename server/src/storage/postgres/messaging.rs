//! Channels, commits, fan-out and the per-device delivery queues.
//!
//! A commit holds its channel's row lock (`FOR NO KEY UPDATE`), an enqueue a share lock on
//! it, so membership cannot change under a fan-out and exactly one commit per epoch wins.
//! Every fan-out then locks the recipients' device rows in ascending id and bumps their
//! `last_seq` under that lock: the next writer to a device waits for this transaction to end,
//! so sequence numbers become visible in order and a reader never sees N+1 before N.

use qpq_proto::{ChannelId, DeviceAddress, Envelope, EnvelopeKind};
use sqlx::{PgConnection, PgPool};

use super::accounts::device_key;
use super::rows::{self, db, int, kind_code, EnvelopeCols, TxError, SENT_APPLICATION, SENT_COMMIT};
use super::wakeups;
use crate::storage::{ChannelRow, CommitInput, CommitOutcome, EnqueueInput, EnqueueOutcome, Millis, StoreError};

/// A channel joined with one of its members: epoch, created at, member user and device
/// (NULL when the channel has no members).
type ChannelMemberCols = (i64, i64, Option<String>, Option<Vec<u8>>);

pub(super) async fn create_channel(
    pool: &PgPool,
    channel: &ChannelId,
    creator: &DeviceAddress,
    now: Millis,
) -> Result<ChannelRow, TxError> {
    const OP: &str = "create channel";
    let mut tx = pool.begin().await.map_err(db(OP))?;
    let creator_key = device_key(&mut tx, creator, OP).await?;
    let inserted = sqlx::query(
        "INSERT INTO channels (id, epoch, created_at, creator_user, creator_device) VALUES ($1, 0, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(channel.as_bytes())
    .bind(int(now))
    .bind(creator.user.as_str())
    .bind(&creator.device.0[..])
    .execute(&mut *tx)
    .await
    .map_err(db(OP))?;
    if inserted.rows_affected() == 0 {
        let (user, device): (String, Vec<u8>) =
            sqlx::query_as("SELECT creator_user, creator_device FROM channels WHERE id = $1")
                .bind(channel.as_bytes())
                .fetch_one(&mut *tx)
                .await
                .map_err(db(OP))?;
        if user != creator.user.as_str() || device != creator.device.0 {
            return Err(StoreError::ChannelExists.into());
        }
        // A retry by the creator: the channel as it is now.
        let row = read_channel(&mut tx, channel).await?.ok_or_else(|| rows::corrupt(OP))?;
        tx.commit().await.map_err(db(OP))?;
        return Ok(row);
    }
    let creator_key = creator_key.ok_or(StoreError::NoSuchDevice)?;
    sqlx::query("INSERT INTO channel_members (channel, device) VALUES ($1, $2)")
        .bind(channel.as_bytes())
        .bind(creator_key)
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?;
    tx.commit().await.map_err(db(OP))?;
    Ok(ChannelRow { id: channel.clone(), epoch: 0, created_at: now, members: vec![creator.clone()] })
}

pub(super) async fn channel(pool: &PgPool, channel: &ChannelId) -> Result<Option<ChannelRow>, TxError> {
    let mut conn = pool.acquire().await.map_err(db("read channel"))?;
    read_channel(&mut conn, channel).await
}

/// Applies a commit; returns the outcome and the devices to wake locally once committed.
pub(super) async fn commit(
    pool: &PgPool,
    node: u64,
    input: &CommitInput,
) -> Result<(CommitOutcome, Vec<DeviceAddress>), TxError> {
    const OP: &str = "commit";
    let mut tx = pool.begin().await.map_err(db(OP))?;
    let epoch: Option<i64> = sqlx::query_scalar("SELECT epoch FROM channels WHERE id = $1 FOR NO KEY UPDATE")
        .bind(input.channel.as_bytes())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(OP))?;
    let current = rows::uint(epoch.ok_or(StoreError::NoSuchChannel)?, OP)?;
    let sender = member_key(&mut tx, &input.channel, &input.sender, OP).await?.ok_or(StoreError::NotMember)?;
    let next = current.checked_add(1).ok_or(StoreError::StaleEpoch { current })?;
    let commit = Outgoing {
        channel: &input.channel,
        sender: &input.sender,
        kind: EnvelopeKind::Commit,
        payload: &input.commit,
        expires_at: 0,
        now: input.now,
    };
    // Claiming the idempotency key first: a concurrent retry waits here for this transaction.
    if let Some((epoch, server_time)) =
        claim_sent(&mut tx, &commit, &input.client_msg_id.0, SENT_COMMIT, next, OP).await?
    {
        return Ok((CommitOutcome { epoch, server_time, duplicate: true }, Vec::new()));
    }
    if input.epoch != current {
        // Dropping the transaction releases the idempotency key again.
        return Err(StoreError::StaleEpoch { current }.into());
    }
    let mut added = Vec::with_capacity(input.add.len());
    for device in &input.add {
        added.push(device_key(&mut tx, device, OP).await?.ok_or(StoreError::NoSuchDevice)?);
    }
    added.sort_unstable();
    added.dedup();
    let mut removed = Vec::with_capacity(input.remove.len());
    for device in &input.remove {
        // Removing a device that is gone already changes nothing.
        if let Some(key) = device_key(&mut tx, device, OP).await? {
            removed.push(key);
        }
    }

    let members: Vec<i64> =
        sqlx::query_scalar("SELECT device FROM channel_members WHERE channel = $1 AND device <> $2")
            .bind(input.channel.as_bytes())
            .bind(sender)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(OP))?;
    let mut to_lock = members.clone();
    to_lock.extend_from_slice(&added);
    let locked = lock_devices(&mut tx, to_lock, OP).await?;
    if added.iter().any(|key| !locked.contains(key)) {
        // Revoked while this commit was being applied.
        return Err(StoreError::NoSuchDevice.into());
    }
    // Current members (removed ones included) get the commit before membership changes.
    let recipients: Vec<i64> = members.into_iter().filter(|key| locked.contains(key)).collect();
    push(&mut tx, &recipients, &commit, OP).await?;
    let welcome = Outgoing { kind: EnvelopeKind::Welcome, payload: &input.welcome, ..commit };
    push(&mut tx, &added, &welcome, OP).await?;
    sqlx::query("DELETE FROM channel_members WHERE channel = $1 AND device = ANY($2)")
        .bind(input.channel.as_bytes())
        .bind(&removed)
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?;
    sqlx::query("INSERT INTO channel_members (channel, device) SELECT $1, UNNEST($2::bigint[]) ON CONFLICT DO NOTHING")
        .bind(input.channel.as_bytes())
        .bind(&added)
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?;
    sqlx::query("UPDATE channels SET epoch = $1 WHERE id = $2")
        .bind(int(next))
        .bind(input.channel.as_bytes())
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?;

    let mut woken_keys = recipients;
    woken_keys.extend_from_slice(&added);
    let woken = addresses(&mut tx, woken_keys, OP).await?;
    wakeups::notify(&mut tx, node, &woken).await?;
    tx.commit().await.map_err(db(OP))?;
    Ok((CommitOutcome { epoch: next, server_time: input.now, duplicate: false }, woken))
}

/// Queues an application message; returns the outcome and the devices to wake locally.
pub(super) async fn enqueue(
    pool: &PgPool,
    node: u64,
    input: &EnqueueInput,
) -> Result<(EnqueueOutcome, Vec<DeviceAddress>), TxError> {
    const OP: &str = "enqueue";
    let mut tx = pool.begin().await.map_err(db(OP))?;
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM channels WHERE id = $1 FOR SHARE")
        .bind(input.channel.as_bytes())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(OP))?;
    if known.is_none() {
        return Err(StoreError::NoSuchChannel.into());
    }
    let sender = member_key(&mut tx, &input.channel, &input.sender, OP).await?.ok_or(StoreError::NotMember)?;
    let message = Outgoing {
        channel: &input.channel,
        sender: &input.sender,
        kind: EnvelopeKind::Application,
        payload: &input.payload,
        expires_at: input.expires_at,
        now: input.now,
    };
    if let Some((_, server_time)) =
        claim_sent(&mut tx, &message, &input.client_msg_id.0, SENT_APPLICATION, 0, OP).await?
    {
        return Ok((EnqueueOutcome { server_time, duplicate: true }, Vec::new()));
    }
    let members: Vec<i64> =
        sqlx::query_scalar("SELECT device FROM channel_members WHERE channel = $1 AND device <> $2")
            .bind(input.channel.as_bytes())
            .bind(sender)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(OP))?;
    let recipients = lock_devices(&mut tx, members, OP).await?;
    push(&mut tx, &recipients, &message, OP).await?;
    let woken = addresses(&mut tx, recipients, OP).await?;
    wakeups::notify(&mut tx, node, &woken).await?;
    tx.commit().await.map_err(db(OP))?;
    Ok((EnqueueOutcome { server_time: input.now, duplicate: false }, woken))
}

pub(super) async fn fetch(
    pool: &PgPool,
    device: &DeviceAddress,
    after: u64,
    limit: u32,
    now: Millis,
) -> Result<Vec<Envelope>, TxError> {
    const OP: &str = "fetch";
    let found: Vec<EnvelopeCols> = sqlx::query_as(
        "SELECT e.seq, e.channel, e.sender_user, e.sender_device, e.kind, e.payload, e.server_time, e.expires_at
         FROM envelopes e JOIN devices d ON d.id = e.device
         WHERE d.user_name = $1 AND d.device_id = $2 AND e.seq > $3 AND (e.expires_at = 0 OR e.expires_at > $4)
         ORDER BY e.seq LIMIT $5",
    )
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .bind(int(after))
    .bind(int(now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db(OP))?;
    Ok(found.into_iter().map(|cols| rows::envelope(cols, OP)).collect::<Result<_, _>>()?)
}

pub(super) async fn ack(pool: &PgPool, device: &DeviceAddress, up_to: u64) -> Result<(), TxError> {
    sqlx::query(
        "DELETE FROM envelopes WHERE seq <= $1
         AND device = (SELECT id FROM devices WHERE user_name = $2 AND device_id = $3)",
    )
    .bind(int(up_to))
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .execute(pool)
    .await
    .map_err(db("acknowledge"))?;
    Ok(())
}

/// A message on its way into delivery queues.
#[derive(Clone, Copy)]
struct Outgoing<'a> {
    channel: &'a ChannelId,
    sender: &'a DeviceAddress,
    kind: EnvelopeKind,
    payload: &'a [u8],
    expires_at: Millis,
    now: Millis,
}

/// The channel with its members, from one statement (one snapshot).
async fn read_channel(conn: &mut PgConnection, channel: &ChannelId) -> Result<Option<ChannelRow>, TxError> {
    const OP: &str = "read channel";
    let found: Vec<ChannelMemberCols> = sqlx::query_as(
        "SELECT c.epoch, c.created_at, d.user_name, d.device_id FROM channels c
         LEFT JOIN channel_members m ON m.channel = c.id
         LEFT JOIN devices d ON d.id = m.device
         WHERE c.id = $1",
    )
    .bind(channel.as_bytes())
    .fetch_all(&mut *conn)
    .await
    .map_err(db(OP))?;
    let Some(&(epoch, created_at, _, _)) = found.first() else {
        return Ok(None);
    };
    let mut members = Vec::with_capacity(found.len());
    for (_, _, user, device) in found {
        if let (Some(user), Some(device)) = (user, device) {
            members.push(rows::address(&user, device, OP)?);
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

/// The internal key of `device` when it is a member of `channel`.
async fn member_key(
    conn: &mut PgConnection,
    channel: &ChannelId,
    device: &DeviceAddress,
    op: &'static str,
) -> Result<Option<i64>, TxError> {
    sqlx::query_scalar(
        "SELECT d.id FROM devices d JOIN channel_members m ON m.device = d.id
         WHERE m.channel = $1 AND d.user_name = $2 AND d.device_id = $3",
    )
    .bind(channel.as_bytes())
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .fetch_optional(&mut *conn)
    .await
    .map_err(db(op))
}

/// Records an enqueue or commit under its idempotency key. When the key was taken, returns
/// the recorded (epoch, server time) instead and records nothing.
async fn claim_sent(
    conn: &mut PgConnection,
    message: &Outgoing<'_>,
    client_msg_id: &[u8; 16],
    kind: i16,
    epoch: u64,
    op: &'static str,
) -> Result<Option<(u64, u64)>, TxError> {
    let inserted = sqlx::query(
        "INSERT INTO sent_messages (sender_user, sender_device, client_msg_id, kind, channel, epoch, server_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(message.sender.user.as_str())
    .bind(&message.sender.device.0[..])
    .bind(&client_msg_id[..])
    .bind(kind)
    .bind(message.channel.as_bytes())
    .bind(int(epoch))
    .bind(int(message.now))
    .execute(&mut *conn)
    .await
    .map_err(db(op))?;
    if inserted.rows_affected() == 1 {
        return Ok(None);
    }
    let (epoch, time): (i64, i64) = sqlx::query_as(
        "SELECT epoch, server_time FROM sent_messages
         WHERE sender_user = $1 AND sender_device = $2 AND client_msg_id = $3 AND kind = $4",
    )
    .bind(message.sender.user.as_str())
    .bind(&message.sender.device.0[..])
    .bind(&client_msg_id[..])
    .bind(kind)
    .fetch_one(&mut *conn)
    .await
    .map_err(db(op))?;
    Ok(Some((rows::uint(epoch, op)?, rows::uint(time, op)?)))
}

/// Locks the device rows of `keys` in ascending order; returns those that still exist.
async fn lock_devices(conn: &mut PgConnection, mut keys: Vec<i64>, op: &'static str) -> Result<Vec<i64>, TxError> {
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(keys);
    }
    sqlx::query_scalar("SELECT id FROM devices WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await
        .map_err(db(op))
}

/// Queues a message for the (locked) devices `keys`, each under its next sequence number.
async fn push(conn: &mut PgConnection, keys: &[i64], message: &Outgoing<'_>, op: &'static str) -> Result<(), TxError> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH bumped AS (
             UPDATE devices SET last_seq = last_seq + 1 WHERE id = ANY($1) RETURNING id, last_seq)
         INSERT INTO envelopes
             (device, seq, channel, sender_user, sender_device, kind, payload, server_time, expires_at)
         SELECT id, last_seq, $2, $3, $4, $5, $6, $7, $8 FROM bumped",
    )
    .bind(keys)
    .bind(message.channel.as_bytes())
    .bind(message.sender.user.as_str())
    .bind(&message.sender.device.0[..])
    .bind(kind_code(message.kind))
    .bind(message.payload)
    .bind(int(message.now))
    .bind(int(message.expires_at))
    .execute(&mut *conn)
    .await
    .map_err(db(op))?;
    Ok(())
}

/// The addresses of the devices `keys`, sorted and without repeats.
async fn addresses(conn: &mut PgConnection, keys: Vec<i64>, op: &'static str) -> Result<Vec<DeviceAddress>, TxError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT user_name, device_id FROM devices WHERE id = ANY($1)")
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await
        .map_err(db(op))?;
    let mut woken =
        found.into_iter().map(|(user, device)| rows::address(&user, device, op)).collect::<Result<Vec<_>, _>>()?;
    woken.sort();
    Ok(woken)
}

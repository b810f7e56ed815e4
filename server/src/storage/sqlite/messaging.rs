//! Channels, commits, fan-out and the per-device delivery queues.

use qpq_proto::{ChannelId, DeviceAddress, Envelope, EnvelopeKind};
use sqlx::{SqliteConnection, SqlitePool};

use super::accounts::device_key;
use super::rows::{self, db, int, kind_code, EnvelopeCols, SENT_APPLICATION, SENT_COMMIT};
use crate::storage::{ChannelRow, CommitInput, CommitOutcome, EnqueueInput, EnqueueOutcome, Millis, StoreError};

/// A channel joined with one of its members: epoch, created at, member user and device
/// (NULL when the channel has no members).
type ChannelMemberCols = (i64, i64, Option<String>, Option<Vec<u8>>);

pub(super) async fn create_channel(
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    creator: &DeviceAddress,
    now: Millis,
) -> Result<ChannelRow, StoreError> {
    const OP: &str = "create channel";
    let existing: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT creator_user, creator_device FROM channels WHERE id = ?")
            .bind(channel.as_bytes())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db(OP))?;
    if let Some((user, device)) = existing {
        if user != creator.user.as_str() || device != creator.device.0 {
            return Err(StoreError::ChannelExists);
        }
        // A retry by the creator: the channel as it is now.
        return self::channel(conn, channel).await?.ok_or_else(|| rows::corrupt(OP));
    }
    let creator_key = device_key(conn, creator, OP).await?.ok_or(StoreError::NoSuchDevice)?;
    sqlx::query("INSERT INTO channels (id, epoch, created_at, creator_user, creator_device) VALUES (?, 0, ?, ?, ?)")
        .bind(channel.as_bytes())
        .bind(int(now))
        .bind(creator.user.as_str())
        .bind(&creator.device.0[..])
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    sqlx::query("INSERT INTO channel_members (channel, device) VALUES (?, ?)")
        .bind(channel.as_bytes())
        .bind(creator_key)
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    Ok(ChannelRow { id: channel.clone(), epoch: 0, created_at: now, members: vec![creator.clone()] })
}

pub(super) async fn channel(
    conn: &mut SqliteConnection,
    channel: &ChannelId,
) -> Result<Option<ChannelRow>, StoreError> {
    const OP: &str = "read channel";
    // One statement, so the epoch and the members come from the same snapshot.
    let found: Vec<ChannelMemberCols> = sqlx::query_as(
        "SELECT c.epoch, c.created_at, d.user_name, d.device_id FROM channels c
         LEFT JOIN channel_members m ON m.channel = c.id
         LEFT JOIN devices d ON d.id = m.device
         WHERE c.id = ?",
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

/// Applies a commit; returns the outcome and the devices to wake once it is committed.
pub(super) async fn commit(
    conn: &mut SqliteConnection,
    input: &CommitInput,
) -> Result<(CommitOutcome, Vec<DeviceAddress>), StoreError> {
    const OP: &str = "commit";
    let epoch: Option<i64> = sqlx::query_scalar("SELECT epoch FROM channels WHERE id = ?")
        .bind(input.channel.as_bytes())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(OP))?;
    let current = rows::uint(epoch.ok_or(StoreError::NoSuchChannel)?, OP)?;
    let sender = member_key(conn, &input.channel, &input.sender, OP).await?.ok_or(StoreError::NotMember)?;
    if let Some((epoch, server_time)) = sent(conn, &input.sender, &input.client_msg_id.0, SENT_COMMIT, OP).await? {
        return Ok((CommitOutcome { epoch, server_time, duplicate: true }, Vec::new()));
    }
    if input.epoch != current {
        return Err(StoreError::StaleEpoch { current });
    }
    let mut added = Vec::with_capacity(input.add.len());
    for device in &input.add {
        added.push(device_key(conn, device, OP).await?.ok_or(StoreError::NoSuchDevice)?);
    }
    added.sort_unstable();
    added.dedup();
    let mut removed = Vec::with_capacity(input.remove.len());
    for device in &input.remove {
        // Removing a device that is gone already changes nothing.
        if let Some(key) = device_key(conn, device, OP).await? {
            removed.push(key);
        }
    }

    // Current members (removed ones included) get the commit before membership changes.
    let commit = Outgoing {
        channel: &input.channel,
        sender: &input.sender,
        sender_key: sender,
        kind: EnvelopeKind::Commit,
        payload: &input.commit,
        expires_at: 0,
        now: input.now,
    };
    let mut woken = fan_out(conn, &commit, OP).await?;
    let welcome = Outgoing { kind: EnvelopeKind::Welcome, payload: &input.welcome, ..commit };
    for key in &removed {
        sqlx::query("DELETE FROM channel_members WHERE channel = ? AND device = ?")
            .bind(input.channel.as_bytes())
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(db(OP))?;
    }
    for key in &added {
        sqlx::query("INSERT INTO channel_members (channel, device) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(input.channel.as_bytes())
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(db(OP))?;
        woken.push(push(conn, *key, &welcome, OP).await?);
    }

    let next = current.checked_add(1).ok_or(StoreError::StaleEpoch { current })?;
    sqlx::query("UPDATE channels SET epoch = ? WHERE id = ?")
        .bind(int(next))
        .bind(input.channel.as_bytes())
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    record_sent(conn, &commit, &input.client_msg_id.0, SENT_COMMIT, next, OP).await?;
    woken.sort();
    woken.dedup();
    Ok((CommitOutcome { epoch: next, server_time: input.now, duplicate: false }, woken))
}

/// Queues an application message; returns the outcome and the devices to wake.
pub(super) async fn enqueue(
    conn: &mut SqliteConnection,
    input: &EnqueueInput,
) -> Result<(EnqueueOutcome, Vec<DeviceAddress>), StoreError> {
    const OP: &str = "enqueue";
    let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM channels WHERE id = ?")
        .bind(input.channel.as_bytes())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(OP))?;
    if known.is_none() {
        return Err(StoreError::NoSuchChannel);
    }
    let sender = member_key(conn, &input.channel, &input.sender, OP).await?.ok_or(StoreError::NotMember)?;
    if let Some((_, server_time)) = sent(conn, &input.sender, &input.client_msg_id.0, SENT_APPLICATION, OP).await? {
        return Ok((EnqueueOutcome { server_time, duplicate: true }, Vec::new()));
    }
    let message = Outgoing {
        channel: &input.channel,
        sender: &input.sender,
        sender_key: sender,
        kind: EnvelopeKind::Application,
        payload: &input.payload,
        expires_at: input.expires_at,
        now: input.now,
    };
    let woken = fan_out(conn, &message, OP).await?;
    record_sent(conn, &message, &input.client_msg_id.0, SENT_APPLICATION, 0, OP).await?;
    Ok((EnqueueOutcome { server_time: input.now, duplicate: false }, woken))
}

pub(super) async fn fetch(
    pool: &SqlitePool,
    device: &DeviceAddress,
    after: u64,
    limit: u32,
    now: Millis,
) -> Result<Vec<Envelope>, StoreError> {
    const OP: &str = "fetch";
    let found: Vec<EnvelopeCols> = sqlx::query_as(
        "SELECT e.seq, e.channel, e.sender_user, e.sender_device, e.kind, e.payload, e.server_time, e.expires_at
         FROM envelopes e JOIN devices d ON d.id = e.device
         WHERE d.user_name = ? AND d.device_id = ? AND e.seq > ? AND (e.expires_at = 0 OR e.expires_at > ?)
         ORDER BY e.seq LIMIT ?",
    )
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .bind(int(after))
    .bind(int(now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db(OP))?;
    found.into_iter().map(|cols| rows::envelope(cols, OP)).collect()
}

pub(super) async fn ack(conn: &mut SqliteConnection, device: &DeviceAddress, up_to: u64) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM envelopes WHERE seq <= ?
         AND device = (SELECT id FROM devices WHERE user_name = ? AND device_id = ?)",
    )
    .bind(int(up_to))
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .execute(&mut *conn)
    .await
    .map_err(db("acknowledge"))?;
    Ok(())
}

/// The internal key of `device` when it is a member of `channel`.
async fn member_key(
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    device: &DeviceAddress,
    op: &'static str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(
        "SELECT d.id FROM devices d JOIN channel_members m ON m.device = d.id
         WHERE m.channel = ? AND d.user_name = ? AND d.device_id = ?",
    )
    .bind(channel.as_bytes())
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .fetch_optional(&mut *conn)
    .await
    .map_err(db(op))
}

/// The recorded (epoch, server time) of an accepted enqueue or commit.
async fn sent(
    conn: &mut SqliteConnection,
    sender: &DeviceAddress,
    client_msg_id: &[u8; 16],
    kind: i64,
    op: &'static str,
) -> Result<Option<(u64, u64)>, StoreError> {
    let found: Option<(i64, i64)> = sqlx::query_as(
        "SELECT epoch, server_time FROM sent_messages
         WHERE sender_user = ? AND sender_device = ? AND client_msg_id = ? AND kind = ?",
    )
    .bind(sender.user.as_str())
    .bind(&sender.device.0[..])
    .bind(&client_msg_id[..])
    .bind(kind)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db(op))?;
    found.map(|(epoch, time)| Ok((rows::uint(epoch, op)?, rows::uint(time, op)?))).transpose()
}

/// A message on its way into delivery queues.
#[derive(Clone, Copy)]
struct Outgoing<'a> {
    channel: &'a ChannelId,
    sender: &'a DeviceAddress,
    /// The sender's internal device key.
    sender_key: i64,
    kind: EnvelopeKind,
    payload: &'a [u8],
    expires_at: Millis,
    now: Millis,
}

/// Remembers an accepted enqueue or commit for retries.
async fn record_sent(
    conn: &mut SqliteConnection,
    message: &Outgoing<'_>,
    client_msg_id: &[u8; 16],
    kind: i64,
    epoch: u64,
    op: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sent_messages (sender_user, sender_device, client_msg_id, kind, channel, epoch, server_time)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
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
    Ok(())
}

/// Queues a message for every member of its channel but the sender; returns who got it.
async fn fan_out(
    conn: &mut SqliteConnection,
    message: &Outgoing<'_>,
    op: &'static str,
) -> Result<Vec<DeviceAddress>, StoreError> {
    sqlx::query(
        "UPDATE devices SET last_seq = last_seq + 1
         WHERE id IN (SELECT device FROM channel_members WHERE channel = ?1 AND device <> ?2)",
    )
    .bind(message.channel.as_bytes())
    .bind(message.sender_key)
    .execute(&mut *conn)
    .await
    .map_err(db(op))?;
    sqlx::query(
        "INSERT INTO envelopes
             (device, seq, channel, sender_user, sender_device, kind, payload, server_time, expires_at)
         SELECT d.id, d.last_seq, ?1, ?3, ?4, ?5, ?6, ?7, ?8
         FROM channel_members m JOIN devices d ON d.id = m.device
         WHERE m.channel = ?1 AND m.device <> ?2",
    )
    .bind(message.channel.as_bytes())
    .bind(message.sender_key)
    .bind(message.sender.user.as_str())
    .bind(&message.sender.device.0[..])
    .bind(kind_code(message.kind))
    .bind(message.payload)
    .bind(int(message.now))
    .bind(int(message.expires_at))
    .execute(&mut *conn)
    .await
    .map_err(db(op))?;
    let recipients: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT d.user_name, d.device_id FROM channel_members m JOIN devices d ON d.id = m.device
         WHERE m.channel = ? AND m.device <> ?",
    )
    .bind(message.channel.as_bytes())
    .bind(message.sender_key)
    .fetch_all(&mut *conn)
    .await
    .map_err(db(op))?;
    recipients.into_iter().map(|(user, device)| rows::address(&user, device, op)).collect()
}

/// Queues a message for one device; returns its address.
async fn push(
    conn: &mut SqliteConnection,
    device_key: i64,
    message: &Outgoing<'_>,
    op: &'static str,
) -> Result<DeviceAddress, StoreError> {
    let (seq, user, device): (i64, String, Vec<u8>) = sqlx::query_as(
        "UPDATE devices SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq, user_name, device_id",
    )
    .bind(device_key)
    .fetch_one(&mut *conn)
    .await
    .map_err(db(op))?;
    sqlx::query(
        "INSERT INTO envelopes
             (device, seq, channel, sender_user, sender_device, kind, payload, server_time, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(device_key)
    .bind(seq)
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
    rows::address(&user, device, op)
}

//! PostgreSQL statements for channels and delivery queues, with their locks: a commit holds
//! its channel's row (`FOR NO KEY UPDATE`), an enqueue shares it (`FOR SHARE`), a fan-out
//! holds its recipients' device rows in ascending id. Lists of internal keys travel as
//! arrays; wake-ups go out by `pg_notify` inside the transaction.

use async_trait::async_trait;
use qpq_proto::{ChannelId, DeviceAddress, UserId};

use super::{wakeups, PgTx};
use crate::storage::binds;
use crate::storage::backend::{ChannelSql, Outgoing};
use crate::storage::rows::{self, db, int, AddressCols, ChannelMemberCols, EnvelopeCols, TxError};
use crate::storage::{Millis, Wake};

#[async_trait]
impl ChannelSql for PgTx {
    async fn insert_channel(&mut self, channel: &ChannelId, creator: &DeviceAddress, now: Millis) -> Result<bool, TxError> {
        let inserted = sqlx::query(
            "INSERT INTO channels (id, epoch, created_at, creator_user, creator_device) VALUES ($1, 0, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(channel.as_bytes())
        .bind(int(now))
        .bind(creator.user.as_str())
        .bind(&creator.device.0[..])
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn channel_creator(&mut self, channel: &ChannelId) -> Result<Option<AddressCols>, TxError> {
        sqlx::query_as("SELECT creator_user, creator_device FROM channels WHERE id = $1")
            .bind(channel.as_bytes())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn channel_rows(&mut self, channel: &ChannelId) -> Result<Vec<ChannelMemberCols>, TxError> {
        sqlx::query_as(
            "SELECT c.epoch, c.created_at, d.user_name, d.device_id FROM channels c
             LEFT JOIN channel_members m ON m.channel = c.id
             LEFT JOIN devices d ON d.id = m.device
             WHERE c.id = $1",
        )
        .bind(channel.as_bytes())
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn channel_exists(&mut self, channel: &ChannelId) -> Result<bool, TxError> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM channels WHERE id = $1")
            .bind(channel.as_bytes())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(found.is_some())
    }

    async fn share_channel(&mut self, channel: &ChannelId) -> Result<Option<(i64, i64)>, TxError> {
        sqlx::query_as("SELECT epoch, joined_at FROM channels WHERE id = $1 FOR SHARE")
            .bind(channel.as_bytes())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn lock_channel(&mut self, channel: &ChannelId) -> Result<Option<i64>, TxError> {
        sqlx::query_scalar("SELECT epoch FROM channels WHERE id = $1 FOR NO KEY UPDATE")
            .bind(channel.as_bytes())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn set_epoch(&mut self, channel: &ChannelId, epoch: u64, joined_at: Option<u64>) -> Result<(), TxError> {
        sqlx::query("UPDATE channels SET epoch = $1, joined_at = GREATEST(joined_at, $2) WHERE id = $3")
            .bind(int(epoch))
            .bind(int(joined_at.unwrap_or(0)))
            .bind(channel.as_bytes())
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn put_group_state(&mut self, channel: &ChannelId, state: &[u8]) -> Result<(), TxError> {
        sqlx::query(
            "INSERT INTO channel_groups (channel, state) VALUES ($1, $2)
             ON CONFLICT (channel) DO UPDATE SET state = excluded.state, group_info = NULL",
        )
        .bind(channel.as_bytes())
        .bind(state)
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn group_state(&mut self, channel: &ChannelId) -> Result<Option<Vec<u8>>, TxError> {
        sqlx::query_scalar("SELECT state FROM channel_groups WHERE channel = $1")
            .bind(channel.as_bytes())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn put_group_info(&mut self, channel: &ChannelId, epoch: u64, info: &[u8]) -> Result<bool, TxError> {
        let done = sqlx::query(
            "UPDATE channel_groups SET group_info = $1
             WHERE channel = $2 AND (SELECT epoch FROM channels WHERE id = $3) = $4",
        )
        .bind(info)
        .bind(channel.as_bytes())
        .bind(channel.as_bytes())
        .bind(int(epoch))
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(done.rows_affected() == 1)
    }

    async fn group_info(&mut self, channel: &ChannelId) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, TxError> {
        sqlx::query_as("SELECT state, group_info FROM channel_groups WHERE channel = $1")
            .bind(channel.as_bytes())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn member_key(&mut self, channel: &ChannelId, device: &DeviceAddress) -> Result<Option<i64>, TxError> {
        sqlx::query_scalar(
            "SELECT d.id FROM devices d JOIN channel_members m ON m.device = d.id
             WHERE m.channel = $1 AND d.user_name = $2 AND d.device_id = $3",
        )
        .bind(channel.as_bytes())
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn other_members(&mut self, channel: &ChannelId, except: i64) -> Result<Vec<i64>, TxError> {
        sqlx::query_scalar("SELECT device FROM channel_members WHERE channel = $1 AND device <> $2")
            .bind(channel.as_bytes())
            .bind(except)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn other_members_with_users(
        &mut self,
        channel: &ChannelId,
        except: i64,
    ) -> Result<Vec<(i64, String)>, TxError> {
        sqlx::query_as(
            "SELECT m.device, d.user_name FROM channel_members m JOIN devices d ON d.id = m.device
             WHERE m.channel = $1 AND m.device <> $2",
        )
        .bind(channel.as_bytes())
        .bind(except)
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn channels_of(&mut self, user: &UserId) -> Result<Vec<Vec<u8>>, TxError> {
        sqlx::query_scalar(
            "SELECT DISTINCT m.channel FROM channel_members m JOIN devices d ON d.id = m.device
             WHERE d.user_name = $1 ORDER BY m.channel",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn peers_of(&mut self, user: &UserId) -> Result<Vec<(Vec<u8>, i64)>, TxError> {
        sqlx::query_as(
            "SELECT m.channel, m.device FROM channel_members m JOIN devices d ON d.id = m.device
             WHERE d.user_name <> $1 AND m.channel IN (
                 SELECT o.channel FROM channel_members o JOIN devices od ON od.id = o.device WHERE od.user_name = $1)",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn add_members(&mut self, channel: &ChannelId, keys: &[i64]) -> Result<(), TxError> {
        sqlx::query("INSERT INTO channel_members (channel, device) SELECT $1, UNNEST($2::bigint[]) ON CONFLICT DO NOTHING")
            .bind(channel.as_bytes())
            .bind(keys)
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn remove_members(&mut self, channel: &ChannelId, keys: &[i64]) -> Result<(), TxError> {
        sqlx::query("DELETE FROM channel_members WHERE channel = $1 AND device = ANY($2)")
            .bind(channel.as_bytes())
            .bind(keys)
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn claim_sent(&mut self, message: &Outgoing<'_>, client_msg_id: &[u8; 16], kind: i16, epoch: u64) -> Result<bool, TxError> {
        let statement = sqlx::query(
            "INSERT INTO sent_messages (sender_user, sender_device, client_msg_id, kind, channel, epoch, server_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        );
        let inserted = binds::sent_message(statement, message, client_msg_id, kind, epoch)
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn sent(&mut self, sender: &DeviceAddress, client_msg_id: &[u8; 16], kind: i16) -> Result<Option<(i64, i64)>, TxError> {
        let statement = sqlx::query_as(
            "SELECT epoch, server_time FROM sent_messages
             WHERE sender_user = $1 AND sender_device = $2 AND client_msg_id = $3 AND kind = $4",
        );
        binds::sent_key(statement, sender, client_msg_id, kind).fetch_optional(&mut *self.conn).await.map_err(db(self.conn.op))
    }

    async fn lock_devices(&mut self, keys: &[i64]) -> Result<Vec<i64>, TxError> {
        sqlx::query_scalar("SELECT id FROM devices WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind(keys)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn full_queues(&mut self, keys: &[i64], max: u64) -> Result<i64, TxError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices d WHERE d.id = ANY($1)
             AND d.last_seq + 1 - COALESCE((SELECT MIN(e.seq) FROM envelopes e WHERE e.device = d.id), d.last_seq + 1) >= $2",
        )
        .bind(keys)
        .bind(int(max))
        .fetch_one(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn push(&mut self, keys: &[i64], message: &Outgoing<'_>) -> Result<(), TxError> {
        let statement = sqlx::query(
            "WITH bumped AS (
                 UPDATE devices SET last_seq = last_seq + 1 WHERE id = ANY($1) RETURNING id, last_seq)
             INSERT INTO envelopes
                 (device, seq, channel, kind, payload, server_time, expires_at)
             SELECT id, last_seq, $2, $3, $4, $5, $6 FROM bumped",
        )
        .bind(keys);
        binds::envelope(statement, message).execute(&mut *self.conn).await.map_err(db(self.conn.op))?;
        Ok(())
    }

    /// After `lock_devices`, so the statement's snapshot holds everything committed to those
    /// devices' rows and queues: what the four statements it stands for would read. When a
    /// queue is full, `bumped` updates nothing and so nothing is queued or scheduled.
    async fn fan_out(
        &mut self,
        keys: &[i64],
        message: &Outgoing<'_>,
        max: u64,
        push_at: Millis,
    ) -> Result<Result<Vec<AddressCols>, i64>, TxError> {
        let statement = sqlx::query_as(
            "WITH full_queues AS (
                 SELECT COUNT(*) AS n FROM devices d WHERE d.id = ANY($1)
                 AND d.last_seq + 1 - COALESCE((SELECT MIN(e.seq) FROM envelopes e WHERE e.device = d.id),
                                               d.last_seq + 1) >= $7),
             bumped AS (
                 UPDATE devices SET last_seq = last_seq + 1
                 WHERE id = ANY($1) AND (SELECT n FROM full_queues) = 0
                 RETURNING id, last_seq, user_name, device_id),
             queued AS (
                 INSERT INTO envelopes (device, seq, channel, kind, payload, server_time, expires_at)
                 SELECT id, last_seq, $2, $3, $4, $5, $6 FROM bumped),
             scheduled AS (
                 INSERT INTO push_pending (device, due_at, attempts)
                 SELECT s.device, $8, 0 FROM push_subscriptions s JOIN bumped b ON b.id = s.device
                 WHERE NOT s.notified
                 ON CONFLICT (device) DO NOTHING)
             SELECT f.n, b.user_name, b.device_id FROM full_queues f LEFT JOIN bumped b ON TRUE",
        )
        .bind(keys);
        let found: Vec<(i64, Option<String>, Option<Vec<u8>>)> = binds::envelope(statement, message)
            .bind(int(max))
            .bind(int(push_at))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        match found.first() {
            Some(&(full, _, _)) if full > 0 => Ok(Err(full)),
            _ => Ok(Ok(found.into_iter().filter_map(|(_, user, device)| user.zip(device)).collect())),
        }
    }

    async fn addresses(&mut self, keys: &[i64]) -> Result<Vec<AddressCols>, TxError> {
        sqlx::query_as("SELECT user_name, device_id FROM devices WHERE id = ANY($1)")
            .bind(keys)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn announce(&mut self, wakes: &[Wake]) -> Result<(), TxError> {
        if !self.notify {
            return Ok(()); // NATS carries them after the commit
        }
        wakeups::notify(&mut self.conn, self.node, wakes).await
    }

    async fn envelopes(&mut self, device: &DeviceAddress, after: u64, limit: u32, max_bytes: u64, now: Millis) -> Result<Vec<EnvelopeCols>, TxError> {
        // The cut is computed over payload lengths only; payloads past it are never read.
        let statement = sqlx::query_as(
            "WITH cut AS (
                 SELECT e.device, e.seq, SUM(octet_length(e.payload)) OVER (ORDER BY e.seq) AS running,
                        ROW_NUMBER() OVER (ORDER BY e.seq) AS n
                 FROM envelopes e
                 WHERE e.device = (SELECT id FROM devices WHERE user_name = $1 AND device_id = $2)
                   AND e.seq > $3 AND (e.expires_at = 0 OR e.expires_at > $4)
                 ORDER BY e.seq LIMIT $5)
             SELECT e.seq, e.channel, e.kind, e.payload, e.server_time, e.expires_at
             FROM cut JOIN envelopes e ON e.device = cut.device AND e.seq = cut.seq
             WHERE cut.n = 1 OR cut.running <= $6
             ORDER BY e.seq",
        );
        binds::envelope_window(statement, device, after, now, limit, max_bytes).fetch_all(&mut *self.conn).await.map_err(db(self.conn.op))
    }

    /// The caller's row and its window in one statement (one snapshot): no row when the
    /// device does not exist, one row of NULLs when its window is empty.
    async fn caller_envelopes(
        &mut self,
        device: &DeviceAddress,
        after: u64,
        limit: u32,
        max_bytes: u64,
        now: Millis,
    ) -> Result<Option<Vec<EnvelopeCols>>, TxError> {
        type Cols = (Option<i64>, Option<Vec<u8>>, Option<i16>, Option<Vec<u8>>, Option<i64>, Option<i64>);
        let statement = sqlx::query_as(
            "WITH caller AS (SELECT id FROM devices WHERE user_name = $1 AND device_id = $2),
             cut AS (
                 SELECT e.device, e.seq, SUM(octet_length(e.payload)) OVER (ORDER BY e.seq) AS running,
                        ROW_NUMBER() OVER (ORDER BY e.seq) AS n
                 FROM envelopes e
                 WHERE e.device = (SELECT id FROM caller)
                   AND e.seq > $3 AND (e.expires_at = 0 OR e.expires_at > $4)
                 ORDER BY e.seq LIMIT $5)
             SELECT w.seq, w.channel, w.kind, w.payload, w.server_time, w.expires_at
             FROM caller LEFT JOIN LATERAL (
                 SELECT e.seq, e.channel, e.kind, e.payload, e.server_time, e.expires_at
                 FROM cut JOIN envelopes e ON e.device = cut.device AND e.seq = cut.seq
                 WHERE cut.n = 1 OR cut.running <= $6) w ON TRUE
             ORDER BY w.seq",
        );
        let found: Vec<Cols> = binds::envelope_window(statement, device, after, now, limit, max_bytes)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        if found.is_empty() {
            return Ok(None);
        }
        let mut window = Vec::with_capacity(found.len());
        for cols in found {
            match cols {
                (Some(seq), Some(channel), Some(kind), Some(payload), Some(server_time), Some(expires_at)) => {
                    window.push((seq, channel, kind, payload, server_time, expires_at));
                }
                // The caller's row without envelopes.
                (None, ..) => {}
                _ => return Err(rows::corrupt(self.conn.op).into()),
            }
        }
        Ok(Some(window))
    }

    async fn delete_envelopes(&mut self, device: &DeviceAddress, up_to: u64) -> Result<(), TxError> {
        sqlx::query(
            "DELETE FROM envelopes WHERE seq <= $1
             AND device = (SELECT id FROM devices WHERE user_name = $2 AND device_id = $3)",
        )
        .bind(int(up_to))
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(())
    }

    /// One statement, run outside a transaction ([`crate::storage::backend::Backend::write_one`]):
    /// the caller's row, then its queue and push rows, which take no lock an enqueue holds.
    async fn acknowledge(&mut self, device: &DeviceAddress, up_to: u64) -> Result<bool, TxError> {
        let found: Option<i64> = sqlx::query_scalar(
            "WITH caller AS (SELECT id FROM devices WHERE user_name = $1 AND device_id = $2),
             acked AS (DELETE FROM envelopes WHERE device = (SELECT id FROM caller) AND seq <= $3),
             unscheduled AS (DELETE FROM push_pending WHERE device = (SELECT id FROM caller)),
             reset AS (
                 UPDATE push_subscriptions SET notified = FALSE WHERE notified AND device = (SELECT id FROM caller))
             SELECT id FROM caller",
        )
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .bind(int(up_to))
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(found.is_some())
    }
}

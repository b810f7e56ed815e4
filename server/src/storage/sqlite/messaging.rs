//! SQLite statements for channels and delivery queues. Lists of internal keys travel as a
//! JSON array read with `json_each`. The single writer holds the whole database, so the
//! `lock_*` and `share_*` statements are plain reads and wake-ups stay in-process.

use async_trait::async_trait;
use qpq_proto::{ChannelId, DeviceAddress, UserId};

use super::{key_list, SqliteTx};
use crate::storage::binds;
use crate::storage::backend::{ChannelSql, Outgoing};
use crate::storage::rows::{int, AddressCols, ChannelMemberCols, EnvelopeCols, TxError};
use crate::storage::{Millis, Wake};

/// A device's queue after a sequence number, unexpired, up to a count and a byte budget (at
/// least one envelope). The cut is computed over payload lengths only; payloads past it are
/// never read.
pub(super) const ENVELOPES: &str = "WITH cut AS (
         SELECT e.device, e.seq, SUM(length(e.payload)) OVER (ORDER BY e.seq) AS running,
                ROW_NUMBER() OVER (ORDER BY e.seq) AS n
         FROM envelopes e
         WHERE e.device = (SELECT id FROM devices WHERE user_name = ? AND device_id = ?)
           AND e.seq > ? AND (e.expires_at = 0 OR e.expires_at > ?)
         ORDER BY e.seq LIMIT ?)
     SELECT e.seq, e.channel, e.kind, e.payload, e.server_time, e.expires_at
     FROM cut JOIN envelopes e ON e.device = cut.device AND e.seq = cut.seq
     WHERE cut.n = 1 OR cut.running <= ?
     ORDER BY e.seq";

#[async_trait]
impl ChannelSql for SqliteTx {
    async fn insert_channel(&mut self, channel: &ChannelId, creator: &DeviceAddress, now: Millis) -> Result<bool, TxError> {
        let inserted = self.sql(
            "INSERT INTO channels (id, epoch, created_at, creator_user, creator_device) VALUES (?, 0, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(channel.as_bytes())
        .bind(int(now))
        .bind(creator.user.as_str())
        .bind(&creator.device.0[..])
        .execute()?;
        Ok(inserted == 1)
    }

    async fn channel_creator(&mut self, channel: &ChannelId) -> Result<Option<AddressCols>, TxError> {
        self.sql("SELECT creator_user, creator_device FROM channels WHERE id = ?")
            .bind(channel.as_bytes())
            .fetch_optional()
    }

    async fn channel_rows(&mut self, channel: &ChannelId) -> Result<Vec<ChannelMemberCols>, TxError> {
        self.sql(
            "SELECT c.epoch, c.created_at, d.user_name, d.device_id FROM channels c
             LEFT JOIN channel_members m ON m.channel = c.id
             LEFT JOIN devices d ON d.id = m.device
             WHERE c.id = ?",
        )
        .bind(channel.as_bytes())
        .fetch_all()
    }

    async fn channel_exists(&mut self, channel: &ChannelId) -> Result<bool, TxError> {
        let found: Option<i64> = self.sql("SELECT 1 FROM channels WHERE id = ?")
            .bind(channel.as_bytes())
            .scalar_optional()?;
        Ok(found.is_some())
    }

    /// Writes are serialised by the batch's write lock, so a plain read holds the channel.
    async fn share_channel(&mut self, channel: &ChannelId) -> Result<Option<(i64, i64)>, TxError> {
        self.sql("SELECT epoch, joined_at FROM channels WHERE id = ?")
            .bind(channel.as_bytes())
            .fetch_optional()
    }

    async fn lock_channel(&mut self, channel: &ChannelId) -> Result<Option<i64>, TxError> {
        self.sql("SELECT epoch FROM channels WHERE id = ?")
            .bind(channel.as_bytes())
            .scalar_optional()
    }

    async fn set_epoch(&mut self, channel: &ChannelId, epoch: u64, joined_at: Option<u64>) -> Result<(), TxError> {
        self.sql("UPDATE channels SET epoch = ?, joined_at = MAX(joined_at, ?) WHERE id = ?")
            .bind(int(epoch))
            .bind(int(joined_at.unwrap_or(0)))
            .bind(channel.as_bytes())
            .execute()?;
        Ok(())
    }

    async fn put_group_state(&mut self, channel: &ChannelId, state: &[u8]) -> Result<(), TxError> {
        self.sql(
            "INSERT INTO channel_groups (channel, state) VALUES (?, ?)
             ON CONFLICT (channel) DO UPDATE SET state = excluded.state, group_info = NULL",
        )
        .bind(channel.as_bytes())
        .bind(state)
        .execute()?;
        Ok(())
    }

    async fn group_state(&mut self, channel: &ChannelId) -> Result<Option<Vec<u8>>, TxError> {
        self.sql("SELECT state FROM channel_groups WHERE channel = ?")
            .bind(channel.as_bytes())
            .scalar_optional()
    }

    async fn put_group_info(&mut self, channel: &ChannelId, epoch: u64, info: &[u8]) -> Result<bool, TxError> {
        let done = self.sql(
            "UPDATE channel_groups SET group_info = ?
             WHERE channel = ? AND (SELECT epoch FROM channels WHERE id = ?) = ?",
        )
        .bind(info)
        .bind(channel.as_bytes())
        .bind(channel.as_bytes())
        .bind(int(epoch))
        .execute()?;
        Ok(done == 1)
    }

    async fn group_info(&mut self, channel: &ChannelId) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, TxError> {
        self.sql("SELECT state, group_info FROM channel_groups WHERE channel = ?")
            .bind(channel.as_bytes())
            .fetch_optional()
    }

    async fn member_key(&mut self, channel: &ChannelId, device: &DeviceAddress) -> Result<Option<i64>, TxError> {
        self.sql(
            "SELECT d.id FROM devices d JOIN channel_members m ON m.device = d.id
             WHERE m.channel = ? AND d.user_name = ? AND d.device_id = ?",
        )
        .bind(channel.as_bytes())
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .scalar_optional()
    }

    async fn other_members(&mut self, channel: &ChannelId, except: i64) -> Result<Vec<i64>, TxError> {
        self.sql("SELECT device FROM channel_members WHERE channel = ? AND device <> ?")
            .bind(channel.as_bytes())
            .bind(except)
            .scalar_all()
    }

    async fn other_members_with_users(
        &mut self,
        channel: &ChannelId,
        except: i64,
    ) -> Result<Vec<(i64, String)>, TxError> {
        self.sql(
            "SELECT m.device, d.user_name FROM channel_members m JOIN devices d ON d.id = m.device
             WHERE m.channel = ? AND m.device <> ?",
        )
        .bind(channel.as_bytes())
        .bind(except)
        .fetch_all()
    }

    async fn channels_of(&mut self, user: &UserId) -> Result<Vec<Vec<u8>>, TxError> {
        self.sql(
            "SELECT DISTINCT m.channel FROM channel_members m JOIN devices d ON d.id = m.device
             WHERE d.user_name = ? ORDER BY m.channel",
        )
        .bind(user.as_str())
        .scalar_all()
    }

    async fn peers_of(&mut self, user: &UserId) -> Result<Vec<(Vec<u8>, i64)>, TxError> {
        self.sql(
            "SELECT m.channel, m.device FROM channel_members m JOIN devices d ON d.id = m.device
             WHERE d.user_name <> ?1 AND m.channel IN (
                 SELECT o.channel FROM channel_members o JOIN devices od ON od.id = o.device WHERE od.user_name = ?1)",
        )
        .bind(user.as_str())
        .fetch_all()
    }

    async fn add_members(&mut self, channel: &ChannelId, keys: &[i64]) -> Result<(), TxError> {
        // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT.
        self.sql(
            "INSERT INTO channel_members (channel, device) SELECT ?, value FROM json_each(?) WHERE true
             ON CONFLICT DO NOTHING",
        )
        .bind(channel.as_bytes())
        .bind(key_list(keys))
        .execute()?;
        Ok(())
    }

    async fn remove_members(&mut self, channel: &ChannelId, keys: &[i64]) -> Result<(), TxError> {
        self.sql("DELETE FROM channel_members WHERE channel = ? AND device IN (SELECT value FROM json_each(?))")
            .bind(channel.as_bytes())
            .bind(key_list(keys))
            .execute()?;
        Ok(())
    }

    async fn claim_sent(&mut self, message: &Outgoing<'_>, client_msg_id: &[u8; 16], kind: i16, epoch: u64) -> Result<bool, TxError> {
        let statement = self.sql(
            "INSERT INTO sent_messages (sender_user, sender_device, client_msg_id, kind, channel, epoch, server_time)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        );
        let inserted = binds::sent_message(statement, message, client_msg_id, kind, epoch)
            .execute()?;
        Ok(inserted == 1)
    }

    async fn sent(&mut self, sender: &DeviceAddress, client_msg_id: &[u8; 16], kind: i16) -> Result<Option<(i64, i64)>, TxError> {
        let statement = self.sql(
            "SELECT epoch, server_time FROM sent_messages
             WHERE sender_user = ? AND sender_device = ? AND client_msg_id = ? AND kind = ?",
        );
        binds::sent_key(statement, sender, client_msg_id, kind).fetch_optional()
    }

    async fn lock_devices(&mut self, keys: &[i64]) -> Result<Vec<i64>, TxError> {
        self.sql("SELECT id FROM devices WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id")
            .bind(key_list(keys))
            .scalar_all()
    }

    async fn full_queues(&mut self, keys: &[i64], max: u64) -> Result<i64, TxError> {
        self.sql(
            "SELECT COUNT(*) FROM devices d WHERE d.id IN (SELECT value FROM json_each(?1))
             AND d.last_seq + 1 - COALESCE((SELECT MIN(e.seq) FROM envelopes e WHERE e.device = d.id), d.last_seq + 1) >= ?2",
        )
        .bind(key_list(keys))
        .bind(int(max))
        .scalar_one()
    }

    async fn push(&mut self, keys: &[i64], message: &Outgoing<'_>) -> Result<(), TxError> {
        let keys = key_list(keys);
        self.sql("UPDATE devices SET last_seq = last_seq + 1 WHERE id IN (SELECT value FROM json_each(?))")
            .bind(&keys)
            .execute()?;
        let statement = self.sql(
            "INSERT INTO envelopes
                 (device, seq, channel, kind, payload, server_time, expires_at)
             SELECT id, last_seq, ?2, ?3, ?4, ?5, ?6
             FROM devices WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&keys);
        binds::envelope(statement, message).execute()?;
        Ok(())
    }

    async fn addresses(&mut self, keys: &[i64]) -> Result<Vec<AddressCols>, TxError> {
        self.sql("SELECT user_name, device_id FROM devices WHERE id IN (SELECT value FROM json_each(?))")
            .bind(key_list(keys))
            .fetch_all()
    }

    /// Subscribers are all in this process: the broadcast after the commit wakes them.
    async fn announce(&mut self, _: &[Wake]) -> Result<(), TxError> {
        Ok(())
    }

    async fn envelopes(&mut self, device: &DeviceAddress, after: u64, limit: u32, max_bytes: u64, now: Millis) -> Result<Vec<EnvelopeCols>, TxError> {
        let statement = self.sql(ENVELOPES);
        binds::envelope_window(statement, device, after, now, limit, max_bytes).fetch_all()
    }

    async fn delete_envelopes(&mut self, device: &DeviceAddress, up_to: u64) -> Result<(), TxError> {
        self.sql(
            "DELETE FROM envelopes WHERE seq <= ?
             AND device = (SELECT id FROM devices WHERE user_name = ? AND device_id = ?)",
        )
        .bind(int(up_to))
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .execute()?;
        Ok(())
    }
}

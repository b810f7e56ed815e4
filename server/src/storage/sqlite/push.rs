//! SQLite statements for Web Push.

use async_trait::async_trait;
use qpq_proto::DeviceAddress;

use super::{key_list, SqliteTx};
use crate::storage::backend::PushSql;
use crate::storage::rows::{int, PushJobCols, PushSubCols, TxError};
use crate::storage::{Millis, PushSubscription, VapidKeyRow};

/// The internal key of a device named by its address, as a sub-select.
const DEVICE: &str = "(SELECT id FROM devices WHERE user_name = ? AND device_id = ?)";

#[async_trait]
impl PushSql for SqliteTx {
    async fn upsert_push_subscription(&mut self, device: i64, sub: &PushSubscription, now: Millis) -> Result<(), TxError> {
        self.sql(
            "INSERT INTO push_subscriptions (device, endpoint, p256dh, auth, updated_at, notified)
             VALUES (?, ?, ?, ?, ?, 0)
             ON CONFLICT (device) DO UPDATE SET endpoint = excluded.endpoint, p256dh = excluded.p256dh,
                 auth = excluded.auth, updated_at = excluded.updated_at, notified = 0",
        )
        .bind(device)
        .bind(&sub.endpoint)
        .bind(&sub.p256dh[..])
        .bind(&sub.auth[..])
        .bind(int(now))
        .execute()?;
        Ok(())
    }

    async fn delete_push_subscription(&mut self, device: &DeviceAddress) -> Result<(), TxError> {
        self.sql(&format!("DELETE FROM push_subscriptions WHERE device = {DEVICE}"))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute()?;
        Ok(())
    }

    async fn delete_push_subscription_at(&mut self, device: i64, endpoint: &str) -> Result<(), TxError> {
        self.sql("DELETE FROM push_subscriptions WHERE device = ? AND endpoint = ?")
            .bind(device)
            .bind(endpoint)
            .execute()?;
        Ok(())
    }

    async fn push_subscription_of(&mut self, device: &DeviceAddress) -> Result<Option<PushSubCols>, TxError> {
        self.sql(&format!("SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE device = {DEVICE}"))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .fetch_optional()
    }

    async fn schedule_pushes(&mut self, keys: &[i64], due: Millis) -> Result<(), TxError> {
        self.sql(
            "INSERT INTO push_pending (device, due_at, attempts)
             SELECT device, ?, 0 FROM push_subscriptions
             WHERE device IN (SELECT value FROM json_each(?)) AND notified = 0
             ON CONFLICT (device) DO NOTHING",
        )
        .bind(int(due))
        .bind(key_list(keys))
        .execute()?;
        Ok(())
    }

    async fn reset_push(&mut self, device: &DeviceAddress) -> Result<(), TxError> {
        self.sql(&format!("DELETE FROM push_pending WHERE device = {DEVICE}"))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute()?;
        self.sql(&format!("UPDATE push_subscriptions SET notified = 0 WHERE notified = 1 AND device = {DEVICE}"))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute()?;
        Ok(())
    }

    async fn due_pushes(&mut self, now: Millis, limit: u32) -> Result<Vec<PushJobCols>, TxError> {
        self.sql(
            "SELECT p.device, p.attempts, s.endpoint, s.p256dh, s.auth
             FROM push_pending p JOIN push_subscriptions s ON s.device = p.device
             WHERE p.due_at <= ? ORDER BY p.due_at, p.device LIMIT ?",
        )
        .bind(int(now))
        .bind(i64::from(limit))
        .fetch_all()
    }

    async fn set_push_due(&mut self, device: i64, due: Millis, attempts: i64) -> Result<(), TxError> {
        self.sql("UPDATE push_pending SET due_at = ?, attempts = ? WHERE device = ?")
            .bind(int(due))
            .bind(attempts)
            .bind(device)
            .execute()?;
        Ok(())
    }

    async fn delete_pending_push(&mut self, device: i64) -> Result<(), TxError> {
        self.sql("DELETE FROM push_pending WHERE device = ?")
            .bind(device)
            .execute()?;
        Ok(())
    }

    async fn mark_notified(&mut self, device: i64) -> Result<(), TxError> {
        self.sql("UPDATE push_subscriptions SET notified = 1 WHERE device = ?")
            .bind(device)
            .execute()?;
        Ok(())
    }

    async fn next_push_due(&mut self) -> Result<Option<i64>, TxError> {
        self.sql("SELECT MIN(due_at) FROM push_pending")
            .scalar_one()
    }

    async fn insert_vapid_key(&mut self, key: &VapidKeyRow, now: Millis) -> Result<(), TxError> {
        self.sql(
            "INSERT INTO vapid_keys (id, private_key, public_key, created_at) VALUES (1, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&key.private_key[..])
        .bind(&key.public_key[..])
        .bind(int(now))
        .execute()?;
        Ok(())
    }

    async fn vapid_key(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>, TxError> {
        self.sql("SELECT private_key, public_key FROM vapid_keys WHERE id = 1")
            .fetch_optional()
    }
}

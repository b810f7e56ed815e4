//! PostgreSQL statements for Web Push. A claim holds the waiting pushes it takes with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claims on several nodes never take the same one.

use async_trait::async_trait;
use qpq_proto::DeviceAddress;

use super::PgTx;
use crate::storage::backend::PushSql;
use crate::storage::rows::{db, int, PushJobCols, PushSubCols, TxError};
use crate::storage::{Millis, PushSubscription, VapidKeyRow};

/// The internal key of a device named by its address, as a sub-select.
const DEVICE: &str = "(SELECT id FROM devices WHERE user_name = $1 AND device_id = $2)";

#[async_trait]
impl PushSql for PgTx {
    async fn upsert_push_subscription(&mut self, device: i64, sub: &PushSubscription, now: Millis) -> Result<(), TxError> {
        sqlx::query(
            "INSERT INTO push_subscriptions (device, endpoint, p256dh, auth, updated_at, notified)
             VALUES ($1, $2, $3, $4, $5, FALSE)
             ON CONFLICT (device) DO UPDATE SET endpoint = excluded.endpoint, p256dh = excluded.p256dh,
                 auth = excluded.auth, updated_at = excluded.updated_at, notified = FALSE",
        )
        .bind(device)
        .bind(&sub.endpoint)
        .bind(&sub.p256dh[..])
        .bind(&sub.auth[..])
        .bind(int(now))
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn delete_push_subscription(&mut self, device: &DeviceAddress) -> Result<(), TxError> {
        sqlx::query(&format!("DELETE FROM push_subscriptions WHERE device = {DEVICE}"))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn delete_push_subscription_at(&mut self, device: i64, endpoint: &str) -> Result<(), TxError> {
        sqlx::query("DELETE FROM push_subscriptions WHERE device = $1 AND endpoint = $2")
            .bind(device)
            .bind(endpoint)
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn push_subscription_of(&mut self, device: &DeviceAddress) -> Result<Option<PushSubCols>, TxError> {
        sqlx::query_as(&format!("SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE device = {DEVICE}"))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn schedule_pushes(&mut self, keys: &[i64], due: Millis) -> Result<(), TxError> {
        sqlx::query(
            "INSERT INTO push_pending (device, due_at, attempts)
             SELECT device, $1, 0 FROM push_subscriptions
             WHERE device = ANY($2) AND NOT notified
             ON CONFLICT (device) DO NOTHING",
        )
        .bind(int(due))
        .bind(keys)
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn reset_push(&mut self, device: &DeviceAddress) -> Result<(), TxError> {
        sqlx::query(&format!("DELETE FROM push_pending WHERE device = {DEVICE}"))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        sqlx::query(&format!("UPDATE push_subscriptions SET notified = FALSE WHERE notified AND device = {DEVICE}"))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn due_pushes(&mut self, now: Millis, limit: u32) -> Result<Vec<PushJobCols>, TxError> {
        sqlx::query_as(
            "SELECT p.device, p.attempts, s.endpoint, s.p256dh, s.auth
             FROM push_pending p JOIN push_subscriptions s ON s.device = p.device
             WHERE p.due_at <= $1 ORDER BY p.due_at, p.device LIMIT $2
             FOR UPDATE OF p SKIP LOCKED",
        )
        .bind(int(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn set_push_due(&mut self, device: i64, due: Millis, attempts: i64) -> Result<(), TxError> {
        sqlx::query("UPDATE push_pending SET due_at = $1, attempts = $2 WHERE device = $3")
            .bind(int(due))
            .bind(attempts)
            .bind(device)
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn delete_pending_push(&mut self, device: i64) -> Result<(), TxError> {
        sqlx::query("DELETE FROM push_pending WHERE device = $1")
            .bind(device)
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn mark_notified(&mut self, device: i64) -> Result<(), TxError> {
        sqlx::query("UPDATE push_subscriptions SET notified = TRUE WHERE device = $1")
            .bind(device)
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn next_push_due(&mut self) -> Result<Option<i64>, TxError> {
        sqlx::query_scalar("SELECT MIN(due_at) FROM push_pending")
            .fetch_one(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn insert_vapid_key(&mut self, key: &VapidKeyRow, now: Millis) -> Result<(), TxError> {
        sqlx::query(
            "INSERT INTO vapid_keys (id, private_key, public_key, created_at) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&key.private_key[..])
        .bind(&key.public_key[..])
        .bind(int(now))
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn vapid_key(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>, TxError> {
        sqlx::query_as("SELECT private_key, public_key FROM vapid_keys WHERE id = 1")
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }
}

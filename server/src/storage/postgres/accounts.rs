//! PostgreSQL statements for users, devices and key packages, with their locks: an advisory
//! lock per name (registration and deletion), the user's row (device additions) and the
//! device's row (key-package uploads and claims), all `FOR NO KEY UPDATE` but the rows a
//! deletion is about to remove.

use async_trait::async_trait;
use qpq_proto::{DeviceAddress, DeviceRecord, UserId};

use super::PgTx;
use crate::storage::binds;
use crate::storage::backend::AccountSql;
use crate::storage::rows::{db, int, DeviceAboutCols, DeviceCols, TxError};
use crate::storage::{KeyPackageRow, Millis};

/// Advisory-lock class for user names: `create_user` and `delete_user` of one name serialise,
/// so a registration cannot slip in between a deletion and its reservation.
const NAME_LOCK_CLASS: i32 = 0x7170_7101;

#[async_trait]
impl AccountSql for PgTx {
    async fn lock_name(&mut self, user: &UserId) -> Result<(), TxError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(NAME_LOCK_CLASS)
            .bind(user.as_str())
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn reserved_until(&mut self, user: &UserId) -> Result<Option<i64>, TxError> {
        sqlx::query_scalar("SELECT reserved_until FROM reserved_names WHERE name = $1")
            .bind(user.as_str())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn insert_user(&mut self, user: &UserId, identity_key: &[u8; 32], now: Millis) -> Result<bool, TxError> {
        let statement = sqlx::query(
            "INSERT INTO users (name, identity_key, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        );
        let inserted = binds::user(statement, user, identity_key, now).execute(&mut *self.conn).await.map_err(db(self.conn.op))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn delete_reservation(&mut self, user: &UserId) -> Result<(), TxError> {
        sqlx::query("DELETE FROM reserved_names WHERE name = $1")
            .bind(user.as_str())
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn reserve_name(&mut self, user: &UserId, until: Millis) -> Result<(), TxError> {
        sqlx::query(
            "INSERT INTO reserved_names (name, reserved_until) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE
             SET reserved_until = GREATEST(reserved_names.reserved_until, EXCLUDED.reserved_until)",
        )
        .bind(user.as_str())
        .bind(int(until))
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn identity_key(&mut self, user: &UserId) -> Result<Option<Vec<u8>>, TxError> {
        sqlx::query_scalar("SELECT identity_key FROM users WHERE name = $1")
            .bind(user.as_str())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn user_exists(&mut self, user: &UserId) -> Result<bool, TxError> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = $1")
            .bind(user.as_str())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(found.is_some())
    }

    async fn lock_user(&mut self, user: &UserId) -> Result<bool, TxError> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = $1 FOR NO KEY UPDATE")
            .bind(user.as_str())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(found.is_some())
    }

    async fn delete_user(&mut self, user: &UserId) -> Result<bool, TxError> {
        let deleted = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(user.as_str())
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn delete_sent_by(&mut self, user: &UserId) -> Result<(), TxError> {
        sqlx::query("DELETE FROM sent_messages WHERE sender_user = $1")
            .bind(user.as_str())
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn insert_device(&mut self, record: &DeviceRecord, now: Millis) -> Result<(), TxError> {
        let statement = sqlx::query(
            "INSERT INTO devices (user_name, device_id, device_key, signed_at, signature, added_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        );
        binds::device(statement, record, now).execute(&mut *self.conn).await.map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn device_key(&mut self, device: &DeviceAddress) -> Result<Option<i64>, TxError> {
        sqlx::query_scalar("SELECT id FROM devices WHERE user_name = $1 AND device_id = $2")
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn lock_device(&mut self, device: &DeviceAddress) -> Result<Option<i64>, TxError> {
        sqlx::query_scalar("SELECT id FROM devices WHERE user_name = $1 AND device_id = $2 FOR NO KEY UPDATE")
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn lock_devices_of(&mut self, user: &UserId) -> Result<Vec<(i64, Vec<u8>)>, TxError> {
        sqlx::query_as("SELECT id, device_id FROM devices WHERE user_name = $1 ORDER BY id FOR NO KEY UPDATE")
            .bind(user.as_str())
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn lock_devices_for_delete(&mut self, user: &UserId) -> Result<(), TxError> {
        sqlx::query("SELECT id FROM devices WHERE user_name = $1 ORDER BY id FOR UPDATE")
            .bind(user.as_str())
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn device_keys_of(&mut self, user: &UserId) -> Result<Vec<(i64, Vec<u8>)>, TxError> {
        sqlx::query_as("SELECT id, device_id FROM devices WHERE user_name = $1 ORDER BY id")
            .bind(user.as_str())
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn device_count(&mut self, user: &UserId) -> Result<i64, TxError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE user_name = $1")
            .bind(user.as_str())
            .fetch_one(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn device_rows(&mut self, user: &UserId) -> Result<Vec<DeviceCols>, TxError> {
        sqlx::query_as(
            "SELECT user_name, device_id, device_key, signed_at, signature FROM devices
             WHERE user_name = $1 ORDER BY id",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn device_row(&mut self, device: &DeviceAddress) -> Result<Option<DeviceCols>, TxError> {
        sqlx::query_as(
            "SELECT user_name, device_id, device_key, signed_at, signature FROM devices
             WHERE user_name = $1 AND device_id = $2",
        )
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn delete_device(&mut self, device: &DeviceAddress) -> Result<bool, TxError> {
        let deleted = sqlx::query("DELETE FROM devices WHERE user_name = $1 AND device_id = $2")
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn device_about_rows(&mut self, user: &UserId) -> Result<Vec<DeviceAboutCols>, TxError> {
        sqlx::query_as(
            "SELECT user_name, device_id, device_key, signed_at, signature, label, last_login FROM devices
             WHERE user_name = $1 ORDER BY id",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn set_device_label(&mut self, device: &DeviceAddress, label: Option<&[u8]>) -> Result<bool, TxError> {
        let updated = sqlx::query("UPDATE devices SET label = $1 WHERE user_name = $2 AND device_id = $3")
            .bind(label)
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(updated.rows_affected() > 0)
    }

    async fn set_last_login(&mut self, device: &DeviceAddress, now: Millis) -> Result<bool, TxError> {
        let updated = sqlx::query("UPDATE devices SET last_login = $1 WHERE user_name = $2 AND device_id = $3")
            .bind(int(now))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(updated.rows_affected() > 0)
    }

    async fn any_claimed(&mut self, hashes: &[&[u8; 32]]) -> Result<bool, TxError> {
        let hashes: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM claimed_key_packages WHERE hash = ANY($1) LIMIT 1")
            .bind(&hashes)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(found.is_some())
    }

    async fn remember_claimed(&mut self, hash: &[u8], now: Millis) -> Result<(), TxError> {
        sqlx::query("INSERT INTO claimed_key_packages (hash, claimed_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(hash)
            .bind(int(now))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn insert_one_time(&mut self, device: i64, packages: &[KeyPackageRow]) -> Result<(), TxError> {
        let hashes: Vec<&[u8]> = packages.iter().map(|p| &p.hash[..]).collect();
        let data: Vec<&[u8]> = packages.iter().map(|p| p.data.as_slice()).collect();
        // Upload order is kept.
        sqlx::query(
            "INSERT INTO key_packages (device, hash, data, last_resort)
             SELECT $1, hash, data, FALSE FROM UNNEST($2::bytea[], $3::bytea[]) WITH ORDINALITY AS p (hash, data, n)
             ORDER BY n
             ON CONFLICT (hash) WHERE NOT last_resort DO NOTHING",
        )
        .bind(device)
        .bind(&hashes)
        .bind(&data)
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn pop_one_time(&mut self, device: i64) -> Result<Option<(Vec<u8>, Vec<u8>)>, TxError> {
        sqlx::query_as(
            "DELETE FROM key_packages WHERE id = (
                 SELECT id FROM key_packages WHERE device = $1 AND NOT last_resort ORDER BY id LIMIT 1)
             RETURNING hash, data",
        )
        .bind(device)
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn one_time_count(&mut self, device: i64) -> Result<i64, TxError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM key_packages WHERE device = $1 AND NOT last_resort")
            .bind(device)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn one_time_count_of(&mut self, device: &DeviceAddress) -> Result<i64, TxError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM key_packages k JOIN devices d ON d.id = k.device
             WHERE d.user_name = $1 AND d.device_id = $2 AND NOT k.last_resort",
        )
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .fetch_one(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn delete_last_resort(&mut self, device: i64) -> Result<(), TxError> {
        sqlx::query("DELETE FROM key_packages WHERE device = $1 AND last_resort")
            .bind(device)
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn insert_last_resort(&mut self, device: i64, package: &KeyPackageRow) -> Result<(), TxError> {
        let statement = sqlx::query("INSERT INTO key_packages (device, hash, data, last_resort) VALUES ($1, $2, $3, TRUE)");
        binds::key_package(statement, device, package).execute(&mut *self.conn).await.map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn last_resort(&mut self, device: i64) -> Result<Option<Vec<u8>>, TxError> {
        sqlx::query_scalar("SELECT data FROM key_packages WHERE device = $1 AND last_resort")
            .bind(device)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }
}

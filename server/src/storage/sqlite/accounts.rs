//! SQLite statements for users, devices and key packages. The single writer holds the whole
//! database, so the `lock_*` statements are plain reads (or nothing).

use async_trait::async_trait;
use qpq_proto::{DeviceAddress, DeviceRecord, UserId};

use super::SqliteTx;
use crate::storage::binds;
use crate::storage::backend::AccountSql;
use crate::storage::rows::{int, DeviceAboutCols, DeviceCols, TxError};
use crate::storage::{KeyPackageRow, Millis};

#[async_trait]
impl AccountSql for SqliteTx {
    async fn lock_name(&mut self, _: &UserId) -> Result<(), TxError> {
        Ok(())
    }

    async fn reserved_until(&mut self, user: &UserId) -> Result<Option<i64>, TxError> {
        self.sql("SELECT reserved_until FROM reserved_names WHERE name = ?")
            .bind(user.as_str())
            .scalar_optional()
    }

    async fn insert_user(&mut self, user: &UserId, identity_key: &[u8; 32], now: Millis) -> Result<bool, TxError> {
        let statement = self.sql(
            "INSERT INTO users (name, identity_key, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        );
        let inserted = binds::user(statement, user, identity_key, now).execute()?;
        Ok(inserted == 1)
    }

    async fn delete_reservation(&mut self, user: &UserId) -> Result<(), TxError> {
        self.sql("DELETE FROM reserved_names WHERE name = ?")
            .bind(user.as_str())
            .execute()?;
        Ok(())
    }

    async fn reserve_name(&mut self, user: &UserId, until: Millis) -> Result<(), TxError> {
        self.sql(
            "INSERT INTO reserved_names (name, reserved_until) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET reserved_until = MAX(reserved_until, excluded.reserved_until)",
        )
        .bind(user.as_str())
        .bind(int(until))
        .execute()?;
        Ok(())
    }

    async fn identity_key(&mut self, user: &UserId) -> Result<Option<Vec<u8>>, TxError> {
        self.sql("SELECT identity_key FROM users WHERE name = ?")
            .bind(user.as_str())
            .scalar_optional()
    }

    async fn user_exists(&mut self, user: &UserId) -> Result<bool, TxError> {
        let found: Option<i64> = self.sql("SELECT 1 FROM users WHERE name = ?")
            .bind(user.as_str())
            .scalar_optional()?;
        Ok(found.is_some())
    }

    async fn lock_user(&mut self, user: &UserId) -> Result<bool, TxError> {
        self.user_exists(user).await
    }

    async fn delete_user(&mut self, user: &UserId) -> Result<bool, TxError> {
        let deleted = self.sql("DELETE FROM users WHERE name = ?")
            .bind(user.as_str())
            .execute()?;
        Ok(deleted > 0)
    }

    async fn delete_sent_by(&mut self, user: &UserId) -> Result<(), TxError> {
        self.sql("DELETE FROM sent_messages WHERE sender_user = ?")
            .bind(user.as_str())
            .execute()?;
        Ok(())
    }

    async fn insert_device(&mut self, record: &DeviceRecord, now: Millis) -> Result<(), TxError> {
        let statement = self.sql(
            "INSERT INTO devices (user_name, device_id, device_key, signed_at, signature, added_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        binds::device(statement, record, now).execute()?;
        Ok(())
    }

    async fn device_key(&mut self, device: &DeviceAddress) -> Result<Option<i64>, TxError> {
        self.sql("SELECT id FROM devices WHERE user_name = ? AND device_id = ?")
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .scalar_optional()
    }

    async fn lock_device(&mut self, device: &DeviceAddress) -> Result<Option<i64>, TxError> {
        self.device_key(device).await
    }

    async fn lock_devices_of(&mut self, user: &UserId) -> Result<Vec<(i64, Vec<u8>)>, TxError> {
        self.sql("SELECT id, device_id FROM devices WHERE user_name = ? ORDER BY id")
            .bind(user.as_str())
            .fetch_all()
    }

    async fn lock_devices_for_delete(&mut self, _: &UserId) -> Result<(), TxError> {
        Ok(())
    }

    async fn device_keys_of(&mut self, user: &UserId) -> Result<Vec<(i64, Vec<u8>)>, TxError> {
        self.sql("SELECT id, device_id FROM devices WHERE user_name = ? ORDER BY id")
            .bind(user.as_str())
            .fetch_all()
    }

    async fn device_count(&mut self, user: &UserId) -> Result<i64, TxError> {
        self.sql("SELECT COUNT(*) FROM devices WHERE user_name = ?")
            .bind(user.as_str())
            .scalar_one()
    }

    async fn device_rows(&mut self, user: &UserId) -> Result<Vec<DeviceCols>, TxError> {
        self.sql(
            "SELECT user_name, device_id, device_key, signed_at, signature FROM devices
             WHERE user_name = ? ORDER BY id",
        )
        .bind(user.as_str())
        .fetch_all()
    }

    async fn device_row(&mut self, device: &DeviceAddress) -> Result<Option<DeviceCols>, TxError> {
        self.sql(
            "SELECT user_name, device_id, device_key, signed_at, signature FROM devices
             WHERE user_name = ? AND device_id = ?",
        )
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .fetch_optional()
    }

    async fn delete_device(&mut self, device: &DeviceAddress) -> Result<bool, TxError> {
        let deleted = self.sql("DELETE FROM devices WHERE user_name = ? AND device_id = ?")
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute()?;
        Ok(deleted > 0)
    }

    async fn device_about_rows(&mut self, user: &UserId) -> Result<Vec<DeviceAboutCols>, TxError> {
        self.sql(
            "SELECT user_name, device_id, device_key, signed_at, signature, label, last_login FROM devices
             WHERE user_name = ? ORDER BY id",
        )
        .bind(user.as_str())
        .fetch_all()
    }

    async fn set_device_label(&mut self, device: &DeviceAddress, label: Option<&[u8]>) -> Result<bool, TxError> {
        let updated = self.sql("UPDATE devices SET label = ? WHERE user_name = ? AND device_id = ?")
            .bind(label)
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute()?;
        Ok(updated > 0)
    }

    async fn set_last_login(&mut self, device: &DeviceAddress, now: Millis) -> Result<bool, TxError> {
        let updated = self.sql("UPDATE devices SET last_login = ? WHERE user_name = ? AND device_id = ?")
            .bind(int(now))
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .execute()?;
        Ok(updated > 0)
    }

    async fn any_claimed(&mut self, hashes: &[&[u8; 32]]) -> Result<bool, TxError> {
        for hash in hashes {
            let claimed: Option<i64> = self.sql("SELECT 1 FROM claimed_key_packages WHERE hash = ?")
                .bind(&hash[..])
                .scalar_optional()?;
            if claimed.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn remember_claimed(&mut self, hash: &[u8], now: Millis) -> Result<(), TxError> {
        self.sql("INSERT INTO claimed_key_packages (hash, claimed_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(hash)
            .bind(int(now))
            .execute()?;
        Ok(())
    }

    async fn insert_one_time(&mut self, device: i64, packages: &[KeyPackageRow]) -> Result<(), TxError> {
        for package in packages {
            let statement = self.sql(
                "INSERT INTO key_packages (device, hash, data, last_resort) VALUES (?, ?, ?, 0)
                 ON CONFLICT DO NOTHING",
            );
            binds::key_package(statement, device, package).execute()?;
        }
        Ok(())
    }

    async fn pop_one_time(&mut self, device: i64) -> Result<Option<(Vec<u8>, Vec<u8>)>, TxError> {
        self.sql(
            "DELETE FROM key_packages WHERE id = (
                 SELECT id FROM key_packages WHERE device = ? AND last_resort = 0 ORDER BY id LIMIT 1)
             RETURNING hash, data",
        )
        .bind(device)
        .fetch_optional()
    }

    async fn one_time_count(&mut self, device: i64) -> Result<i64, TxError> {
        self.sql("SELECT COUNT(*) FROM key_packages WHERE device = ? AND last_resort = 0")
            .bind(device)
            .scalar_one()
    }

    async fn one_time_count_of(&mut self, device: &DeviceAddress) -> Result<i64, TxError> {
        self.sql(
            "SELECT COUNT(*) FROM key_packages k JOIN devices d ON d.id = k.device
             WHERE d.user_name = ? AND d.device_id = ? AND k.last_resort = 0",
        )
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .scalar_one()
    }

    async fn delete_last_resort(&mut self, device: i64) -> Result<(), TxError> {
        self.sql("DELETE FROM key_packages WHERE device = ? AND last_resort = 1")
            .bind(device)
            .execute()?;
        Ok(())
    }

    async fn insert_last_resort(&mut self, device: i64, package: &KeyPackageRow) -> Result<(), TxError> {
        let statement = self.sql("INSERT INTO key_packages (device, hash, data, last_resort) VALUES (?, ?, ?, 1)");
        binds::key_package(statement, device, package).execute()?;
        Ok(())
    }

    async fn last_resort(&mut self, device: i64) -> Result<Option<Vec<u8>>, TxError> {
        self.sql("SELECT data FROM key_packages WHERE device = ? AND last_resort = 1")
            .bind(device)
            .scalar_optional()
    }
}

//! Users, devices and key packages.

use qpq_proto::{DeviceAddress, DeviceRecord, UserId};
use sqlx::{SqliteConnection, SqlitePool};

use super::rows::{self, db, int, DeviceCols};
use crate::storage::{Claimed, KeyPackageRow, Millis, StoreError};

pub(super) async fn create_user(
    conn: &mut SqliteConnection,
    user: &UserId,
    identity_key: &[u8; 32],
    first: &DeviceRecord,
    now: Millis,
) -> Result<(), StoreError> {
    const OP: &str = "create user";
    if first.user != *user {
        // The first device must belong to the user being created.
        return Err(StoreError::NoSuchUser);
    }
    let reserved: Option<i64> = sqlx::query_scalar("SELECT reserved_until FROM reserved_names WHERE name = ?")
        .bind(user.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(OP))?;
    if reserved.is_some_and(|until| until > int(now)) {
        return Err(StoreError::UserExists);
    }
    let inserted = sqlx::query(
        "INSERT INTO users (name, identity_key, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
    )
    .bind(user.as_str())
    .bind(&identity_key[..])
    .bind(int(now))
    .execute(&mut *conn)
    .await
    .map_err(db(OP))?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::UserExists);
    }
    insert_device(conn, first, now).await?;
    sqlx::query("DELETE FROM reserved_names WHERE name = ?")
        .bind(user.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    Ok(())
}

pub(super) async fn identity_key(pool: &SqlitePool, user: &UserId) -> Result<Option<[u8; 32]>, StoreError> {
    const OP: &str = "read identity key";
    let key: Option<Vec<u8>> = sqlx::query_scalar("SELECT identity_key FROM users WHERE name = ?")
        .bind(user.as_str())
        .fetch_optional(pool)
        .await
        .map_err(db(OP))?;
    key.map(|k| rows::fixed(k, OP)).transpose()
}

pub(super) async fn devices(pool: &SqlitePool, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
    const OP: &str = "list devices";
    let found: Vec<DeviceCols> = sqlx::query_as(
        "SELECT user_name, device_id, device_key, signed_at, signature FROM devices
         WHERE user_name = ? ORDER BY id",
    )
    .bind(user.as_str())
    .fetch_all(pool)
    .await
    .map_err(db(OP))?;
    found.into_iter().map(|cols| rows::device_record(cols, OP)).collect()
}

pub(super) async fn device(pool: &SqlitePool, device: &DeviceAddress) -> Result<Option<DeviceRecord>, StoreError> {
    const OP: &str = "read device";
    let found: Option<DeviceCols> = sqlx::query_as(
        "SELECT user_name, device_id, device_key, signed_at, signature FROM devices
         WHERE user_name = ? AND device_id = ?",
    )
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .fetch_optional(pool)
    .await
    .map_err(db(OP))?;
    found.map(|cols| rows::device_record(cols, OP)).transpose()
}

pub(super) async fn add_device(
    conn: &mut SqliteConnection,
    record: &DeviceRecord,
    max: usize,
    now: Millis,
) -> Result<(), StoreError> {
    const OP: &str = "add device";
    let user: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = ?")
        .bind(record.user.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(OP))?;
    if user.is_none() {
        return Err(StoreError::NoSuchUser);
    }
    if device_key(conn, &record.address(), OP).await?.is_some() {
        return Err(StoreError::DeviceExists);
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE user_name = ?")
        .bind(record.user.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(db(OP))?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= max {
        return Err(StoreError::TooManyDevices);
    }
    insert_device(conn, record, now).await
}

pub(super) async fn revoke_device(conn: &mut SqliteConnection, device: &DeviceAddress) -> Result<(), StoreError> {
    // Key packages, queue and memberships go with the row (ON DELETE CASCADE).
    let deleted = sqlx::query("DELETE FROM devices WHERE user_name = ? AND device_id = ?")
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .execute(&mut *conn)
        .await
        .map_err(db("revoke device"))?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NoSuchDevice);
    }
    Ok(())
}

pub(super) async fn delete_user(
    conn: &mut SqliteConnection,
    user: &UserId,
    reserved_until: Millis,
) -> Result<(), StoreError> {
    const OP: &str = "delete user";
    // Devices (with their key packages, queues, memberships) and blobs go with the row.
    let deleted = sqlx::query("DELETE FROM users WHERE name = ?")
        .bind(user.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NoSuchUser);
    }
    sqlx::query("DELETE FROM sent_messages WHERE sender_user = ?")
        .bind(user.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    sqlx::query(
        "INSERT INTO reserved_names (name, reserved_until) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET reserved_until = MAX(reserved_until, excluded.reserved_until)",
    )
    .bind(user.as_str())
    .bind(int(reserved_until))
    .execute(&mut *conn)
    .await
    .map_err(db(OP))?;
    Ok(())
}

pub(super) async fn add_key_packages(
    conn: &mut SqliteConnection,
    device: &DeviceAddress,
    packages: &[KeyPackageRow],
    last_resort: Option<&KeyPackageRow>,
) -> Result<u32, StoreError> {
    const OP: &str = "add key packages";
    let id = device_key(conn, device, OP).await?.ok_or(StoreError::NoSuchDevice)?;
    for package in packages.iter().chain(last_resort) {
        let claimed: Option<i64> = sqlx::query_scalar("SELECT 1 FROM claimed_key_packages WHERE hash = ?")
            .bind(&package.hash[..])
            .fetch_optional(&mut *conn)
            .await
            .map_err(db(OP))?;
        if claimed.is_some() {
            // The caller's transaction is dropped unfinished: nothing of the call is stored.
            return Err(StoreError::KeyPackageReused);
        }
    }
    for package in packages {
        // A package already waiting (a retried upload) is kept once.
        sqlx::query(
            "INSERT INTO key_packages (device, hash, data, last_resort) VALUES (?, ?, ?, 0)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(&package.hash[..])
        .bind(&package.data)
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    }
    if let Some(package) = last_resort {
        sqlx::query("DELETE FROM key_packages WHERE device = ? AND last_resort = 1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db(OP))?;
        sqlx::query("INSERT INTO key_packages (device, hash, data, last_resort) VALUES (?, ?, ?, 1)")
            .bind(id)
            .bind(&package.hash[..])
            .bind(&package.data)
            .execute(&mut *conn)
            .await
            .map_err(db(OP))?;
    }
    one_time_count(conn, id, OP).await
}

pub(super) async fn claim_key_packages(
    conn: &mut SqliteConnection,
    user: &UserId,
    except: Option<&DeviceAddress>,
) -> Result<Vec<Claimed>, StoreError> {
    const OP: &str = "claim key packages";
    let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = ?")
        .bind(user.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(OP))?;
    if known.is_none() {
        return Err(StoreError::NoSuchUser);
    }
    let devices: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT id, device_id FROM devices WHERE user_name = ? ORDER BY id")
            .bind(user.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(db(OP))?;
    let mut claimed = Vec::with_capacity(devices.len());
    for (id, device_id) in devices {
        let device = qpq_proto::DeviceId(rows::fixed(device_id, OP)?);
        if except.is_some_and(|e| e.user == *user && e.device == device) {
            continue;
        }
        let one_time: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "DELETE FROM key_packages WHERE id = (
                 SELECT id FROM key_packages WHERE device = ? AND last_resort = 0 ORDER BY id LIMIT 1)
             RETURNING hash, data",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(OP))?;
        if let Some((hash, data)) = one_time {
            sqlx::query("INSERT INTO claimed_key_packages (hash) VALUES (?) ON CONFLICT DO NOTHING")
                .bind(hash)
                .execute(&mut *conn)
                .await
                .map_err(db(OP))?;
            claimed.push(Claimed { device, data, last_resort: false });
            continue;
        }
        let last: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT data FROM key_packages WHERE device = ? AND last_resort = 1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db(OP))?;
        if let Some(data) = last {
            claimed.push(Claimed { device, data, last_resort: true });
        }
    }
    Ok(claimed)
}

pub(super) async fn key_package_count(pool: &SqlitePool, device: &DeviceAddress) -> Result<u32, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM key_packages k JOIN devices d ON d.id = k.device
         WHERE d.user_name = ? AND d.device_id = ? AND k.last_resort = 0",
    )
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .fetch_one(pool)
    .await
    .map_err(db("count key packages"))?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// The internal key of a device, if it exists.
pub(super) async fn device_key(
    conn: &mut SqliteConnection,
    device: &DeviceAddress,
    op: &'static str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT id FROM devices WHERE user_name = ? AND device_id = ?")
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(op))
}

async fn insert_device(conn: &mut SqliteConnection, record: &DeviceRecord, now: Millis) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO devices (user_name, device_id, device_key, signed_at, signature, added_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(record.user.as_str())
    .bind(&record.device_id.0[..])
    .bind(&record.device_key[..])
    .bind(int(record.created_at))
    .bind(&record.signature[..])
    .bind(int(now))
    .execute(&mut *conn)
    .await
    .map_err(db("store device"))?;
    Ok(())
}

async fn one_time_count(conn: &mut SqliteConnection, id: i64, op: &'static str) -> Result<u32, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_packages WHERE device = ? AND last_resort = 0")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db(op))?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

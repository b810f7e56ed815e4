//! Users, devices and key packages.
//!
//! Lock order (shared with `messaging`): a user's row or name lock, then channel rows, then
//! device rows in ascending internal id. Claims and uploads of key packages for a device hold
//! its row lock, so a package can neither be handed out twice nor re-uploaded while claimed.

use qpq_proto::{DeviceAddress, DeviceId, DeviceRecord, UserId};
use sqlx::{PgConnection, PgPool};

use super::rows::{self, db, int, DeviceCols, TxError};
use crate::storage::{Claimed, KeyPackageRow, Millis, StoreError};

/// Advisory-lock class for user names: `create_user` and `delete_user` of one name serialise,
/// so a registration cannot slip in between a deletion and its reservation.
const NAME_LOCK_CLASS: i32 = 0x7170_7101;

pub(super) async fn create_user(
    pool: &PgPool,
    user: &UserId,
    identity_key: &[u8; 32],
    first: &DeviceRecord,
    now: Millis,
) -> Result<(), TxError> {
    const OP: &str = "create user";
    if first.user != *user {
        // The first device must belong to the user being created.
        return Err(StoreError::NoSuchUser.into());
    }
    let mut tx = pool.begin().await.map_err(db(OP))?;
    lock_name(&mut tx, user, OP).await?;
    let reserved: Option<i64> = sqlx::query_scalar("SELECT reserved_until FROM reserved_names WHERE name = $1")
        .bind(user.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(OP))?;
    if reserved.is_some_and(|until| until > int(now)) {
        return Err(StoreError::UserExists.into());
    }
    let inserted = sqlx::query(
        "INSERT INTO users (name, identity_key, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(user.as_str())
    .bind(&identity_key[..])
    .bind(int(now))
    .execute(&mut *tx)
    .await
    .map_err(db(OP))?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::UserExists.into());
    }
    insert_device(&mut tx, first, now).await?;
    sqlx::query("DELETE FROM reserved_names WHERE name = $1")
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?;
    tx.commit().await.map_err(db(OP))
}

pub(super) async fn identity_key(pool: &PgPool, user: &UserId) -> Result<Option<[u8; 32]>, TxError> {
    const OP: &str = "read identity key";
    let key: Option<Vec<u8>> = sqlx::query_scalar("SELECT identity_key FROM users WHERE name = $1")
        .bind(user.as_str())
        .fetch_optional(pool)
        .await
        .map_err(db(OP))?;
    Ok(key.map(|k| rows::fixed(k, OP)).transpose()?)
}

pub(super) async fn devices(pool: &PgPool, user: &UserId) -> Result<Vec<DeviceRecord>, TxError> {
    const OP: &str = "list devices";
    let found: Vec<DeviceCols> = sqlx::query_as(
        "SELECT user_name, device_id, device_key, signed_at, signature FROM devices
         WHERE user_name = $1 ORDER BY id",
    )
    .bind(user.as_str())
    .fetch_all(pool)
    .await
    .map_err(db(OP))?;
    Ok(found.into_iter().map(|cols| rows::device_record(cols, OP)).collect::<Result<_, _>>()?)
}

pub(super) async fn device(pool: &PgPool, device: &DeviceAddress) -> Result<Option<DeviceRecord>, TxError> {
    const OP: &str = "read device";
    let found: Option<DeviceCols> = sqlx::query_as(
        "SELECT user_name, device_id, device_key, signed_at, signature FROM devices
         WHERE user_name = $1 AND device_id = $2",
    )
    .bind(device.user.as_str())
    .bind(&device.device.0[..])
    .fetch_optional(pool)
    .await
    .map_err(db(OP))?;
    Ok(found.map(|cols| rows::device_record(cols, OP)).transpose()?)
}

pub(super) async fn add_device(pool: &PgPool, record: &DeviceRecord, max: usize, now: Millis) -> Result<(), TxError> {
    const OP: &str = "add device";
    let mut tx = pool.begin().await.map_err(db(OP))?;
    // The user's row lock makes the count and the insert one step for concurrent adds.
    let user: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = $1 FOR NO KEY UPDATE")
        .bind(record.user.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(OP))?;
    if user.is_none() {
        return Err(StoreError::NoSuchUser.into());
    }
    if device_key(&mut tx, &record.address(), OP).await?.is_some() {
        return Err(StoreError::DeviceExists.into());
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE user_name = $1")
        .bind(record.user.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db(OP))?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= max {
        return Err(StoreError::TooManyDevices.into());
    }
    insert_device(&mut tx, record, now).await?;
    tx.commit().await.map_err(db(OP))
}

pub(super) async fn revoke_device(pool: &PgPool, device: &DeviceAddress) -> Result<(), TxError> {
    // Key packages, queue and memberships go with the row (ON DELETE CASCADE).
    let deleted = sqlx::query("DELETE FROM devices WHERE user_name = $1 AND device_id = $2")
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .execute(pool)
        .await
        .map_err(db("revoke device"))?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NoSuchDevice.into());
    }
    Ok(())
}

pub(super) async fn delete_user(pool: &PgPool, user: &UserId, reserved_until: Millis) -> Result<(), TxError> {
    const OP: &str = "delete user";
    let mut tx = pool.begin().await.map_err(db(OP))?;
    lock_name(&mut tx, user, OP).await?;
    // Take the device rows in the usual order before the cascade deletes them.
    sqlx::query("SELECT id FROM devices WHERE user_name = $1 ORDER BY id FOR UPDATE")
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?;
    // Devices (with their key packages, queues, memberships) and blobs go with the row.
    let deleted =
        sqlx::query("DELETE FROM users WHERE name = $1").bind(user.as_str()).execute(&mut *tx).await.map_err(db(OP))?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NoSuchUser.into());
    }
    sqlx::query("DELETE FROM sent_messages WHERE sender_user = $1")
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?;
    sqlx::query(
        "INSERT INTO reserved_names (name, reserved_until) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE
         SET reserved_until = GREATEST(reserved_names.reserved_until, EXCLUDED.reserved_until)",
    )
    .bind(user.as_str())
    .bind(int(reserved_until))
    .execute(&mut *tx)
    .await
    .map_err(db(OP))?;
    tx.commit().await.map_err(db(OP))
}

pub(super) async fn add_key_packages(
    pool: &PgPool,
    device: &DeviceAddress,
    packages: &[KeyPackageRow],
    last_resort: Option<&KeyPackageRow>,
) -> Result<u32, TxError> {
    const OP: &str = "add key packages";
    let mut tx = pool.begin().await.map_err(db(OP))?;
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM devices WHERE user_name = $1 AND device_id = $2 FOR NO KEY UPDATE")
            .bind(device.user.as_str())
            .bind(&device.device.0[..])
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(OP))?
            .ok_or(StoreError::NoSuchDevice)?;
    let hashes: Vec<Vec<u8>> = packages.iter().chain(last_resort).map(|p| p.hash.to_vec()).collect();
    let reused: Option<i32> = sqlx::query_scalar("SELECT 1 FROM claimed_key_packages WHERE hash = ANY($1) LIMIT 1")
        .bind(&hashes)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(OP))?;
    if reused.is_some() {
        // The transaction is dropped unfinished: nothing of the call is stored.
        return Err(StoreError::KeyPackageReused.into());
    }
    if !packages.is_empty() {
        let one_time: Vec<Vec<u8>> = packages.iter().map(|p| p.hash.to_vec()).collect();
        let data: Vec<&[u8]> = packages.iter().map(|p| p.data.as_slice()).collect();
        // A package already waiting (a retried upload) is kept once; upload order is kept.
        sqlx::query(
            "INSERT INTO key_packages (device, hash, data, last_resort)
             SELECT $1, hash, data, FALSE FROM UNNEST($2::bytea[], $3::bytea[]) WITH ORDINALITY AS p (hash, data, n)
             ORDER BY n
             ON CONFLICT (hash) WHERE NOT last_resort DO NOTHING",
        )
        .bind(id)
        .bind(&one_time)
        .bind(&data)
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?;
    }
    if let Some(package) = last_resort {
        sqlx::query("DELETE FROM key_packages WHERE device = $1 AND last_resort")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        sqlx::query("INSERT INTO key_packages (device, hash, data, last_resort) VALUES ($1, $2, $3, TRUE)")
            .bind(id)
            .bind(&package.hash[..])
            .bind(&package.data)
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_packages WHERE device = $1 AND NOT last_resort")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db(OP))?;
    tx.commit().await.map_err(db(OP))?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

pub(super) async fn claim_key_packages(
    pool: &PgPool,
    user: &UserId,
    except: Option<&DeviceAddress>,
) -> Result<Vec<Claimed>, TxError> {
    const OP: &str = "claim key packages";
    let mut tx = pool.begin().await.map_err(db(OP))?;
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE name = $1")
        .bind(user.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(OP))?;
    if known.is_none() {
        return Err(StoreError::NoSuchUser.into());
    }
    // Concurrent claims for a device queue on its row: each pops a different package.
    let devices: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT id, device_id FROM devices WHERE user_name = $1 ORDER BY id FOR NO KEY UPDATE")
            .bind(user.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(db(OP))?;
    let mut claimed = Vec::with_capacity(devices.len());
    for (id, device_id) in devices {
        let device = DeviceId(rows::fixed(device_id, OP)?);
        if except.is_some_and(|e| e.user == *user && e.device == device) {
            continue;
        }
        let one_time: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "DELETE FROM key_packages WHERE id = (
                 SELECT id FROM key_packages WHERE device = $1 AND NOT last_resort ORDER BY id LIMIT 1)
             RETURNING hash, data",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(OP))?;
        if let Some((hash, data)) = one_time {
            sqlx::query("INSERT INTO claimed_key_packages (hash) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(hash)
                .execute(&mut *tx)
                .await
                .map_err(db(OP))?;
            claimed.push(Claimed { device, data, last_resort: false });
            continue;
        }
        let last: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT data FROM key_packages WHERE device = $1 AND last_resort")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(OP))?;
        if let Some(data) = last {
            claimed.push(Claimed { device, data, last_resort: true });
        }
    }
    tx.commit().await.map_err(db(OP))?;
    Ok(claimed)
}

pub(super) async fn key_package_count(pool: &PgPool, device: &DeviceAddress) -> Result<u32, TxError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM key_packages k JOIN devices d ON d.id = k.device
         WHERE d.user_name = $1 AND d.device_id = $2 AND NOT k.last_resort",
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
    conn: &mut PgConnection,
    device: &DeviceAddress,
    op: &'static str,
) -> Result<Option<i64>, TxError> {
    sqlx::query_scalar("SELECT id FROM devices WHERE user_name = $1 AND device_id = $2")
        .bind(device.user.as_str())
        .bind(&device.device.0[..])
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(op))
}

/// Serialises registrations and deletions of one name until the transaction ends.
async fn lock_name(conn: &mut PgConnection, user: &UserId, op: &'static str) -> Result<(), TxError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(NAME_LOCK_CLASS)
        .bind(user.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db(op))?;
    Ok(())
}

async fn insert_device(conn: &mut PgConnection, record: &DeviceRecord, now: Millis) -> Result<(), TxError> {
    sqlx::query(
        "INSERT INTO devices (user_name, device_id, device_key, signed_at, signature, added_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
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

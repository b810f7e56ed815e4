//! Encrypted files, stored in order-checked chunks.

use qpq_proto::{ChannelId, DeviceAddress};
use sqlx::{SqliteConnection, SqlitePool};

use super::accounts::device_key;
use super::rows::{self, db, int};
use crate::storage::{BlobRow, Millis, StoreError};

/// The columns of a blob: id, channel, size, chunk size, chunks stored, expiry.
type BlobCols = (Vec<u8>, Vec<u8>, i64, i64, i64, i64);

pub(super) async fn create_blob(
    conn: &mut SqliteConnection,
    blob: &BlobRow,
    owner: &DeviceAddress,
    now: Millis,
) -> Result<(), StoreError> {
    const OP: &str = "create blob";
    check_shape(blob)?;
    let channel: Option<i64> = sqlx::query_scalar("SELECT 1 FROM channels WHERE id = ?")
        .bind(blob.channel.as_bytes())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db(OP))?;
    if channel.is_none() {
        return Err(StoreError::NoSuchChannel);
    }
    if device_key(conn, owner, OP).await?.is_none() {
        return Err(StoreError::NoSuchDevice);
    }
    let inserted = sqlx::query(
        "INSERT INTO blobs (id, channel, size, chunk_size, chunks_stored, expires_at, owner_user, owner_device, created_at)
         VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&blob.id[..])
    .bind(blob.channel.as_bytes())
    .bind(int(blob.size))
    .bind(i64::from(blob.chunk_size))
    .bind(int(blob.expires_at))
    .bind(owner.user.as_str())
    .bind(&owner.device.0[..])
    .bind(int(now))
    .execute(&mut *conn)
    .await
    .map_err(db(OP))?;
    if inserted.rows_affected() == 0 {
        // Ids are 16 random bytes chosen by the server: a clash is a server fault.
        return Err(StoreError::Backend(format!("{OP}: the blob id is already in use")));
    }
    Ok(())
}

pub(super) async fn blob(
    conn: &mut SqliteConnection,
    id: &[u8; 16],
    now: Millis,
) -> Result<Option<BlobRow>, StoreError> {
    const OP: &str = "read blob";
    let found: Option<BlobCols> = sqlx::query_as(
        "SELECT id, channel, size, chunk_size, chunks_stored, expires_at FROM blobs
         WHERE id = ? AND (expires_at = 0 OR expires_at > ?)",
    )
    .bind(&id[..])
    .bind(int(now))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db(OP))?;
    found.map(|cols| blob_row(cols, OP)).transpose()
}

pub(super) async fn put_chunk(
    conn: &mut SqliteConnection,
    id: &[u8; 16],
    index: u32,
    data: &[u8],
    now: Millis,
) -> Result<BlobRow, StoreError> {
    const OP: &str = "store chunk";
    let mut row = blob(conn, id, now).await?.ok_or(StoreError::NoSuchBlob)?;
    check_chunk(&row, index, data.len())?;
    if index < row.chunks_stored {
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT data FROM blob_chunks WHERE blob = ? AND idx = ?")
            .bind(&id[..])
            .bind(i64::from(index))
            .fetch_optional(&mut *conn)
            .await
            .map_err(db(OP))?;
        return if stored.as_deref() == Some(data) {
            Ok(row)
        } else {
            Err(StoreError::BadChunk(format!("chunk {index} differs from the one stored")))
        };
    }
    sqlx::query("INSERT INTO blob_chunks (blob, idx, data) VALUES (?, ?, ?)")
        .bind(&id[..])
        .bind(i64::from(index))
        .bind(data)
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    sqlx::query("UPDATE blobs SET chunks_stored = chunks_stored + 1 WHERE id = ?")
        .bind(&id[..])
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?;
    row.chunks_stored += 1;
    Ok(row)
}

pub(super) async fn get_chunk(
    pool: &SqlitePool,
    id: &[u8; 16],
    index: u32,
    now: Millis,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar(
        "SELECT c.data FROM blob_chunks c JOIN blobs b ON b.id = c.blob
         WHERE b.id = ? AND c.idx = ? AND (b.expires_at = 0 OR b.expires_at > ?)",
    )
    .bind(&id[..])
    .bind(i64::from(index))
    .bind(int(now))
    .fetch_optional(pool)
    .await
    .map_err(db("read chunk"))
}

/// Refuses shapes whose chunk arithmetic would not work (zero-sized chunks, too many chunks,
/// sizes the database cannot hold).
fn check_shape(blob: &BlobRow) -> Result<(), StoreError> {
    if blob.size > 0 && blob.chunk_size == 0 {
        return Err(StoreError::BadChunk("the chunk size must be positive".into()));
    }
    if i64::try_from(blob.size).is_err()
        || (blob.size > 0 && blob.size.div_ceil(u64::from(blob.chunk_size)) > u64::from(u32::MAX))
    {
        return Err(StoreError::BadChunk("the file is too large".into()));
    }
    Ok(())
}

/// Chunk `index` of `data_len` bytes must be the next one or a stored one, of the right length.
fn check_chunk(row: &BlobRow, index: u32, data_len: usize) -> Result<(), StoreError> {
    check_shape(row)?;
    let Some(expected) = row.chunk_len(index) else {
        return Err(StoreError::BadChunk(format!("chunk {index} is past the end of the file")));
    };
    if data_len != expected {
        return Err(StoreError::BadChunk(format!("chunk {index} must be {expected} bytes, got {data_len}")));
    }
    if index > row.chunks_stored {
        return Err(StoreError::BadChunk(format!("chunk {} is expected next, got {index}", row.chunks_stored)));
    }
    Ok(())
}

fn blob_row(cols: BlobCols, op: &'static str) -> Result<BlobRow, StoreError> {
    let (id, channel, size, chunk_size, chunks_stored, expires_at) = cols;
    Ok(BlobRow {
        id: rows::fixed(id, op)?,
        channel: ChannelId::from_slice(&channel).map_err(|_| rows::corrupt(op))?,
        size: rows::uint(size, op)?,
        chunk_size: rows::uint32(chunk_size, op)?,
        chunks_stored: rows::uint32(chunks_stored, op)?,
        expires_at: rows::uint(expires_at, op)?,
    })
}

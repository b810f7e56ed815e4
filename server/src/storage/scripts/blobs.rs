//! Encrypted files, stored in order-checked chunks. A chunk upload holds its blob's row.

use qpq_proto::DeviceAddress;

use super::check_caller;
use crate::storage::backend::{AccountSql, Backend, BlobSql, ChannelSql, Tx};
use crate::storage::rows::{self, TxError};
use crate::storage::{BlobRow, Millis, StoreError};

pub(super) async fn create_blob<B: Backend>(
    b: &B,
    blob: &BlobRow,
    owner: &DeviceAddress,
    max_owned: u64,
    now: Millis,
) -> Result<(), TxError> {
    const OP: &str = "create blob";
    check_shape(blob)?;
    let mut tx = b.write(OP).await?;
    // Holding the user makes the sum and the insert one step for concurrent uploads.
    tx.lock_user(&owner.user).await?;
    check_caller(&mut tx, Some(owner)).await?;
    let owned = rows::uint(tx.owned_blob_bytes(&owner.user, now).await?, OP)?;
    if owned.saturating_add(blob.size) > max_owned {
        return Err(StoreError::QuotaExceeded(format!(
            "an account may hold at most {max_owned} bytes of files; it holds {owned} and this one is {}",
            blob.size
        ))
        .into());
    }
    if !tx.channel_exists(&blob.channel).await? {
        return Err(StoreError::NoSuchChannel.into());
    }
    if !tx.insert_blob(blob, owner, now).await? {
        // Ids are 16 random bytes chosen by the server: a clash is a server fault.
        return Err(StoreError::Backend(format!("{OP}: the blob id is already in use")).into());
    }
    tx.commit().await
}

pub(super) async fn blob<B: Backend>(b: &B, id: &[u8; 16], now: Millis) -> Result<Option<BlobRow>, TxError> {
    const OP: &str = "read blob";
    let found = b.read(OP).await?.blob_row(id, now).await?;
    Ok(found.map(|cols| rows::blob_row(cols, OP)).transpose()?)
}

pub(super) async fn put_chunk<B: Backend>(
    b: &B,
    id: &[u8; 16],
    index: u32,
    data: &[u8],
    by: Option<&DeviceAddress>,
    now: Millis,
) -> Result<BlobRow, TxError> {
    const OP: &str = "store chunk";
    let mut tx = b.write(OP).await?;
    check_caller(&mut tx, by).await?;
    let found = tx.lock_blob(id, now).await?.ok_or(StoreError::NoSuchBlob)?;
    let mut row = rows::blob_row(found, OP)?;
    check_chunk(&row, index, data.len())?;
    if index < row.chunks_stored {
        let stored = tx.chunk(id, index).await?;
        return if stored.as_deref() == Some(data) {
            Ok(row)
        } else {
            Err(StoreError::BadChunk(format!("chunk {index} differs from the one stored")).into())
        };
    }
    tx.append_chunk(id, index, data).await?;
    tx.commit().await?;
    row.chunks_stored += 1;
    Ok(row)
}

pub(super) async fn get_chunk<B: Backend>(
    b: &B,
    id: &[u8; 16],
    index: u32,
    now: Millis,
) -> Result<Option<Vec<u8>>, TxError> {
    b.read("read chunk").await?.live_chunk(id, index, now).await
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

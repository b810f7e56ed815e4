//! SQLite statements for blobs and expiry.

use async_trait::async_trait;
use qpq_proto::{DeviceAddress, UserId};

use super::SqliteTx;
use crate::storage::binds;
use crate::storage::backend::{BlobSql, ExpirySql};
use crate::storage::rows::{int, BlobCols, TxError};
use crate::storage::{BlobRow, Millis};

#[async_trait]
impl BlobSql for SqliteTx {
    async fn owned_blob_bytes(&mut self, user: &UserId, now: Millis) -> Result<i64, TxError> {
        self.sql(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs
             WHERE owner_user = ? AND (expires_at = 0 OR expires_at > ?)",
        )
        .bind(user.as_str())
        .bind(int(now))
        .scalar_one()
    }

    async fn insert_blob(&mut self, blob: &BlobRow, owner: &DeviceAddress, now: Millis) -> Result<bool, TxError> {
        let statement = self.sql(
            "INSERT INTO blobs (id, channel, size, chunk_size, chunks_stored, expires_at, owner_user, owner_device, created_at)
             VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        );
        let inserted = binds::blob(statement, blob, owner, now).execute()?;
        Ok(inserted == 1)
    }

    async fn blob_row(&mut self, id: &[u8; 16], now: Millis) -> Result<Option<BlobCols>, TxError> {
        self.sql(
            "SELECT id, channel, size, chunk_size, chunks_stored, expires_at FROM blobs
             WHERE id = ? AND (expires_at = 0 OR expires_at > ?)",
        )
        .bind(&id[..])
        .bind(int(now))
        .fetch_optional()
    }

    async fn lock_blob(&mut self, id: &[u8; 16], now: Millis) -> Result<Option<BlobCols>, TxError> {
        self.blob_row(id, now).await
    }

    async fn chunk(&mut self, id: &[u8; 16], index: u32) -> Result<Option<Vec<u8>>, TxError> {
        self.sql("SELECT data FROM blob_chunks WHERE blob = ? AND idx = ?")
            .bind(&id[..])
            .bind(i64::from(index))
            .scalar_optional()
    }

    async fn live_chunk(&mut self, id: &[u8; 16], index: u32, now: Millis) -> Result<Option<Vec<u8>>, TxError> {
        self.sql(
            "SELECT c.data FROM blob_chunks c JOIN blobs b ON b.id = c.blob
             WHERE b.id = ? AND c.idx = ? AND (b.expires_at = 0 OR b.expires_at > ?)",
        )
        .bind(&id[..])
        .bind(i64::from(index))
        .bind(int(now))
        .scalar_optional()
    }

    async fn append_chunk(&mut self, id: &[u8; 16], index: u32, data: &[u8]) -> Result<(), TxError> {
        self.sql("INSERT INTO blob_chunks (blob, idx, data) VALUES (?, ?, ?)")
            .bind(&id[..])
            .bind(i64::from(index))
            .bind(data)
            .execute()?;
        self.sql("UPDATE blobs SET chunks_stored = chunks_stored + 1 WHERE id = ?")
            .bind(&id[..])
            .execute()?;
        Ok(())
    }
}

#[async_trait]
impl ExpirySql for SqliteTx {
    async fn delete_expired_envelopes(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = self.sql("DELETE FROM envelopes WHERE expires_at > 0 AND expires_at <= ?")
            .bind(int(now))
            .execute()?;
        Ok(done)
    }

    async fn delete_expired_blobs(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = self.sql("DELETE FROM blobs WHERE expires_at > 0 AND expires_at <= ?")
            .bind(int(now))
            .execute()?;
        Ok(done)
    }

    async fn delete_empty_channels(&mut self) -> Result<u64, TxError> {
        let done = self.sql(
            "DELETE FROM channels WHERE NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel = channels.id)",
        )
        .execute()?;
        Ok(done)
    }

    async fn delete_unreachable_blobs(&mut self) -> Result<u64, TxError> {
        let done = self.sql(
            "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel = blobs.channel)",
        )
        .execute()?;
        Ok(done)
    }

    async fn delete_claimed_before(&mut self, before: Millis) -> Result<u64, TxError> {
        let done = self.sql("DELETE FROM claimed_key_packages WHERE claimed_at < ?")
            .bind(int(before))
            .execute()?;
        Ok(done)
    }

    async fn delete_sent_before(&mut self, before: Millis) -> Result<u64, TxError> {
        let done = self.sql("DELETE FROM sent_messages WHERE server_time < ?")
            .bind(int(before))
            .execute()?;
        Ok(done)
    }

    async fn delete_expired_reservations(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = self.sql("DELETE FROM reserved_names WHERE reserved_until <= ?")
            .bind(int(now))
            .execute()?;
        Ok(done)
    }

    async fn delete_expired_links(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = self.sql("DELETE FROM link_slots WHERE expires_at <= ?")
            .bind(int(now))
            .execute()?;
        Ok(done)
    }

    async fn queued_envelopes(&mut self) -> Result<i64, TxError> {
        self.sql("SELECT COUNT(*) FROM envelopes").scalar_one()
    }
}

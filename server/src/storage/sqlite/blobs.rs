//! SQLite statements for blobs and expiry.

use async_trait::async_trait;
use qpq_proto::{DeviceAddress, UserId};
use sqlx::Sqlite;

use crate::storage::binds;
use crate::storage::backend::{BlobSql, Conn, ExpirySql};
use crate::storage::rows::{db, int, BlobCols, TxError};
use crate::storage::{BlobRow, Millis};

#[async_trait]
impl BlobSql for Conn<Sqlite> {
    async fn owned_blob_bytes(&mut self, user: &UserId, now: Millis) -> Result<i64, TxError> {
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs
             WHERE owner_user = ? AND (expires_at = 0 OR expires_at > ?)",
        )
        .bind(user.as_str())
        .bind(int(now))
        .fetch_one(&mut **self)
        .await
        .map_err(db(self.op))
    }

    async fn insert_blob(&mut self, blob: &BlobRow, owner: &DeviceAddress, now: Millis) -> Result<bool, TxError> {
        let statement = sqlx::query(
            "INSERT INTO blobs (id, channel, size, chunk_size, chunks_stored, expires_at, owner_user, owner_device, created_at)
             VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        );
        let inserted = binds::blob(statement, blob, owner, now).execute(&mut **self).await.map_err(db(self.op))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn blob_row(&mut self, id: &[u8; 16], now: Millis) -> Result<Option<BlobCols>, TxError> {
        sqlx::query_as(
            "SELECT id, channel, size, chunk_size, chunks_stored, expires_at FROM blobs
             WHERE id = ? AND (expires_at = 0 OR expires_at > ?)",
        )
        .bind(&id[..])
        .bind(int(now))
        .fetch_optional(&mut **self)
        .await
        .map_err(db(self.op))
    }

    async fn lock_blob(&mut self, id: &[u8; 16], now: Millis) -> Result<Option<BlobCols>, TxError> {
        self.blob_row(id, now).await
    }

    async fn chunk(&mut self, id: &[u8; 16], index: u32) -> Result<Option<Vec<u8>>, TxError> {
        sqlx::query_scalar("SELECT data FROM blob_chunks WHERE blob = ? AND idx = ?")
            .bind(&id[..])
            .bind(i64::from(index))
            .fetch_optional(&mut **self)
            .await
            .map_err(db(self.op))
    }

    async fn live_chunk(&mut self, id: &[u8; 16], index: u32, now: Millis) -> Result<Option<Vec<u8>>, TxError> {
        sqlx::query_scalar(
            "SELECT c.data FROM blob_chunks c JOIN blobs b ON b.id = c.blob
             WHERE b.id = ? AND c.idx = ? AND (b.expires_at = 0 OR b.expires_at > ?)",
        )
        .bind(&id[..])
        .bind(i64::from(index))
        .bind(int(now))
        .fetch_optional(&mut **self)
        .await
        .map_err(db(self.op))
    }

    async fn append_chunk(&mut self, id: &[u8; 16], index: u32, data: &[u8]) -> Result<(), TxError> {
        sqlx::query("INSERT INTO blob_chunks (blob, idx, data) VALUES (?, ?, ?)")
            .bind(&id[..])
            .bind(i64::from(index))
            .bind(data)
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        sqlx::query("UPDATE blobs SET chunks_stored = chunks_stored + 1 WHERE id = ?")
            .bind(&id[..])
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(())
    }
}

#[async_trait]
impl ExpirySql for Conn<Sqlite> {
    async fn delete_expired_envelopes(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM envelopes WHERE expires_at > 0 AND expires_at <= ?")
            .bind(int(now))
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_blobs(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM blobs WHERE expires_at > 0 AND expires_at <= ?")
            .bind(int(now))
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_empty_channels(&mut self) -> Result<u64, TxError> {
        let done = sqlx::query(
            "DELETE FROM channels WHERE NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel = channels.id)",
        )
        .execute(&mut **self)
        .await
        .map_err(db(self.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_unreachable_blobs(&mut self) -> Result<u64, TxError> {
        let done = sqlx::query(
            "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel = blobs.channel)",
        )
        .execute(&mut **self)
        .await
        .map_err(db(self.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_claimed_before(&mut self, before: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM claimed_key_packages WHERE claimed_at < ?")
            .bind(int(before))
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_sent_before(&mut self, before: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM sent_messages WHERE server_time < ?")
            .bind(int(before))
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_reservations(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM reserved_names WHERE reserved_until <= ?")
            .bind(int(now))
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_links(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM link_slots WHERE expires_at <= ?")
            .bind(int(now))
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(done.rows_affected())
    }

    async fn queued_envelopes(&mut self) -> Result<i64, TxError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM envelopes").fetch_one(&mut **self).await.map_err(db(self.op))
    }
}

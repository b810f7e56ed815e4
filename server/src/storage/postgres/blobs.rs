//! PostgreSQL statements for blobs and expiry. A chunk upload holds its blob's row.

use async_trait::async_trait;
use qpq_proto::{DeviceAddress, UserId};

use super::PgTx;
use crate::storage::binds;
use crate::storage::backend::{BlobSql, ExpirySql};
use crate::storage::rows::{db, int, BlobCols, TxError};
use crate::storage::{BlobRow, Millis};

#[async_trait]
impl BlobSql for PgTx {
    async fn owned_blob_bytes(&mut self, user: &UserId, now: Millis) -> Result<i64, TxError> {
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs
             WHERE owner_user = $1 AND (expires_at = 0 OR expires_at > $2)",
        )
        .bind(user.as_str())
        .bind(int(now))
        .fetch_one(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn insert_blob(&mut self, blob: &BlobRow, owner: &DeviceAddress, now: Millis) -> Result<bool, TxError> {
        let statement = sqlx::query(
            "INSERT INTO blobs (id, channel, size, chunk_size, chunks_stored, expires_at, owner_user, owner_device, created_at)
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        );
        let inserted = binds::blob(statement, blob, owner, now).execute(&mut *self.conn).await.map_err(db(self.conn.op))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn blob_row(&mut self, id: &[u8; 16], now: Millis) -> Result<Option<BlobCols>, TxError> {
        sqlx::query_as(
            "SELECT id, channel, size, chunk_size, chunks_stored, expires_at FROM blobs
             WHERE id = $1 AND (expires_at = 0 OR expires_at > $2)",
        )
        .bind(&id[..])
        .bind(int(now))
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn lock_blob(&mut self, id: &[u8; 16], now: Millis) -> Result<Option<BlobCols>, TxError> {
        sqlx::query_as(
            "SELECT id, channel, size, chunk_size, chunks_stored, expires_at FROM blobs
             WHERE id = $1 AND (expires_at = 0 OR expires_at > $2) FOR NO KEY UPDATE",
        )
        .bind(&id[..])
        .bind(int(now))
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn chunk(&mut self, id: &[u8; 16], index: u32) -> Result<Option<Vec<u8>>, TxError> {
        sqlx::query_scalar("SELECT data FROM blob_chunks WHERE blob = $1 AND idx = $2")
            .bind(&id[..])
            .bind(i64::from(index))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn live_chunk(&mut self, id: &[u8; 16], index: u32, now: Millis) -> Result<Option<Vec<u8>>, TxError> {
        sqlx::query_scalar(
            "SELECT c.data FROM blob_chunks c JOIN blobs b ON b.id = c.blob
             WHERE b.id = $1 AND c.idx = $2 AND (b.expires_at = 0 OR b.expires_at > $3)",
        )
        .bind(&id[..])
        .bind(i64::from(index))
        .bind(int(now))
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn append_chunk(&mut self, id: &[u8; 16], index: u32, data: &[u8]) -> Result<(), TxError> {
        sqlx::query(
            "WITH stored AS (INSERT INTO blob_chunks (blob, idx, data) VALUES ($1, $2, $3))
             UPDATE blobs SET chunks_stored = chunks_stored + 1 WHERE id = $1",
        )
        .bind(&id[..])
        .bind(i64::from(index))
        .bind(data)
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(())
    }
}

#[async_trait]
impl ExpirySql for PgTx {
    async fn delete_expired_envelopes(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM envelopes WHERE expires_at > 0 AND expires_at <= $1")
            .bind(int(now))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_blobs(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM blobs WHERE expires_at > 0 AND expires_at <= $1")
            .bind(int(now))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_empty_channels(&mut self) -> Result<u64, TxError> {
        let done = sqlx::query(
            "DELETE FROM channels WHERE NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel = channels.id)",
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_unreachable_blobs(&mut self) -> Result<u64, TxError> {
        let done = sqlx::query(
            "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel = blobs.channel)",
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_claimed_before(&mut self, before: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM claimed_key_packages WHERE claimed_at < $1")
            .bind(int(before))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_sent_before(&mut self, before: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM sent_messages WHERE server_time < $1")
            .bind(int(before))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_reservations(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM reserved_names WHERE reserved_until <= $1")
            .bind(int(now))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_links(&mut self, now: Millis) -> Result<u64, TxError> {
        let done = sqlx::query("DELETE FROM link_slots WHERE expires_at <= $1")
            .bind(int(now))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(done.rows_affected())
    }

    async fn queued_envelopes(&mut self) -> Result<i64, TxError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM envelopes").fetch_one(&mut *self.conn).await.map_err(db(self.conn.op))
    }
}

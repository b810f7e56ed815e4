//! SQLite statements for blocks. The single writer serialises every write transaction, so
//! a block's count and insert need no lock of their own.

use async_trait::async_trait;
use qpq_proto::UserId;
use sqlx::Sqlite;

use super::key_list;
use crate::storage::backend::{BlockSql, Conn};
use crate::storage::rows::{db, int, TxError};
use crate::storage::Millis;

#[async_trait]
impl BlockSql for Conn<Sqlite> {
    async fn insert_block(&mut self, blocker: &UserId, blocked: &UserId, now: Millis) -> Result<bool, TxError> {
        let inserted = sqlx::query(
            "INSERT INTO blocks (blocker, blocked, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(blocker.as_str())
        .bind(blocked.as_str())
        .bind(int(now))
        .execute(&mut **self)
        .await
        .map_err(db(self.op))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn delete_block(&mut self, blocker: &UserId, blocked: &UserId) -> Result<bool, TxError> {
        let done = sqlx::query("DELETE FROM blocks WHERE blocker = ? AND blocked = ?")
            .bind(blocker.as_str())
            .bind(blocked.as_str())
            .execute(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(done.rows_affected() > 0)
    }

    async fn block_count(&mut self, blocker: &UserId) -> Result<i64, TxError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM blocks WHERE blocker = ?")
            .bind(blocker.as_str())
            .fetch_one(&mut **self)
            .await
            .map_err(db(self.op))
    }

    async fn blocked_by(&mut self, blocker: &UserId) -> Result<Vec<String>, TxError> {
        sqlx::query_scalar("SELECT blocked FROM blocks WHERE blocker = ?")
            .bind(blocker.as_str())
            .fetch_all(&mut **self)
            .await
            .map_err(db(self.op))
    }

    async fn blocks(&mut self, blocker: &UserId, blocked: &UserId) -> Result<bool, TxError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blocks WHERE blocker = ? AND blocked = ?")
            .bind(blocker.as_str())
            .bind(blocked.as_str())
            .fetch_optional(&mut **self)
            .await
            .map_err(db(self.op))?;
        Ok(found.is_some())
    }

    async fn blockers_among(&mut self, keys: &[i64], blocked: &UserId) -> Result<Vec<String>, TxError> {
        sqlx::query_scalar(
            "SELECT DISTINCT b.blocker FROM blocks b JOIN devices d ON d.user_name = b.blocker
             WHERE d.id IN (SELECT value FROM json_each(?)) AND b.blocked = ?",
        )
        .bind(key_list(keys))
        .bind(blocked.as_str())
        .fetch_all(&mut **self)
        .await
        .map_err(db(self.op))
    }
}

//! PostgreSQL statements for blocks. A block changes under its blocker's user row, which
//! the script holds (`lock_user`), so a count and an insert are one step; fan-outs read the
//! blocks as they are, without locks.

use async_trait::async_trait;
use qpq_proto::UserId;

use super::PgTx;
use crate::storage::backend::BlockSql;
use crate::storage::rows::{db, int, TxError};
use crate::storage::Millis;

#[async_trait]
impl BlockSql for PgTx {
    async fn insert_block(&mut self, blocker: &UserId, blocked: &UserId, now: Millis) -> Result<bool, TxError> {
        let inserted = sqlx::query(
            "INSERT INTO blocks (blocker, blocked, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(blocker.as_str())
        .bind(blocked.as_str())
        .bind(int(now))
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn delete_block(&mut self, blocker: &UserId, blocked: &UserId) -> Result<bool, TxError> {
        let done = sqlx::query("DELETE FROM blocks WHERE blocker = $1 AND blocked = $2")
            .bind(blocker.as_str())
            .bind(blocked.as_str())
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(done.rows_affected() > 0)
    }

    async fn block_count(&mut self, blocker: &UserId) -> Result<i64, TxError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM blocks WHERE blocker = $1")
            .bind(blocker.as_str())
            .fetch_one(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn blocked_by(&mut self, blocker: &UserId) -> Result<Vec<String>, TxError> {
        sqlx::query_scalar("SELECT blocked FROM blocks WHERE blocker = $1")
            .bind(blocker.as_str())
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn blocks(&mut self, blocker: &UserId, blocked: &UserId) -> Result<bool, TxError> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM blocks WHERE blocker = $1 AND blocked = $2")
            .bind(blocker.as_str())
            .bind(blocked.as_str())
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(found.is_some())
    }

    async fn blockers_among(&mut self, keys: &[i64], blocked: &UserId) -> Result<Vec<String>, TxError> {
        sqlx::query_scalar(
            "SELECT DISTINCT b.blocker FROM blocks b JOIN devices d ON d.user_name = b.blocker
             WHERE d.id = ANY($1) AND b.blocked = $2",
        )
        .bind(keys)
        .bind(blocked.as_str())
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }
}

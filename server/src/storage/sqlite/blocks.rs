//! SQLite statements for blocks. The single writer serialises every write transaction, so
//! a block's count and insert need no lock of their own.

use async_trait::async_trait;
use qpq_proto::UserId;

use super::{key_list, SqliteTx};
use crate::storage::backend::BlockSql;
use crate::storage::rows::{int, TxError};
use crate::storage::Millis;

#[async_trait]
impl BlockSql for SqliteTx {
    async fn insert_block(&mut self, blocker: &UserId, blocked: &UserId, now: Millis) -> Result<bool, TxError> {
        let inserted = self.sql(
            "INSERT INTO blocks (blocker, blocked, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(blocker.as_str())
        .bind(blocked.as_str())
        .bind(int(now))
        .execute()?;
        Ok(inserted == 1)
    }

    async fn delete_block(&mut self, blocker: &UserId, blocked: &UserId) -> Result<bool, TxError> {
        let done = self.sql("DELETE FROM blocks WHERE blocker = ? AND blocked = ?")
            .bind(blocker.as_str())
            .bind(blocked.as_str())
            .execute()?;
        Ok(done > 0)
    }

    async fn block_count(&mut self, blocker: &UserId) -> Result<i64, TxError> {
        self.sql("SELECT COUNT(*) FROM blocks WHERE blocker = ?")
            .bind(blocker.as_str())
            .scalar_one()
    }

    async fn blocked_by(&mut self, blocker: &UserId) -> Result<Vec<String>, TxError> {
        self.sql("SELECT blocked FROM blocks WHERE blocker = ?")
            .bind(blocker.as_str())
            .scalar_all()
    }

    async fn blocks(&mut self, blocker: &UserId, blocked: &UserId) -> Result<bool, TxError> {
        let found: Option<i64> = self.sql("SELECT 1 FROM blocks WHERE blocker = ? AND blocked = ?")
            .bind(blocker.as_str())
            .bind(blocked.as_str())
            .scalar_optional()?;
        Ok(found.is_some())
    }

    async fn blockers_among(&mut self, keys: &[i64], blocked: &UserId) -> Result<Vec<String>, TxError> {
        self.sql(
            "SELECT DISTINCT b.blocker FROM blocks b JOIN devices d ON d.user_name = b.blocker
             WHERE d.id IN (SELECT value FROM json_each(?)) AND b.blocked = ?",
        )
        .bind(key_list(keys))
        .bind(blocked.as_str())
        .scalar_all()
    }
}

//! SQLite statements for link slots. The single writer serialises every write transaction,
//! so `lock_link` is a plain read here.

use async_trait::async_trait;
use qpq_proto::UserId;

use super::SqliteTx;
use crate::storage::backend::LinkSql;
use crate::storage::binds;
use crate::storage::rows::{int, TxError};
use crate::storage::Millis;

#[async_trait]
impl LinkSql for SqliteTx {
    async fn open_link_count(&mut self, user: &UserId, now: Millis) -> Result<i64, TxError> {
        self.sql("SELECT COUNT(*) FROM link_slots WHERE user_name = ? AND expires_at > ?")
            .bind(user.as_str())
            .bind(int(now))
            .scalar_one()
    }

    async fn delete_expired_link(&mut self, slot: &[u8; 32], now: Millis) -> Result<(), TxError> {
        self.sql("DELETE FROM link_slots WHERE slot = ? AND expires_at <= ?")
            .bind(&slot[..])
            .bind(int(now))
            .execute()?;
        Ok(())
    }

    async fn insert_link(
        &mut self,
        slot: &[u8; 32],
        user: &UserId,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, TxError> {
        let statement = self.sql(
            "INSERT INTO link_slots (slot, user_name, created_at, expires_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (slot) DO NOTHING",
        );
        let inserted = binds::slot_user_time(statement, slot, user, now)
            .bind(int(expires_at))
            .execute()?;
        Ok(inserted == 1)
    }

    async fn set_link_request(&mut self, slot: &[u8; 32], request: &[u8], now: Millis) -> Result<bool, TxError> {
        let stored = self.sql(
            "UPDATE link_slots SET request = ? WHERE slot = ? AND expires_at > ? AND request IS NULL",
        )
        .bind(request)
        .bind(&slot[..])
        .bind(int(now))
        .execute()?;
        Ok(stored == 1)
    }

    async fn link_request_of(
        &mut self,
        slot: &[u8; 32],
        user: &UserId,
        now: Millis,
    ) -> Result<Option<Option<Vec<u8>>>, TxError> {
        let statement =
            self.sql("SELECT request FROM link_slots WHERE slot = ? AND user_name = ? AND expires_at > ?");
        binds::slot_user_time(statement, slot, user, now)
            .scalar_optional()
    }

    async fn lock_link(
        &mut self,
        slot: &[u8; 32],
        user: &UserId,
        now: Millis,
    ) -> Result<Option<(bool, bool)>, TxError> {
        let statement = self.sql(
            "SELECT request IS NOT NULL, answer IS NOT NULL FROM link_slots
             WHERE slot = ? AND user_name = ? AND expires_at > ?",
        );
        binds::slot_user_time(statement, slot, user, now)
            .fetch_optional()
    }

    async fn set_link_answer(&mut self, slot: &[u8; 32], answer: &[u8]) -> Result<(), TxError> {
        self.sql("UPDATE link_slots SET answer = ? WHERE slot = ?")
            .bind(answer)
            .bind(&slot[..])
            .execute()?;
        Ok(())
    }

    async fn link_answer(&mut self, slot: &[u8; 32], now: Millis) -> Result<Option<Option<Vec<u8>>>, TxError> {
        self.sql("SELECT answer FROM link_slots WHERE slot = ? AND expires_at > ?")
            .bind(&slot[..])
            .bind(int(now))
            .scalar_optional()
    }

    async fn take_link_answer(&mut self, slot: &[u8; 32], now: Millis) -> Result<Option<Vec<u8>>, TxError> {
        self.sql(
            "DELETE FROM link_slots WHERE slot = ? AND expires_at > ? AND answer IS NOT NULL RETURNING answer",
        )
        .bind(&slot[..])
        .bind(int(now))
        .scalar_optional()
    }

    async fn delete_link(&mut self, slot: &[u8; 32], user: &UserId) -> Result<(), TxError> {
        self.sql("DELETE FROM link_slots WHERE slot = ? AND user_name = ?")
            .bind(&slot[..])
            .bind(user.as_str())
            .execute()?;
        Ok(())
    }
}

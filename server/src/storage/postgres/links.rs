//! PostgreSQL statements for link slots. `lock_link` holds the slot's row (`FOR UPDATE`), so
//! two answers to one request are serialised; the other writes are single statements.

use async_trait::async_trait;
use qpq_proto::UserId;

use super::PgTx;
use crate::storage::backend::LinkSql;
use crate::storage::binds;
use crate::storage::rows::{db, int, TxError};
use crate::storage::Millis;

#[async_trait]
impl LinkSql for PgTx {
    async fn open_link_count(&mut self, user: &UserId, now: Millis) -> Result<i64, TxError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM link_slots WHERE user_name = $1 AND expires_at > $2")
            .bind(user.as_str())
            .bind(int(now))
            .fetch_one(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn delete_expired_link(&mut self, slot: &[u8; 32], now: Millis) -> Result<(), TxError> {
        sqlx::query("DELETE FROM link_slots WHERE slot = $1 AND expires_at <= $2")
            .bind(&slot[..])
            .bind(int(now))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn insert_link(
        &mut self,
        slot: &[u8; 32],
        user: &UserId,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, TxError> {
        let statement = sqlx::query(
            "INSERT INTO link_slots (slot, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (slot) DO NOTHING",
        );
        let inserted = binds::slot_user_time(statement, slot, user, now)
            .bind(int(expires_at))
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn set_link_request(&mut self, slot: &[u8; 32], request: &[u8], now: Millis) -> Result<bool, TxError> {
        let stored = sqlx::query(
            "UPDATE link_slots SET request = $1 WHERE slot = $2 AND expires_at > $3 AND request IS NULL",
        )
        .bind(request)
        .bind(&slot[..])
        .bind(int(now))
        .execute(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))?;
        Ok(stored.rows_affected() == 1)
    }

    async fn link_request_of(
        &mut self,
        slot: &[u8; 32],
        user: &UserId,
        now: Millis,
    ) -> Result<Option<Option<Vec<u8>>>, TxError> {
        let statement =
            sqlx::query_scalar("SELECT request FROM link_slots WHERE slot = $1 AND user_name = $2 AND expires_at > $3");
        binds::slot_user_time(statement, slot, user, now)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn lock_link(
        &mut self,
        slot: &[u8; 32],
        user: &UserId,
        now: Millis,
    ) -> Result<Option<(bool, bool)>, TxError> {
        let statement = sqlx::query_as(
            "SELECT request IS NOT NULL, answer IS NOT NULL FROM link_slots
             WHERE slot = $1 AND user_name = $2 AND expires_at > $3
             FOR UPDATE",
        );
        binds::slot_user_time(statement, slot, user, now)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn set_link_answer(&mut self, slot: &[u8; 32], answer: &[u8]) -> Result<(), TxError> {
        sqlx::query("UPDATE link_slots SET answer = $1 WHERE slot = $2")
            .bind(answer)
            .bind(&slot[..])
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }

    async fn link_answer(&mut self, slot: &[u8; 32], now: Millis) -> Result<Option<Option<Vec<u8>>>, TxError> {
        sqlx::query_scalar("SELECT answer FROM link_slots WHERE slot = $1 AND expires_at > $2")
            .bind(&slot[..])
            .bind(int(now))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))
    }

    async fn take_link_answer(&mut self, slot: &[u8; 32], now: Millis) -> Result<Option<Vec<u8>>, TxError> {
        sqlx::query_scalar(
            "DELETE FROM link_slots WHERE slot = $1 AND expires_at > $2 AND answer IS NOT NULL RETURNING answer",
        )
        .bind(&slot[..])
        .bind(int(now))
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(db(self.conn.op))
    }

    async fn delete_link(&mut self, slot: &[u8; 32], user: &UserId) -> Result<(), TxError> {
        sqlx::query("DELETE FROM link_slots WHERE slot = $1 AND user_name = $2")
            .bind(&slot[..])
            .bind(user.as_str())
            .execute(&mut *self.conn)
            .await
            .map_err(db(self.conn.op))?;
        Ok(())
    }
}

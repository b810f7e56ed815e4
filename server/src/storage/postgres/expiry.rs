//! Deleting what has expired.

use sqlx::PgPool;

use super::rows::{db, int, TxError};
use crate::storage::{ExpiryStats, Millis};

pub(super) async fn expire(pool: &PgPool, now: Millis, records_before: Millis) -> Result<ExpiryStats, TxError> {
    const OP: &str = "expire";
    let mut tx = pool.begin().await.map_err(db(OP))?;
    let envelopes = sqlx::query("DELETE FROM envelopes WHERE expires_at > 0 AND expires_at <= $1")
        .bind(int(now))
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?
        .rows_affected();
    // Chunks go with their blob (ON DELETE CASCADE).
    let blobs = sqlx::query("DELETE FROM blobs WHERE expires_at > 0 AND expires_at <= $1")
        .bind(int(now))
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?
        .rows_affected();
    // Blobs nobody can reach any more: readable only by members of their channel, which
    // has none left.
    let unreachable = sqlx::query(
        "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel = blobs.channel)",
    )
    .execute(&mut *tx)
    .await
    .map_err(db(OP))?
    .rows_affected();
    let sent = sqlx::query("DELETE FROM sent_messages WHERE server_time < $1")
        .bind(int(records_before))
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?
        .rows_affected();
    let reservations = sqlx::query("DELETE FROM reserved_names WHERE reserved_until <= $1")
        .bind(int(now))
        .execute(&mut *tx)
        .await
        .map_err(db(OP))?
        .rows_affected();
    tx.commit().await.map_err(db(OP))?;
    Ok(ExpiryStats { envelopes, blobs: blobs + unreachable, records: sent + reservations })
}

//! Deleting what has expired.

use sqlx::SqliteConnection;

use super::rows::{db, int};
use crate::storage::{ExpiryStats, Millis, StoreError};

pub(super) async fn expire(
    conn: &mut SqliteConnection,
    now: Millis,
    records_before: Millis,
) -> Result<ExpiryStats, StoreError> {
    const OP: &str = "expire";
    let envelopes = sqlx::query("DELETE FROM envelopes WHERE expires_at > 0 AND expires_at <= ?")
        .bind(int(now))
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?
        .rows_affected();
    // Chunks go with their blob (ON DELETE CASCADE).
    let blobs = sqlx::query("DELETE FROM blobs WHERE expires_at > 0 AND expires_at <= ?")
        .bind(int(now))
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?
        .rows_affected();
    // Blobs nobody can reach any more: readable only by members of their channel, which
    // has none left.
    let unreachable = sqlx::query(
        "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM channel_members m WHERE m.channel = blobs.channel)",
    )
    .execute(&mut *conn)
    .await
    .map_err(db(OP))?
    .rows_affected();
    let sent = sqlx::query("DELETE FROM sent_messages WHERE server_time < ?")
        .bind(int(records_before))
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?
        .rows_affected();
    let reservations = sqlx::query("DELETE FROM reserved_names WHERE reserved_until <= ?")
        .bind(int(now))
        .execute(&mut *conn)
        .await
        .map_err(db(OP))?
        .rows_affected();
    Ok(ExpiryStats { envelopes, blobs: blobs + unreachable, records: sent + reservations })
}

//! Deleting what has expired, in one transaction.

use crate::storage::backend::{Backend, ExpirySql, Tx};
use crate::storage::rows::TxError;
use crate::storage::{ExpiryStats, Millis};

/// Envelopes waiting in every queue, for the node's metrics.
pub(super) async fn queued_envelopes<B: Backend>(b: &B) -> Result<u64, TxError> {
    let mut conn = b.read("count queued envelopes").await?;
    Ok(u64::try_from(conn.queued_envelopes().await?).unwrap_or(0))
}

pub(super) async fn expire<B: Backend>(
    b: &B,
    now: Millis,
    records_before: Millis,
    claims_before: Millis,
) -> Result<ExpiryStats, TxError> {
    let mut tx = b.write("expire").await?;
    let envelopes = tx.delete_expired_envelopes(now).await?;
    // Chunks go with their blob (ON DELETE CASCADE).
    let blobs = tx.delete_expired_blobs(now).await?;
    // Blobs nobody can reach any more: readable only by members of their channel, which
    // has none left.
    let unreachable = tx.delete_unreachable_blobs().await?;
    // Channels nobody is a member of: nobody can read or write them again.
    let channels = tx.delete_empty_channels().await?;
    let sent = tx.delete_sent_before(records_before).await?;
    let claimed = tx.delete_claimed_before(claims_before).await?;
    let reservations = tx.delete_expired_reservations(now).await?;
    let links = tx.delete_expired_links(now).await?;
    tx.commit().await?;
    Ok(ExpiryStats { envelopes, blobs: blobs + unreachable, records: sent + reservations, channels, claimed, links })
}

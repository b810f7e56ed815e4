//! Blocking: an account's list of the users it blocks, and the two rules the node enforces
//! with it inside the fan-out transactions (`messaging`): an application message in a
//! conversation of two accounts does not reach the devices of an account that blocks its
//! sender, and a commit may not add a device of an account that blocks its committer.

use qpq_proto::{ChannelId, DeviceAddress, EnvelopeKind, UserId};

use super::check_caller;
use super::messaging::{addresses, lock_devices, push, queue_wakes};
use crate::storage::backend::{AccountSql, Backend, BlockSql, ChannelSql, Outgoing, Tx};
use crate::storage::rows::{self, TxError};
use crate::storage::{Millis, StoreError, Wake};

/// Blocks or unblocks; a change is told to the account's other devices (an `Account` hint in
/// their queues, so a device that is online reads the list again at once, and one that is not
/// at its next delivery). Returns the devices to wake.
pub(super) async fn set_blocked<B: Backend>(
    b: &B,
    by: &DeviceAddress,
    user: &UserId,
    blocked: bool,
    max: usize,
    now: Millis,
    expires_at: Millis,
) -> Result<Vec<Wake>, TxError> {
    const OP: &str = "set blocked";
    let mut tx = b.write(OP).await?;
    // Holding the user makes the count and the insert one step for concurrent blocks, and
    // keeps the account's devices as they are until the hint is queued.
    tx.lock_user(&by.user).await?;
    check_caller(&mut tx, Some(by)).await?;
    if *user == by.user {
        return Err(StoreError::BlockSelf.into());
    }
    // Setting what is already set changes nothing, even at the bound.
    let changed = if blocked {
        let inserted = tx.insert_block(&by.user, user, now).await?;
        if inserted && usize::try_from(tx.block_count(&by.user).await?).unwrap_or(usize::MAX) > max {
            // Dropped unfinished: nothing of the call is stored.
            return Err(StoreError::QuotaExceeded(format!(
                "an account may block at most {max} users; unblock someone first"
            ))
            .into());
        }
        inserted
    } else {
        tx.delete_block(&by.user, user).await?
    };
    let mut woken = Vec::new();
    if changed {
        let others: Vec<i64> = tx
            .device_keys_of(&by.user)
            .await?
            .into_iter()
            .filter(|(_, id)| id.as_slice() != by.device.0.as_slice())
            .map(|(key, _)| key)
            .collect();
        let others = lock_devices(&mut tx, others).await?;
        // Tiny and empty: never refused for a full queue, and not worth a Web Push.
        let hint = Outgoing {
            channel: &ChannelId::account(),
            sender: by,
            kind: EnvelopeKind::Account,
            payload: &[],
            expires_at,
            now,
        };
        push(&mut tx, &others, &hint).await?;
        woken = queue_wakes(addresses(&mut tx, others, OP).await?);
        tx.announce(&woken).await?;
    }
    tx.commit().await?;
    Ok(woken)
}

pub(super) async fn blocked_users<B: Backend>(b: &B, by: &DeviceAddress) -> Result<Vec<UserId>, TxError> {
    const OP: &str = "list blocked users";
    let mut conn = b.read(OP).await?;
    check_caller(&mut conn, Some(by)).await?;
    let mut users = conn
        .blocked_by(&by.user)
        .await?
        .iter()
        .map(|name| rows::user(name, OP))
        .collect::<Result<Vec<_>, _>>()?;
    users.sort();
    Ok(users)
}

/// The members of `channel` but the sending device `except` that an application message of
/// `sender` goes to: every one, but in a conversation of exactly two accounts (the sender's
/// and one other), none of the other account's devices when it blocks the sender.
pub(super) async fn recipients<T: ChannelSql + BlockSql>(
    tx: &mut T,
    channel: &ChannelId,
    except: i64,
    sender: &UserId,
) -> Result<Vec<i64>, TxError> {
    const OP: &str = "enqueue";
    let members = tx.other_members_with_users(channel, except).await?;
    let mut others: Vec<&str> = members.iter().map(|(_, u)| u.as_str()).filter(|u| *u != sender.as_str()).collect();
    others.sort_unstable();
    others.dedup();
    if let [other] = others[..] {
        let other = rows::user(other, OP)?;
        if tx.blocks(&other, sender).await? {
            // Dropped without a trace: the sender's own other devices still get it.
            return Ok(members.into_iter().filter(|(_, u)| u.as_str() != other.as_str()).map(|(k, _)| k).collect());
        }
    }
    Ok(members.into_iter().map(|(k, _)| k).collect())
}

/// `NotAllowed` when an account owning one of the devices `added` blocks `committer`; the
/// sentence names those accounts (whom the committer named anyway), not why.
pub(super) async fn check_adds<T: BlockSql>(tx: &mut T, added: &[i64], committer: &UserId) -> Result<(), TxError> {
    if added.is_empty() {
        return Ok(());
    }
    let mut blockers = tx.blockers_among(added, committer).await?;
    if blockers.is_empty() {
        return Ok(());
    }
    blockers.sort();
    blockers.dedup();
    Err(StoreError::NotAllowed(format!("{} cannot be added to this conversation", blockers.join(", "))).into())
}

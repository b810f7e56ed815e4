//! Linking a device: a slot relays one request (from the new device) and one answer (from a
//! device of the account) as ciphertext. A slot is open until it expires or its answer is
//! taken; every refusal that could tell an unauthenticated caller something about a slot is
//! the same `NoSuchLink`.

use qpq_proto::{DeviceAddress, UserId};

use super::check_caller;
use crate::storage::backend::{AccountSql, Backend, LinkSql, Tx};
use crate::storage::rows::{self, TxError};
use crate::storage::{Millis, StoreError};

pub(super) async fn open<B: Backend>(
    b: &B,
    slot: &[u8; 32],
    owner: &DeviceAddress,
    max_open: u32,
    now: Millis,
    expires_at: Millis,
) -> Result<(), TxError> {
    const OP: &str = "open link";
    let mut tx = b.write(OP).await?;
    // Holding the user makes the count and the insert one step for concurrent opens.
    tx.lock_user(&owner.user).await?;
    check_caller(&mut tx, Some(owner)).await?;
    let open = rows::uint(tx.open_link_count(&owner.user, now).await?, OP)?;
    if open >= u64::from(max_open) {
        return Err(StoreError::QuotaExceeded(format!(
            "an account may have at most {max_open} link codes open at once; close one or wait until one expires"
        ))
        .into());
    }
    // An expired slot's name is free again, even before the expiry job removes it.
    tx.delete_expired_link(slot, now).await?;
    if !tx.insert_link(slot, &owner.user, now, expires_at).await? {
        return Err(StoreError::LinkExists.into());
    }
    tx.commit().await
}

pub(super) async fn put_request<B: Backend>(
    b: &B,
    slot: &[u8; 32],
    request: &[u8],
    now: Millis,
) -> Result<(), TxError> {
    let mut tx = b.write("store link request").await?;
    // One statement: of two requests racing for a slot, exactly one is stored.
    if !tx.set_link_request(slot, request, now).await? {
        return Err(StoreError::NoSuchLink.into());
    }
    tx.commit().await
}

pub(super) async fn request<B: Backend>(
    b: &B,
    slot: &[u8; 32],
    owner: &UserId,
    now: Millis,
) -> Result<Option<Vec<u8>>, TxError> {
    let found = b.read("read link request").await?.link_request_of(slot, owner, now).await?;
    Ok(found.ok_or(StoreError::NoSuchLink)?)
}

pub(super) async fn answer<B: Backend>(
    b: &B,
    slot: &[u8; 32],
    answer: &[u8],
    by: &DeviceAddress,
    now: Millis,
) -> Result<(), TxError> {
    let mut tx = b.write("answer link").await?;
    check_caller(&mut tx, Some(by)).await?;
    match tx.lock_link(slot, &by.user, now).await? {
        None | Some((false, _)) => return Err(StoreError::NoSuchLink.into()),
        Some((true, true)) => return Err(StoreError::LinkAnswered.into()),
        Some((true, false)) => {}
    }
    tx.set_link_answer(slot, answer).await?;
    tx.commit().await
}

pub(super) async fn take_answer<B: Backend>(b: &B, slot: &[u8; 32], now: Millis) -> Result<Option<Vec<u8>>, TxError> {
    // Polled about once a second while the account device has not answered: one indexed
    // read, no write transaction, until there is something to take. The read connection is
    // returned before the write begins (an in-memory SQLite database shares one connection).
    let found = b.read("read link answer").await?.link_answer(slot, now).await?;
    match found {
        None => return Err(StoreError::NoSuchLink.into()),
        Some(None) => return Ok(None),
        Some(Some(_)) => {}
    }
    let mut tx = b.write("take link answer").await?;
    // Deleting and returning is one statement: of two takers racing, exactly one gets it.
    let answer = tx.take_link_answer(slot, now).await?.ok_or(StoreError::NoSuchLink)?;
    tx.commit().await?;
    Ok(Some(answer))
}

pub(super) async fn close<B: Backend>(b: &B, slot: &[u8; 32], by: &DeviceAddress) -> Result<(), TxError> {
    let mut tx = b.write("close link").await?;
    check_caller(&mut tx, Some(by)).await?;
    tx.delete_link(slot, &by.user).await?;
    tx.commit().await
}

//! Users, devices and key packages.
//!
//! Lock order (shared with `messaging`): a user's row or name lock, then channel rows, then
//! device rows in ascending internal key. Claims and uploads of key packages for a device
//! hold its row, so a package can neither be handed out twice nor re-uploaded while claimed.

use std::collections::{BTreeMap, HashSet};

use qpq_proto::{ChannelId, DeviceAddress, DeviceId, DeviceRecord, EnvelopeKind, UserId};

use super::check_caller;
use super::messaging::{addresses, lock_devices, push, queue_wakes};
use crate::storage::backend::{AccountSql, Backend, ChannelSql, Outgoing, Tx};
use crate::storage::rows::{self, count32, int, TxError};
use crate::storage::{Claimed, DeviceAbout, KeyPackageRow, Millis, StoreError, Wake};

pub(super) async fn create_user<B: Backend>(
    b: &B,
    user: &UserId,
    identity_key: &[u8; 32],
    first: &DeviceRecord,
    now: Millis,
) -> Result<(), TxError> {
    if first.user != *user {
        // The first device must belong to the user being created.
        return Err(StoreError::NoSuchUser.into());
    }
    let mut tx = b.write("create user").await?;
    tx.lock_name(user).await?;
    if tx.reserved_until(user).await?.is_some_and(|until| until > int(now)) {
        return Err(StoreError::UserExists.into());
    }
    if !tx.insert_user(user, identity_key, now).await? {
        return Err(StoreError::UserExists.into());
    }
    tx.insert_device(first, now).await?;
    tx.delete_reservation(user).await?;
    tx.commit().await
}

pub(super) async fn identity_key<B: Backend>(b: &B, user: &UserId) -> Result<Option<[u8; 32]>, TxError> {
    const OP: &str = "read identity key";
    let key = b.read(OP).await?.identity_key(user).await?;
    Ok(key.map(|k| rows::fixed(k, OP)).transpose()?)
}

pub(super) async fn devices<B: Backend>(b: &B, user: &UserId) -> Result<Vec<DeviceRecord>, TxError> {
    const OP: &str = "list devices";
    let found = b.read(OP).await?.device_rows(user).await?;
    Ok(found.into_iter().map(|cols| rows::device_record(cols, OP)).collect::<Result<_, _>>()?)
}

pub(super) async fn device<B: Backend>(b: &B, device: &DeviceAddress) -> Result<Option<DeviceRecord>, TxError> {
    const OP: &str = "read device";
    let found = b.read(OP).await?.device_row(device).await?;
    Ok(found.map(|cols| rows::device_record(cols, OP)).transpose()?)
}

pub(super) async fn devices_about<B: Backend>(
    b: &B,
    user: &UserId,
) -> Result<Vec<(DeviceRecord, DeviceAbout)>, TxError> {
    const OP: &str = "list devices with labels";
    let found = b.read(OP).await?.device_about_rows(user).await?;
    Ok(found.into_iter().map(|cols| rows::device_about(cols, OP)).collect::<Result<_, _>>()?)
}

pub(super) async fn set_device_label<B: Backend>(
    b: &B,
    device: &DeviceAddress,
    label: Option<&[u8]>,
) -> Result<(), TxError> {
    let mut tx = b.write("set device label").await?;
    // One statement: the device sets its own label, so a missing row means it was revoked.
    if !tx.set_device_label(device, label.filter(|l| !l.is_empty())).await? {
        return Err(StoreError::Revoked.into());
    }
    tx.commit().await
}

pub(super) async fn touch_login<B: Backend>(b: &B, device: &DeviceAddress, now: Millis) -> Result<(), TxError> {
    let mut tx = b.write("record login").await?;
    if !tx.set_last_login(device, now).await? {
        return Err(StoreError::NoSuchDevice.into());
    }
    tx.commit().await
}

pub(super) async fn caller_alive<B: Backend>(b: &B, caller: &DeviceAddress) -> Result<(), TxError> {
    check_caller(&mut b.read("check caller").await?, Some(caller)).await
}

pub(super) async fn add_device<B: Backend>(
    b: &B,
    record: &DeviceRecord,
    max: usize,
    by: Option<&DeviceAddress>,
    now: Millis,
) -> Result<(), TxError> {
    let mut tx = b.write("add device").await?;
    check_caller(&mut tx, by).await?;
    // Holding the user makes the count and the insert one step for concurrent adds.
    if !tx.lock_user(&record.user).await? {
        return Err(StoreError::NoSuchUser.into());
    }
    if tx.device_key(&record.address()).await?.is_some() {
        return Err(StoreError::DeviceExists.into());
    }
    let count = tx.device_count(&record.user).await?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= max {
        return Err(StoreError::TooManyDevices.into());
    }
    tx.insert_device(record, now).await?;
    tx.commit().await
}

/// Revokes a device; returns the wake-up that ends its sessions on this node.
pub(super) async fn revoke_device<B: Backend>(
    b: &B,
    device: &DeviceAddress,
    by: Option<&DeviceAddress>,
) -> Result<Vec<Wake>, TxError> {
    let mut tx = b.write("revoke device").await?;
    check_caller(&mut tx, by).await?;
    // Key packages, queue and memberships go with the row (ON DELETE CASCADE).
    if !tx.delete_device(device).await? {
        return Err(StoreError::NoSuchDevice.into());
    }
    let gone = vec![Wake::Gone(device.device)];
    tx.announce(&gone).await?;
    tx.commit().await?;
    Ok(gone)
}

/// Deletes a user; returns the wake-ups that end its devices' sessions on this node.
pub(super) async fn delete_user<B: Backend>(
    b: &B,
    user: &UserId,
    reserved_until: Millis,
    by: Option<&DeviceAddress>,
) -> Result<Vec<Wake>, TxError> {
    const OP: &str = "delete user";
    let mut tx = b.write(OP).await?;
    tx.lock_name(user).await?;
    check_caller(&mut tx, by).await?;
    // Take the device rows in the usual order before the cascade deletes them.
    tx.lock_devices_for_delete(user).await?;
    let mut gone = Vec::new();
    for cols in tx.device_rows(user).await? {
        gone.push(Wake::Gone(rows::device_record(cols, OP)?.device_id));
    }
    // Devices (with their key packages, queues, memberships) and blobs go with the row.
    if !tx.delete_user(user).await? {
        return Err(StoreError::NoSuchUser.into());
    }
    tx.delete_sent_by(user).await?;
    tx.reserve_name(user, reserved_until).await?;
    tx.announce(&gone).await?;
    tx.commit().await?;
    Ok(gone)
}

/// How often a restore begins again when a commit moved one of the account's devices into
/// another channel between the read of its channels and the hold on its devices.
const RESTORE_ATTEMPTS: u32 = 8;

/// Restores an account on a new device; returns the wake-ups, for this node, that end the
/// removed devices' sessions and tell the other members' devices of their new envelopes.
pub(super) async fn restore_device<B: Backend>(
    b: &B,
    record: &DeviceRecord,
    now: Millis,
    expires_at: Millis,
) -> Result<Vec<Wake>, TxError> {
    for _ in 0..RESTORE_ATTEMPTS {
        if let Some(wakes) = restore_attempt(b, record, now, expires_at).await? {
            return Ok(wakes);
        }
    }
    Err(StoreError::Backend("restore device: the account's channels kept changing; try again".into()).into())
}

/// One attempt at [`restore_device`]: `None`, with nothing stored, when the account's
/// channels changed before its devices were held.
async fn restore_attempt<B: Backend>(
    b: &B,
    record: &DeviceRecord,
    now: Millis,
    expires_at: Millis,
) -> Result<Option<Vec<Wake>>, TxError> {
    const OP: &str = "restore device";
    let user = &record.user;
    let mut tx = b.write(OP).await?;
    // The name, as registration and deletion take it; the user's row, as device additions
    // do (no device is added meanwhile); then channels; then device rows in ascending key.
    tx.lock_name(user).await?;
    if !tx.lock_user(user).await? {
        return Err(StoreError::NoSuchUser.into());
    }
    if tx.device_key(&record.address()).await?.is_some() {
        return Err(StoreError::DeviceExists.into());
    }
    // Shared as an enqueue shares its channel: no commit changes their membership now.
    let mut channels: BTreeMap<Vec<u8>, Vec<i64>> = BTreeMap::new();
    for id in tx.channels_of(user).await? {
        let channel = ChannelId::from_slice(&id).map_err(|_| rows::corrupt(OP))?;
        if tx.share_channel(&channel).await?.is_some() {
            channels.insert(id, Vec::new());
        }
    }
    let own = tx.device_keys_of(user).await?;
    let mut keys: Vec<i64> = own.iter().map(|(key, _)| *key).collect();
    for (channel, device) in tx.peers_of(user).await? {
        if let Some(peers) = channels.get_mut(&channel) {
            peers.push(device);
            keys.push(device);
        }
    }
    let locked: HashSet<i64> = lock_devices(&mut tx, keys).await?.into_iter().collect();
    // With the account's devices held no commit adds them anywhere; one that did before
    // they were held, in a channel not read above, sends this attempt back to the start.
    if tx.channels_of(user).await?.iter().any(|id| !channels.contains_key(id)) {
        return Ok(None);
    }
    let mut wakes = Vec::new();
    for (_, device_id) in own {
        let device = DeviceAddress { user: user.clone(), device: DeviceId(rows::fixed(device_id, OP)?) };
        // Key packages, queue and memberships go with the row (ON DELETE CASCADE); one
        // revoked meanwhile is simply not there.
        if tx.delete_device(&device).await? {
            wakes.push(Wake::Gone(device.device));
        }
    }
    tx.insert_device(record, now).await?;
    // A hint to read the account's devices again, one per channel: tiny, so never refused
    // for a full queue, and not worth a Web Push.
    let sender = record.address();
    let mut told = Vec::new();
    for (id, peers) in channels {
        let recipients: Vec<i64> = peers.into_iter().filter(|key| locked.contains(key)).collect();
        let channel = ChannelId::from_slice(&id).map_err(|_| rows::corrupt(OP))?;
        let hint = Outgoing {
            channel: &channel,
            sender: &sender,
            kind: EnvelopeKind::Devices,
            payload: user.as_str().as_bytes(),
            expires_at,
            now,
        };
        push(&mut tx, &recipients, &hint).await?;
        told.extend(recipients);
    }
    wakes.extend(queue_wakes(addresses(&mut tx, told, OP).await?));
    tx.announce(&wakes).await?;
    tx.commit().await?;
    Ok(Some(wakes))
}

pub(super) async fn add_key_packages<B: Backend>(
    b: &B,
    device: &DeviceAddress,
    packages: &[KeyPackageRow],
    last_resort: Option<&KeyPackageRow>,
    max_held: u32,
) -> Result<u32, TxError> {
    let mut tx = b.write("add key packages").await?;
    // Only the device itself uploads: gone means revoked.
    let id = tx.lock_device(device).await?.ok_or(StoreError::Revoked)?;
    let hashes: Vec<&[u8; 32]> = packages.iter().chain(last_resort).map(|p| &p.hash).collect();
    if tx.any_claimed(&hashes).await? {
        // The transaction is dropped unfinished: nothing of the call is stored.
        return Err(StoreError::KeyPackageReused.into());
    }
    if !packages.is_empty() {
        tx.insert_one_time(id, packages).await?;
    }
    if let Some(package) = last_resort {
        tx.delete_last_resort(id).await?;
        tx.insert_last_resort(id, package).await?;
    }
    let count = tx.one_time_count(id).await?;
    if count > i64::from(max_held) {
        // Dropped unfinished: nothing of the call is stored.
        return Err(StoreError::QuotaExceeded(format!(
            "a device may hold at most {max_held} key packages; it would hold {count}"
        ))
        .into());
    }
    tx.commit().await?;
    Ok(count32(count))
}

pub(super) async fn claim_key_packages<B: Backend>(
    b: &B,
    user: &UserId,
    except: Option<&DeviceAddress>,
    only: &[DeviceId],
    now: Millis,
) -> Result<Vec<Claimed>, TxError> {
    const OP: &str = "claim key packages";
    let mut tx = b.write(OP).await?;
    // The excepted device is the caller.
    check_caller(&mut tx, except).await?;
    if !tx.user_exists(user).await? {
        return Err(StoreError::NoSuchUser.into());
    }
    // Concurrent claims for a device queue on its row: each pops a different package.
    let devices = tx.lock_devices_of(user).await?;
    let mut claimed = Vec::with_capacity(devices.len());
    for (id, device_id) in devices {
        let device = DeviceId(rows::fixed(device_id, OP)?);
        if except.is_some_and(|e| e.user == *user && e.device == device) || !(only.is_empty() || only.contains(&device)) {
            continue;
        }
        if let Some((hash, data)) = tx.pop_one_time(id).await? {
            tx.remember_claimed(&hash, now).await?;
            claimed.push(Claimed { device, data, last_resort: false });
        } else if let Some(data) = tx.last_resort(id).await? {
            claimed.push(Claimed { device, data, last_resort: true });
        }
    }
    tx.commit().await?;
    Ok(claimed)
}

pub(super) async fn key_package_count<B: Backend>(b: &B, device: &DeviceAddress) -> Result<u32, TxError> {
    let mut conn = b.read("count key packages").await?;
    check_caller(&mut conn, Some(device)).await?;
    let count = conn.one_time_count_of(device).await?;
    Ok(count32(count))
}

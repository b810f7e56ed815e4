//! The per-backend layer: what the transaction scripts (`scripts/`) need from a database,
//! one primitive statement at a time.
//!
//! A backend supplies its SQL dialect (the text of each statement below), its locking (the
//! `lock_*` statements take row or advisory locks on PostgreSQL; on SQLite, whose single
//! writer holds the whole database from `BEGIN IMMEDIATE` on, they are plain reads or
//! nothing), its wake-up transport (`announce`) and its retry rule. Everything the
//! statements mean — the order of checks, refusals, idempotency, fan-out — is written once
//! in the scripts.

use std::ops::{Deref, DerefMut};

use async_trait::async_trait;
use qpq_proto::{ChannelId, DeviceAddress, DeviceRecord, EnvelopeKind, UserId};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Transaction};
use tokio::sync::broadcast;

use super::rows::{
    db, AddressCols, BlobCols, ChannelMemberCols, DeviceAboutCols, DeviceCols, EnvelopeCols, PushJobCols, PushSubCols,
    TxError,
};
use super::{BlobRow, KeyPackageRow, Leadership, Millis, PushSubscription, VapidKeyRow, Wake};

/// How many wake-ups a slow subscriber may fall behind before it misses some.
pub(super) const WAKE_CAPACITY: usize = 4096;

/// A database one storage runs on. Every backend gets [`super::Storage`] from this.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A transaction (or, for reads, a plain connection) with the statements.
    type Tx: Tx + AccountSql + ChannelSql + BlobSql + ExpirySql + PushSql + LinkSql + BlockSql;

    /// Begins a write transaction for `op` under the backend's locking rules.
    async fn write(&self, op: &'static str) -> Result<Self::Tx, TxError>;

    /// A connection for reads of `op` that need no transaction (one statement each).
    async fn read(&self, op: &'static str) -> Result<Self::Tx, TxError>;

    /// Begins a write of `op` that runs exactly one statement. A backend whose statements
    /// commit by themselves outside a transaction runs it so (PostgreSQL: no `BEGIN` and
    /// `COMMIT` round trips; the statement is atomic on its own and committed when it
    /// returns); the others begin a write transaction as [`Self::write`] does.
    async fn write_one(&self, op: &'static str) -> Result<Self::Tx, TxError> {
        self.write(op).await
    }

    /// True when a transaction that failed with `e` may simply be run again.
    fn retryable(&self, e: &sqlx::Error) -> bool;

    /// The local wake-up channel.
    fn wake(&self) -> &broadcast::Sender<Wake>;

    /// Tells other nodes, after the commit, what happened to these devices — for a backend
    /// whose wake-ups do not travel inside the transaction (`Tx::announce`).
    fn announce_committed(&self, _wakes: &[Wake]) {}

    /// Returns once the write batch `batch` is committed (see `super::group`); an error when
    /// it failed. Only backends that group their writes hand out batches.
    async fn settle(&self, _batch: u64) -> Result<(), super::StoreError> {
        Ok(())
    }

    /// Takes the cluster-wide role `lock` if nobody holds it (see
    /// [`super::Storage::lead_pushes`]).
    async fn lead(&self, lock: i64) -> Result<Option<Leadership>, TxError>;
}

/// A connection as a script holds it: a transaction, or a pooled connection for reads, and
/// the operation its errors are reported under.
pub struct Conn<DB: Database> {
    inner: Inner<DB>,
    /// The operation, named in errors.
    pub(super) op: &'static str,
}

enum Inner<DB: Database> {
    Tx(Transaction<'static, DB>),
    Read(PoolConnection<DB>),
}

impl<DB: Database> Conn<DB> {
    /// A write transaction.
    pub(super) fn tx(tx: Transaction<'static, DB>, op: &'static str) -> Self {
        Conn { inner: Inner::Tx(tx), op }
    }

    /// A connection without a transaction: for reads, and for writes of one statement.
    pub(super) fn read(conn: PoolConnection<DB>, op: &'static str) -> Self {
        Conn { inner: Inner::Read(conn), op }
    }

    /// Commits the transaction (nothing to do for a read connection). Dropping a `Conn`
    /// without committing rolls the transaction back.
    pub(super) async fn finish(self) -> Result<(), TxError> {
        match self.inner {
            Inner::Tx(tx) => tx.commit().await.map_err(db(self.op)),
            Inner::Read(_) => Ok(()),
        }
    }
}

impl<DB: Database> Deref for Conn<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match &self.inner {
            Inner::Tx(tx) => tx,
            Inner::Read(conn) => conn,
        }
    }
}

impl<DB: Database> DerefMut for Conn<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match &mut self.inner {
            Inner::Tx(tx) => tx,
            Inner::Read(conn) => conn,
        }
    }
}

/// The end of a transaction.
#[async_trait]
pub trait Tx: Send + Sized {
    /// Commits.
    async fn commit(self) -> Result<(), TxError>;
}

/// A message on its way into delivery queues.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    /// The channel.
    pub channel: &'a ChannelId,
    /// The sending device.
    pub sender: &'a DeviceAddress,
    /// What it is.
    pub kind: EnvelopeKind,
    /// The MLS message.
    pub payload: &'a [u8],
    /// When undelivered copies expire (0 = never).
    pub expires_at: Millis,
    /// Server time.
    pub now: Millis,
}

/// Users, devices and key packages. Devices are named by their internal key (`i64`) once
/// looked up.
#[async_trait]
pub trait AccountSql: Send {
    /// Serialises registrations and deletions of `user`'s name until the transaction ends.
    async fn lock_name(&mut self, user: &UserId) -> Result<(), TxError>;
    /// When the name's reservation ends, if reserved.
    async fn reserved_until(&mut self, user: &UserId) -> Result<Option<i64>, TxError>;
    /// Inserts the user unless the name is taken; true when inserted.
    async fn insert_user(&mut self, user: &UserId, identity_key: &[u8; 32], now: Millis) -> Result<bool, TxError>;
    /// Ends the name's reservation.
    async fn delete_reservation(&mut self, user: &UserId) -> Result<(), TxError>;
    /// Reserves the name until `until` (or later, when already reserved longer).
    async fn reserve_name(&mut self, user: &UserId, until: Millis) -> Result<(), TxError>;
    /// The user's identity key.
    async fn identity_key(&mut self, user: &UserId) -> Result<Option<Vec<u8>>, TxError>;
    /// True when the user exists.
    async fn user_exists(&mut self, user: &UserId) -> Result<bool, TxError>;
    /// True when the user exists, holding its row so its devices can be counted and added.
    async fn lock_user(&mut self, user: &UserId) -> Result<bool, TxError>;
    /// Deletes the user (its devices, key packages, queues, memberships, blobs, link slots
    /// and blocks go with it); true when it existed.
    async fn delete_user(&mut self, user: &UserId) -> Result<bool, TxError>;
    /// Forgets the idempotency records of the user's devices.
    async fn delete_sent_by(&mut self, user: &UserId) -> Result<(), TxError>;

    /// Stores a device.
    async fn insert_device(&mut self, record: &DeviceRecord, now: Millis) -> Result<(), TxError>;
    /// The device's internal key.
    async fn device_key(&mut self, device: &DeviceAddress) -> Result<Option<i64>, TxError>;
    /// The device's internal key, holding its row (key-package uploads and claims).
    async fn lock_device(&mut self, device: &DeviceAddress) -> Result<Option<i64>, TxError>;
    /// The user's devices' keys and ids in creation order, holding their rows.
    async fn lock_devices_of(&mut self, user: &UserId) -> Result<Vec<(i64, Vec<u8>)>, TxError>;
    /// Holds the user's device rows in key order for deleting them.
    async fn lock_devices_for_delete(&mut self, user: &UserId) -> Result<(), TxError>;
    /// The user's devices' keys and ids in key order, holding nothing (the caller holds the
    /// user's row, so none can be added meanwhile, and locks them with others in key order).
    async fn device_keys_of(&mut self, user: &UserId) -> Result<Vec<(i64, Vec<u8>)>, TxError>;
    /// How many devices the user has.
    async fn device_count(&mut self, user: &UserId) -> Result<i64, TxError>;
    /// The user's device records in creation order.
    async fn device_rows(&mut self, user: &UserId) -> Result<Vec<DeviceCols>, TxError>;
    /// One device's record.
    async fn device_row(&mut self, device: &DeviceAddress) -> Result<Option<DeviceCols>, TxError>;
    /// Deletes a device (with its key packages, queue and memberships); true when it existed.
    async fn delete_device(&mut self, device: &DeviceAddress) -> Result<bool, TxError>;
    /// The user's device records with label and last login, in creation order.
    async fn device_about_rows(&mut self, user: &UserId) -> Result<Vec<DeviceAboutCols>, TxError>;
    /// Sets (or, with `None`, clears) the device's label; true when the device exists.
    async fn set_device_label(&mut self, device: &DeviceAddress, label: Option<&[u8]>) -> Result<bool, TxError>;
    /// Sets the device's last login; true when the device exists.
    async fn set_last_login(&mut self, device: &DeviceAddress, now: Millis) -> Result<bool, TxError>;

    /// True when any of `hashes` was claimed before.
    async fn any_claimed(&mut self, hashes: &[&[u8; 32]]) -> Result<bool, TxError>;
    /// Remembers a claimed package's hash, claimed at `now`.
    async fn remember_claimed(&mut self, hash: &[u8], now: Millis) -> Result<(), TxError>;
    /// Stores one-time packages in order, keeping a package already waiting once.
    async fn insert_one_time(&mut self, device: i64, packages: &[KeyPackageRow]) -> Result<(), TxError>;
    /// Removes the device's oldest one-time package: (hash, data).
    async fn pop_one_time(&mut self, device: i64) -> Result<Option<(Vec<u8>, Vec<u8>)>, TxError>;
    /// How many one-time packages the device has.
    async fn one_time_count(&mut self, device: i64) -> Result<i64, TxError>;
    /// How many one-time packages the device at `device` has.
    async fn one_time_count_of(&mut self, device: &DeviceAddress) -> Result<i64, TxError>;
    /// Removes the device's last-resort package.
    async fn delete_last_resort(&mut self, device: i64) -> Result<(), TxError>;
    /// Stores the device's last-resort package (after [`AccountSql::delete_last_resort`]).
    async fn insert_last_resort(&mut self, device: i64, package: &KeyPackageRow) -> Result<(), TxError>;
    /// The device's last-resort package.
    async fn last_resort(&mut self, device: i64) -> Result<Option<Vec<u8>>, TxError>;
}

/// Channels, membership and delivery queues.
#[async_trait]
pub trait ChannelSql: Send {
    /// Inserts the channel at epoch 0 unless the id is taken; true when inserted.
    async fn insert_channel(&mut self, channel: &ChannelId, creator: &DeviceAddress, now: Millis) -> Result<bool, TxError>;
    /// The channel's creator (user, device id).
    async fn channel_creator(&mut self, channel: &ChannelId) -> Result<Option<AddressCols>, TxError>;
    /// The channel joined with each member, in one statement (one snapshot).
    async fn channel_rows(&mut self, channel: &ChannelId) -> Result<Vec<ChannelMemberCols>, TxError>;
    /// True when the channel exists.
    async fn channel_exists(&mut self, channel: &ChannelId) -> Result<bool, TxError>;
    /// The channel's epoch and the epoch its latest added devices joined in (`None`: no such
    /// channel), holding the channel so that neither its membership nor its epochs can change
    /// before the transaction ends (fan-out).
    async fn share_channel(&mut self, channel: &ChannelId) -> Result<Option<(i64, i64)>, TxError>;
    /// The channel's epoch, holding it for a commit (one commit per epoch).
    async fn lock_channel(&mut self, channel: &ChannelId) -> Result<Option<i64>, TxError>;
    /// Sets the channel's epoch and, when devices joined in `joined_at`, raises its joining
    /// epoch to that (it never goes down).
    async fn set_epoch(&mut self, channel: &ChannelId, epoch: u64, joined_at: Option<u64>) -> Result<(), TxError>;
    /// Keeps `state` as the public state of the channel's MLS group, replacing any (and
    /// forgetting the GroupInfo kept for the previous state).
    async fn put_group_state(&mut self, channel: &ChannelId, state: &[u8]) -> Result<(), TxError>;
    /// The public state of the channel's MLS group (none for channels made before it was kept).
    async fn group_state(&mut self, channel: &ChannelId) -> Result<Option<Vec<u8>>, TxError>;
    /// Keeps `info` as the GroupInfo of the channel's current epoch if that epoch is `epoch`;
    /// false when it is not (or there is no group state).
    async fn put_group_info(&mut self, channel: &ChannelId, epoch: u64, info: &[u8]) -> Result<bool, TxError>;
    /// The group's state with the GroupInfo kept for it, if any.
    async fn group_info(&mut self, channel: &ChannelId) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, TxError>;
    /// The internal key of `device` when it is a member of `channel`.
    async fn member_key(&mut self, channel: &ChannelId, device: &DeviceAddress) -> Result<Option<i64>, TxError>;
    /// The members of `channel` but `except`.
    async fn other_members(&mut self, channel: &ChannelId, except: i64) -> Result<Vec<i64>, TxError>;
    /// The members of `channel` but `except`, each with its account's name.
    async fn other_members_with_users(
        &mut self,
        channel: &ChannelId,
        except: i64,
    ) -> Result<Vec<(i64, String)>, TxError>;
    /// The channels any device of `user` is a member of, sorted by id.
    async fn channels_of(&mut self, user: &UserId) -> Result<Vec<Vec<u8>>, TxError>;
    /// The member devices of other users in the channels any device of `user` is a member
    /// of: (channel, device key), in one statement.
    async fn peers_of(&mut self, user: &UserId) -> Result<Vec<(Vec<u8>, i64)>, TxError>;
    /// Makes the devices `keys` members (already members stay).
    async fn add_members(&mut self, channel: &ChannelId, keys: &[i64]) -> Result<(), TxError>;
    /// Ends the membership of the devices `keys`.
    async fn remove_members(&mut self, channel: &ChannelId, keys: &[i64]) -> Result<(), TxError>;

    /// Records an enqueue or commit under its idempotency key; false when the key is taken
    /// (then nothing is recorded).
    async fn claim_sent(&mut self, message: &Outgoing<'_>, client_msg_id: &[u8; 16], kind: i16, epoch: u64) -> Result<bool, TxError>;
    /// The recorded (epoch, server time) under an idempotency key.
    async fn sent(&mut self, sender: &DeviceAddress, client_msg_id: &[u8; 16], kind: i16) -> Result<Option<(i64, i64)>, TxError>;

    /// Holds the rows of the devices `keys` (sorted, without repeats) in that order, so
    /// their sequence numbers are given out in commit order; returns those that exist.
    async fn lock_devices(&mut self, keys: &[i64]) -> Result<Vec<i64>, TxError>;
    /// How many of the held devices `keys` already have `max` or more envelopes waiting
    /// (counted from the oldest waiting sequence number to the newest, gaps included).
    async fn full_queues(&mut self, keys: &[i64], max: u64) -> Result<i64, TxError>;
    /// Queues `message` for the held devices `keys` (without repeats), each under its next
    /// sequence number.
    async fn push(&mut self, keys: &[i64], message: &Outgoing<'_>) -> Result<(), TxError>;
    /// The addresses of the devices `keys`.
    async fn addresses(&mut self, keys: &[i64]) -> Result<Vec<AddressCols>, TxError>;
    /// Queues `message` for the held devices `keys` (sorted, without repeats, not empty) and
    /// schedules their pushes due at `push_at`, unless some of their queues already hold `max`
    /// envelopes: then nothing is written and the answer is `Err` with how many. `Ok` holds the
    /// devices' addresses. What [`Self::full_queues`], [`Self::push`],
    /// [`PushSql::schedule_pushes`] and [`Self::addresses`] do in turn, which is how it runs
    /// unless the backend does it in one statement (PostgreSQL: one round trip).
    async fn fan_out(
        &mut self,
        keys: &[i64],
        message: &Outgoing<'_>,
        max: u64,
        push_at: Millis,
    ) -> Result<Result<Vec<AddressCols>, i64>, TxError>
    where
        Self: PushSql,
    {
        let full = self.full_queues(keys, max).await?;
        if full > 0 {
            return Ok(Err(full));
        }
        self.push(keys, message).await?;
        self.schedule_pushes(keys, push_at).await?;
        Ok(Ok(self.addresses(keys).await?))
    }

    /// Tells other nodes, when this transaction commits, what happened to these devices.
    async fn announce(&mut self, wakes: &[Wake]) -> Result<(), TxError>;

    /// Up to `limit` unexpired envelopes of `device` after `after`, in order, stopping before
    /// the one that would take the payloads past `max_bytes` (the first is always included).
    async fn envelopes(&mut self, device: &DeviceAddress, after: u64, limit: u32, max_bytes: u64, now: Millis) -> Result<Vec<EnvelopeCols>, TxError>;
    /// [`Self::envelopes`] for the caller `device`; `None` when the device does not exist.
    /// The caller check and the read in turn, unless the backend reads both in one statement.
    async fn caller_envelopes(
        &mut self,
        device: &DeviceAddress,
        after: u64,
        limit: u32,
        max_bytes: u64,
        now: Millis,
    ) -> Result<Option<Vec<EnvelopeCols>>, TxError>
    where
        Self: AccountSql,
    {
        if self.device_key(device).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.envelopes(device, after, limit, max_bytes, now).await?))
    }
    /// Deletes the envelopes of `device` up to `up_to`.
    async fn delete_envelopes(&mut self, device: &DeviceAddress, up_to: u64) -> Result<(), TxError>;
    /// An acknowledgement by the caller `device`: deletes its envelopes up to `up_to` and
    /// drops its waiting push ([`PushSql::reset_push`]); false, writing nothing, when the
    /// device does not exist. The caller check and the two writes in turn, unless the backend
    /// does it in one statement (PostgreSQL, run by [`Backend::write_one`]).
    async fn acknowledge(&mut self, device: &DeviceAddress, up_to: u64) -> Result<bool, TxError>
    where
        Self: AccountSql + PushSql,
    {
        if self.device_key(device).await?.is_none() {
            return Ok(false);
        }
        self.delete_envelopes(device, up_to).await?;
        self.reset_push(device).await?;
        Ok(true)
    }
}

/// Blobs and their chunks.
#[async_trait]
pub trait BlobSql: Send {
    /// Inserts an empty blob unless its id is taken; true when inserted.
    async fn insert_blob(&mut self, blob: &BlobRow, owner: &DeviceAddress, now: Millis) -> Result<bool, TxError>;
    /// The blob unless absent or expired at `now`.
    async fn blob_row(&mut self, id: &[u8; 16], now: Millis) -> Result<Option<BlobCols>, TxError>;
    /// Like [`BlobSql::blob_row`], holding the row for a chunk upload.
    async fn lock_blob(&mut self, id: &[u8; 16], now: Millis) -> Result<Option<BlobCols>, TxError>;
    /// A stored chunk.
    async fn chunk(&mut self, id: &[u8; 16], index: u32) -> Result<Option<Vec<u8>>, TxError>;
    /// A stored chunk of a blob that has not expired at `now`.
    async fn live_chunk(&mut self, id: &[u8; 16], index: u32, now: Millis) -> Result<Option<Vec<u8>>, TxError>;
    /// Stores the next chunk and counts it.
    async fn append_chunk(&mut self, id: &[u8; 16], index: u32, data: &[u8]) -> Result<(), TxError>;
    /// The total size of the unexpired blobs `user`'s devices created.
    async fn owned_blob_bytes(&mut self, user: &UserId, now: Millis) -> Result<i64, TxError>;
}

/// Deleting what has expired; each returns how many rows went.
#[async_trait]
pub trait ExpirySql: Send {
    /// Queue entries expired at `now`.
    async fn delete_expired_envelopes(&mut self, now: Millis) -> Result<u64, TxError>;
    /// Blobs expired at `now` (chunks go with them).
    async fn delete_expired_blobs(&mut self, now: Millis) -> Result<u64, TxError>;
    /// Blobs whose channel has no members left.
    async fn delete_unreachable_blobs(&mut self) -> Result<u64, TxError>;
    /// Channels with no members left (their blobs go with them).
    async fn delete_empty_channels(&mut self) -> Result<u64, TxError>;
    /// Hashes of key packages claimed before `before`.
    async fn delete_claimed_before(&mut self, before: Millis) -> Result<u64, TxError>;
    /// Idempotency records older than `before`.
    async fn delete_sent_before(&mut self, before: Millis) -> Result<u64, TxError>;
    /// Name reservations ended at `now`.
    async fn delete_expired_reservations(&mut self, now: Millis) -> Result<u64, TxError>;
    /// Link slots expired at `now`.
    async fn delete_expired_links(&mut self, now: Millis) -> Result<u64, TxError>;
    /// Envelopes queued and not yet acknowledged, over every device.
    async fn queued_envelopes(&mut self) -> Result<i64, TxError>;
}

/// Web Push subscriptions, waiting pushes and the VAPID key.
#[async_trait]
pub trait PushSql: Send {
    /// Stores or replaces the subscription of the device `device`; it is not notified.
    async fn upsert_push_subscription(&mut self, device: i64, sub: &PushSubscription, now: Millis) -> Result<(), TxError>;
    /// Removes the subscription of `device` (its waiting push goes with it).
    async fn delete_push_subscription(&mut self, device: &DeviceAddress) -> Result<(), TxError>;
    /// Removes the subscription of the device `device` if it still has `endpoint`.
    async fn delete_push_subscription_at(&mut self, device: i64, endpoint: &str) -> Result<(), TxError>;
    /// The subscription of `device`.
    async fn push_subscription_of(&mut self, device: &DeviceAddress) -> Result<Option<PushSubCols>, TxError>;
    /// Adds a push due at `due` for each of the devices `keys` that has a subscription, is
    /// not notified and has no push waiting.
    async fn schedule_pushes(&mut self, keys: &[i64], due: Millis) -> Result<(), TxError>;
    /// The device came for its queue: drops its waiting push and clears `notified`.
    async fn reset_push(&mut self, device: &DeviceAddress) -> Result<(), TxError>;
    /// Up to `limit` waiting pushes due at `now` with their subscriptions, earliest first,
    /// holding them (PostgreSQL: rows another claim holds are skipped).
    async fn due_pushes(&mut self, now: Millis, limit: u32) -> Result<Vec<PushJobCols>, TxError>;
    /// Sets the due time and attempt count of the waiting push of the device `device`.
    async fn set_push_due(&mut self, device: i64, due: Millis, attempts: i64) -> Result<(), TxError>;
    /// Drops the waiting push of the device `device`.
    async fn delete_pending_push(&mut self, device: i64) -> Result<(), TxError>;
    /// Marks the device `device` notified (until it acknowledges).
    async fn mark_notified(&mut self, device: i64) -> Result<(), TxError>;
    /// The earliest due time of any waiting push.
    async fn next_push_due(&mut self) -> Result<Option<i64>, TxError>;
    /// Stores the VAPID key unless one is stored.
    async fn insert_vapid_key(&mut self, key: &VapidKeyRow, now: Millis) -> Result<(), TxError>;
    /// The stored VAPID key: (private, public).
    async fn vapid_key(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>, TxError>;
}

/// Link slots (linking a device). A slot is open while `expires_at > now`; an expired one
/// is treated as absent by every statement here until the expiry job deletes it.
#[async_trait]
pub trait LinkSql: Send {
    /// How many of `user`'s slots are open at `now`.
    async fn open_link_count(&mut self, user: &UserId, now: Millis) -> Result<i64, TxError>;
    /// Deletes the slot `slot` if it expired at `now` (its name may then be used again).
    async fn delete_expired_link(&mut self, slot: &[u8; 32], now: Millis) -> Result<(), TxError>;
    /// Inserts an empty slot of `user` unless the name is taken; true when inserted.
    async fn insert_link(
        &mut self,
        slot: &[u8; 32],
        user: &UserId,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, TxError>;
    /// Stores `request` in the slot if it is open at `now` and holds no request yet; true
    /// when stored.
    async fn set_link_request(&mut self, slot: &[u8; 32], request: &[u8], now: Millis) -> Result<bool, TxError>;
    /// The request of `user`'s slot open at `now`: `None` when there is no such slot,
    /// `Some(None)` while it holds no request.
    async fn link_request_of(
        &mut self,
        slot: &[u8; 32],
        user: &UserId,
        now: Millis,
    ) -> Result<Option<Option<Vec<u8>>>, TxError>;
    /// Whether `user`'s slot open at `now` holds a request and an answer, holding its row.
    async fn lock_link(&mut self, slot: &[u8; 32], user: &UserId, now: Millis) -> Result<Option<(bool, bool)>, TxError>;
    /// Stores the answer of the slot (held by [`LinkSql::lock_link`]).
    async fn set_link_answer(&mut self, slot: &[u8; 32], answer: &[u8]) -> Result<(), TxError>;
    /// The answer of the slot open at `now`: `None` when there is no such slot, `Some(None)`
    /// while it holds no answer.
    async fn link_answer(&mut self, slot: &[u8; 32], now: Millis) -> Result<Option<Option<Vec<u8>>>, TxError>;
    /// Deletes the slot if it is open at `now` and holds an answer, returning the answer.
    async fn take_link_answer(&mut self, slot: &[u8; 32], now: Millis) -> Result<Option<Vec<u8>>, TxError>;
    /// Deletes `user`'s slot `slot`, open or not.
    async fn delete_link(&mut self, slot: &[u8; 32], user: &UserId) -> Result<(), TxError>;
}

/// Blocks: which accounts block which user names. Plain statements: a block changes under
/// the blocker's user row (held by the script), and fan-outs read it as it is.
#[async_trait]
pub trait BlockSql: Send {
    /// Records that `blocker` blocks `blocked` at `now` unless it does already; true when
    /// inserted.
    async fn insert_block(&mut self, blocker: &UserId, blocked: &UserId, now: Millis) -> Result<bool, TxError>;
    /// Removes `blocker`'s block of `blocked`, if any; true when there was one.
    async fn delete_block(&mut self, blocker: &UserId, blocked: &UserId) -> Result<bool, TxError>;
    /// How many users `blocker` blocks.
    async fn block_count(&mut self, blocker: &UserId) -> Result<i64, TxError>;
    /// The names `blocker` blocks, in no particular order.
    async fn blocked_by(&mut self, blocker: &UserId) -> Result<Vec<String>, TxError>;
    /// True when the account `blocker` blocks `blocked`.
    async fn blocks(&mut self, blocker: &UserId, blocked: &UserId) -> Result<bool, TxError>;
    /// The accounts owning any of the devices `keys` that block `blocked`, without repeats,
    /// in no particular order.
    async fn blockers_among(&mut self, keys: &[i64], blocked: &UserId) -> Result<Vec<String>, TxError>;
}

//! The server's storage: one trait, two real backends (SQLite embedded, PostgreSQL for a
//! cluster), one conformance suite that both pass.
//!
//! Everything here is ciphertext or routing metadata: user and device names, public keys,
//! opaque MLS payloads, channel membership. The RPC layer has already checked sizes and the
//! caller's identity; storage enforces the invariants that must hold atomically (device limit,
//! one commit per channel epoch, idempotent enqueue, membership for fan-out).
//!
//! Time is an argument (`now`, ms since the Unix epoch), so tests control it.

mod backend;
mod binds;
mod error;
mod group;
mod migrations;
pub mod postgres;
mod push;
mod rows;
mod scripts;
pub mod sqlite;
#[cfg(test)]
mod conformance;

use std::sync::Arc;

use async_trait::async_trait;
use qpq_proto::{ChannelId, ClientMsgId, DeviceAddress, DeviceId, DeviceRecord, Envelope, UserId};
use tokio::sync::broadcast;

pub use error::StoreError;
pub use push::{Leadership, PushJob, PushOutcome, PushSubscription, VapidKeyRow};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// What a wake-up says about one device. Wake-ups name devices by their 16 random bytes only
/// (no user names); they are hints — a receiver looks in storage before it acts on one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wake {
    /// The device has new envelopes.
    Queue(DeviceId),
    /// The device was revoked or its account deleted: its sessions end.
    Gone(DeviceId),
    /// Wake-ups from other nodes may have been missed (the PostgreSQL listener reconnected):
    /// every subscriber fetches and every logged-in device is looked up again.
    Resync,
}

/// A key package as stored: its hash (SHA-256 of the bytes) identifies it for the
/// "claimed once" rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPackageRow {
    /// SHA-256 of `data`.
    pub hash: [u8; 32],
    /// The TLS-serialised key package.
    pub data: Vec<u8>,
}

/// A key package handed out by [`Storage::claim_key_packages`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// Whose device.
    pub device: DeviceId,
    /// The key package.
    pub data: Vec<u8>,
    /// True when it is the device's last-resort package (which is not removed).
    pub last_resort: bool,
}

/// What an account's own devices learn of one of them besides its signed record (see
/// [`Storage::devices_about`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceAbout {
    /// Its label: ciphertext the account's devices made, set by the device itself
    /// ([`Storage::set_device_label`]); `None` when it has none.
    pub label: Option<Vec<u8>>,
    /// When it last logged in ([`Storage::touch_login`]); 0 before its first login.
    pub last_login: Millis,
}

/// A channel and its member devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRow {
    /// The id.
    pub id: ChannelId,
    /// The current epoch: the next accepted commit must carry it.
    pub epoch: u64,
    /// When it was created.
    pub created_at: Millis,
    /// The devices that receive its messages, sorted.
    pub members: Vec<DeviceAddress>,
}

/// A commit to apply (see [`Storage::commit`]).
#[derive(Clone, Debug)]
pub struct CommitInput {
    /// The channel.
    pub channel: ChannelId,
    /// The committing device.
    pub sender: DeviceAddress,
    /// The epoch the commit was made in.
    pub epoch: u64,
    /// The MLS commit, fanned out to current members but the sender.
    pub commit: Vec<u8>,
    /// The MLS Welcome for `add` (may be empty when `add` is empty).
    pub welcome: Vec<u8>,
    /// Devices to add (they get the Welcome and become members).
    pub add: Vec<DeviceAddress>,
    /// Devices to remove (they still get the commit, then stop being members).
    pub remove: Vec<DeviceAddress>,
    /// When the commit brings in new leaves (it adds devices, or a member rejoins), the epoch
    /// they join in: one past the epoch the commit's framing names. That is the channel's
    /// next epoch unless its members refused a commit the node accepted (they then count
    /// epochs behind the node until they rejoin). Application messages of earlier epochs are
    /// refused from then on.
    pub joined_at: Option<u64>,
    /// Idempotency key, unique per sender device.
    pub client_msg_id: ClientMsgId,
    /// When undelivered copies of the commit and the Welcome expire (0 = never).
    pub expires_at: Millis,
    /// Most envelopes a recipient's queue may hold; past it the commit is `QuotaExceeded`.
    pub max_queue: u64,
    /// Server time of the call.
    pub now: Millis,
    /// When the added devices are pushed (Web Push) if they have not fetched by then.
    pub push_at: Millis,
    /// The public state of the channel's MLS group after this commit, kept with the new
    /// epoch (none for a channel whose state the node does not keep).
    pub group: Option<Vec<u8>>,
}

/// What an accepted commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOutcome {
    /// The channel's epoch after the commit.
    pub epoch: u64,
    /// When it was first accepted.
    pub server_time: Millis,
    /// True when this call was a retry of an already accepted commit (nothing was done again).
    pub duplicate: bool,
}

/// An application message to fan out (see [`Storage::enqueue`]).
#[derive(Clone, Debug)]
pub struct EnqueueInput {
    /// The channel.
    pub channel: ChannelId,
    /// The sending device.
    pub sender: DeviceAddress,
    /// The MLS application message.
    pub payload: Vec<u8>,
    /// The epoch the message was made in (from its `PrivateMessage` header): not before the
    /// channel's latest devices joined, not after its current epoch.
    pub epoch: u64,
    /// Idempotency key, unique per sender device.
    pub client_msg_id: ClientMsgId,
    /// When undelivered copies expire (0 = never).
    pub expires_at: Millis,
    /// Most envelopes a recipient's queue may hold; past it the enqueue is `QuotaExceeded`.
    pub max_queue: u64,
    /// Server time of the call.
    pub now: Millis,
    /// When recipients are pushed (Web Push) if they have not fetched by then.
    pub push_at: Millis,
}

/// What an enqueue did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueOutcome {
    /// When it was first accepted.
    pub server_time: Millis,
    /// True when this call was a retry of an already accepted enqueue.
    pub duplicate: bool,
}

/// A blob's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRow {
    /// 16 random bytes chosen by the server.
    pub id: [u8; 16],
    /// The channel whose members may read it.
    pub channel: ChannelId,
    /// Total size in bytes.
    pub size: u64,
    /// Size of every chunk but the last.
    pub chunk_size: u32,
    /// Chunks `0..chunks_stored` are present.
    pub chunks_stored: u32,
    /// When it is deleted (0 = never).
    pub expires_at: Millis,
}

impl BlobRow {
    /// Number of chunks the blob has when complete.
    pub fn chunk_count(&self) -> u32 {
        if self.size == 0 {
            0
        } else {
            self.size.div_ceil(u64::from(self.chunk_size)) as u32
        }
    }

    /// Expected length of chunk `index`.
    pub fn chunk_len(&self, index: u32) -> Option<usize> {
        if index >= self.chunk_count() {
            return None;
        }
        let start = u64::from(index) * u64::from(self.chunk_size);
        Some((self.size - start).min(u64::from(self.chunk_size)) as usize)
    }

    /// True when every chunk is stored.
    pub fn complete(&self) -> bool {
        self.chunks_stored == self.chunk_count()
    }
}

/// What [`Storage::expire`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpiryStats {
    /// Queue entries past their expiry.
    pub envelopes: u64,
    /// Blobs past their expiry or unreachable (with their chunks).
    pub blobs: u64,
    /// Idempotency records and login leftovers past their retention.
    pub records: u64,
    /// Channels without members.
    pub channels: u64,
    /// Hashes of key packages claimed long enough ago.
    pub claimed: u64,
    /// Link slots past their expiry.
    pub links: u64,
}

/// The storage every server node uses. Implementations must be correct when many nodes and
/// tasks call them at once (PostgreSQL: several processes on one database).
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    // --- identities and devices ---------------------------------------------------------

    /// Creates `user` with its identity key and first device. `UserExists` when the name is
    /// registered or reserved (cooling off after deletion) until after `now`.
    async fn create_user(
        &self,
        user: &UserId,
        identity_key: &[u8; 32],
        first_device: &DeviceRecord,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// The identity key of `user`, if registered.
    async fn identity_key(&self, user: &UserId) -> Result<Option<[u8; 32]>, StoreError>;

    /// The devices of `user`, ordered by creation.
    async fn devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError>;

    /// One device's record.
    async fn device(&self, device: &DeviceAddress) -> Result<Option<DeviceRecord>, StoreError>;

    /// The devices of `user`, ordered by creation like [`Storage::devices`], each with what
    /// the account's own devices learn of it (label and last login), read in one statement.
    async fn devices_about(&self, user: &UserId) -> Result<Vec<(DeviceRecord, DeviceAbout)>, StoreError>;

    /// Sets `device`'s label; `None` (or an empty label) clears it. Only the device itself
    /// sets its label: `Revoked` when it is gone.
    async fn set_device_label(&self, device: &DeviceAddress, label: Option<&[u8]>) -> Result<(), StoreError>;

    /// Records that `device` logged in at `now` (one statement). `NoSuchDevice` when absent.
    async fn touch_login(&self, device: &DeviceAddress, now: Millis) -> Result<(), StoreError>;

    /// Adds a device to an existing user. `TooManyDevices` when the user already has `max`
    /// (checked atomically); `NoSuchUser`; adding an existing device id again is
    /// `DeviceExists`. With `by` (the calling device), `Revoked` unless it still exists, in
    /// the same transaction.
    async fn add_device(&self, record: &DeviceRecord, max: usize, by: Option<&DeviceAddress>, now: Millis) -> Result<(), StoreError>;

    /// Removes a device with its key packages, delivery queue and channel memberships, and
    /// announces it [`Wake::Gone`]. `NoSuchDevice` when absent; `Revoked` when `by` is gone.
    async fn revoke_device(&self, device: &DeviceAddress, by: Option<&DeviceAddress>) -> Result<(), StoreError>;

    /// Removes the user and everything of theirs (devices, key packages, queues, memberships,
    /// blobs they created, link slots, their blocks), announcing every device [`Wake::Gone`].
    /// The name stays reserved until `reserved_until`. `Revoked` when `by` is gone.
    async fn delete_user(&self, user: &UserId, reserved_until: Millis, by: Option<&DeviceAddress>) -> Result<(), StoreError>;

    /// Restores `record.user`'s account on the new device `record`, in one transaction:
    /// every device the account has is removed (with its key packages, queue and
    /// memberships, as by [`Storage::revoke_device`]) and announced [`Wake::Gone`], `record`
    /// is stored, and every device of another account that shares a channel with one of the
    /// removed devices gets one [`qpq_proto::EnvelopeKind::Devices`] envelope per such
    /// channel (payload: the user's name, expiring at `expires_at`; never refused for a full
    /// queue, no Web Push) and is woken. `NoSuchUser`; `DeviceExists` when `record`'s device
    /// id is registered already (nothing is changed then).
    async fn restore_device(&self, record: &DeviceRecord, now: Millis, expires_at: Millis) -> Result<(), StoreError>;

    // --- key packages ---------------------------------------------------------------------

    /// Stores one-time key packages for `device` and, when given, replaces its last-resort
    /// package. A package whose hash was claimed before is refused with `KeyPackageReused`,
    /// and more than `max_held` one-time packages with `QuotaExceeded` (nothing of the call is
    /// stored either way). Returns how many one-time packages are available.
    async fn add_key_packages(
        &self,
        device: &DeviceAddress,
        packages: &[KeyPackageRow],
        last_resort: Option<&KeyPackageRow>,
        max_held: u32,
    ) -> Result<u32, StoreError>;

    /// Claims one package for every device of `user` except `except`: removes and returns a
    /// one-time package (remembering its hash as claimed), or returns the last-resort package
    /// (kept) when none is left. Devices with neither are left out. Concurrent claims never
    /// hand the same one-time package to two callers. `NoSuchUser` when unknown; `Revoked`
    /// when `except` (the caller) is gone. A claimed hash is remembered as claimed at `now`.
    async fn claim_key_packages(
        &self,
        user: &UserId,
        except: Option<&DeviceAddress>,
        only: &[DeviceId],
        now: Millis,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// How many one-time packages `device` has left.
    async fn key_package_count(&self, device: &DeviceAddress) -> Result<u32, StoreError>;

    // --- channels -------------------------------------------------------------------------

    /// Creates a channel at epoch 0 with `creator` as its only member and `group` as the
    /// public state of its MLS group. Calling again with the same creator returns the
    /// existing channel and keeps the first state (a retry); another caller gets
    /// `ChannelExists`.
    async fn create_channel(
        &self,
        channel: &ChannelId,
        creator: &DeviceAddress,
        group: Option<&[u8]>,
        now: Millis,
    ) -> Result<ChannelRow, StoreError>;

    /// A channel with its members.
    async fn channel(&self, channel: &ChannelId) -> Result<Option<ChannelRow>, StoreError>;

    /// The public state of the channel's MLS group as of its current epoch (none for a
    /// channel made before the node kept it, or no such channel).
    async fn group_state(&self, channel: &ChannelId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps `info` as the GroupInfo of the channel's group at `epoch`, if the channel is still
    /// at that epoch (`StaleEpoch` otherwise) and `caller` is a member (`NotMember`).
    async fn put_group_info(&self, channel: &ChannelId, caller: &DeviceAddress, epoch: u64, info: &[u8]) -> Result<(), StoreError>;

    /// The group's state with the GroupInfo kept for its current epoch (none when the channel
    /// has no kept state).
    async fn group_info(&self, channel: &ChannelId) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, StoreError>;

    /// Applies a commit atomically (see also the push rule of [`Storage::enqueue`], which
    /// applies to the added devices and their Welcome): `NoSuchChannel`; `NotMember` unless the sender is a member;
    /// a retry with the same (sender, client_msg_id) as an accepted commit returns its outcome
    /// with `duplicate` set and changes nothing; `StaleEpoch` unless `epoch` is the channel's
    /// current epoch. Otherwise: the epoch goes up by one (with `group` as the group's state), the commit is queued for every
    /// member but the sender (removed devices included), removed devices stop being members,
    /// added devices (which must exist: `NoSuchDevice`) become members and get the Welcome.
    /// Recipients are woken. A commit adding a device of an account that blocks the sender's
    /// is `NotAllowed` (after the checks above; nothing is changed), whoever else it adds.
    async fn commit(&self, input: &CommitInput) -> Result<CommitOutcome, StoreError>;

    /// Queues an application message for every member of the channel but the sender, with
    /// the same rules for `NoSuchChannel`, `NotMember` and retries as [`Storage::commit`].
    /// A message of an epoch before the one the channel's latest added devices joined in is
    /// `StaleEpoch` (they could not read it: the sender encrypts it again after the commit
    /// that added them), of an epoch after the channel's `FutureEpoch`; a retry of one
    /// already accepted is answered as a duplicate whatever the epochs are now.
    /// Recipients are woken. A recipient with a push subscription and no push outstanding
    /// gets one waiting push due at `push_at` (one per device: later messages join it). When
    /// the members' devices belong to exactly two accounts and the one that is not the
    /// sender's blocks the sender's, its devices get nothing (not queued, woken or pushed)
    /// and the outcome is the same as if they had; with three accounts or more, blocks
    /// change nothing here.
    async fn enqueue(&self, input: &EnqueueInput) -> Result<EnqueueOutcome, StoreError>;

    // --- delivery queues ------------------------------------------------------------------

    /// Up to `limit` envelopes of `device` with `seq > after`, in order, leaving out expired
    /// ones, and stopping before the envelope whose payload would take the total past
    /// `max_bytes` (the first is returned whatever its size, so a reader always progresses);
    /// the cut is made in the query, so payloads past it are never loaded. Sequence numbers
    /// per device only grow and are never reused, even after acks. `Revoked` when `device`
    /// is gone.
    async fn fetch(&self, device: &DeviceAddress, after: u64, limit: u32, max_bytes: u64, now: Millis) -> Result<Vec<Envelope>, StoreError>;

    /// Deletes the envelopes of `device` with `seq <= up_to`. The device has come for its
    /// queue: its waiting push is dropped and its next message may push again.
    async fn ack(&self, device: &DeviceAddress, up_to: u64) -> Result<(), StoreError>;

    // --- blobs ----------------------------------------------------------------------------

    /// Creates an empty blob readable by members of `channel`. `QuotaExceeded` when the
    /// owner's account would hold more than `max_owned` bytes of unexpired blobs.
    async fn create_blob(&self, blob: &BlobRow, owner: &DeviceAddress, max_owned: u64, now: Millis) -> Result<(), StoreError>;

    /// A blob's metadata (`None` when absent or expired at `now`).
    async fn blob(&self, id: &[u8; 16], now: Millis) -> Result<Option<BlobRow>, StoreError>;

    /// Stores chunk `index`. It must be the next one (`index == chunks_stored`) or a repeat of
    /// a stored one with identical bytes (a retry); anything else is `BadChunk`. The length
    /// must be [`BlobRow::chunk_len`]. Returns the updated metadata. `Revoked` when `by` is
    /// gone.
    async fn put_chunk(&self, id: &[u8; 16], index: u32, data: &[u8], by: Option<&DeviceAddress>, now: Millis) -> Result<BlobRow, StoreError>;

    /// One stored chunk.
    async fn get_chunk(&self, id: &[u8; 16], index: u32, now: Millis) -> Result<Option<Vec<u8>>, StoreError>;

    // --- Web Push ---------------------------------------------------------------------------

    /// Registers or replaces `device`'s push subscription (`NoSuchDevice` when absent).
    async fn set_push_subscription(
        &self,
        device: &DeviceAddress,
        subscription: &PushSubscription,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// Removes `device`'s push subscription and its waiting push, if any.
    async fn remove_push_subscription(&self, device: &DeviceAddress) -> Result<(), StoreError>;

    /// `device`'s push subscription.
    async fn push_subscription(&self, device: &DeviceAddress) -> Result<Option<PushSubscription>, StoreError>;

    /// The cluster's VAPID key: the stored one, or `candidate` stored now when there is none.
    /// Every caller gets the same key, however many race.
    async fn vapid_key(&self, candidate: &VapidKeyRow, now: Millis) -> Result<VapidKeyRow, StoreError>;

    /// Claims up to `limit` pushes due at `now`: each is leased until `lease_until` (not
    /// handed out again before then, so a sender that dies loses nothing) and must be ended
    /// with [`Storage::finish_push`]. Concurrent claims never hand out the same push.
    async fn claim_pushes(&self, now: Millis, lease_until: Millis, limit: u32) -> Result<Vec<PushJob>, StoreError>;

    /// Ends a claimed push: sent (the device is marked notified until it acknowledges), gone
    /// (the subscription is removed, unless it was replaced since the claim), tried again
    /// later, or given up.
    async fn finish_push(&self, job: &PushJob, outcome: PushOutcome) -> Result<(), StoreError>;

    /// When the earliest waiting push is due (leased ones at the end of their lease).
    async fn next_push_due(&self) -> Result<Option<Millis>, StoreError>;

    /// Tries to become the cluster's one push sender: `Some` while this node holds the role
    /// (PostgreSQL: a session advisory lock on a connection of its own; SQLite, one process
    /// per database: always). Claims stay correct without it; it only keeps one sender busy.
    async fn lead_pushes(&self) -> Result<Option<Leadership>, StoreError>;

    // --- linking a device ----------------------------------------------------------------------
    //
    // A slot relays one request and one answer, both ciphertext, between a new device (which
    // knows only the slot's name, derived from the link code) and a device of the account
    // that opened it. A slot is open from `open_link` until `expires_at`, until its answer
    // is taken, or until it is closed; expired slots count as absent everywhere and are
    // deleted by `expire`. `NoSuchLink` answers every question about a slot that is not
    // open (or, for the account's side, not the caller's account's), so it tells an
    // unauthenticated caller nothing more.

    /// Opens the slot `slot` for `owner`'s account until `expires_at`. `QuotaExceeded` when
    /// the account already has `max_open` open slots; `LinkExists` when an open slot has that
    /// name (an expired one is replaced); `Revoked` when `owner` is gone.
    async fn open_link(
        &self,
        slot: &[u8; 32],
        owner: &DeviceAddress,
        max_open: u32,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError>;

    /// Stores the new device's `request` in the open slot `slot` (the unauthenticated side).
    /// `NoSuchLink` when the slot is not open or already holds a request: a wrong, expired or
    /// used code gets the same answer. Of concurrent requests exactly one is stored.
    async fn put_link_request(&self, slot: &[u8; 32], request: &[u8], now: Millis) -> Result<(), StoreError>;

    /// The request in `owner`'s open slot `slot`, `None` while there is none yet. One read,
    /// no transaction (polled). `NoSuchLink` when the slot is not open or another account's.
    async fn link_request(&self, slot: &[u8; 32], owner: &UserId, now: Millis) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `answer` in the open slot `slot` of `by`'s account. `NoSuchLink` when the slot
    /// is not open, another account's, or holds no request yet; `LinkAnswered` when it was
    /// answered already; `Revoked` when `by` is gone.
    async fn answer_link(
        &self,
        slot: &[u8; 32],
        answer: &[u8],
        by: &DeviceAddress,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// The answer in the open slot `slot` (the unauthenticated side), deleting the slot in
    /// the same statement, so an answer is handed out once; `None` while there is none yet
    /// (one indexed read, no write: this is polled). `NoSuchLink` when the slot is not open.
    async fn take_link_answer(&self, slot: &[u8; 32], now: Millis) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes the slot `slot` of `by`'s account, open or expired; nothing to do when there
    /// is none (or it is another account's). `Revoked` when `by` is gone.
    async fn close_link(&self, slot: &[u8; 32], by: &DeviceAddress) -> Result<(), StoreError>;

    // --- blocking --------------------------------------------------------------------------------
    //
    // Blocks are per account: a device blocks for its whole account, and every device of the
    // account reads the same list. They are enforced inside the fan-out transactions: see
    // [`Storage::enqueue`] and [`Storage::commit`].

    /// `by`'s account blocks `user` (any name, registered or not, of any domain), or with
    /// `blocked` false unblocks them; setting what is already set changes nothing. A change
    /// queues an `Account` hint (empty, on [`ChannelId::account`], expiring at `expires_at`)
    /// for each other device of the account.
    /// `BlockSelf` for `by`'s own account; `QuotaExceeded` when the account would block more
    /// than `max` users (nothing is stored); `Revoked` when `by` is gone.
    async fn set_blocked(
        &self,
        by: &DeviceAddress,
        user: &UserId,
        blocked: bool,
        max: usize,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError>;

    /// The users `by`'s account blocks, sorted. `Revoked` when `by` is gone.
    async fn blocked_users(&self, by: &DeviceAddress) -> Result<Vec<UserId>, StoreError>;

    // --- maintenance and wake-ups -----------------------------------------------------------

    /// Envelopes queued and not yet acknowledged, over every device (the node's queue depth).
    async fn queued_envelopes(&self) -> Result<u64, StoreError>;

    /// Deletes what has expired at `now`: queue entries, blobs, link slots, and idempotency
    /// records older than `records_before`; hashes of key packages claimed before
    /// `claims_before`; and channels nobody is a member of any more, with their blobs.
    async fn expire(&self, now: Millis, records_before: Millis, claims_before: Millis) -> Result<ExpiryStats, StoreError>;

    /// Devices with new envelopes, and devices that are gone, from this node and (PostgreSQL)
    /// every other node using the same database. Lagging receivers miss wake-ups, never
    /// envelopes: subscribers fetch, and sessions re-check their device on every call.
    fn wakeups(&self) -> broadcast::Receiver<Wake>;

    /// `Ok` while `caller` exists; `Revoked` once it was revoked or its account deleted.
    async fn caller_alive(&self, caller: &DeviceAddress) -> Result<(), StoreError>;
}

/// Opens the storage named by `url`: `sqlite://PATH` (created if missing) or
/// `postgres://…`, whose nodes wake each other through NATS at `nats` when given (else
/// through PostgreSQL). Runs migrations.
pub async fn open(url: &str, nats: Option<&str>) -> Result<Arc<dyn Storage>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStorage::connect_with_bus(url, nats).await?))
    } else if nats.is_some() {
        Err(StoreError::Config(
            "a NATS wake-up bus is for nodes sharing a PostgreSQL database; an SQLite node has no other nodes to wake".into(),
        ))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(sqlite::SqliteStorage::open(path).await?))
    } else {
        Err(StoreError::Config(format!(
            "unknown database URL {url:?}: use sqlite://PATH or postgres://…"
        )))
    }
}

/// Milliseconds since the Unix epoch: the node's clock, for storage times and for the callers
/// that compute them (RPC, the push sender).
pub(crate) fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

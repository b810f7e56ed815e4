//! What a logged-in device may do. Every method checks the calling device against the data
//! it touches; nothing here trusts a user or device named in the parameters.
//!
//! Every method begins with [`SessionImpl::begin`]: a slot among the session's calls in
//! flight (at most `--max-calls-in-flight`, else `quota_exceeded`) and the check that the
//! calling device still exists (`device_revoked` once it was revoked or its account
//! deleted). Methods that write also repeat that check as the first statement of their
//! storage transaction, so nothing is written for a device revoked meanwhile.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use capnp::capability::Rc as CapRc;
use qpq_proto::node_capnp::{blob_info, channel_info, session};
use qpq_proto::{wire, ChannelId, ClientMsgId, DeviceAddress, ErrorCode, MAX_DEVICES_PER_USER};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::delivery;
use super::links::{check_payload, read_slot, MAX_LINK_ANSWER_BYTES, MAX_OPEN_LINKS};
use super::{now_ms, rate_err, store_err, Ctx};
use crate::metrics::track;
use crate::group_state::{self, GroupError, Leaf};
use crate::mls_frame;
use crate::push;
use crate::storage::{BlobRow, ChannelRow, CommitInput, DeviceAbout, EnqueueInput, KeyPackageRow, PushSubscription, Storage};

/// Most key packages accepted in one upload.
const MAX_KEY_PACKAGES_PER_UPLOAD: u32 = 100;
/// Largest key package accepted.
const MAX_KEY_PACKAGE_BYTES: usize = 16 << 10;
/// Largest device label accepted (ciphertext of a short name such as "Chromium on Linux").
const MAX_DEVICE_LABEL_BYTES: usize = 256;
/// Most devices named in one commit's add or remove list.
const MAX_COMMIT_DEVICES: u32 = 1000;
/// Longest disappearing-message timer, in seconds (one year).
const MAX_TTL_SECS: u32 = 365 * 24 * 3600;
/// Most envelopes returned by one fetch.
pub(crate) const MAX_FETCH: u32 = 500;
/// Most payload bytes one fetch returns when the caller names no smaller bound (at least one
/// envelope is always returned).
pub(crate) const MAX_FETCH_BYTES: u64 = 4 << 20;

/// A session capability bound to one device.
pub(crate) struct SessionImpl {
    ctx: Rc<Ctx>,
    device: DeviceAddress,
    /// Calls of this session being served now.
    in_flight: Rc<Cell<u32>>,
    /// True while this session's subscription runs (one per session).
    subscribed: Rc<Cell<bool>>,
    /// This session's acknowledgements, merged while one is being written.
    acks: Rc<Acks>,
    /// Counts this session among the node's live ones until it is dropped.
    _alive: qpq_metrics::GaugeGuard,
}

/// One call in flight; dropping it frees the slot.
struct Call(Rc<Cell<u32>>);

impl Drop for Call {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// A session's acknowledgements run one at a time, and each covers every one asked for while
/// the one before was being written: a listener that acknowledges each small batch in the
/// background then costs one write per round, not one per batch.
#[derive(Default)]
pub(crate) struct Acks {
    /// The highest sequence number asked for so far.
    wanted: Cell<u64>,
    /// How many acknowledgements were begun in storage.
    begun: Cell<u64>,
    /// The last one that succeeded: (its number among those begun, the sequence number).
    done: Cell<(u64, u64)>,
    /// Whose turn it is to write.
    turn: tokio::sync::Mutex<()>,
}

impl Acks {
    /// Acknowledges `device`'s queue up to `up_to` in `storage`, or waits for a write begun
    /// after this call that covers it. A caller dropped while waiting or writing leaves the
    /// rest to the others (each of them writes or finds its own covered).
    pub(crate) async fn ack(&self, storage: &dyn Storage, device: &DeviceAddress, up_to: u64) -> Result<(), capnp::Error> {
        self.wanted.set(self.wanted.get().max(up_to));
        let arrived = self.begun.get();
        let _turn = self.turn.lock().await;
        let (run, acked) = self.done.get();
        if run > arrived && acked >= up_to {
            return Ok(());
        }
        let run = self.begun.get() + 1;
        self.begun.set(run);
        let target = self.wanted.get();
        storage.ack(device, target).await.map_err(|e| store_err("ack", e))?;
        if run > self.done.get().0 {
            self.done.set((run, target));
        }
        Ok(())
    }
}

impl SessionImpl {
    pub fn new(ctx: Rc<Ctx>, device: DeviceAddress) -> Self {
        let _alive = ctx.metrics.sessions.track();
        SessionImpl { ctx, device, in_flight: Rc::default(), subscribed: Rc::default(), acks: Rc::default(), _alive }
    }

    /// Where every method starts: a slot among the calls in flight, then the check that the
    /// calling device still exists.
    async fn begin(&self) -> Result<Call, capnp::Error> {
        let call = self.slot()?;
        self.ctx.storage.caller_alive(&self.device).await.map_err(|e| store_err("check caller", e))?;
        Ok(call)
    }

    /// Where the methods of the message path start (enqueue, fetch, ack): a slot among the
    /// calls in flight only. Their storage scripts check the caller in the same transaction
    /// or statement as their work (a device that is gone gets `device_revoked` from there), so
    /// a check of its own would cost each message one more storage round trip and tell
    /// nothing more.
    fn slot(&self) -> Result<Call, capnp::Error> {
        let n = self.in_flight.get();
        let max = self.ctx.config.max_calls_in_flight;
        if n >= max {
            return Err(wire::error(
                ErrorCode::QuotaExceeded,
                format!("this session already has {max} calls in flight; wait for their answers"),
            ));
        }
        self.in_flight.set(n + 1);
        Ok(Call(self.in_flight.clone()))
    }

    /// When an envelope sent now expires: the node's envelope lifetime, or the message's own
    /// timer when shorter.
    fn expiry(&self, now: u64, ttl_secs: u32) -> u64 {
        let lifetime = self.ctx.config.envelope_days.saturating_mul(86_400_000);
        let ttl = u64::from(ttl_secs) * 1000;
        let keep = match (ttl, lifetime) {
            (0, 0) => return 0,
            (0, l) => l,
            (t, 0) => t,
            (t, l) => t.min(l),
        };
        now.saturating_add(keep)
    }

    /// Takes one of the account's sends (enqueues and commits).
    fn take_send(&self) -> Result<(), capnp::Error> {
        self.ctx.rates.send(&self.device.user, now_ms()).map_err(|ms| rate_err("messages sent", ms))
    }

    /// The channel, if the caller is one of its members.
    async fn member_channel(&self, channel: &ChannelId) -> Result<ChannelRow, capnp::Error> {
        let row = self
            .ctx
            .storage
            .channel(channel)
            .await
            .map_err(|e| store_err("channel", e))?
            .ok_or_else(|| wire::error(ErrorCode::NoSuchChannel, "no such conversation"))?;
        if !row.members.contains(&self.device) {
            return Err(wire::error(ErrorCode::NotMember, "you are not a member of this conversation"));
        }
        Ok(row)
    }

    /// The blob, if the caller is a member of its channel.
    async fn member_blob(&self, id: &[u8]) -> Result<BlobRow, capnp::Error> {
        let id: [u8; 16] = id.try_into().map_err(|_| wire::bad("blobId", "must be 16 bytes"))?;
        let blob = self
            .ctx
            .storage
            .blob(&id, now_ms())
            .await
            .map_err(|e| store_err("blob", e))?
            .ok_or_else(|| wire::error(ErrorCode::NoSuchBlob, "no such file (it may have expired)"))?;
        self.member_channel(&blob.channel).await?;
        Ok(blob)
    }

    /// When recipients of something queued at `now` are pushed if they have not fetched it.
    fn push_at(&self, now: u64) -> u64 {
        now + self.ctx.config.push_delay_ms
    }

    /// The public state of a new channel's group, from the GroupInfo its creator hands in:
    /// a new group of that id whose only leaf is the calling device with its registered key.
    async fn first_group_state(&self, channel: &ChannelId, info: &[u8]) -> Result<Vec<u8>, capnp::Error> {
        if info.is_empty() {
            return Err(bad_mls("the GroupInfo", "it is missing (an app from before this node's version); reload the app"));
        }
        let (ch, info) = (channel.clone(), info.to_vec());
        let created = blocking(move || group_state::create(&ch, &info)).await?;
        let created = created.map_err(|e| bad_mls("the GroupInfo", e))?;
        match created.leaves.as_slice() {
            [only] if only.device == self.device => {
                if !self.registered(std::slice::from_ref(only)).await? {
                    return Err(bad_mls("the GroupInfo", UNREGISTERED));
                }
            }
            _ => return Err(bad_mls("the GroupInfo", "a new conversation holds its creator's device alone")),
        }
        Ok(created.state.0)
    }

    /// Checks a commit against the group the node keeps for `channel` ([`group_state`]) and
    /// returns the group's state after it, to keep if storage accepts the commit. `None` for a
    /// channel made before the node kept its group (framing checks only), and for a commit made
    /// in an epoch the group has left: storage then answers a retry with its first outcome and
    /// anything else with `stale_epoch`.
    async fn check_group_commit(
        &self,
        channel: &ChannelId,
        epoch: u64,
        commit: &[u8],
        add: &[DeviceAddress],
        remove: &[DeviceAddress],
    ) -> Result<Option<Vec<u8>>, capnp::Error> {
        let refuse = |e: &dyn std::fmt::Display| bad_mls("the commit", e);
        // Who may commit at all is answered before what the commit says.
        self.member_channel(channel).await?;
        let frame = mls_frame::read_frame(commit).map_err(|e| refuse(&e))?;
        let Some(state) = self.ctx.storage.group_state(channel).await.map_err(|e| store_err("group_state", e))? else {
            if frame.external_commit {
                return Err(refuse(&"this conversation is older than rejoining; it cannot be joined from outside"));
            }
            return Ok(None);
        };
        let made = frame.epoch;
        if made != epoch {
            // The channel's epoch and the group's move together once the node keeps the group.
            return Err(refuse(&format!("it was made in epoch {made} but is sent for epoch {epoch}")));
        }
        let (ch, state, bytes) = (channel.clone(), group_state::Stored(state), commit.to_vec());
        let checked = match blocking(move || group_state::check_commit(&ch, &state, &bytes)).await? {
            Ok(c) => c,
            Err(GroupError::Stale { .. }) => return Ok(None),
            Err(e) => return Err(refuse(&e)),
        };
        if checked.sender.device != self.device {
            return Err(refuse(&"it is signed by another device's leaf"));
        }
        let mut new_leaves = checked.added.clone();
        new_leaves.extend(checked.path.clone());
        if !self.registered(&new_leaves).await? {
            return Err(refuse(&UNREGISTERED));
        }
        let same = |a: Vec<DeviceAddress>, b: &[DeviceAddress]| {
            let mut b = b.to_vec();
            let mut a = a;
            a.sort();
            b.sort();
            b.dedup();
            a == b
        };
        if !same(checked.added.iter().map(|l| l.device.clone()).collect(), add) {
            return Err(refuse(&"the devices it adds are not the devices listed to add"));
        }
        if !same(checked.removed.clone(), remove) {
            return Err(refuse(&"the devices it removes are not the devices listed to remove"));
        }
        Ok(Some(checked.state.0))
    }

    /// Whether every leaf names a device of this node's directory and carries the key
    /// registered for it (as every member's client checks, so the node does not accept a leaf
    /// the members refuse).
    async fn registered(&self, leaves: &[Leaf]) -> Result<bool, capnp::Error> {
        let mut records: std::collections::HashMap<qpq_proto::UserId, Vec<qpq_proto::DeviceRecord>> = Default::default();
        for l in leaves {
            if !records.contains_key(&l.device.user) {
                let devices = self.ctx.storage.devices(&l.device.user).await.map_err(|e| store_err("devices", e))?;
                records.insert(l.device.user.clone(), devices);
            }
            let registered = records[&l.device.user]
                .iter()
                .any(|r| r.device_id == l.device.device && r.device_key[..] == l.key[..]);
            if !registered {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn check_size(&self, field: &str, len: usize) -> Result<(), capnp::Error> {
        let max = self.ctx.config.max_message_bytes;
        if len > max {
            return Err(wire::error(ErrorCode::TooLarge, format!("{field} is {len} bytes; this server accepts at most {max}")));
        }
        Ok(())
    }
}

/// A `bad_mls_message` refusal: `what` is not the MLS message the call needs.
fn bad_mls(what: &str, e: impl std::fmt::Display) -> capnp::Error {
    wire::error(ErrorCode::BadMlsMessage, format!("{what} is refused: {e}"))
}

/// Why a leaf is refused by the directory check.
const UNREGISTERED: &str = "a member's key is not the key the directory holds for the device it names";

/// Runs CPU-bound MLS work (verifying signatures, hashing trees) off the RPC thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, capnp::Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| wire::error(ErrorCode::Internal, "the server could not complete the request; try again"))
}

fn client_msg_id(d: &[u8]) -> Result<ClientMsgId, capnp::Error> {
    ClientMsgId::from_slice(d).map_err(|e| wire::bad("clientMsgId", e))
}

fn write_channel(mut b: channel_info::Builder<'_>, row: &ChannelRow) {
    b.set_channel_id(row.id.as_bytes());
    b.set_epoch(row.epoch);
    b.set_created_at(row.created_at);
    let mut list = b.init_members(row.members.len() as u32);
    for (i, m) in row.members.iter().enumerate() {
        wire::write_device_address(list.reborrow().get(i as u32), m);
    }
}

fn write_blob(mut b: blob_info::Builder<'_>, row: &BlobRow) {
    b.set_blob_id(&row.id);
    b.set_size(row.size);
    b.set_chunk_size(row.chunk_size);
    b.set_chunks_stored(row.chunks_stored);
    b.set_complete(row.complete());
}

impl session::Server for SessionImpl {
    fn whoami(
        self: CapRc<Self>,
        _: session::WhoamiParams,
        mut results: session::WhoamiResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "whoami", async move {
            let _call = self.begin().await?;
            wire::write_device_address(results.get().init_device(), &self.device);
            Ok(())
        })
    }

    fn list_devices(
        self: CapRc<Self>,
        params: session::ListDevicesParams,
        mut results: session::ListDevicesResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "listDevices", async move {
            let _call = self.begin().await?;
            let user = wire::read_user(params.get()?.get_user()?, "user")?;
            let st = &self.ctx.storage;
            let ik = st
                .identity_key(&user)
                .await
                .map_err(|e| store_err("identity_key", e))?
                .ok_or_else(|| wire::error(ErrorCode::NoSuchUser, format!("there is no user {user}")))?;
            // Labels and last logins are for the account's own devices only: anyone else gets
            // the public records and an empty `about`.
            let (devices, about): (_, Vec<DeviceAbout>) = if user == self.device.user {
                let found = st.devices_about(&user).await.map_err(|e| store_err("devices_about", e))?;
                found.into_iter().unzip()
            } else {
                (st.devices(&user).await.map_err(|e| store_err("devices", e))?, Vec::new())
            };
            let mut r = results.get();
            r.set_identity_key(&ik);
            let mut list = r.reborrow().init_devices(devices.len() as u32);
            for (i, d) in devices.iter().enumerate() {
                wire::write_device_record(list.reborrow().get(i as u32), d);
            }
            let mut list = r.init_about(about.len() as u32);
            for (i, a) in about.iter().enumerate() {
                let mut b = list.reborrow().get(i as u32);
                b.set_label(a.label.as_deref().unwrap_or_default());
                b.set_last_login(a.last_login);
            }
            Ok(())
        })
    }

    fn add_device(
        self: CapRc<Self>,
        params: session::AddDeviceParams,
        _: session::AddDeviceResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "addDevice", async move {
            let _call = self.begin().await?;
            let record = wire::read_device_record(params.get()?.get_device()?)?;
            if record.user != self.device.user {
                return Err(wire::bad("device", "you can only add devices to your own account"));
            }
            let ik = self
                .ctx
                .storage
                .identity_key(&record.user)
                .await
                .map_err(|e| store_err("identity_key", e))?
                .ok_or_else(|| wire::error(ErrorCode::NoSuchUser, "your account no longer exists"))?;
            record
                .verify(&ik)
                .map_err(|_| wire::error(ErrorCode::BadSignature, "the device record is not signed by your identity key"))?;
            self.ctx
                .storage
                .add_device(&record, MAX_DEVICES_PER_USER, Some(&self.device), now_ms())
                .await
                .map_err(|e| store_err("add_device", e))?;
            Ok(())
        })
    }

    fn revoke_device(
        self: CapRc<Self>,
        params: session::RevokeDeviceParams,
        _: session::RevokeDeviceResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "revokeDevice", async move {
            let _call = self.begin().await?;
            let device = wire::read_device_id(params.get()?.get_device_id()?, "deviceId")?;
            let addr = DeviceAddress { user: self.device.user.clone(), device };
            self.ctx.storage.revoke_device(&addr, Some(&self.device)).await.map_err(|e| store_err("revoke_device", e))?;
            tracing::info!(user = %self.ctx.log_key.pseudonym(self.device.user.as_str()), "device revoked");
            Ok(())
        })
    }

    fn upload_key_packages(
        self: CapRc<Self>,
        params: session::UploadKeyPackagesParams,
        mut results: session::UploadKeyPackagesResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "uploadKeyPackages", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let list = p.get_packages()?;
            if list.len() > MAX_KEY_PACKAGES_PER_UPLOAD {
                return Err(wire::error(
                    ErrorCode::TooLarge,
                    format!("at most {MAX_KEY_PACKAGES_PER_UPLOAD} key packages per upload"),
                ));
            }
            let row = |d: &[u8]| -> Result<KeyPackageRow, capnp::Error> {
                if d.is_empty() || d.len() > MAX_KEY_PACKAGE_BYTES {
                    return Err(wire::bad("keyPackage", format!("must be 1 to {MAX_KEY_PACKAGE_BYTES} bytes")));
                }
                Ok(KeyPackageRow { hash: Sha256::digest(d).into(), data: d.to_vec() })
            };
            let mut rows = Vec::with_capacity(list.len() as usize);
            for d in list.iter() {
                rows.push(row(d?)?);
            }
            let lr = p.get_last_resort()?;
            let lr = if lr.is_empty() { None } else { Some(row(lr)?) };
            let n = self
                .ctx
                .storage
                .add_key_packages(&self.device, &rows, lr.as_ref(), self.ctx.config.max_key_packages_per_device)
                .await
                .map_err(|e| store_err("add_key_packages", e))?;
            results.get().set_available(n);
            Ok(())
        })
    }

    fn claim_key_packages(
        self: CapRc<Self>,
        params: session::ClaimKeyPackagesParams,
        mut results: session::ClaimKeyPackagesResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "claimKeyPackages", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let user = wire::read_user(p.get_user()?, "user")?;
            let only = if p.has_devices() {
                let list = p.get_devices()?;
                if list.len() as usize > qpq_proto::MAX_DEVICES_PER_USER {
                    return Err(wire::bad("devices", "more devices than a user can have"));
                }
                list.iter().map(|d| wire::read_device_id(d?, "devices")).collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            self.ctx.rates.claim(&self.device.user, now_ms()).map_err(|ms| rate_err("key-package claims", ms))?;
            let claimed = self
                .ctx
                .storage
                .claim_key_packages(&user, Some(&self.device), &only, now_ms())
                .await
                .map_err(|e| store_err("claim_key_packages", e))?;
            let mut list = results.get().init_packages(claimed.len() as u32);
            for (i, c) in claimed.iter().enumerate() {
                let mut b = list.reborrow().get(i as u32);
                b.set_device_id(&c.device.0);
                b.set_key_package(&c.data);
                b.set_last_resort(c.last_resort);
            }
            Ok(())
        })
    }

    fn key_package_count(
        self: CapRc<Self>,
        _: session::KeyPackageCountParams,
        mut results: session::KeyPackageCountResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "keyPackageCount", async move {
            let _call = self.begin().await?;
            let n = self.ctx.storage.key_package_count(&self.device).await.map_err(|e| store_err("key_package_count", e))?;
            results.get().set_available(n);
            Ok(())
        })
    }

    fn create_channel(
        self: CapRc<Self>,
        params: session::CreateChannelParams,
        mut results: session::CreateChannelResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "createChannel", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let id = wire::read_channel(p.get_channel_id()?, "channelId")?;
            if id == ChannelId::account() {
                return Err(wire::bad("channelId", "0x00 is reserved for the node's hints about the account"));
            }
            let info = p.get_group_info()?;
            self.check_size("the GroupInfo", info.len())?;
            // A channel that exists is storage's to answer: the same one to its creator's
            // retry, `channel_exists` to anyone else. A new one starts from its GroupInfo.
            let exists = self.ctx.storage.channel(&id).await.map_err(|e| store_err("channel", e))?.is_some();
            let state = if exists { None } else { Some(self.first_group_state(&id, info).await?) };
            let row = self
                .ctx
                .storage
                .create_channel(&id, &self.device, state.as_deref(), now_ms())
                .await
                .map_err(|e| store_err("create_channel", e))?;
            write_channel(results.get().init_info(), &row);
            Ok(())
        })
    }

    fn channel_info(
        self: CapRc<Self>,
        params: session::ChannelInfoParams,
        mut results: session::ChannelInfoResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "channelInfo", async move {
            let _call = self.begin().await?;
            let id = wire::read_channel(params.get()?.get_channel_id()?, "channelId")?;
            let row = self.member_channel(&id).await?;
            write_channel(results.get().init_info(), &row);
            Ok(())
        })
    }

    fn commit(
        self: CapRc<Self>,
        params: session::CommitParams,
        mut results: session::CommitResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "commit", async move {
            let _call = self.begin().await?;
            let r = params.get()?.get_request()?;
            let channel = wire::read_channel(r.get_channel_id()?, "channelId")?;
            let commit = r.get_commit()?;
            let welcome = r.get_welcome()?;
            self.check_size("the commit", commit.len())?;
            self.check_size("the Welcome", welcome.len())?;
            if commit.is_empty() {
                return Err(wire::bad("commit", "is empty"));
            }
            let (adds, removes) = (r.get_add_devices()?, r.get_remove_devices()?);
            if adds.len() > MAX_COMMIT_DEVICES || removes.len() > MAX_COMMIT_DEVICES {
                return Err(wire::error(ErrorCode::TooLarge, format!("at most {MAX_COMMIT_DEVICES} devices per change")));
            }
            let add = adds.iter().map(wire::read_device_address).collect::<Result<Vec<_>, _>>()?;
            let remove = removes.iter().map(wire::read_device_address).collect::<Result<Vec<_>, _>>()?;
            if !add.is_empty() && welcome.is_empty() {
                return Err(wire::bad("welcome", "devices are added but there is no Welcome"));
            }
            let frame = mls_frame::check_commit(commit, &channel, r.get_epoch()).map_err(|e| bad_mls("the commit", e))?;
            // New leaves (added devices, a rejoining member) cannot read what was sent before.
            let joined_at = (!add.is_empty() || frame.external).then(|| frame.epoch + 1);
            if !welcome.is_empty() {
                mls_frame::check_welcome(welcome).map_err(|e| bad_mls("the Welcome", e))?;
            }
            // Counted before the group's check, which costs the node real work.
            self.take_send()?;
            let group = self.check_group_commit(&channel, r.get_epoch(), commit, &add, &remove).await?;
            let now = now_ms();
            let input = CommitInput {
                channel,
                sender: self.device.clone(),
                epoch: r.get_epoch(),
                commit: commit.to_vec(),
                welcome: welcome.to_vec(),
                add,
                remove,
                joined_at,
                client_msg_id: client_msg_id(r.get_client_msg_id()?)?,
                expires_at: self.expiry(now, 0),
                max_queue: self.ctx.config.max_queue_per_device,
                now,
                push_at: self.push_at(now),
                group,
            };
            let out = self.ctx.storage.commit(&input).await.map_err(|e| store_err("commit", e))?;
            if !out.duplicate {
                self.ctx.metrics.accepted.with(&["commit"]).inc();
            }
            let mut res = results.get();
            res.set_epoch(out.epoch);
            res.set_server_time(out.server_time);
            Ok(())
        })
    }

    fn enqueue(
        self: CapRc<Self>,
        params: session::EnqueueParams,
        mut results: session::EnqueueResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "enqueue", async move {
            let _call = self.slot()?;
            let p = params.get()?;
            let channel = wire::read_channel(p.get_channel_id()?, "channelId")?;
            let payload = p.get_payload()?;
            self.check_size("the message", payload.len())?;
            if payload.is_empty() {
                return Err(wire::bad("payload", "is empty"));
            }
            let epoch = mls_frame::check_application(payload, &channel).map_err(|e| bad_mls("the message", e))?;
            let ttl = p.get_ttl_seconds();
            if ttl > MAX_TTL_SECS {
                return Err(wire::bad("ttlSeconds", format!("at most {MAX_TTL_SECS}")));
            }
            self.take_send()?;
            let now = now_ms();
            let input = EnqueueInput {
                channel,
                sender: self.device.clone(),
                payload: payload.to_vec(),
                epoch,
                client_msg_id: client_msg_id(p.get_client_msg_id()?)?,
                expires_at: self.expiry(now, ttl),
                max_queue: self.ctx.config.max_queue_per_device,
                now,
                push_at: self.push_at(now),
            };
            let out = self.ctx.storage.enqueue(&input).await.map_err(|e| store_err("enqueue", e))?;
            if !out.duplicate {
                self.ctx.metrics.accepted.with(&["application"]).inc();
            }
            let mut r = results.get();
            r.set_server_time(out.server_time);
            r.set_duplicate(out.duplicate);
            Ok(())
        })
    }

    fn fetch(
        self: CapRc<Self>,
        params: session::FetchParams,
        mut results: session::FetchResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "fetch", async move {
            let _call = self.slot()?;
            let p = params.get()?;
            let limit = p.get_limit().clamp(1, MAX_FETCH);
            // 0 (a client that names no bound): the server's.
            let max_bytes = match u64::from(p.get_max_bytes()) {
                0 => MAX_FETCH_BYTES,
                b => b.min(MAX_FETCH_BYTES),
            };
            let envs = delivery::fetch_batch(&self.ctx, &self.device, p.get_after(), limit, max_bytes).await?;
            let mut list = results.get().init_envelopes(envs.len() as u32);
            for (i, e) in envs.iter().enumerate() {
                wire::write_envelope(list.reborrow().get(i as u32), e);
            }
            Ok(())
        })
    }

    fn ack(
        self: CapRc<Self>,
        params: session::AckParams,
        _: session::AckResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "ack", async move {
            let _call = self.slot()?;
            let up_to = params.get()?.get_up_to();
            self.acks.ack(&*self.ctx.storage, &self.device, up_to).await
        })
    }

    fn subscribe(
        self: CapRc<Self>,
        params: session::SubscribeParams,
        mut results: session::SubscribeResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "subscribe", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let listener = p.get_listener()?;
            if self.subscribed.get() {
                return Err(wire::error(
                    ErrorCode::QuotaExceeded,
                    "this session already has a subscription; drop its handle before subscribing again",
                ));
            }
            let handle = delivery::start(
                self.ctx.clone(),
                self.device.clone(),
                listener,
                p.get_after(),
                self.subscribed.clone(),
                self.acks.clone(),
            );
            results.get().set_handle(handle);
            Ok(())
        })
    }

    fn create_blob(
        self: CapRc<Self>,
        params: session::CreateBlobParams,
        mut results: session::CreateBlobResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "createBlob", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let channel = wire::read_channel(p.get_channel_id()?, "channelId")?;
            self.member_channel(&channel).await?;
            let (size, chunk) = (p.get_size(), p.get_chunk_size());
            let cfg = &self.ctx.config;
            if size > cfg.max_blob_bytes {
                return Err(wire::error(
                    ErrorCode::TooLarge,
                    format!("the file is {size} bytes; this server accepts at most {}", cfg.max_blob_bytes),
                ));
            }
            if chunk == 0 || chunk > cfg.max_chunk_bytes {
                return Err(wire::bad("chunkSize", format!("must be 1 to {}", cfg.max_chunk_bytes)));
            }
            let mut id = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut id);
            let now = now_ms();
            let retention = cfg.blob_days * 86_400_000;
            let ttl = u64::from(p.get_ttl_seconds().min(MAX_TTL_SECS)) * 1000;
            let row = BlobRow {
                id,
                channel,
                size,
                chunk_size: chunk,
                chunks_stored: 0,
                expires_at: now + if ttl == 0 { retention } else { ttl.min(retention) },
            };
            self.ctx
                .storage
                .create_blob(&row, &self.device, cfg.max_blob_bytes_per_account, now)
                .await
                .map_err(|e| store_err("create_blob", e))?;
            write_blob(results.get().init_info(), &row);
            Ok(())
        })
    }

    fn put_chunk(
        self: CapRc<Self>,
        params: session::PutChunkParams,
        mut results: session::PutChunkResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "putChunk", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let blob = self.member_blob(p.get_blob_id()?).await?;
            let data = p.get_data()?;
            let row = self
                .ctx
                .storage
                .put_chunk(&blob.id, p.get_index(), data, Some(&self.device), now_ms())
                .await
                .map_err(|e| store_err("put_chunk", e))?;
            write_blob(results.get().init_info(), &row);
            Ok(())
        })
    }

    fn get_chunk(
        self: CapRc<Self>,
        params: session::GetChunkParams,
        mut results: session::GetChunkResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "getChunk", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let blob = self.member_blob(p.get_blob_id()?).await?;
            let index = p.get_index();
            let data = self
                .ctx
                .storage
                .get_chunk(&blob.id, index, now_ms())
                .await
                .map_err(|e| store_err("get_chunk", e))?
                .ok_or_else(|| wire::error(ErrorCode::BadChunk, format!("chunk {index} is not stored")))?;
            results.get().set_data(&data);
            Ok(())
        })
    }

    fn blob_info(
        self: CapRc<Self>,
        params: session::BlobInfoParams,
        mut results: session::BlobInfoResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "blobInfo", async move {
            let _call = self.begin().await?;
            let blob = self.member_blob(params.get()?.get_blob_id()?).await?;
            write_blob(results.get().init_info(), &blob);
            Ok(())
        })
    }

    fn delete_account(
        self: CapRc<Self>,
        _: session::DeleteAccountParams,
        _: session::DeleteAccountResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "deleteAccount", async move {
            let _call = self.begin().await?;
            let until = now_ms() + self.ctx.config.name_cooldown_days * 86_400_000;
            self.ctx
                .storage
                .delete_user(&self.device.user, until, Some(&self.device))
                .await
                .map_err(|e| store_err("delete_user", e))?;
            tracing::info!(user = %self.ctx.log_key.pseudonym(self.device.user.as_str()), "account deleted");
            Ok(())
        })
    }

    fn set_push_subscription(
        self: CapRc<Self>,
        params: session::SetPushSubscriptionParams,
        _: session::SetPushSubscriptionResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "setPushSubscription", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let endpoint = p.get_endpoint()?.to_str().map_err(|_| wire::bad("endpoint", "is not UTF-8"))?;
            let (p256dh, auth) = (p.get_p256dh()?, p.get_auth()?);
            push::check_subscription(endpoint, p256dh, auth, self.ctx.config.push_allow_http)
                .map_err(|e| wire::bad("push subscription", e))?;
            let subscription = PushSubscription {
                endpoint: endpoint.to_owned(),
                p256dh: p256dh.try_into().map_err(|_| wire::bad("p256dh", "must be 65 bytes"))?,
                auth: auth.try_into().map_err(|_| wire::bad("auth", "must be 16 bytes"))?,
            };
            self.ctx
                .storage
                .set_push_subscription(&self.device, &subscription, now_ms())
                .await
                .map_err(|e| store_err("set_push_subscription", e))
        })
    }

    fn remove_push_subscription(
        self: CapRc<Self>,
        _: session::RemovePushSubscriptionParams,
        _: session::RemovePushSubscriptionResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "removePushSubscription", async move {
            let _call = self.begin().await?;
            self.ctx
                .storage
                .remove_push_subscription(&self.device)
                .await
                .map_err(|e| store_err("remove_push_subscription", e))
        })
    }

    fn vapid_public_key(
        self: CapRc<Self>,
        _: session::VapidPublicKeyParams,
        mut results: session::VapidPublicKeyResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "vapidPublicKey", async move {
            let _call = self.begin().await?;
            results.get().set_key(self.ctx.vapid.public_key());
            Ok(())
        })
    }

    fn ice_servers(
        self: CapRc<Self>,
        _: session::IceServersParams,
        mut results: session::IceServersResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "iceServers", async move {
            let _call = self.begin().await?;
            let who = self.ctx.log_key.pseudonym(self.device.user.as_str());
            let (servers, expires_at) = self.ctx.config.ice_settings().servers(&who, now_ms() / 1000);
            let mut r = results.get();
            r.set_expires_at(expires_at);
            let mut list = r.init_servers(servers.len() as u32);
            for (i, s) in servers.iter().enumerate() {
                let mut e = list.reborrow().get(i as u32);
                let mut urls = e.reborrow().init_urls(s.urls.len() as u32);
                for (j, u) in s.urls.iter().enumerate() {
                    urls.set(j as u32, u.as_str());
                }
                e.set_username(s.username.as_str());
                e.set_credential(s.credential.as_str());
            }
            Ok(())
        })
    }

    fn set_device_label(
        self: CapRc<Self>,
        params: session::SetDeviceLabelParams,
        _: session::SetDeviceLabelResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "setDeviceLabel", async move {
            let _call = self.begin().await?;
            let label = params.get()?.get_label()?;
            if label.len() > MAX_DEVICE_LABEL_BYTES {
                let len = label.len();
                return Err(wire::error(
                    ErrorCode::TooLarge,
                    format!("the label is {len} bytes; at most {MAX_DEVICE_LABEL_BYTES} are accepted"),
                ));
            }
            // The calling device's own label only; an empty one clears it.
            let label = if label.is_empty() { None } else { Some(label) };
            self.ctx
                .storage
                .set_device_label(&self.device, label)
                .await
                .map_err(|e| store_err("set_device_label", e))
        })
    }

    fn open_link(
        self: CapRc<Self>,
        params: session::OpenLinkParams,
        mut results: session::OpenLinkResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "openLink", async move {
            let _call = self.begin().await?;
            let slot = read_slot(params.get()?.get_slot()?)?;
            self.ctx.rates.open_link(&self.device.user, now_ms()).map_err(|ms| rate_err("link codes", ms))?;
            let now = now_ms();
            // A link code is good for `--link-secs` (ten minutes by default).
            let expires_at = now + self.ctx.config.link_secs.saturating_mul(1000);
            self.ctx
                .storage
                .open_link(&slot, &self.device, MAX_OPEN_LINKS, now, expires_at)
                .await
                .map_err(|e| store_err("open_link", e))?;
            results.get().set_expires_at(expires_at);
            Ok(())
        })
    }

    fn link_request(
        self: CapRc<Self>,
        params: session::LinkRequestParams,
        mut results: session::LinkRequestResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        // Polled about once a second while a link code is shown: no rate limit, one read. Its
        // metrics name tells it from `NodeService.linkRequest`.
        track(self.ctx.metrics.clone(), "Session.linkRequest", async move {
            let _call = self.begin().await?;
            let slot = read_slot(params.get()?.get_slot()?)?;
            let request = self
                .ctx
                .storage
                .link_request(&slot, &self.device.user, now_ms())
                .await
                .map_err(|e| store_err("link_request", e))?;
            results.get().set_request(request.as_deref().unwrap_or_default());
            Ok(())
        })
    }

    fn answer_link(
        self: CapRc<Self>,
        params: session::AnswerLinkParams,
        _: session::AnswerLinkResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "answerLink", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let slot = read_slot(p.get_slot()?)?;
            let answer = p.get_answer()?;
            check_payload("answer", answer, MAX_LINK_ANSWER_BYTES)?;
            self.ctx
                .storage
                .answer_link(&slot, answer, &self.device, now_ms())
                .await
                .map_err(|e| store_err("answer_link", e))
        })
    }

    fn close_link(
        self: CapRc<Self>,
        params: session::CloseLinkParams,
        _: session::CloseLinkResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "closeLink", async move {
            let _call = self.begin().await?;
            let slot = read_slot(params.get()?.get_slot()?)?;
            self.ctx.storage.close_link(&slot, &self.device).await.map_err(|e| store_err("close_link", e))
        })
    }

    fn set_blocked(
        self: CapRc<Self>,
        params: session::SetBlockedParams,
        _: session::SetBlockedResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "setBlocked", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            // Any name, of this server or another, registered or not: blocking tells nothing.
            let user = wire::read_user(p.get_user()?, "user")?;
            let now = now_ms();
            self.ctx.rates.block(&self.device.user, now).map_err(|ms| rate_err("blocks and unblocks", ms))?;
            // For the caller's whole account; the storage refuses oneself.
            self.ctx
                .storage
                .set_blocked(&self.device, &user, p.get_blocked(), self.ctx.config.max_blocks_per_account, now, self.expiry(now, 0))
                .await
                .map_err(|e| store_err("set_blocked", e))
        })
    }

    fn blocked_users(
        self: CapRc<Self>,
        _: session::BlockedUsersParams,
        mut results: session::BlockedUsersResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "blockedUsers", async move {
            let _call = self.begin().await?;
            // The caller's account's list: every device of it reads the same.
            let users =
                self.ctx.storage.blocked_users(&self.device).await.map_err(|e| store_err("blocked_users", e))?;
            let mut list = results.get().init_users(users.len() as u32);
            for (i, u) in users.iter().enumerate() {
                list.set(i as u32, u.as_str());
            }
            Ok(())
        })
    }

    fn put_group_info(
        self: CapRc<Self>,
        params: session::PutGroupInfoParams,
        _: session::PutGroupInfoResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "putGroupInfo", async move {
            let _call = self.begin().await?;
            let p = params.get()?;
            let channel = wire::read_channel(p.get_channel_id()?, "channelId")?;
            let info = p.get_group_info()?;
            self.check_size("the GroupInfo", info.len())?;
            self.member_channel(&channel).await?;
            let Some(state) = self.ctx.storage.group_state(&channel).await.map_err(|e| store_err("group_state", e))? else {
                return Err(bad_mls("the GroupInfo", "this conversation is older than rejoining"));
            };
            let (ch, info, me) = (channel.clone(), info.to_vec(), self.device.clone());
            let checked = blocking(move || {
                let epoch = group_state::check_group_info(&ch, &group_state::Stored(state), &info, &me);
                (epoch, info)
            })
            .await?;
            let epoch = match checked.0 {
                Ok(e) => e,
                Err(GroupError::Stale { current, .. }) => {
                    return Err(store_err("put_group_info", crate::storage::StoreError::StaleEpoch { current }));
                }
                Err(e) => return Err(bad_mls("the GroupInfo", e)),
            };
            self.ctx
                .storage
                .put_group_info(&channel, &self.device, epoch, &checked.1)
                .await
                .map_err(|e| store_err("put_group_info", e))
        })
    }

    fn group_info(
        self: CapRc<Self>,
        params: session::GroupInfoParams,
        mut results: session::GroupInfoResults,
    ) -> impl Future<Output = Result<(), capnp::Error>> + 'static {
        track(self.ctx.metrics.clone(), "groupInfo", async move {
            let _call = self.begin().await?;
            let channel = wire::read_channel(params.get()?.get_channel_id()?, "channelId")?;
            self.member_channel(&channel).await?;
            let kept = self.ctx.storage.group_info(&channel).await.map_err(|e| store_err("group_info", e))?;
            let Some((state, Some(info))) = kept else {
                return Err(wire::error(
                    ErrorCode::NoSuchChannel,
                    "no GroupInfo of the conversation's current epoch is kept yet; try again after its next change",
                ));
            };
            let ch = channel.clone();
            let tree = blocking(move || group_state::ratchet_tree(&ch, &group_state::Stored(state))).await?;
            let tree = tree.map_err(|e| bad_mls("the group", e))?;
            let mut r = results.get();
            r.set_group_info(&info);
            r.set_ratchet_tree(&tree);
            Ok(())
        })
    }
}

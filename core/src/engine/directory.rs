//! Trust in members: every leaf the engine accepts is checked against the directory.
//!
//! The directory (the server's `listDevices`) holds each user's identity key and the device
//! records that key signs. The engine keeps the records it verified (`known`; the first
//! identity key seen for a user is kept, trust on first use) and checks every leaf it accepts
//! against them: the whole ratchet tree of a Welcome, the leaves of a commit's Add and Update
//! proposals and its update path. A leaf must name a registered device of its user and carry
//! that device's key; an updated leaf must still name the device it replaces. Senders of
//! application messages are then verified leaves, so edits, deletes, reactions, receipts and
//! leaving are attributed to whoever really sent them.
//!
//! The engine does no I/O, so a Welcome or commit naming a user whose records it lacks (or a
//! device it has not seen yet) is *held*: the step leaves no trace in the group (the MLS
//! storage is put back), the envelope is stored, and later messages of that conversation wait
//! behind it. The shell reads [`Engine::directory_needed`], fetches those users' records, hands
//! them to [`Engine::learn_devices`] (or [`Engine::directory_lacks`] when the directory has no
//! such user) and calls [`Engine::resume`]. A check that fails against fresh records refuses
//! the message with [`EngineError::UntrustedMember`].

use std::collections::{BTreeMap, BTreeSet};

use openmls::prelude::{Credential, Extension, Extensions, GroupId, MlsGroup, UnknownExtension};
use qpq_types::{ChannelId, DeviceAddress, DeviceRecord, Envelope, EnvelopeKind, UserId};
use openmls::messages::group_info::GroupInfo;
use serde::{Deserialize, Serialize};

use super::{Engine, KnownUser, Verification};
use crate::error::EngineError;
use crate::identity::device_of_credential;
use crate::state::StateKey;

/// The private-use GroupInfo extension by which a Welcome tells a new member how many commits
/// the server accepted that the group refused (8 bytes, big-endian; absent means none). A
/// refused commit still took a server epoch, so members name `epoch + offset` to the server.
pub(super) const EPOCH_OFFSET_EXTENSION: u16 = 0xF0A1;

/// The GroupInfo extension carrying `offset`, when there is one to carry.
pub(super) fn epoch_offset_extension(offset: u64) -> Option<Extension> {
    (offset > 0).then(|| Extension::Unknown(EPOCH_OFFSET_EXTENSION, UnknownExtension(offset.to_be_bytes().to_vec())))
}

/// Reads the offset a Welcome's GroupInfo carries (0 when absent or malformed).
pub(super) fn epoch_offset(exts: &Extensions<GroupInfo>) -> u64 {
    exts.unknown(EPOCH_OFFSET_EXTENSION)
        .and_then(|e| <[u8; 8]>::try_from(e.0.as_slice()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// What processing a delivery came to, short of an error.
pub(super) enum Intake {
    /// Processed.
    Done,
    /// The records of these users are needed first; nothing was changed.
    Need(BTreeSet<UserId>),
}

/// A delivery waiting for directory records (or behind one that is).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Held {
    seq: u64,
    channel: ChannelId,
    kind: u8,
    #[serde(with = "crate::outbox::hex_bytes")]
    payload: Vec<u8>,
    server_time: u64,
    expires_at: u64,
    /// Users whose records the shell must still fetch.
    needs: BTreeSet<UserId>,
    /// Users fetched for this delivery: a mismatch with their records is final.
    asked: BTreeSet<UserId>,
}

impl Held {
    fn new(env: &Envelope) -> Held {
        let kind = match env.kind {
            EnvelopeKind::Application => 0,
            EnvelopeKind::Commit => 1,
            EnvelopeKind::Welcome => 2,
            EnvelopeKind::Proposal => 3,
            EnvelopeKind::Devices => 4,
            EnvelopeKind::Account => 5,
        };
        Held {
            seq: env.seq,
            channel: env.channel.clone(),
            kind,
            payload: env.payload.clone(),
            server_time: env.server_time,
            expires_at: env.expires_at,
            needs: BTreeSet::new(),
            asked: BTreeSet::new(),
        }
    }

    fn envelope(&self) -> Envelope {
        let kind = match self.kind {
            1 => EnvelopeKind::Commit,
            2 => EnvelopeKind::Welcome,
            3 => EnvelopeKind::Proposal,
            4 => EnvelopeKind::Devices,
            5 => EnvelopeKind::Account,
            _ => EnvelopeKind::Application,
        };
        Envelope {
            seq: self.seq,
            channel: self.channel.clone(),
            kind,
            payload: self.payload.clone(),
            server_time: self.server_time,
            expires_at: self.expires_at,
        }
    }
}

/// The users a step needs records of, collected while checking leaves.
pub(super) struct LeafCheck<'a> {
    asked: &'a BTreeSet<UserId>,
    pub(super) need: BTreeSet<UserId>,
}

impl<'a> LeafCheck<'a> {
    pub(super) fn new(asked: &'a BTreeSet<UserId>) -> Self {
        LeafCheck { asked, need: BTreeSet::new() }
    }

    /// `Need` when some user's records are missing, else `Done`.
    pub(super) fn outcome(self) -> Intake {
        if self.need.is_empty() {
            Intake::Done
        } else {
            Intake::Need(self.need)
        }
    }
}

impl Engine {
    /// Records the device records of `user`, checked against its identity key. A user's first
    /// identity key is taken as it is (trust on first use; the safety number lets the person
    /// confirm it). When the directory later shows another one, the new key and its records
    /// are taken, every conversation with the user shows a notice, and a verified contact is
    /// held back from until the person verifies the new number ([`super::safety`]). This
    /// device's own user must keep its own identity key: another one is refused with
    /// [`EngineError::IdentityKeyChanged`]. Either way, deliveries held for `user` may now go
    /// on ([`Engine::resume`]).
    pub fn learn_devices(
        &mut self,
        user: &UserId,
        identity_key: &[u8; 32],
        records: &[DeviceRecord],
        now: u64,
    ) -> Result<(), EngineError> {
        self.answered(user);
        if user == self.user() && identity_key != &self.identity_public_key() {
            return Err(EngineError::IdentityKeyChanged { user: user.clone() });
        }
        let mut devices = BTreeMap::new();
        for r in records {
            if &r.user != user {
                return Err(EngineError::Unverified(format!("a device record of {user} names {}", r.user)));
            }
            r.verify(identity_key)
                .map_err(|_| EngineError::Unverified(format!("a device record of {user} is not signed by its identity key")))?;
            devices.insert(r.device_id, hex::encode(r.device_key));
        }
        let verification = match self.known.get(user) {
            Some(k) if k.identity_key != identity_key => {
                let was = k.verification;
                self.identity_changed(user, was, now)
            }
            Some(k) => k.verification,
            None => Verification::Unverified,
        };
        let k = KnownUser { identity_key: identity_key.to_vec(), devices, verification };
        if self.known.get(user) != Some(&k) {
            self.known.insert(user.clone(), k);
            self.dirty.insert(StateKey::Known(user.clone()));
        }
        Ok(())
    }

    /// The directory has no such user (or will not say): deliveries held for `user` go on
    /// ([`Engine::resume`]) and any leaf claiming to be one of its devices is refused.
    pub fn directory_lacks(&mut self, user: &UserId) {
        self.answered(user);
    }

    /// Users whose directory records held deliveries wait for. Fetch each with `listDevices`,
    /// give it to [`Engine::learn_devices`] (or [`Engine::directory_lacks`]), then call
    /// [`Engine::resume`].
    pub fn directory_needed(&self) -> Vec<UserId> {
        let all: BTreeSet<&UserId> = self.held.values().flat_map(|h| h.needs.iter()).collect();
        all.into_iter().cloned().collect()
    }

    /// Number of deliveries held until the directory answers (or behind one that is).
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Processes held deliveries whose records have arrived, in order; a conversation's later
    /// deliveries stay behind one that still waits. Returns why any of them was refused.
    pub fn resume(&mut self, now: u64) -> Vec<EngineError> {
        let mut errors = Vec::new();
        let mut blocked: BTreeSet<ChannelId> = BTreeSet::new();
        let seqs: Vec<u64> = self.held.keys().copied().collect();
        for seq in seqs {
            let Some(h) = self.held.get(&seq).cloned() else { continue };
            if blocked.contains(&h.channel) {
                continue;
            }
            if !h.needs.is_empty() {
                blocked.insert(h.channel.clone());
                continue;
            }
            let env = h.envelope();
            match self.intake(&env, now, &h.asked) {
                Ok(Intake::Need(users)) => {
                    let h = self.held.get_mut(&seq).expect("present");
                    h.asked.extend(users.iter().cloned());
                    h.needs = users;
                    self.dirty.insert(StateKey::Held(seq));
                    blocked.insert(env.channel.clone());
                }
                Ok(Intake::Done) => self.release(seq),
                Err(e) => {
                    self.release(seq);
                    self.after_failure(&env, &e, now);
                    errors.push(e);
                }
            }
        }
        errors
    }

    /// Processes `env` now, or holds it when its conversation has a held delivery or when it
    /// needs directory records first.
    pub(super) fn intake_or_hold(&mut self, env: &Envelope, now: u64) -> Result<(), EngineError> {
        if self.held.values().any(|h| h.channel == env.channel) {
            self.hold(Held::new(env));
            return Ok(());
        }
        match self.intake(env, now, &BTreeSet::new())? {
            Intake::Done => Ok(()),
            Intake::Need(users) => {
                let mut h = Held::new(env);
                h.asked = users.clone();
                h.needs = users;
                self.hold(h);
                Ok(())
            }
        }
    }

    fn hold(&mut self, h: Held) {
        self.dirty.insert(StateKey::Held(h.seq));
        self.held.insert(h.seq, h);
    }

    fn release(&mut self, seq: u64) {
        self.held.remove(&seq);
        self.dirty.insert(StateKey::Held(seq));
    }

    fn answered(&mut self, user: &UserId) {
        for (seq, h) in self.held.iter_mut() {
            if h.needs.remove(user) {
                self.dirty.insert(StateKey::Held(*seq));
            }
        }
    }

    /// Checks one leaf (its credential and signature key) against the verified records. A
    /// user not yet asked for whose records are missing or lack this device is added to
    /// `check.need`; a mismatch that fresh records cannot explain is an error.
    pub(super) fn check_leaf(
        &self,
        credential: &Credential,
        signature_key: &[u8],
        check: &mut LeafCheck<'_>,
    ) -> Result<DeviceAddress, EngineError> {
        let addr = device_of_credential(credential)?;
        let refused = || EngineError::UntrustedMember { user: addr.user.clone() };
        if addr == self.identity.address() {
            return if signature_key == self.device_record().device_key { Ok(addr) } else { Err(refused()) };
        }
        let registered = self
            .known
            .get(&addr.user)
            .and_then(|k| k.devices.get(&addr.device))
            .is_some_and(|key| *key == hex::encode(signature_key));
        if registered {
            return Ok(addr);
        }
        if check.asked.contains(&addr.user) {
            return Err(refused());
        }
        check.need.insert(addr.user.clone());
        Ok(addr)
    }

    /// A copy of the MLS storage taken before a step that may have to be undone.
    pub(super) fn mls_snapshot(&self) -> std::collections::HashMap<Vec<u8>, Vec<u8>> {
        self.provider.snapshot()
    }

    /// Undoes everything openmls did since `snapshot` and reloads the group of `conv` (if
    /// it has one) from it.
    pub(super) fn mls_rollback(&mut self, conv: &ChannelId, snapshot: std::collections::HashMap<Vec<u8>, Vec<u8>>) {
        self.provider.restore(snapshot);
        let gid = GroupId::from_slice(conv.as_bytes());
        if let Ok(Some(g)) = MlsGroup::load(openmls_traits::OpenMlsProvider::storage(&self.provider), &gid) {
            self.groups.insert(conv.clone(), g);
        }
    }
}

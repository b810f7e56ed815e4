//! An account from a backup, and the members who bring a restored device back into their
//! conversations.
//!
//! A backup ([`Engine::export_account`]) holds the account (its user and identity key), the
//! people this device knows (their identity keys, devices and whether the person verified
//! them), the contacts, the profiles held (the account's own included), the whole history and
//! the shell's settings; the shell encrypts it. A device restored
//! from it ([`Engine::restore`]) is a new device of the account: the node registers it in place
//! of the account's other devices and tells the other members of its conversations (an envelope
//! of kind `Devices`). Their devices read the directory again and, where none of that member's
//! listed devices has a leaf any more, add the listed ones and remove the stale leaves in one
//! commit ([`Engine::replaced_devices`], [`Engine::replace_devices`]). Each conversation's
//! history waits in the store until the Welcome that brings the conversation back.

use std::collections::BTreeMap;

use qpq_types::{ChannelId, DeviceAddress, DeviceId, DeviceRecord, Envelope, UserId};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::profiles::HeldProfile;
use super::{ConversationHistory, Engine, KnownUser};
use crate::error::EngineError;
use crate::outbox::{ClaimedPackage, PendingOp};
use crate::state::StateKey;

/// The format version of what a backup holds.
const ACCOUNT_VERSION: u32 = 1;

/// What a backup holds, decoded (the shell decrypts it first).
#[derive(Serialize, Deserialize)]
pub struct AccountBackup {
    version: u32,
    user: UserId,
    #[serde(with = "crate::outbox::hex_bytes")]
    identity_secret: Vec<u8>,
    /// When the backup was made (Unix ms).
    made_at: u64,
    known: BTreeMap<UserId, KnownUser>,
    /// The contacts and when each was added (absent in backups made before contacts).
    #[serde(default)]
    contacts: BTreeMap<UserId, u64>,
    /// The profile cards held, the account's own included (absent before profiles).
    #[serde(default)]
    profiles: BTreeMap<UserId, HeldProfile>,
    conversations: Vec<ConversationHistory>,
    /// The shell's settings, opaque here.
    settings: String,
}

impl Drop for AccountBackup {
    fn drop(&mut self) {
        self.identity_secret.zeroize();
    }
}

impl AccountBackup {
    /// Decodes what [`Engine::export_account`] encoded.
    pub fn decode(bytes: &[u8]) -> Result<AccountBackup, EngineError> {
        let b: AccountBackup = serde_json::from_slice(bytes).map_err(|_| EngineError::Corrupt("backup contents"))?;
        if b.version != ACCOUNT_VERSION {
            return Err(EngineError::Corrupt("backup contents of another version"));
        }
        if b.identity_secret.len() != 32 {
            return Err(EngineError::Corrupt("backup identity"));
        }
        Ok(b)
    }

    /// The account.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// When it was made (Unix ms).
    pub fn made_at(&self) -> u64 {
        self.made_at
    }

    /// The shell's settings.
    pub fn settings(&self) -> &str {
        &self.settings
    }

    /// Conversations with history in it.
    pub fn conversations(&self) -> usize {
        self.conversations.len()
    }

    /// History entries in it.
    pub fn messages(&self) -> usize {
        self.conversations.iter().map(|c| c.messages.len()).sum()
    }
}

impl Engine {
    /// Everything a backup holds of this device (see the module documentation), encoded.
    pub fn export_account(&self, settings: &str, now: u64) -> Zeroizing<Vec<u8>> {
        let b = AccountBackup {
            version: ACCOUNT_VERSION,
            user: self.user().clone(),
            identity_secret: self.identity_secret().to_vec(),
            made_at: now,
            known: self.known.iter().filter(|(u, _)| *u != self.user()).map(|(u, k)| (u.clone(), k.clone())).collect(),
            contacts: self.meta.contacts.clone().unwrap_or_default(),
            profiles: self.profiles.clone(),
            conversations: self.export_history(0, usize::MAX),
            settings: settings.to_string(),
        };
        // Serialising plain data to a Vec cannot fail.
        Zeroizing::new(serde_json::to_vec(&b).expect("backup serialises"))
    }

    /// A new device of the backup's account (`device_id`, `device_secret`, its record signed
    /// at `created_at`): it knows whom the backup knew, and keeps each conversation's history
    /// until that conversation comes back. `seed` must be fresh CSPRNG output.
    pub fn restore(
        backup: &AccountBackup,
        device_id: DeviceId,
        device_secret: &[u8; 32],
        created_at: u64,
        seed: [u8; 32],
    ) -> Engine {
        let secret: [u8; 32] = backup.identity_secret.as_slice().try_into().expect("checked when decoded");
        let secret = Zeroizing::new(secret);
        let mut e = Engine::create_linked(backup.user.clone(), &secret, device_id, device_secret, created_at, seed);
        for (u, k) in &backup.known {
            e.known.insert(u.clone(), k.clone());
            e.dirty.insert(StateKey::Known(u.clone()));
        }
        for c in &backup.conversations {
            e.restoring.insert(c.conv.clone(), c.messages.clone());
            e.dirty.insert(StateKey::Restore(c.conv.clone()));
        }
        e.add_contacts(backup.contacts.iter().map(|(u, at)| (u.clone(), *at)));
        for (u, p) in &backup.profiles {
            e.profiles.insert(u.clone(), p.clone());
            e.dirty.insert(StateKey::Profile(u.clone()));
        }
        e
    }

    /// This device's record and the identity key's signature that registers it in place of
    /// the account's other devices (`NodeService.restoreDevice` with the node's `nonce`).
    pub fn sign_restore(&self, nonce: &[u8]) -> (DeviceRecord, [u8; 64]) {
        let record = self.device_record().clone();
        let sig = self.identity.sign_restore(&record, nonce);
        (record, sig)
    }

    /// Conversations whose history from a backup waits for them to come back.
    pub fn restoring(&self) -> usize {
        self.restoring.len()
    }

    /// The restored history of `conv`, if it waits, goes in before what the conversation
    /// holds (called when a Welcome brings it back).
    pub(super) fn import_restored(&mut self, conv: &ChannelId) {
        let Some(messages) = self.restoring.remove(conv) else { return };
        self.dirty.insert(StateKey::Restore(conv.clone()));
        self.import_history(ConversationHistory { conv: conv.clone(), messages });
    }

    /// A `Devices` envelope: the node says the devices of the member it names changed. Kept
    /// (until [`Engine::devices_checked`]) when that user has a leaf in the conversation;
    /// anything else is ignored.
    pub(super) fn devices_hint(&mut self, env: &Envelope) {
        let Some(user) = std::str::from_utf8(&env.payload).ok().and_then(|s| UserId::parse(s).ok()) else { return };
        if user == *self.user() || !self.member_devices(&env.channel).iter().any(|d| d.user == user) {
            return;
        }
        if self.meta.devices_changed.insert(user) {
            self.dirty.insert(StateKey::Meta);
        }
    }

    /// Members whose devices the node said changed: read each one's directory records
    /// ([`Engine::learn_devices`]), then act with [`Engine::replaced_devices`].
    pub fn devices_changed(&self) -> Vec<UserId> {
        self.meta.devices_changed.iter().cloned().collect()
    }

    /// Forgets the hint about `user`'s devices.
    pub fn devices_checked(&mut self, user: &UserId) {
        if self.meta.devices_changed.remove(user) {
            self.dirty.insert(StateKey::Meta);
        }
    }

    /// The identity key last learned for `user`.
    pub fn identity_key_of(&self, user: &UserId) -> Option<&[u8]> {
        self.known.get(user).map(|k| k.identity_key.as_slice())
    }

    /// Conversations where none of `user`'s listed devices (as last learned) has a leaf but
    /// other leaves of theirs remain — their account came back on new devices: for each, the
    /// listed devices to add (a key package of each, claimed naming them) and the stale leaves
    /// to remove. Conversations where an add for them is already queued are left out.
    pub fn replaced_devices(&self, user: &UserId) -> Vec<(ChannelId, Vec<DeviceId>, Vec<DeviceAddress>)> {
        let Some(known) = self.known.get(user) else { return Vec::new() };
        if known.devices.is_empty() || user == self.user() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for conv in self.groups.keys() {
            if self.require_active(conv).is_err() {
                continue;
            }
            let theirs: Vec<DeviceAddress> = self.member_devices(conv).into_iter().filter(|d| d.user == *user).collect();
            if theirs.is_empty() || theirs.iter().any(|d| known.devices.contains_key(&d.device)) {
                continue;
            }
            let queued = self.outbox.values().any(|i| {
                &i.conv == conv && matches!(&i.op, PendingOp::Membership { add, .. } if add.iter().any(|p| p.user == *user))
            });
            if !queued {
                out.push((conv.clone(), known.devices.keys().copied().collect(), theirs));
            }
        }
        out
    }

    /// Queues one commit in `conv` that adds `packages` (the new devices of one member) and
    /// removes `stale` (that member's leaves the directory no longer lists).
    pub fn replace_devices(
        &mut self,
        conv: &ChannelId,
        packages: Vec<ClaimedPackage>,
        stale: Vec<DeviceAddress>,
    ) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.check_packages(&packages)?;
        let user = packages.first().map(|p| p.user.clone());
        if user.is_none() || packages.iter().any(|p| Some(&p.user) != user.as_ref()) || stale.iter().any(|d| Some(&d.user) != user.as_ref()) {
            return Err(EngineError::BadMembers("one member's devices at a time".into()));
        }
        self.push_outbox(conv.clone(), PendingOp::device_change(packages, stale));
        Ok(())
    }
}

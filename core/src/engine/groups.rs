//! Creating conversations and changing their membership.

use rand::RngCore;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{GroupId, KeyPackage, KeyPackageIn, LeafNodeIndex, MlsGroup, ProtocolVersion};
use qpq_types::{ChannelId, DeviceAddress, DeviceId, UserId};

use super::{create_config, Engine, Event, CIPHERSUITE};
use crate::conversation::{Content, Conversation, ConversationKind, Message, Status, SystemEvent};
use crate::error::EngineError;
use crate::group_meta::{GroupMeta, MetaKey, MAX_NAME_BYTES};
use crate::identity::device_of_credential;
use crate::outbox::{BuiltCommit, ClaimedPackage, PendingOp};
use openmls::prelude::{Extension, ExtensionType, UnknownExtension};
use qpq_types::roles;

/// Changes to a conversation's settings a commit makes (a GroupContextExtensions proposal).
#[derive(Debug, Default)]
pub(super) struct Settings {
    /// The disappearing-message timer, in seconds.
    pub timer: Option<u32>,
    /// The admins (group roles).
    pub admins: Option<Vec<UserId>>,
}

/// The group-context extension listing `admins` (in clear: the node enforces roles).
pub(super) fn admins_extension(admins: &[UserId]) -> Extension {
    Extension::Unknown(roles::ADMINS_EXTENSION, UnknownExtension(roles::encode_admins(admins)))
}
use crate::state::StateKey;

impl Engine {
    /// Creates a conversation with only this device in it. The outbox then holds the channel
    /// creation; add members with [`Engine::add_members`].
    pub fn create_conversation(
        &mut self,
        kind: ConversationKind,
        name: &str,
        now: u64,
    ) -> Result<ChannelId, EngineError> {
        let name = name.trim();
        if name.len() > MAX_NAME_BYTES {
            return Err(EngineError::TooLong { len: name.len(), max: MAX_NAME_BYTES });
        }
        let id = ChannelId::from_slice(&self.random_id()).expect("16 bytes");
        let mut key = [0u8; 32];
        self.rng.fill_bytes(&mut key);
        let meta_key = MetaKey::from_bytes(key);
        let nonce = self.nonce();
        let meta = GroupMeta {
            kind,
            name: name.to_string(),
            created_by: self.user().clone(),
            created_at: now,
            disappear_secs: 0,
        };
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            self.identity.signer(),
            &create_config(
                // A group has roles, its creator the first admin; in a direct chat both
                // people manage it alike.
                std::iter::once(meta.to_extension(Some(&meta_key), id.as_bytes(), nonce, self.crypto()))
                    .chain((kind == ConversationKind::Group).then(|| admins_extension(std::slice::from_ref(self.user()))))
                    .collect(),
            )?,
            GroupId::from_slice(id.as_bytes()),
            self.identity.credential_with_key(),
        )
        .map_err(EngineError::mls)?;
        self.groups.insert(id.clone(), group);
        self.conversations.insert(
            id.clone(),
            Conversation {
                id: id.clone(),
                kind,
                name: meta.name,
                created_by: meta.created_by,
                created_at: now,
                members: vec![self.user().clone()],
                unread: 0,
                last_activity: now,
                active: true,
                epoch: 0,
                len: 0,
                disappear_secs: 0,
                read_upto: 0,
                refused_commits: 0,
                refused_recent: Vec::new(),
                request: false,
                invited_by: None,
                hidden: false,
                profile_shared: None,
                meta_key: Some(meta_key),
                rejoin: false,
                admins: (kind == ConversationKind::Group).then(|| vec![self.user().clone()]),
            },
        );
        self.dirty.insert(StateKey::Conversation(id.clone()));
        self.push_outbox(id.clone(), PendingOp::CreateChannel);
        let me = self.user().clone();
        let dev = self.device_id();
        let sys = self.system_message(me, dev, now, SystemEvent::Created);
        self.append(&id, sys, false);
        Ok(id)
    }

    /// Queues adding the devices whose key packages were claimed. Each package must belong to
    /// a device whose record was checked with [`Engine::learn_devices`].
    pub fn add_members(&mut self, conv: &ChannelId, packages: Vec<ClaimedPackage>) -> Result<(), EngineError> {
        self.require_active(conv)?;
        if packages.is_empty() {
            return Err(EngineError::BadMembers("no devices to add".into()));
        }
        for p in &packages {
            self.verify_package(p)?;
        }
        let members = self.conversations.get(conv).map(|c| c.members.clone()).unwrap_or_default();
        if packages.iter().any(|p| !members.contains(&p.user)) {
            self.require_admin(conv, "add members")?;
        }
        // Whoever this account adds is someone it chats with.
        // (The step has no clock: the conversation's last activity stands for "now".)
        let at = self.conversations.get(conv).map_or(0, |c| c.last_activity);
        let added: Vec<(UserId, u64)> = packages.iter().map(|p| (p.user.clone(), at)).collect();
        self.add_contacts(added);
        self.push_outbox(
            conv.clone(),
            PendingOp::group_change(packages, vec![], false, None),
        );
        Ok(())
    }

    /// Checks claimed key packages against the known device records without using them.
    pub fn check_packages(&self, packages: &[ClaimedPackage]) -> Result<(), EngineError> {
        packages.iter().try_for_each(|p| self.verify_package(p).map(|_| ()))
    }

    /// Queues removing every device of `users` from the conversation.
    pub fn remove_members(&mut self, conv: &ChannelId, users: Vec<UserId>) -> Result<(), EngineError> {
        self.require_active(conv)?;
        let c = self.conversations.get(conv).ok_or(EngineError::NoSuchConversation)?;
        if users.is_empty() {
            return Err(EngineError::BadMembers("nobody to remove".into()));
        }
        if users.iter().any(|u| u == self.user()) {
            return Err(EngineError::BadMembers("you cannot remove yourself this way".into()));
        }
        if let Some(u) = users.iter().find(|u| !c.members.contains(u)) {
            return Err(EngineError::BadMembers(format!("{u} is not a member")));
        }
        self.require_admin(conv, "remove members")?;
        self.push_outbox(
            conv.clone(),
            PendingOp::group_change(vec![], users, false, None),
        );
        Ok(())
    }

    /// Whether this user may manage `conv` (add and remove members, change its settings and
    /// roles): it is an admin, or the conversation has no roles.
    pub fn is_admin(&self, conv: &ChannelId) -> bool {
        self.conversations.get(conv).is_some_and(|c| c.admins.as_ref().is_none_or(|a| a.contains(self.user())))
    }

    pub(super) fn require_admin(&self, conv: &ChannelId, what: &'static str) -> Result<(), EngineError> {
        if self.is_admin(conv) { Ok(()) } else { Err(EngineError::NotAdmin(what)) }
    }

    /// Queues making `user` an admin of `conv` (`admin`) or a member only. Admins only; a
    /// conversation keeps at least one admin, and one made before roles has none to change.
    pub fn set_admin(&mut self, conv: &ChannelId, user: &UserId, admin: bool) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.require_admin(conv, "change roles")?;
        let c = self.conversations.get(conv).ok_or(EngineError::NoSuchConversation)?;
        let Some(current) = c.admins.clone() else {
            return Err(EngineError::BadMembers("this conversation was made before roles; everyone manages it".into()));
        };
        if !c.members.contains(user) {
            return Err(EngineError::BadMembers(format!("{user} is not a member")));
        }
        let mut admins: Vec<UserId> = current.into_iter().filter(|u| u != user).collect();
        if admin {
            admins.push(user.clone());
        }
        if admins.is_empty() {
            return Err(EngineError::BadMembers("a conversation keeps at least one admin".into()));
        }
        admins.sort();
        self.push_outbox(conv.clone(), PendingOp::admins_change(admins));
        Ok(())
    }

    /// The devices with a leaf in the conversation's group (each member's devices).
    pub fn member_devices(&self, conv: &ChannelId) -> Vec<DeviceAddress> {
        let Some(group) = self.groups.get(conv) else { return Vec::new() };
        group.members().filter_map(|m| device_of_credential(&m.credential).ok()).collect()
    }

    /// This account's devices the directory lists (as last learned with
    /// [`Engine::learn_devices`]) that are missing from a conversation, by conversation: claim
    /// a key package of each (`claimKeyPackages` naming them) and add them with
    /// [`Engine::add_members`], so a newly linked device joins every conversation. Devices
    /// whose add is already queued are left out.
    pub fn own_devices_missing(&self) -> Vec<(ChannelId, Vec<DeviceId>)> {
        let me = self.user();
        let own = self.device_id();
        let Some(known) = self.known.get(me) else { return Vec::new() };
        let mut out = Vec::new();
        for conv in self.groups.keys() {
            if self.require_active(conv).is_err() {
                continue;
            }
            let present = self.member_devices(conv);
            let queued = |d: &DeviceId| {
                self.outbox.values().any(|i| match &i.op {
                    PendingOp::Membership { add, .. } => &i.conv == conv && add.iter().any(|p| p.user == *me && p.device == *d),
                    _ => false,
                })
            };
            let missing: Vec<DeviceId> = known
                .devices
                .keys()
                .filter(|d| **d != own && !present.iter().any(|p| p.user == *me && p.device == **d) && !queued(d))
                .copied()
                .collect();
            if !missing.is_empty() {
                out.push((conv.clone(), missing));
            }
        }
        out
    }

    /// Queues, in every conversation, removing the leaves of this account's devices that the
    /// directory no longer lists: devices revoked (by this device or another of the account),
    /// which must not keep reading the conversation. Call it after [`Engine::learn_devices`]
    /// for this device's own user; a removal already queued is not queued again. Returns the
    /// conversations where one was queued.
    pub fn remove_revoked_own_devices(&mut self) -> Vec<ChannelId> {
        let me = self.user().clone();
        let own = self.device_id();
        let Some(known) = self.known.get(&me) else { return Vec::new() };
        if !known.devices.contains_key(&own) {
            return Vec::new(); // a list without this device is not one to act on
        }
        let mut queued = Vec::new();
        for conv in self.groups.keys() {
            if self.require_active(conv).is_err() {
                continue;
            }
            let revoked: Vec<DeviceAddress> = self
                .member_devices(conv)
                .into_iter()
                .filter(|d| d.user == me && d.device != own && !known.devices.contains_key(&d.device))
                .collect();
            let already = self.outbox.values().any(|i| {
                &i.conv == conv
                    && matches!(&i.op, PendingOp::Membership { remove_devices, .. }
                        if revoked.iter().all(|d| remove_devices.contains(d)))
            });
            if !revoked.is_empty() && !already {
                queued.push((conv.clone(), revoked));
            }
        }
        for (conv, devices) in &queued {
            self.push_outbox(conv.clone(), PendingOp::device_removal(devices.clone()));
        }
        queued.into_iter().map(|(c, _)| c).collect()
    }

    /// Queues a commit that only replaces this device's own leaf keys (an MLS self-update,
    /// for post-compromise security). Like a membership change it goes through the outbox:
    /// built when it reaches the head of its conversation, rebuilt if another commit wins the
    /// epoch, settled when the server accepts it.
    pub fn update_keys(&mut self, conv: &ChannelId) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.push_outbox(
            conv.clone(),
            PendingOp::group_change(vec![], vec![], true, None),
        );
        Ok(())
    }

    pub(super) fn require_active(&self, conv: &ChannelId) -> Result<(), EngineError> {
        match self.conversations.get(conv) {
            None => Err(EngineError::NoSuchConversation),
            Some(c) if !c.active => Err(EngineError::NotActive),
            Some(_) => Ok(()),
        }
    }

    /// Parses and checks a claimed key package against the known device records.
    fn verify_package(&self, p: &ClaimedPackage) -> Result<KeyPackage, EngineError> {
        let kp = KeyPackageIn::tls_deserialize_exact(p.key_package.as_slice())
            .map_err(|_| EngineError::Unverified(format!("a key package of {} is malformed", p.user)))?
            .validate(openmls_traits::OpenMlsProvider::crypto(&self.provider), ProtocolVersion::Mls10)
            .map_err(|_| EngineError::Unverified(format!("a key package of {} is invalid", p.user)))?;
        if kp.ciphersuite() != CIPHERSUITE {
            return Err(EngineError::Unverified(format!("a key package of {} uses another cipher suite", p.user)));
        }
        let addr = device_of_credential(kp.leaf_node().credential())?;
        self.require_verified_unchanged(&p.user)?;
        if addr.user != p.user || addr.device != p.device {
            return Err(EngineError::Unverified(format!("a key package of {} names another device", p.user)));
        }
        let known = self
            .known
            .get(&p.user)
            .ok_or_else(|| EngineError::Unverified(format!("the devices of {} have not been checked", p.user)))?;
        let key = known
            .devices
            .get(&p.device)
            .ok_or_else(|| EngineError::Unverified(format!("{} has no such device", p.user)))?;
        if hex::encode(kp.leaf_node().signature_key().as_slice()) != *key {
            return Err(EngineError::Unverified(format!(
                "a key package of {} is not signed by its registered device key",
                p.user
            )));
        }
        Ok(kp)
    }

    /// Turns a membership intent into a commit on the group (which then has a pending commit).
    /// With `self_update` the commit also replaces this device's leaf keys, and with
    /// `settings` it sets the disappearing-message timer and/or the admins; any may be all it
    /// does.
    pub(super) fn build_membership_commit(
        &mut self,
        conv: &ChannelId,
        add: &[ClaimedPackage],
        remove: &[UserId],
        remove_devices: &[DeviceAddress],
        self_update: bool,
        settings: &Settings,
    ) -> Result<BuiltCommit, EngineError> {
        let set_timer = settings.timer;
        let group = self.groups.get(conv).ok_or(EngineError::NoSuchConversation)?;
        let present: Vec<(LeafNodeIndex, DeviceAddress)> = group
            .members()
            .filter_map(|m| device_of_credential(&m.credential).ok().map(|d| (m.index, d)))
            .collect();
        // Skip devices that are already members (someone else may have added them meanwhile).
        let mut kps = Vec::new();
        let mut add_devs = Vec::new();
        for p in add {
            let addr = DeviceAddress { user: p.user.clone(), device: p.device };
            if present.iter().any(|(_, d)| *d == addr) || add_devs.contains(&addr) {
                continue;
            }
            kps.push(self.verify_package(p)?);
            add_devs.push(addr);
        }
        let (idx, remove_devs): (Vec<LeafNodeIndex>, Vec<DeviceAddress>) =
            present.into_iter().filter(|(_, d)| remove.contains(&d.user) || remove_devices.contains(d)).unzip();
        if kps.is_empty() && idx.is_empty() && !self_update && set_timer.is_none() && settings.admins.is_none() {
            return Err(EngineError::BadMembers("nothing to change: they are already members".into()));
        }
        let mut added_users: Vec<UserId> = add_devs.iter().map(|d| d.user.clone()).collect();
        added_users.dedup();
        // A user is removed when all their leaves go; removing some devices keeps the user.
        let mut removed_users: Vec<UserId> =
            remove_devs.iter().map(|d| d.user.clone()).filter(|u| remove.contains(u)).collect();
        removed_users.dedup();

        let skew = self.conversations.get(conv).map_or(0, |c| c.refused_commits);
        let meta_key = self.conversations.get(conv).and_then(|c| c.meta_key.clone());
        let nonce = self.nonce();
        let group = self.groups.get_mut(conv).expect("checked above");
        // The server's epoch counts every commit it accepted, also those this device refused.
        let epoch = group.epoch().as_u64() + skew;
        let crypto = openmls_traits::OpenMlsProvider::crypto(&self.provider);
        let new_exts = if set_timer.is_some() || settings.admins.is_some() {
            let mut exts = group.extensions().clone();
            if let Some(secs) = set_timer {
                let mut meta = GroupMeta::from_extensions(group.extensions(), meta_key.as_ref(), conv.as_bytes(), crypto)
                    .map_err(|e| EngineError::Invalid(e.to_string()))?;
                meta.disappear_secs = secs;
                let sealed = meta.to_extension(meta_key.as_ref(), conv.as_bytes(), nonce, crypto);
                exts.add_or_replace(sealed).map_err(EngineError::mls)?;
            }
            if let Some(admins) = &settings.admins {
                exts.add_or_replace(admins_extension(admins)).map_err(EngineError::mls)?;
            }
            // openmls accepts a changed private extension only when the group requires
            // support for it (every member's leaf already advertises it).
            let mut types = vec![GroupMeta::extension_type()];
            if exts.unknown(roles::ADMINS_EXTENSION).is_some() {
                types.push(ExtensionType::Unknown(roles::ADMINS_EXTENSION));
            }
            let required = openmls::prelude::RequiredCapabilitiesExtension::new(&types, &[], &[]);
            exts.add_or_replace(openmls::prelude::Extension::RequiredCapabilities(required)).map_err(EngineError::mls)?;
            Some(exts)
        } else {
            None
        };
        let makes_welcome = !kps.is_empty();
        let mut builder = group.commit_builder().force_self_update(self_update).propose_adds(kps).propose_removals(idx);
        if let Some(exts) = new_exts {
            builder = builder.propose_group_context_extensions(exts).map_err(EngineError::mls)?;
        }
        let mut builder = builder.load_psks(openmls_traits::OpenMlsProvider::storage(&self.provider)).map_err(EngineError::mls)?;
        // What a Welcome's GroupInfo hands the members it adds: the metadata key, and how far
        // the server's epoch is ahead. Without a Welcome no GroupInfo is needed at all.
        let info_exts: Vec<_> = meta_key
            .iter()
            .map(MetaKey::to_group_info_extension)
            .chain(super::directory::epoch_offset_extension(skew))
            .collect();
        if makes_welcome && !info_exts.is_empty() {
            builder = builder.create_group_info_with_extensions(info_exts).map_err(EngineError::mls)?;
        }
        let bundle = builder
            .build(
                openmls_traits::OpenMlsProvider::rand(&self.provider),
                openmls_traits::OpenMlsProvider::crypto(&self.provider),
                self.identity.signer(),
                |_| true,
            )
            .map_err(EngineError::mls)?
            .stage_commit(&self.provider)
            .map_err(EngineError::mls)?;
        let (commit, welcome, _) = bundle.into_messages();
        Ok(BuiltCommit {
            epoch,
            commit: commit.tls_serialize_detached().map_err(EngineError::mls)?,
            welcome: match welcome {
                Some(w) => w.tls_serialize_detached().map_err(EngineError::mls)?,
                None => Vec::new(),
            },
            add: add_devs,
            remove: remove_devs,
            added_users,
            removed_users,
            sets_admins: settings.admins.is_some(),
        })
    }

    /// The server accepted our commit: merge it and show the change.
    pub(super) fn commit_accepted(&mut self, conv: &ChannelId, built: &BuiltCommit, now: u64, server_time: u64) {
        let Some(group) = self.groups.get_mut(conv) else { return };
        if group.pending_commit().is_some() {
            if let Err(e) = group.merge_pending_commit(&self.provider) {
                // Merging our own staged commit only fails on a storage error, which the
                // in-memory storage does not have; keep the group as it is and say so.
                self.note_failure(conv, now, format!("could not apply our change: {e:?}"));
                return;
            }
        }
        let timer_before = self.conversations.get(conv).map(|c| c.disappear_secs);
        let admins_before = self.conversations.get(conv).and_then(|c| c.admins.clone());
        self.sync_conversation(conv);
        self.push_outbox(conv.clone(), PendingOp::PublishGroupInfo);
        let me = self.user().clone();
        let dev = self.device_id();
        if built.sets_admins {
            self.note_admins_change(conv, admins_before, &me, dev, now, server_time);
        }
        let timer_after = self.conversations.get(conv).map(|c| c.disappear_secs);
        if let (true, Some(secs)) = (timer_before != timer_after, timer_after) {
            let mut m = self.system_message(me.clone(), dev, now, SystemEvent::TimerChanged(secs));
            m.server_time = server_time;
            self.append(conv, m, false);
        }
        if !built.added_users.is_empty() {
            let mut m = self.system_message(me.clone(), dev, now, SystemEvent::Added(built.added_users.clone()));
            m.server_time = server_time;
            self.append(conv, m, false);
        }
        if !built.removed_users.is_empty() {
            let mut m = self.system_message(me, dev, now, SystemEvent::Removed(built.removed_users.clone()));
            m.server_time = server_time;
            self.append(conv, m, false);
        }
    }

    /// Our commit will not be applied: forget it so the group can process others'.
    pub(super) fn discard_pending_commit(&mut self, conv: &ChannelId) {
        if let Some(group) = self.groups.get_mut(conv) {
            if group.pending_commit().is_some() {
                // Clearing only touches in-memory storage; it cannot fail there.
                let _ = group.clear_pending_commit(openmls_traits::OpenMlsProvider::storage(&self.provider));
            }
        }
    }

    /// Shows who became admin and who no longer is, after a commit that changed the roles.
    pub(super) fn note_admins_change(
        &mut self,
        conv: &ChannelId,
        before: Option<Vec<UserId>>,
        by: &UserId,
        dev: DeviceId,
        now: u64,
        server_time: u64,
    ) {
        let (Some(before), Some(after)) = (before, self.conversations.get(conv).and_then(|c| c.admins.clone())) else { return };
        let made: Vec<UserId> = after.iter().filter(|u| !before.contains(u)).cloned().collect();
        let unmade: Vec<UserId> = before.iter().filter(|u| !after.contains(u)).cloned().collect();
        if made.is_empty() && unmade.is_empty() {
            return;
        }
        let mut m = self.system_message(by.clone(), dev, now, SystemEvent::AdminsChanged { made, unmade });
        m.server_time = server_time;
        self.append(conv, m, false);
    }

    pub(super) fn system_message(
        &mut self,
        sender: UserId,
        sender_device: qpq_types::DeviceId,
        now: u64,
        ev: SystemEvent,
    ) -> Message {
        Message {
            id: self.new_message_id(),
            index: 0,
            sender,
            sender_device,
            outgoing: false,
            sent_at: now,
            server_time: 0,
            content: Content::System(ev),
            status: Status::Received,
            delivered_to: vec![],
            read_by: vec![],
            edited: false,
            reactions: Default::default(),
            expires_at: None,
        }
    }

    pub(super) fn note_failure(&mut self, conv: &ChannelId, now: u64, why: String) {
        if !self.conversations.contains_key(conv) {
            return;
        }
        let me = self.user().clone();
        let dev = self.device_id();
        let m = self.system_message(me, dev, now, SystemEvent::Undecryptable(why));
        self.append(conv, m, false);
        self.events.push(Event::ConversationChanged(conv.clone()));
    }

    /// Keys of the conversations this device is in; used by tests and shells.
    pub fn conversation_ids(&self) -> Vec<ChannelId> {
        self.conversations.keys().cloned().collect()
    }
}

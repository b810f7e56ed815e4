//! Receiving: Welcomes, commits and application messages from the delivery queue.

use openmls::prelude::tls_codec::Deserialize as _;
use std::collections::BTreeSet;

use openmls::prelude::{
    MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, ProtocolMessage, Sender, StagedCommit, StagedWelcome,
};
use qpq_types::{ChannelId, DeviceAddress, Envelope, EnvelopeKind, UserId};

use openmls_traits::types::HashType;

use super::directory::{epoch_offset, Intake, LeafCheck};
use super::{join_config, Engine, Event};
use crate::app_message::{AppMessage, Body, CodecError, MessageId, ReceiptKind};
use crate::conversation::{CallOutcome, Content, Conversation, Message, Status, SystemEvent};
use crate::error::EngineError;
use crate::group_meta::{GroupMeta, MetaKey};
use crate::identity::device_of_credential;
use crate::outbox::PendingOp;
use crate::state::StateKey;

/// How many refused commits a conversation remembers, to count a copy delivered again once.
const REFUSED_REMEMBERED: usize = 16;

impl Engine {
    /// Processes one envelope from the delivery queue. Envelopes at or below
    /// [`Engine::cursor`] are duplicates and ignored. Whatever happens, the cursor moves past
    /// the envelope, so a bad message can never wedge the queue; an error says why it was
    /// rejected (and the conversation shows a notice when it is known).
    pub fn receive(&mut self, env: &Envelope, now: u64) -> Result<(), EngineError> {
        if env.seq <= self.cursor {
            return Ok(());
        }
        self.cursor = env.seq;
        self.dirty.insert(StateKey::Cursor);
        let r = self.intake_or_hold(env, now);
        if let Err(e) = &r {
            self.after_failure(env, e, now);
        }
        r
    }

    /// Processes one delivery; users in `asked` were fetched from the directory for it.
    pub(super) fn intake(&mut self, env: &Envelope, now: u64, asked: &BTreeSet<UserId>) -> Result<Intake, EngineError> {
        match env.kind {
            EnvelopeKind::Welcome => self.receive_welcome(env, now, asked),
            EnvelopeKind::Application | EnvelopeKind::Commit | EnvelopeKind::Proposal => {
                self.receive_group_message(env, now, asked)
            }
            EnvelopeKind::Devices => {
                self.devices_hint(env);
                Ok(Intake::Done)
            }
            EnvelopeKind::Account => {
                self.account_hint();
                Ok(Intake::Done)
            }
        }
    }

    /// Shows why a delivery was rejected in its conversation. A rejected commit still took an
    /// epoch at the server, which the conversation counts so its own next commit names the
    /// server's epoch.
    pub(super) fn after_failure(&mut self, env: &Envelope, e: &EngineError, now: u64) {
        if matches!(e, EngineError::NotActive | EngineError::Ignored(_)) {
            return;
        }
        if !self.conversations.contains_key(&env.channel) {
            return;
        }
        if env.kind == EnvelopeKind::Commit {
            self.count_refused_commit(env);
        }
        let why = match e {
            EngineError::UntrustedMember { .. } => e.to_string(),
            _ => format!("a message could not be read ({})", e.code()),
        };
        self.note_failure(&env.channel, now, why);
    }

    /// Counts a commit the server accepted but this device could not apply, once: a copy
    /// delivered again, or one of an epoch already passed, took no new server epoch.
    fn count_refused_commit(&mut self, env: &Envelope) {
        let Some(group) = self.groups.get(&env.channel) else { return };
        let ours = group.epoch().as_u64();
        let theirs = super::outbound::epoch_of(&env.payload);
        if theirs.is_none_or(|e| e < ours) {
            return;
        }
        let Some(hash) = self.commit_hash(&env.payload) else { return };
        let Some(c) = self.conversations.get_mut(&env.channel) else { return };
        if !c.active || c.refused_recent.contains(&hash) {
            return;
        }
        if c.refused_recent.len() >= REFUSED_REMEMBERED {
            c.refused_recent.remove(0);
        }
        c.refused_recent.push(hash);
        c.refused_commits += 1;
        // Out of step with the others: rejoin (where the server keeps the group's state).
        c.rejoin = true;
        self.dirty.insert(StateKey::Conversation(env.channel.clone()));
    }

    /// What a refused commit is remembered by (`Conversation::refused_recent`).
    fn commit_hash(&self, payload: &[u8]) -> Option<String> {
        let crypto = openmls_traits::OpenMlsProvider::crypto(&self.provider);
        let hash = openmls_traits::crypto::OpenMlsCrypto::hash(crypto, HashType::Sha2_256, payload).ok()?;
        Some(hex::encode(&hash[..16]))
    }

    /// True for a copy of a commit this device refused before.
    fn refused_before(&self, conv: &ChannelId, payload: &[u8]) -> bool {
        let Some(c) = self.conversations.get(conv) else { return false };
        self.commit_hash(payload).is_some_and(|h| c.refused_recent.contains(&h))
    }

    fn receive_welcome(&mut self, env: &Envelope, now: u64, asked: &BTreeSet<UserId>) -> Result<Intake, EngineError> {
        if let Some(c) = self.conversations.get(&env.channel) {
            if c.active {
                return Err(EngineError::Invalid("a Welcome for a conversation we are in".into()));
            }
        }
        let msg = MlsMessageIn::tls_deserialize_exact(env.payload.as_slice())
            .map_err(|_| EngineError::Invalid("not an MLS message".into()))?;
        let MlsMessageBodyIn::Welcome(welcome) = msg.extract() else {
            return Err(EngineError::Invalid("not a Welcome".into()));
        };
        // A conversation we were removed from keeps its inactive group (for reading back what
        // it shows) until a Welcome adds us again; that Welcome replaces it.
        let rejoin = self.conversations.contains_key(&env.channel);
        let was_hidden = self.conversations.get(&env.channel).is_some_and(|c| c.hidden);
        // openmls deletes the key package the Welcome used; a Welcome held or refused below
        // must leave it in place.
        let snapshot = self.mls_snapshot();
        let builder =
            StagedWelcome::build_from_welcome(&self.provider, &join_config(), welcome).map_err(EngineError::mls)?;
        let info_exts = builder.processed_welcome().unverified_group_info().extensions();
        let offset = epoch_offset(info_exts);
        let mut meta_key = MetaKey::from_group_info(info_exts);
        let builder = if rejoin { builder.replace_old_group() } else { builder };
        let staged = builder.build().map_err(EngineError::mls)?;
        if staged.group_context().group_id().as_slice() != env.channel.as_bytes() {
            return Err(EngineError::Invalid("the Welcome is for another conversation".into()));
        }
        let mut check = LeafCheck::new(asked);
        let verdict = staged
            .members()
            .try_for_each(|m| self.check_leaf(&m.credential, &m.signature_key, &mut check).map(|_| ()));
        match verdict.map(|_| check.outcome()) {
            Ok(Intake::Done) => {}
            other => {
                drop(staged);
                self.mls_rollback(&env.channel, snapshot);
                return other;
            }
        }
        // The member who signed the GroupInfo (checked against the directory above).
        let Some(inviter) = staged.welcome_sender().ok().and_then(|l| device_of_credential(l.credential()).ok()) else {
            drop(staged);
            self.mls_rollback(&env.channel, snapshot);
            return Err(EngineError::Invalid("the Welcome does not say which member sent it".into()));
        };
        let meta = match GroupMeta::from_extensions(
            staged.group_context().extensions(),
            meta_key.as_ref(),
            env.channel.as_bytes(),
            openmls_traits::OpenMlsProvider::crypto(&self.provider),
        ) {
            // A key is kept only where the metadata is sealed: a conversation that keeps it
            // in clear has no key its other members share.
            Ok(meta) => {
                if !GroupMeta::is_sealed(staged.group_context().extensions()) {
                    meta_key = None;
                }
                meta
            }
            Err(e) => {
                drop(staged);
                self.mls_rollback(&env.channel, snapshot);
                return Err(EngineError::Invalid(format!("the Welcome's conversation details cannot be read: {e}")));
            }
        };
        // Added by someone who is not a contact: a request, unless this account was in it
        // before (a rejoin, or a conversation coming back from a backup) and kept it.
        let request = inviter.user != *self.user()
            && !self.is_contact(&inviter.user)
            && (!rejoin || was_hidden)
            && !self.restoring.contains_key(&env.channel);
        if let Some(mut old) = self.groups.remove(&env.channel) {
            // Only in-memory storage is touched; it cannot fail there.
            let _ = old.delete(openmls_traits::OpenMlsProvider::storage(&self.provider));
        }
        let group = staged.into_group(&self.provider).map_err(EngineError::mls)?;
        let id = env.channel.clone();
        let prev_len = self.conversations.get(&id).map(|c| c.len).unwrap_or(0);
        self.groups.insert(id.clone(), group);
        self.conversations.insert(
            id.clone(),
            Conversation {
                id: id.clone(),
                kind: meta.kind,
                name: meta.name.clone(),
                created_by: meta.created_by.clone(),
                created_at: meta.created_at,
                members: vec![],
                unread: 0,
                last_activity: env.server_time.max(now),
                active: true,
                epoch: 0,
                len: prev_len,
                disappear_secs: meta.disappear_secs,
                read_upto: prev_len,
                refused_commits: offset,
                refused_recent: Vec::new(),
                request,
                invited_by: Some(inviter.user.clone()),
                hidden: false,
                profile_shared: None,
                meta_key,
                rejoin: false,
                admins: None,
            },
        );
        self.sync_conversation(&id);
        // Contacts are kept per device: a device that another of this account's devices
        // adds (a linked one), or whose conversation comes back from a backup, takes the
        // members of those conversations as its contacts, as the account has them.
        if inviter.user == *self.user() || self.restoring.contains_key(&id) {
            let members: Vec<(UserId, u64)> =
                self.conversations.get(&id).map(|c| c.members.iter().map(|u| (u.clone(), now)).collect()).unwrap_or_default();
            self.add_contacts(members);
        }
        let mut m = self.system_message(inviter.user, inviter.device, now, SystemEvent::Joined);
        m.server_time = env.server_time;
        self.append(&id, m, false);
        self.import_restored(&id);
        Ok(Intake::Done)
    }

    fn receive_group_message(&mut self, env: &Envelope, now: u64, asked: &BTreeSet<UserId>) -> Result<Intake, EngineError> {
        let conv = env.channel.clone();
        if !self.groups.contains_key(&conv) {
            return Err(EngineError::NoSuchConversation);
        }
        let msg = MlsMessageIn::tls_deserialize_exact(env.payload.as_slice())
            .map_err(|_| EngineError::Invalid("not an MLS message".into()))?;
        let pm: ProtocolMessage = msg
            .try_into_protocol_message()
            .map_err(|_| EngineError::Invalid("not a group message".into()))?;
        // A conversation this device no longer takes part in still takes commits while one of
        // its queued messages (a leave) waits for the commit that made it stale.
        if !(pm.is_handshake_message() && self.awaits_commit(&conv)) {
            self.require_active(&conv)?;
        }
        if pm.group_id().as_slice() != conv.as_bytes() {
            return Err(EngineError::Invalid("the message is for another conversation".into()));
        }
        // A copy of a commit refused before took its server epoch already: it does not
        // compete with this device's own commit, which names the epoch after it.
        if !self.refused_before(&conv, &env.payload) {
            self.reconcile_own_commit(&conv, &pm, now);
        }
        // Processing a commit consumes secrets; one held or refused below must leave none.
        let snapshot = pm.is_handshake_message().then(|| self.mls_snapshot());

        let group = self.groups.get_mut(&conv).expect("checked above");
        // Members of the current epoch, to name removed members after the merge.
        let before: Vec<(u32, DeviceAddress)> = group
            .members()
            .filter_map(|m| device_of_credential(&m.credential).ok().map(|d| (m.index.u32(), d)))
            .collect();
        let processed = group.process_message(&self.provider, pm).map_err(EngineError::mls)?;
        let sender = device_of_credential(processed.credential())?;
        let processed_sender = processed.sender().clone();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                let bytes = app.into_bytes();
                self.receive_app_message(&conv, &sender, &bytes, env.server_time, now).map(|_| Intake::Done)
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let committer = match processed_sender {
                    Sender::Member(i) => Some(i.u32()),
                    _ => None,
                };
                let checked = self.check_commit_leaves(&staged, committer, &before, asked).and_then(|i| {
                    self.check_commit_roles(&conv, &staged, &sender.user, &before, committer.is_none())?;
                    Ok(i)
                });
                match checked {
                    Ok(Intake::Done) => {}
                    other => {
                        drop(staged);
                        if let Some(s) = snapshot {
                            self.mls_rollback(&conv, s);
                        }
                        return other;
                    }
                }
                let mut added: Vec<UserId> = staged
                    .add_proposals()
                    .filter_map(|p| device_of_credential(p.add_proposal().key_package().leaf_node().credential()).ok())
                    .map(|d| d.user)
                    .collect();
                added.dedup();
                let mut removed: Vec<UserId> = staged
                    .remove_proposals()
                    .filter_map(|p| {
                        let idx = p.remove_proposal().removed().u32();
                        before.iter().find(|(i, _)| *i == idx).map(|(_, d)| d.user.clone())
                    })
                    .collect();
                removed.dedup();
                let self_removed = staged.self_removed();
                let timer_before = self.conversations.get(&conv).map(|c| c.disappear_secs);
                let admins_before = self.conversations.get(&conv).and_then(|c| c.admins.clone());
                let settings = staged
                    .queued_proposals()
                    .any(|p| matches!(p.proposal(), openmls::prelude::Proposal::GroupContextExtensions(_)));
                let group = self.groups.get_mut(&conv).expect("checked above");
                group.merge_staged_commit(&self.provider, *staged).map_err(EngineError::mls)?;
                self.sync_conversation(&conv);
                // Removing some of a user's devices (revoked ones) leaves the user a member.
                if let Some(c) = self.conversations.get(&conv) {
                    removed.retain(|u| !c.members.contains(u));
                }
                let (who, dev) = (sender.user.clone(), sender.device);
                if settings {
                    self.note_admins_change(&conv, admins_before, &who, dev, now, env.server_time);
                }
                let timer_after = self.conversations.get(&conv).map(|c| c.disappear_secs);
                if timer_before != timer_after {
                    if let Some(secs) = timer_after {
                        let mut m = self.system_message(who.clone(), dev, now, SystemEvent::TimerChanged(secs));
                        m.server_time = env.server_time;
                        self.append(&conv, m, false);
                    }
                }
                if self_removed {
                    let mut m = self.system_message(who, dev, now, SystemEvent::YouWereRemoved);
                    m.server_time = env.server_time;
                    self.append(&conv, m, true);
                    self.pending_receipts.remove(&conv);
                    self.drop_conversation_outbox(&conv);
                    return Ok(Intake::Done);
                }
                if !added.is_empty() {
                    let mut m = self.system_message(who.clone(), dev, now, SystemEvent::Added(added));
                    m.server_time = env.server_time;
                    self.append(&conv, m, false);
                }
                if !removed.is_empty() {
                    let mut m = self.system_message(who, dev, now, SystemEvent::Removed(removed));
                    m.server_time = env.server_time;
                    self.append(&conv, m, false);
                }
                Ok(Intake::Done)
            }
            ProcessedMessageContent::OwnPrivateMessage => Ok(Intake::Done),
            _ => Err(EngineError::Invalid("proposals by reference are not used".into())),
        }
    }

    /// Checks a staged commit against the group's roles (`qpq_types::roles::check_commit`), as
    /// the node does: only admins change who is in the conversation and its settings.
    fn check_commit_roles(
        &self,
        conv: &ChannelId,
        staged: &StagedCommit,
        sender: &UserId,
        before: &[(u32, DeviceAddress)],
        external: bool,
    ) -> Result<(), EngineError> {
        let Some(admins) = self.conversations.get(conv).and_then(|c| c.admins.clone()) else { return Ok(()) };
        let removed: Vec<u32> = staged.remove_proposals().map(|p| p.remove_proposal().removed().u32()).collect();
        let users_before: Vec<UserId> = before.iter().map(|(_, d)| d.user.clone()).collect();
        let mut users_after: Vec<UserId> =
            before.iter().filter(|(i, _)| !removed.contains(i)).map(|(_, d)| d.user.clone()).collect();
        for p in staged.add_proposals() {
            users_after.push(device_of_credential(p.add_proposal().key_package().leaf_node().credential())?.user);
        }
        // An external commit (a member's rejoin) puts its sender's new leaf in a leaf of its own.
        if external {
            if let Some(leaf) = staged.update_path_leaf_node() {
                users_after.push(device_of_credential(leaf.credential())?.user);
            }
        }
        let settings = staged
            .queued_proposals()
            .any(|p| matches!(p.proposal(), openmls::prelude::Proposal::GroupContextExtensions(_)));
        let roles_kept = staged.group_context().extensions().unknown(qpq_types::roles::ADMINS_EXTENSION).is_some();
        qpq_types::roles::check_commit(&admins, sender, &users_before, &users_after, settings, roles_kept)
            .map_err(|why| EngineError::Invalid(format!("a change to the conversation is refused: {why}")))
    }

    /// Checks every leaf a staged commit would put into the tree: added members' leaves must be
    /// registered devices, and an updated leaf (an Update proposal's, or the committer's update
    /// path) must name the same device as the leaf it replaces and carry its registered key.
    fn check_commit_leaves(
        &self,
        staged: &StagedCommit,
        committer: Option<u32>,
        before: &[(u32, DeviceAddress)],
        asked: &BTreeSet<UserId>,
    ) -> Result<Intake, EngineError> {
        let mut check = LeafCheck::new(asked);
        let same_device = |index: Option<u32>, addr: &DeviceAddress| {
            let old = index.and_then(|i| before.iter().find(|(j, _)| *j == i)).map(|(_, d)| d);
            if old == Some(addr) {
                Ok(())
            } else {
                Err(EngineError::UntrustedMember { user: addr.user.clone() })
            }
        };
        for p in staged.add_proposals() {
            let leaf = p.add_proposal().key_package().leaf_node();
            self.check_leaf(leaf.credential(), leaf.signature_key().as_slice(), &mut check)?;
        }
        for p in staged.update_proposals() {
            let leaf = p.update_proposal().leaf_node();
            let addr = self.check_leaf(leaf.credential(), leaf.signature_key().as_slice(), &mut check)?;
            let index = match p.sender() {
                Sender::Member(i) => Some(i.u32()),
                _ => None,
            };
            same_device(index, &addr)?;
        }
        if let Some(leaf) = staged.update_path_leaf_node() {
            let addr = self.check_leaf(leaf.credential(), leaf.signature_key().as_slice(), &mut check)?;
            match committer {
                Some(_) => same_device(committer, &addr)?,
                // An external commit is only taken as a member's rejoin: it replaces the leaf
                // of the very device it names, and nothing else.
                None => {
                    let removed: Vec<u32> = staged.remove_proposals().map(|p| p.remove_proposal().removed().u32()).collect();
                    match removed.as_slice() {
                        [old] => same_device(Some(*old), &addr)?,
                        _ => return Err(EngineError::UntrustedMember { user: addr.user.clone() }),
                    }
                }
            }
        }
        Ok(check.outcome())
    }

    /// Before processing `pm`, settles our own in-flight commit for `conv` from what `pm`
    /// proves: a message of a later epoch means ours was accepted; another commit for our
    /// epoch means ours lost.
    fn reconcile_own_commit(&mut self, conv: &ChannelId, pm: &ProtocolMessage, now: u64) {
        let Some(group) = self.groups.get(conv) else { return };
        if group.pending_commit().is_none() {
            return;
        }
        let ours = group.epoch().as_u64();
        let theirs = pm.epoch().as_u64();
        if theirs > ours {
            self.settle_own_commit(conv, now);
        } else if theirs == ours && pm.is_handshake_message() {
            self.discard_pending_commit(conv);
        }
    }

    fn receive_app_message(
        &mut self,
        conv: &ChannelId,
        sender: &DeviceAddress,
        bytes: &[u8],
        server_time: u64,
        now: u64,
    ) -> Result<(), EngineError> {
        let msg = match AppMessage::decode(bytes) {
            Ok(m) => m,
            Err(CodecError::Version(_)) => {
                // A newer format: show it as unsupported rather than failing.
                let mut m = self.system_message(sender.user.clone(), sender.device, now, SystemEvent::Created);
                m.content = Content::Unsupported { kind: 0 };
                m.server_time = server_time;
                self.append(conv, m, false);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if self.seen.contains_key(&msg.id) {
            return Ok(()); // a duplicate (e.g. resent by its author after a lost reply)
        }
        let from_me = sender.user == *self.user();
        // Another device of this account wrote in a request (a receipt, a message): it was
        // accepted there, since nothing leaves a request before. A leave is a deletion.
        if from_me && self.is_request(conv) && !matches!(msg.body, Body::Leave { .. }) {
            self.accept(conv, false, now)?;
        }
        // What a blocked person sends in a shared group is not shown here (their leaving
        // still is, so that the member list stays right). Between two accounts the node
        // already drops it; what arrives there was sent before the block or after an unblock
        // that another device of this account made and this one has not read yet.
        let group = self.conversations.get(conv).is_some_and(|c| c.members.len() > 2);
        if !from_me && group && self.is_blocked(&sender.user) && !matches!(msg.body, Body::Leave { .. }) {
            return Ok(());
        }
        let content = match msg.body {
            Body::Text { text, reply_to } => Content::Text { text, reply_to },
            Body::File { file } => Content::File { file },
            Body::Unsupported { kind } => Content::Unsupported { kind },
            Body::Receipt { kind, ids } => {
                if !from_me {
                    self.apply_receipt(conv, &sender.user, kind, &ids);
                } else if kind == ReceiptKind::Read {
                    self.apply_read_elsewhere(conv, &ids);
                }
                return Ok(());
            }
            Body::Typing { active } => {
                if !from_me {
                    self.apply_typing(conv, &sender.user, active, server_time, now);
                }
                return Ok(());
            }
            Body::Reaction { target, emoji, remove } => {
                return self.apply_reaction(conv, &sender.user, target, &emoji, remove)
            }
            Body::Edit { target, text } => return self.apply_edit(conv, &sender.user, target, text),
            Body::Delete { target } => return self.apply_delete(conv, &sender.user, target),
            Body::Leave { reason } => return self.apply_leave(conv, sender, reason, server_time, now),
            // A stranger's request does not ring.
            Body::Call(_) if self.is_request(conv) => return Ok(()),
            Body::Call(signal) => return self.apply_call(conv, sender, signal, server_time, now),
            Body::Profile { card } => {
                self.receive_profile_card(conv, card);
                return Ok(());
            }
        };
        if !from_me {
            self.stop_typing(conv, &sender.user);
            self.unhide_on_message(conv);
        }
        let entry = Message {
            id: msg.id,
            index: 0,
            sender: sender.user.clone(),
            sender_device: sender.device,
            outgoing: from_me,
            sent_at: msg.sent_at,
            server_time,
            content,
            status: if from_me { Status::Sent } else { Status::Received },
            delivered_to: vec![],
            read_by: vec![],
            edited: false,
            reactions: Default::default(),
            expires_at: None,
        };
        self.append(conv, entry, !from_me);
        if !from_me {
            self.queue_receipt(conv, msg.id);
        }
        Ok(())
    }

    /// Another device of this account read `ids`: what it read is read here too.
    fn apply_read_elsewhere(&mut self, conv: &ChannelId, ids: &[MessageId]) {
        let upto = ids.iter().filter_map(|id| self.seen.get(id)).filter(|(c, _)| c == conv).map(|(_, i)| i + 1).max();
        let (Some(upto), Some(c)) = (upto, self.conversations.get(conv)) else { return };
        if upto <= c.read_upto {
            return;
        }
        let me = self.user().clone();
        let unread = self
            .history(conv)
            .iter()
            .filter(|m| m.index >= upto && !m.outgoing && m.sender != me)
            .filter(|m| m.is_content() || matches!(m.content, Content::Call { outcome: CallOutcome::Missed, .. }))
            .count() as u32;
        let c = self.conversations.get_mut(conv).expect("checked above");
        c.read_upto = upto;
        c.unread = c.unread.min(unread);
        self.dirty.insert(StateKey::Conversation(conv.clone()));
        self.events.push(Event::ConversationChanged(conv.clone()));
    }

    fn apply_receipt(&mut self, conv: &ChannelId, from: &UserId, kind: ReceiptKind, ids: &[MessageId]) {
        let others: Vec<UserId> = self
            .conversations
            .get(conv)
            .map(|c| c.members.iter().filter(|u| *u != self.user()).cloned().collect())
            .unwrap_or_default();
        for id in ids {
            let Some((c, index)) = self.seen.get(id).cloned() else { continue };
            if c != *conv {
                continue; // receipts only count within their own conversation
            }
            let Some(m) = self.message_mut(&c, index) else { continue };
            if !m.outgoing {
                continue;
            }
            if !m.delivered_to.contains(from) {
                m.delivered_to.push(from.clone());
            }
            if kind == ReceiptKind::Read && !m.read_by.contains(from) {
                m.read_by.push(from.clone());
            }
            if matches!(m.status, Status::Sent | Status::Sending)
                && others.iter().all(|u| m.delivered_to.contains(u))
            {
                m.status = Status::Delivered;
            }
        }
    }

    fn drop_conversation_outbox(&mut self, conv: &ChannelId) {
        let orders: Vec<u64> = self.outbox.values().filter(|i| i.conv == *conv).map(|i| i.order).collect();
        for o in orders {
            if let Some(PendingOp::Message { msg_id, in_history: true, .. }) = self.outbox.get(&o).map(|i| i.op.clone()) {
                if let Some((c, i)) = self.seen.get(&msg_id).cloned() {
                    if let Some(m) = self.message_mut(&c, i) {
                        m.status = Status::Failed("you were removed from this conversation".into());
                    }
                }
            }
            self.outbox.remove(&o);
            self.dirty.insert(StateKey::Outbox(o));
        }
    }
}

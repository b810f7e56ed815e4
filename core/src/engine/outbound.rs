//! Sending: composing messages, handing outbox items to the shell, and applying the server's
//! answers.

use openmls::prelude::tls_codec::Serialize as _;
use qpq_types::{ChannelId, ClientMsgId, DeviceAddress, ErrorCode};

use super::Engine;
use crate::app_message::{
    AppMessage, Body, FileRef, MessageId, ReceiptKind, MAX_FILE_CHUNK_BYTES, MAX_FILE_NAME_BYTES, MAX_MIME_BYTES,
    MAX_TEXT_BYTES,
};
use crate::conversation::{Content, Message, Status};
use crate::error::EngineError;
use crate::outbox::{Outbound, OutboundOp, OutboundResult, PendingOp};
use crate::state::StateKey;

/// Receipts are sent in batches of at most this many ids.
const MAX_RECEIPT_IDS: usize = 512;

/// How many times one message is encrypted again after a stale-epoch refusal before it is
/// marked failed (each needs another member's commit to have come first).
const MAX_STALE_RESENDS: u32 = 16;

/// The epoch an MLS message was made in (`None` when the bytes are not one).
pub(super) fn epoch_of(payload: &[u8]) -> Option<u64> {
    use openmls::prelude::tls_codec::Deserialize as _;
    let msg = openmls::prelude::MlsMessageIn::tls_deserialize_exact(payload).ok()?;
    Some(msg.try_into_protocol_message().ok()?.epoch().as_u64())
}

impl Engine {
    /// Writes a text message: it appears in history as "sending" and waits in the outbox.
    pub fn send_text(
        &mut self,
        conv: &ChannelId,
        text: &str,
        reply_to: Option<MessageId>,
        now: u64,
    ) -> Result<MessageId, EngineError> {
        self.require_active(conv)?;
        self.require_trusted_members(conv)?;
        if text.trim().is_empty() {
            return Err(EngineError::Empty);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(EngineError::TooLong { len: text.len(), max: MAX_TEXT_BYTES });
        }
        let body = Body::Text { text: text.to_string(), reply_to };
        self.accept_by_writing(conv, now);
        Ok(self.compose(conv, body, Content::Text { text: text.to_string(), reply_to }, now))
    }

    /// Sends a file whose encrypted chunks are already on the server (the shell uploads them
    /// first): the reference, with its key, travels in an MLS message like a text.
    pub fn send_file(&mut self, conv: &ChannelId, file: FileRef, now: u64) -> Result<MessageId, EngineError> {
        self.require_active(conv)?;
        self.require_trusted_members(conv)?;
        if file.chunk_size == 0 || file.chunk_size > MAX_FILE_CHUNK_BYTES {
            return Err(EngineError::Invalid("the file's chunk size is out of range".into()));
        }
        if file.name.len() > MAX_FILE_NAME_BYTES || file.mime.len() > MAX_MIME_BYTES {
            return Err(EngineError::TooLong { len: file.name.len().max(file.mime.len()), max: MAX_FILE_NAME_BYTES });
        }
        self.accept_by_writing(conv, now);
        Ok(self.compose(conv, Body::File { file: file.clone() }, Content::File { file }, now))
    }

    /// Appends an outgoing message to history as "sending" and queues it.
    fn compose(&mut self, conv: &ChannelId, body: Body, content: Content, now: u64) -> MessageId {
        let id = self.new_message_id();
        let msg = AppMessage { id, sent_at: now, body };
        let entry = Message {
            id,
            index: 0,
            sender: self.user().clone(),
            sender_device: self.device_id(),
            outgoing: true,
            sent_at: now,
            server_time: 0,
            content,
            status: Status::Sending,
            delivered_to: vec![],
            read_by: vec![],
            edited: false,
            reactions: Default::default(),
            expires_at: None,
        };
        self.append(conv, entry, false);
        self.push_outbox(
            conv.clone(),
            PendingOp::message(id, msg.encode(), true),
        );
        id
    }

    /// The next thing to send, if any is ready. Items of one conversation go strictly in order;
    /// an item is returned again until its result is reported, and a retry carries the same
    /// bytes and id.
    pub fn next_outbound(&mut self, now: u64) -> Option<Outbound> {
        self.flush_receipts(now);
        let mut blocked: Vec<ChannelId> = Vec::new();
        let orders: Vec<u64> = self.outbox.keys().copied().collect();
        // A rejoin goes before anything else of its conversation (what else it queued is
        // encrypted anew once it is accepted). Until the shell has one queued, the
        // conversation goes on as it is: members that refused the same commit still read
        // one another.
        for order in &orders {
            if matches!(self.outbox[order].op, PendingOp::Rejoin { .. }) {
                if let Some(out) = self.prepare(*order, now) {
                    return Some(out);
                }
            }
        }
        for order in orders {
            let conv = self.outbox[&order].conv.clone();
            if blocked.contains(&conv) {
                continue;
            }
            if let Some(out) = self.prepare(order, now) {
                return Some(out);
            }
            // An item that must wait holds back the rest of its conversation; one that was
            // dropped (it failed) does not.
            if self.outbox.contains_key(&order) {
                blocked.push(conv);
            }
        }
        None
    }

    /// Turns the outbox item `order` into an [`Outbound`], encrypting or building a commit
    /// the first time. `None` when it must wait or was dropped.
    fn prepare(&mut self, order: u64, now: u64) -> Option<Outbound> {
        let item = self.outbox.get(&order)?.clone();
        let conv = item.conv.clone();
        match item.op {
            PendingOp::CreateChannel => match self.first_group_info(&conv) {
                Ok(group_info) => Some(Outbound { id: item.id, op: OutboundOp::CreateChannel { channel: conv, group_info } }),
                Err(e) => {
                    self.drop_item(order);
                    self.note_failure(&conv, now, format!("could not describe the new conversation to the server: {e}"));
                    None
                }
            },
            PendingOp::PublishGroupInfo => match self.group_info_to_publish(&conv) {
                Ok(group_info) => Some(Outbound { id: item.id, op: OutboundOp::PutGroupInfo { channel: conv, group_info } }),
                Err(_) => {
                    // Nothing to publish (the conversation was left meanwhile).
                    self.drop_item(order);
                    None
                }
            },
            PendingOp::Rejoin { epoch, commit } => Some(Outbound {
                id: item.id,
                op: OutboundOp::Commit { channel: conv, epoch, commit, welcome: vec![], add: vec![], remove: vec![] },
            }),
            PendingOp::Message { ciphertext: Some(ct), .. } => {
                let ttl_secs = self.ttl_secs(&conv);
                Some(Outbound { id: item.id, op: OutboundOp::Enqueue { channel: conv, payload: ct, ttl_secs } })
            }
            PendingOp::Message { msg_id, plaintext, ciphertext: None, in_history, stale_epoch } => {
                let encrypted = match stale_epoch {
                    None => self.encrypt(&conv, &plaintext),
                    Some(refused) => {
                        let Some(group) = self.groups.get(&conv).filter(|g| g.is_active()) else {
                            // Removed meanwhile: nobody there would read it now.
                            self.drop_item(order);
                            if in_history {
                                let gone = Status::Failed("you are no longer in this conversation".into());
                                self.set_status(&msg_id, gone, 0);
                            }
                            return None;
                        };
                        // A commit this device refused took a server epoch too (see `Membership`
                        // above): past it, the message goes again (and, until this device has
                        // rejoined, is refused again, at most `MAX_STALE_RESENDS` times).
                        let skew = self.conversations.get(&conv).map_or(0, |c| c.refused_commits);
                        if group.epoch().as_u64() + skew <= refused {
                            return None; // wait for the commit that made it stale
                        }
                        self.encrypt_again(&conv, &plaintext)
                    }
                };
                match encrypted {
                    Ok(ct) => {
                        if let Some(it) = self.outbox.get_mut(&order) {
                            it.op = PendingOp::Message {
                                msg_id,
                                plaintext,
                                ciphertext: Some(ct.clone()),
                                in_history,
                                stale_epoch: None,
                            };
                        }
                        self.dirty.insert(StateKey::Outbox(order));
                        // The members this message reaches get the own profile card next, if
                        // they lack its latest version.
                        self.share_profile_if_needed(&conv);
                        let ttl_secs = self.ttl_secs(&conv);
                        Some(Outbound { id: item.id, op: OutboundOp::Enqueue { channel: conv, payload: ct, ttl_secs } })
                    }
                    Err(e) => {
                        self.drop_item(order);
                        if in_history {
                            self.set_status(&msg_id, Status::Failed(e.to_string()), 0);
                        }
                        None
                    }
                }
            }
            PendingOp::Membership { built: Some(b), .. } => Some(Outbound {
                id: item.id,
                op: OutboundOp::Commit {
                    channel: conv,
                    epoch: b.epoch,
                    commit: b.commit,
                    welcome: b.welcome,
                    add: b.add,
                    remove: b.remove,
                },
            }),
            PendingOp::Membership { add, remove, built: None, refused_epoch, self_update, set_timer, remove_devices, set_admins } => {
                let skew = self.conversations.get(&conv).map_or(0, |c| c.refused_commits);
                let epoch = self.groups.get(&conv).map(|g| g.epoch().as_u64() + skew);
                if let (Some(r), Some(e)) = (refused_epoch, epoch) {
                    if e <= r {
                        return None; // wait for the commit that won
                    }
                }
                if self.require_active(&conv).is_err() {
                    self.drop_item(order);
                    return None;
                }
                if set_admins.is_none() && self.nothing_left_to_do(&conv, &add, &remove, &remove_devices, self_update, set_timer) {
                    // Only removals of people or devices already gone (e.g. another member
                    // committed a leave first): nothing to tell anyone.
                    self.drop_item(order);
                    return None;
                }
                let settings = super::groups::Settings { timer: set_timer, admins: set_admins.clone() };
                match self.build_membership_commit(&conv, &add, &remove, &remove_devices, self_update, &settings) {
                    Ok(b) => {
                        let out = Outbound {
                            id: item.id,
                            op: OutboundOp::Commit {
                                channel: conv,
                                epoch: b.epoch,
                                commit: b.commit.clone(),
                                welcome: b.welcome.clone(),
                                add: b.add.clone(),
                                remove: b.remove.clone(),
                            },
                        };
                        if let Some(it) = self.outbox.get_mut(&order) {
                            it.op = PendingOp::Membership {
                                add,
                                remove,
                                built: Some(b),
                                refused_epoch,
                                self_update,
                                set_timer,
                                remove_devices,
                                set_admins,
                            };
                        }
                        self.dirty.insert(StateKey::Outbox(order));
                        Some(out)
                    }
                    Err(e) => {
                        self.drop_item(order);
                        self.note_failure(&conv, now, format!("the membership change was not made: {e}"));
                        None
                    }
                }
            }
        }
    }

    /// The server-side lifetime for messages of `conv`: its disappearing timer (0: none).
    fn ttl_secs(&self, conv: &ChannelId) -> u32 {
        self.conversations.get(conv).map(|c| c.disappear_secs).unwrap_or(0)
    }

    /// True for a change that only adds and removes, when everything it adds is in the group
    /// already and everything it removes has gone (another member or device got there first).
    fn nothing_left_to_do(
        &self,
        conv: &ChannelId,
        add: &[crate::outbox::ClaimedPackage],
        remove: &[qpq_types::UserId],
        remove_devices: &[DeviceAddress],
        self_update: bool,
        set_timer: Option<u32>,
    ) -> bool {
        let Some(c) = self.conversations.get(conv) else { return false };
        if !self.groups.contains_key(conv) {
            return false;
        }
        let leaves = self.member_devices(conv);
        let has_leaf = |d: &DeviceAddress| leaves.contains(d);
        // Adds of devices someone else added meanwhile (another device of the same user,
        // say) are done too.
        let added = |p: &crate::outbox::ClaimedPackage| leaves.iter().any(|d| d.user == p.user && d.device == p.device);
        !self_update
            && set_timer.is_none()
            && (!add.is_empty() || !remove.is_empty() || !remove_devices.is_empty())
            && add.iter().all(added)
            && remove.iter().all(|u| !c.members.contains(u))
            && !remove_devices.iter().any(has_leaf)
    }

    pub(super) fn encrypt(&mut self, conv: &ChannelId, plaintext: &[u8]) -> Result<Vec<u8>, EngineError> {
        self.require_active(conv)?;
        self.encrypt_again(conv, plaintext)
    }

    /// Encrypts without asking whether this device still takes part: for a message queued
    /// earlier whose first ciphertext the server refused as stale. The conversation may have
    /// become inactive here meanwhile (a leave is queued before its sender stops taking part);
    /// the group still has this device's leaf unless it was removed, and then openmls refuses.
    fn encrypt_again(&mut self, conv: &ChannelId, plaintext: &[u8]) -> Result<Vec<u8>, EngineError> {
        let group = self.groups.get_mut(conv).ok_or(EngineError::NoSuchConversation)?;
        let msg = group
            .create_message(&self.provider, self.identity.signer(), plaintext)
            .map_err(EngineError::mls)?;
        msg.tls_serialize_detached().map_err(EngineError::mls)
    }

    /// True while a message of `conv` waits for a commit it was made stale by: this device
    /// takes that conversation's commits even when it no longer takes part (a leave waits so).
    pub(super) fn awaits_commit(&self, conv: &ChannelId) -> bool {
        let waits = |op: &PendingOp| matches!(op, PendingOp::Message { ciphertext: None, stale_epoch: Some(_), .. });
        self.outbox.values().any(|i| i.conv == *conv && waits(&i.op))
    }

    /// The GroupInfo, with its ratchet tree, of a group this device created and has not
    /// changed yet: what the node keeps the group's public state from.
    fn first_group_info(&self, conv: &ChannelId) -> Result<Vec<u8>, EngineError> {
        let group = self.groups.get(conv).ok_or(EngineError::NoSuchConversation)?;
        let crypto = openmls_traits::OpenMlsProvider::crypto(&self.provider);
        let info = group.export_group_info(crypto, self.identity.signer(), true).map_err(EngineError::mls)?;
        info.tls_serialize_detached().map_err(EngineError::mls)
    }

    /// Applies the server's answer to the outbound item `id`. Unknown ids are ignored (the
    /// item was already settled).
    pub fn outbound_result(&mut self, id: ClientMsgId, result: OutboundResult, now: u64) {
        let Some(order) = self.outbox.values().find(|i| i.id == id).map(|i| i.order) else { return };
        let item = self.outbox[&order].clone();
        let conv = item.conv.clone();
        match (item.op, result) {
            (PendingOp::CreateChannel, OutboundResult::Accepted { .. }) => self.drop_item(order),
            // A GroupInfo the server did not keep (the group moved on) is the next committer's
            // to publish.
            (PendingOp::PublishGroupInfo, _) => self.drop_item(order),
            (PendingOp::Rejoin { .. }, result) => {
                self.drop_item(order);
                self.rejoin_settled(&conv, result, now);
            }
            (PendingOp::CreateChannel, OutboundResult::Refused { message, .. }) => {
                self.drop_item(order);
                self.note_failure(&conv, now, format!("the server did not create the conversation: {message}"));
            }
            (PendingOp::Message { msg_id, in_history, .. }, OutboundResult::Accepted { server_time }) => {
                self.drop_item(order);
                if in_history {
                    self.set_status(&msg_id, Status::Sent, server_time);
                }
            }
            (
                PendingOp::Message { msg_id, plaintext, ciphertext: Some(ct), in_history, .. },
                OutboundResult::Refused { code: Some(ErrorCode::StaleEpoch), .. },
            ) if item.attempts < MAX_STALE_RESENDS => {
                // Made before a commit the server already has: encrypted again, under the same
                // id (the server kept nothing of this attempt), once this device has it.
                let made_in = epoch_of(&ct);
                if let Some(it) = self.outbox.get_mut(&order) {
                    it.attempts += 1;
                    it.op = PendingOp::Message { msg_id, plaintext, ciphertext: None, in_history, stale_epoch: made_in };
                }
                self.dirty.insert(StateKey::Outbox(order));
            }
            (PendingOp::Message { msg_id, in_history, .. }, OutboundResult::Refused { message, .. }) => {
                self.drop_item(order);
                if in_history {
                    self.set_status(&msg_id, Status::Failed(message), 0);
                }
            }
            (PendingOp::Membership { built: Some(b), .. }, OutboundResult::Accepted { server_time }) => {
                self.drop_item(order);
                self.commit_accepted(&conv, &b, now, server_time);
            }
            (
                PendingOp::Membership { add, remove, built: Some(b), self_update, set_timer, remove_devices, set_admins, .. },
                OutboundResult::Refused { code: Some(ErrorCode::StaleEpoch), .. },
            ) => {
                self.discard_pending_commit(&conv);
                let new_id = self.new_client_msg_id();
                if let Some(it) = self.outbox.get_mut(&order) {
                    it.id = new_id;
                    it.attempts += 1;
                    it.op = PendingOp::Membership {
                        add,
                        remove,
                        built: None,
                        refused_epoch: Some(b.epoch),
                        self_update,
                        set_timer,
                        remove_devices,
                        set_admins,
                    };
                }
                self.dirty.insert(StateKey::Outbox(order));
            }
            (PendingOp::Membership { .. }, OutboundResult::Refused { message, .. }) => {
                self.discard_pending_commit(&conv);
                self.drop_item(order);
                self.note_failure(&conv, now, format!("the membership change was refused: {message}"));
            }
            (PendingOp::Membership { built: None, .. }, OutboundResult::Accepted { .. }) => {}
        }
    }

    /// Settles a built commit that the server must have accepted (a later epoch arrived).
    pub(super) fn settle_own_commit(&mut self, conv: &ChannelId, now: u64) {
        let found = self.outbox.values().find_map(|i| match (&i.op, &i.conv) {
            (PendingOp::Membership { built: Some(b), .. }, c) if c == conv => Some((i.order, b.clone())),
            _ => None,
        });
        if let Some((order, b)) = found {
            self.drop_item(order);
            self.commit_accepted(conv, &b, now, 0);
        }
    }

    fn drop_item(&mut self, order: u64) {
        self.outbox.remove(&order);
        self.dirty.insert(StateKey::Outbox(order));
    }

    fn set_status(&mut self, msg_id: &MessageId, status: Status, server_time: u64) {
        let Some((conv, index)) = self.seen.get(msg_id).cloned() else { return };
        if let Some(m) = self.message_mut(&conv, index) {
            // A receipt may have arrived before the server's answer.
            if !(status == Status::Sent && m.status == Status::Delivered) {
                m.status = status;
            }
            if server_time != 0 {
                m.server_time = server_time;
            }
        }
    }

    /// Queues a delivery receipt for a message received from someone else.
    pub(super) fn queue_receipt(&mut self, conv: &ChannelId, id: MessageId) {
        if self.is_request(conv) {
            return; // nothing goes back to a request before it is accepted
        }
        self.pending_receipts.entry(conv.clone()).or_default().push(id);
    }

    fn flush_receipts(&mut self, now: u64) {
        let delivered = std::mem::take(&mut self.pending_receipts).into_iter().map(|(c, i)| (c, i, ReceiptKind::Delivered));
        let read = std::mem::take(&mut self.pending_reads).into_iter().map(|(c, i)| (c, i, ReceiptKind::Read));
        let all: Vec<_> = delivered.chain(read).collect();
        for (conv, ids, kind) in all {
            if self.require_active(&conv).is_err() {
                continue;
            }
            for chunk in ids.chunks(MAX_RECEIPT_IDS) {
                let msg = AppMessage {
                    id: self.new_message_id(),
                    sent_at: now,
                    body: Body::Receipt { kind, ids: chunk.to_vec() },
                };
                self.push_outbox(
                    conv.clone(),
                    PendingOp::message(msg.id, msg.encode(), false),
                );
            }
        }
    }
}

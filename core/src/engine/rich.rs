//! What people do to messages besides writing them: reactions, edits, deletes, typing, read
//! receipts, the disappearing-message timer and leaving a conversation — sending each and
//! applying each when it arrives.
//!
//! Changes to a message (reaction, edit, delete) are small application messages naming the
//! target by its [`MessageId`]. The sender applies its own change at once; a receiver applies
//! it only when the target exists in the same conversation and, for edits and deletes, was
//! written by the same person. Anything else is refused with [`EngineError::Ignored`] and
//! changes nothing.

use qpq_types::{ChannelId, DeviceAddress, UserId};

use super::{Engine, Event, TYPING_TIMEOUT_MS};
use crate::app_message::{AppMessage, Body, LeaveReason, MessageId, MAX_REACTION_BYTES, MAX_TEXT_BYTES};
use crate::conversation::{Content, SystemEvent};
use crate::error::EngineError;
use crate::group_meta::MAX_DISAPPEAR_SECS;
use crate::outbox::PendingOp;
use crate::state::StateKey;

impl Engine {
    /// Adds (or with `remove`, takes back) this user's reaction `emoji` to message `target`.
    /// The target must be a message (not a notice) of this conversation that still exists.
    pub fn react(
        &mut self,
        conv: &ChannelId,
        target: MessageId,
        emoji: &str,
        remove: bool,
        now: u64,
    ) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.require_trusted_members(conv)?;
        let emoji = emoji.trim();
        if emoji.is_empty() || emoji.len() > MAX_REACTION_BYTES {
            return Err(EngineError::BadValue(format!(
                "a reaction is one emoji (1 to {MAX_REACTION_BYTES} bytes)"
            )));
        }
        let m = self.message_by_id(conv, &target).ok_or(EngineError::NoSuchMessage)?;
        if !m.is_content() {
            return Err(EngineError::NoSuchMessage);
        }
        let me = self.user().clone();
        self.set_reaction(conv, &target, &me, emoji, remove);
        self.send_control(conv, Body::Reaction { target, emoji: emoji.to_string(), remove }, now);
        Ok(())
    }

    /// Replaces the text of one of this user's own text messages for everyone.
    pub fn edit_message(&mut self, conv: &ChannelId, target: MessageId, text: &str, now: u64) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.require_trusted_members(conv)?;
        if text.trim().is_empty() {
            return Err(EngineError::Empty);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(EngineError::TooLong { len: text.len(), max: MAX_TEXT_BYTES });
        }
        let m = self.own_message(conv, &target)?;
        if !matches!(m.content, Content::Text { .. }) {
            return Err(EngineError::BadValue("only text messages can be edited".into()));
        }
        let me = self.user().clone();
        self.apply_edit(conv, &me, target, text.to_string())?;
        self.send_control(conv, Body::Edit { target, text: text.to_string() }, now);
        Ok(())
    }

    /// Deletes one of this user's own messages for everyone: its content is dropped here and
    /// on every device of every member; the entry shows "message deleted".
    pub fn delete_message(&mut self, conv: &ChannelId, target: MessageId, now: u64) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.require_trusted_members(conv)?;
        self.own_message(conv, &target)?;
        let me = self.user().clone();
        self.apply_delete(conv, &me, target)?;
        self.send_control(conv, Body::Delete { target }, now);
        Ok(())
    }

    /// Tells the other members that this user started (`active`) or stopped typing. A start
    /// lasts [`TYPING_TIMEOUT_MS`] at the receivers unless renewed.
    pub fn set_typing(&mut self, conv: &ChannelId, active: bool, now: u64) -> Result<(), EngineError> {
        self.require_active(conv)?;
        if self.is_request(conv) {
            return Ok(()); // a request not accepted is not told that someone reads it
        }
        self.send_control(conv, Body::Typing { active }, now);
        Ok(())
    }

    /// The other members typing in `conv` at time `now`, sorted.
    pub fn typing(&self, conv: &ChannelId, now: u64) -> Vec<UserId> {
        self.typing
            .get(conv)
            .map(|t| t.iter().filter(|(_, until)| **until > now).map(|(u, _)| u.clone()).collect())
            .unwrap_or_default()
    }

    /// Queues a commit that sets the conversation's disappearing-message timer to `secs`
    /// (0 turns it off). Admins may (any member, in a conversation without roles). Once the commit is accepted every member shows the
    /// change, and messages from then on disappear `secs` after they were sent.
    pub fn set_disappearing(&mut self, conv: &ChannelId, secs: u32) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.require_admin(conv, "change the disappearing-message timer")?;
        if secs > MAX_DISAPPEAR_SECS {
            return Err(EngineError::BadValue(format!(
                "the disappearing-message timer is at most {} days",
                MAX_DISAPPEAR_SECS / 86_400
            )));
        }
        self.push_outbox(
            conv.clone(),
            PendingOp::group_change(vec![], vec![], false, Some(secs)),
        );
        Ok(())
    }

    /// Leaves a conversation: tells the members (who then remove this user's devices with a
    /// commit) and stops taking part at once. History stays readable here.
    pub fn leave_conversation(&mut self, conv: &ChannelId, reason: LeaveReason, now: u64) -> Result<(), EngineError> {
        self.require_active(conv)?;
        let msg = AppMessage { id: self.new_message_id(), sent_at: now, body: Body::Leave { reason } };
        let plaintext = msg.encode();
        // Encrypted now: after this step the conversation is no longer active here.
        let ct = self.encrypt(conv, &plaintext)?;
        // (Encrypted first: no message can be made while a commit is pending.)
        self.hand_over_admin(conv)?;
        self.push_outbox(
            conv.clone(),
            PendingOp::Message { msg_id: msg.id, plaintext, ciphertext: Some(ct), in_history: false, stale_epoch: None },
        );
        self.pending_receipts.remove(conv);
        self.pending_reads.remove(conv);
        self.typing.remove(conv);
        if let Some(c) = self.conversations.get_mut(conv) {
            c.active = false;
        }
        let (me, dev) = (self.user().clone(), self.device_id());
        let ev = match reason {
            LeaveReason::Left => SystemEvent::Left,
            LeaveReason::AccountDeleted => SystemEvent::AccountDeleted,
        };
        let m = self.system_message(me, dev, now, ev);
        self.append(conv, m, false);
        Ok(())
    }

    /// Removes every message whose disappearing timer ran out by `now` (from memory and, with
    /// the next changeset, from storage). Returns how many were removed.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut gone: Vec<(ChannelId, u64, MessageId)> = Vec::new();
        for (conv, h) in self.history.iter_mut() {
            h.retain(|m| {
                let expired = m.expires_at.is_some_and(|t| t <= now);
                if expired {
                    gone.push((conv.clone(), m.index, m.id));
                }
                !expired
            });
        }
        for (conv, index, id) in &gone {
            self.seen.remove(id);
            self.dirty.insert(StateKey::Message(conv.clone(), *index));
            self.events.push(Event::MessageRemoved { conv: conv.clone(), index: *index });
        }
        let mut convs: Vec<ChannelId> = gone.iter().map(|(c, _, _)| c.clone()).collect();
        convs.dedup();
        for c in convs {
            self.events.push(Event::ConversationChanged(c));
        }
        gone.len()
    }

    /// The earliest time a message will disappear, for the shell to call [`Engine::expire`].
    pub fn next_expiry(&self) -> Option<u64> {
        self.history.values().flat_map(|h| h.iter().filter_map(|m| m.expires_at)).min()
    }

    /// Sends `body` as it is, without the checks the typed methods above make and without
    /// changing anything here. For tests of what receivers do with hostile or future input.
    #[doc(hidden)]
    pub fn send_unchecked(&mut self, conv: &ChannelId, body: Body, now: u64) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.send_control(conv, body, now);
        Ok(())
    }

    // --- receiving ------------------------------------------------------------------------

    pub(super) fn apply_typing(&mut self, conv: &ChannelId, from: &UserId, active: bool, server_time: u64, now: u64) {
        if server_time != 0 && now.saturating_sub(server_time) > TYPING_TIMEOUT_MS {
            return; // stale: it sat in the queue while this device was away
        }
        let t = self.typing.entry(conv.clone()).or_default();
        let changed = if active {
            t.insert(from.clone(), now + TYPING_TIMEOUT_MS).is_none()
        } else {
            t.remove(from).is_some()
        };
        if changed {
            self.events.push(Event::TypingChanged(conv.clone()));
        }
    }

    /// Someone's message arrived: they are no longer typing.
    pub(super) fn stop_typing(&mut self, conv: &ChannelId, from: &UserId) {
        if self.typing.get_mut(conv).is_some_and(|t| t.remove(from).is_some()) {
            self.events.push(Event::TypingChanged(conv.clone()));
        }
    }

    pub(super) fn apply_reaction(
        &mut self,
        conv: &ChannelId,
        from: &UserId,
        target: MessageId,
        emoji: &str,
        remove: bool,
    ) -> Result<(), EngineError> {
        let m = self
            .message_by_id(conv, &target)
            .ok_or_else(|| EngineError::Ignored("a reaction to a message that does not exist".into()))?;
        if !m.is_content() {
            return Err(EngineError::Ignored("a reaction to a deleted message or a notice".into()));
        }
        self.set_reaction(conv, &target, from, emoji, remove);
        Ok(())
    }

    pub(super) fn apply_edit(
        &mut self,
        conv: &ChannelId,
        from: &UserId,
        target: MessageId,
        new_text: String,
    ) -> Result<(), EngineError> {
        let index = self.authored_by(conv, &target, from, "an edit")?;
        if new_text.trim().is_empty() {
            return Err(EngineError::Ignored("an edit to empty text".into()));
        }
        let Some(m) = self.message_mut(conv, index) else { return Err(EngineError::NoSuchMessage) };
        match &mut m.content {
            Content::Text { text, .. } => {
                *text = new_text;
                m.edited = true;
                Ok(())
            }
            _ => Err(EngineError::Ignored("an edit of a message that is not text".into())),
        }
    }

    pub(super) fn apply_delete(&mut self, conv: &ChannelId, from: &UserId, target: MessageId) -> Result<(), EngineError> {
        let index = self.authored_by(conv, &target, from, "a delete")?;
        let Some(m) = self.message_mut(conv, index) else { return Err(EngineError::NoSuchMessage) };
        m.content = Content::Deleted;
        m.edited = false;
        m.reactions.clear();
        Ok(())
    }

    /// A member announced that it leaves: show it and queue the commit removing its devices
    /// (every remaining member queues one; the first accepted wins, the others find nothing
    /// left to do and are dropped).
    pub(super) fn apply_leave(
        &mut self,
        conv: &ChannelId,
        from: &DeviceAddress,
        reason: LeaveReason,
        server_time: u64,
        now: u64,
    ) -> Result<(), EngineError> {
        if from.user == *self.user() {
            // Another device of ours left; the commit removing this user reaches us as well.
            // A request it left was deleted there: it is no longer listed here either.
            if self.is_request(conv) {
                self.set_hidden(conv, true);
            }
            return Ok(());
        }
        let ev = match reason {
            LeaveReason::Left => SystemEvent::Left,
            LeaveReason::AccountDeleted => SystemEvent::AccountDeleted,
        };
        let mut m = self.system_message(from.user.clone(), from.device, now, ev);
        m.server_time = server_time;
        self.append(conv, m, false);
        self.stop_typing(conv, &from.user);
        // The admins take the leaver out (any member, in a conversation without roles).
        let is_member = self.conversations.get(conv).is_some_and(|c| c.members.contains(&from.user));
        if is_member && self.is_admin(conv) {
            self.push_outbox(
                conv.clone(),
                PendingOp::group_change(vec![], vec![from.user.clone()], false, None),
            );
        }
        Ok(())
    }

    // --- helpers --------------------------------------------------------------------------

    /// Before the last admin leaves: makes the member of the longest standing (the first
    /// other user in leaf order) admin, in a commit built now and sent before the leave
    /// message (which the members still read after it: past epochs are kept), so that
    /// someone may take the leaver out and manage the conversation.
    fn hand_over_admin(&mut self, conv: &ChannelId) -> Result<(), EngineError> {
        let me = self.user().clone();
        let Some(admins) = self.conversations.get(conv).and_then(|c| c.admins.clone()) else { return Ok(()) };
        if admins.iter().any(|a| *a != me) || !admins.contains(&me) {
            return Ok(());
        }
        let Some(group) = self.groups.get(conv) else { return Ok(()) };
        let next = group
            .members()
            .filter_map(|m| crate::identity::device_of_credential(&m.credential).ok())
            .map(|d| d.user)
            .find(|u| *u != me);
        let Some(next) = next else { return Ok(()) };
        let settings = super::groups::Settings { timer: None, admins: Some(vec![next.clone()]) };
        let built = self.build_membership_commit(conv, &[], &[], &[], false, &settings)?;
        let mut op = PendingOp::admins_change(vec![next]);
        if let PendingOp::Membership { built: b, .. } = &mut op {
            *b = Some(built);
        }
        self.push_outbox(conv.clone(), op);
        Ok(())
    }

    /// Sends a message that has no history entry of its own (it changes others).
    pub(super) fn send_control(&mut self, conv: &ChannelId, body: Body, now: u64) {
        let msg = AppMessage { id: self.new_message_id(), sent_at: now, body };
        self.push_outbox(
            conv.clone(),
            PendingOp::message(msg.id, msg.encode(), false),
        );
    }

    /// The entry `target` of `conv` if this user wrote it and it is not deleted.
    fn own_message(&self, conv: &ChannelId, target: &MessageId) -> Result<&crate::conversation::Message, EngineError> {
        let m = self.message_by_id(conv, target).ok_or(EngineError::NoSuchMessage)?;
        if !m.is_content() {
            return Err(EngineError::NoSuchMessage);
        }
        if m.sender != *self.user() {
            return Err(EngineError::NotYours);
        }
        Ok(m)
    }

    /// The index of `target` if it exists in `conv`, is content, and was written by `from`.
    fn authored_by(&self, conv: &ChannelId, target: &MessageId, from: &UserId, what: &str) -> Result<u64, EngineError> {
        let m = self
            .message_by_id(conv, target)
            .ok_or_else(|| EngineError::Ignored(format!("{what} of a message that does not exist")))?;
        if m.sender != *from {
            return Err(EngineError::Ignored(format!("{what} of someone else's message")));
        }
        if !m.is_content() {
            return Err(EngineError::Ignored(format!("{what} of a deleted message")));
        }
        Ok(m.index)
    }

    fn set_reaction(&mut self, conv: &ChannelId, target: &MessageId, who: &UserId, emoji: &str, remove: bool) {
        let Some(index) = self.message_by_id(conv, target).map(|m| m.index) else { return };
        let Some(m) = self.message_mut(conv, index) else { return };
        let users = m.reactions.entry(emoji.to_string()).or_default();
        if remove {
            users.retain(|u| u != who);
        } else if let Err(p) = users.binary_search(who) {
            users.insert(p, who.clone());
        }
        if users.is_empty() {
            m.reactions.remove(emoji);
        }
    }
}

//! The people around this account: contacts, message requests and blocked users.
//!
//! Contacts are the people this account chats with or added by hand: a conversation that
//! someone else starts, or a group someone adds this account to, is a *request* unless the
//! one who added it is a contact. A request is listed apart; nothing goes back (no delivery
//! or read receipts, no typing) until the person accepts it, by **Accept** or by writing in
//! it. Blocks are kept by the node, which enforces them (it drops what a blocked person sends
//! in a conversation of two accounts and refuses their adds); the engine holds the node's
//! list to hide what blocked people write in shared groups.

use std::collections::{BTreeMap, BTreeSet};

use qpq_types::{ChannelId, UserId};
use serde::{Deserialize, Serialize};

use super::{Engine, Event};
use crate::app_message::{Body, ReceiptKind};
use crate::conversation::Conversation;
use crate::error::EngineError;
use crate::state::StateKey;

/// One contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// `name@domain`.
    pub user: UserId,
    /// When it became a contact (ms since the Unix epoch).
    pub added_at: u64,
}

/// The JSON of an exported contact list.
#[derive(Serialize, Deserialize)]
struct ContactsFile {
    format: String,
    version: u32,
    contacts: Vec<ContactEntry>,
}

#[derive(Serialize, Deserialize)]
struct ContactEntry {
    user: String,
    #[serde(default)]
    added_at: u64,
}

const CONTACTS_FORMAT: &str = "quicproquo contacts";

/// At most this many contacts are read from one file.
pub const MAX_IMPORTED_CONTACTS: usize = 10_000;

/// The contact list as a JSON document (`{"format":"quicproquo contacts","version":1,
/// "contacts":[{"user":"…","added_at":…}]}`).
pub fn encode_contacts(contacts: &[Contact]) -> String {
    let file = ContactsFile {
        format: CONTACTS_FORMAT.into(),
        version: 1,
        contacts: contacts
            .iter()
            .map(|c| ContactEntry { user: c.user.as_str().to_string(), added_at: c.added_at })
            .collect(),
    };
    serde_json::to_string(&file).expect("plain data")
}

/// Reads an exported contact list; a sentence saying what is wrong otherwise.
pub fn decode_contacts(json: &str) -> Result<Vec<Contact>, EngineError> {
    let bad = |why: &str| EngineError::BadValue(format!("this is not a contact list: {why}"));
    let file: ContactsFile = serde_json::from_str(json).map_err(|_| bad("it is not the JSON of an exported list"))?;
    if file.format != CONTACTS_FORMAT {
        return Err(bad("it does not say it is one"));
    }
    if file.version != 1 {
        return Err(EngineError::BadValue(format!(
            "this contact list is of a newer version ({}); update the app to import it",
            file.version
        )));
    }
    if file.contacts.len() > MAX_IMPORTED_CONTACTS {
        return Err(bad(&format!("it holds more than {MAX_IMPORTED_CONTACTS} contacts")));
    }
    file.contacts
        .into_iter()
        .map(|c| {
            UserId::parse(&c.user)
                .map(|user| Contact { user, added_at: c.added_at })
                .map_err(|_| bad(&format!("\"{}\" is not a name@domain address", c.user.chars().take(64).collect::<String>())))
        })
        .collect()
}

/// The contacts of state written before contacts existed: everyone this account shares a
/// conversation with, from when that conversation began.
pub(super) fn contacts_from<'a>(me: &UserId, conversations: impl Iterator<Item = &'a Conversation>) -> BTreeMap<UserId, u64> {
    let mut out = BTreeMap::new();
    for c in conversations {
        for u in c.members.iter().filter(|u| *u != me) {
            let at = out.entry(u.clone()).or_insert(c.created_at);
            *at = (*at).min(c.created_at);
        }
    }
    out
}

impl Engine {
    /// The contacts, sorted by address.
    pub fn contacts(&self) -> Vec<Contact> {
        self.meta
            .contacts
            .iter()
            .flatten()
            .map(|(user, at)| Contact { user: user.clone(), added_at: *at })
            .collect()
    }

    /// Whether `user` is a contact (this account itself counts as one).
    pub fn is_contact(&self, user: &UserId) -> bool {
        user == self.user() || self.meta.contacts.as_ref().is_some_and(|c| c.contains_key(user))
    }

    /// Adds contacts (those already there keep their date); true when one was new.
    pub fn add_contacts(&mut self, users: impl IntoIterator<Item = (UserId, u64)>) -> bool {
        let me = self.user().clone();
        let contacts = self.meta.contacts.get_or_insert_with(BTreeMap::new);
        let mut changed = false;
        for (user, at) in users {
            if user != me && !contacts.contains_key(&user) {
                contacts.insert(user, at);
                changed = true;
            }
        }
        if changed {
            self.dirty.insert(StateKey::Meta);
            self.events.push(Event::ContactsChanged);
        }
        changed
    }

    /// Removes a contact: what they start from now on arrives as a request.
    pub fn remove_contact(&mut self, user: &UserId) {
        if self.meta.contacts.as_mut().is_some_and(|c| c.remove(user).is_some()) {
            self.dirty.insert(StateKey::Meta);
            self.events.push(Event::ContactsChanged);
        }
    }

    /// Whether this account blocks `user`.
    pub fn is_blocked(&self, user: &UserId) -> bool {
        self.meta.blocked.contains(user)
    }

    /// The users this account blocks, sorted.
    pub fn blocked_users(&self) -> Vec<UserId> {
        self.meta.blocked.iter().cloned().collect()
    }

    /// Takes the node's list of blocked users (read at login, and when another device of the
    /// account changed it): as if each change had been made here.
    pub fn set_blocked_users(&mut self, users: Vec<UserId>) {
        let users: BTreeSet<UserId> = users.into_iter().collect();
        if self.meta.blocks_stale {
            self.meta.blocks_stale = false;
            self.dirty.insert(StateKey::Meta);
        }
        let unblocked: Vec<UserId> = self.meta.blocked.difference(&users).cloned().collect();
        let blocked: Vec<UserId> = users.difference(&self.meta.blocked).cloned().collect();
        for user in unblocked {
            self.set_blocked(&user, false);
        }
        for user in blocked {
            self.set_blocked(&user, true);
        }
    }

    /// The node's word that another device of the account changed the blocks.
    pub(super) fn account_hint(&mut self) {
        if !self.meta.blocks_stale {
            self.meta.blocks_stale = true;
            self.dirty.insert(StateKey::Meta);
        }
    }

    /// Whether the blocks must be read from the node again ([`Engine::set_blocked_users`]).
    pub fn blocks_stale(&self) -> bool {
        self.meta.blocks_stale
    }

    /// Records that the node now blocks (or no longer blocks) `user` for this account.
    /// Blocking puts away this account's requests from them, unanswered.
    pub fn set_blocked(&mut self, user: &UserId, blocked: bool) {
        let changed = if blocked { self.meta.blocked.insert(user.clone()) } else { self.meta.blocked.remove(user) };
        if changed {
            self.dirty.insert(StateKey::Meta);
            self.events.push(Event::ContactsChanged);
        }
        if blocked {
            let theirs: Vec<ChannelId> = self
                .conversations
                .values()
                .filter(|c| c.request && !c.hidden && c.invited_by.as_ref() == Some(user))
                .map(|c| c.id.clone())
                .collect();
            for id in theirs {
                self.set_hidden(&id, true);
            }
        }
    }

    /// Accepts a message request: it becomes a conversation like any other, and whoever
    /// started it (for a direct chat, the other person) becomes a contact.
    pub fn accept_request(&mut self, conv: &ChannelId, now: u64) -> Result<(), EngineError> {
        self.accept(conv, true, now)
    }

    /// Accepts a request, here (`tell_devices`: the account's other devices learn of it from
    /// what goes out) or because another device of the account accepted it.
    pub(super) fn accept(&mut self, conv: &ChannelId, tell_devices: bool, now: u64) -> Result<(), EngineError> {
        let c = self.conversations.get_mut(conv).ok_or(EngineError::NoSuchConversation)?;
        if !c.request {
            return Ok(());
        }
        c.request = false;
        c.hidden = false;
        let people: Vec<UserId> = c.invited_by.iter().cloned().collect();
        // The delivery receipts held back while it was a request (read receipts follow
        // when the person reads it).
        let me = self.user().clone();
        let received: Vec<_> =
            self.history(conv).iter().filter(|m| !m.outgoing && m.sender != me && m.is_content()).map(|m| m.id).collect();
        if received.is_empty() && tell_devices {
            // Nothing to acknowledge (an invitation to a quiet group): an empty receipt tells
            // the account's other devices that the request was accepted here.
            self.send_control(conv, Body::Receipt { kind: ReceiptKind::Delivered, ids: vec![] }, now);
        } else {
            self.pending_receipts.entry(conv.clone()).or_default().extend(received);
        }
        self.dirty.insert(StateKey::Conversation(conv.clone()));
        self.events.push(Event::ConversationChanged(conv.clone()));
        self.add_contacts(people.into_iter().map(|u| (u, now)));
        Ok(())
    }

    /// Deletes a message request: leaves the conversation (its members are told, as for any
    /// leave) and no longer lists it. A later Welcome to it arrives as a new request.
    pub fn delete_request(&mut self, conv: &ChannelId, now: u64) -> Result<(), EngineError> {
        let c = self.conversations.get(conv).ok_or(EngineError::NoSuchConversation)?;
        if !c.request {
            return Err(EngineError::Invalid("this conversation is not a message request".into()));
        }
        if c.active {
            self.leave_conversation(conv, crate::app_message::LeaveReason::Left, now)?;
        }
        self.set_hidden(conv, true);
        Ok(())
    }

    /// A request put away (blocked) comes back when its sender writes again after an unblock.
    pub(super) fn unhide_on_message(&mut self, conv: &ChannelId) {
        if self.conversations.get(conv).is_some_and(|c| c.hidden && c.active) {
            self.set_hidden(conv, false);
        }
    }

    /// Accepts a request implicitly: this account writes in it.
    pub(super) fn accept_by_writing(&mut self, conv: &ChannelId, now: u64) {
        if self.conversations.get(conv).is_some_and(|c| c.request) {
            // The conversation exists: accepting cannot fail. What is written tells the
            // account's other devices.
            let _ = self.accept(conv, false, now);
        }
    }

    /// Whether nothing may go back to `conv` yet (a request not accepted).
    pub(super) fn is_request(&self, conv: &ChannelId) -> bool {
        self.conversations.get(conv).is_some_and(|c| c.request)
    }

    pub(super) fn set_hidden(&mut self, conv: &ChannelId, hidden: bool) {
        if let Some(c) = self.conversations.get_mut(conv) {
            if c.hidden != hidden {
                c.hidden = hidden;
                self.dirty.insert(StateKey::Conversation(conv.clone()));
                self.events.push(Event::ConversationChanged(conv.clone()));
            }
        }
    }
}

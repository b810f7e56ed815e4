//! History for a newly linked device of this account: one device exports its recent history
//! (the shell seals it and sends it as a file only the new device can open), the new device
//! puts each conversation's part before what it received since it joined.

use std::collections::HashSet;

use qpq_types::ChannelId;
use serde::{Deserialize, Serialize};

use super::{Engine, Event};
use crate::conversation::{Message, Status};
use crate::error::EngineError;
use crate::state::StateKey;

/// The format version of an exported history.
const HISTORY_VERSION: u32 = 1;

/// One conversation's part of a history hand-over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationHistory {
    /// The conversation (its MLS group id).
    pub conv: ChannelId,
    /// Its entries, oldest first.
    pub messages: Vec<Message>,
}

#[derive(Serialize, Deserialize)]
struct HistoryFile {
    version: u32,
    conversations: Vec<ConversationHistory>,
}

/// Encodes a history hand-over (the shell encrypts it).
pub fn encode_history(conversations: Vec<ConversationHistory>) -> Vec<u8> {
    // Serialising plain data to a Vec cannot fail.
    serde_json::to_vec(&HistoryFile { version: HISTORY_VERSION, conversations }).expect("history serialises")
}

/// Decodes a history hand-over.
pub fn decode_history(bytes: &[u8]) -> Result<Vec<ConversationHistory>, EngineError> {
    let file: HistoryFile = serde_json::from_slice(bytes).map_err(|_| EngineError::Corrupt("history hand-over"))?;
    if file.version != HISTORY_VERSION {
        return Err(EngineError::Corrupt("history hand-over of another version"));
    }
    Ok(file.conversations)
}

impl Engine {
    /// What the shell keeps until the history hand-over of this (linked) device is in.
    pub fn pending_handover(&self) -> Option<&[u8]> {
        self.meta.handover.as_deref()
    }

    /// Keeps (or, with `None`, forgets) the hand-over reference; stored with the next step.
    pub fn set_pending_handover(&mut self, handover: Option<Vec<u8>>) {
        self.meta.handover = handover;
        self.dirty.insert(StateKey::Meta);
    }

    /// This device's history for a new device of the account: of every active conversation,
    /// the entries sent at or after `since` (ms), at most `max` in all (the most recent ones),
    /// each conversation's oldest first.
    pub fn export_history(&self, since: u64, max: usize) -> Vec<ConversationHistory> {
        let mut recent: Vec<(&ChannelId, &Message)> = self
            .conversations
            .values()
            .filter(|c| c.active)
            .flat_map(|c| self.history(&c.id).iter().map(move |m| (&c.id, m)))
            .filter(|(_, m)| m.sent_at.max(m.server_time) >= since)
            .collect();
        recent.sort_by_key(|(_, m)| std::cmp::Reverse(m.sent_at.max(m.server_time)));
        recent.truncate(max);
        let keep: HashSet<(&ChannelId, u64)> = recent.iter().map(|(c, m)| (*c, m.index)).collect();
        self.conversations
            .values()
            .filter(|c| c.active)
            .map(|c| ConversationHistory {
                conv: c.id.clone(),
                messages: self.history(&c.id).iter().filter(|m| keep.contains(&(&c.id, m.index))).cloned().collect(),
            })
            .filter(|h| !h.messages.is_empty())
            .collect()
    }

    /// Puts history that another device of this account exported before what this device
    /// holds of the conversation (entries it has already, by id, are skipped; a conversation
    /// it is not in is skipped). The entries are numbered again from the start and count as
    /// read. Returns how many messages people wrote were among the entries added.
    pub fn import_history(&mut self, part: ConversationHistory) -> usize {
        let me = self.user().clone();
        let conv = part.conv;
        let Some(old_len) = self.conversations.get(&conv).map(|c| c.len) else { return 0 };
        let mut added: Vec<Message> = part.messages.into_iter().filter(|m| !self.seen.contains_key(&m.id)).collect();
        if added.is_empty() {
            return 0;
        }
        let mut ids = HashSet::new();
        added.retain(|m| ids.insert(m.id));
        for m in &mut added {
            m.outgoing = m.sender == me;
            if m.outgoing && matches!(m.status, Status::Sending | Status::Failed(_)) {
                // Whatever the other device still had to send is its to send.
                m.status = Status::Sent;
            }
        }
        let n = added.len() as u64;
        let written = added.iter().filter(|m| m.is_content()).count();
        let mut all = added;
        all.extend(self.history.remove(&conv).unwrap_or_default());
        for (i, m) in all.iter_mut().enumerate() {
            m.index = i as u64;
            self.seen.insert(m.id, (conv.clone(), m.index));
        }
        let new_len = all.len() as u64;
        let c = self.conversations.get_mut(&conv).expect("checked above");
        c.len = new_len;
        c.read_upto = c.read_upto.saturating_add(n).min(new_len);
        if let Some(last) = all.last() {
            c.last_activity = c.last_activity.max(last.sent_at.max(last.server_time));
        }
        self.history.insert(conv.clone(), all);
        // Every position is written again; positions past the new end (entries that had
        // disappeared) are deleted.
        for i in 0..old_len.max(new_len) {
            self.dirty.insert(StateKey::Message(conv.clone(), i));
        }
        self.dirty.insert(StateKey::Conversation(conv.clone()));
        self.events.push(Event::ConversationChanged(conv));
        written
    }
}

//! How engine state maps to key–value entries, and the changeset a step produces.
//!
//! All state is one flat map of byte keys to byte values. A shell stores it however it likes
//! (IndexedDB object store, a file) as long as it applies each [`Changeset`] atomically.
//!
//! | key | value |
//! |---|---|
//! | `identity` | identity and device secrets (JSON) |
//! | `meta` | counters, the device's name, contacts and blocked users (JSON) |
//! | `cursor` | last processed delivery sequence number (u64 BE) |
//! | `c/` + channel id | a conversation (JSON) |
//! | `m/` + len(channel id) + channel id + index (u64 BE) | a history entry (JSON) |
//! | `o/` + order (u64 BE) | an outbox item (JSON) |
//! | `k/` + user | verified device records of a user (JSON) |
//! | `p/` + user | a user's profile card, this account's own included (JSON) |
//! | `h/` + sequence number (u64 BE) | a delivery held until the directory answers (JSON) |
//! | `s/` + openmls key | openmls storage value |

use qpq_types::{ChannelId, UserId};

/// The writes of one engine step; the shell applies them in one transaction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changeset {
    /// Entries to write (insert or replace).
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys to delete.
    pub deletes: Vec<Vec<u8>>,
}

impl Changeset {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StateKey {
    Identity,
    Meta,
    Cursor,
    Conversation(ChannelId),
    Message(ChannelId, u64),
    Outbox(u64),
    Known(UserId),
    Profile(UserId),
    Held(u64),
    /// One conversation's history from a backup, waiting for the conversation to come back.
    Restore(ChannelId),
}

pub(crate) const MLS_PREFIX: &[u8] = b"s/";

impl StateKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            StateKey::Identity => b"identity".to_vec(),
            StateKey::Meta => b"meta".to_vec(),
            StateKey::Cursor => b"cursor".to_vec(),
            StateKey::Conversation(c) => [b"c/".as_slice(), c.as_bytes()].concat(),
            StateKey::Message(c, i) => {
                let mut k = b"m/".to_vec();
                k.push(c.as_bytes().len() as u8);
                k.extend_from_slice(c.as_bytes());
                k.extend_from_slice(&i.to_be_bytes());
                k
            }
            StateKey::Outbox(o) => [b"o/".as_slice(), &o.to_be_bytes()].concat(),
            StateKey::Known(u) => [b"k/".as_slice(), u.as_str().as_bytes()].concat(),
            StateKey::Profile(u) => [b"p/".as_slice(), u.as_str().as_bytes()].concat(),
            StateKey::Held(seq) => [b"h/".as_slice(), &seq.to_be_bytes()].concat(),
            StateKey::Restore(c) => [b"r/".as_slice(), c.as_bytes()].concat(),
        }
    }

    /// Classifies a stored key; `None` for MLS storage keys and unknown keys.
    pub fn parse(k: &[u8]) -> Option<StateKey> {
        match k {
            b"identity" => Some(StateKey::Identity),
            b"meta" => Some(StateKey::Meta),
            b"cursor" => Some(StateKey::Cursor),
            _ => {
                if let Some(rest) = k.strip_prefix(b"c/") {
                    ChannelId::from_slice(rest).ok().map(StateKey::Conversation)
                } else if let Some(rest) = k.strip_prefix(b"m/") {
                    let (&len, rest) = rest.split_first()?;
                    let len = usize::from(len);
                    if rest.len() != len + 8 {
                        return None;
                    }
                    let c = ChannelId::from_slice(&rest[..len]).ok()?;
                    let i = u64::from_be_bytes(rest[len..].try_into().ok()?);
                    Some(StateKey::Message(c, i))
                } else if let Some(rest) = k.strip_prefix(b"o/") {
                    Some(StateKey::Outbox(u64::from_be_bytes(rest.try_into().ok()?)))
                } else if let Some(rest) = k.strip_prefix(b"k/") {
                    UserId::parse(std::str::from_utf8(rest).ok()?).ok().map(StateKey::Known)
                } else if let Some(rest) = k.strip_prefix(b"p/") {
                    UserId::parse(std::str::from_utf8(rest).ok()?).ok().map(StateKey::Profile)
                } else if let Some(rest) = k.strip_prefix(b"h/") {
                    Some(StateKey::Held(u64::from_be_bytes(rest.try_into().ok()?)))
                } else if let Some(rest) = k.strip_prefix(b"r/") {
                    ChannelId::from_slice(rest).ok().map(StateKey::Restore)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let c = ChannelId::from_slice(&[1, 2, 3]).unwrap();
        for k in [
            StateKey::Identity,
            StateKey::Meta,
            StateKey::Cursor,
            StateKey::Conversation(c.clone()),
            StateKey::Message(c.clone(), 42),
            StateKey::Outbox(7),
            StateKey::Known(UserId::parse("a@b.c").unwrap()),
            StateKey::Profile(UserId::parse("a@b.c").unwrap()),
            StateKey::Held(9),
            StateKey::Restore(c.clone()),
        ] {
            assert_eq!(StateKey::parse(&k.to_bytes()), Some(k));
        }
        assert_eq!(StateKey::parse(b"s/whatever"), None);
    }
}

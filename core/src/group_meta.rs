//! Conversation metadata kept in the MLS group context, so that members added later learn it
//! from their Welcome and every change is agreed through a commit.
//!
//! It is a private-use group-context extension (type [`EXTENSION_TYPE`]) holding TLV fields;
//! unknown fields are skipped so later versions can add some (roles). Tag 5 is the
//! disappearing-message timer, changed by a commit with a GroupContextExtensions proposal.

use openmls::prelude::{Extension, ExtensionType, Extensions, GroupContext, UnknownExtension};
use qpq_types::UserId;
use serde::{Deserialize, Serialize};

use crate::tlv::CodecError;
use crate::tlv::{get_varint, put_field, put_varint, Fields};

/// The private-use extension type carrying [`GroupMeta`].
pub const EXTENSION_TYPE: u16 = 0xF0A0;

/// Whether a conversation is a 1:1 chat or a named group.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ConversationKind {
    /// Two people (each with all their devices).
    Direct,
    /// A named group.
    Group,
}

/// The agreed metadata of a conversation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupMeta {
    /// Direct or group.
    pub kind: ConversationKind,
    /// The group's name (empty for direct chats).
    pub name: String,
    /// Who created it.
    pub created_by: UserId,
    /// When (ms since the Unix epoch, the creator's clock).
    pub created_at: u64,
    /// Disappearing-message timer in seconds, 0 when messages stay.
    pub disappear_secs: u32,
}

/// Longest disappearing-message timer: 365 days (the longest queue lifetime a node accepts).
pub const MAX_DISAPPEAR_SECS: u32 = 365 * 24 * 3600;

/// Longest group name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

mod tag {
    pub const KIND: u64 = 1;
    pub const NAME: u64 = 2;
    pub const CREATED_BY: u64 = 3;
    pub const CREATED_AT: u64 = 4;
    pub const DISAPPEAR_SECS: u64 = 5;
}

impl GroupMeta {
    /// Encodes the metadata.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut k = Vec::new();
        put_varint(
            &mut k,
            match self.kind {
                ConversationKind::Direct => 1,
                ConversationKind::Group => 2,
            },
        );
        put_field(&mut out, tag::KIND, &k);
        put_field(&mut out, tag::NAME, self.name.as_bytes());
        put_field(&mut out, tag::CREATED_BY, self.created_by.as_str().as_bytes());
        put_field(&mut out, tag::CREATED_AT, &self.created_at.to_be_bytes());
        if self.disappear_secs != 0 {
            let mut t = Vec::new();
            put_varint(&mut t, u64::from(self.disappear_secs));
            put_field(&mut out, tag::DISAPPEAR_SECS, &t);
        }
        out
    }

    /// Decodes the metadata.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let (mut kind, mut name, mut created_by, mut created_at) = (None, None, None, None);
        let mut disappear_secs = 0;
        for f in Fields::new(bytes) {
            let (t, v) = f?;
            match t {
                tag::KIND => {
                    kind = Some(match get_varint(v)? {
                        (1, _) => ConversationKind::Direct,
                        (2, _) => ConversationKind::Group,
                        _ => return Err(CodecError::Malformed("conversation kind")),
                    })
                }
                tag::NAME => {
                    if v.len() > MAX_NAME_BYTES {
                        return Err(CodecError::Malformed("group name"));
                    }
                    name = Some(String::from_utf8(v.to_vec()).map_err(|_| CodecError::Malformed("group name"))?)
                }
                tag::CREATED_BY => {
                    let s = std::str::from_utf8(v).map_err(|_| CodecError::Malformed("creator"))?;
                    created_by = Some(UserId::parse(s).map_err(|_| CodecError::Malformed("creator"))?)
                }
                tag::CREATED_AT => {
                    created_at =
                        Some(u64::from_be_bytes(v.try_into().map_err(|_| CodecError::Malformed("created"))?))
                }
                tag::DISAPPEAR_SECS => {
                    let (secs, used) = get_varint(v)?;
                    disappear_secs = u32::try_from(secs)
                        .ok()
                        .filter(|s| used == v.len() && *s <= MAX_DISAPPEAR_SECS)
                        .ok_or(CodecError::Malformed("disappearing timer"))?;
                }
                _ => {}
            }
        }
        Ok(GroupMeta {
            kind: kind.ok_or(CodecError::Missing("conversation kind"))?,
            name: name.unwrap_or_default(),
            created_by: created_by.ok_or(CodecError::Missing("creator"))?,
            created_at: created_at.unwrap_or(0),
            disappear_secs,
        })
    }

    /// The metadata as a group-context extension.
    pub fn to_extension(&self) -> Extension {
        Extension::Unknown(EXTENSION_TYPE, UnknownExtension(self.encode()))
    }

    /// Finds and decodes the metadata in a group context's extensions.
    pub fn from_extensions(exts: &Extensions<GroupContext>) -> Result<Self, CodecError> {
        let ext = exts
            .unknown(EXTENSION_TYPE)
            .ok_or(CodecError::Missing("conversation metadata"))?;
        GroupMeta::decode(&ext.0)
    }

    /// The extension type as openmls names it.
    pub fn extension_type() -> ExtensionType {
        ExtensionType::Unknown(EXTENSION_TYPE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_validates() {
        let m = GroupMeta {
            kind: ConversationKind::Group,
            name: "Team 🚀".into(),
            created_by: UserId::parse("alice@x.org").unwrap(),
            created_at: 77,
            disappear_secs: 0,
        };
        assert_eq!(GroupMeta::decode(&m.encode()).unwrap(), m);
        let timed = GroupMeta { disappear_secs: 3600, ..m.clone() };
        assert_eq!(GroupMeta::decode(&timed.encode()).unwrap(), timed);
        // Metadata written before the timer existed reads as "no timer".
        assert_eq!(GroupMeta::decode(&m.encode()).unwrap().disappear_secs, 0);
        let too_long = GroupMeta { disappear_secs: MAX_DISAPPEAR_SECS + 1, ..m.clone() };
        assert_eq!(GroupMeta::decode(&too_long.encode()), Err(CodecError::Malformed("disappearing timer")));
        let enc = m.encode();
        for n in 0..enc.len() {
            let _ = GroupMeta::decode(&enc[..n]);
        }
        assert!(GroupMeta::decode(&[]).is_err());
    }
}

//! Conversation metadata kept in the MLS group context, so that members added later learn it
//! from their Welcome and every change is agreed through a commit.
//!
//! It is a private-use group-context extension (type [`EXTENSION_TYPE`]) holding TLV fields;
//! unknown fields are skipped so later versions can add some (roles). Tag 5 is the
//! disappearing-message timer, changed by a commit with a GroupContextExtensions proposal.
//!
//! The group context is not secret from the delivery service: a commit sent as a
//! `PublicMessage` shows its GroupContextExtensions proposal, and a node that follows the
//! group's public state learns the whole context. So the metadata is sealed (tag 6,
//! ChaCha20-Poly1305) under the conversation's [`MetaKey`]: 32 random bytes made by the
//! creator, which every Welcome carries inside its encrypted GroupInfo (extension
//! [`META_KEY_EXTENSION`]) and which no commit ever shows. Conversations created before the
//! key existed keep their metadata in clear (their members have no key to share).

use openmls::messages::group_info::GroupInfo;
use openmls::prelude::{Extension, ExtensionType, Extensions, GroupContext, UnknownExtension};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::AeadType;
use qpq_types::UserId;
use serde::{Deserialize, Serialize};

use crate::tlv::CodecError;
use crate::tlv::{get_varint, put_field, put_varint, Fields};

/// The private-use extension type carrying [`GroupMeta`].
pub const EXTENSION_TYPE: u16 = 0xF0A0;

/// The private-use GroupInfo extension by which a Welcome hands a new member the [`MetaKey`].
pub const META_KEY_EXTENSION: u16 = 0xF0A2;

/// Associated data of the sealed metadata, followed by the group id.
const SEAL_LABEL: &[u8] = b"qpq group meta v1";
const NONCE_LEN: usize = 12;

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
    /// The whole metadata, sealed: nonce ‖ ChaCha20-Poly1305 ciphertext of the other fields.
    pub const SEALED: u64 = 6;
}

/// The key sealing one conversation's metadata in its group context.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaKey([u8; 32]);

impl std::fmt::Debug for MetaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaKey(…)")
    }
}

impl MetaKey {
    /// A key of these random bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MetaKey(bytes)
    }

    /// The GroupInfo extension that hands the key to the members a Welcome adds.
    pub fn to_group_info_extension(&self) -> Extension {
        Extension::Unknown(META_KEY_EXTENSION, UnknownExtension(self.0.to_vec()))
    }

    /// The key a Welcome's GroupInfo carries, if it carries one of the right length.
    pub fn from_group_info(exts: &Extensions<GroupInfo>) -> Option<Self> {
        let ext = exts.unknown(META_KEY_EXTENSION)?;
        <[u8; 32]>::try_from(ext.0.as_slice()).ok().map(MetaKey)
    }
}

/// Why the metadata in a group context cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// Missing or malformed (in clear or once opened).
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// Sealed, and this device has no key for it.
    #[error("the conversation's details are sealed and this device has no key for them")]
    NoKey,
    /// Sealed under another key, or altered.
    #[error("the conversation's details do not open with its key")]
    BadSeal,
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

    /// The metadata as a group-context extension: sealed under `key` when there is one (with
    /// `nonce`, fresh for every seal), in clear for a conversation that has none.
    pub fn to_extension(
        &self,
        key: Option<&MetaKey>,
        group_id: &[u8],
        nonce: [u8; NONCE_LEN],
        crypto: &impl OpenMlsCrypto,
    ) -> Extension {
        let clear = self.encode();
        let bytes = match key {
            None => clear,
            Some(key) => {
                let sealed = crypto
                    .aead_encrypt(AeadType::ChaCha20Poly1305, &key.0, &clear, &nonce, &seal_aad(group_id))
                    .expect("ChaCha20-Poly1305 seals with a 32-byte key and a 12-byte nonce");
                let mut out = Vec::new();
                put_field(&mut out, tag::SEALED, &[nonce.as_slice(), &sealed].concat());
                out
            }
        };
        Extension::Unknown(EXTENSION_TYPE, UnknownExtension(bytes))
    }

    /// Finds and reads the metadata in a group context's extensions: opens it with `key` when
    /// it is sealed.
    pub fn from_extensions(
        exts: &Extensions<GroupContext>,
        key: Option<&MetaKey>,
        group_id: &[u8],
        crypto: &impl OpenMlsCrypto,
    ) -> Result<Self, MetaError> {
        let ext = exts
            .unknown(EXTENSION_TYPE)
            .ok_or(CodecError::Missing("conversation metadata"))?;
        let Some(sealed) = sealed_part(&ext.0)? else { return Ok(GroupMeta::decode(&ext.0)?) };
        let key = key.ok_or(MetaError::NoKey)?;
        if sealed.len() < NONCE_LEN {
            return Err(CodecError::Malformed("sealed conversation metadata").into());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let clear = crypto
            .aead_decrypt(AeadType::ChaCha20Poly1305, &key.0, ciphertext, nonce, &seal_aad(group_id))
            .map_err(|_| MetaError::BadSeal)?;
        if sealed_part(&clear)?.is_some() {
            return Err(CodecError::Malformed("sealed conversation metadata").into());
        }
        Ok(GroupMeta::decode(&clear)?)
    }

    /// Whether the metadata in these extensions is sealed (else in clear, or missing).
    pub fn is_sealed(exts: &Extensions<GroupContext>) -> bool {
        exts.unknown(EXTENSION_TYPE).is_some_and(|e| matches!(sealed_part(&e.0), Ok(Some(_))))
    }

    /// The extension type as openmls names it.
    pub fn extension_type() -> ExtensionType {
        ExtensionType::Unknown(EXTENSION_TYPE)
    }
}

fn seal_aad(group_id: &[u8]) -> Vec<u8> {
    [SEAL_LABEL, group_id].concat()
}

/// The sealed field, when the extension holds one.
fn sealed_part(bytes: &[u8]) -> Result<Option<&[u8]>, CodecError> {
    for f in Fields::new(bytes) {
        let (t, v) = f?;
        if t == tag::SEALED {
            return Ok(Some(v));
        }
    }
    Ok(None)
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

    fn context(ext: Extension) -> Extensions<GroupContext> {
        Extensions::single(ext).unwrap()
    }

    #[test]
    fn sealed_metadata_opens_only_with_its_key_and_group() {
        let crypto = openmls_rust_crypto::RustCrypto::default();
        let m = GroupMeta {
            kind: ConversationKind::Group,
            name: "Night shift".into(),
            created_by: UserId::parse("alice@x.org").unwrap(),
            created_at: 9,
            disappear_secs: 600,
        };
        let key = MetaKey::from_bytes([7; 32]);
        let exts = context(m.to_extension(Some(&key), b"group-1", [1; 12], &crypto));
        assert!(GroupMeta::is_sealed(&exts));
        // Nothing of it is in clear.
        let raw = &exts.unknown(EXTENSION_TYPE).unwrap().0;
        assert!(!raw.windows(b"Night shift".len()).any(|w| w == b"Night shift"));
        assert!(!raw.windows(b"alice@x.org".len()).any(|w| w == b"alice@x.org"));
        assert_eq!(GroupMeta::from_extensions(&exts, Some(&key), b"group-1", &crypto).unwrap(), m);
        assert_eq!(GroupMeta::from_extensions(&exts, None, b"group-1", &crypto), Err(MetaError::NoKey));
        let other = MetaKey::from_bytes([8; 32]);
        assert_eq!(GroupMeta::from_extensions(&exts, Some(&other), b"group-1", &crypto), Err(MetaError::BadSeal));
        // Moved into another group's context, it does not open.
        assert_eq!(GroupMeta::from_extensions(&exts, Some(&key), b"group-2", &crypto), Err(MetaError::BadSeal));
        // A conversation with no key keeps it in clear, and any device reads that.
        let clear = context(m.to_extension(None, b"group-1", [1; 12], &crypto));
        assert!(!GroupMeta::is_sealed(&clear));
        assert_eq!(GroupMeta::from_extensions(&clear, None, b"group-1", &crypto).unwrap(), m);
        assert_eq!(GroupMeta::from_extensions(&clear, Some(&key), b"group-1", &crypto).unwrap(), m);
        // Truncated seals are refused, never a panic.
        let mut short = Vec::new();
        put_field(&mut short, tag::SEALED, &[0; 5]);
        let short = context(Extension::Unknown(EXTENSION_TYPE, UnknownExtension(short)));
        assert!(matches!(GroupMeta::from_extensions(&short, Some(&key), b"group-1", &crypto), Err(MetaError::Codec(_))));
    }

    #[test]
    fn the_key_travels_in_a_group_info_extension() {
        let key = MetaKey::from_bytes([3; 32]);
        let exts = Extensions::<GroupInfo>::single(key.to_group_info_extension()).unwrap();
        assert_eq!(MetaKey::from_group_info(&exts), Some(key));
        let wrong = Extensions::<GroupInfo>::single(Extension::Unknown(META_KEY_EXTENSION, UnknownExtension(vec![1; 31])));
        assert_eq!(MetaKey::from_group_info(&wrong.unwrap()), None);
        assert_eq!(format!("{:?}", MetaKey::from_bytes([3; 32])), "MetaKey(…)");
    }
}

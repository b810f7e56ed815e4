//! The application-message codec: what travels inside an MLS application message.
//!
//! The format is a version byte followed by tag–length–value fields (LEB128 varints). Readers
//! skip tags they do not know, so a later client may add fields, and a message kind this client
//! does not know decodes to [`Body::Unsupported`] (shown as "unsupported message"), never to an
//! error. Kinds and tags are never reused.
//!
//! ```text
//! message := version:u8(=1) field*
//! field   := tag:varint len:varint value[len]
//! tags    := 1 id (16 bytes) | 2 sent_at (u64 BE, ms) | 3 kind (varint) | 4 body (fields of the kind)
//! kinds   := 1 text | 2 receipt | 3 typing | 4 reaction | 5 edit | 6 delete | 7 file | 8 leave
//!          | 9 call offer | 10 call answer | 11 ICE candidates | 12 hang-up | 13 decline | 14 busy
//!          | 15 call media state (muted, camera off) | 16 profile card
//! ```
//!
//! Each kind's body is again TLV fields (see the `tag` module): text `1 text, 2 reply_to`;
//! receipt `1 kind (1 delivered, 2 read), 2 ids (16 bytes each)`; typing `1 active (0/1)`;
//! reaction `1 target, 2 emoji, 3 remove (0/1)`; edit `1 target, 2 text`; delete `1 target`;
//! leave `1 reason (1 left, 2 account deleted)`; file `1 blob (16 bytes), 2 key (32), 3 sha256
//! (32), 4 size (u64 BE), 5 chunk_size (u32 BE), 6 name, 7 mime`; profile `1 card` (the signed
//! card of `profile.rs`). The call kinds' bodies are described in `call.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::tlv::CodecError;
use crate::call::{self, CallSignal};
use crate::tlv::{get_varint, put_field, put_varint, Fields};

/// The format version this build writes.
pub const FORMAT_VERSION: u8 = 1;

/// Longest text a message may carry, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Longest file name a file message may carry, in bytes of UTF-8.
pub const MAX_FILE_NAME_BYTES: usize = 1024;
/// Longest media type a file message may carry.
pub const MAX_MIME_BYTES: usize = 255;
/// Largest chunk a file may be cut into (plaintext bytes).
pub const MAX_FILE_CHUNK_BYTES: u32 = 16 * 1024 * 1024;

/// Longest reaction, in bytes of UTF-8 (one emoji, possibly with modifiers).
pub const MAX_REACTION_BYTES: usize = 32;

/// A message id chosen by its sender: 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses lower- or upper-case hex of 16 bytes.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(MessageId(v.try_into().ok()?))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", &self.to_hex()[..8])
    }
}

/// Whether a receipt says "arrived on a device" or "seen by a person".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ReceiptKind {
    /// The message reached one of the recipient's devices.
    Delivered,
    /// The recipient has seen the message.
    Read,
}

/// A file sent in a conversation: the blob holding its encrypted chunks, the key to read
/// them, and what the receiver needs to check and show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The server's blob id.
    pub blob: [u8; 16],
    /// The file's own key (ChaCha20-Poly1305), fresh for every file.
    pub key: [u8; 32],
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
    /// Plaintext size in bytes.
    pub size: u64,
    /// Plaintext bytes per chunk (the last may be shorter).
    pub chunk_size: u32,
    /// The file name as the sender gave it (display only; never a path).
    pub name: String,
    /// The media type as the sender gave it (display only).
    pub mime: String,
}

impl fmt::Debug for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs and panics.
        f.debug_struct("FileRef").field("size", &self.size).field("chunk_size", &self.chunk_size).finish_non_exhaustive()
    }
}

/// Why a member leaves a conversation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LeaveReason {
    /// The person left this conversation.
    Left,
    /// The person deleted their account.
    AccountDeleted,
}

/// What a message says.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
    /// Plain text, optionally replying to an earlier message.
    Text {
        /// The text, at most [`MAX_TEXT_BYTES`].
        text: String,
        /// The message this one replies to.
        reply_to: Option<MessageId>,
    },
    /// Delivery or read receipts for messages of one conversation.
    Receipt {
        /// Delivered or read.
        kind: ReceiptKind,
        /// Which messages.
        ids: Vec<MessageId>,
    },
    /// The sender started or stopped typing.
    Typing {
        /// True while typing.
        active: bool,
    },
    /// A reaction added to or removed from a message.
    Reaction {
        /// The message reacted to.
        target: MessageId,
        /// The reaction (an emoji), at most [`MAX_REACTION_BYTES`].
        emoji: String,
        /// True when the sender takes this reaction back.
        remove: bool,
    },
    /// New text for one of the sender's own messages.
    Edit {
        /// The message edited.
        target: MessageId,
        /// Its new text, at most [`MAX_TEXT_BYTES`].
        text: String,
    },
    /// One of the sender's own messages deleted for everyone.
    Delete {
        /// The message deleted.
        target: MessageId,
    },
    /// The sender leaves the conversation; members remove its devices with a commit.
    Leave {
        /// Why.
        reason: LeaveReason,
    },
    /// A file: where its encrypted chunks are and the key to read them.
    File {
        /// The file.
        file: FileRef,
    },
    /// A call signal (offer, answer, candidates, hang-up, decline, busy, media state).
    Call(CallSignal),
    /// A profile card (see `profile.rs`): its owner's, or one a member forwards.
    Profile {
        /// The signed card, checked by the receiver against the card's user's identity key.
        card: Vec<u8>,
    },
    /// A kind this build does not know (sent by a newer client).
    Unsupported {
        /// The kind number on the wire.
        kind: u64,
    },
}

/// A decoded application message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AppMessage {
    /// Sender-chosen id, used for de-duplication, receipts and replies.
    pub id: MessageId,
    /// The sender's clock when it was written (ms since the Unix epoch).
    pub sent_at: u64,
    /// The content.
    pub body: Body,
}

mod kind {
    pub const TEXT: u64 = 1;
    pub const RECEIPT: u64 = 2;
    pub const TYPING: u64 = 3;
    pub const REACTION: u64 = 4;
    pub const EDIT: u64 = 5;
    pub const DELETE: u64 = 6;
    pub const FILE: u64 = 7;
    pub const LEAVE: u64 = 8;
    // 9–15 are the call kinds (call.rs).
    pub const PROFILE: u64 = 16;
}

mod tag {
    pub const ID: u64 = 1;
    pub const SENT_AT: u64 = 2;
    pub const KIND: u64 = 3;
    pub const BODY: u64 = 4;

    pub const TEXT: u64 = 1;
    pub const REPLY_TO: u64 = 2;

    pub const RECEIPT_KIND: u64 = 1;
    pub const RECEIPT_IDS: u64 = 2;

    pub const TYPING_ACTIVE: u64 = 1;

    /// The message a reaction, edit or delete is about.
    pub const TARGET: u64 = 1;
    pub const REACTION_EMOJI: u64 = 2;
    pub const REACTION_REMOVE: u64 = 3;
    pub const EDIT_TEXT: u64 = 2;

    pub const LEAVE_REASON: u64 = 1;

    pub const FILE_BLOB: u64 = 1;
    pub const FILE_KEY: u64 = 2;
    pub const FILE_SHA256: u64 = 3;
    pub const FILE_SIZE: u64 = 4;
    pub const FILE_CHUNK_SIZE: u64 = 5;
    pub const FILE_NAME: u64 = 6;
    pub const FILE_MIME: u64 = 7;

    pub const PROFILE_CARD: u64 = 1;
}

impl AppMessage {
    /// Encodes the message.
    ///
    /// # Panics
    /// Never for bodies built by this crate; [`Body::Unsupported`] cannot be sent and encodes as
    /// its kind number with an empty body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        put_field(&mut out, tag::ID, &self.id.0);
        put_field(&mut out, tag::SENT_AT, &self.sent_at.to_be_bytes());
        let (kind, body) = match &self.body {
            Body::Text { text, reply_to } => {
                let mut b = Vec::with_capacity(text.len() + 24);
                put_field(&mut b, tag::TEXT, text.as_bytes());
                if let Some(r) = reply_to {
                    put_field(&mut b, tag::REPLY_TO, &r.0);
                }
                (kind::TEXT, b)
            }
            Body::Receipt { kind: k, ids } => {
                let mut b = Vec::new();
                let k = match k {
                    ReceiptKind::Delivered => 1u8,
                    ReceiptKind::Read => 2u8,
                };
                put_field(&mut b, tag::RECEIPT_KIND, &[k]);
                let flat: Vec<u8> = ids.iter().flat_map(|i| i.0).collect();
                put_field(&mut b, tag::RECEIPT_IDS, &flat);
                (kind::RECEIPT, b)
            }
            Body::Typing { active } => {
                let mut b = Vec::new();
                put_field(&mut b, tag::TYPING_ACTIVE, &[u8::from(*active)]);
                (kind::TYPING, b)
            }
            Body::Reaction { target, emoji, remove } => {
                let mut b = Vec::new();
                put_field(&mut b, tag::TARGET, &target.0);
                put_field(&mut b, tag::REACTION_EMOJI, emoji.as_bytes());
                if *remove {
                    put_field(&mut b, tag::REACTION_REMOVE, &[1]);
                }
                (kind::REACTION, b)
            }
            Body::Edit { target, text } => {
                let mut b = Vec::with_capacity(text.len() + 24);
                put_field(&mut b, tag::TARGET, &target.0);
                put_field(&mut b, tag::EDIT_TEXT, text.as_bytes());
                (kind::EDIT, b)
            }
            Body::Delete { target } => {
                let mut b = Vec::new();
                put_field(&mut b, tag::TARGET, &target.0);
                (kind::DELETE, b)
            }
            Body::Leave { reason } => {
                let mut b = Vec::new();
                let r = match reason {
                    LeaveReason::Left => 1u8,
                    LeaveReason::AccountDeleted => 2u8,
                };
                put_field(&mut b, tag::LEAVE_REASON, &[r]);
                (kind::LEAVE, b)
            }
            Body::File { file } => {
                let mut b = Vec::with_capacity(120 + file.name.len() + file.mime.len());
                put_field(&mut b, tag::FILE_BLOB, &file.blob);
                put_field(&mut b, tag::FILE_KEY, &file.key);
                put_field(&mut b, tag::FILE_SHA256, &file.sha256);
                put_field(&mut b, tag::FILE_SIZE, &file.size.to_be_bytes());
                put_field(&mut b, tag::FILE_CHUNK_SIZE, &file.chunk_size.to_be_bytes());
                put_field(&mut b, tag::FILE_NAME, file.name.as_bytes());
                put_field(&mut b, tag::FILE_MIME, file.mime.as_bytes());
                (kind::FILE, b)
            }
            Body::Call(signal) => call::encode(signal),
            Body::Profile { card } => {
                let mut b = Vec::with_capacity(card.len() + 4);
                put_field(&mut b, tag::PROFILE_CARD, card);
                (kind::PROFILE, b)
            }
            Body::Unsupported { kind } => (*kind, Vec::new()),
        };
        let mut k = Vec::new();
        put_varint(&mut k, kind);
        put_field(&mut out, tag::KIND, &k);
        put_field(&mut out, tag::BODY, &body);
        out
    }

    /// Decodes a message. Unknown fields are skipped, unknown kinds become
    /// [`Body::Unsupported`].
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let (&version, rest) = bytes.split_first().ok_or(CodecError::Truncated)?;
        if version != FORMAT_VERSION {
            return Err(CodecError::Version(version));
        }
        let (mut id, mut sent_at, mut kind, mut body) = (None, None, None, None);
        for field in Fields::new(rest) {
            let (t, v) = field?;
            match t {
                tag::ID => id = Some(MessageId(v.try_into().map_err(|_| CodecError::Malformed("id"))?)),
                tag::SENT_AT => {
                    sent_at = Some(u64::from_be_bytes(v.try_into().map_err(|_| CodecError::Malformed("time"))?))
                }
                tag::KIND => {
                    let (k, used) = get_varint(v)?;
                    if used != v.len() {
                        return Err(CodecError::Malformed("kind"));
                    }
                    kind = Some(k)
                }
                tag::BODY => body = Some(v),
                _ => {}
            }
        }
        let id = id.ok_or(CodecError::Missing("id"))?;
        let sent_at = sent_at.ok_or(CodecError::Missing("time"))?;
        let kind = kind.ok_or(CodecError::Missing("kind"))?;
        let body = body.ok_or(CodecError::Missing("body"))?;
        let body = match kind {
            kind::TEXT => decode_text(body)?,
            kind::RECEIPT => decode_receipt(body)?,
            kind::TYPING => decode_typing(body)?,
            kind::REACTION => decode_reaction(body)?,
            kind::EDIT => decode_edit(body)?,
            kind::DELETE => Body::Delete { target: find_target(body)? },
            kind::LEAVE => decode_leave(body)?,
            kind::FILE => decode_file(body)?,
            kind::PROFILE => decode_profile(body)?,
            other => match call::decode(other, body) {
                Some(signal) => Body::Call(signal?),
                None => Body::Unsupported { kind: other },
            },
        };
        Ok(AppMessage { id, sent_at, body })
    }
}

fn decode_profile(body: &[u8]) -> Result<Body, CodecError> {
    for field in Fields::new(body) {
        let (t, v) = field?;
        if t == tag::PROFILE_CARD {
            if v.len() > crate::profile::MAX_PROFILE_PICTURE_BYTES + 4096 {
                return Err(CodecError::Malformed("profile"));
            }
            return Ok(Body::Profile { card: v.to_vec() });
        }
    }
    Err(CodecError::Missing("profile"))
}

fn decode_text(body: &[u8]) -> Result<Body, CodecError> {
    let (mut text, mut reply_to) = (None, None);
    for field in Fields::new(body) {
        let (t, v) = field?;
        match t {
            tag::TEXT => {
                if v.len() > MAX_TEXT_BYTES {
                    return Err(CodecError::Malformed("text"));
                }
                text = Some(String::from_utf8(v.to_vec()).map_err(|_| CodecError::Malformed("text"))?)
            }
            tag::REPLY_TO => {
                reply_to = Some(MessageId(v.try_into().map_err(|_| CodecError::Malformed("reply"))?))
            }
            _ => {}
        }
    }
    Ok(Body::Text { text: text.ok_or(CodecError::Missing("text"))?, reply_to })
}

fn decode_receipt(body: &[u8]) -> Result<Body, CodecError> {
    let (mut kind, mut ids) = (None, None);
    for field in Fields::new(body) {
        let (t, v) = field?;
        match t {
            tag::RECEIPT_KIND => {
                kind = Some(match v {
                    [1] => ReceiptKind::Delivered,
                    [2] => ReceiptKind::Read,
                    _ => return Err(CodecError::Malformed("receipt kind")),
                })
            }
            tag::RECEIPT_IDS => {
                if v.len() % 16 != 0 {
                    return Err(CodecError::Malformed("receipt ids"));
                }
                ids = Some(
                    v.chunks_exact(16)
                        .map(|c| MessageId(c.try_into().expect("chunk of 16")))
                        .collect(),
                )
            }
            _ => {}
        }
    }
    Ok(Body::Receipt {
        kind: kind.ok_or(CodecError::Missing("receipt kind"))?,
        ids: ids.ok_or(CodecError::Missing("receipt ids"))?,
    })
}

fn decode_flag(v: &[u8], what: &'static str) -> Result<bool, CodecError> {
    match v {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(CodecError::Malformed(what)),
    }
}

fn decode_string(v: &[u8], max: usize, what: &'static str) -> Result<String, CodecError> {
    if v.len() > max {
        return Err(CodecError::Malformed(what));
    }
    String::from_utf8(v.to_vec()).map_err(|_| CodecError::Malformed(what))
}

/// The target message id every reaction, edit and delete carries.
fn find_target(body: &[u8]) -> Result<MessageId, CodecError> {
    let mut target = None;
    for field in Fields::new(body) {
        let (t, v) = field?;
        if t == tag::TARGET {
            target = Some(MessageId(v.try_into().map_err(|_| CodecError::Malformed("target"))?));
        }
    }
    target.ok_or(CodecError::Missing("target"))
}

fn decode_typing(body: &[u8]) -> Result<Body, CodecError> {
    let mut active = None;
    for field in Fields::new(body) {
        let (t, v) = field?;
        if t == tag::TYPING_ACTIVE {
            active = Some(decode_flag(v, "typing state")?);
        }
    }
    Ok(Body::Typing { active: active.ok_or(CodecError::Missing("typing state"))? })
}

fn decode_reaction(body: &[u8]) -> Result<Body, CodecError> {
    let target = find_target(body)?;
    let (mut emoji, mut remove) = (None, false);
    for field in Fields::new(body) {
        let (t, v) = field?;
        match t {
            tag::REACTION_EMOJI => emoji = Some(decode_string(v, MAX_REACTION_BYTES, "reaction")?),
            tag::REACTION_REMOVE => remove = decode_flag(v, "reaction removal")?,
            _ => {}
        }
    }
    let emoji = emoji.ok_or(CodecError::Missing("reaction"))?;
    if emoji.is_empty() {
        return Err(CodecError::Malformed("reaction"));
    }
    Ok(Body::Reaction { target, emoji, remove })
}

fn decode_edit(body: &[u8]) -> Result<Body, CodecError> {
    let target = find_target(body)?;
    let mut text = None;
    for field in Fields::new(body) {
        let (t, v) = field?;
        if t == tag::EDIT_TEXT {
            text = Some(decode_string(v, MAX_TEXT_BYTES, "text")?);
        }
    }
    Ok(Body::Edit { target, text: text.ok_or(CodecError::Missing("text"))? })
}

fn fixed<const N: usize>(v: &[u8], what: &'static str) -> Result<[u8; N], CodecError> {
    v.try_into().map_err(|_| CodecError::Malformed(what))
}

fn decode_file(body: &[u8]) -> Result<Body, CodecError> {
    let (mut blob, mut key, mut sha256, mut size, mut chunk_size, mut name, mut mime) =
        (None, None, None, None, None, None, None);
    for field in Fields::new(body) {
        let (t, v) = field?;
        match t {
            tag::FILE_BLOB => blob = Some(fixed::<16>(v, "file blob")?),
            tag::FILE_KEY => key = Some(fixed::<32>(v, "file key")?),
            tag::FILE_SHA256 => sha256 = Some(fixed::<32>(v, "file hash")?),
            tag::FILE_SIZE => size = Some(u64::from_be_bytes(fixed(v, "file size")?)),
            tag::FILE_CHUNK_SIZE => chunk_size = Some(u32::from_be_bytes(fixed(v, "chunk size")?)),
            tag::FILE_NAME => name = Some(decode_string(v, MAX_FILE_NAME_BYTES, "file name")?),
            tag::FILE_MIME => mime = Some(decode_string(v, MAX_MIME_BYTES, "media type")?),
            _ => {}
        }
    }
    let chunk_size = chunk_size.ok_or(CodecError::Missing("chunk size"))?;
    if chunk_size == 0 || chunk_size > MAX_FILE_CHUNK_BYTES {
        return Err(CodecError::Malformed("chunk size"));
    }
    Ok(Body::File {
        file: FileRef {
            blob: blob.ok_or(CodecError::Missing("file blob"))?,
            key: key.ok_or(CodecError::Missing("file key"))?,
            sha256: sha256.ok_or(CodecError::Missing("file hash"))?,
            size: size.ok_or(CodecError::Missing("file size"))?,
            chunk_size,
            name: name.ok_or(CodecError::Missing("file name"))?,
            mime: mime.unwrap_or_default(),
        },
    })
}

fn decode_leave(body: &[u8]) -> Result<Body, CodecError> {
    let mut reason = None;
    for field in Fields::new(body) {
        let (t, v) = field?;
        if t == tag::LEAVE_REASON {
            reason = Some(match v {
                [1] => LeaveReason::Left,
                [2] => LeaveReason::AccountDeleted,
                _ => return Err(CodecError::Malformed("leave reason")),
            });
        }
    }
    Ok(Body::Leave { reason: reason.ok_or(CodecError::Missing("leave reason"))? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> AppMessage {
        AppMessage {
            id: MessageId([1; 16]),
            sent_at: 1_700_000_000_000,
            body: Body::Text { text: t.into(), reply_to: Some(MessageId([2; 16])) },
        }
    }

    #[test]
    fn round_trips() {
        let m = text("héllo <b>");
        assert_eq!(AppMessage::decode(&m.encode()).unwrap(), m);
        let r = AppMessage {
            id: MessageId([3; 16]),
            sent_at: 5,
            body: Body::Receipt { kind: ReceiptKind::Read, ids: vec![MessageId([4; 16]), MessageId([5; 16])] },
        };
        assert_eq!(AppMessage::decode(&r.encode()).unwrap(), r);
    }

    fn with(body: Body) -> AppMessage {
        AppMessage { id: MessageId([9; 16]), sent_at: 42, body }
    }

    #[test]
    fn new_kinds_round_trip() {
        let t = MessageId([4; 16]);
        for body in [
            Body::Typing { active: true },
            Body::Typing { active: false },
            Body::Reaction { target: t, emoji: "👍🏽".into(), remove: false },
            Body::Reaction { target: t, emoji: "❤️".into(), remove: true },
            Body::Edit { target: t, text: "fixed <i>typo</i>".into() },
            Body::Delete { target: t },
            Body::Leave { reason: LeaveReason::Left },
            Body::Leave { reason: LeaveReason::AccountDeleted },
            Body::Profile { card: vec![1, 2, 3] },
        ] {
            let m = with(body);
            assert_eq!(AppMessage::decode(&m.encode()).unwrap(), m);
        }
    }

    fn file_ref() -> FileRef {
        FileRef {
            blob: [1; 16],
            key: [2; 32],
            sha256: [3; 32],
            size: 100 * 1024 * 1024,
            chunk_size: 256 * 1024,
            name: "holiday <photos>.zip".into(),
            mime: "application/zip".into(),
        }
    }

    #[test]
    fn files_round_trip_and_bad_ones_are_refused() {
        let m = with(Body::File { file: file_ref() });
        let enc = m.encode();
        assert_eq!(AppMessage::decode(&enc).unwrap(), m);

        // Each field's bytes, rebuilt with one field changed.
        let body_with = |replace: u64, value: Option<&[u8]>| {
            let f = file_ref();
            let fields: [(u64, Vec<u8>); 7] = [
                (tag::FILE_BLOB, f.blob.to_vec()),
                (tag::FILE_KEY, f.key.to_vec()),
                (tag::FILE_SHA256, f.sha256.to_vec()),
                (tag::FILE_SIZE, f.size.to_be_bytes().to_vec()),
                (tag::FILE_CHUNK_SIZE, f.chunk_size.to_be_bytes().to_vec()),
                (tag::FILE_NAME, f.name.into_bytes()),
                (tag::FILE_MIME, f.mime.into_bytes()),
            ];
            let mut b = Vec::new();
            for (t, v) in fields {
                match (t == replace, value) {
                    (true, Some(v)) => put_field(&mut b, t, v),
                    (true, None) => {}
                    (false, _) => put_field(&mut b, t, &v),
                }
            }
            decode_file(&b)
        };
        assert!(matches!(body_with(tag::FILE_KEY, Some(&[2; 31])), Err(CodecError::Malformed("file key"))));
        assert!(matches!(body_with(tag::FILE_BLOB, None), Err(CodecError::Missing("file blob"))));
        assert!(matches!(body_with(tag::FILE_CHUNK_SIZE, Some(&0u32.to_be_bytes())), Err(CodecError::Malformed("chunk size"))));
        assert!(matches!(body_with(tag::FILE_NAME, Some(&[0xff, 0xfe])), Err(CodecError::Malformed("file name"))));
        assert!(matches!(body_with(tag::FILE_NAME, Some(&[b'a'; MAX_FILE_NAME_BYTES + 1])), Err(CodecError::Malformed("file name"))));
        // A missing media type is allowed (shown as a generic file).
        assert!(matches!(body_with(tag::FILE_MIME, None), Ok(Body::File { file }) if file.mime.is_empty()));
    }

    #[test]
    fn new_kinds_keep_their_numbers() {
        // The numbers are the wire format: older and newer clients rely on them.
        let kind_of = |b: Body| {
            let enc = with(b).encode();
            let mut k = None;
            for f in Fields::new(&enc[1..]) {
                let (t, v) = f.unwrap();
                if t == tag::KIND {
                    k = Some(get_varint(v).unwrap().0);
                }
            }
            k.unwrap()
        };
        let t = MessageId([1; 16]);
        assert_eq!(kind_of(Body::Text { text: "a".into(), reply_to: None }), 1);
        assert_eq!(kind_of(Body::Receipt { kind: ReceiptKind::Read, ids: vec![] }), 2);
        assert_eq!(kind_of(Body::Typing { active: true }), 3);
        assert_eq!(kind_of(Body::Reaction { target: t, emoji: "x".into(), remove: false }), 4);
        assert_eq!(kind_of(Body::Edit { target: t, text: "a".into() }), 5);
        assert_eq!(kind_of(Body::Delete { target: t }), 6);
        assert_eq!(kind_of(Body::Leave { reason: LeaveReason::Left }), 8);
        assert_eq!(kind_of(Body::File { file: file_ref() }), 7);
        use crate::call::{CallId, CallPeer, CallSignal};
        let (call, to) = (CallId([1; 16]), CallPeer { user: qpq_types::UserId::parse("b@x").unwrap(), device: None });
        let fp = "sha-256 AB:CD";
        let sdp = format!("v=0\r\na=fingerprint:{fp}\r\n");
        let calls = [
            CallSignal::Offer { call, to: to.clone(), video: true, sdp: sdp.clone(), fingerprint: fp.into(), restart: false },
            CallSignal::Answer { call, to: to.clone(), sdp, fingerprint: fp.into() },
            CallSignal::Candidates { call, to: to.clone(), candidates: vec![] },
            CallSignal::Hangup { call },
            CallSignal::Decline { call, to: to.clone() },
            CallSignal::Busy { call, to },
            CallSignal::Media { call, muted: true, camera_off: false },
        ];
        for (signal, kind) in calls.into_iter().zip(9..) {
            let m = with(Body::Call(signal));
            assert_eq!(AppMessage::decode(&m.encode()).unwrap(), m, "kind {kind} round-trips");
            assert_eq!(kind_of(m.body), kind);
        }
    }

    #[test]
    fn bad_new_kinds_are_typed_errors() {
        let raw = |kind: u8, body: &[u8]| {
            let mut b = vec![FORMAT_VERSION];
            put_field(&mut b, tag::ID, &[7; 16]);
            put_field(&mut b, tag::SENT_AT, &9u64.to_be_bytes());
            put_field(&mut b, tag::KIND, &[kind]);
            put_field(&mut b, tag::BODY, body);
            AppMessage::decode(&b)
        };
        assert_eq!(raw(3, &[]), Err(CodecError::Missing("typing state")));
        assert_eq!(raw(3, &[1, 1, 5]), Err(CodecError::Malformed("typing state")));
        assert_eq!(raw(6, &[]), Err(CodecError::Missing("target")));
        assert_eq!(raw(6, &[1, 3, 1, 2, 3]), Err(CodecError::Malformed("target")));
        let mut body = Vec::new();
        put_field(&mut body, tag::TARGET, &[1; 16]);
        assert_eq!(raw(4, &body), Err(CodecError::Missing("reaction")));
        assert_eq!(raw(5, &body), Err(CodecError::Missing("text")));
        let mut long = body.clone();
        put_field(&mut long, tag::REACTION_EMOJI, &[b'a'; MAX_REACTION_BYTES + 1]);
        assert_eq!(raw(4, &long), Err(CodecError::Malformed("reaction")));
        assert_eq!(raw(8, &[1, 1, 9]), Err(CodecError::Malformed("leave reason")));
        for b in [with(Body::Edit { target: MessageId([1; 16]), text: "abc".into() }).encode()] {
            for n in 0..b.len() {
                assert!(AppMessage::decode(&b[..n]).is_err());
            }
        }
    }

    #[test]
    fn old_client_sees_new_kind_as_unsupported() {
        // A message as a newer client would write it: kind 40 with a body we do not know, and an
        // extra top-level field (tag 9).
        let mut b = vec![FORMAT_VERSION];
        put_field(&mut b, tag::ID, &[7; 16]);
        put_field(&mut b, tag::SENT_AT, &9u64.to_be_bytes());
        put_field(&mut b, 9, b"future");
        put_field(&mut b, tag::KIND, &[40]);
        put_field(&mut b, tag::BODY, &[1, 2, 3]);
        let m = AppMessage::decode(&b).unwrap();
        assert_eq!(m.body, Body::Unsupported { kind: 40 });
        assert_eq!(m.id, MessageId([7; 16]));
    }

    #[test]
    fn new_fields_in_known_kinds_are_skipped() {
        let mut body = Vec::new();
        put_field(&mut body, tag::TEXT, b"hi");
        put_field(&mut body, 77, b"some later field");
        let mut b = vec![FORMAT_VERSION];
        put_field(&mut b, tag::ID, &[7; 16]);
        put_field(&mut b, tag::SENT_AT, &9u64.to_be_bytes());
        put_field(&mut b, tag::KIND, &[1]);
        put_field(&mut b, tag::BODY, &body);
        assert_eq!(AppMessage::decode(&b).unwrap().body, Body::Text { text: "hi".into(), reply_to: None });
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let enc = text("truncate me").encode();
        for n in 0..enc.len() {
            assert!(AppMessage::decode(&enc[..n]).is_err(), "prefix {n} decoded");
        }
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert_eq!(AppMessage::decode(&[]), Err(CodecError::Truncated));
        assert_eq!(AppMessage::decode(&[2]), Err(CodecError::Version(2)));
        assert_eq!(AppMessage::decode(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), Err(CodecError::BadVarint));
        let mut b = vec![FORMAT_VERSION];
        put_field(&mut b, tag::ID, &[7; 15]);
        assert_eq!(AppMessage::decode(&b), Err(CodecError::Malformed("id")));
        // Huge declared length.
        let mut b = vec![FORMAT_VERSION];
        put_varint(&mut b, tag::BODY);
        put_varint(&mut b, u64::MAX);
        assert_eq!(AppMessage::decode(&b), Err(CodecError::Truncated));
    }

    #[test]
    fn varints_round_trip_at_edges() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(get_varint(&b).unwrap(), (v, b.len()));
        }
    }
}

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
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tlv::{get_varint, put_field, put_varint, Fields};

/// The format version this build writes.
pub const FORMAT_VERSION: u8 = 1;

/// Longest text a message may carry, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

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

/// Why bytes are not an application message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended inside a field.
    #[error("the message is truncated")]
    Truncated,
    /// A varint is longer than 10 bytes or overflows.
    #[error("a number in the message is malformed")]
    BadVarint,
    /// A required field is missing.
    #[error("the message lacks its {0}")]
    Missing(&'static str),
    /// A field has the wrong size or content.
    #[error("the message's {0} is malformed")]
    Malformed(&'static str),
    /// The message is empty or of an unknown format version.
    #[error("unknown message format {0}")]
    Version(u8),
}

mod kind {
    pub const TEXT: u64 = 1;
    pub const RECEIPT: u64 = 2;
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
            other => Body::Unsupported { kind: other },
        };
        Ok(AppMessage { id, sent_at, body })
    }
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

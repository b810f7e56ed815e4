//! The quicproquo engine, shared by the browser (compiled to WebAssembly) and native clients.
//!
//! It holds one device's messaging state — identity and device keys, MLS groups (RFC 9420 via
//! openmls), conversations and their history, the outbox — and every step that changes it. It
//! is *sans-IO*: it opens no sockets, reads no clock and touches no browser API. Time comes in
//! as an argument, randomness as a seed, messages from the server as [`qpq_types::Envelope`]s;
//! what must be sent comes out as [`Outbound`] values and what must be stored as a
//! [`Changeset`] that the shell writes atomically after each step.
//!
//! What it deliberately does not do: networking and RPC (`qpq-client`), storage engines
//! (IndexedDB in `qpq-web`, files in `qpq-native`), rendering.

mod app_message;
pub mod call;
pub mod bench;
mod conversation;
mod engine;
mod error;
mod group_meta;
mod identity;
mod outbox;
mod profile;
mod provider;
mod state;
mod tlv;

pub use app_message::{
    AppMessage, Body, CodecError, FileRef, LeaveReason, MessageId, ReceiptKind, FORMAT_VERSION, MAX_REACTION_BYTES,
    MAX_TEXT_BYTES,
};
pub use conversation::{CallOutcome, Content, Conversation, ConversationKind, Message, Status, SystemEvent};
pub use engine::{
    decode_contacts, decode_history, encode_contacts, encode_history, safety_digits, AccountBackup, Contact, KnownProfile, ConversationHistory, Engine, Event, SafetyNumber, Verification, CIPHERSUITE, MAX_PAST_EPOCHS, PADDING_BYTES,
    SAFETY_NUMBER_DIGITS, TYPING_TIMEOUT_MS,
};
pub use error::EngineError;
pub use group_meta::{GroupMeta, MAX_DISAPPEAR_SECS, MAX_NAME_BYTES};
pub use identity::{credential_for, device_of_credential, ed25519_public_key};
pub use profile::{
    check_profile, Picture, Profile, MAX_PROFILE_NAME_CHARS, MAX_PROFILE_PICTURE_BYTES, MAX_PROFILE_STATUS_CHARS,
    PROFILE_PICTURE_TYPES,
};
pub use outbox::{ClaimedPackage, Outbound, OutboundOp, OutboundResult};
pub use state::Changeset;

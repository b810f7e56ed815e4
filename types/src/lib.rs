//! The quicproquo domain types.
//!
//! Hand-written, validated values that every other crate uses instead of generated readers:
//! user and device addresses, signed device records and the canonical bytes they sign,
//! envelopes, the stable error codes carried in RPC exceptions, and the token bucket behind
//! every rate limit (time as an argument).
//!
//! This crate knows nothing of Cap'n Proto (the wire crate `qpq-proto` converts between the
//! schema and these types and re-exports them), so the sans-IO engine `qpq-core` depends on
//! it alone and builds without the schema compiler. It holds no I/O and no MLS.

mod domain;
mod error_code;
mod rate;
pub mod roles;

pub use domain::{
    login_bytes, restore_bytes, ChannelId, ClientMsgId, DeviceAddress, DeviceId, DeviceRecord, DomainError,
    LOGIN_BINDING_LEN, LOGIN_EXPORTER_LABEL, Envelope, EnvelopeKind, UserId, MAX_DEVICES_PER_USER,
};
pub use error_code::{rate_limited_sentence, ErrorCode, RemoteError};
pub use rate::TokenBucket;

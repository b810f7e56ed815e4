//! Web Push: waking a browser whose tabs are closed (RFC 8030), with payloads encrypted to
//! the browser (RFC 8291, `ece.rs`) and requests signed by the cluster (RFC 8292 VAPID,
//! `vapid.rs`), sent by `sender.rs` over `http.rs`.
//!
//! A push carries no message content: its payload is [`WAKE_HINT`], padded to a fixed
//! length. The service worker that receives it connects and fetches the queued MLS messages
//! like any session. What is due when lives in storage (one waiting push per device, added
//! in the transaction that queues a message, dropped when the device acknowledges), so every
//! node of a cluster agrees; one node at a time sends.
//!
//! It deliberately does not know who the device belongs to, what the messages say, or which
//! conversation they are in.

mod ece;
mod http;
mod sender;
mod vapid;

use std::time::Duration;

pub use ece::{encrypt, encrypt_with};
pub use vapid::{audience, Vapid};

pub(crate) use sender::run;

/// The whole plaintext of every push: a wake-up, nothing about the messages.
pub const WAKE_HINT: &[u8] = b"wake";

/// The record every payload is padded to (hint, delimiter and zeros).
pub const PADDED_LEN: usize = 64;

/// Longest endpoint URL accepted.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// How the node pushes (from its configuration).
#[derive(Clone, Debug)]
pub struct PushSettings {
    /// The VAPID contact (`sub`).
    pub subject: String,
    /// How long after a message is queued its recipient is pushed, if it has not fetched.
    pub delay: Duration,
    /// `TTL` of each push.
    pub ttl_secs: u32,
    /// Let subscriptions name `http://` endpoints (a local push service in tests).
    pub allow_http: bool,
}

/// Why a push could not be prepared or sent. No variant carries key material or addresses.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The endpoint is not an http(s) URL this node will send to.
    #[error("the push endpoint is not a valid https URL")]
    Endpoint,
    /// A key is not a valid P-256 key.
    #[error("the push key is not a valid P-256 public key")]
    BadKey,
    /// The VAPID contact is not a `mailto:` or `https:` URL.
    #[error("the push contact must be a mailto: or https: URL")]
    Subject,
    /// The payload does not fit one record.
    #[error("the push payload is too large")]
    TooLarge,
    /// Encryption failed.
    #[error("the push payload could not be encrypted")]
    Crypto,
    /// The push service could not be reached or answered nonsense.
    #[error("{0}")]
    Unreachable(&'static str),
}

/// Checks a subscription as a device registers it: an endpoint this node may send to, a
/// valid P-256 point and a 16-byte secret.
pub fn check_subscription(endpoint: &str, p256dh: &[u8], auth: &[u8], allow_http: bool) -> Result<(), PushError> {
    if endpoint.len() > MAX_ENDPOINT_LEN
        || endpoint.chars().any(|c| c.is_whitespace() || c.is_control())
        || !(endpoint.starts_with("https://") || (allow_http && endpoint.starts_with("http://")))
    {
        return Err(PushError::Endpoint);
    }
    audience(endpoint)?;
    if p256dh.len() != 65 || p256::PublicKey::from_sec1_bytes(p256dh).is_err() {
        return Err(PushError::BadKey);
    }
    if auth.len() != 16 {
        return Err(PushError::BadKey);
    }
    Ok(())
}

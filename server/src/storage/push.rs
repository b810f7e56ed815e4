//! The Web Push rows storage keeps: a device's subscription, a claimed push, how a push
//! ended, the cluster's VAPID key, and the sender role.
//!
//! A subscription is routing data the browser handed out (the push service's URL and the
//! keys that payloads are encrypted to); the VAPID private key is the cluster's signing key
//! for its requests to push services. Neither `Debug` shows key bytes.

use std::fmt;

use super::Millis;

/// A device's Web Push subscription, as `PushSubscription` gives it (RFC 8030 §4, RFC 8291 §2).
#[derive(Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// The push service's URL for this subscription (https).
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: [u8; 65],
    /// The authentication secret (16 bytes).
    pub auth: [u8; 16],
}

impl fmt::Debug for PushSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The endpoint is a capability: whoever has it can push to the device.
        f.debug_struct("PushSubscription").finish_non_exhaustive()
    }
}

/// A push claimed by [`super::Storage::claim_pushes`], to be ended with
/// [`super::Storage::finish_push`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushJob {
    /// Which device's push this is (storage's internal key; opaque to callers).
    pub id: i64,
    /// Where to send it.
    pub subscription: PushSubscription,
    /// How many earlier attempts failed.
    pub attempts: u32,
}

/// How a claimed push ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The push service accepted it.
    Sent,
    /// The push service says the subscription is gone (404, 410).
    Gone,
    /// A failure worth trying again at the given time.
    RetryAt(Millis),
    /// Failed too often or for good: dropped (the device finds its messages when it connects).
    GiveUp,
}

/// The cluster's VAPID key pair (RFC 8292): P-256, the private scalar and the uncompressed
/// public point.
#[derive(Clone, PartialEq, Eq)]
pub struct VapidKeyRow {
    /// The private scalar (32 bytes).
    pub private_key: [u8; 32],
    /// The public key, uncompressed (65 bytes).
    pub public_key: [u8; 65],
}

impl fmt::Debug for VapidKeyRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKeyRow").finish_non_exhaustive()
    }
}

/// Held while this node is the cluster's push sender; dropping it gives the role up.
pub struct Leadership {
    _held: Box<dyn Send + Sync>,
}

impl Leadership {
    /// The role, kept as long as `held` lives (a lock's connection, or nothing).
    pub(super) fn new(held: Box<dyn Send + Sync>) -> Self {
        Leadership { _held: held }
    }
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Leadership")
    }
}

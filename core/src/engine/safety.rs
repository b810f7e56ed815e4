//! Safety numbers: what two people compare, side by side or over a call, to know that the
//! directory gave each of them the other's real identity key.
//!
//! Each person's half is a fingerprint of their user name and identity key, hashed many times
//! over (SHA-512, [`ITERATIONS`] rounds) so that finding another key with the same half costs
//! a brute-force search far beyond its 100 bits; the half is written as 30 digits (six groups
//! of five, each five bytes taken modulo 100,000). A pair's safety number is both halves
//! in ascending order, so both people see the same 60 digits; the QR code holds the same
//! digits. The scheme follows the numeric fingerprints of the Signal protocol; it is written
//! here from that description.
//!
//! Trust in a contact's identity key has three states ([`Verification`]). A key seen for the
//! first time is *unverified*; **Mark as verified** records that the person compared the
//! number. When the directory later shows another identity key for that user, the new key is
//! taken (a changed key is not a dead end) and every conversation with them gets a notice;
//! if the old key had been verified, nothing more is sent to conversations with them, nor are
//! they added anywhere, until the person compares the new number and verifies it again.

use qpq_types::UserId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use super::Engine;
use crate::conversation::SystemEvent;
use crate::error::EngineError;
use crate::state::StateKey;

/// Format version, hashed into every fingerprint (a new scheme gives new numbers).
const VERSION: u16 = 0;

/// SHA-512 rounds per fingerprint.
pub const ITERATIONS: usize = 5200;

/// Digits in a safety number (both halves).
pub const SAFETY_NUMBER_DIGITS: usize = 60;

/// How far the person trusts a contact's identity key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verification {
    /// Not compared (or compared and later unmarked).
    #[default]
    Unverified,
    /// The person compared the safety number for the key the engine now holds.
    Verified,
    /// The key changed after the person had verified the old one: sending to this user waits
    /// until the new number is verified.
    ChangedSinceVerified,
}

/// The safety number of this user and a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetyNumber {
    /// 60 digits, the same on both sides; shown in twelve groups of five.
    pub digits: String,
    /// The contact's key as the person last saw it.
    pub verification: Verification,
}

impl SafetyNumber {
    /// The digits in groups of five, separated by spaces.
    pub fn grouped(&self) -> String {
        let d = self.digits.as_bytes();
        d.chunks(5).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect::<Vec<_>>().join(" ")
    }
}

/// One person's half: 30 digits from their user name and identity key.
fn half(user: &UserId, identity_key: &[u8]) -> String {
    let mut h = Sha512::new();
    h.update(VERSION.to_be_bytes());
    h.update(identity_key);
    h.update(user.as_str().as_bytes());
    let mut digest = h.finalize();
    for _ in 1..ITERATIONS {
        let mut h = Sha512::new();
        h.update(digest);
        h.update(identity_key);
        digest = h.finalize();
    }
    digest[..30]
        .chunks(5)
        .map(|c| {
            let v = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", v % 100_000)
        })
        .collect()
}

/// The safety number of two users with these identity keys: both halves, ascending, so it
/// is the same whichever side computes it.
pub fn safety_digits(a: &UserId, a_key: &[u8], b: &UserId, b_key: &[u8]) -> String {
    let (x, y) = (half(a, a_key), half(b, b_key));
    if x <= y {
        x + &y
    } else {
        y + &x
    }
}

impl Engine {
    /// The safety number with `peer`, once the engine holds their identity key (after a chat
    /// with them, or after their records were fetched).
    pub fn safety_number(&self, peer: &UserId) -> Option<SafetyNumber> {
        let k = self.known.get(peer).filter(|_| peer != self.user())?;
        let digits = safety_digits(self.user(), &self.identity_public_key(), peer, &k.identity_key);
        Some(SafetyNumber { digits, verification: k.verification })
    }

    /// How far the person trusts `peer`'s identity key.
    pub fn verification(&self, peer: &UserId) -> Verification {
        self.known.get(peer).map(|k| k.verification).unwrap_or_default()
    }

    /// Records that the person compared the safety number with `peer` and it matched.
    /// `digits` is the number they were shown (spaces ignored): if the key changed while
    /// it was on screen, nothing is marked.
    pub fn mark_verified(&mut self, peer: &UserId, digits: &str) -> Result<(), EngineError> {
        let shown: String = digits.chars().filter(|c| !c.is_whitespace()).collect();
        let current = self.safety_number(peer).ok_or_else(|| {
            EngineError::BadValue(format!("there is no safety number with {peer} yet; start a chat with them first"))
        })?;
        if shown != current.digits {
            return Err(EngineError::BadValue(format!(
                "the safety number with {peer} changed while it was shown; compare the new one"
            )));
        }
        self.set_verification(peer, Verification::Verified);
        Ok(())
    }

    /// Takes back a verification of `peer` (their key stays; it is just no longer marked).
    pub fn clear_verified(&mut self, peer: &UserId) {
        self.set_verification(peer, Verification::Unverified);
    }

    fn set_verification(&mut self, peer: &UserId, v: Verification) {
        if let Some(k) = self.known.get_mut(peer) {
            if k.verification != v {
                k.verification = v;
                self.dirty.insert(StateKey::Known(peer.clone()));
                let convs: Vec<_> =
                    self.conversations.values().filter(|c| c.members.contains(peer)).map(|c| c.id.clone()).collect();
                for c in convs {
                    self.events.push(super::Event::ConversationChanged(c));
                }
            }
        }
    }

    /// Refuses when `user`'s key changed after it was verified.
    pub(super) fn require_verified_unchanged(&self, user: &UserId) -> Result<(), EngineError> {
        if self.verification(user) == Verification::ChangedSinceVerified {
            return Err(EngineError::SafetyNumberChanged { user: user.clone() });
        }
        Ok(())
    }

    /// Refuses to write to a conversation while a member's key changed after it was verified.
    pub(super) fn require_trusted_members(&self, conv: &qpq_types::ChannelId) -> Result<(), EngineError> {
        let Some(c) = self.conversations.get(conv) else { return Ok(()) };
        c.members.iter().try_for_each(|m| self.require_verified_unchanged(m))
    }

    /// The directory shows a new identity key for `user`: every conversation with them says
    /// so, and a verified contact becomes [`Verification::ChangedSinceVerified`].
    pub(super) fn identity_changed(&mut self, user: &UserId, was: Verification, now: u64) -> Verification {
        let after = match was {
            Verification::Unverified => Verification::Unverified,
            _ => Verification::ChangedSinceVerified,
        };
        let convs: Vec<_> =
            self.conversations.values().filter(|c| c.members.contains(user)).map(|c| c.id.clone()).collect();
        for conv in convs {
            let m = self.system_message(
                user.clone(),
                qpq_types::DeviceId([0; 16]),
                now,
                SystemEvent::SafetyNumberChanged { was_verified: after == Verification::ChangedSinceVerified },
            );
            self.append(&conv, m, false);
            self.events.push(super::Event::ConversationChanged(conv));
        }
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn both_sides_compute_the_same_sixty_digits() {
        let (a, b) = (user("alice@example.org"), user("bob@example.org"));
        let (ka, kb) = ([1u8; 32], [2u8; 32]);
        let ab = safety_digits(&a, &ka, &b, &kb);
        assert_eq!(ab, safety_digits(&b, &kb, &a, &ka));
        assert_eq!(ab.len(), SAFETY_NUMBER_DIGITS);
        assert!(ab.bytes().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn another_key_or_name_gives_another_number() {
        let (a, b) = (user("alice@example.org"), user("bob@example.org"));
        let base = safety_digits(&a, &[1; 32], &b, &[2; 32]);
        assert_ne!(base, safety_digits(&a, &[1; 32], &b, &[3; 32]));
        assert_ne!(base, safety_digits(&a, &[1; 32], &user("bob@example.net"), &[2; 32]));
        // Each person's half is their own: a changed key of one side keeps the other half.
        let changed = safety_digits(&a, &[1; 32], &b, &[3; 32]);
        let alice_half = half(&a, &[1; 32]);
        assert!(base.contains(&alice_half) && changed.contains(&alice_half));
    }

    #[test]
    fn grouped_in_twelve_fives() {
        let n = SafetyNumber { digits: "0123456789".repeat(6), verification: Verification::Unverified };
        let g = n.grouped();
        assert_eq!(g.split(' ').count(), 12);
        assert!(g.starts_with("01234 56789 01234"));
    }
}

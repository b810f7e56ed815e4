//! Profiles: a person's display name, status text and picture, as a *card* signed by their
//! identity key.
//!
//! A card travels only inside conversations, as an MLS application message (kind 16), so the
//! node never sees it in clear; a receiver keeps it only if the signature verifies against the
//! identity key the directory holds for the card's user. Because the signature, not the MLS
//! sender, vouches for it, a card may be forwarded by any member, and a forged or altered one
//! is caught whoever relays it.
//!
//! ```text
//! card      := version:u8(=1) field*            (TLV, as in app_message.rs)
//! tags      := 1 user | 2 updated_at (u64 BE, ms) | 3 name | 4 status | 5 picture type
//!            | 6 picture bytes | 15 signature (Ed25519, 64 bytes; the last field)
//! signed    := "quicproquo profile card v1" ‖ every byte of the card before the signature field
//! ```
//!
//! The picture is carried in the card itself rather than as a separate blob: a blob on the
//! node belongs to one conversation's channel, while a picture must be readable in every
//! conversation its owner is in. The UI scales it to 128×128 first, so it stays small.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use qpq_types::UserId;

use crate::tlv::{put_field, CodecError, Fields};

/// Longest display name, in characters.
pub const MAX_PROFILE_NAME_CHARS: usize = 64;
/// Longest status text, in characters.
pub const MAX_PROFILE_STATUS_CHARS: usize = 140;
/// Largest picture, in bytes.
pub const MAX_PROFILE_PICTURE_BYTES: usize = 48 * 1024;
/// The picture types a card may carry.
pub const PROFILE_PICTURE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

const CARD_VERSION: u8 = 1;
const SIGNING_CONTEXT: &[u8] = b"quicproquo profile card v1";

mod tag {
    pub const USER: u64 = 1;
    pub const UPDATED_AT: u64 = 2;
    pub const NAME: u64 = 3;
    pub const STATUS: u64 = 4;
    pub const PICTURE_TYPE: u64 = 5;
    pub const PICTURE: u64 = 6;
    pub const SIGNATURE: u64 = 15;
}

/// A profile picture: its media type and bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Picture {
    /// One of [`PROFILE_PICTURE_TYPES`].
    pub mime: String,
    /// The image.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture").field("mime", &self.mime).field("len", &self.bytes.len()).finish()
    }
}

/// What a profile says.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    /// Whose profile.
    pub user: UserId,
    /// When its owner last changed it (ms); a card replaces a held one only if newer.
    pub updated_at: u64,
    /// The display name (may be empty).
    pub name: String,
    /// The status text (may be empty).
    pub status: String,
    /// The picture, if any.
    pub picture: Option<Picture>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and status are personal data: they stay out of logs and panics.
        f.debug_struct("Profile")
            .field("user", &self.user)
            .field("updated_at", &self.updated_at)
            .field("picture", &self.picture.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a profile cannot be set, in words for the person.
pub fn check_profile(name: &str, status: &str, picture: Option<&Picture>) -> Result<(), String> {
    if name.chars().count() > MAX_PROFILE_NAME_CHARS {
        return Err(format!("the display name is longer than {MAX_PROFILE_NAME_CHARS} characters"));
    }
    if status.chars().count() > MAX_PROFILE_STATUS_CHARS {
        return Err(format!("the status is longer than {MAX_PROFILE_STATUS_CHARS} characters"));
    }
    if name.chars().any(char::is_control) || status.chars().any(|c| c.is_control() && c != '\n') {
        return Err("the display name or status contains control characters".into());
    }
    if let Some(p) = picture {
        if !PROFILE_PICTURE_TYPES.contains(&p.mime.as_str()) {
            return Err("the picture must be a JPEG, PNG or WebP image".into());
        }
        if p.bytes.is_empty() {
            return Err("the picture is empty".into());
        }
        if p.bytes.len() > MAX_PROFILE_PICTURE_BYTES {
            return Err(format!(
                "the picture is {} KiB; at most {} KiB fits in a profile",
                p.bytes.len().div_ceil(1024),
                MAX_PROFILE_PICTURE_BYTES / 1024
            ));
        }
    }
    Ok(())
}

/// Encodes and signs `profile` with `identity_key` (the profile's user's).
pub(crate) fn sign_card(profile: &Profile, identity_key: &SigningKey) -> Vec<u8> {
    let mut card = vec![CARD_VERSION];
    put_field(&mut card, tag::USER, profile.user.as_str().as_bytes());
    put_field(&mut card, tag::UPDATED_AT, &profile.updated_at.to_be_bytes());
    put_field(&mut card, tag::NAME, profile.name.as_bytes());
    put_field(&mut card, tag::STATUS, profile.status.as_bytes());
    if let Some(p) = &profile.picture {
        put_field(&mut card, tag::PICTURE_TYPE, p.mime.as_bytes());
        put_field(&mut card, tag::PICTURE, &p.bytes);
    }
    let sig = identity_key.sign(&[SIGNING_CONTEXT, &card].concat());
    put_field(&mut card, tag::SIGNATURE, &sig.to_bytes());
    card
}

/// A card's fields and where its signature covers, before any signature check.
pub(crate) struct UncheckedCard<'a> {
    pub(crate) profile: Profile,
    signed: &'a [u8],
    signature: [u8; 64],
}

/// Reads a card's fields. The caller checks the signature with [`UncheckedCard::verify`]
/// against the identity key it holds for `profile.user`.
pub(crate) fn read_card(card: &[u8]) -> Result<UncheckedCard<'_>, CodecError> {
    let (&version, rest) = card.split_first().ok_or(CodecError::Truncated)?;
    if version != CARD_VERSION {
        return Err(CodecError::Version(version));
    }
    let (mut user, mut updated_at, mut name, mut status, mut mime, mut bytes) = (None, None, None, None, None, None);
    let mut signature = None;
    let mut consumed = 1;
    for field in Fields::new(rest) {
        let (t, v) = field?;
        let text = |what| String::from_utf8(v.to_vec()).map_err(|_| CodecError::Malformed(what));
        match t {
            tag::USER => {
                user = Some(UserId::parse(&text("user")?).map_err(|_| CodecError::Malformed("user"))?);
            }
            tag::UPDATED_AT => {
                updated_at = Some(u64::from_be_bytes(v.try_into().map_err(|_| CodecError::Malformed("time"))?));
            }
            tag::NAME => name = Some(text("name")?),
            tag::STATUS => status = Some(text("status")?),
            tag::PICTURE_TYPE => mime = Some(text("picture type")?),
            tag::PICTURE => bytes = Some(v.to_vec()),
            tag::SIGNATURE => {
                signature = Some(<[u8; 64]>::try_from(v).map_err(|_| CodecError::Malformed("signature"))?);
                break;
            }
            _ => {}
        }
        consumed = 1 + field_end(rest, v);
    }
    let signature = signature.ok_or(CodecError::Missing("signature"))?;
    // Everything after the signature is refused: what it does not cover cannot be trusted.
    let sig_field_len = 1 + 1 + 64;
    if consumed + sig_field_len != card.len() {
        return Err(CodecError::Malformed("signature"));
    }
    let picture = match (mime, bytes) {
        (Some(mime), Some(bytes)) => Some(Picture { mime, bytes }),
        (None, None) => None,
        _ => return Err(CodecError::Malformed("picture")),
    };
    let profile = Profile {
        user: user.ok_or(CodecError::Missing("user"))?,
        updated_at: updated_at.ok_or(CodecError::Missing("time"))?,
        name: name.unwrap_or_default(),
        status: status.unwrap_or_default(),
        picture,
    };
    check_profile(&profile.name, &profile.status, profile.picture.as_ref()).map_err(|_| CodecError::Malformed("profile"))?;
    Ok(UncheckedCard { profile, signed: &card[..consumed], signature })
}

/// The offset in `rest` just past the field whose value is `v` (a sub-slice of `rest`).
fn field_end(rest: &[u8], v: &[u8]) -> usize {
    (v.as_ptr() as usize - rest.as_ptr() as usize) + v.len()
}

impl UncheckedCard<'_> {
    /// Whether the card was signed by `identity_key` (32 bytes, Ed25519).
    pub(crate) fn verify(&self, identity_key: &[u8]) -> bool {
        let Ok(key) = <[u8; 32]>::try_from(identity_key) else { return false };
        let Ok(key) = VerifyingKey::from_bytes(&key) else { return false };
        key.verify_strict(&[SIGNING_CONTEXT, self.signed].concat(), &Signature::from_bytes(&self.signature)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn alice() -> Profile {
        Profile {
            user: UserId::parse("alice@example.org").unwrap(),
            updated_at: 1_700_000_000_000,
            name: "Alice Liddell".into(),
            status: "down the rabbit hole".into(),
            picture: Some(Picture { mime: "image/png".into(), bytes: vec![0x89, b'P', b'N', b'G', 1, 2, 3] }),
        }
    }

    #[test]
    fn a_signed_card_reads_back_and_verifies_only_with_its_key() {
        let card = sign_card(&alice(), &key(1));
        let read = read_card(&card).unwrap();
        assert_eq!(read.profile, alice());
        assert!(read.verify(key(1).verifying_key().as_bytes()));
        assert!(!read.verify(key(2).verifying_key().as_bytes()));
        assert!(!read.verify(&[0u8; 31]));
    }

    #[test]
    fn any_changed_byte_fails_the_signature_or_the_format() {
        let card = sign_card(&alice(), &key(1));
        let public = key(1).verifying_key();
        for i in 0..card.len() {
            let mut bad = card.clone();
            bad[i] ^= 0x20;
            if let Ok(read) = read_card(&bad) {
                assert!(!read.verify(public.as_bytes()), "byte {i} changed and the card still verified");
            }
        }
    }

    #[test]
    fn bytes_after_the_signature_or_a_half_picture_are_refused() {
        let mut card = sign_card(&alice(), &key(1));
        card.extend_from_slice(&[3, 1, b'x']);
        assert!(read_card(&card).is_err());
        let mut p = alice();
        p.picture = None;
        let mut half = vec![CARD_VERSION];
        put_field(&mut half, tag::USER, p.user.as_str().as_bytes());
        put_field(&mut half, tag::UPDATED_AT, &p.updated_at.to_be_bytes());
        put_field(&mut half, tag::PICTURE, b"no type");
        put_field(&mut half, tag::SIGNATURE, &[0; 64]);
        assert!(read_card(&half).is_err());
    }

    #[test]
    fn limits_are_said_in_words() {
        assert!(check_profile(&"x".repeat(65), "", None).unwrap_err().contains("64 characters"));
        assert!(check_profile("", &"é".repeat(141), None).unwrap_err().contains("140 characters"));
        let big = Picture { mime: "image/webp".into(), bytes: vec![0; MAX_PROFILE_PICTURE_BYTES + 1] };
        assert!(check_profile("a", "", Some(&big)).unwrap_err().contains("at most 48 KiB"));
        let gif = Picture { mime: "image/gif".into(), bytes: vec![1] };
        assert!(check_profile("a", "", Some(&gif)).unwrap_err().contains("JPEG, PNG or WebP"));
        assert!(check_profile("a\u{7}", "", None).is_err());
        assert!(check_profile(&"é".repeat(64), "line one\nline two", None).is_ok());
    }
}

//! Linking a device, what both sides share: the bounds of a link slot and the checks of its
//! parameters. The new device's side is in [`super::entry`] (`linkRequest`, `linkAnswer`),
//! the account's side in [`super::session`] (`openLink`, `linkRequest`, `answerLink`,
//! `closeLink`); the rules are the storage's (`Storage::open_link` and the rest).

use qpq_proto::{wire, ErrorCode};

/// Most link slots an account has open at once.
pub(crate) const MAX_OPEN_LINKS: u32 = 3;
/// Largest request a new device puts into a slot (ciphertext).
pub(crate) const MAX_LINK_REQUEST_BYTES: usize = 4 << 10;
/// Largest answer an account device puts into a slot (ciphertext).
pub(crate) const MAX_LINK_ANSWER_BYTES: usize = 64 << 10;

/// A slot name: exactly 32 bytes (derived from the link code by the clients).
pub(crate) fn read_slot(d: &[u8]) -> Result<[u8; 32], capnp::Error> {
    d.try_into().map_err(|_| wire::bad("slot", "must be 32 bytes"))
}

/// Ciphertext put into a slot: not empty (`bad_request`), at most `max` bytes (`too_large`).
pub(crate) fn check_payload(field: &str, d: &[u8], max: usize) -> Result<(), capnp::Error> {
    if d.is_empty() {
        return Err(wire::bad(field, "is empty"));
    }
    if d.len() > max {
        let len = d.len();
        return Err(wire::error(ErrorCode::TooLarge, format!("{field} is {len} bytes; at most {max} are accepted")));
    }
    Ok(())
}

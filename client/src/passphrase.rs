//! A passphrase that locks this device's data key: Argon2id (RFC 9106) turns the passphrase
//! and a random salt into a key-encryption key, which seals the data key with
//! ChaCha20-Poly1305. Without the passphrase the stored data key cannot be opened.
//!
//! Parameters: 19 MiB of memory, 2 passes, 1 lane — the OWASP minimum for Argon2id (Password
//! Storage Cheat Sheet). They are stored in each lock, so they can be raised later without
//! locking anyone out.
//!
//! A lock is `version(1) ‖ m_kib(4) ‖ t(4) ‖ p(4) ‖ salt(16) ‖ nonce(12) ‖ sealed key(48)`,
//! integers big-endian; the header is the associated data of the seal, so a lock whose
//! parameters were lowered does not open.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// Memory cost in KiB (19 MiB).
pub const M_KIB: u32 = 19 * 1024;
/// Passes.
pub const T: u32 = 2;
/// Lanes.
pub const P: u32 = 1;
const VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + 4 + 4 + 16;
const LOCK_LEN: usize = HEADER + 12 + 32 + 16;

/// Why a lock does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The passphrase is not the one the lock was made with.
    #[error("that passphrase is not the right one")]
    WrongPassphrase,
    /// The stored lock is not one this version reads.
    #[error("the stored passphrase lock is damaged or from another version")]
    Damaged,
    /// The passphrase is too short to protect anything.
    #[error("choose a passphrase of at least 8 characters")]
    TooShort,
}

/// Argon2id of `passphrase` with `salt`, 32 bytes.
pub fn derive(passphrase: &[u8], salt: &[u8], m_kib: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, LockError> {
    let params = Params::new(m_kib, t, p, Some(32)).map_err(|_| LockError::Damaged)?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|_| LockError::Damaged)?;
    Ok(out)
}

/// Times `rounds` derivations with the lock's parameters (for the benchmarks, natively and in
/// the browser); returns the median in milliseconds. `now` is a clock in milliseconds.
pub fn time_derive(rounds: u32, now: &dyn Fn() -> f64) -> f64 {
    let mut times: Vec<f64> = (0..rounds.max(1))
        .map(|i| {
            let start = now();
            let _ = derive(format!("benchmark passphrase {i}").as_bytes(), &[7u8; 16], M_KIB, T, P);
            now() - start
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Locks `data_key` with `passphrase` (a fresh salt each time).
pub fn lock(data_key: &[u8; 32], passphrase: &str) -> Result<Vec<u8>, LockError> {
    if passphrase.chars().count() < 8 {
        return Err(LockError::TooShort);
    }
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let mut header = vec![VERSION];
    header.extend_from_slice(&M_KIB.to_be_bytes());
    header.extend_from_slice(&T.to_be_bytes());
    header.extend_from_slice(&P.to_be_bytes());
    header.extend_from_slice(&salt);
    let kek = derive(passphrase.as_bytes(), &salt, M_KIB, T, P)?;
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = ChaCha20Poly1305::new(Key::from_slice(kek.as_ref()))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: data_key, aad: &header })
        .expect("in-memory seal");
    Ok([header.as_slice(), &nonce, &ct].concat())
}

/// Opens a lock with `passphrase`, giving the data key.
pub fn unlock(lock: &[u8], passphrase: &str) -> Result<Zeroizing<[u8; 32]>, LockError> {
    if lock.len() != LOCK_LEN || lock[0] != VERSION {
        return Err(LockError::Damaged);
    }
    let be = |i: usize| u32::from_be_bytes(lock[i..i + 4].try_into().expect("4 bytes"));
    let (m, t, p) = (be(1), be(5), be(9));
    // Parameters below the minimum were not written by this code.
    if m < M_KIB || t < T || p < P || m > 1 << 22 || t > 64 || p > 16 {
        return Err(LockError::Damaged);
    }
    let (header, rest) = lock.split_at(HEADER);
    let kek = derive(passphrase.as_bytes(), &header[13..], m, t, p)?;
    let plain = ChaCha20Poly1305::new(Key::from_slice(kek.as_ref()))
        .decrypt(Nonce::from_slice(&rest[..12]), Payload { msg: &rest[12..], aad: header })
        .map_err(|_| LockError::WrongPassphrase)?;
    let plain = Zeroizing::new(plain);
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(plain.get(..32).ok_or(LockError::Damaged)?);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9106, section 5.3: the Argon2id test vector.
    #[test]
    fn argon2id_matches_the_rfc_9106_test_vector() {
        // Password 32 × 0x01, salt 16 × 0x02, secret 8 × 0x03, associated data 12 × 0x04,
        // 32 KiB, 3 passes, 4 lanes, 32-byte tag.
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(argon2::AssociatedData::new(&[4u8; 12]).unwrap())
            .build()
            .unwrap();
        let argon = Argon2::new_with_secret(&[3u8; 8], Algorithm::Argon2id, Version::V0x13, params).unwrap();
        let mut out = [0u8; 32];
        argon.hash_password_into(&[1u8; 32], &[2u8; 16], &mut out).unwrap();
        assert_eq!(hex::encode(out), "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
    }

    #[test]
    fn a_lock_opens_with_its_passphrase_only() {
        let key = [9u8; 32];
        let l = lock(&key, "correct horse battery").unwrap();
        assert_eq!(l.len(), LOCK_LEN);
        assert_eq!(*unlock(&l, "correct horse battery").unwrap(), key);
        assert_eq!(unlock(&l, "correct horse batterz").unwrap_err(), LockError::WrongPassphrase);
        assert_ne!(lock(&key, "correct horse battery").unwrap(), l, "a fresh salt and nonce each time");
        assert_eq!(lock(&key, "short").unwrap_err(), LockError::TooShort);
    }

    #[test]
    fn a_damaged_or_weakened_lock_does_not_open() {
        let l = lock(&[9u8; 32], "correct horse battery").unwrap();
        let mut weaker = l.clone();
        weaker[1..5].copy_from_slice(&(M_KIB / 2).to_be_bytes());
        assert_eq!(unlock(&weaker, "correct horse battery").unwrap_err(), LockError::Damaged);
        let mut bent = l.clone();
        bent[LOCK_LEN - 1] ^= 1;
        assert_eq!(unlock(&bent, "correct horse battery").unwrap_err(), LockError::WrongPassphrase);
        let mut salted = l.clone();
        salted[20] ^= 1;
        assert_eq!(unlock(&salted, "correct horse battery").unwrap_err(), LockError::WrongPassphrase);
        assert_eq!(unlock(&l[..40], "correct horse battery").unwrap_err(), LockError::Damaged);
        let mut v2 = l;
        v2[0] = 2;
        assert_eq!(unlock(&v2, "correct horse battery").unwrap_err(), LockError::Damaged);
    }
}

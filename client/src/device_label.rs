//! What an account's devices call each other ("Chromium on Linux"), kept on the node as
//! ciphertext only they can read: sealed with ChaCha20-Poly1305 under a key derived
//! (HKDF-SHA256) from the account's identity key, the device's id in the associated data (so
//! the node cannot move a label to another device), the name padded to a fixed size (so its
//! length does not show).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use qpq_proto::DeviceId;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The longest name, in bytes (longer ones are cut at a character boundary).
pub const MAX_NAME: usize = 64;

fn key(identity_secret: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit.
    Hkdf::<Sha256>::new(Some(b"qpq device label v1"), identity_secret).expand(b"key", k.as_mut()).expect("32 bytes");
    k
}

/// Seals `name` as the label of `device`.
pub fn seal(identity_secret: &[u8; 32], device: &DeviceId, name: &str) -> Vec<u8> {
    let name = crate::link::truncate(name, MAX_NAME);
    let mut plain = Zeroizing::new(vec![0u8; 1 + MAX_NAME]);
    plain[0] = name.len() as u8;
    plain[1..1 + name.len()].copy_from_slice(name.as_bytes());
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let k = key(identity_secret);
    let ct = ChaCha20Poly1305::new(Key::from_slice(k.as_ref()))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: &device.0 })
        .expect("in-memory seal");
    [nonce.as_slice(), &ct].concat()
}

/// Opens the label of `device`; `None` when it is absent, damaged or not this device's.
pub fn open(identity_secret: &[u8; 32], device: &DeviceId, sealed: &[u8]) -> Option<String> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(12);
    let k = key(identity_secret);
    let plain = Zeroizing::new(
        ChaCha20Poly1305::new(Key::from_slice(k.as_ref()))
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &device.0 })
            .ok()?,
    );
    let len = *plain.first()? as usize;
    let name = plain.get(1..1 + len)?;
    String::from_utf8(name.to_vec()).ok().filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_opens_for_its_device_under_its_account_only() {
        let secret = [3u8; 32];
        let device = DeviceId([1; 16]);
        let sealed = seal(&secret, &device, "Chromium on Linux");
        assert_eq!(open(&secret, &device, &sealed).as_deref(), Some("Chromium on Linux"));
        assert_eq!(sealed.len(), seal(&secret, &device, "x").len(), "every label has the same size");
        assert!(!sealed.windows(8).any(|w| w == b"Chromium"), "not in clear");
        assert_eq!(open(&secret, &DeviceId([2; 16]), &sealed), None, "moved to another device");
        assert_eq!(open(&[4u8; 32], &device, &sealed), None, "another account");
        let mut bent = sealed.clone();
        bent[20] ^= 1;
        assert_eq!(open(&secret, &device, &bent), None);
        let long = "é".repeat(40);
        assert_eq!(open(&secret, &device, &seal(&secret, &device, &long)).unwrap(), "é".repeat(32));
    }
}

//! RFC 8291 message encryption for Web Push: the `aes128gcm` content coding of RFC 8188,
//! keyed by an ECDH agreement between a fresh P-256 key of ours and the browser's `p256dh`
//! key, mixed with its `auth` secret (RFC 8291 §3). One record, padded to a fixed size so the
//! push service cannot tell one payload from another by its length.
//!
//! Written on RustCrypto (`p256`, `hkdf`, `aes-gcm`) rather than taken from the `web-push`
//! or `ece` crates: those draw the sender's key pair and salt inside `encrypt` and expose no
//! way to pass them in, so RFC 8291 Appendix A could not be reproduced byte for byte through
//! them (see ARCHITECTURE.md).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::{CryptoRng, RngCore};
use sha2::Sha256;

use super::PushError;

/// The record size announced in the header (RFC 8188 §2.1): one record always fits.
const RECORD_SIZE: u32 = 4096;
/// The AES-GCM tag.
const TAG_LEN: usize = 16;
/// The padding delimiter of the last (here: only) record (RFC 8188 §2).
const LAST_RECORD: u8 = 0x02;

/// Encrypts `plaintext` to the browser keys `ua_public` (65 bytes, uncompressed) and `auth`,
/// padding the record to `padded_len` bytes (plaintext, delimiter and zeros; at least
/// `plaintext.len() + 1`), with a fresh key pair and salt from `rng`. Returns the whole
/// request body: header (salt, record size, our public key) then the record.
pub fn encrypt(
    ua_public: &[u8; 65],
    auth: &[u8; 16],
    plaintext: &[u8],
    padded_len: usize,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>, PushError> {
    let ours = SecretKey::random(rng);
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    encrypt_with(&ours, &salt, ua_public, auth, plaintext, padded_len)
}

/// [`encrypt`] with the sender's key pair and the salt given (RFC 8291 Appendix A fixes
/// both; nothing else should).
pub fn encrypt_with(
    as_private: &SecretKey,
    salt: &[u8; 16],
    ua_public: &[u8; 65],
    auth: &[u8; 16],
    plaintext: &[u8],
    padded_len: usize,
) -> Result<Vec<u8>, PushError> {
    let padded_len = padded_len.max(plaintext.len() + 1);
    if padded_len + TAG_LEN > RECORD_SIZE as usize {
        return Err(PushError::TooLarge);
    }
    let ua = PublicKey::from_sec1_bytes(ua_public).map_err(|_| PushError::BadKey)?;
    let as_public = as_private.public_key().to_encoded_point(false);
    let (cek, nonce) = derive(as_private, &ua, as_public.as_bytes(), ua_public, auth, salt)?;

    let mut record = Vec::with_capacity(padded_len);
    record.extend_from_slice(plaintext);
    record.push(LAST_RECORD);
    record.resize(padded_len, 0);
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| PushError::Crypto)?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &record, aad: &[] })
        .map_err(|_| PushError::Crypto)?;

    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.as_bytes().len() as u8);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The content-encryption key and nonce (RFC 8291 §3.3–3.4, RFC 8188 §2.2–2.3).
fn derive(
    as_private: &SecretKey,
    ua: &PublicKey,
    as_public: &[u8],
    ua_public: &[u8; 65],
    auth: &[u8; 16],
    salt: &[u8; 16],
) -> Result<([u8; 16], [u8; 12]), PushError> {
    let shared = p256::ecdh::diffie_hellman(as_private.to_nonzero_scalar(), ua.as_affine());
    // key_info = "WebPush: info" || 0x00 || ua_public || as_public
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|_| PushError::Crypto)?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).map_err(|_| PushError::Crypto)?;
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).map_err(|_| PushError::Crypto)?;
    Ok((cek, nonce))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).expect("base64url")
    }

    /// RFC 8291 Appendix A ("Intermediate Values for Encryption"): the application server's
    /// key pair, the user agent's public key and authentication secret, the salt and the
    /// plaintext given there, with no padding, give the RFC's message byte for byte.
    #[test]
    fn reproduces_rfc8291_appendix_a() {
        let plaintext = b"When I grow up, I want to be a watermelon";
        let as_private = SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).expect("key");
        let as_public = b64("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8");
        assert_eq!(as_private.public_key().to_encoded_point(false).as_bytes(), &as_public[..]);
        let ua_public: [u8; 65] = b64(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        )
        .try_into()
        .expect("65 bytes");
        let auth: [u8; 16] = b64("BTBZMqHH6r4Tts7J_aSIgg").try_into().expect("16 bytes");
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().expect("16 bytes");
        let body = encrypt_with(&as_private, &salt, &ua_public, &auth, plaintext, 0).expect("encrypt");
        let expected = b64(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8w\
             EqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
        );
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), URL_SAFE_NO_PAD.encode(&expected));
        assert_eq!(body, expected);
    }

    /// Padded payloads have one length whatever they carry, and a fresh key and salt each time.
    #[test]
    fn padded_bodies_have_one_length_and_differ() {
        let ua = SecretKey::random(&mut rand::rngs::OsRng);
        let ua_public: [u8; 65] = ua.public_key().to_encoded_point(false).as_bytes().try_into().expect("65");
        let auth = [7u8; 16];
        let mut rng = rand::rngs::OsRng;
        let a = encrypt(&ua_public, &auth, b"a", 64, &mut rng).expect("encrypt");
        let b = encrypt(&ua_public, &auth, b"a longer hint", 64, &mut rng).expect("encrypt");
        assert_eq!(a.len(), b.len());
        assert_eq!(a.len(), 16 + 4 + 1 + 65 + 64 + 16);
        assert_ne!(a[..16], b[..16], "a fresh salt per message");
        assert!(encrypt(&ua_public, &auth, &[0; 4096], 0, &mut rng).is_err(), "more than one record is refused");
    }
}

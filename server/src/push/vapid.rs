//! VAPID (RFC 8292): the cluster identifies itself to push services with a JWT signed by
//! its P-256 key (ES256), naming the push service's origin (`aud`), a near expiry (`exp`,
//! at most 24 hours ahead) and a contact (`sub`, a `mailto:` or `https:` URL), sent with the
//! public key as `Authorization: vapid t=<JWT>, k=<key>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::SecretKey;
use rand::{CryptoRng, RngCore};

use super::PushError;
use crate::storage::VapidKeyRow;

/// How far ahead a token expires (RFC 8292 §2: no more than 24 hours).
pub const TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

/// The JOSE header of every token.
const HEADER: &str = r#"{"typ":"JWT","alg":"ES256"}"#;

/// The cluster's signing key with its contact.
pub struct Vapid {
    key: SigningKey,
    public: [u8; 65],
    subject: String,
}

impl Vapid {
    /// A fresh key pair, to offer as the cluster's (storage keeps the first one offered).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> VapidKeyRow {
        let secret = SecretKey::random(rng);
        VapidKeyRow {
            private_key: secret.to_bytes().into(),
            public_key: public_bytes(&secret),
        }
    }

    /// The signer for the stored key `row`, with `subject` as the contact (`mailto:` or
    /// `https:`).
    pub fn new(row: &VapidKeyRow, subject: &str) -> Result<Vapid, PushError> {
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) || subject.len() < 10 {
            return Err(PushError::Subject);
        }
        let secret = SecretKey::from_slice(&row.private_key).map_err(|_| PushError::BadKey)?;
        if public_bytes(&secret) != row.public_key {
            return Err(PushError::BadKey);
        }
        Ok(Vapid { key: SigningKey::from(&secret), public: row.public_key, subject: subject.to_owned() })
    }

    /// The public key (uncompressed point): browsers subscribe with it as
    /// `applicationServerKey`.
    pub fn public_key(&self) -> &[u8; 65] {
        &self.public
    }

    /// A token for requests to `endpoint`, valid until `now_secs + TOKEN_LIFETIME_SECS`.
    pub fn token(&self, endpoint: &str, now_secs: u64) -> Result<String, PushError> {
        let claims = serde_json::json!({
            "aud": audience(endpoint)?,
            "exp": now_secs + TOKEN_LIFETIME_SECS,
            "sub": self.subject,
        });
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(HEADER), URL_SAFE_NO_PAD.encode(claims.to_string()));
        // ES256 (RFC 7518 §3.4): the signature is R || S, 64 bytes.
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes())))
    }

    /// The `Authorization` header value for a request to `endpoint` (RFC 8292 §3).
    pub fn authorization(&self, endpoint: &str, now_secs: u64) -> Result<String, PushError> {
        Ok(format!("vapid t={}, k={}", self.token(endpoint, now_secs)?, URL_SAFE_NO_PAD.encode(self.public)))
    }
}

fn public_bytes(secret: &SecretKey) -> [u8; 65] {
    let point = secret.public_key().to_encoded_point(false);
    point.as_bytes().try_into().expect("an uncompressed P-256 point is 65 bytes")
}

/// The origin of `endpoint` (scheme, host and port as written): the token's audience.
pub fn audience(endpoint: &str) -> Result<String, PushError> {
    let (scheme, rest) = endpoint.split_once("://").ok_or(PushError::Endpoint)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(PushError::Endpoint);
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(PushError::Endpoint);
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::VerifyingKey;

    use super::*;

    /// The token is an ES256 JWT (RFC 7515/7518) that verifies under the key sent as `k`,
    /// whose claims name the push service's origin, expire within 24 hours and give a real
    /// contact (RFC 8292 §2).
    #[test]
    fn token_is_a_verifiable_es256_jwt_with_the_required_claims() {
        let row = Vapid::generate(&mut rand::rngs::OsRng);
        let vapid = Vapid::new(&row, "mailto:postmaster@chat.example").expect("vapid");
        let now = 1_800_000_000;
        let endpoint = "https://Push.Example.net:8443/wpush/v2/gAAAAABk?x=1";
        let header = vapid.authorization(endpoint, now).expect("header");
        let (t, k) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .expect("vapid t=…, k=…");
        assert_eq!(URL_SAFE_NO_PAD.decode(k).expect("k"), row.public_key);

        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let jose: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(jose["alg"], "ES256");
        assert_eq!(jose["typ"], "JWT");
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        let exp = claims["exp"].as_u64().expect("exp");
        assert!(exp > now && exp <= now + 24 * 3600, "exp within 24 hours");
        assert_eq!(claims["sub"], "mailto:postmaster@chat.example");

        let key = VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(k).expect("k")).expect("key");
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).expect("b64")).expect("R || S");
        let signed = format!("{}.{}", parts[0], parts[1]);
        key.verify(signed.as_bytes(), &signature).expect("the signature verifies");
        let mut forged = signed.into_bytes();
        forged[parts[0].len() + 3] ^= 1;
        assert!(key.verify(&forged, &signature).is_err(), "a changed claim does not verify");
    }

    #[test]
    fn subject_must_be_a_contact_and_key_must_match() {
        let row = Vapid::generate(&mut rand::rngs::OsRng);
        assert!(matches!(Vapid::new(&row, "postmaster"), Err(PushError::Subject)));
        let mut wrong = row.clone();
        wrong.public_key = Vapid::generate(&mut rand::rngs::OsRng).public_key;
        assert!(matches!(Vapid::new(&wrong, "mailto:a@b.example"), Err(PushError::BadKey)));
        assert!(audience("ftp://x").is_err());
        assert!(audience("https://user@host/").is_err());
        assert_eq!(audience("http://127.0.0.1:9/p").expect("origin"), "http://127.0.0.1:9");
    }
}

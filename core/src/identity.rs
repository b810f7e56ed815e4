//! Identity and device keys.
//!
//! A user has one identity key (Ed25519) that signs device records; every device has its own
//! Ed25519 key, which is both its login key and its MLS signature key, and its own MLS leaf.

use ed25519_dalek::{Signer as _, SigningKey};
use openmls::prelude::{BasicCredential, Credential, CredentialWithKey, SignatureScheme};
use openmls_traits::signatures::{Signer, SignerError};
use qpq_types::{login_bytes, DeviceAddress, DeviceId, DeviceRecord, UserId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::EngineError;

/// The keys and records of this device.
pub struct Identity {
    user: UserId,
    identity_key: SigningKey,
    device_id: DeviceId,
    device_key: DeviceSigner,
    record: DeviceRecord,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// The device's Ed25519 key as an openmls `Signer`.
pub(crate) struct DeviceSigner(SigningKey);

impl Signer for DeviceSigner {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.0.sign(payload).to_bytes().to_vec())
    }

    fn signature_scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// The persisted form. Secret fields are zeroised when dropped.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredIdentity {
    user: String,
    identity_secret: Zeroizing<Vec<u8>>,
    device_id: Vec<u8>,
    device_secret: Zeroizing<Vec<u8>>,
    created_at: u64,
}

impl Identity {
    /// Creates a new identity with its first device from 64 bytes of randomness supplied by the
    /// shell.
    pub fn generate(user: UserId, randomness: &[u8; 64], device_id: DeviceId, now: u64) -> Self {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a.copy_from_slice(&randomness[..32]);
        b.copy_from_slice(&randomness[32..]);
        let identity_key = SigningKey::from_bytes(&a);
        let device_key = SigningKey::from_bytes(&b);
        Self::assemble(user, identity_key, device_id, device_key, now)
    }

    /// The identity of a linked device: the account's identity key and this device's key.
    pub fn from_secrets(
        user: UserId,
        identity_secret: &[u8; 32],
        device_id: DeviceId,
        device_secret: &[u8; 32],
        created_at: u64,
    ) -> Self {
        let identity_key = SigningKey::from_bytes(identity_secret);
        let device_key = SigningKey::from_bytes(device_secret);
        Self::assemble(user, identity_key, device_id, device_key, created_at)
    }

    fn assemble(
        user: UserId,
        identity_key: SigningKey,
        device_id: DeviceId,
        device_key: SigningKey,
        created_at: u64,
    ) -> Self {
        let dk = device_key.verifying_key().to_bytes();
        let sig = identity_key.sign(&DeviceRecord::signed_bytes(&user, &device_id, &dk, created_at));
        let record = DeviceRecord {
            user: user.clone(),
            device_id,
            device_key: dk,
            created_at,
            signature: sig.to_bytes(),
        };
        Identity { user, identity_key, device_id, device_key: DeviceSigner(device_key), record }
    }

    pub(crate) fn to_stored(&self) -> StoredIdentity {
        StoredIdentity {
            user: self.user.to_string(),
            identity_secret: Zeroizing::new(self.identity_key.to_bytes().to_vec()),
            device_id: self.device_id.0.to_vec(),
            device_secret: Zeroizing::new(self.device_key.0.to_bytes().to_vec()),
            created_at: self.record.created_at,
        }
    }

    pub(crate) fn from_stored(s: &StoredIdentity) -> Result<Self, EngineError> {
        let corrupt = |_| EngineError::Corrupt("identity");
        let user = UserId::parse(&s.user).map_err(corrupt)?;
        let ik: [u8; 32] = s.identity_secret.as_slice().try_into().map_err(|_| EngineError::Corrupt("identity"))?;
        let dk: [u8; 32] = s.device_secret.as_slice().try_into().map_err(|_| EngineError::Corrupt("identity"))?;
        let device_id = DeviceId::from_slice(&s.device_id).map_err(corrupt)?;
        Ok(Self::assemble(user, SigningKey::from_bytes(&ik), device_id, SigningKey::from_bytes(&dk), s.created_at))
    }

    /// The user this device belongs to.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    /// This device's address.
    pub fn address(&self) -> DeviceAddress {
        DeviceAddress { user: self.user.clone(), device: self.device_id }
    }

    /// The identity secret key (handed over when linking a device).
    pub fn identity_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.identity_key.to_bytes())
    }

    /// The identity key, which signs device records and profile cards.
    pub(crate) fn identity_signing_key(&self) -> &SigningKey {
        &self.identity_key
    }

    /// The identity key's public half.
    pub fn identity_public_key(&self) -> [u8; 32] {
        self.identity_key.verifying_key().to_bytes()
    }

    /// This device's record, signed by the identity key.
    pub fn device_record(&self) -> &DeviceRecord {
        &self.record
    }

    /// A record for another device of this user (for linking a new device), signed by the
    /// identity key.
    pub fn sign_device_record(&self, device_id: DeviceId, device_key: [u8; 32], created_at: u64) -> DeviceRecord {
        let sig = self
            .identity_key
            .sign(&DeviceRecord::signed_bytes(&self.user, &device_id, &device_key, created_at));
        DeviceRecord { user: self.user.clone(), device_id, device_key, created_at, signature: sig.to_bytes() }
    }

    /// Signs, with the identity key, the registration of this (restored) device in place of
    /// the account's others (see `restore_bytes`).
    pub fn sign_restore(&self, record: &DeviceRecord, nonce: &[u8]) -> [u8; 64] {
        self.identity_key.sign(&qpq_types::restore_bytes(record, nonce)).to_bytes()
    }

    /// Signs a login challenge, bound to the connection's TLS exporter value when the
    /// transport gives one (see `login_bytes`).
    pub fn sign_login(&self, nonce: &[u8], binding: &[u8]) -> [u8; 64] {
        self.device_key.0.sign(&login_bytes(&self.user, &self.device_id, nonce, binding)).to_bytes()
    }

    pub(crate) fn signer(&self) -> &DeviceSigner {
        &self.device_key
    }

    pub(crate) fn credential_with_key(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: credential_for(&self.address()),
            signature_key: self.record.device_key.to_vec().into(),
        }
    }
}

/// The Ed25519 public key of a secret key (a linked device makes its key before it knows
/// its account).
pub fn ed25519_public_key(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// The MLS credential of a device: a basic credential whose identity is `user#devicehex`.
pub fn credential_for(device: &DeviceAddress) -> Credential {
    BasicCredential::new(format!("{}#{}", device.user, device.device.to_hex()).into_bytes()).into()
}

/// Reads back the device address from a credential made by [`credential_for`].
pub fn device_of_credential(credential: &Credential) -> Result<DeviceAddress, EngineError> {
    let basic = BasicCredential::try_from(credential.clone()).map_err(|_| EngineError::BadCredential)?;
    let text = std::str::from_utf8(basic.identity()).map_err(|_| EngineError::BadCredential)?;
    let (user, dev) = text.rsplit_once('#').ok_or(EngineError::BadCredential)?;
    let user = UserId::parse(user).map_err(|_| EngineError::BadCredential)?;
    let bytes = hex::decode(dev).map_err(|_| EngineError::BadCredential)?;
    let device = DeviceId::from_slice(&bytes).map_err(|_| EngineError::BadCredential)?;
    Ok(DeviceAddress { user, device })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_identity_round_trips_and_record_verifies() {
        let user = UserId::parse("alice@example.org").unwrap();
        let id = Identity::generate(user, &[3u8; 64], DeviceId([5; 16]), 1000);
        id.device_record().verify(&id.identity_public_key()).unwrap();
        let again = Identity::from_stored(&id.to_stored()).unwrap();
        assert_eq!(again.device_record(), id.device_record());
        assert_eq!(again.sign_login(b"n", b"b"), id.sign_login(b"n", b"b"));
    }

    #[test]
    fn a_linked_device_holds_the_record_its_account_signed_for_it() {
        let user = UserId::parse("alice@example.org").unwrap();
        let first = Identity::generate(user.clone(), &[3u8; 64], DeviceId([5; 16]), 1000);
        let device_secret = [8u8; 32];
        let device_key = SigningKey::from_bytes(&device_secret).verifying_key().to_bytes();
        let registered = first.sign_device_record(DeviceId([6; 16]), device_key, 2000);
        let linked = Identity::from_secrets(user, &first.identity_secret(), DeviceId([6; 16]), &device_secret, 2000);
        assert_eq!(linked.device_record(), &registered);
        assert_eq!(linked.identity_public_key(), first.identity_public_key());
        linked.device_record().verify(&first.identity_public_key()).unwrap();
    }

    #[test]
    fn credentials_carry_the_device_address() {
        let addr = DeviceAddress { user: UserId::parse("bob@x.org").unwrap(), device: DeviceId([9; 16]) };
        assert_eq!(device_of_credential(&credential_for(&addr)).unwrap(), addr);
        let bogus: Credential = BasicCredential::new(b"no-hash-here".to_vec()).into();
        assert!(device_of_credential(&bogus).is_err());
    }
}

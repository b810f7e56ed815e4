//! Hand-written domain types shared by clients and servers, with validation at construction.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};

/// At most this many devices may belong to one identity.
pub const MAX_DEVICES_PER_USER: usize = 5;

const DEVICE_RECORD_LABEL: &[u8] = b"qpq device record v1\0";
const LOGIN_LABEL: &[u8] = b"qpq login v2\0";
const RESTORE_LABEL: &[u8] = b"qpq restore v1\0";

/// Why a value from the network or a person does not form a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The user name does not have the form `name@domain`.
    #[error("a user is written name@domain, with a name of 1 to 32 letters, digits, '.', '_' or '-'")]
    BadUserId,
    /// A byte field has the wrong length.
    #[error("{field} must be {expected} bytes, got {got}")]
    BadLength {
        /// Which field.
        field: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it had.
        got: usize,
    },
    /// A channel id is empty or longer than 64 bytes.
    #[error("a channel id is 1 to 64 bytes")]
    BadChannelId,
    /// A key is not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    BadKey,
    /// A signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// A user address, `name@domain`, normalised to lower case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId {
    full: String,
    at: usize,
}

impl UserId {
    /// Parses and normalises `name@domain`. Names are 1–32 of `[a-z0-9._-]`; domains are
    /// 1–253 of `[a-z0-9.-]` (an optional `:port` is allowed for development servers).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim().to_ascii_lowercase();
        let at = s.find('@').ok_or(DomainError::BadUserId)?;
        let (name, domain) = (&s[..at], &s[at + 1..]);
        let name_ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        let (host, port) = match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        };
        let host_ok = (1..=253).contains(&host.len())
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-".contains(&b))
            && !host.starts_with('.')
            && !host.ends_with('.');
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
        if name_ok && host_ok && port_ok {
            Ok(UserId { full: s, at })
        } else {
            Err(DomainError::BadUserId)
        }
    }

    /// The part before `@`.
    pub fn name(&self) -> &str {
        &self.full[..self.at]
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        &self.full[self.at + 1..]
    }

    /// The whole address.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.full)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.full
    }
}

impl serde::Serialize for UserId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> serde::Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UserId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for UserId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserId::parse(s)
    }
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Takes exactly the right number of bytes.
            pub fn from_slice(b: &[u8]) -> Result<Self, DomainError> {
                <[u8; $len]>::try_from(b).map($name).map_err(|_| DomainError::BadLength {
                    field: $field,
                    expected: $len,
                    got: b.len(),
                })
            }

            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..8])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
                $name::from_slice(&v).map_err(serde::de::Error::custom)
            }
        }
    };
}

fixed_bytes!(
    /// A device's id: 16 random bytes chosen by the device, unique within its user.
    DeviceId, 16, "deviceId"
);
fixed_bytes!(
    /// A client-chosen message id that makes enqueue and commit idempotent.
    ClientMsgId, 16, "clientMsgId"
);

/// A channel id: the MLS group id of the conversation, 1 to 64 bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(Vec<u8>);

impl ChannelId {
    /// Validates the length.
    pub fn from_slice(b: &[u8]) -> Result<Self, DomainError> {
        if (1..=64).contains(&b.len()) {
            Ok(ChannelId(b.to_vec()))
        } else {
            Err(DomainError::BadChannelId)
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The id no conversation may have (one zero byte; conversations are 16 random bytes):
    /// the node's hints about the account itself ([`EnvelopeKind::Account`]) carry it.
    pub fn account() -> ChannelId {
        ChannelId(vec![0])
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl ChannelId {
    /// Parses lower- or upper-case hex.
    pub fn from_hex(s: &str) -> Result<Self, DomainError> {
        let v = hex::decode(s).map_err(|_| DomainError::BadChannelId)?;
        ChannelId::from_slice(&v)
    }
}

impl serde::Serialize for ChannelId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ChannelId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChannelId::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.to_hex();
        write!(f, "ChannelId({})", &h[..h.len().min(12)])
    }
}

/// One device of one user.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
pub struct DeviceAddress {
    /// The owner.
    pub user: UserId,
    /// Which of its devices.
    pub device: DeviceId,
}

impl fmt::Display for DeviceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.user, &self.device.to_hex()[..8])
    }
}

/// A device record: binds a device key to a user, signed by the user's identity key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceRecord {
    /// The owner.
    pub user: UserId,
    /// The device's id.
    pub device_id: DeviceId,
    /// The device's Ed25519 public key (also its MLS signature key).
    pub device_key: [u8; 32],
    /// When the record was signed, milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Ed25519 signature by the identity key over [`DeviceRecord::signed_bytes`].
    pub signature: [u8; 64],
}

impl DeviceRecord {
    /// The canonical bytes the identity key signs.
    pub fn signed_bytes(
        user: &UserId,
        device_id: &DeviceId,
        device_key: &[u8; 32],
        created_at: u64,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(DEVICE_RECORD_LABEL.len() + 2 + user.as_str().len() + 56);
        out.extend_from_slice(DEVICE_RECORD_LABEL);
        put_str(&mut out, user.as_str());
        out.extend_from_slice(&device_id.0);
        out.extend_from_slice(device_key);
        out.extend_from_slice(&created_at.to_be_bytes());
        out
    }

    /// The address of the device this record describes.
    pub fn address(&self) -> DeviceAddress {
        DeviceAddress { user: self.user.clone(), device: self.device_id }
    }

    /// Checks the signature against `identity_key`.
    pub fn verify(&self, identity_key: &[u8; 32]) -> Result<(), DomainError> {
        let key = VerifyingKey::from_bytes(identity_key).map_err(|_| DomainError::BadKey)?;
        VerifyingKey::from_bytes(&self.device_key).map_err(|_| DomainError::BadKey)?;
        let msg = Self::signed_bytes(&self.user, &self.device_id, &self.device_key, self.created_at);
        key.verify_strict(&msg, &Signature::from_bytes(&self.signature))
            .map_err(|_| DomainError::BadSignature)
    }
}

/// What an envelope carries (mirrors `Envelope.Kind` in the schema).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum EnvelopeKind {
    /// An MLS application message.
    Application,
    /// An MLS commit.
    Commit,
    /// An MLS Welcome for a device that was just added.
    Welcome,
    /// An MLS proposal.
    Proposal,
    /// Not MLS: the node's word that the devices of a member of this channel changed (the
    /// account came back from a backup, see `NodeService.restoreDevice`); the payload is that
    /// member's user name. Only a hint to read the directory again, whose records are signed.
    Devices,
    /// Not MLS: the node's word that another device of this account changed the account's
    /// own settings (its blocks). Empty, on [`ChannelId::account`]. A hint to read them again.
    Account,
}

/// One message in a device's delivery queue.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Envelope {
    /// Per-device sequence number, strictly increasing.
    pub seq: u64,
    /// The channel (MLS group id) it belongs to.
    pub channel: ChannelId,
    /// What the payload is.
    pub kind: EnvelopeKind,
    /// The MLS message, opaque to the server.
    pub payload: Vec<u8>,
    /// When the server accepted it (ms since the Unix epoch).
    pub server_time: u64,
    /// When undelivered copies are dropped (ms since the Unix epoch), 0 for never.
    pub expires_at: u64,
}

/// The canonical bytes a device signs to log in: the user's own domain (a server of another
/// domain cannot use the signature), the device, the server's single-use nonce, and the
/// channel binding: the TLS exporter value of the QUIC connection the login travels on
/// ([`LOGIN_EXPORTER_LABEL`], [`LOGIN_BINDING_LEN`] bytes), or nothing when the client cannot
/// read it (a browser behind the gateway has no API for its connection's exporter).
pub fn login_bytes(user: &UserId, device: &DeviceId, nonce: &[u8], binding: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LOGIN_LABEL.len() + 96 + nonce.len());
    out.extend_from_slice(LOGIN_LABEL);
    put_str(&mut out, user.domain());
    put_str(&mut out, user.as_str());
    out.extend_from_slice(&device.0);
    out.extend_from_slice(&(nonce.len() as u16).to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&(binding.len() as u16).to_be_bytes());
    out.extend_from_slice(binding);
    out
}

/// The canonical bytes an identity key signs to restore its account on a new device
/// (`NodeService.restoreDevice`): the user (with its own domain), the new device's record and the
/// node's single-use nonce for that device (`challenge`).
pub fn restore_bytes(record: &DeviceRecord, nonce: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RESTORE_LABEL.len() + 200 + nonce.len());
    out.extend_from_slice(RESTORE_LABEL);
    put_str(&mut out, record.user.domain());
    out.extend_from_slice(&DeviceRecord::signed_bytes(&record.user, &record.device_id, &record.device_key, record.created_at));
    out.extend_from_slice(&record.signature);
    out.extend_from_slice(&(nonce.len() as u16).to_be_bytes());
    out.extend_from_slice(nonce);
    out
}

/// The TLS exporter label (RFC 8446 section 7.5, empty context) of a login's channel binding.
pub const LOGIN_EXPORTER_LABEL: &[u8] = b"EXPORTER-qpq-login";
/// The length of a login's channel binding.
pub const LOGIN_BINDING_LEN: usize = 32;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn user_ids_are_validated_and_normalised() {
        let u = UserId::parse(" Alice@Example.org ").unwrap();
        assert_eq!(u.as_str(), "alice@example.org");
        assert_eq!(u.name(), "alice");
        assert_eq!(u.domain(), "example.org");
        assert_eq!(UserId::parse("bob@127.0.0.1:7000").unwrap().domain(), "127.0.0.1:7000");
        for bad in ["", "alice", "@x", "a@", "a b@x", "a@x..", "a@.x", "<b>@x", &format!("{}@x", "a".repeat(33))] {
            assert_eq!(UserId::parse(bad), Err(DomainError::BadUserId), "{bad:?}");
        }
    }

    #[test]
    fn device_record_signature_binds_every_field() {
        let identity = SigningKey::from_bytes(&[7u8; 32]);
        let device = SigningKey::from_bytes(&[9u8; 32]);
        let user = UserId::parse("alice@example.org").unwrap();
        let device_id = DeviceId([1; 16]);
        let device_key = device.verifying_key().to_bytes();
        let sig = identity.sign(&DeviceRecord::signed_bytes(&user, &device_id, &device_key, 42));
        let rec = DeviceRecord { user, device_id, device_key, created_at: 42, signature: sig.to_bytes() };
        let ik = identity.verifying_key().to_bytes();
        rec.verify(&ik).unwrap();

        let mut other = rec.clone();
        other.created_at = 43;
        assert_eq!(other.verify(&ik), Err(DomainError::BadSignature));
        let mut other = rec.clone();
        other.device_id = DeviceId([2; 16]);
        assert_eq!(other.verify(&ik), Err(DomainError::BadSignature));
        assert_eq!(rec.verify(&device_key), Err(DomainError::BadSignature));
    }

    #[test]
    fn login_bytes_bind_the_users_domain_the_nonce_and_the_channel() {
        let alice = UserId::parse("alice@a.example").unwrap();
        let mallory = UserId::parse("alice@m.example").unwrap();
        let d = DeviceId([1; 16]);
        let base = login_bytes(&alice, &d, b"nonce", &[7; 32]);
        assert_ne!(base, login_bytes(&mallory, &d, b"nonce", &[7; 32]), "the domain is the user's own");
        assert_ne!(base, login_bytes(&alice, &d, b"nonce", &[8; 32]), "another connection");
        assert_ne!(base, login_bytes(&alice, &d, b"nonce", &[]), "no binding is not the same as a binding");
        assert_ne!(base, login_bytes(&alice, &d, b"other", &[7; 32]));
        // Lengths are prefixed: moving a byte from the nonce to the binding changes the bytes.
        assert_ne!(login_bytes(&alice, &d, b"ab", b"c"), login_bytes(&alice, &d, b"a", b"bc"));
    }

    #[test]
    fn fixed_lengths_are_enforced() {
        assert!(DeviceId::from_slice(&[0; 15]).is_err());
        assert!(DeviceId::from_slice(&[0; 16]).is_ok());
        assert!(ChannelId::from_slice(&[]).is_err());
        assert!(ChannelId::from_slice(&[0; 65]).is_err());
    }
}

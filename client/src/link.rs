//! Linking a device: the link code, what it derives, and the two messages of the hand-over.
//!
//! A device of the account makes a link code: 15 random bytes, shown as 24 characters of
//! Crockford's base32 in groups of four. From the code both devices derive (HKDF-SHA256) the
//! name of a slot on the node and two keys, one per direction. The new device puts its
//! request into the slot — its device id and public key, and a name for it — sealed under the
//! request key; the account's device registers that device and answers, sealed under the
//! answer key, with the account's name and identity key (or with why it refused). The node
//! relays ciphertext and learns neither the code nor the keys. Every seal carries a random
//! nonce and binds the slot name, so nothing moves from one slot or direction to another.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use qpq_proto::{ChannelId, DeviceId, UserId};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::ClientError;

/// Crockford's base32 alphabet (no I, L, O or U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Bytes of secret in a link code.
const CODE_BYTES: usize = 15;
/// The format version of both messages.
const VERSION: u8 = 1;
/// The longest device name a request carries (bytes).
pub const MAX_DEVICE_NAME: usize = 64;
/// The most bytes of settings an answer carries (longer ones are cut, which the shell's
/// format must survive: it is checked before use).
pub const MAX_SETTINGS: usize = 16 << 10;
/// How long a link slot stays open on the node (the node's own bound; for the UI).
pub const LINK_LIFETIME_MS: u64 = 10 * 60 * 1000;

/// What a person is told when a code is not one this app makes.
const NOT_A_CODE: &str = "that is not a link code: it has 24 letters and digits, shown on your other device";

/// A link code and what it derives.
pub struct LinkCode {
    secret: Zeroizing<[u8; CODE_BYTES]>,
    slot: [u8; 32],
    request_key: Zeroizing<[u8; 32]>,
    answer_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for LinkCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkCode(..)")
    }
}

impl LinkCode {
    /// A new random code.
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; CODE_BYTES]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        Self::from_secret(secret)
    }

    fn from_secret(secret: Zeroizing<[u8; CODE_BYTES]>) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"qpq link v1"), secret.as_ref());
        let mut slot = [0u8; 32];
        let mut request_key = Zeroizing::new([0u8; 32]);
        let mut answer_key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 8160: expanding cannot fail.
        hk.expand(b"slot", &mut slot).expect("32 bytes");
        hk.expand(b"request", request_key.as_mut()).expect("32 bytes");
        hk.expand(b"answer", answer_key.as_mut()).expect("32 bytes");
        LinkCode { secret, slot, request_key, answer_key }
    }

    /// Reads a code as a person typed it: case, spaces and dashes do not matter, and the
    /// letters O, I and L read as the digits they look like.
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut out = Vec::with_capacity(CODE_BYTES);
        let mut chars = 0;
        for c in text.chars() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            let v = ALPHABET.iter().position(|&a| a as char == c).ok_or_else(|| ClientError::Input(NOT_A_CODE.into()))?;
            chars += 1;
            bits = (bits << 5) | v as u32;
            nbits += 5;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
                bits &= (1 << nbits) - 1;
            }
        }
        if chars != CODE_BYTES * 8 / 5 || out.len() != CODE_BYTES {
            return Err(ClientError::Input(NOT_A_CODE.into()));
        }
        let mut secret = Zeroizing::new([0u8; CODE_BYTES]);
        secret.copy_from_slice(&out);
        Ok(Self::from_secret(secret))
    }

    /// The code as people read and type it: `ABCD-EFGH-…`, six groups of four.
    pub fn text(&self) -> String {
        let mut chars = String::with_capacity(30);
        let mut bits: u32 = 0;
        let mut nbits = 0;
        for &b in self.secret.iter() {
            bits = (bits << 8) | b as u32;
            nbits += 8;
            while nbits >= 5 {
                nbits -= 5;
                chars.push(ALPHABET[((bits >> nbits) & 31) as usize] as char);
            }
            bits &= (1 << nbits) - 1;
        }
        let groups: Vec<&str> = chars.as_bytes().chunks(4).map(|g| std::str::from_utf8(g).unwrap_or("")).collect();
        groups.join("-")
    }

    /// The slot's name on the node.
    pub fn slot(&self) -> &[u8; 32] {
        &self.slot
    }

    /// Seals the new device's request.
    pub fn seal_request(&self, request: &LinkRequest) -> Vec<u8> {
        seal(&self.request_key, &self.slot, b"request", &request.encode())
    }

    /// Opens a request; `None` when it was not sealed under this code.
    pub fn open_request(&self, sealed: &[u8]) -> Result<LinkRequest, ClientError> {
        let plain = open(&self.request_key, &self.slot, b"request", sealed).ok_or_else(damaged)?;
        LinkRequest::decode(&plain)
    }

    /// Seals the account device's answer.
    pub fn seal_answer(&self, answer: &LinkAnswer) -> Vec<u8> {
        seal(&self.answer_key, &self.slot, b"answer", &answer.encode())
    }

    /// Opens an answer.
    pub fn open_answer(&self, sealed: &[u8]) -> Result<LinkAnswer, ClientError> {
        let plain = open(&self.answer_key, &self.slot, b"answer", sealed).ok_or_else(damaged)?;
        LinkAnswer::decode(&plain)
    }
}

fn damaged() -> ClientError {
    ClientError::Input("the other device's message could not be read (it was damaged, or not made with this code)".into())
}

fn seal(key: &[u8; 32], slot: &[u8; 32], direction: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let aad = [slot.as_slice(), direction].concat();
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    // Encrypting a buffer in memory fails only past the AEAD's 256 GiB limit.
    let ct = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: &aad }).expect("in-memory seal");
    [nonce.as_slice(), &ct].concat()
}

fn open(key: &[u8; 32], slot: &[u8; 32], direction: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(12);
    let aad = [slot.as_slice(), direction].concat();
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad }).ok().map(Zeroizing::new)
}

/// What a new device asks for: to be registered with this key and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRequest {
    /// The new device's id.
    pub device_id: DeviceId,
    /// Its Ed25519 public key.
    pub device_key: [u8; 32],
    /// What to call it ("Chromium on Linux"), at most [`MAX_DEVICE_NAME`] bytes.
    pub name: String,
}

impl LinkRequest {
    fn encode(&self) -> Vec<u8> {
        let name = truncate(&self.name, MAX_DEVICE_NAME);
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.device_id.0);
        out.extend_from_slice(&self.device_key);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out
    }

    fn decode(b: &[u8]) -> Result<Self, ClientError> {
        let mut r = Reader(b);
        r.version()?;
        let device_id = DeviceId(r.array()?);
        let device_key = r.array()?;
        let name = r.text()?;
        r.end()?;
        Ok(LinkRequest { device_id, device_key, name })
    }
}

/// Where the account device put its history for the new device: a blob of the conversation
/// `channel` (the new device can read it once it is a member), sealed like a file under `key`.
#[derive(Clone, PartialEq, Eq)]
pub struct HistoryRef {
    /// The conversation whose blob it is.
    pub channel: ChannelId,
    /// The blob.
    pub blob: [u8; 16],
    /// Plaintext bytes.
    pub size: u64,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
    /// The key it is sealed under, made for this hand-over.
    pub key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for HistoryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryRef").field("size", &self.size).finish_non_exhaustive()
    }
}

impl HistoryRef {
    /// The bytes of this reference (kept by the new device until the history is in).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![VERSION]);
        let c = self.channel.as_bytes();
        out.push(c.len() as u8);
        out.extend_from_slice(c);
        out.extend_from_slice(&self.blob);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.sha256);
        out.extend_from_slice(self.key.as_ref());
        out
    }

    /// Reads bytes made by [`HistoryRef::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, ClientError> {
        let mut r = Reader(b);
        let h = Self::read(&mut r)?;
        r.end()?;
        Ok(h)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ClientError> {
        r.version()?;
        let n = r.byte()? as usize;
        let channel = ChannelId::from_slice(r.take(n)?).map_err(|_| malformed())?;
        Ok(HistoryRef {
            channel,
            blob: r.array()?,
            size: u64::from_be_bytes(r.array()?),
            sha256: r.array()?,
            key: Zeroizing::new(r.array()?),
        })
    }
}

/// The account device's answer.
pub enum LinkAnswer {
    /// The device is registered: here is the account.
    Accepted {
        /// The account.
        user: UserId,
        /// Its identity secret key.
        identity_secret: Zeroizing<[u8; 32]>,
        /// The `created_at` of the record registered for the new device.
        created_at: u64,
        /// The recent history, when there is any.
        history: Option<HistoryRef>,
        /// The shell's settings to carry over (opaque here; at most 16 KiB), or empty.
        settings: String,
    },
    /// The device was not registered, and why, in words for people.
    Refused(String),
}

impl std::fmt::Debug for LinkAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkAnswer::Accepted { user, created_at, .. } => {
                f.debug_struct("Accepted").field("user", user).field("created_at", created_at).finish_non_exhaustive()
            }
            LinkAnswer::Refused(why) => f.debug_tuple("Refused").field(why).finish(),
        }
    }
}

impl LinkAnswer {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![VERSION]);
        match self {
            LinkAnswer::Accepted { user, identity_secret, created_at, history, settings } => {
                out.push(0);
                let u = user.as_str().as_bytes();
                out.push(u.len() as u8);
                out.extend_from_slice(u);
                out.extend_from_slice(identity_secret.as_ref());
                out.extend_from_slice(&created_at.to_be_bytes());
                let settings = truncate(settings, MAX_SETTINGS);
                out.extend_from_slice(&(settings.len() as u16).to_be_bytes());
                out.extend_from_slice(settings.as_bytes());
                if let Some(h) = history {
                    out.extend_from_slice(&h.to_bytes());
                }
            }
            LinkAnswer::Refused(why) => {
                out.push(1);
                let why = truncate(why, 255);
                out.push(why.len() as u8);
                out.extend_from_slice(why.as_bytes());
            }
        }
        out
    }

    fn decode(b: &[u8]) -> Result<Self, ClientError> {
        let mut r = Reader(b);
        r.version()?;
        let answer = match r.byte()? {
            0 => {
                let user = UserId::parse(&r.text()?).map_err(|_| malformed())?;
                let identity_secret = Zeroizing::new(r.array()?);
                let created_at = u64::from_be_bytes(r.array()?);
                let n = u16::from_be_bytes(r.array()?) as usize;
                let settings = String::from_utf8(r.take(n)?.to_vec()).map_err(|_| malformed())?;
                let history = if r.0.is_empty() { None } else { Some(HistoryRef::read(&mut r)?) };
                LinkAnswer::Accepted { user, identity_secret, created_at, history, settings }
            }
            1 => LinkAnswer::Refused(r.text()?),
            _ => return Err(malformed()),
        };
        r.end()?;
        Ok(answer)
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn malformed() -> ClientError {
    ClientError::Input("the other device's message is malformed; is it running the same version of quicproquo?".into())
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, ClientError> {
        let (&b, rest) = self.0.split_first().ok_or_else(malformed)?;
        self.0 = rest;
        Ok(b)
    }

    fn version(&mut self) -> Result<(), ClientError> {
        match self.byte()? {
            VERSION => Ok(()),
            _ => Err(ClientError::Input(
                "the other device runs a different version of quicproquo: update both, then link again".into(),
            )),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ClientError> {
        if self.0.len() < n {
            return Err(malformed());
        }
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ClientError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn text(&mut self) -> Result<String, ClientError> {
        let n = self.byte()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| malformed())
    }

    fn end(&self) -> Result<(), ClientError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(malformed())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> LinkRequest {
        LinkRequest { device_id: DeviceId([7; 16]), device_key: [9; 32], name: "Chromium on Linux".into() }
    }

    #[test]
    fn a_code_reads_back_as_typed_and_derives_the_same_slot() {
        let code = LinkCode::generate();
        let text = code.text();
        assert_eq!(text.len(), 29, "{text}");
        assert_eq!(text.split('-').count(), 6);
        let typed = text.to_lowercase().replace('-', " ").replace('0', "o").replace('1', "l");
        let again = LinkCode::parse(&typed).unwrap();
        assert_eq!(again.slot(), code.slot());
        assert_eq!(again.text(), text);
    }

    #[test]
    fn malformed_codes_are_refused_in_words() {
        for bad in ["", "ABCD", "ABCD-EFGH-JKMN-PQRS-TVWX-YZ2", "ABCD-EFGH-JKMN-PQRS-TVWX-YZ23-4", "ABCD-EFGH-JKMN-PQRS-TVWX-YZ2U"] {
            let err = LinkCode::parse(bad).unwrap_err();
            assert!(err.to_string().contains("not a link code"), "{bad}: {err}");
        }
    }

    #[test]
    fn request_and_answer_travel_sealed_under_the_code() {
        let code = LinkCode::generate();
        let sealed = code.seal_request(&request());
        assert!(!sealed.windows(17).any(|w| w == b"Chromium on Linux"), "the name is not in clear");
        assert_eq!(code.open_request(&sealed).unwrap(), request());
        let user = UserId::parse("alice@example.org").unwrap();
        let history = HistoryRef {
            channel: ChannelId::from_slice(&[3; 32]).unwrap(),
            blob: [5; 16],
            size: 1234,
            sha256: [6; 32],
            key: Zeroizing::new([7; 32]),
        };
        for history in [None, Some(history)] {
            let answer = LinkAnswer::Accepted {
                user: user.clone(),
                identity_secret: Zeroizing::new([4; 32]),
                created_at: 77,
                history: history.clone(),
                settings: "{\"muted\":[]}".into(),
            };
            let sealed = code.seal_answer(&answer);
            assert!(!sealed.windows(32).any(|w| w == [4u8; 32]), "the identity key is not in clear");
            match code.open_answer(&sealed).unwrap() {
                LinkAnswer::Accepted { user: u, identity_secret, created_at, history: h, settings } => {
                    assert_eq!((u, *identity_secret, created_at, h), (user.clone(), [4; 32], 77, history));
                    assert_eq!(settings, "{\"muted\":[]}");
                }
                other => panic!("{other:?}"),
            }
        }
        let refused = code.seal_answer(&LinkAnswer::Refused("five devices".into()));
        assert!(matches!(code.open_answer(&refused).unwrap(), LinkAnswer::Refused(w) if w == "five devices"));
    }

    #[test]
    fn another_code_a_flipped_bit_or_the_other_direction_does_not_open() {
        let code = LinkCode::generate();
        let other = LinkCode::generate();
        let sealed = code.seal_request(&request());
        assert!(other.open_request(&sealed).is_err());
        assert!(code.open_answer(&sealed).is_err(), "a request is not an answer");
        for i in [0, 12, sealed.len() - 1] {
            let mut bent = sealed.clone();
            bent[i] ^= 1;
            assert!(code.open_request(&bent).is_err(), "bit flipped at {i}");
        }
        assert!(code.open_request(&sealed[..20]).is_err());
    }
}

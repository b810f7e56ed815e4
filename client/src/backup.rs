//! The backup file: an account's contents sealed under a passphrase.
//!
//! Argon2id (RFC 9106; the parameters of [`crate::passphrase`]: 19 MiB, 2 passes, 1 lane, the
//! OWASP minimum, written into each file) turns the passphrase and a random salt into the
//! file key. The contents (what `Engine::export_account` encodes, never compressed) are
//! prefixed by their length, padded with zeros and cut into chunks of [`CHUNK_BYTES`], each
//! sealed with ChaCha20-Poly1305 in the STREAM construction: the nonce is the chunk's index and a
//! last-chunk flag, and every chunk's associated data is the whole header. So a changed
//! header, a changed, reordered, removed or added chunk, and a cut-off file all fail to open.
//!
//! ```text
//! header  = "QPQBACKUP\n" ‖ version(1) ‖ m_kib(4) ‖ t(4) ‖ p(4) ‖ salt(16) ‖ chunks(4) ‖ check(16)
//! file    = header ‖ sealed chunk 0 ‖ … ‖ sealed chunk n-1     (each CHUNK_BYTES + 16 bytes)
//! ```
//!
//! Integers are big-endian. `check` is the Poly1305 tag of sealing nothing under the file key
//! (nonce all ones, the header before it as associated data): a wrong passphrase is told apart
//! from a damaged file before any chunk is opened. Padding: the padded length is a whole
//! number of chunks, rounded up so that only its four leading bits vary (at most 12.5 %
//! more), so a file's size says little about how much history it holds.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::passphrase::{self, M_KIB, P, T};

/// What every backup file starts with.
pub const MAGIC: &[u8] = b"QPQBACKUP\n";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Plaintext bytes per chunk.
pub const CHUNK_BYTES: usize = 64 * 1024;
const TAG: usize = 16;
const HEADER: usize = MAGIC.len() + 1 + 4 + 4 + 4 + 16 + 4;
/// The header with its key check: where the chunks start.
pub const HEADER_BYTES: usize = HEADER + TAG;
/// The most chunks a file may have (4 GiB of contents).
const MAX_CHUNKS: u32 = 1 << 16;

/// Why a backup could not be made or opened, in words for the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    /// Not a quicproquo backup at all.
    #[error("this file is not a quicproquo backup")]
    NotABackup,
    /// Made by a newer version of the app.
    #[error("this backup was made by a newer version of quicproquo: update the app and try again")]
    NewerVersion,
    /// The passphrase does not open it.
    #[error("that passphrase does not open this backup")]
    WrongPassphrase,
    /// It was changed or cut off after it was written.
    #[error("this backup file is damaged or was changed, so it cannot be restored")]
    Damaged,
    /// The passphrase is too short to protect anything.
    #[error("choose a passphrase of at least 8 characters")]
    TooShort,
}

fn cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(Key::from_slice(key))
}

/// The nonce of chunk `index`: the index, then 1 for the last chunk (STREAM).
fn chunk_nonce(index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&u64::from(index).to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// How many chunks hold `len` bytes of contents (with the length prefix), padded.
pub fn padded_chunks(len: usize) -> u32 {
    let n = (len + 8).div_ceil(CHUNK_BYTES).max(1) as u32;
    // Keep the four leading bits of n, round the rest up.
    let bits = 32 - n.leading_zeros();
    let step = if bits > 4 { 1u32 << (bits - 4) } else { 1 };
    n.div_ceil(step) * step
}

/// A backup being sealed, one chunk per [`Sealing::step`] (so a caller can show progress and
/// let its page breathe between chunks).
pub struct Sealing {
    cipher: ChaCha20Poly1305,
    aad: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    chunks: u32,
    next: u32,
    out: Vec<u8>,
}

impl Sealing {
    /// Derives the file key from `passphrase` and a fresh salt, and writes the header.
    pub fn new(contents: &[u8], passphrase: &str) -> Result<Sealing, BackupError> {
        if passphrase.chars().count() < 8 {
            return Err(BackupError::TooShort);
        }
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let key = passphrase::derive(passphrase.as_bytes(), &salt, M_KIB, T, P).map_err(|_| BackupError::Damaged)?;
        let chunks = padded_chunks(contents.len());
        if chunks > MAX_CHUNKS {
            return Err(BackupError::Damaged);
        }
        let mut aad = Vec::with_capacity(HEADER);
        aad.extend_from_slice(MAGIC);
        aad.push(VERSION);
        for v in [M_KIB, T, P] {
            aad.extend_from_slice(&v.to_be_bytes());
        }
        aad.extend_from_slice(&salt);
        aad.extend_from_slice(&chunks.to_be_bytes());
        let cipher = cipher(&key);
        let check = cipher.encrypt(Nonce::from_slice(&[0xff; 12]), Payload { msg: &[], aad: &aad }).expect("in-memory seal");
        let mut out = Vec::with_capacity(HEADER_BYTES + chunks as usize * (CHUNK_BYTES + TAG));
        out.extend_from_slice(&aad);
        out.extend_from_slice(&check);
        let mut plain = Zeroizing::new(Vec::with_capacity(chunks as usize * CHUNK_BYTES));
        plain.extend_from_slice(&(contents.len() as u64).to_be_bytes());
        plain.extend_from_slice(contents);
        plain.resize(chunks as usize * CHUNK_BYTES, 0);
        Ok(Sealing { cipher, aad, plain, chunks, next: 0, out })
    }

    /// Seals the next chunk; returns (chunks done, chunks in all).
    pub fn step(&mut self) -> (u32, u32) {
        if self.next < self.chunks {
            let i = self.next;
            let part = &self.plain[i as usize * CHUNK_BYTES..(i as usize + 1) * CHUNK_BYTES];
            let nonce = chunk_nonce(i, i + 1 == self.chunks);
            let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: part, aad: &self.aad });
            self.out.extend_from_slice(&sealed.expect("in-memory seal"));
            self.next += 1;
        }
        (self.next, self.chunks)
    }

    /// The file, once every chunk is sealed.
    pub fn finish(mut self) -> Vec<u8> {
        while self.step().0 < self.chunks {}
        std::mem::take(&mut self.out)
    }
}

/// A backup being opened, one chunk per [`Opening::step`].
pub struct Opening<'a> {
    file: &'a [u8],
    cipher: ChaCha20Poly1305,
    chunks: u32,
    next: u32,
    plain: Zeroizing<Vec<u8>>,
}

impl<'a> Opening<'a> {
    /// Reads the header and checks the passphrase against it.
    pub fn new(file: &'a [u8], passphrase: &str) -> Result<Opening<'a>, BackupError> {
        if file.len() < MAGIC.len() || &file[..MAGIC.len()] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        if file.len() < HEADER_BYTES {
            return Err(BackupError::Damaged);
        }
        let version = file[MAGIC.len()];
        if version > VERSION {
            return Err(BackupError::NewerVersion);
        }
        if version != VERSION {
            return Err(BackupError::Damaged);
        }
        let be = |i: usize| u32::from_be_bytes(file[i..i + 4].try_into().expect("4 bytes"));
        let at = MAGIC.len() + 1;
        let (m, t, p) = (be(at), be(at + 4), be(at + 8));
        // Parameters below the minimum were not written by this code; far above it, they
        // would only make the browser run out of memory.
        if m < M_KIB || t < T || p < P || m > 1 << 22 || t > 64 || p > 16 {
            return Err(BackupError::Damaged);
        }
        let salt = &file[at + 12..at + 28];
        let chunks = be(at + 28);
        if chunks == 0 || chunks > MAX_CHUNKS || file.len() != HEADER_BYTES + chunks as usize * (CHUNK_BYTES + TAG) {
            return Err(BackupError::Damaged);
        }
        let key = passphrase::derive(passphrase.as_bytes(), salt, m, t, p).map_err(|_| BackupError::Damaged)?;
        let cipher = cipher(&key);
        cipher
            .decrypt(Nonce::from_slice(&[0xff; 12]), Payload { msg: &file[HEADER..HEADER_BYTES], aad: &file[..HEADER] })
            .map_err(|_| BackupError::WrongPassphrase)?;
        let plain = Zeroizing::new(Vec::with_capacity(chunks as usize * CHUNK_BYTES));
        Ok(Opening { file, cipher, chunks, next: 0, plain })
    }

    /// Opens the next chunk; returns (chunks done, chunks in all).
    pub fn step(&mut self) -> Result<(u32, u32), BackupError> {
        if self.next < self.chunks {
            let i = self.next;
            let start = HEADER_BYTES + i as usize * (CHUNK_BYTES + TAG);
            let sealed = &self.file[start..start + CHUNK_BYTES + TAG];
            let nonce = chunk_nonce(i, i + 1 == self.chunks);
            let part = self
                .cipher
                .decrypt(Nonce::from_slice(&nonce), Payload { msg: sealed, aad: &self.file[..HEADER] })
                .map_err(|_| BackupError::Damaged)?;
            self.plain.extend_from_slice(&Zeroizing::new(part));
            self.next += 1;
        }
        Ok((self.next, self.chunks))
    }

    /// The contents, once every chunk is open.
    pub fn finish(mut self) -> Result<Zeroizing<Vec<u8>>, BackupError> {
        while self.step()?.0 < self.chunks {}
        let plain = &self.plain;
        let len = u64::from_be_bytes(plain[..8].try_into().expect("a chunk holds 8 bytes"));
        let len = usize::try_from(len).map_err(|_| BackupError::Damaged)?;
        if len > plain.len() - 8 || plain[8 + len..].iter().any(|b| *b != 0) {
            return Err(BackupError::Damaged);
        }
        Ok(Zeroizing::new(plain[8..8 + len].to_vec()))
    }
}

/// Seals `contents` under `passphrase` in one go.
pub fn seal(contents: &[u8], passphrase: &str) -> Result<Vec<u8>, BackupError> {
    Ok(Sealing::new(contents, passphrase)?.finish())
}

/// Opens a backup with `passphrase` in one go, giving its contents.
pub fn open(file: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    Opening::new(file, passphrase)?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "correct horse battery";

    #[test]
    fn contents_come_back_with_the_passphrase() {
        for len in [0, 1, CHUNK_BYTES - 8, CHUNK_BYTES - 7, 3 * CHUNK_BYTES + 5] {
            let contents: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let file = seal(&contents, PASS).unwrap();
            assert_eq!(file.len(), HEADER_BYTES + padded_chunks(len) as usize * (CHUNK_BYTES + TAG));
            assert_eq!(*open(&file, PASS).unwrap(), contents, "{len} bytes");
        }
    }

    #[test]
    fn chunks_go_one_step_at_a_time() {
        let contents = vec![5u8; 2 * CHUNK_BYTES];
        let mut s = Sealing::new(&contents, PASS).unwrap();
        assert_eq!(s.step(), (1, 3));
        assert_eq!(s.step(), (2, 3));
        assert_eq!(s.step(), (3, 3));
        assert_eq!(s.step(), (3, 3));
        let file = s.finish();
        let mut o = Opening::new(&file, PASS).unwrap();
        assert_eq!(o.step(), Ok((1, 3)));
        assert_eq!(*o.finish().unwrap(), contents);
    }

    #[test]
    fn sizes_are_padded() {
        assert_eq!(padded_chunks(0), 1);
        assert_eq!(padded_chunks(CHUNK_BYTES), 2);
        // Up to 16 chunks, every count; past it only the four leading bits vary: 101 chunks'
        // worth (7 bits) is rounded up to a multiple of 8.
        assert_eq!(padded_chunks(9 * CHUNK_BYTES - 8), 9);
        assert_eq!(padded_chunks(100 * CHUNK_BYTES), 104);
        assert_eq!(padded_chunks(1000 * CHUNK_BYTES), 1024);
        for n in 1..2000 {
            let c = padded_chunks(n * 1000);
            assert!(c as usize * CHUNK_BYTES >= n * 1000 + 8);
            assert!((c as f64) <= ((n * 1000 + 8).div_ceil(CHUNK_BYTES) as f64) * 1.125 + 1.0);
        }
        // Two histories of different lengths in one size class give files of one size.
        let a = seal(&vec![1u8; 20_000], PASS).unwrap();
        let b = seal(&vec![1u8; 60_000], PASS).unwrap();
        assert_eq!(a.len(), b.len());
    }

    #[test]
    fn a_wrong_passphrase_is_told_as_such() {
        let file = seal(b"secret things", PASS).unwrap();
        assert_eq!(open(&file, "correct horse batterz").unwrap_err(), BackupError::WrongPassphrase);
        assert_eq!(seal(b"x", "short").unwrap_err(), BackupError::TooShort);
    }

    #[test]
    fn every_change_to_the_file_is_refused() {
        let contents: Vec<u8> = (0..CHUNK_BYTES * 2).map(|i| i as u8).collect();
        let file = seal(&contents, PASS).unwrap();
        // A flipped bit anywhere in the sealed chunks.
        for at in [HEADER_BYTES, HEADER_BYTES + 1000, HEADER_BYTES + CHUNK_BYTES + TAG + 5, file.len() - 1] {
            let mut bent = file.clone();
            bent[at] ^= 1;
            assert_eq!(open(&bent, PASS).unwrap_err(), BackupError::Damaged, "byte {at}");
        }
        // The header: salt or chunk count changed, parameters lowered.
        let mut salted = file.clone();
        salted[MAGIC.len() + 15] ^= 1;
        assert_eq!(open(&salted, PASS).unwrap_err(), BackupError::WrongPassphrase);
        let mut weaker = file.clone();
        weaker[MAGIC.len() + 1..MAGIC.len() + 5].copy_from_slice(&(M_KIB / 2).to_be_bytes());
        assert_eq!(open(&weaker, PASS).unwrap_err(), BackupError::Damaged);
        // Cut off, a chunk removed, two chunks swapped, a chunk added.
        let sealed = CHUNK_BYTES + TAG;
        assert_eq!(open(&file[..file.len() - 1], PASS).unwrap_err(), BackupError::Damaged);
        let chunks = padded_chunks(contents.len()) as usize;
        let mut fewer = file[..file.len() - sealed].to_vec();
        fewer[HEADER - 4..HEADER].copy_from_slice(&((chunks - 1) as u32).to_be_bytes());
        assert!(matches!(open(&fewer, PASS).unwrap_err(), BackupError::WrongPassphrase | BackupError::Damaged));
        let mut swapped = file.clone();
        let (a, b) = (HEADER_BYTES, HEADER_BYTES + sealed);
        let first = file[a..b].to_vec();
        swapped.copy_within(b..b + sealed, a);
        swapped[b..b + sealed].copy_from_slice(&first);
        assert_eq!(open(&swapped, PASS).unwrap_err(), BackupError::Damaged);
        let mut more = file.clone();
        more.extend_from_slice(&file[HEADER_BYTES..HEADER_BYTES + sealed]);
        assert_eq!(open(&more, PASS).unwrap_err(), BackupError::Damaged);
    }

    #[test]
    fn versions_and_strangers_are_told_apart() {
        let file = seal(b"x", PASS).unwrap();
        let mut newer = file.clone();
        newer[MAGIC.len()] = VERSION + 1;
        assert_eq!(open(&newer, PASS).unwrap_err(), BackupError::NewerVersion);
        let mut older = file.clone();
        older[MAGIC.len()] = 0;
        assert_eq!(open(&older, PASS).unwrap_err(), BackupError::Damaged);
        assert_eq!(open(b"PK\x03\x04 a zip file", PASS).unwrap_err(), BackupError::NotABackup);
        assert_eq!(open(&file[..20], PASS).unwrap_err(), BackupError::Damaged);
    }
}

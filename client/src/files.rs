//! Files: encrypted on the device in chunks, stored on the server as a blob, referenced from
//! an MLS message that carries the key.
//!
//! Every file gets a fresh ChaCha20-Poly1305 key. Chunk `i` of `n` is sealed with nonce
//! `0⁴ ‖ i (u64 BE)` and associated data `"qpq file v1" ‖ n ‖ i`, so a chunk cannot be moved,
//! repeated or cut off without failing to open; the SHA-256 of the whole plaintext is checked
//! at the end. Both directions stream: one chunk is in memory at a time, and a transfer
//! resumes from where the server (upload) or the sink (download) left off.

use std::cell::Cell;
use std::rc::Rc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use futures::future::LocalBoxFuture;
use qpq_core::FileRef;
use qpq_proto::ChannelId;
use sha2::{Digest, Sha256};

use crate::api::Session;
use crate::error::ClientError;

/// Plaintext bytes per chunk.
pub const CHUNK_BYTES: u32 = 256 * 1024;
/// Bytes the AEAD adds to each chunk.
pub const TAG_BYTES: u32 = 16;

const AAD_LABEL: &[u8] = b"qpq file v1";

/// Where an upload reads from (a browser `File`, a file on disk…).
pub trait FileSource {
    /// Total size in bytes.
    fn size(&self) -> u64;
    /// Reads `len` bytes at `offset` (fewer only at the end).
    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>>;
}

/// Where a download writes to. Reading back is needed to resume (the hash covers the whole
/// file).
pub trait FileSink {
    /// Writes `data` at `offset`.
    fn write(&self, offset: u64, data: Vec<u8>) -> LocalBoxFuture<'_, Result<(), String>>;
    /// Reads back `len` bytes at `offset` of what was written.
    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>>;
}

/// A flag that stops a transfer between chunks.
#[derive(Clone, Default, Debug)]
pub struct Cancel(Rc<Cell<bool>>);

impl Cancel {
    /// Asks the transfer to stop.
    pub fn cancel(&self) {
        self.0.set(true)
    }

    /// Whether it was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.get()
    }
}

/// Number of chunks of a file of `size` bytes.
pub fn chunk_count(size: u64, chunk_size: u32) -> u32 {
    if size == 0 {
        0
    } else {
        size.div_ceil(u64::from(chunk_size)) as u32
    }
}

/// Size of the encrypted blob.
pub fn sealed_size(size: u64, chunk_size: u32) -> u64 {
    size + u64::from(chunk_count(size, chunk_size)) * u64::from(TAG_BYTES)
}

fn plain_len(size: u64, chunk_size: u32, index: u32) -> u32 {
    let start = u64::from(index) * u64::from(chunk_size);
    (size - start).min(u64::from(chunk_size)) as u32
}

fn nonce(index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&u64::from(index).to_be_bytes());
    n
}

fn aad(total: u32, index: u32) -> Vec<u8> {
    [AAD_LABEL, &total.to_be_bytes(), &index.to_be_bytes()].concat()
}

/// Seals chunk `index` of `total`.
pub fn seal_chunk(key: &[u8; 32], total: u32, index: u32, plain: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(Nonce::from_slice(&nonce(index)), Payload { msg: plain, aad: &aad(total, index) })
        .expect("sealing in memory cannot fail")
}

/// Opens chunk `index` of `total`; `None` when it was altered, moved or belongs elsewhere.
pub fn open_chunk(key: &[u8; 32], total: u32, index: u32, sealed: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(&nonce(index)), Payload { msg: sealed, aad: &aad(total, index) })
        .ok()
}

fn cancelled() -> ClientError {
    ClientError::Cancelled("the transfer was cancelled".into())
}

/// A size for people: "1.5 MB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Creates the blob an upload of `size` bytes goes into, in `channel`, living `ttl_secs`
/// (0: the server's retention).
pub async fn create_blob(session: &Session, channel: &ChannelId, size: u64, ttl_secs: u32) -> Result<[u8; 16], ClientError> {
    session.create_blob(channel, sealed_size(size, CHUNK_BYTES), CHUNK_BYTES + TAG_BYTES, ttl_secs).await.map_err(|e| {
        match e.remote_code() {
            Some(qpq_proto::ErrorCode::TooLarge) => ClientError::Input(format!(
                "the file is too large for this server ({}); send a smaller one",
                human_size(size)
            )),
            _ => e,
        }
    })
}

/// Uploads `source` into `blob` (created by [`create_blob`]), encrypted under `key`,
/// continuing after the chunks the server already holds. Calls `progress(done, total)` after
/// each chunk. Returns the plaintext's SHA-256.
pub async fn upload(
    session: &Session,
    blob: &[u8; 16],
    source: &dyn FileSource,
    key: &[u8; 32],
    progress: &dyn Fn(u64, u64),
    cancel: &Cancel,
) -> Result<[u8; 32], ClientError> {
    let size = source.size();
    let total = chunk_count(size, CHUNK_BYTES);
    let start = session.blob_chunks_stored(blob).await?;
    let mut hash = Sha256::new();
    for index in 0..total {
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let len = plain_len(size, CHUNK_BYTES, index);
        let plain = source.read(u64::from(index) * u64::from(CHUNK_BYTES), len).await.map_err(ClientError::Input)?;
        if plain.len() != len as usize {
            return Err(ClientError::Input("the file changed while it was being sent".into()));
        }
        hash.update(&plain);
        if index >= start {
            session.put_chunk(blob, index, &seal_chunk(key, total, index, &plain)).await?;
            // Only chunks moved now are reported: a resumed upload's progress never goes back.
            progress(u64::from(index) * u64::from(CHUNK_BYTES) + u64::from(len), size);
        }
    }
    if total == 0 {
        progress(0, 0);
    }
    Ok(hash.finalize().into())
}

/// Downloads `file` into `sink`, starting at chunk `start` (chunks before it are already in
/// the sink and are read back for the hash; progress is reported for the others). Fails if
/// any chunk does not open or the whole does not match its hash. `session` may be `None`
/// when every chunk is already in the sink (then nothing is fetched).
pub async fn download(
    session: Option<&Session>,
    file: &FileRef,
    sink: &dyn FileSink,
    start: u32,
    progress: &dyn Fn(u64, u64),
    cancel: &Cancel,
) -> Result<(), ClientError> {
    if file.chunk_size == 0 {
        return Err(ClientError::Input("the file reference is malformed".into()));
    }
    let total = chunk_count(file.size, file.chunk_size);
    let mut hash = Sha256::new();
    for index in 0..total {
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let len = plain_len(file.size, file.chunk_size, index);
        let offset = u64::from(index) * u64::from(file.chunk_size);
        let plain = if index < start {
            sink.read(offset, len).await.map_err(ClientError::Store)?
        } else {
            let session = session.ok_or_else(|| ClientError::Disconnected("not connected to the server".into()))?;
            let sealed = session.get_chunk(&file.blob, index).await.map_err(|e| match e.remote_code() {
                Some(qpq_proto::ErrorCode::BadChunk) => {
                    ClientError::Input(format!("the file is incomplete on the server (part {} of {total} is missing)", index + 1))
                }
                Some(qpq_proto::ErrorCode::NoSuchBlob) => ClientError::Input("the file is no longer on the server".into()),
                _ => e,
            })?;
            let plain = open_chunk(&file.key, total, index, &sealed).ok_or_else(|| {
                ClientError::Input(format!("part {} of {total} of the file is damaged or was altered", index + 1))
            })?;
            if plain.len() != len as usize {
                return Err(ClientError::Input("the file's parts do not add up to its size".into()));
            }
            sink.write(offset, plain.clone()).await.map_err(ClientError::Store)?;
            plain
        };
        hash.update(&plain);
        if index >= start {
            progress(offset + u64::from(len), file.size);
        }
    }
    let got: [u8; 32] = hash.finalize().into();
    if got != file.sha256 {
        return Err(ClientError::Input("the file does not match its fingerprint: it was altered".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_open_only_in_their_place() {
        let key = [7u8; 32];
        let sealed = seal_chunk(&key, 3, 1, b"middle");
        assert_eq!(open_chunk(&key, 3, 1, &sealed).unwrap(), b"middle");
        assert!(open_chunk(&key, 3, 2, &sealed).is_none(), "moved");
        assert!(open_chunk(&key, 2, 1, &sealed).is_none(), "file cut short");
        assert!(open_chunk(&[8u8; 32], 3, 1, &sealed).is_none(), "other key");
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert!(open_chunk(&key, 3, 1, &bad).is_none(), "altered");
    }

    #[test]
    fn sizes_add_up() {
        assert_eq!(chunk_count(0, 10), 0);
        assert_eq!(chunk_count(10, 10), 1);
        assert_eq!(chunk_count(11, 10), 2);
        assert_eq!(sealed_size(11, 10), 11 + 32);
        assert_eq!(plain_len(11, 10, 1), 1);
    }
}

//! Sending and receiving files as a person does: pick a file, watch it go, get it back
//! whole. The chunk format and the one-pass transfers are in [`crate::files`]; this adds the
//! conversation (the blob lives as long as the conversation's disappearing timer says, the
//! reference goes out as an MLS message) and rides out dropped connections by waiting for the
//! next session and continuing where the server's copy (upload) or the sink (download) ends.

use std::cell::Cell;

use qpq_core::{Content, FileRef, MessageId};
use qpq_proto::ChannelId;
use rand::RngCore;

use crate::files::{self, Cancel, FileSink, FileSource, CHUNK_BYTES};
use crate::{Client, ClientError, Platform, Session, StateStore};

/// How long a transfer waits for the connection to come back before it gives up.
const OFFLINE_PATIENCE_MS: u64 = 10 * 60 * 1000;
/// How often it looks.
const OFFLINE_POLL_MS: u64 = 250;
/// Longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 200;

/// A file name as it travels: no path, no control characters, not empty, not endless.
pub fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        "file".into()
    } else {
        clean.into()
    }
}

/// A media type as it travels: `type/subtype` of token characters, else the generic one.
pub fn clean_mime(mime: &str) -> String {
    let ok = |s: &str| !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    let m = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match m.split_once('/') {
        Some((t, s)) if ok(t) && ok(s) => m,
        _ => "application/octet-stream".into(),
    }
}

impl<S: StateStore, P: Platform> Client<S, P> {
    /// Encrypts `source` under a fresh key, uploads it and sends its reference to `conv`.
    /// `progress(done, total)` follows the upload. A dropped connection pauses the upload
    /// until the next session; `cancel` stops it between chunks.
    pub async fn send_file(
        &self,
        conv: &ChannelId,
        source: &dyn FileSource,
        name: &str,
        mime: &str,
        progress: &dyn Fn(u64, u64),
        cancel: &Cancel,
    ) -> Result<MessageId, ClientError> {
        let ttl = self
            .with_engine(|e| e.conversation(conv).map(|c| (c.active, c.disappear_secs)))
            .ok_or(ClientError::Engine(qpq_core::EngineError::NoSuchConversation))?;
        if !ttl.0 {
            return Err(ClientError::Engine(qpq_core::EngineError::NotActive));
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let size = source.size();
        let mut blob = None;
        let sha256 = loop {
            let session = self.wait_online(cancel).await?;
            let attempt = async {
                let b = match blob {
                    Some(b) => b,
                    None => {
                        let b = files::create_blob(&session, conv, size, ttl.1).await?;
                        blob = Some(b);
                        b
                    }
                };
                files::upload(&session, &b, source, &key, progress, cancel).await
            };
            match attempt.await {
                Ok(h) => break h,
                Err(e) if e.is_transport() => self.platform().sleep(OFFLINE_POLL_MS).await,
                Err(e) => return Err(e),
            }
        };
        let file = FileRef {
            blob: blob.expect("set before the upload succeeded"),
            key,
            sha256,
            size,
            chunk_size: CHUNK_BYTES,
            name: clean_file_name(name),
            mime: clean_mime(mime),
        };
        self.share_file(conv, file).await
    }

    /// Sends a reference to a file that is already on the server (forwarding one, or one
    /// uploaded by other means); receivers fetch and check it like any other.
    pub async fn share_file(&self, conv: &ChannelId, file: FileRef) -> Result<MessageId, ClientError> {
        let now = self.platform().now_ms();
        let id = self.engine_mut().send_file(conv, file, now)?;
        self.step_done().await?;
        Ok(id)
    }

    /// The file a message refers to.
    pub fn file_of(&self, conv: &ChannelId, id: &MessageId) -> Result<FileRef, ClientError> {
        self.with_engine(|e| match e.message_by_id(conv, id).map(|m| &m.content) {
            Some(Content::File { file, .. }) => Ok(file.clone()),
            Some(_) => Err(ClientError::Input("that message has no file".into())),
            None => Err(ClientError::Input("that message is gone (deleted, or it disappeared)".into())),
        })
    }

    /// Downloads the file of message `id` into `sink`, which already holds the first
    /// `stored` bytes (from an earlier, interrupted download). Checks every chunk and the
    /// whole file's hash. A dropped connection pauses it until the next session. When the
    /// sink holds the whole file, it is only checked: nothing is fetched, and no connection
    /// is needed.
    pub async fn download_file(
        &self,
        conv: &ChannelId,
        id: &MessageId,
        sink: &dyn FileSink,
        stored: u64,
        progress: &dyn Fn(u64, u64),
        cancel: &Cancel,
    ) -> Result<(), ClientError> {
        let file = self.file_of(conv, id)?;
        let chunk = u64::from(file.chunk_size.max(1));
        let done = Cell::new(stored.min(file.size));
        let track = |d: u64, t: u64| {
            done.set(d);
            progress(d, t);
        };
        let chunks = files::chunk_count(file.size, file.chunk_size.max(1));
        loop {
            // Whole chunks in the sink are read back, not fetched; so is the last, shorter
            // one once the whole file is there.
            let start = if done.get() >= file.size { chunks } else { (done.get() / chunk) as u32 };
            let session = if start < chunks { Some(self.wait_online(cancel).await?) } else { None };
            match files::download(session.as_ref(), &file, sink, start, &track, cancel).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transport() => self.platform().sleep(OFFLINE_POLL_MS).await,
                Err(e) => return Err(e),
            }
        }
    }

    /// The session, once there is one (the client reconnects by itself).
    async fn wait_online(&self, cancel: &Cancel) -> Result<Session, ClientError> {
        let deadline = self.platform().now_ms() + OFFLINE_PATIENCE_MS;
        loop {
            if cancel.is_cancelled() {
                return Err(ClientError::Cancelled("the transfer was cancelled".into()));
            }
            if let Ok(s) = self.session() {
                return Ok(s);
            }
            if self.platform().now_ms() >= deadline {
                return Err(ClientError::Disconnected(
                    "the transfer stopped: there was no connection for ten minutes".into(),
                ));
            }
            self.platform().sleep(OFFLINE_POLL_MS).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\a\\photo.jpg"), "photo.jpg");
        assert_eq!(clean_file_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(clean_file_name(""), "file");
        assert_eq!(clean_file_name(&"x".repeat(500)).chars().count(), MAX_NAME_CHARS);
        assert_eq!(clean_file_name("report \u{202e}fdp.exe"), "report \u{202e}fdp.exe", "shown as text; not a path");
    }

    #[test]
    fn media_types_are_tokens_or_generic() {
        assert_eq!(clean_mime("image/PNG"), "image/png");
        assert_eq!(clean_mime("text/plain; charset=utf-8"), "text/plain");
        assert_eq!(clean_mime("text/html<script>"), "application/octet-stream");
        assert_eq!(clean_mime(""), "application/octet-stream");
    }
}

//! The history a linked device gets from the device that linked it.
//!
//! The account's device exports its recent history (the last 90 days, at most 10,000
//! entries), seals it like a file under a key made for this hand-over, and uploads it as a
//! blob of one of its conversations before it answers the link request; the answer carries
//! where the blob is and its key. The new device keeps that reference in its engine until
//! the history is in: once it is a member of that conversation it downloads the blob, and puts
//! each conversation's part before what it received since it joined (as each conversation
//! appears). Losing the connection or the page only delays it.

use std::cell::RefCell;

use futures::future::LocalBoxFuture;
use qpq_core::{decode_history, encode_history, ConversationHistory, FileRef};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{Client, ClientEvent};
use crate::api::Session;
use crate::error::ClientError;
use crate::files::{self, Cancel, FileSink, FileSource};
use crate::link::HistoryRef;
use crate::{Platform, StateStore};

/// How far back the hand-over goes.
pub const HISTORY_DAYS: u64 = 90;
/// The most entries it carries.
pub const HISTORY_MAX: usize = 10_000;
/// How long the new device waits for the conversations of the hand-over to appear before it
/// puts in what it can.
const JOIN_WAIT_MS: u64 = 120_000;
/// How long it waits before trying a failed download again.
const RETRY_MS: u64 = 2_000;

struct MemSource(Vec<u8>);

impl FileSource for MemSource {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        let start = (offset as usize).min(self.0.len());
        let end = (start + len as usize).min(self.0.len());
        let part = self.0[start..end].to_vec();
        Box::pin(async move { Ok(part) })
    }
}

#[derive(Default)]
struct MemSink(RefCell<Vec<u8>>);

impl FileSink for MemSink {
    fn write(&self, offset: u64, data: Vec<u8>) -> LocalBoxFuture<'_, Result<(), String>> {
        let mut buf = self.0.borrow_mut();
        let end = offset as usize + data.len();
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[offset as usize..end].copy_from_slice(&data);
        Box::pin(async { Ok(()) })
    }

    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        let buf = self.0.borrow();
        let start = (offset as usize).min(buf.len());
        let end = (start + len as usize).min(buf.len());
        let part = buf[start..end].to_vec();
        Box::pin(async move { Ok(part) })
    }
}

fn file_ref(h: &HistoryRef) -> FileRef {
    FileRef {
        blob: h.blob,
        key: *h.key,
        sha256: h.sha256,
        size: h.size,
        chunk_size: files::CHUNK_BYTES,
        name: String::new(),
        mime: String::new(),
    }
}

impl<S: StateStore, P: Platform> Client<S, P> {
    /// Exports and uploads the recent history for a device being linked; `None` when there is
    /// none. `progress(done, total)` counts bytes.
    pub(super) async fn upload_history(
        &self,
        session: &Session,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Option<HistoryRef>, ClientError> {
        let since = self.inner.platform.now_ms().saturating_sub(HISTORY_DAYS * 24 * 3600 * 1000);
        let parts = self.with_engine(|e| e.export_history(since, HISTORY_MAX));
        let Some(channel) = parts.first().map(|p| p.conv.clone()) else { return Ok(None) };
        let plain = Zeroizing::new(encode_history(parts));
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let blob = files::create_blob(session, &channel, plain.len() as u64, 0).await?;
        let source = MemSource(plain.to_vec());
        let sha256 = files::upload(session, &blob, &source, &key, progress, &Cancel::default()).await?;
        Ok(Some(HistoryRef { channel, blob, size: plain.len() as u64, sha256, key }))
    }

    /// Brings in the history hand-over this device is waiting for, if any (see the module
    /// documentation). Runs until it is in, it cannot be, or the client stops.
    pub(super) async fn handover_loop(self) {
        let pending = self.with_engine(|e| e.pending_handover().map(|b| Zeroizing::new(b.to_vec())));
        let Some(bytes) = pending else { return };
        let Ok(h) = HistoryRef::from_bytes(&bytes) else {
            self.finish_handover(None).await;
            return;
        };
        let parts = loop {
            if self.inner.stopped.get() {
                return;
            }
            let joined = self.with_engine(|e| e.conversation(&h.channel).is_some());
            let session = self.session().ok();
            let (true, Some(session)) = (joined, session) else {
                self.wait_for(RETRY_MS, |e| e.conversation(&h.channel).is_some()).await;
                continue;
            };
            let sink = MemSink::default();
            let me = self.clone();
            let progress = move |done: u64, total: u64| me.emit(ClientEvent::History { done, total: total.max(1) });
            match files::download(Some(&session), &file_ref(&h), &sink, 0, &progress, &Cancel::default()).await {
                Ok(()) => match decode_history(&Zeroizing::new(sink.0.take())) {
                    Ok(parts) => break parts,
                    Err(e) => {
                        self.finish_handover(Some(format!("the history from your other device could not be read: {e}"))).await;
                        return;
                    }
                },
                Err(e) if e.is_transport() || e.retry_after_ms().is_some() => {
                    self.inner.platform.sleep(RETRY_MS).await;
                }
                Err(e) => {
                    self.finish_handover(Some(format!("the history from your other device could not be fetched: {e}"))).await;
                    return;
                }
            }
        };
        self.import_parts(parts).await;
    }

    /// Puts each part in as its conversation appears, waiting a while for those that have not
    /// yet; then forgets the hand-over.
    async fn import_parts(&self, mut parts: Vec<ConversationHistory>) {
        let deadline = self.inner.platform.now_ms() + JOIN_WAIT_MS;
        let mut added = 0;
        loop {
            let (ready, waiting): (Vec<_>, Vec<_>) =
                parts.into_iter().partition(|p| self.with_engine(|e| e.conversation(&p.conv).is_some()));
            parts = waiting;
            if !ready.is_empty() {
                {
                    let mut e = self.engine_mut();
                    for p in ready {
                        added += e.import_history(p);
                    }
                }
                if self.step_done().await.is_err() {
                    return;
                }
            }
            if parts.is_empty() || self.inner.platform.now_ms() >= deadline || self.inner.stopped.get() {
                break;
            }
            let wanted: Vec<_> = parts.iter().map(|p| p.conv.clone()).collect();
            self.wait_for(RETRY_MS, |e| wanted.iter().any(|c| e.conversation(c).is_some())).await;
        }
        if self.inner.stopped.get() {
            return;
        }
        let words = match added {
            0 => None,
            1 => Some("1 earlier message from your other device is here".to_string()),
            n => Some(format!("{n} earlier messages from your other device are here")),
        };
        self.finish_handover(words).await;
    }

    async fn finish_handover(&self, notice: Option<String>) {
        self.engine_mut().set_pending_handover(None);
        if self.step_done().await.is_ok() {
            if let Some(n) = notice {
                self.emit(ClientEvent::Notice(n));
            }
        }
    }
}

//! Files in the JavaScript API: `sendFile` reads a `Blob`/`File` slice by slice, `downloadFile`
//! writes into a sink the page provides (the UI keeps downloads in IndexedDB, so a reload
//! resumes where it stopped). Both report progress, stop on an `AbortSignal`, and ride out a
//! dropped connection by waiting for the next one and continuing.
//!
//! What the sink receives is sealed: each chunk's plaintext encrypted under this browser's
//! download key (`store::Sealer`), bound to its conversation, message and offset, so files
//! are encrypted at rest like the rest of the account and a chunk moved to another place
//! does not open. `openDownload` gives the page one chunk's plaintext back when it assembles
//! the file to show or save.

use std::rc::Rc;

use futures::future::{FutureExt, LocalBoxFuture};
use qpq_client::files::{Cancel, FileSink, FileSource};
use qpq_client::ClientError;
use qpq_core::MessageId;
use qpq_proto::ChannelId;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{channel, QpqClient};
use crate::error::{client_error, js_error};
use crate::store::Sealer;

#[wasm_bindgen(typescript_custom_section)]
const TS_FILES: &'static str = r#"
/** Options of `sendFile` and `downloadFile`. */
export interface TransferOptions {
  /** Called after every chunk with the bytes done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Aborting it stops the transfer between chunks (the promise rejects with code "cancelled"). */
  signal?: AbortSignal;
}
/**
 * Where `downloadFile` keeps the file, chunk by chunk in order: `write` gets the chunk of
 * `length` plaintext bytes at `offset`, sealed (give it back to `openDownload` to read it);
 * `read` returns the sealed chunk written at `offset`; `stored()` says how many plaintext bytes
 * from the start are there without a gap, so a download resumes after a reload.
 */
export interface FileSink {
  write(offset: number, length: number, sealed: Uint8Array): Promise<void>;
  read(offset: number): Promise<Uint8Array>;
  stored(): Promise<number>;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// A `Blob` (or `File`).
    #[wasm_bindgen(js_name = Blob)]
    pub type JsBlob;
    #[wasm_bindgen(method, getter)]
    fn size(this: &JsBlob) -> f64;
    #[wasm_bindgen(method)]
    fn slice(this: &JsBlob, start: f64, end: f64) -> JsBlob;
    #[wasm_bindgen(method, js_name = arrayBuffer)]
    fn array_buffer(this: &JsBlob) -> js_sys::Promise;
    #[wasm_bindgen(method, getter)]
    fn name(this: &JsBlob) -> Option<String>;
    #[wasm_bindgen(method, getter, js_name = type)]
    fn mime(this: &JsBlob) -> String;

    /// An `AbortSignal`.
    #[wasm_bindgen(js_name = AbortSignal)]
    pub type JsAbortSignal;
    #[wasm_bindgen(method, getter)]
    fn aborted(this: &JsAbortSignal) -> bool;

    /// The page's [`FileSink`] object.
    #[wasm_bindgen(js_name = FileSink)]
    pub type JsSink;
    #[wasm_bindgen(method, catch)]
    fn write(this: &JsSink, offset: f64, length: f64, sealed: js_sys::Uint8Array) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn read(this: &JsSink, offset: f64) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn stored(this: &JsSink) -> Result<js_sys::Promise, JsValue>;
}

fn js_text(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
}

async fn promise(p: Result<js_sys::Promise, JsValue>) -> Result<JsValue, String> {
    JsFuture::from(p.map_err(|e| js_text(&e))?).await.map_err(|e| js_text(&e))
}

struct BlobSource(JsBlob);

impl FileSource for BlobSource {
    fn size(&self) -> u64 {
        self.0.size() as u64
    }

    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        let part = self.0.slice(offset as f64, (offset + u64::from(len)) as f64);
        async move {
            let buf = promise(Ok(part.array_buffer()))
                .await
                .map_err(|e| format!("the file could not be read ({e}); was it moved or deleted?"))?;
            Ok(js_sys::Uint8Array::new(&buf).to_vec())
        }
        .boxed_local()
    }
}

/// Why a chunk kept by the page does not open (damaged, altered, or moved from elsewhere);
/// the page gets it with code `damaged_download` and starts that download over.
const DAMAGED: &str = "the copy of this file kept in this browser is damaged";

/// Where a downloaded chunk belongs: what its seal is bound to.
fn chunk_place(conversation: &ChannelId, message: &MessageId, offset: u64) -> Vec<u8> {
    format!("qpq download/{}/{}/{offset}", conversation.to_hex(), message.to_hex()).into_bytes()
}

/// The page's sink, seen through the seal: the client writes and reads plaintext, the page
/// stores and returns sealed chunks.
struct SinkAdapter {
    sink: JsSink,
    sealer: Sealer,
    conversation: ChannelId,
    message: MessageId,
}

impl FileSink for SinkAdapter {
    fn write(&self, offset: u64, data: Vec<u8>) -> LocalBoxFuture<'_, Result<(), String>> {
        let sealed = self.sealer.seal(&chunk_place(&self.conversation, &self.message, offset), &data);
        let p = self.sink.write(offset as f64, data.len() as f64, js_sys::Uint8Array::from(sealed.as_slice()));
        async move { promise(p).await.map(|_| ()) }.boxed_local()
    }

    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        let p = self.sink.read(offset as f64);
        async move {
            let v = promise(p).await?;
            let sealed = v.dyn_into::<js_sys::Uint8Array>().map_err(|_| "the download store returned no bytes".to_string())?;
            let mut plain = self
                .sealer
                .open(&chunk_place(&self.conversation, &self.message, offset), &sealed.to_vec())
                .map_err(|_| DAMAGED.to_string())?;
            if plain.len() < len as usize {
                return Err(DAMAGED.into());
            }
            plain.truncate(len as usize);
            Ok(plain)
        }
        .boxed_local()
    }
}

/// Reads `onProgress` and `signal` from the options object.
fn transfer_options(options: &JsValue) -> (Option<js_sys::Function>, Option<JsAbortSignal>) {
    if options.is_undefined() || options.is_null() {
        return (None, None);
    }
    let get = |k: &str| js_sys::Reflect::get(options, &JsValue::from_str(k)).ok().filter(|v| !v.is_undefined() && !v.is_null());
    (get("onProgress").and_then(|f| f.dyn_into().ok()), get("signal").map(JsCast::unchecked_into))
}

/// A [`Cancel`] that follows the signal: checked between chunks.
fn cancel_for(signal: Option<JsAbortSignal>) -> (Cancel, impl Fn() -> bool) {
    let cancel = Cancel::default();
    let c = cancel.clone();
    let check = move || {
        if signal.as_ref().is_some_and(|s| s.aborted()) {
            c.cancel();
        }
        c.is_cancelled()
    };
    (cancel, check)
}

fn progress_fn(f: Option<js_sys::Function>, check: Rc<dyn Fn() -> bool>) -> impl Fn(u64, u64) {
    move |done, total| {
        check();
        if let Some(f) = &f {
            let _ = f.call2(&JsValue::NULL, &(done as f64).into(), &(total as f64).into());
        }
    }
}

#[wasm_bindgen(js_class = QpqClient)]
impl QpqClient {
    /// Encrypts `file` with a fresh key, uploads it chunk by chunk and sends its reference in
    /// the conversation; resolves to the message id. Survives a dropped connection (it
    /// continues where the server's copy ends).
    #[wasm_bindgen(js_name = sendFile)]
    pub async fn send_file(
        &self,
        conversation: String,
        file: JsBlob,
        #[wasm_bindgen(unchecked_param_type = "TransferOptions | undefined")] options: JsValue,
    ) -> Result<String, JsValue> {
        let conv = channel(&conversation)?;
        let (on_progress, signal) = transfer_options(&options);
        let (cancel, check) = cancel_for(signal);
        let check: Rc<dyn Fn() -> bool> = Rc::new(check);
        check();
        let name = file.name().unwrap_or_else(|| "file".into());
        let mime = file.mime();
        let source = BlobSource(file);
        let progress = progress_fn(on_progress, check);
        let id = self
            .client
            .send_file(&conv, &source, &name, &mime, &progress, &cancel)
            .await
            .map_err(client_error)?;
        Ok(id.to_hex())
    }

    /// Whether message `message` of `conversation` is a file this device can still fetch
    /// (false once it was deleted for everyone or disappeared, or if it never existed): the UI
    /// forgets downloads of files that are gone.
    #[wasm_bindgen(js_name = hasFile)]
    pub fn has_file(&self, conversation: &str, message: &str) -> bool {
        match (qpq_proto::ChannelId::from_hex(conversation), MessageId::from_hex(message)) {
            (Ok(conv), Some(id)) => self.client.file_of(&conv, &id).is_ok(),
            _ => false,
        }
    }

    /// Downloads the file of message `message` into `sink`, continuing after what `sink`
    /// already holds; checks every chunk and the whole file's hash. Resolves when the file is
    /// complete and verified.
    #[wasm_bindgen(js_name = downloadFile)]
    pub async fn download_file(
        &self,
        conversation: String,
        message: String,
        sink: JsSink,
        #[wasm_bindgen(unchecked_param_type = "TransferOptions | undefined")] options: JsValue,
    ) -> Result<(), JsValue> {
        let conv = channel(&conversation)?;
        let id = MessageId::from_hex(&message).ok_or_else(|| js_error("no_such_message", "no such message"))?;
        let (on_progress, signal) = transfer_options(&options);
        let (cancel, check) = cancel_for(signal);
        let check: Rc<dyn Fn() -> bool> = Rc::new(check);
        check();
        let stored = promise(sink.stored())
            .await
            .map_err(|e| js_error("storage", &format!("the download store failed: {e}")))?
            .as_f64()
            .unwrap_or(0.0) as u64;
        let progress = progress_fn(on_progress, check);
        let sink = SinkAdapter { sink, sealer: self.downloads.clone(), conversation: conv.clone(), message: id };
        self.client.download_file(&conv, &id, &sink, stored, &progress, &cancel).await.map_err(|e| match e {
            ClientError::Store(m) if m == DAMAGED => js_error("damaged_download", DAMAGED),
            e => client_error(e),
        })
    }

    /// The plaintext of a chunk that `downloadFile` gave the sink: `sealed`, written at
    /// `offset` for message `message` of `conversation`. Fails with code `damaged_download`
    /// when it was altered, damaged or moved.
    #[wasm_bindgen(js_name = openDownload)]
    pub fn open_download(
        &self,
        conversation: &str,
        message: &str,
        offset: f64,
        sealed: &[u8],
    ) -> Result<js_sys::Uint8Array, JsValue> {
        let conv = channel(conversation)?;
        let id = MessageId::from_hex(message).ok_or_else(|| js_error("no_such_message", "no such message"))?;
        // A JavaScript number that is a whole, safe integer (Number.MAX_SAFE_INTEGER).
        if !(offset >= 0.0 && offset.fract() == 0.0 && offset <= 9_007_199_254_740_991.0) {
            return Err(js_error("input", "the offset must be a whole number of bytes"));
        }
        let plain = self
            .downloads
            .open(&chunk_place(&conv, &id, offset as u64), sealed)
            .map_err(|_| js_error("damaged_download", DAMAGED))?;
        Ok(js_sys::Uint8Array::from(plain.as_slice()))
    }
}

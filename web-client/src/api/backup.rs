//! Backup and restore in the JavaScript API: `backup` on a signed-in device gives the file's
//! bytes; `QpqClient.restore` in a fresh browser makes it a device of that account again.

use qpq_client::{BackupProgress, Client};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{options, to_js, QpqClient};
use crate::error::{client_error, js_error};
use crate::platform::WebPlatform;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Where a backup or a restore is. */
export type BackupProgressView =
  /** The passphrase is being stretched (Argon2id, a moment). */
  | { step: "deriving" }
  /** Chunks of the file sealed or opened so far. */
  | { step: "chunks"; done: number; total: number }
  /** (Restore) the server registers this browser as the account's device. */
  | { step: "registering" }
  /** (Restore) the settings the backed-up page passed to `backup`. */
  | { step: "settings"; settings: string }
  /** (Restore) what came back: conversations and history entries, which appear as the
   * conversations' other members add this device. */
  | { step: "restored"; conversations: number; messages: number };
"#;

#[derive(Serialize)]
#[serde(rename_all = "camelCase", tag = "step")]
enum ProgressView {
    Deriving,
    Chunks { done: u32, total: u32 },
    Registering,
    Settings { settings: String },
    Restored { conversations: usize, messages: usize },
}

fn call(f: &Option<js_sys::Function>, view: ProgressView) {
    if let Some(f) = f {
        let _ = f.call1(&JsValue::NULL, &to_js(&view));
    }
}

fn progress_fn(f: Option<js_sys::Function>) -> impl Fn(BackupProgress) {
    move |p| {
        let view = match p {
            BackupProgress::Deriving => ProgressView::Deriving,
            BackupProgress::Chunks { done, total } => ProgressView::Chunks { done, total },
            BackupProgress::Registering => ProgressView::Registering,
        };
        call(&f, view);
    }
}

#[wasm_bindgen(js_class = QpqClient)]
impl QpqClient {
    /// Makes this browser the account's device again from a backup file's bytes, opened with
    /// `passphrase`: the account's other devices are signed out, and the other members of its
    /// conversations add this one (its history appears conversation by conversation). Nothing
    /// is stored unless the server registered it. A wrong passphrase, a damaged file or an
    /// account that no longer exists rejects with words to show. Call `start()` next.
    pub async fn restore(
        file: js_sys::Uint8Array,
        passphrase: String,
        name: String,
        #[wasm_bindgen(unchecked_param_type = "QpqOptions | undefined")] opts: JsValue,
        #[wasm_bindgen(unchecked_param_type = "((progress: BackupProgressView) => void) | undefined")]
        on_progress: Option<js_sys::Function>,
    ) -> Result<QpqClient, JsValue> {
        let o = options(opts)?;
        let (connector, store, downloads) = super::fresh_account(&o).await?;
        let bytes = file.to_vec();
        let restored =
            Client::restore(&*connector, store, WebPlatform, &bytes, &passphrase, &name, progress_fn(on_progress.clone()))
                .await
                .map_err(client_error)?;
        if !restored.settings.is_empty() {
            call(&on_progress, ProgressView::Settings { settings: restored.settings });
        }
        call(&on_progress, ProgressView::Restored { conversations: restored.conversations, messages: restored.messages });
        Ok(QpqClient { client: restored.client, connector, downloads })
    }

    /// Everything of this account on this device — identity, the people it knows, every
    /// conversation's history and `settings` (a string of the page's, at most 64 KiB, given
    /// back by `restore`) — as the bytes of a backup file sealed under `passphrase` (at least
    /// 8 characters; Argon2id and ChaCha20-Poly1305). Keep the file and the passphrase apart.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array")]
    pub async fn backup(
        &self,
        passphrase: String,
        settings: String,
        #[wasm_bindgen(unchecked_param_type = "((progress: BackupProgressView) => void) | undefined")]
        on_progress: Option<js_sys::Function>,
    ) -> Result<js_sys::Uint8Array, JsValue> {
        if settings.len() > 64 << 10 {
            return Err(js_error("input", "the settings to back up are larger than 64 KiB"));
        }
        let file = self.client.backup(&passphrase, &settings, progress_fn(on_progress)).await.map_err(client_error)?;
        Ok(js_sys::Uint8Array::from(file.as_slice()))
    }
}

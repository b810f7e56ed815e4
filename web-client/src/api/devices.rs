//! The account's devices in the JavaScript API: listing and removing them, and linking a new
//! one — `openLink` and `serveLink` on a signed-in device, `QpqClient.link` on the new one.

use qpq_client::link::LinkCode;
use qpq_client::{Client, LinkProgress};
use qpq_proto::DeviceId;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{options, to_js, QpqClient};
use crate::error::{client_error, js_error};
use crate::platform::WebPlatform;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A device of this account, as the server lists it. */
export interface DeviceView {
  /** 32 hex digits. */
  deviceId: string;
  /** What it calls itself ("Chromium on Linux"), when it said. */
  name?: string | null;
  /** When it was added (ms since the Unix epoch). */
  addedAt: number;
  /** When it last connected (ms since the Unix epoch; 0 before the first time). */
  lastLogin: number;
  /** The device this is. */
  current: boolean;
}
/** A link code to show on this device, and when it stops working (ms since the Unix epoch). */
export interface LinkOffer {
  code: string;
  expiresAt: number;
}
/** A QR code: `size` × `size` modules, row by row, "1" dark. */
export interface QrView {
  size: number;
  modules: string;
}
/** Where a hand-over is. */
export type LinkProgressView =
  | { step: "waiting" }
  | { step: "registering"; name: string }
  /** The recent history is being sent (bytes). */
  | { step: "history"; done: number; total: number }
  /** On the new device: the settings the other device's page passed to `serveLink`. */
  | { step: "settings"; settings: string }
  | { step: "joining"; done: number; total: number };
/** A device `serveLink` linked. */
export interface LinkedDeviceView {
  deviceId: string;
  name: string;
  /** Conversations it was added to. */
  conversations: number;
}
"#;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceView {
    device_id: String,
    name: Option<String>,
    added_at: u64,
    last_login: u64,
    current: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase", tag = "step")]
enum ProgressView {
    Waiting,
    Registering { name: String },
    History { done: u64, total: u64 },
    Settings { settings: String },
    Joining { done: usize, total: usize },
}

fn progress_fn(f: Option<js_sys::Function>) -> impl Fn(LinkProgress) {
    move |p| {
        let view = match p {
            LinkProgress::Waiting => ProgressView::Waiting,
            LinkProgress::Registering(name) => ProgressView::Registering { name },
            LinkProgress::History { done, total } => ProgressView::History { done, total },
            LinkProgress::Settings(settings) => ProgressView::Settings { settings },
            LinkProgress::Joining { done, total } => ProgressView::Joining { done, total },
        };
        if let Some(f) = &f {
            let _ = f.call1(&JsValue::NULL, &to_js(&view));
        }
    }
}

/// The QR code of `text` (a link to the app with a link code, for a phone's camera), or size 0
/// when it does not fit.
#[wasm_bindgen(js_name = qrCode, unchecked_return_type = "QrView")]
pub fn qr_code(text: &str) -> JsValue {
    let (size, modules) = crate::views::qr_modules(text.as_bytes());
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &"size".into(), &size.into());
    let _ = js_sys::Reflect::set(&o, &"modules".into(), &modules.into());
    o.into()
}

fn link_code(code: &str) -> Result<LinkCode, JsValue> {
    LinkCode::parse(code).map_err(client_error)
}

#[wasm_bindgen(js_class = QpqClient)]
impl QpqClient {
    /// Makes this browser a new device of the account whose other device shows `code`
    /// (**Link a device** there). `name` says what this device is ("Chromium on Linux").
    /// Resolves once that device answered; nothing is stored before, so a wrong, expired or
    /// used code (code `no_such_link`) leaves this browser as it was. Call `start()` next: the
    /// other device then adds this one to every conversation.
    pub async fn link(
        code: String,
        name: String,
        #[wasm_bindgen(unchecked_param_type = "QpqOptions | undefined")] opts: JsValue,
        #[wasm_bindgen(unchecked_param_type = "((progress: LinkProgressView) => void) | undefined")] on_progress: Option<
            js_sys::Function,
        >,
    ) -> Result<QpqClient, JsValue> {
        let o = options(opts)?;
        let (connector, store, downloads) = super::fresh_account(&o).await?;
        let client = Client::link(&*connector, store, WebPlatform, &code, &name, progress_fn(on_progress))
            .await
            .map_err(client_error)?;
        Ok(QpqClient { client, connector, downloads })
    }

    /// Opens a link code for a new device: show `code` there. Serve it with `serveLink`.
    /// Needs a connection.
    #[wasm_bindgen(js_name = openLink, unchecked_return_type = "LinkOffer")]
    pub async fn open_link(&self) -> Result<JsValue, JsValue> {
        let (code, expires_at) = self.client.open_link().await.map_err(client_error)?;
        let o = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&o, &"code".into(), &code.text().into());
        let _ = js_sys::Reflect::set(&o, &"expiresAt".into(), &(expires_at as f64).into());
        Ok(o.into())
    }

    /// Waits for a new device to type `code`, registers it and adds it to every conversation.
    /// `settings` (a string, at most 16 KiB) reaches the new device's `link` as its `settings`
    /// step. Rejects when the code expires or is cancelled, or the account has five devices
    /// already (code `too_many_devices`; the new device is told the same sentence).
    #[wasm_bindgen(js_name = serveLink, unchecked_return_type = "LinkedDeviceView")]
    pub async fn serve_link(
        &self,
        code: String,
        #[wasm_bindgen(unchecked_param_type = "((progress: LinkProgressView) => void) | undefined")] on_progress: Option<
            js_sys::Function,
        >,
        settings: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let code = link_code(&code)?;
        let settings = settings.unwrap_or_default();
        let linked = self.client.serve_link(&code, &settings, progress_fn(on_progress)).await.map_err(client_error)?;
        let o = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&o, &"deviceId".into(), &linked.device.to_hex().into());
        let _ = js_sys::Reflect::set(&o, &"name".into(), &linked.name.into());
        let _ = js_sys::Reflect::set(&o, &"conversations".into(), &(linked.conversations as u32).into());
        Ok(o.into())
    }

    /// Closes a link code early; a `serveLink` waiting on it rejects.
    #[wasm_bindgen(js_name = cancelLink)]
    pub async fn cancel_link(&self, code: String) -> Result<(), JsValue> {
        self.client.cancel_link(&link_code(&code)?).await.map_err(client_error)
    }

    /// This account's devices, oldest first. Needs a connection.
    #[wasm_bindgen(unchecked_return_type = "DeviceView[]")]
    pub async fn devices(&self) -> Result<JsValue, JsValue> {
        let devices = self.client.own_devices().await.map_err(client_error)?;
        let me = self.client.with_engine(|e| e.device_id());
        let views: Vec<DeviceView> = devices
            .into_iter()
            .map(|d| DeviceView {
                device_id: d.record.device_id.to_hex(),
                name: d.name,
                added_at: d.record.created_at,
                last_login: d.last_login,
                current: d.record.device_id == me,
            })
            .collect();
        Ok(to_js(&views))
    }

    /// Signs this browser out: the device is removed from the account, then everything of
    /// the account in this browser is deleted. Refused (code `input`) on the account's only
    /// device. Needs a connection.
    #[wasm_bindgen(js_name = signOut)]
    pub async fn sign_out(&self) -> Result<(), JsValue> {
        self.client.sign_out().await.map_err(client_error)?;
        self.client.store().clear().await.map_err(|e| js_error("storage", &e))
    }

    /// Removes another device from this account (its sessions end, and it is taken out of
    /// every conversation). Needs a connection.
    #[wasm_bindgen(js_name = revokeDevice)]
    pub async fn revoke_device(&self, device_id: String) -> Result<(), JsValue> {
        let bytes = hex::decode(device_id.trim()).map_err(|_| js_error("input", "that is not a device id"))?;
        let device = DeviceId::from_slice(&bytes).map_err(|_| js_error("input", "that is not a device id"))?;
        self.client.revoke_device(&device).await.map(|_| ()).map_err(client_error)
    }
}

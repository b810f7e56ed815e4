//! Web Push in the JavaScript API: the page subscribes with the browser's `PushManager`
//! (using `vapidPublicKey()` as the `applicationServerKey`) and hands the subscription to
//! the server with `setPushSubscription`; the server then wakes this device's service
//! worker when messages wait and no session of it is connected. The push itself carries no
//! message content: the service worker opens the account and fetches them.

use wasm_bindgen::prelude::*;

use super::QpqClient;
use crate::base64url;
use crate::error::{client_error, js_error};

/// Reads a key of the subscription, base64url-encoded.
fn key(field: &str, text: &str) -> Result<Vec<u8>, JsValue> {
    base64url::decode(text).ok_or_else(|| js_error("input", &format!("the push subscription's {field} is not base64url")))
}

#[wasm_bindgen(js_class = QpqClient)]
impl QpqClient {
    /// The server's VAPID public key, base64url: `PushManager.subscribe`'s
    /// `applicationServerKey`. Needs a connection.
    #[wasm_bindgen(js_name = vapidPublicKey)]
    pub async fn vapid_public_key(&self) -> Result<String, JsValue> {
        let session = self.client.session().map_err(client_error)?;
        let key = session.vapid_public_key().await.map_err(client_error)?;
        Ok(base64url::encode(&key))
    }

    /// Registers (or refreshes) this device's push subscription: `endpoint`, and the
    /// `p256dh` and `auth` keys as `PushSubscription.toJSON().keys` gives them (base64url).
    /// Needs a connection.
    #[wasm_bindgen(js_name = setPushSubscription)]
    pub async fn set_push_subscription(&self, endpoint: String, p256dh: String, auth: String) -> Result<(), JsValue> {
        let p256dh = key("p256dh key", &p256dh)?;
        let auth = key("auth secret", &auth)?;
        let session = self.client.session().map_err(client_error)?;
        session.set_push_subscription(&endpoint, &p256dh, &auth).await.map_err(client_error)
    }

    /// Stops push for this device. Needs a connection.
    #[wasm_bindgen(js_name = removePushSubscription)]
    pub async fn remove_push_subscription(&self) -> Result<(), JsValue> {
        let session = self.client.session().map_err(client_error)?;
        session.remove_push_subscription().await.map_err(client_error)
    }
}

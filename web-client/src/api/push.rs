//! Web Push in the JavaScript API: the page subscribes with the browser's `PushManager`
//! (using `vapidPublicKey()` as the `applicationServerKey`) and hands the subscription to
//! the server with `setPushSubscription`; the server then wakes this device's service
//! worker when messages wait and no session of it is connected. The push itself carries no
//! message content: the service worker opens the account and fetches them.

use wasm_bindgen::prelude::*;

use super::QpqClient;
use crate::error::{client_error, js_error};

/// Base64url (RFC 4648 §5, padding optional), as `PushSubscription.toJSON()` gives keys.
fn base64url(field: &str, text: &str) -> Result<Vec<u8>, JsValue> {
    let bad = || js_error("input", &format!("the push subscription's {field} is not base64url"));
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return Err(bad()),
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Ok(out)
}

fn base64url_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[wasm_bindgen(js_class = QpqClient)]
impl QpqClient {
    /// The server's VAPID public key, base64url: `PushManager.subscribe`'s
    /// `applicationServerKey`. Needs a connection.
    #[wasm_bindgen(js_name = vapidPublicKey)]
    pub async fn vapid_public_key(&self) -> Result<String, JsValue> {
        let session = self.client.session().map_err(client_error)?;
        let key = session.vapid_public_key().await.map_err(client_error)?;
        Ok(base64url_encode(&key))
    }

    /// Registers (or refreshes) this device's push subscription: `endpoint`, and the
    /// `p256dh` and `auth` keys as `PushSubscription.toJSON().keys` gives them (base64url).
    /// Needs a connection.
    #[wasm_bindgen(js_name = setPushSubscription)]
    pub async fn set_push_subscription(&self, endpoint: String, p256dh: String, auth: String) -> Result<(), JsValue> {
        let p256dh = base64url("p256dh key", &p256dh)?;
        let auth = base64url("auth secret", &auth)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for len in 0..70u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37).wrapping_add(len)).collect();
            let text = base64url_encode(&bytes);
            assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'));
            assert_eq!(base64url("k", &text).ok(), Some(bytes));
        }
        assert_eq!(base64url("k", "BTBZMqHH6r4Tts7J_aSIgg").ok().map(|v| v.len()), Some(16));
    }
}

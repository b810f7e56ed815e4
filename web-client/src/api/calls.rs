//! Calls in the JavaScript API. The page runs WebRTC (`RTCPeerConnection`); the engine carries
//! its signals: `sendCallSignal` sends an offer, answer, candidates, hang-up, decline or busy
//! inside the conversation's MLS group, and every signal from another member's device (or
//! another device of this account) arrives as a `{ type: "call" }` event. `iceServers` asks the
//! node for STUN/TURN servers with short-lived TURN credentials.

use wasm_bindgen::prelude::*;

use super::{channel, to_js, QpqClient};
use crate::error::{client_error, js_error};
use crate::views;

#[wasm_bindgen(js_class = QpqClient)]
impl QpqClient {
    /// This device's id (hex): compare it with a signal's `toDevice`.
    #[wasm_bindgen(js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.client.with_engine(|e| hex::encode(e.device_id().0))
    }

    /// The ICE servers for `RTCConfiguration.iceServers`, from the node, and when the TURN
    /// credentials among them expire (ms since the Unix epoch; 0 when none). Needs a connection.
    #[wasm_bindgen(js_name = iceServers, unchecked_return_type = "IceServersView")]
    pub async fn ice_servers(&self) -> Result<JsValue, JsValue> {
        let session = self.client.session().map_err(client_error)?;
        let (servers, expires_at) = session.ice_servers().await.map_err(client_error)?;
        let servers: Vec<views::IceServerView> = servers
            .into_iter()
            .map(|s| views::IceServerView { urls: s.urls, username: s.username, credential: s.credential })
            .collect();
        Ok(to_js(&views::IceServersView { ice_servers: servers, expires_at: expires_at.saturating_mul(1000) }))
    }

    /// Sends a call signal to a conversation's members. An offer or answer's DTLS fingerprint is
    /// read from its SDP and travels with it. Needs a connection (code `offline` otherwise).
    #[wasm_bindgen(js_name = sendCallSignal)]
    pub async fn send_call_signal(
        &self,
        conversation: String,
        #[wasm_bindgen(unchecked_param_type = "CallSignal")] signal: JsValue,
    ) -> Result<(), JsValue> {
        let v: views::CallSignalView =
            serde_wasm_bindgen::from_value(signal).map_err(|e| js_error("input", &format!("bad call signal: {e}")))?;
        let signal = views::call_signal_from_view(v).map_err(|e| js_error("input", &e))?;
        self.client.send_call_signal(&channel(&conversation)?, signal).await.map_err(client_error)
    }

    /// An incoming call rang out here unanswered: its entry shows a missed call.
    #[wasm_bindgen(js_name = callRangOut)]
    pub async fn call_rang_out(&self, conversation: String, call: String) -> Result<(), JsValue> {
        let call = qpq_core::call::CallId::from_hex(&call).ok_or_else(|| js_error("input", "a call id is 32 hex digits"))?;
        self.client.call_rang_out(&channel(&conversation)?, call).await.map_err(client_error)
    }
}

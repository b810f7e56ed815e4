//! The JavaScript API: one `QpqClient` per browser profile and origin.

use std::rc::Rc;

use qpq_client::{Client, Connector};
use qpq_proto::ChannelId;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::error::{client_error, js_error};
use crate::platform::WebPlatform;
use crate::store::{IdbStore, Sealer};
use crate::transport::{AutoConnector, TransportMode, WtEndpoint, WT_TIMEOUT_MS};
use crate::views;

mod backup;
mod calls;
mod devices;
mod files;
mod people;
mod profiles;
mod push;

type WebClient = Client<IdbStore, WebPlatform>;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A conversation in the list. */
export interface ConversationView {
  id: string;
  kind: "direct" | "group";
  /** A group's name, or the other people by their verified display names (or addresses). */
  title: string;
  members: string[];
  /** Whether the group has roles (one made before roles has none: everyone manages it). */
  roles: boolean;
  /** Its admins, sorted; empty without roles. */
  admins: string[];
  /** Whether you may add and remove members, change its settings and roles. */
  isAdmin: boolean;
  unread: number;
  lastActivity: number;
  active: boolean;
  createdAt: number;
  createdBy: string;
  lastMessage?: MessageView | null;
  /** Disappearing-message timer in seconds, 0 when off. */
  disappearSecs: number;
  /** Members whose safety number you verified. */
  verifiedMembers: string[];
  /** Members whose safety number changed after you verified it: nothing is sent here until you verify the new one. */
  changedMembers: string[];
  /** A message request: someone who is not a contact started it; nothing (no receipt, no typing) goes back until it is accepted (`acceptRequest`, or writing in it). */
  request: boolean;
  /** Who added you ("" for a conversation you created). */
  invitedBy: string;
}
/** A person's profile as this device holds it. `name` and `status` are text only. */
export interface ProfileView {
  user: string;
  /** The display name ("" when none or not verified). */
  name: string;
  status: string;
  /** A picture is set: read it with `profilePicture`. */
  picture: boolean;
  /** When its owner last changed it (ms); 0 without a verified profile. */
  updatedAt: number;
  /** A profile signed by the person's identity key is held. */
  verified: boolean;
  /** A profile whose signature did not verify arrived after the last verified one; it was not used. */
  forged: boolean;
}
/** One contact. */
export interface ContactView {
  user: string;
  /** When it became a contact (ms since the Unix epoch). */
  addedAt: number;
}
/** The safety number with a contact: the same 60 digits on both sides. */
export interface SafetyNumberView {
  user: string;
  /** Twelve groups of five digits. */
  digits: string;
  verification: "unverified" | "verified" | "changed";
  /** The QR code of the digits: qrSize × qrSize modules, row by row, "1" dark. */
  qrSize: number;
  qrModules: string;
}
/** One reaction on a message: the emoji and who gave it. */
export interface ReactionView {
  emoji: string;
  users: string[];
  mine: boolean;
}
/** The message a reply quotes; `sender` is absent when it is gone. */
export interface QuoteView {
  id: string;
  sender?: string | null;
  text: string;
}
/** A history entry. Render `text` as text, never as HTML. */
export interface MessageView {
  id: string;
  index: number;
  sender: string;
  /** The sender's display name from a verified profile, or the address when none. Text only. */
  senderName: string;
  outgoing: boolean;
  kind: "text" | "file" | "system" | "unsupported" | "deleted" | "call";
  text: string;
  status: "sending" | "sent" | "delivered" | "read" | "failed" | "received";
  failure?: string | null;
  sentAt: number;
  serverTime: number;
  deliveredTo: string[];
  readBy: string[];
  edited: boolean;
  reactions: ReactionView[];
  /** When it disappears (ms since the Unix epoch). */
  expiresAt?: number | null;
  replyTo?: QuoteView | null;
  /** What a file message carries; fetch it with `downloadFile`. Name and type are text only. */
  file?: { name: string; size: number; mime: string } | null;
  /** A call's entry (`kind` "call"): one per call, the sender is the caller. */
  call?: { id: string; video: boolean; outcome: "ringing" | "answered" | "declined" | "missed" } | null;
}
/** One ICE candidate, as `RTCIceCandidateInit`. */
export interface CallCandidate {
  sdpMid: string;
  sdpMLineIndex: number;
  candidate: string;
}
/**
 * A call signal, carried inside MLS. `to` (a user) and `toDevice` (hex) say whom it is for: an
 * offer names a user (any of their devices may answer), later signals the device. A hang-up is
 * for everyone in the call, and so is a media state (`muted`, `cameraOff`: sent when the
 * sender's microphone or camera changes). Received offers and answers carry `fingerprint`, the
 * DTLS fingerprint of their SDP: check the certificate the peer presents against it.
 */
export interface CallSignal {
  kind: "offer" | "answer" | "candidates" | "hangup" | "decline" | "busy" | "media";
  /** 32 hex digits, chosen by the caller. */
  call: string;
  to?: string;
  toDevice?: string;
  video?: boolean;
  sdp?: string;
  fingerprint?: string;
  /** An ICE restart of a connected call (offers). */
  restart?: boolean;
  candidates?: CallCandidate[];
  /** Media states: the sender's microphone is muted. */
  muted?: boolean;
  /** Media states: the sender's camera is off. */
  cameraOff?: boolean;
}
/** What `iceServers()` resolves to. */
export interface IceServersView {
  /** For `new RTCPeerConnection({ iceServers })`. */
  iceServers: { urls: string[]; username?: string; credential?: string }[];
  /** When the TURN credentials expire (ms since the Unix epoch; 0 when none). */
  expiresAt: number;
}
/** The connection indicator's state. */
export interface ConnectionView {
  state: "online" | "connecting" | "offline" | "removed";
  transport?: string | null;
  reason?: string | null;
  retryInMs?: number | null;
}
/** What `onEvent` callbacks receive. */
export type QpqEvent =
  | { type: "conversation"; id: string }
  | { type: "message"; conversation: string; index: number; change: "added" | "changed" | "removed" }
  | { type: "typing"; conversation: string }
  /** The contacts or the blocked users changed. */
  | { type: "contacts" }
  | { type: "profile"; user: string }
  | { type: "call"; conversation: string; from: string; fromDevice: string; signal: CallSignal }
  | ({ type: "connection" } & ConnectionView)
  | { type: "notice"; text: string }
  /** The history from the device that linked this one is being fetched (bytes). */
  | { type: "history"; done: number; total: number };
/** Options of `QpqClient.open` and `QpqClient.register`. */
export interface QpqOptions {
  /**
   * Which transport to use: `"auto"` (default) prefers WebTransport and falls back to
   * WebSocket when it is missing or fails; the others force one.
   */
  transport?: "auto" | "webtransport" | "websocket";
  /** WebSocket URL of the gateway; default: `/ws` on the page's origin. */
  websocketUrl?: string;
  /**
   * WebTransport URL of the gateway (`https://HOST:PORT/wt`); default: what
   * `/transport.json` of the page's origin says, fetched before every attempt.
   */
  webtransportUrl?: string;
  /**
   * Base64 SHA-256 hashes of the certificates to trust for `webtransportUrl`
   * (`serverCertificateHashes`); only with `webtransportUrl`. Default: none (CA checks).
   */
  webtransportCertHashes?: string[];
  /** How long a WebTransport attempt may take before WebSocket is tried (ms; default 2000). */
  webtransportTimeoutMs?: number;
  /**
   * What the account's other devices call this one ("Chromium on Linux"); stored, and sent to
   * the server only as ciphertext those devices can read.
   */
  deviceName?: string;
}
"#;

/// A quicproquo account in this browser. Errors thrown are `Error`s with a `code`.
#[wasm_bindgen]
pub struct QpqClient {
    client: WebClient,
    connector: Rc<dyn Connector>,
    /// Seals the downloaded files the page keeps (see `api/files.rs`).
    downloads: Sealer,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Options {
    transport: Option<String>,
    websocket_url: Option<String>,
    webtransport_url: Option<String>,
    webtransport_cert_hashes: Option<Vec<String>>,
    webtransport_timeout_ms: Option<u32>,
    device_name: Option<String>,
}

fn options(v: JsValue) -> Result<Options, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(Options::default());
    }
    serde_wasm_bindgen::from_value(v).map_err(|e| js_error("input", &format!("bad options: {e}")))
}

/// `scheme://host` of the page.
fn page_origin() -> Result<(String, String), JsValue> {
    let location = js_sys::Reflect::get(&js_sys::global(), &"location".into())?;
    let href = js_sys::Reflect::get(&location, &"href".into())?.as_string().unwrap_or_default();
    let (scheme, rest) = href.split_once("://").ok_or_else(|| js_error("input", "the page has no URL"))?;
    Ok((scheme.to_string(), rest.split('/').next().unwrap_or_default().to_string()))
}

/// What a new account in this browser starts from (registering, linking, restoring): the
/// transport `o` asks for, the browser's store, which must hold no account yet, and the key
/// its downloads are sealed under.
async fn fresh_account(o: &Options) -> Result<(Rc<dyn Connector>, IdbStore, Sealer), JsValue> {
    let connector = connector(o)?;
    let store = IdbStore::open(None).await.map_err(open_error)?;
    if !store.is_empty().await.map_err(|e| js_error("storage", &e))? {
        return Err(js_error("input", "this browser already holds an account"));
    }
    let downloads = store.downloads();
    Ok((connector, store, downloads))
}

fn connector(o: &Options) -> Result<Rc<dyn Connector>, JsValue> {
    let mode = match &o.transport {
        Some(t) => TransportMode::parse(t)
            .ok_or_else(|| js_error("input", &format!("transport {t:?} is not auto, webtransport or websocket")))?,
        None => TransportMode::Auto,
    };
    let (scheme, host) = page_origin()?;
    let websocket_url = match &o.websocket_url {
        Some(u) => u.clone(),
        None => format!("{}://{host}/ws", if scheme == "https" { "wss" } else { "ws" }),
    };
    let webtransport = match &o.webtransport_url {
        Some(u) => WtEndpoint::fixed(u.clone(), o.webtransport_cert_hashes.as_deref().unwrap_or_default())
            .map_err(|e| js_error("input", &e))?,
        None => WtEndpoint::Discover { info_url: format!("{scheme}://{host}/transport.json") },
    };
    let timeout = o.webtransport_timeout_ms.unwrap_or(WT_TIMEOUT_MS);
    Ok(Rc::new(AutoConnector::new(mode, websocket_url, webtransport, timeout)))
}

/// The error of a store that did not open, with its code: `locked` (a passphrase is
/// needed), `wrong_passphrase`, or `storage`.
pub(crate) fn open_error(e: crate::store::OpenError) -> JsValue {
    match e {
        crate::store::OpenError::Locked => js_error("locked", "quicproquo is locked: type your passphrase to open it"),
        crate::store::OpenError::WrongPassphrase => js_error("wrong_passphrase", "that passphrase is not the right one"),
        crate::store::OpenError::Failed(e) => js_error("storage", &e),
    }
}

fn to_js<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
}

fn channel(id: &str) -> Result<ChannelId, JsValue> {
    ChannelId::from_hex(id).map_err(|_| js_error("no_such_conversation", "no such conversation"))
}

fn message_id(id: &str) -> Result<qpq_core::MessageId, JsValue> {
    qpq_core::MessageId::from_hex(id).ok_or_else(|| js_error("no_such_message", "no such message in this conversation"))
}

#[wasm_bindgen]
impl QpqClient {
    /// Opens the account stored in this browser, or resolves to `undefined` when there is
    /// none. Call `start()` to connect.
    #[wasm_bindgen(unchecked_return_type = "QpqClient | undefined")]
    pub async fn open(#[wasm_bindgen(unchecked_param_type = "QpqOptions | undefined")] opts: JsValue) -> Result<JsValue, JsValue> {
        let o = options(opts)?;
        let store = IdbStore::open(None).await.map_err(open_error)?;
        if store.is_empty().await.map_err(|e| js_error("storage", &e))? {
            return Ok(JsValue::UNDEFINED);
        }
        let downloads = store.downloads();
        let client = Client::open(store, WebPlatform).await.map_err(client_error)?;
        match client {
            Some(client) => {
                if let Some(name) = &o.device_name {
                    client.set_device_name(name).await.map_err(client_error)?;
                }
                Ok(QpqClient { client, connector: connector(&o)?, downloads }.into())
            }
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Opens the account stored in this browser when a passphrase locks it (`open` rejects
    /// with code `locked` then); rejects with code `wrong_passphrase` for another passphrase.
    pub async fn unlock(
        passphrase: String,
        #[wasm_bindgen(unchecked_param_type = "QpqOptions | undefined")] opts: JsValue,
    ) -> Result<QpqClient, JsValue> {
        let o = options(opts)?;
        let store = IdbStore::open(Some(&passphrase)).await.map_err(open_error)?;
        let downloads = store.downloads();
        let client = Client::open(store, WebPlatform)
            .await
            .map_err(client_error)?
            .ok_or_else(|| js_error("storage", "this browser holds no account"))?;
        if let Some(name) = &o.device_name {
            client.set_device_name(name).await.map_err(client_error)?;
        }
        Ok(QpqClient { client, connector: connector(&o)?, downloads })
    }

    /// Whether a passphrase locks this browser's copy of the account.
    #[wasm_bindgen(js_name = hasPassphrase)]
    pub fn has_passphrase(&self) -> bool {
        self.client.store().has_passphrase()
    }

    /// Locks this browser's copy of the account with `passphrase` (at least 8 characters;
    /// Argon2id, 19 MiB, 2 passes): from the next start it opens only with it. Also changes it.
    #[wasm_bindgen(js_name = setPassphrase)]
    pub async fn set_passphrase(&self, passphrase: String) -> Result<(), JsValue> {
        self.client.store().set_passphrase(&passphrase).await.map_err(|e| js_error("input", &e))
    }

    /// Takes the passphrase lock off.
    #[wasm_bindgen(js_name = removePassphrase)]
    pub async fn remove_passphrase(&self) -> Result<(), JsValue> {
        self.client.store().remove_passphrase().await.map_err(|e| js_error("storage", &e))
    }

    /// Creates an account named `name` (or `name@domain`) on the gateway's server. Nothing is
    /// stored when the server refuses (e.g. the name is taken: code `user_exists`).
    pub async fn register(
        name: String,
        #[wasm_bindgen(unchecked_param_type = "QpqOptions | undefined")] opts: JsValue,
    ) -> Result<QpqClient, JsValue> {
        let o = options(opts)?;
        let (connector, store, downloads) = fresh_account(&o).await?;
        let client = Client::register(&*connector, store, WebPlatform, name.trim()).await.map_err(client_error)?;
        if let Some(name) = &o.device_name {
            client.set_device_name(name).await.map_err(client_error)?;
        }
        Ok(QpqClient { client, connector, downloads })
    }

    /// This account's user (`name@domain`).
    pub fn user(&self) -> String {
        self.client.user().to_string()
    }

    /// Connects (and keeps reconnecting) and starts sending and receiving.
    pub fn start(&self) {
        self.client.start(self.connector.clone());
    }

    /// Disconnects; resolves once the connection is closed and no write to this browser's
    /// storage is in flight (another tab may then open the account).
    pub async fn stop(&self) {
        self.client.shutdown().await;
    }

    /// Calls `callback` with every event from now on.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, #[wasm_bindgen(unchecked_param_type = "(event: QpqEvent) => void")] callback: js_sys::Function) {
        self.client.on_event(move |ev| {
            let _ = callback.call1(&JsValue::NULL, &to_js(&views::event_view(ev)));
        });
    }

    /// The connection state.
    #[wasm_bindgen(js_name = connectionState, unchecked_return_type = "ConnectionView")]
    pub fn connection_state(&self) -> JsValue {
        to_js(&views::connection_view(&self.client.connection_state()))
    }

    /// Every conversation, most recently active first.
    #[wasm_bindgen(unchecked_return_type = "ConversationView[]")]
    pub fn conversations(&self) -> JsValue {
        self.client.with_engine(|e| {
            // Requests deleted or put away by a block are not listed.
            let v: Vec<views::ConversationView> =
                e.conversations().into_iter().filter(|c| !c.hidden).map(|c| views::conversation_view(c, e)).collect();
            to_js(&v)
        })
    }

    /// One conversation, or `undefined` (also for a request deleted or put away).
    #[wasm_bindgen(unchecked_return_type = "ConversationView | undefined")]
    pub fn conversation(&self, id: &str) -> Result<JsValue, JsValue> {
        let id = channel(id)?;
        Ok(self.client.with_engine(|e| match e.conversation(&id) {
            Some(c) if !c.hidden => to_js(&views::conversation_view(c, e)),
            _ => JsValue::UNDEFINED,
        }))
    }

    /// The history of a conversation, oldest first.
    #[wasm_bindgen(unchecked_return_type = "MessageView[]")]
    pub fn history(&self, id: &str) -> Result<JsValue, JsValue> {
        let id = channel(id)?;
        Ok(self.client.with_engine(|e| {
            let v: Vec<views::MessageView> = e.history(&id).iter().map(|m| views::message_view_in(e, &id, m)).collect();
            to_js(&v)
        }))
    }

    /// History entries from `from_index` on (what changed since the UI last read).
    #[wasm_bindgen(js_name = historySince, unchecked_return_type = "MessageView[]")]
    pub fn history_since(&self, id: &str, from_index: u32) -> Result<JsValue, JsValue> {
        let id = channel(id)?;
        Ok(self.client.with_engine(|e| {
            let v: Vec<views::MessageView> = e
                .history(&id)
                .iter()
                .filter(|m| m.index >= u64::from(from_index))
                .map(|m| views::message_view_in(e, &id, m))
                .collect();
            to_js(&v)
        }))
    }

    /// One history entry, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "MessageView | undefined")]
    pub fn message(&self, id: &str, index: u32) -> Result<JsValue, JsValue> {
        let id = channel(id)?;
        Ok(self.client.with_engine(|e| match e.message(&id, u64::from(index)) {
            Some(m) => to_js(&views::message_view_in(e, &id, m)),
            None => JsValue::UNDEFINED,
        }))
    }

    /// The other members typing in a conversation now.
    pub fn typing(&self, id: &str) -> Result<Vec<String>, JsValue> {
        let id = channel(id)?;
        let now = js_sys::Date::now() as u64;
        Ok(self.client.with_engine(|e| e.typing(&id, now).iter().map(|u| u.to_string()).collect()))
    }

    /// Opens the 1:1 chat with `user` (`name` or `name@domain`), creating it if needed;
    /// resolves to its id.
    #[wasm_bindgen(js_name = startChat)]
    pub async fn start_chat(&self, user: String) -> Result<String, JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        Ok(self.client.start_chat(&user).await.map_err(client_error)?.to_hex())
    }

    /// Creates a group; resolves to its id.
    #[wasm_bindgen(js_name = createGroup)]
    pub async fn create_group(&self, name: String, members: Vec<String>) -> Result<String, JsValue> {
        let users = self.users(&members)?;
        Ok(self.client.create_group(&name, &users).await.map_err(client_error)?.to_hex())
    }

    /// Adds people to a conversation.
    #[wasm_bindgen(js_name = addMembers)]
    pub async fn add_members(&self, conversation: String, members: Vec<String>) -> Result<(), JsValue> {
        let users = self.users(&members)?;
        self.client.add_members(&channel(&conversation)?, &users).await.map_err(client_error)
    }

    /// Removes people from a conversation.
    #[wasm_bindgen(js_name = removeMembers)]
    pub async fn remove_members(&self, conversation: String, members: Vec<String>) -> Result<(), JsValue> {
        let users = self.users(&members)?;
        self.client.remove_members(&channel(&conversation)?, &users).await.map_err(client_error)
    }

    /// Makes `member` an admin of a group (`admin`) or a member only. Admins only.
    #[wasm_bindgen(js_name = setAdmin)]
    pub async fn set_admin(&self, conversation: String, member: String, admin: bool) -> Result<(), JsValue> {
        let user = self.client.resolve_user(&member).map_err(client_error)?;
        self.client.set_admin(&channel(&conversation)?, &user, admin).await.map_err(client_error)
    }

    /// The safety number with `user` (fetching their directory records first when online,
    /// so a changed identity key shows).
    #[wasm_bindgen(js_name = safetyNumber, unchecked_return_type = "SafetyNumberView")]
    pub async fn safety_number(&self, user: String) -> Result<JsValue, JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        let n = self.client.safety_number(&user).await.map_err(client_error)?;
        Ok(to_js(&views::safety_number_view(&user, &n)))
    }

    /// Marks `user` verified after the person compared `digits` (the number shown) with theirs.
    #[wasm_bindgen(js_name = markVerified)]
    pub async fn mark_verified(&self, user: String, digits: String) -> Result<(), JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        self.client.mark_verified(&user, &digits).await.map_err(client_error)
    }

    /// Takes back the verification of `user`.
    #[wasm_bindgen(js_name = clearVerified)]
    pub async fn clear_verified(&self, user: String) -> Result<(), JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        self.client.clear_verified(&user).await.map_err(client_error)
    }

    /// Sends a text message; resolves to its id. It waits in the outbox while offline.
    #[wasm_bindgen(js_name = sendText)]
    pub async fn send_text(&self, conversation: String, text: String) -> Result<String, JsValue> {
        Ok(self.client.send_text(&channel(&conversation)?, &text).await.map_err(client_error)?.to_hex())
    }

    /// Sends a text message replying to message `replyTo` (hex id); resolves to its id.
    #[wasm_bindgen(js_name = sendReply)]
    pub async fn send_reply(&self, conversation: String, text: String, reply_to: String) -> Result<String, JsValue> {
        let target = message_id(&reply_to)?;
        Ok(self.client.send_reply(&channel(&conversation)?, &text, target).await.map_err(client_error)?.to_hex())
    }

    /// Adds (or with `remove`, takes back) a reaction to a message.
    pub async fn react(&self, conversation: String, message: String, emoji: String, remove: bool) -> Result<(), JsValue> {
        let target = message_id(&message)?;
        self.client.react(&channel(&conversation)?, target, &emoji, remove).await.map_err(client_error)
    }

    /// Changes the text of one of your messages for everyone (code `not_yours` otherwise).
    #[wasm_bindgen(js_name = editMessage)]
    pub async fn edit_message(&self, conversation: String, message: String, text: String) -> Result<(), JsValue> {
        let target = message_id(&message)?;
        self.client.edit_message(&channel(&conversation)?, target, &text).await.map_err(client_error)
    }

    /// Deletes one of your messages for everyone (code `not_yours` otherwise).
    #[wasm_bindgen(js_name = deleteMessage)]
    pub async fn delete_message(&self, conversation: String, message: String) -> Result<(), JsValue> {
        let target = message_id(&message)?;
        self.client.delete_message(&channel(&conversation)?, target).await.map_err(client_error)
    }

    /// Tells the members you started (`true`) or stopped typing.
    #[wasm_bindgen(js_name = setTyping)]
    pub async fn set_typing(&self, conversation: String, active: bool) -> Result<(), JsValue> {
        self.client.set_typing(&channel(&conversation)?, active).await.map_err(client_error)
    }

    /// Sets the disappearing-message timer in seconds (0: off) for every member.
    #[wasm_bindgen(js_name = setDisappearing)]
    pub async fn set_disappearing(&self, conversation: String, seconds: u32) -> Result<(), JsValue> {
        self.client.set_disappearing(&channel(&conversation)?, seconds).await.map_err(client_error)
    }

    /// Leaves a conversation; its history stays readable here.
    #[wasm_bindgen(js_name = leaveConversation)]
    pub async fn leave_conversation(&self, conversation: String) -> Result<(), JsValue> {
        self.client.leave_conversation(&channel(&conversation)?).await.map_err(client_error)
    }

    /// Marks a conversation read.
    #[wasm_bindgen(js_name = markRead)]
    pub async fn mark_read(&self, conversation: String) -> Result<(), JsValue> {
        self.client.mark_read(&channel(&conversation)?).await.map_err(client_error)
    }

    /// Deletes the account on the server (after telling every conversation, whose members
    /// then see "… deleted their account"), then everything in this browser.
    #[wasm_bindgen(js_name = deleteAccount)]
    pub async fn delete_account(self) -> Result<(), JsValue> {
        self.client.delete_account().await.map_err(client_error)?;
        self.client.store().clear().await.map_err(|e| js_error("storage", &e))
    }

    fn users(&self, names: &[String]) -> Result<Vec<qpq_proto::UserId>, JsValue> {
        names
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| self.client.resolve_user(s).map_err(client_error))
            .collect()
    }
}

/// Times Argon2id with the passphrase lock's parameters (`qpq_client::passphrase`) in this
/// page: the median of `rounds` derivations, in milliseconds — the browser side of the native
/// comparison.
#[wasm_bindgen(js_name = benchArgon2)]
pub fn bench_argon2(rounds: u32) -> f64 {
    qpq_client::passphrase::time_derive(rounds, &js_sys::Date::now)
}

/// Runs the engine's MLS workload (`qpq_core::bench::mls_rates`) in this page and returns
/// `{ encryptPerSec, decryptPerSec }` — the browser side of the native comparison.
#[wasm_bindgen(js_name = benchMls, unchecked_return_type = "{ encryptPerSec: number, decryptPerSec: number }")]
pub fn bench_mls(members: u32, messages: u32, text_len: u32) -> JsValue {
    let r = qpq_core::bench::mls_rates(members as usize, messages as usize, text_len as usize, &js_sys::Date::now);
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &"encryptPerSec".into(), &r.encrypt_per_sec.into());
    let _ = js_sys::Reflect::set(&o, &"decryptPerSec".into(), &r.decrypt_per_sec.into());
    o.into()
}

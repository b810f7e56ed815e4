//! The engine: one device's whole messaging state and every step that changes it.
//!
//! Each public method is one *step*: it changes memory only, and the shell then calls
//! [`Engine::take_changes`] and stores the [`Changeset`] atomically before it performs any I/O
//! the step asked for. Time (`now`, ms since the Unix epoch) is an argument; network work comes
//! out as [`Outbound`] values and goes in as [`Envelope`]s.

mod calls;
mod directory;
mod groups;
mod handover;
mod intake;
mod outbound;
mod people;
mod profiles;
mod rejoin;
mod restore;
mod rich;
mod safety;

pub use handover::{decode_history, encode_history, ConversationHistory};
pub use people::{decode_contacts, encode_contacts, Contact};
pub use profiles::KnownProfile;
pub use restore::AccountBackup;
pub use safety::{safety_digits, SafetyNumber, Verification, SAFETY_NUMBER_DIGITS};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use openmls::prelude::{
    Capabilities, Ciphersuite, GroupId, MlsGroup, MlsGroupCreateConfig, MlsGroupJoinConfig,
    SenderRatchetConfiguration, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls::prelude::KeyPackage;
use qpq_types::{ChannelId, ClientMsgId, DeviceId, DeviceRecord, UserId};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::app_message::MessageId;
use crate::conversation::{Content, Conversation, Message};
use crate::error::EngineError;
use crate::group_meta::GroupMeta;
use crate::identity::{Identity, StoredIdentity};
use crate::outbox::OutboxItem;
use crate::provider::Provider;
use crate::state::{Changeset, StateKey, MLS_PREFIX};

use openmls::prelude::tls_codec::Serialize as _;

/// The MLS cipher suite quicproquo uses: X25519, ChaCha20-Poly1305, SHA-256, Ed25519 (0x0003),
/// chosen because it is fast in WASM, where AES has no hardware support.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

/// Application messages are padded to a multiple of this many bytes.
pub const PADDING_BYTES: usize = 256;

/// How many past epochs' secrets are kept, so that messages sent just before a commit still
/// decrypt after it.
pub const MAX_PAST_EPOCHS: usize = 5;

/// Something the UI may want to redraw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A conversation appeared or changed (members, name, unread count, activity).
    ConversationChanged(ChannelId),
    /// A history entry was added.
    MessageAdded {
        /// The conversation.
        conv: ChannelId,
        /// The entry's index.
        index: u64,
    },
    /// A history entry changed (delivery state, receipts, reactions, edit, delete).
    MessageChanged {
        /// The conversation.
        conv: ChannelId,
        /// The entry's index.
        index: u64,
    },
    /// A history entry disappeared (its timer ran out).
    MessageRemoved {
        /// The conversation.
        conv: ChannelId,
        /// The entry's index.
        index: u64,
    },
    /// Who is typing in a conversation changed; read it with [`Engine::typing`].
    TypingChanged(ChannelId),
    /// The contacts or the blocked users changed.
    ContactsChanged,
    /// A user's profile (this account's own included) changed, or a forged one was refused.
    ProfileChanged(UserId),
    /// A call signal arrived (not kept in history; the shell runs the call).
    Call {
        /// The conversation.
        conv: ChannelId,
        /// The member device that sent it.
        from: qpq_types::DeviceAddress,
        /// The signal.
        signal: crate::call::CallSignal,
    },
}

/// How long a "typing" indication lasts without being renewed (ms).
pub const TYPING_TIMEOUT_MS: u64 = 8_000;

#[derive(Serialize, Deserialize, Default, Clone)]
struct Meta {
    next_order: u64,
    /// What the shell keeps until a linked device's history hand-over is in (opaque to the
    /// engine; it names a file and its key).
    #[serde(default, with = "crate::outbox::opt_hex_bytes")]
    handover: Option<Vec<u8>>,
    /// What this device is called on the account's other devices ("Chromium on Linux").
    #[serde(default)]
    device_name: Option<String>,
    /// Members whose devices the node said changed, until their records are read again
    /// (see `restore`).
    #[serde(default)]
    devices_changed: BTreeSet<UserId>,
    /// The person's contacts and when each was added (ms); `None` in state written before
    /// contacts existed, filled from the conversations' members at load.
    #[serde(default)]
    contacts: Option<BTreeMap<UserId, u64>>,
    /// Users this account blocks, as the node last said (the node keeps the list).
    #[serde(default)]
    blocked: BTreeSet<UserId>,
    /// The node said another device of the account changed the blocks: read them again.
    #[serde(default)]
    blocks_stale: bool,
}

/// Device keys of a user, checked against its identity key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct KnownUser {
    #[serde(with = "crate::outbox::hex_bytes")]
    identity_key: Vec<u8>,
    devices: BTreeMap<DeviceId, String>,
    /// Whether the person compared the safety number for `identity_key`.
    #[serde(default)]
    verification: Verification,
}

/// One device's messaging engine. See the module documentation.
pub struct Engine {
    provider: Provider,
    identity: Identity,
    rng: ChaCha20Rng,
    groups: HashMap<ChannelId, MlsGroup>,
    conversations: BTreeMap<ChannelId, Conversation>,
    history: HashMap<ChannelId, Vec<Message>>,
    /// History from a backup, by conversation, until the conversation comes back.
    restoring: BTreeMap<ChannelId, Vec<Message>>,
    /// Every message id in history, for de-duplication and receipts.
    seen: HashMap<MessageId, (ChannelId, u64)>,
    outbox: BTreeMap<u64, OutboxItem>,
    meta: Meta,
    cursor: u64,
    known: BTreeMap<UserId, KnownUser>,
    /// Profile cards, this account's own included (see `profiles.rs`).
    profiles: BTreeMap<UserId, profiles::HeldProfile>,
    /// Deliveries waiting for directory records, by sequence number (see `directory.rs`).
    held: BTreeMap<u64, directory::Held>,
    /// Delivery receipts waiting to be sent (not persisted: at worst one is lost).
    pending_receipts: BTreeMap<ChannelId, Vec<MessageId>>,
    /// Read receipts waiting to be sent (not persisted, like delivery receipts).
    pending_reads: BTreeMap<ChannelId, Vec<MessageId>>,
    /// Who is typing where, until when (ms; not persisted).
    typing: BTreeMap<ChannelId, BTreeMap<UserId, u64>>,
    dirty: BTreeSet<StateKey>,
    events: Vec<Event>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("identity", &self.identity)
            .field("conversations", &self.conversations.len())
            .field("outbox", &self.outbox.len())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Creates a new account's first device. `seed` must be 32 bytes from a CSPRNG; the engine
    /// draws its keys and ids from it.
    pub fn create(user: UserId, seed: [u8; 32], now: u64) -> Engine {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut keys = [0u8; 64];
        rng.fill_bytes(&mut keys);
        let mut device = [0u8; 16];
        rng.fill_bytes(&mut device);
        let identity = Identity::generate(user, &keys, DeviceId(device), now);
        Self::with_identity(identity, rng)
    }

    /// Creates a linked device of an existing account: the account's identity key (handed
    /// over by one of its devices) and this device's own key and id, whose record that device
    /// registered with `created_at`. `seed` as for [`Engine::create`].
    pub fn create_linked(
        user: UserId,
        identity_secret: &[u8; 32],
        device_id: DeviceId,
        device_secret: &[u8; 32],
        created_at: u64,
        seed: [u8; 32],
    ) -> Engine {
        let identity = Identity::from_secrets(user, identity_secret, device_id, device_secret, created_at);
        Self::with_identity(identity, ChaCha20Rng::from_seed(seed))
    }

    fn with_identity(identity: Identity, rng: ChaCha20Rng) -> Engine {
        let mut e = Engine {
            provider: Provider::default(),
            identity,
            rng,
            groups: HashMap::new(),
            conversations: BTreeMap::new(),
            history: HashMap::new(),
            restoring: BTreeMap::new(),
            seen: HashMap::new(),
            outbox: BTreeMap::new(),
            meta: Meta { contacts: Some(BTreeMap::new()), ..Meta::default() },
            cursor: 0,
            known: BTreeMap::new(),
            profiles: BTreeMap::new(),
            held: BTreeMap::new(),
            pending_receipts: BTreeMap::new(),
            pending_reads: BTreeMap::new(),
            typing: BTreeMap::new(),
            dirty: BTreeSet::new(),
            events: Vec::new(),
        };
        e.dirty.extend([StateKey::Identity, StateKey::Meta, StateKey::Cursor]);
        e
    }

    /// Rebuilds the engine from every stored entry. `seed` must be fresh CSPRNG output.
    pub fn load(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>, seed: [u8; 32]) -> Result<Engine, EngineError> {
        let mut mls = Vec::new();
        let mut identity = None;
        let mut meta = Meta::default();
        let mut cursor = 0;
        let mut conversations = BTreeMap::new();
        let mut history: HashMap<ChannelId, Vec<Message>> = HashMap::new();
        let mut outbox = BTreeMap::new();
        let mut known = BTreeMap::new();
        let mut profiles = BTreeMap::new();
        let mut held = BTreeMap::new();
        let mut restoring = BTreeMap::new();
        for (k, v) in entries {
            if let Some(rest) = k.strip_prefix(MLS_PREFIX) {
                mls.push((rest.to_vec(), v));
                continue;
            }
            match StateKey::parse(&k) {
                Some(StateKey::Identity) => {
                    let s: StoredIdentity = json(&v, "identity")?;
                    identity = Some(Identity::from_stored(&s)?);
                }
                Some(StateKey::Meta) => meta = json(&v, "meta")?,
                Some(StateKey::Cursor) => {
                    cursor = u64::from_be_bytes(v.as_slice().try_into().map_err(|_| EngineError::Corrupt("cursor"))?)
                }
                Some(StateKey::Conversation(c)) => {
                    conversations.insert(c, json::<Conversation>(&v, "conversation")?);
                }
                Some(StateKey::Message(c, _)) => history.entry(c).or_default().push(json(&v, "message")?),
                Some(StateKey::Outbox(o)) => {
                    outbox.insert(o, json(&v, "outbox")?);
                }
                Some(StateKey::Known(u)) => {
                    known.insert(u, json(&v, "known devices")?);
                }
                Some(StateKey::Profile(u)) => {
                    profiles.insert(u, json(&v, "profile")?);
                }
                Some(StateKey::Held(seq)) => {
                    held.insert(seq, json(&v, "held delivery")?);
                }
                Some(StateKey::Restore(c)) => {
                    restoring.insert(c, json(&v, "restored history")?);
                }
                None => {}
            }
        }
        let identity = identity.ok_or(EngineError::Corrupt("no identity"))?;
        let provider = Provider::with_entries(mls);
        let mut groups = HashMap::new();
        for id in conversations.keys() {
            let gid = GroupId::from_slice(id.as_bytes());
            if let Some(mut g) = MlsGroup::load(openmls_traits::OpenMlsProvider::storage(&provider), &gid)
                .map_err(|_| EngineError::Corrupt("group"))?
            {
                // A group stored before commits went out in clear takes today's policy.
                if g.configuration().wire_format_policy() != HANDSHAKE_IN_CLEAR {
                    g.set_configuration(openmls_traits::OpenMlsProvider::storage(&provider), &join_config())
                        .map_err(|_| EngineError::Corrupt("group"))?;
                }
                groups.insert(id.clone(), g);
            }
        }
        let mut seen = HashMap::new();
        for (c, msgs) in history.iter_mut() {
            msgs.sort_by_key(|m| m.index);
            for m in msgs.iter() {
                seen.insert(m.id, (c.clone(), m.index));
            }
        }
        let mut dirty = BTreeSet::new();
        if meta.contacts.is_none() {
            meta.contacts = Some(people::contacts_from(identity.user(), conversations.values()));
            dirty.insert(StateKey::Meta);
        }
        Ok(Engine {
            provider,
            identity,
            rng: ChaCha20Rng::from_seed(seed),
            groups,
            conversations,
            history,
            restoring,
            seen,
            outbox,
            meta,
            cursor,
            known,
            profiles,
            held,
            pending_receipts: BTreeMap::new(),
            pending_reads: BTreeMap::new(),
            typing: BTreeMap::new(),
            dirty,
            events: Vec::new(),
        })
    }

    /// Everything written since the last call. Store it atomically before doing the I/O the
    /// last step asked for.
    pub fn take_changes(&mut self) -> Changeset {
        let mut cs = Changeset::default();
        for key in std::mem::take(&mut self.dirty) {
            let value: Option<Vec<u8>> = match &key {
                StateKey::Identity => Some(to_json(&self.identity.to_stored())),
                StateKey::Meta => Some(to_json(&self.meta)),
                StateKey::Cursor => Some(self.cursor.to_be_bytes().to_vec()),
                StateKey::Conversation(c) => self.conversations.get(c).map(to_json),
                StateKey::Message(c, i) => self.message(c, *i).map(to_json),
                StateKey::Outbox(o) => self.outbox.get(o).map(to_json),
                StateKey::Known(u) => self.known.get(u).map(to_json),
                StateKey::Profile(u) => self.profiles.get(u).map(to_json),
                StateKey::Held(seq) => self.held.get(seq).map(to_json),
                StateKey::Restore(c) => self.restoring.get(c).map(to_json),
            };
            match value {
                Some(v) => cs.puts.push((key.to_bytes(), v)),
                None => cs.deletes.push(key.to_bytes()),
            }
        }
        let diff = self.provider.take_diff();
        cs.puts.extend(diff.puts.into_iter().map(|(k, v)| ([MLS_PREFIX, &k].concat(), v)));
        cs.deletes.extend(diff.deletes.into_iter().map(|k| [MLS_PREFIX, &k].concat()));
        cs
    }

    /// The UI events since the last call.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    // --- identity -------------------------------------------------------------------------

    /// This device's user.
    pub fn user(&self) -> &UserId {
        self.identity.user()
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.identity.device_id()
    }

    /// This device's record, signed by the identity key.
    pub fn device_record(&self) -> &DeviceRecord {
        self.identity.device_record()
    }

    /// The identity public key.
    pub fn identity_public_key(&self) -> [u8; 32] {
        self.identity.identity_public_key()
    }

    /// What this device is called on the account's other devices, if it was named.
    pub fn device_name(&self) -> Option<&str> {
        self.meta.device_name.as_deref()
    }

    /// Names this device (stored with the next step).
    pub fn set_device_name(&mut self, name: &str) {
        if self.meta.device_name.as_deref() != Some(name) {
            self.meta.device_name = Some(name.to_string());
            self.dirty.insert(StateKey::Meta);
        }
    }

    /// The account's identity secret key, for handing over to a device being linked (and
    /// nothing else): whoever holds it can act for the account.
    pub fn identity_secret(&self) -> zeroize::Zeroizing<[u8; 32]> {
        self.identity.identity_secret()
    }

    /// Signs a device record for another device of this user (device linking).
    pub fn sign_device_record(&self, device_id: DeviceId, device_key: [u8; 32], created_at: u64) -> DeviceRecord {
        self.identity.sign_device_record(device_id, device_key, created_at)
    }

    /// Signs a login challenge, bound to the connection's TLS exporter value when the transport
    /// gives one, else to nothing (`binding` empty; see `qpq_types::login_bytes`).
    pub fn sign_login(&self, nonce: &[u8], binding: &[u8]) -> [u8; 64] {
        self.identity.sign_login(nonce, binding)
    }

    /// `count` fresh one-time key packages to upload.
    pub fn generate_key_packages(&mut self, count: usize) -> Result<Vec<Vec<u8>>, EngineError> {
        (0..count).map(|_| self.key_package(false)).collect()
    }

    /// A last-resort key package (used when the one-time packages run out).
    pub fn last_resort_key_package(&mut self) -> Result<Vec<u8>, EngineError> {
        self.key_package(true)
    }

    fn key_package(&mut self, last_resort: bool) -> Result<Vec<u8>, EngineError> {
        let mut b = KeyPackage::builder().leaf_node_capabilities(capabilities());
        if last_resort {
            b = b.mark_as_last_resort();
        }
        let bundle = b
            .build(CIPHERSUITE, &self.provider, self.identity.signer(), self.identity.credential_with_key())
            .map_err(EngineError::mls)?;
        bundle.key_package().tls_serialize_detached().map_err(EngineError::mls)
    }

    // --- reading state --------------------------------------------------------------------

    /// All conversations, most recently active first.
    pub fn conversations(&self) -> Vec<&Conversation> {
        let mut v: Vec<&Conversation> = self.conversations.values().collect();
        v.sort_by(|a, b| b.last_activity.cmp(&a.last_activity).then_with(|| a.id.cmp(&b.id)));
        v
    }

    /// One conversation.
    pub fn conversation(&self, id: &ChannelId) -> Option<&Conversation> {
        self.conversations.get(id)
    }

    /// The history of a conversation, oldest first, sorted by index. Indices have gaps where
    /// entries disappeared; look entries up with [`Engine::message`], not by position.
    pub fn history(&self, id: &ChannelId) -> &[Message] {
        self.history.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The history entry of a conversation at `index`, if it exists (and has not disappeared).
    pub fn message(&self, conv: &ChannelId, index: u64) -> Option<&Message> {
        let h = self.history.get(conv)?;
        h.binary_search_by_key(&index, |m| m.index).ok().map(|p| &h[p])
    }

    /// The history entry with the sender's message id `id` in conversation `conv`.
    pub fn message_by_id(&self, conv: &ChannelId, id: &MessageId) -> Option<&Message> {
        match self.seen.get(id) {
            Some((c, index)) if c == conv => self.message(c, *index),
            _ => None,
        }
    }

    /// The MLS epoch authenticator of a conversation: equal on every member in the same epoch.
    pub fn epoch_authenticator(&self, id: &ChannelId) -> Option<Vec<u8>> {
        self.groups.get(id).map(|g| g.epoch_authenticator().as_slice().to_vec())
    }

    /// The last delivery sequence number processed; fetch and subscribe after it.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Number of items still waiting to reach the server.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Marks every message of a conversation read, and queues read receipts for the messages
    /// of others not yet acknowledged as read (sent with the next [`Engine::next_outbound`]).
    pub fn mark_read(&mut self, id: &ChannelId) {
        let Some(c) = self.conversations.get(id) else { return };
        let (from, len, active) = (c.read_upto, c.len, c.active);
        let unread = c.unread;
        let ids: Vec<MessageId> = self
            .history(id)
            .iter()
            .filter(|m| m.index >= from && !m.outgoing && m.sender != *self.user() && m.is_content())
            .map(|m| m.id)
            .collect();
        // A request's messages are read here but not receipted: that waits for an accept.
        let request = self.is_request(id);
        if active && !ids.is_empty() && !request {
            self.pending_reads.entry(id.clone()).or_default().extend(ids);
        }
        if let Some(c) = self.conversations.get_mut(id) {
            if unread != 0 || (from != len && !request) {
                c.unread = 0;
                if !request {
                    c.read_upto = len;
                }
                self.dirty.insert(StateKey::Conversation(id.clone()));
                self.events.push(Event::ConversationChanged(id.clone()));
            }
        }
    }

    // --- helpers shared by the step modules -------------------------------------------------

    fn random_id(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        b
    }

    /// A fresh AEAD nonce (sealing group metadata).
    fn nonce(&mut self) -> [u8; 12] {
        let mut b = [0u8; 12];
        self.rng.fill_bytes(&mut b);
        b
    }

    /// The provider's cryptography.
    fn crypto(&self) -> &impl openmls_traits::crypto::OpenMlsCrypto {
        openmls_traits::OpenMlsProvider::crypto(&self.provider)
    }

    fn new_client_msg_id(&mut self) -> ClientMsgId {
        ClientMsgId(self.random_id())
    }

    fn new_message_id(&mut self) -> MessageId {
        MessageId(self.random_id())
    }

    fn push_outbox(&mut self, conv: ChannelId, op: crate::outbox::PendingOp) -> ClientMsgId {
        let order = self.meta.next_order;
        self.meta.next_order += 1;
        let id = self.new_client_msg_id();
        self.outbox.insert(order, OutboxItem { order, id, conv, op, attempts: 0 });
        self.dirty.insert(StateKey::Outbox(order));
        self.dirty.insert(StateKey::Meta);
        id
    }

    /// Appends a history entry and returns its index.
    fn append(&mut self, conv: &ChannelId, mut msg: Message, unread: bool) -> u64 {
        let c = self.conversations.get_mut(conv).expect("conversation exists");
        msg.index = c.len;
        c.len += 1;
        if c.disappear_secs > 0 && msg.expires_at.is_none() && !matches!(msg.content, Content::System(_)) {
            let base = if msg.server_time != 0 { msg.server_time } else { msg.sent_at };
            msg.expires_at = Some(base.saturating_add(u64::from(c.disappear_secs) * 1000));
        }
        c.last_activity = c.last_activity.max(msg.sent_at.max(msg.server_time));
        if unread {
            c.unread += 1;
        }
        let index = msg.index;
        self.seen.insert(msg.id, (conv.clone(), index));
        self.history.entry(conv.clone()).or_default().push(msg);
        self.dirty.insert(StateKey::Message(conv.clone(), index));
        self.dirty.insert(StateKey::Conversation(conv.clone()));
        self.events.push(Event::MessageAdded { conv: conv.clone(), index });
        self.events.push(Event::ConversationChanged(conv.clone()));
        index
    }

    fn message_mut(&mut self, conv: &ChannelId, index: u64) -> Option<&mut Message> {
        let h = self.history.get_mut(conv)?;
        let p = h.binary_search_by_key(&index, |m| m.index).ok()?;
        self.dirty.insert(StateKey::Message(conv.clone(), index));
        self.events.push(Event::MessageChanged { conv: conv.clone(), index });
        h.get_mut(p)
    }

    /// Refreshes members, epoch and metadata of a conversation from its MLS group.
    fn sync_conversation(&mut self, conv: &ChannelId) {
        let Some(group) = self.groups.get(conv) else { return };
        let mut members: Vec<UserId> = group
            .members()
            .filter_map(|m| crate::identity::device_of_credential(&m.credential).ok())
            .map(|d| d.user)
            .collect();
        members.sort();
        members.dedup();
        let key = self.conversations.get(conv).and_then(|c| c.meta_key.as_ref());
        let meta = GroupMeta::from_extensions(group.extensions(), key, conv.as_bytes(), self.crypto()).ok();
        let epoch = group.epoch().as_u64();
        let active = group.is_active();
        let admins = admins_of(group);
        if let Some(c) = self.conversations.get_mut(conv) {
            c.admins = admins;
            c.members = members;
            c.epoch = epoch;
            c.active = active;
            if let Some(m) = meta {
                c.name = m.name;
                c.disappear_secs = m.disappear_secs;
            }
            self.dirty.insert(StateKey::Conversation(conv.clone()));
            self.events.push(Event::ConversationChanged(conv.clone()));
        }
    }
}

/// Who counts as the group's admins (`qpq_types::roles`); `None` for a group without roles.
fn admins_of(group: &MlsGroup) -> Option<Vec<UserId>> {
    let listed = group.extensions().unknown(qpq_types::roles::ADMINS_EXTENSION)?;
    let listed = qpq_types::roles::decode_admins(&listed.0).unwrap_or_default();
    let by_leaf: Vec<UserId> =
        group.members().filter_map(|m| crate::identity::device_of_credential(&m.credential).ok()).map(|d| d.user).collect();
    Some(qpq_types::roles::effective_admins(&listed, &by_leaf))
}

/// Leaf capabilities: our cipher suite, the metadata extension and the admins list.
fn capabilities() -> Capabilities {
    let exts = [GroupMeta::extension_type(), openmls::prelude::ExtensionType::Unknown(qpq_types::roles::ADMINS_EXTENSION)];
    Capabilities::new(None, Some(&[CIPHERSUITE]), Some(&exts), None, None)
}

fn sender_ratchet() -> SenderRatchetConfiguration {
    // Tolerate reordering within a window of 64 messages and gaps of up to 1000.
    SenderRatchetConfiguration::new(64, 1000)
}

/// The configuration of a new group whose context holds `exts` (the metadata and the admins),
/// which every member must support.
fn create_config(mut exts: Vec<openmls::prelude::Extension>) -> Result<MlsGroupCreateConfig, EngineError> {
    let types: Vec<_> = exts.iter().map(|e| e.extension_type()).collect();
    let required = openmls::prelude::RequiredCapabilitiesExtension::new(&types, &[], &[]);
    exts.push(openmls::prelude::Extension::RequiredCapabilities(required));
    let exts = openmls::prelude::Extensions::from_vec(exts).map_err(EngineError::mls)?;
    Ok(MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .padding_size(PADDING_BYTES)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .wire_format_policy(HANDSHAKE_IN_CLEAR)
        .capabilities(capabilities())
        .with_group_context_extensions(exts)
        .build())
}

/// Commits and proposals go out as MLS `PublicMessage`s, so that the node can check them
/// against the group's public state; application messages are always `PrivateMessage`s.
/// Received handshake messages may be either (commits made before this policy were private).
/// Nothing secret is in a commit's clear content: the group's metadata is sealed
/// (`group_meta.rs`), and paths carry only public keys and HPKE ciphertexts.
const HANDSHAKE_IN_CLEAR: openmls::prelude::WireFormatPolicy = MIXED_PLAINTEXT_WIRE_FORMAT_POLICY;

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .padding_size(PADDING_BYTES)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .wire_format_policy(HANDSHAKE_IN_CLEAR)
        .build()
}

fn json<T: for<'de> Deserialize<'de>>(v: &[u8], what: &'static str) -> Result<T, EngineError> {
    serde_json::from_slice(v).map_err(|_| EngineError::Corrupt(what))
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("engine state serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::ConversationKind;

    fn stored(e: &mut Engine, store: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
        let cs = e.take_changes();
        store.extend(cs.puts);
        for k in cs.deletes {
            store.remove(&k);
        }
    }

    /// A group stored while commits were still encrypted sends its next commit in clear.
    #[test]
    fn a_group_stored_with_encrypted_handshakes_takes_the_clear_policy_when_loaded() {
        let mut e = Engine::create(UserId::parse("alice@x.org").unwrap(), [4; 32], 1);
        let conv = e.create_conversation(ConversationKind::Group, "old times", 2).unwrap();
        let old = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .padding_size(PADDING_BYTES)
            .max_past_epochs(MAX_PAST_EPOCHS)
            .sender_ratchet_configuration(sender_ratchet())
            .wire_format_policy(openmls::prelude::PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .build();
        let g = e.groups.get_mut(&conv).unwrap();
        g.set_configuration(openmls_traits::OpenMlsProvider::storage(&e.provider), &old).unwrap();
        let mut store = BTreeMap::new();
        stored(&mut e, &mut store);

        let mut e = Engine::load(store.clone(), [5; 32]).unwrap();
        assert_eq!(e.groups[&conv].configuration().wire_format_policy(), HANDSHAKE_IN_CLEAR);
        // The change is written with the next step, so the next load finds it as well.
        stored(&mut e, &mut store);
        let e = Engine::load(store, [6; 32]).unwrap();
        assert_eq!(e.groups[&conv].configuration().wire_format_policy(), HANDSHAKE_IN_CLEAR);
        assert_eq!(e.conversation(&conv).unwrap().name, "old times");
    }
}

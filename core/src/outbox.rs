//! The outbox: work that must reach the server, kept until the server has accepted it.
//!
//! Items are taken per conversation in order. Each is sent with a client message id that makes
//! the server's enqueue and commit idempotent, so a retry after a lost reply never duplicates.
//! Application messages are encrypted when first sent and the ciphertext kept for retries (a
//! retry must repeat the same bytes: the sender ratchet has moved on). Membership changes are
//! kept as intents and turned into a commit when they reach the head of their conversation; a
//! commit refused for a stale epoch is rebuilt after the winning commit has been processed, and
//! a message refused so (made before a commit the server has, so a device that commit added
//! could not read it) is encrypted again in the new epoch, under the same id.

use qpq_types::{ChannelId, ClientMsgId, DeviceAddress, DeviceId, ErrorCode, UserId};
use serde::{Deserialize, Serialize};

use crate::app_message::MessageId;

/// A key package claimed from the server for one device of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedPackage {
    /// The user.
    pub user: UserId,
    /// The device the server says it belongs to.
    pub device: DeviceId,
    /// The TLS-serialised key package.
    #[serde(with = "hex_bytes")]
    pub key_package: Vec<u8>,
}

/// A commit as built, kept so that a retry sends the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuiltCommit {
    pub epoch: u64,
    #[serde(with = "hex_bytes")]
    pub commit: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub welcome: Vec<u8>,
    pub add: Vec<DeviceAddress>,
    pub remove: Vec<DeviceAddress>,
    pub added_users: Vec<UserId>,
    pub removed_users: Vec<UserId>,
    /// It changes the admins (absent in commits stored by older builds).
    #[serde(default)]
    pub sets_admins: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PendingOp {
    CreateChannel,
    /// Hand the server the GroupInfo of the conversation's current epoch, for members that
    /// must rejoin (after each commit of this device).
    PublishGroupInfo,
    /// This device's external commit rejoining the group (`engine/rejoin.rs`), made in the
    /// server's epoch `epoch`; sent before anything else of the conversation.
    Rejoin {
        epoch: u64,
        #[serde(with = "hex_bytes")]
        commit: Vec<u8>,
    },
    Message {
        msg_id: MessageId,
        #[serde(with = "hex_bytes")]
        plaintext: Vec<u8>,
        #[serde(with = "opt_hex_bytes")]
        ciphertext: Option<Vec<u8>>,
        /// Whether the message has an entry in history (receipts do not).
        in_history: bool,
        /// The epoch of a ciphertext the server refused as stale (a commit came first): the
        /// message is encrypted again once this device's group has passed that epoch. Absent
        /// in items stored by older builds.
        #[serde(default)]
        stale_epoch: Option<u64>,
    },
    Membership {
        add: Vec<ClaimedPackage>,
        remove: Vec<UserId>,
        built: Option<BuiltCommit>,
        /// The epoch a previous attempt was refused for; rebuild only once past it.
        refused_epoch: Option<u64>,
        /// Also refresh this device's own leaf keys ([`crate::Engine::update_keys`]); a commit
        /// with only this is a valid change. Absent in items stored by older builds.
        #[serde(default)]
        self_update: bool,
        /// Also set the disappearing-message timer to this many seconds (a
        /// GroupContextExtensions proposal); a commit with only this is a valid change.
        #[serde(default)]
        set_timer: Option<u32>,
        /// Also remove these devices' leaves (devices revoked from this user's account) while
        /// their users stay members. Absent in items stored by older builds.
        #[serde(default)]
        remove_devices: Vec<DeviceAddress>,
        /// Also make these users the conversation's admins (group roles, a
        /// GroupContextExtensions proposal); a commit with only this is a valid change.
        #[serde(default)]
        set_admins: Option<Vec<qpq_types::UserId>>,
    },
}

impl PendingOp {
    /// A message to encrypt when it reaches the head of its conversation; `in_history` when
    /// it has an entry in history.
    pub(crate) fn message(msg_id: MessageId, plaintext: Vec<u8>, in_history: bool) -> PendingOp {
        PendingOp::Message { msg_id, plaintext, ciphertext: None, in_history, stale_epoch: None }
    }

    /// A group change not built yet: adds, removes, a key update and/or a new timer.
    pub(crate) fn group_change(
        add: Vec<ClaimedPackage>,
        remove: Vec<qpq_types::UserId>,
        self_update: bool,
        set_timer: Option<u32>,
    ) -> Self {
        PendingOp::Membership {
            add,
            remove,
            built: None,
            refused_epoch: None,
            self_update,
            set_timer,
            remove_devices: Vec::new(),
            set_admins: None,
        }
    }

    /// Making `admins` the conversation's admins.
    pub(crate) fn admins_change(admins: Vec<qpq_types::UserId>) -> Self {
        PendingOp::Membership {
            add: Vec::new(),
            remove: Vec::new(),
            built: None,
            refused_epoch: None,
            self_update: false,
            set_timer: None,
            remove_devices: Vec::new(),
            set_admins: Some(admins),
        }
    }

    /// Removing the leaves of these devices, not their users.
    pub(crate) fn device_removal(devices: Vec<DeviceAddress>) -> Self {
        Self::device_change(Vec::new(), devices)
    }

    /// Adding devices (`add`) and removing the leaves of others, not their users.
    pub(crate) fn device_change(add: Vec<ClaimedPackage>, remove_devices: Vec<DeviceAddress>) -> Self {
        PendingOp::Membership {
            add,
            remove: Vec::new(),
            built: None,
            refused_epoch: None,
            self_update: false,
            set_timer: None,
            remove_devices,
            set_admins: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OutboxItem {
    pub order: u64,
    pub id: ClientMsgId,
    pub conv: ChannelId,
    pub op: PendingOp,
    pub attempts: u32,
}

/// Something the shell must send to the server, then report with
/// [`crate::Engine::outbound_result`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// The idempotency key; report the result under it.
    pub id: ClientMsgId,
    /// What to do.
    pub op: OutboundOp,
}

/// The server call an [`Outbound`] stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboundOp {
    /// `Session.createChannel`.
    CreateChannel {
        /// The channel (MLS group id).
        channel: ChannelId,
        /// The new group's GroupInfo with its ratchet tree (an MLSMessage), from which the node
        /// keeps the group's public state to validate commits.
        group_info: Vec<u8>,
    },
    /// `Session.putGroupInfo`.
    PutGroupInfo {
        /// The channel.
        channel: ChannelId,
        /// The GroupInfo of its current epoch, signed by this device (an MLSMessage).
        group_info: Vec<u8>,
    },
    /// `Session.enqueue`.
    Enqueue {
        /// The channel.
        channel: ChannelId,
        /// The MLS application message.
        payload: Vec<u8>,
        /// Disappearing-message timer in seconds, 0 for none.
        ttl_secs: u32,
    },
    /// `Session.commit`.
    Commit {
        /// The channel.
        channel: ChannelId,
        /// The epoch the commit was made in.
        epoch: u64,
        /// The MLS commit.
        commit: Vec<u8>,
        /// The MLS Welcome for `add`, empty when nobody is added.
        welcome: Vec<u8>,
        /// Devices to add to the channel (they receive the Welcome).
        add: Vec<DeviceAddress>,
        /// Devices to remove from the channel.
        remove: Vec<DeviceAddress>,
    },
}

/// How the server answered an [`Outbound`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboundResult {
    /// Accepted (or accepted earlier: the server de-duplicated a retry).
    Accepted {
        /// The server's time of acceptance (ms).
        server_time: u64,
    },
    /// Refused with a code and a sentence. `StaleEpoch` makes a commit wait for the winning
    /// commit and be rebuilt, and a message wait for it and be encrypted again; other codes
    /// drop the item and mark its message failed.
    Refused {
        /// The code, when the server gave one.
        code: Option<ErrorCode>,
        /// The server's sentence.
        message: String,
    },
}

pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod opt_hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|h| hex::decode(h).map_err(serde::de::Error::custom))
            .transpose()
    }
}

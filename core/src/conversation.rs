//! The conversation list and history model, as the UI shows it.

use std::collections::BTreeMap;

use qpq_types::{ChannelId, DeviceId, UserId};
use serde::{Deserialize, Serialize};

use crate::app_message::MessageId;
pub use crate::group_meta::ConversationKind;
use crate::group_meta::MetaKey;

/// A conversation: one MLS group, one server channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The channel id (the MLS group id).
    pub id: ChannelId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// The group name (empty for direct chats; use [`Conversation::title`]).
    pub name: String,
    /// Who created it.
    pub created_by: UserId,
    /// When it was created (ms since the Unix epoch).
    pub created_at: u64,
    /// Current members (users; each may have several devices), sorted.
    pub members: Vec<UserId>,
    /// Messages from others not yet marked read.
    pub unread: u32,
    /// Time of the last message or change (ms), for ordering the list.
    pub last_activity: u64,
    /// False once this device has been removed (history stays readable).
    pub active: bool,
    /// The MLS epoch this device is in.
    pub epoch: u64,
    /// Number of history entries ever added (the next entry's index); expired entries leave
    /// gaps.
    pub len: u64,
    /// Disappearing-message timer in seconds (0: messages stay), as agreed in the group.
    #[serde(default)]
    pub disappear_secs: u32,
    /// Entries below this index have had their read receipts sent.
    #[serde(default)]
    pub read_upto: u64,
    /// Commits the server accepted that this device could not apply (a member's key did not
    /// match the directory, or they came from a member who forked away that way): each took
    /// a server epoch, so this device's own commits name `epoch + refused_commits` to the
    /// server.
    #[serde(default)]
    pub refused_commits: u64,
    /// Hashes of the latest refused commits, so that a copy delivered again counts once.
    #[serde(default)]
    pub(crate) refused_recent: Vec<String>,
    /// A message request: someone who is not a contact started it or added this user, and
    /// the person has not accepted it yet. Nothing goes back (no receipts, no typing) until
    /// then; sending a message accepts it.
    #[serde(default)]
    pub request: bool,
    /// Who added this user (the member whose device sent the Welcome); `None` for
    /// conversations this user created.
    #[serde(default)]
    pub invited_by: Option<UserId>,
    /// Deleted as a request (left, and no longer listed); a later Welcome brings it back.
    #[serde(default)]
    pub hidden: bool,
    /// Which version of this account's profile card this conversation last carried, and to
    /// which members (see `engine/profiles.rs`).
    #[serde(default)]
    pub(crate) profile_shared: Option<ProfileShared>,
    /// The key sealing the group's metadata in its group context (`group_meta.rs`); `None`
    /// for a conversation created before there was one, whose metadata stays in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) meta_key: Option<MetaKey>,
    /// This device could not process a commit the server accepted, so it is out of step with
    /// the group: it rejoins by an external commit (`engine/rejoin.rs`) before it sends again.
    #[serde(default)]
    pub rejoin: bool,
    /// The conversation's admins (group roles, `qpq_types::roles`): who may add and remove
    /// members, change its settings and make others admins. `None` for a conversation made
    /// before roles, where every member may.
    #[serde(default)]
    pub admins: Option<Vec<UserId>>,
}

/// Which version of the own profile card a conversation last carried, and to whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProfileShared {
    pub(crate) version: u64,
    pub(crate) members: Vec<UserId>,
    /// How many leaves (member devices) the group had: a new device of anyone, this
    /// account's own included, gets the card too.
    #[serde(default)]
    pub(crate) leaves: usize,
}

impl Conversation {
    /// What to call the conversation: the group name, or for a direct chat the other person.
    pub fn title(&self, me: &UserId) -> String {
        match self.kind {
            ConversationKind::Group if !self.name.is_empty() => self.name.clone(),
            _ => {
                let others: Vec<&str> =
                    self.members.iter().filter(|u| *u != me).map(|u| u.as_str()).collect();
                if others.is_empty() {
                    self.name.clone()
                } else {
                    others.join(", ")
                }
            }
        }
    }
}

/// Delivery state of a message this device sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Waiting in the outbox.
    Sending,
    /// Accepted by the server.
    Sent,
    /// At least one device of every other member has it.
    Delivered,
    /// Could not be sent; the reason is for people.
    Failed(String),
    /// A message from someone else (or from another device of ours).
    Received,
}

/// Something that happened to the conversation, shown inline in its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemEvent {
    /// The conversation was created.
    Created,
    /// Members were added.
    Added(Vec<UserId>),
    /// Members were removed.
    Removed(Vec<UserId>),
    /// This device joined (through a Welcome).
    Joined,
    /// This device was removed; nothing sent afterwards can be read here.
    YouWereRemoved,
    /// A message could not be decrypted or read; the reason is for people.
    Undecryptable(String),
    /// The sender set the disappearing-message timer (seconds, 0 for off).
    TimerChanged(u32),
    /// The sender left the conversation.
    Left,
    /// The sender deleted their account.
    AccountDeleted,
    /// The directory shows a new identity key for the sender (a new safety number). With
    /// `was_verified`, the old one had been verified and nothing is sent to them until the
    /// new one is.
    SafetyNumberChanged {
        /// Whether the person had verified the old number.
        was_verified: bool,
    },
    /// The sender changed who the group's admins are.
    AdminsChanged {
        /// Who became admin.
        made: Vec<UserId>,
        /// Who is no longer admin.
        unmade: Vec<UserId>,
    },
}

/// What a history entry shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A text message.
    Text {
        /// The text (render it as text, never as HTML).
        text: String,
        /// The message it replies to.
        reply_to: Option<MessageId>,
    },
    /// A file (its name and type are the sender's words: show them as text).
    File {
        /// Where the file is and the key to read it.
        file: crate::FileRef,
    },
    /// A kind of message this version cannot show.
    Unsupported {
        /// The kind number.
        kind: u64,
    },
    /// A membership change or notice.
    System(SystemEvent),
    /// A message its author deleted for everyone; its content is gone.
    Deleted,
    /// A voice or video call (one entry per call; the sender is the caller).
    Call {
        /// The call.
        call: crate::call::CallId,
        /// A video call.
        video: bool,
        /// How it went so far.
        outcome: CallOutcome,
    },
}

/// How a call went, as its history entry shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallOutcome {
    /// Ringing: nobody answered or declined yet.
    Ringing,
    /// Someone (for an incoming call: this user, on one of their devices) answered.
    Answered,
    /// Declined (an incoming call by this user; an outgoing 1:1 call by the other person).
    Declined,
    /// Not answered: for an incoming call, a missed call; for an outgoing one, no answer.
    Missed,
}

/// One entry of a conversation's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's message id (system entries get a local random id).
    pub id: MessageId,
    /// Position in the conversation's history.
    pub index: u64,
    /// Who wrote it (for system entries: who caused it).
    pub sender: UserId,
    /// From which device.
    pub sender_device: DeviceId,
    /// True when this device wrote it.
    pub outgoing: bool,
    /// The sender's clock (ms).
    pub sent_at: u64,
    /// When the server accepted it (ms), 0 until known.
    pub server_time: u64,
    /// The content.
    pub content: Content,
    /// Delivery state.
    pub status: Status,
    /// Other members known to have received it (for outgoing messages).
    pub delivered_to: Vec<UserId>,
    /// Other members known to have read it (for outgoing messages).
    #[serde(default)]
    pub read_by: Vec<UserId>,
    /// True once its author changed the text.
    #[serde(default)]
    pub edited: bool,
    /// Reactions: each reaction and who gave it (sorted, no duplicates).
    #[serde(default)]
    pub reactions: BTreeMap<String, Vec<UserId>>,
    /// When it disappears (ms since the Unix epoch), if the conversation has a timer.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl Message {
    /// True for what people wrote, as opposed to notices and deleted entries: what may be
    /// reacted to, replied to or counted as read.
    pub fn is_content(&self) -> bool {
        !matches!(self.content, Content::System(_) | Content::Deleted | Content::Call { .. })
    }
}

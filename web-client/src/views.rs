//! What the JavaScript API returns: plain serialisable views of engine state, with the words
//! a UI shows for system events. Platform-independent so it is tested natively.

use qpq_client::{ClientEvent, ConnState};
use qpq_core::{Content, Conversation, ConversationKind, Engine, Event, Message, Status, SystemEvent};
use qpq_proto::UserId;
use serde::Serialize;

/// One conversation in the list.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    /// Hex channel id.
    pub id: String,
    /// "direct" or "group".
    pub kind: &'static str,
    /// What to call it.
    pub title: String,
    /// Members (name@domain), sorted.
    pub members: Vec<String>,
    /// Unread messages.
    pub unread: u32,
    /// Last activity (ms since the Unix epoch).
    pub last_activity: u64,
    /// False once this device was removed.
    pub active: bool,
    /// When it was created (ms).
    pub created_at: u64,
    /// Who created it.
    pub created_by: String,
    /// The last message, for the list's preview.
    pub last_message: Option<MessageView>,
}

/// One history entry.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Hex message id.
    pub id: String,
    /// Position in the history.
    pub index: u64,
    /// Author (for system entries: who caused it).
    pub sender: String,
    /// True when this device wrote it.
    pub outgoing: bool,
    /// "text", "system" or "unsupported".
    pub kind: &'static str,
    /// The text; for system entries a sentence describing the event.
    pub text: String,
    /// "sending", "sent", "delivered", "failed" or "received".
    pub status: &'static str,
    /// Why sending failed, in words.
    pub failure: Option<String>,
    /// The sender's clock (ms).
    pub sent_at: u64,
    /// When the server accepted it (ms), 0 if unknown.
    pub server_time: u64,
    /// Members known to have received it (outgoing messages).
    pub delivered_to: Vec<String>,
}

/// The connection as the indicator shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// "online", "connecting" or "offline".
    pub state: &'static str,
    /// The transport in use when online.
    pub transport: Option<String>,
    /// Why offline, in words.
    pub reason: Option<String>,
    /// When the next attempt starts (ms from now), when offline.
    pub retry_in_ms: Option<u64>,
}

/// An event for the UI.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EventView {
    /// A conversation appeared or changed.
    Conversation {
        /// Hex id.
        id: String,
    },
    /// A history entry was added or changed.
    Message {
        /// Hex conversation id.
        conversation: String,
        /// The entry's index.
        index: u64,
        /// "added" or "changed".
        change: &'static str,
    },
    /// The connection changed.
    Connection(ConnectionView),
    /// Something to tell the person.
    Notice {
        /// In words.
        text: String,
    },
}

fn names(users: &[UserId]) -> String {
    users.iter().map(UserId::as_str).collect::<Vec<_>>().join(", ")
}

/// The sentence for a system event.
pub fn system_text(ev: &SystemEvent, by: &UserId, me: &UserId) -> String {
    let who = if by == me { "You".to_string() } else { by.to_string() };
    match ev {
        SystemEvent::Created => format!("{who} created the conversation"),
        SystemEvent::Added(u) => format!("{who} added {}", names(u)),
        SystemEvent::Removed(u) => format!("{who} removed {}", names(u)),
        SystemEvent::Joined => format!("{who} added you"),
        SystemEvent::YouWereRemoved => format!("{who} removed you; you will not see new messages"),
        SystemEvent::Undecryptable(why) => format!("A message could not be shown: {why}"),
    }
}

/// The view of one message.
pub fn message_view(m: &Message, me: &UserId) -> MessageView {
    let (kind, text) = match &m.content {
        Content::Text { text, .. } => ("text", text.clone()),
        Content::System(ev) => ("system", system_text(ev, &m.sender, me)),
        Content::Unsupported { .. } => ("unsupported", "This message needs a newer version of quicproquo.".into()),
    };
    let (status, failure) = match &m.status {
        Status::Sending => ("sending", None),
        Status::Sent => ("sent", None),
        Status::Delivered => ("delivered", None),
        Status::Failed(why) => ("failed", Some(why.clone())),
        Status::Received => ("received", None),
    };
    MessageView {
        id: m.id.to_hex(),
        index: m.index,
        sender: m.sender.to_string(),
        outgoing: m.outgoing,
        kind,
        text,
        status,
        failure,
        sent_at: m.sent_at,
        server_time: m.server_time,
        delivered_to: m.delivered_to.iter().map(|u| u.to_string()).collect(),
    }
}

/// The view of one conversation.
pub fn conversation_view(c: &Conversation, engine: &Engine) -> ConversationView {
    let me = engine.user();
    ConversationView {
        id: c.id.to_hex(),
        kind: match c.kind {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        },
        title: c.title(me),
        members: c.members.iter().map(|u| u.to_string()).collect(),
        unread: c.unread,
        last_activity: c.last_activity,
        active: c.active,
        created_at: c.created_at,
        created_by: c.created_by.to_string(),
        last_message: engine.history(&c.id).last().map(|m| message_view(m, me)),
    }
}

/// The view of a connection state.
pub fn connection_view(s: &ConnState) -> ConnectionView {
    match s {
        ConnState::Online { transport } => {
            ConnectionView { state: "online", transport: Some(transport.clone()), reason: None, retry_in_ms: None }
        }
        ConnState::Connecting => ConnectionView { state: "connecting", transport: None, reason: None, retry_in_ms: None },
        ConnState::Offline { reason, retry_in_ms } => ConnectionView {
            state: "offline",
            transport: None,
            reason: Some(reason.clone()),
            retry_in_ms: Some(*retry_in_ms),
        },
    }
}

/// The view of a client event.
pub fn event_view(ev: &ClientEvent) -> EventView {
    match ev {
        ClientEvent::Engine(Event::ConversationChanged(id)) => EventView::Conversation { id: id.to_hex() },
        ClientEvent::Engine(Event::MessageAdded { conv, index }) => {
            EventView::Message { conversation: conv.to_hex(), index: *index, change: "added" }
        }
        ClientEvent::Engine(Event::MessageChanged { conv, index }) => {
            EventView::Message { conversation: conv.to_hex(), index: *index, change: "changed" }
        }
        ClientEvent::Connection(s) => EventView::Connection(connection_view(s)),
        ClientEvent::Notice(text) => EventView::Notice { text: text.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_sentences_name_people() {
        let me = UserId::parse("me@x").unwrap();
        let bob = UserId::parse("bob@x").unwrap();
        assert_eq!(system_text(&SystemEvent::Added(vec![bob.clone()]), &me, &me), "You added bob@x");
        assert_eq!(system_text(&SystemEvent::Joined, &bob, &me), "bob@x added you");
    }

    #[test]
    fn events_serialise_with_a_type_tag() {
        let v = event_view(&ClientEvent::Notice("hi".into()));
        assert_eq!(v, EventView::Notice { text: "hi".into() });
        let c = connection_view(&ConnState::Offline { reason: "down".into(), retry_in_ms: 500 });
        assert_eq!(c.state, "offline");
        assert_eq!(c.retry_in_ms, Some(500));
    }
}

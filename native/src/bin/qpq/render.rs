//! How the `qpq` REPL shows things: history lines (with their numbers, replies, edits and
//! reactions), the connection state, and the events it prints as they happen — new messages,
//! and changes to earlier ones (a reaction, an edit, a delete) as `~` lines.

use std::cell::RefCell;
use std::collections::HashMap;

use qpq_client::{ClientEvent, ConnState};
use qpq_core::{Content, Engine, Message, Status, SystemEvent};
use qpq_native::NativeClient;
use qpq_proto::{ChannelId, UserId};

/// One history entry as a line: `#INDEX sender: text (edited) [👍 bob]`, plus the delivery
/// state when `status` is set.
pub fn render(e: &Engine, conv: &ChannelId, m: &Message, status: bool) -> String {
    let who = m.sender.name();
    let body = match &m.content {
        Content::Text { text, reply_to } => {
            let reply = match reply_to {
                Some(id) => match e.message_by_id(conv, id) {
                    Some(q) => format!(" (reply to #{})", q.index),
                    None => " (reply to a message that is gone)".into(),
                },
                None => String::new(),
            };
            format!("{who}: {text}{reply}")
        }
        Content::Unsupported { .. } => format!("{who}: (a message this version cannot show)"),
        Content::Deleted => format!("{who}: (message deleted)"),
        Content::File { file } => format!("{who}: [file {} · {} bytes]", file.name, file.size),
        Content::System(ev) => system_text(&m.sender, ev),
        Content::Call { video, outcome, .. } => {
            let kind = if *video { "video call" } else { "voice call" };
            format!("{who}: ({kind}, {})", format!("{outcome:?}").to_lowercase())
        }
    };
    let edited = if m.edited && !matches!(m.content, Content::Deleted) { " (edited)" } else { "" };
    let reactions = if m.reactions.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = m.reactions.iter().map(|(emoji, users)| format!("{emoji} {}", names(users))).collect();
        format!(" [{}]", parts.join("; "))
    };
    let state = match (&m.status, status) {
        (_, false) | (Status::Received, _) => "",
        (Status::Sending, _) => " …",
        (Status::Sent, _) => " ✓",
        (Status::Delivered, _) => " ✓✓",
        (Status::Failed(_), _) => " ✗",
    };
    format!("#{} {body}{edited}{reactions}{state}", m.index)
}

fn system_text(sender: &UserId, ev: &SystemEvent) -> String {
    match ev {
        SystemEvent::Created => format!("— {sender} created the conversation"),
        SystemEvent::Added(u) => format!("— {sender} added {}", join(u)),
        SystemEvent::Removed(u) => format!("— {sender} removed {}", join(u)),
        SystemEvent::Joined => format!("— you were added by {sender}"),
        SystemEvent::YouWereRemoved => format!("— {sender} removed you"),
        SystemEvent::Undecryptable(why) => format!("— {why}"),
        SystemEvent::TimerChanged(0) => format!("— {sender} turned off disappearing messages"),
        SystemEvent::TimerChanged(s) => format!("— {sender} set disappearing messages to {s} s"),
        SystemEvent::Left => format!("— {sender} left"),
        SystemEvent::AccountDeleted => format!("— {sender} deleted their account"),
        SystemEvent::SafetyNumberChanged { was_verified: true } => {
            format!("— {sender}'s safety number changed; you had verified it: compare the new one (/safety {sender})")
        }
        SystemEvent::SafetyNumberChanged { was_verified: false } => format!("— {sender}'s safety number changed"),
        SystemEvent::AdminsChanged { made, unmade } => format!("— {sender} changed the admins: +[{}] -[{}]", join(made), join(unmade)),
    }
}

fn join(u: &[UserId]) -> String {
    u.iter().map(UserId::as_str).collect::<Vec<_>>().join(", ")
}

fn names(u: &[UserId]) -> String {
    u.iter().map(UserId::name).collect::<Vec<_>>().join(", ")
}

pub fn state_text(s: &ConnState) -> String {
    match s {
        ConnState::Connecting => "connecting…".into(),
        ConnState::Online { transport } => format!("online ({transport})"),
        ConnState::Offline { reason, retry_in_ms } => format!("offline: {reason} (retrying in {}s)", retry_in_ms / 1000),
        ConnState::Removed { reason } => format!("removed: {reason}"),
    }
}

/// Prints events as they happen. It remembers how each entry looked when last shown, so a
/// change is printed only when something a person sees changed (not for delivery receipts).
pub struct Printer {
    client: NativeClient,
    shown: RefCell<HashMap<(ChannelId, u64), String>>,
}

impl Printer {
    /// A printer that knows the history so far.
    pub fn new(client: NativeClient) -> Self {
        let shown = client.with_engine(|e| {
            let mut shown = HashMap::new();
            for c in e.conversations() {
                for m in e.history(&c.id) {
                    shown.insert((c.id.clone(), m.index), render(e, &c.id, m, false));
                }
            }
            shown
        });
        Printer { client, shown: RefCell::new(shown) }
    }

    pub fn print(&self, ev: &ClientEvent) {
        match ev {
            ClientEvent::Engine(qpq_core::Event::MessageAdded { conv, index }) => self.entry(conv, *index, false),
            ClientEvent::Engine(qpq_core::Event::MessageChanged { conv, index }) => self.entry(conv, *index, true),
            ClientEvent::Engine(qpq_core::Event::MessageRemoved { conv, index }) => {
                self.shown.borrow_mut().remove(&(conv.clone(), *index));
            }
            ClientEvent::Connection(s) => println!("* {}", state_text(s)),
            ClientEvent::Notice(n) => println!("! {n}"),
            ClientEvent::History { done, total } => {
                println!("* history from your other device: {}%", done * 100 / (*total).max(1))
            }
            ClientEvent::Engine(_) => {}
        }
    }

    /// A new entry (printed when someone else wrote it or caused it) or a changed one
    /// (printed with `~`).
    fn entry(&self, conv: &ChannelId, index: u64, changed: bool) {
        self.client.with_engine(|e| {
            let Some(m) = e.message(conv, index) else { return };
            let line = render(e, conv, m, false);
            let before = self.shown.borrow_mut().insert((conv.clone(), index), line.clone());
            let title = e.conversation(conv).map(|c| c.title(e.user())).unwrap_or_default();
            if !changed && !m.outgoing && m.sender != *e.user() {
                println!("[{title}] {line}");
            } else if changed && before.is_some_and(|b| b != line) {
                println!("[{title}] ~ {line}");
            }
        });
    }
}

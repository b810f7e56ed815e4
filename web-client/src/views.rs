//! What the JavaScript API returns: plain serialisable views of engine state, with the words
//! a UI shows for system events. Platform-independent so it is tested natively.

use qpq_client::{ClientEvent, ConnState};
use qpq_core::call::{sdp_fingerprint, CallId, CallPeer, CallSignal, IceCandidate};
use qpq_core::{
    CallOutcome, Content, Conversation, ConversationKind, Engine, Event, Message, SafetyNumber, Status, SystemEvent, Verification,
};
use qpq_proto::{ChannelId, DeviceId, UserId};
use serde::{Deserialize, Serialize};

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
    /// Whether the conversation has roles (groups made before roles have none: everyone may
    /// manage them).
    pub roles: bool,
    /// Its admins (name@domain), sorted; empty without roles.
    pub admins: Vec<String>,
    /// Whether this user may add and remove members, change the settings and roles.
    pub is_admin: bool,
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
    /// Disappearing-message timer in seconds, 0 when off.
    pub disappear_secs: u32,
    /// Members whose safety number this person verified.
    pub verified_members: Vec<String>,
    /// Members whose identity key changed after this person verified it (nothing is sent
    /// here until the new number is verified).
    pub changed_members: Vec<String>,
    /// A message request: someone who is not a contact started it; nothing goes back until
    /// it is accepted.
    pub request: bool,
    /// Who added this person ("" for a conversation they created).
    pub invited_by: String,
}

/// One contact.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    /// name@domain.
    pub user: String,
    /// When it became a contact (ms since the Unix epoch).
    pub added_at: u64,
}

/// One reaction on a message.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReactionView {
    /// The emoji.
    pub emoji: String,
    /// Who gave it.
    pub users: Vec<String>,
    /// True when this user gave it.
    pub mine: bool,
}

/// The message a reply quotes.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuoteView {
    /// Hex message id.
    pub id: String,
    /// Its author, when the message is still here.
    pub sender: Option<String>,
    /// A preview of its text, or a sentence saying it is gone.
    pub text: String,
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
    /// The author's display name from a verified profile, or the address when none.
    pub sender_name: String,
    /// True when this device wrote it.
    pub outgoing: bool,
    /// "text", "file", "system", "unsupported" or "deleted".
    pub kind: &'static str,
    /// The text; for system entries a sentence describing the event; for files the name.
    pub text: String,
    /// "sending", "sent", "delivered", "read", "failed" or "received".
    pub status: &'static str,
    /// Why sending failed, in words.
    pub failure: Option<String>,
    /// The sender's clock (ms).
    pub sent_at: u64,
    /// When the server accepted it (ms), 0 if unknown.
    pub server_time: u64,
    /// Members known to have received it (outgoing messages).
    pub delivered_to: Vec<String>,
    /// Members known to have read it (outgoing messages).
    pub read_by: Vec<String>,
    /// True once its author changed it.
    pub edited: bool,
    /// Reactions, most given first.
    pub reactions: Vec<ReactionView>,
    /// When it disappears (ms since the Unix epoch).
    pub expires_at: Option<u64>,
    /// The message it replies to.
    pub reply_to: Option<QuoteView>,
    /// What a file message carries (its key stays inside the engine).
    pub file: Option<FileView>,
    /// What a call entry says about its call.
    pub call: Option<CallEntryView>,
}

/// A call as its history entry shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallEntryView {
    /// Hex call id.
    pub id: String,
    /// A video call.
    pub video: bool,
    /// "ringing", "answered", "declined" or "missed".
    pub outcome: &'static str,
}

/// A call signal as JavaScript sends and receives it (`kind` says which fields it has).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CallSignalView {
    /// "offer", "answer", "candidates", "hangup", "decline", "busy" or "media".
    pub kind: String,
    /// Hex call id (16 bytes).
    pub call: String,
    /// The user it is for (all but hang-ups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The device it is for (hex), when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_device: Option<String>,
    /// Offers: a video call.
    #[serde(default)]
    pub video: bool,
    /// Offers and answers: the session description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
    /// Offers and answers: the DTLS fingerprint of `sdp` (received signals only; a sent one
    /// takes it from its SDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Offers: an ICE restart of a connected call.
    #[serde(default)]
    pub restart: bool,
    /// Candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<CandidateView>>,
    /// Media states: the sender's microphone is muted.
    #[serde(default)]
    pub muted: bool,
    /// Media states: the sender's camera is off.
    #[serde(default)]
    pub camera_off: bool,
}

/// An ICE candidate as `RTCIceCandidateInit` has it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CandidateView {
    /// `sdpMid`.
    pub sdp_mid: String,
    /// `sdpMLineIndex`.
    pub sdp_m_line_index: u32,
    /// `candidate`.
    pub candidate: String,
}

/// One `RTCIceServer`.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IceServerView {
    /// URLs.
    pub urls: Vec<String>,
    /// TURN username (empty for STUN: left out).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// TURN credential (empty for STUN: left out).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credential: String,
}

/// What `iceServers()` returns.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IceServersView {
    /// The servers.
    pub ice_servers: Vec<IceServerView>,
    /// When the TURN credentials expire (ms since the Unix epoch; 0: none).
    pub expires_at: u64,
}

/// The view of a signal.
pub fn call_signal_view(s: &CallSignal) -> CallSignalView {
    let mut v = CallSignalView { kind: s.kind_name().into(), call: s.call().to_hex(), ..Default::default() };
    if let Some(to) = s.to() {
        v.to = Some(to.user.to_string());
        v.to_device = to.device.map(|d| hex::encode(d.0));
    }
    match s {
        CallSignal::Offer { video, sdp, fingerprint, restart, .. } => {
            (v.video, v.restart) = (*video, *restart);
            (v.sdp, v.fingerprint) = (Some(sdp.clone()), Some(fingerprint.clone()));
        }
        CallSignal::Answer { sdp, fingerprint, .. } => (v.sdp, v.fingerprint) = (Some(sdp.clone()), Some(fingerprint.clone())),
        CallSignal::Candidates { candidates, .. } => {
            v.candidates = Some(
                candidates
                    .iter()
                    .map(|c| CandidateView { sdp_mid: c.mid.clone(), sdp_m_line_index: c.m_line, candidate: c.line.clone() })
                    .collect(),
            )
        }
        CallSignal::Media { muted, camera_off, .. } => (v.muted, v.camera_off) = (*muted, *camera_off),
        _ => {}
    }
    v
}

/// The signal a page asks to send; the fingerprint is read from the SDP. Errors are sentences.
pub fn call_signal_from_view(v: CallSignalView) -> Result<CallSignal, String> {
    let call = CallId::from_hex(&v.call).ok_or("a call id is 32 hex digits")?;
    let to = || -> Result<CallPeer, String> {
        let user = UserId::parse(v.to.as_deref().ok_or("the signal names no recipient (to)")?).map_err(|e| e.to_string())?;
        let device = match &v.to_device {
            Some(d) => Some(DeviceId(hex::decode(d).ok().and_then(|b| b.try_into().ok()).ok_or("a device id is 32 hex digits")?)),
            None => None,
        };
        Ok(CallPeer { user, device })
    };
    let sdp = || v.sdp.clone().ok_or_else(|| "an offer or answer needs its sdp".to_string());
    let fingerprint = |sdp: &str| sdp_fingerprint(sdp).ok_or_else(|| "the sdp names no single DTLS fingerprint".to_string());
    Ok(match v.kind.as_str() {
        "offer" => {
            let sdp = sdp()?;
            CallSignal::Offer { call, to: to()?, video: v.video, fingerprint: fingerprint(&sdp)?, sdp, restart: v.restart }
        }
        "answer" => {
            let sdp = sdp()?;
            CallSignal::Answer { call, to: to()?, fingerprint: fingerprint(&sdp)?, sdp }
        }
        "candidates" => CallSignal::Candidates {
            call,
            to: to()?,
            candidates: v
                .candidates
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|c| IceCandidate { mid: c.sdp_mid, m_line: c.sdp_m_line_index, line: c.candidate })
                .collect(),
        },
        "hangup" => CallSignal::Hangup { call },
        "decline" => CallSignal::Decline { call, to: to()? },
        "busy" => CallSignal::Busy { call, to: to()? },
        "media" => CallSignal::Media { call, muted: v.muted, camera_off: v.camera_off },
        other => return Err(format!("{other:?} is not a call signal")),
    })
}

/// The sentence of a call's entry.
pub fn call_text(video: bool, outcome: &CallOutcome, outgoing: bool, caller: &UserId) -> String {
    let (kind, cap) = if video { ("video call", "Video call") } else { ("voice call", "Voice call") };
    match (outgoing, outcome) {
        (true, CallOutcome::Ringing) => format!("{cap}, calling…"),
        (true, CallOutcome::Answered) => format!("{cap} (you called)"),
        (true, CallOutcome::Declined) => format!("{cap} declined"),
        (true, CallOutcome::Missed) => format!("{cap}, no answer"),
        (false, CallOutcome::Ringing) => format!("Incoming {kind} from {caller}"),
        (false, CallOutcome::Answered) => format!("{cap} from {caller}"),
        (false, CallOutcome::Declined) => format!("You declined a {kind} from {caller}"),
        (false, CallOutcome::Missed) => format!("Missed {kind} from {caller}"),
    }
}

/// A file as the message log shows it. Name and type are the sender's words: text only.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    /// The file name (never a path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The media type the sender gave ("" when none).
    pub mime: String,
}

/// The connection as the indicator shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// "online", "connecting", "offline" or "removed" (the device left its account; final).
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
    /// The history from the device that linked this one is being fetched (bytes).
    History {
        /// Bytes fetched.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// A conversation appeared or changed.
    Conversation {
        /// Hex id.
        id: String,
    },
    /// A history entry was added, changed or removed (it disappeared).
    Message {
        /// Hex conversation id.
        conversation: String,
        /// The entry's index.
        index: u64,
        /// "added", "changed" or "removed".
        change: &'static str,
    },
    /// The contacts or the blocked users changed.
    Contacts,
    /// A person's profile (or this account's own) changed, or a forged one was refused.
    Profile {
        /// Whose.
        user: String,
    },
    /// Who is typing in a conversation changed (read it with `typing`).
    Typing {
        /// Hex conversation id.
        conversation: String,
    },
    /// A call signal from a member's device (`fromSelf`: another device of this account).
    #[serde(rename_all = "camelCase")]
    Call {
        /// Hex conversation id.
        conversation: String,
        /// The sender.
        from: String,
        /// The sender's device (hex).
        from_device: String,
        /// The signal.
        signal: CallSignalView,
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
        SystemEvent::AdminsChanged { made, unmade } => {
            let person = |u: &UserId| if u == me { "you".to_string() } else { u.to_string() };
            let list = |us: &[UserId]| us.iter().map(person).collect::<Vec<_>>().join(", ");
            let mut parts = Vec::new();
            if !made.is_empty() {
                parts.push(format!("made {} {}", list(made), if made.len() == 1 { "an admin" } else { "admins" }));
            }
            if !unmade.is_empty() {
                parts.push(format!("took admin from {}", list(unmade)));
            }
            format!("{who} {}", parts.join(" and "))
        }
        SystemEvent::Added(u) => format!("{who} added {}", names(u)),
        SystemEvent::Removed(u) => format!("{who} removed {}", names(u)),
        SystemEvent::Joined => format!("{who} added you"),
        SystemEvent::YouWereRemoved => format!("{who} removed you; you will not see new messages"),
        SystemEvent::Undecryptable(why) => format!("A message could not be shown: {why}"),
        SystemEvent::TimerChanged(0) => format!("{who} turned off disappearing messages"),
        SystemEvent::TimerChanged(secs) => format!("{who} set disappearing messages to {}", duration_words(*secs)),
        SystemEvent::Left => format!("{who} left"),
        SystemEvent::AccountDeleted if by == me => "You deleted your account".into(),
        SystemEvent::AccountDeleted => format!("{who} deleted their account"),
        SystemEvent::SafetyNumberChanged { was_verified: true } => format!(
            "{who}'s safety number changed. You had verified it: compare the new number (Safety number) before writing to them"
        ),
        SystemEvent::SafetyNumberChanged { was_verified: false } => {
            format!("{who}'s safety number changed (a new identity key, after reinstalling or a new account)")
        }
    }
}

/// "30 seconds", "5 minutes", "1 hour", "1 day", "1 week"…
pub fn duration_words(secs: u32) -> String {
    let (n, unit) = match secs {
        s if s % 604_800 == 0 => (s / 604_800, "week"),
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Longest preview of a quoted message, in characters.
const QUOTE_CHARS: usize = 120;

/// The view of one message as shown in its conversation: with the quoted message of a reply
/// and "read" once every other member has read it.
pub fn message_view_in(engine: &Engine, conv: &ChannelId, m: &Message) -> MessageView {
    let mut v = message_view(m, engine);
    let me = engine.user();
    if let Content::Text { reply_to: Some(r), .. } = &m.content {
        v.reply_to = Some(match engine.message_by_id(conv, r) {
            Some(q) => {
                let text = match &q.content {
                    Content::Text { text, .. } => text.chars().take(QUOTE_CHARS).collect(),
                    Content::Deleted => "Message deleted".into(),
                    Content::File { file } => format!("File: {}", file.name.chars().take(QUOTE_CHARS).collect::<String>()),
                    _ => "A message this version cannot show".into(),
                };
                QuoteView { id: r.to_hex(), sender: Some(q.sender.to_string()), text }
            }
            None => QuoteView { id: r.to_hex(), sender: None, text: "The original message is no longer available".into() },
        });
    }
    if m.outgoing && v.status == "delivered" {
        if let Some(c) = engine.conversation(conv) {
            let others: Vec<&UserId> = c.members.iter().filter(|u| *u != me).collect();
            if !others.is_empty() && others.iter().all(|u| m.read_by.contains(u)) {
                v.status = "read";
            }
        }
    }
    v
}

/// The view of one message.
pub fn message_view(m: &Message, engine: &Engine) -> MessageView {
    let me = engine.user();
    let (kind, text) = match &m.content {
        Content::Text { text, .. } => ("text", text.clone()),
        Content::File { file } => ("file", file.name.clone()),
        Content::System(ev) => ("system", system_text(ev, &m.sender, me)),
        Content::Unsupported { .. } => ("unsupported", "This message needs a newer version of quicproquo.".into()),
        Content::Deleted => ("deleted", "Message deleted".into()),
        Content::Call { video, outcome, .. } => ("call", call_text(*video, outcome, m.outgoing, &m.sender)),
    };
    let mut reactions: Vec<ReactionView> = m
        .reactions
        .iter()
        .map(|(emoji, users)| ReactionView {
            emoji: emoji.clone(),
            users: users.iter().map(|u| u.to_string()).collect(),
            mine: users.contains(me),
        })
        .collect();
    reactions.sort_by(|a, b| b.users.len().cmp(&a.users.len()).then_with(|| a.emoji.cmp(&b.emoji)));
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
        sender_name: name_of(engine, &m.sender),
        outgoing: m.outgoing,
        kind,
        text,
        status,
        failure,
        sent_at: m.sent_at,
        server_time: m.server_time,
        delivered_to: m.delivered_to.iter().map(|u| u.to_string()).collect(),
        read_by: m.read_by.iter().map(|u| u.to_string()).collect(),
        edited: m.edited,
        reactions,
        expires_at: m.expires_at,
        reply_to: match &m.content {
            Content::Text { reply_to: Some(r), .. } => {
                Some(QuoteView { id: r.to_hex(), sender: None, text: String::new() })
            }
            _ => None,
        },
        file: match &m.content {
            Content::File { file } => {
                Some(FileView { name: file.name.clone(), size: file.size, mime: file.mime.clone() })
            }
            _ => None,
        },
        call: match &m.content {
            Content::Call { call, video, outcome } => Some(CallEntryView {
                id: call.to_hex(),
                video: *video,
                outcome: match outcome {
                    CallOutcome::Ringing => "ringing",
                    CallOutcome::Answered => "answered",
                    CallOutcome::Declined => "declined",
                    CallOutcome::Missed => "missed",
                },
            }),
            _ => None,
        },
    }
}

/// The view of one conversation.
pub fn conversation_view(c: &Conversation, engine: &Engine) -> ConversationView {
    ConversationView {
        id: c.id.to_hex(),
        kind: match c.kind {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        },
        title: title_of(c, engine),
        members: c.members.iter().map(|u| u.to_string()).collect(),
        roles: c.admins.is_some(),
        admins: c.admins.iter().flatten().map(|u| u.to_string()).collect(),
        is_admin: engine.is_admin(&c.id),
        unread: c.unread,
        last_activity: c.last_activity,
        active: c.active,
        created_at: c.created_at,
        created_by: c.created_by.to_string(),
        last_message: engine.history(&c.id).last().map(|m| message_view(m, engine)),
        disappear_secs: c.disappear_secs,
        verified_members: members_in(c, engine, Verification::Verified),
        changed_members: members_in(c, engine, Verification::ChangedSinceVerified),
        request: c.request,
        invited_by: c.invited_by.as_ref().map(|u| u.to_string()).unwrap_or_default(),
    }
}

/// What to call a person: the display name of their verified profile, or their address.
pub fn name_of(engine: &Engine, user: &UserId) -> String {
    engine.display_name(user).unwrap_or_else(|| user.to_string())
}

/// A conversation's title: a group's name, or the other people by their display names.
fn title_of(c: &Conversation, engine: &Engine) -> String {
    let me = engine.user();
    if c.kind == ConversationKind::Group && !c.name.is_empty() {
        return c.name.clone();
    }
    let others: Vec<String> = c.members.iter().filter(|u| *u != me).map(|u| name_of(engine, u)).collect();
    if others.is_empty() {
        c.title(me)
    } else {
        others.join(", ")
    }
}

/// A person's profile as this device holds it.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    /// Whose.
    pub user: String,
    /// The display name ("" when none or not verified).
    pub name: String,
    /// The status text.
    pub status: String,
    /// A picture is set (read it with `profilePicture`).
    pub picture: bool,
    /// When its owner last changed it (ms); 0 without a verified profile.
    pub updated_at: u64,
    /// A profile signed by the person's identity key is held.
    pub verified: bool,
    /// A profile whose signature did not verify arrived after the last verified one; it was
    /// not used.
    pub forged: bool,
}

/// The view of `user`'s profile, `None` when no card ever arrived.
pub fn profile_view(engine: &Engine, user: &UserId) -> Option<ProfileView> {
    let known = engine.profile(user)?;
    let p = known.profile.as_ref();
    Some(ProfileView {
        user: user.to_string(),
        name: p.map(|p| p.name.clone()).unwrap_or_default(),
        status: p.map(|p| p.status.clone()).unwrap_or_default(),
        picture: p.is_some_and(|p| p.picture.is_some()),
        updated_at: p.map_or(0, |p| p.updated_at),
        verified: p.is_some(),
        forged: known.forged,
    })
}

fn members_in(c: &Conversation, engine: &Engine, v: Verification) -> Vec<String> {
    c.members.iter().filter(|u| engine.verification(u) == v).map(|u| u.to_string()).collect()
}

/// The safety number with a contact, as the **Safety number** screen shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SafetyNumberView {
    /// The contact (name@domain).
    pub user: String,
    /// 60 digits in twelve groups of five.
    pub digits: String,
    /// "unverified", "verified" or "changed" (changed since it was verified).
    pub verification: &'static str,
    /// The QR code of the digits: `qrSize` × `qrSize` modules, row by row, "1" dark.
    pub qr_size: u32,
    /// See `qr_size`.
    pub qr_modules: String,
}

/// A QR code of `data` (error correction level M): its width in modules, and the modules row
/// by row, "1" dark; `(0, "")` when `data` does not fit.
pub fn qr_modules(data: &[u8]) -> (u32, String) {
    match qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M) {
        Ok(code) => (
            code.width() as u32,
            code.to_colors().iter().map(|c| if *c == qrcode::Color::Dark { '1' } else { '0' }).collect(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// The view of a safety number; the QR code holds the 60 digits (numeric mode).
pub fn safety_number_view(user: &UserId, n: &SafetyNumber) -> SafetyNumberView {
    let (qr_size, qr_modules) = qr_modules(n.digits.as_bytes());
    SafetyNumberView {
        user: user.to_string(),
        digits: n.grouped(),
        verification: match n.verification {
            Verification::Unverified => "unverified",
            Verification::Verified => "verified",
            Verification::ChangedSinceVerified => "changed",
        },
        qr_size,
        qr_modules,
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
        ConnState::Removed { reason } => {
            ConnectionView { state: "removed", transport: None, reason: Some(reason.clone()), retry_in_ms: None }
        }
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
        ClientEvent::Engine(Event::MessageRemoved { conv, index }) => {
            EventView::Message { conversation: conv.to_hex(), index: *index, change: "removed" }
        }
        ClientEvent::Engine(Event::TypingChanged(conv)) => EventView::Typing { conversation: conv.to_hex() },
        ClientEvent::Engine(Event::ContactsChanged) => EventView::Contacts,
        ClientEvent::Engine(Event::ProfileChanged(user)) => EventView::Profile { user: user.to_string() },
        ClientEvent::Engine(Event::Call { conv, from, signal }) => EventView::Call {
            conversation: conv.to_hex(),
            from: from.user.to_string(),
            from_device: hex::encode(from.device.0),
            signal: call_signal_view(signal),
        },
        ClientEvent::Connection(s) => EventView::Connection(connection_view(s)),
        ClientEvent::Notice(text) => EventView::Notice { text: text.clone() },
        ClientEvent::History { done, total } => EventView::History { done: *done, total: *total },
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
        assert_eq!(system_text(&SystemEvent::AccountDeleted, &bob, &me), "bob@x deleted their account");
        let changed = system_text(&SystemEvent::SafetyNumberChanged { was_verified: true }, &bob, &me);
        assert!(changed.starts_with("bob@x's safety number changed") && changed.contains("Safety number"));
        assert_eq!(system_text(&SystemEvent::Left, &me, &me), "You left");
        assert_eq!(system_text(&SystemEvent::TimerChanged(3600), &bob, &me), "bob@x set disappearing messages to 1 hour");
        assert_eq!(system_text(&SystemEvent::TimerChanged(0), &me, &me), "You turned off disappearing messages");
        assert_eq!(duration_words(30), "30 seconds");
        assert_eq!(duration_words(604_800), "1 week");
    }

    #[test]
    fn the_safety_qr_code_reads_back_as_the_digits() {
        let digits = "0123456789".repeat(6);
        let n = SafetyNumber { digits: digits.clone(), verification: Verification::Verified };
        let v = safety_number_view(&UserId::parse("bob@x").unwrap(), &n);
        assert_eq!(v.verification, "verified");
        assert_eq!(v.digits.split(' ').count(), 12);
        let size = v.qr_size as usize;
        assert!(size >= 21 && v.qr_modules.len() == size * size);
        // Draw it as the page does (4 light modules around, 4 pixels each) and decode it.
        let (quiet, scale) = (4, 4);
        let side = (size + 2 * quiet) * scale;
        let modules = v.qr_modules.as_bytes();
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            let (mx, my) = ((x / scale).wrapping_sub(quiet), (y / scale).wrapping_sub(quiet));
            if mx < size && my < size && modules[my * size + mx] == b'1' { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().expect("the code decodes");
        assert_eq!(content, digits);
    }

    #[test]
    fn call_signals_cross_to_javascript_and_back() {
        let fp = "sha-256 AB:CD:EF";
        let offer = CallSignalView {
            kind: "offer".into(),
            call: "07".repeat(16),
            to: Some("bob@x".into()),
            video: true,
            sdp: Some(format!("v=0\r\na=fingerprint:{fp}\r\n")),
            ..Default::default()
        };
        let signal = call_signal_from_view(offer.clone()).unwrap();
        assert_eq!(signal.fingerprint(), Some(fp), "the fingerprint is read from the SDP");
        let back = call_signal_view(&signal);
        assert_eq!(back, CallSignalView { fingerprint: Some(fp.into()), ..offer });
        let candidates = CallSignalView {
            kind: "candidates".into(),
            call: "07".repeat(16),
            to: Some("alice@x".into()),
            to_device: Some("01".repeat(16)),
            candidates: Some(vec![CandidateView { sdp_mid: "0".into(), sdp_m_line_index: 1, candidate: "candidate:1".into() }]),
            ..Default::default()
        };
        assert_eq!(call_signal_view(&call_signal_from_view(candidates.clone()).unwrap()), candidates);
        let media = CallSignalView { kind: "media".into(), call: "07".repeat(16), muted: true, ..Default::default() };
        let signal = call_signal_from_view(media.clone()).unwrap();
        assert_eq!(signal, CallSignal::Media { call: CallId([7; 16]), muted: true, camera_off: false });
        assert_eq!(call_signal_view(&signal), media);
        let no_fp = CallSignalView { kind: "answer".into(), call: "07".repeat(16), to: Some("b@x".into()), sdp: Some("v=0".into()), ..Default::default() };
        assert!(call_signal_from_view(no_fp).unwrap_err().contains("fingerprint"));
        assert!(call_signal_from_view(CallSignalView { kind: "ring".into(), call: "07".repeat(16), ..Default::default() }).is_err());
        let alice = UserId::parse("alice@x").unwrap();
        assert_eq!(call_text(true, &CallOutcome::Missed, false, &alice), "Missed video call from alice@x");
        assert_eq!(call_text(false, &CallOutcome::Declined, true, &alice), "Voice call declined");
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

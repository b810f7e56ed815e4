//! Calls: sending and receiving call signals, and the one history entry each call leaves in
//! its conversation (ringing, answered, declined, missed).
//!
//! The engine does not run the call — the browser's WebRTC does, in the shell — but it is the
//! only way signals travel: each is an application message of the conversation's MLS group,
//! so the server never sees a session description or an address, and a receiver knows which
//! member's device sent it. Signals are not kept in history; the shell gets them as
//! [`Event::Call`]. An offer that arrives after [`RING_TIMEOUT_MS`] (the device was offline)
//! does not ring: the call is logged as missed.
//!
//! The entry of a call has the call id as its message id, so later signals find it.

use qpq_types::{ChannelId, DeviceAddress};

use super::{Engine, Event};
use crate::app_message::{Body, MessageId};
use crate::call::{CallId, CallSignal, MAX_CALL_PARTICIPANTS, RING_TIMEOUT_MS};
use crate::conversation::{CallOutcome, Content, Message, Status};
use crate::error::EngineError;

impl Engine {
    /// Sends a call signal to the conversation's members and logs what it means for the call
    /// (an offer opens the call's entry, an answer or decline settles it). An offer (not an
    /// ICE restart) is refused in a conversation of more than [`MAX_CALL_PARTICIPANTS`]
    /// people.
    pub fn send_call_signal(&mut self, conv: &ChannelId, signal: CallSignal, now: u64) -> Result<(), EngineError> {
        self.require_active(conv)?;
        self.require_trusted_members(conv)?;
        signal.validate()?;
        let call = signal.call();
        match &signal {
            CallSignal::Offer { video, restart: false, .. } => {
                let members = self.conversations.get(conv).map_or(0, |c| c.members.len());
                if members > MAX_CALL_PARTICIPANTS {
                    return Err(EngineError::BadValue(format!(
                        "calls have at most {MAX_CALL_PARTICIPANTS} people (each sends to every other); this conversation has {members}"
                    )));
                }
                let (me, dev) = (self.user().clone(), self.device_id());
                self.open_call_entry(conv, call, *video, &DeviceAddress { user: me, device: dev }, true, now, false);
            }
            CallSignal::Answer { .. } => self.settle_call(conv, call, CallOutcome::Answered),
            CallSignal::Decline { .. } => self.settle_call(conv, call, CallOutcome::Declined),
            CallSignal::Busy { .. } => self.settle_call(conv, call, CallOutcome::Missed),
            // Hanging up before anyone answered: nobody took the call.
            CallSignal::Hangup { .. } => self.settle_call(conv, call, CallOutcome::Missed),
            CallSignal::Offer { .. } | CallSignal::Candidates { .. } | CallSignal::Media { .. } => {}
        }
        self.send_control(conv, Body::Call(signal), now);
        Ok(())
    }

    /// The person let an incoming call ring out here without answering: it is logged as
    /// missed (when it is still ringing). Nothing is sent.
    pub fn call_rang_out(&mut self, conv: &ChannelId, call: CallId) {
        self.settle_call(conv, call, CallOutcome::Missed);
    }

    /// A call signal arrived from `sender` (a member's verified device).
    pub(super) fn apply_call(
        &mut self,
        conv: &ChannelId,
        sender: &DeviceAddress,
        signal: CallSignal,
        server_time: u64,
        now: u64,
    ) -> Result<(), EngineError> {
        let stale = server_time != 0 && now.saturating_sub(server_time) > RING_TIMEOUT_MS;
        let from_me = sender.user == *self.user();
        let call = signal.call();
        let to_me = signal.to().is_some_and(|to| to.user == *self.user());
        match &signal {
            CallSignal::Offer { video, restart: false, .. } if to_me => {
                let at = if server_time != 0 { server_time } else { now };
                self.open_call_entry(conv, call, *video, sender, false, at, stale)
            }
            // Another device of this user answered or declined: the call is settled here too.
            CallSignal::Answer { .. } if from_me => self.settle_call(conv, call, CallOutcome::Answered),
            CallSignal::Decline { .. } if from_me => self.settle_call(conv, call, CallOutcome::Declined),
            CallSignal::Answer { .. } if to_me => self.settle_call(conv, call, CallOutcome::Answered),
            CallSignal::Decline { .. } if to_me && self.is_direct(conv) => {
                self.settle_call(conv, call, CallOutcome::Declined)
            }
            // The caller gave up before anyone here answered.
            CallSignal::Hangup { .. } if self.call_caller(conv, call).as_ref() == Some(sender) => {
                self.settle_call(conv, call, CallOutcome::Missed)
            }
            _ => {}
        }
        if !stale {
            self.events.push(Event::Call { conv: conv.clone(), from: sender.clone(), signal });
        }
        Ok(())
    }

    /// Adds the call's history entry unless it has one; `missed` logs it as missed at once.
    #[allow(clippy::too_many_arguments)]
    fn open_call_entry(
        &mut self,
        conv: &ChannelId,
        call: CallId,
        video: bool,
        caller: &DeviceAddress,
        outgoing: bool,
        at: u64,
        missed: bool,
    ) {
        if !self.conversations.contains_key(conv) || self.message_by_id(conv, &MessageId(call.0)).is_some() {
            return;
        }
        let outcome = if missed { CallOutcome::Missed } else { CallOutcome::Ringing };
        let entry = Message {
            id: MessageId(call.0),
            index: 0,
            sender: caller.user.clone(),
            sender_device: caller.device,
            outgoing,
            sent_at: at,
            server_time: 0,
            content: Content::Call { call, video, outcome },
            status: if outgoing { Status::Sent } else { Status::Received },
            delivered_to: vec![],
            read_by: vec![],
            edited: false,
            reactions: Default::default(),
            expires_at: None,
        };
        self.append(conv, entry, missed && !outgoing);
    }

    /// Moves a ringing call's entry to `outcome` (a settled call stays as it is). A missed
    /// incoming call counts as unread.
    fn settle_call(&mut self, conv: &ChannelId, call: CallId, outcome: CallOutcome) {
        let Some(index) = self.message_by_id(conv, &MessageId(call.0)).map(|m| m.index) else { return };
        let ringing = matches!(
            self.message(conv, index).map(|m| &m.content),
            Some(Content::Call { outcome: CallOutcome::Ringing, .. })
        );
        if !ringing {
            return;
        }
        let mut unread = false;
        if let Some(m) = self.message_mut(conv, index) {
            if let Content::Call { outcome: o, .. } = &mut m.content {
                *o = outcome.clone();
            }
            unread = outcome == CallOutcome::Missed && !m.outgoing;
        }
        if unread {
            if let Some(c) = self.conversations.get_mut(conv) {
                c.unread += 1;
                self.events.push(Event::ConversationChanged(conv.clone()));
            }
        }
    }

    /// Who started the call, from its entry.
    fn call_caller(&self, conv: &ChannelId, call: CallId) -> Option<DeviceAddress> {
        self.message_by_id(conv, &MessageId(call.0))
            .map(|m| DeviceAddress { user: m.sender.clone(), device: m.sender_device })
    }

    fn is_direct(&self, conv: &ChannelId) -> bool {
        self.conversations.get(conv).is_some_and(|c| c.members.len() <= 2)
    }
}

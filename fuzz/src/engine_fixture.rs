//! The engine the `engine_intake` target feeds: Alice in a group with Bob, prepared once with
//! the public API as the engine tests do, plus valid messages Bob wrote that Alice has not
//! processed yet (texts, a receipt, commits that add, remove or update, Welcomes). Each fuzz
//! input starts from Alice's stored state and delivers envelopes built from these messages,
//! mutated, or from raw bytes.

use std::collections::BTreeMap;

use qpq_core::{ConversationKind, Engine, OutboundOp, OutboundResult};
use qpq_proto::{ChannelId, DeviceAddress, Envelope, EnvelopeKind};

use crate::support::{SimClient, SimServer};

/// A valid message for Alice, as Bob's engine wrote it.
#[derive(Clone, Debug)]
pub struct Base {
    /// What it is (for reports).
    pub name: &'static str,
    /// The envelope kind the server would give it.
    pub kind: EnvelopeKind,
    /// The channel it belongs to.
    pub channel: ChannelId,
    /// The MLS message.
    pub payload: Vec<u8>,
    /// Whether Alice must accept it when it is the first thing she receives, unchanged.
    pub valid_first: bool,
    /// A text Alice must then show, if any.
    pub shows: Option<&'static str>,
}

/// Alice's stored state and the messages waiting for her.
#[derive(Clone, Debug)]
pub struct EngineFixture {
    /// Alice's key–value store.
    pub store: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The conversation Alice is in.
    pub conv: ChannelId,
    /// A second group Bob created with Alice; she has its Welcome but has not processed it.
    pub other_conv: ChannelId,
    /// Bob's device.
    pub bob: DeviceAddress,
    /// Alice's cursor: envelopes must have a larger sequence number.
    pub cursor: u64,
    /// The virtual time.
    pub now: u64,
    /// Valid messages for Alice.
    pub bases: Vec<Base>,
}

/// The next outbound call that is not a GroupInfo hand-in (those are taken as accepted).
fn next_call(c: &mut SimClient, s: &SimServer) -> qpq_core::Outbound {
    loop {
        let out = c.engine.next_outbound(s.time).expect("something to send");
        if !matches!(out.op, OutboundOp::PutGroupInfo { .. }) {
            return out;
        }
        c.engine.outbound_result(out.id, OutboundResult::Accepted { server_time: s.time }, s.time);
    }
}

fn enqueue_payload(c: &mut SimClient, s: &mut SimServer) -> Vec<u8> {
    let out = next_call(c, s);
    c.persist();
    let OutboundOp::Enqueue { payload, .. } = out.op.clone() else { panic!("expected an application message: {:?}", out.op) };
    c.engine.outbound_result(out.id, OutboundResult::Accepted { server_time: s.time }, s.time);
    c.persist();
    payload
}

fn commit_payload(c: &mut SimClient, s: &SimServer, accept: bool) -> (Vec<u8>, Vec<u8>) {
    let out = next_call(c, s);
    c.persist();
    let OutboundOp::Commit { commit, welcome, .. } = out.op.clone() else { panic!("expected a commit: {:?}", out.op) };
    if accept {
        c.engine.outbound_result(out.id, OutboundResult::Accepted { server_time: s.time }, s.time);
        c.persist();
    }
    (commit, welcome)
}

impl EngineFixture {
    /// Builds the fixture (about a second in a debug build).
    pub fn build() -> Self {
        let mut s = SimServer::default();
        let mut alice = SimClient::new(&mut s, "alice", 1);
        let mut bob = SimClient::new(&mut s, "bob", 2);
        let carol = SimClient::new(&mut s, "carol", 3);
        let conv = bob.start(&mut s, ConversationKind::Group, "fuzz", &[&alice]);
        alice.sync(&mut s);
        bob.send(&mut s, &conv, "hello alice");
        alice.sync(&mut s);
        // Bob's second group with Alice: its Welcome waits in her queue.
        let other_conv = bob.start(&mut s, ConversationKind::Group, "other", &[&alice]);
        let welcome_other = s
            .fetch(&alice.addr(), alice.engine.cursor())
            .into_iter()
            .find(|e| e.kind == EnvelopeKind::Welcome && e.channel == other_conv)
            .expect("a Welcome for alice");
        alice.send(&mut s, &conv, "hello bob");
        bob.sync(&mut s); // Bob now owes Alice a receipt.
        alice.persist();
        let store = alice.store.clone();
        let cursor = alice.engine.cursor();

        let mut bases = Vec::new();
        let mut base = |name, kind, channel: &ChannelId, payload, valid_first, shows| {
            bases.push(Base { name, kind, channel: channel.clone(), payload, valid_first, shows })
        };
        // The text is queued first; the receipt is queued when the outbox is next read.
        bob.engine.send_text(&conv, "fuzz text 1", None, s.time).expect("send");
        let text1 = enqueue_payload(&mut bob, &mut s);
        base("text", EnvelopeKind::Application, &conv, text1, true, Some("fuzz text 1"));
        let receipt = enqueue_payload(&mut bob, &mut s);
        base("receipt", EnvelopeKind::Application, &conv, receipt, true, None);
        let reply_to = bob
            .engine
            .history(&conv)
            .iter()
            .rev()
            .find(|m| !m.outgoing && matches!(m.content, qpq_core::Content::Text { .. }))
            .map(|m| m.id);
        bob.engine.send_text(&conv, "fuzz reply", reply_to, s.time).expect("send");
        let reply = enqueue_payload(&mut bob, &mut s);
        base("reply", EnvelopeKind::Application, &conv, reply, true, Some("fuzz reply"));
        // Bob's state before any commit: every commit below starts from it.
        let before_commits = bob.store.clone();
        let restore = |bob: &mut SimClient| {
            bob.store = before_commits.clone();
            bob.reload();
        };

        bob.add(&mut s, &conv, &[&carol]);
        let (add, carol_welcome) = commit_payload(&mut bob, &s, false);
        base("commit adding carol", EnvelopeKind::Commit, &conv, add, true, None);
        base("welcome for carol", EnvelopeKind::Welcome, &conv, carol_welcome, false, None);
        restore(&mut bob);

        bob.engine.remove_members(&conv, vec![alice.user()]).expect("remove");
        let (remove, _) = commit_payload(&mut bob, &s, false);
        base("commit removing alice", EnvelopeKind::Commit, &conv, remove, true, None);
        restore(&mut bob);

        bob.engine.update_keys(&conv).expect("update");
        let (update, _) = commit_payload(&mut bob, &s, true);
        base("self-update commit", EnvelopeKind::Commit, &conv, update, true, None);
        bob.engine.send_text(&conv, "fuzz after update", None, s.time).expect("send");
        let after = enqueue_payload(&mut bob, &mut s);
        base("text after the update", EnvelopeKind::Application, &conv, after, false, None);
        restore(&mut bob);

        base("welcome to another group", EnvelopeKind::Welcome, &other_conv, welcome_other.payload, true, None);
        bob.engine.send_text(&other_conv, "fuzz in other", None, s.time).expect("send");
        let in_other = loop {
            let out = bob.engine.next_outbound(s.time).expect("something to send");
            bob.persist();
            let r = OutboundResult::Accepted { server_time: s.time };
            bob.engine.outbound_result(out.id, r, s.time);
            if let OutboundOp::Enqueue { channel, payload, .. } = out.op {
                if channel == other_conv {
                    break payload;
                }
            }
        };
        base("text in the other group", EnvelopeKind::Application, &other_conv, in_other, false, None);

        EngineFixture { store, conv, other_conv, bob: bob.addr(), cursor, now: s.time + 1000, bases }
    }

    /// Alice's engine as stored.
    pub fn alice(&self) -> Engine {
        Engine::load(self.store.clone(), [7; 32]).expect("the fixture's state loads")
    }

    /// An envelope from Bob as the server would deliver it.
    pub fn envelope(&self, seq: u64, kind: EnvelopeKind, channel: ChannelId, payload: Vec<u8>) -> Envelope {
        Envelope { seq, channel, kind, payload, server_time: self.now, expires_at: 0 }
    }
}

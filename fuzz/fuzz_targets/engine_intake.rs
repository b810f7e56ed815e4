//! `Engine::receive` on hostile envelopes: Alice, in a group with Bob (prepared once, see
//! `qpq_fuzz::engine_fixture`), receives up to four envelopes of any kind, for her
//! conversation, another one, an unknown or a malformed channel id, carrying raw bytes or one of
//! Bob's valid messages with mutations. After each, she does what a shell does (collects the
//! changeset, sends what is ready). It must never panic; failures are typed `EngineError`s; an
//! unchanged valid message received first is accepted; and what she stored loads back into
//! the same state.
//!
//! Input, per envelope: a header byte (bits 0–1 kind, 2–3 channel choice, 4–7 source: 0 raw,
//! n a valid message), then for raw a u16 length and the bytes, for a valid message a count
//! of 4-byte mutations (op, position u16, value); channel choice 3 reads a length and the id.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qpq_core::{Changeset, Content, Engine, OutboundResult};
use qpq_fuzz::engine_fixture::{Base, EngineFixture};
use qpq_proto::{ChannelId, EnvelopeKind};

static FIXTURE: OnceLock<EngineFixture> = OnceLock::new();

const MAX_ENVELOPES: usize = 4;

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

fn mutate(p: &mut Vec<u8>, m: &[u8]) {
    let [op, lo, hi, val] = [0, 1, 2, 3].map(|i| m.get(i).copied().unwrap_or(0));
    let pos = usize::from(u16::from_le_bytes([lo, hi])) % (p.len() + 1);
    match op % 5 {
        0 if pos < p.len() => p[pos] ^= val | 1,
        1 => p.truncate(pos),
        2 => p.insert(pos, val),
        3 if pos < p.len() => {
            p.remove(pos);
        }
        4 if pos < p.len() => p[pos] = val,
        _ => {}
    }
}

fn apply(store: &mut BTreeMap<Vec<u8>, Vec<u8>>, cs: Changeset) {
    for (k, v) in cs.puts {
        store.insert(k, v);
    }
    for k in cs.deletes {
        store.remove(&k);
    }
}

fuzz_target!(init: {
    let fx = FIXTURE.get_or_init(EngineFixture::build);
    qpq_fuzz::seeds::write_if_asked(|| qpq_fuzz::seeds::engine_intake(fx.bases.len()));
}, |data: &[u8]| {
    let fx = FIXTURE.get_or_init(EngineFixture::build);
    let mut alice = fx.alice();
    let mut store = fx.store.clone();
    let mut input = Input(data);
    let mut seq = fx.cursor;
    for i in 0..MAX_ENVELOPES {
        let Some(h) = input.byte() else { break };
        let kind = [EnvelopeKind::Application, EnvelopeKind::Commit, EnvelopeKind::Welcome, EnvelopeKind::Proposal]
            [usize::from(h & 3)];
        let choice = (h >> 2) & 3;
        let source = h >> 4;
        let (payload, base): (Vec<u8>, Option<&Base>) = if source == 0 {
            let len = input.bytes(2);
            let len = usize::from(u16::from_le_bytes([len.first().copied().unwrap_or(0), len.get(1).copied().unwrap_or(0)]));
            (input.bytes(len).to_vec(), None)
        } else {
            let b = &fx.bases[usize::from(source - 1) % fx.bases.len()];
            let mut p = b.payload.clone();
            let n = input.byte().unwrap_or(0) % 8;
            for _ in 0..n {
                mutate(&mut p, input.bytes(4));
            }
            (p, Some(b).filter(|_| n == 0))
        };
        // Raw bytes also arrive as the node's `Devices` hint (whose payload names a member) and
        // its `Account` hint (empty from an honest node).
        let kind = match payload.first() {
            Some(b) if source == 0 && kind == EnvelopeKind::Proposal && b & 3 == 3 => EnvelopeKind::Account,
            Some(b) if source == 0 && kind == EnvelopeKind::Proposal && b & 1 == 1 => EnvelopeKind::Devices,
            _ => kind,
        };
        let natural = base.map(|b| b.channel.clone()).unwrap_or_else(|| fx.conv.clone());
        let channel = match choice {
            0 => natural,
            1 => if natural == fx.conv { fx.other_conv.clone() } else { fx.conv.clone() },
            2 => ChannelId::from_slice(&[0xab; 16]).expect("a valid channel id"),
            _ => {
                let n = usize::from(input.byte().unwrap_or(0) % 40);
                ChannelId::from_slice(input.bytes(n)).unwrap_or(natural)
            }
        };
        seq += 1;
        let env = fx.envelope(seq, kind, channel, payload);
        let r = alice.receive(&env, fx.now);
        if let Err(e) = &r {
            assert!(!e.code().is_empty() && !e.to_string().is_empty());
        }
        if let (0, 0, Some(b)) = (i, choice, base) {
            if b.valid_first && (kind == EnvelopeKind::Welcome) == (b.kind == EnvelopeKind::Welcome) {
                assert!(r.is_ok(), "Bob's valid message '{}' was refused: {r:?}", b.name);
                if let Some(text) = b.shows {
                    let last = alice.history(&env.channel).last().map(|m| m.content.clone());
                    assert_eq!(last, Some(Content::Text { text: text.into(), reply_to: last_reply(&last) }));
                }
            }
        }
        apply(&mut store, alice.take_changes());
        // What a shell does after each step: send what is ready (the server accepts it).
        for _ in 0..8 {
            let Some(out) = alice.next_outbound(fx.now) else { break };
            apply(&mut store, alice.take_changes());
            alice.outbound_result(out.id, OutboundResult::Accepted { server_time: fx.now }, fx.now);
            apply(&mut store, alice.take_changes());
        }
    }
    let _ = alice.drain_events();
    // What she stored is what she holds.
    let again = Engine::load(store, [8; 32]).expect("the engine's own stored state loads");
    assert_eq!(again.cursor(), alice.cursor());
    assert_eq!(again.conversations(), alice.conversations());
    assert_eq!(again.outbox_len(), alice.outbox_len());
    for c in alice.conversation_ids() {
        assert_eq!(again.history(&c), alice.history(&c));
        assert_eq!(again.epoch_authenticator(&c), alice.epoch_authenticator(&c));
    }
});

fn last_reply(c: &Option<Content>) -> Option<qpq_core::MessageId> {
    match c {
        Some(Content::Text { reply_to, .. }) => *reply_to,
        _ => None,
    }
}

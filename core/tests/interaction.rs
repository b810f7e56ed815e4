//! Interaction fuzz of the engine: seeded random runs of 3–6 clients in one group over the
//! simulated delivery service, with the faults a real deployment has — lost replies (the
//! client retries later), crashes between storing and sending, reloads from stored state,
//! clients offline for many steps, envelopes delivered twice, application messages reordered
//! within the sender-ratchet window, and, as a hostile server would, ciphertext leaked to
//! devices that are not members of its epoch. One member, Mallory, is hostile: she speaks MLS
//! without the engine's checks and edits or deletes other people's texts, commits a leaf that
//! claims to be another member's device with her own key, or swaps her leaf's signature key for
//! one the directory does not know. Honest members refuse her commits (after which she has
//! forked away and falls silent) and never show her edits.
//!
//! After every step: members in the same epoch have equal epoch authenticators (globally, over
//! the whole run); no client shows a text twice or a text nobody sent; no client shows a text
//! routed to it only as a leak. After the run, everyone comes online and catches up; then
//! every member agrees with the server on epoch, members and epoch authenticator, every
//! outbox is empty (the server's epoch counts the commits they refused), and every text reached every device the server routed it to, unless
//! that device could not have decrypted it (it joined later, or was more than
//! `MAX_PAST_EPOCHS` behind) — in which case it failed with a typed error.
//!
//! Reproducible: the seed decides every choice. A failure prints the seed and the last steps.
//! `QPQ_INTERACTION_SEED=n` reruns one seed (printing every step), `QPQ_INTERACTION_SEEDS`,
//! `QPQ_INTERACTION_FIRST_SEED` and `QPQ_INTERACTION_STEPS` change how many runs of how many
//! steps (default 64 × 200: about 45 s of CPU in a debug build, where every MLS message
//! re-serialises the group's message secrets; `cargo test --release` is about ten times
//! faster), `QPQ_INTERACTION_THREADS` how many threads (default 2), and
//! `QPQ_INTERACTION_TIMES=1` prints each seed's time.

mod support;
#[path = "support/hostile.rs"]
mod hostile;
#[path = "support/hostile_sim.rs"]
mod hostile_sim;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{MlsMessageIn, ProtocolMessage};
use qpq_core::{
    Content, ConversationKind, EngineError, MessageId, OutboundOp, OutboundResult, Status, MAX_PAST_EPOCHS,
};
use qpq_types::{ChannelId, EnvelopeKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use hostile::Hostile;
use hostile_sim::{hostile_call, hostile_sync};
use support::{SimClient, SimServer};

/// How many trace lines a failure report shows.
const TRACE_TAIL: usize = 80;

thread_local! {
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static VERBOSE: RefCell<bool> = const { RefCell::new(false) };
}

fn trace(line: String) {
    if VERBOSE.with(|v| *v.borrow()) {
        eprintln!("{line}");
    }
    TRACE.with(|t| t.borrow_mut().push(line));
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A text as its author wrote it.
#[derive(Clone, Debug)]
struct Sent {
    author: usize,
    text: String,
}

/// The outcome of processing one envelope.
#[derive(Clone, Debug)]
struct Intake {
    result: Result<(), EngineError>,
    /// Texts that appeared because of it.
    shown: Vec<MessageId>,
    /// For application messages that the client must be able to decrypt (a member of the
    /// message's epoch since before it, at most `MAX_PAST_EPOCHS` behind): true.
    must_decrypt: bool,
}

struct Client {
    sim: SimClient,
    /// Offline (neither sends nor receives) until this step.
    offline_until: usize,
    /// The epoch of this client's latest Welcome to the conversation.
    joined_at: Option<u64>,
}

struct World {
    rng: StdRng,
    s: SimServer,
    clients: Vec<Client>,
    conv: ChannelId,
    /// The hostile member, and whether a commit of hers was accepted (she has forked away).
    mallory: Hostile,
    mallory_forked: bool,
    /// The honest MLS epoch in which Mallory's commit was accepted: the server's epochs of
    /// later MLS epochs are one higher.
    fork_at: Option<u64>,
    step: usize,
    sent: BTreeMap<MessageId, Sent>,
    /// Application payloads whose text is known (from the author's status change).
    payload_text: BTreeMap<Vec<u8>, MessageId>,
    /// (client, seq) → what happened when the client processed that envelope (the last time).
    intake: BTreeMap<(usize, u64), Intake>,
    /// (client, seq) of envelopes that are copies of routed ones (duplicates).
    copies: BTreeSet<(usize, u64)>,
    /// (client, seq) of envelopes leaked to a device that was not a member of their epoch.
    leaks: BTreeSet<(usize, u64)>,
    /// Epoch → epoch authenticator, as first seen.
    auths: BTreeMap<u64, Vec<u8>>,
    counts: BTreeMap<&'static str, u64>,
}

fn epoch_of(payload: &[u8]) -> Option<u64> {
    let m = MlsMessageIn::tls_deserialize_exact(payload).ok()?;
    let pm: ProtocolMessage = m.try_into_protocol_message().ok()?;
    Some(pm.epoch().as_u64())
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = 3 + (seed % 4) as usize;
        let mut s = SimServer::default();
        let mut clients: Vec<Client> = (0..n)
            .map(|i| Client {
                sim: SimClient::new(&mut s, &format!("u{i}"), (seed as u8).wrapping_mul(31).wrapping_add(i as u8 + 1)),
                offline_until: 0,
                joined_at: None,
            })
            .collect();
        // u0 creates the group with a random non-empty subset of the others.
        let mut initial: Vec<usize> = (1..n).filter(|_| rng.gen_bool(0.6)).collect();
        if initial.is_empty() {
            initial.push(1);
        }
        let (first, rest) = clients.split_at_mut(1);
        let others: Vec<&SimClient> = initial.iter().map(|&i| &rest[i - 1].sim).collect();
        let conv = first[0].sim.start(&mut s, ConversationKind::Group, "fuzz", &others);
        clients[0].joined_at = Some(0);
        let mallory = hostile_sim::hostile_member(&mut s, "mallory", 200);
        let u0 = &mut clients[0].sim;
        u0.learn(&s, &mallory.addr.user);
        let packages = s.claim(&mallory.addr.user, &u0.addr());
        u0.engine.add_members(&conv, packages).expect("u0 adds mallory");
        u0.persist();
        u0.pump(&mut s);
        trace(format!("seed {seed}: {n} clients, u0 creates the group with {initial:?} and mallory"));
        World {
            rng,
            s,
            clients,
            conv,
            mallory,
            mallory_forked: false,
            fork_at: None,
            step: 0,
            sent: BTreeMap::new(),
            payload_text: BTreeMap::new(),
            intake: BTreeMap::new(),
            copies: BTreeSet::new(),
            leaks: BTreeSet::new(),
            auths: BTreeMap::new(),
            counts: BTreeMap::new(),
        }
    }

    /// The server's epoch of honest MLS epoch `mls` (they differ once Mallory's commit took
    /// a server epoch that honest members refused).
    fn server_epoch(&self, mls: u64) -> u64 {
        mls + u64::from(self.fork_at.is_some_and(|f| mls > f))
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    fn online(&self, c: usize) -> bool {
        self.clients[c].offline_until <= self.step
    }

    fn active(&self, c: usize) -> bool {
        self.clients[c].sim.engine.conversation(&self.conv).is_some_and(|cv| cv.active)
    }

    fn pick(&mut self, from: &[usize]) -> Option<usize> {
        if from.is_empty() {
            None
        } else {
            Some(from[self.rng.gen_range(0..from.len())])
        }
    }

    fn online_clients(&self) -> Vec<usize> {
        (0..self.clients.len()).filter(|&c| self.online(c)).collect()
    }

    fn active_online(&self) -> Vec<usize> {
        (0..self.clients.len()).filter(|&c| self.online(c) && self.active(c)).collect()
    }

    // --- actions --------------------------------------------------------------------------

    fn step_once(&mut self) {
        self.step += 1;
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=21 => self.act_send(),
            22..=36 => {
                if let Some(c) = self.pick(&self.online_clients()) {
                    self.pump(c, 0.15, 0.05, 0.05);
                }
            }
            37..=56 => {
                if let Some(c) = self.pick(&self.online_clients()) {
                    self.sync(c, 0.03);
                }
            }
            57..=61 => self.act_add(),
            62..=65 => self.act_remove(),
            66..=69 => self.act_update(),
            70..=73 => self.act_offline(),
            74..=77 => self.act_duplicate(),
            78..=81 => self.act_reorder(),
            82..=85 => {
                let c = self.rng.gen_range(0..self.clients.len());
                trace(format!("{}: u{c} reloads from its store", self.step));
                self.clients[c].sim.reload();
                self.count("reload");
            }
            86..=88 => self.act_leak(),
            89..=91 => self.act_hostile(),
            _ => {
                // A client comes back early.
                if let Some(c) = (0..self.clients.len()).find(|&c| !self.online(c)) {
                    trace(format!("{}: u{c} comes back online", self.step));
                    self.clients[c].offline_until = self.step;
                }
            }
        }
    }

    fn act_send(&mut self) {
        let Some(c) = self.pick(&self.active_online()) else { return };
        let text = format!("t{}-u{c}", self.step);
        let now = self.s.time;
        let id = self.clients[c].sim.engine.send_text(&self.conv, &text, None, now).expect("an active member can send");
        self.clients[c].sim.persist();
        trace(format!("{}: u{c} writes {text:?}", self.step));
        self.sent.insert(id, Sent { author: c, text });
        self.count("text");
        if self.rng.gen_bool(0.5) {
            self.pump(c, 0.15, 0.05, 0.05);
        }
    }

    fn act_add(&mut self) {
        let Some(c) = self.pick(&self.active_online()) else { return };
        let members = self.clients[c].sim.engine.conversation(&self.conv).expect("active").members.clone();
        let candidates: Vec<usize> =
            (0..self.clients.len()).filter(|&o| !members.contains(&self.clients[o].sim.user())).collect();
        let Some(o) = self.pick(&candidates) else { return };
        let user = self.clients[o].sim.user();
        let (ik, recs) = self.s.identities.get(&user).expect("registered").clone();
        self.clients[c].sim.engine.learn_devices(&user, &ik, &recs, self.s.time).expect("valid records");
        let addr = self.clients[c].sim.addr();
        let packages = self.s.claim(&user, &addr);
        if packages.is_empty() {
            trace(format!("{}: u{c} finds no key package of u{o}", self.step));
            return;
        }
        let r = self.clients[c].sim.engine.add_members(&self.conv, packages);
        self.clients[c].sim.persist();
        trace(format!("{}: u{c} adds u{o}: {r:?}", self.step));
        self.count("add");
    }

    fn act_remove(&mut self) {
        let Some(c) = self.pick(&self.active_online()) else { return };
        let me = self.clients[c].sim.user();
        let members = self.clients[c].sim.engine.conversation(&self.conv).expect("active").members.clone();
        let candidates: Vec<usize> = (0..self.clients.len())
            .filter(|&o| {
                let u = self.clients[o].sim.user();
                u != me && members.contains(&u)
            })
            .collect();
        let Some(o) = self.pick(&candidates) else { return };
        let user = self.clients[o].sim.user();
        let r = self.clients[c].sim.engine.remove_members(&self.conv, vec![user]);
        self.clients[c].sim.persist();
        trace(format!("{}: u{c} removes u{o}: {r:?}", self.step));
        self.count("remove");
    }

    fn act_update(&mut self) {
        let Some(c) = self.pick(&self.active_online()) else { return };
        let r = self.clients[c].sim.engine.update_keys(&self.conv);
        self.clients[c].sim.persist();
        trace(format!("{}: u{c} updates its keys: {r:?}", self.step));
        r.expect("an active member can update its keys");
        self.count("update");
    }

    fn act_offline(&mut self) {
        let Some(c) = self.pick(&self.online_clients()) else { return };
        let steps = self.rng.gen_range(5..80);
        self.clients[c].offline_until = self.step + steps;
        trace(format!("{}: u{c} goes offline for {steps} steps", self.step));
        self.count("offline");
    }

    /// The server delivers an envelope of a client's queue once more, under a new number.
    fn act_duplicate(&mut self) {
        let c = self.rng.gen_range(0..self.clients.len());
        let addr = self.clients[c].sim.addr();
        let q = self.s.fetch(&addr, 0);
        if q.is_empty() {
            return;
        }
        let e = q[self.rng.gen_range(0..q.len())].clone();
        let sender = self.s.sent_by[&(addr.clone(), e.seq)].clone();
        let seq = self.s.deliver(&addr, &e.channel, &sender, e.kind, &e.payload);
        self.copies.insert((c, seq));
        trace(format!("{}: the server delivers u{c}'s #{} ({:?}) again as #{seq}", self.step, e.seq, e.kind));
        self.count("duplicate");
    }

    /// Swaps two adjacent unprocessed application messages of a client's queue with no
    /// handshake message between them (as two sends racing to the server would arrive).
    fn act_reorder(&mut self) {
        let c = self.rng.gen_range(0..self.clients.len());
        let addr = self.clients[c].sim.addr();
        let cursor = self.clients[c].sim.engine.cursor();
        let Some(q) = self.s.queues.get_mut(&addr) else { return };
        let pending: Vec<usize> = (0..q.len()).filter(|&i| q[i].seq > cursor).collect();
        let pairs: Vec<(usize, usize)> = pending
            .windows(2)
            .map(|w| (w[0], w[1]))
            .filter(|&(a, b)| q[a].kind == EnvelopeKind::Application && q[b].kind == EnvelopeKind::Application)
            // Only messages as routed: a copy or a leak swapped ahead of its original would
            // not be a reordering the server could do.
            .filter(|&(a, b)| {
                [q[a].seq, q[b].seq].iter().all(|s| !self.copies.contains(&(c, *s)) && !self.leaks.contains(&(c, *s)))
            })
            .collect();
        if pairs.is_empty() {
            return;
        }
        let (a, b) = pairs[self.rng.gen_range(0..pairs.len())];
        let (sa, sb) = (q[a].seq, q[b].seq);
        let (pa, pb) = (q[a].payload.clone(), q[b].payload.clone());
        q[a].payload = pb;
        q[b].payload = pa;
        let (ka, kb) = ((addr.clone(), sa), (addr.clone(), sb));
        let (da, db) = (self.s.sent_by[&ka].clone(), self.s.sent_by[&kb].clone());
        self.s.sent_by.insert(ka, db);
        self.s.sent_by.insert(kb, da);
        // Keep the records of where each message went right.
        for f in self.s.fanout.iter_mut() {
            for (d, seq) in f.to.iter_mut() {
                if *d == addr && *seq == sa {
                    *seq = sb;
                } else if *d == addr && *seq == sb {
                    *seq = sa;
                }
            }
        }
        trace(format!("{}: u{c}'s #{sa} and #{sb} swap places", self.step));
        self.count("reorder");
    }

    /// A hostile server hands an application message to a device that was not a member of
    /// the epoch it was sent in.
    fn act_leak(&mut self) {
        if self.s.fanout.is_empty() {
            return;
        }
        let f = self.s.fanout[self.rng.gen_range(0..self.s.fanout.len())].clone();
        let Some(epoch) = epoch_of(&f.payload) else { return };
        let members = self.s.epoch_members.get(&(f.channel.clone(), self.server_epoch(epoch))).cloned().unwrap_or_default();
        let outsiders: Vec<usize> = (0..self.clients.len()).filter(|&c| !members.contains(&self.clients[c].sim.addr())).collect();
        let Some(c) = self.pick(&outsiders) else { return };
        let addr = self.clients[c].sim.addr();
        let seq = self.s.deliver(&addr, &f.channel, &f.sender, EnvelopeKind::Application, &f.payload);
        self.leaks.insert((c, seq));
        trace(format!("{}: the server leaks a message of epoch {epoch} to u{c} as #{seq}", self.step));
        self.count("leak");
    }

    /// Mallory catches up and then misbehaves once.
    fn act_hostile(&mut self) {
        if self.mallory_forked {
            return;
        }
        hostile_sync(&self.s, &mut self.mallory);
        if !self.mallory.groups.contains_key(&self.conv) {
            return;
        }
        let epoch = self.s.epoch(&self.conv);
        match self.rng.gen_range(0..4) {
            0 | 1 => {
                let victim = {
                    let members: Vec<_> = self.s.channels[&self.conv]
                        .members
                        .iter()
                        .filter(|d| **d != self.mallory.addr)
                        .cloned()
                        .collect();
                    if members.is_empty() {
                        return;
                    }
                    members[self.rng.gen_range(0..members.len())].clone()
                };
                let (what, out) = if self.rng.gen_bool(0.5) {
                    ("a forged leaf for another member", self.mallory.forged_add(&self.conv, epoch, &victim))
                } else {
                    ("a swapped signature key", self.mallory.key_swap(&self.conv, epoch))
                };
                let before = self.mallory.groups[&self.conv].epoch().as_u64();
                let accepted = hostile_call(&mut self.s, &mut self.mallory, out);
                if accepted {
                    self.fork_at = Some(before);
                }
                trace(format!("{}: mallory commits {what}: {}", self.step, if accepted { "accepted" } else { "refused" }));
                self.mallory_forked |= accepted;
                self.count("hostile commit");
            }
            _ => {
                let theirs: Vec<MessageId> = self.sent.keys().copied().collect();
                let Some(target) = theirs.get(self.rng.gen_range(0..theirs.len().max(1))).copied() else { return };
                let body = if self.rng.gen_bool(0.5) {
                    qpq_core::Body::Edit { target, text: "forged".into() }
                } else {
                    qpq_core::Body::Delete { target }
                };
                let out = self.mallory.message(&self.conv, body, self.s.time);
                hostile_call(&mut self.s, &mut self.mallory, out);
                trace(format!("{}: mallory edits or deletes someone else's text", self.step));
                self.count("hostile edit");
            }
        }
    }

    /// Sends what the client's outbox has ready. `lose`: the reply is lost; `crash`: the
    /// client stops after storing but before sending, and restarts; `drop`: the request
    /// never arrives.
    /// Returns whether anything reached the server.
    fn pump(&mut self, c: usize, lose: f64, crash: f64, drop: f64) -> bool {
        let mut sent = false;
        for _ in 0..100 {
            let now = self.s.time;
            let next = self.clients[c].sim.engine.next_outbound(now);
            self.clients[c].sim.persist();
            let Some(out) = next else { return sent };
            if self.rng.gen_bool(crash) {
                trace(format!("{}: u{c} crashes before sending {}", self.step, op_name(&out.op)));
                self.clients[c].sim.reload();
                self.count("crash before send");
                return sent;
            }
            if self.rng.gen_bool(drop) {
                trace(format!("{}: u{c}'s {} is lost on the way", self.step, op_name(&out.op)));
                self.count("lost request");
                return sent;
            }
            let sending: Vec<MessageId> = self.clients[c]
                .sim
                .engine
                .history(&self.conv)
                .iter()
                .filter(|m| m.outgoing && m.status == Status::Sending)
                .map(|m| m.id)
                .collect();
            self.s.lose_next_reply = self.rng.gen_bool(lose);
            let addr = self.clients[c].sim.addr();
            let reply = self.s.handle(&addr, &out);
            sent = true;
            let Some(result) = reply else {
                trace(format!("{}: u{c} sends {}; the reply is lost", self.step, op_name(&out.op)));
                self.count("lost reply");
                return sent;
            };
            trace(format!("{}: u{c} sends {}: {}", self.step, op_name(&out.op), result_name(&result)));
            self.clients[c].sim.engine.outbound_result(out.id, result.clone(), self.s.time);
            self.clients[c].sim.persist();
            if let (OutboundOp::Enqueue { payload, .. }, OutboundResult::Accepted { .. }) = (&out.op, &result) {
                let engine = &self.clients[c].sim.engine;
                for id in sending {
                    let sent_now = engine
                        .history(&self.conv)
                        .iter()
                        .any(|m| m.id == id && matches!(m.status, Status::Sent | Status::Delivered));
                    if sent_now {
                        self.payload_text.insert(payload.clone(), id);
                    }
                }
            }
        }
        sent
    }

    /// Processes the client's queue. With probability `crash` per envelope, the client
    /// crashes after processing it but before storing the result, and restarts.
    /// Returns how many envelopes it processed.
    fn sync(&mut self, c: usize, crash: f64) -> usize {
        let addr = self.clients[c].sim.addr();
        let envs = self.s.fetch(&addr, self.clients[c].sim.engine.cursor());
        let n = envs.len();
        for e in envs {
            let engine = &mut self.clients[c].sim.engine;
            let before = engine.history(&self.conv).len();
            let was_active = engine.conversation(&self.conv).is_some_and(|cv| cv.active);
            let result = engine.receive(&e, self.s.time);
            // A delivery naming members this client has not looked up waits for the
            // directory, which answers at once here.
            let refused = self.clients[c].sim.resolve_directory(&self.s);
            let result = match (result, refused.into_iter().next()) {
                (Ok(()), Some(err)) => Err(err),
                (r, _) => r,
            };
            let engine = &mut self.clients[c].sim.engine;
            let conv_after = engine.conversation(&self.conv).cloned();
            let shown: Vec<MessageId> = engine.history(&self.conv)[before.min(engine.history(&self.conv).len())..]
                .iter()
                .filter(|m| matches!(m.content, Content::Text { .. }))
                .map(|m| m.id)
                .collect();
            if e.kind == EnvelopeKind::Welcome && result.is_ok() && e.channel == self.conv {
                self.clients[c].joined_at = conv_after.as_ref().map(|cv| cv.epoch);
            }
            let mut must_decrypt = false;
            if e.kind == EnvelopeKind::Application
                && e.channel == self.conv
                && !self.copies.contains(&(c, e.seq))
                && self.s.sent_by.get(&(addr.clone(), e.seq)) != Some(&self.mallory.addr)
            {
                if let (Some(p), Some(cv), Some(j)) = (epoch_of(&e.payload), &conv_after, self.clients[c].joined_at) {
                    let member =
                        self.s.epoch_members.get(&(self.conv.clone(), self.server_epoch(p))).is_some_and(|m| m.contains(&addr));
                    must_decrypt = was_active && member && j <= p && p <= cv.epoch && cv.epoch - p <= MAX_PAST_EPOCHS as u64;
                }
            }
            trace(format!(
                "{}: u{c} receives #{} {:?}: {} (epoch {:?}{})",
                self.step,
                e.seq,
                e.kind,
                match &result {
                    Ok(()) => "ok".to_string(),
                    Err(err) => format!("error {}", err.code()),
                },
                conv_after.as_ref().map(|cv| cv.epoch),
                if shown.is_empty() { String::new() } else { format!(", shows {}", self.texts(&shown)) },
            ));
            for id in &shown {
                let s = self.sent.get(id).unwrap_or_else(|| panic!("u{c} shows a text nobody wrote ({id:?})"));
                let m = self.clients[c].sim.engine.history(&self.conv).iter().find(|m| m.id == *id).expect("shown");
                assert_eq!(m.content, Content::Text { text: s.text.clone(), reply_to: None }, "u{c} shows a changed text");
                assert_eq!(m.sender, self.clients[s.author].sim.user(), "u{c} shows {} under the wrong author", s.text);
                assert!(!self.leaks.contains(&(c, e.seq)), "u{c} read {:?}, leaked to it from an epoch it was not in", s.text);
                self.payload_text.insert(e.payload.clone(), *id);
            }
            if let Err(err) = &result {
                assert!(!err.code().is_empty());
                self.count("receive error");
            }
            if self.leaks.contains(&(c, e.seq)) {
                assert!(result.is_err(), "u{c} accepted a message leaked from an epoch it was not in");
            }
            self.intake.insert((c, e.seq), Intake { result, shown, must_decrypt });
            if self.rng.gen_bool(crash) {
                trace(format!("{}: u{c} crashes before storing what #{} changed", self.step, e.seq));
                self.clients[c].sim.reload();
                self.count("crash before store");
                return n;
            }
            self.clients[c].sim.persist();
        }
        // Keep key packages available, as a client does when the server says it runs low.
        if self.s.key_packages.get(&addr).map_or(0, Vec::len) < 2 {
            self.clients[c].sim.upload_key_packages(&mut self.s, 3);
        }
        n
    }

    fn texts(&self, ids: &[MessageId]) -> String {
        ids.iter().map(|id| self.sent.get(id).map_or("?".to_string(), |s| format!("{:?}", s.text))).collect::<Vec<_>>().join(", ")
    }

    // --- checks -----------------------------------------------------------------------------

    fn check_round(&mut self) {
        for c in 0..self.clients.len() {
            let e = &self.clients[c].sim.engine;
            if let Some(cv) = e.conversation(&self.conv).filter(|cv| cv.active) {
                let auth = e.epoch_authenticator(&self.conv).expect("an active conversation has a group");
                let first = self.auths.entry(cv.epoch).or_insert_with(|| auth.clone());
                assert_eq!(*first, auth, "u{c} is in epoch {} with another epoch authenticator: a fork", cv.epoch);
            }
            let mut ids = BTreeSet::new();
            for m in e.history(&self.conv) {
                if let Content::Text { text, .. } = &m.content {
                    assert!(ids.insert(m.id), "u{c} shows {text:?} twice");
                    let s = self.sent.get(&m.id).unwrap_or_else(|| panic!("u{c} shows {text:?}, which nobody wrote"));
                    assert_eq!(*text, s.text);
                }
            }
        }
    }

    /// Everyone comes online and catches up, without faults.
    fn settle(&mut self) {
        trace(format!("{}: everyone comes online and catches up", self.step));
        for c in &mut self.clients {
            c.offline_until = 0;
        }
        for round in 0..60 {
            let mut busy = false;
            for c in 0..self.clients.len() {
                busy |= self.pump(c, 0.0, 0.0, 0.0);
                busy |= self.sync(c, 0.0) > 0;
            }
            self.check_round();
            if !busy {
                trace(format!("settled after {round} rounds"));
                return;
            }
        }
        panic!("the clients did not settle in 60 rounds (an outbox or queue never drains)");
    }

    fn check_final(&self) {
        let channel = self.s.channels.get(&self.conv).expect("the channel exists");
        let mut auths = BTreeSet::new();
        for (c, cl) in self.clients.iter().enumerate() {
            let e = &cl.sim.engine;
            if e.outbox_len() != 0 {
                // What is stuck, as stored (outbox items are JSON).
                let items: Vec<String> = cl
                    .sim
                    .store
                    .iter()
                    .filter(|(k, _)| k.starts_with(b"o/"))
                    .map(|(_, v)| String::from_utf8_lossy(v).chars().take(400).collect())
                    .collect();
                panic!("u{c}'s outbox is not empty after settling: {items:?}");
            }
            let cv = e.conversation(&self.conv);
            if channel.members.contains(&cl.sim.addr()) {
                let cv = cv.unwrap_or_else(|| panic!("u{c} is a member on the server but has no conversation"));
                assert!(cv.active, "u{c} is a member on the server but thinks it was removed");
                assert_eq!(
                    cv.epoch + cv.refused_commits,
                    channel.epoch,
                    "u{c} is in epoch {} (+{} refused commits) but the server is in {}",
                    cv.epoch,
                    cv.refused_commits,
                    channel.epoch
                );
                let users: BTreeSet<_> = channel.members.iter().map(|d| d.user.clone()).collect();
                assert_eq!(cv.members.iter().cloned().collect::<BTreeSet<_>>(), users, "u{c} sees other members");
                auths.insert(e.epoch_authenticator(&self.conv).expect("group"));
            } else if let Some(cv) = cv {
                assert!(!cv.active, "u{c} was removed on the server but thinks it is a member");
            }
        }
        assert!(auths.len() <= 1, "members disagree on the epoch authenticator");

        // Every routed application message: processed by each recipient, and shown exactly
        // once when it is a text the recipient must be able to decrypt.
        for f in &self.s.fanout {
            if f.channel != self.conv {
                continue;
            }
            let text = self.payload_text.get(&f.payload);
            for (d, seq) in f.to.iter().filter(|(d, _)| *d != self.mallory.addr) {
                let c = self.clients.iter().position(|cl| cl.sim.addr() == *d).expect("a client");
                let intake = self
                    .intake
                    .get(&(c, *seq))
                    .unwrap_or_else(|| panic!("u{c} never processed #{seq} routed to it"));
                if intake.must_decrypt {
                    assert!(
                        intake.result.is_ok(),
                        "u{c} could not read #{seq} ({}) although it was a member of its epoch: {:?}",
                        text.map_or("a receipt".into(), |t| self.texts(&[*t])),
                        intake.result
                    );
                }
                if let (Some(t), Ok(())) = (text, &intake.result) {
                    assert!(intake.shown.contains(t), "u{c} accepted #{seq} ({}) but showed nothing", self.texts(&[*t]));
                    let n = cl_count(&self.clients[c].sim, &self.conv, t);
                    assert_eq!(n, 1, "u{c} processed #{seq} ({}) without error but shows it {n} times", self.texts(&[*t]));
                }
            }
        }
        // Every text the server accepted reached its author's history once, as sent.
        for (id, s) in &self.sent {
            let n = cl_count(&self.clients[s.author].sim, &self.conv, id);
            assert_eq!(n, 1, "u{} shows its own {:?} {n} times", s.author, s.text);
        }
    }
}

fn cl_count(c: &SimClient, conv: &ChannelId, id: &MessageId) -> usize {
    c.engine.history(conv).iter().filter(|m| m.id == *id).count()
}

fn op_name(op: &OutboundOp) -> String {
    match op {
        OutboundOp::CreateChannel { .. } => "create-channel".into(),
        OutboundOp::PutGroupInfo { .. } => "a GroupInfo".into(),
        OutboundOp::Enqueue { payload, .. } => format!("a message of epoch {:?}", epoch_of(payload)),
        OutboundOp::Commit { epoch, add, remove, .. } => {
            format!("a commit for epoch {epoch} (+{} -{})", add.len(), remove.len())
        }
    }
}

fn result_name(r: &OutboundResult) -> String {
    match r {
        OutboundResult::Accepted { .. } => "accepted".into(),
        OutboundResult::Refused { code, .. } => format!("refused ({code:?})"),
    }
}

/// One seeded run; returns the fault counts.
fn run(seed: u64, steps: usize) -> BTreeMap<&'static str, u64> {
    let mut w = World::new(seed);
    for _ in 0..steps {
        w.step_once();
        w.check_round();
    }
    w.settle();
    w.check_final();
    w.counts
}

#[test]
fn random_interactions_keep_members_in_agreement() {
    let steps = env_u64("QPQ_INTERACTION_STEPS", 200) as usize;
    if let Ok(seed) = std::env::var("QPQ_INTERACTION_SEED") {
        let seed: u64 = seed.parse().expect("QPQ_INTERACTION_SEED is a number");
        VERBOSE.with(|v| *v.borrow_mut() = true);
        let counts = run(seed, steps);
        eprintln!("seed {seed}: {counts:?}");
        return;
    }
    let first = env_u64("QPQ_INTERACTION_FIRST_SEED", 0);
    let seeds = env_u64("QPQ_INTERACTION_SEEDS", 64);
    let threads = env_u64("QPQ_INTERACTION_THREADS", 2).max(1);
    let started = std::time::Instant::now();
    let results: Vec<(BTreeMap<&'static str, u64>, Vec<u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
                    let mut failed = Vec::new();
                    for seed in (first..first + seeds).filter(|s| s % threads == t) {
                        TRACE.with(|tr| tr.borrow_mut().clear());
                        let t0 = std::time::Instant::now();
                        match catch_unwind(AssertUnwindSafe(|| run(seed, steps))) {
                            Ok(counts) => {
                                if std::env::var("QPQ_INTERACTION_TIMES").is_ok() {
                                    eprintln!("seed {seed}: {:.2} s", t0.elapsed().as_secs_f64());
                                }
                                for (k, v) in counts {
                                    *totals.entry(k).or_default() += v;
                                }
                            }
                            Err(_) => {
                                let tail: Vec<String> = TRACE.with(|tr| {
                                    let tr = tr.borrow();
                                    tr[tr.len().saturating_sub(TRACE_TAIL)..].to_vec()
                                });
                                eprintln!(
                                    "\n=== interaction fuzz failed at seed {seed} ===\nrerun: QPQ_INTERACTION_SEED={seed} \
                                     cargo test -p qpq-core --test interaction -- --nocapture\nlast steps:\n  {}\n",
                                    tail.join("\n  ")
                                );
                                failed.push(seed);
                                break;
                            }
                        }
                    }
                    (totals, failed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker thread")).collect()
    });
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failed = Vec::new();
    for (t, f) in results {
        for (k, v) in t {
            *totals.entry(k).or_default() += v;
        }
        failed.extend(f);
    }
    eprintln!("{seeds} seeds × {steps} steps in {:.1} s; events: {totals:?}", started.elapsed().as_secs_f64());
    assert!(failed.is_empty(), "interaction fuzz failed at seeds {failed:?} (see the traces above)");
    // The run must have exercised what it claims to.
    for what in [
        "text", "add", "remove", "update", "reload", "lost reply", "crash before send", "duplicate", "reorder", "leak",
        "hostile commit", "hostile edit",
    ] {
        assert!(totals.get(what).copied().unwrap_or(0) > 0 || seeds < 20, "no {what} happened in {seeds} seeds");
    }
}

//! A simulated delivery service and clients for engine tests: the same routing rules as the
//! real server (one commit per channel epoch, application messages no older than the latest
//! devices added, fan-out to member devices, idempotent enqueue), in memory, with a virtual
//! clock.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use qpq_core::{ClaimedPackage, ConversationKind, Engine, Outbound, OutboundOp, OutboundResult};
use qpq_types::{
    ChannelId, ClientMsgId, DeviceAddress, DeviceId, DeviceRecord, Envelope, EnvelopeKind, ErrorCode, UserId,
};

#[derive(Default)]
pub struct Channel {
    pub epoch: u64,
    /// The epoch the latest added devices joined in (one past their commit's own epoch, as
    /// the node counts it): they cannot read messages of any before.
    pub joined_at: u64,
    pub members: BTreeSet<DeviceAddress>,
}

/// An application message the server accepted, and the queue positions it went to.
#[derive(Clone, Debug)]
pub struct FanOut {
    pub channel: ChannelId,
    pub sender: DeviceAddress,
    pub payload: Vec<u8>,
    /// Each recipient device and the sequence number of its copy.
    pub to: Vec<(DeviceAddress, u64)>,
}

#[derive(Default)]
pub struct SimServer {
    pub identities: HashMap<UserId, ([u8; 32], Vec<DeviceRecord>)>,
    pub key_packages: HashMap<DeviceAddress, Vec<Vec<u8>>>,
    pub channels: HashMap<ChannelId, Channel>,
    pub queues: HashMap<DeviceAddress, Vec<Envelope>>,
    pub next_seq: HashMap<DeviceAddress, u64>,
    pub done: HashMap<(DeviceAddress, ClientMsgId), OutboundResult>,
    pub time: u64,
    /// When set, the next reply is computed but "lost" (the client sees a transport error).
    pub lose_next_reply: bool,
    /// Every application message accepted, in order (for checks).
    pub fanout: Vec<FanOut>,
    /// The member devices of each channel in each epoch, as the server routed them.
    pub epoch_members: BTreeMap<(ChannelId, u64), BTreeSet<DeviceAddress>>,
    /// The `ttl_secs` of every enqueue accepted, in order.
    pub enqueue_ttls: Vec<u32>,
    /// Who sent each queued envelope (device, sequence number): what the checks know, and
    /// the server no longer tells the receiver (MLS does).
    pub sent_by: HashMap<(DeviceAddress, u64), DeviceAddress>,
}

pub struct SimClient {
    pub engine: Engine,
    pub store: BTreeMap<Vec<u8>, Vec<u8>>,
    pub seed: u8,
    /// False (the default): the simulated people know each other, each has every other
    /// registered user as a contact, so nothing arrives as a message request. The tests of
    /// requests set it.
    pub strangers: bool,
}

impl SimServer {
    pub fn register(&mut self, engine: &Engine) {
        self.identities.insert(
            engine.user().clone(),
            (engine.identity_public_key(), vec![engine.device_record().clone()]),
        );
    }

    /// Appends an envelope to `to`'s queue; returns its sequence number.
    pub fn deliver(&mut self, to: &DeviceAddress, channel: &ChannelId, sender: &DeviceAddress, kind: EnvelopeKind, payload: &[u8]) -> u64 {
        let seq = self.next_seq.entry(to.clone()).or_insert(0);
        *seq += 1;
        let seq = *seq;
        self.sent_by.insert((to.clone(), seq), sender.clone());
        let env = Envelope {
            seq,
            channel: channel.clone(),
            kind,
            payload: payload.to_vec(),
            server_time: self.time,
            expires_at: 0,
        };
        self.queues.entry(to.clone()).or_default().push(env);
        seq
    }

    /// Handles one outbound call from `from`; `None` when the reply was lost.
    pub fn handle(&mut self, from: &DeviceAddress, out: &Outbound) -> Option<OutboundResult> {
        self.time += 1;
        let key = (from.clone(), out.id);
        let result = if let Some(r) = self.done.get(&key) {
            r.clone()
        } else {
            let r = self.apply(from, &out.op);
            if matches!(r, OutboundResult::Accepted { .. }) {
                self.done.insert(key, r.clone());
            }
            r
        };
        if std::mem::take(&mut self.lose_next_reply) {
            None
        } else {
            Some(result)
        }
    }

    fn apply(&mut self, from: &DeviceAddress, op: &OutboundOp) -> OutboundResult {
        let refuse = |code: ErrorCode, m: &str| OutboundResult::Refused { code: Some(code), message: m.into() };
        match op {
            OutboundOp::CreateChannel { channel, .. } => {
                let c = self.channels.entry(channel.clone()).or_default();
                c.members.insert(from.clone());
                let members = c.members.clone();
                self.epoch_members.entry((channel.clone(), 0)).or_insert(members);
                OutboundResult::Accepted { server_time: self.time }
            }
            // GroupInfos are for rejoining, which needs a server that keeps the group's state.
            OutboundOp::PutGroupInfo { .. } => OutboundResult::Accepted { server_time: self.time },
            OutboundOp::Enqueue { channel, payload, ttl_secs } => {
                let Some(c) = self.channels.get(channel) else { return refuse(ErrorCode::NoSuchChannel, "no channel") };
                if !c.members.contains(from) {
                    return refuse(ErrorCode::NotMember, "not a member");
                }
                // As the node: no message of an epoch before the latest devices joined, or
                // after the current one.
                match epoch_of(payload) {
                    Some(e) if e < c.joined_at => return refuse(ErrorCode::StaleEpoch, "stale"),
                    Some(e) if e > c.epoch => return refuse(ErrorCode::BadRequest, "a future epoch"),
                    Some(_) => {}
                    None => return refuse(ErrorCode::BadRequest, "not an MLS message"),
                }
                let to: Vec<DeviceAddress> = c.members.iter().filter(|d| *d != from).cloned().collect();
                let mut seqs = Vec::with_capacity(to.len());
                for d in to {
                    let seq = self.deliver(&d, channel, from, EnvelopeKind::Application, payload);
                    seqs.push((d, seq));
                }
                self.fanout.push(FanOut { channel: channel.clone(), sender: from.clone(), payload: payload.clone(), to: seqs });
                self.enqueue_ttls.push(*ttl_secs);
                OutboundResult::Accepted { server_time: self.time }
            }
            OutboundOp::Commit { channel, epoch, commit, welcome, add, remove } => {
                let Some(c) = self.channels.get_mut(channel) else { return refuse(ErrorCode::NoSuchChannel, "no channel") };
                if !c.members.contains(from) {
                    return refuse(ErrorCode::NotMember, "not a member");
                }
                if *epoch != c.epoch {
                    return refuse(ErrorCode::StaleEpoch, "stale");
                }
                c.epoch += 1;
                if !add.is_empty() {
                    let made_in = epoch_of(commit).expect("an MLS commit");
                    c.joined_at = c.joined_at.max(made_in + 1);
                }
                let to: Vec<DeviceAddress> = c.members.iter().filter(|d| *d != from).cloned().collect();
                for d in remove {
                    c.members.remove(d);
                }
                for d in add {
                    c.members.insert(d.clone());
                }
                let (epoch, members) = (c.epoch, c.members.clone());
                self.epoch_members.insert((channel.clone(), epoch), members);
                for d in to {
                    self.deliver(&d, channel, from, EnvelopeKind::Commit, commit);
                }
                for d in add {
                    self.deliver(d, channel, from, EnvelopeKind::Welcome, welcome);
                }
                OutboundResult::Accepted { server_time: self.time }
            }
        }
    }

    pub fn fetch(&self, device: &DeviceAddress, after: u64) -> Vec<Envelope> {
        self.queues
            .get(device)
            .map(|q| q.iter().filter(|e| e.seq > after).cloned().collect())
            .unwrap_or_default()
    }

    /// Claims one key package per device of `user` (as the real server: pops one).
    pub fn claim(&mut self, user: &UserId, except: &DeviceAddress) -> Vec<ClaimedPackage> {
        let (_, devices) = self.identities.get(user).expect("known user").clone();
        devices
            .iter()
            .map(|r| r.address())
            .filter(|a| a != except)
            .filter_map(|a| {
                let kp = self.key_packages.get_mut(&a)?.pop()?;
                Some(ClaimedPackage { user: a.user.clone(), device: a.device, key_package: kp })
            })
            .collect()
    }
}

/// The epoch an MLS message was made in, read as the node reads it.
fn epoch_of(payload: &[u8]) -> Option<u64> {
    use openmls::prelude::tls_codec::Deserialize as _;
    let msg = openmls::prelude::MlsMessageIn::tls_deserialize_exact(payload).ok()?;
    Some(msg.try_into_protocol_message().ok()?.epoch().as_u64())
}

impl SimServer {
    /// The channel's current epoch (0 for an unknown channel).
    pub fn epoch(&self, channel: &ChannelId) -> u64 {
        self.channels.get(channel).map_or(0, |c| c.epoch)
    }
}

impl SimClient {
    pub fn new(server: &mut SimServer, name: &str, seed: u8) -> SimClient {
        let user = UserId::parse(&format!("{name}@sim.test")).unwrap();
        let engine = Engine::create(user, [seed; 32], 1);
        server.register(&engine);
        let mut c = SimClient { engine, store: BTreeMap::new(), seed, strangers: false };
        c.know_everyone(server);
        c.persist();
        c.upload_key_packages(server, 5);
        c
    }

    pub fn addr(&self) -> DeviceAddress {
        DeviceAddress { user: self.engine.user().clone(), device: self.engine.device_id() }
    }

    pub fn user(&self) -> UserId {
        self.engine.user().clone()
    }

    pub fn upload_key_packages(&mut self, server: &mut SimServer, n: usize) {
        let kps = self.engine.generate_key_packages(n).unwrap();
        self.persist();
        server.key_packages.entry(self.addr()).or_default().extend(kps);
    }

    /// Applies the last step's changes to the simulated durable store.
    pub fn persist(&mut self) {
        let cs = self.engine.take_changes();
        for (k, v) in cs.puts {
            self.store.insert(k, v);
        }
        for k in cs.deletes {
            self.store.remove(&k);
        }
    }

    /// Drops memory and rebuilds from the store, as after a crash or reload.
    pub fn reload(&mut self) {
        self.seed = self.seed.wrapping_add(101);
        self.engine = Engine::load(self.store.clone(), [self.seed; 32]).expect("state loads");
    }

    /// Sends everything in the outbox; returns how many items were settled.
    pub fn pump(&mut self, server: &mut SimServer) -> usize {
        self.know_everyone(server);
        let mut n = 0;
        for _ in 0..1000 {
            let Some(out) = self.engine.next_outbound(server.time) else { break };
            self.persist();
            match server.handle(&self.addr(), &out) {
                Some(r) => {
                    self.engine.outbound_result(out.id, r, server.time);
                    self.persist();
                    n += 1;
                }
                None => break, // lost reply: retry later
            }
        }
        n
    }

    /// Makes every registered user a contact, unless this client is among strangers.
    pub fn know_everyone(&mut self, server: &SimServer) {
        if !self.strangers {
            let users: Vec<(UserId, u64)> = server.identities.keys().map(|u| (u.clone(), 1)).collect();
            self.engine.add_contacts(users);
        }
    }

    /// Processes everything queued for this device.
    pub fn sync(&mut self, server: &mut SimServer) -> usize {
        self.know_everyone(server);
        let envs = server.fetch(&self.addr(), self.engine.cursor());
        let n = envs.len();
        for e in envs {
            let _ = self.engine.receive(&e, server.time);
            self.persist();
        }
        self.answer_directory(server);
        n
    }

    /// Answers what the engine asks of the directory (as a shell does with `listDevices`) and
    /// lets it go on with the deliveries it held; returns the refusals.
    pub fn answer_directory(&mut self, server: &SimServer) -> Vec<qpq_core::EngineError> {
        let refused = self.resolve_directory(server);
        self.persist();
        refused
    }

    /// [`SimClient::answer_directory`] without storing the result.
    pub fn resolve_directory(&mut self, server: &SimServer) -> Vec<qpq_core::EngineError> {
        let mut refused = Vec::new();
        for _ in 0..16 {
            let need = self.engine.directory_needed();
            if need.is_empty() {
                break;
            }
            for u in need {
                match server.identities.get(&u) {
                    Some((ik, recs)) => {
                        let _ = self.engine.learn_devices(&u, ik, recs, server.time);
                    }
                    None => self.engine.directory_lacks(&u),
                }
            }
            refused.extend(self.engine.resume(server.time));
        }
        refused
    }

    pub fn learn(&mut self, server: &SimServer, user: &UserId) {
        let (ik, recs) = server.identities.get(user).expect("known").clone();
        self.engine.learn_devices(user, &ik, &recs, server.time).unwrap();
        self.persist();
    }

    /// Creates a conversation with `others` (claiming their key packages) and sends it out.
    pub fn start(&mut self, server: &mut SimServer, kind: ConversationKind, name: &str, others: &[&SimClient]) -> ChannelId {
        let conv = self.engine.create_conversation(kind, name, server.time).unwrap();
        self.persist();
        if !others.is_empty() {
            self.add(server, &conv, others);
        }
        self.pump(server);
        conv
    }

    pub fn add(&mut self, server: &mut SimServer, conv: &ChannelId, others: &[&SimClient]) {
        let mut pkgs = Vec::new();
        for o in others {
            self.learn(server, &o.user());
            pkgs.extend(server.claim(&o.user(), &self.addr()));
        }
        self.engine.add_members(conv, pkgs).unwrap();
        self.persist();
    }

    /// Makes `other` an admin of `conv` (this client must be one) and sends the commit.
    pub fn make_admin(&mut self, server: &mut SimServer, conv: &ChannelId, other: &UserId) {
        self.engine.set_admin(conv, other, true).unwrap();
        self.persist();
        self.pump(server);
    }

    pub fn send(&mut self, server: &mut SimServer, conv: &ChannelId, text: &str) {
        self.engine.send_text(conv, text, None, server.time).unwrap();
        self.persist();
        self.pump(server);
    }

    /// Texts of the conversation's history, in order.
    pub fn texts(&self, conv: &ChannelId) -> Vec<String> {
        self.engine
            .history(conv)
            .iter()
            .filter_map(|m| match &m.content {
                qpq_core::Content::Text { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A device linked to `owner`'s account: its key registered with a record signed by the
/// account's identity key, with key packages on the server.
pub fn link(server: &mut SimServer, owner: &SimClient, seed: u8) -> SimClient {
    let engine = Engine::create_linked(
        owner.user(),
        &owner.engine.identity_secret(),
        DeviceId([seed; 16]),
        &[seed; 32],
        server.time,
        [seed; 32],
    );
    server.identities.get_mut(&owner.user()).expect("registered").1.push(engine.device_record().clone());
    // It knows nobody of its own: its contacts come from the conversations it is added to.
    let mut c = SimClient { engine, store: BTreeMap::new(), seed, strangers: true };
    c.persist();
    c.upload_key_packages(server, 5);
    c
}

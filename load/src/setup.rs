//! The setup phase, done the way people's devices do it: every device registers through a real
//! `qpq-client` `Client` (its own identity, key packages on the node), the first member of each
//! group creates it with the others (claims, MLS commit and Welcomes through the node), and
//! everyone waits until each member has joined. The clients then stop and each device's
//! engine is loaded back from its state store, so the message phase can drive raw sessions
//! with the engines' identities and ciphertexts.

use std::rc::Rc;
use std::time::Instant;

use anyhow::{bail, Context};
use futures::future::try_join_all;
use qpq_client::{Client, ConnState, Connector, MemoryStore, StateStore};
use qpq_core::{Content, Engine, OutboundOp, OutboundResult};
use qpq_native::{QuicConnector, TokioPlatform};
use qpq_proto::{ChannelId, Envelope, EnvelopeKind};
use rand::RngCore;

use crate::target::NodeUnderTest;

/// A device's client during setup.
pub type SetupClient = Client<MemoryStore, TokioPlatform>;

/// How long one setup step (coming online, joining a group) may take.
const STEP_TIMEOUT_MS: u64 = 120_000;

/// One device after setup.
pub struct Member {
    /// Its engine, loaded from what its client stored.
    pub engine: Engine,
    /// The index of its group.
    pub group: usize,
    /// What its client stored, to load a second copy of the engine from.
    pub state: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The devices and groups of a run.
pub struct Population {
    /// The channel of each group.
    pub channels: Vec<ChannelId>,
    /// Every device; device `g * size + m` is member `m` of group `g`.
    pub members: Vec<Member>,
    /// Devices per group.
    pub size: usize,
}

/// Registers `groups * size` devices and builds the groups.
pub async fn build(node: &NodeUnderTest, groups: usize, size: usize) -> anyhow::Result<Population> {
    if size < 2 {
        bail!("a group needs at least 2 members");
    }
    let mut tag = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut tag);
    let tag = hex::encode(tag);
    let names: Vec<String> =
        (0..groups).flat_map(|g| (0..size).map(move |m| (g, m))).map(|(g, m)| format!("load{tag}g{g}m{m}")).collect();
    let clients = try_join_all(names.iter().map(|n| register(node.addr, &node.fingerprint, n))).await?;

    let mut channels = Vec::with_capacity(groups);
    for g in 0..groups {
        let group = &clients[g * size..(g + 1) * size];
        let others: Vec<_> = group[1..].iter().map(Client::user).collect();
        let conv = group[0].create_group(&format!("load {g}"), &others).await.context("creating a group")?;
        channels.push(conv);
    }
    for (i, c) in clients.iter().enumerate() {
        let conv = &channels[i / size];
        let joined = c
            .wait_for(STEP_TIMEOUT_MS, |e| {
                e.conversation(conv).is_some_and(|x| x.members.len() == size) && e.outbox_len() == 0
            })
            .await;
        if !joined {
            bail!("{} did not join its group with {size} members in time", c.user());
        }
    }

    let mut members = Vec::with_capacity(clients.len());
    for (i, c) in clients.iter().enumerate() {
        c.shutdown().await;
        let entries = c.store().load().await.map_err(anyhow::Error::msg)?;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        members.push(Member { engine: Engine::load(entries.clone(), seed)?, group: i / size, state: entries });
    }
    Ok(Population { channels, members, size })
}

/// Registers `name` through a real client at the node at `addr` (pinned to `fingerprint`), and
/// waits until it is online.
pub async fn register(addr: std::net::SocketAddr, fingerprint: &str, name: &str) -> anyhow::Result<SetupClient> {
    let connector = QuicConnector::pinned(addr, fingerprint)?;
    let c = Client::register(&connector, MemoryStore::default(), TokioPlatform, name)
        .await
        .with_context(|| format!("registering {name}"))?;
    c.start(Rc::new(connector) as Rc<dyn Connector>);
    let c2 = c.clone();
    let online = c.wait_for(STEP_TIMEOUT_MS, move |_| matches!(c2.connection_state(), ConnState::Online { .. })).await;
    if !online {
        bail!("{name} did not come online: {:?}", c.connection_state());
    }
    Ok(c)
}

/// `n` MLS application messages carrying `text`, encrypted by `engine` in `conv` one after
/// another (each a new generation of its sender ratchet), as its outbox would send them.
pub fn ciphertexts(engine: &mut Engine, conv: &ChannelId, text: &str, n: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        engine.send_text(conv, text, None, now)?;
        let item = engine.next_outbound(now).context("the message waits in the outbox")?;
        match item.op {
            OutboundOp::Enqueue { payload, .. } => out.push(payload),
            other => bail!("the outbox holds something else first: {other:?}"),
        }
        engine.outbound_result(item.id, OutboundResult::Accepted { server_time: now }, now);
        // Nothing is stored: only the bytes are wanted.
        engine.take_changes();
        engine.drain_events();
    }
    Ok(out)
}

/// Checks that a pool is what members read: a copy of another member's engine (so the real
/// one's cursor is untouched) decrypts every ciphertext, in order, to `text` from the sender.
fn verify(pop: &Population, sender: usize, pool: &[Vec<u8>], text: &str) -> anyhow::Result<()> {
    let group = pop.members[sender].group;
    // The group's first member reads, or its second when the first is the sender.
    let first = group * pop.size;
    let reader = if sender == first { first + 1 } else { first };
    let conv = &pop.channels[group];
    let from = &pop.members[sender].engine;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let mut copy = Engine::load(pop.members[reader].state.clone(), seed)?;
    let now = now_ms();
    let first = copy.cursor() + 1;
    for (i, payload) in pool.iter().enumerate() {
        let env = Envelope {
            seq: first + i as u64,
            channel: conv.clone(),
            kind: EnvelopeKind::Application,
            payload: payload.clone(),
            server_time: now,
            expires_at: 0,
        };
        copy.receive(&env, now).with_context(|| format!("another member cannot read ciphertext {i} of a pool"))?;
    }
    let read = copy
        .history(conv)
        .iter()
        .filter(|m| !m.outgoing && m.sender == *from.user())
        .filter(|m| matches!(&m.content, Content::Text { text: t, .. } if t == text))
        .count();
    if read != pool.len() {
        bail!("another member read {read} of the {} ciphertexts of a pool as the text", pool.len());
    }
    Ok(())
}

/// How long encrypting the pools took, with them.
pub struct Pools {
    /// Per sender, its ciphertexts.
    pub by_sender: Vec<Rc<Vec<Vec<u8>>>>,
    /// Bytes of one ciphertext (the mean; padding makes them equal for equal texts).
    pub ciphertext_bytes: usize,
    /// Seconds spent encrypting them, and decrypting them once at another member to check.
    pub secs: f64,
}

/// A pool of `n` ciphertexts of `text` for each sender in `senders` (device indices), each
/// pool checked by another member of the sender's group.
pub fn pools(pop: &mut Population, senders: &[usize], text: &str, n: usize) -> anyhow::Result<Pools> {
    let t = Instant::now();
    let mut by_sender = Vec::with_capacity(senders.len());
    for &s in senders {
        let m = &mut pop.members[s];
        let conv = pop.channels[m.group].clone();
        let pool = ciphertexts(&mut m.engine, &conv, text, n)?;
        verify(pop, s, &pool, text)?;
        by_sender.push(Rc::new(pool));
    }
    let (sum, count) = by_sender.iter().flat_map(|p| p.iter()).fold((0, 0), |(s, c), ct| (s + ct.len(), c + 1));
    Ok(Pools { by_sender, ciphertext_bytes: sum / count.max(1), secs: t.elapsed().as_secs_f64() })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

//! The qpq message phase: every device logged in on a raw session and subscribed; each sender
//! enqueues its pool of real ciphertexts round and round, each time under a new client message
//! id (the node deduplicates by id, so every enqueue is a new message to it), keeping
//! `in_flight` enqueues outstanding. Refusals are counted, not fatal: `rate_limited` is waited
//! out for the time it names and the same message sent again under the same id, as the
//! client's outbox does; `quota_exceeded` and other refusals drop the message.
//!
//! After the window, the phase waits until every accepted message has reached every other
//! member device and every acknowledgement is answered, then checks that each device got each
//! sender's messages exactly as often as the node accepted them and that the node holds
//! nothing more for any device.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::future::{join_all, try_join_all};
use qpq_client::ClientError;
use qpq_proto::node_capnp::session;
use qpq_proto::{ChannelId, ErrorCode};
use rand::RngCore;

use crate::device::{endpoint, DeviceSession, PoolIndex};
use crate::setup::Population;
use crate::target::NodeUnderTest;
use crate::window::{Latencies, Window};

/// Tries of one message that the node answered "later" (not rate_limited) before giving up.
const MAX_RETRIES: u32 = 20;
/// How long to back off after a `quota_exceeded` (a queue or the calls in flight are full).
const QUOTA_BACKOFF: Duration = Duration::from_millis(50);
/// How long the deliveries of accepted messages may take to arrive after the window.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the node may take to acknowledge the last deliveries once they were answered.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// One sender's work.
pub struct Sender {
    /// Index of its device.
    pub device: usize,
    /// Its ciphertexts.
    pub pool: Rc<Vec<Vec<u8>>>,
}

/// What the phase measured and found.
#[derive(Debug)]
pub struct Traffic {
    /// Enqueues the node accepted inside the window.
    pub accepted_in_window: u64,
    /// Copies received by devices inside the window.
    pub delivered_in_window: u64,
    /// The window's length (s).
    pub secs: f64,
    /// Enqueue round trips inside the window (first try to acceptance).
    pub latency: Latencies,
    /// Every accepted enqueue of the run (warm-up and the tail included).
    pub accepted_total: u64,
    /// Every copy delivered in the run.
    pub delivered_total: u64,
    /// `rate_limited` answers, and the milliseconds they told the senders to wait in all.
    pub rate_limited: (u64, u64),
    /// Refusals by error code (the message was dropped).
    pub refused: BTreeMap<String, u64>,
    /// "Later" answers other than `rate_limited` (internal, or a call lost below the node's
    /// logic), each sent again under the same id.
    pub retried: BTreeMap<String, u64>,
    /// Senders that stopped on a lost connection, or messages given up, with why.
    pub failures: Vec<String>,
    /// `deliver` calls (batches) in the whole run, each acknowledged in its answer.
    pub batches_total: u64,
    /// Seconds from the end of the window until every accepted message was delivered.
    pub drain_secs: f64,
    /// `Ok` when every accepted message reached every other member device exactly once.
    pub exactly_once: Result<(), String>,
    /// `Ok` when, after the acknowledgements, the node holds nothing for any device.
    pub queues_empty: Result<(), String>,
}

/// Per-sender counters.
#[derive(Default)]
struct SendStats {
    accepted: Cell<u64>,
    /// Accepted messages by the index of their ciphertext in the pool.
    accepted_by_index: RefCell<Vec<u64>>,
    rate_limited: Cell<u64>,
    waited_ms: Cell<u64>,
    refused: RefCell<BTreeMap<String, u64>>,
    retried: RefCell<BTreeMap<String, u64>>,
    failures: RefCell<Vec<String>>,
    next: Cell<u64>,
}

/// Runs the phase: `senders` with `in_flight` enqueues each, `warmup` then `span` measured.
pub async fn run(
    node: &NodeUnderTest,
    pop: &Population,
    senders: &[Sender],
    in_flight: usize,
    warmup: Duration,
    span: Duration,
    mut at_edges: impl FnMut(),
) -> anyhow::Result<Traffic> {
    let ep = endpoint(node)?;
    let devices = try_join_all(pop.members.iter().map(|m| DeviceSession::open(&ep, node, &m.engine)))
        .await
        .context("logging the devices in")?;
    let mut index = PoolIndex::new();
    for (s, sender) in senders.iter().enumerate() {
        for (i, ct) in sender.pool.iter().enumerate() {
            if index.insert(ct.clone(), (s, i)).is_some() {
                bail!("two pooled ciphertexts are the same bytes");
            }
        }
    }
    let index = Rc::new(index);
    for (d, m) in devices.iter().zip(&pop.members) {
        d.subscribe(m.engine.cursor(), index.clone()).await.context("subscribing")?;
    }

    let window = Rc::new(Window::default());
    let stats: Vec<Rc<SendStats>> = senders
        .iter()
        .map(|s| Rc::new(SendStats { accepted_by_index: RefCell::new(vec![0; s.pool.len()]), ..SendStats::default() }))
        .collect();
    let mut workers = Vec::new();
    for (s, st) in senders.iter().zip(&stats) {
        let mut prefix = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut prefix);
        let cap = devices[s.device].session.capability();
        let channel = pop.channels[pop.members[s.device].group].clone();
        for _ in 0..in_flight {
            let job = Job { cap: cap.clone(), channel: channel.clone(), pool: s.pool.clone(), prefix };
            workers.push(tokio::task::spawn_local(job.run(st.clone(), window.clone())));
        }
    }

    let accepted = || stats.iter().map(|s| s.accepted.get()).sum::<u64>();
    let delivered = || devices.iter().map(|d| d.tally.delivered.get()).sum::<u64>();
    let ((a0, d0), (a1, d1), secs) = window
        .run(warmup, span, || {
            at_edges();
            (accepted(), delivered())
        })
        .await;
    join_all(workers).await;
    let ended = Instant::now();

    let mut t = Traffic {
        accepted_in_window: a1 - a0,
        delivered_in_window: d1 - d0,
        secs,
        latency: window.latencies(),
        accepted_total: accepted(),
        delivered_total: 0,
        batches_total: 0,
        rate_limited: (0, 0),
        refused: BTreeMap::new(),
        retried: BTreeMap::new(),
        failures: Vec::new(),
        drain_secs: 0.0,
        exactly_once: Ok(()),
        queues_empty: Ok(()),
    };
    for s in &stats {
        t.rate_limited.0 += s.rate_limited.get();
        t.rate_limited.1 += s.waited_ms.get();
        for (k, v) in s.refused.borrow().iter() {
            *t.refused.entry(k.clone()).or_default() += v;
        }
        for (k, v) in s.retried.borrow().iter() {
            *t.retried.entry(k.clone()).or_default() += v;
        }
        t.failures.extend(s.failures.borrow().iter().cloned());
    }

    let expected = expected_copies(pop, senders, &stats, &devices);
    let deadline = ended + DRAIN_TIMEOUT;
    while Instant::now() < deadline && !settled(&devices, &expected) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.drain_secs = ended.elapsed().as_secs_f64();
    t.delivered_total = delivered();
    t.batches_total = devices.iter().map(|d| d.tally.batches.get()).sum();
    t.exactly_once = check_copies(&devices, senders, &stats, &expected);
    t.queues_empty = check_queues(&devices).await;
    for d in devices {
        d.close().await;
    }
    ep.close(0u32.into(), b"done");
    Ok(t)
}

/// One in-flight slot of a sender: takes the sender's next message, enqueues it until the
/// node answers for good, repeats until the window has stopped.
struct Job {
    cap: session::Client,
    channel: ChannelId,
    pool: Rc<Vec<Vec<u8>>>,
    prefix: [u8; 8],
}

impl Job {
    async fn run(self, st: Rc<SendStats>, window: Rc<Window>) {
        while !window.stopped() {
            let n = st.next.get();
            st.next.set(n + 1);
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&self.prefix);
            id[8..].copy_from_slice(&n.to_be_bytes());
            let index = (n % self.pool.len() as u64) as usize;
            let payload = &self.pool[index];
            let started = Instant::now();
            let mut tries = 0;
            loop {
                match self.enqueue(payload, &id).await {
                    Ok(()) => {
                        st.accepted.set(st.accepted.get() + 1);
                        st.accepted_by_index.borrow_mut()[index] += 1;
                        window.record(started);
                        break;
                    }
                    Err(e) if e.remote_code() == Some(ErrorCode::RateLimited) => {
                        let ms = e.retry_after_ms().unwrap_or(1000);
                        st.rate_limited.set(st.rate_limited.get() + 1);
                        st.waited_ms.set(st.waited_ms.get() + ms);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    Err(e) if e.is_transport() => {
                        st.failures.borrow_mut().push(format!("a sender's connection was lost: {e}"));
                        return;
                    }
                    Err(e) => match e.retry_after_ms() {
                        // The node may have stored it: send the same id until it answers.
                        Some(ms) if tries < MAX_RETRIES => {
                            tries += 1;
                            *st.retried.borrow_mut().entry(e.code().to_string()).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                        Some(_) => {
                            st.failures.borrow_mut().push(format!("a message was given up after {tries} tries: {e}"));
                            break;
                        }
                        None => {
                            *st.refused.borrow_mut().entry(e.code().to_string()).or_default() += 1;
                            if e.remote_code() == Some(ErrorCode::QuotaExceeded) {
                                tokio::time::sleep(QUOTA_BACKOFF).await;
                            }
                            break;
                        }
                    },
                }
            }
        }
    }

    async fn enqueue(&self, payload: &[u8], id: &[u8; 16]) -> Result<(), ClientError> {
        let mut req = self.cap.enqueue_request();
        let mut p = req.get();
        p.set_channel_id(self.channel.as_bytes());
        p.set_payload(payload);
        p.set_client_msg_id(id);
        p.set_ttl_seconds(0);
        req.send().promise.await?;
        Ok(())
    }
}

/// For each device, the senders whose messages it should have (same group, another device).
fn expected_copies(pop: &Population, senders: &[Sender], stats: &[Rc<SendStats>], devices: &[DeviceSession]) -> Vec<Expected> {
    (0..devices.len())
        .map(|d| {
            let from: Vec<usize> = senders
                .iter()
                .enumerate()
                .filter(|(_, s)| pop.members[s.device].group == pop.members[d].group && s.device != d)
                .map(|(i, _)| i)
                .collect();
            let total = from.iter().map(|&s| stats[s].accepted.get()).sum();
            Expected { from, total }
        })
        .collect()
}

/// What one device should receive.
struct Expected {
    /// The senders (indices) whose accepted messages it should have.
    from: Vec<usize>,
    /// How many copies that is.
    total: u64,
}

fn settled(devices: &[DeviceSession], expected: &[Expected]) -> bool {
    devices.iter().zip(expected).all(|(d, exp)| d.tally.delivered.get() >= exp.total)
}

/// Every device has each accepted message of each sender of its group exactly as often as the
/// node accepted it (every ciphertext of a pool counted apart), nothing else, nothing twice.
fn check_copies(devices: &[DeviceSession], senders: &[Sender], stats: &[Rc<SendStats>], expected: &[Expected]) -> Result<(), String> {
    let mut wrong = Vec::new();
    for (d, (dev, exp)) in devices.iter().zip(expected).enumerate() {
        let t = &dev.tally;
        let copies = t.copies.borrow();
        for &s in &exp.from {
            let accepted = stats[s].accepted_by_index.borrow();
            let differ = accepted.iter().enumerate().filter(|&(i, &n)| copies.get(&(s, i)).copied().unwrap_or(0) != n).count();
            if differ > 0 {
                let got: u64 = (0..accepted.len()).map(|i| copies.get(&(s, i)).copied().unwrap_or(0)).sum();
                wrong.push(format!(
                    "device {d} has {got} messages of sender device {}, expected {} ({differ} pool entries differ)",
                    senders[s].device,
                    stats[s].accepted.get()
                ));
            }
        }
        let strangers: u64 = copies.iter().filter(|((s, _), _)| !exp.from.contains(s)).map(|(_, n)| n).sum();
        if strangers > 0 {
            wrong.push(format!("device {d} has {strangers} messages of senders outside its group, or its own"));
        }
        if t.unknown.get() > 0 {
            wrong.push(format!("device {d} has {} messages whose bytes were sent by nobody", t.unknown.get()));
        }
        if t.out_of_order.get() > 0 {
            wrong.push(format!("device {d} got {} envelopes again or out of order", t.out_of_order.get()));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// Every device's queue is empty. The node acknowledges a delivery when its answer arrives,
/// after the device counted it, so a queue is looked at again until it empties or
/// [`ACK_TIMEOUT`] passes.
async fn check_queues(devices: &[DeviceSession]) -> Result<(), String> {
    let deadline = Instant::now() + ACK_TIMEOUT;
    let mut left = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        loop {
            match d.queued(16).await {
                Ok(0) => break,
                Ok(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
                Ok(n) => {
                    left.push(format!("device {i}: {n} envelope(s)"));
                    break;
                }
                Err(e) => {
                    left.push(format!("device {i}: could not look ({e})"));
                    break;
                }
            }
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("the node still holds {} {ACK_TIMEOUT:?} after the last delivery", left.join(", ")))
    }
}

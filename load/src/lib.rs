//! `qpq-load`: how many messages a server node moves, against what raw QUIC moves on the same
//! machine at the same concurrency and sizes, measured in one run.
//!
//! A run has four steps (each in a module of its own):
//! 1. [`target`]: the node — started in-process on SQLite or on a PostgreSQL database of the
//!    run's own, with its rate limits set explicitly, or a running node named by address and pin;
//! 2. [`setup`]: real devices and real MLS groups, made by `qpq-client` clients through the
//!    node, then per sender a pool of real application ciphertexts encrypted by its engine,
//!    each pool read back by a copy of another member's engine to check it;
//! 3. [`traffic`]: the message phase over raw sessions ([`device`]): senders replay their pools
//!    under fresh client message ids with `in_flight` enqueues outstanding, receivers count and
//!    acknowledge; after the window every accepted message must have reached every other member
//!    device exactly once and the node's queues must be empty;
//! 4. [`echo`]: a raw quinn echo with the same senders, in-flight count, frame size and window.
//!
//! It deliberately does no MLS in the message phase (no encryption per send, no decryption per
//! delivery): the figure is the node's work. The end-to-end cost with the engine on both ends
//! is `cargo bench -p qpq-native --bench throughput`.
//!
//! The crate's other benchmarks (`src/bin/`) share its node, devices and setup; theirs alone
//! are the node and gateway in child processes of their own ([`child_node`],
//! [`child_gateway`]) and the browser transports' clients of a gateway, [`ws_client`]
//! (WebSocket) and [`wt_client`] (WebTransport), which the end-to-end tests use too.

pub mod child_gateway;
pub mod child_node;
pub mod cpu;
pub mod device;
pub mod echo;
pub mod report;
pub mod setup;
pub mod target;
pub mod traffic;
pub mod window;
pub mod ws_client;
pub mod wt_client;

use std::time::{Duration, Instant};

use anyhow::bail;

pub use report::Report;
pub use target::{Storage, Target};

/// What to run.
#[derive(Clone, Debug)]
pub struct Params {
    /// The node.
    pub target: Target,
    /// Number of groups (MLS groups, one channel each).
    pub groups: usize,
    /// Devices per group (each its own user).
    pub group_size: usize,
    /// Sending devices, spread over the groups (sender `i` is member `i / groups` of group
    /// `i % groups`).
    pub senders: usize,
    /// Enqueues each sender keeps outstanding.
    pub in_flight: usize,
    /// Bytes of each message's text (the ciphertext is larger: MLS framing and padding).
    pub text_bytes: usize,
    /// Ciphertexts encrypted per sender, replayed round and round.
    pub pool: usize,
    /// Time before the window, for connections and caches to settle.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Log filter of a node started here.
    pub node_log: String,
}

impl Params {
    /// Total devices.
    pub fn devices(&self) -> usize {
        self.groups * self.group_size
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.groups == 0 || self.senders == 0 || self.in_flight == 0 || self.pool == 0 {
            bail!("groups, senders, in-flight and pool must be at least 1");
        }
        if self.senders > self.devices() {
            bail!("{} senders need at least as many devices ({} groups of {})", self.senders, self.groups, self.group_size);
        }
        if self.text_bytes == 0 {
            bail!("a text has at least one byte");
        }
        Ok(())
    }

    /// The device index of sender `i`.
    fn sender_device(&self, i: usize) -> usize {
        (i % self.groups) * self.group_size + i / self.groups
    }
}

/// Runs everything; must be called inside a `tokio::task::LocalSet` on a current-thread
/// runtime (clients and RPC objects are not `Send`).
pub async fn run(p: &Params) -> anyhow::Result<Report> {
    p.check()?;
    let node = target::NodeUnderTest::start(&p.target, &p.node_log).await?;
    let result = run_against(p, &node).await;
    node.finish().await;
    result
}

async fn run_against(p: &Params, node: &target::NodeUnderTest) -> anyhow::Result<Report> {
    let t = Instant::now();
    let mut pop = setup::build(node, p.groups, p.group_size).await?;
    let setup_secs = t.elapsed().as_secs_f64();
    let senders: Vec<usize> = (0..p.senders).map(|i| p.sender_device(i)).collect();
    let text = "m".repeat(p.text_bytes);
    let pools = setup::pools(&mut pop, &senders, &text, p.pool)?;
    let jobs: Vec<traffic::Sender> =
        senders.iter().zip(&pools.by_sender).map(|(&device, pool)| traffic::Sender { device, pool: pool.clone() }).collect();

    let mut qpq_cpu = Vec::new();
    let qpq = traffic::run(node, &pop, &jobs, p.in_flight, p.warmup, p.duration, || {
        qpq_cpu.push(cpu::Sample::take())
    })
    .await?;

    let server = echo::EchoServer::start()?;
    let mut raw_cpu = Vec::new();
    let raw = echo::run(&server, p.senders, p.in_flight, pools.ciphertext_bytes, p.warmup, p.duration, || {
        raw_cpu.push(cpu::Sample::take())
    })
    .await;
    server.stop();
    let raw = raw?;

    Ok(Report {
        params: p.clone(),
        node: node.description.clone(),
        limits: node.limits.clone(),
        setup_secs,
        pool_secs: pools.secs,
        ciphertext_bytes: pools.ciphertext_bytes,
        qpq,
        raw,
        qpq_cpu: report::CpuShare::between(&qpq_cpu, node.in_process()),
        raw_cpu: report::CpuShare::between(&raw_cpu, true),
    })
}

//! `qpq-idle-sessions`: what idle sessions cost a node, over QUIC straight to it. A node runs
//! in a child process of its own (this binary again, with `--serve-node`), so that its memory
//! and CPU time are read apart from the clients'. Then:
//!
//! 1. `--sessions` devices register through real `qpq-client` clients and go offline; the
//!    node's resident memory is read;
//! 2. a tenth of them connect as the app does (a QUIC connection of their own, the RPC
//!    stream, a login bound to the connection, a delivery subscription) and stay idle; the
//!    node's CPU time is read over `--idle-secs`;
//! 3. the rest connect; the node's memory and its idle CPU time are read again.
//!
//! Memory per idle session is the growth from 2 to 3 over the sessions opened in between (the
//! first ones reuse memory that registration freed); the idle CPU figures show whether the
//! node's timers and heartbeats grow with the sessions.

use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::future::try_join_all;
use qpq_client::StateStore;
use qpq_core::Engine;
use qpq_load::child_node::{self, NodeProcess};
use qpq_load::device::{self, DeviceSession, PoolIndex};
use qpq_load::setup::register;
use qpq_load::target::Storage;
use rand::RngCore;

/// Devices registered, or sessions opened, at once.
const AT_ONCE: usize = 100;
/// How long the node is left after the sessions opened before it is read.
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Parser, Debug)]
#[command(about = "What idle sessions cost a quicproquo node over QUIC: memory per session and idle CPU.")]
struct Args {
    /// Idle sessions to hold.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Seconds over which the node's idle CPU time is read, at a tenth and at all sessions.
    #[arg(long, default_value_t = 20.0)]
    idle_secs: f64,
    /// Storage of the node.
    #[arg(long, value_enum, default_value = "sqlite")]
    storage: Storage,
    /// PostgreSQL server to create the run's database on (--storage postgres).
    #[arg(long, env = "QPQ_LOAD_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_admin: String,
    /// Hold bare QUIC connections instead (no stream, login or subscription), to see what
    /// the transport alone costs.
    #[arg(long)]
    connections_only: bool,
    /// Run only the node (see `qpq_load::child_node`).
    #[arg(long, hide = true)]
    serve_node: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let serve = args.serve_node.then_some((args.storage, args.postgres_admin.as_str()));
    child_node::main("qpq-idle-sessions", serve, || measure(&args))
}

/// The node's CPU time over `secs` of idling, in ms a second.
async fn idle_cpu(node: &NodeProcess, secs: f64) -> anyhow::Result<f64> {
    let cpu0 = node.cpu_ms()?;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    Ok((node.cpu_ms()? - cpu0) / t.elapsed().as_secs_f64())
}

async fn measure(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.sessions >= 10, "--sessions must be at least 10");
    let node = NodeProcess::start(args.storage, &args.postgres_admin)?;
    let target = node.target().await?;
    let tag = format!("{:08x}", rand::random::<u32>());

    // Every device registers through a real client, then goes offline; its engine is loaded
    // back from what the client stored, for the login.
    let t = Instant::now();
    let names: Vec<String> = (0..args.sessions).map(|i| format!("idle{tag}d{i}")).collect();
    let mut engines = Vec::with_capacity(names.len());
    for chunk in names.chunks(AT_ONCE) {
        let clients = try_join_all(chunk.iter().map(|n| register(node.addr, &node.fingerprint, n))).await?;
        for c in &clients {
            c.shutdown().await;
            let entries = c.store().load().await.map_err(anyhow::Error::msg)?;
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            engines.push(Engine::load(entries, seed)?);
        }
    }
    let register_s = t.elapsed().as_secs_f64();
    eprintln!("registered {} devices in {register_s:.1} s", engines.len());
    tokio::time::sleep(SETTLE).await;
    let rss_none = node.rss_kib()?;
    let cpu_none = idle_cpu(&node, args.idle_secs).await?;

    let ep = device::endpoint(&target)?;
    let pools: Rc<PoolIndex> = Rc::default();
    let mut sessions: Vec<Held> = Vec::with_capacity(engines.len());
    let tenth = args.sessions / 10;
    let bare = args.connections_only;
    let open = |range: std::ops::Range<usize>| {
        let (ep, target, pools, engines) = (&ep, &target, &pools, &engines);
        async move {
            let mut opened = Vec::with_capacity(range.len());
            for chunk in engines[range].chunks(AT_ONCE) {
                let batch = try_join_all(chunk.iter().map(|e| async move {
                    if bare {
                        let quic = ep.connect(target.addr, "localhost")?.await.context("connecting to the node")?;
                        return anyhow::Ok(Held::Connection(quic));
                    }
                    let s = DeviceSession::open(ep, target, e).await?;
                    s.subscribe(e.cursor(), pools.clone()).await?;
                    anyhow::Ok(Held::Session(s))
                }))
                .await?;
                opened.extend(batch);
            }
            anyhow::Ok(opened)
        }
    };
    let t = Instant::now();
    sessions.extend(open(0..tenth).await.context("opening the first tenth of the sessions")?);
    tokio::time::sleep(SETTLE).await;
    let rss_tenth = node.rss_kib()?;
    let cpu_tenth = idle_cpu(&node, args.idle_secs).await?;
    sessions.extend(open(tenth..args.sessions).await.context("opening the rest of the sessions")?);
    let open_s = t.elapsed().as_secs_f64() - SETTLE.as_secs_f64() - args.idle_secs;
    tokio::time::sleep(SETTLE).await;
    let rss_all = node.rss_kib()?;
    let cpu_all = idle_cpu(&node, args.idle_secs).await?;
    // Every session is still there.
    for held in sessions.iter().step_by((args.sessions / 50).max(1)) {
        match held {
            Held::Session(s) => {
                s.queued(1).await.context("an idle session no longer answers")?;
            }
            Held::Connection(c) => anyhow::ensure!(c.close_reason().is_none(), "an idle connection closed: {:?}", c.close_reason()),
        }
    }

    let n = sessions.len();
    for held in sessions {
        match held {
            Held::Session(s) => s.close().await,
            Held::Connection(c) => c.close(0u32.into(), b"done"),
        }
    }
    node.stop();

    // Between a tenth and all of them: the first sessions reuse memory that registration
    // freed, which would flatter the figure.
    let per_session = (rss_all.saturating_sub(rss_tenth)) as f64 / (n - tenth) as f64;
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let what = if bare { "bare QUIC connections (no stream)" } else { "sessions (connection, login, subscription)" };
    println!(
        "Idle sessions over QUIC straight to one node ({profile} build, {:?} storage): {n} devices registered in \
         {register_s:.1} s; their {what} opened in {open_s:.1} s.",
        args.storage
    );
    println!("| idle sessions | node resident KiB | node CPU while idle, ms per s |");
    println!("|---|---|---|");
    println!("| 0 | {rss_none} | {cpu_none:.1} |");
    println!("| {tenth} | {rss_tenth} | {cpu_tenth:.1} |");
    println!("| {n} | {rss_all} | {cpu_all:.1} |");
    println!(
        "Per idle session (from {tenth} to {n}): {per_session:.1} KiB of node memory, so {:.0} sessions per GiB.",
        1024.0 * 1024.0 / per_session.max(0.001)
    );
    Ok(())
}

/// What is held open for one device.
enum Held {
    Session(DeviceSession),
    Connection(quinn::Connection),
}

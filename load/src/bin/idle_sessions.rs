//! `qpq-idle-sessions`: what idle sessions cost a node — over QUIC straight to it, or through a
//! gateway over WebSocket or WebTransport (`--via`), as browsers hold them. A node runs in a
//! child process of its own (this binary again, with `--serve-node`), and with `--via
//! websocket|webtransport` a gateway in another (`--serve-gateway`, see
//! `qpq_load::child_gateway`), so that their memory and CPU time are read apart from each
//! other's and from the clients'. Then:
//!
//! 1. `--sessions` devices register through real `qpq-client` clients (over QUIC) and go
//!    offline; the node's and the gateway's resident memory are read;
//! 2. a tenth of them connect as the app does — a QUIC connection of their own and the RPC
//!    stream, or a WebSocket or a WebTransport session and its stream through the gateway —
//!    log in (bound to the connection over QUIC; through a gateway the binding is empty, as in
//!    a browser), subscribe to deliveries, and stay idle but for the app's heartbeat (a
//!    `whoami` every `--heartbeat-secs`); the processes' CPU time is read over `--idle-secs`;
//! 3. the rest connect; memory and idle CPU time are read again, and every session must still
//!    answer a call.
//!
//! Memory per idle session is the growth from 2 to 3 over the sessions opened in between (the
//! first ones reuse memory that registration freed); the idle CPU figures show whether the
//! timers and heartbeats grow with the sessions.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::future::{join_all, try_join_all};
use qpq_client::StateStore;
use qpq_core::Engine;
use qpq_load::child_gateway::{self, GatewayProcess};
use qpq_load::child_node::{self, raise_open_files_limit, NodeProcess};
use qpq_load::device::{self, DeviceSession, PoolIndex};
use qpq_load::setup::register;
use qpq_load::target::Storage;
use qpq_load::ws_client::WsConnector;
use qpq_load::wt_client::{self, WtConnector};
use rand::RngCore;

/// Devices registered, or sessions opened, at once.
const AT_ONCE: usize = 100;
/// How long the processes are left after the sessions opened before they are read.
const SETTLE: Duration = Duration::from_secs(3);
/// What `qpq-client` waits between heartbeats (`HEARTBEAT_MS` of its connection loop).
const APP_HEARTBEAT_SECS: f64 = 20.0;
/// The idle timeout of the WebTransport client's QUIC connections (quinn's default): with no
/// keep-alive of their own, the heartbeat must come sooner.
const WT_CLIENT_IDLE_SECS: f64 = 30.0;

/// How the sessions reach the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Via {
    /// A QUIC connection of its own straight to the node, as the native app.
    Quic,
    /// A WebSocket to a gateway's `/ws`, as the browser app without WebTransport.
    Websocket,
    /// A WebTransport session (HTTP/3) to a gateway's `/wt`, as the browser app.
    Webtransport,
}

#[derive(Parser, Debug)]
#[command(
    about = "What idle sessions cost a quicproquo node, over QUIC or through a gateway over WebSocket or WebTransport: memory per session and idle CPU."
)]
struct Args {
    /// Idle sessions to hold.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// How the sessions reach the node: straight over QUIC, or through a gateway (started in a
    /// process of its own) over WebSocket or WebTransport.
    #[arg(long, value_enum, default_value = "quic")]
    via: Via,
    /// Seconds over which the idle CPU time is read, at a tenth and at all sessions.
    #[arg(long, default_value_t = 20.0)]
    idle_secs: f64,
    /// Seconds between a session's heartbeats (a `whoami` call, as the app makes every 20 s);
    /// 0: none (not with --via webtransport, whose client connections idle out after 30 s).
    #[arg(long, default_value_t = APP_HEARTBEAT_SECS)]
    heartbeat_secs: f64,
    /// Storage of the node.
    #[arg(long, value_enum, default_value = "sqlite")]
    storage: Storage,
    /// PostgreSQL server to create the run's database on (--storage postgres).
    #[arg(long, env = "QPQ_LOAD_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_admin: String,
    /// Hold bare QUIC connections instead (no stream, login or subscription), to see what
    /// the transport alone costs (--via quic only).
    #[arg(long)]
    connections_only: bool,
    /// Run only the node (see `qpq_load::child_node`).
    #[arg(long, hide = true)]
    serve_node: bool,
    /// Run only the gateway (see `qpq_load::child_gateway`).
    #[arg(long, hide = true)]
    serve_gateway: bool,
    /// The gateway's node (with --serve-gateway).
    #[arg(long, hide = true)]
    gateway_node: Option<SocketAddr>,
    /// The pin of the gateway's node (with --serve-gateway).
    #[arg(long, hide = true)]
    gateway_node_pin: Option<String>,
    /// Serve HTTP/3 and WebTransport (with --serve-gateway).
    #[arg(long, hide = true)]
    gateway_http3: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.serve_gateway {
        let served = match (args.gateway_node, args.gateway_node_pin.as_deref()) {
            (Some(node), Some(pin)) => child_gateway::serve(node, pin, args.gateway_http3),
            _ => Err(anyhow::anyhow!("--serve-gateway needs --gateway-node and --gateway-node-pin")),
        };
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("qpq-idle-sessions (gateway): {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let serve = args.serve_node.then_some((args.storage, args.postgres_admin.as_str()));
    child_node::main("qpq-idle-sessions", serve, || measure(&args))
}

/// Memory and idle CPU of the node and, when there is one, of the gateway.
struct Reading {
    node_kib: u64,
    node_cpu: f64,
    gateway: Option<(u64, f64)>,
}

/// Reads resident memory, then CPU time over `secs` of idling (ms a second).
async fn read(node: &NodeProcess, gateway: Option<&GatewayProcess>, secs: f64) -> anyhow::Result<Reading> {
    let node_kib = node.rss_kib()?;
    let gateway_kib = gateway.map(|g| g.rss_kib()).transpose()?;
    let (node0, gateway0) = (node.cpu_ms()?, gateway.map(|g| g.cpu_ms()).transpose()?);
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (node1, gateway1) = (node.cpu_ms()?, gateway.map(|g| g.cpu_ms()).transpose()?);
    let s = t.elapsed().as_secs_f64();
    let gateway = match (gateway_kib, gateway0, gateway1) {
        (Some(kib), Some(c0), Some(c1)) => Some((kib, (c1 - c0) / s)),
        _ => None,
    };
    Ok(Reading { node_kib, node_cpu: (node1 - node0) / s, gateway })
}

/// How sessions are opened.
enum Opener {
    Quic { ep: quinn::Endpoint, target: qpq_load::target::NodeUnderTest },
    Websocket(WsConnector),
    /// One client endpoint (UDP socket) for every session, each its own connection.
    Webtransport { connector: WtConnector, ep: quinn::Endpoint, config: quinn::ClientConfig },
}

impl Opener {
    /// Opens and logs in one session for `engine`'s device, or a bare connection.
    async fn open(&self, engine: &Engine, bare: bool) -> anyhow::Result<Held> {
        let s = match self {
            Opener::Quic { ep, target } if bare => {
                let quic = ep.connect(target.addr, "localhost")?.await.context("connecting to the node")?;
                return Ok(Held::Connection(quic));
            }
            Opener::Quic { ep, target } => DeviceSession::open(ep, target, engine).await?,
            // Through a gateway the login binds nothing, as in a browser.
            Opener::Websocket(ws) => DeviceSession::over((ws.open().await.map_err(anyhow::Error::msg)?, None), engine).await?,
            Opener::Webtransport { connector, ep, config } => {
                let stream = connector.open_on(ep, config).await.map_err(anyhow::Error::msg)?;
                DeviceSession::over((stream, None), engine).await?
            }
        };
        Ok(Held::Session(s))
    }
}

async fn measure(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.sessions >= 10, "--sessions must be at least 10");
    anyhow::ensure!(!args.connections_only || args.via == Via::Quic, "--connections-only holds bare QUIC connections: --via quic only");
    let heartbeat = (args.heartbeat_secs > 0.0).then(|| Duration::from_secs_f64(args.heartbeat_secs));
    if args.via == Via::Webtransport {
        anyhow::ensure!(
            args.heartbeat_secs > 0.0 && args.heartbeat_secs < WT_CLIENT_IDLE_SECS,
            "--via webtransport needs a heartbeat under {WT_CLIENT_IDLE_SECS} s: its client connections have no keep-alive of their own"
        );
    }
    // A WebSocket is an open file here and another in the gateway.
    let files = raise_open_files_limit()?;
    if args.via == Via::Websocket {
        anyhow::ensure!(
            files >= args.sessions as u64 + 256,
            "{} WebSockets need as many open files, and the limit is {files} (`ulimit -Hn`)",
            args.sessions
        );
    }
    let node = NodeProcess::start(args.storage, &args.postgres_admin)?;
    let gateway = match args.via {
        Via::Quic => None,
        Via::Websocket => Some(GatewayProcess::start(node.addr, &node.fingerprint, false)?),
        Via::Webtransport => Some(GatewayProcess::start(node.addr, &node.fingerprint, true)?),
    };
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
    let none = read(&node, gateway.as_ref(), args.idle_secs).await?;

    let opener = match (&gateway, args.via) {
        (None, _) => {
            let target = node.target().await?;
            Opener::Quic { ep: device::endpoint(&target)?, target }
        }
        (Some(gw), Via::Websocket) => Opener::Websocket(WsConnector::new(gw.http)),
        (Some(gw), _) => {
            let https = gw.https.context("the gateway serves no HTTP/3")?;
            let connector = WtConnector { addr: https, pins: gw.cert_hashes.clone(), origin: Some(format!("https://{https}")) };
            let ep = wt_client::client_endpoint(std::net::Ipv4Addr::LOCALHOST.into()).map_err(anyhow::Error::msg)?;
            Opener::Webtransport { config: wt_client::client_config(connector.pins.clone()), connector, ep }
        }
    };
    let pools: Rc<PoolIndex> = Rc::default();
    let mut sessions: Vec<Held> = Vec::with_capacity(engines.len());
    let tenth = args.sessions / 10;
    let bare = args.connections_only;
    let open = |range: std::ops::Range<usize>| {
        let (opener, pools, engines) = (&opener, &pools, &engines);
        async move {
            let mut opened = Vec::with_capacity(range.len());
            for chunk in engines[range].chunks(AT_ONCE) {
                let batch = try_join_all(chunk.iter().map(|e| async move {
                    let held = opener.open(e, bare).await?;
                    if let Held::Session(s) = &held {
                        s.subscribe(e.cursor(), pools.clone()).await?;
                        if let Some(every) = heartbeat {
                            s.heartbeat(every);
                        }
                    }
                    anyhow::Ok(held)
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
    let at_tenth = read(&node, gateway.as_ref(), args.idle_secs).await?;
    sessions.extend(open(tenth..args.sessions).await.context("opening the rest of the sessions")?);
    let open_s = t.elapsed().as_secs_f64() - SETTLE.as_secs_f64() - args.idle_secs;
    tokio::time::sleep(SETTLE).await;
    let at_all = read(&node, gateway.as_ref(), args.idle_secs).await?;

    // Every session is still there: each answers a call (a bare connection is still open).
    let mut answered = 0;
    for chunk in sessions.chunks(AT_ONCE) {
        let checks = join_all(chunk.iter().map(|held| async move {
            match held {
                Held::Session(s) => s.queued(1).await.is_ok(),
                Held::Connection(c) => c.close_reason().is_none(),
            }
        }))
        .await;
        answered += checks.into_iter().filter(|&ok| ok).count();
    }

    let n = sessions.len();
    let mut sessions = sessions.into_iter();
    loop {
        let chunk: Vec<Held> = sessions.by_ref().take(AT_ONCE).collect();
        if chunk.is_empty() {
            break;
        }
        join_all(chunk.into_iter().map(|held| async move {
            match held {
                Held::Session(s) => s.close().await,
                Held::Connection(c) => c.close(0u32.into(), b"done"),
            }
        }))
        .await;
    }
    let settings = gateway.as_ref().map(|g| g.settings.clone());
    if let Some(gw) = gateway {
        gw.stop();
    }
    node.stop();

    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let beat = match heartbeat {
        Some(d) => format!("a heartbeat every {} s", d.as_secs_f64()),
        None => "no heartbeat".into(),
    };
    let (how, what) = match args.via {
        Via::Quic if bare => ("over QUIC straight to one node", "bare QUIC connections (no stream)".to_string()),
        Via::Quic => ("over QUIC straight to one node", format!("sessions (connection, login, subscription) opened with {beat}")),
        Via::Websocket => (
            "over WebSocket through a gateway to one node",
            format!("sessions (WebSocket, login, subscription) opened with {beat}"),
        ),
        Via::Webtransport => (
            "over WebTransport through a gateway to one node",
            format!("sessions (HTTP/3 connection, WebTransport session and stream, login, subscription) opened with {beat}"),
        ),
    };
    let what = if bare { format!("{what} opened") } else { what };
    println!(
        "Idle sessions {how} ({profile} build, {:?} storage): {n} devices registered in {register_s:.1} s; their {what}, in {open_s:.1} s.",
        args.storage
    );
    if let Some(s) = &settings {
        println!("Gateway (a process of its own) set for the run: {s}.");
    }
    // Between a tenth and all of them: the first sessions reuse memory that registration
    // freed, which would flatter the figure.
    let opened = (n - tenth) as f64;
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / opened;
    let per_gib = |kib: f64| 1024.0 * 1024.0 / kib.max(0.001);
    let node_per = per(at_tenth.node_kib, at_all.node_kib);
    let cpu_per_session_us = |a: f64, b: f64| (b - a) / opened * 1000.0;
    match (none.gateway, at_tenth.gateway, at_all.gateway) {
        (Some(g0), Some(g1), Some(g2)) => {
            println!("| idle sessions | gateway resident KiB | gateway CPU while idle, ms per s | node resident KiB | node CPU while idle, ms per s |");
            println!("|---|---|---|---|---|");
            for (k, g, r) in [(0, g0, &none), (tenth, g1, &at_tenth), (n, g2, &at_all)] {
                println!("| {k} | {} | {:.1} | {} | {:.1} |", g.0, g.1, r.node_kib, r.node_cpu);
            }
            let gw_per = per(g1.0, g2.0);
            println!(
                "Per idle session (from {tenth} to {n}): {gw_per:.1} KiB of gateway memory and {node_per:.1} KiB of node memory, \
                 so {:.0} sessions per GiB of gateway and node together ({:.0} per GiB of gateway, {:.0} per GiB of node).",
                per_gib(gw_per + node_per),
                per_gib(gw_per),
                per_gib(node_per)
            );
            println!(
                "Idle CPU per session (from {tenth} to {n}): {:.2} µs a second at the gateway, {:.2} at the node.",
                cpu_per_session_us(g1.1, g2.1),
                cpu_per_session_us(at_tenth.node_cpu, at_all.node_cpu)
            );
        }
        _ => {
            println!("| idle sessions | node resident KiB | node CPU while idle, ms per s |");
            println!("|---|---|---|");
            for (k, r) in [(0, &none), (tenth, &at_tenth), (n, &at_all)] {
                println!("| {k} | {} | {:.1} |", r.node_kib, r.node_cpu);
            }
            println!(
                "Per idle session (from {tenth} to {n}): {node_per:.1} KiB of node memory, so {:.0} sessions per GiB.",
                per_gib(node_per)
            );
            println!(
                "Idle CPU per session (from {tenth} to {n}): {:.2} µs a second at the node.",
                cpu_per_session_us(at_tenth.node_cpu, at_all.node_cpu)
            );
        }
    }
    if bare {
        println!("{answered} of {n} connections still open after the idle windows.");
    } else {
        println!("{answered} of {n} sessions still answered a call after the idle windows.");
    }
    anyhow::ensure!(answered == n, "{} idle sessions no longer answer", n - answered);
    Ok(())
}

/// What is held open for one device.
enum Held {
    Session(DeviceSession),
    Connection(quinn::Connection),
}

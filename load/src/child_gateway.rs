//! A gateway in a child process of its own, for `qpq-idle-sessions --via websocket` and
//! `--via webtransport`: its memory and CPU time are read apart from the node's and the
//! clients'. The child is the benchmark's binary again with `--serve-gateway`: it starts a
//! `qpq_gateway` gateway as `qpq-gateway`'s own `main` does (its flags parsed, `Gateway::bind`
//! and `run` on a multi-thread runtime), with one node, the one under test, trusted by its
//! pin; HTTP/3 and WebTransport on the HTTPS port for WebTransport, only plain HTTP for
//! WebSocket. Its session limits are set explicitly ([`configure`]): the benchmark opens all
//! its sessions from one address, which the defaults would refuse after 64. Once the node is
//! up it prints one line, `HTTP HTTPS HASHES SETTINGS` (HTTPS and HASHES `-` without HTTPS;
//! the hashes, hex and comma-separated, are those of the certificates it presents, for
//! pinning), and it shuts down gracefully when its standard input closes.

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use qpq_gateway::{Config, Gateway};

use crate::child_node::{raise_open_files_limit, ChildProcess};

/// The flag that makes a benchmark binary run [`serve`] instead.
pub const SERVE_FLAG: &str = "--serve-gateway";
/// The flag giving the child the node's address.
pub const NODE_FLAG: &str = "--gateway-node";
/// The flag giving the child the node's certificate pin (hex).
pub const PIN_FLAG: &str = "--gateway-node-pin";
/// The flag that turns HTTPS, HTTP/3 and WebTransport on in the child.
pub const HTTP3_FLAG: &str = "--gateway-http3";

/// Most sessions the gateway holds at once, and from one address, in a benchmark.
const MAX_SESSIONS: usize = 100_000;
/// How long the child waits for the gateway to reach the node.
const NODE_UP_WAIT: Duration = Duration::from_secs(15);

/// Sets what a benchmark from one address needs — session limits far above the run, no rate
/// of new sessions per address; HTTPS, HTTP/3 and WebTransport only with `http3` — and says
/// what it set. Everything else keeps the gateway's defaults.
pub fn configure(config: &mut Config, http3: bool) -> Vec<String> {
    let defaults = (config.max_sessions, config.max_sessions_per_ip, config.sessions_per_min_per_ip);
    config.max_sessions = MAX_SESSIONS;
    config.max_sessions_per_ip = MAX_SESSIONS;
    config.sessions_per_min_per_ip = 0;
    config.no_https = !http3;
    config.no_http3 = !http3;
    vec![
        format!("sessions at once {MAX_SESSIONS} (default {}), from one address {MAX_SESSIONS} (default {})", defaults.0, defaults.1),
        format!("new sessions per address a minute unlimited (0; default {})", defaults.2),
        format!("idle timeout {} s (default)", config.idle_timeout().as_secs()),
        if http3 {
            "HTTPS, HTTP/3 and WebTransport on (development certificate)".into()
        } else {
            "plain HTTP only (no HTTPS, HTTP/3 or WebTransport)".into()
        },
    ]
}

/// The child's side: the gateway, until standard input closes.
pub fn serve(node: SocketAddr, pin: &str, http3: bool) -> anyhow::Result<()> {
    raise_open_files_limit()?;
    let filter = tracing_subscriber::EnvFilter::try_new("warn")?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // The gateway serves a web app; an empty one does here.
    let dir = tempfile::tempdir().context("a temporary directory for the gateway")?;
    let (www, pkg) = (dir.path().join("www"), dir.path().join("pkg"));
    std::fs::create_dir_all(&pkg)?;
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("index.html"), "<!doctype html><title>qpq</title>")?;
    // As an operator would start it: flags, the rest defaults.
    let (node, www, pkg) = (node.to_string(), www.display().to_string(), pkg.display().to_string());
    let mut config = Config::try_parse_from([
        "qpq-gateway",
        "--listen",
        "127.0.0.1:0",
        "--https-listen",
        "127.0.0.1:0",
        "--node",
        &node,
        "--node-fingerprint",
        pin,
        "--www",
        &www,
        "--pkg",
        &pkg,
        "--log",
        "warn",
    ])?;
    let settings = configure(&mut config, http3);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let gateway = Gateway::bind(config).await?;
        tokio::time::timeout(NODE_UP_WAIT, gateway.state().nodes().wait_up(1))
            .await
            .context("the gateway does not reach the node")?;
        let listeners = gateway.listeners();
        let hashes: Vec<String> =
            gateway.state().certificates().map(|c| c.info().published_hashes()).unwrap_or_default().iter().map(hex::encode).collect();
        let https = listeners.https.filter(|_| listeners.http3).map_or("-".to_string(), |a| a.to_string());
        let hashes = if hashes.is_empty() { "-".to_string() } else { hashes.join(",") };
        println!("{} {https} {hashes} {}", listeners.http, settings.join("; "));
        let input_closed = async {
            let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
        };
        gateway.run(input_closed).await;
        anyhow::Ok(())
    })
}

/// The gateway's process: where it serves and what it was set to.
pub struct GatewayProcess {
    process: ChildProcess,
    /// Its plain-HTTP address (WebSocket on `/ws`).
    pub http: SocketAddr,
    /// Its HTTPS address, where HTTP/3 and WebTransport (`/wt`) are served on UDP, if on.
    pub https: Option<SocketAddr>,
    /// SHA-256 of the certificates it may present.
    pub cert_hashes: Vec<[u8; 32]>,
    /// What [`configure`] set, for the report.
    pub settings: String,
}

impl GatewayProcess {
    /// Starts this binary again with [`SERVE_FLAG`] for the node at `node` (pin `pin`), and
    /// waits until the gateway serves and has reached the node.
    pub fn start(node: SocketAddr, pin: &str, http3: bool) -> anyhow::Result<GatewayProcess> {
        let mut args = vec![SERVE_FLAG.to_string(), NODE_FLAG.into(), node.to_string(), PIN_FLAG.into(), pin.into()];
        if http3 {
            args.push(HTTP3_FLAG.into());
        }
        let (process, line) = ChildProcess::start(&args, "gateway")?;
        let mut parts = line.splitn(4, ' ');
        let mut next = || parts.next().context("the gateway's first line is `HTTP HTTPS HASHES SETTINGS`");
        let http = next()?.parse()?;
        let https = match next()? {
            "-" => None,
            a => Some(a.parse()?),
        };
        let cert_hashes = match next()? {
            "-" => Vec::new(),
            h => h
                .split(',')
                .map(|h| hex::decode(h).ok().and_then(|v| v.try_into().ok()).context("a certificate hash is 64 hex digits"))
                .collect::<anyhow::Result<_>>()?,
        };
        let settings = next()?.to_string();
        Ok(GatewayProcess { process, http, https, cert_hashes, settings })
    }

    /// Closes its input, which shuts it down, and waits for it.
    pub fn stop(self) {
        self.process.stop();
    }
}

/// Its memory and CPU time are its process's.
impl std::ops::Deref for GatewayProcess {
    type Target = ChildProcess;

    fn deref(&self) -> &ChildProcess {
        &self.process
    }
}

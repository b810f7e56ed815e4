//! `qpq-load`: load a server node with real devices, groups and ciphertexts, and compare with
//! a raw quinn echo of the same concurrency and sizes in the same run (see the library).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use qpq_load::{Params, Storage, Target};

/// Load a quicproquo node and compare it with a raw quinn echo, in one run.
#[derive(Parser, Debug)]
#[command(name = "qpq-load", version)]
struct Args {
    /// Number of MLS groups (one channel each).
    #[arg(long, default_value_t = 4)]
    groups: usize,
    /// Devices per group (each its own user); every message reaches the other GROUP_SIZE - 1.
    #[arg(long, default_value_t = 4)]
    group_size: usize,
    /// Sending devices (spread over the groups); also the raw echo's number of senders.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Enqueues (and echo frames) each sender keeps outstanding.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Bytes of each message's text; the enqueued ciphertext (and the echo frame) is larger.
    #[arg(long, default_value_t = 32)]
    text_bytes: usize,
    /// Ciphertexts encrypted per sender before the run, replayed under fresh message ids.
    #[arg(long, default_value_t = 256)]
    pool: usize,
    /// Seconds measured, for each of the two paths (qpq, then the raw echo).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before each window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Storage of the node started here (ignored with --node).
    #[arg(long, value_enum, default_value = "sqlite")]
    storage: Storage,
    /// PostgreSQL server to create the run's database on (--storage postgres).
    #[arg(long, env = "QPQ_LOAD_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_admin: String,
    /// Load this running node instead of starting one (needs --fingerprint).
    #[arg(long, requires = "fingerprint")]
    node: Option<SocketAddr>,
    /// SHA-256 of the running node's certificate, hex (printed by qpq-server at start).
    #[arg(long)]
    fingerprint: Option<String>,
    /// Messages each account may send a minute on the node started here; 0 (the default)
    /// turns the limit off. The node's own default is 1200: give it to see `rate_limited`
    /// answers waited out as the node says.
    #[arg(long, default_value_t = 0)]
    sends_per_min: u32,
    /// Log filter of the node started here.
    #[arg(long, default_value = "error")]
    node_log: String,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let target = match (a.node, a.fingerprint) {
        (Some(addr), Some(fingerprint)) => Target::Remote { addr, fingerprint },
        _ => Target::Spawn { storage: a.storage, postgres_admin: a.postgres_admin, sends_per_min: a.sends_per_min },
    };
    let params = Params {
        target,
        groups: a.groups,
        group_size: a.group_size,
        senders: a.senders,
        in_flight: a.in_flight,
        text_bytes: a.text_bytes,
        pool: a.pool,
        warmup: Duration::from_secs_f64(a.warmup),
        duration: Duration::from_secs_f64(a.duration),
        node_log: a.node_log,
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qpq-load: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match tokio::task::LocalSet::new().block_on(&rt, qpq_load::run(&params)) {
        Ok(report) => {
            print!("{report}");
            if report.qpq.exactly_once.is_ok() && report.qpq.queues_empty.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("qpq-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

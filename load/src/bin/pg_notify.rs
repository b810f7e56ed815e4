//! `qpq-pg-notify`: whether PostgreSQL's LISTEN/NOTIFY, which wakes the nodes of a cluster,
//! limits how many messages the cluster can queue.
//!
//! A node queues a message in one transaction: the envelope rows (one per recipient device)
//! and, inside the same transaction, a `pg_notify` whose payload names the devices
//! (`server/src/storage/postgres/wakeups.rs`). PostgreSQL serialises the commits of
//! transactions that notified (they take one lock on the notification queue while they
//! commit), so commits that would otherwise share a WAL flush wait for one another.
//!
//! This program measures exactly that cost, apart from everything else a node does. On a
//! database of its own it runs, for each number of concurrent writers (connections, as a
//! node's pool has 16), transactions of the same shape as a node's enqueue to a group of four
//! — three envelope rows of `--payload-bytes` each, for devices no other writer touches — with
//! and without the `pg_notify` of the node's payload format, alternating, each for
//! `--secs`. `--listeners` connections LISTEN as the other nodes of a cluster do, and must
//! receive every notification. It prints commits per second both ways and the ratio.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use qpq_load::target::PgDb;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection};

/// The channel this program notifies on (not the nodes' own).
const CHANNEL: &str = "qpq_notify_bench";

#[derive(Parser, Debug)]
#[command(about = "What PostgreSQL's NOTIFY costs a cluster's enqueue transactions: commits/s with and without it.")]
struct Args {
    /// Numbers of concurrent writers (connections) to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 64])]
    writers: Vec<usize>,
    /// Seconds each measurement lasts.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Envelope rows per transaction (recipient devices of one message).
    #[arg(long, default_value_t = 3)]
    recipients: usize,
    /// Bytes of each envelope's payload (a 32-byte text's ciphertext is 318).
    #[arg(long, default_value_t = 318)]
    payload_bytes: usize,
    /// Connections listening, as the other nodes of a cluster.
    #[arg(long, default_value_t = 2)]
    listeners: usize,
    /// Rounds: each round measures every writer count without and with NOTIFY.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// PostgreSQL server to create the run's database on.
    #[arg(long, env = "QPQ_LOAD_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_admin: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qpq-pg-notify: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qpq-pg-notify: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.recipients >= 1 && args.secs > 0.0, "--recipients must be at least 1 and --secs above 0");
    let db = PgDb::create(&args.postgres_admin).await?;
    let result = measure(args, &db.url).await;
    db.drop_database().await;
    result
}

/// One measurement.
struct Figure {
    writers: usize,
    notify: bool,
    commits: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn measure(args: &Args, url: &str) -> anyhow::Result<()> {
    let mut setup = PgConnection::connect(url).await.context("connecting to the run's database")?;
    sqlx::raw_sql(
        "CREATE TABLE envelopes (device BIGINT NOT NULL, seq BIGINT NOT NULL, payload BYTEA NOT NULL,
                                 PRIMARY KEY (device, seq))",
    )
    .execute(&mut setup)
    .await?;
    let received = Arc::new(AtomicU64::new(0));
    let mut listening = Vec::new();
    for _ in 0..args.listeners {
        let mut l = PgListener::connect(url).await.context("connecting a listener")?;
        l.listen(CHANNEL).await?;
        let received = received.clone();
        listening.push(tokio::spawn(async move {
            while let Ok(n) = l.recv().await {
                // The node's format: the sending node's id, then a line per device.
                if n.payload().lines().count() > 1 {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let most = args.writers.iter().copied().max().unwrap_or(1);
    let pool = PgPoolOptions::new().max_connections(most as u32).min_connections(most as u32).connect(url).await?;

    let mut figures = Vec::new();
    let mut notified = 0;
    let mut next_device = 0i64;
    for _ in 0..args.rounds {
        for &writers in &args.writers {
            for notify in [false, true] {
                let f = window(&pool, args, writers, notify, &mut next_device).await?;
                if notify {
                    notified += f.commits;
                }
                eprintln!("{writers} writers, {}: {:.0} commits/s", if notify { "NOTIFY" } else { "no NOTIFY" }, f.commits as f64 / f.secs);
                figures.push(f);
            }
        }
    }
    // Every notification reaches every listener.
    let expected = notified * args.listeners as u64;
    let t = Instant::now();
    while received.load(Ordering::Relaxed) < expected && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = received.load(Ordering::Relaxed);
    for l in listening {
        l.abort();
    }
    anyhow::ensure!(got == expected, "the listeners received {got} notifications of {expected}");

    println!(
        "PostgreSQL commits of an enqueue's shape ({} envelope rows of {} bytes), with and without the \
         node's NOTIFY, {} listeners, {} s per measurement, {} rounds; every notification reached every listener ({got}).",
        args.recipients, args.payload_bytes, args.listeners, args.secs, args.rounds
    );
    println!("| writers | round | commits/s without | commits/s with NOTIFY | with / without | p50 / p99 ms without | p50 / p99 ms with |");
    println!("|---|---|---|---|---|---|---|");
    for (i, pair) in figures.chunks(2).enumerate() {
        let (off, on) = (&pair[0], &pair[1]);
        let (r_off, r_on) = (off.commits as f64 / off.secs, on.commits as f64 / on.secs);
        println!(
            "| {} | {} | {r_off:.0} | {r_on:.0} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
            off.writers,
            i / args.writers.len() + 1,
            r_on / r_off,
            off.p50_ms,
            off.p99_ms,
            on.p50_ms,
            on.p99_ms
        );
        debug_assert!(!off.notify && on.notify);
    }
    Ok(())
}

/// `writers` connections commit enqueue-shaped transactions for `args.secs`.
async fn window(
    pool: &sqlx::PgPool,
    args: &Args,
    writers: usize,
    notify: bool,
    next_device: &mut i64,
) -> anyhow::Result<Figure> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        // Devices of this writer's own: no row is contended but the notification queue.
        let devices: Vec<i64> = (0..args.recipients as i64).map(|i| *next_device + i).collect();
        *next_device += args.recipients as i64;
        let (pool, stop) = (pool.clone(), stop.clone());
        let payload = vec![0xa5u8; args.payload_bytes];
        // The node's payload format: its id, then "q <device hex>" per device.
        let wake = std::iter::once("00000000000000a1".to_string())
            .chain(devices.iter().map(|d| format!("q {:032x}", d)))
            .collect::<Vec<_>>()
            .join("\n");
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut latencies = Vec::new();
            let mut seq = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let mut tx = conn.begin().await?;
                seq += 1;
                for d in &devices {
                    sqlx::query("INSERT INTO envelopes (device, seq, payload) VALUES ($1, $2, $3)")
                        .bind(d)
                        .bind(seq)
                        .bind(&payload)
                        .execute(&mut *tx)
                        .await?;
                }
                if notify {
                    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(&wake).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let secs = t.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |q: f64| all.get(((all.len() as f64 - 1.0) * q) as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    Ok(Figure { writers, notify, commits: all.len() as u64, secs, p50_ms: at(0.5), p99_ms: at(0.99) })
}

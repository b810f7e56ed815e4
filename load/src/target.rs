//! The node under load: one started in this process (`qpq_server::spawn`, on SQLite in a
//! temporary directory or on a PostgreSQL database created for the run and dropped after it),
//! or one already running elsewhere, reached by address and certificate pin.
//!
//! A node started here gets its limits set explicitly (`spawn_config`): a load test from a few
//! accounts would otherwise spend the per-account send bucket in seconds and measure the limit.

use std::net::SocketAddr;

use anyhow::Context;
use rand::RngCore;

/// Where the node's data lives, for a node started here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    /// An SQLite file in a temporary directory (the node's default backend).
    Sqlite,
    /// A database of its own on the PostgreSQL server at `--postgres-admin`.
    Postgres,
    /// The same, the node waking other nodes through NATS instead of PostgreSQL's NOTIFY
    /// (`QPQ_LOAD_NATS`, default nats://127.0.0.1:4222).
    PostgresNats,
}

/// Which node to load.
#[derive(Clone, Debug)]
pub enum Target {
    /// Start a node in this process.
    Spawn {
        /// Its storage.
        storage: Storage,
        /// Admin URL of the PostgreSQL server (for `Storage::Postgres`).
        postgres_admin: String,
        /// Messages each account may send a minute; 0 turns the limit off (to see how the
        /// node and this program behave under its limit, give the node's default, 1200).
        sends_per_min: u32,
    },
    /// A running node.
    Remote {
        /// Its QUIC address.
        addr: SocketAddr,
        /// SHA-256 of its certificate, hex.
        fingerprint: String,
    },
}

/// The node of one run; stops it and drops its database when dropped through [`Self::finish`].
pub struct NodeUnderTest {
    /// Its QUIC address.
    pub addr: SocketAddr,
    /// Its certificate pin (hex).
    pub fingerprint: String,
    /// What it is, for the report.
    pub description: String,
    /// The limits this run set, for the report (empty for a remote node).
    pub limits: Vec<String>,
    running: Option<qpq_server::RunningNode>,
    db: Option<PgDb>,
    _dir: Option<tempfile::TempDir>,
}

impl NodeUnderTest {
    /// Starts the node (or names the remote one).
    pub async fn start(target: &Target, log: &str) -> anyhow::Result<NodeUnderTest> {
        match target {
            Target::Remote { addr, fingerprint } => Ok(NodeUnderTest {
                addr: *addr,
                fingerprint: fingerprint.clone(),
                description: format!("the running node at {addr} (its own limits apply)"),
                limits: Vec::new(),
                running: None,
                db: None,
                _dir: None,
            }),
            Target::Spawn { storage, postgres_admin, sends_per_min } => {
                let dir = tempfile::tempdir().context("a temporary directory for the node")?;
                let mut cfg = qpq_server::Config::for_tests(dir.path());
                cfg.log = log.to_string();
                let limits = set_limits(&mut cfg, *sends_per_min);
                let db = match storage {
                    Storage::Sqlite => None,
                    Storage::Postgres | Storage::PostgresNats => {
                        let db = PgDb::create(postgres_admin).await?;
                        cfg.database = Some(db.url.clone());
                        Some(db)
                    }
                };
                if *storage == Storage::PostgresNats {
                    cfg.nats_url = Some(std::env::var("QPQ_LOAD_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()));
                }
                let backend = match &db {
                    None => format!("SQLite in {}", dir.path().display()),
                    Some(db) if cfg.nats_url.is_some() => {
                        format!("PostgreSQL database {} (created for this run), wake-ups through NATS", db.name)
                    }
                    Some(db) => format!("PostgreSQL database {} (created for this run)", db.name),
                };
                let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
                let running = match qpq_server::spawn(cfg) {
                    Ok(r) => r,
                    Err(e) => {
                        if let Some(db) = &db {
                            db.drop_database().await;
                        }
                        return Err(e.context("the node does not start"));
                    }
                };
                Ok(NodeUnderTest {
                    addr: running.addr(),
                    fingerprint: running.fingerprint().to_string(),
                    description: format!("a {profile} build started in this process, {backend}"),
                    limits,
                    running: Some(running),
                    db,
                    _dir: Some(dir),
                })
            }
        }
    }

    /// True when the node runs in this process (its thread's CPU time can be read).
    pub fn in_process(&self) -> bool {
        self.running.is_some()
    }

    /// Stops a node started here and drops its database.
    pub async fn finish(mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
        if let Some(db) = self.db.take() {
            db.drop_database().await;
        }
    }
}

/// Sets the limits a load test would otherwise measure instead of the node (the send limit
/// as asked, off by default), and says which.
/// Quotas that bound memory or the queue (calls in flight per session, queue depth per
/// device) keep their defaults: hitting them is a finding, reported as `quota_exceeded`.
fn set_limits(cfg: &mut qpq_server::Config, sends_per_min: u32) -> Vec<String> {
    cfg.rates.sends_per_min = sends_per_min;
    cfg.rates.registrations_per_min = 0;
    cfg.rates.logins_per_min = 0;
    cfg.rates.claims_per_min = 0;
    cfg.max_connections_per_address = 100_000;
    let sends = match sends_per_min {
        0 => "sends per account off".to_string(),
        n => format!("sends {n} a minute per account"),
    };
    vec![
        format!("rate limits: {sends}; registrations, logins and claims off (0 a minute)"),
        "connections per address 100000".into(),
        format!("calls in flight per session {} (default)", cfg.max_calls_in_flight),
        format!("queue per device {} (default)", cfg.max_queue_per_device),
    ]
}

/// A PostgreSQL database of this run's own.
pub struct PgDb {
    admin: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl PgDb {
    /// Creates it on the server of `admin` (the URL of a database there to connect to).
    pub async fn create(admin: &str) -> anyhow::Result<PgDb> {
        let mut b = [0u8; 6];
        rand::thread_rng().fill_bytes(&mut b);
        let name = format!("qpq_load_{}", hex::encode(b));
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {admin}"))?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create the database {name}"))?;
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).context("the admin URL names a database")?;
        Ok(PgDb { url: format!("{base}/{name}"), admin: admin.to_string(), name })
    }

    /// Drops it, saying so when it cannot.
    pub async fn drop_database(&self) {
        match <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin).await {
            Ok(mut conn) => {
                let q = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                if let Err(e) = sqlx::raw_sql(&q).execute(&mut conn).await {
                    eprintln!("could not drop the database {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop the database {}: {e}", self.name),
        }
    }
}

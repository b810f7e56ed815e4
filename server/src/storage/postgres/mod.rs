//! The PostgreSQL backend: several server nodes sharing one database. It supplies the
//! PostgreSQL text of every statement the shared transaction scripts (`../scripts/`) use,
//! and its locking and retry rules.
//!
//! Every invariant holds across processes, enforced by row locks rather than by anything
//! in-process: a channel's row serialises its commits (exactly one per epoch), a device's row
//! serialises its sequence numbers and key-package claims, a user's row its device additions,
//! and an advisory lock per name its registration and deletion. Transactions PostgreSQL
//! aborts to break a deadlock or a serialisation conflict are retried. Wake-ups travel by
//! `pg_notify` inside the transaction that queued the envelopes and come back through one
//! LISTEN connection per node, or by NATS after the commit (`wakeups`); nothing polls.

mod accounts;
mod blobs;
mod blocks;
mod links;
mod messaging;
mod push;
mod wakeups;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Postgres;
use tokio::sync::broadcast;

use super::backend::{Backend, Conn, Tx, WAKE_CAPACITY};
use super::rows::{db, describe, TxError};
use super::{Leadership, StoreError, Wake};

/// Session advisory lock held while migrating, so nodes starting together migrate one by one.
const MIGRATION_LOCK: i64 = 0x7170_7100_6d69_6772;

/// Connections per node.
const POOL_SIZE: u32 = 16;

/// How long a call waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Storage in a PostgreSQL database shared by any number of server nodes.
pub struct PgStorage {
    pool: PgPool,
    /// Random per process; tells this node's notifications from other nodes'.
    node: u64,
    wake: broadcast::Sender<Wake>,
    /// How other nodes hear of this one's changes and this one of theirs (until dropped).
    bus: Bus,
}

/// The wake-up bus of the cluster (`wakeups`).
enum Bus {
    /// `pg_notify` in each transaction; a LISTEN connection forwards other nodes' wake-ups.
    Notify(#[allow(dead_code)] wakeups::Listener),
    /// NATS, after each commit.
    Nats(wakeups::NatsBus),
}

impl PgStorage {
    /// Connects to `url` (`postgres://user@host:port/database`), runs the migrations under an
    /// advisory lock, and starts listening for other nodes' wake-ups.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_bus(url, None).await
    }

    /// As [`Self::connect`], with the wake-ups on the NATS server at `nats` when given
    /// (every node of a cluster must use the same bus).
    pub async fn connect_with_bus(url: &str, nats: Option<&str>) -> Result<Self, StoreError> {
        // The URL may carry a password: never echo it.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Config("the PostgreSQL URL is malformed".into()))?;
        // No round trip to test a connection as it leaves the pool (sqlx tests each one as it
        // comes back already): a connection that died idle, as all do when PostgreSQL
        // restarts, fails its first statement, and `write` begins again on another one.
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(|e| describe("connect to PostgreSQL", &e))?;
        migrate(&pool).await?;
        let node = rand::random::<u64>();
        let (wake, _) = broadcast::channel(WAKE_CAPACITY);
        let bus = match nats {
            Some(nats) => {
                let database = options.get_database().unwrap_or("postgres").to_string();
                Bus::Nats(wakeups::NatsBus::start(nats, &database, node, wake.clone()).await?)
            }
            None => Bus::Notify(wakeups::Listener::start(options, node, wake.clone()).await?),
        };
        Ok(PgStorage { pool, node, wake, bus })
    }
}

/// Runs the migrations on one connection holding [`MIGRATION_LOCK`].
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    const OP: &str = "migrate database";
    let mut conn = pool.acquire().await.map_err(|e| describe(OP, &e))?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(|e| describe(OP, &e))?;
    let migrated = super::migrations::postgres().run(&mut *conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await;
    if unlocked.is_err() {
        // Closing the session releases the lock for sure.
        let _ = conn.close().await;
    }
    migrated.map_err(|e| StoreError::Backend(format!("{OP}: {e}")))?;
    unlocked.map_err(|e| describe(OP, &e))?;
    Ok(())
}

#[async_trait]
impl Backend for PgStorage {
    type Tx = PgTx;

    /// A `BEGIN` that fails for want of a connection (not refused by the database) ran
    /// nothing; it is tried again on another connection (the failed one is closed as it goes
    /// back to the pool), at most once per pooled connection.
    async fn write(&self, op: &'static str) -> Result<PgTx, TxError> {
        let mut left = POOL_SIZE;
        let tx = loop {
            match self.pool.begin().await {
                Ok(tx) => break tx,
                Err(e) if left > 0 && connection_lost(&e) => left -= 1,
                Err(e) => return Err(db(op)(e)),
            }
        };
        Ok(PgTx { conn: Conn::tx(tx, op), node: self.node, notify: self.notifies() })
    }

    async fn read(&self, op: &'static str) -> Result<PgTx, TxError> {
        let conn = self.pool.acquire().await.map_err(db(op))?;
        Ok(PgTx { conn: Conn::read(conn, op), node: self.node, notify: self.notifies() })
    }

    /// Outside a transaction: the one statement commits by itself before it answers.
    async fn write_one(&self, op: &'static str) -> Result<PgTx, TxError> {
        self.read(op).await
    }

    /// Deadlock detected or serialisation failure: the transaction may simply be run again.
    fn retryable(&self, e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
    }

    fn wake(&self) -> &broadcast::Sender<Wake> {
        &self.wake
    }

    fn announce_committed(&self, wakes: &[Wake]) {
        if let Bus::Nats(nats) = &self.bus {
            nats.publish(wakes);
        }
    }

    /// A session advisory lock on a connection taken out of the pool: held while the
    /// returned value lives (dropping it closes the connection, which releases the lock),
    /// and by one node of the cluster at a time.
    async fn lead(&self, lock: i64) -> Result<Option<Leadership>, TxError> {
        const OP: &str = "take the push sender role";
        let mut conn = self.pool.acquire().await.map_err(db(OP))?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lock)
            .fetch_one(&mut conn)
            .await
            .map_err(db(OP))?;
        Ok(held.then(|| Leadership::new(Box::new(conn))))
    }
}

/// True when `e` says the connection is gone: I/O or protocol failures, or the server ending
/// the session (SQLSTATE class 08, or 57P01–57P03 when it shuts down or restarts).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

impl PgStorage {
    /// Whether wake-ups go out by `pg_notify` in the transaction.
    fn notifies(&self) -> bool {
        matches!(self.bus, Bus::Notify(_))
    }
}

/// A transaction (or read connection) of this node.
pub struct PgTx {
    conn: Conn<Postgres>,
    /// This node's id, sent with wake-ups.
    node: u64,
    /// Whether wake-ups go out by `pg_notify` in the transaction (else after it, by NATS).
    notify: bool,
}

#[async_trait]
impl Tx for PgTx {
    async fn commit(self) -> Result<(), TxError> {
        self.conn.finish().await
    }
}

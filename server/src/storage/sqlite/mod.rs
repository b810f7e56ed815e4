//! The SQLite backend: one embedded database file for a single-node server. It supplies the
//! SQLite text of every statement the shared transaction scripts (`../scripts/`) use, and
//! its locking: all writes go through one connection and begin `IMMEDIATE`, so write
//! transactions are serialised in-process and never fail with `SQLITE_BUSY` half-way (the
//! scripts' `lock_*` statements are plain reads here, and nothing is retried); reads use a
//! separate read-only pool and see WAL snapshots, so they never wait for writers. Wake-ups
//! are an in-process broadcast sent after each commit. It does not support several processes
//! sharing the file: use PostgreSQL for that.

mod accounts;
mod blobs;
mod messaging;
mod push;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite;
use tokio::sync::broadcast;

use super::backend::{Backend, Conn, Tx, WAKE_CAPACITY};
use super::rows::{db, describe, TxError};
use super::{Leadership, StoreError, Wake};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for a lock held by something outside this process (a backup
/// tool, say) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Storage in one SQLite file (WAL mode, foreign keys on).
pub struct SqliteStorage {
    writer: SqlitePool,
    reader: SqlitePool,
    wake: broadcast::Sender<Wake>,
}

impl SqliteStorage {
    /// Opens (creating if missing) the database at `path` and runs the migrations.
    /// `:memory:` gives a private in-memory database on a single connection.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        if path.is_empty() {
            return Err(StoreError::Config("sqlite:// needs a file path, e.g. sqlite://qpq.db".into()));
        }
        let in_memory = path == ":memory:";
        let base = if in_memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| describe("open database", &e))?
        } else {
            SqliteConnectOptions::new().filename(path)
        };
        let write_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(write_options)
            .await
            .map_err(|e| describe("open database", &e))?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Backend(format!("migrate database: {e}")))?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(base.read_only(true).busy_timeout(BUSY_TIMEOUT))
                .await
                .map_err(|e| describe("open database for reading", &e))?
        };
        let (wake, _) = broadcast::channel(WAKE_CAPACITY);
        Ok(SqliteStorage { writer, reader, wake })
    }
}

#[async_trait]
impl Backend for SqliteStorage {
    type Tx = Conn<Sqlite>;

    /// Begins a write transaction holding the database's write lock from the start.
    async fn write(&self, op: &'static str) -> Result<Conn<Sqlite>, TxError> {
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db(op))?;
        Ok(Conn::tx(tx, op))
    }

    async fn read(&self, op: &'static str) -> Result<Conn<Sqlite>, TxError> {
        Ok(Conn::read(self.reader.acquire().await.map_err(db(op))?, op))
    }

    /// Writers never conflict (one connection, `BEGIN IMMEDIATE`): nothing is retried.
    fn retryable(&self, _: &sqlx::Error) -> bool {
        false
    }

    fn wake(&self) -> &broadcast::Sender<Wake> {
        &self.wake
    }

    /// One process per database file: this process holds every role.
    async fn lead(&self, _lock: i64) -> Result<Option<Leadership>, TxError> {
        Ok(Some(Leadership::new(Box::new(()))))
    }
}

#[async_trait]
impl Tx for Conn<Sqlite> {
    async fn commit(self) -> Result<(), TxError> {
        self.finish().await
    }
}

/// A list of internal keys as a JSON array, for `json_each` (SQLite has no array type).
fn key_list(keys: &[i64]) -> String {
    let items: Vec<String> = keys.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(","))
}

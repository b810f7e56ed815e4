//! The SQLite backend: one embedded database file for a single-node server. It supplies the
//! SQLite text of every statement the shared transaction scripts (`../scripts/`) use, and
//! its locking: all writes go through one connection, each in a savepoint of a batch
//! transaction that begins `IMMEDIATE` and is committed once for every write that joined
//! it (`../group.rs`), so writes are serialised in-process and never fail with
//! `SQLITE_BUSY` half-way (the scripts' `lock_*` statements are plain reads here, and
//! nothing is retried); reads use a separate read-only pool and see WAL snapshots, so they
//! never wait for writers and never see a batch before its COMMIT. Wake-ups are an
//! in-process broadcast sent after the COMMIT. It does not support several processes
//! sharing the file: use PostgreSQL for that.

mod accounts;
mod blobs;
mod blocks;
mod links;
mod messaging;
mod push;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite};
use tokio::sync::{broadcast, Mutex};

use super::backend::{Backend, Conn, Tx, WAKE_CAPACITY};
use super::group::Writer;
use super::rows::{db, describe, TxError};
use super::{Leadership, StoreError, Wake};

/// How long a connection waits for a lock held by something outside this process (a backup
/// tool, say) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Storage in one SQLite file (WAL mode, foreign keys on).
pub struct SqliteStorage {
    writer: Arc<Mutex<Writer<Sqlite>>>,
    /// `None` for `:memory:`, whose reads take the write connection between scripts (and may
    /// see a batch before its COMMIT: such a database is gone with the process anyway).
    reader: Option<SqlitePool>,
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
        let mut conn = write_options.connect().await.map_err(|e| describe("open database", &e))?;
        super::migrations::sqlite().run(&mut conn).await.map_err(|e| StoreError::Backend(format!("migrate database: {e}")))?;
        let writer = Writer::new(conn, write_options);
        let reader = if in_memory {
            // A private in-memory database exists on its one connection only.
            None
        } else {
            Some(
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(base.read_only(true).busy_timeout(BUSY_TIMEOUT))
                    .await
                    .map_err(|e| describe("open database for reading", &e))?,
            )
        };
        let (wake, _) = broadcast::channel(WAKE_CAPACITY);
        Ok(SqliteStorage { writer, reader, wake })
    }
}

#[async_trait]
impl Backend for SqliteStorage {
    type Tx = Conn<Sqlite>;

    /// Opens a savepoint for the write in the current batch, which holds the database's write
    /// lock from its `BEGIN IMMEDIATE` on (see `super::group`).
    async fn write(&self, op: &'static str) -> Result<Conn<Sqlite>, TxError> {
        let mut writer = self.writer.clone().lock_owned().await;
        writer.savepoint("BEGIN IMMEDIATE").await.map_err(db(op))?;
        Ok(Conn::grouped(writer, true, op))
    }

    async fn read(&self, op: &'static str) -> Result<Conn<Sqlite>, TxError> {
        match &self.reader {
            Some(pool) => Ok(Conn::read(pool.acquire().await.map_err(db(op))?, op)),
            None => {
                let mut writer = self.writer.clone().lock_owned().await;
                writer.recover().await.map_err(db(op))?;
                Ok(Conn::grouped(writer, false, op))
            }
        }
    }

    async fn settle(&self, batch: u64) -> Result<(), StoreError> {
        Writer::settle(&self.writer, batch).await
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

//! The SQLite backend: one embedded database file for a single-node server. It supplies the
//! SQLite text of every statement the shared transaction scripts (`../scripts/`) use, and
//! its locking: all writes go through one connection, each in a savepoint of a batch
//! transaction that begins `IMMEDIATE` and is committed once for every write that joined
//! it (`../group.rs`), so writes are serialised in-process and never fail with
//! `SQLITE_BUSY` half-way (the scripts' `lock_*` statements are plain reads here, and
//! nothing is retried); reads use separate read-only connections and see WAL snapshots, so
//! they never wait for writers and never see a batch before its COMMIT. Wake-ups are an
//! in-process broadcast sent after the COMMIT. It does not support several processes
//! sharing the file: use PostgreSQL for that.
//!
//! Statements run through rusqlite on the calling thread: a statement takes microseconds,
//! far less than handing it to a worker thread and back. Durability is WAL with
//! `synchronous = NORMAL`: a committed batch survives the process crashing; a power cut may
//! lose the batches committed since the WAL was last synced (at a checkpoint), never
//! corrupting the file. SQLite's automatic checkpoint is off, since it would run inside
//! whichever caller's COMMIT crossed the threshold (milliseconds of I/O and an fsync on a
//! runtime thread); a thread of the storage's own checkpoints the WAL instead
//! ([`checkpoints`]).

mod accounts;
mod blobs;
mod blocks;
mod links;
mod messaging;
mod push;
mod statement;

use std::str::FromStr;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection as _};
use tokio::sync::{broadcast, Mutex, OwnedMutexGuard};

use super::backend::{Backend, Tx, WAKE_CAPACITY};
use super::group::{Reopen, Writer};
use super::rows::{describe, describe_sqlite, sqlite, TxError};
use super::{Leadership, StoreError, Wake};
use statement::Statement;

/// How long a connection waits for a lock held by something outside this process (a backup
/// tool, say) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: more than the backend has, so none is prepared
/// twice.
const STATEMENTS_CACHED: usize = 160;

/// Read-only connections kept open between reads. A read runs to its end without waiting,
/// so there are never many more at once than the runtime has threads.
const READERS_KEPT: usize = 4;

/// How often the WAL is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Storage in one SQLite file (WAL mode, foreign keys on).
pub struct SqliteStorage {
    writer: Arc<Mutex<Writer>>,
    /// `None` for `:memory:`, whose reads take the write connection between scripts (and may
    /// see a batch before its COMMIT: such a database is gone with the process anyway).
    readers: Option<Arc<Readers>>,
    wake: broadcast::Sender<Wake>,
    /// Dropped with the storage, which stops the checkpoint thread (none for `:memory:`).
    _checkpoints: Option<mpsc::Sender<()>>,
}

impl SqliteStorage {
    /// Opens (creating if missing) the database at `path` and runs the migrations.
    /// `:memory:` gives a private in-memory database on a single connection.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        if path.is_empty() {
            return Err(StoreError::Config("sqlite:// needs a file path, e.g. sqlite://qpq.db".into()));
        }
        let (wake, _) = broadcast::channel(WAKE_CAPACITY);
        if path == ":memory:" {
            let conn = Connection::open_in_memory().map_err(|e| describe_sqlite("open database", &e))?;
            configure_writer(&conn).map_err(|e| describe_sqlite("open database", &e))?;
            super::migrations::create_sqlite_schema(&conn).map_err(|e| describe_sqlite("migrate database", &e))?;
            // The database lives on this one connection: a new one would be empty.
            let reopen: Reopen = Box::new(|| Err(rusqlite::Error::InvalidPath("an in-memory database cannot be reopened".into())));
            return Ok(SqliteStorage { writer: Writer::new(conn, reopen), readers: None, wake, _checkpoints: None });
        }
        migrate(path).await?;
        let conn = open_writer(path).map_err(|e| describe_sqlite("open database", &e))?;
        let reopen_path = path.to_owned();
        let writer = Writer::new(conn, Box::new(move || open_writer(&reopen_path)));
        let readers = Arc::new(Readers { path: path.to_owned(), idle: std::sync::Mutex::new(Vec::new()) });
        // One reader opened now, so a file that cannot be read fails here rather than later.
        let first = readers.take().map_err(|e| describe_sqlite("open database for reading", &e))?;
        readers.give(first);
        let checkpoints = checkpoints(path).map_err(|e| describe_sqlite("open database for checkpoints", &e))?;
        Ok(SqliteStorage { writer, readers: Some(readers), wake, _checkpoints: Some(checkpoints) })
    }
}

/// Runs the migrations with sqlx's migrator on a connection of its own (closed after), so
/// files made by earlier versions keep their `_sqlx_migrations` record and checks.
async fn migrate(path: &str) -> Result<(), StoreError> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| describe("open database", &e))?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let mut conn = options.connect().await.map_err(|e| describe("open database", &e))?;
    super::migrations::sqlite().run(&mut conn).await.map_err(|e| StoreError::Backend(format!("migrate database: {e}")))?;
    conn.close().await.map_err(|e| describe("open database", &e))
}

/// The write connection of the file at `path` (which exists: the migrations made it).
fn open_writer(path: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName("journal_mode".into()));
    }
    configure_writer(&conn)?;
    // Checkpoints are the storage's own thread's (see the module's comment).
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
    Ok(conn)
}

/// What every write connection sets: durability as the module says, foreign keys, and what
/// every connection sets ([`configure`]).
fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON")?;
    configure(conn)
}

/// What every connection sets: the wait for outside lockers, the statement cache, and the
/// query planner's stability guarantee. Without the guarantee SQLite plans a statement anew
/// whenever a value bound to it might change the plan, and the partial index on
/// `envelopes (expires_at) WHERE expires_at > 0` made every fetch such a statement (its
/// `expires_at > ?` with the time now): measured under `qpq-load`, re-parsing and re-planning
/// it took 8 % of the node's CPU. No statement here needs a plan chosen by its values.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Starts the thread that checkpoints the WAL of `path` every [`CHECKPOINT_EVERY`], on a
/// connection of its own, until the returned sender is dropped. Checkpoints are `PASSIVE`:
/// they copy what no reader still needs into the database file and never block the writer
/// or readers; the writer starts the WAL over once a checkpoint has copied all of it.
fn checkpoints(path: &str) -> rusqlite::Result<mpsc::Sender<()>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("qpq-sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                // The row says whether it was busy and how far it got; a checkpoint cut short
                // is simply continued by the next one.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %describe_sqlite("checkpoint", &e), "WAL checkpoint failed");
                }
            }
        })
        .map_err(|_| rusqlite::Error::InvalidParameterName("checkpoint thread".into()))?;
    Ok(stop)
}

/// Read-only connections to the file, kept between reads.
struct Readers {
    path: String,
    idle: std::sync::Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn)?;
                Ok(conn)
            }
        }
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < READERS_KEPT {
            idle.push(conn);
        }
    }
}

/// A connection as a script holds it, and the operation its errors are reported under.
pub struct SqliteTx {
    handle: Handle,
    op: &'static str,
}

enum Handle {
    /// A savepoint in the write batch (`true` until released), or (`false`) a read on the
    /// write connection of an in-memory database.
    Writer(OwnedMutexGuard<Writer>, bool),
    /// A read-only connection, given back when the script ends (`None` only then).
    Reader(Option<Connection>, Arc<Readers>),
}

impl SqliteTx {
    fn conn(&self) -> &Connection {
        match &self.handle {
            Handle::Writer(writer, _) => writer.conn(),
            Handle::Reader(Some(conn), _) => conn,
            Handle::Reader(None, _) => unreachable!("a reader's connection is taken only as it is dropped"),
        }
    }

    /// A statement to run on this connection.
    fn sql<'c, 'q>(&'c self, sql: &'q str) -> Statement<'c, 'q> {
        Statement::new(self.conn(), self.op, sql)
    }
}

/// A script that ends without committing (it failed, or its caller was dropped) undoes its
/// writes; a reader's connection goes back to the pool.
impl Drop for SqliteTx {
    fn drop(&mut self) {
        match &mut self.handle {
            Handle::Writer(writer, open) => {
                if *open {
                    writer.abandon_script();
                }
            }
            Handle::Reader(conn, readers) => {
                if let Some(conn) = conn.take() {
                    readers.give(conn);
                }
            }
        }
    }
}

#[async_trait]
impl Tx for SqliteTx {
    /// Releases the savepoint: the writes join the batch, which is committed before the
    /// caller is answered (nothing to do for a read).
    async fn commit(mut self) -> Result<(), TxError> {
        if let Handle::Writer(writer, open @ true) = &mut self.handle {
            writer.release().map_err(sqlite(self.op))?;
            *open = false;
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for SqliteStorage {
    type Tx = SqliteTx;

    /// Opens a savepoint for the write in the current batch, which holds the database's write
    /// lock from its `BEGIN IMMEDIATE` on (see `super::group`).
    async fn write(&self, op: &'static str) -> Result<SqliteTx, TxError> {
        let mut writer = self.writer.clone().lock_owned().await;
        writer.savepoint().map_err(sqlite(op))?;
        Ok(SqliteTx { handle: Handle::Writer(writer, true), op })
    }

    /// Yields once first. A read never waits otherwise, so without this a session's burst of
    /// calls would hold the node's thread from the first to the last while other sessions
    /// wait, and the bound on a session's calls in flight would never come into play.
    async fn read(&self, op: &'static str) -> Result<SqliteTx, TxError> {
        tokio::task::yield_now().await;
        match &self.readers {
            Some(readers) => {
                let conn = readers.take().map_err(sqlite(op))?;
                Ok(SqliteTx { handle: Handle::Reader(Some(conn), readers.clone()), op })
            }
            None => {
                let mut writer = self.writer.clone().lock_owned().await;
                writer.recover().map_err(sqlite(op))?;
                Ok(SqliteTx { handle: Handle::Writer(writer, false), op })
            }
        }
    }

    async fn settle(&self, batch: u64) -> Result<(), StoreError> {
        Writer::settle(&self.writer, batch).await
    }

    /// Only sqlx's errors are offered here, and this backend has none past opening: its
    /// writers never conflict (one connection, `BEGIN IMMEDIATE`), so nothing is retried.
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

/// A list of internal keys as a JSON array, for `json_each` (SQLite has no array type).
fn key_list(keys: &[i64]) -> String {
    let items: Vec<String> = keys.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use qpq_proto::{DeviceId, DeviceRecord, UserId};

    use super::SqliteStorage;
    use crate::storage::Storage;

    fn alice() -> DeviceRecord {
        DeviceRecord {
            user: UserId::parse("alice@example.org").expect("a valid name"),
            device_id: DeviceId([7; 16]),
            device_key: [1; 32],
            created_at: 1,
            signature: [2; 64],
        }
    }

    /// The conformance suite runs on files; an in-memory database (one connection for
    /// writes and reads) gets its schema and keeps what is written.
    #[tokio::test]
    async fn an_in_memory_database_has_the_schema_and_keeps_what_is_written() {
        let store = SqliteStorage::open(":memory:").await.expect("open");
        let record = alice();
        store.create_user(&record.user, &[3; 32], &record, 10).await.expect("create");
        assert_eq!(store.identity_key(&record.user).await.expect("read"), Some([3; 32]));
        assert_eq!(store.devices(&record.user).await.expect("read"), vec![record]);
    }

    /// A file opens again (its migrations recorded, not run twice) with what was committed.
    #[tokio::test]
    async fn a_file_opens_again_with_what_was_committed() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("qpq.sqlite");
        let path = path.to_str().expect("UTF-8 temp path");
        let record = alice();
        {
            let store = SqliteStorage::open(path).await.expect("open");
            store.create_user(&record.user, &[3; 32], &record, 10).await.expect("create");
        }
        let store = SqliteStorage::open(path).await.expect("open again");
        assert_eq!(store.devices(&record.user).await.expect("read"), vec![record]);
    }
}

#[cfg(test)]
mod plans {
    use rusqlite::{Connection, StatementStatus};

    /// The fetch of a device's queue (its `expires_at > ?` meets the partial index on
    /// envelope expiry), run with three different times: how often SQLite prepared it again.
    fn reprepares(conn: &Connection) -> i32 {
        super::super::migrations::create_sqlite_schema(conn).expect("schema");
        let mut st = conn.prepare(super::messaging::ENVELOPES).expect("prepare");
        for now in [1_000_i64, 2_000, 3_000] {
            let rows = st
                .query_map(rusqlite::params!["alice@example.org", [7u8; 16], 0, now, 10, 1 << 20], |_| Ok(()))
                .expect("run")
                .count();
            assert_eq!(rows, 0);
        }
        st.get_status(StatementStatus::RePrepare)
    }

    #[test]
    fn statements_are_not_planned_again_for_their_values() {
        // Without the planner's stability guarantee SQLite prepares this statement again for
        // every new time bound to it (so the test can tell).
        let plain = Connection::open_in_memory().expect("open");
        assert!(reprepares(&plain) >= 2, "SQLite no longer re-plans this statement; the guarantee may be moot");
        let configured = Connection::open_in_memory().expect("open");
        super::configure(&configured).expect("configure");
        assert_eq!(reprepares(&configured), 0);
    }
}

//! Group commit for the SQLite write connection.
//!
//! Each write script runs inside a savepoint of one shared transaction (a "batch"), in turn,
//! holding the connection. When a script's savepoint is released, its caller does not answer
//! yet: it queues for the connection again, and the first caller of a batch to get it back
//! commits the whole batch; every caller queued before it has had its turn in the batch by
//! then. So a batch holds whatever arrived while its scripts were running, one COMMIT makes
//! them all durable, and nobody is answered before the COMMIT of the batch it wrote in. A
//! script that fails rolls back to its own savepoint only.
//!
//! Statements run synchronously on the calling thread (rusqlite), so none is ever left half
//! run, and a script runs from its savepoint to its release without waiting. A caller can
//! be dropped while it waits for the connection (nothing of it is in the batch), after its
//! release while it waits to commit (its writes stay in the batch, committed by the next
//! writer), or, should a script ever wait between statements, with its savepoint open: that
//! savepoint is rolled back as the script's handle is dropped ([`Writer::abandon_script`]).
//! When SQLite itself has rolled the whole batch back (it does so on some I/O and memory
//! errors), or a rollback fails, the batch is recorded as failed so its callers still
//! waiting are told, and a connection in an unknown state is replaced before it is used
//! again. A batch whose every caller was dropped stays open until the next write joins and
//! commits it: none of them was answered.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::Mutex;

use super::rows::sqlite_failure;
use super::StoreError;

/// How many failed batches are remembered for callers that have not asked yet (they are all
/// queued before the next batch can end, so a few are plenty).
const FAILURES_KEPT: usize = 64;

tokio::task_local! {
    /// The batch the current storage call wrote in, if any.
    static JOINED: Cell<Option<u64>>;
}

/// Runs one storage call and says which batch it wrote in (`None` when it began no write on
/// a grouped backend).
pub(super) async fn tracked<F: Future>(call: F) -> (F::Output, Option<u64>) {
    JOINED.scope(Cell::new(None), async move { (call.await, JOINED.with(Cell::get)) }).await
}

/// Opens a new write connection (to replace one whose state is unknown).
pub(super) type Reopen = Box<dyn Fn() -> rusqlite::Result<Connection> + Send>;

/// The write connection and the batch it is in.
pub(super) struct Writer {
    conn: Connection,
    reopen: Reopen,
    /// The batch open now, or the next to be opened.
    batch: u64,
    /// The connection's state is unknown (a rollback failed): replace it before any use.
    broken: bool,
    /// Failed batches with the reason, oldest first.
    failed: VecDeque<(u64, String)>,
}

/// The savepoint of the write script running now (one at a time).
const SAVEPOINT: &str = "SAVEPOINT script";
const RELEASE: &str = "RELEASE script";
const ROLLBACK_SCRIPT: &str = "ROLLBACK TO script; RELEASE script";

impl Writer {
    pub(super) fn new(conn: Connection, reopen: Reopen) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Writer { conn, reopen, batch: 0, broken: false, failed: VecDeque::new() }))
    }

    /// The connection (for statements).
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Replaces the connection if its state is unknown (closing it rolls back whatever it
    /// had open; that batch was recorded as failed already).
    pub(super) fn recover(&mut self) -> rusqlite::Result<()> {
        if self.broken {
            self.conn = (self.reopen)()?;
            self.broken = false;
        }
        Ok(())
    }

    /// Records the current batch as failed and rolls its transaction back (or marks the
    /// connection for replacement when even that fails).
    fn fail_batch(&mut self, why: String) {
        tracing::warn!(batch = self.batch, reason = %why, "a write batch failed");
        self.failed.push_back((self.batch, why));
        while self.failed.len() > FAILURES_KEPT {
            self.failed.pop_front();
        }
        self.batch += 1;
        if !self.conn.is_autocommit() && self.conn.execute_batch("ROLLBACK").is_err() {
            self.broken = true;
        }
    }

    /// Opens a savepoint for one write script in the current batch (beginning the batch
    /// with `BEGIN IMMEDIATE` when none is open) and notes the batch for [`tracked`].
    pub(super) fn savepoint(&mut self) -> rusqlite::Result<()> {
        self.recover()?;
        // Noted first: if the BEGIN fails, `settle` finds no transaction and answers at once.
        let _ = JOINED.try_with(|j| j.set(Some(self.batch)));
        if self.conn.is_autocommit() {
            self.run("BEGIN IMMEDIATE")?;
        }
        self.run(SAVEPOINT)
    }

    /// Keeps the script's writes in the batch (they are committed with it). On an error
    /// the savepoint is still open, and the script's handle rolls it back as it is dropped.
    pub(super) fn release(&mut self) -> rusqlite::Result<()> {
        self.run(RELEASE)
    }

    /// Runs one statement of transaction control, prepared once: parsing `SAVEPOINT` and
    /// `RELEASE` anew for every write was about 2 % of the node's CPU under `qpq-load`.
    fn run(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    /// Undoes the writes of a script that failed or was dropped, keeping the batch.
    pub(super) fn abandon_script(&mut self) {
        if self.broken {
            return;
        }
        if self.conn.is_autocommit() {
            // SQLite rolled the whole transaction back on an error: scripts whose savepoints
            // were released in it are lost, and their callers must hear so.
            self.fail_batch("the database rolled the batch back".into());
            return;
        }
        if let Err(e) = self.conn.execute_batch(ROLLBACK_SCRIPT) {
            self.fail_batch(sqlite_failure("roll back a write", &e));
        }
    }

    /// Returns once batch `batch` is committed, committing it (with whatever joined it) if
    /// nobody has yet; an error when it failed.
    pub(super) async fn settle(writer: &Mutex<Self>, batch: u64) -> Result<(), StoreError> {
        // A script runs without ever waiting, so without this its caller would commit alone
        // whenever the connection was free. Letting the tasks that are ready run first lets
        // their writes join the batch, to be made durable by the same COMMIT.
        tokio::task::yield_now().await;
        let mut w = writer.lock().await;
        if w.batch > batch {
            return match w.failed.iter().find(|(b, _)| *b == batch) {
                Some((_, why)) => Err(StoreError::Backend(why.clone())),
                None => Ok(()),
            };
        }
        if w.broken || w.conn.is_autocommit() {
            // The batch never began (its BEGIN failed): nothing to make durable. (A broken
            // connection has had its batch recorded as failed, so `batch` is older.)
            return Ok(());
        }
        match w.run("COMMIT") {
            Ok(()) => {
                w.batch += 1;
                Ok(())
            }
            Err(e) => {
                let why = sqlite_failure("commit", &e);
                w.fail_batch(why.clone());
                Err(StoreError::Backend(why))
            }
        }
    }
}

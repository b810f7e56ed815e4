//! Group commit for a backend with one write connection (SQLite).
//!
//! Each write script runs inside a savepoint of one shared transaction (a "batch"), in turn,
//! holding the connection. When a script's savepoint is released, its caller does not answer
//! yet: it queues for the connection again, and the first caller of a batch to get it back
//! commits the whole batch; every caller queued before it has had its turn in the batch by
//! then. So a batch holds whatever arrived while its scripts were running, one COMMIT makes
//! them all durable, and nobody is answered before the COMMIT of the batch it wrote in. A
//! script that fails rolls back to its own savepoint only.
//!
//! Any caller may be dropped at any await (a client that disconnects). The state below says
//! what the last holder of the connection left undone, and the next holder repairs it before
//! anything else: it waits for the connection's queued statements to finish, rolls back a
//! savepoint left open, and settles an interrupted COMMIT. When the connection's state
//! cannot be repaired it is replaced (which rolls the open batch back) and the batch is
//! recorded as failed, so its callers still waiting are told. A batch whose every caller was
//! dropped stays open until the next write joins and commits it: none of them was answered.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use sqlx::{Connection, Database, TransactionManager};
use tokio::sync::Mutex;

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

/// The write connection and what its last holder left undone.
pub(super) struct Writer<DB: Database> {
    conn: DB::Connection,
    /// To open a new connection when this one's state is unknown.
    options: <DB::Connection as Connection>::Options,
    /// The batch open now, or the next to be opened.
    batch: u64,
    /// False while a holder may have left a statement in flight or a savepoint open.
    clean: bool,
    /// A holder began committing `batch` and may not have seen the answer.
    committing: bool,
    /// The open transaction, if any, belongs to a batch recorded as failed: roll it back.
    abandoned: bool,
    /// Failed batches with the reason, oldest first.
    failed: VecDeque<(u64, String)>,
}

type Manager<DB> = <DB as Database>::TransactionManager;

impl<DB: Database> Writer<DB> {
    pub(super) fn new(conn: DB::Connection, options: <DB::Connection as Connection>::Options) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Writer {
            conn,
            options,
            batch: 0,
            clean: true,
            committing: false,
            abandoned: false,
            failed: VecDeque::new(),
        }))
    }

    /// The connection.
    pub(super) fn conn(&self) -> &DB::Connection {
        &self.conn
    }

    /// The connection, mutably.
    pub(super) fn conn_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }

    fn depth(&self) -> usize {
        Manager::<DB>::get_transaction_depth(&self.conn)
    }

    /// Records the batch as failed; its transaction is rolled back by the next repair.
    fn abandon(&mut self, why: String) {
        self.failed.push_back((self.batch, why));
        while self.failed.len() > FAILURES_KEPT {
            self.failed.pop_front();
        }
        self.batch += 1;
        self.abandoned = true;
        self.clean = false;
    }

    /// Leaves the connection as a new holder expects it: nothing in flight, no savepoint
    /// open, and a transaction open only for the current batch.
    pub(super) async fn recover(&mut self) -> Result<(), sqlx::Error> {
        if self.clean {
            return Ok(());
        }
        if let Err(e) = self.repair().await {
            tracing::warn!(error = %e, "the write connection could not be repaired; replacing it");
            self.abandon(format!("the write connection failed: {e}"));
            self.conn = <DB::Connection as Connection>::connect_with(&self.options).await?;
            self.abandoned = false;
            self.clean = true;
        }
        Ok(())
    }

    async fn repair(&mut self) -> Result<(), sqlx::Error> {
        // Statements are run in order, so once this is answered, whatever a dropped holder
        // sent has finished and the transaction depth is exact.
        self.conn.ping().await?;
        if self.committing {
            self.committing = false;
            if self.depth() == 0 {
                self.batch += 1;
            } else {
                self.abandon("the batch's COMMIT failed".into());
            }
        }
        let keep = if self.abandoned { 0 } else { 1 };
        while self.depth() > keep {
            Manager::<DB>::rollback(&mut self.conn).await?;
        }
        self.abandoned = false;
        self.clean = true;
        Ok(())
    }

    /// Opens a savepoint for one write script in the current batch (beginning the batch with
    /// `begin` when none is open) and notes the batch for [`tracked`].
    pub(super) async fn savepoint(&mut self, begin: &'static str) -> Result<(), sqlx::Error> {
        self.recover().await?;
        // Noted first: a caller dropped from here on may have begun the batch, and the
        // waiting caller of the same storage call (none, then) or the next writer commits it.
        let _ = JOINED.try_with(|j| j.set(Some(self.batch)));
        self.clean = false;
        if self.depth() == 0 {
            Manager::<DB>::begin(&mut self.conn, Some(begin.into())).await?;
        }
        Manager::<DB>::begin(&mut self.conn, None).await
    }

    /// Keeps the script's writes in the batch (they are committed with it).
    pub(super) async fn release(&mut self) -> Result<(), sqlx::Error> {
        Manager::<DB>::commit(&mut self.conn).await?;
        self.clean = true;
        Ok(())
    }

    /// Returns once batch `batch` is committed, committing it (with whatever joined it) if
    /// nobody has yet; an error when it failed.
    pub(super) async fn settle(writer: &Mutex<Self>, batch: u64) -> Result<(), StoreError> {
        let mut w = writer.lock().await;
        w.recover().await.map_err(|e| StoreError::Backend(format!("write connection: {e}")))?;
        if w.batch > batch {
            return match w.failed.iter().find(|(b, _)| *b == batch) {
                Some((_, why)) => Err(StoreError::Backend(why.clone())),
                None => Ok(()),
            };
        }
        if w.depth() == 0 {
            // The batch never began (its BEGIN failed): nothing to make durable.
            return Ok(());
        }
        w.clean = false;
        w.committing = true;
        let done = Manager::<DB>::commit(&mut w.conn).await;
        w.committing = false;
        match done {
            Ok(()) => {
                w.batch += 1;
                w.clean = true;
                Ok(())
            }
            Err(e) => {
                let why = format!("commit: {e}");
                w.abandon(why.clone());
                let _ = w.recover().await;
                Err(StoreError::Backend(why))
            }
        }
    }
}

//! One SQLite statement with its arguments, run on the calling thread: prepared once per
//! connection (rusqlite's statement cache), bound, stepped, and its rows decoded into tuples
//! or single values. Errors are tagged with the script's operation.

use rusqlite::types::FromSql;
use rusqlite::{params_from_iter, CachedStatement, Connection, Row, ToSql};

use crate::storage::binds::Binds;
use crate::storage::rows::{sqlite, TxError};

/// A statement about to run on `conn`.
pub(in crate::storage) struct Statement<'c, 'q> {
    conn: &'c Connection,
    op: &'static str,
    sql: &'q str,
    args: Vec<Box<dyn ToSql + 'q>>,
}

/// A row decoded column by column, in the order the statement selects them.
pub(in crate::storage) trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

macro_rules! tuple_from_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FromSql),+> FromRow for ($($t,)+) {
            fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $t>($i)?,)+))
            }
        }
    };
}

tuple_from_row!(A 0, B 1);
tuple_from_row!(A 0, B 1, C 2);
tuple_from_row!(A 0, B 1, C 2, D 3);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);

impl<'c, 'q> Statement<'c, 'q> {
    pub(super) fn new(conn: &'c Connection, op: &'static str, sql: &'q str) -> Self {
        Statement { conn, op, sql, args: Vec::new() }
    }

    /// Binds the next `?`.
    pub(super) fn bind<V: ToSql + 'q>(mut self, value: V) -> Self {
        self.args.push(Box::new(value));
        self
    }

    fn prepared(&self) -> Result<CachedStatement<'c>, TxError> {
        self.conn.prepare_cached(self.sql).map_err(sqlite(self.op))
    }

    /// Runs a statement that returns no rows; how many rows it changed.
    pub(super) fn execute(self) -> Result<u64, TxError> {
        let changed = self.prepared()?.execute(params_from_iter(&self.args)).map_err(sqlite(self.op))?;
        Ok(changed as u64)
    }

    /// The first row, if any.
    pub(super) fn fetch_optional<T: FromRow>(self) -> Result<Option<T>, TxError> {
        self.first(T::from_row)
    }

    /// Every row.
    pub(super) fn fetch_all<T: FromRow>(self) -> Result<Vec<T>, TxError> {
        self.every(T::from_row)
    }

    /// The first column of the first row, if any.
    pub(super) fn scalar_optional<T: FromSql>(self) -> Result<Option<T>, TxError> {
        self.first(|row| row.get(0))
    }

    /// The first column of the first row; an error when there is none.
    pub(super) fn scalar_one<T: FromSql>(self) -> Result<T, TxError> {
        let op = self.op;
        self.first(|row| row.get(0))?.ok_or(TxError::Sqlite(op, rusqlite::Error::QueryReturnedNoRows))
    }

    /// The first column of every row.
    pub(super) fn scalar_all<T: FromSql>(self) -> Result<Vec<T>, TxError> {
        self.every(|row| row.get(0))
    }

    /// Decodes the first row only. (A statement with `RETURNING` has made all its changes by
    /// its first row, so the rest may go unread.)
    fn first<T>(self, decode: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>) -> Result<Option<T>, TxError> {
        let mut statement = self.prepared()?;
        let mut rows = statement.query(params_from_iter(&self.args)).map_err(sqlite(self.op))?;
        match rows.next().map_err(sqlite(self.op))? {
            Some(row) => decode(row).map(Some).map_err(sqlite(self.op)),
            None => Ok(None),
        }
    }

    fn every<T>(self, decode: impl FnMut(&Row<'_>) -> rusqlite::Result<T>) -> Result<Vec<T>, TxError> {
        let mut statement = self.prepared()?;
        let rows = statement.query_map(params_from_iter(&self.args), decode).map_err(sqlite(self.op))?;
        rows.collect::<rusqlite::Result<Vec<T>>>().map_err(sqlite(self.op))
    }
}

impl<'q> Binds<'q> for Statement<'_, 'q> {
    fn text(self, v: &'q str) -> Self {
        self.bind(v)
    }
    fn bytes(self, v: &'q [u8]) -> Self {
        self.bind(v)
    }
    fn int(self, v: i64) -> Self {
        self.bind(v)
    }
    fn small(self, v: i16) -> Self {
        self.bind(v)
    }
}

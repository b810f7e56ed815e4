//! The schema migrations of each backend, embedded at build time (`build.rs`) and run by
//! sqlx's `Migrator`. A file `NNNN_some_words.sql` is migration NNNN, "some words"; its
//! checksum (SHA-384 of the text, as sqlx computes it) is what sqlx compares with the one
//! recorded in `_sqlx_migrations` when it was applied.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The migrator of `files` (name and text, in version order).
fn migrator(files: &[(&'static str, &'static str)]) -> Migrator {
    let migrations = files
        .iter()
        .map(|&(file, sql)| {
            let stem = file.strip_suffix(".sql").expect("build.rs lists .sql files");
            let (version, words) = stem.split_once('_').unwrap_or((stem, ""));
            let version: i64 = version.parse().unwrap_or_else(|_| panic!("migration {file} does not start with its version"));
            let no_tx = sql.starts_with("-- no-transaction");
            Migration::new(version, Cow::Owned(words.replace('_', " ")), MigrationType::Simple, Cow::Borrowed(sql), no_tx)
        })
        .collect::<Vec<_>>();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

/// The SQLite migrations.
pub(super) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

/// Creates the SQLite schema on a new in-memory database: every migration's text in order,
/// in one transaction. Nothing records them (sqlx's `_sqlx_migrations`): such a database is
/// never opened again. Files are migrated by [`sqlite`]'s migrator.
pub(super) fn create_sqlite_schema(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    for (_, sql) in SQLITE {
        tx.execute_batch(sql)?;
    }
    tx.commit()
}

/// The PostgreSQL migrations.
pub(super) fn postgres() -> Migrator {
    migrator(POSTGRES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migrations_in_order() {
        let names = |m: &Migrator| m.iter().map(|m| (m.version, m.description.to_string())).collect::<Vec<_>>();
        let (s, p) = (sqlite(), postgres());
        assert_eq!(names(&s), names(&p));
        assert_eq!(names(&s)[0], (1, "init".to_string()));
        assert!(names(&s).windows(2).all(|w| w[0].0 < w[1].0), "{:?}", names(&s));
        assert!(s.iter().all(|m| m.checksum.len() == 48 && !m.sql.is_empty()));
    }
}

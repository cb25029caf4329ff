//! Connection settings, set explicitly and read back: never rely on a library
//! default we are testing. A value that does not read back as set is a [`PragmaError::Mismatch`],
//! which a writer reports as a harness error (exit 3).

use crate::scenario::matrix::Cell;
use crate::scenario::matrix::{FullFsync, JournalMode, Synchronous};
use crate::writer::session_store::WorkloadConfig;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

/// The pragmas a writer (or the recovery check) sets on every connection it opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pragmas {
    pub journal_mode: JournalMode,
    pub synchronous: Synchronous,
    pub busy_timeout_ms: u32,
    pub cache_size_kib: u32,
    /// `PRAGMA wal_autocheckpoint`, in pages (0 disables automatic checkpoints).
    pub wal_autocheckpoint_pages: i64,
    /// `PRAGMA fullfsync` and `PRAGMA checkpoint_fullfsync`.
    pub fullfsync: FullFsync,
}

#[derive(Debug, thiserror::Error)]
pub enum PragmaError {
    #[error("PRAGMA {pragma}: {source}")]
    Sqlite { pragma: &'static str, source: rusqlite::Error },
    #[error("PRAGMA {pragma}: set {wanted}, read back {got}")]
    Mismatch { pragma: &'static str, wanted: String, got: String },
}

fn query_i64(conn: &Connection, pragma: &'static str, sql: &str) -> Result<i64, PragmaError> {
    conn.query_row(sql, [], |r| r.get(0)).map_err(|source| PragmaError::Sqlite { pragma, source })
}

fn expect_eq(pragma: &'static str, wanted: impl ToString, got: impl ToString) -> Result<(), PragmaError> {
    let (wanted, got) = (wanted.to_string(), got.to_string());
    if wanted == got { Ok(()) } else { Err(PragmaError::Mismatch { pragma, wanted, got }) }
}

/// Sets every pragma and reads each one back. `mmap_size` is always 0 so that all database
/// I/O goes through read/write calls (what a tracing VFS sees, and what the oracle reasons on).
pub fn apply(conn: &Connection, p: &Pragmas) -> Result<(), PragmaError> {
    conn.busy_timeout(std::time::Duration::from_millis(u64::from(p.busy_timeout_ms)))
        .map_err(|source| PragmaError::Sqlite { pragma: "busy_timeout", source })?;
    expect_eq("busy_timeout", p.busy_timeout_ms, query_i64(conn, "busy_timeout", "PRAGMA busy_timeout")?)?;

    let mode: String = conn
        .query_row(&format!("PRAGMA journal_mode={}", p.journal_mode.as_sql()), [], |r| r.get(0))
        .map_err(|source| PragmaError::Sqlite { pragma: "journal_mode", source })?;
    expect_eq("journal_mode", p.journal_mode.as_sql(), mode.to_ascii_lowercase())?;

    conn.execute_batch(&format!("PRAGMA synchronous={}", p.synchronous.as_sql()))
        .map_err(|source| PragmaError::Sqlite { pragma: "synchronous", source })?;
    expect_eq("synchronous", p.synchronous.pragma_value(), query_i64(conn, "synchronous", "PRAGMA synchronous")?)?;

    // A negative cache_size is in KiB.
    let cache = -i64::from(p.cache_size_kib);
    conn.execute_batch(&format!("PRAGMA cache_size={cache}"))
        .map_err(|source| PragmaError::Sqlite { pragma: "cache_size", source })?;
    expect_eq("cache_size", cache, query_i64(conn, "cache_size", "PRAGMA cache_size")?)?;

    let auto =
        query_i64(conn, "wal_autocheckpoint", &format!("PRAGMA wal_autocheckpoint={}", p.wal_autocheckpoint_pages))?;
    expect_eq("wal_autocheckpoint", p.wal_autocheckpoint_pages, auto)?;

    let (full, checkpoint_full) = p.fullfsync.pragmas();
    conn.execute_batch(&format!(
        "PRAGMA fullfsync={}; PRAGMA checkpoint_fullfsync={}",
        u8::from(full),
        u8::from(checkpoint_full)
    ))
    .map_err(|source| PragmaError::Sqlite { pragma: "fullfsync", source })?;
    expect_eq("fullfsync", u8::from(full), query_i64(conn, "fullfsync", "PRAGMA fullfsync")?)?;
    expect_eq(
        "checkpoint_fullfsync",
        u8::from(checkpoint_full),
        query_i64(conn, "checkpoint_fullfsync", "PRAGMA checkpoint_fullfsync")?,
    )?;

    conn.execute_batch("PRAGMA mmap_size=0").map_err(|source| PragmaError::Sqlite { pragma: "mmap_size", source })?;
    expect_eq("mmap_size", 0, query_i64(conn, "mmap_size", "PRAGMA mmap_size")?)?;
    Ok(())
}

impl Pragmas {
    /// The pragmas every connection of `cell` uses.
    pub fn for_cell(cell: &Cell, workload: &WorkloadConfig) -> Pragmas {
        Pragmas {
            journal_mode: cell.journal_mode,
            synchronous: cell.synchronous,
            busy_timeout_ms: workload.busy_timeout_ms,
            cache_size_kib: workload.cache_size_kib,
            // Outside WAL mode the setting is inert; SQLite's default keeps the read-back honest.
            wal_autocheckpoint_pages: cell.checkpoint.map_or(1000, |p| p.wal_autocheckpoint_pages()),
            fullfsync: cell.fullfsync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each pragma, queried on its own after `apply`, holds what was asked: every journal mode,
    /// synchronous level and fullfsync setting, and values away from SQLite's defaults (the
    /// connection starts with a nonzero `mmap_size`), so that a setting `apply` skipped could
    /// not pass for one it made.
    #[test]
    fn apply_sets_each_pragma_to_what_was_asked() {
        let dir = tempfile::tempdir().unwrap();
        for (i, j) in JournalMode::ALL.into_iter().enumerate() {
            for (k, s) in Synchronous::ALL.into_iter().enumerate() {
                let conn = Connection::open(dir.path().join(format!("{i}-{k}.db"))).unwrap();
                let int = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
                assert_eq!(int("PRAGMA mmap_size=65536"), 65536);
                let p = Pragmas {
                    journal_mode: j,
                    synchronous: s,
                    busy_timeout_ms: 1000 + 7 * k as u32,
                    cache_size_kib: 64 + i as u32,
                    wal_autocheckpoint_pages: (4 * i + k) as i64,
                    fullfsync: FullFsync::ALL[(i + k) % 3],
                };
                apply(&conn, &p).unwrap();
                let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
                assert_eq!(mode, j.as_sql(), "{p:?}");
                assert_eq!(int("PRAGMA synchronous"), s.pragma_value(), "{p:?}");
                assert_eq!(int("PRAGMA busy_timeout"), i64::from(p.busy_timeout_ms), "{p:?}");
                assert_eq!(int("PRAGMA cache_size"), -i64::from(p.cache_size_kib), "{p:?}");
                assert_eq!(int("PRAGMA wal_autocheckpoint"), p.wal_autocheckpoint_pages, "{p:?}");
                let (full, checkpoint_full) = p.fullfsync.pragmas();
                assert_eq!(int("PRAGMA fullfsync"), i64::from(full), "{p:?}");
                assert_eq!(int("PRAGMA checkpoint_fullfsync"), i64::from(checkpoint_full), "{p:?}");
                assert_eq!(int("PRAGMA mmap_size"), 0, "{p:?}");
            }
        }
    }

    /// What SQLite will not set reads back as something else, and `apply` says so, naming the
    /// pragma: an in-memory database keeps its journal in memory whatever mode is asked, and a
    /// negative `wal_autocheckpoint` turns automatic checkpoints off (reads back 0).
    #[test]
    fn apply_reports_a_pragma_that_reads_back_other_than_asked() {
        let asked = Pragmas {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            busy_timeout_ms: 100,
            cache_size_kib: 64,
            wal_autocheckpoint_pages: 100,
            fullfsync: FullFsync::Off,
        };
        for j in [JournalMode::Wal, JournalMode::Delete, JournalMode::Truncate, JournalMode::Persist] {
            let conn = Connection::open_in_memory().unwrap();
            let result = apply(&conn, &Pragmas { journal_mode: j, ..asked.clone() });
            let Err(PragmaError::Mismatch { pragma, wanted, got }) = result else { panic!("{j:?}: {result:?}") };
            assert_eq!((pragma, wanted.as_str(), got.as_str()), ("journal_mode", j.as_sql(), "memory"));
        }
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("db")).unwrap();
        let err = apply(&conn, &Pragmas { wal_autocheckpoint_pages: -1, ..asked }).unwrap_err();
        assert_eq!(err.to_string(), "PRAGMA wal_autocheckpoint: set -1, read back 0");
    }
}

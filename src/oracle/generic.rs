//! The checks any SQLite database gets, whoever wrote it: it opens (check 1), it passes
//! `PRAGMA integrity_check` (2), every FTS5 table passes its own `integrity-check` (3), and
//! after a restart with the application's pragmas it takes a write (8: a probe table created,
//! written and dropped, unless the writer's schema brings its own write).

use crate::base::sqlerr::{self, ErrorClass};
use crate::oracle::{CheckConfig, IntegrityLevel, is_finding, outcome_of};
use crate::record::checks::CheckOutcome;
use crate::writer::pragmas;
use anyhow::anyhow;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// Why check 1 did not give a connection: its outcome (a violation, or could not run), or a
/// harness error.
pub(super) enum OpenFailure {
    Outcome(CheckOutcome),
    Harness(anyhow::Error),
}

/// How long a check's connection waits for a lock. Nothing but the oracle has an image open,
/// so a lock that outlasts this was left by a process that should be gone.
pub const CHECK_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Check 1: the file exists, opens without being created, and a first read of the schema
/// succeeds.
pub(super) fn open_image(db_path: &Path) -> Result<Connection, OpenFailure> {
    if !db_path.exists() {
        let detail = format!("{} does not exist", db_path.display());
        return Err(OpenFailure::Outcome(CheckOutcome::Violation { detail }));
    }
    let failure = |step: &str, e: rusqlite::Error| {
        let detail = format!("{step}: {}", sqlerr::describe(&e));
        match sqlerr::classify(&e) {
            ErrorClass::Finding => OpenFailure::Outcome(CheckOutcome::Violation { detail }),
            ErrorClass::Locked => OpenFailure::Outcome(CheckOutcome::CouldNotRun { reason: detail }),
            ErrorClass::Harness => OpenFailure::Harness(anyhow!("{} {detail}", db_path.display())),
        }
    };
    // Never SQLITE_OPEN_CREATE: a missing image must not turn into an empty database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db_path, flags).map_err(|e| failure("open", e))?;
    conn.busy_timeout(CHECK_BUSY_TIMEOUT).map_err(|e| failure("busy_timeout", e))?;
    // Nothing this connection writes (a hot journal rolled back, the WAL checkpointed when it
    // closes) needs to be durable: the image is a scratch copy, checked and thrown away (a kept
    // failure is the pristine copy taken before the checks). Without it, the checkpoint at its
    // close synced the WAL and the database on every image.
    conn.pragma_update(None, "synchronous", "OFF").map_err(|e| failure("synchronous", e))?;
    // The first read is what runs recovery and reads page 1.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map_err(|e| failure("first read", e))?;
    Ok(conn)
}

/// Check 2: `PRAGMA integrity_check` (or `quick_check`), which since SQLite 3.44 also runs the
/// FTS5 tables' own integrity checks.
///
/// Returns the outcome and, when the pragma ran to completion (fewer errors than its limit),
/// its lines: they then include the verdict of every FTS5 table's `xIntegrity`, which is the
/// very function the FTS5 `integrity-check` command runs (`sqlite3Fts5StorageIntegrity`; for
/// tables with their own content the command's rank argument changes nothing). Check 3 reads
/// its verdict from those lines instead of running the same O(index) work a second time: on
/// the default workload that halves the cost of checking an image.
pub(super) fn integrity(
    conn: &Connection,
    level: IntegrityLevel,
) -> rusqlite::Result<(CheckOutcome, Option<Vec<String>>)> {
    const ERRORS_MAX: usize = 20;
    let pragma = match level {
        // Both variants call xIntegrity on virtual tables (quick_check only skips the
        // index-against-table comparisons of ordinary tables).
        IntegrityLevel::Full => format!("PRAGMA integrity_check({ERRORS_MAX})"),
        IntegrityLevel::Quick => format!("PRAGMA quick_check({ERRORS_MAX})"),
    };
    let mut stmt = conn.prepare(&pragma)?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    // A row may hold several findings, one per line, under a "*** in database main ***" header.
    let lines: Vec<String> = rows
        .iter()
        .flat_map(|row| row.lines())
        .filter(|l| !l.is_empty() && !l.starts_with("*** in database"))
        .map(str::to_string)
        .collect();
    let outcome = if lines.len() == 1 && lines[0] == "ok" { CheckOutcome::Pass } else { outcome_of(lines.clone()) };
    // At the limit the pragma stops early, possibly before the virtual tables' pass.
    let complete = lines.len() < ERRORS_MAX;
    Ok((outcome, complete.then_some(lines)))
}

/// The FTS5 findings for `table` among `integrity_check`'s lines. SQLite words them
/// "malformed inverted index for FTS5 table main.T", "unable to validate the inverted index
/// for FTS5 table main.T: ..." or, when FTS5 itself says more, "fts5: corruption found reading
/// blob N from table \"T\"".
pub(super) fn fts_lines_for<'a>(lines: &'a [String], table: &str) -> impl Iterator<Item = &'a String> {
    let dotted = format!("FTS5 table main.{table}");
    let quoted = format!("table \"{table}\"");
    lines.iter().filter(move |l| l.ends_with(&dotted) || l.contains(&format!("{dotted}:")) || l.contains(&quoted))
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Check 3's part for any database: FTS5's own `integrity-check` on every FTS5 table (its
/// verdict read from `integrity_lines` when check 2 ran it to completion, the command run
/// otherwise). Returns the image's FTS5 tables and the problems found.
pub(super) fn fts_integrity(
    conn: &Connection,
    integrity_lines: Option<&[String]>,
) -> rusqlite::Result<(Vec<String>, Vec<String>)> {
    let mut problems = Vec::new();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' \
             AND lower(sql) LIKE '%using fts5%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in &tables {
        if let Some(lines) = integrity_lines {
            problems.extend(fts_lines_for(lines, table).map(|l| format!("{table}: integrity-check: {l}")));
            continue;
        }
        let q = quote_ident(table);
        match conn.execute(&format!("INSERT INTO {q}({q}, rank) VALUES ('integrity-check', 1)"), []) {
            Ok(_) => {}
            Err(e) if is_finding(&e) => problems.push(format!("{table}: integrity-check: {}", sqlerr::describe(&e))),
            Err(e) => return Err(e),
        }
    }
    Ok((tables, problems))
}

/// Check 8's restart: the image reopened as the application would, with its pragmas (`Err`:
/// the check's outcome when that already fails).
pub(super) fn reopen(db_path: &Path, cfg: &CheckConfig) -> anyhow::Result<Result<Connection, CheckOutcome>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(db_path, flags) {
        Ok(conn) => conn,
        Err(e) => return reopen_failure("reopen", e).map(Err),
    };
    // The application's busy timeout replaces this one when its pragmas are applied.
    if let Err(e) = conn.busy_timeout(CHECK_BUSY_TIMEOUT) {
        return reopen_failure("busy_timeout", e).map(Err);
    }
    if let Some(p) = &cfg.reopen.pragmas {
        // The application's pragmas, except that nothing is synced: the write lands on a
        // scratch image whose durability nothing measures (a kept failure is the pristine copy
        // taken before the checks), and its fsyncs were a tenth of every check's time.
        let p = pragmas::Pragmas { synchronous: crate::scenario::matrix::Synchronous::Off, ..p.clone() };
        match pragmas::apply(&conn, &p) {
            Ok(()) => {}
            Err(pragmas::PragmaError::Sqlite { pragma, source }) => {
                return reopen_failure(&format!("PRAGMA {pragma}"), source).map(Err);
            }
            Err(e @ pragmas::PragmaError::Mismatch { .. }) => {
                return Ok(Err(CheckOutcome::Violation { detail: format!("after recovery: {e}") }));
            }
        }
    }
    Ok(Ok(conn))
}

/// Check 8's write on a database whose schema the oracle does not know: a throw-away table
/// created, written and dropped.
pub(super) fn probe_write(conn: &Connection) -> anyhow::Result<CheckOutcome> {
    let probe = "BEGIN IMMEDIATE; CREATE TABLE crashfuzz_probe(x); \
                 INSERT INTO crashfuzz_probe VALUES (randomblob(1000)); DROP TABLE crashfuzz_probe; COMMIT;";
    match conn.execute_batch(probe) {
        Ok(()) => Ok(CheckOutcome::Pass),
        Err(e) => reopen_failure("write a probe table", e),
    }
}

/// A failed step of check 8. Any SQLite error a restart meets on the image is the symptom this
/// check exists for; a lock is contention, not damage (the check could not run); the
/// environment's failures (memory, the scratch disk) are the harness's.
pub fn reopen_failure(step: &str, e: rusqlite::Error) -> anyhow::Result<CheckOutcome> {
    let detail = format!("{step} after recovery: {}", sqlerr::describe(&e));
    match sqlerr::classify(&e) {
        ErrorClass::Finding => Ok(CheckOutcome::Violation { detail }),
        ErrorClass::Locked => Ok(CheckOutcome::CouldNotRun { reason: detail }),
        ErrorClass::Harness => Err(anyhow!("check 8: {detail}")),
    }
}

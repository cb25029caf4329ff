//! Fixtures the unit tests of several modules share: a seeded session store in a given journal
//! mode, written by a test writer, and its expectations; the oracle run on an image. (The
//! reports' own fixtures are in `report::testkit`.)

use crate::oracle::{self, CheckConfig, IntegrityLevel, ReopenConfig};
use crate::record::checks::ViolationKind;
use crate::record::expected::{Expected, WriterExpectation};
use crate::scenario::matrix::{FullFsync, JournalMode, Synchronous};
use crate::writer::pragmas::{self, Pragmas};
use crate::writer::session_store::{self, TxnWriter, WorkloadConfig};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The writer id test writers commit as.
pub const WRITER: u64 = 101;

/// A small workload: 40 seeded messages in 4 sessions, compressions and edits at 10%.
pub fn workload() -> WorkloadConfig {
    WorkloadConfig { seed_messages: 40, seed_sessions: 4, compress_percent: 10, edit_percent: 10, ..Default::default() }
}

/// FULL, a 1 s busy timeout, autocheckpoint at 1000 pages, in `journal_mode`.
pub fn pragmas(journal_mode: JournalMode) -> Pragmas {
    Pragmas {
        journal_mode,
        synchronous: Synchronous::Full,
        busy_timeout_ms: 1000,
        cache_size_kib: 256,
        wal_autocheckpoint_pages: 1000,
        fullfsync: FullFsync::Off,
    }
}

/// Makes `conn`'s empty database a seeded session store: the schema, the pragmas `p`, then the
/// seed's transactions (writer 0, drawn from `seed`). Returns their count.
pub fn seed_store(conn: &mut Connection, w: &WorkloadConfig, p: &Pragmas, seed: u64) -> u64 {
    session_store::create_schema(conn, w).unwrap();
    pragmas::apply(conn, p).unwrap();
    session_store::seed(conn, w, seed).unwrap()
}

/// A session store at `dir/db.sqlite`: the schema, the pragmas, the seed (writer 0), then
/// `commits` transactions of [`WRITER`]; the connection is returned open with the writer that
/// made them, and the seed's transaction count.
pub fn session_store(
    dir: &Path,
    w: &WorkloadConfig,
    p: &Pragmas,
    commits: u64,
) -> (PathBuf, Connection, TxnWriter, u64) {
    let db = dir.join("db.sqlite");
    let mut conn = Connection::open(&db).unwrap();
    let seeded = seed_store(&mut conn, w, p, 1);
    let mut txn = TxnWriter::new(WRITER, 2, w);
    for _ in 0..commits {
        txn.run_txn(&mut conn, &mut |_| {}).unwrap();
    }
    (db, conn, txn, seeded)
}

/// What the seed (`seeded` transactions of writer 0) and `acked` acknowledged commits of
/// [`WRITER`] promise.
pub fn expected(seeded: u64, acked: u64, begun: u64) -> Expected {
    Expected::of_writers(BTreeMap::from([
        (session_store::SEED_WRITER, WriterExpectation::upto(seeded, seeded)),
        (WRITER, WriterExpectation::upto(acked, begun)),
    ]))
}

/// The oracle's settings for a test image: the full integrity check, 8 MATCH samples, the
/// recovery write with `journal_mode`'s pragmas (`None`: a foreign database's own).
pub fn check_config(journal_mode: Option<JournalMode>) -> CheckConfig {
    CheckConfig {
        integrity: IntegrityLevel::Full,
        fts_samples: 8,
        seed: 3,
        reopen: ReopenConfig { pragmas: journal_mode.map(pragmas), writer_id: 999, workload: workload() },
        schema: &oracle::ledger::SESSION_STORE,
    }
}

/// The kinds of violation the oracle finds on a copy of `db`.
pub fn violations(db: &Path, journal_mode: Option<JournalMode>, expected: &Expected) -> Vec<ViolationKind> {
    oracle::check_copy(db, &check_config(journal_mode), Some(expected)).unwrap().violations()
}

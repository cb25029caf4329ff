//! The writer seam: what the trial engine needs of the program that writes a trial's database,
//! and nothing else. A [`Program`] makes each cell's template database, gives the command line
//! of one writer process, reads a writer's acknowledgements once it was reaped, and says what
//! the oracle may assume about the database it writes. The engine supervises the process
//! itself (its process group, the start gate on stdin, the announcements on stdout, stderr to
//! a file, the signals of the fault) whatever the program is.
//!
//! [`BuiltIn`] is crashfuzz's own writer: this executable re-run as `crashfuzz __writer`, the
//! session store workload, acknowledgements in the format of [`acklog`], and the session
//! store's ledger for the oracle.

use crate::error::{Error, Result};
use crate::oracle::Schema;
use crate::oracle::ledger::SESSION_STORE;
use crate::writer::acklog::{self, AckLog};
use crate::writer::pragmas::{self, Pragmas};
use crate::writer::protocol::{WRITER_SUBCOMMAND, WriterConfig};
use crate::writer::session_store::{self, WorkloadConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The program that writes a trial's database.
pub trait Program: Sync {
    /// Creates the database at `path` (which does not exist) with its schema and seed, the
    /// pragmas applied, and closes it. Returns the number of transactions the seed made, which
    /// every image of the cell must keep.
    fn make_template(&self, path: &Path, pragmas: &Pragmas, workload: &WorkloadConfig, seed: u64) -> Result<u64>;
    /// The command that starts one writer process configured by `cfg`, before the engine adds
    /// its process group and standard streams.
    fn command(&self, cfg: &WriterConfig) -> Command;
    /// Writer `id`'s acknowledgements, read from `path` after its process was reaped (`Err`:
    /// the file breaks the format, a harness failure).
    fn acknowledgements(&self, path: &Path, id: u64) -> std::result::Result<AckLog, String>;
    /// What the oracle may assume about the database it writes.
    fn schema(&self) -> &'static dyn Schema;
}

/// crashfuzz's own writer: `EXE __writer CONFIG`, the session store workload.
#[derive(Clone, Debug)]
pub struct BuiltIn {
    /// The `crashfuzz` executable.
    pub exe: PathBuf,
}

impl Program for BuiltIn {
    fn make_template(&self, path: &Path, pragmas: &Pragmas, workload: &WorkloadConfig, seed: u64) -> Result<u64> {
        let ctx = |what: &str| format!("template {}: {what}", path.display());
        let mut conn = rusqlite::Connection::open(path).map_err(|e| Error::sqlite(ctx("open"), e))?;
        session_store::create_schema(&conn, workload).map_err(|e| Error::sqlite(ctx("schema"), e))?;
        pragmas::apply(&conn, pragmas).map_err(|e| Error::Harness(ctx(&e.to_string())))?;
        let seeded = session_store::seed(&mut conn, workload, seed).map_err(|e| Error::sqlite(ctx("seed"), e))?;
        conn.close().map_err(|(_, e)| Error::sqlite(ctx("close"), e))?;
        Ok(seeded)
    }

    fn command(&self, cfg: &WriterConfig) -> Command {
        let mut command = Command::new(&self.exe);
        command.arg(WRITER_SUBCOMMAND).arg(serde_json::to_string(cfg).expect("writer config serializes"));
        command
    }

    fn acknowledgements(&self, path: &Path, id: u64) -> std::result::Result<AckLog, String> {
        acklog::read_acks(path, id)
    }

    fn schema(&self) -> &'static dyn Schema {
        &SESSION_STORE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::default_scenario;
    use crate::scenario::matrix::JournalMode;
    use crate::testkit::{pragmas, workload};

    #[test]
    fn the_built_in_writer_makes_a_seeded_session_store_the_oracle_recognises() {
        let dir = tempfile::tempdir().unwrap();
        let program = BuiltIn { exe: PathBuf::from("/opt/crashfuzz") };
        let db = dir.path().join("template.sqlite");
        let seeded = program.make_template(&db, &pragmas(JournalMode::Wal), &workload(), 7).unwrap();
        assert_eq!(seeded, u64::from(workload().seed_messages));
        let conn = rusqlite::Connection::open(&db).unwrap();
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(journal, "wal");
        assert!(program.schema().recognise(&conn).unwrap());
        let ledger: i64 = conn.query_row("SELECT count(*) FROM ledger WHERE writer = 0", [], |r| r.get(0)).unwrap();
        assert_eq!(ledger as u64, seeded);
    }

    #[test]
    fn the_built_in_writer_is_this_executable_given_its_configuration() {
        let program = BuiltIn { exe: PathBuf::from("/opt/crashfuzz") };
        let sc = default_scenario();
        let cell = crate::scenario::matrix::expand(&sc.matrix)[0];
        let cfg = WriterConfig::for_cell(&cell, &sc, Path::new("/tmp/db.sqlite"), Vec::new(), 12, 34);
        let command = program.command(&cfg);
        assert_eq!(command.get_program(), "/opt/crashfuzz");
        let args: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args[0], WRITER_SUBCOMMAND);
        let back: WriterConfig = serde_json::from_str(&args[1]).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&cfg).unwrap());
        assert_eq!(args.len(), 2);
    }
}

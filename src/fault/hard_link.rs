//! `hard_link`: one long-lived writer opens the database by a second name, a hard link to the
//! same file (the second of two writers; the only one when there is one). SQLite names a
//! database's rollback journal and WAL after the name it was opened by, so that writer keeps
//! its own `-journal`, or its own `-wal` and `-shm`, beside the others': two logs over one
//! file. Every writer is killed; the image is checked by the database's first name, as the
//! application restarting would open it, which never sees the second name's log.
//!
//! In WAL mode with checkpoints off, every commit of that writer is in its own WAL, so each
//! acknowledged one is lost: a canary. Elsewhere the damage depends on what the two logs
//! interleave (a checkpoint copies one log's pages over the other's, a hot journal under the
//! second name is never rolled back): measured.

use crate::base::dbfiles::{remove_db_files, sidecar};
use crate::error::{Error, Result};
use crate::fault::{AfterReap, Fault, ShortTrace};
use crate::record::checks::ViolationKind;
use crate::scenario::Scenario;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::{Cell, CheckpointPolicy, JournalMode};
use crate::writer::protocol::WriterConfig;
use std::path::{Path, PathBuf};

pub struct HardLink;

pub const FAULT: HardLink = HardLink;

/// The second name of `db`: a hard link beside it.
fn second_name(db: &Path) -> PathBuf {
    db.with_file_name("second-name.sqlite")
}

impl Fault for HardLink {
    fn describe(&self) -> &'static str {
        "one writer opens the database by a second name (a hard link), so it keeps its own \
         journal or WAL beside the others'; the image is checked by the first name"
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        if cell.journal_mode == JournalMode::Wal && cell.checkpoint == Some(CheckpointPolicy::None) {
            Expectation::canary(
                &[ViolationKind::LostAck],
                "hazard: the commits in the second name's WAL are invisible by the first name (canary)",
            )
        } else {
            Expectation::measured("hazard: two names, two logs over one database file; measured")
        }
    }

    /// The second process (the only one, alone) opens by the second name, made afresh: the
    /// last trial's link and logs are removed first.
    fn configure(&self, p: usize, cfg: &mut WriterConfig, scenario: &Scenario, _short: Option<ShortTrace>) -> Result<()> {
        if p != 1 && !(p == 0 && scenario.workload.writers == 1) {
            return Ok(());
        }
        let link = second_name(&cfg.db_path);
        remove_db_files(&link).map_err(|e| Error::io(format!("hazard hard_link: remove {}", link.display()), e))?;
        std::fs::hard_link(&cfg.db_path, &link)
            .map_err(|e| Error::io(format!("hazard hard_link: link {} to {}", link.display(), cfg.db_path.display()), e))?;
        cfg.db_path = link;
        Ok(())
    }

    fn stops_everyone(&self) -> bool {
        true
    }

    /// In WAL mode a second name that committed nothing to its own WAL showed nothing.
    fn after_reap(&self, a: &mut AfterReap<'_>) -> Result<Option<String>> {
        let link = second_name(a.db);
        let wal_bytes = std::fs::metadata(sidecar(&link, "-wal")).map_or(0, |m| m.len());
        Ok((sidecar(&link, "-shm").exists() && wal_bytes == 0)
            .then(|| "the writer opening by the second name wrote nothing to its WAL".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::default_scenario;
    use crate::scenario::matrix::expand;

    #[test]
    fn the_second_process_opens_by_a_fresh_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        std::fs::write(&db, b"database").unwrap();
        std::fs::write(sidecar(&second_name(&db), "-wal"), b"a stale log of the last trial").unwrap();
        let mut sc = default_scenario();
        sc.workload.writers = 2;
        let cell = expand(&sc.matrix)[0];
        let mut first = WriterConfig::for_cell(&cell, &sc, &db, Vec::new(), 1, 1);
        let mut second = first.clone();
        FAULT.configure(0, &mut first, &sc, None).unwrap();
        FAULT.configure(1, &mut second, &sc, None).unwrap();
        assert_eq!(first.db_path, db);
        assert_eq!(second.db_path, second_name(&db));
        assert_eq!(std::fs::read(&second.db_path).unwrap(), b"database");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&db).unwrap().ino(), std::fs::metadata(&second.db_path).unwrap().ino());
        assert!(!sidecar(&second.db_path, "-wal").exists(), "the last trial's log is gone");
        // A lone writer is the one that opens by the second name.
        sc.workload.writers = 1;
        let mut alone = first.clone();
        FAULT.configure(0, &mut alone, &sc, None).unwrap();
        assert_eq!(alone.db_path, second_name(&db));
    }
}

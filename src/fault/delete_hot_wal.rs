//! `delete_hot_wal`: every writer is killed; before any connection recovers, the `-wal` (and the
//! `-shm` that indexes it) is deleted, as naive cleanup scripts do. With checkpoints off every
//! commit of the trial is in the WAL, so each acknowledged one is lost: a canary.

use crate::base::dbfiles::{remove_if_present, sidecar};
use crate::error::{Error, Result};
use crate::fault::{AfterReap, Fault};
use crate::record::checks::ViolationKind;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::{Cell, CheckpointPolicy, JournalMode};
use std::path::Path;

pub struct DeleteHotWal;

pub const FAULT: DeleteHotWal = DeleteHotWal;

impl Fault for DeleteHotWal {
    fn describe(&self) -> &'static str {
        "after the kill, before any connection recovers, the -wal is deleted, with every commit of \
         the trial still in it (checkpoints off), as naive cleanup scripts do"
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        // Every commit since the template is in the WAL (when the checkpoint policy does not
        // move it): deleting the WAL loses each acknowledged one.
        if cell.journal_mode == JournalMode::Wal && cell.checkpoint == Some(CheckpointPolicy::None) {
            Expectation::canary(
                &[ViolationKind::LostAck],
                "hazard: a deleted hot WAL loses the acknowledged commits it held (canary)",
            )
        } else {
            Expectation::measured("hazard: deleting a hot WAL; measured")
        }
    }

    fn stops_everyone(&self) -> bool {
        true
    }

    fn after_reap(&self, a: &mut AfterReap<'_>) -> Result<Option<String>> {
        Ok(match delete_hot(a.db, "-wal").map_err(|e| Error::io("hazard delete_hot_wal: delete -wal", e))? {
            None => Some("no hot WAL to delete".into()),
            Some(_) if a.commits == 0 => Some("no acknowledged commit the WAL could hold".into()),
            Some(_) => None,
        })
    }
}

/// Deletes the hot `-wal` or `-journal` of `db` (and, with a `-wal`, the `-shm` that indexes
/// it), as a naive cleanup script does after a crash. Returns the size of the deleted file, or
/// `None` when there was nothing to delete.
pub fn delete_hot(db: &Path, suffix: &str) -> std::io::Result<Option<u64>> {
    let path = sidecar(db, suffix);
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    std::fs::remove_file(&path)?;
    if suffix == "-wal" {
        remove_if_present(&sidecar(db, "-shm"))?;
    }
    Ok((size > 0).then_some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_hot_reports_what_it_removed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        std::fs::write(&db, b"db").unwrap();
        assert_eq!(delete_hot(&db, "-wal").unwrap(), None);
        std::fs::write(sidecar(&db, "-wal"), vec![1; 100]).unwrap();
        std::fs::write(sidecar(&db, "-shm"), vec![1; 10]).unwrap();
        assert_eq!(delete_hot(&db, "-wal").unwrap(), Some(100));
        assert!(!sidecar(&db, "-shm").exists());
        assert!(db.exists());
    }
}

//! `swap_db`: at a moment of the window, while writers run, the database file is replaced
//! (a copy next to it, then `rename(2)` over it) by the copy taken at the trial's start, its
//! `-wal` and `-shm` left in place, as a "restore snapshot" feature might do. Connections already
//! open keep the old inode; the WAL's frames are pages of the newer file. Measured.

use crate::error::{Error, Result};
use crate::fault::{Fault, Moment, Window, kill_window};
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::Cell;
use std::path::Path;

pub struct SwapDb;

pub const FAULT: SwapDb = SwapDb;

impl Fault for SwapDb {
    fn describe(&self) -> &'static str {
        "while writers run, the database file is replaced (rename over it) by the copy taken at the \
         trial's start, its -wal and -shm left in place, as a \"restore snapshot\" feature might do"
    }

    fn expectation(&self, _cell: &Cell) -> Expectation {
        Expectation::measured("hazard: the database file replaced under its -wal and -shm; measured")
    }

    fn moment(&self, w: &mut dyn Window) -> Result<Moment> {
        let moment = kill_window(w)?;
        // The "restore": the database file replaced by the trial's starting copy, writers
        // running.
        let db = w.db().to_path_buf();
        swap_in(&db, w.template()).map_err(|e| Error::io(format!("swap {}", db.display()), e))?;
        Ok(moment)
    }

    fn stops_everyone(&self) -> bool {
        true
    }
}

/// Replaces the database file by `snapshot` the way a "restore" feature would: a copy next to
/// it, then `rename(2)` over it. Its `-wal` and `-shm` stay; connections already open keep the
/// old inode.
pub fn swap_in(db: &Path, snapshot: &Path) -> std::io::Result<()> {
    let staging = crate::base::dbfiles::sidecar(db, ".swap");
    std::fs::copy(snapshot, &staging)?;
    std::fs::rename(&staging, db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::checks::ViolationKind;
    use crate::scenario::matrix::JournalMode;
    use crate::testkit;

    #[test]
    fn a_database_file_swapped_under_its_wal_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = crate::writer::pragmas::Pragmas { wal_autocheckpoint_pages: 0, ..testkit::pragmas(JournalMode::Wal) };
        let (db, mut conn, mut w, seeded) = testkit::session_store(dir.path(), &testkit::workload(), &p, 0);
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let snapshot = dir.path().join("snapshot.sqlite");
        std::fs::copy(&db, &snapshot).unwrap();
        // Commits, a checkpoint that moves them into the file and restarts the WAL, more
        // commits: then the "restore" puts the old file back under the live WAL.
        for _ in 0..20 {
            w.run_txn(&mut conn, &mut |_| {}).unwrap();
        }
        conn.execute_batch("PRAGMA wal_checkpoint(RESTART)").unwrap();
        for _ in 0..5 {
            w.run_txn(&mut conn, &mut |_| {}).unwrap();
        }
        let image = dir.path().join("image");
        crate::base::dbfiles::copy_image(&db, &image).unwrap();
        swap_in(&image.join("db.sqlite"), &snapshot).unwrap();
        // The WAL's frames are pages of the newer file, applied over the older one: the
        // b-trees no longer fit together.
        let v = testkit::violations(&image.join("db.sqlite"), None, &testkit::expected(seeded, 25, 25));
        assert!(v.contains(&ViolationKind::Integrity), "{v:?}");
    }

    #[test]
    fn swap_in_puts_the_snapshot_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let old = dir.path().join("old.sqlite");
        std::fs::write(&db, vec![2u8; 200_000]).unwrap();
        std::fs::write(&old, vec![1u8; 1000]).unwrap();
        swap_in(&db, &old).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), vec![1u8; 1000]);
    }
}

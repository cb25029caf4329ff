//! `raw_copy_backup`: at a random moment of the window, while writers run, the database file
//! (only the main file) is copied with plain reads, as a naive backup does; the copy alone is the
//! crash image, judged against what was acknowledged before the copy began, as a restored backup
//! would be. Measured.

use crate::error::{Error, Result};
use crate::fault::{AfterReap, Fault, Moment, Window, kill_window, uniform_deadline};
use crate::base::dbfiles::DB_NAME;
use crate::record::expected::WriterExpectation;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::{Cell, KillTiming};
use rand::RngExt;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct RawCopyBackup;

pub const FAULT: RawCopyBackup = RawCopyBackup;

impl Fault for RawCopyBackup {
    fn describe(&self) -> &'static str {
        "while writers run, the database file is copied with plain reads; the copy alone (without \
         the -wal or -journal) is what gets checked, as a restored backup would be"
    }

    fn expectation(&self, _cell: &Cell) -> Expectation {
        Expectation::measured("hazard: a backup copied with plain reads while writers run; measured")
    }

    /// The copy runs at a random moment of a uniform window, while the writers write.
    fn moment(&self, w: &mut dyn Window) -> Result<Moment> {
        if w.cell().timing != KillTiming::Uniform {
            return kill_window(w);
        }
        let start = Instant::now();
        let until = uniform_deadline(w);
        let fraction = w.rng().random_range(0.0..1.0);
        w.plan().backup_at_fraction = Some(fraction);
        w.run_until(start + (until - start).mul_f64(fraction)).map_err(|e| Error::io("run the writers", e))?;
        let to = w.dir().join("backup").join(DB_NAME);
        let io = |what: &str| {
            let what = what.to_string();
            move |e: std::io::Error| Error::io(what, e)
        };
        std::fs::create_dir_all(to.parent().expect("a parent")).map_err(io("create the backup directory"))?;
        let copy_start_ns = crate::writer::child::monotonic_ns();
        raw_copy(w.db(), &to, w.scenario().hazard.backup_chunk_bytes as usize).map_err(io("raw copy of the database"))?;
        w.run_until(until).map_err(io("run the writers"))?;
        let grace = Duration::from_millis(w.scenario().kill.grace_ms);
        Ok(Moment { grace, inconclusive: None, copy: Some((to, copy_start_ns)) })
    }

    fn stops_everyone(&self) -> bool {
        true
    }

    /// The backup is the crash state; what it must hold is what was acknowledged before the
    /// copy began.
    fn after_reap(&self, a: &mut AfterReap<'_>) -> Result<Option<String>> {
        let Some((path, copy_start_ns)) = a.copy.take() else {
            return Ok(Some("no backup was taken (the copy runs in uniform timing only)".into()));
        };
        *a.check_db = path;
        for (id, log) in a.logs {
            let before: Vec<u64> = log
                .acked_seqs
                .iter()
                .zip(&log.acked_at_ns)
                .filter(|&(_, &t)| t < copy_start_ns)
                .map(|(&seq, _)| seq)
                .collect();
            a.acks.insert(*id, WriterExpectation::from_acked(&before, log.begun));
        }
        Ok(None)
    }
}

/// Copies the database file (only the main file, as a naive backup does) with plain reads of
/// `chunk` bytes while writers run. Returns the bytes copied.
pub fn raw_copy(db: &Path, to: &Path, chunk: usize) -> std::io::Result<u64> {
    let mut from = std::fs::File::open(db)?;
    let mut out = std::fs::File::create(to)?;
    let mut buf = vec![0u8; chunk.max(512)];
    let mut copied = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        copied += n as u64;
    }
    out.sync_all()?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::matrix::JournalMode;
    use crate::testkit::{self, WRITER};

    #[test]
    fn a_raw_copy_of_a_wal_database_misses_what_the_wal_holds() {
        let dir = tempfile::tempdir().unwrap();
        let p = crate::writer::pragmas::Pragmas { wal_autocheckpoint_pages: 0, ..testkit::pragmas(JournalMode::Wal) };
        let (db, conn, _, seeded) = testkit::session_store(dir.path(), &testkit::workload(), &p, 0);
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let mut w = crate::writer::session_store::TxnWriter::new(WRITER, 2, &testkit::workload());
        let mut conn = conn;
        for _ in 0..10 {
            w.run_txn(&mut conn, &mut |_| {}).unwrap();
        }
        let backup_dir = dir.path().join("backup");
        std::fs::create_dir(&backup_dir).unwrap();
        let backup = backup_dir.join("db.sqlite");
        raw_copy(&db, &backup, 65536).unwrap();
        let expected = testkit::expected(seeded, 10, 10);
        assert!(testkit::violations(&backup, None, &expected).contains(&crate::record::checks::ViolationKind::LostAck));
        // Copied with its WAL, nothing is missing: the oracle blames the copy, not the data.
        std::fs::copy(crate::base::dbfiles::sidecar(&db, "-wal"), crate::base::dbfiles::sidecar(&backup, "-wal"))
            .unwrap();
        assert_eq!(testkit::violations(&backup, None, &expected), vec![]);
    }

    #[test]
    fn raw_copy_moves_the_bytes_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        std::fs::write(&db, vec![2u8; 200_000]).unwrap();
        let backup = dir.path().join("backup.sqlite");
        assert_eq!(raw_copy(&db, &backup, 4096).unwrap(), 200_000);
        assert_eq!(std::fs::read(&backup).unwrap(), vec![2u8; 200_000]);
    }
}

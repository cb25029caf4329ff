//! Hazards: the misuse that SQLite's "How To Corrupt An SQLite Database File"
//! lists, run as part of a trial so that its effect sits next to the pragma cells of the same
//! workload. The writer-side ones ([`WriterHazard`]) run inside writer processes; the
//! driver-side ones (deleting a hot `-wal` or `-journal`, swapping the database file, copying
//! it raw) are plain file operations the driver performs on the trial's files at the moment the
//! trial says. Nothing here judges: the oracle does.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Which file a lock-cancelling writer opens and closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockTarget {
    Db,
    Wal,
    Shm,
}

impl LockTarget {
    pub fn suffix(self) -> &'static str {
        match self {
            LockTarget::Db => "",
            LockTarget::Wal => "-wal",
            LockTarget::Shm => "-shm",
        }
    }
}

/// What a writer process does besides writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WriterHazard {
    /// A thread opens and closes its own descriptor of the file at random moments. POSIX
    /// advisory locks belong to the process and inode: closing *any* descriptor of the file
    /// releases every lock the process holds on it, including SQLite's. (SQLite's unix VFS
    /// defers closing its own descriptors for this reason; it cannot know about ours.)
    LockCancel { target: LockTarget, interval_us_max: u64 },
    /// After opening its connection, the process forks and the child writes through the
    /// inherited connection while the parent goes on with it too. The child holds none of the
    /// parent's POSIX locks, yet SQLite's in-memory state in it believes it does.
    ForkConnection,
}

/// Starts the lock-cancelling thread of a writer; it stops when `stop` is set.
pub fn start_lock_canceller(
    file: PathBuf,
    interval_us_max: u64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("lock-cancel".into())
        .spawn(move || {
            use rand::{RngExt, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_micros(rng.random_range(0..=interval_us_max)));
                // Open and drop (close) at once: all it takes. A missing file (no -shm yet) is
                // simply skipped.
                drop(std::fs::File::open(&file));
            }
        })
        .expect("spawn the lock-cancelling thread")
}

/// Deletes the hot `-wal` or `-journal` of `db` (and, with a `-wal`, the `-shm` that indexes
/// it), as a naive cleanup script does after a crash. Returns the size of the deleted file, or
/// `None` when there was nothing to delete.
pub fn delete_hot(db: &Path, suffix: &str) -> std::io::Result<Option<u64>> {
    let path = crate::base::dbfiles::sidecar(db, suffix);
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    std::fs::remove_file(&path)?;
    if suffix == "-wal" {
        match std::fs::remove_file(crate::base::dbfiles::sidecar(db, "-shm")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok((size > 0).then_some(size))
}

/// Replaces the database file by `snapshot` the way a "restore" feature would: a copy next to
/// it, then `rename(2)` over it. Its `-wal` and `-shm` stay; connections already open keep the
/// old inode.
pub fn swap_in(db: &Path, snapshot: &Path) -> std::io::Result<()> {
    let staging = crate::base::dbfiles::sidecar(db, ".swap");
    std::fs::copy(snapshot, &staging)?;
    std::fs::rename(&staging, db)
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

    #[test]
    fn delete_hot_reports_what_it_removed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        std::fs::write(&db, b"db").unwrap();
        assert_eq!(delete_hot(&db, "-wal").unwrap(), None);
        std::fs::write(crate::base::dbfiles::sidecar(&db, "-wal"), vec![1; 100]).unwrap();
        std::fs::write(crate::base::dbfiles::sidecar(&db, "-shm"), vec![1; 10]).unwrap();
        assert_eq!(delete_hot(&db, "-wal").unwrap(), Some(100));
        assert!(!crate::base::dbfiles::sidecar(&db, "-shm").exists());
        assert!(db.exists());
    }

    use crate::oracle::{self, CheckConfig, ReopenConfig};

    use crate::record::expected::Expected;

    use crate::record::checks::ViolationKind;

    use crate::record::expected::WriterExpectation;
    use crate::writer::session_store::{self, TxnWriter, WorkloadConfig};
    use rusqlite::Connection;
    use std::collections::BTreeMap;

    fn cfg() -> WorkloadConfig {
        WorkloadConfig { seed_messages: 30, seed_sessions: 3, compress_percent: 0, ..Default::default() }
    }

    /// A WAL database: the seed (checkpointed into the file, as a template is), then `txns`
    /// commits of writer 9 left in the WAL (autocheckpoint off), the connection left open.
    fn wal_db(dir: &Path, txns: u64) -> (PathBuf, Connection, TxnWriter, u64) {
        let db = dir.join("db.sqlite");
        let mut conn = Connection::open(&db).unwrap();
        session_store::create_schema(&conn, &cfg()).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0").unwrap();
        let seed = session_store::seed(&mut conn, &cfg(), 1).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let mut w = TxnWriter::new(9, 2, &cfg());
        for _ in 0..txns {
            w.run_txn(&mut conn, &mut |_| {}).unwrap();
        }
        (db, conn, w, seed)
    }

    fn judge(db: &Path, seed: u64, acked: u64) -> Vec<ViolationKind> {
        let c = CheckConfig {
            integrity: crate::oracle::IntegrityLevel::Full,
            fts_samples: 4,
            seed: 1,
            reopen: ReopenConfig { pragmas: None, writer_id: 99, workload: cfg() },
        };
        let expected = Expected {
            writers: BTreeMap::from([
                (0, WriterExpectation::upto(seed, seed)),
                (9, WriterExpectation::upto(acked, acked)),
            ]),
        };
        oracle::check_copy(db, &c, Some(&expected)).unwrap().violations()
    }

    #[test]
    fn a_raw_copy_of_a_wal_database_misses_what_the_wal_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _conn, _w, seed) = wal_db(dir.path(), 10);
        let backup_dir = dir.path().join("backup");
        std::fs::create_dir(&backup_dir).unwrap();
        let backup = backup_dir.join("db.sqlite");
        raw_copy(&db, &backup, 65536).unwrap();
        assert!(judge(&backup, seed, 10).contains(&ViolationKind::LostAck));
        // Copied with its WAL, nothing is missing: the oracle blames the copy, not the data.
        std::fs::copy(crate::base::dbfiles::sidecar(&db, "-wal"), crate::base::dbfiles::sidecar(&backup, "-wal"))
            .unwrap();
        assert_eq!(judge(&backup, seed, 10), vec![]);
    }

    #[test]
    fn a_database_file_swapped_under_its_wal_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (db, mut conn, mut w, seed) = wal_db(dir.path(), 0);
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
        std::fs::create_dir(&image).unwrap();
        crate::base::dbfiles::copy_image(&db, &image).unwrap();
        swap_in(&image.join("db.sqlite"), &snapshot).unwrap();
        // The WAL's frames are pages of the newer file, applied over the older one: the
        // b-trees no longer fit together.
        let v = judge(&image.join("db.sqlite"), seed, 25);
        assert!(v.contains(&ViolationKind::Integrity), "{v:?}");
    }

    #[test]
    fn swap_and_raw_copy_move_the_bytes_they_say() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let old = dir.path().join("old.sqlite");
        std::fs::write(&db, vec![2u8; 200_000]).unwrap();
        std::fs::write(&old, vec![1u8; 1000]).unwrap();
        let backup = dir.path().join("backup.sqlite");
        assert_eq!(raw_copy(&db, &backup, 4096).unwrap(), 200_000);
        assert_eq!(std::fs::read(&backup).unwrap(), vec![2u8; 200_000]);
        swap_in(&db, &old).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), vec![1u8; 1000]);
    }
}

//! The misuse that runs inside writer processes ([`WriterHazard`]): a thread that cancels the
//! process's POSIX locks by opening and closing its own descriptor of a file, and a connection
//! carried across `fork()`. The hazard faults that configure them are `fault::lock_cancel*` and
//! `fault::fork_connection`; the driver-side hazards (a hot file deleted, the database swapped
//! or copied raw) live in their own fault modules. Nothing here judges: the oracle does.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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

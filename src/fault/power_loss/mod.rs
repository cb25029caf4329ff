//! `power_loss`: the writers run on the tracing VFS, which records every write, sync (with its
//! flags), truncation, file creation and deletion; at a moment of the window every process is
//! SIGKILLed, and crash images are built from the trace as a power loss at cut points could
//! leave the files: what a file had before its last barrier sync is on disk; every later write
//! is kept, dropped or torn (by sector); a file created, or deleted without a directory sync,
//! may or may not exist. This is what separates the synchronous levels, as SQLite documents.
//!
//! `builder` is the pure crash-image builder, `images` the images of one trace built, checked,
//! deduplicated, shrunk and explained.

use crate::fault::{Fault, Images};
use crate::record::checks::ViolationKind;
use crate::scenario::Scenario;
use crate::scenario::expect::{Expectation, Level};
use crate::scenario::matrix::{Cell, DeviceModel, FullFsync, JournalMode, Synchronous};

pub mod builder;
pub mod images;

pub struct PowerLoss;

pub const FAULT: PowerLoss = PowerLoss;

impl Fault for PowerLoss {
    fn describe(&self) -> &'static str {
        "a machine fault, not a hazard: unsynced writes are lost (see results/durability-matrix.md)"
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        power_loss_expectation(cell)
    }

    fn states_per_trial(&self, scenario: &Scenario) -> u64 {
        u64::from(scenario.power_loss.images_per_trace).max(1)
    }

    fn stops_everyone(&self) -> bool {
        true
    }

    fn images(&self) -> Images {
        Images::Traced
    }
}

/// Every kind but `lost_ack` forbidden: "consistent, but the last commits may roll back".
fn consistent_may_lose(reason: &str) -> Expectation {
    let mut e = Expectation::uniform(Level::Forbidden, reason);
    e.levels.insert(ViolationKind::LostAck, Level::Allowed);
    e
}

/// The kinds by which a database is damaged (rather than merely missing commits).
pub(crate) const DAMAGE: [ViolationKind; 4] =
    [ViolationKind::Open, ViolationKind::Integrity, ViolationKind::Fts, ViolationKind::Atomicity];

/// SQLite's promise under a power loss (the right-hand column of the table in
/// `scenario::expect`). Canaries: WAL+NORMAL must lose acknowledged commits,
/// synchronous=OFF must damage a rollback-journal database (and lose commits in WAL),
/// DELETE+FULL must lose a commit through the journal's unlink not being durable.
fn power_loss_expectation(cell: &Cell) -> Expectation {
    use JournalMode::{Delete, Memory, Off, Persist, Truncate, Wal};
    use Synchronous as S;
    // On a device whose plain fsync orders nothing, only SQLITE_SYNC_FULL syncs are barriers:
    // with `fullfsync=on` every sync carries it and the device behaves as a barrier device;
    // otherwise SQLite promises nothing (this is the measurement the axis exists for).
    let honest = match (cell.device, cell.fullfsync) {
        (Some(DeviceModel::Barrier) | None, _) | (Some(DeviceModel::NoBarrier), FullFsync::On) => true,
        (Some(DeviceModel::NoBarrier), FullFsync::Off | FullFsync::Checkpoint) => false,
    };
    if !honest {
        return Expectation::uniform(Level::Allowed, "power loss on a device without fsync barriers: no promise");
    }
    match (cell.journal_mode, cell.synchronous) {
        (Memory | Off, _) => {
            Expectation::uniform(Level::Allowed, "power loss with journal off/memory: no rollback journal, no promise")
        }
        (Wal, S::Off) => {
            let mut e = Expectation::uniform(
                Level::Allowed,
                "power loss, WAL, synchronous=OFF: may corrupt; unsynced commits are lost (canary)",
            );
            e.levels.insert(ViolationKind::LostAck, Level::Required);
            e
        }
        (Delete | Truncate | Persist, S::Off) => Expectation::canary(
            &DAMAGE,
            "power loss, rollback journal, synchronous=OFF: database pages reach the disk before the journal (canary)",
        ),
        (Wal, S::Normal) => {
            let mut e = consistent_may_lose(
                "power loss, WAL, synchronous=NORMAL: consistent; the last commits may roll back (canary)",
            );
            e.levels.insert(ViolationKind::LostAck, Level::Required);
            e
        }
        (Wal, S::Full | S::Extra) => {
            Expectation::uniform(Level::Forbidden, "power loss, WAL, synchronous=FULL/EXTRA: atomic and durable")
        }
        (Delete, S::Normal) => Expectation::uniform(
            Level::Allowed,
            "power loss, DELETE, synchronous=NORMAL: a very small chance of corruption",
        ),
        (Delete, S::Full) => {
            let mut e = consistent_may_lose(
                "power loss, DELETE, synchronous=FULL: no corruption; the journal's unlink is not durable, so the last commit may roll back (canary)",
            );
            e.levels.insert(ViolationKind::LostAck, Level::Required);
            e
        }
        (Delete, S::Extra) => Expectation::uniform(
            Level::Forbidden,
            "power loss, DELETE, synchronous=EXTRA: atomic and durable (directory synced after the unlink)",
        ),
        (Truncate | Persist, S::Normal | S::Full | S::Extra) => Expectation::uniform(
            Level::Allowed,
            "power loss, TRUNCATE/PERSIST: SQLite documents no promise; measured, not judged",
        ),
    }
}

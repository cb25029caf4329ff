//! `lock_cancel`: each long-lived writer also opens and closes its own second descriptor of the
//! database file at random moments. POSIX locks belong to the process, so the close drops every
//! lock its SQLite connection holds on that file. A rollback journal keeps its
//! RESERVED/PENDING/EXCLUSIVE locks there: two writers whose locks vanish write at once, and the
//! cell is a canary. WAL keeps its writer lock in the -shm; the database file's lock only guards
//! the last closer's checkpoint-and-delete of the WAL: measured, not promised either way.
//!
//! `lock_cancel_wal` and `lock_cancel_shm` are the same misuse on the `-wal` and the `-shm`
//! (where WAL keeps its writer and reader locks: a canary there).

use crate::error::Result;
use crate::fault::misuse::{LockTarget, WriterHazard};
use crate::fault::{Fault, ShortTrace};
use crate::record::checks::ViolationKind;
use crate::scenario::Scenario;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::{Cell, JournalMode};
use crate::writer::protocol::WriterConfig;

/// Lock cancellation on one of the database's files.
pub struct LockCancel {
    pub target: LockTarget,
}

pub const FAULT: LockCancel = LockCancel { target: LockTarget::Db };

impl Fault for LockCancel {
    fn describe(&self) -> &'static str {
        match self.target {
            LockTarget::Db => {
                "each long-lived writer opens and closes its own second descriptor of the database file; \
                 POSIX locks belong to the process, so the close drops the locks its connection holds. \
                 Rollback journal: the writer's RESERVED/PENDING/EXCLUSIVE locks live there. WAL: the \
                 writer lock lives in the -shm; the database file's lock only guards the last closer's \
                 checkpoint-and-delete of the WAL"
            }
            LockTarget::Wal => "the same with the -wal file, which holds no lock",
            LockTarget::Shm => "the same with the -shm file, where WAL keeps its writer and reader locks",
        }
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        use JournalMode::{Delete, Persist, Truncate, Wal};
        match (self.target, cell.journal_mode) {
            // Two writers whose locks vanish write at once: a rollback journal's database
            // locks, or WAL's write lock in the -shm, are gone. Whatever breaks, something does.
            (LockTarget::Db, Delete | Truncate | Persist) | (LockTarget::Shm, Wal) => Expectation::canary(
                &ViolationKind::ALL,
                "hazard: lock cancellation under concurrent writers corrupts (canary: some violation required)",
            ),
            // WAL keeps no lock on the database file a writer needs (only the last close
            // looks), nor on the -wal itself: measured, not promised either way.
            (LockTarget::Db | LockTarget::Wal | LockTarget::Shm, _) => Expectation::measured(
                "hazard: lock cancellation on a file this journal mode holds no writer lock on; measured",
            ),
        }
    }

    fn configure(&self, _p: usize, cfg: &mut WriterConfig, scenario: &Scenario, _short: Option<ShortTrace>) -> Result<()> {
        let interval_us_max = scenario.hazard.lock_cancel_interval_us_max;
        cfg.hazard = Some(WriterHazard::LockCancel { target: self.target, interval_us_max });
        Ok(())
    }

    fn stops_everyone(&self) -> bool {
        true
    }
}

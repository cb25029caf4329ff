//! `delete_hot_journal`: a bulk transaction is killed mid-write; before any connection recovers,
//! the hot `-journal` (the only copy of the pages it overwrote) is deleted. Without it nothing can
//! undo the spilled pages (the state of journal_mode=OFF): a canary.

use crate::error::{Error, Result};
use crate::fault::delete_hot_wal::delete_hot;
use crate::fault::{AfterReap, Fault};
use crate::record::checks::ViolationKind;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::{Cell, JournalMode, KillTiming};

pub struct DeleteHotJournal;

pub const FAULT: DeleteHotJournal = DeleteHotJournal;

impl Fault for DeleteHotJournal {
    fn describe(&self) -> &'static str {
        "a bulk transaction is killed mid-write; before any connection recovers, the hot -journal \
         (the only copy of the pages it overwrote) is deleted"
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        // Killed inside a bulk transaction whose pages spilled: without its journal nothing can
        // undo them (the same state as journal_mode=OFF).
        let rollback_journal = matches!(cell.journal_mode, JournalMode::Delete | JournalMode::Truncate | JournalMode::Persist);
        if rollback_journal && cell.timing == KillTiming::Bulk {
            Expectation::canary(
                &[ViolationKind::Open, ViolationKind::Integrity, ViolationKind::Fts, ViolationKind::Atomicity],
                "hazard: a deleted hot journal leaves a half-written transaction (canary)",
            )
        } else {
            Expectation::measured("hazard: deleting a hot journal; measured")
        }
    }

    fn stops_everyone(&self) -> bool {
        true
    }

    fn after_reap(&self, a: &mut AfterReap<'_>) -> Result<Option<String>> {
        let deleted =
            delete_hot(a.db, "-journal").map_err(|e| Error::io("hazard delete_hot_journal: delete -journal", e))?;
        Ok(deleted.is_none().then(|| "no hot journal to delete (the kill fell between transactions)".into()))
    }
}

//! `kill`: SIGTERM at a moment of the window (uniform, or inside a bulk transaction), then
//! SIGKILL after the grace period if the writer is still alive. The victim's SIGTERM behaviour
//! is an axis: `default` (it dies at once), `graceful` (it finishes its transaction, runs a
//! checkpoint, closes: the fix the production case proposed), `ignore`.
//!
//! A killed process loses nothing that reached the OS page cache: under a kill every journalled
//! mode must come through atomic and durable, whatever `synchronous` says. Journal OFF and
//! MEMORY have no on-disk journal to undo a transaction whose pages spilled: a kill inside one
//! very likely corrupts, so those cells are canaries.

use crate::fault::Fault;
use crate::record::checks::ViolationKind;
use crate::scenario::expect::{Expectation, Level};
use crate::scenario::matrix::{Cell, SigtermBehaviour};
use nix::sys::signal::Signal;

pub struct Kill;

pub const FAULT: Kill = Kill;

impl Fault for Kill {
    fn describe(&self) -> &'static str {
        "no hazard: the writers are killed (SIGTERM, then SIGKILL); the contrast every hazard sits beside"
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        process_crash_expectation(cell)
    }

    fn continues_database(&self) -> bool {
        true
    }

    fn first_signal(&self) -> Option<Signal> {
        Some(Signal::SIGTERM)
    }

    fn intended_deaths(&self, sigterm: Option<SigtermBehaviour>) -> Vec<String> {
        let labels: &[&str] = match sigterm {
            None | Some(SigtermBehaviour::Default) => &["signal:SIGTERM"],
            Some(SigtermBehaviour::Ignore) => &["signal:SIGKILL"],
            // Finishes its transaction and exits 0, or is cut by the SIGKILL after the grace.
            Some(SigtermBehaviour::Graceful) => &["exit:0", "signal:SIGKILL"],
        };
        labels.iter().map(|s| s.to_string()).collect()
    }
}

/// What SQLite promises under a process crash (a kill, SIGKILL alone, a crash point: the same
/// promises): every violation forbidden with an on-disk journal; with journal OFF or MEMORY,
/// damage required (a canary), unless a graceful writer finished its transaction first.
pub fn process_crash_expectation(cell: &Cell) -> Expectation {
    if cell.journal_mode.is_journalled() {
        return Expectation::uniform(Level::Forbidden, "process kill is atomic and durable with an on-disk journal");
    }
    // A graceful writer finishes its transaction before it exits, so that cell is not a
    // canary: nothing is promised, nothing is required.
    if cell.sigterm == Some(SigtermBehaviour::Graceful) {
        return Expectation::uniform(
            Level::Allowed,
            "journal off/memory: no promise; graceful exit avoids mid-transaction kills",
        );
    }
    Expectation::canary(
        &[ViolationKind::Integrity, ViolationKind::Fts, ViolationKind::Atomicity],
        "journal off/memory: a kill inside a write transaction very likely corrupts (canary)",
    )
}

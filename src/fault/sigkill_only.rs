//! `sigkill_only`: SIGKILL alone at a moment of the window, no SIGTERM first. The same
//! promises as `kill` (a process crash).

use crate::fault::Fault;
use crate::fault::kill::process_crash_expectation;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::Cell;

pub struct SigkillOnly;

pub const FAULT: SigkillOnly = SigkillOnly;

impl Fault for SigkillOnly {
    fn describe(&self) -> &'static str {
        "no hazard: the writers are killed with SIGKILL alone; the contrast every hazard sits beside"
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        process_crash_expectation(cell)
    }

    fn continues_database(&self) -> bool {
        true
    }
}

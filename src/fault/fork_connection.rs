//! `fork_connection`: the first long-lived writer opens its connection, begins a write
//! transaction, then forks; the child adds its own append to the inherited transaction and
//! commits first (as the writer's second writer id), then the parent commits the transaction it
//! believes it still holds. The child holds none of the parent's POSIX locks, yet SQLite's state
//! in it believes it does. Measured.

use crate::fault::misuse::WriterHazard;
use crate::error::Result;
use crate::fault::{Fault, ShortTrace};
use crate::scenario::Scenario;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::Cell;
use crate::writer::protocol::WriterConfig;

pub struct ForkConnection;

pub const FAULT: ForkConnection = ForkConnection;

impl Fault for ForkConnection {
    fn describe(&self) -> &'static str {
        "a writer forks while holding its open connection and the child writes through it"
    }

    fn expectation(&self, _cell: &Cell) -> Expectation {
        Expectation::measured("hazard: a connection carried across fork(); measured")
    }

    /// Only the first process forks; its child writes as its second writer id.
    fn configure(&self, p: usize, cfg: &mut WriterConfig, _scenario: &Scenario, _short: Option<ShortTrace>) -> Result<()> {
        if p == 0 {
            cfg.hazard = Some(WriterHazard::ForkConnection);
            cfg.connections = 2;
        }
        Ok(())
    }

    fn stops_everyone(&self) -> bool {
        true
    }
}

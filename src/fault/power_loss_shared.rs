//! `power_loss_shared`: a power loss beneath several processes, as the production case runs
//! them: at least two long-lived writers of at least two connections each (on threads), and
//! transient writers that open, append and close (the scenario's `[topology]` rate, or 40 per
//! second when it starts none). Every process traces into the trial's one trace; the records
//! are ordered across processes by their stamps and files are keyed by their identity on the
//! file system (`trace`, `power_loss::builder`). Everything else, the images, their checks
//! and SQLite's promise, is `power_loss`'s.

use crate::fault::power_loss::PowerLoss;
use crate::fault::{Fault, Images, ShortTrace};
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::Cell;
use crate::scenario::{Scenario, TopologyConfig};

/// Long-lived writer processes, at least.
pub const WRITERS_MIN: u32 = 2;
/// Connections (threads) of each long-lived writer, at least.
pub const CONNECTIONS_MIN: u32 = 2;
/// Transient writers started per second when the scenario starts none.
pub const TRANSIENT_RATE_PER_S: f64 = 40.0;

pub struct PowerLossShared;

pub const FAULT: PowerLossShared = PowerLossShared;

impl Fault for PowerLossShared {
    fn describe(&self) -> &'static str {
        "a machine fault beneath several processes: unsynced writes are lost, whoever wrote them"
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        PowerLoss.expectation(cell)
    }

    fn states_per_trial(&self, scenario: &Scenario) -> u64 {
        PowerLoss.states_per_trial(scenario)
    }

    fn stops_everyone(&self) -> bool {
        PowerLoss.stops_everyone()
    }

    fn images(&self) -> Images {
        PowerLoss.images()
    }

    fn topology(&self, _cell: &Cell, scenario: &Scenario) -> TopologyConfig {
        let mut topology = scenario.topology.clone();
        topology.connections = topology.connections.max(CONNECTIONS_MIN);
        if topology.transient_rate_per_s <= 0.0 {
            topology.transient_rate_per_s = TRANSIENT_RATE_PER_S;
        }
        topology
    }

    fn long_writers(&self, scenario: &Scenario, _short_trace: Option<ShortTrace>) -> u32 {
        scenario.workload.writers.max(WRITERS_MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::builtin;
    use crate::scenario::matrix::{FaultKind, JournalMode, Synchronous};

    /// The same promise as a power loss beneath one process, on every cell; more processes.
    #[test]
    fn it_promises_what_a_power_loss_does_beneath_more_processes() {
        let scenario = crate::scenario::default_scenario();
        for cell in scenario.cells() {
            for (j, s) in [(JournalMode::Wal, Synchronous::Full), (JournalMode::Delete, Synchronous::Normal)] {
                let shared = Cell { fault: FaultKind::PowerLossShared, journal_mode: j, synchronous: s, ..cell };
                let single = Cell { fault: FaultKind::PowerLoss, ..shared };
                assert_eq!(builtin(&shared).levels, builtin(&single).levels);
            }
        }
        let cell = scenario.cells()[0];
        assert_eq!(FAULT.long_writers(&scenario, None), 2);
        let topology = FAULT.topology(&cell, &scenario);
        assert_eq!((topology.connections, topology.transient_rate_per_s), (2, 40.0));
    }
}

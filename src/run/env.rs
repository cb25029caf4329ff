//! What every trial of a campaign shares: the program each cell's writers run and the SQLite
//! it must run on, the scenario and its cells with their templates, where failures are kept
//! and how to replay them.

use crate::fault::SqliteVersion;
use crate::record::SqliteIdentity;
use crate::run::lane::Template;
use crate::scenario::Scenario;
use crate::scenario::matrix::Cell;
use crate::sqlite::builds::ResolvedBuild;
use crate::writer::program::Program;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// The program a cell's writers run, and the SQLite it runs on.
pub struct CellWriter {
    pub program: Box<dyn Program>,
    pub sqlite: CellSqlite,
}

/// The SQLite a cell's writers run on, as the campaign learnt it before its first trial.
#[derive(Clone, Debug)]
pub struct CellSqlite {
    /// What the build names itself; every writer of the cell must say the same (its `V` line).
    pub identity: SqliteIdentity,
    /// Its version, which built-in expectations may depend on.
    pub version: SqliteVersion,
    /// The build, when it is not the bundled one (the oracle's): damage the oracle finds in an
    /// image is then asked of this build too.
    pub build: Option<ResolvedBuild>,
}

/// What every trial of a campaign shares.
pub struct TrialEnv<'a> {
    /// Per cell (same index as `cells`), the program its writers run.
    pub writers: &'a [CellWriter],
    /// `[hazard] other_sqlite`, resolved before any trial when the matrix has cross_version
    /// cells.
    pub other_sqlite: Option<&'a ResolvedBuild>,
    pub scenario: &'a Scenario,
    pub cells: &'a [Cell],
    pub templates: &'a [Template],
    pub run_dir: &'a Path,
    pub campaign_seed: u64,
    /// How the campaign was started, for replay lines (`crashfuzz run ARG`).
    pub scenario_arg: &'a str,
    /// Failures kept so far, per cell.
    pub kept_per_cell: &'a [AtomicU32],
    /// When the campaign started (trial records say when they started, relative to it).
    pub campaign_start: Instant,
}

impl TrialEnv<'_> {
    /// The program cell `cell_index`'s writers run.
    pub fn writer(&self, cell_index: usize) -> &dyn Program {
        self.writers[cell_index].program.as_ref()
    }
}

//! What every trial of a campaign shares: the program its writers run, the scenario and
//! its cells with their templates, where failures are kept and how to replay them.

use crate::run::lane::Template;
use crate::scenario::Scenario;
use crate::scenario::matrix::Cell;
use crate::sqlite::builds::ResolvedBuild;
use crate::writer::program::Program;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// What every trial of a campaign shares.
pub struct TrialEnv<'a> {
    /// The program every writer of the campaign runs.
    pub writer: &'a dyn Program,
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

//! Scenarios: the TOML files under `scenarios/` and the embedded ones. This module owns their
//! parsing, their defaults and their validation, and nothing else: it never opens a database,
//! starts a process or changes a value it was given (a setting is accepted as written or
//! rejected, never clamped).
//!
//! A scenario is read in three steps, each of which can only reject:
//! 1. syntax: `toml::de::DeTable::parse` builds a tree that keeps the byte span of every key and
//!    value; it is kept to turn any later error back into a line and a setting path;
//! 2. types: serde into raw structs with `deny_unknown_fields` everywhere, which catches unknown
//!    keys, wrong types and unknown enum values;
//! 3. meaning: small pure validators (ranges, relations between settings, `[[matrix]]` axes,
//!    `[[expect]]` blocks against the expanded matrix) that return `Problem`s, which are then
//!    located in the tree.
//!
//! Architecture invariant: **parsing never panics, whatever the bytes** (a proptest feeds it
//! random and mutated input). Every rejection is an [`Error::Scenario`] (exit code 2) naming the
//! file, the 1-based line, the setting (`fault.kill.grace_ms`, `matrix[2].journal_mode`; blocks
//! are counted from 1, as a reader of the file counts them), the bad value and what is allowed.

pub mod app;
pub mod expect;
pub mod matrix;

use crate::error::{Error, Result};
use crate::fault::load::LoadConfig;
use crate::fault::power_loss::builder::PowerLossConfig;
use crate::fault::vfs::IoErrorKind;
use crate::oracle::IntegrityLevel;
use crate::record::checks::ViolationKind;
use crate::scenario::expect::{ExpectOverride, Level};
use crate::scenario::matrix::{
    Cell, CheckpointMode, CheckpointPolicy, DeviceModel, FaultKind, FullFsync, JournalMode, KillTiming, MatrixBlock,
    SigtermBehaviour, SqliteName, Synchronous,
};
use crate::sqlite::builds::SqliteBuild;
use crate::writer::session_store::WorkloadConfig;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The embedded default scenario (also at `scenarios/default.toml`).
pub const DEFAULT_SCENARIO_TOML: &str = include_str!("../../scenarios/default.toml");

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Where it came from: a path, or `embedded:NAME`.
    pub source: String,
    pub budget: Budget,
    pub database: DatabaseConfig,
    pub workload: WorkloadConfig,
    pub kill: KillConfig,
    pub power_loss: PowerLossConfig,
    pub crash_point: CrashPointConfig,
    pub io_error: IoErrorConfig,
    pub topology: TopologyConfig,
    pub load: LoadConfig,
    pub hazard: HazardConfig,
    pub check: CheckSettings,
    pub output: OutputConfig,
    pub matrix: Vec<MatrixBlock>,
    pub expect: Vec<ExpectOverride>,
    /// `[writer]` and `[oracle]`: the application's own program that writes every cell's
    /// database, when the scenario tests one instead of crashfuzz's writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<app::AppWriter>,
}

/// How crash points are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPoints {
    /// Every operation of a short deterministic trace in turn: trial k of the cell crashes at
    /// operation k + 1 (cycling), replayable exactly.
    Systematic,
    /// A uniformly random operation index in `1..=op_max`, on an ordinary writer.
    Random,
}

/// `[fault.crash_point]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrashPointConfig {
    pub points: CrashPoints,
    /// `systematic`: the transactions of the short trace whose operations are enumerated.
    pub txns: u32,
    /// `random`: the largest operation index (a write, sync or truncate) chosen.
    pub op_max: u64,
}

impl Default for CrashPointConfig {
    fn default() -> Self {
        CrashPointConfig { points: CrashPoints::Systematic, txns: 6, op_max: 300 }
    }
}

/// `[topology]`: the processes of a trial.
/// `[topology]`: the processes of a trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopologyConfig {
    /// Connections of each long-lived writer process, each on its own thread (the gateway of
    /// the case had several). `workload.writers` says how many long-lived processes there are.
    pub connections: u32,
    /// Transient writer processes started per second (0: none).
    pub transient_rate_per_s: f64,
    /// Transient writers alive at once, at most.
    pub transient_concurrency_max: u32,
    /// Transactions a transient writer runs before it closes and exits.
    pub transient_txns: u32,
    /// Which process the fault hits: the `gateway` (the first long-lived process) or `any`
    /// live process, transients included (for crash points and I/O errors: any long-lived one).
    pub victim: VictimChoice,
    /// How long the survivors keep writing after the victim died, in milliseconds; each must
    /// commit in that time (0: stop them with the victim).
    pub survive_ms: u64,
    /// The period of the `truncate_on_timer` checkpoint policy, in milliseconds.
    pub checkpoint_timer_ms: u64,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            connections: 1,
            transient_rate_per_s: 0.0,
            transient_concurrency_max: 4,
            transient_txns: 3,
            victim: VictimChoice::Gateway,
            survive_ms: 0,
            checkpoint_timer_ms: 1000,
        }
    }
}

/// Which process the fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VictimChoice {
    Gateway,
    Any,
}

/// `[hazard]`: the knobs of the hazard faults.
/// `[hazard]`: the knobs of the hazard faults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HazardConfig {
    /// Lock cancellation: the longest pause between two open-and-close of the file, in
    /// microseconds (each pause is uniform in 0..=this).
    pub lock_cancel_interval_us_max: u64,
    /// Lock cancellation in WAL mode: the trial's transient writers are *lone closers*, CLI- or
    /// cron-like processes started one at a time, one every this many milliseconds (each
    /// closes before the next starts, as the last connection it believes it is). 0: the
    /// `[topology]` transients instead.
    pub lock_cancel_closer_interval_ms: u64,
    /// Lock cancellation in WAL mode: how long a trial runs before every process still alive
    /// is killed, in milliseconds (in place of `[fault.kill]`'s moment), so that several lone
    /// closers finish.
    pub lock_cancel_trial_ms: u64,
    /// Lock cancellation in WAL mode: the share of long-lived writers, in percent, that stop
    /// at three quarters of the trial and close cleanly (a cancelling process's own last close).
    pub lock_cancel_clean_close_percent: u32,
    /// Cross-version: the other SQLite build that checks each image beside the bundled one:
    /// `system` (the OS's `libsqlite3.so.0`), a version crashfuzz builds itself (`3.41.2`, see
    /// `crashfuzz sqlite list`), or a path to a `libsqlite3.so`.
    pub other_sqlite: SqliteBuild,
    /// Raw-copy backup: the size of each plain read, in bytes.
    pub backup_chunk_bytes: u32,
}

impl Default for HazardConfig {
    fn default() -> Self {
        HazardConfig {
            lock_cancel_interval_us_max: 2000,
            lock_cancel_closer_interval_ms: 100,
            lock_cancel_trial_ms: 2000,
            lock_cancel_clean_close_percent: 50,
            other_sqlite: SqliteBuild::System,
            backup_chunk_bytes: 65536,
        }
    }
}

/// `[fault.io_error]`: which write or sync the tracing VFS fails, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IoErrorConfig {
    /// `ioerr` (SQLITE_IOERR_WRITE / _FSYNC / _TRUNCATE) or `full` (SQLITE_FULL).
    pub error: IoErrorKind,
    /// Fail every operation from the chosen one on, not only that one.
    pub persistent: bool,
    /// The failing operation is uniform in `1..=op_max` (writes, syncs and truncates).
    pub op_max: u64,
    /// After the writer reports the error, it is SIGKILLed within this many milliseconds.
    pub kill_after_ms_max: u64,
}

impl Default for IoErrorConfig {
    fn default() -> Self {
        IoErrorConfig { error: IoErrorKind::Ioerr, persistent: false, op_max: 300, kill_after_ms_max: 20 }
    }
}

/// How much work a campaign does; exactly one of the two is set after validation and
/// command-line overrides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Budget {
    Trials(u64),
    DurationS(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseMode {
    /// Every trial starts from a copy of the cell's freshly seeded template.
    Fresh,
    /// A database is kept across the trials of a cell (per job), growing like a long-lived
    /// file; it is replaced by a fresh copy after a trial that found a violation. Only on the
    /// bundled build: the oracle's recovery write stays in a continued database, and on a cell
    /// whose writers run on another build it would mix two builds' FTS5 indexes in one file.
    Continue,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub mode: DatabaseMode,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { mode: DatabaseMode::Fresh }
    }
}

/// `[fault.kill]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KillConfig {
    /// Earliest first signal after the writer is ready, in milliseconds (timing `uniform`).
    pub kill_at_ms_min: u64,
    /// Latest first signal after the writer is ready, in milliseconds (timing `uniform`).
    pub kill_at_ms_max: u64,
    /// Latest first signal after the writer announces a bulk transaction, in microseconds
    /// (timing `bulk`).
    pub bulk_delay_us_max: u64,
    /// Time between SIGTERM and SIGKILL, in milliseconds.
    pub grace_ms: u64,
    /// The checkpoint a `graceful` writer runs before it closes (WAL only).
    pub graceful_checkpoint: CheckpointMode,
    /// How long a writer may take to open the database and report ready, in milliseconds.
    pub ready_timeout_ms: u64,
}

impl Default for KillConfig {
    fn default() -> Self {
        KillConfig {
            kill_at_ms_min: 0,
            kill_at_ms_max: 50,
            bulk_delay_us_max: 2000,
            grace_ms: 1500,
            graceful_checkpoint: CheckpointMode::Truncate,
            ready_timeout_ms: 10_000,
        }
    }
}

/// `[check]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckSettings {
    pub integrity: IntegrityLevel,
    /// Rows sampled per FTS table for MATCH queries, per crash image.
    pub fts_samples: u32,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings { integrity: IntegrityLevel::Full, fts_samples: 4 }
    }
}

/// `[output]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Failing trials whose crash image is kept under `failures/`, per cell.
    pub failures_kept_per_cell: u32,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { failures_kept_per_cell: 5 }
    }
}

/// The budget of a scenario whose `[budget]` sets neither `trials` nor `duration_s`.
pub const DEFAULT_TRIALS: u64 = 100;
/// Upper bound on `workload.writers`. Writers of a trial share one database file, so beyond a
/// handful they mostly measure lock contention; the bound also keeps every writer id inside its
/// trial's block of ids (see the assertions below).
pub const WRITERS_PER_TRIAL_MAX: u32 = 8;
/// Upper bound on `fault.kill.grace_ms` (10 minutes): a longer grace is a typo, and every trial
/// of a cell whose writer ignores SIGTERM would wait that long.
pub const GRACE_MS_MAX: u64 = 600_000;
/// Upper bound on `check.fts_samples`: each sample is one MATCH query per FTS table per crash
/// image, and checks must stay a small part of a trial.
pub const FTS_SAMPLES_MAX: u32 = 1000;
/// The page sizes SQLite accepts: powers of two in this range.
pub const PAGE_SIZE_BYTES_MIN: u32 = 512;
pub const PAGE_SIZE_BYTES_MAX: u32 = 65_536;

// Writer ids are `(trial + 1) * WRITER_ID_STRIDE + w`, the last id of each block being the
// recovery writer's, and a trial spawns at most `WRITERS_MAX` writers: the scenario's bound must
// fit inside both, or two writers could share an id.
const _: () = assert!((WRITERS_PER_TRIAL_MAX as u64) < crate::run::ids::WRITERS_MAX);
const _: () = assert!((WRITERS_PER_TRIAL_MAX as u64) < crate::run::ids::WRITER_ID_STRIDE - 1);

impl Scenario {
    pub fn cells(&self) -> Vec<crate::scenario::matrix::Cell> {
        crate::scenario::matrix::expand(&self.matrix)
    }
}

// ------------------------------------------------------------------------------------------
// Entry points

/// The scenarios compiled into the binary, as (name, TOML text).
pub fn embedded() -> &'static [(&'static str, &'static str)] {
    &[
        ("default", DEFAULT_SCENARIO_TOML),
        ("power-loss", include_str!("../../scenarios/power-loss.toml")),
        ("crash-points", include_str!("../../scenarios/crash-points.toml")),
        ("io-errors", include_str!("../../scenarios/io-errors.toml")),
        ("gateway", include_str!("../../scenarios/gateway.toml")),
        ("hazards", include_str!("../../scenarios/hazards.toml")),
        ("durability-kill", include_str!("../../scenarios/durability-kill.toml")),
        ("durability-power-loss", include_str!("../../scenarios/durability-power-loss.toml")),
        ("ci-gate", include_str!("../../scenarios/ci-gate.toml")),
    ]
}

/// The embedded default scenario. It is parsed like any file; a failure here is a harness bug
/// (the unit tests parse it), hence the panic.
pub fn default_scenario() -> Scenario {
    match parse(DEFAULT_SCENARIO_TOML, "embedded:default") {
        Ok(scenario) => scenario,
        Err(e) => panic!("the embedded default scenario is invalid (a harness bug): {e}"),
    }
}

/// `arg` as the command line gives it: the name of an embedded scenario, else a path to a file.
pub fn resolve(arg: &str) -> Result<Scenario> {
    if let Some((name, text)) = embedded().iter().find(|(name, _)| *name == arg) {
        return parse(text, &format!("embedded:{name}"));
    }
    load(Path::new(arg)).map_err(|e| match e {
        // A missing file may be a mistyped embedded name: say which names exist.
        Error::BadPath { path, what, source } if source.kind() == std::io::ErrorKind::NotFound => {
            let names: Vec<&str> = embedded().iter().map(|(name, _)| *name).collect();
            let what = format!("{what} (not an embedded scenario either; embedded: {})", names.join(", "));
            Error::BadPath { path, what, source }
        }
        other => other,
    })
}

/// Reads and parses a scenario file. A file that cannot be read is a [`Error::BadPath`]; one that
/// is not UTF-8 is a [`Error::Scenario`] at the line of the first bad byte.
pub fn load(path: &Path) -> Result<Scenario> {
    let bytes = std::fs::read(path).map_err(|source| Error::BadPath {
        path: path.to_path_buf(),
        what: "cannot read the scenario file".into(),
        source,
    })?;
    let source = path.display().to_string();
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, &source),
        Err(e) => {
            let valid_bytes = e.utf8_error().valid_up_to();
            Err(Error::Scenario {
                file: source,
                line: Some(line_at(e.as_bytes(), valid_bytes)),
                setting: SYNTAX.into(),
                message: format!("byte {valid_bytes} is not UTF-8; a scenario is UTF-8 text"),
            })
        }
    }
}

/// Parses and validates a scenario. `source` is the file path or `embedded:NAME`: it names the
/// file in errors, and its stem is the scenario's name when the file sets none.
pub fn parse(text: &str, source: &str) -> Result<Scenario> {
    let doc = Doc::parse(text, source)?;
    let raw = doc.deserialize()?;
    validate(raw, source).map_err(|problems| doc.report(problems))
}

// ------------------------------------------------------------------------------------------
// The file as written: raw structs with every default made explicit

/// The whole file. Sections whose struct is used as is (`[workload]`, `[fault.kill]`, ...) carry
/// their own `deny_unknown_fields` and `default`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    budget: RawBudget,
    #[serde(default)]
    database: DatabaseConfig,
    #[serde(default)]
    workload: WorkloadConfig,
    #[serde(default)]
    fault: RawFault,
    #[serde(default)]
    topology: TopologyConfig,
    #[serde(default)]
    load: LoadConfig,
    #[serde(default)]
    hazard: HazardConfig,
    #[serde(default)]
    check: CheckSettings,
    #[serde(default)]
    output: OutputConfig,
    #[serde(default)]
    matrix: Vec<RawMatrixBlock>,
    #[serde(default)]
    expect: Vec<ExpectOverride>,
    writer: Option<app::RawWriter>,
    oracle: Option<app::RawOracle>,
}

/// `[budget]`: both keys optional so that "both set" can be told from "one set".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    trials: Option<u64>,
    duration_s: Option<u64>,
}

/// `[fault]`: one table per fault model's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    #[serde(default)]
    kill: KillConfig,
    #[serde(default)]
    power_loss: PowerLossConfig,
    #[serde(default)]
    crash_point: CrashPointConfig,
    #[serde(default)]
    io_error: IoErrorConfig,
}

/// `[[matrix]]` as written: an absent axis is `None` (defaulted, or an error for the two
/// required axes), which keeps "absent" apart from an explicit empty list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrixBlock {
    journal_mode: Option<Vec<JournalMode>>,
    synchronous: Option<Vec<Synchronous>>,
    fault: Option<Vec<FaultKind>>,
    sigterm: Option<Vec<SigtermBehaviour>>,
    checkpoint: Option<Vec<CheckpointPolicy>>,
    timing: Option<Vec<KillTiming>>,
    device: Option<Vec<DeviceModel>>,
    fullfsync: Option<Vec<FullFsync>>,
    sqlite: Option<Vec<SqliteName>>,
}

/// The value of an axis a `[[matrix]]` block leaves out. Journal mode and synchronous have none:
/// they are what a cell is about, so a block must say which it means.
const DEFAULT_FAULT: &[FaultKind] = &[FaultKind::Kill];
const DEFAULT_SIGTERM: &[SigtermBehaviour] = &[SigtermBehaviour::Default];
const DEFAULT_CHECKPOINT: &[CheckpointPolicy] = &[CheckpointPolicy::Auto];
const DEFAULT_TIMING: &[KillTiming] = &[KillTiming::Uniform];
const DEFAULT_DEVICE: &[DeviceModel] = &[DeviceModel::Barrier];
const DEFAULT_FULLFSYNC: &[FullFsync] = &[FullFsync::Off];
const LEVELS: [Level; 3] = [Level::Forbidden, Level::Allowed, Level::Required];

fn level_name(v: Level) -> &'static str {
    match v {
        Level::Forbidden | Level::Allowed | Level::Required => v.as_str(),
    }
}

// ------------------------------------------------------------------------------------------
// Setting paths and problems

/// The `setting` of errors that are about the file's syntax rather than one setting.
const SYNTAX: &str = "TOML syntax";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    /// 0-based index into an array (of `[[blocks]]` or of values); shown 1-based.
    Index(usize),
}

/// Where a setting lives, e.g. `fault.kill.grace_ms` or `matrix[2].journal_mode`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SettingPath(Vec<Segment>);

impl SettingPath {
    fn key(key: &str) -> SettingPath {
        SettingPath(vec![Segment::Key(key.to_string())])
    }

    fn then(mut self, key: &str) -> SettingPath {
        self.0.push(Segment::Key(key.to_string()));
        self
    }

    fn nth(mut self, index: usize) -> SettingPath {
        self.0.push(Segment::Index(index));
        self
    }
}

impl fmt::Display for SettingPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if n == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{}]", index + 1)?,
            }
        }
        Ok(())
    }
}

/// A value that validation rejects, before it is located in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Problem {
    /// The settings the problem is about, most specific first. The error names the first one
    /// the file writes out: a relation such as `kill_at_ms_min ≤ kill_at_ms_max` is reported at
    /// whichever of the two keys the user wrote, not at a default they never saw.
    at: Vec<SettingPath>,
    message: String,
}

impl Problem {
    fn new(at: SettingPath, message: String) -> Problem {
        Problem { at: vec![at], message }
    }

    fn or_at(mut self, at: SettingPath) -> Problem {
        self.at.push(at);
        self
    }
}

/// The allowed range of an integer setting.
#[derive(Clone, Copy, Debug)]
enum Allowed {
    AtLeast(u64),
    AtMost(u64),
    Between(u64, u64),
}

impl Allowed {
    fn admits(self, value: u64) -> bool {
        match self {
            Allowed::AtLeast(min) => value >= min,
            Allowed::AtMost(max) => value <= max,
            Allowed::Between(min, max) => (min..=max).contains(&value),
        }
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::AtLeast(min) => write!(f, "≥ {min}"),
            Allowed::AtMost(max) => write!(f, "≤ {max}"),
            Allowed::Between(min, max) => write!(f, "{min}..={max}"),
        }
    }
}

fn in_range(at: SettingPath, value: impl Into<u64>, allowed: Allowed) -> Option<Problem> {
    let value = value.into();
    (!allowed.admits(value)).then(|| Problem::new(at, format!("{value} is out of range; allowed: {allowed}")))
}

/// `lhs ≤ rhs` between two settings of one table, reported at whichever the file writes.
fn not_above(table: &SettingPath, lhs: (&str, u64), rhs: (&str, u64)) -> Option<Problem> {
    let ((lhs_key, lhs_value), (rhs_key, rhs_value)) = (lhs, rhs);
    (lhs_value > rhs_value).then(|| {
        Problem::new(
            table.clone().then(lhs_key),
            format!("{lhs_key} = {lhs_value} is greater than {rhs_key} = {rhs_value}; allowed: {lhs_key} ≤ {rhs_key}"),
        )
        .or_at(table.clone().then(rhs_key))
    })
}

// ------------------------------------------------------------------------------------------
// Validation: pure functions from raw values to problems

/// The whole scenario, or every problem found (at least one).
fn validate(raw: RawScenario, source: &str) -> std::result::Result<Scenario, Vec<Problem>> {
    let budget = budget(&raw.budget);
    let mut matrix = matrix_blocks(&raw.matrix);
    let dir = (!source.starts_with("embedded:")).then(|| Path::new(source).parent().unwrap_or(Path::new(".")));
    let (app, mut problems) = app::validate(
        raw.writer.as_ref(),
        raw.oracle.as_ref(),
        &raw.matrix,
        raw.topology.connections,
        raw.fault.crash_point.points,
        dir,
    );
    if let (Some(_), Ok(blocks)) = (&app, &mut matrix) {
        // An application's writer runs on its own SQLite unless a block names a build.
        for (block, raw) in blocks.iter_mut().zip(&raw.matrix) {
            if raw.sqlite.is_none() {
                block.sqlite = vec![SqliteName::of(&SqliteBuild::System)];
            }
        }
    }
    problems.extend(kill_problems(&raw.fault.kill));
    problems.extend(fault_model_problems(&raw.fault));
    problems.extend(topology_problems(&raw.topology));
    problems.extend(load_problems(&raw.load));
    problems.extend(hazard_problems(&raw.hazard));
    problems.extend(workload_problems(&raw.workload));
    problems.extend(check_problems(&raw.check));
    problems.extend(expect_level_problems(&raw.expect));
    if let Ok(blocks) = &matrix {
        problems.extend(expect_match_problems(&raw.expect, &matrix::expand(blocks)));
    }
    match (budget, matrix) {
        (Ok(budget), Ok(matrix)) if problems.is_empty() => Ok(Scenario {
            name: raw.name.unwrap_or_else(|| default_name(source)),
            description: raw.description,
            source: source.to_string(),
            budget,
            database: raw.database,
            workload: raw.workload,
            kill: raw.fault.kill,
            power_loss: raw.fault.power_loss,
            crash_point: raw.fault.crash_point,
            io_error: raw.fault.io_error,
            topology: raw.topology,
            load: raw.load,
            hazard: raw.hazard,
            check: raw.check,
            output: raw.output,
            matrix,
            expect: raw.expect,
            app,
        }),
        // Non-empty: either the guard failed, or one of the two is an error (and a matrix error
        // always holds at least one problem).
        (budget, matrix) => {
            problems.extend(budget.err());
            problems.extend(matrix.err().into_iter().flatten());
            Err(problems)
        }
    }
}

/// The name of a scenario that sets none: the file stem, or the embedded name.
fn default_name(source: &str) -> String {
    if let Some(name) = source.strip_prefix("embedded:") {
        return name.to_string();
    }
    match Path::new(source).file_stem() {
        Some(stem) => stem.to_string_lossy().into_owned(),
        None => source.to_string(),
    }
}

fn budget(raw: &RawBudget) -> std::result::Result<Budget, Problem> {
    let at = |key: &str| SettingPath::key("budget").then(key);
    let at_least_one = |key: &str, value: u64| in_range(at(key), value, Allowed::AtLeast(1));
    match (raw.trials, raw.duration_s) {
        (Some(trials), Some(duration_s)) => Err(Problem::new(
            at("duration_s"),
            format!("trials = {trials} and duration_s = {duration_s} are both set; allowed: exactly one of them"),
        )
        .or_at(at("trials"))),
        (Some(trials), None) => match at_least_one("trials", trials) {
            Some(problem) => Err(problem),
            None => Ok(Budget::Trials(trials)),
        },
        (None, Some(duration_s)) => match at_least_one("duration_s", duration_s) {
            Some(problem) => Err(problem),
            None => Ok(Budget::DurationS(duration_s)),
        },
        (None, None) => Ok(Budget::Trials(DEFAULT_TRIALS)),
    }
}

fn fault_model_problems(fault: &RawFault) -> Vec<Problem> {
    let at = |table: &str, key: &str| SettingPath::key("fault").then(table).then(key);
    let p = &fault.power_loss;
    let sector =
        (!(p.sector_size_bytes.is_power_of_two() && (512..=65536).contains(&p.sector_size_bytes))).then(|| {
            Problem::new(
                at("power_loss", "sector_size_bytes"),
                format!("{} is not a sector size; allowed: a power of two in 512..=65536", p.sector_size_bytes),
            )
        });
    [
        in_range(at("power_loss", "images_per_trace"), p.images_per_trace, Allowed::Between(1, 10_000)),
        in_range(at("power_loss", "walk_cuts"), p.walk_cuts, Allowed::Between(1, 10_000)),
        sector,
        in_range(at("power_loss", "torn_percent"), p.torn_percent, Allowed::AtMost(100)),
        in_range(at("power_loss", "explain_tests_max"), p.explain_tests_max, Allowed::AtMost(100_000)),
        in_range(at("crash_point", "txns"), fault.crash_point.txns, Allowed::Between(1, 10_000)),
        in_range(at("crash_point", "op_max"), fault.crash_point.op_max, Allowed::AtLeast(1)),
        in_range(at("io_error", "op_max"), fault.io_error.op_max, Allowed::AtLeast(1)),
        in_range(at("io_error", "kill_after_ms_max"), fault.io_error.kill_after_ms_max, Allowed::AtMost(600_000)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn topology_problems(t: &TopologyConfig) -> Vec<Problem> {
    let at = |key: &str| SettingPath::key("topology").then(key);
    let rate = (!(t.transient_rate_per_s.is_finite() && (0.0..=1000.0).contains(&t.transient_rate_per_s))).then(|| {
        Problem::new(
            at("transient_rate_per_s"),
            format!("{} is out of range; allowed: 0 to 1000 processes per second", t.transient_rate_per_s),
        )
    });
    [
        in_range(at("connections"), t.connections, Allowed::Between(1, 16)),
        rate,
        in_range(at("transient_concurrency_max"), t.transient_concurrency_max, Allowed::Between(1, 64)),
        in_range(at("transient_txns"), t.transient_txns, Allowed::Between(1, 100_000)),
        in_range(at("survive_ms"), t.survive_ms, Allowed::AtMost(600_000)),
        in_range(at("checkpoint_timer_ms"), t.checkpoint_timer_ms, Allowed::Between(1, 3_600_000)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn load_problems(l: &LoadConfig) -> Vec<Problem> {
    let at = |key: &str| SettingPath::key("load").then(key);
    let target = (!(l.target_loadavg.is_finite() && (0.0..=1000.0).contains(&l.target_loadavg))).then(|| {
        Problem::new(at("target_loadavg"), format!("{} is out of range; allowed: 0 (off) to 1000", l.target_loadavg))
    });
    let nice = (!(-20..=19).contains(&l.nice))
        .then(|| Problem::new(at("nice"), format!("{} is out of range; allowed: -20..=19", l.nice)));
    [
        target,
        nice,
        in_range(at("burners_max"), l.burners_max, Allowed::Between(1, 1024)),
        in_range(at("warmup_timeout_s"), l.warmup_timeout_s, Allowed::AtMost(3600)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn hazard_problems(h: &HazardConfig) -> Vec<Problem> {
    let at = |key: &str| SettingPath::key("hazard").then(key);
    // `other_sqlite` is checked as it is read: a build that cannot be named never gets here.
    [
        in_range(at("lock_cancel_interval_us_max"), h.lock_cancel_interval_us_max, Allowed::Between(1, 10_000_000)),
        in_range(at("lock_cancel_closer_interval_ms"), h.lock_cancel_closer_interval_ms, Allowed::Between(0, 60_000)),
        in_range(at("lock_cancel_trial_ms"), h.lock_cancel_trial_ms, Allowed::Between(100, 600_000)),
        in_range(at("lock_cancel_clean_close_percent"), h.lock_cancel_clean_close_percent, Allowed::Between(0, 100)),
        in_range(at("backup_chunk_bytes"), h.backup_chunk_bytes, Allowed::Between(512, 64 << 20)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn kill_problems(kill: &KillConfig) -> Vec<Problem> {
    let table = SettingPath::key("fault").then("kill");
    let at = |key: &str| table.clone().then(key);
    [
        not_above(&table, ("kill_at_ms_min", kill.kill_at_ms_min), ("kill_at_ms_max", kill.kill_at_ms_max)),
        in_range(at("grace_ms"), kill.grace_ms, Allowed::AtMost(GRACE_MS_MAX)),
        in_range(at("ready_timeout_ms"), kill.ready_timeout_ms, Allowed::AtLeast(1)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn workload_problems(w: &WorkloadConfig) -> Vec<Problem> {
    let table = SettingPath::key("workload");
    let at = |key: &str| table.clone().then(key);
    let page_size = (!(w.page_size_bytes.is_power_of_two()
        && (PAGE_SIZE_BYTES_MIN..=PAGE_SIZE_BYTES_MAX).contains(&w.page_size_bytes)))
    .then(|| {
        Problem::new(
            at("page_size_bytes"),
            format!(
                "{} is not a page size SQLite accepts; allowed: a power of two in \
                 {PAGE_SIZE_BYTES_MIN}..={PAGE_SIZE_BYTES_MAX}",
                w.page_size_bytes
            ),
        )
    });
    let percent = |key: &str, value: u32| in_range(at(key), value, Allowed::AtMost(100));
    [
        page_size,
        in_range(at("cache_size_kib"), w.cache_size_kib, Allowed::AtLeast(1)),
        in_range(at("seed_sessions"), w.seed_sessions, Allowed::AtLeast(1)),
        in_range(at("message_bytes_min"), w.message_bytes_min, Allowed::AtLeast(1)),
        not_above(
            &table,
            ("message_bytes_min", w.message_bytes_min.into()),
            ("message_bytes_max", w.message_bytes_max.into()),
        ),
        // The huge message is the rare outlier above the ordinary sizes, not inside them.
        not_above(
            &table,
            ("message_bytes_max", w.message_bytes_max.into()),
            ("huge_message_bytes", w.huge_message_bytes.into()),
        )
        .map(|p| Problem { at: p.at.into_iter().rev().collect(), ..p }),
        in_range(at("huge_message_per_mille"), w.huge_message_per_mille, Allowed::AtMost(1000)),
        percent("json_sentinel_percent", w.json_sentinel_percent),
        percent("compress_percent", w.compress_percent),
        percent("new_session_percent", w.new_session_percent),
        percent("edit_percent", w.edit_percent),
        // One roll of 0..100 picks a transaction's kind: the special kinds share that range.
        // (Checked only when each is in range, so one bad value is reported once.)
        (w.new_session_percent.max(w.compress_percent).max(w.edit_percent) <= 100
            && w.new_session_percent + w.compress_percent + w.edit_percent > 100)
            .then(|| {
            Problem::new(
                at("edit_percent"),
                format!(
                    "new_session_percent + compress_percent + edit_percent = {} + {} + {} = {}; allowed: a sum ≤ 100",
                    w.new_session_percent,
                    w.compress_percent,
                    w.edit_percent,
                    w.new_session_percent + w.compress_percent + w.edit_percent
                ),
            )
        }),
        in_range(at("writers"), w.writers, Allowed::Between(1, WRITERS_PER_TRIAL_MAX.into())),
        in_range(at("txns_max"), w.txns_max, Allowed::AtLeast(1)),
        // A writer that may not live a millisecond never writes: every trial would be empty.
        in_range(at("writer_lifetime_ms_max"), w.writer_lifetime_ms_max, Allowed::AtLeast(1)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn check_problems(check: &CheckSettings) -> Vec<Problem> {
    in_range(SettingPath::key("check").then("fts_samples"), check.fts_samples, Allowed::AtMost(FTS_SAMPLES_MAX.into()))
        .into_iter()
        .collect()
}

fn names<T: Copy>(values: &[T], name: fn(T) -> &'static str) -> String {
    values.iter().map(|&v| name(v)).collect::<Vec<_>>().join(", ")
}

/// One axis of a `[[matrix]]` block: as written, else its default; `None` and no default means
/// the axis is required.
fn axis<T: Copy>(
    at: SettingPath,
    written: Option<&Vec<T>>,
    default: Option<&[T]>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> std::result::Result<Vec<T>, Problem> {
    match (written, default) {
        (Some(values), _) if values.is_empty() => Err(Problem::new(
            at,
            format!("[] leaves the block without cells; allowed: a list of at least one of {}", names(all, name)),
        )),
        (Some(values), _) => Ok(values.clone()),
        (None, Some(default)) => Ok(default.to_vec()),
        (None, None) => Err(Problem::new(
            at,
            format!("missing; this axis has no default. Allowed: a list of at least one of {}", names(all, name)),
        )),
    }
}

/// The blocks with defaults filled in, or every problem (at least one).
fn matrix_blocks(raw: &[RawMatrixBlock]) -> std::result::Result<Vec<MatrixBlock>, Vec<Problem>> {
    if raw.is_empty() {
        return Err(vec![Problem::new(
            SettingPath::key("matrix"),
            "no [[matrix]] block; a scenario needs at least one, with journal_mode and synchronous lists".into(),
        )]);
    }
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    for (index, block) in raw.iter().enumerate() {
        let at = |key: &str| SettingPath::key("matrix").nth(index).then(key);
        let journal_mode =
            axis(at("journal_mode"), block.journal_mode.as_ref(), None, &JournalMode::ALL, JournalMode::as_sql);
        let synchronous =
            axis(at("synchronous"), block.synchronous.as_ref(), None, &Synchronous::ALL, Synchronous::as_sql);
        let fault = axis(at("fault"), block.fault.as_ref(), Some(DEFAULT_FAULT), FaultKind::ALL, FaultKind::as_str);
        let sigterm =
            axis(at("sigterm"), block.sigterm.as_ref(), Some(DEFAULT_SIGTERM), &SigtermBehaviour::ALL, |v| v.as_str());
        let checkpoint = axis(
            at("checkpoint"),
            block.checkpoint.as_ref(),
            Some(DEFAULT_CHECKPOINT),
            &CheckpointPolicy::ALL,
            CheckpointPolicy::as_str,
        );
        let timing =
            axis(at("timing"), block.timing.as_ref(), Some(DEFAULT_TIMING), &KillTiming::ALL, KillTiming::as_str);
        let device =
            axis(at("device"), block.device.as_ref(), Some(DEFAULT_DEVICE), &DeviceModel::ALL, DeviceModel::as_str);
        let fullfsync = axis(
            at("fullfsync"),
            block.fullfsync.as_ref(),
            Some(DEFAULT_FULLFSYNC),
            &FullFsync::ALL,
            FullFsync::as_str,
        );
        let sqlite = match &block.sqlite {
            None => Ok(vec![SqliteName::BUNDLED]),
            Some(names) if names.is_empty() => Err(Problem::new(
                at("sqlite"),
                "[] leaves the block without cells; allowed: a list of at least one SQLite build: \"bundled\", \
                 \"system\", a version (`crashfuzz sqlite list`) or a path to a libsqlite3.so"
                    .into(),
            )),
            Some(names) => Ok(names.clone()),
        };
        match (journal_mode, synchronous, fault, sigterm, checkpoint, timing, device, fullfsync, sqlite) {
            (
                Ok(journal_mode),
                Ok(synchronous),
                Ok(fault),
                Ok(sigterm),
                Ok(checkpoint),
                Ok(timing),
                Ok(device),
                Ok(fullfsync),
                Ok(sqlite),
            ) => blocks.push(MatrixBlock {
                journal_mode,
                synchronous,
                fault,
                sigterm,
                checkpoint,
                timing,
                device,
                fullfsync,
                sqlite,
            }),
            (journal_mode, synchronous, fault, sigterm, checkpoint, timing, device, fullfsync, sqlite) => problems
                .extend(
                    [
                        journal_mode.err(),
                        synchronous.err(),
                        fault.err(),
                        sigterm.err(),
                        checkpoint.err(),
                        timing.err(),
                        device.err(),
                        fullfsync.err(),
                        sqlite.err(),
                    ]
                    .into_iter()
                    .flatten(),
                ),
        }
    }
    if problems.is_empty() { Ok(blocks) } else { Err(problems) }
}

/// An `[[expect]]` block that sets no level changes nothing: surely a mistake.
fn expect_level_problems(overrides: &[ExpectOverride]) -> Vec<Problem> {
    let kinds: Vec<&str> = ViolationKind::ALL.iter().map(|k| k.as_str()).collect();
    overrides
        .iter()
        .enumerate()
        .filter(|(_, o)| o.levels().is_empty())
        .map(|(index, _)| {
            Problem::new(
                SettingPath::key("expect").nth(index),
                format!(
                    "the block sets no level; allowed: at least one of {} = {}",
                    kinds.join(", "),
                    names(&LEVELS, level_name).replace(", ", " | ")
                ),
            )
        })
        .collect()
}

/// The selectors of an override as written, e.g. `journal_mode = "wal", timing = "bulk"`.
fn selectors(o: &ExpectOverride) -> Vec<String> {
    let quoted = |key: &str, value: Option<&str>| value.map(|v| format!("{key} = \"{v}\""));
    [
        quoted("journal_mode", o.journal_mode.map(JournalMode::as_sql)),
        quoted("synchronous", o.synchronous.map(Synchronous::as_sql)),
        quoted("fault", o.fault.map(FaultKind::as_str)),
        quoted("sigterm", o.sigterm.map(|v| v.as_str())),
        quoted("checkpoint", o.checkpoint.map(CheckpointPolicy::as_str)),
        quoted("timing", o.timing.map(KillTiming::as_str)),
        quoted("device", o.device.map(DeviceModel::as_str)),
        quoted("fullfsync", o.fullfsync.map(FullFsync::as_str)),
        quoted("sqlite", o.sqlite.map(SqliteName::as_str)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// An `[[expect]]` block that matches no cell would silently do nothing (a typo, or a cell the
/// matrix does not have): an error, naming its selectors and the cells there are.
fn expect_match_problems(overrides: &[ExpectOverride], cells: &[Cell]) -> Vec<Problem> {
    const CELLS_LISTED_MAX: usize = 12;
    let mut listed: Vec<String> = cells.iter().take(CELLS_LISTED_MAX).map(Cell::id).collect();
    if cells.len() > CELLS_LISTED_MAX {
        listed.push(format!("… ({} cells in all)", cells.len()));
    }
    overrides
        .iter()
        .enumerate()
        .filter(|(_, o)| !cells.iter().any(|cell| o.matches(cell)))
        .map(|(index, o)| {
            // The two axes that are normalised away are the usual reason for a miss.
            let mut hints = String::new();
            if o.checkpoint.is_some() {
                hints.push_str(" (checkpoint only selects WAL cells)");
            }
            if o.sigterm.is_some() {
                hints.push_str(" (sigterm only selects cells whose fault sends SIGTERM: kill)");
            }
            Problem::new(
                SettingPath::key("expect").nth(index),
                format!(
                    "selectors {} match no cell of the matrix{hints}; allowed: selectors matching one of {}",
                    selectors(o).join(", "),
                    listed.join(", ")
                ),
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Locating errors in the file

/// The parsed file, kept to map byte offsets and setting paths to lines.
struct Doc<'a> {
    text: &'a str,
    source: &'a str,
    root: Spanned<DeTable<'a>>,
}

impl<'a> Doc<'a> {
    /// Step 1: syntax.
    fn parse(text: &'a str, source: &'a str) -> Result<Doc<'a>> {
        match DeTable::parse(text) {
            Ok(root) => Ok(Doc { text, source, root }),
            Err(e) => {
                // Show the offending text when the parser points at some (a duplicate key, an
                // unexpected character), as long as it is short and on one line.
                let snippet = e
                    .span()
                    .and_then(|span| text.get(span))
                    .filter(|s| !s.is_empty() && s.chars().count() <= 40 && !s.contains('\n'))
                    .map(|s| format!(" (at `{s}`)"))
                    .unwrap_or_default();
                Err(Error::Scenario {
                    file: source.to_string(),
                    line: e.span().map(|span| line_at(text.as_bytes(), span.start)),
                    setting: SYNTAX.into(),
                    message: format!("{}{snippet}", e.message()),
                })
            }
        }
    }

    /// Step 2: types, enum values and unknown keys, located by the span serde reports.
    fn deserialize(&self) -> Result<RawScenario> {
        let deserializer = toml::de::Deserializer::from(self.root.clone());
        RawScenario::deserialize(deserializer).map_err(|e| {
            let setting = e.span().map(|span| path_at(self.root.get_ref(), span.start)).unwrap_or_default();
            let written = e.span().and_then(|span| self.text.get(span));
            Error::Scenario {
                file: self.source.to_string(),
                line: e.span().map(|span| line_at(self.text.as_bytes(), span.start)),
                setting: setting.to_string(),
                message: humanize(e.message(), written),
            }
        })
    }

    /// Step 3's problems as one error: the one that comes first in the file (a problem that
    /// cannot be located comes last).
    fn report(&self, problems: Vec<Problem>) -> Error {
        let located = problems.into_iter().map(|problem| {
            let (setting, span) = self.choose(&problem.at);
            let line = span.map(|span| line_at(self.text.as_bytes(), span.start));
            (line, setting, problem.message)
        });
        match located.min_by_key(|(line, _, _)| line.unwrap_or(usize::MAX)) {
            Some((line, setting, message)) => {
                Error::Scenario { file: self.source.to_string(), line, setting: setting.to_string(), message }
            }
            // `validate` never fails without a problem; this arm only keeps `parse` panic-free.
            None => Error::Scenario {
                file: self.source.to_string(),
                line: None,
                setting: SettingPath::default().to_string(),
                message: "rejected without a reason (a harness bug; please report it)".into(),
            },
        }
    }

    /// The first candidate the file writes out, else the first candidate located at the table
    /// or block header that would hold it.
    fn choose(&self, candidates: &[SettingPath]) -> (SettingPath, Option<Range<usize>>) {
        let root = self.root.get_ref();
        if let Some(found) = candidates.iter().find_map(|path| match locate(root, path) {
            Some((span, true)) => Some((path.clone(), Some(span))),
            Some((_, false)) | None => None,
        }) {
            return found;
        }
        match candidates.first() {
            Some(path) => (path.clone(), locate(root, path).map(|(span, _)| span)),
            None => (SettingPath::default(), None),
        }
    }
}

/// 1-based line of byte `offset` (clamped to the text).
fn line_at(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The span of the deepest part of `path` the file writes out (the key itself, else the key or
/// `[[block]]` header that would hold it), and whether that is the whole path.
fn locate(root: &DeTable<'_>, path: &SettingPath) -> Option<(Range<usize>, bool)> {
    let mut found: Option<Range<usize>> = None;
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for segment in &path.0 {
        let next = match (segment, value.map(Spanned::get_ref)) {
            (Segment::Key(key), None) => root.get_key_value(key.as_str()).map(|(k, v)| (k.span(), v)),
            (Segment::Key(key), Some(DeValue::Table(table))) => {
                table.get_key_value(key.as_str()).map(|(k, v)| (k.span(), v))
            }
            (Segment::Index(index), Some(DeValue::Array(array))) => array.get(*index).map(|v| (v.span(), v)),
            (Segment::Key(_) | Segment::Index(_), _) => None,
        };
        match next {
            Some((span, v)) => {
                found = Some(span);
                value = Some(v);
            }
            None => return found.map(|span| (span, false)),
        }
    }
    found.map(|span| (span, true))
}

/// The setting at byte `offset`: the deepest key whose key or value holds it. Tables written as
/// `[headers]` are searched whatever their own span, which covers only the header.
fn path_at(table: &DeTable<'_>, offset: usize) -> SettingPath {
    path_in(table, offset, &SettingPath::default()).unwrap_or_default()
}

fn path_in(table: &DeTable<'_>, offset: usize, prefix: &SettingPath) -> Option<SettingPath> {
    let holds = |span: Range<usize>| span.contains(&offset);
    for (key, value) in table.iter() {
        let here = prefix.clone().then(key.get_ref());
        if holds(key.span()) {
            return Some(here);
        }
        match value.get_ref() {
            DeValue::Table(inner) => {
                if let Some(found) = path_in(inner, offset, &here) {
                    return Some(found);
                }
            }
            DeValue::Array(array) => {
                for (index, element) in array.iter().enumerate() {
                    // A `[[block]]` is searched like a table; a value in a list is named by its
                    // key (the message names the value).
                    if let DeValue::Table(inner) = element.get_ref() {
                        let block = here.clone().nth(index);
                        if let Some(found) = path_in(inner, offset, &block) {
                            return Some(found);
                        }
                        if holds(element.span()) {
                            return Some(block);
                        }
                    }
                }
            }
            DeValue::String(_)
            | DeValue::Integer(_)
            | DeValue::Float(_)
            | DeValue::Boolean(_)
            | DeValue::Datetime(_) => {}
        }
        if holds(value.span()) {
            return Some(here);
        }
    }
    None
}

/// The names between backticks in a serde message, in order.
fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// Keys that older scenarios wrote, and what replaced them.
const RENAMED_KEYS: &[(&str, &str)] = &[(
    "sqlite3_cli",
    "it was replaced by `other_sqlite`, an SQLite build crashfuzz loads itself (\"system\", a version such as \
     \"3.41.2\", or a path to a libsqlite3.so), not a shell",
)];

/// Rewrites serde's messages in the words of a scenario file: "key" and "table" rather than
/// "field" and "struct RawFault", and integer types as ranges. `written` is the text the error
/// points at, for the messages that do not quote it. A message of an unknown shape is kept as
/// it is.
fn humanize(message: &str, written: Option<&str>) -> String {
    // toml's answer when a name (an enum value) is written as a number, a list or a boolean.
    if message == "wanted string or table" {
        let written = written.map_or_else(String::new, |w| format!("`{w}` "));
        return format!("{written}is not allowed; expected a name in quotes, e.g. \"full\"");
    }
    // "unknown variant `wall`, expected one of `wal`, `delete`, ..." (or "expected `a` or `b`").
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        if let Some((bad, allowed)) = backticked(rest).split_first() {
            return format!("`{bad}` is not allowed; allowed: {}", allowed.join(", "));
        }
    }
    // "unknown field `bogus`, expected one of `a`, `b`" or "..., there are no fields".
    if let Some(rest) = message.strip_prefix("unknown field ") {
        if let Some((bad, allowed)) = backticked(rest).split_first() {
            if allowed.is_empty() {
                return format!("unknown key `{bad}`; this table has no keys");
            }
            let renamed =
                RENAMED_KEYS.iter().find(|(old, _)| old == bad).map_or(String::new(), |(_, now)| format!("; {now}"));
            return format!("unknown key `{bad}`{renamed}; allowed keys: {}", allowed.join(", "));
        }
    }
    let mut message = message
        .replace("expected u64", &format!("expected a whole number in 0..={}", u64::MAX))
        .replace("expected u32", &format!("expected a whole number in 0..={}", u32::MAX))
        .replace("expected a sequence", "expected an array, e.g. [\"a\", \"b\"]")
        .replace("invalid type: map", "invalid type: table")
        .replace("invalid type: sequence", "invalid type: array");
    // "expected struct RawFault": the raw struct names mean nothing to the reader.
    if let Some(at) = message.find("expected struct ") {
        message.truncate(at);
        message.push_str("expected a table");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    const MINIMAL: &str = "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n";

    /// (line, setting, message, the whole displayed error) of a rejected scenario.
    fn rejected(text: &str) -> (Option<usize>, String, String, String) {
        let e = match parse(text, "t.toml") {
            Ok(s) => panic!("expected a scenario error for\n{text}\ngot {s:?}"),
            Err(e) => e,
        };
        let shown = e.to_string();
        match e {
            Error::Scenario { file, line, setting, message } => {
                assert_eq!(file, "t.toml");
                (line, setting, message, shown)
            }
            other => panic!("expected a scenario error for\n{text}\ngot {other:?}"),
        }
    }

    #[test]
    fn every_embedded_scenario_parses_and_names_itself() {
        for (name, text) in embedded() {
            let s = parse(text, &format!("embedded:{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&s.name, name);
            assert!(!s.cells().is_empty(), "{name}");
        }
    }

    /// Every example scenario shipped beside the embedded ones parses, and the one that runs the
    /// default's process-crash cells on the OS's SQLite has exactly those cells, on `system`.
    #[test]
    fn the_example_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/examples");
        let mut seen = 0;
        // The scenarios beside the examples, and those of the examples' own folders.
        let entries = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path());
        let paths: Vec<PathBuf> = entries
            .flat_map(|p| {
                if p.is_dir() { std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect() } else { vec![p] }
            })
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            let s = parse(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.cells().is_empty(), "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 1);
        let text = std::fs::read_to_string(dir.join("kill-on-system-sqlite.toml")).unwrap();
        let system = parse(&text, "kill-on-system-sqlite.toml").unwrap();
        let default = default_scenario();
        let crash_cells: Vec<String> =
            default.cells().into_iter().filter(|c| c.fault != FaultKind::PowerLoss).map(|c| c.id()).collect();
        let on_system: Vec<String> = system.cells().iter().map(Cell::id).collect();
        assert_eq!(on_system, crash_cells.iter().map(|id| format!("{id}[system]")).collect::<Vec<_>>());
        assert_eq!(system.budget, Budget::Trials(24 * crash_cells.len() as u64));
    }

    #[test]
    fn embedded_default_expands_to_29_cells_with_every_expectation() {
        let s = default_scenario();
        assert_eq!(s.name, "default");
        assert_eq!(s.source, "embedded:default");
        assert_eq!(s.budget, Budget::Trials(700));
        assert!(!s.description.is_empty() && s.description.lines().count() <= 3, "{:?}", s.description);
        let cells = s.cells();
        assert_eq!(cells.len(), 29);
        let ids: BTreeSet<String> = cells.iter().map(Cell::id).collect();
        assert_eq!(ids.len(), 29);
        let mut canaries = Vec::new();
        for cell in &cells {
            let e = crate::fault::expectation_for(cell, crate::fault::SqliteVersion::bundled(), &s.expect);
            assert_eq!(e.levels.len(), ViolationKind::ALL.len(), "{cell}");
            if cell.journal_mode.is_journalled() && cell.fault != FaultKind::PowerLoss {
                assert!(e.levels.values().all(|&l| l == Level::Forbidden), "{cell}: {}", e.describe());
            }
            if e.is_canary() {
                canaries.push(cell.id());
            }
        }
        assert_eq!(
            canaries,
            [
                "off/full/sigkill_only@bulk",
                "memory/full/sigkill_only@bulk",
                "wal/off/power_loss/auto-checkpoint",
                "wal/normal/power_loss/auto-checkpoint",
                "delete/off/power_loss",
                "delete/full/power_loss",
            ]
        );
        for id in [
            "wal/normal/kill-graceful/auto-checkpoint",
            "wal/full/kill/none-checkpoint",
            "delete/full/sigkill_only@bulk",
        ] {
            assert!(ids.contains(id), "{id} missing from {ids:?}");
        }
        assert_eq!(resolve("default").map(|r| r == s).ok(), Some(true));
    }

    /// The sections the default file writes out equal the structs' defaults exactly, key for
    /// key: the file is the reference users read, so it must not drift from the code.
    #[test]
    fn default_file_writes_out_every_struct_default() {
        let file: toml::Table = toml::from_str(DEFAULT_SCENARIO_TOML).expect("the default file is TOML");
        let section = |path: &[&str]| -> toml::Value {
            path.iter().fold(toml::Value::Table(file.clone()), |v, key| {
                v.get(key).cloned().unwrap_or(toml::Value::Boolean(false))
            })
        };
        let default_of = |v: Result<toml::Value, toml::ser::Error>| v.expect("defaults serialize");
        assert_eq!(section(&["database"]), default_of(toml::Value::try_from(DatabaseConfig::default())));
        assert_eq!(section(&["workload"]), default_of(toml::Value::try_from(WorkloadConfig::default())));
        assert_eq!(section(&["fault", "kill"]), default_of(toml::Value::try_from(KillConfig::default())));
        assert_eq!(section(&["fault", "power_loss"]), default_of(toml::Value::try_from(PowerLossConfig::default())));
        assert_eq!(section(&["fault", "crash_point"]), default_of(toml::Value::try_from(CrashPointConfig::default())));
        assert_eq!(section(&["fault", "io_error"]), default_of(toml::Value::try_from(IoErrorConfig::default())));
        assert_eq!(section(&["topology"]), default_of(toml::Value::try_from(TopologyConfig::default())));
        assert_eq!(section(&["load"]), default_of(toml::Value::try_from(LoadConfig::default())));
        assert_eq!(section(&["hazard"]), default_of(toml::Value::try_from(HazardConfig::default())));
        assert_eq!(section(&["check"]), default_of(toml::Value::try_from(CheckSettings::default())));
        assert_eq!(section(&["output"]), default_of(toml::Value::try_from(OutputConfig::default())));

        // And a scenario that writes none of them gets the same values as the default file.
        let minimal = parse(MINIMAL, "scenarios/minimal.toml").expect("minimal scenario");
        let default = default_scenario();
        assert_eq!(minimal.name, "minimal");
        assert_eq!(minimal.description, "");
        assert_eq!(minimal.budget, Budget::Trials(DEFAULT_TRIALS));
        assert_eq!(minimal.database, default.database);
        assert_eq!(minimal.workload, default.workload);
        assert_eq!(minimal.kill, default.kill);
        assert_eq!(minimal.power_loss, default.power_loss);
        assert_eq!(minimal.crash_point, default.crash_point);
        assert_eq!(minimal.io_error, default.io_error);
        assert_eq!(minimal.topology, default.topology);
        assert_eq!(minimal.load, default.load);
        assert_eq!(minimal.hazard, default.hazard);
        assert_eq!(minimal.check, default.check);
        assert_eq!(minimal.output, default.output);
        assert_eq!(
            minimal.matrix,
            [MatrixBlock {
                journal_mode: vec![JournalMode::Wal],
                synchronous: vec![Synchronous::Full],
                fault: DEFAULT_FAULT.to_vec(),
                sigterm: DEFAULT_SIGTERM.to_vec(),
                checkpoint: DEFAULT_CHECKPOINT.to_vec(),
                timing: DEFAULT_TIMING.to_vec(),
                device: DEFAULT_DEVICE.to_vec(),
                fullfsync: DEFAULT_FULLFSYNC.to_vec(),
                sqlite: vec![SqliteName::BUNDLED],
            }]
        );
    }

    /// Every setting of the struct sections and of the first [[matrix]] block has a comment
    /// ending in `Default: V` (a TOML value equal to the code's default) or `Required:`.
    #[test]
    fn default_file_comments_state_the_true_defaults() {
        let as_table = |v: Result<toml::Value, toml::ser::Error>| match v {
            Ok(toml::Value::Table(t)) => t,
            other => panic!("{other:?}"),
        };
        let axis = |v: Result<toml::Value, toml::ser::Error>| Some(v.expect("axis default serializes"));
        let mut expected: Vec<(String, String, Option<toml::Value>)> = Vec::new();
        for (section, table) in [
            ("database", as_table(toml::Value::try_from(DatabaseConfig::default()))),
            ("workload", as_table(toml::Value::try_from(WorkloadConfig::default()))),
            ("fault.kill", as_table(toml::Value::try_from(KillConfig::default()))),
            ("fault.power_loss", as_table(toml::Value::try_from(PowerLossConfig::default()))),
            ("fault.crash_point", as_table(toml::Value::try_from(CrashPointConfig::default()))),
            ("fault.io_error", as_table(toml::Value::try_from(IoErrorConfig::default()))),
            ("topology", as_table(toml::Value::try_from(TopologyConfig::default()))),
            ("load", as_table(toml::Value::try_from(LoadConfig::default()))),
            ("hazard", as_table(toml::Value::try_from(HazardConfig::default()))),
            ("check", as_table(toml::Value::try_from(CheckSettings::default()))),
            ("output", as_table(toml::Value::try_from(OutputConfig::default()))),
        ] {
            for (key, value) in table {
                expected.push((section.to_string(), key, Some(value)));
            }
        }
        for (key, default) in [
            ("journal_mode", None),
            ("synchronous", None),
            ("fault", axis(toml::Value::try_from(DEFAULT_FAULT))),
            ("sigterm", axis(toml::Value::try_from(DEFAULT_SIGTERM))),
            ("checkpoint", axis(toml::Value::try_from(DEFAULT_CHECKPOINT))),
            ("timing", axis(toml::Value::try_from(DEFAULT_TIMING))),
            ("device", axis(toml::Value::try_from(DEFAULT_DEVICE))),
            ("fullfsync", axis(toml::Value::try_from(DEFAULT_FULLFSYNC))),
            ("sqlite", axis(toml::Value::try_from([SqliteName::BUNDLED]))),
        ] {
            expected.push(("matrix[1]".to_string(), key.to_string(), default));
        }

        // (section, key) -> the comment's stated default ("Required" for required settings).
        let mut stated: Vec<(String, String, String)> = Vec::new();
        let (mut section, mut matrix_blocks, mut in_string) = (String::new(), 0, false);
        let mut comments: Vec<&str> = Vec::new();
        for line in DEFAULT_SCENARIO_TOML.lines() {
            let quotes = line.matches("\"\"\"").count();
            if in_string || quotes % 2 == 1 {
                in_string ^= quotes % 2 == 1;
                comments.clear();
                continue;
            }
            let line = line.trim();
            if let Some(comment) = line.strip_prefix('#') {
                comments.push(comment.trim());
            } else if line.starts_with("[[matrix]]") {
                matrix_blocks += 1;
                section = format!("matrix[{matrix_blocks}]");
                comments.clear();
            } else if line.starts_with('[') {
                section = line.trim_matches(|c| c == '[' || c == ']').to_string();
                comments.clear();
            } else if let Some((key, _)) = line.split_once('=') {
                let statement = comments.iter().rev().find_map(|c| {
                    c.strip_prefix("Default: ").or_else(|| c.starts_with("Required:").then_some("Required"))
                });
                if let Some(statement) = statement {
                    stated.push((section.clone(), key.trim().to_string(), statement.to_string()));
                }
                comments.clear();
            } else {
                comments.clear();
            }
        }

        for (section, key, default) in &expected {
            let Some((_, _, statement)) = stated.iter().find(|(s, k, _)| s == section && k == key) else {
                panic!("[{section}] {key}: no `Default:` comment in scenarios/default.toml");
            };
            match default {
                None => assert_eq!(statement, "Required", "[{section}] {key}"),
                Some(want) => {
                    let said: toml::Table = toml::from_str(&format!("v = {statement}"))
                        .unwrap_or_else(|e| panic!("[{section}] {key}: `Default: {statement}` is not a value: {e}"));
                    assert_eq!(said.get("v"), Some(want), "[{section}] {key}: the comment says {statement}");
                }
            }
        }
    }

    /// Each scenario is rejected at `line` (None: no line, the setting is missing) naming `setting`,
    /// with a message containing every needle, shown as `t.toml:LINE: SETTING: ...`.
    fn assert_rejected(cases: &[(String, Option<usize>, &str, Vec<&str>)]) {
        for (text, line, setting, needles) in cases {
            let (got_line, got_setting, message, shown) = rejected(text);
            assert_eq!((got_line, got_setting.as_str()), (*line, *setting), "{text}\n=> {shown}");
            for needle in needles {
                assert!(message.contains(needle), "{text}\n=> {shown}\nshould mention {needle:?}");
            }
            let at = match line {
                Some(l) => format!("t.toml:{l}: {setting}: "),
                None => format!("t.toml:?: {setting}: "),
            };
            assert!(shown.starts_with(&at), "{shown}");
        }
    }

    #[test]
    fn serde_errors_name_the_value_and_what_is_allowed() {
        let m = MINIMAL;
        assert_rejected(&[
            // serde: enum values, integer types, value types, unknown keys
            (
                "[budget]\ntrials = 3\n[[matrix]]\njournal_mode = [\"wall\"]\nsynchronous = [\"full\"]\n".into(),
                Some(4),
                "matrix[1].journal_mode",
                vec!["`wall`", "allowed: wal, delete, truncate, persist, memory, off"],
            ),
            (format!("[fault.kill]\n\ngrace_ms = -5\n{m}"), Some(3), "fault.kill.grace_ms", vec!["-5", "0..="]),
            (
                format!("[workload]\npage_size_bytes = 5000000000\n{m}"),
                Some(2),
                "workload.page_size_bytes",
                vec!["5000000000", "0..=4294967295"],
            ),
            (format!("[database]\nmode = \"keep\"\n{m}"), Some(2), "database.mode", vec!["`keep`", "fresh, continue"]),
            (
                format!("{m}[[expect]]\nintegrity = \"requird\"\n"),
                Some(5),
                "expect[1].integrity",
                vec!["`requird`", "forbidden, allowed, required"],
            ),
            (format!("nam = \"x\"\n{m}"), Some(1), "nam", vec!["unknown key `nam`", "name, description, budget"]),
            (
                format!("{m}[fault.kill]\nbogus = 1\n"),
                Some(5),
                "fault.kill.bogus",
                vec!["unknown key `bogus`", "kill_at_ms_min", "ready_timeout_ms"],
            ),
            (format!("{m}[fault]\nkil = 1\n"), Some(5), "fault.kil", vec!["`kil`", "allowed keys: kill"]),
            // [hazard] other_sqlite: a build spec, read as it is parsed; the shell it replaced
            (
                format!("{m}[hazard]\nother_sqlite = \"3.40.1\"\n"),
                Some(5),
                "hazard.other_sqlite",
                vec!["SQLite 3.40.1 is not one crashfuzz can build", "3.39.2, 3.41.2", "\"system\""],
            ),
            (
                format!("{m}[hazard]\nother_sqlite = \"sqlite3\"\n"),
                Some(5),
                "hazard.other_sqlite",
                vec!["\"sqlite3\" names no SQLite build", "a path to a libsqlite3.so"],
            ),
            (
                format!("{m}[hazard]\nsqlite3_cli = \"/usr/bin/sqlite3\"\n"),
                Some(5),
                "hazard.sqlite3_cli",
                vec![
                    "unknown key `sqlite3_cli`",
                    "replaced by `other_sqlite`",
                    "allowed keys: lock_cancel_interval_us_max",
                ],
            ),
            (
                format!("{m}[[matrix]]\njournal = [\"wal\"]\n"),
                Some(5),
                "matrix[2].journal",
                vec!["`journal`", "journal_mode, synchronous"],
            ),
            (format!("name = 3\n{m}"), Some(1), "name", vec!["integer `3`", "string"]),
            (format!("fault = 3\n{m}"), Some(1), "fault", vec!["expected a table"]),
            (
                "[[matrix]]\njournal_mode = [\"wal\", 3]\n".into(),
                Some(2),
                "matrix[1].journal_mode",
                vec!["`3`", "in quotes"],
            ),
            ("[matrix]\njournal_mode = [\"wal\"]\n".into(), Some(1), "matrix", vec!["expected an array"]),
        ]);
    }

    #[test]
    fn budget_and_kill_errors_name_both_settings() {
        let m = MINIMAL;
        assert_rejected(&[
            // budget
            (
                format!("[budget]\ntrials = 3\nduration_s = 4\n{m}"),
                Some(3),
                "budget.duration_s",
                vec!["trials = 3", "duration_s = 4", "exactly one"],
            ),
            (format!("[budget]\ntrials = 0\n{m}"), Some(2), "budget.trials", vec!["0 is out of range", "≥ 1"]),
            (format!("[budget]\nduration_s = 0\n{m}"), Some(2), "budget.duration_s", vec!["0 is out of range"]),
            // [fault.kill]
            (
                format!("[fault.kill]\nkill_at_ms_min = 80\n{m}"),
                Some(2),
                "fault.kill.kill_at_ms_min",
                vec!["kill_at_ms_min = 80", "kill_at_ms_max = 50"],
            ),
            (
                format!("[fault.kill]\nkill_at_ms_max = 9\nkill_at_ms_min = 10\n{m}"),
                Some(3),
                "fault.kill.kill_at_ms_min",
                vec!["10", "9"],
            ),
            (
                format!("[fault.kill]\ngrace_ms = 600001\n{m}"),
                Some(2),
                "fault.kill.grace_ms",
                vec!["600001", "≤ 600000"],
            ),
            (
                format!("[fault.kill]\nready_timeout_ms = 0\n{m}"),
                Some(2),
                "fault.kill.ready_timeout_ms",
                vec!["0", "≥ 1"],
            ),
        ]);
    }

    #[test]
    fn workload_errors_name_the_range() {
        let m = MINIMAL;
        assert_rejected(&[
            // [workload]
            (format!("[workload]\nwriters = 9\n{m}"), Some(2), "workload.writers", vec!["9", "1..=8"]),
            (format!("[workload]\nwriters = 0\n{m}"), Some(2), "workload.writers", vec!["0", "1..=8"]),
            (
                format!("[workload]\nmessage_bytes_min = 0\n{m}"),
                Some(2),
                "workload.message_bytes_min",
                vec!["0", "≥ 1"],
            ),
            // Only the max is written, so the relation is reported there.
            (
                format!("[workload]\nmessage_bytes_max = 10\n{m}"),
                Some(2),
                "workload.message_bytes_max",
                vec!["message_bytes_min = 20", "message_bytes_max = 10"],
            ),
            (
                format!("[workload]\nhuge_message_bytes = 100\n{m}"),
                Some(2),
                "workload.huge_message_bytes",
                vec!["huge_message_bytes = 100"],
            ),
            (
                format!("[workload]\ncompress_percent = 101\n{m}"),
                Some(2),
                "workload.compress_percent",
                vec!["101", "≤ 100"],
            ),
            (
                format!("[workload]\ncompress_percent = 60\nedit_percent = 50\n{m}"),
                Some(3),
                "workload.edit_percent",
                vec!["= 112", "sum ≤ 100"],
            ),
            (
                format!("[workload]\nhuge_message_per_mille = 1001\n{m}"),
                Some(2),
                "workload.huge_message_per_mille",
                vec!["1001", "≤ 1000"],
            ),
            (
                format!("[workload]\npage_size_bytes = 3000\n{m}"),
                Some(2),
                "workload.page_size_bytes",
                vec!["3000", "power of two in 512..=65536"],
            ),
            (format!("[workload]\npage_size_bytes = 131072\n{m}"), Some(2), "workload.page_size_bytes", vec!["131072"]),
            (format!("[workload]\ncache_size_kib = 0\n{m}"), Some(2), "workload.cache_size_kib", vec!["0", "≥ 1"]),
            (format!("[workload]\ntxns_max = 0\n{m}"), Some(2), "workload.txns_max", vec!["0", "≥ 1"]),
            (format!("[workload]\nseed_sessions = 0\n{m}"), Some(2), "workload.seed_sessions", vec!["0", "≥ 1"]),
        ]);
    }

    /// The `sqlite` axis: every build a block names makes its own cells, named by the build
    /// (none for bundled, the default); an `[[expect]]` can select one build.
    #[test]
    fn the_sqlite_axis_multiplies_cells_and_expectations_can_select_a_build() {
        let text = format!(
            "{MINIMAL}fault = [\"kill\", \"lock_cancel\"]\nsqlite = [\"bundled\", \"system\", \"3.41.2\", \"./lib/libsqlite3.so\"]\n\
             [[expect]]\nsqlite = \"system\"\nfault = \"kill\"\nfts = \"allowed\"\n"
        );
        let s = parse(&text, "t.toml").unwrap();
        let ids: Vec<String> = s.cells().iter().map(Cell::id).collect();
        assert_eq!(ids.len(), 2 * 4, "{ids:?}");
        for want in [
            "wal/full/kill/auto-checkpoint",
            "wal/full/kill/auto-checkpoint[system]",
            "wal/full/lock_cancel/auto-checkpoint[3.41.2]",
            "wal/full/lock_cancel/auto-checkpoint[./lib/libsqlite3.so]",
        ] {
            assert!(ids.iter().any(|id| id == want), "{want} not in {ids:?}");
        }
        let system = SqliteName::of(&SqliteBuild::System);
        for cell in s.cells() {
            let e = crate::fault::expectation_for(&cell, crate::fault::SqliteVersion::bundled(), &s.expect);
            let fts =
                if cell.sqlite == system && cell.fault == FaultKind::Kill { Level::Allowed } else { Level::Forbidden };
            if cell.fault == FaultKind::Kill {
                assert_eq!(e.level(ViolationKind::Fts), fts, "{}", cell.id());
            }
        }
        // Left out, the axis is the bundled build alone, and ids carry no build.
        let plain = parse(MINIMAL, "t.toml").unwrap();
        assert!(plain.cells().iter().all(|c| c.sqlite.is_bundled() && !c.id().contains('[')));
        // A cell's build survives a trip through JSON (summary.json, trial lines).
        for cell in s.cells() {
            let back: Cell = serde_json::from_value(serde_json::to_value(cell).unwrap()).unwrap();
            assert_eq!(back, cell);
        }
    }

    #[test]
    fn matrix_expect_and_syntax_errors_name_the_block() {
        let m = MINIMAL;
        assert_rejected(&[
            // [check]
            (format!("[check]\nfts_samples = 1001\n{m}"), Some(2), "check.fts_samples", vec!["1001", "≤ 1000"]),
            // [[matrix]]
            ("[budget]\ntrials = 3\n".into(), None, "matrix", vec!["no [[matrix]] block"]),
            (
                format!("{m}\n[[matrix]]\njournal_mode = [\"wal\"]\n"),
                Some(5),
                "matrix[2].synchronous",
                vec!["missing", "off, normal, full, extra"],
            ),
            (format!("{m}fault = []\n"), Some(4), "matrix[1].fault", vec!["[]", "kill, sigkill_only"]),
            (
                format!("{m}sqlite = []\n"),
                Some(4),
                "matrix[1].sqlite",
                vec!["[]", "\"bundled\"", "crashfuzz sqlite list"],
            ),
            (
                format!("{m}sqlite = [\"system\", \"3.40.1\"]\n"),
                Some(4),
                "matrix[1].sqlite",
                vec!["3.40.1", "not one crashfuzz can build", "3.41.2"],
            ),
            (
                format!("{m}sqlite = [\"sqlite3\"]\n"),
                Some(4),
                "matrix[1].sqlite",
                vec!["\"sqlite3\" names no SQLite build"],
            ),
            (
                format!("{m}checkpoint = []\n"),
                Some(4),
                "matrix[1].checkpoint",
                vec!["auto, passive_every_50, truncate_on_close, none"],
            ),
            // [[expect]]
            (format!("{m}[[expect]]\njournal_mode = \"wal\"\n"), Some(4), "expect[1]", vec!["no level", "integrity"]),
            (
                format!("{m}[[expect]]\njournal_mode = \"delete\"\nintegrity = \"allowed\"\n"),
                Some(4),
                "expect[1]",
                vec!["journal_mode = \"delete\"", "match no cell", "wal/full/kill/auto-checkpoint"],
            ),
            (
                format!(
                    "{m}[[matrix]]\njournal_mode = [\"delete\"]\nsynchronous = [\"full\"]\n[[expect]]\njournal_mode = \"delete\"\ncheckpoint = \"none\"\nfts = \"allowed\"\n"
                ),
                Some(7),
                "expect[1]",
                vec!["checkpoint = \"none\"", "only selects WAL cells"],
            ),
            // syntax
            ("[budget]\ntrials = 3\n[[matrix]\njournal_mode = [\"wal\"]\n".into(), Some(3), SYNTAX, vec!["`]`"]),
            (
                format!("[fault.kill]\ngrace_ms = 1\ngrace_ms = 2\n{m}"),
                Some(3),
                SYNTAX,
                vec!["duplicate key", "grace_ms"],
            ),
        ]);
    }

    #[test]
    fn the_first_problem_in_the_file_is_reported() {
        let text =
            format!("[workload]\nwriters = 0\n[fault.kill]\ngrace_ms = 700000\n[check]\nfts_samples = 5000\n{MINIMAL}");
        let (line, setting, _, _) = rejected(&text);
        assert_eq!((line, setting.as_str()), (Some(2), "workload.writers"));
        let text = format!("[check]\nfts_samples = 5000\n[workload]\nwriters = 0\n{MINIMAL}");
        assert_eq!(rejected(&text).1, "check.fts_samples");
    }

    #[test]
    fn valid_settings_are_kept_as_written() {
        let text = format!(
            "name = \"mine\"\ndescription = \"d\"\n[budget]\nduration_s = 5\n[database]\nmode = \"continue\"\n\
             [workload]\nwriters = 8\npage_size_bytes = 512\n[fault.kill]\nkill_at_ms_min = 7\nkill_at_ms_max = 7\n\
             grace_ms = 600000\n[check]\nintegrity = \"quick\"\nfts_samples = 1000\n[output]\nfailures_kept_per_cell = 0\n\
             {MINIMAL}fault = [\"sigkill_only\", \"kill\"]\n[[expect]]\nsigterm = \"default\"\nlost_ack = \"allowed\"\n"
        );
        let s = parse(&text, "x/y.toml").expect("valid");
        assert_eq!((s.name.as_str(), s.description.as_str(), s.source.as_str()), ("mine", "d", "x/y.toml"));
        assert_eq!(s.budget, Budget::DurationS(5));
        assert_eq!(s.database.mode, DatabaseMode::Continue);
        assert_eq!((s.workload.writers, s.workload.page_size_bytes), (8, 512));
        assert_eq!((s.kill.kill_at_ms_min, s.kill.kill_at_ms_max, s.kill.grace_ms), (7, 7, GRACE_MS_MAX));
        assert_eq!(s.check, CheckSettings { integrity: IntegrityLevel::Quick, fts_samples: FTS_SAMPLES_MAX });
        assert_eq!(s.output.failures_kept_per_cell, 0);
        assert_eq!(s.matrix[0].fault, [FaultKind::SigkillOnly, FaultKind::Kill]);
        assert_eq!(s.expect.len(), 1);
        assert_eq!(s.cells().len(), 2);
    }

    #[test]
    fn load_and_resolve_report_paths_and_embedded_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.toml");
        match load(&missing) {
            Err(e @ Error::BadPath { .. }) => assert!(e.to_string().contains("nope.toml"), "{e}"),
            other => panic!("{other:?}"),
        }
        match resolve(missing.to_str().expect("utf-8 temp path")) {
            Err(e @ Error::BadPath { .. }) => assert!(e.to_string().contains("embedded: default"), "{e}"),
            other => panic!("{other:?}"),
        }
        let named = dir.path().join("my-cells.toml");
        std::fs::write(&named, MINIMAL).expect("write");
        let s = resolve(named.to_str().expect("utf-8 temp path")).expect("valid file");
        assert_eq!(s.name, "my-cells");
        assert_eq!(s.source, named.display().to_string());
        let latin1 = dir.path().join("latin1.toml");
        std::fs::write(&latin1, b"name = \"x\"\n# caf\xe9\n").expect("write");
        match load(&latin1) {
            Err(Error::Scenario { line, message, .. }) => {
                assert_eq!(line, Some(2));
                assert!(message.contains("UTF-8"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            embedded().iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            [
                "default",
                "power-loss",
                "crash-points",
                "io-errors",
                "gateway",
                "hazards",
                "durability-kill",
                "durability-power-loss",
                "ci-gate"
            ]
        );
    }

    /// Characters that matter to TOML, for mutations.
    const SIGNIFICANT: &[char] =
        &['[', ']', '"', '\'', '=', '\n', '#', '.', ',', '{', '}', '\\', ' ', '0', '9', '-', 'x', '\u{0}', 'é'];

    #[derive(Clone, Debug)]
    enum Edit {
        Delete(prop::sample::Index, usize),
        Duplicate(prop::sample::Index, usize),
        Replace(prop::sample::Index, char),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<prop::sample::Index>(), 1..40usize).prop_map(|(i, n)| Edit::Delete(i, n)),
            (any::<prop::sample::Index>(), 1..80usize).prop_map(|(i, n)| Edit::Duplicate(i, n)),
            (any::<prop::sample::Index>(), prop::sample::select(SIGNIFICANT)).prop_map(|(i, c)| Edit::Replace(i, c)),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for e in edits {
            if chars.is_empty() {
                break;
            }
            match e {
                Edit::Delete(at, n) => {
                    let start = at.index(chars.len());
                    chars.drain(start..(start + n).min(chars.len()));
                }
                Edit::Duplicate(at, n) => {
                    let start = at.index(chars.len());
                    let copy: Vec<char> = chars[start..(start + n).min(chars.len())].to_vec();
                    chars.splice(start..start, copy);
                }
                Edit::Replace(at, c) => {
                    let i = at.index(chars.len());
                    chars[i] = *c;
                }
            }
        }
        chars.into_iter().collect()
    }

    /// Whatever the text, `parse` returns; a rejection is a scenario error whose line lies in
    /// the text.
    fn assert_returns(text: &str) -> std::result::Result<(), TestCaseError> {
        match parse(text, "fuzz.toml") {
            Ok(_) => {}
            Err(Error::Scenario { line, .. }) => {
                let lines = text.split('\n').count();
                prop_assert!(line.is_none_or(|l| (1..=lines).contains(&l)), "line {line:?} of {lines}");
            }
            Err(other) => prop_assert!(false, "not a scenario error: {other:?}"),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            assert_returns(&String::from_utf8_lossy(&bytes))?;
        }

        #[test]
        fn parse_never_panics_on_toml_like_text(text in "([a-z_]{1,12}|[\\[\\]=\"'.,{}# 0-9\n-]){0,120}") {
            assert_returns(&text)?;
        }

        #[test]
        fn parse_never_panics_on_a_mutated_default(edits in proptest::collection::vec(edit(), 1..6)) {
            assert_returns(&apply(DEFAULT_SCENARIO_TOML, &edits))?;
        }
    }
}

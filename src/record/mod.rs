//! The trial record: one line of `trials.jsonl`, and every part of it. A campaign writes these,
//! the reports, `crashfuzz report` and the pages read them back, and nothing else connects the
//! two: **a summary is a function of the trial records alone**.
//!
//! Leaf module (with `checks` and `expected`): it imports nothing from the crate beyond them.

pub mod checks;
pub mod expected;

use checks::{CheckResult, ViolationKind};
use expected::WriterExpectation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An SQLite build as it names itself, read back from the library that is running
/// (`sqlite_version()` and `sqlite_source_id()`, the check-in it was built from).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SqliteIdentity {
    pub version: String,
    pub source_id: String,
}

/// One line of `trials.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Trial index within the campaign (the ChaCha8 stream of its randomness).
    pub trial: u64,
    /// Seed of this trial's writers and fault timing, derived from the campaign seed.
    pub seed: u64,
    /// When the trial started, in milliseconds since the campaign started.
    #[serde(default)]
    pub started_ms: u64,
    /// Cell id, e.g. `wal/full/kill/auto-checkpoint`.
    pub cell: String,
    pub outcome: TrialOutcome,
    /// How each writer process died, and whether that is what the fault should cause.
    pub deaths: Vec<Death>,
    /// Per writer id: highest sequence acknowledged and begun.
    pub acks: BTreeMap<u64, WriterExpectation>,
    /// Commits acknowledged by this trial's writers.
    pub commits: u64,
    /// Delay from writer ready to the first signal (or, for a crash point, to the writer's
    /// death), in microseconds.
    pub fault_at_us: u64,
    pub checks: Vec<CheckResult>,
    /// The kinds of the failed checks, in check order.
    pub violations: Vec<ViolationKind>,
    /// This trial's commit latencies: an HdrHistogram (microseconds) in V2 serialization,
    /// base64-encoded; empty when no commit was acknowledged.
    pub commit_latency_hist: String,
    /// Every explicit checkpoint the writers ran, with SQLite's `busy` column.
    pub checkpoints: Vec<CheckpointRecord>,
    /// For graceful writers: what happened between SIGTERM and death.
    pub shutdowns: Vec<ShutdownRecord>,
    pub timing_us: TrialTiming,
    /// The 1-minute load average when the fault was injected; NaN when unknown, which JSON
    /// writes as `null` (and `nan_from_null` reads back).
    #[serde(deserialize_with = "nan_from_null")]
    pub loadavg_1m: f64,
    /// `failures/<trial>` relative to the run directory, when the crash image was kept.
    pub kept_failure: Option<String>,
    /// A command that re-runs the checks on the kept image (and one that re-runs the trial).
    pub replay: Option<String>,
    /// Power loss: one entry per crash image built from the trace. Empty for the other
    /// faults, whose one crash image is the files as the fault left them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageRecord>,
    /// Crash point and I/O error: where the tracing VFS struck, and what the writers saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injection: Option<InjectionRecord>,
    /// Power loss: the kept failure's lost writes, shrunk to a minimal set, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanation: Vec<String>,
    /// SQLITE_BUSY retries of every writer (each one a transaction tried again).
    #[serde(default)]
    pub busy_retries: u64,
    /// Transient writer processes started.
    #[serde(default)]
    pub transients: u32,
    /// WAL mode: writer processes whose last connection closed cleanly during the trial
    /// (transients, and long-lived writers that finished)...
    #[serde(default, skip_serializing_if = "is_zero")]
    pub closes: u32,
    /// ...and of those, the ones that closed alone: the WAL was gone after their close (they
    /// checkpointed and deleted it, believing they were the last connection).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub closes_alone: u32,
    /// The writers that had to write on through the victim's death, and how they fared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub survivors: Vec<SurvivorRecord>,
    /// `continue`: the trial whose database (checked clean) this one started from; `None` when
    /// it started from the cell's template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_from: Option<u64>,
    /// Bytes of the database and its WAL or journal when the writers started.
    #[serde(default)]
    pub db_bytes_at_start: u64,
    /// What the trial's seed decided before anything ran.
    #[serde(default)]
    pub plan: TrialPlan,
    /// Writers that died of something crashfuzz did not send (a signal, an exit outside the
    /// writer's protocol), in words: the `writer_crash` finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writer_crashes: Vec<String>,
    /// Where an application's own writer broke the acknowledgement protocol or ignored the
    /// cell's journal mode, in words: the `protocol` finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol: Vec<String>,
    /// The SQLite the trial's writers ran on, as each read it back from its connection
    /// (`sqlite_version()`, `sqlite_source_id()`); every one agreed with the cell's build.
    /// Absent only when no writer got as far as opening the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_sqlite: Option<SqliteIdentity>,
    /// Where the oracle's build (the bundled one) called the image damaged and the writers'
    /// build, checking the same image, did not: not counted as damage, shown beside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_version: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// serde_json writes a NaN as `null` and refuses to read `null` as an `f64`: without this, a
/// record of a trial whose load average was unknown could not be read back by `report`.
fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl TrialRecord {
    /// The distinct crash states this trial checked: its power-loss images but those that
    /// duplicate an earlier image of the trace (same bytes, same acknowledgements: the same
    /// state, counted once), or the one image a process crash leaves.
    pub fn crash_states(&self) -> Vec<&[ViolationKind]> {
        if self.images.is_empty() {
            vec![&self.violations[..]]
        } else {
            self.images.iter().filter(|i| i.duplicate_of.is_none()).map(|i| &i.violations[..]).collect()
        }
    }
}

/// What a trial's seed decided, drawn in a fixed order from its ChaCha8 stream: the same
/// campaign seed and trial index give the same plan on any machine, however the processes then
/// interleave. (The victim drawn among live processes at the fault's moment, under
/// `victim = "any"`, depends on how many are alive then, so it is not part of the plan.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialPlan {
    /// The long-lived process an injected fault (crash point, I/O error) lives in.
    pub injected_victim: u32,
    /// Each long-lived writer process's seed, in spawn order.
    pub writer_seeds: Vec<u64>,
    /// The seed the transient writers' seeds are drawn from.
    pub transient_seed: u64,
    /// The fault's moment, in microseconds: after every writer is ready (uniform timing),
    /// after the bulk transaction is announced (bulk), or after the injected error (io_error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_delay_us: Option<u64>,
    /// Raw-copy backup: where in the window the copy starts, as a fraction of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_at_fraction: Option<f64>,
    /// Power loss: the seed of the cuts and fates of the trace's images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_seed: Option<u64>,
}

/// A transaction a writer saw fail with an I/O error, and how many attempts failed in a row
/// with the same extended code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTxn {
    pub writer: u64,
    pub seq: u64,
    /// The SQLite extended result code, e.g. 778 (SQLITE_IOERR_WRITE) or 13 (SQLITE_FULL).
    pub code: i32,
    pub attempts: u32,
    /// COMMIT reported the error, yet the transaction was committed (the writer found its
    /// ledger row and never acknowledged it).
    #[serde(default)]
    pub committed: bool,
}

/// Where a crash point or an I/O error was injected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectionRecord {
    /// The operation (a write, sync or truncate on a database file, counted from 1).
    pub op: u64,
    /// Systematic crash points: the operations of the short trace being enumerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_in_trace: Option<u64>,
    /// I/O error: the transactions the writers saw fail (never acknowledged for that attempt).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedTxn>,
    /// I/O error: a writer gave up after persistent errors.
    #[serde(default)]
    pub gave_up: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrialOutcome {
    /// The fault happened as planned and the crash image was checked.
    Checked,
    /// The trial cannot be judged (e.g. the writer finished its work before the fault):
    /// neither a pass nor a failure, counted separately.
    Inconclusive { reason: String },
}

/// How a writer process ended, as `waitpid` reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Death {
    pub writer: u64,
    pub pid: i32,
    /// `signal:SIGTERM`, `signal:SIGKILL`, `exit:0`, ...
    pub how: String,
    /// The deaths the fault allows here, e.g. `["signal:SIGKILL"]`.
    pub expected: Vec<String>,
    /// What the process was to the trial (one entry per connection of a process).
    pub role: Role,
}

/// A writer that had to write on through the victim's death (check 8 for survivors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurvivorRecord {
    pub writer: u64,
    pub role: Role,
    /// Its process was running when the victim died.
    pub alive_at_victim_death: bool,
    /// Transactions it committed after the victim died.
    pub commits_after_victim_death: u64,
    /// It ran out of work and closed by itself (a transient's normal end).
    pub finished: bool,
    /// It stopped on an SQLite error (the database refused a write): check 8's finding.
    pub error: Option<String>,
    /// It gave up on a lock where it could not retry: contention, counted, not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub writer: u64,
    /// PASSIVE, FULL, RESTART or TRUNCATE.
    pub mode: String,
    /// SQLite's `busy` column: 1 when the checkpoint could not complete.
    pub busy: i64,
    /// Frames in the WAL, and frames checkpointed (-1 when not in WAL mode).
    pub log_frames: i64,
    pub checkpointed_frames: i64,
    /// True for the checkpoint a graceful writer runs on SIGTERM.
    pub on_shutdown: bool,
    pub elapsed_us: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownRecord {
    pub writer: u64,
    /// The writer saw SIGTERM and started its shutdown.
    pub started: bool,
    /// The shutdown checkpoint began / completed before the writer died.
    pub checkpoint_started: bool,
    pub checkpoint_done: bool,
    /// SIGKILL arrived after the shutdown checkpoint began and before it completed.
    pub killed_mid_checkpoint: bool,
    /// SIGTERM to exit, in microseconds, when the writer exited by itself.
    pub duration_us: Option<u64>,
}

/// Where the trial's wall time went, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialTiming {
    /// Preparing the trial directory and database.
    pub setup: u64,
    /// Spawning the writers until all reported ready.
    pub spawn: u64,
    /// Writers running until the first signal (the kill window).
    pub write: u64,
    /// First signal until every writer was reaped.
    pub kill: u64,
    /// Copying or building the crash image(s) and running the checks.
    pub check: u64,
}

/// One crash image of a power-loss trial, as `trials.jsonl` records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Records of the trace before the cut.
    pub cut: u64,
    /// Operations after the last barrier before the cut, and how many of them were lost
    /// (dropped, or a name change not persisted) or torn in this image.
    pub undetermined: u32,
    pub lost: u32,
    pub torn: u32,
    /// The kinds of the failed checks.
    pub violations: Vec<ViolationKind>,
    /// The index of an earlier image of this trial with the same bytes and acknowledgements,
    /// whose outcome this one shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u32>,
}

/// What a process is to the trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The process the fault hits.
    Victim,
    /// A long-lived process that must write on through the victim's death.
    Survivor,
    /// A short-lived process: opens, appends `transient_txns` messages, closes.
    Transient,
}

//! One trial end to end: prepare the database, start the writers, inject the fault, reap and
//! assert how each child died, check the crash image, keep it if it failed — and the
//! [`TrialRecord`] that becomes one line of `trials.jsonl`.
//!
//! INTERFACE: the record types below are fixed; the report module aggregates them.

use crate::check::{CheckResult, ViolationKind, WriterExpectation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One line of `trials.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Trial index within the campaign (the ChaCha8 stream of its randomness).
    pub trial: u64,
    /// Seed of this trial's writers and fault timing, derived from the campaign seed.
    pub seed: u64,
    /// Cell id, e.g. `wal/full/kill/auto-checkpoint`.
    pub cell: String,
    pub outcome: TrialOutcome,
    /// How each writer process died, and whether that is what the fault should cause.
    pub deaths: Vec<Death>,
    /// Per writer id: highest sequence acknowledged and begun.
    pub acks: BTreeMap<u64, WriterExpectation>,
    /// Commits acknowledged by this trial's writers.
    pub commits: u64,
    /// Delay from writer ready to the first signal, in microseconds.
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
    /// The 1-minute load average when the fault was injected.
    pub loadavg_1m: f64,
    /// `failures/<trial>` relative to the run directory, when the crash image was kept.
    pub kept_failure: Option<String>,
    /// A command that re-runs the checks on the kept image (and one that re-runs the trial).
    pub replay: Option<String>,
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
    /// Copying the crash image and running the checks.
    pub check: u64,
}

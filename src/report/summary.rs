//! `summary.json`: what a campaign (or a merge of runs) found, per cell, and the words the
//! reports use for a cell's verdict and rates. Plain data: the aggregator fills it, the
//! renderers read it, `crashfuzz report` reads it back.

use crate::base::stats::{LatencySummary, rate_with_bound};
use crate::record::checks::ViolationKind;
use crate::scenario::expect::{Expectation, Level, Verdict};
use crate::scenario::matrix::Cell;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Distinct inconclusive reasons kept per cell as examples.
pub const INCONCLUSIVE_EXAMPLES_MAX: usize = 3;

/// Violating trials kept per cell as examples (with their replay lines).
pub const FAILURE_EXAMPLES_MAX: usize = 5;

/// What a summary says about the run itself (the rest is computed from trial records).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeta {
    pub run_id: String,
    /// The campaign seed; `null` in a report merged from runs of different seeds (the summary's
    /// `seeds` lists them).
    pub seed: Option<u64>,
    /// The scenario's name.
    pub scenario: String,
    /// Where the scenario came from: a file path or `embedded:<name>`.
    pub scenario_source: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub crashfuzz_version: String,
    pub sqlite_version: String,
    /// The command line that started the run.
    pub command: String,
    /// The fewest checked crash states a cell needs for a verdict other than `no-data`
    /// (`--min-states`).
    #[serde(default = "one")]
    pub min_states: u64,
    /// The application's own writer the run drove (`[writer] command`), when it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_writer: Option<OwnWriter>,
}

/// What a summary says about an application's own writer: its command, and why the checks that
/// cannot apply to it did not run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnWriter {
    pub command: String,
    /// Check name to the reason it does not run on this program's databases.
    pub not_applicable: std::collections::BTreeMap<String, String>,
}

impl OwnWriter {
    pub fn of(app: &crate::scenario::app::AppWriter) -> OwnWriter {
        OwnWriter {
            command: app.command.join(" "),
            not_applicable: ViolationKind::ALL
                .iter()
                .filter_map(|&k| {
                    crate::oracle::app::not_applicable(app, k).map(|why| (k.as_str().to_string(), why.into()))
                })
                .collect(),
        }
    }
}

pub(crate) fn one() -> u64 {
    1
}

/// Per cell: what the concurrency of its trials looked like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyCounts {
    /// SQLITE_BUSY retries of every writer (a transaction tried again).
    pub busy_retries: u64,
    /// Transient writer processes started.
    pub transients: u64,
    /// Writers alive when the victim died, and how many of them then committed, were still
    /// waiting for the lock when stopped, or died of an SQLite error (a violation).
    pub survivor_writers: u64,
    pub survivors_committed_after: u64,
    pub survivors_pending: u64,
    pub writer_errors: u64,
    /// WAL mode: writer processes whose last connection closed cleanly, and of those the ones
    /// that closed alone (the WAL was gone after their close: they checkpointed and deleted it
    /// as the last connection they believed they were).
    #[serde(default)]
    pub closes: u64,
    #[serde(default)]
    pub closes_alone: u64,
}

impl TopologyCounts {
    pub(crate) fn add(&mut self, o: &TopologyCounts) {
        self.busy_retries += o.busy_retries;
        self.transients += o.transients;
        self.survivor_writers += o.survivor_writers;
        self.survivors_committed_after += o.survivors_committed_after;
        self.survivors_pending += o.survivors_pending;
        self.writer_errors += o.writer_errors;
        self.closes += o.closes;
        self.closes_alone += o.closes_alone;
    }
}

/// `summary.json`: the run, and one entry per cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(flatten)]
    pub meta: RunMeta,
    /// Every campaign seed the trials came from (one for a campaign).
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// The run directories a `crashfuzz report` read, in the order given; empty in the summary
    /// a campaign writes itself.
    #[serde(default)]
    pub sources: Vec<SourceRun>,
    /// Wall time of the campaign; in a report of several runs, the sum of theirs (machine time:
    /// shards that ran side by side took about the longest of theirs, listed in `sources`).
    pub duration_s: f64,
    /// Stopped early (Ctrl-C or a harness error; in a report, any source run was, or lost its
    /// last line to a kill): the counts cover the trials that finished.
    pub interrupted: bool,
    /// Every trial record.
    pub trials: u64,
    /// Trials whose crash image was checked.
    pub checked: u64,
    pub inconclusive: u64,
    /// Checked trials with at least one violation.
    pub violating_trials: u64,
    /// Per check, the checked trials it ran on (passed or failed; neither blocked nor absent).
    #[serde(default)]
    pub check_runs: std::collections::BTreeMap<ViolationKind, u64>,
    /// Commits the writers acknowledged, over every trial.
    #[serde(default)]
    pub commits: u64,
    /// Some cell's verdict failed.
    pub failed: bool,
    pub cells: Vec<CellSummary>,
}

impl Summary {
    /// Some cell's verdict failed (regression or silent canary): exit code 1.
    pub fn failed(&self) -> bool {
        self.cells.iter().any(|c| c.verdict.failed())
    }

    /// How many cells got each verdict, in [`VERDICT_ORDER`].
    pub fn verdict_counts(&self) -> Vec<(Verdict, usize)> {
        VERDICT_ORDER.iter().map(|&v| (v, self.cells.iter().filter(|c| c.verdict == v).count())).collect()
    }
}

/// The order verdicts are counted and listed in: the good news first, then the failures by
/// urgency.
pub const VERDICT_ORDER: [Verdict; 4] = [Verdict::Ok, Verdict::Regression, Verdict::NoData, Verdict::SilentCanary];

/// One run directory a report was built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRun {
    /// The directory as given on the command line.
    pub dir: String,
    pub run_id: String,
    pub seed: Option<u64>,
    pub scenario: String,
    /// `I/N` when the run was one shard of a campaign (from its run.json).
    pub shard: Option<String>,
    pub started_at: String,
    pub command: String,
    /// Trial records read from its trials.jsonl.
    pub trials: u64,
    pub duration_s: f64,
    pub interrupted: bool,
    /// The last line of its trials.jsonl was torn (the campaign was killed mid-write) and was
    /// skipped.
    pub torn_last_line: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    pub id: String,
    /// The axes: `journal_mode`, `synchronous`, `fault`, `sigterm`, `checkpoint`, `timing`,
    /// `device`, `fullfsync`, `sqlite` (absent: bundled).
    #[serde(flatten)]
    pub cell: Cell,
    /// The SQLite the cell's writers ran on, as they read it back (absent when no trial got
    /// that far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_sqlite: Option<crate::record::SqliteIdentity>,
    /// Checked trials in which the oracle's build (bundled) called an image damaged and the
    /// writers' build did not: not counted as damage.
    #[serde(default)]
    pub cross_version_trials: u64,
    /// Every record of the cell, inconclusive ones included.
    pub trials: u64,
    pub inconclusive: u64,
    /// Trials whose crash image(s) were checked: `trials - inconclusive`.
    #[serde(default)]
    pub checked: u64,
    /// Distinct checked crash images: one per checked process-crash trial; for a power loss,
    /// the images of each trace that differ from the trace's other images.
    pub crash_states: u64,
    /// Power loss: every image built, duplicates of an earlier image of the same trace
    /// included (0 for the other faults).
    #[serde(default)]
    pub images: u64,
    /// Checked trials with at least one violation.
    pub violating_trials: u64,
    /// Checked trials with some damage kind in some state.
    #[serde(default)]
    pub damaged_trials: u64,
    /// Crash states showing at least one violation (a power-loss trial has several states, so
    /// this is not `violating_trials`).
    #[serde(default)]
    pub violating_states: u64,
    /// Crash states showing at least one damage kind (every kind but lost_ack).
    #[serde(default)]
    pub damaged_states: u64,
    /// Crash states showing each kind (every kind).
    pub violations: BTreeMap<ViolationKind, u64>,
    /// Checked trials showing each kind in some state: for a process crash the same as
    /// `violations`; for a power loss, traces.
    #[serde(default)]
    pub trial_violations: BTreeMap<ViolationKind, u64>,
    /// Wilson 95% upper bound of each kind's rate per checked trial, `trial_violations[kind] /
    /// checked` (1.0 with none checked). Per trial, not per state: the images of one power-loss
    /// trace share its writes, so they are not independent samples, and counting them as such
    /// would overstate the evidence by up to the images per trace.
    pub violation_upper_95: BTreeMap<ViolationKind, f64>,
    pub expectation: ExpectationSummary,
    pub verdict: Verdict,
    /// Fewer than `min_states` distinct crash states were checked: the verdict is `no-data`
    /// unless a forbidden violation was seen anyway.
    pub no_data: bool,
    /// The fewest crash states this cell needed (`--min-states`).
    #[serde(default = "one")]
    pub min_states: u64,
    /// Commits acknowledged by the cell's writers.
    pub commits: u64,
    pub commit_latency_us: LatencySummary,
    pub loadavg_1m: LoadRange,
    /// Median time per trial phase.
    pub timing_ms: TimingMs,
    /// Wall time of all the cell's trials, summed.
    pub trial_time_us: u64,
    pub checkpoints: CheckpointCounts,
    pub shutdowns: ShutdownSummary,
    /// Concurrency under the trial's topology (`[topology]`).
    #[serde(default)]
    pub topology: TopologyCounts,
    /// Up to [`INCONCLUSIVE_EXAMPLES_MAX`] distinct reasons, earliest trial first.
    pub inconclusive_reasons: Vec<String>,
    /// Up to [`FAILURE_EXAMPLES_MAX`] violating trials; forbidden violations first.
    pub failures: Vec<FailureExample>,
    /// When the first trial with a violation finished, in ms since the campaign started (for a
    /// canary: how long the harness took to prove it still has teeth).
    #[serde(default)]
    pub first_violation_ms: Option<u64>,
}

impl CellSummary {
    /// The kinds with a non-zero count at `level`, with their counts.
    pub(crate) fn hits(&self, level: Level) -> Vec<(ViolationKind, u64)> {
        self.violations
            .iter()
            .filter(|&(&k, &n)| n > 0 && self.expectation.level(k) == level)
            .map(|(&k, &n)| (k, n))
            .collect()
    }

    /// One line on why the verdict is what it is, e.g. `regression: integrity 3/40 (forbidden)`.
    pub fn verdict_reason(&self) -> String {
        match self.verdict {
            Verdict::Ok => format!("ok: {} crash states met the expectation", self.crash_states),
            Verdict::Regression => {
                let hits: Vec<String> = self
                    .hits(Level::Forbidden)
                    .iter()
                    .map(|(k, n)| format!("{} {n}/{}", k.as_str(), self.crash_states))
                    .collect();
                format!("regression: {} (forbidden)", hits.join(", "))
            }
            Verdict::NoData => {
                let why = match (self.trials, self.inconclusive_reasons.first()) {
                    (0, _) => "no trial of this cell ran (raise the budget)".to_string(),
                    (_, Some(reason)) if self.inconclusive > 0 => {
                        format!("{} of {} trials inconclusive, e.g. {reason}", self.inconclusive, self.trials)
                    }
                    (_, _) => format!("{} trials", self.trials),
                };
                format!("no-data: {} crash states checked, {} needed; {why}", self.crash_states, self.min_states)
            }
            Verdict::SilentCanary => {
                let required: Vec<&str> = ViolationKind::ALL
                    .iter()
                    .filter(|&&k| self.expectation.level(k) == Level::Required)
                    .map(|k| k.as_str())
                    .collect();
                format!(
                    "silent-canary: no required violation (required: {}) in {} crash states",
                    required.join("|"),
                    self.crash_states
                )
            }
        }
    }

    /// The rate of `kind` as the reports print it, with its bound: `k/n (≤ u%)` over checked
    /// trials, and for a power loss the distinct images beside it (`· k/n img`).
    pub fn rate_text(&self, kind: ViolationKind) -> String {
        let per_trial = rate_with_bound(self.trial_violations.get(&kind).copied().unwrap_or(0), self.checked);
        match self.images {
            0 => per_trial,
            _ => {
                format!("{per_trial} · {}/{} img", self.violations.get(&kind).copied().unwrap_or(0), self.crash_states)
            }
        }
    }

    /// The verdict as a table shows it: `ok (canary fired)`, `**regression**`...
    pub(crate) fn verdict_label(&self, bold: bool) -> String {
        match self.verdict {
            Verdict::Ok if self.expectation.canary => "ok (canary fired)".to_string(),
            Verdict::Ok => "ok".to_string(),
            Verdict::Regression | Verdict::NoData | Verdict::SilentCanary if bold => {
                format!("**{}**", self.verdict.as_str())
            }
            Verdict::Regression | Verdict::NoData | Verdict::SilentCanary => self.verdict.as_str().to_string(),
        }
    }
}

/// A cell's expectation as the summary shows it; `levels` and `source` are the
/// [`Expectation`] itself, so a later `report` can rebuild it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationSummary {
    pub canary: bool,
    /// Every kind.
    pub levels: BTreeMap<ViolationKind, Level>,
    pub describe: String,
    pub source: Vec<String>,
}

impl ExpectationSummary {
    pub(crate) fn of(e: &Expectation) -> ExpectationSummary {
        ExpectationSummary {
            canary: e.is_canary(),
            levels: ViolationKind::ALL.iter().map(|&k| (k, e.level(k))).collect(),
            describe: e.describe(),
            source: e.source.clone(),
        }
    }

    pub fn level(&self, kind: ViolationKind) -> Level {
        self.levels.get(&kind).copied().unwrap_or(Level::Forbidden)
    }

    pub fn expectation(&self) -> Expectation {
        Expectation { levels: self.levels.clone(), source: self.source.clone() }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Medians of [`TrialTiming`](crate::record::TrialTiming), in milliseconds; `None` for a cell without records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimingMs {
    pub setup: Option<f64>,
    pub spawn: Option<f64>,
    pub write: Option<f64>,
    pub kill: Option<f64>,
    pub check: Option<f64>,
    /// The check phase per crash state: a power-loss trial builds and checks several images,
    /// and its check phase (the duplicates' building included) is divided by its distinct ones,
    /// the crash states it checked.
    #[serde(default)]
    pub check_per_state: Option<f64>,
    /// The floor under the check: SQLite's own `PRAGMA integrity_check` on one image of the
    /// trial (FTS5 tables included), as the oracle ran it. `check_per_state / integrity_check`
    /// is what the rest of the oracle costs on top.
    #[serde(default)]
    pub integrity_check: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCounts {
    /// Explicit checkpoints the writers ran.
    pub count: u64,
    /// Of which SQLite reported `busy` (could not complete): "no error" is not "checkpointed".
    pub busy: u64,
    /// Of which were a graceful writer's shutdown checkpoint.
    pub on_shutdown: u64,
}

/// What graceful writers did between SIGTERM and death.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownSummary {
    /// Graceful writers (shutdown records).
    pub writers: u64,
    pub started: u64,
    pub checkpoint_started: u64,
    pub checkpoint_done: u64,
    /// Exited by themselves within the grace period.
    pub graceful_exits: u64,
    /// SIGKILLed after the shutdown checkpoint began and before it completed: the case the
    /// proposed fix walks into under load.
    pub killed_mid_checkpoint: u64,
    /// SIGTERM to exit, for the graceful exits.
    pub exit_us: LatencySummary,
}

/// A check's detail as one line of at most 300 characters.
pub(crate) fn one_line(detail: &str) -> String {
    let line = detail.lines().next().unwrap_or("");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// One violating trial, with what is needed to look at it again.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FailureExample {
    pub trial: u64,
    pub replay: Option<String>,
    pub kept_failure: Option<String>,
    pub violations: Vec<ViolationKind>,
    /// What the first failed check said (cut to a line), when the trial recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testkit::*;

    #[test]
    fn summary_json_has_the_documented_keys_and_round_trips() {
        let s = sample_summary();
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "run_id",
            "seed",
            "scenario",
            "scenario_source",
            "started_at",
            "crashfuzz_version",
            "sqlite_version",
            "command",
            "seeds",
            "sources",
            "duration_s",
            "interrupted",
            "trials",
            "checked",
            "inconclusive",
            "violating_trials",
            "failed",
            "cells",
        ] {
            assert!(v.get(key).is_some(), "top-level {key} missing");
        }
        let c = &v["cells"][0];
        for key in [
            "id",
            "journal_mode",
            "synchronous",
            "fault",
            "sigterm",
            "checkpoint",
            "timing",
            "trials",
            "inconclusive",
            "crash_states",
            "violating_trials",
            "violating_states",
            "damaged_states",
            "violations",
            "violation_upper_95",
            "expectation",
            "verdict",
            "no_data",
            "commits",
            "commit_latency_us",
            "loadavg_1m",
            "timing_ms",
            "checkpoints",
            "shutdowns",
            "inconclusive_reasons",
            "failures",
        ] {
            assert!(c.get(key).is_some(), "cell {key} missing");
        }
        assert_eq!(c["id"], "wal/normal/kill-graceful/auto-checkpoint");
        assert_eq!(c["journal_mode"], "wal");
        assert_eq!(c["sigterm"], "graceful");
        assert_eq!(v["cells"][1]["sigterm"], serde_json::Value::Null);
        assert_eq!(c["verdict"], "ok");
        assert_eq!(v["cells"][2]["verdict"], "regression");
        for kind in ViolationKind::ALL {
            assert!(c["violations"][kind.as_str()].is_u64());
            assert!(c["violation_upper_95"][kind.as_str()].is_f64());
            assert!(c["expectation"]["levels"][kind.as_str()].is_string());
        }
        assert_eq!(c["expectation"]["canary"], false);
        assert_eq!(v["cells"][1]["expectation"]["canary"], true);
        assert_eq!(c["expectation"]["describe"], "forbidden: all");
        for key in ["count", "p50", "p99", "p999", "max"] {
            assert!(c["commit_latency_us"][key].is_u64(), "{key}");
        }
        assert!(c["loadavg_1m"]["min"].is_f64() && c["loadavg_1m"]["max"].is_f64());
        assert!(c["timing_ms"]["check"].is_f64());
        let back: Summary = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.cells[0].expectation.expectation(), crate::fault::builtin(&wal()));
    }
}

//! Reports: the [`Aggregator`] that folds trial records into per-cell counts, the [`Summary`]
//! it produces (`summary.json`), and its renderings: `summary.md` for a human, `junit.xml` for
//! CI (one test case per cell), the SVG charts ([`crate::charts`]) and the console
//! matrix printed at the end of a campaign. `crashfuzz report` ([`crate::merge`]) rebuilds
//! the same files from one or several run directories.
//!
//! **Architecture invariant: a summary is a function of the trial records alone.** The
//! aggregator holds nothing that a [`TrialRecord`] does not carry, and every piece of its state
//! is order-independent (counters, min/max, HdrHistograms, examples chosen by trial index), so
//! `Aggregator::new(cells)` plus `add` of every line of one or several `trials.jsonl` rebuilds the
//! same summary the live campaign wrote, whatever order the records arrive in; two aggregators
//! of disjoint records [`merge`](Aggregator::merge) into the one that saw both.
//!
//! Nothing here judges a cell by itself: the verdict is [`expect::verdict`] of the counts. No
//! percentile or XML is computed by hand (hdrhistogram, quick-junit). Report files are written
//! to a temporary name, fsynced and renamed, so a reader never sees half a report.

use crate::base::stats::{self, LatencySummary};
use crate::charts;
use crate::expect::{self, Expectation, Level, Verdict};
use crate::matrix::Cell;
use crate::record::TrialOutcome;
use crate::record::TrialRecord;
use crate::record::TrialTiming;
use crate::record::checks::CheckOutcome;
use crate::record::checks::ViolationKind;
use hdrhistogram::Histogram;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

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
}

fn one() -> u64 {
    1
}

// ------------------------------------------------------------------------------- aggregation

/// Folds trial records into per-cell statistics; see the module doc for why it may only hold
/// what the records carry.
#[derive(Clone, Debug)]
pub struct Aggregator {
    cells: Vec<CellAgg>,
    index: HashMap<String, usize>,
    trials: u64,
    violating_trials: u64,
}

/// One cell's running totals.
#[derive(Clone, Debug)]
struct CellAgg {
    cell: Cell,
    id: String,
    expectation: Expectation,
    trials: u64,
    inconclusive: u64,
    /// Distinct checked crash images: one per checked process-crash trial, the images of a
    /// power-loss trace that differ from each other (a duplicate is not a new state).
    crash_states: u64,
    /// Power loss: every image built, duplicates included.
    images: u64,
    violating_trials: u64,
    /// Checked trials showing each kind in some state, and some damage kind: the numerators of
    /// the bounds (the images of one trace are not independent trials).
    trial_violations: BTreeMap<ViolationKind, u64>,
    damaged_trials: u64,
    /// Crash states showing at least one kind.
    violating_states: u64,
    /// Crash states showing at least one damage kind (`ViolationKind::is_damage`).
    damaged_states: u64,
    /// Crash states showing each kind; all eight kinds are always present.
    violations: BTreeMap<ViolationKind, u64>,
    commits: u64,
    commit_latency_us: Histogram<u64>,
    /// (min, max) over the records whose load average was known.
    loadavg_1m: Option<(f64, f64)>,
    phase_us: PhaseHistograms,
    trial_time_us: u64,
    checkpoints: CheckpointCounts,
    shutdowns: ShutdownTotals,
    /// Concurrency: SQLITE_BUSY retries, transient processes, and the writers that had to
    /// write on through a victim's death.
    topology: TopologyCounts,
    shutdown_exit_us: Histogram<u64>,
    /// Distinct reason → lowest trial index that gave it; at most
    /// [`INCONCLUSIVE_EXAMPLES_MAX`] entries, those with the lowest indices.
    inconclusive_reasons: BTreeMap<String, u64>,
    /// The [`FAILURE_EXAMPLES_MAX`] smallest examples: trials with a forbidden violation first
    /// (`false` sorts first), then by trial index.
    failures: BTreeSet<(bool, FailureExample)>,
    /// When the first trial with a violation finished, in ms since its campaign started.
    first_violation_ms: Option<u64>,
}

/// Where trials' wall time went, one histogram (µs) per phase of [`TrialTiming`]. Histograms
/// rather than lists of values: a campaign of days must not grow the driver without bound.
#[derive(Clone, Debug)]
struct PhaseHistograms {
    setup: Histogram<u64>,
    spawn: Histogram<u64>,
    write: Histogram<u64>,
    kill: Histogram<u64>,
    check: Histogram<u64>,
}

impl PhaseHistograms {
    fn new() -> PhaseHistograms {
        PhaseHistograms {
            setup: stats::new_latency_histogram(),
            spawn: stats::new_latency_histogram(),
            write: stats::new_latency_histogram(),
            kill: stats::new_latency_histogram(),
            check: stats::new_latency_histogram(),
        }
    }

    /// An inconclusive trial never reaches the checks: its `check` of 0 is not a measurement
    /// and would drag the median down, so only checked trials count there.
    fn record(&mut self, t: &TrialTiming, checked: bool) {
        self.setup.saturating_record(t.setup);
        self.spawn.saturating_record(t.spawn);
        self.write.saturating_record(t.write);
        self.kill.saturating_record(t.kill);
        if checked {
            self.check.saturating_record(t.check);
        }
    }

    fn merge(&mut self, other: &PhaseHistograms) {
        stats::merge_histogram(&mut self.setup, &other.setup);
        stats::merge_histogram(&mut self.spawn, &other.spawn);
        stats::merge_histogram(&mut self.write, &other.write);
        stats::merge_histogram(&mut self.kill, &other.kill);
        stats::merge_histogram(&mut self.check, &other.check);
    }

    fn medians_ms(&self) -> TimingMs {
        let ms = |h: &Histogram<u64>| stats::median(h).map(|us| us as f64 / 1000.0);
        TimingMs {
            setup: ms(&self.setup),
            spawn: ms(&self.spawn),
            write: ms(&self.write),
            kill: ms(&self.kill),
            check: ms(&self.check),
        }
    }
}

/// Counters over the shutdown records of graceful writers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ShutdownTotals {
    writers: u64,
    started: u64,
    checkpoint_started: u64,
    checkpoint_done: u64,
    graceful_exits: u64,
    killed_mid_checkpoint: u64,
}

impl Aggregator {
    /// An aggregator for these cells, in this order (the order of the summary's `cells`).
    pub fn new(cells: Vec<(Cell, Expectation)>) -> Self {
        let mut index = HashMap::new();
        let cells: Vec<CellAgg> = cells
            .into_iter()
            .enumerate()
            .map(|(i, (cell, expectation))| {
                let id = cell.id();
                let previous = index.insert(id.clone(), i);
                assert!(previous.is_none(), "cell {id} appears twice in the matrix (harness bug)");
                CellAgg::new(cell, id, expectation)
            })
            .collect();
        Aggregator { cells, index, trials: 0, violating_trials: 0 }
    }

    /// Counts one trial. A record of a cell this aggregator does not know is a harness bug.
    pub fn add(&mut self, rec: &TrialRecord) {
        let Some(&i) = self.index.get(&rec.cell) else {
            panic!(
                "trial {} names cell {:?}, which is not in this campaign's matrix (harness bug)",
                rec.trial, rec.cell
            )
        };
        let violating = self.cells[i].add(rec);
        self.trials += 1;
        self.violating_trials += u64::from(violating);
    }

    /// Adds everything `other` saw, as if its records had been added here. Both must have been
    /// built for cells with the same ids and expectations (a caller merging runs checks that
    /// first: a mismatch here is a harness bug).
    pub fn merge(&mut self, other: &Aggregator) {
        for theirs in &other.cells {
            let Some(&i) = self.index.get(&theirs.id) else {
                panic!("merging a run with cell {}, which is not in this matrix (harness bug)", theirs.id)
            };
            self.cells[i].merge(theirs);
        }
        self.trials += other.trials;
        self.violating_trials += other.violating_trials;
    }

    /// Records added.
    pub fn trials(&self) -> u64 {
        self.trials
    }

    /// Checked trials with at least one violation.
    pub fn violating_trials(&self) -> u64 {
        self.violating_trials
    }

    pub fn summary(&self, meta: &RunMeta, duration_s: f64, interrupted: bool) -> Summary {
        let cells: Vec<CellSummary> = self.cells.iter().map(|c| c.summary(meta.min_states)).collect();
        Summary {
            meta: meta.clone(),
            seeds: meta.seed.into_iter().collect(),
            sources: Vec::new(),
            duration_s,
            interrupted,
            trials: self.trials,
            checked: cells.iter().map(|c| c.trials - c.inconclusive).sum(),
            inconclusive: cells.iter().map(|c| c.inconclusive).sum(),
            violating_trials: self.violating_trials,
            failed: cells.iter().any(|c| c.verdict.failed()),
            cells,
        }
    }
}

impl CellAgg {
    fn new(cell: Cell, id: String, expectation: Expectation) -> CellAgg {
        CellAgg {
            cell,
            id,
            expectation,
            trials: 0,
            inconclusive: 0,
            crash_states: 0,
            images: 0,
            violating_trials: 0,
            trial_violations: ViolationKind::ALL.iter().map(|&k| (k, 0)).collect(),
            damaged_trials: 0,
            violating_states: 0,
            damaged_states: 0,
            violations: ViolationKind::ALL.iter().map(|&k| (k, 0)).collect(),
            commits: 0,
            commit_latency_us: stats::new_latency_histogram(),
            loadavg_1m: None,
            phase_us: PhaseHistograms::new(),
            trial_time_us: 0,
            checkpoints: CheckpointCounts::default(),
            shutdowns: ShutdownTotals::default(),
            topology: TopologyCounts::default(),
            shutdown_exit_us: stats::new_latency_histogram(),
            inconclusive_reasons: BTreeMap::new(),
            failures: BTreeSet::new(),
            first_violation_ms: None,
        }
    }

    /// Counts one record of this cell; returns whether it is a violating trial.
    fn add(&mut self, rec: &TrialRecord) -> bool {
        self.trials += 1;
        // What was measured counts whatever the outcome: an inconclusive trial still committed
        // (and timed) what it committed.
        self.commits += rec.commits;
        let latency = stats::decode_histogram(&rec.commit_latency_hist).unwrap_or_else(|e| {
            panic!("trial {} ({}): commit_latency_hist: {e} (harness bug: the trial wrote it)", rec.trial, rec.cell)
        });
        stats::merge_histogram(&mut self.commit_latency_us, &latency);
        if !rec.loadavg_1m.is_nan() {
            self.add_loadavg(Some((rec.loadavg_1m, rec.loadavg_1m)));
        }
        let checked = match &rec.outcome {
            TrialOutcome::Checked => true,
            TrialOutcome::Inconclusive { .. } => false,
        };
        self.phase_us.record(&rec.timing_us, checked);
        let t = &rec.timing_us;
        self.trial_time_us += t.setup + t.spawn + t.write + t.kill + t.check;
        for c in &rec.checkpoints {
            self.checkpoints.count += 1;
            self.checkpoints.busy += u64::from(c.busy != 0);
            self.checkpoints.on_shutdown += u64::from(c.on_shutdown);
        }
        self.topology.busy_retries += rec.busy_retries;
        self.topology.transients += u64::from(rec.transients);
        for s in &rec.survivors {
            let t = &mut self.topology;
            t.survivor_writers += u64::from(s.alive_at_victim_death);
            t.survivors_committed_after += u64::from(s.alive_at_victim_death && s.commits_after_victim_death > 0);
            t.survivors_pending += u64::from(
                s.alive_at_victim_death && s.commits_after_victim_death == 0 && !s.finished && s.error.is_none(),
            );
            t.writer_errors += u64::from(s.error.is_some());
        }
        for s in &rec.shutdowns {
            let totals = &mut self.shutdowns;
            totals.writers += 1;
            totals.started += u64::from(s.started);
            totals.checkpoint_started += u64::from(s.checkpoint_started);
            totals.checkpoint_done += u64::from(s.checkpoint_done);
            totals.killed_mid_checkpoint += u64::from(s.killed_mid_checkpoint);
            if let Some(us) = s.duration_us {
                totals.graceful_exits += 1;
                self.shutdown_exit_us.saturating_record(us);
            }
        }

        match &rec.outcome {
            TrialOutcome::Inconclusive { reason } => {
                // Neither a pass nor a failure, and not a crash state: whatever `violations`
                // holds did not come from a judged image.
                self.inconclusive += 1;
                self.add_reason(reason, rec.trial);
                false
            }
            TrialOutcome::Checked => {
                // A kind counts once per distinct crash state (a power-loss trial has several),
                // however many of its checks failed, and once per trial in the trial counts.
                let mut kinds: BTreeSet<ViolationKind> = BTreeSet::new();
                self.images += rec.images.len() as u64;
                for state in rec.crash_states() {
                    self.crash_states += 1;
                    self.violating_states += u64::from(!state.is_empty());
                    self.damaged_states += u64::from(state.iter().any(|k| k.is_damage()));
                    let state: BTreeSet<ViolationKind> = state.iter().copied().collect();
                    for &k in &state {
                        *self.violations.entry(k).or_insert(0) += 1;
                    }
                    kinds.extend(state);
                }
                for &k in &kinds {
                    *self.trial_violations.entry(k).or_insert(0) += 1;
                }
                self.damaged_trials += u64::from(kinds.iter().any(|k| k.is_damage()));
                if kinds.is_empty() {
                    return false;
                }
                self.violating_trials += 1;
                let finished_ms = rec.started_ms + (t.setup + t.spawn + t.write + t.kill + t.check) / 1000;
                self.first_violation_ms = Some(self.first_violation_ms.map_or(finished_ms, |m| m.min(finished_ms)));
                let example = FailureExample {
                    trial: rec.trial,
                    violations: kinds.into_iter().collect(),
                    replay: rec.replay.clone(),
                    kept_failure: rec.kept_failure.clone(),
                    detail: rec.checks.iter().find_map(|c| match &c.outcome {
                        CheckOutcome::Violation { detail } => Some(one_line(detail)),
                        CheckOutcome::Pass | CheckOutcome::Blocked { .. } | CheckOutcome::CouldNotRun { .. } => None,
                    }),
                };
                self.add_failure(example);
                true
            }
        }
    }

    fn merge(&mut self, other: &CellAgg) {
        assert_eq!(
            self.expectation, other.expectation,
            "merging cell {} with a different expectation (harness bug: callers check)",
            self.id
        );
        self.trials += other.trials;
        self.inconclusive += other.inconclusive;
        self.crash_states += other.crash_states;
        self.images += other.images;
        self.violating_trials += other.violating_trials;
        for (&k, &n) in &other.trial_violations {
            *self.trial_violations.entry(k).or_insert(0) += n;
        }
        self.damaged_trials += other.damaged_trials;
        self.violating_states += other.violating_states;
        self.damaged_states += other.damaged_states;
        for (&k, &n) in &other.violations {
            *self.violations.entry(k).or_insert(0) += n;
        }
        self.commits += other.commits;
        stats::merge_histogram(&mut self.commit_latency_us, &other.commit_latency_us);
        self.add_loadavg(other.loadavg_1m);
        self.phase_us.merge(&other.phase_us);
        self.trial_time_us += other.trial_time_us;
        self.checkpoints.count += other.checkpoints.count;
        self.checkpoints.busy += other.checkpoints.busy;
        self.checkpoints.on_shutdown += other.checkpoints.on_shutdown;
        let (mine, theirs) = (&mut self.shutdowns, &other.shutdowns);
        mine.writers += theirs.writers;
        mine.started += theirs.started;
        mine.checkpoint_started += theirs.checkpoint_started;
        mine.checkpoint_done += theirs.checkpoint_done;
        mine.graceful_exits += theirs.graceful_exits;
        mine.killed_mid_checkpoint += theirs.killed_mid_checkpoint;
        self.topology.add(&other.topology);
        stats::merge_histogram(&mut self.shutdown_exit_us, &other.shutdown_exit_us);
        for (reason, &trial) in &other.inconclusive_reasons {
            self.add_reason(reason, trial);
        }
        for (_, example) in &other.failures {
            self.add_failure(example.clone());
        }
        self.first_violation_ms = match (self.first_violation_ms, other.first_violation_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    fn add_loadavg(&mut self, range: Option<(f64, f64)>) {
        let Some((lo, hi)) = range else { return };
        self.loadavg_1m = Some(match self.loadavg_1m {
            None => (lo, hi),
            Some((min, max)) => (min.min(lo), max.max(hi)),
        });
    }

    /// Keeps the distinct reasons first seen at the lowest trial indices. Dropping the others
    /// is safe: a dropped reason can only come back with a lower index, and is then re-added.
    fn add_reason(&mut self, reason: &str, trial: u64) {
        let first = self.inconclusive_reasons.entry(reason.to_string()).or_insert(trial);
        *first = (*first).min(trial);
        if self.inconclusive_reasons.len() > INCONCLUSIVE_EXAMPLES_MAX {
            let last = self
                .inconclusive_reasons
                .iter()
                .max_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)))
                .map(|(reason, _)| reason.clone())
                .expect("the map is not empty");
            self.inconclusive_reasons.remove(&last);
        }
    }

    /// Keeps the most telling examples: a trial that broke a forbidden kind explains a
    /// regression; in a canary the required violations are the expected ones.
    fn add_failure(&mut self, example: FailureExample) {
        let forbidden = example.violations.iter().any(|&k| self.expectation.level(k) == Level::Forbidden);
        self.failures.insert((!forbidden, example));
        if self.failures.len() > FAILURE_EXAMPLES_MAX {
            self.failures.pop_last();
        }
    }

    fn summary(&self, min_states: u64) -> CellSummary {
        let kinds = ViolationKind::ALL;
        let violations: BTreeMap<ViolationKind, u64> =
            kinds.iter().map(|&k| (k, self.violations.get(&k).copied().unwrap_or(0))).collect();
        let trial_violations: BTreeMap<ViolationKind, u64> =
            kinds.iter().map(|&k| (k, self.trial_violations.get(&k).copied().unwrap_or(0))).collect();
        let checked = self.trials - self.inconclusive;
        let violation_upper_95 = trial_violations.iter().map(|(&k, &n)| (k, stats::wilson_upper(n, checked))).collect();
        let mut reasons: Vec<(&String, &u64)> = self.inconclusive_reasons.iter().collect();
        reasons.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        CellSummary {
            id: self.id.clone(),
            cell: self.cell,
            trials: self.trials,
            inconclusive: self.inconclusive,
            checked,
            crash_states: self.crash_states,
            images: self.images,
            violating_trials: self.violating_trials,
            damaged_trials: self.damaged_trials,
            violating_states: self.violating_states,
            damaged_states: self.damaged_states,
            verdict: expect::verdict(&self.expectation, &violations, self.crash_states, min_states),
            no_data: self.crash_states < min_states.max(1),
            min_states: min_states.max(1),
            violations,
            trial_violations,
            violation_upper_95,
            expectation: ExpectationSummary::of(&self.expectation),
            commits: self.commits,
            commit_latency_us: LatencySummary::of(&self.commit_latency_us),
            loadavg_1m: LoadRange { min: self.loadavg_1m.map(|r| r.0), max: self.loadavg_1m.map(|r| r.1) },
            timing_ms: self.phase_us.medians_ms(),
            trial_time_us: self.trial_time_us,
            checkpoints: self.checkpoints,
            shutdowns: ShutdownSummary {
                writers: self.shutdowns.writers,
                started: self.shutdowns.started,
                checkpoint_started: self.shutdowns.checkpoint_started,
                checkpoint_done: self.shutdowns.checkpoint_done,
                graceful_exits: self.shutdowns.graceful_exits,
                killed_mid_checkpoint: self.shutdowns.killed_mid_checkpoint,
                exit_us: LatencySummary::of(&self.shutdown_exit_us),
            },
            topology: self.topology,
            inconclusive_reasons: reasons.into_iter().map(|(r, _)| r.clone()).collect(),
            failures: self.failures.iter().map(|(_, e)| e.clone()).collect(),
            first_violation_ms: self.first_violation_ms,
        }
    }
}

// ------------------------------------------------------------------------------- summary.json

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
}

impl TopologyCounts {
    fn add(&mut self, o: &TopologyCounts) {
        self.busy_retries += o.busy_retries;
        self.transients += o.transients;
        self.survivor_writers += o.survivor_writers;
        self.survivors_committed_after += o.survivors_committed_after;
        self.survivors_pending += o.survivors_pending;
        self.writer_errors += o.writer_errors;
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
    /// The axes: `journal_mode`, `synchronous`, `fault`, `sigterm`, `checkpoint`, `timing`.
    #[serde(flatten)]
    pub cell: Cell,
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
    fn hits(&self, level: Level) -> Vec<(ViolationKind, u64)> {
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
    fn verdict_label(&self, bold: bool) -> String {
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
    /// All eight kinds.
    pub levels: BTreeMap<ViolationKind, Level>,
    pub describe: String,
    pub source: Vec<String>,
}

impl ExpectationSummary {
    fn of(e: &Expectation) -> ExpectationSummary {
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

/// Medians of [`TrialTiming`], in milliseconds; `None` for a cell without records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimingMs {
    pub setup: Option<f64>,
    pub spawn: Option<f64>,
    pub write: Option<f64>,
    pub kill: Option<f64>,
    pub check: Option<f64>,
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
fn one_line(detail: &str) -> String {
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

// ------------------------------------------------------------------------------- files

/// Writes `summary.json`, `summary.md`, `junit.xml` and the charts ([`charts::CHARTS`]) into
/// `run_dir`, each to a temporary name, fsynced, then renamed over the final name (and the
/// directory fsynced), so a reader or a crash never sees half a report. The charts are rendered
/// before anything is written: a chart that cannot be drawn leaves the old reports in place.
pub fn write_reports(run_dir: &Path, summary: &Summary) -> std::io::Result<()> {
    let mut json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    json.push('\n');
    let svgs = charts::render_all(summary)?;
    write_atomically(run_dir, "summary.json", json.as_bytes())?;
    write_atomically(run_dir, "summary.md", markdown(summary).as_bytes())?;
    write_atomically(run_dir, "junit.xml", junit_xml(summary)?.as_bytes())?;
    for (name, svg) in &svgs {
        write_atomically(run_dir, name, svg.as_bytes())?;
    }
    std::fs::File::open(run_dir)?.sync_all()
}

/// Writes `name` in `dir` whole or not at all: a temporary file, fsynced, renamed over it. A
/// failure (a full disk) removes the temporary file rather than leave it behind.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, dir.join(name))) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

// ------------------------------------------------------------------------------- rendering

/// Column header of each kind in the markdown table (the legend spells them out).
fn short(kind: ViolationKind) -> &'static str {
    match kind {
        ViolationKind::Open => "open",
        ViolationKind::Integrity => "integ",
        ViolationKind::Fts => "fts",
        ViolationKind::LostAck => "lost",
        ViolationKind::Phantom => "phant",
        ViolationKind::Atomicity => "atom",
        ViolationKind::Prefix => "prefix",
        ViolationKind::ReopenWrite => "reopen",
        ViolationKind::WriterCrash => "crash",
    }
}

/// A rate as a percentage with about two significant figures: `7.9%`, `19%`, `0.38%`.
fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    match p {
        p if p >= 10.0 => format!("{p:.0}%"),
        p if p >= 1.0 => format!("{p:.1}%"),
        p if p >= 0.1 => format!("{p:.2}%"),
        p => format!("{p:.3}%"),
    }
}

/// `k/n (≤ u%)`, u the Wilson 95% upper bound; `–` when nothing was checked.
pub fn rate_with_bound(k: u64, n: u64) -> String {
    if n == 0 {
        return "–".to_string();
    }
    format!("{k}/{n} (≤ {})", percent(stats::wilson_upper(k, n)))
}

/// e.g. `forbid all`, `canary (integ, fts, atom)`, `allow all`. No `|`: it would split a
/// markdown table cell.
fn short_expectation(e: &ExpectationSummary) -> String {
    let of = |want: Level| -> Vec<&'static str> {
        ViolationKind::ALL.iter().filter(|&&k| e.level(k) == want).map(|&k| short(k)).collect()
    };
    let list =
        |kinds: Vec<&str>| if kinds.len() == ViolationKind::ALL.len() { "all".to_string() } else { kinds.join(", ") };
    let (required, forbidden) = (of(Level::Required), of(Level::Forbidden));
    let mut parts = Vec::new();
    if !required.is_empty() {
        parts.push(format!("canary ({})", list(required)));
    }
    if !forbidden.is_empty() {
        parts.push(format!("forbid {}", list(forbidden)));
    }
    if parts.is_empty() {
        parts.push("allow all".to_string());
    }
    parts.join("; ")
}

fn verdict_counts_line(summary: &Summary) -> String {
    let parts: Vec<String> = summary
        .verdict_counts()
        .into_iter()
        .filter(|&(v, n)| n > 0 || v == Verdict::Ok)
        .map(|(v, n)| format!("{n} {}", v.as_str()))
        .collect();
    format!("{} cells: {}", summary.cells.len(), parts.join(", "))
}

/// `seed 7`, or `seeds 7, 9` for a report merged from campaigns of different seeds.
fn seeds_text(summary: &Summary) -> String {
    match (summary.meta.seed, summary.seeds.as_slice()) {
        (Some(seed), _) => format!("seed {seed}"),
        (None, []) => "no seed".to_string(),
        (None, seeds) => {
            format!("seeds {}", seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
        }
    }
}

fn latency_pair(l: &LatencySummary) -> String {
    match (l.p50, l.p99) {
        (Some(p50), Some(p99)) => format!("{p50} / {p99}"),
        (None, _) | (_, None) => "–".to_string(),
    }
}

/// `summary.md`: a header line, one table row per cell, the failures, a legend.
pub fn markdown(summary: &Summary) -> String {
    let m = &summary.meta;
    let mut out = String::new();
    let verdict = if summary.failed() { "FAILED" } else { "ok" };
    let _ = writeln!(out, "# crashfuzz: {}\n", m.scenario);
    let merged = summary.sources.len() > 1;
    let _ = writeln!(
        out,
        "**verdict: {verdict}** ({}) · {} trials ({} checked, {} inconclusive) · {} · {:.1} s{} · \
         SQLite {} · crashfuzz {}{}\n",
        verdict_counts_line(summary),
        summary.trials,
        summary.checked,
        summary.inconclusive,
        seeds_text(summary),
        summary.duration_s,
        if merged { format!(" summed over {} runs", summary.sources.len()) } else { String::new() },
        m.sqlite_version,
        m.crashfuzz_version,
        if summary.interrupted { " · **interrupted**: only the trials that finished" } else { "" },
    );
    if merged {
        let _ = writeln!(
            out,
            "Merged from {} runs by `{}`; the first started {}.\n",
            summary.sources.len(),
            m.command,
            m.started_at
        );
        let _ = writeln!(out, "| run directory | run id | scenario | shard | seed | trials | duration |");
        let _ = writeln!(out, "|---|---|---|---|--:|--:|--:|");
        for r in &summary.sources {
            let mut notes = Vec::new();
            if r.interrupted {
                notes.push("interrupted");
            }
            if r.torn_last_line {
                notes.push("torn last line skipped");
            }
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} | {} | {}{} | {:.1} s |",
                r.dir,
                r.run_id,
                r.scenario,
                r.shard.as_deref().unwrap_or("–"),
                r.seed.map_or_else(|| "–".to_string(), |s| s.to_string()),
                r.trials,
                if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) },
                r.duration_s,
            );
        }
        let _ = writeln!(out);
    } else {
        let _ = writeln!(
            out,
            "Run `{}` started {} from `{}`: `{}`\n",
            m.run_id, m.started_at, m.scenario_source, m.command
        );
    }

    let kinds: Vec<&str> = ViolationKind::ALL.iter().map(|&k| short(k)).collect();
    let _ = writeln!(
        out,
        "| cell | trials | crash states | {} | expectation | verdict | commit p50 / p99 µs |",
        kinds.join(" | ")
    );
    let _ = writeln!(out, "|---|--:|--:|{}---|---|--:|", "--:|".repeat(kinds.len()));
    for c in &summary.cells {
        let rates: Vec<String> = ViolationKind::ALL
            .iter()
            .map(|&k| {
                let text = c.rate_text(k);
                let seen = c.violations.get(&k).copied().unwrap_or(0) > 0;
                if seen && c.expectation.level(k) == Level::Forbidden { format!("**{text}**") } else { text }
            })
            .collect();
        let trials = match c.inconclusive {
            0 => c.trials.to_string(),
            n => format!("{} ({n} inconcl.)", c.trials),
        };
        let states = match c.images {
            0 => c.crash_states.to_string(),
            images => format!("{} of {images} img", c.crash_states),
        };
        let _ = writeln!(
            out,
            "| `{}` | {trials} | {states} | {} | {} | {} | {} |",
            c.id,
            rates.join(" | "),
            short_expectation(&c.expectation),
            c.verdict_label(true),
            latency_pair(&c.commit_latency_us),
        );
    }

    let _ = writeln!(out, "\n## Failures\n");
    let failing: Vec<&CellSummary> = summary.cells.iter().filter(|c| c.verdict.failed()).collect();
    if failing.is_empty() {
        let _ = writeln!(out, "None: every cell met its expectation.");
    }
    for c in failing {
        let _ = writeln!(out, "- `{}`: {}", c.id, c.verdict_reason());
        for f in &c.failures {
            let kinds: Vec<&str> = f.violations.iter().map(|k| k.as_str()).collect();
            let replay = f.replay.as_deref().map_or_else(|| "no replay line".to_string(), |r| format!("`{r}`"));
            let _ = writeln!(out, "  - trial {} ({}): {replay}", f.trial, kinds.join(", "));
            if let Some(detail) = &f.detail {
                let _ = writeln!(out, "    {}: {detail}", f.violations.first().map_or("check", |k| k.as_str()));
            }
        }
    }
    let inconclusive: Vec<&CellSummary> = summary.cells.iter().filter(|c| c.inconclusive > 0).collect();
    if !inconclusive.is_empty() {
        let _ = writeln!(out, "\n## Inconclusive trials\n");
        for c in inconclusive {
            let _ = writeln!(
                out,
                "- `{}`: {} of {}, e.g. {}",
                c.id,
                c.inconclusive,
                c.trials,
                c.inconclusive_reasons.join("; ")
            );
        }
    }

    let _ = writeln!(out, "\n## Charts\n");
    for (name, what) in charts::CHARTS {
        let _ = writeln!(out, "- [{name}]({name}): {what}");
    }

    let _ = writeln!(out, "\n## Legend\n");
    let _ = writeln!(
        out,
        "- `k/n (≤ u%)`: k of n checked trials showed the violation; u is the Wilson 95% upper bound on its \
         rate (0/45 means ≤ 7.9%, not 0%). A process crash leaves one crash state per trial. A power-loss \
         trial (a trace) yields several images; `· k/n img` counts the distinct ones (an image equal to an \
         earlier one of its trace is the same state, counted once), but the bound is taken over traces: \
         the images of one trace share its writes and are not independent samples. **Bold**: forbidden \
         and seen."
    );
    let _ = writeln!(
        out,
        "- Verdicts: `ok` met the expectation; `regression` a forbidden violation happened; `no-data` fewer \
         crash states were checked than the run demands (`--min-states`, default 1: every trial \
         inconclusive, or none ran), so the cell proves nothing and fails the run; `silent-canary` a \
         positive control found none of its required violations, so the harness may have lost its teeth."
    );
    let _ = writeln!(
        out,
        "- Kinds: open, integ(rity_check), fts, lost (acknowledged commit lost), phant(om), atom(icity), \
         prefix (hole in a writer's sequence), reopen (write after recovery), crash (a writer died of \
         something crashfuzz did not send: `writer_crash`). Inconclusive trials are not crash states."
    );
    out
}

/// `junit.xml`: one suite named after the scenario, one test case per cell; a failed verdict is a
/// `<failure>` whose message says why and whose text holds the replay lines.
pub fn junit_xml(summary: &Summary) -> std::io::Result<String> {
    let m = &summary.meta;
    let mut report = Report::new("crashfuzz");
    let mut suite = TestSuite::new(m.scenario.as_str());
    if let Ok(started) = chrono::DateTime::parse_from_rfc3339(&m.started_at) {
        report.set_timestamp(started);
        suite.set_timestamp(started);
    }
    if let Ok(d) = Duration::try_from_secs_f64(summary.duration_s) {
        report.set_time(d);
        suite.set_time(d);
    }
    suite.add_properties([
        Property::new("run_id", m.run_id.as_str()),
        Property::new("seed", summary.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
        Property::new("scenario_source", m.scenario_source.as_str()),
        Property::new("sqlite_version", m.sqlite_version.as_str()),
        Property::new("crashfuzz_version", m.crashfuzz_version.as_str()),
        Property::new("command", m.command.as_str()),
        Property::new("interrupted", summary.interrupted.to_string()),
    ]);
    let classname = format!("crashfuzz.{}", m.scenario);
    for c in &summary.cells {
        let status = match c.verdict {
            Verdict::Ok => TestCaseStatus::success(),
            Verdict::Regression | Verdict::NoData | Verdict::SilentCanary => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(c.verdict_reason()).set_type(c.verdict.as_str());
                let replays: Vec<String> = c
                    .failures
                    .iter()
                    .map(|f| format!("trial {}: {}", f.trial, f.replay.as_deref().unwrap_or("no replay line")))
                    .collect();
                if !replays.is_empty() {
                    status.set_description(replays.join("\n"));
                }
                status
            }
        };
        let mut case = TestCase::new(c.id.as_str(), status);
        case.set_classname(classname.as_str()).set_time(Duration::from_micros(c.trial_time_us));
        case.set_system_out(cell_counts_text(c));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string().map_err(std::io::Error::other)
}

/// The counts of a cell as plain text (junit's system-out).
fn cell_counts_text(c: &CellSummary) -> String {
    let kinds: Vec<String> = ViolationKind::ALL.iter().map(|&k| format!("{} {}", k.as_str(), c.rate_text(k))).collect();
    let images = match c.images {
        0 => String::new(),
        n => format!(" (distinct, of {n} images built)"),
    };
    format!(
        "trials {}, inconclusive {}, crash states {}{images}, violating trials {}\nviolations: {}\nexpectation: {}\n\
         commits {}, commit latency p50/p99 µs: {}\n{}\n",
        c.trials,
        c.inconclusive,
        c.crash_states,
        c.violating_trials,
        kinds.join(", "),
        c.expectation.describe,
        c.commits,
        latency_pair(&c.commit_latency_us),
        c.verdict_reason(),
    )
}

/// What the terminal shows after a campaign: one aligned line per cell, then the verdict line,
/// which names the failing cells and says `regression`, `no-data` or `silent-canary` for each,
/// with the reason.
pub fn console_matrix(summary: &Summary) -> String {
    let header = ["cell", "trials", "inconcl", "states", "violations", "verdict"];
    let rows: Vec<[String; 6]> = summary
        .cells
        .iter()
        .map(|c| {
            let hits: Vec<String> =
                c.violations.iter().filter(|&(_, &n)| n > 0).map(|(k, n)| format!("{} {n}", k.as_str())).collect();
            let verdict = c.verdict_label(false);
            [
                c.id.clone(),
                c.trials.to_string(),
                c.inconclusive.to_string(),
                c.crash_states.to_string(),
                if hits.is_empty() { "-".to_string() } else { hits.join(", ") },
                verdict,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: [&str; 6]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:<w4$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
    };
    line(&mut out, header);
    for row in &rows {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }

    let interrupted = if summary.interrupted { " [interrupted: partial results]" } else { "" };
    if !summary.failed() {
        let _ = writeln!(out, "verdict: ok ({}){interrupted}", verdict_counts_line(summary));
        return out;
    }
    let counts: Vec<String> = summary
        .verdict_counts()
        .into_iter()
        .filter(|&(v, n)| n > 0 && v.failed())
        .map(|(v, n)| format!("{n} {}", v.as_str()))
        .collect();
    let failing: Vec<String> = summary
        .cells
        .iter()
        .filter(|c| c.verdict.failed())
        .map(|c| format!("{} {}", c.verdict.as_str(), c.id))
        .collect();
    let _ = writeln!(
        out,
        "verdict: FAILED ({}; {} cells){interrupted}: {}",
        counts.join(", "),
        summary.cells.len(),
        failing.join(", ")
    );
    for c in summary.cells.iter().filter(|c| c.verdict.failed()) {
        let _ = writeln!(out, "  {}: {}", c.id, c.verdict_reason());
        if let Some(replay) = c.failures.first().and_then(|f| f.replay.as_deref()) {
            let _ = writeln!(out, "    replay: {replay}");
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::matrix::{CheckpointPolicy, FaultKind, JournalMode, KillTiming, SigtermBehaviour, Synchronous};
    use crate::record::CheckpointRecord;
    use crate::record::ShutdownRecord;
    use proptest::prelude::*;

    pub(crate) fn wal() -> Cell {
        Cell {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            fault: FaultKind::Kill,
            sigterm: Some(SigtermBehaviour::Graceful),
            checkpoint: Some(CheckpointPolicy::Auto),
            timing: KillTiming::Uniform,
            device: None,
            fullfsync: crate::matrix::FullFsync::Off,
        }
    }

    fn off() -> Cell {
        Cell {
            journal_mode: JournalMode::Off,
            synchronous: Synchronous::Full,
            fault: FaultKind::SigkillOnly,
            sigterm: None,
            checkpoint: None,
            timing: KillTiming::Bulk,
            device: None,
            fullfsync: crate::matrix::FullFsync::Off,
        }
    }

    fn delete() -> Cell {
        Cell { journal_mode: JournalMode::Delete, checkpoint: None, sigterm: Some(SigtermBehaviour::Default), ..wal() }
    }

    /// wal (forbids all), off (canary: integrity|fts|atomicity required), delete (forbids all).
    fn aggregator() -> Aggregator {
        aggregator_of(&[wal(), off(), delete()])
    }

    /// An aggregator over these cells, each with its built-in expectation.
    pub(crate) fn aggregator_of(cells: &[Cell]) -> Aggregator {
        Aggregator::new(cells.iter().map(|c| (*c, expect::builtin(c))).collect())
    }

    pub(crate) fn meta() -> RunMeta {
        RunMeta {
            run_id: "20261122T101500Z-7".into(),
            seed: Some(7),
            scenario: "unit".into(),
            scenario_source: "embedded:unit".into(),
            started_at: "2026-11-22T10:15:00+00:00".into(),
            crashfuzz_version: "0.1.0".into(),
            sqlite_version: "3.54.1".into(),
            command: "crashfuzz run unit --seed 7".into(),
            min_states: 1,
        }
    }

    pub(crate) fn record(trial: u64, cell: &Cell, violations: &[ViolationKind], latencies_us: &[u64]) -> TrialRecord {
        let mut h = stats::new_latency_histogram();
        for &us in latencies_us {
            h.saturating_record(us);
        }
        let violating = !violations.is_empty();
        TrialRecord {
            trial,
            seed: trial * 31 + 1,
            started_ms: trial * 40,
            cell: cell.id(),
            outcome: TrialOutcome::Checked,
            deaths: Vec::new(),
            acks: BTreeMap::new(),
            commits: latencies_us.len() as u64,
            fault_at_us: 5_000,
            checks: Vec::new(),
            violations: violations.to_vec(),
            commit_latency_hist: if h.is_empty() { String::new() } else { stats::encode_histogram(&h) },
            checkpoints: Vec::new(),
            shutdowns: Vec::new(),
            timing_us: TrialTiming { setup: 900, spawn: 2_000, write: 5_000, kill: 300, check: 12_000 + trial },
            loadavg_1m: 1.5 + (trial % 7) as f64,
            kept_failure: violating.then(|| format!("failures/{trial}")),
            replay: violating.then(|| {
                format!("crashfuzz replay out/failures/{trial}  # or: crashfuzz run unit --seed 7 --trial {trial}")
            }),
            images: Vec::new(),
            injection: None,
            explanation: Vec::new(),
            busy_retries: 0,
            transients: 0,
            survivors: Vec::new(),
            continued_from: None,
            db_bytes_at_start: 0,
            plan: Default::default(),
            writer_crashes: Vec::new(),
        }
    }

    #[test]
    fn a_power_loss_trial_counts_its_distinct_images_as_crash_states_and_its_trace_once_in_the_bound() {
        let mut agg = aggregator();
        let image = |violations: Vec<ViolationKind>, duplicate_of: Option<u32>| crate::record::ImageRecord {
            cut: 10,
            undetermined: 3,
            lost: 1,
            torn: 0,
            violations,
            duplicate_of,
        };
        let lost = vec![ViolationKind::LostAck];
        let mut rec = record(1, &wal(), &[ViolationKind::LostAck], &[100]);
        // Image 3 has the bytes and acknowledgements of image 1: the same state, once.
        rec.images =
            vec![image(vec![], None), image(lost.clone(), None), image(lost.clone(), None), image(lost, Some(1))];
        agg.add(&rec);
        agg.add(&record(4, &wal(), &[], &[100]));
        let summary = agg.summary(&RunMeta::default(), 1.0, false);
        let c = summary.cells.iter().find(|c| c.id == wal().id()).unwrap();
        assert_eq!((c.images, c.crash_states, c.checked), (4, 4, 2), "3 distinct images + 1 kill state");
        assert_eq!(c.violations[&ViolationKind::LostAck], 2);
        assert_eq!(c.trial_violations[&ViolationKind::LostAck], 1);
        assert_eq!(c.violating_trials, 1);
        // The bound is over the 2 trials, not the 4 states: 1 of 2.
        assert_eq!(c.violation_upper_95[&ViolationKind::LostAck], stats::wilson_upper(1, 2));
        assert_eq!(c.rate_text(ViolationKind::LostAck), format!("{} · 2/4 img", rate_with_bound(1, 2)));
    }

    fn inconclusive(trial: u64, cell: &Cell, reason: &str) -> TrialRecord {
        TrialRecord { outcome: TrialOutcome::Inconclusive { reason: reason.into() }, ..record(trial, cell, &[], &[40]) }
    }

    #[test]
    fn counts_per_kind_and_verdicts() {
        let mut agg = aggregator();
        // wal: one integrity+atomicity violation among 4 checked trials → regression.
        for t in 0..4 {
            let v: &[ViolationKind] = if t == 2 { &[ViolationKind::Integrity, ViolationKind::Atomicity] } else { &[] };
            agg.add(&record(t * 3, &wal(), v, &[100, 200, 300]));
        }
        // off: nothing found → silent canary, even with inconclusive trials around.
        agg.add(&record(1, &off(), &[], &[50]));
        agg.add(&inconclusive(4, &off(), "writer 500 finished its work before the fault"));
        // delete: no records at all → no-data.
        let s = agg.summary(&meta(), 2.5, false);
        assert_eq!(agg.trials(), 6);
        assert_eq!(agg.violating_trials(), 1);
        assert_eq!((s.trials, s.checked, s.inconclusive, s.violating_trials), (6, 5, 1, 1));
        let [w, o, d] = [&s.cells[0], &s.cells[1], &s.cells[2]];
        assert_eq!((w.trials, w.crash_states, w.violating_trials), (4, 4, 1));
        assert_eq!(w.violations[&ViolationKind::Integrity], 1);
        assert_eq!(w.violations[&ViolationKind::Atomicity], 1);
        assert_eq!(w.violations[&ViolationKind::Open], 0);
        assert_eq!(w.violations.len(), ViolationKind::ALL.len());
        assert_eq!(w.verdict, Verdict::Regression);
        assert_eq!(w.verdict_reason(), "regression: integrity 1/4, atomicity 1/4 (forbidden)");
        assert_eq!(w.commits, 12);
        assert_eq!(w.commit_latency_us.count, 12);
        assert_eq!(w.failures.len(), 1);
        assert_eq!(w.failures[0].trial, 6);
        // Inconclusive trials are not crash states.
        assert_eq!((o.trials, o.inconclusive, o.crash_states), (2, 1, 1));
        assert_eq!(o.verdict, Verdict::SilentCanary);
        assert_eq!(o.inconclusive_reasons, vec!["writer 500 finished its work before the fault".to_string()]);
        assert_eq!(
            o.verdict_reason(),
            "silent-canary: no required violation (required: integrity|fts|atomicity) in 1 crash states"
        );
        assert_eq!((d.trials, d.verdict, d.no_data), (0, Verdict::NoData, true));
        assert_eq!(
            d.verdict_reason(),
            "no-data: 0 crash states checked, 1 needed; no trial of this cell ran (raise the budget)"
        );
        assert_eq!(d.violation_upper_95[&ViolationKind::Open], 1.0);
        assert_eq!(d.commit_latency_us.p50, None);
        assert_eq!(d.loadavg_1m, LoadRange { min: None, max: None });
        assert!(s.failed && s.failed());
        assert_eq!(
            s.verdict_counts(),
            vec![(Verdict::Ok, 0), (Verdict::Regression, 1), (Verdict::NoData, 1), (Verdict::SilentCanary, 1)]
        );
    }

    #[test]
    fn a_canary_that_fires_is_ok_and_a_cell_without_data_is_no_data_canary_or_not() {
        let mut agg = aggregator();
        agg.add(&record(0, &wal(), &[], &[]));
        agg.add(&record(1, &off(), &[ViolationKind::Atomicity], &[]));
        agg.add(&record(2, &delete(), &[], &[]));
        let s = agg.summary(&meta(), 1.0, false);
        assert_eq!(s.cells[1].verdict, Verdict::Ok);
        assert!(s.cells[1].expectation.canary);
        assert!(!s.failed());

        let s = aggregator().summary(&meta(), 0.0, true);
        assert_eq!(s.cells[1].verdict, Verdict::NoData);
        assert!(s.cells[1].no_data);
        assert_eq!(s.cells[0].verdict, Verdict::NoData);
        assert!(s.failed());

        // All inconclusive is no evidence either, and the reason says why.
        let mut agg = aggregator();
        agg.add(&inconclusive(0, &wal(), "writer 1000 finished its work before the fault"));
        let s = agg.summary(&meta(), 1.0, false);
        assert_eq!(s.cells[0].verdict, Verdict::NoData);
        assert_eq!(
            s.cells[0].verdict_reason(),
            "no-data: 0 crash states checked, 1 needed; 1 of 1 trials inconclusive, e.g. writer 1000 finished its \
             work before the fault"
        );
        // --min-states raises the demand.
        let mut agg = aggregator();
        agg.add(&record(0, &wal(), &[], &[10]));
        agg.add(&record(3, &wal(), &[], &[10]));
        assert_eq!(agg.summary(&meta(), 1.0, false).cells[0].verdict, Verdict::Ok);
        let strict = RunMeta { min_states: 3, ..meta() };
        assert_eq!(agg.summary(&strict, 1.0, false).cells[0].verdict, Verdict::NoData);
    }

    #[test]
    fn timing_load_checkpoints_and_shutdowns_are_summarised() {
        let mut agg = aggregator();
        let mut a = record(0, &wal(), &[], &[10]);
        a.loadavg_1m = f64::NAN;
        a.checkpoints = vec![
            CheckpointRecord {
                writer: 100,
                mode: "PASSIVE".into(),
                busy: 1,
                log_frames: 10,
                checkpointed_frames: 4,
                on_shutdown: false,
                elapsed_us: 50,
            },
            CheckpointRecord {
                writer: 100,
                mode: "TRUNCATE".into(),
                busy: 0,
                log_frames: 0,
                checkpointed_frames: 0,
                on_shutdown: true,
                elapsed_us: 80,
            },
        ];
        a.shutdowns = vec![ShutdownRecord {
            writer: 100,
            started: true,
            checkpoint_started: true,
            checkpoint_done: false,
            killed_mid_checkpoint: true,
            duration_us: None,
        }];
        let mut b = record(3, &wal(), &[], &[20]);
        b.loadavg_1m = 14.25;
        b.shutdowns = vec![ShutdownRecord {
            writer: 400,
            started: true,
            checkpoint_started: true,
            checkpoint_done: true,
            killed_mid_checkpoint: false,
            duration_us: Some(4_200),
        }];
        let mut c = record(6, &wal(), &[], &[30]);
        c.loadavg_1m = 0.5;
        for r in [&a, &b, &c] {
            agg.add(r);
        }
        // Inconclusive trials never ran the checks: their check time of 0 must not count.
        for t in [9, 12, 15] {
            let mut r = inconclusive(t, &wal(), "writer died before the fault");
            r.timing_us.check = 0;
            r.loadavg_1m = 3.0;
            (r.commits, r.commit_latency_hist) = (0, String::new());
            agg.add(&r);
        }
        let w = &agg.summary(&meta(), 1.0, false).cells[0];
        assert_eq!(w.loadavg_1m, LoadRange { min: Some(0.5), max: Some(14.25) });
        assert_eq!(w.checkpoints, CheckpointCounts { count: 2, busy: 1, on_shutdown: 1 });
        assert_eq!(
            (
                w.shutdowns.writers,
                w.shutdowns.graceful_exits,
                w.shutdowns.killed_mid_checkpoint,
                w.shutdowns.checkpoint_done
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(w.shutdowns.exit_us.count, 1);
        assert_eq!(w.timing_ms.setup, Some(0.9));
        // HdrHistogram keeps 3 significant figures: 12 003 µs reads back within 0.1%.
        let check_ms = w.timing_ms.check.unwrap();
        assert!((check_ms - 12.003).abs() <= 0.012, "{check_ms}");
        assert_eq!(w.trial_time_us, 3 * (900 + 2_000 + 5_000 + 300 + 12_000) + 9 + 3 * (900 + 2_000 + 5_000 + 300));
        assert_eq!((w.trials, w.inconclusive, w.crash_states), (6, 3, 3));
        assert_eq!(w.commit_latency_us.p50, Some(20));
        assert_eq!(w.commit_latency_us.max, Some(30));
    }

    #[test]
    fn examples_are_bounded_and_forbidden_first() {
        let mut agg = aggregator();
        for t in 0..20 {
            agg.add(&inconclusive(t * 3 + 2, &delete(), &format!("reason {}", t % 6)));
        }
        // The built-in canary forbids nothing, so its examples are simply the lowest trials,
        // whatever order they arrive in.
        for t in (0..12).rev() {
            agg.add(&record(t * 3 + 1, &off(), &[ViolationKind::Integrity], &[]));
        }
        let s = agg.summary(&meta(), 1.0, false);
        let d = &s.cells[2];
        assert_eq!(d.inconclusive_reasons, vec!["reason 0", "reason 1", "reason 2"]);
        let o = &s.cells[1];
        assert_eq!(o.failures.iter().map(|f| f.trial).collect::<Vec<_>>(), vec![1, 4, 7, 10, 13]);

        // A forbidden hit outranks earlier allowed ones.
        let mut e = expect::builtin(&off());
        e.levels.insert(ViolationKind::Open, Level::Forbidden);
        let mut agg = Aggregator::new(vec![(off(), e)]);
        for t in 0..10 {
            agg.add(&record(t, &off(), &[ViolationKind::Integrity], &[]));
        }
        agg.add(&record(99, &off(), &[ViolationKind::Open], &[]));
        let s = agg.summary(&meta(), 1.0, false);
        assert_eq!(s.cells[0].verdict, Verdict::Regression);
        assert_eq!(s.cells[0].failures[0].trial, 99);
        assert_eq!(s.cells[0].failures.len(), FAILURE_EXAMPLES_MAX);
    }

    /// One generated trial: (cell, inconclusive, violation bitmask, latencies, load average).
    type Gen = (usize, bool, u16, Vec<u64>, Option<f64>);

    fn gen_records() -> impl Strategy<Value = Vec<TrialRecord>> {
        let one = (
            0usize..3,
            proptest::bool::weighted(0.2),
            any::<u16>(),
            proptest::collection::vec(1u64..5_000_000, 0..6),
            proptest::option::of(0.0f64..64.0),
        );
        proptest::collection::vec(one, 0..40).prop_map(|gens: Vec<Gen>| {
            let cells = [wal(), off(), delete()];
            gens.into_iter()
                .enumerate()
                .map(|(t, (c, inc, mask, lat, load))| {
                    let kinds: Vec<ViolationKind> = ViolationKind::ALL
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, &k)| k)
                        .collect();
                    let mut r = if inc {
                        TrialRecord {
                            outcome: TrialOutcome::Inconclusive { reason: format!("r{}", mask % 5) },
                            ..record(t as u64, &cells[c], &[], &lat)
                        }
                    } else {
                        record(t as u64, &cells[c], &kinds, &lat)
                    };
                    r.loadavg_1m = load.unwrap_or(f64::NAN);
                    r
                })
                .collect()
        })
    }

    proptest! {
        /// The summary is a function of the set of records: any order, and any split into two
        /// aggregators merged afterwards, gives the same summary.
        #[test]
        fn order_and_merging_do_not_matter(
            (records, shuffled) in gen_records().prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
            split in 0usize..40,
        ) {
            let mut a = aggregator();
            records.iter().for_each(|r| a.add(r));
            let mut b = aggregator();
            shuffled.iter().for_each(|r| b.add(r));
            let want = a.summary(&meta(), 3.0, false);
            prop_assert_eq!(&want, &b.summary(&meta(), 3.0, false));

            let split = split.min(shuffled.len());
            let (mut left, mut right) = (aggregator(), aggregator());
            shuffled[..split].iter().for_each(|r| left.add(r));
            shuffled[split..].iter().for_each(|r| right.add(r));
            right.merge(&left);
            prop_assert_eq!(&want, &right.summary(&meta(), 3.0, false));

            // Invariants of the counts.
            for c in &want.cells {
                prop_assert_eq!(c.crash_states, c.trials - c.inconclusive);
                prop_assert!(c.violating_trials <= c.crash_states);
                prop_assert!(c.violating_states <= c.crash_states);
                prop_assert!(c.damaged_states <= c.violating_states);
                for (k, &n) in &c.violations {
                    prop_assert!(n <= c.violating_trials);
                    prop_assert!(n <= c.violating_states);
                    if k.is_damage() {
                        prop_assert!(n <= c.damaged_states);
                    }
                    prop_assert!(c.violation_upper_95[k] >= n as f64 / c.crash_states.max(1) as f64);
                }
            }
        }
    }

    fn sample_summary() -> Summary {
        let mut agg = aggregator();
        for t in 0..45u64 {
            agg.add(&record(t * 3, &wal(), &[], &[120 + t, 480, 2_300]));
        }
        for t in 0..40u64 {
            let v: &[ViolationKind] =
                if t % 4 == 0 { &[ViolationKind::Integrity] } else { &[ViolationKind::Atomicity, ViolationKind::Fts] };
            agg.add(&record(t * 3 + 1, &off(), v, &[15, 30]));
        }
        for t in 0..40u64 {
            let v: &[ViolationKind] = if t % 13 == 5 { &[ViolationKind::LostAck] } else { &[] };
            agg.add(&record(t * 3 + 2, &delete(), v, &[700, 900, 1_400]));
        }
        agg.add(&inconclusive(999, &delete(), "writer 100099 finished its work before the fault"));
        agg.summary(&meta(), 12.34, false)
    }

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
        assert_eq!(back.cells[0].expectation.expectation(), expect::builtin(&wal()));
    }

    #[test]
    fn junit_has_one_case_per_cell_and_one_failure() {
        let s = sample_summary();
        let xml = junit_xml(&s).unwrap();
        assert_eq!(xml.matches("<testcase").count(), 3);
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert!(xml.contains(r#"message="regression: lost_ack 3/40 (forbidden)""#), "{xml}");
        assert!(xml.contains("crashfuzz replay out/failures/17"), "{xml}");
        assert!(xml.contains(r#"classname="crashfuzz.unit""#), "{xml}");

        let mut ok = aggregator();
        ok.add(&record(0, &wal(), &[], &[]));
        ok.add(&record(1, &off(), &[ViolationKind::Fts], &[]));
        ok.add(&record(2, &delete(), &[], &[]));
        let xml = junit_xml(&ok.summary(&meta(), 1.0, false)).unwrap();
        assert_eq!(xml.matches("<testcase").count(), 3);
        assert!(!xml.contains("<failure"), "{xml}");

        // A cell without evidence is a failure too, and says why.
        let mut bare = aggregator();
        bare.add(&record(0, &wal(), &[], &[]));
        bare.add(&record(1, &off(), &[ViolationKind::Fts], &[]));
        let xml = junit_xml(&bare.summary(&meta(), 1.0, false)).unwrap();
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert!(xml.contains(r#"type="no-data""#) && xml.contains("no trial of this cell ran"), "{xml}");
    }

    #[test]
    fn markdown_and_console_show_bounds_and_verdicts() {
        let s = sample_summary();
        let md = markdown(&s);
        assert!(md.contains("0/45 (≤ 7.9%)"), "{md}");
        assert!(md.contains("**3/40 (≤ 20%)**"), "{md}");
        assert!(md.contains("**regression**"), "{md}");
        assert!(md.contains("crashfuzz replay out/failures/17"), "{md}");
        assert_eq!(md.matches("\n| `").count(), 3);
        let console = console_matrix(&s);
        assert!(console.contains("regression"), "{console}");
        let last = console.lines().find(|l| l.starts_with("verdict:")).unwrap();
        assert_eq!(last, "verdict: FAILED (1 regression; 3 cells): regression delete/normal/kill");
        println!("{md}\n{console}");

        let mut silent = aggregator();
        silent.add(&record(0, &wal(), &[], &[5]));
        silent.add(&record(1, &off(), &[], &[5]));
        silent.add(&record(2, &delete(), &[], &[5]));
        let console = console_matrix(&silent.summary(&meta(), 1.0, false));
        assert!(console.contains("silent-canary"), "{console}");
        assert!(console.contains("off/full/sigkill_only@bulk"), "{console}");

        let mut bare = aggregator();
        bare.add(&record(0, &wal(), &[], &[5]));
        bare.add(&inconclusive(1, &off(), "writer 2000 died before the fault (exit:3): setup"));
        bare.add(&record(2, &delete(), &[], &[5]));
        let console = console_matrix(&bare.summary(&meta(), 1.0, false));
        let last = console.lines().find(|l| l.starts_with("verdict:")).unwrap();
        assert_eq!(last, "verdict: FAILED (1 no-data; 3 cells): no-data off/full/sigkill_only@bulk", "{console}");
        assert!(console.contains("1 of 1 trials inconclusive, e.g. writer 2000 died"), "{console}");

        let mut ok = aggregator();
        ok.add(&record(0, &wal(), &[], &[5]));
        ok.add(&record(1, &off(), &[ViolationKind::Integrity, ViolationKind::Atomicity], &[5]));
        ok.add(&record(2, &delete(), &[], &[5]));
        let console = console_matrix(&ok.summary(&meta(), 1.0, false));
        assert_eq!(console.lines().last().unwrap(), "verdict: ok (3 cells: 3 ok)", "{console}");
        assert!(console.contains("integrity 1, atomicity 1"), "{console}");
    }

    /// A full disk once left `.summary.json.tmp` behind. /dev/full accepts the file's creation
    /// and fails every write with ENOSPC: the write fails, and no temporary file remains.
    #[test]
    fn a_report_that_cannot_be_written_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".summary.json.tmp");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let err = write_atomically(dir.path(), "summary.json", b"{}").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENOSPC), "{err}");
        assert!(std::fs::symlink_metadata(&tmp).is_err(), "the temporary file was left behind");
        assert!(!dir.path().join("summary.json").exists());
    }

    #[test]
    fn reports_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        write_reports(dir.path(), &sample_summary()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["junit.xml", "latency.svg", "summary.json", "summary.md", "synchronous.svg", "violations.svg"]
        );
        // Re-read, the summary renders the same reports. (Not `==` on the struct: without
        // serde_json's `float_roundtrip` feature a bound may come back one ulp off.)
        let back: Summary =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("summary.md")).unwrap(), markdown(&back));
        assert_eq!(std::fs::read_to_string(dir.path().join("junit.xml")).unwrap(), junit_xml(&back).unwrap());
        assert_eq!(console_matrix(&back), console_matrix(&sample_summary()));
    }

    #[test]
    fn rates_are_shown_with_their_bound() {
        assert_eq!(rate_with_bound(0, 45), "0/45 (≤ 7.9%)");
        assert_eq!(rate_with_bound(40, 40), "40/40 (≤ 100%)");
        assert_eq!(rate_with_bound(0, 1000), "0/1000 (≤ 0.38%)");
        assert_eq!(rate_with_bound(0, 0), "–");
    }
}

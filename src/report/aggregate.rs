//! Folding trial records into per-cell counts: the [`Aggregator`] and the [`Summary`] it
//! produces. See the module doc of [`crate::report`] for why it may only hold what the records
//! carry.

use crate::base::stats::{self, LatencySummary};
use crate::record::checks::{CheckOutcome, ViolationKind};
use crate::record::{TrialOutcome, TrialRecord};
use crate::report::summary::*;
use crate::scenario::expect::{self, Expectation, Level};
use crate::scenario::matrix::Cell;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Folds trial records into per-cell statistics; see the module doc for why it may only hold
/// what the records carry.
#[derive(Clone, Debug)]
pub struct Aggregator {
    cells: Vec<CellAgg>,
    index: HashMap<String, usize>,
    trials: u64,
    violating_trials: u64,
    /// Per check, the trials it ran on (passed or failed).
    check_runs: std::collections::BTreeMap<ViolationKind, u64>,
    commits: u64,
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
    /// Crash states showing each kind; every kind is always present.
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
    writer_sqlite: Option<crate::record::SqliteIdentity>,
    cross_version_trials: u64,
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
    /// The check phase per crash state: a power-loss trial builds and checks several images.
    check_per_state: Histogram<u64>,
    /// SQLite's own `PRAGMA integrity_check` on one image (the FTS5 tables' included): the
    /// floor under any full check of that image.
    integrity: Histogram<u64>,
}

impl PhaseHistograms {
    fn new() -> PhaseHistograms {
        PhaseHistograms {
            setup: stats::new_latency_histogram(),
            spawn: stats::new_latency_histogram(),
            write: stats::new_latency_histogram(),
            kill: stats::new_latency_histogram(),
            check: stats::new_latency_histogram(),
            check_per_state: stats::new_latency_histogram(),
            integrity: stats::new_latency_histogram(),
        }
    }

    /// An inconclusive trial never reaches the checks: its `check` of 0 is not a measurement
    /// and would drag the median down, so only checked trials count there.
    fn record(&mut self, rec: &TrialRecord, checked: bool) {
        let t = &rec.timing_us;
        self.setup.saturating_record(t.setup);
        self.spawn.saturating_record(t.spawn);
        self.write.saturating_record(t.write);
        self.kill.saturating_record(t.kill);
        if checked {
            self.check.saturating_record(t.check);
            // Per crash state: the distinct images (a duplicate is built, never checked).
            let states = rec.images.iter().filter(|i| i.duplicate_of.is_none()).count().max(1) as u64;
            self.check_per_state.saturating_record(t.check / states);
            let integrity = rec.checks.iter().find(|c| c.check == ViolationKind::Integrity).map(|c| c.elapsed_us);
            if let Some(us) = integrity.filter(|&us| us > 0) {
                self.integrity.saturating_record(us);
            }
        }
    }

    fn merge(&mut self, other: &PhaseHistograms) {
        stats::merge_histogram(&mut self.setup, &other.setup);
        stats::merge_histogram(&mut self.spawn, &other.spawn);
        stats::merge_histogram(&mut self.write, &other.write);
        stats::merge_histogram(&mut self.kill, &other.kill);
        stats::merge_histogram(&mut self.check, &other.check);
        stats::merge_histogram(&mut self.check_per_state, &other.check_per_state);
        stats::merge_histogram(&mut self.integrity, &other.integrity);
    }

    fn medians_ms(&self) -> TimingMs {
        let ms = |h: &Histogram<u64>| stats::median(h).map(|us| us as f64 / 1000.0);
        TimingMs {
            setup: ms(&self.setup),
            spawn: ms(&self.spawn),
            write: ms(&self.write),
            kill: ms(&self.kill),
            check: ms(&self.check),
            check_per_state: ms(&self.check_per_state),
            integrity_check: ms(&self.integrity),
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
        Aggregator { cells, index, trials: 0, violating_trials: 0, check_runs: Default::default(), commits: 0 }
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
        for r in &rec.checks {
            match r.outcome {
                CheckOutcome::Pass | CheckOutcome::Violation { .. } => {
                    *self.check_runs.entry(r.check).or_default() += 1
                }
                CheckOutcome::Blocked { .. } | CheckOutcome::CouldNotRun { .. } => {}
            }
        }
        self.commits += rec.commits;
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
        for (&k, &n) in &other.check_runs {
            *self.check_runs.entry(k).or_default() += n;
        }
        self.commits += other.commits;
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
            check_runs: self.check_runs.clone(),
            commits: self.commits,
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
            writer_sqlite: None,
            cross_version_trials: 0,
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
        self.phase_us.record(rec, checked);
        let t = &rec.timing_us;
        self.trial_time_us += t.setup + t.spawn + t.write + t.kill + t.check;
        for c in &rec.checkpoints {
            self.checkpoints.count += 1;
            self.checkpoints.busy += u64::from(c.busy != 0);
            self.checkpoints.on_shutdown += u64::from(c.on_shutdown);
        }
        self.topology.busy_retries += rec.busy_retries;
        self.topology.transients += u64::from(rec.transients);
        self.topology.closes += u64::from(rec.closes);
        self.topology.closes_alone += u64::from(rec.closes_alone);
        self.cross_version_trials += u64::from(!rec.cross_version.is_empty());
        if self.writer_sqlite.is_none() {
            self.writer_sqlite.clone_from(&rec.writer_sqlite);
        }
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
        self.cross_version_trials += other.cross_version_trials;
        if self.writer_sqlite.is_none() {
            self.writer_sqlite.clone_from(&other.writer_sqlite);
        }
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
            writer_sqlite: self.writer_sqlite.clone(),
            cross_version_trials: self.cross_version_trials,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::stats::rate_with_bound;
    use crate::record::{CheckpointRecord, ShutdownRecord};
    use crate::report::testkit::*;
    use crate::scenario::expect::Verdict;
    use proptest::prelude::*;

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

    /// The floor under the check is SQLite's own integrity_check on an image of each checked
    /// trial; the check phase per crash state divides a power-loss trial's check by its distinct
    /// images.
    #[test]
    fn the_check_floor_and_the_check_per_state_are_summarised() {
        use crate::record::checks::CheckResult;
        let integrity =
            |us| CheckResult { check: ViolationKind::Integrity, outcome: CheckOutcome::Pass, elapsed_us: us };
        let mut agg = aggregator();
        for (t, us) in [(0, 8_000), (3, 9_000), (6, 10_000)] {
            let mut r = record(t, &wal(), &[], &[10]);
            r.checks = vec![integrity(us)];
            r.timing_us.check = 20_000;
            agg.add(&r);
        }
        // Inconclusive: no check ran, nothing counts.
        let mut r = inconclusive(9, &wal(), "writer died before the fault");
        r.checks = vec![integrity(1)];
        agg.add(&r);
        // HdrHistogram keeps 3 significant figures.
        let close = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() <= want * 0.002);
        let w = &agg.summary(&meta(), 1.0, false).cells[0];
        assert!(
            close(w.timing_ms.integrity_check, 9.0) && close(w.timing_ms.check_per_state, 20.0),
            "{:?}",
            w.timing_ms
        );

        let image = crate::record::ImageRecord {
            cut: 1,
            undetermined: 0,
            lost: 0,
            torn: 0,
            violations: Vec::new(),
            duplicate_of: None,
        };
        let mut agg = aggregator();
        let mut r = record(0, &wal(), &[], &[10]);
        // Four distinct images and one that repeats the first: four crash states.
        let mut images = vec![image; 5];
        images[4].duplicate_of = Some(0);
        (r.images, r.timing_us.check, r.checks) = (images, 40_000, vec![integrity(6_000)]);
        agg.add(&r);
        let w = &agg.summary(&meta(), 1.0, false).cells[0];
        assert!(
            close(w.timing_ms.integrity_check, 6.0) && close(w.timing_ms.check_per_state, 10.0),
            "{:?}",
            w.timing_ms
        );
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
        let mut e = crate::fault::builtin(&off());
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
}

//! `crashfuzz report RUN_DIR... [--out DIR]`: run directories read back, checked against each
//! other and merged into one summary, then written as every report a campaign writes
//! (`summary.json`, `summary.md`, `junit.xml`, the charts). One directory re-renders that run;
//! several (the shards of one campaign, or different campaigns) merge cell by cell, a cell being
//! its id.
//!
//! **Architecture invariant: a report is rebuilt from the trial records, never from the
//! summaries' numbers.** A run's `summary.json` contributes its cells, their expectations and
//! the run's metadata; every count comes from `Aggregator::new(cells)` plus `add` of every line
//! of every `trials.jsonl`. Since a summary is a function of the set of records (the
//! [`crate::report`] invariant), the N shards of a campaign merge into exactly the
//! summary the unsharded campaign would have written from the same records.
//!
//! **Nothing is guessed.** Two runs that judge one cell by different expectations, one trial
//! present twice (a shard given twice), a missing file or a malformed line end the report with
//! exit 2, naming the runs, the cell, the file and the line. The one thing tolerated is a torn
//! *last* line of `trials.jsonl`: a campaign killed while appending leaves exactly that, so it is
//! skipped with a warning and the report is marked interrupted. Nothing here writes into a
//! source run directory unless it is the report's own output (`report RUN_DIR` re-renders it).

use crate::base::stats;
use crate::error::{EXIT_OK, EXIT_VERDICT_FAILED, Error, Result};
use crate::record::TrialRecord;
use crate::report::aggregate::Aggregator;
use crate::report::summary::RunMeta;
use crate::report::summary::SourceRun;
use crate::report::summary::Summary;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::Cell;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// What `report` needs of a run's `run.json` (which holds much more).
#[derive(Deserialize)]
struct RunJsonHead {
    /// The campaign seed: with the trial index it names a trial across runs.
    seed: u64,
    #[serde(default)]
    shard: Option<String>,
}

/// One run directory, its summary read and its cells checked; its trials are streamed later.
struct RunDir {
    /// As given on the command line (for messages and `sources`).
    dir: PathBuf,
    summary: Summary,
    seed: u64,
    shard: Option<String>,
}

impl RunDir {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A merged summary, and what the user should hear about on the way (torn lines, notes).
#[derive(Debug)]
pub struct Merged {
    pub summary: Summary,
    pub warnings: Vec<String>,
}

/// `crashfuzz report`: reads, checks and merges `run_dirs`, writes the reports into `out`
/// (default: the one run directory; required with several), prints the console matrix and
/// returns the exit code of the merged verdict.
pub fn run(run_dirs: &[PathBuf], out: Option<&Path>, command: &str) -> Result<i32> {
    let out = out_dir(run_dirs, out)?;
    let merged = merge_runs(run_dirs, &out, command)?;
    for w in &merged.warnings {
        eprintln!("crashfuzz: warning: {w}");
    }
    std::fs::create_dir_all(&out).map_err(|source| Error::BadPath {
        path: out.clone(),
        what: "cannot create --out".into(),
        source,
    })?;
    crate::report::files::write_reports(&out, &merged.summary).map_err(|source| Error::BadPath {
        path: out.clone(),
        what: "cannot write the reports".into(),
        source,
    })?;
    print!("{}", crate::report::console::console_matrix(&merged.summary));
    println!("report: {}", out.display());
    crate::report::github::publish(&merged.summary, |k| std::env::var(k).ok());
    Ok(if merged.summary.failed() { EXIT_VERDICT_FAILED } else { EXIT_OK })
}

/// Where the reports go. With several runs `--out` is required and must be none of them:
/// writing the merged summary into one run's directory would make that run claim the others'
/// trials.
fn out_dir(run_dirs: &[PathBuf], out: Option<&Path>) -> Result<PathBuf> {
    let out = match (out, run_dirs) {
        (_, []) => return Err(Error::Usage("report: expected at least one RUN_DIR".into())),
        (Some(out), _) => out.to_path_buf(),
        (None, [one]) => one.clone(),
        (None, several) => {
            return Err(Error::Usage(format!(
                "report: {} run directories given but no --out DIR: a merged report needs a directory of its own \
                 (writing it into one run's directory would replace that run's summary)",
                several.len()
            )));
        }
    };
    if run_dirs.len() > 1
        && let Ok(out_abs) = std::fs::canonicalize(&out)
        && let Some(same) = run_dirs.iter().find(|d| std::fs::canonicalize(d).is_ok_and(|d| d == out_abs))
    {
        return Err(Error::Usage(format!(
            "report: --out {} is one of the run directories ({}): a merged report needs a directory of its own",
            out.display(),
            same.display()
        )));
    }
    Ok(out)
}

fn bad_path(path: PathBuf, what: impl Into<String>, source: std::io::Error) -> Error {
    Error::BadPath { path, what: what.into(), source }
}

fn malformed(path: &Path, line: Option<usize>, setting: &str, message: impl Into<String>) -> Error {
    Error::Scenario { file: path.display().to_string(), line, setting: setting.to_string(), message: message.into() }
}

/// Reads a run directory's `summary.json` and `run.json`, and checks its cells.
fn open_run(dir: &Path) -> Result<RunDir> {
    if !dir.is_dir() {
        let source = std::fs::metadata(dir).err().unwrap_or_else(|| std::io::ErrorKind::NotADirectory.into());
        return Err(bad_path(dir.to_path_buf(), "not a run directory", source));
    }
    let summary_path = dir.join("summary.json");
    let trials_path = dir.join("trials.jsonl");
    let text = std::fs::read_to_string(&summary_path).map_err(|source| {
        let what = match (source.kind(), trials_path.exists()) {
            (std::io::ErrorKind::NotFound, true) => {
                "missing: the campaign never finished (killed?), and its cells' expectations are only in summary.json"
            }
            (std::io::ErrorKind::NotFound, false) => "missing: not a crashfuzz run directory",
            _ => "cannot read",
        };
        bad_path(summary_path.clone(), what, source)
    })?;
    let summary: Summary =
        serde_json::from_str(&text).map_err(|e| malformed(&summary_path, Some(e.line()), "summary", e.to_string()))?;
    if summary.sources.len() > 1 && !trials_path.exists() {
        let sources: Vec<&str> = summary.sources.iter().map(|s| s.dir.as_str()).collect();
        return Err(Error::Usage(format!(
            "{} is a report merged from {} runs, not a run: give its source runs ({}) instead",
            dir.display(),
            sources.len(),
            sources.join(" ")
        )));
    }
    let mut ids = HashSet::new();
    for c in &summary.cells {
        if c.cell.id() != c.id {
            let message = format!("cell {}: its axes make the id {}", c.id, c.cell.id());
            return Err(malformed(&summary_path, None, "cells", message));
        }
        if !ids.insert(c.id.as_str()) {
            return Err(malformed(&summary_path, None, "cells", format!("cell {} is listed twice", c.id)));
        }
    }
    let run_json_path = dir.join("run.json");
    let text = std::fs::read_to_string(&run_json_path).map_err(|source| {
        bad_path(run_json_path.clone(), "missing or unreadable (every run writes it first)", source)
    })?;
    let head: RunJsonHead =
        serde_json::from_str(&text).map_err(|e| malformed(&run_json_path, Some(e.line()), "run", e.to_string()))?;
    Ok(RunDir { dir: dir.to_path_buf(), summary, seed: head.seed, shard: head.shard })
}

/// Levels that differ between two expectations, e.g. `integrity forbidden vs allowed`.
fn level_differences(a: &Expectation, b: &Expectation) -> Vec<String> {
    crate::record::checks::ViolationKind::ALL
        .iter()
        .filter(|&&k| a.level(k) != b.level(k))
        .map(|&k| format!("{} {} vs {}", k.as_str(), a.level(k).as_str(), b.level(k).as_str()))
        .collect()
}

/// The union of the runs' cells, in first-seen order, with their expectations; an error when two
/// runs disagree on a cell's expectation (merging would judge one run's trials by the other's
/// promise, and picking one would hide it).
fn union_cells(runs: &[RunDir], warnings: &mut Vec<String>) -> Result<Vec<(Cell, Expectation, usize)>> {
    let mut cells: Vec<(Cell, Expectation, usize)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (r, run) in runs.iter().enumerate() {
        for c in &run.summary.cells {
            let expectation = c.expectation.expectation();
            let Some(&i) = index.get(&c.id) else {
                index.insert(c.id.clone(), cells.len());
                cells.push((c.cell, expectation, r));
                continue;
            };
            let (_, first, first_run) = &cells[i];
            let differences = level_differences(first, &expectation);
            let first_file = runs[*first_run].file("summary.json");
            if !differences.is_empty() {
                return Err(Error::Usage(format!(
                    "cell {} has different expectations in {} and {}: {}; merging would judge one run's trials by \
                     the other's expectation: report these runs separately",
                    c.id,
                    first_file.display(),
                    run.file("summary.json").display(),
                    differences.join(", ")
                )));
            }
            if first.source != expectation.source {
                warnings.push(format!(
                    "cell {}: {} and {} give the same levels for different reasons ({} / {}); the report keeps the first",
                    c.id,
                    first_file.display(),
                    run.file("summary.json").display(),
                    first.source.join("; "),
                    expectation.source.join("; ")
                ));
            }
        }
    }
    Ok(cells)
}

/// Where a trial record was read: (run index, 1-based line).
type Origin = (usize, usize);

/// Streams one run's `trials.jsonl` into `each` (line number, record); returns the records read
/// and whether a torn last line was skipped.
pub(crate) fn read_trials(path: &Path, mut each: impl FnMut(usize, TrialRecord) -> Result<()>) -> Result<(u64, bool)> {
    let file =
        std::fs::File::open(path).map_err(|source| bad_path(path.to_path_buf(), "missing or unreadable", source))?;
    let mut reader = std::io::BufReader::new(file);
    let mut line: Vec<u8> = Vec::new();
    let (mut number, mut records) = (0usize, 0u64);
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| bad_path(path.to_path_buf(), format!("cannot read line {}", number + 1), source))?;
        if read == 0 {
            return Ok((records, false));
        }
        number += 1;
        let complete = line.last() == Some(&b'\n');
        match serde_json::from_slice::<TrialRecord>(&line) {
            Ok(record) => {
                records += 1;
                each(number, record)?;
            }
            // The campaign appends each record with its newline in one write and fsyncs it, so
            // a kill mid-append can only leave a last line without its newline. Any other bad
            // line is damage the report must not paper over.
            Err(_) if !complete => return Ok((records, true)),
            Err(e) => return Err(malformed(path, Some(number), "trial record", e.to_string())),
        }
    }
}

/// Reads, checks and merges `run_dirs` into one summary. `out` is where it will be written:
/// kept failures (`failures/<trial>`, relative to their run) are re-pointed at their run's
/// directory when that is not `out`. `command` is recorded as a merged report's command line.
pub fn merge_runs(run_dirs: &[PathBuf], out: &Path, command: &str) -> Result<Merged> {
    let runs: Vec<RunDir> = run_dirs.iter().map(|d| open_run(d)).collect::<Result<_>>()?;
    // The same directory twice would be caught trial by trial below; say it plainly instead.
    let mut canonical: HashMap<PathBuf, &Path> = HashMap::new();
    for run in &runs {
        let abs = std::fs::canonicalize(&run.dir)
            .map_err(|source| bad_path(run.dir.clone(), "cannot resolve the run directory", source))?;
        if let Some(first) = canonical.insert(abs, &run.dir) {
            return Err(Error::Usage(format!(
                "report: {} and {} are the same run directory: its trials must be counted once",
                first.display(),
                run.dir.display()
            )));
        }
    }
    let mut warnings = Vec::new();
    let cells = union_cells(&runs, &mut warnings)?;
    let cell_index: HashMap<String, usize> = cells.iter().enumerate().map(|(i, (c, _, _))| (c.id(), i)).collect();
    let mut agg = Aggregator::new(cells.into_iter().map(|(c, e, _)| (c, e)).collect());
    let out_abs = std::fs::canonicalize(out).ok();

    // (campaign seed, trial index, cell) → where it was first read. Within one seed, a trial
    // index names the same randomness (ChaCha8 stream) on the same cell: the same trial, run
    // again (the same shard given twice, or a `--trial` re-run beside its campaign); counting it
    // twice would inflate the crash states behind every bound. The cell is part of the key so
    // that different scenarios run with the same seed still merge.
    let mut seen: HashMap<(u64, u64, usize), Origin> = HashMap::new();
    let mut sources = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        let trials_path = run.file("trials.jsonl");
        let own_cells: HashSet<&str> = run.summary.cells.iter().map(|c| c.id.as_str()).collect();
        let run_abs = std::fs::canonicalize(&run.dir)
            .map_err(|source| bad_path(run.dir.clone(), "cannot resolve the run directory", source))?;
        let repoint = out_abs.as_ref() != Some(&run_abs);
        let (records, torn) = read_trials(&trials_path, |line, mut rec| {
            if !own_cells.contains(rec.cell.as_str()) {
                let message = format!(
                    "trial {} names cell {}, which {}/summary.json does not list",
                    rec.trial,
                    rec.cell,
                    run.dir.display()
                );
                return Err(malformed(&trials_path, Some(line), "cell", message));
            }
            // The aggregator treats an undecodable histogram as its own bug; from a file it is bad input.
            if let Err(e) = stats::decode_histogram(&rec.commit_latency_hist) {
                return Err(malformed(&trials_path, Some(line), "commit_latency_hist", e));
            }
            let key = (run.seed, rec.trial, cell_index[&rec.cell]);
            if let Some(&(first_run, first_line)) = seen.get(&key) {
                return Err(Error::Usage(format!(
                    "trial {} of campaign seed {} (cell {}) is in {}:{} and again in {}:{}: the same shard or run \
                     given twice? It must be counted once: give each run once",
                    rec.trial,
                    run.seed,
                    rec.cell,
                    runs[first_run].file("trials.jsonl").display(),
                    first_line,
                    trials_path.display(),
                    line
                )));
            }
            seen.insert(key, (r, line));
            if repoint && let Some(rel) = &rec.kept_failure {
                rec.kept_failure = Some(run_abs.join(rel).display().to_string());
            }
            agg.add(&rec);
            Ok(())
        })?;
        if torn {
            warnings.push(format!(
                "{}: the last line is torn (the campaign was killed while appending it) and was skipped; the \
                 report counts the {records} trials before it and is marked interrupted",
                trials_path.display()
            ));
        }
        let m = &run.summary.meta;
        sources.push(SourceRun {
            dir: run.dir.display().to_string(),
            run_id: m.run_id.clone(),
            seed: Some(run.seed),
            scenario: m.scenario.clone(),
            shard: run.shard.clone(),
            started_at: m.started_at.clone(),
            command: m.command.clone(),
            trials: records,
            duration_s: run.summary.duration_s,
            interrupted: run.summary.interrupted || torn,
            torn_last_line: torn,
        });
    }

    let meta = merged_meta(&runs, command);
    let duration_s = runs.iter().map(|r| r.summary.duration_s).sum();
    let interrupted = sources.iter().any(|s| s.interrupted);
    let mut summary = agg.summary(&meta, duration_s, interrupted);
    summary.seeds = runs.iter().map(|r| r.seed).collect::<BTreeSet<u64>>().into_iter().collect();
    summary.sources = sources;
    Ok(Merged { summary, warnings })
}

/// The distinct values of `field` over the runs, in first-seen order, joined by `sep`.
fn distinct(runs: &[RunDir], sep: &str, field: impl Fn(&RunMeta) -> &str) -> String {
    let mut values: Vec<&str> = Vec::new();
    for r in runs {
        let v = field(&r.summary.meta);
        if !values.contains(&v) {
            values.push(v);
        }
    }
    values.join(sep)
}

/// One run keeps its own metadata (re-rendering it changes nothing but the counts' source). A
/// merge keeps what the runs share and lists what they do not: the seed when all share it
/// (`None` otherwise: `seeds` and `sources` list them), the earliest start, and the `report`
/// command line as the command that made it.
fn merged_meta(runs: &[RunDir], command: &str) -> RunMeta {
    if let [one] = runs {
        return RunMeta { seed: Some(one.seed), ..one.summary.meta.clone() };
    }
    let seeds: BTreeSet<u64> = runs.iter().map(|r| r.seed).collect();
    // RFC 3339 strings of one offset sort like their instants; parse anyway, in case a run was
    // written with another offset. An unparsable one sorts last.
    let started_at = runs
        .iter()
        .map(|r| r.summary.meta.started_at.as_str())
        .min_by_key(|s| chrono::DateTime::parse_from_rfc3339(s).map_or(i64::MAX, |t| t.timestamp_micros()))
        .unwrap_or_default()
        .to_string();
    RunMeta {
        run_id: distinct(runs, "+", |m| &m.run_id),
        seed: if seeds.len() == 1 { seeds.first().copied() } else { None },
        scenario: distinct(runs, " + ", |m| &m.scenario),
        scenario_source: distinct(runs, ", ", |m| &m.scenario_source),
        started_at,
        crashfuzz_version: distinct(runs, ", ", |m| &m.crashfuzz_version),
        sqlite_version: distinct(runs, ", ", |m| &m.sqlite_version),
        command: command.to_string(),
        // The strictest demand of the runs: a merge never judges on less evidence than one of
        // its parts asked for.
        min_states: runs.iter().map(|r| r.summary.meta.min_states).max().unwrap_or(1),
        own_writer: runs.iter().find_map(|r| r.summary.meta.own_writer.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TrialOutcome;
    use crate::record::TrialTiming;
    use crate::record::checks::ViolationKind;
    use crate::scenario::expect::Level;
    use crate::scenario::matrix::{CheckpointPolicy, FaultKind, FullFsync, JournalMode, KillTiming, Synchronous};

    use std::io::Write;

    fn cells() -> Vec<Cell> {
        let wal = Cell {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Full,
            fault: FaultKind::Kill,
            sigterm: Some(crate::scenario::matrix::SigtermBehaviour::Default),
            checkpoint: Some(CheckpointPolicy::Auto),
            timing: KillTiming::Uniform,
            device: None,
            fullfsync: FullFsync::Off,
            sqlite: crate::scenario::matrix::SqliteName::BUNDLED,
        };
        let delete = Cell { journal_mode: JournalMode::Delete, checkpoint: None, ..wal };
        let off = Cell {
            journal_mode: JournalMode::Off,
            fault: FaultKind::SigkillOnly,
            sigterm: None,
            checkpoint: None,
            timing: KillTiming::Bulk,
            ..wal
        };
        vec![wal, delete, off]
    }

    /// Trial `t` of a campaign over `cells()`, as the campaign assigns it (cell `t % 3`), with
    /// varied outcomes, violations, latencies and load.
    fn record(t: u64) -> TrialRecord {
        let cells = cells();
        let cell = &cells[(t % 3) as usize];
        let violations = match (t % 3, t % 4) {
            (2, 0) => vec![ViolationKind::Integrity],
            (2, _) => vec![ViolationKind::Atomicity, ViolationKind::Fts],
            (0, _) if t == 9 => vec![ViolationKind::LostAck],
            _ => vec![],
        };
        let latencies: Vec<u64> = (0..(t % 5)).map(|i| 50 + 37 * t + 1000 * i).collect();
        let base = crate::report::testkit::record(t, cell, &violations, &latencies);
        TrialRecord {
            seed: t * 7 + 1,
            started_ms: t * 30,
            outcome: if t == 4 {
                TrialOutcome::Inconclusive { reason: "writer finished its work before the fault".into() }
            } else {
                TrialOutcome::Checked
            },
            fault_at_us: 1_000,
            replay: (!violations.is_empty()).then(|| format!("crashfuzz run unit --seed 7 --trial {t}")),
            timing_us: TrialTiming { setup: 100 + t, spawn: 200, write: 300, kill: 40, check: 5_000 + t },
            loadavg_1m: if t % 6 == 0 { f64::NAN } else { t as f64 / 4.0 },
            ..base
        }
    }

    fn expectations() -> Vec<(Cell, Expectation)> {
        cells().iter().map(|c| (*c, crate::fault::builtin(c))).collect()
    }

    fn meta(seed: u64) -> RunMeta {
        RunMeta {
            run_id: format!("run-{seed}"),
            seed: Some(seed),
            scenario: "unit".into(),
            scenario_source: "embedded:unit".into(),
            started_at: "2026-11-22T10:15:00+00:00".into(),
            crashfuzz_version: "0.1.0".into(),
            sqlite_version: "3.54.1".into(),
            command: format!("crashfuzz run unit --seed {seed}"),
            min_states: 1,
            own_writer: None,
        }
    }

    /// Writes a run directory as a campaign would: run.json, trials.jsonl, summary.json.
    fn write_run(dir: &Path, seed: u64, shard: Option<&str>, records: &[TrialRecord]) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let run_json = serde_json::json!({ "run_id": format!("run-{seed}"), "seed": seed, "shard": shard });
        std::fs::write(dir.join("run.json"), run_json.to_string()).unwrap();
        let mut lines = String::new();
        for r in records {
            lines.push_str(&serde_json::to_string(r).unwrap());
            lines.push('\n');
        }
        std::fs::write(dir.join("trials.jsonl"), lines).unwrap();
        let mut agg = Aggregator::new(expectations());
        records.iter().for_each(|r| agg.add(r));
        crate::report::files::write_reports(dir, &agg.summary(&meta(seed), 2.5, false)).unwrap();
        dir.to_path_buf()
    }

    fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged> {
        merge_runs(dirs, out, "crashfuzz report test")
    }

    #[test]
    fn merging_two_halves_equals_adding_all() {
        let tmp = tempfile::tempdir().unwrap();
        let all: Vec<TrialRecord> = (0..24).map(record).collect();
        // The shards of `--shard I/2` over 3 cells: rounds of 3 trials, alternately.
        let (one, two): (Vec<TrialRecord>, Vec<TrialRecord>) =
            all.iter().cloned().partition(|r| (r.trial / 3) % 2 == 0);
        let d1 = write_run(&tmp.path().join("shard1"), 7, Some("1/2"), &one);
        let d2 = write_run(&tmp.path().join("shard2"), 7, Some("2/2"), &two);
        let out = tmp.path().join("merged");
        let merged = merge(&[d1.clone(), d2.clone()], &out).unwrap();
        assert!(merged.warnings.is_empty(), "{:?}", merged.warnings);

        let mut agg = Aggregator::new(expectations());
        all.iter().for_each(|r| agg.add(r));
        let want = agg.summary(&meta(7), 5.0, false);
        let got = &merged.summary;
        assert_eq!(
            (got.trials, got.checked, got.inconclusive, got.violating_trials),
            (24, 23, 1, want.violating_trials)
        );
        assert_eq!(got.cells.len(), 3);
        for (g, w) in got.cells.iter().zip(&want.cells) {
            // Kept failures are re-pointed at their run; everything else is identical.
            let mut g = g.clone();
            for f in &mut g.failures {
                let kept = f.kept_failure.take().unwrap();
                assert!(kept.ends_with(&format!("failures/{}", f.trial)), "{kept}");
                assert!(Path::new(&kept).is_absolute(), "{kept}");
            }
            let mut w = w.clone();
            w.failures.iter_mut().for_each(|f| f.kept_failure = None);
            assert_eq!(g, w);
        }
        assert_eq!(got.meta.seed, Some(7));
        assert_eq!(got.seeds, vec![7]);
        assert_eq!(got.duration_s, 5.0, "durations are summed");
        assert_eq!(got.meta.command, "crashfuzz report test");
        let shards: Vec<Option<&str>> = got.sources.iter().map(|s| s.shard.as_deref()).collect();
        assert_eq!(shards, [Some("1/2"), Some("2/2")]);
        assert_eq!(got.sources.iter().map(|s| s.trials).sum::<u64>(), 24);

        // The same records in one unsharded run directory give the same cells.
        let d_all = write_run(&tmp.path().join("all"), 7, None, &all);
        let single = merge(std::slice::from_ref(&d_all), &d_all).unwrap().summary;
        assert_eq!(single.cells, want.cells, "a re-render of one run is its own summary");
        assert_eq!(single.meta, meta(7));
        assert_eq!(single.sources.len(), 1);
    }

    #[test]
    fn the_same_shard_twice_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let records: Vec<TrialRecord> = (0..6).map(record).collect();
        let a = write_run(&tmp.path().join("a"), 7, Some("1/2"), &records);
        let b = write_run(&tmp.path().join("b"), 7, Some("1/2"), &records[3..]);
        let e = merge(&[a.clone(), b], &tmp.path().join("m")).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(text.contains("trial 3 of campaign seed 7"), "{text}");
        assert!(text.contains("a/trials.jsonl:4") && text.contains("b/trials.jsonl:1"), "{text}");
        assert!(text.contains("twice"), "{text}");

        let e = merge(&[a.clone(), a.join("../a")], &tmp.path().join("m")).unwrap_err();
        assert!(e.to_string().contains("are the same run directory"), "{e}");

        // Another seed is another campaign: its trial 3 is a different trial.
        let c = write_run(&tmp.path().join("c"), 8, None, &records[3..]);
        let merged = merge(&[tmp.path().join("a"), c], &tmp.path().join("m")).unwrap().summary;
        assert_eq!(merged.meta.seed, None);
        assert_eq!(merged.seeds, vec![7, 8]);
        assert_eq!(merged.trials, 9);
        assert_eq!(merged.meta.run_id, "run-7+run-8");
    }

    #[test]
    fn different_expectations_for_one_cell_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_run(&tmp.path().join("a"), 7, None, &[record(0)]);
        let b = write_run(&tmp.path().join("b"), 8, None, &[record(1)]);
        let path = b.join("summary.json");
        let mut s: Summary = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        s.cells[0].expectation.levels.insert(ViolationKind::LostAck, Level::Allowed);
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
        let e = merge(&[a, b], &tmp.path().join("m")).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(text.contains("cell wal/full/kill/auto-checkpoint"), "{text}");
        assert!(text.contains("a/summary.json") && text.contains("b/summary.json"), "{text}");
        assert!(text.contains("lost_ack forbidden vs allowed"), "{text}");
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_any_other_bad_line_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let records: Vec<TrialRecord> = (0..5).map(record).collect();
        let dir = write_run(&tmp.path().join("run"), 7, None, &records);
        let trials = dir.join("trials.jsonl");
        let whole = std::fs::read_to_string(&trials).unwrap();
        let sixth = serde_json::to_string(&record(5)).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&trials).unwrap();
        f.write_all(&sixth.as_bytes()[..sixth.len() / 2]).unwrap();
        drop(f);
        let merged = merge(std::slice::from_ref(&dir), &dir).unwrap();
        assert_eq!(merged.summary.trials, 5);
        assert!(merged.summary.interrupted);
        assert!(merged.summary.sources[0].torn_last_line);
        assert_eq!(merged.warnings.len(), 1);
        assert!(merged.warnings[0].contains("trials.jsonl: the last line is torn"), "{:?}", merged.warnings);

        // A complete but malformed line, last or not, is damage: file and line are named.
        let lines: Vec<&str> = whole.lines().collect();
        for (at, text) in [(2, format!("{}\n{{\"trial\": oops}}\n{}\n", lines[0], lines[1])), (1, "\n".to_string())] {
            std::fs::write(&trials, text).unwrap();
            let e = merge(std::slice::from_ref(&dir), &dir).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().starts_with(&format!("{}:{at}: trial record:", trials.display())), "{e}");
        }

        // A record of a cell the run does not have.
        let mut stranger = record(0);
        stranger.cell = "persist/full/kill".into();
        std::fs::write(&trials, format!("{}\n", serde_json::to_string(&stranger).unwrap())).unwrap();
        let e = merge(std::slice::from_ref(&dir), &dir).unwrap_err();
        assert!(e.to_string().contains("trials.jsonl:1: cell: trial 0 names cell persist/full/kill"), "{e}");
    }

    #[test]
    fn missing_files_and_several_runs_without_out_are_bad_input() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_run(&tmp.path().join("run"), 7, None, &[record(0)]);
        for file in ["trials.jsonl", "run.json", "summary.json"] {
            let copy = tmp.path().join(format!("without-{file}"));
            write_run(&copy, 7, None, &[record(0)]);
            std::fs::remove_file(copy.join(file)).unwrap();
            let e = merge(std::slice::from_ref(&copy), &copy).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(e.to_string().contains(&copy.join(file).display().to_string()), "{e}");
        }
        let e = merge(&[tmp.path().join("nope")], tmp.path()).unwrap_err();
        assert!(e.to_string().contains("nope: not a run directory"), "{e}");

        let two = [dir.clone(), tmp.path().join("without-run.json")];
        let e = out_dir(&two, None).unwrap_err();
        assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("--out"), "{e}");
        let e = out_dir(&two, Some(&dir)).unwrap_err();
        assert!(e.to_string().contains("is one of the run directories"), "{e}");
        assert_eq!(out_dir(std::slice::from_ref(&dir), None).unwrap(), dir);

        // A merged report is not a run. (Its canary cell has no trial: a silent canary, exit 1.)
        let b = write_run(&tmp.path().join("b"), 8, None, &[record(1)]);
        let out = tmp.path().join("merged");
        assert_eq!(run(&[dir, b], Some(&out), "crashfuzz report").unwrap(), EXIT_VERDICT_FAILED);
        let e = merge(std::slice::from_ref(&out), &out).unwrap_err();
        assert!(e.to_string().contains("is a report merged from 2 runs"), "{e}");
    }

    #[test]
    fn a_merged_report_writes_every_file_and_names_its_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_run(&tmp.path().join("a"), 7, Some("1/2"), &(0..3).map(record).collect::<Vec<_>>());
        let b = write_run(&tmp.path().join("b"), 7, Some("2/2"), &(3..6).map(record).collect::<Vec<_>>());
        let out = tmp.path().join("merged");
        // Trial 5 (off, a canary) has violations, so the merged verdict is ok.
        assert_eq!(run(&[a, b], Some(&out), "crashfuzz report a b --out merged").unwrap(), EXIT_OK);
        let mut names: Vec<String> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            ["junit.xml", "latency.svg", "summary.json", "summary.md", "synchronous.svg", "violations.svg"]
        );
        let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
        assert!(md.contains("Merged from 2 runs by `crashfuzz report a b --out merged`"), "{md}");
        assert!(md.contains("| 1/2 | 7 | 3 | 2.5 s |"), "{md}");
        assert!(md.contains("seed 7 · 5.0 s summed over 2 runs"), "{md}");
        assert!(md.contains("- [violations.svg](violations.svg)"), "{md}");
    }
}

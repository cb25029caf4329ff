//! A campaign: one seed, a budget, `--jobs` worker threads pulling trial indices from one
//! counter, one collector that appends and fsyncs every trial's line as it finishes, and the
//! Ctrl-C protocol (first: stop taking trials, finish, write the summary; second: SIGKILL every
//! writer and exit 130).
//!
//! Trial `t` runs cell `t % cells`; with `--shard I/N` a campaign runs only the rounds
//! `(t / cells) % N == I - 1`, so N shards of one seed run disjoint trials whose union is the
//! unsharded campaign. Trial `t`'s randomness is ChaCha8 stream `t` of the campaign seed, so any
//! trial can be re-run alone with `--trial t`.

use crate::base::scratch;
use crate::error::{EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_OK, EXIT_VERDICT_FAILED, Error, Result};
use crate::fault::Prepare;
use crate::fault::load::LoadGen;
use crate::record::TrialRecord;
use crate::report::aggregate::Aggregator;
use crate::report::summary::RunMeta;
use crate::run::env::{CellWriter, TrialEnv};
use crate::run::lane::{Lane, Template, build_template};
use crate::run::trial::run_trial;
use crate::scenario::matrix::Cell;
use crate::scenario::{Budget, Scenario};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nix::sys::signal::{SigSet, Signal};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set by the first Ctrl-C (or SIGTERM): no new trial starts.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// How to run one campaign (the scenario plus command-line overrides).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub scenario: Scenario,
    /// The scenario as the user named it, for replay lines.
    pub scenario_arg: String,
    pub seed: u64,
    pub budget: Budget,
    pub jobs: usize,
    /// The run directory itself; default `results/runs/<run-id>`.
    pub out_dir: Option<PathBuf>,
    /// Where trial databases live; default a fresh directory under the system temp dir.
    pub workdir: Option<PathBuf>,
    /// `(I, N)`, 1-based.
    pub shard: Option<(u64, u64)>,
    /// Run exactly this trial index (replaying a failure).
    pub only_trial: Option<u64>,
    pub progress: bool,
    /// The fewest distinct crash states a cell needs for a verdict (`--min-states`).
    pub min_states: u64,
    /// The command line, recorded in run.json.
    pub command: String,
    /// The arguments, resolved, recorded in run.json for `--resume`.
    pub args: crate::run::resume::RunArgsRecord,
    /// The run directory read back when this campaign goes on from a killed one.
    pub resume: Option<crate::run::resume::Resumed>,
}

#[derive(Clone, Serialize)]
struct OtherSqlite {
    /// As resolved: the spec and where its library is.
    build: String,
    libversion: String,
    sourceid: String,
}

/// `[hazard] other_sqlite`, made concrete and loaded once: a build that cannot be had is a
/// scenario error (exit 2).
fn resolve_other_sqlite(
    scenario: &Scenario,
) -> Result<(crate::sqlite::builds::ResolvedBuild, crate::record::SqliteIdentity)> {
    let bad = |e: crate::sqlite::builds::BuildError| Error::Scenario {
        file: scenario.source.clone(),
        line: None,
        setting: "hazard.other_sqlite".into(),
        message: format!("{e}; the matrix has cross_version cells, which need it"),
    };
    let build = crate::sqlite::builds::resolve(&scenario.hazard.other_sqlite).map_err(bad)?;
    let exe = crate::base::process::own_exe().map_err(|e| Error::io("locate the crashfuzz executable", e))?;
    let identity = crate::sqlite::child::identify(&exe, &build).map_err(bad)?;
    println!("crashfuzz: cross_version cells check with SQLite {}: {build}", identity.version);
    Ok((build, identity))
}

#[derive(Clone, Serialize)]
struct Machine {
    hostname: Option<String>,
    os: Option<String>,
    kernel: Option<String>,
    cpus: usize,
    memory_bytes: u64,
    loadavg_1m_at_start: f64,
}

fn machine() -> Machine {
    let memory_bytes = sysinfo::System::new().map_or(0, |mut sys| {
        sys.refresh_memory();
        sys.total_memory()
    });
    Machine {
        hostname: sysinfo::System::host_name().ok(),
        os: sysinfo::System::long_os_version().ok(),
        kernel: sysinfo::System::kernel_version().ok(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes,
        loadavg_1m_at_start: sysinfo::System::load_average().map(|l| l.one).unwrap_or(f64::NAN),
    }
}

/// `run.json`: everything needed to know what ran where.
#[derive(Clone, Serialize)]
struct RunJson {
    run_id: String,
    seed: u64,
    command: String,
    started_at: String,
    crashfuzz_version: String,
    /// The SQLite the oracle runs on (the bundled build).
    sqlite_version: String,
    /// The SQLite the writers of the cells run on, by the name the `sqlite` axis gives, as
    /// each build named itself.
    writer_sqlite: BTreeMap<String, crate::record::SqliteIdentity>,
    jobs: usize,
    shard: Option<String>,
    only_trial: Option<u64>,
    budget: Budget,
    cells: Vec<String>,
    machine: Machine,
    scenario: Scenario,
    /// The other SQLite build of the cross_version cells, as its library names itself.
    other_sqlite: Option<OtherSqlite>,
    /// The load generator's warm-up, when the scenario asks for a load average (filled in
    /// when it ends; run.json is rewritten then).
    load_warmup: Option<crate::fault::load::LoadStatus>,
    min_states: u64,
    /// The arguments as resolved, from which `--resume` builds the same campaign.
    args: crate::run::resume::RunArgsRecord,
    /// Each time a killed campaign was resumed.
    resumes: Vec<crate::run::resume::ResumeNote>,
}

/// What a campaign knows before its first trial.
struct Campaign {
    opts: RunOptions,
    started: Instant,
    run_id: String,
    run_dir: PathBuf,
    cells: Vec<Cell>,
    run_json: RunJson,
    other_sqlite: Option<crate::sqlite::builds::ResolvedBuild>,
    /// Per cell, the program its writers run.
    writers: Vec<CellWriter>,
}

/// Runs a campaign to the end (or to Ctrl-C); returns the exit code (`error`'s table).
pub fn run(opts: RunOptions) -> Result<i32> {
    let campaign = prepare(opts)?;
    let (opts, cells, run_dir) = (&campaign.opts, &campaign.cells, &campaign.run_dir);
    let trials_path = run_dir.join("trials.jsonl");
    let mut trials_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&trials_path)
        .map_err(|source| Error::BadPath { path: trials_path.clone(), what: "cannot create".into(), source })?;
    install_signal_thread()?;
    let work = work_dir(opts)?;
    let exe = crate::base::process::own_exe().map_err(|e| Error::io("locate the crashfuzz executable", e))?;
    let writers = &campaign.writers;
    let templates = build_templates(writers, work.path(), opts, cells)?;
    let kept_per_cell: Vec<AtomicU32> = cells
        .iter()
        .map(|c| {
            let id = c.id();
            let recorded = opts.resume.iter().flat_map(|r| &r.records);
            AtomicU32::new(recorded.filter(|r| r.cell == id && r.kept_failure.is_some()).count() as u32)
        })
        .collect();
    let env = TrialEnv {
        writers,
        other_sqlite: campaign.other_sqlite.as_ref(),
        scenario: &opts.scenario,
        cells,
        templates: &templates,
        run_dir,
        campaign_seed: opts.seed,
        scenario_arg: &opts.scenario_arg,
        kept_per_cell: &kept_per_cell,
        campaign_start: campaign.started,
    };
    let bar = progress_bar(opts);
    let load = start_load(&campaign, &exe, work.path(), &bar)?;
    // A re-run of one trial judges its cell alone: the others ran nothing and claim nothing.
    let n_cells = cells.len() as u64;
    let expectations: Vec<_> = cells
        .iter()
        .enumerate()
        .filter(|&(i, _)| opts.only_trial.is_none_or(|t| t % n_cells == i as u64))
        .map(|(i, c)| (*c, crate::fault::expectation_for(c, writers[i].sqlite.version, &opts.scenario.expect)))
        .collect();
    let mut agg = Aggregator::new(expectations);
    let done = opts.resume.as_ref().map(|r| r.done()).unwrap_or_default();
    for rec in opts.resume.iter().flat_map(|r| &r.records) {
        agg.add(rec);
    }
    bar.inc(done.len() as u64);
    let harness_error = run_trials(&env, opts, work.path(), &bar, &mut agg, &mut trials_file, &trials_path, &done);
    bar.finish_and_clear();
    if let Some(generator) = load {
        generator.stop();
    }
    // Every writer was reaped by its trial (or by Writer's Drop), every burner by the load
    // generator; nothing may be left.
    debug_assert!(crate::base::process::LIVE_GROUPS.lock().map(|g| g.is_empty()).unwrap_or(true));
    drop(work);
    finish(&campaign, &agg, harness_error)
}

/// Everything decided before a trial runs: the cells, the budget checked against them, the
/// other SQLite build resolved, the run directory made and `run.json` written. Bad input is
/// refused here, before anything is created but the seed line.
fn prepare(opts: RunOptions) -> Result<Campaign> {
    let started_at = chrono::Utc::now();
    // A resumed campaign's clock goes on from where its recorded trials end.
    let prior = opts.resume.as_ref().map_or(Duration::ZERO, |r| r.elapsed());
    let started = Instant::now().checked_sub(prior).unwrap_or_else(Instant::now);
    println!("crashfuzz: seed {}  (re-run with: crashfuzz run {} --seed {})", opts.seed, opts.scenario_arg, opts.seed);
    let (run_id, started_at) = match &opts.resume {
        Some(r) => (r.run_id.clone(), r.started_at.clone()),
        None => (format!("{}-{}", started_at.format("%Y%m%dT%H%M%SZ"), opts.seed), started_at.to_rfc3339()),
    };
    let run_dir = opts.out_dir.clone().unwrap_or_else(|| PathBuf::from("results/runs").join(&run_id));
    let cells = opts.scenario.cells();
    assert!(!cells.is_empty(), "validation guarantees a non-empty matrix");
    if let (Budget::Trials(n), None) = (opts.budget, opts.only_trial) {
        let states_per_trial: Vec<u64> =
            cells.iter().map(|c| crate::fault::of(c.fault).states_per_trial(&opts.scenario)).collect();
        check_budget(n, &states_per_trial, opts.shard, opts.min_states).map_err(Error::Usage)?;
    }
    // The cross-version hazard needs the other build: resolved (built, if it is a version not
    // yet cached) and loaded once before any trial; one that cannot be had is bad input.
    let other = if cells.iter().any(|c| crate::fault::of(c.fault).needs_other_sqlite()) {
        Some(resolve_other_sqlite(&opts.scenario)?)
    } else {
        None
    };
    // Every cell's writer on its build, each build loaded and named once.
    let exe = crate::base::process::own_exe().map_err(|e| Error::io("locate the crashfuzz executable", e))?;
    let (writers, writer_sqlite) = crate::run::writers::cell_writers(&cells, &exe, opts.scenario.app.as_ref())?;
    match &opts.resume {
        Some(r) => {
            println!("crashfuzz: resuming {} from {}: {} trials recorded", run_id, run_dir.display(), r.records.len())
        }
        None => prepare_run_dir(&run_dir)?,
    }
    let run_json = RunJson {
        run_id: run_id.clone(),
        seed: opts.seed,
        command: opts.command.clone(),
        started_at,
        crashfuzz_version: env!("CARGO_PKG_VERSION").to_string(),
        sqlite_version: rusqlite::version().to_string(),
        writer_sqlite,
        jobs: opts.jobs,
        shard: opts.shard.map(|(i, n)| format!("{i}/{n}")),
        only_trial: opts.only_trial,
        budget: opts.budget,
        cells: cells.iter().map(|c| c.id()).collect(),
        machine: machine(),
        scenario: opts.scenario.clone(),
        other_sqlite: other.as_ref().map(|(build, identity)| OtherSqlite {
            build: build.to_string(),
            libversion: identity.version.clone(),
            sourceid: identity.source_id.clone(),
        }),
        load_warmup: None,
        min_states: opts.min_states,
        args: opts.args.clone(),
        resumes: opts.resume.as_ref().map(|r| r.resumes.clone()).unwrap_or_default(),
    };
    write_run_json(&run_dir, &run_json).map_err(|source| Error::BadPath {
        path: run_dir.clone(),
        what: "cannot write run.json".into(),
        source,
    })?;
    let other_sqlite = other.map(|(build, _)| build);
    Ok(Campaign { opts, started, run_id, run_dir, cells, run_json, other_sqlite, writers })
}

fn write_run_json(run_dir: &Path, run_json: &RunJson) -> std::io::Result<()> {
    write_synced(&run_dir.join("run.json"), serde_json::to_string_pretty(run_json).expect("serializes").as_bytes())
}

/// The campaign's scratch directory (under `--workdir` if given), after sweeping what a
/// SIGKILLed crashfuzz left behind.
fn work_dir(opts: &RunOptions) -> Result<tempfile::TempDir> {
    if let Some(base) = &opts.workdir {
        std::fs::create_dir_all(base).map_err(|source| Error::BadPath {
            path: base.clone(),
            what: "cannot create --workdir".into(),
            source,
        })?;
    }
    scratch::sweep_and_say(opts.workdir.as_deref());
    scratch::create(opts.workdir.as_deref(), "").map_err(|e| Error::io("create the work directory", e))
}

/// The load the trials run under: burners first, and trials only once the 1-minute load
/// average is on target (or the warm-up timed out, which run.json and the console say).
fn start_load(campaign: &Campaign, exe: &Path, work: &Path, bar: &ProgressBar) -> Result<Option<LoadGen>> {
    let load_cfg = &campaign.opts.scenario.load;
    if load_cfg.target_loadavg <= 0.0 {
        return Ok(None);
    }
    let generator = LoadGen::start(exe.to_path_buf(), load_cfg.clone(), work.to_path_buf());
    let timeout = Duration::from_secs(load_cfg.warmup_timeout_s);
    let warm = generator.wait_warm(timeout, &STOP, &mut |s| {
        bar.set_message(format!(
            "warming up: load average {:.1} of {:.1}, {} burners, {:.0} s",
            s.loadavg_1m, load_cfg.target_loadavg, s.burners, s.elapsed_s
        ))
    });
    match warm.reached_after_s {
        Some(after) => bar.println(format!(
            "load: {:.1} reached after {after:.0} s ({} burners); trials start",
            warm.loadavg_1m, warm.burners
        )),
        None => bar.println(format!(
            "load: the target {:.1} was NOT reached in {} s (load average {:.1}); trials start anyway",
            load_cfg.target_loadavg, load_cfg.warmup_timeout_s, warm.loadavg_1m
        )),
    }
    let run_json = RunJson { load_warmup: Some(warm), ..campaign.run_json.clone() };
    write_run_json(&campaign.run_dir, &run_json).map_err(|e| Error::io("rewrite run.json", e))?;
    Ok(Some(generator))
}

enum Message {
    Started { cell: String },
    Done(Box<TrialRecord>),
    Failed(Error),
}

/// The trials: `--jobs` worker threads pulling trial indices from one counter, each in its own
/// lane; this thread collects their records, appends and fsyncs each line before it counts,
/// and folds it into the aggregator. Returns the first harness error, if any.
#[allow(clippy::too_many_arguments)]
fn run_trials(
    env: &TrialEnv<'_>,
    opts: &RunOptions,
    work: &Path,
    bar: &ProgressBar,
    agg: &mut Aggregator,
    trials_file: &mut File,
    trials_path: &Path,
    done: &BTreeSet<u64>,
) -> Option<Error> {
    let n_cells = env.cells.len() as u64;
    let next = AtomicU64::new(0);
    // A resumed campaign has what its recorded trials did not spend.
    let spent = opts.resume.as_ref().map_or(Duration::ZERO, |r| r.elapsed());
    let deadline = match opts.budget {
        Budget::DurationS(s) => Some(Instant::now() + Duration::from_secs(s).saturating_sub(spent)),
        Budget::Trials(_) => None,
    };
    let mut harness_error: Option<Error> = None;
    let (tx, rx) = mpsc::channel::<Message>();
    std::thread::scope(|scope| {
        for job in 0..opts.jobs {
            let tx = tx.clone();
            let next = &next;
            let lane_dir = work.join(format!("lane-{job}"));
            std::thread::Builder::new()
                .name(format!("job-{job}"))
                .spawn_scoped(scope, move || worker(env, opts, Lane::new(lane_dir), next, deadline, n_cells, done, &tx))
                .expect("spawn a worker thread");
        }
        drop(tx);
        for message in rx {
            match message {
                Message::Started { cell } => bar.set_message(progress_message(agg, &cell)),
                Message::Done(rec) => {
                    let mut line = serde_json::to_string(&*rec).expect("trial record serializes");
                    line.push('\n');
                    // One line per trial, on disk before it counts: a killed campaign keeps
                    // everything it measured.
                    if let Err(e) = trials_file.write_all(line.as_bytes()).and_then(|()| trials_file.sync_data()) {
                        STOP.store(true, Ordering::SeqCst);
                        harness_error.get_or_insert(Error::io(format!("append to {}", trials_path.display()), e));
                    }
                    agg.add(&rec);
                    if let Some(replay) = &rec.replay {
                        bar.println(format!("violation in trial {} ({}): {}", rec.trial, rec.cell, replay));
                    }
                    bar.inc(1);
                    bar.set_message(progress_message(agg, &rec.cell));
                }
                Message::Failed(e) => {
                    harness_error.get_or_insert(e);
                }
            }
        }
    });
    harness_error
}

/// One worker thread: takes the next trial index of this campaign's sequence until the budget,
/// the deadline or a stop ends it.
#[allow(clippy::too_many_arguments)]
fn worker(
    env: &TrialEnv<'_>,
    opts: &RunOptions,
    mut lane: Lane,
    next: &AtomicU64,
    deadline: Option<Instant>,
    n_cells: u64,
    done: &BTreeSet<u64>,
    tx: &mpsc::Sender<Message>,
) {
    loop {
        if STOP.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let p = next.fetch_add(1, Ordering::SeqCst);
        let t = match opts.only_trial {
            Some(t) if p == 0 => t,
            Some(_) => break,
            None => trial_at(p, n_cells, opts.shard),
        };
        if let Budget::Trials(n) = opts.budget
            && opts.only_trial.is_none()
            && t >= n
        {
            break;
        }
        // Recorded before the campaign was killed: the same trial, already judged.
        if done.contains(&t) {
            continue;
        }
        let cell_index = (t % n_cells) as usize;
        let _ = tx.send(Message::Started { cell: env.cells[cell_index].id() });
        match run_trial(env, &mut lane, t, cell_index) {
            Ok(rec) => {
                let _ = tx.send(Message::Done(Box::new(rec)));
            }
            Err(e) => {
                STOP.store(true, Ordering::SeqCst);
                let _ = tx.send(Message::Failed(e));
                break;
            }
        }
    }
}

/// The reports and the exit code: the summary is written whatever stopped the campaign.
fn finish(campaign: &Campaign, agg: &Aggregator, harness_error: Option<Error>) -> Result<i32> {
    let (opts, json) = (&campaign.opts, &campaign.run_json);
    let interrupted = STOP.load(Ordering::SeqCst) && harness_error.is_none();
    let meta = RunMeta {
        run_id: campaign.run_id.clone(),
        seed: Some(opts.seed),
        scenario: opts.scenario.name.clone(),
        scenario_source: opts.scenario.source.clone(),
        started_at: json.started_at.clone(),
        crashfuzz_version: json.crashfuzz_version.clone(),
        sqlite_version: json.sqlite_version.clone(),
        command: opts.command.clone(),
        min_states: opts.min_states,
        own_writer: opts.scenario.app.as_ref().map(crate::report::summary::OwnWriter::of),
    };
    let elapsed_s = campaign.started.elapsed().as_secs_f64();
    let summary = agg.summary(&meta, elapsed_s, interrupted || harness_error.is_some());
    crate::report::files::write_reports(&campaign.run_dir, &summary)
        .map_err(|e| Error::io(format!("write reports in {}", campaign.run_dir.display()), e))?;
    print!("{}", crate::report::console::console_matrix(&summary));
    println!("results: {}", campaign.run_dir.display());
    crate::report::github::publish(&summary, |k| std::env::var(k).ok());
    if let Some(e) = harness_error {
        eprintln!("crashfuzz: {e}");
        return Ok(EXIT_HARNESS);
    }
    if interrupted {
        eprintln!("crashfuzz: interrupted; the summary covers the {} trials that finished", agg.trials());
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(if summary.failed() { EXIT_VERDICT_FAILED } else { EXIT_OK })
}

/// Builds each cell's template, and what its fault prepares for every trial of it.
fn build_templates(writers: &[CellWriter], work: &Path, opts: &RunOptions, cells: &[Cell]) -> Result<Vec<Template>> {
    let dir = work.join("templates");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let sc = &opts.scenario;
    cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            // Template seeds live far from trial streams: stream 2^63 + cell index.
            let seed = crate::run::ids::trial_seed(opts.seed, (1 << 63) + i as u64);
            let writer = writers[i].program.as_ref();
            let mut template = build_template(writer, &dir.join(format!("cell-{i}.sqlite")), cell, &sc.workload, seed)?;
            // What the fault prepares has its own seed: stream 2^62 + cell index.
            let prepare = Prepare {
                writer,
                scenario: sc,
                cell,
                template: &template.path,
                dir: &dir.join(format!("prepare-{i}")),
                seed: crate::run::ids::trial_seed(opts.seed, (1 << 62) + i as u64),
            };
            template.short_trace = crate::fault::of(cell.fault).prepare(&prepare)?;
            Ok(template)
        })
        .collect()
}

/// The trial index at position `p` of this campaign's sequence.
pub fn trial_at(p: u64, n_cells: u64, shard: Option<(u64, u64)>) -> u64 {
    match shard {
        None => p,
        Some((i, n)) => ((p / n_cells) * n + (i - 1)) * n_cells + p % n_cells,
    }
}

/// How many trials of each cell a budget of `trials` runs (in this shard, if any): cell `c`
/// gets the trials `t < trials` with `t % cells == c` whose round `t / cells` is this shard's.
pub fn trials_per_cell(trials: u64, cells: u64, shard: Option<(u64, u64)>) -> Vec<u64> {
    let (index, shards) = shard.map_or((0, 1), |(i, n)| (i - 1, n));
    (0..cells)
        .map(|c| {
            // Rounds r with r * cells + c < trials: r < ceil((trials - c) / cells).
            let rounds = trials.saturating_sub(c).div_ceil(cells);
            // Of rounds 0..rounds, those with r % shards == index.
            rounds.saturating_sub(index).div_ceil(shards)
        })
        .collect()
}

/// Refuses a trial budget with which some cell could not check `min_states` crash states even
/// if no trial were inconclusive (`--trials 3` on 29 cells leaves 26 cells without a trial):
/// such a run could only end in `no-data`. The message names the smallest budget that can.
pub fn check_budget(
    trials: u64,
    states_per_trial: &[u64],
    shard: Option<(u64, u64)>,
    min_states: u64,
) -> Result<(), String> {
    let cells = states_per_trial.len() as u64;
    let got = trials_per_cell(trials, cells, shard);
    let needed: Vec<u64> = states_per_trial.iter().map(|&s| min_states.max(1).div_ceil(s.max(1))).collect();
    let short = got.iter().zip(&needed).filter(|(g, n)| g < n).count();
    if short == 0 {
        return Ok(());
    }
    // Cell c's k-th trial in shard I (0-based index i of N) is trial ((k-1)·N + i)·cells + c:
    // the budget must exceed it.
    let (index, shards) = shard.map_or((0, 1), |(i, n)| (i - 1, n));
    let minimum = needed
        .iter()
        .enumerate()
        .map(|(c, &k)| ((k - 1) * shards + index) * cells + c as u64 + 1)
        .max()
        .expect("a non-empty matrix");
    let shard_text = shard.map_or(String::new(), |(i, n)| format!(" in shard {i}/{n}"));
    let min_states = min_states.max(1);
    Err(format!(
        "a budget of {trials} trials leaves {short} of {cells} cells unable to check {min_states} crash \
         state{}{shard_text} (--min-states {min_states}), so their verdict could only be no-data; the minimum \
         budget is {minimum} trials (--trials {minimum})",
        if min_states == 1 { "" } else { "s" },
    ))
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread spawned after) and starts
/// the thread that waits for them. Must run before any other thread is spawned.
pub(crate) fn install_signal_thread() -> Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().map_err(|e| Error::Harness(format!("block signals: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            loop {
                let Ok(sig) = set.wait() else { continue };
                seen += 1;
                if seen == 1 {
                    STOP.store(true, Ordering::SeqCst);
                    eprintln!(
                        "\ncrashfuzz: {} received: finishing the trials in flight and writing the summary \
                         (press Ctrl-C again to kill everything now)",
                        sig.as_str()
                    );
                } else {
                    crate::base::process::kill_all_live();
                    eprintln!("\ncrashfuzz: killed every writer; exiting without a summary");
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        })
        .map_err(|e| Error::io("start the signal thread", e))?;
    Ok(())
}

fn prepare_run_dir(run_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(run_dir).map_err(|source| Error::BadPath {
        path: run_dir.to_path_buf(),
        what: "cannot create --out".into(),
        source,
    })?;
    if run_dir.join("trials.jsonl").exists() {
        return Err(Error::BadPath {
            path: run_dir.to_path_buf(),
            what: "already holds a run (trials.jsonl); choose another --out".into(),
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    // Prove it is writable now rather than after the campaign.
    let probe = run_dir.join(".crashfuzz-write-probe");
    std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe)).map_err(|source| Error::BadPath {
        path: run_dir.to_path_buf(),
        what: "--out is not writable".into(),
        source,
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn progress_bar(opts: &RunOptions) -> ProgressBar {
    let bar = match (opts.only_trial, opts.budget) {
        (Some(_), _) => ProgressBar::new(1),
        (None, Budget::Trials(n)) => {
            let share = match opts.shard {
                Some((_, shards)) => n.div_ceil(shards),
                None => n,
            };
            ProgressBar::new(share)
        }
        (None, Budget::DurationS(_)) => ProgressBar::new_spinner(),
    };
    let template = match opts.budget {
        Budget::Trials(_) => "{elapsed_precise} [{bar:30}] {pos}/{len} trials  {per_sec}  {msg}",
        Budget::DurationS(_) => "{elapsed_precise} {spinner} {pos} trials  {per_sec}  {msg}",
    };
    bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
    if !opts.progress {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn progress_message(agg: &Aggregator, cell: &str) -> String {
    format!("violating trials {}  cell {cell}", agg.violating_trials())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// N shards of a campaign run disjoint trials whose union is every trial, and each
        /// shard still visits every cell in turn.
        #[test]
        fn shards_partition_the_trials(n_cells in 1u64..30, shards in 1u64..6, total in 0u64..400) {
            let mut seen = std::collections::BTreeSet::new();
            for i in 1..=shards {
                for p in 0.. {
                    let t = trial_at(p, n_cells, Some((i, shards)));
                    if t >= total { break; }
                    prop_assert!(seen.insert(t), "trial {} run twice", t);
                    prop_assert_eq!(t % n_cells, p % n_cells);
                }
            }
            prop_assert_eq!(seen.len() as u64, total);
        }
    }

    proptest! {
        /// The per-cell count is what enumerating the campaign's trials gives, and the minimum
        /// budget a refusal names is exactly the smallest that passes.
        #[test]
        fn trials_per_cell_counts_the_campaign_and_the_named_minimum_is_tight(
            n_cells in 1u64..12,
            shards in 1u64..4,
            shard_pick in 0u64..4,
            total in 0u64..200,
            states in proptest::collection::vec(1u64..4, 12),
            min_states in 1u64..5,
        ) {
            let shard = (shards > 1).then_some((shard_pick % shards + 1, shards));
            let mut counted = vec![0u64; n_cells as usize];
            for p in 0.. {
                let t = trial_at(p, n_cells, shard);
                if t >= total { break; }
                counted[(t % n_cells) as usize] += 1;
            }
            prop_assert_eq!(trials_per_cell(total, n_cells, shard), counted);
            let states = &states[..n_cells as usize];
            if let Err(message) = check_budget(total, states, shard, min_states) {
                let minimum: u64 = message.rsplit("--trials ").next().unwrap().trim_end_matches(')').parse().unwrap();
                prop_assert!(minimum > total);
                prop_assert!(check_budget(minimum, states, shard, min_states).is_ok(), "{}", message);
                prop_assert!(check_budget(minimum - 1, states, shard, min_states).is_err());
            }
        }
    }

    #[test]
    fn three_trials_on_29_cells_are_refused_naming_29() {
        let message = check_budget(3, &[1; 29], None, 1).unwrap_err();
        assert!(message.contains("26 of 29 cells") && message.contains("--trials 29"), "{message}");
        assert!(check_budget(29, &[1; 29], None, 1).is_ok());
        // Power-loss cells check up to 8 images a trace: 2 trials can give 10 states.
        assert!(check_budget(58, &[8; 29], None, 10).is_ok());
        assert!(check_budget(29, &[8; 29], None, 10).is_err());
    }

    #[test]
    fn no_shard_is_the_identity() {
        for p in 0..100 {
            assert_eq!(trial_at(p, 7, None), p);
            assert_eq!(trial_at(p, 7, Some((1, 1))), p);
        }
    }
}

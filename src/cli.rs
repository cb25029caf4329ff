//! The command line: parsing with clap, dispatch, and the mapping of every outcome
//! to one exit code. No arguments means `run` on the embedded default scenario.

use crate::error::{EXIT_BAD_INPUT, EXIT_OK, EXIT_VERDICT_FAILED, Error, Result};
use crate::oracle::IntegrityLevel;
use crate::oracle::{self, CheckConfig, CheckReport, ReopenConfig};
use crate::record::checks::CheckOutcome;
use crate::run::campaign::{self, RunOptions};
use crate::run::resume::RunArgsRecord;
use crate::scenario::matrix::SqliteName;
use crate::scenario::{self, Budget};
use crate::sqlite::builds::{self, ResolvedBuild, SqliteBuild};
use crate::writer::session_store::WorkloadConfig;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "crashfuzz", version, about = "Crash-consistency fuzz and fault-injection harness for SQLite")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a campaign: trials over the scenario's matrix, verdicts, reports.
    Run(RunArgs),
    /// Check any database: open, integrity, FTS5 and a write after recovery (on a copy).
    Check {
        /// The database file (its -wal or -journal beside it is used too).
        db_path: PathBuf,
        /// Use `PRAGMA quick_check` instead of the full integrity check.
        #[arg(long)]
        quick: bool,
        /// Also run `PRAGMA integrity_check` and the FTS5 integrity checks with another SQLite
        /// build, and report where it and the bundled build disagree: `system` (the OS's
        /// libsqlite3.so.0), a version crashfuzz builds and caches (`crashfuzz sqlite list`),
        /// or a path to a libsqlite3.so.
        #[arg(long, value_name = "BUILD")]
        sqlite: Option<SqliteBuild>,
    },
    /// The SQLite builds crashfuzz can obtain itself (from crates.io's libsqlite3-sys releases,
    /// compiled once and cached).
    #[command(subcommand)]
    Sqlite(SqliteCommand),
    /// Re-run the checks on a kept failure (`RUN_DIR/failures/<trial>`).
    Replay { failure_dir: PathBuf },
    /// Rebuild a run's reports from its trials.jsonl, or merge several runs (the shards of one
    /// campaign, or different campaigns) into one report: summary.json, summary.md, junit.xml
    /// and the SVG charts. Exits 0 or 1 by the merged verdict.
    Report {
        /// Run directories (each holds run.json, trials.jsonl and summary.json).
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
        /// Where to write the reports; default the run directory itself when one is given,
        /// required when several are.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the embedded scenarios.
    Scenarios,
    /// Count the I/O of one-message commits per journal mode and synchronous level (syncs by
    /// file and flavour, directory syncs, bytes written, files created and deleted: the median
    /// and the maximum over a steady run, the commits that checkpoint apart) and of a
    /// checkpoint, through the tracing VFS on the bundled SQLite: exact, the same on every
    /// machine.
    #[command(name = "io-counts")]
    IoCounts {
        /// Steady one-message commits counted per journal mode and level (after a first one).
        #[arg(long, default_value_t = crate::fault::io_counts::STEADY_RUN.commits as u64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        commits: u64,
    },
    /// Render the durability matrix (results/durability-matrix.md) from a campaign's
    /// summary.json and, optionally, the write-latency benchmarks' JSON.
    #[command(hide = true, name = "durability-report")]
    DurabilityReport {
        /// The page to write (results/durability-matrix.md).
        out_md: PathBuf,
        /// One or more run directories (e.g. the kill and the power-loss campaigns), merged
        /// as `crashfuzz report` merges them.
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
        #[arg(long)]
        latency: Option<PathBuf>,
    },
    /// Render the hazards page (results/hazards.md) from a hazards campaign's summary.json.
    #[command(hide = true, name = "hazards-report")]
    HazardsReport {
        /// The page to write (results/hazards.md).
        out_md: PathBuf,
        /// One or more run directories, merged as `crashfuzz report` merges them.
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
    },
    /// Hold the 1-minute load average at a target with burner processes, printing it as it
    /// goes (the generator `run` uses when a scenario sets `[load] target_loadavg`).
    Load(LoadArgs),
    /// Render criterion's write-latency results (`cargo bench --bench write_latency`) as
    /// Markdown and, optionally, an SVG chart. Run by scripts/bench.sh.
    #[command(hide = true)]
    BenchReport {
        /// Criterion's output directory (target/criterion).
        criterion_dir: PathBuf,
        /// The Markdown report to write (results/write-latency.md).
        out_md: PathBuf,
        /// Also write the commit-latency chart here (results/write-latency.svg).
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Also write the commit medians for the durability page here
        /// (results/write-latency.json).
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum SqliteCommand {
    /// The versions crashfuzz can build, and which of them are cached.
    List,
    /// Build (and cache) a version now rather than when first used; about a minute.
    Build {
        /// e.g. 3.41.2 (see `crashfuzz sqlite list`).
        version: SqliteBuild,
    },
}

#[derive(Args, Debug, Default)]
struct RunArgs {
    /// An embedded scenario name (see `crashfuzz scenarios`) or a TOML file; default `default`.
    scenario: Option<String>,
    /// Run this many trials (overrides the scenario's budget).
    #[arg(long, conflicts_with = "duration")]
    trials: Option<u64>,
    /// Run for this many seconds (overrides the scenario's budget).
    #[arg(long)]
    duration: Option<u64>,
    /// The campaign seed; default random (it is printed first either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Trials run in parallel; default the number of cores.
    #[arg(long)]
    jobs: Option<usize>,
    /// The run directory; default results/runs/<run-id>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where trial databases live; default the system temp directory.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Run only shard I of N (1-based), e.g. 2/4.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Run only this trial index (with the same --seed: re-runs one trial of a campaign).
    #[arg(long)]
    trial: Option<u64>,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
    /// The fewest distinct crash states each cell must check; a cell with fewer is `no-data`,
    /// which fails the run. A budget that cannot reach it in some cell is refused up front.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    min_states: u64,
    /// Run every cell on these SQLite builds, replacing each [[matrix]] block's `sqlite` axis:
    /// `bundled`, `system`, a version (`crashfuzz sqlite list`) or a path to a libsqlite3.so;
    /// repeat the flag or separate with commas.
    #[arg(long, value_name = "BUILD", value_delimiter = ',')]
    sqlite: Vec<SqliteBuild>,
    /// Continue a campaign that was killed, from its run directory: the same scenario, seed
    /// and budget (read back from its run.json); the trials already in its trials.jsonl are
    /// not run again. `--jobs`, `--workdir` and `--no-progress` may be given anew.
    #[arg(
        long,
        value_name = "RUN_DIR",
        conflicts_with_all = ["scenario", "trials", "duration", "seed", "out", "shard", "trial", "sqlite"]
    )]
    resume: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// The 1-minute load average to reach and hold.
    #[arg(long)]
    target: f64,
    /// How long to hold it, in seconds.
    #[arg(long)]
    duration: u64,
    /// Niceness of the burner processes.
    #[arg(long, default_value_t = 0)]
    nice: i32,
    /// Make one burner in four a write+fsync loop (I/O pressure) in the temp directory.
    #[arg(long)]
    io: bool,
    /// Upper bound on burner processes.
    #[arg(long, default_value_t = 64)]
    burners_max: u32,
}

fn parse_shard(s: &str) -> std::result::Result<(u64, u64), String> {
    let bad = || format!("{s:?}: expected I/N with 1 ≤ I ≤ N, e.g. 1/2");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Parses `args` (without the program name's special cases) and runs; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => EXIT_OK,
                _ => EXIT_BAD_INPUT,
            };
            let _ = e.print();
            return code;
        }
    };
    let command_line = args.join(" ");
    let result = match cli.command {
        None => run(RunArgs::default(), command_line),
        Some(Command::Run(a)) => run(a, command_line),
        Some(Command::Check { db_path, quick, sqlite }) => check_command(db_path, quick, sqlite),
        Some(Command::Sqlite(SqliteCommand::List)) => sqlite_list_command(),
        Some(Command::Sqlite(SqliteCommand::Build { version })) => sqlite_build_command(&version),
        Some(Command::Replay { failure_dir }) => replay_command(failure_dir),
        Some(Command::Report { run_dirs, out }) => crate::report::merge::run(&run_dirs, out.as_deref(), &command_line),
        Some(Command::Scenarios) => scenarios_command(),
        Some(Command::IoCounts { commits }) => io_counts_command(commits as usize),
        Some(Command::DurabilityReport { out_md, run_dirs, latency }) => {
            durability_report_command(&out_md, &run_dirs, latency.as_deref())
        }
        Some(Command::HazardsReport { out_md, run_dirs }) => hazards_report_command(&out_md, &run_dirs),
        Some(Command::Load(a)) => load_command(a),
        Some(Command::BenchReport { criterion_dir, out_md, svg, json }) => {
            bench_report_command(criterion_dir, out_md, svg, json)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crashfuzz: {e}");
            e.exit_code()
        }
    }
}

fn run(a: RunArgs, command: String) -> Result<i32> {
    match a.resume.clone() {
        Some(run_dir) => resume(a, run_dir, command),
        None => campaign::run(run_options(a, command)?),
    }
}

/// `run --resume RUN_DIR`: the campaign rebuilt from the arguments its run.json recorded, its
/// scenario checked against the one it ran, and run for the trials its trials.jsonl lacks.
fn resume(a: RunArgs, run_dir: PathBuf, command: String) -> Result<i32> {
    let resumed = crate::run::resume::open(&run_dir, &command)?;
    let recorded = resumed.args.clone();
    let again = RunArgs {
        scenario: Some(recorded.scenario_now()),
        trials: recorded.trials,
        duration: recorded.duration,
        seed: Some(recorded.seed),
        jobs: a.jobs.or(Some(recorded.jobs)),
        out: Some(run_dir.clone()),
        workdir: a.workdir,
        shard: recorded.shard,
        trial: None,
        no_progress: a.no_progress,
        min_states: recorded.min_states,
        sqlite: recorded.sqlite.clone(),
        resume: None,
    };
    let mut opts = run_options(again, command)?;
    let mut now = serde_json::to_value(&opts.scenario).expect("a scenario serializes");
    // Where the file is named from (a relative path then, an absolute one now) is not content.
    if let (Some(now), Some(source)) = (now.as_object_mut(), resumed.scenario.get("source")) {
        now.insert("source".to_string(), source.clone());
    }
    crate::run::resume::same_scenario(&run_dir, &resumed.scenario, &now)?;
    // run.json keeps the command and the arguments as first recorded (the working directory
    // included); this resumption's command goes in its `resumes`.
    opts.args = RunArgsRecord { jobs: opts.jobs, ..recorded };
    opts.command.clone_from(&resumed.command);
    opts.resume = Some(resumed);
    campaign::run(opts)
}

fn run_options(a: RunArgs, command: String) -> Result<RunOptions> {
    let cwd = std::env::current_dir().map_err(|e| Error::io("read the working directory", e))?;
    let named_scenario = a.scenario.clone().unwrap_or_else(|| "default".to_string());
    let scenario_arg = a.scenario.unwrap_or_else(|| "default".to_string());
    let mut scenario = scenario::resolve(&scenario_arg)?;
    let mut scenario_arg = scenario_arg;
    if !a.sqlite.is_empty() {
        let builds: Vec<SqliteName> = a.sqlite.iter().map(SqliteName::of).collect();
        for block in &mut scenario.matrix {
            block.sqlite.clone_from(&builds);
        }
        // Replay lines re-run the campaign as it ran: on the same builds.
        let named: Vec<&str> = builds.iter().map(|b| b.as_str()).collect();
        scenario_arg = format!("{scenario_arg} --sqlite {}", named.join(","));
    }
    let budget = match (a.trials, a.duration) {
        (Some(0), _) => return Err(Error::Usage("--trials: 0 is not a budget; expected ≥ 1".into())),
        (_, Some(0)) => return Err(Error::Usage("--duration: 0 is not a budget; expected seconds ≥ 1".into())),
        (Some(n), _) => Budget::Trials(n),
        (None, Some(s)) => Budget::DurationS(s),
        (None, None) => scenario.budget,
    };
    let jobs = match a.jobs {
        Some(0) => return Err(Error::Usage("--jobs: 0; expected ≥ 1".into())),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let seed = a.seed.unwrap_or_else(rand::random);
    let args = RunArgsRecord {
        cwd,
        scenario: named_scenario,
        trials: a.trials,
        duration: a.duration,
        seed,
        jobs,
        shard: a.shard,
        min_states: a.min_states.max(1),
        sqlite: a.sqlite.clone(),
    };
    Ok(RunOptions {
        scenario,
        scenario_arg,
        seed,
        budget,
        jobs,
        out_dir: a.out,
        workdir: a.workdir,
        shard: a.shard,
        only_trial: a.trial,
        progress: !a.no_progress,
        min_states: a.min_states.max(1),
        command,
        args,
        resume: None,
    })
}

fn print_report(report: &CheckReport) -> Vec<&'static str> {
    let mut failed = Vec::new();
    for r in &report.results {
        let ms = r.elapsed_us as f64 / 1000.0;
        match &r.outcome {
            CheckOutcome::Pass => println!("  {:<13} pass      ({ms:.1} ms)", r.check.as_str()),
            CheckOutcome::Violation { detail } => {
                failed.push(r.check.as_str());
                println!("  {:<13} VIOLATION ({ms:.1} ms): {detail}", r.check.as_str());
            }
            CheckOutcome::Blocked { reason } => {
                println!("  {:<13} blocked   : {reason}", r.check.as_str());
            }
            CheckOutcome::CouldNotRun { reason } => {
                println!("  {:<13} NOT RUN   : {reason}", r.check.as_str());
            }
        }
    }
    failed
}

fn check_command(db_path: PathBuf, quick: bool, sqlite: Option<SqliteBuild>) -> Result<i32> {
    // The other build is resolved first (built, if need be) and loaded once: one that cannot
    // be had is bad input, said before any work.
    let other = match &sqlite {
        None => None,
        Some(build) => Some(usable_build(build, "--sqlite")?),
    };
    let meta = std::fs::metadata(&db_path).map_err(|source| Error::BadPath {
        path: db_path.clone(),
        what: "cannot read the database".into(),
        source,
    })?;
    if !meta.is_file() {
        return Err(Error::BadPath {
            path: db_path,
            what: "not a file".into(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    let cfg = CheckConfig {
        integrity: if quick { IntegrityLevel::Quick } else { IntegrityLevel::Full },
        fts_samples: 16,
        seed: 0,
        // A foreign database keeps its own journal mode; the probe write runs on a copy.
        reopen: ReopenConfig { pragmas: None, writer_id: u64::from(u32::MAX), workload: WorkloadConfig::default() },
        // The session store's checks run when the file holds its tables.
        schema: &crate::oracle::ledger::SESSION_STORE,
    };
    println!("crashfuzz check {} (on a copy; the file is not modified)", db_path.display());
    let report = oracle::check_copy(&db_path, &cfg, None)
        .map_err(|e| Error::Harness(format!("{}: checks could not run: {e:#}", db_path.display())))?;
    let failed = print_report(&report);
    let mut disagree = Vec::new();
    if let Some(other) = other {
        let cross = crate::oracle::crosscheck::cross_check(&db_path, &other)
            .map_err(|e| Error::Harness(format!("{}: cross-version check: {e:#}", db_path.display())))?;
        println!(
            "cross-version: SQLite {} (bundled) vs SQLite {}: {other}",
            cross.bundled_version, cross.other_version
        );
        for c in &cross.checks {
            let side = |r: &std::result::Result<(), String>| match r {
                Ok(()) => "ok".to_string(),
                Err(e) => e.clone(),
            };
            let mark = if c.agrees() { "agree   " } else { "DISAGREE" };
            println!("  {mark} {}: bundled {}; other {}", c.what, side(&c.bundled), side(&c.other));
        }
        disagree = cross.disagreements().iter().map(|c| c.what.clone()).collect();
    }
    match (failed.is_empty(), disagree.is_empty()) {
        (true, true) => {
            println!("ok: every check passed");
            Ok(EXIT_OK)
        }
        (false, _) => {
            println!("FAILED: {}", failed.join(", "));
            if !disagree.is_empty() {
                println!("DISAGREEMENT between SQLite builds: {}", disagree.join(", "));
            }
            Ok(EXIT_VERDICT_FAILED)
        }
        (true, false) => {
            // Each build is consistent with itself and the two disagree: its own finding.
            println!("DISAGREEMENT between SQLite builds: {}", disagree.join(", "));
            Ok(EXIT_VERDICT_FAILED)
        }
    }
}

/// `build` made concrete (built first if it is a version not yet cached) and loaded once in a
/// child; `what` names who asked for it in the error.
fn usable_build(build: &SqliteBuild, what: &str) -> Result<ResolvedBuild> {
    let bad = |source| Error::SqliteBuild { what: format!("{what} {build}"), source };
    let resolved = builds::resolve(build).map_err(bad)?;
    let exe = crate::base::process::own_exe().map_err(|e| Error::io("locate the crashfuzz executable", e))?;
    crate::sqlite::child::identify(&exe, &resolved).map_err(bad)?;
    Ok(resolved)
}

fn sqlite_list_command() -> Result<i32> {
    let cache = builds::cache_dir().map_err(|source| Error::SqliteBuild { what: "cache".into(), source })?;
    println!("SQLite builds crashfuzz compiles from crates.io's libsqlite3-sys (cache: {}):", cache.display());
    for (version, crate_version) in builds::available() {
        let state = match builds::cached(&cache, version) {
            Some(path) => format!("cached  {}", path.display()),
            None => "not built".to_string(),
        };
        println!("  {version:<8} libsqlite3-sys {crate_version:<7} {state}");
    }
    let exe = crate::base::process::own_exe().map_err(|e| Error::io("locate the crashfuzz executable", e))?;
    let system_state =
        match builds::resolve(&SqliteBuild::System).and_then(|b| crate::sqlite::child::identify(&exe, &b)) {
            Ok(identity) => format!("SQLite {}", identity.version),
            Err(e) => format!("not usable: {e}"),
        };
    println!("  bundled  SQLite {} (linked in)", rusqlite::version());
    println!("  system   {} ({system_state})", builds::SONAME);
    println!("A path to a libsqlite3.so is a build too. A version is built on first use (about a minute), or ahead");
    println!("of it with `crashfuzz sqlite build VERSION`.");
    Ok(EXIT_OK)
}

fn sqlite_build_command(build: &SqliteBuild) -> Result<i32> {
    let resolved = usable_build(build, "sqlite build")?;
    println!("{resolved}");
    Ok(EXIT_OK)
}

fn replay_command(dir: PathBuf) -> Result<i32> {
    let (kept, report) = crate::run::keep::replay(&dir)?;
    println!("crashfuzz replay: trial {} of cell {} (seed {})", kept.trial, kept.cell_id, kept.seed);
    let before: Vec<&str> = kept
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, CheckOutcome::Violation { .. }))
        .map(|c| c.check.as_str())
        .collect();
    let mut failed = false;
    match &report {
        None => println!("no image was kept: every image of this trial passed its checks"),
        Some(report) => {
            let now = print_report(report);
            failed = !now.is_empty();
            if now == before && before.is_empty() {
                println!("reproduced: the image passes its checks, as in the campaign");
            } else if now == before {
                println!("reproduced: the same image checks fail as in the campaign ({})", before.join(", "));
            } else {
                println!(
                    "NOT reproduced: the campaign's image checks saw [{}], the replay sees [{}]",
                    before.join(", "),
                    now.join(", ")
                );
            }
        }
    }
    // What the processes did is no property of the image: it is shown as recorded.
    for f in &kept.process_findings {
        failed = true;
        println!("recorded, not replayable from an image: {}: {}", f.check.as_str(), f.detail);
    }
    if !kept.process_findings.is_empty() {
        println!(
            "  (an event of the trial's processes; re-run the trial with `crashfuzz run {} --seed {} --trial {}`: \
             the same plan, not the same interleaving)",
            kept.scenario, kept.campaign_seed, kept.trial
        );
    }
    Ok(if failed { EXIT_VERDICT_FAILED } else { EXIT_OK })
}

fn load_command(a: LoadArgs) -> Result<i32> {
    if !(a.target.is_finite() && a.target > 0.0 && a.target <= 1000.0) {
        return Err(Error::Usage(format!("--target: {}; expected a load average in (0, 1000]", a.target)));
    }
    if a.duration == 0 {
        return Err(Error::Usage("--duration: 0; expected seconds ≥ 1".into()));
    }
    if !(-20..=19).contains(&a.nice) {
        return Err(Error::Usage(format!("--nice: {}; expected -20..=19", a.nice)));
    }
    crate::run::campaign::install_signal_thread()?;
    let exe = crate::base::process::own_exe().map_err(|e| Error::io("locate the crashfuzz executable", e))?;
    let cfg = crate::fault::load::LoadConfig {
        target_loadavg: a.target,
        burners_max: a.burners_max,
        nice: a.nice,
        io_pressure: a.io,
        warmup_timeout_s: a.duration,
    };
    println!("crashfuzz load: target {} for {} s (Ctrl-C stops and kills every burner)", a.target, a.duration);
    let stop = &crate::run::campaign::STOP;
    let held = crate::fault::load::run_standalone(exe, cfg, std::time::Duration::from_secs(a.duration), stop)
        .map_err(|e| Error::io("run the load generator", e))?;
    match (held.reached_after_s, held.range_after) {
        (Some(r), Some((lo, hi))) => println!(
            "reached {:.0}% of the target after {r:.0} s; then between {lo:.2} and {hi:.2} ({:+.0}% .. {:+.0}%)",
            crate::fault::load::REACHED_FRACTION * 100.0,
            (lo / a.target - 1.0) * 100.0,
            (hi / a.target - 1.0) * 100.0
        ),
        (Some(r), None) => println!("reached the target after {r:.0} s"),
        (None, _) => println!("the target was not reached in {} s", a.duration),
    }
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(crate::error::EXIT_INTERRUPTED);
    }
    Ok(EXIT_OK)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::BadPath {
        path: path.to_path_buf(),
        what: "cannot read".into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Scenario {
        file: path.display().to_string(),
        line: Some(e.line()),
        setting: "json".into(),
        message: e.to_string(),
    })
}

/// The campaigns a committed page is rendered from: one line per run (its command, trials, seed
/// and time, and the machine it ran on) and their summary, rebuilt and merged from their
/// trials as `crashfuzz report` does.
fn load_runs(
    out_md: &std::path::Path,
    run_dirs: &[PathBuf],
    merged_by: &str,
) -> Result<(crate::report::summary::Summary, String)> {
    let mut run_lines = Vec::new();
    for dir in run_dirs {
        let summary: crate::report::summary::Summary = read_json(&dir.join("summary.json"))?;
        let run: serde_json::Value = read_json(&dir.join("run.json"))?;
        let machine = &run["machine"];
        run_lines.push(format!(
            "`{}` ({} trials, seed {}, {:.0} s) on {} ({} CPUs, {}), {}",
            summary.meta.command,
            summary.trials,
            summary.meta.seed.map_or("mixed".to_string(), |s| s.to_string()),
            summary.duration_s,
            machine["hostname"].as_str().unwrap_or("?"),
            machine["cpus"],
            machine["kernel"].as_str().map_or("?".to_string(), |k| format!("Linux {k}")),
            summary.meta.started_at
        ));
    }
    // Rebuilt from the trials even for one run, so that a page never shows a figure an older
    // summary.json did not have.
    let out_dir = out_md.parent().unwrap_or(std::path::Path::new("."));
    let merged = crate::report::merge::merge_runs(run_dirs, out_dir, merged_by)?;
    for w in &merged.warnings {
        eprintln!("crashfuzz: warning: {w}");
    }
    let summary = merged.summary;
    Ok((summary, run_lines.join("; ")))
}

fn write_page(out_md: &std::path::Path, md: String) -> Result<i32> {
    std::fs::write(out_md, md).map_err(|source| Error::BadPath {
        path: out_md.to_path_buf(),
        what: "cannot write".into(),
        source,
    })?;
    println!("wrote {}", out_md.display());
    Ok(EXIT_OK)
}

fn durability_report_command(
    out_md: &std::path::Path,
    run_dirs: &[PathBuf],
    latency: Option<&std::path::Path>,
) -> Result<i32> {
    let latency: Option<crate::report::pages::durability::LatencyReport> = latency.map(read_json).transpose()?;
    let (summary, runs) = load_runs(out_md, run_dirs, "crashfuzz durability-report")?;
    let bench = match &latency {
        Some(_) => "`scripts/bench.sh` (the paired costs and criterion medians: results/write-latency.md)".to_string(),
        None => "not given".to_string(),
    };
    let io = commit_io_table()?;
    write_page(out_md, crate::report::pages::durability::render(&summary, &runs, latency.as_ref(), &bench, Some(&io)))
}

fn hazards_report_command(out_md: &std::path::Path, run_dirs: &[PathBuf]) -> Result<i32> {
    let (summary, runs) = load_runs(out_md, run_dirs, "crashfuzz hazards-report")?;
    write_page(out_md, crate::report::pages::hazards::render(&summary, &runs))
}

/// One steady commit's I/O (the median over [`crate::fault::io_counts::STEADY_RUN`]) per
/// journal mode and level, counted in a scratch directory of its own.
fn commit_io_table() -> Result<crate::report::pages::durability::IoTable> {
    let (scratch, trace) = io_counts_scratch()?;
    let dir = trace.parent().expect("in the scratch directory");
    let table = crate::fault::io_counts::per_commit_table(&trace, dir, crate::fault::io_counts::STEADY_RUN)
        .map_err(|e| Error::Harness(format!("count the I/O of one commit: {e:#}")))?
        .into_iter()
        .map(|(cell, io)| (cell, io.steady.median))
        .collect();
    drop(scratch);
    Ok(table)
}

/// The I/O counts' scratch directory (removed when dropped) and the trace the VFS registered
/// in this process writes there.
fn io_counts_scratch() -> Result<(tempfile::TempDir, PathBuf)> {
    let scratch =
        crate::base::scratch::create(None, "io-counts-").map_err(|e| Error::io("create a scratch directory", e))?;
    let dir = scratch.path().canonicalize().map_err(|e| Error::io("resolve the scratch directory", e))?;
    let trace = crate::fault::io_counts::register_in(&dir)
        .map_err(|e| Error::Harness(format!("register the tracing VFS: {e:#}")))?;
    Ok((scratch, trace))
}

fn io_counts_command(commits: usize) -> Result<i32> {
    use crate::fault::io_counts::{self, FileRole, STEADY_RUN};
    use crate::scenario::matrix::Synchronous;
    let (scratch, trace) = io_counts_scratch()?;
    let dir = trace.parent().expect("the trace is in the scratch directory").to_path_buf();
    let shape = io_counts::RunShape { commits, ..STEADY_RUN };
    let table = io_counts::per_commit_table(&trace, &dir, shape)
        .map_err(|e| Error::Harness(format!("count the I/O of one commit: {e:#}")))?;
    println!(
        "One-message commits ({} bytes, both FTS5 indexes), SQLite {}: {} per cell after a first one, on a \
         fresh seeded database, automatic checkpoint at {} pages. Each count is the median over the steady \
         commits, `(max N)` when one commit did more; the commits that ran the checkpoint are counted apart.\n",
        io_counts::MESSAGE_BYTES,
        rusqlite::version(),
        shape.commits,
        shape.autocheckpoint_pages
    );
    println!(
        "| journal | synchronous | steady commits | syncs | of which data-only | dir syncs | bytes written: db / journal / WAL | files created / deleted | checkpointing commits: count, syncs, bytes to db |"
    );
    println!("|---|---|--:|---|--:|--:|---|--:|---|");
    let with_max =
        |median: u64, max: u64| if max > median { format!("{median} (max {max})") } else { median.to_string() };
    for ((mode, sync), io) in &table {
        let (m, x) = (&io.steady.median, &io.steady.max);
        let data_only =
            |io: &io_counts::Io| -> u32 { io.syncs.iter().filter(|((_, f), _)| f.data_only).map(|(_, n)| n).sum() };
        let bytes =
            |r| with_max(m.bytes_written.get(&r).copied().unwrap_or(0), x.bytes_written.get(&r).copied().unwrap_or(0));
        let syncs = match io_counts::syncs_in_words(x) {
            max if max != io_counts::syncs_in_words(m) => format!("{} (max: {max})", io_counts::syncs_in_words(m)),
            same => same,
        };
        let checkpointing = io.checkpointing.as_ref().map_or("—".to_string(), |c| {
            format!(
                "{}, {}, {}",
                c.of,
                io_counts::syncs_in_words(&c.median),
                with_max(
                    c.median.bytes_written.get(&FileRole::Db).copied().unwrap_or(0),
                    c.max.bytes_written.get(&FileRole::Db).copied().unwrap_or(0)
                )
            )
        });
        println!(
            "| {} | {} | {} | {syncs} | {} | {} | {} / {} / {} | {} / {} | {checkpointing} |",
            mode.as_sql().to_uppercase(),
            sync.as_sql().to_uppercase(),
            io.steady.of,
            with_max(u64::from(data_only(m)), u64::from(data_only(x))),
            with_max(u64::from(m.dir_syncs), u64::from(x.dir_syncs)),
            bytes(FileRole::Db),
            bytes(FileRole::Journal),
            bytes(FileRole::Wal),
            with_max(u64::from(m.created), u64::from(x.created)),
            with_max(u64::from(m.deleted), u64::from(x.deleted)),
        );
    }
    println!("\nOne PRAGMA wal_checkpoint after ten such commits in WAL mode, automatic checkpoints off:\n");
    println!("| synchronous | checkpoint | syncs | bytes written to db | WAL truncations |");
    println!("|---|---|---|--:|--:|");
    for sync in [Synchronous::Normal, Synchronous::Full, Synchronous::Extra] {
        for mode in ["PASSIVE", "TRUNCATE"] {
            let db_dir = dir.join(format!("checkpoint-{}-{mode}", sync.as_sql()));
            std::fs::create_dir(&db_dir).map_err(|e| Error::io(format!("create {}", db_dir.display()), e))?;
            let io = io_counts::checkpoint(&trace, &db_dir, sync, mode, 10)
                .map_err(|e| Error::Harness(format!("count a checkpoint's I/O: {e:#}")))?;
            println!(
                "| {} | {mode} | {} | {} | {} |",
                sync.as_sql().to_uppercase(),
                io_counts::syncs_in_words(&io),
                io.bytes_written.get(&FileRole::Db).copied().unwrap_or(0),
                io.truncations.get(&FileRole::Wal).copied().unwrap_or(0)
            );
        }
    }
    drop(scratch);
    Ok(EXIT_OK)
}

fn scenarios_command() -> Result<i32> {
    for (name, _) in scenario::embedded() {
        let s = scenario::resolve(name)?;
        println!("{name:<21} {:>3} cells  {}", s.cells().len(), s.description.lines().next().unwrap_or(""));
    }
    Ok(EXIT_OK)
}

fn bench_report_command(
    criterion_dir: PathBuf,
    out_md: PathBuf,
    svg: Option<PathBuf>,
    json: Option<PathBuf>,
) -> Result<i32> {
    let io = commit_io_table()?;
    crate::report::pages::bench::run(&criterion_dir, &out_md, svg.as_deref(), json.as_deref(), Some(&io))?;
    for path in std::iter::once(&out_md).chain(svg.iter()).chain(json.iter()) {
        println!("wrote {}", path.display());
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("1/2"), Ok((1, 2)));
        assert_eq!(parse_shard("2/2"), Ok((2, 2)));
        for bad in ["0/2", "3/2", "1/0", "x/2", "12", ""] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_flags_are_usage_errors() {
        let args = |s: &str| std::iter::once("crashfuzz".to_string()).chain(s.split(' ').map(String::from)).collect();
        assert_eq!(main(args("run --no-such-flag")), EXIT_BAD_INPUT);
        assert_eq!(main(args("run --trials 3 --duration 4")), EXIT_BAD_INPUT);
        assert_eq!(main(args("run --shard 3/2")), EXIT_BAD_INPUT);
        assert_eq!(main(args("report")), EXIT_BAD_INPUT);
    }
}

//! One trial end to end: prepare the database, start the writers, inject the fault, reap and
//! assert how each child died, check the crash image(s), keep a failure — and the
//! [`TrialRecord`] that becomes one line of `trials.jsonl`.
//!
//! The driver never opens a trial's database while a writer of that trial is alive: the
//! checks start only after every writer has been reaped. For a process crash (kill, crash
//! point, I/O error) the crash image is the files exactly as the writers left them (a pristine
//! copy is taken first, so a kept failure is the image before recovery); for a power loss the
//! images are built from the writers' trace (`imaging`).
//!
//! Fault by fault:
//! - `kill`, `sigkill_only`: the window (uniform or after a bulk announcement), then the
//!   signal(s).
//! - `power_loss`: the same window, SIGKILL, then `images_per_trace` images from the trace.
//! - `crash_point`: the writer's VFS kills it at operation n; the driver only waits.
//! - `io_error`: the writer's VFS fails operation n; once the writer announces it, the driver
//!   SIGKILLs it after a random delay.

use crate::base::dbfiles::{
    self, DB_NAME, Files, copy_image, db_bytes, move_db_files, read_files, remove_db_files, sidecar,
};
use crate::base::process::{DeathKind, micros};
use crate::error::{Error, Result};
use crate::fault::death::{self, DeathFacts, DeathVerdict};
use crate::fault::misuse::{self, LockTarget, WriterHazard};
use crate::fault::power_loss::builder::{Choice, Device};
use crate::fault::power_loss::images::{self, Imaging};
use crate::fault::trace;
use crate::fault::vfs::{Injection, VfsConfig};
use crate::oracle::crosscheck;
use crate::oracle::{self, CheckConfig, CheckReport, ReopenConfig};
use crate::record::checks::CheckResult;
use crate::record::checks::ViolationKind;
use crate::record::expected::Expected;
use crate::record::expected::WriterExpectation;
use crate::record::{
    Death, FailedTxn, InjectionRecord, Role, ShutdownRecord, SurvivorRecord, TrialOutcome, TrialPlan, TrialRecord,
    TrialTiming,
};
use crate::run::ids::{recovery_writer_id, trial_seed, writer_id};
use crate::run::topology::{Fleet, VictimChoice};
use crate::scenario::matrix::{Cell, FaultKind, JournalMode, KillTiming, SigtermBehaviour};
use crate::scenario::{CrashPoints, DatabaseMode, Scenario};
use crate::writer::acklog::AckLog;
use crate::writer::pragmas::{self, Pragmas};
use crate::writer::process::{self, Announcement};
use crate::writer::protocol::ANNOUNCE_BULK;
use crate::writer::protocol::ANNOUNCE_INJECTED;
use crate::writer::protocol::ANNOUNCE_READY;
use crate::writer::protocol::WriterConfig;
use crate::writer::session_store::{self, WorkloadConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The pragmas every connection of `cell` uses.
pub fn cell_pragmas(cell: &Cell, workload: &WorkloadConfig) -> Pragmas {
    Pragmas {
        journal_mode: cell.journal_mode,
        synchronous: cell.synchronous,
        busy_timeout_ms: workload.busy_timeout_ms,
        cache_size_kib: workload.cache_size_kib,
        // Outside WAL mode the setting is inert; SQLite's default keeps the read-back honest.
        wal_autocheckpoint_pages: cell.checkpoint.map_or(1000, |p| p.wal_autocheckpoint_pages()),
        fullfsync: cell.fullfsync,
    }
}

/// A freshly seeded database for one cell, copied for every trial of it.
#[derive(Clone, Debug)]
pub struct Template {
    pub path: PathBuf,
    /// Transactions the seed wrote as writer [`session_store::SEED_WRITER`].
    pub seed_txns: u64,
    /// Systematic crash points: the writer seed of the short trace, and its operation count.
    pub short_trace: Option<(u64, u64)>,
}

/// Creates and seeds the template database of `cell` at `path`, then closes it (in WAL mode
/// the close checkpoints and removes the `-wal`, leaving one self-contained file).
pub fn build_template(path: &Path, cell: &Cell, workload_cfg: &WorkloadConfig, seed: u64) -> Result<Template> {
    let ctx = |what: &str| format!("template {} for {}: {what}", path.display(), cell.id());
    let mut conn = rusqlite::Connection::open(path).map_err(|e| Error::sqlite(ctx("open"), e))?;
    session_store::create_schema(&conn, workload_cfg).map_err(|e| Error::sqlite(ctx("schema"), e))?;
    pragmas::apply(&conn, &cell_pragmas(cell, workload_cfg)).map_err(|e| Error::Harness(ctx(&e.to_string())))?;
    let seed_txns = session_store::seed(&mut conn, workload_cfg, seed).map_err(|e| Error::sqlite(ctx("seed"), e))?;
    conn.close().map_err(|(_, e)| Error::sqlite(ctx("close"), e))?;
    // PERSIST keeps its journal with a zeroed header after every commit: not hot, not needed.
    // Remove it so the template is one self-contained file like the others.
    let journal = sidecar(path, "-journal");
    if cell.journal_mode == JournalMode::Persist && journal.exists() {
        std::fs::remove_file(&journal).map_err(|e| Error::io(ctx("remove the persisted journal"), e))?;
    }
    for suffix in ["-wal", "-journal"] {
        let side = sidecar(path, suffix);
        if side.exists() && std::fs::metadata(&side).map(|m| m.len()).unwrap_or(0) > 0 {
            return Err(Error::Harness(ctx(&format!("{} left behind after close", side.display()))));
        }
    }
    // Make the template durable: the power-loss model takes the files present at a trial's
    // start as durable, so they must be.
    for file in [path.to_path_buf(), path.parent().unwrap_or(Path::new(".")).to_path_buf()] {
        std::fs::File::open(&file).and_then(|f| f.sync_all()).map_err(|e| Error::io(ctx("fsync"), e))?;
    }
    Ok(Template { path: path.to_path_buf(), seed_txns, short_trace: None })
}

/// Systematic crash points: runs one writer (seed `writer_seed`) on a copy of the template
/// through the tracing VFS for `txns` transactions to the end, and counts its operations. A
/// writer with the same seed on the same template performs the same operations in the same
/// order, so crash point n of every later trial is the same operation.
pub fn measure_short_trace(
    exe: &Path,
    template: &Template,
    cell: &Cell,
    sc: &Scenario,
    dir: &Path,
    writer_seed: u64,
) -> Result<u64> {
    let io = |what: String| move |e: std::io::Error| Error::io(what, e);
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let db = dir.join(DB_NAME);
    remove_db_files(&db).map_err(io(format!("clear {}", db.display())))?;
    std::fs::copy(&template.path, &db).map_err(io(format!("copy template to {}", db.display())))?;
    let trace_path = dir.join("trace.bin");
    let _ = std::fs::remove_file(&trace_path);
    let cfg = WriterConfig {
        vfs: Some(VfsConfig { writer: writer_id(0, 0), trace_path: trace_path.clone(), injection: Injection::None }),
        workload: WorkloadConfig { txns_max: u64::from(sc.crash_point.txns), ..sc.workload.clone() },
        ..writer_config(cell, sc, &db, vec![dir.join("acks.log")], writer_id(0, 0), writer_seed, false)
    };
    let stderr = dir.join("stderr.log");
    let mut child = process::spawn(exe, &cfg, &stderr).map_err(io("spawn the short-trace writer".into()))?;
    let timeout = Duration::from_millis(sc.kill.ready_timeout_ms) * 4;
    let injected = process::inject(&mut [&mut child], None, timeout).map_err(io("wait".into()))?;
    let how = injected.deaths[0].2;
    if how != DeathKind::Exit(0) {
        let text = std::fs::read_to_string(&stderr).unwrap_or_default();
        return Err(Error::Harness(format!(
            "{}: the short-trace writer ended {} instead of finishing: {}",
            cell.id(),
            how.label(),
            text.trim()
        )));
    }
    let trace = trace::read(&trace_path).map_err(Error::Harness)?;
    Ok(trace.records.iter().filter(|r| is_counted_op(r)).count() as u64)
}

/// The operations the VFS counts for crash points and I/O errors.
fn is_counted_op(r: &trace::Record) -> bool {
    use trace::Record as R;
    match r {
        R::Write { .. } | R::Sync { .. } | R::Truncate { .. } => true,
        R::Open { .. }
        | R::DirSync { .. }
        | R::Delete { .. }
        | R::Close { .. }
        | R::Begin { .. }
        | R::Ack { .. }
        | R::Injected { .. } => false,
    }
}

/// What a long-lived writer of `cell` does besides writing (the fork hazard: only the first,
/// which the trial gives two writer ids).
fn writer_hazard(cell: &Cell, sc: &Scenario) -> Option<WriterHazard> {
    let interval_us_max = sc.hazard.lock_cancel_interval_us_max;
    match cell.fault {
        FaultKind::LockCancel => Some(WriterHazard::LockCancel { target: LockTarget::Db, interval_us_max }),
        FaultKind::LockCancelWal => Some(WriterHazard::LockCancel { target: LockTarget::Wal, interval_us_max }),
        FaultKind::LockCancelShm => Some(WriterHazard::LockCancel { target: LockTarget::Shm, interval_us_max }),
        FaultKind::ForkConnection => Some(WriterHazard::ForkConnection),
        FaultKind::Kill
        | FaultKind::SigkillOnly
        | FaultKind::PowerLoss
        | FaultKind::CrashPoint
        | FaultKind::IoError
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::CrossVersion => None,
    }
}

/// The writer configuration of `cell` (without VFS; callers add it).
fn writer_config(
    cell: &Cell,
    sc: &Scenario,
    db: &Path,
    ack_paths: Vec<PathBuf>,
    id: u64,
    seed: u64,
    bulk_first: bool,
) -> WriterConfig {
    WriterConfig {
        db_path: db.to_path_buf(),
        connections: ack_paths.len() as u32,
        ack_paths,
        checkpoint_timer_ms: sc.topology.checkpoint_timer_ms,
        writer_id: id,
        seed,
        pragmas: cell_pragmas(cell, &sc.workload),
        workload: sc.workload.clone(),
        sigterm: cell.sigterm.unwrap_or(SigtermBehaviour::Default),
        graceful_checkpoint: sc.kill.graceful_checkpoint,
        checkpoint: cell.checkpoint,
        bulk_first,
        parent_pid: std::process::id() as i32,
        vfs: None,
        tolerate_io_errors: cell.fault == FaultKind::IoError,
        hazard: writer_hazard(cell, sc),
        gated: false,
    }
}

/// One worker's place to run trials: its directory, and under `continue` the databases it
/// keeps across trials, one per cell, with what is known to be in each.
#[derive(Debug)]
pub struct Lane {
    pub dir: PathBuf,
    /// `continue`: per cell, the database a clean trial of it left (stashed in
    /// [`Lane::stash`]) and what is in it.
    kept: BTreeMap<usize, KeptDatabase>,
}

/// A database kept for the next trial of its cell (`continue`).
#[derive(Debug)]
struct KeptDatabase {
    /// Per writer, what the database holds: the present transactions of every earlier trial.
    history: BTreeMap<u64, WriterExpectation>,
    /// The trial that left it.
    trial: u64,
}

impl Lane {
    pub fn new(dir: PathBuf) -> Lane {
        Lane { dir, kept: BTreeMap::new() }
    }

    fn db(&self) -> PathBuf {
        self.dir.join(DB_NAME)
    }

    /// Where cell `cell`'s continued database waits between its trials.
    fn stash(&self, cell: usize) -> PathBuf {
        self.dir.join(format!("continue-{cell}")).join(DB_NAME)
    }
}

/// What every trial of a campaign shares.
pub struct TrialEnv<'a> {
    /// The `crashfuzz` executable writers are started from.
    pub exe: &'a Path,
    /// `[hazard] other_sqlite`, resolved before any trial when the matrix has cross_version
    /// cells.
    pub other_sqlite: Option<&'a crate::sqlite::builds::ResolvedBuild>,
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

/// What is kept in `failures/<trial>/trial.json`: enough to re-run the checks (`replay`) on
/// the kept image, and to re-run the whole trial.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeptTrial {
    pub trial: u64,
    pub seed: u64,
    pub campaign_seed: u64,
    pub cell: Cell,
    pub cell_id: String,
    pub scenario: String,
    pub pragmas: Pragmas,
    pub workload: WorkloadConfig,
    pub integrity: crate::oracle::IntegrityLevel,
    pub fts_samples: u32,
    pub recovery_writer: u64,
    pub expected: Expected,
    /// The image's own checks as the campaign ran them (what `replay` re-runs and compares).
    pub checks: Vec<CheckResult>,
    /// What the trial's processes showed, not its image (a writer that crashed, one that
    /// failed to write on): recorded here, and re-run only by re-running the trial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process_findings: Vec<ProcessFinding>,
    /// No image was kept: only the processes failed (a power-loss trial whose images all
    /// passed). `replay` then has only the recorded findings to show.
    #[serde(default)]
    pub no_image: bool,
    /// A cross_version cell: the other build that judged the image too (`replay` asks it
    /// again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_sqlite: Option<crate::sqlite::builds::SqliteBuild>,
    /// A power-loss image: how to rebuild it from `base/` and `trace.bin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss: Option<KeptPowerLoss>,
}

/// A finding of a trial's processes, as kept for `replay`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFinding {
    pub check: ViolationKind,
    pub detail: String,
}

/// A kept power-loss image: the cut, the fate of each undetermined operation, and the hash of
/// the files they build (a replay proves it rebuilt the same bytes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeptPowerLoss {
    pub cut: u64,
    pub device: Device,
    pub choices: Vec<Choice>,
    pub files_hash: u64,
    /// The shrunk choices (a minimal set of lost writes that still fails) and their words.
    pub shrunk: Vec<Choice>,
    pub explanation: Vec<String>,
}

/// File name of the image inside a kept failure directory.
pub const KEPT_IMAGE_DIR: &str = "image";
/// Power loss: the files present at the trial's start, and the trace.
pub const KEPT_BASE_DIR: &str = "base";
pub const KEPT_TRACE: &str = "trace.bin";

/// The plan of one trial's fault: the injection of the VFS, if any.
fn injection_for(env: &TrialEnv<'_>, cell: &Cell, cell_index: usize, trial: u64, rng: &mut ChaCha8Rng) -> Injection {
    let sc = env.scenario;
    match cell.fault {
        FaultKind::Kill | FaultKind::SigkillOnly | FaultKind::PowerLoss => Injection::None,
        FaultKind::LockCancel
        | FaultKind::LockCancelWal
        | FaultKind::LockCancelShm
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::ForkConnection
        | FaultKind::CrossVersion => Injection::None,
        FaultKind::CrashPoint => match (sc.crash_point.points, env.templates[cell_index].short_trace) {
            (CrashPoints::Systematic, Some((_, ops))) => {
                // Trial k of the cell (k-th round of the matrix) crashes at operation k + 1.
                let round = trial / env.cells.len() as u64;
                Injection::CrashAt { op: 1 + round % ops.max(1) }
            }
            (CrashPoints::Systematic, None) | (CrashPoints::Random, _) => {
                Injection::CrashAt { op: rng.random_range(1..=sc.crash_point.op_max) }
            }
        },
        FaultKind::IoError => Injection::FailAt {
            op: rng.random_range(1..=sc.io_error.op_max),
            error: sc.io_error.error,
            persistent: sc.io_error.persistent,
        },
    }
}

/// Runs trial `trial` of `cell_index`. `Err` is a harness failure that stops the campaign.
pub fn run_trial(env: &TrialEnv<'_>, lane: &mut Lane, trial: u64, cell_index: usize) -> Result<TrialRecord> {
    let started_ms = u64::try_from(env.campaign_start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let cell = env.cells[cell_index];
    let sc = env.scenario;
    let seed = trial_seed(env.campaign_seed, trial);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut timing = TrialTiming::default();
    let io = |what: String| move |e: std::io::Error| Error::io(what, e);

    // --- setup. Only process kills continue a database across trials: the power-loss model
    // needs the files at the start to be durable, and the injected faults a known start.
    let t = Instant::now();
    std::fs::create_dir_all(&lane.dir).map_err(io(format!("create {}", lane.dir.display())))?;
    let db = lane.db();
    let continues = match cell.fault {
        FaultKind::Kill | FaultKind::SigkillOnly => sc.database.mode == DatabaseMode::Continue,
        FaultKind::PowerLoss | FaultKind::CrashPoint | FaultKind::IoError => false,
        // A hazard damages on purpose: every trial starts from the template.
        FaultKind::LockCancel
        | FaultKind::LockCancelWal
        | FaultKind::LockCancelShm
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::ForkConnection
        | FaultKind::CrossVersion => false,
    };
    let template = &env.templates[cell_index];
    // A continued database comes back from its stash; anything else starts from the template.
    let kept = if continues { lane.kept.remove(&cell_index) } else { None };
    let (mut history, continued_from) = match kept {
        Some(k) => {
            move_db_files(&lane.stash(cell_index), &db)
                .map_err(io(format!("restore the database of {}", cell.id())))?;
            (k.history, Some(k.trial))
        }
        None => {
            remove_db_files(&db).map_err(io(format!("clear {}", db.display())))?;
            std::fs::copy(&template.path, &db).map_err(io(format!("copy template to {}", db.display())))?;
            let n = template.seed_txns;
            (BTreeMap::from([(session_store::SEED_WRITER, WriterExpectation::upto(n, n))]), None)
        }
    };
    let db_bytes_at_start = db_bytes(&db);
    let pristine = lane.dir.join("pristine");
    if pristine.exists() {
        std::fs::remove_dir_all(&pristine).map_err(io(format!("clear {}", pristine.display())))?;
    }
    let trace_path = lane.dir.join(KEPT_TRACE);
    if trace_path.exists() {
        std::fs::remove_file(&trace_path).map_err(io(format!("clear {}", trace_path.display())))?;
    }
    timing.setup = micros(t.elapsed());

    // --- spawn the long-lived writers, and wait until each has opened the database with its
    // pragmas (every connection of it)
    let t = Instant::now();
    let pragmas = cell_pragmas(&cell, &sc.workload);
    let injection = injection_for(env, &cell, cell_index, trial, &mut rng);
    let systematic = match (cell.fault, sc.crash_point.points, template.short_trace) {
        (FaultKind::CrashPoint, CrashPoints::Systematic, Some(short)) => Some(short),
        _ => None,
    };
    let (n_long, connections) =
        if systematic.is_some() { (1, 1) } else { (sc.workload.writers, sc.topology.connections) };
    let first_id = writer_id(trial, 0);
    let mut fleet = Fleet::new((first_id, recovery_writer_id(trial)), &sc.topology);
    // The process an injected fault (crash point, I/O error) lives in is decided now; a
    // signal's victim may be chosen among every live process at the moment of the fault.
    let injected_victim = match (sc.topology.victim, cell.fault.uses_vfs()) {
        (VictimChoice::Any, true) => rng.random_range(0..n_long as usize),
        (VictimChoice::Gateway, _) | (VictimChoice::Any, false) => 0,
    };
    let mut plan = TrialPlan { injected_victim: injected_victim as u32, ..TrialPlan::default() };
    let vfs_for = |id: u64, injection: Injection| VfsConfig { writer: id, trace_path: trace_path.clone(), injection };
    for p in 0..n_long as usize {
        let writer_seed: u64 = rng.random();
        plan.writer_seeds.push(writer_seed);
        let bulk_first = cell.timing == KillTiming::Bulk && p == injected_victim;
        let mut make = |id: u64, acks: Vec<PathBuf>| {
            let mut cfg = writer_config(&cell, sc, &db, acks, id, writer_seed, bulk_first);
            if cell.fault.uses_vfs() {
                cfg.vfs = Some(vfs_for(id, if p == injected_victim { injection } else { Injection::None }));
            }
            if cell.fault == FaultKind::ForkConnection && p > 0 {
                cfg.hazard = None;
            }
            cfg.gated = true;
            if let Some((short_seed, _)) = systematic {
                // The short trace's writer: same seed, same transactions, same operations.
                cfg.seed = short_seed;
                cfg.workload.txns_max = u64::from(sc.crash_point.txns);
            }
            cfg
        };
        let role = if p == injected_victim { Role::Victim } else { Role::Survivor };
        // The fork hazard: the first process's child writes as its second writer id.
        let conns = if cell.fault == FaultKind::ForkConnection && p == 0 { 2 } else { connections };
        fleet
            .spawn(env.exe, &lane.dir, role, conns, &mut make)
            .map_err(io(format!("spawn writer process {p}")))?
            .expect("the writer-id block holds every long-lived writer");
    }
    let ready_timeout = Duration::from_millis(sc.kill.ready_timeout_ms);
    for p in 0..fleet.procs.len() {
        let proc = &mut fleet.procs[p];
        match process::wait_announcement(&mut proc.writer, ready_timeout).map_err(io("wait for writer".into()))? {
            Announcement::Byte(ANNOUNCE_READY) => {}
            // A crash point may come before the writer could announce anything.
            Announcement::Closed if cell.fault == FaultKind::CrashPoint => {}
            other => {
                let stderr = std::fs::read_to_string(&proc.stderr).unwrap_or_default();
                return Err(Error::Harness(format!(
                    "trial {trial} ({}): writer {} did not become ready ({other:?}): {}",
                    cell.id(),
                    proc.ids[0],
                    stderr.trim()
                )));
            }
        }
    }
    // Everyone starts together; with bulk timing the victim starts first and the others once
    // its bulk transaction is under way (otherwise their short transactions can starve its
    // BEGIN IMMEDIATE for seconds: SQLite's busy handler is not fair).
    let bulk = cell.timing == KillTiming::Bulk;
    for proc in &mut fleet.procs {
        if !bulk || proc.role == Role::Victim {
            process::open_gate(&mut proc.writer);
        }
    }
    timing.spawn = micros(t.elapsed());

    // Transients: one connection, `transient_txns` transactions, then a clean exit.
    plan.transient_seed = rng.random();
    let mut transient_seeds = ChaCha8Rng::seed_from_u64(plan.transient_seed);
    let mut make_transient = |id: u64, acks: Vec<PathBuf>| {
        let mut cfg = writer_config(&cell, sc, &db, acks, id, transient_seeds.random(), false);
        cfg.workload.txns_max = u64::from(sc.topology.transient_txns);
        // Hazards are the long-lived writers' misdeeds; transients only write.
        cfg.hazard = None;
        if cell.fault.uses_vfs() {
            cfg.vfs = Some(vfs_for(id, Injection::None));
        }
        cfg
    };

    // --- the moment of the fault
    let t = Instant::now();
    let mut inconclusive: Option<String> = None;
    let victim_index = |fleet: &Fleet| fleet.procs.iter().position(|p| p.role == Role::Victim).expect("a victim");
    let mut backup: Option<(PathBuf, u64)> = None;
    let wait = match cell.fault {
        FaultKind::Kill
        | FaultKind::SigkillOnly
        | FaultKind::PowerLoss
        | FaultKind::LockCancel
        | FaultKind::LockCancelWal
        | FaultKind::LockCancelShm
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::ForkConnection
        | FaultKind::CrossVersion => {
            match cell.timing {
                KillTiming::Uniform => {
                    let lo = sc.kill.kill_at_ms_min * 1000;
                    let hi = sc.kill.kill_at_ms_max * 1000;
                    let start = Instant::now();
                    let delay_us = rng.random_range(lo..=hi);
                    plan.fault_delay_us = Some(delay_us);
                    let until = start + Duration::from_micros(delay_us);
                    // The raw-copy backup runs at a random moment of the window, while the
                    // writers write.
                    if cell.fault == FaultKind::RawCopyBackup {
                        let fraction = rng.random_range(0.0..1.0);
                        plan.backup_at_fraction = Some(fraction);
                        let at = start + (until - start).mul_f64(fraction);
                        fleet
                            .run_until(at, env.exe, &lane.dir, &mut make_transient)
                            .map_err(io("transients".into()))?;
                        let to = lane.dir.join("backup").join(DB_NAME);
                        std::fs::create_dir_all(to.parent().expect("a parent")).map_err(io("backup dir".into()))?;
                        let copy_start_ns = crate::writer::child::monotonic_ns();
                        misuse::raw_copy(&db, &to, sc.hazard.backup_chunk_bytes as usize)
                            .map_err(io(format!("raw copy of {}", db.display())))?;
                        backup = Some((to, copy_start_ns));
                    }
                    fleet.run_until(until, env.exe, &lane.dir, &mut make_transient).map_err(io("transients".into()))?;
                }
                KillTiming::Bulk => {
                    let v = victim_index(&fleet);
                    match process::wait_announcement(&mut fleet.procs[v].writer, ready_timeout)
                        .map_err(io("wait for bulk".into()))?
                    {
                        Announcement::Byte(ANNOUNCE_BULK) => {}
                        other => inconclusive = Some(format!("no bulk transaction was announced ({other:?})")),
                    }
                    for proc in &mut fleet.procs {
                        process::open_gate(&mut proc.writer);
                    }
                    let delay_us = rng.random_range(0..=sc.kill.bulk_delay_us_max);
                    plan.fault_delay_us = Some(delay_us);
                    std::thread::sleep(Duration::from_micros(delay_us));
                }
            }
            Duration::from_millis(sc.kill.grace_ms)
        }
        // The writer kills itself; waiting for it is the window.
        FaultKind::CrashPoint => ready_timeout,
        FaultKind::IoError => {
            let v = victim_index(&fleet);
            match process::wait_announcement(&mut fleet.procs[v].writer, ready_timeout)
                .map_err(io("wait for the error".into()))?
            {
                Announcement::Byte(ANNOUNCE_INJECTED) => {}
                other => inconclusive = Some(format!("operation {injection:?} was never reached ({other:?})")),
            }
            let delay_us = rng.random_range(0..=sc.io_error.kill_after_ms_max * 1000);
            plan.fault_delay_us = Some(delay_us);
            let until = Instant::now() + Duration::from_micros(delay_us);
            fleet.run_until(until, env.exe, &lane.dir, &mut make_transient).map_err(io("transients".into()))?;
            Duration::from_millis(sc.kill.grace_ms)
        }
    };
    // The "restore": the database file replaced by the trial's starting copy, writers running.
    if cell.fault == FaultKind::SwapDb {
        misuse::swap_in(&db, &template.path).map_err(io(format!("swap {}", db.display())))?;
    }
    // A signal's victim among every live process, when the scenario says `any`.
    if sc.topology.victim == VictimChoice::Any && !cell.fault.uses_vfs() {
        let live = fleet.live();
        if !live.is_empty() {
            let pick = live[rng.random_range(0..live.len())];
            let old = victim_index(&fleet);
            fleet.procs[old].role = if old < n_long as usize { Role::Survivor } else { Role::Transient };
            fleet.procs[pick].role = Role::Victim;
        }
    }
    let loadavg_1m = sysinfo::System::load_average().map(|l| l.one).unwrap_or(f64::NAN);
    timing.write = micros(t.elapsed());

    // --- the fault: signal, grace, SIGKILL, reap. A power loss stops every process at once;
    // a process crash stops the victim, and the others write on through it.
    let victim = victim_index(&fleet);
    let (kill_us, victim_died_ns) = match cell.fault {
        // A power loss stops everything at once; so does the end of a hazard trial (the
        // hazard already happened, or happens to the files next).
        FaultKind::PowerLoss
        | FaultKind::LockCancel
        | FaultKind::LockCancelWal
        | FaultKind::LockCancelShm
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::ForkConnection
        | FaultKind::CrossVersion => {
            let all: Vec<usize> = (0..fleet.procs.len()).collect();
            let us = fleet.stop(&all, process::first_signal(cell.fault), wait).map_err(io("inject fault".into()))?;
            (us, crate::writer::child::monotonic_ns())
        }
        FaultKind::Kill | FaultKind::SigkillOnly | FaultKind::CrashPoint | FaultKind::IoError => {
            let us =
                fleet.stop(&[victim], process::first_signal(cell.fault), wait).map_err(io("inject fault".into()))?;
            (us, crate::writer::child::monotonic_ns())
        }
    };
    timing.kill = kill_us;
    let survivors_alive: Vec<usize> = fleet.live();
    if sc.topology.survive_ms > 0 && !survivors_alive.is_empty() {
        let until = Instant::now() + Duration::from_millis(sc.topology.survive_ms);
        fleet.run_until(until, env.exe, &lane.dir, &mut make_transient).map_err(io("survivors".into()))?;
    }
    let rest = fleet.live();
    fleet.stop(&rest, Some(nix::sys::signal::Signal::SIGKILL), wait).map_err(io("stop the survivors".into()))?;
    let fault_at_us = match cell.fault {
        FaultKind::CrashPoint => timing.write + fleet.procs[victim].end.map_or(0, |e| e.signal_to_reap_us),
        FaultKind::Kill | FaultKind::SigkillOnly | FaultKind::PowerLoss | FaultKind::IoError => timing.write,
        FaultKind::LockCancel
        | FaultKind::LockCancelWal
        | FaultKind::LockCancelShm
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::ForkConnection
        | FaultKind::CrossVersion => timing.write,
    };

    // --- how did each process die, and what did each connection acknowledge?
    let mut deaths = Vec::new();
    let mut logs: Vec<(u64, AckLog)> = Vec::new();
    let mut survivor_records = Vec::new();
    let mut writer_crashes = Vec::new();
    let mut ack_paths: Vec<(u64, PathBuf, PathBuf)> = Vec::new();
    for (pi, proc) in fleet.procs.iter().enumerate() {
        let end = proc.end.expect("every process was stopped");
        let proc_logs: Vec<(u64, AckLog)> = proc
            .ids
            .iter()
            .zip(&proc.ack_paths)
            .map(|(&id, path)| crate::writer::acklog::read_acks(path, id).map(|log| (id, log)))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::Harness)?;
        for (&id, path) in proc.ids.iter().zip(&proc.ack_paths) {
            ack_paths.push((id, path.clone(), proc.stderr.clone()));
        }
        let stderr = std::fs::read_to_string(&proc.stderr).unwrap_or_default();
        let verdict = death::judge(&DeathFacts {
            role: proc.role,
            fault: cell.fault,
            sigterm: cell.sigterm,
            how: end.how,
            exited_before_signal: end.exited_before_signal,
            escalated: end.escalated,
            finished: proc_logs.iter().any(|(_, l)| l.finished),
            gave_up: proc_logs.iter().any(|(_, l)| l.gave_up),
            id: proc.ids[0],
            stderr_tail: stderr.trim().lines().last().unwrap_or(""),
        });
        let (error, locked) = match &verdict {
            DeathVerdict::SqliteError(reason) => (Some(reason.clone()), None),
            DeathVerdict::Contention(reason) => (None, Some(reason.clone())),
            DeathVerdict::Expected
            | DeathVerdict::Inconclusive(_)
            | DeathVerdict::Crashed(_)
            | DeathVerdict::Harness(_) => (None, None),
        };
        match verdict {
            DeathVerdict::Expected | DeathVerdict::SqliteError(_) | DeathVerdict::Contention(_) => {}
            DeathVerdict::Inconclusive(reason) => {
                inconclusive.get_or_insert(reason);
            }
            DeathVerdict::Crashed(reason) => writer_crashes.push(reason),
            DeathVerdict::Harness(reason) => {
                return Err(Error::Harness(format!("trial {trial} ({}): {reason}", cell.id())));
            }
        }
        // The writers that had to write on through the victim's death, and every process that
        // stopped on an error: check 8 judges them after the oracle ran.
        let alive_at_victim_death = proc.role != Role::Victim && survivors_alive.contains(&pi);
        if alive_at_victim_death || error.is_some() || locked.is_some() {
            for (id, log) in &proc_logs {
                let after = log.acked_at_ns.iter().filter(|&&t| t > victim_died_ns).count() as u64;
                survivor_records.push(SurvivorRecord {
                    writer: *id,
                    role: proc.role,
                    alive_at_victim_death,
                    commits_after_victim_death: if alive_at_victim_death { after } else { 0 },
                    finished: log.finished,
                    error: error.clone(),
                    locked: locked.clone(),
                });
            }
        }
        let expected = match proc.role {
            Role::Victim => death::expected_deaths(cell.fault, cell.sigterm),
            Role::Survivor | Role::Transient => death::others_deaths(),
        };
        for (id, _) in &proc_logs {
            deaths.push(Death {
                writer: *id,
                pid: proc.writer.pid(),
                how: end.how.label(),
                expected: expected.clone(),
                role: proc.role,
            });
        }
        logs.extend(proc_logs);
    }
    let victim_ids = fleet.procs[victim].ids.clone();
    let victim_end = fleet.procs[victim].end.expect("stopped");
    let transients = fleet.procs.iter().filter(|p| p.role == Role::Transient).count() as u32;
    drop(fleet);
    let mut acks = BTreeMap::new();
    let mut latency = crate::base::stats::new_latency_histogram();
    let mut checkpoints = Vec::new();
    let mut shutdowns = Vec::new();
    let mut commits = 0;
    let mut busy_retries = 0;
    let mut failed_txns = Vec::new();
    for (id, log) in &logs {
        acks.insert(*id, WriterExpectation::from_acked(&log.acked_seqs, log.begun));
        commits += log.latencies_us.len() as u64;
        busy_retries += log.busy_retries;
        for &us in &log.latencies_us {
            latency.saturating_record(us.max(1));
        }
        checkpoints.extend(log.checkpoints.iter().cloned());
        for &(seq, code) in &log.io_errors {
            match failed_txns.last_mut() {
                Some(FailedTxn { writer, seq: s, code: c, attempts, .. })
                    if *writer == *id && *s == seq && *c == code =>
                {
                    *attempts += 1
                }
                _ => failed_txns.push(FailedTxn {
                    writer: *id,
                    seq,
                    code,
                    attempts: 1,
                    committed: log.committed_despite_error.contains(&seq),
                }),
            }
        }
        // The graceful shutdown is the victim's (lane 0 of its process runs the checkpoint).
        if cell.sigterm == Some(SigtermBehaviour::Graceful) && victim_ids.first() == Some(id) {
            let sigkilled = victim_end.how == DeathKind::Signal(9);
            shutdowns.push(ShutdownRecord {
                writer: *id,
                started: log.shutdown_started,
                checkpoint_started: log.shutdown_checkpoint_started,
                checkpoint_done: log.shutdown_checkpoint_done,
                killed_mid_checkpoint: sigkilled && log.shutdown_checkpoint_started && !log.shutdown_checkpoint_done,
                duration_us: (victim_end.how == DeathKind::Exit(0)).then_some(victim_end.signal_to_reap_us),
            });
        }
    }
    let commit_latency_hist =
        if latency.is_empty() { String::new() } else { crate::base::stats::encode_histogram(&latency) };
    let injection_record = match injection {
        Injection::None => None,
        Injection::CrashAt { op } | Injection::FailAt { op, .. } => Some(InjectionRecord {
            op,
            ops_in_trace: systematic.map(|(_, ops)| ops),
            failed: failed_txns,
            gave_up: logs.iter().any(|(_, l)| l.gave_up),
        }),
    };

    // --- hazards that act on the files once the writers are gone
    let mut check_db = db.clone();
    if inconclusive.is_none() {
        let hazard_io = |what: &str| {
            let what = format!("hazard {}: {what}", cell.fault.as_str());
            move |e: std::io::Error| Error::io(what, e)
        };
        match cell.fault {
            FaultKind::DeleteHotWal => match misuse::delete_hot(&db, "-wal").map_err(hazard_io("delete -wal"))? {
                None => inconclusive = Some("no hot WAL to delete".into()),
                Some(_) if commits == 0 => inconclusive = Some("no acknowledged commit the WAL could hold".into()),
                Some(_) => {}
            },
            FaultKind::DeleteHotJournal => {
                if misuse::delete_hot(&db, "-journal").map_err(hazard_io("delete -journal"))?.is_none() {
                    inconclusive = Some("no hot journal to delete (the kill fell between transactions)".into());
                }
            }
            FaultKind::RawCopyBackup => match &backup {
                None => inconclusive = Some("no backup was taken (the copy runs in uniform timing only)".into()),
                Some((path, copy_start_ns)) => {
                    // The backup is the crash state; what it must hold is what was
                    // acknowledged before the copy began.
                    check_db = path.clone();
                    for (id, log) in &logs {
                        let before: Vec<u64> = log
                            .acked_seqs
                            .iter()
                            .zip(&log.acked_at_ns)
                            .filter(|&(_, &t)| t < *copy_start_ns)
                            .map(|(&seq, _)| seq)
                            .collect();
                        acks.insert(*id, WriterExpectation::from_acked(&before, log.begun));
                    }
                }
            },
            FaultKind::Kill
            | FaultKind::SigkillOnly
            | FaultKind::PowerLoss
            | FaultKind::CrashPoint
            | FaultKind::IoError
            | FaultKind::LockCancel
            | FaultKind::LockCancelWal
            | FaultKind::LockCancelShm
            | FaultKind::SwapDb
            | FaultKind::ForkConnection
            | FaultKind::CrossVersion => {}
        }
    }

    let mut record = TrialRecord {
        trial,
        seed,
        started_ms,
        cell: cell.id(),
        outcome: TrialOutcome::Checked,
        deaths,
        acks: acks.clone(),
        commits,
        fault_at_us,
        checks: Vec::new(),
        violations: Vec::new(),
        commit_latency_hist,
        checkpoints,
        shutdowns,
        timing_us: timing,
        loadavg_1m,
        kept_failure: None,
        replay: None,
        images: Vec::new(),
        injection: injection_record,
        explanation: Vec::new(),
        busy_retries,
        transients,
        survivors: survivor_records,
        continued_from,
        db_bytes_at_start,
        plan,
        writer_crashes,
    };
    if let Some(reason) = inconclusive {
        // Whatever is in the lane is of unknown provenance now: the cell's next trial starts
        // afresh (its kept database was taken out of `lane.kept` at the start).
        record.outcome = TrialOutcome::Inconclusive { reason };
        return Ok(record);
    }

    let recovery_writer = recovery_writer_id(trial);
    let check_cfg = CheckConfig {
        integrity: sc.check.integrity,
        fts_samples: sc.check.fts_samples,
        seed,
        reopen: ReopenConfig {
            pragmas: Some(pragmas.clone()),
            writer_id: recovery_writer,
            workload: sc.workload.clone(),
        },
    };
    let ctx = Kept { env, cell: &cell, pragmas: &pragmas, recovery_writer, ack_paths: &ack_paths };
    match cell.fault {
        FaultKind::PowerLoss => {
            let t = Instant::now();
            power_loss_images(&ctx, lane, &template.path, &history, &check_cfg, &mut record, &mut rng)?;
            record.timing_us.check = micros(t.elapsed());
            Ok(record)
        }
        FaultKind::Kill
        | FaultKind::SigkillOnly
        | FaultKind::CrashPoint
        | FaultKind::IoError
        | FaultKind::LockCancel
        | FaultKind::LockCancelWal
        | FaultKind::LockCancelShm
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::ForkConnection
        | FaultKind::CrossVersion => {
            // --- the oracle, on the image exactly as the fault (and the hazard) left it
            let t = Instant::now();
            copy_image(&check_db, &pristine).map_err(io(format!("copy crash image to {}", pristine.display())))?;
            for (id, a) in &acks {
                history.insert(*id, a.clone());
            }
            let expected = Expected { writers: history };
            let mut report: CheckReport = oracle::check_image(&check_db, &check_cfg, Some(&expected))
                .map_err(|e| Error::Harness(format!("trial {trial} ({}): checks could not run: {e:#}", cell.id())))?;
            if let Some(reason) = report.could_not_run() {
                record.timing_us.check = micros(t.elapsed());
                record.outcome = TrialOutcome::Inconclusive { reason };
                return Ok(record);
            }
            if cell.fault == FaultKind::CrossVersion {
                // The other build judges the same image (its own copy of the pristine one).
                let other =
                    env.other_sqlite.expect("the campaign resolves hazard.other_sqlite before any cross_version trial");
                let cross = crosscheck::cross_check(&pristine.join(DB_NAME), other)
                    .map_err(|e| Error::Harness(format!("trial {trial}: cross-version check: {e:#}")))?;
                crosscheck::fold_into(&mut report.results, &cross);
            }
            // The image's own results (what `replay` re-runs), then what the processes showed.
            let image_results = report.results.clone();
            let findings = process_findings(&record);
            for (kind, detail) in &findings {
                crate::record::checks::add_violation(&mut report.results, *kind, detail.clone());
            }
            record.timing_us.check = micros(t.elapsed());
            record.violations = report.violations();
            record.checks = report.results.clone();

            if record.violations.is_empty() {
                if continues {
                    // What survived is now history: exactly the present transactions, plus
                    // the recovery write of check 8.
                    let mut kept: BTreeMap<u64, WriterExpectation> =
                        report.present.iter().map(|(&w, &s)| (w, WriterExpectation::upto(s, s))).collect();
                    for (w, e) in &expected.writers {
                        kept.entry(*w).or_insert(WriterExpectation::upto(0, e.begun));
                    }
                    kept.insert(recovery_writer, WriterExpectation::upto(1, 1));
                    move_db_files(&db, &lane.stash(cell_index))
                        .map_err(io(format!("keep the database of {} for its next trial", cell.id())))?;
                    lane.kept.insert(cell_index, KeptDatabase { history: kept, trial });
                }
                return Ok(record);
            }
            let dir = ctx.claim(&mut record)?;
            if let Some(dir) = dir {
                std::fs::rename(&pristine, dir.join(KEPT_IMAGE_DIR))
                    .or_else(|_| copy_image(&pristine.join(DB_NAME), &dir.join(KEPT_IMAGE_DIR)).map(drop))
                    .map_err(io(format!("keep image in {}", dir.display())))?;
                ctx.write_kept(&dir, &record, &expected, None, image_results, findings)?;
            }
            Ok(record)
        }
    }
}

/// The findings of a trial that come from its processes, not from an image: check 8 for the
/// writers that stopped on an SQLite error (a survivor's write after the victim's death
/// failed, a transient could not open the file), and `writer_crash` for every death crashfuzz
/// did not cause. Each is added to every crash state of the trial.
///
/// A survivor that has not committed yet when the window closes is still waiting for the lock
/// (SQLite's busy handler is not fair: a writer sleeping 100 ms between tries loses to
/// newcomers). That is slowness, not a failed write: the record counts it, nothing judges it;
/// nor is a writer that gave up on a lock (`locked`) judged.
fn process_findings(record: &TrialRecord) -> Vec<(ViolationKind, String)> {
    let mut findings = Vec::new();
    let failed: Vec<String> = record
        .survivors
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| format!("{:?} writer {} failed to write: {e}", s.role, s.writer)))
        .collect();
    if !failed.is_empty() {
        findings.push((ViolationKind::ReopenWrite, failed.join("; ")));
    }
    if !record.writer_crashes.is_empty() {
        findings.push((ViolationKind::WriterCrash, record.writer_crashes.join("; ")));
    }
    findings
}

/// The power-loss half of a trial: images from the trace, checked; the first failing one
/// kept (with its base files and the trace), shrunk and explained.
fn power_loss_images(
    ctx: &Kept<'_>,
    lane: &Lane,
    template: &Path,
    history: &BTreeMap<u64, WriterExpectation>,
    check_cfg: &CheckConfig,
    record: &mut TrialRecord,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    let sc = ctx.env.scenario;
    let cell = ctx.cell;
    let trace_path = lane.dir.join(KEPT_TRACE);
    let trace = trace::read(&trace_path).map_err(Error::Harness)?;
    let base: Files = [(DB_NAME.to_string(), std::fs::read(template).map_err(|e| Error::io("read template", e))?)]
        .into_iter()
        .collect();
    let device = Device {
        sector_size_bytes: sc.power_loss.sector_size_bytes,
        fsync_barrier: cell.device.is_none_or(|d| d.fsync_barrier()),
        torn_fill: sc.power_loss.torn_fill,
    };
    let image_dir = lane.dir.join("image");
    let im = Imaging {
        base: &base,
        records: &trace.records,
        device,
        history,
        check: check_cfg,
        dir: &image_dir,
        db_name: DB_NAME,
    };
    let images_seed: u64 = rng.random();
    record.plan.images_seed = Some(images_seed);
    let checked = images::check_images(&im, &sc.power_loss, images_seed)
        .map_err(|e| Error::Harness(format!("trial {} ({}): checks could not run: {e:#}", record.trial, cell.id())))?;
    if let Some(reason) = checked.could_not_run {
        record.outcome = TrialOutcome::Inconclusive { reason };
        return Ok(());
    }
    record.images = checked.images;
    // What the trial's processes showed holds for every image of its trace.
    let findings = process_findings(record);
    for image in &mut record.images {
        image.violations.extend(findings.iter().map(|(kind, _)| *kind));
        image.violations.sort();
        image.violations.dedup();
    }
    let mut union: Vec<ViolationKind> = record.images.iter().flat_map(|i| i.violations.iter().copied()).collect();
    union.sort();
    union.dedup();
    record.violations = union;
    if let Some(report) = &checked.report {
        record.checks = report.results.clone();
    }
    for (kind, detail) in &findings {
        crate::record::checks::add_violation(&mut record.checks, *kind, detail.clone());
    }
    let Some(failing) = checked.failing else {
        if findings.is_empty() {
            return Ok(());
        }
        // Only the processes failed: keep what they left (logs, trace, base files) with the
        // replay line; there is no failing image to keep.
        let Some(dir) = ctx.claim(record)? else { return Ok(()) };
        dbfiles::write_files(&dir.join(KEPT_BASE_DIR), &base).map_err(|e| Error::io("keep the base files", e))?;
        std::fs::copy(&trace_path, dir.join(KEPT_TRACE)).map_err(|e| Error::io("keep the trace", e))?;
        let last = checked.report.map(|r| r.results).unwrap_or_default();
        return ctx.write_kept(&dir, record, &Expected::default(), None, last, findings);
    };
    let Some(dir) = ctx.claim(record)? else { return Ok(()) };
    let (shrunk, explanation, _) =
        images::explain(&im, &failing, sc.power_loss.explain_tests_max as usize, dbfiles::page_size(&base))
            .map_err(|e| Error::Harness(format!("trial {}: shrinking: {e:#}", record.trial)))?;
    record.explanation = explanation.clone();
    let io = |what: &str| {
        let what = format!("{what} in {}", dir.display());
        move |e: std::io::Error| Error::io(what, e)
    };
    dbfiles::write_files(&dir.join(KEPT_IMAGE_DIR), &failing.files).map_err(io("keep the image"))?;
    dbfiles::write_files(&dir.join(KEPT_BASE_DIR), &base).map_err(io("keep the base files"))?;
    std::fs::copy(&trace_path, dir.join(KEPT_TRACE)).map_err(io("keep the trace"))?;
    std::fs::write(dir.join("explain.txt"), format!("{}\n", explanation.join("\n")))
        .map_err(io("write explain.txt"))?;
    let kept = KeptPowerLoss {
        cut: failing.cut as u64,
        device,
        choices: failing.choices.clone(),
        files_hash: images::files_hash(&failing.files),
        shrunk,
        explanation,
    };
    record.checks = failing.report.results.clone();
    for (kind, detail) in &findings {
        crate::record::checks::add_violation(&mut record.checks, *kind, detail.clone());
    }
    ctx.write_kept(&dir, record, &failing.expected, Some(kept), failing.report.results.clone(), findings)
}

/// What keeping a failure needs.
struct Kept<'a> {
    env: &'a TrialEnv<'a>,
    cell: &'a Cell,
    pragmas: &'a Pragmas,
    recovery_writer: u64,
    ack_paths: &'a [(u64, PathBuf, PathBuf)],
}

impl Kept<'_> {
    /// Sets the record's replay line and, if the cell's quota of kept failures allows, creates
    /// and returns `failures/<trial>/`.
    fn claim(&self, record: &mut TrialRecord) -> Result<Option<PathBuf>> {
        let env = self.env;
        let rerun = format!("crashfuzz run {} --seed {} --trial {}", env.scenario_arg, env.campaign_seed, record.trial);
        record.replay = Some(rerun.clone());
        let cell_index = env.cells.iter().position(|c| c == self.cell).expect("the cell is in the campaign");
        if env.kept_per_cell[cell_index].fetch_add(1, Ordering::SeqCst) >= env.scenario.output.failures_kept_per_cell {
            return Ok(None);
        }
        let rel = format!("failures/{}", record.trial);
        let dir = env.run_dir.join(&rel);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        record.replay = Some(format!("crashfuzz replay {}  # or: {rerun}", dir.display()));
        record.kept_failure = Some(rel);
        Ok(Some(dir))
    }

    fn write_kept(
        &self,
        dir: &Path,
        record: &TrialRecord,
        expected: &Expected,
        power_loss: Option<KeptPowerLoss>,
        image_checks: Vec<CheckResult>,
        findings: Vec<(ViolationKind, String)>,
    ) -> Result<()> {
        let (env, sc) = (self.env, self.env.scenario);
        let io = |what: String| move |e: std::io::Error| Error::io(what, e);
        for (id, ack, stderr) in self.ack_paths {
            let _ = std::fs::copy(ack, dir.join(format!("acks-{id}.log")));
            let _ = std::fs::copy(stderr, dir.join(format!("stderr-{id}.log")));
        }
        let explanation = power_loss.as_ref().map(|p| p.explanation.clone()).unwrap_or_default();
        let cut = power_loss.as_ref().map(|p| p.cut);
        let kept = KeptTrial {
            trial: record.trial,
            seed: record.seed,
            campaign_seed: env.campaign_seed,
            cell: *self.cell,
            cell_id: self.cell.id(),
            scenario: env.scenario_arg.to_string(),
            pragmas: self.pragmas.clone(),
            workload: sc.workload.clone(),
            integrity: sc.check.integrity,
            fts_samples: sc.check.fts_samples,
            recovery_writer: self.recovery_writer,
            expected: expected.clone(),
            no_image: image_checks.is_empty() || !dir.join(KEPT_IMAGE_DIR).exists(),
            checks: image_checks,
            process_findings: findings.into_iter().map(|(check, detail)| ProcessFinding { check, detail }).collect(),
            other_sqlite: (self.cell.fault == FaultKind::CrossVersion).then(|| sc.hazard.other_sqlite.clone()),
            power_loss,
        };
        let json = serde_json::to_string_pretty(&kept).expect("kept trial serializes");
        std::fs::write(dir.join("trial.json"), json).map_err(io(format!("write {}/trial.json", dir.display())))?;
        let failed: Vec<String> = record
            .checks
            .iter()
            .filter_map(|c| match &c.outcome {
                crate::record::checks::CheckOutcome::Violation { detail } => {
                    Some(format!("#  {}: {detail}", c.check.as_str()))
                }
                crate::record::checks::CheckOutcome::Pass
                | crate::record::checks::CheckOutcome::Blocked { .. }
                | crate::record::checks::CheckOutcome::CouldNotRun { .. } => None,
            })
            .collect();
        let image = match cut {
            Some(cut) => format!(
                "# the power-loss image at cut {cut} of the trace (rebuilt from base/ and trace.bin)\n\
                 # minimal lost writes that still fail:\n{}\n",
                explanation.iter().map(|l| format!("#  {l}")).collect::<Vec<_>>().join("\n")
            ),
            None => String::new(),
        };
        let replay = format!(
            "# trial {} of cell {} (seed {}), campaign seed {}\n{image}\
             # failed checks:\n{}\n\
             # re-run the checks on the kept crash image (deterministic):\n\
             crashfuzz replay {}\n\
             # re-run the whole trial (same seed; a kill lands at the same offset, not the same instruction):\n\
             crashfuzz run {} --seed {} --trial {}\n",
            record.trial,
            self.cell.id(),
            record.seed,
            env.campaign_seed,
            failed.join("\n"),
            dir.display(),
            env.scenario_arg,
            env.campaign_seed,
            record.trial
        );
        std::fs::write(dir.join("replay.txt"), replay).map_err(io(format!("write {}/replay.txt", dir.display())))
    }
}

/// Re-runs the checks on a kept failure: the image is copied first (a power-loss image is
/// rebuilt from the base files and the trace, and must hash as it did), so a replay is
/// repeatable. Returns `None` for the report when no image was kept (only the trial's
/// processes failed). What the processes showed is in the kept trial's `process_findings`:
/// an event of the live trial, which no image can replay.
pub fn replay(dir: &Path) -> Result<(KeptTrial, Option<CheckReport>)> {
    let trial_json = dir.join("trial.json");
    let text = std::fs::read_to_string(&trial_json).map_err(|source| Error::BadPath {
        path: trial_json.clone(),
        what: "not a failure directory".into(),
        source,
    })?;
    let kept: KeptTrial = serde_json::from_str(&text).map_err(|e| Error::Scenario {
        file: trial_json.display().to_string(),
        line: Some(e.line()),
        setting: "trial.json".into(),
        message: e.to_string(),
    })?;
    if kept.no_image {
        return Ok((kept, None));
    }
    // Stamped like every scratch directory, so a killed replay's is swept by the next run.
    crate::base::scratch::sweep_and_say(None);
    let work = crate::base::scratch::create(None, "replay-").map_err(|e| Error::io("create a scratch directory", e))?;
    match &kept.power_loss {
        None => {
            copy_image(&dir.join(KEPT_IMAGE_DIR).join(DB_NAME), work.path())
                .map_err(|e| Error::io(format!("copy {}", dir.join(KEPT_IMAGE_DIR).display()), e))?;
        }
        Some(p) => {
            let base = read_files(&dir.join(KEPT_BASE_DIR).join(DB_NAME))
                .map_err(|e| Error::io(format!("read {}", dir.join(KEPT_BASE_DIR).display()), e))?;
            let trace = trace::read(&dir.join(KEPT_TRACE)).map_err(Error::Harness)?;
            let files =
                crate::fault::power_loss::builder::build(&base, &trace.records, p.cut as usize, &p.device, &p.choices);
            if images::files_hash(&files) != p.files_hash {
                return Err(Error::Harness(format!(
                    "replay {}: the rebuilt image differs from the one the campaign checked",
                    dir.display()
                )));
            }
            dbfiles::write_files(work.path(), &files).map_err(|e| Error::io("write the rebuilt image", e))?;
        }
    }
    let cfg = CheckConfig {
        integrity: kept.integrity,
        fts_samples: kept.fts_samples,
        seed: kept.seed,
        reopen: ReopenConfig {
            pragmas: Some(kept.pragmas.clone()),
            writer_id: kept.recovery_writer,
            workload: kept.workload.clone(),
        },
    };
    let mut report = oracle::check_image(&work.path().join(DB_NAME), &cfg, Some(&kept.expected))
        .map_err(|e| Error::Harness(format!("replay {}: checks could not run: {e:#}", dir.display())))?;
    if let Some(other) = &kept.other_sqlite {
        // The other build judges the kept image again, on its own copies (never the kept one).
        let resolved = crate::sqlite::builds::resolve(other).map_err(|source| Error::SqliteBuild {
            what: format!("replay {}: the other build", dir.display()),
            source,
        })?;
        let cross = crosscheck::cross_check(&dir.join(KEPT_IMAGE_DIR).join(DB_NAME), &resolved)
            .map_err(|e| Error::Harness(format!("replay {}: cross-version check: {e:#}", dir.display())))?;
        crosscheck::fold_into(&mut report.results, &cross);
    }
    Ok((kept, Some(report)))
}

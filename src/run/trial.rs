//! One trial end to end, as a short sequence of phases over its state: start from the cell's
//! database ([`Lane::start`]), spawn the writers and wait until each is ready, let the fault
//! choose its moment ([`Fault::moment`] on the [`Window`] this engine provides), stop the
//! processes and judge how each died ([`fault::death`]), tally what they acknowledged, let the
//! fault act on the files ([`Fault::after_reap`]), then check the crash image(s) and keep a
//! failure. The engine never asks which fault it runs.
//!
//! **Architecture invariant: the driver never opens a trial's database while a writer of that
//! trial is alive**: the checks start only after every writer has been reaped. For a process
//! crash the crash image is the files exactly as the writers left them (a pristine copy is
//! read into memory first, so a kept failure is the image before recovery); for a power loss the images
//! are built from the writers' trace.

use crate::base::dbfiles::{DB_NAME, Files};
use crate::base::pristine::Pristine;
use crate::base::process::{DeathKind, micros};
use crate::error::{Error, Result};
use crate::fault::death::{self, DeathFacts, DeathVerdict};
use crate::fault::power_loss::builder::Device;
use crate::fault::power_loss::images::{self, Imaging};
use crate::fault::trace::Record;
use crate::fault::vfs::{Injection, VfsConfig};
use crate::fault::{self, AfterReap, Fault, Images, Judge, PlanCtx, Window, trace};
use crate::oracle::{self, CheckConfig, CheckReport, ReopenConfig};
use crate::record::SqliteIdentity;
use crate::record::checks::{ViolationKind, add_violation};
use crate::record::expected::{Expected, WriterExpectation};
use crate::record::{
    Death, FailedTxn, InjectionRecord, Role, ShutdownRecord, SurvivorRecord, TrialOutcome, TrialPlan, TrialRecord,
    TrialTiming,
};
use crate::run::env::TrialEnv;
use crate::run::ids::{recovery_writer_id, trial_seed, writer_id};
use crate::run::keep::{KEPT_BASE_DIR, KEPT_IMAGE_DIR, Keeper, KeptPowerLoss};
use crate::run::lane::{Lane, Start, Template};
use crate::run::topology::Fleet;
use crate::scenario::matrix::{Cell, KillTiming, SigtermBehaviour};
use crate::scenario::{DatabaseMode, Scenario, VictimChoice};
use crate::writer::acklog::AckLog;
use crate::writer::external;
use crate::writer::pragmas::Pragmas;
use crate::writer::process::{self, Announcement};
use crate::writer::program::Channel;
use crate::writer::protocol::{ANNOUNCE_INJECTED, ANNOUNCE_READY, WriterConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A trial's state as its phases fill it in.
struct Trial<'a> {
    env: &'a TrialEnv<'a>,
    index: u64,
    cell_index: usize,
    cell: Cell,
    fault: &'static dyn Fault,
    seed: u64,
    rng: ChaCha8Rng,
    plan: TrialPlan,
    timing: TrialTiming,
    started_ms: u64,
    /// The first reason the trial cannot be judged.
    inconclusive: Option<String>,
}

/// Runs trial `trial` of `cell_index`. `Err` is a harness failure that stops the campaign.
pub fn run_trial(env: &TrialEnv<'_>, lane: &mut Lane, trial: u64, cell_index: usize) -> Result<TrialRecord> {
    let cell = env.cells[cell_index];
    let seed = trial_seed(env.campaign_seed, trial);
    let mut t = Trial {
        env,
        index: trial,
        cell_index,
        cell,
        fault: fault::of(cell.fault),
        seed,
        rng: ChaCha8Rng::seed_from_u64(seed),
        plan: TrialPlan::default(),
        timing: TrialTiming::default(),
        started_ms: u64::try_from(env.campaign_start.elapsed().as_millis()).unwrap_or(u64::MAX),
        inconclusive: None,
    };
    let template = &env.templates[cell_index];
    // A continued database carries the oracle's recovery write (check 8) into the next trial.
    // That write is the bundled SQLite's: on a cell whose writers run on another build it would
    // mix two builds' FTS5 indexes in one file, which each build may call malformed. Such cells
    // start every trial from their template.
    let continues = t.fault.continues_database()
        && env.scenario.database.mode == DatabaseMode::Continue
        && env.writers[cell_index].sqlite.build.is_none()
        && env.writer(cell_index).channel() == Channel::Announcing;
    let clock = Instant::now();
    let start = lane.start(cell_index, &cell, template, continues)?;
    t.timing.setup = micros(clock.elapsed());

    let mut run = spawn_writers(&mut t, &start.db, lane, template)?;
    let moment = fault_moment(&mut t, &mut run, lane, &start, template)?;
    let stopped = stop_everything(&mut t, &mut run, lane, moment.grace)?;
    let processes = judge_processes(&mut t, &run.fleet, &stopped, lane)?;
    let mut tally = tally(&t, &processes, &run);
    let keys = std::mem::take(&mut tally.keys);
    let mut check_db = start.db.clone();
    if t.inconclusive.is_none() {
        let mut after = AfterReap {
            db: &start.db,
            logs: &processes.logs,
            commits: tally.commits,
            acks: &mut tally.acks,
            check_db: &mut check_db,
            copy: moment.copy,
        };
        t.inconclusive = t.fault.after_reap(&mut after)?;
    }
    let mut record = record_of(&mut t, &start, &stopped, processes.record, tally);
    record.protocol.extend(processes.protocol);
    record.protocol.extend(journal_mode_ignored(&t, &start.db));
    if let Some(reason) = t.inconclusive.take() {
        // Whatever is in the lane is of unknown provenance now: the cell's next trial starts
        // afresh (its kept database was taken out of the lane at the start).
        record.outcome = TrialOutcome::Inconclusive { reason };
        return Ok(record);
    }
    let keeper = Keeper {
        env,
        cell: &env.cells[cell_index],
        pragmas: &Pragmas::for_cell(&t.cell, &env.scenario.workload),
        recovery_writer: recovery_writer_id(trial),
        ack_paths: &processes.ack_paths,
    };
    let clock = Instant::now();
    match t.fault.images() {
        Images::AsLeft => check_as_left(&mut t, lane, &start, &check_db, &keeper, continues, keys, &mut record)?,
        Images::Traced => check_traced(&mut t, lane, &template.path, &start.history, keys, &keeper, &mut record)?,
    }
    record.timing_us.check = micros(clock.elapsed());
    Ok(record)
}

/// The trial's processes while they run, and what starting them decided.
struct Running {
    fleet: Fleet,
    transients: Transients,
    long_writers: usize,
    injection: Injection,
}

/// How the trial's transient writers are configured: one connection, `transient_txns`
/// transactions, then a clean exit; no misuse (hazards are the long-lived writers' misdeeds).
struct Transients {
    seeds: ChaCha8Rng,
    base: WriterConfig,
    trace: Option<PathBuf>,
}

impl Transients {
    fn make(&mut self, id: u64, acks: Vec<PathBuf>) -> WriterConfig {
        WriterConfig {
            seed: self.seeds.random(),
            transient: true,
            ..with_ids(&self.base, id, acks, self.trace.as_deref(), Injection::None)
        }
    }
}

/// `base` given its first writer id and its acknowledgement files (one per connection), and
/// the tracing VFS when the trial traces.
fn with_ids(
    base: &WriterConfig,
    id: u64,
    acks: Vec<PathBuf>,
    trace: Option<&Path>,
    injection: Injection,
) -> WriterConfig {
    let mut cfg = base.clone();
    cfg.writer_id = id;
    cfg.connections = acks.len() as u32;
    cfg.ack_paths = acks;
    cfg.vfs = trace.map(|path| VfsConfig { writer: id, trace_path: path.to_path_buf(), injection });
    cfg
}

/// Spawns the long-lived writers, waits until each has opened the database with its pragmas
/// (every connection of it), and opens their start gates (with bulk timing, the victim's
/// alone: the others start once its bulk transaction is under way, or their short
/// transactions can starve its BEGIN IMMEDIATE for seconds, SQLite's busy handler being
/// unfair).
fn spawn_writers(t: &mut Trial<'_>, db: &Path, lane: &Lane, template: &Template) -> Result<Running> {
    let clock = Instant::now();
    let (sc, cell) = (t.env.scenario, t.cell);
    let ctx = PlanCtx {
        scenario: sc,
        cell: &cell,
        trial: t.index,
        cells: t.env.cells.len() as u64,
        short_trace: template.short_trace,
    };
    let injection = t.fault.injection(&ctx, &mut t.rng);
    let long_writers = t.fault.long_writers(sc, template.short_trace) as usize;
    // The process an injected fault (crash point, I/O error) lives in is decided now; a
    // signal's victim may be chosen among every live process at the moment of the fault.
    let injected_victim = match (sc.topology.victim, cell.fault.uses_vfs()) {
        (VictimChoice::Any, true) => t.rng.random_range(0..long_writers),
        (VictimChoice::Gateway, _) | (VictimChoice::Any, false) => 0,
    };
    t.plan.injected_victim = injected_victim as u32;
    let trace = cell.fault.uses_vfs().then(|| lane.trace());
    let topology = t.fault.topology(&cell, sc);
    let mut fleet = Fleet::new((writer_id(t.index, 0), recovery_writer_id(t.index)), &topology);
    let mut base = WriterConfig::for_cell(&cell, sc, db, Vec::new(), 0, 0);
    t.fault.configure_every(&mut base);
    for p in 0..long_writers {
        let mut cfg =
            WriterConfig { seed: t.rng.random(), gated: true, connections: sc.topology.connections, ..base.clone() };
        t.plan.writer_seeds.push(cfg.seed);
        cfg.bulk_first = cell.timing == KillTiming::Bulk && p == injected_victim;
        t.fault.configure(p, &mut cfg, sc, template.short_trace)?;
        let own = if p == injected_victim { injection } else { Injection::None };
        let role = if p == injected_victim { Role::Victim } else { Role::Survivor };
        let mut make = |id: u64, acks: Vec<PathBuf>| with_ids(&cfg, id, acks, trace.as_deref(), own);
        fleet
            .spawn(t.env.writer(t.cell_index), &lane.dir, role, cfg.connections, &mut make)
            .map_err(|e| Error::io(format!("spawn writer process {p}"), e))?
            .expect("the writer-id block holds every long-lived writer");
    }
    wait_ready(t, &mut fleet)?;
    let bulk = cell.timing == KillTiming::Bulk;
    for proc in &mut fleet.procs {
        if !bulk || proc.role == Role::Victim {
            process::open_gate(&mut proc.writer);
        }
    }
    t.timing.spawn = micros(clock.elapsed());
    t.plan.transient_seed = t.rng.random();
    // A transient writes its few transactions and closes.
    base.workload.txns_max = u64::from(topology.transient_txns);
    let transients = Transients { seeds: ChaCha8Rng::seed_from_u64(t.plan.transient_seed), base, trace };
    Ok(Running { fleet, transients, long_writers, injection })
}

/// Waits until every long-lived writer announced it is ready. A writer that kills itself (a
/// crash point) may die before it could announce anything; an application's program that
/// died before it was ready is judged with the trial's other deaths (its exit says why:
/// [`death::judge_program`]), and one still not ready after `ready_timeout_ms` (stuck on what
/// a hazard left, say) makes the trial inconclusive: neither is crashfuzz's failure.
fn wait_ready(t: &mut Trial<'_>, fleet: &mut Fleet) -> Result<()> {
    let timeout = Duration::from_millis(t.env.scenario.kill.ready_timeout_ms);
    let own_program = t.env.writer(t.cell_index).channel() == Channel::AckLines;
    for proc in &mut fleet.procs {
        let announced = match t.env.writer(t.cell_index).channel() {
            Channel::Announcing => process::wait_announcement(&mut proc.writer, timeout),
            Channel::AckLines => wait_ready_line(&mut proc.writer, &proc.ack_paths[0], timeout),
        };
        match announced.map_err(|e| Error::io("wait for writer", e))? {
            Announcement::Byte(ANNOUNCE_READY) => {}
            Announcement::Closed if t.fault.first_signal().is_none() || own_program => {}
            Announcement::TimedOut if own_program => {
                let reason = format!(
                    "writer {} was not ready after {} ms ([fault.kill] ready_timeout_ms)",
                    proc.ids[0],
                    timeout.as_millis()
                );
                t.inconclusive.get_or_insert(reason);
            }
            other => {
                let stderr = std::fs::read_to_string(&proc.stderr).unwrap_or_default();
                return Err(Error::Harness(format!(
                    "trial {} ({}): writer {} did not become ready ({other:?}): {}",
                    t.index,
                    t.cell.id(),
                    proc.ids[0],
                    stderr.trim()
                )));
            }
        }
    }
    Ok(())
}

/// What polling an application's writer for a file's signal found.
enum Polled {
    Said,
    Died,
    TimedOut,
}

/// Polls `said` (a file the program or the interposer writes) until it holds, the writer dies,
/// or `timeout` passes; a writer that died having said it counts as having said it.
fn poll_signal(w: &mut process::Writer, timeout: Duration, said: impl Fn() -> bool) -> std::io::Result<Polled> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if said() {
            return Ok(Polled::Said);
        }
        if process::try_reap(w)? {
            return Ok(if said() { Polled::Said } else { Polled::Died });
        }
        if Instant::now() >= deadline {
            return Ok(Polled::TimedOut);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Waits for an application's writer's `ready` line. A program that says nothing at all in
/// `timeout` is taken as ready (it cannot be told apart from one that is writing); one that
/// said something else but not `ready` has not become ready.
fn wait_ready_line(w: &mut process::Writer, acks: &Path, timeout: Duration) -> std::io::Result<Announcement> {
    Ok(match poll_signal(w, timeout, || external::said_ready(acks))? {
        Polled::Said => Announcement::Byte(ANNOUNCE_READY),
        Polled::Died => Announcement::Closed,
        Polled::TimedOut if std::fs::metadata(acks).map_or(true, |m| m.len() == 0) => {
            Announcement::Byte(ANNOUNCE_READY)
        }
        Polled::TimedOut => Announcement::TimedOut,
    })
}

/// Waits for the interposer's announcement that it failed a call of an application's writer
/// (the file at `marker`), or for the writer's death.
fn wait_injected(w: &mut process::Writer, marker: &Path, timeout: Duration) -> std::io::Result<Announcement> {
    Ok(match poll_signal(w, timeout, || marker.exists())? {
        Polled::Said => Announcement::Byte(ANNOUNCE_INJECTED),
        Polled::Died => Announcement::Closed,
        Polled::TimedOut => Announcement::TimedOut,
    })
}

/// The trial as the fault sees it while the writers write.
struct TrialWindow<'a, 'e> {
    t: &'a mut Trial<'e>,
    run: &'a mut Running,
    db: &'a Path,
    template: &'a Path,
    dir: &'a Path,
}

impl Window for TrialWindow<'_, '_> {
    fn scenario(&self) -> &Scenario {
        self.t.env.scenario
    }
    fn cell(&self) -> &Cell {
        &self.t.cell
    }
    fn db(&self) -> &Path {
        self.db
    }
    fn template(&self) -> &Path {
        self.template
    }
    fn dir(&self) -> &Path {
        self.dir
    }
    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.t.rng
    }
    fn plan(&mut self) -> &mut TrialPlan {
        &mut self.t.plan
    }
    fn run_until(&mut self, at: Instant) -> std::io::Result<()> {
        let transients = &mut self.run.transients;
        self.run
            .fleet
            .run_until(at, self.t.env.writer(self.t.cell_index), self.dir, &mut |id, acks| transients.make(id, acks))
    }
    fn victim_announcement(&mut self, timeout: Duration) -> std::io::Result<std::result::Result<u8, String>> {
        let victim = self.run.fleet.victim();
        let writer = &mut self.run.fleet.procs[victim].writer;
        let announced = match self.t.env.writer(self.t.cell_index).channel() {
            Channel::Announcing => process::wait_announcement(writer, timeout)?,
            Channel::AckLines => {
                wait_injected(writer, &trace::injected_path(&self.dir.join(trace::TRACE_FILE)), timeout)?
            }
        };
        Ok(match announced {
            Announcement::Byte(byte) => Ok(byte),
            other => Err(format!("{other:?}")),
        })
    }
    fn open_gates(&mut self) {
        for proc in &mut self.run.fleet.procs {
            process::open_gate(&mut proc.writer);
        }
    }
}

/// The fault's moment, then (with `victim = "any"` and no VFS) the victim drawn among every
/// process alive at that moment.
fn fault_moment(
    t: &mut Trial<'_>,
    run: &mut Running,
    lane: &Lane,
    start: &Start,
    template: &Template,
) -> Result<fault::Moment> {
    let clock = Instant::now();
    let fault = t.fault;
    let mut window = TrialWindow { t, run, db: &start.db, template: &template.path, dir: &lane.dir };
    let moment = fault.moment(&mut window)?;
    t.inconclusive = t.inconclusive.take().or(moment.inconclusive.clone());
    if t.env.scenario.topology.victim == VictimChoice::Any && !t.cell.fault.uses_vfs() {
        let live = run.fleet.live();
        if !live.is_empty() {
            let pick = live[t.rng.random_range(0..live.len())];
            let old = run.fleet.victim();
            run.fleet.procs[old].role = if old < run.long_writers { Role::Survivor } else { Role::Transient };
            run.fleet.procs[pick].role = Role::Victim;
        }
    }
    t.timing.write = micros(clock.elapsed());
    Ok(moment)
}

/// What stopping the processes showed.
struct Stopped {
    /// CLOCK_MONOTONIC when the victim was reaped: commits after it were made through its death.
    victim_died_ns: u64,
    /// The processes still alive when the victim died (the survivors' window ran from there).
    alive_at_victim_death: Vec<usize>,
    fault_at_us: u64,
    loadavg_1m: f64,
}

/// The fault's signal (to every process for a power loss or a hazard, to the victim otherwise),
/// the grace, SIGKILL and the reap; then the survivors' window and the SIGKILL of the rest.
fn stop_everything(t: &mut Trial<'_>, run: &mut Running, lane: &Lane, grace: Duration) -> Result<Stopped> {
    let loadavg_1m = sysinfo::System::load_average().map(|l| l.one).unwrap_or(f64::NAN);
    let fleet = &mut run.fleet;
    let victim = fleet.victim();
    let targets: Vec<usize> = if t.fault.stops_everyone() { (0..fleet.procs.len()).collect() } else { vec![victim] };
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| Error::io(what, e)
    };
    t.timing.kill = fleet.stop(&targets, t.fault.first_signal(), grace).map_err(io("inject fault"))?;
    let victim_died_ns = crate::writer::child::monotonic_ns();
    let alive_at_victim_death = fleet.live();
    let survive_ms = t.env.scenario.topology.survive_ms;
    if survive_ms > 0 && !alive_at_victim_death.is_empty() {
        let until = Instant::now() + Duration::from_millis(survive_ms);
        let transients = &mut run.transients;
        fleet
            .run_until(until, t.env.writer(t.cell_index), &lane.dir, &mut |id, acks| transients.make(id, acks))
            .map_err(io("survivors"))?;
    }
    let rest = fleet.live();
    fleet.stop(&rest, Some(nix::sys::signal::Signal::SIGKILL), grace).map_err(io("stop the survivors"))?;
    // A writer that kills itself (a crash point) struck when it died, not when the window ended.
    let own_death_us =
        if t.fault.first_signal().is_none() { fleet.procs[victim].end.map_or(0, |e| e.signal_to_reap_us) } else { 0 };
    Ok(Stopped { victim_died_ns, alive_at_victim_death, fault_at_us: t.timing.write + own_death_us, loadavg_1m })
}

/// How the processes died and what they acknowledged.
struct Processes {
    logs: Vec<(u64, AckLog)>,
    /// Where an application's writer broke the protocol, per writer.
    protocol: Vec<String>,
    /// Per writer id: its acknowledgement file and its process's stderr.
    ack_paths: Vec<(u64, PathBuf, PathBuf)>,
    record: ProcessRecord,
    /// A writer gave up after injected I/O errors.
    gave_up: bool,
}

/// The parts of the trial record the processes give.
#[derive(Default)]
struct ProcessRecord {
    deaths: Vec<Death>,
    survivors: Vec<SurvivorRecord>,
    writer_crashes: Vec<String>,
    transients: u32,
    writer_sqlite: Option<SqliteIdentity>,
    closes: u32,
    closes_alone: u32,
}

/// Reads every connection's acknowledgements and judges every process's death
/// ([`death::judge`]): a harness error stops the campaign, a crash is a finding, an SQLite
/// error is check 8's finding, a death that says nothing makes the trial inconclusive.
fn judge_processes(t: &mut Trial<'_>, fleet: &Fleet, stopped: &Stopped, lane: &Lane) -> Result<Processes> {
    let mut out = Processes {
        logs: Vec::new(),
        protocol: Vec::new(),
        ack_paths: Vec::new(),
        record: ProcessRecord::default(),
        gave_up: false,
    };
    let own_program = t.env.writer(t.cell_index).channel() == Channel::AckLines;
    // An application's program that stops by itself once the interposer failed one of its
    // calls gave up on that error, as crashfuzz's writer does on persistent ones.
    let injected = own_program && trace::injected_path(&lane.trace()).exists();
    for (pi, proc) in fleet.procs.iter().enumerate() {
        let end = proc.end.expect("every process was stopped");
        let logs: Vec<(u64, AckLog)> = proc
            .ids
            .iter()
            .zip(&proc.ack_paths)
            .map(|(&id, path)| t.env.writer(t.cell_index).acknowledgements(path, id).map(|log| (id, log)))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::Harness)?;
        out.record.writer_sqlite = same_sqlite(t, &logs, out.record.writer_sqlite.take())?;
        if let Some(alone) = logs.iter().find_map(|(_, log)| log.closed_alone) {
            out.record.closes += 1;
            out.record.closes_alone += u32::from(alone);
        }
        for (&id, path) in proc.ids.iter().zip(&proc.ack_paths) {
            out.ack_paths.push((id, path.clone(), proc.stderr.clone()));
        }
        let stderr = std::fs::read_to_string(&proc.stderr).unwrap_or_default();
        let gave_up =
            logs.iter().any(|(_, l)| l.gave_up) || (injected && proc.role == Role::Victim && end.exited_before_signal);
        out.gave_up |= gave_up;
        let verdict = death::judge(&DeathFacts {
            role: proc.role,
            fault: t.fault,
            sigterm: t.cell.sigterm,
            how: end.how,
            exited_before_signal: end.exited_before_signal,
            escalated: end.escalated,
            finished: logs.iter().any(|(_, l)| l.finished),
            gave_up,
            id: proc.ids[0],
            stderr_tail: stderr.trim().lines().last().unwrap_or(""),
            own_program,
        });
        for (id, log) in &logs {
            out.protocol.extend(log.protocol.iter().map(|p| format!("writer {id}: {p}")));
        }
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
                t.inconclusive.get_or_insert(reason);
            }
            DeathVerdict::Crashed(reason) => out.record.writer_crashes.push(reason),
            DeathVerdict::Harness(reason) => {
                return Err(Error::Harness(format!("trial {} ({}): {reason}", t.index, t.cell.id())));
            }
        }
        // The writers that had to write on through the victim's death, and every process that
        // stopped on an error: check 8 judges them after the oracle ran.
        let alive = proc.role != Role::Victim && stopped.alive_at_victim_death.contains(&pi);
        if alive || error.is_some() || locked.is_some() {
            for (id, log) in &logs {
                let after = log.acked_at_ns.iter().filter(|&&at| at > stopped.victim_died_ns).count() as u64;
                out.record.survivors.push(SurvivorRecord {
                    writer: *id,
                    role: proc.role,
                    alive_at_victim_death: alive,
                    commits_after_victim_death: if alive { after } else { 0 },
                    finished: log.finished,
                    error: error.clone(),
                    locked: locked.clone(),
                });
            }
        }
        let expected = match proc.role {
            Role::Victim => t.fault.intended_deaths(t.cell.sigterm),
            Role::Survivor | Role::Transient => death::others_deaths(),
        };
        for (id, _) in &logs {
            let death = Death {
                writer: *id,
                pid: proc.writer.pid(),
                how: end.how.label(),
                expected: expected.clone(),
                role: proc.role,
            };
            out.record.deaths.push(death);
        }
        out.logs.extend(logs);
    }
    out.record.transients = fleet.procs.iter().filter(|p| p.role == Role::Transient).count() as u32;
    Ok(out)
}

/// The SQLite every writer read back must be the cell's build: a writer on another one (a
/// library the loader found elsewhere) would make the cell's answer someone else's.
fn same_sqlite(
    t: &Trial<'_>,
    logs: &[(u64, AckLog)],
    so_far: Option<SqliteIdentity>,
) -> Result<Option<SqliteIdentity>> {
    let want = &t.env.writers[t.cell_index].sqlite.identity;
    let compiled_in = logs.iter().find(|(_, log)| log.sqlite_compiled_in);
    if let Some((id, _)) = compiled_in {
        // An application's program with SQLite compiled in runs that SQLite whatever the cell
        // names; only `system` ("the program's own") can describe it.
        if t.cell.sqlite.build() != crate::sqlite::builds::SqliteBuild::System {
            return Err(Error::Harness(format!(
                "trial {} ({}): writer {id} loaded no SQLite library (its SQLite is compiled in), so the cell's \
                 build {} cannot reach it through LD_LIBRARY_PATH; run it with sqlite = \"system\" (the \
                 program's own SQLite), or link the program with libsqlite3.so.0",
                t.index,
                t.cell.id(),
                t.cell.sqlite
            )));
        }
        return Ok(so_far.or_else(|| {
            Some(SqliteIdentity {
                version: crate::report::markdown::COMPILED_IN.into(),
                source_id: "its own, not the system library".into(),
            })
        }));
    }
    for (id, log) in logs {
        if let Some(ran) = &log.sqlite
            && ran != want
        {
            return Err(Error::Harness(format!(
                "trial {} ({}): writer {id} ran on SQLite {} ({}), the cell's build is {} ({})",
                t.index,
                t.cell.id(),
                ran.version,
                ran.source_id,
                want.version,
                want.source_id
            )));
        }
    }
    Ok(so_far.or_else(|| logs.iter().find_map(|(_, log)| log.sqlite.clone())))
}

/// What the acknowledgement files add up to.
struct Tally {
    acks: BTreeMap<u64, WriterExpectation>,
    /// An application's writer's keys (empty for crashfuzz's own).
    keys: Keys,
    commits: u64,
    busy_retries: u64,
    commit_latency_hist: String,
    checkpoints: Vec<crate::record::CheckpointRecord>,
    shutdowns: Vec<ShutdownRecord>,
    injection: Option<InjectionRecord>,
}

fn tally(t: &Trial<'_>, processes: &Processes, run: &Running) -> Tally {
    let mut latency = crate::base::stats::new_latency_histogram();
    let mut out = Tally {
        acks: BTreeMap::new(),
        keys: Keys::default(),
        commits: 0,
        busy_retries: 0,
        commit_latency_hist: String::new(),
        checkpoints: Vec::new(),
        shutdowns: Vec::new(),
        injection: None,
    };
    let victim = &run.fleet.procs[run.fleet.victim()];
    let victim_end = victim.end.expect("stopped");
    let mut failed_txns: Vec<FailedTxn> = Vec::new();
    for (id, log) in &processes.logs {
        out.acks.insert(*id, WriterExpectation::from_acked(&log.acked_seqs, log.begun));
        out.commits += log.acked_seqs.len() as u64;
        if !log.keys.is_empty() {
            out.keys.keys.insert(*id, log.keys.clone());
        }
        out.busy_retries += log.busy_retries;
        for &us in &log.latencies_us {
            latency.saturating_record(us.max(1));
        }
        out.checkpoints.extend(log.checkpoints.iter().cloned());
        for &(seq, code) in &log.io_errors {
            match failed_txns.last_mut() {
                Some(f) if f.writer == *id && f.seq == seq && f.code == code => f.attempts += 1,
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
        if t.cell.sigterm == Some(SigtermBehaviour::Graceful) && victim.ids.first() == Some(id) {
            let sigkilled = victim_end.how == DeathKind::Signal(9);
            out.shutdowns.push(ShutdownRecord {
                writer: *id,
                started: log.shutdown_started,
                checkpoint_started: log.shutdown_checkpoint_started,
                checkpoint_done: log.shutdown_checkpoint_done,
                killed_mid_checkpoint: sigkilled && log.shutdown_checkpoint_started && !log.shutdown_checkpoint_done,
                duration_us: (victim_end.how == DeathKind::Exit(0)).then_some(victim_end.signal_to_reap_us),
            });
        }
    }
    if !latency.is_empty() {
        out.commit_latency_hist = crate::base::stats::encode_histogram(&latency);
    }
    // Phantoms can be told only when every writer that acknowledged announced its keys.
    let logs = || processes.logs.iter().map(|(_, l)| l);
    out.keys.begins = logs().any(|l| l.begins) && logs().all(|l| l.begins || l.acked_seqs.is_empty());
    let short_ops = t.env.templates[t.cell_index].short_trace.map(|s| s.ops);
    out.injection = match run.injection {
        Injection::None => None,
        Injection::CrashAt { op } | Injection::FailAt { op, .. } => {
            Some(InjectionRecord { op, ops_in_trace: short_ops, failed: failed_txns, gave_up: processes.gave_up })
        }
    };
    out
}

/// The trial's line of `trials.jsonl`, before any check ran.
fn record_of(t: &mut Trial<'_>, start: &Start, stopped: &Stopped, p: ProcessRecord, tally: Tally) -> TrialRecord {
    TrialRecord {
        trial: t.index,
        seed: t.seed,
        started_ms: t.started_ms,
        cell: t.cell.id(),
        outcome: TrialOutcome::Checked,
        deaths: p.deaths,
        acks: tally.acks,
        commits: tally.commits,
        fault_at_us: stopped.fault_at_us,
        checks: Vec::new(),
        violations: Vec::new(),
        commit_latency_hist: tally.commit_latency_hist,
        checkpoints: tally.checkpoints,
        shutdowns: tally.shutdowns,
        timing_us: t.timing,
        loadavg_1m: stopped.loadavg_1m,
        kept_failure: None,
        replay: None,
        images: Vec::new(),
        injection: tally.injection,
        explanation: Vec::new(),
        busy_retries: tally.busy_retries,
        transients: p.transients,
        survivors: p.survivors,
        continued_from: start.continued_from,
        db_bytes_at_start: start.db_bytes,
        plan: std::mem::take(&mut t.plan),
        writer_crashes: p.writer_crashes,
        protocol: Vec::new(),
        writer_sqlite: p.writer_sqlite,
        cross_version: Vec::new(),
        closes: p.closes,
        closes_alone: p.closes_alone,
    }
}

/// Whether the trace holds an open of the main database (a traced program's first call).
fn opened_the_database(records: &[trace::Record]) -> bool {
    records.iter().any(|r| matches!(r, trace::Record::Open { kind: trace::FileKind::MainDb, .. }))
}

/// An application's writer's keys, for the oracle ([`Expected::keys`]).
#[derive(Default)]
struct Keys {
    keys: BTreeMap<u64, Vec<String>>,
    begins: bool,
}

impl Keys {
    /// What an image must hold: `writers`' commits, named by these keys, beside the keys the
    /// cell's template held.
    fn expected(self, writers: BTreeMap<u64, WriterExpectation>, template: &Template) -> Expected {
        Expected { writers, keys: self.keys, seeded_keys: template.seeded_keys.clone(), begins: self.begins }
    }
}

/// Where an application's writer ignored `CRASHFUZZ_JOURNAL_MODE`, read back from the database
/// file's header: bytes 18 and 19 (the file format's write and read versions) are 2 in WAL
/// mode and 1 in the rollback modes (which the header does not tell apart).
fn journal_mode_ignored(t: &Trial<'_>, db: &Path) -> Option<String> {
    if t.env.writer(t.cell_index).channel() != Channel::AckLines {
        return None;
    }
    let mut header = [0u8; 20];
    let read = std::fs::File::open(db).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header));
    // A file shorter than its header holds no database yet: nothing was ignored.
    read.ok()?;
    let wal = t.cell.journal_mode == crate::scenario::matrix::JournalMode::Wal;
    let (write, read) = (header[18], header[19]);
    let file_wal = write == 2 && read == 2;
    (file_wal != wal).then(|| {
        format!(
            "CRASHFUZZ_JOURNAL_MODE={} but the database file is {} (header bytes 18 and 19: {write} and {read})",
            t.cell.journal_mode.as_sql().to_ascii_uppercase(),
            if file_wal { "in WAL mode" } else { "in a rollback journal mode" }
        )
    })
}

/// The oracle's settings for this trial's images: the recovery write with the cell's pragmas.
fn check_config(t: &Trial<'_>) -> CheckConfig {
    let sc = t.env.scenario;
    CheckConfig {
        integrity: sc.check.integrity,
        fts_samples: sc.check.fts_samples,
        seed: t.seed,
        reopen: ReopenConfig {
            pragmas: Some(Pragmas::for_cell(&t.cell, &sc.workload)),
            writer_id: recovery_writer_id(t.index),
            workload: sc.workload.clone(),
        },
        schema: t.env.writer(t.cell_index).schema(),
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
    if !record.protocol.is_empty() {
        findings.push((ViolationKind::Protocol, record.protocol.join("; ")));
    }
    findings
}

/// The oracle on the image exactly as the fault left it; the fault's own judgement beside
/// (another build); a clean `continue` database kept for the cell's next trial; a failure kept.
#[allow(clippy::too_many_arguments)]
fn check_as_left(
    t: &mut Trial<'_>,
    lane: &mut Lane,
    start: &Start,
    check_db: &Path,
    keeper: &Keeper<'_>,
    continues: bool,
    keys: Keys,
    record: &mut TrialRecord,
) -> Result<()> {
    let pristine = Pristine::read(check_db, lane.pristine())
        .map_err(|e| Error::io(format!("read the crash image {}", check_db.display()), e))?;
    let mut history = start.history.clone();
    history.extend(record.acks.iter().map(|(id, a)| (*id, a.clone())));
    let expected = keys.expected(history, &t.env.templates[t.cell_index]);
    let mut report: CheckReport = oracle::check_image(check_db, &check_config(t), Some(&expected))
        .map_err(|e| Error::Harness(format!("trial {} ({}): checks could not run: {e:#}", t.index, t.cell.id())))?;
    if let Some(reason) = report.could_not_run() {
        record.outcome = TrialOutcome::Inconclusive { reason };
        return Ok(());
    }
    let judge = Judge { pristine: &pristine, other_sqlite: t.env.other_sqlite };
    t.fault.judge(&judge, &mut report.results).map_err(|e| Error::Harness(format!("trial {}: {e}", t.index)))?;
    record.cross_version = writers_build_agrees(t, &pristine, &mut report)?;
    // The image's own results (what `replay` re-runs), then what the processes showed.
    let image_results = report.results.clone();
    let findings = process_findings(record);
    for (kind, detail) in &findings {
        add_violation(&mut report.results, *kind, detail.clone());
    }
    record.violations = report.violations();
    record.checks = report.results.clone();
    if record.violations.is_empty() {
        if continues {
            // What survived is now history: exactly the present transactions, plus the
            // recovery write of check 8.
            let mut kept: BTreeMap<u64, WriterExpectation> =
                report.present.iter().map(|(&w, &s)| (w, WriterExpectation::upto(s, s))).collect();
            for (w, e) in &expected.writers {
                kept.entry(*w).or_insert(WriterExpectation::upto(0, e.begun));
            }
            kept.insert(recovery_writer_id(t.index), WriterExpectation::upto(1, 1));
            lane.keep(t.cell_index, t.index, kept)?;
        }
        return Ok(());
    }
    if let Some(dir) = keeper.claim(record)? {
        pristine
            .keep_in(&dir.join(KEPT_IMAGE_DIR))
            .map_err(|e| Error::io(format!("keep image in {}", dir.display()), e))?;
        keeper.write_kept(&dir, record, &expected, None, image_results, findings)?;
    }
    Ok(())
}

/// On a cell whose writers run on another build than the oracle's, that build checks the image
/// too, and the verdict is what both builds agree on
/// ([`crate::oracle::crosscheck::agree_with_writers`]); the rest is returned as cross-version
/// disagreements.
fn writers_build_agrees(t: &Trial<'_>, pristine: &Pristine, report: &mut CheckReport) -> Result<Vec<String>> {
    let Some(build) = &t.env.writers[t.cell_index].sqlite.build else {
        return Ok(Vec::new());
    };
    let pristine_db = pristine.db().map_err(|e| Error::io("write the crash image out for the writers' build", e))?;
    crate::oracle::crosscheck::agree_with_writers(pristine_db, build, report)
        .map_err(|e| Error::Harness(format!("trial {} ({}): the writers' build's check: {e:#}", t.index, t.cell.id())))
}

/// The power-loss half of a trial: images from the trace, checked; the first failing one
/// kept (with its base files and the trace), shrunk and explained.
fn check_traced(
    t: &mut Trial<'_>,
    lane: &Lane,
    template: &Path,
    history: &BTreeMap<u64, WriterExpectation>,
    keys: Keys,
    keeper: &Keeper<'_>,
    record: &mut TrialRecord,
) -> Result<()> {
    let sc = t.env.scenario;
    let trace_path = lane.trace();
    let trace = trace::read(&trace_path).map_err(Error::Harness)?;
    let keys = keys.expected(BTreeMap::new(), &t.env.templates[t.cell_index]);
    if t.env.writer(t.cell_index).channel() == Channel::AckLines && !opened_the_database(&trace.records) {
        record.outcome = TrialOutcome::Inconclusive {
            reason: "the interposer saw no open of the database: a statically linked program, or one whose \
                     SQLite does its I/O without libc's calls, cannot be traced"
                .into(),
        };
        return Ok(());
    }
    if let Some(call) = trace.records.iter().find_map(|r| match r {
        Record::Untraced { writer, call } => Some(format!("writer {writer}: {call}")),
        _ => None,
    }) {
        record.outcome = TrialOutcome::Inconclusive {
            reason: format!(
                "the program moved one of the database's files ({call}); crash images follow each file by its \
                 operations, not names across files"
            ),
        };
        return Ok(());
    }
    let base: Files = [(DB_NAME.to_string(), std::fs::read(template).map_err(|e| Error::io("read template", e))?)]
        .into_iter()
        .collect();
    let device = Device {
        sector_size_bytes: sc.power_loss.sector_size_bytes,
        fsync_barrier: t.cell.device.is_none_or(|d| d.fsync_barrier()),
        torn_fill: sc.power_loss.torn_fill,
    };
    let image_dir = lane.dir.join("image");
    let check = check_config(t);
    let im = Imaging {
        base: &base,
        records: &trace.records,
        device,
        history,
        keys: &keys,
        check: &check,
        dir: &image_dir,
        db_name: DB_NAME,
        writers_build: t.env.writers[t.cell_index].sqlite.build.as_ref(),
        disagreements: Default::default(),
    };
    let images_seed: u64 = t.rng.random();
    record.plan.images_seed = Some(images_seed);
    let checked = images::check_images(&im, &sc.power_loss, images_seed)
        .map_err(|e| Error::Harness(format!("trial {} ({}): checks could not run: {e:#}", t.index, t.cell.id())))?;
    if let Some(reason) = checked.could_not_run {
        record.outcome = TrialOutcome::Inconclusive { reason };
        return Ok(());
    }
    record.images = checked.images;
    record.cross_version = im.disagreements.take();
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
    let shown = checked.failing.as_ref().map(|f| &f.report).or(checked.report.as_ref());
    record.checks = shown.map(|r| r.results.clone()).unwrap_or_default();
    for (kind, detail) in &findings {
        add_violation(&mut record.checks, *kind, detail.clone());
    }
    if record.violations.is_empty() {
        return Ok(());
    }
    let Some(dir) = keeper.claim(record)? else { return Ok(()) };
    let io = |what: &str| {
        let what = format!("{what} in {}", dir.display());
        move |e: std::io::Error| Error::io(what, e)
    };
    crate::base::dbfiles::write_files(&dir.join(KEPT_BASE_DIR), &base).map_err(io("keep the base files"))?;
    // The bytes its frames fill, not the live trace's sparse length.
    let used = trace::used_bytes(&trace_path).map_err(Error::Harness)?;
    std::fs::write(dir.join(trace::TRACE_FILE), used).map_err(io("keep the trace"))?;
    let Some(failing) = checked.failing else {
        // Only the processes failed: there is no failing image to keep.
        let last = checked.report.map(|r| r.results).unwrap_or_default();
        return keeper.write_kept(&dir, record, &Expected::default(), None, last, findings);
    };
    let page_size = crate::base::dbfiles::page_size(&base);
    let (shrunk, explanation, _) = images::explain(&im, &failing, sc.power_loss.explain_tests_max as usize, page_size)
        .map_err(|e| Error::Harness(format!("trial {}: shrinking: {e:#}", record.trial)))?;
    record.explanation = explanation.clone();
    crate::base::dbfiles::write_files(&dir.join(KEPT_IMAGE_DIR), &failing.files).map_err(io("keep the image"))?;
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
    keeper.write_kept(&dir, record, &failing.expected, Some(kept), failing.report.results.clone(), findings)
}

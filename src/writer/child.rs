//! The `__writer` child process: open the database with every pragma set and read back, run
//! `session_store` transactions, and acknowledge each commit only after `COMMIT` returned — on
//! an append-only file the driver reads after the writer is dead. Also owns the parsing of that
//! file ([`read_acks`](crate::writer::acklog::read_acks)), so the format lives in one place.
//!
//! A writer never talks to the driver through anything that dies with it: acknowledgements are
//! lines appended with one `write(2)` each to a file opened `O_APPEND` (they are in the kernel's
//! page cache the moment the call returns, so a SIGKILL one instruction later cannot lose them);
//! the only other channel is one-byte announcements on stdout (`R` ready, `B` inside a bulk
//! transaction), which carry timing, not results.
//!
//! Exit codes of a writer: 0 done or graceful shutdown; [`EXIT_WRITER_SETUP`] its harness side
//! failed (configuration, parent-death signal, acknowledgement file, trace, start gate): a
//! harness error; [`EXIT_WRITER_SQLITE`] SQLite refused to open, configure or write the
//! database (an error other than a lock; reported on stderr with its extended code): a
//! finding; [`EXIT_WRITER_LOCKED`] it gave up on a lock outside the retry loop: contention;
//! [`EXIT_WRITER_IO`] persistent injected I/O errors. Any other death is one crashfuzz did not
//! cause (`fault::death`).

use crate::fault::misuse::{self, WriterHazard};
use crate::fault::trace::Record;
use crate::fault::vfs::{self};
use crate::scenario::matrix::{CheckpointMode, CheckpointPolicy, JournalMode, SigtermBehaviour};
use crate::writer::pragmas::{self};
use crate::writer::protocol::{
    ANNOUNCE_BULK, ANNOUNCE_INJECTED, ANNOUNCE_READY, EXIT_WRITER_IO, EXIT_WRITER_LOCKED, EXIT_WRITER_SETUP,
    EXIT_WRITER_SQLITE, WriterConfig,
};
use crate::writer::session_store::TxnWriter;
use rusqlite::{Connection, ErrorCode};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Consecutive failed transactions after which a writer facing persistent I/O errors stops.
pub const IO_ERRORS_IN_A_ROW_MAX: u32 = 50;
/// Commits between two explicit PASSIVE checkpoints under `passive_every_50`.
pub const PASSIVE_CHECKPOINT_EVERY_COMMITS: u64 = 50;

/// Set by the SIGTERM handler of a `graceful` writer; the write loop polls it between
/// transactions (async-signal-safe: an atomic store is all the handler does).
static TERM_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: nix::libc::c_int) {
    TERM_REQUESTED.store(true, Ordering::SeqCst);
}

/// Entry point of `crashfuzz __writer CONFIG_JSON`; returns the process exit code.
pub fn main(config_json: &str) -> i32 {
    let cfg: WriterConfig = match serde_json::from_str(config_json) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("writer: bad config: {e}");
            return EXIT_WRITER_SETUP;
        }
    };
    if let Err(e) = arm_parent_death(cfg.parent_pid) {
        eprintln!("writer {}: {e}", cfg.writer_id);
        return EXIT_WRITER_SETUP;
    }
    if let Err(e) = install_sigterm(cfg.sigterm) {
        eprintln!("writer {}: sigaction: {e}", cfg.writer_id);
        return EXIT_WRITER_SETUP;
    }
    match run(&cfg) {
        Ok(()) => 0,
        Err(WriterError::Setup(msg)) => {
            eprintln!("writer {}: setup: {msg}", cfg.writer_id);
            EXIT_WRITER_SETUP
        }
        Err(WriterError::Sqlite(msg)) => {
            eprintln!("writer {}: {msg}", cfg.writer_id);
            EXIT_WRITER_SQLITE
        }
        Err(WriterError::Locked(msg)) => {
            eprintln!("writer {}: {msg}", cfg.writer_id);
            EXIT_WRITER_LOCKED
        }
        Err(WriterError::GaveUp) => {
            eprintln!(
                "writer {}: {IO_ERRORS_IN_A_ROW_MAX} transactions in a row failed with I/O errors",
                cfg.writer_id
            );
            EXIT_WRITER_IO
        }
    }
}

/// Dies with the driver. PR_SET_PDEATHSIG fires when the *thread* that spawned us exits; the
/// driver's worker threads live for the whole campaign, so that is the driver's death. The
/// `getppid` check closes the race where the driver died before the prctl.
fn arm_parent_death(parent_pid: i32) -> Result<(), String> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    let ppid = nix::unistd::getppid().as_raw();
    if ppid != parent_pid {
        return Err(format!("parent {parent_pid} is gone (ppid is {ppid})"));
    }
    Ok(())
}

fn install_sigterm(behaviour: SigtermBehaviour) -> nix::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    // A child inherits the signal mask; the driver blocks SIGTERM in its threads to sigwait on
    // it. std resets the mask on spawn, but say so explicitly rather than rely on it.
    let mut unblock = SigSet::empty();
    unblock.add(Signal::SIGTERM);
    unblock.thread_unblock()?;
    let handler = match behaviour {
        SigtermBehaviour::Default => SigHandler::SigDfl,
        SigtermBehaviour::Ignore => SigHandler::SigIgn,
        SigtermBehaviour::Graceful => SigHandler::Handler(on_sigterm),
    };
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGTERM, &SigAction::new(handler, SaFlags::SA_RESTART, SigSet::empty())) }?;
    Ok(())
}

enum WriterError {
    Setup(String),
    Sqlite(String),
    /// SQLITE_BUSY / SQLITE_LOCKED where no retry is possible.
    Locked(String),
    /// Persistent I/O errors (io_error fault): [`EXIT_WRITER_IO`].
    GaveUp,
}

/// Appends one line per `write(2)`; a line is either wholly in the file or absent.
struct AckFile(File);

impl AckFile {
    fn line(&mut self, line: &str) -> Result<(), WriterError> {
        // std's File is unbuffered: one write_all of a short line is one write(2) on an
        // O_APPEND descriptor.
        self.0.write_all(line.as_bytes()).map_err(|e| WriterError::Setup(format!("ack file: {e}")))
    }
}

fn announce(byte: u8) {
    // A driver that stopped listening is not our problem: it kills us next.
    let _ = std::io::stdout().lock().write_all(&[byte]).and_then(|()| std::io::stdout().lock().flush());
}

/// How one connection's loop ended.
enum LoopEnd {
    /// txns_max or the lifetime ran out.
    Finished,
    /// SIGTERM under `graceful`: the lane's connection is shut down by the caller.
    Terminated,
}

/// One connection of the writer: its writer id, ack file and transaction stream.
struct Lane {
    index: usize,
    writer_id: u64,
    ack: AckFile,
    txn: TxnWriter,
    conn: Connection,
}

/// A fatal SQLite error: a lock is [`WriterError::Locked`], anything else
/// [`WriterError::Sqlite`]; the message carries SQLite's extended code.
fn sqlite_failure(context: &str, e: &rusqlite::Error) -> WriterError {
    let msg = format!("{context}: {}", crate::base::sqlerr::describe(e));
    if crate::base::sqlerr::is_lock(e) { WriterError::Locked(msg) } else { WriterError::Sqlite(msg) }
}

/// The `V` line of an ack file: the SQLite this connection runs on, as it names itself.
fn sqlite_line(conn: &Connection) -> Result<String, WriterError> {
    conn.query_row("SELECT sqlite_version(), sqlite_source_id()", [], |r| {
        Ok(format!("V {} {}\n", r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })
    .map_err(|e| sqlite_failure("read sqlite_version()", &e))
}

/// Opens the database with the cell's pragmas, read back. What SQLite answers here is about the
/// database (a transient opening a damaged file), so its errors are SQLite's, not setup's.
fn open_connection(cfg: &WriterConfig) -> Result<Connection, WriterError> {
    let conn = match &cfg.vfs {
        None => Connection::open(&cfg.db_path),
        Some(_) => Connection::open_with_flags_and_vfs(&cfg.db_path, rusqlite::OpenFlags::default(), vfs::VFS_NAME),
    }
    .map_err(|e| sqlite_failure(&format!("open {}", cfg.db_path.display()), &e))?;
    match pragmas::apply(&conn, &cfg.pragmas) {
        Ok(()) => Ok(conn),
        Err(pragmas::PragmaError::Sqlite { pragma, source }) => {
            Err(sqlite_failure(&format!("PRAGMA {pragma}"), &source))
        }
        Err(e @ pragmas::PragmaError::Mismatch { .. }) => Err(WriterError::Sqlite(e.to_string())),
    }
}

fn run(cfg: &WriterConfig) -> Result<(), WriterError> {
    if let Some(vfs_cfg) = &cfg.vfs {
        vfs::register(vfs_cfg.clone()).map_err(|e| WriterError::Setup(format!("tracing VFS: {e}")))?;
    }
    assert_eq!(cfg.ack_paths.len(), cfg.connections as usize, "one ack file per connection (driver bug)");
    if cfg.hazard == Some(WriterHazard::ForkConnection) {
        return run_forked(cfg);
    }
    if let Some(WriterHazard::LockCancel { target, interval_us_max }) = cfg.hazard {
        // Runs until the process dies (hazard trials end with a SIGKILL).
        let file = crate::base::dbfiles::sidecar(&cfg.db_path, target.suffix());
        let _canceller =
            misuse::start_lock_canceller(file, interval_us_max, cfg.seed, Arc::new(AtomicBool::new(false)));
    }
    // Every connection is open, with its pragmas read back, before the writer says it is ready.
    let mut lanes = Vec::new();
    for (index, ack_path) in cfg.ack_paths.iter().enumerate() {
        let ack = OpenOptions::new()
            .append(true)
            .create(true)
            .open(ack_path)
            .map_err(|e| WriterError::Setup(format!("{}: {e}", ack_path.display())))?;
        let writer_id = cfg.writer_id + index as u64;
        let mut txn = TxnWriter::new(writer_id, cfg.seed.wrapping_add(index as u64), &cfg.workload);
        if cfg.bulk_first && index == 0 {
            txn.force_bulk_next();
        }
        let conn = open_connection(cfg)?;
        let mut ack = AckFile(ack);
        ack.line(&sqlite_line(&conn)?)?;
        lanes.push(Lane { index, writer_id, ack, txn, conn });
    }
    announce(ANNOUNCE_READY);
    wait_for_gate(cfg)?;

    // One thread per connection, as the gateway of the case ran them. Lane 0 runs on this
    // thread: a single-connection writer has no extra thread at all.
    let mut first = lanes.remove(0);
    let ends: Vec<Result<(Lane, LoopEnd), WriterError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .into_iter()
            .map(|mut lane| {
                std::thread::Builder::new()
                    .name(format!("conn-{}", lane.index))
                    .spawn_scoped(scope, move || write_loop(cfg, &mut lane).map(|end| (lane, end)))
                    .expect("spawn a connection thread")
            })
            .collect();
        let mut ends = vec![write_loop(cfg, &mut first).map(|end| (first, end))];
        ends.extend(handles.into_iter().map(|h| h.join().expect("a connection thread panicked")));
        ends
    });
    let mut lanes = Vec::new();
    for end in ends {
        lanes.push(end?);
    }
    // Graceful shutdown: the other connections close first, so no reader holds the WAL back,
    // then lane 0 checkpoints and closes (each step marked in its ack file).
    let mut lane0 = None;
    for (lane, end) in lanes {
        let Lane { index, mut ack, conn, .. } = lane;
        match (index, end) {
            (0, end) => lane0 = Some((ack, conn, end)),
            (_, LoopEnd::Terminated) => {
                conn.close().map_err(|(_, e)| sqlite_failure("close", &e))?;
                ack.line("X\n")?;
            }
            (_, LoopEnd::Finished) => {
                drop(conn);
                ack.line("E\n")?;
            }
        }
    }
    let (mut ack, conn, end) = lane0.expect("lane 0 exists");
    match end {
        LoopEnd::Terminated => shutdown_gracefully(cfg, conn, &mut ack),
        LoopEnd::Finished => {
            // Dropping closes it (a close error is SQLite's to swallow, as it always was here).
            drop(conn);
            if cfg.pragmas.journal_mode == JournalMode::Wal {
                let wal_gone = !crate::base::dbfiles::sidecar(&cfg.db_path, "-wal").exists();
                ack.line(&format!("L {}\n", u8::from(wal_gone)))?;
            }
            ack.line("E\n")
        }
    }
}

/// Fork hazard: how long the parent waits for its child's commit before SIGKILLing it.
const FORK_CHILD_DEADLINE: Duration = Duration::from_secs(5);

/// Appends one line to an ack file (before the lanes own their files).
fn ack_line(path: &Path, line: &str) -> Result<(), WriterError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| WriterError::Setup(format!("{}: {e}", path.display())))
}

/// Blocks until the driver opens the start gate (or closes stdin: it is stopping the trial).
fn wait_for_gate(cfg: &WriterConfig) -> Result<(), WriterError> {
    if cfg.gated {
        let mut byte = [0u8; 1];
        std::io::Read::read(&mut std::io::stdin().lock(), &mut byte)
            .map_err(|e| WriterError::Setup(format!("start gate: {e}")))?;
    }
    Ok(())
}

/// The fork hazard: one connection opened, then `fork(2)`; the child writes through the
/// inherited connection as writer `writer_id + 1` (ack file 1), the parent as `writer_id`.
fn run_forked(cfg: &WriterConfig) -> Result<(), WriterError> {
    assert_eq!(cfg.ack_paths.len(), 2, "the fork hazard has two writer ids (driver bug)");
    let open_ack = |path: &PathBuf| {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map(AckFile)
            .map_err(|e| WriterError::Setup(format!("{}: {e}", path.display())))
    };
    let mut conn = open_connection(cfg)?;
    let version = sqlite_line(&conn)?;
    for path in &cfg.ack_paths {
        ack_line(path, &version)?;
    }
    let parent_pid = nix::unistd::getpid().as_raw();
    // The misuse at its worst: a write transaction is open (its lock taken, its changes in the
    // page cache) when the process forks. Both processes will commit it; only the parent
    // holds the lock that should make that impossible.
    let mut parent_txn = TxnWriter::new(cfg.writer_id, cfg.seed, &cfg.workload);
    ack_line(&cfg.ack_paths[0], "B 1\n")?;
    parent_txn.begin_open(&mut conn).map_err(|e| sqlite_failure("open transaction", &e))?;
    // SAFETY: this process has exactly one thread here (no connection threads, no canceller),
    // so the child starts from a consistent state; it only runs Rust code and SQLite after.
    match unsafe { nix::unistd::fork() }.map_err(|e| WriterError::Setup(format!("fork: {e}")))? {
        nix::unistd::ForkResult::Child => {
            // PR_SET_PDEATHSIG is cleared in a fork's child: arm it again against the writer.
            if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err()
                || nix::unistd::getppid().as_raw() != parent_pid
            {
                std::process::exit(EXIT_WRITER_SETUP);
            }
            // The child adds its own append (writer_id + 1, seq 1) to the inherited
            // transaction and commits it all. In a rollback journal the parent's RESERVED lock
            // (a POSIX lock the child does not hold) makes that COMMIT fail; in WAL mode the
            // child's SQLite believes it holds the write lock, and nothing stops it.
            //
            // No busy handler: waiting cannot help (the lock the child lacks is held by its
            // own parent, which waits for it), and with one SQLite retries the EXCLUSIVE lock
            // of every cache spill of the commit in turn, a busy timeout each: minutes.
            let _ = conn.busy_timeout(Duration::ZERO);
            let id = cfg.writer_id + 1;
            let mut child_txn = TxnWriter::new(id, cfg.seed.wrapping_add(1), &cfg.workload);
            let code = match ack_line(&cfg.ack_paths[1], "B 1\n")
                .and_then(|()| child_txn.append_in_open(&mut conn).map_err(|e| sqlite_failure("commit", &e)))
            {
                Ok(seq) => match ack_line(&cfg.ack_paths[1], &format!("A {seq} 0 {}\n", monotonic_ns())) {
                    Ok(()) => 0,
                    Err(_) => EXIT_WRITER_SETUP,
                },
                // Refused, as it should be: the child simply ends.
                Err(WriterError::Sqlite(msg) | WriterError::Locked(msg)) => {
                    eprintln!("writer {id} (forked child): {msg}");
                    0
                }
                Err(WriterError::Setup(_) | WriterError::GaveUp) => EXIT_WRITER_SETUP,
            };
            // No destructors: the connection is the parent's as much as ours.
            std::process::exit(code);
        }
        nix::unistd::ForkResult::Parent { child } => {
            let mut ack = open_ack(&cfg.ack_paths[0])?;
            // The child commits first (bounded by its short busy timeout); then the parent
            // commits the transaction it believes it still holds, from the snapshot it took
            // before the fork. The order is fixed, so the outcome is the same every time.
            wait_for_forked_child(child);
            announce(ANNOUNCE_READY);
            wait_for_gate(cfg)?;
            let t0 = Instant::now();
            let seq = parent_txn.commit_open(&mut conn).map_err(|e| sqlite_failure("commit", &e))?;
            ack.line(&format!("A {seq} {} {}\n", t0.elapsed().as_micros(), monotonic_ns()))?;
            let mut lane = Lane { index: 0, writer_id: cfg.writer_id, ack, txn: parent_txn, conn };
            match write_loop(cfg, &mut lane)? {
                LoopEnd::Terminated => shutdown_gracefully(cfg, lane.conn, &mut lane.ack),
                LoopEnd::Finished => lane.ack.line("E\n"),
            }
        }
    }
}

/// Reaps the fork hazard's child, SIGKILLing it if it has not finished its commit within
/// [`FORK_CHILD_DEADLINE`] (its acknowledgement file then says it began and never committed).
fn wait_for_forked_child(child: nix::unistd::Pid) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let deadline = Instant::now() + FORK_CHILD_DEADLINE;
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(WaitStatus::StillAlive) => {
                eprintln!("forked child {child} did not finish its commit in {FORK_CHILD_DEADLINE:?}: killed");
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                return;
            }
            // Reaped (or already gone): either way it is over.
            Ok(_) | Err(_) => return,
        }
    }
}

/// The transactions of one connection until the work runs out or a graceful SIGTERM.
fn write_loop(cfg: &WriterConfig, lane: &mut Lane) -> Result<LoopEnd, WriterError> {
    let started = Instant::now();
    let traced = cfg.vfs.is_some();
    let writer = lane.writer_id;
    let trace = |record: Record| -> Result<(), WriterError> {
        if traced {
            vfs::append(&record).map_err(|e| WriterError::Setup(format!("trace: {e}")))?;
        }
        Ok(())
    };
    let lifetime = Duration::from_millis(cfg.workload.writer_lifetime_ms_max);
    let timer = Duration::from_millis(cfg.checkpoint_timer_ms.max(1));
    let mut last_timer_checkpoint = Instant::now();
    let mut commits: u64 = 0;
    let mut busy_retries: u64 = 0;
    let mut io_errors_in_a_row: u32 = 0;
    // The seq of a transaction that failed with an I/O error and may have committed anyway.
    let mut unsettled: Option<u64> = None;
    while commits < cfg.workload.txns_max && started.elapsed() < lifetime {
        if TERM_REQUESTED.load(Ordering::SeqCst) {
            return Ok(LoopEnd::Terminated);
        }
        if let Some(failed) = unsettled {
            match lane.txn.settle_failed(&lane.conn) {
                Ok(committed) => {
                    if committed {
                        // Committed although COMMIT failed: never acknowledged, seq spent.
                        lane.ack.line(&format!("U {failed}\n"))?;
                    }
                    unsettled = None;
                }
                Err(e) if is_io_error(&e) => {
                    io_error(&mut lane.ack, failed, &e, &mut io_errors_in_a_row)?;
                    continue;
                }
                Err(e) => return Err(sqlite_failure(&format!("writer {writer} transaction {failed}"), &e)),
            }
        }
        let seq = lane.txn.next_seq();
        lane.ack.line(&format!("B {seq}\n"))?;
        trace(Record::Begin { writer, seq })?;
        let t0 = Instant::now();
        let result = lane.txn.run_txn(&mut lane.conn, &mut |_| announce(ANNOUNCE_BULK));
        if traced && vfs::injected() > 0 && !ANNOUNCED_INJECTION.swap(true, Ordering::SeqCst) {
            announce(ANNOUNCE_INJECTED);
        }
        match result {
            Ok(summary) => {
                let latency_us = t0.elapsed().as_micros();
                debug_assert_eq!(summary.seq, seq);
                // The acknowledgement: only now, after COMMIT returned success. The monotonic
                // clock is system-wide, so the driver can tell which commits followed another
                // process's death.
                lane.ack.line(&format!("A {seq} {latency_us} {}\n", monotonic_ns()))?;
                trace(Record::Ack { writer, seq })?;
                commits += 1;
                io_errors_in_a_row = 0;
            }
            Err(e) if is_busy(&e) => {
                busy_retries += 1;
                lane.ack.line(&format!("Y {busy_retries}\n"))?;
                continue;
            }
            Err(e) if cfg.tolerate_io_errors && is_io_error(&e) => {
                // The error is what the fault is about: say so, never acknowledge, go on (the
                // same plan is retried under the same seq, unless it committed after all).
                io_error(&mut lane.ack, seq, &e, &mut io_errors_in_a_row)?;
                unsettled = Some(seq);
                continue;
            }
            Err(e) => return Err(sqlite_failure(&format!("writer {writer} transaction {seq}"), &e)),
        }
        let conn = &lane.conn;
        match cfg.checkpoint {
            Some(CheckpointPolicy::PassiveEvery50) if commits % PASSIVE_CHECKPOINT_EVERY_COMMITS == 0 => {
                checkpoint(conn, &mut lane.ack, CheckpointMode::Passive, false)?;
            }
            Some(CheckpointPolicy::TruncateOnTimer) if lane.index == 0 && last_timer_checkpoint.elapsed() >= timer => {
                checkpoint(conn, &mut lane.ack, CheckpointMode::Truncate, false)?;
                last_timer_checkpoint = Instant::now();
            }
            Some(
                CheckpointPolicy::Auto
                | CheckpointPolicy::PassiveEvery50
                | CheckpointPolicy::TruncateOnClose
                | CheckpointPolicy::None
                | CheckpointPolicy::TruncateOnTimer,
            )
            | None => {}
        }
    }
    if cfg.checkpoint == Some(CheckpointPolicy::TruncateOnClose) {
        checkpoint(&lane.conn, &mut lane.ack, CheckpointMode::Truncate, false)?;
    }
    Ok(LoopEnd::Finished)
}

/// Reports an I/O error on transaction `seq` (`F seq code`) and gives up (`G`,
/// [`WriterError::GaveUp`]) after [`IO_ERRORS_IN_A_ROW_MAX`] in a row.
fn io_error(ack: &mut AckFile, seq: u64, e: &rusqlite::Error, in_a_row: &mut u32) -> Result<(), WriterError> {
    let code = e.sqlite_error().map_or(0, |f| f.extended_code);
    ack.line(&format!("F {seq} {code}\n"))?;
    *in_a_row += 1;
    if *in_a_row >= IO_ERRORS_IN_A_ROW_MAX {
        ack.line("G\n")?;
        return Err(WriterError::GaveUp);
    }
    Ok(())
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// One injected-error announcement per process, whichever connection saw it.
static ANNOUNCED_INJECTION: AtomicBool = AtomicBool::new(false);

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

fn is_io_error(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::SystemIoFailure | ErrorCode::DiskFull))
}

/// SIGTERM under `graceful`: the transaction in flight has finished (we only look at the flag
/// between transactions); checkpoint in the configured mode, close, exit 0. Each step is marked
/// in the ack file so the driver can tell a SIGKILL in the middle of the checkpoint.
fn shutdown_gracefully(cfg: &WriterConfig, conn: Connection, ack: &mut AckFile) -> Result<(), WriterError> {
    ack.line("T\n")?;
    if cfg.pragmas.journal_mode.is_wal() {
        ack.line("C\n")?;
        checkpoint(&conn, ack, cfg.graceful_checkpoint, true)?;
        ack.line("D\n")?;
    }
    conn.close().map_err(|(_, e)| sqlite_failure("close", &e))?;
    ack.line("X\n")
}

fn checkpoint(
    conn: &Connection,
    ack: &mut AckFile,
    mode: CheckpointMode,
    on_shutdown: bool,
) -> Result<(), WriterError> {
    let t0 = Instant::now();
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row(&format!("PRAGMA wal_checkpoint({})", mode.as_sql()), [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(|e| sqlite_failure(&format!("wal_checkpoint({})", mode.as_sql()), &e))?;
    let elapsed_us = t0.elapsed().as_micros();
    ack.line(&format!("K {} {busy} {log} {done} {elapsed_us} {}\n", mode.as_sql(), u8::from(on_shutdown)))
}

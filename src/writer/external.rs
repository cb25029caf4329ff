//! An application's own writer program (`[writer] command`), driven through a protocol any
//! language can speak, with nothing of crashfuzz linked in.
//!
//! | crashfuzz gives | meaning |
//! |---|---|
//! | `CRASHFUZZ_DB` | the database path |
//! | `CRASHFUZZ_ACK_FD` | an open, writable descriptor for the lines below |
//! | `CRASHFUZZ_WRITER_ID` | the process's writer id, unique in the trial |
//! | `CRASHFUZZ_SEED` | a u64 for the program's own randomness |
//! | `CRASHFUZZ_JOURNAL_MODE`, `CRASHFUZZ_SYNCHRONOUS` | the cell's settings, upper case as in the PRAGMA; the program applies them |
//! | `CRASHFUZZ_ROLE` | `writer` (long-lived: writes until stopped), `transient` (writes a little, closes, exits 0) or `setup` |
//!
//! | the program writes, one `write(2)` each | meaning |
//! |---|---|
//! | `ready` | the database is open and the program is about to write |
//! | `begin KEY` | before a transaction (optional) |
//! | `ack KEY` | after its COMMIT returned |
//!
//! `KEY` is any string without whitespace. An unknown line, a second `ack` of one key, or (once
//! the program uses `begin`) an `ack` of a key never begun is a `protocol` finding. Keys become
//! sequence numbers per writer in the order the program first names them, so the engine's
//! tallies work unchanged; the oracle looks the keys up with the scenario's `[oracle]` queries.
//!
//! `setup` runs once per template database (`CRASHFUZZ_ROLE=setup`, no descriptor). Without
//! it the template is an empty file the program initialises. The program's stdout and stderr go
//! to its stderr file in the lane; readiness is its `ready` line. The program runs with the
//! interposer preloaded (`LD_PRELOAD`, `src/interposer/`) when it can be built: it names the
//! SQLite the program loaded ([`ENV_SQLITE_REPORT`]), and brings in the faults that act
//! inside the process: the trial's trace as crashfuzz's tracing VFS would write it
//! ([`ENV_TRACE`]), a crash point, an injected I/O error, lock cancellation.

use crate::error::{Error, Result};
use crate::fault::misuse::{LockTarget, WriterHazard};
use crate::fault::vfs::{Injection, IoErrorKind};
use crate::oracle::Schema;
use crate::oracle::app::AppSchema;
use crate::record::SqliteIdentity;
use crate::scenario::app::AppWriter;
use crate::writer::acklog::AckLog;
use crate::writer::pragmas::Pragmas;
use crate::writer::program::{Channel, Program};
use crate::writer::protocol::WriterConfig;
use crate::writer::session_store::WorkloadConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const ENV_DB: &str = "CRASHFUZZ_DB";
pub const ENV_ACK_FD: &str = "CRASHFUZZ_ACK_FD";
pub const ENV_WRITER_ID: &str = "CRASHFUZZ_WRITER_ID";
pub const ENV_SEED: &str = "CRASHFUZZ_SEED";
pub const ENV_JOURNAL_MODE: &str = "CRASHFUZZ_JOURNAL_MODE";
pub const ENV_SYNCHRONOUS: &str = "CRASHFUZZ_SYNCHRONOUS";
pub const ENV_ROLE: &str = "CRASHFUZZ_ROLE";
/// The trial's trace, for the interposer (`src/interposer/`).
pub const ENV_TRACE: &str = "CRASHFUZZ_TRACE";
/// A crash point, for the interposer: the operation before which the process kills itself.
pub const ENV_CRASH_AT: &str = "CRASHFUZZ_CRASH_AT";
/// An I/O error, for the interposer: the operation that fails, its errno, and whether every
/// later one fails too.
pub const ENV_FAIL_AT: &str = "CRASHFUZZ_FAIL_AT";
pub const ENV_FAIL_ERRNO: &str = "CRASHFUZZ_FAIL_ERRNO";
pub const ENV_FAIL_PERSISTENT: &str = "CRASHFUZZ_FAIL_PERSISTENT";
/// Lock cancellation, for the interposer: `db`, `wal` or `shm`, `:` and the interval's bound
/// in µs.
pub const ENV_LOCK_CANCEL: &str = "CRASHFUZZ_LOCK_CANCEL";
/// A file where the interposer names the SQLite library the program loaded.
pub const ENV_SQLITE_REPORT: &str = "CRASHFUZZ_SQLITE_REPORT";
/// Every variable the interposer reads besides the protocol's; a process is given only its own.
const INTERPOSER_ENV: [&str; 7] =
    [ENV_TRACE, ENV_CRASH_AT, ENV_FAIL_AT, ENV_FAIL_ERRNO, ENV_FAIL_PERSISTENT, ENV_LOCK_CANCEL, ENV_SQLITE_REPORT];

/// The file beside an acknowledgement file where the interposer names the program's SQLite.
pub fn sqlite_report_path(acks: &Path) -> PathBuf {
    let mut name = acks.as_os_str().to_owned();
    name.push(".sqlite");
    name.into()
}

/// What the interposer said of the program's SQLite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteReport {
    /// The library it loaded, as that library names itself.
    Library(SqliteIdentity),
    /// It loaded no SQLite library: its SQLite is compiled in.
    CompiledIn,
    /// No report: the program never said `ready`, or ran without the interposer.
    Missing,
}

/// Reads the interposer's report of the program's SQLite at `path`.
pub fn read_sqlite_report(path: &Path) -> SqliteReport {
    let Ok(text) = std::fs::read_to_string(path) else { return SqliteReport::Missing };
    if text.trim() == "compiled-in" {
        return SqliteReport::CompiledIn;
    }
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).map(str::to_string);
    match (field("version"), field("source_id")) {
        (Some(version), Some(source_id)) if !version.is_empty() => {
            SqliteReport::Library(SqliteIdentity { version, source_id })
        }
        _ => SqliteReport::Missing,
    }
}

/// How long setup may take on a loaded machine.
const SETUP_TIME_MAX: Duration = Duration::from_secs(300);

/// An application's writer program.
#[derive(Debug)]
pub struct External {
    pub app: AppWriter,
    /// `LD_LIBRARY_PATH` for a cell on a named build; `None`: the program's own SQLite.
    pub library_dir: Option<PathBuf>,
    pub schema: &'static AppSchema,
    /// The `LD_PRELOAD` interposer: always for the faults it brings in, otherwise when it
    /// could be built (then it only names the program's SQLite).
    pub interposer: Option<PathBuf>,
}

impl External {
    /// `argv` with the protocol's environment for `db`, `pragmas`, `seed`, `id` and `role`.
    fn base_command(&self, argv: &[String], db: &Path, pragmas: &Pragmas, seed: u64, id: u64, role: &str) -> Command {
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env(ENV_DB, db)
            .env(ENV_WRITER_ID, id.to_string())
            .env(ENV_SEED, seed.to_string())
            .env(ENV_JOURNAL_MODE, pragmas.journal_mode.as_sql().to_ascii_uppercase())
            .env(ENV_SYNCHRONOUS, pragmas.synchronous.as_sql().to_ascii_uppercase())
            .env(ENV_ROLE, role)
            .env_remove(ENV_ACK_FD);
        for name in INTERPOSER_ENV {
            command.env_remove(name);
        }
        if let Some(dir) = &self.library_dir {
            command.env("LD_LIBRARY_PATH", dir);
        }
        command
    }
}

impl External {
    /// The interposer's variables for `cfg`: none when its fault needs no interposer.
    fn interposer_env(&self, cfg: &WriterConfig) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(vfs) = &cfg.vfs {
            env.push((ENV_TRACE, vfs.trace_path.display().to_string()));
            match vfs.injection {
                Injection::None => {}
                Injection::CrashAt { op } => env.push((ENV_CRASH_AT, op.to_string())),
                Injection::FailAt { op, error, persistent } => {
                    let errno = match error {
                        IoErrorKind::Ioerr => nix::errno::Errno::EIO as i32,
                        IoErrorKind::Full => nix::errno::Errno::ENOSPC as i32,
                    };
                    env.push((ENV_FAIL_AT, op.to_string()));
                    env.push((ENV_FAIL_ERRNO, errno.to_string()));
                    env.push((ENV_FAIL_PERSISTENT, u8::from(persistent).to_string()));
                }
            }
        }
        match &cfg.hazard {
            Some(WriterHazard::LockCancel { target, interval_us_max }) => {
                let file = match target {
                    LockTarget::Db => "db",
                    LockTarget::Wal => "wal",
                    LockTarget::Shm => "shm",
                };
                env.push((ENV_LOCK_CANCEL, format!("{file}:{interval_us_max}")));
            }
            // Refused for such a program by the scenario's validation.
            Some(WriterHazard::ForkConnection) | None => {}
        }
        env
    }
}

impl Program for External {
    /// Runs `[writer] setup` on `path`, or leaves an empty file the program initialises.
    fn make_template(&self, path: &Path, pragmas: &Pragmas, _workload: &WorkloadConfig, seed: u64) -> Result<u64> {
        if self.app.setup.is_empty() {
            std::fs::File::create(path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
            return Ok(0);
        }
        let mut command = self.base_command(&self.app.setup, path, pragmas, seed, 0, "setup");
        let ctx = format!("[writer] setup {:?} on {}", self.app.setup.join(" "), path.display());
        let output = crate::base::process::run_captured(&mut command, SETUP_TIME_MAX, true)
            .map_err(|e| Error::io(ctx.clone(), e))?
            .ok_or_else(|| Error::Harness(format!("{ctx}: ran out of its {} s", SETUP_TIME_MAX.as_secs())))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            return Err(Error::Harness(format!("{ctx}: {} ({})", said.trim(), output.status)));
        }
        if !path.exists() {
            return Err(Error::Harness(format!("{ctx}: exited 0 without creating the database")));
        }
        Ok(0)
    }

    fn command(&self, cfg: &WriterConfig) -> Command {
        let role = if cfg.transient { "transient" } else { "writer" };
        let mut command =
            self.base_command(&self.app.command, &cfg.db_path, &cfg.pragmas, cfg.seed, cfg.writer_id, role);
        // The interposer names the SQLite the program loaded, and brings in the VFS's faults
        // and lock cancellation: it appends the program's file I/O to the trial's trace, kills
        // it at its crash point, fails its n-th operation, or cancels its locks from a thread.
        if let Some(library) = &self.interposer {
            let mut interposed = self.interposer_env(cfg);
            interposed.push((ENV_SQLITE_REPORT, sqlite_report_path(&cfg.ack_paths[0]).display().to_string()));
            let preload = match std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
                Some(theirs) => format!("{} {}", library.display(), theirs.to_string_lossy()),
                None => library.display().to_string(),
            };
            command.env("LD_PRELOAD", preload).envs(interposed);
        }
        // The acknowledgement file, opened here (close-on-exec, so no other child inherits it)
        // and handed to this child alone: after fork, before exec, its flag is cleared.
        let parent = cfg.parent_pid;
        match open_ack_file(&cfg.ack_paths[0]) {
            Ok(fd) => {
                command.env(ENV_ACK_FD, fd.as_raw_fd().to_string());
                // SAFETY: only async-signal-safe system calls run between fork and exec.
                unsafe {
                    command.pre_exec(move || prepare_child(&fd, parent).map_err(std::io::Error::from));
                }
            }
            Err(e) => {
                // Spawning then fails with this error (a harness error with the path).
                let message = format!("open {}: {e}", cfg.ack_paths[0].display());
                unsafe {
                    command.pre_exec(move || Err(std::io::Error::other(message.clone())));
                }
            }
        }
        command
    }

    fn acknowledgements(&self, path: &Path, _id: u64) -> std::result::Result<AckLog, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut log = parse_lines(&String::from_utf8_lossy(&text));
        match read_sqlite_report(&sqlite_report_path(path)) {
            SqliteReport::Library(identity) => log.sqlite = Some(identity),
            SqliteReport::CompiledIn => log.sqlite_compiled_in = true,
            SqliteReport::Missing => {}
        }
        Ok(log)
    }

    fn schema(&self) -> &'static dyn Schema {
        self.schema
    }

    fn channel(&self) -> Channel {
        Channel::AckLines
    }

    fn template_keys(&self, path: &Path) -> Result<BTreeSet<String>> {
        let Some(sql) = &self.app.present_sql else { return Ok(BTreeSet::new()) };
        let ctx = format!("[oracle] present_sql on the template {}", path.display());
        let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Error::sqlite(ctx.clone(), e))?;
        let keys = conn.prepare(sql).and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, rusqlite::types::Value>(0))?
                .map(|v| v.map(crate::oracle::app::key_text))
                .collect::<rusqlite::Result<BTreeSet<String>>>()
        });
        match keys {
            Ok(keys) => Ok(keys),
            // Before the program's first run the template may hold none of its tables.
            Err(_) if self.app.setup.is_empty() => Ok(BTreeSet::new()),
            Err(e) => Err(Error::sqlite(ctx, e)),
        }
    }
}

/// In the child, between fork and exec: the acknowledgement descriptor survives exec; the
/// program starts with no signal blocked and SIGTERM and SIGPIPE at their default action (the
/// driver blocks SIGTERM in its threads, and a forked child inherits that mask); it dies with
/// the driver (`PR_SET_PDEATHSIG`), and not at all if the driver is already gone.
fn prepare_child(ack: &OwnedFd, parent_pid: i32) -> nix::Result<()> {
    use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
    nix::fcntl::fcntl(ack, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
    SigSet::empty().thread_set_mask()?;
    for sig in [Signal::SIGTERM, Signal::SIGPIPE] {
        // SAFETY: restoring a default disposition installs no handler.
        unsafe { signal(sig, SigHandler::SigDfl)? };
    }
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    if nix::unistd::getppid().as_raw() != parent_pid {
        return Err(nix::errno::Errno::ESRCH);
    }
    Ok(())
}

fn open_ack_file(path: &Path) -> std::io::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok(OwnedFd::from(file))
}

/// Reads an acknowledgement file of the protocol. Never fails: a line that breaks the protocol
/// is recorded in [`AckLog::protocol`]; a torn last line (no newline) is ignored, since a
/// `write(2)` per line cannot tear.
pub fn parse_lines(text: &str) -> AckLog {
    let mut log = AckLog::default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let mut seq_of: BTreeMap<&str, u64> = BTreeMap::new();
    let mut begun: BTreeSet<&str> = BTreeSet::new();
    let mut acked: BTreeSet<&str> = BTreeSet::new();
    let uses_begins = complete.lines().any(|l| l.starts_with("begin "));
    for (index, line) in complete.lines().enumerate() {
        let at = index + 1;
        let fields: Vec<&str> = line.split(' ').collect();
        let keyed = |word: &str| fields.len() == 2 && fields[0] == word && !fields[1].is_empty();
        if fields == ["ready"] {
            if log.ready {
                log.protocol.push(format!("line {at}: a second `ready`"));
            }
            log.ready = true;
            continue;
        }
        if !keyed("begin") && !keyed("ack") || line.chars().any(|c| c.is_whitespace() && c != ' ') {
            log.protocol.push(format!("line {at}: unknown line {line:?}"));
            continue;
        }
        let key = fields[1];
        let next = seq_of.len() as u64 + 1;
        let seq = *seq_of.entry(key).or_insert_with(|| {
            log.keys.push(key.to_string());
            next
        });
        if fields[0] == "begin" {
            begun.insert(key);
            log.begins = true;
            log.begun = log.begun.max(seq);
            continue;
        }
        if !acked.insert(key) {
            log.protocol.push(format!("line {at}: a second `ack {key}`"));
            continue;
        }
        if uses_begins && !begun.contains(key) {
            log.protocol.push(format!("line {at}: `ack {key}` of a key never begun"));
        }
        log.acked = log.acked.max(seq);
        log.begun = log.begun.max(seq);
        log.acked_seqs.push(seq);
    }
    log
}

/// True once the acknowledgement file at `path` holds its `ready` line.
pub fn said_ready(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|text| text.split(|&b| b == b'\n').any(|line| line == b"ready"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_sequence_numbers_in_the_order_first_named() {
        let log = parse_lines("ready\nbegin a\nack a\nbegin b\nbegin c\nack c\nbegin d\nack d");
        assert!(log.ready && log.begins);
        assert_eq!(log.keys, vec!["a", "b", "c", "d"]);
        assert_eq!(log.acked_seqs, vec![1, 3], "the torn `ack d` does not count");
        assert_eq!((log.acked, log.begun), (3, 4));
        assert!(log.protocol.is_empty(), "{:?}", log.protocol);
        let without = parse_lines("ready\nack x\nack y\n");
        assert!(!without.begins);
        assert_eq!((without.acked, without.begun, without.acked_seqs), (2, 2, vec![1, 2]));
        assert!(without.protocol.is_empty());
    }

    #[test]
    fn unknown_lines_duplicate_acks_and_acks_never_begun_are_protocol_findings() {
        let log = parse_lines("ready\nbegin a\nack a\nack a\nhello\nack b\nbegin  c\nack\nbegin a b\nready\n");
        let said: Vec<&str> = log.protocol.iter().map(String::as_str).collect();
        assert_eq!(
            said,
            vec![
                "line 4: a second `ack a`",
                "line 5: unknown line \"hello\"",
                "line 6: `ack b` of a key never begun",
                "line 7: unknown line \"begin  c\"",
                "line 8: unknown line \"ack\"",
                "line 9: unknown line \"begin a b\"",
                "line 10: a second `ready`",
            ]
        );
        assert_eq!(log.acked_seqs, vec![1, 2], "the duplicate is not counted twice");
        assert!(parse_lines("ack\ta\n").protocol[0].contains("unknown line"));
        assert_eq!(parse_lines(""), AckLog::default());
    }

    #[test]
    fn the_interposers_report_names_a_loaded_library_or_sqlite_compiled_in() {
        let dir = tempfile::tempdir().unwrap();
        let report = sqlite_report_path(&dir.path().join("acks-7"));
        assert!(report.ends_with("acks-7.sqlite"));
        assert_eq!(read_sqlite_report(&report), SqliteReport::Missing, "never ready, or no interposer");
        std::fs::write(&report, "library /usr/lib/libsqlite3.so.0\nversion 3.40.1\nsource_id 2022-12-28 df5c\n")
            .unwrap();
        let identity = SqliteIdentity { version: "3.40.1".into(), source_id: "2022-12-28 df5c".into() };
        assert_eq!(read_sqlite_report(&report), SqliteReport::Library(identity));
        std::fs::write(&report, "compiled-in\n").unwrap();
        assert_eq!(read_sqlite_report(&report), SqliteReport::CompiledIn);
        std::fs::write(&report, "library /x.so\nversion \n").unwrap();
        assert_eq!(read_sqlite_report(&report), SqliteReport::Missing, "a library that did not name itself");
    }

    #[test]
    fn readiness_is_the_ready_line_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acks");
        assert!(!said_ready(&path));
        std::fs::write(&path, "begin x\nreadyish\n").unwrap();
        assert!(!said_ready(&path));
        std::fs::write(&path, "begin x\nready\n").unwrap();
        assert!(said_ready(&path));
    }
}

//! The writer seam: what the trial engine needs of the program that writes a trial's database,
//! and nothing else. A [`Program`] makes each cell's template database, gives the command line
//! of one writer process, reads a writer's acknowledgements once it was reaped, and says what
//! the oracle may assume about the database it writes. The engine supervises the process
//! itself (its process group, the start gate on stdin, the announcements on stdout, stderr to
//! a file, the signals of the fault) whatever the program is.
//!
//! [`BuiltIn`] is crashfuzz's own writer: this executable re-run as `crashfuzz __writer`, the
//! session store workload, acknowledgements in the format of [`acklog`], and the session
//! store's ledger for the oracle.

use crate::error::{Error, Result};
use crate::oracle::Schema;
use crate::oracle::ledger::SESSION_STORE;
use crate::record::SqliteIdentity;
use crate::writer::acklog::{self, AckLog};
use crate::writer::pragmas::{self, Pragmas};
use crate::writer::protocol::{WRITER_SUBCOMMAND, WriterConfig};
use crate::writer::session_store::{self, WorkloadConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The program that writes a trial's database.
pub trait Program: Sync {
    /// Creates the database at `path` (which does not exist) with its schema and seed, the
    /// pragmas applied, and closes it. Returns the number of transactions the seed made, which
    /// every image of the cell must keep.
    fn make_template(&self, path: &Path, pragmas: &Pragmas, workload: &WorkloadConfig, seed: u64) -> Result<u64>;
    /// The command that starts one writer process configured by `cfg`, before the engine adds
    /// its process group and standard streams.
    fn command(&self, cfg: &WriterConfig) -> Command;
    /// Writer `id`'s acknowledgements, read from `path` after its process was reaped (`Err`:
    /// the file breaks the format, a harness failure).
    fn acknowledgements(&self, path: &Path, id: u64) -> std::result::Result<AckLog, String>;
    /// What the oracle may assume about the database it writes.
    fn schema(&self) -> &'static dyn Schema;
    /// The executable a fork server may run to fork this program's writers instead of
    /// exec'ing [`Program::command`] (`None`: exec every one). Only for a command that is that
    /// executable with the writer's configuration and nothing else.
    fn fork_exe(&self) -> Option<&Path> {
        None
    }
    /// How the engine talks with its processes.
    fn channel(&self) -> Channel {
        Channel::Announcing
    }
    /// The keys the template at `path` holds (an application's writer, whose
    /// acknowledgements name keys): present in every image without having been begun.
    fn template_keys(&self, _path: &Path) -> Result<std::collections::BTreeSet<String>> {
        Ok(std::collections::BTreeSet::new())
    }
}

/// How the engine talks with a program's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// crashfuzz's own writer: it waits at a start gate on stdin and announces itself with
    /// one byte on stdout ([`crate::writer::protocol`]); its sequence numbers are its keys, and
    /// a database that passed its checks may carry on into the cell's next trial.
    Announcing,
    /// An application's writer ([`crate::writer::external`]): no gate, stdout to its log,
    /// readiness its `ready` line; every trial starts from the template, since what survived
    /// of a previous trial is not known to it as acknowledged history.
    AckLines,
}

/// crashfuzz's own writer: `EXE __writer CONFIG`, the session store workload.
#[derive(Clone, Debug)]
pub struct BuiltIn {
    /// The `crashfuzz` executable its writers run.
    pub exe: PathBuf,
    /// The SQLite that executable runs on.
    pub sqlite: WriterSqlite,
}

/// The SQLite a [`BuiltIn`] writer runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriterSqlite {
    /// Linked into the executable (`bundled`): templates are made in this process.
    Linked,
    /// The executable is the shared-library writer
    /// ([`shared_writer`](crate::sqlite::shared_writer)); its `libsqlite3.so.0` is found in
    /// `library_dir` (`LD_LIBRARY_PATH`), or by the loader's own search when `None` (`system`).
    /// Templates are made by a child of it, so the build under test writes them too.
    Shared { library_dir: Option<PathBuf> },
}

/// How long a child may take to make a template (seeding on a loaded machine).
const TEMPLATE_TIME_MAX: Duration = Duration::from_secs(300);

impl BuiltIn {
    /// The writer on the SQLite this executable is linked with.
    pub fn bundled(exe: PathBuf) -> BuiltIn {
        BuiltIn { exe, sqlite: WriterSqlite::Linked }
    }

    /// `exe` with its library environment.
    fn base_command(&self) -> Command {
        let mut command = Command::new(&self.exe);
        if let WriterSqlite::Shared { library_dir: Some(dir) } = &self.sqlite {
            command.env("LD_LIBRARY_PATH", dir);
        }
        command
    }
}

impl Program for BuiltIn {
    fn make_template(&self, path: &Path, pragmas: &Pragmas, workload: &WorkloadConfig, seed: u64) -> Result<u64> {
        let request =
            TemplateRequest { path: path.to_path_buf(), pragmas: pragmas.clone(), workload: workload.clone(), seed };
        if self.sqlite == WriterSqlite::Linked {
            return make_template_here(&request).map(|made| made.seeded);
        }
        let mut command = self.base_command();
        command.arg(TEMPLATE_SUBCOMMAND).arg(serde_json::to_string(&request).expect("template request serializes"));
        let ctx = format!("template {} by {}", path.display(), self.exe.display());
        let output = crate::base::process::run_captured(&mut command, TEMPLATE_TIME_MAX, true)
            .map_err(|e| Error::io(ctx.clone(), e))?
            .ok_or_else(|| Error::Harness(format!("{ctx}: ran out of its {} s", TEMPLATE_TIME_MAX.as_secs())))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            return Err(Error::Harness(format!("{ctx}: {} ({})", said.trim(), output.status)));
        }
        let made: TemplateMade = serde_json::from_slice(&output.stdout)
            .map_err(|e| Error::Harness(format!("{ctx}: printed no template record: {e}")))?;
        Ok(made.seeded)
    }

    fn fork_exe(&self) -> Option<&Path> {
        // A shared-library writer needs its library environment: it is exec'd.
        (self.sqlite == WriterSqlite::Linked).then_some(self.exe.as_path())
    }

    fn command(&self, cfg: &WriterConfig) -> Command {
        let mut command = self.base_command();
        command.arg(WRITER_SUBCOMMAND).arg(serde_json::to_string(cfg).expect("writer config serializes"));
        command
    }

    fn acknowledgements(&self, path: &Path, id: u64) -> std::result::Result<AckLog, String> {
        acklog::read_acks(path, id)
    }

    fn schema(&self) -> &'static dyn Schema {
        &SESSION_STORE
    }
}

/// The hidden subcommand that makes a template with the executable's own SQLite:
/// `crashfuzz __template REQUEST`, printing what it made (its seeded transactions and the
/// SQLite that made it) as JSON.
pub const TEMPLATE_SUBCOMMAND: &str = "__template";

/// What a template is made of.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TemplateRequest {
    path: PathBuf,
    pragmas: Pragmas,
    workload: WorkloadConfig,
    seed: u64,
}

/// What making a template gave.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TemplateMade {
    /// Transactions the seed made.
    seeded: u64,
    /// The SQLite that made it.
    sqlite: SqliteIdentity,
}

fn make_template_here(request: &TemplateRequest) -> Result<TemplateMade> {
    let path = &request.path;
    let ctx = |what: &str| format!("template {}: {what}", path.display());
    let mut conn = rusqlite::Connection::open(path).map_err(|e| Error::sqlite(ctx("open"), e))?;
    session_store::create_schema(&conn, &request.workload).map_err(|e| Error::sqlite(ctx("schema"), e))?;
    pragmas::apply(&conn, &request.pragmas).map_err(|e| Error::Harness(ctx(&e.to_string())))?;
    let seeded =
        session_store::seed(&mut conn, &request.workload, request.seed).map_err(|e| Error::sqlite(ctx("seed"), e))?;
    let sqlite = conn
        .query_row("SELECT sqlite_version(), sqlite_source_id()", [], |r| {
            Ok(SqliteIdentity { version: r.get(0)?, source_id: r.get(1)? })
        })
        .map_err(|e| Error::sqlite(ctx("sqlite_version()"), e))?;
    conn.close().map_err(|(_, e)| Error::sqlite(ctx("close"), e))?;
    Ok(TemplateMade { seeded, sqlite })
}

/// `crashfuzz __template REQUEST`: makes the template and prints what it made; exit 0, or 3
/// with the reason on stderr.
pub fn template_main(request: &str) -> i32 {
    let made = serde_json::from_str::<TemplateRequest>(request)
        .map_err(|e| Error::Harness(format!("bad template request: {e}")))
        .and_then(|request| make_template_here(&request));
    match made {
        Ok(made) => {
            println!("{}", serde_json::to_string(&made).expect("template record serializes"));
            0
        }
        Err(e) => {
            eprintln!("{e}");
            crate::writer::protocol::EXIT_WRITER_SETUP
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::default_scenario;
    use crate::scenario::matrix::JournalMode;
    use crate::testkit::{pragmas, workload};

    #[test]
    fn the_built_in_writer_makes_a_seeded_session_store_the_oracle_recognises() {
        let dir = tempfile::tempdir().unwrap();
        let program = BuiltIn::bundled(PathBuf::from("/opt/crashfuzz"));
        let db = dir.path().join("template.sqlite");
        let seeded = program.make_template(&db, &pragmas(JournalMode::Wal), &workload(), 7).unwrap();
        assert_eq!(seeded, u64::from(workload().seed_messages));
        let conn = rusqlite::Connection::open(&db).unwrap();
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(journal, "wal");
        assert!(program.schema().recognise(&conn).unwrap());
        let ledger: i64 = conn.query_row("SELECT count(*) FROM ledger WHERE writer = 0", [], |r| r.get(0)).unwrap();
        assert_eq!(ledger as u64, seeded);
    }

    #[test]
    fn the_built_in_writer_is_this_executable_given_its_configuration() {
        let program = BuiltIn::bundled(PathBuf::from("/opt/crashfuzz"));
        let sc = default_scenario();
        let cell = crate::scenario::matrix::expand(&sc.matrix)[0];
        let cfg = WriterConfig::for_cell(&cell, &sc, Path::new("/tmp/db.sqlite"), Vec::new(), 12, 34);
        let command = program.command(&cfg);
        assert_eq!(command.get_program(), "/opt/crashfuzz");
        let args: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args[0], WRITER_SUBCOMMAND);
        let back: WriterConfig = serde_json::from_str(&args[1]).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&cfg).unwrap());
        assert_eq!(args.len(), 2);
    }
}

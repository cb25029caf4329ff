//! SQL run by any SQLite build, in a child process: `crashfuzz __sql PARENT_PID LIB [DB SQL...]`
//! loads LIB (`bundled`: the SQLite crashfuzz is linked with; a soname or a path: a shared
//! library, loaded with libloading), opens DB read-write without creating it, runs each
//! statement in turn and prints one JSON document ([`SqlAnswers`]): the library's own
//! `sqlite3_libversion()` and `sqlite3_sourceid()`, and per statement its rows (every column as
//! text, NULL as null) or its error (primary and extended code, message). With no DB it only
//! says which SQLite it loaded.
//!
//! Why a child: an old build that crashes on a damaged image takes only the child down, and the
//! parent reports that death as the build's answer ([`SqlRun::Died`]), not as its own failure.
//! The child dies with its parent, in its own process group, under a deadline, like a writer.
//!
//! Why two SQLites do not clash in one process: the `crashfuzz` executable exports no `sqlite3_`
//! symbol to its dynamic symbol table (the bundled SQLite is linked in statically and not
//! re-exported; `nm -D target/debug/crashfuzz | grep sqlite3_` prints nothing), so the library
//! loaded here binds its own calls to its own functions, never to the bundled ones.

use crate::record::SqliteIdentity;
use crate::sqlite::builds::{BuildError, ResolvedBuild};
use anyhow::{Context, anyhow};
use rusqlite::ffi;
use serde::{Deserialize, Serialize};
use std::ffi::{CStr, CString, c_char, c_int, c_uchar};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The hidden subcommand of the child.
pub const SQL_SUBCOMMAND: &str = "__sql";

/// The child's exit codes besides 0 (answered).
const EXIT_USAGE: i32 = 2;
/// The library could not be loaded, or lacks a function: nothing ran.
const EXIT_UNLOADABLE: i32 = 3;

/// A run ends after this long at most (an integrity check of a trial's database takes well
/// under a second).
const SQL_TIME_MAX: Duration = Duration::from_secs(120);
/// How long a busy database is retried before the statement fails with `SQLITE_BUSY`.
const BUSY_TIMEOUT_MS: c_int = 5000;

/// What the child prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlAnswers {
    /// `sqlite3_libversion()` of the library that answered.
    pub libversion: String,
    /// `sqlite3_sourceid()`: the check-in it was built from.
    pub sourceid: String,
    /// One per statement, in order. When the database does not open, each is that error.
    pub answers: Vec<Answer>,
}

/// One statement and what it gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub sql: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every row, every column as text; NULL is `None`.
    Rows(Vec<Vec<Option<String>>>),
    Error(SqlError),
}

/// An SQLite error as the library reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlError {
    /// The primary result code (`extended_code & 0xff`).
    pub code: i32,
    /// `sqlite3_extended_errcode()`.
    pub extended_code: i32,
    /// `sqlite3_errmsg()`.
    pub message: String,
}

impl std::fmt::Display for SqlError {
    /// `database disk image is malformed (SQLITE_CORRUPT_VTAB, 267)`, as [`crate::base::sqlerr`]
    /// says the bundled build's errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.message, crate::base::sqlerr::code_name(self.extended_code), self.extended_code)
    }
}

/// How a run of the child ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlRun {
    Answered(SqlAnswers),
    /// The library could not be loaded (or lacks a function); nothing ran. What it said.
    Unloadable(String),
    /// Killed by a signal, e.g. `signal:SIGSEGV`: an old build that crashed is its answer.
    Died(String),
    /// No answer within the deadline; the child was killed.
    TimedOut(Duration),
}

/// Runs `statements` on `db` with `build`, in a child of the running executable.
pub fn run_sql(build: &ResolvedBuild, db: &Path, statements: &[String]) -> anyhow::Result<SqlRun> {
    let exe = crate::base::process::own_exe().context("locate the crashfuzz executable")?;
    run_sql_with(&exe, build, Some(db), statements)
}

/// [`run_sql`] with the `crashfuzz` executable named (tests, where the running one is not it);
/// with no `db`, the child only says which SQLite it loaded.
pub fn run_sql_with(
    exe: &Path,
    build: &ResolvedBuild,
    db: Option<&Path>,
    statements: &[String],
) -> anyhow::Result<SqlRun> {
    let mut command = Command::new(exe);
    command.arg(SQL_SUBCOMMAND).arg(std::process::id().to_string()).arg(build.child_arg());
    if let Some(db) = db {
        command.arg(db).args(statements);
    }
    let Some(out) = crate::base::process::run_captured(&mut command, SQL_TIME_MAX, true)
        .with_context(|| format!("run {}", exe.display()))?
    else {
        return Ok(SqlRun::TimedOut(SQL_TIME_MAX));
    };
    let said = || String::from_utf8_lossy(&out.stderr).trim().to_string();
    match crate::base::process::DeathKind::from_status(out.status) {
        crate::base::process::DeathKind::Exit(0) => {
            let answers: SqlAnswers = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("the {SQL_SUBCOMMAND} child for {build} printed no answer"))?;
            Ok(SqlRun::Answered(answers))
        }
        crate::base::process::DeathKind::Exit(EXIT_UNLOADABLE) => Ok(SqlRun::Unloadable(said())),
        crate::base::process::DeathKind::Exit(code) => {
            Err(anyhow!("the {SQL_SUBCOMMAND} child for {build} exited with code {code}: {}", said()))
        }
        death @ crate::base::process::DeathKind::Signal(_) => Ok(SqlRun::Died(death.label())),
    }
}

/// Loads `build` in a child and reads its version back: whether the build can be used at all
/// (the OS may have no `libsqlite3.so.0`; a path may be no SQLite). A build that answered is
/// remembered for the rest of the process, so that the cross-version checks of every image do
/// not start a child only to ask again.
pub fn identify(exe: &Path, build: &ResolvedBuild) -> Result<SqliteIdentity, BuildError> {
    type Known = std::collections::BTreeMap<(std::path::PathBuf, std::ffi::OsString), SqliteIdentity>;
    static KNOWN: std::sync::Mutex<Known> = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let key = (exe.to_path_buf(), build.child_arg());
    if let Some(known) = KNOWN.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(known.clone());
    }
    let unusable = |reason: String| BuildError::Unloadable { build: build.to_string(), reason };
    match run_sql_with(exe, build, None, &[]).map_err(|e| unusable(format!("{e:#}")))? {
        SqlRun::Answered(a) => {
            let identity = SqliteIdentity { version: a.libversion, source_id: a.sourceid };
            KNOWN.lock().unwrap_or_else(|p| p.into_inner()).insert(key, identity.clone());
            Ok(identity)
        }
        SqlRun::Unloadable(said) => Err(unusable(said)),
        SqlRun::Died(how) => Err(unusable(format!("the child loading it died ({how})"))),
        SqlRun::TimedOut(after) => {
            Err(unusable(format!("the child loading it did not answer in {} s", after.as_secs())))
        }
    }
}

// ------------------------------------------------------------------------------------------
// The child

type Db = ffi::sqlite3;
type Stmt = ffi::sqlite3_stmt;

/// The few SQLite functions the child calls, from whichever library it runs.
struct Api {
    open_v2: unsafe extern "C" fn(*const c_char, *mut *mut Db, c_int, *const c_char) -> c_int,
    extended_result_codes: unsafe extern "C" fn(*mut Db, c_int) -> c_int,
    busy_timeout: unsafe extern "C" fn(*mut Db, c_int) -> c_int,
    prepare_v2: unsafe extern "C" fn(*mut Db, *const c_char, c_int, *mut *mut Stmt, *mut *const c_char) -> c_int,
    step: unsafe extern "C" fn(*mut Stmt) -> c_int,
    column_count: unsafe extern "C" fn(*mut Stmt) -> c_int,
    column_type: unsafe extern "C" fn(*mut Stmt, c_int) -> c_int,
    column_text: unsafe extern "C" fn(*mut Stmt, c_int) -> *const c_uchar,
    column_bytes: unsafe extern "C" fn(*mut Stmt, c_int) -> c_int,
    finalize: unsafe extern "C" fn(*mut Stmt) -> c_int,
    errmsg: unsafe extern "C" fn(*mut Db) -> *const c_char,
    extended_errcode: unsafe extern "C" fn(*mut Db) -> c_int,
    /// `sqlite3_close_v2` of a library; the bundled bindings have only `sqlite3_close`, which
    /// is the same once every statement is finalized (the child finalizes each one).
    close: unsafe extern "C" fn(*mut Db) -> c_int,
    libversion: unsafe extern "C" fn() -> *const c_char,
    sourceid: unsafe extern "C" fn() -> *const c_char,
}

impl Api {
    /// The SQLite crashfuzz is linked with.
    fn linked() -> Api {
        Api {
            open_v2: ffi::sqlite3_open_v2,
            extended_result_codes: ffi::sqlite3_extended_result_codes,
            busy_timeout: ffi::sqlite3_busy_timeout,
            prepare_v2: ffi::sqlite3_prepare_v2,
            step: ffi::sqlite3_step,
            column_count: ffi::sqlite3_column_count,
            column_type: ffi::sqlite3_column_type,
            column_text: ffi::sqlite3_column_text,
            column_bytes: ffi::sqlite3_column_bytes,
            finalize: ffi::sqlite3_finalize,
            errmsg: ffi::sqlite3_errmsg,
            extended_errcode: ffi::sqlite3_extended_errcode,
            close: ffi::sqlite3_close,
            libversion: ffi::sqlite3_libversion,
            sourceid: ffi::sqlite3_sourceid,
        }
    }

    /// The functions of a loaded library. The types are SQLite's C API (sqlite3.h), which has
    /// not changed for any of them since 3.7.
    fn from_library(lib: &libloading::Library) -> Result<Api, libloading::Error> {
        // SAFETY: each symbol is an SQLite API function of exactly the type of its field.
        unsafe {
            Ok(Api {
                open_v2: *lib.get("sqlite3_open_v2")?,
                extended_result_codes: *lib.get("sqlite3_extended_result_codes")?,
                busy_timeout: *lib.get("sqlite3_busy_timeout")?,
                prepare_v2: *lib.get("sqlite3_prepare_v2")?,
                step: *lib.get("sqlite3_step")?,
                column_count: *lib.get("sqlite3_column_count")?,
                column_type: *lib.get("sqlite3_column_type")?,
                column_text: *lib.get("sqlite3_column_text")?,
                column_bytes: *lib.get("sqlite3_column_bytes")?,
                finalize: *lib.get("sqlite3_finalize")?,
                errmsg: *lib.get("sqlite3_errmsg")?,
                extended_errcode: *lib.get("sqlite3_extended_errcode")?,
                close: *lib.get("sqlite3_close_v2")?,
                libversion: *lib.get("sqlite3_libversion")?,
                sourceid: *lib.get("sqlite3_sourceid")?,
            })
        }
    }
}

/// A C string SQLite returned (never kept past the call that owns it).
///
/// # Safety
/// `p` is null or points at a NUL-terminated string.
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The connection's current error.
fn error_of(api: &Api, db: *mut Db) -> SqlError {
    // SAFETY: `db` is a connection handle (possibly one whose open failed, which SQLite allows).
    let (extended_code, message) = unsafe { ((api.extended_errcode)(db), text((api.errmsg)(db))) };
    SqlError { code: extended_code & 0xff, extended_code, message }
}

/// Runs every statement of `sql` (it may hold several) to its end: the rows of all of them,
/// or the first error.
fn run_statement(api: &Api, db: *mut Db, sql: &str) -> Outcome {
    let Ok(owned) = CString::new(sql) else {
        return Outcome::Error(SqlError {
            code: ffi::SQLITE_MISUSE,
            extended_code: ffi::SQLITE_MISUSE,
            message: "the SQL holds a NUL byte".into(),
        });
    };
    let mut rows = Vec::new();
    let mut rest: *const c_char = owned.as_ptr();
    // SAFETY: `rest` points into `owned`, which outlives the loop; every prepared statement is
    // finalized before the next prepare or the return.
    unsafe {
        while *rest != 0 {
            let mut stmt: *mut Stmt = std::ptr::null_mut();
            let mut tail: *const c_char = std::ptr::null();
            if (api.prepare_v2)(db, rest, -1, &mut stmt, &mut tail) != ffi::SQLITE_OK {
                return Outcome::Error(error_of(api, db));
            }
            rest = tail;
            if stmt.is_null() {
                // Only whitespace or a comment was left.
                continue;
            }
            loop {
                match (api.step)(stmt) {
                    ffi::SQLITE_ROW => rows.push(row(api, stmt)),
                    ffi::SQLITE_DONE => break,
                    _ => {
                        (api.finalize)(stmt);
                        return Outcome::Error(error_of(api, db));
                    }
                }
            }
            (api.finalize)(stmt);
        }
    }
    Outcome::Rows(rows)
}

/// The current row, every column as text (bytes, so that text holding NULs stays whole).
///
/// # Safety
/// `stmt` has just returned `SQLITE_ROW`.
unsafe fn row(api: &Api, stmt: *mut Stmt) -> Vec<Option<String>> {
    // SAFETY: the caller's promise; `column_text` comes before `column_bytes`, as SQLite asks.
    unsafe {
        (0..(api.column_count)(stmt))
            .map(|i| {
                if (api.column_type)(stmt, i) == ffi::SQLITE_NULL {
                    return None;
                }
                let p = (api.column_text)(stmt, i);
                let n = usize::try_from((api.column_bytes)(stmt, i)).unwrap_or(0);
                if p.is_null() {
                    return Some(String::new());
                }
                Some(String::from_utf8_lossy(std::slice::from_raw_parts(p, n)).into_owned())
            })
            .collect()
    }
}

/// Opens `db` read-write (never creating it) and runs the statements.
fn answer(api: &Api, db_path: Option<&str>, statements: &[String]) -> SqlAnswers {
    // SAFETY: both return static strings.
    let (libversion, sourceid) = unsafe { (text((api.libversion)()), text((api.sourceid)())) };
    let mut answers = Vec::new();
    if let Some(path) = db_path {
        let Ok(path) = CString::new(path) else {
            unreachable!("a command-line argument holds no NUL byte");
        };
        let mut db: *mut Db = std::ptr::null_mut();
        // SAFETY: `db` is written by open_v2 and closed below whatever open answered.
        unsafe {
            let rc = (api.open_v2)(path.as_ptr(), &mut db, ffi::SQLITE_OPEN_READWRITE, std::ptr::null());
            let opened = if rc == ffi::SQLITE_OK {
                (api.extended_result_codes)(db, 1);
                (api.busy_timeout)(db, BUSY_TIMEOUT_MS);
                Ok(())
            } else if db.is_null() {
                Err(SqlError { code: rc & 0xff, extended_code: rc, message: "out of memory".into() })
            } else {
                Err(error_of(api, db))
            };
            for sql in statements {
                let outcome = match &opened {
                    Ok(()) => run_statement(api, db, sql),
                    Err(e) => Outcome::Error(e.clone()),
                };
                answers.push(Answer { sql: sql.clone(), outcome });
            }
            if !db.is_null() {
                (api.close)(db);
            }
        }
    }
    SqlAnswers { libversion, sourceid, answers }
}

/// libloading's error with dlerror's words (its display alone says only "dlopen failed").
fn with_cause(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Entry point of `crashfuzz __sql PARENT_PID LIB [DB SQL...]`; returns the exit code.
pub fn child_main(args: &[String]) -> i32 {
    let (Some(parent), Some(lib)) = (args.first(), args.get(1)) else {
        eprintln!("{SQL_SUBCOMMAND}: usage: {SQL_SUBCOMMAND} PARENT_PID LIB [DB SQL...]");
        return EXIT_USAGE;
    };
    let Ok(parent) = parent.parse::<i32>() else {
        eprintln!("{SQL_SUBCOMMAND}: bad parent pid {parent:?}");
        return EXIT_USAGE;
    };
    // Die with the parent; the getppid check closes the race with a parent that died first.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        eprintln!("{SQL_SUBCOMMAND}: PR_SET_PDEATHSIG: {e}");
        return EXIT_USAGE;
    }
    let ppid = nix::unistd::getppid().as_raw();
    if ppid != parent {
        eprintln!("{SQL_SUBCOMMAND}: parent {parent} is gone (ppid is {ppid})");
        return EXIT_USAGE;
    }
    let db = args.get(2).map(String::as_str);
    let statements = args.get(3..).unwrap_or_default();
    // Kept alive until the process exits: the functions live in it.
    let loaded;
    let api = if lib == "bundled" {
        Api::linked()
    } else {
        // SAFETY: loading runs the library's initialisers; an SQLite library has none that
        // could conflict with crashfuzz (see the module comment on symbols).
        loaded = match unsafe { libloading::Library::new(lib) } {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{}", with_cause(&e));
                return EXIT_UNLOADABLE;
            }
        };
        match Api::from_library(&loaded) {
            Ok(api) => api,
            Err(e) => {
                eprintln!("{lib} is not an SQLite library: {}", with_cause(&e));
                return EXIT_UNLOADABLE;
            }
        }
    };
    let answers = answer(&api, db, statements);
    println!("{}", serde_json::to_string(&answers).expect("answers serialize"));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_db() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 'x'), (NULL, char(0) || 'y');").unwrap();
        drop(conn);
        let path = path.to_str().unwrap().to_string();
        (dir, path)
    }

    #[test]
    fn the_linked_build_answers_rows_as_text_and_null_as_none() {
        let (_dir, db) = scratch_db();
        let a = answer(&Api::linked(), Some(&db), &["SELECT a, b FROM t ORDER BY rowid; SELECT 2".to_string()]);
        assert_eq!(a.libversion, rusqlite::version());
        assert!(!a.sourceid.is_empty());
        let rows = |v: &[&[Option<&str>]]| {
            Outcome::Rows(v.iter().map(|r| r.iter().map(|c| c.map(str::to_string)).collect()).collect())
        };
        assert_eq!(a.answers[0].outcome, rows(&[&[Some("1"), Some("x")], &[None, Some("\0y")], &[Some("2")]]));
    }

    #[test]
    fn an_error_carries_its_extended_code_and_the_next_statement_still_runs() {
        let (_dir, db) = scratch_db();
        let statements = [
            "CREATE TABLE u(x PRIMARY KEY); INSERT INTO u VALUES (1); INSERT INTO u VALUES (1)".to_string(),
            "SELECT count(*) FROM u".to_string(),
        ];
        let a = answer(&Api::linked(), Some(&db), &statements);
        let Outcome::Error(e) = &a.answers[0].outcome else { panic!("{a:?}") };
        assert_eq!((e.code, e.extended_code), (ffi::SQLITE_CONSTRAINT, ffi::SQLITE_CONSTRAINT_PRIMARYKEY), "{e:?}");
        assert!(e.to_string().contains("UNIQUE constraint failed: u.x (SQLITE_CONSTRAINT_PRIMARYKEY, 1555)"), "{e}");
        assert_eq!(a.answers[1].outcome, Outcome::Rows(vec![vec![Some("1".into())]]));
    }

    #[test]
    fn a_database_that_does_not_exist_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.sqlite");
        let a = answer(&Api::linked(), missing.to_str(), &["SELECT 1".to_string()]);
        let Outcome::Error(e) = &a.answers[0].outcome else { panic!("{a:?}") };
        assert_eq!(e.code, ffi::SQLITE_CANTOPEN, "{e:?}");
        assert!(!missing.exists());
    }

    #[test]
    fn answers_survive_json() {
        let (_dir, db) = scratch_db();
        let a = answer(&Api::linked(), Some(&db), &["SELECT b FROM t".to_string(), "SELEC".to_string()]);
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"rows\":") && json.contains("\"error\":{\"code\":1,"), "{json}");
        assert_eq!(serde_json::from_str::<SqlAnswers>(&json).unwrap(), a);
    }
}

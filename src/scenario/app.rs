//! `[writer]` and `[oracle]`: the application's own writer program a scenario runs instead of
//! crashfuzz's, and the SQL through which the oracle asks that program's database what it
//! acknowledged. Validated here: what a program crashfuzz did not write can be tested under
//! (faults that act from outside the process, signals and files, and those the `LD_PRELOAD`
//! interposer brings into it), and the matrix axes that only crashfuzz's own writer honours
//! (its SIGTERM behaviours, checkpoint policies, bulk timing, fullfsync) refused rather than
//! silently ignored.

use super::{DEFAULT_FULLFSYNC, DEFAULT_SIGTERM, DEFAULT_TIMING};
use super::{Problem, RawMatrixBlock, SettingPath};
use crate::scenario::CrashPoints;
use crate::scenario::matrix::FaultKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[writer]` as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawWriter {
    command: Vec<String>,
    setup: Vec<String>,
}

/// `[oracle]` as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawOracle {
    ack_sql: Option<String>,
    present_sql: Option<String>,
    reopen_sql: Option<String>,
}

/// An application's own writer program and the oracle's queries of its database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppWriter {
    /// argv of every writer process (long-lived and transient), relative paths resolved
    /// ([`resolve`]).
    pub command: Vec<String>,
    /// argv run once per template database before any trial; empty for none.
    pub setup: Vec<String>,
    /// `?1` a key the program acknowledged; one row whose first column is >= 1 when that
    /// commit is present. `None`: lost commits are not checked.
    pub ack_sql: Option<String>,
    /// Every key present, one per row (first column). `None`: phantoms are not checked.
    pub present_sql: Option<String>,
    /// The write after recovery (check 8), a batch run in one transaction. `None`: a scratch
    /// table created, written and dropped.
    pub reopen_sql: Option<String>,
}

/// The faults a program crashfuzz did not write can run under: those that act on the process
/// from outside (signals) or on its files, and those the `LD_PRELOAD` interposer brings into
/// it ([`interposed`]).
pub fn runs_any_program(fault: FaultKind) -> bool {
    match fault {
        FaultKind::Kill
        | FaultKind::SigkillOnly
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::PowerLoss
        | FaultKind::PowerLossShared
        | FaultKind::CrashPoint
        | FaultKind::IoError
        | FaultKind::LockCancel
        | FaultKind::LockCancelWal
        | FaultKind::LockCancelShm => true,
        // Misuse crashfuzz's own writer commits with its own connection (a fork of it, another
        // build in its process, a second name of its file): an application's bugs of that kind
        // are its own, tested by running it.
        FaultKind::ForkConnection | FaultKind::CrossVersion | FaultKind::HardLink => false,
    }
}

/// The faults that reach a program crashfuzz did not write through the `LD_PRELOAD`
/// interposer: the tracing VFS's (power loss, crash points, I/O errors) and lock cancellation
/// (a thread of the program's own process must close the file).
pub fn interposed(fault: FaultKind) -> bool {
    fault.uses_vfs() || matches!(fault, FaultKind::LockCancel | FaultKind::LockCancelWal | FaultKind::LockCancelShm)
}

/// The validated sections, or `None` when the scenario has no `[writer]` (the built-in
/// writer), with every problem found. `dir` is the scenario file's directory.
pub(super) fn validate(
    writer: Option<&RawWriter>,
    oracle: Option<&RawOracle>,
    blocks: &[RawMatrixBlock],
    connections: u32,
    crash_points: CrashPoints,
    dir: Option<&Path>,
) -> (Option<AppWriter>, Vec<Problem>) {
    let mut problems = Vec::new();
    let Some(writer) = writer else {
        if oracle.is_some() {
            problems.push(Problem::new(
                SettingPath::key("oracle"),
                "[oracle] without [writer] command: its queries are for an application's own writer; \
                 crashfuzz's built-in writer keeps its own ledger"
                    .into(),
            ));
        }
        return (None, problems);
    };
    let at = |key: &str| SettingPath::key("writer").then(key);
    if writer.command.is_empty() || writer.command[0].is_empty() {
        problems.push(Problem::new(
            at("command"),
            "no program; allowed: the argv of the writer, e.g. [\"python3\", \"app_writer.py\"]".into(),
        ));
    }
    if writer.setup.first().is_some_and(String::is_empty) {
        problems.push(Problem::new(at("setup"), "an empty program name; allowed: an argv, or no setup".into()));
    }
    let oracle = oracle.cloned().unwrap_or_default();
    for (key, sql) in
        [("ack_sql", &oracle.ack_sql), ("present_sql", &oracle.present_sql), ("reopen_sql", &oracle.reopen_sql)]
    {
        if sql.as_ref().is_some_and(|s| s.trim().is_empty()) {
            problems.push(Problem::new(
                SettingPath::key("oracle").then(key),
                "empty SQL; allowed: a statement, or leave the key out".into(),
            ));
        }
    }
    if oracle.ack_sql.as_ref().is_some_and(|s| !s.contains("?1")) {
        problems.push(Problem::new(
            SettingPath::key("oracle").then("ack_sql"),
            format!(
                "{:?} has no ?1; allowed: a query that takes the acknowledged key as ?1, \
                 e.g. \"SELECT count(*) FROM items WHERE key = ?1\"",
                oracle.ack_sql.as_deref().unwrap_or_default()
            ),
        ));
    }
    for (index, block) in blocks.iter().enumerate() {
        problems.extend(block_problems(index, block));
    }
    let crash_point = blocks.iter().flat_map(|b| b.fault.iter().flatten()).any(|f| *f == FaultKind::CrashPoint);
    if crash_point && crash_points == CrashPoints::Systematic {
        problems.push(Problem::new(
            SettingPath::key("fault").then("crash_point").then("points"),
            "\"systematic\" walks a short trace of crashfuzz's own writer, cut after `txns` transactions, which an \
             application's program cannot be told to stop at; allowed with [writer] command: \"random\" (a uniform \
             operation in 1..=op_max)"
                .into(),
        ));
    }
    if connections != 1 {
        problems.push(Problem::new(
            SettingPath::key("topology").then("connections"),
            format!(
                "{connections} connections per process are crashfuzz's own writer's threads; with [writer] command \
                 each process is one writer: allowed: 1 (more processes: [workload] writers)"
            ),
        ));
    }
    let app = AppWriter {
        command: resolve(&writer.command, dir),
        setup: resolve(&writer.setup, dir),
        ack_sql: oracle.ack_sql,
        present_sql: oracle.present_sql,
        reopen_sql: oracle.reopen_sql,
    };
    (Some(app), problems)
}

/// The axes of one `[[matrix]]` block that only crashfuzz's own writer honours.
fn block_problems(index: usize, block: &RawMatrixBlock) -> Vec<Problem> {
    let at = |key: &str| SettingPath::key("matrix").nth(index).then(key);
    let mut problems = Vec::new();
    let outside: Vec<&str> = FaultKind::ALL.iter().filter(|f| runs_any_program(**f)).map(|f| f.as_str()).collect();
    for fault in block.fault.iter().flatten().filter(|f| !runs_any_program(**f)) {
        problems.push(Problem::new(
            at("fault"),
            format!(
                "{:?} is misuse crashfuzz's own writer commits with its own connection; an application's writer \
                 commits its own; allowed with [writer] command: {}",
                fault.as_str(),
                outside.join(", ")
            ),
        ));
    }
    let own = |key: &str, what: &str| {
        Problem::new(
            at(key),
            format!(
                "{what} are behaviours of crashfuzz's own writer; with [writer] command the program decides them: leave `{key}` out"
            ),
        )
    };
    if block.sigterm.iter().flatten().any(|s| !DEFAULT_SIGTERM.contains(s)) {
        problems.push(own("sigterm", "SIGTERM behaviours other than default"));
    }
    if block.checkpoint.is_some() {
        problems.push(own("checkpoint", "checkpoint policies"));
    }
    if block.timing.iter().flatten().any(|t| !DEFAULT_TIMING.contains(t)) {
        problems.push(own("timing", "fault timings tied to its transactions (bulk)"));
    }
    if block.device.iter().flatten().any(|d| *d == crate::scenario::matrix::DeviceModel::NoBarrier) {
        problems.push(Problem::new(
            at("device"),
            "\"no_barrier\" tells F_FULLFSYNC from a plain fsync by SQLite's sync flags, which libc (and so the \
             interposer) never sees; allowed with [writer] command: \"barrier\""
                .into(),
        ));
    }
    if block.fullfsync.iter().flatten().any(|f| !DEFAULT_FULLFSYNC.contains(f)) {
        problems.push(own("fullfsync", "fullfsync settings"));
    }
    if block.sqlite.iter().flatten().any(|s| s.is_bundled()) {
        problems.push(Problem::new(
            at("sqlite"),
            "\"bundled\" is the SQLite inside crashfuzz, which another program cannot load; allowed: \"system\" \
             (the program's own), a version or a libsqlite3.so path (loaded through LD_LIBRARY_PATH by a \
             program that links libsqlite3.so.0)"
                .into(),
        ));
    }
    problems
}

/// `argv` with its relative paths resolved against `dir`: the program (`argv[0]`) when it
/// names a path (holds a `/`; a bare name is looked up in `PATH`), and every other argument
/// that names an existing file or directory there.
pub fn resolve(argv: &[String], dir: Option<&Path>) -> Vec<String> {
    let Some(dir) = dir else { return argv.to_vec() };
    argv.iter()
        .enumerate()
        .map(|(n, arg)| {
            let path = Path::new(arg);
            let names_path = if n == 0 { arg.contains('/') } else { dir.join(path).exists() };
            if path.is_relative() && names_path && !arg.is_empty() {
                absolute(&dir.join(path)).display().to_string()
            } else {
                arg.clone()
            }
        })
        .collect()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_arguments_that_name_files_resolve_against_the_scenario_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        let argv: Vec<String> = ["python3", "app.py", "--flag", "./bin/w"].map(String::from).to_vec();
        let resolved = resolve(&argv, Some(dir.path()));
        assert_eq!(resolved[0], "python3", "a bare program name is looked up in PATH");
        assert_eq!(resolved[1], dir.path().join("app.py").display().to_string());
        assert_eq!(resolved[2], "--flag");
        assert_eq!(resolve(&argv[3..], Some(dir.path()))[0], dir.path().join("bin/w").display().to_string());
        assert_eq!(resolve(&argv, None), argv);
    }
}

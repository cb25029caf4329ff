//! An application's own writer (`[writer] command`), driven through the protocol: the example
//! writer in Rust (`crashfuzz-example-writer`, nothing of crashfuzz linked in), clean and with
//! each bug the oracle must catch, and the scenarios crashfuzz refuses for such a program.

use super::{EXE, assert_bad_input, campaign_into, cell, children_mentioning, write_scenario};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const APP: &str = env!("CARGO_BIN_EXE_crashfuzz-example-writer");

/// A scenario running the example writer with `flags`, its setup, both `[oracle]` queries, and
/// kills late enough (40–80 ms after `ready`) that every trial has several commits.
fn app_scenario(flags: &[&str], extra: &str, matrix: &str) -> String {
    let command: Vec<String> = std::iter::once(APP).chain(flags.iter().copied()).map(|a| format!("{a:?}")).collect();
    format!(
        "{extra}\n[writer]\ncommand = [{}]\nsetup = [{APP:?}]\n\
         [oracle]\nack_sql = \"SELECT count(*) FROM items WHERE key = ?1\"\npresent_sql = \"SELECT key FROM items\"\n\
         [fault.kill]\nkill_at_ms_min = 40\nkill_at_ms_max = 80\n{matrix}",
        command.join(", ")
    )
}

/// [`app_scenario`] run as a campaign into `out` of a fresh directory: the directory, exit
/// code, console output and `summary.json`.
fn app_campaign(flags: &[&str], extra: &str, matrix: &str) -> (tempfile::TempDir, i32, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "app", &app_scenario(flags, extra, matrix));
    let (code, output, summary) = campaign_into(dir.path(), "out", &scenario, &[]);
    (dir, code, output, summary)
}

fn trials(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("trials.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ran(trial: &Value) -> Vec<String> {
    trial["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap().to_string()).collect()
}

#[test]
fn an_applications_own_writer_passes_kills_with_every_check_that_applies() {
    let (dir, code, output, summary) = app_campaign(
        &[],
        "[budget]\ntrials = 12\n[workload]\nwriters = 2\n[topology]\ntransient_rate_per_s = 40\n",
        "[[matrix]]\njournal_mode = [\"wal\", \"delete\"]\nsynchronous = [\"full\"]\n\
         [[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"normal\"]\nfault = [\"sigkill_only\"]\n",
    );
    assert_eq!(code, 0, "{output}");
    for id in [
        "wal/full/kill/auto-checkpoint[system]",
        "delete/full/kill[system]",
        "wal/normal/sigkill_only/auto-checkpoint[system]",
    ] {
        assert_eq!(cell(&summary, id)["verdict"], "ok", "{id}: {output}");
    }
    let trials = trials(&dir.path().join("out"));
    assert_eq!(trials.len(), 12);
    let commits: u64 = trials.iter().map(|t| t["commits"].as_u64().unwrap()).sum();
    assert!(commits >= 12, "two writers, killed 40 ms after ready at the earliest, committed {commits} in all");
    for t in &trials {
        assert_eq!(t["outcome"]["kind"], "checked", "{t}");
        let checks = ran(t);
        for check in ["open", "integrity", "fts", "fts_miss", "lost_ack", "phantom", "reopen_write"] {
            assert!(checks.iter().any(|c| c == check), "{check} did not run: {t}");
        }
        assert!(!checks.iter().any(|c| c == "atomicity" || c == "prefix"), "{t}");
    }
    assert!(trials.iter().any(|t| t["transients"].as_u64().unwrap() > 0), "no transient writer ran");
    let md = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(
        md.contains("## The application's writer")
            && md.contains("| `atomicity` | 0 trials | a transaction is known only by its key"),
        "{md}"
    );
    assert!(summary["commits"].as_u64().unwrap() > 0);
    // The interposer saw no libsqlite3 in the example writer (rusqlite compiles SQLite in).
    assert!(md.contains("system compiled into the program"), "{md}");
    assert!(md.contains("loaded no SQLite library: it runs the SQLite compiled into it"), "{md}");
}

/// One cell, three trials of the example writer with `flags`: exit code, the cell, and the
/// trials.
fn buggy(flags: &[&str], journal_mode: &str) -> (i32, String, Value, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let matrix = format!("[[matrix]]\njournal_mode = [\"{journal_mode}\"]\nsynchronous = [\"full\"]\n");
    // Killed late enough for dozens of commits even on a loaded machine: each planted bug needs
    // a few (the third, the fifth transaction) to show.
    let body = app_scenario(flags, "[budget]\ntrials = 3\n", &matrix)
        .replace("kill_at_ms_min = 40\nkill_at_ms_max = 80", "kill_at_ms_min = 200\nkill_at_ms_max = 300");
    let scenario = write_scenario(dir.path(), "bug", &body);
    let (code, output, summary) = campaign_into(dir.path(), "out", &scenario, &[]);
    let cell = summary["cells"][0].clone();
    (code, output, cell, trials(&dir.path().join("out")))
}

fn violations(cell: &Value) -> Vec<String> {
    let counts = cell["trial_violations"].as_object().unwrap_or_else(|| panic!("{cell}"));
    counts.iter().filter(|(_, n)| n.as_u64() > Some(0)).map(|(k, _)| k.clone()).collect()
}

#[test]
fn the_oracle_catches_a_program_that_acknowledges_what_it_rolled_back() {
    let (code, output, cell, trials) = buggy(&["--ack-rolled-back"], "wal");
    assert_eq!(code, 1, "{output}");
    assert_eq!(violations(&cell), vec!["lost_ack"], "{cell}");
    assert_eq!(cell["verdict"], "regression");
    // Every trial's first rolled-back acknowledgement is its writer's third key (trials finish
    // in any order with two jobs: which writer id comes first is not fixed).
    let losing: Vec<&Value> =
        trials.iter().filter(|t| t["violations"].as_array().unwrap().contains(&"lost_ack".into())).collect();
    assert!(!losing.is_empty(), "{output}");
    for t in losing {
        let lost = t["checks"].as_array().unwrap().iter().find(|c| c["check"] == "lost_ack").unwrap();
        let detail = lost["detail"].as_str().unwrap();
        let writer = t["deaths"][0]["writer"].as_u64().unwrap();
        assert!(detail.contains(&format!("writer {writer}: acknowledged key w{writer}-3 is absent")), "{detail}");
    }
}

#[test]
fn the_oracle_catches_a_program_that_commits_a_key_it_never_named() {
    let (code, output, cell, _) = buggy(&["--unannounced"], "delete");
    assert_eq!(code, 1, "{output}");
    assert_eq!(violations(&cell), vec!["phantom"], "{cell}");
}

#[test]
fn a_duplicate_acknowledgement_and_an_ignored_journal_mode_are_protocol_findings() {
    let (code, output, cell, trials) = buggy(&["--dup-ack"], "wal");
    assert_eq!(code, 1, "{output}");
    assert_eq!(violations(&cell), vec!["protocol"], "{cell}");
    assert!(trials[0]["protocol"][0].as_str().unwrap().contains("a second `ack w"), "{}", trials[0]);
    let (code, output, cell, trials) = buggy(&["--always-wal"], "delete");
    assert_eq!(code, 1, "{output}");
    assert_eq!(violations(&cell), vec!["protocol"], "{cell}");
    let said = trials[0]["protocol"][0].as_str().unwrap();
    assert!(said.contains("CRASHFUZZ_JOURNAL_MODE=DELETE but the database file is in WAL mode"), "{said}");
    // The same program in a cell whose journal mode it happens to use is clean.
    let (code, output, ..) = buggy(&["--always-wal"], "wal");
    assert_eq!(code, 0, "{output}");
}

#[test]
fn a_silent_program_is_checked_on_its_files_and_the_summary_says_what_was_not_tested() {
    let dir = tempfile::tempdir().unwrap();
    let body = app_scenario(
        &["--silent"],
        "[budget]\ntrials = 2\n",
        "[fault.kill]\nready_timeout_ms = 200\n[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n",
    )
    .replace("[fault.kill]\nkill_at_ms_min = 40\nkill_at_ms_max = 80\n", "");
    let scenario = write_scenario(dir.path(), "silent", &body);
    let (code, output, summary) = campaign_into(dir.path(), "out", &scenario, &[]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(summary["commits"], 0);
    let md = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(md.contains("the program acknowledged no commit: nothing to lose"), "{md}");
    assert!(md.contains("| `phantom` | 0 trials | the program sent no `begin` lines"), "{md}");
    for t in trials(&dir.path().join("out")) {
        assert!(ran(&t).contains(&"integrity".to_string()) && !ran(&t).contains(&"phantom".to_string()), "{t}");
    }
}

#[test]
fn scenarios_an_applications_writer_cannot_run_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, String, &[&str]); 8] = [
        (
            "fork",
            app_scenario(
                &[],
                "",
                "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"fork_connection\"]\n",
            ),
            &["matrix[1].fault", "fork_connection", "its own connection"],
        ),
        (
            "systematic",
            app_scenario(&[], "", "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"crash_point\"]\n"),
            &["fault.crash_point.points", "systematic", "allowed with [writer] command: \"random\""],
        ),
        (
            "no-barrier",
            app_scenario(
                &[],
                "",
                "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"power_loss\"]\ndevice = [\"no_barrier\"]\n",
            ),
            &["matrix[1].device", "no_barrier", "libc"],
        ),
        (
            "bundled",
            app_scenario(&[], "", "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nsqlite = [\"bundled\"]\n"),
            &["matrix[1].sqlite", "bundled"],
        ),
        (
            "checkpoint",
            app_scenario(&[], "", "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\ncheckpoint = [\"none\"]\n"),
            &["matrix[1].checkpoint", "leave `checkpoint` out"],
        ),
        (
            "oracle-alone",
            "[oracle]\nack_sql = \"SELECT 1 WHERE ?1\"\n[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n".into(),
            &["oracle", "without [writer] command"],
        ),
        (
            "no-key",
            app_scenario(&[], "", "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n")
                .replace("key = ?1", "key = 'x'"),
            &["oracle.ack_sql", "no ?1"],
        ),
        (
            "connections",
            app_scenario(&[], "[topology]\nconnections = 2\n", "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n"),
            &["topology.connections", "allowed: 1"],
        ),
    ];
    for (name, body, mentions) in cases {
        let scenario = write_scenario(dir.path(), name, &body);
        let mut must: Vec<&str> = vec![scenario.to_str().unwrap()];
        must.extend_from_slice(mentions);
        assert_bad_input(&["run", scenario.to_str().unwrap(), "--out", dir.path().join(name).to_str().unwrap()], &must);
    }
}

#[test]
fn a_sigkilled_driver_takes_the_applications_writers_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let body = app_scenario(
        &[],
        "[budget]\nduration_s = 120\n",
        "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n",
    )
    .replace("kill_at_ms_max = 80", "kill_at_ms_max = 3000");
    let scenario = write_scenario(dir.path(), "long", &body);
    let out = dir.path().join("out");
    let mut driver = Command::new(EXE)
        .args(["run", scenario.to_str().unwrap(), "--jobs", "2", "--no-progress", "--seed", "3"])
        .args(["--out", out.to_str().unwrap(), "--workdir", dir.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The example writer's processes carry no path of the trial in their command line: they
    // are found by their executable, as children of this driver.
    // Generous: on a fresh machine the campaign first compiles what it needs beside other tests.
    let deadline = Instant::now() + Duration::from_secs(180);
    let writers = loop {
        let found = children_mentioning(driver.id(), "crashfuzz-example-writer");
        if !found.is_empty() {
            break found;
        }
        assert!(Instant::now() < deadline, "no writer of the application started");
        std::thread::sleep(Duration::from_millis(10));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(driver.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    driver.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let alive: Vec<i32> = writers.iter().copied().filter(|p| Path::new(&format!("/proc/{p}")).exists()).collect();
        let zombies_only = alive.iter().all(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .map_or(true, |s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
        });
        if alive.is_empty() || zombies_only {
            break;
        }
        assert!(Instant::now() < deadline, "writers still alive 2 s after the driver's SIGKILL: {alive:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs crashfuzz's own writer to completion (`txns` transactions, one connection) on a copy of
/// `template` in `dir`: through the tracing VFS when `interposer` is `None`, else with no VFS
/// and the interposer preloaded. Returns the trace's records.
fn traced_run(
    dir: &Path,
    template: &Path,
    cell: &crashfuzz::scenario::matrix::Cell,
    interposer: Option<&Path>,
) -> Vec<crashfuzz::fault::trace::Record> {
    use crashfuzz::fault::vfs::{Injection, VfsConfig};
    use crashfuzz::writer::protocol::{WRITER_SUBCOMMAND, WriterConfig};
    std::fs::create_dir_all(dir).unwrap();
    let db = dir.join("db.sqlite");
    std::fs::copy(template, &db).unwrap();
    let trace = dir.join("trace.bin");
    let sc = crashfuzz::scenario::default_scenario();
    let mut cfg = WriterConfig::for_cell(cell, &sc, &db, vec![dir.join("acks")], 7000, 42);
    cfg.workload.txns_max = 40;
    cfg.checkpoint = None;
    if interposer.is_none() {
        cfg.vfs = Some(VfsConfig { writer: 7000, trace_path: trace.clone(), injection: Injection::None });
    }
    let mut command = Command::new(EXE);
    command.arg(WRITER_SUBCOMMAND).arg(serde_json::to_string(&cfg).unwrap()).stdout(Stdio::null());
    if let Some(library) = interposer {
        command
            .env("LD_PRELOAD", library)
            .env("CRASHFUZZ_TRACE", &trace)
            .env("CRASHFUZZ_DB", &db)
            .env("CRASHFUZZ_WRITER_ID", "7000");
    }
    let status = command.status().unwrap();
    assert!(status.success(), "the writer failed: {status}");
    crashfuzz::fault::trace::read(&trace).unwrap().records
}

/// A trace's operations on the database's files, as the builder sees them: what kind of
/// operation on which kind of file, at which offset and of what size (the bytes differ between
/// two runs where SQLite writes random salts: the WAL header, a journal's nonce).
fn shape(records: &[crashfuzz::fault::trace::Record]) -> Vec<String> {
    use crashfuzz::fault::trace::Record;
    let mut kinds = std::collections::HashMap::new();
    records
        .iter()
        .filter_map(|r| match r {
            Record::Open { file, kind, created, .. } => {
                kinds.insert(*file, *kind);
                Some(format!("open {kind:?} created={created}"))
            }
            Record::Write { file, offset, data } => Some(format!("write {:?} {offset}+{}", kinds[file], data.len())),
            Record::Truncate { file, size } => Some(format!("truncate {:?} {size}", kinds[file])),
            Record::Sync { file, .. } => Some(format!("sync {:?}", kinds[file])),
            Record::DirSync { .. } => Some("dirsync".into()),
            Record::Delete { path, .. } => Some(format!("delete {}", path.rsplit('/').next().unwrap())),
            Record::Close { file } => Some(format!("close {:?}", kinds[file])),
            Record::Untraced { call, .. } => Some(format!("untraced {call}")),
            Record::Begin { .. } | Record::Ack { .. } | Record::Injected { .. } => None,
        })
        .collect()
}

#[test]
fn the_interposer_and_the_vfs_trace_the_same_operations_and_build_the_same_images() {
    use crashfuzz::fault::power_loss::builder::{self, Choice, Device};
    use crashfuzz::writer::program::Program;
    let library = crashfuzz::writer::interposer::library().unwrap();
    let scenario = crashfuzz::scenario::parse(
        "[[matrix]]\njournal_mode = [\"wal\", \"delete\"]\nsynchronous = [\"full\"]\nfault = [\"power_loss\"]\n",
        "equal.toml",
    )
    .unwrap();
    for cell in scenario.cells() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("template.sqlite");
        let pragmas = crashfuzz::writer::pragmas::Pragmas::for_cell(&cell, &scenario.workload);
        crashfuzz::writer::program::BuiltIn::bundled(EXE.into())
            .make_template(&template, &pragmas, &scenario.workload, 5)
            .unwrap();
        let vfs = traced_run(&dir.path().join("vfs"), &template, &cell, None);
        let libc = traced_run(&dir.path().join("libc"), &template, &cell, Some(&library));
        let (a, b) = (shape(&vfs), shape(&libc));
        assert!(a.len() > 100, "{}: the VFS traced only {} operations", cell.id(), a.len());
        let first_difference = a.iter().zip(&b).position(|(x, y)| x != y);
        assert_eq!(
            (a.len(), first_difference),
            (b.len(), None),
            "{}: {:?}",
            cell.id(),
            first_difference.map(|i| (&a[i], &b[i]))
        );
        // The same crash images: at every sync, with every undetermined operation lost (the
        // durable state alone) and with every one kept, the same files of the same sizes, and
        // the same database file byte for byte (only the WAL's and the journal's salts differ).
        let base: crashfuzz::base::dbfiles::Files =
            [("db.sqlite".to_string(), std::fs::read(&template).unwrap())].into_iter().collect();
        let device = Device::default();
        let syncs = |records: &[crashfuzz::fault::trace::Record]| -> Vec<usize> {
            records
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(r, crashfuzz::fault::trace::Record::Sync { .. }))
                .map(|(i, _)| i + 1)
                .collect()
        };
        let (cuts_a, cuts_b) = (syncs(&vfs), syncs(&libc));
        assert_eq!(cuts_a.len(), cuts_b.len());
        for (&ca, &cb) in cuts_a.iter().zip(&cuts_b) {
            let names = ["db.sqlite".to_string()];
            let (ua, ub) = (builder::analyze(&names, &vfs, ca, &device), builder::analyze(&names, &libc, cb, &device));
            assert_eq!(ua.undetermined.len(), ub.undetermined.len(), "{} cut {ca}", cell.id());
            for fate in [Choice::Drop, Choice::Keep] {
                let fa = builder::build(&base, &vfs, ca, &device, &vec![fate.clone(); ua.undetermined.len()]);
                let fb = builder::build(&base, &libc, cb, &device, &vec![fate.clone(); ub.undetermined.len()]);
                let sizes = |f: &crashfuzz::base::dbfiles::Files| {
                    f.iter().map(|(n, d)| (n.clone(), d.len())).collect::<Vec<_>>()
                };
                assert_eq!(sizes(&fa), sizes(&fb), "{} cut {ca} {fate:?}", cell.id());
                assert!(
                    fa["db.sqlite"] == fb["db.sqlite"],
                    "{} cut {ca} {fate:?}: the database files differ",
                    cell.id()
                );
            }
        }
    }
}

#[test]
fn power_loss_beneath_an_applications_writer_keeps_wal_full_and_fires_the_canaries() {
    let (_dir, code, output, summary) = app_campaign(
        &[],
        "[budget]\ntrials = 8\n[fault.power_loss]\nimages_per_trace = 8\n",
        "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\", \"normal\"]\nfault = [\"power_loss\"]\n\
         [[matrix]]\njournal_mode = [\"delete\"]\nsynchronous = [\"off\", \"extra\"]\nfault = [\"power_loss\"]\n",
    );
    assert_eq!(code, 0, "{output}");
    let verdict = |id: &str| cell(&summary, id)["verdict"].as_str().unwrap().to_string();
    assert_eq!(verdict("wal/full/power_loss/auto-checkpoint[system]"), "ok", "{output}");
    assert_eq!(verdict("delete/extra/power_loss[system]"), "ok", "{output}");
    // The canaries: unsynced WAL frames lost, a rollback journal's pages before their journal.
    for id in ["wal/normal/power_loss/auto-checkpoint[system]", "delete/off/power_loss[system]"] {
        assert_eq!(verdict(id), "ok", "{id}: {output}");
        assert!(violations(cell(&summary, id)).iter().any(|v| v == "lost_ack" || v == "integrity"), "{id}: {output}");
    }
    let images: u64 = summary["cells"].as_array().unwrap().iter().map(|c| c["crash_states"].as_u64().unwrap()).sum();
    assert!(images >= 40, "{images} images from 8 traces");
}

#[test]
fn power_loss_beneath_several_processes_of_an_application_keeps_wal_full_and_fires_the_canary() {
    let (dir, code, output, summary) = app_campaign(
        &[],
        "[budget]\ntrials = 4\n[fault.power_loss]\nimages_per_trace = 8\n",
        "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\", \"normal\"]\nfault = [\"power_loss_shared\"]\n",
    );
    assert_eq!(code, 0, "{output}");
    assert_eq!(cell(&summary, "wal/full/power_loss_shared/auto-checkpoint[system]")["verdict"], "ok", "{output}");
    let canary = cell(&summary, "wal/normal/power_loss_shared/auto-checkpoint[system]");
    assert_eq!(canary["verdict"], "ok", "{output}");
    assert!(violations(canary).iter().any(|v| v == "lost_ack"), "{output}");
    // Two long-lived programs and transients traced into one trace, every trial.
    for t in trials(&dir.path().join("out")) {
        assert_eq!(t["outcome"]["kind"], "checked", "{t}");
        assert!(t["deaths"].as_array().unwrap().len() >= 3, "two long-lived writers and a transient at least: {t}");
    }
}

#[test]
fn crash_points_kill_an_applications_writer_at_its_own_writes_and_syncs() {
    let (dir, code, output, summary) = app_campaign(
        &[],
        "[budget]\ntrials = 8\n[fault.crash_point]\npoints = \"random\"\nop_max = 120\n",
        "[[matrix]]\njournal_mode = [\"wal\", \"delete\"]\nsynchronous = [\"full\"]\nfault = [\"crash_point\"]\n",
    );
    assert_eq!(code, 0, "{output}");
    for id in ["wal/full/crash_point/auto-checkpoint[system]", "delete/full/crash_point[system]"] {
        assert_eq!(cell(&summary, id)["verdict"], "ok", "{id}: {output}");
    }
    let trials = trials(&dir.path().join("out"));
    let checked: Vec<&Value> = trials.iter().filter(|t| t["outcome"]["kind"] == "checked").collect();
    assert!(checked.len() >= 6, "most programs reach an operation among their first 120: {output}");
    for t in checked {
        assert_eq!(t["deaths"][0]["how"], "signal:SIGKILL", "{t}");
        assert!(t["injection"]["op"].as_u64().unwrap() <= 120, "{t}");
    }
}

#[test]
fn injected_io_errors_reach_an_applications_writer_which_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let matrix = "[[matrix]]\njournal_mode = [\"wal\", \"delete\"]\nsynchronous = [\"full\"]\nfault = [\"io_error\"]\n";
    let body = app_scenario(&[], "[budget]\ntrials = 8\n[fault.io_error]\nop_max = 60\n", matrix);
    let scenario = write_scenario(dir.path(), "io", &body);
    let (code, output, summary) = campaign_into(dir.path(), "out", &scenario, &[]);
    assert_eq!(code, 0, "{output}");
    for id in ["wal/full/io_error/auto-checkpoint[system]", "delete/full/io_error[system]"] {
        assert_eq!(cell(&summary, id)["verdict"], "ok", "{id}: {output}");
    }
    let trials = trials(&dir.path().join("out"));
    let checked: Vec<&Value> = trials.iter().filter(|t| t["outcome"]["kind"] == "checked").collect();
    assert!(checked.len() >= 6, "most programs reach one of their first 60 operations: {output}");
    for t in &checked {
        // The example writer gives up on a failed transaction (exit 4), or is killed first.
        let victim = &t["deaths"][0];
        assert_eq!(victim["role"], "victim", "{t}");
        let how = victim["how"].as_str().unwrap();
        assert!(how == "signal:SIGKILL" || how == "exit:4", "{t}");
        assert_eq!(t["injection"]["gave_up"], how == "exit:4", "{t}");
    }
    assert!(checked.iter().any(|t| t["deaths"][0]["how"] == "exit:4"), "no program saw its error in time: {output}");

    // A program that swallows the error and acknowledges the rolled-back message: with every
    // operation failing from the injected one on, every later acknowledgement is a lie.
    let body = app_scenario(
        &["--ack-on-error"],
        "[budget]\ntrials = 4\n[fault.io_error]\nop_max = 40\npersistent = true\nkill_after_ms_max = 100\n",
        matrix,
    );
    let scenario = write_scenario(dir.path(), "swallows", &body);
    let (code, output, summary) = campaign_into(dir.path(), "bug", &scenario, &[]);
    assert_eq!(code, 1, "{output}");
    for id in ["wal/full/io_error/auto-checkpoint[system]", "delete/full/io_error[system]"] {
        assert!(violations(cell(&summary, id)).iter().any(|v| v == "lost_ack"), "{id}: {output}");
    }
}

#[test]
fn the_interposer_cancels_the_locks_of_an_applications_writer_from_a_thread() {
    use nix::fcntl::{FcntlArg, fcntl};
    let dir = tempfile::tempdir().unwrap();
    let library = crashfuzz::writer::interposer::library().unwrap();
    // SQLite's SHARED lock on a database file: a read lock on 510 bytes past the pending byte,
    // which a WAL connection holds from its first read until it closes.
    let shared_lock_holder = |db: &Path| -> Option<i32> {
        let file = std::fs::File::open(db).unwrap();
        // SAFETY: a zeroed flock is a valid value to fill in.
        let mut probe: nix::libc::flock = unsafe { std::mem::zeroed() };
        probe.l_type = nix::libc::F_WRLCK as i16;
        probe.l_whence = nix::libc::SEEK_SET as i16;
        probe.l_start = 0x4000_0002;
        probe.l_len = 510;
        fcntl(&file, FcntlArg::F_GETLK(&mut probe)).unwrap();
        (probe.l_type != nix::libc::F_UNLCK as i16).then_some(probe.l_pid)
    };
    let start = |name: &str, cancel: Option<&str>| {
        let db = dir.path().join(format!("{name}.sqlite"));
        let acks = dir.path().join(format!("{name}.acks"));
        let mut command = Command::new(APP);
        command
            .env("CRASHFUZZ_DB", &db)
            .env("CRASHFUZZ_SEED", "7")
            .env("CRASHFUZZ_JOURNAL_MODE", "WAL")
            .env("CRASHFUZZ_SYNCHRONOUS", "FULL")
            .env("CRASHFUZZ_WRITER_ID", "1");
        assert!(command.env("CRASHFUZZ_ROLE", "setup").status().unwrap().success());
        command.env("CRASHFUZZ_ROLE", "writer").env("CRASHFUZZ_ACK_FD", "1").env("LD_PRELOAD", &library);
        if let Some(spec) = cancel {
            command.env("CRASHFUZZ_LOCK_CANCEL", spec);
        }
        let child = command.stdout(std::fs::File::create(&acks).unwrap()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&acks).unwrap().contains("ack ") {
            assert!(Instant::now() < deadline, "{name}: the writer never committed");
            std::thread::sleep(Duration::from_millis(5));
        }
        (child, db)
    };
    let (mut control, control_db) = start("control", None);
    let (mut cancelled, cancelled_db) = start("cancelled", Some("db:1000"));
    // Without the thread the lock stays; with it, it goes within a few intervals and SQLite,
    // which believes it still holds it, never takes it again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut gone_since = None;
    while Instant::now() < deadline {
        assert_eq!(shared_lock_holder(&control_db), Some(control.id() as i32), "the control lost its lock");
        match shared_lock_holder(&cancelled_db) {
            Some(pid) => {
                assert_eq!(pid, cancelled.id() as i32);
                gone_since = None;
            }
            None => {
                let since = *gone_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(300) {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let stayed_gone = gone_since.is_some_and(|s| s.elapsed() >= Duration::from_millis(300));
    for child in [&mut control, &mut cancelled] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(stayed_gone, "the cancelling writer's SHARED lock never went for good");
}

#[test]
fn lock_cancellation_injected_into_an_applications_writer_breaks_a_rollback_journal() {
    let (_dir, code, output, summary) = app_campaign(
        &[],
        "[budget]\ntrials = 6\n[workload]\nwriters = 2\n[hazard]\nlock_cancel_interval_us_max = 500\n",
        "[[matrix]]\njournal_mode = [\"delete\"]\nsynchronous = [\"full\"]\nfault = [\"lock_cancel\"]\n",
    );
    assert_eq!(code, 0, "{output}");
    let id = "delete/full/lock_cancel[system]";
    assert_eq!(cell(&summary, id)["verdict"], "ok", "the canary fired: {output}");
    assert!(!violations(cell(&summary, id)).is_empty(), "{output}");
}

#[test]
fn a_power_loss_trial_whose_program_renames_a_database_file_is_inconclusive_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let body = app_scenario(
        &["--restore-on-start"],
        "[budget]\ntrials = 2\n",
        "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"power_loss\"]\n",
    );
    let scenario = write_scenario(dir.path(), "rename", &body);
    let (_, output, _) = campaign_into(dir.path(), "out", &scenario, &[]);
    let trials = trials(&dir.path().join("out"));
    assert_eq!(trials.len(), 2, "{output}");
    for t in &trials {
        let reason = t["outcome"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("rename") && reason.contains(".restore ->"), "{t}");
    }
}

#[test]
fn a_program_that_never_becomes_ready_makes_its_trial_inconclusive_not_a_harness_failure() {
    let dir = tempfile::tempdir().unwrap();
    // It says something, but never `ready`, and hangs: stuck, as on a lock a hazard left.
    // (Through /proc: a POSIX shell's `>&N` takes one digit, the descriptor may have two.)
    let body = format!(
        "[budget]\ntrials = 2\n[writer]\ncommand = [\"sh\", \"-c\", \"echo starting >> /proc/self/fd/$CRASHFUZZ_ACK_FD; sleep 60\"]\n\
         setup = [{APP:?}]\n[fault.kill]\nready_timeout_ms = 300\n\
         [[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n"
    );
    let scenario = write_scenario(dir.path(), "stuck", &body);
    let (code, output, _) = campaign_into(dir.path(), "out", &scenario, &[]);
    assert_eq!(code, 1, "no crash state checked: no-data, not exit 3: {output}");
    let trials = trials(&dir.path().join("out"));
    assert_eq!(trials.len(), 2, "{output}");
    for t in &trials {
        let reason = t["outcome"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("was not ready after 300 ms"), "{t}");
    }
}

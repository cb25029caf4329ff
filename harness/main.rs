//! The integration-test binary: every test that runs the built `crashfuzz` binary as a user
//! would — campaigns with real writer processes and real signals, the `check` and `replay`
//! commands, bad input, Ctrl-C and a SIGKILLed driver.
//!
//! Campaigns here are small (tens of trials) and use deterministic means where an outcome must
//! not flake: canary cells kill inside an announced bulk transaction that has already spilled
//! pages into the database file.

mod architecture;
mod external;

use crashfuzz::writer::fork_server::FORK_SERVER_SUBCOMMAND;
use rusqlite::Connection;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_crashfuzz");

/// Where the tests' SQLite builds are cached: under the target directory, so that a version is
/// compiled once (about a minute) for every later test run, and never in the user's cache.
fn sqlite_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sqlite-builds")
}

fn crashfuzz(args: &[&str]) -> Output {
    crashfuzz_with(args, &[])
}

fn crashfuzz_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(EXE)
        .args(args)
        .envs(env.iter().copied())
        .env("CRASHFUZZ_SQLITE_CACHE", sqlite_cache())
        .stdin(Stdio::null())
        .output()
        .expect("run crashfuzz")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn write_scenario(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, body).unwrap();
    path
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Runs a campaign into `dir/out`, returns (exit code, output, summary.json).
fn campaign(dir: &Path, scenario: &Path, extra: &[&str]) -> (i32, String, Value) {
    campaign_into(dir, "out", scenario, extra)
}

/// Runs a campaign into `dir/<out_name>`, returns (exit code, output, summary.json).
fn campaign_into(dir: &Path, out_name: &str, scenario: &Path, extra: &[&str]) -> (i32, String, Value) {
    let out = dir.join(out_name);
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
        "--workdir",
        dir.to_str().unwrap(),
    ];
    if !extra.contains(&"--seed") {
        args.extend_from_slice(&["--seed", "7"]);
    }
    if !extra.contains(&"--jobs") {
        args.extend_from_slice(&["--jobs", "2"]);
    }
    args.extend_from_slice(extra);
    let o = crashfuzz(&args);
    let summary = out.join("summary.json");
    let value = if summary.exists() { read_json(&summary) } else { Value::Null };
    (o.status.code().unwrap_or(-1), text(&o), value)
}

fn cell<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary["cells"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no cell {id}"))
}

const SMALL_WORKLOAD: &str = r#"
[workload]
seed_messages = 40
seed_sessions = 4
"#;

// ---------------------------------------------------------------- campaigns

#[test]
fn journalled_cells_pass_and_every_output_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "journalled",
        &format!(
            r#"
name = "journalled"
description = "journalled cells under kill"
[budget]
trials = 24
{SMALL_WORKLOAD}
[fault.kill]
kill_at_ms_max = 20
grace_ms = 300
[[matrix]]
journal_mode = ["wal", "delete"]
synchronous = ["normal", "full"]
sigterm = ["default", "graceful"]
"#
        ),
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("crashfuzz: seed 7"), "the seed must be printed first: {out}");
    let run = dir.path().join("out");
    for file in ["run.json", "trials.jsonl", "summary.json", "summary.md", "junit.xml"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let lines = std::fs::read_to_string(run.join("trials.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 24);
    assert_eq!(summary["trials"], 24);
    for c in summary["cells"].as_array().unwrap() {
        assert_eq!(c["verdict"], "ok", "{c}");
        assert!(c["trials"].as_u64().unwrap() >= 3, "{c}");
        // An "ok" over inconclusive trials would be vacuous: most trials must have been checked.
        assert!(c["crash_states"].as_u64().unwrap() >= 2, "too few crash states checked: {c}");
        assert_eq!(c["crash_states"], c["checked"], "a kill leaves one state per checked trial: {c}");
        let v = &c["violations"];
        for kind in ["open", "integrity", "fts", "lost_ack", "phantom", "atomicity", "prefix", "reopen_write"] {
            assert_eq!(v[kind], 0, "{} {kind}: {c}", c["id"]);
        }
    }
    // Every trial asserted its deaths: graceful writers exit 0 or are SIGKILLed, the others die
    // of SIGTERM.
    for line in lines.lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        for d in t["deaths"].as_array().unwrap() {
            let expected: Vec<&str> = d["expected"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            if t["outcome"]["kind"] == "checked" {
                assert!(expected.contains(&d["how"].as_str().unwrap()), "{t}");
            }
        }
    }
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), summary["cells"].as_array().unwrap().len());
    assert!(!junit.contains("<failure"));
    // The work directory is gone: nothing failed, so nothing was worth keeping.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("crashfuzz-"))
        .collect();
    assert!(leftovers.is_empty(), "work directory left behind: {leftovers:?}");
}

const CANARY: &str = r#"
name = "canary"
description = "journal off and memory, killed inside a bulk transaction"
[budget]
trials = 8
[workload]
seed_messages = 40
seed_sessions = 4
[[matrix]]
journal_mode = ["off", "memory"]
synchronous = ["full"]
fault = ["sigkill_only"]
timing = ["bulk"]
"#;

#[test]
fn canaries_fire_are_kept_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "canary", CANARY);
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    for id in ["off/full/sigkill_only@bulk", "memory/full/sigkill_only@bulk"] {
        let c = cell(&summary, id);
        assert_eq!(c["verdict"], "ok", "{c}");
        assert_eq!(c["expectation"]["canary"], true, "{c}");
        // Deterministic: every trial kills after the spill, so every trial must be damaged.
        assert_eq!(c["violating_trials"], c["crash_states"], "{c}");
        assert!(c["crash_states"].as_u64().unwrap() >= 4, "{c}");
    }
    let failures = dir.path().join("out/failures");
    let kept: Vec<PathBuf> = std::fs::read_dir(&failures).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!kept.is_empty());
    let one = &kept[0];
    assert!(one.join("replay.txt").is_file());
    assert!(one.join("image/db.sqlite").is_file());
    let replay = crashfuzz(&["replay", one.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(1), "{}", text(&replay));
    assert!(text(&replay).contains("reproduced"), "{}", text(&replay));
    // A second replay of the same directory gives the same answer (it works on a copy).
    let again = crashfuzz(&["replay", one.to_str().unwrap()]);
    // Timings differ from run to run; everything else must not.
    let untimed = |o: &Output| -> String {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| match (l.find(" ("), l.find(" ms)")) {
                (Some(a), Some(b)) if a < b => format!("{}{}", &l[..a], &l[b + 4..]),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(untimed(&again), untimed(&replay));
}

#[test]
fn writers_exec_d_instead_of_forked_give_the_same_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "canary", CANARY);
    // Per run: per cell, its verdict, crash states and violating trials (deterministic crash
    // points: the same for both ways of starting a writer).
    let mut runs = Vec::new();
    for (name, server) in [("forked", "1"), ("exec", "0")] {
        let out = dir.path().join(name);
        let o = crashfuzz_with(
            &["run", scenario.to_str().unwrap(), "--no-progress", "--seed", "7", "--jobs", "2"]
                .into_iter()
                .chain(["--out", out.to_str().unwrap(), "--workdir", dir.path().to_str().unwrap()])
                .collect::<Vec<_>>(),
            &[(crashfuzz::writer::fork_server::FORK_SERVER_ENV, server)],
        );
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        let summary = read_json(&out.join("summary.json"));
        let cells: Vec<(String, Value, Value, Value)> = summary["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (c["id"].to_string(), c["verdict"].clone(), c["crash_states"].clone(), c["violating_trials"].clone())
            })
            .collect();
        assert_eq!(cells.len(), 2, "{name}: {summary}");
        for c in &cells {
            assert_eq!((&c.1, &c.2), (&Value::from("ok"), &c.3), "{name}: every trial of a canary is damaged: {c:?}");
        }
        runs.push(cells);
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn a_required_violation_on_a_journalled_cell_is_a_silent_canary() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "silent",
        &format!(
            r#"
[budget]
trials = 4
{SMALL_WORKLOAD}
[fault.kill]
kill_at_ms_max = 10
[[matrix]]
journal_mode = ["wal"]
synchronous = ["full"]
[[expect]]
journal_mode = "wal"
integrity = "required"
"#
        ),
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(cell(&summary, "wal/full/kill/auto-checkpoint")["verdict"], "silent-canary");
    assert!(out.contains("silent-canary"), "{out}");
    let junit = std::fs::read_to_string(dir.path().join("out/junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
}

/// A cell with no evidence fails the gate: every trial of this one is inconclusive (the writer
/// commits its one transaction and exits long before the kill), so nothing was shown either way.
#[test]
fn a_cell_whose_every_trial_is_inconclusive_is_no_data_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "nodata",
        &format!(
            r#"
[budget]
trials = 2
{SMALL_WORKLOAD}txns_max = 1
[fault.kill]
kill_at_ms_min = 400
kill_at_ms_max = 500
[[matrix]]
journal_mode = ["wal"]
synchronous = ["full"]
"#
        ),
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 1, "{out}");
    let c = cell(&summary, "wal/full/kill/auto-checkpoint");
    assert_eq!(
        (c["verdict"].as_str(), c["inconclusive"].as_u64(), c["crash_states"].as_u64()),
        (Some("no-data"), Some(2), Some(0)),
        "{c}"
    );
    assert!(out.contains("verdict: FAILED (1 no-data; 1 cells): no-data wal/full/kill/auto-checkpoint"), "{out}");
    assert!(out.contains("finished its work before the fault"), "the console says why: {out}");
    let junit = std::fs::read_to_string(dir.path().join("out/junit.xml")).unwrap();
    assert!(junit.contains(r#"type="no-data""#), "{junit}");
    let md = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(md.contains("**no-data**"), "{md}");
}

/// A writer that dies of a signal crashfuzz never sends (here SIGABRT, sent by the test while
/// the writer waits for its kill, as an abort in SQLite or Rust would raise it) is a finding, not an inconclusive trial: `writer_crash`,
/// forbidden under a kill, and the image is still checked.
#[test]
fn a_writer_dying_of_a_signal_crashfuzz_did_not_send_is_a_writer_crash() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "segv",
        &format!(
            r#"
[budget]
trials = 1
{SMALL_WORKLOAD}
[fault.kill]
kill_at_ms_min = 3000
kill_at_ms_max = 3000
[[matrix]]
journal_mode = ["wal"]
synchronous = ["full"]
"#
        ),
    );
    let out = dir.path().join("out");
    let driver = Command::new(EXE)
        .args(["run", scenario.to_str().unwrap(), "--seed", "7", "--no-progress", "--jobs", "1"])
        .args(["--out", out.to_str().unwrap(), "--workdir", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let writers = wait_for_writers(dir.path(), driver.id() as i32);
    assert_eq!(writers.len(), 1, "one writer: {writers:?}");
    // Give it a moment to commit, then crash it. (Not SIGSEGV: Rust's stack-overflow handler
    // swallows one that no faulting access raised.)
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(writers[0]), nix::sys::signal::Signal::SIGABRT).unwrap();
    let o = driver.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let summary = read_json(&out.join("summary.json"));
    let c = cell(&summary, "wal/full/kill/auto-checkpoint");
    assert_eq!(c["verdict"], "regression", "{c}");
    assert_eq!((c["crash_states"].as_u64(), c["violations"]["writer_crash"].as_u64()), (Some(1), Some(1)), "{c}");
    let line: Value = serde_json::from_str(std::fs::read_to_string(out.join("trials.jsonl")).unwrap().trim()).unwrap();
    assert_eq!(line["outcome"]["kind"], "checked", "{line}");
    assert!(line["writer_crashes"][0].as_str().unwrap().contains("SIGABRT"), "{line}");
    // The image was checked like any other, and kept with its replay line.
    assert!(
        line["checks"].as_array().unwrap().iter().any(|c| c["check"] == "integrity" && c["outcome"] == "pass"),
        "{line}"
    );
    assert!(line["replay"].as_str().is_some_and(|r| r.contains("--trial 0")), "{line}");
    assert!(text(&o).contains("writer_crash"), "{}", text(&o));
    // `replay` re-runs the image's checks and says plainly that the crash itself is an event
    // of the trial's processes, which no image can replay.
    let kept = out.join(line["kept_failure"].as_str().unwrap());
    let replay = crashfuzz(&["replay", kept.to_str().unwrap()]);
    let said = text(&replay);
    assert_eq!(replay.status.code(), Some(1), "{said}");
    assert!(said.contains("reproduced: the image passes its checks"), "{said}");
    assert!(said.contains("recorded, not replayable from an image: writer_crash:"), "{said}");
    assert!(said.contains("--trial 0"), "{said}");
}

#[test]
fn a_forbidden_violation_is_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{CANARY}\n[[expect]]\njournal_mode = \"off\"\nintegrity = \"forbidden\"\nfts = \"forbidden\"\n\
         atomicity = \"forbidden\"\nlost_ack = \"forbidden\"\nprefix = \"forbidden\"\nopen = \"forbidden\"\n"
    )
    .replace("trials = 8", "trials = 4");
    let scenario = write_scenario(dir.path(), "forbidden", &body);
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(cell(&summary, "off/full/sigkill_only@bulk")["verdict"], "regression");
    assert_eq!(cell(&summary, "memory/full/sigkill_only@bulk")["verdict"], "ok");
    assert!(out.contains("regression"), "{out}");
}

#[test]
fn a_continue_database_grows_across_trials_and_stays_clean() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "continue",
        &format!(
            r#"
[budget]
trials = 12
[database]
mode = "continue"
{SMALL_WORKLOAD}
[fault.kill]
kill_at_ms_max = 15
[[matrix]]
journal_mode = ["wal", "truncate"]
synchronous = ["normal"]
"#
        ),
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &["--jobs", "1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(summary["trials"], 12);
    for c in summary["cells"].as_array().unwrap() {
        assert_eq!(c["violating_trials"], 0, "{c}");
    }
    // One job runs the two cells in turn: each cell's database waits for its next trial and
    // carries everything its earlier trials committed.
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let trials: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut continued = 0;
    for t in &trials {
        let index = t["trial"].as_u64().unwrap();
        let previous = trials.iter().find(|p| p["trial"].as_u64() == index.checked_sub(2));
        match previous {
            None => assert!(t["continued_from"].is_null(), "the first trial of a cell starts fresh: {t}"),
            Some(p) if p["outcome"]["kind"] == "checked" => {
                assert_eq!(t["continued_from"].as_u64(), Some(index - 2), "{t}");
                let (before, now) =
                    (p["db_bytes_at_start"].as_u64().unwrap(), t["db_bytes_at_start"].as_u64().unwrap());
                assert!(now >= before, "trial {index}: the database shrank from {before} to {now} bytes");
                continued += 1;
            }
            // After an inconclusive trial the cell starts afresh.
            Some(_) => assert!(t["continued_from"].is_null(), "{t}"),
        }
    }
    assert!(continued >= 6, "only {continued} of 12 trials continued a database: {lines}");
    let grew = |cell: &str| -> (u64, u64) {
        let sizes: Vec<u64> =
            trials.iter().filter(|t| t["cell"] == cell).map(|t| t["db_bytes_at_start"].as_u64().unwrap()).collect();
        (sizes[0], *sizes.last().unwrap())
    };
    for cell in ["wal/normal/kill/auto-checkpoint", "truncate/normal/kill"] {
        let (first, last) = grew(cell);
        assert!(last > first, "{cell}: the kept database did not grow ({first} -> {last} bytes)");
    }
}

// ---------------------------------------------------------------- the report command

const SHARDED: &str = r#"
name = "sharded"
description = "two journalled kill cells and a canary, for merging shards"
[budget]
trials = 12
[workload]
seed_messages = 40
seed_sessions = 4
[fault.kill]
kill_at_ms_max = 20
grace_ms = 300
[[matrix]]
journal_mode = ["wal", "delete"]
synchronous = ["full"]
[[matrix]]
journal_mode = ["off"]
synchronous = ["full"]
fault = ["sigkill_only"]
timing = ["bulk"]
"#;

/// Trial indices per cell, from a run's trials.jsonl.
fn trials_per_cell(run: &Path) -> std::collections::BTreeMap<String, Vec<u64>> {
    let mut cells: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for line in std::fs::read_to_string(run.join("trials.jsonl")).unwrap().lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        cells.entry(t["cell"].as_str().unwrap().to_string()).or_default().push(t["trial"].as_u64().unwrap());
    }
    cells.values_mut().for_each(|v| v.sort());
    cells
}

/// A copy of a run directory's three files (not its kept failures).
fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in ["run.json", "trials.jsonl", "summary.json"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
}

#[test]
fn merged_shards_give_the_unsharded_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scenario = write_scenario(d, "sharded", SHARDED);
    let (code, out, whole) = campaign_into(d, "whole", &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    for i in 1..=2 {
        let shard = format!("{i}/2");
        let (code, out, _) = campaign_into(d, &format!("shard{i}"), &scenario, &["--shard", &shard]);
        assert_eq!(code, 0, "{out}");
    }
    let (shard1, shard2, merged) = (d.join("shard1"), d.join("shard2"), d.join("merged"));
    let o =
        crashfuzz(&["report", shard1.to_str().unwrap(), shard2.to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("verdict: ok (3 cells: 3 ok)"), "the console matrix is printed: {}", text(&o));
    let summary = read_json(&merged.join("summary.json"));
    for file in ["summary.md", "junit.xml", "violations.svg", "synchronous.svg", "latency.svg"] {
        assert!(merged.join(file).is_file(), "{file} missing");
    }
    assert!(std::fs::read_to_string(merged.join("summary.md")).unwrap().contains("[latency.svg](latency.svg)"));

    // The shards ran disjoint trials whose union is the unsharded campaign's, cell by cell.
    let mut union = trials_per_cell(&shard1);
    for (cell, trials) in trials_per_cell(&shard2) {
        union.entry(cell).or_default().extend(trials);
    }
    union.values_mut().for_each(|v| v.sort());
    assert_eq!(union, trials_per_cell(&d.join("whole")));

    // What the seed and the trial set determine is identical. (A kill lands at a time offset,
    // not an instruction, so commits and latencies differ from run to run; they must add up.)
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["trials"], whole["trials"]);
    assert_eq!(summary["sources"].as_array().unwrap().len(), 2);
    let shards = [read_json(&shard1.join("summary.json")), read_json(&shard2.join("summary.json"))];
    for w in whole["cells"].as_array().unwrap() {
        let id = w["id"].as_str().unwrap();
        let m = cell(&summary, id);
        for key in ["trials", "crash_states", "inconclusive", "verdict", "expectation"] {
            assert_eq!(m[key], w[key], "{id} {key}");
        }
        if id.starts_with("off/") {
            // The canary kills inside a spilled bulk transaction: every crash state is damaged.
            assert_eq!(m["violating_trials"], m["crash_states"], "{m}");
        } else {
            assert_eq!(m["violations"], w["violations"], "{id}: journalled kill cells never violate");
            assert_eq!(m["violating_trials"], 0, "{m}");
        }
        let sum = |key: &str, sub: Option<&str>| -> u64 {
            shards
                .iter()
                .map(|s| {
                    let c = cell(s, id);
                    sub.map_or(&c[key], |sub| &c[key][sub]).as_u64().unwrap()
                })
                .sum()
        };
        assert_eq!(m["commits"].as_u64().unwrap(), sum("commits", None), "{id}");
        assert_eq!(m["commit_latency_us"]["count"].as_u64().unwrap(), sum("commit_latency_us", Some("count")), "{id}");
        assert_eq!(m["violating_trials"].as_u64().unwrap(), sum("violating_trials", None), "{id}");
    }

    // Bad input: exit 2, naming what is wrong.
    let (s1, s2) = (shard1.to_str().unwrap(), shard2.to_str().unwrap());
    assert_bad_input(&["report", s1, s2], &["--out"]);
    let again = d.join("shard1-again");
    copy_run(&shard1, &again);
    assert_bad_input(&["report", s1, again.to_str().unwrap(), "--out", d.join("x").to_str().unwrap()], &["twice"]);
    let torn = d.join("torn");
    copy_run(&shard2, &torn);
    let lines = std::fs::read_to_string(torn.join("trials.jsonl")).unwrap();
    let last = lines.lines().last().unwrap();
    std::fs::write(torn.join("trials.jsonl"), format!("{lines}{}", &last[..last.len() / 2])).unwrap();
    let o = crashfuzz(&["report", s1, torn.to_str().unwrap(), "--out", d.join("t").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("torn"), "{}", text(&o));
    assert_eq!(read_json(&d.join("t/summary.json"))["trials"], summary["trials"]);
    std::fs::write(torn.join("trials.jsonl"), format!("{{\"trial\": 1\n{lines}")).unwrap();
    let trials = torn.join("trials.jsonl");
    assert_bad_input(&["report", torn.to_str().unwrap()], &[&format!("{}:1:", trials.display())]);
}

/// A campaign SIGKILLed partway, its last line torn, then resumed, ends with the summary an
/// uninterrupted run of the same seed writes: the same trials per cell, crash states and
/// verdicts, no trial recorded twice. A changed scenario, another crashfuzz version and a
/// directory that is not a run are refused with exit 2.
#[test]
fn a_killed_campaign_resumed_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scenario = write_scenario(d, "sharded", SHARDED);
    let (code, out, whole) = campaign_into(d, "whole", &scenario, &["--trials", "24", "--jobs", "1"]);
    assert_eq!(code, 0, "{out}");

    let run = d.join("killed");
    let mut driver = Command::new(EXE)
        .args(["run", scenario.to_str().unwrap(), "--trials", "24", "--jobs", "1", "--seed", "7", "--no-progress"])
        .args(["--out", run.to_str().unwrap(), "--workdir", d.to_str().unwrap()])
        .env("CRASHFUZZ_SQLITE_CACHE", sqlite_cache())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let trials = run.join("trials.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&trials).map_or(0, |t| t.lines().count()) < 5 {
        assert!(Instant::now() < deadline, "the campaign never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(driver.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    driver.wait().unwrap();
    assert!(!run.join("summary.json").exists(), "a SIGKILLed driver writes no summary");
    // A kill mid-append leaves half a line.
    let lines = std::fs::read_to_string(&trials).unwrap();
    let recorded = lines.lines().count();
    let last = lines.lines().last().unwrap();
    std::fs::write(&trials, format!("{lines}{}", &last[..last.len() / 2])).unwrap();

    let o = crashfuzz(&["run", "--resume", run.to_str().unwrap(), "--no-progress", "--workdir", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("torn"), "the cut line is said: {}", text(&o));
    assert!(text(&o).contains(&format!("{recorded} trials recorded")), "{}", text(&o));
    let resumed = read_json(&run.join("summary.json"));
    assert_eq!(trials_per_cell(&run), trials_per_cell(&d.join("whole")), "the same trial set, none twice");
    assert_eq!(resumed["trials"], whole["trials"]);
    assert_eq!(resumed["seed"], 7);
    for w in whole["cells"].as_array().unwrap() {
        let id = w["id"].as_str().unwrap();
        let r = cell(&resumed, id);
        for key in ["trials", "checked", "crash_states", "inconclusive", "verdict", "expectation", "violating_trials"] {
            assert_eq!(r[key], w[key], "{id} {key}");
        }
    }
    let run_json = read_json(&run.join("run.json"));
    assert_eq!(run_json["resumes"].as_array().unwrap().len(), 1, "{run_json}");
    assert_eq!(run_json["resumes"][0]["torn_line_dropped"], true);
    assert_eq!(run_json["resumes"][0]["trials_before"].as_u64().unwrap(), recorded as u64);
    assert!(run_json["resumes"][0]["command"].as_str().unwrap().contains("--resume"), "{run_json}");
    assert!(run_json["command"].as_str().unwrap().contains("--trials 24"), "the original command stays: {run_json}");

    // Refused, exit 2: the scenario file edited since, another crashfuzz version, not a run.
    let edited = d.join("edited");
    copy_run(&run, &edited);
    let moved = write_scenario(d, "sharded", &SHARDED.replace("kill_at_ms_max = 20", "kill_at_ms_max = 25"));
    assert_eq!(moved, scenario);
    assert_bad_input(&["run", "--resume", edited.to_str().unwrap()], &["changed since this run started", "kill"]);
    write_scenario(d, "sharded", SHARDED);
    let other = d.join("other-version");
    copy_run(&run, &other);
    let json = std::fs::read_to_string(other.join("run.json")).unwrap();
    std::fs::write(other.join("run.json"), json.replace(env!("CARGO_PKG_VERSION"), "0.0.1-other")).unwrap();
    assert_bad_input(&["run", "--resume", other.to_str().unwrap()], &["crashfuzz_version", "0.0.1-other"]);
    assert_bad_input(&["run", "--resume", d.to_str().unwrap()], &["run.json"]);
    assert_bad_input(&["run", "--resume", run.to_str().unwrap(), "--seed", "3"], &["--seed"]);
}

/// The merge job of the GitHub Actions example, its commands run as the workflow file holds
/// them on two real shard directories, inside a simulated Actions environment: the merged
/// summary lands in the job summary, each failing cell becomes an `::error` annotation with its
/// replay line, and the step fails by `crashfuzz report`'s exit code. A shard run appends its
/// own summary too.
#[test]
fn the_github_merge_job_writes_the_step_summary_and_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = format!(
        "{CANARY}\n[[expect]]\njournal_mode = \"off\"\nintegrity = \"forbidden\"\nfts = \"forbidden\"\n\
         atomicity = \"forbidden\"\nlost_ack = \"forbidden\"\nprefix = \"forbidden\"\nopen = \"forbidden\"\n"
    )
    .replace("trials = 8", "trials = 4");
    let scenario = write_scenario(d, "forbidden", &body);
    let workflow =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ci/github/crashfuzz-gate.yml")).unwrap();
    // The merge step's script, between its markers, unindented.
    let script: String = workflow
        .lines()
        .skip_while(|l| !l.contains("# crashfuzz-merge-begin"))
        .take_while(|l| !l.contains("# crashfuzz-merge-end"))
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    assert!(script.contains("report"), "the merge step was not found: {workflow}");

    let step_summary = d.join("step-summary.md");
    let actions_env = |c: &mut Command| {
        c.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &step_summary)
            .env("CRASHFUZZ_SQLITE_CACHE", sqlite_cache());
    };
    for i in 1..=2 {
        let out = d.join(format!("shards/crashfuzz-shard-{i}"));
        let mut c = Command::new(EXE);
        c.args(["run", scenario.to_str().unwrap(), "--seed", "7", "--shard", &format!("{i}/2"), "--no-progress"])
            .args(["--out", out.to_str().unwrap(), "--workdir", d.to_str().unwrap()]);
        actions_env(&mut c);
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(1), "shard {i}: {}", text(&o));
    }
    let shard_summaries = std::fs::read_to_string(&step_summary).unwrap();
    assert_eq!(shard_summaries.matches("# crashfuzz: canary").count(), 2, "{shard_summaries}");
    std::fs::remove_file(&step_summary).unwrap();

    let mut c = Command::new("bash");
    c.args(["-euo", "pipefail", "-c", &script]).current_dir(d).env("CRASHFUZZ", EXE).env("SHARDS", "2");
    actions_env(&mut c);
    let o = c.output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "the merge step fails by the merged verdict: {out}");
    let summary = std::fs::read_to_string(&step_summary).unwrap();
    assert!(summary.starts_with("# crashfuzz: canary"), "{summary}");
    assert!(summary.contains("**verdict: FAILED** (2 cells: 1 ok, 1 regression)"), "{summary}");
    let annotations: Vec<&str> = out.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(annotations.len(), 1, "one failing cell, one annotation: {out}");
    assert!(annotations[0].starts_with("::error title=crashfuzz regression%3A off/full/sigkill_only@bulk::"), "{out}");
    assert!(
        annotations[0].contains("%0Areplay: crashfuzz replay ") && annotations[0].contains("--seed 7 --trial 0"),
        "{out}"
    );
    assert!(d.join("merged/junit.xml").is_file());

    // Fewer shard directories than the matrix has: bad input, said in an annotation.
    std::fs::remove_dir_all(d.join("shards/crashfuzz-shard-2")).unwrap();
    let mut c = Command::new("bash");
    c.args(["-euo", "pipefail", "-c", &script]).current_dir(d).env("CRASHFUZZ", EXE).env("SHARDS", "2");
    actions_env(&mut c);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("::error title=crashfuzz::1 of 2 shard directories arrived"), "{}", text(&o));
}

// ---------------------------------------------------------------- the check command

fn clean_db(dir: &Path) -> PathBuf {
    let path = dir.join("clean.sqlite");
    let cfg =
        crashfuzz::writer::session_store::WorkloadConfig { seed_messages: 60, seed_sessions: 3, ..Default::default() };
    let mut conn = Connection::open(&path).unwrap();
    crashfuzz::writer::session_store::create_schema(&conn, &cfg).unwrap();
    crashfuzz::writer::session_store::seed(&mut conn, &cfg, 1).unwrap();
    conn.close().unwrap();
    path
}

#[test]
fn check_passes_a_clean_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = clean_db(dir.path());
    let before = std::fs::read(&db).unwrap();
    let o = crashfuzz(&["check", db.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read(&db).unwrap(), before, "check must not modify the database");
}

#[test]
fn check_names_integrity_on_a_flipped_byte_in_a_table_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = clean_db(dir.path());
    // The first page of the messages table's b-tree; flip bytes in its cell-pointer array, so
    // cells point at the wrong offsets.
    let (root, page_size): (i64, i64) = {
        let conn = Connection::open(&db).unwrap();
        let root =
            conn.query_row("SELECT rootpage FROM sqlite_master WHERE name='messages'", [], |r| r.get(0)).unwrap();
        let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        (root, page_size)
    };
    let mut bytes = std::fs::read(&db).unwrap();
    let page = ((root - 1) * page_size) as usize;
    let header = if bytes[page] == 0x05 { 12 } else { 8 };
    bytes[page + header] ^= 0x5a;
    bytes[page + header + 1] ^= 0xa5;
    std::fs::write(&db, &bytes).unwrap();
    let o = crashfuzz(&["check", db.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAILED") && text(&o).contains("integrity"), "{}", text(&o));
}

#[test]
fn check_names_fts_when_shadow_rows_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = clean_db(dir.path());
    {
        let conn = Connection::open(&db).unwrap();
        let n = conn.execute("DELETE FROM messages_fts_data WHERE id > 10 AND id % 2 = 0", []).unwrap();
        assert!(n > 0);
    }
    let o = crashfuzz(&["check", db.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    let failed = out.lines().find(|l| l.starts_with("FAILED")).unwrap_or_else(|| panic!("{out}"));
    assert!(failed.contains("fts"), "{out}");
}

#[test]
fn check_names_open_on_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "this is not an SQLite database, just some text long enough to have a header\n".repeat(50))
        .unwrap();
    let o = crashfuzz(&["check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.lines().any(|l| l.starts_with("FAILED") && l.contains("open")), "{out}");
}

#[test]
fn check_of_a_missing_file_is_bad_input() {
    let o = crashfuzz(&["check", "/nonexistent/crashfuzz/db.sqlite"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent/crashfuzz/db.sqlite"));
}

// ---------------------------------------------------------------- bad input: exit 2, no panic

fn assert_bad_input(args: &[&str], must_mention: &[&str]) {
    let o = crashfuzz(args);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {out}");
    assert!(!out.contains("panicked"), "{out}");
    for m in must_mention {
        assert!(out.contains(m), "{args:?} should mention {m:?}: {out}");
    }
}

#[test]
fn bad_scenarios_and_flags_exit_2_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let malformed = write_scenario(d, "malformed", "[budget]\ntrials = 3\n[[matrix]\njournal_mode = [\"wal\"]\n");
    assert_bad_input(&["run", malformed.to_str().unwrap()], &["malformed.toml:"]);
    let journal = write_scenario(
        d,
        "journal",
        "[budget]\ntrials = 3\n[[matrix]]\njournal_mode = [\"wall\"]\nsynchronous = [\"full\"]\n",
    );
    assert_bad_input(&["run", journal.to_str().unwrap()], &["journal.toml:4", "wall", "delete"]);
    let grace = write_scenario(
        d,
        "grace",
        "[budget]\ntrials = 3\n[fault.kill]\ngrace_ms = -5\n[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n",
    );
    assert_bad_input(&["run", grace.to_str().unwrap()], &["grace.toml:4", "grace_ms", "-5"]);
    assert_bad_input(&["run", "--no-such-flag"], &["--no-such-flag"]);
    assert_bad_input(&["run", "/nonexistent/scenario.toml"], &["/nonexistent/scenario.toml"]);
    // An unwritable --out: a path under a regular file.
    let file = d.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("run");
    assert_bad_input(&["run", "--trials", "29", "--out", out.to_str().unwrap()], &[out.to_str().unwrap()]);
    // A budget that leaves a cell without a trial (29 cells in the default scenario) is refused
    // before anything runs, naming the smallest budget that would do.
    assert_bad_input(&["run", "--trials", "3"], &["26 of 29 cells", "--trials 29"]);
    assert_bad_input(&["run", "--trials", "29", "--min-states", "2"], &["--min-states 2", "the minimum budget is"]);
    assert_bad_input(&["run", "--min-states", "0"], &["--min-states"]);
    // A build crashfuzz cannot obtain: refused up front, with the list of those it can.
    assert_bad_input(&["sqlite", "build", "3.40.1"], &["3.40.1", "not one crashfuzz can build", "3.35.4", "3.54.1"]);
    assert_bad_input(&["run", "--sqlite", "system,3.40.1"], &["3.40.1", "not one crashfuzz can build"]);
    let unbuildable = write_scenario(
        d,
        "unbuildable",
        "[budget]\ntrials = 3\n[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nsqlite = [\"3.40.1\"]\n",
    );
    assert_bad_input(&["run", unbuildable.to_str().unwrap()], &["unbuildable.toml:6", "sqlite", "3.41.2"]);
    // A library path that is no file.
    let missing = write_scenario(
        d,
        "missing",
        "[budget]\ntrials = 3\n[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nsqlite = [\"/nonexistent/libsqlite3.so\"]\n",
    );
    assert_bad_input(&["run", missing.to_str().unwrap()], &["/nonexistent/libsqlite3.so", "no such library file"]);
}

// ---------------------------------------------------------------- no orphans

/// Pids of processes whose command line mentions `needle` (writers carry their database path,
/// which lies under the test's own work directory).
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// The parent of `pid`, from `/proc/PID/stat` (`None` once it is gone).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Pids of the processes the driver `driver` started for its trials under `dir`: an exec'd
/// writer's command line carries its database path; a fork server's, and so every writer it
/// forked, carries the driver's pid (`__fork-server PID`).
fn processes_of(dir: &Path, driver: i32) -> Vec<i32> {
    let server = format!("{FORK_SERVER_SUBCOMMAND}\0{driver}\0");
    let mut pids = processes_mentioning(dir.to_str().unwrap());
    pids.extend(processes_mentioning(&server));
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The writers among [`processes_of`]: exec'd ones by their subcommand, forked ones by their
/// parent (their fork server, not the driver).
fn writers_of(dir: &Path, driver: i32) -> Vec<i32> {
    processes_of(dir, driver)
        .into_iter()
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains(FORK_SERVER_SUBCOMMAND) {
                parent_of(pid).is_some_and(|parent| parent != driver)
            } else {
                cmdline.contains(crashfuzz::writer::protocol::WRITER_SUBCOMMAND)
            }
        })
        .collect()
}

/// Waits up to a minute for a writer process of `driver` under `dir` to exist, and returns the
/// pids seen.
fn wait_for_writers(dir: &Path, driver: i32) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pids = writers_of(dir, driver);
        if !pids.is_empty() {
            return pids;
        }
        assert!(Instant::now() < deadline, "no writer process appeared under {}", dir.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn start_long_campaign(dir: &Path) -> (std::process::Child, PathBuf) {
    let scenario = write_scenario(
        dir,
        "long",
        &format!(
            "[budget]\nduration_s = 120\n{SMALL_WORKLOAD}\n[fault.kill]\nkill_at_ms_max = 30\n\
             [[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\n"
        ),
    );
    let out = dir.join("out");
    let child = Command::new(EXE)
        .args(["run", scenario.to_str().unwrap(), "--jobs", "2", "--no-progress", "--seed", "3"])
        .args(["--out", out.to_str().unwrap(), "--workdir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until trials are running.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(out.join("trials.jsonl")).map_or(0, |t| t.lines().count()) < 3 {
        assert!(Instant::now() < deadline, "the campaign never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, out)
}

/// Waits up to 30 s for `driver` to exit; `what` is the failure's message.
fn wait_for_exit(driver: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = driver.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_sigkilled_driver_leaves_no_writer_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (mut driver, _) = start_long_campaign(dir.path());
    let driver_pid = driver.id() as i32;
    // Writers are running (this test proves nothing if there is no one to orphan).
    let writers = wait_for_writers(dir.path(), driver_pid);
    assert!(!writers.is_empty());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(driver_pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    driver.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = processes_of(dir.path(), driver_pid);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes still alive 2 s after the driver's SIGKILL: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_fork_server_takes_its_writers_with_it_and_stops_the_driver() {
    let dir = tempfile::tempdir().unwrap();
    let (mut driver, _) = start_long_campaign(dir.path());
    let driver_pid = driver.id() as i32;
    let writers = wait_for_writers(dir.path(), driver_pid);
    assert!(!writers.is_empty());
    // The fork servers: the driver's own children among its processes.
    let servers: Vec<i32> =
        processes_of(dir.path(), driver_pid).into_iter().filter(|&p| parent_of(p) == Some(driver_pid)).collect();
    assert!(!servers.is_empty(), "no fork server under {driver_pid}");
    for server in &servers {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*server), nix::sys::signal::Signal::SIGKILL);
    }
    let status = wait_for_exit(&mut driver, "the driver went on without its fork servers");
    // The harness broke, not SQLite: a harness error, and nothing left running.
    assert_eq!(status.code(), Some(3));
    assert!(processes_of(dir.path(), driver_pid).is_empty());
}

#[test]
fn ctrl_c_stops_reaps_and_still_writes_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (mut driver, out) = start_long_campaign(dir.path());
    let pid = nix::unistd::Pid::from_raw(driver.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_for_exit(&mut driver, "driver did not stop after Ctrl-C");
    assert_eq!(status.code(), Some(130));
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["interrupted"], true);
    let lines = std::fs::read_to_string(out.join("trials.jsonl")).unwrap().lines().count() as u64;
    assert_eq!(summary["trials"].as_u64().unwrap(), lines);
    assert!(processes_of(dir.path(), pid.as_raw()).is_empty());
}

// ---------------------------------------------------------------- power loss, crash points, I/O errors

const POWER_LOSS: &str = r#"
name = "power"
[budget]
trials = 15
[workload]
seed_messages = 40
seed_sessions = 4
[fault.kill]
# Long enough for several acknowledged commits even in a debug build on a loaded machine.
kill_at_ms_min = 40
kill_at_ms_max = 80
[[matrix]]
journal_mode = ["wal"]
synchronous = ["normal", "full"]
fault = ["power_loss"]
[[matrix]]
journal_mode = ["delete"]
synchronous = ["extra"]
fault = ["power_loss"]
"#;

#[test]
fn power_loss_separates_normal_from_full_and_a_kept_image_replays_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "power", POWER_LOSS);
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    let normal = cell(&summary, "wal/normal/power_loss/auto-checkpoint");
    // Eight images per trace; a trace of few writes (a loaded machine) may give some twice,
    // and an image equal to an earlier one of its trace is counted once.
    assert_eq!((normal["checked"].as_u64(), normal["images"].as_u64()), (Some(5), Some(5 * 8)), "{normal}");
    let states = normal["crash_states"].as_u64().unwrap();
    assert!((5..=5 * 8).contains(&states), "{normal}");
    assert!(normal["violations"]["lost_ack"].as_u64().unwrap() > 0, "the WAL+NORMAL canary must fire: {normal}");
    for kind in ["open", "integrity", "fts", "atomicity", "prefix", "phantom", "reopen_write"] {
        assert_eq!(normal["violations"][kind], 0, "WAL+NORMAL never damages: {kind}: {normal}");
    }
    for id in ["wal/full/power_loss/auto-checkpoint", "delete/extra/power_loss"] {
        let c = cell(&summary, id);
        assert_eq!(c["verdict"], "ok", "{c}");
        assert_eq!(c["violating_trials"], 0, "{c}");
    }
    // A kept power-loss failure: its image is rebuilt from base/ and trace.bin, identically,
    // and the explanation names the lost writes.
    let failures = dir.path().join("out/failures");
    let kept = std::fs::read_dir(&failures).unwrap().next().unwrap().unwrap().path();
    for file in ["base/db.sqlite", "trace.bin", "explain.txt", "replay.txt", "trial.json"] {
        assert!(kept.join(file).is_file(), "{file} missing in {}", kept.display());
    }
    let explain = std::fs::read_to_string(kept.join("explain.txt")).unwrap();
    assert!(explain.contains("lost:") || explain.contains("torn:") || explain.contains("undone:"), "{explain}");
    let first = crashfuzz(&["replay", kept.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    assert!(text(&first).contains("reproduced"), "{}", text(&first));
    let second = crashfuzz(&["replay", kept.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(1));
    assert!(text(&second).contains("reproduced"), "{}", text(&second));
}

/// A power loss beneath several processes: two long-lived writers and transients all trace
/// into one trace, ordered across processes; WAL+FULL keeps every acknowledged commit of every
/// one of them.
#[test]
fn a_power_loss_beneath_several_processes_keeps_every_acknowledged_commit_in_wal_full() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "shared",
        "[budget]\ntrials = 3\n[workload]\nseed_messages = 40\nseed_sessions = 4\n\
         [fault.kill]\nkill_at_ms_min = 150\nkill_at_ms_max = 250\n\
         [[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"power_loss_shared\"]\n",
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    let c = cell(&summary, "wal/full/power_loss_shared/auto-checkpoint");
    // A trial may be inconclusive on a loaded machine (a writer not ready in time): it says why
    // and checks nothing; the others must be clean.
    assert!(c["checked"].as_u64() >= Some(2), "{c}");
    assert_eq!((c["verdict"].as_str(), c["violating_trials"].as_u64()), (Some("ok"), Some(0)), "{c}");
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let (mut transients, mut acked) = (0, 0);
    let trials = lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap());
    for t in trials.filter(|t| t["outcome"]["kind"] == "checked") {
        // Two long-lived writers every trial (how many commit before the cut depends on the
        // machine's load: a writer waiting for the lock is still a process of the trial).
        let long_lived = t["deaths"].as_array().unwrap().iter().filter(|d| d["role"] != "transient").count();
        assert!(long_lived >= 2, "two long-lived writers: {t}");
        transients += t["transients"].as_u64().unwrap();
        acked += t["acks"].as_object().unwrap().values().map(|a| a["acked"].as_u64().unwrap()).sum::<u64>();
        assert_eq!(t["images"].as_array().unwrap().len(), 8, "{t}");
    }
    assert!(transients > 0 && acked > 0, "transients ran ({transients}) and commits were acknowledged ({acked})");
}

/// `crashfuzz io-counts`: one commit's syncs per journal mode and level (the median over the
/// steady commits, and the most one did), the commits that checkpoint apart, and a
/// checkpoint's, counted through the tracing VFS, with no scratch directory left behind.
#[test]
fn io_counts_prints_what_one_commit_and_one_checkpoint_sync() {
    let o = crashfuzz(&["io-counts", "--commits", "60"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let row = |start: &str| out.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{start}: {out}"));
    // At NORMAL a WAL commit syncs only the header of a restarted WAL; FULL syncs every commit.
    assert!(row("| WAL | NORMAL |").contains("| none (max: WAL 1) |"), "{out}");
    assert!(row("| WAL | FULL |").contains("| WAL 1 (max: WAL 2) |"), "{out}");
    assert!(row("| DELETE | EXTRA |").contains("| journal 2, db 1, dir 2"), "{out}");
    assert!(row("| DELETE | EXTRA |").ends_with("| 1 / 1 | — |"), "{out}");
    assert!(row("| FULL | TRUNCATE |").contains("| WAL 1, db 1 |"), "{out}");
    assert!(out.contains("60 per cell after a first one"), "{out}");
    let o = crashfuzz(&["io-counts", "--commits", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn systematic_crash_points_walk_the_short_trace_operation_by_operation() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "points",
        r#"
[budget]
trials = 12
[workload]
seed_messages = 20
seed_sessions = 2
message_bytes_max = 1000
huge_message_per_mille = 0
[fault.crash_point]
txns = 2
[[matrix]]
journal_mode = ["wal", "delete"]
synchronous = ["full"]
fault = ["crash_point"]
"#,
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(summary["inconclusive"], 0, "{summary}");
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let mut ops: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for line in lines.lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        assert_eq!(t["deaths"][0]["how"], "signal:SIGKILL", "{t}");
        assert!(t["violations"].as_array().unwrap().is_empty(), "{t}");
        ops.entry(t["cell"].as_str().unwrap().to_string()).or_default().push(t["injection"]["op"].as_u64().unwrap());
    }
    for (cell, mut points) in ops {
        points.sort();
        assert_eq!(points, (1..=6).collect::<Vec<u64>>(), "{cell}: trial k crashes at operation k + 1");
    }
}

#[test]
fn injected_io_errors_surface_to_the_writer_and_leave_a_clean_database() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "ioerr",
        &format!(
            r#"
[budget]
trials = 8
{SMALL_WORKLOAD}
[fault.io_error]
op_max = 60
[[matrix]]
journal_mode = ["wal", "delete"]
synchronous = ["full"]
fault = ["io_error"]
"#
        ),
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let mut surfaced = 0;
    for line in lines.lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        if t["outcome"]["kind"] != "checked" {
            continue;
        }
        assert!(t["violations"].as_array().unwrap().is_empty(), "{t}");
        surfaced += usize::from(t["injection"]["failed"].as_array().is_some_and(|f| !f.is_empty()));
    }
    assert!(surfaced > 0, "no writer ever saw its injected error: {summary}");
}

/// In the rollback-journal modes COMMIT can fail after the transaction is in the database: the
/// journal is finalized (here: PERSIST zeroes its header, then syncs it) after the database file
/// was written and synced, and an injected SQLITE_IOERR_FSYNC there is COMMIT's error. The
/// writer must not acknowledge it and must not retry it under the same seq either (that
/// retry once failed on the ledger's primary key and was reported as a broken database).
/// Trial 159 of this matrix with seed 5 injects exactly there (deterministic: the writer's
/// operations up to the injection depend on the trial's seed alone); the kill comes up to a
/// second later, so that even a starved writer has looked its transaction up by then.
#[test]
fn a_commit_that_fails_after_committing_is_neither_acknowledged_nor_retried() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "io-commit",
        r#"
[budget]
trials = 200
[fault.io_error]
op_max = 300
kill_after_ms_max = 1000
[[matrix]]
journal_mode = ["wal", "delete", "truncate", "persist"]
synchronous = ["normal", "full"]
fault = ["io_error"]
"#,
    );
    let out = dir.path().join("out");
    let o = crashfuzz(&[
        "run",
        scenario.to_str().unwrap(),
        "--seed",
        "5",
        "--trial",
        "159",
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
        "--workdir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t: Value = serde_json::from_str(std::fs::read_to_string(out.join("trials.jsonl")).unwrap().trim()).unwrap();
    assert_eq!(t["cell"], "persist/full/io_error", "{t}");
    let failed = &t["injection"]["failed"][0];
    assert_eq!(failed["code"], 1034, "SQLITE_IOERR_FSYNC expected (if the workload changed, pick another trial): {t}");
    assert_eq!(failed["committed"], true, "{t}");
    // Before the fix the writer's retry died on UNIQUE(ledger.writer, ledger.seq): reopen_write.
    assert!(t["violations"].as_array().unwrap().is_empty(), "{t}");
}

// ---------------------------------------------------------------- load, topology, shutdowns

/// Pids of burner processes whose parent is `parent`.
fn burners_of(parent: u32) -> Vec<i32> {
    children_mentioning(parent, "__burner")
}

/// Pids of the children of `parent` whose command line holds `needle`.
fn children_mentioning(parent: u32, needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Field 4 of /proc/PID/stat (after the parenthesised name) is the parent pid.
        let ppid = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)).and_then(|p| p.parse().ok());
        if String::from_utf8_lossy(&cmdline).contains(needle) && ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn load_burners_are_reaped_on_exit_and_die_with_a_sigkilled_driver() {
    // A normal end: every burner is gone when the command returns.
    let o = crashfuzz(&["load", "--target", "2", "--duration", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("load1="), "{}", text(&o));
    // A SIGKILLed driver: its burners die with it (PR_SET_PDEATHSIG). The target sits above
    // the machine's present load, so that burners start even on a loaded machine.
    let load1 = sysinfo::System::load_average().expect("read the load average").one;
    let target = (load1.ceil() as u64 + 3).to_string();
    let mut driver = Command::new(EXE)
        .args(["load", "--target", target.as_str(), "--duration", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen: Vec<i32> = Vec::new();
    while seen.is_empty() {
        assert!(Instant::now() < deadline, "no burner was ever started");
        std::thread::sleep(Duration::from_millis(100));
        seen = burners_of(driver.id());
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(driver.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    driver.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let alive: Vec<i32> =
            seen.iter().copied().filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists()).collect();
        // A reaped-by-init zombie has no cmdline left; count only live burners.
        let alive: Vec<i32> = alive
            .into_iter()
            .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty()))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "burners alive 2 s after the driver's SIGKILL: {alive:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The killed driver could not remove its scratch directory; the next crashfuzz sweeps it.
    let killed = driver.id();
    let left_by_killed = || -> Vec<PathBuf> {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                std::fs::read_to_string(p.join(".crashfuzz-owner"))
                    .is_ok_and(|stamp| stamp.split(' ').next() == Some(killed.to_string().as_str()))
            })
            .collect()
    };
    assert_eq!(left_by_killed().len(), 1, "the SIGKILLed driver's scratch directory");
    let o = crashfuzz(&["load", "--target", "1", "--duration", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(left_by_killed(), Vec::<PathBuf>::new(), "{}", text(&o));
}

#[test]
fn survivors_keep_writing_through_the_gateways_kill() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "survivors",
        r#"
[budget]
trials = 6
[workload]
seed_messages = 40
seed_sessions = 4
writers = 2
[topology]
connections = 2
transient_rate_per_s = 50.0
survive_ms = 300
[load]
target_loadavg = 1.0
warmup_timeout_s = 5
[fault.kill]
kill_at_ms_min = 20
kill_at_ms_max = 60
[[matrix]]
journal_mode = ["wal", "delete"]
synchronous = ["full"]
"#,
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(summary["inconclusive"], 0, "{summary}");
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let mut survivor_commits_after = 0;
    for line in lines.lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        assert!(t["violations"].as_array().unwrap().is_empty(), "{t}");
        assert!(t["loadavg_1m"].as_f64().is_some(), "every trial records its load average: {t}");
        let victims: Vec<&Value> = t["deaths"].as_array().unwrap().iter().filter(|d| d["role"] == "victim").collect();
        assert_eq!(victims.len(), 2, "the gateway's two connections are the victim: {t}");
        for s in t["survivors"].as_array().unwrap() {
            assert!(s["error"].is_null(), "{t}");
            if s["role"] == "survivor" {
                survivor_commits_after += s["commits_after_victim_death"].as_u64().unwrap();
            }
        }
    }
    assert!(survivor_commits_after > 0, "the second long-lived writer never committed after the gateway died");
    for c in summary["cells"].as_array().unwrap() {
        assert!(c["loadavg_1m"]["max"].as_f64().is_some(), "{c}");
    }
}

#[test]
fn a_graceful_shutdown_cut_by_sigkill_mid_checkpoint_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "midcheckpoint",
        r#"
[budget]
trials = 8
[workload]
seed_messages = 40
seed_sessions = 4
message_bytes_min = 2000
message_bytes_max = 8000
huge_message_per_mille = 0
compress_percent = 0
[fault.kill]
# A WAL of a few hundred milliseconds of commits and no checkpoint until the shutdown, whose
# TRUNCATE checkpoint then takes far longer than the 10 ms grace period.
kill_at_ms_min = 300
kill_at_ms_max = 400
grace_ms = 10
graceful_checkpoint = "truncate"
[[matrix]]
journal_mode = ["wal"]
synchronous = ["full"]
sigterm = ["graceful"]
checkpoint = ["none"]
"#,
    );
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    let c = &summary["cells"][0];
    assert!(c["shutdowns"]["killed_mid_checkpoint"].as_u64().unwrap() > 0, "{c}");
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let cut = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|t| t["shutdowns"][0]["killed_mid_checkpoint"] == true)
        .expect("a trial shows it");
    assert_eq!(cut["shutdowns"][0]["checkpoint_started"], true, "{cut}");
    assert_eq!(cut["shutdowns"][0]["checkpoint_done"], false, "{cut}");
    assert!(cut["deaths"].as_array().unwrap().iter().any(|d| d["how"] == "signal:SIGKILL"), "{cut}");
    assert!(cut["violations"].as_array().unwrap().is_empty(), "a checkpoint cut short is still safe: {cut}");
}

// ---------------------------------------------------------------- hazards

/// Runs a one-block hazard scenario and returns (code, output, summary, trial lines).
fn hazard_campaign(name: &str, body: &str) -> (i32, String, Value, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), name, body);
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap_or_default();
    let trials = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (code, out, summary, trials)
}

#[test]
fn a_deleted_hot_wal_loses_every_acknowledged_commit_it_held() {
    let (code, out, summary, trials) = hazard_campaign(
        "hotwal",
        &format!(
            "[budget]\ntrials = 3\n{SMALL_WORKLOAD}\n[fault.kill]\n# Long enough for a starved writer to commit something on a loaded machine.\nkill_at_ms_min = 200\nkill_at_ms_max = 400\n\
             [[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"delete_hot_wal\"]\ncheckpoint = [\"none\"]\n"
        ),
    );
    assert_eq!(code, 0, "{out}");
    let c = cell(&summary, "wal/full/delete_hot_wal/none-checkpoint");
    assert_eq!(c["verdict"], "ok", "{c}");
    for t in trials.iter().filter(|t| t["outcome"]["kind"] == "checked") {
        assert!(t["violations"].as_array().unwrap().contains(&Value::from("lost_ack")), "{t}");
    }
    assert!(c["crash_states"].as_u64().unwrap() >= 2, "{c}");
}

#[test]
fn a_deleted_hot_journal_after_a_kill_inside_a_transaction_leaves_it_half_written() {
    let (code, out, summary, trials) = hazard_campaign(
        "hotjournal",
        &format!(
            "[budget]\ntrials = 3\n{SMALL_WORKLOAD}\n[[matrix]]\njournal_mode = [\"delete\"]\nsynchronous = [\"full\"]\n\
             fault = [\"delete_hot_journal\"]\ntiming = [\"bulk\"]\n"
        ),
    );
    assert_eq!(code, 0, "{out}");
    let c = cell(&summary, "delete/full/delete_hot_journal@bulk");
    assert_eq!(c["violating_trials"], c["crash_states"], "every image is damaged: {c}");
    for t in &trials {
        let v = t["violations"].as_array().unwrap();
        assert!(["integrity", "atomicity", "fts", "open"].iter().any(|k| v.contains(&Value::from(*k))), "{t}");
    }
}

#[test]
fn cancelled_locks_under_concurrent_writers_corrupt_and_the_plain_kill_beside_them_does_not() {
    let (code, out, summary, _) = hazard_campaign(
        "lockcancel",
        "[budget]\ntrials = 8\n[workload]\nseed_messages = 40\nseed_sessions = 4\nwriters = 2\n\
             [topology]\ntransient_rate_per_s = 40.0\n[fault.kill]\nkill_at_ms_min = 50\nkill_at_ms_max = 150\n\
             [hazard]\nlock_cancel_interval_us_max = 500\n\
             [[matrix]]\njournal_mode = [\"delete\"]\nsynchronous = [\"full\"]\nfault = [\"lock_cancel\", \"kill\"]\n",
    );
    assert_eq!(code, 0, "{out}");
    let hazard = cell(&summary, "delete/full/lock_cancel");
    assert_eq!(hazard["verdict"], "ok", "the canary must fire: {hazard}");
    assert!(hazard["violating_trials"].as_u64().unwrap() > 0, "{hazard}");
    let plain = cell(&summary, "delete/full/kill");
    assert_eq!(plain["violating_trials"], 0, "{plain}");
}

#[test]
fn a_connection_carried_across_fork_commits_in_the_child_only_without_a_rollback_journal() {
    // The child adds its own append to the transaction it inherited and commits first. With a
    // rollback journal the parent's POSIX lock (which the child does not hold) refuses it;
    // in WAL mode nothing does. Either way the oracle then judges the database.
    let (code, out, _summary, trials) = hazard_campaign(
        "fork",
        &format!(
            "[budget]\ntrials = 4\n{SMALL_WORKLOAD}\n[fault.kill]\nkill_at_ms_min = 10\nkill_at_ms_max = 40\n\
             [[matrix]]\njournal_mode = [\"wal\", \"delete\"]\nsynchronous = [\"full\"]\nfault = [\"fork_connection\"]\n"
        ),
    );
    assert_eq!(code, 0, "{out}");
    let checked: Vec<&Value> = trials.iter().filter(|t| t["outcome"]["kind"] == "checked").collect();
    for mode in ["wal/", "delete/"] {
        assert!(
            checked.iter().any(|t| t["cell"].as_str().unwrap().starts_with(mode)),
            "no {mode} trial checked: {out}"
        );
    }
    for t in checked {
        let first = t["deaths"][0]["writer"].as_u64().unwrap();
        let child = &t["acks"][(first + 1).to_string()];
        let wal = t["cell"].as_str().unwrap().starts_with("wal/");
        assert_eq!(child["acked"], if wal { 1 } else { 0 }, "{t}");
    }
}

/// A session store whose messages are NUL-sentinel JSON, written by the bundled SQLite.
fn nul_sentinel_db(dir: &Path) -> PathBuf {
    let path = dir.join("nul.sqlite");
    let cfg = crashfuzz::writer::session_store::WorkloadConfig {
        seed_messages: 120,
        seed_sessions: 4,
        json_sentinel_percent: 60,
        ..Default::default()
    };
    let mut conn = Connection::open(&path).unwrap();
    crashfuzz::writer::session_store::create_schema(&conn, &cfg).unwrap();
    crashfuzz::writer::session_store::seed(&mut conn, &cfg, 3).unwrap();
    conn.close().unwrap();
    path
}

/// The SQLite version the cross-version tests check with: one crashfuzz builds itself (once,
/// cached under the target directory), old enough to read the bundled 3.54's trigram index over
/// NUL-bearing text differently. (Of the versions crashfuzz can build, 3.39.2, 3.41.2, 3.44.0 and
/// 3.46.0 call that index malformed, as Debian 12's 3.40.1 does; 3.48.0 and later agree with
/// 3.54.)
const OTHER_SQLITE: &str = "3.41.2";

#[test]
fn check_with_another_sqlite_build_reports_where_the_two_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let db = nul_sentinel_db(dir.path());
    let o = crashfuzz(&["check", "--sqlite", OTHER_SQLITE, db.to_str().unwrap()]);
    let out = text(&o);
    // The bundled SQLite (3.54) passes its own index; the older build reads the trigram index
    // over NUL-bearing text differently and calls it malformed: the case's "index written by one
    // version, checked by another", reproduced.
    assert!(out.contains(&format!("cross-version: SQLite 3.54.1 (bundled) vs SQLite {OTHER_SQLITE}")), "{out}");
    assert_eq!(o.status.code(), Some(1), "{out}");
    let line = out.lines().find(|l| l.contains("DISAGREE ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("messages_fts_trigram integrity-check") && line.contains("bundled ok"), "{out}");
    assert!(line.contains("other database disk image is malformed (SQLITE_CORRUPT_VTAB, 267)"), "{out}");
    assert!(out.lines().any(|l| l.contains("agree    PRAGMA integrity_check")), "{out}");
    assert!(out.contains("ok: every check passed") || !out.contains("FAILED:"), "the bundled build passes: {out}");
    // A build that cannot be had is bad input, said with what can be.
    for (build, said) in [
        ("3.40.1", "it builds 3.35.4"),
        ("/nonexistent/libsqlite3.so", "no such library file"),
        (db.to_str().unwrap(), "cannot be used"),
    ] {
        let o = crashfuzz(&["check", "--sqlite", build, db.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{build}: {}", text(&o));
        assert!(text(&o).contains(said), "{build}: {}", text(&o));
    }
}

/// The test build, built on first use and cached for every later test and run.
fn other_sqlite() -> crashfuzz::sqlite::builds::ResolvedBuild {
    let spec = OTHER_SQLITE.parse().unwrap();
    crashfuzz::sqlite::builds::resolve_in(&spec, &sqlite_cache()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_sql_child_answers_with_the_library_it_loaded() {
    use crashfuzz::sqlite::child::{Outcome, SqlRun, run_sql_with};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(k PRIMARY KEY, v); INSERT INTO t VALUES (1, NULL);")
        .unwrap();
    let statements = [
        "SELECT sqlite_version(), k, v FROM t".to_string(),
        "INSERT INTO t VALUES (1, 'again')".to_string(),
        "SELECT count(*) FROM nosuch".to_string(),
    ];
    let SqlRun::Answered(a) = run_sql_with(Path::new(EXE), &other_sqlite(), Some(&db), &statements).unwrap() else {
        panic!("no answer")
    };
    assert_eq!(a.libversion, OTHER_SQLITE);
    assert!(a.sourceid.starts_with("2023-"), "{}", a.sourceid);
    assert_eq!(a.answers[0].outcome, Outcome::Rows(vec![vec![Some(OTHER_SQLITE.into()), Some("1".into()), None]]));
    let Outcome::Error(e) = &a.answers[1].outcome else { panic!("{a:?}") };
    // SQLITE_CONSTRAINT (19), extended SQLITE_CONSTRAINT_PRIMARYKEY (1555).
    assert_eq!((e.code, e.extended_code), (19, 1555), "{e:?}");
    assert_eq!(e.message, "UNIQUE constraint failed: t.k");
    let Outcome::Error(e) = &a.answers[2].outcome else { panic!("{a:?}") };
    assert_eq!((e.code, e.extended_code, e.message.as_str()), (1, 1, "no such table: nosuch"));
    // The bundled build, through the same child, is the one crashfuzz is linked with.
    let bundled = crashfuzz::sqlite::builds::ResolvedBuild::bundled();
    let SqlRun::Answered(a) = run_sql_with(Path::new(EXE), &bundled, Some(&db), &statements[..1]).unwrap() else {
        panic!("no answer")
    };
    assert_eq!(a.libversion, rusqlite::version());
    // The cached library is what build.json says, with the soname a writer can be pointed at.
    let record = read_json(&sqlite_cache().join(OTHER_SQLITE).join("build.json"));
    assert_eq!(record["sqlite_version"], OTHER_SQLITE);
    assert!(record["command"].as_array().unwrap().contains(&Value::from("-Wl,-soname,libsqlite3.so.0")), "{record}");
}

/// A shared library with SQLite's API whose `sqlite3_step` crashes: an old build that dies on
/// a damaged image, on demand.
fn crashing_sqlite(dir: &Path) -> PathBuf {
    let source = dir.join("crash.c");
    std::fs::write(
        &source,
        r#"static int handle;
const char *sqlite3_libversion(void) { return "0.0.1"; }
const char *sqlite3_sourceid(void) { return "crashes on every step"; }
int sqlite3_open_v2(const char *f, void **db, int flags, const char *vfs) { *db = &handle; return 0; }
int sqlite3_extended_result_codes(void *db, int on) { return 0; }
int sqlite3_busy_timeout(void *db, int ms) { return 0; }
int sqlite3_prepare_v2(void *db, const char *sql, int n, void **stmt, const char **tail) {
    *stmt = &handle; while (*sql) sql++; *tail = sql; return 0;
}
int sqlite3_step(void *stmt) { *(volatile int *)0 = 1; return 1; }
int sqlite3_column_count(void *stmt) { return 0; }
int sqlite3_column_type(void *stmt, int i) { return 5; }
const unsigned char *sqlite3_column_text(void *stmt, int i) { return 0; }
int sqlite3_column_bytes(void *stmt, int i) { return 0; }
int sqlite3_finalize(void *stmt) { return 0; }
const char *sqlite3_errmsg(void *db) { return "not an error"; }
int sqlite3_extended_errcode(void *db) { return 0; }
int sqlite3_close_v2(void *db) { return 0; }
"#,
    )
    .unwrap();
    let library = dir.join("libcrash.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let o = Command::new(cc).args(["-shared", "-fPIC", "-o"]).arg(&library).arg(&source).output().expect("run cc");
    assert!(o.status.success(), "{}", text(&o));
    library
}

#[test]
fn a_build_that_crashes_on_the_image_has_answered() {
    use crashfuzz::sqlite::child::{SqlRun, run_sql_with};
    let dir = tempfile::tempdir().unwrap();
    let library = crashing_sqlite(dir.path());
    let db = clean_db(dir.path());
    let build = crashfuzz::sqlite::builds::resolve_in(
        &crashfuzz::sqlite::builds::SqliteBuild::Library(library.clone()),
        &sqlite_cache(),
    )
    .unwrap();
    let run = run_sql_with(Path::new(EXE), &build, Some(&db), &["PRAGMA integrity_check".to_string()]).unwrap();
    assert_eq!(run, SqlRun::Died("signal:SIGSEGV".into()));
    // Through `check`: the crash is the other build's answer to every check, not a harness error.
    let o = crashfuzz(&["check", "--sqlite", library.to_str().unwrap(), db.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("vs SQLite 0.0.1"), "{out}");
    let line = out.lines().find(|l| l.contains("DISAGREE PRAGMA integrity_check")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("other the build crashed (signal:SIGSEGV)"), "{out}");
}

#[test]
fn a_cross_version_cell_counts_the_trigram_disagreement_as_fts_and_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "[budget]\ntrials = 2\n[workload]\nseed_messages = 40\nseed_sessions = 4\njson_sentinel_percent = 60\n\
         [hazard]\nother_sqlite = \"{OTHER_SQLITE}\"\n\
         [[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"cross_version\"]\n"
    );
    let scenario = write_scenario(dir.path(), "cross", &body);
    let (code, out, summary) = campaign(dir.path(), &scenario, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("check with SQLite {OTHER_SQLITE}")), "{out}");
    let c = cell(&summary, "wal/full/cross_version/auto-checkpoint");
    assert_eq!(c["verdict"], "ok", "{c}");
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let trials: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let checked: Vec<&Value> = trials.iter().filter(|t| t["outcome"]["kind"] == "checked").collect();
    assert!(!checked.is_empty(), "{out}");
    for t in &checked {
        assert!(t["violations"].as_array().unwrap().contains(&Value::from("fts")), "{t}");
        assert!(t.to_string().contains(&format!("SQLite {OTHER_SQLITE} says database disk image is malformed")), "{t}");
    }
    // `replay` asks the other build again: the disagreement reproduces from the kept image.
    let kept = checked.iter().find_map(|t| t["kept_failure"].as_str()).expect("a kept failure");
    let replay = crashfuzz(&["replay", dir.path().join("out").join(kept).to_str().unwrap()]);
    let said = text(&replay);
    assert_eq!(replay.status.code(), Some(1), "{said}");
    assert!(said.contains("reproduced: the same image checks fail as in the campaign (fts)"), "{said}");
    assert!(said.contains(&format!("SQLite {OTHER_SQLITE} says database disk image is malformed")), "{said}");
}

// ---------------------------------------------------------------- plans and verdicts, pinned

/// One scenario of every kind of fault plumbing: a kill, a canary killed inside a bulk
/// transaction, a power loss, an injected I/O error and a hazard acting on the files after the
/// kill. Every verdict here is deterministic (clean cells, canaries that fire on every trial).
const PINNED: &str = r#"
[budget]
trials = 10
[workload]
seed_messages = 40
seed_sessions = 4
[fault.kill]
kill_at_ms_max = 20
[fault.power_loss]
images_per_trace = 3
[fault.io_error]
op_max = 60
[[matrix]]
journal_mode = ["wal"]
synchronous = ["full"]
fault = ["kill", "power_loss", "io_error"]
[[matrix]]
journal_mode = ["off"]
synchronous = ["full"]
fault = ["sigkill_only"]
timing = ["bulk"]
[[matrix]]
journal_mode = ["delete"]
synchronous = ["full"]
fault = ["delete_hot_journal"]
timing = ["bulk"]
"#;

/// The seed-determined part of a campaign: per trial its index, seed, cell, plan and injected
/// operation; per cell its verdict.
fn plans_and_verdicts(seed: &str) -> (String, Vec<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "pinned", PINNED);
    let (code, out, summary) = campaign(dir.path(), &scenario, &["--seed", seed]);
    assert_eq!(code, 0, "{out}");
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let mut plans: Vec<(u64, String)> = lines
        .lines()
        .map(|l| {
            let t: Value = serde_json::from_str(l).unwrap();
            let fields = [&t["trial"], &t["seed"], &t["cell"], &t["plan"], &t["injection"]["op"]];
            (t["trial"].as_u64().unwrap(), serde_json::to_string(&fields).unwrap())
        })
        .collect();
    plans.sort();
    let plans: Vec<String> = plans.into_iter().map(|(_, p)| p).collect();
    let verdicts = summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["verdict"].as_str().unwrap().to_string()))
        .collect();
    (plans.join("\n"), verdicts)
}

/// A fixed seed gives the same plans and the same verdicts, release after release: the
/// generator (which cell, which writer seeds, which moment, which operation, which images) is
/// a function of the seed alone, and refactoring the engine must not change it. The hashes
/// below were taken before the trial engine was cut into phases; a change that moves them
/// changes what every recorded seed replays, and must say so.
#[test]
fn a_fixed_seed_gives_the_same_plans_and_verdicts() {
    for (seed, want_hash) in [("1", PLANS_SEED_1), ("2", PLANS_SEED_2)] {
        let (plans, verdicts) = plans_and_verdicts(seed);
        let hash =
            plans.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        assert_eq!(hash, want_hash, "seed {seed}: the plans changed:\n{plans}");
        let want: Vec<(String, String)> = [
            ("wal/full/kill/auto-checkpoint", "ok"),
            ("wal/full/power_loss/auto-checkpoint", "ok"),
            ("wal/full/io_error/auto-checkpoint", "ok"),
            ("off/full/sigkill_only@bulk", "ok"),
            ("delete/full/delete_hot_journal@bulk", "ok"),
        ]
        .iter()
        .map(|(c, v)| (c.to_string(), v.to_string()))
        .collect();
        assert_eq!(verdicts, want, "seed {seed}");
    }
}

const PLANS_SEED_1: u64 = 2763634508783267680;
const PLANS_SEED_2: u64 = 11057517883046273227;

// ---------------------------------------------------------------- the writers' SQLite build

/// The `sqlite` axis: a cell's writers run on the build it names, and say so. A kill is clean
/// on an old build too; what only the oracle's (newer) build calls damage, such as an FTS5
/// trigram index over NUL-prefixed text that the two builds index differently, is counted
/// apart and not as damage.
#[test]
fn writers_run_on_the_build_their_cell_names_and_a_kill_stays_clean_there() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "builds",
        &format!(
            "[budget]\ntrials = 6\n[database]\nmode = \"continue\"\n{SMALL_WORKLOAD}json_sentinel_percent = 50\n\
             [[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"kill\"]\n"
        ),
    );
    // The flag puts every block on these builds (the `sqlite` axis of a scenario does the same
    // per block), and the re-run line keeps it. One job: one lane runs every trial in turn.
    let builds = format!("bundled,{OTHER_SQLITE}");
    let (code, out, summary) = campaign(dir.path(), &scenario, &["--sqlite", &builds, "--jobs", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("--sqlite {builds} --seed 7)")), "{out}");
    let run = read_json(&dir.path().join("out/run.json"));
    assert_eq!(run["writer_sqlite"][OTHER_SQLITE]["version"], OTHER_SQLITE, "{run}");
    assert_eq!(run["writer_sqlite"]["bundled"]["version"], rusqlite::version(), "{run}");
    let lines = std::fs::read_to_string(dir.path().join("out/trials.jsonl")).unwrap();
    let trials: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(trials.len(), 6);
    for t in &trials {
        let want = if t["cell"].as_str().unwrap().ends_with(&format!("[{OTHER_SQLITE}]")) {
            OTHER_SQLITE
        } else {
            rusqlite::version()
        };
        // Read back inside the writer, from its own connection.
        assert_eq!(t["writer_sqlite"]["version"], want, "{t}");
        // A continued database would carry the bundled oracle's recovery write into the old
        // build's next trial: only the bundled cell continues.
        let index = t["trial"].as_u64().unwrap();
        if want == OTHER_SQLITE || index < 2 {
            assert!(t["continued_from"].is_null(), "{t}");
        } else {
            assert_eq!(t["continued_from"].as_u64(), Some(index - 2), "{t}");
        }
        // A kill is clean on every build. The old build's trigram index misses its
        // NUL-prefixed messages: half the messages, the sampled one among them every trial.
        let violations: Vec<&str> = t["violations"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        if want == OTHER_SQLITE {
            assert_eq!(violations, ["fts_miss"], "{t}");
            let miss = t["checks"].as_array().unwrap().iter().find(|c| c["check"] == "fts_miss").unwrap();
            let detail = miss["detail"].as_str().unwrap();
            assert!(detail.starts_with(&format!("SQLite {OTHER_SQLITE} (the writers'): messages_fts_trigram: MATCH ")));
            assert!(detail.contains("(its text begins with NUL), which contains it"), "{detail}");
        } else {
            assert!(violations.is_empty(), "{t}");
        }
    }
    let old = cell(&summary, &format!("wal/full/kill/auto-checkpoint[{OTHER_SQLITE}]"));
    assert_eq!(old["writer_sqlite"]["version"], OTHER_SQLITE, "{old}");
    assert_eq!(old["sqlite"], OTHER_SQLITE, "{old}");
    assert_eq!(old["verdict"], "ok", "{old}");
    assert_eq!(old["expectation"]["levels"]["fts_miss"], "allowed", "{old}");
    assert!(old["expectation"]["source"].to_string().contains("indexes trigram text that begins with NUL"), "{old}");
    assert_eq!(old["violations"]["fts_miss"], old["checked"], "{old}");
    assert_eq!(old["damaged_trials"], 0, "{old}");
    // Half the messages are NUL-prefixed JSON, which 3.41.2's trigram tokenizer indexes
    // differently: the bundled oracle calls that index malformed, the writers' build does not.
    assert_eq!(old["cross_version_trials"], old["checked"], "{old}");
    let bundled = cell(&summary, "wal/full/kill/auto-checkpoint");
    assert_eq!(bundled["cross_version_trials"], 0, "{bundled}");
    let md = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(
        md.contains(&format!(
            "| `wal/full/kill/auto-checkpoint[{OTHER_SQLITE}]` | {OTHER_SQLITE} {OTHER_SQLITE} (`2023-"
        )),
        "{md}"
    );
}

/// The production case: in WAL mode, a process that opens and closes its own descriptor of the
/// database file drops its lock there, and before SQLite 3.51.0 a lone closer then deletes the
/// WAL under it. On an old build the cell is a canary and fires; its trials count the closes
/// that happened alone.
#[test]
fn lock_cancellation_corrupts_wal_on_a_build_before_3_51_and_the_canary_fires() {
    let (code, out, summary, trials) = hazard_campaign(
        "lockcancel-old",
        &format!(
            "[budget]\ntrials = 6\n[workload]\nseed_messages = 40\nseed_sessions = 4\nwriters = 2\njson_sentinel_percent = 0\n\
             [hazard]\nlock_cancel_interval_us_max = 1000\n\
             [[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"lock_cancel\"]\nsqlite = [\"{OTHER_SQLITE}\"]\n"
        ),
    );
    assert_eq!(code, 0, "{out}");
    let c = cell(&summary, &format!("wal/full/lock_cancel/auto-checkpoint[{OTHER_SQLITE}]"));
    assert_eq!(c["verdict"], "ok", "the canary must fire: {c}");
    assert_eq!(c["expectation"]["canary"], true, "{c}");
    assert!(c["expectation"]["source"][0].as_str().unwrap().contains("3.51.0"), "{c}");
    assert!(c["violating_trials"].as_u64().unwrap() > 0, "{c}");
    assert!(c["topology"]["closes_alone"].as_u64().unwrap() > 0, "{c}");
    assert!(trials.iter().any(|t| t["closes_alone"].as_u64().unwrap_or(0) > 0), "{trials:?}");
}

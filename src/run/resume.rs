//! `crashfuzz run --resume RUN_DIR`: a campaign that was killed (SIGKILL, a lost machine)
//! continues where its `trials.jsonl` ends. Everything it needs is read back from the run
//! directory: `run.json` holds the arguments the campaign was started with ([`RunArgsRecord`])
//! and the scenario as it ran; `trials.jsonl` the trials already done. Trial `t` of a seed is
//! the same trial whoever runs it (its seed and cell come from the campaign seed and `t`
//! alone), so the resumed campaign runs exactly the indices not yet recorded and its summary is
//! the one an uninterrupted run would have written.
//!
//! Refused with exit 2 (nothing is written): a directory without `run.json` or with one written
//! by another crashfuzz version, a run of one trial (`--trial`), and a scenario that is no
//! longer what the run started with (its file edited since): results of two scenarios must not
//! share a summary. A torn last line of `trials.jsonl` (the kill came mid-append) is cut off,
//! said, and its trial runs again; any other malformed line is refused.

use crate::error::{Error, Result};
use crate::record::TrialRecord;
use crate::sqlite::builds::SqliteBuild;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The arguments a campaign was started with, resolved (the seed and job count it actually
/// used), as `run.json` records them under `args`: enough to build the same campaign again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunArgsRecord {
    /// The working directory, against which a relative scenario path resolves.
    pub cwd: PathBuf,
    /// The scenario as the user named it (an embedded name or a file).
    pub scenario: String,
    pub trials: Option<u64>,
    pub duration: Option<u64>,
    pub seed: u64,
    pub jobs: usize,
    pub shard: Option<(u64, u64)>,
    pub min_states: u64,
    pub sqlite: Vec<SqliteBuild>,
}

impl RunArgsRecord {
    /// The scenario argument to resolve now: a relative path that existed under the recorded
    /// working directory is taken from there.
    pub fn scenario_now(&self) -> String {
        let path = Path::new(&self.scenario);
        let recorded = self.cwd.join(path);
        if path.is_relative() && recorded.is_file() { recorded.display().to_string() } else { self.scenario.clone() }
    }
}

/// One resumption, as `run.json` lists them under `resumes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeNote {
    pub at: String,
    pub command: String,
    /// Trials already recorded when it started.
    pub trials_before: u64,
    /// Whether a torn last line was cut off.
    pub torn_line_dropped: bool,
}

/// What `run.json` must say for a run to be resumed.
#[derive(Deserialize)]
struct RunHead {
    run_id: String,
    started_at: String,
    command: String,
    crashfuzz_version: String,
    only_trial: Option<u64>,
    args: Option<RunArgsRecord>,
    scenario: serde_json::Value,
    #[serde(default)]
    resumes: Vec<ResumeNote>,
}

/// A run directory read back, ready to go on.
#[derive(Clone, Debug)]
pub struct Resumed {
    pub run_id: String,
    pub started_at: String,
    /// The command line that started the campaign (each resumption's is in `resumes`).
    pub command: String,
    pub args: RunArgsRecord,
    /// The scenario as run.json recorded it, to compare with the scenario resolved now.
    pub scenario: serde_json::Value,
    /// The trials already recorded, in file order.
    pub records: Vec<TrialRecord>,
    /// Earlier resumptions, and this one (the last).
    pub resumes: Vec<ResumeNote>,
}

impl Resumed {
    /// The trial indices already done.
    pub fn done(&self) -> BTreeSet<u64> {
        self.records.iter().map(|r| r.trial).collect()
    }

    /// The campaign time the recorded trials account for: the end of the latest one, counted
    /// from the campaign's start. A duration budget goes on for what remains of it.
    pub fn elapsed(&self) -> Duration {
        let end_ms = |r: &TrialRecord| {
            let t = &r.timing_us;
            r.started_ms + (t.setup + t.spawn + t.write + t.kill + t.check) / 1000
        };
        Duration::from_millis(self.records.iter().map(end_ms).max().unwrap_or(0))
    }
}

fn bad(run_dir: &Path, what: impl Into<String>) -> Error {
    Error::BadPath { path: run_dir.to_path_buf(), what: what.into(), source: std::io::Error::other("cannot resume") }
}

/// Reads `run_dir` back: `run.json` checked, `trials.jsonl` read (a torn last line cut off the
/// file, synced). `command` is this resumption's command line.
pub fn open(run_dir: &Path, command: &str) -> Result<Resumed> {
    let run_json = run_dir.join("run.json");
    let text = std::fs::read_to_string(&run_json).map_err(|source| Error::BadPath {
        path: run_json.clone(),
        what: "cannot read (is this a crashfuzz run directory?)".into(),
        source,
    })?;
    let head: RunHead = serde_json::from_str(&text)
        .map_err(|e| bad(&run_json, format!("not a run.json crashfuzz can resume from: {e}")))?;
    let ours = env!("CARGO_PKG_VERSION");
    if head.crashfuzz_version != ours {
        return Err(bad(
            &run_json,
            format!(
                "crashfuzz_version: written by crashfuzz {}, this is {ours}; resume it with that version or start a new run",
                head.crashfuzz_version
            ),
        ));
    }
    if let Some(t) = head.only_trial {
        return Err(bad(&run_json, format!("only_trial: a run of trial {t} alone; run it again instead")));
    }
    let Some(args) = head.args else {
        return Err(bad(&run_json, "args: missing (written before runs recorded their arguments)"));
    };
    let trials_path = run_dir.join("trials.jsonl");
    let (records, torn) = read_and_mend(&trials_path)?;
    if torn {
        eprintln!(
            "crashfuzz: {}: the last line was torn (the campaign was killed while appending it); it was cut off and its trial runs again",
            trials_path.display()
        );
    }
    let mut resumes = head.resumes;
    resumes.push(ResumeNote {
        at: chrono::Utc::now().to_rfc3339(),
        command: command.to_string(),
        trials_before: records.len() as u64,
        torn_line_dropped: torn,
    });
    Ok(Resumed {
        run_id: head.run_id,
        started_at: head.started_at,
        command: head.command,
        args,
        scenario: head.scenario,
        records,
        resumes,
    })
}

/// Refuses a scenario that is not the one the run started with, naming the first difference.
pub fn same_scenario(run_dir: &Path, recorded: &serde_json::Value, now: &serde_json::Value) -> Result<()> {
    match first_difference(recorded, now, String::new()) {
        None => Ok(()),
        Some(at) => Err(bad(
            &run_dir.join("run.json"),
            format!(
                "scenario: changed since this run started (first difference at `{at}`); a resumed campaign must run the scenario it started with"
            ),
        )),
    }
}

/// The path of the first place two JSON values differ, if they do.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => first_difference(u, v, format!("{at}.{k}")),
                _ => Some(format!("{at}.{k}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (u, v))| first_difference(u, v, format!("{at}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(if at.is_empty() { ".".to_string() } else { at }),
    }
}

/// Every record of `path` (read as `crashfuzz report` reads it), the file mended so that the
/// next append starts a line: a torn last line (no newline, not a record) is cut off and `true`
/// returned; a last record missing only its newline gets it. Both synced. Any other bad line is
/// an error naming it.
fn read_and_mend(path: &Path) -> Result<(Vec<TrialRecord>, bool)> {
    let mut records = Vec::new();
    let torn = match crate::report::merge::read_trials(path, |_, record| {
        records.push(record);
        Ok(())
    }) {
        Ok((_, torn)) => torn,
        // Killed before its first trial ended (while building templates, say): nothing to keep.
        Err(Error::BadPath { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok((records, false));
        }
        Err(e) => return Err(e),
    };
    // The campaign appends a record and its newline in one write: only the last line can lack
    // its newline. Read once more, at resume time only.
    let end_on_a_line = || -> std::io::Result<()> {
        let bytes = std::fs::read(path)?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole == bytes.len() {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
        if torn {
            f.set_len(whole as u64)?
        } else {
            f.write_all(b"\n")?
        }
        f.sync_all()
    };
    end_on_a_line().map_err(|source| Error::BadPath {
        path: path.to_path_buf(),
        what: if torn { "cannot cut the torn last line" } else { "cannot end the last record's line" }.into(),
        source,
    })?;
    Ok((records, torn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let a = json!({"name": "x", "matrix": [{"journal_mode": ["wal"]}], "budget": {"trials": 5}});
        assert_eq!(first_difference(&a, &a.clone(), String::new()), None);
        let b = json!({"name": "x", "matrix": [{"journal_mode": ["delete"]}], "budget": {"trials": 5}});
        assert_eq!(first_difference(&a, &b, String::new()).as_deref(), Some(".matrix[0].journal_mode[0]"));
        let c = json!({"name": "x", "matrix": [{"journal_mode": ["wal"]}], "budget": {"trials": 5}, "extra": 1});
        assert_eq!(first_difference(&a, &c, String::new()).as_deref(), Some(".extra"));
        let d = json!({"name": "x", "matrix": [], "budget": {"trials": 5}});
        assert_eq!(first_difference(&a, &d, String::new()).as_deref(), Some(".matrix"));
    }

    /// A torn last line is cut off; a last record missing only its newline gets one; a file
    /// that never was written holds nothing; the file ends on a line in each case.
    #[test]
    fn the_trials_file_is_mended_to_end_on_a_line() {
        use crate::report::testkit::{record, wal};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.jsonl");
        let line = |t| serde_json::to_string(&record(t, &wal(), &[], &[5])).unwrap();
        let (a, b) = (line(0), line(3));
        std::fs::write(&path, format!("{a}\n{}", &b[..b.len() / 2])).unwrap();
        let (records, torn) = read_and_mend(&path).unwrap();
        assert_eq!((records.len(), torn), (1, true));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{a}\n"));

        std::fs::write(&path, format!("{a}\n{b}")).unwrap();
        let (records, torn) = read_and_mend(&path).unwrap();
        assert_eq!((records.iter().map(|r| r.trial).collect::<Vec<_>>(), torn), (vec![0, 3], false));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{a}\n{b}\n"));

        let (records, torn) = read_and_mend(&dir.path().join("none.jsonl")).unwrap();
        assert!(records.is_empty() && !torn);
        // A bad line that is not the last is an error naming the file and the line.
        std::fs::write(&path, format!("{{\"trial\": 1\n{a}\n")).unwrap();
        assert!(read_and_mend(&path).unwrap_err().to_string().contains("trials.jsonl:1:"));
    }

    #[test]
    fn a_relative_scenario_resolves_against_the_recorded_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.toml"), "").unwrap();
        let record = |scenario: &str| RunArgsRecord {
            cwd: dir.path().to_path_buf(),
            scenario: scenario.into(),
            trials: None,
            duration: None,
            seed: 1,
            jobs: 1,
            shard: None,
            min_states: 1,
            sqlite: Vec::new(),
        };
        assert_eq!(record("s.toml").scenario_now(), dir.path().join("s.toml").display().to_string());
        // An embedded name stays a name.
        assert_eq!(record("hazards").scenario_now(), "hazards");
    }
}

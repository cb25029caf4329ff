//! Checking a database with another SQLite build: its command-line shell runs `PRAGMA
//! integrity_check` and the FTS5 `integrity-check` command of every FTS5 table, and the answers
//! are compared with the bundled SQLite's. The case behind crashfuzz (see the README) had an FTS5
//! trigram index written by one SQLite version and checked by another; a disagreement between
//! builds is its own finding, distinct from either build's verdict.
//!
//! The other build always works on a copy (its recovery may change the files); the shell is
//! run with `-bail` and one statement per invocation so that each answer is attributable.

use crate::check::ViolationKind;
use anyhow::{Context, anyhow};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One check as both builds answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compared {
    /// e.g. `PRAGMA integrity_check` or `messages_fts_trigram integrity-check`.
    pub what: String,
    /// The kind of check it belongs to.
    pub kind: ViolationKind,
    /// `Ok(())` or the error / the first lines of a non-`ok` answer.
    pub bundled: Result<(), String>,
    pub other: Result<(), String>,
}

impl Compared {
    pub fn agrees(&self) -> bool {
        self.bundled.is_ok() == self.other.is_ok()
    }
}

/// The other build's answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossReport {
    /// `sqlite3 --version` of the other build, first field.
    pub other_version: String,
    pub bundled_version: String,
    pub checks: Vec<Compared>,
}

impl CrossReport {
    pub fn disagreements(&self) -> Vec<&Compared> {
        self.checks.iter().filter(|c| !c.agrees()).collect()
    }

    /// The disagreements as violations of their kind (for a campaign's `cross_version`
    /// cell): `(kind, detail)`.
    pub fn as_violations(&self) -> Vec<(ViolationKind, String)> {
        self.disagreements()
            .into_iter()
            .map(|c| {
                let side = |r: &Result<(), String>| match r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => e.clone(),
                };
                (
                    c.kind,
                    format!(
                        "cross-version: {} — SQLite {} says {}, SQLite {} says {}",
                        c.what,
                        self.bundled_version,
                        side(&c.bundled),
                        self.other_version,
                        side(&c.other)
                    ),
                )
            })
            .collect()
    }
}

/// Resolves `cli` (a path, or a name looked up in PATH) to an executable file.
pub fn find_cli(cli: &str) -> Option<PathBuf> {
    let candidate = Path::new(cli);
    if cli.contains('/') {
        return candidate.is_file().then(|| candidate.to_path_buf());
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(cli)).find(|p| p.is_file())
}

/// Runs one statement in the other build's shell; `Ok` when it printed nothing but `ok`
/// lines and exited 0.
fn run_other(cli: &Path, db: &Path, sql: &str) -> anyhow::Result<Result<(), String>> {
    let out =
        Command::new(cli).arg("-bail").arg(db).arg(sql).output().with_context(|| format!("run {}", cli.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let noise: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty() && l.trim() != "ok").collect();
    Ok(if out.status.success() && noise.is_empty() && stderr.trim().is_empty() {
        Ok(())
    } else {
        let mut msg: Vec<String> = noise.iter().take(3).map(|s| s.to_string()).collect();
        msg.extend(stderr.lines().take(3).map(str::to_string));
        Err(msg.join("; "))
    })
}

/// The bundled build's answer to the same statement, on its own copy.
fn run_bundled(db: &Path, sql: &str, is_pragma: bool) -> anyhow::Result<Result<(), String>> {
    // An image that does not open is an answer ("unable to open", "not a database"), not a
    // failure of the comparison.
    let conn = match Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE) {
        Ok(conn) => conn,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if is_pragma {
        let lines: Result<Vec<String>, rusqlite::Error> =
            conn.prepare(sql).and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
        return Ok(match lines {
            Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(()),
            Ok(lines) => Err(lines.into_iter().take(3).collect::<Vec<_>>().join("; ")),
            Err(e) => Err(e.to_string()),
        });
    }
    Ok(conn.execute_batch(sql).map_err(|e| e.to_string()))
}

/// Copies the image (`db` and its `-wal`/`-journal`) into a fresh directory.
fn copy_to(db: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    crate::trial::copy_image(db, dir).with_context(|| format!("copy {}", db.display()))?;
    Ok(dir.join(db.file_name().ok_or_else(|| anyhow!("{}: no file name", db.display()))?))
}

/// Checks `db` with both builds: `PRAGMA integrity_check` and every FTS5 table's
/// `integrity-check`, each build on its own copy of the image.
pub fn cross_check(db: &Path, cli: &Path) -> anyhow::Result<CrossReport> {
    let version = Command::new(cli).arg("--version").output().with_context(|| format!("run {}", cli.display()))?;
    let other_version =
        String::from_utf8_lossy(&version.stdout).split_whitespace().next().unwrap_or("unknown").to_string();
    let tmp = crate::scratch::create(None, "cross-")?;
    // The list of FTS5 tables, read by the bundled build from its own copy.
    let tables: Vec<String> = {
        let copy = copy_to(db, &tmp.path().join("list"))?;
        let names: rusqlite::Result<Vec<String>> =
            Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE).and_then(|conn| {
                conn.prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' \
                 AND lower(sql) LIKE '%using fts5%' ORDER BY name",
                )
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            });
        // A schema that cannot be read lists no table: the pragma's answers say why.
        names.unwrap_or_default()
    };
    let mut statements = vec![("PRAGMA integrity_check".to_string(), ViolationKind::Integrity, true)];
    for t in &tables {
        let q = format!("\"{}\"", t.replace('"', "\"\""));
        statements.push((format!("INSERT INTO {q}({q}) VALUES('integrity-check');"), ViolationKind::Fts, false));
    }
    let mut checks = Vec::new();
    for (i, (sql, kind, is_pragma)) in statements.into_iter().enumerate() {
        let mine = copy_to(db, &tmp.path().join(format!("bundled-{i}")))?;
        let theirs = copy_to(db, &tmp.path().join(format!("other-{i}")))?;
        let what = if is_pragma { sql.clone() } else { format!("{} integrity-check", tables[i - 1]) };
        checks.push(Compared {
            what,
            kind,
            bundled: run_bundled(&mine, &sql, is_pragma)?,
            other: run_other(cli, &theirs, &sql)?,
        });
    }
    Ok(CrossReport { other_version, bundled_version: rusqlite::version().to_string(), checks })
}

/// Folds cross-version disagreements into a check report's results (as violations of the
/// check each statement belongs to).
pub fn fold_into(results: &mut Vec<crate::check::CheckResult>, report: &CrossReport) {
    for (kind, detail) in report.as_violations() {
        crate::check::CheckReport::add_violation(results, kind, detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cli_is_not_found() {
        assert_eq!(find_cli("/nonexistent/sqlite3"), None);
        assert_eq!(find_cli("crashfuzz-no-such-program"), None);
    }

    #[test]
    fn disagreements_become_violations_of_their_kind() {
        let report = CrossReport {
            other_version: "3.40.1".into(),
            bundled_version: "3.54.1".into(),
            checks: vec![
                Compared {
                    what: "PRAGMA integrity_check".into(),
                    kind: ViolationKind::Integrity,
                    bundled: Ok(()),
                    other: Ok(()),
                },
                Compared {
                    what: "t integrity-check".into(),
                    kind: ViolationKind::Fts,
                    bundled: Ok(()),
                    other: Err("database disk image is malformed".into()),
                },
            ],
        };
        let v = report.as_violations();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, ViolationKind::Fts);
        assert!(v[0].1.contains("3.40.1 says database disk image is malformed"), "{}", v[0].1);
    }
}

//! Checking a database with another SQLite build: both builds run `PRAGMA integrity_check` and
//! the FTS5 `integrity-check` command of every FTS5 table, each in an `__sql` child
//! ([`crate::sqlite::child`]) on its own copy of the image, and their answers are compared. The case
//! behind crashfuzz (see the README) had an FTS5 trigram index written by one SQLite version and checked by
//! another; a disagreement between builds is its own finding, distinct from either build's
//! verdict.
//!
//! Each copy serves one statement of one build (a build's recovery may change the files), so
//! that each answer is attributable. A build that crashes on the image has answered: its death
//! is its verdict on that statement. The versions named are those the libraries report.

use crate::base::dbfiles::copy_image;
use crate::record::checks::ViolationKind;
use crate::sqlite::builds::ResolvedBuild;
use crate::sqlite::child::{self, Outcome, SqlRun};
use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

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
    /// `sqlite3_libversion()` of the other build.
    pub other_version: String,
    /// `sqlite3_libversion()` of the bundled build.
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

/// A build's answer to one statement: `Ok` for a pragma that answered one `ok` row or a
/// command that succeeded; else the first rows, the error, or how the build died.
fn judge(build: &ResolvedBuild, run: SqlRun, is_pragma: bool) -> anyhow::Result<Result<(), String>> {
    let answers = match run {
        SqlRun::Answered(a) => a,
        SqlRun::Died(how) => return Ok(Err(format!("the build crashed ({how})"))),
        SqlRun::TimedOut(after) => return Ok(Err(format!("no answer in {} s (killed)", after.as_secs()))),
        SqlRun::Unloadable(said) => bail!("SQLite build {build} cannot be loaded: {said}"),
    };
    let [answer] = answers.answers.as_slice() else {
        bail!("SQLite build {build} gave {} answers to one statement", answers.answers.len());
    };
    Ok(match &answer.outcome {
        Outcome::Error(e) => Err(e.to_string()),
        Outcome::Rows(_) if !is_pragma => Ok(()),
        Outcome::Rows(rows) => {
            let lines: Vec<String> = rows
                .iter()
                .map(|r| r.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect::<Vec<_>>().join("|"))
                .collect();
            if lines == ["ok"] { Ok(()) } else { Err(lines.into_iter().take(3).collect::<Vec<_>>().join("; ")) }
        }
    })
}

/// Checks `db` with the bundled build and `other`: `PRAGMA integrity_check` and every FTS5
/// table's `integrity-check`, each build on its own copy of the image.
pub fn cross_check(db: &Path, other: &ResolvedBuild) -> anyhow::Result<CrossReport> {
    let exe = crate::base::process::own_exe().context("locate the crashfuzz executable")?;
    let bundled = ResolvedBuild::bundled();
    let bundled_version = child::identify(&exe, &bundled)?.version;
    let other_version = child::identify(&exe, other)?.version;
    let tmp = crate::base::scratch::create(None, "cross-")?;
    // The list of FTS5 tables, read by the bundled build from its own copy.
    let tables: Vec<String> = {
        let copy = copy_image(db, &tmp.path().join("list"))?;
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
    let mut statements =
        vec![("PRAGMA integrity_check".to_string(), "PRAGMA integrity_check".to_string(), ViolationKind::Integrity)];
    for t in &tables {
        let q = format!("\"{}\"", t.replace('"', "\"\""));
        statements.push((
            format!("{t} integrity-check"),
            format!("INSERT INTO {q}({q}) VALUES('integrity-check');"),
            ViolationKind::Fts,
        ));
    }
    let mut checks = Vec::new();
    for (i, (what, sql, kind)) in statements.into_iter().enumerate() {
        let is_pragma = kind == ViolationKind::Integrity;
        let answer = |build: &ResolvedBuild, side: &str| -> anyhow::Result<Result<(), String>> {
            let copy = copy_image(db, &tmp.path().join(format!("{side}-{i}")))?;
            let run = child::run_sql_with(&exe, build, Some(&copy), std::slice::from_ref(&sql))?;
            judge(build, run, is_pragma)
        };
        let bundled_answer = answer(&bundled, "bundled")?;
        let other_answer = answer(other, "other")?;
        checks.push(Compared { what, kind, bundled: bundled_answer, other: other_answer });
    }
    Ok(CrossReport { other_version, bundled_version, checks })
}

/// Folds cross-version disagreements into a check report's results (as violations of the
/// check each statement belongs to).
pub fn fold_into(results: &mut Vec<crate::record::checks::CheckResult>, report: &CrossReport) {
    for (kind, detail) in report.as_violations() {
        crate::record::checks::add_violation(results, kind, detail);
    }
}

/// Keeps, of `results`' `integrity` and `fts` violations, only those the writers' own build
/// agrees with (`report`: the image checked by the bundled build and by the writers'). Where the
/// bundled build alone calls the image damaged, the violation is withdrawn and returned as a
/// cross-version disagreement, in words: two builds that index the same text differently (a
/// trigram index over NUL-prefixed text) call each other's index malformed, and that is not
/// damage of the file.
pub fn keep_agreed(results: &mut [crate::record::checks::CheckResult], report: &CrossReport) -> Vec<String> {
    use crate::record::checks::CheckOutcome;
    let mut disagreements = Vec::new();
    for kind in [ViolationKind::Integrity, ViolationKind::Fts] {
        let of_kind: Vec<&Compared> = report.checks.iter().filter(|c| c.kind == kind).collect();
        let writers_see_damage = of_kind.iter().any(|c| c.other.is_err());
        let bundled_alone: Vec<&&Compared> = of_kind.iter().filter(|c| c.bundled.is_err() && c.other.is_ok()).collect();
        let Some(result) = results.iter_mut().find(|r| r.check == kind) else { continue };
        let CheckOutcome::Violation { detail } = &result.outcome else { continue };
        if writers_see_damage || bundled_alone.is_empty() {
            continue;
        }
        disagreements.push(format!(
            "{}: SQLite {} says {detail}; SQLite {} (the writers') says ok",
            kind.as_str(),
            report.bundled_version,
            report.other_version
        ));
        result.outcome = CheckOutcome::Pass;
    }
    disagreements
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(outcome: Outcome) -> SqlRun {
        SqlRun::Answered(crate::sqlite::child::SqlAnswers {
            libversion: "3.41.2".into(),
            sourceid: "x".into(),
            answers: vec![crate::sqlite::child::Answer { sql: "s".into(), outcome }],
        })
    }

    #[test]
    fn answers_are_judged_ok_only_when_the_check_says_so() {
        let b = ResolvedBuild::bundled();
        let rows = |v: &[&str]| Outcome::Rows(v.iter().map(|r| vec![Some(r.to_string())]).collect());
        assert_eq!(judge(&b, answered(rows(&["ok"])), true).unwrap(), Ok(()));
        assert_eq!(
            judge(&b, answered(rows(&["row 3 missing", "page 4 unused", "x", "y"])), true).unwrap(),
            Err("row 3 missing; page 4 unused; x".into())
        );
        assert_eq!(judge(&b, answered(rows(&[])), false).unwrap(), Ok(()));
        let malformed = crate::sqlite::child::SqlError {
            code: 11,
            extended_code: 267,
            message: "database disk image is malformed".into(),
        };
        assert_eq!(
            judge(&b, answered(Outcome::Error(malformed)), false).unwrap(),
            Err("database disk image is malformed (SQLITE_CORRUPT_VTAB, 267)".into())
        );
        // A build that crashed has answered; one that cannot be loaded has not.
        assert_eq!(
            judge(&b, SqlRun::Died("signal:SIGSEGV".into()), true).unwrap(),
            Err("the build crashed (signal:SIGSEGV)".into())
        );
        assert!(judge(&b, SqlRun::Unloadable("no such file".into()), true).is_err());
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

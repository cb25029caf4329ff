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
use crate::oracle::ledger::MatchSample;
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

/// The checks both builds run on an image: `PRAGMA integrity_check`, then every FTS5 table's
/// `integrity-check` (the table list read by the bundled build from its own copy in `dir`), as
/// `(what, sql, kind)`.
fn statements(db: &Path, dir: &Path) -> anyhow::Result<Vec<(String, String, ViolationKind)>> {
    let copy = copy_image(db, &dir.join("list"))?;
    let names: rusqlite::Result<Vec<String>> = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .and_then(|conn| {
            conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' \
                 AND lower(sql) LIKE '%using fts5%' ORDER BY name",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        });
    // A schema that cannot be read lists no table: the pragma's answers say why.
    let tables = names.unwrap_or_default();
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
    Ok(statements)
}

/// `build`'s answer to one statement, on its own copy of `db` at `copy_dir`.
fn answer(
    exe: &Path,
    build: &ResolvedBuild,
    db: &Path,
    copy_dir: &Path,
    sql: &str,
    kind: ViolationKind,
) -> anyhow::Result<Result<(), String>> {
    let copy = copy_image(db, copy_dir)?;
    let run = child::run_sql_with(exe, build, Some(&copy), &[sql.to_string()])?;
    judge(build, run, kind == ViolationKind::Integrity)
}

/// Checks `db` with the bundled build and `other`: `PRAGMA integrity_check` and every FTS5
/// table's `integrity-check`, each build on its own copy of the image.
pub fn cross_check(db: &Path, other: &ResolvedBuild) -> anyhow::Result<CrossReport> {
    let exe = crate::base::process::own_exe().context("locate the crashfuzz executable")?;
    let bundled = ResolvedBuild::bundled();
    let bundled_version = child::identify(&exe, &bundled)?.version;
    let other_version = child::identify(&exe, other)?.version;
    let tmp = crate::base::scratch::create(None, "cross-")?;
    let mut checks = Vec::new();
    for (i, (what, sql, kind)) in statements(db, tmp.path())?.into_iter().enumerate() {
        let bundled_answer = answer(&exe, &bundled, db, &tmp.path().join(format!("bundled-{i}")), &sql, kind)?;
        let other_answer = answer(&exe, other, db, &tmp.path().join(format!("other-{i}")), &sql, kind)?;
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

/// Asks the writers' build the oracle's MATCH queries (`samples`), all in one child on its own
/// copy of the image: per sample, `Ok(true)` when the index finds its message, `Ok(false)` when
/// it misses it, `Err` with the error (or how the build died) when the query failed.
pub fn ask_matches(
    db: &Path,
    build: &ResolvedBuild,
    samples: &[MatchSample],
) -> anyhow::Result<Vec<Result<bool, String>>> {
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    let exe = crate::base::process::own_exe().context("locate the crashfuzz executable")?;
    let tmp = crate::base::scratch::create(None, "match-")?;
    let copy = copy_image(db, tmp.path())?;
    let statements: Vec<String> = samples.iter().map(MatchSample::includes_sql).collect();
    let answers = match child::run_sql_with(&exe, build, Some(&copy), &statements)? {
        SqlRun::Answered(a) => a.answers,
        SqlRun::Died(how) => return Ok(vec![Err(format!("the build crashed ({how})")); samples.len()]),
        SqlRun::TimedOut(after) => {
            return Ok(vec![Err(format!("no answer in {} s (killed)", after.as_secs())); samples.len()]);
        }
        SqlRun::Unloadable(said) => bail!("SQLite build {build} cannot be loaded: {said}"),
    };
    if answers.len() != samples.len() {
        bail!("SQLite build {build} gave {} answers to {} queries", answers.len(), samples.len());
    }
    answers
        .into_iter()
        .map(|a| match a.outcome {
            Outcome::Error(e) => Ok(Err(e.to_string())),
            Outcome::Rows(rows) => match rows.as_slice() {
                [row] if row.len() == 1 => match row[0].as_deref().and_then(|c| c.parse::<i64>().ok()) {
                    Some(n) => Ok(Ok(n > 0)),
                    None => bail!("SQLite build {build} answered {:?} to a count", row[0]),
                },
                _ => bail!("SQLite build {build} answered {} rows to a count", rows.len()),
            },
        })
        .collect()
}

/// One integrity check as the writers' build answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritersCheck {
    /// e.g. `PRAGMA integrity_check` or `messages_fts_trigram integrity-check`.
    pub what: String,
    pub kind: ViolationKind,
    /// `Ok(())` or the error / the first lines of a non-`ok` answer.
    pub answer: Result<(), String>,
}

/// What the writers' build said about an image the oracle checked: its own integrity checks
/// (the statements of [`cross_check`], its side only: the oracle's results are the bundled
/// side) and its answers to the oracle's MATCH queries ([`ask_matches`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritersView {
    /// `sqlite3_libversion()` of the oracle's (bundled) build and of the writers'.
    pub bundled_version: String,
    pub writers_version: String,
    pub checks: Vec<WritersCheck>,
    /// One per sample of the oracle's report, in order.
    pub matches: Vec<Result<bool, String>>,
}

/// The writers' build's integrity checks of `db` ([`WritersView::checks`]).
pub fn writers_checks(db: &Path, build: &ResolvedBuild) -> anyhow::Result<Vec<WritersCheck>> {
    let exe = crate::base::process::own_exe().context("locate the crashfuzz executable")?;
    let tmp = crate::base::scratch::create(None, "writers-")?;
    let mut checks = Vec::new();
    for (i, (what, sql, kind)) in statements(db, tmp.path())?.into_iter().enumerate() {
        let answer = answer(&exe, build, db, &tmp.path().join(format!("check-{i}")), &sql, kind)?;
        checks.push(WritersCheck { what, kind, answer });
    }
    Ok(checks)
}

/// The verdict of a cell whose writers run on another build than the oracle's: what both builds
/// agree on. `results` are the oracle's (bundled) results on the image, `oracle` its report.
/// - `integrity`, `fts`: a violation stays when the writers' build sees damage of that kind too
///   (or, for `fts`, when an index's rows differ from the table it indexes: plain tables, read
///   alike by every build). Damage only one build sees is withdrawn and returned as a
///   cross-version disagreement, in words: two builds that index the same text differently (a
///   trigram index over NUL-prefixed text) call each other's index malformed, and that is not
///   damage of the file.
/// - `fts_miss`: the writers' build's answers replace the oracle's. A message it misses is what
///   the application's search misses; one only the oracle's build misses is a disagreement.
pub fn reconcile(
    results: &mut [crate::record::checks::CheckResult],
    oracle: &crate::oracle::CheckReport,
    writers: &WritersView,
) -> Vec<String> {
    use crate::record::checks::CheckOutcome;
    let (bundled_version, writers_version) = (&writers.bundled_version, &writers.writers_version);
    let mut disagreements = Vec::new();
    for kind in [ViolationKind::Integrity, ViolationKind::Fts] {
        let writers_damage: Vec<String> = writers
            .checks
            .iter()
            .filter(|c| c.kind == kind)
            .filter_map(|c| c.answer.as_ref().err().map(|e| format!("{}: {e}", c.what)))
            .collect();
        let Some(result) = results.iter_mut().find(|r| r.check == kind) else { continue };
        match (&result.outcome, writers_damage.is_empty()) {
            (CheckOutcome::Violation { detail }, true) if !(kind == ViolationKind::Fts && oracle.fts_rows_differ) => {
                disagreements.push(format!(
                    "{}: SQLite {bundled_version} says {detail}; SQLite {writers_version} (the writers') says ok",
                    kind.as_str()
                ));
                result.outcome = CheckOutcome::Pass;
            }
            (CheckOutcome::Pass, false) => disagreements.push(format!(
                "{}: SQLite {writers_version} (the writers') says {}; SQLite {bundled_version} says ok",
                kind.as_str(),
                writers_damage.join("; ")
            )),
            (CheckOutcome::Violation { .. }, _)
            | (CheckOutcome::Pass, true)
            | (CheckOutcome::Blocked { .. } | CheckOutcome::CouldNotRun { .. }, _) => {}
        }
    }
    let Some(result) = results.iter_mut().find(|r| r.check == ViolationKind::FtsMiss) else { return disagreements };
    if !matches!(result.outcome, CheckOutcome::Pass | CheckOutcome::Violation { .. }) {
        return disagreements;
    }
    let mut misses = Vec::new();
    let mut only_oracle_misses = Vec::new();
    for ((sample, oracle_found), writers) in oracle.match_samples.iter().zip(&writers.matches) {
        match (writers, oracle_found) {
            (Ok(true), true) => {}
            (Ok(true), false) => only_oracle_misses.push(sample.miss()),
            (Ok(false), _) => misses.push(sample.miss()),
            (Err(e), _) => misses.push(format!("{}: MATCH {} fails: {e}", sample.table, sample.query())),
        }
    }
    if !only_oracle_misses.is_empty() {
        disagreements.push(format!(
            "fts_miss: SQLite {bundled_version}: {}; SQLite {writers_version} (the writers') finds them",
            only_oracle_misses.join("; ")
        ));
    }
    result.outcome = match crate::oracle::outcome_of(misses) {
        CheckOutcome::Violation { detail } => {
            CheckOutcome::Violation { detail: format!("SQLite {writers_version} (the writers'): {detail}") }
        }
        outcome => outcome,
    };
    disagreements
}

/// The writers' build's view of an image the oracle checked (`report`, its results
/// reconciled in place): its integrity checks and its answers to the oracle's MATCH queries,
/// each on its own copy of `pristine_db`; returns the cross-version disagreements. An image that
/// did not open is left as the oracle found it.
pub fn agree_with_writers(
    pristine_db: &Path,
    build: &ResolvedBuild,
    report: &mut crate::oracle::CheckReport,
) -> anyhow::Result<Vec<String>> {
    use crate::record::checks::CheckOutcome;
    let opened = report.results.iter().any(|r| r.check == ViolationKind::Open && r.outcome == CheckOutcome::Pass);
    if !opened {
        return Ok(Vec::new());
    }
    let samples: Vec<MatchSample> = report.match_samples.iter().map(|(s, _)| s.clone()).collect();
    let exe = crate::base::process::own_exe().context("locate the crashfuzz executable")?;
    let writers = WritersView {
        bundled_version: rusqlite::version().to_string(),
        writers_version: child::identify(&exe, build)?.version,
        checks: writers_checks(pristine_db, build)?,
        matches: ask_matches(pristine_db, build, &samples)?,
    };
    let mut results = std::mem::take(&mut report.results);
    let disagreements = reconcile(&mut results, report, &writers);
    report.results = results;
    Ok(disagreements)
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
        let compared =
            |what: &str, kind, other: Result<(), String>| Compared { what: what.into(), kind, bundled: Ok(()), other };
        let report = CrossReport {
            other_version: "3.41.2".into(),
            bundled_version: "3.54.1".into(),
            checks: vec![
                compared("PRAGMA integrity_check", ViolationKind::Integrity, Ok(())),
                compared("t integrity-check", ViolationKind::Fts, Err("database disk image is malformed".into())),
            ],
        };
        let v = report.as_violations();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, ViolationKind::Fts);
        assert!(v[0].1.contains("3.41.2 says database disk image is malformed"), "{}", v[0].1);
    }

    fn sample(id: i64) -> MatchSample {
        MatchSample { table: "messages_fts_trigram".into(), id, term: "json".into(), nul_prefixed: true }
    }

    fn result(check: ViolationKind, detail: Option<&str>) -> CheckResult {
        let outcome = match detail {
            Some(d) => CheckOutcome::Violation { detail: d.into() },
            None => CheckOutcome::Pass,
        };
        CheckResult { check, outcome, elapsed_us: 0 }
    }

    /// The oracle's results on an image, and its report with `samples` (each with whether the
    /// oracle found it).
    fn oracle(
        integrity: Option<&str>,
        fts: Option<&str>,
        rows_differ: bool,
        samples: Vec<(MatchSample, bool)>,
    ) -> (Vec<CheckResult>, crate::oracle::CheckReport) {
        let misses: Vec<String> = samples.iter().filter(|(_, f)| !f).map(|(s, _)| s.miss()).collect();
        let results = vec![
            result(ViolationKind::Open, None),
            result(ViolationKind::Integrity, integrity),
            result(ViolationKind::Fts, fts),
            CheckResult { check: ViolationKind::FtsMiss, outcome: crate::oracle::outcome_of(misses), elapsed_us: 0 },
        ];
        let report = crate::oracle::CheckReport {
            results: results.clone(),
            present: Default::default(),
            session_store: true,
            fts_rows_differ: rows_differ,
            match_samples: samples,
        };
        (results, report)
    }

    fn writers(integrity: Result<(), &str>, fts: Result<(), &str>, matches: Vec<Result<bool, String>>) -> WritersView {
        let check = |what: &str, kind, answer: Result<(), &str>| WritersCheck {
            what: what.into(),
            kind,
            answer: answer.map_err(str::to_string),
        };
        WritersView {
            bundled_version: "3.54.1".into(),
            writers_version: "3.41.2".into(),
            checks: vec![
                check("PRAGMA integrity_check", ViolationKind::Integrity, integrity),
                check("messages_fts_trigram integrity-check", ViolationKind::Fts, fts),
            ],
            matches,
        }
    }

    fn violated(results: &[CheckResult]) -> Vec<ViolationKind> {
        results.iter().filter(|r| matches!(r.outcome, CheckOutcome::Violation { .. })).map(|r| r.check).collect()
    }

    use crate::record::checks::{CheckOutcome, CheckResult};

    /// An index an old build wrote over NUL-prefixed text: the bundled build calls it malformed
    /// and misses the message; the writers' build calls it sound and misses the message too.
    /// Not damage; a miss the application's search makes.
    #[test]
    fn what_only_the_oracles_build_calls_damage_is_withdrawn_and_the_writers_misses_are_fts_miss() {
        let malformed = "messages_fts_trigram: integrity-check: malformed inverted index";
        let (mut results, report) =
            oracle(Some(malformed), Some(malformed), false, vec![(sample(7), false), (sample(9), true)]);
        let said = reconcile(&mut results, &report, &writers(Ok(()), Ok(()), vec![Ok(false), Ok(true)]));
        assert_eq!(violated(&results), vec![ViolationKind::FtsMiss], "{results:?}");
        let CheckOutcome::Violation { detail } = &results[3].outcome else { unreachable!() };
        assert!(
            detail.starts_with("SQLite 3.41.2 (the writers'): ") && detail.contains("misses message 7"),
            "{detail}"
        );
        assert!(!detail.contains("message 9"), "{detail}");
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("integrity: SQLite 3.54.1 says ") && said[0].ends_with("(the writers') says ok"));
        assert!(said[1].starts_with("fts: SQLite 3.54.1 says messages_fts_trigram"), "{said:?}");
    }

    /// The other direction: the bundled build wrote, or agrees; the writers' build calls the
    /// index malformed. Still not damage both see: a disagreement, the verdict clean.
    #[test]
    fn what_only_the_writers_build_calls_damage_is_a_disagreement_not_a_violation() {
        let (mut results, report) = oracle(None, None, false, vec![(sample(7), true)]);
        let w = writers(Ok(()), Err("database disk image is malformed (SQLITE_CORRUPT_VTAB, 267)"), vec![Ok(true)]);
        let said = reconcile(&mut results, &report, &w);
        assert!(violated(&results).is_empty(), "{results:?}");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("fts: SQLite 3.41.2 (the writers') says messages_fts_trigram integrity-check: "));
        assert!(said[0].ends_with("SQLite 3.54.1 says ok"), "{said:?}");
    }

    /// Damage both builds see stays; so does an index whose rows differ from its table (read
    /// from plain tables), whatever the writers' build says of the index.
    #[test]
    fn damage_both_builds_see_and_rows_that_differ_stay_violations() {
        let (mut results, report) = oracle(Some("page 4: btree"), Some("t: malformed"), false, vec![]);
        let said = reconcile(&mut results, &report, &writers(Err("page 4"), Err("malformed"), vec![]));
        assert_eq!(violated(&results), vec![ViolationKind::Integrity, ViolationKind::Fts]);
        assert!(said.is_empty(), "{said:?}");
        let (mut results, report) = oracle(None, Some("messages_fts: 3 messages have no index row"), true, vec![]);
        let said = reconcile(&mut results, &report, &writers(Ok(()), Ok(()), vec![]));
        assert_eq!(violated(&results), vec![ViolationKind::Fts]);
        assert!(said.is_empty(), "{said:?}");
    }

    /// A message only the oracle's build misses is a disagreement; one the writers' build fails
    /// to search at all is its miss.
    #[test]
    fn misses_only_the_oracles_build_makes_are_disagreements_and_failed_searches_are_misses() {
        let (mut results, report) = oracle(None, None, false, vec![(sample(7), false), (sample(8), true)]);
        let said = reconcile(&mut results, &report, &writers(Ok(()), Ok(()), vec![Ok(true), Ok(true)]));
        assert!(violated(&results).is_empty(), "{results:?}");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("fts_miss: SQLite 3.54.1: ") && said[0].contains("message 7"), "{said:?}");
        let (mut results, report) = oracle(None, None, false, vec![(sample(8), true)]);
        let failed = vec![Err("database disk image is malformed (SQLITE_CORRUPT_VTAB, 267)".to_string())];
        reconcile(&mut results, &report, &writers(Ok(()), Ok(()), failed));
        assert_eq!(violated(&results), vec![ViolationKind::FtsMiss]);
        let CheckOutcome::Violation { detail } = &results[3].outcome else { unreachable!() };
        assert!(detail.contains("MATCH \"json\" fails: database disk image is malformed"), "{detail}");
    }
}

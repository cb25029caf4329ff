//! The checker: a list of checks ([`CHECKS`]) run in order on one crash image, each with the
//! kind of violation it finds and what it [`Needs`]. The generic ones ([`generic`]) hold for any
//! SQLite database; the rest come from what the writer's [`Schema`] lets the oracle assume
//! ([`ledger`]: the session store's ledger, its FTS indexes, its recovery write).
//!
//! | # | check | needs | finds |
//! |---|---|---|---|
//! | 1 | `open` | the files | the image does not open, or its first read fails |
//! | 2 | `integrity` | a connection | `PRAGMA integrity_check` (or `quick_check`) is not `ok` |
//! | 3 | `fts` | a connection | an FTS5 table fails its own integrity-check; with the schema, an index differs from its rows or answers a sampled MATCH with rows that do not contain the term |
//! | 3b | `fts_miss` | the schema | a sampled MATCH misses a message that contains the term |
//! | 4 | `lost_ack` | acknowledgements | an acknowledged commit is absent (all of them, when the schema's tables are gone) |
//! | 5 | `phantom` | the schema, acknowledgements | a transaction present that was never begun |
//! | 6 | `atomicity` | the schema | a transaction partly present, a torn row |
//! | 7 | `prefix` | the schema | a writer's present transactions have a hole |
//! | 8 | `reopen_write` | a restart | reopened with the application's pragmas, the image refuses a write |
//!
//! Each check names itself and carries the failing detail. A check that cannot run for reasons
//! of the harness (an I/O error, SQLite out of memory) makes the whole call `Err`, never a pass;
//! a check that cannot run because the image failed an earlier check is `Blocked`, which is not
//! a pass either. An SQLite error that says the image is damaged (`SQLITE_CORRUPT`,
//! `SQLITE_NOTADB`...) met by a check is that check's violation, unless an earlier check
//! already failed, in which case it is `Blocked` (the damage is counted once, where it was
//! first seen).
//!
//! Checks 1–7 run on one connection opened on the image as found: opening it is the recovery an
//! application would run (a hot journal rolled back, a WAL replayed). Check 8 then reopens it
//! the way the application would on restart, with the cell's pragmas, and writes. The image is
//! modified by recovery and by check 8: callers run this on a copy they own ([`check_copy`]
//! makes one).

pub mod app;
pub mod crosscheck;
pub mod generic;
pub mod ledger;

use crate::base::sqlerr::{self, ErrorClass};
use crate::record::checks::{CheckOutcome, CheckResult, ViolationKind};
use crate::record::expected::Expected;
use crate::writer::pragmas::Pragmas;
use crate::writer::session_store::WorkloadConfig;
use anyhow::{Context, anyhow};
use generic::{OpenFailure, fts_integrity, integrity, open_image, probe_write, reopen};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// How thoroughly check 2 looks (`[check] integrity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrityLevel {
    /// `PRAGMA integrity_check`.
    Full,
    /// `PRAGMA quick_check` (a speed setting: it skips index/table consistency).
    Quick,
}

/// How to check an image.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub integrity: IntegrityLevel,
    /// Rows sampled per FTS table for MATCH queries.
    pub fts_samples: u32,
    /// Seeds the sampling of FTS queries and the recovery write: the same seed checks an image
    /// the same way.
    pub seed: u64,
    pub reopen: ReopenConfig,
    /// What the oracle may assume about the database, besides what every SQLite database
    /// allows: the writer's schema, whose checks run when the image holds its tables.
    pub schema: &'static dyn Schema,
}

/// How check 8 reopens the image.
#[derive(Clone, Debug)]
pub struct ReopenConfig {
    /// The pragmas the application sets on restart; `None` for a foreign database (its own
    /// journal mode is kept).
    pub pragmas: Option<Pragmas>,
    /// The ledger writer id of the recovery append (unique within a campaign).
    pub writer_id: u64,
    pub workload: WorkloadConfig,
}

/// The checks' results on one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// In check order. Checks 4 and 5 are absent without acknowledgements, checks 4–7 on a
    /// database that is not a session store.
    pub results: Vec<CheckResult>,
    /// Per writer, the highest sequence number present in the ledger (before check 8).
    pub present: BTreeMap<u64, u64>,
    /// The image holds the session store's tables.
    pub session_store: bool,
    /// Check 3 found an index's rows different from the table it indexes (or an index
    /// missing): read from plain tables, which no SQLite build reads differently. Its other
    /// findings read the index itself, which another build may read differently.
    pub fts_rows_differ: bool,
    /// The MATCH queries check `fts_miss` asked, each with whether the oracle's build found its
    /// message: another build asks the same.
    pub match_samples: Vec<(ledger::MatchSample, bool)>,
}

/// Check 3's problems, by what they read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FtsProblems {
    /// The index: its own integrity-check, its answers to MATCH, errors met reading it. Two
    /// SQLite builds may read one index differently.
    pub index: Vec<String>,
    /// An index's rows against the table it indexes, an index missing.
    pub rows: Vec<String>,
}

impl FtsProblems {
    pub fn all(self) -> Vec<String> {
        self.index.into_iter().chain(self.rows).collect()
    }
}

impl CheckReport {
    /// The kinds of the failed checks, in check order.
    pub fn violations(&self) -> Vec<ViolationKind> {
        self.results
            .iter()
            .filter(|r| match r.outcome {
                CheckOutcome::Violation { .. } => true,
                CheckOutcome::Pass | CheckOutcome::Blocked { .. } | CheckOutcome::CouldNotRun { .. } => false,
            })
            .map(|r| r.check)
            .collect()
    }

    /// The first check that could not run, and why: the image is not judged.
    pub fn could_not_run(&self) -> Option<String> {
        self.results.iter().find_map(|r| match &r.outcome {
            CheckOutcome::CouldNotRun { reason } => Some(format!("check {} could not run: {reason}", r.check.as_str())),
            CheckOutcome::Pass | CheckOutcome::Violation { .. } | CheckOutcome::Blocked { .. } => None,
        })
    }

    fn push(&mut self, check: ViolationKind, outcome: CheckOutcome, started: Instant) {
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.results.push(CheckResult { check, outcome, elapsed_us });
    }

    fn failed_so_far(&self) -> bool {
        !self.violations().is_empty()
    }
}

/// A check's SQLite error, read by [`sqlerr::classify`]: what the image made SQLite say is the
/// check's violation (or `Blocked` when an earlier check already failed: the damage is counted
/// once, where it was first seen); a lock on the image means the check could not run; anything
/// else is the harness's.
fn classify(report: &CheckReport, what: &str, e: rusqlite::Error) -> anyhow::Result<CheckOutcome> {
    let detail = format!("{what}: {}", sqlerr::describe(&e));
    match sqlerr::classify(&e) {
        ErrorClass::Harness => Err(anyhow!("{detail}")),
        ErrorClass::Locked => Ok(CheckOutcome::CouldNotRun { reason: detail }),
        ErrorClass::Finding if report.failed_so_far() => {
            Ok(CheckOutcome::Blocked { reason: format!("{detail} (after an earlier violation)") })
        }
        ErrorClass::Finding => Ok(CheckOutcome::Violation { detail }),
    }
}

/// True when `e` is the image's doing (see [`sqlerr::classify`]).
pub(crate) fn is_finding(e: &rusqlite::Error) -> bool {
    match sqlerr::classify(e) {
        ErrorClass::Finding => true,
        ErrorClass::Locked | ErrorClass::Harness => false,
    }
}

/// Copies `db_path` and its `-wal`/`-journal` (never `-shm`: it is rebuilt from the WAL) into
/// a temporary directory and checks the copy, so the original is never modified.
pub fn check_copy(db_path: &Path, cfg: &CheckConfig, expected: Option<&Expected>) -> anyhow::Result<CheckReport> {
    let dir = crate::base::scratch::create(None, "check-").context("create a temporary directory")?;
    let copy =
        crate::base::dbfiles::copy_image(db_path, dir.path()).with_context(|| format!("copy {}", db_path.display()))?;
    check_image(&copy, cfg, expected)
}

/// What the oracle may assume about the database a writer writes, beyond what any SQLite
/// database allows: the writer's side of the checks. The built-in writer's is
/// [`ledger::SESSION_STORE`]. An image that does not hold the schema's tables gets the generic
/// checks only (and, when acknowledgements were made, has lost every one of them).
pub trait Schema: Sync + std::fmt::Debug {
    /// Its name, for details ("no session store tables").
    fn name(&self) -> &'static str;
    /// True when the image holds this schema's tables. Read right after the image opened:
    /// damage met here is the open check's.
    fn recognise(&self, conn: &Connection) -> rusqlite::Result<bool>;
    /// Check 3 beyond every FTS5 table's own integrity-check (`fts_tables` are the image's):
    /// the indexes against the rows they index, the hits of the sampled MATCH queries
    /// (`samples`, [`Schema::match_samples`]). Adds to `problems`.
    fn fts(
        &self,
        conn: &Connection,
        fts_tables: &[String],
        samples: &[ledger::MatchSample],
        problems: &mut FtsProblems,
    ) -> rusqlite::Result<()>;
    /// The MATCH queries of checks 3 and 3b, taken once per image: terms the image's rows
    /// hold, each of which must find its row.
    fn match_samples(&self, conn: &Connection, cfg: &CheckConfig) -> rusqlite::Result<Vec<ledger::MatchSample>>;
    /// Per writer, the sorted sequence numbers of the transactions present.
    fn present(&self, conn: &Connection) -> rusqlite::Result<BTreeMap<u64, Vec<u64>>>;
    /// Check 6: the transactions present whose rows are not all there, as problems.
    fn atomicity(&self, conn: &Connection) -> rusqlite::Result<Vec<String>>;
    /// Check 8's write after recovery, on a connection reopened with the application's pragmas.
    fn write_after_recovery(&self, conn: &mut Connection, cfg: &CheckConfig) -> anyhow::Result<CheckOutcome>;
    /// The writer's acknowledgements name keys ([`Expected::keys`]) rather than sequence numbers
    /// ([`Schema::present`]).
    fn keyed(&self) -> bool {
        false
    }
    /// Whether check `kind` applies to this schema's databases, or why it cannot (the summary
    /// says so). Every check applies to the session store.
    fn applies(&self, _kind: ViolationKind) -> Result<(), &'static str> {
        Ok(())
    }
    /// Check 4 for a writer whose acknowledgements name keys ([`Expected::keys`]): the
    /// acknowledged keys absent from the image, as problems. `None`: the schema knows sequence
    /// numbers ([`Schema::present`]).
    fn lost_keys(&self, _conn: &Connection, _expected: &Expected) -> Option<rusqlite::Result<Vec<String>>> {
        None
    }
    /// Check 5 for a writer whose acknowledgements name keys: the keys present that no writer
    /// named and the template did not hold. `None`: as for [`Schema::lost_keys`].
    fn phantom_keys(&self, _conn: &Connection, _expected: &Expected) -> Option<rusqlite::Result<Vec<String>>> {
        None
    }
}

/// What a check needs before it can run; without it the check is `Blocked` (its input is
/// damaged) or absent from the report (it does not apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Only the image's files.
    Files,
    /// The connection check 1 opened: any SQLite database.
    Connection,
    /// The acknowledgements (absent without them). The check runs even when the schema's
    /// tables are gone: that loses every acknowledged commit.
    Acks,
    /// The writer's schema in the image and the acknowledgements.
    SchemaAndAcks,
    /// The writer's schema in the image.
    Schema,
    /// An image that opened, its connection closed (check 8 reopens it as a restart would);
    /// for a trial's image (acknowledgements given), the schema's tables to write to.
    Restart,
}

/// One check of the oracle: what it finds, what it needs, how it runs.
pub struct Check {
    pub kind: ViolationKind,
    pub needs: Needs,
    run: fn(&mut Image<'_>) -> anyhow::Result<CheckOutcome>,
}

/// The oracle's checks, in the order they run. Checks 1–3 and 8 are generic
/// ([`generic`]); 3 and 8 do more, and 4–7 exist, where the writer's [`Schema`] is in the image.
pub const CHECKS: [Check; 9] = [
    Check { kind: ViolationKind::Open, needs: Needs::Files, run: open },
    Check { kind: ViolationKind::Integrity, needs: Needs::Connection, run: integrity_check },
    Check { kind: ViolationKind::Fts, needs: Needs::Connection, run: fts_check },
    Check { kind: ViolationKind::FtsMiss, needs: Needs::Schema, run: fts_miss },
    Check { kind: ViolationKind::LostAck, needs: Needs::Acks, run: lost_ack },
    Check { kind: ViolationKind::Phantom, needs: Needs::SchemaAndAcks, run: phantom },
    Check { kind: ViolationKind::Atomicity, needs: Needs::Schema, run: atomicity },
    Check { kind: ViolationKind::Prefix, needs: Needs::Schema, run: prefix },
    Check { kind: ViolationKind::ReopenWrite, needs: Needs::Restart, run: reopen_check },
];

/// One image as the checks go through it.
pub struct Image<'a> {
    path: &'a Path,
    cfg: &'a CheckConfig,
    expected: Option<&'a Expected>,
    report: CheckReport,
    /// Check 1's connection, until check 8 closes it.
    conn: Option<Connection>,
    /// Why the image did not open, when it did not.
    unopened: Option<String>,
    /// `integrity_check`'s lines when it ran to completion (they hold FTS5's verdicts).
    integrity_lines: Option<Vec<String>>,
    /// The MATCH samples check 3 took, for check 3b (`None`: not taken, or taking them failed).
    samples: Option<Vec<ledger::MatchSample>>,
    /// The present sequence numbers, read once by the first check that needs them (`Err`: the
    /// outcome every such check takes when reading them failed).
    present: Option<Result<BTreeMap<u64, Vec<u64>>, CheckOutcome>>,
}

/// Whether a check runs on this image.
enum Readiness {
    Run,
    Blocked(String),
    Absent,
}

impl Image<'_> {
    fn readiness(&mut self, needs: Needs) -> Readiness {
        let acks = self.expected.is_some();
        let schema = self.report.session_store;
        let no_tables = || format!("no {} tables", self.cfg.schema.name());
        if matches!(needs, Needs::Acks | Needs::SchemaAndAcks) && !acks {
            return Readiness::Absent;
        }
        if let (Some(reason), false) = (&self.unopened, needs == Needs::Files) {
            return Readiness::Blocked(reason.clone());
        }
        // A writer that names keys without announcing its transactions (no `begin` lines):
        // what it committed just before it could acknowledge it would look like a phantom.
        let keys_unannounced = self.cfg.schema.keyed() && self.expected.is_some_and(|e| !e.begins);
        if needs == Needs::SchemaAndAcks && keys_unannounced {
            return Readiness::Absent;
        }
        match needs {
            Needs::Files | Needs::Connection | Needs::Acks => Readiness::Run,
            Needs::SchemaAndAcks | Needs::Schema if schema => Readiness::Run,
            Needs::SchemaAndAcks => Readiness::Blocked(no_tables()),
            Needs::Schema if acks => Readiness::Blocked(no_tables()),
            Needs::Schema => Readiness::Absent,
            Needs::Restart => {
                self.conn = None;
                if acks && !schema {
                    Readiness::Blocked(format!("{} to append to", no_tables()))
                } else {
                    Readiness::Run
                }
            }
        }
    }

    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("checks that need the connection run after it opened")
    }

    /// The present sequence numbers (read once).
    fn present(&mut self) -> anyhow::Result<Result<&BTreeMap<u64, Vec<u64>>, CheckOutcome>> {
        if self.present.is_none() {
            let read = match self.cfg.schema.present(self.conn()) {
                Ok(seqs) => {
                    self.report.present = seqs.iter().map(|(&w, s)| (w, s.last().copied().unwrap_or(0))).collect();
                    Ok(seqs)
                }
                Err(e) => Err(classify(&self.report, "read the ledger", e)?),
            };
            self.present = Some(read);
        }
        Ok(self.present.as_ref().expect("just read").as_ref().map_err(Clone::clone))
    }
}

/// Runs every check on the image at `db_path` (modifying it: see the module doc).
pub fn check_image(db_path: &Path, cfg: &CheckConfig, expected: Option<&Expected>) -> anyhow::Result<CheckReport> {
    let mut image = Image {
        path: db_path,
        cfg,
        expected,
        report: CheckReport {
            results: Vec::new(),
            present: BTreeMap::new(),
            session_store: false,
            fts_rows_differ: false,
            match_samples: Vec::new(),
        },
        conn: None,
        unopened: None,
        integrity_lines: None,
        samples: None,
        present: None,
    };
    for check in CHECKS.iter().filter(|c| cfg.schema.applies(c.kind).is_ok()) {
        let t = Instant::now();
        let outcome = match image.readiness(check.needs) {
            Readiness::Absent => continue,
            Readiness::Blocked(reason) => CheckOutcome::Blocked { reason },
            Readiness::Run => (check.run)(&mut image)?,
        };
        image.report.push(check.kind, outcome, t);
    }
    Ok(image.report)
}

/// Check 1: the image opens and a first read succeeds; then the writer's schema is looked for.
fn open(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    let opened = match open_image(image.path) {
        // The first read of the schema after the one that opened it: damage met here is still
        // the open check's.
        Ok(conn) => match image.cfg.schema.recognise(&conn) {
            Ok(schema) => Ok((conn, schema)),
            Err(e) => Err(classify(&image.report, "read the schema", e)?),
        },
        Err(OpenFailure::Outcome(outcome)) => Err(outcome),
        Err(OpenFailure::Harness(e)) => return Err(e),
    };
    match opened {
        Ok((conn, schema)) => {
            image.conn = Some(conn);
            image.report.session_store = schema;
            Ok(CheckOutcome::Pass)
        }
        Err(outcome) => {
            image.unopened = Some(match &outcome {
                CheckOutcome::Violation { detail } => format!("the image does not open ({detail})"),
                CheckOutcome::CouldNotRun { reason } => format!("the image could not be opened ({reason})"),
                CheckOutcome::Pass | CheckOutcome::Blocked { .. } => unreachable!("open failed"),
            });
            Ok(outcome)
        }
    }
}

/// Check 2 ([`generic::integrity`]).
fn integrity_check(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    Ok(match integrity(image.conn(), image.cfg.integrity) {
        Ok((outcome, lines)) => {
            image.integrity_lines = lines;
            outcome
        }
        Err(e) => classify(&image.report, "integrity_check", e)?,
    })
}

/// Check 3: every FTS5 table's own integrity-check, then the schema's FTS checks.
fn fts_check(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    let schema = image.report.session_store;
    let conn = image.conn.as_ref().expect("checks that need the connection run after it opened");
    let checked = fts(conn, image.cfg, schema, image.integrity_lines.as_deref(), &mut image.samples);
    Ok(match checked {
        Ok(problems) => {
            image.report.fts_rows_differ = !problems.rows.is_empty();
            outcome_of(problems.all())
        }
        Err(e) => classify(&image.report, "fts", e)?,
    })
}

/// Check 3's problems: [`generic::fts_integrity`], then (where the image holds the writer's
/// schema) the schema's own FTS checks on the MATCH samples it takes, kept in `samples` for
/// check 3b.
fn fts(
    conn: &Connection,
    cfg: &CheckConfig,
    schema: bool,
    integrity_lines: Option<&[String]>,
    samples: &mut Option<Vec<ledger::MatchSample>>,
) -> rusqlite::Result<FtsProblems> {
    let (tables, index) = fts_integrity(conn, integrity_lines)?;
    let mut problems = FtsProblems { index, rows: Vec::new() };
    if schema {
        // Messages that cannot be read to sample from: damage of the table the index indexes
        // (check 3b then meets it again, and is blocked by it).
        let taken = match cfg.schema.match_samples(conn, cfg) {
            Ok(taken) => taken,
            Err(e) if is_finding(&e) => {
                problems.rows.push(format!("sample messages: {}", sqlerr::describe(&e)));
                return Ok(problems);
            }
            Err(e) => return Err(e),
        };
        cfg.schema.fts(conn, &tables, &taken, &mut problems)?;
        *samples = Some(taken);
    }
    Ok(problems)
}

/// Check 3b: every sampled MATCH query finds the message its term came from
/// ([`ledger::misses`]), asked of the oracle's own build; a cell whose writers run on another
/// build asks theirs too (`oracle::crosscheck`).
fn fts_miss(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    let samples = match image.samples.take() {
        Some(samples) => samples,
        None => match image.cfg.schema.match_samples(image.conn(), image.cfg) {
            Ok(samples) => samples,
            Err(e) => return classify(&image.report, "fts_miss: sample messages", e),
        },
    };
    Ok(match ledger::found(image.conn(), &samples) {
        Ok(found) => {
            image.report.match_samples = samples.into_iter().zip(found).collect();
            outcome_of(image.report.match_samples.iter().filter(|(_, found)| !found).map(|(s, _)| s.miss()).collect())
        }
        Err(e) => classify(&image.report, "fts_miss", e)?,
    })
}

/// Check 4: every acknowledged commit is present ([`ledger::lost_acks`]).
fn lost_ack(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    let expected = image.expected.expect("check 4 needs the acknowledgements");
    if !image.report.session_store {
        // A trial's image always starts with the schema: losing it loses every commit.
        let acked: u64 = expected.writers.values().map(|w| w.acked).sum();
        return Ok(if acked > 0 {
            CheckOutcome::Violation {
                detail: format!("the {}'s tables are gone: {acked} acknowledged commits lost", image.cfg.schema.name()),
            }
        } else {
            CheckOutcome::Pass
        });
    }
    if let Some(lost) = image.cfg.schema.lost_keys(image.conn(), expected) {
        return Ok(match lost {
            Ok(problems) => outcome_of(problems),
            Err(e) => classify(&image.report, "look up the acknowledged keys", e)?,
        });
    }
    Ok(match image.present()? {
        Ok(seqs) => outcome_of(ledger::lost_acks(seqs, expected)),
        Err(outcome) => outcome,
    })
}

/// Check 5: nothing present that was never begun ([`ledger::phantoms`]).
fn phantom(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    let expected = image.expected.expect("check 5 needs the acknowledgements");
    if let Some(phantoms) = image.cfg.schema.phantom_keys(image.conn(), expected) {
        return Ok(match phantoms {
            Ok(problems) => outcome_of(problems),
            Err(e) => classify(&image.report, "list the keys present", e)?,
        });
    }
    Ok(match image.present()? {
        Ok(seqs) => outcome_of(ledger::phantoms(seqs, expected)),
        Err(outcome) => outcome,
    })
}

/// Check 6: every transaction wholly present or wholly absent ([`Schema::atomicity`]).
fn atomicity(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    if let Err(outcome) = image.present()? {
        return Ok(outcome);
    }
    Ok(match image.cfg.schema.atomicity(image.conn()) {
        Ok(problems) => outcome_of(problems),
        Err(e) => classify(&image.report, "atomicity queries", e)?,
    })
}

/// Check 7: per writer, the present transactions have no hole ([`ledger::holes`]).
fn prefix(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    Ok(match image.present()? {
        Ok(seqs) => outcome_of(ledger::holes(seqs)),
        Err(outcome) => outcome,
    })
}

/// Check 8, once check 1's connection is closed.
fn reopen_check(image: &mut Image<'_>) -> anyhow::Result<CheckOutcome> {
    reopen_write(image.path, image.cfg, image.report.session_store)
}

/// Check 8: reopen as the application would on restart and write: the schema's own write
/// where the image holds it, a probe table otherwise.
fn reopen_write(db_path: &Path, cfg: &CheckConfig, schema: bool) -> anyhow::Result<CheckOutcome> {
    let mut conn = match reopen(db_path, cfg)? {
        Ok(conn) => conn,
        Err(outcome) => return Ok(outcome),
    };
    if schema { cfg.schema.write_after_recovery(&mut conn, cfg) } else { probe_write(&conn) }
}

/// A check's outcome from the problems it found (the first few in the detail).
pub(crate) fn outcome_of(problems: Vec<String>) -> CheckOutcome {
    if problems.is_empty() {
        return CheckOutcome::Pass;
    }
    const SHOWN: usize = 4;
    let mut detail = problems.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
    if problems.len() > SHOWN {
        detail.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    CheckOutcome::Violation { detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::generic::fts_lines_for;
    use crate::oracle::ledger::{holes, lost_acks, phantoms, ranges};
    use crate::record::expected::WriterExpectation;
    use crate::scenario::matrix::JournalMode;
    use crate::writer::session_store::{self, FTS_TABLES, TxnWriter, fts_body_sql};
    use proptest::prelude::*;

    use crate::testkit::{WRITER, expected, pragmas, session_store as seeded_store, workload as workload_cfg};

    const COMMITS: u64 = 20;

    fn cfg(journal_mode: JournalMode) -> CheckConfig {
        crate::testkit::check_config(Some(journal_mode))
    }

    /// A clean session store: the seed (writer 0) plus `COMMITS` transactions of `WRITER`.
    fn clean(journal_mode: JournalMode) -> (tempfile::TempDir, std::path::PathBuf, Expected) {
        let dir = tempfile::tempdir().unwrap();
        let (db, conn, _, seeded) = seeded_store(dir.path(), &workload_cfg(), &pragmas(journal_mode), COMMITS);
        drop(conn);
        (dir, db, expected(seeded, COMMITS, COMMITS + 1))
    }

    fn mutate(db: &Path, sql: &str) {
        let conn = Connection::open(db).unwrap();
        conn.execute_batch(sql).unwrap();
    }

    fn run(db: &Path, expected: &Expected) -> CheckReport {
        check_copy(db, &cfg(JournalMode::Wal), Some(expected)).unwrap()
    }

    fn violated(report: &CheckReport) -> Vec<ViolationKind> {
        report.violations()
    }

    #[test]
    fn the_checks_run_in_the_order_of_their_kinds_and_cover_every_image_check() {
        let kinds: Vec<ViolationKind> = CHECKS.iter().map(|c| c.kind).collect();
        let of_images: Vec<ViolationKind> = ViolationKind::ALL
            .into_iter()
            .filter(|&k| !matches!(k, ViolationKind::WriterCrash | ViolationKind::Protocol))
            .collect();
        assert_eq!(kinds, of_images);
        // Only check 1 runs on a file that did not open.
        assert_eq!(CHECKS.iter().filter(|c| c.needs == Needs::Files).count(), 1);
    }

    #[test]
    fn an_image_without_the_writers_schema_gets_the_generic_checks_and_with_acks_loses_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("other.sqlite");
        mutate(&db, "CREATE TABLE t(x); CREATE VIRTUAL TABLE f USING fts5(x); INSERT INTO f VALUES ('a b');");
        let report = check_copy(&db, &cfg(JournalMode::Wal), None).unwrap();
        let ran: Vec<(ViolationKind, bool)> =
            report.results.iter().map(|r| (r.check, r.outcome == CheckOutcome::Pass)).collect();
        use ViolationKind::*;
        assert_eq!(ran, vec![(Open, true), (Integrity, true), (Fts, true), (ReopenWrite, true)], "{report:?}");
        let expected = expected(3, 2, 2);
        let report = check_copy(&db, &cfg(JournalMode::Wal), Some(&expected)).unwrap();
        let kinds: Vec<ViolationKind> = report.results.iter().map(|r| r.check).collect();
        assert_eq!(kinds, CHECKS.iter().map(|c| c.kind).collect::<Vec<_>>());
        assert_eq!(report.violations(), vec![LostAck], "{report:?}");
        let blocked = report.results.iter().filter(|r| matches!(r.outcome, CheckOutcome::Blocked { .. })).count();
        assert_eq!(blocked, 5, "fts_miss, phantom, atomicity, prefix and the write after recovery: {report:?}");
    }

    #[test]
    fn a_clean_database_passes_every_check_in_every_journal_mode() {
        for mode in [JournalMode::Wal, JournalMode::Delete, JournalMode::Truncate, JournalMode::Persist] {
            let (_dir, db, expected) = clean(mode);
            let report = check_copy(&db, &cfg(mode), Some(&expected)).unwrap();
            assert_eq!(report.results.len(), 9, "{report:?}");
            assert!(report.results.iter().all(|r| r.outcome == CheckOutcome::Pass), "{mode:?}: {report:?}");
            assert!(report.session_store);
            assert_eq!(report.present[&WRITER], COMMITS);
        }
    }

    #[test]
    fn the_check_command_skips_only_the_checks_that_need_acknowledgements() {
        let (_dir, db, _) = clean(JournalMode::Wal);
        let report = check_copy(&db, &cfg(JournalMode::Wal), None).unwrap();
        let kinds: Vec<ViolationKind> = report.results.iter().map(|r| r.check).collect();
        use ViolationKind::*;
        assert_eq!(kinds, vec![Open, Integrity, Fts, FtsMiss, Atomicity, Prefix, ReopenWrite]);
        assert!(report.violations().is_empty(), "{report:?}");
    }

    #[test]
    fn open_fires_on_a_file_that_is_not_a_database_and_on_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("text.sqlite");
        std::fs::write(&db, "not a database at all, only text\n".repeat(200)).unwrap();
        let report = check_copy(&db, &cfg(JournalMode::Wal), None).unwrap();
        assert_eq!(violated(&report), vec![ViolationKind::Open]);
        assert!(report.results[1..].iter().all(|r| matches!(r.outcome, CheckOutcome::Blocked { .. })));
        let report = check_image(&dir.path().join("missing.sqlite"), &cfg(JournalMode::Wal), None).unwrap();
        assert_eq!(violated(&report), vec![ViolationKind::Open]);
        assert!(detail(&report, ViolationKind::Open).ends_with("missing.sqlite does not exist"), "{report:?}");
        assert!(!dir.path().join("missing.sqlite").exists(), "the open check must never create the file");
    }

    /// Flips two bytes at the start of the cell pointer array of `table`'s root page.
    fn flip_root_page(db: &Path, table: &str) {
        let (root, page_size): (i64, i64) = {
            let conn = Connection::open(db).unwrap();
            let root = conn.query_row("SELECT rootpage FROM sqlite_master WHERE name = ?1", [table], |r| r.get(0));
            (root.unwrap(), conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap())
        };
        let mut bytes = std::fs::read(db).unwrap();
        let page = ((root - 1) * page_size) as usize;
        let header = if bytes[page] == 0x05 { 12 } else { 8 };
        bytes[page + header] ^= 0x5a;
        bytes[page + header + 1] ^= 0xa5;
        std::fs::write(db, &bytes).unwrap();
    }

    /// The detail of `check` in `report`, which must be a violation.
    fn detail(report: &CheckReport, check: ViolationKind) -> String {
        match &report.results.iter().find(|r| r.check == check).unwrap().outcome {
            CheckOutcome::Violation { detail } => detail.clone(),
            other => panic!("{check:?} is no violation: {other:?}"),
        }
    }

    /// The detail of `check`, asserted to be the one violation of `report`.
    fn sole_violation(report: &CheckReport, check: ViolationKind) -> String {
        assert_eq!(violated(report), vec![check], "{report:?}");
        detail(report, check)
    }

    /// The detail of `check`, asserted to be the one violation of a clean WAL-mode store that
    /// `sql` changed.
    fn sole_violation_after(sql: &str, check: ViolationKind) -> String {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        mutate(&db, sql);
        sole_violation(&run(&db, &expected), check)
    }

    #[test]
    fn integrity_fires_on_a_flipped_byte_in_a_table_page_at_either_level() {
        let (_dir, db, expected) = clean(JournalMode::Delete);
        flip_root_page(&db, "messages");
        for integrity in [IntegrityLevel::Full, IntegrityLevel::Quick] {
            let c = CheckConfig { integrity, ..cfg(JournalMode::Wal) };
            let report = check_copy(&db, &c, Some(&expected)).unwrap();
            assert!(violated(&report).contains(&ViolationKind::Integrity), "{integrity:?}: {report:?}");
        }
    }

    /// Damage is counted once, where it is first seen: after integrity fired, a later check
    /// that meets the same damage as an SQLite error is blocked, except check 3, for which
    /// reading `messages` and the indexes is the check itself.
    #[test]
    fn damage_met_again_after_integrity_fired_blocks_atomicity_and_is_fts_own_finding() {
        let (_dir, db, expected) = clean(JournalMode::Delete);
        flip_root_page(&db, "messages");
        let report = run(&db, &expected);
        assert_eq!(violated(&report), vec![ViolationKind::Integrity, ViolationKind::Fts], "{report:?}");
        assert!(detail(&report, ViolationKind::Fts).contains("SQLITE_CORRUPT"), "{report:?}");
        let atomicity = report.results.iter().find(|r| r.check == ViolationKind::Atomicity).unwrap();
        let CheckOutcome::Blocked { reason } = &atomicity.outcome else { panic!("{report:?}") };
        assert!(
            reason.starts_with("atomicity queries: ") && reason.ends_with("(after an earlier violation)"),
            "{reason}"
        );
    }

    /// Rewrites the definition of the index `messages_by_txn` to `(txn, writer)` without
    /// rebuilding it: every entry disagrees with its row, which only the full integrity check
    /// compares (one error per message row, more than its limit of 20).
    fn put_an_index_out_of_step(db: &Path) {
        mutate(
            db,
            "PRAGMA writable_schema = ON; \
             UPDATE sqlite_schema SET sql = 'CREATE INDEX messages_by_txn ON messages(txn, writer)' \
             WHERE name = 'messages_by_txn';",
        );
    }

    /// (Page damage at this level: `integrity_fires_on_a_flipped_byte_in_a_table_page_at_either_level`.)
    #[test]
    fn the_quick_level_still_fires_on_fts_damage_but_skips_index_contents() {
        let quick = CheckConfig { integrity: IntegrityLevel::Quick, ..cfg(JournalMode::Wal) };
        let (_dir, db, expected) = clean(JournalMode::Wal);
        let report = check_copy(&db, &quick, Some(&expected)).unwrap();
        assert!(report.violations().is_empty(), "{report:?}");

        // quick_check runs the FTS tables' own checks too, and check 3 reads their verdict.
        let (_dir, db, expected) = clean(JournalMode::Wal);
        mutate(&db, "DELETE FROM messages_fts_trigram_data WHERE id > 10 AND id % 3 = 0");
        let report = check_copy(&db, &quick, Some(&expected)).unwrap();
        assert!(detail(&report, ViolationKind::Integrity).contains("messages_fts_trigram"), "{report:?}");
        assert!(detail(&report, ViolationKind::Fts).starts_with("messages_fts_trigram: integrity-check: "));

        let (_dir, db, _) = clean(JournalMode::Wal);
        put_an_index_out_of_step(&db);
        let conn = Connection::open(&db).unwrap();
        assert_eq!(integrity(&conn, IntegrityLevel::Quick).unwrap(), (CheckOutcome::Pass, Some(vec!["ok".into()])));
        assert!(matches!(integrity(&conn, IntegrityLevel::Full).unwrap().0, CheckOutcome::Violation { .. }));
    }

    /// Past its error limit `integrity_check` stops before the FTS tables' own checks, so
    /// check 3 cannot read their verdict from its lines and must run `integrity-check` itself.
    #[test]
    fn fts_runs_integrity_check_itself_when_integrity_check_stops_at_its_error_limit() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        put_an_index_out_of_step(&db);
        mutate(&db, "DELETE FROM messages_fts_trigram_data WHERE id > 10 AND id % 3 = 0");
        let conn = Connection::open(&db).unwrap();
        let (outcome, lines) = integrity(&conn, IntegrityLevel::Full).unwrap();
        assert!(matches!(outcome, CheckOutcome::Violation { .. }) && lines.is_none(), "{outcome:?}, {lines:?}");
        // The pragma's 20 lines are all about the index: it never reached the FTS tables.
        let mut stmt = conn.prepare("PRAGMA integrity_check(20)").unwrap();
        let rows: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert!(rows.len() == 20 && rows.iter().all(|l| l.ends_with("missing from index messages_by_txn")), "{rows:?}");
        let report = run(&db, &expected);
        let fts = detail(&report, ViolationKind::Fts);
        assert!(fts.starts_with("messages_fts_trigram: integrity-check: "), "{fts}");
    }

    /// Each of SQLite's three wordings of an FTS5 verdict is read for the table it names, and
    /// never for another whose name it starts with.
    #[test]
    fn fts_verdict_lines_are_read_for_the_table_they_name() {
        let lines: Vec<String> = [
            "malformed inverted index for FTS5 table main.messages_fts_trigram",
            "unable to validate the inverted index for FTS5 table main.messages_fts: out of memory",
            "fts5: corruption found reading blob 137438953473 from table \"messages_fts_trigram\"",
            "row 12 missing from index messages_by_txn",
        ]
        .map(String::from)
        .into();
        assert_eq!(fts_lines_for(&lines, "messages_fts").collect::<Vec<_>>(), vec![&lines[1]]);
        assert_eq!(fts_lines_for(&lines, "messages_fts_trigram").collect::<Vec<_>>(), vec![&lines[0], &lines[2]]);
    }

    #[test]
    fn fts_fires_on_deleted_shadow_rows() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        mutate(&db, "DELETE FROM messages_fts_data WHERE id > 10 AND id % 2 = 0");
        let report = run(&db, &expected);
        assert!(violated(&report).contains(&ViolationKind::Fts), "{report:?}");
    }

    #[test]
    fn fts_reads_integrity_check_and_runs_the_command_itself_alike() {
        let (_dir, db, _) = clean(JournalMode::Wal);
        mutate(&db, "DELETE FROM messages_fts_trigram_data WHERE id > 10 AND id % 3 = 0");
        let conn = Connection::open(&db).unwrap();
        let (_, lines) = integrity(&conn, IntegrityLevel::Full).unwrap();
        let lines = lines.expect("fewer than 20 errors: the pragma ran to completion");
        assert!(fts_lines_for(&lines, "messages_fts_trigram").count() > 0, "{lines:?}");
        assert_eq!(fts_lines_for(&lines, "messages_fts").count(), 0, "{lines:?}");
        let c = cfg(JournalMode::Wal);
        let from_pragma = fts(&conn, &c, true, Some(&lines), &mut None).unwrap().all();
        let from_command = fts(&conn, &c, true, None, &mut None).unwrap().all();
        let named = |p: &Vec<String>| p.iter().any(|l| l.starts_with("messages_fts_trigram: integrity-check"));
        assert!(named(&from_pragma) && named(&from_command), "{from_pragma:?} / {from_command:?}");
        assert!(!from_pragma.iter().chain(&from_command).any(|l| l.starts_with("messages_fts: integrity")));
    }

    #[test]
    fn fts_alone_fires_on_a_message_the_triggers_never_saw() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        // Structurally sound everywhere, but the index misses one row and holds a wrong body
        // for another: only the comparison against `messages` can tell.
        mutate(
            &db,
            "DROP TRIGGER messages_au; \
             UPDATE messages SET content = 'zzqqxx ' || content, row_hash = 0 WHERE id = (SELECT min(id) FROM messages); \
             DELETE FROM messages_fts_trigram WHERE rowid = (SELECT max(id) FROM messages);",
        );
        let report = run(&db, &expected);
        let fts = report.results.iter().find(|r| r.check == ViolationKind::Fts).unwrap();
        let CheckOutcome::Violation { detail } = &fts.outcome else { panic!("{report:?}") };
        assert!(detail.contains("no index row") && detail.contains("differs"), "{detail}");
        assert!(!violated(&report).contains(&ViolationKind::Integrity), "{report:?}");
        // Read from plain tables: no other SQLite build could read it otherwise.
        assert!(report.fts_rows_differ, "{report:?}");
    }

    /// Check 3's whole list of problems on `db`, as the oracle finds them (a report's detail
    /// shows only the first few).
    fn fts_problems(db: &Path) -> Vec<String> {
        let conn = Connection::open(db).unwrap();
        let (_, lines) = integrity(&conn, IntegrityLevel::Full).unwrap();
        fts(&conn, &cfg(JournalMode::Wal), true, lines.as_deref(), &mut None).unwrap().all()
    }

    /// Puts back every stored body of `table` as its message's: what the FTS5 table returns
    /// as `body` then matches `messages` again, whatever its inverted index holds.
    fn restore_bodies(table: &str) -> String {
        format!(
            "UPDATE {table}_content SET c0 = (SELECT {} FROM messages m WHERE m.id = {table}_content.id);",
            fts_body_sql("")
        )
    }

    #[test]
    fn fts_miss_fires_when_match_misses_a_sampled_message_in_either_index() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        // Every row's index entries emptied, its stored body put back: the row sets and bodies
        // still agree with `messages`, but MATCH finds nothing.
        for (table, _) in FTS_TABLES {
            mutate(&db, &format!("UPDATE {table} SET body = ''; {}", restore_bodies(table)));
        }
        let report = run(&db, &expected);
        assert_eq!(
            violated(&report),
            vec![ViolationKind::Integrity, ViolationKind::Fts, ViolationKind::FtsMiss],
            "{report:?}"
        );
        assert!(!report.fts_rows_differ, "the rows still agree: only the index is wrong");
        let problems = fts_problems(&db);
        assert!(detail(&report, ViolationKind::FtsMiss).contains(" misses message "), "{report:?}");
        for (table, _) in FTS_TABLES {
            // The FTS5 verdict in integrity_check's words, read for the table it names.
            let verdict = format!("{table}: integrity-check: malformed inverted index for FTS5 table main.{table}");
            assert!(problems.contains(&verdict), "{problems:?}");
            assert!(report.match_samples.iter().any(|(s, _)| s.table == table), "{report:?}");
        }
        // Every sample asked, every one missed; the NUL-prefixed message the workload holds
        // asked about too.
        let per_table = cfg(JournalMode::Wal).fts_samples as usize + 1;
        assert_eq!(report.match_samples.len(), 2 * per_table, "{report:?}");
        assert!(report.match_samples.iter().all(|(_, found)| !found), "{report:?}");
        assert!(report.match_samples.iter().any(|(s, _)| s.nul_prefixed), "{report:?}");
    }

    #[test]
    fn fts_miss_passes_a_clean_index_and_asks_every_sample() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        let report = run(&db, &expected);
        assert!(violated(&report).is_empty(), "{report:?}");
        assert!(!report.match_samples.is_empty() && report.match_samples.iter().all(|(_, found)| *found));
        for (s, _) in &report.match_samples {
            let conn = Connection::open(&db).unwrap();
            // The statement another build would be asked: it finds the message here.
            let n: i64 = conn.query_row(&s.includes_sql(), [], |r| r.get(0)).unwrap();
            assert_eq!(n, 1, "{s:?}");
        }
    }

    #[test]
    fn fts_fires_when_match_returns_rows_that_are_not_messages_containing_the_term_in_either_index() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        // unicode61: an index row with no message, holding every message's words. Trigram: the
        // shortest message's index entries made of every message's text, its stored body put
        // back (a hit that is a message, but not one containing the term). NULs (in the tool
        // results' sentinel) become spaces: text functions stop at them.
        let every_body =
            format!("(SELECT group_concat(replace({}, char(0), ' '), ' ') FROM messages)", fts_body_sql(""));
        mutate(
            &db,
            &format!(
                "INSERT INTO messages_fts(rowid, body) SELECT max(id) + 1000, {every_body} FROM messages; \
                 UPDATE messages_fts_trigram SET body = {every_body} \
                 WHERE rowid = (SELECT id FROM messages ORDER BY length(CAST(content AS BLOB)) LIMIT 1); {}",
                restore_bodies("messages_fts_trigram")
            ),
        );
        assert_eq!(violated(&run(&db, &expected)), vec![ViolationKind::Integrity, ViolationKind::Fts]);
        let problems = fts_problems(&db);
        for (table, _) in FTS_TABLES {
            let hit = format!("{table}: MATCH ");
            let bad = " rows that are not messages containing it";
            assert!(problems.iter().any(|p| p.starts_with(&hit) && p.ends_with(bad)), "{table}: {problems:?}");
        }
    }

    #[test]
    fn fts_fires_on_index_rows_that_have_no_message() {
        let sql = "INSERT INTO messages_fts_trigram(rowid, body) SELECT max(id) + 1000, '' FROM messages";
        let detail = sole_violation_after(sql, ViolationKind::Fts);
        assert_eq!(detail, "messages_fts_trigram: 1 index rows have no message");
    }

    #[test]
    fn fts_fires_on_a_message_without_its_index_row_and_on_an_index_row_whose_body_differs() {
        let sql = "DELETE FROM messages_fts WHERE rowid = (SELECT min(id) FROM messages)";
        let detail = sole_violation_after(sql, ViolationKind::Fts);
        assert!(detail.contains("messages_fts: 1 messages have no index row"), "{detail}");
        let sql =
            "UPDATE messages_fts_trigram SET body = 'not the message' WHERE rowid = (SELECT min(id) FROM messages)";
        let detail = sole_violation_after(sql, ViolationKind::Fts);
        assert!(
            detail.contains("messages_fts_trigram: 1 index rows hold a body that differs from their message"),
            "{detail}"
        );
    }

    #[test]
    fn fts_fires_on_a_missing_fts_table() {
        // The triggers go with it, so that check 8's append does not fail on them.
        let sql = "DROP TRIGGER messages_ai; DROP TRIGGER messages_ad; DROP TRIGGER messages_au; \
                   DROP TABLE messages_fts_trigram;";
        assert_eq!(sole_violation_after(sql, ViolationKind::Fts), "messages_fts_trigram: missing");
    }

    #[test]
    fn lost_ack_fires_when_an_acknowledged_commit_is_missing() {
        let (_dir, db, mut expected) = clean(JournalMode::Wal);
        expected.writers.get_mut(&WRITER).unwrap().acked = COMMITS + 1;
        expected.writers.get_mut(&WRITER).unwrap().begun = COMMITS + 1;
        let report = run(&db, &expected);
        assert_eq!(violated(&report), vec![ViolationKind::LostAck], "{report:?}");
    }

    #[test]
    fn phantom_fires_on_an_unknown_writer_and_on_a_transaction_never_begun() {
        let (_dir, db, mut expected) = clean(JournalMode::Wal);
        expected.writers.get_mut(&WRITER).unwrap().begun = COMMITS - 1;
        expected.writers.get_mut(&WRITER).unwrap().acked = COMMITS - 1;
        assert_eq!(violated(&run(&db, &expected)), vec![ViolationKind::Phantom]);
        expected.writers.remove(&WRITER);
        let report = run(&db, &expected);
        assert_eq!(violated(&report), vec![ViolationKind::Phantom]);
        assert!(format!("{report:?}").contains("never ran"));
    }

    #[test]
    fn atomicity_fires_on_a_partly_present_transaction_and_on_a_torn_row() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        mutate(&db, "DELETE FROM messages WHERE id = (SELECT max(id) FROM messages)");
        let report = run(&db, &expected);
        assert_eq!(violated(&report), vec![ViolationKind::Atomicity], "{report:?}");

        let (_dir, db, expected) = clean(JournalMode::Wal);
        mutate(&db, "UPDATE messages SET row_hash = row_hash + 1 WHERE id = (SELECT min(id) FROM messages)");
        let report = run(&db, &expected);
        assert_eq!(violated(&report), vec![ViolationKind::Atomicity], "{report:?}");
        assert!(format!("{report:?}").contains("torn"));
    }

    /// The first transaction of `WRITER` that is a plain append (compressions rewrite other
    /// transactions' rows, edits touch others').
    fn first_plain_append(db: &Path) -> u64 {
        let sql = format!("SELECT min(seq) FROM ledger WHERE writer = {WRITER} AND kind = 'append' AND live_rows = 1");
        Connection::open(db).unwrap().query_row(&sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
    }

    #[test]
    fn lost_ack_fires_when_the_session_store_tables_are_gone() {
        let (_dir, db, mut expected) = clean(JournalMode::Wal);
        mutate(&db, "DROP TABLE ledger");
        let report = run(&db, &expected);
        assert_eq!(violated(&report), vec![ViolationKind::LostAck], "{report:?}");
        assert!(!report.session_store);
        // Nothing acknowledged, nothing lost.
        expected.writers.values_mut().for_each(|w| w.acked = 0);
        assert_eq!(violated(&run(&db, &expected)), vec![]);
    }

    #[test]
    fn atomicity_fires_on_a_ledger_row_whose_live_rows_disagree_with_its_messages() {
        let sql = "UPDATE ledger SET live_rows = live_rows + 1 WHERE writer = 0 AND seq = 1";
        let detail = sole_violation_after(sql, ViolationKind::Atomicity);
        assert_eq!(detail, "transaction (0, 1) (create) left 2 message rows, 1 are present");
    }

    #[test]
    fn atomicity_fires_on_message_rows_of_a_transaction_that_has_no_ledger_row() {
        // A copy of the first message under a transaction no ledger row names, its session's
        // counters raised to match: nothing else is out of step.
        let sql = "INSERT INTO messages (session_id, role, content, tool_name, tool_calls, created_at_ms, writer, txn, row_hash) \
               SELECT session_id, role, content, tool_name, tool_calls, created_at_ms, writer, 9999, row_hash \
               FROM messages ORDER BY id LIMIT 1; \
             UPDATE sessions SET message_count = message_count + 1, content_bytes = content_bytes + \
               (SELECT length(CAST(content AS BLOB)) FROM messages ORDER BY id DESC LIMIT 1) \
             WHERE id = (SELECT session_id FROM messages ORDER BY id DESC LIMIT 1);";
        let detail = sole_violation_after(sql, ViolationKind::Atomicity);
        assert_eq!(detail, "1 message rows of transaction (0, 9999), which has no ledger row");
    }

    #[test]
    fn atomicity_fires_on_messages_that_belong_to_no_session() {
        let sql = "DELETE FROM sessions WHERE id = (SELECT session_id FROM messages ORDER BY id LIMIT 1)";
        let detail = sole_violation_after(sql, ViolationKind::Atomicity);
        assert!(detail.ends_with(" messages belong to no session"), "{detail}");
    }

    #[test]
    fn atomicity_fires_on_session_counters_that_disagree_with_the_messages() {
        let sql = "UPDATE sessions SET message_count = message_count + 1 WHERE id = 1; \
                   UPDATE sessions SET content_bytes = content_bytes - 1 WHERE id = 2;";
        let detail = sole_violation_after(sql, ViolationKind::Atomicity);
        assert!(detail.starts_with("session 1 says ") && detail.contains("; session 2 says "), "{detail}");
    }

    /// A value of the wrong type in the ledger (a column that is not STRICT holds what it is
    /// given, and integrity_check does not look) is met reading it: the checks that read it
    /// fire with the error.
    #[test]
    fn the_ledger_checks_fire_when_the_ledger_cannot_be_read() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        mutate(&db, &format!("UPDATE ledger SET seq = 'torn' WHERE writer = {WRITER} AND seq = {COMMITS}"));
        let report = run(&db, &expected);
        use ViolationKind::*;
        assert_eq!(violated(&report), vec![LostAck, Phantom, Atomicity, Prefix], "{report:?}");
        assert!(detail(&report, Prefix).starts_with("read the ledger: "), "{report:?}");

        let detail =
            sole_violation_after("UPDATE ledger SET live_rows = 'many' WHERE writer = 0 AND seq = 1", Atomicity);
        assert!(detail.starts_with("atomicity queries: "), "{detail}");
    }

    /// A damaged ledger row can hold any number. A negative sequence number reads back near
    /// 2^64: it is a phantom, and the hole below it is named without counting up to it.
    #[test]
    fn prefix_fires_on_a_damaged_sequence_number_near_two_to_the_64() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        mutate(&db, &format!("UPDATE ledger SET seq = -5 WHERE writer = {WRITER} AND seq = {COMMITS}"));
        let report = run(&db, &expected);
        assert!(violated(&report).contains(&ViolationKind::Phantom), "{report:?}");
        let huge = -5i64 as u64;
        assert_eq!(
            detail(&report, ViolationKind::Prefix),
            format!("writer {WRITER}: {huge} is present but {COMMITS}..={} are not", huge - 1)
        );
        assert_eq!(report.present[&WRITER], huge);
    }

    /// Removes transaction (WRITER, seq) wholly: its ledger row, its messages, and their share
    /// of the session counters, so only the hole remains.
    fn remove_whole_txn(db: &Path, seq: u64) {
        mutate(
            db,
            &format!(
                "UPDATE sessions SET message_count = message_count - \
                   (SELECT count(*) FROM messages m WHERE m.session_id = sessions.id AND writer = {WRITER} AND txn = {seq}), \
                 content_bytes = content_bytes - (SELECT coalesce(sum(length(CAST(content AS BLOB))), 0) FROM messages m \
                   WHERE m.session_id = sessions.id AND writer = {WRITER} AND txn = {seq}); \
                 DELETE FROM messages WHERE writer = {WRITER} AND txn = {seq}; \
                 DELETE FROM ledger WHERE writer = {WRITER} AND seq = {seq};"
            ),
        );
    }

    #[test]
    fn prefix_fires_on_a_hole_and_lost_ack_with_it_when_the_hole_was_acknowledged() {
        // Find an append (compressions rewrite other transactions' rows, edits touch others').
        let (_dir, db, mut expected) = clean(JournalMode::Wal);
        let seq = first_plain_append(&db) as i64;
        remove_whole_txn(&db, seq as u64);
        let report = run(&db, &expected);
        assert_eq!(violated(&report), vec![ViolationKind::LostAck, ViolationKind::Prefix], "{report:?}");
        // Unacknowledged (begun, never acked): a hole is still a hole, nothing acked is lost.
        expected.writers.get_mut(&WRITER).unwrap().acked = seq as u64 - 1;
        assert_eq!(violated(&run(&db, &expected)), vec![ViolationKind::Prefix]);
    }

    /// A transaction whose COMMIT reported an error was never acknowledged, whatever came after
    /// it: its absence is a hole (prefix), never a lost acknowledgement. `lost_ack` once demanded
    /// every seq up to the highest acknowledged one, a false alarm here.
    #[test]
    fn a_missing_transaction_that_was_never_acknowledged_is_not_a_lost_ack() {
        let (_dir, db, mut expected) = clean(JournalMode::Wal);
        let seq = first_plain_append(&db) as i64;
        remove_whole_txn(&db, seq as u64);
        let acked: Vec<u64> = (1..=COMMITS).filter(|&s| s != seq as u64).collect();
        expected.writers.insert(WRITER, WriterExpectation::from_acked(&acked, COMMITS + 1));
        assert_eq!(expected.writers[&WRITER].unacked, vec![seq as u64]);
        assert_eq!(violated(&run(&db, &expected)), vec![ViolationKind::Prefix]);
    }

    #[test]
    fn reopen_write_fires_when_the_first_append_after_recovery_fails() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        mutate(&db, "CREATE TRIGGER no_more BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'malformed'); END;");
        let report = run(&db, &expected);
        assert_eq!(violated(&report), vec![ViolationKind::ReopenWrite], "{report:?}");
    }

    /// Sets the header's write version above 2: SQLite opens the file read-only.
    fn make_read_only(db: &Path) {
        let mut bytes = std::fs::read(db).unwrap();
        bytes[18] = 3;
        std::fs::write(db, &bytes).unwrap();
    }

    /// An image SQLite reads but will not write fails check 8 at the application's first
    /// write: setting WAL mode, the append, or a foreign database's probe table.
    #[test]
    fn reopen_write_fires_on_an_image_sqlite_opens_read_only() {
        let (dir, db, expected) = clean(JournalMode::Delete);
        make_read_only(&db);
        let in_wal_mode = sole_violation(&run(&db, &expected), ViolationKind::ReopenWrite);
        assert!(in_wal_mode.starts_with("PRAGMA journal_mode after recovery: "), "{in_wal_mode}");
        let report = check_copy(&db, &cfg(JournalMode::Delete), Some(&expected)).unwrap();
        let in_its_own_mode = sole_violation(&report, ViolationKind::ReopenWrite);
        assert!(in_its_own_mode.starts_with("append a message after recovery: "), "{in_its_own_mode}");

        let foreign = dir.path().join("foreign.sqlite");
        mutate(&foreign, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
        make_read_only(&foreign);
        let mut c = cfg(JournalMode::Wal);
        c.reopen.pragmas = None;
        let probe = sole_violation(&check_copy(&foreign, &c, None).unwrap(), ViolationKind::ReopenWrite);
        assert!(probe.starts_with("write a probe table after recovery: "), "{probe}");
    }

    #[test]
    fn reopen_write_fires_when_a_pragma_does_not_read_back_after_recovery() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        let mut c = cfg(JournalMode::Wal);
        // SQLite reads a negative wal_autocheckpoint back as 0.
        c.reopen.pragmas.as_mut().unwrap().wal_autocheckpoint_pages = -1;
        let detail = sole_violation(&check_copy(&db, &c, Some(&expected)).unwrap(), ViolationKind::ReopenWrite);
        assert_eq!(detail, "after recovery: PRAGMA wal_autocheckpoint: set -1, read back 0");
    }

    #[test]
    fn reopen_write_fires_when_the_appended_message_does_not_read_back() {
        // The append commits, and a trigger of the image has taken its message away again.
        let writer = cfg(JournalMode::Wal).reopen.writer_id;
        let sql = format!(
            "CREATE TRIGGER vanish AFTER INSERT ON ledger WHEN new.writer = {writer} \
             BEGIN DELETE FROM messages WHERE writer = {writer}; END;"
        );
        let detail = sole_violation_after(&sql, ViolationKind::ReopenWrite);
        assert_eq!(detail, "the appended message reads back 0 times");
    }

    /// A WAL-mode session store whose last `commits` transactions of `WRITER` are only in its
    /// WAL, with the connection that wrote them still open (so the WAL stays hot); also the
    /// seed's transaction count and the database file as it was before those commits.
    fn live_wal(commits: u64) -> (tempfile::TempDir, std::path::PathBuf, Connection, u64, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let w = workload_cfg();
        let mut conn = Connection::open(&db).unwrap();
        let n = crate::testkit::seed_store(
            &mut conn,
            &w,
            &Pragmas { wal_autocheckpoint_pages: 0, ..pragmas(JournalMode::Wal) },
            1,
        );
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        let before = std::fs::read(&db).unwrap();
        let mut txn = TxnWriter::new(WRITER, 2, &w);
        for _ in 0..commits {
            txn.run_txn(&mut conn, &mut |_| {}).unwrap();
        }
        (dir, db, conn, n, before)
    }

    /// A lock is contention, not damage: check 8 meeting SQLITE_BUSY could not run; it never
    /// reports a violation (it once did, a false `reopen_write`).
    #[test]
    fn reopen_write_meeting_a_lock_could_not_run_and_is_no_violation() {
        for mode in [JournalMode::Wal, JournalMode::Delete] {
            let (_dir, db, _) = clean(mode);
            let holder = Connection::open(&db).unwrap();
            holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
            let outcome = reopen_write(&db, &cfg(mode), true).unwrap();
            assert!(matches!(outcome, CheckOutcome::CouldNotRun { .. }), "{mode:?}: {outcome:?}");
            holder.execute_batch("COMMIT").unwrap();
            assert_eq!(reopen_write(&db, &cfg(mode), true).unwrap(), CheckOutcome::Pass, "{mode:?}");
        }
    }

    #[test]
    fn a_hot_wal_is_recovered_and_its_commits_count() {
        // Copy the files while a connection still holds the WAL open: the image has a hot WAL
        // holding the last commits, and they must be found.
        let (dir, db, _conn, n, _) = live_wal(5);
        let image = dir.path().join("image");
        crate::base::dbfiles::copy_image(&db, &image).unwrap();
        assert!(image.join("db.sqlite-wal").exists());
        let image2 = dir.path().join("image2");
        std::fs::create_dir(&image2).unwrap();
        std::fs::copy(image.join("db.sqlite"), image2.join("db.sqlite")).unwrap();
        let expected = Expected::of_writers(BTreeMap::from([
            (0, WriterExpectation::upto(n, n)),
            (WRITER, WriterExpectation::upto(5, 5)),
        ]));
        let report = check_image(&image.join("db.sqlite"), &cfg(JournalMode::Wal), Some(&expected)).unwrap();
        assert!(report.violations().is_empty(), "{report:?}");
        // Without the WAL, the acknowledged commits are gone: the oracle must say so.
        let report = check_image(&image2.join("db.sqlite"), &cfg(JournalMode::Wal), Some(&expected)).unwrap();
        assert!(report.violations().contains(&ViolationKind::LostAck), "{report:?}");
    }

    /// The hazards campaign once stopped with exit 3 on this image ("checks could not run:
    /// fts: disk I/O error"): a database file swapped for its older self under a live WAL.
    /// What SQLite says reading it is the image's finding, never a harness error.
    #[test]
    fn a_database_swapped_under_its_wal_is_a_finding_not_a_harness_error() {
        let (dir, db, conn, n, older) = live_wal(COMMITS);
        // The restore: the file of before, under the WAL of after; the WAL's frames point at
        // pages the old file does not have.
        let image = dir.path().join("image");
        crate::base::dbfiles::copy_image(&db, &image).unwrap();
        drop(conn);
        std::fs::write(image.join("db.sqlite"), &older[..older.len() / 2]).unwrap();
        let expected = Expected::of_writers(BTreeMap::from([
            (session_store::SEED_WRITER, WriterExpectation::upto(n, n)),
            (WRITER, WriterExpectation::upto(COMMITS, COMMITS)),
        ]));
        let report = check_image(&image.join("db.sqlite"), &cfg(JournalMode::Wal), Some(&expected))
            .expect("a damaged image is a finding, never a harness error");
        assert!(!report.violations().is_empty(), "{report:?}");
        assert_eq!(report.could_not_run(), None, "{report:?}");
        let details = format!("{report:?}");
        assert!(details.contains("SQLITE_"), "a finding names SQLite's extended code: {details}");
    }

    #[test]
    fn a_foreign_database_gets_open_integrity_fts_and_a_probe_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("foreign.sqlite");
        mutate(
            &db,
            "CREATE TABLE t(x); INSERT INTO t VALUES (1); CREATE VIRTUAL TABLE f USING fts5(a); INSERT INTO f VALUES ('hello');",
        );
        let mut c = cfg(JournalMode::Wal);
        c.reopen.pragmas = None;
        let report = check_copy(&db, &c, None).unwrap();
        let kinds: Vec<ViolationKind> = report.results.iter().map(|r| r.check).collect();
        use ViolationKind::*;
        assert_eq!(kinds, vec![Open, Integrity, Fts, ReopenWrite]);
        assert!(report.violations().is_empty(), "{report:?}");
        assert!(!report.session_store);
    }

    fn seqs_strategy() -> impl Strategy<Value = BTreeMap<u64, Vec<u64>>> {
        // Mostly 1..30; now and then a 0 or a number near 2^64, as only damage leaves them.
        let seq = prop_oneof![8 => 1u64..30, 1 => Just(0), 1 => (0u64..3).prop_map(|k| u64::MAX - k)];
        proptest::collection::btree_map(0u64..4, proptest::collection::btree_set(seq, 0..30), 0..4)
            .prop_map(|m| m.into_iter().map(|(w, s)| (w, s.into_iter().collect())).collect())
    }

    proptest! {
        /// The pure ledger checks agree with their definitions on any present set.
        #[test]
        fn ledger_checks_match_their_definitions(
            seqs in seqs_strategy(),
            exp in proptest::collection::btree_map(0u64..4, (0u64..30, 0u64..30), 0..4),
        ) {
            let expected = Expected::of_writers(exp.iter().map(|(&w, &(a, b))| (w, WriterExpectation::upto(a.min(b), a.max(b)))).collect());
            let has = |w: u64, s: u64| seqs.get(&w).is_some_and(|v| v.contains(&s));
            let lost = expected.writers.iter().any(|(&w, e)| (1..=e.acked).any(|s| !has(w, s)));
            prop_assert_eq!(!lost_acks(&seqs, &expected).is_empty(), lost);
            let phantom = seqs.iter().any(|(w, v)| match expected.writers.get(w) {
                None => true,
                Some(e) => v.iter().any(|&s| s > e.begun || s == 0),
            });
            prop_assert_eq!(!phantoms(&seqs, &expected).is_empty(), phantom);
            let hole = seqs.values().any(|v| v.iter().enumerate().any(|(i, &s)| s != i as u64 + 1));
            prop_assert_eq!(!holes(&seqs).is_empty(), hole);
        }
    }

    /// No transaction has sequence number 0: a ledger row with it was never begun.
    #[test]
    fn a_sequence_number_zero_is_a_phantom() {
        let seqs = BTreeMap::from([(7, vec![0, 1, 2])]);
        let expected = Expected::of_writers(BTreeMap::from([(7, WriterExpectation::upto(2, 3))]));
        assert_eq!(phantoms(&seqs, &expected), vec!["writer 7: began 1..=3, yet 0 are present"]);
        assert_eq!(lost_acks(&seqs, &expected), Vec::<String>::new());
    }

    #[test]
    fn holes_are_named_from_neighbours_never_counted_up_to() {
        let holes_of = |present: Vec<u64>| holes(&BTreeMap::from([(7, present)]));
        assert_eq!(holes_of(vec![1, 2, 3]), Vec::<String>::new());
        assert_eq!(holes_of(vec![0, 1, 2]), vec!["writer 7: sequence number 0 is present"]);
        assert_eq!(holes_of(vec![0, 2]), vec!["writer 7: 2 is present but 1 are not"]);
        assert_eq!(
            holes_of(vec![1, u64::MAX]),
            vec![format!("writer 7: {} is present but 2..={} are not", u64::MAX, u64::MAX - 1)]
        );
        let every_other: Vec<u64> = (1..=8).map(|k| 2 * k).collect();
        assert_eq!(holes_of(every_other), vec!["writer 7: 16 is present but 1, 3, 5, 7, 9, 11, ... are not"]);
    }

    #[test]
    fn ranges_read_well() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1..=3, 5, 7..=8");
        assert_eq!(ranges(&[1, 3, 5, 7, 9, 11]), "1, 3, 5, 7, 9, 11");
        assert_eq!(ranges(&[1, 3, 5, 7, 9, 11, 13]), "1, 3, 5, 7, 9, 11, ...");
        assert_eq!(ranges(&[]), "");
    }
}

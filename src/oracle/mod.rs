//! The oracle: checks 1–8 applied to one crash image (`ViolationKind` lists them).
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
//! the way the application would on restart, with the cell's pragmas, and appends a message.
//! The image is modified by recovery and by check 8: callers run this on a copy they own
//! ([`check_copy`] makes one).
//!
//! What "present" means is the workload's ledger (see `workload`): per writer, the set of
//! sequence numbers with a ledger row. With the acknowledgements ([`Expected`]) that gives
//! durability (4), no phantom (5) and prefix (7); the ledger's `live_rows`, the message rows'
//! tags and hashes and the sessions' counters give atomicity (6) without any acknowledgement.

pub mod crosscheck;

use crate::base::sqlerr::{self, ErrorClass};
use crate::record::checks::{CheckOutcome, CheckResult, ViolationKind};
use crate::record::expected::Expected;
use crate::writer::pragmas::{self, Pragmas};
use crate::writer::session_store::{self, FTS_BODY_SQL, FTS_TABLES, Tokenizer, TxnWriter, WorkloadConfig};
use anyhow::{Context, anyhow};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

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
fn is_finding(e: &rusqlite::Error) -> bool {
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

/// Runs every check on the image at `db_path` (modifying it: see the module doc).
pub fn check_image(db_path: &Path, cfg: &CheckConfig, expected: Option<&Expected>) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport { results: Vec::new(), present: BTreeMap::new(), session_store: false };
    let ledger_kinds: &[ViolationKind] = match expected {
        Some(_) => &[ViolationKind::LostAck, ViolationKind::Phantom, ViolationKind::Atomicity, ViolationKind::Prefix],
        None => &[ViolationKind::Atomicity, ViolationKind::Prefix],
    };

    // 1. open
    let t = Instant::now();
    let opened = match open_image(db_path) {
        Ok(conn) => {
            // The first read of the schema after the one that opened it: damage met here is
            // still the open check's.
            match session_store::is_session_store(&conn) {
                Ok(session_store) => Ok((conn, session_store)),
                Err(e) => Err(classify(&report, "read the schema", e)?),
            }
        }
        Err(OpenFailure::Outcome(outcome)) => Err(outcome),
        Err(OpenFailure::Harness(e)) => return Err(e),
    };
    let conn = match opened {
        Ok((conn, session_store)) => {
            report.push(ViolationKind::Open, CheckOutcome::Pass, t);
            report.session_store = session_store;
            conn
        }
        Err(outcome) => {
            let reason = match &outcome {
                CheckOutcome::Violation { detail } => format!("the image does not open ({detail})"),
                CheckOutcome::CouldNotRun { reason } => format!("the image could not be opened ({reason})"),
                CheckOutcome::Pass | CheckOutcome::Blocked { .. } => unreachable!("open failed"),
            };
            report.push(ViolationKind::Open, outcome, t);
            for &kind in [ViolationKind::Integrity, ViolationKind::Fts].iter().chain(ledger_kinds) {
                report.push(kind, CheckOutcome::Blocked { reason: reason.clone() }, Instant::now());
            }
            report.push(ViolationKind::ReopenWrite, CheckOutcome::Blocked { reason }, Instant::now());
            return Ok(report);
        }
    };

    // 2. integrity
    let t = Instant::now();
    let (outcome, fts_verdicts) = match integrity(&conn, cfg.integrity) {
        Ok((outcome, lines)) => (outcome, lines),
        Err(e) => (classify(&report, "integrity_check", e)?, None),
    };
    report.push(ViolationKind::Integrity, outcome, t);

    // 3. fts
    let t = Instant::now();
    let outcome = match fts(&conn, cfg, report.session_store, fts_verdicts.as_deref()) {
        Ok(problems) => outcome_of(problems),
        Err(e) => classify(&report, "fts", e)?,
    };
    report.push(ViolationKind::Fts, outcome, t);

    // 4–7. the ledger
    if report.session_store {
        ledger_checks(&conn, expected, &mut report)?;
    } else if expected.is_some() {
        // A trial's image always starts with the schema: losing it loses every commit.
        let t = Instant::now();
        let acked: u64 = expected.map_or(0, |e| e.writers.values().map(|w| w.acked).sum());
        let outcome = if acked > 0 {
            CheckOutcome::Violation {
                detail: format!("the session store's tables are gone: {acked} acknowledged commits lost"),
            }
        } else {
            CheckOutcome::Pass
        };
        report.push(ViolationKind::LostAck, outcome, t);
        for kind in [ViolationKind::Phantom, ViolationKind::Atomicity, ViolationKind::Prefix] {
            report.push(kind, CheckOutcome::Blocked { reason: "no session store tables".into() }, Instant::now());
        }
    }
    drop(conn);

    // 8. write after recovery
    let t = Instant::now();
    let outcome = if expected.is_some() && !report.session_store {
        CheckOutcome::Blocked { reason: "no session store tables to append to".into() }
    } else {
        reopen_write(db_path, cfg, report.session_store)?
    };
    report.push(ViolationKind::ReopenWrite, outcome, t);
    Ok(report)
}

fn outcome_of(problems: Vec<String>) -> CheckOutcome {
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

/// Why check 1 did not give a connection: its outcome (a violation, or could not run), or a
/// harness error.
enum OpenFailure {
    Outcome(CheckOutcome),
    Harness(anyhow::Error),
}

/// How long a check's connection waits for a lock. Nothing but the oracle has an image open,
/// so a lock that outlasts this was left by a process that should be gone.
pub const CHECK_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Check 1: the file exists, opens without being created, and a first read of the schema
/// succeeds.
fn open_image(db_path: &Path) -> Result<Connection, OpenFailure> {
    if !db_path.exists() {
        let detail = format!("{} does not exist", db_path.display());
        return Err(OpenFailure::Outcome(CheckOutcome::Violation { detail }));
    }
    let failure = |step: &str, e: rusqlite::Error| {
        let detail = format!("{step}: {}", sqlerr::describe(&e));
        match sqlerr::classify(&e) {
            ErrorClass::Finding => OpenFailure::Outcome(CheckOutcome::Violation { detail }),
            ErrorClass::Locked => OpenFailure::Outcome(CheckOutcome::CouldNotRun { reason: detail }),
            ErrorClass::Harness => OpenFailure::Harness(anyhow!("{} {detail}", db_path.display())),
        }
    };
    // Never SQLITE_OPEN_CREATE: a missing image must not turn into an empty database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db_path, flags).map_err(|e| failure("open", e))?;
    conn.busy_timeout(CHECK_BUSY_TIMEOUT).map_err(|e| failure("busy_timeout", e))?;
    // The first read is what runs recovery and reads page 1.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map_err(|e| failure("first read", e))?;
    Ok(conn)
}

/// Check 2: `PRAGMA integrity_check` (or `quick_check`), which since SQLite 3.44 also runs the
/// FTS5 tables' own integrity checks.
///
/// Returns the outcome and, when the pragma ran to completion (fewer errors than its limit),
/// its lines: they then include the verdict of every FTS5 table's `xIntegrity`, which is the
/// very function the FTS5 `integrity-check` command runs (`sqlite3Fts5StorageIntegrity`; for
/// tables with their own content the command's rank argument changes nothing). Check 3 reads
/// its verdict from those lines instead of running the same O(index) work a second time: on
/// the default workload that halves the cost of checking an image.
fn integrity(conn: &Connection, level: IntegrityLevel) -> rusqlite::Result<(CheckOutcome, Option<Vec<String>>)> {
    const ERRORS_MAX: usize = 20;
    let pragma = match level {
        // Both variants call xIntegrity on virtual tables (quick_check only skips the
        // index-against-table comparisons of ordinary tables).
        IntegrityLevel::Full => format!("PRAGMA integrity_check({ERRORS_MAX})"),
        IntegrityLevel::Quick => format!("PRAGMA quick_check({ERRORS_MAX})"),
    };
    let mut stmt = conn.prepare(&pragma)?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    // A row may hold several findings, one per line, under a "*** in database main ***" header.
    let lines: Vec<String> = rows
        .iter()
        .flat_map(|row| row.lines())
        .filter(|l| !l.is_empty() && !l.starts_with("*** in database"))
        .map(str::to_string)
        .collect();
    let outcome = if lines.len() == 1 && lines[0] == "ok" { CheckOutcome::Pass } else { outcome_of(lines.clone()) };
    // At the limit the pragma stops early, possibly before the virtual tables' pass.
    let complete = lines.len() < ERRORS_MAX;
    Ok((outcome, complete.then_some(lines)))
}

/// The FTS5 findings for `table` among `integrity_check`'s lines. SQLite words them
/// "malformed inverted index for FTS5 table main.T", "unable to validate the inverted index
/// for FTS5 table main.T: ..." or, when FTS5 itself says more, "fts5: corruption found reading
/// blob N from table \"T\"".
fn fts_lines_for<'a>(lines: &'a [String], table: &str) -> impl Iterator<Item = &'a String> {
    let dotted = format!("FTS5 table main.{table}");
    let quoted = format!("table \"{table}\"");
    lines.iter().filter(move |l| l.ends_with(&dotted) || l.contains(&format!("{dotted}:")) || l.contains(&quoted))
}

/// Check 3: FTS5 `integrity-check` on every FTS5 table (read from `integrity_lines` when
/// check 2 ran it to completion, run as the command otherwise); for the session store also
/// the row sets and bodies of both indexes against `messages`, and sampled MATCH queries.
/// Returns the problems found.
fn fts(
    conn: &Connection,
    cfg: &CheckConfig,
    session_store: bool,
    integrity_lines: Option<&[String]>,
) -> rusqlite::Result<Vec<String>> {
    let mut problems = Vec::new();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' \
             AND lower(sql) LIKE '%using fts5%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in &tables {
        if let Some(lines) = integrity_lines {
            problems.extend(fts_lines_for(lines, table).map(|l| format!("{table}: integrity-check: {l}")));
            continue;
        }
        let q = quote_ident(table);
        match conn.execute(&format!("INSERT INTO {q}({q}, rank) VALUES ('integrity-check', 1)"), []) {
            Ok(_) => {}
            Err(e) if is_finding(&e) => problems.push(format!("{table}: integrity-check: {}", sqlerr::describe(&e))),
            Err(e) => return Err(e),
        }
    }
    if !session_store {
        return Ok(problems);
    }
    for (table, tokenizer) in FTS_TABLES {
        if !tables.iter().any(|t| t == table) {
            problems.push(format!("{table}: missing"));
            continue;
        }
        // Damage met while comparing or querying is this check's finding too: reading the
        // index is what the check does.
        for step in [
            index_matches_rows(conn, table, &mut problems),
            sampled_queries(conn, table, tokenizer, cfg, &mut problems),
        ] {
            match step {
                Ok(()) => {}
                Err(e) if is_finding(&e) => problems.push(format!("{table}: {}", sqlerr::describe(&e))),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(problems)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every message has an index row with its body, and every index row has a message.
fn index_matches_rows(conn: &Connection, table: &str, problems: &mut Vec<String>) -> rusqlite::Result<()> {
    let count = |sql: String| conn.query_row(&sql, [], |r| r.get::<_, i64>(0));
    let missing = count(format!(
        "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM {table} f WHERE f.rowid = m.id)"
    ))?;
    if missing > 0 {
        problems.push(format!("{table}: {missing} messages have no index row"));
    }
    let stale = count(format!(
        "SELECT count(*) FROM {table} f WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = f.rowid)"
    ))?;
    if stale > 0 {
        problems.push(format!("{table}: {stale} index rows have no message"));
    }
    let differ = count(format!(
        "SELECT count(*) FROM messages m JOIN {table} f ON f.rowid = m.id WHERE f.body IS NOT m.{}",
        FTS_BODY_SQL.replace(" || ' ' || ", " || ' ' || m.")
    ))?;
    if differ > 0 {
        problems.push(format!("{table}: {differ} index rows hold a body that differs from their message"));
    }
    Ok(())
}

/// MATCH queries for terms taken from random messages: the sampled row must be among the hits,
/// and every hit must be a message (for trigram: one whose body holds the substring).
fn sampled_queries(
    conn: &Connection,
    table: &str,
    tokenizer: Tokenizer,
    cfg: &CheckConfig,
    problems: &mut Vec<String>,
) -> rusqlite::Result<()> {
    let (lo, hi): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT min(id), max(id) FROM messages", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(()) };
    let salt = match tokenizer {
        Tokenizer::Unicode61 => 1,
        Tokenizer::Trigram => 2,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ salt);
    let mut row =
        conn.prepare(&format!("SELECT id, {FTS_BODY_SQL} FROM messages WHERE id >= ?1 ORDER BY id LIMIT 1"))?;
    let mut includes = conn.prepare(&format!("SELECT count(*) FROM {table} WHERE {table} MATCH ?1 AND rowid = ?2"))?;
    let hit_check = match tokenizer {
        Tokenizer::Unicode61 => format!(
            "SELECT count(*) FROM {table} WHERE {table} MATCH ?1 \
             AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = {table}.rowid) AND ?2 IS NOT NULL"
        ),
        Tokenizer::Trigram => format!(
            "SELECT count(*) FROM {table} WHERE {table} MATCH ?1 AND NOT EXISTS (SELECT 1 FROM messages m \
             WHERE m.id = {table}.rowid AND instr(lower(m.{}), lower(?2)) > 0)",
            FTS_BODY_SQL.replace(" || ' ' || ", " || ' ' || m.")
        ),
    };
    let mut bad_hits = conn.prepare(&hit_check)?;
    // `fts_samples` queries; a row without a usable term is skipped, at most four attempts per
    // sample.
    let mut sampled = 0;
    for _ in 0..cfg.fts_samples.saturating_mul(4) {
        if sampled == cfg.fts_samples || problems.len() > 16 {
            break;
        }
        let from = rng.random_range(lo..=hi);
        // A body that is not text is the atomicity check's finding (torn row), not ours.
        let Some((id, Some(body))) =
            row.query_row([from], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1).ok()))).optional()?
        else {
            continue;
        };
        let Some(term) = pick_term(&body, tokenizer, &mut rng) else { continue };
        sampled += 1;
        let query = format!("\"{term}\"");
        if includes.query_row(rusqlite::params![query, id], |r| r.get::<_, i64>(0))? == 0 {
            problems.push(format!("{table}: MATCH {query} misses message {id}, which contains it"));
        }
        let bad = bad_hits.query_row(rusqlite::params![query, term], |r| r.get::<_, i64>(0))?;
        if bad > 0 {
            problems.push(format!("{table}: MATCH {query} returns {bad} rows that are not messages containing it"));
        }
    }
    Ok(())
}

/// A query term present in `body`: an ASCII alphanumeric token for unicode61 (which splits
/// on everything else and folds only case), a 3–8 character ASCII alphanumeric substring for
/// trigram. ASCII only, so SQLite's `lower()` folds exactly as the tokenizers do.
fn pick_term(body: &str, tokenizer: Tokenizer, rng: &mut ChaCha8Rng) -> Option<String> {
    let runs: Vec<&str> = body.split(|c: char| !c.is_ascii_alphanumeric()).filter(|r| !r.is_empty()).collect();
    match tokenizer {
        Tokenizer::Unicode61 => {
            // A run next to a non-ASCII letter may be glued to it by the tokenizer ("café"
            // is one token, so "caf" is not one): take runs bounded by ASCII separators.
            let tokens: Vec<&str> = body
                .split(|c: char| c.is_ascii_whitespace() || c.is_ascii_punctuation() || c == '\0')
                .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()))
                .collect();
            (!tokens.is_empty()).then(|| tokens[rng.random_range(0..tokens.len())].to_string())
        }
        Tokenizer::Trigram => {
            let long: Vec<&str> = runs.into_iter().filter(|r| r.len() >= 3).collect();
            if long.is_empty() {
                return None;
            }
            let run = long[rng.random_range(0..long.len())];
            let len = rng.random_range(3..=run.len().min(8));
            let start = rng.random_range(0..=run.len() - len);
            Some(run[start..start + len].to_string())
        }
    }
}

/// Checks 4–7 from the ledger, messages and sessions.
fn ledger_checks(conn: &Connection, expected: Option<&Expected>, report: &mut CheckReport) -> anyhow::Result<()> {
    let t = Instant::now();
    let seqs = match ledger_seqs(conn) {
        Ok(seqs) => seqs,
        Err(e) => {
            let outcome = classify(report, "read the ledger", e)?;
            let kinds: &[ViolationKind] = match expected {
                Some(_) => {
                    &[ViolationKind::LostAck, ViolationKind::Phantom, ViolationKind::Atomicity, ViolationKind::Prefix]
                }
                None => &[ViolationKind::Atomicity, ViolationKind::Prefix],
            };
            for &kind in kinds {
                report.push(kind, outcome.clone(), t);
            }
            return Ok(());
        }
    };
    report.present = seqs.iter().map(|(&w, s)| (w, s.last().copied().unwrap_or(0))).collect();
    if let Some(expected) = expected {
        report.push(ViolationKind::LostAck, outcome_of(lost_acks(&seqs, expected)), t);
        let t = Instant::now();
        report.push(ViolationKind::Phantom, outcome_of(phantoms(&seqs, expected)), t);
    }
    let t = Instant::now();
    let outcome = match atomicity(conn) {
        Ok(problems) => outcome_of(problems),
        Err(e) => classify(report, "atomicity queries", e)?,
    };
    report.push(ViolationKind::Atomicity, outcome, t);
    let t = Instant::now();
    report.push(ViolationKind::Prefix, outcome_of(holes(&seqs)), t);
    Ok(())
}

/// Per writer, the sorted sequence numbers present in the ledger.
fn ledger_seqs(conn: &Connection) -> rusqlite::Result<BTreeMap<u64, Vec<u64>>> {
    let mut seqs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT writer, seq FROM ledger ORDER BY writer, seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (w, s) = row?;
        // Negative values can only come from damage; keep them visible as huge numbers.
        seqs.entry(w as u64).or_default().push(s as u64);
    }
    // SQLite ordered them as signed numbers: a negative one read back huge goes last.
    seqs.values_mut().for_each(|s| s.sort_unstable());
    Ok(seqs)
}

/// `a..=b` ranges of a sorted list, for details ("36..=37, 40").
fn ranges(values: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < values.len() && out.len() < 6 {
        let start = values[i];
        while i + 1 < values.len() && values[i + 1] == values[i] + 1 {
            i += 1;
        }
        out.push(if values[i] == start { start.to_string() } else { format!("{start}..={}", values[i]) });
        i += 1;
    }
    if i < values.len() {
        out.push("...".into());
    }
    out.join(", ")
}

/// Check 4: every acknowledged sequence number is present.
pub fn lost_acks(seqs: &BTreeMap<u64, Vec<u64>>, expected: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    for (&w, e) in &expected.writers {
        let present = seqs.get(&w).map_or(&[][..], Vec::as_slice);
        let lost: Vec<u64> =
            (1..=e.acked).filter(|s| present.binary_search(s).is_err() && !e.unacked.contains(s)).collect();
        if !lost.is_empty() {
            problems.push(format!("writer {w}: acknowledged 1..={}, lost {}", e.acked, ranges(&lost)));
        }
    }
    problems
}

/// Check 5: nothing from an unknown writer, nothing beyond what a writer began.
pub fn phantoms(seqs: &BTreeMap<u64, Vec<u64>>, expected: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    for (&w, present) in seqs {
        match expected.writers.get(&w) {
            None => {
                problems.push(format!("writer {w} never ran, yet {} of its transactions are present", present.len()))
            }
            Some(e) => {
                let beyond: Vec<u64> = present.iter().copied().filter(|&s| s > e.begun || s == 0).collect();
                if !beyond.is_empty() {
                    problems.push(format!("writer {w}: began 1..={}, yet {} are present", e.begun, ranges(&beyond)));
                }
            }
        }
    }
    problems
}

/// Check 7: per writer, the present sequence numbers are `1..=max` with no hole (and no 0,
/// which no transaction has).
pub fn holes(seqs: &BTreeMap<u64, Vec<u64>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (&w, present) in seqs {
        // Sorted and distinct: a prefix when the i-th is i + 1.
        if present.iter().enumerate().all(|(i, &s)| s == i as u64 + 1) {
            continue;
        }
        // The holes lie between neighbours: never count up to `max`, which a damaged row can
        // put near 2^64.
        let mut holes = Vec::new();
        let mut next = 1;
        for &s in present.iter().filter(|&&s| s > 0) {
            if s > next {
                holes.push(if s - 1 == next { next.to_string() } else { format!("{next}..={}", s - 1) });
            }
            next = s.saturating_add(1);
        }
        let max = present.last().copied().unwrap_or(0);
        problems.push(match holes.len() {
            0 => format!("writer {w}: sequence number 0 is present"),
            1..=6 => format!("writer {w}: {max} is present but {} are not", holes.join(", ")),
            _ => format!("writer {w}: {max} is present but {}, ... are not", holes[..6].join(", ")),
        });
    }
    problems
}

/// Check 6: every transaction's rows are all there or all gone.
fn atomicity(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT l.writer, l.seq, l.kind, l.live_rows, \
         (SELECT count(*) FROM messages m WHERE m.writer = l.writer AND m.txn = l.seq) AS found \
         FROM ledger l WHERE found != l.live_rows LIMIT 20",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "transaction ({}, {}) ({}) left {} message rows, {} are present",
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?
        ))
    })?;
    for row in rows {
        problems.push(row?);
    }
    let mut stmt = conn.prepare(
        "SELECT writer, txn, count(*) FROM messages m \
         WHERE NOT EXISTS (SELECT 1 FROM ledger l WHERE l.writer = m.writer AND l.seq = m.txn) \
         GROUP BY writer, txn LIMIT 20",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{} message rows of transaction ({}, {}), which has no ledger row",
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?
        ))
    })?;
    for row in rows {
        problems.push(row?);
    }
    let mut stmt = conn.prepare(
        "SELECT s.id, s.message_count, s.content_bytes, count(m.id), coalesce(sum(length(CAST(m.content AS BLOB))), 0) \
         FROM sessions s LEFT JOIN messages m ON m.session_id = s.id GROUP BY s.id \
         HAVING s.message_count != count(m.id) OR s.content_bytes != coalesce(sum(length(CAST(m.content AS BLOB))), 0) \
         LIMIT 20",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "session {} says {} messages / {} bytes, holds {} / {}",
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?
        ))
    })?;
    for row in rows {
        problems.push(row?);
    }
    let orphans: i64 = conn.query_row(
        "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = m.session_id)",
        [],
        |r| r.get(0),
    )?;
    if orphans > 0 {
        problems.push(format!("{orphans} messages belong to no session"));
    }
    let mut stmt = conn.prepare("SELECT id, content, tool_name, tool_calls, row_hash FROM messages")?;
    let mut rows = stmt.query([])?;
    let mut torn = Vec::new();
    // Raw bytes, not `String`: a torn row may hold a NULL or invalid UTF-8, and that is the
    // finding, not a reason to stop.
    let bytes = |v: rusqlite::types::ValueRef<'_>| -> Option<Vec<u8>> {
        match v {
            rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => Some(b.to_vec()),
            rusqlite::types::ValueRef::Null
            | rusqlite::types::ValueRef::Integer(_)
            | rusqlite::types::ValueRef::Real(_) => None,
        }
    };
    while let Some(r) = rows.next()? {
        let parts = (bytes(r.get_ref(1)?), bytes(r.get_ref(2)?), bytes(r.get_ref(3)?));
        let hash = match r.get_ref(4)? {
            rusqlite::types::ValueRef::Integer(h) => Some(h),
            rusqlite::types::ValueRef::Null
            | rusqlite::types::ValueRef::Real(_)
            | rusqlite::types::ValueRef::Text(_)
            | rusqlite::types::ValueRef::Blob(_) => None,
        };
        let whole = match (parts, hash) {
            ((Some(c), Some(t), Some(k)), Some(h)) => session_store::row_hash_bytes(&c, &t, &k) == h,
            _ => false,
        };
        if !whole {
            torn.push(r.get::<_, i64>(0)? as u64);
        }
    }
    if !torn.is_empty() {
        problems.push(format!("messages {} hold text that does not match their hash (torn rows)", ranges(&torn)));
    }
    Ok(problems)
}

/// Check 8: reopen as the application would on restart and write. For the session store, one
/// appended message (a transaction of the recovery writer) that must then read back; for any
/// other database, a throw-away table created, written and dropped.
fn reopen_write(db_path: &Path, cfg: &CheckConfig, session_store: bool) -> anyhow::Result<CheckOutcome> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = match Connection::open_with_flags(db_path, flags) {
        Ok(conn) => conn,
        Err(e) => return reopen_failure("reopen", e),
    };
    // The application's busy timeout replaces this one when its pragmas are applied.
    if let Err(e) = conn.busy_timeout(CHECK_BUSY_TIMEOUT) {
        return reopen_failure("busy_timeout", e);
    }
    if let Some(p) = &cfg.reopen.pragmas {
        // The application's pragmas, except that nothing is synced: the write lands on a
        // scratch image whose durability nothing measures (a kept failure is the pristine copy
        // taken before the checks), and its fsyncs were a tenth of every check's time.
        let p = pragmas::Pragmas { synchronous: crate::scenario::matrix::Synchronous::Off, ..p.clone() };
        match pragmas::apply(&conn, &p) {
            Ok(()) => {}
            Err(pragmas::PragmaError::Sqlite { pragma, source }) => {
                return reopen_failure(&format!("PRAGMA {pragma}"), source);
            }
            Err(e @ pragmas::PragmaError::Mismatch { .. }) => {
                return Ok(CheckOutcome::Violation { detail: format!("after recovery: {e}") });
            }
        }
    }
    if !session_store {
        let probe = "BEGIN IMMEDIATE; CREATE TABLE crashfuzz_probe(x); \
                     INSERT INTO crashfuzz_probe VALUES (randomblob(1000)); DROP TABLE crashfuzz_probe; COMMIT;";
        return match conn.execute_batch(probe) {
            Ok(()) => Ok(CheckOutcome::Pass),
            Err(e) => reopen_failure("write a probe table", e),
        };
    }
    let writer = cfg.reopen.writer_id;
    let mut txn = TxnWriter::new(writer, cfg.seed, &cfg.reopen.workload);
    txn.append_next();
    if let Err(e) = txn.run_txn(&mut conn, &mut |_| {}) {
        return reopen_failure("append a message", e);
    }
    let found: rusqlite::Result<i64> = conn.query_row(
        "SELECT count(*) FROM ledger l JOIN messages m ON m.writer = l.writer AND m.txn = l.seq \
         WHERE l.writer = ?1 AND l.seq = 1",
        [writer as i64],
        |r| r.get(0),
    );
    match found {
        Ok(1) => Ok(CheckOutcome::Pass),
        Ok(n) => Ok(CheckOutcome::Violation { detail: format!("the appended message reads back {n} times") }),
        Err(e) => reopen_failure("read the appended message back", e),
    }
}

/// A failed step of check 8. Any SQLite error a restart meets on the image is the symptom this
/// check exists for; a lock is contention, not damage (the check could not run); the
/// environment's failures (memory, the scratch disk) are the harness's.
fn reopen_failure(step: &str, e: rusqlite::Error) -> anyhow::Result<CheckOutcome> {
    let detail = format!("{step} after recovery: {}", sqlerr::describe(&e));
    match sqlerr::classify(&e) {
        ErrorClass::Finding => Ok(CheckOutcome::Violation { detail }),
        ErrorClass::Locked => Ok(CheckOutcome::CouldNotRun { reason: detail }),
        ErrorClass::Harness => Err(anyhow!("check 8: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::expected::WriterExpectation;
    use crate::scenario::matrix::JournalMode;
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
    fn a_clean_database_passes_every_check_in_every_journal_mode() {
        for mode in [JournalMode::Wal, JournalMode::Delete, JournalMode::Truncate, JournalMode::Persist] {
            let (_dir, db, expected) = clean(mode);
            let report = check_copy(&db, &cfg(mode), Some(&expected)).unwrap();
            assert_eq!(report.results.len(), 8, "{report:?}");
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
        assert_eq!(kinds, vec![Open, Integrity, Fts, Atomicity, Prefix, ReopenWrite]);
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
        let from_pragma = fts(&conn, &c, true, Some(&lines)).unwrap();
        let from_command = fts(&conn, &c, true, None).unwrap();
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
    }

    /// Check 3's whole list of problems on `db`, as the oracle finds them (a report's detail
    /// shows only the first few).
    fn fts_problems(db: &Path) -> Vec<String> {
        let conn = Connection::open(db).unwrap();
        let (_, lines) = integrity(&conn, IntegrityLevel::Full).unwrap();
        fts(&conn, &cfg(JournalMode::Wal), true, lines.as_deref()).unwrap()
    }

    /// Puts back every stored body of `table` as its message's: what the FTS5 table returns
    /// as `body` then matches `messages` again, whatever its inverted index holds.
    fn restore_bodies(table: &str) -> String {
        format!(
            "UPDATE {table}_content SET c0 = (SELECT {FTS_BODY_SQL} FROM messages m WHERE m.id = {table}_content.id);"
        )
    }

    #[test]
    fn fts_fires_when_match_misses_a_sampled_message_in_either_index() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        // Every row's index entries emptied, its stored body put back: the row sets and bodies
        // still agree with `messages`, but MATCH finds nothing.
        for (table, _) in FTS_TABLES {
            mutate(&db, &format!("UPDATE {table} SET body = ''; {}", restore_bodies(table)));
        }
        assert_eq!(violated(&run(&db, &expected)), vec![ViolationKind::Integrity, ViolationKind::Fts]);
        let problems = fts_problems(&db);
        for (table, _) in FTS_TABLES {
            // The FTS5 verdict in integrity_check's words, read for the table it names.
            let verdict = format!("{table}: integrity-check: malformed inverted index for FTS5 table main.{table}");
            assert!(problems.contains(&verdict), "{problems:?}");
            let missed = format!("{table}: MATCH ");
            assert!(problems.iter().any(|p| p.starts_with(&missed) && p.contains(" misses message ")), "{problems:?}");
        }
    }

    #[test]
    fn fts_fires_when_match_returns_rows_that_are_not_messages_containing_the_term_in_either_index() {
        let (_dir, db, expected) = clean(JournalMode::Wal);
        // unicode61: an index row with no message, holding every message's words. Trigram: the
        // shortest message's index entries made of every message's text, its stored body put
        // back (a hit that is a message, but not one containing the term). NULs (in the tool
        // results' sentinel) become spaces: text functions stop at them.
        let every_body = format!("(SELECT group_concat(replace({FTS_BODY_SQL}, char(0), ' '), ' ') FROM messages)");
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
        session_store::create_schema(&conn, &w).unwrap();
        pragmas::apply(&conn, &Pragmas { wal_autocheckpoint_pages: 0, ..pragmas(JournalMode::Wal) }).unwrap();
        let n = session_store::seed(&mut conn, &w, 1).unwrap();
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
        let expected = Expected {
            writers: BTreeMap::from([(0, WriterExpectation::upto(n, n)), (WRITER, WriterExpectation::upto(5, 5))]),
        };
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
        let expected = Expected {
            writers: BTreeMap::from([
                (session_store::SEED_WRITER, WriterExpectation::upto(n, n)),
                (WRITER, WriterExpectation::upto(COMMITS, COMMITS)),
            ]),
        };
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
            let expected = Expected { writers: exp.iter().map(|(&w, &(a, b))| (w, WriterExpectation::upto(a.min(b), a.max(b)))).collect() };
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
        let expected = Expected { writers: BTreeMap::from([(7, WriterExpectation::upto(2, 3))]) };
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

//! The session store's checks: what the oracle may assume about the database crashfuzz's own
//! writer writes ([`SESSION_STORE`]). Its ledger says what is present: per writer, the set of
//! sequence numbers with a ledger row. With the acknowledgements that gives durability (check
//! 4), no phantom (5) and prefix (7); the ledger's `live_rows`, the message rows' hashes and
//! the sessions' counters give atomicity (6) without any acknowledgement. Both FTS5 indexes
//! must hold exactly the messages' bodies and answer sampled MATCH queries (3), and the write
//! after recovery (8) is one appended message that must read back.

use crate::base::sqlerr;
use crate::oracle::generic::reopen_failure;
use crate::oracle::{CheckConfig, FtsProblems, Schema, is_finding};
use crate::record::checks::CheckOutcome;
use crate::record::expected::Expected;
use crate::writer::session_store::{self, FTS_TABLES, Tokenizer, TxnWriter, fts_body_sql};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use std::collections::BTreeMap;

/// The session store, as the oracle sees it.
#[derive(Debug)]
pub struct SessionStore;

/// The schema of crashfuzz's own writer.
pub static SESSION_STORE: SessionStore = SessionStore;

impl Schema for SessionStore {
    fn name(&self) -> &'static str {
        "session store"
    }

    fn recognise(&self, conn: &Connection) -> rusqlite::Result<bool> {
        session_store::is_session_store(conn)
    }

    fn fts(
        &self,
        conn: &Connection,
        fts_tables: &[String],
        samples: &[MatchSample],
        problems: &mut FtsProblems,
    ) -> rusqlite::Result<()> {
        for (table, _) in FTS_TABLES {
            if !fts_tables.iter().any(|t| t == table) {
                problems.rows.push(format!("{table}: missing"));
            }
        }
        for (table, _) in FTS_TABLES.iter().filter(|(t, _)| fts_tables.iter().any(|f| f == t)) {
            // Damage met while comparing or querying is this check's finding too: reading the
            // index is what the check does.
            let of_table: Vec<&MatchSample> = samples.iter().filter(|s| s.table == *table).collect();
            for step in [index_matches_rows(conn, table, &mut problems.rows), wrong_hits(conn, &of_table, problems)] {
                match step {
                    Ok(()) => {}
                    Err(e) if is_finding(&e) => problems.index.push(format!("{table}: {}", sqlerr::describe(&e))),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    fn match_samples(&self, conn: &Connection, cfg: &CheckConfig) -> rusqlite::Result<Vec<MatchSample>> {
        match_samples(conn, cfg)
    }

    fn present(&self, conn: &Connection) -> rusqlite::Result<BTreeMap<u64, Vec<u64>>> {
        ledger_seqs(conn)
    }

    fn atomicity(&self, conn: &Connection) -> rusqlite::Result<Vec<String>> {
        atomicity(conn)
    }

    fn write_after_recovery(&self, conn: &mut Connection, cfg: &CheckConfig) -> anyhow::Result<CheckOutcome> {
        let writer = cfg.reopen.writer_id;
        let mut txn = TxnWriter::new(writer, cfg.seed, &cfg.reopen.workload);
        txn.append_next();
        if let Err(e) = txn.run_txn(conn, &mut |_| {}) {
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
}

/// Every message has an index row with its body, and every index row has a message. Two
/// passes: the messages, each looked up in the index by rowid (missing or differing), then the
/// index's rows, each looked up in the messages (stale).
pub(super) fn index_matches_rows(conn: &Connection, table: &str, problems: &mut Vec<String>) -> rusqlite::Result<()> {
    let (missing, differ): (i64, i64) = conn.query_row(
        &format!(
            "SELECT coalesce(sum(f.rowid IS NULL), 0), coalesce(sum(f.rowid IS NOT NULL AND f.body IS NOT {}), 0) \
             FROM messages m LEFT JOIN {table} f ON f.rowid = m.id",
            fts_body_sql("m")
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if missing > 0 {
        problems.push(format!("{table}: {missing} messages have no index row"));
    }
    let stale: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {table} f WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = f.rowid)"),
        [],
        |r| r.get(0),
    )?;
    if stale > 0 {
        problems.push(format!("{table}: {stale} index rows have no message"));
    }
    if differ > 0 {
        problems.push(format!("{table}: {differ} index rows hold a body that differs from their message"));
    }
    Ok(())
}

/// One sampled MATCH query: a message of the session store and a term its indexed text holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchSample {
    /// The FTS table asked.
    pub table: String,
    /// The message (its rowid in the index).
    pub id: i64,
    /// ASCII alphanumeric only (`pick_term`): safe inside a quoted literal.
    pub term: String,
    /// The message's text begins with NUL (the workload's `"\0json:"` sentinel).
    pub nul_prefixed: bool,
}

impl MatchSample {
    /// The MATCH expression: the term as one phrase.
    pub fn query(&self) -> String {
        format!("\"{}\"", self.term)
    }

    /// One statement, for any SQLite build, that counts the sampled message among the hits:
    /// `1` when the index finds it, `0` when it misses it.
    pub fn includes_sql(&self) -> String {
        let t = crate::oracle::generic::quote_ident(&self.table);
        format!("SELECT count(*) FROM {t} WHERE {t} MATCH '{}' AND rowid = {}", self.query(), self.id)
    }

    /// How a miss reads in a detail.
    pub fn miss(&self) -> String {
        let nul = if self.nul_prefixed { " (its text begins with NUL)" } else { "" };
        format!("{}: MATCH {} misses message {}{nul}, which contains it", self.table, self.query(), self.id)
    }
}

/// The MATCH queries of one image, the same for every build that asks them: per FTS table,
/// `fts_samples` terms taken from random messages, and one more from a message whose text
/// begins with NUL when the image has one (the text an old trigram tokenizer indexes as empty,
/// rare enough that uniform samples would seldom ask about it). At most four attempts per
/// sample: a message without a usable term is skipped. Seeded by `cfg.seed`.
pub fn match_samples(conn: &Connection, cfg: &CheckConfig) -> rusqlite::Result<Vec<MatchSample>> {
    let (lo, hi): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT min(id), max(id) FROM messages", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(Vec::new()) };
    let body = fts_body_sql("");
    const NUL_FIRST: &str = "substr(CAST(content AS BLOB), 1, 1) = x'00'";
    let mut any_row = conn.prepare(&format!("SELECT id, {body} FROM messages WHERE id >= ?1 ORDER BY id LIMIT 1"))?;
    let mut nul_row =
        conn.prepare(&format!("SELECT id, {body} FROM messages WHERE id >= ?1 AND {NUL_FIRST} ORDER BY id LIMIT 1"))?;
    let mut samples = Vec::new();
    for (table, tokenizer) in FTS_TABLES {
        let salt = match tokenizer {
            Tokenizer::Unicode61 => 1,
            Tokenizer::Trigram => 2,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ salt);
        let wanted = [(false, cfg.fts_samples), (true, u32::from(cfg.fts_samples > 0))];
        for (nul_prefixed, count) in wanted {
            let row = if nul_prefixed { &mut nul_row } else { &mut any_row };
            let mut taken = 0;
            for _ in 0..count.saturating_mul(4) {
                if taken == count {
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
                taken += 1;
                samples.push(MatchSample { table: table.to_string(), id, term, nul_prefixed: body.starts_with('\0') });
            }
        }
    }
    Ok(samples)
}

/// Every hit of a sample's query must be a message (for trigram: one whose text holds the
/// substring): an index that answers with other rows is damaged.
///
/// For trigram, SQLite hands over each hit's text (NULL without a message) and the substring
/// is looked for here: ASCII case folded (what SQLite's own `lower()` folds, and the only
/// letters a term holds), then a byte search, which is `instr(lower(text), lower(term)) > 0`
/// for an ASCII term ([`holds_term`]) without SQLite copying and folding every hit's text.
fn wrong_hits(conn: &Connection, samples: &[&MatchSample], problems: &mut FtsProblems) -> rusqlite::Result<()> {
    let Some(first) = samples.first() else { return Ok(()) };
    let table = first.table.as_str();
    let tokenizer = FTS_TABLES.iter().find(|(t, _)| *t == table).map(|(_, k)| *k).expect("a session store table");
    let mut count_bad = |bad: usize, query: &str| {
        if bad > 0 {
            problems
                .index
                .push(format!("{table}: MATCH {query} returns {bad} rows that are not messages containing it"));
        }
    };
    match tokenizer {
        Tokenizer::Unicode61 => {
            let mut bad_hits = conn.prepare(&format!(
                "SELECT count(*) FROM {table} WHERE {table} MATCH ?1 \
                 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = {table}.rowid)"
            ))?;
            for s in samples {
                let query = s.query();
                let bad = bad_hits.query_row([&query], |r| r.get::<_, i64>(0))?;
                count_bad(usize::try_from(bad).unwrap_or(usize::MAX), &query);
            }
        }
        Tokenizer::Trigram => {
            let mut hits = conn.prepare(&format!(
                "SELECT (SELECT {} FROM messages m WHERE m.id = {table}.rowid) FROM {table} WHERE {table} MATCH ?1",
                fts_body_sql("m")
            ))?;
            let mut folded = Vec::new();
            for s in samples {
                let query = s.query();
                let term = s.term.to_ascii_lowercase();
                let finder = memchr::memmem::Finder::new(term.as_bytes());
                let mut bad = 0;
                let mut rows = hits.query([&query])?;
                while let Some(row) = rows.next()? {
                    let holds = match row.get_ref(0)? {
                        ValueRef::Text(text) => holds_term(text, &finder, &mut folded),
                        // `||` gives text or NULL: NULL is a hit without a message (or a message
                        // with a NULL column), which holds nothing.
                        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) | ValueRef::Blob(_) => false,
                    };
                    bad += usize::from(!holds);
                }
                count_bad(bad, &query);
            }
        }
    }
    Ok(())
}

/// Whether `text` holds the term `finder` looks for (ASCII lower case), ASCII case folded
/// into `folded` first: SQLite's `instr(lower(text), lower(term)) > 0` for an ASCII term.
/// `lower()` folds only A–Z (no ICU), and `instr` steps over UTF-8 continuation bytes only,
/// which never start an ASCII term, so it finds exactly where a byte search finds.
pub(crate) fn holds_term(text: &[u8], finder: &memchr::memmem::Finder<'_>, folded: &mut Vec<u8>) -> bool {
    folded.clear();
    folded.extend(text.iter().map(u8::to_ascii_lowercase));
    finder.find(folded).is_some()
}

/// Per sample, whether the index finds its message, asked of the connection's own build.
pub(crate) fn found(conn: &Connection, samples: &[MatchSample]) -> rusqlite::Result<Vec<bool>> {
    samples.iter().map(|s| conn.query_row(&s.includes_sql(), [], |r| r.get::<_, i64>(0)).map(|n| n > 0)).collect()
}

/// A query term present in `body`: an ASCII alphanumeric token for unicode61 (which splits
/// on everything else and folds only case), a 3–8 character ASCII alphanumeric substring for
/// trigram. ASCII only, so SQLite's `lower()` folds exactly as the tokenizers do.
pub(crate) fn pick_term(body: &str, tokenizer: Tokenizer, rng: &mut ChaCha8Rng) -> Option<String> {
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

/// Per writer, the sorted sequence numbers present in the ledger.
pub(super) fn ledger_seqs(conn: &Connection) -> rusqlite::Result<BTreeMap<u64, Vec<u64>>> {
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
pub(super) fn ranges(values: &[u64]) -> String {
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
pub(super) fn atomicity(conn: &Connection) -> rusqlite::Result<Vec<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text bytes of every kind a damaged or odd message holds: ASCII of both cases, NUL,
    /// UTF-8 letters (whose continuation bytes `instr` steps over) and stray high bytes.
    fn text_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            4 => proptest::sample::select(b"aAbBzZ09 ".to_vec()).prop_map(|b| vec![b]),
            1 => Just(vec![0u8]),
            1 => Just("É".as_bytes().to_vec()),
            1 => Just("日".as_bytes().to_vec()),
            1 => (0x80u8..=0xff).prop_map(|b| vec![b]),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
    }

    proptest! {
        /// The byte search agrees with SQLite's own `instr(lower(text), lower(term)) > 0` on
        /// the text as SQLite holds it, for every ASCII alphanumeric term.
        #[test]
        fn holds_term_is_sqlites_instr_of_lower(text in text_bytes(), term in "[aAbBzZ09]{1,8}") {
            let conn = Connection::open_in_memory().expect("an in-memory database");
            let sqlite: bool = conn
                .query_row("SELECT instr(lower(CAST(?1 AS TEXT)), lower(?2)) > 0", rusqlite::params![text, term], |r| r.get(0))
                .expect("instr runs");
            let lower = term.to_ascii_lowercase();
            let finder = memchr::memmem::Finder::new(lower.as_bytes());
            prop_assert_eq!(holds_term(&text, &finder, &mut Vec::new()), sqlite);
        }
    }
}

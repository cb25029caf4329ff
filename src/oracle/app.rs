//! What the oracle may assume about the database of an application's own writer
//! (`writer::external`): nothing but what any SQLite database allows, plus the scenario's
//! `[oracle]` queries. Check 3 samples MATCH queries on every FTS5 table whose content it can
//! read (its own, or a content table); check 4 asks `ack_sql` for every acknowledged key; check
//! 5 lists the keys present with `present_sql`; check 8 runs `reopen_sql` (or writes a scratch
//! table). Checks 6 and 7 need a ledger such a program does not keep: they do not apply.

use crate::base::sqlerr;
use crate::oracle::generic::{probe_write, quote_ident, reopen_failure};
use crate::oracle::ledger::{MatchSample, pick_term};
use crate::oracle::{CheckConfig, FtsProblems, Schema};
use crate::record::checks::{CheckOutcome, ViolationKind};
use crate::record::expected::Expected;
use crate::scenario::app::AppWriter;
use crate::writer::session_store::Tokenizer;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::collections::BTreeMap;

/// The oracle's view of an application's database: its program's `[oracle]` queries.
#[derive(Clone, Debug)]
pub struct AppSchema(pub AppWriter);

/// Why a check does not run on an application's database, when it cannot.
pub fn not_applicable(app: &AppWriter, kind: ViolationKind) -> Option<&'static str> {
    match kind {
        ViolationKind::LostAck if app.ack_sql.is_none() => Some("no [oracle] ack_sql to look an acknowledged key up"),
        ViolationKind::Phantom if app.present_sql.is_none() => Some("no [oracle] present_sql to list the keys present"),
        ViolationKind::Atomicity => {
            Some("a transaction is known only by its key: which rows it wrote, and so a partial one, is the program's")
        }
        ViolationKind::Prefix => Some("keys have no order crashfuzz may assume, so a hole cannot be told"),
        _ => None,
    }
}

impl AppSchema {
    /// The schema of `app`, for the whole run (one small leak per campaign: the oracle's
    /// settings hold their schema as `&'static`).
    pub fn leak(app: &AppWriter) -> &'static AppSchema {
        Box::leak(Box::new(AppSchema(app.clone())))
    }
}

/// An FTS5 table whose indexed text the oracle can read: its columns, and the table and rowid
/// column that hold them (the FTS table itself, or its `content=` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FtsSource {
    pub table: String,
    pub tokenizer: Tokenizer,
    pub columns: Vec<String>,
    pub content: String,
    pub content_rowid: String,
}

/// The value of FTS5 option `name` (`content`, `content_rowid`, `tokenize`) in a
/// `CREATE VIRTUAL TABLE ... USING fts5(...)` statement, unquoted.
pub fn fts_option(sql: &str, name: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let args_start = lower.find("fts5")? + 4;
    let args = &sql[args_start..];
    let inner = args.trim_start().strip_prefix('(')?;
    let inner = &inner[..inner.rfind(')')?];
    split_args(inner).into_iter().find_map(|arg| {
        let (key, value) = arg.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| unquote(value.trim()))
    })
}

/// FTS5's arguments, split at the commas outside quotes.
fn split_args(text: &str) -> Vec<String> {
    let mut args = vec![String::new()];
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '\'' | '"' | '`' | '[') => quote = Some(if c == '[' { ']' } else { c }),
            (Some(q), c) if c == q => quote = None,
            (None, ',') => {
                args.push(String::new());
                continue;
            }
            _ => {}
        }
        args.last_mut().expect("never empty").push(c);
    }
    args.into_iter().map(|a| a.trim().to_string()).collect()
}

fn unquote(value: &str) -> String {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(b'\''), Some(b'\'')) | (Some(b'"'), Some(b'"')) | (Some(b'`'), Some(b'`')) if value.len() >= 2 => {
            let q = value.chars().next().expect("non-empty").to_string();
            value[1..value.len() - 1].replace(&format!("{q}{q}"), &q)
        }
        (Some(b'['), Some(b']')) => value[1..value.len() - 1].to_string(),
        _ => value.to_string(),
    }
}

/// Every FTS5 table of the image whose text can be read back: contentless tables
/// (`content=''`) hold none and are left out.
pub fn fts_sources(conn: &Connection) -> rusqlite::Result<Vec<FtsSource>> {
    let tables: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' \
             AND lower(sql) LIKE '%using fts5%' ORDER BY name",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut sources = Vec::new();
    for (table, sql) in tables {
        let content = fts_option(&sql, "content");
        if content.as_deref() == Some("") {
            continue;
        }
        let tokenizer = match fts_option(&sql, "tokenize") {
            Some(t) if t.trim_start().to_ascii_lowercase().starts_with("trigram") => Tokenizer::Trigram,
            _ => Tokenizer::Unicode61,
        };
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info({})", quote_literal(&table)))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let (content, content_rowid) = match content {
            Some(content) => (content, fts_option(&sql, "content_rowid").unwrap_or_else(|| "rowid".into())),
            None => (table.clone(), "rowid".into()),
        };
        sources.push(FtsSource { table, tokenizer, columns, content, content_rowid });
    }
    Ok(sources)
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Per FTS source, `fts_samples` terms taken from random rows of its content (at most four
/// attempts each; a row without a usable term is skipped). Seeded by `cfg.seed`.
pub fn match_samples(conn: &Connection, cfg: &CheckConfig) -> rusqlite::Result<Vec<MatchSample>> {
    let mut samples = Vec::new();
    for (n, source) in fts_sources(conn)?.into_iter().enumerate() {
        let (content, id) = (quote_ident(&source.content), quote_ident(&source.content_rowid));
        let text = source.columns.iter().map(|c| format!("coalesce({}, '')", quote_ident(c))).collect::<Vec<_>>();
        if text.is_empty() {
            continue;
        }
        let (lo, hi): (Option<i64>, Option<i64>) =
            conn.query_row(&format!("SELECT min({id}), max({id}) FROM {content}"), [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (Some(lo), Some(hi)) = (lo, hi) else { continue };
        let mut row = conn.prepare(&format!(
            "SELECT {id}, CAST({} AS TEXT) FROM {content} WHERE {id} >= ?1 ORDER BY {id} LIMIT 1",
            text.join(" || ' ' || ")
        ))?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (n as u64 + 1));
        let mut taken = 0;
        for _ in 0..cfg.fts_samples.saturating_mul(4) {
            if taken == cfg.fts_samples {
                break;
            }
            let from = rng.random_range(lo..=hi);
            let Some((rowid, Some(body))) =
                row.query_row([from], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1).ok()))).optional()?
            else {
                continue;
            };
            let Some(term) = pick_term(&body, source.tokenizer, &mut rng) else { continue };
            taken += 1;
            samples.push(MatchSample {
                table: source.table.clone(),
                id: rowid,
                term,
                nul_prefixed: body.starts_with('\0'),
            });
        }
    }
    Ok(samples)
}

impl Schema for AppSchema {
    fn name(&self) -> &'static str {
        "application"
    }

    /// An application's database is whatever its program made: there is no schema to miss
    /// (a query of `[oracle]` that no longer runs on the image says so in its own check).
    fn recognise(&self, _conn: &Connection) -> rusqlite::Result<bool> {
        Ok(true)
    }

    /// Beyond every FTS5 table's own integrity-check (generic): an external-content table's
    /// index against its content table (`integrity-check` with rank 1, which re-tokenizes the
    /// content: another build may read it differently, so it counts as the index's problem).
    /// The sampled MATCH queries are asked by check 3b.
    fn fts(
        &self,
        conn: &Connection,
        _: &[String],
        _: &[MatchSample],
        problems: &mut FtsProblems,
    ) -> rusqlite::Result<()> {
        for source in fts_sources(conn)?.into_iter().filter(|s| s.content != s.table) {
            let q = quote_ident(&source.table);
            match conn.execute(&format!("INSERT INTO {q}({q}, rank) VALUES ('integrity-check', 1)"), []) {
                Ok(_) => {}
                Err(e) if crate::oracle::is_finding(&e) => problems.index.push(format!(
                    "{}: its index differs from its content table {}: {}",
                    source.table,
                    source.content,
                    sqlerr::describe(&e)
                )),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn match_samples(&self, conn: &Connection, cfg: &CheckConfig) -> rusqlite::Result<Vec<MatchSample>> {
        match_samples(conn, cfg)
    }

    /// Never asked: checks 4 and 5 go by key, 6 and 7 do not apply.
    fn present(&self, _conn: &Connection) -> rusqlite::Result<BTreeMap<u64, Vec<u64>>> {
        Ok(BTreeMap::new())
    }

    /// Never asked (check 6 does not apply).
    fn atomicity(&self, _conn: &Connection) -> rusqlite::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn write_after_recovery(&self, conn: &mut Connection, _cfg: &CheckConfig) -> anyhow::Result<CheckOutcome> {
        let Some(sql) = &self.0.reopen_sql else { return probe_write(conn) };
        let txn = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(txn) => txn,
            Err(e) => return reopen_failure("BEGIN IMMEDIATE", e),
        };
        if let Err(e) = txn.execute_batch(sql) {
            return reopen_failure("[oracle] reopen_sql", e);
        }
        match txn.commit() {
            Ok(()) => Ok(CheckOutcome::Pass),
            Err(e) => reopen_failure("COMMIT of reopen_sql", e),
        }
    }

    fn keyed(&self) -> bool {
        true
    }

    fn applies(&self, kind: ViolationKind) -> Result<(), &'static str> {
        not_applicable(&self.0, kind).map_or(Ok(()), Err)
    }

    fn lost_keys(&self, conn: &Connection, expected: &Expected) -> Option<rusqlite::Result<Vec<String>>> {
        let sql = self.0.ack_sql.as_ref()?;
        Some(lost_keys(conn, sql, expected))
    }

    fn phantom_keys(&self, conn: &Connection, expected: &Expected) -> Option<rusqlite::Result<Vec<String>>> {
        let sql = self.0.present_sql.as_ref()?;
        Some(phantom_keys(conn, sql, expected))
    }
}

/// The acknowledged keys `ack_sql` does not find (its first column below 1, or no row). A
/// query that no longer prepares on the image (its table gone) loses every one of them.
fn lost_keys(conn: &Connection, sql: &str, expected: &Expected) -> rusqlite::Result<Vec<String>> {
    let acked: Vec<(u64, &str)> = expected.acked_keys().collect();
    let mut stmt = match conn.prepare(sql) {
        Ok(stmt) => stmt,
        Err(e) if is_plain_error(&e) && acked.is_empty() => return Ok(Vec::new()),
        Err(e) if is_plain_error(&e) => {
            return Ok(vec![format!(
                "[oracle] ack_sql does not run on the image ({}): all {} acknowledged commits lost",
                sqlerr::describe(&e),
                acked.len()
            )]);
        }
        Err(e) => return Err(e),
    };
    let mut lost = Vec::new();
    for (writer, key) in acked {
        let found: Option<i64> = stmt.query_row([key], |r| r.get(0)).optional()?;
        if found.unwrap_or(0) < 1 {
            lost.push(format!("writer {writer}: acknowledged key {key} is absent"));
        }
    }
    Ok(lost)
}

/// SQLite's generic SQLITE_ERROR (no such table, no such column): the query, not the file.
fn is_plain_error(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::Unknown)
}

/// The keys `present_sql` lists that no writer named and the template did not hold.
fn phantom_keys(conn: &Connection, sql: &str, expected: &Expected) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let present: Vec<String> = stmt
        .query_map([], |r| r.get::<_, rusqlite::types::Value>(0))?
        .map(|v| v.map(key_text))
        .collect::<rusqlite::Result<_>>()?;
    Ok(present
        .into_iter()
        .filter(|key| !expected.knows_key(key))
        .map(|key| format!("key {key} is present, yet no writer began it"))
        .collect())
}

/// A key as the program wrote it on its acknowledgement line: integers and text as written.
pub fn key_text(value: rusqlite::types::Value) -> String {
    use rusqlite::types::Value;
    match value {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t,
        Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{CheckReport, check_copy};
    use crate::record::expected::WriterExpectation;
    use crate::scenario::matrix::JournalMode;
    use std::path::Path;

    fn schema(reopen_sql: Option<&str>) -> &'static AppSchema {
        Box::leak(Box::new(AppSchema(AppWriter {
            command: Vec::new(),
            setup: Vec::new(),
            ack_sql: Some("SELECT count(*) FROM items WHERE key = ?1".into()),
            present_sql: Some("SELECT key FROM items".into()),
            reopen_sql: reopen_sql.map(str::to_string),
        })))
    }

    /// An application's database: items a..e with both FTS5 indexes kept by triggers.
    fn app_db(dir: &Path) -> std::path::PathBuf {
        let db = dir.join("app.sqlite");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = wal;
             CREATE TABLE items(id INTEGER PRIMARY KEY, key TEXT UNIQUE, body TEXT);
             CREATE VIRTUAL TABLE items_fts USING fts5(body, content='items', content_rowid='id');
             CREATE VIRTUAL TABLE items_tri USING fts5(body, content='items', content_rowid='id', tokenize='trigram');
             CREATE TRIGGER items_ai AFTER INSERT ON items BEGIN
               INSERT INTO items_fts(rowid, body) VALUES (new.id, new.body);
               INSERT INTO items_tri(rowid, body) VALUES (new.id, new.body);
             END;
             CREATE TRIGGER items_ad AFTER DELETE ON items BEGIN
               INSERT INTO items_fts(items_fts, rowid, body) VALUES ('delete', old.id, old.body);
               INSERT INTO items_tri(items_tri, rowid, body) VALUES ('delete', old.id, old.body);
             END;
             INSERT INTO items(key, body) VALUES ('seed-1', 'durable session gateway');
             INSERT INTO items(key, body) VALUES ('a', 'alpha message journal'), ('b', 'bravo sector fsync'),
               ('c', 'charlie reader writer'), ('d', 'delta checkpoint token');",
        )
        .unwrap();
        db
    }

    /// Writer 7 named a..e in order and acknowledged `acked` of them; the template held seed-1.
    fn expected(acked: &[u64], begins: bool) -> Expected {
        Expected {
            writers: [(7, WriterExpectation::from_acked(acked, 5))].into(),
            keys: [(7, ["a", "b", "c", "d", "e"].map(String::from).to_vec())].into(),
            seeded_keys: ["seed-1".to_string()].into(),
            begins,
        }
    }

    fn check(db: &Path, schema: &'static AppSchema, expected: &Expected) -> CheckReport {
        let mut cfg = crate::testkit::check_config(Some(JournalMode::Wal));
        cfg.schema = schema;
        cfg.reopen.pragmas = None;
        check_copy(db, &cfg, Some(expected)).unwrap()
    }

    fn kinds(report: &CheckReport) -> Vec<ViolationKind> {
        report.results.iter().map(|r| r.check).collect()
    }

    #[test]
    fn a_clean_application_database_passes_every_check_that_applies() {
        let dir = tempfile::tempdir().unwrap();
        let db = app_db(dir.path());
        let report = check(&db, schema(None), &expected(&[1, 2, 3, 4], true));
        assert!(report.violations().is_empty(), "{report:?}");
        use ViolationKind::*;
        assert_eq!(kinds(&report), vec![Open, Integrity, Fts, FtsMiss, LostAck, Phantom, ReopenWrite]);
        assert!(report.match_samples.len() >= 8, "samples from both FTS tables: {:?}", report.match_samples);
        // Without begins, phantoms cannot be told: the check does not run.
        let report = check(&db, schema(None), &expected(&[1, 2, 3, 4], false));
        assert!(!kinds(&report).contains(&Phantom) && report.violations().is_empty(), "{report:?}");
    }

    #[test]
    fn an_acknowledged_key_that_is_gone_is_lost_and_a_key_nobody_named_is_a_phantom() {
        let dir = tempfile::tempdir().unwrap();
        let db = app_db(dir.path());
        Connection::open(&db).unwrap().execute_batch("DELETE FROM items WHERE key = 'b'").unwrap();
        let report = check(&db, schema(None), &expected(&[1, 2, 3], true));
        assert_eq!(report.violations(), vec![ViolationKind::LostAck], "{report:?}");
        assert!(format!("{report:?}").contains("writer 7: acknowledged key b is absent"));
        // e was begun but never acknowledged: absent is fine; d was begun: present is fine.
        assert!(check(&db, schema(None), &expected(&[1, 3], true)).violations().is_empty());
        Connection::open(&db).unwrap().execute_batch("INSERT INTO items(key, body) VALUES ('zz', 'x')").unwrap();
        let report = check(&db, schema(None), &expected(&[1, 3], true));
        assert_eq!(report.violations(), vec![ViolationKind::Phantom], "{report:?}");
        assert!(format!("{report:?}").contains("key zz is present, yet no writer began it"));
    }

    #[test]
    fn a_dropped_table_loses_every_acknowledged_key_and_a_refused_reopen_sql_fails_the_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = app_db(dir.path());
        let report =
            check(&db, schema(Some("INSERT INTO items(key, body) VALUES ('r', 'restart')")), &expected(&[1], true));
        assert!(report.violations().is_empty(), "{report:?}");
        let report = check(&db, schema(Some("INSERT INTO missing VALUES (1)")), &expected(&[1], true));
        assert_eq!(report.violations(), vec![ViolationKind::ReopenWrite], "{report:?}");
        Connection::open(&db)
            .unwrap()
            .execute_batch("DROP TABLE items_fts; DROP TABLE items_tri; DROP TABLE items")
            .unwrap();
        let only_acks = Box::leak(Box::new(AppSchema(AppWriter { present_sql: None, ..schema(None).0.clone() })));
        let report = check(&db, only_acks, &expected(&[1, 2], true));
        assert_eq!(report.violations(), vec![ViolationKind::LostAck], "{report:?}");
        assert!(format!("{report:?}").contains("all 2 acknowledged commits lost"), "{report:?}");
    }

    #[test]
    fn a_damaged_index_fails_fts_and_a_search_that_misses_a_row_fails_fts_miss() {
        let dir = tempfile::tempdir().unwrap();
        let db = app_db(dir.path());
        // The unicode61 index forgets row 2 (the 'a' item) behind SQLite's back.
        Connection::open(&db)
            .unwrap()
            .execute_batch(
                "INSERT INTO items_fts(items_fts, rowid, body) VALUES ('delete', 2, 'alpha message journal')",
            )
            .unwrap();
        let report = check(&db, schema(None), &expected(&[1], true));
        assert_eq!(report.violations(), vec![ViolationKind::Fts, ViolationKind::FtsMiss], "{report:?}");
        assert!(format!("{report:?}").contains("items_fts: its index differs from its content table items"));
        assert!(format!("{report:?}").contains("items_fts: MATCH \\\"alpha\\\" misses message 2"), "{report:?}");
    }

    #[test]
    fn fts5_options_are_read_whatever_their_quoting() {
        let sql = "CREATE VIRTUAL TABLE t USING fts5(body, title, content='messages', content_rowid = \"id\", \
                   tokenize = 'trigram case_sensitive 0')";
        assert_eq!(fts_option(sql, "content").as_deref(), Some("messages"));
        assert_eq!(fts_option(sql, "content_rowid").as_deref(), Some("id"));
        assert_eq!(fts_option(sql, "tokenize").as_deref(), Some("trigram case_sensitive 0"));
        assert_eq!(fts_option("CREATE VIRTUAL TABLE t USING fts5(x)", "content"), None);
        assert_eq!(fts_option("CREATE VIRTUAL TABLE t USING FTS5(x, content='')", "content").as_deref(), Some(""));
    }

    #[test]
    fn sources_cover_own_content_and_content_tables_and_skip_contentless_ones() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE items(id INTEGER PRIMARY KEY, body TEXT);
             CREATE VIRTUAL TABLE own USING fts5(a, b);
             CREATE VIRTUAL TABLE ext USING fts5(body, content='items', content_rowid='id', tokenize='trigram');
             CREATE VIRTUAL TABLE none USING fts5(x, content='');",
        )
        .unwrap();
        let sources = fts_sources(&conn).unwrap();
        let names: Vec<(&str, &str, Tokenizer)> =
            sources.iter().map(|s| (s.table.as_str(), s.content.as_str(), s.tokenizer)).collect();
        assert_eq!(names, vec![("ext", "items", Tokenizer::Trigram), ("own", "own", Tokenizer::Unicode61)]);
        assert_eq!(sources[0].columns, vec!["body"]);
        assert_eq!(sources[0].content_rowid, "id");
    }
}

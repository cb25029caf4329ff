//! The `session_store` workload (the agent application's session store that crashfuzz was born
//! from, see the README): the schema, the transactions a writer runs, and
//! the ledger that lets the oracle know which writer and transaction wrote what.
//!
//! The application behind the case kept `sessions` and `messages`, two FTS5 tables over the
//! message text (unicode61 and trigram) maintained by triggers, and one `BEGIN IMMEDIATE`
//! transaction per appended message that also bumps the session's counters; a "compression"
//! deleted a session's messages and re-inserted a shorter version in one big transaction. All of
//! that is here, plus one table of our own, `ledger`: every transaction writes a ledger row
//! `(writer, seq)` in the same transaction as its work, saying what kind it was, which session
//! it touched and how many message rows it left behind. The oracle (`check`) needs nothing else
//! to tell a lost, a phantom, a torn or a partial transaction from a whole one:
//!
//! - every message row carries the `(writer, txn)` that inserted it and a hash of its text;
//! - a ledger row's `live_rows` is the number of message rows tagged with it (a compression
//!   sets `live_rows = 0` on the rows of the transactions whose messages it deleted);
//! - a session's `message_count` and `content_bytes` equal what its messages add up to.
//!
//! A transaction is planned first ([`Plan`], pure: only the RNG) and applied second, so a
//! transaction retried after `SQLITE_BUSY` is the same transaction with the same sequence number.
//! This module never decides what to do with an error: it returns it to the writer.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The `[workload]` section of a scenario. Every field has a unit in its name and a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// `PRAGMA page_size` for new databases, in bytes.
    pub page_size_bytes: u32,
    /// `PRAGMA cache_size`, in KiB. Small on purpose: dirty pages spill to the database file
    /// in the middle of big transactions, which is what makes journal OFF/MEMORY corrupt.
    pub cache_size_kib: u32,
    /// `PRAGMA busy_timeout`, in milliseconds.
    pub busy_timeout_ms: u32,
    /// Messages written into each fresh database before the trial starts.
    pub seed_messages: u32,
    /// Sessions those seed messages are spread over.
    pub seed_sessions: u32,
    /// Smallest ordinary message body, in bytes.
    pub message_bytes_min: u32,
    /// Largest ordinary message body, in bytes (sizes are log-uniform between min and max).
    pub message_bytes_max: u32,
    /// Size of the rare huge message, in bytes.
    pub huge_message_bytes: u32,
    /// Chance of a huge message, per thousand messages.
    pub huge_message_per_mille: u32,
    /// Chance that a message body is the NUL sentinel `"\0json:"` followed by JSON, in percent.
    pub json_sentinel_percent: u32,
    /// Chance that a transaction is a compression (delete a whole session's messages and
    /// re-insert them, shortened), in percent.
    pub compress_percent: u32,
    /// Messages at the end of a session that a compression keeps verbatim.
    pub compress_keep_last: u32,
    /// Chance that a transaction opens a new session, in percent.
    pub new_session_percent: u32,
    /// Chance that a transaction edits the last message of a session (the UPDATE trigger's
    /// path), in percent.
    pub edit_percent: u32,
    /// Writer processes started per trial, all on the same database.
    pub writers: u32,
    /// Upper bound on the transactions one writer process runs before it stops by itself.
    pub txns_max: u64,
    /// Upper bound on one writer process's life, in milliseconds.
    pub writer_lifetime_ms_max: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            page_size_bytes: 4096,
            cache_size_kib: 256,
            busy_timeout_ms: 5000,
            seed_messages: 100,
            seed_sessions: 5,
            message_bytes_min: 20,
            message_bytes_max: 20 * 1024,
            huge_message_bytes: 256 * 1024,
            huge_message_per_mille: 2,
            json_sentinel_percent: 10,
            compress_percent: 3,
            compress_keep_last: 4,
            new_session_percent: 2,
            edit_percent: 5,
            writers: 1,
            txns_max: 1_000_000,
            writer_lifetime_ms_max: 120_000,
        }
    }
}

/// The writer id of the transactions that seed a fresh database.
pub const SEED_WRITER: u64 = 0;

/// The two FTS5 tables, both over [`fts_body_sql`], and their tokenizers.
pub const FTS_TABLES: [(&str, Tokenizer); 2] =
    [("messages_fts", Tokenizer::Unicode61), ("messages_fts_trigram", Tokenizer::Trigram)];

/// The columns of a `messages` row both FTS tables index, joined by single spaces.
pub const FTS_BODY_COLUMNS: [&str; 3] = ["content", "tool_name", "tool_calls"];

/// The SQL expression of the text both FTS tables index, over the `messages` row named `row`
/// (`"new"` in a trigger, an alias in a join, `""` for the bare table): the triggers and the
/// oracle's comparisons use this one expression.
pub fn fts_body_sql(row: &str) -> String {
    let prefix = if row.is_empty() { String::new() } else { format!("{row}.") };
    FTS_BODY_COLUMNS.iter().map(|c| format!("{prefix}{c}")).collect::<Vec<_>>().join(" || ' ' || ")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokenizer {
    Unicode61,
    Trigram,
}

/// The session store's sessions and messages. Columns are `NOT NULL` with `''` for "none", so
/// the FTS body (a `||` concatenation) is never NULL.
const TABLES_SQL: &str = "
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created_by INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    content_bytes INTEGER NOT NULL,
    compressions INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    tool_calls TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    writer INTEGER NOT NULL,
    txn INTEGER NOT NULL,
    row_hash INTEGER NOT NULL
);
CREATE INDEX messages_by_session ON messages(session_id, id);
CREATE INDEX messages_by_txn ON messages(writer, txn);
";

/// The ledger: one row per transaction, what the oracle reads as "present".
const LEDGER_SQL: &str = "
CREATE TABLE ledger (
    writer INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    session_id INTEGER NOT NULL,
    rows_written INTEGER NOT NULL,
    live_rows INTEGER NOT NULL,
    PRIMARY KEY (writer, seq)
) WITHOUT ROWID;
CREATE INDEX ledger_by_session ON ledger(session_id);
";

/// The session store's schema: its tables, both FTS5 tables over [`fts_body_sql`], the
/// triggers that keep them in step with `messages`, and the ledger.
pub fn schema_sql() -> String {
    let mut sql = TABLES_SQL.to_string();
    let (mut inserted, mut deleted) = (String::new(), String::new());
    for (table, tokenizer) in FTS_TABLES {
        let tokenize = match tokenizer {
            Tokenizer::Unicode61 => "",
            Tokenizer::Trigram => ", tokenize='trigram'",
        };
        sql.push_str(&format!("CREATE VIRTUAL TABLE {table} USING fts5(body{tokenize});\n"));
        inserted.push_str(&format!("    INSERT INTO {table}(rowid, body) VALUES (new.id, {});\n", fts_body_sql("new")));
        deleted.push_str(&format!("    DELETE FROM {table} WHERE rowid = old.id;\n"));
    }
    sql.push_str(&format!(
        "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN\n{inserted}END;\n\
         CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN\n{deleted}END;\n\
         CREATE TRIGGER messages_au AFTER UPDATE ON messages BEGIN\n{deleted}{inserted}END;"
    ));
    sql.push_str(LEDGER_SQL);
    sql
}

/// Creates the schema in an empty database. `page_size` only takes effect before the first
/// table exists (and never in WAL mode), so this runs before any journal-mode pragma.
pub fn create_schema(conn: &Connection, cfg: &WorkloadConfig) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("PRAGMA page_size = {}", cfg.page_size_bytes))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    if page_size != i64::from(cfg.page_size_bytes) {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "PRAGMA page_size: set {}, read back {page_size}",
            cfg.page_size_bytes
        )));
    }
    conn.execute_batch(&format!("BEGIN; {} COMMIT;", schema_sql()))
}

/// True when `conn`'s database has the session store's tables (the oracle's ledger checks
/// only apply to those).
pub fn is_session_store(conn: &Connection) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('sessions', 'messages', 'ledger')",
        [],
        |r| r.get(0),
    )?;
    Ok(n == 3)
}

/// Fills a fresh database with `cfg.seed_messages` transactions of [`SEED_WRITER`]: the first
/// `seed_sessions` create a session each, the rest append to a random one. They share one
/// SQLite transaction (a template is built once per cell; a commit per message would cost an
/// fsync each), but each has its own ledger row, so the oracle sees them as transactions
/// `1..=n` of writer 0. Returns `n`.
pub fn seed(conn: &mut Connection, cfg: &WorkloadConfig, seed: u64) -> rusqlite::Result<u64> {
    let mut w = TxnWriter::new(SEED_WRITER, seed, cfg);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for i in 0..cfg.seed_messages {
        let plan = if i < cfg.seed_sessions {
            Plan::Create { title: w.title(), first: w.message() }
        } else {
            Plan::Append { session_pick: w.rng.random(), message: w.message() }
        };
        w.apply(&tx, &plan, &mut |_| {})?;
        w.next_seq += 1;
    }
    tx.commit()?;
    Ok(u64::from(cfg.seed_messages))
}

/// What a transaction did, stored as the ledger row's `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnKind {
    /// A new session and its first message.
    Create,
    /// One message appended to a session (the common case).
    Append,
    /// The last message of a session rewritten (exercises the UPDATE trigger).
    Edit,
    /// A session's messages deleted and re-inserted shorter, in one transaction.
    Compress,
    /// A compression followed by inserts that go on until the writer is killed (timing `bulk`).
    Bulk,
}

impl TxnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnKind::Create => "create",
            TxnKind::Append => "append",
            TxnKind::Edit => "edit",
            TxnKind::Compress => "compress",
            TxnKind::Bulk => "bulk",
        }
    }
}

/// What one committed transaction was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnSummary {
    pub seq: u64,
    pub kind: TxnKind,
    /// Message rows inserted or updated.
    pub rows: u64,
}

/// One message as the workload generates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
    pub tool_name: &'static str,
    pub tool_calls: String,
}

/// A planned transaction. Sessions are chosen when the plan is applied (`session_pick` is a
/// random number resolved against the sessions that exist then), so a plan stays valid
/// whatever other writers did in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Create { title: String, first: Message },
    Append { session_pick: u64, message: Message },
    Edit { session_pick: u64, addition: String },
    Compress { session_pick: u64 },
    Bulk,
}

impl Plan {
    pub fn kind(&self) -> TxnKind {
        match self {
            Plan::Create { .. } => TxnKind::Create,
            Plan::Append { .. } => TxnKind::Append,
            Plan::Edit { .. } => TxnKind::Edit,
            Plan::Compress { .. } => TxnKind::Compress,
            Plan::Bulk => TxnKind::Bulk,
        }
    }
}

/// How long a bulk transaction keeps inserting after it announced itself, at most. The driver
/// kills the writer 0–`bulk_delay_us_max` µs after the announcement; the hold is three orders
/// of magnitude longer so that even a descheduled driver on a loaded machine lands its signal
/// inside the transaction.
pub const BULK_HOLD: Duration = Duration::from_secs(5);
/// Upper bound on what a bulk transaction inserts, in bytes (a limit on the hold).
pub const BULK_BYTES_MAX: u64 = 64 << 20;

/// `SQLITE_DBSTATUS_CACHE_SPILL`: dirty pages written out before COMMIT because the page cache
/// was full. rusqlite wraps no `sqlite3_db_status`, so this goes through the FFI.
const DBSTATUS_CACHE_SPILL: i32 = 12;

/// Pages the connection's cache has spilled since it opened (into the database file under
/// journal OFF/MEMORY, into the journal or WAL otherwise).
pub fn cache_spills(conn: &Connection) -> i64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: the handle is valid for the borrow of `conn`; sqlite3_db_status only reads
    // counters and writes the two out-parameters.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(conn.handle(), DBSTATUS_CACHE_SPILL, &mut current, &mut highwater, 0)
    };
    assert_eq!(rc, rusqlite::ffi::SQLITE_OK, "sqlite3_db_status(CACHE_SPILL) is supported since 3.23");
    i64::from(current)
}

/// The hash stored in `messages.row_hash`: a row whose text does not match it was torn.
pub fn row_hash(content: &str, tool_name: &str, tool_calls: &str) -> i64 {
    row_hash_bytes(content.as_bytes(), tool_name.as_bytes(), tool_calls.as_bytes())
}

/// [`row_hash`] of raw column bytes (what the oracle reads from a possibly torn row).
pub fn row_hash_bytes(content: &[u8], tool_name: &[u8], tool_calls: &[u8]) -> i64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (i, part) in [content, tool_name, tool_calls].into_iter().enumerate() {
        if i > 0 {
            h.update(&[0xff]); // not valid UTF-8: no text can forge the separator
        }
        h.update(part);
    }
    h.digest() as i64
}

/// One writer's stream of transactions: `seq` 1, 2, 3... in the ledger, each planned from the
/// writer's own ChaCha8 stream.
pub struct TxnWriter {
    writer_id: u64,
    cfg: WorkloadConfig,
    rng: ChaCha8Rng,
    next_seq: u64,
    /// The plan of a transaction that failed (busy) and will be retried under the same seq.
    pending: Option<Plan>,
    bulk_next: bool,
}

impl TxnWriter {
    pub fn new(writer_id: u64, seed: u64, cfg: &WorkloadConfig) -> TxnWriter {
        TxnWriter {
            writer_id,
            cfg: cfg.clone(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_seq: 1,
            pending: None,
            bulk_next: false,
        }
    }

    /// The sequence number of the next transaction (the one [`Self::run_txn`] runs next).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Makes the next transaction an append of one message (the recovery write of check 8).
    pub fn append_next(&mut self) {
        let message = self.message();
        self.pending = Some(Plan::Append { session_pick: self.rng.random(), message });
    }

    /// Makes the next new transaction a [`TxnKind::Bulk`] one.
    pub fn force_bulk_next(&mut self) {
        self.bulk_next = true;
    }

    /// After [`Self::run_txn`] failed with an I/O error: whether that transaction committed
    /// after all. A COMMIT can report an error once the transaction is already in the database:
    /// in the rollback-journal modes the journal is finalized (deleted, truncated or its header
    /// zeroed, then synced) after the database file was written and synced, and an error there
    /// is still COMMIT's error. If its ledger row is there, its seq is spent: the next call
    /// plans a new transaction under the next seq (and the caller must not acknowledge this
    /// one). An error of this read leaves the question open for the next call of this method.
    pub fn settle_failed(&mut self, conn: &Connection) -> rusqlite::Result<bool> {
        if self.pending.is_none() {
            return Ok(false);
        }
        let present: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM ledger WHERE writer = ?1 AND seq = ?2)",
            rusqlite::params![self.writer_id as i64, self.next_seq as i64],
            |r| r.get(0),
        )?;
        if present {
            self.pending = None;
            self.next_seq += 1;
        }
        Ok(present)
    }

    /// Runs the next transaction: `BEGIN IMMEDIATE`, the work, its ledger row, `COMMIT`. On an
    /// error before COMMIT nothing is committed (rusqlite rolls back on drop) and the same plan
    /// is retried by the next call; after an I/O error from COMMIT itself ask
    /// [`Self::settle_failed`] first. `on_bulk` is called once from inside a bulk transaction,
    /// with the number of pages spilled so far, after the cache has spilled (or after four
    /// caches' worth of inserts if it never does).
    pub fn run_txn(&mut self, conn: &mut Connection, on_bulk: &mut dyn FnMut(u64)) -> rusqlite::Result<TxnSummary> {
        let plan = match self.pending.take() {
            Some(plan) => plan,
            None => self.plan(),
        };
        let result = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| self.apply(&tx, &plan, on_bulk).and_then(|summary| tx.commit().map(|()| summary)));
        match result {
            Ok(summary) => {
                self.next_seq += 1;
                Ok(summary)
            }
            Err(e) => {
                self.pending = Some(plan);
                Err(e)
            }
        }
    }

    /// Begins the next transaction and applies it, leaving it open (no COMMIT): for the fork
    /// hazard, which carries an open transaction across `fork(2)`. [`Self::commit_open`]
    /// finishes it.
    pub fn begin_open(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        let plan = self.plan();
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.apply(&tx, &plan, &mut |_| {})?;
        // Dropped without COMMIT or ROLLBACK: the transaction stays open on the connection.
        tx.set_drop_behavior(rusqlite::DropBehavior::Ignore);
        Ok(())
    }

    /// Applies an append as this writer's next transaction inside a write transaction that is
    /// already open on `conn` (the fork hazard's child adds its own work to the inherited
    /// transaction) and commits it all. Returns the seq on success.
    pub fn append_in_open(&mut self, conn: &mut Connection) -> rusqlite::Result<u64> {
        let message = self.message();
        let plan = Plan::Append { session_pick: self.rng.random(), message };
        self.apply(conn, &plan, &mut |_| {})?;
        self.commit_open(conn)
    }

    /// Commits the transaction [`Self::begin_open`] left open.
    pub fn commit_open(&mut self, conn: &mut Connection) -> rusqlite::Result<u64> {
        conn.execute_batch("COMMIT")?;
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Plans the next transaction from the writer's RNG alone.
    pub fn plan(&mut self) -> Plan {
        if std::mem::take(&mut self.bulk_next) {
            return Plan::Bulk;
        }
        let roll = self.rng.random_range(0..100u32);
        let c = &self.cfg;
        if roll < c.new_session_percent {
            Plan::Create { title: self.title(), first: self.message() }
        } else if roll < c.new_session_percent + c.compress_percent {
            Plan::Compress { session_pick: self.rng.random() }
        } else if roll < c.new_session_percent + c.compress_percent + c.edit_percent {
            let words = self.rng.random_range(3..40);
            Plan::Edit { session_pick: self.rng.random(), addition: text(&mut self.rng, words * 7) }
        } else {
            Plan::Append { session_pick: self.rng.random(), message: self.message() }
        }
    }

    fn title(&mut self) -> String {
        let n = self.rng.random_range(2..6);
        (0..n).map(|_| *pick(&mut self.rng, VOCABULARY)).collect::<Vec<_>>().join(" ")
    }

    /// A message: log-uniform size between the configured bounds, now and then a huge one,
    /// now and then a tool result stored as the NUL sentinel `"\0json:"` followed by JSON.
    fn message(&mut self) -> Message {
        message(&mut self.rng, &self.cfg)
    }

    /// Applies `plan` as transaction `self.next_seq` on `tx` (a connection inside a write
    /// transaction), ledger row included. Does not commit.
    fn apply(&mut self, tx: &Connection, plan: &Plan, on_bulk: &mut dyn FnMut(u64)) -> rusqlite::Result<TxnSummary> {
        let seq = self.next_seq;
        let txn = Txn { tx, writer: self.writer_id, seq };
        let (session, rows_written, live_rows) = match plan {
            Plan::Create { title, first } => {
                let session = txn.create_session(title)?;
                txn.insert_message(session, first)?;
                (session, 1, 1)
            }
            Plan::Append { session_pick, message } => match txn.resolve_session(*session_pick)? {
                Some(session) => {
                    txn.insert_message(session, message)?;
                    (session, 1, 1)
                }
                None => {
                    let session = txn.create_session("recovered")?;
                    txn.insert_message(session, message)?;
                    (session, 1, 1)
                }
            },
            Plan::Edit { session_pick, addition } => match txn.resolve_session(*session_pick)? {
                Some(session) => (session, txn.edit_last(session, addition)?, 0),
                None => (0, 0, 0),
            },
            Plan::Compress { session_pick } => match txn.resolve_session(*session_pick)? {
                Some(session) => {
                    let n = txn.compress(session, self.cfg.compress_keep_last)?;
                    (session, n, n)
                }
                None => (0, 0, 0),
            },
            Plan::Bulk => {
                let session = match txn.largest_session()? {
                    Some(s) => s,
                    None => txn.create_session("bulk")?,
                };
                let kept = txn.compress(session, self.cfg.compress_keep_last)?;
                let padded = txn.pad_until_killed(session, &mut self.rng, &self.cfg, on_bulk)?;
                (session, kept + padded, kept + padded)
            }
        };
        txn.ledger(plan.kind(), session, rows_written, live_rows)?;
        Ok(TxnSummary { seq, kind: plan.kind(), rows: rows_written })
    }
}

/// `n` messages of exactly `bytes` bytes each, from the workload's own generator seeded with
/// `seed`: plain text, sometimes with a tool call (as in a campaign), never a huge message nor a
/// JSON sentinel (they would make sizes uneven). What a benchmark or an I/O count commits, one
/// [`append_messages`] at a time, so that every commit is alike.
pub fn uniform_messages(writer: u64, seed: u64, bytes: u32, n: usize) -> Vec<Message> {
    let cfg = WorkloadConfig {
        message_bytes_min: bytes,
        message_bytes_max: bytes,
        huge_message_per_mille: 0,
        json_sentinel_percent: 0,
        compress_percent: 0,
        new_session_percent: 0,
        edit_percent: 0,
        ..WorkloadConfig::default()
    };
    let mut writer = TxnWriter::new(writer, seed, &cfg);
    (0..n)
        .map(|_| match writer.plan() {
            Plan::Append { message, .. } => message,
            p @ (Plan::Create { .. } | Plan::Edit { .. } | Plan::Compress { .. } | Plan::Bulk) => {
                unreachable!("an append-only workload config planned {:?}", p.kind())
            }
        })
        .collect()
}

/// An append of `messages` to `session` as transaction `(writer, seq)`, ledger row included,
/// on a connection inside a write transaction; does not commit. The statements of a
/// [`TxnWriter`] append, for any number of messages (the benchmarks' ten-message transactions).
pub fn append_messages(
    tx: &Connection,
    writer: u64,
    seq: u64,
    session: i64,
    messages: &[&Message],
) -> rusqlite::Result<()> {
    let txn = Txn { tx, writer, seq };
    for m in messages {
        txn.insert_message(session, m)?;
    }
    txn.ledger(TxnKind::Append, session, messages.len() as u64, messages.len() as u64)
}

/// The statements of one transaction, tagged with its `(writer, seq)`.
struct Txn<'a> {
    tx: &'a Connection,
    writer: u64,
    seq: u64,
}

impl Txn<'_> {
    /// A logical clock: deterministic, so the same seed builds the same database.
    fn now_ms(&self) -> i64 {
        (self.writer * 1_000_000 + self.seq) as i64
    }

    fn create_session(&self, title: &str) -> rusqlite::Result<i64> {
        self.tx
            .prepare_cached(
                "INSERT INTO sessions (title, created_by, message_count, content_bytes, compressions, updated_at_ms) \
                 VALUES (?1, ?2, 0, 0, 0, ?3)",
            )?
            .execute(params![title, self.writer as i64, self.now_ms()])?;
        Ok(self.tx.last_insert_rowid())
    }

    /// The first session whose id is at least `pick` mod (max id) + 1: uniform enough, one
    /// index probe, and valid whatever sessions other writers created or not.
    fn resolve_session(&self, pick: u64) -> rusqlite::Result<Option<i64>> {
        let max: Option<i64> = self.tx.prepare_cached("SELECT max(id) FROM sessions")?.query_row([], |r| r.get(0))?;
        let Some(max) = max.filter(|&m| m > 0) else { return Ok(None) };
        let from = 1 + (pick % max as u64) as i64;
        self.tx
            .prepare_cached("SELECT id FROM sessions WHERE id >= ?1 ORDER BY id LIMIT 1")?
            .query_row([from], |r| r.get(0))
            .optional()
    }

    fn largest_session(&self) -> rusqlite::Result<Option<i64>> {
        self.tx
            .prepare_cached(
                "SELECT session_id FROM messages GROUP BY session_id ORDER BY count(*) DESC, session_id LIMIT 1",
            )?
            .query_row([], |r| r.get(0))
            .optional()
    }

    fn insert_message(&self, session: i64, m: &Message) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO messages (session_id, role, content, tool_name, tool_calls, created_at_ms, writer, txn, \
                 row_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                session,
                m.role,
                m.content,
                m.tool_name,
                m.tool_calls,
                self.now_ms(),
                self.writer as i64,
                self.seq as i64,
                row_hash(&m.content, m.tool_name, &m.tool_calls)
            ])?;
        self.bump_session(session, 1, m.content.len() as i64)
    }

    /// The transaction's ledger row, written in the transaction itself.
    fn ledger(&self, kind: TxnKind, session: i64, rows_written: u64, live_rows: u64) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO ledger (writer, seq, kind, session_id, rows_written, live_rows) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                self.writer as i64,
                self.seq as i64,
                kind.as_str(),
                session,
                rows_written as i64,
                live_rows as i64
            ])?;
        Ok(())
    }

    fn bump_session(&self, session: i64, messages: i64, bytes: i64) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE sessions SET message_count = message_count + ?2, content_bytes = content_bytes + ?3, \
                 updated_at_ms = ?4 WHERE id = ?1",
            )?
            .execute(params![session, messages, bytes, self.now_ms()])?;
        Ok(())
    }

    /// Appends `addition` to the session's last message (an UPDATE through the triggers).
    /// Returns the rows updated (0 for an empty session).
    fn edit_last(&self, session: i64, addition: &str) -> rusqlite::Result<u64> {
        let last: Option<(i64, String, String, String)> = self
            .tx
            .prepare_cached(
                "SELECT id, content, tool_name, tool_calls FROM messages WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([session], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((id, content, tool_name, tool_calls)) = last else { return Ok(0) };
        let edited = format!("{content}\n{addition}");
        self.tx.prepare_cached("UPDATE messages SET content = ?2, row_hash = ?3 WHERE id = ?1")?.execute(params![
            id,
            edited,
            row_hash(&edited, &tool_name, &tool_calls)
        ])?;
        self.bump_session(session, 0, (edited.len() - content.len()) as i64)?;
        Ok(1)
    }

    /// Deletes every message of `session` and re-inserts a summary of the older ones plus the
    /// last `keep_last` verbatim, all tagged with this transaction; the ledger rows of the
    /// transactions whose messages were deleted drop to `live_rows = 0`. Returns the rows
    /// inserted.
    fn compress(&self, session: i64, keep_last: u32) -> rusqlite::Result<u64> {
        let old: Vec<Message> = self
            .tx
            .prepare_cached(
                "SELECT role, content, tool_name, tool_calls FROM messages WHERE session_id = ?1 ORDER BY id",
            )?
            .query_map([session], |r| {
                Ok(Message {
                    role: static_role(&r.get::<_, String>(0)?),
                    content: r.get(1)?,
                    tool_name: static_tool(&r.get::<_, String>(2)?),
                    tool_calls: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        self.tx.prepare_cached("DELETE FROM messages WHERE session_id = ?1")?.execute([session])?;
        self.tx.prepare_cached("UPDATE ledger SET live_rows = 0 WHERE session_id = ?1")?.execute([session])?;
        self.tx
            .prepare_cached(
                "UPDATE sessions SET message_count = 0, content_bytes = 0, compressions = compressions + 1 \
                 WHERE id = ?1",
            )?
            .execute([session])?;
        let split = old.len().saturating_sub(keep_last as usize);
        let (older, recent) = old.split_at(split);
        let mut inserted = 0;
        if !older.is_empty() {
            let summary: String = older
                .iter()
                .map(|m| m.content.chars().filter(|&c| c != '\0').take(120).collect::<String>())
                .collect::<Vec<_>>()
                .join(" / ");
            let summary = Message {
                role: "system",
                content: format!("summary of {} messages: {summary}", older.len()),
                tool_name: "",
                tool_calls: String::new(),
            };
            self.insert_message(session, &summary)?;
            inserted += 1;
        }
        for m in recent {
            self.insert_message(session, m)?;
            inserted += 1;
        }
        Ok(inserted)
    }

    /// Inserts messages into `session` until [`BULK_HOLD`] or [`BULK_BYTES_MAX`]: the writer
    /// is meant to be killed in here. Announces itself through `on_bulk` once pages have
    /// spilled out of the cache, which is what makes journal OFF/MEMORY corrupt on a kill.
    fn pad_until_killed(
        &self,
        session: i64,
        rng: &mut ChaCha8Rng,
        cfg: &WorkloadConfig,
        on_bulk: &mut dyn FnMut(u64),
    ) -> rusqlite::Result<u64> {
        let started = Instant::now();
        let announce_after_bytes = 4 * 1024 * u64::from(cfg.cache_size_kib);
        let (mut bytes, mut rows, mut announced) = (0u64, 0u64, false);
        while started.elapsed() < BULK_HOLD && bytes < BULK_BYTES_MAX {
            let size = rng.random_range(4096..16384);
            let m = Message { role: "assistant", content: text(rng, size), tool_name: "", tool_calls: String::new() };
            self.insert_message(session, &m)?;
            bytes += m.content.len() as u64;
            rows += 1;
            if !announced {
                let spills = cache_spills(self.tx);
                if spills > 0 || bytes >= announce_after_bytes {
                    announced = true;
                    on_bulk(spills.max(0) as u64);
                }
            }
        }
        Ok(rows)
    }
}

fn static_role(s: &str) -> &'static str {
    ROLES.iter().find(|&&r| r == s).copied().unwrap_or("user")
}

fn static_tool(s: &str) -> &'static str {
    TOOLS.iter().find(|&&t| t == s).copied().unwrap_or("")
}

const ROLES: [&str; 4] = ["user", "assistant", "tool", "system"];
const TOOLS: [&str; 7] = ["", "bash", "read_file", "write_file", "web_search", "grep", "python"];

/// Words of an agent's conversation, with some that exercise the tokenizers: accents
/// (unicode61 folds them), CJK (trigram indexes it, unicode61 keeps it whole), mixed case.
const VOCABULARY: &[&str] = &[
    "the",
    "session",
    "message",
    "agent",
    "gateway",
    "cron",
    "sqlite",
    "database",
    "write",
    "commit",
    "journal",
    "checkpoint",
    "index",
    "token",
    "search",
    "result",
    "error",
    "retry",
    "timeout",
    "signal",
    "process",
    "kill",
    "graceful",
    "shutdown",
    "user",
    "assistant",
    "tool",
    "call",
    "output",
    "input",
    "file",
    "path",
    "directory",
    "config",
    "value",
    "setting",
    "pragma",
    "synchronous",
    "normal",
    "full",
    "extra",
    "wal",
    "delete",
    "truncate",
    "persist",
    "memory",
    "load",
    "average",
    "latency",
    "fsync",
    "barrier",
    "power",
    "loss",
    "corruption",
    "malformed",
    "recovery",
    "backup",
    "restore",
    "snapshot",
    "lock",
    "posix",
    "descriptor",
    "trigger",
    "trigram",
    "unicode",
    "compress",
    "summary",
    "history",
    "context",
    "window",
    "prompt",
    "reply",
    "question",
    "answer",
    "plan",
    "step",
    "task",
    "done",
    "pending",
    "running",
    "failed",
    "succeeded",
    "Hello",
    "World",
    "Rust",
    "Python",
    "JSON",
    "HTTP",
    "café",
    "naïve",
    "Größe",
    "données",
    "ñandú",
    "Ærø",
    "日本語",
    "検索",
    "数据库",
    "привет",
    "κόσμε",
    "emoji🙂",
    "x86_64",
    "v3.54.1",
    "0xdeadbeef",
    "2026-11-23",
    "42",
    "1500ms",
    "/var/lib/state.db",
    "--flag",
];

fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Text of about `bytes` bytes (at least one word): words, punctuation, line breaks.
fn text(rng: &mut impl Rng, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 32);
    while s.len() < bytes || s.is_empty() {
        if !s.is_empty() {
            s.push_str(match rng.random_range(0..20) {
                0 => ". ",
                1 => ", ",
                2 => "\n",
                _ => " ",
            });
        }
        let word: &&str = pick(rng, VOCABULARY);
        s.push_str(word);
    }
    s
}

/// One generated message (see [`TxnWriter`]'s `message`).
fn message(rng: &mut impl Rng, cfg: &WorkloadConfig) -> Message {
    let bytes = if rng.random_range(0..1000) < cfg.huge_message_per_mille {
        cfg.huge_message_bytes as usize
    } else {
        // Log-uniform: most messages are short, a few are long, as in a real conversation.
        let (lo, hi) = (f64::from(cfg.message_bytes_min.max(1)), f64::from(cfg.message_bytes_max.max(1)));
        (lo * (hi / lo).powf(rng.random::<f64>())) as usize
    };
    let role = *pick(rng, &ROLES[..3]);
    if rng.random_range(0..100) < cfg.json_sentinel_percent {
        let tool = *pick(rng, &TOOLS[1..]);
        let output = text(rng, bytes.saturating_sub(60));
        let json = serde_json::json!({ "type": "tool_result", "tool": tool, "exit_code": 0, "output": output });
        return Message { role: "tool", content: format!("\0json:{json}"), tool_name: tool, tool_calls: String::new() };
    }
    let content = text(rng, bytes);
    if role == "assistant" && rng.random_range(0..4) == 0 {
        let tool = *pick(rng, &TOOLS[1..]);
        let args_bytes = rng.random_range(8..120);
        let args = text(rng, args_bytes);
        let calls = serde_json::json!([{ "name": tool, "arguments": { "input": args } }]).to_string();
        return Message { role, content, tool_name: tool, tool_calls: calls };
    }
    Message { role, content, tool_name: "", tool_calls: String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> WorkloadConfig {
        WorkloadConfig { seed_messages: 30, seed_sessions: 3, ..Default::default() }
    }

    fn seeded(cfg: &WorkloadConfig, seed_value: u64) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db.sqlite")).unwrap();
        create_schema(&conn, cfg).unwrap();
        assert_eq!(seed(&mut conn, cfg, seed_value).unwrap(), u64::from(cfg.seed_messages));
        (dir, conn)
    }

    #[test]
    fn a_failed_transaction_is_settled_by_its_ledger_row() {
        let cfg = small();
        let (_dir, mut conn) = seeded(&cfg, 1);
        let mut w = TxnWriter::new(5, 3, &cfg);
        // Nothing failed, nothing to settle.
        assert!(!w.settle_failed(&conn).unwrap());
        // Failed before COMMIT: no ledger row, so the same plan is retried under the same seq.
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.ledger BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .unwrap();
        assert!(w.run_txn(&mut conn, &mut |_| {}).is_err());
        assert!(!w.settle_failed(&conn).unwrap());
        assert_eq!(w.next_seq(), 1);
        // Failed although it committed (as a COMMIT whose journal finalization fails does):
        // its row is there, so seq 1 is spent and the next transaction is seq 2.
        assert!(w.run_txn(&mut conn, &mut |_| {}).is_err());
        conn.execute_batch(
            "DROP TRIGGER refuse; \
             INSERT INTO ledger (writer, seq, kind, session_id, rows_written, live_rows) VALUES (5, 1, 'append', 1, 0, 0)",
        )
        .unwrap();
        assert!(w.settle_failed(&conn).unwrap());
        assert_eq!(w.next_seq(), 2);
        assert!(!w.settle_failed(&conn).unwrap(), "settled once");
        assert_eq!(w.run_txn(&mut conn, &mut |_| {}).unwrap().seq, 2);
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// The invariants the oracle relies on hold after any mix of transactions.
    fn assert_invariants(conn: &Connection) {
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM ledger l WHERE live_rows != \
                 (SELECT count(*) FROM messages m WHERE m.writer = l.writer AND m.txn = l.seq)"
            ),
            0
        );
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM sessions s WHERE message_count != \
                 (SELECT count(*) FROM messages WHERE session_id = s.id) OR content_bytes != \
                 (SELECT coalesce(sum(length(CAST(content AS BLOB))), 0) FROM messages WHERE session_id = s.id)"
            ),
            0
        );
        let mut stmt = conn.prepare("SELECT content, tool_name, tool_calls, row_hash FROM messages").unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?)))
            .unwrap();
        for row in rows {
            let (c, t, k, h): (String, String, String, i64) = row.unwrap();
            assert_eq!(row_hash(&c, &t, &k), h);
        }
        for (table, _) in FTS_TABLES {
            assert_eq!(
                count(conn, &format!("SELECT count(*) FROM {table}")),
                count(conn, "SELECT count(*) FROM messages")
            );
            conn.execute(&format!("INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)"), []).unwrap();
        }
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }

    #[test]
    fn seeded_database_holds_its_invariants() {
        let cfg = small();
        let (_dir, conn) = seeded(&cfg, 5);
        assert!(is_session_store(&conn).unwrap());
        assert_eq!(count(&conn, "SELECT count(*) FROM ledger WHERE writer = 0"), 30);
        assert_eq!(count(&conn, "SELECT count(*) FROM sessions"), 3);
        assert_invariants(&conn);
    }

    #[test]
    fn every_kind_of_transaction_keeps_the_invariants() {
        let cfg = WorkloadConfig { compress_percent: 20, edit_percent: 20, new_session_percent: 10, ..small() };
        let (_dir, mut conn) = seeded(&cfg, 6);
        let mut w = TxnWriter::new(7, 99, &cfg);
        let mut kinds = std::collections::BTreeSet::new();
        for seq in 1..=150 {
            assert_eq!(w.next_seq(), seq);
            let s = w.run_txn(&mut conn, &mut |_| panic!("no bulk was asked for")).unwrap();
            assert_eq!(s.seq, seq);
            kinds.insert(s.kind.as_str());
        }
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert_eq!(count(&conn, "SELECT count(*) FROM ledger WHERE writer = 7"), 150);
        assert_invariants(&conn);
    }

    #[test]
    fn nul_sentinel_content_is_stored_whole_and_indexed() {
        let cfg = WorkloadConfig { json_sentinel_percent: 100, ..small() };
        let (_dir, conn) = seeded(&cfg, 8);
        let sentinel =
            count(&conn, "SELECT count(*) FROM messages WHERE substr(CAST(content AS BLOB), 1, 6) = X'006A736F6E3A'");
        assert_eq!(sentinel, 30);
        assert_invariants(&conn);
    }

    #[test]
    fn the_same_seed_builds_the_same_database() {
        let cfg = small();
        let dump = |conn: &Connection| -> Vec<(i64, String, i64)> {
            let mut stmt = conn.prepare("SELECT id, content, row_hash FROM messages ORDER BY id").unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(|r| r.unwrap()).collect()
        };
        let (_a, ca) = seeded(&cfg, 11);
        let (_b, cb) = seeded(&cfg, 11);
        let (_c, cc) = seeded(&cfg, 12);
        assert_eq!(dump(&ca), dump(&cb));
        assert_ne!(dump(&ca), dump(&cc));
    }

    #[test]
    fn a_busy_transaction_is_retried_with_the_same_plan_and_seq() {
        let cfg = small();
        let (dir, mut conn) = seeded(&cfg, 9);
        conn.execute_batch("PRAGMA journal_mode=WAL").unwrap();
        let mut other = Connection::open(dir.path().join("db.sqlite")).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        let holder = other.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
        let mut w = TxnWriter::new(3, 4, &cfg);
        let err = w.run_txn(&mut conn, &mut |_| {}).unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy));
        let planned = w.pending.clone().unwrap();
        holder.rollback().unwrap();
        assert_eq!(w.next_seq(), 1);
        let mut replay = TxnWriter::new(3, 4, &cfg);
        assert_eq!(replay.plan(), planned, "the retried plan is the first plan of the stream");
        assert_eq!(w.run_txn(&mut conn, &mut |_| {}).unwrap().seq, 1);
        assert_invariants(&conn);
    }

    #[test]
    fn message_sizes_stay_in_bounds() {
        let cfg = WorkloadConfig { huge_message_per_mille: 0, json_sentinel_percent: 0, ..Default::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..500 {
            let m = message(&mut rng, &cfg);
            assert!(m.content.len() >= cfg.message_bytes_min as usize);
            // A word can overshoot the target by at most one word and a separator.
            assert!(m.content.len() <= cfg.message_bytes_max as usize + 32, "{}", m.content.len());
        }
    }
}

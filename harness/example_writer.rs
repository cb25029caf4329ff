//! `crashfuzz-example-writer`: an application's writer as crashfuzz's `[writer] command` sees
//! one, in Rust with nothing of crashfuzz linked in (rusqlite alone). The integration tests
//! drive it through the protocol (`CRASHFUZZ_*` environment, `ready` / `begin KEY` / `ack KEY`
//! lines on `CRASHFUZZ_ACK_FD`); its switches plant the bugs the oracle must catch.
//!
//! Roles: `setup` creates `items(key, body)` with two FTS5 indexes (unicode61 and trigram,
//! content table `items`, kept by triggers) and seeds ten rows; `writer` appends one item per
//! transaction until stopped; `transient` appends five and exits 0.
//!
//! Switches: `--no-begin` (acknowledgements only), `--silent` (no line at all),
//! `--ack-rolled-back` (every third transaction is rolled back and acknowledged all the same:
//! `lost_ack` on every trial), `--unannounced` (every fifth transaction also inserts a key it
//! never named: `phantom`), `--dup-ack` (acknowledges its first key twice: `protocol`),
//! `--always-wal` (sets WAL whatever `CRASHFUZZ_JOURNAL_MODE` says: `protocol` in a rollback
//! cell), `--ack-on-error` (swallows a failed transaction's error, rolls back and acknowledges
//! it all the same: `lost_ack` under injected I/O errors), `--restore-on-start` (before
//! opening, copies the database aside and renames the copy over it, as a restore would: a
//! rename of a traced file, which the power-loss model does not follow).
//!
//! A transaction that fails otherwise ends the process with exit 4 (it gives up).

use rusqlite::Connection;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(body, content='items', content_rowid='id');
CREATE VIRTUAL TABLE IF NOT EXISTS items_trigram USING fts5(body, content='items', content_rowid='id', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS items_ai AFTER INSERT ON items BEGIN
  INSERT INTO items_fts(rowid, body) VALUES (new.id, new.body);
  INSERT INTO items_trigram(rowid, body) VALUES (new.id, new.body);
END;";

const WORDS: [&str; 16] = [
    "session",
    "gateway",
    "message",
    "search",
    "durable",
    "commit",
    "journal",
    "sector",
    "fsync",
    "reader",
    "writer",
    "checkpoint",
    "trigram",
    "token",
    "ledger",
    "replay",
];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("{name} is not set")))
}

fn fail(what: &str) -> ! {
    eprintln!("example writer: {what}");
    std::process::exit(4)
}

/// A body of `n` words from a xorshift stream seeded by `seed`.
fn body(seed: &mut u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            WORDS[(*seed % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let flags: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| flags.iter().any(|f| f == name);
    let db = env("CRASHFUZZ_DB");
    let role = env("CRASHFUZZ_ROLE");
    let mut seed = env("CRASHFUZZ_SEED").parse::<u64>().unwrap_or_else(|_| fail("CRASHFUZZ_SEED is not a u64")) | 1;
    if flag("--restore-on-start") && role != "setup" {
        let copy = format!("{db}.restore");
        std::fs::copy(&db, &copy).unwrap_or_else(|e| fail(&format!("copy {db}: {e}")));
        std::fs::rename(&copy, &db).unwrap_or_else(|e| fail(&format!("rename {copy}: {e}")));
    }
    let conn = Connection::open(&db).unwrap_or_else(|e| fail(&format!("open {db}: {e}")));
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap_or_else(|e| fail(&e.to_string()));
    let mut journal_mode = env("CRASHFUZZ_JOURNAL_MODE").to_ascii_lowercase();
    if flag("--always-wal") {
        journal_mode = "wal".into();
    }
    {
        let got: String = conn
            .query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |r| r.get(0))
            .unwrap_or_else(|e| fail(&format!("PRAGMA journal_mode: {e}")));
        if got != journal_mode {
            fail(&format!("PRAGMA journal_mode: set {journal_mode}, read back {got}"));
        }
    }
    let synchronous = env("CRASHFUZZ_SYNCHRONOUS");
    conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}")).unwrap_or_else(|e| fail(&e.to_string()));
    if role == "setup" {
        conn.execute_batch(SCHEMA).unwrap_or_else(|e| fail(&format!("schema: {e}")));
        for n in 1..=10 {
            conn.execute("INSERT INTO items(key, body) VALUES (?1, ?2)", (format!("seed-{n}"), body(&mut seed, 12)))
                .unwrap_or_else(|e| fail(&format!("seed: {e}")));
        }
        return;
    }
    let fd: i32 = env("CRASHFUZZ_ACK_FD").parse().unwrap_or_else(|_| fail("CRASHFUZZ_ACK_FD is not a descriptor"));
    // SAFETY: crashfuzz hands this descriptor to the process, open and writable, and nothing
    // else here owns it.
    let mut acks = unsafe { File::from_raw_fd(fd) };
    let silent = flag("--silent");
    let mut say = |line: String| {
        if !silent {
            // One write(2) per line: a line is wholly in the file or absent.
            acks.write_all(format!("{line}\n").as_bytes()).unwrap_or_else(|e| fail(&format!("ack line: {e}")));
        }
    };
    say("ready".into());
    let id = env("CRASHFUZZ_WRITER_ID");
    let commits = if role == "transient" { 5 } else { u64::MAX };
    for n in 1..=commits {
        let key = format!("w{id}-{n}");
        if !flag("--no-begin") {
            say(format!("begin {key}"));
        }
        let rolled_back = flag("--ack-rolled-back") && n % 3 == 0;
        let text = body(&mut seed, 40);
        let txn = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute("INSERT INTO items(key, body) VALUES (?1, ?2)", (&key, &text))?;
            if flag("--unannounced") && n % 5 == 0 {
                conn.execute("INSERT INTO items(key, body) VALUES (?1, 'never named')", (format!("{key}-x"),))?;
            }
            conn.execute_batch(if rolled_back { "ROLLBACK" } else { "COMMIT" })
        };
        if let Err(e) = txn() {
            if !flag("--ack-on-error") {
                fail(&format!("transaction {key}: {e}"));
            }
            // The bug: the error is logged and forgotten, the message reported as stored.
            eprintln!("example writer: transaction {key}: {e} (ignored)");
            let _ = conn.execute_batch("ROLLBACK");
        }
        say(format!("ack {key}"));
        if flag("--dup-ack") && n == 1 {
            say(format!("ack {key}"));
        }
    }
}

#!/usr/bin/env python3
"""A chat gateway's session store, as an application-owned writer for crashfuzz.

crashfuzz starts this program under faults (SIGTERM/SIGKILL at random moments) and checks the
database afterwards. It talks to it only through the environment and lines on a descriptor.

Environment:
  CRASHFUZZ_DB            the database path
  CRASHFUZZ_ACK_FD        an inherited, writable descriptor for the protocol lines below
  CRASHFUZZ_WRITER_ID     an integer, unique per process within a trial
  CRASHFUZZ_SEED          seed of this process's randomness
  CRASHFUZZ_JOURNAL_MODE  WAL, DELETE, TRUNCATE, PERSIST, ... (applied, then read back)
  CRASHFUZZ_SYNCHRONOUS   OFF, NORMAL, FULL or EXTRA (applied, then read back)
  CRASHFUZZ_ROLE          writer: writes until killed; transient: appends --messages messages
                          (default 5), closes cleanly and exits 0

Protocol lines, each written with one os.write and ending in a newline:
  ready          the database is open and the pragmas are applied; writing starts
  begin KEY      right before the BEGIN of the transaction that inserts message KEY
  ack KEY        right after its COMMIT returned
KEY is m-<writer id>-<n>, n counting from 1 in each process; `begin` is written once per key,
even when SQLITE_BUSY makes the transaction roll back and run again.

--init creates the schema (idempotent) and seeds 3 sessions and 20 messages (seed-1..seed-20).

--health-check-bug switches on a realistic bug: every 7 writes (--health-check-every) and once
right after `ready`, a "health check" opens the database file itself, reads its header and
closes the descriptor while the SQLite connection stays open. That close drops every POSIX lock
the process holds on the file, SQLite's included (see health_check).

A disk error ("disk I/O error", "database or disk is full") rolls the message's transaction
back and retries it, at most 3 times; then the writer gives up.

Exit codes: 0 clean end, 2 bad usage, 4 a pragma did not take, an unexpected SQLite error, or
disk errors that persisted.
SIGTERM keeps its default action: the process dies.
"""
import argparse, json, os, random, sqlite3, sys, time

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions(id INTEGER PRIMARY KEY, title TEXT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
    session_id INTEGER NOT NULL REFERENCES sessions(id), role TEXT NOT NULL, body TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(body, content='messages',
    content_rowid='id');
CREATE VIRTUAL TABLE IF NOT EXISTS messages_trigram USING fts5(body, content='messages',
    content_rowid='id', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS messages_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
    INSERT INTO messages_trigram(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER IF NOT EXISTS messages_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_trigram(messages_trigram, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER IF NOT EXISTS messages_au AFTER UPDATE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_trigram(messages_trigram, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
    INSERT INTO messages_trigram(rowid, body) VALUES (new.id, new.body);
END;
"""

WORDS = ("the session gateway message agent tool result search index query user reply model "
         "token stream cache file write commit journal page lock checkpoint report error retry "
         "task plan summary context window history prompt answer request server client cron "
         "deploy build test latency budget quota weather garden river morning window coffee "
         "letter music quiet yellow bridge simple forward almost between").split()
SYNCHRONOUS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}
IO_RETRIES = 3  # a message's attempts after a disk error before the writer gives up (exit 4)


def fail(msg, code=4):
    print(f"app_writer: {msg}", file=sys.stderr)
    sys.exit(code)


def open_db(db):
    """Opens the database and applies the journal mode and synchronous from the environment."""
    mode = os.environ.get("CRASHFUZZ_JOURNAL_MODE", "WAL").upper()
    sync = os.environ.get("CRASHFUZZ_SYNCHRONOUS", "FULL").upper()
    if sync not in SYNCHRONOUS or not mode.isalpha():
        fail(f"bad CRASHFUZZ_JOURNAL_MODE {mode!r} or CRASHFUZZ_SYNCHRONOUS {sync!r}", 2)
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    conn.execute(f"PRAGMA journal_mode={mode}").fetchall()
    conn.execute(f"PRAGMA synchronous={sync}")
    got_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    got_sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    if got_mode != mode.lower() or got_sync != SYNCHRONOUS[sync]:
        fail(f"pragmas did not take: journal_mode {got_mode} (wanted {mode.lower()}), "
             f"synchronous {got_sync} (wanted {SYNCHRONOUS[sync]})")
    return conn, mode.lower()


def body(rng):
    if rng.random() < 0.10:  # a tool result: NUL-sentinel JSON
        return "tool", "\x00json:" + json.dumps({"tool": rng.choice(WORDS), "ok": rng.random() < 0.9,
                                                  "result": " ".join(rng.choices(WORDS, k=rng.randint(5, 40)))})
    return rng.choice(("user", "assistant")), " ".join(rng.choices(WORDS, k=rng.randint(20, 200)))


def init(db, rng):
    conn, _ = open_db(db)
    conn.executescript(SCHEMA)
    conn.execute("BEGIN IMMEDIATE")
    if conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0:
        for s in range(1, 4):
            conn.execute("INSERT INTO sessions(id, title) VALUES (?, ?)", (s, f"seed session {s}"))
        for n in range(1, 21):
            role, text = body(rng)
            conn.execute("INSERT INTO messages(key, session_id, role, body) VALUES (?, ?, ?, ?)",
                         (f"seed-{n}", n % 3 + 1, role, text))
            conn.execute("UPDATE sessions SET message_count = message_count + 1 WHERE id = ?", (n % 3 + 1,))
    conn.execute("COMMIT")
    conn.close()


def health_check(db):
    # THE BUG. POSIX advisory (fcntl) locks belong to the process, not to the descriptor: closing
    # ANY descriptor of a file drops every lock the process holds on that file, including the
    # ones SQLite's still-open connection holds on the database. SQLite does not notice. With a
    # rollback journal its RESERVED/PENDING/EXCLUSIVE locks vanish and two writers can write at
    # once; in WAL mode its SHARED lock vanishes, so another process closing its connection
    # believes it is the last one, checkpoints and deletes the -wal and -shm under this process,
    # which goes on committing into its own unlinked WAL (before SQLite 3.51.0).
    fd = os.open(db, os.O_RDONLY)
    try:
        os.read(fd, 100)
    finally:
        os.close(fd)


def append(conn, rng, ack, key):
    """Inserts message KEY in its own transaction, retrying the same key while busy, and up to
    IO_RETRIES times after a disk error (the transaction rolled back; the connection lives on)."""
    os.write(ack, f"begin {key}\n".encode())
    io_errors = 0
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            ids = [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY id")]
            if not ids or rng.random() < 0.05:
                sid = conn.execute("INSERT INTO sessions(title) VALUES (?)",
                                   (f"session {key}",)).lastrowid
            else:
                sid = rng.choice(ids)
            role, text = body(rng)
            conn.execute("INSERT INTO messages(key, session_id, role, body) VALUES (?, ?, ?, ?)",
                         (key, sid, role, text))
            conn.execute("UPDATE sessions SET message_count = message_count + 1 WHERE id = ?", (sid,))
            conn.execute("COMMIT")
            break
        except sqlite3.OperationalError as e:
            disk = "disk I/O error" in str(e) or "disk is full" in str(e)
            if "locked" not in str(e) and "busy" not in str(e) and not disk:
                raise
            if disk:
                io_errors += 1
                if io_errors > IO_RETRIES:
                    raise
                print(f"app_writer: {key}: {e}; rolled back, retrying", file=sys.stderr)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            time.sleep(0.005)
    os.write(ack, f"ack {key}\n".encode())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", action="store_true", help="create and seed the database, then exit")
    p.add_argument("--messages", type=int, default=5, help="messages a transient writes (default 5)")
    p.add_argument("--health-check-bug", action="store_true",
                   help="open and close the database file's own descriptor now and then (the bug)")
    p.add_argument("--health-check-every", type=int, default=7, metavar="N",
                   help="writes between two health checks (default 7)")
    args = p.parse_args()
    db = os.environ.get("CRASHFUZZ_DB") or fail("CRASHFUZZ_DB is not set", 2)
    rng = random.Random(int(os.environ.get("CRASHFUZZ_SEED", "0")))
    try:
        if args.init:
            return init(db, rng)
        ack = int(os.environ.get("CRASHFUZZ_ACK_FD") or fail("CRASHFUZZ_ACK_FD is not set", 2))
        writer_id = int(os.environ.get("CRASHFUZZ_WRITER_ID") or fail("CRASHFUZZ_WRITER_ID is not set", 2))
        role = os.environ.get("CRASHFUZZ_ROLE", "writer")
        if role not in ("writer", "transient"):
            fail(f"unknown CRASHFUZZ_ROLE {role!r}", 2)
        conn, mode = open_db(db)
        os.write(ack, b"ready\n")
        if args.health_check_bug:
            health_check(db)
        n = 0
        while role == "writer" or n < args.messages:
            n += 1
            append(conn, rng, ack, f"m-{writer_id}-{n}")
            if mode == "wal" and n % 50 == 0:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if args.health_check_bug and n % max(1, args.health_check_every) == 0:
                health_check(db)
        conn.close()
    except sqlite3.Error as e:
        fail(f"sqlite error: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()

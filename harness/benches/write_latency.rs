//! Write-latency benchmarks (criterion): what one commit costs per journal mode and
//! `synchronous` level, next to the physical floor of the same file system (a 4 KiB write and
//! fsync), what a WAL checkpoint costs, and what crashfuzz's tracing VFS adds to a commit.
//! `scripts/bench.sh` runs them and renders `results/write-latency.md` with
//! `crashfuzz bench-report`; the benchmark ids are defined in `crashfuzz::report::pages::bench`, so the
//! bench and the report cannot drift apart.
//!
//! | group | what one iteration times |
//! |---|---|
//! | `commit/<journal>/<sync>/<payload>/<rows>` | `BEGIN IMMEDIATE`, `rows` inserts, `COMMIT` |
//! | `checkpoint/<mode>/<frames>` | `PRAGMA wal_checkpoint(MODE)` of a WAL of exactly `frames` frames |
//! | `fsync_floor/<append\|overwrite>` | one 4 KiB `write` and `fsync` |
//! | `vfs_overhead/<plain\|traced>` | a WAL+FULL one-message commit on `unix` or on the tracing shim |
//!
//! Beside criterion, and only under `cargo bench`, two paired measurements go in the run record:
//! the tracing VFS's overhead (plain and traced commits alternating) and what each synchronous
//! level costs over OFF in each journal mode ([`paired_levels`]: the four levels' commits and
//! the fsync floor interleaved round by round, the cost a median of per-round differences).
//!
//! # Where and how long
//!
//! Databases live in `crashfuzz::report::pages::bench::bench_dir()`: `$CRASHFUZZ_BENCH_DIR` when set,
//! else `${CARGO_TARGET_DIR:-target}/bench-db`, on the real disk. Set
//! `CRASHFUZZ_BENCH_DIR=/dev/shm/crashfuzz-bench` for a tmpfs contrast (no fsync reaches a
//! device there; the report says which file system it was). Criterion writes to
//! `$CRITERION_HOME` or `${CARGO_TARGET_DIR:-target}/criterion`, and this bench adds
//! `crashfuzz-bench-run.json` there (command, versions, machine, file system) for the report.
//!
//! 72 benchmarks. The defaults (20 samples, 0.5 s warm-up, 2 s measurement each, and
//! criterion's plots, which take about half the time) run in about 7 minutes on 2 cores;
//! criterion's own flags override them, e.g. `cargo bench --bench write_latency --
//! --sample-size 10 --warm-up-time 0.1 --measurement-time 0.3 --noplot` (what
//! `scripts/bench.sh --quick` runs: under a minute). Criterion's `--quick` is not useful here:
//! it stops after two samples, too few for the intervals the report prints.
//!
//! # What is timed, and what is not
//!
//! Every sample of a commit benchmark starts from a fresh copy of a template database
//! (fsynced, so that no earlier dirty page is written back inside a timed commit), opens it,
//! sets the pragmas explicitly through `pragmas::apply` (which reads each one back), and runs
//! [`WARM_COMMITS`] untimed commits so that the journal or WAL exists and the cache is warm.
//! Samples are therefore replicas of one experiment, which is why the groups use criterion's
//! flat sampling (every sample the same number of commits) rather than the linear one (sample
//! `k` runs `k` times as many commits on an ever larger database). In WAL mode a PASSIVE
//! checkpoint runs, untimed, whenever the WAL nears [`CHECKPOINT_AT_FRAMES`]: the WAL restarts
//! about as often as under the 1000-page auto-checkpoint, but no timed commit includes a
//! checkpoint. The checkpoint's cost is its own group.
//!
//! All data comes from fixed seeds: the templates, the message pool (1 KiB messages from the
//! workload's own generator) and the plain rows are the same in every run.

use crashfuzz::base::stats;
use crashfuzz::fault::vfs::{self, Injection, VfsConfig};
use crashfuzz::report::pages::bench::{
    self, BenchId, BenchRun, CHECKPOINT_AT_FRAMES, COMMIT_AUTO_CHECKPOINT_PAGES, COMMIT_CACHE_KIB, FSYNC_PROBE_WRITES,
    FloorKind, FsyncProbe, MESSAGE_BYTES, PairedVfs, Payload, ROW_BYTES, VfsKind,
};
use crashfuzz::scenario::matrix::{CheckpointMode, FullFsync, JournalMode, Synchronous};
use crashfuzz::writer::pragmas::{self, Pragmas};
use crashfuzz::writer::session_store::{self, Message, WorkloadConfig};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The seed of every piece of data the benches write.
const SEED: u64 = 0x5eed_0fc0_3317;
/// Criterion settings before its command-line flags (which win) are applied.
const DEFAULT_SAMPLES: usize = 20;
const DEFAULT_WARM_UP: Duration = Duration::from_millis(500);
const DEFAULT_MEASUREMENT: Duration = Duration::from_secs(2);

/// The writer id the benches' transactions are tagged with (the seed transactions are 0).
const WRITER_ID: i64 = 1;
/// Rows in the `row` template, so its table has interior pages like a used one.
const ROW_TEMPLATE_ROWS: u32 = 1000;
/// Distinct messages and row bodies generated up front, cycled through by the commits.
const POOL_SIZE: usize = 256;
/// Untimed commits after opening a fresh copy, before the timed ones.
const WARM_COMMITS: u64 = 3;
/// Commits of each VFS in the paired (interleaved) overhead measurement.
const PAIRED_VFS_ROUNDS: u64 = 300;
/// Rounds of the paired synchronous-level measurement, per journal mode: one commit of each
/// level and one fsync-floor write each.
const PAIRED_LEVEL_ROUNDS: u64 = 300;
/// Appends between the untimed truncations of the fsync-floor file (4 MiB at most).
const FLOOR_TRUNCATE_EVERY: u64 = 1024;
/// Size of each row of the checkpoint template, in bytes: more than half a 4 KiB page, so
/// every row has a leaf page of its own and updating `n` rows dirties exactly `n` pages.
const PAGE_ROW_BYTES: usize = 3000;
/// `PRAGMA cache_size` of the checkpoint bench, in KiB: room for the largest WAL's pages, so
/// that building it never spills (a spill could write a page twice, adding frames).
const CHECKPOINT_CACHE_KIB: u32 = 16 * 1024;

fn main() {
    let bench_dir = bench::bench_dir();
    std::fs::create_dir_all(&bench_dir).unwrap_or_else(|e| panic!("{}: {e}", bench_dir.display()));
    let criterion_dir = bench::criterion_dir();
    std::fs::create_dir_all(&criterion_dir).unwrap_or_else(|e| panic!("{}: {e}", criterion_dir.display()));
    let mut c = Criterion::default()
        .sample_size(DEFAULT_SAMPLES)
        .warm_up_time(DEFAULT_WARM_UP)
        .measurement_time(DEFAULT_MEASUREMENT)
        .output_directory(&criterion_dir)
        .configure_from_args();

    let args: Vec<String> = std::env::args().skip(1).collect();
    // Criterion benchmarks only when cargo passed `--bench` and no mode flag overrides it
    // (its own rule; its mode is private). `cargo test --benches` and `--list` must not
    // overwrite the record of the last real run.
    let benchmarking = args.iter().any(|a| a == "--bench")
        && !args.iter().any(|a| matches!(a.as_str(), "--test" | "--list" | "--profile-time"));
    let mut run = BenchRun {
        wrapper_command: std::env::var(bench::COMMAND_ENV).ok().filter(|c| !c.is_empty()),
        bench_args: args,
        default_samples: DEFAULT_SAMPLES,
        default_warm_up_ms: DEFAULT_WARM_UP.as_millis() as u64,
        default_measurement_ms: DEFAULT_MEASUREMENT.as_millis() as u64,
        crashfuzz_version: env!("CARGO_PKG_VERSION").to_string(),
        sqlite_version: rusqlite::version().to_string(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        started_at_unix_s: chrono::Utc::now().timestamp() as u64,
        finished_at: None,
        machine: bench::machine(&bench_dir),
        fsync_probes: Vec::new(),
        vfs_paired: None,
        paired_levels: Vec::new(),
    };
    let run_file = criterion_dir.join(bench::RUN_FILE);
    if benchmarking {
        write_run(&run_file, &run);
    }

    let data = Data::build(&bench_dir);
    let probe = |group: &str| fsync_probe(&bench_dir, group);
    run.fsync_probes.push(probe("fsync_floor"));
    bench_fsync_floor(&mut c, &bench_dir);
    bench_commits(&mut c, &bench_dir, &data, &mut |group| run.fsync_probes.push(probe(group)));
    run.fsync_probes.push(probe("checkpoint"));
    bench_checkpoints(&mut c, &bench_dir, &data);
    run.fsync_probes.push(probe("vfs_overhead"));
    run.vfs_paired = Some(bench_vfs_overhead(&mut c, &bench_dir, &data));
    if benchmarking {
        run.fsync_probes.push(probe("paired_levels"));
        run.paired_levels = bench::COMMIT_JOURNALS.iter().map(|&j| paired_levels(&bench_dir, &data, j)).collect();
    }
    run.fsync_probes.push(probe("end"));
    c.final_summary();

    if benchmarking {
        run.finished_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        write_run(&run_file, &run);
    }
}

fn write_run(path: &Path, run: &BenchRun) {
    let json = serde_json::to_string_pretty(run).expect("a BenchRun always serializes");
    std::fs::write(path, json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Runs `f` as benchmark `id` in `group` (whose name must be `id.group`).
fn bench<F>(group: &mut BenchmarkGroup<'_, WallTime>, id: &BenchId, f: F)
where
    F: FnMut(&mut criterion::Bencher<'_, WallTime>),
{
    match &id.value {
        Some(value) => group.bench_function(BenchmarkId::new(id.function.clone(), value), f),
        None => group.bench_function(id.function.clone(), f),
    };
}

/// Everything generated up front: the template databases and the payload pools.
struct Data {
    row_template: PathBuf,
    message_template: PathBuf,
    page_template: PathBuf,
    row_bodies: Vec<Vec<u8>>,
    messages: Vec<Message>,
    /// Sessions in the message template; commits append to them in turn.
    sessions: i64,
}

impl Data {
    fn build(bench_dir: &Path) -> Data {
        let dir = bench_dir.join("templates");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let row_bodies: Vec<Vec<u8>> = (0..POOL_SIZE)
            .map(|_| {
                let mut body = vec![0u8; ROW_BYTES];
                rng.fill(&mut body[..]);
                body
            })
            .collect();

        let row_template = dir.join("row.sqlite");
        let conn = new_db(&row_template);
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL, \
             body BLOB NOT NULL)",
        )
        .expect("create the row table");
        conn.execute_batch("BEGIN").expect("begin");
        for i in 0..ROW_TEMPLATE_ROWS {
            conn.execute(
                "INSERT INTO items (writer, seq, body) VALUES (0, ?1, ?2)",
                params![i, row_bodies[i as usize % POOL_SIZE]],
            )
            .expect("seed a row");
        }
        conn.execute_batch("COMMIT").expect("commit");
        close_and_sync(conn, &row_template);

        let message_template = dir.join("message.sqlite");
        let cfg = WorkloadConfig::default();
        let mut conn = new_db(&message_template);
        session_store::create_schema(&conn, &cfg).expect("create the session-store schema");
        session_store::seed(&mut conn, &cfg, SEED).expect("seed the session store");
        close_and_sync(conn, &message_template);

        let page_template = dir.join("pages.sqlite");
        let frames_max = *bench::CHECKPOINT_FRAMES.iter().max().expect("frames are listed");
        let conn = new_db(&page_template);
        conn.execute_batch("CREATE TABLE pages (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").expect("create pages");
        conn.execute_batch("BEGIN").expect("begin");
        for id in 1..=frames_max {
            conn.execute("INSERT INTO pages (id, body) VALUES (?1, ?2)", params![id, vec![0u8; PAGE_ROW_BYTES]])
                .expect("seed a page row");
        }
        conn.execute_batch("COMMIT").expect("commit");
        close_and_sync(conn, &page_template);

        let messages = session_store::uniform_messages(WRITER_ID as u64, SEED, MESSAGE_BYTES, POOL_SIZE);
        Data {
            row_template,
            message_template,
            page_template,
            row_bodies,
            messages,
            sessions: i64::from(cfg.seed_sessions),
        }
    }

    fn template(&self, payload: Payload) -> &Path {
        match payload {
            Payload::Row => &self.row_template,
            Payload::Message => &self.message_template,
        }
    }
}

/// A new, empty database with an explicit 4 KiB page size (rollback journal: a template is a
/// single file, whatever journal mode its copies will use).
fn new_db(path: &Path) -> Connection {
    remove_db_files(path);
    let conn = Connection::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE").expect("template pragmas");
    conn
}

fn close_and_sync(conn: Connection, path: &Path) {
    conn.close().map_err(|(_, e)| e).unwrap_or_else(|e| panic!("close {}: {e}", path.display()));
    File::open(path).and_then(|f| f.sync_all()).unwrap_or_else(|e| panic!("fsync {}: {e}", path.display()));
}

/// Removes a database and every file SQLite may keep beside it.
fn remove_db_files(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove {}: {e}", Path::new(&name).display()),
        }
    }
}

/// A fresh copy of `template` at `db`, fsynced: otherwise the first synced commit would also
/// write back the whole copy.
fn fresh_copy(template: &Path, db: &Path) {
    remove_db_files(db);
    std::fs::copy(template, db).unwrap_or_else(|e| panic!("copy {} to {}: {e}", template.display(), db.display()));
    File::open(db).and_then(|f| f.sync_all()).unwrap_or_else(|e| panic!("fsync {}: {e}", db.display()));
}

fn open(db: &Path, vfs_kind: VfsKind, p: &Pragmas) -> Connection {
    let conn = match vfs_kind {
        VfsKind::Plain => Connection::open(db),
        VfsKind::Traced => Connection::open_with_flags_and_vfs(db, OpenFlags::default(), vfs::VFS_NAME),
    }
    .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    pragmas::apply(&conn, p).unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    conn
}

fn commit_pragmas(journal_mode: JournalMode, synchronous: Synchronous) -> Pragmas {
    Pragmas {
        journal_mode,
        synchronous,
        busy_timeout_ms: 5000,
        cache_size_kib: COMMIT_CACHE_KIB,
        // The untimed checkpoints keep the WAL below it, see the module doc.
        wal_autocheckpoint_pages: COMMIT_AUTO_CHECKPOINT_PAGES,
        fullfsync: FullFsync::Off,
    }
}

/// `PRAGMA wal_checkpoint(MODE)`: (busy, frames in the WAL, frames checkpointed).
fn checkpoint(conn: &Connection, mode: CheckpointMode) -> (i64, i64, i64) {
    conn.query_row(&format!("PRAGMA wal_checkpoint({})", mode.as_sql()), [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap_or_else(|e| panic!("wal_checkpoint({}): {e}", mode.as_sql()))
}

/// One commit benchmark's setting.
struct CommitCase<'a> {
    db: PathBuf,
    pragmas: Pragmas,
    vfs: VfsKind,
    payload: Payload,
    rows: u32,
    data: &'a Data,
    /// The tracing VFS's trace file, emptied when a session starts.
    trace: Option<PathBuf>,
}

impl CommitCase<'_> {
    /// One criterion sample: a fresh database, warm-up commits, then `iters` timed commits.
    fn sample(&self, iters: u64) -> Duration {
        let mut session = Session::start(self);
        (0..iters).map(|_| session.timed_commit()).sum()
    }
}

/// A fresh database of one [`CommitCase`], warmed up, committing one transaction at a time.
struct Session<'c, 'd> {
    case: &'c CommitCase<'d>,
    conn: Connection,
    seq: i64,
    commits_since_checkpoint: i64,
    /// Commits between untimed checkpoints, learnt at each checkpoint from the frames the
    /// commits since the last one wrote (a ten-message commit writes dozens, a row one or two).
    checkpoint_every: i64,
}

impl<'c, 'd> Session<'c, 'd> {
    fn start(case: &'c CommitCase<'d>) -> Self {
        if let Some(trace) = &case.trace {
            // Started afresh here, never between timed commits. Not truncated: the VFS maps it,
            // and a file shrunk under a mapping kills the process at its next append.
            vfs::restart_trace().unwrap_or_else(|e| panic!("restart {}: {e}", trace.display()));
        }
        fresh_copy(case.data.template(case.payload), &case.db);
        let conn = open(&case.db, case.vfs, &case.pragmas);
        let mut session = Session { case, conn, seq: 0, commits_since_checkpoint: 0, checkpoint_every: 1 };
        for _ in 0..WARM_COMMITS {
            session.commit();
        }
        session
    }

    /// One commit, timed; before it, untimed, the periodic checkpoint when one is due.
    fn timed_commit(&mut self) -> Duration {
        if self.case.pragmas.journal_mode.is_wal() && self.commits_since_checkpoint >= self.checkpoint_every {
            let (busy, frames, _) = checkpoint(&self.conn, CheckpointMode::Passive);
            assert_eq!(busy, 0, "nothing else uses {}", self.case.db.display());
            let frames_per_commit = (frames / self.commits_since_checkpoint).max(1);
            self.checkpoint_every = (CHECKPOINT_AT_FRAMES / frames_per_commit).max(1);
            self.commits_since_checkpoint = 0;
        }
        let started = Instant::now();
        self.commit();
        started.elapsed()
    }

    fn commit(&mut self) {
        self.seq += 1;
        self.commits_since_checkpoint += 1;
        let (case, seq) = (self.case, self.seq);
        let result = match case.payload {
            Payload::Row => commit_rows(&mut self.conn, seq, case.rows, &case.data.row_bodies),
            Payload::Message => {
                commit_messages(&mut self.conn, seq, case.rows, &case.data.messages, case.data.sessions)
            }
        };
        result.unwrap_or_else(|e| panic!("commit {seq} on {}: {e}", case.db.display()));
    }
}

/// One transaction of `rows` plain rows.
fn commit_rows(conn: &mut Connection, seq: i64, rows: u32, bodies: &[Vec<u8>]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached("INSERT INTO items (writer, seq, body) VALUES (?1, ?2, ?3)")?;
        for k in 0..i64::from(rows) {
            let body = &bodies[((seq * i64::from(rows) + k) as usize) % bodies.len()];
            insert.execute(params![WRITER_ID, seq, body])?;
        }
    }
    tx.commit()
}

/// One transaction of `rows` messages through the workload's own append statements
/// (`session_store::append_messages`: each message, its session's counters, the ledger row); the
/// messages table's triggers fill both FTS5 indexes.
fn commit_messages(
    conn: &mut Connection,
    seq: i64,
    rows: u32,
    pool: &[Message],
    sessions: i64,
) -> rusqlite::Result<()> {
    let session = 1 + seq % sessions;
    let messages: Vec<&Message> =
        (0..i64::from(rows)).map(|k| &pool[((seq * i64::from(rows) + k) as usize) % pool.len()]).collect();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    session_store::append_messages(&tx, WRITER_ID as u64, seq as u64, session, &messages)?;
    tx.commit()
}

/// The commit groups; `before_group` runs before each (the disk probe).
fn bench_commits(c: &mut Criterion, bench_dir: &Path, data: &Data, before_group: &mut dyn FnMut(&str)) {
    let db = bench_dir.join("commit").join("db.sqlite");
    std::fs::create_dir_all(db.parent().expect("has a parent")).expect("create the commit directory");
    for journal in bench::COMMIT_JOURNALS {
        for sync in Synchronous::ALL {
            let group_name = bench::commit_id(journal, sync, Payload::Row, 1).group;
            before_group(&group_name);
            let mut group = c.benchmark_group(group_name);
            group.sampling_mode(SamplingMode::Flat);
            for payload in Payload::ALL {
                for rows in bench::ROWS_PER_TXN {
                    let case = CommitCase {
                        db: db.clone(),
                        pragmas: commit_pragmas(journal, sync),
                        vfs: VfsKind::Plain,
                        payload,
                        rows,
                        data,
                        trace: None,
                    };
                    bench(&mut group, &bench::commit_id(journal, sync, payload, rows), |b| {
                        b.iter_custom(|iters| case.sample(iters))
                    });
                }
            }
            group.finish();
        }
    }
}

/// The two VFS benchmarks, then the same comparison paired: criterion measures plain and
/// traced one after the other, so a disk whose fsync latency drifts between the two (it does,
/// on a shared virtual disk) shows up as "overhead". The paired run alternates single commits
/// of two live sessions, ABBA, so drift hits both alike; its medians go in the run record.
fn bench_vfs_overhead(c: &mut Criterion, bench_dir: &Path, data: &Data) -> PairedVfs {
    let dir = bench_dir.join("vfs");
    std::fs::create_dir_all(&dir).expect("create the vfs directory");
    let trace = dir.join("trace.bin");
    // Registered once per process, not as the default VFS: only the traced case names it.
    vfs::register(VfsConfig { writer: WRITER_ID as u64, trace_path: trace.clone(), injection: Injection::None })
        .unwrap_or_else(|e| panic!("register the tracing VFS: {e}"));
    let case = |kind: VfsKind| CommitCase {
        db: dir.join(format!("{}.sqlite", kind.as_str())),
        pragmas: commit_pragmas(JournalMode::Wal, Synchronous::Full),
        vfs: kind,
        payload: Payload::Message,
        rows: 1,
        data,
        trace: match kind {
            VfsKind::Plain => None,
            VfsKind::Traced => Some(trace.clone()),
        },
    };
    let mut group = c.benchmark_group(bench::vfs_id(VfsKind::Plain).group);
    group.sampling_mode(SamplingMode::Flat);
    for kind in bench::vfs_ids() {
        let case = case(kind);
        bench(&mut group, &bench::vfs_id(kind), |b| b.iter_custom(|iters| case.sample(iters)));
    }
    group.finish();

    let (plain_case, traced_case) = (case(VfsKind::Plain), case(VfsKind::Traced));
    let (mut plain, mut traced) = (Session::start(&plain_case), Session::start(&traced_case));
    let (mut plain_us, mut traced_us) = (stats::new_latency_histogram(), stats::new_latency_histogram());
    for round in 0..PAIRED_VFS_ROUNDS {
        let one = |session: &mut Session<'_, '_>, h: &mut hdrhistogram::Histogram<u64>| {
            h.saturating_record(session.timed_commit().as_micros() as u64);
        };
        if round % 2 == 0 {
            one(&mut plain, &mut plain_us);
            one(&mut traced, &mut traced_us);
        } else {
            one(&mut traced, &mut traced_us);
            one(&mut plain, &mut plain_us);
        }
    }
    PairedVfs {
        commits_each: PAIRED_VFS_ROUNDS,
        plain_median_us: stats::median(&plain_us).expect("rounds > 0"),
        traced_median_us: stats::median(&traced_us).expect("rounds > 0"),
    }
}

/// What each synchronous level adds to a one-message commit over OFF under `journal`, paired:
/// four live sessions (one per level, each on its own database in one directory) and the
/// fsync floor (a 4 KiB append + fsync, as the floor group times it) take turns, one timed
/// operation each per round, in an order that rotates every round and reverses every other,
/// so that no level always follows another. A level's cost is the median over the rounds of
/// its commit minus OFF's of the same round: a disk or a neighbour that drifts over the run
/// moves both sides of each difference alike. Not a criterion benchmark: it goes in the run
/// record ([`bench::PairedLevels`]) and the report's cost table.
fn paired_levels(bench_dir: &Path, data: &Data, journal: JournalMode) -> bench::PairedLevels {
    let dir = bench_dir.join("levels");
    std::fs::create_dir_all(&dir).expect("create the levels directory");
    let cases: Vec<CommitCase<'_>> = Synchronous::ALL
        .iter()
        .map(|&sync| CommitCase {
            db: dir.join(format!("{}-{}.sqlite", journal.as_sql(), sync.as_sql())),
            pragmas: commit_pragmas(journal, sync),
            vfs: VfsKind::Plain,
            payload: Payload::Message,
            rows: 1,
            data,
            trace: None,
        })
        .collect();
    let mut sessions: Vec<Session<'_, '_>> = cases.iter().map(Session::start).collect();
    let mut floor = FloorFile::open(dir.join("floor.bin"), FloorKind::Append);
    // Slot k < levels is session k; slot `levels` is the floor.
    let slots = sessions.len() + 1;
    let mut us: Vec<Vec<u64>> = vec![Vec::new(); slots];
    for round in 0..PAIRED_LEVEL_ROUNDS {
        let mut order: Vec<usize> = (0..slots).map(|k| (k + round as usize) % slots).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for slot in order {
            let elapsed = match sessions.get_mut(slot) {
                Some(session) => session.timed_commit(),
                None => floor.timed_write(),
            };
            us[slot].push(elapsed.as_micros() as u64);
        }
    }
    let median = |v: &[u64]| {
        let (_, m, _) =
            stats::median_with_interval(&v.iter().map(|&u| u as i64).collect::<Vec<_>>()).expect("rounds > 0");
        m as u64
    };
    let off = &us[0];
    let levels = Synchronous::ALL
        .iter()
        .enumerate()
        .map(|(k, &sync)| {
            let deltas: Vec<i64> = us[k].iter().zip(off).map(|(&a, &b)| a as i64 - b as i64).collect();
            let (lo, delta, hi) = stats::median_with_interval(&deltas).expect("rounds > 0");
            bench::LevelCost {
                synchronous: sync,
                median_us: median(&us[k]),
                delta_median_us: delta,
                delta_lo_us: lo,
                delta_hi_us: hi,
            }
        })
        .collect();
    bench::PairedLevels {
        journal_mode: journal,
        rounds: PAIRED_LEVEL_ROUNDS,
        floor_median_us: median(&us[slots - 1]),
        levels,
    }
}

/// The median of [`FSYNC_PROBE_WRITES`] overwrites and fsyncs of one 4 KiB block in the bench
/// directory, in µs: a gauge of the disk at the moment a group starts, so that a reader can
/// tell a setting's cost from the disk's mood.
fn fsync_probe(bench_dir: &Path, before_group: &str) -> FsyncProbe {
    let path = bench_dir.join("probe.bin");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let block = [0xa5u8; bench::FLOOR_BLOCK_BYTES];
    let mut us = stats::new_latency_histogram();
    for _ in 0..FSYNC_PROBE_WRITES {
        let started = Instant::now();
        file.write_all_at(&block, 0)
            .and_then(|()| file.sync_all())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        us.saturating_record(started.elapsed().as_micros() as u64);
    }
    FsyncProbe { before_group: before_group.to_string(), median_us: stats::median(&us).expect("writes > 0") }
}

fn bench_checkpoints(c: &mut Criterion, bench_dir: &Path, data: &Data) {
    let db = bench_dir.join("checkpoint").join("db.sqlite");
    std::fs::create_dir_all(db.parent().expect("has a parent")).expect("create the checkpoint directory");
    let pragmas = Pragmas {
        journal_mode: JournalMode::Wal,
        synchronous: Synchronous::Full,
        busy_timeout_ms: 5000,
        cache_size_kib: CHECKPOINT_CACHE_KIB,
        // Off: a 1000-frame commit would otherwise run the auto-checkpoint itself, and the
        // timed checkpoint would find nothing to do.
        wal_autocheckpoint_pages: 0,
        fullfsync: FullFsync::Off,
    };
    let mut group = c.benchmark_group(bench::checkpoint_id(CheckpointMode::Passive, 1).group);
    group.sampling_mode(SamplingMode::Flat);
    for (mode, frames) in bench::checkpoint_ids() {
        // The database does not grow (every update rewrites a row in place), so one copy
        // serves every sample of a benchmark.
        fresh_copy(&data.page_template, &db);
        let conn = open(&db, VfsKind::Plain, &pragmas);
        let mut round = 0u8;
        bench(&mut group, &bench::checkpoint_id(mode, frames), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    // A different fill each round: SQLite does not dirty a page that an
                    // update leaves byte-for-byte unchanged.
                    round = round.wrapping_add(1);
                    build_wal(&conn, frames, round);
                    let started = Instant::now();
                    let result = checkpoint(&conn, mode);
                    timed += started.elapsed();
                    check_checkpoint(mode, frames, result);
                }
                timed
            })
        });
        drop(conn);
    }
    group.finish();
}

/// One untimed transaction that rewrites `frames` rows, each on its own page: exactly `frames`
/// WAL frames.
fn build_wal(conn: &Connection, frames: u32, round: u8) {
    let body = vec![round; PAGE_ROW_BYTES];
    let build = || -> rusqlite::Result<()> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut update = conn.prepare_cached("UPDATE pages SET body = ?2 WHERE id = ?1")?;
            for id in 1..=frames {
                update.execute(params![id, body])?;
            }
        }
        conn.execute_batch("COMMIT")
    };
    build().unwrap_or_else(|e| panic!("build a WAL of {frames} frames: {e}"));
}

/// A checkpoint that was blocked, or found another WAL than the one built, would make the
/// number meaningless: that is a bench bug, so it panics.
fn check_checkpoint(mode: CheckpointMode, frames: u32, (busy, log, done): (i64, i64, i64)) {
    let frames = i64::from(frames);
    let expected = match mode {
        CheckpointMode::Passive | CheckpointMode::Full | CheckpointMode::Restart => (0, frames, frames),
        // TRUNCATE reports the WAL it left behind: none.
        CheckpointMode::Truncate => (0, 0, 0),
    };
    assert_eq!((busy, log, done), expected, "wal_checkpoint({}) of {frames} frames", mode.as_sql());
}

fn bench_fsync_floor(c: &mut Criterion, bench_dir: &Path) {
    let dir = bench_dir.join("floor");
    std::fs::create_dir_all(&dir).expect("create the floor directory");
    let mut group = c.benchmark_group(bench::floor_id(FloorKind::Append).group);
    for kind in bench::floor_ids() {
        let mut floor = FloorFile::open(dir.join(format!("{}.bin", kind.as_str())), kind);
        bench(&mut group, &bench::floor_id(kind), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| floor.timed_write()).sum())
        });
    }
    group.finish();
}

/// The fsync floor's file: one 4 KiB block written then fsynced per timed write, appended at
/// the end (the file truncated, untimed, every [`FLOOR_TRUNCATE_EVERY`] appends) or over its
/// first block.
struct FloorFile {
    file: File,
    path: PathBuf,
    kind: FloorKind,
    appended: u64,
}

impl FloorFile {
    fn open(path: PathBuf, kind: FloorKind) -> FloorFile {
        // O_APPEND for the append case, so every write lands at the end even after the
        // untimed truncations (std refuses `truncate` with `append`, hence `set_len`).
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(kind == FloorKind::Append)
            .open(&path)
            .and_then(|f| f.set_len(0).map(|()| f))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The overwritten block exists and is on disk before the first timed overwrite.
        if kind == FloorKind::Overwrite {
            file.write_all_at(&[0x5a; bench::FLOOR_BLOCK_BYTES], 0)
                .and_then(|()| file.sync_all())
                .expect("preallocate the overwrite block");
        }
        FloorFile { file, path, kind, appended: 0 }
    }

    /// One write and fsync, timed (the periodic truncation is not).
    fn timed_write(&mut self) -> Duration {
        let block = [0x5au8; bench::FLOOR_BLOCK_BYTES];
        if self.kind == FloorKind::Append && self.appended >= FLOOR_TRUNCATE_EVERY {
            self.file.set_len(0).and_then(|()| self.file.sync_all()).expect("truncate the append file");
            self.appended = 0;
        }
        let started = Instant::now();
        // sync_all is fsync(2), what SQLite calls; sync_data (fdatasync) would skip the
        // timestamp update and understate the floor SQLite sees.
        match self.kind {
            FloorKind::Append => (&self.file).write_all(&block),
            FloorKind::Overwrite => self.file.write_all_at(&block, 0),
        }
        .and_then(|()| self.file.sync_all())
        .unwrap_or_else(|e| panic!("{}: {e}", self.path.display()));
        self.appended += 1;
        started.elapsed()
    }
}

//! What one crash state costs the oracle (criterion), so that a regression in the checks or in
//! the power-loss builder shows: the full check of one kill image, the full check of one
//! power-loss image, building one power-loss image, and beside them the floor, SQLite's own
//! `PRAGMA integrity_check` on the same image (FTS5 included).
//!
//! | benchmark | one iteration |
//! |---|---|
//! | `check/kill` | every check (open, integrity, FTS5, search, acknowledgements, atomicity, prefix, write after recovery) on a fresh copy of a WAL+FULL image after a kill |
//! | `check/integrity_floor` | opening (recovery) and `PRAGMA integrity_check` alone on a fresh copy of the same image |
//! | `power_loss/build` | one image built from the base files and the traced writes, cut before the last commit's WAL sync (a random fate per undetermined operation) |
//! | `power_loss/check` | every check on one built image, written out as a trial writes it |
//!
//! The database is the default workload's (seeded with 100 messages, both FTS5 indexes), then
//! [`COMMITS`] one-message commits through the tracing VFS under WAL+FULL, left unclosed as a
//! killed writer leaves them. Untimed: the copies each check starts from (a check writes to
//! its image). Everything is seeded: the same images in every run.
//!
//!   cargo bench --bench check            # about a minute on 2 cores

use crashfuzz::fault::power_loss::builder::{self, Device, TornFill};
use crashfuzz::fault::trace::{self, Record};
use crashfuzz::fault::vfs::{self, Injection, VfsConfig};
use crashfuzz::oracle::{self, CheckConfig, IntegrityLevel, ReopenConfig};
use crashfuzz::record::expected::{Expected, WriterExpectation};
use crashfuzz::scenario::matrix::{FullFsync, JournalMode, Synchronous};
use crashfuzz::writer::pragmas::{self, Pragmas};
use crashfuzz::writer::session_store::{self, WorkloadConfig};
use criterion::{BatchSize, Criterion};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::Path;

/// The seed of the database, the messages and the images.
const SEED: u64 = 0xc4ec_0001;
/// One-message commits after the seed, traced.
const COMMITS: u64 = 20;
/// The writer id of the traced commits (the seed is writer 0's).
const WRITER: u64 = 1;

fn main() {
    let dir = crashfuzz::report::pages::bench::bench_dir().join("check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let dir = dir.canonicalize().expect("the bench directory resolves");
    let mut c = Criterion::default().sample_size(20).configure_from_args();
    let setup = Setup::make(&dir);

    let fresh = |name: &str| {
        let copy = dir.join(name);
        let _ = std::fs::remove_dir_all(&copy);
        crashfuzz::base::dbfiles::write_files(&copy, &setup.killed).expect("write the kill image");
        copy.join("db.sqlite")
    };
    let mut group = c.benchmark_group("check");
    group.bench_function("kill", |b| {
        b.iter_batched(
            || fresh("kill"),
            |db| oracle::check_image(&db, &setup.check, Some(&setup.expected)).expect("the checks run"),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("integrity_floor", |b| {
        b.iter_batched(
            || fresh("floor"),
            |db| {
                let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_WRITE).expect("open");
                let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
                assert_eq!(ok, "ok");
                // Returned, so that its close (which checkpoints the WAL) is not timed: the
                // floor is the recovery and the check.
                conn
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("power_loss");
    let names: Vec<String> = setup.base.keys().cloned().collect();
    let cut = setup.cut;
    let analysis = builder::analyze(&names, &setup.records, cut, &setup.device);
    assert!(!analysis.undetermined.is_empty(), "the last commit's frames are undetermined at the cut");
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    group.bench_function("build", |b| {
        b.iter(|| {
            let choices = builder::random_choices(&analysis, 20, &mut rng);
            builder::build(&setup.base, &setup.records, cut, &setup.device, &choices)
        })
    });
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let image_dir = dir.join("image");
    group.bench_function("check", |b| {
        b.iter_batched(
            || {
                let choices = builder::random_choices(&analysis, 20, &mut rng);
                let files = builder::build(&setup.base, &setup.records, cut, &setup.device, &choices);
                let _ = std::fs::remove_dir_all(&image_dir);
                files
            },
            |files| {
                crashfuzz::base::dbfiles::write_files(&image_dir, &files).expect("write the image");
                oracle::check_image(&image_dir.join("db.sqlite"), &setup.check, Some(&setup.power_expected))
                    .expect("the checks run")
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    c.final_summary();
}

/// The images and what the oracle is told about them.
struct Setup {
    /// The database files as a kill leaves them (everything written reached the page cache).
    killed: BTreeMap<String, Vec<u8>>,
    /// The files before the traced commits, and the trace of those commits.
    base: BTreeMap<String, Vec<u8>>,
    records: Vec<Record>,
    device: Device,
    check: CheckConfig,
    /// Every traced commit acknowledged (a kill keeps them all).
    expected: Expected,
    /// The power cut: just before the last commit's WAL sync, so that its frames are
    /// undetermined (after it, WAL+FULL leaves nothing to decide).
    cut: usize,
    /// The acknowledgements before the cut (a power loss may lose what was not acknowledged).
    power_expected: Expected,
}

impl Setup {
    fn make(dir: &Path) -> Setup {
        let trace = dir.join(trace::TRACE_FILE);
        vfs::register(VfsConfig { writer: WRITER, trace_path: trace.clone(), injection: Injection::None })
            .unwrap_or_else(|e| panic!("register the tracing VFS: {e}"));
        let work = dir.join("writer");
        std::fs::create_dir_all(&work).expect("create the writer directory");
        let db = work.join("db.sqlite");
        let workload = WorkloadConfig::default();
        let pragmas = Pragmas {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Full,
            busy_timeout_ms: workload.busy_timeout_ms,
            cache_size_kib: workload.cache_size_kib,
            wal_autocheckpoint_pages: 1000,
            fullfsync: FullFsync::Off,
        };
        let seeded = {
            let mut conn = Connection::open(&db).expect("open the template");
            session_store::create_schema(&conn, &workload).expect("schema");
            let seeded = session_store::seed(&mut conn, &workload, SEED).expect("seed");
            pragmas::apply(&conn, &pragmas).expect("pragmas");
            conn.close().map_err(|(_, e)| e).expect("close the template");
            seeded
        };
        let base = read_files(&work);
        let mut conn = Connection::open_with_flags_and_vfs(&db, OpenFlags::default(), vfs::VFS_NAME)
            .expect("open through the tracing VFS");
        pragmas::apply(&conn, &pragmas).expect("pragmas");
        let messages = session_store::uniform_messages(WRITER, SEED, 1024, COMMITS as usize);
        for seq in 1..=COMMITS {
            vfs::append(&Record::Begin { writer: WRITER, seq }).expect("trace");
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).expect("begin");
            let session = 1 + (seq as i64 % i64::from(workload.seed_sessions));
            session_store::append_messages(&tx, WRITER, seq, session, &[&messages[(seq - 1) as usize]])
                .expect("append");
            tx.commit().expect("commit");
            vfs::append(&Record::Ack { writer: WRITER, seq }).expect("trace");
        }
        // Read while the connection is open: the WAL is what a killed writer leaves.
        let killed = read_files(&work);
        let records = trace::read(&trace).expect("read the trace").records;
        // Never closed: the last connection's close would checkpoint the WAL into the
        // database, and the images below must hold it as the killed writer left it.
        std::mem::forget(conn);
        let seed_writer = (session_store::SEED_WRITER, WriterExpectation::upto(seeded, seeded));
        let expected = Expected::of_writers(BTreeMap::from([
            seed_writer.clone(),
            (WRITER, WriterExpectation::upto(COMMITS, COMMITS)),
        ]));
        let cut = records.iter().rposition(|r| matches!(r, Record::Sync { .. })).expect("WAL+FULL syncs");
        let mut power_writers = BTreeMap::from([seed_writer]);
        for (w, (acked, begun)) in builder::acks_at(&records, cut) {
            power_writers.insert(w, WriterExpectation::from_acked(&acked, begun));
        }
        Setup {
            killed,
            base,
            records,
            device: Device { sector_size_bytes: 512, fsync_barrier: true, torn_fill: TornFill::Old },
            check: CheckConfig {
                integrity: IntegrityLevel::Full,
                fts_samples: 4,
                seed: SEED,
                reopen: ReopenConfig { pragmas: Some(pragmas), writer_id: 1_000_000, workload },
                schema: &crashfuzz::oracle::ledger::SESSION_STORE,
            },
            expected,
            cut,
            power_expected: Expected::of_writers(power_writers),
        }
    }
}

/// The database's files in `dir` (not `-shm`: it is rebuilt from the WAL), by file name.
fn read_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    ["db.sqlite", "db.sqlite-wal", "db.sqlite-journal"]
        .iter()
        .filter_map(|name| std::fs::read(dir.join(name)).ok().map(|bytes| (name.to_string(), bytes)))
        .collect()
}

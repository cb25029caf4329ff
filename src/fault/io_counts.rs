//! The I/O a commit costs, counted from the trace the tracing VFS writes: syncs by file and
//! flavour, directory syncs, bytes written per file, files created and deleted. Unlike a
//! commit's time these counts are exact and the same on every machine, so they explain a
//! latency ("FULL adds one fsync of the WAL per commit") instead of being explained by it.

use crate::fault::trace::{FileKind, FileRef, Record, SYNC_FULL};
use crate::fault::vfs::VFS_NAME;
use crate::scenario::matrix::{JournalMode, Synchronous};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// `SQLITE_SYNC_DATAONLY`: the file's size did not change, so its metadata need not be synced.
const SYNC_DATAONLY: i32 = 0x10;

/// Which of the database's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    Db,
    Journal,
    Wal,
    Other,
}

impl FileRole {
    fn of_kind(kind: FileKind) -> FileRole {
        match kind {
            FileKind::MainDb => FileRole::Db,
            FileKind::MainJournal => FileRole::Journal,
            FileKind::Wal => FileRole::Wal,
            FileKind::Other => FileRole::Other,
        }
    }
}

/// How a file was synced, as SQLite asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SyncFlavour {
    /// `SQLITE_SYNC_FULL` (F_FULLFSYNC where the OS has it) rather than `SQLITE_SYNC_NORMAL`.
    pub full: bool,
    /// `SQLITE_SYNC_DATAONLY`.
    pub data_only: bool,
}

/// The I/O of a stretch of a trace (one commit, one checkpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Io {
    pub syncs: BTreeMap<(FileRole, SyncFlavour), u32>,
    pub dir_syncs: u32,
    pub bytes_written: BTreeMap<FileRole, u64>,
    pub truncations: BTreeMap<FileRole, u32>,
    pub created: u32,
    pub deleted: u32,
}

impl Io {
    /// File syncs of every flavour.
    pub fn file_syncs(&self) -> u32 {
        self.syncs.values().sum()
    }

    /// Syncs of `role`'s file, every flavour.
    pub fn syncs_of(&self, role: FileRole) -> u32 {
        self.syncs.iter().filter(|((r, _), _)| *r == role).map(|(_, n)| n).sum()
    }
}

/// The I/O of `records[range]`; each handle's file is known from its `Open` anywhere before.
pub fn count(records: &[Record], range: Range<usize>) -> Io {
    let mut roles: HashMap<FileRef, FileRole> = HashMap::new();
    for record in &records[..range.start.min(records.len())] {
        if let Record::Open { file, kind, .. } = record {
            roles.insert(*file, FileRole::of_kind(*kind));
        }
    }
    let mut io = Io::default();
    let role = |roles: &HashMap<FileRef, FileRole>, f: &FileRef| roles.get(f).copied().unwrap_or(FileRole::Other);
    for record in &records[range] {
        match record {
            Record::Open { file, kind, created, .. } => {
                roles.insert(*file, FileRole::of_kind(*kind));
                io.created += u32::from(*created);
            }
            Record::Write { file, data, .. } => {
                *io.bytes_written.entry(role(&roles, file)).or_default() += data.len() as u64;
            }
            Record::Sync { file, flags } => {
                let flavour = SyncFlavour { full: flags & 0x0f == SYNC_FULL, data_only: flags & SYNC_DATAONLY != 0 };
                *io.syncs.entry((role(&roles, file), flavour)).or_default() += 1;
            }
            Record::DirSync { .. } => io.dir_syncs += 1,
            Record::Delete { .. } => io.deleted += 1,
            Record::Truncate { file, .. } => *io.truncations.entry(role(&roles, file)).or_default() += 1,
            Record::Close { .. }
            | Record::Begin { .. }
            | Record::Ack { .. }
            | Record::Injected { .. }
            | Record::Untraced { .. } => {}
        }
    }
    io
}

/// The shape of a counted run: how many steady commits, and the automatic checkpoint's
/// threshold (0: none; SQLite's default is 1000 pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunShape {
    pub commits: usize,
    pub autocheckpoint_pages: i64,
}

/// What `crashfuzz io-counts` and the durability page count: 200 steady commits under SQLite's
/// default automatic checkpoint, so that a WAL run includes the commits that checkpoint.
pub const STEADY_RUN: RunShape = RunShape { commits: 200, autocheckpoint_pages: 1000 };

/// The bytes of each message a counted commit appends (the benchmarks' message).
pub const MESSAGE_BYTES: u32 = 1024;

/// The seed of the counted runs' data: the same messages on every machine.
const SEED: u64 = 0x10c0_0475;

/// The writer id the counted commits are tagged with (the seeded rows are writer 0's).
const WRITER: u64 = 1;

/// Distinct messages the commits cycle through.
const POOL: usize = 64;

/// The I/O of each commit of a run, the commits that ran the automatic checkpoint apart
/// (in WAL mode, a commit that wrote or synced the database file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SteadyRun {
    pub commits: Vec<Io>,
    pub checkpoint_commits: Vec<Io>,
}

/// Field by field, the median (the lower one of an even count) and the maximum of several
/// [`Io`]s: a count absent from one `Io` is a zero there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub median: Io,
    pub max: Io,
    /// How many `Io`s.
    pub of: usize,
}

impl Spread {
    /// `None` for no `Io` at all.
    pub fn of(ios: &[Io]) -> Option<Spread> {
        if ios.is_empty() {
            return None;
        }
        fn pick<T: Copy + Ord + Default>(mut v: Vec<T>) -> (T, T) {
            v.sort_unstable();
            (v[(v.len() - 1) / 2], *v.last().expect("not empty"))
        }
        fn by_key<K: Copy + Ord, T: Copy + Ord + Default>(
            ios: &[Io],
            map: impl Fn(&Io) -> &BTreeMap<K, T>,
        ) -> (BTreeMap<K, T>, BTreeMap<K, T>) {
            let keys: std::collections::BTreeSet<K> = ios.iter().flat_map(|io| map(io).keys().copied()).collect();
            let (mut median, mut max) = (BTreeMap::new(), BTreeMap::new());
            for k in keys {
                let (m, x) = pick(ios.iter().map(|io| map(io).get(&k).copied().unwrap_or_default()).collect());
                if m != T::default() {
                    median.insert(k, m);
                }
                max.insert(k, x);
            }
            (median, max)
        }
        let scalar = |f: fn(&Io) -> u32| pick(ios.iter().map(f).collect());
        let (syncs, syncs_max) = by_key(ios, |io| &io.syncs);
        let (bytes, bytes_max) = by_key(ios, |io| &io.bytes_written);
        let (truncations, truncations_max) = by_key(ios, |io| &io.truncations);
        let (dir_syncs, dir_syncs_max) = scalar(|io| io.dir_syncs);
        let (created, created_max) = scalar(|io| io.created);
        let (deleted, deleted_max) = scalar(|io| io.deleted);
        Some(Spread {
            median: Io { syncs, dir_syncs, bytes_written: bytes, truncations, created, deleted },
            max: Io {
                syncs: syncs_max,
                dir_syncs: dir_syncs_max,
                bytes_written: bytes_max,
                truncations: truncations_max,
                created: created_max,
                deleted: deleted_max,
            },
            of: ios.len(),
        })
    }
}

/// What a commit costs in I/O under one journal mode and level: its steady commits and, apart,
/// the commits that ran the automatic checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitIo {
    pub steady: Spread,
    pub checkpointing: Option<Spread>,
}

/// One-message commits (the session store's append of one [`MESSAGE_BYTES`] message, both FTS5
/// indexes through their triggers) under `mode` and `sync` on a fresh, seeded database in
/// `dir`, through the tracing VFS, which this process registered with its trace at `trace`.
/// The first commit (which creates the WAL or the journal) is left out.
pub fn steady_run(
    trace: &std::path::Path,
    dir: &std::path::Path,
    mode: JournalMode,
    sync: Synchronous,
    shape: RunShape,
) -> anyhow::Result<SteadyRun> {
    Ok(traced_run(trace, dir, mode, sync, shape)?.1)
}

/// A marker writer id per run, far from any writer's, so that runs sharing a trace (tests on
/// several threads) tell their commits apart.
fn marker_writer() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 48);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// [`steady_run`], the connection kept open (a WAL is checkpointed when its last connection
/// closes). Each commit sits between a `Begin` and an `Ack` record of a marker writer; the
/// trace is read once, at the end.
fn traced_run(
    trace: &std::path::Path,
    dir: &std::path::Path,
    mode: JournalMode,
    sync: Synchronous,
    shape: RunShape,
) -> anyhow::Result<(rusqlite::Connection, SteadyRun)> {
    use crate::writer::session_store::{self, WorkloadConfig};
    use anyhow::Context;
    let flags = rusqlite::OpenFlags::default();
    let mut conn = rusqlite::Connection::open_with_flags_and_vfs(dir.join("db.sqlite"), flags, VFS_NAME)
        .with_context(|| format!("open a database in {} through {VFS_NAME}", dir.display()))?;
    let cfg = WorkloadConfig::default();
    session_store::create_schema(&conn, &cfg)?;
    session_store::seed(&mut conn, &cfg, SEED)?;
    let pragmas = crate::writer::pragmas::Pragmas {
        journal_mode: mode,
        synchronous: sync,
        busy_timeout_ms: cfg.busy_timeout_ms,
        cache_size_kib: cfg.cache_size_kib,
        wal_autocheckpoint_pages: shape.autocheckpoint_pages,
        fullfsync: crate::scenario::matrix::FullFsync::Off,
    };
    crate::writer::pragmas::apply(&conn, &pragmas)?;
    let messages = session_store::uniform_messages(WRITER, SEED, MESSAGE_BYTES, POOL);
    let marker = marker_writer();
    for k in 0..=shape.commits as u64 {
        crate::fault::vfs::append(&Record::Begin { writer: marker, seq: k })?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let session = 1 + (k % u64::from(cfg.seed_sessions.max(1))) as i64;
        session_store::append_messages(&tx, WRITER, k + 1, session, &[&messages[k as usize % POOL]])?;
        tx.commit()?;
        crate::fault::vfs::append(&Record::Ack { writer: marker, seq: k })?;
    }
    let records = marked_records(trace, dir, marker)?;
    let mut run = SteadyRun::default();
    let mut begun = None;
    for (at, record) in records.iter().enumerate() {
        match record {
            Record::Begin { seq, .. } => begun = Some((*seq, at)),
            Record::Ack { seq, .. } => {
                let Some((begun_seq, begun_at)) = begun.take().filter(|(s, _)| s == seq) else {
                    anyhow::bail!("{}: commit {seq}'s records are not between its markers", trace.display());
                };
                if begun_seq == 0 {
                    continue;
                }
                let io = count(&records, begun_at + 1..at);
                let checkpointed =
                    mode.is_wal() && (io.syncs_of(FileRole::Db) > 0 || io.bytes_written.contains_key(&FileRole::Db));
                if checkpointed { &mut run.checkpoint_commits } else { &mut run.commits }.push(io);
            }
            _ => {}
        }
    }
    let counted = run.commits.len() + run.checkpoint_commits.len();
    anyhow::ensure!(counted == shape.commits, "{}: {counted} of {} commits traced", trace.display(), shape.commits);
    Ok((conn, run))
}

/// The I/O of one `PRAGMA wal_checkpoint(MODE)` (`PASSIVE`, `FULL`, `RESTART`, `TRUNCATE`)
/// after `commits` one-message commits in WAL mode at `sync`, automatic checkpoints off, on a
/// fresh database in `dir` (see [`steady_run`] for the trace).
pub fn checkpoint(
    trace: &std::path::Path,
    dir: &std::path::Path,
    sync: Synchronous,
    mode: &str,
    commits: usize,
) -> anyhow::Result<Io> {
    let shape = RunShape { commits, autocheckpoint_pages: 0 };
    let (conn, _) = traced_run(trace, dir, JournalMode::Wal, sync, shape)?;
    let marker = marker_writer();
    crate::fault::vfs::append(&Record::Begin { writer: marker, seq: 0 })?;
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))?;
    crate::fault::vfs::append(&Record::Ack { writer: marker, seq: 0 })?;
    let records = marked_records(trace, dir, marker)?;
    let at = |ack: bool| {
        records.iter().position(|r| match r {
            Record::Begin { .. } => !ack,
            Record::Ack { .. } => ack,
            _ => false,
        })
    };
    match (at(false), at(true)) {
        (Some(begun), Some(acked)) if begun < acked => Ok(count(&records, begun + 1..acked)),
        _ => anyhow::bail!("{}: the checkpoint's markers are missing or out of order", trace.display()),
    }
}

/// The trace's records about files under `dir`, and `marker`'s `Begin` and `Ack` records, in
/// order. The whole trace is read: an offset taken while another thread appends a large record
/// can fall inside it (the file grows page by page during one `write(2)`).
fn marked_records(trace: &std::path::Path, dir: &std::path::Path, marker: u64) -> anyhow::Result<Vec<Record>> {
    let records = crate::fault::trace::read(trace).map_err(anyhow::Error::msg)?.records;
    Ok(records_under_keeping(
        records,
        dir,
        |r| matches!(r, Record::Begin { writer, .. } | Record::Ack { writer, .. } if *writer == marker),
    ))
}

/// The records of `records` about files under `dir` (and nothing else), in order.
pub fn records_under(records: Vec<Record>, dir: &std::path::Path) -> Vec<Record> {
    records_under_keeping(records, dir, |_| false)
}

/// [`records_under`], and the records `keep` says, in order.
fn records_under_keeping(records: Vec<Record>, dir: &std::path::Path, keep: impl Fn(&Record) -> bool) -> Vec<Record> {
    let prefix = format!("{}/", dir.display());
    let mut handles = std::collections::HashSet::new();
    records
        .into_iter()
        .filter(|r| match r {
            Record::Open { file, path, .. } => path.starts_with(&prefix) && handles.insert(*file),
            Record::Write { file, .. }
            | Record::Truncate { file, .. }
            | Record::Sync { file, .. }
            | Record::Close { file } => handles.contains(file),
            Record::DirSync { path } | Record::Delete { path, .. } => path.starts_with(&prefix),
            Record::Begin { .. } | Record::Ack { .. } | Record::Injected { .. } | Record::Untraced { .. } => keep(r),
        })
        .collect()
}

/// Registers the tracing VFS in this process (a one-shot command's) with its trace in `dir`;
/// returns the trace's path, for [`per_commit_table`] and [`checkpoint`].
pub fn register_in(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let trace = dir.join(crate::fault::trace::TRACE_FILE);
    crate::fault::vfs::register(crate::fault::vfs::VfsConfig {
        writer: 0,
        trace_path: trace.clone(),
        injection: crate::fault::vfs::Injection::None,
    })
    .map_err(anyhow::Error::msg)?;
    Ok(trace)
}

/// Every journalled mode × synchronous level, each a [`steady_run`] of `shape` on a fresh
/// database under `dir`, traced into `trace` ([`register_in`]: this process's own, emptied
/// before each cell). Deterministic in its counts
/// (the data is seeded); a few seconds for [`STEADY_RUN`].
pub fn per_commit_table(
    trace: &std::path::Path,
    dir: &std::path::Path,
    shape: RunShape,
) -> anyhow::Result<BTreeMap<(JournalMode, Synchronous), CommitIo>> {
    let mut table = BTreeMap::new();
    for mode in [JournalMode::Wal, JournalMode::Delete, JournalMode::Truncate, JournalMode::Persist] {
        for sync in Synchronous::ALL {
            let db_dir = dir.join(format!("{}-{}", mode.as_sql(), sync.as_sql()));
            std::fs::create_dir(&db_dir)?;
            // The earlier cells' records are not read again: start the trace afresh.
            crate::fault::vfs::restart_trace()?;
            let run = steady_run(trace, &db_dir.canonicalize()?, mode, sync, shape)?;
            let steady = Spread::of(&run.commits)
                .ok_or_else(|| anyhow::anyhow!("{mode:?} {sync:?}: every commit checkpointed"))?;
            table.insert((mode, sync), CommitIo { steady, checkpointing: Spread::of(&run.checkpoint_commits) });
        }
    }
    Ok(table)
}

/// A commit's syncs in words, for a table cell: `WAL 1`, `journal 2, db 1, dir 1`, `none`.
pub fn syncs_in_words(io: &Io) -> String {
    let mut parts = Vec::new();
    for (role, word) in [(FileRole::Wal, "WAL"), (FileRole::Journal, "journal"), (FileRole::Db, "db")] {
        let n = io.syncs_of(role);
        if n > 0 {
            parts.push(format!("{word} {n}"));
        }
    }
    if io.dir_syncs > 0 {
        parts.push(format!("dir {}", io.dir_syncs));
    }
    if parts.is_empty() { "none".to_string() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::vfs::tests::{fresh_dir, shared_trace};

    /// A short run whose WAL checkpoints every several commits (a one-message commit appends
    /// some 26 frames, both FTS5 indexes included).
    const SHORT_RUN: RunShape = RunShape { commits: 30, autocheckpoint_pages: 200 };

    fn steady_run(mode: JournalMode, sync: Synchronous) -> SteadyRun {
        let (_guard, dir) = fresh_dir();
        super::steady_run(shared_trace(), &dir, mode, sync, SHORT_RUN).unwrap()
    }

    /// What one steady one-message commit syncs, per journal mode and synchronous level, as the
    /// bundled SQLite does it on unix: `(wal, journal, journal data-only, db, directory)` syncs.
    /// If SQLite changes how it syncs, this table fails first.
    #[test]
    fn the_syncs_of_one_commit_are_pinned_per_journal_mode_and_level() {
        use JournalMode::{Delete, Persist, Truncate, Wal};
        use Synchronous::{Extra, Full, Normal, Off};
        /// Mode, level, `(wal, journal, journal data-only, db, directory)` syncs, `(created,
        /// deleted)` files.
        type Row = (JournalMode, Synchronous, [u32; 5], (u32, u32));
        #[rustfmt::skip]
        let table: [Row; 16] = [
            // WAL: FULL and EXTRA add one WAL fsync per commit; NORMAL and OFF sync nothing.
            (Wal, Off, [0, 0, 0, 0, 0], (0, 0)),
            (Wal, Normal, [0, 0, 0, 0, 0], (0, 0)),
            (Wal, Full, [1, 0, 0, 0, 0], (0, 0)),
            (Wal, Extra, [1, 0, 0, 0, 0], (0, 0)),
            // DELETE: the journal is created and deleted by every commit (its first sync also
            // syncs the directory); FULL syncs the journal again after its header; EXTRA
            // syncs the directory after the unlink.
            (Delete, Off, [0, 0, 0, 0, 0], (1, 1)),
            (Delete, Normal, [0, 1, 0, 1, 1], (1, 1)),
            (Delete, Full, [0, 2, 0, 1, 1], (1, 1)),
            (Delete, Extra, [0, 2, 0, 1, 2], (1, 1)),
            // TRUNCATE: FULL also syncs the truncation; EXTRA adds nothing.
            (Truncate, Off, [0, 0, 0, 0, 0], (0, 0)),
            (Truncate, Normal, [0, 1, 0, 1, 1], (0, 0)),
            (Truncate, Full, [0, 3, 0, 1, 1], (0, 0)),
            (Truncate, Extra, [0, 3, 0, 1, 1], (0, 0)),
            // PERSIST: the zeroed header is synced data-only.
            (Persist, Off, [0, 0, 0, 0, 0], (0, 0)),
            (Persist, Normal, [0, 1, 1, 1, 1], (0, 0)),
            (Persist, Full, [0, 2, 1, 1, 1], (0, 0)),
            (Persist, Extra, [0, 2, 1, 1, 1], (0, 0)),
        ];
        for (mode, sync, [wal, journal, journal_data_only, db, dir], (created, deleted)) in table {
            let run = steady_run(mode, sync);
            assert_eq!(run.commits.len() + run.checkpoint_commits.len(), SHORT_RUN.commits);
            // The median commit: a commit whose FTS5 segments merge writes and syncs more (in
            // the rollback modes its journal is synced again when the cache spills); the
            // commits that checkpoint are counted apart.
            let spread = Spread::of(&run.commits).unwrap();
            let io = &spread.median;
            let data_only =
                |role| io.syncs.iter().filter(|((r, f), _)| *r == role && f.data_only).map(|(_, n)| *n).sum::<u32>();
            let got = [
                io.syncs_of(FileRole::Wal),
                io.syncs_of(FileRole::Journal) - data_only(FileRole::Journal),
                data_only(FileRole::Journal),
                io.syncs_of(FileRole::Db),
                io.dir_syncs,
            ];
            assert_eq!(got, [wal, journal, journal_data_only, db, dir], "{mode:?} {sync:?}: {io:?}");
            assert_eq!((io.created, io.deleted), (created, deleted), "{mode:?} {sync:?}: {io:?}");
            // No sync is a full one without `PRAGMA fullfsync`; a commit writes its page (and,
            // in the rollback modes, the page it changes and its journal record).
            assert!(io.syncs.keys().all(|(_, f)| !f.full), "{mode:?} {sync:?}: {io:?}");
            let written: u64 = io.bytes_written.values().sum();
            assert!(written >= 4096, "{mode:?} {sync:?}: {io:?}");
        }
    }

    /// In WAL mode a commit that runs the automatic checkpoint is counted apart from the steady
    /// ones: it writes the database and syncs as a checkpoint does, on top of the commit's own
    /// sync. A rollback journal has no checkpoint.
    #[test]
    fn a_wal_commit_that_checkpoints_is_counted_apart() {
        for (sync, words) in [
            (Synchronous::Off, "none"),
            (Synchronous::Normal, "WAL 1, db 1"),
            (Synchronous::Full, "WAL 2, db 1"),
            (Synchronous::Extra, "WAL 2, db 1"),
        ] {
            let run = steady_run(JournalMode::Wal, sync);
            assert!(!run.checkpoint_commits.is_empty(), "{sync:?}: {run:?}");
            let checkpointing = Spread::of(&run.checkpoint_commits).unwrap();
            assert_eq!(syncs_in_words(&checkpointing.median), words, "{sync:?}: {checkpointing:?}");
            for io in &run.checkpoint_commits {
                assert!(io.bytes_written.get(&FileRole::Db).is_some_and(|&b| b >= 4096), "{sync:?}: {io:?}");
            }
            assert!(run.commits.iter().all(|io| !io.bytes_written.contains_key(&FileRole::Db)), "{run:?}");
            // At NORMAL a steady commit syncs only when it restarts the WAL after a checkpoint
            // (its new header): at most once per checkpoint.
            if sync == Synchronous::Normal {
                let syncing = run.commits.iter().filter(|io| io.file_syncs() > 0).count();
                assert!((1..=run.checkpoint_commits.len()).contains(&syncing), "{run:?}");
                assert!(run.commits.iter().all(|io| io.file_syncs() == io.syncs_of(FileRole::Wal)), "{run:?}");
            }
        }
        assert!(steady_run(JournalMode::Delete, Synchronous::Full).checkpoint_commits.is_empty());
    }

    /// A spread is the median (the lower of two middles) and the maximum of each count, a
    /// count absent from one `Io` being a zero there.
    #[test]
    fn a_spread_is_the_median_and_maximum_of_each_count() {
        let plain = SyncFlavour { full: false, data_only: false };
        let io = |wal_syncs: u32, wal_bytes: u64, dir_syncs: u32| Io {
            syncs: if wal_syncs > 0 { BTreeMap::from([((FileRole::Wal, plain), wal_syncs)]) } else { BTreeMap::new() },
            bytes_written: BTreeMap::from([(FileRole::Wal, wal_bytes)]),
            dir_syncs,
            ..Io::default()
        };
        let spread = Spread::of(&[io(1, 8000, 0), io(0, 4000, 2), io(1, 12000, 0), io(3, 4000, 0)]).unwrap();
        assert_eq!(spread.of, 4);
        assert_eq!(spread.median, io(1, 4000, 0));
        assert_eq!(spread.max, io(3, 12000, 2));
        // A count that is zero in most commits has no median entry, but its maximum shows.
        let spread = Spread::of(&[io(0, 100, 0), io(0, 100, 0), io(2, 100, 0)]).unwrap();
        assert_eq!((spread.median.file_syncs(), spread.max.file_syncs()), (0, 2));
        assert_eq!(Spread::of(&[]), None);
    }

    /// A checkpoint syncs the WAL (the frames it copies) and then the database, whatever the
    /// level (NORMAL included: it is where WAL+NORMAL becomes durable); TRUNCATE also
    /// truncates the WAL.
    #[test]
    fn a_checkpoint_syncs_the_wal_then_the_database_at_every_level() {
        for sync in [Synchronous::Normal, Synchronous::Full, Synchronous::Extra] {
            for (mode, truncations) in [("PASSIVE", 0), ("TRUNCATE", 1)] {
                let (_guard, dir) = fresh_dir();
                let io = checkpoint(shared_trace(), &dir, sync, mode, 10).unwrap();
                assert_eq!(syncs_in_words(&io), "WAL 1, db 1", "{sync:?} {mode}: {io:?}");
                assert_eq!(
                    io.truncations.get(&FileRole::Wal).copied().unwrap_or(0),
                    truncations,
                    "{sync:?} {mode}: {io:?}"
                );
                assert!(io.bytes_written.get(&FileRole::Db).is_some_and(|&b| b >= 4096), "{io:?}");
                assert_eq!(io.bytes_written.get(&FileRole::Wal), None, "{io:?}");
            }
        }
    }

    /// The counter reads what the records say: sync flavours, roles by the handle's open, files
    /// created and deleted, and only within the range.
    #[test]
    fn counts_come_from_the_records_in_range() {
        use crate::fault::trace::FileKind;
        let f = |h| FileRef { writer: 1, handle: h };
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Write { file: f(0), offset: 0, data: vec![0; 100] },
            Record::Open {
                file: f(1),
                path: "/d/db-journal".into(),
                kind: FileKind::MainJournal,
                created: true,
                id: None,
            },
            Record::Write { file: f(1), offset: 0, data: vec![0; 512] },
            Record::Sync { file: f(1), flags: 0x02 },
            Record::DirSync { path: "/d/db-journal".into() },
            Record::Sync { file: f(0), flags: 0x13 },
            Record::Delete { path: "/d/db-journal".into(), dir_sync: false },
        ];
        let io = count(&records, 2..records.len());
        assert_eq!(io.bytes_written, BTreeMap::from([(FileRole::Journal, 512)]));
        assert_eq!(io.syncs_of(FileRole::Journal), 1);
        let full_data_only = SyncFlavour { full: true, data_only: true };
        assert_eq!(io.syncs.get(&(FileRole::Db, full_data_only)), Some(&1));
        assert_eq!((io.dir_syncs, io.created, io.deleted, io.file_syncs()), (1, 1, 1, 2));
    }
}

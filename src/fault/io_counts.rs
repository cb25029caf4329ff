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
            Record::Close { .. } | Record::Begin { .. } | Record::Ack { .. } | Record::Injected { .. } => {}
        }
    }
    io
}

/// One-row commits (1 KiB) under `mode` and `sync` on a fresh database in `dir`, through the
/// tracing VFS, which this process registered with its trace at `trace`; automatic checkpoints
/// off. Returns the I/O of `commits` steady commits (the first commit, which creates the WAL
/// or grows the schema's pages, is left out).
pub fn steady_commits(
    trace: &std::path::Path,
    dir: &std::path::Path,
    mode: JournalMode,
    sync: Synchronous,
    commits: usize,
) -> anyhow::Result<Vec<Io>> {
    Ok(traced_commits(trace, dir, mode, sync, commits)?.1)
}

/// [`steady_commits`], the connection kept open (a WAL is checkpointed when its last
/// connection closes).
fn traced_commits(
    trace: &std::path::Path,
    dir: &std::path::Path,
    mode: JournalMode,
    sync: Synchronous,
    commits: usize,
) -> anyhow::Result<(rusqlite::Connection, Vec<Io>)> {
    use anyhow::Context;
    let flags = rusqlite::OpenFlags::default();
    let conn = rusqlite::Connection::open_with_flags_and_vfs(dir.join("db.sqlite"), flags, VFS_NAME)
        .with_context(|| format!("open a database in {} through {VFS_NAME}", dir.display()))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode={}; PRAGMA synchronous={}; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x);",
        mode.as_sql(),
        sync.as_sql()
    ))?;
    let mut ios = Vec::new();
    for k in 0..=commits {
        let before = records_of(trace, dir)?.len();
        conn.execute("INSERT INTO t VALUES (randomblob(1000))", [])?;
        let records = records_of(trace, dir)?;
        if k > 0 {
            ios.push(count(&records, before..records.len()));
        }
    }
    Ok((conn, ios))
}

/// The trace's records about files under `dir` (the trace may be shared with other databases).
fn records_of(trace: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<Vec<Record>> {
    Ok(records_under(crate::fault::trace::read(trace).map_err(anyhow::Error::msg)?.records, dir))
}

/// The I/O of one `PRAGMA wal_checkpoint(MODE)` (`PASSIVE`, `FULL`, `RESTART`, `TRUNCATE`)
/// after `commits` one-row commits in WAL mode at `sync`, on a fresh database in `dir` (see
/// [`steady_commits`] for the trace).
pub fn checkpoint(
    trace: &std::path::Path,
    dir: &std::path::Path,
    sync: Synchronous,
    mode: &str,
    commits: usize,
) -> anyhow::Result<Io> {
    let (conn, _) = traced_commits(trace, dir, JournalMode::Wal, sync, commits)?;
    let before = records_of(trace, dir)?.len();
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))?;
    let records = records_of(trace, dir)?;
    Ok(count(&records, before..records.len()))
}

/// The records of `records` about files under `dir` (and nothing else), in order.
pub fn records_under(records: Vec<Record>, dir: &std::path::Path) -> Vec<Record> {
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
            Record::Begin { .. } | Record::Ack { .. } | Record::Injected { .. } => false,
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

/// One steady commit's I/O for every journalled mode × synchronous level, each on a fresh
/// database under `dir`, traced into `trace` ([`register_in`]). Deterministic; a second or so.
pub fn per_commit_table(
    trace: &std::path::Path,
    dir: &std::path::Path,
) -> anyhow::Result<BTreeMap<(JournalMode, Synchronous), Io>> {
    let mut table = BTreeMap::new();
    for mode in [JournalMode::Wal, JournalMode::Delete, JournalMode::Truncate, JournalMode::Persist] {
        for sync in Synchronous::ALL {
            let db_dir = dir.join(format!("{}-{}", mode.as_sql(), sync.as_sql()));
            std::fs::create_dir(&db_dir)?;
            let ios = steady_commits(trace, &db_dir.canonicalize()?, mode, sync, 3)?;
            anyhow::ensure!(ios.windows(2).all(|w| w[0] == w[1]), "{mode:?} {sync:?}: commits differ: {ios:?}");
            table.insert((mode, sync), ios.into_iter().next().unwrap_or_default());
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

    fn steady_commits(mode: JournalMode, sync: Synchronous, commits: usize) -> Vec<Io> {
        let (_guard, dir) = fresh_dir();
        super::steady_commits(shared_trace(), &dir, mode, sync, commits).unwrap()
    }

    /// What one steady one-row commit syncs, per journal mode and synchronous level, as the
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
            let ios = steady_commits(mode, sync, 3);
            // Deterministic: every steady commit alike.
            assert!(ios.windows(2).all(|w| w[0] == w[1]), "{mode:?} {sync:?}: {ios:?}");
            let io = &ios[0];
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

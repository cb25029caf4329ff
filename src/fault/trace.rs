//! The power-loss trace: what a writer's file I/O did, in order, as the tracing VFS (`vfs`)
//! and the writer append it, and the reading of it back.
//!
//! One trace file per trial, shared by every writer of the trial, opened `O_APPEND`. Each
//! record is one `write(2)` of a length-prefixed [postcard](https://docs.rs/postcard) frame, so
//! concurrent writers interleave whole records in the order the kernel applied them, and a
//! record survives the writer's SIGKILL the moment the call returns (it is in the page cache;
//! the trace is read by the driver on the same running machine, never after a real power loss).
//! A SIGKILL can cut a large `write(2)` short between pages: a torn last frame is ignored.
//!
//! A record is appended *after* the operation it describes has been carried out, so a record in
//! the trace always happened. An operation the writer was killed in the middle of, or after
//! but before its record, is simply absent: that is a crash image in which the power failed
//! before that operation, which is one of the states a power loss can leave.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// The trace file's name in a trial's directory and in a kept failure.
pub const TRACE_FILE: &str = "trace.bin";

/// What a file is to SQLite, from the flags of its `xOpen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    MainDb,
    MainJournal,
    Wal,
    /// Super-journals, temporary files, anything else with a name.
    Other,
}

/// A file handle within a trace: the writer that opened it and its open counter there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileRef {
    pub writer: u64,
    pub handle: u32,
}

/// One operation, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// `xOpen` succeeded. `created`: the path did not exist before (a new directory entry).
    Open { file: FileRef, path: String, kind: FileKind, created: bool },
    /// `xWrite` of `data` at `offset` succeeded.
    Write {
        file: FileRef,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// `xTruncate` to `size` bytes succeeded.
    Truncate { file: FileRef, size: u64 },
    /// `xSync` succeeded; `flags` as SQLite passed them (`SQLITE_SYNC_NORMAL` 0x02 or
    /// `SQLITE_SYNC_FULL` 0x03, possibly with `SQLITE_SYNC_DATAONLY` 0x10).
    Sync { file: FileRef, flags: i32 },
    /// The directory holding `path` was fsynced (unix's one-time sync after a new journal's
    /// or WAL's first `xSync`, or `xDelete` with `dirSync`). Namespace changes (creations,
    /// deletions) in that directory before it are durable after it. Always a plain fsync.
    DirSync { path: String },
    /// `xDelete(path, dirSync)` succeeded; with `dir_sync` a [`Record::DirSync`] follows.
    Delete { path: String, dir_sync: bool },
    /// `xClose`.
    Close { file: FileRef },
    /// The writer is about to begin transaction `seq`.
    Begin { writer: u64, seq: u64 },
    /// `COMMIT` of transaction `seq` returned success and the writer acknowledged it.
    Ack { writer: u64, seq: u64 },
    /// The VFS failed operation number `op` on purpose (fault `io_error`) with `code`.
    Injected { writer: u64, op: u64, code: i32 },
}

/// `SQLITE_SYNC_FULL`: the flag of a sync that `PRAGMA fullfsync` (or `checkpoint_fullfsync`)
/// asked for; the only kind of sync an OS without an fsync barrier honours.
pub const SYNC_FULL: i32 = 0x03;

impl Record {
    /// Encodes one frame: a little-endian `u32` length, then the postcard bytes.
    pub fn frame(&self) -> Vec<u8> {
        let body = postcard::to_stdvec(self).expect("a trace record always serializes");
        let len = u32::try_from(body.len()).expect("a record is far below 4 GiB");
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&body);
        frame
    }

    /// The operations the VFS counts for crash points and I/O errors: writes, syncs and
    /// truncations of the database's files.
    pub fn is_counted_op(&self) -> bool {
        match self {
            Record::Write { .. } | Record::Sync { .. } | Record::Truncate { .. } => true,
            Record::Open { .. }
            | Record::DirSync { .. }
            | Record::Delete { .. }
            | Record::Close { .. }
            | Record::Begin { .. }
            | Record::Ack { .. }
            | Record::Injected { .. } => false,
        }
    }
}

/// Appends records to a trace file, one `write(2)` per record.
#[derive(Debug)]
pub struct TraceWriter(File);

impl TraceWriter {
    /// Opens (creating if needed) the trace at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<TraceWriter> {
        Ok(TraceWriter(std::fs::OpenOptions::new().append(true).create(true).open(path)?))
    }

    /// Appends `record`. std's `File` is unbuffered: `write_all` of one frame is one
    /// `write(2)` on an `O_APPEND` descriptor, atomic with respect to other appenders.
    pub fn append(&mut self, record: &Record) -> std::io::Result<()> {
        (&self.0).write_all(&record.frame())
    }

    /// Appends through a shared reference (the VFS holds the writer in a static).
    pub fn append_shared(&self, record: &Record) -> std::io::Result<()> {
        (&self.0).write_all(&record.frame())
    }
}

/// A trace read back: the records, and whether the last frame was torn (and dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub records: Vec<Record>,
    pub torn_tail: bool,
}

/// Decodes every whole frame of `bytes`. A frame that is whole but does not decode is an
/// error (the trace is the harness's own file: that is a harness bug or a disk problem).
pub fn decode(bytes: &[u8]) -> Result<Trace, String> {
    let mut trace = Trace::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(len_bytes) = bytes.get(at..at + 4) else {
            trace.torn_tail = true;
            break;
        };
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            trace.torn_tail = true;
            break;
        };
        let record: Record = postcard::from_bytes(body)
            .map_err(|e| format!("trace record {} at byte {at}: {e}", trace.records.len()))?;
        trace.records.push(record);
        at += 4 + len;
    }
    Ok(trace)
}

/// Reads and decodes the trace at `path`.
pub fn read(path: &Path) -> Result<Trace, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(handle: u32) -> FileRef {
        FileRef { writer: 7, handle }
    }

    fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            (0u32..4, proptest::collection::vec(any::<u8>(), 0..600), any::<u64>())
                .prop_map(|(h, data, offset)| Record::Write { file: file(h), offset, data }),
            (0u32..4, any::<bool>()).prop_map(|(h, created)| Record::Open {
                file: file(h),
                path: format!("/tmp/x/db.sqlite-{h}"),
                kind: FileKind::Wal,
                created
            }),
            (0u32..4, any::<i32>()).prop_map(|(h, flags)| Record::Sync { file: file(h), flags }),
            any::<u64>().prop_map(|seq| Record::Ack { writer: 7, seq }),
            any::<bool>().prop_map(|dir_sync| Record::Delete { path: "/tmp/x/db.sqlite-journal".into(), dir_sync }),
        ]
    }

    proptest! {
        /// Frames round-trip, and any truncation of the byte stream yields a prefix of the
        /// records, flagged torn exactly when the cut is not on a frame boundary.
        #[test]
        fn frames_round_trip_and_truncations_give_prefixes(records in proptest::collection::vec(record(), 0..20), cut in any::<prop::sample::Index>()) {
            let frames: Vec<Vec<u8>> = records.iter().map(Record::frame).collect();
            let bytes: Vec<u8> = frames.concat();
            let whole = decode(&bytes).unwrap();
            prop_assert_eq!(&whole.records, &records);
            prop_assert!(!whole.torn_tail);
            let at = cut.index(bytes.len() + 1);
            let part = decode(&bytes[..at]).unwrap();
            let mut boundary = 0;
            let mut n = 0;
            while n < frames.len() && boundary + frames[n].len() <= at {
                boundary += frames[n].len();
                n += 1;
            }
            prop_assert_eq!(&part.records[..], &records[..n]);
            prop_assert_eq!(part.torn_tail, boundary != at);
        }
    }

    #[test]
    fn appends_are_whole_records_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace");
        let mut a = TraceWriter::open(&path).unwrap();
        let b = TraceWriter::open(&path).unwrap();
        a.append(&Record::Begin { writer: 1, seq: 1 }).unwrap();
        b.append_shared(&Record::Begin { writer: 2, seq: 1 }).unwrap();
        a.append(&Record::Ack { writer: 1, seq: 1 }).unwrap();
        let t = read(&path).unwrap();
        assert_eq!(
            t.records,
            vec![
                Record::Begin { writer: 1, seq: 1 },
                Record::Begin { writer: 2, seq: 1 },
                Record::Ack { writer: 1, seq: 1 }
            ]
        );
    }
}

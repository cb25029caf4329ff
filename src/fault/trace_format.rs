//! The trace's record format: what one operation on a traced file was, and its frame on disk
//! (`[len: u32 LE][order: u64 LE][postcard body]`). One file for every program that writes a
//! trace: crashfuzz's tracing VFS and its `LD_PRELOAD` interposer (`src/interposer/`, which
//! compiles this very file) encode byte for byte the same frames, which [`super::trace`] reads.
//!
//! Leaf module: serde, serde_bytes and postcard only.

use serde::{Deserialize, Serialize};

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

/// A file's identity on its file system (`st_dev`, `st_ino`), read right after the open: two
/// handles with one identity are one file, whoever believed they created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
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
    /// `xOpen` succeeded. `created`: the path did not exist just before (this process
    /// believes it made a new directory entry; another may have made it in between). `id`:
    /// the file it opened (`None` when it could not be read).
    Open { file: FileRef, path: String, kind: FileKind, created: bool, id: Option<FileId> },
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
    /// Operation number `op` failed on purpose (fault `io_error`): with SQLite result code
    /// `code` (the VFS) or errno `code` (the interposer).
    Injected { writer: u64, op: u64, code: i32 },
    /// The program changed a traced file in a way the trace does not model (the interposer:
    /// a rename onto or away from one of the database's paths); `call` says what it was.
    Untraced { writer: u64, call: String },
}

/// `SQLITE_SYNC_FULL`: the flag of a sync that `PRAGMA fullfsync` (or `checkpoint_fullfsync`)
/// asked for; the only kind of sync an OS without an fsync barrier honours.
pub const SYNC_FULL: i32 = 0x03;

impl Record {
    /// Encodes one frame: a little-endian `u32` length, then the postcard bytes.
    pub fn frame(&self) -> Vec<u8> {
        self.frame_at(0)
    }

    /// The frame of this record with order stamp `order`: `[len: u32 LE][order: u64 LE][body]`,
    /// `len` counting the stamp and the body.
    pub fn frame_at(&self, order: u64) -> Vec<u8> {
        let mut frame = Vec::with_capacity(64);
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(&order.to_le_bytes());
        let mut frame = postcard::to_extend(self, frame).expect("a trace record always serializes");
        let len = u32::try_from(frame.len() - 4).expect("a record is far below 4 GiB");
        frame[..4].copy_from_slice(&len.to_le_bytes());
        frame
    }
}

/// Upper bound on a `Write` frame's bytes besides the data: length prefix 4, order stamp 8,
/// variant 1, writer varint 10, handle varint 5, offset varint 10, data length varint 5.
pub const WRITE_FRAME_OVERHEAD_MAX: usize = 4 + 8 + 1 + 10 + 5 + 10 + 5;
/// The index of `Record::Write` among `Record`'s variants (postcard encodes it as a varint).
const WRITE_VARIANT_INDEX: u32 = 1;

/// `Record::Write` with borrowed data: serializes exactly as the derived impl of
/// [`Record::Write`] does (tested), without copying the data into a `Vec` first.
struct WriteRef<'a> {
    file: FileRef,
    offset: u64,
    data: &'a [u8],
}

impl Serialize for WriteRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        let mut v = s.serialize_struct_variant("Record", WRITE_VARIANT_INDEX, "Write", 3)?;
        v.serialize_field("file", &self.file)?;
        v.serialize_field("offset", &self.offset)?;
        v.serialize_field("data", serde_bytes::Bytes::new(self.data))?;
        v.end()
    }
}

/// The frame of `Record::Write { file, offset, data }`, in one allocation.
pub fn write_frame(order: u64, file: FileRef, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(WRITE_FRAME_OVERHEAD_MAX + data.len());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&order.to_le_bytes());
    let mut frame =
        postcard::to_extend(&WriteRef { file, offset, data }, frame).expect("serializing into a Vec cannot fail");
    let len = u32::try_from(frame.len() - 4).expect("an xWrite is below 2 GiB");
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame
}

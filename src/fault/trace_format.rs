//! The trace's record format: what one operation on a traced file was, its frame, and the
//! shared log frames are appended to. One file for every program that writes a trace:
//! crashfuzz's tracing VFS and its `LD_PRELOAD` interposer (`src/interposer/`, which compiles
//! this very file) encode byte for byte the same frames into the same log, which
//! [`super::trace`] reads.
//!
//! A frame is `[MAGIC: u32][len: u32][crc: u32][0: u32][order: u64][postcard body]`, all little
//! endian, zero-padded to a multiple of 8 bytes; `len` counts the order stamp and the body, and
//! `crc` is their CRC-32. The magic and the checksum make a frame self-delimiting: a reader
//! finds every whole frame even past a frame a killed process left half copied.
//!
//! Leaf module: serde, serde_bytes, postcard and crc32fast only.

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
    /// Encodes one frame with order stamp 0.
    pub fn frame(&self) -> Vec<u8> {
        self.frame_at(0)
    }

    /// The frame of this record with order stamp `order`.
    pub fn frame_at(&self, order: u64) -> Vec<u8> {
        let frame = frame_start(order, 64);
        seal(postcard::to_extend(self, frame).expect("a trace record always serializes"))
    }
}

/// A trace file's first bytes, before its first frame (every process writes them, alike).
pub const FILE_HEADER: [u8; 8] = *b"CFtrace\x01";
/// A frame's first four bytes.
pub const MAGIC: u32 = u32::from_le_bytes(*b"CFtr");
/// The header before the order stamp: magic, length, checksum, a zero word.
pub const HEADER_BYTES: usize = 16;
/// Frames start and end on multiples of this.
pub const FRAME_ALIGN: usize = 8;

/// A frame's buffer up to and including its order stamp, with room for `body` more bytes.
fn frame_start(order: u64, body: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_BYTES + 8 + body + FRAME_ALIGN);
    frame.extend_from_slice(&[0; HEADER_BYTES]);
    frame.extend_from_slice(&order.to_le_bytes());
    frame
}

/// Fills in the header of a frame whose stamp and body follow it, and pads it.
fn seal(mut frame: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(frame.len() - HEADER_BYTES).expect("a record is far below 4 GiB");
    let crc = crc32fast::hash(&frame[HEADER_BYTES..]);
    frame[..4].copy_from_slice(&MAGIC.to_le_bytes());
    frame[4..8].copy_from_slice(&len.to_le_bytes());
    frame[8..12].copy_from_slice(&crc.to_le_bytes());
    frame.resize(frame.len().next_multiple_of(FRAME_ALIGN), 0);
    frame
}

/// A whole frame at the start of `bytes`: its stamp, its body, and its padded length. `None`
/// when `bytes` does not start with one (zeros, a frame cut short, a stretch of a frame's
/// inside).
pub fn parse_frame(bytes: &[u8]) -> Option<(u64, &[u8], usize)> {
    let word = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    if word(0)? != MAGIC {
        return None;
    }
    let len = word(4)? as usize;
    let stamped = bytes.get(HEADER_BYTES..HEADER_BYTES.checked_add(len)?)?;
    if len < 8 || word(12)? != 0 || crc32fast::hash(stamped) != word(8)? {
        return None;
    }
    let (order, body) = stamped.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*order), body, (HEADER_BYTES + len).next_multiple_of(FRAME_ALIGN)))
}

/// Upper bound on a `Write` body's bytes besides the data (postcard): variant 1, writer
/// varint 10, handle varint 5, offset varint 10, data length varint 5.
const WRITE_BODY_OVERHEAD_MAX: usize = 1 + 10 + 5 + 10 + 5;
/// Upper bound on a `Write` frame's bytes besides the data: the header, the order stamp, the
/// body's overhead and the padding.
pub const WRITE_FRAME_OVERHEAD_MAX: usize = HEADER_BYTES + 8 + WRITE_BODY_OVERHEAD_MAX + FRAME_ALIGN - 1;
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
    let frame = frame_start(order, WRITE_BODY_OVERHEAD_MAX + data.len());
    seal(postcard::to_extend(&WriteRef { file, offset, data }, frame).expect("serializing into a Vec cannot fail"))
}

/// The trace file's first bytes every tracing process maps (1 GiB of address space; the file
/// is sparse, so only what frames fill takes disk or memory). A frame beyond them is written
/// with `pwrite(2)` instead.
pub const LOG_MAP_BYTES: usize = 1 << 30;
/// The order file beside the trace: the order counter (`u64` at 0), then the log's
/// reservation counter (`u64` at [`RESERVED_AT`]), the frame bytes handed out so far (the
/// trace's used bytes are [`FILE_HEADER`] and those).
pub const ORDER_FILE_BYTES: usize = 16;
pub const RESERVED_AT: usize = 8;

/// The shared log a process appends frames to: the trace file mapped shared (its first
/// [`LOG_MAP_BYTES`]) and the reservation counter in the order file's mapping. An append takes
/// its bytes from the counter and copies the frame there: no system call, and the frame is in
/// the page cache (so it survives the process's SIGKILL) the moment the copy ends. Processes
/// interleave whole frames at reserved offsets; a process killed mid-copy leaves a frame
/// whose checksum fails, which the reader skips.
pub struct Log {
    base: std::ptr::NonNull<u8>,
    /// The mapping's length in bytes ([`LOG_MAP_BYTES`] but in tests).
    mapped: usize,
    reserved: &'static std::sync::atomic::AtomicU64,
}

// SAFETY: `base` points to a shared mapping that lives as long as the process (never unmapped)
// and every byte range of it is written by the one append that reserved it.
unsafe impl Send for Log {}
// SAFETY: as above.
unsafe impl Sync for Log {}

impl Log {
    /// # Safety
    /// `base` is a writable shared mapping of the trace file's first `mapped` bytes, the file
    /// is at least that long, and neither is ever unmapped or shrunk while the process lives;
    /// `reserved` is the reservation counter of the same trace's order file.
    pub unsafe fn new(
        base: std::ptr::NonNull<u8>,
        mapped: usize,
        reserved: &'static std::sync::atomic::AtomicU64,
    ) -> Log {
        // SAFETY: the header's bytes lie within the mapping (far longer); every process writes
        // the same ones, so a race leaves them whole.
        unsafe { std::ptr::copy_nonoverlapping(FILE_HEADER.as_ptr(), base.as_ptr(), FILE_HEADER.len()) };
        Log { base, mapped, reserved }
    }

    /// Appends `frame` (a whole frame, padded): into the mapping, or through `write_at(frame,
    /// offset)` when its reserved bytes end beyond it.
    pub fn append(
        &self,
        frame: &[u8],
        write_at: impl FnOnce(&[u8], u64) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let at =
            FILE_HEADER.len() as u64 + self.reserved.fetch_add(frame.len() as u64, std::sync::atomic::Ordering::SeqCst);
        match usize::try_from(at).ok().filter(|&at| at.saturating_add(frame.len()) <= self.mapped) {
            Some(at) => {
                // SAFETY: `at..at + len` lies within the mapping (checked) and was reserved by this
                // call alone, so nothing else writes it; `frame` is a live buffer elsewhere.
                unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), self.base.as_ptr().add(at), frame.len()) };
                Ok(())
            }
            None => write_at(frame, at),
        }
    }
}

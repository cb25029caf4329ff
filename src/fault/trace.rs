//! The power-loss trace: what a writer's file I/O did, in order, as the tracing VFS (`vfs`)
//! and the writer append it, and the reading of it back.
//!
//! One trace file per trial, shared by every writer of the trial, opened `O_APPEND`. Each
//! record is one `write(2)` of a length-prefixed frame holding its *order stamp* and the record
//! in [postcard](https://docs.rs/postcard), so concurrent writers interleave whole records, and
//! a record survives the writer's SIGKILL the moment the call returns (it is in the page cache;
//! the trace is read by the driver on the same running machine, never after a real power loss).
//! A SIGKILL can cut a large `write(2)` short between pages: a torn last frame is ignored.
//!
//! A record is appended *after* the operation it describes has been carried out, so a record in
//! the trace always happened. An operation the writer was killed in the middle of, or after
//! but before its record, is simply absent: that is a crash image in which the power failed
//! before that operation, which is one of the states a power loss can leave.
//!
//! **Order across processes.** Appending after the operation means two processes' records can
//! reach the file out of the order their operations started in (a writer descheduled between
//! its `pwrite` and its append). So every record carries a stamp taken from a counter shared by
//! every process of the trial ([`OrderCounter`], a memory-mapped file beside the trace), and
//! [`decode`] returns the records sorted by stamp. A change (write, truncation, open, deletion)
//! takes its stamp *before* it starts; a sync (of a file or of the directory) *after* it
//! returned. So whatever started before a sync finished is ordered before it and counts as
//! covered by it, and whatever started after it finished, after it. The approximation is one
//! way only: a write that overlapped a sync counts as covered although the disk may have
//! missed it, so the model may not explore a state a disk could leave, but never builds one no
//! disk could (which would be a false finding). SQLite's locks keep most of a file's writes
//! and syncs from overlapping across processes in the first place.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// The trace file's name in a trial's directory and in a kept failure.
pub const TRACE_FILE: &str = "trace.bin";

pub use super::trace_format::{FileId, FileKind, FileRef, Record, SYNC_FULL};

impl Record {
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
            | Record::Injected { .. }
            | Record::Untraced { .. } => false,
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
    let mut stamped: Vec<(u64, Record)> = Vec::new();
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
        let Some((order, body)) = body.split_first_chunk::<8>() else {
            return Err(format!(
                "trace record {} at byte {at}: a frame of {len} bytes has no order stamp",
                stamped.len()
            ));
        };
        let record: Record =
            postcard::from_bytes(body).map_err(|e| format!("trace record {} at byte {at}: {e}", stamped.len()))?;
        stamped.push((u64::from_le_bytes(*order), record));
        at += 4 + len;
    }
    // Stable: records of equal stamps (one process's own, unstamped ones) keep file order.
    stamped.sort_by_key(|(order, _)| *order);
    trace.records = stamped.into_iter().map(|(_, r)| r).collect();
    Ok(trace)
}

/// The order stamps of a trial: a `u64` in a file beside the trace (`trace.bin.order`),
/// memory-mapped shared by every process that traces into it, incremented atomically.
pub struct OrderCounter {
    counter: std::ptr::NonNull<std::sync::atomic::AtomicU64>,
}

// SAFETY: the pointer is to a shared mapping that lives as long as the counter (never unmapped:
// a counter lives for its process), used only through an `AtomicU64`.
unsafe impl Send for OrderCounter {}
// SAFETY: as above: every access is atomic.
unsafe impl Sync for OrderCounter {}

impl std::fmt::Debug for OrderCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderCounter").field("next", &self.peek()).finish()
    }
}

/// The file the interposer creates beside the trace at `trace` when it injects its first I/O
/// error (the program's way of announcing it, which crashfuzz's own writer does on stdout).
pub fn injected_path(trace: &Path) -> std::path::PathBuf {
    let mut name = trace.as_os_str().to_owned();
    name.push(".injected");
    name.into()
}

/// The order counter's file beside the trace at `trace`.
pub fn order_path(trace: &Path) -> std::path::PathBuf {
    let mut name = trace.as_os_str().to_owned();
    name.push(".order");
    name.into()
}

impl OrderCounter {
    /// Maps the counter file beside `trace` (created, 8 zero bytes, when absent; a second
    /// process maps the same one).
    pub fn open(trace: &Path) -> std::io::Result<OrderCounter> {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap};
        let path = order_path(trace);
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        // Growing to 8 bytes is idempotent: a second process finds them there and keeps them.
        if file.metadata()?.len() < 8 {
            file.set_len(8)?;
        }
        let len = std::num::NonZeroUsize::new(8).expect("8 is not zero");
        // SAFETY: a fresh shared mapping of 8 bytes of a regular file we hold open; nothing else
        // in this process maps it, and it is only accessed as one AtomicU64 (8-byte aligned:
        // mappings are page aligned).
        let ptr =
            unsafe { mmap(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, &file, 0) }
                .map_err(std::io::Error::from)?;
        Ok(OrderCounter { counter: ptr.cast() })
    }

    /// The next stamp: taken before an operation starts.
    pub fn next(&self) -> u64 {
        // SAFETY: the mapping is live for the counter's life (see the Send impl).
        unsafe { self.counter.as_ref() }.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    fn peek(&self) -> u64 {
        // SAFETY: as in `next`.
        unsafe { self.counter.as_ref() }.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Removes the trace at `path` and its order stamps, for a fresh trial (absent files are fine).
pub fn remove(path: &Path) -> std::io::Result<()> {
    for file in [path.to_path_buf(), order_path(path), injected_path(path)] {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            Ok(()) | Err(_) => {}
        }
    }
    Ok(())
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
                created,
                id: None,
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

    proptest! {
        /// Whatever order the frames reach the file in, the records come back in the order of
        /// their stamps (records of one stamp in file order).
        #[test]
        fn records_come_back_in_stamp_order(records in proptest::collection::vec(record(), 1..20), seed in any::<u64>()) {
            use rand::SeedableRng;
            use rand::seq::SliceRandom;
            let mut stamped: Vec<(u64, Record)> = records.iter().cloned().enumerate().map(|(i, r)| (i as u64, r)).collect();
            stamped.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let bytes: Vec<u8> = stamped.iter().flat_map(|(order, r)| r.frame_at(*order)).collect();
            prop_assert_eq!(decode(&bytes).unwrap().records, records);
        }
    }

    /// Two mappings of one counter file (as two processes have) hand out each stamp once; a
    /// removed trace takes its counter with it.
    #[test]
    fn the_order_counter_is_shared_by_every_mapping_of_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join(TRACE_FILE);
        let (a, b) = (OrderCounter::open(&trace).unwrap(), OrderCounter::open(&trace).unwrap());
        let stamps = [a.next(), b.next(), a.next(), b.next()];
        assert_eq!(stamps, [0, 1, 2, 3]);
        std::fs::write(&trace, b"").unwrap();
        remove(&trace).unwrap();
        assert!(!trace.exists() && !order_path(&trace).exists());
        assert_eq!(OrderCounter::open(&trace).unwrap().next(), 0, "a fresh trial starts at 0");
        remove(&trace).unwrap();
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

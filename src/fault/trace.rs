//! The power-loss trace: what a writer's file I/O did, in order, as the tracing VFS (`vfs`)
//! and the writer append it, and the reading of it back.
//!
//! One trace file per trial, shared by every writer of the trial. Each record is one frame
//! (`trace_format`: magic, length, CRC-32, order stamp, the record in
//! [postcard](https://docs.rs/postcard)) copied into a shared memory mapping of the trace file
//! at bytes reserved from a counter every process of the trial shares ([`TraceLog`]). So
//! concurrent writers interleave whole frames, an append costs no system call (one `write(2)`
//! per record had cost a WAL+FULL commit about 20%), and a record survives the writer's SIGKILL
//! the moment its copy ends: it is in the page cache, and the trace is read by the driver on
//! the same running machine, never after a real power loss. A SIGKILL in the middle of a copy
//! leaves a frame whose checksum fails (or bytes never written, zeros): the reader skips it
//! and counts it torn, and finds every whole frame after it.
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
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The trace file's name in a trial's directory and in a kept failure.
pub const TRACE_FILE: &str = "trace.bin";

pub use super::trace_format::FILE_HEADER;
pub use super::trace_format::{FileId, FileKind, FileRef, Record, SYNC_FULL};
use super::trace_format::{LOG_MAP_BYTES, Log, ORDER_FILE_BYTES, RESERVED_AT};

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

/// One process's side of a trial's trace: the shared log and the order counter.
pub struct TraceLog {
    /// The trace file, open for the log's writes beyond its mapping.
    file: File,
    log: Log,
    order: OrderCounter,
}

impl std::fmt::Debug for TraceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceLog").field("order", &self.order).finish_non_exhaustive()
    }
}

impl TraceLog {
    /// Opens the trace at `path` and its order file (each created when absent; a second
    /// process opens the same ones) and maps the log.
    pub fn open(path: &Path) -> std::io::Result<TraceLog> {
        TraceLog::open_mapping(path, LOG_MAP_BYTES)
    }

    /// [`TraceLog::open`] with the first `mapped` bytes mapped (tests reach the writes beyond).
    fn open_mapping(path: &Path, mapped: usize) -> std::io::Result<TraceLog> {
        let order = OrderCounter::open(path)?;
        let (file, base) = map_shared(path, mapped)?;
        // SAFETY: as `Log::new` asks: the mapping above, and the reservation counter of this
        // trace's order file, both live for the process.
        let log = unsafe { Log::new(base.cast(), mapped, order.reserved()) };
        Ok(TraceLog { file, log, order })
    }

    /// The next order stamp (see the module doc for when to take it).
    pub fn stamp(&self) -> u64 {
        self.order.next()
    }

    /// Appends one frame (from `Record::frame_at` or `trace_format::write_frame`).
    pub fn append_frame(&self, frame: &[u8]) -> std::io::Result<()> {
        self.log.append(frame, |frame, at| self.file.write_all_at(frame, at))
    }

    /// Appends `record` with a fresh stamp.
    pub fn append(&self, record: &Record) -> std::io::Result<()> {
        self.append_frame(&record.frame_at(self.stamp()))
    }

    /// Forgets every frame: the next one is written first and the reader stops after the
    /// last one written since. For a process that traces alone and reads its own trace
    /// between runs (`io-counts`, benches); the file is never shrunk under the mapping, which
    /// would kill the process with SIGBUS at its next append.
    pub fn restart(&self) {
        self.order.reserved().store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Opens `path` for reading and writing (created when absent), grows it to `len` bytes when
/// it is shorter (sparse; never shrinking it: every process of a trial asks for the same
/// length, and a file shrunk under a mapping is SIGBUS) and maps those bytes shared. The
/// mapping is never unmapped: it lives as long as the process.
fn map_shared(path: &Path, len: usize) -> std::io::Result<(File, std::ptr::NonNull<std::ffi::c_void>)> {
    use nix::sys::mman::{MapFlags, ProtFlags, mmap};
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    if file.metadata()?.len() < len as u64 {
        file.set_len(len as u64)?;
    }
    let len = std::num::NonZeroUsize::new(len).expect("a mapping is not empty");
    // SAFETY: a fresh shared mapping of a regular file held open and at least that long.
    let ptr = unsafe { mmap(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, &file, 0) }
        .map_err(std::io::Error::from)?;
    Ok((file, ptr))
}

/// A trace read back: the records, and whether any frame was torn (and dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub records: Vec<Record>,
    /// A frame was cut short or left half copied by a killed process (it is not in `records`).
    pub torn: bool,
}

/// Decodes every whole frame of `bytes` and sorts the records by stamp. A whole frame (its
/// checksum holds) that does not decode is an error: the trace is the harness's own file, so
/// that is a harness bug. A trace without [`FILE_HEADER`] is in the earlier format
/// (`[len: u32][order: u64][body]` back to back), which failures kept before the shared log
/// still hold.
pub fn decode(bytes: &[u8]) -> Result<Trace, String> {
    use super::trace_format::{FRAME_ALIGN, parse_frame};
    if !bytes.starts_with(&FILE_HEADER) {
        return decode_unframed(bytes);
    }
    let mut trace = Trace::default();
    let mut stamped: Vec<(u64, Record)> = Vec::new();
    let mut at = FILE_HEADER.len();
    // Zeros never written, or the inside of a torn frame, since the last whole frame.
    let mut skipping = false;
    while at < bytes.len() {
        match parse_frame(&bytes[at..]) {
            Some((order, body, len)) => {
                let record: Record = postcard::from_bytes(body)
                    .map_err(|e| format!("trace record {} at byte {at}: {e}", stamped.len()))?;
                stamped.push((order, record));
                at += len;
                skipping = false;
            }
            None => {
                let word = &bytes[at..bytes.len().min(at + FRAME_ALIGN)];
                if !skipping && word.iter().any(|&b| b != 0) {
                    trace.torn = true;
                    skipping = true;
                }
                at += FRAME_ALIGN;
            }
        }
    }
    // Stable: records of equal stamps (one process's own, unstamped ones) keep file order.
    stamped.sort_by_key(|(order, _)| *order);
    trace.records = stamped.into_iter().map(|(_, r)| r).collect();
    Ok(trace)
}

/// The earlier format's frames, back to back; a torn last frame is ignored.
fn decode_unframed(bytes: &[u8]) -> Result<Trace, String> {
    let mut trace = Trace::default();
    let mut stamped: Vec<(u64, Record)> = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(len_bytes) = bytes.get(at..at + 4) else {
            trace.torn = true;
            break;
        };
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            trace.torn = true;
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
    stamped.sort_by_key(|(order, _)| *order);
    trace.records = stamped.into_iter().map(|(_, r)| r).collect();
    Ok(trace)
}

/// The order stamps of a trial, and its log's reservation counter: two `u64`s in a file
/// beside the trace (`trace.bin.order`), memory-mapped shared by every process that traces
/// into it, incremented atomically.
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
    /// Maps the counter file beside `trace` (created, zero, when absent; a second process maps
    /// the same one).
    pub fn open(trace: &Path) -> std::io::Result<OrderCounter> {
        // Only ever accessed as two AtomicU64 (8-byte aligned: mappings are page aligned).
        let (_, ptr) = map_shared(&order_path(trace), ORDER_FILE_BYTES)?;
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

    /// The log's reservation counter, the second `u64` of the mapping (which is never unmapped).
    fn reserved(&self) -> &'static std::sync::atomic::AtomicU64 {
        // SAFETY: RESERVED_AT is within the mapping and 8-byte aligned; the mapping lives for
        // the process.
        unsafe { &*self.counter.as_ptr().cast::<u8>().add(RESERVED_AT).cast::<std::sync::atomic::AtomicU64>() }
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

/// The bytes of the trace at `path` its header and frames fill: up to its log's reservation counter when
/// its order file is beside it (a trial's live trace, sparse up to the mapped length), the
/// whole file otherwise (a kept copy).
pub fn used_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let said = |e: std::io::Error| format!("{}: {e}", path.display());
    let end = match std::fs::read(order_path(path)) {
        Ok(order) if order.len() >= ORDER_FILE_BYTES => Some(
            FILE_HEADER.len() as u64
                + u64::from_le_bytes(order[RESERVED_AT..RESERVED_AT + 8].try_into().expect("8 bytes")),
        ),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", order_path(path).display())),
    };
    let file = File::open(path).map_err(said)?;
    let mut bytes = Vec::new();
    match end {
        Some(end) => file.take(end).read_to_end(&mut bytes),
        None => (&file).read_to_end(&mut bytes),
    }
    .map_err(said)?;
    Ok(bytes)
}

/// Reads and decodes the trace at `path` (its used bytes).
pub fn read(path: &Path) -> Result<Trace, String> {
    decode(&used_bytes(path)?).map_err(|e| format!("{}: {e}", path.display()))
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
        /// records, flagged torn exactly when the cut falls inside a frame (not in its padding).
        #[test]
        fn frames_round_trip_and_truncations_give_prefixes(records in proptest::collection::vec(record(), 0..20), cut in any::<prop::sample::Index>()) {
            let frames: Vec<Vec<u8>> = records.iter().map(Record::frame).collect();
            let bytes: Vec<u8> = [FILE_HEADER.to_vec(), frames.concat()].concat();
            let whole = decode(&bytes).unwrap();
            prop_assert_eq!(&whole.records, &records);
            prop_assert!(!whole.torn);
            let at = FILE_HEADER.len() + cut.index(bytes.len() - FILE_HEADER.len() + 1);
            let part = decode(&bytes[..at]).unwrap();
            let (mut start, mut n, mut torn) = (FILE_HEADER.len(), 0, false);
            for frame in &frames {
                let unpadded = 16 + u32::from_le_bytes(frame[4..8].try_into().unwrap()) as usize;
                if start + unpadded > at {
                    torn = at > start;
                    break;
                }
                n += 1;
                start += frame.len();
            }
            prop_assert_eq!(&part.records[..], &records[..n]);
            prop_assert_eq!(part.torn, torn);
        }

        /// A frame a killed process left half copied (its first bytes, then the zeros of the
        /// sparse file) or never began is skipped, and every frame after it is read.
        #[test]
        fn a_half_copied_frame_is_skipped_and_the_frames_after_it_read(
            records in proptest::collection::vec(record(), 1..12),
            victim in any::<prop::sample::Index>(),
            copied in any::<prop::sample::Index>(),
        ) {
            let mut frames: Vec<Vec<u8>> = records.iter().map(Record::frame).collect();
            let k = victim.index(frames.len());
            let keep = copied.index(frames[k].len());
            let whole = frames[k].clone();
            frames[k][keep..].fill(0);
            let t = decode(&[FILE_HEADER.to_vec(), frames.concat()].concat()).unwrap();
            // A copy cut short only in bytes that were zero anyway is the whole frame.
            let cut_short = frames[k] != whole;
            let mut want = records.clone();
            if cut_short {
                want.remove(k);
            }
            prop_assert_eq!(t.records, want);
            prop_assert_eq!(t.torn, cut_short && keep > 0);
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
            let bytes: Vec<u8> = FILE_HEADER.into_iter().chain(stamped.iter().flat_map(|(order, r)| r.frame_at(*order))).collect();
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

    /// Two logs of one trace (as two processes have) interleave whole records at reserved
    /// bytes; frames past the mapping go through `pwrite`; the reader stops at the reservation
    /// counter, not at the sparse file's end, and a kept copy of those bytes reads the same.
    #[test]
    fn appends_from_two_logs_are_whole_records_in_stamp_order_within_and_past_the_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace");
        let (a, b) = (TraceLog::open_mapping(&path, 4096).unwrap(), TraceLog::open_mapping(&path, 4096).unwrap());
        let mut want = Vec::new();
        for seq in 0..40 {
            let record =
                Record::Write { file: FileRef { writer: seq % 2, handle: 1 }, offset: seq, data: vec![7; 300] };
            if seq % 2 == 0 {
                a.append(&record).unwrap()
            } else {
                b.append(&record).unwrap()
            }
            want.push(record);
        }
        assert!(std::fs::metadata(&path).unwrap().len() > 4096, "frames past the mapping were written");
        let used = used_bytes(&path).unwrap();
        assert_eq!(used.len() as u64, 8 + a.order.reserved().load(std::sync::atomic::Ordering::SeqCst));
        let t = read(&path).unwrap();
        assert_eq!(t.records, want);
        assert!(!t.torn);
        let kept = dir.path().join("kept");
        std::fs::write(&kept, &used).unwrap();
        assert_eq!(read(&kept).unwrap(), t);
    }

    #[test]
    fn a_live_trace_reads_its_used_bytes_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace");
        let log = TraceLog::open(&path).unwrap();
        log.append(&Record::Begin { writer: 1, seq: 1 }).unwrap();
        log.append(&Record::Ack { writer: 1, seq: 1 }).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), LOG_MAP_BYTES as u64, "sparse to the mapped length");
        assert!(used_bytes(&path).unwrap().len() < 100);
        assert_eq!(
            read(&path).unwrap().records,
            vec![Record::Begin { writer: 1, seq: 1 }, Record::Ack { writer: 1, seq: 1 }]
        );
    }

    /// Failures kept before the shared log hold the earlier frames (`[len][order][body]`).
    #[test]
    fn traces_in_the_earlier_format_still_read() {
        let frame = |order: u64, r: &Record| {
            let body = postcard::to_allocvec(r).unwrap();
            let mut f = ((8 + body.len()) as u32).to_le_bytes().to_vec();
            f.extend_from_slice(&order.to_le_bytes());
            f.extend_from_slice(&body);
            f
        };
        let (one, two) = (Record::Begin { writer: 1, seq: 1 }, Record::Ack { writer: 1, seq: 1 });
        let bytes = [frame(1, &two), frame(0, &one)].concat();
        assert_eq!(decode(&bytes).unwrap().records, vec![one.clone(), two.clone()]);
        assert!(decode(&bytes[..bytes.len() - 1]).unwrap().torn);
    }
}

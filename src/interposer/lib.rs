//! crashfuzz's `LD_PRELOAD` interposer: the faults of the tracing VFS, for a program crashfuzz
//! did not write. Loaded into an application's writer, it wraps libc's file calls for the
//! trial's database, its `-journal` and its `-wal` (and fsyncs of their directory):
//! - it appends to the trial's trace the records crashfuzz's tracing VFS appends, in the same
//!   frames (`trace_format.rs`, compiled into both), so the crash-image builder, shrinking and
//!   `explain.txt` work unchanged; lines the program writes to its acknowledgement descriptor
//!   become `Begin`/`Ack` records, its keys numbered as crashfuzz numbers them;
//! - it kills the process just before its n-th write, sync or truncation of those files (a
//!   crash point), or fails that operation with an errno (an I/O error), as the VFS does;
//! - it cancels the process's POSIX locks on one of the database's files from a thread that
//!   opens and closes that file (lock cancellation).
//!
//! | environment | meaning |
//! |---|---|
//! | `CRASHFUZZ_TRACE` | the trace file (its order counter is `CRASHFUZZ_TRACE.order`); tracing, crash points and I/O errors need it |
//! | `CRASHFUZZ_DB` | the database whose files are traced (an absolute path) |
//! | `CRASHFUZZ_WRITER_ID` | the writer id of file handles and acknowledgements |
//! | `CRASHFUZZ_ACK_FD` | the acknowledgement descriptor (optional) |
//! | `CRASHFUZZ_CRASH_AT` | a crash point: SIGKILL this process just before its n-th counted operation (optional) |
//! | `CRASHFUZZ_FAIL_AT`, `CRASHFUZZ_FAIL_ERRNO`, `CRASHFUZZ_FAIL_PERSISTENT` | an I/O error: fail the n-th counted operation (`1`: and every later one) with that errno, without carrying it out; the first failure appends an `Injected` record and creates `CRASHFUZZ_TRACE.injected`, which tells the driver (optional) |
//! | `CRASHFUZZ_LOCK_CANCEL` | `db`, `wal` or `shm` and a bound in µs (`db:2000`): once the program says `ready` on its descriptor (without a descriptor: once it opened the database), a thread opens and closes that file at intervals drawn up to the bound, from `CRASHFUZZ_SEED` (optional; needs no trace) |
//!
//! | `CRASHFUZZ_SQLITE_REPORT` | a file: at the `ready` line, the SQLite library the process loaded (`library`, `version`, `source_id` lines from its own `sqlite3_libversion` and `sqlite3_sourceid`), or `compiled-in` when it loaded none (optional) |
//!
//! Without `CRASHFUZZ_TRACE` and `CRASHFUZZ_LOCK_CANCEL` every file call passes straight
//! through.
//!
//! What libc shows and what it cannot: the calls on the traced paths (`open`, `openat`,
//! `creat` and their 64-bit names; `write`, `pwrite`, `pwritev`; `fsync`, `fdatasync`;
//! `ftruncate`; `unlink`, `unlinkat`; `rename`, `renameat`, `renameat2`; `close`), matched as
//! the program names them (`CRASHFUZZ_DB` is absolute; a path relative to a directory
//! descriptor is not matched). A sync carries no SQLite flag at this level: `fsync` is
//! recorded as a plain full sync of the file (`SQLITE_SYNC_NORMAL`), `fdatasync` as a
//! data-only one, never as `F_FULLFSYNC`, which Linux does not have. A rename onto or away
//! from a traced path is recorded as `Untraced`: the crash-image builder does not follow
//! names across files, so a power-loss trial with one is inconclusive and says why. Writes
//! through a memory mapping (the `-shm`, rebuilt after a crash, and a database opened with
//! `mmap_size > 0`), `io_uring` and raw system calls are not seen; a statically linked program
//! loads nothing and is not seen at all (crashfuzz then finds no `Open` of the database in the
//! trace and says so).
//!
//! Order: as the VFS does, a change (open, write, truncation, deletion) takes its stamp from the
//! trial's shared counter before it starts, a sync after it returned; a record is appended only
//! after its call succeeded, copied into the trace's shared log (`trace_format::Log`, the same
//! mapping and reservation counter the VFS uses), and a failed append aborts the process.
//! Internal I/O goes through raw system calls: this library's own `write` is the program's.

#![allow(clippy::missing_safety_doc)]

// The VFS's file, whole: the interposer uses the records and their frames, not every helper.
#[allow(dead_code)]
#[path = "../fault/trace_format.rs"]
mod trace_format;

use libc::{c_char, c_int, c_void, iovec, mode_t, off_t, size_t, ssize_t};
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use trace_format::{FileId, FileKind, FileRef, Record};

/// `SQLITE_SYNC_NORMAL`, and with `SQLITE_SYNC_DATAONLY`.
const SYNC_NORMAL: i32 = 0x02;
const SYNC_DATAONLY: i32 = 0x10;

/// A descriptor of a traced path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tracked {
    File {
        file: FileRef,
    },
    /// The database's directory, opened to be fsynced.
    Dir,
}

/// Descriptors below this index are looked up in a lock-free table (one atomic load per
/// call); higher ones, rare, in a map under a lock.
const FD_TABLE_LEN: usize = 1 << 16;

/// Which descriptors are traced: `0` none, `1` the directory, `2 + handle` a file of this
/// process (its writer is the tracer's).
struct FdTable {
    low: Box<[AtomicU64]>,
    high: Mutex<HashMap<c_int, Tracked>>,
}

impl FdTable {
    fn new() -> FdTable {
        FdTable { low: (0..FD_TABLE_LEN).map(|_| AtomicU64::new(0)).collect(), high: Mutex::new(HashMap::new()) }
    }

    fn encode(tracked: Tracked) -> u64 {
        match tracked {
            Tracked::Dir => 1,
            Tracked::File { file } => 2 + u64::from(file.handle),
        }
    }

    fn decode(writer: u64, slot: u64) -> Option<Tracked> {
        match slot {
            0 => None,
            1 => Some(Tracked::Dir),
            n => Some(Tracked::File { file: FileRef { writer, handle: (n - 2) as u32 } }),
        }
    }

    fn insert(&self, fd: c_int, tracked: Tracked) {
        match usize::try_from(fd).ok().filter(|&i| i < FD_TABLE_LEN) {
            Some(i) => self.low[i].store(Self::encode(tracked), Ordering::SeqCst),
            None => {
                self.high.lock().unwrap_or_else(|p| p.into_inner()).insert(fd, tracked);
            }
        }
    }

    fn get(&self, writer: u64, fd: c_int) -> Option<Tracked> {
        match usize::try_from(fd).ok().filter(|&i| i < FD_TABLE_LEN) {
            Some(i) => Self::decode(writer, self.low[i].load(Ordering::SeqCst)),
            None => self.high.lock().unwrap_or_else(|p| p.into_inner()).get(&fd).copied(),
        }
    }

    fn remove(&self, writer: u64, fd: c_int) -> Option<Tracked> {
        match usize::try_from(fd).ok().filter(|&i| i < FD_TABLE_LEN) {
            Some(i) => Self::decode(writer, self.low[i].swap(0, Ordering::SeqCst)),
            None => self.high.lock().unwrap_or_else(|p| p.into_inner()).remove(&fd),
        }
    }
}

/// Maps `fd`'s first `len` bytes shared, growing the file to that length first when it is
/// shorter (sparse; never shrinking it: every process of a trial asks for the same length).
/// Dies when it cannot.
fn map_at_least(fd: c_int, len: usize, what: &str) -> std::ptr::NonNull<u8> {
    // SAFETY: fstat(2), ftruncate(2) and mmap(2) of a descriptor this process just opened.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            die(&format!("stat {what}"));
        }
        if (st.st_size as u64) < len as u64 && libc::syscall(libc::SYS_ftruncate, fd, len as off_t) != 0 {
            die(&format!("size {what}"));
        }
        let ptr = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
        match std::ptr::NonNull::new(ptr.cast::<u8>()).filter(|_| ptr != libc::MAP_FAILED) {
            Some(base) => base,
            None => die(&format!("map {what}")),
        }
    }
}

/// The tracer of this process, when `CRASHFUZZ_TRACE` is set.
struct Tracer {
    writer: u64,
    db: String,
    dir: String,
    trace_fd: c_int,
    order: &'static AtomicU64,
    log: trace_format::Log,
    next_handle: AtomicU32,
    fds: FdTable,
    /// Keys in the order this process first named them (index + 1 is the sequence number).
    keys: Mutex<HashMap<String, u64>>,
    /// Counted operations so far (writes, syncs and truncations of traced files), numbered
    /// 1, 2, 3… as the VFS numbers them.
    ops: AtomicU64,
    /// The operation before which this process kills itself (a crash point).
    crash_at: Option<u64>,
    /// The operation this process fails on purpose (an I/O error).
    fail: Option<Failure>,
    /// Whether the first failure was injected (and announced).
    injected: AtomicBool,
}

/// An I/O error to inject: operation `at` (and, when `persistent`, every later one) fails
/// with `errno`, not carried out.
struct Failure {
    at: u64,
    errno: c_int,
    persistent: bool,
    /// Created at the first failure: the driver waits for it.
    marker: std::ffi::CString,
}

fn tracer() -> Option<&'static Tracer> {
    static TRACER: OnceLock<Option<Tracer>> = OnceLock::new();
    TRACER.get_or_init(Tracer::from_env).as_ref()
}

fn raw_open(path: &CStr, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: a raw openat(2) on a NUL-terminated path.
    unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags, mode) as c_int }
}

impl Tracer {
    fn from_env() -> Option<Tracer> {
        let trace = std::env::var("CRASHFUZZ_TRACE").ok()?;
        let db = std::env::var("CRASHFUZZ_DB").ok()?;
        let writer = std::env::var("CRASHFUZZ_WRITER_ID").ok()?.parse().ok()?;
        let crash_at = std::env::var("CRASHFUZZ_CRASH_AT").ok().and_then(|v| v.parse().ok());
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<i64>().ok());
        let fail = match (number("CRASHFUZZ_FAIL_AT"), number("CRASHFUZZ_FAIL_ERRNO")) {
            (Some(at), Some(errno)) if at > 0 && errno > 0 => Some(Failure {
                at: at as u64,
                errno: errno as c_int,
                persistent: number("CRASHFUZZ_FAIL_PERSISTENT") == Some(1),
                marker: std::ffi::CString::new(format!("{trace}.injected")).ok()?,
            }),
            _ => None,
        };
        let dir = match db.rfind('/') {
            Some(0) => "/".to_string(),
            Some(at) => db[..at].to_string(),
            None => ".".to_string(),
        };
        let cpath = std::ffi::CString::new(trace.clone()).ok()?;
        let trace_fd = raw_open(&cpath, libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC, 0o644);
        let order = std::ffi::CString::new(format!("{trace}.order")).ok()?;
        let order_fd = raw_open(&order, libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC, 0o644);
        if trace_fd < 0 || order_fd < 0 {
            die("open the trace");
        }
        let order = map_at_least(order_fd, trace_format::ORDER_FILE_BYTES, "the order counter");
        // SAFETY: raw close(2) of the descriptor just mapped.
        unsafe { libc::syscall(libc::SYS_close, order_fd) };
        // SAFETY: both words of the order file's mapping, 8-byte aligned (a mapping is page
        // aligned), shared with every process of the trial and never unmapped.
        let (order, reserved) = unsafe {
            (
                &*(order.as_ptr() as *const AtomicU64),
                &*(order.as_ptr().add(trace_format::RESERVED_AT) as *const AtomicU64),
            )
        };
        let base = map_at_least(trace_fd, trace_format::LOG_MAP_BYTES, "the trace");
        // SAFETY: `base` maps the trace's first LOG_MAP_BYTES, the file is that long, and
        // neither is ever unmapped or shrunk while a process of the trial lives; `reserved` is
        // the same trace's reservation counter.
        let log = unsafe { trace_format::Log::new(base, trace_format::LOG_MAP_BYTES, reserved) };
        Some(Tracer {
            writer,
            db,
            dir,
            trace_fd,
            order,
            log,
            next_handle: AtomicU32::new(0),
            fds: FdTable::new(),
            keys: Mutex::new(HashMap::new()),
            ops: AtomicU64::new(0),
            crash_at,
            fail,
            injected: AtomicBool::new(false),
        })
    }

    /// Counts an operation: at the crash point the process dies before carrying it out; at an
    /// injected error, the errno the call fails with instead (the first one recorded and
    /// announced).
    fn count_op(&self) -> Option<c_int> {
        let op = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(op) == self.crash_at {
            // SAFETY: kill(2) of this very process with SIGKILL.
            unsafe { libc::syscall(libc::SYS_kill, libc::getpid(), libc::SIGKILL) };
        }
        let fail = self.fail.as_ref()?;
        let hit = if fail.persistent { op >= fail.at } else { op == fail.at };
        if !hit {
            return None;
        }
        self.emit(self.stamp(), &Record::Injected { writer: self.writer, op, code: fail.errno });
        if !self.injected.swap(true, Ordering::SeqCst) {
            let fd = raw_open(&fail.marker, libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC, 0o644);
            if fd < 0 {
                die("announce the injected error");
            }
            // SAFETY: close(2) of the descriptor just opened.
            unsafe { libc::syscall(libc::SYS_close, fd) };
        }
        Some(fail.errno)
    }

    fn stamp(&self) -> u64 {
        self.order.fetch_add(1, Ordering::SeqCst)
    }

    /// Appends `record` with `order` to the shared log; a failure aborts (a trace with a hole
    /// would rebuild files that never existed).
    fn emit(&self, order: u64, record: &Record) {
        self.emit_frame(&record.frame_at(order));
    }

    /// Appends one frame, as [`Tracer::emit`].
    fn emit_frame(&self, frame: &[u8]) {
        let past_the_mapping = |frame: &[u8], at: u64| {
            // SAFETY: a raw pwrite(2) of a live buffer to the trace descriptor.
            let n =
                unsafe { libc::syscall(libc::SYS_pwrite64, self.trace_fd, frame.as_ptr(), frame.len(), at as off_t) };
            if n == frame.len() as i64 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        };
        if self.log.append(frame, past_the_mapping).is_err() {
            die("append to the trace");
        }
    }

    /// What `path` is to the trace: the database, its journal, its WAL, its directory.
    fn classify(&self, path: &str) -> Option<Option<FileKind>> {
        if path == self.dir || path.strip_suffix('/') == Some(self.dir.as_str()) {
            return Some(None);
        }
        let rest = path.strip_prefix(self.db.as_str())?;
        match rest {
            "" => Some(Some(FileKind::MainDb)),
            "-journal" => Some(Some(FileKind::MainJournal)),
            "-wal" => Some(Some(FileKind::Wal)),
            _ => None,
        }
    }

    fn tracked(&self, fd: c_int) -> Option<Tracked> {
        self.fds.get(self.writer, fd)
    }

    fn file(&self, fd: c_int) -> Option<FileRef> {
        match self.tracked(fd)? {
            Tracked::File { file } => Some(file),
            Tracked::Dir => None,
        }
    }

    /// The lines of one write to the acknowledgement descriptor, as records: `begin KEY`
    /// before the line is written (`before`), `ack KEY` after.
    fn ack_lines(&self, buf: &[u8], before: bool) {
        let Ok(text) = std::str::from_utf8(buf) else { return };
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            let fields: Vec<&str> = line.split(' ').collect();
            let (word, key) = match fields.as_slice() {
                [word @ ("begin" | "ack"), key] if !key.is_empty() => (*word, *key),
                _ => continue,
            };
            if (word == "begin") != before {
                continue;
            }
            let seq = {
                let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
                let next = keys.len() as u64 + 1;
                *keys.entry(key.to_string()).or_insert(next)
            };
            let record = match word {
                "begin" => Record::Begin { writer: self.writer, seq },
                _ => Record::Ack { writer: self.writer, seq },
            };
            self.emit(self.stamp(), &record);
        }
    }
}

/// The acknowledgement descriptor, when the program has one.
fn ack_fd() -> Option<c_int> {
    static ACK_FD: OnceLock<Option<c_int>> = OnceLock::new();
    *ACK_FD.get_or_init(|| std::env::var("CRASHFUZZ_ACK_FD").ok().and_then(|v| v.parse().ok()))
}

/// What the program's `ready` line starts: lock cancellation, and the report of its SQLite.
fn on_ready() {
    if let Some(c) = canceller() {
        c.start();
    }
    static REPORTED: std::sync::Once = std::sync::Once::new();
    REPORTED.call_once(report_sqlite);
}

/// Writes to `CRASHFUZZ_SQLITE_REPORT` which SQLite library the process loaded, as that
/// library names itself, or that it loaded none (its SQLite is compiled in).
fn report_sqlite() {
    let Some(path) = std::env::var("CRASHFUZZ_SQLITE_REPORT").ok().and_then(|p| std::ffi::CString::new(p).ok()) else {
        return;
    };
    unsafe extern "C" fn find(info: *mut libc::dl_phdr_info, _size: size_t, found: *mut c_void) -> c_int {
        // SAFETY: the loader's record of one loaded object, and our `Option<String>`.
        let (info, found) = unsafe { (&*info, &mut *(found as *mut Option<String>)) };
        if info.dlpi_name.is_null() {
            return 0;
        }
        // SAFETY: the loader's NUL-terminated name of the object.
        let name = unsafe { CStr::from_ptr(info.dlpi_name) }.to_string_lossy();
        let file = name.rsplit('/').next().unwrap_or_default();
        if file.starts_with("libsqlite3.so") {
            *found = Some(name.into_owned());
            return 1;
        }
        0
    }
    let mut library: Option<String> = None;
    // SAFETY: the callback reads each object's record and writes only `library`.
    unsafe { libc::dl_iterate_phdr(Some(find), &mut library as *mut Option<String> as *mut c_void) };
    let text = match library.and_then(|l| std::ffi::CString::new(l).ok()) {
        None => "compiled-in\n".to_string(),
        Some(library) => {
            // SAFETY: the library is loaded (RTLD_NOLOAD): this only returns its handle, whose
            // two functions return static strings.
            unsafe {
                let handle = libc::dlopen(library.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
                let call = |name: &[u8]| {
                    let f = libc::dlsym(handle, name.as_ptr() as *const c_char);
                    if handle.is_null() || f.is_null() {
                        return String::new();
                    }
                    let f: unsafe extern "C" fn() -> *const c_char = std::mem::transmute(f);
                    CStr::from_ptr(f()).to_string_lossy().into_owned()
                };
                let text = format!(
                    "library {}\nversion {}\nsource_id {}\n",
                    library.to_string_lossy(),
                    call(b"sqlite3_libversion\0"),
                    call(b"sqlite3_sourceid\0")
                );
                if !handle.is_null() {
                    libc::dlclose(handle);
                }
                text
            }
        }
    };
    let fd = raw_open(&path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC, 0o644);
    if fd >= 0 {
        // SAFETY: raw write(2) and close(2) of the descriptor just opened.
        unsafe {
            libc::syscall(libc::SYS_write, fd, text.as_ptr(), text.len());
            libc::syscall(libc::SYS_close, fd);
        }
    }
}

/// What a failed call returns: -1, with `errno` set.
fn failed<T: From<i8>>(errno: c_int) -> T {
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() = errno };
    T::from(-1)
}

/// Lock cancellation: once the program is ready, a thread opens and closes one of the
/// database's files at random intervals. POSIX locks belong to the process, so each close
/// drops every lock the process's SQLite holds on that file, which SQLite does not notice.
/// Not before `ready`: a database broken before the program opened it says nothing about how
/// the program fares, and it says nothing at all when the program cannot start.
struct Canceller {
    db: String,
    target: std::ffi::CString,
    interval_us_max: u64,
    seed: u64,
}

fn canceller() -> Option<&'static Canceller> {
    static CANCELLER: OnceLock<Option<Canceller>> = OnceLock::new();
    CANCELLER.get_or_init(Canceller::from_env).as_ref()
}

impl Canceller {
    fn from_env() -> Option<Canceller> {
        let spec = std::env::var("CRASHFUZZ_LOCK_CANCEL").ok()?;
        let db = std::env::var("CRASHFUZZ_DB").ok()?;
        let seed = std::env::var("CRASHFUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        let (file, bound) = spec.split_once(':')?;
        let suffix = match file {
            "db" => "",
            "wal" => "-wal",
            "shm" => "-shm",
            _ => die("read CRASHFUZZ_LOCK_CANCEL (db, wal or shm, then :µs)"),
        };
        let interval_us_max = bound.parse().unwrap_or_else(|_| die("read CRASHFUZZ_LOCK_CANCEL's bound"));
        let target = std::ffi::CString::new(format!("{db}{suffix}")).ok()?;
        Some(Canceller { db, target, interval_us_max, seed })
    }

    /// A program with no descriptor starts the thread at its first open of the database.
    fn opened(&'static self, path: &str) {
        if ack_fd().is_none() && path == self.db {
            self.start();
        }
    }

    fn start(&'static self) {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            let spawned = std::thread::Builder::new().name("crashfuzz-lock-cancel".into()).spawn(move || {
                use rand::{RngExt, SeedableRng};
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed);
                loop {
                    std::thread::sleep(std::time::Duration::from_micros(rng.random_range(0..=self.interval_us_max)));
                    // Open and close at once: all it takes. A missing file (no -wal yet) is
                    // skipped. Raw calls: this is no file I/O of the program's.
                    let fd = raw_open(&self.target, libc::O_RDONLY | libc::O_CLOEXEC, 0);
                    if fd >= 0 {
                        // SAFETY: close(2) of the descriptor just opened.
                        unsafe { libc::syscall(libc::SYS_close, fd) };
                    }
                }
            });
            if spawned.is_err() {
                die("start the lock-cancelling thread");
            }
        });
    }
}

fn die(what: &str) -> ! {
    let message = format!("crashfuzz interposer: cannot {what}\n");
    // SAFETY: a raw write(2) to stderr, then abort.
    unsafe {
        libc::syscall(libc::SYS_write, 2, message.as_ptr(), message.len());
        libc::abort()
    }
}

/// `dlsym(RTLD_NEXT, name)` once, as a function pointer of type `F`.
macro_rules! real {
    ($name:literal, $ty:ty) => {{
        static REAL: OnceLock<usize> = OnceLock::new();
        let addr = *REAL.get_or_init(|| {
            // SAFETY: dlsym with a NUL-terminated name.
            let addr = unsafe { libc::dlsym(libc::RTLD_NEXT, concat!($name, "\0").as_ptr() as *const c_char) };
            if addr.is_null() {
                die(concat!("find libc's ", $name));
            }
            addr as usize
        });
        // SAFETY: the symbol is libc's function of this signature.
        unsafe { std::mem::transmute::<usize, $ty>(addr) }
    }};
}

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, mode_t) -> c_int;
type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, mode_t) -> c_int;
type WriteFn = unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t;
type PwriteFn = unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t;
type PwritevFn = unsafe extern "C" fn(c_int, *const iovec, c_int, off_t) -> ssize_t;
type FdFn = unsafe extern "C" fn(c_int) -> c_int;
type TruncFn = unsafe extern "C" fn(c_int, off_t) -> c_int;
type UnlinkFn = unsafe extern "C" fn(*const c_char) -> c_int;
type UnlinkatFn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;

/// An open of `path` (relative paths, other than through `AT_FDCWD`, are never traced).
unsafe fn traced_open(path: *const c_char, flags: c_int, open: impl FnOnce() -> c_int) -> c_int {
    let fd = unsafe { trace_open(path, flags, open) };
    if let Some(c) = canceller()
        && fd >= 0
        && !path.is_null()
    {
        // SAFETY: the caller passes libc a NUL-terminated path.
        c.opened(&unsafe { CStr::from_ptr(path) }.to_string_lossy());
    }
    fd
}

/// An open of `path`, with its `Open` record when the path is traced.
unsafe fn trace_open(path: *const c_char, flags: c_int, open: impl FnOnce() -> c_int) -> c_int {
    let Some(t) = tracer() else { return open() };
    // SAFETY: the caller passes libc a NUL-terminated path.
    let Some(name) = (!path.is_null()).then(|| unsafe { CStr::from_ptr(path) }.to_string_lossy().into_owned()) else {
        return open();
    };
    let Some(kind) = t.classify(&name) else { return open() };
    let existed = {
        let c = std::ffi::CString::new(name.clone()).unwrap_or_default();
        // SAFETY: access(2) on a NUL-terminated path.
        unsafe { libc::syscall(libc::SYS_faccessat, libc::AT_FDCWD, c.as_ptr(), libc::F_OK, 0) == 0 }
    };
    let order = t.stamp();
    let fd = open();
    if fd < 0 {
        return fd;
    }
    let Some(kind) = kind else {
        t.fds.insert(fd, Tracked::Dir);
        return fd;
    };
    let id = {
        // SAFETY: fstat on the descriptor just opened.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(FileId { dev: st.st_dev, ino: st.st_ino })
    };
    let file = FileRef { writer: t.writer, handle: t.next_handle.fetch_add(1, Ordering::SeqCst) };
    let created = !existed && flags & libc::O_CREAT != 0;
    t.fds.insert(fd, Tracked::File { file });
    t.emit(order, &Record::Open { file, path: name, kind, created, id });
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let real = real!("open", OpenFn);
    unsafe { traced_open(path, flags, || real(path, flags, mode)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let real = real!("open64", OpenFn);
    unsafe { traced_open(path, flags, || real(path, flags, mode)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let real = real!("openat", OpenatFn);
    if dirfd != libc::AT_FDCWD {
        return unsafe { real(dirfd, path, flags, mode) };
    }
    unsafe { traced_open(path, flags, || real(dirfd, path, flags, mode)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let real = real!("openat64", OpenatFn);
    if dirfd != libc::AT_FDCWD {
        return unsafe { real(dirfd, path, flags, mode) };
    }
    unsafe { traced_open(path, flags, || real(dirfd, path, flags, mode)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat(path: *const c_char, mode: mode_t) -> c_int {
    unsafe { open(path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat64(path: *const c_char, mode: mode_t) -> c_int {
    unsafe { open64(path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode) }
}

/// A write of `len` bytes at `offset` (`None`: the descriptor's position) through `write`.
unsafe fn traced_write(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    offset: Option<off_t>,
    write: impl FnOnce() -> ssize_t,
) -> ssize_t {
    if Some(fd) == ack_fd() && !buf.is_null() {
        // SAFETY: the caller's buffer of `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        if bytes.split(|&b| b == b'\n').any(|line| line == b"ready") {
            on_ready();
        }
    }
    let Some(t) = tracer() else { return write() };
    if Some(fd) == ack_fd() {
        // SAFETY: the caller's buffer of `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        t.ack_lines(bytes, true);
        let n = write();
        if n > 0 {
            t.ack_lines(&bytes[..n as usize], false);
        }
        return n;
    }
    let Some(file) = t.file(fd) else { return write() };
    if let Some(errno) = t.count_op() {
        return failed(errno);
    }
    // SAFETY: lseek(2) on the caller's descriptor (libc's, not interposed).
    let at = offset.unwrap_or_else(|| unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) });
    let order = t.stamp();
    let n = write();
    if n > 0 {
        // SAFETY: the first `n` bytes of the caller's buffer were written.
        let data = unsafe { std::slice::from_raw_parts(buf as *const u8, n as usize) };
        t.emit_frame(&trace_format::write_frame(order, file, at as u64, data));
    }
    n
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t {
    let real = real!("write", WriteFn);
    unsafe { traced_write(fd, buf, len, None, || real(fd, buf, len)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, len: size_t, offset: off_t) -> ssize_t {
    let real = real!("pwrite", PwriteFn);
    unsafe { traced_write(fd, buf, len, Some(offset), || real(fd, buf, len, offset)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, len: size_t, offset: off_t) -> ssize_t {
    let real = real!("pwrite64", PwriteFn);
    unsafe { traced_write(fd, buf, len, Some(offset), || real(fd, buf, len, offset)) }
}

/// `pwritev` as one write of the gathered buffers.
unsafe fn traced_pwritev(fd: c_int, iov: *const iovec, count: c_int, offset: off_t, real: PwritevFn) -> ssize_t {
    let Some(t) = tracer() else { return unsafe { real(fd, iov, count, offset) } };
    let Some(file) = t.file(fd) else { return unsafe { real(fd, iov, count, offset) } };
    if let Some(errno) = t.count_op() {
        return failed(errno);
    }
    // SAFETY: the caller's `count` buffers.
    let parts = unsafe { std::slice::from_raw_parts(iov, count.max(0) as usize) };
    let gathered: Vec<u8> = parts
        .iter()
        .flat_map(|v| unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) })
        .copied()
        .collect();
    let order = t.stamp();
    let n = unsafe { real(fd, iov, count, offset) };
    if n > 0 {
        t.emit_frame(&trace_format::write_frame(order, file, offset as u64, &gathered[..n as usize]));
    }
    n
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwritev(fd: c_int, iov: *const iovec, count: c_int, offset: off_t) -> ssize_t {
    let real = real!("pwritev", PwritevFn);
    unsafe { traced_pwritev(fd, iov, count, offset, real) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwritev64(fd: c_int, iov: *const iovec, count: c_int, offset: off_t) -> ssize_t {
    let real = real!("pwritev64", PwritevFn);
    unsafe { traced_pwritev(fd, iov, count, offset, real) }
}

/// A sync: of a traced file (`flags`), or of the database's directory.
unsafe fn traced_sync(fd: c_int, flags: i32, sync: impl FnOnce() -> c_int) -> c_int {
    let Some(t) = tracer() else { return sync() };
    let Some(tracked) = t.tracked(fd) else { return sync() };
    if let Tracked::File { .. } = tracked
        && let Some(errno) = t.count_op()
    {
        return failed(errno);
    }
    let rc = sync();
    if rc == 0 {
        let record = match tracked {
            Tracked::File { file } => Record::Sync { file, flags },
            Tracked::Dir => Record::DirSync { path: t.db.clone() },
        };
        t.emit(t.stamp(), &record);
    }
    rc
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    let real = real!("fsync", FdFn);
    unsafe { traced_sync(fd, SYNC_NORMAL, || real(fd)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    let real = real!("fdatasync", FdFn);
    unsafe { traced_sync(fd, SYNC_NORMAL | SYNC_DATAONLY, || real(fd)) }
}

unsafe fn traced_truncate(fd: c_int, size: off_t, truncate: impl FnOnce() -> c_int) -> c_int {
    let Some(t) = tracer() else { return truncate() };
    let Some(file) = t.file(fd) else { return truncate() };
    if let Some(errno) = t.count_op() {
        return failed(errno);
    }
    let order = t.stamp();
    let rc = truncate();
    if rc == 0 {
        t.emit(order, &Record::Truncate { file, size: size as u64 });
    }
    rc
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftruncate(fd: c_int, size: off_t) -> c_int {
    let real = real!("ftruncate", TruncFn);
    unsafe { traced_truncate(fd, size, || real(fd, size)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftruncate64(fd: c_int, size: off_t) -> c_int {
    let real = real!("ftruncate64", TruncFn);
    unsafe { traced_truncate(fd, size, || real(fd, size)) }
}

unsafe fn traced_unlink(path: *const c_char, unlink: impl FnOnce() -> c_int) -> c_int {
    let Some(t) = tracer() else { return unlink() };
    // SAFETY: the caller passes libc a NUL-terminated path.
    let name = (!path.is_null()).then(|| unsafe { CStr::from_ptr(path) }.to_string_lossy().into_owned());
    let Some(name) = name.filter(|n| matches!(t.classify(n), Some(Some(_)))) else { return unlink() };
    let order = t.stamp();
    let rc = unlink();
    if rc == 0 {
        t.emit(order, &Record::Delete { path: name, dir_sync: false });
    }
    rc
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    let real = real!("unlink", UnlinkFn);
    unsafe { traced_unlink(path, || real(path)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    let real = real!("unlinkat", UnlinkatFn);
    if dirfd != libc::AT_FDCWD {
        return unsafe { real(dirfd, path, flags) };
    }
    unsafe { traced_unlink(path, || real(dirfd, path, flags)) }
}

type RenameFn = unsafe extern "C" fn(*const c_char, *const c_char) -> c_int;
type RenameatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char) -> c_int;
type Renameat2Fn = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, u32) -> c_int;

/// A rename: onto or away from a traced path, recorded as `Untraced` once it succeeded.
/// `from_dir`/`to_dir`: the directory descriptors the paths are relative to.
unsafe fn traced_rename(
    from_dir: c_int,
    from: *const c_char,
    to_dir: c_int,
    to: *const c_char,
    rename: impl FnOnce() -> c_int,
) -> c_int {
    let Some(t) = tracer() else { return rename() };
    let name = |dir: c_int, path: *const c_char| {
        // SAFETY: the caller passes libc NUL-terminated paths.
        let name = (!path.is_null()).then(|| unsafe { CStr::from_ptr(path) }.to_string_lossy().into_owned())?;
        (dir == libc::AT_FDCWD || name.starts_with('/')).then_some(name)
    };
    let (from, to) = (name(from_dir, from), name(to_dir, to));
    let traced = [&from, &to].into_iter().flatten().any(|n| matches!(t.classify(n), Some(Some(_))));
    let rc = rename();
    if rc == 0 && traced {
        let call = format!("rename {} -> {}", from.unwrap_or_default(), to.unwrap_or_default());
        t.emit(t.stamp(), &Record::Untraced { writer: t.writer, call });
    }
    rc
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rename(from: *const c_char, to: *const c_char) -> c_int {
    let real = real!("rename", RenameFn);
    unsafe { traced_rename(libc::AT_FDCWD, from, libc::AT_FDCWD, to, || real(from, to)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn renameat(from_dir: c_int, from: *const c_char, to_dir: c_int, to: *const c_char) -> c_int {
    let real = real!("renameat", RenameatFn);
    unsafe { traced_rename(from_dir, from, to_dir, to, || real(from_dir, from, to_dir, to)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn renameat2(
    from_dir: c_int,
    from: *const c_char,
    to_dir: c_int,
    to: *const c_char,
    flags: u32,
) -> c_int {
    let real = real!("renameat2", Renameat2Fn);
    unsafe { traced_rename(from_dir, from, to_dir, to, || real(from_dir, from, to_dir, to, flags)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    let real = real!("close", FdFn);
    let Some(t) = tracer() else { return unsafe { real(fd) } };
    let tracked = t.fds.remove(t.writer, fd);
    let rc = unsafe { real(fd) };
    if let Some(Tracked::File { file }) = tracked {
        t.emit(t.stamp(), &Record::Close { file });
    }
    rc
}

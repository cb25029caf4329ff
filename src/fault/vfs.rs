//! The tracing and fault-injecting VFS (power loss, crash points, I/O errors): a shim registered as
//! [`VFS_NAME`] over SQLite's `unix` VFS. It owns the only view the harness has of a writer's file
//! I/O: every call passes through to `unix`, and for the main database, its rollback journal and
//! its WAL it appends to the trial's trace ([`super::trace`]) what the call did. It can also SIGKILL its
//! own process, or fail a call, at the n-th counted operation.
//!
//! # Invariants
//!
//! - **A record in the trace always happened**: it is appended after the real call returned
//!   success, copied into the trace's shared log ([`super::trace::TraceLog`]). A failed real
//!   call leaves no record. A trace append that fails aborts the process: a trace with a hole in the middle
//!   would replay into files that never existed, which is worse than no trial at all (the driver
//!   sees SIGABRT, an unexplained death, and calls the trial inconclusive).
//! - **No byte of a traced file changes behind the trace's back.** unix changes a file only in
//!   `xWrite` and `xTruncate`, except through two settings that this shim turns off:
//!   memory-mapped I/O (with `mmap_size > 0`, `SQLITE_FCNTL_SIZE_HINT` extends the database with
//!   `ftruncate`) and a chunk size (`SQLITE_FCNTL_CHUNK_SIZE` rounds `xTruncate` up and
//!   preallocates in size hints). `SQLITE_FCNTL_MMAP_SIZE` is clamped to 0 for every file, so
//!   `PRAGMA mmap_size` reads back 0 whatever was asked, and `SQLITE_FCNTL_CHUNK_SIZE` reaches
//!   unix as 0 for traced files. `xFetch` also returns a NULL page with `SQLITE_OK`, which tells
//!   the pager "no mapping, use `xRead`": even if a mapping existed, no page would be handed out
//!   of it, so every read goes through `xRead` and every write through `xWrite` — what the
//!   crash-image builder and the oracle reason on. `xUnfetch` passes through, which is consistent:
//!   SQLite only unfetches pages it fetched (none), or calls it with a NULL page to unmap, which
//!   is a no-op on a file that never mapped.
//! - **Every file name SQLite creates or removes for a traced kind is in the trace**: `Open`
//!   with `created`, `Delete`, and the directory syncs unix does (see below). The `-shm` file is
//!   never traced: unix opens it itself and SQLite reaches it only through `xShmMap`'s mapping,
//!   never through `xWrite`; crash images discard it.
//!
//! # What is traced
//!
//! A file is traced when it has a name and its `xOpen` flags say `SQLITE_OPEN_MAIN_DB`,
//! `SQLITE_OPEN_MAIN_JOURNAL` or `SQLITE_OPEN_WAL`. Everything else (temporary files, which have
//! no name, statement journals, super-journals) passes through with no record, with one
//! exception: unix fsyncs the directory once, at the first successful `xSync` of any journal,
//! WAL or super-journal opened with `SQLITE_OPEN_CREATE` (`isNewJrnl` and `UNIXFILE_DIRSYNC` in
//! `unixOpen`/`unixSync`), and that sync makes every name change before it in the directory
//! durable, so it is recorded as [`Record::DirSync`] whichever file triggered it.
//!
//! `xDelete` cannot know what kind of file a name was. It traces the deletion of a path that
//! ends in `-journal` or `-wal`, or that this process opened as a traced file before (the set
//! of those paths only grows, bounded by the databases a writer opens). The record is appended
//! when the unlink happened: on `SQLITE_OK`, or on `SQLITE_IOERR_DIR_FSYNC` (unlinked, then the
//! directory fsync failed: recorded with `dir_sync: false` and no `DirSync`).
//!
//! Counted **operations** are `xWrite`, `xSync` and `xTruncate` on traced files, numbered 1, 2,
//! 3… across the process by one `fetch_add` at the start of each call; [`Injection`] picks them
//! by number. An injected failure is recorded as [`Record::Injected`] and the operation is not
//! carried out; an injected crash kills the process before the operation.
//!
//! # How the shim is built (and the traps it avoids)
//!
//! - **File layout.** SQLite allocates `szOsFile` bytes per file and hands them to `xOpen`. Ours
//!   is a `#[repr(C)]` `ShimFile`: the `sqlite3_file` header SQLite reads (`pMethods`), our
//!   per-file state, then the real unix file, which starts at `offset_of!(ShimFile, real)` (a
//!   multiple of 8, the alignment of `sqlite3_file`) and runs past the end of the Rust struct:
//!   `szOsFile` is that offset plus unix's own `szOsFile`. The real `xOpen` is called with the
//!   real VFS and a pointer to that inner file, and with SQLite's own `zName` pointer, not a
//!   copy: unix finds URI parameters and the database name by looking around that pointer.
//! - **A failed open.** `pMethods` is set to NULL before anything else and set to ours only
//!   when the real `xOpen` succeeded and gave the real file methods, so SQLite never calls our
//!   `xClose` on a file that was not opened. (A real open that failed but left methods set is
//!   closed here.)
//! - **WAL needs `iVersion` 3.** SQLite only uses WAL when the main database's methods have
//!   `xShmMap` (else `journal_mode=WAL` silently stays a rollback journal), and only calls
//!   `xFetch` from version 3. Ours are version 3 and pass the shm calls through; a real file
//!   without `xShmMap` (unix gives its journals and WALs the no-lock methods, which have none)
//!   gets a copy of our methods without shm, so SQLite sees exactly unix's capabilities.
//! - **Lifetimes.** The `sqlite3_vfs` is leaked (SQLite keeps the pointer and links it into its
//!   list); the two method tables are statics.
//! - **Threads.** One writer process may run several connections on several threads. SQLite
//!   never calls one file object from two threads at once (a file belongs to one connection,
//!   whose mutex is held), but different files run concurrently: global state is a `OnceLock`
//!   and atomics, a trace append is one reservation and one copy, and the one per-file field
//!   that changes after open is an `AtomicBool`.
//! - **The hot path.** `xWrite` on a traced file does one `fetch_add`, the real write, one
//!   allocation (the frame, sized up front, with the data copied straight into it by a borrowed
//!   twin of [`Record::Write`] whose encoding is tested equal to the real one) and one copy into
//!   the shared log: no system call beyond the real write.

use super::trace::{FileId, FileKind, FileRef, Record};
use super::trace_format::write_frame;
use rusqlite::ffi;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::ffi::{CStr, OsStr, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The name writers pass to `Connection::open_with_flags_and_vfs`.
pub const VFS_NAME: &str = "crashfuzz-trace";
const VFS_NAME_C: &CStr = c"crashfuzz-trace";

/// The error an injected failure returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoErrorKind {
    /// `SQLITE_IOERR_WRITE`, `SQLITE_IOERR_FSYNC` or `SQLITE_IOERR_TRUNCATE`, by operation.
    Ioerr,
    /// `SQLITE_FULL`, whatever the operation.
    Full,
}

/// The fault a writer's VFS injects, by operation number (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Injection {
    None,
    /// SIGKILL this very process just before carrying out operation number `op`.
    CrashAt {
        op: u64,
    },
    /// Fail operation `op` (once) or every operation from `op` on (persistent).
    FailAt {
        op: u64,
        error: IoErrorKind,
        persistent: bool,
    },
}

/// What [`register`] needs: the writer id stamped on file handles and injections, the trial's
/// trace file (created if missing, appended to), and the fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfsConfig {
    pub writer: u64,
    pub trace_path: PathBuf,
    pub injection: Injection,
}

/// A counted operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Write,
    Sync,
    Truncate,
}

/// What to do with a counted operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Proceed,
    Crash,
    /// Do not carry it out; return this SQLite code.
    Fail(c_int),
}

/// The injection decision for operation number `number` (pure: the whole fault logic).
fn decide(number: u64, op: Op, injection: Injection) -> Action {
    match injection {
        Injection::None => Action::Proceed,
        Injection::CrashAt { op: at } => {
            if number == at {
                Action::Crash
            } else {
                Action::Proceed
            }
        }
        Injection::FailAt { op: at, error, persistent } => {
            let hit = if persistent { number >= at } else { number == at };
            if !hit {
                return Action::Proceed;
            }
            Action::Fail(match (error, op) {
                (IoErrorKind::Full, Op::Write | Op::Sync | Op::Truncate) => ffi::SQLITE_FULL,
                (IoErrorKind::Ioerr, Op::Write) => ffi::SQLITE_IOERR_WRITE,
                (IoErrorKind::Ioerr, Op::Sync) => ffi::SQLITE_IOERR_FSYNC,
                (IoErrorKind::Ioerr, Op::Truncate) => ffi::SQLITE_IOERR_TRUNCATE,
            })
        }
    }
}

/// The `unix` VFS. SQLite's built-in VFS objects are statics that live as long as the process.
#[derive(Clone, Copy)]
struct RealVfs(*mut ffi::sqlite3_vfs);

// SAFETY: the pointer is to SQLite's static `unix` VFS object, never freed and never written by
// us; its methods may be called from any thread (SQLITE_THREADSAFE=1, and they are stateless or
// guard their state with SQLite's own mutexes).
unsafe impl Send for RealVfs {}
// SAFETY: as above: shared use only reads the pointer.
unsafe impl Sync for RealVfs {}

/// Process-wide state, set once by [`register`].
struct Global {
    writer: u64,
    injection: Injection,
    trace_path: PathBuf,
    /// The trial's shared log and order stamps, shared with every other process tracing into
    /// the same file.
    trace: super::trace::TraceLog,
    real: RealVfs,
    ops: AtomicU64,
    injected: AtomicU64,
    next_handle: AtomicU32,
    /// Paths opened as traced files, so that their `xDelete` is traced whatever their name.
    traced_paths: Mutex<HashSet<Box<str>>>,
}

static GLOBAL: OnceLock<Global> = OnceLock::new();

/// Registers the VFS under [`VFS_NAME`] (not as the default), once per process: a second call
/// is an error, whatever its configuration.
pub fn register(cfg: VfsConfig) -> Result<(), String> {
    let trace = super::trace::TraceLog::open(&cfg.trace_path)
        .map_err(|e| format!("trace {}: {e}", cfg.trace_path.display()))?;
    // SAFETY: sqlite3_vfs_find initializes SQLite if needed and reads its VFS list under its mutex.
    let real = unsafe { ffi::sqlite3_vfs_find(c"unix".as_ptr()) };
    if real.is_null() {
        return Err("SQLite has no `unix` VFS".to_string());
    }
    let global = Global {
        writer: cfg.writer,
        injection: cfg.injection,
        trace_path: cfg.trace_path,
        trace,
        real: RealVfs(real),
        ops: AtomicU64::new(0),
        injected: AtomicU64::new(0),
        next_handle: AtomicU32::new(1),
        traced_paths: Mutex::new(HashSet::new()),
    };
    GLOBAL.set(global).map_err(|_| format!("VFS {VFS_NAME} is already registered in this process"))?;
    // SAFETY: `real` is SQLite's static unix VFS (non-null, checked above), only read here.
    let r = unsafe { &*real };
    let sz_os_file = c_int::try_from(REAL_OFFSET).ok().and_then(|h| h.checked_add(r.szOsFile));
    let Some(sz_os_file) = sz_os_file else {
        return Err(format!("szOsFile overflows: {REAL_OFFSET} + {}", r.szOsFile));
    };
    // Each optional method is ours exactly when unix has it, so SQLite sees unix's capabilities.
    let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
        iVersion: r.iVersion,
        szOsFile: sz_os_file,
        mxPathname: r.mxPathname,
        pNext: ptr::null_mut(),
        zName: VFS_NAME_C.as_ptr(),
        pAppData: real.cast(),
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: if r.xDlOpen.is_some() { Some(x_dl_open) } else { None },
        xDlError: if r.xDlError.is_some() { Some(x_dl_error) } else { None },
        xDlSym: if r.xDlSym.is_some() { Some(x_dl_sym) } else { None },
        xDlClose: if r.xDlClose.is_some() { Some(x_dl_close) } else { None },
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: if r.xGetLastError.is_some() { Some(x_get_last_error) } else { None },
        xCurrentTimeInt64: if r.xCurrentTimeInt64.is_some() { Some(x_current_time_int64) } else { None },
        xSetSystemCall: if r.xSetSystemCall.is_some() { Some(x_set_system_call) } else { None },
        xGetSystemCall: if r.xGetSystemCall.is_some() { Some(x_get_system_call) } else { None },
        xNextSystemCall: if r.xNextSystemCall.is_some() { Some(x_next_system_call) } else { None },
    }));
    // SAFETY: `vfs` is leaked, so it outlives every connection; SQLite links it into its list
    // under its mutex and never frees it. makeDflt = 0: only connections that name it use it.
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
    if rc != ffi::SQLITE_OK {
        return Err(format!("sqlite3_vfs_register({VFS_NAME}): code {rc}"));
    }
    Ok(())
}

/// Appends `record` to the trace (the writer's `Begin` and `Ack` records) with a fresh stamp.
/// An error when the VFS is not registered.
pub fn append(record: &Record) -> std::io::Result<()> {
    registered()?.trace.append(record)
}

/// Starts this process's trace afresh ([`super::trace::TraceLog::restart`]): only for a
/// process that traces alone. An error when the VFS is not registered.
pub fn restart_trace() -> std::io::Result<()> {
    registered()?.trace.restart();
    Ok(())
}

/// The VFS's state, or an error when it is not registered in this process.
fn registered() -> std::io::Result<&'static Global> {
    GLOBAL.get().ok_or_else(|| std::io::Error::other(format!("VFS {VFS_NAME} is not registered")))
}

/// Counted operations so far (attempted, injected or not).
pub fn ops() -> u64 {
    GLOBAL.get().map_or(0, |g| g.ops.load(Ordering::SeqCst))
}

/// Operations failed on purpose so far.
pub fn injected() -> u64 {
    GLOBAL.get().map_or(0, |g| g.injected.load(Ordering::SeqCst))
}

/// Appends one frame, or aborts (see the module doc: a hole in the trace is not survivable).
fn emit(g: &Global, frame: &[u8]) {
    if let Err(e) = g.trace.append_frame(frame) {
        eprintln!(
            "{VFS_NAME}: cannot append to the trace {}: {e}; aborting, as a trace with a hole would replay wrong",
            g.trace_path.display()
        );
        std::process::abort();
    }
}

/// Appends `record` with the order stamp `order`, taken before its operation started.
fn emit_record(g: &Global, order: u64, record: &Record) {
    emit(g, &record.frame_at(order));
}

/// Counts an operation and applies the injection: `Ok` to go on, `Err(code)` when it was failed
/// on purpose (recorded). Never returns on a crash.
fn begin_op(g: &Global, op: Op) -> Result<(), c_int> {
    let number = g.ops.fetch_add(1, Ordering::SeqCst) + 1;
    match decide(number, op, g.injection) {
        Action::Proceed => Ok(()),
        Action::Crash => crash_now(),
        Action::Fail(code) => {
            g.injected.fetch_add(1, Ordering::SeqCst);
            emit_record(g, g.trace.stamp(), &Record::Injected { writer: g.writer, op: number, code });
            Err(code)
        }
    }
}

/// SIGKILLs this process. SIGKILL cannot be caught, blocked or ignored, and a signal a process
/// sends itself is delivered before `kill` returns; Linux then kills every thread. A syscall
/// another thread is already inside may complete: that operation happened, and its record, if
/// it gets that far, is true. The abort is only reached if `kill` itself failed.
fn crash_now() -> ! {
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    std::process::abort()
}

// ---------------------------------------------------------------------------------------------
// The file object.

/// What SQLite allocates per file (`szOsFile` bytes): see the module doc.
#[repr(C)]
struct ShimFile {
    /// What SQLite reads: our methods, or NULL when the open failed.
    base: ffi::sqlite3_file,
    /// Written by a successful `xOpen`, moved out by `xClose`; uninitialized otherwise.
    meta: FileMeta,
    /// The first field of the real unix file; the rest of it follows in the same allocation.
    real: ffi::sqlite3_file,
}

/// Where the real file starts inside ours.
const REAL_OFFSET: usize = std::mem::offset_of!(ShimFile, real);
const _: () = assert!(REAL_OFFSET % 8 == 0, "the real file must be 8-byte aligned");

struct FileMeta {
    /// `Some` for traced files.
    traced: Option<FileRef>,
    /// The path of a journal, WAL or super-journal opened with `SQLITE_OPEN_CREATE`: unix
    /// fsyncs its directory at its first successful `xSync`.
    dir_sync_path: Option<Box<str>>,
    /// True until that first successful `xSync`.
    dir_sync_pending: AtomicBool,
}

/// The real unix file inside `file`.
///
/// # Safety
/// `file` points to an allocation of our `szOsFile` bytes handed out by SQLite.
unsafe fn real_file(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: per the contract, the allocation holds a ShimFile header and the real file after
    // it; a raw field projection keeps the provenance of the whole allocation.
    unsafe { ptr::addr_of_mut!((*file.cast::<ShimFile>()).real) }
}

/// Our per-file state.
///
/// # Safety
/// `file` is open: our `xOpen` succeeded on it and our `xClose` has not run.
unsafe fn meta<'a>(file: *mut ffi::sqlite3_file) -> &'a FileMeta {
    // SAFETY: xOpen initialized `meta` before setting our pMethods, and SQLite only calls file
    // methods (other than xClose, which moves it out last) while pMethods is set.
    unsafe { &*ptr::addr_of!((*file.cast::<ShimFile>()).meta) }
}

/// The real file and its methods.
///
/// # Safety
/// `file` is open (see [`meta`]).
unsafe fn real(file: *mut ffi::sqlite3_file) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    // SAFETY: an open file's real part was opened successfully by unix with non-null methods,
    // which are unix statics.
    unsafe {
        let real = real_file(file);
        (real, &*(*real).pMethods)
    }
}

/// The kind of file an `xOpen` opens, from its flags.
fn file_kind(flags: c_int) -> FileKind {
    match flags & 0x000f_ff00 {
        ffi::SQLITE_OPEN_MAIN_DB => FileKind::MainDb,
        ffi::SQLITE_OPEN_MAIN_JOURNAL => FileKind::MainJournal,
        ffi::SQLITE_OPEN_WAL => FileKind::Wal,
        _ => FileKind::Other,
    }
}

/// unix's `isNewJrnl`: it will fsync the directory at this file's first successful sync.
fn unix_dir_syncs(flags: c_int) -> bool {
    let kind = flags & 0x000f_ff00;
    flags & ffi::SQLITE_OPEN_CREATE != 0
        && (kind == ffi::SQLITE_OPEN_MAIN_JOURNAL
            || kind == ffi::SQLITE_OPEN_WAL
            || kind == ffi::SQLITE_OPEN_SUPER_JOURNAL)
}

/// The deletion rule of the module doc.
fn delete_is_traced(g: &Global, path: &str) -> bool {
    path.ends_with("-journal")
        || path.ends_with("-wal")
        || g.traced_paths.lock().unwrap_or_else(|p| p.into_inner()).contains(path)
}

// ---------------------------------------------------------------------------------------------
// VFS methods.

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite hands xOpen `szOsFile` writable bytes; pMethods is the first field. It is
    // NULL until the very end, so SQLite never calls xClose on a file we did not open.
    unsafe { ptr::addr_of_mut!((*file).pMethods).write(ptr::null()) };
    let Some(g) = GLOBAL.get() else { return ffi::SQLITE_ERROR };
    let real_vfs = g.real.0;
    // SAFETY: the unix VFS is a live static.
    let Some(real_open) = (unsafe { (*real_vfs).xOpen }) else { return ffi::SQLITE_ERROR };
    // SAFETY: a non-null zName is a NUL-terminated string that outlives the file.
    let path = (!name.is_null()).then(|| unsafe { CStr::from_ptr(name) });
    let kind = file_kind(flags);
    let traced_path = match kind {
        FileKind::MainDb | FileKind::MainJournal | FileKind::Wal => path,
        FileKind::Other => None,
    };
    // Checked before the real open, which creates it. Another process could create the same
    // name in between; for these kinds SQLite holds a lock that excludes that (the journal and
    // the WAL are only created under a write lock, the database by whoever opens it first).
    let existed = traced_path.map(|p| Path::new(OsStr::from_bytes(p.to_bytes())).exists());
    // A change: stamped before it starts (see `trace`, "order across processes").
    let order = g.trace.stamp();
    // SAFETY: `file` is the allocation SQLite gave xOpen.
    let real = unsafe { real_file(file) };
    // SAFETY: the real VFS gets its own object and the inner file of our allocation, which has
    // room for unix's szOsFile bytes; name, flags and out_flags are SQLite's own.
    let rc = unsafe { real_open(real_vfs, name, real, flags, out_flags) };
    // SAFETY: unix sets pMethods (to methods or NULL) whatever happens.
    let real_methods = unsafe { (*real).pMethods };
    if rc != ffi::SQLITE_OK || real_methods.is_null() {
        if !real_methods.is_null() {
            // Not what unix does, but a VFS that failed yet left methods set must be closed by
            // someone, and SQLite will not call xClose on our NULL-method file.
            // SAFETY: the real file has methods (static ones), so it is open as far as its VFS
            // is concerned, and closing it once here is the only close it gets.
            unsafe {
                if let Some(close) = (*real_methods).xClose {
                    close(real);
                }
            }
        }
        return rc;
    }
    let traced =
        traced_path.map(|_| FileRef { writer: g.writer, handle: g.next_handle.fetch_add(1, Ordering::SeqCst) });
    let dir_syncs = unix_dir_syncs(flags) && path.is_some();
    let meta = FileMeta {
        traced,
        dir_sync_path: path.filter(|_| dir_syncs).map(|p| p.to_string_lossy().into()),
        dir_sync_pending: AtomicBool::new(dir_syncs),
    };
    // SAFETY: `real_methods` is non-null: unix's static methods.
    let real_methods = unsafe { &*real_methods };
    let methods: &'static ffi::sqlite3_io_methods =
        if real_methods.iVersion >= 2 && real_methods.xShmMap.is_some() { &IO_METHODS } else { &IO_METHODS_NO_SHM };
    // SAFETY: our header fields are in the allocation SQLite gave us; `meta` is written once
    // here and moved out once in xClose.
    unsafe {
        ptr::addr_of_mut!((*file.cast::<ShimFile>()).meta).write(meta);
        ptr::addr_of_mut!((*file).pMethods).write(methods);
    }
    if let (Some(file_ref), Some(p), Some(existed)) = (traced, traced_path, existed) {
        let path = p.to_string_lossy().into_owned();
        g.traced_paths.lock().unwrap_or_else(|p| p.into_inner()).insert(path.as_str().into());
        // The file it opened, read right after: two handles of one file are one file in the
        // model, however many processes believed they created it. (Between the open and this
        // `stat` SQLite's locks keep the name from being unlinked or replaced: the journal and
        // the WAL are deleted only by a process holding the exclusive lock.)
        let id = std::fs::metadata(&path).ok().map(|m| FileId { dev: m.dev(), ino: m.ino() });
        emit_record(g, order, &Record::Open { file: file_ref, path, kind, created: !existed, id });
    }
    rc
}

unsafe extern "C" fn x_delete(_vfs: *mut ffi::sqlite3_vfs, name: *const c_char, dir_sync: c_int) -> c_int {
    let Some(g) = GLOBAL.get() else { return ffi::SQLITE_ERROR };
    let order = g.trace.stamp();
    // SAFETY: the unix VFS is a live static; SQLite's arguments pass through unchanged.
    let rc = unsafe {
        match (*g.real.0).xDelete {
            Some(f) => f(g.real.0, name, dir_sync),
            None => return ffi::SQLITE_ERROR,
        }
    };
    // unix unlinks first, then fsyncs the directory: IOERR_DIR_FSYNC means the name is gone.
    let unlinked = rc == ffi::SQLITE_OK || rc == ffi::SQLITE_IOERR_DIR_FSYNC;
    if !unlinked || name.is_null() {
        return rc;
    }
    // SAFETY: a non-null name from SQLite is NUL-terminated.
    let path = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    if delete_is_traced(g, &path) {
        let synced = rc == ffi::SQLITE_OK && dir_sync & 1 != 0;
        emit_record(g, order, &Record::Delete { path: path.clone().into_owned(), dir_sync: synced });
        if synced {
            // A sync: stamped after it returned.
            emit_record(g, g.trace.stamp(), &Record::DirSync { path: path.into_owned() });
        }
    }
    rc
}

/// The unix VFS and one of its methods, if registered and present.
fn unix_method<F>(pick: impl FnOnce(&ffi::sqlite3_vfs) -> Option<F>) -> Option<(*mut ffi::sqlite3_vfs, F)> {
    let unix = GLOBAL.get()?.real.0;
    // SAFETY: the unix VFS is a live static, only read here.
    let method = pick(unsafe { &*unix })?;
    Some((unix, method))
}

/// Pass-through VFS methods: the same call on the unix VFS, with the unix VFS object.
macro_rules! pass_vfs {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?, $missing:expr) => {
        unsafe extern "C" fn $name(_vfs: *mut ffi::sqlite3_vfs, $($arg: $ty),*) $(-> $ret)? {
            match unix_method(|v| v.$method) {
                // SAFETY: unix's own method on unix's own object; SQLite's arguments, unchanged.
                Some((unix, f)) => unsafe { f(unix, $($arg),*) },
                None => $missing,
            }
        }
    };
}

pass_vfs!(x_access, xAccess, (name: *const c_char, flags: c_int, out: *mut c_int) -> c_int, ffi::SQLITE_ERROR);
pass_vfs!(x_full_pathname, xFullPathname, (name: *const c_char, n: c_int, out: *mut c_char) -> c_int, ffi::SQLITE_ERROR);
pass_vfs!(x_dl_open, xDlOpen, (name: *const c_char) -> *mut c_void, ptr::null_mut());
pass_vfs!(x_dl_error, xDlError, (n: c_int, out: *mut c_char), ());
pass_vfs!(x_dl_close, xDlClose, (handle: *mut c_void), ());
pass_vfs!(x_randomness, xRandomness, (n: c_int, out: *mut c_char) -> c_int, 0);
pass_vfs!(x_sleep, xSleep, (us: c_int) -> c_int, 0);
pass_vfs!(x_current_time, xCurrentTime, (out: *mut f64) -> c_int, ffi::SQLITE_ERROR);
pass_vfs!(x_get_last_error, xGetLastError, (n: c_int, out: *mut c_char) -> c_int, 0);
pass_vfs!(x_current_time_int64, xCurrentTimeInt64, (out: *mut ffi::sqlite3_int64) -> c_int, ffi::SQLITE_ERROR);
pass_vfs!(x_set_system_call, xSetSystemCall, (name: *const c_char, f: ffi::sqlite3_syscall_ptr) -> c_int, ffi::SQLITE_ERROR);
pass_vfs!(x_get_system_call, xGetSystemCall, (name: *const c_char) -> ffi::sqlite3_syscall_ptr, None);
pass_vfs!(x_next_system_call, xNextSystemCall, (name: *const c_char) -> *const c_char, ptr::null());

/// `xDlSym`'s return type, as bindgen spells it.
type DlSym = Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)>;
pass_vfs!(x_dl_sym, xDlSym, (handle: *mut c_void, symbol: *const c_char) -> DlSym, None);

// ---------------------------------------------------------------------------------------------
// File methods.

/// With `xShmMap` and friends: for files whose real methods have them (the main database).
static IO_METHODS: ffi::sqlite3_io_methods = io_methods(true);
/// Without: for files whose real methods lack them (unix's no-lock journals and WALs).
static IO_METHODS_NO_SHM: ffi::sqlite3_io_methods = io_methods(false);

const fn io_methods(shm: bool) -> ffi::sqlite3_io_methods {
    ffi::sqlite3_io_methods {
        iVersion: 3,
        xClose: Some(x_close),
        xRead: Some(x_read),
        xWrite: Some(x_write),
        xTruncate: Some(x_truncate),
        xSync: Some(x_sync),
        xFileSize: Some(x_file_size),
        xLock: Some(x_lock),
        xUnlock: Some(x_unlock),
        xCheckReservedLock: Some(x_check_reserved_lock),
        xFileControl: Some(x_file_control),
        xSectorSize: Some(x_sector_size),
        xDeviceCharacteristics: Some(x_device_characteristics),
        xShmMap: if shm { Some(x_shm_map) } else { None },
        xShmLock: if shm { Some(x_shm_lock) } else { None },
        xShmBarrier: if shm { Some(x_shm_barrier) } else { None },
        xShmUnmap: if shm { Some(x_shm_unmap) } else { None },
        xFetch: Some(x_fetch),
        xUnfetch: Some(x_unfetch),
    }
}

/// Pass-through file methods: the same call on the real file.
macro_rules! pass_file {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?, $missing:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) $(-> $ret)? {
            // SAFETY: SQLite calls file methods only on open files; the arguments pass unchanged.
            unsafe {
                let (real, m) = real(file);
                match m.$method {
                    Some(f) => f(real, $($arg),*),
                    None => $missing,
                }
            }
        }
    };
}

pass_file!(x_read, xRead, (buf: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_READ);
pass_file!(x_file_size, xFileSize, (size: *mut ffi::sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_FSTAT);
pass_file!(x_lock, xLock, (level: c_int) -> c_int, ffi::SQLITE_IOERR_LOCK);
pass_file!(x_unlock, xUnlock, (level: c_int) -> c_int, ffi::SQLITE_IOERR_UNLOCK);
pass_file!(x_check_reserved_lock, xCheckReservedLock, (out: *mut c_int) -> c_int, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK);
pass_file!(x_sector_size, xSectorSize, () -> c_int, 512);
pass_file!(x_device_characteristics, xDeviceCharacteristics, () -> c_int, 0);
pass_file!(x_shm_map, xShmMap, (page: c_int, page_size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int, ffi::SQLITE_IOERR_SHMMAP);
pass_file!(x_shm_lock, xShmLock, (offset: c_int, n: c_int, flags: c_int) -> c_int, ffi::SQLITE_IOERR_SHMLOCK);
pass_file!(x_shm_barrier, xShmBarrier, (), ());
pass_file!(x_shm_unmap, xShmUnmap, (delete: c_int) -> c_int, ffi::SQLITE_OK);
// Only reached with a NULL page (SQLite never got one from us): unmap, a no-op without a mapping.
pass_file!(x_unfetch, xUnfetch, (offset: ffi::sqlite3_int64, page: *mut c_void) -> c_int, ffi::SQLITE_OK);

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xClose once on an open file and never touches it again (it clears
    // pMethods itself), so `meta` is moved out exactly once.
    let (rc, meta) = unsafe {
        let (real, m) = real(file);
        let rc = match m.xClose {
            Some(f) => f(real),
            None => ffi::SQLITE_OK,
        };
        (rc, ptr::addr_of_mut!((*file.cast::<ShimFile>()).meta).read())
    };
    // Recorded whatever unix returned: SQLite treats the file as closed either way.
    if let (Some(file_ref), Some(g)) = (meta.traced, GLOBAL.get()) {
        emit_record(g, g.trace.stamp(), &Record::Close { file: file_ref });
    }
    rc
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls file methods only on open files.
    let (meta, (real, m)) = unsafe { (meta(file), real(file)) };
    let Some(f) = m.xWrite else { return ffi::SQLITE_IOERR_WRITE };
    let (Some(file_ref), Some(g)) = (meta.traced, GLOBAL.get()) else {
        // SAFETY: an untraced file: the call passes through unchanged.
        return unsafe { f(real, buf, amount, offset) };
    };
    if let Err(code) = begin_op(g, Op::Write) {
        return code;
    }
    let order = g.trace.stamp();
    // SAFETY: SQLite's buffer and bounds, unchanged.
    let rc = unsafe { f(real, buf, amount, offset) };
    if rc == ffi::SQLITE_OK {
        let len = usize::try_from(amount).unwrap_or(0);
        // SAFETY: SQLite passes `amount` readable bytes at `buf` for the duration of the call.
        let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
        emit(g, &write_frame(order, file_ref, offset as u64, data));
    }
    rc
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: SQLite calls file methods only on open files.
    let (meta, (real, m)) = unsafe { (meta(file), real(file)) };
    let Some(f) = m.xTruncate else { return ffi::SQLITE_IOERR_TRUNCATE };
    let traced = meta.traced.zip(GLOBAL.get());
    if let Some((_, g)) = traced {
        if let Err(code) = begin_op(g, Op::Truncate) {
            return code;
        }
    }
    let order = traced.map(|(_, g)| g.trace.stamp());
    // SAFETY: the call passes through unchanged.
    let rc = unsafe { f(real, size) };
    if let (ffi::SQLITE_OK, Some((file_ref, g)), Some(order)) = (rc, traced, order) {
        emit_record(g, order, &Record::Truncate { file: file_ref, size: size as u64 });
    }
    rc
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite calls file methods only on open files.
    let (meta, (real, m)) = unsafe { (meta(file), real(file)) };
    let Some(f) = m.xSync else { return ffi::SQLITE_IOERR_FSYNC };
    let Some(g) = GLOBAL.get() else { return ffi::SQLITE_ERROR };
    if meta.traced.is_some() {
        if let Err(code) = begin_op(g, Op::Sync) {
            return code;
        }
    }
    // SAFETY: the call passes through unchanged.
    let rc = unsafe { f(real, flags) };
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    // A sync: stamped after it returned (see `trace`, "order across processes").
    if let Some(file_ref) = meta.traced {
        emit_record(g, g.trace.stamp(), &Record::Sync { file: file_ref, flags });
    }
    // unix clears UNIXFILE_DIRSYNC after its first successful fsync of the file, having
    // fsynced the directory (it ignores a directory it cannot open or sync).
    if meta.dir_sync_pending.swap(false, Ordering::SeqCst) {
        if let Some(path) = &meta.dir_sync_path {
            emit_record(g, g.trace.stamp(), &Record::DirSync { path: path.to_string() });
        }
    }
    rc
}

unsafe extern "C" fn x_file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    // SAFETY: SQLite calls file methods only on open files.
    let (meta, (real, m)) = unsafe { (meta(file), real(file)) };
    let Some(f) = m.xFileControl else { return ffi::SQLITE_NOTFOUND };
    let mut no_chunks: c_int = 0;
    let arg = match op {
        // In: the new limit (negative: only query). Out: the old one. A positive limit becomes
        // 0: no mapping, hence no size-hint ftruncate (module doc).
        ffi::SQLITE_FCNTL_MMAP_SIZE if !arg.is_null() => {
            // SAFETY: for this op, SQLite's argument is a valid `sqlite3_int64*`.
            unsafe {
                let limit = arg.cast::<ffi::sqlite3_int64>();
                if *limit > 0 {
                    *limit = 0;
                }
            }
            arg
        }
        // unix reads an int; give it 0 (no chunking) without writing to the caller's int.
        ffi::SQLITE_FCNTL_CHUNK_SIZE if meta.traced.is_some() => ptr::addr_of_mut!(no_chunks).cast(),
        _ => arg,
    };
    // SAFETY: the real file and SQLite's op; `arg` is SQLite's or points to our local int,
    // which outlives the call.
    unsafe { f(real, op, arg) }
}

unsafe extern "C" fn x_fetch(
    _file: *mut ffi::sqlite3_file,
    _offset: ffi::sqlite3_int64,
    _amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // No page from a mapping, ever: SQLite reads it with xRead instead (module doc).
    // SAFETY: `out` is SQLite's valid out-parameter.
    unsafe { *out = ptr::null_mut() };
    ffi::SQLITE_OK
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fault::trace;
    use crate::scenario::matrix::{JournalMode, Synchronous};
    use crate::writer::pragmas::{self, Pragmas};
    use crate::writer::session_store::{self, TxnWriter, WorkloadConfig};
    use proptest::prelude::*;
    use rusqlite::{Connection, OpenFlags};
    use std::collections::HashMap;
    use std::os::unix::fs::FileExt;
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    /// The writer id of the in-process registration.
    const TEST_WRITER: u64 = 1;
    /// The writer id of child processes.
    const CHILD_WRITER: u64 = 9;

    /// The one registration of the test process (Injection::None), with its trace in a leaked
    /// temporary directory. Tests run in parallel on it: each works in its own directory and
    /// reads back only the records of the files under it ([`records_in`]).
    pub(crate) fn shared_trace() -> &'static Path {
        static TRACE: OnceLock<PathBuf> = OnceLock::new();
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        /// Removes the trace's directory when the test process exits (a static is never
        /// dropped, and the trace holds every traced test's writes).
        extern "C" fn remove_dir() {
            if let Some(dir) = DIR.get() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        TRACE.get_or_init(|| {
            let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap().keep());
            // SAFETY: atexit(3) with a plain function that only reads a OnceLock and removes files.
            unsafe { libc::atexit(remove_dir) };
            let trace_path = dir.join("trace");
            register(VfsConfig { writer: TEST_WRITER, trace_path: trace_path.clone(), injection: Injection::None })
                .unwrap();
            trace_path
        })
    }

    /// A fresh directory, canonical (SQLite resolves symlinks in full path names).
    pub(crate) fn fresh_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().canonicalize().unwrap();
        (dir, path)
    }

    fn open_traced(db: &Path) -> Connection {
        Connection::open_with_flags_and_vfs(db, OpenFlags::default(), VFS_NAME).unwrap()
    }

    fn small_workload() -> WorkloadConfig {
        WorkloadConfig {
            seed_messages: 30,
            seed_sessions: 3,
            message_bytes_max: 6000,
            huge_message_per_mille: 0,
            cache_size_kib: 64,
            ..Default::default()
        }
    }

    fn pragmas_for(mode: JournalMode, sync: Synchronous) -> Pragmas {
        Pragmas {
            journal_mode: mode,
            synchronous: sync,
            busy_timeout_ms: 1000,
            cache_size_kib: 64,
            wal_autocheckpoint_pages: 24,
            fullfsync: crate::scenario::matrix::FullFsync::Off,
        }
    }

    /// The session store through the VFS: `synchronous` and `extra_sql`, schema, the other
    /// pragmas, seed, then `txns` transactions; the connection stays open.
    fn session_store(db: &Path, mode: JournalMode, sync: Synchronous, extra_sql: &str, txns: u32) -> Connection {
        let cfg = small_workload();
        let mut conn = open_traced(db);
        // Connection settings first, so that even the schema's transaction runs under them
        // (the journal mode waits: the page size must be set before WAL).
        conn.execute_batch(&format!("PRAGMA synchronous={}; {extra_sql}", sync.as_sql())).unwrap();
        session_store::create_schema(&conn, &cfg).unwrap();
        pragmas::apply(&conn, &pragmas_for(mode, sync)).unwrap();
        // `apply` sets fullfsync explicitly (off here): the test's own settings go on top.
        conn.execute_batch(extra_sql).unwrap();
        session_store::seed(&mut conn, &cfg, 3).unwrap();
        let mut w = TxnWriter::new(5, 4, &cfg);
        for _ in 0..txns {
            w.run_txn(&mut conn, &mut |_| {}).unwrap();
        }
        conn
    }

    /// The records of `trace` about files under `dir` (and nothing else), in order.
    pub(crate) fn filter_dir(trace: Vec<Record>, dir: &Path) -> Vec<Record> {
        crate::fault::io_counts::records_under(trace, dir)
    }

    fn records_in(dir: &Path) -> Vec<Record> {
        filter_dir(trace::read(shared_trace()).unwrap().records, dir)
    }

    /// Rebuilds, in `into`, the files the records describe (by file name).
    fn replay(records: &[Record], into: &Path) {
        let target = |path: &str| into.join(Path::new(path).file_name().unwrap());
        let mut files: HashMap<FileRef, PathBuf> = HashMap::new();
        let open = |files: &HashMap<FileRef, PathBuf>, f: &FileRef| {
            std::fs::OpenOptions::new().write(true).open(&files[f]).unwrap()
        };
        for r in records {
            match r {
                Record::Open { file, path, created, .. } => {
                    let t = target(path);
                    if *created {
                        std::fs::File::create(&t).unwrap();
                    } else {
                        assert!(t.exists(), "{path} opened as existing, but the replay never created it");
                    }
                    files.insert(*file, t);
                }
                Record::Write { file, offset, data } => open(&files, file).write_all_at(data, *offset).unwrap(),
                Record::Truncate { file, size } => open(&files, file).set_len(*size).unwrap(),
                Record::Delete { path, .. } => std::fs::remove_file(target(path)).unwrap(),
                Record::Sync { .. }
                | Record::DirSync { .. }
                | Record::Close { .. }
                | Record::Begin { .. }
                | Record::Ack { .. }
                | Record::Injected { .. } => {}
                Record::Untraced { call, .. } => panic!("the VFS traces every call it makes, not {call}"),
            }
        }
    }

    const DB_FILES: [&str; 3] = ["db.sqlite", "db.sqlite-journal", "db.sqlite-wal"];

    fn assert_same_files(real: &Path, replayed: &Path, what: &str) {
        assert!(real.join("db.sqlite").exists(), "{what}: no database");
        for name in DB_FILES {
            let a = std::fs::read(real.join(name)).ok();
            let b = std::fs::read(replayed.join(name)).ok();
            match (a, b) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    let diff = a.iter().zip(&b).position(|(x, y)| x != y);
                    assert!(
                        a == b,
                        "{what}: {name} differs: real {} bytes, replayed {}, first difference at {diff:?}",
                        a.len(),
                        b.len()
                    );
                }
                (a, b) => panic!("{what}: {name} exists on disk: {}, in the replay: {}", a.is_some(), b.is_some()),
            }
        }
    }

    fn handles_of(records: &[Record], kind: FileKind) -> HashSet<FileRef> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Open { file, kind: k, .. } if *k == kind => Some(*file),
                _ => None,
            })
            .collect()
    }

    fn syncs(records: &[Record], handles: &HashSet<FileRef>) -> Vec<i32> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Sync { file, flags } if handles.contains(file) => Some(*flags),
                _ => None,
            })
            .collect()
    }

    fn is_counted(r: &Record) -> bool {
        matches!(r, Record::Write { .. } | Record::Sync { .. } | Record::Truncate { .. })
    }

    // -- pure parts ------------------------------------------------------------------------

    #[test]
    fn decide_covers_every_injection() {
        use Action::{Crash, Fail, Proceed};
        assert_eq!(decide(5, Op::Write, Injection::None), Proceed);
        let crash = Injection::CrashAt { op: 5 };
        assert_eq!(decide(4, Op::Sync, crash), Proceed);
        assert_eq!(decide(5, Op::Sync, crash), Crash);
        assert_eq!(decide(6, Op::Sync, crash), Proceed);
        let once = Injection::FailAt { op: 5, error: IoErrorKind::Ioerr, persistent: false };
        assert_eq!(decide(4, Op::Write, once), Proceed);
        assert_eq!(decide(5, Op::Write, once), Fail(ffi::SQLITE_IOERR_WRITE));
        assert_eq!(decide(5, Op::Sync, once), Fail(ffi::SQLITE_IOERR_FSYNC));
        assert_eq!(decide(5, Op::Truncate, once), Fail(ffi::SQLITE_IOERR_TRUNCATE));
        assert_eq!(decide(6, Op::Write, once), Proceed);
        let full = Injection::FailAt { op: 5, error: IoErrorKind::Full, persistent: true };
        assert_eq!(decide(4, Op::Sync, full), Proceed);
        for (n, op) in [(5, Op::Write), (6, Op::Sync), (1000, Op::Truncate)] {
            assert_eq!(decide(n, op, full), Fail(ffi::SQLITE_FULL));
        }
    }

    #[test]
    fn injection_serializes_as_documented() {
        let i = Injection::FailAt { op: 3, error: IoErrorKind::Full, persistent: true };
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(json, r#"{"kind":"fail_at","op":3,"error":"full","persistent":true}"#);
        assert_eq!(serde_json::from_str::<Injection>(&json).unwrap(), i);
        assert_eq!(serde_json::to_string(&Injection::None).unwrap(), r#"{"kind":"none"}"#);
        assert_eq!(VFS_NAME_C.to_str().unwrap(), VFS_NAME);
    }

    proptest! {
        /// The hot path's borrowed frame is byte for byte the frame of `Record::Write`, and fits
        /// the capacity reserved for it (so it is one allocation).
        #[test]
        fn write_frame_is_the_record_frame(writer in any::<u64>(), handle in any::<u32>(), offset in any::<u64>(),
                                           order in any::<u64>(), data in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let file = FileRef { writer, handle };
            let frame = write_frame(order, file, offset, &data);
            prop_assert_eq!(&frame, &Record::Write { file, offset, data: data.clone() }.frame_at(order));
            prop_assert!(frame.len() <= crate::fault::trace_format::WRITE_FRAME_OVERHEAD_MAX + data.len());
        }
    }

    // -- in-process, through the shared registration ---------------------------------------

    #[test]
    fn a_second_registration_is_refused_and_append_shares_the_trace() {
        let trace_path = shared_trace();
        let again = register(VfsConfig { writer: 2, trace_path: trace_path.into(), injection: Injection::None });
        assert!(again.unwrap_err().contains("already registered"));
        append(&Record::Begin { writer: 4242, seq: 17 }).unwrap();
        append(&Record::Ack { writer: 4242, seq: 17 }).unwrap();
        let records = trace::read(trace_path).unwrap().records;
        let mine: Vec<_> = records
            .into_iter()
            .filter(|r| matches!(r, Record::Begin { writer: 4242, .. } | Record::Ack { writer: 4242, .. }))
            .collect();
        assert_eq!(mine, vec![Record::Begin { writer: 4242, seq: 17 }, Record::Ack { writer: 4242, seq: 17 }]);
    }

    /// A failed real open leaves our pMethods NULL (SQLite would otherwise call our xClose on
    /// garbage and crash) and no record.
    #[test]
    fn a_failed_open_is_clean_and_untraced() {
        shared_trace();
        let (_guard, dir) = fresh_dir();
        let missing_dir = dir.join("no/such/dir/db.sqlite");
        let err = Connection::open_with_flags_and_vfs(&missing_dir, OpenFlags::default(), VFS_NAME).unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::CannotOpen), "{err}");
        let read_only = OpenFlags::SQLITE_OPEN_READ_ONLY;
        let err = Connection::open_with_flags_and_vfs(dir.join("missing.sqlite"), read_only, VFS_NAME).unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::CannotOpen), "{err}");
        assert_eq!(records_in(&dir), vec![]);
    }

    /// Required test 1: WAL really is WAL through the shim, the WAL is traced, -shm never is.
    #[test]
    fn wal_works_through_the_shim_and_shm_is_never_traced() {
        let trace_path = shared_trace();
        let (_guard, dir) = fresh_dir();
        let db = dir.join("db.sqlite");
        let conn = open_traced(&db);
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("PRAGMA synchronous=FULL; CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(9000));")
            .unwrap();
        assert!(dir.join("db.sqlite-shm").exists(), "WAL mode maps a -shm file");
        let records = records_in(&dir);
        let wal_path = format!("{}-wal", db.display());
        let wal = records
            .iter()
            .find_map(|r| match r {
                Record::Open { file, path, kind: FileKind::Wal, created, id } if *path == wal_path => {
                    Some((*file, *created, *id))
                }
                _ => None,
            })
            .expect("an Open record of kind Wal");
        assert!(wal.1, "the WAL was created");
        let on_disk = std::fs::metadata(&wal_path).unwrap();
        assert_eq!(
            wal.2,
            Some(FileId { dev: on_disk.dev(), ino: on_disk.ino() }),
            "the WAL's identity, read at its open"
        );
        let wal_writes = records.iter().filter(|r| matches!(r, Record::Write { file, .. } if *file == wal.0)).count();
        assert!(wal_writes >= 3, "header and frames go to the WAL: {wal_writes} writes");
        assert!(
            records.iter().any(|r| matches!(r, Record::Open { kind: FileKind::MainDb, created: true, .. })),
            "{records:?}"
        );
        // The WAL is a new journal: its first sync is followed by the directory sync.
        let first_sync = records.iter().position(|r| matches!(r, Record::Sync { file, .. } if *file == wal.0)).unwrap();
        assert_eq!(records[first_sync + 1], Record::DirSync { path: wal_path.clone() });
        drop(conn);
        // The whole shared trace, every test's records: no path ever names a -shm file.
        for r in trace::read(trace_path).unwrap().records {
            let path = match &r {
                Record::Open { path, .. } | Record::Delete { path, .. } | Record::DirSync { path } => path,
                _ => continue,
            };
            assert!(!path.ends_with("-shm"), "{r:?}");
        }
        let records = records_in(&dir);
        assert!(records.contains(&Record::Delete { path: wal_path, dir_sync: false }), "close deletes the WAL");
    }

    /// Required test 2: replaying the trace rebuilds every file byte for byte, with the
    /// connection still open and after it closed, in each journal mode.
    #[test]
    fn replay_rebuilds_every_file_byte_for_byte() {
        shared_trace();
        for mode in [JournalMode::Delete, JournalMode::Truncate, JournalMode::Persist, JournalMode::Wal] {
            let what = mode.as_sql();
            let (_guard, dir) = fresh_dir();
            let conn = session_store(&dir.join("db.sqlite"), mode, Synchronous::Full, "", 40);
            let records = records_in(&dir);
            if mode == JournalMode::Wal {
                // A checkpoint happened: the database was written after the WAL was opened.
                let wal_open =
                    records.iter().position(|r| matches!(r, Record::Open { kind: FileKind::Wal, .. })).unwrap();
                let db = handles_of(&records, FileKind::MainDb);
                assert!(
                    records[wal_open..].iter().any(|r| matches!(r, Record::Write { file, .. } if db.contains(file))),
                    "{what}: no checkpoint"
                );
            } else {
                assert!(dir.join("db.sqlite-journal").exists() == (mode != JournalMode::Delete), "{what}");
            }
            let (_g1, replayed) = fresh_dir();
            replay(&records, &replayed);
            assert_same_files(&dir, &replayed, &format!("{what}, open"));
            drop(conn);
            let (_g2, replayed) = fresh_dir();
            replay(&records_in(&dir), &replayed);
            assert_same_files(&dir, &replayed, &format!("{what}, closed"));
        }
    }

    /// The two unix settings that would change a traced file outside `xWrite`/`xTruncate` are
    /// turned off: `mmap_size` reads back 0 through the shim (and not through plain unix), and a
    /// chunk size asked for with `SQLITE_FCNTL_CHUNK_SIZE` does not preallocate: the replay
    /// still matches byte for byte.
    #[test]
    fn mmap_and_chunk_size_are_refused() {
        shared_trace();
        let (_guard, dir) = fresh_dir();
        let db = dir.join("db.sqlite");
        let mmap = |conn: &Connection| -> i64 { conn.query_row("PRAGMA mmap_size=1048576", [], |r| r.get(0)).unwrap() };
        let mut conn = open_traced(&db);
        assert_eq!(mmap(&conn), 0, "through the shim");
        assert_eq!(mmap(&Connection::open(dir.join("plain.sqlite")).unwrap()), 1_048_576, "plain unix maps");
        let cfg = small_workload();
        session_store::create_schema(&conn, &cfg).unwrap();
        let mut chunk: c_int = 1 << 20;
        // SAFETY: a live handle, a NUL-terminated schema name, and an int for this op.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_CHUNK_SIZE,
                ptr::addr_of_mut!(chunk).cast(),
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        assert_eq!(chunk, 1 << 20, "the caller's int is left alone");
        session_store::seed(&mut conn, &cfg, 3).unwrap();
        let (_g, replayed) = fresh_dir();
        replay(&records_in(&dir), &replayed);
        assert_same_files(&dir, &replayed, "chunk size");
        assert!(std::fs::metadata(&db).unwrap().len() % (1 << 20) != 0, "no preallocation to a chunk multiple");
    }

    /// Several threads, each with its own connection and database, through the one VFS: every
    /// trace still replays exactly (handles are unique, records whole).
    #[test]
    fn threads_share_the_vfs() {
        shared_trace();
        let dirs: Vec<_> = (0..4).map(|_| fresh_dir()).collect();
        std::thread::scope(|s| {
            for (i, (_, dir)) in dirs.iter().enumerate() {
                let mode = if i % 2 == 0 { JournalMode::Wal } else { JournalMode::Delete };
                s.spawn(move || drop(session_store(&dir.join("db.sqlite"), mode, Synchronous::Full, "", 15)));
            }
        });
        for (_, dir) in &dirs {
            let (_g, replayed) = fresh_dir();
            replay(&records_in(dir), &replayed);
            assert_same_files(dir, &replayed, &dir.display().to_string());
        }
    }

    /// Required test 3: directory syncs as unix does them.
    #[test]
    fn dir_sync_records_follow_unix() {
        shared_trace();
        for (sync, expect_dir_sync) in [(Synchronous::Extra, true), (Synchronous::Full, false)] {
            let what = sync.as_sql();
            let (_guard, dir) = fresh_dir();
            drop(session_store(&dir.join("db.sqlite"), JournalMode::Delete, sync, "", 10));
            let records = records_in(&dir);
            let journal_path = format!("{}/db.sqlite-journal", dir.display());
            let deletes: Vec<usize> = records
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(r, Record::Delete { path, .. } if *path == journal_path))
                .map(|(i, _)| i)
                .collect();
            assert!(deletes.len() >= 10, "{what}: {} journal deletes", deletes.len());
            for i in deletes {
                assert_eq!(
                    records[i],
                    Record::Delete { path: journal_path.clone(), dir_sync: expect_dir_sync },
                    "{what}"
                );
                let dir_synced = records.get(i + 1) == Some(&Record::DirSync { path: journal_path.clone() });
                assert_eq!(dir_synced, expect_dir_sync, "{what}: record after delete {i}");
            }
            // Each journal is new (DELETE mode): its first sync, and only that, is followed by
            // the directory sync.
            let journals = handles_of(&records, FileKind::MainJournal);
            assert!(journals.len() >= 10, "{what}");
            for j in journals {
                let at: Vec<usize> = records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| matches!(r, Record::Sync { file, .. } if *file == j))
                    .map(|(i, _)| i)
                    .collect();
                assert!(!at.is_empty(), "{what}: a journal that was never synced");
                for (n, i) in at.into_iter().enumerate() {
                    let dir_synced = records[i + 1] == Record::DirSync { path: journal_path.clone() };
                    assert_eq!(dir_synced, n == 0, "{what}: sync {n} of journal {j:?}");
                }
            }
        }
    }

    /// Required test 4: sync flags as SQLite passes them.
    #[test]
    fn sync_flags_carry_fullfsync() {
        shared_trace();
        // Rollback journal: every sync of the database and the journal carries the pager's flags.
        for (sql, low_bits) in
            [("PRAGMA fullfsync=1", ffi::SQLITE_SYNC_FULL), ("PRAGMA fullfsync=0", ffi::SQLITE_SYNC_NORMAL)]
        {
            let (_guard, dir) = fresh_dir();
            drop(session_store(&dir.join("db.sqlite"), JournalMode::Delete, Synchronous::Full, sql, 5));
            let records = records_in(&dir);
            let all: HashSet<FileRef> = handles_of(&records, FileKind::MainDb)
                .union(&handles_of(&records, FileKind::MainJournal))
                .copied()
                .collect();
            let flags = syncs(&records, &all);
            assert!(flags.len() >= 10, "{sql}");
            assert!(flags.iter().all(|f| f & 0x0f == low_bits), "{sql}: {flags:?}");
        }
        // WAL with checkpoint_fullfsync: commits sync the WAL with NORMAL; checkpoints sync the
        // WAL (before backfilling) and the database (after) with FULL, and so does the WAL
        // header sync after a restart. The database is only synced by checkpoints in WAL mode.
        for (sql, ckpt_bits) in [
            ("PRAGMA checkpoint_fullfsync=1", ffi::SQLITE_SYNC_FULL),
            ("PRAGMA checkpoint_fullfsync=0", ffi::SQLITE_SYNC_NORMAL),
        ] {
            let (_guard, dir) = fresh_dir();
            let conn = session_store(&dir.join("db.sqlite"), JournalMode::Wal, Synchronous::Full, sql, 30);
            let fullfsync: i64 = conn.query_row("PRAGMA checkpoint_fullfsync", [], |r| r.get(0)).unwrap();
            assert_eq!(fullfsync, i64::from(ckpt_bits == ffi::SQLITE_SYNC_FULL), "{sql}");
            drop(conn);
            let records = records_in(&dir);
            let wal_open = records.iter().position(|r| matches!(r, Record::Open { kind: FileKind::Wal, .. })).unwrap();
            let after = &records[wal_open..];
            let db = handles_of(&records, FileKind::MainDb);
            let wal = handles_of(&records, FileKind::Wal);
            let db_syncs = syncs(after, &db);
            assert!(db_syncs.len() >= 2, "{sql}: checkpoints synced the database {} times", db_syncs.len());
            assert!(db_syncs.iter().all(|f| f & 0x0f == ckpt_bits), "{sql}: {db_syncs:?}");
            // Every database sync closes a checkpoint: a WAL sync with the checkpoint flags,
            // backfill writes to the database, the database sync.
            for (i, r) in after.iter().enumerate() {
                let Record::Sync { file, .. } = r else { continue };
                if !db.contains(file) {
                    continue;
                }
                let before = after[..i]
                    .iter()
                    .rev()
                    .find_map(|r| match r {
                        Record::Sync { file, flags } if wal.contains(file) => Some(*flags),
                        _ => None,
                    })
                    .expect("a WAL sync before the checkpoint's database sync");
                assert_eq!(before & 0x0f, ckpt_bits, "{sql}");
            }
            let wal_syncs: Vec<i32> = syncs(after, &wal).iter().map(|f| f & 0x0f).collect();
            assert!(wal_syncs.contains(&ffi::SQLITE_SYNC_NORMAL), "{sql}: commits sync the WAL: {wal_syncs:?}");
            if ckpt_bits == ffi::SQLITE_SYNC_FULL {
                assert!(wal_syncs.contains(&ffi::SQLITE_SYNC_FULL), "{sql}: {wal_syncs:?}");
            } else {
                assert!(wal_syncs.iter().all(|f| *f == ffi::SQLITE_SYNC_NORMAL), "{sql}: {wal_syncs:?}");
            }
        }
    }

    // -- child processes: injections, each with its own registration ------------------------

    const CHILD_ENV: &str = "CRASHFUZZ_VFS_CHILD";
    /// The test that is also the child's body (a rename that forgets this makes the child run
    /// no test and write no report, which every parent asserts on).
    const CHILD_TEST: &str =
        "fault::vfs::tests::a_child_without_injection_commits_every_transaction_and_traces_every_operation";
    const CHILD_TXNS: u32 = 8;
    const CHILD_DEADLINE: Duration = Duration::from_secs(120);

    #[derive(Serialize, Deserialize)]
    struct ChildSpec {
        dir: PathBuf,
        journal_mode: JournalMode,
        injection: Injection,
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct ChildReport {
        /// `ops()` after schema, pragmas and seed.
        setup_ops: u64,
        /// Per transaction: `ops()` after it, and its extended error code if it failed.
        txns: Vec<(u64, Option<i32>)>,
        ops: u64,
        injected: u64,
        /// `PRAGMA integrity_check` through the plain unix VFS after the traced connection closed.
        integrity: String,
    }

    /// Run as the child of [`run_child`] (the environment variable set), the child's body: its
    /// own registration, the session store, [`CHILD_TXNS`] transactions, a report. Run by
    /// `cargo test`, the parent of a child with no injection in each journal mode, asserting
    /// what [`clean_run`] does and that every handle in the child's trace is the child's own.
    #[test]
    fn a_child_without_injection_commits_every_transaction_and_traces_every_operation() {
        if let Ok(spec) = std::env::var(CHILD_ENV) {
            return child_body(serde_json::from_str(&spec).unwrap());
        }
        for mode in [JournalMode::Delete, JournalMode::Wal] {
            let (report, records) = clean_run(mode);
            assert!(report.setup_ops > 0 && report.txns.len() == CHILD_TXNS as usize, "{mode:?}: {report:?}");
            for r in &records {
                if let Record::Open { file, .. } | Record::Write { file, .. } | Record::Sync { file, .. } = r {
                    assert_eq!(file.writer, CHILD_WRITER, "{mode:?}: {r:?}");
                }
            }
        }
    }

    fn child_body(spec: ChildSpec) {
        let trace_path = spec.dir.join("trace");
        register(VfsConfig { writer: CHILD_WRITER, trace_path, injection: spec.injection }).unwrap();
        let cfg = small_workload();
        let db = spec.dir.join("db.sqlite");
        let mut conn = open_traced(&db);
        crate::testkit::seed_store(&mut conn, &cfg, &pragmas_for(spec.journal_mode, Synchronous::Full), 3);
        let setup_ops = ops();
        let mut w = TxnWriter::new(5, 4, &cfg);
        let txns = (0..CHILD_TXNS)
            .map(|_| {
                let error = match w.run_txn(&mut conn, &mut |_| {}) {
                    Ok(_) => None,
                    Err(rusqlite::Error::SqliteFailure(e, _)) => Some(e.extended_code),
                    Err(e) => panic!("not an SQLite failure: {e}"),
                };
                (ops(), error)
            })
            .collect();
        drop(conn);
        let plain = Connection::open(&db).unwrap();
        let integrity = plain.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        let report = ChildReport { setup_ops, txns, ops: ops(), injected: injected(), integrity };
        std::fs::write(spec.dir.join("report.json"), serde_json::to_vec(&report).unwrap()).unwrap();
    }

    struct ChildRun {
        _guard: tempfile::TempDir,
        status: std::process::ExitStatus,
        report: Option<ChildReport>,
        records: Vec<Record>,
    }

    /// Re-runs this test binary on [`CHILD_TEST`] alone, with its own registration, in a fresh
    /// directory; waits at most [`CHILD_DEADLINE`].
    fn run_child(journal_mode: JournalMode, injection: Injection) -> ChildRun {
        let (guard, dir) = fresh_dir();
        let spec = serde_json::to_string(&ChildSpec { dir: dir.clone(), journal_mode, injection }).unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, spec)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > CHILD_DEADLINE {
                child.kill().unwrap();
                panic!("child {injection:?} still running after {CHILD_DEADLINE:?}: {:?}", child.wait());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let report = std::fs::read(dir.join("report.json")).ok().map(|b| serde_json::from_slice(&b).unwrap());
        let records = trace::read(&dir.join("trace")).unwrap().records;
        ChildRun { _guard: guard, status, report, records }
    }

    /// The kinds of the counted operations of a run with no injection, in number order (the
    /// child is single-threaded, so records are appended in operation order).
    fn op_kinds(records: &[Record]) -> Vec<Op> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Write { .. } => Some(Op::Write),
                Record::Sync { .. } => Some(Op::Sync),
                Record::Truncate { .. } => Some(Op::Truncate),
                _ => None,
            })
            .collect()
    }

    /// A child run with no injection, which must be clean: every transaction commits, every
    /// counted operation is in the trace, nothing is injected, the database checks `ok`.
    fn clean_run(mode: JournalMode) -> (ChildReport, Vec<Record>) {
        let run = run_child(mode, Injection::None);
        assert!(run.status.success(), "{mode:?}: {:?}", run.status);
        let report = run.report.expect("the child wrote its report");
        assert!(report.txns.iter().all(|(_, e)| e.is_none()), "{mode:?}: {report:?}");
        assert_eq!(op_kinds(&run.records).len() as u64, report.ops, "{mode:?}: every counted operation is traced");
        assert_eq!(report.injected, 0, "{mode:?}");
        assert!(!run.records.iter().any(|r| matches!(r, Record::Injected { .. })), "{mode:?}");
        assert_eq!(report.integrity, "ok", "{mode:?}");
        (report, run.records)
    }

    /// A dry run, then the number of the first operation of kind `op` in transaction `txn`
    /// (0-based). The workload is seeded and SQLite deterministic, so the same numbers recur.
    fn pick_op(mode: JournalMode, txn: usize, op: Op) -> u64 {
        let (report, records) = clean_run(mode);
        let kinds = op_kinds(&records);
        let from = if txn == 0 { report.setup_ops } else { report.txns[txn - 1].0 };
        let to = report.txns[txn].0;
        (from + 1..=to).find(|n| kinds[(*n - 1) as usize] == op).expect("transaction has such an operation")
    }

    /// The transaction (0-based) whose operations include number `op`.
    fn txn_of(report: &ChildReport, op: u64) -> usize {
        report.txns.iter().position(|(after, _)| *after >= op).unwrap()
    }

    /// Required test 5a: one failed operation fails one transaction with the right code; later
    /// transactions succeed; the trace says what was injected; the database checks clean.
    #[test]
    fn fail_at_once_fails_one_transaction() {
        for (mode, op, code) in [
            (JournalMode::Delete, Op::Write, ffi::SQLITE_IOERR_WRITE),
            (JournalMode::Wal, Op::Sync, ffi::SQLITE_IOERR_FSYNC),
        ] {
            let what = format!("{} {op:?}", mode.as_sql());
            let n = pick_op(mode, 2, op);
            let run = run_child(mode, Injection::FailAt { op: n, error: IoErrorKind::Ioerr, persistent: false });
            assert!(run.status.success(), "{what}: {:?}", run.status);
            let report = run.report.unwrap();
            let failed = txn_of(&report, n);
            assert_eq!(failed, 2, "{what}: {report:?}");
            for (i, (_, error)) in report.txns.iter().enumerate() {
                assert_eq!(*error, (i == failed).then_some(code), "{what}: transaction {i}");
            }
            assert_eq!(report.injected, 1, "{what}");
            let injected: Vec<&Record> = run.records.iter().filter(|r| matches!(r, Record::Injected { .. })).collect();
            assert_eq!(injected, vec![&Record::Injected { writer: CHILD_WRITER, op: n, code }], "{what}");
            // Every other counted operation happened and was recorded.
            assert_eq!(run.records.iter().filter(|r| is_counted(r)).count() as u64, report.ops - 1, "{what}");
            assert_eq!(report.integrity, "ok", "{what}");
        }
    }

    /// Required test 5b: from the operation on, everything fails, and nothing counted after it
    /// reaches the disk.
    #[test]
    fn fail_at_persistent_fails_everything_after() {
        for mode in [JournalMode::Delete, JournalMode::Wal] {
            let what = mode.as_sql();
            let n = pick_op(mode, 2, Op::Write);
            let run = run_child(mode, Injection::FailAt { op: n, error: IoErrorKind::Full, persistent: true });
            assert!(run.status.success(), "{what}: {:?}", run.status);
            let report = run.report.unwrap();
            // Each later transaction fails at its first counted operation, with the same code.
            for (i, (_, error)) in report.txns.iter().enumerate() {
                assert_eq!(*error, (i >= 2).then_some(ffi::SQLITE_FULL), "{what}: transaction {i}");
            }
            let counted = run.records.iter().filter(|r| is_counted(r)).count() as u64;
            assert_eq!(counted, n - 1, "{what}: counted operations recorded");
            let injected: Vec<u64> = run
                .records
                .iter()
                .filter_map(|r| match r {
                    Record::Injected { writer: CHILD_WRITER, op, code: ffi::SQLITE_FULL } => Some(*op),
                    _ => None,
                })
                .collect();
            assert_eq!(injected, (n..=report.ops).collect::<Vec<_>>(), "{what}");
            assert_eq!(report.injected, report.ops - n + 1, "{what}");
            assert_eq!(report.integrity, "ok", "{what}");
        }
    }

    /// Required test 5c: the process dies of SIGKILL before the operation; the trace holds
    /// exactly the operations before it.
    #[test]
    fn crash_at_kills_before_the_operation() {
        for (mode, op) in [(JournalMode::Delete, Op::Sync), (JournalMode::Wal, Op::Write)] {
            let what = format!("{} {op:?}", mode.as_sql());
            let n = pick_op(mode, 1, op);
            let run = run_child(mode, Injection::CrashAt { op: n });
            assert_eq!(run.status.signal(), Some(nix::libc::SIGKILL), "{what}: {:?}", run.status);
            assert!(run.report.is_none(), "{what}");
            assert_eq!(run.records.iter().filter(|r| is_counted(r)).count() as u64, n - 1, "{what}");
            assert!(!run.records.iter().any(|r| matches!(r, Record::Injected { .. })), "{what}");
        }
    }
}

//! What rusqlite needs of SQLite that builds older than it lack, for the binary built without
//! the `bundled` feature: the writer that runs on another SQLite build, linked with the shared
//! `libsqlite3.so.0` (lazily bound, so a function the build lacks only matters when called).
//!
//! rusqlite keeps its busy handler and hooks in per-connection client data
//! (`sqlite3_set_clientdata`, SQLite 3.44), and clears it on every `busy_timeout`; it asks for
//! the offset of a syntax error (`sqlite3_error_offset`, 3.38); it counts a statement's changes
//! in 64 bits (`sqlite3_changes64`, 3.37). This binary defines these functions, so its own calls
//! bind here: each forwards to the loaded build's function when the build has it, and otherwise
//! does the job itself (client data in a table of its own, whose destructors run when the value
//! is replaced, not when the connection closes; no offset; the 32-bit count). Every other
//! function rusqlite names is in every build from 3.35.4 on (the oldest `crashfuzz sqlite list`
//! offers): `nm -D --undefined-only` of the shared writer, less a build's `nm -D --defined-only`,
//! leaves exactly these.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::{Mutex, OnceLock};

type Destructor = Option<unsafe extern "C" fn(*mut c_void)>;
type SetClientdata = unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_void, Destructor) -> c_int;
type GetClientdata = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;
type ErrorOffset = unsafe extern "C" fn(*mut c_void) -> c_int;
type Changes64 = unsafe extern "C" fn(*mut c_void) -> i64;

/// The loaded SQLite build's own `name`, if it has one. The library is the one the dynamic
/// loader already loaded for this binary (`RTLD_NOLOAD`): the build the writer runs on.
fn own<T: Copy>(name: &[u8]) -> Option<T> {
    use libloading::os::unix::{Library, RTLD_LAZY};
    /// `<dlfcn.h>`'s `RTLD_NOLOAD` on Linux (glibc and musl): only a library already loaded.
    const RTLD_NOLOAD: c_int = 0x4;
    // SAFETY: the library is already loaded (NOLOAD), so no initialiser runs; the symbol is
    // read as the function type its SQLite documentation gives.
    unsafe {
        let library = Library::open(Some("libsqlite3.so.0"), RTLD_NOLOAD | RTLD_LAZY).ok()?;
        let symbol = library.get::<T>(name).ok().map(|s| *s);
        // The library stays loaded: this binary links it.
        std::mem::forget(library);
        symbol
    }
}

/// Client data kept here for builds without their own: per connection and name, the value and
/// its destructor (stored as integers, so the table is `Send`).
type Table = HashMap<(usize, CString), (usize, usize)>;

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// `sqlite3_set_clientdata`: the build's own, or a table of this binary's.
///
/// # Safety
/// As SQLite's: `db` is an open connection, `name` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_set_clientdata(
    db: *mut c_void,
    name: *const c_char,
    data: *mut c_void,
    destructor: Destructor,
) -> c_int {
    static OWN: OnceLock<Option<SetClientdata>> = OnceLock::new();
    if let Some(f) = OWN.get_or_init(|| own(b"sqlite3_set_clientdata\0")) {
        // SAFETY: the build's own function, called with the caller's arguments.
        return unsafe { f(db, name, data, destructor) };
    }
    // SAFETY: the caller passes a NUL-terminated name.
    let key = (db as usize, unsafe { CStr::from_ptr(name) }.to_owned());
    let old = {
        let mut table = table().lock().unwrap_or_else(|p| p.into_inner());
        if data.is_null() {
            table.remove(&key)
        } else {
            let destructor_bits = destructor.map_or(0, |d| d as usize);
            table.insert(key, (data as usize, destructor_bits))
        }
    };
    if let Some((value, destructor_bits)) = old
        && destructor_bits != 0
    {
        // SAFETY: the bits are the destructor stored with this value, called once as SQLite
        // would when the value is replaced.
        let destructor: unsafe extern "C" fn(*mut c_void) = unsafe { std::mem::transmute(destructor_bits) };
        unsafe { destructor(value as *mut c_void) };
    }
    0
}

/// `sqlite3_get_clientdata`: the build's own, or the table of this binary's.
///
/// # Safety
/// As SQLite's: `db` is an open connection, `name` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_get_clientdata(db: *mut c_void, name: *const c_char) -> *mut c_void {
    static OWN: OnceLock<Option<GetClientdata>> = OnceLock::new();
    if let Some(f) = OWN.get_or_init(|| own(b"sqlite3_get_clientdata\0")) {
        // SAFETY: the build's own function, called with the caller's arguments.
        return unsafe { f(db, name) };
    }
    // SAFETY: the caller passes a NUL-terminated name.
    let key = (db as usize, unsafe { CStr::from_ptr(name) }.to_owned());
    let table = table().lock().unwrap_or_else(|p| p.into_inner());
    table.get(&key).map_or(std::ptr::null_mut(), |&(value, _)| value as *mut c_void)
}

/// `sqlite3_error_offset`: the build's own, or -1 (no offset known).
///
/// # Safety
/// As SQLite's: `db` is an open connection.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_error_offset(db: *mut c_void) -> c_int {
    static OWN: OnceLock<Option<ErrorOffset>> = OnceLock::new();
    match OWN.get_or_init(|| own(b"sqlite3_error_offset\0")) {
        // SAFETY: the build's own function, called with the caller's argument.
        Some(f) => unsafe { f(db) },
        None => -1,
    }
}

/// `sqlite3_changes64`: the build's own, or its 32-bit `sqlite3_changes`.
///
/// # Safety
/// As SQLite's: `db` is an open connection.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_changes64(db: *mut c_void) -> i64 {
    static OWN: OnceLock<Option<Changes64>> = OnceLock::new();
    match OWN.get_or_init(|| own(b"sqlite3_changes64\0")) {
        // SAFETY: the build's own function, called with the caller's argument.
        Some(f) => unsafe { f(db) },
        // SAFETY: every build has sqlite3_changes, with the same argument.
        None => i64::from(unsafe { rusqlite::ffi::sqlite3_changes(db.cast()) }),
    }
}

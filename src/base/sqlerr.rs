//! SQLite errors read by their code: the name of an extended result code, and the one rule that
//! says whether an error met while reading a crash image is a finding about that image, a
//! lock someone else holds, or a failure of crashfuzz's own machinery.
//!
//! **Architecture invariant: a damaged image never stops a campaign.** Whatever SQLite answers
//! while opening, recovering, reading or writing an image (`SQLITE_IOERR_SHORT_READ` from a
//! WAL that points past the end of a swapped database file, `SQLITE_CANTOPEN`,
//! `SQLITE_NOTADB`, `SQLITE_CORRUPT`, `SQLITE_SCHEMA`...) is what the image does to an
//! application, so it is the finding of the check that met it. Only what cannot come from the
//! image's bytes is the harness's: memory exhausted, the scratch disk full or failing to write,
//! an API misused by crashfuzz itself. A lock (`SQLITE_BUSY`, `SQLITE_LOCKED`) on an image that
//! only the oracle has open says nothing about the image either: the check could not run.
//!
//! Leaf module: it imports nothing from the crate.

use rusqlite::ffi;

/// What an error met while checking an image says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The image made SQLite fail: the finding of the check that met it.
    Finding,
    /// Someone holds a lock on the file: the check could not run, and the image is not judged.
    Locked,
    /// crashfuzz's own machinery failed (memory, the scratch disk, a harness bug): the campaign
    /// stops with a harness error.
    Harness,
}

/// Reads an error met while opening, recovering, reading or writing a crash image.
pub fn classify(e: &rusqlite::Error) -> ErrorClass {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => classify_code(f.extended_code),
        // A value the schema cannot hold (a NOT NULL text column read as NULL, text that is
        // not UTF-8) comes only from damage in a database that only the workload writes.
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => ErrorClass::Finding,
        // Everything else is rusqlite telling crashfuzz it used the API wrongly.
        _ => ErrorClass::Harness,
    }
}

/// [`classify`] for an extended result code.
pub fn classify_code(extended_code: i32) -> ErrorClass {
    match extended_code {
        // The scratch disk, not the image: a write, sync or allocation the OS refused.
        ffi::SQLITE_NOMEM
        | ffi::SQLITE_IOERR_NOMEM
        | ffi::SQLITE_FULL
        | ffi::SQLITE_IOERR_WRITE
        | ffi::SQLITE_IOERR_FSYNC
        | ffi::SQLITE_IOERR_DIR_FSYNC
        | ffi::SQLITE_MISUSE => ErrorClass::Harness,
        _ => match extended_code & 0xff {
            ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED => ErrorClass::Locked,
            _ => ErrorClass::Finding,
        },
    }
}

/// True for a lock held by another connection (busy or locked, any extended code).
pub fn is_lock(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|f| matches!(f.extended_code & 0xff, ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED))
}

/// `message (SQLITE_IOERR_SHORT_READ, 522)`: SQLite's words with the code that explains them,
/// for a check's detail.
pub fn describe(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let words = msg.clone().unwrap_or_else(|| ffi::code_to_str(f.extended_code).to_string());
            format!("{words} ({}, {})", code_name(f.extended_code), f.extended_code)
        }
        other => other.to_string(),
    }
}

/// The C name of an extended result code, e.g. `SQLITE_IOERR_SHORT_READ`; the primary code's
/// name with the number when the extended code is not one SQLite documents.
pub fn code_name(extended_code: i32) -> String {
    if let Some(&(_, name)) = NAMES.iter().find(|(c, _)| *c == extended_code) {
        return name.to_string();
    }
    match NAMES.iter().find(|(c, _)| *c == extended_code & 0xff) {
        Some(&(_, name)) => format!("{name} (extended {extended_code})"),
        None => format!("SQLite result code {extended_code}"),
    }
}

macro_rules! names {
    ($($code:ident),* $(,)?) => { &[$((ffi::$code, stringify!($code))),*] };
}

/// Every result code rusqlite's bindings name, primary and extended.
const NAMES: &[(i32, &str)] = names![
    SQLITE_ERROR,
    SQLITE_INTERNAL,
    SQLITE_PERM,
    SQLITE_ABORT,
    SQLITE_BUSY,
    SQLITE_LOCKED,
    SQLITE_NOMEM,
    SQLITE_READONLY,
    SQLITE_INTERRUPT,
    SQLITE_IOERR,
    SQLITE_CORRUPT,
    SQLITE_NOTFOUND,
    SQLITE_FULL,
    SQLITE_CANTOPEN,
    SQLITE_PROTOCOL,
    SQLITE_EMPTY,
    SQLITE_SCHEMA,
    SQLITE_TOOBIG,
    SQLITE_CONSTRAINT,
    SQLITE_MISMATCH,
    SQLITE_MISUSE,
    SQLITE_NOLFS,
    SQLITE_AUTH,
    SQLITE_FORMAT,
    SQLITE_RANGE,
    SQLITE_NOTADB,
    SQLITE_ERROR_MISSING_COLLSEQ,
    SQLITE_ERROR_RETRY,
    SQLITE_ERROR_SNAPSHOT,
    SQLITE_IOERR_READ,
    SQLITE_IOERR_SHORT_READ,
    SQLITE_IOERR_WRITE,
    SQLITE_IOERR_FSYNC,
    SQLITE_IOERR_DIR_FSYNC,
    SQLITE_IOERR_TRUNCATE,
    SQLITE_IOERR_FSTAT,
    SQLITE_IOERR_UNLOCK,
    SQLITE_IOERR_RDLOCK,
    SQLITE_IOERR_DELETE,
    SQLITE_IOERR_BLOCKED,
    SQLITE_IOERR_NOMEM,
    SQLITE_IOERR_ACCESS,
    SQLITE_IOERR_CHECKRESERVEDLOCK,
    SQLITE_IOERR_LOCK,
    SQLITE_IOERR_CLOSE,
    SQLITE_IOERR_DIR_CLOSE,
    SQLITE_IOERR_SHMOPEN,
    SQLITE_IOERR_SHMSIZE,
    SQLITE_IOERR_SHMLOCK,
    SQLITE_IOERR_SHMMAP,
    SQLITE_IOERR_SEEK,
    SQLITE_IOERR_DELETE_NOENT,
    SQLITE_IOERR_MMAP,
    SQLITE_IOERR_GETTEMPPATH,
    SQLITE_IOERR_CONVPATH,
    SQLITE_IOERR_VNODE,
    SQLITE_IOERR_AUTH,
    SQLITE_IOERR_BEGIN_ATOMIC,
    SQLITE_IOERR_COMMIT_ATOMIC,
    SQLITE_IOERR_ROLLBACK_ATOMIC,
    SQLITE_IOERR_DATA,
    SQLITE_IOERR_CORRUPTFS,
    SQLITE_LOCKED_SHAREDCACHE,
    SQLITE_LOCKED_VTAB,
    SQLITE_BUSY_RECOVERY,
    SQLITE_BUSY_SNAPSHOT,
    SQLITE_BUSY_TIMEOUT,
    SQLITE_CANTOPEN_NOTEMPDIR,
    SQLITE_CANTOPEN_ISDIR,
    SQLITE_CANTOPEN_FULLPATH,
    SQLITE_CANTOPEN_CONVPATH,
    SQLITE_CANTOPEN_SYMLINK,
    SQLITE_CORRUPT_VTAB,
    SQLITE_CORRUPT_SEQUENCE,
    SQLITE_CORRUPT_INDEX,
    SQLITE_READONLY_RECOVERY,
    SQLITE_READONLY_CANTLOCK,
    SQLITE_READONLY_ROLLBACK,
    SQLITE_READONLY_DBMOVED,
    SQLITE_READONLY_CANTINIT,
    SQLITE_READONLY_DIRECTORY,
    SQLITE_ABORT_ROLLBACK,
    SQLITE_CONSTRAINT_CHECK,
    SQLITE_CONSTRAINT_COMMITHOOK,
    SQLITE_CONSTRAINT_FOREIGNKEY,
    SQLITE_CONSTRAINT_FUNCTION,
    SQLITE_CONSTRAINT_NOTNULL,
    SQLITE_CONSTRAINT_PRIMARYKEY,
    SQLITE_CONSTRAINT_TRIGGER,
    SQLITE_CONSTRAINT_UNIQUE,
    SQLITE_CONSTRAINT_VTAB,
    SQLITE_CONSTRAINT_ROWID,
    SQLITE_CONSTRAINT_PINNED,
    SQLITE_CONSTRAINT_DATATYPE,
    SQLITE_AUTH_USER,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32, msg: &str) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg.into()))
    }

    #[test]
    fn what_the_image_says_is_a_finding_and_what_the_scratch_disk_says_is_not() {
        for code in [
            ffi::SQLITE_IOERR_SHORT_READ,
            ffi::SQLITE_IOERR_READ,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_CANTOPEN,
            ffi::SQLITE_NOTADB,
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_CORRUPT_VTAB,
            ffi::SQLITE_SCHEMA,
            ffi::SQLITE_ERROR,
            ffi::SQLITE_PROTOCOL,
        ] {
            assert_eq!(classify_code(code), ErrorClass::Finding, "{}", code_name(code));
        }
        for code in [ffi::SQLITE_FULL, ffi::SQLITE_NOMEM, ffi::SQLITE_IOERR_WRITE, ffi::SQLITE_MISUSE] {
            assert_eq!(classify_code(code), ErrorClass::Harness, "{}", code_name(code));
        }
        for code in [ffi::SQLITE_BUSY, ffi::SQLITE_BUSY_RECOVERY, ffi::SQLITE_LOCKED, ffi::SQLITE_LOCKED_SHAREDCACHE] {
            assert_eq!(classify_code(code), ErrorClass::Locked, "{}", code_name(code));
        }
        assert_eq!(classify(&rusqlite::Error::InvalidQuery), ErrorClass::Harness);
        assert!(is_lock(&failure(ffi::SQLITE_BUSY_SNAPSHOT, "busy")));
        assert!(!is_lock(&failure(ffi::SQLITE_IOERR_SHORT_READ, "disk I/O error")));
    }

    #[test]
    fn details_name_the_extended_code() {
        assert_eq!(
            describe(&failure(ffi::SQLITE_IOERR_SHORT_READ, "disk I/O error")),
            "disk I/O error (SQLITE_IOERR_SHORT_READ, 522)"
        );
        assert_eq!(code_name(ffi::SQLITE_IOERR | (99 << 8)), "SQLITE_IOERR (extended 25354)");
        assert_eq!(code_name(ffi::SQLITE_NOTADB), "SQLITE_NOTADB");
    }
}

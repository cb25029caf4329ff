//! The two-tier error model: user and environment errors are values of [`Error`], each mapped
//! to exactly one exit code in [`Error::exit_code`]; harness bugs are `panic!`s.
//!
//! Exit codes: 0 every cell met its expectation; 1 some cell did not; 2 bad input
//! (scenario, flags, paths); 3 the harness or environment failed; 130 interrupted by Ctrl-C
//! (partial results are still written).

use std::path::PathBuf;

pub const EXIT_OK: i32 = 0;
pub const EXIT_VERDICT_FAILED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_HARNESS: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file is malformed or holds a bad value. `line` is 1-based when known.
    #[error("{file}:{}: {setting}: {message}", line.map_or_else(|| "?".to_string(), |l| l.to_string()))]
    Scenario { file: String, line: Option<usize>, setting: String, message: String },

    /// A bad command-line flag or combination of flags.
    #[error("{0}")]
    Usage(String),

    /// A path given by the user cannot be used (missing, unwritable, not a directory...).
    #[error("{}: {what}: {source}", path.display())]
    BadPath { path: PathBuf, what: String, source: std::io::Error },

    /// Another SQLite build cannot be had: not one crashfuzz builds, no compiler, a library
    /// that does not load. `what` says who asked for it (`--sqlite`).
    #[error("{what}: {source}")]
    SqliteBuild { what: String, source: crate::sqlite::builds::BuildError },

    /// The harness or its environment failed (a child died unexplained, a disk filled...).
    #[error("harness error: {0}")]
    Harness(String),

    /// An I/O operation of the harness itself failed.
    #[error("harness error: {context}: {source}")]
    Io { context: String, source: std::io::Error },

    /// An SQLite call of the harness itself (not of the system under test) failed.
    #[error("harness error: {context}: {source}")]
    Sqlite { context: String, source: rusqlite::Error },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Scenario { .. } | Error::Usage(_) | Error::BadPath { .. } | Error::SqliteBuild { .. } => {
                EXIT_BAD_INPUT
            }
            Error::Harness(_) | Error::Io { .. } | Error::Sqlite { .. } => EXIT_HARNESS,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    pub fn sqlite(context: impl Into<String>, source: rusqlite::Error) -> Error {
        Error::Sqlite { context: context.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

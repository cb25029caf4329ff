//! The leaves every layer stands on: database files on disk (`dbfiles`), SQLite's result codes
//! read (`sqlerr`), statistics and rates (`stats`), scratch directories (`scratch`),
//! child processes (`process`). Nothing here
//! imports anything else from the crate.
pub mod dbfiles;
pub mod process;
pub mod scratch;
pub mod sqlerr;
pub mod stats;

//! The leaves every layer stands on: database files on disk (`dbfiles`), SQLite's result codes
//! read (`sqlerr`), statistics and rates (`stats`), scratch directories (`scratch`),
//! child processes (`process`), the crash image held before the checks (`pristine`). Nothing here
//! imports anything else from the crate.
pub mod dbfiles;
pub mod pristine;
pub mod process;
pub mod scratch;
pub mod sqlerr;
pub mod stats;

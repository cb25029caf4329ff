//! The leaves every layer stands on: database files on disk (`dbfiles`), SQLite's result codes
//! read (`sqlerr`), statistics and rates (`stats`), scratch directories (`scratch`). Nothing here
//! imports anything else from the crate.
pub mod dbfiles;
pub mod scratch;
pub mod sqlerr;
pub mod stats;

//! Fault injection.
pub mod kill;
pub mod trace;

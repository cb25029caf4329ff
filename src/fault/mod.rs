//! Fault injection.
pub mod kill;

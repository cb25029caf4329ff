//! Fault injection.
pub mod kill;
pub mod load;
pub mod powerloss;
pub mod trace;
pub mod vfs;

//! Fault injection: process kills and their supervision (`kill`), the load generator
//! (`load`), the tracing VFS (`vfs`) and its record format (`trace`), the crash-image builder
//! of the power-loss model (`powerloss`), and the hazards of DESIGN §5.4 (`hazard`).
pub mod death;
pub mod hazard;
pub mod kill;
pub mod load;
pub mod powerloss;
pub mod trace;
pub mod vfs;

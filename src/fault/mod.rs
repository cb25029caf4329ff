//! Fault injection: process kills and their supervision (`kill`), the load generator
//! (`load`), the tracing VFS (`vfs`) and its record format (`trace`), the crash-image builder
//! of the power-loss model (`powerloss`), the hazards (`hazard`: misuse SQLite documents as corrupting),
//! and how a writer's death is judged (`death`).
pub mod death;
pub mod load;
pub mod misuse;
pub mod power_loss;
pub mod trace;
pub mod vfs;

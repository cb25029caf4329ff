//! Other SQLite builds than the bundled one: naming, obtaining, compiling and caching them
//! (`builds`), and running SQL on one in a child process (`child`, the hidden `__sql`).
pub mod builds;
pub mod child;

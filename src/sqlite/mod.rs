//! Other SQLite builds than the bundled one: naming, obtaining, compiling and caching them
//! (`builds`), running SQL on one in a child process (`child`, the hidden `__sql`), and the
//! writer that runs on one (`shared_writer`).
pub mod builds;
pub mod child;
pub mod shared_writer;

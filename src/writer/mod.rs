//! The client: the writer processes crashfuzz starts on a database. `program` is the seam the
//! trial engine sees (make a template, start a writer, read its acknowledgements, tell the
//! oracle what to assume), `BuiltIn` its one implementation so far. `child` is the `__writer`
//! process itself (the write loop, its acknowledgements, its SIGTERM behaviour); `protocol` what
//! the driver and the child agree on (configuration, announcements, exit codes); `acklog` the
//! acknowledgement file's format and parser; `process` a writer process seen from the driver
//! (spawn, start gate, announcements, the signals of a fault, reaping), forked by `fork_server`
//! where it is crashfuzz's own writer; `session_store` the
//! workload (schema, transactions, ledger); `pragmas` the connection settings, set and read
//! back.
pub mod acklog;
pub mod child;
pub mod external;
pub mod fork_server;
pub mod interposer;
pub mod pragmas;
pub mod process;
pub mod program;
pub mod protocol;
pub mod session_store;

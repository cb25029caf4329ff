//! The client: the writer processes crashfuzz starts on a database. `child` is the `__writer`
//! process itself (the write loop, its acknowledgements, its SIGTERM behaviour); `protocol` what
//! the driver and the child agree on (configuration, announcements, exit codes); `acklog` the
//! acknowledgement file's format and parser; `process` a writer process seen from the driver
//! (spawn, start gate, announcements, the signals of a fault, reaping); `session_store` the
//! workload (schema, transactions, ledger); `pragmas` the connection settings, set and read
//! back.
pub mod acklog;
pub mod child;
pub mod pragmas;
pub mod process;
pub mod protocol;
pub mod session_store;

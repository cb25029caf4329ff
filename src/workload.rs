//! The `session_store` workload (DESIGN §1): the schema, the transactions a writer runs, and
//! the ledger that lets the oracle know which writer and transaction wrote what.
//!
//! INTERFACE (fixed; implementation below is owned by the workload helper):
//! - [`WorkloadConfig`]: the `[workload]` section of a scenario.
//! - `create_schema`, `seed`, `TxnWriter` (plan + apply one transaction) — see below.

use serde::{Deserialize, Serialize};

/// The `[workload]` section of a scenario. Every field has a unit in its name and a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// `PRAGMA page_size` for new databases, in bytes.
    pub page_size_bytes: u32,
    /// `PRAGMA cache_size`, in KiB. Small on purpose: dirty pages spill to the database file
    /// in the middle of big transactions, which is what makes journal OFF/MEMORY corrupt.
    pub cache_size_kib: u32,
    /// `PRAGMA busy_timeout`, in milliseconds.
    pub busy_timeout_ms: u32,
    /// Messages written into each fresh database before the trial starts.
    pub seed_messages: u32,
    /// Sessions those seed messages are spread over.
    pub seed_sessions: u32,
    /// Smallest ordinary message body, in bytes.
    pub message_bytes_min: u32,
    /// Largest ordinary message body, in bytes (sizes are log-uniform between min and max).
    pub message_bytes_max: u32,
    /// Size of the rare huge message, in bytes.
    pub huge_message_bytes: u32,
    /// Chance of a huge message, per thousand messages.
    pub huge_message_per_mille: u32,
    /// Chance that a message body is the NUL sentinel `"\0json:"` followed by JSON, in percent.
    pub json_sentinel_percent: u32,
    /// Chance that a transaction is a compression (delete a whole session's messages and
    /// re-insert them, shortened), in percent.
    pub compress_percent: u32,
    /// Messages at the end of a session that a compression keeps verbatim.
    pub compress_keep_last: u32,
    /// Chance that a transaction opens a new session, in percent.
    pub new_session_percent: u32,
    /// Writer processes started per trial, all on the same database.
    pub writers: u32,
    /// Upper bound on the transactions one writer process runs before it stops by itself.
    pub txns_max: u64,
    /// Upper bound on one writer process's life, in milliseconds.
    pub writer_lifetime_ms_max: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            page_size_bytes: 4096,
            cache_size_kib: 256,
            busy_timeout_ms: 5000,
            seed_messages: 100,
            seed_sessions: 5,
            message_bytes_min: 20,
            message_bytes_max: 20 * 1024,
            huge_message_bytes: 256 * 1024,
            huge_message_per_mille: 2,
            json_sentinel_percent: 10,
            compress_percent: 3,
            compress_keep_last: 4,
            new_session_percent: 2,
            writers: 1,
            txns_max: 1_000_000,
            writer_lifetime_ms_max: 120_000,
        }
    }
}
// TEMP STUB
pub const SEED_WRITER: u64 = 0;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnKind {
    Seed,
    Create,
    Append,
    Compress,
    Recovery,
}
pub struct TxnSummary {
    pub seq: u64,
    pub kind: TxnKind,
    pub rows: u64,
}
pub struct TxnWriter;
impl TxnWriter {
    pub fn new(_writer_id: u64, _seed: u64, _cfg: &WorkloadConfig) -> TxnWriter {
        TxnWriter
    }
    pub fn next_seq(&self) -> u64 {
        1
    }
    pub fn force_bulk_next(&mut self) {}
    pub fn run_txn(
        &mut self,
        _conn: &mut rusqlite::Connection,
        _m: &mut dyn FnMut(u64),
    ) -> rusqlite::Result<TxnSummary> {
        todo!()
    }
}
pub fn create_schema(_conn: &rusqlite::Connection, _cfg: &WorkloadConfig) -> rusqlite::Result<()> {
    todo!()
}
pub fn seed(_conn: &mut rusqlite::Connection, _cfg: &WorkloadConfig, _seed: u64) -> rusqlite::Result<u64> {
    todo!()
}

//! The oracle: checks 1–8 of DESIGN §6 applied to one crash image.
//!
//! INTERFACE (fixed; implementation below is owned by the oracle helper).
//! A check that cannot run for reasons of its own (an I/O error of the harness) returns
//! `Err`, never a pass; a check that cannot run because the image failed an earlier check is
//! `Blocked`, which is not a pass either.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One named check; a failed check is a violation of this kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// 1. the image opens and a first read succeeds.
    Open,
    /// 2. `PRAGMA integrity_check`.
    Integrity,
    /// 3. FTS5 `integrity-check` on every FTS table, and sampled MATCH queries.
    Fts,
    /// 4. every acknowledged commit is present.
    LostAck,
    /// 5. nothing is present that was never begun.
    Phantom,
    /// 6. every transaction is wholly present or wholly absent.
    Atomicity,
    /// 7. per writer, the present transactions have no holes.
    Prefix,
    /// 8. a new message can be appended after recovery.
    ReopenWrite,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 8] = [
        ViolationKind::Open,
        ViolationKind::Integrity,
        ViolationKind::Fts,
        ViolationKind::LostAck,
        ViolationKind::Phantom,
        ViolationKind::Atomicity,
        ViolationKind::Prefix,
        ViolationKind::ReopenWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Open => "open",
            ViolationKind::Integrity => "integrity",
            ViolationKind::Fts => "fts",
            ViolationKind::LostAck => "lost_ack",
            ViolationKind::Phantom => "phantom",
            ViolationKind::Atomicity => "atomicity",
            ViolationKind::Prefix => "prefix",
            ViolationKind::ReopenWrite => "reopen_write",
        }
    }
}

/// The outcome of one check on one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    Pass,
    Violation {
        detail: String,
    },
    /// Could not run because the image failed an earlier check (e.g. it does not open).
    Blocked {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: ViolationKind,
    #[serde(flatten)]
    pub outcome: CheckOutcome,
    pub elapsed_us: u64,
}

/// What the acknowledgement channel says about one writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterExpectation {
    /// Highest sequence number acknowledged (every `1..=acked` must be present); 0 for none.
    pub acked: u64,
    /// Highest sequence number begun (nothing above it may be present); 0 for none.
    pub begun: u64,
}

/// Everything the oracle knows about who wrote what, keyed by writer id. A ledger row of a
/// writer not in this map is a phantom.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub writers: BTreeMap<u64, WriterExpectation>,
}
// TEMP STUB
use std::path::Path;
pub struct CheckConfig {
    pub integrity: crate::scenario::IntegrityLevel,
    pub fts_samples: u32,
    pub seed: u64,
    pub reopen: ReopenConfig,
}
pub struct ReopenConfig {
    pub pragmas: Option<crate::pragmas::Pragmas>,
    pub writer_id: u64,
    pub workload: crate::workload::WorkloadConfig,
}
pub struct CheckReport {
    pub results: Vec<CheckResult>,
    pub present: BTreeMap<u64, u64>,
    pub session_store: bool,
}
impl CheckReport {
    pub fn violations(&self) -> Vec<ViolationKind> {
        todo!()
    }
}
pub fn check_image(_db_path: &Path, _cfg: &CheckConfig, _expected: Option<&Expected>) -> anyhow::Result<CheckReport> {
    todo!()
}
pub fn check_copy(_db_path: &Path, _cfg: &CheckConfig, _expected: Option<&Expected>) -> anyhow::Result<CheckReport> {
    todo!()
}

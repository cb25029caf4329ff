//! What the acknowledgements say must be in a database, per writer: the lower bound (every
//! acknowledged commit) and the upper bound (nothing beyond what was begun).
//!
//! Leaf module.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the acknowledgement channel says about one writer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterExpectation {
    /// Highest sequence number acknowledged; 0 for none. Every `1..=acked` but `unacked` must
    /// be present.
    pub acked: u64,
    /// Highest sequence number begun (nothing above it may be present); 0 for none.
    pub begun: u64,
    /// Sequence numbers below `acked` that were begun and never acknowledged: a COMMIT that
    /// reported an I/O error although its transaction was in the file. They may be present or
    /// absent; losing one loses nothing anyone was told had committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unacked: Vec<u64>,
}

impl WriterExpectation {
    /// Every `1..=acked` acknowledged, `begun` begun.
    pub fn upto(acked: u64, begun: u64) -> WriterExpectation {
        WriterExpectation { acked, begun, unacked: Vec::new() }
    }

    /// From the sequence numbers acknowledged (in any order) and the highest begun.
    pub fn from_acked(acked: &[u64], begun: u64) -> WriterExpectation {
        let set: std::collections::BTreeSet<u64> = acked.iter().copied().collect();
        let max = set.last().copied().unwrap_or(0);
        WriterExpectation {
            acked: max,
            begun: begun.max(max),
            unacked: (1..max).filter(|s| !set.contains(s)).collect(),
        }
    }
}

/// Everything the oracle knows about who wrote what, keyed by writer id. A ledger row of a
/// writer not in this map is a phantom.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub writers: BTreeMap<u64, WriterExpectation>,
}

//! What the acknowledgements say must be in a database, per writer: the lower bound (every
//! acknowledged commit) and the upper bound (nothing beyond what was begun).
//!
//! Leaf module.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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
    /// The keys of an application's own writer (`writer::external`), whose acknowledgements name
    /// keys rather than sequence numbers: per writer, the key of each sequence number (index
    /// `seq - 1`, numbered in the order the writer first named them). Empty for the built-in
    /// writer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<u64, Vec<String>>,
    /// Keys the cell's template held before any writer ran (its setup's rows): present without
    /// having been begun.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub seeded_keys: BTreeSet<String>,
    /// Every writer announced its transactions (`begin KEY`), so a key present that none of them
    /// named is a phantom. Without begins only acknowledged keys are known, and a transaction
    /// that committed just before its acknowledgement could be written would look like one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub begins: bool,
}

impl Expected {
    /// The built-in writer's expectation: sequence numbers per writer.
    pub fn of_writers(writers: BTreeMap<u64, WriterExpectation>) -> Expected {
        Expected { writers, ..Expected::default() }
    }

    /// Per key an acknowledged commit of an application's writer: (writer, key).
    pub fn acked_keys(&self) -> impl Iterator<Item = (u64, &str)> {
        self.writers.iter().flat_map(move |(&w, e)| {
            let keys = self.keys.get(&w);
            (1..=e.acked)
                .filter(move |s| !e.unacked.contains(s))
                .filter_map(move |s| keys.and_then(|k| k.get(s as usize - 1)).map(|k| (w, k.as_str())))
        })
    }

    /// Whether `key` was named by a writer or held by the template.
    pub fn knows_key(&self, key: &str) -> bool {
        self.seeded_keys.contains(key) || self.keys.values().any(|k| k.iter().any(|k| k == key))
    }
}

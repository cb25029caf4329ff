//! The matrix: the axes a cell is made of (journal mode, synchronous, fault, SIGTERM behaviour,
//! checkpoint policy, kill timing) and the pure expansion of scenario blocks into cells.
//!
//! Expansion never fails and never touches the file system. An axis that does not apply to a
//! cell is normalised away (`None`) before de-duplication, so `delete/full` appears once however
//! many checkpoint policies a block lists: checkpoint policies only mean something in WAL mode,
//! and the SIGTERM behaviour only when a SIGTERM is sent.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `PRAGMA journal_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalMode {
    Wal,
    Delete,
    Truncate,
    Persist,
    Memory,
    Off,
}

impl JournalMode {
    pub const ALL: [JournalMode; 6] = [
        JournalMode::Wal,
        JournalMode::Delete,
        JournalMode::Truncate,
        JournalMode::Persist,
        JournalMode::Memory,
        JournalMode::Off,
    ];

    /// The value as `PRAGMA journal_mode` takes it and reads it back (lower case).
    pub fn as_sql(self) -> &'static str {
        match self {
            JournalMode::Wal => "wal",
            JournalMode::Delete => "delete",
            JournalMode::Truncate => "truncate",
            JournalMode::Persist => "persist",
            JournalMode::Memory => "memory",
            JournalMode::Off => "off",
        }
    }

    pub fn is_wal(self) -> bool {
        matches!(self, JournalMode::Wal)
    }

    /// True when the journal lives on disk, so a killed transaction can be rolled back.
    pub fn is_journalled(self) -> bool {
        match self {
            JournalMode::Wal | JournalMode::Delete | JournalMode::Truncate | JournalMode::Persist => true,
            JournalMode::Memory | JournalMode::Off => false,
        }
    }
}

/// `PRAGMA synchronous`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    Off,
    Normal,
    Full,
    Extra,
}

impl Synchronous {
    pub const ALL: [Synchronous; 4] = [Synchronous::Off, Synchronous::Normal, Synchronous::Full, Synchronous::Extra];

    pub fn as_sql(self) -> &'static str {
        match self {
            Synchronous::Off => "off",
            Synchronous::Normal => "normal",
            Synchronous::Full => "full",
            Synchronous::Extra => "extra",
        }
    }

    /// What `PRAGMA synchronous` reads back: 0, 1, 2 or 3.
    pub fn pragma_value(self) -> i64 {
        match self {
            Synchronous::Off => 0,
            Synchronous::Normal => 1,
            Synchronous::Full => 2,
            Synchronous::Extra => 3,
        }
    }
}

/// When the writer checkpoints a WAL database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointPolicy {
    /// SQLite's default: `wal_autocheckpoint=1000`, set explicitly.
    Auto,
    /// `wal_autocheckpoint=0` and `PRAGMA wal_checkpoint(PASSIVE)` after every 50 commits.
    #[serde(rename = "passive_every_50")]
    PassiveEvery50,
    /// `wal_autocheckpoint=1000` and `PRAGMA wal_checkpoint(TRUNCATE)` before a clean close.
    TruncateOnClose,
    /// `wal_autocheckpoint=0` and never a checkpoint: the WAL grows for the writer's life.
    None,
}

impl CheckpointPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointPolicy::Auto => "auto",
            CheckpointPolicy::PassiveEvery50 => "passive_every_50",
            CheckpointPolicy::TruncateOnClose => "truncate_on_close",
            CheckpointPolicy::None => "none",
        }
    }

    /// The `wal_autocheckpoint` value this policy sets (in pages).
    pub fn wal_autocheckpoint_pages(self) -> i64 {
        match self {
            CheckpointPolicy::Auto | CheckpointPolicy::TruncateOnClose => 1000,
            CheckpointPolicy::PassiveEvery50 | CheckpointPolicy::None => 0,
        }
    }
}

/// The mode of an explicit `PRAGMA wal_checkpoint(MODE)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointMode {
    Passive,
    Full,
    Restart,
    Truncate,
}

impl CheckpointMode {
    pub fn as_sql(self) -> &'static str {
        match self {
            CheckpointMode::Passive => "PASSIVE",
            CheckpointMode::Full => "FULL",
            CheckpointMode::Restart => "RESTART",
            CheckpointMode::Truncate => "TRUNCATE",
        }
    }
}

/// What the writer does on SIGTERM (DESIGN §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigtermBehaviour {
    /// The default disposition: the process dies at once.
    Default,
    /// Finish the transaction in flight, checkpoint, close, exit 0 (the proposed fix).
    Graceful,
    /// SIG_IGN: only the SIGKILL after the grace period stops it.
    Ignore,
}

impl SigtermBehaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            SigtermBehaviour::Default => "default",
            SigtermBehaviour::Graceful => "graceful",
            SigtermBehaviour::Ignore => "ignore",
        }
    }
}

/// The fault injected in a trial. Later fault models (power loss, I/O errors, hazards) extend
/// this enum; every `match` on it is exhaustive so the compiler lists what they must handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGTERM, then SIGKILL after the grace period if the writer is still alive.
    Kill,
    /// SIGKILL alone.
    SigkillOnly,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::SigkillOnly => "sigkill_only",
        }
    }

    /// True when the fault sends SIGTERM first, so the SIGTERM behaviour axis applies.
    pub fn sends_sigterm(self) -> bool {
        match self {
            FaultKind::Kill => true,
            FaultKind::SigkillOnly => false,
        }
    }
}

/// When in the writer's life the fault's first signal is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillTiming {
    /// Uniformly at random in `[kill_at_ms_min, kill_at_ms_max]` after the writer is ready.
    Uniform,
    /// At a random moment in `[0, bulk_delay_us_max]` after the writer announces it is inside a
    /// bulk (delete-and-reinsert) transaction: the kill lands mid-transaction almost surely.
    Bulk,
}

impl KillTiming {
    pub fn as_str(self) -> &'static str {
        match self {
            KillTiming::Uniform => "uniform",
            KillTiming::Bulk => "bulk",
        }
    }
}

/// One point of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cell {
    pub journal_mode: JournalMode,
    pub synchronous: Synchronous,
    pub fault: FaultKind,
    /// `None` when the fault sends no SIGTERM.
    pub sigterm: Option<SigtermBehaviour>,
    /// `None` outside WAL mode, where there is nothing to checkpoint.
    pub checkpoint: Option<CheckpointPolicy>,
    pub timing: KillTiming,
}

impl Cell {
    /// The cell's stable identifier, e.g. `wal/normal/kill/auto-checkpoint`,
    /// `delete/full/kill-graceful`, `off/off/sigkill_only@bulk`.
    pub fn id(&self) -> String {
        let mut id = format!("{}/{}/{}", self.journal_mode.as_sql(), self.synchronous.as_sql(), self.fault.as_str());
        match self.sigterm {
            Some(SigtermBehaviour::Default) | None => {}
            Some(b) => {
                id.push('-');
                id.push_str(b.as_str());
            }
        }
        if let Some(policy) = self.checkpoint {
            id.push('/');
            id.push_str(policy.as_str());
            id.push_str("-checkpoint");
        }
        match self.timing {
            KillTiming::Uniform => {}
            KillTiming::Bulk => id.push_str("@bulk"),
        }
        id
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id())
    }
}

/// One `[[matrix]]` block of a scenario: the cartesian product of its axes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixBlock {
    pub journal_mode: Vec<JournalMode>,
    pub synchronous: Vec<Synchronous>,
    pub fault: Vec<FaultKind>,
    pub sigterm: Vec<SigtermBehaviour>,
    pub checkpoint: Vec<CheckpointPolicy>,
    pub timing: Vec<KillTiming>,
}

/// Expands blocks into cells: each block's cartesian product in axis order, blocks in order,
/// inapplicable axes normalised to `None`, duplicates dropped (the first occurrence is kept).
pub fn expand(blocks: &[MatrixBlock]) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for block in blocks {
        for &journal_mode in &block.journal_mode {
            for &synchronous in &block.synchronous {
                for &fault in &block.fault {
                    for &sigterm in &block.sigterm {
                        for &checkpoint in &block.checkpoint {
                            for &timing in &block.timing {
                                let cell = Cell {
                                    journal_mode,
                                    synchronous,
                                    fault,
                                    sigterm: fault.sends_sigterm().then_some(sigterm),
                                    checkpoint: journal_mode.is_wal().then_some(checkpoint),
                                    timing,
                                };
                                if seen.insert(cell) {
                                    cells.push(cell);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sub<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = Vec<T>> {
        proptest::sample::subsequence(all, 0..=all.len())
    }

    fn block() -> impl Strategy<Value = MatrixBlock> {
        const F: [FaultKind; 2] = [FaultKind::Kill, FaultKind::SigkillOnly];
        const S: [SigtermBehaviour; 3] =
            [SigtermBehaviour::Default, SigtermBehaviour::Graceful, SigtermBehaviour::Ignore];
        const C: [CheckpointPolicy; 4] = [
            CheckpointPolicy::Auto,
            CheckpointPolicy::PassiveEvery50,
            CheckpointPolicy::TruncateOnClose,
            CheckpointPolicy::None,
        ];
        const T: [KillTiming; 2] = [KillTiming::Uniform, KillTiming::Bulk];
        (sub(&JournalMode::ALL), sub(&Synchronous::ALL), sub(&F), sub(&S), sub(&C), sub(&T)).prop_map(
            |(journal_mode, synchronous, fault, sigterm, checkpoint, timing)| MatrixBlock {
                journal_mode,
                synchronous,
                fault,
                sigterm,
                checkpoint,
                timing,
            },
        )
    }

    #[test]
    fn design_example_id() {
        let cell = Cell {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            fault: FaultKind::Kill,
            sigterm: Some(SigtermBehaviour::Default),
            checkpoint: Some(CheckpointPolicy::Auto),
            timing: KillTiming::Uniform,
        };
        assert_eq!(cell.id(), "wal/normal/kill/auto-checkpoint");
    }

    #[test]
    fn inapplicable_axes_collapse() {
        let block = MatrixBlock {
            journal_mode: vec![JournalMode::Delete],
            synchronous: vec![Synchronous::Full],
            fault: vec![FaultKind::SigkillOnly],
            sigterm: vec![SigtermBehaviour::Default, SigtermBehaviour::Graceful, SigtermBehaviour::Ignore],
            checkpoint: vec![CheckpointPolicy::Auto, CheckpointPolicy::None],
            timing: vec![KillTiming::Uniform],
        };
        let cells = expand(&[block]);
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].id(), "delete/full/sigkill_only");
    }

    proptest! {
        /// Ids are unique, every cell comes from some block, and every applicable combination
        /// of every block is present.
        #[test]
        fn expansion_is_exact(blocks in proptest::collection::vec(block(), 0..4)) {
            let cells = expand(&blocks);
            let ids: std::collections::HashSet<String> = cells.iter().map(Cell::id).collect();
            prop_assert_eq!(ids.len(), cells.len());
            for cell in &cells {
                prop_assert_eq!(cell.checkpoint.is_some(), cell.journal_mode.is_wal());
                prop_assert_eq!(cell.sigterm.is_some(), cell.fault.sends_sigterm());
                prop_assert!(blocks.iter().any(|b| b.journal_mode.contains(&cell.journal_mode)
                    && b.synchronous.contains(&cell.synchronous)
                    && b.fault.contains(&cell.fault)
                    && b.timing.contains(&cell.timing)
                    && cell.sigterm.is_none_or(|s| b.sigterm.contains(&s))
                    && cell.checkpoint.is_none_or(|c| b.checkpoint.contains(&c))));
            }
            for b in &blocks {
                for &j in &b.journal_mode { for &s in &b.synchronous { for &f in &b.fault {
                    for &t in &b.sigterm { for &c in &b.checkpoint { for &k in &b.timing {
                        let want = Cell { journal_mode: j, synchronous: s, fault: f,
                            sigterm: f.sends_sigterm().then_some(t),
                            checkpoint: j.is_wal().then_some(c), timing: k };
                        prop_assert!(cells.contains(&want));
                    }}}
                }}}
            }
        }

        /// Expansion is deterministic and order-preserving: expanding twice gives the same list.
        #[test]
        fn expansion_is_deterministic(blocks in proptest::collection::vec(block(), 0..3)) {
            prop_assert_eq!(expand(&blocks), expand(&blocks));
        }
    }
}

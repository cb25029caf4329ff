//! The matrix: the axes a cell is made of (journal mode, synchronous, fault, SIGTERM behaviour,
//! checkpoint policy, kill timing, device, fullfsync, the writers' SQLite build) and the pure
//! expansion of scenario blocks into cells.
//!
//! Expansion never fails and never touches the file system. An axis that does not apply to a
//! cell is normalised away (`None`) before de-duplication, so `delete/full` appears once however
//! many checkpoint policies a block lists: checkpoint policies only mean something in WAL mode,
//! and the SIGTERM behaviour only when a SIGTERM is sent.

use crate::sqlite::builds::SqliteBuild;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;

/// The SQLite build a cell's writers run on (the `sqlite` axis), as a scenario names it:
/// `bundled`, `system`, a version such as `3.41.2`, or a path to a `libsqlite3.so`
/// ([`SqliteBuild`]). Interned, so that a cell stays `Copy`; only a name that is a build
/// spelling is ever made.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SqliteName(&'static str);

impl SqliteName {
    /// The SQLite crashfuzz is linked with: the default.
    pub const BUNDLED: SqliteName = SqliteName("bundled");

    /// The name of `build` (its canonical spelling).
    pub fn of(build: &SqliteBuild) -> SqliteName {
        static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
        let spelled = build.to_string();
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        if spelled == Self::BUNDLED.0 {
            return Self::BUNDLED;
        }
        if let Some(&name) = names.get(spelled.as_str()) {
            return SqliteName(name);
        }
        // Leaked once per distinct name: a campaign names a handful of builds.
        let name: &'static str = Box::leak(spelled.into_boxed_str());
        names.insert(name);
        SqliteName(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    pub fn is_bundled(&self) -> bool {
        *self == Self::BUNDLED
    }

    /// The build this names.
    pub fn build(self) -> SqliteBuild {
        self.0.parse().expect("a SqliteName is only made from a build")
    }

    fn bundled() -> SqliteName {
        Self::BUNDLED
    }
}

impl fmt::Debug for SqliteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for SqliteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for SqliteName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for SqliteName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SqliteBuild::deserialize(d).map(|b| SqliteName::of(&b))
    }
}

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
    /// `wal_autocheckpoint=1000` and `PRAGMA wal_checkpoint(TRUNCATE)` every
    /// `topology.checkpoint_timer_ms` by the first connection of each writer process.
    TruncateOnTimer,
}

impl CheckpointPolicy {
    pub const ALL: [CheckpointPolicy; 5] = [
        CheckpointPolicy::Auto,
        CheckpointPolicy::PassiveEvery50,
        CheckpointPolicy::TruncateOnClose,
        CheckpointPolicy::None,
        CheckpointPolicy::TruncateOnTimer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointPolicy::Auto => "auto",
            CheckpointPolicy::PassiveEvery50 => "passive_every_50",
            CheckpointPolicy::TruncateOnClose => "truncate_on_close",
            CheckpointPolicy::None => "none",
            CheckpointPolicy::TruncateOnTimer => "truncate_on_timer",
        }
    }

    /// The `wal_autocheckpoint` value this policy sets (in pages).
    pub fn wal_autocheckpoint_pages(self) -> i64 {
        match self {
            CheckpointPolicy::Auto | CheckpointPolicy::TruncateOnClose | CheckpointPolicy::TruncateOnTimer => 1000,
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
    pub const ALL: [CheckpointMode; 4] =
        [CheckpointMode::Passive, CheckpointMode::Full, CheckpointMode::Restart, CheckpointMode::Truncate];

    pub fn as_sql(self) -> &'static str {
        match self {
            CheckpointMode::Passive => "PASSIVE",
            CheckpointMode::Full => "FULL",
            CheckpointMode::Restart => "RESTART",
            CheckpointMode::Truncate => "TRUNCATE",
        }
    }
}

/// What the writer does on SIGTERM: die at once (`default`), finish its transaction,
/// checkpoint and close (`graceful`, the fix the production case proposed), or `ignore` it.
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
    pub const ALL: [SigtermBehaviour; 3] =
        [SigtermBehaviour::Default, SigtermBehaviour::Graceful, SigtermBehaviour::Ignore];

    pub fn as_str(self) -> &'static str {
        match self {
            SigtermBehaviour::Default => "default",
            SigtermBehaviour::Graceful => "graceful",
            SigtermBehaviour::Ignore => "ignore",
        }
    }
}

/// What a fault is, statically: which optional axes of the matrix apply to it, whether its
/// writers run on the tracing VFS, and whether it is misuse rather than a fault of the machine.
/// Each fault's line in `fault::every_fault!` sets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultTraits {
    /// The fault sends SIGTERM first, so the SIGTERM-behaviour axis applies.
    pub sigterm: bool,
    /// The driver picks the moment of the fault, so the timing axis applies (a crash point is
    /// an operation index, and an I/O error's kill follows the error).
    pub timing: bool,
    /// A power loss: the device and fullfsync axes apply.
    pub device: bool,
    /// Writers run on the tracing VFS.
    pub vfs: bool,
    /// Misuse SQLite documents as corrupting (a hazard), not a fault of the machine.
    pub hazard: bool,
}

/// `FaultKind` from the fault list (invoked by `fault::every_fault!` here).
#[macro_export]
macro_rules! fault_kinds {
    ($($variant:ident $name:literal { $($traits:ident),* } $module:ident,)*) => {
        /// The fault injected in a trial: one variant per line of `fault::every_fault!`, whose
        /// module under `src/fault/` says what it does. Every `match` on it is exhaustive.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum FaultKind {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl FaultKind {
            /// Every fault, in the order of the list.
            pub const ALL: &'static [FaultKind] = &[$(FaultKind::$variant,)*];

            /// The fault's name in scenarios and cell ids.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FaultKind::$variant => $name,)*
                }
            }

            pub fn traits(self) -> FaultTraits {
                match self {
                    $(FaultKind::$variant => FaultTraits { $($traits: true,)* ..FaultTraits::default() },)*
                }
            }
        }

        impl std::str::FromStr for FaultKind {
            type Err = String;
            fn from_str(s: &str) -> Result<FaultKind, String> {
                FaultKind::ALL.iter().copied().find(|f| f.as_str() == s).ok_or_else(|| format!("unknown fault {s:?}"))
            }
        }
    };
}

crate::every_fault!(fault_kinds);

impl FaultKind {
    /// True for the hazards (misuse SQLite documents as corrupting, not a fault of the machine).
    pub fn is_hazard(self) -> bool {
        self.traits().hazard
    }

    /// True when the fault sends SIGTERM first, so the SIGTERM behaviour axis applies.
    pub fn sends_sigterm(self) -> bool {
        self.traits().sigterm
    }

    /// True when the driver picks the moment of the fault, so the timing axis applies.
    pub fn has_timing(self) -> bool {
        self.traits().timing
    }

    /// True when writers run on the tracing VFS.
    pub fn uses_vfs(self) -> bool {
        self.traits().vfs
    }
}

/// The storage device a power loss happens on (the `device` axis; power loss only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceModel {
    /// Every fsync is a write barrier (Linux on honest hardware).
    Barrier,
    /// Plain fsync orders nothing; only syncs carrying SQLITE_SYNC_FULL are barriers (an OS
    /// like macOS, where fsync does not flush the drive's cache without F_FULLFSYNC).
    NoBarrier,
}

impl DeviceModel {
    pub const ALL: [DeviceModel; 2] = [DeviceModel::Barrier, DeviceModel::NoBarrier];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceModel::Barrier => "barrier",
            DeviceModel::NoBarrier => "no_barrier",
        }
    }

    pub fn fsync_barrier(self) -> bool {
        match self {
            DeviceModel::Barrier => true,
            DeviceModel::NoBarrier => false,
        }
    }
}

/// `PRAGMA fullfsync` and `PRAGMA checkpoint_fullfsync` (the `fullfsync` axis). On Linux they
/// change nothing the kernel does, only the flag SQLite passes to xSync, which the power-loss
/// model's no-barrier device honours: this is the fix the original case's maintainers shipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullFsync {
    /// Both off (SQLite's default).
    Off,
    /// `checkpoint_fullfsync=1`: only checkpoint syncs carry SQLITE_SYNC_FULL.
    Checkpoint,
    /// `fullfsync=1`: every sync carries SQLITE_SYNC_FULL.
    On,
}

impl FullFsync {
    pub const ALL: [FullFsync; 3] = [FullFsync::Off, FullFsync::Checkpoint, FullFsync::On];

    pub fn as_str(self) -> &'static str {
        match self {
            FullFsync::Off => "off",
            FullFsync::Checkpoint => "checkpoint",
            FullFsync::On => "on",
        }
    }

    /// (`PRAGMA fullfsync`, `PRAGMA checkpoint_fullfsync`).
    pub fn pragmas(self) -> (bool, bool) {
        match self {
            FullFsync::Off => (false, false),
            FullFsync::Checkpoint => (false, true),
            FullFsync::On => (true, false),
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
    pub const ALL: [KillTiming; 2] = [KillTiming::Uniform, KillTiming::Bulk];

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
    /// `Uniform` when the fault has no timing of its own choosing.
    pub timing: KillTiming,
    /// `None` unless the fault is a power loss.
    pub device: Option<DeviceModel>,
    pub fullfsync: FullFsync,
    /// The SQLite build the writers run on.
    #[serde(default = "SqliteName::bundled", skip_serializing_if = "SqliteName::is_bundled")]
    pub sqlite: SqliteName,
}

impl Cell {
    /// The cell's stable identifier, e.g. `wal/normal/kill/auto-checkpoint`,
    /// `delete/full/kill-graceful`, `off/off/sigkill_only@bulk`,
    /// `wal/full/power_loss+no_barrier+checkpoint_fullfsync/auto-checkpoint`,
    /// `wal/full/lock_cancel/auto-checkpoint[3.41.2]` (writers on a build other than the
    /// bundled one).
    pub fn id(&self) -> String {
        let mut id = format!("{}/{}/{}", self.journal_mode.as_sql(), self.synchronous.as_sql(), self.fault.as_str());
        match self.sigterm {
            Some(SigtermBehaviour::Default) | None => {}
            Some(b) => {
                id.push('-');
                id.push_str(b.as_str());
            }
        }
        match self.device {
            Some(DeviceModel::Barrier) | None => {}
            Some(DeviceModel::NoBarrier) => id.push_str("+no_barrier"),
        }
        match self.fullfsync {
            FullFsync::Off => {}
            FullFsync::Checkpoint => id.push_str("+checkpoint_fullfsync"),
            FullFsync::On => id.push_str("+fullfsync"),
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
        if !self.sqlite.is_bundled() {
            id.push_str(&format!("[{}]", self.sqlite));
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
    pub device: Vec<DeviceModel>,
    pub fullfsync: Vec<FullFsync>,
    pub sqlite: Vec<SqliteName>,
}

impl Cell {
    /// The cell with every axis that does not apply to it normalised away.
    #[allow(clippy::too_many_arguments)]
    pub fn normalised(
        journal_mode: JournalMode,
        synchronous: Synchronous,
        fault: FaultKind,
        sigterm: SigtermBehaviour,
        checkpoint: CheckpointPolicy,
        timing: KillTiming,
        device: DeviceModel,
        fullfsync: FullFsync,
        sqlite: SqliteName,
    ) -> Cell {
        Cell {
            journal_mode,
            synchronous,
            fault,
            sigterm: fault.sends_sigterm().then_some(sigterm),
            checkpoint: journal_mode.is_wal().then_some(checkpoint),
            timing: if fault.has_timing() { timing } else { KillTiming::Uniform },
            device: fault.traits().device.then_some(device),
            fullfsync,
            sqlite,
        }
    }
}

/// Expands blocks into cells: each block's cartesian product in axis order, blocks in order,
/// inapplicable axes normalised away ([`Cell::normalised`]), duplicates dropped (the first
/// occurrence is kept).
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
                                for &device in &block.device {
                                    for &fullfsync in &block.fullfsync {
                                        for &sqlite in &block.sqlite {
                                            let cell = Cell::normalised(
                                                journal_mode,
                                                synchronous,
                                                fault,
                                                sigterm,
                                                checkpoint,
                                                timing,
                                                device,
                                                fullfsync,
                                                sqlite,
                                            );
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
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A few builds for the `sqlite` axis (the names only: expansion never resolves them).
    static SQLITES: std::sync::LazyLock<Vec<SqliteName>> = std::sync::LazyLock::new(|| {
        ["bundled", "system", "3.41.2"].iter().map(|n| SqliteName::of(&n.parse().unwrap())).collect()
    });

    fn sub<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = Vec<T>> {
        proptest::sample::subsequence(all, 0..=all.len())
    }

    fn block() -> impl Strategy<Value = MatrixBlock> {
        (
            (sub(&JournalMode::ALL), sub(&Synchronous::ALL), sub(FaultKind::ALL), sub(&SigtermBehaviour::ALL)),
            (sub(&CheckpointPolicy::ALL), sub(&KillTiming::ALL), sub(&DeviceModel::ALL), sub(&FullFsync::ALL)),
            sub(&SQLITES),
        )
            .prop_map(
                |((journal_mode, synchronous, fault, sigterm), (checkpoint, timing, device, fullfsync), sqlite)| {
                    MatrixBlock {
                        journal_mode,
                        synchronous,
                        fault,
                        sigterm,
                        checkpoint,
                        timing,
                        device,
                        fullfsync,
                        sqlite,
                    }
                },
            )
    }

    #[test]
    fn design_example_id() {
        let cell = Cell::normalised(
            JournalMode::Wal,
            Synchronous::Normal,
            FaultKind::Kill,
            SigtermBehaviour::Default,
            CheckpointPolicy::Auto,
            KillTiming::Uniform,
            DeviceModel::Barrier,
            FullFsync::Off,
            SqliteName::BUNDLED,
        );
        assert_eq!(cell.id(), "wal/normal/kill/auto-checkpoint");
        let power = Cell {
            fault: FaultKind::PowerLoss,
            sigterm: None,
            device: Some(DeviceModel::NoBarrier),
            fullfsync: FullFsync::Checkpoint,
            ..cell
        };
        assert_eq!(power.id(), "wal/normal/power_loss+no_barrier+checkpoint_fullfsync/auto-checkpoint");
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
            device: vec![DeviceModel::Barrier, DeviceModel::NoBarrier],
            fullfsync: vec![FullFsync::Off],
            sqlite: vec![SqliteName::BUNDLED],
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
                prop_assert_eq!(cell.device.is_some(), cell.fault.traits().device);
                prop_assert!(cell.fault.has_timing() || cell.timing == KillTiming::Uniform);
                prop_assert!(blocks.iter().any(|b| b.journal_mode.contains(&cell.journal_mode)
                    && b.synchronous.contains(&cell.synchronous)
                    && b.fault.contains(&cell.fault)
                    && (b.timing.contains(&cell.timing) || !cell.fault.has_timing())
                    && b.fullfsync.contains(&cell.fullfsync)
                    && b.sqlite.contains(&cell.sqlite)
                    && cell.sigterm.is_none_or(|s| b.sigterm.contains(&s))
                    && cell.device.is_none_or(|d| b.device.contains(&d))
                    && cell.checkpoint.is_none_or(|c| b.checkpoint.contains(&c))));
            }
            for b in &blocks {
                for &j in &b.journal_mode { for &s in &b.synchronous { for &f in &b.fault {
                    for &t in &b.sigterm { for &c in &b.checkpoint { for &k in &b.timing {
                        for &d in &b.device { for &x in &b.fullfsync { for &q in &b.sqlite {
                            let want = Cell::normalised(j, s, f, t, c, k, d, x, q);
                            prop_assert!(cells.contains(&want));
                        }}}
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

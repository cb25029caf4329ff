//! Expectations and verdicts: per cell, which violation kinds are `forbidden`,
//! `allowed` or `required`, built in from SQLite's documented promises (the table below) and
//! overridable per cell by a scenario's `[[expect]]` blocks; and the verdict of a cell from its
//! violation counts.
//!
//! What SQLite promises (its pages on pragmas, WAL, atomic commit and "how to corrupt"), and so
//! what the built-in expectations say:
//!
//! | journal mode | synchronous | process kill | power loss / OS crash |
//! |---|---|---|---|
//! | WAL | OFF | atomic, durable | may corrupt; unsynced commits lost (canary: lost_ack) |
//! | WAL | NORMAL | atomic, durable | consistent; the last commits may roll back (canary: lost_ack) |
//! | WAL | FULL, EXTRA | atomic, durable | atomic and durable, if fsync is honest |
//! | DELETE | OFF | atomic, durable | pages reach the disk before the journal (canary: damage) |
//! | DELETE | NORMAL | atomic, durable | a very small chance of corruption: measured |
//! | DELETE | FULL | atomic, durable | no corruption; the journal's unlink is not durable, so the last commit may roll back (canary: lost_ack) |
//! | DELETE | EXTRA | atomic, durable | atomic and durable (the directory is synced after the unlink) |
//! | TRUNCATE, PERSIST | NORMAL+ | atomic, durable | no documented promise: measured |
//! | MEMORY, OFF | any | a kill inside a write transaction very likely corrupts (canary) | no promise |
//!
//! A killed process loses nothing that reached the OS page cache, so a kill cannot tell the
//! synchronous levels apart; only a power loss (unsynced writes dropped or torn) can. A device
//! whose plain fsync is no barrier (`device = "no_barrier"`) promises nothing unless every
//! sync is a full one. An injected I/O error must roll back the failed transaction and nothing
//! else. A hazard (misuse) is never `forbidden`: where its harm is certain it is a canary,
//! elsewhere it is measured. A writer that crashes (`writer_crash`) is forbidden wherever the
//! fault is not misuse.
//!
//! Everything here is a pure function of its inputs. The built-in table is never weakened to
//! make a run green: a canary that cannot fire is a finding, not a setting to turn off.

use crate::record::checks::ViolationKind;
use crate::scenario::matrix::{
    Cell, CheckpointPolicy, DeviceModel, FaultKind, FullFsync, JournalMode, KillTiming, SigtermBehaviour, Synchronous,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// One occurrence makes the cell a regression.
    Forbidden,
    /// May happen; SQLite promises nothing here.
    Allowed,
    /// A positive control: the cell is a silent canary unless at least one violation of some
    /// `required` kind happens in the campaign.
    Required,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Forbidden => "forbidden",
            Level::Allowed => "allowed",
            Level::Required => "required",
        }
    }
}

/// A level for every violation kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    pub levels: BTreeMap<ViolationKind, Level>,
    /// Where the levels came from: "builtin: REASON", then one entry per applied override.
    pub source: Vec<String>,
}

impl Expectation {
    fn uniform(level: Level, reason: &str) -> Expectation {
        Expectation {
            levels: ViolationKind::ALL.iter().map(|&k| (k, level)).collect(),
            source: vec![format!("builtin: {reason}")],
        }
    }

    pub fn level(&self, kind: ViolationKind) -> Level {
        self.levels.get(&kind).copied().unwrap_or(Level::Forbidden)
    }

    /// A canary cell has at least one `required` kind.
    pub fn is_canary(&self) -> bool {
        self.levels.values().any(|&l| l == Level::Required)
    }

    /// e.g. `forbidden: all` or `required: integrity|fts|atomicity; allowed: rest`.
    pub fn describe(&self) -> String {
        let of = |want: Level| -> Vec<&'static str> {
            ViolationKind::ALL.iter().filter(|&&k| self.level(k) == want).map(|k| k.as_str()).collect()
        };
        let (required, allowed, forbidden) = (of(Level::Required), of(Level::Allowed), of(Level::Forbidden));
        let mut parts = Vec::new();
        for (name, kinds) in [("required", required), ("forbidden", forbidden), ("allowed", allowed)] {
            if kinds.len() == ViolationKind::ALL.len() {
                parts.push(format!("{name}: all"));
            } else if !kinds.is_empty() {
                parts.push(format!("{name}: {}", kinds.join("|")));
            }
        }
        parts.join("; ")
    }
}

/// The built-in expectation of a cell, from the promise table of the module doc.
pub fn builtin(cell: &Cell) -> Expectation {
    let mut e = builtin_levels(cell);
    // A writer crashing is no fault of a pragma and no promise SQLite makes away: forbidden
    // wherever crashfuzz only kills, cuts power or fails I/O. Misuse may crash a process (a
    // -shm truncated under its mapping raises SIGBUS): a hazard keeps its own level.
    if !cell.fault.is_hazard() {
        e.levels.insert(ViolationKind::WriterCrash, Level::Forbidden);
    }
    e
}

fn builtin_levels(cell: &Cell) -> Expectation {
    match cell.fault {
        // A crash point is a process kill at an exact operation: the same promises.
        FaultKind::Kill | FaultKind::SigkillOnly | FaultKind::CrashPoint => builtin_kill(cell),
        FaultKind::PowerLoss => builtin_power_loss(cell),
        FaultKind::IoError => builtin_io_error(cell),
        FaultKind::LockCancel
        | FaultKind::LockCancelWal
        | FaultKind::LockCancelShm
        | FaultKind::DeleteHotWal
        | FaultKind::DeleteHotJournal
        | FaultKind::SwapDb
        | FaultKind::RawCopyBackup
        | FaultKind::ForkConnection
        | FaultKind::CrossVersion => builtin_hazard(cell),
    }
}

/// Hazards: misuse SQLite documents as corrupting is `allowed`, never
/// `forbidden`; where the outcome is certain the cell is a canary (`required`).
fn builtin_hazard(cell: &Cell) -> Expectation {
    use JournalMode::{Delete, Memory, Off, Persist, Truncate, Wal};
    let canary = |kinds: &[ViolationKind], reason: &str| {
        let mut e = Expectation::uniform(Level::Allowed, reason);
        for &k in kinds {
            e.levels.insert(k, Level::Required);
        }
        e
    };
    let measured = |reason: &str| Expectation::uniform(Level::Allowed, reason);
    match (cell.fault, cell.journal_mode) {
        // Two writers whose locks vanish write at once: a rollback journal's database locks,
        // or WAL's write lock in the -shm, are gone. Whatever breaks, something does.
        (FaultKind::LockCancel, Delete | Truncate | Persist) | (FaultKind::LockCancelShm, Wal) => canary(
            &ViolationKind::ALL,
            "hazard: lock cancellation under concurrent writers corrupts (canary: some violation required)",
        ),
        // WAL keeps no lock on the database file a writer needs (only the last close looks),
        // nor on the -wal itself: measured, not promised either way.
        (FaultKind::LockCancel | FaultKind::LockCancelWal | FaultKind::LockCancelShm, _) => {
            measured("hazard: lock cancellation on a file this journal mode holds no writer lock on; measured")
        }
        // Every commit since the template is in the WAL (when the checkpoint policy does not
        // move it): deleting the WAL loses each acknowledged one.
        (FaultKind::DeleteHotWal, Wal) if cell.checkpoint == Some(CheckpointPolicy::None) => canary(
            &[ViolationKind::LostAck],
            "hazard: a deleted hot WAL loses the acknowledged commits it held (canary)",
        ),
        (FaultKind::DeleteHotWal, _) => measured("hazard: deleting a hot WAL; measured"),
        // Killed inside a bulk transaction whose pages spilled: without its journal nothing can
        // undo them (the same state as journal_mode=OFF).
        (FaultKind::DeleteHotJournal, Delete | Truncate | Persist) if cell.timing == KillTiming::Bulk => canary(
            &[ViolationKind::Open, ViolationKind::Integrity, ViolationKind::Fts, ViolationKind::Atomicity],
            "hazard: a deleted hot journal leaves a half-written transaction (canary)",
        ),
        (FaultKind::DeleteHotJournal, _) => measured("hazard: deleting a hot journal; measured"),
        (FaultKind::SwapDb, _) => measured("hazard: the database file replaced under its -wal and -shm; measured"),
        (FaultKind::RawCopyBackup, _) => {
            measured("hazard: a backup copied with plain reads while writers run; measured")
        }
        (FaultKind::ForkConnection, _) => measured("hazard: a connection carried across fork(); measured"),
        (FaultKind::CrossVersion, _) => measured("hazard: checked by another SQLite build; measured"),
        (
            FaultKind::Kill
            | FaultKind::SigkillOnly
            | FaultKind::PowerLoss
            | FaultKind::CrashPoint
            | FaultKind::IoError,
            Wal | Delete | Truncate | Persist | Memory | Off,
        ) => unreachable!("builtin_hazard is only called for hazards"),
    }
}

/// Every kind but `lost_ack` forbidden: "consistent, but the last commits may roll back".
fn consistent_may_lose(reason: &str) -> Expectation {
    let mut e = Expectation::uniform(Level::Forbidden, reason);
    e.levels.insert(ViolationKind::LostAck, Level::Allowed);
    e
}

/// The kinds by which a database is damaged (rather than merely missing commits).
const DAMAGE: [ViolationKind; 4] =
    [ViolationKind::Open, ViolationKind::Integrity, ViolationKind::Fts, ViolationKind::Atomicity];

/// Power loss (the promise table's right-hand column). Canaries: WAL+NORMAL must lose acknowledged
/// commits, synchronous=OFF must damage a rollback-journal database (and lose commits in
/// WAL), DELETE+FULL must lose a commit through the journal's unlink not being durable.
fn builtin_power_loss(cell: &Cell) -> Expectation {
    use JournalMode::{Delete, Memory, Off, Persist, Truncate, Wal};
    use Synchronous as S;
    // On a device whose plain fsync orders nothing, only SQLITE_SYNC_FULL syncs are barriers:
    // with `fullfsync=on` every sync carries it and the device behaves as a barrier device;
    // otherwise SQLite promises nothing (this is the measurement the axis exists for).
    let honest = match (cell.device, cell.fullfsync) {
        (Some(DeviceModel::Barrier) | None, _) | (Some(DeviceModel::NoBarrier), FullFsync::On) => true,
        (Some(DeviceModel::NoBarrier), FullFsync::Off | FullFsync::Checkpoint) => false,
    };
    if !honest {
        return Expectation::uniform(Level::Allowed, "power loss on a device without fsync barriers: no promise");
    }
    match (cell.journal_mode, cell.synchronous) {
        (Memory | Off, _) => {
            Expectation::uniform(Level::Allowed, "power loss with journal off/memory: no rollback journal, no promise")
        }
        (Wal, S::Off) => {
            let mut e = Expectation::uniform(
                Level::Allowed,
                "power loss, WAL, synchronous=OFF: may corrupt; unsynced commits are lost (canary)",
            );
            e.levels.insert(ViolationKind::LostAck, Level::Required);
            e
        }
        (Delete | Truncate | Persist, S::Off) => {
            let mut e = Expectation::uniform(
                Level::Allowed,
                "power loss, rollback journal, synchronous=OFF: database pages reach the disk before the journal (canary)",
            );
            for kind in DAMAGE {
                e.levels.insert(kind, Level::Required);
            }
            e
        }
        (Wal, S::Normal) => {
            let mut e = consistent_may_lose(
                "power loss, WAL, synchronous=NORMAL: consistent; the last commits may roll back (canary)",
            );
            e.levels.insert(ViolationKind::LostAck, Level::Required);
            e
        }
        (Wal, S::Full | S::Extra) => {
            Expectation::uniform(Level::Forbidden, "power loss, WAL, synchronous=FULL/EXTRA: atomic and durable")
        }
        (Delete, S::Normal) => Expectation::uniform(
            Level::Allowed,
            "power loss, DELETE, synchronous=NORMAL: a very small chance of corruption",
        ),
        (Delete, S::Full) => {
            let mut e = consistent_may_lose(
                "power loss, DELETE, synchronous=FULL: no corruption; the journal's unlink is not durable, so the last commit may roll back (canary)",
            );
            e.levels.insert(ViolationKind::LostAck, Level::Required);
            e
        }
        (Delete, S::Extra) => Expectation::uniform(
            Level::Forbidden,
            "power loss, DELETE, synchronous=EXTRA: atomic and durable (directory synced after the unlink)",
        ),
        (Truncate | Persist, S::Normal | S::Full | S::Extra) => Expectation::uniform(
            Level::Allowed,
            "power loss, TRUNCATE/PERSIST: SQLite documents no promise; measured, not judged",
        ),
    }
}

/// An I/O error the writer was told about: nothing acknowledged may be lost and the database
/// must check clean after reopening, with an on-disk journal. Journal off/memory cannot roll
/// back the failed transaction: no promise.
fn builtin_io_error(cell: &Cell) -> Expectation {
    if cell.journal_mode.is_journalled() {
        Expectation::uniform(Level::Forbidden, "I/O error: the failed transaction rolls back; nothing else changes")
    } else {
        Expectation::uniform(Level::Allowed, "I/O error with journal off/memory: no rollback, no promise")
    }
}

fn builtin_kill(cell: &Cell) -> Expectation {
    // A process kill loses nothing that reached the OS page cache, and a journalled database
    // rolls back (or ignores) the transaction the kill interrupted: every synchronous setting
    // is atomic and durable here.
    if cell.journal_mode.is_journalled() {
        return Expectation::uniform(Level::Forbidden, "process kill is atomic and durable with an on-disk journal");
    }
    // Journal OFF or MEMORY: a transaction's pages spill into the database file before COMMIT
    // and nothing on disk can undo them, so a kill inside a write transaction very likely
    // corrupts. A graceful writer finishes its transaction before it exits, so that cell is
    // not a canary: nothing is promised, nothing is required.
    if cell.sigterm == Some(SigtermBehaviour::Graceful) {
        return Expectation::uniform(
            Level::Allowed,
            "journal off/memory: no promise; graceful exit avoids mid-transaction kills",
        );
    }
    let mut e = Expectation::uniform(
        Level::Allowed,
        "journal off/memory: a kill inside a write transaction very likely corrupts (canary)",
    );
    for kind in [ViolationKind::Integrity, ViolationKind::Fts, ViolationKind::Atomicity] {
        e.levels.insert(kind, Level::Required);
    }
    e
}

/// One `[[expect]]` block of a scenario: selectors (absent = any) and the levels it sets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectOverride {
    pub journal_mode: Option<JournalMode>,
    pub synchronous: Option<Synchronous>,
    pub fault: Option<FaultKind>,
    pub sigterm: Option<SigtermBehaviour>,
    pub checkpoint: Option<CheckpointPolicy>,
    pub timing: Option<KillTiming>,
    pub device: Option<DeviceModel>,
    pub fullfsync: Option<FullFsync>,
    pub open: Option<Level>,
    pub integrity: Option<Level>,
    pub fts: Option<Level>,
    pub lost_ack: Option<Level>,
    pub phantom: Option<Level>,
    pub atomicity: Option<Level>,
    pub prefix: Option<Level>,
    pub reopen_write: Option<Level>,
    pub writer_crash: Option<Level>,
}

impl ExpectOverride {
    pub fn matches(&self, cell: &Cell) -> bool {
        self.journal_mode.is_none_or(|v| v == cell.journal_mode)
            && self.synchronous.is_none_or(|v| v == cell.synchronous)
            && self.fault.is_none_or(|v| v == cell.fault)
            && self.sigterm.is_none_or(|v| cell.sigterm == Some(v))
            && self.checkpoint.is_none_or(|v| cell.checkpoint == Some(v))
            && self.timing.is_none_or(|v| v == cell.timing)
            && self.device.is_none_or(|v| cell.device == Some(v))
            && self.fullfsync.is_none_or(|v| v == cell.fullfsync)
    }

    /// The levels this override sets, in `ViolationKind::ALL` order.
    pub fn levels(&self) -> Vec<(ViolationKind, Level)> {
        let by_kind = [
            (ViolationKind::Open, self.open),
            (ViolationKind::Integrity, self.integrity),
            (ViolationKind::Fts, self.fts),
            (ViolationKind::LostAck, self.lost_ack),
            (ViolationKind::Phantom, self.phantom),
            (ViolationKind::Atomicity, self.atomicity),
            (ViolationKind::Prefix, self.prefix),
            (ViolationKind::ReopenWrite, self.reopen_write),
            (ViolationKind::WriterCrash, self.writer_crash),
        ];
        by_kind.into_iter().filter_map(|(k, l)| l.map(|l| (k, l))).collect()
    }
}

/// The built-in expectation of `cell` with every matching override applied, in order.
pub fn expectation_for(cell: &Cell, overrides: &[ExpectOverride]) -> Expectation {
    let mut e = builtin(cell);
    for (index, o) in overrides.iter().enumerate() {
        if o.matches(cell) {
            let levels = o.levels();
            let what: Vec<String> = levels.iter().map(|(k, l)| format!("{}={}", k.as_str(), l.as_str())).collect();
            for (kind, level) in levels {
                e.levels.insert(kind, level);
            }
            e.source.push(format!("override #{}: {}", index + 1, what.join(", ")));
        }
    }
    e
}

/// The verdict of one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    /// A forbidden violation happened.
    Regression,
    /// Fewer crash states were checked than the run demands (`--min-states`, default 1): every
    /// trial inconclusive, or none run. Nothing was shown either way, and a gate that passes
    /// on no evidence passes on anything.
    NoData,
    /// A canary cell saw none of its required violations.
    SilentCanary,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Regression => "regression",
            Verdict::NoData => "no-data",
            Verdict::SilentCanary => "silent-canary",
        }
    }

    pub fn failed(self) -> bool {
        match self {
            Verdict::Ok => false,
            Verdict::Regression | Verdict::NoData | Verdict::SilentCanary => true,
        }
    }
}

/// The verdict of a cell given how many of its `crash_states` showed each violation kind, when
/// the run demands at least `min_states` of them. A regression wins over everything: one
/// forbidden violation is proof, however few states were checked. Too few states then wins
/// over a silent canary, which is what no evidence looks like to a canary.
pub fn verdict(
    expectation: &Expectation,
    counts: &BTreeMap<ViolationKind, u64>,
    crash_states: u64,
    min_states: u64,
) -> Verdict {
    let count = |k: ViolationKind| counts.get(&k).copied().unwrap_or(0);
    let forbidden_hit = ViolationKind::ALL.iter().any(|&k| expectation.level(k) == Level::Forbidden && count(k) > 0);
    if forbidden_hit {
        return Verdict::Regression;
    }
    if crash_states < min_states.max(1) {
        return Verdict::NoData;
    }
    let required: Vec<ViolationKind> =
        ViolationKind::ALL.iter().copied().filter(|&k| expectation.level(k) == Level::Required).collect();
    if !required.is_empty() && required.iter().all(|&k| count(k) == 0) {
        return Verdict::SilentCanary;
    }
    Verdict::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_cell() -> impl Strategy<Value = Cell> {
        use proptest::sample::select;
        (
            (select(JournalMode::ALL.to_vec()), select(Synchronous::ALL.to_vec()), select(FaultKind::ALL.to_vec())),
            (select(SigtermBehaviour::ALL.to_vec()), select(CheckpointPolicy::ALL.to_vec())),
            (select(KillTiming::ALL.to_vec()), select(DeviceModel::ALL.to_vec()), select(FullFsync::ALL.to_vec())),
        )
            .prop_map(|((j, s, f), (t, c), (k, d, x))| Cell::normalised(j, s, f, t, c, k, d, x))
    }

    /// `cell` with its fault replaced by `fault`, axes normalised again.
    fn crash_cell(cell: Cell, fault: FaultKind) -> Cell {
        Cell::normalised(
            cell.journal_mode,
            cell.synchronous,
            fault,
            cell.sigterm.unwrap_or(SigtermBehaviour::Graceful),
            cell.checkpoint.unwrap_or(CheckpointPolicy::Auto),
            cell.timing,
            cell.device.unwrap_or(DeviceModel::Barrier),
            cell.fullfsync,
        )
    }

    fn is_process_crash(fault: FaultKind) -> bool {
        match fault {
            FaultKind::Kill | FaultKind::SigkillOnly | FaultKind::CrashPoint => true,
            FaultKind::PowerLoss | FaultKind::IoError => false,
            FaultKind::LockCancel
            | FaultKind::LockCancelWal
            | FaultKind::LockCancelShm
            | FaultKind::DeleteHotWal
            | FaultKind::DeleteHotJournal
            | FaultKind::SwapDb
            | FaultKind::RawCopyBackup
            | FaultKind::ForkConnection
            | FaultKind::CrossVersion => false,
        }
    }

    fn counts() -> impl Strategy<Value = BTreeMap<ViolationKind, u64>> {
        proptest::collection::vec(0u64..3, ViolationKind::ALL.len())
            .prop_map(|v| ViolationKind::ALL.iter().copied().zip(v).collect())
    }

    proptest! {
        /// SQLite's promise: under a kill, every journalled mode forbids every violation, whatever
        /// the synchronous setting, SIGTERM behaviour, checkpoint policy or timing; a crashed
        /// writer is forbidden everywhere a kill is the fault.
        #[test]
        fn journalled_kill_forbids_everything(
            cell in any_cell(),
            fault in proptest::sample::select(vec![FaultKind::Kill, FaultKind::SigkillOnly, FaultKind::CrashPoint]),
        ) {
            let cell = crash_cell(cell, fault);
            prop_assert!(is_process_crash(cell.fault));
            let e = builtin(&cell);
            prop_assert_eq!(e.levels.len(), ViolationKind::ALL.len());
            prop_assert_eq!(e.level(ViolationKind::WriterCrash), Level::Forbidden);
            if cell.journal_mode.is_journalled() {
                prop_assert!(e.levels.values().all(|&l| l == Level::Forbidden));
            } else {
                prop_assert!(e.levels.iter().all(|(&k, &l)| l != Level::Forbidden || k == ViolationKind::WriterCrash));
                let graceful = cell.sigterm == Some(SigtermBehaviour::Graceful);
                prop_assert_eq!(e.is_canary(), !graceful);
            }
        }

        /// The synchronous setting never changes a kill expectation (a kill is not a power loss).
        #[test]
        fn synchronous_is_irrelevant_under_kill(
            cell in any_cell(),
            s in proptest::sample::select(Synchronous::ALL.to_vec()),
            fault in proptest::sample::select(vec![FaultKind::Kill, FaultKind::SigkillOnly, FaultKind::CrashPoint, FaultKind::IoError]),
        ) {
            let cell = crash_cell(cell, fault);
            let other = Cell { synchronous: s, ..cell };
            prop_assert_eq!(builtin(&cell).levels, builtin(&other).levels);
        }

        /// Under power loss on an honest device, a stronger synchronous level never forbids
        /// less (WAL and DELETE, where SQLite documents the ladder).
        #[test]
        fn power_loss_promises_grow_with_synchronous(cell in any_cell(), a in 0usize..4, b in 0usize..4) {
            let journal_mode = if cell.journal_mode == JournalMode::Wal { JournalMode::Wal } else { JournalMode::Delete };
            let cell = Cell {
                journal_mode,
                checkpoint: journal_mode.is_wal().then_some(CheckpointPolicy::Auto),
                fault: FaultKind::PowerLoss,
                sigterm: None,
                device: Some(DeviceModel::Barrier),
                ..cell
            };
            let (weak, strong) = (Synchronous::ALL[a.min(b)], Synchronous::ALL[a.max(b)]);
            let (ew, es) = (builtin(&Cell { synchronous: weak, ..cell }), builtin(&Cell { synchronous: strong, ..cell }));
            for k in ViolationKind::ALL {
                if ew.level(k) == Level::Forbidden {
                    prop_assert_eq!(es.level(k), Level::Forbidden, "{:?} {:?} -> {:?}", k, weak, strong);
                }
            }
        }

        /// A device without fsync barriers is honest only when every sync is a full one.
        #[test]
        fn no_barrier_promises_nothing_without_fullfsync(cell in any_cell()) {
            let cell = Cell { fault: FaultKind::PowerLoss, sigterm: None, device: Some(DeviceModel::NoBarrier), ..cell };
            let e = builtin(&cell);
            let barrier = builtin(&Cell { device: Some(DeviceModel::Barrier), ..cell });
            if cell.fullfsync == FullFsync::On {
                prop_assert_eq!(e.levels, barrier.levels);
            } else {
                // Nothing about the file; a crashed writer is still no power loss's doing.
                prop_assert!(e.levels.iter().all(|(&k, &l)| l == Level::Allowed || k == ViolationKind::WriterCrash));
                prop_assert_eq!(e.level(ViolationKind::WriterCrash), Level::Forbidden);
            }
        }

        /// A hazard is never `forbidden` anywhere: the harness measures misuse, it does not
        /// pretend SQLite promises something about it.
        #[test]
        fn hazards_are_never_forbidden(cell in any_cell()) {
            prop_assume!(cell.fault.is_hazard());
            prop_assert!(builtin(&cell).levels.values().all(|&l| l != Level::Forbidden));
        }

        /// An override applies exactly to the cells its selectors match, and only to the kinds
        /// it names.
        #[test]
        fn overrides_apply_only_where_they_match(cell in any_cell(), j in proptest::sample::select(JournalMode::ALL.to_vec())) {
            let o = ExpectOverride { journal_mode: Some(j), integrity: Some(Level::Required), ..Default::default() };
            let e = expectation_for(&cell, std::slice::from_ref(&o));
            let base = builtin(&cell);
            for k in ViolationKind::ALL {
                let want = if k == ViolationKind::Integrity && cell.journal_mode == j { Level::Required } else { base.level(k) };
                prop_assert_eq!(e.level(k), want);
            }
        }

        /// Verdict laws: any forbidden hit is a regression; otherwise fewer states than demanded
        /// is no-data; otherwise a canary with no required hit is silent; otherwise ok.
        #[test]
        fn verdict_laws(cell in any_cell(), c in counts(), states in 0u64..5, min_states in 0u64..5) {
            let e = builtin(&cell);
            let v = verdict(&e, &c, states, min_states);
            let forbidden = ViolationKind::ALL.iter().any(|&k| e.level(k) == Level::Forbidden && c[&k] > 0);
            let required_hit = ViolationKind::ALL.iter().any(|&k| e.level(k) == Level::Required && c[&k] > 0);
            let want = if forbidden {
                Verdict::Regression
            } else if states < min_states.max(1) {
                Verdict::NoData
            } else if e.is_canary() && !required_hit {
                Verdict::SilentCanary
            } else {
                Verdict::Ok
            };
            prop_assert_eq!(v, want);
        }
    }

    fn cell(j: JournalMode, s: Synchronous, f: FaultKind) -> Cell {
        Cell::normalised(
            j,
            s,
            f,
            SigtermBehaviour::Default,
            CheckpointPolicy::Auto,
            KillTiming::Uniform,
            DeviceModel::Barrier,
            FullFsync::Off,
        )
    }

    #[test]
    fn the_power_loss_canaries_of_design_section_7() {
        use JournalMode::*;
        use Synchronous as S;
        let required = |j, s| -> Vec<ViolationKind> {
            let e = builtin(&cell(j, s, FaultKind::PowerLoss));
            ViolationKind::ALL.iter().copied().filter(|&k| e.level(k) == Level::Required).collect()
        };
        assert_eq!(required(Wal, S::Normal), vec![ViolationKind::LostAck]);
        assert_eq!(required(Delete, S::Full), vec![ViolationKind::LostAck]);
        assert!(required(Delete, S::Extra).is_empty());
        assert_eq!(required(Delete, S::Off), DAMAGE.to_vec());
        assert_eq!(required(Wal, S::Off), vec![ViolationKind::LostAck]);
        let forbidden_all =
            |j, s| builtin(&cell(j, s, FaultKind::PowerLoss)).levels.values().all(|&l| l == Level::Forbidden);
        assert!(forbidden_all(Wal, S::Full) && forbidden_all(Wal, S::Extra) && forbidden_all(Delete, S::Extra));
        // WAL+NORMAL may lose, never damage.
        let e = builtin(&cell(Wal, S::Normal, FaultKind::PowerLoss));
        assert!(DAMAGE.iter().all(|&k| e.level(k) == Level::Forbidden));
    }

    #[test]
    fn zero_counts_make_journalled_ok_and_canary_silent() {
        let wal = cell(JournalMode::Wal, Synchronous::Normal, FaultKind::Kill);
        let off = Cell { journal_mode: JournalMode::Off, checkpoint: None, ..wal };
        assert_eq!(verdict(&builtin(&wal), &BTreeMap::new(), 10, 1), Verdict::Ok);
        assert_eq!(verdict(&builtin(&off), &BTreeMap::new(), 10, 1), Verdict::SilentCanary);
        let hit: BTreeMap<_, _> = [(ViolationKind::Atomicity, 1)].into_iter().collect();
        assert_eq!(verdict(&builtin(&off), &hit, 10, 1), Verdict::Ok);
        assert_eq!(verdict(&builtin(&wal), &hit, 10, 1), Verdict::Regression);
    }

    #[test]
    fn a_cell_without_enough_crash_states_has_no_data_whatever_it_expects() {
        let wal = cell(JournalMode::Wal, Synchronous::Normal, FaultKind::Kill);
        let off = Cell { journal_mode: JournalMode::Off, checkpoint: None, ..wal };
        for e in [builtin(&wal), builtin(&off)] {
            assert_eq!(verdict(&e, &BTreeMap::new(), 0, 1), Verdict::NoData, "no crash state at all");
            assert_eq!(verdict(&e, &BTreeMap::new(), 0, 0), Verdict::NoData, "a demand of 0 is a demand of 1");
            assert_eq!(verdict(&e, &BTreeMap::new(), 4, 5), Verdict::NoData, "fewer than --min-states");
        }
        // One forbidden violation is proof, however few states showed it.
        let hit: BTreeMap<_, _> = [(ViolationKind::Atomicity, 1)].into_iter().collect();
        assert_eq!(verdict(&builtin(&wal), &hit, 1, 5), Verdict::Regression);
        assert!(Verdict::NoData.failed());
    }
}

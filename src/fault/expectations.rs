//! The built-in expectations of every fault, tested as SQLite states them: a kill never tells
//! the synchronous levels apart, a stronger level never promises less under a power loss, a
//! device without barriers promises nothing, misuse is never forbidden, canaries are where the
//! harm is certain; and the verdict laws over them.

use crate::fault::power_loss::DAMAGE;
use crate::fault::{builtin, builtin_on, expectation_for};
use crate::record::checks::ViolationKind;
use crate::scenario::expect::*;
use crate::scenario::matrix::{
    Cell, CheckpointPolicy, DeviceModel, FaultKind, FullFsync, JournalMode, KillTiming, SigtermBehaviour, SqliteName,
    Synchronous,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn any_cell() -> impl Strategy<Value = Cell> {
    use proptest::sample::select;
    (
        (select(JournalMode::ALL.to_vec()), select(Synchronous::ALL.to_vec()), select(FaultKind::ALL.to_vec())),
        (select(SigtermBehaviour::ALL.to_vec()), select(CheckpointPolicy::ALL.to_vec())),
        (select(KillTiming::ALL.to_vec()), select(DeviceModel::ALL.to_vec()), select(FullFsync::ALL.to_vec())),
    )
        .prop_map(|((j, s, f), (t, c), (k, d, x))| Cell::normalised(j, s, f, t, c, k, d, x, SqliteName::BUNDLED))
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
        cell.sqlite,
    )
}

/// The findings about the writer rather than the database: forbidden under every fault.
fn is_about_the_writer(kind: ViolationKind) -> bool {
    matches!(kind, ViolationKind::WriterCrash | ViolationKind::Protocol)
}

fn is_process_crash(fault: FaultKind) -> bool {
    [FaultKind::Kill, FaultKind::SigkillOnly, FaultKind::CrashPoint].contains(&fault)
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
            prop_assert!(e.levels.iter().all(|(&k, &l)| l != Level::Forbidden || is_about_the_writer(k)));
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
            prop_assert!(e.levels.iter().all(|(&k, &l)| l == Level::Allowed || is_about_the_writer(k)));
            prop_assert_eq!(e.level(ViolationKind::WriterCrash), Level::Forbidden);
        }
    }

    /// A hazard never forbids a finding about the database: the harness measures misuse, it
    /// does not pretend SQLite promises something about it. Only a writer that breaks the
    /// acknowledgement protocol is forbidden there too.
    #[test]
    fn hazards_are_never_forbidden(cell in any_cell()) {
        prop_assume!(cell.fault.is_hazard());
        let e = builtin(&cell);
        prop_assert!(e.levels.iter().all(|(&k, &l)| l != Level::Forbidden || k == ViolationKind::Protocol));
        prop_assert_eq!(e.level(ViolationKind::Protocol), Level::Forbidden);
    }

    /// An override applies exactly to the cells its selectors match, and only to the kinds
    /// it names.
    #[test]
    fn overrides_apply_only_where_they_match(cell in any_cell(), j in proptest::sample::select(JournalMode::ALL.to_vec())) {
        let o = ExpectOverride { journal_mode: Some(j), integrity: Some(Level::Required), ..Default::default() };
        let e = expectation_for(&cell, crate::fault::SqliteVersion::bundled(), std::slice::from_ref(&o));
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
        SqliteName::BUNDLED,
    )
}

#[test]
fn the_power_loss_canaries() {
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

/// WAL lock cancellation depends on the writers' SQLite: a canary before 3.51.0 (its last closer
/// deletes the WAL under the canceller), measured from 3.51.0; no other cell changes with the
/// version (from 3.48.0 on: below, `fts_miss` is allowed everywhere).
#[test]
fn the_lock_cancel_expectation_follows_the_sqlite_version() {
    use crate::fault::SqliteVersion;
    use crate::fault::lock_cancel::FIXED_IN;
    assert_eq!(SqliteVersion::parse("3.40.1"), Some(SqliteVersion(3, 40, 1)));
    assert_eq!(SqliteVersion::parse("3.51"), None);
    assert_eq!(SqliteVersion::parse("3.51.0.1"), None);
    assert!(
        SqliteVersion(3, 50, 4) < FIXED_IN
            && FIXED_IN <= SqliteVersion(3, 51, 0)
            && FIXED_IN < SqliteVersion::bundled()
    );
    let wal = cell(JournalMode::Wal, Synchronous::Full, FaultKind::LockCancel);
    let old = builtin_on(&wal, SqliteVersion(3, 40, 1));
    assert!(old.is_canary(), "{}", old.describe());
    for kind in ViolationKind::ALL {
        let want = match kind {
            ViolationKind::Protocol => Level::Forbidden,
            _ if kind.is_damage() || kind == ViolationKind::LostAck => Level::Required,
            _ => Level::Allowed,
        };
        assert_eq!(old.level(kind), want, "{kind:?}");
    }
    let said = old.source.join("; ");
    assert!(said.contains("3.51.0") && said.contains("close(open(DATABASE_PATHNAME))"), "{said}");
    for version in [SqliteVersion(3, 50, 4), SqliteVersion(3, 35, 4)] {
        assert!(builtin_on(&wal, version).is_canary());
    }
    for version in [FIXED_IN, SqliteVersion(3, 51, 1), SqliteVersion::bundled()] {
        let e = builtin_on(&wal, version);
        let allowed = e.levels.iter().all(|(&k, &l)| l == Level::Allowed || k == ViolationKind::Protocol);
        assert!(!e.is_canary() && allowed, "{version}: {}", e.describe());
        assert!(e.source.join("; ").contains("3.51.0"), "{:?}", e.source);
    }
    assert_eq!(builtin_on(&wal, SqliteVersion::bundled()), builtin(&wal));
    // Every other cell answers the same on any version, but for the trigram rule (below).
    for f in FaultKind::ALL.iter().copied().filter(|&f| f != FaultKind::LockCancel) {
        for j in JournalMode::ALL {
            let c = cell(j, Synchronous::Full, f);
            assert_eq!(builtin_on(&c, SqliteVersion(3, 50, 4)), builtin(&c), "{}", c.id());
        }
    }
    let delete = cell(JournalMode::Delete, Synchronous::Full, FaultKind::LockCancel);
    assert_eq!(builtin_on(&delete, SqliteVersion(3, 50, 4)), builtin(&delete));
}

proptest! {
    /// Writers on a build before 3.48.0 miss their NUL-prefixed messages in trigram search, a
    /// property of the build: `fts_miss` is allowed there, whatever the fault, and every other
    /// level is the fault's own; from 3.48.0 on nothing changes. A canary's required kinds never
    /// include what the build does on every trial.
    #[test]
    fn fts_miss_is_allowed_exactly_on_builds_that_index_nul_prefixed_trigram_text_as_empty(
        cell in any_cell(),
        minor in 30u32..60,
        patch in 0u32..5,
    ) {
        use crate::fault::{SqliteVersion, TRIGRAM_NUL_INDEXED_FROM};
        let version = SqliteVersion(3, minor, patch);
        // Lock cancellation changes with the version too (its own test): compare with the
        // same side of 3.51.0.
        let reference = if version < crate::fault::lock_cancel::FIXED_IN { SqliteVersion(3, 50, 4) } else { SqliteVersion::bundled() };
        let (on, of_fault) = (builtin_on(&cell, version), builtin_on(&cell, reference));
        for kind in ViolationKind::ALL.into_iter().filter(|&k| k != ViolationKind::FtsMiss) {
            prop_assert_eq!(on.level(kind), of_fault.level(kind), "{:?}", kind);
        }
        if version < TRIGRAM_NUL_INDEXED_FROM {
            prop_assert_eq!(on.level(ViolationKind::FtsMiss), Level::Allowed);
            prop_assert!(on.source.join("; ").contains("NUL"), "{:?}", on.source);
        } else {
            prop_assert_eq!(&on, &of_fault);
        }
    }
}

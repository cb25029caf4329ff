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
    Cell, CheckpointPolicy, DeviceModel, FaultKind, FullFsync, JournalMode, KillTiming, SigtermBehaviour, SqliteName,
    Synchronous,
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
    /// Every kind at `level`, for the reason given.
    pub fn uniform(level: Level, reason: &str) -> Expectation {
        Expectation {
            levels: ViolationKind::ALL.iter().map(|&k| (k, level)).collect(),
            source: vec![format!("builtin: {reason}")],
        }
    }

    /// Misuse measured, not judged: every kind allowed.
    pub fn measured(reason: &str) -> Expectation {
        Expectation::uniform(Level::Allowed, reason)
    }

    /// A canary: every kind allowed, the kinds given required (a positive control: the cell is
    /// silent unless one of them shows).
    pub fn canary(required: &[ViolationKind], reason: &str) -> Expectation {
        let mut e = Expectation::uniform(Level::Allowed, reason);
        for &k in required {
            e.levels.insert(k, Level::Required);
        }
        e
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
    pub sqlite: Option<SqliteName>,
    pub open: Option<Level>,
    pub integrity: Option<Level>,
    pub fts: Option<Level>,
    pub fts_miss: Option<Level>,
    pub lost_ack: Option<Level>,
    pub phantom: Option<Level>,
    pub atomicity: Option<Level>,
    pub prefix: Option<Level>,
    pub reopen_write: Option<Level>,
    pub writer_crash: Option<Level>,
    pub protocol: Option<Level>,
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
            && self.sqlite.is_none_or(|v| v == cell.sqlite)
    }

    /// The levels this override sets, in `ViolationKind::ALL` order.
    pub fn levels(&self) -> Vec<(ViolationKind, Level)> {
        let by_kind = [
            (ViolationKind::Open, self.open),
            (ViolationKind::Integrity, self.integrity),
            (ViolationKind::Fts, self.fts),
            (ViolationKind::FtsMiss, self.fts_miss),
            (ViolationKind::LostAck, self.lost_ack),
            (ViolationKind::Phantom, self.phantom),
            (ViolationKind::Atomicity, self.atomicity),
            (ViolationKind::Prefix, self.prefix),
            (ViolationKind::ReopenWrite, self.reopen_write),
            (ViolationKind::WriterCrash, self.writer_crash),
            (ViolationKind::Protocol, self.protocol),
        ];
        by_kind.into_iter().filter_map(|(k, l)| l.map(|l| (k, l))).collect()
    }
}

/// `e` with every override that matches `cell` applied, in order.
pub fn apply_overrides(mut e: Expectation, cell: &Cell, overrides: &[ExpectOverride]) -> Expectation {
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

    fn levels(pairs: &[(ViolationKind, Level)]) -> Expectation {
        let mut e = Expectation::uniform(Level::Forbidden, "test");
        e.levels.extend(pairs.iter().copied());
        e
    }

    #[test]
    fn a_forbidden_hit_is_a_regression_too_few_states_no_data_a_silent_canary_silent() {
        let canary = levels(&[(ViolationKind::Integrity, Level::Required)]);
        let none = BTreeMap::new();
        let hit: BTreeMap<_, _> = [(ViolationKind::Integrity, 1)].into_iter().collect();
        let other: BTreeMap<_, _> = [(ViolationKind::LostAck, 1)].into_iter().collect();
        assert_eq!(verdict(&canary, &none, 10, 1), Verdict::SilentCanary);
        assert_eq!(verdict(&canary, &hit, 10, 1), Verdict::Ok);
        assert_eq!(verdict(&canary, &other, 10, 1), Verdict::Regression, "lost_ack is forbidden here");
        assert_eq!(verdict(&canary, &none, 0, 1), Verdict::NoData);
        assert_eq!(verdict(&Expectation::measured("m"), &other, 10, 1), Verdict::Ok);
    }

    #[test]
    fn overrides_apply_in_order_and_say_so() {
        let cell = Cell::normalised(
            JournalMode::Wal,
            Synchronous::Full,
            FaultKind::Kill,
            SigtermBehaviour::Default,
            CheckpointPolicy::Auto,
            KillTiming::Uniform,
            DeviceModel::Barrier,
            FullFsync::Off,
            SqliteName::BUNDLED,
        );
        let first =
            ExpectOverride { fault: Some(FaultKind::Kill), integrity: Some(Level::Required), ..Default::default() };
        let second = ExpectOverride {
            journal_mode: Some(JournalMode::Wal),
            integrity: Some(Level::Allowed),
            ..Default::default()
        };
        let elsewhere =
            ExpectOverride { journal_mode: Some(JournalMode::Delete), fts: Some(Level::Allowed), ..Default::default() };
        let e = apply_overrides(Expectation::measured("m"), &cell, &[first, second, elsewhere]);
        assert_eq!(e.level(ViolationKind::Integrity), Level::Allowed);
        assert_eq!(e.source, vec!["builtin: m", "override #1: integrity=required", "override #2: integrity=allowed"]);
    }
}

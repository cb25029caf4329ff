//! Words and numbers the text reports share (Markdown, JUnit, the console).

use crate::base::stats::LatencySummary;
use crate::record::checks::ViolationKind;
use crate::report::summary::{ExpectationSummary, Summary};
use crate::scenario::expect::{Level, Verdict};

/// Column header of each kind in the markdown table (the legend spells them out).
pub(crate) fn short(kind: ViolationKind) -> &'static str {
    match kind {
        ViolationKind::Open => "open",
        ViolationKind::Integrity => "integ",
        ViolationKind::Fts => "fts",
        ViolationKind::FtsMiss => "miss",
        ViolationKind::LostAck => "lost",
        ViolationKind::Phantom => "phant",
        ViolationKind::Atomicity => "atom",
        ViolationKind::Prefix => "prefix",
        ViolationKind::ReopenWrite => "reopen",
        ViolationKind::WriterCrash => "crash",
        ViolationKind::Protocol => "proto",
    }
}

/// e.g. `forbid all`, `canary (integ, fts, atom)`, `allow all`. No `|`: it would split a
/// markdown table cell.
pub(crate) fn short_expectation(e: &ExpectationSummary) -> String {
    let of = |want: Level| -> Vec<&'static str> {
        ViolationKind::ALL.iter().filter(|&&k| e.level(k) == want).map(|&k| short(k)).collect()
    };
    let list =
        |kinds: Vec<&str>| if kinds.len() == ViolationKind::ALL.len() { "all".to_string() } else { kinds.join(", ") };
    let (required, forbidden) = (of(Level::Required), of(Level::Forbidden));
    let mut parts = Vec::new();
    let canary = !required.is_empty();
    if canary {
        parts.push(format!("canary ({})", list(required)));
    }
    let all_but: Vec<&str> = ViolationKind::ALL.iter().map(|&k| short(k)).filter(|k| !forbidden.contains(k)).collect();
    if !forbidden.is_empty() && !canary && all_but.len() <= 2 && !all_but.is_empty() {
        parts.push(format!("forbid all but {}", all_but.join(", ")));
    } else if !forbidden.is_empty() {
        parts.push(format!("forbid {}", list(forbidden)));
    }
    if parts.is_empty() {
        parts.push("allow all".to_string());
    }
    parts.join("; ")
}

pub(crate) fn verdict_counts_line(summary: &Summary) -> String {
    let parts: Vec<String> = summary
        .verdict_counts()
        .into_iter()
        .filter(|&(v, n)| n > 0 || v == Verdict::Ok)
        .map(|(v, n)| format!("{n} {}", v.as_str()))
        .collect();
    format!("{} cells: {}", summary.cells.len(), parts.join(", "))
}

/// `seed 7`, or `seeds 7, 9` for a report merged from campaigns of different seeds.
pub(crate) fn seeds_text(summary: &Summary) -> String {
    match (summary.meta.seed, summary.seeds.as_slice()) {
        (Some(seed), _) => format!("seed {seed}"),
        (None, []) => "no seed".to_string(),
        (None, seeds) => {
            format!("seeds {}", seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
        }
    }
}

pub(crate) fn latency_pair(l: &LatencySummary) -> String {
    match (l.p50, l.p99) {
        (Some(p50), Some(p99)) => format!("{p50} / {p99}"),
        (None, _) | (_, None) => "–".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{SqliteVersion, builtin_on};
    use crate::scenario::matrix::{
        Cell, CheckpointPolicy, DeviceModel, FaultKind, FullFsync, JournalMode, KillTiming, SigtermBehaviour,
        SqliteName, Synchronous,
    };

    fn expectation(journal_mode: JournalMode, fault: FaultKind, version: SqliteVersion) -> String {
        let cell = Cell::normalised(
            journal_mode,
            Synchronous::Full,
            fault,
            SigtermBehaviour::Graceful,
            CheckpointPolicy::Auto,
            KillTiming::Bulk,
            DeviceModel::Barrier,
            FullFsync::Off,
            SqliteName::BUNDLED,
        );
        short_expectation(&ExpectationSummary::of(&builtin_on(&cell, version)))
    }

    #[test]
    fn expectations_read_short_and_name_the_few_kinds_a_promise_leaves_out() {
        let old = SqliteVersion(3, 40, 1);
        assert_eq!(expectation(JournalMode::Wal, FaultKind::Kill, SqliteVersion::bundled()), "forbid all");
        // Writers on a build that misses NUL-prefixed trigram text in search: all but that.
        assert_eq!(expectation(JournalMode::Wal, FaultKind::Kill, old), "forbid all but miss");
        assert_eq!(
            expectation(JournalMode::Off, FaultKind::SigkillOnly, old),
            "canary (integ, fts, atom); forbid crash, proto"
        );
    }
}

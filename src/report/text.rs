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
        ViolationKind::LostAck => "lost",
        ViolationKind::Phantom => "phant",
        ViolationKind::Atomicity => "atom",
        ViolationKind::Prefix => "prefix",
        ViolationKind::ReopenWrite => "reopen",
        ViolationKind::WriterCrash => "crash",
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
    if !required.is_empty() {
        parts.push(format!("canary ({})", list(required)));
    }
    if !forbidden.is_empty() {
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

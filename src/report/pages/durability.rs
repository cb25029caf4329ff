//! The durability matrix engineers read (`results/durability-matrix.md`): per journal mode and
//! synchronous level, what SQLite promises and what a campaign measured under a kill and
//! under a power loss, each rate with the bound a zero still leaves, beside the median commit
//! latency the benchmarks measured for the same settings and the syncs one commit makes. A
//! pure rendering of a campaign's `summary.json`, `write-latency.json` when given and the I/O
//! counts ([`crate::fault::io_counts`]); it measures nothing itself.

use crate::base::stats::rate_with_interval;
use crate::fault::io_counts::{Io, syncs_in_words};
use crate::record::checks::ViolationKind;
use crate::report::summary::CellSummary;
use crate::report::summary::Summary;
use crate::scenario::matrix::{FaultKind, JournalMode, Synchronous};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One commit benchmark's result, as `crashfuzz bench-report` writes it to
/// `write-latency.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitLatency {
    pub journal_mode: String,
    pub synchronous: String,
    pub payload: String,
    pub rows: u32,
    pub median_us: f64,
    pub lo_us: f64,
    pub hi_us: f64,
}

/// What one synchronous level adds to a one-message commit over OFF in the same journal mode,
/// paired (the benchmarks' interleaved measurement), in µs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedCost {
    pub journal_mode: String,
    pub synchronous: String,
    pub rounds: u64,
    pub median_us: u64,
    /// The median over the rounds of this level's commit minus OFF's, with its 95% interval.
    pub delta_us: i64,
    pub lo_us: i64,
    pub hi_us: i64,
    /// The median 4 KiB append + fsync of the same rounds.
    pub floor_us: u64,
}

/// `write-latency.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    pub commits: Vec<CommitLatency>,
    /// The median of a 4 KiB append + fsync on the same file system.
    pub fsync_floor_us: Option<f64>,
    /// Per journal mode and level, the paired cost over OFF (empty before it was measured).
    #[serde(default)]
    pub level_costs: Vec<PairedCost>,
}

/// The versions line of a committed page: `- SQLite 3.54.1 (bundled), crashfuzz 0.1.0`.
pub(crate) fn versions(summary: &Summary) -> String {
    format!("- SQLite {} (bundled), crashfuzz {}", summary.meta.sqlite_version, summary.meta.crashfuzz_version)
}

/// The damage kind seen in the most checked trials of a cell: its name and trial count.
pub(crate) fn worst_damage(c: &CellSummary) -> (Option<ViolationKind>, u64) {
    ViolationKind::ALL
        .iter()
        .filter(|k| k.is_damage())
        .map(|&k| (k, c.trial_violations.get(&k).copied().unwrap_or(0)))
        .max_by_key(|&(_, n)| n)
        .map_or((None, 0), |(k, n)| (if n > 0 { Some(k) } else { None }, n))
}

/// A cell's rate of `kind` (or of any damage, `None`): per checked trial with its bound, and
/// for a power loss the distinct images that showed it beside.
fn cell_rate(c: &CellSummary, kind: Option<ViolationKind>) -> String {
    let (name, trials, states) = match kind {
        Some(k) => (
            String::new(),
            c.trial_violations.get(&k).copied().unwrap_or(0),
            c.violations.get(&k).copied().unwrap_or(0),
        ),
        None => match worst_damage(c) {
            (Some(k), n) => (format!("{} ", k.as_str()), n, c.violations.get(&k).copied().unwrap_or(0)),
            (None, _) => (String::new(), 0, 0),
        },
    };
    let images = match c.images {
        0 => String::new(),
        _ => format!(" · {states}/{} img", c.crash_states),
    };
    format!("{name}{}{images}", rate_with_interval(trials, c.checked))
}

/// SQLite's promise for a cell, in the words of the built-in expectation.
fn promise(c: &CellSummary) -> String {
    c.expectation
        .source
        .first()
        .map(|s| s.trim_start_matches("builtin: ").to_string())
        .unwrap_or_else(|| c.expectation.describe.clone())
}

/// The plain cells of the matrix: default SIGTERM, auto checkpoint, uniform timing, a barrier
/// device, fullfsync off — the one cell per (journal, synchronous, fault) this page is about.
fn plain(summary: &Summary, j: JournalMode, s: Synchronous, f: FaultKind) -> Option<&CellSummary> {
    summary.cells.iter().find(|c| {
        c.cell.journal_mode == j
            && c.cell.synchronous == s
            && c.cell.fault == f
            && c.cell.sigterm.is_none_or(|b| b == crate::scenario::matrix::SigtermBehaviour::Default)
            && c.cell.checkpoint.is_none_or(|p| p == crate::scenario::matrix::CheckpointPolicy::Auto)
            && c.cell.timing == crate::scenario::matrix::KillTiming::Uniform
            && c.cell.device.is_none_or(|d| d == crate::scenario::matrix::DeviceModel::Barrier)
            && c.cell.fullfsync == crate::scenario::matrix::FullFsync::Off
    })
}

fn latency_of(latency: &LatencyReport, j: JournalMode, s: Synchronous) -> Option<&CommitLatency> {
    latency
        .commits
        .iter()
        .find(|c| c.journal_mode == j.as_sql() && c.synchronous == s.as_sql() && c.payload == "message" && c.rows == 1)
}

fn paired_cost_of(latency: &LatencyReport, j: JournalMode, s: Synchronous) -> Option<&PairedCost> {
    latency.level_costs.iter().find(|c| c.journal_mode == j.as_sql() && c.synchronous == s.as_sql())
}

/// `+290`, `−12`, `+0`: µs with their sign.
fn signed(us: i64) -> String {
    if us < 0 { format!("−{}", us.unsigned_abs()) } else { format!("+{us}") }
}

/// One steady commit's I/O per journal mode and synchronous level ([`crate::fault::io_counts`]).
pub type IoTable = BTreeMap<(JournalMode, Synchronous), Io>;

/// Renders the page. `run` names the run (its command and machine line), `bench` the
/// benchmark report's source line, `io` what one commit syncs (counted, not timed).
pub fn render(
    summary: &Summary,
    run: &str,
    latency: Option<&LatencyReport>,
    bench: &str,
    io: Option<&IoTable>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Durability: what SQLite promises, and what happened\n");
    let _ = writeln!(
        md,
        "Read it row by row: a journal mode and a synchronous level; under **kill** (a process dies, the OS \
         keeps its page cache) and under **power loss** (unsynced writes are dropped or torn, by the model \
         the README describes), how many checked trials lost an acknowledged commit or were damaged, out of \
         how many. `0/200 (≤ 1.9%)` means none in 200, so the true rate is below 1.9% with 95% confidence: a \
         zero is only as strong as its bound; a count shows its Wilson 95% interval. A kill trial leaves one \
         crash state. A power-loss trial records one trace and checks several images of it; the bound is \
         taken over traces, because the images of one trace share its writes and are not independent, and \
         `· k/n img` beside it counts the distinct images (an image equal to an earlier one of the same \
         trace is the same state, counted once). **Bold** counts are violations. The last three columns \
         say what each setting buys, does and costs: SQLite's promise, the syncs one steady commit makes \
         (counted through the tracing VFS, the same on every machine: `crashfuzz io-counts`), and what \
         the level adds to a one-message commit over synchronous=OFF in the same journal mode, measured \
         paired (the levels' commits interleaved in one run, median of the per-round differences, 95% \
         interval in brackets), then in fsync floors (the median 4 KiB append + fsync of the same \
         rounds) only where the commit waits for an fsync.\n"
    );
    let _ = writeln!(md, "- campaigns: {run}");
    let _ = writeln!(md, "- commit latency: {bench}");
    let _ = writeln!(md, "{}\n", versions(summary));
    let _ = writeln!(
        md,
        "| journal | synchronous | kill: lost ack | kill: damaged | power loss: lost ack | power loss: damaged \
         | verdict (kill / power loss) | buys: SQLite promises under power loss | does: syncs per commit \
         | costs: over OFF, paired (1 message) |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|---|---|---|--:|");
    let floor = latency.and_then(|l| l.fsync_floor_us);
    for j in [JournalMode::Wal, JournalMode::Delete, JournalMode::Truncate, JournalMode::Persist] {
        for s in Synchronous::ALL {
            let kill = plain(summary, j, s, FaultKind::Kill).or_else(|| plain(summary, j, s, FaultKind::SigkillOnly));
            let power = plain(summary, j, s, FaultKind::PowerLoss);
            if kill.is_none() && power.is_none() {
                continue;
            }
            let lost =
                |c: Option<&CellSummary>| c.map_or("—".to_string(), |c| cell_rate(c, Some(ViolationKind::LostAck)));
            let damaged = |c: Option<&CellSummary>| c.map_or("—".to_string(), |c| cell_rate(c, None));
            let verdict = |c: Option<&CellSummary>| c.map_or("—".to_string(), |c| c.verdict.as_str().to_string());
            let commit_io = io.and_then(|t| t.get(&(j, s)));
            let waits_for_fsync = commit_io.map(|io| io.file_syncs() + io.dir_syncs > 0);
            let paired = latency.and_then(|l| paired_cost_of(l, j, s));
            let cost = match (paired, s) {
                (Some(p), Synchronous::Off) => format!("baseline ({} µs p50)", p.median_us),
                (Some(p), _) => {
                    let floors = match waits_for_fsync {
                        Some(true) => format!(" · {:.1} fsync", p.delta_us as f64 / p.floor_us.max(1) as f64),
                        Some(false) => " (waits for no fsync)".to_string(),
                        None => String::new(),
                    };
                    format!("{} µs [{} to {}]{floors}", signed(p.delta_us), signed(p.lo_us), signed(p.hi_us))
                }
                // A latency report from before the paired measurement: the absolute median.
                (None, _) => latency.and_then(|l| latency_of(l, j, s)).map_or("—".to_string(), |c| {
                    let ratio = match (floor, waits_for_fsync) {
                        (_, Some(false)) => " (waits for no fsync)".to_string(),
                        (Some(f), Some(true)) => format!(", {:.1}× fsync", c.median_us / f),
                        (None, _) | (Some(_), None) => String::new(),
                    };
                    format!("{:.0} µs{ratio}", c.median_us)
                }),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} |",
                j.as_sql().to_uppercase(),
                s.as_sql().to_uppercase(),
                lost(kill),
                damaged(kill),
                lost(power),
                damaged(power),
                verdict(kill),
                verdict(power),
                power.map_or("—".to_string(), promise),
                commit_io.map_or("—".to_string(), syncs_in_words),
                cost
            );
        }
    }
    let others: Vec<&CellSummary> = summary
        .cells
        .iter()
        .filter(|c| plain(summary, c.cell.journal_mode, c.cell.synchronous, c.cell.fault).is_none_or(|p| p.id != c.id))
        .collect();
    if !others.is_empty() {
        let _ = writeln!(md, "\n## Other cells of the campaign\n");
        let _ = writeln!(md, "| cell | trials checked | crash states | lost ack | damaged | verdict |");
        let _ = writeln!(md, "|---|--:|--:|--:|--:|---|");
        for c in others {
            let (lost, damaged) = (cell_rate(c, Some(ViolationKind::LostAck)), cell_rate(c, None));
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {lost} | {damaged} | {} |",
                c.id,
                c.checked,
                c.crash_states,
                c.verdict.as_str()
            );
        }
    }
    let _ = writeln!(
        md,
        "\n`damaged` shows the most frequent of open, integrity, fts, phantom, atomicity, prefix and reopen_write. \
         Every cell's full counts, expectation and failures are in the run's `summary.md`."
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::io_counts::{FileRole, SyncFlavour};
    use crate::report::testkit::*;

    /// The cost column states a multiple of the fsync floor only for a commit that waits for an
    /// fsync; the "does" column says which syncs a commit makes.
    #[test]
    fn only_a_commit_that_syncs_is_priced_in_fsyncs() {
        use crate::scenario::matrix::{Cell, SigtermBehaviour};
        let full = Cell { synchronous: Synchronous::Full, sigterm: Some(SigtermBehaviour::Default), ..wal() };
        let no_sync = Cell { synchronous: Synchronous::Off, ..full };
        let mut agg = aggregator_of(&[full, no_sync]);
        agg.add(&record(0, &full, &[], &[5]));
        agg.add(&record(1, &no_sync, &[], &[5]));
        let summary = agg.summary(&meta(), 1.0, false);
        let commit = |s: &str, median_us| CommitLatency {
            journal_mode: "wal".into(),
            synchronous: s.into(),
            payload: "message".into(),
            rows: 1,
            median_us,
            lo_us: median_us,
            hi_us: median_us,
        };
        let mut latency = LatencyReport {
            commits: vec![commit("full", 780.0), commit("off", 490.0)],
            fsync_floor_us: Some(260.0),
            level_costs: Vec::new(),
        };
        let one_wal_sync = Io {
            syncs: BTreeMap::from([((FileRole::Wal, SyncFlavour { full: false, data_only: false }), 1)]),
            ..Io::default()
        };
        let io: IoTable = BTreeMap::from([
            ((JournalMode::Wal, Synchronous::Full), one_wal_sync),
            ((JournalMode::Wal, Synchronous::Off), Io::default()),
        ]);
        let md = render(&summary, "run", Some(&latency), "bench", Some(&io));
        let row =
            |s: &str| md.lines().find(|l| l.starts_with(&format!("| WAL | {s} |"))).unwrap_or_else(|| panic!("{md}"));
        assert!(row("OFF").ends_with("| none | 490 µs (waits for no fsync) |"), "{}", row("OFF"));
        assert!(row("FULL").ends_with("| WAL 1 | 780 µs, 3.0× fsync |"), "{}", row("FULL"));
        // Without the counts nothing is claimed either way.
        let md = render(&summary, "run", Some(&latency), "bench", None);
        assert!(md.contains("| — | 490 µs |"), "{md}");

        // With the paired measurement the cost is the delta over OFF, in fsync floors only
        // where the commit syncs.
        let paired = |s: &str, median_us, delta_us: i64| PairedCost {
            journal_mode: "wal".into(),
            synchronous: s.into(),
            rounds: 300,
            median_us,
            delta_us,
            lo_us: delta_us - 10,
            hi_us: delta_us + 10,
            floor_us: 250,
        };
        latency.level_costs = vec![paired("off", 490, 0), paired("full", 780, 290)];
        let md = render(&summary, "run", Some(&latency), "bench", Some(&io));
        let row =
            |s: &str| md.lines().find(|l| l.starts_with(&format!("| WAL | {s} |"))).unwrap_or_else(|| panic!("{md}"));
        assert!(row("OFF").ends_with("| none | baseline (490 µs p50) |"), "{}", row("OFF"));
        assert!(row("FULL").ends_with("| WAL 1 | +290 µs [+280 to +300] · 1.2 fsync |"), "{}", row("FULL"));
        let no_sync = Io::default();
        let io: IoTable = BTreeMap::from([((JournalMode::Wal, Synchronous::Full), no_sync)]);
        let md = render(&summary, "run", Some(&latency), "bench", Some(&io));
        assert!(md.contains("| none | +290 µs [+280 to +300] (waits for no fsync) |"), "{md}");
    }
}

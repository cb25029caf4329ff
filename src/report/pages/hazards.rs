//! The hazards page (`results/hazards.md`): per hazard and journal mode, how many checked crash
//! states were damaged and how many lost an acknowledged commit, each with its Wilson 95%
//! interval, beside the plain kill cells of the same workload and SQLite's word on each. A pure
//! rendering of a campaign's `summary.json`; it measures nothing itself.

use crate::base::stats::rate_with_interval;
use crate::record::checks::ViolationKind;
use crate::report::summary::CellSummary;
use crate::report::summary::Summary;
use crate::scenario::matrix::FaultKind;
use std::fmt::Write;

/// The violation kinds a cell showed, most frequent first: `integrity 18, fts 15`.
fn kinds_seen(c: &CellSummary) -> String {
    let mut seen: Vec<(ViolationKind, u64)> = ViolationKind::ALL
        .iter()
        .map(|&k| (k, c.violations.get(&k).copied().unwrap_or(0)))
        .filter(|&(_, n)| n > 0)
        .collect();
    seen.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let mut words: Vec<String> = seen.iter().map(|(k, n)| format!("{} {n}", k.as_str())).collect();
    if words.is_empty() {
        words.push("none".into());
    }
    if c.cross_version_trials > 0 {
        words.push(format!("(cross-version disagreement {}, not damage)", c.cross_version_trials));
    }
    words.join(", ")
}

/// The writers' SQLite: its version as they read it back, and the axis value it came from.
fn writers_sqlite(c: &CellSummary) -> String {
    match &c.writer_sqlite {
        // A version named by itself needs no second mention.
        Some(s) if s.version == c.cell.sqlite.as_str() => s.version.clone(),
        Some(s) => format!("{} ({})", s.version, c.cell.sqlite),
        None => c.cell.sqlite.to_string(),
    }
}

/// Renders the page. `run` names the run (its command and machine line).
pub fn render(summary: &Summary, run: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Hazards: how SQLite databases really get corrupted, beside the pragmas\n");
    let _ = writeln!(
        md,
        "Each row is a cell of the campaign named below, one workload throughout (in the shipped `hazards` \
         scenario: two long-lived writers plus short-lived CLI-like writers on one database, both FTS5 \
         tables, NUL-sentinel JSON content). The first rows are \
         plain kills, which SQLite promises to survive whatever the synchronous setting; the others are the \
         misuse SQLite's \"How To Corrupt An SQLite Database File\" lists. **damaged** counts the checked crash \
         states that failed any check but lost_ack (open, integrity, fts, phantom, atomicity, prefix, \
         reopen_write); **lost ack** those missing an acknowledged commit. `0/28 (≤ 12%)` means none in 28, \
         so the true rate is below 12% with 95% confidence; a count shows its Wilson 95% interval. A \
         *canary* is a hazard whose harm is certain, so the cell fails (`silent-canary`) if the harness does \
         not see it. The seed fixes each trial's plan (timings, content, targets), not how the OS \
         interleaves the processes, so a second run of the same seed gives close but not equal counts.\n"
    );
    let _ = writeln!(md, "- campaign: {run}; rendered by `scripts/hazards.sh`");
    let _ = writeln!(md, "{}\n", crate::report::pages::durability::versions(summary));
    let _ = writeln!(
        md,
        "| fault | journal | SQLite | cell | crash states | damaged | lost ack | kinds seen | SQLite's word (expectation) | verdict |"
    );
    let _ = writeln!(md, "|---|---|---|---|--:|--:|--:|---|---|---|");
    let mut cells: Vec<&CellSummary> = summary.cells.iter().collect();
    // Kills first, then the hazards in the order `FaultKind::ALL` lists them; a fault's cells
    // keep the campaign's order.
    cells.sort_by_key(|c| FaultKind::ALL.iter().position(|&f| f == c.cell.fault));
    for c in &cells {
        // A hazard trial leaves one crash state: per trial and per state are the same count.
        let lost = c.trial_violations.get(&ViolationKind::LostAck).copied().unwrap_or(0);
        let word = c.expectation.source.first().map_or(c.expectation.describe.as_str(), |s| {
            s.trim_start_matches("builtin: ").trim_start_matches("hazard: ")
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} | `{}` | {} | {} | {} | {} | {word} ({}) | {} |",
            c.cell.fault.as_str(),
            c.cell.journal_mode.as_sql().to_uppercase(),
            writers_sqlite(c),
            c.id,
            c.crash_states,
            rate_with_interval(c.damaged_trials, c.checked),
            rate_with_interval(lost, c.checked),
            kinds_seen(c),
            c.expectation.describe,
            c.verdict.as_str()
        );
    }
    let examples: Vec<(&CellSummary, &str)> =
        cells.iter().filter_map(|c| c.failures.iter().find_map(|f| f.detail.as_deref()).map(|d| (*c, d))).collect();
    if !examples.is_empty() {
        let _ = writeln!(md, "\n## What the checks said (one example per cell)\n");
        for (c, detail) in examples {
            let _ = writeln!(md, "- `{}`: {detail}", c.id);
        }
    }
    let _ = writeln!(md, "\n## What each fault does\n");
    let mut faults: Vec<FaultKind> = cells.iter().map(|c| c.cell.fault).collect();
    faults.dedup();
    for f in faults {
        let _ = writeln!(md, "- `{}`: {}.", f.as_str(), crate::fault::of(f).describe());
    }
    let _ = writeln!(
        md,
        "\nEvery cell's full counts, expectation, kept failures and replay lines are in the run's `summary.md`."
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::checks::CheckOutcome;
    use crate::record::checks::CheckResult;
    use crate::report::testkit::{aggregator_of, meta, record, wal};
    use crate::scenario::matrix::{Cell, JournalMode, Synchronous};

    #[test]
    fn damaged_and_lost_are_counted_apart_and_kills_come_first() {
        use ViolationKind::*;
        let kill = Cell { synchronous: Synchronous::Full, ..wal() };
        let lock_cancel = Cell {
            journal_mode: JournalMode::Delete,
            fault: FaultKind::LockCancel,
            sigterm: None,
            checkpoint: None,
            ..kill
        };
        let on_system = Cell {
            fault: FaultKind::LockCancel,
            sigterm: None,
            sqlite: crate::scenario::matrix::SqliteName::of(&crate::sqlite::builds::SqliteBuild::System),
            ..kill
        };
        let mut agg = aggregator_of(&[lock_cancel, kill, on_system]);
        let mut old = record(20, &on_system, &[LostAck], &[100]);
        old.writer_sqlite = Some(crate::record::SqliteIdentity {
            version: "3.40.1".into(),
            source_id: "2022-12-28 14:03:47 df5c".into(),
        });
        old.cross_version = vec!["fts: SQLite 3.54.1 says malformed; SQLite 3.40.1 (the writers') says ok".into()];
        agg.add(&old);
        let states: [&[ViolationKind]; 4] = [&[Integrity, Fts], &[LostAck], &[], &[ReopenWrite, LostAck]];
        for (t, v) in states.iter().enumerate() {
            let mut rec = record(t as u64, &lock_cancel, v, &[100]);
            rec.checks = v
                .iter()
                .map(|&check| CheckResult {
                    check,
                    outcome: CheckOutcome::Violation {
                        detail: format!("{} failed in trial {t}\nsecond line", check.as_str()),
                    },
                    elapsed_us: 1,
                })
                .collect();
            agg.add(&rec);
            agg.add(&record(10 + t as u64, &kill, &[], &[100]));
        }
        let md = render(&agg.summary(&meta(), 1.0, false), "`crashfuzz run hazards --seed 7`");
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ") && l.contains('`')).collect();
        assert_eq!(rows.len(), 3, "{md}");
        assert!(rows[0].starts_with("| kill | WAL | bundled |"), "{md}");
        assert!(rows[0].contains("| 4 | 0/4 (≤ 49%) | 0/4 (≤ 49%) | none |"), "{md}");
        assert!(rows[0].ends_with("| ok |"), "{md}");
        // Two states damaged (integrity+fts, reopen_write), two lost an ack: the same count,
        // not the same states.
        assert!(rows[1].starts_with("| lock_cancel | DELETE | bundled | `delete/full/lock_cancel` |"), "{md}");
        assert!(
            rows[1].contains(
                "| 4 | **2/4** (15%–85%) | **2/4** (15%–85%) | lost_ack 2, integrity 1, fts 1, reopen_write 1 |"
            ),
            "{md}"
        );
        assert!(rows[1].contains("canary"), "{md}");
        // Writers on the system build: its version as they read it back; what only the
        // oracle's build called damage is shown apart, not counted.
        assert!(
            rows[2].starts_with(
                "| lock_cancel | WAL | 3.40.1 (system) | `wal/full/lock_cancel/auto-checkpoint[system]` | 1 |"
            ),
            "{md}"
        );
        assert!(rows[2].contains("lost_ack 1, (cross-version disagreement 1, not damage)"), "{md}");
        // The first failed check of the first failing trial, cut to its first line.
        assert!(md.contains("- `delete/full/lock_cancel`: integrity failed in trial 0\n"), "{md}");
        assert!(!md.contains("second line"), "{md}");
        assert!(md.contains("- `lock_cancel`: each long-lived writer"), "{md}");
        assert!(md.contains("- campaign: `crashfuzz run hazards --seed 7`;"), "{md}");
    }
}

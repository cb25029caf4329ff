//! `summary.md`: a header line, one table row per cell, the failures, a legend.

use crate::fault::{SqliteVersion, TRIGRAM_NUL_INDEXED_FROM};
use crate::record::checks::ViolationKind;
use crate::report::charts;
use crate::report::summary::{CellSummary, Summary};
use crate::report::text::*;
use crate::scenario::expect::Level;
use std::fmt::Write as _;

/// `summary.md`: a header line, one table row per cell, the failures, a legend.
pub fn markdown(summary: &Summary) -> String {
    let mut out = String::new();
    header(&mut out, summary);
    cell_table(&mut out, summary);
    own_writer(&mut out, summary);
    builds_and_closes(&mut out, summary);
    failures(&mut out, summary);
    let _ = writeln!(out, "\n## Charts\n");
    for (name, what) in charts::CHARTS {
        let _ = writeln!(out, "- [{name}]({name}): {what}");
    }
    legend(&mut out);
    out
}

/// The verdict line, then where the run came from: its command, or the runs merged.
fn header(out: &mut String, summary: &Summary) {
    let m = &summary.meta;
    let verdict = if summary.failed() { "FAILED" } else { "ok" };
    let _ = writeln!(out, "# crashfuzz: {}\n", m.scenario);
    let merged = summary.sources.len() > 1;
    let _ = writeln!(
        out,
        "**verdict: {verdict}** ({}) · {} trials ({} checked, {} inconclusive) · {} · {:.1} s{} · \
         SQLite {} · crashfuzz {}{}\n",
        verdict_counts_line(summary),
        summary.trials,
        summary.checked,
        summary.inconclusive,
        seeds_text(summary),
        summary.duration_s,
        if merged { format!(" summed over {} runs", summary.sources.len()) } else { String::new() },
        m.sqlite_version,
        m.crashfuzz_version,
        if summary.interrupted { " · **interrupted**: only the trials that finished" } else { "" },
    );
    if merged {
        merged_runs(out, summary);
    } else {
        let _ = writeln!(
            out,
            "Run `{}` started {} from `{}`: `{}`\n",
            m.run_id, m.started_at, m.scenario_source, m.command
        );
    }
}

/// For an application's own writer: each check, and on how many checked trials it ran, or why
/// it did not.
fn own_writer(out: &mut String, summary: &Summary) {
    let Some(own) = &summary.meta.own_writer else { return };
    let _ = writeln!(out, "\n## The application's writer\n");
    let _ = writeln!(out, "`{}`, {} acknowledged commits.\n", own.command, summary.commits);
    let _ = writeln!(out, "| check | ran on | why not |\n|---|--:|---|");
    for kind in ViolationKind::ALL {
        let ran = summary.check_runs.get(&kind).copied().unwrap_or(0);
        let why = match (own.not_applicable.get(kind.as_str()), kind) {
            (Some(why), _) => why.clone(),
            (None, ViolationKind::LostAck) if summary.commits == 0 => {
                "the program acknowledged no commit: nothing to lose, so lost commits were not tested".into()
            }
            (None, ViolationKind::Phantom) if ran == 0 => {
                "the program sent no `begin` lines: a commit it had no time to acknowledge would look like one".into()
            }
            (None, ViolationKind::FtsMiss) if ran == 0 => "no FTS5 table with readable content".into(),
            (None, ViolationKind::WriterCrash | ViolationKind::Protocol) => {
                "judged from the processes and their lines, on every trial".into()
            }
            (None, _) if ran == 0 => "blocked by an earlier violation, or no trial was checked".into(),
            (None, _) => String::new(),
        };
        let ran = match kind {
            ViolationKind::WriterCrash | ViolationKind::Protocol => "every trial".to_string(),
            _ => format!("{ran} trials"),
        };
        let _ = writeln!(out, "| `{}` | {ran} | {why} |", kind.as_str());
    }
}

/// The runs a merged summary sums, one row each.
fn merged_runs(out: &mut String, summary: &Summary) {
    let m = &summary.meta;
    let _ = writeln!(
        out,
        "Merged from {} runs by `{}`; the first started {}.\n",
        summary.sources.len(),
        m.command,
        m.started_at
    );
    let _ = writeln!(out, "| run directory | run id | scenario | shard | seed | trials | duration |");
    let _ = writeln!(out, "|---|---|---|---|--:|--:|--:|");
    for r in &summary.sources {
        let mut notes = Vec::new();
        if r.interrupted {
            notes.push("interrupted");
        }
        if r.torn_last_line {
            notes.push("torn last line skipped");
        }
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} | {}{} | {:.1} s |",
            r.dir,
            r.run_id,
            r.scenario,
            r.shard.as_deref().unwrap_or("–"),
            r.seed.map_or_else(|| "–".to_string(), |s| s.to_string()),
            r.trials,
            if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) },
            r.duration_s,
        );
    }
    let _ = writeln!(out);
}

/// One row per cell: its rate of each violation kind, expectation, verdict and latency.
fn cell_table(out: &mut String, summary: &Summary) {
    let kinds: Vec<&str> = ViolationKind::ALL.iter().map(|&k| short(k)).collect();
    let _ = writeln!(
        out,
        "| cell | trials | crash states | {} | expectation | verdict | commit p50 / p99 µs |",
        kinds.join(" | ")
    );
    let _ = writeln!(out, "|---|--:|--:|{}---|---|--:|", "--:|".repeat(kinds.len()));
    for c in &summary.cells {
        let rates: Vec<String> = ViolationKind::ALL
            .iter()
            .map(|&k| {
                let text = c.rate_text(k);
                let seen = c.violations.get(&k).copied().unwrap_or(0) > 0;
                if seen && c.expectation.level(k) == Level::Forbidden { format!("**{text}**") } else { text }
            })
            .collect();
        let trials = match c.inconclusive {
            0 => c.trials.to_string(),
            n => format!("{} ({n} inconcl.)", c.trials),
        };
        let states = match c.images {
            0 => c.crash_states.to_string(),
            images => format!("{} of {images} img", c.crash_states),
        };
        let _ = writeln!(
            out,
            "| `{}` | {trials} | {states} | {} | {} | {} | {} |",
            c.id,
            rates.join(" | "),
            short_expectation(&c.expectation),
            c.verdict_label(true),
            latency_pair(&c.commit_latency_us),
        );
    }
}

/// How a trial names the SQLite of an application's program that loaded no SQLite library.
pub const COMPILED_IN: &str = "compiled into the program";

/// Per cell whose writers ran on another SQLite than the bundled one, or that counted WAL
/// closes: the build as the writers read it back, the trials where only the oracle's build saw
/// damage (not counted as damage), and how many clean closes happened alone.
fn builds_and_closes(out: &mut String, summary: &Summary) {
    let shown: Vec<&CellSummary> = summary
        .cells
        .iter()
        .filter(|c| !c.cell.sqlite.is_bundled() || c.cross_version_trials > 0 || c.topology.closes > 0)
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## SQLite builds and closes\n");
    let _ = writeln!(out, "| cell | writers' SQLite | cross-version disagreements | closes alone / clean closes |");
    let _ = writeln!(out, "|---|---|--:|--:|");
    for &c in &shown {
        let build = c.writer_sqlite.as_ref().map_or_else(
            || format!("{} (no writer reported)", c.cell.sqlite),
            |s| format!("{} {} (`{}`)", c.cell.sqlite, s.version, s.source_id),
        );
        let closes = match c.topology.closes {
            0 => "—".to_string(),
            n => format!("{} / {n}", c.topology.closes_alone),
        };
        let _ =
            writeln!(out, "| `{}` | {build} | {} of {} trials | {closes} |", c.id, c.cross_version_trials, c.checked);
    }
    let _ = writeln!(
        out,
        "\nThe oracle runs on SQLite {} (bundled); on a cell whose writers run on another build, that build checks \
         every image too, and only what both call damage counts as damage. Where one build calls an image damaged \
         and the other does not, or only the oracle's search misses a message, the trial counts a cross-version \
         disagreement instead. A close is alone when the WAL was gone after it: the closer checkpointed and \
         deleted it as the last connection it believed it was.",
        summary.meta.sqlite_version
    );
    let mut old_trigram: Vec<&str> = shown
        .iter()
        .filter_map(|c| c.writer_sqlite.as_ref())
        .filter(|s| SqliteVersion::parse(&s.version).is_some_and(|v| v < TRIGRAM_NUL_INDEXED_FROM))
        .map(|s| s.version.as_str())
        .collect();
    old_trigram.sort_unstable();
    old_trigram.dedup();
    if !old_trigram.is_empty() {
        let _ = writeln!(
            out,
            "\nSQLite {} (before {TRIGRAM_NUL_INDEXED_FROM}) indexes trigram text that begins with NUL as empty: the \
             writers' own search misses those messages (`fts_miss`, the `miss` column), which the built-in \
             expectation allows there, and the bundled build calls such an index malformed (a cross-version \
             disagreement).",
            old_trigram.join(", ")
        );
    }
    let compiled_in: Vec<&str> = shown
        .iter()
        .filter(|c| c.writer_sqlite.as_ref().is_some_and(|s| s.version == COMPILED_IN))
        .map(|c| c.id.as_str())
        .collect();
    if !compiled_in.is_empty() {
        let _ = writeln!(
            out,
            "\nThe program of {} loaded no SQLite library: it runs the SQLite compiled into it, whose version crashfuzz \
             cannot read. Those cells' expectations took the version of the build the cell names; where an \
             expectation depends on the version (`fts_miss` before {TRIGRAM_NUL_INDEXED_FROM}, lock cancellation in WAL \
             before 3.51.0), give the cell its own with `[[expect]]`.",
            compiled_in.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
        );
    }
}

/// The failing cells with their trials' replay lines, then the inconclusive trials' reasons.
fn failures(out: &mut String, summary: &Summary) {
    let _ = writeln!(out, "\n## Failures\n");
    let failing: Vec<&CellSummary> = summary.cells.iter().filter(|c| c.verdict.failed()).collect();
    if failing.is_empty() {
        let _ = writeln!(out, "None: every cell met its expectation.");
    }
    for c in failing {
        let _ = writeln!(out, "- `{}`: {}", c.id, c.verdict_reason());
        for f in &c.failures {
            let kinds: Vec<&str> = f.violations.iter().map(|k| k.as_str()).collect();
            let replay = f.replay.as_deref().map_or_else(|| "no replay line".to_string(), |r| format!("`{r}`"));
            let _ = writeln!(out, "  - trial {} ({}): {replay}", f.trial, kinds.join(", "));
            if let Some(detail) = &f.detail {
                let _ = writeln!(out, "    {}: {detail}", f.violations.first().map_or("check", |k| k.as_str()));
            }
        }
    }
    let inconclusive: Vec<&CellSummary> = summary.cells.iter().filter(|c| c.inconclusive > 0).collect();
    if !inconclusive.is_empty() {
        let _ = writeln!(out, "\n## Inconclusive trials\n");
        for c in inconclusive {
            let _ = writeln!(
                out,
                "- `{}`: {} of {}, e.g. {}",
                c.id,
                c.inconclusive,
                c.trials,
                c.inconclusive_reasons.join("; ")
            );
        }
    }
}

/// What the table's notation, verdicts and kinds mean.
fn legend(out: &mut String) {
    let _ = writeln!(out, "\n## Legend\n");
    let _ = writeln!(
        out,
        "- `k/n (≤ u%)`: k of n checked trials showed the violation; u is the Wilson 95% upper bound on its \
         rate (0/45 means ≤ 7.9%, not 0%). A process crash leaves one crash state per trial. A power-loss \
         trial (a trace) yields several images; `· k/n img` counts the distinct ones (an image equal to an \
         earlier one of its trace is the same state, counted once), but the bound is taken over traces: \
         the images of one trace share its writes and are not independent samples. **Bold**: forbidden \
         and seen."
    );
    let _ = writeln!(
        out,
        "- Verdicts: `ok` met the expectation; `regression` a forbidden violation happened; `no-data` fewer \
         crash states were checked than the run demands (`--min-states`, default 1: every trial \
         inconclusive, or none ran), so the cell proves nothing and fails the run; `silent-canary` a \
         positive control found none of its required violations, so the harness may have lost its teeth."
    );
    let _ = writeln!(
        out,
        "- Kinds: open, integ(rity_check), fts, miss (a sampled search missed a message holding the term: \
         `fts_miss`), lost (acknowledged commit lost), phant(om), atom(icity), \
         prefix (hole in a writer's sequence), reopen (write after recovery), crash (a writer died of \
         something crashfuzz did not send: `writer_crash`). Inconclusive trials are not crash states."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::checks::ViolationKind;
    use crate::report::console::console_matrix;
    use crate::report::testkit::*;

    #[test]
    fn markdown_and_console_show_bounds_and_verdicts() {
        let s = sample_summary();
        let md = markdown(&s);
        assert!(md.contains("0/45 (≤ 7.9%)"), "{md}");
        assert!(md.contains("**3/40 (≤ 20%)**"), "{md}");
        assert!(md.contains("**regression**"), "{md}");
        assert!(md.contains("crashfuzz replay out/failures/17"), "{md}");
        assert_eq!(md.matches("\n| `").count(), 3);
        let console = console_matrix(&s);
        assert!(console.contains("regression"), "{console}");
        let last = console.lines().find(|l| l.starts_with("verdict:")).unwrap();
        assert_eq!(last, "verdict: FAILED (1 regression; 3 cells): regression delete/normal/kill");
        println!("{md}\n{console}");

        let mut silent = aggregator();
        silent.add(&record(0, &wal(), &[], &[5]));
        silent.add(&record(1, &off(), &[], &[5]));
        silent.add(&record(2, &delete(), &[], &[5]));
        let console = console_matrix(&silent.summary(&meta(), 1.0, false));
        assert!(console.contains("silent-canary"), "{console}");
        assert!(console.contains("off/full/sigkill_only@bulk"), "{console}");

        let mut bare = aggregator();
        bare.add(&record(0, &wal(), &[], &[5]));
        bare.add(&inconclusive(1, &off(), "writer 2000 died before the fault (exit:3): setup"));
        bare.add(&record(2, &delete(), &[], &[5]));
        let console = console_matrix(&bare.summary(&meta(), 1.0, false));
        let last = console.lines().find(|l| l.starts_with("verdict:")).unwrap();
        assert_eq!(last, "verdict: FAILED (1 no-data; 3 cells): no-data off/full/sigkill_only@bulk", "{console}");
        assert!(console.contains("1 of 1 trials inconclusive, e.g. writer 2000 died"), "{console}");

        let mut ok = aggregator();
        ok.add(&record(0, &wal(), &[], &[5]));
        ok.add(&record(1, &off(), &[ViolationKind::Integrity, ViolationKind::Atomicity], &[5]));
        ok.add(&record(2, &delete(), &[], &[5]));
        let console = console_matrix(&ok.summary(&meta(), 1.0, false));
        assert_eq!(console.lines().last().unwrap(), "verdict: ok (3 cells: 3 ok)", "{console}");
        assert!(console.contains("integrity 1, atomicity 1"), "{console}");
    }
}

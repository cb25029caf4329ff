//! What the terminal shows after a campaign: one aligned line per cell, then the verdict line.

use crate::report::summary::Summary;
use crate::report::text::*;
use std::fmt::Write as _;

/// What the terminal shows after a campaign: one aligned line per cell, then the verdict line,
/// which names the failing cells and says `regression`, `no-data` or `silent-canary` for each,
/// with the reason.
pub fn console_matrix(summary: &Summary) -> String {
    let header = ["cell", "trials", "inconcl", "states", "violations", "verdict"];
    let rows: Vec<[String; 6]> = summary
        .cells
        .iter()
        .map(|c| {
            let hits: Vec<String> =
                c.violations.iter().filter(|&(_, &n)| n > 0).map(|(k, n)| format!("{} {n}", k.as_str())).collect();
            let verdict = c.verdict_label(false);
            [
                c.id.clone(),
                c.trials.to_string(),
                c.inconclusive.to_string(),
                c.crash_states.to_string(),
                if hits.is_empty() { "-".to_string() } else { hits.join(", ") },
                verdict,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: [&str; 6]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:<w4$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
    };
    line(&mut out, header);
    for row in &rows {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }

    let interrupted = if summary.interrupted { " [interrupted: partial results]" } else { "" };
    if !summary.failed() {
        let _ = writeln!(out, "verdict: ok ({}){interrupted}", verdict_counts_line(summary));
        return out;
    }
    let counts: Vec<String> = summary
        .verdict_counts()
        .into_iter()
        .filter(|&(v, n)| n > 0 && v.failed())
        .map(|(v, n)| format!("{n} {}", v.as_str()))
        .collect();
    let failing: Vec<String> = summary
        .cells
        .iter()
        .filter(|c| c.verdict.failed())
        .map(|c| format!("{} {}", c.verdict.as_str(), c.id))
        .collect();
    let _ = writeln!(
        out,
        "verdict: FAILED ({}; {} cells){interrupted}: {}",
        counts.join(", "),
        summary.cells.len(),
        failing.join(", ")
    );
    for c in summary.cells.iter().filter(|c| c.verdict.failed()) {
        let _ = writeln!(out, "  {}: {}", c.id, c.verdict_reason());
        if let Some(replay) = c.failures.first().and_then(|f| f.replay.as_deref()) {
            let _ = writeln!(out, "    replay: {replay}");
        }
    }
    out
}

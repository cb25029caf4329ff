//! Charts: the SVG figures of a [`Summary`], written beside `summary.md` by `crashfuzz run` and
//! `crashfuzz report` alike ([`write_reports`](crate::report::files::write_reports)):
//!
//! - `violations.svg`: per cell, the rate of each violation kind among its checked crash
//!   states, with the Wilson 95% interval as whiskers;
//! - `synchronous.svg`: cells that differ only in `PRAGMA synchronous` side by side (OFF,
//!   NORMAL, FULL, EXTRA), the rate of "any violation" and of `lost_ack` with their intervals;
//! - `latency.svg`: commit latency p50 and p99 per cell that recorded commits (log scale).
//!
//! **A chart is a pure function of the summary.** It reads no file, no clock and no trial
//! record, and computes no statistic of its own beyond [`stats::wilson_interval`] of the
//! summary's counts (percentiles come from the summary, which took them from HdrHistogram), so
//! a chart redrawn from a rebuilt summary is the same chart. The row builders
//! ([`violation_rows`], [`synchronous_rows`], [`latency_rows`]) hold every decision about what
//! is shown and are tested without drawing; [`render`] only lays rows out.
//!
//! Text: plotters is built with `svg_backend` alone (no `ttf`, no `ab_glyph`), so it links no
//! font library. It then estimates text extents with a fixed per-character rule (used only to
//! size label areas) and the SVG backend writes every label as an SVG `<text>` element, which
//! the viewer renders with its own fonts. Nothing here needs fontconfig or a font file, and the
//! row labels use a monospace family so the estimate matches what is drawn.

use crate::base::stats;
use crate::record::checks::ViolationKind;
use crate::report::summary::CellSummary;
use crate::report::summary::Summary;
use crate::scenario::expect::Verdict;
use crate::scenario::matrix::Synchronous;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const VIOLATIONS_SVG: &str = "violations.svg";
pub const SYNCHRONOUS_SVG: &str = "synchronous.svg";
pub const LATENCY_SVG: &str = "latency.svg";

/// Every chart file with what it shows (the list `summary.md` links).
pub const CHARTS: [(&str, &str); 3] = [
    (VIOLATIONS_SVG, "each violation kind's rate per cell, with its Wilson 95% interval"),
    (
        SYNCHRONOUS_SVG,
        "cells that differ only in `synchronous` side by side: the rate of any violation and of lost_ack, with \
         intervals",
    ),
    (LATENCY_SVG, "commit latency p50 and p99 per cell (µs, log scale)"),
];

/// One bar of a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Index into the chart's series (its colour and legend entry).
    pub series: usize,
    /// A rate in [0, 1], or a latency in µs.
    pub value: f64,
    /// The Wilson 95% interval of a rate, drawn as whiskers.
    pub interval: Option<(f64, f64)>,
}

/// One line of a chart, top to bottom.
#[derive(Clone, Debug, PartialEq)]
pub enum Row {
    /// A group title (bold, across the label column).
    Heading(String),
    /// A labelled row of bars; a row without bars says "no data" by its label alone.
    Bars { label: String, bars: Vec<Bar> },
}

/// What the x axis measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    /// A rate, linear from 0, shown in percent.
    Rate,
    /// Microseconds, log scale.
    LatencyUs,
}

/// Everything [`render`] draws.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    /// At most two lines (`\n`-separated); the chart is sized for them.
    pub subtitle: String,
    pub x_axis: XAxis,
    pub x_desc: String,
    /// (name, colour) per series, in legend order.
    pub series: Vec<(String, RGBColor)>,
    pub rows: Vec<Row>,
    /// Shown instead of the plot when there is no row: why the chart is empty.
    pub empty_note: String,
}

/// The Okabe–Ito palette: eight colours told apart with every common colour-vision deficiency,
/// and Paul Tol's olive, wine and teal for the ninth to eleventh; one per violation kind.
const PALETTE: [RGBColor; ViolationKind::ALL.len()] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(153, 153, 51),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    // Okabe–Ito's yellow (240, 228, 66) all but vanishes on white; a grey takes its place.
    RGBColor(128, 128, 128),
    RGBColor(136, 34, 85),
    // Paul Tol's teal, for the eleventh (`protocol`).
    RGBColor(68, 170, 153),
];

/// Height of one bar's slot.
const SLOT_PX: u32 = 8;
/// Title, two lines of subtitle and the legend.
const TOP_PX: u32 = 100;
/// The x axis labels and description.
const X_LABEL_AREA_PX: u32 = 44;
const PLOT_WIDTH_PX: u32 = 640;
const RIGHT_MARGIN_PX: u32 = 90;
/// plotters writes `font-size` as the given size / 1.24: 14 is an 11.3 px font.
const LABEL_FONT: u32 = 14;
/// Width of one monospace character at [`LABEL_FONT`] (0.6 em), for sizing the label column.
const LABEL_CHAR_PX: f64 = 6.9;
/// A chart never grows past this many rows (a matrix of thousands of cells would make an SVG
/// no viewer opens); the rows left out are counted in a last row.
pub const ROWS_MAX: usize = 400;

/// Renders the three charts of `summary`: (file name, SVG text).
pub fn render_all(summary: &Summary) -> std::io::Result<Vec<(&'static str, String)>> {
    let specs = [
        (VIOLATIONS_SVG, violations_chart(summary)),
        (SYNCHRONOUS_SVG, synchronous_chart(summary)),
        (LATENCY_SVG, latency_chart(summary)),
    ];
    specs
        .into_iter()
        .map(|(name, spec)| {
            render(&spec).map(|svg| (name, svg)).map_err(|e| std::io::Error::other(format!("{name}: {e}")))
        })
        .collect()
}

fn scope(summary: &Summary) -> String {
    let runs = match summary.sources.len() {
        0 | 1 => String::new(),
        n => format!(", merged from {n} runs"),
    };
    format!("Scenario {}: {} trials{runs}.", summary.meta.scenario, summary.trials)
}

/// The rate `k/n` with its Wilson 95% interval; `None` when nothing was checked.
fn rate_bar(series: usize, k: u64, n: u64) -> Option<Bar> {
    (n > 0).then(|| Bar { series, value: k as f64 / n as f64, interval: Some(stats::wilson_interval(k, n)) })
}

/// `n=40`, or for a power loss `n=40 traces, 250 img`: the rates are per trial (trace), the
/// distinct images beside them.
fn sample_size(c: &CellSummary) -> String {
    match c.images {
        0 => format!("n={}", c.checked),
        _ => format!("n={} traces, {} img", c.checked, c.crash_states),
    }
}

fn verdict_mark(c: &CellSummary) -> &'static str {
    match c.verdict {
        Verdict::Ok => "",
        Verdict::Regression => "  [regression]",
        Verdict::NoData => "  [no-data]",
        Verdict::SilentCanary => "  [silent-canary]",
    }
}

/// One row per cell: every kind's rate among the cell's checked trials (traces, for a power
/// loss: their images are not independent).
pub fn violation_rows(summary: &Summary) -> Vec<Row> {
    summary
        .cells
        .iter()
        .map(|c| {
            let bars = ViolationKind::ALL
                .iter()
                .enumerate()
                .filter_map(|(i, k)| rate_bar(i, c.trial_violations.get(k).copied().unwrap_or(0), c.checked))
                .collect();
            let label = match c.crash_states {
                0 => format!("{}  no crash state{}", c.id, verdict_mark(c)),
                _ => format!("{}  {}{}", c.id, sample_size(c), verdict_mark(c)),
            };
            Row::Bars { label, bars }
        })
        .collect()
}

fn violations_chart(summary: &Summary) -> ChartSpec {
    ChartSpec {
        title: "Violations per cell".into(),
        subtitle: format!(
            "Share of a cell's n checked trials (power loss: traces) showing each kind in some crash state; \
             whiskers: Wilson 95% interval.\n{}",
            scope(summary)
        ),
        x_axis: XAxis::Rate,
        x_desc: "trials with the violation".into(),
        series: ViolationKind::ALL.iter().zip(PALETTE).map(|(k, colour)| (k.as_str().to_string(), colour)).collect(),
        rows: violation_rows(summary),
        empty_note: "The summary has no cell.".into(),
    }
}

/// `wal/*/power_loss/auto-checkpoint`: a cell's id with its synchronous level left open. Every
/// id starts `journal_mode/synchronous/` ([`crate::scenario::matrix::Cell::id`]).
fn group_label(id: &str) -> String {
    match id.split_once('/').and_then(|(journal, rest)| rest.split_once('/').map(|(_, rest)| (journal, rest))) {
        Some((journal, rest)) => format!("{journal}/*/{rest}"),
        None => id.to_string(),
    }
}

/// Cells that differ only in `synchronous`, grouped (a heading per group, then one row per
/// level, OFF to EXTRA): the rate of any violation and of `lost_ack` among checked trials. A cell
/// with no sibling is left out: there is nothing to compare it with.
pub fn synchronous_rows(summary: &Summary) -> Vec<Row> {
    // Groups in the order their first cell appears in the summary.
    let mut groups: Vec<(crate::scenario::matrix::Cell, Vec<&CellSummary>)> = Vec::new();
    for c in &summary.cells {
        let key = crate::scenario::matrix::Cell { synchronous: Synchronous::Off, ..c.cell };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(c),
            None => groups.push((key, vec![c])),
        }
    }
    let mut rows = Vec::new();
    for (_, mut members) in groups {
        if members.len() < 2 {
            continue;
        }
        members.sort_by_key(|c| c.cell.synchronous);
        rows.push(Row::Heading(group_label(&members[0].id)));
        for c in members {
            let lost = c.trial_violations.get(&ViolationKind::LostAck).copied().unwrap_or(0);
            let bars = [rate_bar(0, c.violating_trials, c.checked), rate_bar(1, lost, c.checked)]
                .into_iter()
                .flatten()
                .collect();
            let label = format!("synchronous={}  {}{}", c.cell.synchronous.as_sql(), sample_size(c), verdict_mark(c));
            rows.push(Row::Bars { label, bars });
        }
    }
    rows
}

fn synchronous_chart(summary: &Summary) -> ChartSpec {
    ChartSpec {
        title: "synchronous = OFF, NORMAL, FULL, EXTRA side by side".into(),
        subtitle: format!(
            "Cells differing only in synchronous: trials (power loss: traces) with any violation, and with an \
             acknowledged commit lost (lost_ack);\nwhiskers: Wilson 95% interval. {}",
            scope(summary)
        ),
        x_axis: XAxis::Rate,
        x_desc: "trials".into(),
        series: vec![("any violation".into(), PALETTE[0]), ("lost_ack".into(), PALETTE[1])],
        rows: synchronous_rows(summary),
        empty_note: "No two cells differ only in synchronous: add levels to a matrix block to compare them.".into(),
    }
}

/// One row per cell that recorded commit latencies: p50 and p99 in µs.
pub fn latency_rows(summary: &Summary) -> Vec<Row> {
    summary
        .cells
        .iter()
        .filter_map(|c| {
            let l = &c.commit_latency_us;
            let (p50, p99) = (l.p50?, l.p99?);
            let bars = vec![
                Bar { series: 0, value: p50 as f64, interval: None },
                Bar { series: 1, value: p99 as f64, interval: None },
            ];
            Some(Row::Bars { label: format!("{}  commits={}", c.id, l.count), bars })
        })
        .collect()
}

fn latency_chart(summary: &Summary) -> ChartSpec {
    ChartSpec {
        title: "Commit latency per cell".into(),
        subtitle: format!(
            "Acknowledged commits, timed by the writers under the campaign's load; log scale.\n{}",
            scope(summary)
        ),
        x_axis: XAxis::LatencyUs,
        x_desc: "commit latency".into(),
        series: vec![("p50".into(), PALETTE[5]), ("p99".into(), PALETTE[0])],
        rows: latency_rows(summary),
        empty_note: "No cell recorded a commit latency.".into(),
    }
}

// ------------------------------------------------------------------------------- drawing

/// Rows beyond [`ROWS_MAX`] are replaced by one row that says how many were left out.
fn bounded_rows(rows: &[Row]) -> Vec<Row> {
    if rows.len() <= ROWS_MAX {
        return rows.to_vec();
    }
    let mut kept = rows[..ROWS_MAX - 1].to_vec();
    kept.push(Row::Bars {
        label: format!("… {} more rows not drawn", rows.len() - (ROWS_MAX - 1)), bars: Vec::new()
    });
    kept
}

/// Slots a row takes (bars, or one for a label alone), plus one of gap.
fn row_slots(row: &Row) -> u32 {
    match row {
        Row::Heading(_) => 3,
        Row::Bars { bars, .. } => bars.len().max(1) as u32 + 1,
    }
}

fn label_chars(row: &Row) -> usize {
    match row {
        Row::Heading(_) => 0,
        Row::Bars { label, .. } => label.chars().count(),
    }
}

/// `0.5%`, `12%`: as many decimals as the axis needs.
fn percent_label(rate: f64, x_max: f64) -> String {
    match x_max {
        m if m <= 0.05 => format!("{:.1}%", rate * 100.0),
        _ => format!("{:.0}%", rate * 100.0),
    }
}

/// `300 µs`, `4 ms`, `12.3 ms`: three significant figures at most, which is all a histogram of
/// three significant figures knows (its p99 of 4 000 µs reads back as 4 001).
fn micros_label(us: f64) -> String {
    let (value, unit) = match us {
        us if us >= 1e6 => (us / 1e6, "s"),
        us if us >= 1e3 => (us / 1e3, "ms"),
        us => (us, "µs"),
    };
    let decimals = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text} {unit}")
}

/// The smallest round rate at or above the highest whisker, so a campaign whose rates are all
/// small is not drawn as bars of zero width.
fn rate_axis_max(rows: &[Row]) -> f64 {
    let highest = rows
        .iter()
        .flat_map(|r| match r {
            Row::Heading(_) => &[][..],
            Row::Bars { bars, .. } => &bars[..],
        })
        .map(|b| b.interval.map_or(b.value, |(_, hi)| hi))
        .fold(0.0, f64::max);
    [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0].into_iter().find(|&m| m >= highest * 1.04).unwrap_or(1.0)
}

/// The decades around every latency drawn: [10^⌊log10 min⌋, 10^⌈log10 max⌉], at least 1 µs.
fn latency_axis(rows: &[Row]) -> (f64, f64) {
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| match r {
            Row::Heading(_) => &[][..],
            Row::Bars { bars, .. } => &bars[..],
        })
        .map(|b| b.value.max(1.0))
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(1.0, f64::max);
    let lo = if lo.is_finite() { 10f64.powf(lo.log10().floor()) } else { 1.0 };
    let hi = 10f64.powf((hi * 1.01).log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Draws `spec` as an SVG document: title, legend, then one horizontal band per row.
pub fn render(spec: &ChartSpec) -> Result<String, DrawingAreaErrorKind<std::io::Error>> {
    let rows = bounded_rows(&spec.rows);
    let slots: u32 = rows.iter().map(row_slots).sum();
    let label_px = (rows.iter().map(label_chars).max().unwrap_or(0) as f64 * LABEL_CHAR_PX).ceil() as u32 + 24;
    let width = (label_px + PLOT_WIDTH_PX + RIGHT_MARGIN_PX).max(900);
    let height = match rows.is_empty() {
        true => TOP_PX + 40,
        false => TOP_PX + slots * SLOT_PX + X_LABEL_AREA_PX + 18,
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw_header(&root, spec)?;
        if rows.is_empty() {
            let note = ("sans-serif", 16).into_font().color(&BLACK);
            root.draw(&Text::new(spec.empty_note.clone(), (16, TOP_PX as i32 + 8), note))?;
        } else {
            let (_, plot) = root.split_vertically(TOP_PX);
            match spec.x_axis {
                XAxis::Rate => {
                    let x_max = rate_axis_max(&rows);
                    let fmt = |v: &f64| percent_label(*v, x_max);
                    draw_rows(&root, &plot, 0.0..x_max, &fmt, 0.0, spec, &rows, slots, label_px)?;
                }
                XAxis::LatencyUs => {
                    let (lo, hi) = latency_axis(&rows);
                    let fmt = |v: &f64| micros_label(*v);
                    draw_rows(&root, &plot, (lo..hi).log_scale(), &fmt, lo, spec, &rows, slots, label_px)?;
                }
            }
        }
        root.present()?;
    }
    Ok(svg)
}

fn draw_header(root: &Area<'_>, spec: &ChartSpec) -> DrawResult {
    root.draw(&Text::new(spec.title.clone(), (16, 8), ("sans-serif", 22).into_font().color(&BLACK)))?;
    let small = ("sans-serif", 15).into_font().color(&RGBColor(60, 60, 60));
    for (i, line) in spec.subtitle.lines().take(2).enumerate() {
        root.draw(&Text::new(line.to_string(), (16, 34 + 18 * i as i32), small.clone()))?;
    }
    // The legend: a swatch and a name per series, left to right.
    let mut x = 16;
    for (name, colour) in &spec.series {
        root.draw(&Rectangle::new([(x, 76), (x + 12, 88)], colour.filled()))?;
        root.draw(&Text::new(name.clone(), (x + 17, 75), small.clone()))?;
        x += 17 + (name.chars().count() as f64 * 7.5) as i32 + 18;
    }
    Ok(())
}

/// Lays the rows out on `plot` (the area below the header); row labels go on `root` at the
/// positions the chart maps them to, in the label column left of the axis.
#[allow(clippy::too_many_arguments)]
fn draw_rows<X>(
    root: &Area<'_>,
    plot: &Area<'_>,
    x_spec: X,
    x_fmt: &dyn Fn(&f64) -> String,
    x_origin: f64,
    spec: &ChartSpec,
    rows: &[Row],
    slots: u32,
    label_px: u32,
) -> DrawResult
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(plot)
        .margin_right(RIGHT_MARGIN_PX)
        .margin_top(6)
        .margin_bottom(12)
        .x_label_area_size(X_LABEL_AREA_PX)
        .y_label_area_size(label_px)
        .build_cartesian_2d(x_spec, 0.0..f64::from(slots))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(8)
        .x_max_light_lines(2)
        .x_label_formatter(x_fmt)
        .x_desc(spec.x_desc.as_str())
        .label_style(("sans-serif", 15))
        .draw()?;

    let label_font = ("monospace", LABEL_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
    let heading_font = FontDesc::new(FontFamily::SansSerif, 16.0, FontStyle::Bold).color(&BLACK);
    let value_font =
        ("sans-serif", 12).into_font().color(&RGBColor(60, 60, 60)).pos(Pos::new(HPos::Left, VPos::Center));
    // Slots count from the top; the chart's y axis grows upwards.
    let y_of = |slot: f64| f64::from(slots) - slot;
    let mut top = 0u32;
    for row in rows {
        match row {
            Row::Heading(text) => {
                let (_, y) = chart.backend_coord(&(x_origin, y_of(f64::from(top) + 1.6)));
                root.draw(&Text::new(text.clone(), (16, y - 8), heading_font.clone()))?;
            }
            Row::Bars { label, bars } => {
                let centre = |i: usize| y_of(f64::from(top) + i as f64 + 0.5);
                let mid = centre(0) - (bars.len().max(1) as f64 - 1.0) / 2.0;
                let (x, y) = chart.backend_coord(&(x_origin, mid));
                root.draw(&Text::new(label.clone(), (x - 8, y), label_font.clone()))?;
                for (i, bar) in bars.iter().enumerate() {
                    let colour = spec.series[bar.series].1;
                    let y = centre(i);
                    let fill = match bar.interval {
                        Some(_) => colour.mix(0.35).filled(),
                        None => colour.filled(),
                    };
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x_origin, y - 0.4), (bar.value.max(x_origin), y + 0.4)],
                        fill,
                    )))?;
                    match bar.interval {
                        Some((lo, hi)) => {
                            chart.draw_series(std::iter::once(ErrorBar::new_horizontal(
                                y,
                                lo,
                                bar.value,
                                hi,
                                colour.filled().stroke_width(1),
                                SLOT_PX - 2,
                            )))?;
                        }
                        None => {
                            let (x, y) = chart.backend_coord(&(bar.value.max(x_origin), y));
                            let text = format!("{} {}", spec.series[bar.series].0, micros_label(bar.value));
                            root.draw(&Text::new(text, (x + 4, y), value_font.clone()))?;
                        }
                    }
                }
            }
        }
        top += row_slots(row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::scenario::matrix::{Cell, CheckpointPolicy, FaultKind, FullFsync, JournalMode, KillTiming};

    use crate::record::TrialRecord;

    use crate::report::aggregate::Aggregator;
    use crate::report::summary::RunMeta;

    fn cell(journal_mode: JournalMode, synchronous: Synchronous, fault: FaultKind) -> Cell {
        Cell {
            journal_mode,
            synchronous,
            fault,
            sigterm: None,
            checkpoint: journal_mode.is_wal().then_some(CheckpointPolicy::Auto),
            timing: KillTiming::Uniform,
            device: None,
            fullfsync: FullFsync::Off,
            sqlite: crate::scenario::matrix::SqliteName::BUNDLED,
        }
    }

    fn record(trial: u64, cell: &Cell, images: &[&[ViolationKind]], latencies_us: &[u64]) -> TrialRecord {
        let violations: Vec<ViolationKind> = images.iter().flat_map(|i| i.iter().copied()).collect();
        let image = |v: &&[ViolationKind]| crate::record::ImageRecord {
            cut: 1,
            undetermined: 0,
            lost: 0,
            torn: 0,
            violations: v.to_vec(),
            duplicate_of: None,
        };
        TrialRecord {
            images: images.iter().map(image).collect(),
            ..crate::report::testkit::record(trial, cell, &violations, latencies_us)
        }
    }

    /// wal normal/full under power loss (a group), delete/full under kill (alone, no latency).
    fn summary() -> Summary {
        let cells = [
            cell(JournalMode::Wal, Synchronous::Full, FaultKind::PowerLoss),
            cell(JournalMode::Delete, Synchronous::Full, FaultKind::Kill),
            cell(JournalMode::Wal, Synchronous::Normal, FaultKind::PowerLoss),
        ];
        let mut agg = Aggregator::new(cells.iter().map(|c| (*c, crate::fault::builtin(c))).collect());
        let lost: &[ViolationKind] = &[ViolationKind::LostAck];
        for t in 0..10 {
            agg.add(&record(t, &cells[0], &[&[], &[], &[]], &[200, 300, 4_000]));
            // 3 of 30 states lose a commit; 1 of them also breaks the prefix.
            let third: &[ViolationKind] = if t == 0 { &[ViolationKind::LostAck, ViolationKind::Prefix] } else { lost };
            let states: [&[ViolationKind]; 3] = if t < 3 { [&[], &[], third] } else { [&[], &[], &[]] };
            agg.add(&record(t, &cells[2], &states, &[20, 30]));
        }
        let meta = RunMeta { scenario: "unit".into(), seed: Some(1), ..RunMeta::default() };
        agg.summary(&meta, 1.0, false)
    }

    #[test]
    fn violation_rows_show_every_kind_with_its_interval() {
        let s = summary();
        let rows = violation_rows(&s);
        assert_eq!(rows.len(), 3);
        let Row::Bars { label, bars } = &rows[2] else { panic!("{rows:?}") };
        // The built-in WAL+NORMAL power-loss expectation forbids a prefix hole.
        // Rates per trace (3 of 10 traces lose a commit), the 30 distinct images beside them.
        assert_eq!(label, "wal/normal/power_loss/auto-checkpoint  n=10 traces, 30 img  [regression]");
        assert_eq!(bars.len(), ViolationKind::ALL.len());
        let lost = &bars[ViolationKind::ALL.iter().position(|&k| k == ViolationKind::LostAck).unwrap()];
        assert!((lost.value - 0.3).abs() < 1e-12);
        assert_eq!(lost.interval, Some(stats::wilson_interval(3, 10)));
        // A cell without a checked crash state has no bar, and says so.
        assert_eq!(rows[1], Row::Bars { label: "delete/full/kill  no crash state  [no-data]".into(), bars: vec![] });
    }

    #[test]
    fn synchronous_rows_pair_cells_that_differ_only_in_synchronous() {
        let rows = synchronous_rows(&summary());
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0], Row::Heading("wal/*/power_loss/auto-checkpoint".into()));
        // NORMAL before FULL, whatever the summary's order; delete/full has no sibling.
        let Row::Bars { label, bars } = &rows[1] else { panic!("{rows:?}") };
        assert_eq!(label, "synchronous=normal  n=10 traces, 30 img  [regression]");
        // "Any violation" counts traces, not kinds: the trace with two kinds counts once.
        assert_eq!((bars[0].series, bars[0].value), (0, 0.3));
        assert_eq!((bars[1].series, bars[1].value), (1, 0.3));
        let Row::Bars { label, bars } = &rows[2] else { panic!("{rows:?}") };
        assert_eq!(label, "synchronous=full  n=10 traces, 30 img");
        assert_eq!(bars[0].value, 0.0);
        assert_eq!(bars[0].interval, Some(stats::wilson_interval(0, 10)));
    }

    #[test]
    fn latency_rows_skip_cells_without_commits() {
        let s = summary();
        let rows = latency_rows(&s);
        assert_eq!(rows.len(), 2);
        let Row::Bars { label, bars } = &rows[0] else { panic!("{rows:?}") };
        assert_eq!(label, "wal/full/power_loss/auto-checkpoint  commits=30");
        assert_eq!(bars[0].value, s.cells[0].commit_latency_us.p50.unwrap() as f64);
        assert_eq!(bars[1].value, s.cells[0].commit_latency_us.p99.unwrap() as f64);
    }

    #[test]
    fn svgs_carry_their_text_without_a_font_library() {
        let s = summary();
        let svgs = render_all(&s).unwrap();
        assert_eq!(svgs.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [VIOLATIONS_SVG, SYNCHRONOUS_SVG, LATENCY_SVG]);
        for (name, svg) in &svgs {
            assert!(svg.starts_with("<svg"), "{name}");
            assert!(svg.trim_end().ends_with("</svg>"), "{name}");
        }
        // plotters-svg writes a label as its own line inside a <text> element.
        let has_text = |svg: &str, text: &str| svg.contains(&format!(">\n{text}"));
        let violations = &svgs[0].1;
        assert!(has_text(violations, "wal/normal/power_loss/auto-checkpoint  n=10 traces, 30 img"), "{violations}");
        assert!(has_text(violations, "lost_ack\n"), "legend: {violations}");
        // One whisker (its dot is a circle) per kind of each cell with crash states.
        assert_eq!(violations.matches("<circle").count(), 2 * ViolationKind::ALL.len());
        let synchronous = &svgs[1].1;
        assert!(has_text(synchronous, "wal/*/power_loss/auto-checkpoint\n"), "{synchronous}");
        assert_eq!(synchronous.matches("<circle").count(), 2 * 2);
        let latency = &svgs[2].1;
        assert!(has_text(latency, "p99 4 ms"), "{latency}");
        assert!(has_text(latency, "100 µs"), "axis: {latency}");
    }

    #[test]
    fn an_empty_chart_says_why() {
        let mut s = summary();
        s.cells.truncate(2);
        let (_, svg) = &render_all(&s).unwrap()[1];
        assert!(svg.contains("No two cells differ only in synchronous"), "{svg}");
    }

    #[test]
    fn axes_fit_the_data() {
        let bar = |value: f64, hi: f64| Row::Bars {
            label: "x".into(),
            bars: vec![Bar { series: 0, value, interval: Some((0.0, hi)) }],
        };
        assert_eq!(rate_axis_max(&[bar(0.0, 0.079)]), 0.1);
        assert_eq!(rate_axis_max(&[bar(1.0, 1.0)]), 1.0);
        assert_eq!(rate_axis_max(&[bar(0.0, 0.004)]), 0.01);
        let lat = |value: f64| Row::Bars { label: "x".into(), bars: vec![Bar { series: 0, value, interval: None }] };
        assert_eq!(latency_axis(&[lat(15.0), lat(2_300.0)]), (10.0, 10_000.0));
        assert_eq!(latency_axis(&[lat(1_000.0)]), (1_000.0, 10_000.0));
        assert_eq!(group_label("delete/extra/power_loss+no_barrier"), "delete/*/power_loss+no_barrier");
        assert_eq!(micros_label(1000.0), "1 ms");
        assert_eq!(micros_label(4001.0), "4 ms");
        assert_eq!(micros_label(12_345.0), "12.3 ms");
        assert_eq!(micros_label(15.0), "15 µs");
        assert_eq!(micros_label(250_000_000.0), "250 s");
        assert_eq!(percent_label(0.025, 0.05), "2.5%");
    }

    #[test]
    fn huge_matrices_are_cut_to_rows_max() {
        let rows: Vec<Row> = (0..ROWS_MAX + 10).map(|i| Row::Heading(i.to_string())).collect();
        let kept = bounded_rows(&rows);
        assert_eq!(kept.len(), ROWS_MAX);
        assert_eq!(kept[ROWS_MAX - 1], Row::Bars { label: "… 11 more rows not drawn".into(), bars: vec![] });
    }
}

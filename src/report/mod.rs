//! Reports: the [`Aggregator`](aggregate::Aggregator) that folds trial records into per-cell counts, the [`Summary`](summary::Summary)
//! it produces (`summary.json`), and its renderings: `summary.md` for a human, `junit.xml` for
//! CI (one test case per cell), the SVG charts ([`crate::report::charts`]) and the console
//! matrix printed at the end of a campaign. `crashfuzz report` ([`crate::report::merge`]) rebuilds
//! the same files from one or several run directories.
//!
//! **Architecture invariant: a summary is a function of the trial records alone.** The
//! aggregator holds nothing that a [`TrialRecord`](crate::record::TrialRecord) does not carry, and every piece of its state
//! is order-independent (counters, min/max, HdrHistograms, examples chosen by trial index), so
//! `Aggregator::new(cells)` plus `add` of every line of one or several `trials.jsonl` rebuilds the
//! same summary the live campaign wrote, whatever order the records arrive in; two aggregators
//! of disjoint records [`merge`](aggregate::Aggregator::merge) into the one that saw both.
//!
//! Nothing here judges a cell by itself: the verdict is [`verdict`](crate::scenario::expect::verdict) of the counts. No
//! percentile or XML is computed by hand (hdrhistogram, quick-junit). Report files are written
//! to a temporary name, fsynced and renamed, so a reader never sees half a report.
//!
//! | module | owns |
//! |---|---|
//! | [`summary`] | `summary.json`: the run and one entry per cell, and the words for a cell's verdict |
//! | [`aggregate`] | folding trial records into per-cell counts |
//! | [`markdown`], [`junit`], [`console`] | `summary.md`, `junit.xml`, the matrix the terminal shows |
//! | [`charts`] | the SVG charts of a summary |
//! | [`files`] | writing every report file whole |
//! | [`merge`] | `crashfuzz report`: run directories read back and merged |
//! | [`github`] | inside GitHub Actions: the job summary and one `::error` per failing cell |
//! | [`pages`] | the committed pages: durability matrix, hazards, write latency |

pub mod aggregate;
pub mod charts;
pub mod console;
pub mod files;
pub mod github;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod pages;
pub mod summary;
#[cfg(test)]
pub(crate) mod testkit;
mod text;

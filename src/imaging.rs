//! From a power-loss trial's trace to checked crash images: pick the cuts, choose the fate of
//! every undetermined operation, build each image (`fault::powerloss`, pure), write it to disk,
//! run the oracle with the acknowledgements that precede the cut, and, for a failure worth
//! keeping, shrink the lost writes to a minimal set and say it in words.
//!
//! Images are checked one at a time in one directory the trial owns; an image whose bytes and
//! acknowledgements equal an earlier one's of the same trial is not checked again (the oracle
//! is deterministic for a given seed), and is recorded as a duplicate of it.

use crate::check::{self, CheckConfig, CheckReport, Expected, ViolationKind, WriterExpectation};
use crate::fault::powerloss::{self, Analysis, Choice, Device, Files};
use crate::fault::trace::Record;
use crate::scenario::PowerLossConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One crash image of a power-loss trial, as `trials.jsonl` records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Records of the trace before the cut.
    pub cut: u64,
    /// Operations after the last barrier before the cut, and how many of them were lost
    /// (dropped, or a name change not persisted) or torn in this image.
    pub undetermined: u32,
    pub lost: u32,
    pub torn: u32,
    /// The kinds of the failed checks.
    pub violations: Vec<ViolationKind>,
    /// The index of an earlier image of this trial with the same bytes and acknowledgements,
    /// whose outcome this one shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u32>,
}

/// The first failing image of a trial, with what is needed to keep and replay it.
pub struct FailingImage {
    pub index: usize,
    pub cut: usize,
    pub analysis: Analysis,
    pub choices: Vec<Choice>,
    pub files: Files,
    pub expected: Expected,
    pub report: CheckReport,
}

pub struct Checked {
    pub images: Vec<ImageRecord>,
    /// The checks of the first failing image, or of the last image when none failed.
    pub report: Option<CheckReport>,
    pub failing: Option<FailingImage>,
}

/// What every image of one trial shares.
pub struct Imaging<'a> {
    pub base: &'a Files,
    pub records: &'a [Record],
    pub device: Device,
    /// What is in the database from before the trial (the seed writer, earlier trials).
    pub history: &'a BTreeMap<u64, WriterExpectation>,
    pub check: &'a CheckConfig,
    /// The directory images are written to and checked in (emptied before each image).
    pub dir: &'a Path,
    /// The database's file name within `dir`.
    pub db_name: &'a str,
}

impl Imaging<'_> {
    /// The acknowledgements that precede `cut`, on top of the history.
    pub fn expected_at(&self, cut: usize) -> Expected {
        let mut writers = self.history.clone();
        for (w, (acked, begun)) in powerloss::acks_at(self.records, cut) {
            writers.insert(w, WriterExpectation { acked, begun });
        }
        Expected { writers }
    }

    pub fn build(&self, cut: usize, choices: &[Choice]) -> Files {
        powerloss::build(self.base, self.records, cut, &self.device, choices)
    }

    pub fn analyze(&self, cut: usize) -> Analysis {
        let names: Vec<String> = self.base.keys().cloned().collect();
        powerloss::analyze(&names, self.records, cut, &self.device)
    }

    /// Writes `files` into the image directory (and nothing else) and checks them.
    pub fn check_files(&self, files: &Files, expected: &Expected) -> anyhow::Result<CheckReport> {
        write_files(self.dir, files)?;
        check::check_image(&self.dir.join(self.db_name), self.check, Some(expected))
    }
}

/// Replaces the contents of `dir` with `files`.
pub fn write_files(dir: &Path, files: &Files) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

/// A hash of an image's files and the acknowledgements it is judged against.
pub fn image_key(files: &Files, expected: &Expected) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (name, bytes) in files {
        h.update(name.as_bytes());
        h.update(&[0]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.update(&serde_json::to_vec(expected).expect("expected serializes"));
    h.digest()
}

/// Hash of the files alone (a replay proves it rebuilt the same bytes).
pub fn files_hash(files: &Files) -> u64 {
    image_key(files, &Expected::default())
}

/// Builds and checks `cfg.images_per_trace` images of the trace, seeded by `seed`.
pub fn check_images(im: &Imaging<'_>, cfg: &PowerLossConfig, seed: u64) -> anyhow::Result<Checked> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cuts = powerloss::cuts(im.records, cfg.images_per_trace as usize, cfg.cut_points, &mut rng);
    let mut seen: HashMap<u64, (u32, Vec<ViolationKind>)> = HashMap::new();
    let mut out = Checked { images: Vec::new(), report: None, failing: None };
    for (index, &cut) in cuts.iter().enumerate() {
        let analysis = im.analyze(cut);
        let choices = powerloss::random_choices(&analysis, cfg.torn_percent, &mut rng);
        let files = im.build(cut, &choices);
        let expected = im.expected_at(cut);
        let key = image_key(&files, &expected);
        let (lost, torn) = choices.iter().fold((0, 0), |(l, t), c| match c {
            Choice::Keep => (l, t),
            Choice::Drop => (l + 1, t),
            Choice::Torn(_) => (l, t + 1),
        });
        let mut record = ImageRecord {
            cut: cut as u64,
            undetermined: analysis.undetermined.len() as u32,
            lost,
            torn,
            violations: Vec::new(),
            duplicate_of: None,
        };
        if let Some((first, violations)) = seen.get(&key) {
            record.duplicate_of = Some(*first);
            record.violations = violations.clone();
            out.images.push(record);
            continue;
        }
        let report = im.check_files(&files, &expected)?;
        record.violations = report.violations();
        seen.insert(key, (index as u32, record.violations.clone()));
        let failed = !record.violations.is_empty();
        out.images.push(record);
        if failed && out.failing.is_none() {
            out.report = Some(report.clone());
            out.failing = Some(FailingImage { index, cut, analysis, choices, files, expected, report });
        } else if out.failing.is_none() {
            out.report = Some(report);
        }
    }
    Ok(out)
}

/// Shrinks a failing image's lost and torn writes to a minimal set that still fails with at
/// least one of the same violation kinds, within `tests_max` checks. Returns the shrunk
/// choices, their explanation in words, and the number of checks run.
pub fn explain(
    im: &Imaging<'_>,
    failing: &FailingImage,
    tests_max: usize,
    page_size: u64,
) -> anyhow::Result<(Vec<Choice>, Vec<String>, usize)> {
    let wanted = failing.report.violations();
    let mut error: Option<anyhow::Error> = None;
    let mut fails = |choices: &[Choice]| -> bool {
        if error.is_some() {
            return false;
        }
        let files = im.build(failing.cut, choices);
        match im.check_files(&files, &failing.expected) {
            Ok(report) => report.violations().iter().any(|k| wanted.contains(k)),
            Err(e) => {
                error = Some(e);
                false
            }
        }
    };
    let (shrunk, tests) = powerloss::shrink(&failing.choices, tests_max, &mut fails);
    if let Some(e) = error {
        return Err(e);
    }
    let mut lines = powerloss::explain(&failing.analysis, &shrunk, page_size);
    if lines.is_empty() {
        lines.push(
            "no lost write is needed: the image fails with every undetermined write persisted \
             (a process crash at this cut fails too)"
                .into(),
        );
    }
    Ok((shrunk, lines, tests))
}

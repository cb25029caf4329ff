//! From a power-loss trial's trace to checked crash images: pick the cuts, choose the fate of
//! every undetermined operation, build each image (`fault::powerloss`, pure), write it to disk,
//! run the oracle with the acknowledgements that precede the cut, and, for a failure worth
//! keeping, shrink the lost writes to a minimal set and say it in words.
//!
//! Images are checked one at a time in one directory the trial owns; an image whose bytes and
//! acknowledgements equal an earlier one's of the same trial is not checked again (the oracle
//! is deterministic for a given seed), and is recorded as a duplicate of it.

use crate::oracle::{self, CheckConfig, CheckReport};
use crate::record::ImageRecord;

use crate::record::expected::Expected;

use crate::record::checks::ViolationKind;

use crate::base::dbfiles::{self, Files};
use crate::fault::power_loss::builder::PowerLossConfig;
use crate::fault::power_loss::builder::{self, Analysis, Choice, Device, Fates};
use crate::fault::trace::Record;
use crate::record::expected::WriterExpectation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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
    /// A check of some image could not run (see `CheckOutcome::CouldNotRun`): the trial is
    /// not judged.
    pub could_not_run: Option<String>,
}

/// What every image of one trial shares.
pub struct Imaging<'a> {
    pub base: &'a Files,
    pub records: &'a [Record],
    pub device: Device,
    /// What is in the database from before the trial (the seed writer, earlier trials).
    pub history: &'a BTreeMap<u64, WriterExpectation>,
    /// An application's writer's keys ([`Expected::keys`], `seeded_keys`, `begins`; no
    /// writers): every image's expectation carries them. Empty for crashfuzz's own writer.
    pub keys: &'a Expected,
    pub check: &'a CheckConfig,
    /// The directory images are written to and checked in (emptied before each image).
    pub dir: &'a Path,
    /// The database's file name within `dir`.
    pub db_name: &'a str,
    /// The writers' SQLite build, when it is not the oracle's: it checks every image beside the
    /// oracle, and the verdict is what both agree on (`oracle::crosscheck`).
    pub writers_build: Option<&'a crate::sqlite::builds::ResolvedBuild>,
    /// The cross-version disagreements of the images checked so far.
    pub disagreements: std::cell::RefCell<Vec<String>>,
}

impl Imaging<'_> {
    /// The acknowledgements that precede `cut`, on top of the history.
    pub fn expected_at(&self, cut: usize) -> Expected {
        let mut writers = self.history.clone();
        for (w, (acked, begun)) in builder::acks_at(self.records, cut) {
            writers.insert(w, WriterExpectation::from_acked(&acked, begun));
        }
        Expected { writers, ..self.keys.clone() }
    }

    pub fn build(&self, cut: usize, choices: &[Choice]) -> Files {
        builder::build(self.base, self.records, cut, &self.device, choices)
    }

    pub fn analyze(&self, cut: usize) -> Analysis {
        let names: Vec<String> = self.base.keys().cloned().collect();
        builder::analyze(&names, self.records, cut, &self.device)
    }

    /// Writes `files` into the image directory (and nothing else) and checks them; with the
    /// writers' build, also into `pristine/` beside it, which that build checks.
    pub fn check_files(&self, files: &Files, expected: &Expected) -> anyhow::Result<CheckReport> {
        dbfiles::write_files(self.dir, files)?;
        let mut report = oracle::check_image(&self.dir.join(self.db_name), self.check, Some(expected))?;
        if let Some(build) = self.writers_build {
            let pristine = self.dir.with_extension("pristine");
            dbfiles::write_files(&pristine, files)?;
            let said = oracle::crosscheck::agree_with_writers(&pristine.join(self.db_name), build, &mut report)?;
            self.disagreements.borrow_mut().extend(said);
        }
        Ok(report)
    }
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

/// The images of one trace, in the order they are built: where each cut falls and how each
/// image's undetermined operations fare (`fates`).
enum Plan {
    /// One cut per image, its fate drawn when the image is built.
    Random { cuts: Vec<usize> },
    /// The walk's cuts (distinct, in trace order), their analyses, and its steps.
    Walk { cuts: Vec<usize>, analyses: Vec<Analysis>, steps: Vec<builder::Step> },
}

impl Plan {
    fn new(im: &Imaging<'_>, cfg: &PowerLossConfig, rng: &mut ChaCha8Rng) -> Plan {
        let images = cfg.images_per_trace as usize;
        match cfg.fates {
            Fates::Random => Plan::Random { cuts: builder::cuts(im.records, images, cfg.cut_points, rng) },
            Fates::Walk => {
                let mut cuts = builder::cuts(im.records, cfg.walk_cuts as usize, cfg.cut_points, rng);
                cuts.sort_unstable();
                cuts.dedup();
                let analyses: Vec<Analysis> = cuts.iter().map(|&cut| im.analyze(cut)).collect();
                let windows: Vec<usize> = analyses.iter().map(|a| a.undetermined.len()).collect();
                let steps = builder::walk(&windows, images, rng);
                Plan::Walk { cuts, analyses, steps }
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Plan::Random { cuts } => cuts.len(),
            Plan::Walk { steps, .. } => steps.len(),
        }
    }

    /// Image `index`'s cut, analysis and choices (a random fate draws from `rng`).
    fn image(&self, im: &Imaging<'_>, index: usize, torn_percent: u32, rng: &mut ChaCha8Rng) -> (usize, Analysis, Vec<Choice>) {
        match self {
            Plan::Random { cuts } => {
                let analysis = im.analyze(cuts[index]);
                let choices = builder::random_choices(&analysis, torn_percent, rng);
                (cuts[index], analysis, choices)
            }
            Plan::Walk { cuts, analyses, steps } => {
                let step = steps[index];
                let analysis = analyses[step.cut].clone();
                let choices = step.choices(analysis.undetermined.len());
                (cuts[step.cut], analysis, choices)
            }
        }
    }
}

/// Builds and checks the images of the trace (`cfg.images_per_trace` at most), seeded by `seed`.
pub fn check_images(im: &Imaging<'_>, cfg: &PowerLossConfig, seed: u64) -> anyhow::Result<Checked> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plan = Plan::new(im, cfg, &mut rng);
    let mut seen: HashMap<u64, (u32, Vec<ViolationKind>)> = HashMap::new();
    let mut out = Checked { images: Vec::new(), report: None, failing: None, could_not_run: None };
    for index in 0..plan.len() {
        let (cut, analysis, choices) = plan.image(im, index, cfg.torn_percent, &mut rng);
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
        if let Some(reason) = report.could_not_run() {
            out.could_not_run = Some(format!("image {index}: {reason}"));
            return Ok(out);
        }
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
    let (shrunk, tests) = builder::shrink(&failing.choices, tests_max, &mut fails);
    if let Some(e) = error {
        return Err(e);
    }
    let mut lines = builder::explain(&failing.analysis, &shrunk, page_size);
    if lines.is_empty() {
        lines.push(
            "no lost write is needed: the image fails with every undetermined write persisted \
             (a process crash at this cut fails too)"
                .into(),
        );
    }
    Ok((shrunk, lines, tests))
}

/// The power-loss canaries of the built-in expectations (`expect`), deterministically: a real writer's I/O through the
/// tracing VFS (same seed, same operations), images built at chosen cuts with chosen fates,
/// and the oracle. If one of these stops failing, the model or the oracle has lost its teeth.
#[cfg(test)]
mod canary_tests {
    use super::*;
    use crate::fault::power_loss::builder::OpKind;
    use crate::fault::trace::FileKind;
    use crate::fault::vfs::{self, tests as vfs_tests};
    use crate::oracle::IntegrityLevel;
    use crate::oracle::ReopenConfig;
    use crate::oracle::ledger::SESSION_STORE;
    use crate::scenario::matrix::{FullFsync, JournalMode, Synchronous};
    use crate::writer::pragmas::{self, Pragmas};
    use crate::writer::session_store::{TxnWriter, WorkloadConfig};
    use rusqlite::{Connection, OpenFlags};

    fn workload_cfg() -> WorkloadConfig {
        WorkloadConfig {
            seed_messages: 30,
            seed_sessions: 3,
            message_bytes_max: 4000,
            huge_message_per_mille: 0,
            compress_percent: 0,
            ..Default::default()
        }
    }

    fn pragmas(journal_mode: JournalMode, synchronous: Synchronous) -> Pragmas {
        Pragmas {
            journal_mode,
            synchronous,
            busy_timeout_ms: 1000,
            cache_size_kib: 256,
            wal_autocheckpoint_pages: 1000,
            fullfsync: FullFsync::Off,
        }
    }

    /// A seeded database (durable: written without the VFS and closed), then `txns`
    /// acknowledged transactions of writer `writer` through the VFS, the connection left open
    /// as a killed process leaves it. Returns the base files, the trace of this directory (with
    /// this writer's Begin/Ack records), the directory and the open connection.
    struct Traced {
        base: Files,
        records: Vec<Record>,
        history: BTreeMap<u64, WriterExpectation>,
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        _conn: Connection,
        pragmas: Pragmas,
    }

    fn traced(journal_mode: JournalMode, synchronous: Synchronous, writer: u64, txns: u64) -> Traced {
        vfs_tests::shared_trace();
        let (dir, path) = vfs_tests::fresh_dir();
        let db = path.join("db.sqlite");
        let cfg = workload_cfg();
        let p = pragmas(journal_mode, synchronous);
        let seed_txns = {
            let mut conn = Connection::open(&db).unwrap();
            let n = crate::testkit::seed_store(&mut conn, &cfg, &p, 1);
            conn.close().unwrap();
            n
        };
        let base: Files = [("db.sqlite".to_string(), std::fs::read(&db).unwrap())].into_iter().collect();
        let mut conn = Connection::open_with_flags_and_vfs(&db, OpenFlags::default(), vfs::VFS_NAME).unwrap();
        pragmas::apply(&conn, &p).unwrap();
        let mut w = TxnWriter::new(writer, 2, &cfg);
        for seq in 1..=txns {
            vfs::append(&Record::Begin { writer, seq }).unwrap();
            w.run_txn(&mut conn, &mut |_| {}).unwrap();
            vfs::append(&Record::Ack { writer, seq }).unwrap();
        }
        // This directory's file records plus this writer's acknowledgements, in trace order.
        let all = crate::fault::trace::read(vfs_tests::shared_trace()).unwrap().records;
        let files: Vec<Record> = vfs_tests::filter_dir(all.clone(), &path);
        let mut records = Vec::new();
        let mut next = files.iter().peekable();
        for r in all {
            match &r {
                Record::Begin { writer: w, .. } | Record::Ack { writer: w, .. } if *w == writer => records.push(r),
                _ => {
                    if next.peek() == Some(&&r) {
                        records.push(next.next().unwrap().clone());
                    }
                }
            }
        }
        let history = BTreeMap::from([(0, WriterExpectation::upto(seed_txns, seed_txns))]);
        Traced { base, records, history, _dir: dir, path, _conn: conn, pragmas: p }
    }

    /// `f` given the images of `t`, checked in `t`'s directory with the full oracle.
    fn with_imaging<R>(t: &Traced, f: impl FnOnce(&Imaging<'_>) -> R) -> R {
        let check_cfg = CheckConfig {
            integrity: IntegrityLevel::Full,
            fts_samples: 4,
            seed: 1,
            reopen: ReopenConfig { pragmas: Some(t.pragmas.clone()), writer_id: 99, workload: workload_cfg() },
            schema: &SESSION_STORE,
        };
        let image_dir = t.path.join("image");
        f(&Imaging {
            base: &t.base,
            records: &t.records,
            device: Device::default(),
            history: &t.history,
            keys: &Expected::default(),
            check: &check_cfg,
            dir: &image_dir,
            db_name: "db.sqlite",
            writers_build: None,
            disagreements: Default::default(),
        })
    }

    fn judge(
        t: &Traced,
        cut: usize,
        choose: &dyn Fn(&crate::fault::power_loss::builder::Undetermined) -> Choice,
    ) -> Vec<ViolationKind> {
        with_imaging(t, |im| {
            let analysis = im.analyze(cut);
            let choices: Vec<Choice> = analysis.undetermined.iter().map(choose).collect();
            let files = im.build(cut, &choices);
            im.check_files(&files, &im.expected_at(cut)).unwrap().violations()
        })
    }

    /// The images `check_images` plans and checks for `t` with a walk over systematic cuts.
    fn walked(t: &Traced, images: u32) -> Checked {
        let cfg = PowerLossConfig {
            images_per_trace: images,
            cut_points: builder::CutPoints::Systematic,
            fates: Fates::Walk,
            walk_cuts: 3,
            ..Default::default()
        };
        with_imaging(t, |im| check_images(im, &cfg, 11).unwrap())
    }

    #[test]
    fn a_walk_over_a_real_trace_loses_the_floor_and_single_operations_and_judges_them() {
        let t = traced(JournalMode::Wal, Synchronous::Normal, 506, 4);
        let checked = walked(&t, 30);
        assert!(checked.could_not_run.is_none());
        assert!(!checked.images.is_empty() && checked.images.len() <= 30);
        let singles = checked.images.iter().filter(|i| i.lost == 1 && i.undetermined > 1).count();
        let floors = checked.images.iter().filter(|i| i.lost == i.undetermined).count();
        assert!(singles > 0 && floors > 0, "{singles} single losses, {floors} floors");
        assert!(checked.images.iter().all(|i| i.torn == 0 && (i.lost == 1 || i.lost == i.undetermined)));
        // The floor at the trace's end loses the unsynced commits of WAL+NORMAL.
        let failing = checked.failing.expect("WAL+NORMAL loses acknowledged commits under the walk");
        assert_eq!(failing.report.violations(), vec![ViolationKind::LostAck]);

        let t = traced(JournalMode::Wal, Synchronous::Full, 507, 4);
        let checked = walked(&t, 30);
        assert!(checked.could_not_run.is_none());
        assert!(checked.failing.is_none(), "WAL+FULL keeps every acknowledged commit in every walked image");
        assert!(checked.images.iter().any(|i| i.lost == 1 && i.undetermined > 1));
    }

    fn drop_all(_: &crate::fault::power_loss::builder::Undetermined) -> Choice {
        Choice::Drop
    }

    #[test]
    fn wal_normal_loses_acknowledged_commits_and_nothing_else_while_full_keeps_them() {
        let t = traced(JournalMode::Wal, Synchronous::Normal, 501, 5);
        assert_eq!(judge(&t, t.records.len(), &drop_all), vec![ViolationKind::LostAck]);
        let t = traced(JournalMode::Wal, Synchronous::Full, 502, 5);
        assert_eq!(judge(&t, t.records.len(), &drop_all), vec![]);
    }

    #[test]
    fn delete_full_loses_the_last_commit_through_the_unsynced_unlink_and_extra_does_not() {
        let t = traced(JournalMode::Delete, Synchronous::Full, 503, 4);
        let cut = t.records.len();
        let analysis = Imaging {
            base: &t.base,
            records: &t.records,
            device: Device::default(),
            history: &t.history,
            keys: &Expected::default(),
            check: &CheckConfig {
                integrity: IntegrityLevel::Full,
                fts_samples: 1,
                seed: 1,
                reopen: ReopenConfig { pragmas: None, writer_id: 99, workload: workload_cfg() },
                schema: &SESSION_STORE,
            },
            dir: &t.path,
            db_name: "db.sqlite",
            writers_build: None,
            disagreements: Default::default(),
        }
        .analyze(cut);
        assert_eq!(
            analysis.undetermined.iter().map(|u| &u.what).collect::<Vec<_>>(),
            vec![&OpKind::Delete],
            "under FULL only the last journal's unlink is in flight after the commit"
        );
        assert_eq!(judge(&t, cut, &drop_all), vec![ViolationKind::LostAck]);
        let t = traced(JournalMode::Delete, Synchronous::Extra, 504, 4);
        assert_eq!(judge(&t, t.records.len(), &drop_all), vec![]);
    }

    #[test]
    fn synchronous_off_damages_a_rollback_journal_database() {
        let t = traced(JournalMode::Delete, Synchronous::Off, 505, 4);
        // Cuts inside the last transaction's database writes, the journal's writes lost: the
        // database holds part of a transaction and nothing can roll it back.
        let begin = t.records.iter().rposition(|r| matches!(r, Record::Begin { .. })).unwrap();
        let db_writes: Vec<usize> = (begin..t.records.len())
            .filter(|&i| match &t.records[i] {
                Record::Write { file, .. } => t.records[..i]
                    .iter()
                    .any(|r| matches!(r, Record::Open { file: f, kind: FileKind::MainDb, .. } if f == file)),
                _ => false,
            })
            .collect();
        assert!(db_writes.len() >= 2, "the last commit writes several database pages");
        let keep_db = |u: &crate::fault::power_loss::builder::Undetermined| {
            if u.name == "db.sqlite" { Choice::Keep } else { Choice::Drop }
        };
        let damaged: Vec<Vec<ViolationKind>> =
            db_writes.iter().skip(1).map(|&i| judge(&t, i + 1, &keep_db)).filter(|v| !v.is_empty()).collect();
        const DAMAGE: [ViolationKind; 4] =
            [ViolationKind::Open, ViolationKind::Integrity, ViolationKind::Fts, ViolationKind::Atomicity];
        assert!(
            damaged.iter().any(|v| v.iter().any(|k| DAMAGE.contains(k))),
            "no cut in the last commit damaged the database: {damaged:?}"
        );
    }
}

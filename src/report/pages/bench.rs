//! The write-latency benchmarks' identity and their report (`crashfuzz bench-report`, hidden):
//! the benchmark ids the criterion benches in `harness/benches/write_latency.rs` register, the
//! run record the benches leave beside criterion's output, and the renderer that turns both
//! into `results/write-latency.md` and an SVG chart.
//!
//! The ids live here, not in the bench, so that the bench and the report cannot drift apart:
//! the bench registers exactly [`commit_ids`], [`checkpoint_ids`], [`floor_ids`] and
//! [`vfs_ids`], and the renderer expects exactly those. A benchmark result that is missing or
//! malformed is an error naming its file, never a blank cell: a report with a hole would read as
//! a measurement.
//!
//! The renderer reads criterion 0.8's files and nothing else: for a benchmark whose
//! (group, function, value) is (`commit/wal/full`, `message`, `1`), criterion writes
//! `CRITERION_DIR/commit_wal_full/message/1/new/{benchmark,estimates,sample}.json`: each path
//! component is the id part with `/` (and `?"\*<>:|^`) replaced by `_` (criterion's
//! `make_filename_safe`). `benchmark.json` repeats the full id, which is checked, so a change of
//! layout is a clear error rather than a silently wrong table. Times in `estimates.json` are in
//! nanoseconds; its `median` is the median of the per-sample mean latencies, with a bootstrap
//! confidence interval (95% unless criterion was told otherwise; the level is read, not
//! assumed). Rendering never touches the machine: everything about the run comes from
//! [`RUN_FILE`], which the bench writes.

use crate::report::pages::durability::IoTable;
use crate::scenario::matrix::{CheckpointMode, JournalMode, Synchronous};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where the bench puts its databases when set; default `${CARGO_TARGET_DIR:-target}/bench-db`.
pub const BENCH_DIR_ENV: &str = "CRASHFUZZ_BENCH_DIR";
/// The command line a wrapper (scripts/bench.sh) ran, recorded in the run file when set.
pub const COMMAND_ENV: &str = "CRASHFUZZ_BENCH_COMMAND";
/// The run record the bench writes at the top of criterion's output directory.
pub const RUN_FILE: &str = "crashfuzz-bench-run.json";

/// The journal modes of the commit benchmarks: the journalled ones (MEMORY and OFF make no
/// promise worth paying for, so their latency answers no question anyone asks).
pub const COMMIT_JOURNALS: [JournalMode; 4] =
    [JournalMode::Wal, JournalMode::Delete, JournalMode::Truncate, JournalMode::Persist];
/// Rows (plain rows or messages) per committed transaction.
pub const ROWS_PER_TXN: [u32; 2] = [1, 10];
/// The checkpoint modes compared: the one the case ran every 50 writes, and the one its
/// report proposed for shutdown.
pub const CHECKPOINT_MODES: [CheckpointMode; 2] = [CheckpointMode::Passive, CheckpointMode::Truncate];
/// WAL sizes the checkpoints start from, in frames (pages).
pub const CHECKPOINT_FRAMES: [u32; 2] = [100, 1000];
/// The block one fsync-floor iteration (and one disk-probe write) writes, in bytes (one page).
pub const FLOOR_BLOCK_BYTES: usize = 4096;
/// Overwrites and fsyncs per disk probe ([`FsyncProbe`]).
pub const FSYNC_PROBE_WRITES: u64 = 16;
/// Body size of a `message` payload, in bytes.
pub const MESSAGE_BYTES: u32 = 1024;
/// Body size of a `row` payload, in bytes.
pub const ROW_BYTES: usize = 200;
/// `PRAGMA cache_size` of the commit benches, in KiB: SQLite's own default, set explicitly.
pub const COMMIT_CACHE_KIB: u32 = 2000;
/// `PRAGMA wal_autocheckpoint` of the commit benches, in pages: SQLite's default, set
/// explicitly: never a library default that the measurement depends on.
pub const COMMIT_AUTO_CHECKPOINT_PAGES: i64 = 1000;
/// The WAL size at which the commit benches run their own untimed PASSIVE checkpoint, in
/// frames: close to the auto-checkpoint, so the WAL restarts as often as it would under it
/// (each restart costs the next commit a WAL-header write, and an fsync unless synchronous is
/// OFF), with a margin so that the auto-checkpoint itself never runs inside a timed commit.
pub const CHECKPOINT_AT_FRAMES: i64 = 900;

/// What one committed row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    /// A plain ~200-byte row in a table with no index but its rowid and no FTS.
    Row,
    /// One session-store message through both FTS5 triggers, as the workload appends it.
    Message,
}

impl Payload {
    pub const ALL: [Payload; 2] = [Payload::Row, Payload::Message];

    pub fn as_str(self) -> &'static str {
        match self {
            Payload::Row => "row",
            Payload::Message => "message",
        }
    }
}

/// How the fsync floor writes its block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloorKind {
    /// At the end of the file: the file grows, so the fsync also commits its new size.
    Append,
    /// Over the same block: only data and timestamps change.
    Overwrite,
}

impl FloorKind {
    pub const ALL: [FloorKind; 2] = [FloorKind::Append, FloorKind::Overwrite];

    pub fn as_str(self) -> &'static str {
        match self {
            FloorKind::Append => "append",
            FloorKind::Overwrite => "overwrite",
        }
    }
}

/// Whether a connection runs on SQLite's `unix` VFS or on the tracing shim over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VfsKind {
    Plain,
    Traced,
}

impl VfsKind {
    pub const ALL: [VfsKind; 2] = [VfsKind::Plain, VfsKind::Traced];

    pub fn as_str(self) -> &'static str {
        match self {
            VfsKind::Plain => "plain",
            VfsKind::Traced => "traced",
        }
    }
}

/// A criterion benchmark id: `group` (a `BenchmarkGroup`'s name), `function` and an optional
/// `value` (a `BenchmarkId`'s parameter).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BenchId {
    pub group: String,
    pub function: String,
    pub value: Option<String>,
}

impl BenchId {
    fn new(group: impl Into<String>, function: impl Into<String>, value: Option<String>) -> BenchId {
        BenchId { group: group.into(), function: function.into(), value }
    }

    /// The id as criterion prints it and stores it in `benchmark.json` (`full_id`).
    pub fn full_id(&self) -> String {
        match &self.value {
            Some(v) => format!("{}/{}/{v}", self.group, self.function),
            None => format!("{}/{}", self.group, self.function),
        }
    }

    /// The directory criterion keeps this benchmark's files in, relative to its output
    /// directory. Our ids are short and use only `[a-z0-9/]`, so criterion's
    /// `make_filename_safe` reduces to replacing `/` by `_` in each part (it also truncates
    /// parts to 64 bytes, which no id here reaches).
    pub fn dir_name(&self) -> PathBuf {
        let safe = |s: &str| s.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_");
        let mut p = PathBuf::from(safe(&self.group));
        p.push(safe(&self.function));
        if let Some(v) = &self.value {
            p.push(safe(v));
        }
        p
    }
}

/// `commit/<journal>/<sync>/<payload>/<rows>`: one transaction of `rows` rows, `BEGIN
/// IMMEDIATE` to `COMMIT`. One group per journal mode and synchronous level, so criterion's page
/// for a group compares the payloads and transaction sizes of one setting.
pub fn commit_id(journal: JournalMode, sync: Synchronous, payload: Payload, rows: u32) -> BenchId {
    BenchId::new(format!("commit/{}/{}", journal.as_sql(), sync.as_sql()), payload.as_str(), Some(rows.to_string()))
}

/// `checkpoint/<mode>/<frames>`: `PRAGMA wal_checkpoint(MODE)` of a WAL of `frames` frames.
pub fn checkpoint_id(mode: CheckpointMode, frames: u32) -> BenchId {
    BenchId::new("checkpoint", mode.as_sql().to_ascii_lowercase(), Some(frames.to_string()))
}

/// `fsync_floor/<append|overwrite>`: one 4 KiB write and `fsync`.
pub fn floor_id(kind: FloorKind) -> BenchId {
    BenchId::new("fsync_floor", kind.as_str(), None)
}

/// `vfs_overhead/<plain|traced>`: a WAL+FULL one-message commit on either VFS.
pub fn vfs_id(kind: VfsKind) -> BenchId {
    BenchId::new("vfs_overhead", kind.as_str(), None)
}

/// Every commit benchmark, in the order the report's table lists them.
pub fn commit_ids() -> Vec<(JournalMode, Synchronous, Payload, u32)> {
    let mut ids = Vec::new();
    for journal in COMMIT_JOURNALS {
        for sync in Synchronous::ALL {
            for payload in Payload::ALL {
                for rows in ROWS_PER_TXN {
                    ids.push((journal, sync, payload, rows));
                }
            }
        }
    }
    ids
}

pub fn checkpoint_ids() -> Vec<(CheckpointMode, u32)> {
    CHECKPOINT_MODES.iter().flat_map(|&m| CHECKPOINT_FRAMES.iter().map(move |&f| (m, f))).collect()
}

pub fn floor_ids() -> [FloorKind; 2] {
    FloorKind::ALL
}

pub fn vfs_ids() -> [VfsKind; 2] {
    VfsKind::ALL
}

/// The bench's database directory: `$CRASHFUZZ_BENCH_DIR` when set (e.g. `/dev/shm/crashfuzz`
/// for a tmpfs contrast), else `bench-db` in cargo's target directory. A relative path is
/// relative to the working directory, which `cargo bench` sets to the package root.
pub fn bench_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BENCH_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()).unwrap_or_else(|| "target".into());
    PathBuf::from(target).join("bench-db")
}

/// Where the bench tells criterion to write: `$CRITERION_HOME` when set, else `criterion` in
/// cargo's target directory. Criterion's own default is the same except that, with neither
/// variable set, it asks `cargo metadata`; setting it explicitly keeps [`RUN_FILE`] and the
/// results in one known place.
pub fn criterion_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CRITERION_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()).unwrap_or_else(|| "target".into());
    PathBuf::from(target).join("criterion")
}

/// What the bench records about its run, in [`RUN_FILE`]: enough for the report's header to
/// name the command, the versions and the machine without the renderer looking at the machine
/// it happens to run on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchRun {
    /// The wrapper's command line ([`COMMAND_ENV`]), if a wrapper ran the bench.
    pub wrapper_command: Option<String>,
    /// The arguments cargo passed to the bench binary (criterion's flags and filters).
    pub bench_args: Vec<String>,
    /// Sample count, warm-up and measurement time the bench configured before criterion's
    /// command-line flags (which win) were applied.
    pub default_samples: usize,
    pub default_warm_up_ms: u64,
    pub default_measurement_ms: u64,
    pub crashfuzz_version: String,
    pub sqlite_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub started_at_unix_s: u64,
    /// RFC 3339, UTC; `None` while the bench runs (or when it did not finish).
    pub finished_at: Option<String>,
    pub machine: Machine,
    /// The disk gauged before each group, in run order (see [`FsyncProbe`]).
    #[serde(default)]
    pub fsync_probes: Vec<FsyncProbe>,
    /// The VFS overhead measured with plain and traced commits interleaved.
    #[serde(default)]
    pub vfs_paired: Option<PairedVfs>,
    /// What each synchronous level adds to a one-message commit over OFF, per journal mode,
    /// measured with the levels' commits interleaved.
    #[serde(default)]
    pub paired_levels: Vec<PairedLevels>,
}

/// One journal mode's four synchronous levels and the fsync floor, measured in one run: each
/// round times one one-message commit of each level's live session and one 4 KiB append +
/// fsync, in a rotating order, so that a disk that drifts affects every level alike. A level's
/// cost is the median over the rounds of its commit minus OFF's commit of the same round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedLevels {
    pub journal_mode: JournalMode,
    pub rounds: u64,
    /// The median 4 KiB append + fsync of the same rounds, in µs.
    pub floor_median_us: u64,
    /// In [`Synchronous::ALL`] order, OFF first.
    pub levels: Vec<LevelCost>,
}

/// One level of [`PairedLevels`], in µs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelCost {
    pub synchronous: Synchronous,
    pub median_us: u64,
    /// The median of (this level's commit − OFF's) over the rounds, with its distribution-free
    /// 95% interval ([`crate::base::stats::median_with_interval`]); 0 for OFF itself.
    pub delta_median_us: i64,
    pub delta_lo_us: i64,
    pub delta_hi_us: i64,
}

impl PairedLevels {
    /// The cost of `sync`, if it was measured.
    pub fn level(&self, sync: Synchronous) -> Option<&LevelCost> {
        self.levels.iter().find(|l| l.synchronous == sync)
    }
}

/// The median of a few 4 KiB overwrites and fsyncs in the bench directory, taken before a
/// group runs. On a shared or virtual disk the fsync latency can change several-fold within a
/// run; this says how the disk was doing when each group was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FsyncProbe {
    /// The group measured next (`end` for the probe after the last one).
    pub before_group: String,
    pub median_us: u64,
}

/// WAL+FULL one-message commits on the plain and the traced VFS, alternating one by one
/// (ABBA), so that a drifting disk affects both alike; medians in µs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedVfs {
    pub commits_each: u64,
    pub plain_median_us: u64,
    pub traced_median_us: u64,
}

impl BenchRun {
    /// The cargo command that ran the bench, as a reader would type it.
    pub fn cargo_command(&self) -> String {
        let args: Vec<&str> = self.bench_args.iter().map(String::as_str).filter(|a| *a != "--bench").collect();
        if args.is_empty() {
            "cargo bench --bench write_latency".to_string()
        } else {
            format!("cargo bench --bench write_latency -- {}", args.join(" "))
        }
    }
}

/// The machine the bench ran on, and the file system its databases were on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub logical_cores: usize,
    pub kernel: String,
    pub bench_dir: PathBuf,
    /// The file system type of `bench_dir` as `/proc/mounts` names it (`ext4`, `tmpfs`...).
    pub fs_type: String,
    /// True when `statfs` says `bench_dir` is on tmpfs: no fsync reaches a device there.
    pub tmpfs: bool,
}

/// Describes this machine and `bench_dir` (which must exist). Fields that cannot be read say
/// `unknown` rather than failing the bench.
pub fn machine(bench_dir: &Path) -> Machine {
    let cpu_model = sysinfo::System::new()
        .ok()
        .and_then(|mut sys| {
            sys.refresh_cpu_all();
            sys.cpus().first().map(|c| c.brand().trim().to_string())
        })
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let bench_dir = std::fs::canonicalize(bench_dir).unwrap_or_else(|_| bench_dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let tmpfs =
        nix::sys::statfs::statfs(&bench_dir).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
    Machine {
        cpu_model,
        logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: sysinfo::System::kernel_version().unwrap_or_else(|_| "unknown".into()),
        fs_type: mount_fs_type(&mounts, &bench_dir).unwrap_or_else(|| "unknown".into()),
        bench_dir,
        tmpfs,
    }
}

/// The file system type of the mount that holds `path` (absolute, canonical): the entry of
/// `/proc/mounts` with the longest mount point that is a prefix of `path`; the last one wins a
/// tie, as the last mount over a point hides the ones before it.
fn mount_fs_type(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_device), Some(point), Some(fs)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // The kernel escapes space, tab, newline and backslash in mount points as octal.
        let point = point.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
        if path.starts_with(&point) && best.is_none_or(|(len, _)| point.len() >= len) {
            best = Some((point.len(), fs));
        }
    }
    best.map(|(_, fs)| fs.to_string())
}

/// Why a report could not be rendered. Every input error names its file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: cannot read: {source} (run `cargo bench --bench write_latency` first, or scripts/bench.sh)", path.display())]
    Missing { path: PathBuf, source: std::io::Error },
    #[error("{}: malformed: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("{}: cannot write: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("rendering the chart: {0}")]
    Chart(String),
}

impl From<ReportError> for crate::error::Error {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Missing { path, source } => crate::error::Error::BadPath {
                path,
                what: "cannot read benchmark results (run scripts/bench.sh first)".into(),
                source,
            },
            ReportError::Malformed { path, message } => crate::error::Error::BadPath {
                path,
                what: "malformed benchmark results".into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
            },
            ReportError::Write { path, source } => {
                crate::error::Error::io(format!("writing {}", path.display()), source)
            }
            ReportError::Chart(message) => crate::error::Error::Harness(format!("rendering the chart: {message}")),
        }
    }
}

/// The part of criterion's `benchmark.json` we check.
#[derive(Deserialize)]
struct CriterionBenchmark {
    full_id: String,
}

/// The part of criterion's `estimates.json` we read.
#[derive(Deserialize)]
struct CriterionEstimates {
    median: CriterionEstimate,
}

#[derive(Deserialize)]
struct CriterionEstimate {
    point_estimate: f64,
    confidence_interval: CriterionInterval,
}

#[derive(Deserialize)]
struct CriterionInterval {
    confidence_level: f64,
    lower_bound: f64,
    upper_bound: f64,
}

/// The part of criterion's `sample.json` we read: iterations per sample.
#[derive(Deserialize)]
struct CriterionSample {
    iters: Vec<f64>,
}

/// One benchmark's result: criterion's median with its interval, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    pub median_ns: f64,
    pub lower_ns: f64,
    pub upper_ns: f64,
    pub confidence_level: f64,
    pub samples: usize,
    pub iterations: u64,
    /// When criterion wrote `estimates.json` (to tell results of an earlier run).
    pub written_at: SystemTime,
}

/// Everything the report shows, read and checked.
#[derive(Clone, Debug)]
pub struct Results {
    pub run: BenchRun,
    /// In the order of [`commit_ids`].
    pub commit: Vec<((JournalMode, Synchronous, Payload, u32), Measured)>,
    pub checkpoint: Vec<((CheckpointMode, u32), Measured)>,
    pub floor: Vec<(FloorKind, Measured)>,
    pub vfs: Vec<(VfsKind, Measured)>,
}

impl Results {
    fn commit(&self, key: (JournalMode, Synchronous, Payload, u32)) -> &Measured {
        &self.commit.iter().find(|(k, _)| *k == key).expect("every commit id is loaded").1
    }

    fn floor(&self, kind: FloorKind) -> &Measured {
        &self.floor.iter().find(|(k, _)| *k == kind).expect("every floor id is loaded").1
    }

    fn vfs(&self, kind: VfsKind) -> &Measured {
        &self.vfs.iter().find(|(k, _)| *k == kind).expect("every vfs id is loaded").1
    }

    fn all(&self) -> impl Iterator<Item = &Measured> {
        self.commit
            .iter()
            .map(|(_, m)| m)
            .chain(self.checkpoint.iter().map(|(_, m)| m))
            .chain(self.floor.iter().map(|(_, m)| m))
            .chain(self.vfs.iter().map(|(_, m)| m))
    }
}

fn read(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Missing { path: path.to_path_buf(), source })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ReportError> {
    serde_json::from_str(text).map_err(|e| ReportError::Malformed { path: path.to_path_buf(), message: e.to_string() })
}

fn malformed(path: &Path, message: String) -> ReportError {
    ReportError::Malformed { path: path.to_path_buf(), message }
}

/// Reads one benchmark's `new/` files under `criterion_dir`, checking that they are the
/// benchmark we asked for and that the numbers make sense.
fn load_one(criterion_dir: &Path, id: &BenchId) -> Result<Measured, ReportError> {
    let new_dir = criterion_dir.join(id.dir_name()).join("new");
    let path = new_dir.join("benchmark.json");
    let benchmark: CriterionBenchmark = parse(&path, &read(&path)?)?;
    if benchmark.full_id != id.full_id() {
        return Err(malformed(&path, format!("holds benchmark {:?}, expected {:?}", benchmark.full_id, id.full_id())));
    }

    let path = new_dir.join("estimates.json");
    let estimates: CriterionEstimates = parse(&path, &read(&path)?)?;
    let m = estimates.median;
    let ci = m.confidence_interval;
    let sane = [m.point_estimate, ci.lower_bound, ci.upper_bound].iter().all(|v| v.is_finite() && *v > 0.0)
        && ci.lower_bound <= m.point_estimate
        && m.point_estimate <= ci.upper_bound
        && ci.confidence_level > 0.0
        && ci.confidence_level < 1.0;
    if !sane {
        return Err(malformed(
            &path,
            format!(
                "median {} ns with interval [{}, {}] at level {}: expected 0 < lower ≤ median ≤ upper and a level in (0, 1)",
                m.point_estimate, ci.lower_bound, ci.upper_bound, ci.confidence_level
            ),
        ));
    }
    let written_at = std::fs::metadata(&path)
        .and_then(|md| md.modified())
        .map_err(|source| ReportError::Missing { path: path.clone(), source })?;

    let path = new_dir.join("sample.json");
    let sample: CriterionSample = parse(&path, &read(&path)?)?;
    if sample.iters.is_empty() || sample.iters.iter().any(|i| !i.is_finite() || *i < 1.0) {
        return Err(malformed(&path, "`iters` must be a non-empty list of counts ≥ 1".into()));
    }
    Ok(Measured {
        median_ns: m.point_estimate,
        lower_ns: ci.lower_bound,
        upper_ns: ci.upper_bound,
        confidence_level: ci.confidence_level,
        samples: sample.iters.len(),
        iterations: sample.iters.iter().sum::<f64>() as u64,
        written_at,
    })
}

/// Reads [`RUN_FILE`] and every benchmark the bench registers from `criterion_dir`.
pub fn load(criterion_dir: &Path) -> Result<Results, ReportError> {
    let path = criterion_dir.join(RUN_FILE);
    let run: BenchRun = parse(&path, &read(&path)?)?;
    let commit = commit_ids()
        .into_iter()
        .map(|k @ (j, s, p, r)| load_one(criterion_dir, &commit_id(j, s, p, r)).map(|m| (k, m)))
        .collect::<Result<_, _>>()?;
    let checkpoint = checkpoint_ids()
        .into_iter()
        .map(|k @ (mode, frames)| load_one(criterion_dir, &checkpoint_id(mode, frames)).map(|m| (k, m)))
        .collect::<Result<_, _>>()?;
    let floor = floor_ids()
        .into_iter()
        .map(|k| load_one(criterion_dir, &floor_id(k)).map(|m| (k, m)))
        .collect::<Result<_, _>>()?;
    let vfs =
        vfs_ids().into_iter().map(|k| load_one(criterion_dir, &vfs_id(k)).map(|m| (k, m))).collect::<Result<_, _>>()?;
    Ok(Results { run, commit, checkpoint, floor, vfs })
}

/// The disk probe taken before `group`, formatted, or `–` when the run recorded none.
fn probe_of(run: &BenchRun, group: &str) -> String {
    run.fsync_probes
        .iter()
        .find(|p| p.before_group == group)
        .map_or_else(|| "–".to_string(), |p| fmt_ns(p.median_us as f64 * 1e3))
}

/// A duration in the unit that keeps 2–3 significant digits readable.
fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// `median [lower–upper]`, the interval in the median's unit.
fn fmt_measured(m: &Measured) -> String {
    let (scale, unit, digits) = if m.median_ns >= 1e6 {
        (1e6, "ms", 2)
    } else if m.median_ns >= 1e4 {
        (1e3, "µs", 0)
    } else if m.median_ns >= 1e3 {
        (1e3, "µs", 1)
    } else {
        (1.0, "ns", 0)
    };
    format!(
        "{:.*} {unit} [{:.*}–{:.*}]",
        digits,
        m.median_ns / scale,
        digits,
        m.lower_ns / scale,
        digits,
        m.upper_ns / scale
    )
}

fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}

fn percent(level: f64) -> String {
    format!("{:.0}%", level * 100.0)
}

/// The traced VFS's overhead as a relative difference of medians, with a conservative interval
/// from the two intervals (the extremes of their ratio), in percent.
pub fn vfs_overhead_percent(plain: &Measured, traced: &Measured) -> (f64, f64, f64) {
    (
        (traced.median_ns / plain.median_ns - 1.0) * 100.0,
        (traced.lower_ns / plain.upper_ns - 1.0) * 100.0,
        (traced.upper_ns / plain.lower_ns - 1.0) * 100.0,
    )
}

/// The report, as Markdown. Pure: `results` and `io` hold everything it shows.
/// `io` is one steady commit's I/O per journal mode and level (counted, not timed): it says
/// which commits wait for an fsync, so that only those are priced in fsync floors.
pub fn render_markdown(results: &Results, svg_name: Option<&str>, io: Option<&IoTable>) -> String {
    let mut md = String::new();
    run_table(&mut md, results);
    commit_section(&mut md, results, svg_name, io);
    level_cost_section(&mut md, results, io);
    checkpoint_section(&mut md, results);
    floor_section(&mut md, results);
    vfs_section(&mut md, results);
    md
}

/// The title, what the figures are, and the run they come from: command, versions, machine,
/// the disk's probes, and warnings when the disk drifted or results are stale.
fn run_table(w: &mut String, results: &Results) {
    let run = &results.run;
    let mc = &run.machine;
    let level = results.commit.first().map_or(0.95, |(_, m)| m.confidence_level);
    let floor = results.floor(FloorKind::Append);
    let _ = writeln!(w, "# Write latency\n");
    let _ = writeln!(
        w,
        "Criterion benchmarks of SQLite commit latency per journal mode and `synchronous` level, \
         generated by `crashfuzz bench-report` from `harness/benches/write_latency.rs`. \
         Each figure is criterion's median of the per-sample mean latency with its {} bootstrap \
         interval in brackets; a ratio `N×` compares a median with the fsync floor (one 4 KiB append \
         and `fsync` on the same file system, {}).\n",
        percent(level),
        fmt_ns(floor.median_ns)
    );
    let _ = writeln!(w, "| | |\n|---|---|");
    if let Some(wrapper) = &run.wrapper_command {
        let _ = writeln!(w, "| command | `{wrapper}` |");
    }
    let _ = writeln!(w, "| bench command | `{}` |", run.cargo_command());
    let _ = writeln!(w, "| crashfuzz | {} |", run.crashfuzz_version);
    let _ = writeln!(w, "| SQLite | {} (bundled) |", run.sqlite_version);
    let _ = writeln!(
        w,
        "| date | {}{} |",
        run.started_at,
        run.finished_at
            .as_deref()
            .map_or_else(|| " (the run did not record its end)".to_string(), |f| format!(" to {f}"))
    );
    let _ = writeln!(w, "| CPU | {}, {} logical cores |", mc.cpu_model, mc.logical_cores);
    let _ = writeln!(w, "| kernel | {} |", mc.kernel);
    let _ = writeln!(
        w,
        "| databases | `{}` on {}{} |",
        mc.bench_dir.display(),
        mc.fs_type,
        if mc.tmpfs { " (tmpfs: memory, no fsync reaches a device)" } else { " (not tmpfs)" }
    );
    let samples_min = results.all().map(|m| m.samples).min().unwrap_or(0);
    let samples_max = results.all().map(|m| m.samples).max().unwrap_or(0);
    let samples =
        if samples_min == samples_max { samples_min.to_string() } else { format!("{samples_min}–{samples_max}") };
    let _ = writeln!(w, "| samples per benchmark | {samples} |");
    let probe_min = run.fsync_probes.iter().map(|p| p.median_us).min();
    let probe_max = run.fsync_probes.iter().map(|p| p.median_us).max();
    if let (Some(lo), Some(hi)) = (probe_min, probe_max) {
        let _ = writeln!(
            w,
            "| disk probe | {FLOOR_BLOCK_BYTES}-byte overwrite + fsync, median of {FSYNC_PROBE_WRITES}, before each \
             group: {} to {} |",
            fmt_ns(lo as f64 * 1e3),
            fmt_ns(hi as f64 * 1e3)
        );
        // A threefold swing is far beyond what a setting's own noise explains.
        if hi >= 3 * lo.max(1) {
            let _ = writeln!(
                w,
                "| **warning** | the disk's fsync latency changed {:.0}-fold during this run: a difference \
                 between two rows may be the disk's, not the settings'. Compare each row with its probe \
                 (last column), or re-run on a quieter disk |",
                hi as f64 / lo.max(1) as f64
            );
        }
    }
    let started = SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(run.started_at_unix_s));
    let stale = results.all().filter(|m| started.is_some_and(|s| m.written_at < s)).count();
    if stale > 0 {
        let _ = writeln!(
            w,
            "| **warning** | {stale} of {} results predate this run's start: they come from an earlier \
             run (a filtered `cargo bench`?) |",
            results.all().count()
        );
    }
}

/// Commit latency per journal mode and synchronous level, with the chart when there is one.
fn commit_section(w: &mut String, results: &Results, svg_name: Option<&str>, io: Option<&IoTable>) {
    let run = &results.run;
    let floor = results.floor(FloorKind::Append);
    let _ = writeln!(w, "\n## Commit latency\n");
    let _ = writeln!(
        w,
        "One transaction, `BEGIN IMMEDIATE` to `COMMIT` returning, of 1 or 10 rows: `row` is a \
         {ROW_BYTES}-byte row in a plain table (no index, no FTS); `message` is a {MESSAGE_BYTES}-byte \
         session-store message inserted as the workload appends it (the `messages` row, both FTS5 \
         indexes through their triggers, the session's counters, one ledger row per transaction). \
         Pragmas are set explicitly and read back: `cache_size` {COMMIT_CACHE_KIB} KiB, `mmap_size` 0, \
         `wal_autocheckpoint` {COMMIT_AUTO_CHECKPOINT_PAGES}. Each sample starts from a fresh copy of a \
         seeded database. In WAL mode a PASSIVE checkpoint runs, untimed, whenever the WAL nears \
         {CHECKPOINT_AT_FRAMES} frames: the WAL restarts about as often as under the auto-checkpoint (the first commit after a restart rewrites and, unless synchronous is \
         OFF, syncs the WAL header), but a WAL commit here excludes the checkpoint it eventually \
         pays for: see the checkpoint table, and note that at `synchronous=NORMAL` the checkpoint \
         is where the WAL is synced. `· N×` is a multiple of the fsync floor, given only where \
         the commit waits for an fsync ({}): a commit at synchronous=OFF, or a WAL commit at NORMAL, \
         costs CPU and page-cache writes, not fsyncs, and a multiple of the floor would misread as \
         one.\n",
        match io {
            Some(_) => "its syncs counted through the tracing VFS, `crashfuzz io-counts`",
            None => "not known for this report: no I/O counts were given, so no cell has one",
        }
    );
    let _ = write!(w, "| journal | synchronous |");
    for payload in Payload::ALL {
        for rows in ROWS_PER_TXN {
            let _ = write!(w, " {} × {rows} |", payload.as_str());
        }
    }
    let _ = write!(w, " disk probe |\n|---|---|");
    for _ in 0..Payload::ALL.len() * ROWS_PER_TXN.len() {
        let _ = write!(w, "--:|");
    }
    let _ = writeln!(w, "--:|");
    for journal in COMMIT_JOURNALS {
        for sync in Synchronous::ALL {
            let _ = write!(w, "| {} | {} |", journal.as_sql(), sync.as_sql());
            for payload in Payload::ALL {
                for rows in ROWS_PER_TXN {
                    let m = results.commit((journal, sync, payload, rows));
                    match waits_for_fsync(io, journal, sync) {
                        Some(true) => {
                            let _ = write!(w, " {} · {} |", fmt_measured(m), fmt_ratio(m.median_ns / floor.median_ns));
                        }
                        Some(false) | None => {
                            let _ = write!(w, " {} |", fmt_measured(m));
                        }
                    }
                }
            }
            let group = commit_id(journal, sync, Payload::Row, 1).group;
            let _ = writeln!(w, " {} |", probe_of(run, &group));
        }
    }
    if let Some(svg) = svg_name {
        let _ = writeln!(w, "\n![median commit latency of one message, per journal mode and synchronous]({svg})");
    }
}

/// Whether one steady commit under `journal` and `sync` syncs a file or a directory; `None`
/// without counts.
fn waits_for_fsync(io: Option<&IoTable>, journal: JournalMode, sync: Synchronous) -> Option<bool> {
    io.and_then(|t| t.get(&(journal, sync))).map(|io| io.file_syncs() + io.dir_syncs > 0)
}

/// `+290 µs [270–310]`: a signed delta with its interval.
fn fmt_delta(l: &LevelCost) -> String {
    let us = |v: i64| if v == 0 { "0 µs".to_string() } else { fmt_ns(v.unsigned_abs() as f64 * 1e3) };
    let signed = |v: i64| if v < 0 { format!("−{}", us(v)) } else { format!("+{}", us(v)) };
    format!("{} [{} to {}]", signed(l.delta_median_us), signed(l.delta_lo_us), signed(l.delta_hi_us))
}

/// What each level adds over OFF, paired, beside the syncs that explain it, and the answer to
/// "what does FULL cost at 100 commits a second?".
fn level_cost_section(w: &mut String, results: &Results, io: Option<&IoTable>) {
    let run = &results.run;
    let _ = writeln!(w, "\n## What each synchronous level costs\n");
    if run.paired_levels.is_empty() {
        let _ = writeln!(w, "Not measured in this run (the paired measurement runs only under `cargo bench`).");
        return;
    }
    let rounds = run.paired_levels.iter().map(|p| p.rounds).max().unwrap_or(0);
    let _ = writeln!(
        w,
        "Each journal mode's four levels measured together: {rounds} rounds, each timing one one-message \
         commit of every level (four live databases in one directory, set up as above) and one \
         {FLOOR_BLOCK_BYTES}-byte append + fsync, in an order that rotates every round. **Costs** is the \
         median over the rounds of the level's commit minus OFF's commit of the same round, with a \
         distribution-free 95% interval: a disk that drifts during the run moves both sides of every \
         difference alike, which a ratio of medians taken minutes apart cannot promise. **In fsync \
         floors** divides it by the median append + fsync of the same rounds, only for a commit that \
         waits for an fsync. **Does** is what one steady commit syncs ({}). Disk probe before this \
         measurement: {}.\n",
        if io.is_some() {
            "the median over counted commits: `crashfuzz io-counts`"
        } else {
            "not counted for this report"
        },
        probe_of(run, "paired_levels")
    );
    let _ = writeln!(
        w,
        "| journal | synchronous | does: syncs per commit | commit p50 | costs: over OFF, paired | in fsync floors | floor (same rounds) |"
    );
    let _ = writeln!(w, "|---|---|---|--:|--:|--:|--:|");
    for p in &run.paired_levels {
        for l in &p.levels {
            let does = io
                .and_then(|t| t.get(&(p.journal_mode, l.synchronous)))
                .map_or("—".to_string(), crate::fault::io_counts::syncs_in_words);
            let (cost, floors) = match (l.synchronous, waits_for_fsync(io, p.journal_mode, l.synchronous)) {
                (Synchronous::Off, _) => ("baseline".to_string(), "—".to_string()),
                (_, Some(true)) => {
                    (fmt_delta(l), format!("{:.1}", l.delta_median_us as f64 / p.floor_median_us.max(1) as f64))
                }
                (_, Some(false)) => (fmt_delta(l), "— (waits for no fsync)".to_string()),
                (_, None) => (fmt_delta(l), "—".to_string()),
            };
            let _ = writeln!(
                w,
                "| {} | {} | {does} | {} | {cost} | {floors} | {} |",
                p.journal_mode.as_sql(),
                l.synchronous.as_sql(),
                fmt_ns(l.median_us as f64 * 1e3),
                fmt_ns(p.floor_median_us as f64 * 1e3)
            );
        }
    }
    // The seed question: FULL over NORMAL at 100 commits a second, from the paired deltas.
    let wal = run.paired_levels.iter().find(|p| p.journal_mode == JournalMode::Wal);
    if let Some((full, normal)) = wal.and_then(|p| p.level(Synchronous::Full).zip(p.level(Synchronous::Normal))) {
        let extra_us = full.delta_median_us - normal.delta_median_us;
        let _ = writeln!(
            w,
            "\n**Is synchronous=FULL a small cost below 100 writes/s?** In WAL mode FULL adds {} per \
             one-message commit over NORMAL here (the difference of their paired costs over OFF): one \
             fsync of the WAL per commit, which NORMAL leaves to the checkpoint. At 100 commits a second \
             that is {} of every second, {:.1}% of one writer's time, and the commit still returns in \
             {}. What it buys is in the durability matrix: WAL+NORMAL loses the last commits to a power \
             loss, WAL+FULL does not.",
            fmt_ns(extra_us.max(0) as f64 * 1e3),
            fmt_ns(extra_us.max(0) as f64 * 100.0 * 1e3),
            extra_us.max(0) as f64 * 100.0 / 1e6 * 100.0,
            fmt_ns(full.median_us as f64 * 1e3)
        );
    }
}

/// Checkpoint latency per mode and WAL size.
fn checkpoint_section(w: &mut String, results: &Results) {
    let (run, floor) = (&results.run, results.floor(FloorKind::Append));
    let _ = writeln!(w, "\n## Checkpoints\n");
    let _ = writeln!(
        w,
        "`PRAGMA wal_checkpoint(MODE)` of a WAL holding exactly the given number of frames (each a \
         distinct 4 KiB page, written by one untimed transaction before each checkpoint), with \
         `synchronous=FULL` and `wal_autocheckpoint=0` so that nothing else checkpoints. TRUNCATE \
         also truncates the WAL to zero bytes. Disk probe before this group: {}.\n",
        probe_of(run, "checkpoint")
    );
    let _ = writeln!(w, "| mode | WAL frames | checkpoint | per frame | vs floor |\n|---|--:|--:|--:|--:|");
    for ((mode, frames), m) in &results.checkpoint {
        let _ = writeln!(
            w,
            "| {} | {frames} | {} | {} | {} |",
            mode.as_sql(),
            fmt_measured(m),
            fmt_ns(m.median_ns / f64::from(*frames)),
            fmt_ratio(m.median_ns / floor.median_ns)
        );
    }
}

/// One block written and fsynced, appended or overwritten.
fn floor_section(w: &mut String, results: &Results) {
    let run = &results.run;
    let _ = writeln!(w, "\n## The fsync floor\n");
    let _ = writeln!(
        w,
        "One {FLOOR_BLOCK_BYTES}-byte `write` then `fsync` (`File::sync_all`, as SQLite calls fsync, \
         not fdatasync) on a file in the databases' directory: appended at the end (the file grows; \
         it is truncated, untimed, every so often) or over the same block. Disk probe before this \
         group: {}.\n",
        probe_of(run, "fsync_floor")
    );
    let _ = writeln!(w, "| write | write + fsync |\n|---|--:|");
    for (kind, m) in &results.floor {
        let _ = writeln!(w, "| {} | {} |", kind.as_str(), fmt_measured(m));
    }
}

/// What the tracing VFS costs a commit, from criterion and from alternating commits.
fn vfs_section(w: &mut String, results: &Results) {
    let run = &results.run;
    let plain = results.vfs(VfsKind::Plain);
    let traced = results.vfs(VfsKind::Traced);
    let (pct, pct_lo, pct_hi) = vfs_overhead_percent(plain, traced);
    let _ = writeln!(w, "\n## Tracing VFS overhead\n");
    let _ = writeln!(
        w,
        "WAL + FULL, one message per transaction, on SQLite's `unix` VFS and on crashfuzz's tracing \
         shim over it (every write, sync and truncation copied into the trace's shared \
         memory mapping of a file in the same directory, started afresh when each sample \
         starts). The interval of the \
         difference is conservative: the extremes of the ratio of the two intervals. Criterion \
         measures the two one after the other, so a disk that drifts in between biases it; the \
         paired line below alternates single commits of the two instead. Disk probe before this \
         group: {}.\n",
        probe_of(run, "vfs_overhead")
    );
    let _ = writeln!(w, "| VFS | commit |\n|---|--:|");
    let _ = writeln!(w, "| plain | {} |", fmt_measured(plain));
    let _ = writeln!(w, "| traced | {} |", fmt_measured(traced));
    let _ =
        writeln!(w, "\nOverhead (criterion): **{pct:+.1}%** [{pct_lo:+.1}% to {pct_hi:+.1}%] (target: below +10%).");
    if let Some(p) = &run.vfs_paired {
        let paired = (p.traced_median_us as f64 / p.plain_median_us.max(1) as f64 - 1.0) * 100.0;
        let _ = writeln!(
            w,
            "\nOverhead (paired, {} commits of each, alternating): median {} plain, {} traced: **{paired:+.1}%**.",
            p.commits_each,
            fmt_ns(p.plain_median_us as f64 * 1e3),
            fmt_ns(p.traced_median_us as f64 * 1e3)
        );
    }
}

/// Colours of the four synchronous levels in the chart.
const SYNC_COLOURS: [RGBColor; 4] =
    [RGBColor(0x9e, 0xca, 0xe1), RGBColor(0x42, 0x92, 0xc6), RGBColor(0xef, 0x8a, 0x62), RGBColor(0xb2, 0x18, 0x2b)];

/// The chart: median commit latency of one message per transaction, grouped by journal mode,
/// one bar per synchronous level, with the interval as an error bar and the fsync floor as a
/// dashed line. Log scale: OFF and FULL differ by orders of magnitude. Returns the SVG text.
pub fn render_svg(results: &Results) -> Result<String, ReportError> {
    let chart_err = |e: &dyn std::fmt::Display| ReportError::Chart(e.to_string());
    let bars: Vec<(usize, usize, &Measured)> = COMMIT_JOURNALS
        .iter()
        .enumerate()
        .flat_map(|(ji, &j)| {
            Synchronous::ALL
                .iter()
                .enumerate()
                .map(move |(si, &s)| (ji, si, results.commit((j, s, Payload::Message, 1))))
        })
        .collect();
    let floor = results.floor(FloorKind::Append);
    let lo_us = bars.iter().map(|b| b.2.lower_ns).fold(floor.median_ns, f64::min) / 1e3;
    let hi_us = bars.iter().map(|b| b.2.upper_ns).fold(floor.median_ns, f64::max) / 1e3;
    // Whole decades around the data, so the log axis has labelled ends.
    let y_min = 10f64.powf(lo_us.log10().floor());
    let y_max = 10f64.powf(hi_us.log10().ceil());
    let groups = COMMIT_JOURNALS.len() as f64;
    let per_group = Synchronous::ALL.len() as f64;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| chart_err(&e))?;
        let title = format!(
            "Commit latency, one {MESSAGE_BYTES}-byte message per transaction (median, {} interval)",
            percent(bars.first().map_or(0.95, |b| b.2.confidence_level))
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..groups, (y_min..y_max).log_scale())
            .map_err(|e| chart_err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("µs per commit (log scale)")
            .y_label_formatter(&|v| if *v >= 1.0 { format!("{v:.0}") } else { format!("{v}") })
            .draw()
            .map_err(|e| chart_err(&e))?;

        let bar_width = 0.8 / per_group;
        for &(ji, si, m) in &bars {
            let x0 = ji as f64 + 0.1 + si as f64 * bar_width;
            let (x1, xm) = (x0 + bar_width * 0.9, x0 + bar_width * 0.45);
            let colour = SYNC_COLOURS[si];
            chart
                .draw_series(std::iter::once(Rectangle::new([(x0, y_min), (x1, m.median_ns / 1e3)], colour.filled())))
                .map_err(|e| chart_err(&e))?;
            let (lo, hi) = (m.lower_ns / 1e3, m.upper_ns / 1e3);
            let cap = bar_width * 0.2;
            chart
                .draw_series([
                    PathElement::new(vec![(xm, lo), (xm, hi)], BLACK.stroke_width(1)),
                    PathElement::new(vec![(xm - cap, lo), (xm + cap, lo)], BLACK.stroke_width(1)),
                    PathElement::new(vec![(xm - cap, hi), (xm + cap, hi)], BLACK.stroke_width(1)),
                ])
                .map_err(|e| chart_err(&e))?;
        }
        // The floor as a dashed line (a basic element: no plotters feature needed).
        let floor_us = floor.median_ns / 1e3;
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(0.0, floor_us), (groups, floor_us)],
                6,
                4,
                BLACK.stroke_width(1),
            )))
            .map_err(|e| chart_err(&e))?
            .label(format!("fsync floor (4 KiB append + fsync): {}", fmt_ns(floor.median_ns)))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(1)));
        for (si, sync) in Synchronous::ALL.iter().enumerate() {
            let colour = SYNC_COLOURS[si];
            // An empty series that only carries a legend entry per synchronous level.
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(|e| chart_err(&e))?
                .label(format!("synchronous={}", sync.as_sql()))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| chart_err(&e))?;

        // Journal-mode names under each group, placed in pixels below the plotting area.
        let (_, y_bottom) = chart.backend_coord(&(0.0, y_min));
        for (ji, journal) in COMMIT_JOURNALS.iter().enumerate() {
            let (x, _) = chart.backend_coord(&(ji as f64 + 0.5, y_min));
            let style = TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
            root.draw_text(&format!("journal_mode={}", journal.as_sql()), &style, (x, y_bottom + 10))
                .map_err(|e| chart_err(&e))?;
        }
        root.present().map_err(|e| chart_err(&e))?;
    }
    Ok(svg)
}

/// The commit medians and the fsync floor in the shape the durability page reads
/// (`write-latency.json`, [`crate::report::pages::durability::LatencyReport`]).
pub fn latency_report(results: &Results) -> crate::report::pages::durability::LatencyReport {
    let us = |ns: f64| ns / 1000.0;
    let commits = results
        .commit
        .iter()
        .map(|((journal, sync, payload, rows), m)| crate::report::pages::durability::CommitLatency {
            journal_mode: journal.as_sql().to_string(),
            synchronous: sync.as_sql().to_string(),
            payload: payload.as_str().to_string(),
            rows: *rows,
            median_us: us(m.median_ns),
            lo_us: us(m.lower_ns),
            hi_us: us(m.upper_ns),
        })
        .collect();
    let level_costs = results
        .run
        .paired_levels
        .iter()
        .flat_map(|p| {
            p.levels.iter().map(move |l| crate::report::pages::durability::PairedCost {
                journal_mode: p.journal_mode.as_sql().to_string(),
                synchronous: l.synchronous.as_sql().to_string(),
                rounds: p.rounds,
                median_us: l.median_us,
                delta_us: l.delta_median_us,
                lo_us: l.delta_lo_us,
                hi_us: l.delta_hi_us,
                floor_us: p.floor_median_us,
            })
        })
        .collect();
    crate::report::pages::durability::LatencyReport {
        commits,
        fsync_floor_us: Some(us(results.floor(FloorKind::Append).median_ns)),
        level_costs,
    }
}

/// `crashfuzz bench-report`: reads `criterion_dir`, writes `out_md` and, if asked, the chart
/// and the JSON the durability page reads; `io` as [`render_markdown`] takes it. Nothing is written unless every input was read.
pub fn run(
    criterion_dir: &Path,
    out_md: &Path,
    out_svg: Option<&Path>,
    out_json: Option<&Path>,
    io: Option<&IoTable>,
) -> Result<(), ReportError> {
    let results = load(criterion_dir)?;
    let svg = out_svg.map(|_| render_svg(&results)).transpose()?;
    // The Markdown links the chart by a path relative to itself when they share a directory.
    let svg_link = out_svg.map(|p| {
        if p.parent() == out_md.parent() {
            p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
        } else {
            p.display().to_string()
        }
    });
    let md = render_markdown(&results, svg_link.as_deref(), io);
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|source| ReportError::Write { path: path.to_path_buf(), source })
    };
    if let (Some(path), Some(svg)) = (out_svg, &svg) {
        write(path, svg)?;
    }
    if let Some(path) = out_json {
        let json = serde_json::to_string_pretty(&latency_report(&results)).expect("plain data serializes");
        write(path, &(json + "\n"))?;
    }
    write(out_md, &md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_record(bench_dir: &Path) -> BenchRun {
        BenchRun {
            wrapper_command: Some("scripts/bench.sh --quick".into()),
            bench_args: vec!["--bench".into(), "--sample-size".into(), "10".into()],
            default_samples: 20,
            default_warm_up_ms: 500,
            default_measurement_ms: 2000,
            crashfuzz_version: "0.1.0".into(),
            sqlite_version: "3.54.1".into(),
            started_at: "2026-11-23T10:00:00Z".into(),
            // Long before any file the test writes, so no result looks stale.
            started_at_unix_s: 1_000_000,
            finished_at: Some("2026-11-23T10:02:00Z".into()),
            machine: Machine {
                cpu_model: "Test CPU".into(),
                logical_cores: 2,
                kernel: "6.1.0".into(),
                bench_dir: bench_dir.to_path_buf(),
                fs_type: "ext4".into(),
                tmpfs: false,
            },
            fsync_probes: vec![
                FsyncProbe { before_group: "fsync_floor".into(), median_us: 200 },
                FsyncProbe { before_group: "commit/wal/off".into(), median_us: 210 },
                FsyncProbe { before_group: "commit/persist/extra".into(), median_us: 900 },
                FsyncProbe { before_group: "end".into(), median_us: 190 },
            ],
            vfs_paired: Some(PairedVfs { commits_each: 300, plain_median_us: 500, traced_median_us: 520 }),
            paired_levels: vec![PairedLevels {
                journal_mode: JournalMode::Wal,
                rounds: 300,
                floor_median_us: 250,
                levels: [(Synchronous::Off, 490, 0), (Synchronous::Normal, 480, -8), (Synchronous::Full, 780, 290)]
                    .into_iter()
                    .map(|(synchronous, median_us, delta)| LevelCost {
                        synchronous,
                        median_us,
                        delta_median_us: delta,
                        delta_lo_us: delta - 20,
                        delta_hi_us: delta + 10,
                    })
                    .collect(),
            }],
        }
    }

    /// WAL's counts: OFF and NORMAL sync nothing, FULL the WAL once.
    fn wal_io() -> IoTable {
        use crate::fault::io_counts::{FileRole, Io, SyncFlavour};
        let one_wal_sync = Io {
            syncs: std::collections::BTreeMap::from([(
                (FileRole::Wal, SyncFlavour { full: false, data_only: false }),
                1,
            )]),
            ..Io::default()
        };
        IoTable::from([
            ((JournalMode::Wal, Synchronous::Off), Io::default()),
            ((JournalMode::Wal, Synchronous::Normal), Io::default()),
            ((JournalMode::Wal, Synchronous::Full), one_wal_sync),
        ])
    }

    /// Writes criterion-shaped files for `id` with the given median (interval ±10%).
    fn write_bench(dir: &Path, id: &BenchId, median_ns: f64) {
        let new_dir = dir.join(id.dir_name()).join("new");
        std::fs::create_dir_all(&new_dir).unwrap();
        let benchmark = serde_json::json!({
            "group_id": id.group, "function_id": id.function, "value_str": id.value, "throughput": null,
            "full_id": id.full_id(), "directory_name": id.dir_name(), "title": id.full_id(),
        });
        std::fs::write(new_dir.join("benchmark.json"), benchmark.to_string()).unwrap();
        let est = |p: f64| {
            serde_json::json!({
                "confidence_interval": {"confidence_level": 0.95, "lower_bound": p * 0.9, "upper_bound": p * 1.1},
                "point_estimate": p, "standard_error": p * 0.05,
            })
        };
        let estimates = serde_json::json!({
            "mean": est(median_ns), "median": est(median_ns), "median_abs_dev": est(median_ns / 10.0),
            "slope": null, "std_dev": est(median_ns / 10.0),
        });
        std::fs::write(new_dir.join("estimates.json"), estimates.to_string()).unwrap();
        let (iters, times) = ([4.0; 10], [4.0 * median_ns; 10]);
        let sample = serde_json::json!({"sampling_mode": "Flat", "iters": iters, "times": times});
        std::fs::write(new_dir.join("sample.json"), sample.to_string()).unwrap();
    }

    /// A complete fixture: every id the bench registers, with made-up but ordered medians.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let run = run_record(dir.path());
        std::fs::write(dir.path().join(RUN_FILE), serde_json::to_string_pretty(&run).unwrap()).unwrap();
        for (i, (j, s, p, r)) in commit_ids().into_iter().enumerate() {
            write_bench(dir.path(), &commit_id(j, s, p, r), 10_000.0 + 5_000.0 * i as f64);
        }
        for (mode, frames) in checkpoint_ids() {
            write_bench(dir.path(), &checkpoint_id(mode, frames), 2_000.0 * f64::from(frames));
        }
        write_bench(dir.path(), &floor_id(FloorKind::Append), 250_000.0);
        write_bench(dir.path(), &floor_id(FloorKind::Overwrite), 200_000.0);
        write_bench(dir.path(), &vfs_id(VfsKind::Plain), 400_000.0);
        write_bench(dir.path(), &vfs_id(VfsKind::Traced), 420_000.0);
        dir
    }

    #[test]
    fn ids_match_criterions_layout() {
        let id = commit_id(JournalMode::Wal, Synchronous::Full, Payload::Message, 1);
        assert_eq!(id.full_id(), "commit/wal/full/message/1");
        assert_eq!(id.dir_name(), Path::new("commit_wal_full/message/1"));
        let id = checkpoint_id(CheckpointMode::Truncate, 1000);
        assert_eq!(id.full_id(), "checkpoint/truncate/1000");
        assert_eq!(id.dir_name(), Path::new("checkpoint/truncate/1000"));
        assert_eq!(floor_id(FloorKind::Append).dir_name(), Path::new("fsync_floor/append"));
        assert_eq!(vfs_id(VfsKind::Traced).full_id(), "vfs_overhead/traced");
        assert_eq!(commit_ids().len(), 64);
    }

    #[test]
    fn renders_a_complete_fixture() {
        let dir = fixture();
        let md_path = dir.path().join("out.md");
        let svg_path = dir.path().join("out.svg");
        let json_path = dir.path().join("out.json");
        run(dir.path(), &md_path, Some(&svg_path), Some(&json_path), Some(&wal_io())).unwrap();
        let md = std::fs::read_to_string(&md_path).unwrap();
        assert!(md.contains("| command | `scripts/bench.sh --quick` |"), "{md}");
        assert!(md.contains("| bench command | `cargo bench --bench write_latency -- --sample-size 10` |"), "{md}");
        assert!(md.contains("| SQLite | 3.54.1 (bundled) |"));
        assert!(md.contains("Test CPU, 2 logical cores"));
        assert!(md.contains("on ext4 (not tmpfs)"));
        assert!(!md.contains("predate"), "no result is stale: {md}");
        // The first commit cell: 10 µs, ±10%, and no multiple of the floor: it syncs nothing.
        // WAL+FULL's syncs the WAL, so it is priced in floors; a cell without counts is not.
        assert!(md.contains("| wal | off | 10 µs [9–11] | 15 µs [14–16] |"), "{md}");
        assert!(md.contains("| wal | full | 50 µs [45–55] · 0.20× |"), "{md}");
        assert!(md.contains("| delete | full | 130 µs [117–143] | 135 µs"), "{md}");
        // The paired costs: the baseline, a level that waits for no fsync, and one that does.
        assert!(md.contains("| wal | off | none | 490 µs | baseline | — | 250 µs |"), "{md}");
        assert!(
            md.contains(
                "| wal | normal | none | 480 µs | −8.0 µs [−28 µs to +2.0 µs] | — (waits for no fsync) | 250 µs |"
            ),
            "{md}"
        );
        assert!(md.contains("| wal | full | WAL 1 | 780 µs | +290 µs [+270 µs to +300 µs] | 1.2 | 250 µs |"), "{md}");
        assert!(md.contains("FULL adds 298 µs per one-message commit over NORMAL"), "{md}");
        assert!(md.contains("that is 29.80 ms of every second, 3.0% of one writer's time"), "{md}");
        assert!(md.contains("| 210 µs |\n"), "the wal/off row ends with its probe: {md}");
        assert!(md.contains(
            "| disk probe | 4096-byte overwrite + fsync, median of 16, before each group: 190 µs to 900 µs |"
        ));
        assert!(md.contains("changed 5-fold during this run"), "{md}");
        assert!(md.contains("**+4.0%**."), "paired overhead: {md}");
        assert!(md.contains("| PASSIVE | 100 | 200 µs [180–220] | 2.0 µs | 0.80× |"), "{md}");
        assert!(md.contains("| append | 250 µs [225–275] |"), "{md}");
        assert!(md.contains("Overhead (criterion): **+5.0%** [-14.1% to +28.3%]"), "{md}");
        assert!(md.contains("![median commit latency of one message, per journal mode and synchronous](out.svg)"));
        // 16 rows of the commit table (8 of them wal or persist), and the 3 paired wal rows.
        assert_eq!(md.lines().filter(|l| l.starts_with("| wal |") || l.starts_with("| persist |")).count(), 8 + 3);

        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        // Text is emitted as SVG text elements: no font library is needed to render it.
        assert!(svg.contains("journal_mode=persist"));
        assert!(svg.contains("synchronous=extra"));
        assert!(svg.contains("fsync floor"));

        // The durability page's view: every commit cell, in microseconds, and the floor.
        let json: crate::report::pages::durability::LatencyReport =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        assert_eq!(json.commits.len(), 64);
        assert_eq!(json.fsync_floor_us, Some(250.0));
        let first = &json.commits[0];
        assert_eq!((first.journal_mode.as_str(), first.synchronous.as_str()), ("wal", "off"));
        assert_eq!((first.median_us, first.lo_us, first.hi_us), (10.0, 9.0, 11.0));
        assert_eq!(json.level_costs.len(), 3);
        let full = &json.level_costs[2];
        assert_eq!((full.synchronous.as_str(), full.delta_us, full.lo_us, full.floor_us), ("full", 290, 270, 250));
    }

    #[test]
    fn a_missing_result_names_its_file_and_writes_nothing() {
        let dir = fixture();
        let gone = dir.path().join("commit_wal_normal/message/10/new/estimates.json");
        std::fs::remove_file(&gone).unwrap();
        let md_path = dir.path().join("out.md");
        let err = run(dir.path(), &md_path, None, None, None).unwrap_err();
        assert!(matches!(err, ReportError::Missing { ref path, .. } if *path == gone), "{err}");
        assert!(err.to_string().contains("commit_wal_normal/message/10/new/estimates.json"), "{err}");
        assert!(!md_path.exists());
    }

    #[test]
    fn a_missing_run_file_names_it() {
        let dir = fixture();
        std::fs::remove_file(dir.path().join(RUN_FILE)).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(RUN_FILE), "{err}");
    }

    #[test]
    fn malformed_files_name_themselves() {
        let dir = fixture();
        let est = dir.path().join("checkpoint/passive/1000/new/estimates.json");
        std::fs::write(&est, "{\"median\": {\"point_estimate\": 1.0}").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, ReportError::Malformed { ref path, .. } if *path == est), "{err}");

        // Well-formed JSON with impossible numbers is malformed too.
        write_bench(dir.path(), &checkpoint_id(CheckpointMode::Passive, 1000), 1e6);
        let text =
            std::fs::read_to_string(&est).unwrap().replace("\"point_estimate\":1000000.0", "\"point_estimate\":-1.0");
        std::fs::write(&est, text).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, ReportError::Malformed { ref path, .. } if *path == est), "{err}");

        // A benchmark.json of another benchmark (criterion's layout changed) is caught.
        write_bench(dir.path(), &checkpoint_id(CheckpointMode::Passive, 1000), 1e6);
        let bench = dir.path().join("fsync_floor/append/new/benchmark.json");
        std::fs::write(&bench, "{\"full_id\": \"fsync_floor/overwrite\"}").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, ReportError::Malformed { ref path, .. } if *path == bench), "{err}");
        assert!(err.to_string().contains("expected \"fsync_floor/append\""), "{err}");
    }

    #[test]
    fn results_older_than_the_run_are_flagged() {
        let dir = fixture();
        let mut run_rec = run_record(dir.path());
        let tomorrow = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 86_400;
        run_rec.started_at_unix_s = tomorrow;
        std::fs::write(dir.path().join(RUN_FILE), serde_json::to_string(&run_rec).unwrap()).unwrap();
        let md = render_markdown(&load(dir.path()).unwrap(), None, None);
        assert!(md.contains("**warning** | 72 of 72 results predate"), "{md}");
    }

    #[test]
    fn mount_table_lookup_takes_the_longest_prefix() {
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0\n/dev/vdb /mnt/my\\040disk xfs rw 0 0\n";
        assert_eq!(mount_fs_type(mounts, Path::new("/work/x")).as_deref(), Some("ext4"));
        assert_eq!(mount_fs_type(mounts, Path::new("/dev/shm/crashfuzz")).as_deref(), Some("tmpfs"));
        assert_eq!(mount_fs_type(mounts, Path::new("/mnt/my disk/db")).as_deref(), Some("xfs"));
        // A path prefix is not a component prefix: /dev/shmx is not under /dev/shm.
        assert_eq!(mount_fs_type(mounts, Path::new("/dev/shmx")).as_deref(), Some("ext4"));
        assert_eq!(mount_fs_type("", Path::new("/")), None);
    }
}

//! The nemesis: every fault crashfuzz injects, each one module implementing [`Fault`], listed
//! once in [`every_fault!`](crate::every_fault). The trial engine (`run::trial`) never asks which fault it runs: it
//! calls the hooks below in phase order, and a fault answers only for itself.
//!
//! A fault answers, in the order a trial asks:
//! - what SQLite promises under it ([`Fault::expectation`]);
//! - at the campaign's start, what every trial of a cell shares ([`Fault::prepare`]: the short
//!   trace of systematic crash points);
//! - whether a database kept across trials may be used ([`Fault::continues_database`]), and
//!   what the VFS injects ([`Fault::injection`]);
//! - how the long-lived writers are started ([`Fault::long_writers`], [`Fault::configure`]:
//!   lock cancellation, a fork);
//! - when and how it strikes ([`Fault::moment`], on a [`Window`] the engine provides:
//!   signals after a window, a bulk transaction, an injected error; a file swapped or copied
//!   meanwhile), with which signal ([`Fault::first_signal`]) and on whom
//!   ([`Fault::stops_everyone`]);
//! - which deaths it intends ([`Fault::intended_deaths`], [`Fault::ends_writer_itself`]);
//! - what it does to the files once every writer is gone ([`Fault::after_reap`]: a hot WAL
//!   deleted, a backup substituted);
//! - which crash images follow ([`Fault::images`]: the files as left, or images built from a
//!   trace) and what else judges them ([`Fault::judge`]: another SQLite build).
//!
//! **Adding a fault is one file under `src/fault/` and one line in [`every_fault!`](crate::every_fault).** The line
//! gives its variant, its name in scenarios, its static traits (which axes apply; whether it is
//! misuse; whether writers run on the tracing VFS) and its file; the file defines `FAULT`, a
//! value implementing [`Fault`]. The matrix's [`FaultKind`] and the registry [`of`] are both
//! generated from the list, so nothing else changes.
//!
//! Support modules: `death` (how a reaped writer's death is judged), `misuse` (the hazards that
//! run inside writers), `power_loss` (the crash-image builder and the images of a trace), `vfs`
//! and `trace` (the tracing, crashing, failing VFS and its record format), `load` (the load
//! generator).

use crate::error::Result;
use crate::fault::vfs::Injection;
use crate::record::TrialPlan;
use crate::record::checks::{CheckResult, ViolationKind};
use crate::record::expected::WriterExpectation;
use crate::scenario::Scenario;
use crate::scenario::expect::{Expectation, Level};
use crate::scenario::matrix::{Cell, FaultKind, KillTiming, SigtermBehaviour};
use crate::writer::acklog::AckLog;
use crate::writer::protocol::WriterConfig;
use nix::sys::signal::Signal;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod death;
#[cfg(test)]
mod expectations;
pub mod io_counts;
pub mod load;
pub mod misuse;
pub mod trace;
pub mod trace_format;
pub mod vfs;

crate::every_fault!(fault_modules);

/// Every fault crashfuzz knows, in the order reports list them: its variant, its name in
/// scenarios, its static traits, and the module (a file under `src/fault/`) that implements it.
///
/// Traits: `sigterm` (the SIGTERM-behaviour axis applies: the fault sends SIGTERM first),
/// `timing` (the timing axis applies: the driver picks the moment), `device` (the device and
/// fullfsync axes apply: a power loss), `vfs` (writers run on the tracing VFS), `hazard`
/// (misuse SQLite documents as corrupting, not a fault of the machine).
#[macro_export]
macro_rules! every_fault {
    ($then:ident) => {
        $crate::$then! {
            Kill "kill" { sigterm, timing } kill,
            SigkillOnly "sigkill_only" { timing } sigkill_only,
            PowerLoss "power_loss" { timing, device, vfs } power_loss,
            PowerLossShared "power_loss_shared" { timing, device, vfs } power_loss_shared,
            CrashPoint "crash_point" { vfs } crash_point,
            IoError "io_error" { vfs } io_error,
            LockCancel "lock_cancel" { timing, hazard } lock_cancel,
            LockCancelWal "lock_cancel_wal" { timing, hazard } lock_cancel_wal,
            LockCancelShm "lock_cancel_shm" { timing, hazard } lock_cancel_shm,
            DeleteHotWal "delete_hot_wal" { timing, hazard } delete_hot_wal,
            DeleteHotJournal "delete_hot_journal" { timing, hazard } delete_hot_journal,
            SwapDb "swap_db" { timing, hazard } swap_db,
            RawCopyBackup "raw_copy_backup" { timing, hazard } raw_copy_backup,
            ForkConnection "fork_connection" { timing, hazard } fork_connection,
            CrossVersion "cross_version" { timing, hazard } cross_version,
            HardLink "hard_link" { timing, hazard } hard_link,
        }
    };
}

/// `pub mod` for every fault's file (invoked by [`every_fault!`](crate::every_fault) here).
#[macro_export]
macro_rules! fault_modules {
    ($($variant:ident $name:literal { $($traits:ident),* } $module:ident,)*) => {
        $(pub mod $module;)*
    };
}

/// The registry (invoked by [`every_fault!`](crate::every_fault) here): a fault's implementation by its kind.
#[macro_export]
macro_rules! fault_registry {
    ($($variant:ident $name:literal { $($traits:ident),* } $module:ident,)*) => {
        /// The implementation of a fault.
        pub fn of(kind: FaultKind) -> &'static dyn Fault {
            match kind {
                $(FaultKind::$variant => &$module::FAULT,)*
            }
        }
    };
}

crate::every_fault!(fault_registry);

/// The systematic crash points' short trace: the seed of the one writer that runs it, and the
/// operations it performs (the same on every run of that seed on the cell's template).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortTrace {
    pub writer_seed: u64,
    pub ops: u64,
}

/// What a fault may use at the campaign's start, once per cell.
pub struct Prepare<'a> {
    /// The program the cell's writers run.
    pub writer: &'a dyn crate::writer::program::Program,
    pub scenario: &'a Scenario,
    pub cell: &'a Cell,
    /// The cell's freshly seeded template database.
    pub template: &'a Path,
    /// A directory the fault may use.
    pub dir: &'a Path,
    /// A seed from the campaign's (stream 2^62 + cell index).
    pub seed: u64,
}

/// What the fault's plan may depend on.
pub struct PlanCtx<'a> {
    pub scenario: &'a Scenario,
    pub cell: &'a Cell,
    pub trial: u64,
    /// The number of cells: trial `t` is round `t / cells` of its cell.
    pub cells: u64,
    pub short_trace: Option<ShortTrace>,
}

/// How a fault's moment went.
pub struct Moment {
    /// How long the first signal gives a writer before SIGKILL follows.
    pub grace: Duration,
    /// The fault did not happen as planned (no bulk transaction announced, the operation never
    /// reached): the trial is not judged.
    pub inconclusive: Option<String>,
    /// A copy of the database taken while the writers wrote, and when it began
    /// (CLOCK_MONOTONIC ns): a backup that becomes the crash image.
    pub copy: Option<(PathBuf, u64)>,
}

/// The trial as a fault sees it while writers run: the engine implements this, so a fault
/// never reaches into the engine's processes itself.
pub trait Window {
    fn scenario(&self) -> &Scenario;
    fn cell(&self) -> &Cell;
    /// The trial's database (the writers have it open).
    fn db(&self) -> &Path;
    /// The cell's template: the database as the trial started.
    fn template(&self) -> &Path;
    /// The trial's own directory (scratch for copies).
    fn dir(&self) -> &Path;
    /// The trial's randomness, drawn in a fixed order, and its plan, which records the draws.
    fn rng(&mut self) -> &mut ChaCha8Rng;
    fn plan(&mut self) -> &mut TrialPlan;
    /// Lets the writers write until `at`, starting transient writers on their schedule.
    fn run_until(&mut self, at: Instant) -> std::io::Result<()>;
    /// Waits up to `timeout` for the victim's next announcement byte; `Err(why)` when it closed
    /// its stdout or the time ran out.
    fn victim_announcement(&mut self, timeout: Duration) -> std::io::Result<std::result::Result<u8, String>>;
    /// Lets every writer still waiting at the start gate go.
    fn open_gates(&mut self);
}

/// What a fault may do once every process of the trial is reaped.
pub struct AfterReap<'a> {
    pub db: &'a Path,
    /// Per writer id, what its acknowledgement file says.
    pub logs: &'a [(u64, AckLog)],
    /// Commits acknowledged by the trial's writers.
    pub commits: u64,
    /// What the image must hold, per writer (a backup must hold less).
    pub acks: &'a mut BTreeMap<u64, WriterExpectation>,
    /// The image to check (a backup replaces the database).
    pub check_db: &'a mut PathBuf,
    /// The copy the moment took, if any.
    pub copy: Option<(PathBuf, u64)>,
}

/// Which crash images a trial checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Images {
    /// The files as the fault left them: one image.
    AsLeft,
    /// Images built from the writers' trace as a power loss at cut points could leave them.
    Traced,
}

/// What a fault may use to judge an image beyond the oracle.
pub struct Judge<'a> {
    /// The image before any check touched it (never modified).
    pub pristine: &'a crate::base::pristine::Pristine,
    /// `[hazard] other_sqlite`, resolved once by the campaign (or by `replay`).
    pub other_sqlite: Option<&'a crate::sqlite::builds::ResolvedBuild>,
}

/// One fault. Every hook but the first two has the answer of a plain process kill by default.
pub trait Fault: Sync {
    /// What the fault does, in a sentence for the pages.
    fn describe(&self) -> &'static str;

    /// SQLite's promise for a cell of this fault (before the writer-crash rule of
    /// [`expectation_for`]).
    fn expectation(&self, cell: &Cell) -> Expectation;

    /// SQLite's promise for a cell of this fault whose writers run on SQLite `version`
    /// (`3.40.1`), where the answer depends on the version; [`Fault::expectation`] otherwise.
    fn expectation_on(&self, cell: &Cell, _version: SqliteVersion) -> Expectation {
        self.expectation(cell)
    }

    /// The most distinct crash states one trial can check.
    fn states_per_trial(&self, _scenario: &Scenario) -> u64 {
        1
    }

    /// What every trial of a cell shares, computed once at the campaign's start.
    fn prepare(&self, _p: &Prepare<'_>) -> Result<Option<ShortTrace>> {
        Ok(None)
    }

    /// Whether a trial may start from the database the cell's last clean trial left
    /// (`database.mode = "continue"`): only where the fault leaves the files as a process crash
    /// does and needs no known start.
    fn continues_database(&self) -> bool {
        false
    }

    /// Whether its trials need `[hazard] other_sqlite`, resolved (and built, if need be) before
    /// the campaign's first trial.
    fn needs_other_sqlite(&self) -> bool {
        false
    }

    /// The tracing VFS's injection for this trial, drawn from `rng` in a fixed order.
    fn injection(&self, _ctx: &PlanCtx<'_>, _rng: &mut ChaCha8Rng) -> Injection {
        Injection::None
    }

    /// The trial's processes: the scenario's `[topology]`, unless the fault shapes its trials
    /// itself.
    fn topology(&self, _cell: &Cell, scenario: &Scenario) -> crate::scenario::TopologyConfig {
        scenario.topology.clone()
    }

    /// Whether a long-lived writer that finished its work and closed cleanly before the fault's
    /// moment is part of the fault's design, rather than a trial that missed its fault.
    fn may_finish(&self) -> bool {
        false
    }

    /// How many long-lived writer processes the trial starts.
    fn long_writers(&self, scenario: &Scenario, _short_trace: Option<ShortTrace>) -> u32 {
        scenario.workload.writers
    }

    /// Adjusts the configuration of every writer of the trial, transients included (an injected
    /// I/O error is reported and survived rather than fatal).
    fn configure_every(&self, _cfg: &mut WriterConfig) {}

    /// Adjusts long-lived writer process `p`'s configuration before it starts (its misuse, its
    /// connections, the short trace's seed, the name it opens the database by). `Err` is a
    /// harness failure.
    fn configure(
        &self,
        _p: usize,
        _cfg: &mut WriterConfig,
        _scenario: &Scenario,
        _short_trace: Option<ShortTrace>,
    ) -> Result<()> {
        Ok(())
    }

    /// Waits for the fault's moment while the writers write, and does what the fault does then.
    fn moment(&self, w: &mut dyn Window) -> Result<Moment> {
        kill_window(w)
    }

    /// The first signal (`None`: the writer kills itself at its crash point).
    fn first_signal(&self) -> Option<Signal> {
        Some(Signal::SIGKILL)
    }

    /// Whether the fault stops every process at once (a power loss, the end of a hazard trial)
    /// rather than the victim alone, the others writing on through its death.
    fn stops_everyone(&self) -> bool {
        false
    }

    /// The deaths the fault intends for the victim, as labels (`signal:SIGKILL`, `exit:0`).
    fn intended_deaths(&self, _sigterm: Option<SigtermBehaviour>) -> Vec<String> {
        vec!["signal:SIGKILL".to_string()]
    }

    /// Whether the fault ends the victim by itself (a crash point; persistent injected I/O
    /// errors the writer gave up on), so an exit before any signal is the fault, not an early
    /// death.
    fn ends_writer_itself(&self, _gave_up: bool) -> bool {
        false
    }

    /// Acts on the files once every process is gone; `Ok(Some(reason))` makes the trial
    /// inconclusive.
    fn after_reap(&self, _a: &mut AfterReap<'_>) -> Result<Option<String>> {
        Ok(None)
    }

    /// Which crash images follow.
    fn images(&self) -> Images {
        Images::AsLeft
    }

    /// Judges the image beyond the oracle (another SQLite build), adding to its results.
    fn judge(&self, _j: &Judge<'_>, _results: &mut Vec<CheckResult>) -> Result<()> {
        Ok(())
    }
}

/// The built-in expectation of `cell`: its fault's, with one rule on top. A writer crashing is no
/// fault of a pragma and no promise SQLite makes away: forbidden wherever crashfuzz only kills,
/// cuts power or fails I/O. Misuse may crash a process (a -shm truncated under its mapping
/// raises SIGBUS): a hazard keeps its own level.
pub fn builtin(cell: &Cell) -> Expectation {
    builtin_on(cell, SqliteVersion::bundled())
}

/// The first SQLite (of those crashfuzz can build) whose FTS5 trigram tokenizer indexes text
/// that begins with NUL: every build up to 3.46.0 indexes it as empty, so a search for any of
/// its substrings misses it, with no error (3.47 cannot be built here: the change lies in
/// 3.47.x or 3.48.0).
pub const TRIGRAM_NUL_INDEXED_FROM: SqliteVersion = SqliteVersion(3, 48, 0);

/// [`builtin`] for writers on SQLite `version`. Below [`TRIGRAM_NUL_INDEXED_FROM`], `fts_miss`
/// is allowed whatever the fault: the writers' own build misses its NUL-prefixed messages in
/// trigram search, a property of the build, not of the fault (never a canary's evidence either).
pub fn builtin_on(cell: &Cell, version: SqliteVersion) -> Expectation {
    let mut e = of(cell.fault).expectation_on(cell, version);
    if !cell.fault.traits().hazard {
        e.levels.insert(ViolationKind::WriterCrash, Level::Forbidden);
    }
    // Whatever the fault, a program that breaks the protocol made its own verdict meaningless.
    e.levels.insert(ViolationKind::Protocol, Level::Forbidden);
    if version < TRIGRAM_NUL_INDEXED_FROM {
        e.levels.insert(ViolationKind::FtsMiss, Level::Allowed);
        e.source.push(format!(
            "builtin: fts_miss allowed: SQLite {version} indexes trigram text that begins with NUL as empty \
             (fixed in {TRIGRAM_NUL_INDEXED_FROM})"
        ));
    }
    e
}

/// The built-in expectation of `cell`, its writers on SQLite `version`, with every matching
/// override applied, in order.
pub fn expectation_for(
    cell: &Cell,
    version: SqliteVersion,
    overrides: &[crate::scenario::expect::ExpectOverride],
) -> Expectation {
    crate::scenario::expect::apply_overrides(builtin_on(cell, version), cell, overrides)
}

/// An SQLite version as three numbers, ordered (`3.40.1 < 3.51.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SqliteVersion(pub u32, pub u32, pub u32);

impl SqliteVersion {
    /// `3.40.1` (as `sqlite_version()` gives it); `None` for anything else.
    pub fn parse(text: &str) -> Option<SqliteVersion> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
        let version = SqliteVersion(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }

    /// The version of the SQLite crashfuzz is linked with.
    pub fn bundled() -> SqliteVersion {
        SqliteVersion::parse(rusqlite::version()).expect("SQLite names its version in three numbers")
    }
}

impl std::fmt::Display for SqliteVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The moment of every fault the driver times: a uniform draw in `[kill_at_ms_min,
/// kill_at_ms_max]` after the writers are ready, or a short draw after the victim announces it
/// is inside a bulk transaction (the others start only then).
pub fn kill_window(w: &mut dyn Window) -> Result<Moment> {
    let (timing, grace) = (w.cell().timing, Duration::from_millis(w.scenario().kill.grace_ms));
    let inconclusive = match timing {
        KillTiming::Uniform => {
            let until = uniform_deadline(w);
            w.run_until(until).map_err(|e| crate::error::Error::io("run the writers", e))?;
            None
        }
        KillTiming::Bulk => bulk_moment(w)?,
    };
    Ok(Moment { grace, inconclusive, copy: None })
}

/// Draws the uniform window's end (recorded in the plan) and returns it.
pub fn uniform_deadline(w: &mut dyn Window) -> Instant {
    use rand::RngExt;
    let (lo, hi) = (w.scenario().kill.kill_at_ms_min * 1000, w.scenario().kill.kill_at_ms_max * 1000);
    let start = Instant::now();
    let delay_us = w.rng().random_range(lo..=hi);
    w.plan().fault_delay_us = Some(delay_us);
    start + Duration::from_micros(delay_us)
}

/// Waits for the victim's bulk announcement, lets the others go, then a short draw; the reason
/// the trial is inconclusive when no bulk transaction was announced.
fn bulk_moment(w: &mut dyn Window) -> Result<Option<String>> {
    use rand::RngExt;
    let timeout = Duration::from_millis(w.scenario().kill.ready_timeout_ms);
    let announced = w.victim_announcement(timeout).map_err(|e| crate::error::Error::io("wait for bulk", e))?;
    let inconclusive = match announced {
        Ok(crate::writer::protocol::ANNOUNCE_BULK) => None,
        Ok(other) => Some(format!("no bulk transaction was announced (byte {other:?})")),
        Err(why) => Some(format!("no bulk transaction was announced ({why})")),
    };
    w.open_gates();
    let max_us = w.scenario().kill.bulk_delay_us_max;
    let delay_us = w.rng().random_range(0..=max_us);
    w.plan().fault_delay_us = Some(delay_us);
    std::thread::sleep(Duration::from_micros(delay_us));
    Ok(inconclusive)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list, the kinds and the registry agree: every kind has an implementation, the names
    /// round-trip, and the traits say what the axes do.
    #[test]
    fn every_listed_fault_is_registered_and_named() {
        for &kind in FaultKind::ALL {
            assert!(!of(kind).describe().is_empty(), "{kind:?}");
            assert_eq!(kind.as_str().parse::<FaultKind>(), Ok(kind));
        }
        assert!(FaultKind::Kill.traits().sigterm && !FaultKind::SigkillOnly.traits().sigterm);
        assert!(FaultKind::PowerLoss.traits().device && FaultKind::PowerLoss.traits().vfs);
        assert!(FaultKind::SwapDb.traits().hazard && !FaultKind::IoError.traits().hazard);
        assert!(!FaultKind::CrashPoint.traits().timing);
    }
}

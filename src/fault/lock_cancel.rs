//! `lock_cancel`: each long-lived writer also opens and closes its own second descriptor of the
//! database file at random moments. POSIX locks belong to the process, so the close drops every
//! lock its SQLite connection holds on that file. A rollback journal keeps its
//! RESERVED/PENDING/EXCLUSIVE locks there: two writers whose locks vanish write at once, and the
//! cell is a canary. WAL keeps its writer lock in the -shm; the database file's lock only tells
//! a closing connection whether it is the last one, so WAL trials run *lone closers* (transient
//! writers one at a time) for a fixed time, and some cancelling writers close cleanly before the
//! end. Before SQLite 3.51.0 a lone closer then checkpoints and deletes the WAL and -shm under
//! the cancelling processes, which write on into their own unlinked WAL until their last close
//! writes it into the database: a canary on those builds; measured from 3.51.0, whose closer
//! first asks whether another process holds the -shm.
//!
//! `lock_cancel_wal` and `lock_cancel_shm` are the same misuse on the `-wal` and the `-shm`
//! (where WAL keeps its writer and reader locks: a canary there).

use crate::error::Result;
use crate::fault::misuse::{LockTarget, WriterHazard};
use crate::fault::{Fault, Moment, ShortTrace, Window, kill_window};
use crate::record::checks::ViolationKind;
use crate::scenario::{Scenario, TopologyConfig};
use std::time::{Duration, Instant};
use crate::scenario::expect::Expectation;
use crate::fault::SqliteVersion;
use crate::scenario::matrix::{Cell, JournalMode};
use crate::writer::protocol::WriterConfig;

/// Lock cancellation on one of the database's files.
pub struct LockCancel {
    pub target: LockTarget,
}

/// The first SQLite whose last closer leaves the WAL alone while another process holds the
/// -shm: cancelling database-file locks no longer lets it delete the WAL under that process.
pub const FIXED_IN: SqliteVersion = SqliteVersion(3, 51, 0);

pub const FAULT: LockCancel = LockCancel { target: LockTarget::Db };

impl LockCancel {
    /// Whether this cell's trials run with lone closers.
    fn lone_closers(&self, journal_mode: JournalMode, scenario: &Scenario) -> bool {
        self.target == LockTarget::Db && journal_mode == JournalMode::Wal && scenario.hazard.lock_cancel_closer_interval_ms > 0
    }
}

impl Fault for LockCancel {
    fn describe(&self) -> &'static str {
        match self.target {
            LockTarget::Db => {
                "each long-lived writer opens and closes its own second descriptor of the database file; \
                 POSIX locks belong to the process, so the close drops the locks its connection holds. \
                 Rollback journal: the writer's RESERVED/PENDING/EXCLUSIVE locks live there. WAL: the \
                 writer lock lives in the -shm; the database file's lock only tells a closing connection \
                 whether it is the last one. WAL trials add lone closers (CLI-like writers started one at \
                 a time, [hazard] lock_cancel_closer_interval_ms) and run [hazard] lock_cancel_trial_ms; \
                 some cancelling writers close cleanly before the end. Before SQLite 3.51.0 a lone closer \
                 checkpoints and deletes the WAL and -shm under the cancelling processes, whose own WAL \
                 lives on apart; from 3.51.0 it first asks whether another process holds the -shm \
                 (unixIsSharingShmNode) and leaves them"
            }
            LockTarget::Wal => "the same with the -wal file, which holds no lock",
            LockTarget::Shm => "the same with the -shm file, where WAL keeps its writer and reader locks",
        }
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        use JournalMode::{Delete, Persist, Truncate, Wal};
        match (self.target, cell.journal_mode) {
            // Two writers whose locks vanish write at once: a rollback journal's database
            // locks, or WAL's write lock in the -shm, are gone. Whatever breaks, something does.
            (LockTarget::Db, Delete | Truncate | Persist) | (LockTarget::Shm, Wal) => Expectation::canary(
                &ViolationKind::ALL,
                "hazard: lock cancellation under concurrent writers corrupts (canary: some violation required)",
            ),
            // WAL keeps no lock on the database file a writer needs (only the last close
            // looks, and from 3.51.0 it also asks the -shm), nor on the -wal itself:
            // measured, not promised either way.
            (LockTarget::Db | LockTarget::Wal | LockTarget::Shm, _) => Expectation::measured(
                "hazard: lock cancellation on a file this journal mode holds no writer lock on (from \
                 SQLite 3.51.0 the last closer also asks the -shm before it deletes the WAL); measured",
            ),
        }
    }

    /// Before 3.51.0, the last connection to close checkpoints the WAL and deletes it (and the
    /// -shm) on the word of a lock on the database file, which a cancelling process drops:
    /// another process's connection is still using the files it deletes. 3.51.0 made
    /// `unixLock` ask `unixIsSharingShmNode` first (the check SQLite's source introduces with
    /// "close(open(DATABASE_PATHNAME))"): a closer does not delete while another process holds
    /// the -shm's dead-man byte, which cancelling the database file's locks leaves alone.
    fn expectation_on(&self, cell: &Cell, version: SqliteVersion) -> Expectation {
        if self.target == LockTarget::Db && cell.journal_mode == JournalMode::Wal && version < FIXED_IN {
            let damage_or_loss: Vec<ViolationKind> =
                ViolationKind::ALL.into_iter().filter(|k| k.is_damage() || *k == ViolationKind::LostAck).collect();
            return Expectation::canary(
                &damage_or_loss,
                "hazard: lock cancellation on SQLite before 3.51.0, whose last closer checkpoints and deletes \
                 the WAL and -shm under a process that cancelled its database-file lock (3.51.0's \
                 unixIsSharingShmNode check, \"close(open(DATABASE_PATHNAME))\", stops it): canary, damage \
                 or lost_ack required",
            );
        }
        self.expectation(cell)
    }

    fn configure(&self, _p: usize, cfg: &mut WriterConfig, scenario: &Scenario, _short: Option<ShortTrace>) -> Result<()> {
        let hazard = &scenario.hazard;
        cfg.hazard = Some(WriterHazard::LockCancel { target: self.target, interval_us_max: hazard.lock_cancel_interval_us_max });
        // Some cancelling writers stop at three quarters of the trial and close cleanly: the
        // close that writes what their own view of the WAL holds into the database. Which ones
        // follows from the writer's seed (drawn from the trial's stream), so a replay makes the
        // same choice.
        if self.lone_closers(cfg.pragmas.journal_mode, scenario)
            && cfg.seed % 100 < u64::from(hazard.lock_cancel_clean_close_percent)
        {
            cfg.workload.writer_lifetime_ms_max = hazard.lock_cancel_trial_ms * 3 / 4;
        }
        Ok(())
    }

    /// WAL lock cancellation runs with lone closers: transients started one at a time, at the
    /// `[hazard]` interval, so that each closes as the last connection it believes it is.
    fn topology(&self, cell: &Cell, scenario: &Scenario) -> TopologyConfig {
        let mut topology = scenario.topology.clone();
        let interval_ms = scenario.hazard.lock_cancel_closer_interval_ms;
        if self.lone_closers(cell.journal_mode, scenario) {
            topology.transient_rate_per_s = 1000.0 / interval_ms as f64;
            topology.transient_concurrency_max = 1;
        }
        topology
    }

    /// A lone-closer trial runs `[hazard] lock_cancel_trial_ms`, then every process still alive
    /// is killed; elsewhere the kill's moment.
    fn moment(&self, w: &mut dyn Window) -> Result<Moment> {
        if !self.lone_closers(w.cell().journal_mode, w.scenario()) {
            return kill_window(w);
        }
        let trial = Duration::from_millis(w.scenario().hazard.lock_cancel_trial_ms);
        w.plan().fault_delay_us = Some(trial.as_micros() as u64);
        w.run_until(Instant::now() + trial).map_err(|e| crate::error::Error::io("run the writers", e))?;
        Ok(Moment { grace: Duration::from_millis(w.scenario().kill.grace_ms), inconclusive: None, copy: None })
    }

    /// A cancelling writer that closed cleanly before the end is the trial as designed (only
    /// the database file's canceller is told to stop early, and only in WAL mode).
    fn may_finish(&self) -> bool {
        self.target == LockTarget::Db
    }

    fn stops_everyone(&self) -> bool {
        true
    }
}

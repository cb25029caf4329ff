//! `io_error`: the tracing VFS fails the victim's n-th write, sync or truncate with
//! SQLITE_IOERR_* or SQLITE_FULL, once or from then on; once the writer announces it saw the
//! error, the driver SIGKILLs it after a short draw. The writer must see the error and never
//! acknowledge that attempt; the database must check clean after reopening.

use crate::error::{Error, Result};
use crate::fault::vfs::Injection;
use crate::fault::{Fault, Moment, PlanCtx, Window};
use crate::scenario::expect::{Expectation, Level};
use crate::scenario::matrix::{Cell, SigtermBehaviour};
use crate::writer::protocol::{ANNOUNCE_INJECTED, EXIT_WRITER_IO, WriterConfig};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

pub struct IoError;

pub const FAULT: IoError = IoError;

impl Fault for IoError {
    fn describe(&self) -> &'static str {
        "a machine fault, not a hazard: the n-th write or sync fails (see results/durability-matrix.md)"
    }

    /// An I/O error the writer was told about: nothing acknowledged may be lost and the database
    /// must check clean after reopening, with an on-disk journal. Journal off/memory cannot roll
    /// back the failed transaction: no promise.
    fn expectation(&self, cell: &Cell) -> Expectation {
        if cell.journal_mode.is_journalled() {
            Expectation::uniform(Level::Forbidden, "I/O error: the failed transaction rolls back; nothing else changes")
        } else {
            Expectation::uniform(Level::Allowed, "I/O error with journal off/memory: no rollback, no promise")
        }
    }

    fn injection(&self, ctx: &PlanCtx<'_>, rng: &mut ChaCha8Rng) -> Injection {
        let io = &ctx.scenario.io_error;
        Injection::FailAt { op: rng.random_range(1..=io.op_max), error: io.error, persistent: io.persistent }
    }

    /// Every writer of the cell reports I/O errors and goes on (only the victim's VFS injects).
    fn configure_every(&self, cfg: &mut WriterConfig) {
        cfg.tolerate_io_errors = true;
    }

    fn moment(&self, w: &mut dyn Window) -> Result<Moment> {
        let timeout = Duration::from_millis(w.scenario().kill.ready_timeout_ms);
        let announced = w.victim_announcement(timeout).map_err(|e| Error::io("wait for the error", e))?;
        let inconclusive = match announced {
            Ok(ANNOUNCE_INJECTED) => None,
            Ok(other) => Some(format!("the injected operation was never reached (byte {other:?})")),
            Err(why) => Some(format!("the injected operation was never reached ({why})")),
        };
        let max_us = w.scenario().io_error.kill_after_ms_max * 1000;
        let delay_us = w.rng().random_range(0..=max_us);
        w.plan().fault_delay_us = Some(delay_us);
        w.run_until(Instant::now() + Duration::from_micros(delay_us)).map_err(|e| Error::io("run the writers", e))?;
        Ok(Moment { grace: Duration::from_millis(w.scenario().kill.grace_ms), inconclusive, copy: None })
    }

    /// Killed after the error, or gave up after persistent errors.
    fn intended_deaths(&self, _sigterm: Option<SigtermBehaviour>) -> Vec<String> {
        vec!["signal:SIGKILL".to_string(), format!("exit:{EXIT_WRITER_IO}")]
    }

    fn ends_writer_itself(&self, gave_up: bool) -> bool {
        gave_up
    }
}

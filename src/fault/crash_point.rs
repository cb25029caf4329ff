//! `crash_point`: the tracing VFS SIGKILLs the victim just before its n-th write, sync or
//! truncate: an exact process crash. With `points = "systematic"`, a short deterministic trace
//! is measured once per cell at the campaign's start (one writer, a fixed seed, `txns`
//! transactions on the cell's template), and trial k of the cell crashes at operation k + 1 of
//! it, so every failure replays exactly; `random` crashes an ordinary writer at a uniform
//! operation. The same promises as a kill.

use crate::base::dbfiles::{DB_NAME, reset_from};
use crate::base::process::DeathKind;
use crate::error::{Error, Result};
use crate::fault::kill::process_crash_expectation;
use crate::fault::trace;
use crate::fault::vfs::{Injection, VfsConfig};
use crate::fault::{Fault, Moment, PlanCtx, Prepare, ShortTrace, Window};
use crate::run::ids::writer_id;
use crate::scenario::CrashPoints;
use crate::scenario::Scenario;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::Cell;
use crate::writer::process;
use crate::writer::protocol::WriterConfig;
use nix::sys::signal::Signal;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

pub struct CrashPoint;

pub const FAULT: CrashPoint = CrashPoint;

impl Fault for CrashPoint {
    fn describe(&self) -> &'static str {
        "a machine fault, not a hazard: the writer is killed at an exact write or sync (see results/durability-matrix.md)"
    }

    fn expectation(&self, cell: &Cell) -> Expectation {
        process_crash_expectation(cell)
    }

    fn prepare(&self, p: &Prepare<'_>) -> Result<Option<ShortTrace>> {
        if p.scenario.crash_point.points != CrashPoints::Systematic {
            return Ok(None);
        }
        let ops = measure_short_trace(p)?;
        Ok(Some(ShortTrace { writer_seed: p.seed, ops }))
    }

    fn injection(&self, ctx: &PlanCtx<'_>, rng: &mut ChaCha8Rng) -> Injection {
        match (ctx.scenario.crash_point.points, ctx.short_trace) {
            (CrashPoints::Systematic, Some(short)) => {
                // Trial k of the cell (k-th round of the matrix) crashes at operation k + 1.
                let round = ctx.trial / ctx.cells;
                Injection::CrashAt { op: 1 + round % short.ops.max(1) }
            }
            (CrashPoints::Systematic, None) | (CrashPoints::Random, _) => {
                Injection::CrashAt { op: rng.random_range(1..=ctx.scenario.crash_point.op_max) }
            }
        }
    }

    /// The short trace is one writer's; an ordinary crash point hits one of the usual writers.
    fn long_writers(&self, scenario: &Scenario, short_trace: Option<ShortTrace>) -> u32 {
        if short_trace.is_some() { 1 } else { scenario.workload.writers }
    }

    fn configure(
        &self,
        _p: usize,
        cfg: &mut WriterConfig,
        scenario: &Scenario,
        short_trace: Option<ShortTrace>,
    ) -> Result<()> {
        if let Some(short) = short_trace {
            // The short trace's writer: same seed, same transactions, same operations, on one
            // connection.
            cfg.seed = short.writer_seed;
            cfg.workload.txns_max = u64::from(scenario.crash_point.txns);
            cfg.connections = 1;
        }
        Ok(())
    }

    /// The writer kills itself; waiting for it (up to the ready timeout) is the window.
    fn moment(&self, w: &mut dyn Window) -> Result<Moment> {
        Ok(Moment { grace: Duration::from_millis(w.scenario().kill.ready_timeout_ms), inconclusive: None, copy: None })
    }

    fn first_signal(&self) -> Option<Signal> {
        None
    }

    fn ends_writer_itself(&self, _gave_up: bool) -> bool {
        true
    }
}

/// Runs one writer (seed `p.seed`) on a copy of the template through the tracing VFS for
/// `txns` transactions to the end, and counts its operations. A writer with the same seed on
/// the same template performs the same operations in the same order, so crash point n of every
/// later trial is the same operation.
fn measure_short_trace(p: &Prepare<'_>) -> Result<u64> {
    let (sc, dir) = (p.scenario, p.dir);
    let io = |what: String| move |e: std::io::Error| Error::io(what, e);
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let db = dir.join(DB_NAME);
    reset_from(p.template, &db).map_err(io(format!("copy template to {}", db.display())))?;
    let trace_path = dir.join(crate::fault::trace::TRACE_FILE);
    let _ = trace::remove(&trace_path);
    let id = writer_id(0, 0);
    let mut cfg = WriterConfig::for_cell(p.cell, sc, &db, vec![dir.join("acks.log")], id, p.seed);
    cfg.vfs = Some(VfsConfig { writer: id, trace_path: trace_path.clone(), injection: Injection::None });
    cfg.workload.txns_max = u64::from(sc.crash_point.txns);
    let stderr = dir.join("stderr.log");
    let mut child = process::spawn(p.writer, &cfg, &stderr).map_err(io("spawn the short-trace writer".into()))?;
    let timeout = Duration::from_millis(sc.kill.ready_timeout_ms) * 4;
    let injected = process::inject(&mut [&mut child], None, timeout).map_err(io("wait".into()))?;
    let how = injected.deaths[0].2;
    if how != DeathKind::Exit(0) {
        let text = std::fs::read_to_string(&stderr).unwrap_or_default();
        return Err(Error::Harness(format!(
            "{}: the short-trace writer ended {} instead of finishing: {}",
            p.cell.id(),
            how.label(),
            text.trim()
        )));
    }
    let trace = trace::read(&trace_path).map_err(Error::Harness)?;
    Ok(trace.records.iter().filter(|r| r.is_counted_op()).count() as u64)
}

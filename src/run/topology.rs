//! The processes of one trial, shaped like the production case's (see the README): long-lived writer processes — the first
//! is the *gateway*, with `connections` connections each driven by its own thread — plus
//! *transient* writers that open, append a few messages and close, started at a rate. The fault
//! hits one *victim*; the others are *survivors* that keep writing through its death, and
//! whose next write must succeed.
//!
//! This module owns spawning, the transient schedule, and reaping; it decides nothing about
//! faults (`trial` does) and never opens the database. Every process it starts is reaped before
//! the fleet is dropped (`process::Writer`'s own drop guarantees it on every path).

use crate::base::process::DeathKind;
use crate::record::Role;
use crate::scenario::TopologyConfig;
use crate::writer::process::{self, Writer};
use crate::writer::program::Program;
use crate::writer::protocol::WriterConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One process of the trial.
pub struct Proc {
    pub writer: Writer,
    pub role: Role,
    /// Writer ids, one per connection.
    pub ids: Vec<u64>,
    pub ack_paths: Vec<PathBuf>,
    pub stderr: PathBuf,
    /// Filled when it was reaped by the fault or the stop.
    pub end: Option<Ended>,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    pub how: DeathKind,
    /// It had already exited when its signal was due.
    pub exited_before_signal: bool,
    /// SIGKILL had to follow after the grace period.
    pub escalated: bool,
    /// From its signal to its reap, in microseconds.
    pub signal_to_reap_us: u64,
}

/// The processes of a trial.
pub struct Fleet {
    pub procs: Vec<Proc>,
    next_id: u64,
    id_limit: u64,
    next_transient: Option<Instant>,
    transient_interval: Duration,
    transient_concurrency_max: usize,
    /// Transients that could not be started because the trial's writer ids ran out.
    pub transients_dropped: u32,
}

impl Fleet {
    /// `ids`: the trial's writer-id block (first id, one past the last usable one).
    pub fn new(ids: (u64, u64), topology: &TopologyConfig) -> Fleet {
        let interval = if topology.transient_rate_per_s > 0.0 {
            Duration::from_secs_f64(1.0 / topology.transient_rate_per_s)
        } else {
            Duration::MAX
        };
        Fleet {
            procs: Vec::new(),
            next_id: ids.0,
            id_limit: ids.1,
            next_transient: (topology.transient_rate_per_s > 0.0).then(Instant::now),
            transient_interval: interval,
            transient_concurrency_max: topology.transient_concurrency_max as usize,
            transients_dropped: 0,
        }
    }

    /// Spawns a writer process whose configuration `make` builds from its first writer id and
    /// ack files (one per connection), under `dir`.
    pub fn spawn(
        &mut self,
        program: &dyn Program,
        dir: &Path,
        role: Role,
        connections: u32,
        make: &mut dyn FnMut(u64, Vec<PathBuf>) -> WriterConfig,
    ) -> std::io::Result<Option<usize>> {
        let first = self.next_id;
        if first + u64::from(connections) > self.id_limit {
            return Ok(None);
        }
        self.next_id += u64::from(connections);
        let ids: Vec<u64> = (first..first + u64::from(connections)).collect();
        let ack_paths: Vec<PathBuf> = ids.iter().map(|id| dir.join(format!("acks-{id}.log"))).collect();
        for p in &ack_paths {
            std::fs::write(p, b"")?;
        }
        let stderr = dir.join(format!("stderr-{first}.log"));
        let cfg = make(first, ack_paths.clone());
        let writer = process::spawn(program, &cfg, &stderr)?;
        self.procs.push(Proc { writer, role, ids, ack_paths, stderr, end: None });
        Ok(Some(self.procs.len() - 1))
    }

    /// Starts the transients that are due and reaps the ones that finished. Returns the time
    /// of the next start, if any.
    pub fn service(
        &mut self,
        program: &dyn Program,
        dir: &Path,
        make: &mut dyn FnMut(u64, Vec<PathBuf>) -> WriterConfig,
    ) -> std::io::Result<Option<Instant>> {
        for p in &mut self.procs {
            if p.end.is_none() && p.role == Role::Transient && process::try_reap(&mut p.writer)? {
                let how = p.writer.death().expect("reaped");
                p.end = Some(Ended { how, exited_before_signal: true, escalated: false, signal_to_reap_us: 0 });
            }
        }
        let Some(due) = self.next_transient else { return Ok(None) };
        let now = Instant::now();
        if now >= due {
            let alive = self.procs.iter().filter(|p| p.role == Role::Transient && p.end.is_none()).count();
            if alive < self.transient_concurrency_max {
                match self.spawn(program, dir, Role::Transient, 1, make)? {
                    Some(_) => {}
                    None => self.transients_dropped += 1,
                }
            }
            self.next_transient = Some(due + self.transient_interval);
        }
        Ok(self.next_transient)
    }

    /// Runs the transient schedule until `until`, sleeping in between.
    pub fn run_until(
        &mut self,
        until: Instant,
        program: &dyn Program,
        dir: &Path,
        make: &mut dyn FnMut(u64, Vec<PathBuf>) -> WriterConfig,
    ) -> std::io::Result<()> {
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let next = self.service(program, dir, make)?;
            let wake = next.map_or(until, |n| n.min(until)).max(Instant::now());
            // Wake at least every 5 ms to reap finished transients.
            std::thread::sleep((wake - Instant::now()).min(Duration::from_millis(5)));
        }
    }

    /// The index of the victim (every trial has one).
    pub fn victim(&self) -> usize {
        self.procs.iter().position(|p| p.role == Role::Victim).expect("a trial has a victim")
    }

    /// The processes still running.
    pub fn live(&self) -> Vec<usize> {
        (0..self.procs.len()).filter(|&i| self.procs[i].end.is_none()).collect()
    }

    /// Sends `signal` (or nothing) to the processes `which`, waits up to `wait`, escalates to
    /// SIGKILL, reaps, and records how each ended. Returns the microseconds from the signal to
    /// the last reap.
    pub fn stop(
        &mut self,
        which: &[usize],
        signal: Option<nix::sys::signal::Signal>,
        wait: Duration,
    ) -> std::io::Result<u64> {
        let mut slots: Vec<usize> = which.iter().copied().filter(|&i| self.procs[i].end.is_none()).collect();
        slots.sort_unstable();
        slots.dedup();
        if slots.is_empty() {
            return Ok(0);
        }
        let injected = {
            let mut writers: Vec<&mut Writer> = self
                .procs
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| slots.contains(i))
                .map(|(_, p)| &mut p.writer)
                .collect();
            process::inject(&mut writers, signal, wait)?
        };
        // `inject` reports in the order of the slice: slots in increasing order.
        for (k, &i) in slots.iter().enumerate() {
            let id = self.procs[i].writer.writer_id;
            self.procs[i].end = Some(Ended {
                how: injected.deaths[k].2,
                exited_before_signal: injected.exited_before_fault.contains(&id),
                escalated: injected.escalated[k],
                signal_to_reap_us: injected.signal_to_reap_us[k],
            });
        }
        Ok(injected.kill_us)
    }
}

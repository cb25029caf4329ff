//! Fixtures for the reports' tests: cells, records, aggregators and a sample summary.

use crate::base::stats;
use crate::record::checks::ViolationKind;
use crate::record::{TrialOutcome, TrialRecord, TrialTiming};
use crate::report::aggregate::Aggregator;
use crate::report::summary::{RunMeta, Summary};
use crate::scenario::matrix::{
    Cell, CheckpointPolicy, FaultKind, JournalMode, KillTiming, SigtermBehaviour, Synchronous,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

pub(crate) fn wal() -> Cell {
    Cell {
        journal_mode: JournalMode::Wal,
        synchronous: Synchronous::Normal,
        fault: FaultKind::Kill,
        sigterm: Some(SigtermBehaviour::Graceful),
        checkpoint: Some(CheckpointPolicy::Auto),
        timing: KillTiming::Uniform,
        device: None,
        fullfsync: crate::scenario::matrix::FullFsync::Off,
        sqlite: crate::scenario::matrix::SqliteName::BUNDLED,
    }
}

pub(crate) fn off() -> Cell {
    Cell {
        journal_mode: JournalMode::Off,
        synchronous: Synchronous::Full,
        fault: FaultKind::SigkillOnly,
        sigterm: None,
        checkpoint: None,
        timing: KillTiming::Bulk,
        device: None,
        fullfsync: crate::scenario::matrix::FullFsync::Off,
        sqlite: crate::scenario::matrix::SqliteName::BUNDLED,
    }
}

pub(crate) fn delete() -> Cell {
    Cell { journal_mode: JournalMode::Delete, checkpoint: None, sigterm: Some(SigtermBehaviour::Default), ..wal() }
}

/// wal (forbids all), off (canary: integrity|fts|atomicity required), delete (forbids all).
pub(crate) fn aggregator() -> Aggregator {
    aggregator_of(&[wal(), off(), delete()])
}

/// An aggregator over these cells, each with its built-in expectation.
pub(crate) fn aggregator_of(cells: &[Cell]) -> Aggregator {
    Aggregator::new(cells.iter().map(|c| (*c, crate::fault::builtin(c))).collect())
}

pub(crate) fn meta() -> RunMeta {
    RunMeta {
        run_id: "20261122T101500Z-7".into(),
        seed: Some(7),
        scenario: "unit".into(),
        scenario_source: "embedded:unit".into(),
        started_at: "2026-11-22T10:15:00+00:00".into(),
        crashfuzz_version: "0.1.0".into(),
        sqlite_version: "3.54.1".into(),
        command: "crashfuzz run unit --seed 7".into(),
        min_states: 1,
        own_writer: None,
    }
}

pub(crate) fn record(trial: u64, cell: &Cell, violations: &[ViolationKind], latencies_us: &[u64]) -> TrialRecord {
    let mut h = stats::new_latency_histogram();
    for &us in latencies_us {
        h.saturating_record(us);
    }
    let violating = !violations.is_empty();
    TrialRecord {
        trial,
        seed: trial * 31 + 1,
        started_ms: trial * 40,
        cell: cell.id(),
        outcome: TrialOutcome::Checked,
        deaths: Vec::new(),
        acks: BTreeMap::new(),
        commits: latencies_us.len() as u64,
        fault_at_us: 5_000,
        checks: Vec::new(),
        violations: violations.to_vec(),
        commit_latency_hist: if h.is_empty() { String::new() } else { stats::encode_histogram(&h) },
        checkpoints: Vec::new(),
        shutdowns: Vec::new(),
        timing_us: TrialTiming { setup: 900, spawn: 2_000, write: 5_000, kill: 300, check: 12_000 + trial },
        loadavg_1m: 1.5 + (trial % 7) as f64,
        kept_failure: violating.then(|| format!("failures/{trial}")),
        replay: violating.then(|| {
            format!("crashfuzz replay out/failures/{trial}  # or: crashfuzz run unit --seed 7 --trial {trial}")
        }),
        images: Vec::new(),
        injection: None,
        explanation: Vec::new(),
        busy_retries: 0,
        transients: 0,
        survivors: Vec::new(),
        continued_from: None,
        db_bytes_at_start: 0,
        plan: Default::default(),
        writer_crashes: Vec::new(),
        protocol: Vec::new(),
        writer_sqlite: None,
        cross_version: Vec::new(),
        closes: 0,
        closes_alone: 0,
    }
}

pub(crate) fn inconclusive(trial: u64, cell: &Cell, reason: &str) -> TrialRecord {
    TrialRecord { outcome: TrialOutcome::Inconclusive { reason: reason.into() }, ..record(trial, cell, &[], &[40]) }
}

/// One generated trial: (cell, inconclusive, violation bitmask, latencies, load average).
pub(crate) type Gen = (usize, bool, u16, Vec<u64>, Option<f64>);

pub(crate) fn gen_records() -> impl Strategy<Value = Vec<TrialRecord>> {
    let one = (
        0usize..3,
        proptest::bool::weighted(0.2),
        any::<u16>(),
        proptest::collection::vec(1u64..5_000_000, 0..6),
        proptest::option::of(0.0f64..64.0),
    );
    proptest::collection::vec(one, 0..40).prop_map(|gens: Vec<Gen>| {
        let cells = [wal(), off(), delete()];
        gens.into_iter()
            .enumerate()
            .map(|(t, (c, inc, mask, lat, load))| {
                let kinds: Vec<ViolationKind> = ViolationKind::ALL
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, &k)| k)
                    .collect();
                let mut r = if inc {
                    TrialRecord {
                        outcome: TrialOutcome::Inconclusive { reason: format!("r{}", mask % 5) },
                        ..record(t as u64, &cells[c], &[], &lat)
                    }
                } else {
                    record(t as u64, &cells[c], &kinds, &lat)
                };
                r.loadavg_1m = load.unwrap_or(f64::NAN);
                r
            })
            .collect()
    })
}

pub(crate) fn sample_summary() -> Summary {
    let mut agg = aggregator();
    for t in 0..45u64 {
        agg.add(&record(t * 3, &wal(), &[], &[120 + t, 480, 2_300]));
    }
    for t in 0..40u64 {
        let v: &[ViolationKind] =
            if t % 4 == 0 { &[ViolationKind::Integrity] } else { &[ViolationKind::Atomicity, ViolationKind::Fts] };
        agg.add(&record(t * 3 + 1, &off(), v, &[15, 30]));
    }
    for t in 0..40u64 {
        let v: &[ViolationKind] = if t % 13 == 5 { &[ViolationKind::LostAck] } else { &[] };
        agg.add(&record(t * 3 + 2, &delete(), v, &[700, 900, 1_400]));
    }
    agg.add(&inconclusive(999, &delete(), "writer 100099 finished its work before the fault"));
    agg.summary(&meta(), 12.34, false)
}

//! What a kill trial costs crashfuzz itself, apart from the writer's work and the check
//! (criterion), so that a regression in the harness share shows: the database set up from the
//! cell's template, one writer process started and ready, and the kill and reap that end it.
//!
//! | benchmark | one iteration |
//! |---|---|
//! | `harness_share/setup` | the lane's database cleared and the cell's template copied in (the default workload's, seeded with 100 messages) |
//! | `harness_share/spawn_ready` | crashfuzz's writer forked by the fork server in its own process group and waited for until it announced it is ready (connection open, pragmas set and read back) |
//! | `harness_share/spawn_ready_exec` | the same with the writer exec'd (`CRASHFUZZ_FORK_SERVER=0`), as before the fork server |
//! | `harness_share/kill_reap` | SIGKILL to that writer's process group and its reap |
//!
//! The writer is gated and never let through its gate: no transaction runs, so each figure is
//! the harness's alone. Untimed: the copy before a spawn, the spawn before a kill.
//!
//!   cargo bench --bench harness_share     # about half a minute on 2 cores

use crashfuzz::base::dbfiles::reset_from;
use crashfuzz::writer::fork_server;
use crashfuzz::writer::pragmas::Pragmas;
use crashfuzz::writer::process::{self, Announcement, Writer};
use crashfuzz::writer::program::{BuiltIn, Program};
use crashfuzz::writer::protocol::{ANNOUNCE_READY, WriterConfig};
use criterion::Criterion;
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::{Duration, Instant};

/// The seed of the template and of the writer.
const SEED: u64 = 0xc4ec_0002;
/// Longer than any writer needs to get ready on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    let dir = crashfuzz::report::pages::bench::bench_dir().join("harness_share");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let dir = dir.canonicalize().expect("the bench directory resolves");
    let scenario = crashfuzz::scenario::parse(
        "[[matrix]]\njournal_mode = [\"wal\"]\nsynchronous = [\"full\"]\nfault = [\"kill\"]\n",
        "harness-share.toml",
    )
    .expect("the bench's scenario parses");
    let cell = scenario.cells().into_iter().next().expect("one cell");
    let program = BuiltIn::bundled(env!("CARGO_BIN_EXE_crashfuzz").into());
    let template = dir.join("template.sqlite");
    let pragmas = Pragmas::for_cell(&cell, &scenario.workload);
    program.make_template(&template, &pragmas, &scenario.workload, SEED).expect("make the template");
    let db = dir.join("db.sqlite");
    let stderr = dir.join("writer.stderr");
    let mut cfg = WriterConfig::for_cell(&cell, &scenario, &db, vec![dir.join("acks")], 1000, SEED);
    cfg.gated = true;

    let setup = || {
        reset_from(&template, &db).expect("copy the template");
    };
    let spawn_ready = || {
        let mut writer = process::spawn(&program, &cfg, &stderr).expect("spawn the writer");
        match process::wait_announcement(&mut writer, READY_TIMEOUT).expect("wait for the writer") {
            Announcement::Byte(ANNOUNCE_READY) => writer,
            other => panic!("the writer did not get ready ({other:?}): {}", said(&stderr)),
        }
    };
    let kill_reap = |writer: &mut Writer| {
        process::inject(&mut [writer], Some(Signal::SIGKILL), READY_TIMEOUT).expect("kill and reap the writer");
    };

    let mut c = Criterion::default().sample_size(30).configure_from_args();
    let mut group = c.benchmark_group("harness_share");
    group.bench_function("setup", |b| b.iter(setup));
    let time_spawn_ready = |iters: u64| {
        let mut spent = Duration::ZERO;
        for _ in 0..iters {
            setup();
            let started = Instant::now();
            let mut writer = spawn_ready();
            spent += started.elapsed();
            kill_reap(&mut writer);
        }
        spent
    };
    group.bench_function("spawn_ready", |b| b.iter_custom(time_spawn_ready));
    // The same, each writer exec'd instead of forked by the lane's fork server.
    group.bench_function("spawn_ready_exec", |b| {
        // SAFETY: criterion runs this bench on one thread; nothing reads the environment
        // concurrently.
        unsafe { std::env::set_var(fork_server::FORK_SERVER_ENV, "0") };
        b.iter_custom(time_spawn_ready);
        // SAFETY: as above.
        unsafe { std::env::remove_var(fork_server::FORK_SERVER_ENV) };
    });
    group.bench_function("kill_reap", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                setup();
                let mut writer = spawn_ready();
                let started = Instant::now();
                kill_reap(&mut writer);
                spent += started.elapsed();
            }
            spent
        })
    });
    group.finish();
    c.final_summary();
}

/// The writer's last words, for a failure's message.
fn said(stderr: &Path) -> String {
    std::fs::read_to_string(stderr).unwrap_or_default().trim().to_string()
}

//! The load generator: burner processes that keep the
//! 1-minute load average at a target, so kills and power losses happen under the contention of
//! the production case (a load average of about 14).
//!
//! A *burner* is this binary re-executed as `crashfuzz __burner`, in its own process group,
//! dying with the driver (`PR_SET_PDEATHSIG`), niced as the scenario says: either a busy loop
//! (always runnable) or, for I/O pressure, a 4 KiB write + fsync loop on the work directory's
//! file system (in uninterruptible sleep during each fsync, which Linux also counts). Both
//! count in the load average, which is the number of runnable plus uninterruptible tasks,
//! averaged by the kernel every 5 s with a 1-minute exponential decay.
//!
//! The controller is a pure function ([`burners_wanted`]) of the target, the load average and
//! its own bias estimate: from the kernel's update rule `L' = L·e + n·(1 − e)` (`e = exp(−5/60)`)
//! it asks for the number of tasks that would put the next update on target (a dead-beat
//! controller), capped, and corrects for the load it does not own (writers, the driver, other
//! work) with a slow integral term. It is simulated against the kernel's rule in the tests.
//! The thread that runs it owns every burner: it starts and kills them, and kills all of them
//! when it stops; nothing else touches them except a second Ctrl-C (through the live-group
//! registry of `kill`).

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The hidden subcommand that runs a burner.
pub const BURNER_SUBCOMMAND: &str = "__burner";

/// The kernel's decay factor per 5-second load-average update for the 1-minute average.
pub fn decay_per_update() -> f64 {
    (-5.0f64 / 60.0).exp()
}

/// `[load]`: the load the campaign runs under.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// The 1-minute load average to hold; 0 turns the generator off.
    pub target_loadavg: f64,
    /// Upper bound on burner processes.
    pub burners_max: u32,
    /// Niceness of the burners (0: they compete with the writers as equals, as the production
    /// case's load did; 19: they only count).
    pub nice: i32,
    /// Make one burner in four an fsync loop on the work directory's file system.
    pub io_pressure: bool,
    /// How long trials wait for the target at the start, in seconds; when it passes, trials
    /// start anyway and the summary says so.
    pub warmup_timeout_s: u64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig { target_loadavg: 0.0, burners_max: 64, nice: 0, io_pressure: false, warmup_timeout_s: 90 }
    }
}

/// The fraction of the target that counts as "reached" for the warm-up.
pub const REACHED_FRACTION: f64 = 0.9;

/// The controller's memory between ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Controller {
    /// Tasks that count in the load average but are not ours, as estimated from the error.
    pub foreign_tasks: f64,
    /// The load average seen at the last tick (updates come every 5 s; the integral term only
    /// learns from a new value).
    pub last_load: f64,
    /// The target was reached once (before that, no integral action: the error is warm-up,
    /// not bias).
    pub reached: bool,
}

/// How many burners to run now, given the target, the current 1-minute load average and the
/// number of burners running.
pub fn burners_wanted(c: &mut Controller, target: f64, load: f64, burners: usize, max: usize) -> usize {
    let e = decay_per_update();
    let fresh = load != c.last_load;
    c.last_load = load;
    if load >= target * REACHED_FRACTION {
        c.reached = true;
    }
    if fresh && c.reached {
        // At steady state load = burners + foreign: learn the foreign part slowly (a load
        // average is noisy and lags; a gain of 0.3 settles in a few updates without ringing).
        let observed_foreign = load - burners as f64;
        c.foreign_tasks += 0.3 * (observed_foreign - c.foreign_tasks);
        c.foreign_tasks = c.foreign_tasks.clamp(0.0, target);
    }
    // Dead-beat: the number of tasks that brings the next update exactly to the target.
    let tasks = (target - load * e) / (1.0 - e);
    let ours = tasks - c.foreign_tasks;
    ours.round().clamp(0.0, max as f64) as usize
}

/// Entry point of `crashfuzz __burner KIND PARENT_PID NICE [PATH]`; returns the exit code.
pub fn burner_main(args: &[String]) -> i32 {
    let (Some(kind), Some(parent), Some(nice)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("burner: usage: {BURNER_SUBCOMMAND} cpu|io PARENT_PID NICE [PATH]");
        return 3;
    };
    let (Ok(parent), Ok(nice)) = (parent.parse::<i32>(), nice.parse::<i32>()) else {
        eprintln!("burner: bad arguments {args:?}");
        return 3;
    };
    // Die with the driver; the getppid check closes the race with a driver that died first.
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || nix::unistd::getppid().as_raw() != parent {
        return 3;
    }
    // SAFETY: nice(2) only changes this process's scheduling priority.
    unsafe { nix::libc::nice(nice) };
    match (kind.as_str(), args.get(3)) {
        ("cpu", _) => {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            loop {
                // A busy loop the optimiser cannot remove: always runnable.
                x = std::hint::black_box(x.rotate_left(7).wrapping_mul(0xff51_afd7_ed55_8ccd));
            }
        }
        ("io", Some(path)) => io_loop(Path::new(path)),
        _ => {
            eprintln!("burner: unknown kind {kind:?}");
            3
        }
    }
}

/// Write 4 KiB and fsync, forever, over a 16 MiB file (bounded disk use).
fn io_loop(path: &Path) -> i32 {
    const BLOCK: usize = 4096;
    const BLOCKS: u64 = 4096;
    let file = match std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("burner: {}: {e}", path.display());
            return 3;
        }
    };
    let block = [0x5au8; BLOCK];
    for i in 0u64.. {
        if file.write_all_at(&block, (i % BLOCKS) * BLOCK as u64).and_then(|()| file.sync_all()).is_err() {
            return 3;
        }
    }
    0
}

/// What the generator reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadStatus {
    pub elapsed_s: f64,
    pub loadavg_1m: f64,
    pub burners: usize,
    /// The load average reached the target's [`REACHED_FRACTION`], after this many seconds.
    pub reached_after_s: Option<f64>,
}

/// A running load generator: a controller thread and its burners.
pub struct LoadGen {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<LoadStatus>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn spawn_burner(exe: &Path, cfg: &LoadConfig, io_file: Option<&Path>) -> std::io::Result<Child> {
    let mut command = Command::new(exe);
    command
        .arg(BURNER_SUBCOMMAND)
        .arg(if io_file.is_some() { "io" } else { "cpu" })
        .arg(std::process::id().to_string())
        .arg(cfg.nice.to_string())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(path) = io_file {
        command.arg(path);
    }
    crate::base::process::spawn_registered(&mut command)
}

fn loadavg_1m() -> f64 {
    sysinfo::System::load_average().map(|l| l.one).unwrap_or(f64::NAN)
}

impl LoadGen {
    /// Starts the controller; `dir` holds the I/O burners' files.
    pub fn start(exe: PathBuf, cfg: LoadConfig, dir: PathBuf) -> LoadGen {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(LoadStatus::default()));
        let (stop_c, status_c) = (stop.clone(), status.clone());
        let thread = std::thread::Builder::new()
            .name("load".into())
            .spawn(move || control(&exe, &cfg, &dir, &stop_c, &status_c))
            .expect("spawn the load thread");
        LoadGen { stop, status, thread: Some(thread) }
    }

    pub fn status(&self) -> LoadStatus {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the target is reached, `timeout` passes or `stop` is set, calling `tick`
    /// every second. Returns the status at the end.
    pub fn wait_warm(&self, timeout: Duration, stop: &AtomicBool, tick: &mut dyn FnMut(&LoadStatus)) -> LoadStatus {
        let t0 = Instant::now();
        loop {
            let s = self.status();
            tick(&s);
            if s.reached_after_s.is_some() || t0.elapsed() >= timeout || stop.load(Ordering::SeqCst) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Stops the controller, which kills and reaps every burner.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Kills a burner's process group and reaps it.
fn retire(mut child: Child) {
    let pid = child.id() as i32;
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = child.wait();
    crate::base::process::unregister_group(pid);
}

fn control(exe: &Path, cfg: &LoadConfig, dir: &Path, stop: &AtomicBool, status: &Mutex<LoadStatus>) {
    let t0 = Instant::now();
    let mut burners: Vec<Child> = Vec::new();
    let mut controller = Controller::default();
    let mut reached_after_s = None;
    let max = cfg.burners_max as usize;
    let mut spawn_failures = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let load = loadavg_1m();
        if reached_after_s.is_none() && load >= cfg.target_loadavg * REACHED_FRACTION {
            reached_after_s = Some(t0.elapsed().as_secs_f64());
        }
        let want = if load.is_nan() {
            0
        } else {
            burners_wanted(&mut controller, cfg.target_loadavg, load, burners.len(), max)
        };
        while burners.len() > want {
            retire(burners.pop().expect("non-empty"));
        }
        while burners.len() < want && spawn_failures < 10 {
            // Every fourth burner does I/O when asked: enough to press on the file system
            // without making the load mostly uninterruptible sleep.
            let io = cfg.io_pressure && burners.len() % 4 == 3;
            let file = dir.join(format!("io-burner-{}.bin", burners.len()));
            match spawn_burner(exe, cfg, io.then_some(file.as_path())) {
                Ok(child) => burners.push(child),
                Err(e) => {
                    spawn_failures += 1;
                    eprintln!("crashfuzz: load: cannot start a burner: {e}");
                    break;
                }
            }
        }
        *status.lock().unwrap_or_else(|p| p.into_inner()) = LoadStatus {
            elapsed_s: t0.elapsed().as_secs_f64(),
            loadavg_1m: load,
            burners: burners.len(),
            reached_after_s,
        };
        // One decision a second; the kernel updates the average every 5 s.
        for _ in 0..10 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for child in burners {
        retire(child);
    }
}

/// What a standalone run of the generator achieved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Held {
    /// Seconds until the load average first reached [`REACHED_FRACTION`] of the target.
    pub reached_after_s: Option<f64>,
    /// The lowest and highest load average seen after that.
    pub range_after: Option<(f64, f64)>,
}

/// `crashfuzz load --target N --duration S`: runs the generator alone, printing the load
/// average as it goes.
pub fn run_standalone(exe: PathBuf, cfg: LoadConfig, duration: Duration, stop: &AtomicBool) -> std::io::Result<Held> {
    crate::base::scratch::sweep_and_say(None);
    let dir = crate::base::scratch::create(None, "load-")?;
    let generator = LoadGen::start(exe, cfg.clone(), dir.path().to_path_buf());
    let t0 = Instant::now();
    let mut held: Option<(f64, f64)> = None;
    let mut last_print = None;
    let mut out = std::io::stdout();
    while t0.elapsed() < duration && !stop.load(Ordering::SeqCst) {
        let s = generator.status();
        let second = t0.elapsed().as_secs();
        if last_print != Some(second) && second % 5 == 0 {
            last_print = Some(second);
            let _ = writeln!(
                out,
                "t={:>4}s  load1={:>6.2}  target={:.1}  burners={:>3}{}",
                second,
                s.loadavg_1m,
                cfg.target_loadavg,
                s.burners,
                match s.reached_after_s {
                    Some(r) => format!("  (reached {:.0}% of target after {r:.0} s)", REACHED_FRACTION * 100.0),
                    None => String::new(),
                }
            );
        }
        if s.reached_after_s.is_some() && !s.loadavg_1m.is_nan() {
            held = Some(
                held.map_or((s.loadavg_1m, s.loadavg_1m), |(lo, hi)| (lo.min(s.loadavg_1m), hi.max(s.loadavg_1m))),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let reached_after_s = generator.status().reached_after_s;
    generator.stop();
    Ok(Held { reached_after_s, range_after: held })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The kernel's rule, applied every 5 s; the controller decides every second.
    fn simulate(target: f64, foreign: f64, max: usize, seconds: u32) -> Vec<f64> {
        let e = decay_per_update();
        let (mut load, mut burners, mut c) = (0.0f64, 0usize, Controller::default());
        let mut trace = Vec::new();
        for t in 0..seconds {
            if t % 5 == 4 {
                load = load * e + (burners as f64 + foreign) * (1.0 - e);
            }
            burners = burners_wanted(&mut c, target, load, burners, max);
            trace.push(load);
        }
        trace
    }

    proptest! {
        /// Against the kernel's own averaging, with up to three tasks the controller does not
        /// own: 90% of the target within 90 s, then within ±20% of it for good.
        #[test]
        fn reaches_the_target_in_90_s_and_holds_it(target in 2.0f64..30.0, foreign in 0.0f64..3.0) {
            let max = (target * 4.0) as usize + 4;
            let trace = simulate(target, foreign.min(target * 0.5), max, 600);
            let reached = trace.iter().position(|&l| l >= target * REACHED_FRACTION);
            prop_assert!(reached.is_some_and(|s| s <= 90), "{target} {foreign}: {trace:?}");
            for (t, &l) in trace.iter().enumerate().skip(reached.unwrap() + 1) {
                prop_assert!((l - target).abs() <= target * 0.2, "t={} load {} target {}", t, l, target);
            }
        }
    }

    #[test]
    fn nothing_to_do_at_target_zero() {
        let mut c = Controller::default();
        assert_eq!(burners_wanted(&mut c, 0.0, 3.0, 5, 64), 0);
    }
}

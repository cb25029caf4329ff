//! Child processes of any kind: the registry of live process groups that a second Ctrl-C or a
//! failing driver kills at once, spawning into it, bounded waits, running a tool to its end with
//! its output captured, and how a reaped process ended ([`DeathKind`]).
//!
//! Every wait here is bounded. Leaf module: it imports nothing from the crate.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process groups of writers spawned and not yet reaped.
pub static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// SIGKILLs every live writer group (second Ctrl-C, or a driver error path).
pub fn kill_all_live() {
    let groups = LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

pub fn unregister(pgid: i32) {
    LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner()).remove(&pgid);
}

/// Forgets a process group reaped elsewhere (the load generator's burners).
pub fn unregister_group(pgid: i32) {
    unregister(pgid);
}

/// A pidfd of `pid`, readable once it exits (Linux 5.3).
pub fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Spawns `command` (which must put the child in its own process group) and registers the
/// group under the lock, so that a concurrent [`kill_all_live`] cannot miss it.
pub fn spawn_registered(command: &mut Command) -> std::io::Result<Child> {
    let mut live = LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    let child = command.spawn()?;
    live.insert(i32::try_from(child.id()).expect("pid fits in i32"));
    Ok(child)
}

/// Waits up to `limit` for `child` to exit (and reaps it); `None` when it is still running.
/// Polls, with a pause that grows from 1 to 50 ms: the children waited for here (a compiler,
/// cargo, an `__sql` child) are not trial writers whose death must be seen to the millisecond.
pub fn wait_within(child: &mut Child, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
    const PAUSE_MAX: Duration = Duration::from_millis(50);
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(PAUSE_MAX);
    }
}

/// Runs `command` to its end within `limit`, stdin closed and its output captured in anonymous
/// files (no pipe to fill, no reader thread); `None` when it ran out of time and was killed.
/// With `own_group`, the child gets its own process group, registered in [`LIVE_GROUPS`] until
/// reaped, and the whole group is killed at the deadline; without, it stays in crashfuzz's
/// group (a build tool that the terminal's Ctrl-C must reach) and only it is killed.
pub fn run_captured(
    command: &mut Command,
    limit: Duration,
    own_group: bool,
) -> std::io::Result<Option<std::process::Output>> {
    use std::io::Seek;
    let mut stdout = tempfile::tempfile()?;
    let mut stderr = tempfile::tempfile()?;
    command.stdin(Stdio::null()).stdout(stdout.try_clone()?).stderr(stderr.try_clone()?);
    let mut child = if own_group { spawn_registered(command.process_group(0))? } else { command.spawn()? };
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    let waited = wait_within(&mut child, limit);
    if !matches!(waited, Ok(Some(_))) {
        if own_group {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        } else {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
    if own_group {
        unregister(pid);
    }
    let Some(status) = waited? else {
        return Ok(None);
    };
    let read = |file: &mut File| -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        file.rewind()?;
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    Ok(Some(std::process::Output { status, stdout: read(&mut stdout)?, stderr: read(&mut stderr)? }))
}

/// How a writer process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeathKind {
    Exit(i32),
    Signal(i32),
}

impl DeathKind {
    pub fn from_status(status: ExitStatus) -> DeathKind {
        match (status.code(), status.signal()) {
            (Some(code), _) => DeathKind::Exit(code),
            (None, Some(sig)) => DeathKind::Signal(sig),
            (None, None) => unreachable!("a reaped child either exited or was signalled"),
        }
    }

    /// `exit:0`, `signal:SIGKILL`, ...
    pub fn label(self) -> String {
        match self {
            DeathKind::Exit(code) => format!("exit:{code}"),
            DeathKind::Signal(sig) => match Signal::try_from(sig) {
                Ok(s) => format!("signal:{}", s.as_str()),
                Err(_) => format!("signal:{sig}"),
            },
        }
    }
}

/// This executable, as its children should start it: `/proc/self/exe` where Linux offers it,
/// which names the running program even after its file was replaced (a `cargo build` during a
/// long campaign), else the path it was started from.
pub fn own_exe() -> std::io::Result<std::path::PathBuf> {
    let proc_self = std::path::Path::new("/proc/self/exe");
    if proc_self.exists() { Ok(proc_self.to_path_buf()) } else { std::env::current_exe() }
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

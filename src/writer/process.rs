//! A writer process seen from the driver: spawn it in its own process group, open its start
//! gate, wait for its announcements with a deadline, send the fault's first signal (SIGTERM or
//! SIGKILL), escalate to SIGKILL after the grace period, reap, and classify how it died.
//!
//! Every wait here is bounded. A live writer's process group is registered in
//! [`LIVE_GROUPS`] from spawn until reap, so a second Ctrl-C can SIGKILL everything at
//! once.

use crate::base::process::{DeathKind, LIVE_GROUPS, micros, pidfd_open, unregister};
use crate::writer::fork_server::{self, ForkServer};
use crate::writer::program::{Channel, Program};
use crate::writer::protocol::WriterConfig;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::cell::RefCell;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::time::{Duration, Instant};

thread_local! {
    /// This thread's fork server, started at its first forked writer (a lane is one thread, so
    /// one server per lane), stopped when the thread ends.
    static FORK_SERVER: RefCell<Option<ForkServer>> = const { RefCell::new(None) };
}

/// A running writer process.
pub struct Writer {
    pub writer_id: u64,
    handle: Handle,
    /// The announcements (`None` for a program that announces through its acknowledgement
    /// file: its stdout goes to its log).
    stdout: Option<ChildStdout>,
    /// Without announcements, a pidfd (`pidfd_open(2)`): readable once the process exited.
    pidfd: Option<OwnedFd>,
    /// The start gate of a gated writer (dropped, i.e. closed, once opened).
    gate: Option<ChildStdin>,
    /// Set once reaped.
    status: Option<ExitStatus>,
}

/// Who reaps a writer.
enum Handle {
    /// Spawned by this process (exec'd): reaped here.
    Spawned(Child),
    /// Forked by this thread's fork server, which reaps it and sends its status.
    Forked(i32),
}

impl Handle {
    fn pid(&self) -> i32 {
        match self {
            Handle::Spawned(child) => i32::try_from(child.id()).expect("pid fits in i32"),
            Handle::Forked(pid) => *pid,
        }
    }

    fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Handle::Spawned(child) => child.wait(),
            Handle::Forked(pid) => with_fork_server(|server| server.wait(*pid)),
        }
    }

    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match self {
            Handle::Spawned(child) => child.try_wait(),
            Handle::Forked(pid) => with_fork_server(|server| server.try_wait(*pid)),
        }
    }
}

/// Runs `f` on this thread's fork server (an error if it has none: a forked writer is waited
/// for on the thread that forked it).
fn with_fork_server<T>(f: impl FnOnce(&mut ForkServer) -> std::io::Result<T>) -> std::io::Result<T> {
    FORK_SERVER.with_borrow_mut(|slot| match slot.as_mut() {
        Some(server) => f(server),
        None => Err(std::io::Error::other("no fork server on this thread")),
    })
}

impl Writer {
    pub fn pid(&self) -> i32 {
        self.handle.pid()
    }

    /// How it ended, once reaped.
    pub fn death(&self) -> Option<DeathKind> {
        self.status.map(DeathKind::from_status)
    }
}

impl Drop for Writer {
    /// A writer is never left running or unreaped, whatever path dropped it.
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.handle.wait();
            unregister(self.pid());
        }
    }
}

/// Spawns `program`'s writer configured by `cfg` in a new process group (pgid = its pid),
/// stdout piped for the announcements (to `stderr_path` too for a program that announces
/// through its acknowledgement file), stderr to `stderr_path`. crashfuzz's own writer on the
/// SQLite linked into this executable is forked by this thread's fork server
/// ([`fork_server`]) unless `CRASHFUZZ_FORK_SERVER=0`; otherwise std spawns it with
/// posix_spawn, so the driver never forks while holding anything. An application's program is
/// forked, its child doing only async-signal-safe calls before exec.
pub fn spawn(program: &dyn Program, cfg: &WriterConfig, stderr_path: &Path) -> std::io::Result<Writer> {
    if let (Some(exe), Channel::Announcing) = (program.fork_exe(), program.channel())
        && fork_server::enabled()
    {
        return spawn_forked(exe, cfg, stderr_path);
    }
    let stderr = File::create(stderr_path)?;
    let mut command = program.command(cfg);
    let (gated, stdout) = match program.channel() {
        Channel::Announcing => (cfg.gated, Stdio::piped()),
        Channel::AckLines => (false, Stdio::from(stderr.try_clone()?)),
    };
    command
        .process_group(0)
        // The start gate: a gated writer waits for one byte here once it is ready.
        .stdin(if gated { Stdio::piped() } else { Stdio::null() })
        .stdout(stdout)
        .stderr(Stdio::from(stderr));
    // Register before anyone can see the pid, under the lock, so a concurrent kill_all_live
    // cannot miss it.
    let mut live = LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    let mut child = command.spawn()?;
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    live.insert(pid);
    drop(live);
    let stdout = child.stdout.take();
    let gate = child.stdin.take();
    let pidfd = match stdout {
        Some(_) => None,
        None => match pidfd_open(pid) {
            Ok(fd) => Some(fd),
            Err(e) => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = child.wait();
                unregister(pid);
                return Err(e);
            }
        },
    };
    Ok(Writer { writer_id: cfg.writer_id, handle: Handle::Spawned(child), stdout, pidfd, gate, status: None })
}

/// [`spawn`] through this thread's fork server (started, or restarted for another
/// executable, here): the same streams, the same process group, `parent_pid` the server's.
fn spawn_forked(exe: &Path, cfg: &WriterConfig, stderr_path: &Path) -> std::io::Result<Writer> {
    let stderr = File::create(stderr_path)?;
    let (announce_read, announce_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (stdin, gate): (OwnedFd, Option<OwnedFd>) = if cfg.gated {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        (read, Some(write))
    } else {
        (File::open("/dev/null")?.into(), None)
    };
    let pid = FORK_SERVER.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|server| server.exe() != exe) {
            *slot = None;
            *slot = Some(ForkServer::start(exe)?);
        }
        let server = slot.as_mut().expect("started above");
        let cfg = WriterConfig { parent_pid: server.pid(), ..cfg.clone() };
        let config = serde_json::to_string(&cfg).expect("writer config serializes");
        // Registered under the lock, as in `spawn`.
        let mut live = LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner());
        match server.fork(&config, [stdin.as_fd(), announce_write.as_fd(), stderr.as_fd()]) {
            Ok(pid) => {
                live.insert(pid);
                Ok(pid)
            }
            Err(e) => {
                // A server that failed is not trusted again: the next writer starts a new one.
                drop(live);
                *slot = None;
                Err(e)
            }
        }
    })?;
    // The writer's ends are its own now: with this copy closed, its stdout hangs up when it dies.
    drop(announce_write);
    Ok(Writer {
        writer_id: cfg.writer_id,
        handle: Handle::Forked(pid),
        stdout: Some(ChildStdout::from(announce_read)),
        pidfd: None,
        gate: gate.map(ChildStdin::from),
        status: None,
    })
}

/// Opens a gated writer's start gate (a writer that died meanwhile is found at its reap).
pub fn open_gate(w: &mut Writer) {
    if let Some(mut gate) = w.gate.take() {
        let _ = std::io::Write::write_all(&mut gate, b"G");
    }
}

/// What waiting for an announcement byte produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Announcement {
    Byte(u8),
    /// The writer closed stdout (it exited) before announcing.
    Closed,
    TimedOut,
}

/// Waits up to `timeout` for the next byte on the writer's stdout.
pub fn wait_announcement(w: &mut Writer, timeout: Duration) -> std::io::Result<Announcement> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Announcement::TimedOut);
        }
        let ms = u16::try_from(left.as_millis().clamp(1, 10_000)).expect("clamped");
        let Some(stdout) = w.stdout.as_mut() else {
            return Err(std::io::Error::other("this program announces through its acknowledgement file"));
        };
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {
                let mut byte = [0u8; 1];
                return match stdout.read(&mut byte)? {
                    0 => Ok(Announcement::Closed),
                    _ => Ok(Announcement::Byte(byte[0])),
                };
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// True if the writer has already exited (it is then reaped).
pub fn try_reap(w: &mut Writer) -> std::io::Result<bool> {
    if w.status.is_some() {
        return Ok(true);
    }
    match w.handle.try_wait()? {
        Some(status) => {
            w.status = Some(status);
            unregister(w.pid());
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The result of injecting the fault into a set of writers.
#[derive(Debug)]
pub struct Injected {
    /// Per writer, in the order given: how it died.
    pub deaths: Vec<(u64, i32, DeathKind)>,
    /// Writers that had already exited when the first signal was due.
    pub exited_before_fault: Vec<u64>,
    /// SIGTERM sent to escalation SIGKILL, or to the last reap, in microseconds.
    pub kill_us: u64,
    /// Per writer: SIGKILL had to be sent after the grace period.
    pub escalated: Vec<bool>,
    /// Per writer: time from the first signal to the reap, in microseconds.
    pub signal_to_reap_us: Vec<u64>,
}

/// Waits until some unreaped writer's stdout hangs up (it died; for a program without
/// announcements, its pidfd becomes readable) or `deadline` passes. Returns
/// the indices of the writers that hung up, or `None` when none is left alive or the deadline
/// passed.
///
/// Why the pipe and not `waitpid`: a timed wait for a child has no direct system call (nix
/// 0.31 wraps no pidfd), and a `try_wait` poll loop either burns CPU or adds its sleep interval
/// to every kill. A writer's stdout is the only copy of that pipe's write end (writers start no
/// children), so `poll` reports `POLLHUP` the moment the kernel closes the dead process's
/// files. Announcement bytes still in the pipe are read and dropped on the way.
fn wait_hangups(writers: &mut [&mut Writer], deadline: Instant) -> std::io::Result<Option<Vec<usize>>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let live: Vec<usize> = (0..writers.len()).filter(|&i| writers[i].status.is_none()).collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if live.is_empty() || left.is_zero() {
            return Ok(None);
        }
        let ms = u16::try_from(left.as_millis().clamp(1, 10_000)).expect("clamped");
        let ready: Vec<usize> = {
            let mut fds: Vec<PollFd<'_>> = live
                .iter()
                .map(|&i| {
                    let w = &writers[i];
                    let fd = match (&w.stdout, &w.pidfd) {
                        (Some(stdout), _) => stdout.as_fd(),
                        (None, Some(pidfd)) => pidfd.as_fd(),
                        (None, None) => unreachable!("a writer has announcements or a pidfd"),
                    };
                    PollFd::new(fd, PollFlags::POLLIN)
                })
                .collect();
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            live.iter()
                .zip(&fds)
                .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(&i, _)| i)
                .collect()
        };
        let mut hung_up = Vec::new();
        for i in ready {
            let mut buf = [0u8; 64];
            // A pidfd is readable once the process exited.
            let read = match writers[i].stdout.as_mut() {
                Some(stdout) => stdout.read(&mut buf)?,
                None => 0,
            };
            if read == 0 {
                hung_up.push(i);
            }
        }
        if !hung_up.is_empty() {
            return Ok(Some(hung_up));
        }
    }
}

/// Sends `first` (if any) to every writer's process group, waits up to `wait` for them to die,
/// escalates to SIGKILL for the ones still alive, and reaps them all.
pub fn inject(writers: &mut [&mut Writer], first: Option<Signal>, wait: Duration) -> std::io::Result<Injected> {
    let mut exited_before_fault = Vec::new();
    for w in writers.iter_mut() {
        if try_reap(w)? {
            exited_before_fault.push(w.writer_id);
        }
    }
    let t0 = Instant::now();
    for w in writers.iter() {
        if let (None, Some(signal)) = (w.status, first) {
            // ESRCH: it died between the poll and now; the reap below sees it.
            let _ = killpg(Pid::from_raw(w.pid()), signal);
        }
    }
    let grace = wait;
    let mut signal_to_reap_us = vec![0u64; writers.len()];
    let mut escalated = vec![false; writers.len()];
    let deadline = t0 + grace;
    while let Some(hung_up) = wait_hangups(writers, deadline)? {
        for i in hung_up {
            // The pipe's last write end closed as the process exited; the zombie follows at
            // once, so this wait is short.
            let w = &mut *writers[i];
            w.status = Some(w.handle.wait()?);
            unregister(w.pid());
            signal_to_reap_us[i] = micros(t0.elapsed());
        }
    }
    for (i, w) in writers.iter_mut().enumerate() {
        if w.status.is_none() {
            escalated[i] = true;
            let _ = killpg(Pid::from_raw(w.pid()), Signal::SIGKILL);
            let status = w.handle.wait()?;
            w.status = Some(status);
            unregister(w.pid());
            signal_to_reap_us[i] = micros(t0.elapsed());
        }
    }
    let kill_us = micros(t0.elapsed());
    let deaths = writers
        .iter()
        .map(|w| (w.writer_id, w.pid(), DeathKind::from_status(w.status.expect("every writer is reaped"))))
        .collect();
    Ok(Injected { deaths, exited_before_fault, kill_us, escalated, signal_to_reap_us })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn death_labels_name_the_signal() {
        assert_eq!(DeathKind::Signal(9).label(), "signal:SIGKILL");
        assert_eq!(DeathKind::Signal(15).label(), "signal:SIGTERM");
        assert_eq!(DeathKind::Exit(3).label(), "exit:3");
    }
}

//! The fork server: a prepared process that forks crashfuzz's own writers instead of the
//! driver exec'ing this binary for each one. It holds no connection and has opened no file
//! through SQLite (it only initialized SQLite's library, in `warm_up`), so a forked writer
//! starts from the state an exec'd one reaches before its first connection, without the exec,
//! the loader's relocations and the runtime's start-up (about a millisecond a writer).
//!
//! One server per driver thread that spawns writers (a lane), started at its first writer.
//! The driver sends a request on a `SOCK_SEQPACKET` socket pair: the writer's configuration as
//! text and, as `SCM_RIGHTS`, its stdin (start gate), stdout (announcements) and stderr. The
//! server forks, puts the child in its own process group (parent and child both call
//! `setpgid`, so the group exists before the driver learns the pid), and answers with the pid;
//! when a child dies it reaps it and sends its wait status. The driver signals the writer's
//! group directly, and learns of its death from the stdout pipe as for an exec'd writer.
//!
//! No orphans: the server dies with the thread that started it (`PR_SET_PDEATHSIG`) and kills
//! its children's groups when the driver closes the socket; each writer dies with the server.

use crate::base::process::pidfd_open;
use crate::writer::protocol::EXIT_WRITER_SETUP;
use nix::sys::signal::{Signal, killpg};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg, socketpair,
};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// The hidden subcommand that runs the server: `crashfuzz __fork-server PARENT_PID`.
pub const FORK_SERVER_SUBCOMMAND: &str = "__fork-server";

/// Set to `0` to exec every writer instead (to compare the two, or to rule the server out).
pub const FORK_SERVER_ENV: &str = "CRASHFUZZ_FORK_SERVER";

/// The largest request (a writer's configuration as JSON).
const REQUEST_BYTES_MAX: usize = 1 << 20;

/// What the server tells the driver, as one fixed-size message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    /// A writer was forked: its pid.
    Forked { pid: i32 },
    /// The fork failed: its errno.
    Failed { errno: i32 },
    /// A writer died: its pid and wait status.
    Exited { pid: i32, status: i32 },
}

impl Reply {
    fn encode(self) -> [u8; 12] {
        let (kind, a, b) = match self {
            Reply::Forked { pid } => (1u32, pid, 0),
            Reply::Failed { errno } => (2, errno, 0),
            Reply::Exited { pid, status } => (3, pid, status),
        };
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&kind.to_le_bytes());
        out[4..8].copy_from_slice(&a.to_le_bytes());
        out[8..].copy_from_slice(&b.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Reply> {
        let word = |i: usize| -> Option<[u8; 4]> { bytes.get(i..i + 4)?.try_into().ok() };
        if bytes.len() != 12 {
            return None;
        }
        let (a, b) = (i32::from_le_bytes(word(4)?), i32::from_le_bytes(word(8)?));
        match u32::from_le_bytes(word(0)?) {
            1 => Some(Reply::Forked { pid: a }),
            2 => Some(Reply::Failed { errno: a }),
            3 => Some(Reply::Exited { pid: a, status: b }),
            _ => None,
        }
    }
}

/// Whether writers are forked by a server (the default) or exec'd.
pub fn enabled() -> bool {
    std::env::var(FORK_SERVER_ENV).map_or(true, |v| v != "0")
}

/// The driver's end of one server.
pub struct ForkServer {
    /// The executable the server runs (the one its writers would have been exec'd from).
    exe: PathBuf,
    child: Child,
    /// The driver's end of the socket pair (`None` once closed, in `drop`).
    sock: Option<OwnedFd>,
    /// Wait statuses received while waiting for something else.
    exited: HashMap<i32, i32>,
}

impl ForkServer {
    /// Starts a server running `exe`, in its own process group.
    pub fn start(exe: &Path) -> std::io::Result<ForkServer> {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(std::io::Error::from)?;
        let child = Command::new(exe)
            .arg(FORK_SERVER_SUBCOMMAND)
            .arg(std::process::id().to_string())
            .process_group(0)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()?;
        Ok(ForkServer { exe: exe.to_path_buf(), child, sock: Some(ours), exited: HashMap::new() })
    }

    /// The server's pid: its writers' parent.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// The executable it runs.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// Forks a writer that runs `config` (a [`WriterConfig`](crate::writer::protocol::WriterConfig)
    /// as JSON) with `stdio` as its stdin, stdout and stderr. Returns its pid, which is also its
    /// process group.
    pub fn fork(&mut self, config: &str, stdio: [BorrowedFd<'_>; 3]) -> std::io::Result<i32> {
        if config.len() > REQUEST_BYTES_MAX {
            return Err(std::io::Error::other(format!("writer configuration of {} bytes", config.len())));
        }
        let fds = stdio.map(|fd| fd.as_raw_fd());
        let rights = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(self.raw_sock(), &[IoSlice::new(config.as_bytes())], &rights, MsgFlags::MSG_NOSIGNAL, None)
            .map_err(std::io::Error::from)?;
        loop {
            match self.receive(MsgFlags::empty())? {
                Some(Reply::Forked { pid }) => return Ok(pid),
                Some(Reply::Failed { errno }) => return Err(std::io::Error::from_raw_os_error(errno)),
                Some(Reply::Exited { pid, status }) => {
                    self.exited.insert(pid, status);
                }
                None => unreachable!("a blocking receive returns a reply"),
            }
        }
    }

    /// Waits until writer `pid` has died and been reaped; its wait status.
    pub fn wait(&mut self, pid: i32) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.exited.remove(&pid) {
                return Ok(ExitStatus::from_raw(status));
            }
            if let Some(Reply::Exited { pid, status }) = self.receive(MsgFlags::empty())? {
                self.exited.insert(pid, status);
            }
        }
    }

    /// Writer `pid`'s wait status if it died and was reaped already.
    pub fn try_wait(&mut self, pid: i32) -> std::io::Result<Option<ExitStatus>> {
        while let Some(reply) = self.receive(MsgFlags::MSG_DONTWAIT)? {
            if let Reply::Exited { pid, status } = reply {
                self.exited.insert(pid, status);
            }
        }
        Ok(self.exited.remove(&pid).map(ExitStatus::from_raw))
    }

    fn raw_sock(&self) -> RawFd {
        self.sock.as_ref().expect("open until dropped").as_raw_fd()
    }

    /// The next reply (`None`: none waiting, with `MSG_DONTWAIT`).
    fn receive(&mut self, flags: MsgFlags) -> std::io::Result<Option<Reply>> {
        let mut buf = [0u8; 16];
        let n = loop {
            match nix::sys::socket::recv(self.raw_sock(), &mut buf, flags) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            return Err(std::io::Error::other("the fork server is gone"));
        }
        Reply::decode(&buf[..n])
            .map(Some)
            .ok_or_else(|| std::io::Error::other("a malformed reply from the fork server"))
    }
}

impl Drop for ForkServer {
    /// Closing the socket tells the server to kill what is left of its writers and exit.
    fn drop(&mut self) {
        drop(self.sock.take());
        let _ = self.child.wait();
    }
}

/// The server's main: arms its death with `parent_pid`'s, then serves requests on stdin (the
/// socket) until the driver closes it.
pub fn serve(parent_pid: &str) -> i32 {
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        eprintln!("fork server: PR_SET_PDEATHSIG: {e}");
        return 2;
    }
    if parent_pid.parse::<i32>().ok() != Some(nix::unistd::getppid().as_raw()) {
        return 2;
    }
    warm_up();
    // SAFETY: the driver made fd 0 the server's end of the socket pair; nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(0) };
    let mut children: Vec<(i32, OwnedFd)> = Vec::new();
    let mut request = vec![0u8; REQUEST_BYTES_MAX];
    let outcome = loop {
        match serve_one(&sock, &mut children, &mut request) {
            Ok(true) => continue,
            Ok(false) => break 0,
            Err(e) => {
                eprintln!("fork server: {e}");
                break 2;
            }
        }
    };
    for (pid, _) in &children {
        let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    for (pid, _) in &children {
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid status pointer.
        unsafe { nix::libc::waitpid(*pid, &mut status, 0) };
    }
    outcome
}

/// Does once, before any fork, the process-wide set-up every writer would otherwise redo: the
/// CPU's features detected for the standard library's and `memchr`'s fast paths (`cpuid`, which
/// traps to the hypervisor on a virtual machine) and SQLite's library initialized
/// (`sqlite3_initialize`: its mutexes, allocator, page cache and VFS list; no connection, no
/// file, no lock, and nothing a thread holds, as this process has one thread).
fn warm_up() {
    #[cfg(target_arch = "x86_64")]
    let _ = std::arch::is_x86_feature_detected!("avx2");
    // SAFETY: called on the only thread, before any other SQLite call; it returns a code only.
    let _ = unsafe { rusqlite::ffi::sqlite3_initialize() };
}

/// One round of the server's loop: reaps the children that died, forks the one requested.
/// `Ok(false)` once the driver closed the socket.
fn serve_one(sock: &OwnedFd, children: &mut Vec<(i32, OwnedFd)>, request: &mut [u8]) -> std::io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let (sock_ready, dead) = {
        let mut fds: Vec<PollFd<'_>> = std::iter::once(sock.as_fd())
            .chain(children.iter().map(|(_, pidfd)| pidfd.as_fd()))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
        let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
        let dead: Vec<usize> = fds[1..].iter().enumerate().filter(|(_, fd)| ready(fd)).map(|(i, _)| i).collect();
        (ready(&fds[0]), dead)
    };
    for i in dead.into_iter().rev() {
        let (pid, _pidfd) = children.swap_remove(i);
        let mut status = 0;
        // SAFETY: waitpid on our own child (its pidfd said it exited), valid status pointer.
        if unsafe { nix::libc::waitpid(pid, &mut status, 0) } == pid {
            reply(sock, Reply::Exited { pid, status })?;
        }
    }
    if !sock_ready {
        return Ok(true);
    }
    let mut cmsg = nix::cmsg_space!([RawFd; 3]);
    let mut iov = [IoSliceMut::new(request)];
    let (len, fds) = {
        let msg = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EINTR) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let mut fds: Vec<OwnedFd> = Vec::new();
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: SCM_RIGHTS descriptors are new in this process and owned by no one else.
                fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        (msg.bytes, fds)
    };
    if len == 0 && fds.is_empty() {
        return Ok(false);
    }
    let (Ok(config), Ok(stdio)) = (std::str::from_utf8(&request[..len]), <[OwnedFd; 3]>::try_from(fds)) else {
        return Err(std::io::Error::other("a malformed request"));
    };
    // SAFETY: this process is single-threaded (it starts no thread), so the child may run
    // anything; it never returns here (`child_main` exits).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => child_main(config, stdio),
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            // Also set here, so the group exists before the driver can signal it.
            let _ = nix::unistd::setpgid(child, child);
            drop(stdio);
            let pid = child.as_raw();
            match pidfd_open(pid) {
                Ok(pidfd) => children.push((pid, pidfd)),
                Err(e) => {
                    let _ = killpg(child, Signal::SIGKILL);
                    let mut status = 0;
                    // SAFETY: waitpid on our own child, valid status pointer.
                    unsafe { nix::libc::waitpid(pid, &mut status, 0) };
                    return reply(sock, Reply::Failed { errno: e.raw_os_error().unwrap_or(nix::libc::EIO) })
                        .map(|()| true);
                }
            }
            reply(sock, Reply::Forked { pid }).map(|()| true)
        }
        Err(e) => reply(sock, Reply::Failed { errno: e as i32 }).map(|()| true),
    }
}

fn reply(sock: &OwnedFd, r: Reply) -> std::io::Result<()> {
    nix::sys::socket::send(sock.as_raw_fd(), &r.encode(), MsgFlags::MSG_NOSIGNAL).map(drop).map_err(Into::into)
}

/// A forked writer: its own process group, `stdio` as its standard streams, every other
/// descriptor of the server closed; then the writer's main, as `crashfuzz __writer` runs it.
fn child_main(config: &str, stdio: [OwnedFd; 3]) -> ! {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    for (target, fd) in stdio.iter().enumerate() {
        // SAFETY: dup2 onto 0..=2 of descriptors this process owns.
        if unsafe { nix::libc::dup2(fd.as_raw_fd(), target as RawFd) } < 0 {
            // SAFETY: _exit is async-signal-safe and ends the process at once.
            unsafe { nix::libc::_exit(EXIT_WRITER_SETUP) };
        }
    }
    drop(stdio);
    // The server's socket was fd 0 (replaced above); its pidfds and anything else go.
    // SAFETY: close_range(3, ~0, 0) closes descriptors only.
    unsafe { nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let code = std::panic::catch_unwind(|| crate::writer::child::main(config)).unwrap_or(101);
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_back_as_sent_and_anything_else_is_refused() {
        for r in [Reply::Forked { pid: 42 }, Reply::Failed { errno: 11 }, Reply::Exited { pid: 7, status: 9 }] {
            assert_eq!(Reply::decode(&r.encode()), Some(r));
        }
        assert_eq!(Reply::decode(&[0u8; 12]), None);
        assert_eq!(Reply::decode(&Reply::Forked { pid: 1 }.encode()[..8]), None);
    }
}

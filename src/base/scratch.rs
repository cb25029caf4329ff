//! Scratch directories: a `TempDir` (removed on drop) stamped with its owner, the process id
//! and that process's start time, so that the next crashfuzz to start can sweep the ones a
//! killed owner left behind. A SIGKILLed driver cannot remove its own directory; its children
//! die with it (`PR_SET_PDEATHSIG`), and this removes what they were writing to.

use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The stamp inside every scratch directory: `"<pid> <start time in clock ticks> <pid
/// namespace>\n"`. Only a process in the same pid namespace can tell whether the owner runs.
const OWNER_FILE: &str = ".crashfuzz-owner";
/// Every scratch directory's name starts with this.
pub const PREFIX: &str = "crashfuzz-";

/// When the process `pid` started (field 22 of `/proc/PID/stat`, clock ticks since boot):
/// `None` when no such process exists. A pid reused by another process has another start time.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is parenthesised and may hold spaces: the fields after it start at 3.
    let after_name = stat.rsplit_once(") ")?.1;
    after_name.split(' ').nth(22 - 3)?.parse().ok()
}

/// This process's pid namespace, e.g. `pid:[4026531836]`.
fn pid_namespace() -> std::io::Result<String> {
    Ok(std::fs::read_link("/proc/self/ns/pid")?.to_string_lossy().into_owned())
}

fn stamp(pid: u32) -> std::io::Result<String> {
    let start = start_time(pid).ok_or_else(|| std::io::Error::other(format!("no /proc/{pid}/stat")))?;
    Ok(format!("{pid} {start} {}\n", pid_namespace()?))
}

/// Creates `<base or the temp dir>/crashfuzz-<kind>-XXXXXX`, stamped with this process.
pub fn create(base: Option<&Path>, kind: &str) -> std::io::Result<TempDir> {
    let prefix = format!("{PREFIX}{kind}");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    let dir = match base {
        Some(base) => builder.tempdir_in(base)?,
        None => builder.tempdir()?,
    };
    std::fs::write(dir.path().join(OWNER_FILE), stamp(std::process::id())?)?;
    Ok(dir)
}

/// Whether the stamp in `dir` names a process of this pid namespace that no longer runs. A
/// directory without a readable stamp (being created, or not ours) or stamped in another
/// namespace is never stale.
fn is_stale(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(OWNER_FILE)) else { return false };
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [pid, start, namespace] = fields[..] else { return false };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else { return false };
    pid_namespace().is_ok_and(|ours| ours == namespace) && start_time(pid) != Some(start)
}

/// Removes the scratch directories under `base` (the temp dir when `None`) whose owner died
/// without removing them; returns them. Best effort: what cannot be read or removed stays.
pub fn sweep(base: Option<&Path>) -> Vec<PathBuf> {
    let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let Ok(entries) = std::fs::read_dir(&base) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(PREFIX);
        if ours
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && is_stale(&path)
            && std::fs::remove_dir_all(&path).is_ok()
        {
            removed.push(path);
        }
    }
    removed
}

/// [`sweep`], saying on stderr what it removed.
pub fn sweep_and_say(base: Option<&Path>) {
    let removed = sweep(base);
    if !removed.is_empty() {
        eprintln!(
            "crashfuzz: removed {} scratch director{} left by killed crashfuzz processes (e.g. {})",
            removed.len(),
            if removed.len() == 1 { "y" } else { "ies" },
            removed[0].display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pid of a process that has exited and been reaped.
    fn dead_pid() -> u32 {
        // This test binary itself, listing its tests: it needs nothing on PATH.
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_dead_owners_directory_is_swept_and_live_or_foreign_ones_are_not() {
        let base = tempfile::tempdir().unwrap();
        let live = create(Some(base.path()), "live-").unwrap();
        let dead = create(Some(base.path()), "dead-").unwrap().keep();
        let ns = pid_namespace().unwrap();
        std::fs::write(dead.join(OWNER_FILE), format!("{} 1 {ns}\n", dead_pid())).unwrap();
        // The same live pid with another start time: the pid was reused.
        let reused = create(Some(base.path()), "reused-").unwrap().keep();
        std::fs::write(reused.join(OWNER_FILE), format!("{} 1 {ns}\n", std::process::id())).unwrap();
        // A dead owner in another pid namespace: not ours to judge.
        let elsewhere = create(Some(base.path()), "elsewhere-").unwrap().keep();
        std::fs::write(elsewhere.join(OWNER_FILE), format!("{} 1 pid:[1]\n", dead_pid())).unwrap();
        let unstamped = base.path().join(format!("{PREFIX}unstamped"));
        std::fs::create_dir(&unstamped).unwrap();
        let foreign = base.path().join("other-tool");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join(OWNER_FILE), format!("{} 1 {ns}\n", dead_pid())).unwrap();

        let mut removed = sweep(Some(base.path()));
        removed.sort();
        let mut want = vec![dead, reused];
        want.sort();
        assert_eq!(removed, want);
        assert!(live.path().is_dir() && unstamped.is_dir() && foreign.is_dir() && elsewhere.is_dir());
        assert!(sweep(Some(base.path())).is_empty(), "a second sweep finds nothing");
    }

    #[test]
    fn this_process_has_a_start_time() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(dead_pid()), None);
    }
}

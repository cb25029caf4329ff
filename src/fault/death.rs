//! How a writer process's death is judged, once it has been reaped: a pure function of what
//! `waitpid` said, what crashfuzz sent it, and what its acknowledgement file says.
//!
//! crashfuzz sends a writer only SIGTERM (the `kill` fault's first signal, to the victim) and
//! SIGKILL (the fault itself, the escalation after the grace period, the end of a trial); the
//! tracing VFS raises SIGKILL on the writer at a crash point. **A death crashfuzz did not cause
//! is a finding, never a shrug**: a writer killed by SIGSEGV, SIGBUS or SIGABRT (SQLite
//! crashing on a damaged file, a mapping truncated under it), or one that exits outside the
//! writer's exit-code protocol (a panic), is `writer_crash`, and its image is checked as usual.
//! A writer that stopped on an SQLite error met a database that refused a write: that is the
//! `reopen_write` finding. A writer that gave up on a lock is contention, counted and not
//! judged. A writer whose own harness side failed (its acknowledgement file, its trace, its
//! configuration) is a harness error. Only what says nothing either way (the victim finished
//! its work before the fault came, a crash point was never reached) is inconclusive.

use crate::base::process::DeathKind;
use crate::record::Role;
use crate::scenario::matrix::{FaultKind, SigtermBehaviour};
use crate::writer::protocol::EXIT_WRITER_IO;
use crate::writer::protocol::EXIT_WRITER_LOCKED;
use crate::writer::protocol::EXIT_WRITER_SETUP;
use crate::writer::protocol::EXIT_WRITER_SQLITE;
use nix::sys::signal::Signal;

/// What one reaped writer process tells about the trial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeathVerdict {
    /// Died as the fault (or, for the others, the end of the trial) should make it.
    Expected,
    /// The trial cannot be judged from this death (neither a pass nor a failure).
    Inconclusive(String),
    /// Died of a signal crashfuzz did not send, or exited outside the writer's protocol: the
    /// `writer_crash` finding.
    Crashed(String),
    /// Stopped on an SQLite error while writing: the database refused a write
    /// (`reopen_write`).
    SqliteError(String),
    /// Gave up on a lock (SQLITE_BUSY / SQLITE_LOCKED outside the retry loop): contention,
    /// not damage.
    Contention(String),
    /// The writer's harness side failed (acknowledgement file, trace, configuration).
    Harness(String),
}

/// What is known of one reaped writer process.
#[derive(Clone, Debug)]
pub struct DeathFacts<'a> {
    pub role: Role,
    pub fault: FaultKind,
    pub sigterm: Option<SigtermBehaviour>,
    pub how: DeathKind,
    /// It was gone before the fault's first signal was due.
    pub exited_before_signal: bool,
    /// SIGKILL had to follow the grace period.
    pub escalated: bool,
    /// It ran out of work (`E` in its acknowledgement file).
    pub finished: bool,
    /// It gave up after persistent I/O errors (`G`).
    pub gave_up: bool,
    /// Its writer id (the first connection's), for the reason.
    pub id: u64,
    /// The last line it wrote to stderr.
    pub stderr_tail: &'a str,
}

/// The deaths the fault intends for the victim, as labels (`signal:SIGTERM`, `exit:0`...).
pub fn expected_deaths(fault: FaultKind, sigterm: Option<SigtermBehaviour>) -> Vec<String> {
    let labels: &[&str] = match (fault, sigterm) {
        (FaultKind::SigkillOnly, _) => &["signal:SIGKILL"],
        (FaultKind::Kill, None | Some(SigtermBehaviour::Default)) => &["signal:SIGTERM"],
        (FaultKind::Kill, Some(SigtermBehaviour::Ignore)) => &["signal:SIGKILL"],
        // Finishes its transaction and exits 0, or is cut by the SIGKILL after the grace.
        (FaultKind::Kill, Some(SigtermBehaviour::Graceful)) => &["exit:0", "signal:SIGKILL"],
        // The driver's SIGKILL, or the VFS's own at the crash point.
        (FaultKind::PowerLoss | FaultKind::CrashPoint, _) => &["signal:SIGKILL"],
        // Killed after the error, or gave up after persistent errors.
        (FaultKind::IoError, _) => &["signal:SIGKILL", "exit:5"],
        (
            FaultKind::LockCancel
            | FaultKind::LockCancelWal
            | FaultKind::LockCancelShm
            | FaultKind::DeleteHotWal
            | FaultKind::DeleteHotJournal
            | FaultKind::SwapDb
            | FaultKind::RawCopyBackup
            | FaultKind::ForkConnection
            | FaultKind::CrossVersion,
            _,
        ) => &["signal:SIGKILL"],
    };
    labels.iter().map(|s| s.to_string()).collect()
}

/// The deaths of a survivor or transient: its own clean exit, or the SIGKILL that ends the
/// trial.
pub fn others_deaths() -> Vec<String> {
    vec!["exit:0".to_string(), "signal:SIGKILL".to_string()]
}

/// True when crashfuzz may have sent `signal` to a process of this role: SIGKILL always (the
/// fault, the escalation, the end of a trial, the VFS's crash point), SIGTERM only to the
/// victim of a `kill`.
fn sent_by_crashfuzz(signal: i32, role: Role, fault: FaultKind) -> bool {
    if signal == Signal::SIGKILL as i32 {
        return true;
    }
    let sigterm_sent = match role {
        Role::Victim => fault == FaultKind::Kill,
        Role::Survivor | Role::Transient => false,
    };
    sigterm_sent && signal == Signal::SIGTERM as i32
}

/// Judges one death; see the module doc.
pub fn judge(f: &DeathFacts<'_>) -> DeathVerdict {
    let label = f.how.label();
    let who = match f.role {
        Role::Victim => format!("writer {}", f.id),
        Role::Survivor => format!("survivor writer {}", f.id),
        Role::Transient => format!("transient writer {}", f.id),
    };
    let said = |what: &str| format!("{who} {what}: {}", f.stderr_tail);
    match f.how {
        DeathKind::Signal(s) if !sent_by_crashfuzz(s, f.role, f.fault) => {
            return DeathVerdict::Crashed(said(&format!("died of {label}, which crashfuzz never sends")));
        }
        DeathKind::Exit(EXIT_WRITER_SETUP) => return DeathVerdict::Harness(said("failed on its harness side")),
        DeathKind::Exit(EXIT_WRITER_SQLITE) => return DeathVerdict::SqliteError(said("stopped on an SQLite error")),
        DeathKind::Exit(EXIT_WRITER_LOCKED) => {
            let reason = said("gave up on a lock");
            return match f.role {
                // The fault never met it as planned.
                Role::Victim => DeathVerdict::Inconclusive(reason),
                Role::Survivor | Role::Transient => DeathVerdict::Contention(reason),
            };
        }
        DeathKind::Exit(EXIT_WRITER_IO) if f.fault == FaultKind::IoError => {}
        DeathKind::Exit(0) | DeathKind::Signal(_) => {}
        DeathKind::Exit(code) => {
            return DeathVerdict::Crashed(said(&format!("exited {code}, outside the writer's exit codes")));
        }
    }
    let expected = match f.role {
        Role::Victim => expected_deaths(f.fault, f.sigterm),
        Role::Survivor | Role::Transient => others_deaths(),
    };
    match f.role {
        Role::Victim => {
            // A crash point is the writer killing itself, and a writer facing persistent I/O
            // errors gives up by itself: both are the fault, not an early death.
            let fault_ends_it = f.fault == FaultKind::CrashPoint || (f.fault == FaultKind::IoError && f.gave_up);
            if f.finished {
                return DeathVerdict::Inconclusive(format!(
                    "{who} finished its work before the fault (txns_max / writer_lifetime_ms_max)"
                ));
            }
            if f.exited_before_signal && !fault_ends_it {
                return DeathVerdict::Inconclusive(said(&format!("died before the fault ({label})")));
            }
            if f.escalated && f.fault == FaultKind::CrashPoint {
                return DeathVerdict::Inconclusive(format!("{who} never reached its crash point"));
            }
        }
        Role::Survivor | Role::Transient => {}
    }
    if expected.contains(&label) {
        DeathVerdict::Expected
    } else {
        // A death crashfuzz caused, but not the one the fault intends (a graceful writer
        // killed by its SIGTERM): the trial did not happen as planned.
        DeathVerdict::Inconclusive(said(&format!("died {label}, expected {}", expected.join(" or "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(role: Role, fault: FaultKind, how: DeathKind) -> DeathFacts<'static> {
        DeathFacts {
            role,
            fault,
            sigterm: fault.sends_sigterm().then_some(SigtermBehaviour::Default),
            how,
            exited_before_signal: false,
            escalated: false,
            finished: false,
            gave_up: false,
            id: 1000,
            stderr_tail: "last words",
        }
    }

    const SEGV: DeathKind = DeathKind::Signal(Signal::SIGSEGV as i32);
    const KILL: DeathKind = DeathKind::Signal(Signal::SIGKILL as i32);
    const TERM: DeathKind = DeathKind::Signal(Signal::SIGTERM as i32);

    #[test]
    fn a_signal_crashfuzz_never_sends_is_a_writer_crash_in_every_role_and_fault() {
        for fault in FaultKind::ALL {
            for role in [Role::Victim, Role::Survivor, Role::Transient] {
                for sig in [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGABRT, Signal::SIGILL, Signal::SIGFPE] {
                    let v = judge(&facts(role, fault, DeathKind::Signal(sig as i32)));
                    assert!(matches!(v, DeathVerdict::Crashed(_)), "{fault:?} {role:?} {sig:?}: {v:?}");
                }
                // Even before the fault: a crash is a crash, not "died early".
                let early = DeathFacts { exited_before_signal: true, ..facts(role, fault, SEGV) };
                assert!(matches!(judge(&early), DeathVerdict::Crashed(_)));
            }
        }
        // SIGTERM is sent to the kill fault's victim only.
        assert!(matches!(judge(&facts(Role::Survivor, FaultKind::Kill, TERM)), DeathVerdict::Crashed(_)));
        assert!(matches!(judge(&facts(Role::Victim, FaultKind::PowerLoss, TERM)), DeathVerdict::Crashed(_)));
        assert_eq!(judge(&facts(Role::Victim, FaultKind::Kill, TERM)), DeathVerdict::Expected);
    }

    #[test]
    fn an_exit_outside_the_protocol_is_a_writer_crash() {
        let panic = facts(Role::Victim, FaultKind::Kill, DeathKind::Exit(101));
        let DeathVerdict::Crashed(reason) = judge(&panic) else { panic!() };
        assert!(reason.contains("exited 101") && reason.contains("last words"), "{reason}");
        assert!(matches!(
            judge(&facts(Role::Transient, FaultKind::Kill, DeathKind::Exit(1))),
            DeathVerdict::Crashed(_)
        ));
    }

    /// A survivor whose harness side failed (its ack file, its trace) once became a false
    /// `reopen_write`; an SQLite error is the finding; a lock is contention.
    #[test]
    fn setup_failures_sqlite_errors_and_locks_are_told_apart() {
        for role in [Role::Survivor, Role::Transient, Role::Victim] {
            let setup = judge(&facts(role, FaultKind::Kill, DeathKind::Exit(EXIT_WRITER_SETUP)));
            assert!(matches!(setup, DeathVerdict::Harness(_)), "{role:?}: {setup:?}");
            let sqlite = judge(&facts(role, FaultKind::SwapDb, DeathKind::Exit(EXIT_WRITER_SQLITE)));
            assert!(matches!(sqlite, DeathVerdict::SqliteError(_)), "{role:?}: {sqlite:?}");
        }
        let locked = |role| judge(&facts(role, FaultKind::Kill, DeathKind::Exit(EXIT_WRITER_LOCKED)));
        assert!(matches!(locked(Role::Survivor), DeathVerdict::Contention(_)));
        assert!(matches!(locked(Role::Transient), DeathVerdict::Contention(_)));
        assert!(matches!(locked(Role::Victim), DeathVerdict::Inconclusive(_)));
    }

    #[test]
    fn the_deaths_the_fault_intends_are_expected_and_the_others_inconclusive() {
        assert_eq!(judge(&facts(Role::Victim, FaultKind::PowerLoss, KILL)), DeathVerdict::Expected);
        assert_eq!(judge(&facts(Role::Survivor, FaultKind::Kill, KILL)), DeathVerdict::Expected);
        assert_eq!(judge(&facts(Role::Transient, FaultKind::Kill, DeathKind::Exit(0))), DeathVerdict::Expected);
        let graceful = DeathFacts {
            sigterm: Some(SigtermBehaviour::Graceful),
            ..facts(Role::Victim, FaultKind::Kill, DeathKind::Exit(0))
        };
        assert_eq!(judge(&graceful), DeathVerdict::Expected);
        // A graceful writer dying of the SIGTERM it should have handled.
        assert!(matches!(judge(&DeathFacts { how: TERM, ..graceful }), DeathVerdict::Inconclusive(_)));
        let finished = DeathFacts { finished: true, ..facts(Role::Victim, FaultKind::Kill, DeathKind::Exit(0)) };
        let DeathVerdict::Inconclusive(reason) = judge(&finished) else { panic!() };
        assert!(reason.contains("finished its work before the fault"), "{reason}");
        let early = DeathFacts { exited_before_signal: true, ..facts(Role::Victim, FaultKind::Kill, KILL) };
        assert!(matches!(judge(&early), DeathVerdict::Inconclusive(_)));
        // The crash point ends the writer by itself; an escalation means it was never reached.
        let point = DeathFacts { exited_before_signal: true, ..facts(Role::Victim, FaultKind::CrashPoint, KILL) };
        assert_eq!(judge(&point), DeathVerdict::Expected);
        let missed = DeathFacts { escalated: true, ..facts(Role::Victim, FaultKind::CrashPoint, KILL) };
        assert!(matches!(judge(&missed), DeathVerdict::Inconclusive(_)));
        let gave_up = DeathFacts {
            gave_up: true,
            exited_before_signal: true,
            ..facts(Role::Victim, FaultKind::IoError, DeathKind::Exit(EXIT_WRITER_IO))
        };
        assert_eq!(judge(&gave_up), DeathVerdict::Expected);
    }

    #[test]
    fn expected_deaths_cover_every_behaviour() {
        assert_eq!(expected_deaths(FaultKind::SigkillOnly, None), vec!["signal:SIGKILL"]);
        assert_eq!(expected_deaths(FaultKind::Kill, Some(SigtermBehaviour::Default)), vec!["signal:SIGTERM"]);
        assert_eq!(expected_deaths(FaultKind::Kill, Some(SigtermBehaviour::Ignore)), vec!["signal:SIGKILL"]);
        assert_eq!(
            expected_deaths(FaultKind::Kill, Some(SigtermBehaviour::Graceful)),
            vec!["exit:0", "signal:SIGKILL"]
        );
    }
}

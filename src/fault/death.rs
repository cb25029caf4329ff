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
use crate::fault::Fault;
use crate::record::Role;
use crate::scenario::matrix::SigtermBehaviour;
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
#[derive(Clone)]
pub struct DeathFacts<'a> {
    pub role: Role,
    /// The trial's fault: what it sends, what it intends, what ends a writer by itself.
    pub fault: &'a dyn Fault,
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
    /// It is an application's own program (`writer::external`), which has no exit-code
    /// protocol and handles SIGTERM its own way ([`judge_program`]).
    pub own_program: bool,
}

/// True when crashfuzz may have sent `signal` to a process of this role: SIGKILL always (the
/// fault, the escalation, the end of a trial, the VFS's crash point), the fault's first signal
/// only to its victim.
fn sent_by_crashfuzz(signal: i32, role: Role, fault: &dyn Fault) -> bool {
    if signal == Signal::SIGKILL as i32 {
        return true;
    }
    match role {
        Role::Victim => fault.first_signal().is_some_and(|s| s as i32 == signal),
        Role::Survivor | Role::Transient => false,
    }
}

/// The deaths of a survivor or transient: its own clean exit, or the SIGKILL that ends the
/// trial.
pub fn others_deaths() -> Vec<String> {
    vec!["exit:0".to_string(), "signal:SIGKILL".to_string()]
}

fn who(f: &DeathFacts<'_>) -> String {
    match f.role {
        Role::Victim => format!("writer {}", f.id),
        Role::Survivor => format!("survivor writer {}", f.id),
        Role::Transient => format!("transient writer {}", f.id),
    }
}

/// The death of an application's own program, which knows no exit codes of crashfuzz's and
/// may handle SIGTERM as it likes:
/// - a signal crashfuzz never sends is `writer_crash`;
/// - so is an exit other than 0 that crashfuzz did not cause, before the fault as after it
///   (the program failed by itself, or on what a hazard did to its database), except 143 (a
///   runtime's "terminated") after the victim's SIGTERM, and any exit of a victim after the
///   interposer failed one of its calls: it gave up on that error, which an injected error
///   intends;
/// - a victim gone before its fault by a clean exit, or never at its crash point, makes the
///   trial inconclusive: the fault never met it.
pub fn judge_program(f: &DeathFacts<'_>) -> DeathVerdict {
    let who = who(f);
    let said = |what: &str| format!("{who} {what}: {}", f.stderr_tail);
    let terminated = 128 + Signal::SIGTERM as i32;
    let gave_up = f.role == Role::Victim && f.gave_up && f.fault.ends_writer_itself(true);
    match (f.how, f.role) {
        (DeathKind::Signal(s), role) if !sent_by_crashfuzz(s, role, f.fault) => {
            DeathVerdict::Crashed(said(&format!("died of {}, which crashfuzz never sends", f.how.label())))
        }
        (DeathKind::Exit(_), Role::Victim) if gave_up => DeathVerdict::Expected,
        (DeathKind::Exit(code), Role::Victim) if code == terminated && !f.exited_before_signal => {
            DeathVerdict::Expected
        }
        (DeathKind::Exit(code), _) if code != 0 => {
            let when = if f.exited_before_signal { " before the fault" } else { "" };
            DeathVerdict::Crashed(said(&format!("exited {code} of its own accord{when}")))
        }
        (_, Role::Victim) if f.exited_before_signal && !f.fault.ends_writer_itself(f.gave_up) => {
            DeathVerdict::Inconclusive(said(&format!("died before the fault ({})", f.how.label())))
        }
        // A crash point is the process killing itself; one that had to be killed never got there.
        (_, Role::Victim) if f.escalated && f.fault.first_signal().is_none() => {
            DeathVerdict::Inconclusive(format!("{who} never reached its crash point"))
        }
        (DeathKind::Signal(_) | DeathKind::Exit(_), _) => DeathVerdict::Expected,
    }
}

/// Judges one death; see the module doc.
pub fn judge(f: &DeathFacts<'_>) -> DeathVerdict {
    if f.own_program {
        return judge_program(f);
    }
    let label = f.how.label();
    let who = who(f);
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
        // A writer giving up on persistent I/O errors is what an injected error intends.
        DeathKind::Exit(EXIT_WRITER_IO) if f.fault.intended_deaths(f.sigterm).contains(&label) => {}
        DeathKind::Exit(0) | DeathKind::Signal(_) => {}
        DeathKind::Exit(code) => {
            return DeathVerdict::Crashed(said(&format!("exited {code}, outside the writer's exit codes")));
        }
    }
    let expected = match f.role {
        Role::Victim => f.fault.intended_deaths(f.sigterm),
        Role::Survivor | Role::Transient => others_deaths(),
    };
    match f.role {
        Role::Victim => {
            // A crash point is the writer killing itself, and a writer facing persistent I/O
            // errors gives up by itself: both are the fault, not an early death.
            let fault_ends_it = f.fault.ends_writer_itself(f.gave_up);
            if f.finished && f.fault.may_finish() && f.how == DeathKind::Exit(0) {
                return DeathVerdict::Expected;
            }
            if f.finished {
                return DeathVerdict::Inconclusive(format!(
                    "{who} finished its work before the fault (txns_max / writer_lifetime_ms_max)"
                ));
            }
            if f.exited_before_signal && !fault_ends_it {
                return DeathVerdict::Inconclusive(said(&format!("died before the fault ({label})")));
            }
            // A writer that should end itself (a crash point) and had to be killed never got
            // there.
            if f.escalated && f.fault.first_signal().is_none() {
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
    use crate::scenario::matrix::FaultKind;

    fn facts(role: Role, kind: FaultKind, how: DeathKind) -> DeathFacts<'static> {
        DeathFacts {
            role,
            fault: crate::fault::of(kind),
            sigterm: kind.sends_sigterm().then_some(SigtermBehaviour::Default),
            how,
            exited_before_signal: false,
            escalated: false,
            finished: false,
            gave_up: false,
            id: 1000,
            stderr_tail: "last words",
            own_program: false,
        }
    }

    const SEGV: DeathKind = DeathKind::Signal(Signal::SIGSEGV as i32);
    const KILL: DeathKind = DeathKind::Signal(Signal::SIGKILL as i32);
    const TERM: DeathKind = DeathKind::Signal(Signal::SIGTERM as i32);

    #[test]
    fn an_applications_program_may_end_its_own_way_on_sigterm_but_never_crash_or_fail() {
        let own = |role, how, exited_before_signal| {
            judge(&DeathFacts { own_program: true, exited_before_signal, ..facts(role, FaultKind::Kill, how) })
        };
        for how in [TERM, KILL, DeathKind::Exit(0), DeathKind::Exit(143)] {
            assert_eq!(own(Role::Victim, how, false), DeathVerdict::Expected, "{how:?}");
        }
        for role in [Role::Survivor, Role::Transient] {
            assert_eq!(own(role, DeathKind::Exit(0), false), DeathVerdict::Expected);
            assert_eq!(own(role, KILL, false), DeathVerdict::Expected);
            assert!(matches!(own(role, TERM, false), DeathVerdict::Crashed(_)), "only the victim is sent SIGTERM");
            assert!(matches!(own(role, DeathKind::Exit(143), false), DeathVerdict::Crashed(_)));
        }
        // crashfuzz's own exit codes mean nothing here: any other exit is the program's failure.
        for code in [1, 3, 4, 5, 6] {
            let v = own(Role::Victim, DeathKind::Exit(code), false);
            assert!(
                matches!(&v, DeathVerdict::Crashed(r) if r.contains(&format!("exited {code} of its own accord"))),
                "{v:?}"
            );
        }
        assert!(matches!(own(Role::Victim, SEGV, false), DeathVerdict::Crashed(_)));
        assert!(matches!(own(Role::Victim, DeathKind::Exit(0), true), DeathVerdict::Inconclusive(_)));
        // Failing before the fault is failing: by itself, or on what a hazard did to its files.
        let early = own(Role::Victim, DeathKind::Exit(4), true);
        assert!(
            matches!(&early, DeathVerdict::Crashed(r) if r.contains("exited 4 of its own accord before the fault"))
        );
        assert!(matches!(own(Role::Victim, DeathKind::Exit(143), true), DeathVerdict::Crashed(_)), "no SIGTERM yet");
    }

    #[test]
    fn an_applications_program_may_give_up_on_an_injected_error_only_by_exiting() {
        let own = |role, how, gave_up| {
            judge(&DeathFacts {
                own_program: true,
                exited_before_signal: true,
                gave_up,
                ..facts(role, FaultKind::IoError, how)
            })
        };
        // After the interposer failed its call: any exit is the program's way of giving up.
        for code in [0, 1, 4, 70] {
            assert_eq!(own(Role::Victim, DeathKind::Exit(code), true), DeathVerdict::Expected, "exit {code}");
        }
        assert!(matches!(own(Role::Victim, DeathKind::Signal(Signal::SIGABRT as i32), true), DeathVerdict::Crashed(_)));
        // Before any injection, a failing exit is the program's own.
        assert!(matches!(own(Role::Victim, DeathKind::Exit(4), false), DeathVerdict::Crashed(_)));
        assert!(matches!(own(Role::Victim, DeathKind::Exit(0), false), DeathVerdict::Inconclusive(_)));
        // Only the victim's calls fail: another process giving up is its own failure.
        assert!(matches!(own(Role::Survivor, DeathKind::Exit(4), false), DeathVerdict::Crashed(_)));
        // Under a fault that injects nothing, giving up is not a way to end.
        let kill =
            DeathFacts { own_program: true, gave_up: true, ..facts(Role::Victim, FaultKind::Kill, DeathKind::Exit(4)) };
        assert!(matches!(judge(&kill), DeathVerdict::Crashed(_)));
    }

    #[test]
    fn a_signal_crashfuzz_never_sends_is_a_writer_crash_in_every_role_and_fault() {
        for &fault in FaultKind::ALL {
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
    fn intended_deaths_cover_every_behaviour() {
        let of = |kind, sigterm| crate::fault::of(kind).intended_deaths(sigterm);
        assert_eq!(of(FaultKind::SigkillOnly, None), vec!["signal:SIGKILL"]);
        assert_eq!(of(FaultKind::Kill, Some(SigtermBehaviour::Default)), vec!["signal:SIGTERM"]);
        assert_eq!(of(FaultKind::Kill, Some(SigtermBehaviour::Ignore)), vec!["signal:SIGKILL"]);
        assert_eq!(of(FaultKind::Kill, Some(SigtermBehaviour::Graceful)), vec!["exit:0", "signal:SIGKILL"]);
        assert_eq!(of(FaultKind::IoError, None), vec!["signal:SIGKILL", "exit:5"]);
    }
}

//! What a check says about a crash image: the kinds of violation ([`ViolationKind`]), one
//! check's outcome and result, and how a finding made outside the image (another build's answer,
//! a writer's death) joins them.
//!
//! Leaf module: the vocabulary the oracle writes and the reports read.

use serde::{Deserialize, Serialize};

/// One named check; a failed check is a violation of this kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// 1. the image opens and a first read succeeds.
    Open,
    /// 2. `PRAGMA integrity_check`.
    Integrity,
    /// 3. FTS5 `integrity-check` on every FTS table, each index against its rows, and no
    ///    sampled MATCH query returns a row that lacks the term.
    Fts,
    /// 3b. a sampled MATCH query misses a row whose text contains the term, asked of the
    ///     writers' own SQLite build too: what the application's search would not find. Where
    ///     the index is damaged, `fts` says so; this is the wrong answer a user sees, which an
    ///     old build gives on an index it calls consistent (trigram text that begins with NUL,
    ///     SQLite before 3.48.0).
    FtsMiss,
    /// 4. every acknowledged commit is present.
    LostAck,
    /// 5. nothing is present that was never begun.
    Phantom,
    /// 6. every transaction is wholly present or wholly absent.
    Atomicity,
    /// 7. per writer, the present transactions have no holes.
    Prefix,
    /// 8. a new message can be appended after recovery (by every survivor, too).
    ReopenWrite,
    /// A writer died of something crashfuzz did not send: a signal (SQLite crashing on a
    /// damaged file, a mapping truncated under it) or an exit outside the writer's protocol.
    /// Judged from the trial's processes, not from the image (`fault::death`).
    WriterCrash,
    /// An application's own writer broke the acknowledgement protocol (an unknown line, a
    /// duplicate acknowledgement, an acknowledgement of a key never begun) or ignored the
    /// cell's settings (its database file is in another journal mode than
    /// `CRASHFUZZ_JOURNAL_MODE`): a finding about the program, which makes its
    /// acknowledgements, and so the cell's verdict, untrustworthy (`writer::external`).
    Protocol,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 11] = [
        ViolationKind::Open,
        ViolationKind::Integrity,
        ViolationKind::Fts,
        ViolationKind::FtsMiss,
        ViolationKind::LostAck,
        ViolationKind::Phantom,
        ViolationKind::Atomicity,
        ViolationKind::Prefix,
        ViolationKind::ReopenWrite,
        ViolationKind::WriterCrash,
        ViolationKind::Protocol,
    ];

    /// The kinds that say the database itself is damaged (unreadable, inconsistent, holding
    /// what no one wrote, or refusing writes), as opposed to merely missing commits.
    pub fn is_damage(self) -> bool {
        match self {
            // A lost commit is loss, not damage; a crashed writer is an event of the trial,
            // not a state of the file; a search that misses is a wrong answer (the damage
            // behind one, if any, is `fts`'s finding).
            ViolationKind::LostAck | ViolationKind::WriterCrash | ViolationKind::FtsMiss | ViolationKind::Protocol => {
                false
            }
            ViolationKind::Open
            | ViolationKind::Integrity
            | ViolationKind::Fts
            | ViolationKind::Phantom
            | ViolationKind::Atomicity
            | ViolationKind::Prefix
            | ViolationKind::ReopenWrite => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Open => "open",
            ViolationKind::Integrity => "integrity",
            ViolationKind::Fts => "fts",
            ViolationKind::FtsMiss => "fts_miss",
            ViolationKind::LostAck => "lost_ack",
            ViolationKind::Phantom => "phantom",
            ViolationKind::Atomicity => "atomicity",
            ViolationKind::Prefix => "prefix",
            ViolationKind::ReopenWrite => "reopen_write",
            ViolationKind::WriterCrash => "writer_crash",
            ViolationKind::Protocol => "protocol",
        }
    }
}

/// The outcome of one check on one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    Pass,
    Violation {
        detail: String,
    },
    /// Could not run because the image failed an earlier check (e.g. it does not open).
    Blocked {
        reason: String,
    },
    /// Could not run for a reason that says nothing about the image: a lock on a file only the
    /// oracle should have open. Never a pass: the trial that met it is inconclusive.
    CouldNotRun {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: ViolationKind,
    #[serde(flatten)]
    pub outcome: CheckOutcome,
    pub elapsed_us: u64,
}

/// Adds a finding made outside the image checks (another build's answer, a writer that
/// failed to write on) to the result of `check`, which becomes a violation if it was not.
pub fn add_violation(results: &mut Vec<CheckResult>, check: ViolationKind, detail: String) {
    let Some(r) = results.iter_mut().find(|r| r.check == check) else {
        results.push(CheckResult { check, outcome: CheckOutcome::Violation { detail }, elapsed_us: 0 });
        return;
    };
    r.outcome = match &r.outcome {
        CheckOutcome::Violation { detail: own } => CheckOutcome::Violation { detail: format!("{own}; {detail}") },
        CheckOutcome::Pass | CheckOutcome::Blocked { .. } | CheckOutcome::CouldNotRun { .. } => {
            CheckOutcome::Violation { detail }
        }
    };
}

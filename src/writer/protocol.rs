//! What passes between the driver and a writer process besides the acknowledgement file: the
//! configuration it is started with (one JSON argument), the hidden subcommand that runs it, the
//! one-byte announcements it writes on stdout, and its exit codes.
//!
//! Exit codes of a writer: 0 done or graceful shutdown; [`EXIT_WRITER_SETUP`] its harness side
//! failed (configuration, parent-death signal, acknowledgement file, trace, start gate): a
//! harness error; [`EXIT_WRITER_SQLITE`] SQLite refused to open, configure or write the
//! database (an error other than a lock; reported on stderr with its extended code): a
//! finding; [`EXIT_WRITER_LOCKED`] it gave up on a lock outside the retry loop: contention;
//! [`EXIT_WRITER_IO`] persistent injected I/O errors. Any other death is one crashfuzz did not
//! cause (`fault::death`).

use crate::fault::misuse::WriterHazard;
use crate::fault::vfs::VfsConfig;
use crate::scenario::Scenario;
use crate::scenario::matrix::{Cell, CheckpointMode, CheckpointPolicy, SigtermBehaviour};
use crate::writer::pragmas::Pragmas;
use crate::writer::session_store::WorkloadConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The hidden subcommand that runs a writer.
pub const WRITER_SUBCOMMAND: &str = "__writer";

/// The writer's harness side failed (configuration, parent-death signal, acknowledgement
/// file, trace, start gate): a harness error.
pub const EXIT_WRITER_SETUP: i32 = 3;

/// SQLite refused to open, configure or write the database with an error other than a lock.
pub const EXIT_WRITER_SQLITE: i32 = 4;

/// SQLite answered SQLITE_BUSY or SQLITE_LOCKED where the writer cannot retry (a checkpoint,
/// a close, a forked commit): contention, not damage.
pub const EXIT_WRITER_LOCKED: i32 = 6;

/// Under the io_error fault: [`IO_ERRORS_IN_A_ROW_MAX`](crate::writer::child::IO_ERRORS_IN_A_ROW_MAX) transactions in a row failed with an
/// I/O error (a persistent error); the writer gave up.
pub const EXIT_WRITER_IO: i32 = 5;

/// Announced on stdout once the database is open and every pragma read back.
pub const ANNOUNCE_READY: u8 = b'R';

/// Announced on stdout from inside a bulk transaction, after SQLite has spilled pages.
pub const ANNOUNCE_BULK: u8 = b'B';

/// Announced on stdout once the VFS has failed an operation on purpose (fault io_error).
pub const ANNOUNCE_INJECTED: u8 = b'I';

/// Everything a writer process needs, passed as one JSON argument.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriterConfig {
    pub db_path: PathBuf,
    /// One acknowledgement file per connection.
    pub ack_paths: Vec<PathBuf>,
    /// The writer id of connection 0; connection k is `writer_id + k`.
    pub writer_id: u64,
    /// Connections, each used by its own thread (the gateway of the case had several).
    pub connections: u32,
    /// The period of the `truncate_on_timer` checkpoint policy, in milliseconds.
    pub checkpoint_timer_ms: u64,
    pub seed: u64,
    pub pragmas: Pragmas,
    pub workload: WorkloadConfig,
    pub sigterm: SigtermBehaviour,
    /// The checkpoint a graceful writer runs on SIGTERM (WAL only).
    pub graceful_checkpoint: CheckpointMode,
    /// `None` outside WAL mode.
    pub checkpoint: Option<CheckpointPolicy>,
    /// Make the first transaction a bulk one and announce it (timing `bulk`).
    pub bulk_first: bool,
    /// The driver's pid: if our parent is already someone else, the driver died before
    /// `PR_SET_PDEATHSIG` was armed and we must not run.
    pub parent_pid: i32,
    /// Run on the tracing VFS (faults power_loss, crash_point, io_error): every write and sync
    /// is traced, and `Begin`/`Ack` records go into the same trace.
    pub vfs: Option<VfsConfig>,
    /// Report I/O errors (`F` lines) and go on, rather than stop: the io_error fault expects
    /// them.
    pub tolerate_io_errors: bool,
    /// A hazard this process commits besides writing (lock cancellation, a fork).
    pub hazard: Option<WriterHazard>,
    /// Wait, once ready, for the driver to open the start gate (one byte on stdin): the
    /// long-lived writers of a trial start writing together, so that none is still setting up
    /// (and blocked) while another already holds a long transaction.
    pub gated: bool,
    /// A transient writer (it writes a few transactions and closes), not a long-lived one.
    #[serde(default)]
    pub transient: bool,
}

impl WriterConfig {
    /// The configuration of a writer of `cell` on `db`, one acknowledgement file per
    /// connection; no VFS, no misuse, not gated (the fault and the engine add those).
    pub fn for_cell(
        cell: &Cell,
        sc: &Scenario,
        db: &Path,
        ack_paths: Vec<PathBuf>,
        id: u64,
        seed: u64,
    ) -> WriterConfig {
        WriterConfig {
            db_path: db.to_path_buf(),
            connections: ack_paths.len() as u32,
            ack_paths,
            checkpoint_timer_ms: sc.topology.checkpoint_timer_ms,
            writer_id: id,
            seed,
            pragmas: Pragmas::for_cell(cell, &sc.workload),
            workload: sc.workload.clone(),
            sigterm: cell.sigterm.unwrap_or(SigtermBehaviour::Default),
            graceful_checkpoint: sc.kill.graceful_checkpoint,
            checkpoint: cell.checkpoint,
            bulk_first: false,
            parent_pid: std::process::id() as i32,
            vfs: None,
            tolerate_io_errors: false,
            hazard: None,
            gated: false,
            transient: false,
        }
    }
}

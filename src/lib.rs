//! crashfuzz: a crash-consistency fuzz and fault-injection harness for SQLite.
//!
//! # Architecture
//!
//! The tree reads as the data flows. A scenario becomes cells; the generator schedules trials
//! over them; each trial runs the client (writers) under the nemesis (a fault), hands the crash
//! image(s) to the checker (the oracle) and becomes one record; records become reports.
//!
//! ```text
//! scenario/ ─► cells ─► run/campaign ─► run/trial (phases) ─► record ─► report/
//!   TOML,        matrix    seed, budget,   lane: template db     trials.jsonl  summary, junit,
//!   expect       expand    jobs, shard     writer/: spawn ▸ ack  (fsynced)     charts, pages
//!                                          fault/: moment ▸ reap ▸ after_reap
//!                                          images: as left │ power_loss from the trace
//!                                          oracle/: CHECKS ─► expect::verdict
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`base`] | leaves: database files ([`base::dbfiles`]), SQLite result codes ([`base::sqlerr`]), statistics ([`base::stats`]), scratch directories ([`base::scratch`]), child-process plumbing ([`base::process`]), the crash image held before the checks ([`base::pristine`]) |
//! | [`record`] | the trial record (one line of `trials.jsonl`), check outcomes ([`record::checks`]), what acknowledgements promise ([`record::expected`]) |
//! | [`scenario`] | TOML scenarios: parsing, defaults, validation with file:line errors; `[writer]` and `[oracle]` ([`scenario::app`]) |
//! | [`scenario::matrix`] | the cell axes and the pure matrix expansion |
//! | [`scenario::expect`] | expectations, overrides and verdicts |
//! | [`run`] | the generator and the engine: [`run::campaign`], [`run::trial`] (a trial as phases), [`run::topology`] (its processes), [`run::lane`] (its database), [`run::keep`] (kept failures and replay), [`run::ids`], [`run::env`], [`run::writers`] (each cell's writer on its SQLite build) |
//! | [`writer`] | the client: the seam ([`writer::program`]), the `__writer` child ([`writer::child`]) and the fork server that starts it ([`writer::fork_server`]), its protocol, acknowledgement log, pragmas, the driver's process handle, the session store workload; an application's own program ([`writer::external`]) |
//! | [`fault`] | the nemesis: one module per fault behind [`fault::Fault`], and the machinery they share: the tracing VFS, its trace, the power-loss builder and images, deaths, misuse inside writers, the load generator |
//! | [`oracle`] | the checker: the list of checks, generic ([`oracle::generic`]), the session store's ([`oracle::ledger`]) and an application's ([`oracle::app`]); another build's verdict ([`oracle::crosscheck`]) |
//! | [`sqlite`] | SQLite builds other than the bundled one ([`sqlite::builds`]), the `__sql` child that runs them ([`sqlite::child`]) and the writer that runs on them ([`sqlite::shared_writer`]) |
//! | [`report`] | aggregation, `summary.json`, Markdown, JUnit, the console, charts, `crashfuzz report` merging, and the committed pages (durability, hazards, benchmarks) |
//! | [`cli`] | argument parsing, dispatch, the exit-code table |
//! | [`error`] | user/environment errors and their exit codes |
//!
//! Imports go one way: `base` and `record` import nothing above them, and no module imports a
//! module that imports it back (`harness/architecture.rs` fails on a cycle, a module without a
//! `//!` paragraph, or a function over 150 lines).
//!
//! # Architecture invariants
//!
//! - **The driver never holds a connection to a database while writers run on it**, and never
//!   forks itself: it starts children only through `std::process::Command` (which uses
//!   `posix_spawn` where the C library can honour every option asked, here a new process group,
//!   and otherwise `fork` + `exec` with nothing but async-signal-safe calls between them; the
//!   one `pre_exec` hook, for an application's own writer ([`writer::external`]), only clears
//!   its acknowledgement descriptor's close-on-exec flag, unblocks signals and arms
//!   `PR_SET_PDEATHSIG`), and only opens a trial's database after every writer of that trial
//!   has been reaped. The forks are elsewhere: the fork server ([`writer::fork_server`]), a
//!   single-threaded child that holds no connection and has opened no file through SQLite,
//!   forks crashfuzz's own writers, and a writer forks on purpose in the `fork_connection`
//!   hazard.
//! - **Every child lives in its own process group and dies with the driver** (`PR_SET_PDEATHSIG`
//!   set by the child itself, or for an application's program between fork and exec, then a
//!   parent-pid check that closes the race; a forked writer dies with its fork server, which
//!   dies with the driver's thread that started it); the scratch
//!   directories a SIGKILLed driver leaves are swept by the next one ([`base::scratch`]). The one
//!   exception is the build tools (cargo, the C compiler) that make another SQLite before any
//!   trial, and the cargo that compiles the shared-library writer: they stay in crashfuzz's
//!   process group, so that Ctrl-C reaches them as it would any build ([`sqlite::builds`]).
//! - **Only the bundled SQLite is linked in**; any other build runs in an `__sql` child
//!   ([`sqlite::child`]), so that a build crashing on an image never takes the driver down, or
//!   in the writers of a cell on that build: the shared-library writer, crashfuzz compiled
//!   without the `bundled` feature ([`sqlite::shared_writer`]). The oracle always runs on the
//!   bundled build; every writer reads its own build back and must be on its cell's.
//! - **All randomness derives from the campaign seed**: trial `i` uses ChaCha8 stream `i`.
//! - **A check that cannot run is a harness error, never a pass.**
//! - **Results are appended and fsynced per trial**, so a killed campaign keeps what it measured.
//! - The crash-image builder, the expectation table and the matrix expansion are pure functions.
//! - **A trace record always happened**: the VFS appends it after the operation succeeded, by
//!   one copy into the trial's shared log (a memory mapping of the trace file); a power-loss
//!   image is built only from records, and from the files present at the trial's start, which
//!   are fsynced first.

pub mod base;
pub mod cli;
pub mod error;
pub mod fault;
pub mod oracle;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod testkit;
pub mod writer;

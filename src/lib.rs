//! crashfuzz: a crash-consistency fuzz and fault-injection harness for SQLite.
//!
//! # Architecture
//!
//! A campaign turns a scenario into trials and trials into verdicts:
//!
//! ```text
//! scenario (TOML) ─► matrix::expand ─► cells ─► campaign (seed, budget, jobs, shard)
//!    ─► trial: copy template db → spawn `crashfuzz __writer` (on fault::vfs when traced)
//!       → fault::kill (signal, or the VFS's own crash point / I/O error) → reap
//!    ─► crash image(s): the files as left (process crash) or imaging (power loss:
//!       fault::trace → fault::powerloss::build at cut points)
//!    ─► oracle::check_image (oracle) ─► expect::verdict ─► report (summary, junit, charts)
//!
//! trials.jsonl of one or more runs ─► merge (`crashfuzz report`) ─► report
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`cli`] | argument parsing, dispatch, the exit-code table |
//! | [`error`] | user/environment errors and their exit codes |
//! | [`scenario`] | TOML scenarios: parsing, defaults, validation with file:line errors |
//! | [`matrix`] | the cell axes and the pure matrix expansion |
//! | [`pragmas`] | connection pragmas, set explicitly and read back |
//! | [`workload`] | the `session_store` schema, transactions and their ledger |
//! | [`writer`] | the `__writer` child process: pragmas, the write loop, acknowledgements |
//! | [`fault`] | fault injection: `kill` (SIGTERM, grace, SIGKILL, supervision), `vfs` (the tracing, crashing, failing VFS), `trace` (its record format), `powerloss` (the pure crash-image builder) |
//! | [`imaging`] | power-loss images of a trial: cuts, fates, dedup, checks, shrinking, explanation |
//! | [`topology`] | the processes of a trial: gateway, connections, transients, victim, survivors |
//! | [`trial`] | one trial end to end, and its JSON line |
//! | [`check`] | the oracle: checks 1–8 (open, integrity, fts, lost_ack, phantom, atomicity, prefix, reopen_write) on one image |
//! | [`durability`] | the durability matrix page: promises beside measured rates and commit costs |
//! | [`hazardreport`] | the hazards page: damaged and lost-ack rates per hazard beside the kill cells |
//! | [`crosscheck`] | the same image judged by the bundled and another SQLite build, side by side |
//! | [`sqlite_builds`] | naming SQLite builds (`bundled`, `system`, `3.X.Y`, a path); the versions crashfuzz fetches, compiles and caches itself |
//! | [`sqlchild`] | the `__sql` child: SQL run by any SQLite build, loaded in a process of its own |
//! | [`expect`] | built-in expectations, overrides and verdicts |
//! | [`campaign`] | scheduling trials over cells, output files, Ctrl-C handling |
//! | [`report`] | summary.json, summary.md, junit.xml and the console matrix |
//! | [`charts`] | the SVG charts of a summary: violation rates, synchronous levels side by side, commit latency |
//! | [`merge`] | `crashfuzz report`: run directories read back, checked and merged into one summary |
//! | [`stats`] | Wilson bounds and latency percentiles |
//! | [`scratch`] | scratch directories stamped with their owner, and the sweep of those a killed owner left |
//! | [`benchreport`] | the write-latency benchmarks' ids and `bench-report`, their Markdown and SVG report |
//!
//! # Architecture invariants
//!
//! - **The driver never holds a connection to a database while writers run on it**, and never
//!   forks itself: it starts children only through `std::process::Command` (which uses
//!   `posix_spawn` where the C library can honour every option asked, here a new process group,
//!   and otherwise `fork` + `exec` with nothing but async-signal-safe calls between them; no
//!   `pre_exec` hook is ever installed), and only opens a trial's database after every writer
//!   of that trial has been reaped. Only a writer forks, on purpose, in the `fork_connection`
//!   hazard.
//! - **Every child lives in its own process group and dies with the driver** (`PR_SET_PDEATHSIG`
//!   set by the child itself, then a parent-pid check that closes the race); the scratch
//!   directories a SIGKILLed driver leaves are swept by the next one ([`scratch`]). The one
//!   exception is the build tools (cargo, the C compiler) that make another SQLite before any
//!   trial: they stay in crashfuzz's process group, so that Ctrl-C reaches them as it would any
//!   build ([`sqlite_builds`]).
//! - **Only the bundled SQLite is linked in**; any other build runs in an `__sql` child
//!   ([`sqlchild`]), so that a build crashing on an image never takes the driver down.
//! - **All randomness derives from the campaign seed**: trial `i` uses ChaCha8 stream `i`.
//! - **A check that cannot run is a harness error, never a pass.**
//! - **Results are appended and fsynced per trial**, so a killed campaign keeps what it measured.
//! - The crash-image builder, the expectation table and the matrix expansion are pure functions.
//! - **A trace record always happened**: the VFS appends it after the operation succeeded, with
//!   one `write(2)`; a power-loss image is built only from records, and from the files present
//!   at the trial's start, which are fsynced first.

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

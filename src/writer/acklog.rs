//! The acknowledgement file a writer appends to and the driver reads once the writer is dead:
//! its line format and its parser, in one place. One line per `write(2)` on an `O_APPEND`
//! descriptor: a line is wholly in the file or absent, so a SIGKILL one instruction after an
//! acknowledgement cannot lose it.
//!
//! Lines: `V version source_id` the SQLite the writer runs on, read back from its connection
//! (`sqlite_version()`, `sqlite_source_id()`) before anything else, `B seq` begun, `A seq latency_us at_ns` acknowledged after COMMIT returned, `Y n` busy
//! retries so far, `K mode busy log done us on_shutdown` a checkpoint, `T`/`C`/`D`/`X` the
//! graceful shutdown's steps, `E` out of work, `F seq code` an I/O error, `U seq` committed
//! although COMMIT failed, `G` gave up after persistent I/O errors, `L 0|1` (WAL mode) the
//! process's last connection closed cleanly, leaving the WAL (0) or having deleted it as the
//! last connection (1).

use crate::record::{CheckpointRecord, SqliteIdentity};
use std::path::Path;

/// What one writer's ack file says, read by the driver after the writer was reaped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AckLog {
    /// The SQLite the writer ran on (`V`), as its connection named itself (an application's
    /// program: as the library it loaded named itself, reported by the interposer).
    pub sqlite: Option<SqliteIdentity>,
    /// An application's program loaded no SQLite library: its SQLite is compiled in.
    pub sqlite_compiled_in: bool,
    /// Highest sequence begun (`B`), 0 for none.
    pub begun: u64,
    /// Highest sequence acknowledged (`A`), 0 for none.
    pub acked: u64,
    /// Commit latencies in microseconds, in commit order.
    pub latencies_us: Vec<u64>,
    /// When each acknowledgement was written, CLOCK_MONOTONIC nanoseconds, in commit order.
    pub acked_at_ns: Vec<u64>,
    /// The sequence number of each acknowledgement, in commit order.
    pub acked_seqs: Vec<u64>,
    pub busy_retries: u64,
    pub checkpoints: Vec<CheckpointRecord>,
    /// Graceful shutdown markers: started (`T`), checkpoint begun (`C`) and done (`D`), exited (`X`).
    pub shutdown_started: bool,
    pub shutdown_checkpoint_started: bool,
    pub shutdown_checkpoint_done: bool,
    pub shutdown_exited: bool,
    /// The writer ran out of work (`E`) before any fault.
    pub finished: bool,
    /// Transactions that failed with an I/O error (`F seq code`): (seq, extended code).
    pub io_errors: Vec<(u64, i32)>,
    /// Of those, the ones found committed although COMMIT reported the error (`U seq`).
    pub committed_despite_error: Vec<u64>,
    /// The writer gave up after persistent I/O errors (`G`).
    pub gave_up: bool,
    /// In WAL mode, once the writer process closed its last connection cleanly (`L 0|1`):
    /// whether the WAL was gone then, i.e. it closed as the last connection it believed it
    /// was, checkpointed and deleted the WAL.
    pub closed_alone: Option<bool>,
    /// An application's own writer (`writer::external`): the key of each sequence number
    /// (index `seq - 1`), numbered in the order its lines first named them. Empty for the
    /// built-in writer, whose sequence numbers are its keys.
    pub keys: Vec<String>,
    /// An application's own writer sent `begin` lines.
    pub begins: bool,
    /// It said `ready`.
    pub ready: bool,
    /// Where its lines broke the protocol: the `protocol` finding.
    pub protocol: Vec<String>,
}

/// Parses a writer's ack file. A torn last line (no newline: impossible with one write(2) per
/// line short of a full disk, but cheap to tolerate) is ignored; any other malformed line is a
/// harness error.
pub fn read_acks(path: &Path, writer: u64) -> Result<AckLog, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_acks(&text, writer).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_acks(text: &str, writer: u64) -> Result<AckLog, String> {
    let mut log = AckLog::default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    for (index, line) in complete.lines().enumerate() {
        let bad = || format!("line {}: malformed ack line {line:?}", index + 1);
        let fields: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| -> Result<u64, String> { fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(bad) };
        let int = |i: usize| -> Result<i64, String> { fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(bad) };
        match fields[0] {
            "V" => {
                let (version, source_id) = line[2..].split_once(' ').ok_or_else(bad)?;
                log.sqlite = Some(SqliteIdentity { version: version.to_string(), source_id: source_id.to_string() });
            }
            "B" => log.begun = log.begun.max(num(1)?),
            "A" => {
                log.acked = log.acked.max(num(1)?);
                log.acked_seqs.push(num(1)?);
                log.latencies_us.push(num(2)?);
                log.acked_at_ns.push(num(3)?);
            }
            "Y" => log.busy_retries = num(1)?,
            "K" => log.checkpoints.push(CheckpointRecord {
                writer,
                mode: fields.get(1).ok_or_else(bad)?.to_string(),
                busy: int(2)?,
                log_frames: int(3)?,
                checkpointed_frames: int(4)?,
                elapsed_us: num(5)?,
                on_shutdown: num(6)? == 1,
            }),
            "T" => log.shutdown_started = true,
            "C" => log.shutdown_checkpoint_started = true,
            "D" => log.shutdown_checkpoint_done = true,
            "X" => log.shutdown_exited = true,
            "E" => log.finished = true,
            "F" => log.io_errors.push((num(1)?, int(2)? as i32)),
            "U" => log.committed_despite_error.push(num(1)?),
            "G" => log.gave_up = true,
            "L" => log.closed_alone = Some(num(1)? == 1),
            _ => return Err(bad()),
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_line_kind_and_ignores_a_torn_tail() {
        let text = "V 3.40.1 2022-12-28 14:03:47 df5c253c0b3dd24916e4ec7cf77d3db5294cc9fd45ae7b9c5e82ad8197f3alt1\n\
                    B 1\nA 1 250 7\nB 2\nY 1\nB 2\nF 2 266\nB 2\nA 2 300 9\nK TRUNCATE 0 12 12 900 1\nT\nC\nD\nX\nL 1\nB 3\nA 3 4";
        let log = parse_acks(text, 7).unwrap();
        let sqlite = log.sqlite.as_ref().unwrap();
        assert_eq!(sqlite.version, "3.40.1");
        assert!(sqlite.source_id.starts_with("2022-12-28 14:03:47 df5c"), "{sqlite:?}");
        assert_eq!(log.begun, 3);
        assert_eq!(log.closed_alone, Some(true));
        assert_eq!(parse_acks("L 0\n", 7).unwrap().closed_alone, Some(false));
        assert_eq!(log.acked, 2, "the torn `A 3` line must not count as an acknowledgement");
        assert_eq!(log.latencies_us, vec![250, 300]);
        assert_eq!(log.acked_at_ns, vec![7, 9]);
        assert_eq!(log.acked_seqs, vec![1, 2]);
        assert_eq!(log.io_errors, vec![(2, 266)]);
        assert_eq!(log.busy_retries, 1);
        assert_eq!(log.checkpoints.len(), 1);
        assert_eq!(log.checkpoints[0].busy, 0);
        assert!(log.checkpoints[0].on_shutdown);
        assert!(log.shutdown_started && log.shutdown_checkpoint_started && log.shutdown_checkpoint_done);
        assert!(log.shutdown_exited && !log.finished);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_acks("A x 1 1\n", 1).is_err());
        assert!(parse_acks("A 1 1\n", 1).is_err(), "an acknowledgement without its time");
        assert!(parse_acks("Q\n", 1).is_err());
        assert!(parse_acks("V 3.40.1\n", 1).is_err(), "a version without its source id");
        assert_eq!(parse_acks("", 1).unwrap(), AckLog::default());
    }
}

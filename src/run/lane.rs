//! Where a trial's database comes from: each cell's template (a freshly seeded database built
//! once per campaign, durable on disk) and each worker's lane (its directory, and under
//! `database.mode = "continue"` the databases it keeps across trials, one per cell, with what
//! is known to be in each).

use crate::base::dbfiles::{DB_NAME, db_bytes, move_db_files, remove_if_present, reset_from, sidecar};
use crate::error::{Error, Result};
use crate::fault::ShortTrace;
use crate::record::expected::WriterExpectation;
use crate::scenario::matrix::{Cell, JournalMode};
use crate::writer::pragmas::Pragmas;
use crate::writer::program::Program;
use crate::writer::session_store::{self, WorkloadConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A freshly seeded database for one cell, copied for every trial of it.
#[derive(Clone, Debug)]
pub struct Template {
    pub path: PathBuf,
    /// Transactions the seed wrote as writer [`session_store::SEED_WRITER`].
    pub seed_txns: u64,
    /// What the cell's fault prepared for every trial (systematic crash points' short trace).
    pub short_trace: Option<ShortTrace>,
    /// The keys it holds, for an application's writer ([`Program::template_keys`]).
    pub seeded_keys: std::collections::BTreeSet<String>,
}

/// Creates and seeds the template database of `cell` at `path`, then closes it (in WAL mode
/// the close checkpoints and removes the `-wal`, leaving one self-contained file).
pub fn build_template(
    program: &dyn Program,
    path: &Path,
    cell: &Cell,
    workload_cfg: &WorkloadConfig,
    seed: u64,
) -> Result<Template> {
    let ctx = |what: &str| format!("template {} for {}: {what}", path.display(), cell.id());
    let seed_txns = program.make_template(path, &Pragmas::for_cell(cell, workload_cfg), workload_cfg, seed)?;
    // PERSIST keeps its journal with a zeroed header after every commit: not hot, not needed.
    // Remove it so the template is one self-contained file like the others.
    let journal = sidecar(path, "-journal");
    if cell.journal_mode == JournalMode::Persist && journal.exists() {
        std::fs::remove_file(&journal).map_err(|e| Error::io(ctx("remove the persisted journal"), e))?;
    }
    for suffix in ["-wal", "-journal"] {
        let side = sidecar(path, suffix);
        if side.exists() && std::fs::metadata(&side).map(|m| m.len()).unwrap_or(0) > 0 {
            return Err(Error::Harness(ctx(&format!("{} left behind after close", side.display()))));
        }
    }
    // Make the template durable: the power-loss model takes the files present at a trial's
    // start as durable, so they must be.
    for file in [path.to_path_buf(), path.parent().unwrap_or(Path::new(".")).to_path_buf()] {
        std::fs::File::open(&file).and_then(|f| f.sync_all()).map_err(|e| Error::io(ctx("fsync"), e))?;
    }
    let seeded_keys = program.template_keys(path)?;
    Ok(Template { path: path.to_path_buf(), seed_txns, short_trace: None, seeded_keys })
}

/// One worker's place to run trials: its directory, and under `continue` the databases it
/// keeps across trials, one per cell, with what is known to be in each.
#[derive(Debug)]
pub struct Lane {
    pub dir: PathBuf,
    /// `continue`: per cell, the database a clean trial of it left (stashed in
    /// [`Lane::stash`]) and what is in it.
    kept: BTreeMap<usize, KeptDatabase>,
}

/// A database kept for the next trial of its cell (`continue`).
#[derive(Debug)]
struct KeptDatabase {
    /// Per writer, what the database holds: the present transactions of every earlier trial.
    history: BTreeMap<u64, WriterExpectation>,
    /// The trial that left it.
    trial: u64,
}

/// The database a trial starts from, ready in the lane.
pub struct Start {
    pub db: PathBuf,
    /// Per writer, what is in it from before the trial (the seed, earlier trials).
    pub history: BTreeMap<u64, WriterExpectation>,
    /// `continue`: the trial whose database this one continues.
    pub continued_from: Option<u64>,
    pub db_bytes: u64,
}

impl Lane {
    pub fn new(dir: PathBuf) -> Lane {
        Lane { dir, kept: BTreeMap::new() }
    }

    /// Where cell `cell`'s continued database waits between its trials.
    fn stash(&self, cell: usize) -> PathBuf {
        self.dir.join(format!("continue-{cell}")).join(DB_NAME)
    }

    /// Puts the trial's starting database in place: the cell's kept one when `continues` and
    /// there is one (it comes back from its stash), the template otherwise. Clears what an
    /// earlier trial left in the lane.
    pub fn start(&mut self, cell_index: usize, cell: &Cell, template: &Template, continues: bool) -> Result<Start> {
        let io = |what: String| move |e: std::io::Error| Error::io(what, e);
        std::fs::create_dir_all(&self.dir).map_err(io(format!("create {}", self.dir.display())))?;
        let db = self.dir.join(DB_NAME);
        let kept = if continues { self.kept.remove(&cell_index) } else { None };
        let (history, continued_from) = match kept {
            Some(k) => {
                move_db_files(&self.stash(cell_index), &db)
                    .map_err(io(format!("restore the database of {}", cell.id())))?;
                (k.history, Some(k.trial))
            }
            None => {
                reset_from(&template.path, &db).map_err(io(format!("copy template to {}", db.display())))?;
                let n = template.seed_txns;
                (BTreeMap::from([(session_store::SEED_WRITER, WriterExpectation::upto(n, n))]), None)
            }
        };
        for leftover in [self.pristine(), self.dir.join("image"), self.dir.join("backup")] {
            if leftover.exists() {
                std::fs::remove_dir_all(&leftover).map_err(io(format!("clear {}", leftover.display())))?;
            }
        }
        crate::fault::trace::remove(&self.trace()).map_err(io(format!("clear {}", self.trace().display())))?;
        self.remove_writer_logs().map_err(io(format!("clear the writers' logs in {}", self.dir.display())))?;
        let db_bytes = db_bytes(&db);
        Ok(Start { db, history, continued_from, db_bytes })
    }

    /// Removes the acknowledgement files and stderr logs of the previous trial's writers (a
    /// kept failure has its copies): without this a lane would hold two files per trial ever
    /// run.
    fn remove_writer_logs(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if (name.starts_with("acks-") || name.starts_with("stderr-")) && name.ends_with(".log") {
                remove_if_present(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Keeps the lane's database, checked clean, for the cell's next trial, with what is now
    /// known to be in it.
    pub fn keep(&mut self, cell_index: usize, trial: u64, history: BTreeMap<u64, WriterExpectation>) -> Result<()> {
        let db = self.dir.join(DB_NAME);
        move_db_files(&db, &self.stash(cell_index))
            .map_err(|e| Error::io(format!("keep the database of cell {cell_index} for its next trial"), e))?;
        self.kept.insert(cell_index, KeptDatabase { history, trial });
        Ok(())
    }

    /// Where the crash image as the fault left it goes when its files are needed
    /// ([`Pristine`](crate::base::pristine::Pristine)).
    pub fn pristine(&self) -> PathBuf {
        self.dir.join("pristine")
    }

    /// The writers' trace (faults on the tracing VFS).
    pub fn trace(&self) -> PathBuf {
        self.dir.join(crate::fault::trace::TRACE_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_trials_writer_logs_go_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let lane = Lane::new(tmp.path().to_path_buf());
        for name in ["acks-4000.log", "acks-4001.log", "stderr-4000.log", DB_NAME, "acks-notes.txt"] {
            std::fs::write(tmp.path().join(name), b"x").unwrap();
        }
        lane.remove_writer_logs().unwrap();
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["acks-notes.txt".to_string(), DB_NAME.to_string()]);
    }
}

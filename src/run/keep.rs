//! Keeping a failure and replaying it: `failures/<trial>/` holds the crash image (or, for a
//! power loss, the base files and the trace it is rebuilt from), the acknowledgements, the
//! writers' stderr, `trial.json` ([`KeptTrial`]: enough to re-run the checks and the trial) and
//! `replay.txt`; [`replay`] re-runs the image's checks on a copy, deterministically.

use crate::base::dbfiles::{self, DB_NAME, copy_image, read_files};
use crate::base::pristine::Pristine;
use crate::error::{Error, Result};
use crate::fault::Judge;
use crate::fault::power_loss::builder::{Choice, Device};
use crate::fault::power_loss::images;
use crate::fault::trace;
use crate::oracle::{self, CheckConfig, CheckReport, ReopenConfig};
use crate::record::TrialRecord;
use crate::record::checks::{CheckResult, ViolationKind};
use crate::record::expected::Expected;
use crate::run::env::TrialEnv;
use crate::scenario::matrix::Cell;
use crate::writer::pragmas::Pragmas;
use crate::writer::session_store::WorkloadConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// What is kept in `failures/<trial>/trial.json`: enough to re-run the checks (`replay`) on
/// the kept image, and to re-run the whole trial.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeptTrial {
    pub trial: u64,
    pub seed: u64,
    pub campaign_seed: u64,
    pub cell: Cell,
    pub cell_id: String,
    pub scenario: String,
    pub pragmas: Pragmas,
    pub workload: WorkloadConfig,
    pub integrity: crate::oracle::IntegrityLevel,
    pub fts_samples: u32,
    pub recovery_writer: u64,
    pub expected: Expected,
    /// The image's own checks as the campaign ran them (what `replay` re-runs and compares).
    pub checks: Vec<CheckResult>,
    /// What the trial's processes showed, not its image (a writer that crashed, one that
    /// failed to write on): recorded here, and re-run only by re-running the trial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process_findings: Vec<ProcessFinding>,
    /// No image was kept: only the processes failed (a power-loss trial whose images all
    /// passed). `replay` then has only the recorded findings to show.
    #[serde(default)]
    pub no_image: bool,
    /// A cross_version cell: the other build that judged the image too (`replay` asks it
    /// again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_sqlite: Option<crate::sqlite::builds::SqliteBuild>,
    /// A power-loss image: how to rebuild it from `base/` and `trace.bin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss: Option<KeptPowerLoss>,
    /// The application's own writer and its `[oracle]` queries, when the trial ran one:
    /// `replay` asks the image what the campaign asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<crate::scenario::app::AppWriter>,
}

/// A finding of a trial's processes, as kept for `replay`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFinding {
    pub check: ViolationKind,
    pub detail: String,
}

/// A kept power-loss image: the cut, the fate of each undetermined operation, and the hash of
/// the files they build (a replay proves it rebuilt the same bytes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeptPowerLoss {
    pub cut: u64,
    pub device: Device,
    pub choices: Vec<Choice>,
    pub files_hash: u64,
    /// The shrunk choices (a minimal set of lost writes that still fails) and their words.
    pub shrunk: Vec<Choice>,
    pub explanation: Vec<String>,
}

/// File name of the image inside a kept failure directory.
pub const KEPT_IMAGE_DIR: &str = "image";

/// Power loss: the files present at the trial's start, and the trace.
pub const KEPT_BASE_DIR: &str = "base";

/// What keeping a failure needs.
pub struct Keeper<'a> {
    pub env: &'a TrialEnv<'a>,
    pub cell: &'a Cell,
    pub pragmas: &'a Pragmas,
    pub recovery_writer: u64,
    pub ack_paths: &'a [(u64, PathBuf, PathBuf)],
}

impl Keeper<'_> {
    /// Sets the record's replay line and, if the cell's quota of kept failures allows, creates
    /// and returns `failures/<trial>/`.
    pub fn claim(&self, record: &mut TrialRecord) -> Result<Option<PathBuf>> {
        let env = self.env;
        let rerun = format!("crashfuzz run {} --seed {} --trial {}", env.scenario_arg, env.campaign_seed, record.trial);
        record.replay = Some(rerun.clone());
        let cell_index = env.cells.iter().position(|c| c == self.cell).expect("the cell is in the campaign");
        if env.kept_per_cell[cell_index].fetch_add(1, Ordering::SeqCst) >= env.scenario.output.failures_kept_per_cell {
            return Ok(None);
        }
        let rel = format!("failures/{}", record.trial);
        let dir = env.run_dir.join(&rel);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        record.replay = Some(format!("crashfuzz replay {}  # or: {rerun}", dir.display()));
        record.kept_failure = Some(rel);
        Ok(Some(dir))
    }

    pub fn write_kept(
        &self,
        dir: &Path,
        record: &TrialRecord,
        expected: &Expected,
        power_loss: Option<KeptPowerLoss>,
        image_checks: Vec<CheckResult>,
        findings: Vec<(ViolationKind, String)>,
    ) -> Result<()> {
        let (env, sc) = (self.env, self.env.scenario);
        let io = |what: String| move |e: std::io::Error| Error::io(what, e);
        for (id, ack, stderr) in self.ack_paths {
            let _ = std::fs::copy(ack, dir.join(format!("acks-{id}.log")));
            let _ = std::fs::copy(stderr, dir.join(format!("stderr-{id}.log")));
        }
        let explanation = power_loss.as_ref().map(|p| p.explanation.clone()).unwrap_or_default();
        let cut = power_loss.as_ref().map(|p| p.cut);
        let kept = KeptTrial {
            trial: record.trial,
            seed: record.seed,
            campaign_seed: env.campaign_seed,
            cell: *self.cell,
            cell_id: self.cell.id(),
            scenario: env.scenario_arg.to_string(),
            pragmas: self.pragmas.clone(),
            workload: sc.workload.clone(),
            integrity: sc.check.integrity,
            fts_samples: sc.check.fts_samples,
            recovery_writer: self.recovery_writer,
            expected: expected.clone(),
            app: sc.app.clone(),
            no_image: image_checks.is_empty() || !dir.join(KEPT_IMAGE_DIR).exists(),
            checks: image_checks,
            process_findings: findings.into_iter().map(|(check, detail)| ProcessFinding { check, detail }).collect(),
            other_sqlite: env.other_sqlite.is_some().then(|| sc.hazard.other_sqlite.clone()),
            power_loss,
        };
        let json = serde_json::to_string_pretty(&kept).expect("kept trial serializes");
        std::fs::write(dir.join("trial.json"), json).map_err(io(format!("write {}/trial.json", dir.display())))?;
        let failed: Vec<String> = record
            .checks
            .iter()
            .filter_map(|c| match &c.outcome {
                crate::record::checks::CheckOutcome::Violation { detail } => {
                    Some(format!("#  {}: {detail}", c.check.as_str()))
                }
                crate::record::checks::CheckOutcome::Pass
                | crate::record::checks::CheckOutcome::Blocked { .. }
                | crate::record::checks::CheckOutcome::CouldNotRun { .. } => None,
            })
            .collect();
        let image = match cut {
            Some(cut) => format!(
                "# the power-loss image at cut {cut} of the trace (rebuilt from base/ and trace.bin)\n\
                 # minimal lost writes that still fail:\n{}\n",
                explanation.iter().map(|l| format!("#  {l}")).collect::<Vec<_>>().join("\n")
            ),
            None => String::new(),
        };
        let replay = format!(
            "# trial {} of cell {} (seed {}), campaign seed {}\n{image}\
             # failed checks:\n{}\n\
             # re-run the checks on the kept crash image (deterministic):\n\
             crashfuzz replay {}\n\
             # re-run the whole trial (same seed; a kill lands at the same offset, not the same instruction):\n\
             crashfuzz run {} --seed {} --trial {}\n",
            record.trial,
            self.cell.id(),
            record.seed,
            env.campaign_seed,
            failed.join("\n"),
            dir.display(),
            env.scenario_arg,
            env.campaign_seed,
            record.trial
        );
        std::fs::write(dir.join("replay.txt"), replay).map_err(io(format!("write {}/replay.txt", dir.display())))
    }
}

/// Re-runs the checks on a kept failure: the image is copied first (a power-loss image is
/// rebuilt from the base files and the trace, and must hash as it did), so a replay is
/// repeatable. Returns `None` for the report when no image was kept (only the trial's
/// processes failed). What the processes showed is in the kept trial's `process_findings`:
/// an event of the live trial, which no image can replay.
pub fn replay(dir: &Path) -> Result<(KeptTrial, Option<CheckReport>)> {
    let trial_json = dir.join("trial.json");
    let text = std::fs::read_to_string(&trial_json).map_err(|source| Error::BadPath {
        path: trial_json.clone(),
        what: "not a failure directory".into(),
        source,
    })?;
    let kept: KeptTrial = serde_json::from_str(&text).map_err(|e| Error::Scenario {
        file: trial_json.display().to_string(),
        line: Some(e.line()),
        setting: "trial.json".into(),
        message: e.to_string(),
    })?;
    if kept.no_image {
        return Ok((kept, None));
    }
    // Stamped like every scratch directory, so a killed replay's is swept by the next run.
    crate::base::scratch::sweep_and_say(None);
    let work = crate::base::scratch::create(None, "replay-").map_err(|e| Error::io("create a scratch directory", e))?;
    match &kept.power_loss {
        None => {
            copy_image(&dir.join(KEPT_IMAGE_DIR).join(DB_NAME), work.path())
                .map_err(|e| Error::io(format!("copy {}", dir.join(KEPT_IMAGE_DIR).display()), e))?;
        }
        Some(p) => {
            let base = read_files(&dir.join(KEPT_BASE_DIR).join(DB_NAME))
                .map_err(|e| Error::io(format!("read {}", dir.join(KEPT_BASE_DIR).display()), e))?;
            let trace = trace::read(&dir.join(trace::TRACE_FILE)).map_err(Error::Harness)?;
            let files =
                crate::fault::power_loss::builder::build(&base, &trace.records, p.cut as usize, &p.device, &p.choices);
            if images::files_hash(&files) != p.files_hash {
                return Err(Error::Harness(format!(
                    "replay {}: the rebuilt image differs from the one the campaign checked",
                    dir.display()
                )));
            }
            dbfiles::write_files(work.path(), &files).map_err(|e| Error::io("write the rebuilt image", e))?;
        }
    }
    let cfg = CheckConfig {
        integrity: kept.integrity,
        fts_samples: kept.fts_samples,
        seed: kept.seed,
        reopen: ReopenConfig {
            pragmas: Some(kept.pragmas.clone()),
            writer_id: kept.recovery_writer,
            workload: kept.workload.clone(),
        },
        schema: match &kept.app {
            Some(app) => crate::oracle::app::AppSchema::leak(app),
            None => &crate::oracle::ledger::SESSION_STORE,
        },
    };
    let mut report = oracle::check_image(&work.path().join(DB_NAME), &cfg, Some(&kept.expected))
        .map_err(|e| Error::Harness(format!("replay {}: checks could not run: {e:#}", dir.display())))?;
    // What else judged the image (another SQLite build) judges the kept one again, on its own
    // copies (never the kept one).
    let resolved = match &kept.other_sqlite {
        Some(other) => Some(crate::sqlite::builds::resolve(other).map_err(|source| Error::SqliteBuild {
            what: format!("replay {}: the other build", dir.display()),
            source,
        })?),
        None => None,
    };
    let pristine = Pristine::on_disk(&dir.join(KEPT_IMAGE_DIR).join(DB_NAME));
    let judge = Judge { pristine: &pristine, other_sqlite: resolved.as_ref() };
    crate::fault::of(kept.cell.fault)
        .judge(&judge, &mut report.results)
        .map_err(|e| Error::Harness(format!("replay {}: {e}", dir.display())))?;
    // A cell whose writers ran on another build: that build judges again beside the oracle.
    if !kept.cell.sqlite.is_bundled() && kept.power_loss.is_none() {
        let build = crate::sqlite::builds::resolve(&kept.cell.sqlite.build()).map_err(|source| Error::SqliteBuild {
            what: format!("replay {}: the writers' build", dir.display()),
            source,
        })?;
        crate::oracle::crosscheck::agree_with_writers(&dir.join(KEPT_IMAGE_DIR).join(DB_NAME), &build, &mut report)
            .map_err(|e| Error::Harness(format!("replay {}: the writers' build's check: {e:#}", dir.display())))?;
    }
    Ok((kept, Some(report)))
}

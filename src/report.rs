//! (being written)
// TEMP STUB
use crate::{expect::Expectation, matrix::Cell, trial::TrialRecord};
pub struct RunMeta {
    pub run_id: String,
    pub seed: u64,
    pub scenario: String,
    pub scenario_source: String,
    pub started_at: String,
    pub crashfuzz_version: String,
    pub sqlite_version: String,
    pub command: String,
}
pub struct Aggregator;
impl Aggregator {
    pub fn new(_cells: Vec<(Cell, Expectation)>) -> Self {
        Aggregator
    }
    pub fn add(&mut self, _rec: &TrialRecord) {}
    pub fn trials(&self) -> u64 {
        0
    }
    pub fn violating_trials(&self) -> u64 {
        0
    }
    pub fn summary(&self, _meta: &RunMeta, _duration_s: f64, _interrupted: bool) -> Summary {
        todo!()
    }
}
pub struct Summary;
impl Summary {
    pub fn failed(&self) -> bool {
        false
    }
}
pub fn write_reports(_run_dir: &std::path::Path, _summary: &Summary) -> std::io::Result<()> {
    todo!()
}
pub fn console_matrix(_summary: &Summary) -> String {
    todo!()
}

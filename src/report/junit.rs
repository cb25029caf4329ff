//! `junit.xml`: one suite named after the scenario, one test case per cell.

use crate::record::checks::ViolationKind;
use crate::report::summary::{CellSummary, Summary};
use crate::report::text::*;
use crate::scenario::expect::Verdict;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// `junit.xml`: one suite named after the scenario, one test case per cell; a failed verdict is a
/// `<failure>` whose message says why and whose text holds the replay lines.
pub fn junit_xml(summary: &Summary) -> std::io::Result<String> {
    let m = &summary.meta;
    let mut report = Report::new("crashfuzz");
    let mut suite = TestSuite::new(m.scenario.as_str());
    if let Ok(started) = chrono::DateTime::parse_from_rfc3339(&m.started_at) {
        report.set_timestamp(started);
        suite.set_timestamp(started);
    }
    if let Ok(d) = Duration::try_from_secs_f64(summary.duration_s) {
        report.set_time(d);
        suite.set_time(d);
    }
    suite.add_properties([
        Property::new("run_id", m.run_id.as_str()),
        Property::new("seed", summary.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
        Property::new("scenario_source", m.scenario_source.as_str()),
        Property::new("sqlite_version", m.sqlite_version.as_str()),
        Property::new("crashfuzz_version", m.crashfuzz_version.as_str()),
        Property::new("command", m.command.as_str()),
        Property::new("interrupted", summary.interrupted.to_string()),
    ]);
    let classname = format!("crashfuzz.{}", m.scenario);
    for c in &summary.cells {
        let status = match c.verdict {
            Verdict::Ok => TestCaseStatus::success(),
            Verdict::Regression | Verdict::NoData | Verdict::SilentCanary => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(c.verdict_reason()).set_type(c.verdict.as_str());
                let replays: Vec<String> = c
                    .failures
                    .iter()
                    .map(|f| format!("trial {}: {}", f.trial, f.replay.as_deref().unwrap_or("no replay line")))
                    .collect();
                if !replays.is_empty() {
                    status.set_description(replays.join("\n"));
                }
                status
            }
        };
        let mut case = TestCase::new(c.id.as_str(), status);
        case.set_classname(classname.as_str()).set_time(Duration::from_micros(c.trial_time_us));
        case.set_system_out(cell_counts_text(c));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string().map_err(std::io::Error::other)
}

/// The counts of a cell as plain text (junit's system-out).
fn cell_counts_text(c: &CellSummary) -> String {
    let kinds: Vec<String> = ViolationKind::ALL.iter().map(|&k| format!("{} {}", k.as_str(), c.rate_text(k))).collect();
    let images = match c.images {
        0 => String::new(),
        n => format!(" (distinct, of {n} images built)"),
    };
    format!(
        "trials {}, inconclusive {}, crash states {}{images}, violating trials {}\nviolations: {}\nexpectation: {}\n\
         commits {}, commit latency p50/p99 µs: {}\n{}\n",
        c.trials,
        c.inconclusive,
        c.crash_states,
        c.violating_trials,
        kinds.join(", "),
        c.expectation.describe,
        c.commits,
        latency_pair(&c.commit_latency_us),
        c.verdict_reason(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::checks::ViolationKind;
    use crate::report::testkit::*;

    #[test]
    fn junit_has_one_case_per_cell_and_one_failure() {
        let s = sample_summary();
        let xml = junit_xml(&s).unwrap();
        assert_eq!(xml.matches("<testcase").count(), 3);
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert!(xml.contains(r#"message="regression: lost_ack 3/40 (forbidden)""#), "{xml}");
        assert!(xml.contains("crashfuzz replay out/failures/17"), "{xml}");
        assert!(xml.contains(r#"classname="crashfuzz.unit""#), "{xml}");

        let mut ok = aggregator();
        ok.add(&record(0, &wal(), &[], &[]));
        ok.add(&record(1, &off(), &[ViolationKind::Fts], &[]));
        ok.add(&record(2, &delete(), &[], &[]));
        let xml = junit_xml(&ok.summary(&meta(), 1.0, false)).unwrap();
        assert_eq!(xml.matches("<testcase").count(), 3);
        assert!(!xml.contains("<failure"), "{xml}");

        // A cell without evidence is a failure too, and says why.
        let mut bare = aggregator();
        bare.add(&record(0, &wal(), &[], &[]));
        bare.add(&record(1, &off(), &[ViolationKind::Fts], &[]));
        let xml = junit_xml(&bare.summary(&meta(), 1.0, false)).unwrap();
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert!(xml.contains(r#"type="no-data""#) && xml.contains("no trial of this cell ran"), "{xml}");
    }
}

//! GitHub Actions: inside a workflow, a run or a merged report appends its `summary.md` to the
//! job's summary page (the file `$GITHUB_STEP_SUMMARY` names) and prints one `::error`
//! workflow command per failing cell, with the reason and the replay line of its first failure,
//! so that a regression shows on the pull request without opening an artifact. Outside a
//! workflow (neither variable set) it does nothing.

use crate::report::summary::Summary;
use std::io::Write;

/// Where GitHub Actions collects the job summary (Markdown, appended by each step).
pub const STEP_SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";
/// `true` inside a GitHub Actions job.
pub const ACTIONS_ENV: &str = "GITHUB_ACTIONS";

/// A workflow command's message: `%`, CR and LF escaped as the runner expects.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property value (`title=`): also `:` and `,` escaped.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One `::error` line per failing cell, in the summary's cell order.
pub fn annotations(summary: &Summary) -> Vec<String> {
    summary
        .cells
        .iter()
        .filter(|c| c.verdict.failed())
        .map(|c| {
            let title = format!("crashfuzz {}: {}", c.verdict.as_str(), c.id);
            let replay = c
                .failures
                .iter()
                .find_map(|f| f.replay.as_deref())
                .map_or_else(String::new, |r| format!("\nreplay: {r}"));
            format!(
                "::error title={}::{}",
                escape_property(&title),
                escape_data(&format!("{}{replay}", c.verdict_reason()))
            )
        })
        .collect()
}

/// Appends the summary's Markdown (`summary.md`) to the step summary and prints the
/// annotations, as `env` (a variable lookup: `std::env::var` in production) says the run is
/// inside a workflow; outside one it renders nothing. A step summary that cannot be written is
/// a warning on stderr: the run's own files are already written.
pub fn publish(summary: &Summary, env: impl Fn(&str) -> Option<String>) {
    if let Some(path) = env(STEP_SUMMARY_ENV).filter(|p| !p.is_empty()) {
        let md = crate::report::markdown::markdown(summary);
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{md}\n").as_bytes()));
        if let Err(e) = appended {
            eprintln!("crashfuzz: warning: cannot append the summary to ${STEP_SUMMARY_ENV} ({path}): {e}");
        }
    }
    if env(ACTIONS_ENV).as_deref() == Some("true") {
        for line in annotations(summary) {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testkit::*;

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(escape_data("50% done\nnext\r"), "50%25 done%0Anext%0D");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }

    /// A failing cell becomes one annotation naming its verdict and cell, with its reason and
    /// replay line; a passing cell none. The step summary gets the Markdown appended.
    #[test]
    fn a_failing_cell_is_annotated_and_the_summary_appended() {
        use crate::record::checks::ViolationKind;
        let cell = wal();
        let mut agg = aggregator_of(&[cell]);
        agg.add(&record(0, &cell, &[ViolationKind::Integrity], &[5]));
        let summary = agg.summary(&meta(), 1.0, false);
        let lines = annotations(&summary);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("::error title=crashfuzz regression%3A wal/"), "{}", lines[0]);
        assert!(lines[0].contains("::regression: integrity 1/1 (forbidden)"), "{}", lines[0]);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step-summary.md");
        std::fs::write(&path, "earlier step\n").unwrap();
        let env = |k: &str| match k {
            STEP_SUMMARY_ENV => Some(path.display().to_string()),
            _ => None,
        };
        publish(&summary, env);
        let md = crate::report::markdown::markdown(&summary);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("earlier step\n{md}\n"));

        let mut ok = aggregator_of(&[cell]);
        ok.add(&record(0, &cell, &[], &[5]));
        assert!(annotations(&ok.summary(&meta(), 1.0, false)).is_empty());
    }
}

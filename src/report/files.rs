//! Writing a run's reports: every file to a temporary name, fsynced and renamed, so a reader or
//! a crash never sees half a report.

use crate::report::charts;
use crate::report::junit::junit_xml;
use crate::report::markdown::markdown;
use crate::report::summary::Summary;
use std::io::Write as _;
use std::path::Path;

/// Writes `summary.json`, `summary.md`, `junit.xml` and the charts ([`charts::CHARTS`]) into
/// `run_dir`, each to a temporary name, fsynced, then renamed over the final name (and the
/// directory fsynced), so a reader or a crash never sees half a report. The charts are rendered
/// before anything is written: a chart that cannot be drawn leaves the old reports in place.
pub fn write_reports(run_dir: &Path, summary: &Summary) -> std::io::Result<()> {
    let mut json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    json.push('\n');
    let svgs = charts::render_all(summary)?;
    write_atomically(run_dir, "summary.json", json.as_bytes())?;
    write_atomically(run_dir, "summary.md", markdown(summary).as_bytes())?;
    write_atomically(run_dir, "junit.xml", junit_xml(summary)?.as_bytes())?;
    for (name, svg) in &svgs {
        write_atomically(run_dir, name, svg.as_bytes())?;
    }
    std::fs::File::open(run_dir)?.sync_all()
}

/// Writes `name` in `dir` whole or not at all: a temporary file, fsynced, renamed over it. A
/// failure (a full disk) removes the temporary file rather than leave it behind.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, dir.join(name))) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::console::console_matrix;
    use crate::report::testkit::*;

    /// A full disk once left `.summary.json.tmp` behind. /dev/full accepts the file's creation
    /// and fails every write with ENOSPC: the write fails, and no temporary file remains.
    #[test]
    fn a_report_that_cannot_be_written_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".summary.json.tmp");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let err = write_atomically(dir.path(), "summary.json", b"{}").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENOSPC), "{err}");
        assert!(std::fs::symlink_metadata(&tmp).is_err(), "the temporary file was left behind");
        assert!(!dir.path().join("summary.json").exists());
    }

    #[test]
    fn reports_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        write_reports(dir.path(), &sample_summary()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["junit.xml", "latency.svg", "summary.json", "summary.md", "synchronous.svg", "violations.svg"]
        );
        // Re-read, the summary renders the same reports. (Not `==` on the struct: without
        // serde_json's `float_roundtrip` feature a bound may come back one ulp off.)
        let back: Summary =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("summary.md")).unwrap(), markdown(&back));
        assert_eq!(std::fs::read_to_string(dir.path().join("junit.xml")).unwrap(), junit_xml(&back).unwrap());
        assert_eq!(console_matrix(&back), console_matrix(&sample_summary()));
    }
}

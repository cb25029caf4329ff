//! `cross_version`: NUL-sentinel content written through both FTS5 tables by the bundled SQLite;
//! every image is also checked (integrity_check, every FTS5 table's integrity-check) by another
//! SQLite build (`[hazard] other_sqlite`), as when a database written by one version is opened
//! by another. A disagreement between the builds is its own finding, folded into the check it
//! belongs to. Measured.

use crate::error::{Error, Result};
use crate::fault::{Fault, Judge};
use crate::oracle::crosscheck;
use crate::record::checks::CheckResult;
use crate::scenario::expect::Expectation;
use crate::scenario::matrix::Cell;

pub struct CrossVersion;

pub const FAULT: CrossVersion = CrossVersion;

impl Fault for CrossVersion {
    fn describe(&self) -> &'static str {
        "NUL-sentinel content written through both FTS5 tables by the bundled SQLite; every image \
         also checked (integrity_check, FTS5 integrity-check) by another SQLite build ([hazard] other_sqlite)"
    }

    fn expectation(&self, _cell: &Cell) -> Expectation {
        Expectation::measured("hazard: checked by another SQLite build; measured")
    }

    fn stops_everyone(&self) -> bool {
        true
    }

    fn needs_other_sqlite(&self) -> bool {
        true
    }

    /// The other build judges the same image, on its own copies of the pristine one.
    fn judge(&self, j: &Judge<'_>, results: &mut Vec<CheckResult>) -> Result<()> {
        let other = j.other_sqlite.expect("the campaign resolves hazard.other_sqlite before any cross_version trial");
        let pristine_db = j.pristine.db().map_err(|e| Error::io("write the crash image out for the other build", e))?;
        let cross = crosscheck::cross_check(pristine_db, other)
            .map_err(|e| Error::Harness(format!("cross-version check: {e:#}")))?;
        crosscheck::fold_into(results, &cross);
        Ok(())
    }
}

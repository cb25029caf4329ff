//! The writer of each cell, made ready before the campaign's first trial: for the `bundled`
//! build this executable, for any other the shared-library writer
//! ([`crate::sqlite::shared_writer`]) pointed at the build, each with the
//! identity the build gives of itself (`sqlite_version()`, `sqlite_source_id()`), which every
//! writer of the cell must then report. A build that cannot be had or loaded is bad input
//! (exit 2), refused before anything runs.

use crate::error::{Error, Result};
use crate::record::SqliteIdentity;
use crate::run::env::CellWriter;
use crate::scenario::matrix::{Cell, SqliteName};
use crate::sqlite::builds::{self, ResolvedBuild};
use crate::sqlite::shared_writer;
use crate::writer::program::{BuiltIn, WriterSqlite};
use std::collections::BTreeMap;
use std::path::Path;

/// One writer per cell; `exe` is this executable. Also returns each build's identity by name,
/// for run.json.
pub fn cell_writers(cells: &[Cell], exe: &Path) -> Result<(Vec<CellWriter>, BTreeMap<String, SqliteIdentity>)> {
    let mut by_name: BTreeMap<SqliteName, Ready> = BTreeMap::new();
    for cell in cells {
        if let std::collections::btree_map::Entry::Vacant(slot) = by_name.entry(cell.sqlite) {
            let (program, identity, build) = ready(cell.sqlite, exe)?;
            println!(
                "crashfuzz: cells on {} write with SQLite {} ({})",
                cell.sqlite, identity.version, identity.source_id
            );
            slot.insert((program, identity, build));
        }
    }
    let writers = cells
        .iter()
        .map(|cell| {
            let (program, sqlite, build) = by_name[&cell.sqlite].clone();
            CellWriter { program: Box::new(program), sqlite, build }
        })
        .collect();
    let identities = by_name.into_iter().map(|(name, (_, identity, _))| (name.to_string(), identity)).collect();
    Ok((writers, identities))
}

/// A cell's writer, the identity of its build, and the build unless it is the bundled one.
type Ready = (BuiltIn, SqliteIdentity, Option<ResolvedBuild>);

/// The writer on build `name`.
fn ready(name: SqliteName, exe: &Path) -> Result<Ready> {
    if name.is_bundled() {
        return Ok((BuiltIn::bundled(exe.to_path_buf()), bundled_identity()?, None));
    }
    let bad = |source| Error::SqliteBuild { what: format!("[[matrix]] sqlite = {:?}", name.as_str()), source };
    let resolved = builds::resolve(&name.build()).map_err(bad)?;
    let identity = crate::sqlite::child::identify(exe, &resolved).map_err(bad)?;
    let library_dir = shared_writer::library_dir(&resolved).map_err(bad)?;
    let writer = shared_writer::executable().map_err(bad)?;
    Ok((BuiltIn { exe: writer, sqlite: WriterSqlite::Shared { library_dir } }, identity, Some(resolved)))
}

/// The SQLite this executable is linked with, as it names itself.
pub fn bundled_identity() -> Result<SqliteIdentity> {
    let conn = rusqlite::Connection::open_in_memory().map_err(|e| Error::sqlite("open an in-memory database", e))?;
    conn.query_row("SELECT sqlite_version(), sqlite_source_id()", [], |r| {
        Ok(SqliteIdentity { version: r.get(0)?, source_id: r.get(1)? })
    })
    .map_err(|e| Error::sqlite("read sqlite_version()", e))
}

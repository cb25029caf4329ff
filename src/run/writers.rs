//! The writer of each cell, made ready before the campaign's first trial: for the `bundled`
//! build this executable, for any other the shared-library writer
//! ([`crate::sqlite::shared_writer`]) pointed at the build, each with the
//! identity the build gives of itself (`sqlite_version()`, `sqlite_source_id()`), which every
//! writer of the cell must then report. A scenario with `[writer] command` runs the
//! application's program instead ([`External`]): on `system` as it is, on a named build with
//! `LD_LIBRARY_PATH` pointing at the build's `libsqlite3.so.0`. A build that cannot be had or
//! loaded is bad input (exit 2), refused before anything runs.

use crate::error::{Error, Result};
use crate::fault::SqliteVersion;
use crate::oracle::app::AppSchema;
use crate::record::SqliteIdentity;
use crate::run::env::{CellSqlite, CellWriter};
use crate::scenario::app::AppWriter;
use crate::scenario::matrix::{Cell, SqliteName};
use crate::sqlite::builds;
use crate::sqlite::shared_writer;
use crate::writer::external::External;
use crate::writer::program::{BuiltIn, Program, WriterSqlite};
use std::collections::BTreeMap;
use std::path::Path;

/// One writer per cell; `exe` is this executable. Also returns each build's identity by name,
/// for run.json.
pub fn cell_writers(
    cells: &[Cell],
    exe: &Path,
    app: Option<&AppWriter>,
) -> Result<(Vec<CellWriter>, BTreeMap<String, SqliteIdentity>)> {
    let schema = app.map(AppSchema::leak);
    // An application's writer reaches the VFS's faults and lock cancellation through the
    // LD_PRELOAD interposer, which also names the SQLite it loaded: needed for those faults,
    // and used when it can be built for the others.
    let interposer = match app {
        Some(_) if cells.iter().any(|c| crate::scenario::app::interposed(c.fault)) => {
            Some(crate::writer::interposer::library()?)
        }
        Some(_) => crate::writer::interposer::library().ok(),
        _ => None,
    };
    let mut by_name: BTreeMap<SqliteName, (BuiltIn, CellSqlite)> = BTreeMap::new();
    for cell in cells {
        if let std::collections::btree_map::Entry::Vacant(slot) = by_name.entry(cell.sqlite) {
            let (program, sqlite) = ready(cell.sqlite, exe, app.is_none())?;
            println!(
                "crashfuzz: cells on {} write with SQLite {} ({})",
                cell.sqlite, sqlite.identity.version, sqlite.identity.source_id
            );
            slot.insert((program, sqlite));
        }
    }
    let writers = cells
        .iter()
        .map(|cell| {
            let (program, sqlite) = by_name[&cell.sqlite].clone();
            let program: Box<dyn Program> = match (app, schema) {
                (Some(app), Some(schema)) => {
                    let library_dir = match program.sqlite {
                        WriterSqlite::Shared { library_dir } => library_dir,
                        WriterSqlite::Linked => unreachable!("validation refuses bundled with [writer] command"),
                    };
                    Box::new(External { app: app.clone(), library_dir, schema, interposer: interposer.clone() })
                }
                _ => Box::new(program),
            };
            CellWriter { program, sqlite }
        })
        .collect();
    let identities = by_name.into_iter().map(|(name, (_, sqlite))| (name.to_string(), sqlite.identity)).collect();
    Ok((writers, identities))
}

/// The writer on build `name`, and what the campaign knows of the build. `built_in`: the cells
/// run crashfuzz's own writer, which on any build but the bundled one is the shared-library
/// writer (compiled here); an application's program needs only the build's library directory.
fn ready(name: SqliteName, exe: &Path, built_in: bool) -> Result<(BuiltIn, CellSqlite)> {
    if name.is_bundled() {
        let sqlite = CellSqlite { identity: bundled_identity()?, version: SqliteVersion::bundled(), build: None };
        return Ok((BuiltIn::bundled(exe.to_path_buf()), sqlite));
    }
    let bad = |source| Error::SqliteBuild { what: format!("[[matrix]] sqlite = {:?}", name.as_str()), source };
    let resolved = builds::resolve(&name.build()).map_err(bad)?;
    let identity = crate::sqlite::child::identify(exe, &resolved).map_err(bad)?;
    // The version decides built-in expectations: one that cannot be read is refused, never
    // guessed.
    let version = SqliteVersion::parse(&identity.version).ok_or_else(|| {
        bad(builds::BuildError::Unloadable {
            build: resolved.to_string(),
            reason: format!("it names its version {:?}, not three numbers such as 3.40.1", identity.version),
        })
    })?;
    let library_dir = shared_writer::library_dir(&resolved).map_err(bad)?;
    let writer = if built_in { shared_writer::executable().map_err(bad)? } else { exe.to_path_buf() };
    let program = BuiltIn { exe: writer, sqlite: WriterSqlite::Shared { library_dir } };
    Ok((program, CellSqlite { identity, version, build: Some(resolved) }))
}

/// The SQLite this executable is linked with, as it names itself.
pub fn bundled_identity() -> Result<SqliteIdentity> {
    let conn = rusqlite::Connection::open_in_memory().map_err(|e| Error::sqlite("open an in-memory database", e))?;
    conn.query_row("SELECT sqlite_version(), sqlite_source_id()", [], |r| {
        Ok(SqliteIdentity { version: r.get(0)?, source_id: r.get(1)? })
    })
    .map_err(|e| Error::sqlite("read sqlite_version()", e))
}

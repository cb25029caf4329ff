//! The files of an SQLite database on disk: the main file and its `-wal`, `-journal` and
//! `-shm` beside it. A crash image is the main file with its hot journal or WAL, never the
//! `-shm` (the first connection rebuilds it from the WAL). Copying, moving, removing and reading
//! those files together lives here, once.
//!
//! Leaf module: it imports nothing from the crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The database's file name in every directory crashfuzz lays out (a lane, a kept failure, an
/// image).
pub const DB_NAME: &str = "db.sqlite";

/// The files of an image: name (within the database's directory) to content.
pub type Files = BTreeMap<String, Vec<u8>>;

/// `db` + suffix, e.g. `db.sqlite-wal`.
pub fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The files of a database that a crash leaves and recovery needs. `-shm` is never part of a
/// crash image: it is rebuilt from the WAL by the first connection.
pub const IMAGE_SUFFIXES: [&str; 3] = ["", "-wal", "-journal"];

/// The files beside the main one: its rollback journal, its WAL and the WAL's index.
pub const SIDECAR_SUFFIXES: [&str; 3] = ["-wal", "-journal", "-shm"];

/// Removes the file at `path`; a file that is not there is no error.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes a database's files, its `-shm` included; a file that is not there is no error.
pub fn remove_db_files(db: &Path) -> std::io::Result<()> {
    remove_if_present(db)?;
    remove_sidecars(db)
}

/// Removes a database's journal, WAL and `-shm`; a file that is not there is no error.
fn remove_sidecars(db: &Path) -> std::io::Result<()> {
    SIDECAR_SUFFIXES.iter().try_for_each(|suffix| remove_if_present(&sidecar(db, suffix)))
}

/// Puts a copy of `template` at `db` with no journal, WAL or `-shm` beside it. A main file
/// already there is overwritten in place and cut to the template's length rather than removed
/// and created anew: no inode to allocate, no blocks to free and allocate again (a lane does
/// this before every trial).
pub fn reset_from(template: &Path, db: &Path) -> std::io::Result<()> {
    remove_sidecars(db)?;
    let mut from = std::fs::File::open(template)?;
    let mut to = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(db)?;
    // std copies file to file with copy_file_range(2): in the kernel, no buffer here.
    let copied = std::io::copy(&mut from, &mut to)?;
    to.set_len(copied)
}

/// Copies the crash image of `db` (the database and its hot journal or WAL, if any) into `dir`,
/// under the same file names; returns the copy's path.
pub fn copy_image(db: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = db.file_name().ok_or_else(|| std::io::Error::other(format!("{}: no file name", db.display())))?;
    let copy = dir.join(name);
    for suffix in IMAGE_SUFFIXES {
        let from = sidecar(db, suffix);
        if from.exists() {
            std::fs::copy(&from, sidecar(&copy, suffix))?;
        }
    }
    Ok(copy)
}

/// Moves the files of database `from` to `to` (renames within the lane's file system).
pub fn move_db_files(from: &Path, to: &Path) -> std::io::Result<()> {
    remove_db_files(to)?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    for suffix in IMAGE_SUFFIXES {
        match std::fs::rename(sidecar(from, suffix), sidecar(to, suffix)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // A -shm belongs to no one once its writers are dead; the next opener rebuilds it.
    remove_db_files(from)
}

/// The bytes of a database and its journal or WAL.
pub fn db_bytes(db: &Path) -> u64 {
    IMAGE_SUFFIXES.iter().filter_map(|s| std::fs::metadata(sidecar(db, s)).ok()).map(|m| m.len()).sum()
}

/// The first page of `db` tells its page size (bytes 16–17, big-endian; 1 means 65536).
pub fn page_size(files: &Files) -> u64 {
    let Some(header) = files.get(DB_NAME).and_then(|b| b.get(16..18)) else { return 4096 };
    match u16::from_be_bytes([header[0], header[1]]) {
        1 => 65_536,
        0 => 4096,
        n => u64::from(n),
    }
}

/// Reads the files of the database `db` (main file, `-wal`, `-journal`) into memory.
pub fn read_files(db: &Path) -> std::io::Result<Files> {
    let name = db.file_name().expect("a file name").to_string_lossy().into_owned();
    let mut files = Files::new();
    for suffix in IMAGE_SUFFIXES {
        match std::fs::read(sidecar(db, suffix)) {
            Ok(bytes) => {
                files.insert(format!("{name}{suffix}"), bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(files)
}

/// Replaces the contents of `dir` with `files`.
pub fn write_files(dir: &Path, files: &Files) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn reset_from_gives_the_templates_bytes_in_place_and_nothing_beside_them() {
        let tmp = tempfile::tempdir().unwrap();
        let template = tmp.path().join("template.sqlite");
        std::fs::write(&template, b"template bytes").unwrap();
        let db = tmp.path().join(DB_NAME);
        // No database yet: created.
        reset_from(&template, &db).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"template bytes");
        // A longer one with a WAL, a journal and a -shm beside it, as a trial leaves it.
        std::fs::write(&db, b"a database that grew during the trial").unwrap();
        for suffix in SIDECAR_SUFFIXES {
            std::fs::write(sidecar(&db, suffix), b"x").unwrap();
        }
        let inode = std::fs::metadata(&db).unwrap().ino();
        reset_from(&template, &db).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"template bytes");
        assert_eq!(std::fs::metadata(&db).unwrap().ino(), inode, "overwritten in place");
        for suffix in SIDECAR_SUFFIXES {
            assert!(!sidecar(&db, suffix).exists(), "{suffix} left");
        }
    }
}

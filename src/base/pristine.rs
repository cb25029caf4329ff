//! The crash image as the fault left it, before any check touches it (the checks recover,
//! checkpoint and write): held in memory, written out as files only when something needs them
//! (another SQLite build's check, a kept failure). Most trials pass, and then nothing of it
//! reaches the disk.

use crate::base::dbfiles::{self, DB_NAME, Files};
use std::cell::OnceCell;
use std::path::{Path, PathBuf};

/// A crash image before any check.
pub struct Pristine {
    /// Its files in memory (empty for an image that was on disk from the start).
    files: Files,
    /// The directory its files are in, or go to when they are needed.
    dir: PathBuf,
    /// The database's path once its files are on disk.
    on_disk: OnceCell<PathBuf>,
}

impl Pristine {
    /// Reads the image of `db` (the main file and its hot journal or WAL) into memory; its
    /// files go to `dir` when needed, under the standard names.
    pub fn read(db: &Path, dir: PathBuf) -> std::io::Result<Pristine> {
        let mut files = dbfiles::read_files(db)?;
        let name = db.file_name().expect("a file name").to_string_lossy().into_owned();
        // The lane's files take the standard names wherever they came from.
        if name != DB_NAME {
            files = files.into_iter().map(|(n, bytes)| (n.replacen(&name, DB_NAME, 1), bytes)).collect();
        }
        Ok(Pristine { files, dir, on_disk: OnceCell::new() })
    }

    /// An image already on disk (a kept failure's), never written.
    pub fn on_disk(db: &Path) -> Pristine {
        let dir = db.parent().map(Path::to_path_buf).unwrap_or_default();
        Pristine { files: Files::new(), dir, on_disk: OnceCell::from(db.to_path_buf()) }
    }

    /// The database's path, its files written out first if they are still only in memory.
    pub fn db(&self) -> std::io::Result<&Path> {
        if let Some(db) = self.on_disk.get() {
            return Ok(db);
        }
        dbfiles::write_files(&self.dir, &self.files)?;
        Ok(self.on_disk.get_or_init(|| self.dir.join(DB_NAME)))
    }

    /// Puts the image's files in `dir` (which must not exist yet): moved there when they are
    /// on disk already, written from memory otherwise.
    pub fn keep_in(self, dir: &Path) -> std::io::Result<()> {
        match self.on_disk.get() {
            Some(db) => std::fs::rename(&self.dir, dir).or_else(|_| dbfiles::copy_image(db, dir).map(drop)),
            None => dbfiles::write_files(dir, &self.files),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(dir: &Path) -> PathBuf {
        let db = dir.join("crash.db");
        std::fs::write(&db, b"main").unwrap();
        std::fs::write(dbfiles::sidecar(&db, "-wal"), b"wal").unwrap();
        std::fs::write(dbfiles::sidecar(&db, "-shm"), b"shm").unwrap();
        db
    }

    fn names_and_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_image_in_memory_is_written_only_when_needed_and_unchanged_by_later_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let db = image(tmp.path());
        let dir = tmp.path().join("pristine");
        let p = Pristine::read(&db, dir.clone()).unwrap();
        assert!(!dir.exists(), "nothing is written before it is needed");
        // What the checks do to the image afterwards does not reach the snapshot.
        std::fs::write(&db, b"checked").unwrap();
        std::fs::remove_file(dbfiles::sidecar(&db, "-wal")).unwrap();
        assert_eq!(p.db().unwrap(), dir.join(DB_NAME));
        assert_eq!(
            names_and_bytes(&dir),
            vec![("db.sqlite".into(), b"main".to_vec()), ("db.sqlite-wal".into(), b"wal".to_vec())],
            "the image without its -shm, under the standard names"
        );
        let kept = tmp.path().join("kept");
        p.keep_in(&kept).unwrap();
        assert_eq!(names_and_bytes(&kept).len(), 2);
        assert!(!dir.exists(), "written out already: moved, not copied");
    }

    #[test]
    fn an_image_kept_without_being_needed_is_written_from_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let db = image(tmp.path());
        let p = Pristine::read(&db, tmp.path().join("pristine")).unwrap();
        let kept = tmp.path().join("kept");
        p.keep_in(&kept).unwrap();
        assert_eq!(
            names_and_bytes(&kept),
            vec![("db.sqlite".into(), b"main".to_vec()), ("db.sqlite-wal".into(), b"wal".to_vec())]
        );
        assert!(!tmp.path().join("pristine").exists());
    }

    #[test]
    fn an_image_on_disk_is_its_own_path() {
        let tmp = tempfile::tempdir().unwrap();
        let db = image(tmp.path());
        let p = Pristine::on_disk(&db);
        assert_eq!(p.db().unwrap(), db.as_path());
    }
}
